//! Batch normalisation for `[N, C]` (1-d) and `[N, C, H, W]` (2-d), training and eval mode,
//! with or without the affine gamma / beta, forward and backward.
//! WGSL: `shaders/batchnorm.wgsl`. CPU reference: [`cpu`].
//!
//! As PyTorch's `BatchNorm1d/2d`: training normalises with the batch mean and the **biased**
//! batch variance, and (when running stats are given) updates them in place with
//! `running = (1 - momentum) * running + momentum * batch_stat`, using the **unbiased** batch
//! variance for `running_var`. Eval mode normalises with the running statistics.

use bytemuck::{Pod, Zeroable};

use crate::context::Context;
use crate::conv2d::Epilogue;
use crate::error::{Error, Result};
use crate::kernel::{grid_1d, KernelSpec, R, RW, WG_1D};
use crate::tensor::{DType, Tensor};

pub mod pool;

const SRC: &str = include_str!("../../shaders/batchnorm.wgsl");
const STATS: KernelSpec = KernelSpec { id: "batchnorm.stats", source: SRC, entry: "stats", bindings: &[R, RW, RW, RW, RW] };
const STATS_COMBINE: KernelSpec = KernelSpec {
    id: "batchnorm.stats_combine",
    source: SRC,
    entry: "stats_combine",
    bindings: &[R, R, RW, RW, RW, RW],
};
const EVAL_STATS: KernelSpec =
    KernelSpec { id: "batchnorm.eval_stats", source: SRC, entry: "eval_stats", bindings: &[R, R, RW, RW] };
const NORMALIZE: KernelSpec =
    KernelSpec { id: "batchnorm.normalize", source: SRC, entry: "normalize", bindings: &[R, R, R, R, R, RW] };
const BACKWARD_REDUCE: KernelSpec = KernelSpec {
    id: "batchnorm.backward_reduce",
    source: SRC,
    entry: "backward_reduce",
    bindings: &[R, R, R, R, RW, R],
};
const BACKWARD_COMBINE: KernelSpec =
    KernelSpec { id: "batchnorm.backward_combine", source: SRC, entry: "backward_combine", bindings: &[R, RW, RW, RW] };
const BACKWARD_DX: KernelSpec = KernelSpec {
    id: "batchnorm.backward_dx",
    source: SRC,
    entry: "backward_dx",
    bindings: &[R, R, R, R, R, R, R, RW],
};

// The same four passes over vec4s, for planes a multiple of 4 values wide (see `Width`).
const STATS4: KernelSpec = KernelSpec { id: "batchnorm.stats4", source: SRC, entry: "stats4", bindings: &[R, RW, RW, RW, RW] };
const NORMALIZE4: KernelSpec =
    KernelSpec { id: "batchnorm.normalize4", source: SRC, entry: "normalize4", bindings: &[R, R, R, R, R, RW] };
const BACKWARD_REDUCE4: KernelSpec = KernelSpec {
    id: "batchnorm.backward_reduce4",
    source: SRC,
    entry: "backward_reduce4",
    bindings: &[R, R, R, R, RW, R],
};
const BACKWARD_DX4: KernelSpec = KernelSpec {
    id: "batchnorm.backward_dx4",
    source: SRC,
    entry: "backward_dx4",
    bindings: &[R, R, R, R, R, R, R, RW],
};

/// Whether the passes over x read values or vec4s. vec4s need planes (and so the reductions'
/// chunks) a multiple of 4 values, so that no vec4 straddles two channels or two chunks; on
/// lavapipe, which loads storage lane by lane, they take a quarter of the load loops.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Width {
    Scalar,
    Vec4,
}

impl Width {
    fn of(spatial: usize) -> Width {
        if spatial % 4 == 0 { Width::Vec4 } else { Width::Scalar }
    }

    /// Values per storage entry: the reductions' chunks are a multiple of it.
    fn values(self) -> usize {
        if self == Width::Vec4 { 4 } else { 1 }
    }

    fn pick(self, scalar: &'static KernelSpec, vec4: &'static KernelSpec) -> &'static KernelSpec {
        if self == Width::Vec4 { vec4 } else { scalar }
    }
}

/// Values one `normalize` or `backward_dx` invocation handles (the shader's RUN).
const RUN: usize = 8;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct Params {
    batch: u32,
    channels: u32,
    spatial: u32,
    flags: u32,
    eps: f32,
    momentum: f32,
    total: u32,
    slope: f32,
    splits: u32,
    chunk: u32,
    /// The *_pool kernels: W of x [N, C, H, W].
    width: u32,
    pad: u32,
}

/// The reduction workgroups' shader width.
const RWG: usize = 256;

/// (splits, chunk): how many workgroups share each channel's `m` values, and how many each takes
/// (every chunk non-empty). `forced` is for tests; otherwise one workgroup per channel is plenty
/// on a CPU adapter (a few per core), while a GPU wants thousands of workgroups in flight, each
/// still long enough (16 values per thread) that the combine pass stays small.
/// Chunks are a multiple of `align` values (m is one too: whole planes of a multiple of it).
fn chunking(cpu: bool, channels: usize, m: usize, forced: Option<usize>, align: usize) -> (usize, usize) {
    let want = forced.unwrap_or_else(|| {
        let (workgroups, min_chunk): (usize, usize) = if cpu { (8, RWG * 64) } else { (2048, RWG * 16) };
        workgroups.div_ceil(channels.max(1)).min(m.div_ceil(min_chunk))
    });
    let chunk = m.div_ceil(want.clamp(1, m.max(1))).next_multiple_of(align);
    (m.div_ceil(chunk.max(1)).max(1), chunk.max(1))
}

/// How to run one batch-norm forward.
#[derive(Clone, Copy)]
pub struct BatchNormArgs<'a> {
    /// (gamma, beta), each `[channels]`; `None` for `affine = false`.
    pub affine: Option<(&'a Tensor, &'a Tensor)>,
    /// (running_mean, running_var), each `[channels]`. Updated in place in training mode;
    /// required in eval mode; `None` in training mode is `track_running_stats = false`.
    pub running: Option<(&'a Tensor, &'a Tensor)>,
    pub training: bool,
    /// PyTorch default 0.1.
    pub momentum: f32,
    /// PyTorch default 1e-5.
    pub eps: f32,
    /// An activation applied in the normalising pass (after gamma and beta): the layer's
    /// activation costs no pass of its own, forward or backward.
    pub epilogue: Epilogue,
}

/// What the backward needs from the forward: the statistics x was normalised with, `[channels]` each.
#[derive(Clone, Debug)]
pub struct BatchNormSaved {
    pub mean: Tensor,
    /// 1 / sqrt(var + eps)
    pub invstd: Tensor,
    /// Whether `mean` / `invstd` are batch statistics (training) or running ones (eval).
    pub training: bool,
    /// With a fused leaky ReLU: the output y and the slope (the backward reads the derivative off y).
    pub activated: Option<(Tensor, f32)>,
}

/// Gradients of [`batch_norm`]: gx like x, ggamma / gbeta `[channels]` when affine.
#[derive(Clone, Debug)]
pub struct BatchNormGrads {
    pub gx: Tensor,
    pub ggamma: Option<Tensor>,
    pub gbeta: Option<Tensor>,
}

/// (batch, channels, spatial) of a `[N, C]` or `[N, C, H, W]` tensor.
fn dims(shape: &[usize], op: &str) -> Result<(usize, usize, usize)> {
    match shape {
        [n, c] => Ok((*n, *c, 1)),
        [n, c, h, w] => Ok((*n, *c, h * w)),
        _ => Err(Error::Shape(format!("{op} expects x of shape [N, C] or [N, C, H, W], got {shape:?}"))),
    }
}

fn expect_channel_vec(t: &Tensor, what: &str, channels: usize, x: &Tensor, op: &str) -> Result<()> {
    if t.shape() != [channels] || t.dtype() != DType::F32 {
        return Err(Error::Shape(format!(
            "{op}: {what} must be f32 [{channels}] for x {:?}, got {:?} {:?}",
            x.shape(),
            t.dtype(),
            t.shape()
        )));
    }
    x.expect_same_context(t, op)
}

/// Batch norm forward. x: [batch, channels] or [batch, channels, height, width] -> y like x,
/// plus the statistics for [`batch_norm_backward`].
pub fn batch_norm(x: &Tensor, args: &BatchNormArgs) -> Result<(Tensor, BatchNormSaved)> {
    batch_norm_split(x, args, None)
}

/// [`batch_norm`] with the statistics' reduction split `splits` ways per channel (`None`: by adapter).
pub(crate) fn batch_norm_split(x: &Tensor, args: &BatchNormArgs, splits: Option<usize>) -> Result<(Tensor, BatchNormSaved)> {
    let (mean, invstd, params) = statistics(x, args, splits, "batch_norm")?;
    let ctx = x.context();
    let width = Width::of(params.spatial as usize);
    let y = Tensor::uninit(ctx, x.shape(), DType::F32)?;
    // Not affine: gamma / beta bindings alias `mean` (read-only, never read by the kernel).
    let (g, b) = match args.affine {
        Some(gb) => gb,
        None => (&mean, &mean),
    };
    let mut norm_params = Params { flags: args.affine.is_some() as u32, ..params };
    let activated = match args.epilogue {
        Epilogue::LeakyRelu(slope) => {
            norm_params.flags |= 4;
            norm_params.slope = slope;
            Some((y.clone(), slope))
        }
        Epilogue::Identity => None,
    };
    ctx.dispatch(
        width.pick(&NORMALIZE, &NORMALIZE4),
        &norm_params,
        &[x.binding(), mean.binding(), invstd.binding(), g.binding(), b.binding(), y.binding()],
        grid_1d(x.numel().div_ceil(RUN), WG_1D),
    )?;
    Ok((y, BatchNormSaved { mean, invstd, training: args.training, activated }))
}

/// Checks `args` against x and computes the statistics x is normalised with, `[channels]` each:
/// the batch's (training; the running statistics are updated when given) or the running ones
/// (eval). Also returns the parameters of x's shape the normalising passes start from.
fn statistics(x: &Tensor, args: &BatchNormArgs, splits: Option<usize>, op: &str) -> Result<(Tensor, Tensor, Params)> {
    let (n, c, s) = dims(x.shape(), op)?;
    if x.dtype() != DType::F32 {
        return Err(Error::Shape(format!("{op} needs f32 x, got {:?} {:?}", x.dtype(), x.shape())));
    }
    if let Some((g, b)) = args.affine {
        expect_channel_vec(g, "gamma", c, x, op)?;
        expect_channel_vec(b, "beta", c, x, op)?;
    }
    if let Some((rm, rv)) = args.running {
        expect_channel_vec(rm, "running_mean", c, x, op)?;
        expect_channel_vec(rv, "running_var", c, x, op)?;
    }
    if !(args.eps > 0.0) {
        return Err(Error::Shape(format!("{op}: eps must be positive, got {}", args.eps)));
    }
    args.epilogue.check(op)?;
    let ctx = x.context();
    let width = Width::of(s);
    let mean = Tensor::uninit(ctx, &[c], DType::F32)?;
    let invstd = Tensor::uninit(ctx, &[c], DType::F32)?;
    let mut params = Params {
        batch: n as u32,
        channels: c as u32,
        spatial: s as u32,
        flags: 0,
        eps: args.eps,
        momentum: args.momentum,
        total: x.numel() as u32,
        slope: 0.0,
        ..Default::default()
    };
    if args.training {
        if n * s < 2 {
            return Err(Error::Shape(format!(
                "{op}: training needs more than one value per channel, x is {:?}",
                x.shape()
            )));
        }
        // Without running stats the kernel still binds two buffers; it never touches them.
        let dummies;
        let (rm, rv) = match args.running {
            Some(r) => {
                params.flags = 1;
                r
            }
            None => {
                dummies = (Tensor::uninit(ctx, &[1], DType::F32)?, Tensor::uninit(ctx, &[1], DType::F32)?);
                (&dummies.0, &dummies.1)
            }
        };
        let (splits, chunk) = chunking(ctx.is_cpu_adapter(), c, n * s, splits, width.values());
        params.splits = splits as u32;
        params.chunk = chunk as u32;
        let stats = width.pick(&STATS, &STATS4);
        if splits == 1 {
            ctx.dispatch(
                stats,
                &params,
                &[x.binding(), mean.binding(), invstd.binding(), rm.binding(), rv.binding()],
                grid_1d(c, 1),
            )?;
        } else {
            let pmean = Tensor::uninit(ctx, &[c * splits], DType::F32)?;
            let pss = Tensor::uninit(ctx, &[c * splits], DType::F32)?;
            ctx.dispatch(
                stats,
                &params,
                &[x.binding(), pmean.binding(), pss.binding(), rm.binding(), rv.binding()],
                grid_1d(c * splits, 1),
            )?;
            ctx.dispatch(
                &STATS_COMBINE,
                &params,
                &[pmean.binding(), pss.binding(), mean.binding(), invstd.binding(), rm.binding(), rv.binding()],
                grid_1d(c, WG_1D),
            )?;
        }
    } else {
        let Some((rm, rv)) = args.running else {
            return Err(Error::Shape(format!("{op}: eval mode needs running_mean and running_var (x {:?})", x.shape())));
        };
        ctx.dispatch(
            &EVAL_STATS,
            &params,
            &[rm.binding(), rv.binding(), mean.binding(), invstd.binding()],
            grid_1d(c, WG_1D),
        )?;
    }
    Ok((mean, invstd, params))
}

/// Batch norm backward. x, gy: like the forward's x; gamma: `[channels]` when affine.
/// Training: gx = gamma * invstd / M * (M * gy - sum(gy) - xhat * sum(gy * xhat)), M = N * H * W;
/// eval: gx = gamma * invstd * gy. ggamma = sum(gy * xhat), gbeta = sum(gy) per channel.
pub fn batch_norm_backward(x: &Tensor, gy: &Tensor, gamma: Option<&Tensor>, saved: &BatchNormSaved) -> Result<BatchNormGrads> {
    batch_norm_backward_split(x, gy, gamma, saved, None)
}

/// [`batch_norm_backward`] with the reduction split `splits` ways per channel (`None`: by adapter).
pub(crate) fn batch_norm_backward_split(
    x: &Tensor,
    gy: &Tensor,
    gamma: Option<&Tensor>,
    saved: &BatchNormSaved,
    splits: Option<usize>,
) -> Result<BatchNormGrads> {
    let op = "batch_norm_backward";
    let (n, c, s) = dims(x.shape(), op)?;
    if gy.shape() != x.shape() || gy.dtype() != DType::F32 || x.dtype() != DType::F32 {
        return Err(Error::Shape(format!(
            "{op}: x {:?} {:?} and gy {:?} {:?} must be f32 of one shape",
            x.dtype(),
            x.shape(),
            gy.dtype(),
            gy.shape()
        )));
    }
    x.expect_same_context(gy, op)?;
    expect_channel_vec(&saved.mean, "saved mean", c, x, op)?;
    expect_channel_vec(&saved.invstd, "saved invstd", c, x, op)?;
    if let Some(g) = gamma {
        expect_channel_vec(g, "gamma", c, x, op)?;
    }
    let ctx = x.context();
    let mut params = Params {
        batch: n as u32,
        channels: c as u32,
        spatial: s as u32,
        flags: gamma.is_some() as u32 | (saved.training as u32) << 1,
        eps: 0.0,
        momentum: 0.0,
        total: x.numel() as u32,
        slope: 0.0,
        ..Default::default()
    };
    let width = Width::of(s);
    let (splits, chunk) = chunking(ctx.is_cpu_adapter(), c, n * s, splits, width.values());
    params.splits = splits as u32;
    params.chunk = chunk as u32;
    // With a fused activation both passes read its derivative off y (gz = gy * act'(y)); without
    // one, y is bound to x, which the kernels never read as y.
    let y = match &saved.activated {
        Some((y, slope)) => {
            if y.shape() != x.shape() {
                return Err(Error::Shape(format!("{op}: saved output {:?} for x {:?}", y.shape(), x.shape())));
            }
            params.flags |= 4;
            params.slope = *slope;
            y.clone()
        }
        None => x.clone(),
    };
    // Chunk sums go to [2, channels * splits] partials, summed into `sums`, gbeta and ggamma after.
    let partial = Tensor::uninit(ctx, &[2, c * splits], DType::F32)?;
    ctx.dispatch(
        width.pick(&BACKWARD_REDUCE, &BACKWARD_REDUCE4),
        &params,
        &[
            x.binding(),
            gy.binding(),
            saved.mean.binding(),
            saved.invstd.binding(),
            partial.binding(),
            y.binding(),
        ],
        grid_1d(c * splits, 1),
    )?;
    let (sums, gbeta, ggamma) = combine_backward_sums(ctx, &params, &partial, c)?;
    let gx = Tensor::uninit(ctx, x.shape(), DType::F32)?;
    let g = gamma.unwrap_or(&saved.mean);
    ctx.dispatch(
        width.pick(&BACKWARD_DX, &BACKWARD_DX4),
        &params,
        &[
            x.binding(),
            gy.binding(),
            saved.mean.binding(),
            saved.invstd.binding(),
            g.binding(),
            sums.binding(),
            y.binding(),
            gx.binding(),
        ],
        grid_1d(x.numel().div_ceil(RUN), WG_1D),
    )?;
    let affine = gamma.is_some();
    Ok(BatchNormGrads { gx, ggamma: affine.then_some(ggamma), gbeta: affine.then_some(gbeta) })
}

/// The backward reduction's [2, channels * splits] chunk sums added up in chunk order: `sums`
/// [2, channels] (sum(gz), then sum(gz * xhat), one binding for the dx pass), and gbeta / ggamma
/// [channels] (a dispatch rather than buffer copies, which would end the step's compute pass).
fn combine_backward_sums(ctx: &Context, params: &Params, partial: &Tensor, c: usize) -> Result<(Tensor, Tensor, Tensor)> {
    let sums = Tensor::uninit(ctx, &[2, c], DType::F32)?;
    let gbeta = Tensor::uninit(ctx, &[c], DType::F32)?;
    let ggamma = Tensor::uninit(ctx, &[c], DType::F32)?;
    ctx.dispatch(
        &BACKWARD_COMBINE,
        params,
        &[partial.binding(), sums.binding(), gbeta.binding(), ggamma.binding()],
        grid_1d(c, WG_1D),
    )?;
    Ok((sums, gbeta, ggamma))
}

/// Plain-Rust f64 reference. Shapes as the GPU functions; `dims` = (batch, channels, spatial).
pub mod cpu {
    fn at(dims: (usize, usize, usize), c: usize, j: usize) -> usize {
        let (_, ch, s) = dims;
        ((j / s) * ch + c) * s + j % s
    }

    /// Training statistics: (mean, invstd, unbiased variance) per channel.
    pub fn batch_stats(x: &[f64], dims: (usize, usize, usize), eps: f64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let m = dims.0 * dims.2;
        let mut out = (vec![], vec![], vec![]);
        for c in 0..dims.1 {
            let mean = (0..m).map(|j| x[at(dims, c, j)]).sum::<f64>() / m as f64;
            let ss: f64 = (0..m).map(|j| (x[at(dims, c, j)] - mean).powi(2)).sum();
            out.0.push(mean);
            out.1.push(1.0 / (ss / m as f64 + eps).sqrt());
            out.2.push(ss / (m as f64 - 1.0));
        }
        out
    }

    /// y = (x - mean) * invstd * gamma + beta.
    pub fn normalize(
        x: &[f64],
        dims: (usize, usize, usize),
        mean: &[f64],
        invstd: &[f64],
        affine: Option<(&[f64], &[f64])>,
    ) -> Vec<f64> {
        x.iter()
            .enumerate()
            .map(|(i, &v)| {
                let c = (i / dims.2) % dims.1;
                let xhat = (v - mean[c]) * invstd[c];
                match affine {
                    Some((g, b)) => xhat * g[c] + b[c],
                    None => xhat,
                }
            })
            .collect()
    }

    /// Training-mode forward with batch statistics.
    pub fn batch_norm_train(x: &[f64], dims: (usize, usize, usize), affine: Option<(&[f64], &[f64])>, eps: f64) -> Vec<f64> {
        let (mean, invstd, _) = batch_stats(x, dims, eps);
        normalize(x, dims, &mean, &invstd, affine)
    }

    /// `running = (1 - momentum) * running + momentum * batch_stat`, unbiased variance.
    pub fn update_running(rm: &mut [f64], rv: &mut [f64], mean: &[f64], var_unbiased: &[f64], momentum: f64) {
        for c in 0..rm.len() {
            rm[c] = (1.0 - momentum) * rm[c] + momentum * mean[c];
            rv[c] = (1.0 - momentum) * rv[c] + momentum * var_unbiased[c];
        }
    }

    /// (gx, ggamma, gbeta); gamma `None` means not affine (gamma = 1).
    pub fn batch_norm_backward(
        x: &[f64],
        gy: &[f64],
        dims: (usize, usize, usize),
        gamma: Option<&[f64]>,
        mean: &[f64],
        invstd: &[f64],
        training: bool,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let m = dims.0 * dims.2;
        let (mut gbeta, mut ggamma) = (vec![0.0; dims.1], vec![0.0; dims.1]);
        for c in 0..dims.1 {
            for j in 0..m {
                let k = at(dims, c, j);
                gbeta[c] += gy[k];
                ggamma[c] += gy[k] * (x[k] - mean[c]) * invstd[c];
            }
        }
        let gx = x
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let c = (i / dims.2) % dims.1;
                let scale = invstd[c] * gamma.map_or(1.0, |g| g[c]);
                if training {
                    let xhat = (v - mean[c]) * invstd[c];
                    scale / m as f64 * (m as f64 * gy[i] - gbeta[c] - xhat * ggamma[c])
                } else {
                    scale * gy[i]
                }
            })
            .collect();
        (gx, ggamma, gbeta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu_or_skip;
    use crate::testing::{assert_close, assert_close_f64, numeric_vjp, to_f32, TestRng};

    /// 1-d and 2-d shapes: a channel count that is not a power of two, M = N * H * W both below and
    /// above the 256-thread reduction workgroup (and not a multiple of it), and batch 2; planes
    /// smaller and larger than the reductions' 256-value stride (1, 63, 143, 323 values), so their
    /// walks step by whole samples and carry within a plane; the elementwise kernels' 8-value runs
    /// cross channels and samples in every shape.
    const SPLITS: [Option<usize>; 3] = [None, Some(4), Some(64)];

    #[test]
    fn reductions_split_to_fill_a_gpu_and_cover_every_value_once() {
        // LeNet conv1 at batch 1024 on a GPU: 8 channels must not mean 8 workgroups.
        let (splits, chunk) = chunking(false, 8, 1024 * 24 * 24, None, 1);
        assert!(8 * splits >= 1024 && chunk >= RWG * 16, "{splits} splits of {chunk}");
        assert_eq!(chunking(true, 8, 1024 * 24 * 24, None, 4).0, 1, "a CPU adapter keeps one workgroup per channel");
        for (cpu, c, m, forced, align) in [
            (false, 1, 1, None, 1),
            (false, 3, 5, Some(64), 1),
            (true, 1, 1_000_003, None, 1),
            (false, 512, 7, None, 1),
            (false, 2, 4097, Some(4), 1),
            (false, 3, 28, Some(64), 4),
            (false, 2, 4100, Some(3), 4),
            (false, 8, 1024 * 28 * 28, None, 4),
        ] {
            let (splits, chunk) = chunking(cpu, c, m, forced, align);
            assert!(splits >= 1 && (splits - 1) * chunk < m && splits * chunk >= m, "{m} values: {splits} x {chunk}");
            assert_eq!(chunk % align, 0, "{m} values: chunk {chunk} not a multiple of {align}");
        }
    }

    fn shapes() -> Vec<Vec<usize>> {
        vec![
            vec![5, 3],
            vec![37, 2],
            vec![3, 5, 7, 9],
            vec![2, 3, 13, 11],
            vec![4, 1, 1, 1],
            vec![2, 3, 17, 19],
            // Planes a multiple of 4 wide (the vec4 kernels): 7 vec4s, 80 (past the 256-thread
            // stride in values, not in vec4s), 288 (past it in vec4s) and 1 (every vec4 its own
            // channel).
            vec![3, 5, 4, 7],
            vec![2, 3, 20, 16],
            vec![2, 2, 36, 32],
            vec![9, 2, 2, 2],
        ]
    }

    fn dims_of(shape: &[usize]) -> (usize, usize, usize) {
        dims(shape, "test").unwrap()
    }

    // Tolerances: the per-channel sums run over at most ~300 values whose mean is offset from 0,
    // so f32 rounding of the statistics gives ~1e-6 relative error in xhat; 2e-5 abs + 2e-5 rel.
    const ATOL: f64 = 2e-5;
    const RTOL: f64 = 2e-5;

    #[test]
    fn training_forward_backward_and_running_stats_match_cpu() {
        let ctx = gpu_or_skip!();
        let mut rng = TestRng::new(21);
        for shape in shapes() {
            let d = dims_of(&shape);
            // Forced splits cover the multi-workgroup reduction (a GPU's) and its combine pass on
            // any adapter: 4 leaves a shorter last chunk on most shapes, 64 gives 1-value chunks.
            for (affine, splits) in [false, true].into_iter().flat_map(|a| SPLITS.map(move |s| (a, s))) {
                let what = format!("{shape:?} affine {affine} splits {splits:?}");
                let x = rng.vec(shape.iter().product(), 1.0, 4.0); // mean far from 0, as real activations
                let gamma = rng.vec(d.1, 0.5, 1.5);
                let beta = rng.vec(d.1, -1.0, 1.0);
                let mut rm = rng.vec(d.1, -0.5, 0.5);
                let mut rv = rng.vec(d.1, 0.5, 2.0);
                let xt = Tensor::from_slice(&ctx, &shape, &to_f32(&x)).unwrap();
                let gt = Tensor::from_slice(&ctx, &[d.1], &to_f32(&gamma)).unwrap();
                let bt = Tensor::from_slice(&ctx, &[d.1], &to_f32(&beta)).unwrap();
                let rmt = Tensor::from_slice(&ctx, &[d.1], &to_f32(&rm)).unwrap();
                let rvt = Tensor::from_slice(&ctx, &[d.1], &to_f32(&rv)).unwrap();
                let args = BatchNormArgs {
                    affine: affine.then_some((&gt, &bt)),
                    running: Some((&rmt, &rvt)),
                    training: true,
                    momentum: 0.1,
                    eps: 1e-5,
                    epilogue: Epilogue::Identity,
                };
                let (y, saved) = batch_norm_split(&xt, &args, splits).unwrap();
                let aff = affine.then_some((gamma.as_slice(), beta.as_slice()));
                let (mean, invstd, var_u) = cpu::batch_stats(&x, d, 1e-5);
                assert_close(&format!("{what} y"), &y.to_vec().unwrap(), &cpu::normalize(&x, d, &mean, &invstd, aff), ATOL, RTOL);
                assert_close(&format!("{what} mean"), &saved.mean.to_vec().unwrap(), &mean, ATOL, RTOL);
                assert_close(&format!("{what} invstd"), &saved.invstd.to_vec().unwrap(), &invstd, ATOL, RTOL);
                cpu::update_running(&mut rm, &mut rv, &mean, &var_u, 0.1);
                assert_close(&format!("{what} running_mean"), &rmt.to_vec().unwrap(), &rm, ATOL, RTOL);
                assert_close(&format!("{what} running_var"), &rvt.to_vec().unwrap(), &rv, ATOL, RTOL);

                let gy = rng.vec(x.len(), -1.0, 1.0);
                let gyt = Tensor::from_slice(&ctx, &shape, &to_f32(&gy)).unwrap();
                let grads = batch_norm_backward_split(&xt, &gyt, affine.then_some(&gt), &saved, splits).unwrap();
                let gam = affine.then_some(gamma.as_slice());
                let (gx, gg, gb) = cpu::batch_norm_backward(&x, &gy, d, gam, &mean, &invstd, true);
                // gx subtracts two per-channel sums from M * gy: cancellation costs a little more.
                assert_close(&format!("{what} gx"), &grads.gx.to_vec().unwrap(), &gx, 1e-4, 1e-4);
                assert_eq!(grads.ggamma.is_some(), affine);
                if affine {
                    assert_close(&format!("{what} ggamma"), &grads.ggamma.unwrap().to_vec().unwrap(), &gg, 1e-4, 1e-4);
                    assert_close(&format!("{what} gbeta"), &grads.gbeta.unwrap().to_vec().unwrap(), &gb, 1e-4, 1e-4);
                }
            }
        }
    }

    /// Values 1e4 from 0 with spread ~1: E[x^2] - E[x]^2 in f32 would lose the variance entirely
    /// (1e8 at 6e-8 relative rounding). The one-pass shifted sums and Chan merges must keep it: the
    /// f32 mean is good to ~1e-3 absolute (1e4 * ulp), the variance to 1e-4 relative; invstd
    /// checked at 2e-4 relative. Planes of 143 (scalar kernel) and 256 values (vec4), every split.
    #[test]
    fn statistics_keep_the_variance_when_the_mean_dwarfs_it() {
        let ctx = gpu_or_skip!();
        let mut rng = TestRng::new(23);
        for shape in [vec![40, 2, 11, 13], vec![48, 3, 16, 16]] {
            let d = dims_of(&shape);
            let x: Vec<f64> = rng.vec(shape.iter().product(), -1.7, 1.7).into_iter().map(|v| 1e4 + v).collect();
            // The f64 reference of the f32 values the GPU sees.
            let x32 = to_f32(&x);
            let xr: Vec<f64> = x32.iter().map(|&v| v as f64).collect();
            let (mean, invstd, _) = cpu::batch_stats(&xr, d, 1e-5);
            let xt = Tensor::from_slice(&ctx, &shape, &x32).unwrap();
            for splits in SPLITS {
                let args =
                    BatchNormArgs { affine: None, running: None, training: true, momentum: 0.1, eps: 1e-5, epilogue: Epilogue::Identity };
                let (_, saved) = batch_norm_split(&xt, &args, splits).unwrap();
                let what = format!("{shape:?} splits {splits:?}");
                assert_close(&format!("{what} mean"), &saved.mean.to_vec().unwrap(), &mean, 2e-3, 0.0);
                assert_close(&format!("{what} invstd"), &saved.invstd.to_vec().unwrap(), &invstd, 0.0, 2e-4);
            }
        }
    }

    #[test]
    fn eval_mode_uses_running_stats_and_training_without_them_updates_nothing() {
        let ctx = gpu_or_skip!();
        let mut rng = TestRng::new(22);
        let shape = [3, 4, 5, 3];
        let d = dims_of(&shape);
        let x = rng.vec(shape.iter().product(), -2.0, 2.0);
        let (gamma, beta) = (rng.vec(4, 0.5, 1.5), rng.vec(4, -1.0, 1.0));
        let (rm, rv) = (rng.vec(4, -0.5, 0.5), rng.vec(4, 0.5, 2.0));
        let xt = Tensor::from_slice(&ctx, &shape, &to_f32(&x)).unwrap();
        let gt = Tensor::from_slice(&ctx, &[4], &to_f32(&gamma)).unwrap();
        let bt = Tensor::from_slice(&ctx, &[4], &to_f32(&beta)).unwrap();
        let rmt = Tensor::from_slice(&ctx, &[4], &to_f32(&rm)).unwrap();
        let rvt = Tensor::from_slice(&ctx, &[4], &to_f32(&rv)).unwrap();
        let args = BatchNormArgs {
            affine: Some((&gt, &bt)),
            running: Some((&rmt, &rvt)),
            training: false,
            momentum: 0.1,
            eps: 1e-3,
            epilogue: Epilogue::Identity,
        };
        let (y, saved) = batch_norm(&xt, &args).unwrap();
        let invstd: Vec<f64> = rv.iter().map(|v| 1.0 / (v + 1e-3).sqrt()).collect();
        let aff = Some((gamma.as_slice(), beta.as_slice()));
        assert_close("eval y", &y.to_vec().unwrap(), &cpu::normalize(&x, d, &rm, &invstd, aff), 1e-5, 1e-5);
        assert_close("eval leaves running_mean", &rmt.to_vec().unwrap(), &rm, 0.0, 0.0);
        let gy = rng.vec(x.len(), -1.0, 1.0);
        let gyt = Tensor::from_slice(&ctx, &shape, &to_f32(&gy)).unwrap();
        let grads = batch_norm_backward(&xt, &gyt, Some(&gt), &saved).unwrap();
        let (gx, gg, gb) = cpu::batch_norm_backward(&x, &gy, d, Some(&gamma), &rm, &invstd, false);
        assert_close("eval gx", &grads.gx.to_vec().unwrap(), &gx, 1e-5, 1e-5);
        assert_close("eval ggamma", &grads.ggamma.unwrap().to_vec().unwrap(), &gg, 1e-4, 1e-4);
        assert_close("eval gbeta", &grads.gbeta.unwrap().to_vec().unwrap(), &gb, 1e-4, 1e-4);

        let args = BatchNormArgs { affine: None, running: None, training: true, momentum: 0.1, eps: 1e-5, epilogue: Epilogue::Identity };
        let (y, _) = batch_norm(&xt, &args).unwrap();
        assert_close("untracked y", &y.to_vec().unwrap(), &cpu::batch_norm_train(&x, d, None, 1e-5), ATOL, RTOL);
    }

    /// The fused leaky ReLU (slope 0.1, and 0 = ReLU), training and eval, affine or not: y is
    /// the reference's normalised output through the activation, and the gradients are the
    /// reference's batch-norm backward of gy times the activation's derivative.
    #[test]
    fn fused_activation_matches_cpu() {
        let ctx = gpu_or_skip!();
        let mut rng = TestRng::new(23);
        let mut sides = [false; 2];
        for (i, shape) in shapes().into_iter().enumerate() {
            let d = dims_of(&shape);
            for (affine, training) in [(false, true), (true, true), (true, false)] {
                let slope = [0.1, 0.0][i % 2];
                let splits = SPLITS[i % SPLITS.len()];
                let what = format!("{shape:?} affine {affine} training {training} slope {slope} splits {splits:?}");
                let x = rng.vec(shape.iter().product(), 1.0, 4.0);
                let gamma = rng.vec(d.1, 0.5, 1.5);
                let beta = rng.vec(d.1, -1.0, 1.0);
                let (rm, rv) = (rng.vec(d.1, 1.0, 4.0), rng.vec(d.1, 0.5, 2.0));
                let xt = Tensor::from_slice(&ctx, &shape, &to_f32(&x)).unwrap();
                let gt = Tensor::from_slice(&ctx, &[d.1], &to_f32(&gamma)).unwrap();
                let bt = Tensor::from_slice(&ctx, &[d.1], &to_f32(&beta)).unwrap();
                let rmt = Tensor::from_slice(&ctx, &[d.1], &to_f32(&rm)).unwrap();
                let rvt = Tensor::from_slice(&ctx, &[d.1], &to_f32(&rv)).unwrap();
                let args = BatchNormArgs {
                    affine: affine.then_some((&gt, &bt)),
                    running: (!training).then_some((&rmt, &rvt)),
                    training,
                    momentum: 0.1,
                    eps: 1e-5,
                    epilogue: Epilogue::LeakyRelu(slope),
                };
                let (y, saved) = batch_norm_split(&xt, &args, splits).unwrap();
                let (mean, invstd) = if training {
                    let (m, s, _) = cpu::batch_stats(&x, d, 1e-5);
                    (m, s)
                } else {
                    (rm.clone(), rv.iter().map(|v| 1.0 / (v + 1e-5).sqrt()).collect())
                };
                let aff = affine.then_some((gamma.as_slice(), beta.as_slice()));
                let mut want = cpu::normalize(&x, d, &mean, &invstd, aff);
                crate::conv2d::cpu::epilogue(&mut want, Epilogue::LeakyRelu(slope));
                let got = y.to_vec().unwrap();
                assert_close(&format!("{what} y"), &got, &want, ATOL, RTOL);
                sides[0] |= want.iter().any(|v| *v > 0.0);
                sides[1] |= want.iter().any(|v| *v < 0.0);

                let gy = rng.vec(x.len(), -1.0, 1.0);
                let gz: Vec<f64> = gy.iter().zip(&want).map(|(g, y)| if *y > 0.0 { *g } else { g * slope as f64 }).collect();
                let gyt = Tensor::from_slice(&ctx, &shape, &to_f32(&gy)).unwrap();
                let grads = batch_norm_backward_split(&xt, &gyt, affine.then_some(&gt), &saved, splits).unwrap();
                let gam = affine.then_some(gamma.as_slice());
                let (gx, gg, gb) = cpu::batch_norm_backward(&x, &gz, d, gam, &mean, &invstd, training);
                assert_close(&format!("{what} gx"), &grads.gx.to_vec().unwrap(), &gx, 1e-4, 1e-4);
                if affine {
                    assert_close(&format!("{what} ggamma"), &grads.ggamma.unwrap().to_vec().unwrap(), &gg, 1e-4, 1e-4);
                    assert_close(&format!("{what} gbeta"), &grads.gbeta.unwrap().to_vec().unwrap(), &gb, 1e-4, 1e-4);
                }
            }
        }
        assert_eq!(sides, [true, true], "outputs on both sides of zero");
    }

    #[test]
    fn cpu_backward_matches_central_differences() {
        let mut rng = TestRng::new(23);
        for shape in [vec![4, 3], vec![2, 2, 3, 3]] {
            let d = dims_of(&shape);
            let x = rng.vec(shape.iter().product(), -2.0, 2.0);
            let gamma = rng.vec(d.1, 0.5, 1.5);
            let beta = rng.vec(d.1, -1.0, 1.0);
            let w = rng.vec(x.len(), -1.0, 1.0);
            let eps = 1e-5;
            let (mean, invstd, _) = cpu::batch_stats(&x, d, eps);
            let (gx, gg, gb) = cpu::batch_norm_backward(&x, &w, d, Some(&gamma), &mean, &invstd, true);
            // Smooth function of x, f64 central differences with step 1e-6: ~1e-8 accurate.
            let nx = numeric_vjp(|x| cpu::batch_norm_train(x, d, Some((&gamma, &beta)), eps), &x, &w, 1e-6);
            assert_close_f64(&format!("{shape:?} gx"), &gx, &nx, 1e-7, 1e-6);
            let ng = numeric_vjp(|g| cpu::batch_norm_train(&x, d, Some((g, &beta)), eps), &gamma, &w, 1e-6);
            assert_close_f64(&format!("{shape:?} ggamma"), &gg, &ng, 1e-7, 1e-6);
            let nb = numeric_vjp(|b| cpu::batch_norm_train(&x, d, Some((&gamma, b)), eps), &beta, &w, 1e-6);
            assert_close_f64(&format!("{shape:?} gbeta"), &gb, &nb, 1e-7, 1e-6);
            // Eval mode: statistics are constants.
            let rv = rng.vec(d.1, 0.5, 2.0);
            let inv: Vec<f64> = rv.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
            let (gx, _, _) = cpu::batch_norm_backward(&x, &w, d, Some(&gamma), &mean, &inv, false);
            let nx = numeric_vjp(|x| cpu::normalize(x, d, &mean, &inv, Some((&gamma, &beta))), &x, &w, 1e-6);
            assert_close_f64(&format!("{shape:?} eval gx"), &gx, &nx, 1e-7, 1e-6);
        }
    }

    #[test]
    fn bad_inputs_are_named() {
        let ctx = gpu_or_skip!();
        let x = Tensor::zeros(&ctx, &[2, 3, 4]).unwrap();
        let args = BatchNormArgs { affine: None, running: None, training: true, momentum: 0.1, eps: 1e-5, epilogue: Epilogue::Identity };
        let err = batch_norm(&x, &args).unwrap_err().to_string();
        assert!(err.contains("[2, 3, 4]"), "{err}");
        let x = Tensor::zeros(&ctx, &[2, 3, 4, 4]).unwrap();
        let g = Tensor::zeros(&ctx, &[4]).unwrap();
        let err = batch_norm(&x, &BatchNormArgs { affine: Some((&g, &g)), ..args }).unwrap_err().to_string();
        assert!(err.contains("gamma") && err.contains("[3]") && err.contains("[4]") && err.contains("[2, 3, 4, 4]"), "{err}");
        let err = batch_norm(&x, &BatchNormArgs { training: false, ..args }).unwrap_err().to_string();
        assert!(err.contains("eval mode"), "{err}");
        let one = Tensor::zeros(&ctx, &[1, 3]).unwrap();
        let err = batch_norm(&one, &args).unwrap_err().to_string();
        assert!(err.contains("more than one value") && err.contains("[1, 3]"), "{err}");
        let (_, saved) = batch_norm(&x, &args).unwrap();
        let gy = Tensor::zeros(&ctx, &[2, 3, 4, 5]).unwrap();
        let err = batch_norm_backward(&x, &gy, None, &saved).unwrap_err().to_string();
        assert!(err.contains("[2, 3, 4, 4]") && err.contains("[2, 3, 4, 5]"), "{err}");
    }
}
