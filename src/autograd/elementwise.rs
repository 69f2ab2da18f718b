//! Graph ops over `oddity_kernels::elementwise`: unary functions and broadcast binary arithmetic.
//! The backward kernels live beside the forward ones in `kernels/src/elementwise.rs`.

use oddity_kernels::elementwise::{self as k, Binary, Unary};
use oddity_kernels::{Result, Tensor};

use super::var::{BackwardOp, Var};

struct UnaryBackward {
    x: Tensor,
    op: Unary,
}

impl BackwardOp for UnaryBackward {
    fn backward(&self, gy: &Tensor, _needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(k::unary_backward(&self.x, gy, self.op)?)])
    }
}

/// The op's name in graph messages (e.g. the finiteness check's).
fn unary_name(op: Unary) -> &'static str {
    match op {
        Unary::Neg => "neg",
        Unary::Exp => "exp",
        Unary::Log => "log",
        Unary::Sqrt => "sqrt",
        Unary::Abs => "abs",
        Unary::Sign => "sign",
        Unary::Pow(_) => "powf",
        Unary::Clamp(..) => "clamp",
        Unary::Relu => "relu",
        Unary::LeakyRelu(_) => "leaky_relu",
        Unary::Sigmoid => "sigmoid",
        Unary::Tanh => "tanh",
        Unary::Softplus => "softplus",
        Unary::LogSigmoid => "log_sigmoid",
        Unary::Affine { .. } => "affine",
    }
}

fn binary_name(op: Binary) -> &'static str {
    match op {
        Binary::Add => "add",
        Binary::Sub => "sub",
        Binary::Mul => "mul",
        Binary::Div => "div",
        Binary::Pow => "pow",
        Binary::Maximum => "maximum",
        Binary::Minimum => "minimum",
    }
}

/// y = op(x) elementwise.
pub fn unary(x: &Var, op: Unary) -> Result<Var> {
    let y = k::unary(x.value(), op)?;
    let backward: Box<dyn BackwardOp> = Box::new(UnaryBackward { x: x.value().clone(), op });
    Ok(Var::from_op(y, unary_name(op), &[x], Some(backward)))
}

struct BinaryBackward {
    a: Tensor,
    b: Tensor,
    op: Binary,
}

impl BackwardOp for BinaryBackward {
    fn backward(&self, gy: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let (ga, gb) = k::binary_backward_needed(&self.a, &self.b, gy, self.op, [needs[0], needs[1]])?;
        Ok(vec![ga, gb])
    }
}

/// y = op(a, b) with numpy broadcasting; gradients are summed back to each operand's shape.
pub fn binary(a: &Var, b: &Var, op: Binary) -> Result<Var> {
    let y = k::binary(a.value(), b.value(), op)?;
    let backward: Box<dyn BackwardOp> = Box::new(BinaryBackward { a: a.value().clone(), b: b.value().clone(), op });
    Ok(Var::from_op(y, binary_name(op), &[a, b], Some(backward)))
}

impl Var {
    pub fn add(&self, other: &Var) -> Result<Var> {
        binary(self, other, Binary::Add)
    }
    pub fn sub(&self, other: &Var) -> Result<Var> {
        binary(self, other, Binary::Sub)
    }
    pub fn mul(&self, other: &Var) -> Result<Var> {
        binary(self, other, Binary::Mul)
    }
    pub fn div(&self, other: &Var) -> Result<Var> {
        binary(self, other, Binary::Div)
    }
    pub fn neg(&self) -> Result<Var> {
        unary(self, Unary::Neg)
    }
    pub fn exp(&self) -> Result<Var> {
        unary(self, Unary::Exp)
    }
    pub fn log(&self) -> Result<Var> {
        unary(self, Unary::Log)
    }
    pub fn sqrt(&self) -> Result<Var> {
        unary(self, Unary::Sqrt)
    }
    pub fn abs(&self) -> Result<Var> {
        unary(self, Unary::Abs)
    }
    pub fn powf(&self, p: f32) -> Result<Var> {
        unary(self, Unary::Pow(p))
    }
    pub fn relu(&self) -> Result<Var> {
        unary(self, Unary::Relu)
    }
    pub fn leaky_relu(&self, slope: f32) -> Result<Var> {
        unary(self, Unary::LeakyRelu(slope))
    }
    pub fn sigmoid(&self) -> Result<Var> {
        unary(self, Unary::Sigmoid)
    }
    pub fn tanh(&self) -> Result<Var> {
        unary(self, Unary::Tanh)
    }
    pub fn softplus(&self) -> Result<Var> {
        unary(self, Unary::Softplus)
    }
    pub fn log_sigmoid(&self) -> Result<Var> {
        unary(self, Unary::LogSigmoid)
    }
    /// x * scale + shift.
    pub fn affine(&self, scale: f32, shift: f32) -> Result<Var> {
        unary(self, Unary::Affine { scale, shift })
    }
    pub fn add_scalar(&self, s: f32) -> Result<Var> {
        self.affine(1.0, s)
    }
    pub fn mul_scalar(&self, s: f32) -> Result<Var> {
        self.affine(s, 0.0)
    }
}
