// FCDD's heatmap upsampling: a transposed convolution of a one-channel map [n, 1, h, w] with a
// fixed separable Gaussian kernel g (k taps per axis), stride s, cropped to [n, 1, oh, ow]:
//   y[oy, ox] = sum_{iy, ix} x[iy, ix] * g[oy + off - iy * s] * g[ox + off - ix * s]
// with taps outside [0, k) zero; `off` is the crop offset (FCDD: (k - 1) / 2 - receptive shift).
// Its backward is the matching strided correlation. CPU reference: kernels/src/gaussian_upsample.rs.

struct Params {
    n: u32,      // threads: output elements (forward) or input elements (backward)
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    k: u32,
    stride: u32,
    offset: i32,
}

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 64u;

fn flat(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid;
}

// floor(a / b) for b > 0, dividing only non-negative numbers: signed `/` and `%` of negative
// operands came out wrong on the GL backend (llvmpipe).
fn floor_div(a: i32, b: i32) -> i32 {
    if (a >= 0) {
        return a / b;
    }
    return -((-a + b - 1) / b);
}

// Inputs i with 0 <= t - i * s < k and 0 <= i < len, as [lo, hi).
fn in_range(t: i32, len: u32) -> vec2<i32> {
    let s = i32(p.stride);
    let lo = max(floor_div(t - i32(p.k), s) + 1, 0);
    let hi = min(floor_div(t, s) + 1, i32(len));
    return vec2<i32>(lo, max(lo, hi));
}

@group(0) @binding(1) var<storage, read> fw_x: array<f32>;
@group(0) @binding(2) var<storage, read> fw_g: array<f32>;
@group(0) @binding(3) var<storage, read_write> fw_y: array<f32>;

@compute @workgroup_size(64)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let ox = i % p.ow;
    let oy = (i / p.ow) % p.oh;
    let base = (i / (p.ow * p.oh)) * p.h * p.w;
    let ty = i32(oy) + p.offset;
    let tx = i32(ox) + p.offset;
    let ry = in_range(ty, p.h);
    let rx = in_range(tx, p.w);
    let s = i32(p.stride);
    var acc = 0.0;
    for (var iy = ry.x; iy < ry.y; iy = iy + 1) {
        var row = 0.0;
        for (var ix = rx.x; ix < rx.y; ix = ix + 1) {
            row = row + fw_g[tx - ix * s] * fw_x[base + u32(iy) * p.w + u32(ix)];
        }
        acc = acc + fw_g[ty - iy * s] * row;
    }
    fw_y[i] = acc;
}

@group(0) @binding(1) var<storage, read> bw_gy: array<f32>;
@group(0) @binding(2) var<storage, read> bw_g: array<f32>;
@group(0) @binding(3) var<storage, read_write> bw_gx: array<f32>;

// gx[iy, ix] = sum over the outputs its kernel footprint covers: oy in [iy*s - off, iy*s - off + k).
@compute @workgroup_size(64)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let ix = i % p.w;
    let iy = (i / p.w) % p.h;
    let obase = (i / (p.w * p.h)) * p.oh * p.ow;
    let y0 = i32(iy * p.stride) - p.offset;
    let x0 = i32(ix * p.stride) - p.offset;
    let ys = max(y0, 0);
    let ye = min(y0 + i32(p.k), i32(p.oh));
    let xs = max(x0, 0);
    let xe = min(x0 + i32(p.k), i32(p.ow));
    var acc = 0.0;
    for (var oy = ys; oy < ye; oy = oy + 1) {
        var row = 0.0;
        for (var ox = xs; ox < xe; ox = ox + 1) {
            row = row + bw_g[ox - x0] * bw_gy[obase + u32(oy) * p.ow + u32(ox)];
        }
        acc = acc + bw_g[oy - y0] * row;
    }
    bw_gx[i] = acc;
}
