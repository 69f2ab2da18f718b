//! Adam (torch.optim.Adam with `amsgrad=False`): per-parameter moment estimates m and v, and a
//! per-parameter step count for the bias corrections, as PyTorch keeps them.

use std::collections::HashMap;

use oddity_kernels::optim::{adam_step, AdamStep};
use oddity_kernels::Tensor;

use super::{check_lr, check_params, count_tensor, parse_state, read_count, Optimizer};
use crate::autograd::Var;
use crate::error::{Error, Result};

const PREFIX: &str = "optim.adam.";

/// Hyperparameters; the defaults are PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    pub lr: f32,
    pub betas: (f32, f32),
    pub eps: f32,
    /// L2 penalty added to the gradient (`g + weight_decay * param`), not AdamW's decoupled decay.
    pub weight_decay: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig { lr: 1e-3, betas: (0.9, 0.999), eps: 1e-8, weight_decay: 0.0 }
    }
}

struct AdamState {
    m: Tensor,
    v: Tensor,
    /// Updates this parameter has received (PyTorch's `state['step']`).
    step: u64,
}

pub struct Adam {
    params: Vec<(String, Var)>,
    cfg: AdamConfig,
    /// By parameter name; created on a parameter's first update.
    state: HashMap<String, AdamState>,
    steps: u64,
}

impl Adam {
    /// Errors name a bad hyperparameter, a repeated parameter name or variable.
    pub fn new(params: Vec<(String, Var)>, cfg: AdamConfig) -> Result<Adam> {
        check_params("Adam", &params)?;
        check_lr("Adam", cfg.lr)?;
        let unit = |what: &str, b: f32| {
            if (0.0..1.0).contains(&b) {
                Ok(())
            } else {
                Err(Error::InvalidArgument(format!("Adam: {what} must be in [0, 1), got {b}")))
            }
        };
        unit("beta1", cfg.betas.0)?;
        unit("beta2", cfg.betas.1)?;
        if !(cfg.eps.is_finite() && cfg.eps >= 0.0) {
            return Err(Error::InvalidArgument(format!("Adam: eps must be finite and >= 0, got {}", cfg.eps)));
        }
        if !(cfg.weight_decay.is_finite() && cfg.weight_decay >= 0.0) {
            return Err(Error::InvalidArgument(format!(
                "Adam: weight_decay must be finite and >= 0, got {}",
                cfg.weight_decay
            )));
        }
        Ok(Adam { params, cfg, state: HashMap::new(), steps: 0 })
    }

    pub fn config(&self) -> AdamConfig {
        self.cfg
    }
}

impl Optimizer for Adam {
    fn step(&mut self) -> Result<()> {
        for (name, p) in &self.params {
            if !p.requires_grad() {
                continue;
            }
            let Some(grad) = p.grad() else { continue };
            let value = p.value();
            let st = match self.state.get_mut(name) {
                Some(st) => st,
                None => {
                    let ctx = value.context();
                    let fresh = AdamState {
                        m: Tensor::zeros(ctx, value.shape())?,
                        v: Tensor::zeros(ctx, value.shape())?,
                        step: 0,
                    };
                    self.state.entry(name.clone()).or_insert(fresh)
                }
            };
            let step = u32::try_from(st.step + 1)
                .map_err(|_| Error::InvalidArgument(format!("Adam: parameter {name} is past 2^32 updates")))?;
            let cfg = AdamStep {
                lr: self.cfg.lr,
                beta1: self.cfg.betas.0,
                beta2: self.cfg.betas.1,
                eps: self.cfg.eps,
                weight_decay: self.cfg.weight_decay,
                step,
            };
            adam_step(value, &grad, &st.m, &st.v, cfg)?;
            st.step += 1;
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
        check_lr("Adam", lr)?;
        self.cfg.lr = lr;
        Ok(())
    }

    fn steps(&self) -> u64 {
        self.steps
    }

    /// `optim.adam.steps`, and per parameter with state `optim.adam.m.<name>`,
    /// `optim.adam.v.<name>` (the parameter's shape) and `optim.adam.step.<name>` (`[1]`).
    fn state_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let Some((_, first)) = self.params.first() else { return Ok(Vec::new()) };
        let ctx = first.value().context();
        let mut out = vec![count_tensor(ctx, &format!("{PREFIX}steps"), self.steps)?];
        // Parameter order, so the list is deterministic.
        for (name, _) in &self.params {
            if let Some(st) = self.state.get(name) {
                out.push((format!("{PREFIX}m.{name}"), st.m.clone()));
                out.push((format!("{PREFIX}v.{name}"), st.v.clone()));
                out.push(count_tensor(ctx, &format!("{PREFIX}step.{name}"), st.step)?);
            }
        }
        Ok(out)
    }

    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let parsed = parse_state(PREFIX, &[("m", true), ("v", true), ("step", false)], &self.params, state)?;
        let mut fresh = HashMap::new();
        for (pname, mut entries) in parsed.per_param {
            let take =
                |e: &mut std::collections::BTreeMap<&'static str, Tensor>, k| e.remove(k).expect("parse_state checked");
            let step_name = format!("{PREFIX}step.{pname}");
            let step = read_count(&step_name, &take(&mut entries, "step"))?;
            if step == 0 {
                return Err(Error::InvalidArgument(format!("{step_name} is 0: state exists only after an update")));
            }
            let (m, v) = (take(&mut entries, "m").duplicate()?, take(&mut entries, "v").duplicate()?);
            fresh.insert(pname, AdamState { m, v, step });
        }
        self.steps = parsed.steps.unwrap_or(0);
        self.state = fresh;
        Ok(())
    }
}
