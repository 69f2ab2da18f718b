//! Evaluation metrics, one file each, each checked against golden values made by
//! `scripts/golden_metrics.py` (sklearn, numpy, scipy) in `tests/metrics_*.rs`.
//!
//! - [`mod@auroc`]: image-level AUROC, ties counted as one half (as sklearn's `roc_auc_score`);
//! - [`mod@pixel_auroc`]: AUROC over every test pixel, exact, 4 bytes per pixel;
//! - [`mod@aupro`]: area under the per-region-overlap curve up to a false-positive-rate limit;
//! - [`calibration`]: ECE, MCE (thesis §2.4.3, definitions 9 and 10), Brier score and
//!   reliability-diagram data;
//! - [`roc`]: ROC points and the trapezoid rule.
//!
//! Labels are `u8` with 0 = normal and 1 = anomalous; scores are "higher is more anomalous".

pub mod aupro;
pub mod auroc;
pub mod calibration;
pub mod pixel_auroc;
pub mod roc;

pub use aupro::{aupro, pro_curve, ProCurve};
pub use auroc::auroc;
pub use calibration::{
    brier_score, ece, mce, reliability_diagram, CalibrationReport, ReliabilityBin,
};
pub use pixel_auroc::{pixel_auroc, PixelAuroc};
pub use roc::{roc_curve, trapezoid, RocCurve};

use crate::error::{Error, Result};

/// Checks that `scores` and `labels` have the same length, every label is 0 or 1 and every
/// score is finite. Returns the number of anomalous samples.
pub(crate) fn check_scores_labels(scores: &[f64], labels: &[u8]) -> Result<usize> {
    if scores.len() != labels.len() {
        return Err(Error::Shape {
            what: "scores and labels".into(),
            expected: format!("{} labels", scores.len()),
            got: format!("{} labels", labels.len()),
        });
    }
    let mut positives = 0;
    for (index, (&s, &y)) in scores.iter().zip(labels).enumerate() {
        if !s.is_finite() {
            return Err(Error::NonFiniteScore { index, value: s });
        }
        match y {
            0 => {}
            1 => positives += 1,
            other => {
                return Err(Error::InvalidLabel {
                    index,
                    value: other.to_string(),
                })
            }
        }
    }
    Ok(positives)
}

/// Validates `scores`/`labels` as [`check_scores_labels`] does, requires both classes for
/// `metric`, and returns the (score, label) pairs sorted by score (ascending, or descending),
/// with -0.0 folded into +0.0 so the two tie. Also returns the counts (anomalous, normal).
pub(crate) fn sorted_pairs(
    scores: &[f64],
    labels: &[u8],
    metric: &'static str,
    descending: bool,
) -> Result<(Vec<(f64, u8)>, usize, usize)> {
    let positives = check_scores_labels(scores, labels)?;
    let negatives = scores.len() - positives;
    if positives == 0 || negatives == 0 {
        return Err(Error::UndefinedMetric {
            metric,
            message: format!("needs both classes, got {positives} anomalous and {negatives} normal samples"),
        });
    }
    let mut pairs: Vec<(f64, u8)> = scores.iter().zip(labels).map(|(&s, &y)| (s + 0.0, y)).collect();
    if descending {
        pairs.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    } else {
        pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    }
    Ok((pairs, positives, negatives))
}

/// Maps an `f32` to a `u32` whose unsigned order is the numeric order of the floats
/// (`-0.0` is mapped like `+0.0`, so the two tie as they do numerically). NaN is the
/// caller's to reject.
#[inline]
pub(crate) fn f32_order_key(x: f32) -> u32 {
    let bits = (x + 0.0).to_bits(); // -0.0 + 0.0 == +0.0
    if bits & 0x8000_0000 != 0 {
        !bits
    } else {
        bits | 0x8000_0000
    }
}

/// `numerator / denominator` for integer counts, in f64.
#[inline]
pub(crate) fn ratio(numerator: u128, denominator: u128) -> f64 {
    // Split off the integer part so the remainder's rounding is relative to a value < 1.
    let q = numerator / denominator;
    let r = numerator % denominator;
    q as f64 + r as f64 / denominator as f64
}
