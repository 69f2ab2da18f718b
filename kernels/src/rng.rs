//! GPU random numbers from the counter-based Philox4x32-10 generator: uniform and normal fills
//! and dropout masks, identical on every backend for the same `(seed, stream)`.
//! WGSL: `shaders/rng.wgsl`. CPU reference: [`cpu`].
//!
//! Philox is stateless: a random block is a pure function of a 128-bit counter and a 64-bit key,
//! so a fill needs no generator state on the GPU, runs in any order, and the CPU can reproduce any
//! element. The scheme (fixed; changing it changes every model's initialisation):
//!
//! - key = `(seed as u32, (seed >> 32) as u32)`,
//! - element `i` of a fill takes word `i % 4` of `philox4x32_10([i / 4, stream, 0, 0], key)`.
//!
//! Use a different `stream` (or seed) for every independent draw, e.g. one per layer and training
//! step; two fills with the same `(seed, stream)` start from the same words (a longer fill extends
//! a shorter one).
//!
//! Words become floats as `(w >> 8) * 2^-24` in `[0, 1)` (exact in f32), or `((w >> 8) + 1) * 2^-24`
//! in `(0, 1]` where a logarithm follows. Uniforms and Bernoulli masks are bit-identical to
//! [`cpu::uniform`] and [`cpu::bernoulli_mask`]; normals use `log`, `sin`, `cos`, whose accuracy
//! WGSL leaves to the driver, so they agree with [`cpu::normal`] to within a few 1e-3 at most
//! (see the test tolerance).
//!
//! Random fills have no backward: they take no differentiable input.

use bytemuck::{Pod, Zeroable};

use crate::context::Context;
use crate::error::{Error, Result};
use crate::kernel::{grid_1d, KernelSpec, RW, WG_1D};
use crate::tensor::{DType, Tensor};

const SRC: &str = include_str!("../../shaders/rng.wgsl");
const UNIFORM: KernelSpec = KernelSpec { id: "rng.uniform_fill", source: SRC, entry: "uniform_fill", bindings: &[RW] };
const NORMAL: KernelSpec = KernelSpec { id: "rng.normal_fill", source: SRC, entry: "normal_fill", bindings: &[RW] };
const BERNOULLI: KernelSpec =
    KernelSpec { id: "rng.bernoulli_fill", source: SRC, entry: "bernoulli_fill", bindings: &[RW] };

/// Mirrors `Params` in `shaders/rng.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct Params {
    n: u32,
    key_lo: u32,
    key_hi: u32,
    stream: u32,
    /// uniform: lo; normal: mean; bernoulli: keep_prob
    a: f32,
    /// uniform: hi - lo; normal: std; bernoulli: 1 / keep_prob
    b: f32,
    /// Always 1.0; keeps a driver's fma contraction from changing uniforms (see the shader).
    one: f32,
    pad: u32,
}

fn params(n: usize, seed: u64, stream: u32, a: f32, b: f32) -> Params {
    Params { n: n as u32, key_lo: seed as u32, key_hi: (seed >> 32) as u32, stream, a, b, one: 1.0, pad: 0 }
}

fn fill(dst: &Tensor, spec: &KernelSpec, p: Params) -> Result<()> {
    if dst.dtype() != DType::F32 {
        return Err(Error::Shape(format!("{}: needs an f32 tensor, got {:?} {:?}", spec.id, dst.dtype(), dst.shape())));
    }
    // One thread per Philox block of four elements.
    dst.context().dispatch(spec, &p, &[dst.binding()], grid_1d(dst.numel().div_ceil(4), WG_1D))
}

fn check_uniform(lo: f32, hi: f32) -> Result<()> {
    if !(lo.is_finite() && hi.is_finite() && lo <= hi && (hi - lo).is_finite()) {
        return Err(Error::Shape(format!("uniform needs finite lo <= hi with a finite width, got lo {lo}, hi {hi}")));
    }
    Ok(())
}

fn check_normal(mean: f32, std: f32) -> Result<()> {
    if !(mean.is_finite() && std.is_finite() && std >= 0.0) {
        return Err(Error::Shape(format!("normal needs a finite mean and a finite std >= 0, got mean {mean}, std {std}")));
    }
    Ok(())
}

fn check_keep_prob(keep_prob: f32) -> Result<()> {
    if !(keep_prob > 0.0 && keep_prob <= 1.0) {
        return Err(Error::Shape(format!("bernoulli_mask needs keep_prob in (0, 1], got {keep_prob}")));
    }
    Ok(())
}

/// Overwrites `dst` (any shape, f32) with uniforms in `[lo, hi)`: `lo + (hi - lo) * u`, rounded in
/// f32 (so `hi` itself can come out when the width is large next to `lo`'s ulp).
pub fn uniform_into(dst: &Tensor, seed: u64, stream: u32, lo: f32, hi: f32) -> Result<()> {
    check_uniform(lo, hi)?;
    fill(dst, &UNIFORM, params(dst.numel(), seed, stream, lo, hi - lo))
}

/// A new tensor of uniforms in `[lo, hi)`; see [`uniform_into`].
pub fn uniform(ctx: &Context, shape: &[usize], seed: u64, stream: u32, lo: f32, hi: f32) -> Result<Tensor> {
    check_uniform(lo, hi)?;
    let t = Tensor::uninit(ctx, shape, DType::F32)?;
    uniform_into(&t, seed, stream, lo, hi)?;
    Ok(t)
}

/// Overwrites `dst` with normals `mean + std * z`, z from Box–Muller on pairs of words of one
/// Philox block.
pub fn normal_into(dst: &Tensor, seed: u64, stream: u32, mean: f32, std: f32) -> Result<()> {
    check_normal(mean, std)?;
    fill(dst, &NORMAL, params(dst.numel(), seed, stream, mean, std))
}

/// A new tensor of normals with the given mean and standard deviation; see [`normal_into`].
pub fn normal(ctx: &Context, shape: &[usize], seed: u64, stream: u32, mean: f32, std: f32) -> Result<Tensor> {
    check_normal(mean, std)?;
    let t = Tensor::uninit(ctx, shape, DType::F32)?;
    normal_into(&t, seed, stream, mean, std)?;
    Ok(t)
}

/// Overwrites `dst` with an inverted-dropout mask: `1 / keep_prob` where `u < keep_prob`, else 0,
/// so `x * mask` keeps the expectation of `x`.
pub fn bernoulli_mask_into(dst: &Tensor, seed: u64, stream: u32, keep_prob: f32) -> Result<()> {
    check_keep_prob(keep_prob)?;
    fill(dst, &BERNOULLI, params(dst.numel(), seed, stream, keep_prob, 1.0 / keep_prob))
}

/// A new dropout mask of `shape`; see [`bernoulli_mask_into`].
pub fn bernoulli_mask(ctx: &Context, shape: &[usize], seed: u64, stream: u32, keep_prob: f32) -> Result<Tensor> {
    check_keep_prob(keep_prob)?;
    let t = Tensor::uninit(ctx, shape, DType::F32)?;
    bernoulli_mask_into(&t, seed, stream, keep_prob)?;
    Ok(t)
}

/// Plain-Rust reference of the generator and the fills, with the same counter scheme.
/// Uniforms and masks are computed in f32 exactly as the shader does (they are bit-exact
/// contracts); normals in f64 from the same words (the shader's f32 transcendentals are the
/// approximation).
pub mod cpu {
    const M0: u32 = 0xD251_1F53;
    const M1: u32 = 0xCD9E_8D57;
    const W0: u32 = 0x9E37_79B9;
    const W1: u32 = 0xBB67_AE85;
    const TWO_POW_M24: f32 = 1.0 / (1u32 << 24) as f32;

    fn mulhilo(a: u32, b: u32) -> (u32, u32) {
        let p = a as u64 * b as u64;
        ((p >> 32) as u32, p as u32)
    }

    /// Philox4x32 with 10 rounds (Random123's `philox4x32_R(10, ...)`).
    pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
        let (mut c, mut k) = (counter, key);
        for round in 0..10 {
            if round > 0 {
                k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
            }
            let (hi0, lo0) = mulhilo(M0, c[0]);
            let (hi1, lo1) = mulhilo(M1, c[2]);
            c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
        }
        c
    }

    /// The 32-bit word element `i` of a fill uses.
    pub fn word(seed: u64, stream: u32, i: usize) -> u32 {
        let key = [seed as u32, (seed >> 32) as u32];
        philox4x32_10([(i / 4) as u32, stream, 0, 0], key)[i % 4]
    }

    /// In [0, 1), exact.
    pub fn unit_closed_open(w: u32) -> f32 {
        (w >> 8) as f32 * TWO_POW_M24
    }

    /// In (0, 1], exact.
    pub fn unit_open_closed(w: u32) -> f32 {
        ((w >> 8) + 1) as f32 * TWO_POW_M24
    }

    pub fn uniform(n: usize, seed: u64, stream: u32, lo: f32, hi: f32) -> Vec<f32> {
        let width = hi - lo;
        (0..n).map(|i| lo + width * unit_closed_open(word(seed, stream, i))).collect()
    }

    pub fn normal(n: usize, seed: u64, stream: u32, mean: f32, std: f32) -> Vec<f64> {
        (0..n)
            .map(|i| {
                // Element i is the cos (even) or sin (odd) half of the pair (i & !1, i | 1).
                let pair = i & !1;
                let u1 = unit_open_closed(word(seed, stream, pair)) as f64;
                let u2 = unit_closed_open(word(seed, stream, pair + 1)) as f64;
                let r = (-2.0 * u1.ln()).max(0.0).sqrt();
                let theta = std::f64::consts::PI * (2.0 * u2 - 1.0);
                let z = if i % 2 == 0 { r * theta.cos() } else { r * theta.sin() };
                mean as f64 + std as f64 * z
            })
            .collect()
    }

    pub fn bernoulli_mask(n: usize, seed: u64, stream: u32, keep_prob: f32) -> Vec<f32> {
        let scale = 1.0 / keep_prob;
        (0..n).map(|i| if unit_closed_open(word(seed, stream, i)) < keep_prob { scale } else { 0.0 }).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu_or_skip;
    use crate::testing::assert_close;

    #[test]
    fn philox_matches_random123_known_answers() {
        // Random123's kat_vectors for philox4x32_10.
        let cases: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
            ([0; 4], [0; 2], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]),
            ([0xffff_ffff; 4], [0xffff_ffff; 2], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]),
            (
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0],
                [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
            ),
        ];
        for (counter, key, want) in cases {
            assert_eq!(cpu::philox4x32_10(counter, key), want, "counter {counter:08x?} key {key:08x?}");
        }
    }

    #[test]
    fn gpu_philox_words_match_the_known_answers() {
        // A [0, 1) fill with stream 0 exposes the top 24 bits of each word of counter (g, 0, 0, 0):
        // check the shader's 16-bit-half multiply on the first KAT (counter 0, key 0) directly.
        let ctx = gpu_or_skip!();
        let u = uniform(&ctx, &[4], 0, 0, 0.0, 1.0).unwrap().to_vec().unwrap();
        let want = [0x6627e8d5u32, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8];
        for (got, w) in u.iter().zip(want) {
            assert_eq!((got * (1u32 << 24) as f32) as u32, w >> 8, "word {w:08x}");
        }
    }

    #[test]
    fn gpu_uniforms_are_bit_exact_against_cpu() {
        let ctx = gpu_or_skip!();
        // 1001 = 250 full blocks + 1 element: a partial block and a partial workgroup.
        // Seeds with both key words non-zero; a range whose width is not a power of two.
        for (shape, seed, stream, lo, hi) in [
            (vec![7, 11, 13], 0x0123_4567_89ab_cdefu64, 0u32, 0.0f32, 1.0f32),
            (vec![1001], 42, 3, -0.37, 2.9),
            (vec![3], u64::MAX, u32::MAX, -1e-3, 1e-3),
        ] {
            let n: usize = shape.iter().product();
            let got = uniform(&ctx, &shape, seed, stream, lo, hi).unwrap().to_vec().unwrap();
            let want = cpu::uniform(n, seed, stream, lo, hi);
            let bad: Vec<usize> = (0..n).filter(|&i| got[i].to_bits() != want[i].to_bits()).collect();
            if let Some(&i) = bad.first() {
                panic!("{shape:?}: {} of {n} differ, first [{i}] got {} want {}", bad.len(), got[i], want[i]);
            }
            assert!(got.iter().all(|&v| v >= lo && v <= hi), "values outside [{lo}, {hi}]");
        }
    }

    #[test]
    fn gpu_bernoulli_masks_are_bit_exact_against_cpu() {
        let ctx = gpu_or_skip!();
        for keep in [0.5f32, 0.9, 1.0] {
            let got = bernoulli_mask(&ctx, &[5, 201], 7, 11, keep).unwrap().to_vec().unwrap();
            let want = cpu::bernoulli_mask(1005, 7, 11, keep);
            assert!(got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits()), "keep {keep}");
            assert!(got.iter().all(|&v| v == 0.0 || v == 1.0 / keep));
        }
        // keep 0.9 over 100k draws: the kept fraction has standard error sqrt(0.9 * 0.1 / 1e5) =
        // 9.5e-4, so 5e-3 is over 5 standard errors.
        let m = bernoulli_mask(&ctx, &[100_000], 1, 2, 0.9).unwrap().to_vec().unwrap();
        let kept = m.iter().filter(|&&v| v != 0.0).count() as f64 / 1e5;
        assert!((kept - 0.9).abs() < 5e-3, "kept fraction {kept}");
    }

    #[test]
    fn gpu_normals_match_cpu() {
        let ctx = gpu_or_skip!();
        // Tolerance from WGSL's accuracy bounds (the shader computes in f32 on the driver's
        // transcendentals): sin/cos are within 2^-11 absolute on [-pi, pi] and r <= sqrt(2 ln 2^24)
        // = 5.8, so r*cos(theta) is within 2.8e-3; log is within 2^-21 absolute near 1, which moves
        // a near-zero r by at most 1e-3. Hence 4e-3 * std absolute. A wrong counter, word or pair
        // gives O(1) differences. Software drivers do far better (see the report).
        for (shape, seed, stream, mean, std) in [
            (vec![1001], 5u64, 0u32, 0.0f32, 1.0f32),
            (vec![3, 3, 7], 0xdead_beef_0000_0001, 9, -2.5, 0.25),
            (vec![1], 1, 1, 0.0, 1.0),
        ] {
            let n: usize = shape.iter().product();
            let got = normal(&ctx, &shape, seed, stream, mean, std).unwrap().to_vec().unwrap();
            let want = cpu::normal(n, seed, stream, mean, std);
            let worst = got.iter().zip(&want).map(|(&g, w)| (g as f64 - w).abs()).fold(0.0, f64::max);
            eprintln!("normal {shape:?} std {std}: max |gpu - cpu| = {worst:.2e}");
            assert_close(&format!("normal {shape:?}"), &got, &want, 4e-3 * std as f64, 1e-5);
        }
    }

    #[test]
    fn gpu_normals_have_the_requested_mean_and_variance() {
        let ctx = gpu_or_skip!();
        let (n, mean, std) = (100_000usize, 1.5f32, 2.0f32);
        let z = normal(&ctx, &[n], 123, 4, mean, std).unwrap().to_vec().unwrap();
        let m = z.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        let var = z.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / (n - 1) as f64;
        // Standard errors: mean std/sqrt(n) = 6.3e-3; variance std^2 * sqrt(2/(n-1)) = 1.8e-2.
        // Bounds at 5 standard errors fail a correct generator about once in 1.7 million seeds,
        // and the seed is fixed, so this never flakes; a wrong scale or shift is far outside.
        assert!((m - mean as f64).abs() < 5.0 * 6.3e-3, "mean {m}");
        assert!((var - (std * std) as f64).abs() < 5.0 * 1.8e-2, "variance {var}");
        // Tails: P(|z| > 3) = 0.0027, 270 expected, standard deviation 16.4.
        let tails = z.iter().filter(|&&v| ((v - mean) / std).abs() > 3.0).count() as f64;
        assert!((tails - 270.0).abs() < 5.0 * 16.4, "{tails} beyond 3 sigma");
    }

    #[test]
    fn seeds_and_streams_give_different_numbers_and_repeat_exactly() {
        let ctx = gpu_or_skip!();
        let draw = |seed, stream| uniform(&ctx, &[257], seed, stream, 0.0, 1.0).unwrap().to_vec().unwrap();
        let base = draw(1, 0);
        assert_eq!(base, draw(1, 0), "same seed and stream must reproduce");
        // Flipping either half of the seed or the stream changes (almost) every value.
        for (seed, stream) in [(2u64, 0u32), (1 | (1 << 32), 0), (1, 1)] {
            let other = draw(seed, stream);
            let same = base.iter().zip(&other).filter(|(a, b)| a == b).count();
            assert!(same < 3, "seed {seed:#x} stream {stream}: {same} of 257 equal to seed 1 stream 0");
        }
        // In-place fills write the same numbers as the allocating ones, over every element.
        let t = Tensor::from_slice(&ctx, &[257], &[f32::NAN; 257]).unwrap();
        uniform_into(&t, 1, 0, 0.0, 1.0).unwrap();
        assert_eq!(t.to_vec().unwrap(), base);
        let z = normal(&ctx, &[257], 1, 0, 0.0, 1.0).unwrap().to_vec().unwrap();
        normal_into(&t, 1, 0, 0.0, 1.0).unwrap();
        assert_eq!(t.to_vec().unwrap(), z);
    }

    #[test]
    fn bad_parameters_are_errors_naming_the_values() {
        let ctx = gpu_or_skip!();
        let err = uniform(&ctx, &[3], 0, 0, 2.0, 1.0).unwrap_err().to_string();
        assert!(err.contains("lo 2") && err.contains("hi 1"), "{err}");
        let err = normal(&ctx, &[3], 0, 0, 0.0, -1.0).unwrap_err().to_string();
        assert!(err.contains("std -1"), "{err}");
        for keep in [0.0f32, 1.5, f32::NAN] {
            let err = bernoulli_mask(&ctx, &[3], 0, 0, keep).unwrap_err().to_string();
            assert!(err.contains(&format!("{keep}")), "{err}");
        }
        let idx = Tensor::from_u32(&ctx, &[2, 2], &[0; 4]).unwrap();
        let err = uniform_into(&idx, 0, 0, 0.0, 1.0).unwrap_err().to_string();
        assert!(err.contains("U32") && err.contains("[2, 2]"), "{err}");
    }
}
