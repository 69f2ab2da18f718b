//! Platt scaling (thesis §3.2.1, eq. 3.1): `η_cal = σ(a z + b)` on the base model's logit `z`,
//! fitted by L-BFGS on the mean logistic loss over (logit, label) pairs, in f64 on the CPU.

use serde::{Deserialize, Serialize};

use super::logistic::{fit_logistic, sigmoid, FitSummary};
use crate::error::Result;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Platt {
    /// Slope (1/T of temperature scaling).
    pub a: f64,
    pub b: f64,
    /// How the fit went; `None` for parameters set by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit: Option<FitSummary>,
}

impl Platt {
    pub fn new(a: f64, b: f64) -> Platt {
        Platt { a, b, fit: None }
    }

    /// Fits (a, b) to `logits` (the base model's z) and `labels` (0 normal, 1 anomalous). Errors:
    /// lengths that differ, a label other than 0 or 1, a non-finite logit (naming its index), or
    /// only one class. Separable data has its optimum at infinity: the fit then stops at the
    /// iteration limit with a large slope and `fit.converged == false`.
    ///
    /// A negative slope means the synthetic anomalies scored *lower* than the normal images: the
    /// fit is still the logistic-loss optimum, but it reverses the base model's ranking (the
    /// calibrated AUROC on real anomalies becomes 1 - the base AUROC), so the summary carries a
    /// warning saying so.
    pub fn fit(logits: &[f64], labels: &[u8]) -> Result<Platt> {
        let (coefs, b, mut summary) = fit_logistic("Platt scaling", &[logits], labels)?;
        if coefs[0] < 0.0 {
            summary.warnings.push(format!(
                "Platt slope a = {:.4e} is negative: the synthetic anomalies score lower than the normal calibration \
                 images, so the calibrated map reverses the base model's ranking (AUROC becomes 1 - AUROC); \
                 the anomaly source does not look like the anomalies this model detects",
                coefs[0]
            ));
        }
        Ok(Platt { a: coefs[0], b, fit: Some(summary) })
    }

    /// `a z + b`
    pub fn calibrated_logit(&self, z: f64) -> f64 {
        self.a * z + self.b
    }

    /// `σ(a z + b)`
    pub fn probability(&self, z: f64) -> f64 {
        sigmoid(self.calibrated_logit(z))
    }
}
