//! Coordinate maps (§3.2.2) and receptive-field kernel plans.
//!
//! A stride-1 network with receptive field s x s maps an `h x w` input to `(h - s + 1) x
//! (w - s + 1)` patch scores; output (i, j) sees the patch whose top-left pixel is (i, j). Its
//! true coordinate map r^s holds, per output position, the patch centre (row, column) in the
//! coordinates of the full image, scaled to [-1, 1] (pixel centres at `2 (p + 0.5) / size - 1`).
//! Crops (textures) pass their offset so a crop's patches get their full-image coordinates.
//! A fake map r̂^s draws every value uniformly from the range the true values of that level
//! take ("filled with randomly sampled values in coordinate range").

use rand::Rng;

use crate::error::{Error, Result};

/// The normalised coordinate of patch-centre `centre` (in pixels) on an axis of `size` pixels.
fn normalised(centre: f32, size: usize) -> f32 {
    2.0 * (centre + 0.5) / size as f32 - 1.0
}

/// Output size of a stride-1 valid network with receptive field `s` on `len` pixels.
pub fn output_len(len: usize, s: usize) -> Result<usize> {
    if s == 0 || s > len {
        return Err(Error::InvalidArgument(format!("a receptive field of {s} pixels does not fit {len} pixels")));
    }
    Ok(len - s + 1)
}

/// True coordinate map r^s: `[2, oh, ow]` (row, then column), `oh = height - s + 1` of the
/// (cropped) input, for a crop at `offset` (row, column) of a `full` (height, width) image.
pub fn coordinate_map(s: usize, height: usize, width: usize, offset: (usize, usize), full: (usize, usize)) -> Result<Vec<f32>> {
    let (oh, ow) = (output_len(height, s)?, output_len(width, s)?);
    if offset.0 + height > full.0 || offset.1 + width > full.1 {
        return Err(Error::InvalidArgument(format!(
            "coordinate map: a {height}x{width} crop at {offset:?} leaves the {}x{} image",
            full.0, full.1
        )));
    }
    let half = (s as f32 - 1.0) / 2.0;
    let mut out = Vec::with_capacity(2 * oh * ow);
    for i in 0..oh {
        let r = normalised((offset.0 + i) as f32 + half, full.0);
        out.extend(std::iter::repeat_n(r, ow));
    }
    for _ in 0..oh {
        for j in 0..ow {
            out.push(normalised((offset.1 + j) as f32 + half, full.1));
        }
    }
    Ok(out)
}

/// The (low, high) range of level-`s` coordinates on an axis of `size` pixels.
pub fn coordinate_range(s: usize, size: usize) -> Result<(f32, f32)> {
    let n = output_len(size, s)?;
    let half = (s as f32 - 1.0) / 2.0;
    Ok((normalised(half, size), normalised((n - 1) as f32 + half, size)))
}

/// Fake coordinate map r̂^s: `[2, oh, ow]` of independent uniform values in the level's range.
pub fn fake_coordinate_map<R: Rng + ?Sized>(
    s: usize,
    height: usize,
    width: usize,
    full: (usize, usize),
    rng: &mut R,
) -> Result<Vec<f32>> {
    let (oh, ow) = (output_len(height, s)?, output_len(width, s)?);
    let mut out = Vec::with_capacity(2 * oh * ow);
    for size in [full.0, full.1] {
        let (lo, hi) = coordinate_range(s, size)?;
        for _ in 0..oh * ow {
            out.push(lo + (hi - lo) * rng.random::<f32>());
        }
    }
    Ok(out)
}

/// Kernel sizes of stride-1 valid convolutions whose stack sees exactly `s` x `s` pixels
/// (receptive field `1 + sum(k - 1)`), shaped like Tables 5-7: one 4x4 first when s >= 4, then
/// 3x3s, then a 2x2 for an odd remainder; `[1]` for s = 1, `[2]` for s = 2.
pub fn receptive_kernels(s: usize) -> Result<Vec<usize>> {
    if s == 0 {
        return Err(Error::InvalidArgument("a receptive field of 0 pixels".into()));
    }
    if s == 1 {
        return Ok(vec![1]);
    }
    let mut rest = s - 1;
    let mut kernels = Vec::new();
    if rest >= 3 {
        kernels.push(4);
        rest -= 3;
    }
    while rest >= 2 {
        kernels.push(3);
        rest -= 2;
    }
    if rest == 1 {
        kernels.push(2);
    }
    Ok(kernels)
}

/// Receptive field of a stack of stride-1 convolutions with these kernel sizes.
pub fn receptive_field(kernels: &[usize]) -> usize {
    1 + kernels.iter().map(|k| k - 1).sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn kernel_plans_have_the_level_as_receptive_field() {
        assert_eq!(receptive_kernels(8).unwrap(), vec![4, 3, 3]); // Table 7
        assert_eq!(receptive_kernels(4).unwrap(), vec![4]); // Table 6
        assert_eq!(receptive_kernels(2).unwrap(), vec![2]); // Table 5
        for s in 1..40 {
            assert_eq!(receptive_field(&receptive_kernels(s).unwrap()), s, "level {s}");
        }
        assert!(receptive_kernels(0).is_err());
    }

    #[test]
    fn coordinate_maps_hold_patch_centres() {
        // level 1 on 4x4: pixel centres -0.75, -0.25, 0.25, 0.75
        let r = coordinate_map(1, 4, 4, (0, 0), (4, 4)).unwrap();
        assert_eq!(&r[0..4], &[-0.75; 4]);
        assert_eq!(&r[16..20], &[-0.75, -0.25, 0.25, 0.75]);
        // level 2 on 4x4: 3x3 patches centred at 0.5, 1.5, 2.5 pixels
        let r = coordinate_map(2, 4, 4, (0, 0), (4, 4)).unwrap();
        assert_eq!(r.len(), 18);
        assert_eq!(&r[9..12], &[-0.5, 0.0, 0.5]);
        // a crop at (2, 1) of an 8x8 image: first patch centre (2, 1) -> (-0.375, -0.625)
        let r = coordinate_map(1, 2, 2, (2, 1), (8, 8)).unwrap();
        assert_eq!((r[0], r[4]), (-0.375, -0.625));
        assert!(coordinate_map(1, 4, 4, (1, 0), (4, 4)).is_err());
        assert!(coordinate_map(5, 4, 4, (0, 0), (4, 4)).is_err());
    }

    #[test]
    fn fake_maps_stay_in_the_level_range_and_break_position() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let (lo, hi) = coordinate_range(4, 32).unwrap();
        let fake = fake_coordinate_map(4, 32, 32, (32, 32), &mut rng).unwrap();
        assert_eq!(fake.len(), 2 * 29 * 29);
        assert!(fake.iter().all(|&v| v >= lo && v <= hi));
        let real = coordinate_map(4, 32, 32, (0, 0), (32, 32)).unwrap();
        assert_eq!((real[0], real[real.len() - 1]), (lo, hi));
        // uniform on [lo, hi]: the mean is near the middle, the values spread over the range
        let mean = fake.iter().sum::<f32>() / fake.len() as f32;
        assert!((mean - (lo + hi) / 2.0).abs() < 0.05, "mean {mean}");
        let differs = fake.iter().zip(&real).filter(|(a, b)| (*a - *b).abs() > 0.1).count();
        assert!(differs > fake.len() / 2);
    }
}
