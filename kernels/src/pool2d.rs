//! 2-D max pooling (with argmax) and average pooling, forward and backward.
//! WGSL: `shaders/pool2d.wgsl`. CPU reference: [`cpu`].
//!
//! Conventions, as PyTorch's `max_pool2d` / `avg_pool2d` defaults:
//! - output size `floor((h + 2 * pad - k) / stride) + 1` per axis (floor mode);
//! - padding at most half the kernel, so every window holds at least one real input;
//! - max pool: the argmax is the flat index `iy * w + ix` **within the input's (n, c) plane**
//!   (like `return_indices=True`); ties keep the first (lowest-index) maximum; padding never wins;
//! - average pool counts padded zeros (`count_include_pad = true`): the divisor is `kh * kw`.

use bytemuck::{Pod, Zeroable};

use crate::error::{Error, Result};
use crate::kernel::{grid_1d, KernelSpec, R, RW, WG_1D};
use crate::tensor::{DType, Tensor};

const SRC: &str = include_str!("../../shaders/pool2d.wgsl");
const MAX_FORWARD: KernelSpec = KernelSpec { id: "pool2d.max_forward", source: SRC, entry: "max_forward", bindings: &[R, RW, RW] };
/// 2x2 windows at stride 2, no padding, planes a multiple of 4 wide: vec4 loads, pairs of outputs.
const MAX_FORWARD_2X2: KernelSpec =
    KernelSpec { id: "pool2d.max_forward_2x2", source: SRC, entry: "max_forward_2x2", bindings: &[R, RW, RW] };
const MAX_BACKWARD: KernelSpec =
    KernelSpec { id: "pool2d.max_backward", source: SRC, entry: "max_backward", bindings: &[R, R, RW] };
const MAX_BACKWARD_SCATTER: KernelSpec = KernelSpec {
    id: "pool2d.max_backward_scatter",
    source: SRC,
    entry: "max_backward_scatter",
    bindings: &[R, R, RW],
};
const AVG_FORWARD: KernelSpec = KernelSpec { id: "pool2d.avg_forward", source: SRC, entry: "avg_forward", bindings: &[R, RW] };
const AVG_BACKWARD: KernelSpec =
    KernelSpec { id: "pool2d.avg_backward", source: SRC, entry: "avg_backward", bindings: &[R, RW] };

/// Window geometry, `[height, width]` per field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2d {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

impl Pool2d {
    /// Square window with stride = kernel and no padding (PyTorch's default stride).
    pub fn square(k: usize) -> Pool2d {
        Pool2d { kernel: [k, k], stride: [k, k], padding: [0, 0] }
    }

    /// Output `[n, c, oh, ow]` for input `[n, c, h, w]`, or an error naming the shape and geometry.
    pub fn output_shape(&self, input: &[usize], op: &str) -> Result<[usize; 4]> {
        let bad = |why: &str| Err(Error::Shape(format!("{op}: input {input:?} with {self:?}: {why}")));
        if input.len() != 4 {
            return bad("input must be 4-d [batch, channels, height, width]");
        }
        if self.kernel.contains(&0) || self.stride.contains(&0) {
            return bad("kernel and stride must be positive");
        }
        if (0..2).any(|a| self.padding[a] > self.kernel[a] / 2) {
            return bad("padding must be at most half the kernel");
        }
        let mut out = [input[0], input[1], 0, 0];
        for a in 0..2 {
            let padded = input[2 + a] + 2 * self.padding[a];
            if padded < self.kernel[a] {
                return bad("kernel is larger than the padded input");
            }
            out[2 + a] = (padded - self.kernel[a]) / self.stride[a] + 1;
        }
        Ok(out)
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
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    pad0: u32,
}

fn params(threads: usize, input: &[usize], out: &[usize; 4], g: &Pool2d) -> Params {
    Params {
        n: threads as u32,
        h: input[2] as u32,
        w: input[3] as u32,
        oh: out[2] as u32,
        ow: out[3] as u32,
        kh: g.kernel[0] as u32,
        kw: g.kernel[1] as u32,
        sh: g.stride[0] as u32,
        sw: g.stride[1] as u32,
        ph: g.padding[0] as u32,
        pw: g.padding[1] as u32,
        pad0: 0,
    }
}

fn expect_dtype(t: &Tensor, dtype: DType, what: &str, op: &str) -> Result<()> {
    if t.dtype() != dtype {
        return Err(Error::Shape(format!("{op}: {what} must be {dtype:?}, got {:?} {:?}", t.dtype(), t.shape())));
    }
    Ok(())
}

/// Max pool. x: [batch, channels, height, width] ->
/// (y: [batch, channels, out_h, out_w], argmax: U32 [batch, channels, out_h, out_w] of `iy * width + ix`).
pub fn max_pool2d(x: &Tensor, g: &Pool2d) -> Result<(Tensor, Tensor)> {
    expect_dtype(x, DType::F32, "x", "max_pool2d")?;
    let out = g.output_shape(x.shape(), "max_pool2d")?;
    let ctx = x.context();
    let y = Tensor::uninit(ctx, &out, DType::F32)?;
    let arg = Tensor::uninit(ctx, &out, DType::U32)?;
    let (h, w) = (x.shape()[2], x.shape()[3]);
    // Threads: one per output, or per pair of outputs for the 2x2 vec4 kernel.
    let (spec, threads) = if g.kernel == [2, 2] && g.stride == [2, 2] && g.padding == [0, 0] && w % 4 == 0 && h % 2 == 0 {
        (&MAX_FORWARD_2X2, y.numel() / 2)
    } else {
        (&MAX_FORWARD, y.numel())
    };
    let p = params(threads, x.shape(), &out, g);
    ctx.dispatch(spec, &p, &[x.binding(), y.binding(), arg.binding()], grid_1d(threads, WG_1D))?;
    Ok((y, arg))
}

/// Gradient of [`max_pool2d`]: each output's gy goes to its argmax (a scatter from the outputs when
/// windows are disjoint, otherwise a gather per input over the windows that contain it).
/// gy, argmax: [batch, channels, out_h, out_w]; returns gx: `input_shape` = [batch, channels, height, width].
pub fn max_pool2d_backward(gy: &Tensor, argmax: &Tensor, input_shape: &[usize], g: &Pool2d) -> Result<Tensor> {
    let op = "max_pool2d_backward";
    expect_dtype(gy, DType::F32, "gy", op)?;
    expect_dtype(argmax, DType::U32, "argmax", op)?;
    gy.expect_same_context(argmax, op)?;
    let out = g.output_shape(input_shape, op)?;
    if gy.shape() != out || argmax.shape() != out {
        return Err(Error::Shape(format!(
            "{op}: gy {:?} and argmax {:?} must both be the pooled shape {out:?} of input {input_shape:?}",
            gy.shape(),
            argmax.shape()
        )));
    }
    let ctx = gy.context();
    if g.stride[0] >= g.kernel[0] && g.stride[1] >= g.kernel[1] {
        // Disjoint windows: scatter from the outputs into zeros (no two outputs share an input).
        let gx = Tensor::zeros(ctx, input_shape)?;
        let p = params(gy.numel(), input_shape, &out, g);
        ctx.dispatch(&MAX_BACKWARD_SCATTER, &p, &[gy.binding(), argmax.binding(), gx.binding()], grid_1d(gy.numel(), WG_1D))?;
        return Ok(gx);
    }
    let gx = Tensor::uninit(ctx, input_shape, DType::F32)?;
    let p = params(gx.numel(), input_shape, &out, g);
    ctx.dispatch(&MAX_BACKWARD, &p, &[gy.binding(), argmax.binding(), gx.binding()], grid_1d(gx.numel(), WG_1D))?;
    Ok(gx)
}

/// Average pool (zeros of the padding counted). x: [batch, channels, height, width] -> [batch, channels, out_h, out_w].
pub fn avg_pool2d(x: &Tensor, g: &Pool2d) -> Result<Tensor> {
    expect_dtype(x, DType::F32, "x", "avg_pool2d")?;
    let out = g.output_shape(x.shape(), "avg_pool2d")?;
    let y = Tensor::uninit(x.context(), &out, DType::F32)?;
    let p = params(y.numel(), x.shape(), &out, g);
    x.context().dispatch(&AVG_FORWARD, &p, &[x.binding(), y.binding()], grid_1d(y.numel(), WG_1D))?;
    Ok(y)
}

/// Gradient of [`avg_pool2d`]. gy: [batch, channels, out_h, out_w]; returns gx: `input_shape`.
pub fn avg_pool2d_backward(gy: &Tensor, input_shape: &[usize], g: &Pool2d) -> Result<Tensor> {
    let op = "avg_pool2d_backward";
    expect_dtype(gy, DType::F32, "gy", op)?;
    let out = g.output_shape(input_shape, op)?;
    if gy.shape() != out {
        return Err(Error::Shape(format!("{op}: gy {:?} must be the pooled shape {out:?} of input {input_shape:?}", gy.shape())));
    }
    let gx = Tensor::uninit(gy.context(), input_shape, DType::F32)?;
    let p = params(gx.numel(), input_shape, &out, g);
    gy.context().dispatch(&AVG_BACKWARD, &p, &[gy.binding(), gx.binding()], grid_1d(gx.numel(), WG_1D))?;
    Ok(gx)
}

/// Plain-Rust f64 reference with the same conventions (shapes already validated by the caller).
pub mod cpu {
    use super::Pool2d;

    /// Clipped window `[start, end)` of output `o` along one axis.
    fn window(o: usize, k: usize, s: usize, pad: usize, len: usize) -> (usize, usize) {
        let start = (o * s) as isize - pad as isize;
        (start.max(0) as usize, ((start + k as isize) as usize).min(len))
    }

    /// x: [n, c, h, w] -> (y, argmax) over `[n, c, oh, ow]`.
    pub fn max_pool2d(x: &[f64], shape: &[usize], g: &Pool2d) -> (Vec<f64>, Vec<u32>) {
        let out = g.output_shape(shape, "cpu max_pool2d").expect("valid geometry");
        let (h, w, oh, ow) = (shape[2], shape[3], out[2], out[3]);
        let mut y = Vec::new();
        let mut arg = Vec::new();
        for plane in 0..shape[0] * shape[1] {
            for oy in 0..oh {
                for ox in 0..ow {
                    let (ys, ye) = window(oy, g.kernel[0], g.stride[0], g.padding[0], h);
                    let (xs, xe) = window(ox, g.kernel[1], g.stride[1], g.padding[1], w);
                    let mut best = (f64::NEG_INFINITY, usize::MAX);
                    for iy in ys..ye {
                        for ix in xs..xe {
                            let v = x[plane * h * w + iy * w + ix];
                            if best.1 == usize::MAX || v > best.0 {
                                best = (v, iy * w + ix);
                            }
                        }
                    }
                    y.push(best.0);
                    arg.push(best.1 as u32);
                }
            }
        }
        (y, arg)
    }

    pub fn max_pool2d_backward(gy: &[f64], argmax: &[u32], shape: &[usize], g: &Pool2d) -> Vec<f64> {
        let out = g.output_shape(shape, "cpu max_pool2d_backward").expect("valid geometry");
        let plane_in = shape[2] * shape[3];
        let plane_out = out[2] * out[3];
        let mut gx = vec![0.0; shape.iter().product()];
        for (o, (&gv, &a)) in gy.iter().zip(argmax).enumerate() {
            gx[(o / plane_out) * plane_in + a as usize] += gv;
        }
        gx
    }

    pub fn avg_pool2d(x: &[f64], shape: &[usize], g: &Pool2d) -> Vec<f64> {
        let out = g.output_shape(shape, "cpu avg_pool2d").expect("valid geometry");
        let (h, w, oh, ow) = (shape[2], shape[3], out[2], out[3]);
        let div = (g.kernel[0] * g.kernel[1]) as f64;
        let mut y = Vec::new();
        for plane in 0..shape[0] * shape[1] {
            for oy in 0..oh {
                for ox in 0..ow {
                    let (ys, ye) = window(oy, g.kernel[0], g.stride[0], g.padding[0], h);
                    let (xs, xe) = window(ox, g.kernel[1], g.stride[1], g.padding[1], w);
                    let mut acc = 0.0;
                    for iy in ys..ye {
                        for ix in xs..xe {
                            acc += x[plane * h * w + iy * w + ix];
                        }
                    }
                    y.push(acc / div);
                }
            }
        }
        y
    }

    pub fn avg_pool2d_backward(gy: &[f64], shape: &[usize], g: &Pool2d) -> Vec<f64> {
        let out = g.output_shape(shape, "cpu avg_pool2d_backward").expect("valid geometry");
        let (h, w, oh, ow) = (shape[2], shape[3], out[2], out[3]);
        let div = (g.kernel[0] * g.kernel[1]) as f64;
        let mut gx = vec![0.0; shape.iter().product()];
        for plane in 0..shape[0] * shape[1] {
            for oy in 0..oh {
                for ox in 0..ow {
                    let (ys, ye) = window(oy, g.kernel[0], g.stride[0], g.padding[0], h);
                    let (xs, xe) = window(ox, g.kernel[1], g.stride[1], g.padding[1], w);
                    let gv = gy[(plane * oh + oy) * ow + ox] / div;
                    for iy in ys..ye {
                        for ix in xs..xe {
                            gx[plane * h * w + iy * w + ix] += gv;
                        }
                    }
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

    /// (input shape, geometry): odd sizes, stride 2 and 3, overlapping windows (stride < kernel:
    /// the gather backward) and disjoint ones (the scatter backward),
    /// padding on one axis only, non-square kernels, planes that do not fill a workgroup.
    fn cases() -> Vec<(Vec<usize>, Pool2d)> {
        vec![
            (vec![2, 3, 7, 9], Pool2d::square(2)),
            // 2x2 stride 2 on planes a multiple of 4 wide (the vec4 kernel): 3 x 5 output pairs
            (vec![2, 3, 6, 20], Pool2d::square(2)),
            (vec![1, 2, 11, 10], Pool2d { kernel: [3, 3], stride: [2, 2], padding: [1, 1] }),
            (vec![3, 1, 9, 13], Pool2d { kernel: [3, 5], stride: [3, 2], padding: [0, 2] }),
            (vec![2, 5, 5, 5], Pool2d { kernel: [2, 3], stride: [1, 1], padding: [1, 0] }),
            (vec![1, 1, 3, 3], Pool2d { kernel: [3, 3], stride: [3, 3], padding: [1, 1] }),
            // stride > kernel: some inputs lie in no window (their gradient must be zero).
            (vec![2, 2, 8, 10], Pool2d { kernel: [2, 2], stride: [3, 3], padding: [0, 1] }),
        ]
    }

    /// Distinct values so the argmax is unique and central differences never cross a tie.
    fn distinct_input(rng: &mut TestRng, n: usize) -> Vec<f64> {
        let mut v: Vec<f64> = (0..n).map(|i| i as f64 * 0.01 - n as f64 * 0.005).collect();
        for i in (1..n).rev() {
            v.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
        v.iter().map(|&x| x as f32 as f64).collect()
    }

    #[test]
    fn max_pool_forward_and_backward_match_cpu() {
        let ctx = gpu_or_skip!();
        let mut rng = TestRng::new(11);
        for (shape, g) in cases() {
            let n: usize = shape.iter().product();
            let x = distinct_input(&mut rng, n);
            let xt = Tensor::from_slice(&ctx, &shape, &to_f32(&x)).unwrap();
            let (y, arg) = max_pool2d(&xt, &g).unwrap();
            let (wy, warg) = cpu::max_pool2d(&x, &shape, &g);
            // Max pool copies values: exact.
            assert_close(&format!("{shape:?} {g:?} max y"), &y.to_vec().unwrap(), &wy, 0.0, 0.0);
            assert_eq!(arg.to_vec_u32().unwrap(), warg, "{shape:?} {g:?} argmax");
            let gy = rng.vec(wy.len(), -1.0, 1.0);
            let gyt = Tensor::from_slice(&ctx, y.shape(), &to_f32(&gy)).unwrap();
            let gx = max_pool2d_backward(&gyt, &arg, &shape, &g).unwrap();
            // Sums of at most a handful of f32 gradients: 1e-6.
            let want = cpu::max_pool2d_backward(&gy, &warg, &shape, &g);
            assert_close(&format!("{shape:?} {g:?} max gx"), &gx.to_vec().unwrap(), &want, 1e-6, 1e-6);
        }
    }

    #[test]
    fn max_pool_ties_keep_the_first_index() {
        let ctx = gpu_or_skip!();
        let shape = [1, 1, 4, 4];
        let x = Tensor::from_slice(&ctx, &shape, &[1.0; 16]).unwrap();
        let (_, arg) = max_pool2d(&x, &Pool2d { kernel: [2, 2], stride: [2, 2], padding: [1, 1] }).unwrap();
        assert_eq!(arg.to_vec_u32().unwrap(), vec![0, 1, 3, 4, 5, 7, 12, 13, 15]);
        // Without padding on a plane a multiple of 4 wide (max_forward_2x2): the window's first.
        let (_, arg) = max_pool2d(&x, &Pool2d::square(2)).unwrap();
        assert_eq!(arg.to_vec_u32().unwrap(), vec![0, 2, 8, 10]);
    }

    #[test]
    fn avg_pool_forward_and_backward_match_cpu() {
        let ctx = gpu_or_skip!();
        let mut rng = TestRng::new(12);
        for (shape, g) in cases() {
            let x = rng.vec(shape.iter().product(), -2.0, 2.0);
            let xt = Tensor::from_slice(&ctx, &shape, &to_f32(&x)).unwrap();
            let y = avg_pool2d(&xt, &g).unwrap();
            let want = cpu::avg_pool2d(&x, &shape, &g);
            // Means of at most 15 f32 values: 1e-6 absolute + 1e-5 relative.
            assert_close(&format!("{shape:?} {g:?} avg y"), &y.to_vec().unwrap(), &want, 1e-6, 1e-5);
            let gy = rng.vec(want.len(), -1.0, 1.0);
            let gyt = Tensor::from_slice(&ctx, y.shape(), &to_f32(&gy)).unwrap();
            let gx = avg_pool2d_backward(&gyt, &shape, &g).unwrap();
            let wgx = cpu::avg_pool2d_backward(&gy, &shape, &g);
            assert_close(&format!("{shape:?} {g:?} avg gx"), &gx.to_vec().unwrap(), &wgx, 1e-6, 1e-5);
        }
    }

    #[test]
    fn cpu_backward_matches_central_differences() {
        let mut rng = TestRng::new(13);
        for (shape, g) in cases() {
            let x = distinct_input(&mut rng, shape.iter().product());
            let (y, arg) = cpu::max_pool2d(&x, &shape, &g);
            let w = rng.vec(y.len(), -1.0, 1.0);
            // Inputs are >= 0.01 apart, so a 1e-4 step never changes the argmax: exact up to rounding.
            let num = numeric_vjp(|x| cpu::max_pool2d(x, &shape, &g).0, &x, &w, 1e-4);
            assert_close_f64(&format!("{shape:?} max"), &cpu::max_pool2d_backward(&w, &arg, &shape, &g), &num, 1e-8, 1e-7);
            let num = numeric_vjp(|x| cpu::avg_pool2d(x, &shape, &g), &x, &w, 1e-4);
            assert_close_f64(&format!("{shape:?} avg"), &cpu::avg_pool2d_backward(&w, &shape, &g), &num, 1e-8, 1e-7);
        }
    }

    #[test]
    fn bad_shapes_and_geometry_are_named() {
        let ctx = gpu_or_skip!();
        let x = Tensor::zeros(&ctx, &[1, 2, 5, 5]).unwrap();
        let err = max_pool2d(&x, &Pool2d::square(7)).unwrap_err().to_string();
        assert!(err.contains("[1, 2, 5, 5]") && err.contains("larger"), "{err}");
        let err = avg_pool2d(&x, &Pool2d { kernel: [2, 2], stride: [1, 1], padding: [2, 0] }).unwrap_err().to_string();
        assert!(err.contains("[1, 2, 5, 5]") && err.contains("half the kernel"), "{err}");
        let err = avg_pool2d(&Tensor::zeros(&ctx, &[2, 5, 5]).unwrap(), &Pool2d::square(2)).unwrap_err().to_string();
        assert!(err.contains("[2, 5, 5]") && err.contains("4-d"), "{err}");
        let (_, arg) = max_pool2d(&x, &Pool2d::square(2)).unwrap();
        let gy = Tensor::zeros(&ctx, &[1, 2, 3, 3]).unwrap();
        let err = max_pool2d_backward(&gy, &arg, &[1, 2, 5, 5], &Pool2d::square(2)).unwrap_err().to_string();
        assert!(err.contains("[1, 2, 3, 3]") && err.contains("[1, 2, 2, 2]"), "{err}");
        let err = max_pool2d_backward(&gy, &gy, &[1, 2, 6, 6], &Pool2d::square(2)).unwrap_err().to_string();
        assert!(err.contains("U32"), "{err}");
    }
}
