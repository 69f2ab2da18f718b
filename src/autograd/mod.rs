//! Reverse-mode automatic differentiation on GPU tensors.
//!
//! - [`Var`] wraps a tensor; ops on `Var`s record a node with a small [`BackwardOp`] value that keeps
//!   only what the backward pass needs.
//! - [`Var::backward`] runs from a scalar loss; gradients accumulate in leaves ([`Var::grad`]).
//! - [`no_grad`] turns recording off; leaves can be frozen with [`Var::set_requires_grad`].
//! - An op without a backward is recorded with `None` and reports an error if a gradient is
//!   asked through it, never a panic.

mod conv;
mod elementwise;
pub mod gradcheck;
mod pixel_calibration;
mod reduce;
mod shape;
mod spatial;
mod ssim;
mod var;

pub use conv::{conv2d, conv2d_fused, conv_transpose2d, conv_transpose2d_fused};
pub use elementwise::{binary, unary};
pub use pixel_calibration::pixel_calibration;
pub use reduce::{matmul, reduce};
pub use shape::concat;
pub use spatial::{avg_pool2d, batch_norm, batch_norm_fused, batch_norm_max_pool, gaussian_upsample, max_pool2d, minibatch_stddev, upsample_bilinear};
pub use ssim::{ssim_loss, ssim_map};
pub use gradcheck::{gradcheck, gradcheck_params};
pub use var::{check_finite, check_finite_enabled, grad_enabled, no_grad, set_check_finite, BackwardOp, Var};
