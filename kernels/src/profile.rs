//! Per-kernel time of recorded dispatches, for `oddity bench --profile`.
//!
//! Off by default and free when off: a [`Context`](crate::Context) only carries a profiler
//! between [`Context::begin_profile`](crate::Context::begin_profile) and
//! [`Context::end_profile`](crate::Context::end_profile).
//!
//! Two clocks:
//! - [`ProfileClock::GpuTimestamps`] when the device was opened with `TIMESTAMP_QUERY`
//!   ([`Context::new_profiled`](crate::Context::new_profiled) asks for it where the adapter has
//!   it): every dispatch is its own compute pass, so the pass's begin/end `timestamp_writes`
//!   bracket exactly one kernel. Submission order and batching are unchanged; the queries are
//!   resolved and read back at each submit.
//! - [`ProfileClock::CpuWallClock`] otherwise: each dispatch is submitted alone and waited for,
//!   and the host's wall-clock time of that submit + wait is recorded. It includes the per-submit
//!   overhead, and the step runs serialised, so it only ranks kernels.
//!
//! Buffer copies and clears (uploads, `zeros`) are not dispatches and are not timed.

/// How the kernel times of a profile were measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProfileClock {
    /// GPU timestamps written at the begin and end of each dispatch's compute pass.
    GpuTimestamps,
    /// Host wall-clock time of submitting one dispatch alone and waiting for it.
    CpuWallClock,
}

/// One timed dispatch: the kernel's id (`KernelSpec::id`) and its time in nanoseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelTime {
    pub kernel: &'static str,
    pub nanos: f64,
}

/// Timestamp queries per set: wgpu's maximum, two per dispatch.
const QUERIES: u32 = wgpu::QUERY_SET_MAX_QUERIES;

/// GPU-side objects of the timestamp clock.
pub(crate) struct Timestamps {
    query_set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    readback: wgpu::Buffer,
    period_ns: f64,
}

pub(crate) struct Profiler {
    pub(crate) timestamps: Option<Timestamps>,
    /// Kernels of the open encoder whose timestamps are not read yet, in query order.
    pending: Vec<&'static str>,
    pub(crate) records: Vec<KernelTime>,
    /// The first error met while reading timestamps (reported by `end_profile`).
    pub(crate) error: Option<String>,
}

impl Profiler {
    pub(crate) fn new(device: &wgpu::Device, queue: &wgpu::Queue) -> Profiler {
        let timestamps = device.features().contains(wgpu::Features::TIMESTAMP_QUERY).then(|| {
            let bytes = QUERIES as u64 * wgpu::QUERY_SIZE as u64;
            Timestamps {
                query_set: device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("oddity profile"),
                    ty: wgpu::QueryType::Timestamp,
                    count: QUERIES,
                }),
                resolve: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("oddity profile resolve"),
                    size: bytes,
                    usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                }),
                readback: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("oddity profile readback"),
                    size: bytes,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
                period_ns: queue.get_timestamp_period() as f64,
            }
        });
        Profiler { timestamps, pending: Vec::new(), records: Vec::new(), error: None }
    }

    pub(crate) fn clock(&self) -> ProfileClock {
        if self.timestamps.is_some() {
            ProfileClock::GpuTimestamps
        } else {
            ProfileClock::CpuWallClock
        }
    }

    /// True when the query set cannot take another dispatch before the next submit.
    pub(crate) fn full(&self) -> bool {
        self.timestamps.is_some() && self.pending.len() as u32 * 2 + 2 > QUERIES
    }

    /// The pass timestamp writes of the next dispatch of `kernel` (timestamp clock only).
    pub(crate) fn pass_writes(&mut self, kernel: &'static str) -> Option<wgpu::ComputePassTimestampWrites<'_>> {
        let ts = self.timestamps.as_ref()?;
        let i = self.pending.len() as u32 * 2;
        self.pending.push(kernel);
        Some(wgpu::ComputePassTimestampWrites {
            query_set: &ts.query_set,
            beginning_of_pass_write_index: Some(i),
            end_of_pass_write_index: Some(i + 1),
        })
    }

    /// Records the resolve and copy of this submission's queries at the end of `encoder`.
    pub(crate) fn resolve(&self, encoder: &mut wgpu::CommandEncoder) {
        if let Some(ts) = &self.timestamps {
            let n = self.pending.len() as u32 * 2;
            if n > 0 {
                encoder.resolve_query_set(&ts.query_set, 0..n, &ts.resolve, 0);
                encoder.copy_buffer_to_buffer(&ts.resolve, 0, &ts.readback, 0, n as u64 * wgpu::QUERY_SIZE as u64);
            }
        }
    }

    /// After the submit that carried [`Profiler::resolve`]: waits, reads the timestamps and
    /// appends one record per dispatch.
    pub(crate) fn collect(&mut self, device: &wgpu::Device) {
        let kernels = std::mem::take(&mut self.pending);
        let Some(ts) = &self.timestamps else { return };
        if kernels.is_empty() {
            return;
        }
        let bytes = kernels.len() as u64 * 2 * wgpu::QUERY_SIZE as u64;
        let (tx, rx) = std::sync::mpsc::channel();
        ts.readback.slice(..bytes).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        let read = device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| format!("waiting for timestamps: {e}"))
            .and_then(|_| rx.recv().map_err(|_| "timestamp readback callback never ran".to_string()))
            .and_then(|r| r.map_err(|e| format!("mapping timestamps: {e}")));
        if let Err(e) = read {
            self.error.get_or_insert(e);
            return;
        }
        {
            let view = match ts.readback.slice(..bytes).get_mapped_range() {
                Ok(v) => v,
                Err(e) => {
                    self.error.get_or_insert(format!("reading timestamps: {e:?}"));
                    return;
                }
            };
            let ticks: &[u64] = bytemuck::cast_slice(&view);
            for (k, pair) in kernels.iter().zip(ticks.chunks_exact(2)) {
                // Begin and end come from the same queue's clock; a reversed pair (possible
                // on some drivers for a very short pass) counts as zero.
                let delta = pair[1].saturating_sub(pair[0]);
                self.records.push(KernelTime { kernel: k, nanos: delta as f64 * ts.period_ns });
            }
        }
        ts.readback.unmap();
    }
}

/// Sums a profile by kernel: (kernel, dispatches, total nanoseconds), slowest first.
pub fn by_kernel(records: &[KernelTime]) -> Vec<(&'static str, usize, f64)> {
    let mut rows: Vec<(&'static str, usize, f64)> = Vec::new();
    for r in records {
        match rows.iter_mut().find(|row| row.0 == r.kernel) {
            Some(row) => {
                row.1 += 1;
                row.2 += r.nanos;
            }
            None => rows.push((r.kernel, 1, r.nanos)),
        }
    }
    rows.sort_by(|a, b| b.2.total_cmp(&a.2));
    rows
}

#[cfg(test)]
mod tests {
    use super::{by_kernel, KernelTime};

    #[test]
    fn by_kernel_sums_and_sorts() {
        let r = |kernel, nanos| KernelTime { kernel, nanos };
        let rows = by_kernel(&[r("a", 1.0), r("b", 5.0), r("a", 2.0)]);
        assert_eq!(rows, vec![("b", 1, 5.0), ("a", 2, 3.0)]);
    }
}
