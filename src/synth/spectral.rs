//! Random spectral images following the 1/f^alpha spectra of natural images (thesis §3.4):
//!
//! - magnitude |F(fx, fy)| = 1 / (|fx|^a + |fy|^b), with a, b ~ U[0.5, 3.5] per image;
//! - phase = the phase of the 2-D DFT of a noise image whose pixels are uniform in RGB space
//!   [0, 255] (one noise channel per output channel), so the spectrum is Hermitian and its
//!   inverse DFT is real;
//! - inverse DFT (rustfft, f64), real part, each channel rescaled to [0, 1] by min–max.
//!
//! Frequencies are in cycles per pixel, `f = k / N` for `k` in DFT order (`k >= N/2` stands
//! for `k - N`); the DC term (fx = fy = 0) has magnitude 0, since 1/0 is undefined and the
//! rescaling fixes the mean anyway. An affine rescale changes only the DC term and a common
//! factor, so log|F| of the output falls with slope -a along fx and -b along fy.

use super::AnomalySource;
use crate::data::ImageTensor;
use crate::error::{Error, Result};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rustfft::num_complex::Complex;
use rustfft::FftPlanner;

/// Range of the exponents a and b (thesis §3.4).
pub const EXPONENT_RANGE: (f64, f64) = (0.5, 3.5);

/// In-place 2-D DFT of a `height x width` complex array (row-major); `inverse` is unscaled.
pub fn fft2(
    planner: &mut FftPlanner<f64>,
    data: &mut [Complex<f64>],
    height: usize,
    width: usize,
    inverse: bool,
) {
    let (row_fft, col_fft) = if inverse {
        (
            planner.plan_fft_inverse(width),
            planner.plan_fft_inverse(height),
        )
    } else {
        (
            planner.plan_fft_forward(width),
            planner.plan_fft_forward(height),
        )
    };
    row_fft.process(data); // every row of length `width`
    let mut column = vec![Complex::new(0.0, 0.0); height];
    for x in 0..width {
        for y in 0..height {
            column[y] = data[y * width + x];
        }
        col_fft.process(&mut column);
        for y in 0..height {
            data[y * width + x] = column[y];
        }
    }
}

/// |frequency| in cycles per pixel of DFT index `k` of an `n`-point transform.
pub fn frequency(k: usize, n: usize) -> f64 {
    let signed = if k < n.div_ceil(2) {
        k as f64
    } else {
        k as f64 - n as f64
    };
    (signed / n as f64).abs()
}

/// A spectral image with given exponents: `[channels, height, width]`, values in [0, 1].
pub fn spectral_image_with_exponents<R: Rng + ?Sized>(
    channels: usize,
    height: usize,
    width: usize,
    a: f64,
    b: f64,
    rng: &mut R,
) -> Result<ImageTensor> {
    let mut planner = FftPlanner::new();
    spectral_with_planner(&mut planner, channels, height, width, a, b, rng)
}

fn spectral_with_planner<R: Rng + ?Sized>(
    planner: &mut FftPlanner<f64>,
    channels: usize,
    height: usize,
    width: usize,
    a: f64,
    b: f64,
    rng: &mut R,
) -> Result<ImageTensor> {
    if channels == 0 || height == 0 || width == 0 {
        return Err(Error::InvalidArgument(format!(
            "spectral image shape [{channels}, {height}, {width}] has a zero side"
        )));
    }
    if !(a.is_finite() && b.is_finite() && a > 0.0 && b > 0.0) {
        return Err(Error::InvalidArgument(format!(
            "spectral exponents a = {a}, b = {b} must be positive"
        )));
    }
    // thesis §3.4: magnitude 1 / (|fx|^a + |fy|^b), zero at DC
    let fx: Vec<f64> = (0..width).map(|k| frequency(k, width).powf(a)).collect();
    let fy: Vec<f64> = (0..height).map(|k| frequency(k, height).powf(b)).collect();
    let plane = height * width;
    let mut out = ImageTensor::zeros(channels, height, width);
    let mut spectrum = vec![Complex::new(0.0, 0.0); plane];
    for c in 0..channels {
        // phase of a uniform RGB noise image
        for v in spectrum.iter_mut() {
            *v = Complex::new(rng.random_range(0..=255u8) as f64, 0.0);
        }
        fft2(planner, &mut spectrum, height, width, false);
        for y in 0..height {
            for x in 0..width {
                let denominator = fx[x] + fy[y];
                let v = &mut spectrum[y * width + x];
                let magnitude = if denominator > 0.0 {
                    1.0 / denominator
                } else {
                    0.0
                };
                let norm = v.norm();
                *v = if norm > 0.0 {
                    *v * (magnitude / norm)
                } else {
                    Complex::new(magnitude, 0.0)
                };
            }
        }
        fft2(planner, &mut spectrum, height, width, true);
        let (lo, hi) = spectrum
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v.re), hi.max(v.re))
            });
        let span = if hi > lo { hi - lo } else { 1.0 };
        for (o, v) in out.channel_mut(c).iter_mut().zip(&spectrum) {
            *o = ((v.re - lo) / span) as f32;
        }
    }
    Ok(out)
}

/// A spectral image with a, b drawn from U[0.5, 3.5].
pub fn spectral_image<R: Rng + ?Sized>(
    channels: usize,
    height: usize,
    width: usize,
    rng: &mut R,
) -> Result<ImageTensor> {
    let a = rng.random_range(EXPONENT_RANGE.0..=EXPONENT_RANGE.1);
    let b = rng.random_range(EXPONENT_RANGE.0..=EXPONENT_RANGE.1);
    spectral_image_with_exponents(channels, height, width, a, b, rng)
}

/// Spectral anomalies shaped like the normal images, exponents drawn per image from
/// `exponent_range` (default U[0.5, 3.5]).
pub struct SpectralAnomalies {
    pub exponent_range: (f64, f64),
    planner: FftPlanner<f64>,
}

impl Default for SpectralAnomalies {
    fn default() -> Self {
        SpectralAnomalies {
            exponent_range: EXPONENT_RANGE,
            planner: FftPlanner::new(),
        }
    }
}

impl SpectralAnomalies {
    pub fn new() -> Self {
        Self::default()
    }

    /// One image of shape `[channels, height, width]`.
    pub fn sample(
        &mut self,
        channels: usize,
        height: usize,
        width: usize,
        rng: &mut ChaCha8Rng,
    ) -> Result<ImageTensor> {
        let (lo, hi) = self.exponent_range;
        if !(lo > 0.0 && hi >= lo) {
            return Err(Error::InvalidArgument(format!(
                "spectral exponent range [{lo}, {hi}] is empty or not positive"
            )));
        }
        let a = rng.random_range(lo..=hi);
        let b = rng.random_range(lo..=hi);
        spectral_with_planner(&mut self.planner, channels, height, width, a, b, rng)
    }
}

impl AnomalySource for SpectralAnomalies {
    fn generate(
        &mut self,
        normal: &[ImageTensor],
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<ImageTensor>> {
        normal
            .iter()
            .map(|n| self.sample(n.channels, n.height, n.width, rng))
            .collect()
    }
}
