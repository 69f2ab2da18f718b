//! Buffer pool: freed storage buffers are kept by size class and handed out again, so a training
//! step that repeats its shapes allocates nothing after the first step and its bind groups (keyed
//! by buffer id) are reused.
//!
//! A buffer freed while the open encoder may still read it is reused only by commands recorded
//! later in that encoder ([`FirstWrite::Dispatch`]); queue uploads wait for the next submit. So
//! what the pool holds tracks the peak of live tensors within a submission, and a caller that
//! records many steps per submission (e.g. `fit` between loss readbacks) should submit each
//! step, or every step's freed buffers stay idle until then.

use std::collections::BTreeMap;

/// Usage of every tensor buffer: bound as storage, copied to and from.
pub(crate) const TENSOR_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

/// A device buffer with a stable id; the id keys bind-group caches.
pub struct RawBuffer {
    pub(crate) id: u64,
    pub(crate) buffer: wgpu::Buffer,
    pub(crate) class: u64,
}

/// How a new tensor's buffer is first written; it decides which freed buffers it may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FirstWrite {
    /// By a command recorded in the open encoder (dispatch, clear, copy): ordered after every
    /// command recorded before it, and wgpu puts a barrier between an earlier read and this
    /// write, so a buffer freed in the same encoder may be reused.
    Dispatch,
    /// By `queue.write_buffer`, which lands before the whole next command buffer: it would
    /// overwrite data that commands recorded earlier in the open encoder still read, so only a
    /// buffer idle since the last submit may be used.
    Upload,
}

/// Freed buffers by size class: idle since the last submit (`free`), or freed while the open
/// encoder was recording (`pending`; the encoder may still read them).
#[derive(Default)]
pub(crate) struct BufferPool {
    free: BTreeMap<u64, Shelf>,
    /// Freed while the open encoder may still use them: outputs of later commands of the same
    /// encoder may take them; everything else waits for the next submit.
    pending: BTreeMap<u64, Shelf>,
    next_id: u64,
    /// Bytes of every buffer created (the pool never destroys one).
    held_bytes: u64,
    /// Bytes of the buffers live tensors hold now, and the most since the last peak reset.
    live_bytes: u64,
    peak_live_bytes: u64,
}

/// What the buffer pool holds on the device (see [`crate::Context::pool_stats`]). Sizes are of
/// whole pooled buffers (size classes), not of the tensors in them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Buffers created and still held (by tensors or idle in the pool).
    pub buffers: u64,
    /// Their total size: the device memory the pool holds.
    pub held_bytes: u64,
    /// Bytes of the buffers held by live tensors.
    pub live_bytes: u64,
    /// The most `live_bytes` has been since the context was made or the last
    /// [`crate::Context::reset_pool_peak`].
    pub peak_live_bytes: u64,
}

/// Rounds a request up to a size class: quarter steps between powers of two (at most 25% waste).
pub(crate) fn size_class(bytes: u64) -> u64 {
    let bytes = bytes.max(256);
    let pow = 63 - (bytes - 1).leading_zeros() as u64; // floor(log2(bytes - 1))
    let step = (1u64 << pow) / 4;
    bytes.div_ceil(step) * step
}

/// A freed buffer may serve a request whose size class is up to this factor smaller.
const OVERSIZE: u64 = 2;

/// The buffer of the smallest class in `lo..=hi` that has one.
fn pop_fit(lists: &mut BTreeMap<u64, Shelf>, lo: u64, hi: u64) -> Option<RawBuffer> {
    lists.range_mut(lo..=hi).find_map(|(_, shelf)| shelf.pop_first().map(|(_, raw)| raw))
}

/// Freed buffers of one size class by id. The lowest id goes out first, so a step that frees and
/// takes the same sizes as the step before gets the same buffers whatever order they were freed
/// in, and its cached bind groups (keyed by buffer id) are hits.
type Shelf = BTreeMap<u64, RawBuffer>;

impl BufferPool {
    pub(crate) fn take(&mut self, device: &wgpu::Device, bytes: u64, first: FirstWrite) -> RawBuffer {
        // Never round past the device's largest buffer: a tensor within the binding limit must
        // not fail (or panic in wgpu) because its size class is larger.
        let class = size_class(bytes).min(device.limits().max_buffer_size).max(bytes);
        // A recorded write prefers a buffer freed in this encoder, leaving idle ones to uploads;
        // the exact class first, then the smallest larger one within `OVERSIZE` (an idle buffer
        // of another class would otherwise sit unused while a new one is made).
        let limit = class.saturating_mul(OVERSIZE);
        let reused = match first {
            FirstWrite::Dispatch => pop_fit(&mut self.pending, class, class)
                .or_else(|| pop_fit(&mut self.free, class, class))
                .or_else(|| pop_fit(&mut self.pending, class, limit))
                .or_else(|| pop_fit(&mut self.free, class, limit)),
            FirstWrite::Upload => pop_fit(&mut self.free, class, limit),
        };
        if let Some(raw) = reused {
            self.mark_live(raw.class);
            return raw;
        }
        self.next_id += 1;
        self.held_bytes += class;
        self.mark_live(class);
        RawBuffer {
            id: self.next_id,
            buffer: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("oddity tensor"),
                size: class,
                usage: TENSOR_USAGE,
                mapped_at_creation: false,
            }),
            class,
        }
    }

    /// Takes back a buffer no tensor holds any more. `encoder_open`: commands recorded but not
    /// yet submitted may still use it. With no open encoder, all its uses are submitted (or
    /// queued writes), which anything later is ordered after, so it is idle at once.
    pub(crate) fn release(&mut self, raw: RawBuffer, encoder_open: bool) {
        self.live_bytes -= raw.class;
        let list = if encoder_open { &mut self.pending } else { &mut self.free };
        list.entry(raw.class).or_default().insert(raw.id, raw);
    }

    fn mark_live(&mut self, class: u64) {
        self.live_bytes += class;
        self.peak_live_bytes = self.peak_live_bytes.max(self.live_bytes);
    }

    pub(crate) fn stats(&self) -> PoolStats {
        PoolStats {
            buffers: self.next_id,
            held_bytes: self.held_bytes,
            live_bytes: self.live_bytes,
            peak_live_bytes: self.peak_live_bytes,
        }
    }

    pub(crate) fn reset_peak(&mut self) {
        self.peak_live_bytes = self.live_bytes;
    }

    pub(crate) fn recycle_pending(&mut self) {
        for (class, mut list) in std::mem::take(&mut self.pending) {
            self.free.entry(class).or_default().append(&mut list);
        }
    }

    /// Buffers created so far (ids are handed out 1, 2, ... one per creation).
    pub(crate) fn created(&self) -> u64 {
        self.next_id
    }

    /// Number of buffers waiting for reuse (for tests).
    #[cfg(test)]
    pub(crate) fn free_count(&self) -> usize {
        self.free.values().map(BTreeMap::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::size_class;

    #[test]
    fn size_classes_cover_request_with_bounded_waste() {
        for bytes in [1u64, 255, 256, 257, 1000, 4096, 4097, 100_000, 1 << 27, (1 << 27) + 1] {
            let c = size_class(bytes);
            assert!(c >= bytes, "{bytes} -> {c}");
            assert!(c <= bytes.max(256) + bytes.max(256) / 2, "{bytes} -> {c} wastes too much");
            assert_eq!(size_class(c), c, "class {c} must map to itself");
        }
    }
}
