//! Fully connected layer: y = x Wᵀ + b.

use crate::autograd::{matmul, Var};
use crate::kernels::Result;

use super::{join, Init, Module};

pub struct Linear {
    /// [out_features, in_features]
    pub weight: Var,
    /// [out_features]
    pub bias: Option<Var>,
}

impl Linear {
    /// PyTorch's default initialisation: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)).
    pub fn new(init: &mut Init, in_features: usize, out_features: usize, bias: bool) -> Result<Linear> {
        let bound = 1.0 / (in_features as f32).sqrt();
        let weight = init.uniform(&[out_features, in_features], bound)?;
        let bias = if bias { Some(init.uniform(&[out_features], bound)?) } else { None };
        Ok(Linear { weight, bias })
    }
}

impl Module for Linear {
    /// x: [batch, in_features] -> [batch, out_features]
    fn forward(&self, x: &Var) -> Result<Var> {
        let y = matmul(x, &self.weight, false, true)?;
        match &self.bias {
            Some(b) => y.add(b),
            None => Ok(y),
        }
    }

    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Var)) {
        f(join(prefix, "weight"), &self.weight);
        if let Some(b) = &self.bias {
            f(join(prefix, "bias"), b);
        }
    }
}
