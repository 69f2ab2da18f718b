//! `oddity train`: training of the thesis's base models (§4.1, §4.2), writing
//! `checkpoint.safetensors` (after every epoch; `--resume` continues from it) and `metrics.json`
//! (image AUROC; pixel AUROC and AUPRO for models with maps on data with masks; seed, config) to
//! `--out`.
//!
//! Data (`--data`):
//! - `fmnist` / `cifar10`, one-vs-all: normal data is the class's training images; test is the
//!   class's test images (normal) and every other class's (anomalous). Networks: the LeNets
//!   (svdd, hsc, logistic), the data set's SSIM autoencoder on grayscale images (ssim), FCDD's
//!   `FCDD_CNN28_W` / `FCDD_CNN32_LW3K` (fcdd), a 32x32 U-Net (unet, CIFAR-10 only). Defaults:
//!   200 epochs, milestones 100 and 150.
//! - a folder in the MVTec AD layout with `--class <category>` (e.g. KolektorSDD's `kolektor`):
//!   normal data is `train/good`; test is `test/*` with its masks. Networks: the Bergmann
//!   autoencoder on grayscale (ssim, `--size` default 256), the U-Net (unet, default 256, the
//!   data's channels), FCDD on VGG11-BN features (fcdd, default 224, RGB). Training images are
//!   resized to `--size` x 8/7 and randomly cropped to `--size`; test images are resized.
//!   Defaults: 300 epochs, milestones 200 and 250.
//!
//! The normal training data is split 3:1 into training and calibration parts (seeded); the
//! network trains on the training part, whose z-score statistics normalise every input.
//! Supervised losses (hsc, logistic, fcdd, unet) train on balanced batches: half normal images,
//! half spectral images or outlier-exposure images from a folder (`--anomalies oe:<dir>`); the
//! U-Net's pixel labels are 0 on normal images and 1 on every pixel of a synthetic anomaly
//! (thesis §4.2.1).
//!
//! `--backbone-weights FILE` (fcdd on MVTec-layout data, the VGG11-BN network): torchvision's
//! ImageNet VGG11-BN weights as safetensors (`vgg11_bn(weights="DEFAULT").state_dict()` saved
//! with `safetensors.torch.save_file`) start the network, and its first 15 modules stay frozen
//! (FCDD). The file and its CRC-32 go into the checkpoint's run info and metrics.json; `--resume`
//! freezes the same layers again (the flag may be left out then, or must name the same content).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::checkpoint::Checkpoint;
use crate::data::cifar::{cifar10, ClassSet};
use crate::data::mvtec::list_categories;
use crate::data::split::{check_calibration_fraction, DataSplit, THESIS_CALIBRATION_FRACTION};
use crate::data::transforms::{ChannelMode, Normalization, Pipeline};
use crate::data::{FashionMnist, MvtecCategory, Sample, FASHION_MNIST_DEFAULT_DIR};
use crate::error::{Error, Result};
use crate::kernels::Context;
use crate::synth::{OePart, OutlierExposure};
use crate::train::{
    evaluate, fit, Anomalies, Architecture, BackboneWeights, DatasetKind, FitOptions, LossKind, Model, NetFamily,
    PlannedBatches, StoredConfig, TrainConfig, BACKBONE_KEY,
};

/// The checkpoint file name inside `--out`.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// The metrics file name inside `--out`.
pub const METRICS_FILE: &str = "metrics.json";

/// `--anomalies`: `spectral` or `oe:<dir>` (serialised as that string).
#[derive(Clone, Debug, PartialEq, Eq)]
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

impl Serialize for AnomalyArg {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
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

/// `--data`: a one-vs-all data set or an MVTec-layout folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataArg {
    Lenet(DatasetKind),
    Mvtec(PathBuf),
}

impl std::fmt::Display for DataArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataArg::Lenet(d) => write!(f, "{}", d.name()),
            DataArg::Mvtec(dir) => write!(f, "{}", dir.display()),
        }
    }
}

impl Serialize for DataArg {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// Parses `fmnist`, `cifar10` or an existing folder (MVTec layout, checked when run).
pub fn parse_data(s: &str) -> std::result::Result<DataArg, String> {
    match s {
        "fmnist" => Ok(DataArg::Lenet(DatasetKind::Fmnist)),
        "cifar10" => Ok(DataArg::Lenet(DatasetKind::Cifar10)),
        _ if Path::new(s).is_dir() => Ok(DataArg::Mvtec(PathBuf::from(s))),
        _ => Err(format!("'{s}' is neither fmnist, cifar10 nor an existing folder (MVTec layout)")),
    }
}

#[derive(Debug, Args, Clone, Serialize)]
pub struct TrainArgs {
    /// The training loss.
    #[arg(long, value_enum)]
    pub loss: LossKind,
    /// `fmnist` or `cifar10` (one-vs-all), or a folder in the MVTec AD layout (per category).
    #[arg(long, value_parser = parse_data)]
    pub data: DataArg,
    /// The normal class, e.g. `trouser` (Fashion-MNIST), `cat` (CIFAR-10), or the category
    /// folder of MVTec-layout data (`kolektor`).
    #[arg(long)]
    pub class: String,
    /// Input height = width for MVTec-layout data (default: 256 for ssim and unet, 224 for
    /// fcdd; a multiple of 32 for ssim and unet).
    #[arg(long)]
    pub size: Option<usize>,
    /// Std of FCDD's receptive-field Gaussian that upsamples heatmaps.
    #[arg(long, default_value_t = 14.0)]
    pub fcdd_sigma: f32,
    /// No random horizontal flips in training (categories that are not mirror-symmetric).
    #[arg(long)]
    pub no_hflip: bool,
    /// Synthetic anomalies of the supervised losses: `spectral` or `oe:<dir>` (unused by svdd).
    /// Training draws from half of the folder's images only (chosen by file name); `oddity
    /// calibrate` with the same folder uses a quarter it never saw.
    #[arg(long, default_value = "spectral", value_parser = parse_anomalies)]
    pub anomalies: AnomalyArg,
    /// Epochs (default: 200 for fmnist/cifar10, 300 for MVTec-layout data).
    #[arg(long)]
    pub epochs: Option<usize>,
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
    /// Epochs at which the learning rate is multiplied by --gamma, comma separated (default:
    /// 100,150 for fmnist/cifar10, 200,250 for MVTec-layout data).
    #[arg(long, value_delimiter = ',')]
    pub milestones: Option<Vec<u64>>,
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
    /// Train on the whole normal training data (training and calibration parts together: the
    /// "fully trained" baseline of the thesis tables) instead of its 3/4 part.
    #[arg(long)]
    pub full_train: bool,
    /// Fraction of the normal training images held out for calibration (thesis: 0.25, the 3:1
    /// split). `oddity predict --fpr α` needs at least 1/α − 1 calibration normals, e.g. 99 for
    /// 0.01: raise it on small data sets.
    #[arg(long, default_value_t = THESIS_CALIBRATION_FRACTION)]
    pub calibration_fraction: f64,
    /// Torchvision VGG11-BN weights (safetensors, torchvision's tensor names) for the fcdd loss's
    /// VGG11-BN network on MVTec-layout data; its first 15 modules are frozen.
    #[arg(long, value_name = "FILE")]
    pub backbone_weights: Option<PathBuf>,
}

impl TrainArgs {
    pub fn config(&self) -> TrainConfig {
        let defaults = match self.data {
            DataArg::Lenet(_) => TrainConfig::thesis(self.loss, self.seed),
            DataArg::Mvtec(_) => TrainConfig::thesis_mvtec(self.loss, self.seed),
        };
        TrainConfig {
            loss: self.loss,
            epochs: self.epochs.unwrap_or(defaults.epochs),
            batch_size: self.batch,
            lr: self.lr,
            milestones: self.milestones.clone().unwrap_or(defaults.milestones),
            gamma: self.gamma,
            weight_decay: self.weight_decay,
            seed: self.seed,
            readback_every: self.readback_every,
            fcdd_sigma: self.fcdd_sigma,
        }
    }

    /// The data side of the run, stored in the checkpoint; a resume must match it.
    fn run_info(&self) -> serde_json::Value {
        let mut info = serde_json::json!({
            "data": self.data.to_string(),
            "size": self.size,
            "hflip": !self.no_hflip,
            "class": self.class,
            "anomalies": if self.loss.supervised() { self.anomalies.to_string() } else { "none".into() },
            "limit_train": self.limit_train,
            "limit_test": self.limit_test,
            "data_root": self.data_root,
            "full_train": self.full_train,
        });
        // Recorded only when it is not the thesis's 1/4, so runs from before the option resume.
        if self.calibration_fraction != THESIS_CALIBRATION_FRACTION {
            info["calibration_fraction"] = self.calibration_fraction.into();
        }
        info
    }

    /// The arguments of the run a training checkpoint holds (its stored config and run info),
    /// so calibration can rebuild the same split; `out` is the run's folder.
    pub fn from_stored(stored: &StoredConfig, out: &Path) -> Result<TrainArgs> {
        let run = &stored.run;
        let bad = |what: &str| Error::Checkpoint {
            path: out.join(CHECKPOINT_FILE),
            message: format!("the stored run info lacks a valid '{what}': {run}"),
        };
        let text = |key: &str| run.get(key).and_then(|v| v.as_str()).map(str::to_string);
        let count = |key: &str| run.get(key).and_then(|v| v.as_u64()).map(|v| v as usize);
        let data = parse_data(&text("data").ok_or_else(|| bad("data"))?).map_err(|e| Error::Checkpoint {
            path: out.join(CHECKPOINT_FILE),
            message: format!("stored data: {e}"),
        })?;
        let anomalies = match text("anomalies").as_deref() {
            None | Some("none") => AnomalyArg::Spectral,
            Some(a) => parse_anomalies(a).map_err(|_| bad("anomalies"))?,
        };
        let t = &stored.train;
        Ok(TrainArgs {
            loss: t.loss,
            data,
            class: text("class").ok_or_else(|| bad("class"))?,
            size: count("size"),
            fcdd_sigma: t.fcdd_sigma,
            no_hflip: !run.get("hflip").and_then(|v| v.as_bool()).unwrap_or(true),
            anomalies,
            epochs: Some(t.epochs),
            seed: t.seed,
            out: out.to_path_buf(),
            resume: false,
            data_root: text("data_root").map(PathBuf::from),
            limit_train: count("limit_train"),
            limit_test: count("limit_test"),
            batch: t.batch_size,
            lr: t.lr,
            milestones: Some(t.milestones.clone()),
            gamma: t.gamma,
            weight_decay: t.weight_decay,
            readback_every: t.readback_every,
            no_progress: true,
            full_train: run.get("full_train").and_then(|v| v.as_bool()).unwrap_or(false),
            // Checkpoints from before the option used the thesis's 3:1 split.
            calibration_fraction: run
                .get("calibration_fraction")
                .and_then(|v| v.as_f64())
                .unwrap_or(THESIS_CALIBRATION_FRACTION),
            backbone_weights: BackboneWeights::from_run(run, &out.join(CHECKPOINT_FILE))?.map(|b| b.file),
        })
    }
}

#[derive(Serialize)]
struct Metrics<'a> {
    auroc: f64,
    /// AUROC over every test pixel (models with maps, data with masks).
    pixel_auroc: Option<f64>,
    /// AUPRO up to FPR 0.3 (models with maps, data with masks).
    aupro: Option<f64>,
    seed: u64,
    loss: &'static str,
    data: String,
    class: &'a str,
    anomalies: String,
    architecture: &'a str,
    input_shape: [usize; 3],
    adapter: String,
    epochs_done: usize,
    epoch_losses: Vec<f32>,
    train_images: usize,
    test_images: usize,
    test_anomalies: usize,
    /// `null` when this call trained no step (e.g. a resume of a finished run).
    images_per_second: Option<f64>,
    /// The torchvision weights the network started from (`--backbone-weights`), with CRC-32.
    backbone_weights: Option<&'a BackboneWeights>,
    config: &'a TrainConfig,
    args: &'a TrainArgs,
}

fn class_sets(args: &TrainArgs, data: DatasetKind) -> Result<(ClassSet, ClassSet)> {
    match data {
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
    check_calibration_fraction(args.calibration_fraction)?;
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
    if let Some(file) = &args.backbone_weights {
        if args.loss != LossKind::Fcdd {
            return Err(Error::InvalidArgument(format!(
                "--backbone-weights loads VGG11-BN weights for the fcdd loss on MVTec-layout data, not the {} loss",
                args.loss.name()
            )));
        }
        if !file.is_file() {
            return Err(Error::MissingFile { path: file.clone(), what: "the --backbone-weights file".into() });
        }
    }
    Ok(())
}

/// The backbone weights of this run: loaded (and frozen) into a fresh model from
/// `--backbone-weights`, or for a resumed run the ones its checkpoint records, frozen again. A
/// resume may leave the flag out; given, its file must have the recorded CRC-32.
fn apply_backbone(args: &TrainArgs, model: &Model, stored: Option<&StoredConfig>, ck_path: &Path) -> Result<Option<BackboneWeights>> {
    let Some(stored) = stored else {
        return args.backbone_weights.as_deref().map(|file| model.load_backbone(file)).transpose();
    };
    let recorded = BackboneWeights::from_run(&stored.run, ck_path)?;
    if let Some(file) = &args.backbone_weights {
        let given = BackboneWeights::of_file(file)?;
        match &recorded {
            None => {
                return Err(Error::Checkpoint {
                    path: ck_path.to_path_buf(),
                    message: format!(
                        "cannot resume with --backbone-weights {}: the run started without backbone weights",
                        file.display()
                    ),
                })
            }
            Some(r) if r.crc32 != given.crc32 => {
                return Err(Error::Checkpoint {
                    path: ck_path.to_path_buf(),
                    message: format!(
                        "cannot resume with --backbone-weights {} (crc32 {}): the run started from {} (crc32 {})",
                        file.display(),
                        given.crc32,
                        r.file.display(),
                        r.crc32
                    ),
                })
            }
            Some(_) => {}
        }
    }
    if recorded.is_some() {
        model.freeze_backbone()?;
    }
    Ok(recorded)
}

/// The channel mode that gives `spec`'s input channels.
fn channel_mode(spec: &Architecture) -> ChannelMode {
    if spec.channels == 1 {
        ChannelMode::Gray
    } else {
        ChannelMode::Rgb
    }
}

/// The category of an MVTec-layout folder; errors name the folder and the categories it holds.
pub fn mvtec_category(root: &Path, class: &str) -> Result<MvtecCategory> {
    let categories = list_categories(root)?;
    if categories.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{} is not an MVTec-layout folder: no <category>/train/good inside it",
            root.display()
        )));
    }
    if !categories.iter().any(|c| c == class) {
        return Err(Error::InvalidArgument(format!(
            "class '{class}' is not a category of {} (categories: {})",
            root.display(),
            categories.join(", ")
        )));
    }
    MvtecCategory::load(&root.join(class))
}

/// The network of the thesis for `loss` on MVTec-layout data with `channels`-channel images.
fn mvtec_architecture(loss: LossKind, size: Option<usize>, channels: usize) -> Result<Architecture> {
    match loss {
        LossKind::Ssim => Architecture::sized(NetFamily::BergmannAe, 1, size.unwrap_or(256)),
        LossKind::Unet => Architecture::sized(NetFamily::UNet, channels, size.unwrap_or(256)),
        LossKind::Fcdd => Architecture::sized(NetFamily::FcddVgg11Bn, 3, size.unwrap_or(224)),
        l => Err(Error::InvalidArgument(format!(
            "the {} loss on MVTec-layout data needs the ResNet-18 detector, which `oddity train` does not build yet; \
             use fcdd, ssim or unet",
            l.name()
        ))),
    }
}

/// Normal training, calibration-free test samples, the network and the augmenting training
/// pipeline (without normalisation).
pub struct RunData {
    pub train: Vec<Sample>,
    /// The normal calibration part of the 3:1 split (a `--full-train` run trains on it too).
    pub calibration: Vec<Sample>,
    pub test: Vec<Sample>,
    pub spec: Architecture,
    pub augment: Pipeline,
}

/// The samples, network and augmentation of a run.
pub fn run_data(args: &TrainArgs) -> Result<RunData> {
    let (split, spec, augment) = match &args.data {
        DataArg::Lenet(data) => {
            if args.size.is_some() {
                return Err(Error::InvalidArgument(format!(
                    "--size applies to MVTec-layout data; {} has a fixed size",
                    data.name()
                )));
            }
            let (train_set, test_set) = class_sets(args, *data)?;
            let split =
                DataSplit::one_vs_all_with(&train_set, &test_set, &args.class, args.seed, args.calibration_fraction)?;
            let spec = data.architecture(args.loss)?;
            // Augmentation of §4.2.1 (jitter, small noise, horizontal flip).
            let augment = Pipeline::augment_only(!args.no_hflip).with_channels(channel_mode(&spec));
            (split, spec, augment)
        }
        DataArg::Mvtec(root) => {
            let category = mvtec_category(root, &args.class)?;
            let channels = category.train[0].load()?.channels;
            let spec = mvtec_architecture(args.loss, args.size, channels)?;
            let split = DataSplit::per_category_with(&category, args.seed, args.calibration_fraction)?;
            let augment = Pipeline::train(spec.size, !args.no_hflip).with_channels(channel_mode(&spec));
            (split, spec, augment)
        }
    };
    let train_part = if args.full_train { split.full_train() } else { split.train };
    let train = limit(train_part, args.limit_train, args.seed ^ 0x74_7261_696e, "train")?;
    let test = limit(split.test, args.limit_test, args.seed ^ 0x7465_7374, "test")?;
    Ok(RunData { train, calibration: split.calibration, test, spec, augment })
}

pub fn run(args: &TrainArgs, out: &mut dyn Write) -> Result<()> {
    check_args(args)?;
    let io = |e| Error::io("<stdout>", e);
    let RunData { train, test, spec, augment, .. } = run_data(args)?;

    let ctx = Context::new()?;
    writeln!(out, "adapter: {}", ctx.adapter_name()).map_err(io)?;
    let ck_path = args.out.join(CHECKPOINT_FILE);
    let config = args.config();
    if args.backbone_weights.is_some() && spec.family != NetFamily::FcddVgg11Bn {
        return Err(Error::InvalidArgument(format!(
            "--backbone-weights fits only the VGG11-BN network (fcdd on MVTec-layout data); this run trains {}",
            spec.name()
        )));
    }
    let (model, resume, stored) = if args.resume {
        let ck = Checkpoint::load(&ck_path)?;
        let stored = StoredConfig::from_checkpoint(&ck, &ck_path)?;
        writeln!(out, "resuming {} after epoch {}", ck_path.display(), stored.epochs_done).map_err(io)?;
        let model = Model::from_checkpoint(&ctx, &ck, &ck_path)?;
        if model.spec != spec {
            return Err(Error::Checkpoint {
                path: ck_path,
                message: format!("cannot resume: the checkpoint holds {}, this run builds {}", model.architecture, spec.name()),
            });
        }
        (model, Some(ck), Some(stored))
    } else {
        let normalization = Normalization::fit_samples(&train, &augment)?;
        (Model::build(&ctx, spec, args.loss, args.seed, normalization, &train, args.fcdd_sigma)?, None, None)
    };
    let backbone = apply_backbone(args, &model, stored.as_ref(), &ck_path)?;
    if let Some(b) = &backbone {
        writeln!(out, "backbone: {} (crc32 {}), first 15 modules frozen", b.file.display(), b.crc32).map_err(io)?;
    }
    let anomalies = match (&args.anomalies, args.loss.supervised()) {
        (_, false) => None,
        (AnomalyArg::Spectral, true) => Some(Anomalies::Spectral),
        (AnomalyArg::OutlierExposure(dir), true) => {
            // Only the training part: calibration and its evaluation draw from the other parts.
            let oe = OutlierExposure::from_folder(dir)?.with_pipeline(Pipeline::augment_only(true));
            Some(Anomalies::OutlierExposure(oe.part(dir, OePart::Training)?))
        }
    };
    let pipeline = augment.with_normalization(model.normalization.clone());
    let mut batches = PlannedBatches::new(train.clone(), pipeline, args.batch, args.seed, anomalies)?;
    writeln!(
        out,
        "{} {} on {}, normal class '{}': {} training images, {} test images; {} steps per epoch",
        model.architecture,
        args.loss.name(),
        args.data,
        args.class,
        train.len(),
        test.len(),
        crate::train::EpochBatches::steps_per_epoch(&batches)
    )
    .map_err(io)?;
    let mut run_info = args.run_info();
    if let Some(b) = &backbone {
        run_info[BACKBONE_KEY] = serde_json::to_value(b).map_err(|e| Error::InvalidArgument(format!("run info: {e}")))?;
    }
    let opts = FitOptions { checkpoint: ck_path.clone(), run: run_info, progress: !args.no_progress };
    let summary = fit(&model, &mut batches, &config, resume.as_ref(), &opts, out)?;

    // Large inputs in smaller evaluation batches (memory of the activations), never larger than
    // the training batch: a batch that trained fits the device's binding limits, a larger one
    // may not (FCDD's VGG at 224: 16 x 64 x 224 x 224 floats pass the 128 MiB baseline binding).
    let eval_batch = (if spec.size <= 32 { 256 } else { 16 }).min(args.batch.max(1));
    let ev = evaluate(&ctx, &model, &test, eval_batch)?;
    let auroc = ev.auroc()?;
    let what = match args.data {
        DataArg::Lenet(_) => "vs the other classes",
        DataArg::Mvtec(_) => "good vs defects",
    };
    writeln!(out, "test AUROC ({} {what}): {auroc:.4}", args.class).map_err(io)?;
    let (pixel_auroc, aupro) = match &ev.maps {
        Some(maps) => {
            let (p, a) = (maps.pixel_auroc()?, maps.aupro()?);
            writeln!(out, "pixel AUROC {p:.4}, AUPRO {a:.4} ({}x{} maps)", maps.height, maps.width).map_err(io)?;
            (Some(p), Some(a))
        }
        None => (None, None),
    };
    let metrics = Metrics {
        auroc,
        pixel_auroc,
        aupro,
        seed: args.seed,
        loss: args.loss.name(),
        data: args.data.to_string(),
        class: &args.class,
        anomalies: if args.loss.supervised() { args.anomalies.to_string() } else { "none".into() },
        architecture: &model.architecture,
        input_shape: model.input_shape(),
        adapter: ctx.adapter_name().to_string(),
        epochs_done: summary.epochs_done,
        epoch_losses: summary.epoch_losses,
        train_images: train.len(),
        test_images: test.len(),
        test_anomalies: ev.labels.iter().filter(|&&l| l == 1).count(),
        images_per_second: summary.images_per_second,
        backbone_weights: backbone.as_ref(),
        config: &config,
        args,
    };
    write_json(&args.out.join(METRICS_FILE), &metrics)?;
    writeln!(out, "wrote {} and {}", ck_path.display(), args.out.join(METRICS_FILE).display()).map_err(io)?;
    Ok(())
}

/// Writes `value` as JSON atomically, so a killed run leaves the previous metrics.json or the
/// new one, never half of one.
fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let json = serde_json::to_string_pretty(value).map_err(|e| Error::InvalidArgument(format!("metrics: {e}")))?;
    crate::checkpoint::write_atomically(path, json.as_bytes())
}
