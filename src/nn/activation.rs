//! Activation functions as modules (no parameters).

use crate::autograd::Var;
use crate::kernels::conv2d::Epilogue;
use crate::kernels::Result;

use super::Module;

macro_rules! activation {
    ($name:ident, $doc:literal, |$x:ident| $body:expr) => {
        #[doc = $doc]
        #[derive(Clone, Copy, Debug, Default)]
        pub struct $name;

        impl Module for $name {
            fn forward(&self, $x: &Var) -> Result<Var> {
                $body
            }
            fn visit_parameters(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Var)) {}
        }
    };
}

activation!(Relu, "max(x, 0)", |x| x.relu());
activation!(Sigmoid, "1 / (1 + exp(-x))", |x| x.sigmoid());
activation!(Tanh, "tanh(x)", |x| x.tanh());

/// x for x > 0, slope * x otherwise.
#[derive(Clone, Copy, Debug)]
pub struct LeakyRelu(pub f32);

impl Module for LeakyRelu {
    fn forward(&self, x: &Var) -> Result<Var> {
        x.leaky_relu(self.0)
    }
    fn visit_parameters(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Var)) {}
}

/// An activation chosen at run time (from a config).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Relu,
    LeakyRelu(f32),
    Sigmoid,
    Tanh,
}

impl Activation {
    /// The conv epilogue computing this activation inside the conv's stores, where there is one:
    /// ReLU and leaky ReLU with a finite slope >= 0.
    pub fn epilogue(self) -> Option<Epilogue> {
        match self {
            Activation::Relu => Some(Epilogue::LeakyRelu(0.0)),
            Activation::LeakyRelu(s) if s.is_finite() && s >= 0.0 => Some(Epilogue::LeakyRelu(s)),
            _ => None,
        }
    }
}

impl Module for Activation {
    fn forward(&self, x: &Var) -> Result<Var> {
        match *self {
            Activation::Relu => x.relu(),
            Activation::LeakyRelu(s) => x.leaky_relu(s),
            Activation::Sigmoid => x.sigmoid(),
            Activation::Tanh => x.tanh(),
        }
    }
    fn visit_parameters(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Var)) {}
}

/// y = layer(x) then the activation: `fused` (the layer's kernel applying the epilogue) where the
/// activation has one, else `plain` followed by the activation as its own op.
pub(crate) fn activate(
    activation: Option<Activation>,
    plain: impl FnOnce() -> Result<Var>,
    fused: impl FnOnce(Epilogue) -> Result<Var>,
) -> Result<Var> {
    match activation {
        None => plain(),
        Some(a) => match a.epilogue() {
            Some(e) => fused(e),
            None => a.forward(&plain()?),
        },
    }
}
