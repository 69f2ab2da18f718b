//! oddity: deep anomaly detection on images.
//!
//! GPU side: [`kernels`] (the compute core), [`autograd`] (the reverse-mode graph), [`nn`]
//! (layers), [`models`] (networks), [`optim`] (Adam and SGD on GPU parameters, learning-rate
//! schedules, CPU L-BFGS), [`checkpoint`] (safetensors with metadata) and [`train`] (the training
//! loop with checkpoints, resume and progress).
//! CPU side: [`data`] (loaders, protocols, transforms, batches), [`synth`]
//! (synthetic anomalies), [`metrics`] (AUROC, pixel AUROC, AUPRO, ECE/MCE/Brier), [`cli`] (the
//! `oddity` command) and [`Error`].

pub use oddity_kernels as kernels;

pub mod autograd;
pub mod calibration;
pub mod checkpoint;
pub mod cli;
pub mod data;
pub mod embed;
pub mod error;
pub mod experiment;
pub mod metrics;
pub mod mlsad;
pub mod models;
pub mod nn;
pub mod optim;
pub mod predict;
pub mod report;
pub mod synth;
pub mod train;
pub mod workloads;

pub use error::{Error, Result};
