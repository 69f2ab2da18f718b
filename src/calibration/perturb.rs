//! Gradient-based input perturbation (ODIN; thesis §3.3, eq. 3.3):
//!
//! ```text
//! x~ = x - ε sgn(∇_x ℓ(y = 0, x))
//! ```
//!
//! where ℓ is the logistic loss of the whole model, calibration included, for the label
//! "normal": `ℓ(0, z) = softplus(z)`. Stepping against its gradient makes the input look more
//! normal to the model; normal inputs gain more from it than anomalies do, which is what can
//! change the ranking that monotone calibration maps cannot (thesis §3.3).
//!
//! The loss is summed over the batch (and over the pixels of a logit map). Samples do not
//! interact in an evaluation-mode network, so each sample's gradient is that of its own loss; a
//! sum rather than a mean keeps tiny gradients from underflowing, and sgn ignores the scale.
//! `sgn(0) = 0`: an input element whose gradient is exactly zero (e.g. one the model ignores) is
//! left unchanged, as in ODIN.

use crate::autograd::{grad_enabled, Var};
use crate::error::{Error, Result};
use crate::kernels::optim::sign_step;
use crate::kernels::Tensor;

/// The thesis's step size (§4.2.2), in normalised input space.
pub const DEFAULT_EPSILON: f32 = 1.4e-3;

/// `∇_x sum softplus(logits(x))`, the gradient of the logistic loss with label 0.
/// x: the model input, e.g. [N, C, H, W]; `logits` maps it to per-sample logits ([N] or [N, 1])
/// or a per-pixel logit map ([N, 1, H, W]) of the whole model including its calibration.
///
/// Leaves inside `logits` that require gradients (unfrozen model parameters) receive gradients
/// too; freeze them, or zero them afterwards. Must run with gradient recording on (not inside
/// `no_grad`).
pub fn input_gradient(x: &Tensor, logits: impl Fn(&Var) -> Result<Var>) -> Result<Tensor> {
    if !grad_enabled() {
        return Err(Error::InvalidArgument(
            "input perturbation needs the input gradient: call it outside no_grad()".into(),
        ));
    }
    let input = Var::leaf(x.clone());
    let z = logits(&input)?;
    let loss = z.softplus()?.sum()?;
    if !loss.requires_grad() {
        return Err(Error::InvalidArgument(format!(
            "input perturbation: the logits {:?} do not depend on the input {:?}",
            z.shape(),
            x.shape()
        )));
    }
    loss.backward()?;
    input.grad().ok_or_else(|| {
        Error::InvalidArgument(format!("input perturbation: no gradient reached the input {:?}", x.shape()))
    })
}

/// Thesis eq. 3.3: `x - eps * sgn(∇_x ℓ(0, x))`, a new tensor of x's shape. `eps` must be finite
/// and > 0 ([`DEFAULT_EPSILON`] in the thesis). See [`input_gradient`] for `logits`.
pub fn perturb(x: &Tensor, logits: impl Fn(&Var) -> Result<Var>, eps: f32) -> Result<Tensor> {
    if !(eps.is_finite() && eps > 0.0) {
        return Err(Error::InvalidArgument(format!("perturbation epsilon must be finite and > 0, got {eps}")));
    }
    let g = input_gradient(x, logits)?;
    Ok(sign_step(x, &g, eps)?)
}
