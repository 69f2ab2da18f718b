//! AUPRO: area under the per-region-overlap (PRO) curve up to a false-positive-rate limit,
//! divided by that limit (Bergmann et al., MVTec AD; the metric anomalib reports as `AUPRO`
//! with `fpr_limit = 0.3`).
//!
//! Definition, for a threshold t and "pixel predicted anomalous" meaning `score >= t`:
//! - regions: the 8-connected components of every ground-truth mask (each image separately);
//! - PRO(t) = (1/R) sum_r |{p in region r : score_p >= t}| / |region r|, the per-region
//!   overlap averaged over all R regions of all images;
//! - FPR(t) = |{normal pixels with score_p >= t}| / |normal pixels|, over every pixel with
//!   mask 0 in every test image;
//! - the curve has one point per distinct score, from (0, 0) at t = +inf, joined linearly;
//! - AUPRO = (1 / limit) * trapezoid area of PRO over FPR in [0, limit], the last segment cut
//!   at FPR = limit by linear interpolation.
//!
//! anomalib builds the same curve from one ROC per region and resamples the per-region curves
//! on a common index grid before averaging, an approximation of this curve; here every
//! distinct threshold is a point, so the value is exact (up to f64 rounding) and independent
//! of any binning. `scripts/golden_metrics.py` computes it independently with scipy's
//! connected-component labelling and numpy cumulative sums.
//!
//! Memory: 4 bytes per normal pixel and 8 per anomalous pixel, plus one point per distinct
//! threshold below the limit.

use super::f32_order_key;
use super::pixel_auroc::check_pixels;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// PRO curve points in increasing FPR, from (0, 0) up to and including the first point whose
/// FPR exceeds the limit it was computed for (if any).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProCurve {
    pub fpr: Vec<f64>,
    pub pro: Vec<f64>,
    /// Number of connected ground-truth regions R.
    pub regions: usize,
}

impl ProCurve {
    /// Normalised area under the curve for FPR in [0, limit] (MVTec AD's trapezoid with
    /// `x_max`): every point with `fpr <= limit`, plus the segment to the next point cut at
    /// `limit` by linear interpolation; divided by `limit`.
    pub fn normalized_area(&self, limit: f64) -> f64 {
        let mut area = 0.0;
        for i in 1..self.fpr.len() {
            let (x0, x1) = (self.fpr[i - 1], self.fpr[i]);
            let (y0, y1) = (self.pro[i - 1], self.pro[i]);
            if x1 <= limit {
                area += 0.5 * (y0 + y1) * (x1 - x0);
            } else {
                if x0 < limit {
                    let y_at_limit = y0 + (y1 - y0) * (limit - x0) / (x1 - x0);
                    area += 0.5 * (y0 + y_at_limit) * (limit - x0);
                }
                break;
            }
        }
        area / limit
    }
}

/// Labels the 8-connected components of a `height x width` 0/1 mask. Returns one label per
/// pixel (0 = background, components numbered from `first_label`) and the component sizes.
pub fn connected_components(
    mask: &[u8],
    height: usize,
    width: usize,
    first_label: u32,
) -> (Vec<u32>, Vec<u32>) {
    let mut labels = vec![0u32; mask.len()];
    let mut sizes = Vec::new();
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if mask[start] == 0 || labels[start] != 0 {
            continue;
        }
        let label = first_label + sizes.len() as u32;
        let mut size = 0u32;
        labels[start] = label;
        stack.push(start);
        while let Some(p) = stack.pop() {
            size += 1;
            let (y, x) = ((p / width) as isize, (p % width) as isize);
            for dy in -1..=1isize {
                for dx in -1..=1isize {
                    let (ny, nx) = (y + dy, x + dx);
                    if ny < 0 || nx < 0 || ny >= height as isize || nx >= width as isize {
                        continue;
                    }
                    let q = ny as usize * width + nx as usize;
                    if mask[q] != 0 && labels[q] == 0 {
                        labels[q] = label;
                        stack.push(q);
                    }
                }
            }
        }
        sizes.push(size);
    }
    (labels, sizes)
}

/// PRO curve of score maps `scores` against 0/1 masks `masks`, both `[n, height, width]`
/// flattened, computed up to the first point past `fpr_limit`.
pub fn pro_curve(
    scores: &[f32],
    masks: &[u8],
    height: usize,
    width: usize,
    fpr_limit: f64,
) -> Result<ProCurve> {
    let plane = height * width;
    if plane == 0 || scores.len() % plane != 0 || scores.len() != masks.len() {
        return Err(Error::Shape {
            what: "AUPRO score maps and masks".into(),
            expected: format!("[n, {height}, {width}] for both"),
            got: format!("{} scores and {} mask pixels", scores.len(), masks.len()),
        });
    }
    if !(fpr_limit > 0.0 && fpr_limit <= 1.0) {
        return Err(Error::InvalidArgument(format!(
            "AUPRO FPR limit is {fpr_limit}, expected a value in (0, 1]"
        )));
    }
    check_pixels(scores, masks, 0)?;

    // Region labels per image, global region ids from 0; keys packed as (score key, region).
    let mut normal: Vec<u32> = Vec::new();
    let mut anomalous: Vec<u64> = Vec::new();
    let mut region_sizes: Vec<u32> = Vec::new();
    for (score_map, mask) in scores.chunks_exact(plane).zip(masks.chunks_exact(plane)) {
        let first = region_sizes.len() as u32 + 1;
        let (labels, sizes) = connected_components(mask, height, width, first);
        region_sizes.extend_from_slice(&sizes);
        for (&s, &label) in score_map.iter().zip(&labels) {
            if label == 0 {
                normal.push(f32_order_key(s));
            } else {
                anomalous.push(((f32_order_key(s) as u64) << 32) | (label - 1) as u64);
            }
        }
    }
    let regions = region_sizes.len();
    if regions == 0 || normal.is_empty() {
        return Err(Error::UndefinedMetric {
            metric: "AUPRO",
            message: format!(
                "needs anomalous regions and normal pixels, got {regions} regions and {} normal pixels",
                normal.len()
            ),
        });
    }
    normal.sort_unstable();
    anomalous.sort_unstable();

    // Walk the distinct scores from the highest down.
    let n_normal = normal.len() as f64;
    let inv_size: Vec<f64> = region_sizes.iter().map(|&s| 1.0 / s as f64).collect();
    let mut curve = ProCurve {
        fpr: vec![0.0],
        pro: vec![0.0],
        regions,
    };
    let (mut ni, mut ai) = (normal.len(), anomalous.len()); // unconsumed prefixes
    let mut false_positives = 0usize;
    let mut overlap_sum = 0.0f64;
    while ni > 0 || ai > 0 {
        let top_normal = if ni > 0 { Some(normal[ni - 1]) } else { None };
        let top_anomalous = if ai > 0 {
            Some((anomalous[ai - 1] >> 32) as u32)
        } else {
            None
        };
        let v = top_normal.max(top_anomalous).unwrap_or(0);
        while ni > 0 && normal[ni - 1] == v {
            ni -= 1;
            false_positives += 1;
        }
        let mut group_overlap = 0.0;
        while ai > 0 && (anomalous[ai - 1] >> 32) as u32 == v {
            ai -= 1;
            group_overlap += inv_size[(anomalous[ai] & 0xffff_ffff) as usize];
        }
        overlap_sum += group_overlap;
        let fpr = false_positives as f64 / n_normal;
        curve.fpr.push(fpr);
        curve.pro.push(overlap_sum / regions as f64);
        if fpr > fpr_limit {
            break;
        }
    }
    Ok(curve)
}

/// AUPRO of score maps against masks, both `[n, height, width]` flattened; `fpr_limit` is
/// 0.3 in anomalib and the thesis. Errors on NaN scores, mask values other than 0/1, no
/// anomalous region or no normal pixel.
pub fn aupro(
    scores: &[f32],
    masks: &[u8],
    height: usize,
    width: usize,
    fpr_limit: f64,
) -> Result<f64> {
    Ok(pro_curve(scores, masks, height, width, fpr_limit)?.normalized_area(fpr_limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_connectivity() {
        // two diagonal pixels form one region; a pixel two columns away is another
        let mask = [
            1, 0, 0, 0, //
            0, 1, 0, 1, //
            0, 0, 0, 1,
        ];
        let (labels, sizes) = connected_components(&mask, 3, 4, 1);
        assert_eq!(sizes, vec![2, 2]);
        assert_eq!(labels[0], labels[5]);
        assert_ne!(labels[0], labels[7]);
    }

    #[test]
    fn perfect_and_hand_computed() {
        // perfect separation: PRO reaches 1 at FPR 0, so AUPRO = 1
        let mask = [0u8, 0, 1, 1];
        assert!((aupro(&[0.0, 0.1, 0.9, 0.8], &mask, 2, 2, 0.3).unwrap() - 1.0).abs() < 1e-15);
        // regions {2,3} (one region, size 2) in a 1x4 image, normals {0,1}.
        // thresholds: 0.9 -> (fpr 0, pro 0.5); 0.5 -> (0.5, 0.5); 0.4 -> (0.5, 1); 0.1 -> (1, 1)
        let curve = pro_curve(&[0.1, 0.5, 0.9, 0.4], &mask, 1, 4, 1.0).unwrap();
        assert_eq!(curve.fpr, vec![0.0, 0.0, 0.5, 0.5, 1.0]);
        assert_eq!(curve.pro, vec![0.0, 0.5, 0.5, 1.0, 1.0]);
        // up to 0.25: rectangle 0.5 * 0.25, normalised by 0.25
        assert!((curve.normalized_area(0.25) - 0.5).abs() < 1e-15);
        assert!((curve.normalized_area(1.0) - 0.75).abs() < 1e-15);
    }
}
