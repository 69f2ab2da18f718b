//! The numbers a report shows, computed once by the metric functions of [`crate::metrics`] and
//! the threshold rule of [`crate::predict`], so the plots, tables and `results.json` agree.

use serde::Serialize;

use super::ReportData;
use crate::error::{Error, Result};
use crate::metrics::{auroc, roc_curve, CalibrationReport, RocCurve};
use crate::predict::fpr_threshold;

/// Equal-width bins of the reliability diagrams and ECE/MCE (thesis definitions 9 and 10).
pub const RELIABILITY_BINS: usize = crate::experiment::evaluate::CALIBRATION_BINS;

/// The derived numbers of a report.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub image_auroc: f64,
    pub pixel_auroc: Option<f64>,
    pub aupro: Option<f64>,
    /// Reliability bins, ECE, MCE and Brier of the test images' probabilities.
    pub before: CalibrationReport,
    pub after: CalibrationReport,
    /// Target false-positive rate and the raw-score threshold chosen for it on the normal
    /// calibration scores ([`fpr_threshold`]); images scoring above it are flagged.
    pub target_fpr: f64,
    pub threshold: f64,
    /// Fractions of the normal / anomalous test images flagged at the threshold.
    pub test_fpr: f64,
    pub test_tpr: f64,
    pub normal_test_images: usize,
    pub anomalous_test_images: usize,
    pub calibration_images: usize,
    #[serde(skip)]
    pub roc: RocCurve,
}

/// Checks the report's inputs agree in length and computes its numbers.
pub fn summarize(data: &ReportData) -> Result<Summary> {
    let n = data.scores.len();
    for (what, len) in [("labels", data.labels.len()), ("probs_before", data.probs_before.len()), ("probs_after", data.probs_after.len())] {
        if len != n {
            return Err(Error::Shape {
                what: format!("report {what}"),
                expected: format!("{n} values (one per test image score)"),
                got: format!("{len} values"),
            });
        }
    }
    let mut sorted = data.calibration_scores.clone();
    if let Some((index, &value)) = sorted.iter().enumerate().find(|(_, s)| !s.is_finite()) {
        return Err(Error::NonFiniteScore { index, value });
    }
    sorted.sort_by(f64::total_cmp);
    let threshold = fpr_threshold(&sorted, data.fpr)?;
    let image_auroc = auroc(&data.scores, &data.labels)?;
    let roc = roc_curve(&data.scores, &data.labels)?;
    let before = CalibrationReport::new(&data.probs_before, &data.labels, RELIABILITY_BINS)?;
    let after = CalibrationReport::new(&data.probs_after, &data.labels, RELIABILITY_BINS)?;
    let flagged = |label: u8| {
        let of: Vec<bool> = data.scores.iter().zip(&data.labels).filter(|(_, &l)| l == label).map(|(&s, _)| s > threshold).collect();
        (of.iter().filter(|&&f| f).count() as f64 / of.len().max(1) as f64, of.len())
    };
    let (test_fpr, normal_test_images) = flagged(0);
    let (test_tpr, anomalous_test_images) = flagged(1);
    Ok(Summary {
        image_auroc,
        pixel_auroc: data.pixel_auroc,
        aupro: data.aupro,
        before,
        after,
        target_fpr: data.fpr,
        threshold,
        test_fpr,
        test_tpr,
        normal_test_images,
        anomalous_test_images,
        calibration_images: sorted.len(),
        roc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{ece, mce};

    pub(crate) fn data(n_cal: usize) -> ReportData {
        // Anomalies score higher on average; probabilities follow the scores.
        let scores: Vec<f64> = (0..40).map(|i| (i % 20) as f64 * 0.1 + if i >= 20 { 1.0 } else { 0.0 }).collect();
        let labels: Vec<u8> = (0..40).map(|i| u8::from(i >= 20)).collect();
        let probs_before: Vec<f64> = scores.iter().map(|s| 1.0 / (1.0 + (-(s - 1.0f64) * 8.0).exp())).collect();
        let probs_after: Vec<f64> = scores.iter().map(|s| (s / 3.0).clamp(0.0, 1.0)).collect();
        ReportData {
            data: "test".into(),
            model: "m".into(),
            adapter: "a".into(),
            calibration: "beta".into(),
            seed: 7,
            scores,
            labels,
            probs_before,
            probs_after,
            calibration_scores: (0..n_cal).map(|i| i as f64 / n_cal as f64 * 2.0).collect(),
            fpr: 0.1,
            pixel_auroc: Some(0.9),
            aupro: None,
            examples: vec![],
            heat_range: (0.0, 1.0),
        }
    }

    #[test]
    fn summary_agrees_with_the_metrics_and_the_threshold_rule() {
        let d = data(99);
        let s = summarize(&d).unwrap();
        assert_eq!(s.image_auroc, auroc(&d.scores, &d.labels).unwrap());
        assert!((s.roc.area() - s.image_auroc).abs() < 1e-12);
        assert_eq!(s.before.ece, ece(&d.probs_before, &d.labels, RELIABILITY_BINS).unwrap());
        assert_eq!(s.after.mce, mce(&d.probs_after, &d.labels, RELIABILITY_BINS).unwrap());
        assert_eq!(s.before.bins.len(), RELIABILITY_BINS);
        // k = ceil(0.9 * 100) = 90: the 90th smallest of i/99*2.
        assert!((s.threshold - 89.0 / 99.0 * 2.0).abs() < 1e-12, "{}", s.threshold);
        let normal_flagged = d.scores[..20].iter().filter(|&&x| x > s.threshold).count();
        assert_eq!(s.test_fpr, normal_flagged as f64 / 20.0);
        assert_eq!((s.normal_test_images, s.anomalous_test_images, s.calibration_images), (20, 20, 99));
    }

    #[test]
    fn mismatched_lengths_and_too_few_calibration_scores_are_errors() {
        let mut d = data(99);
        d.probs_after.pop();
        assert!(summarize(&d).unwrap_err().to_string().contains("probs_after"));
        let d = data(5);
        assert!(summarize(&d).unwrap_err().to_string().contains("calibration normal scores"));
    }
}
