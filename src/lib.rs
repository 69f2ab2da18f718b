//! oddity: deep anomaly detection on images.
//!
//! CPU side of the library: [`data`] (loaders, protocols, transforms, batches), [`synth`]
//! (synthetic anomalies), [`metrics`] (AUROC, pixel AUROC, AUPRO, ECE/MCE/Brier), [`cli`] (the
//! `oddity` command) and [`Error`].

pub use oddity_kernels as kernels;

pub mod cli;
pub mod data;
pub mod error;
pub mod metrics;
pub mod synth;

pub use error::{Error, Result};
