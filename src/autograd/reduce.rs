//! Graph ops over `oddity_kernels::reduce` (sum, mean, max, variance) and `matmul`.

use oddity_kernels::matmul as mm;
use oddity_kernels::reduce::{self as k, Reduce};
use oddity_kernels::{Result, Tensor};

use super::var::{BackwardOp, Var};

struct ReduceBackward {
    x: Tensor,
    axis: Option<usize>,
    op: Reduce,
    keepdim: bool,
}

impl BackwardOp for ReduceBackward {
    fn backward(&self, gy: &Tensor, _needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(k::reduce_backward(&self.x, gy, self.axis, self.op, self.keepdim)?)])
    }
}

struct MaxBackward {
    x: Tensor,
    argmax: Tensor,
    axis: Option<usize>,
    keepdim: bool,
}

impl BackwardOp for MaxBackward {
    fn backward(&self, gy: &Tensor, _needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(k::max_backward(&self.x, &self.argmax, gy, self.axis, self.keepdim)?)])
    }
}

/// Reduces over one axis (or everything with `None`). Max routes its gradient to the first maximum.
pub fn reduce(x: &Var, axis: Option<usize>, op: Reduce, keepdim: bool) -> Result<Var> {
    if op == Reduce::Max {
        let (y, argmax) = k::max_with_argmax(x.value(), axis, keepdim)?;
        let backward = MaxBackward { x: x.value().clone(), argmax, axis, keepdim };
        return Ok(Var::from_op(y, "max", &[x], Some(Box::new(backward))));
    }
    let y = k::reduce(x.value(), axis, op, keepdim)?;
    let backward = ReduceBackward { x: x.value().clone(), axis, op, keepdim };
    Ok(Var::from_op(y, "reduce", &[x], Some(Box::new(backward))))
}

struct MatmulBackward {
    a: Tensor,
    b: Tensor,
    trans_a: bool,
    trans_b: bool,
}

impl BackwardOp for MatmulBackward {
    fn backward(&self, gy: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let (ga, gb) = mm::matmul_backward(&self.a, &self.b, gy, self.trans_a, self.trans_b)?;
        Ok(vec![needs[0].then_some(ga), needs[1].then_some(gb)])
    }
}

/// op(a) @ op(b), optionally batched; see `oddity_kernels::matmul`.
pub fn matmul(a: &Var, b: &Var, trans_a: bool, trans_b: bool) -> Result<Var> {
    let y = mm::matmul(a.value(), b.value(), trans_a, trans_b)?;
    let backward = MatmulBackward { a: a.value().clone(), b: b.value().clone(), trans_a, trans_b };
    Ok(Var::from_op(y, "matmul", &[a, b], Some(Box::new(backward))))
}

impl Var {
    /// Sum of all elements (shape `[]`).
    pub fn sum(&self) -> Result<Var> {
        reduce(self, None, Reduce::Sum, false)
    }
    /// Mean of all elements (shape `[]`).
    pub fn mean(&self) -> Result<Var> {
        reduce(self, None, Reduce::Mean, false)
    }
    pub fn sum_axis(&self, axis: usize, keepdim: bool) -> Result<Var> {
        reduce(self, Some(axis), Reduce::Sum, keepdim)
    }
    pub fn mean_axis(&self, axis: usize, keepdim: bool) -> Result<Var> {
        reduce(self, Some(axis), Reduce::Mean, keepdim)
    }
    pub fn matmul(&self, other: &Var) -> Result<Var> {
        matmul(self, other, false, false)
    }
}
