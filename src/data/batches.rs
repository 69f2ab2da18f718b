//! Batches `[N, C, H, W]` built on a background thread.
//!
//! A [`BatchPlan`] says which samples, in which order (seeded shuffle per epoch), through which
//! [`Pipeline`]; a [`Prefetcher`] runs it on a thread and hands out `Result<Batch>` through a
//! bounded channel, so decoding and augmentation overlap with the GPU work.
//!
//! Balanced batches (thesis §4.2.1, "each batch balanced to include an equal number of normal
//! and synthetic anomalous data for supervised losses"): with an [`AnomalySource`], each batch
//! holds `batch_size / 2` normal images (label 0) followed by as many synthetic anomalies
//! (label 1) of the same shape. Anomalies are made in image range from the normal half before
//! normalization, then normalized like the normal images.

use super::transforms::{grayscale, resize, to_rgb, Pipeline};
use super::{ImageTensor, Mask, Sample};
use crate::error::{Error, Result};
use crate::synth::AnomalySource;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;

/// A batch of images. `data`: `[n, channels, height, width]`; `labels`: `[n]` (0 normal,
/// 1 anomalous); `masks`: `[n, height, width]` 0/1 when every sample has pixel labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub data: Vec<f32>,
    /// `[n, channels, height, width]`
    pub shape: [usize; 4],
    pub labels: Vec<u8>,
    pub masks: Option<Vec<u8>>,
}

impl Batch {
    /// Stacks images of one shape into a batch.
    pub fn from_images(images: &[ImageTensor], labels: Vec<u8>) -> Result<Self> {
        let first = images
            .first()
            .ok_or_else(|| Error::InvalidArgument("a batch needs at least one image".into()))?;
        if labels.len() != images.len() {
            return Err(Error::Shape {
                what: "batch labels".into(),
                expected: format!("{} labels", images.len()),
                got: format!("{} labels", labels.len()),
            });
        }
        let (c, h, w) = (first.channels, first.height, first.width);
        let mut data = Vec::with_capacity(images.len() * c * h * w);
        for (i, img) in images.iter().enumerate() {
            if (img.channels, img.height, img.width) != (c, h, w) {
                return Err(Error::Shape {
                    what: format!("image {i} of a batch"),
                    expected: format!("[{c}, {h}, {w}]"),
                    got: format!("[{}, {}, {}]", img.channels, img.height, img.width),
                });
            }
            data.extend_from_slice(&img.data);
        }
        Ok(Batch {
            data,
            shape: [images.len(), c, h, w],
            labels,
            masks: None,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.shape[0]
    }

    pub fn is_empty(&self) -> bool {
        self.shape[0] == 0
    }

    /// Image `i`, `[channels, height, width]`.
    pub fn image(&self, i: usize) -> ImageTensor {
        let [_, c, h, w] = self.shape;
        let size = c * h * w;
        ImageTensor {
            data: self.data[i * size..(i + 1) * size].to_vec(),
            channels: c,
            height: h,
            width: w,
        }
    }

    /// Pixel labels `[n, height, width]`: the masks when present, otherwise every pixel of an
    /// image carries the image's label (thesis §4.2.1: pixels of normal data are class 0,
    /// pixels of synthetic anomalies class 1).
    pub fn pixel_labels(&self) -> Vec<u8> {
        if let Some(m) = &self.masks {
            return m.clone();
        }
        let plane = self.shape[2] * self.shape[3];
        self.labels
            .iter()
            .flat_map(|&l| std::iter::repeat_n(l, plane))
            .collect()
    }
}

/// Nearest-neighbour resize of a mask (labels stay 0/1).
pub fn resize_mask(mask: &Mask, height: usize, width: usize) -> Mask {
    if mask.height == height && mask.width == width {
        return mask.clone();
    }
    let mut data = vec![0u8; height * width];
    for y in 0..height {
        let sy = ((y as f64 + 0.5) * mask.height as f64 / height as f64) as usize;
        for x in 0..width {
            let sx = ((x as f64 + 0.5) * mask.width as f64 / width as f64) as usize;
            data[y * width + x] =
                mask.data[sy.min(mask.height - 1) * mask.width + sx.min(mask.width - 1)];
        }
    }
    Mask {
        data,
        height,
        width,
    }
}

/// Which samples make batches, and how.
#[derive(Debug, Clone)]
pub struct BatchPlan {
    pub samples: Vec<Sample>,
    /// Applied to every normal sample; its normalization is also applied to anomalies.
    pub pipeline: Pipeline,
    /// Images per batch (normal + anomalous for balanced batches).
    pub batch_size: usize,
    /// Seeds the per-epoch shuffles and every random transform.
    pub seed: u64,
    /// Shuffle the samples each epoch (training) or keep their order (evaluation).
    pub shuffle: bool,
    /// Drop a last batch smaller than `batch_size`.
    pub drop_last: bool,
    /// Number of passes over the samples.
    pub epochs: usize,
    /// Load the masks too (evaluation on the MVTec layout).
    pub with_masks: bool,
}

impl BatchPlan {
    /// An evaluation plan: samples in order, one pass, last batch kept, masks loaded.
    pub fn evaluation(samples: Vec<Sample>, pipeline: Pipeline, batch_size: usize) -> Self {
        BatchPlan {
            samples,
            pipeline,
            batch_size,
            seed: 0,
            shuffle: false,
            drop_last: false,
            epochs: 1,
            with_masks: true,
        }
    }

    /// A training plan: shuffled each epoch, last partial batch dropped, no masks.
    pub fn training(
        samples: Vec<Sample>,
        pipeline: Pipeline,
        batch_size: usize,
        epochs: usize,
        seed: u64,
    ) -> Self {
        BatchPlan {
            samples,
            pipeline,
            batch_size,
            seed,
            shuffle: true,
            drop_last: true,
            epochs,
            with_masks: false,
        }
    }

    /// Per batch, the indices of the normal samples it holds, over all epochs.
    pub fn schedule(&self, normal_per_batch: usize) -> Vec<Vec<usize>> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut out = Vec::new();
        for _ in 0..self.epochs {
            let mut order: Vec<usize> = (0..self.samples.len()).collect();
            if self.shuffle {
                order.shuffle(&mut rng);
            }
            for chunk in order.chunks(normal_per_batch.max(1)) {
                if self.drop_last && chunk.len() < normal_per_batch {
                    continue;
                }
                out.push(chunk.to_vec());
            }
        }
        out
    }

    /// Builds one batch from sample `indices`; with `anomalies`, appends one synthetic anomaly
    /// per normal image.
    pub fn build_batch(
        &self,
        indices: &[usize],
        anomalies: Option<&mut (dyn AnomalySource + '_)>,
        rng: &mut ChaCha8Rng,
    ) -> Result<Batch> {
        let augment = Pipeline {
            normalization: None,
            ..self.pipeline.clone()
        };
        let mut images = Vec::with_capacity(indices.len() * 2);
        let mut masks = Vec::new();
        let mut all_masked = self.with_masks;
        for &i in indices {
            let sample = &self.samples[i];
            let (img, mask) = if self.with_masks {
                sample.load_with_mask()?
            } else {
                (sample.load()?, None)
            };
            let img = augment.apply(img, rng)?;
            check_finite(&img, || format!("image {} after loading and augmentation", sample.describe()))?;
            match mask {
                Some(m) => masks.push(resize_mask(&m, img.height, img.width)),
                None => all_masked = false,
            }
            images.push(img);
        }
        let mut labels: Vec<u8> = indices.iter().map(|&i| self.samples[i].label).collect();
        if let Some(source) = anomalies {
            let synthetic = source.generate(&images, rng)?;
            for (reference, anomaly) in images.clone().iter().zip(synthetic) {
                images.push(match_shape(anomaly, reference));
                labels.push(1);
            }
            if all_masked {
                masks.extend(images[indices.len()..].iter().map(|img| Mask {
                    data: vec![1; img.height * img.width],
                    height: img.height,
                    width: img.width,
                }));
            }
        }
        if let Some(norm) = &self.pipeline.normalization {
            for (k, img) in images.iter_mut().enumerate() {
                norm.apply(img)?;
                check_finite(img, || {
                    let what = match indices.get(k) {
                        Some(&i) => format!("image {}", self.samples[i].describe()),
                        None => format!("synthetic anomaly {} of the batch", k - indices.len()),
                    };
                    format!("{what} after normalization (mean {:?}, std {:?})", norm.mean, norm.std)
                })?;
            }
        }
        let mut batch = Batch::from_images(&images, labels)?;
        if all_masked && !masks.is_empty() {
            batch.masks = Some(masks.into_iter().flat_map(|m| m.data).collect());
        }
        Ok(batch)
    }
}

/// An [`Error::NonFinite`] naming `what` and the first NaN or infinite pixel as
/// `[channel, row, column]`; images that reach the GPU must be finite.
pub fn check_finite(img: &ImageTensor, what: impl FnOnce() -> String) -> Result<()> {
    let Some(i) = img.data.iter().position(|v| !v.is_finite()) else { return Ok(()) };
    let plane = (img.height * img.width).max(1);
    let (c, y, x) = (i / plane, i % plane / img.width.max(1), i % img.width.max(1));
    Err(Error::NonFinite(format!("{} holds {} at [{c}, {y}, {x}]", what(), img.data[i])))
}

/// Brings a synthetic anomaly to the channel count and size of the normal image.
fn match_shape(img: ImageTensor, reference: &ImageTensor) -> ImageTensor {
    let img = match (img.channels, reference.channels) {
        (3, 1) => grayscale(&img),
        (1, 3) => to_rgb(&img),
        _ => img,
    };
    resize(&img, reference.height, reference.width)
}

/// Runs a [`BatchPlan`] on a background thread; iterate to receive the batches.
pub struct Prefetcher {
    receiver: Option<Receiver<Result<Batch>>>,
    handle: Option<JoinHandle<()>>,
}

impl Prefetcher {
    /// Starts the thread; at most `depth` batches wait in the channel. With `anomalies`,
    /// batches are balanced: `batch_size / 2` normal images and as many anomalies.
    pub fn spawn(
        plan: BatchPlan,
        anomalies: Option<Box<dyn AnomalySource>>,
        depth: usize,
    ) -> Result<Self> {
        if plan.batch_size == 0 || (anomalies.is_some() && plan.batch_size < 2) {
            return Err(Error::InvalidArgument(format!(
                "batch size {} is too small{}",
                plan.batch_size,
                if anomalies.is_some() {
                    " for balanced batches (at least 2)"
                } else {
                    ""
                }
            )));
        }
        if plan.samples.is_empty() {
            return Err(Error::InvalidArgument("no samples to batch".into()));
        }
        let (sender, receiver) = sync_channel(depth.max(1));
        let handle = std::thread::Builder::new()
            .name("oddity-prefetch".into())
            .spawn(move || {
                let mut anomalies = anomalies;
                let normal_per_batch = if anomalies.is_some() {
                    plan.batch_size / 2
                } else {
                    plan.batch_size
                };
                let mut rng = ChaCha8Rng::seed_from_u64(plan.seed);
                rng.set_stream(1); // transforms and anomalies: a stream apart from the shuffles
                for indices in plan.schedule(normal_per_batch) {
                    let batch = plan.build_batch(&indices, anomalies.as_deref_mut(), &mut rng);
                    let failed = batch.is_err();
                    if sender.send(batch).is_err() || failed {
                        return; // receiver gone, or an error was delivered
                    }
                }
            })
            .map_err(|e| Error::Prefetch(format!("cannot start the thread: {e}")))?;
        Ok(Prefetcher {
            receiver: Some(receiver),
            handle: Some(handle),
        })
    }
}

impl Iterator for Prefetcher {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.receiver.as_ref()?.recv() {
            Ok(batch) => Some(batch),
            Err(_) => {
                // The thread finished or died; report a panic once.
                self.receiver = None;
                match self.handle.take().map(|h| h.join()) {
                    Some(Err(_)) => Some(Err(Error::Prefetch("the thread panicked".into()))),
                    _ => None,
                }
            }
        }
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        drop(self.receiver.take()); // unblocks a pending send
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
