//! Convolution graph ops over `oddity_kernels::conv2d` and `conv_transpose2d`.

use std::borrow::Cow;

use oddity_kernels::conv2d::{self as c, Conv2dParams, Epilogue};
use oddity_kernels::conv_transpose2d::{self as ct, ConvTranspose2dParams};
use oddity_kernels::elementwise::{unary_backward, Unary};
use oddity_kernels::{Result, Tensor};

use super::var::{BackwardOp, Var};

/// The fused activation's output and slope, kept for the backward (`None` without one).
type Activated = Option<(Tensor, f32)>;

/// The gradient at the pre-activation: gy times the leaky ReLU's derivative, read off the output
/// (the slope is >= 0, so y > 0 exactly where the pre-activation is).
fn through_activation<'a>(gy: &'a Tensor, activated: &Activated) -> Result<Cow<'a, Tensor>> {
    Ok(match activated {
        Some((y, slope)) => Cow::Owned(unary_backward(y, gy, Unary::LeakyRelu(*slope))?),
        None => Cow::Borrowed(gy),
    })
}

/// What the backward keeps of a fused activation: the output and the slope.
fn activated(y: &Tensor, epi: Epilogue) -> Activated {
    match epi {
        Epilogue::LeakyRelu(slope) => Some((y.clone(), slope)),
        Epilogue::Identity => None,
    }
}

struct Conv2dBackward {
    x: Tensor,
    w: Tensor,
    has_bias: bool,
    params: Conv2dParams,
    activated: Activated,
}

impl BackwardOp for Conv2dBackward {
    fn backward(&self, gy: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let gy = &*through_activation(gy, &self.activated)?;
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
    conv2d_fused(x, w, bias, Epilogue::Identity, params)
}

/// conv2d followed by the epilogue's activation, computed in the conv's own stores; the
/// backward applies the activation's derivative to gy first (one elementwise kernel, as unfused).
pub fn conv2d_fused(x: &Var, w: &Var, bias: Option<&Var>, epi: Epilogue, params: Conv2dParams) -> Result<Var> {
    let y = c::conv2d_fused(x.value(), w.value(), bias.map(Var::value), epi, &params)?;
    let backward = Conv2dBackward {
        x: x.value().clone(),
        w: w.value().clone(),
        has_bias: bias.is_some(),
        params,
        activated: activated(&y, epi),
    };
    let parents: Vec<&Var> = [Some(x), Some(w), bias].into_iter().flatten().collect();
    let name = if epi == Epilogue::Identity { "conv2d" } else { "conv2d+leaky_relu" };
    Ok(Var::from_op(y, name, &parents, Some(Box::new(backward))))
}

struct ConvTranspose2dBackward {
    x: Tensor,
    w: Tensor,
    has_bias: bool,
    params: ConvTranspose2dParams,
    activated: Activated,
}

impl BackwardOp for ConvTranspose2dBackward {
    fn backward(&self, gy: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let gy = &*through_activation(gy, &self.activated)?;
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
    conv_transpose2d_fused(x, w, bias, Epilogue::Identity, params)
}

/// conv_transpose2d followed by the epilogue's activation, as [`conv2d_fused`].
pub fn conv_transpose2d_fused(
    x: &Var,
    w: &Var,
    bias: Option<&Var>,
    epi: Epilogue,
    params: ConvTranspose2dParams,
) -> Result<Var> {
    let y = ct::conv_transpose2d_fused(x.value(), w.value(), bias.map(Var::value), epi, &params)?;
    let backward = ConvTranspose2dBackward {
        x: x.value().clone(),
        w: w.value().clone(),
        has_bias: bias.is_some(),
        params,
        activated: activated(&y, epi),
    };
    let parents: Vec<&Var> = [Some(x), Some(w), bias].into_iter().flatten().collect();
    let name = if epi == Epilogue::Identity { "conv_transpose2d" } else { "conv_transpose2d+leaky_relu" };
    Ok(Var::from_op(y, name, &parents, Some(Box::new(backward))))
}
