//! Matrix multiply with transposed-operand variants and an optional batch, forward and backward:
//! `C[b] = op(A[b]) @ op(B[b])`, op = identity or transpose.
//! WGSL: `shaders/matmul.wgsl` (and `shaders/matmul_subgroup.wgsl`). CPU reference: [`cpu`].
//!
//! Three kernel families, each tested against the same reference: workgroup-memory tiles for
//! real GPUs; a register-blocked kernel without workgroup memory for software drivers (lavapipe),
//! where barriers are expensive and every invocation is one lane of a CPU SIMD register; and, on
//! such drivers with subgroups, a register-blocked kernel whose lanes share A's loads.

use bytemuck::{Pod, Zeroable};

use crate::error::{Error, Result};
use crate::kernel::{KernelSpec, R, RW};
use crate::reduce::{reduce, Reduce};
use crate::tensor::{DType, Tensor};

const SRC: &str = include_str!("../../shaders/matmul.wgsl");
const TILED: KernelSpec = KernelSpec { id: "matmul.tiled", source: SRC, entry: "tiled", bindings: &[R, R, RW] };
const REG_VEC4: KernelSpec = KernelSpec { id: "matmul.reg_vec4", source: SRC, entry: "reg_vec4", bindings: &[R, R, RW] };
const REG_SCALAR: KernelSpec =
    KernelSpec { id: "matmul.reg_scalar", source: SRC, entry: "reg_scalar", bindings: &[R, R, RW] };
const REG_SUBGROUP: KernelSpec = KernelSpec {
    id: "matmul.reg_subgroup",
    // Appended to matmul.wgsl (Params); built only on devices with SUBGROUP.
    source: concat!(include_str!("../../shaders/matmul.wgsl"), include_str!("../../shaders/matmul_subgroup.wgsl")),
    entry: "reg_subgroup",
    bindings: &[R, R, RW],
};

/// `reg_subgroup` with 32 rows of A per workgroup, for M > 16 on grids of 4 workgroups or more:
/// twice the multiply-adds per load of B (matmul_512 on lavapipe, Intel Xeon with AVX-512, 2
/// cores: 9.96 ms against 11.57).
const REG_SUBGROUP32: KernelSpec = KernelSpec {
    id: "matmul.reg_subgroup32",
    source: REG_SUBGROUP.source,
    entry: "reg_subgroup32",
    bindings: &[R, R, RW],
};

/// `reg_subgroup` / `reg_subgroup32` storing C as vec4s, for C rows a multiple of 4 long
/// (llvmpipe, Intel Xeon with AVX-512, 2 cores: the MLSAD detector's 1x1 conv product
/// [512, 256] @ [8, 256, 628] 81 -> 51 ms; scalar stores, lane by lane, were a third of it).
const REG_SUBGROUP_C4: KernelSpec =
    KernelSpec { id: "matmul.reg_subgroup_c4", source: REG_SUBGROUP.source, entry: "reg_subgroup_c4", bindings: &[R, R, RW] };
const REG_SUBGROUP32_C4: KernelSpec =
    KernelSpec { id: "matmul.reg_subgroup32_c4", source: REG_SUBGROUP.source, entry: "reg_subgroup32_c4", bindings: &[R, R, RW] };

/// Side of the square C tile one `tiled` workgroup computes.
const TILE: usize = 64;
/// C rows and columns one `reg_vec4` workgroup computes (8 x 8 threads of 8 x 8 outputs).
const VEC4_ROWS: usize = 64;
const VEC4_COLS: usize = 64;
/// C rows and columns one `reg_scalar` workgroup computes (8 x 8 threads of 4 x 8 outputs).
const SCALAR_ROWS: usize = 32;
const SCALAR_COLS: usize = 64;
/// C rows and columns one `reg_subgroup` workgroup computes (64 lanes of 16 x 8 outputs;
/// `reg_subgroup32`: twice the rows).
const SUBGROUP_ROWS: usize = 16;
const SUBGROUP_COLS: usize = 512;
/// Lanes of A's block that `reg_subgroup` spreads over a subgroup.
pub(crate) const SUBGROUP_LANES: u32 = 8;

/// Which kernel family computes the product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulVariant {
    /// `Subgroup` on software adapters (`Context::is_cpu_adapter`), `Tiled` elsewhere.
    Auto,
    /// 64x64 tiles staged in workgroup memory, 4x4 outputs per thread: real GPUs.
    Tiled,
    /// 8 x 8 outputs per thread in registers with `vec4` loads when K and both operands'
    /// contiguous dimensions are multiples of 4 (4 x 8 with scalar loads otherwise), no
    /// workgroup memory: lavapipe and other CPU adapters.
    Registers,
    /// 16 x 8 outputs per thread (32 x 8 when M > 16 and that leaves 4 workgroups or more), the
    /// rows of A shared by a workgroup and loaded once per subgroup (`subgroupBroadcast` hands
    /// them round), for devices with subgroups of 8 or more lanes when the `vec4` alignment of
    /// `Registers` holds and M > 8; `Registers` otherwise.
    Subgroup,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    trans_a: u32,
    trans_b: u32,
    a_batch: u32,
    b_batch: u32,
}

/// Sizes of one product after checking the operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Dims {
    m: usize,
    n: usize,
    k: usize,
    /// Output batch; `None` when both operands are 2-D (the output is 2-D too).
    batch: Option<usize>,
    a_batched: bool,
    b_batched: bool,
}

/// (batch, rows, cols) of a 2-D or 3-D operand's storage.
fn split(shape: &[usize]) -> Option<(Option<usize>, usize, usize)> {
    match *shape {
        [r, c] => Some((None, r, c)),
        [b, r, c] => Some((Some(b), r, c)),
        _ => None,
    }
}

fn dims(a: &[usize], b: &[usize], trans_a: bool, trans_b: bool) -> Result<Dims> {
    let what = || format!("A {a:?} (trans_a {trans_a}) and B {b:?} (trans_b {trans_b})");
    let (Some((ba, ar, ac)), Some((bb, br, bc))) = (split(a), split(b)) else {
        return Err(Error::Shape(format!("matmul takes 2-d or 3-d operands, got {}", what())));
    };
    let (m, ka) = if trans_a { (ac, ar) } else { (ar, ac) };
    let (kb, n) = if trans_b { (bc, br) } else { (br, bc) };
    if ka != kb {
        return Err(Error::Shape(format!("matmul inner sizes differ ({ka} vs {kb}) for {}", what())));
    }
    let batch = match (ba, bb) {
        (Some(x), Some(y)) if x != y => {
            return Err(Error::Shape(format!("matmul batch sizes differ ({x} vs {y}) for {}", what())));
        }
        (x, y) => x.or(y),
    };
    Ok(Dims { m, n, k: ka, batch, a_batched: ba.is_some(), b_batched: bb.is_some() })
}

fn expect_f32(t: &Tensor) -> Result<()> {
    if t.dtype() != DType::F32 {
        return Err(Error::Shape(format!("matmul needs f32 tensors, got {:?} {:?}", t.dtype(), t.shape())));
    }
    Ok(())
}

/// `op(A) @ op(B)` with the kernel family picked from the adapter.
/// a: `[M, K]`, or `[K, M]` with `trans_a`, optionally with a leading batch `[batch, ., .]`;
/// b: `[K, N]`, or `[N, K]` with `trans_b`, likewise. A 2-D operand broadcasts across the other's
/// batch. Returns `[M, N]`, or `[batch, M, N]` when either operand is batched.
pub fn matmul(a: &Tensor, b: &Tensor, trans_a: bool, trans_b: bool) -> Result<Tensor> {
    matmul_with(a, b, trans_a, trans_b, MatmulVariant::Auto)
}

/// [`matmul`] with the kernel family chosen by the caller (tests run both on any adapter).
pub fn matmul_with(a: &Tensor, b: &Tensor, trans_a: bool, trans_b: bool, variant: MatmulVariant) -> Result<Tensor> {
    expect_f32(a)?;
    expect_f32(b)?;
    a.expect_same_context(b, "matmul")?;
    let d = dims(a.shape(), b.shape(), trans_a, trans_b)?;
    let ctx = a.context();
    let out_shape = match d.batch {
        Some(batch) => vec![batch, d.m, d.n],
        None => vec![d.m, d.n],
    };
    let c = Tensor::uninit(ctx, &out_shape, DType::F32)?;
    let batch = d.batch.unwrap_or(1);
    if c.numel() == 0 {
        return Ok(c);
    }
    if d.k == 0 {
        // An empty sum: every output is zero.
        c.fill_zero();
        return Ok(c);
    }
    let params = Params {
        m: d.m as u32,
        n: d.n as u32,
        k: d.k as u32,
        batch: batch as u32,
        trans_a: trans_a as u32,
        trans_b: trans_b as u32,
        a_batch: if d.a_batched { (d.m * d.k) as u32 } else { 0 },
        b_batch: if d.b_batched { (d.k * d.n) as u32 } else { 0 },
    };
    let variant = match variant {
        MatmulVariant::Auto if ctx.is_cpu_adapter() => MatmulVariant::Subgroup,
        MatmulVariant::Auto => MatmulVariant::Tiled,
        v => v,
    };
    let (spec, groups) = match variant {
        MatmulVariant::Tiled => (&TILED, [d.n.div_ceil(TILE), d.m.div_ceil(TILE)]),
        _ => {
            // vec4 loads run along each operand's contiguous storage dimension and step K by 4.
            let a_contig = if trans_a { d.m } else { d.k };
            let b_contig = if trans_b { d.k } else { d.n };
            let aligned = d.k % 4 == 0 && a_contig % 4 == 0 && b_contig % 4 == 0;
            let subgroups = ctx.subgroup_min_lanes().is_some_and(|l| l >= SUBGROUP_LANES);
            // 32 rows where that still leaves a few workgroups per core.
            let tall = d.m > SUBGROUP_ROWS && d.n.div_ceil(SUBGROUP_COLS) * d.m.div_ceil(2 * SUBGROUP_ROWS) * batch >= 4;
            let c4 = d.n % 4 == 0;
            if aligned && variant == MatmulVariant::Subgroup && subgroups && tall {
                (if c4 { &REG_SUBGROUP32_C4 } else { &REG_SUBGROUP32 }, [d.n.div_ceil(SUBGROUP_COLS), d.m.div_ceil(2 * SUBGROUP_ROWS)])
            } else if aligned && variant == MatmulVariant::Subgroup && subgroups && d.m > 8 {
                (if c4 { &REG_SUBGROUP_C4 } else { &REG_SUBGROUP }, [d.n.div_ceil(SUBGROUP_COLS), d.m.div_ceil(SUBGROUP_ROWS)])
            } else if aligned {
                (&REG_VEC4, [d.n.div_ceil(VEC4_COLS), d.m.div_ceil(VEC4_ROWS)])
            } else {
                (&REG_SCALAR, [d.n.div_ceil(SCALAR_COLS), d.m.div_ceil(SCALAR_ROWS)])
            }
        }
    };
    let workgroups = [groups[0] as u32, groups[1] as u32, batch as u32];
    ctx.dispatch(spec, &params, &[a.binding(), b.binding(), c.binding()], workgroups)?;
    Ok(c)
}

/// Gradients of `C = op(A) @ op(B)` for upstream `gy` (shaped like C), each shaped like its
/// operand. With Â = op(A), B̂ = op(B): dÂ = G B̂ᵀ and dB̂ = Âᵀ G, transposed back where the
/// operand is stored transposed; a 2-D operand broadcast across a batch sums over the batch.
pub fn matmul_backward(a: &Tensor, b: &Tensor, gy: &Tensor, trans_a: bool, trans_b: bool) -> Result<(Tensor, Tensor)> {
    matmul_backward_with(a, b, gy, trans_a, trans_b, MatmulVariant::Auto)
}

/// [`matmul_backward`] with the kernel family chosen by the caller.
pub fn matmul_backward_with(
    a: &Tensor,
    b: &Tensor,
    gy: &Tensor,
    trans_a: bool,
    trans_b: bool,
    variant: MatmulVariant,
) -> Result<(Tensor, Tensor)> {
    expect_f32(a)?;
    expect_f32(b)?;
    expect_f32(gy)?;
    a.expect_same_context(gy, "matmul backward")?;
    let d = dims(a.shape(), b.shape(), trans_a, trans_b)?;
    let want: Vec<usize> = match d.batch {
        Some(batch) => vec![batch, d.m, d.n],
        None => vec![d.m, d.n],
    };
    if gy.shape() != want.as_slice() {
        return Err(Error::Shape(format!(
            "matmul backward: gy {:?} but A {:?} (trans_a {trans_a}) @ B {:?} (trans_b {trans_b}) is {want:?}",
            gy.shape(),
            a.shape(),
            b.shape()
        )));
    }
    let mm = |x: &Tensor, y: &Tensor, tx: bool, ty: bool| matmul_with(x, y, tx, ty, variant);

    // dA: dÂ = G B̂ᵀ, or for stored Aᵀ, dA = B̂ Gᵀ; a broadcast A sums the per-batch products.
    let ga = if trans_a { mm(b, gy, trans_b, true)? } else { mm(gy, b, false, !trans_b)? };
    let ga = if d.batch.is_some() && !d.a_batched { reduce(&ga, Some(0), Reduce::Sum, false)? } else { ga };

    // dB: dB̂ = Âᵀ G, or for stored Bᵀ, dB = Gᵀ Â.
    let gb = if d.batch.is_some() && !d.b_batched && d.a_batched && !trans_a {
        // B broadcast against a plain batched A: the batch folds into the rows of A and G, so
        // Σ_b A_bᵀ G_b is one product of [batch*M, K] and [batch*M, N] with no reduction pass.
        let batch = d.batch.unwrap_or(1);
        let a2 = a.reshape(&[batch * d.m, d.k])?;
        let g2 = gy.reshape(&[batch * d.m, d.n])?;
        if trans_b {
            mm(&g2, &a2, true, false)?
        } else {
            mm(&a2, &g2, true, false)?
        }
    } else if d.batch.is_some() && !d.b_batched {
        let per_batch = if trans_b { mm(gy, a, true, trans_a)? } else { mm(a, gy, !trans_a, false)? };
        reduce(&per_batch, Some(0), Reduce::Sum, false)?
    } else if trans_b {
        mm(gy, a, true, trans_a)?
    } else {
        mm(a, gy, !trans_a, false)?
    };
    Ok((ga, gb))
}

/// Plain-Rust f64 reference, same conventions as the GPU ops. Shapes as in [`super::matmul`].
pub mod cpu {
    use super::dims;

    /// Output shape of `op(A) @ op(B)`; panics on shapes the GPU op rejects (test helper).
    pub fn out_shape(ashape: &[usize], bshape: &[usize], trans_a: bool, trans_b: bool) -> Vec<usize> {
        let d = dims(ashape, bshape, trans_a, trans_b).expect("valid matmul shapes");
        match d.batch {
            Some(b) => vec![b, d.m, d.n],
            None => vec![d.m, d.n],
        }
    }

    /// op(A)[batch bi][i, k]
    fn at(x: &[f64], shape: &[usize], trans: bool, bi: usize, i: usize, k: usize) -> f64 {
        let (r, c) = (shape[shape.len() - 2], shape[shape.len() - 1]);
        let base = if shape.len() == 3 { bi * r * c } else { 0 };
        if trans {
            x[base + k * c + i]
        } else {
            x[base + i * c + k]
        }
    }

    pub fn matmul(a: &[f64], ashape: &[usize], b: &[f64], bshape: &[usize], trans_a: bool, trans_b: bool) -> Vec<f64> {
        let d = dims(ashape, bshape, trans_a, trans_b).expect("valid matmul shapes");
        let batch = d.batch.unwrap_or(1);
        let mut c = vec![0.0; batch * d.m * d.n];
        for bi in 0..batch {
            for i in 0..d.m {
                for j in 0..d.n {
                    // op(B)[k, j] is op(Bᵀ)[j, k]: the same accessor with the flag flipped.
                    c[(bi * d.m + i) * d.n + j] = (0..d.k)
                        .map(|k| at(a, ashape, trans_a, bi, i, k) * at(b, bshape, !trans_b, bi, j, k))
                        .sum();
                }
            }
        }
        c
    }

    /// (dA, dB) for upstream `gy`, accumulated elementwise from dC/dA[.] = B, dC/dB[.] = A.
    pub fn matmul_backward(
        a: &[f64],
        ashape: &[usize],
        b: &[f64],
        bshape: &[usize],
        gy: &[f64],
        trans_a: bool,
        trans_b: bool,
    ) -> (Vec<f64>, Vec<f64>) {
        let d = dims(ashape, bshape, trans_a, trans_b).expect("valid matmul shapes");
        let batch = d.batch.unwrap_or(1);
        let mut ga = vec![0.0; a.len()];
        let mut gb = vec![0.0; b.len()];
        // Storage index of op(X)[bi][i, k].
        let idx = |shape: &[usize], trans: bool, bi: usize, i: usize, k: usize| {
            let (r, c) = (shape[shape.len() - 2], shape[shape.len() - 1]);
            let base = if shape.len() == 3 { bi * r * c } else { 0 };
            if trans {
                base + k * c + i
            } else {
                base + i * c + k
            }
        };
        for bi in 0..batch {
            for i in 0..d.m {
                for j in 0..d.n {
                    let g = gy[(bi * d.m + i) * d.n + j];
                    for k in 0..d.k {
                        let ia = idx(ashape, trans_a, bi, i, k);
                        let ib = idx(bshape, !trans_b, bi, j, k);
                        ga[ia] += g * b[ib];
                        gb[ib] += g * a[ia];
                    }
                }
            }
        }
        (ga, gb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu_or_skip;
    use crate::testing::{assert_close, assert_close_f64, numeric_vjp, to_f32, TestRng};

    /// Storage shape of an operand holding op(X) of `rows x cols`, optionally batched.
    fn stored(batch: Option<usize>, rows: usize, cols: usize, trans: bool) -> Vec<usize> {
        let (r, c) = if trans { (cols, rows) } else { (rows, cols) };
        match batch {
            Some(b) => vec![b, r, c],
            None => vec![r, c],
        }
    }

    /// (M, N, K) with edges in every direction: single rows/columns, sizes just past a register
    /// block (8 x 8 vec4, 4 x 8 scalar), a workgroup (64 x 64, 32 x 64) and a tile (64); M and N
    /// that are multiples of 4 but not 8 (half-used vec4 blocks); K both aligned (vec4 path) and not.
    /// On `Subgroup`, (16, 36, 20) takes the 16-row kernel, (100, 36, 12) the 32-row one (four
    /// row blocks, the last partial); smaller aligned M > 16 take 16 rows for want of workgroups.
    /// Both store C as vec4s (`_c4`, N a multiple of 4); (36, 13, 12) and (100, 13, 12) reach
    /// their scalar-store forms with B stored [N, K] (K aligned, N not).
    const SIZES: [(usize, usize, usize); 15] = [
        (1, 1, 1),
        (7, 33, 65),
        (33, 7, 1),
        (65, 127, 33),
        (127, 65, 7),
        (4, 8, 4),
        (36, 68, 12),
        (64, 128, 64),
        (65, 20, 128),
        (68, 132, 16),
        (20, 604, 8),
        (16, 36, 20),
        (100, 36, 12),
        (36, 13, 12),
        (100, 13, 12),
    ];

    // Tolerance: sums of up to 128 products of values in [-1, 1] in f32 have rounding error below
    // ~128 * 2^-24 * sum|terms| < 1e-5; 2e-5 absolute + 1e-5 relative leaves margin for any order.
    const ATOL: f64 = 2e-5;
    const RTOL: f64 = 1e-5;

    fn check_forward(variant: MatmulVariant, batches: &[(Option<usize>, Option<usize>)]) {
        let ctx = gpu_or_skip!();
        let mut rng = TestRng::new(11);
        for &(m, n, k) in &SIZES {
            for &(ba, bb) in batches {
                for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                    let (sa, sb) = (stored(ba, m, k, ta), stored(bb, k, n, tb));
                    let a = rng.vec(sa.iter().product(), -1.0, 1.0);
                    let b = rng.vec(sb.iter().product(), -1.0, 1.0);
                    let at = Tensor::from_slice(&ctx, &sa, &to_f32(&a)).unwrap();
                    let bt = Tensor::from_slice(&ctx, &sb, &to_f32(&b)).unwrap();
                    let c = matmul_with(&at, &bt, ta, tb, variant).unwrap();
                    assert_eq!(c.shape(), cpu::out_shape(&sa, &sb, ta, tb).as_slice());
                    let want = cpu::matmul(&a, &sa, &b, &sb, ta, tb);
                    let what = format!("{variant:?} A {sa:?} ta {ta} B {sb:?} tb {tb}");
                    assert_close(&what, &c.to_vec().unwrap(), &want, ATOL, RTOL);
                }
            }
        }
    }

    #[test]
    fn registers_variant_matches_cpu_on_odd_shapes_and_transposes() {
        check_forward(MatmulVariant::Registers, &[(None, None)]);
    }

    #[test]
    fn subgroup_variant_matches_cpu_on_odd_shapes_and_transposes() {
        check_forward(MatmulVariant::Subgroup, &[(None, None)]);
    }

    /// lavapipe offers subgroups of 8 lanes: the CPU path must take `reg_subgroup` there.
    #[test]
    fn cpu_adapters_with_subgroups_get_the_subgroup_kernel() {
        let ctx = gpu_or_skip!();
        if ctx.is_cpu_adapter() && ctx.adapter_features().contains(wgpu::Features::SUBGROUP) {
            assert!(ctx.subgroup_min_lanes().is_some_and(|l| l >= SUBGROUP_LANES), "{:?}", ctx.subgroup_min_lanes());
        }
    }

    #[test]
    fn tiled_variant_matches_cpu_on_odd_shapes_and_transposes() {
        check_forward(MatmulVariant::Tiled, &[(None, None)]);
    }

    /// Batched: both operands batched, and either one broadcast; batch 3 on shapes from SIZES.
    fn check_batched(variant: MatmulVariant) {
        let ctx = gpu_or_skip!();
        let mut rng = TestRng::new(12);
        for &(m, n, k) in &[(7, 33, 65), (4, 8, 4), (33, 20, 12), (1, 9, 3), (36, 24, 8)] {
            for (ba, bb) in [(Some(3), Some(3)), (Some(3), None), (None, Some(3))] {
                for (ta, tb) in [(false, false), (true, true), (false, true), (true, false)] {
                    let (sa, sb) = (stored(ba, m, k, ta), stored(bb, k, n, tb));
                    let a = rng.vec(sa.iter().product(), -1.0, 1.0);
                    let b = rng.vec(sb.iter().product(), -1.0, 1.0);
                    let at = Tensor::from_slice(&ctx, &sa, &to_f32(&a)).unwrap();
                    let bt = Tensor::from_slice(&ctx, &sb, &to_f32(&b)).unwrap();
                    let c = matmul_with(&at, &bt, ta, tb, variant).unwrap();
                    assert_eq!(c.shape(), &[3, m, n]);
                    let what = format!("{variant:?} batched A {sa:?} ta {ta} B {sb:?} tb {tb}");
                    assert_close(&what, &c.to_vec().unwrap(), &cpu::matmul(&a, &sa, &b, &sb, ta, tb), ATOL, RTOL);
                }
            }
        }
    }

    #[test]
    fn registers_variant_matches_cpu_batched_and_broadcast() {
        check_batched(MatmulVariant::Registers);
    }

    #[test]
    fn subgroup_variant_matches_cpu_batched_and_broadcast() {
        check_batched(MatmulVariant::Subgroup);
    }

    #[test]
    fn tiled_variant_matches_cpu_batched_and_broadcast() {
        check_batched(MatmulVariant::Tiled);
    }

    #[test]
    fn empty_inner_dimension_gives_zeros() {
        let ctx = gpu_or_skip!();
        let a = Tensor::zeros(&ctx, &[3, 0]).unwrap();
        let b = Tensor::zeros(&ctx, &[0, 5]).unwrap();
        // Fill the pooled output with garbage first so a missing clear would show.
        drop(Tensor::from_slice(&ctx, &[3, 5], &[7.0; 15]).unwrap());
        ctx.flush();
        let c = matmul(&a, &b, false, false).unwrap();
        assert_eq!(c.to_vec().unwrap(), vec![0.0; 15]);
    }

    /// Every layout the backward must handle: plain, transposed, batched, broadcast either side.
    fn backward_cases() -> Vec<(Vec<usize>, Vec<usize>, bool, bool)> {
        let (m, n, k) = (5, 3, 4);
        let mut cases = Vec::new();
        for (ba, bb) in [(None, None), (Some(2), Some(2)), (Some(2), None), (None, Some(2))] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                cases.push((stored(ba, m, k, ta), stored(bb, k, n, tb), ta, tb));
            }
        }
        cases
    }

    #[test]
    fn cpu_backward_matches_central_differences() {
        let mut rng = TestRng::new(13);
        for (sa, sb, ta, tb) in backward_cases() {
            let a = rng.vec(sa.iter().product(), -1.0, 1.0);
            let b = rng.vec(sb.iter().product(), -1.0, 1.0);
            let w = rng.vec(cpu::out_shape(&sa, &sb, ta, tb).iter().product(), -1.0, 1.0);
            let (ga, gb) = cpu::matmul_backward(&a, &sa, &b, &sb, &w, ta, tb);
            let na = numeric_vjp(|a| cpu::matmul(a, &sa, &b, &sb, ta, tb), &a, &w, 1e-6);
            let nb = numeric_vjp(|b| cpu::matmul(&a, &sa, b, &sb, ta, tb), &b, &w, 1e-6);
            // Bilinear in each operand: central differences are exact up to f64 rounding (~1e-10).
            let what = format!("A {sa:?} ta {ta} B {sb:?} tb {tb}");
            assert_close_f64(&format!("{what} dA"), &ga, &na, 1e-8, 1e-8);
            assert_close_f64(&format!("{what} dB"), &gb, &nb, 1e-8, 1e-8);
        }
    }

    fn check_backward(variant: MatmulVariant) {
        let ctx = gpu_or_skip!();
        let mut rng = TestRng::new(14);
        for (sa, sb, ta, tb) in backward_cases() {
            let a = rng.vec(sa.iter().product(), -1.0, 1.0);
            let b = rng.vec(sb.iter().product(), -1.0, 1.0);
            let out = cpu::out_shape(&sa, &sb, ta, tb);
            let gy = rng.vec(out.iter().product(), -1.0, 1.0);
            let at = Tensor::from_slice(&ctx, &sa, &to_f32(&a)).unwrap();
            let bt = Tensor::from_slice(&ctx, &sb, &to_f32(&b)).unwrap();
            let gyt = Tensor::from_slice(&ctx, &out, &to_f32(&gy)).unwrap();
            let (ga, gb) = matmul_backward_with(&at, &bt, &gyt, ta, tb, variant).unwrap();
            assert_eq!(ga.shape(), sa.as_slice());
            assert_eq!(gb.shape(), sb.as_slice());
            let (wa, wb) = cpu::matmul_backward(&a, &sa, &b, &sb, &gy, ta, tb);
            let what = format!("{variant:?} A {sa:?} ta {ta} B {sb:?} tb {tb}");
            // Sums of at most 2 * 5 products of values in [-1, 1]: f32 rounding stays below 1e-6.
            assert_close(&format!("{what} dA"), &ga.to_vec().unwrap(), &wa, 1e-5, 1e-5);
            assert_close(&format!("{what} dB"), &gb.to_vec().unwrap(), &wb, 1e-5, 1e-5);
        }
    }

    #[test]
    fn gpu_backward_matches_cpu_registers_variant() {
        check_backward(MatmulVariant::Registers);
    }

    #[test]
    fn gpu_backward_matches_cpu_subgroup_variant() {
        check_backward(MatmulVariant::Subgroup);
    }

    #[test]
    fn gpu_backward_matches_cpu_tiled_variant() {
        check_backward(MatmulVariant::Tiled);
    }

    #[test]
    fn bad_shapes_are_errors_naming_the_shapes() {
        let ctx = gpu_or_skip!();
        let a = Tensor::zeros(&ctx, &[2, 3]).unwrap();
        let b = Tensor::zeros(&ctx, &[4, 5]).unwrap();
        let err = matmul(&a, &b, false, false).unwrap_err().to_string();
        assert!(err.contains("[2, 3]") && err.contains("[4, 5]") && err.contains("3 vs 4"), "{err}");
        // With trans_a, A [2, 3] is 3 x 2: inner 2 vs 4 still differs.
        let err = matmul(&a, &b, true, false).unwrap_err().to_string();
        assert!(err.contains("2 vs 4"), "{err}");
        let a3 = Tensor::zeros(&ctx, &[2, 2, 3]).unwrap();
        let b3 = Tensor::zeros(&ctx, &[3, 3, 5]).unwrap();
        let err = matmul(&a3, &b3, false, false).unwrap_err().to_string();
        assert!(err.contains("batch") && err.contains("[2, 2, 3]") && err.contains("[3, 3, 5]"), "{err}");
        let v = Tensor::zeros(&ctx, &[3]).unwrap();
        let err = matmul(&v, &b, false, false).unwrap_err().to_string();
        assert!(err.contains("2-d or 3-d") && err.contains("[3]"), "{err}");
        let b35 = Tensor::zeros(&ctx, &[3, 5]).unwrap();
        let gy = Tensor::zeros(&ctx, &[5, 2]).unwrap();
        let err = matmul_backward(&a, &b35, &gy, false, false).unwrap_err().to_string();
        assert!(err.contains("[5, 2]") && err.contains("[2, 5]"), "{err}");
        let idx = Tensor::from_u32(&ctx, &[3, 5], &[0; 15]).unwrap();
        let err = matmul(&a, &idx, false, false).unwrap_err().to_string();
        assert!(err.contains("U32"), "{err}");
    }
}
