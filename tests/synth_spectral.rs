//! Spectral anomalies (thesis §3.4): the output's log-magnitude spectrum falls with slope -a
//! along fx and -b along fy; values are in [0, 1]; generation is seeded.

use oddity::data::ImageTensor;
use oddity::synth::spectral::{fft2, frequency, EXPONENT_RANGE};
use oddity::synth::{
    spectral_image, spectral_image_with_exponents, AnomalySource, SpectralAnomalies,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rustfft::num_complex::Complex;
use rustfft::FftPlanner;

/// Least-squares slope of log|F| against log f along the fx axis (fy = 0) and the fy axis,
/// over the positive frequencies below Nyquist.
fn fitted_slopes(img: &ImageTensor, channel: usize) -> (f64, f64) {
    let (h, w) = (img.height, img.width);
    let mut spectrum: Vec<Complex<f64>> = img
        .channel(channel)
        .iter()
        .map(|&v| Complex::new(v as f64, 0.0))
        .collect();
    fft2(&mut FftPlanner::new(), &mut spectrum, h, w, false);
    let fit = |points: Vec<(f64, f64)>| {
        let n = points.len() as f64;
        let (mx, my) = (
            points.iter().map(|p| p.0).sum::<f64>() / n,
            points.iter().map(|p| p.1).sum::<f64>() / n,
        );
        let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
        sxy / sxx
    };
    let along_x = (1..w / 2)
        .map(|k| (frequency(k, w).ln(), spectrum[k].norm().ln()))
        .collect();
    let along_y = (1..h / 2)
        .map(|k| (frequency(k, h).ln(), spectrum[k * w].norm().ln()))
        .collect();
    (fit(along_x), fit(along_y))
}

#[test]
fn spectrum_has_the_requested_slopes() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for (a, b, h, w) in [(1.2, 2.7, 128, 96), (0.5, 3.5, 64, 64), (2.0, 1.0, 33, 50)] {
        let img = spectral_image_with_exponents(3, h, w, a, b, &mut rng).unwrap();
        for c in 0..3 {
            let (sx, sy) = fitted_slopes(&img, c);
            assert!(
                (sx + a).abs() < 0.02,
                "{h}x{w} channel {c}: slope along fx {sx}, expected {}",
                -a
            );
            assert!(
                (sy + b).abs() < 0.02,
                "{h}x{w} channel {c}: slope along fy {sy}, expected {}",
                -b
            );
        }
    }
}

#[test]
fn random_exponents_fall_in_the_thesis_range() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (mut min_slope, mut max_slope) = (f64::MAX, f64::MIN);
    for _ in 0..12 {
        let img = spectral_image(1, 64, 64, &mut rng).unwrap();
        let (sx, sy) = fitted_slopes(&img, 0);
        for s in [-sx, -sy] {
            assert!(
                s > EXPONENT_RANGE.0 - 0.05 && s < EXPONENT_RANGE.1 + 0.05,
                "exponent {s}"
            );
            min_slope = min_slope.min(s);
            max_slope = max_slope.max(s);
        }
    }
    assert!(
        max_slope - min_slope > 1.0,
        "exponents vary: {min_slope}..{max_slope}"
    );
}

#[test]
fn images_are_rescaled_seeded_and_shaped_like_the_normal_ones() {
    let img = spectral_image(3, 40, 30, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
    for c in 0..3 {
        let ch = img.channel(c);
        let (lo, hi) = ch
            .iter()
            .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
        assert!(
            lo == 0.0 && (hi - 1.0).abs() < 1e-6,
            "channel {c}: [{lo}, {hi}]"
        );
    }
    assert_eq!(
        img,
        spectral_image(3, 40, 30, &mut ChaCha8Rng::seed_from_u64(1)).unwrap()
    );
    assert_ne!(
        img,
        spectral_image(3, 40, 30, &mut ChaCha8Rng::seed_from_u64(2)).unwrap()
    );
    let normal = vec![ImageTensor::zeros(1, 12, 20), ImageTensor::zeros(1, 12, 20)];
    let out = SpectralAnomalies::new()
        .generate(&normal, &mut ChaCha8Rng::seed_from_u64(0))
        .unwrap();
    assert_eq!(out.len(), 2);
    assert!(out
        .iter()
        .all(|o| (o.channels, o.height, o.width) == (1, 12, 20)));
    let err = spectral_image_with_exponents(1, 0, 4, 1.0, 1.0, &mut ChaCha8Rng::seed_from_u64(0))
        .unwrap_err();
    assert!(err.to_string().contains("[1, 0, 4]"), "{err}");
}
