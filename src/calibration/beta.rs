//! Beta calibration (Kull, Silva Filho & Flach 2017; thesis §3.2.2, eq. 3.2):
//!
//! ```text
//! z_β = a ln η - b ln(1 - η) + c,   a, b >= 0,   η_β = σ(z_β)
//! ```
//!
//! fitted as a logistic regression on the features (ln η, -ln(1 - η)). When a fitted coefficient
//! comes out negative, the fit is repeated without that feature (the betacal package's rule), so
//! the map stays monotone.
//!
//! The features come from the logit: `ln η = -softplus(-z)` and `ln(1 - η) = -softplus(z)`,
//! exact where η = σ(z) rounds to 1 (z > 37 in f64, > 17 in f32). The thesis (§4.3.1) reports
//! Beta calibration failing on logistic-loss networks because it started from such a rounded η,
//! which makes every overconfident sample look the same. [`Beta::fit_probabilities`] is that
//! older route (η clipped to [ε, 1 - ε] as betacal does), kept for models that only give η and
//! for showing the difference.

use serde::{Deserialize, Serialize};

use super::logistic::{fit_logistic, log_sigmoid, sigmoid, softplus, FitSummary};
use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Beta {
    /// Weight of ln η, >= 0.
    pub a: f64,
    /// Weight of -ln(1 - η), >= 0.
    pub b: f64,
    pub c: f64,
    /// How the fit went; `None` for parameters set by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit: Option<FitSummary>,
}

/// (ln η, -ln(1 - η)) of η = σ(z), from the logit.
pub fn features_from_logit(z: f64) -> (f64, f64) {
    (log_sigmoid(z), softplus(z))
}

/// (ln η, -ln(1 - η)) from η itself, clipped to [ε, 1 - ε] with ε the f64 machine epsilon, as
/// betacal does: every η that rounded to 1 gets the same features.
pub fn features_from_probability(eta: f64) -> (f64, f64) {
    let e = eta.clamp(f64::EPSILON, 1.0 - f64::EPSILON);
    (e.ln(), -(1.0 - e).ln())
}

impl Beta {
    pub fn new(a: f64, b: f64, c: f64) -> Beta {
        Beta { a, b, c, fit: None }
    }

    /// Fits (a, b, c) to the base model's logits `z` and `labels` (0 normal, 1 anomalous), with
    /// the features taken from the logits. Errors as [`super::Platt::fit`].
    pub fn fit(logits: &[f64], labels: &[u8]) -> Result<Beta> {
        let (ln_eta, neg_ln_1m): (Vec<f64>, Vec<f64>) = logits.iter().map(|&z| features_from_logit(z)).unzip();
        Self::fit_features(&ln_eta, &neg_ln_1m, labels)
    }

    /// Fits from probability estimates η in [0, 1] (betacal's route; see the module docs for why
    /// [`Beta::fit`] on logits is preferred). A value outside [0, 1] is an error naming its index.
    pub fn fit_probabilities(probs: &[f64], labels: &[u8]) -> Result<Beta> {
        if let Some((index, &value)) = probs.iter().enumerate().find(|(_, p)| !(0.0..=1.0).contains(*p)) {
            return Err(Error::InvalidProbability { index, value });
        }
        let (ln_eta, neg_ln_1m): (Vec<f64>, Vec<f64>) = probs.iter().map(|&p| features_from_probability(p)).unzip();
        Self::fit_features(&ln_eta, &neg_ln_1m, labels)
    }

    /// Logistic regression on (ln η, -ln(1 - η)); a negative coefficient drops its feature and
    /// refits (a first, then b, as betacal). Should the one-feature refit come out negative too,
    /// that feature goes as well and only c is fitted, so a, b >= 0 always holds.
    ///
    /// That last case is correct under the constraint but useless to a user: it happens when the
    /// synthetic anomalies score *lower* than the normal images, no increasing map fits, and the
    /// calibrated probability is the constant σ(c) (AUROC 0.5). The summary then carries a
    /// warning (a single dropped term is the normal betacal outcome and shows as a = 0 or b = 0).
    fn fit_features(ln_eta: &[f64], neg_ln_1m: &[f64], labels: &[u8]) -> Result<Beta> {
        let what = "Beta calibration";
        let (coefs, c, summary) = fit_logistic(what, &[ln_eta, neg_ln_1m], labels)?;
        let mut iterations = summary.iterations;
        let (kept, single): (usize, &[f64]) = if coefs[0] < 0.0 {
            (1, neg_ln_1m)
        } else if coefs[1] < 0.0 {
            (0, ln_eta)
        } else {
            return Ok(Beta { a: coefs[0], b: coefs[1], c, fit: Some(summary) });
        };
        let (coef, c, summary) = fit_logistic(what, &[single], labels)?;
        iterations += summary.iterations;
        if coef[0] < 0.0 {
            let (_, c, mut summary) = fit_logistic(what, &[], labels)?;
            iterations += summary.iterations;
            summary.warnings.push(format!(
                "Beta calibration collapsed to a constant (a = b = 0, every probability {:.4}): the synthetic \
                 anomalies score lower than the normal calibration images, and with a, b >= 0 no increasing map \
                 fits; the calibrated model cannot rank (AUROC 0.5). Use another anomaly source or Platt \
                 (which would fit a negative slope and reverse the ranking)",
                sigmoid(c)
            ));
            return Ok(Beta { a: 0.0, b: 0.0, c, fit: Some(FitSummary { iterations, ..summary }) });
        }
        let (a, b) = if kept == 0 { (coef[0], 0.0) } else { (0.0, coef[0]) };
        Ok(Beta { a, b, c, fit: Some(FitSummary { iterations, ..summary }) })
    }

    /// `z_β` from the base logit: `-a softplus(-z) + b softplus(z) + c`.
    pub fn calibrated_logit(&self, z: f64) -> f64 {
        let (ln_eta, neg_ln_1m) = features_from_logit(z);
        self.a * ln_eta + self.b * neg_ln_1m + self.c
    }

    /// `z_β` from η (clipped as in [`features_from_probability`]).
    pub fn calibrated_logit_from_probability(&self, eta: f64) -> f64 {
        let (ln_eta, neg_ln_1m) = features_from_probability(eta);
        self.a * ln_eta + self.b * neg_ln_1m + self.c
    }

    /// `σ(z_β)`
    pub fn probability(&self, z: f64) -> f64 {
        sigmoid(self.calibrated_logit(z))
    }
}
