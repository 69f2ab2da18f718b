//! Learning-rate schedules.

use super::Optimizer;
use crate::error::{Error, Result};

/// torch.optim.lr_scheduler.MultiStepLR: the rate is `base_lr * gamma^k` in epoch `e`, where `k`
/// counts the milestones `<= e` (a milestone listed twice counts twice, as PyTorch's Counter does).
/// Epochs count from 0; the decay takes effect in the milestone epoch itself.
#[derive(Clone, Debug, PartialEq)]
pub struct MultiStepLr {
    base_lr: f64,
    /// Sorted ascending.
    milestones: Vec<u64>,
    gamma: f64,
}

impl MultiStepLr {
    pub fn new(base_lr: f64, milestones: &[u64], gamma: f64) -> Result<MultiStepLr> {
        if !(base_lr.is_finite() && base_lr >= 0.0) {
            return Err(Error::InvalidArgument(format!("MultiStepLr: base_lr must be finite and >= 0, got {base_lr}")));
        }
        if !(gamma.is_finite() && gamma > 0.0) {
            return Err(Error::InvalidArgument(format!("MultiStepLr: gamma must be finite and > 0, got {gamma}")));
        }
        let mut milestones = milestones.to_vec();
        milestones.sort_unstable();
        Ok(MultiStepLr { base_lr, milestones, gamma })
    }

    /// The rate for `epoch` (0-based).
    pub fn lr_at(&self, epoch: u64) -> f64 {
        // bisect_right(milestones, epoch) on the sorted list and Python's `**`, as PyTorch's closed form.
        let k = self.milestones.partition_point(|&m| m <= epoch);
        self.base_lr * self.gamma.powf(k as f64)
    }

    /// Sets `opt`'s rate for `epoch` and returns it; call at the start of each epoch.
    pub fn apply(&self, opt: &mut dyn Optimizer, epoch: u64) -> Result<f64> {
        let lr = self.lr_at(epoch);
        opt.set_lr(lr as f32)?;
        Ok(lr)
    }
}
