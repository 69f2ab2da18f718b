//! `oddity predict --model DIR <images or folders>... --out DIR [--fpr 0.01]`: scores images with
//! a trained, calibrated model folder (see [`crate::predict`]) and writes `predictions.csv`,
//! `predictions.json` and, for models with maps, `heatmaps/*.png` to `--out`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::kernels::Context;
use crate::predict::{collect_images, predict_images, ModelFiles, PredictOutputs, Predictor};

#[derive(Debug, Args, Clone, Serialize)]
pub struct PredictArgs {
    /// Model folder: checkpoint.safetensors, calibration.json and calibration_scores.json.
    #[arg(long)]
    pub model: PathBuf,
    /// Image files (PNG, JPEG) and folders (searched recursively).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Folder for predictions.csv, predictions.json and heatmaps/.
    #[arg(long)]
    pub out: PathBuf,
    /// Target false-positive rate on normal images: the decision threshold is the conservative
    /// (1 - fpr) quantile of the calibration split's normal scores.
    #[arg(long, default_value_t = 0.01)]
    pub fpr: f64,
    /// Images per batch.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Do not write heatmap overlays.
    #[arg(long)]
    pub no_heatmaps: bool,
}

pub fn run(args: &PredictArgs, out: &mut dyn Write) -> Result<()> {
    if args.batch == 0 {
        return Err(Error::InvalidArgument("--batch must be at least 1".into()));
    }
    let io = |e| Error::io("<stdout>", e);
    let images = collect_images(&args.inputs)?;
    ModelFiles::check(&args.model)?;
    if !(args.fpr > 0.0 && args.fpr < 1.0) {
        return Err(Error::InvalidArgument(format!("--fpr must be in (0, 1), got {}", args.fpr)));
    }
    let ctx = Context::new()?;
    writeln!(out, "adapter: {}", ctx.adapter_name()).map_err(io)?;
    let predictor = Predictor::load(&ctx, &args.model, args.fpr)?;
    writeln!(
        out,
        "{} on {} images; threshold {:.6} for FPR {} ({} calibration normal scores)",
        predictor.model.architecture,
        images.len(),
        predictor.threshold,
        args.fpr,
        predictor.calibration_scores.len()
    )
    .map_err(io)?;
    let outputs = PredictOutputs { dir: args.out.clone(), heatmaps: !args.no_heatmaps };
    let mut progress = std::io::stderr();
    let summary = predict_images(&predictor, &images, &outputs, args.batch, |done, total| {
        let _ = writeln!(progress, "predict: {done}/{total} images");
    })?;
    writeln!(
        out,
        "flagged {} of {} images ({:.2}%) at FPR {}; wrote {}",
        summary.flagged,
        summary.images,
        100.0 * summary.flagged as f64 / summary.images as f64,
        args.fpr,
        args.out.join("predictions.csv").display()
    )
    .map_err(io)?;
    Ok(())
}
