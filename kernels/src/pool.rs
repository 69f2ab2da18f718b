//! Buffer pool: freed storage buffers are kept by size class and handed out again, so a training
//! step that repeats its shapes allocates nothing after the first step and its bind groups (keyed
//! by buffer id) are reused.

use std::collections::HashMap;

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

#[derive(Default)]
pub(crate) struct BufferPool {
    free: HashMap<u64, Vec<RawBuffer>>,
    /// Freed while the open encoder may still use them; recycled after the next submit.
    pending: Vec<RawBuffer>,
    next_id: u64,
    pub(crate) allocated_bytes: u64,
}

/// Rounds a request up to a size class: quarter steps between powers of two (at most 25% waste).
pub(crate) fn size_class(bytes: u64) -> u64 {
    let bytes = bytes.max(256);
    let pow = 63 - (bytes - 1).leading_zeros() as u64; // floor(log2(bytes - 1))
    let step = (1u64 << pow) / 4;
    bytes.div_ceil(step) * step
}

impl BufferPool {
    pub(crate) fn take(&mut self, device: &wgpu::Device, bytes: u64) -> RawBuffer {
        // Never round past the device's largest buffer: a tensor within the binding limit must
        // not fail (or panic in wgpu) because its size class is larger.
        let class = size_class(bytes).min(device.limits().max_buffer_size).max(bytes);
        if let Some(raw) = self.free.get_mut(&class).and_then(|v| v.pop()) {
            return raw;
        }
        self.next_id += 1;
        self.allocated_bytes += class;
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

    pub(crate) fn release(&mut self, raw: RawBuffer) {
        self.pending.push(raw);
    }

    pub(crate) fn recycle_pending(&mut self) {
        for raw in self.pending.drain(..) {
            self.free.entry(raw.class).or_default().push(raw);
        }
    }

    /// Buffers created so far (ids are handed out 1, 2, ... one per creation).
    pub(crate) fn created(&self) -> u64 {
        self.next_id
    }

    /// Number of buffers waiting for reuse (for tests).
    #[cfg(test)]
    pub(crate) fn free_count(&self) -> usize {
        self.free.values().map(Vec::len).sum()
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
