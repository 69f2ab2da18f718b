//! oddity's compute core: a wgpu device [`Context`], GPU [`Tensor`]s from a buffer pool, and one
//! module per WGSL shader in `shaders/`. Each op module holds the params struct, the dispatch,
//! a plain-Rust CPU reference (in f64) of the same op and its backward, and the tests that
//! compare them.

// `!(v > 0.0)` and the like are deliberate: they are true for NaN, which input checks must reject.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod context;
pub mod error;
pub mod kernel;
mod pool;
pub mod profile;
pub mod tensor;
pub mod testing;

pub mod batchnorm;
pub mod concat;
pub mod conv2d;
pub mod conv_transpose2d;
pub mod elementwise;
pub mod gaussian_upsample;
pub mod matmul;
pub mod minibatch_stddev;
pub mod optim;
pub mod pixel_calibration;
pub mod pool2d;
pub mod reduce;
pub mod rng;
pub mod ssim;
pub mod texture;
pub mod upsample;

pub use context::{Binding, Context, PoolStats};
pub use error::{Error, Result};
pub use tensor::{DType, Tensor};
pub use wgpu;
