//! `oddity calibrate`: post-hoc calibration of a model trained by `oddity train` (thesis
//! §4.2.1). Rebuilds the run's calibration split from the checkpoint's stored run info (data
//! set, class, seed, limits), scores `--samples` augmented normal calibration images and as
//! many synthetic anomalies, fits Platt, Beta or the calibration head, and writes into
//! `--model`: `calibration.json` (Platt/Beta), `head.safetensors` (head),
//! `pixel_calibration.json` (map models, Platt/Beta) and `calibration_scores.json` (the sorted
//! raw scores of the normal calibration images, for conformal p-values and thresholds).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use crate::calibration::{HeadConfig, PixelFitConfig};
use crate::cli::train::{parse_anomalies, AnomalyArg};
use crate::error::Result;
use crate::experiment::{calibrate_run, CalibrateOptions, CalibrationMethod, HeadSolver};
use crate::kernels::Context;

#[derive(Debug, Args, Clone)]
pub struct CalibrateArgs {
    /// The folder `oddity train --out` wrote (checkpoint.safetensors).
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long, value_enum)]
    pub method: CalibrationMethod,
    /// Synthetic anomalies: `spectral` or `oe:<dir>` (outlier exposure; half the folder is
    /// used, the other half is kept unseen for evaluation).
    #[arg(long, default_value = "spectral", value_parser = parse_anomalies)]
    pub anomalies: AnomalyArg,
    /// Normal calibration images to score, and as many anomalies (thesis: 10,000).
    #[arg(long, default_value_t = 10_000)]
    pub samples: usize,
    /// Of those, pixel maps per class for per-pixel calibration (map models).
    #[arg(long, default_value_t = 1000)]
    pub pixel_samples: usize,
    /// Seeds the augmentation, the anomalies and the head.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Adam steps of the calibration head when `--head-solver adam` (batches of 128, lr 1e-4).
    #[arg(long, default_value_t = 1000)]
    pub head_steps: usize,
    /// `lbfgs`: fit the head's linear layer on the frozen features to the logistic loss's
    /// optimum; `adam`: Adam on balanced batches through the network (`--head-steps`).
    #[arg(long, value_enum, default_value = "lbfgs")]
    pub head_solver: HeadSolver,
    /// Epochs of the per-pixel fit.
    #[arg(long, default_value_t = 10)]
    pub pixel_epochs: usize,
}

pub fn run(args: &CalibrateArgs, out: &mut dyn Write) -> Result<()> {
    let ctx = Context::new()?;
    let opts = CalibrateOptions {
        method: args.method,
        anomalies: args.anomalies.clone(),
        samples: args.samples,
        pixel_samples: args.pixel_samples,
        seed: args.seed,
        head: HeadConfig { steps: args.head_steps, ..HeadConfig::default() },
        head_solver: args.head_solver,
        pixel: PixelFitConfig { epochs: args.pixel_epochs, ..PixelFitConfig::default() },
    };
    let run = calibrate_run(&ctx, &args.model, &args.model, &opts, out)?;
    // Loudly, also when stdout goes to a file: a reversed or collapsed map is easy to miss.
    for w in run.calibration.warnings() {
        eprintln!("warning: {w}");
    }
    Ok(())
}
