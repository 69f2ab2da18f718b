// Channel-axis (dim 1) copies between a "small" tensor [n, c_small, rest...] and a "big" one
// [n, c_big, rest...] at a channel offset: `insert` writes small into big (concat, and the
// backward of slice), `extract` reads small out of big (slice, and the backward of concat).
// Elements are copied as u32 bits, so f32 and u32 tensors both work.
// CPU reference: kernels/src/concat.rs.

struct Params {
    n: u32,            // threads: elements of the small tensor
    small_plane: u32,  // c_small * rest: elements of one batch item of the small tensor
    big_plane: u32,    // c_big * rest
    offset: u32,       // channel offset * rest
}

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 64u;

fn flat(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid;
}

// Index into the big tensor of the small tensor's element i.
fn big_index(i: u32) -> u32 {
    return (i / p.small_plane) * p.big_plane + p.offset + i % p.small_plane;
}

@group(0) @binding(1) var<storage, read> in_small: array<u32>;
@group(0) @binding(2) var<storage, read_write> in_big: array<u32>;

@compute @workgroup_size(64)
fn insert(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    in_big[big_index(i)] = in_small[i];
}

@group(0) @binding(1) var<storage, read> ex_big: array<u32>;
@group(0) @binding(2) var<storage, read_write> ex_small: array<u32>;

@compute @workgroup_size(64)
fn extract(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    ex_small[i] = ex_big[big_index(i)];
}
