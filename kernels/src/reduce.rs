//! Reductions over one axis or the whole tensor: sum, mean, max (with argmax) and variance,
//! forward and backward. WGSL: `shaders/reduce.wgsl`. CPU reference: [`cpu`].
//!
//! The tensor is viewed as `[outer, len, inner]` around the reduced axis (`[1, numel, 1]` for a
//! full reduction). Many outputs run one thread each; long axes with few outputs run workgroup
//! trees over chunks of the axis, folded again until one value per output is left. No atomics:
//! results are identical run to run.

use bytemuck::{Pod, Zeroable};

use crate::error::{Error, Result};
use crate::kernel::{grid_1d, KernelSpec, R, RW, WG_1D};
use crate::tensor::{DType, Tensor};

const SRC: &str = include_str!("../../shaders/reduce.wgsl");
const ROWS: KernelSpec = KernelSpec { id: "reduce.rows", source: SRC, entry: "rows", bindings: &[R, R, R, RW, RW] };
const PARTIAL: KernelSpec =
    KernelSpec { id: "reduce.partial", source: SRC, entry: "partial", bindings: &[R, R, R, RW, RW] };
const BACKWARD: KernelSpec =
    KernelSpec { id: "reduce.backward", source: SRC, entry: "backward", bindings: &[R, R, R, R, RW] };

/// Axis elements one `partial` workgroup (256 threads) folds: 8 per thread, so a full reduction
/// of 1e6 elements runs 489 workgroups, then one more to fold their partials.
const CHUNK: usize = 2048;

/// What to reduce with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    Sum,
    Mean,
    /// The largest value; ties go to the first (lowest-index) maximum.
    Max,
    /// Mean squared deviation from the mean, divided by `len - 1` when `unbiased`, else `len`.
    Var { unbiased: bool },
}

/// Kernel op codes (see `reduce.wgsl`).
const OP_SUM: u32 = 0;
const OP_MAX: u32 = 1;
const OP_SQDEV: u32 = 2;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct Params {
    outer: u32,
    len: u32,
    inner: u32,
    op: u32,
    chunk: u32,
    chunks: u32,
    flags: u32,
    outputs: u32,
    scale: f32,
    pad: [u32; 3],
}

/// A tensor seen around its reduced axis.
#[derive(Clone, Debug, PartialEq, Eq)]
struct View {
    outer: usize,
    len: usize,
    inner: usize,
    out_shape: Vec<usize>,
}

impl View {
    fn outputs(&self) -> usize {
        self.outer * self.inner
    }
}

fn view(shape: &[usize], axis: Option<usize>, keepdim: bool) -> Result<View> {
    match axis {
        None => Ok(View {
            outer: 1,
            len: shape.iter().product(),
            inner: 1,
            out_shape: if keepdim { vec![1; shape.len()] } else { vec![] },
        }),
        Some(a) if a >= shape.len() => Err(Error::Shape(format!(
            "reduce axis {a} is out of range for shape {shape:?} ({} dimensions)",
            shape.len()
        ))),
        Some(a) => {
            let mut out_shape = shape.to_vec();
            if keepdim {
                out_shape[a] = 1;
            } else {
                out_shape.remove(a);
            }
            Ok(View {
                outer: shape[..a].iter().product(),
                len: shape[a],
                inner: shape[a + 1..].iter().product(),
                out_shape,
            })
        }
    }
}

/// How a reduction is laid out on the GPU; tests force each path on the same shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    /// One thread per (output, chunk of `chunk` axis elements), no workgroup memory.
    Rows { chunk: usize },
    /// One 256-thread workgroup tree per (output, chunk of `chunk` axis elements).
    Tree { chunk: usize },
}

/// Axis elements one `rows` thread folds when outputs are too few to occupy the device alone:
/// a full reduction of 1e6 elements runs 245 threads, then one to fold their partials.
const ROW_CHUNK: usize = 4096;

/// On software drivers a workgroup barrier costs more than the arithmetic (measured on lavapipe,
/// 1e6-element sum: trees 49 ms, barrier-free chunked rows a few ms), so they always take rows,
/// chunked when there are fewer outputs than SIMD lanes to fill. GPUs take trees where each
/// output's axis is long and either contiguous (inner == 1: a workgroup reads it coalesced) or
/// there are too few outputs to keep the GPU busy with one thread each.
fn auto_path(v: &View, cpu_adapter: bool) -> Path {
    if cpu_adapter {
        Path::Rows { chunk: if v.outputs() >= 256 { v.len } else { ROW_CHUNK } }
    } else if v.len > 64 && (v.inner == 1 || v.outputs() <= 4096) {
        Path::Tree { chunk: CHUNK }
    } else {
        Path::Rows { chunk: v.len }
    }
}

fn expect_f32(t: &Tensor, op: &str) -> Result<()> {
    if t.dtype() != DType::F32 {
        return Err(Error::Shape(format!("{op} needs an f32 tensor, got {:?} {:?}", t.dtype(), t.shape())));
    }
    Ok(())
}

/// Reduces `x` seen as `v` with kernel op `op`, multiplying the result by `scale`.
/// `centre` (one value per output) is read by OP_SQDEV. Returns values `[outputs]` and, for
/// OP_MAX, the argmax along the axis `[outputs]`.
fn run(x: &Tensor, v: &View, op: u32, scale: f32, centre: Option<&Tensor>, path: Path) -> Result<(Tensor, Option<Tensor>)> {
    let ctx = x.context();
    let outputs = v.outputs();
    let want_idx = op == OP_MAX;
    let mut base = Params {
        outer: v.outer as u32,
        len: v.len as u32,
        inner: v.inner as u32,
        op,
        chunks: 1,
        outputs: outputs as u32,
        scale,
        ..Default::default()
    };
    // Unused bindings still need a buffer: x stands in for read-only ones, a one-element tensor
    // for the argmax output of ops that have none.
    let spare = Tensor::uninit(ctx, &[1], DType::U32)?;
    let centre = centre.unwrap_or(x);
    let (spec, chunk) = match path {
        Path::Rows { chunk } => (&ROWS, chunk),
        Path::Tree { chunk } => (&PARTIAL, chunk),
    };
    let chunk = chunk.clamp(1, u32::MAX as usize) as u32;
    // First pass over x, then fold partials [outputs, chunks] until one per output remains.
    let (mut input, mut input_idx) = (x.clone(), None::<Tensor>);
    loop {
        let chunks = base.len.div_ceil(chunk).max(1);
        let last = chunks == 1;
        let params = Params { chunk, chunks, scale: if last { scale } else { 1.0 }, ..base };
        let n = outputs * chunks as usize;
        let out = Tensor::uninit(ctx, &[n], DType::F32)?;
        let idx = if want_idx { Tensor::uninit(ctx, &[n], DType::U32)? } else { spare.clone() };
        let xi = input_idx.as_ref().unwrap_or(&input);
        let bindings = [input.binding(), xi.binding(), centre.binding(), out.binding(), idx.binding()];
        let groups = if spec.id == PARTIAL.id { grid_1d(n, 1) } else { grid_1d(n, WG_1D) };
        ctx.dispatch(spec, &params, &bindings, groups)?;
        if last {
            return Ok((out, want_idx.then_some(idx)));
        }
        // Partials are summed (sum and squared deviations) or maxed with their carried indices.
        base = Params {
            outer: outputs as u32,
            len: chunks,
            inner: 1,
            op: if want_idx { OP_MAX } else { OP_SUM },
            flags: want_idx as u32,
            ..base
        };
        input = out;
        input_idx = want_idx.then_some(idx);
    }
}

fn reduce_on(x: &Tensor, axis: Option<usize>, op: Reduce, keepdim: bool, path: Option<Path>) -> Result<(Tensor, Option<Tensor>)> {
    expect_f32(x, "reduce")?;
    let v = view(x.shape(), axis, keepdim)?;
    let ctx = x.context();
    if v.outputs() == 0 {
        let idx = (op == Reduce::Max).then(|| Tensor::uninit(ctx, &v.out_shape, DType::U32)).transpose()?;
        return Ok((Tensor::uninit(ctx, &v.out_shape, DType::F32)?, idx));
    }
    let min_len = match op {
        Reduce::Sum => 0,
        Reduce::Var { unbiased: true } => 2,
        _ => 1,
    };
    if v.len < min_len {
        return Err(Error::Shape(format!(
            "{op:?} over axis {axis:?} of shape {:?} needs at least {min_len} elements, the axis has {}",
            x.shape(),
            v.len
        )));
    }
    if v.len == 0 {
        return Ok((Tensor::zeros(ctx, &v.out_shape)?, None));
    }
    let path = path.unwrap_or_else(|| auto_path(&v, ctx.is_cpu_adapter()));
    let len = v.len as f32;
    let (out, idx) = match op {
        Reduce::Sum => run(x, &v, OP_SUM, 1.0, None, path)?,
        Reduce::Mean => run(x, &v, OP_SUM, 1.0 / len, None, path)?,
        Reduce::Max => run(x, &v, OP_MAX, 1.0, None, path)?,
        Reduce::Var { unbiased } => {
            let (mean, _) = run(x, &v, OP_SUM, 1.0 / len, None, path)?;
            let denom = if unbiased { len - 1.0 } else { len };
            run(x, &v, OP_SQDEV, 1.0 / denom, Some(&mean), path)?
        }
    };
    let idx = idx.map(|i| i.reshape(&v.out_shape)).transpose()?;
    Ok((out.reshape(&v.out_shape)?, idx))
}

/// Reduces `x` over `axis` (every element when `None`), keeping the reduced dimension as size 1
/// when `keepdim`. x: any shape; returns x's shape without `axis` (or `[]` for a full reduction).
pub fn reduce(x: &Tensor, axis: Option<usize>, op: Reduce, keepdim: bool) -> Result<Tensor> {
    Ok(reduce_on(x, axis, op, keepdim, None)?.0)
}

/// The maximum over `axis` and its position along that axis (a U32 tensor of the same shape);
/// for a full reduction the position is the flat (row-major) index. Ties give the first maximum.
pub fn max_with_argmax(x: &Tensor, axis: Option<usize>, keepdim: bool) -> Result<(Tensor, Tensor)> {
    let (values, idx) = reduce_on(x, axis, Reduce::Max, keepdim, None)?;
    Ok((values, idx.expect("max returns indices")))
}

/// Runs the backward kernel: one thread per element of `x_shape`.
fn backward_on(
    x: &Tensor,
    gy: &Tensor,
    centre: Option<&Tensor>,
    idx: Option<&Tensor>,
    v: &View,
    op: u32,
    scale: f32,
) -> Result<Tensor> {
    let ctx = gy.context();
    let n = v.outer * v.len * v.inner;
    let shape: Vec<usize> = x.shape().to_vec();
    let gx = Tensor::uninit(ctx, &shape, DType::F32)?;
    let params = Params {
        outer: v.outer as u32,
        len: v.len as u32,
        inner: v.inner as u32,
        op,
        outputs: v.outputs() as u32,
        scale,
        ..Default::default()
    };
    let bindings = [x.binding(), gy.binding(), centre.unwrap_or(gy).binding(), idx.unwrap_or(gy).binding(), gx.binding()];
    ctx.dispatch(&BACKWARD, &params, &bindings, grid_1d(n, WG_1D))?;
    Ok(gx)
}

fn expect_gy(gy: &Tensor, v: &View, x_shape: &[usize], axis: Option<usize>, keepdim: bool) -> Result<()> {
    expect_f32(gy, "reduce backward")?;
    if gy.shape() != v.out_shape.as_slice() {
        return Err(Error::Shape(format!(
            "reduce backward: gy {:?} but reducing {x_shape:?} over axis {axis:?} (keepdim {keepdim}) gives {:?}",
            gy.shape(),
            v.out_shape
        )));
    }
    Ok(())
}

/// Gradient of [`reduce`] with respect to `x` for upstream `gy` (shaped like the reduce output):
/// sum: gy broadcast; mean: gy / len; max: gy at the first maximum, 0 elsewhere;
/// variance: gy * 2 (x - mean) / (len or len - 1).
pub fn reduce_backward(x: &Tensor, gy: &Tensor, axis: Option<usize>, op: Reduce, keepdim: bool) -> Result<Tensor> {
    expect_f32(x, "reduce backward")?;
    x.expect_same_context(gy, "reduce backward")?;
    let v = view(x.shape(), axis, keepdim)?;
    expect_gy(gy, &v, x.shape(), axis, keepdim)?;
    if x.numel() == 0 {
        return Tensor::uninit(x.context(), x.shape(), DType::F32);
    }
    let len = v.len as f32;
    match op {
        Reduce::Sum => backward_on(x, gy, None, None, &v, OP_SUM, 1.0),
        Reduce::Mean => backward_on(x, gy, None, None, &v, OP_SUM, 1.0 / len),
        Reduce::Max => {
            let (_, idx) = max_with_argmax(x, axis, keepdim)?;
            max_backward(x, &idx, gy, axis, keepdim)
        }
        Reduce::Var { unbiased } => {
            let mean = reduce(x, axis, Reduce::Mean, keepdim)?;
            let denom = if unbiased { len - 1.0 } else { len };
            backward_on(x, gy, Some(&mean), None, &v, OP_SQDEV, 2.0 / denom)
        }
    }
}

/// Gradient of [`max_with_argmax`]: `gy` lands on the element `argmax` names, zero elsewhere.
/// x: the forward input (only its shape and context are used); argmax and gy: the forward's
/// output shape.
pub fn max_backward(x: &Tensor, argmax: &Tensor, gy: &Tensor, axis: Option<usize>, keepdim: bool) -> Result<Tensor> {
    x.expect_same_context(gy, "max backward")?;
    let v = view(x.shape(), axis, keepdim)?;
    expect_gy(gy, &v, x.shape(), axis, keepdim)?;
    if argmax.dtype() != DType::U32 || argmax.shape() != gy.shape() {
        return Err(Error::Shape(format!(
            "max backward: argmax must be U32 shaped like gy {:?}, got {:?} {:?}",
            gy.shape(),
            argmax.dtype(),
            argmax.shape()
        )));
    }
    if x.numel() == 0 {
        return Tensor::uninit(x.context(), x.shape(), DType::F32);
    }
    backward_on(x, gy, None, Some(argmax), &v, OP_MAX, 1.0)
}

/// Plain-Rust f64 reference, same conventions as the GPU ops (outputs in row-major order of the
/// reduced shape; keepdim only changes the shape, not the data).
pub mod cpu {
    use super::{view, Reduce, View};

    fn view_of(shape: &[usize], axis: Option<usize>) -> View {
        view(shape, axis, false).expect("valid axis")
    }

    /// Elements of each output, in axis order: (output, [flat indices]).
    fn groups(v: &View) -> impl Iterator<Item = Vec<usize>> + '_ {
        (0..v.outer * v.inner).map(move |o| {
            let (oi, ii) = (o / v.inner, o % v.inner);
            (0..v.len).map(|l| (oi * v.len + l) * v.inner + ii).collect()
        })
    }

    pub fn max_with_argmax(x: &[f64], shape: &[usize], axis: Option<usize>) -> (Vec<f64>, Vec<u32>) {
        let v = view_of(shape, axis);
        groups(&v)
            .map(|g| {
                // Strict > keeps the first maximum.
                let mut best = 0;
                for l in 1..g.len() {
                    if x[g[l]] > x[g[best]] {
                        best = l;
                    }
                }
                (x[g[best]], best as u32)
            })
            .unzip()
    }

    pub fn reduce(x: &[f64], shape: &[usize], axis: Option<usize>, op: Reduce) -> Vec<f64> {
        let v = view_of(shape, axis);
        if op == Reduce::Max {
            return max_with_argmax(x, shape, axis).0;
        }
        let n = v.len as f64;
        groups(&v)
            .map(|g| {
                let sum: f64 = g.iter().map(|&i| x[i]).sum();
                match op {
                    Reduce::Sum => sum,
                    Reduce::Mean => sum / n,
                    Reduce::Var { unbiased } => {
                        let mean = sum / n;
                        let ss: f64 = g.iter().map(|&i| (x[i] - mean).powi(2)).sum();
                        ss / if unbiased { n - 1.0 } else { n }
                    }
                    Reduce::Max => unreachable!("handled above"),
                }
            })
            .collect()
    }

    /// d/dx of sum(reduce(x) * gy).
    pub fn reduce_backward(x: &[f64], shape: &[usize], gy: &[f64], axis: Option<usize>, op: Reduce) -> Vec<f64> {
        let v = view_of(shape, axis);
        let n = v.len as f64;
        let mut gx = vec![0.0; x.len()];
        let argmax = if op == Reduce::Max { max_with_argmax(x, shape, axis).1 } else { Vec::new() };
        for (o, g) in groups(&v).enumerate() {
            let mean = g.iter().map(|&i| x[i]).sum::<f64>() / n;
            for (l, &i) in g.iter().enumerate() {
                gx[i] = match op {
                    Reduce::Sum => gy[o],
                    Reduce::Mean => gy[o] / n,
                    Reduce::Max => {
                        if l as u32 == argmax[o] {
                            gy[o]
                        } else {
                            0.0
                        }
                    }
                    // d/dx_i of Σ(x - mean)² / d = 2 (x_i - mean) / d (the mean's own terms sum to 0).
                    Reduce::Var { unbiased } => gy[o] * 2.0 * (x[i] - mean) / if unbiased { n - 1.0 } else { n },
                };
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

    const OPS: [Reduce; 5] = [Reduce::Sum, Reduce::Mean, Reduce::Max, Reduce::Var { unbiased: false }, Reduce::Var { unbiased: true }];

    /// Awkward shapes: odd sizes, size-1 axes, an axis longer than a workgroup with inner > 1.
    fn shapes() -> Vec<Vec<usize>> {
        vec![vec![7], vec![3, 5, 7], vec![2, 1, 3], vec![5, 301, 3], vec![3, 67], vec![2, 3, 2, 5]]
    }

    /// Fewer outputs for the tree path: each output is a 256-thread workgroup with barriers,
    /// which software drivers run slowly. Still odd sizes, size-1 axes, inner > 1, and an axis
    /// (300) longer than the workgroup.
    fn tree_shapes() -> Vec<Vec<usize>> {
        vec![vec![7], vec![2, 1, 3], vec![3, 67], vec![2, 300, 3]]
    }

    /// Every axis and the full reduction, each with and without keepdim.
    fn axes(rank: usize) -> Vec<Option<usize>> {
        std::iter::once(None).chain((0..rank).map(Some)).collect()
    }

    // Tolerance: sums of up to ~1000 f32 values in [-2, 2] in any order differ from f64 by at most
    // ~1000 * 2^-24 * 2 ≈ 1.2e-4 in the worst case, far less in practice; 1e-4 + 1e-5 relative.
    const ATOL: f64 = 1e-4;
    const RTOL: f64 = 1e-5;

    /// `keepdims`: keepdim only changes the output shape on the host, so the slow tree tests
    /// check one setting and the rest both.
    fn check_forward(path: Option<Path>, shapes: Vec<Vec<usize>>, keepdims: &[bool]) {
        let ctx = gpu_or_skip!();
        let mut rng = TestRng::new(21);
        for shape in shapes {
            let x = rng.vec(shape.iter().product(), -2.0, 2.0);
            let xt = Tensor::from_slice(&ctx, &shape, &to_f32(&x)).unwrap();
            for axis in axes(shape.len()) {
                for &keepdim in keepdims {
                    let want_shape = view(&shape, axis, keepdim).unwrap().out_shape;
                    for op in OPS {
                        let len = view(&shape, axis, false).unwrap().len;
                        if op == (Reduce::Var { unbiased: true }) && len < 2 {
                            continue; // an error, checked below
                        }
                        let (y, idx) = reduce_on(&xt, axis, op, keepdim, path).unwrap();
                        let what = format!("{op:?} {shape:?} axis {axis:?} keepdim {keepdim} {path:?}");
                        assert_eq!(y.shape(), want_shape.as_slice(), "{what}");
                        assert_close(&what, &y.to_vec().unwrap(), &cpu::reduce(&x, &shape, axis, op), ATOL, RTOL);
                        if let Some(idx) = idx {
                            assert_eq!(idx.shape(), want_shape.as_slice(), "{what}");
                            assert_eq!(idx.to_vec_u32().unwrap(), cpu::max_with_argmax(&x, &shape, axis).1, "{what} argmax");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn rows_path_matches_cpu_on_every_axis() {
        check_forward(Some(Path::Rows { chunk: usize::MAX }), shapes(), &[false, true]);
    }

    #[test]
    fn tree_path_matches_cpu_on_every_axis() {
        check_forward(Some(Path::Tree { chunk: CHUNK }), tree_shapes(), &[true]);
    }

    /// Chunks of 5 make up to six folding passes on these small shapes (4515 elements); chunks of
    /// 64 on the tree shapes two or three. Both leave partial last chunks and carry the argmax
    /// through the passes.
    #[test]
    fn multi_pass_rows_match_cpu() {
        check_forward(Some(Path::Rows { chunk: 5 }), shapes(), &[false, true]);
    }

    #[test]
    fn multi_pass_tree_matches_cpu() {
        check_forward(Some(Path::Tree { chunk: 64 }), tree_shapes(), &[false]);
    }

    #[test]
    fn automatic_path_matches_cpu() {
        check_forward(None, shapes(), &[false, true]);
    }

    #[test]
    fn full_reduction_of_a_million_elements_runs_in_chunks() {
        let ctx = gpu_or_skip!();
        let mut rng = TestRng::new(22);
        let n = 1_000_003;
        let shape = [n];
        // Never one thread: trees on GPUs, chunked rows on software drivers.
        let v = view(&shape, None, false).unwrap();
        assert_eq!(auto_path(&v, false), Path::Tree { chunk: CHUNK });
        assert_eq!(auto_path(&v, true), Path::Rows { chunk: ROW_CHUNK });
        let mut x = rng.vec(n, -1.0, 1.0);
        x[777_777] = 3.0; // a unique maximum in a late chunk
        let xt = Tensor::from_slice(&ctx, &shape, &to_f32(&x)).unwrap();
        // Sum of 1e6 values in [-1, 1]: a chunked tree's f32 error is ~1e-7 * log2(n) * sum|x|
        // (about 1e-1 worst case on |sum| up to 5e5); 5e-2 absolute catches any lost chunk (±1).
        let sum = reduce(&xt, None, Reduce::Sum, false).unwrap();
        assert_eq!(sum.shape(), &[] as &[usize]);
        assert_close("sum 1e6", &sum.to_vec().unwrap(), &cpu::reduce(&x, &shape, None, Reduce::Sum), 5e-2, 1e-6);
        let var = reduce(&xt, None, Reduce::Var { unbiased: true }, true).unwrap();
        assert_eq!(var.shape(), &[1]);
        assert_close("var 1e6", &var.to_vec().unwrap(), &cpu::reduce(&x, &shape, None, Reduce::Var { unbiased: true }), 1e-5, 1e-5);
        let (mx, idx) = max_with_argmax(&xt, None, false).unwrap();
        assert_eq!(mx.item().unwrap(), 3.0);
        assert_eq!(idx.to_vec_u32().unwrap(), vec![777_777]);
    }

    #[test]
    fn max_ties_and_infinities_pick_the_first_maximum() {
        let ctx = gpu_or_skip!();
        let inf = f32::INFINITY;
        // Rows: ties at 1 and 3; all -inf; +inf tied twice.
        let x = [0.0, 2.0, 1.0, 2.0, -inf, -inf, -inf, -inf, inf, 0.0, inf, 5.0];
        let xt = Tensor::from_slice(&ctx, &[3, 4], &x).unwrap();
        for path in [Path::Rows { chunk: 4 }, Path::Rows { chunk: 3 }, Path::Tree { chunk: 3 }, Path::Tree { chunk: 2048 }] {
            let (v, idx) = reduce_on(&xt, Some(1), Reduce::Max, false, Some(path)).unwrap();
            assert_eq!(v.to_vec().unwrap(), vec![2.0, -inf, inf], "{path:?}");
            assert_eq!(idx.unwrap().to_vec_u32().unwrap(), vec![1, 0, 0], "{path:?}");
        }
    }

    /// `n` distinct values evenly spaced in [-2, 2), shuffled: max is not differentiable at ties,
    /// and at least 4/n apart (> 2e-6 central-difference step for every shape used here).
    fn distinct(n: usize, rng: &mut TestRng) -> Vec<f64> {
        let mut x: Vec<f64> = (0..n).map(|k| ((k as f64 + 0.5) * 4.0 / n as f64 - 2.0) as f32 as f64).collect();
        for i in (1..n).rev() {
            x.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
        x
    }

    #[test]
    fn cpu_backward_matches_central_differences() {
        let mut rng = TestRng::new(23);
        for shape in [vec![3, 4, 5], vec![7], vec![2, 1, 3]] {
            let x = distinct(shape.iter().product(), &mut rng);
            for axis in axes(shape.len()) {
                for op in OPS {
                    if op == (Reduce::Var { unbiased: true }) && view(&shape, axis, false).unwrap().len < 2 {
                        continue;
                    }
                    let outputs = view(&shape, axis, false).unwrap().outputs();
                    let w = rng.vec(outputs, -1.0, 1.0);
                    let numeric = numeric_vjp(|x| cpu::reduce(x, &shape, axis, op), &x, &w, 1e-6);
                    let analytic = cpu::reduce_backward(&x, &shape, &w, axis, op);
                    // Smooth (max: distinct values) and at most quadratic in x, so f64
                    // central differences are exact to ~1e-9.
                    assert_close_f64(&format!("{op:?} {shape:?} axis {axis:?}"), &analytic, &numeric, 1e-7, 1e-6);
                }
            }
        }
    }

    #[test]
    fn gpu_backward_matches_cpu() {
        let ctx = gpu_or_skip!();
        let mut rng = TestRng::new(24);
        for shape in [vec![3, 5, 7], vec![5, 301, 3], vec![2, 1, 3], vec![67]] {
            let x = distinct(shape.iter().product(), &mut rng);
            let xt = Tensor::from_slice(&ctx, &shape, &to_f32(&x)).unwrap();
            for axis in axes(shape.len()) {
                for keepdim in [false, true] {
                    let v = view(&shape, axis, keepdim).unwrap();
                    let gy = rng.vec(v.outputs(), -1.0, 1.0);
                    let gyt = Tensor::from_slice(&ctx, &v.out_shape, &to_f32(&gy)).unwrap();
                    for op in OPS {
                        if op == (Reduce::Var { unbiased: true }) && v.len < 2 {
                            continue;
                        }
                        let gx = reduce_backward(&xt, &gyt, axis, op, keepdim).unwrap();
                        assert_eq!(gx.shape(), shape.as_slice());
                        let what = format!("{op:?} {shape:?} axis {axis:?} keepdim {keepdim} backward");
                        // One product per element (plus the mean, accurate to ~1e-6 relative).
                        assert_close(&what, &gx.to_vec().unwrap(), &cpu::reduce_backward(&x, &shape, &gy, axis, op), 1e-5, 1e-5);
                    }
                }
            }
        }
    }

    #[test]
    fn max_backward_routes_gradient_through_given_argmax() {
        let ctx = gpu_or_skip!();
        let x = Tensor::from_slice(&ctx, &[2, 3], &[1.0, 5.0, 2.0, 7.0, 0.0, 7.0]).unwrap();
        let (_, idx) = max_with_argmax(&x, Some(1), true).unwrap();
        let gy = Tensor::from_slice(&ctx, &[2, 1], &[10.0, 20.0]).unwrap();
        let gx = max_backward(&x, &idx, &gy, Some(1), true).unwrap();
        // Row 1 ties at positions 0 and 2: only the first gets the gradient.
        assert_eq!(gx.to_vec().unwrap(), vec![0.0, 10.0, 0.0, 20.0, 0.0, 0.0]);
    }

    #[test]
    fn bad_axes_gradients_and_inputs_are_errors_naming_shapes() {
        let ctx = gpu_or_skip!();
        let x = Tensor::zeros(&ctx, &[2, 3]).unwrap();
        let err = reduce(&x, Some(2), Reduce::Sum, false).unwrap_err().to_string();
        assert!(err.contains("axis 2") && err.contains("[2, 3]"), "{err}");
        let gy = Tensor::zeros(&ctx, &[3]).unwrap();
        let err = reduce_backward(&x, &gy, Some(1), Reduce::Mean, false).unwrap_err().to_string();
        assert!(err.contains("[3]") && err.contains("[2, 3]") && err.contains("[2]"), "{err}");
        let one = Tensor::zeros(&ctx, &[4, 1]).unwrap();
        let err = reduce(&one, Some(1), Reduce::Var { unbiased: true }, false).unwrap_err().to_string();
        assert!(err.contains("[4, 1]") && err.contains("at least 2"), "{err}");
        let empty = Tensor::zeros(&ctx, &[2, 0]).unwrap();
        let err = reduce(&empty, Some(1), Reduce::Max, false).unwrap_err().to_string();
        assert!(err.contains("[2, 0]"), "{err}");
        assert_eq!(reduce(&empty, Some(1), Reduce::Sum, false).unwrap().to_vec().unwrap(), vec![0.0, 0.0]);
        let idx = Tensor::from_u32(&ctx, &[2, 3], &[0; 6]).unwrap();
        let err = reduce(&idx, None, Reduce::Sum, false).unwrap_err().to_string();
        assert!(err.contains("U32") && err.contains("[2, 3]"), "{err}");
        let g2 = Tensor::zeros(&ctx, &[2]).unwrap();
        let bad_idx = Tensor::zeros(&ctx, &[2]).unwrap();
        let err = max_backward(&x, &bad_idx, &g2, Some(1), false).unwrap_err().to_string();
        assert!(err.contains("U32") && err.contains("[2]"), "{err}");
    }
}
