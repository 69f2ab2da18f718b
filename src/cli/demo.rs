//! `oddity demo`: the whole pipeline to a report, nothing to download. With no `--data` it writes
//! the procedural texture defect data set ([`crate::synth::textures`]) to `<out>/data`; with
//! `--data <mvtec-dir> --class NAME` it uses that category instead. Then it trains a map model
//! (`oddity train`'s code path), calibrates it post hoc on normal calibration images and
//! synthetic anomalies, image and pixel level ([`crate::experiment::calibrate_run`], as
//! `oddity calibrate`), scores the test split and writes `report.html`, `report.md`, the PNGs
//! and `results.json` (seed, config, adapter, metrics) into `--out`. The model folder
//! `<out>/model` is ready for `oddity predict` and `oddity report`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use serde::Serialize;

use crate::calibration::{HeadConfig, PixelFitConfig};
use crate::cli::report::{print_summary, write_results};
use crate::cli::train::{AnomalyArg, DataArg, TrainArgs};
use crate::data::split::{calibration_count_for, THESIS_CALIBRATION_FRACTION};
use crate::error::{Error, Result};
use crate::experiment::{calibrate_run, CalibrateOptions, CalibrationMethod};
use crate::kernels::Context;
use crate::report::{evaluate_model_dir, write_report, ReportOptions};
use crate::synth::textures::{write_texture_dataset, TextureDataset};
use crate::train::LossKind;

/// The category name of the generated data set.
pub const TEXTURE_CLASS: &str = "textures";

#[derive(Debug, Args, Clone, Serialize)]
pub struct DemoArgs {
    /// Seed of the generated data, the split, the initialisation, training and calibration.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// An MVTec-layout folder to use instead of generated textures (e.g. KolektorSDD).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The category inside --data (required with it).
    #[arg(long)]
    pub class: Option<String>,
    /// Input height = width (a multiple of 32 for ssim and unet).
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// The map model: unet (per-pixel logistic against synthetic anomalies; the default: on
    /// lavapipe it reaches image AUROC ~0.86 and pixel AUROC ~0.64 in 8 epochs), ssim (Bergmann
    /// autoencoder, slower to train) or fcdd.
    #[arg(long, value_enum, default_value_t = LossKind::Unet)]
    pub loss: LossKind,
    /// Generated normal training images (a quarter of them are the calibration split).
    #[arg(long, default_value_t = 128)]
    pub train_images: usize,
    /// Generated normal test images.
    #[arg(long, default_value_t = 40)]
    pub test_good: usize,
    /// Generated test images of each defect type (scratch, blob).
    #[arg(long, default_value_t = 20)]
    pub test_defects: usize,
    #[arg(long, default_value_t = 8)]
    pub epochs: usize,
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Image-level calibration (platt or beta; per-pixel calibration uses the same method).
    #[arg(long, value_enum, default_value_t = CalibrationMethod::Beta)]
    pub method: CalibrationMethod,
    /// Normal calibration images scored (augmented, repeating the split), and as many synthetic anomalies.
    #[arg(long, default_value_t = 512)]
    pub calibration_samples: usize,
    /// Of those, pixel maps per class for the per-pixel calibration.
    #[arg(long, default_value_t = 64)]
    pub pixel_samples: usize,
    /// Target false-positive rate of the decision threshold (chosen on normal calibration scores;
    /// it needs at least 1/fpr - 1 of them, and the calibration split is a quarter of
    /// --train-images: 32 by default, enough for 0.05).
    #[arg(long, default_value_t = 0.05)]
    pub fpr: f64,
    /// Most anomalous test images shown in the report.
    #[arg(long, default_value_t = 6)]
    pub top: usize,
    /// Folder for the report, results.json, the data (generated) and the model.
    #[arg(long, default_value = "oddity-demo")]
    pub out: PathBuf,
    /// Never draw progress bars (plain lines only).
    #[arg(long)]
    pub no_progress: bool,
}

impl DemoArgs {
    fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if self.batch < 2 {
            return bad(format!("--batch must be at least 2, got {}", self.batch));
        }
        if self.epochs == 0 || self.calibration_samples == 0 || self.train_images < 8 {
            return bad(format!(
                "--epochs and --calibration-samples must be at least 1 and --train-images at least 8, got {}, {} and {}",
                self.epochs, self.calibration_samples, self.train_images
            ));
        }
        if self.method == CalibrationMethod::Head {
            return bad("the demo calibrates with platt or beta (the report reads calibration.json); use --method beta".into());
        }
        if !(self.fpr > 0.0 && self.fpr < 1.0) {
            return bad(format!("--fpr must be in (0, 1), got {}", self.fpr));
        }
        // Fail before training when the generated calibration split cannot reach --fpr.
        let normals = calibration_count_for(self.train_images, THESIS_CALIBRATION_FRACTION);
        let needed = (1.0 / self.fpr - 1.0 - 1e-9).ceil() as usize;
        if self.data.is_none() && normals < needed {
            return bad(format!(
                "--fpr {} needs at least {needed} normal calibration images, but --train-images {} gives {normals} \
                 (a quarter); use a larger --fpr or more --train-images",
                self.fpr, self.train_images
            ));
        }
        match (&self.data, &self.class) {
            (Some(_), None) => bad("--data needs --class (the category folder inside it)".into()),
            (None, Some(c)) => bad(format!("--class {c} needs --data (without --data the demo generates its own textures)")),
            _ => Ok(()),
        }
    }
}

/// What `results.json` holds besides the report's numbers.
#[derive(Serialize)]
struct Run<'a> {
    command: &'static str,
    config: &'a DemoArgs,
    generated: Option<TextureDataset>,
    seconds: f64,
}

pub fn run(args: &DemoArgs, out: &mut dyn Write) -> Result<()> {
    args.check()?;
    let start = Instant::now();
    let io = |e| Error::io("<stdout>", e);
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    let (root, class, generated) = match (&args.data, &args.class) {
        (Some(dir), Some(class)) => (dir.clone(), class.clone(), None),
        _ => {
            let root = args.out.join("data");
            let spec = TextureDataset {
                size: args.size,
                train: args.train_images,
                test_good: args.test_good,
                test_defects: args.test_defects,
                seed: args.seed,
            };
            writeln!(
                out,
                "[1/4] generating textures with scratch and blob defects: {} train, {} normal + {} defective test images ({}x{}) into {}",
                spec.train,
                spec.test_good,
                2 * spec.test_defects,
                spec.size,
                spec.size,
                root.display()
            )
            .map_err(io)?;
            write_texture_dataset(&root, TEXTURE_CLASS, &spec)?;
            (root, TEXTURE_CLASS.to_string(), Some(spec))
        }
    };
    let model_dir = args.out.join("model");
    writeln!(out, "[2/4] training {} for {} epochs on {} ({class}) into {}", args.loss.name(), args.epochs, root.display(), model_dir.display())
        .map_err(io)?;
    let train = TrainArgs {
        loss: args.loss,
        data: DataArg::Mvtec(root.clone()),
        class: class.clone(),
        size: Some(args.size),
        fcdd_sigma: 4.0,
        // The generated gratings have one orientation; mirroring would make its mirror image normal too.
        no_hflip: generated.is_some(),
        anomalies: AnomalyArg::Spectral,
        epochs: Some(args.epochs),
        seed: args.seed,
        out: model_dir.clone(),
        resume: false,
        data_root: None,
        limit_train: None,
        limit_test: None,
        batch: args.batch,
        lr: args.lr,
        // Halve the step size for the last fifth of the epochs.
        milestones: Some(vec![(args.epochs - args.epochs / 5) as u64]),
        gamma: 0.5,
        weight_decay: 0.0,
        readback_every: 10,
        no_progress: args.no_progress,
        full_train: false,
        calibration_fraction: THESIS_CALIBRATION_FRACTION,
        backbone_weights: None,
    };
    crate::cli::train::run(&train, out)?;

    writeln!(out, "[3/4] calibrating ({}, image and pixel level) on normal calibration images and synthetic anomalies", args.method.name())
        .map_err(io)?;
    let ctx = Context::new()?;
    let opts = CalibrateOptions {
        method: args.method,
        anomalies: AnomalyArg::Spectral,
        samples: args.calibration_samples,
        pixel_samples: args.pixel_samples,
        seed: args.seed,
        head: HeadConfig::default(),
        pixel: PixelFitConfig { batch_size: 32, ..PixelFitConfig::default() },
        head_solver: Default::default(),
    };
    calibrate_run(&ctx, &model_dir, &model_dir, &opts, out)?;

    writeln!(out, "[4/4] evaluating on the test split and writing the report").map_err(io)?;
    let label = match &generated {
        Some(_) => format!("generated textures ({}x{}, seed {})", args.size, args.size, args.seed),
        None => format!("{} ({class})", root.display()),
    };
    let report_opts = ReportOptions { fpr: args.fpr, top: args.top, batch: 16, data: None, data_label: Some(label) };
    let data = evaluate_model_dir(&ctx, &model_dir, &report_opts, out)?;
    let written = write_report(&args.out, &data)?;
    let seconds = start.elapsed().as_secs_f64();
    let run = Run { command: "demo", config: args, generated, seconds };
    let results = write_results(&args.out, &data, &written, &run)?;
    print_summary(out, &written, &results)?;
    writeln!(out, "demo done in {seconds:.1} s").map_err(io)?;
    Ok(())
}
