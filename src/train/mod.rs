//! Training of the LeNet-based detectors (thesis §4.2.1): Adam (lr 1e-4, no weight decay) with
//! a multi-step schedule (Fashion-MNIST and CIFAR-10: 200 epochs, ×0.1 at 100 and 150), batches
//! of 128, balanced half normal / half synthetic anomalies for the supervised losses, seeded.
//!
//! - [`Model`]: the network, its [`Objective`] (loss, score, logit, estimate), the input
//!   normalisation and its architecture name; built fresh ([`Model::new`]) or from a checkpoint
//!   ([`Model::from_checkpoint`], [`load_model`]).
//! - [`EpochBatches`]: where an epoch's batches come from; [`PlannedBatches`] runs a
//!   [`crate::data::batches::BatchPlan`] per epoch on a prefetch thread, seeded by (seed, epoch)
//!   so a resumed run sees exactly the batches the uninterrupted run would have.
//! - [`fit`]: the loop. A checkpoint after every epoch (model, buffers, SVDD centre,
//!   normalisation, optimizer state, epochs done, seed, config; written atomically), resume from
//!   it, one loss readback per `readback_every` steps, and a stop with [`Error::Diverged`] naming
//!   epoch and step on a non-finite loss, leaving the last good checkpoint in place.
//! - [`evaluate`]: scores, logits and estimates of a sample set, and its AUROC.

mod progress;
mod train_loop;

pub use progress::Progress;
pub use train_loop::{fit, FitOptions, FitSummary};

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::autograd::{no_grad, Var};
use crate::checkpoint::{Checkpoint, HostTensor};
use crate::data::batches::{Batch, BatchPlan, Prefetcher};
use crate::data::transforms::{Normalization, Pipeline};
use crate::data::Sample;
use crate::error::{Error, Result};
use crate::kernels::{Context, Tensor};
use crate::metrics::auroc;
use crate::models::deep_svdd;
use crate::models::lenet::{cifar10_lenet_variant, fmnist_lenet_variant, LenetVariant};
use crate::models::losses::Objective;
use crate::nn::{self, Init, Module, Sequential};
use crate::synth::{AnomalySource, OutlierExposure, SpectralAnomalies};

/// Checkpoint tensor names besides the network's own.
pub const CENTRE_NAME: &str = "svdd.center";
pub const MEAN_NAME: &str = "input.mean";
pub const STD_NAME: &str = "input.std";

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
}

impl LossKind {
    pub fn supervised(self) -> bool {
        self != LossKind::Svdd
    }

    pub fn name(self) -> &'static str {
        match self {
            LossKind::Svdd => "svdd",
            LossKind::Hsc => "hsc",
            LossKind::Logistic => "logistic",
        }
    }

    fn lenet_variant(self) -> LenetVariant {
        match self {
            LossKind::Svdd => LenetVariant::Svdd,
            LossKind::Hsc => LenetVariant::Features,
            LossKind::Logistic => LenetVariant::Scalar,
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

    /// The architecture name of the LeNet for this data set and loss, e.g. `fmnist-lenet-bias`.
    pub fn architecture(self, loss: LossKind) -> String {
        format!("{}-lenet{}", self.name(), loss.lenet_variant().suffix())
    }
}

/// Builds the network an architecture name stands for (see [`DatasetKind::architecture`]).
pub fn build_network(ctx: &Context, architecture: &str, seed: u64) -> Result<Sequential> {
    let mut init = Init::new(ctx, seed);
    for data in [DatasetKind::Fmnist, DatasetKind::Cifar10] {
        for loss in [LossKind::Svdd, LossKind::Hsc, LossKind::Logistic] {
            if data.architecture(loss) == architecture {
                let variant = loss.lenet_variant();
                return Ok(match data {
                    DatasetKind::Fmnist => fmnist_lenet_variant(&mut init, variant)?,
                    DatasetKind::Cifar10 => cifar10_lenet_variant(&mut init, variant)?,
                });
            }
        }
    }
    Err(Error::InvalidArgument(format!(
        "unknown architecture '{architecture}' (known: fmnist-lenet, fmnist-lenet-bias, fmnist-lenet-scalar, \
         cifar10-lenet, cifar10-lenet-bias, cifar10-lenet-scalar)"
    )))
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
        }
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
    pub net: Sequential,
    pub objective: Objective,
    pub architecture: String,
    pub normalization: Normalization,
}

impl Model {
    /// A fresh network for `data` and `loss`, initialised from `seed`. For SVDD the centre is
    /// the mean initial output over `centre_samples` (normalised, no augmentation).
    pub fn new(
        ctx: &Context,
        data: DatasetKind,
        loss: LossKind,
        seed: u64,
        normalization: Normalization,
        centre_samples: &[Sample],
    ) -> Result<Model> {
        let architecture = data.architecture(loss);
        let net = build_network(ctx, &architecture, seed)?;
        let objective = match loss {
            LossKind::Svdd => {
                let pipeline = Pipeline::default().with_normalization(normalization.clone());
                let mut batches = Vec::new();
                for b in Prefetcher::spawn(BatchPlan::evaluation(centre_samples.to_vec(), pipeline, 256), None, 2)? {
                    let b = b?;
                    batches.push(Tensor::from_slice(ctx, &b.shape, &b.data)?);
                }
                let c = deep_svdd::centre(&net, &batches)?;
                Objective::Svdd { centre: deep_svdd::centre_var(ctx, &c)? }
            }
            LossKind::Hsc => Objective::Hsc,
            LossKind::Logistic => Objective::Logistic,
        };
        Ok(Model { ctx: ctx.clone(), net, objective, architecture, normalization })
    }

    /// The model a training checkpoint holds: its architecture, weights, buffers, centre and
    /// normalisation. Optimizer state (`optim.*`) is left for [`fit`]. Missing, extra or wrongly
    /// shaped tensors are an error naming them.
    pub fn from_checkpoint(ctx: &Context, ck: &Checkpoint, path: &Path) -> Result<Model> {
        let stored = StoredConfig::from_checkpoint(ck, path)?;
        let net = build_network(ctx, &ck.meta.architecture, ck.meta.seed)?;
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
        let objective = match stored.train.loss {
            LossKind::Svdd => Objective::Svdd { centre: deep_svdd::centre_var(ctx, &ck.tensors[CENTRE_NAME].data)? },
            LossKind::Hsc => Objective::Hsc,
            LossKind::Logistic => Objective::Logistic,
        };
        Ok(Model { ctx: ctx.clone(), net, objective, architecture: ck.meta.architecture.clone(), normalization })
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
}

impl Evaluation {
    /// AUROC of the anomaly scores (error if one class is missing).
    pub fn auroc(&self) -> Result<f64> {
        auroc(&self.scores, &self.labels)
    }
}

/// Scores, logits and estimates of `samples` (eval mode, no gradient, normalised by the model's
/// normalisation, no augmentation).
pub fn evaluate(ctx: &Context, model: &Model, samples: &[Sample], batch_size: usize) -> Result<Evaluation> {
    model.net.set_training(false);
    let pipeline = Pipeline::default().with_normalization(model.normalization.clone());
    let mut plan = BatchPlan::evaluation(samples.to_vec(), pipeline, batch_size.max(1));
    plan.with_masks = false;
    let mut ev = Evaluation { scores: vec![], logits: vec![], etas: vec![], labels: vec![] };
    let result = (|| -> Result<()> {
        for b in Prefetcher::spawn(plan, None, 2)? {
            let b = b?;
            let x = Var::constant(Tensor::from_slice(ctx, &b.shape, &b.data)?);
            let est = no_grad(|| model.objective.estimates(&model.net.forward(&x)?))?;
            let f = |v: &Var| -> Result<Vec<f64>> { Ok(v.value().to_vec()?.into_iter().map(f64::from).collect()) };
            ev.scores.extend(f(&est.score)?);
            ev.logits.extend(f(&est.logit)?);
            ev.etas.extend(f(&est.eta)?);
            ev.labels.extend(b.labels);
        }
        Ok(())
    })();
    model.net.set_training(true);
    result.map(|_| ev)
}
