//! Layers as modules with named parameters and buffers.
//!
//! A [`Module`] maps a `Var` to a `Var`, lists its parameters under stable dotted names
//! (`encoder.conv1.weight`) and its non-trainable buffers (batch-norm running statistics,
//! spectral-norm vectors), and switches between training and evaluation. Initialisation follows
//! PyTorch's defaults and draws from one seeded generator ([`Init`]), so a seed fixes a network.

mod activation;
mod batchnorm;
mod container;
mod conv;
mod linear;
mod noise;
mod pool;
mod spectral;

pub use activation::{Activation, LeakyRelu, Relu, Sigmoid, Tanh};
pub use batchnorm::BatchNorm;
pub use container::{Concat, Flatten, MinibatchStddev, Residual, Sequential};
pub use conv::{Conv2d, ConvTranspose2d};
pub use linear::Linear;
pub use noise::{Dropout, GaussianNoise};
pub use pool::{AvgPool2d, MaxPool2d, Upsample};
pub use spectral::{SpectralLayer, SpectralNorm};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::autograd::Var;
use crate::kernels::{Context, Result, Tensor};

/// A layer or a network.
pub trait Module {
    fn forward(&self, x: &Var) -> Result<Var>;

    /// Calls `f` with every trainable parameter and its full name (`prefix` + local name).
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Var));

    /// Calls `f` with every buffer that a checkpoint must keep but training does not update by
    /// gradient (running statistics, power-iteration vectors).
    fn visit_buffers(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Tensor)) {}

    /// Training (batch statistics, dropout, noise on) or evaluation mode.
    fn set_training(&self, _training: bool) {}
}

/// `prefix.name`, or `name` at the top level.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Every parameter of `m` with its name, in a stable order.
pub fn parameters(m: &dyn Module) -> Vec<(String, Var)> {
    let mut out = Vec::new();
    m.visit_parameters("", &mut |name, v| out.push((name, v.clone())));
    out
}

/// Every buffer of `m` with its name.
pub fn buffers(m: &dyn Module) -> Vec<(String, Tensor)> {
    let mut out = Vec::new();
    m.visit_buffers("", &mut |name, t| out.push((name, t.clone())));
    out
}

/// Seeded source of initial values. Layers draw from it in construction order.
pub struct Init {
    ctx: Context,
    rng: ChaCha8Rng,
    seed: u64,
}

impl Init {
    pub fn new(ctx: &Context, seed: u64) -> Init {
        Init { ctx: ctx.clone(), rng: ChaCha8Rng::seed_from_u64(seed), seed }
    }

    pub fn context(&self) -> &Context {
        &self.ctx
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// A fresh 64-bit seed for a layer's own randomness (dropout, noise).
    pub fn next_seed(&mut self) -> u64 {
        self.rng.random()
    }

    /// U(-bound, bound): PyTorch's default for conv and linear weights and biases, where
    /// bound = 1/sqrt(fan_in) (kaiming_uniform with a = sqrt(5)).
    pub fn uniform(&mut self, shape: &[usize], bound: f32) -> Result<Var> {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|_| self.rng.random_range(-1.0f32..1.0) * bound).collect();
        Ok(Var::leaf(Tensor::from_slice(&self.ctx, shape, &data)?))
    }

    /// N(0, 1) values as a plain tensor (spectral-norm's initial vector).
    pub fn normal_tensor(&mut self, shape: &[usize]) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n)
            .map(|_| {
                // Box-Muller from two uniforms in (0, 1].
                let u1: f32 = 1.0 - self.rng.random::<f32>();
                let u2: f32 = self.rng.random();
                (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
            })
            .collect();
        Tensor::from_slice(&self.ctx, shape, &data)
    }

    /// A parameter filled with `value` (batch-norm's gamma = 1, beta = 0).
    pub fn constant(&mut self, shape: &[usize], value: f32) -> Result<Var> {
        let n: usize = shape.iter().product();
        Ok(Var::leaf(Tensor::from_slice(&self.ctx, shape, &vec![value; n])?))
    }
}

/// Saves every parameter and buffer of `module`, plus `extra` tensors the model keeps beside
/// its layers (SVDD centre, input normalisation), into a checkpoint at `path` (atomically).
pub fn save_checkpoint(
    module: &dyn Module,
    extra: &[(String, crate::checkpoint::HostTensor)],
    meta: crate::checkpoint::CheckpointMeta,
    path: &std::path::Path,
) -> crate::Result<()> {
    let mut ck = crate::checkpoint::Checkpoint { meta, tensors: Default::default() };
    let mut named: Vec<(String, Tensor)> = parameters(module).into_iter().map(|(n, v)| (n, v.value().clone())).collect();
    named.extend(buffers(module));
    for (name, t) in named {
        let data = t.to_vec()?;
        ck.insert(name, crate::checkpoint::HostTensor::new(t.shape().to_vec(), data)?);
    }
    for (name, t) in extra {
        ck.insert(name.clone(), t.clone());
    }
    ck.save(path)
}

/// Loads a checkpoint into `module`'s parameters and buffers. The file must hold exactly the
/// module's tensors plus the `extra_names` ones (returned, for the caller to use); anything
/// missing, extra or wrongly shaped is an error naming the tensor, and nothing is changed then.
pub fn load_checkpoint(
    module: &dyn Module,
    extra_names: &[(String, Vec<usize>)],
    path: &std::path::Path,
) -> crate::Result<crate::checkpoint::Checkpoint> {
    let ck = crate::checkpoint::Checkpoint::load(path)?;
    let mut named: Vec<(String, Tensor)> = parameters(module).into_iter().map(|(n, v)| (n, v.value().clone())).collect();
    named.extend(buffers(module));
    let mut expected: Vec<(String, Vec<usize>)> = named.iter().map(|(n, t)| (n.clone(), t.shape().to_vec())).collect();
    expected.extend(extra_names.iter().cloned());
    ck.check_matches(&expected, path)?;
    for (name, t) in &named {
        t.write(&ck.tensors[name].data)?;
    }
    Ok(ck)
}
