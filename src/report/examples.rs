//! One PNG per most-anomalous test image: the image, its heatmap overlay
//! ([`crate::predict::heatmap_overlay`], the colours `oddity predict` uses) and its ground-truth
//! mask side by side, enlarged by pixel repetition so small inputs stay visible.

use std::path::Path;

use super::Example;
use crate::data::ImageTensor;
use crate::error::{Error, Result};
use crate::predict::heatmap_overlay;

/// Panels are enlarged by whole-pixel repetition until at least this tall.
pub const MIN_PANEL_SIDE: usize = 192;
/// White gap between panels, in output pixels.
pub const GAP: usize = 8;

/// The repetition factor that makes a side of `side` pixels at least [`MIN_PANEL_SIDE`].
pub fn scale_factor(side: usize) -> usize {
    MIN_PANEL_SIDE.div_ceil(side.max(1)).max(1)
}

/// The panels [image, overlay, mask] of `ex` as one RGB image [3, k H, 3 k W + 2 GAP], k =
/// [`scale_factor`]`(H)`; the overlay maps `heat_range.0` to cold and `heat_range.1` to hot; the
/// mask panel is gray when there is no mask.
pub fn compose(ex: &Example, heat_range: (f32, f32)) -> Result<ImageTensor> {
    let (h, w) = (ex.image.height, ex.image.width);
    let (low, high) = heat_range;
    let shifted: Vec<f32> = ex.heatmap.iter().map(|&m| m - low).collect();
    let overlay = heatmap_overlay(&ex.image, &shifted, (high - low).max(f32::MIN_POSITIVE))?;
    let plane = h * w;
    let gray = |i: usize| (0..ex.image.channels).map(|c| ex.image.data[c * plane + i]).sum::<f32>() / ex.image.channels as f32;
    let mask_value = |i: usize| match &ex.mask {
        Some(m) => f32::from(m.data[i]),
        None => 0.5,
    };
    if let Some(m) = &ex.mask {
        if (m.height, m.width) != (h, w) {
            return Err(Error::Shape {
                what: format!("mask of report example {}", ex.name),
                expected: format!("{h}x{w} (the image)"),
                got: format!("{}x{}", m.height, m.width),
            });
        }
    }
    let k = scale_factor(h);
    let (oh, pw) = (k * h, k * w);
    let ow = 3 * pw + 2 * GAP;
    let mut out = ImageTensor::from_vec(vec![1.0; 3 * oh * ow], 3, oh, ow)?;
    let oplane = oh * ow;
    for y in 0..oh {
        for x in 0..w * k {
            let i = (y / k) * w + x / k;
            let image_rgb = if ex.image.channels == 3 {
                [ex.image.data[i], ex.image.data[plane + i], ex.image.data[2 * plane + i]]
            } else {
                [gray(i); 3]
            };
            let panels = [image_rgb, [overlay.data[i], overlay.data[plane + i], overlay.data[2 * plane + i]], [mask_value(i); 3]];
            for (p, rgb) in panels.iter().enumerate() {
                let ox = p * (pw + GAP) + x;
                for (c, v) in rgb.iter().enumerate() {
                    out.data[c * oplane + y * ow + ox] = *v;
                }
            }
        }
    }
    Ok(out)
}

/// Writes [`compose`]'s image to `path`.
pub fn example_png(path: &Path, ex: &Example, heat_range: (f32, f32)) -> Result<()> {
    compose(ex, heat_range)?.save_png(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Mask;

    #[test]
    fn panels_are_image_overlay_and_mask_enlarged() {
        let (h, w) = (4, 6);
        let image = ImageTensor::from_vec((0..h * w).map(|i| i as f32 / 24.0).collect(), 1, h, w).unwrap();
        let mut mask = Mask::zeros(h, w);
        mask.data[2 * w + 3] = 1;
        let ex = Example {
            name: "x".into(),
            label: 1,
            score: 1.0,
            probability: 0.5,
            image,
            heatmap: vec![0.5; h * w],
            mask: Some(mask),
        };
        let out = compose(&ex, (0.0, 1.0)).unwrap();
        let k = scale_factor(h);
        assert_eq!(k, 48);
        assert_eq!((out.channels, out.height, out.width), (3, k * h, 3 * k * w + 2 * GAP));
        // Image panel: gray value of pixel (2, 3) in every channel.
        assert_eq!(out.at(1, 2 * k, 3 * k), (2 * w + 3) as f32 / 24.0);
        // Mask panel: 1 at the defect pixel, 0 elsewhere; the gaps stay white.
        let mask_x = 2 * (k * w + GAP);
        assert_eq!(out.at(0, 2 * k + 1, mask_x + 3 * k + 1), 1.0);
        assert_eq!(out.at(0, 0, mask_x), 0.0);
        assert_eq!(out.at(2, 0, k * w + 1), 1.0);
        let mut bad = ex.clone();
        bad.mask = Some(Mask::zeros(3, 3));
        assert!(compose(&bad, (0.0, 1.0)).unwrap_err().to_string().contains("3x3"));
    }
}
