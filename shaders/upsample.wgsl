// Bilinear resampling of [n, c, h, w] to [n, c, oh, ow] with align_corners = false (PyTorch's
// F.interpolate(mode="bilinear")): source coordinate src = scale * (dst + 0.5) - 0.5, clamped
// at 0; i0 = floor(src), i1 = min(i0 + 1, in - 1), weights (1 - l, l) with l = src - i0.
// `scale` is in / out for a given size, or 1 / scale_factor for a given factor.
// The backward gathers, one thread per input pixel, from the output rows and columns whose source
// taps include it: no atomics, deterministic, any scale (up or down).
// CPU reference: kernels/src/upsample.rs.

struct Params {
    n: u32,      // threads: output elements (forward) or input elements (backward)
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    scale_h: f32,
    scale_w: f32,
    pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 64u;

fn flat(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid;
}

struct Taps {
    i0: u32,
    i1: u32,
    l0: f32,
    l1: f32,
}

fn taps(dst: u32, scale: f32, len: u32) -> Taps {
    let src = max(scale * (f32(dst) + 0.5) - 0.5, 0.0);
    let i0 = min(u32(src), len - 1u);
    let l1 = src - f32(i0);
    var t: Taps;
    t.i0 = i0;
    t.i1 = min(i0 + 1u, len - 1u);
    t.l0 = 1.0 - l1;
    t.l1 = l1;
    return t;
}

@group(0) @binding(1) var<storage, read> fw_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> fw_y: array<f32>;

@compute @workgroup_size(64)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let ox = i % p.ow;
    let oy = (i / p.ow) % p.oh;
    let base = (i / (p.ow * p.oh)) * p.h * p.w;
    let ty = taps(oy, p.scale_h, p.h);
    let tx = taps(ox, p.scale_w, p.w);
    let r0 = base + ty.i0 * p.w;
    let r1 = base + ty.i1 * p.w;
    fw_y[i] = ty.l0 * (tx.l0 * fw_x[r0 + tx.i0] + tx.l1 * fw_x[r0 + tx.i1])
            + ty.l1 * (tx.l0 * fw_x[r1 + tx.i0] + tx.l1 * fw_x[r1 + tx.i1]);
}

// Weight with which output coordinate dst reads input coordinate c (both taps may be c at the edge).
fn weight(dst: u32, c: u32, scale: f32, len: u32) -> f32 {
    let t = taps(dst, scale, len);
    return select(0.0, t.l0, t.i0 == c) + select(0.0, t.l1, t.i1 == c);
}

// Output coordinates [lo, hi) that can read input coordinate c: src in [c - 1, c + 1), widened by
// one on each side against rounding; the exact test is `weight`.
fn out_range(c: u32, scale: f32, count: u32) -> vec2<u32> {
    let lo = i32(floor((f32(c) - 0.5) / scale - 0.5)) - 1;
    let hi = i32(ceil((f32(c) + 1.5) / scale - 0.5)) + 2;
    return vec2<u32>(u32(clamp(lo, 0, i32(count))), u32(clamp(hi, 0, i32(count))));
}

@group(0) @binding(1) var<storage, read> bw_gy: array<f32>;
@group(0) @binding(2) var<storage, read_write> bw_gx: array<f32>;

@compute @workgroup_size(64)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let ix = i % p.w;
    let iy = (i / p.w) % p.h;
    let obase = (i / (p.w * p.h)) * p.oh * p.ow;
    let ry = out_range(iy, p.scale_h, p.oh);
    let rx = out_range(ix, p.scale_w, p.ow);
    var acc = 0.0;
    for (var oy = ry.x; oy < ry.y; oy = oy + 1u) {
        let wy = weight(oy, iy, p.scale_h, p.h);
        if (wy == 0.0) { continue; }
        var row = 0.0;
        for (var ox = rx.x; ox < rx.y; ox = ox + 1u) {
            row = row + weight(ox, ix, p.scale_w, p.w) * bw_gy[obase + oy * p.ow + ox];
        }
        acc = acc + wy * row;
    }
    bw_gx[i] = acc;
}
