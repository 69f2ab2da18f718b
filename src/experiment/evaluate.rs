//! Evaluation of one experiment cell (thesis §4.2.2): image AUROC on the test set, unperturbed
//! and perturbed (eq. 3.3, through the whole model including its calibration); pixel AUROC and
//! AUPRO for map models on data with masks; ECE and MCE on the normal test images plus as many
//! unseen synthetic anomalies.

use serde::{Deserialize, Serialize};

use crate::autograd::{no_grad, Var};
use crate::nn::Module;
use crate::calibration::{perturb, sigmoid};
use crate::data::batches::{BatchPlan, Prefetcher};
use crate::data::Sample;
use crate::error::{Error, Result};
use crate::kernels::Tensor;
use crate::metrics::{auroc, ece, mce};
use crate::train::{Anomalies, Model, PixelMaps};

use super::calibrate::Calibration;

/// Equal-width bins of ECE and MCE (thesis definitions 9 and 10).
pub const CALIBRATION_BINS: usize = 10;

/// The metrics of one cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellMetrics {
    pub auroc: f64,
    pub auroc_perturbed: f64,
    pub ece: f64,
    pub mce: f64,
    pub pixel_auroc: Option<f64>,
    pub aupro: Option<f64>,
    pub pixel_auroc_perturbed: Option<f64>,
    pub aupro_perturbed: Option<f64>,
    pub test_images: usize,
    pub ece_samples: usize,
    /// Which unseen synthetic anomalies ECE / MCE used (thesis §4.2.2: normal test images plus
    /// as many synthetic anomalies used neither in training nor in calibration): `spectral`
    /// (fresh images from the evaluation seed) or `oe-evaluation-part` (the quarter of the
    /// outlier-exposure folder neither training nor calibration draws from, `OePart`). Set by the
    /// runner; empty in older results files (`oe-heldout` there: the calibration split's other
    /// half, which training had seen).
    #[serde(default)]
    pub ece_anomalies: String,
}

/// Settings of [`evaluate_cell`].
#[derive(Clone, Copy, Debug)]
pub struct EvalSettings {
    pub epsilon: f32,
    pub batch_size: usize,
    /// Seeds the unseen synthetic anomalies of ECE/MCE.
    pub seed: u64,
}

/// Image logits of the whole model: calibrated, or the base model's own.
fn image_logits(model: &Model, cal: Option<&Calibration>, x: &Var) -> Result<Var> {
    match cal {
        Some(c) => c.logits(model, x),
        None => Ok(model.estimates(x)?.logit.reshape(&[x.shape()[0]])?),
    }
}

/// Image scores (higher = more anomalous): calibrated logits, or the base model's scores.
fn image_scores(model: &Model, cal: Option<&Calibration>, x: &Var) -> Result<Vec<f64>> {
    let v = no_grad(|| match cal {
        Some(c) => c.logits(model, x),
        None => Ok(model.estimates(x)?.score),
    })?;
    Ok(v.value().to_vec()?.into_iter().map(f64::from).collect())
}

/// Pixel logits of the whole model when it has a pixel calibration, else its anomaly maps
/// (perturbation then runs through the base pixel logits).
fn pixel_maps(model: &Model, cal: Option<&Calibration>, x: &Var) -> Result<Option<Var>> {
    match cal.and_then(|c| c.pixel.as_ref()).is_some() {
        true => cal.map(|c| c.pixel_logits(model, x)).transpose().map(Option::flatten),
        false => model.anomaly_maps(x),
    }
}

fn pixel_logit_graph(model: &Model, cal: Option<&Calibration>, x: &Var) -> Result<Var> {
    let z = match cal {
        Some(c) if c.pixel.is_some() => c.pixel_logits(model, x)?,
        _ => model.pixel_logits(x)?,
    };
    z.ok_or_else(|| Error::InvalidArgument(format!("{} has no pixel logits", model.architecture)))
}

/// Evaluates `model` with `cal` (None: the base model as trained) on `test` and on the normal
/// test images plus as many anomalies from `anomalies`.
pub fn evaluate_cell(
    model: &Model,
    cal: Option<&Calibration>,
    test: &[Sample],
    anomalies: &Anomalies,
    settings: EvalSettings,
) -> Result<CellMetrics> {
    model.net.set_training(false);
    let result = evaluate_inner(model, cal, test, anomalies, settings);
    model.net.set_training(true);
    result
}

fn evaluate_inner(
    model: &Model,
    cal: Option<&Calibration>,
    test: &[Sample],
    anomalies: &Anomalies,
    settings: EvalSettings,
) -> Result<CellMetrics> {
    let ctx = &model.ctx;
    let [_, h, w] = model.input_shape();
    let mut plan = BatchPlan::evaluation(test.to_vec(), model.test_pipeline(), settings.batch_size.max(1));
    plan.with_masks = model.has_maps();
    let (mut scores, mut scores_p, mut labels) = (vec![], vec![], vec![]);
    let empty = || PixelMaps { height: h, width: w, ..PixelMaps::default() };
    let (mut maps, mut maps_p) = (empty(), empty());
    let mut all_masked = plan.with_masks;
    for b in Prefetcher::spawn(plan, None, 2)? {
        let b = b?;
        let xt = Tensor::from_slice(ctx, &b.shape, &b.data)?;
        let x = Var::constant(xt.clone());
        scores.extend(image_scores(model, cal, &x)?);
        let xp = Var::constant(perturb(&xt, |v| image_logits(model, cal, v), settings.epsilon)?);
        scores_p.extend(image_scores(model, cal, &xp)?);
        labels.extend(&b.labels);
        match &b.masks {
            Some(masks) if all_masked => {
                let m = no_grad(|| pixel_maps(model, cal, &x))?;
                let xpp = Var::constant(perturb(&xt, |v| pixel_logit_graph(model, cal, v), settings.epsilon)?);
                let mp = no_grad(|| pixel_maps(model, cal, &xpp))?;
                match (m, mp) {
                    (Some(m), Some(mp)) => {
                        maps.scores.extend(m.value().to_vec()?);
                        maps_p.scores.extend(mp.value().to_vec()?);
                        maps.masks.extend(masks);
                        maps_p.masks.extend(masks);
                    }
                    _ => all_masked = false,
                }
            }
            _ => all_masked = false,
        }
    }
    let auroc_plain = auroc(&scores, &labels)?;
    let auroc_perturbed = auroc(&scores_p, &labels)?;
    let (mut pixel_auroc, mut aupro, mut pixel_auroc_p, mut aupro_p) = (None, None, None, None);
    if all_masked && !maps.scores.is_empty() {
        pixel_auroc = Some(maps.pixel_auroc()?);
        aupro = Some(maps.aupro()?);
        pixel_auroc_p = Some(maps_p.pixel_auroc()?);
        aupro_p = Some(maps_p.aupro()?);
    }

    // ECE / MCE: the normal test images and one unseen synthetic anomaly each.
    let normal: Vec<Sample> = test.iter().filter(|s| s.label == 0).cloned().collect();
    if normal.is_empty() {
        return Err(Error::InvalidArgument("ECE needs normal test images; the test set has none".into()));
    }
    let mut plan = BatchPlan::evaluation(normal, model.test_pipeline(), settings.batch_size.max(2));
    plan.with_masks = false;
    plan.seed = settings.seed;
    let (mut probs, mut ece_labels) = (vec![], vec![]);
    for b in Prefetcher::spawn(plan, Some(anomalies.source()), 2)? {
        let b = b?;
        let x = Var::constant(Tensor::from_slice(ctx, &b.shape, &b.data)?);
        let p = no_grad(|| match cal {
            Some(c) => c.logits(model, &x),
            None => Ok(model.estimates(&x)?.eta),
        })?;
        let p = p.value().to_vec()?;
        probs.extend(p.into_iter().map(|v| if cal.is_some() { sigmoid(v as f64) } else { v as f64 }));
        ece_labels.extend(&b.labels);
    }
    Ok(CellMetrics {
        auroc: auroc_plain,
        auroc_perturbed,
        ece: ece(&probs, &ece_labels, CALIBRATION_BINS)?,
        mce: mce(&probs, &ece_labels, CALIBRATION_BINS)?,
        pixel_auroc,
        aupro,
        pixel_auroc_perturbed: pixel_auroc_p,
        aupro_perturbed: aupro_p,
        test_images: labels.len(),
        ece_samples: probs.len(),
        ece_anomalies: String::new(),
    })
}
