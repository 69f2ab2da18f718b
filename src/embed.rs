//! Detection inside a graphics application, on the host's own `wgpu::Device` and `Queue`: no
//! second device, no copy through the CPU.
//!
//! - [`Detector::load`] opens a trained model (a `oddity train` checkpoint) on the host's device;
//!   [`Detector::from_model`] and [`Detector::from_fcdd`] wrap networks already in memory.
//! - [`Detector::score_batch`]: input tensors `[N, C, H, W]` (already normalised) to [`Scores`]:
//!   anomaly score, logit and estimated probability η̂ per image, and for map models (FCDD,
//!   SSIM autoencoders, U-Net) the per-pixel probability, all left on the GPU.
//! - [`Detector::score_texture`]: a host texture (rgba8unorm, rgba8unorm-srgb, bgra8unorm(-srgb)
//!   or r8unorm, any size) resized, converted and z-scored on the GPU exactly as the data pipeline
//!   does on the CPU (`oddity_kernels::texture`), scored, and for map models a heatmap
//!   `wgpu::Texture` (rgba8unorm, the input's size, magma colours, alpha from the per-pixel
//!   probability) written on the GPU. The only readback is the score, when asked
//!   ([`Scores::scores`], [`Scores::probabilities`]).
//! - [`Detector::record_texture`] does the same without submitting, so the host can draw with
//!   the heatmap in the same command buffer ([`crate::kernels::Context::encode`], then
//!   [`crate::kernels::Context::flush`]); `examples/embed_heatmap.rs` does this.
//!
//! Heatmaps show per-pixel probabilities σ(z) of the model's pixel logits
//! ([`crate::models::losses::Objective::pixel_logits`]; for FCDD the HSC estimate
//! η̂ = 1 − e^{−A} of the Gaussian-upsampled pseudo-Huber map A, thesis §4.1.3), mapped to
//! colour and alpha by a [`HeatmapStyle`] range ([`Detector::set_heatmap_style`]; by default
//! [0, 1], meant for calibrated probabilities).
//!
//! ```
//! # fn main() -> oddity::Result<()> {
//! use oddity::embed::Detector;
//! use oddity::kernels::wgpu;
//! use oddity::models::fcdd::fcdd_fmnist;
//! use oddity::nn::Init;
//!
//! // The host's device, made as any wgpu application makes it (here with the WebGPU baseline).
//! let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
//! let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
//!     .expect("an adapter (lavapipe in CI)");
//! let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default()))
//!     .expect("a device");
//!
//! // A detector on that device: here a small untrained FCDD for 28x28 grayscale inputs.
//! let ctx = oddity::kernels::Context::from_device(device.clone(), queue.clone());
//! let fcdd = fcdd_fmnist(&mut Init::new(&ctx, 7), 1, [28, 28], 4)?;
//! let detector = Detector::from_fcdd(&ctx, fcdd, vec![0.5], vec![0.25], 1.75)?;
//!
//! // A host texture of any size: rgba8unorm, 45x33, sampled-and-copied like a rendered frame.
//! let image = device.create_texture(&wgpu::TextureDescriptor {
//!     label: Some("frame"),
//!     size: wgpu::Extent3d { width: 45, height: 33, depth_or_array_layers: 1 },
//!     mip_level_count: 1,
//!     sample_count: 1,
//!     dimension: wgpu::TextureDimension::D2,
//!     format: wgpu::TextureFormat::Rgba8Unorm,
//!     usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
//!     view_formats: &[],
//! });
//! queue.write_texture(image.as_image_copy(), &vec![128u8; 45 * 33 * 4],
//!     wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(45 * 4), rows_per_image: None },
//!     image.size());
//!
//! let out = detector.score_texture(&image)?;
//! let heatmap = out.heatmap.expect("FCDD has maps");
//! assert_eq!((heatmap.width(), heatmap.height()), (45, 33));
//! assert_eq!(heatmap.format(), wgpu::TextureFormat::Rgba8Unorm);
//! let p = out.scores.probabilities()?; // the one readback
//! assert!(p.len() == 1 && (0.0..=1.0).contains(&p[0]));
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use crate::autograd::{no_grad, Var};
use crate::error::{Error, Result};
use crate::kernels::texture::{HeatmapStyle, InputSpec, TextureIo};
use crate::kernels::{wgpu, Context, Tensor};
use crate::models::fcdd::Fcdd;
use crate::models::losses::Objective;
use crate::nn::Module;
use crate::train::{self, Model};

/// Per-image outputs of a batch, on the GPU.
pub struct Scores {
    /// Anomaly score per image. [N]
    pub score: Tensor,
    /// Logit z = σ⁻¹(η̂) per image. [N]
    pub logit: Tensor,
    /// Estimated probability η̂ that the image is anomalous. [N]
    pub probability: Tensor,
    /// Per-pixel probability σ(pixel logit) of map models at the model's input size.
    /// [N, 1, H, W]
    pub pixel_probability: Option<Tensor>,
}

impl Scores {
    /// Reads the anomaly scores back (waits for the GPU).
    pub fn scores(&self) -> Result<Vec<f32>> {
        Ok(self.score.to_vec()?)
    }

    /// Reads the estimated probabilities back (waits for the GPU).
    pub fn probabilities(&self) -> Result<Vec<f32>> {
        Ok(self.probability.to_vec()?)
    }
}

/// What [`Detector::score_texture`] returns.
pub struct TextureScores {
    pub scores: Scores,
    /// rgba8unorm, the input texture's size (usage TEXTURE_BINDING | STORAGE_BINDING | COPY_SRC),
    /// for map models. One texture per size is kept and rewritten by the next call.
    pub heatmap: Option<wgpu::Texture>,
}

enum Network {
    /// A model of [`crate::train`]: every network of the thesis with its objective.
    Model(Model),
    /// An FCDD network of any width with its objective (thesis §4.1.3).
    Fcdd(Fcdd, Objective),
}

/// A trained detector on a host's device. See the module docs.
pub struct Detector {
    ctx: Context,
    io: TextureIo,
    network: Network,
    input: InputSpec,
    style: HeatmapStyle,
    heatmaps: Mutex<HashMap<(u32, u32), wgpu::Texture>>,
}

impl Detector {
    /// Loads a training checkpoint (`oddity train`'s `model.safetensors`) onto the host's device.
    pub fn load(device: &wgpu::Device, queue: &wgpu::Queue, model_path: &Path) -> Result<Detector> {
        let ctx = Context::from_device(device.clone(), queue.clone());
        let (model, _) = train::load_model(&ctx, model_path)?;
        Detector::from_model(model)
    }

    /// Wraps a model of [`crate::train`] (set to evaluation mode).
    pub fn from_model(model: Model) -> Result<Detector> {
        let [c, h, w] = model.input_shape();
        let (mean, std) = (model.normalization.mean.clone(), model.normalization.std.clone());
        let ctx = model.ctx.clone();
        model.net.set_training(false);
        Detector::build(&ctx, Network::Model(model), InputSpec { channels: c, size: [h, w], mean, std })
    }

    /// Wraps an FCDD network of any width (set to evaluation mode) whose inputs are z-scored with
    /// `mean` and `std` per channel; `sigma` is the std of the upsampling Gaussian (the thesis's
    /// 14 is for 224-pixel inputs; scale it with the input size).
    pub fn from_fcdd(ctx: &Context, fcdd: Fcdd, mean: Vec<f32>, std: Vec<f32>, sigma: f32) -> Result<Detector> {
        let input = InputSpec { channels: fcdd.in_channels, size: fcdd.input_size, mean, std };
        fcdd.set_training(false);
        let objective = Objective::Fcdd { upsample: fcdd.upsampler(sigma) };
        Detector::build(ctx, Network::Fcdd(fcdd, objective), input)
    }

    fn build(ctx: &Context, network: Network, input: InputSpec) -> Result<Detector> {
        if input.mean.len() != input.channels || input.std.len() != input.channels {
            return Err(Error::InvalidArgument(format!(
                "embed: the model takes {} channels but its normalisation has mean {:?} and std {:?}",
                input.channels, input.mean, input.std
            )));
        }
        Ok(Detector {
            ctx: ctx.clone(),
            io: TextureIo::new(ctx),
            network,
            input,
            style: HeatmapStyle::default(),
            heatmaps: Mutex::new(HashMap::new()),
        })
    }

    /// The context (the host's device) the detector records into.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// `[channels, height, width]` the model takes.
    pub fn input_shape(&self) -> [usize; 3] {
        [self.input.channels, self.input.size[0], self.input.size[1]]
    }

    /// Whether the model gives per-pixel maps (and [`Detector::score_texture`] a heatmap).
    pub fn has_maps(&self) -> bool {
        match &self.network {
            Network::Model(m) => m.has_maps(),
            Network::Fcdd(..) => true,
        }
    }

    /// How heatmaps show the per-pixel probability (default: 0 transparent .. 1 opaque).
    pub fn set_heatmap_style(&mut self, style: HeatmapStyle) {
        self.style = style;
    }

    /// Scores a batch. x: [N, C, H, W], normalised as the model's training data (the data
    /// pipeline's output), on this detector's context.
    pub fn score_batch(&self, x: &Tensor) -> Result<Scores> {
        let [c, h, w] = self.input_shape();
        let s = x.shape();
        if s.len() != 4 || s[0] == 0 || s[1..] != [c, h, w] {
            return Err(Error::InvalidArgument(format!("embed: input {s:?} must be [batch, {c}, {h}, {w}] for this model")));
        }
        let x = Var::constant(x.clone());
        let (net, objective): (&dyn Module, &Objective) = match &self.network {
            Network::Model(m) => (&m.net, &m.objective),
            Network::Fcdd(f, o) => (f, o),
        };
        no_grad(|| {
            // One forward pass for the image estimates and the pixel logits.
            let out = net.forward(&x)?;
            let est = objective.estimates_with_input(&x, &out)?;
            let pixel = match objective.pixel_logits(&x, &out)? {
                Some(z) => Some(z.sigmoid()?.value().clone()),
                None => None,
            };
            Ok(Scores {
                score: est.score.value().clone(),
                logit: est.logit.value().clone(),
                probability: est.eta.value().clone(),
                pixel_probability: pixel,
            })
        })
    }

    /// Scores a host texture and, for map models, writes its heatmap; submits the work (ordered
    /// before anything the host submits later on the same queue) without waiting for it.
    pub fn score_texture(&self, texture: &wgpu::Texture) -> Result<TextureScores> {
        let out = self.record_texture(texture)?;
        self.ctx.flush();
        Ok(out)
    }

    /// As [`Detector::score_texture`] but leaves the work in the context's open command
    /// encoder: record drawing with [`Context::encode`] and submit it all with [`Context::flush`].
    pub fn record_texture(&self, texture: &wgpu::Texture) -> Result<TextureScores> {
        let x = self.io.read(texture, &self.input)?;
        let scores = self.score_batch(&x)?;
        let heatmap = match &scores.pixel_probability {
            None => None,
            Some(map) => {
                let target = self.heatmap_texture(texture.width(), texture.height());
                self.io.write_heatmap(map, 0, &target, &self.style)?;
                Some(target)
            }
        };
        Ok(TextureScores { scores, heatmap })
    }

    fn heatmap_texture(&self, width: u32, height: u32) -> wgpu::Texture {
        let mut cache = self.heatmaps.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entry((width, height))
            .or_insert_with(|| {
                self.ctx.device().create_texture(&wgpu::TextureDescriptor {
                    label: Some("oddity heatmap"),
                    size: wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
                    mip_level_count: 1,
                    sample_count: 1,
                    dimension: wgpu::TextureDimension::D2,
                    format: wgpu::TextureFormat::Rgba8Unorm,
                    usage: wgpu::TextureUsages::TEXTURE_BINDING
                        | wgpu::TextureUsages::STORAGE_BINDING
                        | wgpu::TextureUsages::COPY_SRC,
                    view_formats: &[],
                })
            })
            .clone()
    }
}
