pub use oddity_kernels as kernels;
