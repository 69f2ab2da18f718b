//! Image transforms of thesis §4.2.1 and §4.2.2, on [`ImageTensor`]s (`[C, H, W]`, `f32`).
//!
//! Training: resize the full image, then crop randomly to the network input (292 -> 256 for a
//! 256x256 input, 256 -> 224 for 224x224), colour jitter, small Gaussian noise, horizontal flip
//! (flipping about the vertical axis; switched off for categories whose test data is not
//! mirror-symmetric), grayscale for the SSIM autoencoder, and z-scores with the mean and
//! standard deviation of the training part. Test: plain resize (no crop), grayscale if
//! needed, the same z-scores.
//!
//! [`Normalization`] is serializable so it is saved with the model. Every random transform
//! takes the RNG explicitly.

use super::{ImageTensor, Sample};
use crate::error::{Error, Result};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// ITU-R BT.601 luma weights, as PIL's and torchvision's grayscale conversion.
pub const LUMA_WEIGHTS: [f32; 3] = [0.299, 0.587, 0.114];

/// Resize side used before a random crop to `input`: floor(input * 8 / 7), which gives the
/// thesis sizes 292 for 256 and 256 for 224.
pub fn resize_before_crop(input: usize) -> usize {
    input * 8 / 7
}

/// Resizes to `height x width` with a triangle (bilinear) filter whose support widens with
/// the downscaling factor, so shrinking averages every input pixel (antialiased, as PIL's
/// bilinear resize).
pub fn resize(img: &ImageTensor, height: usize, width: usize) -> ImageTensor {
    if img.height == height && img.width == width {
        return img.clone();
    }
    let horizontal = resample_weights(img.width, width);
    let vertical = resample_weights(img.height, height);
    let mut out = ImageTensor::zeros(img.channels, height, width);
    let mut rows = vec![0.0f32; img.height * width];
    for c in 0..img.channels {
        let src = img.channel(c);
        for y in 0..img.height {
            let line = &src[y * img.width..(y + 1) * img.width];
            for (x, (first, weights)) in horizontal.iter().enumerate() {
                rows[y * width + x] = weights
                    .iter()
                    .enumerate()
                    .map(|(k, w)| w * line[first + k])
                    .sum();
            }
        }
        let dst = out.channel_mut(c);
        for (y, (first, weights)) in vertical.iter().enumerate() {
            for x in 0..width {
                dst[y * width + x] = weights
                    .iter()
                    .enumerate()
                    .map(|(k, w)| w * rows[(first + k) * width + x])
                    .sum();
            }
        }
    }
    out
}

/// For each output index: the first input index and the normalised filter weights.
fn resample_weights(input: usize, output: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = input as f64 / output as f64;
    let filter_scale = scale.max(1.0);
    let support = filter_scale; // triangle of radius 1, widened when shrinking
    (0..output)
        .map(|i| {
            let center = (i as f64 + 0.5) * scale;
            let lo = ((center - support).floor().max(0.0)) as usize;
            let hi = ((center + support).ceil() as usize).min(input);
            let mut weights: Vec<f64> = (lo..hi)
                .map(|j| (1.0 - ((j as f64 + 0.5 - center) / filter_scale).abs()).max(0.0))
                .collect();
            let total: f64 = weights.iter().sum();
            if total > 0.0 {
                weights.iter_mut().for_each(|w| *w /= total);
            } else {
                // unreachable for input >= 1, kept so no division by zero can happen
                weights = vec![1.0];
            }
            (lo, weights.into_iter().map(|w| w as f32).collect())
        })
        .collect()
}

/// Crops the `height x width` window at (`top`, `left`).
pub fn crop(
    img: &ImageTensor,
    top: usize,
    left: usize,
    height: usize,
    width: usize,
) -> Result<ImageTensor> {
    if top + height > img.height || left + width > img.width {
        return Err(Error::Shape {
            what: "crop window".into(),
            expected: format!("inside {}x{}", img.height, img.width),
            got: format!("{height}x{width} at ({top}, {left})"),
        });
    }
    let mut out = ImageTensor::zeros(img.channels, height, width);
    for c in 0..img.channels {
        let src = img.channel(c);
        let dst = out.channel_mut(c);
        for y in 0..height {
            let s = (top + y) * img.width + left;
            dst[y * width..(y + 1) * width].copy_from_slice(&src[s..s + width]);
        }
    }
    Ok(out)
}

/// Crops a `height x width` window at a uniformly random position.
pub fn random_crop<R: Rng + ?Sized>(
    img: &ImageTensor,
    height: usize,
    width: usize,
    rng: &mut R,
) -> Result<ImageTensor> {
    if height > img.height || width > img.width {
        return Err(Error::Shape {
            what: "random crop".into(),
            expected: format!("at most {}x{}", img.height, img.width),
            got: format!("{height}x{width}"),
        });
    }
    let top = rng.random_range(0..=img.height - height);
    let left = rng.random_range(0..=img.width - width);
    crop(img, top, left, height, width)
}

/// Mirrors the image left-right (about the vertical axis).
pub fn hflip(img: &mut ImageTensor) {
    let w = img.width;
    for row in img.data.chunks_exact_mut(w) {
        row.reverse();
    }
}

/// Converts to one channel with [`LUMA_WEIGHTS`]; a 1-channel image is returned as is.
pub fn grayscale(img: &ImageTensor) -> ImageTensor {
    if img.channels != 3 {
        return img.clone();
    }
    let mut out = ImageTensor::zeros(1, img.height, img.width);
    let (r, g, b) = (img.channel(0), img.channel(1), img.channel(2));
    for (i, v) in out.data.iter_mut().enumerate() {
        *v = LUMA_WEIGHTS[0] * r[i] + LUMA_WEIGHTS[1] * g[i] + LUMA_WEIGHTS[2] * b[i];
    }
    out
}

/// Repeats a 1-channel image into 3 channels; a 3-channel image is returned as is.
pub fn to_rgb(img: &ImageTensor) -> ImageTensor {
    if img.channels != 1 {
        return img.clone();
    }
    let mut data = Vec::with_capacity(3 * img.data.len());
    for _ in 0..3 {
        data.extend_from_slice(&img.data);
    }
    ImageTensor {
        data,
        channels: 3,
        height: img.height,
        width: img.width,
    }
}

/// A standard normal sample (Box–Muller).
pub fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> f32 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// Adds N(0, std^2) noise to every value, then clamps to [0, 1].
pub fn gaussian_noise<R: Rng + ?Sized>(img: &mut ImageTensor, std: f32, rng: &mut R) {
    for v in img.data.iter_mut() {
        *v = (*v + std * standard_normal(rng)).clamp(0.0, 1.0);
    }
}

/// Colour jitter as torchvision's `ColorJitter(brightness, contrast, saturation)` (no hue):
/// each factor is drawn from U[max(0, 1 - s), 1 + s]; brightness scales the pixels,
/// contrast blends with the mean gray level, saturation with the pixel's gray value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ColorJitter {
    pub brightness: f32,
    pub contrast: f32,
    pub saturation: f32,
}

impl Default for ColorJitter {
    /// Small jitter (0.04 each), as in the FCDD training code the thesis follows.
    fn default() -> Self {
        ColorJitter {
            brightness: 0.04,
            contrast: 0.04,
            saturation: 0.04,
        }
    }
}

impl ColorJitter {
    fn factor<R: Rng + ?Sized>(strength: f32, rng: &mut R) -> f32 {
        if strength <= 0.0 {
            return 1.0;
        }
        let lo = (1.0 - strength).max(0.0);
        lo + (1.0 + strength - lo) * rng.random::<f32>()
    }

    /// Applies brightness, contrast then saturation; values stay in [0, 1].
    pub fn apply<R: Rng + ?Sized>(&self, img: &mut ImageTensor, rng: &mut R) {
        let brightness = Self::factor(self.brightness, rng);
        let contrast = Self::factor(self.contrast, rng);
        let saturation = Self::factor(self.saturation, rng);
        for v in img.data.iter_mut() {
            *v = (*v * brightness).clamp(0.0, 1.0);
        }
        let gray = grayscale(img);
        let mean =
            gray.data.iter().map(|&v| v as f64).sum::<f64>() as f32 / gray.data.len().max(1) as f32;
        for v in img.data.iter_mut() {
            *v = (contrast * *v + (1.0 - contrast) * mean).clamp(0.0, 1.0);
        }
        if img.channels == 3 {
            let gray = grayscale(img);
            let plane = img.height * img.width;
            for c in 0..3 {
                for i in 0..plane {
                    let v = &mut img.data[c * plane + i];
                    *v = (saturation * *v + (1.0 - saturation) * gray.data[i]).clamp(0.0, 1.0);
                }
            }
        }
    }
}

/// Per-channel z-score normalization: `x' = (x - mean[c]) / std[c]`, with the mean and
/// standard deviation of the training part (thesis §4.2.1). Saved with the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalization {
    /// Mean and (population) standard deviation per channel over every pixel of `images`.
    /// A channel with zero spread gets std 1 so the transform stays finite.
    pub fn fit<I>(images: I) -> Result<Self>
    where
        I: IntoIterator<Item = Result<ImageTensor>>,
    {
        let (mut sum, mut sum_sq, mut count): (Vec<f64>, Vec<f64>, u64) = (vec![], vec![], 0);
        let mut channels = None;
        for img in images {
            let img = img?;
            let c = *channels.get_or_insert(img.channels);
            if img.channels != c {
                return Err(Error::Shape {
                    what: "images for the normalization statistics".into(),
                    expected: format!("{c} channels"),
                    got: format!("{} channels", img.channels),
                });
            }
            if sum.is_empty() {
                sum = vec![0.0; c];
                sum_sq = vec![0.0; c];
            }
            for ch in 0..c {
                for &v in img.channel(ch) {
                    sum[ch] += v as f64;
                    sum_sq[ch] += (v as f64) * (v as f64);
                }
            }
            count += (img.height * img.width) as u64;
        }
        if count == 0 {
            return Err(Error::InvalidArgument(
                "normalization statistics need at least one image".into(),
            ));
        }
        let n = count as f64;
        let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
        let std = sum
            .iter()
            .zip(&sum_sq)
            .map(|(s, q)| {
                let var = (q / n - (s / n).powi(2)).max(0.0);
                let sd = var.sqrt() as f32;
                if sd > 0.0 {
                    sd
                } else {
                    1.0
                }
            })
            .collect();
        Ok(Normalization { mean, std })
    }

    /// Statistics of `samples` after the deterministic part of `pipeline` (its test-time
    /// resize and channel handling, no augmentation, no normalization).
    pub fn fit_samples(samples: &[Sample], pipeline: &Pipeline) -> Result<Self> {
        let plain = Pipeline {
            normalization: None,
            ..pipeline.for_test()
        };
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0); // unused: no random transform
        Self::fit(samples.iter().map(|s| plain.apply(s.load()?, &mut rng)))
    }

    /// Normalizes `img` in place; its channel count must match.
    pub fn apply(&self, img: &mut ImageTensor) -> Result<()> {
        self.check_lengths()?;
        if img.channels != self.mean.len() {
            return Err(Error::Shape {
                what: "image to normalize".into(),
                expected: format!("{} channels", self.mean.len()),
                got: format!("{} channels", img.channels),
            });
        }
        let plane = img.height * img.width;
        for c in 0..img.channels {
            let (m, s) = (self.mean[c], self.std[c]);
            for v in &mut img.data[c * plane..(c + 1) * plane] {
                *v = (*v - m) / s;
            }
        }
        Ok(())
    }

    /// Undoes [`Normalization::apply`].
    pub fn invert(&self, img: &mut ImageTensor) -> Result<()> {
        self.check_lengths()?;
        if img.channels != self.mean.len() {
            return Err(Error::Shape {
                what: "image to denormalize".into(),
                expected: format!("{} channels", self.mean.len()),
                got: format!("{} channels", img.channels),
            });
        }
        let plane = img.height * img.width;
        for c in 0..img.channels {
            let (m, s) = (self.mean[c], self.std[c]);
            for v in &mut img.data[c * plane..(c + 1) * plane] {
                *v = *v * s + m;
            }
        }
        Ok(())
    }

    /// One standard deviation per mean: a hand-made value with other lengths is an error, not
    /// an index out of bounds.
    fn check_lengths(&self) -> Result<()> {
        if self.std.len() != self.mean.len() {
            return Err(Error::Shape {
                what: "normalization statistics".into(),
                expected: format!("{} standard deviations, one per mean", self.mean.len()),
                got: format!("{}", self.std.len()),
            });
        }
        Ok(())
    }

    /// Checks statistics read from outside: at least one channel, one standard deviation per
    /// mean, every mean finite and every standard deviation finite and positive.
    pub fn validate(&self) -> Result<()> {
        self.check_lengths()?;
        if self.mean.is_empty() {
            return Err(Error::InvalidArgument("normalization statistics have no channels".into()));
        }
        if let Some((c, m)) = self.mean.iter().enumerate().find(|(_, m)| !m.is_finite()) {
            return Err(Error::InvalidArgument(format!("normalization mean of channel {c} is {m}, expected a finite number")));
        }
        if let Some((c, s)) = self.std.iter().enumerate().find(|(_, s)| !(s.is_finite() && **s > 0.0)) {
            return Err(Error::InvalidArgument(format!(
                "normalization standard deviation of channel {c} is {s}, expected a finite number > 0"
            )));
        }
        Ok(())
    }

    /// Writes the statistics as JSON.
    pub fn save_json(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::InvalidArgument(format!("cannot serialise normalization: {e}")))?;
        crate::checkpoint::write_atomically(path, text.as_bytes())
    }

    /// Reads statistics written by [`Normalization::save_json`]; they must pass
    /// [`Normalization::validate`] (the error names the file).
    pub fn load_json(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let n: Normalization = serde_json::from_str(&text).map_err(|e| Error::CsvRow {
            path: path.to_path_buf(),
            line: e.line(),
            message: format!("invalid normalization JSON: {e}"),
        })?;
        n.validate().map_err(|e| Error::CsvRow { path: path.to_path_buf(), line: 1, message: e.to_string() })?;
        Ok(n)
    }
}

/// How the channel count is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum ChannelMode {
    /// As loaded (1 for grayscale files, 3 for colour).
    #[default]
    Keep,
    /// Grayscale files repeated to 3 channels before anything else.
    Rgb,
    /// Converted to 1 channel after augmentation (the SSIM autoencoder).
    Gray,
}

/// A transform pipeline, applied in this order: channel mode `Rgb`, resize, random crop,
/// colour jitter, Gaussian noise, random horizontal flip (probability 1/2), channel mode
/// `Gray`, normalization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    /// Resize to (height, width) first.
    pub resize: Option<(usize, usize)>,
    /// Then crop a random (height, width) window (training only).
    pub random_crop: Option<(usize, usize)>,
    pub channels: ChannelMode,
    pub jitter: Option<ColorJitter>,
    /// Standard deviation of the additive Gaussian noise; 0 disables it.
    pub noise_std: f32,
    /// Random horizontal flip; off for categories that are not mirror-symmetric.
    pub hflip: bool,
    pub normalization: Option<Normalization>,
}

impl Default for Pipeline {
    /// The identity: no resize, no augmentation, no normalization.
    fn default() -> Self {
        Pipeline {
            resize: None,
            random_crop: None,
            channels: ChannelMode::Keep,
            jitter: None,
            noise_std: 0.0,
            hflip: false,
            normalization: None,
        }
    }
}

impl Pipeline {
    /// Training pipeline for a square network input of side `input`: resize to
    /// [`resize_before_crop`]`(input)`, random crop to `input`, colour jitter, noise 0.001,
    /// flip when `hflip`.
    pub fn train(input: usize, hflip: bool) -> Self {
        let side = resize_before_crop(input);
        Pipeline {
            resize: Some((side, side)),
            random_crop: Some((input, input)),
            jitter: Some(ColorJitter::default()),
            noise_std: 0.001,
            hflip,
            ..Pipeline::default()
        }
    }

    /// Augmentation only, for images already at the network size (CIFAR-10, Fashion-MNIST).
    pub fn augment_only(hflip: bool) -> Self {
        Pipeline {
            jitter: Some(ColorJitter::default()),
            noise_std: 0.001,
            hflip,
            ..Pipeline::default()
        }
    }

    /// Test pipeline for a square input of side `input`: plain resize, no crop.
    pub fn test(input: usize) -> Self {
        Pipeline {
            resize: Some((input, input)),
            ..Pipeline::default()
        }
    }

    /// The test-time counterpart of this pipeline: the final size as a plain resize, the same
    /// channel mode and normalization, no random transform.
    pub fn for_test(&self) -> Self {
        Pipeline {
            resize: self.random_crop.or(self.resize),
            random_crop: None,
            channels: self.channels,
            jitter: None,
            noise_std: 0.0,
            hflip: false,
            normalization: self.normalization.clone(),
        }
    }

    /// Sets the channel mode.
    pub fn with_channels(mut self, channels: ChannelMode) -> Self {
        self.channels = channels;
        self
    }

    /// Sets the normalization.
    pub fn with_normalization(mut self, normalization: Normalization) -> Self {
        self.normalization = Some(normalization);
        self
    }

    /// Output (height, width) for an input image of `height x width`.
    pub fn output_size(&self, height: usize, width: usize) -> (usize, usize) {
        self.random_crop.or(self.resize).unwrap_or((height, width))
    }

    /// Runs the pipeline on one image.
    pub fn apply<R: Rng + ?Sized>(&self, img: ImageTensor, rng: &mut R) -> Result<ImageTensor> {
        let mut img = if self.channels == ChannelMode::Rgb {
            to_rgb(&img)
        } else {
            img
        };
        if let Some((h, w)) = self.resize {
            img = resize(&img, h, w);
        }
        if let Some((h, w)) = self.random_crop {
            img = random_crop(&img, h, w, rng)?;
        }
        if let Some(jitter) = &self.jitter {
            jitter.apply(&mut img, rng);
        }
        if self.noise_std > 0.0 {
            gaussian_noise(&mut img, self.noise_std, rng);
        }
        if self.hflip && rng.random::<bool>() {
            hflip(&mut img);
        }
        if self.channels == ChannelMode::Gray {
            img = grayscale(&img);
        }
        if let Some(norm) = &self.normalization {
            norm.apply(&mut img)?;
        }
        Ok(img)
    }
}
