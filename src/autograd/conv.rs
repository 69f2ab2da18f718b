//! Convolution graph ops over `oddity_kernels::conv2d` and `conv_transpose2d`.

use oddity_kernels::conv2d::{self as c, Conv2dParams};
use oddity_kernels::conv_transpose2d::{self as ct, ConvTranspose2dParams};
use oddity_kernels::{Result, Tensor};

use super::var::{BackwardOp, Var};

struct Conv2dBackward {
    x: Tensor,
    w: Tensor,
    has_bias: bool,
    params: Conv2dParams,
}

impl BackwardOp for Conv2dBackward {
    fn backward(&self, gy: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let gx = if needs[0] { Some(c::conv2d_backward_data(gy, &self.w, self.x.shape(), &self.params)?) } else { None };
        let gw = if needs[1] { Some(c::conv2d_backward_weight(&self.x, gy, self.w.shape(), &self.params)?) } else { None };
        let mut out = vec![gx, gw];
        if self.has_bias {
            out.push(if needs[2] { Some(c::conv2d_backward_bias(gy)?) } else { None });
        }
        Ok(out)
    }
}

/// x: [N, C_in, H, W], w: [C_out, C_in, kh, kw], bias: [C_out]
pub fn conv2d(x: &Var, w: &Var, bias: Option<&Var>, params: Conv2dParams) -> Result<Var> {
    let y = c::conv2d(x.value(), w.value(), bias.map(Var::value), &params)?;
    let backward = Conv2dBackward { x: x.value().clone(), w: w.value().clone(), has_bias: bias.is_some(), params };
    let parents: Vec<&Var> = [Some(x), Some(w), bias].into_iter().flatten().collect();
    Ok(Var::from_op(y, "conv2d", &parents, Some(Box::new(backward))))
}

struct ConvTranspose2dBackward {
    x: Tensor,
    w: Tensor,
    has_bias: bool,
    params: ConvTranspose2dParams,
}

impl BackwardOp for ConvTranspose2dBackward {
    fn backward(&self, gy: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let p = &self.params;
        let gx = if needs[0] { Some(ct::conv_transpose2d_backward_data(gy, &self.w, self.x.shape(), p)?) } else { None };
        let gw = if needs[1] { Some(ct::conv_transpose2d_backward_weight(&self.x, gy, self.w.shape(), p)?) } else { None };
        let mut out = vec![gx, gw];
        if self.has_bias {
            out.push(if needs[2] { Some(ct::conv_transpose2d_backward_bias(gy)?) } else { None });
        }
        Ok(out)
    }
}

/// x: [N, C_in, H, W], w: [C_in, C_out, kh, kw] (PyTorch's layout), bias: [C_out]
pub fn conv_transpose2d(x: &Var, w: &Var, bias: Option<&Var>, params: ConvTranspose2dParams) -> Result<Var> {
    let y = ct::conv_transpose2d(x.value(), w.value(), bias.map(Var::value), &params)?;
    let backward =
        ConvTranspose2dBackward { x: x.value().clone(), w: w.value().clone(), has_bias: bias.is_some(), params };
    let parents: Vec<&Var> = [Some(x), Some(w), bias].into_iter().flatten().collect();
    Ok(Var::from_op(y, "conv_transpose2d", &parents, Some(Box::new(backward))))
}
