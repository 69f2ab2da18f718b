//! Markov-random-field approximations of levels 0 and 1 (MLSAD, Definition 1 and §3.1.2).
//!
//! - Level 0 is the uniform distribution: every value drawn from U[0, 1).
//! - Level 1 keeps the marginal of every single pixel and nothing else: "shuffling pixels of
//!   the normal images along the batch axis". For each position (y, x) a random permutation
//!   p of the batch gives `out[n, :, y, x] = in[p(n), :, y, x]` (a pixel moves with all its
//!   channels, since a 1x1 patch holds all of them).

use super::AnomalySource;
use crate::data::ImageTensor;
use crate::error::{Error, Result};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Level-0 MRF sample: uniform noise `[channels, height, width]` in [0, 1).
pub fn mrf_level0<R: Rng + ?Sized>(
    channels: usize,
    height: usize,
    width: usize,
    rng: &mut R,
) -> ImageTensor {
    let mut img = ImageTensor::zeros(channels, height, width);
    for v in img.data.iter_mut() {
        *v = rng.random::<f32>();
    }
    img
}

/// Level-1 MRF samples: the pixels of `batch` shuffled along the batch axis, independently
/// at every position. All images must share one shape.
pub fn mrf_level1<R: Rng + ?Sized>(batch: &[ImageTensor], rng: &mut R) -> Result<Vec<ImageTensor>> {
    let Some(first) = batch.first() else {
        return Ok(Vec::new());
    };
    let (c, h, w) = (first.channels, first.height, first.width);
    for (i, img) in batch.iter().enumerate() {
        if (img.channels, img.height, img.width) != (c, h, w) {
            return Err(Error::Shape {
                what: format!("image {i} of the batch to shuffle"),
                expected: format!("[{c}, {h}, {w}]"),
                got: format!("[{}, {}, {}]", img.channels, img.height, img.width),
            });
        }
    }
    let plane = h * w;
    let mut out: Vec<ImageTensor> = batch.to_vec();
    let mut permutation: Vec<usize> = (0..batch.len()).collect();
    for p in 0..plane {
        permutation.shuffle(rng);
        for (n, &source) in permutation.iter().enumerate() {
            for ch in 0..c {
                out[n].data[ch * plane + p] = batch[source].data[ch * plane + p];
            }
        }
    }
    Ok(out)
}

/// Which MRF level to sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MrfLevel {
    /// Uniform noise.
    Level0,
    /// Pixels shuffled along the batch axis.
    Level1,
}

/// MRF anomalies of one level, shaped like the normal half of the batch.
#[derive(Debug, Clone, Copy)]
pub struct MrfAnomalies {
    pub level: MrfLevel,
}

impl AnomalySource for MrfAnomalies {
    fn generate(
        &mut self,
        normal: &[ImageTensor],
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<ImageTensor>> {
        match self.level {
            MrfLevel::Level0 => Ok(normal
                .iter()
                .map(|n| mrf_level0(n.channels, n.height, n.width, rng))
                .collect()),
            MrfLevel::Level1 => mrf_level1(normal, rng),
        }
    }
}
