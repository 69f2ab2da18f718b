//! What a kernel is to the context: an id (the pipeline-cache key), its WGSL, an entry point and
//! the access of each storage binding. Binding 0 is always the op's params struct (a uniform
//! with a dynamic offset into the per-submission arena); storage buffers follow from binding 1.

/// How a kernel uses one storage binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
}

pub use Access::{Read as R, ReadWrite as RW};

/// A compute kernel: built once per context on first use, cached by `id`.
pub struct KernelSpec {
    pub id: &'static str,
    pub source: &'static str,
    pub entry: &'static str,
    pub bindings: &'static [Access],
}

/// Threads per workgroup of the one-dimensional kernels (a multiple of every SIMD width we meet).
pub const WG_1D: u32 = 64;

/// Workgroups for `threads` threads of `wg` each, folded into y when x would pass 65535
/// (the WebGPU per-dimension limit). Shaders rebuild the flat index as
/// `(wid.y * nwg.x + wid.x) * WG + local_index` and skip indices past the end.
pub fn grid_1d(threads: usize, wg: u32) -> [u32; 3] {
    let groups = (threads as u64).div_ceil(wg as u64);
    if groups <= 65535 {
        [groups as u32, 1, 1]
    } else {
        let y = groups.div_ceil(65535);
        [groups.div_ceil(y) as u32, y as u32, 1]
    }
}

#[cfg(test)]
mod tests {
    use super::grid_1d;

    #[test]
    fn grid_covers_every_thread_within_limits() {
        for n in [0usize, 1, 63, 64, 65, 65535 * 64, 65535 * 64 + 1, 10_000_000, 300_000_000] {
            let [x, y, z] = grid_1d(n, 64);
            assert!(x <= 65535 && y <= 65535 && z == 1);
            assert!((x as u64) * (y as u64) * 64 >= n as u64, "{n}: {x}x{y}");
        }
    }
}
