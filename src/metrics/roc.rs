//! ROC points and the trapezoid rule.
//!
//! [`roc_curve`] returns one point per distinct score, like sklearn's
//! `roc_curve(..., drop_intermediate=False)`: thresholds in decreasing order, the first one
//! `+inf` with the point (0, 0), a sample counted positive when `score >= threshold`.

use super::sorted_pairs;
use crate::error::Result;
use serde::{Deserialize, Serialize};

/// ROC points, `fpr[i]`, `tpr[i]` at `thresholds[i]` (decreasing; the first is `+inf`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RocCurve {
    pub fpr: Vec<f64>,
    pub tpr: Vec<f64>,
    pub thresholds: Vec<f64>,
}

impl RocCurve {
    /// Area under the curve by the trapezoid rule (equals [`fn@super::auroc`] up to rounding).
    pub fn area(&self) -> f64 {
        trapezoid(&self.fpr, &self.tpr)
    }
}

/// ROC curve of `scores` (higher = more anomalous) against `labels` (0/1).
pub fn roc_curve(scores: &[f64], labels: &[u8]) -> Result<RocCurve> {
    let (pairs, positives, negatives) = sorted_pairs(scores, labels, "ROC curve", true)?;
    let mut curve = RocCurve {
        fpr: vec![0.0],
        tpr: vec![0.0],
        thresholds: vec![f64::INFINITY],
    };
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut i = 0;
    while i < pairs.len() {
        let value = pairs[i].0;
        while i < pairs.len() && pairs[i].0 == value {
            if pairs[i].1 == 1 {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        curve.fpr.push(fp as f64 / negatives as f64);
        curve.tpr.push(tp as f64 / positives as f64);
        curve.thresholds.push(value);
    }
    Ok(curve)
}

/// Trapezoid area under `y(x)` for `x` in non-decreasing order.
pub fn trapezoid(x: &[f64], y: &[f64]) -> f64 {
    x.windows(2)
        .zip(y.windows(2))
        .map(|(xs, ys)| 0.5 * (ys[0] + ys[1]) * (xs[1] - xs[0]))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_and_area() {
        let c = roc_curve(&[0.1, 0.4, 0.35, 0.8], &[0, 0, 1, 1]).unwrap();
        assert_eq!(c.thresholds[1..], [0.8, 0.4, 0.35, 0.1]);
        assert_eq!(c.fpr, [0.0, 0.0, 0.5, 0.5, 1.0]);
        assert_eq!(c.tpr, [0.0, 0.5, 0.5, 1.0, 1.0]);
        assert_eq!(c.area(), 0.75);
    }
}
