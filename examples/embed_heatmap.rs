//! Detection inside a renderer: one frame in which oddity scores the host's image texture on the
//! host's own wgpu device and a render pipeline draws the image with the heatmap over it into an
//! offscreen texture, all in one command buffer; the frame is saved as PNG.
//!
//! ```text
//! cargo run --release --example embed_heatmap -- --out frame.png [--seed 7] [--steps 120]
//! ```
//!
//! With no model given, it trains a small FCDD (thesis §4.1.3) for a few seconds on generated
//! scenes: normal scenes are smooth stripes of random orientation, frequency and phase;
//! anomalous ones carry a dark round defect. FCDD learns from image labels only where the
//! defect is. The frame is a larger colour rendering of a new scene with a defect; the heatmap
//! should sit on it. No window or surface is needed (it runs on lavapipe in CI).
//! `--model FILE` loads a saved detector instead (it must give per-pixel maps).

use std::path::{Path, PathBuf};

use oddity::autograd::Var;
use oddity::embed::Detector;
use oddity::kernels::texture::read_texture_bytes;
use oddity::kernels::{wgpu, Context, Tensor};
use oddity::models::fcdd::fcdd_fmnist;
use oddity::models::losses::fcdd_loss;
use oddity::nn::{self, Init, Module};
use oddity::optim::{Adam, AdamConfig, Optimizer};
use oddity::{Error, Result};

/// A generated scene in normalised coordinates (u, v in [0, 1]).
#[derive(Clone, Copy, Debug)]
pub struct Scene {
    pub angle: f32,
    pub frequency: f32,
    pub phase: f32,
    /// Centre (u, v) and radius of the defect, if any.
    pub defect: Option<(f32, f32, f32)>,
}

/// splitmix64: a seeded generator small enough to keep the example self-contained.
pub struct Rng(u64);

impl Rng {
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        lo + (hi - lo) * ((z >> 40) as f32 / (1u64 << 24) as f32)
    }
}

impl Scene {
    pub fn random(rng: &mut Rng, defect: bool) -> Scene {
        let defect = defect.then(|| (rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.08, 0.13)));
        Scene { angle: rng.uniform(0.0, std::f32::consts::PI), frequency: rng.uniform(2.0, 4.0), phase: rng.uniform(0.0, 6.3), defect }
    }

    /// Brightness in [0, 1] at (u, v).
    pub fn value(&self, u: f32, v: f32) -> f32 {
        let along = u * self.angle.cos() + v * self.angle.sin();
        let stripes = 0.45 + 0.15 * (std::f32::consts::TAU * self.frequency * along + self.phase).sin();
        match self.defect {
            Some((cu, cv, r)) if (u - cu).powi(2) + (v - cv).powi(2) < r * r => 0.05,
            _ => stripes,
        }
    }

    /// `[height * width]` brightness at pixel centres.
    pub fn gray(&self, height: usize, width: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(height * width);
        for y in 0..height {
            for x in 0..width {
                out.push(self.value((x as f32 + 0.5) / width as f32, (y as f32 + 0.5) / height as f32));
            }
        }
        out
    }

    /// RGBA8 bytes (a warm tint with luma ~1, so the detector's grayscale matches training).
    pub fn rgba(&self, height: usize, width: usize) -> Vec<u8> {
        let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        self.gray(height, width).into_iter().flat_map(|g| [byte(1.08 * g), byte(0.97 * g), byte(0.86 * g), 255]).collect()
    }
}

/// Model input side and FCDD width of the built-in detector.
const SIDE: usize = 28;
const WIDTH: usize = 16;
/// The thesis's upsampling std 14 for 224-pixel images, scaled to 28 pixels.
const SIGMA: f32 = 14.0 * SIDE as f32 / 224.0;

/// Trains the built-in FCDD for `steps` Adam steps on balanced batches of 16 generated scenes
/// (seeded), on `ctx`. Returns the detector and the last batch's loss.
pub fn train_builtin(ctx: &Context, seed: u64, steps: usize) -> Result<(Detector, f32)> {
    let mut rng = Rng(seed);
    // z-score statistics of normal scenes (thesis §4.2.1: mean and std of the training part).
    let sample: Vec<f32> = (0..64).flat_map(|_| Scene::random(&mut rng, false).gray(SIDE, SIDE)).collect();
    let mean = sample.iter().sum::<f32>() / sample.len() as f32;
    let std = (sample.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / sample.len() as f32).sqrt();
    let fcdd = fcdd_fmnist(&mut Init::new(ctx, seed), 1, [SIDE, SIDE], WIDTH)?;
    let mut adam = Adam::new(nn::parameters(&fcdd), AdamConfig { lr: 2e-3, ..AdamConfig::default() })?;
    let batch = 16;
    let mut loss_value = f32::NAN;
    for step in 0..steps {
        let mut x = Vec::with_capacity(batch * SIDE * SIDE);
        let mut y = Vec::with_capacity(batch);
        for i in 0..batch {
            let anomalous = i % 2 == 1;
            x.extend(Scene::random(&mut rng, anomalous).gray(SIDE, SIDE).into_iter().map(|v| (v - mean) / std));
            y.push(anomalous as u8 as f32);
        }
        let x = Var::constant(Tensor::from_slice(ctx, &[batch, 1, SIDE, SIDE], &x)?);
        let y = Var::constant(Tensor::from_slice(ctx, &[batch], &y)?);
        let loss = fcdd_loss(&fcdd.forward(&x)?, &y)?;
        loss.backward()?;
        adam.step()?;
        adam.zero_grad();
        if step + 1 == steps {
            loss_value = loss.value().item()?;
        }
    }
    Ok((Detector::from_fcdd(ctx, fcdd, vec![mean], vec![std], SIGMA)?, loss_value))
}

/// One rendered frame.
pub struct Frame {
    pub width: usize,
    pub height: usize,
    /// The image alone and the image with the heatmap, RGBA8, rows unpadded.
    pub image: Vec<u8>,
    pub overlay: Vec<u8>,
    /// The heatmap texture's bytes (RGBA8: magma colour, alpha = per-pixel probability).
    pub heatmap: Vec<u8>,
    /// The detector's probability that the image is anomalous.
    pub probability: f32,
}

fn texture(device: &wgpu::Device, width: usize, height: usize, usage: wgpu::TextureUsages, label: &str) -> wgpu::Texture {
    device.create_texture(&wgpu::TextureDescriptor {
        label: Some(label),
        size: wgpu::Extent3d { width: width as u32, height: height as u32, depth_or_array_layers: 1 },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba8Unorm,
        usage,
        view_formats: &[],
    })
}

/// Renders `scene` at `width x height`, scores it and draws the overlay, in one submission.
pub fn render_frame(detector: &Detector, scene: &Scene, width: usize, height: usize) -> Result<Frame> {
    if !detector.has_maps() {
        return Err(Error::InvalidArgument("the overlay needs a detector with per-pixel maps (e.g. FCDD)".into()));
    }
    let ctx = detector.context();
    let device = ctx.device();
    let image_bytes = scene.rgba(height, width);
    use wgpu::TextureUsages as U;
    let image = texture(device, width, height, U::TEXTURE_BINDING | U::COPY_DST | U::COPY_SRC, "image");
    ctx.queue().write_texture(
        image.as_image_copy(),
        &image_bytes,
        wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(4 * width as u32), rows_per_image: None },
        image.size(),
    );
    let target = texture(device, width, height, U::RENDER_ATTACHMENT | U::COPY_SRC, "frame");

    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("overlay.wgsl"),
        source: wgpu::ShaderSource::Wgsl(include_str!("../shaders/overlay.wgsl").into()),
    });
    let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some("overlay"),
        layout: None,
        vertex: wgpu::VertexState { module: &module, entry_point: Some("vs_main"), compilation_options: Default::default(), buffers: &[] },
        fragment: Some(wgpu::FragmentState {
            module: &module,
            entry_point: Some("fs_main"),
            compilation_options: Default::default(),
            targets: &[Some(wgpu::TextureFormat::Rgba8Unorm.into())],
        }),
        primitive: wgpu::PrimitiveState::default(),
        depth_stencil: None,
        multisample: wgpu::MultisampleState::default(),
        multiview_mask: None,
        cache: None,
    });

    // The frame: detection recorded into the open encoder, then the draw, then one submit.
    let submissions = ctx.submission_count();
    let out = detector.record_texture(&image)?;
    let heatmap = out.heatmap.expect("a map model gives a heatmap");
    let view = |t: &wgpu::Texture| t.create_view(&wgpu::TextureViewDescriptor::default());
    let (image_view, heat_view, target_view) = (view(&image), view(&heatmap), view(&target));
    let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("overlay"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry { binding: 0, resource: wgpu::BindingResource::TextureView(&image_view) },
            wgpu::BindGroupEntry { binding: 1, resource: wgpu::BindingResource::TextureView(&heat_view) },
        ],
    });
    ctx.encode(|encoder| {
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("overlay"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: &target_view,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations { load: wgpu::LoadOp::Clear(wgpu::Color::BLACK), store: wgpu::StoreOp::Store },
            })],
            depth_stencil_attachment: None,
            timestamp_writes: None,
            occlusion_query_set: None,
            multiview_mask: None,
        });
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &group, &[]);
        pass.draw(0..3, 0..1);
    });
    ctx.flush();
    if ctx.submission_count() != submissions + 1 {
        return Err(Error::InvalidArgument(format!(
            "the frame took {} submissions, expected detection and drawing in one",
            ctx.submission_count() - submissions
        )));
    }
    // After the frame: the readbacks a real renderer would not need (score, PNG, test checks).
    let probability = out.scores.probabilities()?[0];
    Ok(Frame {
        width,
        height,
        image: read_texture_bytes(ctx, &image)?,
        overlay: read_texture_bytes(ctx, &target)?,
        heatmap: read_texture_bytes(ctx, &heatmap)?,
        probability,
    })
}

/// The device a host would make: first adapter wgpu offers (ODDITY_BACKEND narrows the backend),
/// WebGPU baseline limits.
pub fn host_device() -> Result<(wgpu::Device, wgpu::Queue)> {
    let backends = oddity::kernels::context::parse_backend(std::env::var("ODDITY_BACKEND").ok().as_deref())?;
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    let instance = wgpu::Instance::new(desc);
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
        .map_err(|e| Error::InvalidArgument(format!("no wgpu adapter for backends {backends:?}: {e}")))?;
    pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default()))
        .map_err(|e| Error::InvalidArgument(format!("{:?} refused a device: {e}", adapter.get_info().name)))
}

/// The frame's scene for `seed`: a defect off centre, a frame of 120x90 pixels.
pub fn frame_scene(seed: u64) -> Scene {
    let mut s = Scene::random(&mut Rng(seed ^ 0xF4A3E), false);
    s.defect = Some((0.68, 0.35, 0.11));
    s
}

pub fn save_png(path: &Path, frame: &Frame) -> Result<()> {
    image::save_buffer(path, &frame.overlay, frame.width as u32, frame.height as u32, image::ExtendedColorType::Rgba8)
        .map_err(|e| Error::InvalidArgument(format!("writing {}: {e}", path.display())))
}

fn main() {
    if let Err(e) = run() {
        eprintln!("embed_heatmap: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<()> {
    let mut out = PathBuf::from("embed_heatmap.png");
    let mut model: Option<PathBuf> = None;
    let (mut seed, mut steps) = (7u64, 120usize);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| Error::InvalidArgument(format!("{a} needs a value")));
        match a.as_str() {
            "--out" => out = PathBuf::from(value()?),
            "--model" => model = Some(PathBuf::from(value()?)),
            "--seed" => seed = value()?.parse().map_err(|e| Error::InvalidArgument(format!("--seed: {e}")))?,
            "--steps" => steps = value()?.parse().map_err(|e| Error::InvalidArgument(format!("--steps: {e}")))?,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "unknown argument {other:?}; usage: embed_heatmap [--out FILE] [--model FILE] [--seed N] [--steps N]"
                )))
            }
        }
    }
    let (device, queue) = host_device()?;
    println!("host device: {} ({:?})", device.adapter_info().name, device.adapter_info().backend);
    let detector = match &model {
        Some(path) => Detector::load(&device, &queue, path)?,
        None => {
            let ctx = Context::from_device(device.clone(), queue.clone());
            let start = std::time::Instant::now();
            let (d, loss) = train_builtin(&ctx, seed, steps)?;
            println!("trained FCDD (seed {seed}, {steps} steps) in {:.1} s, last loss {loss:.4}", start.elapsed().as_secs_f64());
            d
        }
    };
    let frame = render_frame(&detector, &frame_scene(seed), 120, 90)?;
    save_png(&out, &frame)?;
    println!("frame 120x90: anomaly probability {:.3}; wrote {}", frame.probability, out.display());
    Ok(())
}
