//! Post-hoc calibration of a trained model (thesis §4.2.1): score augmented images of the
//! calibration split and as many synthetic anomalies, then fit Platt, Beta or the calibration
//! head on them, and per-pixel Platt/Beta for models with maps (every pixel of a synthetic
//! anomaly is anomalous).
//!
//! Files written beside the model by [`save_calibration`]:
//! - `calibration.json`: the image-level [`Calibrator`] (Platt, Beta);
//! - `head.safetensors`: the calibration head's trained parameters (head);
//! - `pixel_calibration.json`: the per-pixel calibrator (map models, Platt/Beta);
//! - `calibration_scores.json` ([`crate::predict::CalibrationScores`]: format, version,
//!   architecture, `scores`, `pixel_scale`, `seed`), the raw anomaly
//!   scores of the augmented normal calibration images, sorted ascending (for conformal p-values
//!   and thresholds).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::autograd::{no_grad, Var};
use crate::calibration::{
    fit_linear_head, fit_pixel, train_head, Calibrator, HeadConfig, Method, PixelCalibrator, PixelFitConfig, SampleSet,
};
use crate::checkpoint::{Checkpoint, HostTensor};
use crate::data::batches::{BatchPlan, Prefetcher};
use crate::data::transforms::Pipeline;
use crate::data::Sample;
use crate::error::{Error, Result};
use crate::kernels::Tensor;
use crate::models::losses::Objective;
use crate::nn::{self, Init, Linear, Module};
use crate::train::{Anomalies, Model, Network};

pub const CALIBRATION_FILE: &str = "calibration.json";
pub const SCORES_FILE: &str = "calibration_scores.json";
pub const HEAD_FILE: &str = "head.safetensors";
pub const PIXEL_CALIBRATION_FILE: &str = "pixel_calibration.json";

/// The calibration methods of `oddity calibrate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum CalibrationMethod {
    Platt,
    Beta,
    Head,
}

impl CalibrationMethod {
    pub fn name(self) -> &'static str {
        match self {
            CalibrationMethod::Platt => "platt",
            CalibrationMethod::Beta => "beta",
            CalibrationMethod::Head => "head",
        }
    }

    /// The image-level map of Platt and Beta; `None` for the head.
    pub fn image_method(self) -> Option<Method> {
        match self {
            CalibrationMethod::Platt => Some(Method::Platt),
            CalibrationMethod::Beta => Some(Method::Beta),
            CalibrationMethod::Head => None,
        }
    }
}

/// How the calibration head's linear layer is trained (thesis §3.2.3, §4.2.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum HeadSolver {
    /// The frozen features are extracted once and the linear layer is fitted to the optimum of
    /// the logistic loss by L-BFGS (standardised features): the end point of the thesis's long
    /// Adam run; for a scalar model, its reset last layer on the features that feed it.
    #[default]
    Lbfgs,
    /// Adam on balanced batches through the frozen network (`--head-steps`, lr 1e-4).
    Adam,
}

/// How many calibration samples to score and what to keep of them.
#[derive(Clone, Copy, Debug)]
pub struct SampleOptions {
    /// Normal images, and as many synthetic anomalies (thesis: 10,000 each).
    pub count: usize,
    pub seed: u64,
    /// Keep the normalised inputs on the CPU (the head trains on them).
    pub keep_inputs: bool,
    /// Normal images (and as many anomalies) whose pixel logit maps are kept (map models).
    pub pixel_count: usize,
}

/// Scored calibration samples: normal images (label 0) and synthetic anomalies (label 1).
#[derive(Default)]
pub struct CalibrationSamples {
    pub logits: Vec<f64>,
    pub labels: Vec<u8>,
    /// Raw anomaly scores of the normal images.
    pub normal_scores: Vec<f64>,
    /// Normalised inputs [n, C, H, W] flattened, when kept.
    pub normal_inputs: Vec<f32>,
    pub anomalous_inputs: Vec<f32>,
    /// Pixel logit maps [m, H, W] flattened with per-pixel labels, for map models.
    pub pixel_logits: Vec<f32>,
    pub pixel_labels: Vec<f32>,
    pub pixel_maps: usize,
    pub sample_shape: [usize; 3],
}

/// Scores augmented images of `normal` (the calibration split, through `augment` and the
/// model's normalisation) and one synthetic anomaly from `anomalies` per normal image, until
/// `opts.count` of each; passes over `normal` repeat with fresh augmentation.
pub fn calibration_samples(
    model: &Model,
    normal: &[Sample],
    augment: &Pipeline,
    anomalies: &Anomalies,
    opts: SampleOptions,
) -> Result<CalibrationSamples> {
    if normal.is_empty() || opts.count == 0 {
        return Err(Error::InvalidArgument(format!(
            "calibration needs normal images and a sample count > 0, got {} images and count {}",
            normal.len(),
            opts.count
        )));
    }
    let half = normal.len().min(64);
    let per_pass = normal.len() / half * half;
    let passes = opts.count.div_ceil(per_pass);
    let pipeline = augment.clone().with_normalization(model.normalization.clone());
    let plan = BatchPlan::training(normal.to_vec(), pipeline, 2 * half, passes, opts.seed);
    let [c, h, w] = model.input_shape();
    let len = c * h * w;
    let mut out = CalibrationSamples { sample_shape: [c, h, w], ..CalibrationSamples::default() };
    let mut got = 0;
    model.net.set_training(false);
    let result = (|| -> Result<()> {
        for batch in Prefetcher::spawn(plan, Some(anomalies.source()), 2)? {
            let batch = batch?;
            let k = half.min(opts.count - got);
            let rows: Vec<usize> = (0..k).chain(half..half + k).collect();
            let data: Vec<f32> = rows.iter().flat_map(|&i| batch.data[i * len..(i + 1) * len].iter().copied()).collect();
            let labels: Vec<u8> = rows.iter().map(|&i| batch.labels[i]).collect();
            let x = Var::constant(Tensor::from_slice(&model.ctx, &[2 * k, c, h, w], &data)?);
            let est = no_grad(|| model.estimates(&x))?;
            let logits = est.logit.value().to_vec()?;
            let scores = est.score.value().to_vec()?;
            out.logits.extend(logits.iter().map(|&v| v as f64));
            out.labels.extend(&labels);
            out.normal_scores.extend(scores[..k].iter().map(|&v| v as f64));
            if opts.keep_inputs {
                out.normal_inputs.extend_from_slice(&data[..k * len]);
                out.anomalous_inputs.extend_from_slice(&data[k * len..]);
            }
            if model.has_maps() && out.pixel_maps < 2 * opts.pixel_count {
                if let Some(maps) = no_grad(|| model.pixel_logits(&x))? {
                    let maps = maps.value().to_vec()?;
                    out.pixel_logits.extend_from_slice(&maps);
                    out.pixel_labels.extend(labels.iter().flat_map(|&l| std::iter::repeat_n(l as f32, h * w)));
                    out.pixel_maps += 2 * k;
                }
            }
            got += k;
            if got >= opts.count {
                break;
            }
        }
        Ok(())
    })();
    model.net.set_training(true);
    result?;
    for (i, v) in out.logits.iter().enumerate() {
        if !v.is_finite() {
            return Err(Error::NonFiniteScore { index: i, value: *v });
        }
    }
    Ok(out)
}

/// Where the calibration head sits (thesis §3.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeadKind {
    /// A scalar-output network: its last linear layer (`head.*`) is reset and trained.
    ResetLastLinear,
    /// A vector (or map) output, flattened, connected to one output by a new linear layer.
    OutputLinear,
    /// An autoencoder cut at its bottleneck, the code connected to one output.
    BottleneckLinear,
}

/// Names of the head's new layer in [`Head::params`] and `head.safetensors`.
const HEAD_PREFIX: &str = "calibration_head";

/// The calibration head of a model: which parameters train and how the logit is formed.
pub struct Head {
    pub kind: HeadKind,
    linear: Option<Linear>,
    /// The names of the trained parameters (in [`Head::params`]).
    pub trained: Vec<String>,
}

impl Head {
    /// A fresh head for `model` (initialised from `seed`). For [`HeadKind::ResetLastLinear`] this
    /// overwrites the model's last linear layer in place.
    pub fn build(model: &Model, seed: u64) -> Result<Head> {
        let ctx = &model.ctx;
        let mut init = Init::new(ctx, seed ^ 0x6865_6164);
        let kind = match (&model.objective, &model.net) {
            (Objective::Logistic, _) => HeadKind::ResetLastLinear,
            (_, Network::AutoEncoder(_)) => HeadKind::BottleneckLinear,
            _ => HeadKind::OutputLinear,
        };
        if kind == HeadKind::ResetLastLinear {
            let params = nn::parameters(&model.net);
            let weight = params.iter().find(|(n, _)| n == "head.weight").ok_or_else(|| {
                Error::InvalidArgument(format!("{}: no last linear layer 'head' to reset", model.architecture))
            })?;
            let fresh = Linear::new(&mut init, weight.1.shape()[1], weight.1.shape()[0], true)?;
            let fresh_params = nn::parameters(&fresh);
            let mut trained = Vec::new();
            for (name, v) in &fresh_params {
                let full = format!("head.{name}");
                let target = params.iter().find(|(n, _)| *n == full).ok_or_else(|| {
                    Error::InvalidArgument(format!("{}: no parameter {full} to reset", model.architecture))
                })?;
                target.1.value().write(&v.value().to_vec()?)?;
                trained.push(full);
            }
            return Ok(Head { kind, linear: None, trained });
        }
        let [c, h, w] = model.input_shape();
        let probe = Var::constant(Tensor::zeros(ctx, &[2, c, h, w])?);
        model.net.set_training(false);
        let features = no_grad(|| Head::features(kind, model, &probe));
        model.net.set_training(true);
        let n_in = features?.shape()[1];
        let linear = Linear::new(&mut init, n_in, 1, true)?;
        let trained = nn::parameters(&linear).into_iter().map(|(n, _)| format!("{HEAD_PREFIX}.{n}")).collect();
        Ok(Head { kind, linear: Some(linear), trained })
    }

    /// The flattened input of the new linear layer: [N, features].
    fn features(kind: HeadKind, model: &Model, x: &Var) -> Result<Var> {
        match (kind, &model.net) {
            (HeadKind::BottleneckLinear, Network::AutoEncoder(ae)) => Ok(ae.encode(x)?.flatten()?),
            // The input of the reset last layer: every layer but the last (`head`).
            (HeadKind::ResetLastLinear, Network::Sequential(seq)) => {
                let Some(((last, _), body)) = seq.layers.split_last() else {
                    return Err(Error::InvalidArgument(format!("{}: an empty network has no head", model.architecture)));
                };
                if last != "head" {
                    return Err(Error::InvalidArgument(format!(
                        "{}: the last layer is '{last}', not the linear 'head' to reset",
                        model.architecture
                    )));
                }
                let mut h = x.clone();
                for (_, layer) in body {
                    h = layer.forward(&h)?;
                }
                Ok(h.flatten()?)
            }
            _ => Ok(model.net.forward(x)?.flatten()?),
        }
    }

    /// Every parameter of model and head, by name (the model's names unchanged).
    pub fn params(&self, model: &Model) -> Vec<(String, Var)> {
        let mut all = nn::parameters(&model.net);
        if let Some(l) = &self.linear {
            all.extend(nn::parameters(l).into_iter().map(|(n, v)| (format!("{HEAD_PREFIX}.{n}"), v)));
        }
        all
    }

    /// The head's logits [N]. x: [N, C, H, W] normalised.
    pub fn logits(&self, model: &Model, x: &Var) -> Result<Var> {
        let n = x.shape()[0];
        match &self.linear {
            None => Ok(model.estimates(x)?.logit.reshape(&[n])?),
            Some(l) => Ok(l.forward(&Head::features(self.kind, model, x)?)?.reshape(&[n])?),
        }
    }

    /// Writes the trained parameters to a safetensors file.
    pub fn save(&self, model: &Model, path: &Path, seed: u64) -> Result<()> {
        let mut ck = Checkpoint::new(
            format!("calibration-head:{}", model.architecture),
            seed,
            serde_json::json!({ "kind": self.kind, "trained": self.trained }),
        );
        for (name, v) in self.params(model) {
            if self.trained.contains(&name) {
                ck.insert(name, HostTensor::new(v.shape().to_vec(), v.value().to_vec()?)?);
            }
        }
        ck.save(path)
    }

    /// Rebuilds the head saved by [`Head::save`] on `model` (loaded fresh from its checkpoint).
    pub fn load(model: &Model, path: &Path) -> Result<Head> {
        let ck = Checkpoint::load(path)?;
        let head = Head::build(model, ck.meta.seed)?;
        let expected: Vec<(String, Vec<usize>)> = head
            .params(model)
            .into_iter()
            .filter(|(n, _)| head.trained.contains(n))
            .map(|(n, v)| (n, v.shape().to_vec()))
            .collect();
        ck.check_matches(&expected, path)?;
        for (name, v) in head.params(model) {
            if let Some(t) = ck.tensors.get(&name) {
                v.value().write(&t.data)?;
            }
        }
        Ok(head)
    }
}

/// A fitted calibration of a model: image-level map or head, and per-pixel maps.
pub struct Calibration {
    pub method: CalibrationMethod,
    pub calibrator: Option<Calibrator>,
    pub head: Option<Head>,
    pub pixel: Option<PixelCalibrator>,
    /// Losses of the head's steps or the per-pixel fit's epochs (for the log); the L-BFGS head:
    /// its final loss.
    pub losses: Vec<f64>,
    /// How the L-BFGS head fit went (samples, loss, iterations, converged).
    pub head_fit: Option<crate::calibration::FitSummary>,
}

impl Calibration {
    /// What the user must know about the fit (see [`crate::calibration::FitSummary::warnings`]).
    pub fn warnings(&self) -> Vec<String> {
        let mut w: Vec<String> = self.calibrator.iter().flat_map(|c| c.warnings().iter().cloned()).collect();
        w.extend(self.head_fit.iter().flat_map(|f| f.warnings.iter().cloned()));
        w
    }

    /// Calibrated image logits [N] through the model: differentiable in x (perturbation).
    pub fn logits(&self, model: &Model, x: &Var) -> Result<Var> {
        let n = x.shape()[0];
        if let Some(h) = &self.head {
            return h.logits(model, x);
        }
        let z = model.estimates(x)?.logit.reshape(&[n])?;
        match &self.calibrator {
            Some(c) => c.apply_var(&z),
            None => Ok(z),
        }
    }

    /// Calibrated pixel logit maps [N, 1, H, W] for map models with a pixel calibrator.
    pub fn pixel_logits(&self, model: &Model, x: &Var) -> Result<Option<Var>> {
        match (&self.pixel, model.pixel_logits(x)?) {
            (Some(p), Some(z)) => Ok(Some(p.apply(&z)?)),
            _ => Ok(None),
        }
    }
}

/// Settings of [`fit_calibration`].
#[derive(Clone, Copy, Debug)]
pub struct FitSettings {
    pub head: HeadConfig,
    pub head_solver: HeadSolver,
    pub pixel: PixelFitConfig,
}

/// Frozen features [n, features] (flattened) of the head's new layer for kept inputs
/// [n, C, H, W] (flattened), in batches, without gradients; the network must be in eval mode.
fn head_features(head: &Head, model: &Model, inputs: &[f32], sample_shape: [usize; 3]) -> Result<(Vec<f32>, usize)> {
    const BATCH: usize = 256;
    let len: usize = sample_shape.iter().product();
    let mut out = Vec::new();
    let mut width = 0;
    for chunk in inputs.chunks(BATCH * len) {
        let n = chunk.len() / len;
        let x = Var::constant(Tensor::from_slice(&model.ctx, &[n, sample_shape[0], sample_shape[1], sample_shape[2]], chunk)?);
        let f = no_grad(|| Head::features(head.kind, model, &x))?;
        width = f.shape()[1];
        out.extend(f.value().to_vec()?);
    }
    Ok((out, width))
}

/// Fits `method` on scored calibration samples. The head trains on `samples`' kept inputs and
/// changes `model` in place when it resets a last layer.
pub fn fit_calibration(
    model: &Model,
    method: CalibrationMethod,
    samples: &CalibrationSamples,
    settings: FitSettings,
) -> Result<Calibration> {
    let mut out = Calibration { method, calibrator: None, head: None, pixel: None, losses: vec![], head_fit: None };
    match method.image_method() {
        Some(m) => {
            out.calibrator = Some(Calibrator::fit(m, &samples.logits, &samples.labels)?);
            if samples.pixel_maps > 0 {
                let [_, h, w] = samples.sample_shape;
                let (pixel, losses) = fit_pixel(
                    &model.ctx,
                    m,
                    &samples.pixel_logits,
                    &samples.pixel_labels,
                    [samples.pixel_maps, h, w],
                    settings.pixel,
                )?;
                out.pixel = Some(pixel);
                out.losses = losses;
            }
        }
        None => {
            if samples.normal_inputs.is_empty() || samples.anomalous_inputs.is_empty() {
                return Err(Error::InvalidArgument("the calibration head needs the calibration inputs kept".into()));
            }
            let head = Head::build(model, settings.head.seed)?;
            model.net.set_training(false);
            let losses = match (&head.linear, settings.head_solver) {
                (linear, HeadSolver::Lbfgs) => (|| -> Result<Vec<f64>> {
                    let shape = samples.sample_shape;
                    let (f0, width) = head_features(&head, model, &samples.normal_inputs, shape)?;
                    let (f1, _) = head_features(&head, model, &samples.anomalous_inputs, shape)?;
                    let fit = fit_linear_head(&f0, &f1, width)?;
                    // The new layer's parameters, or the model's reset `head.*` (scalar networks).
                    let params: Vec<(String, Var)> = match linear {
                        Some(l) => nn::parameters(l),
                        None => head
                            .params(model)
                            .into_iter()
                            .filter(|(n, _)| head.trained.contains(n))
                            .map(|(n, v)| (n.trim_start_matches("head.").to_string(), v))
                            .collect(),
                    };
                    for (name, v) in &params {
                        let values: Vec<f32> = match name.as_str() {
                            "weight" => fit.weight.iter().map(|&w| w as f32).collect(),
                            "bias" => vec![fit.bias as f32],
                            other => {
                                return Err(Error::InvalidArgument(format!("calibration head: unexpected parameter {other}")))
                            }
                        };
                        v.value().write(&values)?;
                    }
                    out.head_fit = Some(fit.summary.clone());
                    Ok(vec![fit.summary.loss])
                })(),
                _ => {
                    let params = head.params(model);
                    let trained: Vec<&str> = head.trained.iter().map(String::as_str).collect();
                    train_head(
                        &model.ctx,
                        &params,
                        &trained,
                        |x| head.logits(model, x),
                        SampleSet { data: &samples.normal_inputs, sample_shape: &samples.sample_shape },
                        SampleSet { data: &samples.anomalous_inputs, sample_shape: &samples.sample_shape },
                        settings.head,
                    )
                    .map(|l| l.into_iter().map(f64::from).collect())
                }
            };
            model.net.set_training(true);
            out.losses = losses?;
            out.head = Some(head);
        }
    }
    Ok(out)
}

/// What `calibration_scores.json` holds: the file `oddity predict` reads (conformal p-values and
/// the false-positive-rate threshold), with the architecture that produced the scores.
pub use crate::predict::CalibrationScores as ScoresFile;

/// Writes the calibration's files into `dir` (see the module docs); returns their names.
pub fn save_calibration(
    dir: &Path,
    model: &Model,
    calibration: &Calibration,
    normal_scores: &[f64],
    seed: u64,
) -> Result<Vec<String>> {
    let mut written = Vec::new();
    if let Some(c) = &calibration.calibrator {
        c.save(&dir.join(CALIBRATION_FILE))?;
        written.push(CALIBRATION_FILE.to_string());
    }
    if let Some(h) = &calibration.head {
        h.save(model, &dir.join(HEAD_FILE), seed)?;
        written.push(HEAD_FILE.to_string());
    }
    if let Some(p) = &calibration.pixel {
        p.save(&dir.join(PIXEL_CALIBRATION_FILE))?;
        written.push(PIXEL_CALIBRATION_FILE.to_string());
    }
    let mut scores = normal_scores.to_vec();
    scores.sort_by(f64::total_cmp);
    ScoresFile::new(&model.architecture, scores, None, seed).save(&dir.join(SCORES_FILE))?;
    written.push(SCORES_FILE.to_string());
    Ok(written)
}
