//! Batch normalisation over [N, C] (1d) or [N, C, H, W] (2d), with running statistics.

use std::cell::Cell;

use crate::autograd::{batch_norm, batch_norm_fused, batch_norm_max_pool, max_pool2d, Var};
use crate::kernels::batchnorm::pool::fits as pool_fits;
use crate::kernels::conv2d::Epilogue;
use crate::kernels::pool2d::Pool2d;
use crate::kernels::{Result, Tensor};

use super::activation::activate;
use super::{join, Activation, Init, Module};

/// Two tensors of one channel vector each (running mean and variance).
type Pair<'a> = (&'a Tensor, &'a Tensor);

pub struct BatchNorm {
    /// gamma and beta, [C], when affine.
    pub affine: Option<(Var, Var)>,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    pub momentum: f32,
    pub eps: f32,
    /// Applied to the output; ReLU and leaky ReLU run inside the normalising pass.
    pub activation: Option<Activation>,
    /// Max pooling after the activation (no parameters). A 2x2 window at stride 2 on even planes
    /// runs fused with the batch norm: its normalised map is never written at full size.
    pub pool: Option<Pool2d>,
    training: Cell<bool>,
}

impl BatchNorm {
    /// PyTorch defaults: gamma = 1, beta = 0, running mean 0 and variance 1, momentum 0.1, eps 1e-5.
    pub fn new(init: &mut Init, channels: usize, affine: bool) -> Result<BatchNorm> {
        let affine = if affine { Some((init.constant(&[channels], 1.0)?, init.constant(&[channels], 0.0)?)) } else { None };
        let ctx = init.context().clone();
        Ok(BatchNorm {
            affine,
            running_mean: Tensor::from_slice(&ctx, &[channels], &vec![0.0; channels])?,
            running_var: Tensor::from_slice(&ctx, &[channels], &vec![1.0; channels])?,
            momentum: 0.1,
            eps: 1e-5,
            activation: None,
            pool: None,
            training: Cell::new(true),
        })
    }

    /// The same layer followed by `activation` (no parameters or buffers, so no new names).
    pub fn with_activation(self, activation: Activation) -> BatchNorm {
        BatchNorm { activation: Some(activation), ..self }
    }

    /// The same layer followed by max pooling (after the activation); no new names either.
    pub fn with_max_pool(self, pool: Pool2d) -> BatchNorm {
        BatchNorm { pool: Some(pool), ..self }
    }

    /// (gamma, beta) when affine, and the running statistics, as the autograd ops take them.
    fn state(&self) -> (Option<(&Var, &Var)>, Option<Pair<'_>>) {
        (self.affine.as_ref().map(|(g, b)| (g, b)), Some((&self.running_mean, &self.running_var)))
    }

    /// The batch norm and its activation, without the pool.
    fn normalize(&self, x: &Var) -> Result<Var> {
        let (affine, running) = self.state();
        let (training, momentum, eps) = (self.training.get(), self.momentum, self.eps);
        activate(
            self.activation,
            || batch_norm(x, affine, running, training, momentum, eps),
            |e| batch_norm_fused(x, affine, running, training, momentum, eps, e),
        )
    }
}

impl Module for BatchNorm {
    fn forward(&self, x: &Var) -> Result<Var> {
        let Some(pool) = self.pool else { return self.normalize(x) };
        // The fused layer: 2x2 stride-2 windows on even planes, an activation with an epilogue.
        let epilogue = match self.activation {
            None => Some(Epilogue::Identity),
            Some(a) => a.epilogue(),
        };
        match epilogue {
            Some(e) if pool == Pool2d::square(2) && pool_fits(x.shape()) => {
                let (affine, running) = self.state();
                batch_norm_max_pool(x, affine, running, self.training.get(), self.momentum, self.eps, e)
            }
            _ => max_pool2d(&self.normalize(x)?, pool),
        }
    }

    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Var)) {
        if let Some((g, b)) = &self.affine {
            f(join(prefix, "weight"), g);
            f(join(prefix, "bias"), b);
        }
    }

    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        f(join(prefix, "running_mean"), &self.running_mean);
        f(join(prefix, "running_var"), &self.running_var);
    }

    fn set_training(&self, training: bool) {
        self.training.set(training);
    }
}
