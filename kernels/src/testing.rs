//! Helpers for kernel tests (used by this crate's tests and by the `oddity` crate's tests):
//! a shared test context with the WebGPU baseline limits, seeded test data, tolerance checks that
//! print the first mismatches, and an f64 central-difference gradient check.

use std::sync::OnceLock;

use crate::context::Context;

/// The shared test context, requested with `wgpu::Limits::default()` (the WebGPU baseline).
/// Returns `None` (and the test should return) only when `ODDITY_SKIP_GPU_TESTS=1` and no adapter
/// exists; otherwise a missing adapter fails the test with the message saying how to get one.
pub fn gpu() -> Option<Context> {
    static CTX: OnceLock<Result<Context, String>> = OnceLock::new();
    let ctx = CTX.get_or_init(|| {
        let ctx = Context::with_limits(wgpu::Limits::default()).map_err(|e| e.to_string())?;
        eprintln!("oddity tests on adapter: {}", ctx.adapter_name());
        Ok(ctx)
    });
    match ctx {
        Ok(c) => Some(c.clone()),
        Err(e) if std::env::var("ODDITY_SKIP_GPU_TESTS").as_deref() == Ok("1") => {
            eprintln!("skipping GPU test (ODDITY_SKIP_GPU_TESTS=1): {e}");
            None
        }
        Err(e) => panic!("{e}\n(set ODDITY_SKIP_GPU_TESTS=1 to skip GPU tests on a machine without an adapter)"),
    }
}

/// Gets the shared test context or returns from the test when GPU tests are skipped.
#[macro_export]
macro_rules! gpu_or_skip {
    () => {
        match $crate::testing::gpu() {
            Some(ctx) => ctx,
            None => return,
        }
    };
}

/// Deterministic test data (splitmix64), so failures reproduce.
pub struct TestRng(u64);

impl TestRng {
    pub fn new(seed: u64) -> Self {
        TestRng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
    }

    /// `n` values uniform in [lo, hi), already rounded to f32 so CPU and GPU see the same inputs.
    pub fn vec(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f64> {
        (0..n).map(|_| self.uniform(lo, hi) as f32 as f64).collect()
    }
}

pub fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// Asserts `|got - want| <= atol + rtol * |want|` elementwise, printing the first mismatches.
pub fn assert_close(what: &str, got: &[f32], want: &[f64], atol: f64, rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length {} vs reference {}", got.len(), want.len());
    let bad: Vec<(usize, f32, f64)> = got
        .iter()
        .zip(want)
        .enumerate()
        .filter(|(_, (g, w))| !(((**g as f64) - **w).abs() <= atol + rtol * w.abs()))
        .map(|(i, (g, w))| (i, *g, *w))
        .collect();
    if !bad.is_empty() {
        let first: Vec<String> = bad.iter().take(8).map(|(i, g, w)| format!("[{i}] got {g} want {w}")).collect();
        panic!(
            "{what}: {} of {} values outside atol {atol} + rtol {rtol}: {}",
            bad.len(),
            got.len(),
            first.join(", ")
        );
    }
}

/// Same check for two f64 slices (CPU backward against numeric gradients).
pub fn assert_close_f64(what: &str, got: &[f64], want: &[f64], atol: f64, rtol: f64) {
    let got32: Vec<f32> = got.iter().map(|&x| x as f32).collect();
    // Compare in f64 to keep the tolerance meaningful below f32 precision.
    assert_eq!(got.len(), want.len(), "{what}: length mismatch");
    let bad: Vec<String> = got
        .iter()
        .zip(want)
        .enumerate()
        .filter(|(_, (g, w))| !(((**g) - **w).abs() <= atol + rtol * w.abs()))
        .take(8)
        .map(|(i, (g, w))| format!("[{i}] got {g} want {w}"))
        .collect();
    assert!(bad.is_empty(), "{what}: values outside atol {atol} + rtol {rtol} (of {}): {}", got32.len(), bad.join(", "));
}

/// Central differences of the scalar `sum(forward(x) * weights)` with respect to `x`, in f64.
/// With `weights` as the upstream gradient, this is what a backward pass must return.
pub fn numeric_vjp(forward: impl Fn(&[f64]) -> Vec<f64>, x: &[f64], weights: &[f64], eps: f64) -> Vec<f64> {
    let mut xp = x.to_vec();
    (0..x.len())
        .map(|i| {
            let orig = xp[i];
            xp[i] = orig + eps;
            let plus: f64 = forward(&xp).iter().zip(weights).map(|(a, b)| a * b).sum();
            xp[i] = orig - eps;
            let minus: f64 = forward(&xp).iter().zip(weights).map(|(a, b)| a * b).sum();
            xp[i] = orig;
            (plus - minus) / (2.0 * eps)
        })
        .collect()
}
