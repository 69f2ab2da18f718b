//! Logistic regression on a few CPU features, the fitting core of Platt scaling and Beta
//! calibration: minimises the mean logistic loss (thesis eq. 2.15) with L-BFGS in f64.

use crate::error::{Error, Result};
use crate::optim::{minimize_lbfgs, LbfgsConfig};
use serde::{Deserialize, Serialize};

/// softplus(x) = ln(1 + e^x) without overflow.
pub fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// σ(x) without overflow.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// ln σ(x) = -softplus(-x): exact where σ(x) itself rounds to 0 or 1.
pub fn log_sigmoid(x: f64) -> f64 {
    -softplus(-x)
}

/// Logistic loss of a logit `s` for the label `y` in {0, 1}:
/// `-y ln σ(s) - (1 - y) ln(1 - σ(s)) = softplus(s) - y s`, finite for every finite `s`.
pub fn logistic_loss(s: f64, y: u8) -> f64 {
    softplus(s) - if y == 1 { s } else { 0.0 }
}

/// How a fit went, kept beside the fitted parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitSummary {
    /// Samples fitted on.
    pub samples: usize,
    /// Of which anomalous (label 1).
    pub anomalies: usize,
    /// Mean logistic loss at the fitted parameters.
    pub loss: f64,
    /// L-BFGS iterations (summed over refits).
    pub iterations: usize,
    /// Whether the last L-BFGS run met its tolerance; false for (nearly) separable data, where
    /// the unregularised optimum lies at infinity and the fit stops at the iteration limit.
    pub converged: bool,
    /// What a user must know about the fitted map (a reversed ranking, a map that collapsed to
    /// a constant); empty when nothing is wrong. `oddity calibrate` also prints them on stderr.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Checks labels and finite features; both classes must be present.
pub(crate) fn check_samples(what: &str, columns: &[&[f64]], labels: &[u8]) -> Result<usize> {
    for (k, col) in columns.iter().enumerate() {
        if col.len() != labels.len() {
            return Err(Error::Shape {
                what: format!("{what}: feature {k} and labels"),
                expected: format!("{} values", labels.len()),
                got: format!("{} values", col.len()),
            });
        }
        if let Some((index, &value)) = col.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFiniteScore { index, value });
        }
    }
    if let Some((index, &y)) = labels.iter().enumerate().find(|(_, &y)| y > 1) {
        return Err(Error::InvalidLabel { index, value: y.to_string() });
    }
    let anomalies = labels.iter().filter(|&&y| y == 1).count();
    if anomalies == 0 || anomalies == labels.len() {
        return Err(Error::InvalidArgument(format!(
            "{what} needs both normal (0) and anomalous (1) samples, got {} normal and {anomalies} anomalous",
            labels.len() - anomalies
        )));
    }
    Ok(anomalies)
}

/// Fits `s_i = sum_k coef_k x_ik + intercept` to `labels` by minimising the mean logistic loss,
/// unregularised (as sklearn with a huge C, which betacal uses). `columns` are the features,
/// each as long as `labels`; they are standardised internally so L-BFGS sees a well-conditioned
/// problem whatever the logits' scale (standardising by a positive scale keeps every
/// coefficient's sign, which Beta calibration's constraint relies on). An empty `columns` fits
/// the intercept alone. Returns (coefficients, intercept, summary).
pub(crate) fn fit_logistic(what: &str, columns: &[&[f64]], labels: &[u8]) -> Result<(Vec<f64>, f64, FitSummary)> {
    let anomalies = check_samples(what, columns, labels)?;
    let n = labels.len() as f64;
    let stats: Vec<(f64, f64)> = columns
        .iter()
        .map(|col| {
            let mean = col.iter().sum::<f64>() / n;
            let var = col.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
            // A constant feature cannot be told from the intercept: scale 1 leaves its centred
            // value at 0, so its gradient is 0 and its coefficient stays at the start value 0.
            (mean, if var > 0.0 { var.sqrt() } else { 1.0 })
        })
        .collect();
    let standardised: Vec<Vec<f64>> =
        columns.iter().zip(&stats).map(|(col, (m, s))| col.iter().map(|v| (v - m) / s).collect()).collect();
    let k = columns.len();
    let objective = |theta: &[f64]| -> (f64, Vec<f64>) {
        let mut loss = 0.0;
        let mut grad = vec![0.0; k + 1];
        for (i, &y) in labels.iter().enumerate() {
            let s = theta[k] + (0..k).map(|j| theta[j] * standardised[j][i]).sum::<f64>();
            loss += logistic_loss(s, y);
            let r = sigmoid(s) - y as f64; // d loss / d s
            for j in 0..k {
                grad[j] += r * standardised[j][i];
            }
            grad[k] += r;
        }
        (loss / n, grad.into_iter().map(|g| g / n).collect())
    };
    let rate = anomalies as f64 / n;
    let mut theta0 = vec![0.0; k + 1];
    theta0[k] = (rate / (1.0 - rate)).ln(); // the best constant: the log-odds of the base rate
    let cfg = LbfgsConfig { max_iters: 500, ..LbfgsConfig::default() };
    let fit = minimize_lbfgs(objective, &theta0, cfg)?;
    let coefs: Vec<f64> = (0..k).map(|j| fit.x[j] / stats[j].1).collect();
    let intercept = fit.x[k] - (0..k).map(|j| fit.x[j] * stats[j].0 / stats[j].1).sum::<f64>();
    let summary = FitSummary {
        samples: labels.len(),
        anomalies,
        loss: fit.value,
        iterations: fit.iterations,
        converged: fit.converged,
        warnings: Vec::new(),
    };
    Ok((coefs, intercept, summary))
}
