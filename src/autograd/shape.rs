//! Shape ops: reshape/flatten (views of the same buffer) and channel concat/slice.

use oddity_kernels::concat as k;
use oddity_kernels::{Result, Tensor};

use super::var::{BackwardOp, Var};

struct ReshapeBackward {
    input_shape: Vec<usize>,
}

impl BackwardOp for ReshapeBackward {
    fn backward(&self, gy: &Tensor, _needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(gy.reshape(&self.input_shape)?)])
    }
}

struct ConcatBackward {
    channels: Vec<usize>,
}

impl BackwardOp for ConcatBackward {
    fn backward(&self, gy: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let parts = k::concat_backward(gy, &self.channels)?;
        Ok(parts.into_iter().zip(needs).map(|(g, &n)| n.then_some(g)).collect())
    }
}

struct SliceBackward {
    input_shape: Vec<usize>,
    start: usize,
}

impl BackwardOp for SliceBackward {
    fn backward(&self, gy: &Tensor, _needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(k::slice_channels_backward(gy, &self.input_shape, self.start)?)])
    }
}

/// Concatenates `[N, C_i, ...]` tensors along the channel axis.
pub fn concat(xs: &[&Var]) -> Result<Var> {
    let values: Vec<&Tensor> = xs.iter().map(|v| v.value()).collect();
    let y = k::concat(&values)?;
    let channels = xs.iter().map(|v| v.shape()[1]).collect();
    Ok(Var::from_op(y, "concat", xs, Some(Box::new(ConcatBackward { channels }))))
}

impl Var {
    /// Same data, new shape.
    pub fn reshape(&self, shape: &[usize]) -> Result<Var> {
        let y = self.value().reshape(shape)?;
        let backward = ReshapeBackward { input_shape: self.shape().to_vec() };
        Ok(Var::from_op(y, "reshape", &[self], Some(Box::new(backward))))
    }

    /// `[N, ...]` -> `[N, prod(...)]`.
    pub fn flatten(&self) -> Result<Var> {
        let n = self.shape().first().copied().unwrap_or(1);
        let rest: usize = self.shape().iter().skip(1).product();
        self.reshape(&[n, rest])
    }

    /// Channels `[start, end)` of `[N, C, ...]`.
    pub fn slice_channels(&self, start: usize, end: usize) -> Result<Var> {
        let y = k::slice_channels(self.value(), start, end)?;
        let backward = SliceBackward { input_shape: self.shape().to_vec(), start };
        Ok(Var::from_op(y, "slice_channels", &[self], Some(Box::new(backward))))
    }
}
