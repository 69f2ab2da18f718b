//! Bilinear resampling (PyTorch `F.interpolate(mode="bilinear", align_corners=False)`), forward and
//! backward, to a given output size or by a scale factor, up or down.
//! WGSL: `shaders/upsample.wgsl`. CPU reference: [`cpu`].
//!
//! Source coordinate of output index `d`: `src = max(scale * (d + 0.5) - 0.5, 0)`, taps
//! `i0 = floor(src)`, `i1 = min(i0 + 1, in - 1)`, weights `(1 - l, l)` with `l = src - i0`, where
//! `scale = in / out` for [`Resize::Size`] and `1 / factor` for [`Resize::Factor`]
//! (whose output size is `floor(in * factor)`), as PyTorch with `recompute_scale_factor=None`.

use bytemuck::{Pod, Zeroable};

use crate::error::{Error, Result};
use crate::kernel::{grid_1d, KernelSpec, R, RW, WG_1D};
use crate::tensor::{DType, Tensor};

const SRC: &str = include_str!("../../shaders/upsample.wgsl");
const FORWARD: KernelSpec = KernelSpec { id: "upsample.forward", source: SRC, entry: "forward", bindings: &[R, RW] };
const BACKWARD: KernelSpec = KernelSpec { id: "upsample.backward", source: SRC, entry: "backward", bindings: &[R, RW] };

/// Target of a resampling, `[height, width]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Resize {
    Size([usize; 2]),
    Factor([f64; 2]),
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct Params {
    n: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    scale_h: f32,
    scale_w: f32,
    pad0: u32,
}

/// Output `[oh, ow]` and coordinate scales (f32, as the kernel computes with them) for an input
/// `[n, c, h, w]`.
pub fn geometry(input: &[usize], resize: Resize, op: &str) -> Result<([usize; 2], [f32; 2])> {
    if input.len() != 4 || input[2] == 0 || input[3] == 0 {
        return Err(Error::Shape(format!("{op} expects a non-empty 4-d input [batch, channels, height, width], got {input:?}")));
    }
    let mut out = [0usize; 2];
    let mut scale = [0f32; 2];
    for a in 0..2 {
        let len = input[2 + a];
        match resize {
            Resize::Size(s) => {
                out[a] = s[a];
                scale[a] = (len as f64 / s[a] as f64) as f32;
            }
            Resize::Factor(f) => {
                if !(f[a] > 0.0 && f[a].is_finite()) {
                    return Err(Error::Shape(format!("{op}: scale factor {f:?} for input {input:?} must be positive")));
                }
                out[a] = (len as f64 * f[a]).floor() as usize;
                scale[a] = (1.0 / f[a]) as f32;
            }
        }
    }
    if out.contains(&0) {
        return Err(Error::Shape(format!("{op}: {resize:?} of input {input:?} gives an empty output {out:?}")));
    }
    Ok((out, scale))
}

fn params(threads: usize, input: &[usize], out: [usize; 2], scale: [f32; 2]) -> Params {
    Params {
        n: threads as u32,
        h: input[2] as u32,
        w: input[3] as u32,
        oh: out[0] as u32,
        ow: out[1] as u32,
        scale_h: scale[0],
        scale_w: scale[1],
        pad0: 0,
    }
}

/// x: [batch, channels, height, width] -> [batch, channels, out_h, out_w].
pub fn upsample_bilinear(x: &Tensor, resize: Resize) -> Result<Tensor> {
    if x.dtype() != DType::F32 {
        return Err(Error::Shape(format!("upsample_bilinear needs f32 x, got {:?} {:?}", x.dtype(), x.shape())));
    }
    let (out, scale) = geometry(x.shape(), resize, "upsample_bilinear")?;
    let s = x.shape();
    let y = Tensor::uninit(x.context(), &[s[0], s[1], out[0], out[1]], DType::F32)?;
    let p = params(y.numel(), s, out, scale);
    x.context().dispatch(&FORWARD, &p, &[x.binding(), y.binding()], grid_1d(y.numel(), WG_1D))?;
    Ok(y)
}

/// Gradient of [`upsample_bilinear`]. gy: [batch, channels, out_h, out_w]; returns gx: `input_shape`.
pub fn upsample_bilinear_backward(gy: &Tensor, input_shape: &[usize], resize: Resize) -> Result<Tensor> {
    let op = "upsample_bilinear_backward";
    let (out, scale) = geometry(input_shape, resize, op)?;
    let want = [input_shape[0], input_shape[1], out[0], out[1]];
    if gy.shape() != want || gy.dtype() != DType::F32 {
        return Err(Error::Shape(format!(
            "{op}: gy must be f32 {want:?} for input {input_shape:?} and {resize:?}, got {:?} {:?}",
            gy.dtype(),
            gy.shape()
        )));
    }
    let gx = Tensor::uninit(gy.context(), input_shape, DType::F32)?;
    let p = params(gx.numel(), input_shape, out, scale);
    gy.context().dispatch(&BACKWARD, &p, &[gy.binding(), gx.binding()], grid_1d(gx.numel(), WG_1D))?;
    Ok(gx)
}

/// Plain-Rust f64 reference (with the same f32 coordinate scale as the kernel).
pub mod cpu {
    use super::{geometry, Resize};

    /// (i0, i1, l0, l1) of output coordinate `d`.
    fn taps(d: usize, scale: f64, len: usize) -> (usize, usize, f64, f64) {
        let src = (scale * (d as f64 + 0.5) - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(len - 1);
        let l1 = src - i0 as f64;
        (i0, (i0 + 1).min(len - 1), 1.0 - l1, l1)
    }

    pub fn upsample_bilinear(x: &[f64], shape: &[usize], resize: Resize) -> Vec<f64> {
        let (out, scale) = geometry(shape, resize, "cpu upsample").expect("valid geometry");
        let (h, w) = (shape[2], shape[3]);
        let mut y = Vec::with_capacity(shape[0] * shape[1] * out[0] * out[1]);
        for plane in 0..shape[0] * shape[1] {
            let xp = &x[plane * h * w..(plane + 1) * h * w];
            for oy in 0..out[0] {
                let (y0, y1, a0, a1) = taps(oy, scale[0] as f64, h);
                for ox in 0..out[1] {
                    let (x0, x1, b0, b1) = taps(ox, scale[1] as f64, w);
                    y.push(a0 * (b0 * xp[y0 * w + x0] + b1 * xp[y0 * w + x1]) + a1 * (b0 * xp[y1 * w + x0] + b1 * xp[y1 * w + x1]));
                }
            }
        }
        y
    }

    /// Scatter formulation (the transpose of the forward), independent of the kernel's gather.
    pub fn upsample_bilinear_backward(gy: &[f64], shape: &[usize], resize: Resize) -> Vec<f64> {
        let (out, scale) = geometry(shape, resize, "cpu upsample").expect("valid geometry");
        let (h, w) = (shape[2], shape[3]);
        let mut gx = vec![0.0; shape.iter().product()];
        for plane in 0..shape[0] * shape[1] {
            for oy in 0..out[0] {
                let (y0, y1, a0, a1) = taps(oy, scale[0] as f64, h);
                for ox in 0..out[1] {
                    let (x0, x1, b0, b1) = taps(ox, scale[1] as f64, w);
                    let g = gy[(plane * out[0] + oy) * out[1] + ox];
                    let base = plane * h * w;
                    gx[base + y0 * w + x0] += a0 * b0 * g;
                    gx[base + y0 * w + x1] += a0 * b1 * g;
                    gx[base + y1 * w + x0] += a1 * b0 * g;
                    gx[base + y1 * w + x1] += a1 * b1 * g;
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

    /// Integer and non-integer up-scales, a downscale, size and factor forms, 1-pixel inputs,
    /// planes that do not fill a workgroup.
    fn cases() -> Vec<(Vec<usize>, Resize)> {
        vec![
            (vec![2, 3, 4, 5], Resize::Factor([2.0, 2.0])),
            (vec![1, 2, 5, 3], Resize::Factor([3.0, 2.5])),
            (vec![2, 1, 7, 6], Resize::Size([17, 9])),
            (vec![1, 2, 9, 11], Resize::Size([4, 5])),
            (vec![3, 1, 1, 2], Resize::Size([3, 7])),
            (vec![1, 1, 6, 6], Resize::Factor([1.7, 1.0])),
        ]
    }

    #[test]
    fn forward_and_backward_match_cpu() {
        let ctx = gpu_or_skip!();
        let mut rng = TestRng::new(31);
        for (shape, resize) in cases() {
            let x = rng.vec(shape.iter().product(), -2.0, 2.0);
            let xt = Tensor::from_slice(&ctx, &shape, &to_f32(&x)).unwrap();
            let y = upsample_bilinear(&xt, resize).unwrap();
            let want = cpu::upsample_bilinear(&x, &shape, resize);
            // Four-tap blends of f32 values with f32 weights: 1e-5.
            assert_close(&format!("{shape:?} {resize:?} y"), &y.to_vec().unwrap(), &want, 1e-5, 1e-5);
            let gy = rng.vec(want.len(), -1.0, 1.0);
            let gyt = Tensor::from_slice(&ctx, y.shape(), &to_f32(&gy)).unwrap();
            let gx = upsample_bilinear_backward(&gyt, &shape, resize).unwrap();
            // Sums of up to ~50 weighted gradients: 1e-5 + 1e-5 relative.
            let wgx = cpu::upsample_bilinear_backward(&gy, &shape, resize);
            assert_close(&format!("{shape:?} {resize:?} gx"), &gx.to_vec().unwrap(), &wgx, 1e-5, 1e-5);
        }
    }

    #[test]
    fn matches_pytorch_on_a_known_case() {
        // torch.nn.functional.interpolate(torch.tensor([[[[1., 2.], [3., 4.]]]]), scale_factor=2,
        // mode="bilinear", align_corners=False)[0, 0, 0] == [1.0, 1.25, 1.75, 2.0]
        let y = cpu::upsample_bilinear(&[1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2], Resize::Factor([2.0, 2.0]));
        assert_close_f64("first row", &y[..4], &[1.0, 1.25, 1.75, 2.0], 1e-12, 0.0);
        assert_close_f64("second row", &y[4..8], &[1.5, 1.75, 2.25, 2.5], 1e-12, 0.0);
    }

    #[test]
    fn cpu_backward_matches_central_differences() {
        let mut rng = TestRng::new(32);
        for (shape, resize) in cases() {
            let x = rng.vec(shape.iter().product(), -2.0, 2.0);
            let y = cpu::upsample_bilinear(&x, &shape, resize);
            let w = rng.vec(y.len(), -1.0, 1.0);
            // Linear in x: central differences are exact up to rounding.
            let num = numeric_vjp(|x| cpu::upsample_bilinear(x, &shape, resize), &x, &w, 1e-3);
            let got = cpu::upsample_bilinear_backward(&w, &shape, resize);
            assert_close_f64(&format!("{shape:?} {resize:?}"), &got, &num, 1e-9, 1e-9);
        }
    }

    #[test]
    fn bad_inputs_are_named() {
        let ctx = gpu_or_skip!();
        let x = Tensor::zeros(&ctx, &[2, 3, 4]).unwrap();
        let err = upsample_bilinear(&x, Resize::Factor([2.0, 2.0])).unwrap_err().to_string();
        assert!(err.contains("[2, 3, 4]"), "{err}");
        let x = Tensor::zeros(&ctx, &[1, 1, 3, 3]).unwrap();
        let err = upsample_bilinear(&x, Resize::Factor([0.2, 1.0])).unwrap_err().to_string();
        assert!(err.contains("[1, 1, 3, 3]") && err.contains("empty output"), "{err}");
        let err = upsample_bilinear(&x, Resize::Factor([-1.0, 1.0])).unwrap_err().to_string();
        assert!(err.contains("positive"), "{err}");
        let gy = Tensor::zeros(&ctx, &[1, 1, 6, 5]).unwrap();
        let err = upsample_bilinear_backward(&gy, &[1, 1, 3, 3], Resize::Factor([2.0, 2.0])).unwrap_err().to_string();
        assert!(err.contains("[1, 1, 6, 6]") && err.contains("[1, 1, 6, 5]"), "{err}");
    }
}
