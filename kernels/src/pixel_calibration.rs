//! Per-pixel Platt scaling and Beta calibration of logit maps (thesis §4.2, localization): one
//! parameter set per output pixel, forward and backward. WGSL: `shaders/pixel_calibration.wgsl`.
//! CPU reference: [`cpu`].
//!
//! Shapes: the logits `z` are `[N, H, W]` or `[N, 1, H, W]`; the parameters `w` are `[P, H, W]`
//! with one plane per parameter, in the order of [`PixelMethod`]. The output has `z`'s shape.
//!
//! ```text
//! Platt (P = 2: a, b):     y = a z + b                                         (thesis eq. 3.1)
//! Beta  (P = 3: a, b, c):  y = a ln σ(z) - b ln(1 - σ(z)) + c
//!                            = -a softplus(-z) + b softplus(z) + c             (thesis eq. 3.2)
//! ```
//!
//! Beta takes ln η and ln(1 - η) from the logit through softplus, never from a rounded η = σ(z),
//! so logits of an overconfident network (|z| > 17 rounds σ to 1 in f32) keep their order.
//! The parameter gradient sums over the batch with one thread per pixel, in order: no atomics.

use bytemuck::{Pod, Zeroable};

use crate::error::{Error, Result};
use crate::kernel::{grid_1d, KernelSpec, R, RW, WG_1D};
use crate::tensor::{DType, Tensor};

const SRC: &str = include_str!("../../shaders/pixel_calibration.wgsl");
const FORWARD: KernelSpec =
    KernelSpec { id: "pixel_calibration.forward", source: SRC, entry: "forward", bindings: &[R, R, RW] };
const BACKWARD_INPUT: KernelSpec = KernelSpec {
    id: "pixel_calibration.backward_input",
    source: SRC,
    entry: "backward_input",
    bindings: &[R, R, R, RW],
};
const BACKWARD_PARAMS: KernelSpec = KernelSpec {
    id: "pixel_calibration.backward_params",
    source: SRC,
    entry: "backward_params",
    bindings: &[R, R, RW],
};
const PROJECT: KernelSpec = KernelSpec {
    id: "pixel_calibration.project_nonnegative",
    source: SRC,
    entry: "project_nonnegative",
    bindings: &[RW],
};

/// Which per-pixel map; the parameter planes of `w` are listed in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelMethod {
    /// Planes a, b: `y = a z + b`.
    Platt,
    /// Planes a, b, c with a, b >= 0: `y = a ln σ(z) - b ln(1 - σ(z)) + c`.
    Beta,
}

impl PixelMethod {
    /// Parameter planes P.
    pub fn num_params(self) -> usize {
        match self {
            PixelMethod::Platt => 2,
            PixelMethod::Beta => 3,
        }
    }

    fn code(self) -> u32 {
        match self {
            PixelMethod::Platt => 0,
            PixelMethod::Beta => 1,
        }
    }

    /// The identity map's parameters, `[P, H, W]` flattened: Platt a = 1, b = 0; Beta a = b = 1,
    /// c = 0 (then `y = ln σ(z) - ln(1 - σ(z)) = z`).
    pub fn identity(self, pixels: usize) -> Vec<f32> {
        let ones = match self {
            PixelMethod::Platt => 1,
            PixelMethod::Beta => 2,
        };
        let mut w = vec![0.0; self.num_params() * pixels];
        w[..ones * pixels].fill(1.0);
        w
    }
}

/// Mirrors `Params` in `shaders/pixel_calibration.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct Params {
    n: u32,
    pixels: u32,
    batch: u32,
    method: u32,
}

/// (N, H, W) of a logit map `[N, H, W]` or `[N, 1, H, W]`.
pub fn map_dims(shape: &[usize], op: &str) -> Result<(usize, usize, usize)> {
    match *shape {
        [n, h, w] => Ok((n, h, w)),
        [n, 1, h, w] => Ok((n, h, w)),
        _ => Err(Error::Shape(format!("{op}: logits must be [N, H, W] or [N, 1, H, W], got {shape:?}"))),
    }
}

fn expect_f32(t: &Tensor, name: &str, op: &str) -> Result<()> {
    if t.dtype() != DType::F32 {
        return Err(Error::Shape(format!("{op}: {name} must be f32, got {:?} {:?}", t.dtype(), t.shape())));
    }
    Ok(())
}

/// Checks z against w and returns the params of a dispatch.
fn check(z: &Tensor, w: &Tensor, method: PixelMethod, op: &str) -> Result<Params> {
    expect_f32(z, "z", op)?;
    expect_f32(w, "params", op)?;
    z.expect_same_context(w, op)?;
    let (n, h, wd) = map_dims(z.shape(), op)?;
    let want = [method.num_params(), h, wd];
    if w.shape() != want {
        return Err(Error::Shape(format!(
            "{op}: {method:?} parameters for logits {:?} must be {want:?}, got {:?}",
            z.shape(),
            w.shape()
        )));
    }
    let too_big = |v: usize| u32::try_from(v).is_err();
    if too_big(z.numel()) {
        return Err(Error::TooLarge(format!("{op}: logits {:?} have more than 2^32 elements", z.shape())));
    }
    Ok(Params { n: z.numel() as u32, pixels: (h * wd) as u32, batch: n as u32, method: method.code() })
}

/// Calibrated logits, z's shape. z: [N, H, W] or [N, 1, H, W]; w: [P, H, W].
pub fn forward(z: &Tensor, w: &Tensor, method: PixelMethod) -> Result<Tensor> {
    let params = check(z, w, method, "pixel_calibration")?;
    let y = Tensor::uninit(z.context(), z.shape(), DType::F32)?;
    z.context().dispatch(&FORWARD, &params, &[z.binding(), w.binding(), y.binding()], grid_1d(z.numel(), WG_1D))?;
    Ok(y)
}

/// Gradient with respect to z (input perturbation differentiates through the calibration).
/// gy: z's shape.
pub fn backward_input(z: &Tensor, w: &Tensor, gy: &Tensor, method: PixelMethod) -> Result<Tensor> {
    let params = check(z, w, method, "pixel_calibration backward")?;
    expect_f32(gy, "gy", "pixel_calibration backward")?;
    if gy.shape() != z.shape() {
        return Err(Error::Shape(format!(
            "pixel_calibration backward: gy {:?} must have the logits' shape {:?}",
            gy.shape(),
            z.shape()
        )));
    }
    let gz = Tensor::uninit(z.context(), z.shape(), DType::F32)?;
    z.context().dispatch(
        &BACKWARD_INPUT,
        &params,
        &[z.binding(), w.binding(), gy.binding(), gz.binding()],
        grid_1d(z.numel(), WG_1D),
    )?;
    Ok(gz)
}

/// Gradient with respect to the parameters, `[P, H, W]`, summed over the batch. The map is
/// linear in them, so `w` itself is not needed, only its shape: `[P, H, W]`.
pub fn backward_params(z: &Tensor, gy: &Tensor, method: PixelMethod) -> Result<Tensor> {
    let op = "pixel_calibration backward";
    expect_f32(z, "z", op)?;
    expect_f32(gy, "gy", op)?;
    z.expect_same_context(gy, op)?;
    let (n, h, wd) = map_dims(z.shape(), op)?;
    if gy.shape() != z.shape() {
        return Err(Error::Shape(format!("{op}: gy {:?} must have the logits' shape {:?}", gy.shape(), z.shape())));
    }
    let params = Params { n: z.numel() as u32, pixels: (h * wd) as u32, batch: n as u32, method: method.code() };
    let gw = Tensor::uninit(z.context(), &[method.num_params(), h, wd], DType::F32)?;
    z.context().dispatch(&BACKWARD_PARAMS, &params, &[z.binding(), gy.binding(), gw.binding()], grid_1d(h * wd, WG_1D))?;
    Ok(gw)
}

/// Beta's constraint a, b >= 0 (thesis §3.2.2): clamps planes a and b of `w` to [0, inf) in place,
/// after an optimizer step (projected gradient descent). Platt has no constraint: nothing to do.
/// w: [P, H, W].
pub fn project_nonnegative(w: &Tensor, method: PixelMethod) -> Result<()> {
    expect_f32(w, "params", "pixel_calibration project")?;
    let [p, h, wd] = *w.shape() else {
        return Err(Error::Shape(format!("pixel_calibration project: params must be [P, H, W], got {:?}", w.shape())));
    };
    if p != method.num_params() {
        return Err(Error::Shape(format!(
            "pixel_calibration project: {method:?} has {} parameter planes, got {:?}",
            method.num_params(),
            w.shape()
        )));
    }
    if method == PixelMethod::Platt {
        return Ok(());
    }
    let n = 2 * h * wd;
    let params = Params { n: n as u32, pixels: (h * wd) as u32, batch: 0, method: method.code() };
    w.context().dispatch(&PROJECT, &params, &[w.binding()], grid_1d(n, WG_1D))
}

/// Plain-Rust f64 reference with the same layout: z [N * pixels], w [P * pixels].
pub mod cpu {
    use super::PixelMethod;

    pub fn softplus(x: f64) -> f64 {
        x.max(0.0) + (-x.abs()).exp().ln_1p()
    }

    pub fn sigmoid(x: f64) -> f64 {
        if x >= 0.0 {
            1.0 / (1.0 + (-x).exp())
        } else {
            let e = x.exp();
            e / (1.0 + e)
        }
    }

    /// The calibrated logit of one pixel; `w` holds that pixel's P parameters in order.
    pub fn map(z: f64, w: &[f64], method: PixelMethod) -> f64 {
        match method {
            PixelMethod::Platt => w[0] * z + w[1],
            // ln σ(z) = -softplus(-z), ln(1 - σ(z)) = -softplus(z)
            PixelMethod::Beta => -w[0] * softplus(-z) + w[1] * softplus(z) + w[2],
        }
    }

    fn pixel_params(w: &[f64], pixels: usize, px: usize, method: PixelMethod) -> Vec<f64> {
        (0..method.num_params()).map(|k| w[k * pixels + px]).collect()
    }

    pub fn forward(z: &[f64], w: &[f64], pixels: usize, method: PixelMethod) -> Vec<f64> {
        z.iter().enumerate().map(|(i, &v)| map(v, &pixel_params(w, pixels, i % pixels, method), method)).collect()
    }

    /// (gz, gw): gz = gy dy/dz, gw[k, px] = sum_n gy dy/dw_k.
    pub fn backward(z: &[f64], w: &[f64], gy: &[f64], pixels: usize, method: PixelMethod) -> (Vec<f64>, Vec<f64>) {
        let mut gz = vec![0.0; z.len()];
        let mut gw = vec![0.0; w.len()];
        for (i, (&v, &g)) in z.iter().zip(gy).enumerate() {
            let px = i % pixels;
            let p = pixel_params(w, pixels, px, method);
            let (dz, dw): (f64, Vec<f64>) = match method {
                PixelMethod::Platt => (p[0], vec![v, 1.0]),
                PixelMethod::Beta => (p[0] * sigmoid(-v) + p[1] * sigmoid(v), vec![-softplus(-v), softplus(v), 1.0]),
            };
            gz[i] = g * dz;
            for (k, d) in dw.iter().enumerate() {
                gw[k * pixels + px] += g * d;
            }
        }
        (gz, gw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu_or_skip;
    use crate::testing::{assert_close, assert_close_f64, numeric_vjp, to_f32, TestRng};

    const METHODS: [PixelMethod; 2] = [PixelMethod::Platt, PixelMethod::Beta];

    /// Odd shapes: a batch of 3 that fills no workgroup, 5x7 and 13x11 maps, the [N, 1, H, W]
    /// layout, and a 1x1 map with a batch of 70 (more than one workgroup of elements).
    fn shapes() -> Vec<Vec<usize>> {
        vec![vec![3, 5, 7], vec![2, 1, 13, 11], vec![70, 1, 1], vec![1, 1, 9, 3]]
    }

    /// Parameters around the identity with a, b > 0 (Beta's constraint), as after training.
    fn params(rng: &mut TestRng, method: PixelMethod, pixels: usize) -> Vec<f64> {
        let mut w = rng.vec(method.num_params() * pixels, -1.0, 1.0);
        let positive = if method == PixelMethod::Beta { 2 } else { 1 };
        for v in &mut w[..positive * pixels] {
            *v = (0.2 + v.abs() * 2.0) as f32 as f64;
        }
        w
    }

    // Tolerances: the forward is one or two products and f32 softplus (whose log(1 + e) loses
    // ~1e-7 absolute for small e); |z| <= 12 keeps outputs below ~50, so 1e-5 absolute plus 1e-5
    // relative. The parameter gradient sums up to 70 such terms: 1e-4.
    const ATOL: f64 = 1e-5;
    const RTOL: f64 = 1e-5;

    #[test]
    fn forward_and_backward_match_cpu_on_odd_shapes() {
        let ctx = gpu_or_skip!();
        let mut rng = TestRng::new(11);
        for method in METHODS {
            for shape in shapes() {
                let (_, h, wd) = map_dims(&shape, "test").unwrap();
                let pixels = h * wd;
                let n: usize = shape.iter().product();
                let z = rng.vec(n, -12.0, 12.0);
                let w = params(&mut rng, method, pixels);
                let gy = rng.vec(n, -1.0, 1.0);
                let zt = Tensor::from_slice(&ctx, &shape, &to_f32(&z)).unwrap();
                let wt = Tensor::from_slice(&ctx, &[method.num_params(), h, wd], &to_f32(&w)).unwrap();
                let gyt = Tensor::from_slice(&ctx, &shape, &to_f32(&gy)).unwrap();
                let what = format!("{method:?} {shape:?}");
                let y = forward(&zt, &wt, method).unwrap();
                assert_eq!(y.shape(), shape.as_slice());
                assert_close(&format!("{what} forward"), &y.to_vec().unwrap(), &cpu::forward(&z, &w, pixels, method), ATOL, RTOL);
                let (want_gz, want_gw) = cpu::backward(&z, &w, &gy, pixels, method);
                let gz = backward_input(&zt, &wt, &gyt, method).unwrap().to_vec().unwrap();
                assert_close(&format!("{what} grad z"), &gz, &want_gz, ATOL, RTOL);
                let gw = backward_params(&zt, &gyt, method).unwrap();
                assert_eq!(gw.shape(), &[method.num_params(), h, wd]);
                assert_close(&format!("{what} grad params"), &gw.to_vec().unwrap(), &want_gw, 1e-4, 1e-4);
            }
        }
    }

    #[test]
    fn cpu_backward_matches_central_differences() {
        let mut rng = TestRng::new(12);
        let pixels = 6;
        for method in METHODS {
            let z = rng.vec(4 * pixels, -6.0, 6.0);
            let w = params(&mut rng, method, pixels);
            let gy = rng.vec(z.len(), -1.0, 1.0);
            let (gz, gw) = cpu::backward(&z, &w, &gy, pixels, method);
            let nz = numeric_vjp(|z| cpu::forward(z, &w, pixels, method), &z, &gy, 1e-6);
            let nw = numeric_vjp(|w| cpu::forward(&z, w, pixels, method), &w, &gy, 1e-6);
            // f64 central differences with step 1e-6 of smooth maps: error ~1e-9.
            assert_close_f64(&format!("{method:?} grad z"), &gz, &nz, 1e-7, 1e-6);
            assert_close_f64(&format!("{method:?} grad params"), &gw, &nw, 1e-7, 1e-6);
        }
    }

    #[test]
    fn backward_params_is_deterministic() {
        let ctx = gpu_or_skip!();
        let mut rng = TestRng::new(13);
        let shape = [33, 4, 5];
        let z = Tensor::from_slice(&ctx, &shape, &to_f32(&rng.vec(660, -5.0, 5.0))).unwrap();
        let gy = Tensor::from_slice(&ctx, &shape, &to_f32(&rng.vec(660, -1.0, 1.0))).unwrap();
        let first = backward_params(&z, &gy, PixelMethod::Beta).unwrap().to_vec().unwrap();
        let second = backward_params(&z, &gy, PixelMethod::Beta).unwrap().to_vec().unwrap();
        assert_eq!(first.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), second.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    }

    #[test]
    fn identity_parameters_return_the_logits_even_when_overconfident() {
        let ctx = gpu_or_skip!();
        // Beta with a = b = 1, c = 0 is the identity; at |z| = 50, σ(z) is exactly 1 in f32, and
        // only the softplus form gives z back.
        let z = [-50.0f32, -20.0, -1.5, 0.0, 2.25, 20.0, 50.0];
        let zt = Tensor::from_slice(&ctx, &[1, 1, 7], &z).unwrap();
        for method in METHODS {
            let wt = Tensor::from_slice(&ctx, &[method.num_params(), 1, 7], &method.identity(7)).unwrap();
            let y = forward(&zt, &wt, method).unwrap().to_vec().unwrap();
            let want: Vec<f64> = z.iter().map(|&v| v as f64).collect();
            // softplus(z) - softplus(-z) = z up to f32 rounding of log(1 + e^-|z|): 1e-5.
            assert_close(&format!("{method:?} identity"), &y, &want, 1e-5, 1e-6);
        }
    }

    #[test]
    fn projection_clamps_only_a_and_b_of_beta() {
        let ctx = gpu_or_skip!();
        let w = [-1.0f32, 2.0, 0.5, -3.0, -4.0, -5.0];
        let wt = Tensor::from_slice(&ctx, &[3, 1, 2], &w).unwrap();
        project_nonnegative(&wt, PixelMethod::Beta).unwrap();
        assert_eq!(wt.to_vec().unwrap(), vec![0.0, 2.0, 0.5, 0.0, -4.0, -5.0]);
        let pt = Tensor::from_slice(&ctx, &[2, 1, 3], &w).unwrap();
        project_nonnegative(&pt, PixelMethod::Platt).unwrap();
        assert_eq!(pt.to_vec().unwrap(), w.to_vec());
    }

    #[test]
    fn bad_shapes_are_errors_naming_them() {
        let ctx = gpu_or_skip!();
        let z = Tensor::zeros(&ctx, &[2, 3, 4]).unwrap();
        let w = Tensor::zeros(&ctx, &[2, 3, 4]).unwrap();
        let err = forward(&z, &w, PixelMethod::Beta).unwrap_err().to_string();
        assert!(err.contains("[3, 3, 4]") && err.contains("[2, 3, 4]"), "{err}");
        let wrong_map = Tensor::zeros(&ctx, &[2, 4, 3]).unwrap();
        let err = forward(&z, &wrong_map, PixelMethod::Platt).unwrap_err().to_string();
        assert!(err.contains("[2, 4, 3]"), "{err}");
        let channels = Tensor::zeros(&ctx, &[2, 3, 3, 4]).unwrap();
        let err = forward(&channels, &w, PixelMethod::Platt).unwrap_err().to_string();
        assert!(err.contains("[2, 3, 3, 4]") && err.contains("[N, 1, H, W]"), "{err}");
        let gy = Tensor::zeros(&ctx, &[2, 12]).unwrap();
        assert!(backward_input(&z, &w, &gy, PixelMethod::Platt).unwrap_err().to_string().contains("[2, 12]"));
        assert!(backward_params(&z, &gy, PixelMethod::Platt).unwrap_err().to_string().contains("[2, 12]"));
        let err = project_nonnegative(&w, PixelMethod::Beta).unwrap_err().to_string();
        assert!(err.contains("[2, 3, 4]"), "{err}");
    }
}
