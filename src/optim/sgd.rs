//! SGD (torch.optim.SGD): optional momentum with dampening, Nesterov momentum, L2 weight decay.
//! With momentum, each parameter gets a momentum buffer on its first update (set to the first
//! gradient, as PyTorch's `momentum_buffer` starts as a clone of it).

use std::collections::HashMap;

use oddity_kernels::optim::{sgd_step, SgdStep};
use oddity_kernels::Tensor;

use super::{check_lr, check_params, count_tensor, parse_state, Optimizer};
use crate::autograd::Var;
use crate::error::{Error, Result};

const PREFIX: &str = "optim.sgd.";

/// Hyperparameters; the defaults are PyTorch's apart from `lr`, which PyTorch requires.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    pub lr: f32,
    pub momentum: f32,
    pub dampening: f32,
    pub weight_decay: f32,
    pub nesterov: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig { lr: 1e-2, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false }
    }
}

pub struct Sgd {
    params: Vec<(String, Var)>,
    cfg: SgdConfig,
    /// Momentum buffers by parameter name (only with momentum != 0).
    buffers: HashMap<String, Tensor>,
    steps: u64,
}

impl Sgd {
    /// Errors name a bad hyperparameter (PyTorch's rules: nesterov needs momentum > 0 and
    /// dampening 0), a repeated parameter name or variable.
    pub fn new(params: Vec<(String, Var)>, cfg: SgdConfig) -> Result<Sgd> {
        check_params("SGD", &params)?;
        check_lr("SGD", cfg.lr)?;
        for (what, v) in [("momentum", cfg.momentum), ("weight_decay", cfg.weight_decay)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::InvalidArgument(format!("SGD: {what} must be finite and >= 0, got {v}")));
            }
        }
        if !cfg.dampening.is_finite() {
            return Err(Error::InvalidArgument(format!("SGD: dampening must be finite, got {}", cfg.dampening)));
        }
        if cfg.nesterov && (cfg.momentum <= 0.0 || cfg.dampening != 0.0) {
            return Err(Error::InvalidArgument(format!(
                "SGD: nesterov needs momentum > 0 and dampening 0, got momentum {} and dampening {}",
                cfg.momentum, cfg.dampening
            )));
        }
        Ok(Sgd { params, cfg, buffers: HashMap::new(), steps: 0 })
    }

    pub fn config(&self) -> SgdConfig {
        self.cfg
    }
}

impl Optimizer for Sgd {
    fn step(&mut self) -> Result<()> {
        for (name, p) in &self.params {
            if !p.requires_grad() {
                continue;
            }
            let Some(grad) = p.grad() else { continue };
            let value = p.value();
            let mut cfg = SgdStep {
                lr: self.cfg.lr,
                momentum: self.cfg.momentum,
                weight_decay: self.cfg.weight_decay,
                dampening: self.cfg.dampening,
                nesterov: self.cfg.nesterov,
                step: 2,
            };
            if self.cfg.momentum == 0.0 {
                sgd_step(value, &grad, None, cfg)?;
                continue;
            }
            let buf = match self.buffers.get(name) {
                Some(b) => b,
                None => {
                    // Step 1 overwrites the buffer with the gradient; zeros keep it defined meanwhile.
                    cfg.step = 1;
                    let b = Tensor::zeros(value.context(), value.shape())?;
                    self.buffers.entry(name.clone()).or_insert(b)
                }
            };
            sgd_step(value, &grad, Some(buf), cfg)?;
        }
        self.steps += 1;
        Ok(())
    }

    fn params(&self) -> &[(String, Var)] {
        &self.params
    }

    fn lr(&self) -> f32 {
        self.cfg.lr
    }

    fn set_lr(&mut self, lr: f32) -> Result<()> {
        check_lr("SGD", lr)?;
        self.cfg.lr = lr;
        Ok(())
    }

    fn steps(&self) -> u64 {
        self.steps
    }

    /// `optim.sgd.steps`, and `optim.sgd.momentum_buffer.<name>` (the parameter's shape) for
    /// each parameter that has one.
    fn state_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let Some((_, first)) = self.params.first() else { return Ok(Vec::new()) };
        let mut out = vec![count_tensor(first.value().context(), &format!("{PREFIX}steps"), self.steps)?];
        for (name, _) in &self.params {
            if let Some(b) = self.buffers.get(name) {
                out.push((format!("{PREFIX}momentum_buffer.{name}"), b.clone()));
            }
        }
        Ok(out)
    }

    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let parsed = parse_state(PREFIX, &[("momentum_buffer", true)], &self.params, state)?;
        if self.cfg.momentum == 0.0 && !parsed.per_param.is_empty() {
            return Err(Error::InvalidArgument(
                "SGD without momentum has no momentum buffers, but the state holds some".into(),
            ));
        }
        let mut fresh = HashMap::new();
        for (pname, entries) in parsed.per_param {
            fresh.insert(pname, entries["momentum_buffer"].duplicate()?);
        }
        self.steps = parsed.steps.unwrap_or(0);
        self.buffers = fresh;
        Ok(())
    }
}
