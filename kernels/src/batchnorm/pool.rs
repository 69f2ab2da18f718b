//! Batch norm + activation + 2x2 max pool at stride 2, fused: the LeNets' conv blocks
//! (conv, batch norm, leaky ReLU, pool) with the batch norm's output never written at full size.
//! WGSL: the `*_pool` entry points of `shaders/batchnorm.wgsl`. CPU reference: [`cpu`] (the
//! separate layers' references composed).
//!
//! Forward: the batch norm's statistics as [`super::batch_norm`], then one pass writing the pooled
//! map and each window's argmax slot. Backward: the gradient of the activated map is the pooled
//! gradient at each window's argmax and zero elsewhere, so the batch norm's sums run over pooled
//! values only, and one pass writes gx window by window. Separate layers write the normalised
//! map, read it to pool, scatter the pooled gradient to a full-size map, and read that and the
//! normalised map twice: on lavapipe the LeNet blocks' batch norm and pool took half of a
//! Fashion-MNIST batch-1024 step.

use crate::conv2d::Epilogue;
use crate::error::{Error, Result};
use crate::kernel::{grid_1d, KernelSpec, R, RW, WG_1D};
use crate::tensor::{DType, Tensor};

use super::{chunking, combine_backward_sums, statistics, BatchNormArgs, BatchNormGrads, Params, RUN, SRC};

const POOL_CONSTS: KernelSpec =
    KernelSpec { id: "batchnorm.pool_consts", source: SRC, entry: "pool_consts", bindings: &[R, R, R, R, RW] };
const NORMALIZE_POOL: KernelSpec =
    KernelSpec { id: "batchnorm.normalize_pool", source: SRC, entry: "normalize_pool", bindings: &[R, R, RW, RW] };
const BACKWARD_REDUCE_POOL: KernelSpec = KernelSpec {
    id: "batchnorm.backward_reduce_pool",
    source: SRC,
    entry: "backward_reduce_pool",
    bindings: &[R, R, R, R, RW],
};
const BACKWARD_DX_POOL: KernelSpec = KernelSpec {
    id: "batchnorm.backward_dx_pool",
    source: SRC,
    entry: "backward_dx_pool",
    bindings: &[R, R, R, R, R, RW],
};

/// What the backward needs from the forward.
#[derive(Clone, Debug)]
pub struct BatchNormPoolSaved {
    /// [4, channels]: mean, invstd, gamma, beta (1 and 0 without affine) as the forward used them.
    pub consts: Tensor,
    /// [N, C, H/2, W/2]: the x value each window's maximum came from; the backward finds the
    /// argmax as the first x in the window equal to it (see the shader).
    pub picked: Tensor,
    pub training: bool,
    pub affine: bool,
    /// The fused leaky ReLU's slope (0 = ReLU), if any.
    pub slope: Option<f32>,
}

/// Whether the fused layer takes x of this shape: [N, C, H, W] with H and W even and positive.
pub fn fits(shape: &[usize]) -> bool {
    matches!(shape, [n, c, h, w] if *n > 0 && *c > 0 && *h > 0 && *w > 0 && h % 2 == 0 && w % 2 == 0)
}

fn expect_fits(x: &Tensor, op: &str) -> Result<(usize, usize, usize, usize)> {
    match x.shape() {
        &[n, c, h, w] if fits(x.shape()) => Ok((n, c, h, w)),
        s => Err(Error::Shape(format!("{op}: x must be [N, C, H, W] with H and W even for a 2x2 stride-2 pool, got {s:?}"))),
    }
}

/// Batch norm (as [`super::batch_norm`], running statistics included), its epilogue, then 2x2
/// max pooling at stride 2. x: [N, C, H, W], H and W even -> [N, C, H/2, W/2].
pub fn batch_norm_max_pool(x: &Tensor, args: &BatchNormArgs) -> Result<(Tensor, BatchNormPoolSaved)> {
    batch_norm_max_pool_split(x, args, None)
}

/// [`batch_norm_max_pool`] with the statistics' reduction split `splits` ways (`None`: by adapter).
pub(crate) fn batch_norm_max_pool_split(
    x: &Tensor,
    args: &BatchNormArgs,
    splits: Option<usize>,
) -> Result<(Tensor, BatchNormPoolSaved)> {
    let op = "batch_norm_max_pool";
    let (n, c, h, w) = expect_fits(x, op)?;
    let (mean, invstd, params) = statistics(x, args, splits, op)?;
    let ctx = x.context();
    let affine = args.affine.is_some();
    let (g, b) = args.affine.unwrap_or((&mean, &mean));
    let consts = Tensor::uninit(ctx, &[4, c], DType::F32)?;
    let consts_params = Params { flags: affine as u32, ..params };
    ctx.dispatch(
        &POOL_CONSTS,
        &consts_params,
        &[mean.binding(), invstd.binding(), g.binding(), b.binding(), consts.binding()],
        grid_1d(c, WG_1D),
    )?;
    let pooled = n * c * (h / 2) * (w / 2);
    let mut norm = Params { flags: affine as u32, total: pooled as u32, width: w as u32, ..params };
    let slope = match args.epilogue {
        Epilogue::LeakyRelu(s) => {
            norm.flags |= 4;
            norm.slope = s;
            Some(s)
        }
        Epilogue::Identity => None,
    };
    let y = Tensor::uninit(ctx, &[n, c, h / 2, w / 2], DType::F32)?;
    let picked = Tensor::uninit(ctx, &[n, c, h / 2, w / 2], DType::F32)?;
    ctx.dispatch(
        &NORMALIZE_POOL,
        &norm,
        &[x.binding(), consts.binding(), y.binding(), picked.binding()],
        grid_1d(pooled.div_ceil(RUN), WG_1D),
    )?;
    Ok((y, BatchNormPoolSaved { consts, picked, training: args.training, affine, slope }))
}

/// Backward of [`batch_norm_max_pool`]: x as the forward's, gy like its output.
/// ggamma / gbeta are returned when the forward was affine.
pub fn batch_norm_max_pool_backward(x: &Tensor, gy: &Tensor, saved: &BatchNormPoolSaved) -> Result<BatchNormGrads> {
    batch_norm_max_pool_backward_split(x, gy, saved, None)
}

pub(crate) fn batch_norm_max_pool_backward_split(
    x: &Tensor,
    gy: &Tensor,
    saved: &BatchNormPoolSaved,
    splits: Option<usize>,
) -> Result<BatchNormGrads> {
    let op = "batch_norm_max_pool_backward";
    let (n, c, h, w) = expect_fits(x, op)?;
    let pooled_shape = [n, c, h / 2, w / 2];
    if x.dtype() != DType::F32 || gy.dtype() != DType::F32 || gy.shape() != pooled_shape {
        return Err(Error::Shape(format!(
            "{op}: x {:?} {:?} needs f32 gy of shape {pooled_shape:?}, got {:?} {:?}",
            x.dtype(),
            x.shape(),
            gy.dtype(),
            gy.shape()
        )));
    }
    if saved.picked.shape() != pooled_shape || saved.consts.shape() != [4, c] {
        return Err(Error::Shape(format!(
            "{op}: saved picked values {:?} and consts {:?} do not belong to x {:?}",
            saved.picked.shape(),
            saved.consts.shape(),
            x.shape()
        )));
    }
    x.expect_same_context(gy, op)?;
    let ctx = x.context();
    let plane = (h / 2) * (w / 2);
    let mut params = Params {
        batch: n as u32,
        channels: c as u32,
        flags: saved.affine as u32 | (saved.training as u32) << 1,
        width: w as u32,
        ..Default::default()
    };
    if let Some(s) = saved.slope {
        params.flags |= 4;
        params.slope = s;
    }
    // The sums over the pooled values: spatial is the pooled plane here.
    let (splits, chunk) = chunking(ctx.is_cpu_adapter(), c, n * plane, splits, 1);
    let reduce = Params { spatial: plane as u32, splits: splits as u32, chunk: chunk as u32, ..params };
    let partial = Tensor::uninit(ctx, &[2, c * splits], DType::F32)?;
    ctx.dispatch(
        &BACKWARD_REDUCE_POOL,
        &reduce,
        &[x.binding(), saved.consts.binding(), gy.binding(), saved.picked.binding(), partial.binding()],
        grid_1d(c * splits, 1),
    )?;
    let (sums, gbeta, ggamma) = combine_backward_sums(ctx, &reduce, &partial, c)?;
    let gx = Tensor::uninit(ctx, x.shape(), DType::F32)?;
    let dx = Params { spatial: (h * w) as u32, total: (n * c * plane) as u32, ..params };
    ctx.dispatch(
        &BACKWARD_DX_POOL,
        &dx,
        &[x.binding(), saved.consts.binding(), gy.binding(), saved.picked.binding(), sums.binding(), gx.binding()],
        grid_1d((n * c * plane).div_ceil(RUN), WG_1D),
    )?;
    Ok(BatchNormGrads { gx, ggamma: saved.affine.then_some(ggamma), gbeta: saved.affine.then_some(gbeta) })
}

/// Plain-Rust f64 reference: the separate layers' references composed.
pub mod cpu {
    use crate::batchnorm::cpu as bn;

    /// The activation after the affine map: leaky ReLU with `slope` (0 = ReLU) or none.
    fn act(v: f64, slope: Option<f64>) -> f64 {
        match slope {
            Some(s) if v <= 0.0 || v.is_nan() => v * s,
            _ => v,
        }
    }

    /// (pooled y, argmax slot per window, pre-activation map) for x [n, c, h, w] normalised with
    /// `mean` / `invstd`.
    pub fn forward(
        x: &[f64],
        shape: [usize; 4],
        mean: &[f64],
        invstd: &[f64],
        affine: Option<(&[f64], &[f64])>,
        slope: Option<f64>,
    ) -> (Vec<f64>, Vec<u32>, Vec<f64>) {
        let [n, c, h, w] = shape;
        let pre = bn::normalize(x, (n, c, h * w), mean, invstd, affine);
        let (mut y, mut arg) = (vec![], vec![]);
        for plane in 0..n * c {
            for oh in 0..h / 2 {
                for ow in 0..w / 2 {
                    let at = |s: usize| plane * h * w + (2 * oh + s / 2) * w + 2 * ow + s % 2;
                    let (mut best, mut slot) = (act(pre[at(0)], slope), 0);
                    for s in 1..4 {
                        let v = act(pre[at(s)], slope);
                        if v > best {
                            best = v;
                            slot = s;
                        }
                    }
                    y.push(best);
                    arg.push(slot as u32);
                }
            }
        }
        (y, arg, pre)
    }

    /// Flat index in x of slot `s` (0..3, row-major) of pooled output `o`'s window.
    pub fn window_at(shape: [usize; 4], o: usize, s: u32) -> usize {
        let [_, _, h, w] = shape;
        let (plane, q) = (o / (h / 2 * (w / 2)), o % (h / 2 * (w / 2)));
        let (oh, ow, s) = (q / (w / 2), q % (w / 2), s as usize);
        plane * h * w + (2 * oh + s / 2) * w + 2 * ow + s % 2
    }

    /// (gx, ggamma, gbeta): gy scattered to each window's argmax, times the activation's
    /// derivative, through the batch norm's backward.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        x: &[f64],
        gy: &[f64],
        shape: [usize; 4],
        argmax: &[u32],
        pre: &[f64],
        gamma: Option<&[f64]>,
        mean: &[f64],
        invstd: &[f64],
        slope: Option<f64>,
        training: bool,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let [n, c, h, w] = shape;
        let mut gz = vec![0.0; x.len()];
        for (o, (&g, &s)) in gy.iter().zip(argmax).enumerate() {
            let i = window_at(shape, o, s);
            gz[i] = match slope {
                Some(sl) if pre[i] <= 0.0 || pre[i].is_nan() => g * sl,
                _ => g,
            };
        }
        bn::batch_norm_backward(x, &gz, (n, c, h * w), gamma, mean, invstd, training)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batchnorm::cpu as bn;
    use crate::gpu_or_skip;
    use crate::testing::{assert_close, numeric_vjp, to_f32, TestRng};

    /// Even planes of odd pooled sizes (3 x 5, 7 x 7 as Fashion-MNIST's second block), one window
    /// per plane, a plane past the reductions' 256-value stride (18 x 34 -> 153 pooled values), and
    /// channel counts that are not powers of two; 8-output runs cross rows, channels and samples.
    fn shapes() -> Vec<[usize; 4]> {
        vec![[3, 5, 6, 10], [2, 3, 14, 14], [5, 2, 2, 2], [2, 3, 18, 34], [1, 7, 4, 6]]
    }

    const SPLITS: [Option<usize>; 3] = [None, Some(3), Some(64)];

    // As the batch norm's own tests: forward 2e-5; gradients subtract per-channel sums from
    // M * gy, 1e-4.
    const ATOL: f64 = 2e-5;

    #[test]
    fn fused_layer_matches_the_cpu_reference() {
        let ctx = gpu_or_skip!();
        let mut rng = TestRng::new(31);
        for shape in shapes() {
            let [n, c, h, w] = shape;
            let d = (n, c, h * w);
            for (k, splits) in SPLITS.iter().enumerate() {
                // ties: x takes the values 1, 2, 3 only, so most windows hold equal maxima (the
                // first must win, forward and backward) and ReLU flattens negatives to equal zeros.
                for (affine, slope, training, ties) in [
                    (false, Some(0.01), true, false),
                    (true, Some(0.2), true, false),
                    (true, None, true, false),
                    (false, Some(0.0), true, false),
                    (true, Some(0.1), false, false),
                    (true, Some(0.0), true, true),
                    (false, None, true, true),
                    (true, Some(0.2), false, true),
                ] {
                    if k > 0 && !training {
                        continue; // eval mode has no reduction to split
                    }
                    let what = format!("{shape:?} affine {affine} slope {slope:?} training {training} ties {ties} splits {splits:?}");
                    let mut x = rng.vec(n * c * h * w, 1.0, 4.0);
                    if ties {
                        x.iter_mut().for_each(|v| *v = v.floor());
                    }
                    let gamma = rng.vec(c, -1.5, 1.5); // negative gammas turn the order in a window round
                    let beta = rng.vec(c, -1.0, 1.0);
                    let rm = rng.vec(c, 1.0, 3.0);
                    let rv = rng.vec(c, 0.5, 2.0);
                    let xt = Tensor::from_slice(&ctx, &shape, &to_f32(&x)).unwrap();
                    let gt = Tensor::from_slice(&ctx, &[c], &to_f32(&gamma)).unwrap();
                    let bt = Tensor::from_slice(&ctx, &[c], &to_f32(&beta)).unwrap();
                    let rmt = Tensor::from_slice(&ctx, &[c], &to_f32(&rm)).unwrap();
                    let rvt = Tensor::from_slice(&ctx, &[c], &to_f32(&rv)).unwrap();
                    let args = BatchNormArgs {
                        affine: affine.then_some((&gt, &bt)),
                        running: Some((&rmt, &rvt)),
                        training,
                        momentum: 0.1,
                        eps: 1e-4,
                        epilogue: slope.map_or(Epilogue::Identity, |s| Epilogue::LeakyRelu(s as f32)),
                    };
                    let (y, saved) = batch_norm_max_pool_split(&xt, &args, *splits).unwrap();
                    let (mean, invstd) = if training {
                        let (m, i, _) = bn::batch_stats(&x, d, 1e-4);
                        (m, i)
                    } else {
                        (rm.clone(), rv.iter().map(|v| 1.0 / (v + 1e-4).sqrt()).collect())
                    };
                    let aff = affine.then_some((gamma.as_slice(), beta.as_slice()));
                    let (want_y, want_arg, pre) = cpu::forward(&x, shape, &mean, &invstd, aff, slope);
                    assert_close(&format!("{what} y"), &y.to_vec().unwrap(), &want_y, ATOL, ATOL);
                    // Random values leave no near-ties and ties are exact, so the argmax agrees
                    // exactly: picked is x there.
                    let x32 = to_f32(&x);
                    let want_picked: Vec<f32> = want_arg.iter().enumerate().map(|(o, &s)| x32[cpu::window_at(shape, o, s)]).collect();
                    assert_eq!(saved.picked.to_vec().unwrap(), want_picked, "{what} picked");

                    let gy = rng.vec(want_y.len(), -1.0, 1.0);
                    let gyt = Tensor::from_slice(&ctx, y.shape(), &to_f32(&gy)).unwrap();
                    let grads = batch_norm_max_pool_backward_split(&xt, &gyt, &saved, *splits).unwrap();
                    let gam = affine.then_some(gamma.as_slice());
                    let (gx, gg, gb) = cpu::backward(&x, &gy, shape, &want_arg, &pre, gam, &mean, &invstd, slope, training);
                    assert_close(&format!("{what} gx"), &grads.gx.to_vec().unwrap(), &gx, 1e-4, 1e-4);
                    assert_eq!(grads.ggamma.is_some(), affine, "{what}");
                    if affine {
                        assert_close(&format!("{what} ggamma"), &grads.ggamma.unwrap().to_vec().unwrap(), &gg, 1e-4, 1e-4);
                        assert_close(&format!("{what} gbeta"), &grads.gbeta.unwrap().to_vec().unwrap(), &gb, 1e-4, 1e-4);
                    }
                }
            }
        }
    }

    /// The reference backward against central differences of the reference forward (batch
    /// statistics recomputed from the perturbed x), in f64: a step of 1e-6 moves no value across
    /// a window's maximum or the activation's kink for these seeds (checked below).
    #[test]
    fn reference_backward_matches_central_differences() {
        let mut rng = TestRng::new(32);
        let shape = [3, 2, 4, 6];
        let [n, c, h, w] = shape;
        let d = (n, c, h * w);
        let x = rng.vec(n * c * h * w, -2.0, 2.0);
        let gamma = rng.vec(c, -1.5, 1.5);
        let beta = rng.vec(c, -0.5, 0.5);
        let slope = Some(0.1);
        let forward = |x: &[f64]| {
            let (mean, invstd, _) = bn::batch_stats(x, d, 1e-4);
            cpu::forward(x, shape, &mean, &invstd, Some((&gamma, &beta)), slope).0
        };
        let (mean, invstd, _) = bn::batch_stats(&x, d, 1e-4);
        let (y, arg, pre) = cpu::forward(&x, shape, &mean, &invstd, Some((&gamma, &beta)), slope);
        let margin = pre.iter().fold(f64::MAX, |m, v| m.min(v.abs()));
        assert!(margin > 1e-4, "a pre-activation {margin} from the kink");
        let gy = rng.vec(y.len(), -1.0, 1.0);
        let (gx, _, _) = cpu::backward(&x, &gy, shape, &arg, &pre, Some(&gamma), &mean, &invstd, slope, true);
        let numeric = numeric_vjp(forward, &x, &gy, 1e-6);
        for (i, (a, b)) in gx.iter().zip(&numeric).enumerate() {
            assert!((a - b).abs() <= 1e-6 + 1e-5 * b.abs(), "gx[{i}]: backward {a} vs central difference {b}");
        }
    }

    #[test]
    fn odd_planes_and_wrong_gradients_are_errors() {
        let ctx = gpu_or_skip!();
        let rm = Tensor::from_slice(&ctx, &[2], &[0.0, 0.0]).unwrap();
        let rv = Tensor::from_slice(&ctx, &[2], &[1.0, 1.0]).unwrap();
        let args =
            BatchNormArgs { affine: None, running: Some((&rm, &rv)), training: true, momentum: 0.1, eps: 1e-5, epilogue: Epilogue::Identity };
        let odd = Tensor::from_slice(&ctx, &[1, 2, 3, 4], &[0.5; 24]).unwrap();
        let err = batch_norm_max_pool(&odd, &args).unwrap_err().to_string();
        assert!(err.contains("[1, 2, 3, 4]") && err.contains("even"), "{err}");
        let x = Tensor::from_slice(&ctx, &[1, 2, 4, 4], &(0..32).map(|v| v as f32).collect::<Vec<_>>()).unwrap();
        let (_, saved) = batch_norm_max_pool(&x, &args).unwrap();
        let bad = Tensor::from_slice(&ctx, &[1, 2, 4, 4], &[0.0; 32]).unwrap();
        let err = batch_norm_max_pool_backward(&x, &bad, &saved).unwrap_err().to_string();
        assert!(err.contains("[1, 2, 2, 2]") && err.contains("[1, 2, 4, 4]"), "{err}");
    }
}
