//! Pixel-level AUROC over every test pixel, exact and memory-bounded.
//!
//! Same statistic as [`fn@super::auroc`] (Mann–Whitney U / (n_anomalous * n_normal), ties
//! counted one half, equal to sklearn's `roc_auc_score` on the flattened maps), computed
//! without quantising the scores: each `f32` score is mapped to a `u32` whose integer order is
//! the float order, normal and anomalous pixels are kept in two `Vec<u32>` (4 bytes a pixel,
//! the size of the score maps themselves), sorted in place, and merged with two pointers.
//! Score maps can be added image by image with [`PixelAuroc::add`], so the caller need not
//! hold every map; 50 million pixels take 200 MB.

use super::{f32_order_key, ratio};
use crate::error::{Error, Result};

/// Streaming accumulator for the pixel AUROC.
#[derive(Debug, Default, Clone)]
pub struct PixelAuroc {
    normal: Vec<u32>,
    anomalous: Vec<u32>,
}

impl PixelAuroc {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of pixels added so far.
    pub fn len(&self) -> usize {
        self.normal.len() + self.anomalous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds one or more score maps and their masks, flattened in the same order.
    /// `mask[i]` is 0 (normal pixel) or 1 (anomalous pixel).
    ///
    /// Errors name the pixel's index counted over everything added so far.
    pub fn add(&mut self, scores: &[f32], mask: &[u8]) -> Result<()> {
        if scores.len() != mask.len() {
            return Err(Error::Shape {
                what: "pixel scores and mask".into(),
                expected: format!("{} mask pixels", scores.len()),
                got: format!("{} mask pixels", mask.len()),
            });
        }
        // Validate everything first so a failed call leaves the accumulator unchanged.
        let offset = self.len();
        check_pixels(scores, mask, offset)?;
        for (&s, &m) in scores.iter().zip(mask) {
            if m == 1 {
                self.anomalous.push(f32_order_key(s));
            } else {
                self.normal.push(f32_order_key(s));
            }
        }
        Ok(())
    }

    /// The AUROC of everything added. Sorts the stored keys in place.
    pub fn compute(&mut self) -> Result<f64> {
        let (p, n) = (self.anomalous.len(), self.normal.len());
        if p == 0 || n == 0 {
            return Err(Error::UndefinedMetric {
                metric: "pixel AUROC",
                message: format!("needs both classes, got {p} anomalous and {n} normal pixels"),
            });
        }
        self.normal.sort_unstable();
        self.anomalous.sort_unstable();
        // 2U = sum over distinct anomalous values v of count(v) * (2 #normal<v + #normal==v)
        let mut twice_u: u128 = 0;
        let mut below = 0usize; // normal keys < v
        let mut i = 0;
        while i < p {
            let v = self.anomalous[i];
            let start = i;
            while i < p && self.anomalous[i] == v {
                i += 1;
            }
            let count = (i - start) as u128;
            while below < n && self.normal[below] < v {
                below += 1;
            }
            let mut equal_end = below;
            while equal_end < n && self.normal[equal_end] == v {
                equal_end += 1;
            }
            twice_u += count * (2 * below as u128 + (equal_end - below) as u128);
        }
        Ok(ratio(twice_u, 2 * p as u128 * n as u128))
    }
}

/// Checks that every score is finite and every mask value is 0 or 1; `offset` is added to
/// the index in error messages.
pub(crate) fn check_pixels(scores: &[f32], mask: &[u8], offset: usize) -> Result<()> {
    for (i, (&s, &m)) in scores.iter().zip(mask).enumerate() {
        if !s.is_finite() {
            return Err(Error::NonFiniteScore {
                index: offset + i,
                value: s as f64,
            });
        }
        if m > 1 {
            return Err(Error::InvalidLabel {
                index: offset + i,
                value: m.to_string(),
            });
        }
    }
    Ok(())
}

/// Pixel AUROC of flattened score maps against flattened 0/1 masks.
pub fn pixel_auroc(scores: &[f32], mask: &[u8]) -> Result<f64> {
    let mut acc = PixelAuroc::new();
    acc.add(scores, mask)?;
    acc.compute()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_image_auroc_on_ties_and_signs() {
        let scores = [-1.5f32, -0.0, 0.0, 0.25, 0.25, 3.0, -1.5, 7.0, 0.25];
        let mask = [0u8, 1, 0, 1, 0, 0, 1, 1, 1];
        let s64: Vec<f64> = scores.iter().map(|&s| s as f64).collect();
        let expected = super::super::auroc(&s64, &mask).unwrap();
        // added in two parts
        let mut acc = PixelAuroc::new();
        acc.add(&scores[..4], &mask[..4]).unwrap();
        acc.add(&scores[4..], &mask[4..]).unwrap();
        assert_eq!(acc.compute().unwrap(), expected);
    }

    #[test]
    fn errors_name_the_pixel() {
        let mut acc = PixelAuroc::new();
        acc.add(&[0.1, 0.2], &[0, 1]).unwrap();
        let e = acc.add(&[0.1, f32::NAN], &[0, 1]).unwrap_err().to_string();
        assert!(e.contains("index 3"), "{e}");
        let e = pixel_auroc(&[0.1, 0.2], &[0, 255]).unwrap_err().to_string();
        assert!(e.contains("index 1") && e.contains("255"), "{e}");
    }
}
