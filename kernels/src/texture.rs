//! Texture I/O for detection inside a graphics application: a host's `wgpu::Texture` into a model
//! input tensor ([`TextureIo::read`]) and a per-pixel map tensor back into a host texture as a
//! colour-mapped heatmap ([`TextureIo::write_heatmap`]), both recorded into the context's open
//! encoder, so nothing passes through the CPU. WGSL: `shaders/texture.wgsl`. CPU reference: [`cpu`].
//!
//! Resampling is the data pipeline's (`oddity::data::transforms::resize`, PIL's antialiased
//! bilinear), so a texture scores as the same image loaded from a file would: when upscaling it is
//! exactly bilinear with align_corners = false; when shrinking it averages every input pixel.
//!
//! Textures read: rgba8unorm, rgba8unorm-srgb, bgra8unorm, bgra8unorm-srgb, r8unorm (mip 0,
//! layer 0), with `TEXTURE_BINDING` usage. sRGB textures are re-encoded after the hardware decode,
//! because the file loader reads the stored bytes (`byte / 255`) without decoding them.
//!
//! Heatmaps written: an rgba8unorm texture with `STORAGE_BINDING` usage is written directly as a
//! storage texture; rgba8unorm(-srgb), bgra8unorm(-srgb) and r8unorm textures with `COPY_DST`
//! usage are written through a packed buffer and `copy_buffer_to_texture`, which works on the
//! WebGPU baseline where r8unorm and bgra8unorm are not storage formats. Colours are matplotlib's
//! magma (sRGB values), alpha `opacity * t`; r8unorm gets `t` itself, where `t` in [0, 1] is the
//! map value scaled by the caller's range.

use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::kernel::{grid_1d, WG_1D};
use crate::tensor::{DType, Tensor};

const SRC: &str = include_str!("../../shaders/texture.wgsl");

/// What the model takes: channels (1 or 3), `[height, width]` and the z-score per channel.
#[derive(Clone, Debug, PartialEq)]
pub struct InputSpec {
    pub channels: usize,
    pub size: [usize; 2],
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

/// How a map is shown: values `lo..hi` map to the colormap's start (transparent) and end (alpha
/// `opacity`); values outside are clamped. For a calibrated probability map, `lo = 0, hi = 1`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeatmapStyle {
    pub lo: f32,
    pub hi: f32,
    pub opacity: f32,
}

impl Default for HeatmapStyle {
    /// Probabilities in [0, 1], fully opaque at 1.
    fn default() -> Self {
        HeatmapStyle { lo: 0.0, hi: 1.0, opacity: 1.0 }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ReadParams {
    src_w: u32,
    src_h: u32,
    dst_w: u32,
    dst_h: u32,
    channels: u32,
    single: u32,
    srgb: u32,
    pad0: u32,
    mean: [f32; 4],
    std: [f32; 4],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct WriteParams {
    src_w: u32,
    src_h: u32,
    dst_w: u32,
    dst_h: u32,
    plane: u32,
    format: u32,
    row_words: u32,
    pad0: u32,
    lo: f32,
    hi: f32,
    opacity: f32,
    pad1: f32,
}

/// Packed layouts of [`TextureIo::write_heatmap`]'s copy path (the shader's `format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackedFormat {
    Rgba8 = 0,
    Bgra8 = 1,
    R8 = 2,
}

impl PackedFormat {
    fn of(format: wgpu::TextureFormat) -> Option<PackedFormat> {
        use wgpu::TextureFormat as F;
        match format {
            F::Rgba8Unorm | F::Rgba8UnormSrgb => Some(PackedFormat::Rgba8),
            F::Bgra8Unorm | F::Bgra8UnormSrgb => Some(PackedFormat::Bgra8),
            F::R8Unorm => Some(PackedFormat::R8),
            _ => None,
        }
    }

    pub fn bytes_per_texel(self) -> usize {
        if self == PackedFormat::R8 {
            1
        } else {
            4
        }
    }
}

/// Texel channels the read kernel sees for a readable format (1 for r8unorm, 4 otherwise), and
/// whether it is sRGB.
fn readable(format: wgpu::TextureFormat) -> Option<(usize, bool)> {
    use wgpu::TextureFormat as F;
    match format {
        F::Rgba8Unorm | F::Bgra8Unorm => Some((4, false)),
        F::Rgba8UnormSrgb | F::Bgra8UnormSrgb => Some((4, true)),
        F::R8Unorm => Some((1, false)),
        _ => None,
    }
}

/// Bytes per row of a buffer-texture copy: `width * bytes_per_texel` rounded up to 256.
pub fn padded_row_bytes(width: usize, bytes_per_texel: usize) -> usize {
    (width * bytes_per_texel).div_ceil(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT as usize) * wgpu::COPY_BYTES_PER_ROW_ALIGNMENT as usize
}

struct Pipeline {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
}

/// The texture kernels' pipelines on one context, built once (a host keeps one per device).
pub struct TextureIo {
    ctx: Context,
    read: Pipeline,
    write_storage: Pipeline,
    write_packed: Pipeline,
}

fn uniform_entry() -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding: 0,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer { ty: wgpu::BufferBindingType::Uniform, has_dynamic_offset: false, min_binding_size: None },
        count: None,
    }
}

fn storage_entry(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

fn describe(texture: &wgpu::Texture) -> String {
    let s = texture.size();
    format!("{}x{} {:?} texture with usage {:?}", s.width, s.height, texture.format(), texture.usage())
}

impl TextureIo {
    pub fn new(ctx: &Context) -> TextureIo {
        let device = ctx.device();
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("texture.wgsl"),
            source: wgpu::ShaderSource::Wgsl(SRC.into()),
        });
        let build = |entry: &str, entries: &[wgpu::BindGroupLayoutEntry]| {
            let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(entry), entries });
            let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(entry),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            });
            Pipeline { pipeline, layout }
        };
        let read = build(
            "read_texture",
            &[
                uniform_entry(),
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Float { filterable: false },
                        view_dimension: wgpu::TextureViewDimension::D2,
                        multisampled: false,
                    },
                    count: None,
                },
                storage_entry(2, false),
            ],
        );
        let write_storage = build(
            "write_storage",
            &[
                uniform_entry(),
                storage_entry(1, true),
                wgpu::BindGroupLayoutEntry {
                    binding: 2,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::StorageTexture {
                        access: wgpu::StorageTextureAccess::WriteOnly,
                        format: wgpu::TextureFormat::Rgba8Unorm,
                        view_dimension: wgpu::TextureViewDimension::D2,
                    },
                    count: None,
                },
            ],
        );
        let write_packed = build("write_packed", &[uniform_entry(), storage_entry(1, true), storage_entry(2, false)]);
        TextureIo { ctx: ctx.clone(), read, write_storage, write_packed }
    }

    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// A uniform holding `params`, filled at creation (not through the queue), so two dispatches
    /// of one submission each see their own.
    fn params<P: Pod>(&self, params: &P) -> wgpu::Buffer {
        self.ctx.device().create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("texture params"),
            contents: bytemuck::bytes_of(params),
            usage: wgpu::BufferUsages::UNIFORM,
        })
    }

    fn dispatch(&self, p: &Pipeline, entries: &[wgpu::BindGroupEntry<'_>], groups: [u32; 3], label: &str) {
        let group = self.ctx.device().create_bind_group(&wgpu::BindGroupDescriptor { label: Some(label), layout: &p.layout, entries });
        self.ctx.encode(|encoder| {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(label), timestamp_writes: None });
            pass.set_pipeline(&p.pipeline);
            pass.set_bind_group(0, &group, &[]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        });
    }

    /// The texture (mip 0, layer 0) resized to `spec.size`, in `spec.channels` channels
    /// (luma for a colour texture into one channel, the one channel repeated for r8unorm into
    /// three), z-scored. Returns x: [1, channels, height, width].
    pub fn read(&self, texture: &wgpu::Texture, spec: &InputSpec) -> Result<Tensor> {
        let Some((texel_channels, srgb)) = readable(texture.format()) else {
            return Err(Error::Unsupported(format!(
                "reading a {}: the format must be rgba8unorm, rgba8unorm-srgb, bgra8unorm, bgra8unorm-srgb or r8unorm",
                describe(texture)
            )));
        };
        if !texture.usage().contains(wgpu::TextureUsages::TEXTURE_BINDING) {
            return Err(Error::Unsupported(format!("reading a {}: it needs TEXTURE_BINDING usage", describe(texture))));
        }
        if texture.dimension() != wgpu::TextureDimension::D2 || texture.sample_count() != 1 {
            return Err(Error::Unsupported(format!(
                "reading a {}: it must be a 2-d, single-sampled texture (got {:?}, {} samples)",
                describe(texture),
                texture.dimension(),
                texture.sample_count()
            )));
        }
        check_spec(spec)?;
        let size = texture.size();
        let [h, w] = spec.size;
        let out = Tensor::uninit(&self.ctx, &[1, spec.channels, h, w], DType::F32)?;
        let mut mean = [0f32; 4];
        let mut sd = [1f32; 4];
        mean[..spec.channels].copy_from_slice(&spec.mean);
        sd[..spec.channels].copy_from_slice(&spec.std);
        let params = self.params(&ReadParams {
            src_w: size.width,
            src_h: size.height,
            dst_w: w as u32,
            dst_h: h as u32,
            channels: spec.channels as u32,
            single: (texel_channels == 1) as u32,
            srgb: srgb as u32,
            pad0: 0,
            mean,
            std: sd,
        });
        let view = texture.create_view(&wgpu::TextureViewDescriptor {
            dimension: Some(wgpu::TextureViewDimension::D2),
            base_mip_level: 0,
            mip_level_count: Some(1),
            base_array_layer: 0,
            array_layer_count: Some(1),
            ..Default::default()
        });
        let b = out.binding();
        let entries = [
            wgpu::BindGroupEntry { binding: 0, resource: params.as_entire_binding() },
            wgpu::BindGroupEntry { binding: 1, resource: wgpu::BindingResource::TextureView(&view) },
            wgpu::BindGroupEntry {
                binding: 2,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &b.raw.buffer,
                    offset: 0,
                    size: wgpu::BufferSize::new(b.bytes),
                }),
            },
        ];
        self.dispatch(&self.read, &entries, [(w as u32).div_ceil(8), (h as u32).div_ceil(8), 1], "texture.read");
        Ok(out)
    }

    /// Writes plane `index` of `map` ([N, 1, h, w]) into `texture`, resized to the texture's
    /// size, colour-mapped by `style` (see the module docs for formats and usages).
    pub fn write_heatmap(&self, map: &Tensor, index: usize, texture: &wgpu::Texture, style: &HeatmapStyle) -> Result<()> {
        let s = map.shape();
        if s.len() != 4 || s[1] != 1 || index >= s[0] || s[2] == 0 || s[3] == 0 || map.dtype() != DType::F32 {
            return Err(Error::Shape(format!(
                "write_heatmap: map must be a non-empty f32 [batch, 1, height, width] with image {index} in it, got {:?} {s:?}",
                map.dtype()
            )));
        }
        if !(style.lo.is_finite() && style.hi.is_finite() && style.lo < style.hi && (0.0..=1.0).contains(&style.opacity)) {
            return Err(Error::Shape(format!(
                "write_heatmap: range lo {} .. hi {} must be finite with lo < hi, and opacity {} in [0, 1]",
                style.lo, style.hi, style.opacity
            )));
        }
        if texture.dimension() != wgpu::TextureDimension::D2 || texture.sample_count() != 1 {
            return Err(Error::Unsupported(format!("writing a heatmap into a {}: it must be 2-d and single-sampled", describe(texture))));
        }
        let size = texture.size();
        let mut params = WriteParams {
            src_w: s[3] as u32,
            src_h: s[2] as u32,
            dst_w: size.width,
            dst_h: size.height,
            plane: (index * s[2] * s[3]) as u32,
            format: 0,
            row_words: 0,
            pad0: 0,
            lo: style.lo,
            hi: style.hi,
            opacity: style.opacity,
            pad1: 0.0,
        };
        let mb = map.binding();
        let map_entry = wgpu::BindGroupEntry {
            binding: 1,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &mb.raw.buffer,
                offset: 0,
                size: wgpu::BufferSize::new(mb.bytes),
            }),
        };
        let usage = texture.usage();
        if texture.format() == wgpu::TextureFormat::Rgba8Unorm && usage.contains(wgpu::TextureUsages::STORAGE_BINDING) {
            let buffer = self.params(&params);
            let view = texture.create_view(&wgpu::TextureViewDescriptor {
                dimension: Some(wgpu::TextureViewDimension::D2),
                mip_level_count: Some(1),
                array_layer_count: Some(1),
                ..Default::default()
            });
            let entries = [
                wgpu::BindGroupEntry { binding: 0, resource: buffer.as_entire_binding() },
                map_entry,
                wgpu::BindGroupEntry { binding: 2, resource: wgpu::BindingResource::TextureView(&view) },
            ];
            let groups = [size.width.div_ceil(8), size.height.div_ceil(8), 1];
            self.dispatch(&self.write_storage, &entries, groups, "texture.write_storage");
            return Ok(());
        }
        let packed = PackedFormat::of(texture.format());
        let Some(packed) = packed.filter(|_| usage.contains(wgpu::TextureUsages::COPY_DST)) else {
            return Err(Error::Unsupported(format!(
                "writing a heatmap into a {}: needs rgba8unorm with STORAGE_BINDING usage, or rgba8unorm(-srgb), \
                 bgra8unorm(-srgb) or r8unorm with COPY_DST usage",
                describe(texture)
            )));
        };
        let row_bytes = padded_row_bytes(size.width as usize, packed.bytes_per_texel());
        let words = row_bytes / 4 * size.height as usize;
        let staging = Tensor::uninit(&self.ctx, &[words], DType::U32)?;
        params.format = packed as u32;
        params.row_words = (row_bytes / 4) as u32;
        let buffer = self.params(&params);
        let sb = staging.binding();
        let entries = [
            wgpu::BindGroupEntry { binding: 0, resource: buffer.as_entire_binding() },
            map_entry,
            wgpu::BindGroupEntry {
                binding: 2,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &sb.raw.buffer,
                    offset: 0,
                    size: wgpu::BufferSize::new(sb.bytes),
                }),
            },
        ];
        self.dispatch(&self.write_packed, &entries, grid_1d(words, WG_1D), "texture.write_packed");
        self.ctx.encode(|encoder| {
            encoder.copy_buffer_to_texture(
                wgpu::TexelCopyBufferInfo {
                    buffer: &sb.raw.buffer,
                    layout: wgpu::TexelCopyBufferLayout {
                        offset: 0,
                        bytes_per_row: Some(row_bytes as u32),
                        rows_per_image: Some(size.height),
                    },
                },
                wgpu::TexelCopyTextureInfo { texture, mip_level: 0, origin: wgpu::Origin3d::ZERO, aspect: wgpu::TextureAspect::All },
                wgpu::Extent3d { width: size.width, height: size.height, depth_or_array_layers: 1 },
            )
        });
        // `staging` drops here; until this encoder is submitted, only commands recorded after the
        // copy may reuse its buffer.
        Ok(())
    }
}

fn check_spec(spec: &InputSpec) -> Result<()> {
    let ok_channels = spec.channels == 1 || spec.channels == 3;
    let ok_stats = spec.mean.len() == spec.channels
        && spec.std.len() == spec.channels
        && spec.mean.iter().all(|m| m.is_finite())
        && spec.std.iter().all(|s| s.is_finite() && *s != 0.0);
    if !ok_channels || !ok_stats || spec.size.contains(&0) {
        return Err(Error::Shape(format!(
            "texture input spec: needs 1 or 3 channels, a non-empty size and one finite mean and non-zero std per channel, \
             got {} channels, size {:?}, mean {:?}, std {:?}",
            spec.channels, spec.size, spec.mean, spec.std
        )));
    }
    Ok(())
}

/// Copies mip 0 of an 8-bit texture (1 or 4 bytes per texel) back to the CPU, rows unpadded.
/// This waits for the GPU: for tests and for saving a frame, never inside a frame.
pub fn read_texture_bytes(ctx: &Context, texture: &wgpu::Texture) -> Result<Vec<u8>> {
    let texel = match texture.format().block_copy_size(None) {
        Some(b @ (1 | 4)) => b as usize,
        _ => return Err(Error::Unsupported(format!("read_texture_bytes: {} is not 1 or 4 bytes per texel", describe(texture)))),
    };
    if !texture.usage().contains(wgpu::TextureUsages::COPY_SRC) {
        return Err(Error::Unsupported(format!("read_texture_bytes: the {} needs COPY_SRC usage", describe(texture))));
    }
    let size = texture.size();
    let (w, h) = (size.width as usize, size.height as usize);
    let row = padded_row_bytes(w, texel);
    let staging = ctx.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some("texture readback"),
        size: (row * h) as u64,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    ctx.encode(|encoder| {
        encoder.copy_texture_to_buffer(
            wgpu::TexelCopyTextureInfo { texture, mip_level: 0, origin: wgpu::Origin3d::ZERO, aspect: wgpu::TextureAspect::All },
            wgpu::TexelCopyBufferInfo {
                buffer: &staging,
                layout: wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(row as u32), rows_per_image: Some(size.height) },
            },
            wgpu::Extent3d { width: size.width, height: size.height, depth_or_array_layers: 1 },
        )
    });
    ctx.flush();
    let (tx, rx) = std::sync::mpsc::channel();
    staging.map_async(wgpu::MapMode::Read, .., move |r| {
        let _ = tx.send(r);
    });
    ctx.device()
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| Error::Device(format!("waiting for a texture readback: {e}")))?;
    rx.recv()
        .map_err(|_| Error::Device("texture readback callback never ran".into()))?
        .map_err(|e| Error::Device(format!("mapping a texture readback: {e}")))?;
    let data = staging
        .get_mapped_range(..)
        .map_err(|e| Error::Device(format!("reading a mapped texture readback: {e:?}")))?
        .to_vec();
    staging.unmap();
    Ok(data.chunks(row).flat_map(|r| r[..w * texel].to_vec()).collect())
}

/// Plain-Rust f64 reference, separable like the data pipeline's resize.
pub mod cpu {
    use super::{HeatmapStyle, InputSpec, PackedFormat};

    /// For each output index: the first input index and the normalised weights
    /// (`oddity::data::transforms::resize`'s filter).
    pub fn weights(input: usize, output: usize) -> Vec<(usize, Vec<f64>)> {
        let scale = input as f64 / output as f64;
        let f = scale.max(1.0);
        (0..output)
            .map(|i| {
                let centre = (i as f64 + 0.5) * scale;
                let lo = (centre - f).floor().max(0.0) as usize;
                let hi = ((centre + f).ceil() as usize).min(input);
                let w: Vec<f64> = (lo..hi).map(|j| (1.0 - ((j as f64 + 0.5 - centre) / f).abs()).max(0.0)).collect();
                let total: f64 = w.iter().sum();
                (lo, w.into_iter().map(|v| v / total).collect())
            })
            .collect()
    }

    /// Resizes planes of `[planes, h, w]` to `[planes, out_h, out_w]`.
    pub fn resize(x: &[f64], planes: usize, size: [usize; 2], out: [usize; 2]) -> Vec<f64> {
        let (wy, wx) = (weights(size[0], out[0]), weights(size[1], out[1]));
        let mut y = Vec::with_capacity(planes * out[0] * out[1]);
        for p in 0..planes {
            let plane = &x[p * size[0] * size[1]..(p + 1) * size[0] * size[1]];
            for (y0, ky) in &wy {
                for (x0, kx) in &wx {
                    let mut acc = 0.0;
                    for (a, wa) in ky.iter().enumerate() {
                        for (b, wb) in kx.iter().enumerate() {
                            acc += wa * wb * plane[(y0 + a) * size[1] + x0 + b];
                        }
                    }
                    y.push(acc);
                }
            }
        }
        y
    }

    /// texels: `[h, w, texel_channels]` values in [0, 1] as stored (bytes / 255), texel channels 1
    /// or 4 (RGBA order). Returns [1, channels, out_h, out_w] as [`super::TextureIo::read`].
    pub fn read(texels: &[f64], size: [usize; 2], texel_channels: usize, spec: &InputSpec) -> Vec<f64> {
        let plane = size[0] * size[1];
        let channel = |c: usize| -> Vec<f64> { (0..plane).map(|i| texels[i * texel_channels + c]).collect() };
        let src: Vec<Vec<f64>> = if texel_channels == 1 {
            vec![channel(0); spec.channels]
        } else if spec.channels == 1 {
            let (r, g, b) = (channel(0), channel(1), channel(2));
            vec![(0..plane).map(|i| 0.299 * r[i] + 0.587 * g[i] + 0.114 * b[i]).collect()]
        } else {
            (0..3).map(channel).collect()
        };
        let mut out = Vec::new();
        for (c, p) in src.iter().enumerate() {
            let resized = resize(p, 1, size, spec.size);
            out.extend(resized.into_iter().map(|v| (v - spec.mean[c] as f64) / spec.std[c] as f64));
        }
        out
    }

    /// magma at `t` in [0, 1] (the shader's 17-entry table, linearly interpolated).
    pub fn magma(t: f64) -> [f64; 3] {
        const MAGMA: [[f64; 3]; 17] = [
            [0.001462, 0.000466, 0.013866],
            [0.039608, 0.031090, 0.133515],
            [0.113094, 0.065492, 0.276784],
            [0.211718, 0.061992, 0.418647],
            [0.316654, 0.071690, 0.485380],
            [0.414709, 0.110431, 0.504662],
            [0.512831, 0.148179, 0.507648],
            [0.613617, 0.181811, 0.498536],
            [0.716387, 0.214982, 0.475290],
            [0.816914, 0.255895, 0.436461],
            [0.904281, 0.319610, 0.388137],
            [0.960949, 0.418323, 0.359630],
            [0.986700, 0.535582, 0.382210],
            [0.996096, 0.653659, 0.446213],
            [0.996898, 0.769591, 0.534892],
            [0.992440, 0.884330, 0.640099],
            [0.987053, 0.991438, 0.749504],
        ];
        let u = t.clamp(0.0, 1.0) * 16.0;
        let k = (u.floor() as usize).min(15);
        let l = u - k as f64;
        std::array::from_fn(|c| MAGMA[k][c] * (1.0 - l) + MAGMA[k + 1][c] * l)
    }

    fn byte(v: f64) -> u8 {
        (v.clamp(0.0, 1.0) * 255.0 + 0.5).floor() as u8
    }

    /// The texel bytes (rows unpadded) [`super::TextureIo::write_heatmap`] writes for plane
    /// `index` of `map` ([N, 1, h, w] as `shape`) into a `out` (`[height, width]`) texture.
    pub fn heatmap(map: &[f64], shape: [usize; 4], index: usize, out: [usize; 2], style: &HeatmapStyle, format: PackedFormat) -> Vec<u8> {
        let plane = shape[2] * shape[3];
        let v = resize(&map[index * plane..(index + 1) * plane], 1, [shape[2], shape[3]], out);
        let mut bytes = Vec::new();
        for x in v {
            let t = ((x - style.lo as f64) / (style.hi as f64 - style.lo as f64)).clamp(0.0, 1.0);
            let [r, g, b] = magma(t);
            let a = style.opacity as f64 * t;
            match format {
                PackedFormat::Rgba8 => bytes.extend([byte(r), byte(g), byte(b), byte(a)]),
                PackedFormat::Bgra8 => bytes.extend([byte(b), byte(g), byte(r), byte(a)]),
                PackedFormat::R8 => bytes.push(byte(t)),
            }
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu_or_skip;
    use crate::testing::{assert_close, assert_close_f64, TestRng};

    fn texture(ctx: &Context, size: [usize; 2], format: wgpu::TextureFormat, usage: wgpu::TextureUsages, bytes: &[u8]) -> wgpu::Texture {
        let t = ctx.device().create_texture(&wgpu::TextureDescriptor {
            label: Some("test texture"),
            size: wgpu::Extent3d { width: size[1] as u32, height: size[0] as u32, depth_or_array_layers: 1 },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format,
            usage,
            view_formats: &[],
        });
        if !bytes.is_empty() {
            let texel = bytes.len() / (size[0] * size[1]);
            ctx.queue().write_texture(
                wgpu::TexelCopyTextureInfo { texture: &t, mip_level: 0, origin: wgpu::Origin3d::ZERO, aspect: wgpu::TextureAspect::All },
                bytes,
                wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some((size[1] * texel) as u32), rows_per_image: None },
                t.size(),
            );
        }
        t
    }

    fn random_bytes(rng: &mut TestRng, n: usize) -> Vec<u8> {
        (0..n).map(|_| (rng.next_u64() >> 56) as u8).collect()
    }

    const READ: wgpu::TextureUsages = wgpu::TextureUsages::TEXTURE_BINDING.union(wgpu::TextureUsages::COPY_DST);

    #[test]
    fn read_matches_cpu_on_odd_sizes_and_every_format() {
        use wgpu::TextureFormat as F;
        let ctx = gpu_or_skip!();
        let io = TextureIo::new(&ctx);
        let mut rng = TestRng::new(71);
        // (texture [h, w], format, model channels, model size): shrinking 37x23 -> 28x28 (one axis
        // up, one down), a strong shrink, an upscale, luma, r8 repeated to 3 channels, BGRA order.
        let cases = [
            ([23, 37], F::Rgba8Unorm, 3, [28, 28]),
            ([23, 37], F::Rgba8Unorm, 1, [28, 28]),
            ([61, 50], F::Rgba8Unorm, 3, [7, 9]),
            ([5, 7], F::Rgba8UnormSrgb, 3, [13, 11]),
            ([23, 37], F::R8Unorm, 3, [28, 28]),
            ([23, 37], F::R8Unorm, 1, [17, 31]),
            ([19, 13], F::Bgra8Unorm, 1, [28, 28]),
            ([19, 13], F::Bgra8UnormSrgb, 3, [8, 8]),
        ];
        for (size, format, channels, out) in cases {
            let texel = if format == F::R8Unorm { 1 } else { 4 };
            let bytes = random_bytes(&mut rng, size[0] * size[1] * texel);
            let t = texture(&ctx, size, format, READ, &bytes);
            let spec = InputSpec {
                channels,
                size: out,
                mean: (0..channels).map(|c| 0.4 + 0.05 * c as f32).collect(),
                std: (0..channels).map(|c| 0.25 + 0.03 * c as f32).collect(),
            };
            let x = io.read(&t, &spec).unwrap();
            assert_eq!(x.shape(), [1, channels, out[0], out[1]]);
            // The reference sees the stored bytes in RGBA order.
            let mut texels: Vec<f64> = bytes.iter().map(|&b| b as f64 / 255.0).collect();
            if matches!(format, F::Bgra8Unorm | F::Bgra8UnormSrgb) {
                texels.chunks_exact_mut(4).for_each(|p| p.swap(0, 2));
            }
            let want = cpu::read(&texels, size, texel, &spec);
            // Unorm: f32 weights and sums of values in [0, 1], then / std (>= 0.25): 3e-5. sRGB:
            // the device decodes to linear at its own precision (lavapipe's is coarse: ~1e-3 of a
            // value after the re-encode was measured); the contract is that every stored byte
            // comes back within half a step, 0.5 / 255 before the z-score, / 0.25 after.
            let tol = if format.is_srgb() { 0.5 / 255.0 / 0.25 } else { 3e-5 };
            assert_close(&format!("{size:?} {format:?} -> {channels}x{out:?}"), &x.to_vec().unwrap(), &want, tol, 0.0);
        }
    }

    #[test]
    fn cpu_filter_is_bilinear_when_upscaling_and_averages_when_shrinking() {
        // Upscaling 2 -> 4 is PyTorch's F.interpolate(mode="bilinear", align_corners=False):
        // [1, 2] -> [1.0, 1.25, 1.75, 2.0].
        let up = cpu::resize(&[1.0, 2.0], 1, [1, 2], [1, 4]);
        assert_close_f64("upscale", &up, &[1.0, 1.25, 1.75, 2.0], 1e-12, 0.0);
        // Halving: a triangle of radius 2 around each output centre, weights 1/8, 3/8, 3/8, 1/8
        // inside; at the edges the clipped triangle renormalises to 3/7, 3/7, 1/7 (as PIL).
        let down = cpu::resize(&[0.0, 0.0, 8.0, 8.0, 0.0, 0.0], 1, [1, 6], [1, 3]);
        assert_close_f64("shrink", &down, &[8.0 / 7.0, 6.0, 8.0 / 7.0], 1e-12, 0.0);
    }

    /// Reads back a heatmap written by the GPU and compares it with the reference, byte for byte
    /// up to 1 (f32 vs f64 rounding at a .5 boundary).
    fn check_heatmap(ctx: &Context, io: &TextureIo, format: wgpu::TextureFormat, usage: wgpu::TextureUsages, size: [usize; 2]) {
        let mut rng = TestRng::new(72 + size[0] as u64);
        let shape = [2, 1, 7, 5];
        let map: Vec<f64> = (0..70).map(|_| rng.uniform(-0.3, 1.3)).collect();
        let mt = Tensor::from_slice(ctx, &shape, &map.iter().map(|&v| v as f32).collect::<Vec<_>>()).unwrap();
        let t = texture(ctx, size, format, usage | wgpu::TextureUsages::COPY_SRC, &[]);
        let style = HeatmapStyle { lo: -0.1, hi: 1.1, opacity: 0.8 };
        io.write_heatmap(&mt, 1, &t, &style).unwrap();
        let got = read_texture_bytes(ctx, &t).unwrap();
        let packed = PackedFormat::of(format).unwrap();
        let want = cpu::heatmap(&map, shape, 1, size, &style, packed);
        assert_eq!(got.len(), want.len());
        let bad: Vec<(usize, u8, u8)> =
            got.iter().zip(&want).enumerate().filter(|(_, (g, w))| g.abs_diff(**w) > 1).map(|(i, (g, w))| (i, *g, *w)).take(8).collect();
        assert!(bad.is_empty(), "{format:?} {usage:?} {size:?}: (byte, gpu, cpu) {bad:?}");
    }

    #[test]
    fn heatmap_matches_cpu_for_storage_and_copy_paths() {
        use wgpu::TextureFormat as F;
        use wgpu::TextureUsages as U;
        let ctx = gpu_or_skip!();
        let io = TextureIo::new(&ctx);
        // 7x5 map up to 23x37 (odd, not a multiple of 64 or of the 256-byte row alignment), and
        // down to 3x4.
        check_heatmap(&ctx, &io, F::Rgba8Unorm, U::STORAGE_BINDING, [23, 37]);
        check_heatmap(&ctx, &io, F::Rgba8Unorm, U::STORAGE_BINDING, [3, 4]);
        check_heatmap(&ctx, &io, F::Rgba8Unorm, U::COPY_DST, [23, 37]);
        check_heatmap(&ctx, &io, F::Rgba8UnormSrgb, U::COPY_DST, [23, 37]);
        check_heatmap(&ctx, &io, F::Bgra8Unorm, U::COPY_DST, [23, 37]);
        check_heatmap(&ctx, &io, F::R8Unorm, U::COPY_DST, [23, 37]);
        check_heatmap(&ctx, &io, F::R8Unorm, U::COPY_DST, [3, 4]);
    }

    #[test]
    fn two_reads_in_one_submission_keep_their_own_params() {
        let ctx = gpu_or_skip!();
        let io = TextureIo::new(&ctx);
        let t = texture(&ctx, [4, 4], wgpu::TextureFormat::R8Unorm, READ, &[255; 16]);
        let spec = |m: f32| InputSpec { channels: 1, size: [2, 2], mean: vec![m], std: vec![1.0] };
        let a = io.read(&t, &spec(0.0)).unwrap();
        let b = io.read(&t, &spec(0.5)).unwrap();
        assert_close("a", &a.to_vec().unwrap(), &[1.0; 4], 1e-6, 0.0);
        assert_close("b", &b.to_vec().unwrap(), &[0.5; 4], 1e-6, 0.0);
    }

    #[test]
    fn bad_formats_usages_and_specs_are_named() {
        use wgpu::TextureFormat as F;
        use wgpu::TextureUsages as U;
        let ctx = gpu_or_skip!();
        let io = TextureIo::new(&ctx);
        let spec = InputSpec { channels: 3, size: [8, 8], mean: vec![0.0; 3], std: vec![1.0; 3] };
        let float = texture(&ctx, [4, 4], F::Rgba16Float, READ, &[]);
        let err = io.read(&float, &spec).unwrap_err().to_string();
        assert!(err.contains("Rgba16Float") && err.contains("r8unorm"), "{err}");
        let no_binding = texture(&ctx, [4, 4], F::Rgba8Unorm, U::COPY_DST, &[]);
        let err = io.read(&no_binding, &spec).unwrap_err().to_string();
        assert!(err.contains("TEXTURE_BINDING"), "{err}");
        let t = texture(&ctx, [4, 4], F::Rgba8Unorm, READ, &[]);
        let bad = InputSpec { channels: 2, ..spec.clone() };
        assert!(io.read(&t, &bad).unwrap_err().to_string().contains("2 channels"));
        let bad = InputSpec { std: vec![1.0, 0.0, 1.0], ..spec.clone() };
        assert!(io.read(&t, &bad).unwrap_err().to_string().contains("std"));

        let map = Tensor::zeros(&ctx, &[1, 1, 3, 3]).unwrap();
        let style = HeatmapStyle::default();
        let sampled_only = texture(&ctx, [4, 4], F::Rgba8Unorm, U::TEXTURE_BINDING, &[]);
        let err = io.write_heatmap(&map, 0, &sampled_only, &style).unwrap_err().to_string();
        assert!(err.contains("STORAGE_BINDING") && err.contains("COPY_DST"), "{err}");
        let r16 = texture(&ctx, [4, 4], F::R16Float, U::COPY_DST, &[]);
        assert!(io.write_heatmap(&map, 0, &r16, &style).unwrap_err().to_string().contains("R16Float"));
        let dst = texture(&ctx, [4, 4], F::R8Unorm, U::COPY_DST, &[]);
        let err = io.write_heatmap(&map, 1, &dst, &style).unwrap_err().to_string();
        assert!(err.contains("[1, 1, 3, 3]") && err.contains("image 1"), "{err}");
        let flat = HeatmapStyle { lo: 1.0, hi: 1.0, opacity: 1.0 };
        assert!(io.write_heatmap(&map, 0, &dst, &flat).unwrap_err().to_string().contains("lo < hi"));
    }
}
