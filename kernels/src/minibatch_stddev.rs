//! ProGAN's minibatch standard deviation layer (used by the MLSAD PatchGAN discriminator), over
//! the whole batch (one group), forward and backward.
//! WGSL: `shaders/minibatch_stddev.wgsl`. CPU reference: [`cpu`].
//!
//! x: [n, c, h, w] -> y: [n, c + 1, h, w]: for each feature f = (c, h, w),
//! `std_f = sqrt(mean_n (x[n, f] - mean_n x[., f])^2 + eps)` (biased, eps inside the root, ProGAN
//! uses 1e-8), `s = mean_f std_f`, and the extra channel is `s` everywhere.
//! Backward: `gx[n, f] = gy[n, f] + G / F * (x[n, f] - mean_f) / (n * std_f)` with `G` the sum of
//! gy over the extra channel and `F = c * h * w` (d std_f / d x[n, f] = (x[n, f] - mean_f) / (n std_f):
//! the mean's own dependence on x cancels because the deviations sum to zero).

use bytemuck::{Pod, Zeroable};

use crate::error::{Error, Result};
use crate::kernel::{grid_1d, KernelSpec, R, RW, WG_1D};
use crate::tensor::{DType, Tensor};

const SRC: &str = include_str!("../../shaders/minibatch_stddev.wgsl");
const FEATURE_STD: KernelSpec =
    KernelSpec { id: "minibatch_stddev.feature_std", source: SRC, entry: "feature_std", bindings: &[R, RW] };
const SUM_STRIDED: KernelSpec =
    KernelSpec { id: "minibatch_stddev.sum_strided", source: SRC, entry: "sum_strided", bindings: &[R, RW] };
const ASSEMBLE: KernelSpec = KernelSpec { id: "minibatch_stddev.assemble", source: SRC, entry: "assemble", bindings: &[R, R, RW] };
const BACKWARD: KernelSpec =
    KernelSpec { id: "minibatch_stddev.backward", source: SRC, entry: "backward", bindings: &[R, R, R, RW] };

/// ProGAN's epsilon inside the square root.
pub const DEFAULT_EPS: f32 = 1e-8;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct Params {
    batch: u32,
    features: u32,
    spatial: u32,
    channels: u32,
    eps: f32,
    scale: f32,
    count: u32,
    group_len: u32,
    plane: u32,
    offset: u32,
    total: u32,
    pad0: u32,
}

fn base_params(shape: &[usize], op: &str, eps: f32) -> Result<Params> {
    if shape.len() != 4 || shape.contains(&0) {
        return Err(Error::Shape(format!("{op} expects a non-empty [batch, channels, height, width], got {shape:?}")));
    }
    if !(eps >= 0.0) {
        return Err(Error::Shape(format!("{op}: eps must be >= 0, got {eps}")));
    }
    let spatial = shape[2] * shape[3];
    Ok(Params {
        batch: shape[0] as u32,
        features: (shape[1] * spatial) as u32,
        spatial: spatial as u32,
        channels: shape[1] as u32,
        eps,
        total: (shape[0] * (shape[1] + 1) * spatial) as u32,
        ..Default::default()
    })
}

/// x: [batch, channels, height, width] -> [batch, channels + 1, height, width].
pub fn minibatch_stddev(x: &Tensor, eps: f32) -> Result<Tensor> {
    let op = "minibatch_stddev";
    let p = base_params(x.shape(), op, eps)?;
    if x.dtype() != DType::F32 {
        return Err(Error::Shape(format!("{op} needs f32 x, got {:?} {:?}", x.dtype(), x.shape())));
    }
    let ctx = x.context();
    let f = p.features as usize;
    let std = Tensor::uninit(ctx, &[f], DType::F32)?;
    ctx.dispatch(&FEATURE_STD, &p, &[x.binding(), std.binding()], grid_1d(f, WG_1D))?;
    let s = Tensor::uninit(ctx, &[1], DType::F32)?;
    let mean = Params { count: p.features, group_len: p.features, plane: p.features, offset: 0, scale: 1.0 / f as f32, ..p };
    ctx.dispatch(&SUM_STRIDED, &mean, &[std.binding(), s.binding()], [1, 1, 1])?;
    let sh = x.shape();
    let y = Tensor::uninit(ctx, &[sh[0], sh[1] + 1, sh[2], sh[3]], DType::F32)?;
    ctx.dispatch(&ASSEMBLE, &p, &[x.binding(), s.binding(), y.binding()], grid_1d(y.numel(), WG_1D))?;
    Ok(y)
}

/// Gradient of [`minibatch_stddev`]. x: [batch, channels, height, width],
/// gy: [batch, channels + 1, height, width]; returns gx like x.
pub fn minibatch_stddev_backward(x: &Tensor, gy: &Tensor, eps: f32) -> Result<Tensor> {
    let op = "minibatch_stddev_backward";
    let p = base_params(x.shape(), op, eps)?;
    let sh = x.shape();
    let want = [sh[0], sh[1] + 1, sh[2], sh[3]];
    if gy.shape() != want || gy.dtype() != DType::F32 || x.dtype() != DType::F32 {
        return Err(Error::Shape(format!(
            "{op}: gy must be f32 {want:?} for x {:?} {sh:?}, got {:?} {:?}",
            x.dtype(),
            gy.dtype(),
            gy.shape()
        )));
    }
    x.expect_same_context(gy, op)?;
    let ctx = x.context();
    // G = sum over (n, h, w) of the extra channel's gradient: runs of `spatial` at channel c.
    let g = Tensor::uninit(ctx, &[1], DType::F32)?;
    let sum = Params {
        count: p.batch * p.spatial,
        group_len: p.spatial,
        plane: p.features + p.spatial,
        offset: p.features,
        scale: 1.0,
        ..p
    };
    ctx.dispatch(&SUM_STRIDED, &sum, &[gy.binding(), g.binding()], [1, 1, 1])?;
    let gx = Tensor::uninit(ctx, sh, DType::F32)?;
    ctx.dispatch(&BACKWARD, &p, &[x.binding(), gy.binding(), g.binding(), gx.binding()], grid_1d(p.features as usize, WG_1D))?;
    Ok(gx)
}

/// Plain-Rust f64 reference.
pub mod cpu {
    /// (mean, std) per feature of x [n, F].
    fn feature_stats(x: &[f64], n: usize, f: usize, eps: f64) -> (Vec<f64>, Vec<f64>) {
        (0..f)
            .map(|j| {
                let mean = (0..n).map(|i| x[i * f + j]).sum::<f64>() / n as f64;
                let var = (0..n).map(|i| (x[i * f + j] - mean).powi(2)).sum::<f64>() / n as f64;
                (mean, (var + eps).sqrt())
            })
            .unzip()
    }

    pub fn minibatch_stddev(x: &[f64], shape: &[usize], eps: f64) -> Vec<f64> {
        let (n, s) = (shape[0], shape[2] * shape[3]);
        let f = shape[1] * s;
        let (_, std) = feature_stats(x, n, f, eps);
        let mean_std = std.iter().sum::<f64>() / f as f64;
        (0..n).flat_map(|i| x[i * f..(i + 1) * f].iter().copied().chain(std::iter::repeat_n(mean_std, s))).collect()
    }

    pub fn minibatch_stddev_backward(x: &[f64], gy: &[f64], shape: &[usize], eps: f64) -> Vec<f64> {
        let (n, s) = (shape[0], shape[2] * shape[3]);
        let f = shape[1] * s;
        let (mean, std) = feature_stats(x, n, f, eps);
        let g: f64 = (0..n).flat_map(|i| gy[i * (f + s) + f..(i + 1) * (f + s)].iter()).sum();
        (0..n * f)
            .map(|k| {
                let (i, j) = (k / f, k % f);
                gy[i * (f + s) + j] + g / f as f64 * (x[k] - mean[j]) / (n as f64 * std[j])
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu_or_skip;
    use crate::testing::{assert_close, assert_close_f64, numeric_vjp, to_f32, TestRng};

    /// Odd feature counts below and above one workgroup, a 1x1 map, batch 1 (std = sqrt(eps)).
    fn shapes() -> Vec<Vec<usize>> {
        vec![vec![4, 3, 5, 7], vec![3, 2, 1, 1], vec![5, 17, 9, 11], vec![1, 2, 3, 3]]
    }

    #[test]
    fn forward_and_backward_match_cpu() {
        let ctx = gpu_or_skip!();
        let mut rng = TestRng::new(61);
        for shape in shapes() {
            let x = rng.vec(shape.iter().product(), -2.0, 2.0);
            let xt = Tensor::from_slice(&ctx, &shape, &to_f32(&x)).unwrap();
            let y = minibatch_stddev(&xt, DEFAULT_EPS).unwrap();
            let want = cpu::minibatch_stddev(&x, &shape, DEFAULT_EPS as f64);
            // A mean of up to ~1700 square roots of small-batch variances in f32: 1e-5 + 1e-5 rel.
            assert_close(&format!("{shape:?} y"), &y.to_vec().unwrap(), &want, 1e-5, 1e-5);
            let gy = rng.vec(want.len(), -1.0, 1.0);
            let gyt = Tensor::from_slice(&ctx, y.shape(), &to_f32(&gy)).unwrap();
            let gx = minibatch_stddev_backward(&xt, &gyt, DEFAULT_EPS).unwrap();
            // G sums up to ~500 gradients; its error is spread over F features: 1e-5 + 1e-4 rel.
            let wgx = cpu::minibatch_stddev_backward(&x, &gy, &shape, DEFAULT_EPS as f64);
            assert_close(&format!("{shape:?} gx"), &gx.to_vec().unwrap(), &wgx, 1e-5, 1e-4);
        }
    }

    #[test]
    fn cpu_backward_matches_central_differences() {
        let mut rng = TestRng::new(62);
        for shape in [vec![3, 2, 2, 3], vec![2, 1, 3, 1]] {
            let x = rng.vec(shape.iter().product(), -2.0, 2.0);
            let y = cpu::minibatch_stddev(&x, &shape, 1e-8);
            let w = rng.vec(y.len(), -1.0, 1.0);
            // Smooth where the batch values differ (they do, being random): step 1e-6, ~1e-8 accurate.
            let num = numeric_vjp(|x| cpu::minibatch_stddev(x, &shape, 1e-8), &x, &w, 1e-6);
            assert_close_f64(&format!("{shape:?}"), &cpu::minibatch_stddev_backward(&x, &w, &shape, 1e-8), &num, 1e-7, 1e-6);
        }
    }

    #[test]
    fn bad_inputs_are_named() {
        let ctx = gpu_or_skip!();
        let x = Tensor::zeros(&ctx, &[2, 3, 4]).unwrap();
        let err = minibatch_stddev(&x, DEFAULT_EPS).unwrap_err().to_string();
        assert!(err.contains("[2, 3, 4]"), "{err}");
        let x = Tensor::zeros(&ctx, &[2, 3, 4, 4]).unwrap();
        let gy = Tensor::zeros(&ctx, &[2, 3, 4, 4]).unwrap();
        let err = minibatch_stddev_backward(&x, &gy, DEFAULT_EPS).unwrap_err().to_string();
        assert!(err.contains("[2, 4, 4, 4]") && err.contains("[2, 3, 4, 4]"), "{err}");
    }
}
