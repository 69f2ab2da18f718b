//! Post-hoc calibration of anomaly scores (thesis §3.2–3.3): a trained base model stays frozen
//! and a small map from its logit `z` to a calibrated logit is fitted on a held-out calibration
//! split of normal data (label 0) and synthetic anomalies (label 1).
//!
//! - [`Platt`]: `σ(a z + b)` (eq. 3.1); [`Beta`]: `σ(a ln η - b ln(1 - η) + c)`, a, b >= 0
//!   (eq. 3.2), with ln η and ln(1 - η) taken from the logit so overconfident models keep their
//!   ranking. Both fit by L-BFGS in f64 on the CPU; [`Calibrator`] holds either, applies it on the
//!   CPU or inside the GPU graph, and saves it as JSON beside the model.
//! - [`pixel`]: per-pixel Platt and Beta for localization (thesis §4.2), trained on the GPU.
//! - [`perturb`]: ODIN-style input perturbation through the model and its calibration (eq. 3.3).
//! - [`head`]: the calibration head (§3.2.3): Adam on chosen parameters, all others frozen,
//!   balanced batches, logistic loss; the model plugs in as a closure.

pub mod beta;
pub mod head;
pub mod logistic;
pub mod perturb;
pub mod pixel;
pub mod platt;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use beta::Beta;
pub use head::{fit_linear_head, train_head, HeadConfig, LinearHeadFit, SampleSet};
pub use logistic::{logistic_loss, sigmoid, FitSummary};
pub use perturb::{input_gradient, perturb, DEFAULT_EPSILON};
pub use pixel::{fit_pixel, PixelCalibrator, PixelFitConfig, PixelMethod, PixelTrainer};
pub use platt::Platt;

use crate::autograd::Var;
use crate::error::{Error, Result};

/// The image-level calibration methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Platt,
    Beta,
}

impl std::str::FromStr for Method {
    type Err = Error;
    fn from_str(s: &str) -> Result<Method> {
        match s {
            "platt" => Ok(Method::Platt),
            "beta" => Ok(Method::Beta),
            _ => Err(Error::InvalidArgument(format!("unknown calibration method '{s}', expected platt or beta"))),
        }
    }
}

/// A fitted image-level calibration map from the base logit `z` to a calibrated logit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum Calibrator {
    Platt(Platt),
    Beta(Beta),
}

/// What [`Calibrator::save`] writes: a format tag and version around the calibrator.
#[derive(Serialize, Deserialize)]
struct CalibratorFile {
    format: String,
    version: u32,
    #[serde(flatten)]
    calibrator: Calibrator,
}

const FORMAT: &str = "oddity-calibrator";
const VERSION: u32 = 1;

/// One line for logs: the map's parameters and how the fit went (its warnings are printed apart).
impl std::fmt::Display for Calibrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fit = match self {
            Calibrator::Platt(p) => {
                write!(f, "Platt: sigmoid({:.6} z + {:.6})", p.a, p.b)?;
                &p.fit
            }
            Calibrator::Beta(b) => {
                write!(f, "Beta: a = {:.6}, b = {:.6}, c = {:.6}", b.a, b.b, b.c)?;
                &b.fit
            }
        };
        match fit {
            Some(s) => write!(
                f,
                " ({} samples, {} anomalous; loss {:.6} after {} L-BFGS iterations{})",
                s.samples,
                s.anomalies,
                s.loss,
                s.iterations,
                if s.converged { "" } else { ", not converged" }
            ),
            None => write!(f, " (set by hand)"),
        }
    }
}

impl Calibrator {
    /// Fits `method` to the base model's logits and the labels (0 normal, 1 anomalous).
    pub fn fit(method: Method, logits: &[f64], labels: &[u8]) -> Result<Calibrator> {
        Ok(match method {
            Method::Platt => Calibrator::Platt(Platt::fit(logits, labels)?),
            Method::Beta => Calibrator::Beta(Beta::fit(logits, labels)?),
        })
    }

    pub fn method(&self) -> Method {
        match self {
            Calibrator::Platt(_) => Method::Platt,
            Calibrator::Beta(_) => Method::Beta,
        }
    }

    /// How the fit went; `None` for hand-set parameters.
    pub fn fit_summary(&self) -> Option<&FitSummary> {
        match self {
            Calibrator::Platt(p) => p.fit.as_ref(),
            Calibrator::Beta(b) => b.fit.as_ref(),
        }
    }

    /// The fit's warnings (a reversed ranking, a collapsed map); empty for hand-set parameters.
    pub fn warnings(&self) -> &[String] {
        self.fit_summary().map_or(&[], |f| f.warnings.as_slice())
    }

    pub fn calibrated_logit(&self, z: f64) -> f64 {
        match self {
            Calibrator::Platt(p) => p.calibrated_logit(z),
            Calibrator::Beta(b) => b.calibrated_logit(z),
        }
    }

    /// Calibrated probabilities of "anomalous" for base logits `z`.
    pub fn apply(&self, logits: &[f64]) -> Vec<f64> {
        logits.iter().map(|&z| sigmoid(self.calibrated_logit(z))).collect()
    }

    /// The calibrated logits as a graph op on the GPU (any shape), differentiable with respect
    /// to `z`: input perturbation runs its gradient through the calibration. The parameters are
    /// constants here (they are fitted on the CPU), rounded to f32.
    pub fn apply_var(&self, z: &Var) -> Result<Var> {
        Ok(match self {
            Calibrator::Platt(p) => z.affine(p.a as f32, p.b as f32)?,
            // -a softplus(-z) + b softplus(z) + c = a ln σ(z) + b softplus(z) + c
            Calibrator::Beta(b) => {
                z.log_sigmoid()?.mul_scalar(b.a as f32)?.add(&z.softplus()?.mul_scalar(b.b as f32)?)?.add_scalar(b.c as f32)?
            }
        })
    }

    /// Writes the calibrator as JSON (`{"format": "oddity-calibrator", "version": 1, "method":
    /// "beta", "a": .., "b": .., "c": .., "fit": {..}}`), atomically: a temporary file in the same
    /// folder, then a rename.
    pub fn save(&self, path: &Path) -> Result<()> {
        let file = CalibratorFile { format: FORMAT.into(), version: VERSION, calibrator: self.clone() };
        let json = serde_json::to_string_pretty(&file)
            .map_err(|e| Error::InvalidArgument(format!("cannot serialise calibrator for {}: {e}", path.display())))?;
        write_atomically(path, json.as_bytes())
    }

    /// Reads a file written by [`Calibrator::save`]; errors name the path and what is wrong.
    pub fn load(path: &Path) -> Result<Calibrator> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let bad = |message: String| Error::Checkpoint { path: path.to_path_buf(), message };
        let file: CalibratorFile =
            serde_json::from_str(&text).map_err(|e| bad(format!("not a calibrator file: {e}")))?;
        if file.format != FORMAT || file.version != VERSION {
            return Err(bad(format!(
                "format {} version {} (expected {FORMAT} version {VERSION})",
                file.format, file.version
            )));
        }
        let params: Vec<f64> = match &file.calibrator {
            Calibrator::Platt(p) => vec![p.a, p.b],
            Calibrator::Beta(b) => vec![b.a, b.b, b.c],
        };
        if params.iter().any(|v| !v.is_finite()) {
            return Err(bad(format!("non-finite parameters {params:?}")));
        }
        if let Calibrator::Beta(b) = &file.calibrator {
            if b.a < 0.0 || b.b < 0.0 {
                return Err(bad(format!("Beta calibration needs a, b >= 0, got a = {}, b = {}", b.a, b.b)));
            }
        }
        Ok(file.calibrator)
    }
}

pub(crate) use crate::checkpoint::write_atomically;
