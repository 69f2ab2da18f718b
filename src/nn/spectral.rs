//! Spectral normalisation (Miyato et al. 2018) of a conv or linear layer's weight:
//! W_sn = W / σ(W), with σ estimated by one power iteration per training forward on persistent
//! vectors u and v (PyTorch's `spectral_norm`). The iteration runs without gradient; σ = uᵀ W v is
//! differentiated through W only.

use std::cell::Cell;

use crate::autograd::{conv2d, matmul, no_grad, Var};
use crate::kernels::{Result, Tensor};

use super::{join, Conv2d, Init, Linear, Module};

pub enum SpectralLayer {
    Conv(Conv2d),
    Linear(Linear),
}

pub struct SpectralNorm {
    pub layer: SpectralLayer,
    /// [rows, 1] with rows = out channels / features.
    pub u: Tensor,
    /// [cols, 1] with cols = the rest of the weight's size.
    pub v: Tensor,
    pub eps: f32,
    training: Cell<bool>,
}

/// x / (‖x‖ + eps), without gradient.
fn normalize(x: &Var, eps: f32) -> Result<Var> {
    let norm = x.mul(x)?.sum()?.sqrt()?.add_scalar(eps)?;
    x.div(&norm)
}

impl SpectralNorm {
    /// Wraps a layer; u and v start from N(0, 1), normalised, as PyTorch does.
    pub fn new(init: &mut Init, layer: SpectralLayer) -> Result<SpectralNorm> {
        let shape = Self::weight_of(&layer).shape().to_vec();
        let rows = shape[0];
        let cols: usize = shape[1..].iter().product();
        let u = no_grad(|| normalize(&Var::constant(init.normal_tensor(&[rows, 1])?), 1e-12))?.value().clone();
        let v = no_grad(|| normalize(&Var::constant(init.normal_tensor(&[cols, 1])?), 1e-12))?.value().clone();
        Ok(SpectralNorm { layer, u, v, eps: 1e-12, training: Cell::new(true) })
    }

    fn weight_of(layer: &SpectralLayer) -> &Var {
        match layer {
            SpectralLayer::Conv(c) => &c.weight,
            SpectralLayer::Linear(l) => &l.weight,
        }
    }

    /// The normalised weight W / σ used by the forward pass (updates u, v in training).
    pub fn normalized_weight(&self) -> Result<Var> {
        let w = Self::weight_of(&self.layer);
        let rows = w.shape()[0];
        let cols = w.value().numel() / rows;
        let w_mat = w.reshape(&[rows, cols])?;
        if self.training.get() {
            no_grad(|| -> Result<()> {
                let w_const = Var::constant(w_mat.value().clone());
                let v = normalize(&matmul(&w_const, &Var::constant(self.u.clone()), true, false)?, self.eps)?;
                let u = normalize(&matmul(&w_const, &v, false, false)?, self.eps)?;
                self.v.copy_from(v.value())?;
                self.u.copy_from(u.value())?;
                Ok(())
            })?;
        }
        // σ = uᵀ W v, with u and v held constant (no gradient through the power iteration).
        let wv = matmul(&w_mat, &Var::constant(self.v.clone()), false, false)?;
        let sigma = wv.mul(&Var::constant(self.u.clone()))?.sum()?;
        w.div(&sigma)
    }
}

impl Module for SpectralNorm {
    fn forward(&self, x: &Var) -> Result<Var> {
        let w = self.normalized_weight()?;
        match &self.layer {
            SpectralLayer::Conv(c) => conv2d(x, &w, c.bias.as_ref(), c.params),
            SpectralLayer::Linear(l) => {
                let y = matmul(x, &w, false, true)?;
                match &l.bias {
                    Some(b) => y.add(b),
                    None => Ok(y),
                }
            }
        }
    }

    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Var)) {
        match &self.layer {
            SpectralLayer::Conv(c) => c.visit_parameters(prefix, f),
            SpectralLayer::Linear(l) => l.visit_parameters(prefix, f),
        }
    }

    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        f(join(prefix, "weight_u"), &self.u);
        f(join(prefix, "weight_v"), &self.v);
    }

    fn set_training(&self, training: bool) {
        self.training.set(training);
    }
}
