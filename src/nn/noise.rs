//! Training-time randomness: dropout and additive Gaussian noise, drawn on the GPU from
//! counter-based Philox streams so a seed reproduces them on every backend.

use std::cell::Cell;

use crate::autograd::Var;
use crate::kernels::{rng, Result};

use super::{Init, Module};

/// Zeroes each element with probability `p` in training and scales the rest by 1/(1-p).
pub struct Dropout {
    pub p: f32,
    seed: u64,
    calls: Cell<u32>,
    training: Cell<bool>,
}

impl Dropout {
    pub fn new(init: &mut Init, p: f32) -> Dropout {
        Dropout { p, seed: init.next_seed(), calls: Cell::new(0), training: Cell::new(true) }
    }
}

impl Module for Dropout {
    fn forward(&self, x: &Var) -> Result<Var> {
        if !self.training.get() || self.p == 0.0 {
            return Ok(x.clone());
        }
        // Each call draws a new stream, so masks differ between steps yet repeat across runs.
        let stream = self.calls.replace(self.calls.get().wrapping_add(1));
        let mask = rng::bernoulli_mask(x.value().context(), x.shape(), self.seed, stream, 1.0 - self.p)?;
        x.mul(&Var::constant(mask))
    }

    fn visit_parameters(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Var)) {}

    fn set_training(&self, training: bool) {
        self.training.set(training);
    }
}

/// Adds N(0, std²) noise in training; identity in evaluation.
pub struct GaussianNoise {
    pub std: f32,
    seed: u64,
    calls: Cell<u32>,
    training: Cell<bool>,
}

impl GaussianNoise {
    pub fn new(init: &mut Init, std: f32) -> GaussianNoise {
        GaussianNoise { std, seed: init.next_seed(), calls: Cell::new(0), training: Cell::new(true) }
    }
}

impl Module for GaussianNoise {
    fn forward(&self, x: &Var) -> Result<Var> {
        if !self.training.get() || self.std == 0.0 {
            return Ok(x.clone());
        }
        let stream = self.calls.replace(self.calls.get().wrapping_add(1));
        let noise = rng::normal(x.value().context(), x.shape(), self.seed, stream, 0.0, self.std)?;
        x.add(&Var::constant(noise))
    }

    fn visit_parameters(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Var)) {}

    fn set_training(&self, training: bool) {
        self.training.set(training);
    }
}
