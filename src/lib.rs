pub use oddity_kernels as kernels;
pub mod autograd;
