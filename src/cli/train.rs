//! `oddity train`: one-vs-all training of a LeNet on Fashion-MNIST or CIFAR-10 with the SVDD,
//! HSC or logistic loss (thesis §4.1, §4.2), writing `checkpoint.safetensors` (after every
//! epoch; `--resume` continues from it) and `metrics.json` (image AUROC, seed, config) to
//! `--out`.
//!
//! Normal data: the class's training images, split 3:1 into training and calibration parts
//! (seeded); the network trains on the training part, whose z-score statistics normalise every
//! input. Test: the class's test images (normal) and every other class's (anomalous).
//! Supervised losses train on balanced batches: half normal images, half spectral images or
//! outlier-exposure images from a folder (`--anomalies oe:<dir>`).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::checkpoint::Checkpoint;
use crate::data::cifar::{cifar10, ClassSet};
use crate::data::split::DataSplit;
use crate::data::transforms::{Normalization, Pipeline};
use crate::data::{FashionMnist, Sample, FASHION_MNIST_DEFAULT_DIR};
use crate::error::{Error, Result};
use crate::kernels::Context;
use crate::synth::OutlierExposure;
use crate::train::{
    evaluate, fit, Anomalies, DatasetKind, FitOptions, LossKind, Model, PlannedBatches, StoredConfig, TrainConfig,
};

/// The checkpoint file name inside `--out`.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// The metrics file name inside `--out`.
pub const METRICS_FILE: &str = "metrics.json";

/// `--anomalies`: `spectral` or `oe:<dir>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum AnomalyArg {
    Spectral,
    OutlierExposure(PathBuf),
}

impl std::fmt::Display for AnomalyArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnomalyArg::Spectral => write!(f, "spectral"),
            AnomalyArg::OutlierExposure(dir) => write!(f, "oe:{}", dir.display()),
        }
    }
}

/// Parses `spectral` or `oe:<dir>`.
pub fn parse_anomalies(s: &str) -> std::result::Result<AnomalyArg, String> {
    if s == "spectral" {
        return Ok(AnomalyArg::Spectral);
    }
    match s.strip_prefix("oe:") {
        Some(dir) if !dir.is_empty() => Ok(AnomalyArg::OutlierExposure(PathBuf::from(dir))),
        Some(_) => Err("oe: needs a folder, e.g. oe:/data/cifar100/train".into()),
        None => Err(format!("'{s}' is neither 'spectral' nor 'oe:<dir>'")),
    }
}

#[derive(Debug, Args, Clone, Serialize)]
pub struct TrainArgs {
    /// The training loss.
    #[arg(long, value_enum)]
    pub loss: LossKind,
    /// The data set (one-vs-all).
    #[arg(long, value_enum)]
    pub data: DatasetKind,
    /// The normal class, e.g. `trouser` (Fashion-MNIST) or `cat` (CIFAR-10).
    #[arg(long)]
    pub class: String,
    /// Synthetic anomalies of the supervised losses: `spectral` or `oe:<dir>` (unused by svdd).
    #[arg(long, default_value = "spectral", value_parser = parse_anomalies)]
    pub anomalies: AnomalyArg,
    #[arg(long, default_value_t = 200)]
    pub epochs: usize,
    /// Seed of the split, initialisation, batch order, augmentation and anomalies.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Folder for checkpoint.safetensors and metrics.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue from the checkpoint in --out up to --epochs.
    #[arg(long)]
    pub resume: bool,
    /// Data folder (default: /usr/share/datasets/fashion-mnist for fmnist; required for cifar10:
    /// the JPEG layout with train/ and test/ class folders).
    #[arg(long)]
    pub data_root: Option<PathBuf>,
    /// Use only this many normal training images (a seeded subset; for quick runs).
    #[arg(long)]
    pub limit_train: Option<usize>,
    /// Use only this many test images (a seeded subset; for quick runs).
    #[arg(long)]
    pub limit_test: Option<usize>,
    /// Images per batch (half anomalies for the supervised losses).
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Adam's initial learning rate.
    #[arg(long, default_value_t = 1e-4)]
    pub lr: f64,
    /// Epochs at which the learning rate is multiplied by --gamma (comma separated).
    #[arg(long, value_delimiter = ',', default_values_t = [100u64, 150])]
    pub milestones: Vec<u64>,
    #[arg(long, default_value_t = 0.1)]
    pub gamma: f64,
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f32,
    /// Steps between loss readbacks.
    #[arg(long, default_value_t = 10)]
    pub readback_every: usize,
    /// Never draw the progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

impl TrainArgs {
    pub fn config(&self) -> TrainConfig {
        TrainConfig {
            loss: self.loss,
            epochs: self.epochs,
            batch_size: self.batch,
            lr: self.lr,
            milestones: self.milestones.clone(),
            gamma: self.gamma,
            weight_decay: self.weight_decay,
            seed: self.seed,
            readback_every: self.readback_every,
        }
    }

    /// The data side of the run, stored in the checkpoint; a resume must match it.
    fn run_info(&self) -> serde_json::Value {
        serde_json::json!({
            "data": self.data.name(),
            "class": self.class,
            "anomalies": if self.loss.supervised() { self.anomalies.to_string() } else { "none".into() },
            "limit_train": self.limit_train,
            "limit_test": self.limit_test,
        })
    }
}

#[derive(Serialize)]
struct Metrics<'a> {
    auroc: f64,
    seed: u64,
    loss: &'static str,
    data: &'static str,
    class: &'a str,
    anomalies: String,
    architecture: &'a str,
    adapter: String,
    epochs_done: usize,
    epoch_losses: Vec<f32>,
    train_images: usize,
    test_images: usize,
    test_anomalies: usize,
    images_per_second: f64,
    config: &'a TrainConfig,
    args: &'a TrainArgs,
}

fn class_sets(args: &TrainArgs) -> Result<(ClassSet, ClassSet)> {
    match args.data {
        DatasetKind::Fmnist => {
            let root = args.data_root.clone().unwrap_or_else(|| PathBuf::from(FASHION_MNIST_DEFAULT_DIR));
            let f = FashionMnist::load(&root)?;
            Ok((f.train, f.test))
        }
        DatasetKind::Cifar10 => {
            let root = args.data_root.as_ref().ok_or_else(|| {
                Error::InvalidArgument("--data cifar10 needs --data-root (a folder with train/ and test/ class folders)".into())
            })?;
            cifar10(root)
        }
    }
}

/// A seeded subset of `n` samples (all of them when `limit` is `None` or larger), kept in their
/// original order.
fn limit(samples: Vec<Sample>, limit: Option<usize>, seed: u64, what: &str) -> Result<Vec<Sample>> {
    let Some(n) = limit else { return Ok(samples) };
    if n == 0 {
        return Err(Error::InvalidArgument(format!("--limit-{what} must be at least 1")));
    }
    if n >= samples.len() {
        return Ok(samples);
    }
    let mut idx: Vec<usize> = (0..samples.len()).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut keep = idx[..n].to_vec();
    keep.sort_unstable();
    Ok(keep.into_iter().map(|i| samples[i].clone()).collect())
}

fn check_args(args: &TrainArgs) -> Result<()> {
    args.config().validate()?;
    if args.resume && !args.out.join(CHECKPOINT_FILE).is_file() {
        return Err(Error::MissingFile {
            path: args.out.join(CHECKPOINT_FILE),
            what: "the checkpoint --resume continues from".into(),
        });
    }
    if let AnomalyArg::OutlierExposure(dir) = &args.anomalies {
        if args.loss.supervised() && !dir.is_dir() {
            return Err(Error::MissingFolder { path: dir.clone() });
        }
    }
    Ok(())
}

pub fn run(args: &TrainArgs, out: &mut dyn Write) -> Result<()> {
    check_args(args)?;
    let io = |e| Error::io("<stdout>", e);
    let (train_set, test_set) = class_sets(args)?;
    let split = DataSplit::one_vs_all(&train_set, &test_set, &args.class, args.seed)?;
    let train = limit(split.train, args.limit_train, args.seed ^ 0x74_7261_696e, "train")?;
    let test = limit(split.test, args.limit_test, args.seed ^ 0x7465_7374, "test")?;

    let ctx = Context::new()?;
    writeln!(out, "adapter: {}", ctx.adapter_name()).map_err(io)?;
    let ck_path = args.out.join(CHECKPOINT_FILE);
    let config = args.config();
    let (model, resume) = if args.resume {
        let ck = Checkpoint::load(&ck_path)?;
        let stored = StoredConfig::from_checkpoint(&ck, &ck_path)?;
        writeln!(out, "resuming {} after epoch {}", ck_path.display(), stored.epochs_done).map_err(io)?;
        (Model::from_checkpoint(&ctx, &ck, &ck_path)?, Some(ck))
    } else {
        let normalization = Normalization::fit_samples(&train, &Pipeline::default())?;
        (Model::new(&ctx, args.data, args.loss, args.seed, normalization, &train)?, None)
    };
    let anomalies = match (&args.anomalies, args.loss.supervised()) {
        (_, false) => None,
        (AnomalyArg::Spectral, true) => Some(Anomalies::Spectral),
        (AnomalyArg::OutlierExposure(dir), true) => {
            Some(Anomalies::OutlierExposure(OutlierExposure::from_folder(dir)?.with_pipeline(Pipeline::augment_only(true))))
        }
    };
    // Augmentation of §4.2.1 (jitter, small noise, horizontal flip), then the z-score.
    let pipeline = Pipeline::augment_only(true).with_normalization(model.normalization.clone());
    let mut batches = PlannedBatches::new(train.clone(), pipeline, args.batch, args.seed, anomalies)?;
    writeln!(
        out,
        "{} {} one-vs-all, normal class '{}': {} training images, {} test images; {} steps per epoch",
        model.architecture,
        args.loss.name(),
        args.class,
        train.len(),
        test.len(),
        crate::train::EpochBatches::steps_per_epoch(&batches)
    )
    .map_err(io)?;
    let opts = FitOptions { checkpoint: ck_path.clone(), run: args.run_info(), progress: !args.no_progress };
    let summary = fit(&model, &mut batches, &config, resume.as_ref(), &opts, out)?;

    let ev = evaluate(&ctx, &model, &test, 256)?;
    let auroc = ev.auroc()?;
    writeln!(out, "test AUROC ({} vs the other classes): {auroc:.4}", args.class).map_err(io)?;
    let metrics = Metrics {
        auroc,
        seed: args.seed,
        loss: args.loss.name(),
        data: args.data.name(),
        class: &args.class,
        anomalies: if args.loss.supervised() { args.anomalies.to_string() } else { "none".into() },
        architecture: &model.architecture,
        adapter: ctx.adapter_name().to_string(),
        epochs_done: summary.epochs_done,
        epoch_losses: summary.epoch_losses,
        train_images: train.len(),
        test_images: test.len(),
        test_anomalies: ev.labels.iter().filter(|&&l| l == 1).count(),
        images_per_second: summary.images_per_second,
        config: &config,
        args,
    };
    write_json(&args.out.join(METRICS_FILE), &metrics)?;
    writeln!(out, "wrote {} and {}", ck_path.display(), args.out.join(METRICS_FILE).display()).map_err(io)?;
    Ok(())
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let json = serde_json::to_string_pretty(value).map_err(|e| Error::InvalidArgument(format!("metrics: {e}")))?;
    std::fs::write(path, json).map_err(|e| Error::io(path, e))
}
