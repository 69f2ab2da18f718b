//! Containers and structural modules: sequential chains, parallel branches concatenated along
//! channels, residual blocks, flatten, and the minibatch-stddev feature.

use crate::autograd::{concat, minibatch_stddev, Var};
use crate::kernels::{Result, Tensor};

use super::{join, Module};

/// Named layers applied in order; names become parameter-name segments.
#[derive(Default)]
pub struct Sequential {
    pub layers: Vec<(String, Box<dyn Module>)>,
}

impl Sequential {
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// Adds a layer under `name` (builder style).
    pub fn push(mut self, name: impl Into<String>, layer: impl Module + 'static) -> Sequential {
        self.layers.push((name.into(), Box::new(layer)));
        self
    }
}

impl Module for Sequential {
    fn forward(&self, x: &Var) -> Result<Var> {
        let mut h = x.clone();
        for (_, layer) in &self.layers {
            h = layer.forward(&h)?;
        }
        Ok(h)
    }

    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Var)) {
        for (name, layer) in &self.layers {
            layer.visit_parameters(&join(prefix, name), f);
        }
    }

    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        for (name, layer) in &self.layers {
            layer.visit_buffers(&join(prefix, name), f);
        }
    }

    fn set_training(&self, training: bool) {
        for (_, layer) in &self.layers {
            layer.set_training(training);
        }
    }
}

/// Runs every branch on the same input and concatenates the outputs along channels.
#[derive(Default)]
pub struct Concat {
    pub branches: Sequential,
}

impl Module for Concat {
    fn forward(&self, x: &Var) -> Result<Var> {
        let outs = self.branches.layers.iter().map(|(_, b)| b.forward(x)).collect::<Result<Vec<Var>>>()?;
        concat(&outs.iter().collect::<Vec<_>>())
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Var)) {
        self.branches.visit_parameters(prefix, f);
    }
    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        self.branches.visit_buffers(prefix, f);
    }
    fn set_training(&self, training: bool) {
        self.branches.set_training(training);
    }
}

/// y = act(body(x) + shortcut(x)); the shortcut is the identity when `None`.
pub struct Residual {
    pub body: Sequential,
    pub shortcut: Option<Sequential>,
    pub activation: Option<Box<dyn Module>>,
}

impl Module for Residual {
    fn forward(&self, x: &Var) -> Result<Var> {
        let skip = match &self.shortcut {
            Some(s) => s.forward(x)?,
            None => x.clone(),
        };
        let y = self.body.forward(x)?.add(&skip)?;
        match &self.activation {
            Some(a) => a.forward(&y),
            None => Ok(y),
        }
    }

    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Var)) {
        self.body.visit_parameters(&join(prefix, "body"), f);
        if let Some(s) = &self.shortcut {
            s.visit_parameters(&join(prefix, "shortcut"), f);
        }
    }

    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        self.body.visit_buffers(&join(prefix, "body"), f);
        if let Some(s) = &self.shortcut {
            s.visit_buffers(&join(prefix, "shortcut"), f);
        }
    }

    fn set_training(&self, training: bool) {
        self.body.set_training(training);
        if let Some(s) = &self.shortcut {
            s.set_training(training);
        }
    }
}

/// [N, ...] -> [N, prod(...)]
pub struct Flatten;

impl Module for Flatten {
    fn forward(&self, x: &Var) -> Result<Var> {
        x.flatten()
    }
    fn visit_parameters(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Var)) {}
}

/// Appends the mean batch standard deviation as one more channel (ProGAN; MLSAD's PatchGAN).
pub struct MinibatchStddev {
    pub eps: f32,
}

impl Module for MinibatchStddev {
    fn forward(&self, x: &Var) -> Result<Var> {
        minibatch_stddev(x, self.eps)
    }
    fn visit_parameters(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Var)) {}
}
