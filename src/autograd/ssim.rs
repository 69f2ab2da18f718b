//! The SSIM map as a graph op (both images differentiable: the autoencoder's reconstruction is
//! one of them) and the thesis's SSIM loss built from it.

use oddity_kernels::ssim as k;
use oddity_kernels::{Result, Tensor};

use super::var::{BackwardOp, Var};

struct SsimBackward {
    x: Tensor,
    y: Tensor,
    pad_value: f32,
}

impl BackwardOp for SsimBackward {
    fn backward(&self, gs: &Tensor, _needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        // One backward pass yields both gradients; computing just one would save little.
        let (gx, gy) = k::ssim_map_backward(gs, &self.x, &self.y, self.pad_value)?;
        Ok(vec![Some(gx), Some(gy)])
    }
}

/// Per-pixel SSIM of `x` and `y` over an 11x11 Gaussian window (σ 1.5), both padded by 5 pixels
/// with `pad_value` (the thesis pads with the training data's mean); see `oddity_kernels::ssim`.
/// x, y: [batch, channels, height, width] -> [batch, channels, height, width]
pub fn ssim_map(x: &Var, y: &Var, pad_value: f32) -> Result<Var> {
    let s = k::ssim_map(x.value(), y.value(), pad_value)?;
    let backward = SsimBackward { x: x.value().clone(), y: y.value().clone(), pad_value };
    Ok(Var::from_op(s, "ssim_map", &[x, y], Some(Box::new(backward))))
}

/// The thesis's SSIM loss (§4.1.4), `ℓ = mean_ij (1 - S(x, y))_ij`, averaged over the batch and
/// channels too (shape `[]`). x, y: [batch, channels, height, width]
pub fn ssim_loss(x: &Var, y: &Var, pad_value: f32) -> Result<Var> {
    ssim_map(x, y, pad_value)?.mean()?.affine(-1.0, 1.0)
}
