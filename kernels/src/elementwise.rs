//! Elementwise unary and binary ops with broadcasting, forward and backward.
//! WGSL: `shaders/elementwise.wgsl`. CPU reference: [`cpu`].

use bytemuck::{Pod, Zeroable};

use crate::error::{Error, Result};
use crate::kernel::{grid_1d, KernelSpec, R, RW, WG_1D};
use crate::tensor::{DType, Tensor};

const SRC: &str = include_str!("../../shaders/elementwise.wgsl");
const UNARY: KernelSpec = KernelSpec { id: "elementwise.unary", source: SRC, entry: "unary", bindings: &[R, RW] };
const UNARY_BACKWARD: KernelSpec =
    KernelSpec { id: "elementwise.unary_backward", source: SRC, entry: "unary_backward", bindings: &[R, R, RW] };
const BINARY: KernelSpec = KernelSpec { id: "elementwise.binary", source: SRC, entry: "binary", bindings: &[R, R, RW] };
const BINARY_BACKWARD: KernelSpec =
    KernelSpec { id: "elementwise.binary_backward", source: SRC, entry: "binary_backward", bindings: &[R, R, R, RW] };
// vec4 variants: operands of one contiguous shape with a multiple of 4 elements (`Params::n`
// then counts vec4s); lavapipe loads storage lane by lane, and a vec4 load shares that loop.
const UNARY4: KernelSpec = KernelSpec { id: "elementwise.unary4", source: SRC, entry: "unary4", bindings: &[R, RW] };
const UNARY_BACKWARD4: KernelSpec =
    KernelSpec { id: "elementwise.unary_backward4", source: SRC, entry: "unary_backward4", bindings: &[R, R, RW] };
const BINARY4: KernelSpec = KernelSpec { id: "elementwise.binary4", source: SRC, entry: "binary4", bindings: &[R, R, RW] };
const BINARY_BACKWARD4: KernelSpec =
    KernelSpec { id: "elementwise.binary_backward4", source: SRC, entry: "binary_backward4", bindings: &[R, R, R, RW] };

/// (kernel, threads = `Params::n`) for `n` elements: the vec4 kernel where the operands share one
/// contiguous shape and n % 4 == 0, else the scalar one.
fn pick(n: usize, contiguous: bool, scalar: &'static KernelSpec, vec4: &'static KernelSpec) -> (&'static KernelSpec, usize) {
    if contiguous && n % 4 == 0 { (vec4, n / 4) } else { (scalar, n) }
}

/// One-input functions. Parameters travel in the params struct's `alpha` and `beta`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unary {
    Neg,
    Exp,
    Log,
    Sqrt,
    Abs,
    /// -1, 0 or 1; its gradient is zero.
    Sign,
    /// x^p; negative x only for whole p.
    Pow(f32),
    /// clamp(x, min, max); the gradient passes where min <= x <= max.
    Clamp(f32, f32),
    Relu,
    LeakyRelu(f32),
    Sigmoid,
    Tanh,
    Softplus,
    LogSigmoid,
    /// x * scale + shift: the scalar add, sub, mul and div variants.
    Affine { scale: f32, shift: f32 },
}

impl Unary {
    fn code(self) -> (u32, f32, f32) {
        match self {
            Unary::Neg => (0, 0.0, 0.0),
            Unary::Exp => (1, 0.0, 0.0),
            Unary::Log => (2, 0.0, 0.0),
            Unary::Sqrt => (3, 0.0, 0.0),
            Unary::Abs => (4, 0.0, 0.0),
            Unary::Sign => (5, 0.0, 0.0),
            Unary::Pow(a) => (6, a, 0.0),
            Unary::Clamp(lo, hi) => (7, lo, hi),
            Unary::Relu => (8, 0.0, 0.0),
            Unary::LeakyRelu(s) => (9, s, 0.0),
            Unary::Sigmoid => (10, 0.0, 0.0),
            Unary::Tanh => (11, 0.0, 0.0),
            Unary::Softplus => (12, 0.0, 0.0),
            Unary::LogSigmoid => (13, 0.0, 0.0),
            Unary::Affine { scale, shift } => (14, scale, shift),
        }
    }
}

/// Two-input functions, broadcast numpy-style.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    /// Elementwise maximum; ties split the gradient evenly.
    Maximum,
    Minimum,
}

impl Binary {
    fn code(self) -> u32 {
        self as u32
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct Params {
    n: u32,
    op: u32,
    red_n: u32,
    flags: u32,
    alpha: f32,
    beta: f32,
    pad: [u32; 2],
    shape: [u32; 4],
    sa: [u32; 4],
    sb: [u32; 4],
    tshape: [u32; 4],
    rshape: [u32; 4],
}

/// Numpy broadcast of two shapes.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let pad = |s: &[usize]| -> Vec<usize> { std::iter::repeat_n(1, rank - s.len()).chain(s.iter().copied()).collect() };
    let (pa, pb) = (pad(a), pad(b));
    pa.iter()
        .zip(&pb)
        .map(|(&x, &y)| match (x, y) {
            (x, y) if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            _ => Err(Error::Shape(format!("shapes {a:?} and {b:?} do not broadcast"))),
        })
        .collect()
}

/// `shape` left-padded with ones to rank 4.
fn pad4(shape: &[usize], op: &str) -> Result<[usize; 4]> {
    if shape.len() > 4 {
        return Err(Error::Shape(format!("{op} supports up to 4 dimensions, got shape {shape:?}")));
    }
    let mut out = [1usize; 4];
    out[4 - shape.len()..].copy_from_slice(shape);
    Ok(out)
}

/// Strides of an operand of `shape` read at output coordinates of `out` (0 where broadcast).
fn broadcast_strides(shape: &[usize; 4], out: &[usize; 4]) -> [u32; 4] {
    let mut strides = [0u32; 4];
    let mut s = 1usize;
    for d in (0..4).rev() {
        strides[d] = if shape[d] == 1 && out[d] != 1 { 0 } else { s as u32 };
        s *= shape[d];
    }
    strides
}

fn u32x4(s: [usize; 4]) -> [u32; 4] {
    s.map(|v| v as u32)
}

fn expect_f32(t: &Tensor, op: &str) -> Result<()> {
    if t.dtype() != DType::F32 {
        return Err(Error::Shape(format!("{op} needs f32 tensors, got {:?} {:?}", t.dtype(), t.shape())));
    }
    Ok(())
}

/// y = op(x)
pub fn unary(x: &Tensor, op: Unary) -> Result<Tensor> {
    expect_f32(x, "unary")?;
    let y = Tensor::uninit(x.context(), x.shape(), DType::F32)?;
    let (code, alpha, beta) = op.code();
    let (spec, threads) = pick(x.numel(), true, &UNARY, &UNARY4);
    let params = Params { n: threads as u32, op: code, alpha, beta, ..Default::default() };
    x.context().dispatch(spec, &params, &[x.binding(), y.binding()], grid_1d(threads, WG_1D))?;
    Ok(y)
}

/// gx = gy * op'(x)
pub fn unary_backward(x: &Tensor, gy: &Tensor, op: Unary) -> Result<Tensor> {
    if x.shape() != gy.shape() {
        return Err(Error::Shape(format!("unary backward: x {:?} and gy {:?} differ", x.shape(), gy.shape())));
    }
    let gx = Tensor::uninit(x.context(), x.shape(), DType::F32)?;
    let (code, alpha, beta) = op.code();
    let (spec, threads) = pick(x.numel(), true, &UNARY_BACKWARD, &UNARY_BACKWARD4);
    let params = Params { n: threads as u32, op: code, alpha, beta, ..Default::default() };
    x.context().dispatch(spec, &params, &[x.binding(), gy.binding(), gx.binding()], grid_1d(threads, WG_1D))?;
    Ok(gx)
}

fn binary_params(a: &Tensor, b: &Tensor, op: Binary) -> Result<(Params, Vec<usize>)> {
    expect_f32(a, "binary")?;
    expect_f32(b, "binary")?;
    a.expect_same_context(b, "binary")?;
    let out = broadcast_shape(a.shape(), b.shape())?;
    let (pa, pb, po) = (pad4(a.shape(), "binary")?, pad4(b.shape(), "binary")?, pad4(&out, "binary")?);
    let contiguous = a.shape() == b.shape();
    let params = Params {
        n: out.iter().product::<usize>() as u32,
        op: op.code(),
        flags: contiguous as u32,
        shape: u32x4(po),
        sa: broadcast_strides(&pa, &po),
        sb: broadcast_strides(&pb, &po),
        ..Default::default()
    };
    Ok((params, out))
}

/// y = op(a, b), broadcast.
pub fn binary(a: &Tensor, b: &Tensor, op: Binary) -> Result<Tensor> {
    let (mut params, out) = binary_params(a, b, op)?;
    let y = Tensor::uninit(a.context(), &out, DType::F32)?;
    let (spec, threads) = pick(y.numel(), params.flags & 1 != 0, &BINARY, &BINARY4);
    params.n = threads as u32;
    a.context().dispatch(spec, &params, &[a.binding(), b.binding(), y.binding()], grid_1d(threads, WG_1D))?;
    Ok(y)
}

/// Gradients of `op(a, b)` for upstream `gy`, each summed back to its operand's shape.
pub fn binary_backward(a: &Tensor, b: &Tensor, gy: &Tensor, op: Binary) -> Result<(Tensor, Tensor)> {
    let (ga, gb) = binary_backward_needed(a, b, gy, op, [true, true])?;
    Ok((ga.expect("asked for"), gb.expect("asked for")))
}

/// [`binary_backward`] for the operands `needs` marks only (a graph's constants, e.g. a dropout
/// mask or input noise, need none). An operand of a sum (or the left one of a difference) shaped
/// like the output gets `gy` itself: gradients are values, never written in place, so sharing
/// the buffer is safe and saves a pass.
pub fn binary_backward_needed(a: &Tensor, b: &Tensor, gy: &Tensor, op: Binary, needs: [bool; 2]) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let (base, out) = binary_params(a, b, op)?;
    if gy.shape() != out.as_slice() {
        return Err(Error::Shape(format!("binary backward: gy {:?} but output is {out:?}", gy.shape())));
    }
    let po = pad4(&out, "binary")?;
    let mut grads = [None, None];
    for (which, t) in [a, b].into_iter().enumerate() {
        if !needs[which] {
            continue;
        }
        let passes_gy = matches!((op, which), (Binary::Add, _) | (Binary::Sub, 0));
        if passes_gy && t.shape() == out.as_slice() {
            grads[which] = Some(gy.clone());
            continue;
        }
        let pt = pad4(t.shape(), "binary")?;
        let rshape: [usize; 4] = std::array::from_fn(|d| if pt[d] == 1 { po[d] } else { 1 });
        let params = Params {
            n: t.numel() as u32,
            red_n: rshape.iter().product::<usize>() as u32,
            beta: which as f32,
            tshape: u32x4(pt),
            rshape: u32x4(rshape),
            ..base
        };
        let g = Tensor::uninit(a.context(), t.shape(), DType::F32)?;
        let (spec, threads) = pick(t.numel(), base.flags & 1 != 0, &BINARY_BACKWARD, &BINARY_BACKWARD4);
        let params = Params { n: threads as u32, ..params };
        a.context().dispatch(spec, &params, &[a.binding(), b.binding(), gy.binding(), g.binding()], grid_1d(threads, WG_1D))?;
        grads[which] = Some(g);
    }
    let [ga, gb] = grads;
    Ok((ga, gb))
}

pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(a, b, Binary::Add)
}
pub fn sub(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(a, b, Binary::Sub)
}
pub fn mul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(a, b, Binary::Mul)
}
pub fn div(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(a, b, Binary::Div)
}
pub fn add_scalar(x: &Tensor, s: f32) -> Result<Tensor> {
    unary(x, Unary::Affine { scale: 1.0, shift: s })
}
pub fn mul_scalar(x: &Tensor, s: f32) -> Result<Tensor> {
    unary(x, Unary::Affine { scale: s, shift: 0.0 })
}

/// Plain-Rust f64 reference of every op above, with the same conventions.
pub mod cpu {
    use super::{Binary, Unary};

    fn sigmoid(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    fn softplus(x: f64) -> f64 {
        x.max(0.0) + (-x.abs()).exp().ln_1p()
    }

    /// x^a; f64::powf already gives the sign for negative x and whole a, like the shader.
    fn powf(x: f64, a: f64) -> f64 {
        x.powf(a)
    }

    pub fn unary_f(x: f64, op: Unary) -> f64 {
        match op {
            Unary::Neg => -x,
            Unary::Exp => x.exp(),
            Unary::Log => x.ln(),
            Unary::Sqrt => x.sqrt(),
            Unary::Abs => x.abs(),
            Unary::Sign => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            }
            Unary::Pow(a) => powf(x, a as f64),
            Unary::Clamp(lo, hi) => x.max(lo as f64).min(hi as f64),
            Unary::Relu => x.max(0.0),
            Unary::LeakyRelu(s) => {
                if x > 0.0 {
                    x
                } else {
                    s as f64 * x
                }
            }
            Unary::Sigmoid => sigmoid(x),
            Unary::Tanh => x.tanh(),
            Unary::Softplus => softplus(x),
            Unary::LogSigmoid => -softplus(-x),
            Unary::Affine { scale, shift } => x * scale as f64 + shift as f64,
        }
    }

    /// d op / dx at x.
    pub fn unary_d(x: f64, op: Unary) -> f64 {
        match op {
            Unary::Neg => -1.0,
            Unary::Exp => x.exp(),
            Unary::Log => 1.0 / x,
            Unary::Sqrt => 0.5 / x.sqrt(),
            Unary::Abs => unary_f(x, Unary::Sign),
            Unary::Sign => 0.0,
            Unary::Pow(a) => a as f64 * powf(x, a as f64 - 1.0),
            Unary::Clamp(lo, hi) => ((x >= lo as f64) && (x <= hi as f64)) as u8 as f64,
            Unary::Relu => (x > 0.0) as u8 as f64,
            Unary::LeakyRelu(s) => {
                if x > 0.0 {
                    1.0
                } else {
                    s as f64
                }
            }
            Unary::Sigmoid => sigmoid(x) * (1.0 - sigmoid(x)),
            Unary::Tanh => 1.0 - x.tanh().powi(2),
            Unary::Softplus => sigmoid(x),
            Unary::LogSigmoid => sigmoid(-x),
            Unary::Affine { scale, .. } => scale as f64,
        }
    }

    pub fn unary(x: &[f64], op: Unary) -> Vec<f64> {
        x.iter().map(|&v| unary_f(v, op)).collect()
    }

    pub fn unary_backward(x: &[f64], gy: &[f64], op: Unary) -> Vec<f64> {
        x.iter().zip(gy).map(|(&v, &g)| g * unary_d(v, op)).collect()
    }

    pub fn binary_f(a: f64, b: f64, op: Binary) -> f64 {
        match op {
            Binary::Add => a + b,
            Binary::Sub => a - b,
            Binary::Mul => a * b,
            Binary::Div => a / b,
            Binary::Pow => powf(a, b),
            Binary::Maximum => a.max(b),
            Binary::Minimum => a.min(b),
        }
    }

    /// (d/da, d/db) of op at (a, b).
    pub fn binary_d(a: f64, b: f64, op: Binary) -> (f64, f64) {
        let tie = |mine: f64, other: f64, wins: bool| if mine == other { 0.5 } else { wins as u8 as f64 };
        match op {
            Binary::Add => (1.0, 1.0),
            Binary::Sub => (1.0, -1.0),
            Binary::Mul => (b, a),
            Binary::Div => (1.0 / b, -a / (b * b)),
            Binary::Pow => (b * powf(a, b - 1.0), powf(a, b) * a.ln()),
            Binary::Maximum => (tie(a, b, a > b), tie(b, a, b > a)),
            Binary::Minimum => (tie(a, b, a < b), tie(b, a, b < a)),
        }
    }

    /// Output index -> (index into a, index into b) under numpy broadcasting.
    fn broadcast_index(i: usize, out: &[usize], shape: &[usize]) -> usize {
        let mut rem = i;
        let mut idx = 0;
        let mut stride = 1;
        let off = out.len() - shape.len();
        for d in (0..out.len()).rev() {
            let c = rem % out[d];
            rem /= out[d];
            if d >= off {
                let s = shape[d - off];
                if s != 1 {
                    idx += c * stride;
                }
                stride *= s;
            }
        }
        idx
    }

    pub fn binary(a: &[f64], ashape: &[usize], b: &[f64], bshape: &[usize], op: Binary) -> (Vec<f64>, Vec<usize>) {
        let out = super::broadcast_shape(ashape, bshape).expect("shapes broadcast");
        let n: usize = out.iter().product();
        let y = (0..n)
            .map(|i| binary_f(a[broadcast_index(i, &out, ashape)], b[broadcast_index(i, &out, bshape)], op))
            .collect();
        (y, out)
    }

    pub fn binary_backward(
        a: &[f64],
        ashape: &[usize],
        b: &[f64],
        bshape: &[usize],
        gy: &[f64],
        op: Binary,
    ) -> (Vec<f64>, Vec<f64>) {
        let out = super::broadcast_shape(ashape, bshape).expect("shapes broadcast");
        let mut ga = vec![0.0; a.len()];
        let mut gb = vec![0.0; b.len()];
        for (i, &g) in gy.iter().enumerate() {
            let (ia, ib) = (broadcast_index(i, &out, ashape), broadcast_index(i, &out, bshape));
            let (da, db) = binary_d(a[ia], b[ib], op);
            ga[ia] += g * da;
            gb[ib] += g * db;
        }
        (ga, gb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu_or_skip;
    use crate::testing::{assert_close, assert_close_f64, numeric_vjp, to_f32, TestRng};

    /// Every unary op with an input range where it is smooth (away from kinks for the gradient check).
    fn unary_cases() -> Vec<(Unary, f64, f64)> {
        vec![
            (Unary::Neg, -3.0, 3.0),
            (Unary::Exp, -3.0, 3.0),
            (Unary::Log, 0.1, 4.0),
            (Unary::Sqrt, 0.1, 4.0),
            (Unary::Abs, -3.0, 3.0),
            (Unary::Sign, -3.0, 3.0),
            (Unary::Pow(3.0), -2.0, 2.0),
            (Unary::Pow(0.5), 0.1, 4.0),
            (Unary::Clamp(-0.5, 0.7), -2.0, 2.0),
            (Unary::Relu, -3.0, 3.0),
            (Unary::LeakyRelu(0.2), -3.0, 3.0),
            (Unary::Sigmoid, -8.0, 8.0),
            (Unary::Tanh, -4.0, 4.0),
            (Unary::Softplus, -8.0, 8.0),
            (Unary::LogSigmoid, -8.0, 8.0),
            (Unary::Affine { scale: -1.5, shift: 0.25 }, -3.0, 3.0),
        ]
    }

    /// Keeps inputs at least `gap` from the op's kinks so central differences are meaningful.
    fn away_from_kinks(x: &mut [f64], op: Unary, gap: f64) {
        let kinks: Vec<f64> = match op {
            Unary::Abs | Unary::Sign | Unary::Relu | Unary::LeakyRelu(_) => vec![0.0],
            Unary::Clamp(lo, hi) => vec![lo as f64, hi as f64],
            _ => vec![],
        };
        for v in x.iter_mut() {
            for &k in &kinks {
                if (*v - k).abs() < gap {
                    *v = k + gap.copysign(*v - k + 1e-12);
                }
            }
            *v = *v as f32 as f64;
        }
    }

    // Tolerances: transcendental functions on GPUs are accurate to a few ulp; 1e-5 absolute plus
    // 1e-5 relative covers f32 rounding of inputs near 1e1 without hiding a wrong formula.
    const ATOL: f64 = 1e-5;
    const RTOL: f64 = 1e-5;

    #[test]
    fn unary_forward_and_backward_match_cpu() {
        let ctx = gpu_or_skip!();
        let mut rng = TestRng::new(1);
        // 1155 elements: not a multiple of the workgroup (nor of 4: the scalar kernels); 420: the
        // vec4 kernels.
        for shape in [[3, 5, 7, 11], [3, 4, 7, 5]] {
        let n: usize = shape.iter().product();
        for (op, lo, hi) in unary_cases() {
            let mut x = rng.vec(n, lo, hi);
            away_from_kinks(&mut x, op, 1e-3);
            let gy = rng.vec(n, -1.0, 1.0);
            let xt = Tensor::from_slice(&ctx, &shape, &to_f32(&x)).unwrap();
            let gyt = Tensor::from_slice(&ctx, &shape, &to_f32(&gy)).unwrap();
            let y = unary(&xt, op).unwrap().to_vec().unwrap();
            assert_close(&format!("{op:?} {shape:?} forward"), &y, &cpu::unary(&x, op), ATOL, RTOL);
            let gx = unary_backward(&xt, &gyt, op).unwrap().to_vec().unwrap();
            assert_close(&format!("{op:?} {shape:?} backward"), &gx, &cpu::unary_backward(&x, &gy, op), ATOL, RTOL);
        }
        }
    }

    #[test]
    fn unary_cpu_backward_matches_central_differences() {
        let mut rng = TestRng::new(2);
        for (op, lo, hi) in unary_cases() {
            let mut x = rng.vec(37, lo, hi);
            away_from_kinks(&mut x, op, 1e-2);
            let w = rng.vec(37, -1.0, 1.0);
            let numeric = numeric_vjp(|x| cpu::unary(x, op), &x, &w, 1e-6);
            // Central differences in f64 with eps 1e-6 are accurate to ~1e-9 for these smooth functions.
            assert_close_f64(&format!("{op:?} gradcheck"), &cpu::unary_backward(&x, &w, op), &numeric, 1e-7, 1e-6);
        }
    }

    fn binary_cases() -> Vec<(Binary, f64, f64, f64, f64)> {
        vec![
            (Binary::Add, -2.0, 2.0, -2.0, 2.0),
            (Binary::Sub, -2.0, 2.0, -2.0, 2.0),
            (Binary::Mul, -2.0, 2.0, -2.0, 2.0),
            (Binary::Div, -2.0, 2.0, 0.5, 2.0),
            (Binary::Pow, 0.2, 2.0, -1.5, 1.5),
            (Binary::Maximum, -2.0, 2.0, -2.0, 2.0),
            (Binary::Minimum, -2.0, 2.0, -2.0, 2.0),
        ]
    }

    /// Broadcast pairs: equal shapes (odd, and a multiple of 4 elements: the vec4 kernels), a
    /// scalar, a per-channel vector, both sides broadcasting.
    fn shape_pairs() -> Vec<(Vec<usize>, Vec<usize>)> {
        vec![
            (vec![3, 5, 7], vec![3, 5, 7]),
            (vec![2, 3, 4, 5], vec![2, 3, 4, 5]),
            (vec![2, 3, 5, 7], vec![]),
            (vec![2, 3, 5, 7], vec![3, 1, 1]),
            (vec![5, 1, 7], vec![3, 1]),
            (vec![1], vec![13]),
        ]
    }

    #[test]
    fn binary_forward_and_backward_match_cpu_with_broadcasting() {
        let ctx = gpu_or_skip!();
        let mut rng = TestRng::new(3);
        for (op, alo, ahi, blo, bhi) in binary_cases() {
            for (sa, sb) in shape_pairs() {
                let a = rng.vec(sa.iter().product(), alo, ahi);
                let b = rng.vec(sb.iter().product(), blo, bhi);
                let (want, out) = cpu::binary(&a, &sa, &b, &sb, op);
                let gy = rng.vec(want.len(), -1.0, 1.0);
                let at = Tensor::from_slice(&ctx, &sa, &to_f32(&a)).unwrap();
                let bt = Tensor::from_slice(&ctx, &sb, &to_f32(&b)).unwrap();
                let gyt = Tensor::from_slice(&ctx, &out, &to_f32(&gy)).unwrap();
                let what = format!("{op:?} {sa:?} {sb:?}");
                let y = binary(&at, &bt, op).unwrap();
                assert_eq!(y.shape(), out.as_slice());
                assert_close(&format!("{what} forward"), &y.to_vec().unwrap(), &want, ATOL, RTOL);
                let (ga, gb) = binary_backward(&at, &bt, &gyt, op).unwrap();
                let (wa, wb) = cpu::binary_backward(&a, &sa, &b, &sb, &gy, op);
                // Summing up to a few hundred f32 terms: 1e-4 absolute.
                assert_close(&format!("{what} grad a"), &ga.to_vec().unwrap(), &wa, 1e-4, 1e-4);
                assert_close(&format!("{what} grad b"), &gb.to_vec().unwrap(), &wb, 1e-4, 1e-4);
                // One side at a time: the other is not computed.
                let (ga, none) = binary_backward_needed(&at, &bt, &gyt, op, [true, false]).unwrap();
                assert!(none.is_none(), "{what}");
                assert_close(&format!("{what} grad a alone"), &ga.unwrap().to_vec().unwrap(), &wa, 1e-4, 1e-4);
                let (none, gb) = binary_backward_needed(&at, &bt, &gyt, op, [false, true]).unwrap();
                assert!(none.is_none(), "{what}");
                assert_close(&format!("{what} grad b alone"), &gb.unwrap().to_vec().unwrap(), &wb, 1e-4, 1e-4);
            }
        }
    }

    #[test]
    fn binary_cpu_backward_matches_central_differences() {
        let mut rng = TestRng::new(4);
        for (op, alo, ahi, blo, bhi) in binary_cases() {
            for (sa, sb) in shape_pairs() {
                let a = rng.vec(sa.iter().product(), alo, ahi);
                // Keep max/min operands apart so no tie sits inside the difference step.
                let b: Vec<f64> = rng.vec(sb.iter().product(), blo, bhi).iter().map(|v| v + 1e-3).collect();
                let (y, _) = cpu::binary(&a, &sa, &b, &sb, op);
                let w = rng.vec(y.len(), -1.0, 1.0);
                let (ga, gb) = cpu::binary_backward(&a, &sa, &b, &sb, &w, op);
                let na = numeric_vjp(|a| cpu::binary(a, &sa, &b, &sb, op).0, &a, &w, 1e-6);
                let nb = numeric_vjp(|b| cpu::binary(&a, &sa, b, &sb, op).0, &b, &w, 1e-6);
                assert_close_f64(&format!("{op:?} {sa:?} {sb:?} grad a"), &ga, &na, 1e-6, 1e-6);
                assert_close_f64(&format!("{op:?} {sa:?} {sb:?} grad b"), &gb, &nb, 1e-6, 1e-6);
            }
        }
    }

    #[test]
    fn incompatible_shapes_and_wrong_gradients_are_errors() {
        let ctx = gpu_or_skip!();
        let a = Tensor::zeros(&ctx, &[2, 3]).unwrap();
        let b = Tensor::zeros(&ctx, &[4]).unwrap();
        let err = binary(&a, &b, Binary::Add).unwrap_err().to_string();
        assert!(err.contains("[2, 3]") && err.contains("[4]"), "{err}");
        let big = Tensor::zeros(&ctx, &[1, 1, 1, 1, 2]).unwrap();
        let err = binary(&big, &big, Binary::Add).unwrap_err().to_string();
        assert!(err.contains("4 dimensions"), "{err}");
        let gy = Tensor::zeros(&ctx, &[3]).unwrap();
        assert!(unary_backward(&a, &gy, Unary::Relu).is_err());
    }
}
