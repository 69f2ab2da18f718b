//! `oddity experiment` (thesis §4.2–4.3): for every class, seed and loss, train a base model on
//! the 3:1 split (and, for the `full` method, one on the whole normal training data), calibrate
//! it with every requested method and evaluate each cell. `results.json` is the record: it is
//! rewritten atomically after every cell, and a rerun skips the cells it already holds (and the
//! trainings whose `metrics.json` exists).
//!
//! Folder layout under `--out`: `models/<class>/<loss>/seed<S>/{split,full}/` (the `oddity
//! train` output), `.../split/calibrations/<method>/` (the calibration files), `results.json`,
//! `results.md`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::calibration::{write_atomically, HeadConfig, PixelFitConfig};
use crate::cli::train::{run as train_run, AnomalyArg, DataArg, TrainArgs, CHECKPOINT_FILE, METRICS_FILE};
use crate::error::{Error, Result};
use crate::kernels::Context;
use crate::train::{load_model, Anomalies, DatasetKind, LossKind};

use super::calibrate::{CalibrationMethod, HeadSolver};
use super::evaluate::{evaluate_cell, CellMetrics, EvalSettings};
use super::{anomaly_sources, calibrate_run, table, CalibrateOptions};

pub const RESULTS_FILE: &str = "results.json";
pub const TABLE_FILE: &str = "results.md";

/// A column of the thesis tables: the fully trained model, or a calibration method with its
/// anomaly source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellMethod {
    Full,
    Calibrated { method: CalibrationMethod, oe: bool },
}

impl CellMethod {
    pub fn name(self) -> String {
        match self {
            CellMethod::Full => "full".into(),
            CellMethod::Calibrated { method, oe } => format!("{}-{}", method.name(), if oe { "oe" } else { "spectral" }),
        }
    }

    /// Parses `full` or `<platt|beta|head>-<oe|spectral>`.
    pub fn parse(s: &str) -> std::result::Result<CellMethod, String> {
        if s == "full" {
            return Ok(CellMethod::Full);
        }
        let bad = || format!("unknown method '{s}': expected full or <platt|beta|head>-<oe|spectral>, e.g. platt-oe");
        let (m, src) = s.split_once('-').ok_or_else(bad)?;
        let method = match m {
            "platt" => CalibrationMethod::Platt,
            "beta" => CalibrationMethod::Beta,
            "head" => CalibrationMethod::Head,
            _ => return Err(bad()),
        };
        let oe = match src {
            "oe" => true,
            "spectral" => false,
            _ => return Err(bad()),
        };
        Ok(CellMethod::Calibrated { method, oe })
    }
}

/// Everything a run needs.
#[derive(Clone, Debug, Serialize)]
pub struct ExperimentConfig {
    pub dataset: DataArg,
    pub data_root: Option<PathBuf>,
    pub losses: Vec<LossKind>,
    #[serde(serialize_with = "method_names")]
    pub methods: Vec<CellMethod>,
    /// Seeds 0..seeds.
    pub seeds: u64,
    pub classes: Vec<String>,
    pub epochs: usize,
    pub out: PathBuf,
    pub oe_dir: Option<PathBuf>,
    pub size: Option<usize>,
    pub limit_train: Option<usize>,
    pub limit_test: Option<usize>,
    pub batch: usize,
    /// Adam's learning rate of the base models (thesis: 1e-4).
    pub lr: f64,
    /// Calibration images scored per class (and as many anomalies).
    pub samples: usize,
    pub pixel_samples: usize,
    pub head_steps: usize,
    pub head_solver: HeadSolver,
    pub pixel_epochs: usize,
    pub epsilon: f32,
    pub eval_batch: usize,
}

fn method_names<S: serde::Serializer>(m: &[CellMethod], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_seq(m.iter().map(|m| m.name()))
}

/// One finished cell of `results.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CellRecord {
    pub dataset: String,
    pub class: String,
    pub loss: String,
    pub method: String,
    pub seed: u64,
    pub metrics: CellMetrics,
    /// Seconds the cell took (calibration and evaluation; training is shared).
    pub seconds: f64,
    /// The experiment's settings when the cell ran.
    pub config: serde_json::Value,
    /// The calibration fit's warnings (a Platt slope < 0 reverses the ranking; Beta collapsed
    /// to a constant); empty when nothing went wrong.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl CellRecord {
    fn key(&self) -> (String, String, String, String, u64) {
        (self.dataset.clone(), self.class.clone(), self.loss.clone(), self.method.clone(), self.seed)
    }
}

/// `results.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Results {
    pub cells: Vec<CellRecord>,
}

impl Results {
    /// Reads `path`, or an empty record when it does not exist.
    pub fn load(path: &Path) -> Result<Results> {
        if !path.exists() {
            return Ok(Results::default());
        }
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::InvalidArgument(format!("{} is not an experiment results file: {e}", path.display())))
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).map_err(|e| Error::InvalidArgument(format!("results: {e}")))?;
        write_atomically(path, json.as_bytes())
    }
}

/// Refuses outlier exposure from CIFAR-10 images on CIFAR-10 (they are the test anomalies):
/// an OE folder inside the CIFAR-10 root.
pub fn check_oe_source(dataset: &DataArg, data_root: Option<&Path>, oe_dir: Option<&Path>) -> Result<()> {
    let (DataArg::Lenet(DatasetKind::Cifar10), Some(root), Some(oe)) = (dataset, data_root, oe_dir) else {
        return Ok(());
    };
    let canon = |p: &Path| std::fs::canonicalize(p).map_err(|e| Error::io(p, e));
    let (root_c, oe_c) = (canon(root)?, canon(oe)?);
    if oe_c.starts_with(&root_c) || root_c.starts_with(&oe_c) {
        return Err(Error::InvalidArgument(format!(
            "--oe-dir {} lies inside (or holds) the CIFAR-10 root {}: CIFAR-10 images are the test anomalies of \
             CIFAR-10 one-vs-all and must never be outlier exposure; use spectral methods or another image folder",
            oe.display(),
            root.display()
        )));
    }
    Ok(())
}

fn io_err(e: std::io::Error) -> Error {
    Error::io("<log>", e)
}

impl ExperimentConfig {
    fn validate(&self) -> Result<()> {
        if self.losses.is_empty() || self.methods.is_empty() || self.classes.is_empty() || self.seeds == 0 {
            return Err(Error::InvalidArgument(
                "an experiment needs at least one loss, method, class and seed".into(),
            ));
        }
        let needs_oe = self.methods.iter().any(|m| matches!(m, CellMethod::Calibrated { oe: true, .. }));
        match (&self.oe_dir, needs_oe) {
            (None, true) => {
                return Err(Error::InvalidArgument(
                    "the *-oe methods need --oe-dir (for fmnist: e.g. an extracted CIFAR-10 train folder; \
                     for cifar10: any image folder that is not CIFAR-10)"
                        .into(),
                ))
            }
            (Some(dir), _) if !dir.is_dir() => return Err(Error::MissingFolder { path: dir.clone() }),
            _ => {}
        }
        check_oe_source(&self.dataset, self.data_root.as_deref(), self.oe_dir.as_deref())
    }

    fn train_args(&self, loss: LossKind, class: &str, seed: u64, out: PathBuf, full: bool) -> TrainArgs {
        TrainArgs {
            loss,
            data: self.dataset.clone(),
            class: class.to_string(),
            size: self.size,
            fcdd_sigma: crate::kernels::gaussian_upsample::THESIS_SIGMA,
            no_hflip: false,
            // Supervised base models train with outlier exposure when a folder is given.
            anomalies: match &self.oe_dir {
                Some(d) => AnomalyArg::OutlierExposure(d.clone()),
                None => AnomalyArg::Spectral,
            },
            epochs: Some(self.epochs),
            seed,
            out,
            resume: false,
            data_root: self.data_root.clone(),
            limit_train: self.limit_train,
            limit_test: self.limit_test,
            batch: self.batch,
            lr: self.lr,
            milestones: None,
            gamma: 0.1,
            weight_decay: 0.0,
            readback_every: 10,
            no_progress: true,
            full_train: full,
            calibration_fraction: crate::data::split::THESIS_CALIBRATION_FRACTION,
            backbone_weights: None,
        }
    }
}

/// Trains into `dir` unless a finished training (its metrics.json) is there.
fn ensure_trained(args: &TrainArgs, log: &mut dyn Write) -> Result<()> {
    if args.out.join(METRICS_FILE).is_file() && args.out.join(CHECKPOINT_FILE).is_file() {
        writeln!(log, "reusing trained model {}", args.out.display()).map_err(io_err)?;
        return Ok(());
    }
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    train_run(args, log)
}

/// Runs every cell of `cfg` not yet in `results.json`; returns the record.
pub fn run_experiment(cfg: &ExperimentConfig, log: &mut dyn Write) -> Result<Results> {
    cfg.validate()?;
    std::fs::create_dir_all(&cfg.out).map_err(|e| Error::io(&cfg.out, e))?;
    let results_path = cfg.out.join(RESULTS_FILE);
    let mut results = Results::load(&results_path)?;
    let ctx = Context::new()?;
    let config_json = serde_json::to_value(cfg).map_err(|e| Error::InvalidArgument(format!("config: {e}")))?;
    let dataset = cfg.dataset.to_string();
    for class in &cfg.classes {
        for seed in 0..cfg.seeds {
            for &loss in &cfg.losses {
                let base = cfg.out.join("models").join(class).join(loss.name()).join(format!("seed{seed}"));
                for &method in &cfg.methods {
                    let record = CellRecord {
                        dataset: dataset.clone(),
                        class: class.clone(),
                        loss: loss.name().into(),
                        method: method.name(),
                        seed,
                        metrics: placeholder_metrics(),
                        seconds: 0.0,
                        config: config_json.clone(),
                        warnings: Vec::new(),
                    };
                    if results.cells.iter().any(|c| c.key() == record.key()) {
                        writeln!(log, "skipping finished cell {class} {} {} seed {seed}", loss.name(), method.name())
                            .map_err(io_err)?;
                        continue;
                    }
                    writeln!(log, "cell {class} {} {} seed {seed}", loss.name(), method.name()).map_err(io_err)?;
                    let start = Instant::now();
                    let (metrics, warnings) = run_cell(&ctx, cfg, loss, class, seed, method, &base, log)?;
                    for w in &warnings {
                        eprintln!("warning: cell {class} {} {} seed {seed}: {w}", loss.name(), method.name());
                    }
                    writeln!(
                        log,
                        "  AUROC {:.4} (perturbed {:.4}), ECE {:.4}, MCE {:.4}",
                        metrics.auroc, metrics.auroc_perturbed, metrics.ece, metrics.mce
                    )
                    .map_err(io_err)?;
                    results.cells.push(CellRecord { metrics, warnings, seconds: start.elapsed().as_secs_f64(), ..record });
                    results.save(&results_path)?;
                }
            }
        }
    }
    let md = table::markdown(&results, &cfg.losses, &cfg.methods.iter().map(|m| m.name()).collect::<Vec<_>>(), &cfg.classes);
    let md_path = cfg.out.join(TABLE_FILE);
    write_atomically(&md_path, md.as_bytes())?;
    writeln!(log, "wrote {} and {}", results_path.display(), md_path.display()).map_err(io_err)?;
    Ok(results)
}

fn placeholder_metrics() -> CellMetrics {
    CellMetrics {
        auroc: f64::NAN,
        auroc_perturbed: f64::NAN,
        ece: f64::NAN,
        mce: f64::NAN,
        pixel_auroc: None,
        aupro: None,
        pixel_auroc_perturbed: None,
        aupro_perturbed: None,
        test_images: 0,
        ece_samples: 0,
        ece_anomalies: String::new(),
    }
}

#[allow(clippy::too_many_arguments)]
fn run_cell(
    ctx: &Context,
    cfg: &ExperimentConfig,
    loss: LossKind,
    class: &str,
    seed: u64,
    method: CellMethod,
    base: &Path,
    log: &mut dyn Write,
) -> Result<(CellMetrics, Vec<String>)> {
    let eval = EvalSettings { epsilon: cfg.epsilon, batch_size: cfg.eval_batch, seed: seed ^ 0x6576_616c };
    match method {
        CellMethod::Full => {
            let args = cfg.train_args(loss, class, seed, base.join("full"), true);
            ensure_trained(&args, log)?;
            let (model, _) = load_model(ctx, &args.out.join(CHECKPOINT_FILE))?;
            let test = crate::cli::train::run_data(&args)?.test;
            // The fully trained model's own estimates. ECE / MCE need synthetic anomalies used
            // neither in training nor in calibration (thesis §4.2.2). Fresh spectral images meet
            // that for every loss; the outlier-exposure folder does not: the supervised losses
            // trained on all of it. So the full column is always measured on spectral images.
            let mut metrics = evaluate_cell(&model, None, &test, &Anomalies::Spectral, eval)?;
            metrics.ece_anomalies = "spectral".into();
            Ok((metrics, Vec::new()))
        }
        CellMethod::Calibrated { method: m, oe } => {
            let args = cfg.train_args(loss, class, seed, base.join("split"), false);
            ensure_trained(&args, log)?;
            let anomalies = match (oe, &cfg.oe_dir) {
                (true, Some(d)) => AnomalyArg::OutlierExposure(d.clone()),
                _ => AnomalyArg::Spectral,
            };
            let opts = CalibrateOptions {
                method: m,
                anomalies: anomalies.clone(),
                samples: cfg.samples,
                pixel_samples: cfg.pixel_samples,
                seed,
                head: HeadConfig { steps: cfg.head_steps, ..HeadConfig::default() },
                head_solver: cfg.head_solver,
                pixel: PixelFitConfig { epochs: cfg.pixel_epochs, ..PixelFitConfig::default() },
            };
            let out_dir = args.out.join("calibrations").join(method.name());
            let run = calibrate_run(ctx, &args.out, &out_dir, &opts, log)?;
            let (_, eval_anomalies) = anomaly_sources(&anomalies)?;
            // ECE / MCE on anomalies of the calibration's kind that it never saw: the held-out
            // evaluation part of the outlier-exposure folder, or fresh spectral images (thesis §4.2.2).
            let mut metrics = evaluate_cell(&run.model, Some(&run.calibration), &run.test, &eval_anomalies, eval)?;
            metrics.ece_anomalies = if oe { "oe-evaluation-part" } else { "spectral" }.into();
            Ok((metrics, run.calibration.warnings()))
        }
    }
}
