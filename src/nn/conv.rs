//! Convolution layers (NCHW), PyTorch initialisation and parameter names.

use crate::autograd::{conv2d, conv2d_fused, conv_transpose2d, conv_transpose2d_fused, Var};
use crate::kernels::conv2d::Conv2dParams;
use crate::kernels::conv_transpose2d::ConvTranspose2dParams;
use crate::kernels::Result;

use super::activation::activate;
use super::{join, Activation, Init, Module};

pub struct Conv2d {
    /// [out_channels, in_channels, kh, kw]
    pub weight: Var,
    /// [out_channels]
    pub bias: Option<Var>,
    pub params: Conv2dParams,
    /// Applied to the output; ReLU and leaky ReLU run inside the conv's stores.
    pub activation: Option<Activation>,
}

impl Conv2d {
    /// Square kernel `k`, with stride and padding; dilation 1. Weights and bias ~
    /// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in_channels * k * k (PyTorch's default).
    pub fn new(init: &mut Init, in_channels: usize, out_channels: usize, k: usize, stride: usize, padding: usize, bias: bool) -> Result<Conv2d> {
        let bound = 1.0 / ((in_channels * k * k) as f32).sqrt();
        let weight = init.uniform(&[out_channels, in_channels, k, k], bound)?;
        let bias = if bias { Some(init.uniform(&[out_channels], bound)?) } else { None };
        Ok(Conv2d { weight, bias, params: Conv2dParams::new([stride; 2], [padding; 2], [1; 2]), activation: None })
    }

    /// The same layer followed by `activation` (no parameters, so no new names).
    pub fn with_activation(self, activation: Activation) -> Conv2d {
        Conv2d { activation: Some(activation), ..self }
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Var) -> Result<Var> {
        let (w, b, p) = (&self.weight, self.bias.as_ref(), self.params);
        activate(self.activation, || conv2d(x, w, b, p), |e| conv2d_fused(x, w, b, e, p))
    }

    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Var)) {
        f(join(prefix, "weight"), &self.weight);
        if let Some(b) = &self.bias {
            f(join(prefix, "bias"), b);
        }
    }
}

pub struct ConvTranspose2d {
    /// [in_channels, out_channels, kh, kw] (PyTorch's layout)
    pub weight: Var,
    pub bias: Option<Var>,
    pub params: ConvTranspose2dParams,
    /// Applied to the output; ReLU and leaky ReLU run inside the conv's stores.
    pub activation: Option<Activation>,
}

impl ConvTranspose2d {
    /// PyTorch computes the transposed conv's fan_in from weight dim 1: out_channels * k * k.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        init: &mut Init,
        in_channels: usize,
        out_channels: usize,
        k: usize,
        stride: usize,
        padding: usize,
        output_padding: usize,
        bias: bool,
    ) -> Result<ConvTranspose2d> {
        let bound = 1.0 / ((out_channels * k * k) as f32).sqrt();
        let weight = init.uniform(&[in_channels, out_channels, k, k], bound)?;
        let bias = if bias { Some(init.uniform(&[out_channels], bound)?) } else { None };
        let params = ConvTranspose2dParams::new([stride; 2], [padding; 2], [output_padding; 2], [1; 2]);
        Ok(ConvTranspose2d { weight, bias, params, activation: None })
    }

    /// The same layer followed by `activation` (no parameters, so no new names).
    pub fn with_activation(self, activation: Activation) -> ConvTranspose2d {
        ConvTranspose2d { activation: Some(activation), ..self }
    }
}

impl Module for ConvTranspose2d {
    fn forward(&self, x: &Var) -> Result<Var> {
        let (w, b, p) = (&self.weight, self.bias.as_ref(), self.params);
        activate(self.activation, || conv_transpose2d(x, w, b, p), |e| conv_transpose2d_fused(x, w, b, e, p))
    }

    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Var)) {
        f(join(prefix, "weight"), &self.weight);
        if let Some(b) = &self.bias {
            f(join(prefix, "bias"), b);
        }
    }
}
