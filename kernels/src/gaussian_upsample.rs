//! FCDD's receptive-field upsampling of a one-channel anomaly heatmap: a transposed convolution
//! with a fixed Gaussian kernel (thesis §4.1.3: "transpose convolution with a fixed Gaussian
//! filter that has kernel size, padding, and stride determined by the effective receptive fields
//! of pixels in A with respect to input x. The filter's standard deviation was chosen as 14").
//! WGSL: `shaders/gaussian_upsample.wgsl`. CPU reference: [`cpu`].
//!
//! Definition, per axis (the 2-D kernel is the outer product of the 1-D taps `g`):
//! `y[oy, ox] = sum_{iy, ix} x[iy, ix] * g[oy + off - iy * s] * g[ox + off - ix * s]`, taps outside
//! `[0, k)` being zero. [`GaussianUpsample::fcdd`] sets these as the FCDD reference code does:
//! kernel size `k = r` (the receptive field extent), stride `s = j` (the receptive field jump),
//! output = the image size, and `off = (r - 1) / 2 - trunc(shift)` (the centre of the kernel moved
//! onto the receptive field's centre; FCDD crops `[pad - shift, -pad - shift]` of the full
//! `conv_transpose2d` output). The taps are FCDD's `gkern`: `scipy.signal.gaussian(k, std=σ)`,
//! i.e. `exp(-(i - (k - 1) / 2)^2 / (2 σ^2))` with peak 1 (not normalised); for even `k` the centre
//! tap of the `k - 1` window is duplicated and the 1-D taps halved. σ: the thesis uses
//! [`THESIS_SIGMA`] = 14; FCDD's fallback when none is given is [`fcdd_default_sigma`].

use bytemuck::{Pod, Zeroable};

use crate::error::{Error, Result};
use crate::kernel::{grid_1d, KernelSpec, R, RW, WG_1D};
use crate::tensor::{DType, Tensor};

const SRC: &str = include_str!("../../shaders/gaussian_upsample.wgsl");
const FORWARD: KernelSpec = KernelSpec { id: "gaussian_upsample.forward", source: SRC, entry: "forward", bindings: &[R, R, RW] };
const BACKWARD: KernelSpec =
    KernelSpec { id: "gaussian_upsample.backward", source: SRC, entry: "backward", bindings: &[R, R, RW] };

/// The Gaussian's standard deviation used in the thesis's FCDD experiments.
pub const THESIS_SIGMA: f32 = 14.0;

/// FCDD's `kernel_size_to_std`: `log10(0.45 k + 1) + 0.25` for `k < 32`, else 10.
pub fn fcdd_default_sigma(k: usize) -> f32 {
    if k < 32 {
        ((0.45 * k as f64 + 1.0).log10() + 0.25) as f32
    } else {
        10.0
    }
}

/// scipy.signal.gaussian(m, std): peak-1 samples centred on (m - 1) / 2.
fn scipy_gaussian(m: usize, sigma: f64) -> Vec<f64> {
    let c = (m as f64 - 1.0) / 2.0;
    (0..m).map(|i| (-(i as f64 - c).powi(2) / (2.0 * sigma * sigma)).exp()).collect()
}

/// FCDD's 1-D taps (see the module doc for even sizes).
pub fn gaussian_kernel_1d(size: usize, sigma: f32) -> Vec<f32> {
    gaussian_taps_f64(size, sigma as f64).iter().map(|&v| v as f32).collect()
}

fn gaussian_taps_f64(size: usize, sigma: f64) -> Vec<f64> {
    if size == 0 {
        return Vec::new();
    }
    if size % 2 == 1 {
        return scipy_gaussian(size, sigma);
    }
    let mut g = scipy_gaussian(size - 1, sigma);
    let c = (size - 1) / 2;
    g.insert(c, g[c]);
    g.iter().map(|v| v / 2.0).collect()
}

/// FCDD's 2-D kernel `gkern`: `size x size`, row-major, the outer product of the 1-D taps.
pub fn gaussian_kernel(size: usize, sigma: f32) -> Vec<f32> {
    let g = gaussian_taps_f64(size, sigma as f64);
    g.iter().flat_map(|a| g.iter().map(move |b| (a * b) as f32)).collect()
}

/// Geometry of one upsampling.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GaussianUpsample {
    /// Taps per axis (FCDD: the receptive field extent r).
    pub kernel_size: usize,
    pub sigma: f32,
    /// FCDD: the receptive field jump j.
    pub stride: usize,
    /// Crop offset `off` in the module formula (may be negative).
    pub offset: i32,
    /// Output `[height, width]` (FCDD: the image size).
    pub out: [usize; 2],
}

impl GaussianUpsample {
    /// FCDD's settings from the receptive field of the heatmap's pixels: extent `r`, jump `j`,
    /// shift `s` (the centre of the first pixel's field), and the image size.
    pub fn fcdd(receptive_field: usize, jump: usize, shift: f64, image: [usize; 2], sigma: f32) -> GaussianUpsample {
        GaussianUpsample {
            kernel_size: receptive_field,
            sigma,
            stride: jump,
            offset: ((receptive_field as i64 - 1) / 2 - shift.trunc() as i64) as i32,
            out: image,
        }
    }

    fn check(&self, op: &str, shape: &[usize]) -> Result<()> {
        if shape.len() != 4 || shape[1] != 1 {
            return Err(Error::Shape(format!("{op} expects a one-channel map [batch, 1, height, width], got {shape:?}")));
        }
        if self.kernel_size == 0 || self.stride == 0 || self.out.contains(&0) || !(self.sigma > 0.0) {
            return Err(Error::Shape(format!("{op}: {self:?} needs positive kernel size, stride, sigma and output size")));
        }
        Ok(())
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct Params {
    n: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    k: u32,
    stride: u32,
    offset: i32,
}

fn params(threads: usize, input: &[usize], g: &GaussianUpsample) -> Params {
    Params {
        n: threads as u32,
        h: input[2] as u32,
        w: input[3] as u32,
        oh: g.out[0] as u32,
        ow: g.out[1] as u32,
        k: g.kernel_size as u32,
        stride: g.stride as u32,
        offset: g.offset,
    }
}

/// x: [batch, 1, height, width] -> [batch, 1, out_h, out_w].
pub fn gaussian_upsample(x: &Tensor, g: &GaussianUpsample) -> Result<Tensor> {
    g.check("gaussian_upsample", x.shape())?;
    if x.dtype() != DType::F32 {
        return Err(Error::Shape(format!("gaussian_upsample needs f32 x, got {:?} {:?}", x.dtype(), x.shape())));
    }
    let ctx = x.context();
    let taps = Tensor::from_slice(ctx, &[g.kernel_size], &gaussian_kernel_1d(g.kernel_size, g.sigma))?;
    let y = Tensor::uninit(ctx, &[x.shape()[0], 1, g.out[0], g.out[1]], DType::F32)?;
    let p = params(y.numel(), x.shape(), g);
    ctx.dispatch(&FORWARD, &p, &[x.binding(), taps.binding(), y.binding()], grid_1d(y.numel(), WG_1D))?;
    Ok(y)
}

/// Gradient of [`gaussian_upsample`] (it is linear): gy [batch, 1, out_h, out_w] -> gx `input_shape`.
pub fn gaussian_upsample_backward(gy: &Tensor, input_shape: &[usize], g: &GaussianUpsample) -> Result<Tensor> {
    let op = "gaussian_upsample_backward";
    g.check(op, input_shape)?;
    let want = [input_shape[0], 1, g.out[0], g.out[1]];
    if gy.shape() != want || gy.dtype() != DType::F32 {
        return Err(Error::Shape(format!(
            "{op}: gy must be f32 {want:?} for input {input_shape:?}, got {:?} {:?}",
            gy.dtype(),
            gy.shape()
        )));
    }
    let ctx = gy.context();
    let taps = Tensor::from_slice(ctx, &[g.kernel_size], &gaussian_kernel_1d(g.kernel_size, g.sigma))?;
    let gx = Tensor::uninit(ctx, input_shape, DType::F32)?;
    let p = params(gx.numel(), input_shape, g);
    ctx.dispatch(&BACKWARD, &p, &[gy.binding(), taps.binding(), gx.binding()], grid_1d(gx.numel(), WG_1D))?;
    Ok(gx)
}

/// Plain-Rust f64 reference: the transposed convolution written as a scatter with the full 2-D kernel.
pub mod cpu {
    use super::GaussianUpsample;

    pub fn gaussian_upsample(x: &[f64], shape: &[usize], g: &GaussianUpsample) -> Vec<f64> {
        let kern: Vec<f64> = super::gaussian_kernel(g.kernel_size, g.sigma).iter().map(|&v| v as f64).collect();
        let (h, w, k) = (shape[2], shape[3], g.kernel_size as i64);
        let [oh, ow] = g.out;
        let mut y = vec![0.0; shape[0] * oh * ow];
        for n in 0..shape[0] {
            for iy in 0..h {
                for ix in 0..w {
                    let v = x[(n * h + iy) * w + ix];
                    for ky in 0..k {
                        let oy = iy as i64 * g.stride as i64 + ky - g.offset as i64;
                        if oy < 0 || oy >= oh as i64 {
                            continue;
                        }
                        for kx in 0..k {
                            let ox = ix as i64 * g.stride as i64 + kx - g.offset as i64;
                            if ox < 0 || ox >= ow as i64 {
                                continue;
                            }
                            y[(n * oh + oy as usize) * ow + ox as usize] += v * kern[(ky * k + kx) as usize];
                        }
                    }
                }
            }
        }
        y
    }

    pub fn gaussian_upsample_backward(gy: &[f64], shape: &[usize], g: &GaussianUpsample) -> Vec<f64> {
        let kern: Vec<f64> = super::gaussian_kernel(g.kernel_size, g.sigma).iter().map(|&v| v as f64).collect();
        let (h, w, k) = (shape[2], shape[3], g.kernel_size as i64);
        let [oh, ow] = g.out;
        let mut gx = vec![0.0; shape.iter().product()];
        for n in 0..shape[0] {
            for iy in 0..h {
                for ix in 0..w {
                    let mut acc = 0.0;
                    for ky in 0..k {
                        let oy = iy as i64 * g.stride as i64 + ky - g.offset as i64;
                        if oy < 0 || oy >= oh as i64 {
                            continue;
                        }
                        for kx in 0..k {
                            let ox = ix as i64 * g.stride as i64 + kx - g.offset as i64;
                            if ox < 0 || ox >= ow as i64 {
                                continue;
                            }
                            acc += gy[(n * oh + oy as usize) * ow + ox as usize] * kern[(ky * k + kx) as usize];
                        }
                    }
                    gx[(n * h + iy) * w + ix] = acc;
                }
            }
        }
        gx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu_or_skip;
    use crate::testing::{assert_close, assert_close_f64, numeric_vjp, to_f32, TestRng};

    /// (input shape, geometry): FCDD-like (odd and even receptive fields, stride 2, 3 and 8,
    /// shifts giving positive, zero and negative offsets), batch 1 and 3.
    fn cases() -> Vec<(Vec<usize>, GaussianUpsample)> {
        vec![
            (vec![2, 1, 4, 5], GaussianUpsample::fcdd(7, 2, 1.5, [9, 11], 1.3)),
            (vec![1, 1, 3, 3], GaussianUpsample::fcdd(8, 3, 3.0, [10, 9], THESIS_SIGMA)),
            (vec![3, 1, 2, 3], GaussianUpsample { kernel_size: 5, sigma: 2.0, stride: 3, offset: -1, out: [7, 8] }),
            (vec![1, 1, 4, 4], GaussianUpsample::fcdd(22, 8, 3.5, [32, 32], fcdd_default_sigma(22))),
        ]
    }

    #[test]
    fn kernel_matches_fcdd_gkern() {
        // scipy.signal.gaussian(5, std=1) = exp(-[4, 1, 0, 1, 4] / 2).
        let g = gaussian_kernel_1d(5, 1.0);
        let want: Vec<f64> = [4.0f64, 1.0, 0.0, 1.0, 4.0].iter().map(|d| (-d / 2.0).exp()).collect();
        assert_close("odd taps", &g, &want, 1e-7, 0.0);
        // Even: gaussian(3, 1) = [e^-0.5, 1, e^-0.5] -> centre duplicated, halved.
        let e = (-0.5f64).exp();
        assert_close("even taps", &gaussian_kernel_1d(4, 1.0), &[e / 2.0, 0.5, 0.5, e / 2.0], 1e-7, 0.0);
        let k2 = gaussian_kernel(3, 2.0);
        assert_eq!(k2.len(), 9);
        assert!((k2[4] - 1.0).abs() < 1e-7 && (k2[0] - (-0.25f32).exp()).abs() < 1e-6, "{k2:?}");
        assert!((fcdd_default_sigma(10) - (5.5f32.log10() + 0.25)).abs() < 1e-6);
        assert_eq!(fcdd_default_sigma(40), 10.0);
    }

    #[test]
    fn forward_and_backward_match_cpu() {
        let ctx = gpu_or_skip!();
        let mut rng = TestRng::new(51);
        for (shape, g) in cases() {
            let x = rng.vec(shape.iter().product(), 0.0, 2.0);
            let xt = Tensor::from_slice(&ctx, &shape, &to_f32(&x)).unwrap();
            let y = gaussian_upsample(&xt, &g).unwrap();
            let want = cpu::gaussian_upsample(&x, &shape, &g);
            // Sums of up to ~16 products of f32 values with f32 taps: 1e-5 + 1e-5 relative.
            assert_close(&format!("{shape:?} {g:?} y"), &y.to_vec().unwrap(), &want, 1e-5, 1e-5);
            let gy = rng.vec(want.len(), -1.0, 1.0);
            let gyt = Tensor::from_slice(&ctx, y.shape(), &to_f32(&gy)).unwrap();
            let gx = gaussian_upsample_backward(&gyt, &shape, &g).unwrap();
            // Up to k^2 = 484 terms: 1e-4.
            let wgx = cpu::gaussian_upsample_backward(&gy, &shape, &g);
            assert_close(&format!("{shape:?} {g:?} gx"), &gx.to_vec().unwrap(), &wgx, 1e-4, 1e-5);
        }
    }

    #[test]
    fn cpu_backward_matches_central_differences() {
        let mut rng = TestRng::new(52);
        for (shape, g) in cases().into_iter().take(3) {
            let x = rng.vec(shape.iter().product(), 0.0, 2.0);
            let y = cpu::gaussian_upsample(&x, &shape, &g);
            let w = rng.vec(y.len(), -1.0, 1.0);
            // Linear in x: exact up to rounding.
            let num = numeric_vjp(|x| cpu::gaussian_upsample(x, &shape, &g), &x, &w, 1e-3);
            assert_close_f64(&format!("{shape:?}"), &cpu::gaussian_upsample_backward(&w, &shape, &g), &num, 1e-9, 1e-9);
        }
    }

    #[test]
    fn bad_inputs_are_named() {
        let ctx = gpu_or_skip!();
        let g = GaussianUpsample::fcdd(7, 2, 1.5, [9, 11], 1.3);
        let x = Tensor::zeros(&ctx, &[2, 3, 4, 5]).unwrap();
        let err = gaussian_upsample(&x, &g).unwrap_err().to_string();
        assert!(err.contains("[2, 3, 4, 5]") && err.contains("one-channel"), "{err}");
        let x = Tensor::zeros(&ctx, &[2, 1, 4, 5]).unwrap();
        let err = gaussian_upsample(&x, &GaussianUpsample { stride: 0, ..g }).unwrap_err().to_string();
        assert!(err.contains("stride: 0"), "{err}");
        let gy = Tensor::zeros(&ctx, &[2, 1, 9, 10]).unwrap();
        let err = gaussian_upsample_backward(&gy, &[2, 1, 4, 5], &g).unwrap_err().to_string();
        assert!(err.contains("[2, 1, 9, 11]") && err.contains("[2, 1, 9, 10]"), "{err}");
    }
}
