//! Per-pixel Platt and Beta calibration as a graph op (thesis §4.2): differentiable with respect
//! to the logit map (input perturbation goes through it) and to the parameters (training them).
//! Kernels and CPU reference: `oddity_kernels::pixel_calibration`.

use oddity_kernels::pixel_calibration::{self as k, PixelMethod};
use oddity_kernels::{Result, Tensor};

use super::var::{BackwardOp, Var};

struct PixelCalibrationBackward {
    z: Tensor,
    params: Tensor,
    method: PixelMethod,
}

impl BackwardOp for PixelCalibrationBackward {
    fn backward(&self, gy: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let gz = if needs[0] { Some(k::backward_input(&self.z, &self.params, gy, self.method)?) } else { None };
        let gw = if needs[1] { Some(k::backward_params(&self.z, gy, self.method)?) } else { None };
        Ok(vec![gz, gw])
    }
}

/// Calibrated logits of a logit map, one parameter set per pixel.
/// z: [N, H, W] or [N, 1, H, W]; params: [P, H, W] (P = 2 for Platt, 3 for Beta) -> z's shape.
pub fn pixel_calibration(z: &Var, params: &Var, method: PixelMethod) -> Result<Var> {
    let y = k::forward(z.value(), params.value(), method)?;
    let backward = PixelCalibrationBackward { z: z.value().clone(), params: params.value().clone(), method };
    Ok(Var::from_op(y, "pixel_calibration", &[z, params], Some(Box::new(backward))))
}
