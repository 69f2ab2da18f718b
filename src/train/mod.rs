//! Training of the thesis's base models (§4.1, §4.2.1): Adam (lr 1e-4, no weight decay) with a
//! multi-step schedule (Fashion-MNIST and CIFAR-10: 200 epochs, ×0.1 at 100 and 150; MVTec
//! layout: 300 epochs, ×0.1 at 200 and 250), batches of 128, balanced half normal / half
//! synthetic anomalies for the supervised losses (hsc, logistic, fcdd, unet), seeded.
//!
//! - [`Architecture`] / [`Network`]: every network of the thesis (LeNets, SSIM autoencoders,
//!   U-Net, FCDD) by a name that holds its input channels and size, so a checkpoint rebuilds it.
//! - [`Model`]: the network, its [`Objective`] (loss, score, logit, estimate, per-pixel maps),
//!   the input normalisation and its architecture; built fresh ([`Model::build`], [`Model::new`]
//!   for the one-vs-all data sets) or from a checkpoint ([`Model::from_checkpoint`],
//!   [`load_model`]). [`Model::estimates`], [`Model::anomaly_maps`] and [`Model::pixel_logits`]
//!   are what calibration and evaluation use.
//! - [`EpochBatches`]: where an epoch's batches come from; [`PlannedBatches`] runs a
//!   [`crate::data::batches::BatchPlan`] per epoch on a prefetch thread, seeded by (seed, epoch)
//!   so a resumed run sees exactly the batches the uninterrupted run would have.
//! - [`fit`]: the loop. A checkpoint after every epoch (model, buffers, SVDD centre,
//!   normalisation, optimizer state, epochs done, seed, config; written atomically), resume from
//!   it, one loss readback per `readback_every` steps, and a stop with [`Error::Diverged`] naming
//!   epoch and step on a non-finite loss, leaving the last good checkpoint in place. The SSIM
//!   loss compares the output with the input; the U-Net's per-pixel labels are the masks or the
//!   image's label on every pixel (synthetic anomalies: all 1, thesis §4.2.1).
//! - [`evaluate`]: scores, logits and estimates of a sample set and its AUROC, plus anomaly maps
//!   and masks ([`PixelMaps`]: pixel AUROC, AUPRO) for models with maps on data with masks.

mod network;
mod progress;
mod train_loop;

pub use network::{build_network, Architecture, NetFamily, Network};

pub use progress::Progress;
pub use train_loop::{fit, FitOptions, FitSummary};

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::autograd::{no_grad, Var};
use crate::checkpoint::{Checkpoint, HostTensor};
use crate::data::batches::{Batch, BatchPlan, Prefetcher};
use crate::data::transforms::{ChannelMode, Normalization, Pipeline};
use crate::data::Sample;
use crate::error::{Error, Result};
use crate::kernels::gaussian_upsample::THESIS_SIGMA;
use crate::kernels::{Context, Tensor};
use crate::metrics::{aupro, auroc, pixel_auroc};
use crate::models::deep_svdd;
use crate::models::fcdd::{Fcdd, VGG_FROZEN_LAYERS};
use crate::models::lenet::LenetVariant;
use crate::models::losses::{Estimates, Objective, Targets};
use crate::nn::{self, Module};
use crate::synth::{AnomalySource, OutlierExposure, SpectralAnomalies};

/// Checkpoint tensor names besides the network's own.
pub const CENTRE_NAME: &str = "svdd.center";
pub const MEAN_NAME: &str = "input.mean";
pub const STD_NAME: &str = "input.std";
/// Key of [`BackboneWeights`] in a run's info (the checkpoint's stored `run` and metrics.json).
pub const BACKBONE_KEY: &str = "backbone_weights";

/// The torchvision VGG11-BN weights an FCDD run started from (`oddity train --backbone-weights`).
/// Kept in the run info, so a resumed run freezes the same layers and a changed file is noticed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackboneWeights {
    /// The safetensors file as given.
    pub file: PathBuf,
    /// CRC-32 (IEEE, as gzip and zip compute it) of the file's bytes, 8 hex digits.
    pub crc32: String,
}

impl BackboneWeights {
    /// Names `path` with the CRC-32 of its contents.
    pub fn of_file(path: &Path) -> Result<BackboneWeights> {
        let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let mut crc = flate2::Crc::new();
        crc.update(&data);
        Ok(BackboneWeights { file: path.to_path_buf(), crc32: format!("{:08x}", crc.sum()) })
    }

    /// The backbone recorded in a run's info, if any; `path` (the checkpoint) names a bad entry.
    pub fn from_run(run: &serde_json::Value, path: &Path) -> Result<Option<BackboneWeights>> {
        match run.get(BACKBONE_KEY) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v.clone()).map(Some).map_err(|e| Error::Checkpoint {
                path: path.to_path_buf(),
                message: format!("the stored run info's {BACKBONE_KEY} {v} is not a file and crc32: {e}"),
            }),
        }
    }
}

/// The losses `oddity train` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LossKind {
    /// Deep SVDD (unsupervised, bias-free LeNet).
    Svdd,
    /// Hypersphere classifier with the pseudo-Huber norm (supervised, LeNet with biases).
    Hsc,
    /// Logistic loss (supervised, LeNet with biases and a scalar head).
    Logistic,
    /// FCDD: HSC on the mean pseudo-Huber heatmap of a fully convolutional net (supervised).
    Fcdd,
    /// SSIM autoencoder on grayscale images (unsupervised).
    Ssim,
    /// U-Net with the average per-pixel logistic loss; pixels of synthetic anomalies are
    /// labelled 1, of normal images 0 (supervised).
    Unet,
}

impl LossKind {
    /// Whether training needs synthetic anomalies (balanced batches).
    pub fn supervised(self) -> bool {
        !matches!(self, LossKind::Svdd | LossKind::Ssim)
    }

    pub fn name(self) -> &'static str {
        match self {
            LossKind::Svdd => "svdd",
            LossKind::Hsc => "hsc",
            LossKind::Logistic => "logistic",
            LossKind::Fcdd => "fcdd",
            LossKind::Ssim => "ssim",
            LossKind::Unet => "unet",
        }
    }

    /// The LeNet variant of the image-level losses; `None` for the others.
    pub fn lenet_variant(self) -> Option<LenetVariant> {
        match self {
            LossKind::Svdd => Some(LenetVariant::Svdd),
            LossKind::Hsc => Some(LenetVariant::Features),
            LossKind::Logistic => Some(LenetVariant::Scalar),
            _ => None,
        }
    }
}

/// The image data sets with LeNets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DatasetKind {
    Fmnist,
    Cifar10,
}

impl DatasetKind {
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Fmnist => "fmnist",
            DatasetKind::Cifar10 => "cifar10",
        }
    }

    /// The network of the thesis for this data set and loss: the LeNets for the image-level
    /// losses, the data set's SSIM autoencoder (grayscale) and FCDD net, and a U-Net at 32x32
    /// for CIFAR-10 (Fashion-MNIST's 28x28 does not fit the U-Net's five halvings).
    pub fn architecture(self, loss: LossKind) -> Result<Architecture> {
        if let Some(v) = loss.lenet_variant() {
            return Ok(Architecture::lenet(self, v));
        }
        match (self, loss) {
            (DatasetKind::Fmnist, LossKind::Ssim) => Architecture::sized(NetFamily::FmnistAe, 1, 28),
            (DatasetKind::Cifar10, LossKind::Ssim) => Architecture::sized(NetFamily::Cifar10Ae, 1, 32),
            (DatasetKind::Fmnist, LossKind::Fcdd) => Architecture::sized(NetFamily::FcddFmnist, 1, 28),
            (DatasetKind::Cifar10, LossKind::Fcdd) => Architecture::sized(NetFamily::FcddCifar10, 3, 32),
            (DatasetKind::Cifar10, LossKind::Unet) => Architecture::sized(NetFamily::UNet, 3, 32),
            (d, l) => Err(Error::InvalidArgument(format!(
                "the {} loss has no network for {} (the U-Net needs a size that is a multiple of 32: use cifar10 or MVTec-layout data)",
                l.name(),
                d.name()
            ))),
        }
    }
}

/// Optimisation settings. [`TrainConfig::thesis`] gives the thesis's values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub loss: LossKind,
    /// Total epochs of the run (a resumed run continues up to this).
    pub epochs: usize,
    /// Images per batch (normal + anomalous for the supervised losses).
    pub batch_size: usize,
    /// Adam's initial learning rate.
    pub lr: f64,
    /// Epochs (0-based) at which the rate is multiplied by `gamma`.
    pub milestones: Vec<u64>,
    pub gamma: f64,
    pub weight_decay: f32,
    /// Seeds the initialisation, the split, the batch order, the augmentation and the anomalies.
    pub seed: u64,
    /// Steps between loss readbacks (a readback waits for the GPU).
    pub readback_every: usize,
    /// Standard deviation of FCDD's receptive-field Gaussian that upsamples heatmaps (thesis:
    /// 14); used at evaluation only.
    #[serde(default = "default_fcdd_sigma")]
    pub fcdd_sigma: f32,
}

fn default_fcdd_sigma() -> f32 {
    THESIS_SIGMA
}

impl TrainConfig {
    /// Fashion-MNIST / CIFAR-10 settings of the thesis (§4.2.1).
    pub fn thesis(loss: LossKind, seed: u64) -> TrainConfig {
        TrainConfig {
            loss,
            epochs: 200,
            batch_size: 128,
            lr: 1e-4,
            milestones: vec![100, 150],
            gamma: 0.1,
            weight_decay: 0.0,
            seed,
            readback_every: 10,
            fcdd_sigma: THESIS_SIGMA,
        }
    }

    /// MVTec-layout settings of the thesis (§4.2.1): 300 epochs, ×0.1 at 200 and 250.
    pub fn thesis_mvtec(loss: LossKind, seed: u64) -> TrainConfig {
        TrainConfig { epochs: 300, milestones: vec![200, 250], ..TrainConfig::thesis(loss, seed) }
    }

    /// Errors name the bad setting.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if self.batch_size < 2 {
            return bad(format!("batch size must be at least 2 (batch norm needs two samples), got {}", self.batch_size));
        }
        if self.loss.supervised() && self.batch_size % 2 != 0 {
            return bad(format!(
                "batch size must be even for the balanced batches of the {} loss, got {}",
                self.loss.name(),
                self.batch_size
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("learning rate must be finite and > 0, got {}", self.lr));
        }
        if !(self.gamma.is_finite() && self.gamma > 0.0) {
            return bad(format!("gamma must be finite and > 0, got {}", self.gamma));
        }
        if self.readback_every == 0 {
            return bad("readback_every must be at least 1".into());
        }
        if !(self.fcdd_sigma.is_finite() && self.fcdd_sigma > 0.0) {
            return bad(format!("the FCDD Gaussian's std must be finite and > 0, got {}", self.fcdd_sigma));
        }
        Ok(())
    }

    /// Differences that forbid resuming a run of `self` from a checkpoint of `stored` (every
    /// field but `epochs` and `readback_every` must agree).
    pub fn resume_conflicts(&self, stored: &TrainConfig) -> Vec<String> {
        let mut out = Vec::new();
        let mut cmp = |name: &str, a: String, b: String| {
            if a != b {
                out.push(format!("{name}: checkpoint {b}, now {a}"));
            }
        };
        cmp("loss", self.loss.name().into(), stored.loss.name().into());
        cmp("batch size", self.batch_size.to_string(), stored.batch_size.to_string());
        cmp("lr", self.lr.to_string(), stored.lr.to_string());
        cmp("milestones", format!("{:?}", self.milestones), format!("{:?}", stored.milestones));
        cmp("gamma", self.gamma.to_string(), stored.gamma.to_string());
        cmp("weight decay", self.weight_decay.to_string(), stored.weight_decay.to_string());
        cmp("seed", self.seed.to_string(), stored.seed.to_string());
        out
    }
}

/// What a training checkpoint's metadata config holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredConfig {
    pub train: TrainConfig,
    /// Epochs completed when the checkpoint was written.
    pub epochs_done: usize,
    /// The data side of the run (data set, class, anomalies, limits), as given by the caller.
    pub run: serde_json::Value,
}

impl StoredConfig {
    pub fn from_checkpoint(ck: &Checkpoint, path: &Path) -> Result<StoredConfig> {
        serde_json::from_value(ck.meta.config.clone()).map_err(|e| Error::Checkpoint {
            path: path.to_path_buf(),
            message: format!("not a training checkpoint (config: {e})"),
        })
    }
}

/// A network with its objective and input normalisation.
pub struct Model {
    pub ctx: Context,
    pub net: Network,
    pub objective: Objective,
    /// The architecture's name (stored in checkpoints).
    pub architecture: String,
    pub spec: Architecture,
    pub normalization: Normalization,
}

/// The objective of `loss` on `net`; FCDD's upsampling comes from the network's receptive field.
fn objective_for(loss: LossKind, net: &Network, fcdd_sigma: f32, centre: Option<Var>) -> Result<Objective> {
    Ok(match (loss, net) {
        (LossKind::Svdd, _) => Objective::Svdd {
            centre: centre.ok_or_else(|| Error::InvalidArgument("the SVDD objective needs its centre".into()))?,
        },
        (LossKind::Hsc, _) => Objective::Hsc,
        (LossKind::Logistic, _) => Objective::Logistic,
        (LossKind::Fcdd, Network::Fcdd(f)) => Objective::Fcdd { upsample: f.upsampler(fcdd_sigma) },
        (LossKind::Fcdd, _) => return Err(Error::InvalidArgument("the fcdd loss needs an FCDD network".into())),
        // Inputs are z-scored with the training statistics, so the training mean is 0.
        (LossKind::Ssim, _) => Objective::Ssim { pad_value: 0.0 },
        (LossKind::Unet, _) => Objective::PixelLogistic,
    })
}

impl Model {
    /// A fresh LeNet-family network for `data` and `loss` (see [`DatasetKind::architecture`]),
    /// initialised from `seed`; see [`Model::build`].
    pub fn new(
        ctx: &Context,
        data: DatasetKind,
        loss: LossKind,
        seed: u64,
        normalization: Normalization,
        centre_samples: &[Sample],
    ) -> Result<Model> {
        Model::build(ctx, data.architecture(loss)?, loss, seed, normalization, centre_samples, THESIS_SIGMA)
    }

    /// A fresh network of `spec` trained with `loss`, initialised from `seed`. For SVDD the
    /// centre is the mean initial output over `centre_samples` (through [`Model::test_pipeline`],
    /// no augmentation); the other losses ignore them. `fcdd_sigma`: std of FCDD's upsampling
    /// Gaussian.
    pub fn build(
        ctx: &Context,
        spec: Architecture,
        loss: LossKind,
        seed: u64,
        normalization: Normalization,
        centre_samples: &[Sample],
        fcdd_sigma: f32,
    ) -> Result<Model> {
        if !spec.fits(loss) {
            return Err(Error::InvalidArgument(format!("the {} loss does not train the network {}", loss.name(), spec.name())));
        }
        if normalization.mean.len() != spec.channels {
            return Err(Error::InvalidArgument(format!(
                "normalisation of {} channels for the network {} with {} input channels",
                normalization.mean.len(),
                spec.name(),
                spec.channels
            )));
        }
        let net = spec.build(ctx, seed)?;
        let centre = if loss == LossKind::Svdd {
            let pipeline = test_pipeline(&spec, &normalization);
            let mut batches = Vec::new();
            for b in Prefetcher::spawn(BatchPlan::evaluation(centre_samples.to_vec(), pipeline, 256), None, 2)? {
                let b = b?;
                batches.push(Tensor::from_slice(ctx, &b.shape, &b.data)?);
            }
            let c = deep_svdd::centre(&net, &batches)?;
            Some(deep_svdd::centre_var(ctx, &c)?)
        } else {
            None
        };
        let objective = objective_for(loss, &net, fcdd_sigma, centre)?;
        Ok(Model { ctx: ctx.clone(), net, objective, architecture: spec.name(), spec, normalization })
    }

    /// The model a training checkpoint holds: its architecture, weights, buffers, centre and
    /// normalisation. Optimizer state (`optim.*`) is left for [`fit`]. Missing, extra or wrongly
    /// shaped tensors are an error naming them.
    pub fn from_checkpoint(ctx: &Context, ck: &Checkpoint, path: &Path) -> Result<Model> {
        let stored = StoredConfig::from_checkpoint(ck, path)?;
        let spec = Architecture::parse(&ck.meta.architecture).map_err(|e| Error::Checkpoint {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let net = spec.build(ctx, ck.meta.seed)?;
        let mut named: Vec<(String, Tensor)> =
            nn::parameters(&net).into_iter().map(|(n, v)| (n, v.value().clone())).collect();
        named.extend(nn::buffers(&net));
        let mut expected: Vec<(String, Vec<usize>)> = named.iter().map(|(n, t)| (n.clone(), t.shape().to_vec())).collect();
        let channels = ck.tensors.get(MEAN_NAME).map_or(0, |t| t.data.len());
        expected.push((MEAN_NAME.into(), vec![channels]));
        expected.push((STD_NAME.into(), vec![channels]));
        if stored.train.loss == LossKind::Svdd {
            let d = ck.tensors.get(CENTRE_NAME).map_or(0, |t| t.data.len());
            expected.push((CENTRE_NAME.into(), vec![d]));
        }
        let model_part = Checkpoint {
            meta: ck.meta.clone(),
            tensors: ck
                .tensors
                .iter()
                .filter(|(n, _)| !n.starts_with(crate::optim::STATE_PREFIX))
                .map(|(n, t)| (n.clone(), t.clone()))
                .collect(),
        };
        model_part.check_matches(&expected, path)?;
        for (name, t) in &named {
            t.write(&ck.tensors[name].data)?;
        }
        let normalization = Normalization {
            mean: ck.tensors[MEAN_NAME].data.clone(),
            std: ck.tensors[STD_NAME].data.clone(),
        };
        let centre = match stored.train.loss {
            LossKind::Svdd => Some(deep_svdd::centre_var(ctx, &ck.tensors[CENTRE_NAME].data)?),
            _ => None,
        };
        let objective = objective_for(stored.train.loss, &net, stored.train.fcdd_sigma, centre)?;
        Ok(Model { ctx: ctx.clone(), net, objective, architecture: ck.meta.architecture.clone(), spec, normalization })
    }

    /// The FCDD VGG11-BN network whose `features` take torchvision weights, or an error naming
    /// the network this model has instead.
    fn vgg_backbone(&self) -> Result<&Fcdd> {
        match &self.net {
            Network::Fcdd(f) if self.spec.family == NetFamily::FcddVgg11Bn => Ok(f),
            _ => Err(Error::InvalidArgument(format!(
                "backbone weights (torchvision VGG11-BN) fit only the network fcdd-vgg11bn-3xS, which the fcdd loss \
                 trains on MVTec-layout data; this model is {}",
                self.architecture
            ))),
        }
    }

    /// Loads torchvision VGG11-BN weights (`features.<i>.weight`, `.running_mean`, ...; see
    /// [`Fcdd::load_torchvision_vgg11_bn`]) into the network's backbone and freezes its first
    /// [`VGG_FROZEN_LAYERS`] modules, as FCDD trains on ImageNet features. Errors name a missing
    /// or wrongly shaped tensor; then the network is unchanged.
    pub fn load_backbone(&self, path: &Path) -> Result<BackboneWeights> {
        let fcdd = self.vgg_backbone()?;
        let info = BackboneWeights::of_file(path)?;
        fcdd.load_torchvision_vgg11_bn(path)?;
        fcdd.freeze_features(VGG_FROZEN_LAYERS)?;
        Ok(info)
    }

    /// Freezes the pretrained layers again, for a run resumed from a checkpoint of a model that
    /// started from backbone weights (freezing is not stored in checkpoints).
    pub fn freeze_backbone(&self) -> Result<()> {
        Ok(self.vgg_backbone()?.freeze_features(VGG_FROZEN_LAYERS)?)
    }

    /// The tensors a checkpoint keeps besides the network: normalisation and SVDD centre.
    pub fn extra_tensors(&self) -> Result<Vec<(String, HostTensor)>> {
        let n = self.normalization.mean.len();
        let mut out = vec![
            (MEAN_NAME.to_string(), HostTensor::new(vec![n], self.normalization.mean.clone())?),
            (STD_NAME.to_string(), HostTensor::new(vec![self.normalization.std.len()], self.normalization.std.clone())?),
        ];
        if let Objective::Svdd { centre } = &self.objective {
            out.push((CENTRE_NAME.to_string(), HostTensor::new(centre.shape().to_vec(), centre.value().to_vec()?)?));
        }
        Ok(out)
    }

    /// The input the network takes: [channels, height, width].
    pub fn input_shape(&self) -> [usize; 3] {
        self.spec.input_shape()
    }

    /// Whether the model scores pixels (fcdd, ssim, unet).
    pub fn has_maps(&self) -> bool {
        self.objective.has_maps()
    }

    /// The evaluation transform: resize to the input size, the input's channel count
    /// (grayscale or repeated to RGB), z-scores; no augmentation.
    pub fn test_pipeline(&self) -> Pipeline {
        test_pipeline(&self.spec, &self.normalization)
    }

    fn check_input(&self, x: &Var) -> Result<()> {
        let [c, h, w] = self.input_shape();
        match x.shape() {
            [_, xc, xh, xw] if [*xc, *xh, *xw] == [c, h, w] => Ok(()),
            s => Err(Error::InvalidArgument(format!(
                "the network {} takes inputs [N, {c}, {h}, {w}], got {s:?}",
                self.architecture
            ))),
        }
    }

    /// Score, logit z and estimate eta-hat per image, [N] each (caller sets eval mode / no_grad).
    /// x: [N, C, H, W] (normalised, see [`Model::test_pipeline`])
    pub fn estimates(&self, x: &Var) -> Result<Estimates> {
        self.check_input(x)?;
        let out = self.net.forward(x)?;
        Ok(self.objective.estimates_with_input(x, &out)?)
    }

    /// Per-pixel anomaly scores [N, 1, H, W] at the input's height and width for models with maps
    /// (fcdd, ssim, unet); Ok(None) for image-level models.
    pub fn anomaly_maps(&self, x: &Var) -> Result<Option<Var>> {
        if !self.has_maps() {
            return Ok(None);
        }
        self.check_input(x)?;
        let out = self.net.forward(x)?;
        Ok(self.objective.anomaly_map(x, &out)?)
    }

    /// Per-pixel logits [N, 1, H, W] for models with maps (for per-pixel calibration), else None.
    pub fn pixel_logits(&self, x: &Var) -> Result<Option<Var>> {
        if !self.has_maps() {
            return Ok(None);
        }
        self.check_input(x)?;
        let out = self.net.forward(x)?;
        Ok(self.objective.pixel_logits(x, &out)?)
    }

    /// Estimates and anomaly maps from one forward pass (evaluation).
    pub fn estimates_and_maps(&self, x: &Var) -> Result<(Estimates, Option<Var>)> {
        self.check_input(x)?;
        let out = self.net.forward(x)?;
        let est = self.objective.estimates_with_input(x, &out)?;
        Ok((est, self.objective.anomaly_map(x, &out)?))
    }

    /// The mean training loss of a batch: image labels for the supervised image losses, pixel
    /// labels ([`Batch::pixel_labels`]: masks, or the image's label on every pixel) for the
    /// U-Net, the input itself as the SSIM target.
    pub fn batch_loss(&self, batch: &Batch) -> Result<Var> {
        let ctx = &self.ctx;
        let x = Var::constant(Tensor::from_slice(ctx, &batch.shape, &batch.data)?);
        let out = self.net.forward(&x)?;
        let labels = if self.objective.supervised() && !matches!(self.objective, Objective::PixelLogistic) {
            let l: Vec<f32> = batch.labels.iter().map(|&l| l as f32).collect();
            Some(Var::constant(Tensor::from_slice(ctx, &[l.len()], &l)?))
        } else {
            None
        };
        let pixel_labels = if matches!(self.objective, Objective::PixelLogistic) {
            let [n, _, h, w] = batch.shape;
            let p: Vec<f32> = batch.pixel_labels().into_iter().map(f32::from).collect();
            Some(Var::constant(Tensor::from_slice(ctx, &[n, 1, h, w], &p)?))
        } else {
            None
        };
        let targets = Targets { labels: labels.as_ref(), pixel_labels: pixel_labels.as_ref() };
        Ok(self.objective.batch_loss(&x, &out, targets)?)
    }
}

/// Resize to the network input, its channel count, z-scores.
fn test_pipeline(spec: &Architecture, normalization: &Normalization) -> Pipeline {
    let [c, h, w] = spec.input_shape();
    Pipeline {
        resize: Some((h, w)),
        channels: if c == 1 { ChannelMode::Gray } else { ChannelMode::Rgb },
        ..Pipeline::default()
    }
    .with_normalization(normalization.clone())
}

/// Loads a training checkpoint for evaluation: the model and the stored config.
pub fn load_model(ctx: &Context, path: &Path) -> Result<(Model, StoredConfig)> {
    let ck = Checkpoint::load(path)?;
    let stored = StoredConfig::from_checkpoint(&ck, path)?;
    Ok((Model::from_checkpoint(ctx, &ck, path)?, stored))
}

/// The synthetic anomalies of balanced batches.
#[derive(Clone, Debug)]
pub enum Anomalies {
    /// Spectral 1/f^α images (thesis §3.4).
    Spectral,
    /// Images from an auxiliary folder (outlier exposure).
    OutlierExposure(OutlierExposure),
}

impl Anomalies {
    /// A fresh generator (one per epoch).
    pub fn source(&self) -> Box<dyn AnomalySource> {
        match self {
            Anomalies::Spectral => Box::new(SpectralAnomalies::new()),
            Anomalies::OutlierExposure(oe) => Box::new(oe.clone()),
        }
    }
}

/// Where the batches of each epoch come from.
pub trait EpochBatches {
    /// The batches of epoch `epoch` (0-based); asking twice for an epoch gives the same batches.
    fn epoch(&mut self, epoch: usize) -> Result<Box<dyn Iterator<Item = Result<Batch>> + '_>>;

    /// Steps (batches) per epoch.
    fn steps_per_epoch(&self) -> usize;
}

/// The seed of epoch `epoch`'s shuffle, augmentation and anomalies (splitmix64 of both), so
/// each epoch's batches depend only on (seed, epoch) and a resumed run matches an uninterrupted
/// one.
pub fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    let mut z = seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Training batches from samples through a pipeline: a seeded shuffle per epoch, the last
/// partial batch dropped, balanced with `anomalies` when given.
pub struct PlannedBatches {
    samples: Vec<Sample>,
    pipeline: Pipeline,
    batch_size: usize,
    seed: u64,
    anomalies: Option<Anomalies>,
}

impl PlannedBatches {
    /// Errors when the samples do not fill one batch.
    pub fn new(
        samples: Vec<Sample>,
        pipeline: Pipeline,
        batch_size: usize,
        seed: u64,
        anomalies: Option<Anomalies>,
    ) -> Result<PlannedBatches> {
        let normal = if anomalies.is_some() { batch_size / 2 } else { batch_size };
        if normal == 0 || samples.len() < normal {
            return Err(Error::InvalidArgument(format!(
                "{} training images do not fill one batch of {} normal images (batch size {batch_size}{})",
                samples.len(),
                normal,
                if anomalies.is_some() { ", half of it anomalies" } else { "" }
            )));
        }
        Ok(PlannedBatches { samples, pipeline, batch_size, seed, anomalies })
    }
}

impl EpochBatches for PlannedBatches {
    fn epoch(&mut self, epoch: usize) -> Result<Box<dyn Iterator<Item = Result<Batch>> + '_>> {
        let plan = BatchPlan::training(
            self.samples.clone(),
            self.pipeline.clone(),
            self.batch_size,
            1,
            epoch_seed(self.seed, epoch),
        );
        Ok(Box::new(Prefetcher::spawn(plan, self.anomalies.as_ref().map(Anomalies::source), 4)?))
    }

    fn steps_per_epoch(&self) -> usize {
        let normal = if self.anomalies.is_some() { self.batch_size / 2 } else { self.batch_size };
        self.samples.len() / normal
    }
}

/// Per-sample outputs of [`evaluate`], in sample order.
#[derive(Clone, Debug, Serialize)]
pub struct Evaluation {
    pub scores: Vec<f64>,
    pub logits: Vec<f64>,
    pub etas: Vec<f64>,
    pub labels: Vec<u8>,
    /// Anomaly maps and masks, for models with maps on data with masks.
    #[serde(skip)]
    pub maps: Option<PixelMaps>,
}

/// Per-pixel anomaly scores of every evaluated image with its 0/1 mask, both
/// `[n, height, width]` flattened, at the network's input size.
#[derive(Clone, Debug, Default)]
pub struct PixelMaps {
    pub scores: Vec<f32>,
    pub masks: Vec<u8>,
    pub height: usize,
    pub width: usize,
}

/// The false-positive-rate limit of AUPRO (anomalib and the thesis).
pub const AUPRO_FPR_LIMIT: f64 = 0.3;

impl PixelMaps {
    /// AUROC over every pixel.
    pub fn pixel_auroc(&self) -> Result<f64> {
        pixel_auroc(&self.scores, &self.masks)
    }

    /// AUPRO up to a false-positive rate of [`AUPRO_FPR_LIMIT`].
    pub fn aupro(&self) -> Result<f64> {
        aupro(&self.scores, &self.masks, self.height, self.width, AUPRO_FPR_LIMIT)
    }
}

impl Evaluation {
    /// AUROC of the anomaly scores (error if one class is missing).
    pub fn auroc(&self) -> Result<f64> {
        auroc(&self.scores, &self.labels)
    }
}

/// Scores, logits and estimates of `samples` (eval mode, no gradient, through
/// [`Model::test_pipeline`]: resized to the input, z-scored, no augmentation), and for a model
/// with maps on samples with masks (the MVTec layout's test split) the anomaly maps and masks.
pub fn evaluate(ctx: &Context, model: &Model, samples: &[Sample], batch_size: usize) -> Result<Evaluation> {
    model.net.set_training(false);
    let mut plan = BatchPlan::evaluation(samples.to_vec(), model.test_pipeline(), batch_size.max(1));
    plan.with_masks = model.has_maps();
    let mut ev = Evaluation { scores: vec![], logits: vec![], etas: vec![], labels: vec![], maps: None };
    let [_, height, width] = model.input_shape();
    let mut maps = PixelMaps { height, width, ..PixelMaps::default() };
    let mut all_masked = plan.with_masks;
    let result = (|| -> Result<()> {
        for b in Prefetcher::spawn(plan, None, 2)? {
            let b = b?;
            let x = Var::constant(Tensor::from_slice(ctx, &b.shape, &b.data)?);
            let (est, map) = no_grad(|| model.estimates_and_maps(&x))?;
            let f = |v: &Var| -> Result<Vec<f64>> { Ok(v.value().to_vec()?.into_iter().map(f64::from).collect()) };
            ev.scores.extend(f(&est.score)?);
            ev.logits.extend(f(&est.logit)?);
            ev.etas.extend(f(&est.eta)?);
            ev.labels.extend(&b.labels);
            match (map, &b.masks) {
                (Some(map), Some(masks)) if all_masked => {
                    maps.scores.extend(map.value().to_vec()?);
                    maps.masks.extend(masks);
                }
                _ => all_masked = false,
            }
        }
        Ok(())
    })();
    model.net.set_training(true);
    result?;
    if all_masked && !maps.scores.is_empty() {
        ev.maps = Some(maps);
    }
    Ok(ev)
}
