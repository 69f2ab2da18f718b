//! Samples of the w-th level MRF approximation q^w (Definition 1, §3.1.2), in [-1, 1].
//!
//! - Level 0: uniform noise ([`crate::synth::mrf::mrf_level0`], mapped from [0, 1) to [-1, 1)).
//! - Level 1: the normal batch with its pixels shuffled along the batch axis independently at
//!   every position ([`crate::synth::mrf::mrf_level1`]).
//! - Level w >= 2: a trained entropy-regularised PatchGAN generator ([`super::generator`]) on
//!   fresh noise z ~ N(0, 1) of the image's shape, in evaluation mode (running batch-norm
//!   statistics), without gradient.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::autograd::{no_grad, Var};
use crate::data::ImageTensor;
use crate::data::transforms::standard_normal;
use crate::error::{Error, Result};
use crate::kernels::{Context, Tensor};
use crate::nn::Module;
use crate::synth::mrf::{mrf_level0, mrf_level1};

use super::generator::Generator;
use super::Images;

/// The MRF level of the fakes the level-s detector contrasts with: floor(s / 2) (eq. 3).
pub fn fake_level(s: usize) -> usize {
    s / 2
}

/// Where fakes of one level come from.
pub enum MrfSource<'a> {
    Uniform,
    Shuffle,
    Generator { level: usize, generator: &'a Generator, ctx: &'a Context },
}

impl MrfSource<'_> {
    pub fn level(&self) -> usize {
        match self {
            MrfSource::Uniform => 0,
            MrfSource::Shuffle => 1,
            MrfSource::Generator { level, .. } => *level,
        }
    }

    /// `normals.n` fakes shaped like `normals` (for a generator: its own image size; the caller
    /// crops textures).
    pub fn sample(&self, normals: &Images, rng: &mut ChaCha8Rng) -> Result<Images> {
        match self {
            MrfSource::Uniform => {
                let mut data = Vec::with_capacity(normals.data.len());
                for _ in 0..normals.n {
                    let img = mrf_level0(normals.channels, normals.height, normals.width, rng);
                    data.extend(img.data.iter().map(|v| 2.0 * v - 1.0));
                }
                Images::new(data, normals.n, normals.channels, normals.height, normals.width)
            }
            MrfSource::Shuffle => {
                let batch: Vec<ImageTensor> = (0..normals.n)
                    .map(|i| ImageTensor::from_vec(normals.image(i).to_vec(), normals.channels, normals.height, normals.width))
                    .collect::<Result<_>>()?;
                let shuffled = mrf_level1(&batch, rng)?;
                let data = shuffled.into_iter().flat_map(|img| img.data).collect();
                Images::new(data, normals.n, normals.channels, normals.height, normals.width)
            }
            MrfSource::Generator { generator, ctx, .. } => generate(generator, ctx, normals.n, rng),
        }
    }
}

/// z ~ N(0, 1), `[n, C, S, S]`, from the CPU generator (so runs are seeded end to end).
pub fn noise(ctx: &Context, n: usize, channels: usize, size: usize, rng: &mut ChaCha8Rng) -> Result<Var> {
    let data: Vec<f32> = (0..n * channels * size * size).map(|_| standard_normal(rng)).collect();
    Ok(Var::constant(Tensor::from_slice(ctx, &[n, channels, size, size], &data)?))
}

/// `n` generator samples in evaluation mode (the generator is left in evaluation mode).
pub fn generate(generator: &Generator, ctx: &Context, n: usize, rng: &mut ChaCha8Rng) -> Result<Images> {
    if n == 0 {
        return Err(Error::InvalidArgument("generate: zero images asked".into()));
    }
    let cfg = &generator.cfg;
    generator.set_training(false);
    let mut parts = Vec::new();
    // chunks keep the activations of 256x256 texture generators small
    let chunk = if cfg.size > 64 { 4 } else { 64 };
    let mut done = 0;
    while done < n {
        let m = chunk.min(n - done);
        let z = noise(ctx, m, cfg.channels, cfg.size, rng)?;
        let x = no_grad(|| generator.forward(&z))?;
        parts.push(Images::from_tensor(x.value())?);
        done += m;
    }
    Images::concat(&parts.iter().collect::<Vec<_>>())
}

/// A random permutation of 0..n that moves every index (n >= 2), for marginal pairs.
pub fn derangement(n: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    // Sattolo's algorithm: a uniform random cyclic permutation, so no fixed point
    for i in (1..n).rev() {
        let j = rng.random_range(0..i);
        p.swap(i, j);
    }
    p
}
