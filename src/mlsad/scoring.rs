//! Scoring (§3.2.3): each detector's patch scores A^s_c(x, r^s) on the true coordinates, their
//! average per image (the level score, kept for the per-level ablation of Table 4), eq. 4's
//! average over levels, and pixel maps: every level's score map resized bilinearly to the
//! image size, then averaged over levels. Detectors run in evaluation mode (no input noise, no
//! dropout) and fully convolutionally, so a texture detector trained on 32x32 crops scores a
//! whole 256x256 image.

use crate::autograd::{no_grad, upsample_bilinear};
use crate::error::{Error, Result};
use crate::kernels::upsample::Resize;
use crate::kernels::Context;
use crate::nn::Module;

use super::detector::Detector;
use super::Images;

/// One level's output on a batch.
#[derive(Clone, Debug)]
pub struct LevelScores {
    pub level: usize,
    /// Mean patch score per image, `[n]`.
    pub scores: Vec<f64>,
    /// Score maps resized to the image, `[n, height, width]`, when asked for.
    pub maps: Option<Vec<f32>>,
}

/// Every detector's scores (and, with `pixel_maps`, resized maps) on `images`.
pub fn score_levels(ctx: &Context, detectors: &[Detector], images: &Images, pixel_maps: bool) -> Result<Vec<LevelScores>> {
    let x = images.to_var(ctx)?;
    let (n, h, w) = (images.n, images.height, images.width);
    let mut out = Vec::with_capacity(detectors.len());
    for det in detectors {
        det.set_training(false);
        let coords = det.true_coordinates(ctx, n, h, w)?;
        let (scores, maps) = no_grad(|| -> Result<_> {
            let p = det.logits(&x, &coords)?.sigmoid()?;
            let (oh, ow) = (p.shape()[2], p.shape()[3]);
            let scores = p.reshape(&[n, oh * ow])?.mean_axis(1, false)?;
            let maps = if pixel_maps { Some(upsample_bilinear(&p, Resize::Size([h, w]))?) } else { None };
            Ok((scores, maps))
        })?;
        let scores: Vec<f64> = scores.value().to_vec()?.into_iter().map(f64::from).collect();
        let maps = match maps {
            Some(m) => Some(m.value().to_vec()?),
            None => None,
        };
        out.push(LevelScores { level: det.level(), scores, maps });
    }
    Ok(out)
}

/// Eq. 4: the mean over levels of the per-level image scores. `per_level[l][i]`.
pub fn combine_levels(per_level: &[&[f64]]) -> Result<Vec<f64>> {
    let first = per_level.first().ok_or_else(|| Error::InvalidArgument("eq. 4 over no levels".into()))?;
    if per_level.iter().any(|l| l.len() != first.len()) {
        return Err(Error::InvalidArgument("eq. 4: levels scored different numbers of images".into()));
    }
    let m = per_level.len() as f64;
    Ok((0..first.len()).map(|i| per_level.iter().map(|l| l[i]).sum::<f64>() / m).collect())
}

/// The pixel map of eq. 4's image score: the mean of the levels' resized maps.
pub fn combine_maps(maps: &[&[f32]]) -> Result<Vec<f32>> {
    let first = maps.first().ok_or_else(|| Error::InvalidArgument("pixel maps of no levels".into()))?;
    if maps.iter().any(|m| m.len() != first.len()) {
        return Err(Error::InvalidArgument("pixel maps of different sizes".into()));
    }
    let m = maps.len() as f32;
    Ok((0..first.len()).map(|i| maps.iter().map(|l| l[i]).sum::<f32>() / m).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eq4_averages_levels() {
        let a = [0.2, 0.4];
        let b = [0.6, 0.0];
        assert_eq!(combine_levels(&[&a, &b]).unwrap(), vec![0.4, 0.2]);
        assert!(combine_levels(&[&a, &b[..1]]).is_err());
        assert_eq!(combine_maps(&[&[1.0, 0.0], &[0.0, 0.0]]).unwrap(), vec![0.5, 0.0]);
    }
}
