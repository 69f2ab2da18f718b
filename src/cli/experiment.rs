//! `oddity experiment`: the thesis's experiment grid (§4.2–4.3) — base models per loss, class
//! and seed, every calibration method, AUROC (unperturbed and perturbed), pixel AUROC / AUPRO,
//! ECE / MCE; `results.json` and `results.md` in `--out`. A rerun skips finished cells. See
//! [`crate::experiment::runner`].
//!
//! Outlier exposure (`*-oe` methods, and the supervised losses' training) comes from `--oe-dir`:
//! for fmnist e.g. an extracted CIFAR-10 train folder (images are made grayscale and resized to
//! 28x28); for cifar10 any folder that is not CIFAR-10 — a folder inside `--data-root` is refused.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use crate::cli::train::{parse_data, DataArg};
use crate::error::Result;
use crate::experiment::HeadSolver;
use crate::experiment::runner::{run_experiment, CellMethod, ExperimentConfig};
use crate::train::LossKind;

#[derive(Debug, Args, Clone)]
pub struct ExperimentArgs {
    /// `fmnist`, `cifar10` or an MVTec-layout folder.
    #[arg(long, value_parser = parse_data)]
    pub dataset: DataArg,
    /// Comma separated losses.
    #[arg(long, value_delimiter = ',', value_enum, default_value = "svdd,hsc,logistic,ssim")]
    pub losses: Vec<LossKind>,
    /// Comma separated: full, platt-oe, platt-spectral, beta-oe, beta-spectral, head-oe, head-spectral.
    #[arg(long, value_delimiter = ',', value_parser = CellMethod::parse,
          default_value = "full,platt-oe,platt-spectral,beta-oe,beta-spectral,head-oe,head-spectral")]
    pub methods: Vec<CellMethod>,
    /// Number of seeds (0..N).
    #[arg(long, default_value_t = 1)]
    pub seeds: u64,
    /// Comma separated normal classes (or MVTec categories).
    #[arg(long, value_delimiter = ',', required = true)]
    pub classes: Vec<String>,
    #[arg(long, default_value_t = 200)]
    pub epochs: usize,
    #[arg(long)]
    pub out: PathBuf,
    /// Outlier-exposure images (see the module docs); needed by the *-oe methods.
    #[arg(long)]
    pub oe_dir: Option<PathBuf>,
    /// Data folder (default for fmnist: /usr/share/datasets/fashion-mnist; required for cifar10).
    #[arg(long)]
    pub data_root: Option<PathBuf>,
    /// Input size for MVTec-layout data.
    #[arg(long)]
    pub size: Option<usize>,
    #[arg(long)]
    pub limit_train: Option<usize>,
    #[arg(long)]
    pub limit_test: Option<usize>,
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Adam's learning rate of the base models (thesis: 1e-4; reduced-epoch runs may want 1e-3).
    #[arg(long, default_value_t = 1e-4)]
    pub lr: f64,
    /// Calibration images scored per model (and as many anomalies; thesis: 10,000).
    #[arg(long, default_value_t = 10_000)]
    pub samples: usize,
    #[arg(long, default_value_t = 1000)]
    pub pixel_samples: usize,
    /// Adam steps of the calibration head when `--head-solver adam`.
    #[arg(long, default_value_t = 1000)]
    pub head_steps: usize,
    /// `lbfgs`: fit the head's linear layer on the frozen features to the logistic loss's
    /// optimum; `adam`: Adam on balanced batches through the network (`--head-steps`).
    #[arg(long, value_enum, default_value = "lbfgs")]
    pub head_solver: HeadSolver,
    #[arg(long, default_value_t = 10)]
    pub pixel_epochs: usize,
    /// Perturbation step (thesis: 1.4e-3, normalised input space).
    #[arg(long, default_value_t = crate::calibration::DEFAULT_EPSILON)]
    pub epsilon: f32,
    #[arg(long, default_value_t = 64)]
    pub eval_batch: usize,
}

pub fn run(args: &ExperimentArgs, out: &mut dyn Write) -> Result<()> {
    let cfg = ExperimentConfig {
        dataset: args.dataset.clone(),
        data_root: args.data_root.clone(),
        losses: args.losses.clone(),
        methods: args.methods.clone(),
        seeds: args.seeds,
        classes: args.classes.clone(),
        epochs: args.epochs,
        out: args.out.clone(),
        oe_dir: args.oe_dir.clone(),
        size: args.size,
        limit_train: args.limit_train,
        limit_test: args.limit_test,
        batch: args.batch,
        lr: args.lr,
        samples: args.samples,
        pixel_samples: args.pixel_samples,
        head_steps: args.head_steps,
        head_solver: args.head_solver,
        pixel_epochs: args.pixel_epochs,
        epsilon: args.epsilon,
        eval_batch: args.eval_batch,
    };
    run_experiment(&cfg, out)?;
    Ok(())
}
