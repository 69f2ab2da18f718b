//! Windowed SSIM map (Wang et al. 2004), the similarity behind the thesis's autoencoder loss
//! (§4.1.4): for images x, y the map is
//! `S = (2 μx μy + c1)(2 σxy + c2) / ((μx² + μy² + c1)(σx² + σy² + c2))` per pixel, with the local
//! moments taken under an 11x11 Gaussian window (σ 1.5, weights summing to 1) over the images
//! padded by 5 pixels with a constant (the thesis pads "by 5 pixels with the mean of the training
//! data, such that S has conformal width and height"), so S has the images' shape.
//! `σx² = w * x² - μx²` and `σxy = w * (x y) - μx μy` are the window-weighted (biased) moments, and
//! c1 = 0.01², c2 = 0.03² (data range 1), as in the common Gaussian-window SSIM implementations.
//! The thesis's loss is `ℓ(x) = mean_ij (1 - S(x, φ(x)))_ij` (§4.1.4), built from this map in the
//! graph; its per-pixel anomaly estimate is `(1 - S) / 2`.
//! WGSL: `shaders/ssim.wgsl` (separable: a row pass and a column pass for the five moments; the
//! backward is the same blur applied to the per-pixel partials). CPU reference: [`cpu`].

use bytemuck::{Pod, Zeroable};

use crate::error::{Error, Result};
use crate::kernel::{grid_1d, KernelSpec, R, RW, WG_1D};
use crate::tensor::{DType, Tensor};

const SRC: &str = include_str!("../../shaders/ssim.wgsl");
const MOMENTS_H: KernelSpec = KernelSpec { id: "ssim.moments_h", source: SRC, entry: "moments_h", bindings: &[R, R, RW, RW] };
const FORWARD_V: KernelSpec = KernelSpec { id: "ssim.forward_v", source: SRC, entry: "forward_v", bindings: &[R, R, RW] };
const PARTIALS_V: KernelSpec =
    KernelSpec { id: "ssim.partials_v", source: SRC, entry: "partials_v", bindings: &[R, R, R, RW, RW] };
const BLUR_H: KernelSpec = KernelSpec { id: "ssim.blur_h", source: SRC, entry: "blur_h", bindings: &[R, R, RW, RW] };
const BACKWARD_V: KernelSpec =
    KernelSpec { id: "ssim.backward_v", source: SRC, entry: "backward_v", bindings: &[R, R, R, R, RW, RW] };
// The same passes on vec4s, 4 pixels (row passes) or 4 x 4 pixels (column passes) per invocation.
const MOMENTS_H4: KernelSpec = KernelSpec { id: "ssim.moments_h4", source: SRC, entry: "moments_h4", bindings: &[R, R, RW, RW] };
const FORWARD_V4: KernelSpec = KernelSpec { id: "ssim.forward_v4", source: SRC, entry: "forward_v4", bindings: &[R, R, RW] };
const PARTIALS_V4: KernelSpec =
    KernelSpec { id: "ssim.partials_v4", source: SRC, entry: "partials_v4", bindings: &[R, R, R, RW, RW] };
const BLUR_H4: KernelSpec = KernelSpec { id: "ssim.blur_h4", source: SRC, entry: "blur_h4", bindings: &[R, R, RW, RW] };
const BACKWARD_V4: KernelSpec =
    KernelSpec { id: "ssim.backward_v4", source: SRC, entry: "backward_v4", bindings: &[R, R, R, R, RW, RW] };

/// Which kernels run the passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernels {
    /// One pixel per invocation: GPUs, and images whose width is not a multiple of 4.
    PerPixel,
    /// vec4 loads and stores, 4 pixels per row-pass invocation and 4 x 4 per column-pass one: CPU
    /// adapters, where storage is read lane by lane and loads per pixel set the speed.
    Blocks,
}

impl Kernels {
    fn pick(x: &Tensor) -> Kernels {
        if x.context().is_cpu_adapter() && x.shape()[3] % 4 == 0 { Kernels::Blocks } else { Kernels::PerPixel }
    }

    /// (row-pass, column-pass) grids.
    fn grids(self, shape: &[usize]) -> ([u32; 3], [u32; 3]) {
        let m: usize = shape.iter().product();
        match self {
            Kernels::PerPixel => (grid_1d(m, WG_1D), grid_1d(m, WG_1D)),
            Kernels::Blocks => {
                let blocks = shape[0] * shape[1] * shape[2].div_ceil(4) * (shape[3] / 4);
                (grid_1d(m / 4, WG_1D), grid_1d(blocks, WG_1D))
            }
        }
    }
}

/// Window side (pixels); the images are padded by `WINDOW / 2` on every side.
pub const WINDOW: usize = 11;
/// Standard deviation of the Gaussian window, in pixels.
pub const SIGMA: f64 = 1.5;
/// Luminance stabiliser (0.01 * data range)², data range 1.
pub const C1: f64 = 0.01 * 0.01;
/// Contrast stabiliser (0.03 * data range)², data range 1.
pub const C2: f64 = 0.03 * 0.03;

/// The 1-D window taps `exp(-(i - 5)² / (2 σ²))`, normalised to sum 1; the 2-D window is `g g^T`.
pub fn gaussian_window() -> [f64; WINDOW] {
    let c = (WINDOW / 2) as f64;
    let mut g = [0.0; WINDOW];
    for (i, v) in g.iter_mut().enumerate() {
        *v = (-(i as f64 - c).powi(2) / (2.0 * SIGMA * SIGMA)).exp();
    }
    let sum: f64 = g.iter().sum();
    g.map(|v| v / sum)
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct Params {
    n: u32,
    h: u32,
    w: u32,
    _pad0: u32,
    pad_value: f32,
    c1: f32,
    c2: f32,
    _pad1: f32,
    taps: [[f32; 4]; 3],
}

fn params(shape: &[usize], pad_value: f32) -> Params {
    let mut taps = [[0.0f32; 4]; 3];
    for (i, g) in gaussian_window().iter().enumerate() {
        taps[i / 4][i % 4] = *g as f32;
    }
    Params {
        n: shape.iter().product::<usize>() as u32,
        h: shape[2] as u32,
        w: shape[3] as u32,
        _pad0: 0,
        pad_value,
        c1: C1 as f32,
        c2: C2 as f32,
        _pad1: 0.0,
        taps,
    }
}

fn check_pair(op: &str, x: &Tensor, y: &Tensor, pad_value: f32) -> Result<()> {
    if x.shape().len() != 4 || x.shape() != y.shape() || x.dtype() != DType::F32 || y.dtype() != DType::F32 {
        return Err(Error::Shape(format!(
            "{op} expects two f32 images of one shape [batch, channels, height, width], got x {:?} {:?} and y {:?} {:?}",
            x.dtype(),
            x.shape(),
            y.dtype(),
            y.shape()
        )));
    }
    x.expect_same_context(y, op)?;
    if !pad_value.is_finite() {
        return Err(Error::Shape(format!("{op}: pad value must be finite, got {pad_value}")));
    }
    Ok(())
}

/// The row pass: the five moments of the shifted images blurred along each row.
fn moments_h(x: &Tensor, y: &Tensor, p: &Params, k: Kernels) -> Result<(Tensor, Tensor)> {
    let ctx = x.context();
    let m = x.numel();
    let means = Tensor::uninit(ctx, &[2, m], DType::F32)?;
    let seconds = Tensor::uninit(ctx, &[3, m], DType::F32)?;
    let spec = if k == Kernels::Blocks { &MOMENTS_H4 } else { &MOMENTS_H };
    ctx.dispatch(spec, p, &[x.binding(), y.binding(), means.binding(), seconds.binding()], k.grids(x.shape()).0)?;
    Ok((means, seconds))
}

/// The per-pixel SSIM map of `x` and `y`, each padded by 5 with `pad_value`.
/// x, y: [batch, channels, height, width] -> [batch, channels, height, width]
pub fn ssim_map(x: &Tensor, y: &Tensor, pad_value: f32) -> Result<Tensor> {
    check_pair("ssim_map", x, y, pad_value)?;
    ssim_map_using(x, y, pad_value, Kernels::pick(x))
}

fn ssim_map_using(x: &Tensor, y: &Tensor, pad_value: f32, k: Kernels) -> Result<Tensor> {
    let p = params(x.shape(), pad_value);
    let (means, seconds) = moments_h(x, y, &p, k)?;
    let ctx = x.context();
    let s = Tensor::uninit(ctx, x.shape(), DType::F32)?;
    let spec = if k == Kernels::Blocks { &FORWARD_V4 } else { &FORWARD_V };
    ctx.dispatch(spec, &p, &[means.binding(), seconds.binding(), s.binding()], k.grids(x.shape()).1)?;
    Ok(s)
}

/// Gradients of `sum(gs * ssim_map(x, y, pad_value))` with respect to x and y (the padding is a
/// constant, not differentiated). Recomputes the moments rather than keeping five maps per call.
/// gs, x, y: [batch, channels, height, width] -> (gx, gy) of the same shape
pub fn ssim_map_backward(gs: &Tensor, x: &Tensor, y: &Tensor, pad_value: f32) -> Result<(Tensor, Tensor)> {
    let op = "ssim_map_backward";
    check_pair(op, x, y, pad_value)?;
    if gs.shape() != x.shape() || gs.dtype() != DType::F32 {
        return Err(Error::Shape(format!(
            "{op}: gs must be f32 {:?} like the images, got {:?} {:?}",
            x.shape(),
            gs.dtype(),
            gs.shape()
        )));
    }
    gs.expect_same_context(x, op)?;
    ssim_map_backward_using(gs, x, y, pad_value, Kernels::pick(x))
}

fn ssim_map_backward_using(gs: &Tensor, x: &Tensor, y: &Tensor, pad_value: f32, k: Kernels) -> Result<(Tensor, Tensor)> {
    let p = params(x.shape(), pad_value);
    let (means, seconds) = moments_h(x, y, &p, k)?;
    let ctx = x.context();
    let m = x.numel();
    let (rows, cols) = k.grids(x.shape());
    let blocks = k == Kernels::Blocks;
    let pm = Tensor::uninit(ctx, &[2, m], DType::F32)?;
    let ps = Tensor::uninit(ctx, &[2, m], DType::F32)?;
    let spec = if blocks { &PARTIALS_V4 } else { &PARTIALS_V };
    ctx.dispatch(spec, &p, &[means.binding(), seconds.binding(), gs.binding(), pm.binding(), ps.binding()], cols)?;
    drop((means, seconds));
    let qm = Tensor::uninit(ctx, &[2, m], DType::F32)?;
    let qs = Tensor::uninit(ctx, &[2, m], DType::F32)?;
    let spec = if blocks { &BLUR_H4 } else { &BLUR_H };
    ctx.dispatch(spec, &p, &[pm.binding(), ps.binding(), qm.binding(), qs.binding()], rows)?;
    let gx = Tensor::uninit(ctx, x.shape(), DType::F32)?;
    let gy = Tensor::uninit(ctx, x.shape(), DType::F32)?;
    let spec = if blocks { &BACKWARD_V4 } else { &BACKWARD_V };
    ctx.dispatch(spec, &p, &[qm.binding(), qs.binding(), x.binding(), y.binding(), gx.binding(), gy.binding()], cols)?;
    Ok((gx, gy))
}

/// Plain-Rust f64 reference: the full 11x11 window over the explicitly padded images, moments
/// unshifted (an independent route from the GPU's separable, shifted one).
pub mod cpu {
    use super::{gaussian_window, C1, C2, WINDOW};

    /// Window moments at every pixel: (μx, μy, E[x²], E[y²], E[xy]).
    fn moments(x: &[f64], y: &[f64], shape: &[usize], pad: f64) -> Vec<[f64; 5]> {
        let g = gaussian_window();
        let (h, w) = (shape[2] as i64, shape[3] as i64);
        let r = (WINDOW / 2) as i64;
        let planes = shape[0] * shape[1];
        let mut out = Vec::with_capacity(x.len());
        for b in 0..planes {
            let base = b * (h * w) as usize;
            let at = |v: &[f64], i: i64, j: i64| {
                if i < 0 || j < 0 || i >= h || j >= w {
                    pad
                } else {
                    v[base + (i * w + j) as usize]
                }
            };
            for i in 0..h {
                for j in 0..w {
                    let mut m = [0.0; 5];
                    for di in 0..WINDOW as i64 {
                        for dj in 0..WINDOW as i64 {
                            let wt = g[di as usize] * g[dj as usize];
                            let (a, c) = (at(x, i + di - r, j + dj - r), at(y, i + di - r, j + dj - r));
                            m[0] += wt * a;
                            m[1] += wt * c;
                            m[2] += wt * a * a;
                            m[3] += wt * c * c;
                            m[4] += wt * a * c;
                        }
                    }
                    out.push(m);
                }
            }
        }
        out
    }

    fn factors(m: &[f64; 5]) -> (f64, f64, f64, f64) {
        let [mx, my, exx, eyy, exy] = *m;
        let a1 = 2.0 * mx * my + C1;
        let b1 = mx * mx + my * my + C1;
        let a2 = 2.0 * (exy - mx * my) + C2;
        let b2 = (exx - mx * mx) + (eyy - my * my) + C2;
        (a1, a2, b1, b2)
    }

    /// x, y: [batch, channels, height, width] (flat) -> the SSIM map, same shape.
    pub fn ssim_map(x: &[f64], y: &[f64], shape: &[usize], pad: f64) -> Vec<f64> {
        moments(x, y, shape, pad)
            .iter()
            .map(|m| {
                let (a1, a2, b1, b2) = factors(m);
                a1 * a2 / (b1 * b2)
            })
            .collect()
    }

    /// Gradients of `sum(gs * S)`: the partials of S w.r.t. the five moments at each pixel,
    /// scattered back over the window (padded positions are constants and dropped).
    pub fn ssim_map_backward(gs: &[f64], x: &[f64], y: &[f64], shape: &[usize], pad: f64) -> (Vec<f64>, Vec<f64>) {
        let g = gaussian_window();
        let (h, w) = (shape[2] as i64, shape[3] as i64);
        let r = (WINDOW / 2) as i64;
        let mom = moments(x, y, shape, pad);
        let mut gx = vec![0.0; x.len()];
        let mut gy = vec![0.0; x.len()];
        for (p, m) in mom.iter().enumerate() {
            let [mx, my, ..] = *m;
            let (a1, a2, b1, b2) = factors(m);
            let d = 1.0 / (b1 * b2);
            let s = a1 * a2 * d;
            // dS = S (dA1/A1 + dA2/A2 - dB1/B1 - dB2/B2) with dA1/dμx = 2μy, dA2/dμx = -2μy,
            // dB1/dμx = 2μx, dB2/dμx = -2μx; dA2/dE[xy] = 2; dB2/dE[x²] = 1.
            let d_mx = 2.0 * my * (a2 - a1) * d + 2.0 * mx * s * (1.0 / b2 - 1.0 / b1);
            let d_my = 2.0 * mx * (a2 - a1) * d + 2.0 * my * s * (1.0 / b2 - 1.0 / b1);
            let d_e2 = -s / b2;
            let d_exy = 2.0 * a1 * d;
            let gp = gs[p];
            let base = (p / (h * w) as usize) * (h * w) as usize;
            let (i, j) = (((p - base) as i64) / w, ((p - base) as i64) % w);
            for di in 0..WINDOW as i64 {
                for dj in 0..WINDOW as i64 {
                    let (qi, qj) = (i + di - r, j + dj - r);
                    if qi < 0 || qj < 0 || qi >= h || qj >= w {
                        continue;
                    }
                    let q = base + (qi * w + qj) as usize;
                    let wt = gp * g[di as usize] * g[dj as usize];
                    gx[q] += wt * (d_mx + 2.0 * x[q] * d_e2 + y[q] * d_exy);
                    gy[q] += wt * (d_my + 2.0 * y[q] * d_e2 + x[q] * d_exy);
                }
            }
        }
        (gx, gy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu_or_skip;
    use crate::testing::{assert_close, assert_close_f64, numeric_vjp, to_f32, TestRng};

    /// Shapes smaller than the window, odd sizes, several channels and batches, pixel counts that
    /// do not fill a workgroup; pad values at, below and above the data's mean.
    fn cases() -> Vec<(Vec<usize>, f64)> {
        vec![
            (vec![2, 1, 13, 17], 0.5),
            (vec![1, 3, 20, 9], 0.0),
            (vec![1, 1, 3, 4], 1.25),
            (vec![3, 2, 7, 1], -0.5),
            // widths a multiple of 4 (the `Blocks` kernels too): heights that leave a partial
            // block of 4 rows, rows of 2 and 7 quads, a row shorter than the window
            (vec![2, 1, 13, 20], 0.5),
            (vec![1, 2, 6, 8], 0.25),
            (vec![1, 1, 17, 28], 0.75),
        ]
    }

    /// The kernel sets a shape runs on: per-pixel always, blocks where the width allows.
    fn kernel_sets(shape: &[usize]) -> Vec<Kernels> {
        if shape[3] % 4 == 0 { vec![Kernels::PerPixel, Kernels::Blocks] } else { vec![Kernels::PerPixel] }
    }

    /// y: a noisy copy of x (like a reconstruction), so S spans high and low values.
    fn pair(rng: &mut TestRng, n: usize) -> (Vec<f64>, Vec<f64>) {
        let x = rng.vec(n, 0.0, 1.0);
        let y = x.iter().map(|v| (v + rng.uniform(-0.3, 0.3)) as f32 as f64).collect();
        (x, y)
    }

    #[test]
    fn window_is_a_normalised_symmetric_gaussian() {
        let g = gaussian_window();
        assert!((g.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        for i in 0..WINDOW {
            assert_eq!(g[i], g[WINDOW - 1 - i]);
        }
        // Ratio of neighbouring taps: exp(-((k+1)² - k²) / (2 σ²)).
        assert!((g[6] / g[5] - (-1.0 / 4.5f64).exp()).abs() < 1e-14);
    }

    #[test]
    fn cpu_map_is_one_for_identical_images_and_below_one_otherwise() {
        let mut rng = TestRng::new(60);
        let shape = [1, 1, 9, 8];
        let (x, y) = pair(&mut rng, 72);
        for v in cpu::ssim_map(&x, &x, &shape, 0.3) {
            assert!((v - 1.0).abs() < 1e-12, "{v}");
        }
        let s = cpu::ssim_map(&x, &y, &shape, 0.3);
        assert!(s.iter().all(|v| *v < 1.0 && *v > -1.0), "{s:?}");
        // One pixel, padded with 0: only the centre tap k = g5² sees data, so the moments are
        // μx = 0.2 k, E[x²] = 0.04 k, E[xy] = 0.12 k (checks the biased-moment definition).
        let k = gaussian_window()[5].powi(2);
        let s = cpu::ssim_map(&[0.2], &[0.6], &[1, 1, 1, 1], 0.0);
        let (mx, my) = (0.2 * k, 0.6 * k);
        let (vx, vy, cxy) = (0.04 * k - mx * mx, 0.36 * k - my * my, 0.12 * k - mx * my);
        let want = (2.0 * mx * my + C1) * (2.0 * cxy + C2) / ((mx * mx + my * my + C1) * (vx + vy + C2));
        assert!((s[0] - want).abs() < 1e-12, "{} vs {want}", s[0]);
    }

    #[test]
    fn forward_matches_cpu() {
        let ctx = gpu_or_skip!();
        let mut rng = TestRng::new(61);
        for (shape, pad) in cases() {
            let (x, y) = pair(&mut rng, shape.iter().product());
            let xt = Tensor::from_slice(&ctx, &shape, &to_f32(&x)).unwrap();
            let yt = Tensor::from_slice(&ctx, &shape, &to_f32(&y)).unwrap();
            let want = cpu::ssim_map(&x, &y, &shape, pad);
            for k in kernel_sets(&shape) {
                let s = ssim_map_using(&xt, &yt, pad as f32, k).unwrap();
                // 121-term f32 sums of O(1) moments (~1e-7 relative), then σ² = E - μ² on variances
                // ~1e-2 and the quotient: ~1e-5 absolute on S in [-1, 1].
                assert_close(&format!("{shape:?} pad {pad} S {k:?}"), &s.to_vec().unwrap(), &want, 2e-5, 1e-5);
                let same = ssim_map_using(&xt, &xt, pad as f32, k).unwrap().to_vec().unwrap();
                assert_close(&format!("{shape:?} S(x, x) {k:?}"), &same, &vec![1.0; same.len()], 1e-6, 0.0);
            }
        }
    }

    #[test]
    fn backward_matches_cpu() {
        let ctx = gpu_or_skip!();
        let mut rng = TestRng::new(62);
        for (shape, pad) in cases() {
            let n: usize = shape.iter().product();
            let (x, y) = pair(&mut rng, n);
            let gs = rng.vec(n, -1.0, 1.0);
            let t = |v: &[f64]| Tensor::from_slice(&ctx, &shape, &to_f32(v)).unwrap();
            let (wx, wy) = cpu::ssim_map_backward(&gs, &x, &y, &shape, pad);
            for k in kernel_sets(&shape) {
                let (gx, gy) = ssim_map_backward_using(&t(&gs), &t(&x), &t(&y), pad as f32, k).unwrap();
                // Partials scale like 1 / (σ² + c2) on variances ~1e-2 (gradients up to ~10), then
                // 121-term sums: 2e-4 absolute + 1e-3 relative.
                assert_close(&format!("{shape:?} pad {pad} gx {k:?}"), &gx.to_vec().unwrap(), &wx, 2e-4, 1e-3);
                assert_close(&format!("{shape:?} pad {pad} gy {k:?}"), &gy.to_vec().unwrap(), &wy, 2e-4, 1e-3);
            }
        }
    }

    #[test]
    fn cpu_backward_matches_central_differences() {
        let mut rng = TestRng::new(63);
        for (shape, pad) in [(vec![1, 1, 6, 7], 0.5), (vec![2, 1, 3, 2], -0.25)] {
            let n: usize = shape.iter().product();
            let (x, y) = pair(&mut rng, n);
            let gs = rng.vec(n, -1.0, 1.0);
            let (gx, gy) = cpu::ssim_map_backward(&gs, &x, &y, &shape, pad);
            // f64 throughout, smooth in x and y: central differences with eps 1e-6 agree to ~1e-8.
            let nx = numeric_vjp(|v| cpu::ssim_map(v, &y, &shape, pad), &x, &gs, 1e-6);
            let ny = numeric_vjp(|v| cpu::ssim_map(&x, v, &shape, pad), &y, &gs, 1e-6);
            assert_close_f64(&format!("{shape:?} gx"), &gx, &nx, 1e-7, 1e-6);
            assert_close_f64(&format!("{shape:?} gy"), &gy, &ny, 1e-7, 1e-6);
        }
    }

    #[test]
    fn bad_inputs_are_named() {
        let ctx = gpu_or_skip!();
        let x = Tensor::zeros(&ctx, &[2, 1, 5, 6]).unwrap();
        let y = Tensor::zeros(&ctx, &[2, 1, 6, 5]).unwrap();
        let err = ssim_map(&x, &y, 0.0).unwrap_err().to_string();
        assert!(err.contains("[2, 1, 5, 6]") && err.contains("[2, 1, 6, 5]"), "{err}");
        let flat = Tensor::zeros(&ctx, &[30]).unwrap();
        let err = ssim_map(&flat, &flat, 0.0).unwrap_err().to_string();
        assert!(err.contains("[30]"), "{err}");
        let err = ssim_map(&x, &x, f32::NAN).unwrap_err().to_string();
        assert!(err.contains("NaN"), "{err}");
        let gs = Tensor::zeros(&ctx, &[2, 1, 5, 5]).unwrap();
        let err = ssim_map_backward(&gs, &x, &x, 0.0).unwrap_err().to_string();
        assert!(err.contains("[2, 1, 5, 5]") && err.contains("[2, 1, 5, 6]"), "{err}");
    }
}
