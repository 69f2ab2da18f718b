//! Optimizers: [`Adam`] and [`Sgd`] update named GPU parameters in place (PyTorch semantics, via
//! the kernels in `oddity_kernels::optim`), [`MultiStepLr`] schedules their learning rate, and
//! [`minimize_lbfgs`] fits small CPU parameter vectors (Platt and Beta calibration).
//!
//! The GPU optimizers record their updates into the context's open encoder, in order with the
//! backward pass that made the gradients, and never read anything back. Their state (moment
//! estimates, momentum buffers, step counts) is exposed by [`Optimizer::state_tensors`] and
//! restored by [`Optimizer::load_state`], so a checkpoint can carry it for resuming a run
//! ([`save_state`], [`restore_state`]).

mod adam;
mod lbfgs;
mod schedule;
mod sgd;

use std::collections::{BTreeMap, HashSet};

use oddity_kernels::Tensor;

use crate::autograd::Var;
use crate::checkpoint::{Checkpoint, HostTensor};
use crate::error::{Error, Result};

pub use adam::{Adam, AdamConfig};
pub use lbfgs::{minimize_lbfgs, LbfgsConfig, LbfgsResult, LbfgsStop};
pub use schedule::MultiStepLr;
pub use sgd::{Sgd, SgdConfig};

/// Every name an optimizer gives its state starts with this.
pub const STATE_PREFIX: &str = "optim.";

/// Step counts are stored as one-element f32 tensors (checkpoints hold f32 only); integers are
/// exact in f32 up to 2^24.
const MAX_STORED_COUNT: u64 = 1 << 24;

/// A first-order optimizer over named parameters.
pub trait Optimizer {
    /// Updates, in place, every parameter that requires a gradient and has one; the others
    /// (frozen, or unused by the last loss) are left alone and their state does not advance.
    fn step(&mut self) -> Result<()>;

    /// Drops the gradients of all parameters.
    fn zero_grad(&self) {
        for (_, p) in self.params() {
            p.zero_grad();
        }
    }

    fn params(&self) -> &[(String, Var)];

    fn lr(&self) -> f32;

    /// Sets the learning rate of the following steps (schedules call this once per epoch).
    fn set_lr(&mut self, lr: f32) -> Result<()>;

    /// Number of `step()` calls so far (including restored ones).
    fn steps(&self) -> u64;

    /// The state as named tensors, all under [`STATE_PREFIX`], e.g. `optim.adam.m.<param name>`.
    /// Buffers are the live ones (later steps change them: read them back before stepping again);
    /// step counts are fresh one-element tensors.
    fn state_tensors(&self) -> Result<Vec<(String, Tensor)>>;

    /// Replaces the state with `state` (as given by [`Optimizer::state_tensors`] of an optimizer
    /// of the same kind over parameters of the same names and shapes). Tensors are copied, so the
    /// caller's stay untouched. Parameters without state in `state` start fresh. An unknown name,
    /// a wrong shape or a parameter with part of its state is an error naming it.
    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()>;
}

/// Reads the optimizer state back and inserts it into `ckpt` under its names.
pub fn save_state(opt: &dyn Optimizer, ckpt: &mut Checkpoint) -> Result<()> {
    for (name, t) in opt.state_tensors()? {
        ckpt.insert(name, HostTensor::new(t.shape().to_vec(), t.to_vec()?)?);
    }
    Ok(())
}

/// Restores the optimizer state from the `optim.*` tensors of `ckpt` (uploaded to the context of
/// the optimizer's parameters). A checkpoint without any leaves the optimizer fresh.
pub fn restore_state(opt: &mut dyn Optimizer, ckpt: &Checkpoint) -> Result<()> {
    let Some((_, first)) = opt.params().first() else {
        return Err(Error::InvalidArgument("restore_state: the optimizer has no parameters".into()));
    };
    let ctx = first.value().context().clone();
    let state = ckpt
        .tensors
        .iter()
        .filter(|(name, _)| name.starts_with(STATE_PREFIX))
        .map(|(name, t)| Ok((name.clone(), Tensor::from_slice(&ctx, &t.shape, &t.data)?)))
        .collect::<Result<Vec<_>>>()?;
    opt.load_state(&state)
}

/// Error unless parameter names are unique, no variable appears twice and all live on one context.
fn check_params(what: &str, params: &[(String, Var)]) -> Result<()> {
    let mut names = HashSet::new();
    let mut ids = HashSet::new();
    for (name, p) in params {
        if !names.insert(name.as_str()) {
            return Err(Error::InvalidArgument(format!("{what}: parameter name {name} appears twice")));
        }
        if !ids.insert(p.id()) {
            return Err(Error::InvalidArgument(format!(
                "{what}: parameter {name} is a variable already in the list under another name"
            )));
        }
        params[0].1.value().expect_same_context(p.value(), what)?;
    }
    Ok(())
}

fn check_lr(what: &str, lr: f32) -> Result<()> {
    if !(lr.is_finite() && lr >= 0.0) {
        return Err(Error::InvalidArgument(format!("{what}: learning rate must be finite and >= 0, got {lr}")));
    }
    Ok(())
}

fn count_tensor(ctx: &oddity_kernels::Context, name: &str, count: u64) -> Result<(String, Tensor)> {
    if count > MAX_STORED_COUNT {
        return Err(Error::InvalidArgument(format!(
            "{name} = {count} is above 2^24 and cannot be stored exactly as f32"
        )));
    }
    Ok((name.to_string(), Tensor::from_slice(ctx, &[1], &[count as f32])?))
}

fn read_count(name: &str, t: &Tensor) -> Result<u64> {
    if t.numel() != 1 {
        return Err(Error::Shape {
            what: name.into(),
            expected: "one element".into(),
            got: format!("{:?}", t.shape()),
        });
    }
    let v = t.item()?;
    if !(v.is_finite() && v >= 0.0 && v.fract() == 0.0 && (v as u64) <= MAX_STORED_COUNT) {
        return Err(Error::InvalidArgument(format!("{name} must be a whole number in [0, 2^24], got {v}")));
    }
    Ok(v as u64)
}

/// State entries split by kind: `<prefix><kind>.<param>` -> (kind, param) -> tensor, plus the
/// global step count `<prefix>steps`. Errors name unknown kinds, unknown parameters and shapes.
struct ParsedState {
    steps: Option<u64>,
    per_param: BTreeMap<String, BTreeMap<&'static str, Tensor>>,
}

/// `kinds`: (kind, whether it is a buffer of the parameter's shape; else a one-element count).
fn parse_state(
    prefix: &str,
    kinds: &[(&'static str, bool)],
    params: &[(String, Var)],
    state: &[(String, Tensor)],
) -> Result<ParsedState> {
    let mut parsed = ParsedState { steps: None, per_param: BTreeMap::new() };
    let steps_name = format!("{prefix}steps");
    for (name, t) in state {
        if *name == steps_name {
            parsed.steps = Some(read_count(name, t)?);
            continue;
        }
        let rest = name.strip_prefix(prefix).ok_or_else(|| {
            Error::InvalidArgument(format!("optimizer state {name} does not start with {prefix}: another optimizer's?"))
        })?;
        let (kind, pname) = kinds
            .iter()
            .find_map(|&(k, _)| rest.strip_prefix(k).and_then(|r| r.strip_prefix('.')).map(|p| (k, p)))
            .ok_or_else(|| {
                let known: Vec<String> = kinds.iter().map(|(k, _)| format!("{prefix}{k}.<param>")).collect();
                Error::InvalidArgument(format!("unknown optimizer state {name}; expected {}", known.join(", ")))
            })?;
        let is_buffer = kinds.iter().any(|&(k, b)| k == kind && b);
        let param = params.iter().find(|(n, _)| n == pname).ok_or_else(|| {
            Error::InvalidArgument(format!("optimizer state {name} is for unknown parameter {pname}"))
        })?;
        if is_buffer {
            param.1.value().expect_same_context(t, &format!("optimizer state {name}"))?;
        }
        if is_buffer && t.shape() != param.1.shape() {
            return Err(Error::Shape {
                what: format!("optimizer state {name}"),
                expected: format!("{:?} (parameter {pname})", param.1.shape()),
                got: format!("{:?}", t.shape()),
            });
        }
        parsed.per_param.entry(pname.to_string()).or_default().insert(kind, t.clone());
    }
    for (pname, entries) in &parsed.per_param {
        let missing: Vec<String> = kinds
            .iter()
            .filter(|(k, _)| !entries.contains_key(k))
            .map(|(k, _)| format!("{prefix}{k}.{pname}"))
            .collect();
        if !missing.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "optimizer state for parameter {pname} is incomplete: missing {}",
                missing.join(", ")
            )));
        }
    }
    Ok(parsed)
}
