//! MLSAD: multi-level structure anomaly detection (the paper in `shared/seeds/003_*`).
//!
//! - [`coords`]: true and fake coordinate maps r^s, r̂^s (§3.2.2) and the kernel plans that give
//!   a stride-1 network a receptive field of exactly s x s pixels.
//! - [`mrf`]: samples of the w-th level MRF approximation q^w: level 0 uniform noise, level 1
//!   pixels shuffled along the batch (both from [`crate::synth::mrf`]), levels >= 2 from a
//!   trained generator.
//! - [`generator`] (Table 8 U-Net), [`discriminator`] (Tables 5-7 per-level PatchGAN critic),
//!   [`mine`] (the statistics network T and the MINE estimate, eq. 1) and [`patchgan`] (one
//!   entropy-regularised PatchGAN training step, eq. 2 with beta of eq. 8).
//! - [`detector`]: the level-specific detectors A^s and the contrastive loss, eq. 3.
//! - [`scoring`]: eq. 4 image scores, per-level scores and pixel maps.
//! - [`train`]: the training loops (checkpoint every epoch, resume, progress bars) and evaluation.
//!
//! Images are `[N, C, H, W]` in [-1, 1] (appendix C.1) held on the CPU as [`Images`].

pub mod coords;
pub mod detector;
pub mod discriminator;
pub mod generator;
pub mod mine;
pub mod mrf;
pub mod patchgan;
pub mod scoring;
pub mod train;

use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::kernels::{Context, Tensor};

/// A batch of images on the CPU: `data` is `[n, channels, height, width]`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Images {
    pub data: Vec<f32>,
    pub n: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl Images {
    /// Wraps `data`, checking its length against the shape.
    pub fn new(data: Vec<f32>, n: usize, channels: usize, height: usize, width: usize) -> Result<Images> {
        let expected = n * channels * height * width;
        if data.len() != expected {
            return Err(Error::Shape {
                what: "image batch".into(),
                expected: format!("[{n}, {channels}, {height}, {width}] = {expected} values"),
                got: format!("{} values", data.len()),
            });
        }
        Ok(Images { data, n, channels, height, width })
    }

    /// Values per image.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Image `i` as a slice `[channels, height, width]`.
    pub fn image(&self, i: usize) -> &[f32] {
        let len = self.image_len();
        &self.data[i * len..(i + 1) * len]
    }

    /// The images at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Images {
        let mut data = Vec::with_capacity(indices.len() * self.image_len());
        for &i in indices {
            data.extend_from_slice(self.image(i));
        }
        Images { data, n: indices.len(), channels: self.channels, height: self.height, width: self.width }
    }

    /// The `size` x `size` window at (`top[i]`, `left[i]`) of every image i.
    pub fn crop(&self, top: &[usize], left: &[usize], size: usize) -> Result<Images> {
        if top.len() != self.n || left.len() != self.n {
            return Err(Error::InvalidArgument(format!(
                "crop: {} tops and {} lefts for {} images",
                top.len(),
                left.len(),
                self.n
            )));
        }
        let mut data = Vec::with_capacity(self.n * self.channels * size * size);
        for i in 0..self.n {
            if top[i] + size > self.height || left[i] + size > self.width {
                return Err(Error::InvalidArgument(format!(
                    "crop: a {size}x{size} window at ({}, {}) leaves the {}x{} image",
                    top[i], left[i], self.height, self.width
                )));
            }
            let img = self.image(i);
            for c in 0..self.channels {
                for y in top[i]..top[i] + size {
                    let row = (c * self.height + y) * self.width;
                    data.extend_from_slice(&img[row + left[i]..row + left[i] + size]);
                }
            }
        }
        Ok(Images { data, n: self.n, channels: self.channels, height: size, width: size })
    }

    /// Concatenates batches of one image shape along the batch axis.
    pub fn concat(parts: &[&Images]) -> Result<Images> {
        let first = parts.first().ok_or_else(|| Error::InvalidArgument("concat of no image batches".into()))?;
        let mut data = Vec::new();
        let mut n = 0;
        for p in parts {
            if (p.channels, p.height, p.width) != (first.channels, first.height, first.width) {
                return Err(Error::Shape {
                    what: "image batches to concatenate".into(),
                    expected: format!("[_, {}, {}, {}]", first.channels, first.height, first.width),
                    got: format!("[{}, {}, {}, {}]", p.n, p.channels, p.height, p.width),
                });
            }
            data.extend_from_slice(&p.data);
            n += p.n;
        }
        Ok(Images { data, n, channels: first.channels, height: first.height, width: first.width })
    }

    /// Uploads as a constant `[n, channels, height, width]` variable.
    pub fn to_var(&self, ctx: &Context) -> Result<Var> {
        Ok(Var::constant(Tensor::from_slice(ctx, &[self.n, self.channels, self.height, self.width], &self.data)?))
    }

    /// Downloads a `[n, c, h, w]` tensor.
    pub fn from_tensor(t: &Tensor) -> Result<Images> {
        let s = t.shape();
        if s.len() != 4 {
            return Err(Error::Shape { what: "image tensor".into(), expected: "[n, c, h, w]".into(), got: format!("{s:?}") });
        }
        Images::new(t.to_vec()?, s[0], s[1], s[2], s[3])
    }
}
