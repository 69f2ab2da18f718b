//! The training losses of the thesis (§2.4.2, §4.1) with, for each, the anomaly score, the logit
//! z (input of Platt scaling) and the probability estimate η̂ (input of Beta calibration).
//!
//! | loss | network output | anomaly score | η̂ | z |
//! |---|---|---|---|---|
//! | SVDD ([`super::deep_svdd`]) | φ ∈ R^n | ‖φ − c‖² | σ(z) | the score |
//! | HSC (eq. 4.1) | φ ∈ R^n | v = √(‖φ‖²+1) − 1 | 1 − e^{−v} | σ⁻¹(η̂) |
//! | logistic (eq. 2.15) | z ∈ R | z | σ(z) | z |
//! | FCDD (§4.1.3) | φ ∈ R^{m×n} | per pixel A = √(φ²+1) − 1, image v = mean A | 1 − e^{−A} | σ⁻¹(η̂) |
//! | SSIM (§4.1.4) | reconstruction x̂ | per pixel 1 − S(x, x̂) = 2η̂, image 2·mean η̂ | (1 − S)/2, image mean | σ⁻¹(η̂) |
//! | per-pixel logistic (U-Net) | logits z ∈ R^{h×w} | per pixel z, image η̂ | σ(z), image mean σ(z) | z, image σ⁻¹(η̂) |
//!
//! Per-pixel maps (`[N, 1, H, W]` at the input's size, [`Objective::anomaly_map`],
//! [`Objective::pixel_logits`]): FCDD upsamples A to A' with the receptive-field Gaussian
//! (thesis: std 14) and uses η̂ = 1 − e^{−A'}, z = σ⁻¹(η̂); SSIM averages S over channels.
//! The image level of the SSIM and U-Net losses averages the per-pixel η̂ and derives the
//! logit (and for SSIM the score 2η̂) from it (§4.1.4: "detection averages η̂_ij"); for the
//! U-Net the image score is that mean η̂.
//!
//! Labels y are 0 for normal and 1 for anomalous data, as f32 tensors of shape `[N]` (or of the
//! map's shape for per-pixel losses). The partial losses of HSC are v (y = 0) and
//! −ln(1 − e^{−v}) (y = 1); the second is computed by [`neg_log1mexp`], finite and accurate for
//! every v ≥ 0, and the logistic loss through softplus, finite for any logit.

use crate::autograd::{gaussian_upsample, ssim_loss, ssim_map, unary, Var};
use crate::kernels::elementwise::Unary;
use crate::kernels::gaussian_upsample::GaussianUpsample;
use crate::kernels::{Error, Result};

use super::deep_svdd;

/// Below this, −ln(1 − e^{−v}) uses its series in v; above, the direct form (where
/// 1 − e^{−v} ≥ 0.39 has no cancellation).
const LOG1MEXP_SPLIT: f32 = 0.5;
/// v is clamped up to this in −ln(1 − e^{−v}), so v = 0 gives ≈ 69.1 instead of +∞; a normal
/// f32 on every backend (no flush to zero).
pub const LOG1MEXP_TINY: f32 = 1e-30;

/// −ln(1 − e^{−v}) elementwise for v ≥ 0 (−log1mexp), finite for every v ≥ 0 (clamped at
/// [`LOG1MEXP_TINY`]).
///
/// For v ≤ 0.5: −ln v + v/2 − v²/24 + v⁴/2880 (the series of ln((1 − e^{−v})/v), truncation
/// error below v⁶/181440 ≤ 9e-8); for v > 0.5 the direct form. The branches are blended with a
/// 0/1 mask made on the GPU from sign(v − 0.5) (zero gradient), each branch on v clamped into
/// its own range so the unused one stays finite (no 0·∞ = NaN).
pub fn neg_log1mexp(v: &Var) -> Result<Var> {
    let large = unary(v, Unary::Clamp(LOG1MEXP_SPLIT, f32::MAX))?;
    let a = large.neg()?.exp()?.affine(-1.0, 1.0)?.log()?.neg()?;
    let small = unary(v, Unary::Clamp(LOG1MEXP_TINY, LOG1MEXP_SPLIT))?;
    let s2 = small.mul(&small)?;
    let b = small
        .log()?
        .neg()?
        .add(&small.mul_scalar(0.5)?)?
        .sub(&s2.mul_scalar(1.0 / 24.0)?)?
        .add(&s2.mul(&s2)?.mul_scalar(1.0 / 2880.0)?)?;
    let mask = unary(&v.add_scalar(-LOG1MEXP_SPLIT)?, Unary::Sign)?.affine(0.5, 0.5)?;
    b.add(&mask.mul(&a.sub(&b)?)?)
}

/// Pseudo-Huber norm v = √(‖φ‖² + 1) − 1 per sample, as s / (√(s + 1) + 1) with s = ‖φ‖² (no
/// cancellation at small s). phi: [N, D] -> [N]
pub fn pseudo_huber(phi: &Var) -> Result<Var> {
    if phi.shape().len() != 2 {
        return Err(Error::Shape(format!("pseudo_huber: expected features [N, D], got {:?}", phi.shape())));
    }
    let s = phi.mul(phi)?.sum_axis(1, false)?;
    s.div(&s.add_scalar(1.0)?.sqrt()?.add_scalar(1.0)?)
}

/// Elementwise pseudo-Huber map A = √(φ² + 1) − 1 = φ² / (√(φ² + 1) + 1) (FCDD's heatmap,
/// §4.1.3). Any shape.
pub fn pseudo_huber_map(phi: &Var) -> Result<Var> {
    let s = phi.mul(phi)?;
    s.div(&s.add_scalar(1.0)?.sqrt()?.add_scalar(1.0)?)
}

fn check_labels(what: &str, x: &Var, y: &Var) -> Result<()> {
    if x.shape() != y.shape() {
        return Err(Error::Shape(format!(
            "{what}: labels of shape {:?} for values of shape {:?}",
            y.shape(),
            x.shape()
        )));
    }
    Ok(())
}

/// Elementwise HSC loss λ(y, v) = (1 − y) v − y ln(1 − e^{−v}) (eq. 4.1). v, y: same shape.
pub fn hsc_elementwise(v: &Var, y: &Var) -> Result<Var> {
    check_labels("hsc loss", v, y)?;
    let normal = y.affine(-1.0, 1.0)?.mul(v)?;
    normal.add(&y.mul(&neg_log1mexp(v)?)?)
}

/// Mean HSC loss of a batch from its pseudo-Huber values. v, y: [N]
pub fn hsc_loss_v(v: &Var, y: &Var) -> Result<Var> {
    hsc_elementwise(v, y)?.mean()
}

/// Mean HSC loss of a batch of features. phi: [N, D], y: [N]
pub fn hsc_loss(phi: &Var, y: &Var) -> Result<Var> {
    hsc_loss_v(&pseudo_huber(phi)?, y)
}

/// HSC estimate η̂ = 1 − e^{−v} = exp(−(−ln(1 − e^{−v}))), accurate also for small v.
pub fn hsc_eta(v: &Var) -> Result<Var> {
    neg_log1mexp(v)?.neg()?.exp()
}

/// HSC logit z = σ⁻¹(η̂) = ln(1 − e^{−v}) − ln(e^{−v}) = v − (−ln(1 − e^{−v})).
pub fn hsc_logit(v: &Var) -> Result<Var> {
    v.sub(&neg_log1mexp(v)?)
}

/// FCDD image value v: the mean over each sample of the pseudo-Huber map (§4.1.3).
/// phi: [N, ...] -> [N]
pub fn fcdd_v(phi: &Var) -> Result<Var> {
    if phi.shape().len() < 2 {
        return Err(Error::Shape(format!("fcdd_v: expected a map [N, ...], got {:?}", phi.shape())));
    }
    pseudo_huber_map(phi)?.flatten()?.mean_axis(1, false)
}

/// FCDD loss: HSC on the mean pseudo-Huber map per sample. phi: [N, ...], y: [N]
pub fn fcdd_loss(phi: &Var, y: &Var) -> Result<Var> {
    hsc_loss_v(&fcdd_v(phi)?, y)
}

/// Elementwise logistic loss λ(y, z) = y ln(1 + e^{−z}) + (1 − y) ln(1 + e^{z}) (eq. 2.15),
/// through softplus (finite for any z). z, y: same shape.
pub fn logistic_elementwise(z: &Var, y: &Var) -> Result<Var> {
    check_labels("logistic loss", z, y)?;
    let anomalous = y.mul(&z.neg()?.softplus()?)?;
    anomalous.add(&y.affine(-1.0, 1.0)?.mul(&z.softplus()?)?)
}

/// Mean logistic loss of a batch of logits. z: [N] or [N, 1], y: [N]
pub fn logistic_loss(z: &Var, y: &Var) -> Result<Var> {
    logistic_elementwise(&scalar_head(z)?, y)?.mean()
}

/// Average per-pixel logistic loss of logit maps against pixel labels (thesis §4.2.1, the
/// U-Net loss and per-pixel calibration). z, y: same shape, e.g. [N, 1, H, W]
pub fn pixel_logistic_loss(z: &Var, y: &Var) -> Result<Var> {
    logistic_elementwise(z, y)?.mean()
}

/// A scalar-head output `[N, 1]` (or `[N]`) as `[N]`.
pub fn scalar_head(z: &Var) -> Result<Var> {
    match z.shape() {
        [_] => Ok(z.clone()),
        [n, 1] => z.reshape(&[*n]),
        s => Err(Error::Shape(format!("expected scalar outputs [N] or [N, 1], got {s:?}"))),
    }
}

/// The loss a network is trained with, holding what it needs besides the outputs.
#[derive(Clone, Debug)]
pub enum Objective {
    /// Deep SVDD around the centre `c` ([D]); unsupervised.
    Svdd { centre: Var },
    /// Hypersphere classifier with the pseudo-Huber norm; supervised.
    Hsc,
    /// Logistic loss on a scalar head; supervised.
    Logistic,
    /// FCDD: HSC on the mean pseudo-Huber map (supervised); maps are upsampled to the input
    /// size with `upsample` (the receptive-field Gaussian of the network).
    Fcdd { upsample: GaussianUpsample },
    /// SSIM autoencoder (unsupervised): the output is the reconstruction; inputs and
    /// reconstructions are padded with `pad_value` (the training mean; 0 for z-scored inputs).
    Ssim { pad_value: f32 },
    /// Average per-pixel logistic loss on logit maps `[N, 1, H, W]` (the U-Net; supervised,
    /// pixel labels).
    PixelLogistic,
}

/// The labels a batch brings to [`Objective::batch_loss`].
#[derive(Clone, Copy, Default)]
pub struct Targets<'a> {
    /// Image labels `[N]` (0 normal, 1 anomalous).
    pub labels: Option<&'a Var>,
    /// Pixel labels `[N, 1, H, W]` (the per-pixel logistic loss).
    pub pixel_labels: Option<&'a Var>,
}

/// Per sample: anomaly score, logit z and estimate η̂, all `[N]`.
pub struct Estimates {
    pub score: Var,
    pub logit: Var,
    pub eta: Var,
}

impl Objective {
    /// Whether training needs labelled anomalies (balanced batches).
    pub fn supervised(&self) -> bool {
        !matches!(self, Objective::Svdd { .. } | Objective::Ssim { .. })
    }

    /// Whether the objective scores pixels ([`Objective::anomaly_map`] gives a map).
    pub fn has_maps(&self) -> bool {
        matches!(self, Objective::Fcdd { .. } | Objective::Ssim { .. } | Objective::PixelLogistic)
    }

    /// The mean loss of a batch for every objective. `x`: the network input (the SSIM target);
    /// `out`: the network output; `targets`: image labels (HSC, logistic, FCDD) or pixel labels
    /// (per-pixel logistic).
    pub fn batch_loss(&self, x: &Var, out: &Var, targets: Targets<'_>) -> Result<Var> {
        match self {
            Objective::Ssim { pad_value } => {
                if x.shape() != out.shape() {
                    return Err(Error::Shape(format!(
                        "ssim loss: reconstruction {:?} for input {:?}",
                        out.shape(),
                        x.shape()
                    )));
                }
                ssim_loss(x, out, *pad_value)
            }
            Objective::PixelLogistic => {
                let y = targets.pixel_labels.ok_or_else(|| {
                    Error::Shape("the per-pixel logistic loss needs pixel labels [N, 1, H, W], got none".into())
                })?;
                pixel_logistic_loss(out, y)
            }
            _ => self.loss(out, targets.labels),
        }
    }

    /// The mean loss of a batch. `out`: the network output; `y`: labels `[N]` (ignored by SVDD,
    /// required by the supervised losses).
    pub fn loss(&self, out: &Var, y: Option<&Var>) -> Result<Var> {
        let need = |name: &str| {
            y.ok_or_else(|| Error::Shape(format!("the {name} loss needs labels y [N], got none")))
        };
        match self {
            Objective::Svdd { centre } => deep_svdd::loss(out, centre),
            Objective::Hsc => hsc_loss(out, need("HSC")?),
            Objective::Logistic => logistic_loss(out, need("logistic")?),
            Objective::Fcdd { .. } => fcdd_loss(out, need("FCDD")?),
            Objective::Ssim { .. } | Objective::PixelLogistic => Err(Error::Shape(format!(
                "the {self:?} loss needs the input or pixel labels: use Objective::batch_loss"
            ))),
        }
    }

    /// The anomaly score per sample (thesis §4.1). out -> [N]
    pub fn score(&self, out: &Var) -> Result<Var> {
        match self {
            Objective::Svdd { centre } => deep_svdd::distances(out, centre),
            Objective::Hsc => pseudo_huber(out),
            Objective::Logistic => scalar_head(out),
            _ => Ok(self.estimates(out)?.score),
        }
    }

    /// Score, logit and estimate per sample from the output alone (every objective but SSIM,
    /// which needs the input: [`Objective::estimates_with_input`]).
    pub fn estimates(&self, out: &Var) -> Result<Estimates> {
        let (score, logit, eta) = match self {
            Objective::Svdd { centre } => {
                let score = deep_svdd::distances(out, centre)?;
                (score.clone(), deep_svdd::logit(&score)?, deep_svdd::eta(&score)?)
            }
            Objective::Hsc => {
                let v = pseudo_huber(out)?;
                (v.clone(), hsc_logit(&v)?, hsc_eta(&v)?)
            }
            Objective::Logistic => {
                let z = scalar_head(out)?;
                (z.clone(), z.clone(), z.sigmoid()?)
            }
            Objective::Fcdd { .. } => {
                let v = fcdd_v(out)?;
                (v.clone(), hsc_logit(&v)?, hsc_eta(&v)?)
            }
            Objective::PixelLogistic => {
                let eta = image_mean(&check_map("per-pixel logistic", out)?.sigmoid()?)?;
                (eta.clone(), prob_logit(&eta)?, eta)
            }
            Objective::Ssim { .. } => {
                return Err(Error::Shape("the SSIM estimates need the input: use Objective::estimates_with_input".into()))
            }
        };
        Ok(Estimates { score, logit, eta })
    }

    /// Score, logit and estimate per sample for every objective. x: the network input.
    pub fn estimates_with_input(&self, x: &Var, out: &Var) -> Result<Estimates> {
        match self {
            Objective::Ssim { pad_value } => {
                let eta = image_mean(&ssim_eta_map(x, out, *pad_value)?)?;
                Ok(Estimates { score: eta.mul_scalar(2.0)?, logit: prob_logit(&eta)?, eta })
            }
            _ => self.estimates(out),
        }
    }

    /// Per-pixel anomaly scores `[N, 1, H, W]` at the input's size: FCDD's upsampled A', SSIM's
    /// 1 − S, the U-Net's logits; `None` for image-level objectives.
    pub fn anomaly_map(&self, x: &Var, out: &Var) -> Result<Option<Var>> {
        Ok(Some(match self {
            Objective::Fcdd { upsample } => gaussian_upsample(&pseudo_huber_map(out)?, *upsample)?,
            Objective::Ssim { pad_value } => ssim_eta_map(x, out, *pad_value)?.mul_scalar(2.0)?,
            Objective::PixelLogistic => check_map("per-pixel logistic", out)?.clone(),
            _ => return Ok(None),
        }))
    }

    /// Per-pixel logits z = σ⁻¹(η̂) `[N, 1, H, W]` (per-pixel calibration); `None` for
    /// image-level objectives.
    pub fn pixel_logits(&self, x: &Var, out: &Var) -> Result<Option<Var>> {
        Ok(Some(match self {
            Objective::Fcdd { upsample } => hsc_logit(&gaussian_upsample(&pseudo_huber_map(out)?, *upsample)?)?,
            Objective::Ssim { pad_value } => prob_logit(&ssim_eta_map(x, out, *pad_value)?)?,
            Objective::PixelLogistic => check_map("per-pixel logistic", out)?.clone(),
            _ => return Ok(None),
        }))
    }
}

/// Probabilities are clamped into [`LOG1MEXP_TINY`, 1] on both sides of σ⁻¹, so η̂ = 0 or 1
/// gives a logit of about ∓69 instead of ∓∞.
///
/// σ⁻¹(η̂) = ln η̂ − ln(1 − η̂) elementwise.
pub fn prob_logit(eta: &Var) -> Result<Var> {
    let p = unary(eta, Unary::Clamp(LOG1MEXP_TINY, 1.0))?;
    let q = unary(&eta.affine(-1.0, 1.0)?, Unary::Clamp(LOG1MEXP_TINY, 1.0))?;
    p.log()?.sub(&q.log()?)
}

/// The SSIM estimate map η̂ = (1 − S(x, x̂)) / 2, S averaged over channels (thesis §4.1.4).
/// x, recon: [N, C, H, W] -> [N, 1, H, W]
pub fn ssim_eta_map(x: &Var, recon: &Var, pad_value: f32) -> Result<Var> {
    let s = ssim_map(x, recon, pad_value)?;
    let s = if s.shape()[1] == 1 { s } else { s.mean_axis(1, true)? };
    s.affine(-0.5, 0.5)
}

/// Mean over every pixel of each sample. [N, ...] -> [N]
fn image_mean(map: &Var) -> Result<Var> {
    map.flatten()?.mean_axis(1, false)
}

fn check_map<'a>(what: &str, out: &'a Var) -> Result<&'a Var> {
    match out.shape() {
        [_, 1, _, _] => Ok(out),
        s => Err(Error::Shape(format!("{what}: expected a one-channel map [N, 1, H, W], got {s:?}"))),
    }
}

/// Plain f64 formulas of the losses and estimates, for tests and for CPU-side calibration.
pub mod cpu {
    /// −ln(1 − e^{−v}) = −ln(−expm1(−v)).
    pub fn neg_log1mexp(v: f64) -> f64 {
        -(-(-v).exp_m1()).ln()
    }

    /// √(‖φ‖² + 1) − 1, as s / (√(s + 1) + 1).
    pub fn pseudo_huber(phi: &[f64]) -> f64 {
        let s: f64 = phi.iter().map(|x| x * x).sum();
        s / ((s + 1.0).sqrt() + 1.0)
    }

    /// λ(y, v) = (1 − y) v − y ln(1 − e^{−v}); a term whose weight is 0 is left out (so a
    /// normal sample at v = 0 costs 0, not 0·∞).
    pub fn hsc(y: f64, v: f64) -> f64 {
        let normal = if y != 1.0 { (1.0 - y) * v } else { 0.0 };
        let anomalous = if y != 0.0 { y * neg_log1mexp(v) } else { 0.0 };
        normal + anomalous
    }

    pub fn hsc_eta(v: f64) -> f64 {
        -(-v).exp_m1()
    }

    pub fn hsc_logit(v: f64) -> f64 {
        let eta = hsc_eta(v);
        eta.ln() - (1.0 - eta).ln()
    }

    /// ln(1 + e^x), without overflow.
    pub fn softplus(x: f64) -> f64 {
        x.max(0.0) + (-x.abs()).exp().ln_1p()
    }

    /// λ(y, z) = y ln(1 + e^{−z}) + (1 − y) ln(1 + e^{z}).
    pub fn logistic(y: f64, z: f64) -> f64 {
        y * softplus(-z) + (1.0 - y) * softplus(z)
    }

    pub fn sigmoid(z: f64) -> f64 {
        if z >= 0.0 {
            1.0 / (1.0 + (-z).exp())
        } else {
            z.exp() / (1.0 + z.exp())
        }
    }

    /// ‖φ − c‖².
    pub fn svdd(phi: &[f64], c: &[f64]) -> f64 {
        phi.iter().zip(c).map(|(a, b)| (a - b) * (a - b)).sum()
    }
}
