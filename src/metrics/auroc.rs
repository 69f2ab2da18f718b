//! Image-level AUROC.
//!
//! AUROC = P(score of an anomalous sample > score of a normal sample) + 1/2 P(tie), which is
//! the Mann–Whitney U statistic divided by `n_anomalous * n_normal`. It equals the trapezoid
//! area under the ROC curve through every distinct threshold, which is what sklearn's
//! `roc_auc_score` computes, ties included. Counts are kept in integers, so the only rounding
//! is the final division.

use super::{ratio, sorted_pairs};
use crate::error::Result;

/// AUROC of `scores` (higher = more anomalous) against `labels` (0 normal, 1 anomalous).
///
/// Errors: lengths differ, a label outside {0, 1}, a NaN or infinite score (each naming the
/// index), or only one class present.
pub fn auroc(scores: &[f64], labels: &[u8]) -> Result<f64> {
    let (pairs, positives, negatives) = sorted_pairs(scores, labels, "AUROC", false)?;

    // Walk groups of equal scores in increasing order. Each anomalous sample in a group beats
    // every normal sample below the group and ties with the normal samples inside it:
    // 2U = sum over groups of pos_g * (2 * neg_below + neg_g).
    let mut twice_u: u128 = 0;
    let mut negatives_below: u128 = 0;
    let mut i = 0;
    while i < pairs.len() {
        let value = pairs[i].0;
        let (mut pos_g, mut neg_g) = (0u128, 0u128);
        while i < pairs.len() && pairs[i].0 == value {
            if pairs[i].1 == 1 {
                pos_g += 1;
            } else {
                neg_g += 1;
            }
            i += 1;
        }
        twice_u += pos_g * (2 * negatives_below + neg_g);
        negatives_below += neg_g;
    }
    Ok(ratio(twice_u, 2 * positives as u128 * negatives as u128))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_inverted_and_tied() {
        assert_eq!(auroc(&[0.1, 0.2, 0.8, 0.9], &[0, 0, 1, 1]).unwrap(), 1.0);
        assert_eq!(auroc(&[0.9, 0.8, 0.2, 0.1], &[0, 0, 1, 1]).unwrap(), 0.0);
        assert_eq!(auroc(&[0.5, 0.5, 0.5, 0.5], &[0, 1, 0, 1]).unwrap(), 0.5);
        // one anomalous above both normals, one tied with a normal: (2 + 1.5) / 4
        assert_eq!(auroc(&[0.1, 0.5, 0.5, 0.9], &[0, 0, 1, 1]).unwrap(), 0.875);
        // -0.0 and 0.0 tie
        assert_eq!(auroc(&[-0.0, 0.0], &[0, 1]).unwrap(), 0.5);
    }

    #[test]
    fn rejects_bad_input() {
        let e = auroc(&[0.1, f64::NAN], &[0, 1]).unwrap_err().to_string();
        assert!(e.contains("index 1"), "{e}");
        let e = auroc(&[0.1, 0.2], &[0, 2]).unwrap_err().to_string();
        assert!(e.contains("index 1") && e.contains('2'), "{e}");
        let e = auroc(&[0.1, 0.2], &[1, 1]).unwrap_err().to_string();
        assert!(e.contains("both classes"), "{e}");
        assert!(auroc(&[0.1], &[1, 0]).is_err());
    }
}
