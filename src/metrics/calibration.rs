//! Calibration of predicted probabilities of "anomalous": ECE, MCE, Brier score and the data
//! of a reliability diagram (thesis §2.4.3).
//!
//! K equal-width bins partition [0, 1]; bin k (0-based) holds the predictions with
//! k/K < p <= (k+1)/K, and p = 0 goes to the first bin. For a bin B_k:
//! - freq(B_k) = (1/|B_k|) sum_{i in B_k} I[y_i = 1]   (thesis, left side of eq. 2.16)
//! - conf(B_k) = (1/|B_k|) sum_{i in B_k} p_i          (thesis, right side of eq. 2.16)
//! - MCE = max_k |freq(B_k) - conf(B_k)|               (thesis definition 9)
//! - ECE = sum_k |B_k|/n |freq(B_k) - conf(B_k)|       (thesis definition 10)
//!
//! Empty bins are skipped in both. Brier = (1/n) sum_i (p_i - y_i)^2.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// One bin of a reliability diagram. `confidence` and `frequency` are `None` for an empty bin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    /// Lower edge k/K (exclusive, except 0 for the first bin).
    pub lower: f64,
    /// Upper edge (k+1)/K (inclusive).
    pub upper: f64,
    pub count: usize,
    /// Mean predicted probability in the bin, conf(B_k).
    pub confidence: Option<f64>,
    /// Fraction of anomalous samples in the bin, freq(B_k).
    pub frequency: Option<f64>,
}

/// ECE, MCE, Brier score and the reliability-diagram bins of one set of predictions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationReport {
    pub ece: f64,
    pub mce: f64,
    pub brier: f64,
    pub bins: Vec<ReliabilityBin>,
}

impl CalibrationReport {
    /// All calibration measures of `probs` against `labels` with `num_bins` bins.
    pub fn new(probs: &[f64], labels: &[u8], num_bins: usize) -> Result<Self> {
        let bins = reliability_diagram(probs, labels, num_bins)?;
        Ok(CalibrationReport {
            ece: ece_from_bins(&bins, probs.len()),
            mce: mce_from_bins(&bins),
            brier: brier_score(probs, labels)?,
            bins,
        })
    }
}

/// Checks lengths, labels in {0, 1} and probabilities in [0, 1] (naming the index).
fn check_probs(probs: &[f64], labels: &[u8]) -> Result<()> {
    if probs.len() != labels.len() {
        return Err(Error::Shape {
            what: "probabilities and labels".into(),
            expected: format!("{} labels", probs.len()),
            got: format!("{} labels", labels.len()),
        });
    }
    if probs.is_empty() {
        return Err(Error::InvalidArgument(
            "calibration metrics need at least one sample".into(),
        ));
    }
    for (index, (&p, &y)) in probs.iter().zip(labels).enumerate() {
        if !p.is_finite() {
            return Err(Error::NonFiniteScore { index, value: p });
        }
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::InvalidProbability { index, value: p });
        }
        if y > 1 {
            return Err(Error::InvalidLabel {
                index,
                value: y.to_string(),
            });
        }
    }
    Ok(())
}

/// Bin of probability `p` among `k` bins: the k with k/K < p <= (k+1)/K; p = 0 -> bin 0.
/// `num_bins` of 0 is treated as 1.
pub fn bin_index(p: f64, num_bins: usize) -> usize {
    let num_bins = num_bins.max(1);
    let edge = |k: usize| k as f64 / num_bins as f64;
    let mut k = ((p * num_bins as f64).ceil() as usize)
        .saturating_sub(1)
        .min(num_bins - 1);
    // p * K may round across an edge; settle against the edges themselves.
    while k > 0 && p <= edge(k) {
        k -= 1;
    }
    while k + 1 < num_bins && p > edge(k + 1) {
        k += 1;
    }
    k
}

/// Reliability-diagram bins (all `num_bins` of them, empty ones with `count == 0`).
pub fn reliability_diagram(
    probs: &[f64],
    labels: &[u8],
    num_bins: usize,
) -> Result<Vec<ReliabilityBin>> {
    if num_bins == 0 {
        return Err(Error::InvalidArgument(
            "number of calibration bins must be at least 1".into(),
        ));
    }
    check_probs(probs, labels)?;
    let mut counts = vec![0usize; num_bins];
    let mut prob_sums = vec![0.0f64; num_bins];
    let mut positives = vec![0usize; num_bins];
    for (&p, &y) in probs.iter().zip(labels) {
        let k = bin_index(p, num_bins);
        counts[k] += 1;
        prob_sums[k] += p;
        positives[k] += y as usize;
    }
    Ok((0..num_bins)
        .map(|k| {
            let count = counts[k];
            let (confidence, frequency) = if count == 0 {
                (None, None)
            } else {
                (
                    Some(prob_sums[k] / count as f64),
                    Some(positives[k] as f64 / count as f64),
                )
            };
            ReliabilityBin {
                lower: k as f64 / num_bins as f64,
                upper: (k + 1) as f64 / num_bins as f64,
                count,
                confidence,
                frequency,
            }
        })
        .collect())
}

fn gap(bin: &ReliabilityBin) -> Option<f64> {
    Some((bin.frequency? - bin.confidence?).abs())
}

fn ece_from_bins(bins: &[ReliabilityBin], n: usize) -> f64 {
    // thesis definition 10
    bins.iter()
        .filter_map(|b| gap(b).map(|g| b.count as f64 / n as f64 * g))
        .sum()
}

fn mce_from_bins(bins: &[ReliabilityBin]) -> f64 {
    // thesis definition 9
    bins.iter().filter_map(gap).fold(0.0, f64::max)
}

/// Expected calibration error with `num_bins` equal-width bins (thesis definition 10).
pub fn ece(probs: &[f64], labels: &[u8], num_bins: usize) -> Result<f64> {
    Ok(ece_from_bins(
        &reliability_diagram(probs, labels, num_bins)?,
        probs.len(),
    ))
}

/// Maximum calibration error with `num_bins` equal-width bins (thesis definition 9).
pub fn mce(probs: &[f64], labels: &[u8], num_bins: usize) -> Result<f64> {
    Ok(mce_from_bins(&reliability_diagram(
        probs, labels, num_bins,
    )?))
}

/// Brier score: mean squared difference between probability and label.
pub fn brier_score(probs: &[f64], labels: &[u8]) -> Result<f64> {
    check_probs(probs, labels)?;
    let sum: f64 = probs
        .iter()
        .zip(labels)
        .map(|(&p, &y)| (p - y as f64).powi(2))
        .sum();
    Ok(sum / probs.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_left_open_right_closed() {
        assert_eq!(bin_index(0.0, 10), 0);
        assert_eq!(bin_index(0.1, 10), 0);
        assert_eq!(bin_index(0.10000001, 10), 1);
        assert_eq!(bin_index(0.7, 10), 6);
        assert_eq!(bin_index(0.3, 10), 2);
        assert_eq!(bin_index(1.0, 10), 9);
        for k in 1..=10 {
            assert_eq!(bin_index(k as f64 / 10.0, 10), k - 1);
        }
    }

    #[test]
    fn hand_computed() {
        // bin 1 (0.1, 0.2]: probs 0.15, 0.2, labels 0, 1 -> conf 0.175, freq 0.5
        // bin 9 (0.9, 1.0]: prob 1.0, label 1 -> conf 1, freq 1
        let probs = [0.15, 0.2, 1.0];
        let labels = [0, 1, 1];
        let r = CalibrationReport::new(&probs, &labels, 10).unwrap();
        assert!((r.ece - 2.0 / 3.0 * 0.325).abs() < 1e-15);
        assert!((r.mce - 0.325).abs() < 1e-15);
        assert!((r.brier - (0.0225 + 0.64) / 3.0).abs() < 1e-15);
        assert_eq!(r.bins.iter().filter(|b| b.count > 0).count(), 2);
        let e = ece(&[0.5, 1.5], &[0, 1], 10).unwrap_err().to_string();
        assert!(e.contains("index 1") && e.contains("1.5"), "{e}");
    }
}
