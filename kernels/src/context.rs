//! The device context: adapter selection, the open command encoder, the per-dispatch params arena,
//! the buffer pool, and the pipeline and bind-group caches.
//!
//! Ops never submit. They record into the context's open encoder; [`Context::flush`] (or a
//! readback) writes the params arena and submits everything recorded so far in one command buffer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::kernel::{Access, KernelSpec};
use crate::pool::{BufferPool, FirstWrite, RawBuffer};
pub use crate::pool::PoolStats;
use crate::profile::{KernelTime, ProfileClock, Profiler};

/// Bytes of params one submission can hold; each dispatch takes one aligned slot.
const PARAMS_ARENA_BYTES: u64 = 1 << 20;
/// Bind groups kept before the cache is emptied (shapes that never repeat would grow it forever).
const BIND_GROUP_CACHE_MAX: usize = 8192;

/// A handle on one wgpu device and queue with everything oddity caches per device.
/// Cloning is cheap and shares the same device, encoder and caches.
#[derive(Clone)]
pub struct Context {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    adapter: String,
    device_type: Option<wgpu::DeviceType>,
    backend: wgpu::Backend,
    /// Kernels tuned for CPUs run (software adapters, or `ODDITY_KERNELS=cpu`).
    cpu_tuned: bool,
    /// What the adapter offers (a superset of what the device enabled).
    adapter_features: wgpu::Features,
    /// The fewest lanes a subgroup can have, when the device enabled subgroup operations.
    subgroup_min_lanes: Option<u32>,
    params_align: u64,
    pub(crate) max_binding: u64,
    pub(crate) state: Mutex<State>,
    /// The first device fault wgpu reported (device lost, out of memory, a validation error
    /// outside an error scope); every later wait or readback returns it as `Error::Device`.
    fault: Arc<Mutex<Option<String>>>,
    /// Set by wgpu's device-lost callback; reported before `fault`, whose errors a lost device
    /// causes (every buffer made after the loss is invalid).
    lost: Arc<Mutex<Option<String>>>,
}

pub(crate) struct State {
    /// The compute pass open on `encoder`: consecutive dispatches share one pass (wgpu still
    /// gives each dispatch its own usage scope and barriers), which saves a pass begin and end
    /// per op on the host. Ended before any other command is recorded and before submit.
    /// Declared before `encoder`, so it is dropped (ended) first.
    pass: Option<wgpu::ComputePass<'static>>,
    encoder: Option<wgpu::CommandEncoder>,
    /// CPU copy of this submission's params; written to `params_buffer` just before submit.
    params: Vec<u8>,
    params_buffer: wgpu::Buffer,
    pub(crate) pool: BufferPool,
    kernels: HashMap<&'static str, Arc<CompiledKernel>>,
    bind_groups: HashMap<BindKey, wgpu::BindGroup>,
    dispatches: u64,
    /// Bind groups created (cache misses) since the context was made.
    bind_groups_created: u64,
    submissions: u64,
    /// Set between `begin_profile` and `end_profile` only.
    profiler: Option<Profiler>,
}

struct CompiledKernel {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
}

#[derive(Hash, PartialEq, Eq)]
struct BindKey {
    kernel: &'static str,
    params_size: u64,
    buffers: Vec<(u64, u64)>,
}

/// One storage binding of a dispatch: a pooled buffer and how many bytes of it the kernel sees.
#[derive(Clone, Copy)]
pub struct Binding<'a> {
    pub(crate) raw: &'a RawBuffer,
    pub(crate) bytes: u64,
}

/// Which backend `ODDITY_BACKEND` asks for.
fn backends_from_env() -> Result<wgpu::Backends> {
    parse_backend(std::env::var("ODDITY_BACKEND").ok().as_deref())
}

/// Parses an `ODDITY_BACKEND` value; unset or empty means every backend.
pub fn parse_backend(value: Option<&str>) -> Result<wgpu::Backends> {
    match value {
        None => Ok(wgpu::Backends::all()),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "" => Ok(wgpu::Backends::all()),
            "vulkan" => Ok(wgpu::Backends::VULKAN),
            "metal" => Ok(wgpu::Backends::METAL),
            "dx12" => Ok(wgpu::Backends::DX12),
            "gl" => Ok(wgpu::Backends::GL),
            other => Err(Error::Config(format!(
                "ODDITY_BACKEND={other:?} is not one of vulkan, metal, dx12, gl"
            ))),
        },
    }
}

/// Parses an `ODDITY_KERNELS` value: which kernel family `Auto` variants pick. `cpu` or `gpu`
/// overrides the adapter's own type (e.g. the GPU path's dispatches, traced on lavapipe); unset
/// or empty leaves the choice to the adapter (`None`).
pub fn parse_kernels(value: Option<&str>) -> Result<Option<bool>> {
    match value.map(|v| v.to_ascii_lowercase()) {
        None => Ok(None),
        Some(v) => match v.as_str() {
            "" => Ok(None),
            "cpu" => Ok(Some(true)),
            "gpu" => Ok(Some(false)),
            other => Err(Error::Config(format!("ODDITY_KERNELS={other:?} is not one of cpu, gpu"))),
        },
    }
}

fn describe(info: &wgpu::AdapterInfo) -> String {
    format!("{} ({:?}, {:?}, driver {} {})", info.name, info.backend, info.device_type, info.driver, info.driver_info)
}

impl Context {
    /// Opens the best adapter with the adapter's own limits.
    /// `ODDITY_BACKEND` (vulkan | metal | dx12 | gl) narrows the backend and `ODDITY_ADAPTER`
    /// picks an adapter whose name contains the given text (case-insensitive).
    pub fn new() -> Result<Context> {
        Self::open(None, false)
    }

    /// Like [`Context::new`], but also asks for `TIMESTAMP_QUERY` where the adapter has it, so
    /// [`Context::begin_profile`] can time kernels on the GPU's clock.
    pub fn new_profiled() -> Result<Context> {
        Self::open(None, true)
    }

    /// Opens the best adapter but requests exactly `limits` from it. Tests use
    /// `wgpu::Limits::default()`, the WebGPU baseline, so what passes here runs on small GPUs too.
    pub fn with_limits(limits: wgpu::Limits) -> Result<Context> {
        Self::open(Some(limits), false)
    }

    fn open(limits: Option<wgpu::Limits>, timestamps: bool) -> Result<Context> {
        let requested = backends_from_env()?;
        let enumerate = |backends: wgpu::Backends| {
            let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
            desc.backends = backends;
            pollster::block_on(wgpu::Instance::new(desc).enumerate_adapters(backends))
        };
        // With no backend named, GL is only a fallback: probing it costs time and warnings on
        // headless machines, and Vulkan/Metal/DX12 are the better-tested paths.
        let (backends, mut adapters) = if requested == wgpu::Backends::all() {
            (wgpu::Backends::PRIMARY, enumerate(wgpu::Backends::PRIMARY))
        } else {
            (requested, enumerate(requested))
        };
        let backends = if adapters.is_empty() && requested == wgpu::Backends::all() {
            adapters = enumerate(wgpu::Backends::GL);
            requested
        } else {
            backends
        };
        let kernels_override = parse_kernels(std::env::var("ODDITY_KERNELS").ok().as_deref())?;
        let wanted = std::env::var("ODDITY_ADAPTER").ok().filter(|s| !s.is_empty());
        let found: Vec<String> = adapters.iter().map(|a| describe(&a.get_info())).collect();
        let rank = |t: wgpu::DeviceType| match t {
            wgpu::DeviceType::DiscreteGpu => 0,
            wgpu::DeviceType::IntegratedGpu => 1,
            wgpu::DeviceType::VirtualGpu => 2,
            wgpu::DeviceType::Cpu => 3,
            wgpu::DeviceType::Other => 4,
        };
        let mut candidates: Vec<wgpu::Adapter> = adapters
            .into_iter()
            .filter(|a| match &wanted {
                Some(w) => a.get_info().name.to_lowercase().contains(&w.to_lowercase()),
                None => true,
            })
            .collect();
        // Vulkan first among equals: it is the most exercised backend here.
        candidates.sort_by_key(|a| {
            let info = a.get_info();
            (rank(info.device_type), info.backend != wgpu::Backend::Vulkan)
        });
        let Some(adapter) = candidates.into_iter().next() else {
            let hint = "on Debian/Ubuntu, `apt-get install mesa-vulkan-drivers libvulkan1` gives a software \
                        Vulkan driver (lavapipe); on other systems install your GPU vendor's Vulkan, Metal or DX12 driver";
            let msg = match &wanted {
                Some(w) => format!(
                    "no adapter name contains ODDITY_ADAPTER={w:?} (backends {backends:?}); found: [{}]; {hint}",
                    found.join("; ")
                ),
                None => format!("none found for backends {backends:?}; {hint}"),
            };
            return Err(Error::NoAdapter(msg));
        };
        let info = adapter.get_info();
        let adapter_limits = adapter.limits();
        let required_limits = match limits {
            Some(l) => l,
            None => adapter_limits.clone(),
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("oddity"),
            // Subgroups where offered: CPU-tuned kernels share loads across a SIMD register's lanes.
            required_features: adapter.features()
                & if timestamps {
                    wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SUBGROUP
                } else {
                    wgpu::Features::SUBGROUP
                },
            required_limits,
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::NoAdapter(format!("{} refused a device: {e}", describe(&info))))?;
        let cpu_tuned = kernels_override.unwrap_or(info.device_type == wgpu::DeviceType::Cpu);
        let ctx = Self::build(device, queue, describe(&info), Some(info.device_type), cpu_tuned, adapter.features());
        ctx.capture_faults();
        Ok(ctx)
    }

    /// Wraps a device and queue that a host application already owns (e.g. a renderer's), so
    /// detection runs on the same device and shares its buffers' lifetime rules.
    /// The adapter comes from the device, so CPU-tuned kernel variants are chosen as for
    /// [`Context::new`].
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue) -> Context {
        let info = device.adapter_info();
        let features = device.features();
        let cpu_tuned = info.device_type == wgpu::DeviceType::Cpu;
        Self::build(device, queue, format!("{} (host device)", describe(&info)), Some(info.device_type), cpu_tuned, features)
    }

    fn build(
        device: wgpu::Device,
        queue: wgpu::Queue,
        adapter: String,
        device_type: Option<wgpu::DeviceType>,
        cpu_tuned: bool,
        adapter_features: wgpu::Features,
    ) -> Context {
        let limits = device.limits();
        let subgroup_min_lanes =
            device.features().contains(wgpu::Features::SUBGROUP).then(|| device.adapter_info().subgroup_min_size);
        let params_buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("oddity params arena"),
            size: PARAMS_ARENA_BYTES,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let max_binding = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
        let backend = device.adapter_info().backend;
        Context {
            inner: Arc::new(Inner {
                device,
                queue,
                adapter,
                device_type,
                backend,
                cpu_tuned,
                adapter_features,
                subgroup_min_lanes,
                params_align: limits.min_uniform_buffer_offset_alignment as u64,
                max_binding,
                state: Mutex::new(State {
                    pass: None,
                    encoder: None,
                    params: Vec::new(),
                    params_buffer,
                    pool: BufferPool::default(),
                    kernels: HashMap::new(),
                    bind_groups: HashMap::new(),
                    dispatches: 0,
                    bind_groups_created: 0,
                    submissions: 0,
                    profiler: None,
                }),
                fault: Arc::new(Mutex::new(None)),
                lost: Arc::new(Mutex::new(None)),
            }),
        }
    }

    /// Routes wgpu's device-lost callback and uncaptured errors (which wgpu's default handler
    /// turns into a panic) into [`Context::check_device`]. Only for devices oddity opened: a
    /// host's device keeps the host's handlers.
    fn capture_faults(&self) {
        let record = |fault: &Arc<Mutex<Option<String>>>, message: String| {
            let mut slot = fault.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert(message);
        };
        let fault = self.inner.fault.clone();
        self.inner.device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let kind = match e {
                wgpu::Error::OutOfMemory { .. } => "out of GPU memory",
                wgpu::Error::Validation { .. } => "rejected GPU work",
                wgpu::Error::Internal { .. } => "internal GPU error",
            };
            record(&fault, format!("{kind}: {e}"));
        }));
        let lost = self.inner.lost.clone();
        self.inner.device.set_device_lost_callback(move |reason, message| {
            record(&lost, format!("the GPU device was lost ({reason:?}): {message}"));
        });
    }

    /// `Err(Error::Device)` naming the first fault the device reported (lost, out of memory, a
    /// rejected command), or `Ok` when there was none. A fault is permanent: results computed
    /// since are not trusted, so the context must be dropped and a new one opened.
    pub fn check_device(&self) -> Result<()> {
        let read = |slot: &Mutex<Option<String>>| slot.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match read(&self.inner.lost).or_else(|| read(&self.inner.fault)) {
            None => Ok(()),
            Some(m) => Err(Error::Device(format!("{m}; results since are invalid, open a new context (restart)"))),
        }
    }

    pub fn device(&self) -> &wgpu::Device {
        &self.inner.device
    }

    pub fn queue(&self) -> &wgpu::Queue {
        &self.inner.queue
    }

    /// Adapter name, backend, type and driver, for logs and benchmark reports.
    pub fn adapter_name(&self) -> &str {
        &self.inner.adapter
    }

    /// Features the adapter offers (for a host's device: those it enabled).
    pub fn adapter_features(&self) -> wgpu::Features {
        self.inner.adapter_features
    }

    /// The fewest lanes a subgroup can have, or `None` when the device has no subgroup operations.
    pub fn subgroup_min_lanes(&self) -> Option<u32> {
        self.inner.subgroup_min_lanes
    }

    /// True on software rasterisers (lavapipe, WARP, llvmpipe GL): kernels with a CPU-tuned variant use it.
    /// `ODDITY_KERNELS=cpu|gpu` (read by [`Context::new`]) overrides it, not the adapter's type.
    pub fn is_cpu_adapter(&self) -> bool {
        self.inner.cpu_tuned
    }

    /// `"cpu"` or `"gpu"`: the kernel family `Auto` variants pick (see [`Context::is_cpu_adapter`]).
    pub fn kernel_family(&self) -> &'static str {
        if self.inner.cpu_tuned { "cpu" } else { "gpu" }
    }

    /// The graphics API the device runs on.
    pub fn backend(&self) -> wgpu::Backend {
        self.inner.backend
    }

    /// What the adapter reports itself as (a discrete GPU, a CPU, ...), whatever `ODDITY_KERNELS` says.
    pub fn device_type(&self) -> Option<wgpu::DeviceType> {
        self.inner.device_type
    }

    /// The largest tensor, in bytes, that one storage binding can hold on this device.
    pub fn max_binding_bytes(&self) -> u64 {
        self.inner.max_binding
    }

    /// Dispatches recorded since the context was made (for tests and profiling).
    pub fn dispatch_count(&self) -> u64 {
        self.lock().dispatches
    }

    /// Bind groups the dispatch cache has created since the context was made: a steady-state
    /// training step (same shapes, buffers handed out in the same order) adds none.
    pub fn bind_groups_created(&self) -> u64 {
        self.lock().bind_groups_created
    }

    /// Command buffers submitted since the context was made: a training step that reads nothing
    /// back adds none until the next readback or [`Context::flush`].
    pub fn submission_count(&self) -> u64 {
        self.lock().submissions
    }

    /// Buffers the pool has created since the context was made; a steady-state training step
    /// (same shapes as the step before) adds none.
    pub fn buffers_created(&self) -> u64 {
        self.lock().pool.created()
    }

    /// What the buffer pool holds now: buffers, their bytes, the bytes live tensors hold and the
    /// peak of those since [`Context::reset_pool_peak`]. `held_bytes` far above
    /// `peak_live_bytes` means freed buffers wait too long for reuse (work recorded for many
    /// steps without a submit).
    pub fn pool_stats(&self) -> PoolStats {
        self.lock().pool.stats()
    }

    /// Starts a new peak of [`PoolStats::peak_live_bytes`] from the bytes live now.
    pub fn reset_pool_peak(&self) {
        self.lock().pool.reset_peak();
    }

    /// Starts timing every dispatch (see [`crate::profile`]) after finishing the work already
    /// recorded; returns the clock in use.
    pub fn begin_profile(&self) -> Result<ProfileClock> {
        self.wait()?;
        let mut state = self.lock();
        let profiler = Profiler::new(&self.inner.device, &self.inner.queue);
        let clock = profiler.clock();
        state.profiler = Some(profiler);
        Ok(clock)
    }

    /// Finishes the recorded work and returns one time per dispatch since
    /// [`Context::begin_profile`], in recording order; profiling stops.
    pub fn end_profile(&self) -> Result<Vec<KernelTime>> {
        self.wait()?;
        let profiler = self.lock().profiler.take();
        let Some(p) = profiler else {
            return Err(Error::Config("end_profile without begin_profile".into()));
        };
        match p.error {
            Some(e) => Err(Error::Device(e)),
            None => Ok(p.records),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while recording leaves the state consistent enough to keep going.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records one compute dispatch: `params` go into this submission's arena, `buffers` bind in
    /// order after the params (binding 0), and the kernel's pipeline is built on first use.
    pub fn dispatch<P: bytemuck::Pod>(
        &self,
        spec: &KernelSpec,
        params: &P,
        buffers: &[Binding<'_>],
        workgroups: [u32; 3],
    ) -> Result<()> {
        if buffers.len() != spec.bindings.len() {
            return Err(Error::Shape(format!(
                "kernel {} takes {} buffers, got {}",
                spec.id,
                spec.bindings.len(),
                buffers.len()
            )));
        }
        if workgroups.contains(&0) {
            return Ok(()); // nothing to do for empty tensors
        }
        let max_wg = self.inner.device.limits().max_compute_workgroups_per_dimension;
        if workgroups.iter().any(|&w| w > max_wg) {
            return Err(Error::TooLarge(format!(
                "kernel {} needs workgroups {workgroups:?}, over the device limit {max_wg} per dimension",
                spec.id
            )));
        }
        let bytes = bytemuck::bytes_of(params);
        let params_size = (bytes.len() as u64).div_ceil(16) * 16;
        let mut state = self.lock();
        let wall_clock = state.profiler.as_ref().map(|p| p.clock()) == Some(ProfileClock::CpuWallClock);
        if wall_clock || state.profiler.as_ref().is_some_and(|p| p.full()) {
            // Wall clock: earlier work must not be in the timed submit.
            self.submit_locked(&mut state);
            if wall_clock {
                self.poll_wait()?;
            }
        }
        let mut offset = (state.params.len() as u64).div_ceil(self.inner.params_align) * self.inner.params_align;
        if offset + params_size > PARAMS_ARENA_BYTES {
            self.submit_locked(&mut state);
            offset = 0;
        }
        state.params.resize(offset as usize, 0);
        state.params.extend_from_slice(bytes);
        state.params.resize((offset + params_size) as usize, 0);

        let kernel = self.kernel_locked(&mut state, spec);
        let key = BindKey {
            kernel: spec.id,
            params_size,
            buffers: buffers.iter().map(|b| (b.raw.id, b.bytes)).collect(),
        };
        if state.bind_groups.len() >= BIND_GROUP_CACHE_MAX && !state.bind_groups.contains_key(&key) {
            state.bind_groups.clear();
        }
        if !state.bind_groups.contains_key(&key) {
            let mut entries = vec![wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &state.params_buffer,
                    offset: 0,
                    size: wgpu::BufferSize::new(params_size),
                }),
            }];
            for (i, b) in buffers.iter().enumerate() {
                entries.push(wgpu::BindGroupEntry {
                    binding: i as u32 + 1,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &b.raw.buffer,
                        offset: 0,
                        size: wgpu::BufferSize::new(b.bytes.max(4).div_ceil(4) * 4),
                    }),
                });
            }
            let group = self.inner.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(spec.id),
                layout: &kernel.layout,
                entries: &entries,
            });
            state.bind_groups_created += 1;
            state.bind_groups.insert(
                BindKey { kernel: spec.id, params_size, buffers: key.buffers.clone() },
                group,
            );
        }
        let group = state.bind_groups.get(&key).cloned().expect("inserted above");
        let state = &mut *state;
        // Timestamps are written per pass, so while profiling every dispatch gets a pass of its
        // own (the previous one ends when replaced).
        if state.pass.is_none() || state.profiler.is_some() {
            state.pass = None;
            let timestamp_writes = state.profiler.as_mut().and_then(|p| p.pass_writes(spec.id));
            let encoder = self.open_encoder(&mut state.encoder);
            let pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(spec.id), timestamp_writes });
            state.pass = Some(pass.forget_lifetime());
        }
        let pass = state.pass.as_mut().expect("opened above");
        pass.set_pipeline(&kernel.pipeline);
        pass.set_bind_group(0, &group, &[offset as u32]);
        pass.dispatch_workgroups(workgroups[0], workgroups[1], workgroups[2]);
        state.dispatches += 1;
        if wall_clock {
            let started = std::time::Instant::now();
            self.submit_locked(state);
            self.poll_wait()?;
            if let Some(p) = state.profiler.as_mut() {
                p.records.push(KernelTime { kernel: spec.id, nanos: started.elapsed().as_nanos() as f64 });
            }
        }
        Ok(())
    }

    fn poll_wait(&self) -> Result<()> {
        self.inner
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| Error::Device(format!("waiting for the GPU: {e}")))
    }

    fn kernel_locked(&self, state: &mut State, spec: &KernelSpec) -> Arc<CompiledKernel> {
        if let Some(k) = state.kernels.get(spec.id) {
            return k.clone();
        }
        let device = &self.inner.device;
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(spec.id),
            source: wgpu::ShaderSource::Wgsl(spec.source.into()),
        });
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: true,
                min_binding_size: None,
            },
            count: None,
        }];
        for (i, access) in spec.bindings.iter().enumerate() {
            entries.push(wgpu::BindGroupLayoutEntry {
                binding: i as u32 + 1,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only: *access == Access::Read },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            });
        }
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(spec.id), entries: &entries });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(spec.id),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(spec.id),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(spec.entry),
            compilation_options: Default::default(),
            cache: None,
        });
        let compiled = Arc::new(CompiledKernel { pipeline, layout });
        state.kernels.insert(spec.id, compiled.clone());
        compiled
    }

    /// Runs `f` on the open encoder (creating one if needed): copies and clears go here so they
    /// stay ordered with the dispatches around them.
    pub(crate) fn with_encoder<R>(&self, f: impl FnOnce(&mut wgpu::CommandEncoder, &mut BufferPool) -> R) -> R {
        let mut state = self.lock();
        let state = &mut *state;
        state.pass = None; // the encoder is locked while a pass is open
        let encoder = self.open_encoder(&mut state.encoder);
        f(encoder, &mut state.pool)
    }

    /// The open command encoder, created if there is none.
    fn open_encoder<'a>(&self, encoder: &'a mut Option<wgpu::CommandEncoder>) -> &'a mut wgpu::CommandEncoder {
        encoder.get_or_insert_with(|| {
            self.inner.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("oddity ops") })
        })
    }

    /// Records host commands (render passes, copies) into the open encoder after the ops recorded
    /// so far, so they reach the GPU in the same command buffer at the next [`Context::flush`]:
    /// a renderer can draw a heatmap in the very submission that computed it.
    pub fn encode<R>(&self, f: impl FnOnce(&mut wgpu::CommandEncoder) -> R) -> R {
        self.with_encoder(|encoder, _| f(encoder))
    }

    /// A pooled buffer of at least `bytes` bytes whose first write is of kind `first`.
    pub(crate) fn take_buffer(&self, bytes: u64, first: FirstWrite) -> RawBuffer {
        self.lock().pool.take(&self.inner.device, bytes, first)
    }

    /// Returns the buffer of a dropped tensor to the pool.
    pub(crate) fn release_buffer(&self, raw: RawBuffer) {
        let mut state = self.lock();
        let encoder_open = state.encoder.is_some();
        state.pool.release(raw, encoder_open);
    }

    /// True when ops have been recorded but not yet submitted.
    pub(crate) fn has_pending(&self) -> bool {
        self.lock().encoder.is_some()
    }

    /// Submits everything recorded so far. Does not wait for the GPU.
    pub fn flush(&self) {
        let mut state = self.lock();
        self.submit_locked(&mut state);
    }

    fn submit_locked(&self, state: &mut State) {
        state.pass = None;
        if let Some(mut encoder) = state.encoder.take() {
            if !state.params.is_empty() {
                self.inner.queue.write_buffer(&state.params_buffer, 0, &state.params);
            }
            if let Some(p) = &state.profiler {
                p.resolve(&mut encoder);
            }
            self.inner.queue.submit([encoder.finish()]);
            state.submissions += 1;
            if let Some(p) = state.profiler.as_mut() {
                p.collect(&self.inner.device);
            }
        }
        state.params.clear();
        // Buffers freed while recording were possibly still read by that submission; only now,
        // after it is queued, may a queue write (an upload) reuse them.
        state.pool.recycle_pending();
    }

    /// Blocks until the GPU has finished all submitted work.
    pub fn wait(&self) -> Result<()> {
        self.flush();
        self.poll_wait()?;
        self.check_device()
    }

    /// Copies `bytes` bytes of `raw` back to the CPU, submitting pending work first.
    pub(crate) fn read_bytes(&self, raw: &RawBuffer, bytes: u64) -> Result<Vec<u8>> {
        let padded = bytes.div_ceil(4).max(1) * 4;
        let staging = self.inner.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("oddity readback"),
            size: padded,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.with_encoder(|enc, _| enc.copy_buffer_to_buffer(&raw.buffer, 0, &staging, 0, padded));
        self.flush();
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.inner
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Device(format!("waiting for readback: {e}")))?;
        self.check_device()?;
        rx.recv()
            .map_err(|_| Error::Device("readback callback never ran".into()))?
            .map_err(|e| Error::Device(format!("mapping readback buffer: {e}")))?;
        let data = staging
            .get_mapped_range(..)
            .map_err(|e| Error::Device(format!("reading mapped buffer: {e:?}")))?
            .to_vec();
        staging.unmap();
        Ok(data[..bytes as usize].to_vec())
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Context({})", self.inner.adapter)
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_backend, parse_kernels};

    #[test]
    fn backend_names_parse_and_unknown_ones_are_named() {
        assert_eq!(parse_backend(None).unwrap(), wgpu::Backends::all());
        assert_eq!(parse_backend(Some("GL")).unwrap(), wgpu::Backends::GL);
        assert_eq!(parse_backend(Some("vulkan")).unwrap(), wgpu::Backends::VULKAN);
        let err = parse_backend(Some("cuda")).unwrap_err().to_string();
        assert!(err.contains("cuda") && err.contains("vulkan"), "{err}");
    }

    #[test]
    fn kernel_family_names_parse_and_unknown_ones_are_named() {
        assert_eq!(parse_kernels(None).unwrap(), None);
        assert_eq!(parse_kernels(Some("")).unwrap(), None);
        assert_eq!(parse_kernels(Some("GPU")).unwrap(), Some(false));
        assert_eq!(parse_kernels(Some("cpu")).unwrap(), Some(true));
        let err = parse_kernels(Some("tpu")).unwrap_err().to_string();
        assert!(err.contains("ODDITY_KERNELS") && err.contains("tpu") && err.contains("gpu"), "{err}");
    }

    #[test]
    fn a_lost_device_is_a_device_error_not_a_panic() {
        if crate::testing::gpu().is_none() {
            return;
        }
        // Its own device: destroying the shared test device would fail every other test.
        let ctx = super::Context::with_limits(wgpu::Limits::default()).unwrap();
        let t = crate::Tensor::from_slice(&ctx, &[3], &[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(t.to_vec().unwrap(), vec![1.0, 2.0, 3.0]);
        assert!(ctx.check_device().is_ok());
        ctx.device().destroy();
        let err = t.to_vec().unwrap_err();
        assert!(matches!(err, crate::Error::Device(_)), "{err}");
        let message = err.to_string();
        assert!(message.contains("lost") && message.contains("open a new context"), "{message}");
        // The fault stays: later work fails the same way instead of returning garbage.
        let again = crate::Tensor::from_slice(&ctx, &[2], &[1.0, 2.0]).and_then(|t| t.to_vec()).unwrap_err();
        assert!(again.to_string().contains("lost"), "{again}");
    }
}
