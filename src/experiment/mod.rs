//! Calibration of trained models and the experiment runner of the thesis (§4.2–4.3).
//!
//! - [`calibrate`]: score the calibration split and synthetic anomalies, fit Platt, Beta or the
//!   calibration head (plus per-pixel maps), write the files `oddity predict` reads.
//! - [`evaluate`]: AUROC unperturbed and perturbed, pixel AUROC / AUPRO, ECE / MCE of one cell.
//! - [`runner`]: `oddity experiment`: trains, calibrates and evaluates every cell, resumable.
//! - [`table`]: the markdown tables laid out like thesis tables 4.1–4.3.

pub mod calibrate;
pub mod evaluate;
pub mod runner;
pub mod table;

use std::io::Write;
use std::path::Path;

use crate::calibration::{HeadConfig, PixelFitConfig};
use crate::cli::train::{run_data, AnomalyArg, TrainArgs, CHECKPOINT_FILE};
use crate::data::transforms::Pipeline;
use crate::data::Sample;
use crate::error::{Error, Result};
use crate::kernels::Context;
use crate::synth::{OePart, OutlierExposure};
use crate::train::{evaluate, load_model, Anomalies, Model};

pub use calibrate::{
    calibration_samples, fit_calibration, save_calibration, Calibration, CalibrationMethod, CalibrationSamples, FitSettings,
    Head, HeadKind, HeadSolver, SampleOptions, ScoresFile, CALIBRATION_FILE, HEAD_FILE, PIXEL_CALIBRATION_FILE, SCORES_FILE,
};
pub use evaluate::{evaluate_cell, CellMetrics, EvalSettings};

/// The anomalies a calibration is fitted on and those its ECE/MCE are measured on: for outlier
/// exposure the calibration and evaluation parts of the folder (disjoint from each other and from
/// the part `oddity train` used, [`OePart`]); spectral images are fresh draws from different seeds.
pub fn anomaly_sources(arg: &AnomalyArg) -> Result<(Anomalies, Anomalies)> {
    match arg {
        AnomalyArg::Spectral => Ok((Anomalies::Spectral, Anomalies::Spectral)),
        AnomalyArg::OutlierExposure(dir) => {
            let oe = OutlierExposure::from_folder(dir)?.with_pipeline(Pipeline::augment_only(true));
            Ok((
                Anomalies::OutlierExposure(oe.part(dir, OePart::Calibration)?),
                Anomalies::OutlierExposure(oe.part(dir, OePart::Evaluation)?),
            ))
        }
    }
}

/// Settings of [`calibrate_run`].
#[derive(Clone, Debug)]
pub struct CalibrateOptions {
    pub method: CalibrationMethod,
    pub anomalies: AnomalyArg,
    /// Normal calibration images to score, and as many anomalies (thesis: 10,000).
    pub samples: usize,
    /// Of those, how many pixel maps (each class) the per-pixel fit uses (memory: maps are kept).
    pub pixel_samples: usize,
    pub seed: u64,
    pub head: HeadConfig,
    /// How the head's linear layer is fitted (default: L-BFGS on the frozen features).
    pub head_solver: HeadSolver,
    pub pixel: PixelFitConfig,
}

/// A calibrated run: the model (with its head, if any), how it was trained, the split.
pub struct CalibratedRun {
    pub model: Model,
    pub args: TrainArgs,
    pub calibration: Calibration,
    pub samples: CalibrationSamples,
    pub test: Vec<Sample>,
    /// Files written into the run's folder.
    pub written: Vec<String>,
}

/// Loads the model trained into `dir` by `oddity train`, rebuilds its calibration split from
/// the stored run info, fits `opts.method` and writes the calibration files into `out_dir`
/// (the model's folder for `oddity calibrate`).
pub fn calibrate_run(
    ctx: &Context,
    dir: &Path,
    out_dir: &Path,
    opts: &CalibrateOptions,
    log: &mut dyn Write,
) -> Result<CalibratedRun> {
    let ck = dir.join(CHECKPOINT_FILE);
    if !ck.is_file() {
        return Err(Error::MissingFile { path: ck, what: "the trained model (oddity train --out DIR)".into() });
    }
    let (model, stored) = load_model(ctx, &ck)?;
    let args = TrainArgs::from_stored(&stored, dir)?;
    let data = run_data(&args)?;
    let (anomalies, _) = anomaly_sources(&opts.anomalies)?;
    let sample_opts = SampleOptions {
        count: opts.samples,
        seed: opts.seed,
        keep_inputs: opts.method == CalibrationMethod::Head,
        pixel_count: if opts.method == CalibrationMethod::Head { 0 } else { opts.pixel_samples },
    };
    let io = |e| Error::io("<log>", e);
    writeln!(
        log,
        "calibrating {} ({} on {}, class {}) with {} on {} normal calibration images + {} anomalies ({}), seed {}",
        dir.display(),
        args.loss.name(),
        args.data,
        args.class,
        opts.method.name(),
        opts.samples,
        opts.samples,
        opts.anomalies,
        opts.seed
    )
    .map_err(io)?;
    let samples = calibration_samples(&model, &data.calibration, &data.augment, &anomalies, sample_opts)?;
    let settings = FitSettings {
        head: HeadConfig { seed: opts.seed, ..opts.head },
        head_solver: opts.head_solver,
        pixel: PixelFitConfig { seed: opts.seed, ..opts.pixel },
    };
    let calibration = fit_calibration(&model, opts.method, &samples, settings)?;
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    // Conformal p-values and FPR thresholds (`oddity predict`) need normal scores exchangeable
    // with test normals: the calibration images as they are, once each, not augmented copies.
    let held_out = evaluate(ctx, &model, &data.calibration, 32)?.scores;
    writeln!(log, "{} calibration normal scores (unaugmented) for p-values and thresholds", held_out.len()).map_err(io)?;
    let written = save_calibration(out_dir, &model, &calibration, &held_out, opts.seed)?;
    if let Some(c) = &calibration.calibrator {
        writeln!(log, "fitted {c}").map_err(io)?;
    }
    for w in calibration.warnings() {
        writeln!(log, "warning: {w}").map_err(io)?;
    }
    if let Some(f) = &calibration.head_fit {
        writeln!(
            log,
            "calibration head (L-BFGS on frozen features): loss {:.4} after {} iterations, converged {}",
            f.loss, f.iterations, f.converged
        )
        .map_err(io)?;
    } else if let (Some(first), Some(last)) = (calibration.losses.first(), calibration.losses.last()) {
        writeln!(log, "calibration loss {first:.4} -> {last:.4} over {} steps/epochs", calibration.losses.len()).map_err(io)?;
    }
    writeln!(log, "wrote {} into {}", written.join(", "), out_dir.display()).map_err(io)?;
    Ok(CalibratedRun { model, args, calibration, samples, test: data.test, written })
}
