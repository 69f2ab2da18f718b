// 2-D convolution kernels (NCHW), shared by conv2d and conv_transpose2d.
//
// Three contractions cover both ops and their backwards:
//   direct:     y[n,m,oh,ow] = sum_{c,ky,kx} w[m,c,ky,kx] * x[n,c, oh*s - p + ky*d, ow*s - p + kx*d]
//               (conv2d forward; conv_transpose2d backward-data)
//   transposed: y[n,m,oh,ow] = sum_{c,ky,kx: (oh + p - ky*d) % s == 0} w[c,m,ky,kx] * x[n,c, (oh + p - ky*d)/s, ..]
//               (conv2d backward-data; conv_transpose2d forward)
//   weight:     g[m,c,ky,kx] = sum_{n,oh,ow} gy[n,m,oh,ow] * x[n,c, oh*s - p + ky*d, ow*s - p + kx*d]
// Each is an implicit GEMM (M = out channels, N = batch*pixels, K = in_c*kh*kw; for the weight
// gradient N = the taps and K = batch*pixels). "x" is always the source tensor [n, cx, hx, wx] and
// "y" the destination [n, cy, hy, wy] of the direct/transposed map.
//
// Two variants: `*_reg` for CPU adapters (lavapipe: each invocation keeps a small register block, no
// workgroup memory or barriers, reading a zero-padded copy of x so the inner loop has no bounds
// checks, and weights packed so the 4 out-channels of a tap arrive in one vec4 load: Mesa 22's
// lavapipe issues loads inside loops lane by lane, so load instructions per FMA set the speed)
// and `gemm_tiled` for GPUs
// (64 x 64 workgroup-memory tiles, 4 x 4 per invocation, bounds checked while loading tiles).

struct Params {
    n: u32, cx: u32, hx: u32, wx: u32,
    cy: u32, hy: u32, wy: u32, mode: u32,
    kh: u32, kw: u32, sh: u32, sw: u32,
    ph: u32, pw: u32, dh: u32, dw: u32,
    has_bias: u32, splits: u32, chunk: u32, len: u32,
    // pad: offset of the source inside the padded copy, and the unpadded source size.
    pad_top: u32, pad_left: u32, src_h: u32, src_w: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

fn flat(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 64u + lid;
}

// ---------------------------------------------------------------------------------------------
// Zero-padded copy: dst[n, c, hx, wx] (padded size) from src[n, c, src_h, src_w] at (pad_top, pad_left).

@group(0) @binding(1) var<storage, read> pd_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> pd_dst: array<f32>;

@compute @workgroup_size(64)
fn pad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.len) { return; }
    let col = i % p.wx;
    let row = (i / p.wx) % p.hx;
    let plane = i / (p.wx * p.hx);
    let r = i32(row) - i32(p.pad_top);
    let c = i32(col) - i32(p.pad_left);
    let inside = r >= 0 && r < i32(p.src_h) && c >= 0 && c < i32(p.src_w);
    let j = select(0u, (plane * p.src_h + u32(r)) * p.src_w + u32(c), inside);
    pd_dst[i] = select(0.0, pd_src[j], inside);
}

// ---------------------------------------------------------------------------------------------
// Crop: dst[r, col] = src[r, col] for rows r of width wy taken from rows of width wx >= wy.

@group(0) @binding(1) var<storage, read> cr_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> cr_dst: array<f32>;

@compute @workgroup_size(64)
fn crop(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.len) { return; }
    cr_dst[i] = cr_src[(i / p.wy) * p.wx + i % p.wy];
}

// ---------------------------------------------------------------------------------------------
// Flipped, transposed weights: dst[c, m, ky, kx] = src[m, c, kh-1-ky, kw-1-kx] for src [cy, cx, kh, kw].
// A stride-1 conv's backward-data is the direct conv of gy with these (see conv2d_backward_data).

@group(0) @binding(1) var<storage, read> fw_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> fw_dst: array<f32>;

@compute @workgroup_size(64)
fn flip_weights(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.len) { return; }
    let kk = p.kh * p.kw;
    let kx = i % p.kw;
    let ky = (i / p.kw) % p.kh;
    let m = (i / kk) % p.cy;
    let c = i / (kk * p.cy);
    fw_dst[i] = fw_src[((m * p.cx + c) * p.kh + (p.kh - 1u - ky)) * p.kw + (p.kw - 1u - kx)];
}

// ---------------------------------------------------------------------------------------------
// Weights packed for the register-blocked direct conv: wp[mb, k] = (w[4mb, k], .., w[4mb + 3, k])
// (k = (c, ky, kx); channels past cy are zero), so the four weights of a tap arrive in one vec4
// load whose address is uniform across the workgroup. w: [cy, ksize]; wp: [ceil(cy / 4), ksize, 4].

@group(0) @binding(1) var<storage, read> wk_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> wk_dst: array<f32>;

@compute @workgroup_size(64)
fn pack_weights(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.len) { return; }
    let ksize = p.cx * p.kh * p.kw;
    let k = (i / 4u) % ksize;
    let m = (i / (4u * ksize)) * 4u + i % 4u;
    let ok = m < p.cy;
    wk_dst[i] = select(0.0, wk_src[select(0u, m * ksize + k, ok)], ok);
}

// ---------------------------------------------------------------------------------------------
// Register-blocked direct conv (CPU adapters). Invocation: 4 output channels (m0 from wid.z) x 16
// consecutive output columns of one output row. On lavapipe (Mesa 22) every storage load inside
// control flow is a per-lane loop of scalar loads, even at a uniform address, and a vec4 load
// shares that loop's overhead across its 4 components; so the block is wide in columns (each
// weight feeds 16 multiply-adds) and the 4 weights of a tap come as one vec4 (packed weights). x is the padded copy
// (hx, wx padded; pad_top = ph and pad_left = pw), so tap (ky, kx) of column ow reads
// x[.., oh*sh + ky*dh, ow*sw + kx*dw] with no bounds check.

@group(0) @binding(1) var<storage, read> dr_x: array<f32>;
@group(0) @binding(2) var<storage, read> dr_w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> dr_b: array<f32>;
@group(0) @binding(4) var<storage, read_write> dr_y: array<f32>;

fn dr_store(m: u32, base: u32, valid: u32, qa: vec4<f32>, qb: vec4<f32>, qc: vec4<f32>, qd: vec4<f32>) {
    if (m >= p.cy) { return; }
    var bias = 0.0;
    if (p.has_bias != 0u) { bias = dr_b[m]; }
    for (var j = 0u; j < 4u; j = j + 1u) {
        if (j < valid) { dr_y[base + j] = qa[j] + bias; }
        if (j + 4u < valid) { dr_y[base + j + 4u] = qb[j] + bias; }
        if (j + 8u < valid) { dr_y[base + j + 8u] = qc[j] + bias; }
        if (j + 12u < valid) { dr_y[base + j + 12u] = qd[j] + bias; }
    }
}

@compute @workgroup_size(64)
fn direct_reg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let tiles_w = (p.wy + 15u) / 16u;
    let t = flat(wid, nwg, lid);
    if (t >= p.n * p.hy * tiles_w) { return; }
    let ow0 = (t % tiles_w) * 16u;
    let oh = (t / tiles_w) % p.hy;
    let n = t / (tiles_w * p.hy);
    let m0 = wid.z * 4u;
    let ksize = p.cx * p.kh * p.kw;
    let hw = p.hx * p.wx;
    let s = p.sw;
    let rstep = p.dh * p.wx;
    // Column j of tap kx reads position j*s + kx*d. When d == s (every stride-1 conv without
    // dilation) tap kx + 1 sees the window of tap kx shifted by one column, so the registers
    // slide and one new value is loaded per tap. The last step reads one column past the window;
    // the padded copy is wide enough for it.
    let slide = s == p.dw;
    var xc0 = n * p.cx * hw + oh * p.sh * p.wx + ow0 * s;
    var a0 = vec4<f32>(0.0); var b0 = vec4<f32>(0.0); var c0 = vec4<f32>(0.0); var d0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0); var b1 = vec4<f32>(0.0); var c1 = vec4<f32>(0.0); var d1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0); var b2 = vec4<f32>(0.0); var c2 = vec4<f32>(0.0); var d2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0); var b3 = vec4<f32>(0.0); var c3 = vec4<f32>(0.0); var d3 = vec4<f32>(0.0);
    var k = wid.z * ksize;
    for (var c = 0u; c < p.cx; c = c + 1u) {
        var row = xc0;
        for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
            var i = row;
            var xa = vec4<f32>(dr_x[i], dr_x[i + 1u * s], dr_x[i + 2u * s], dr_x[i + 3u * s]);
            var xb = vec4<f32>(dr_x[i + 4u * s], dr_x[i + 5u * s], dr_x[i + 6u * s], dr_x[i + 7u * s]);
            var xc = vec4<f32>(dr_x[i + 8u * s], dr_x[i + 9u * s], dr_x[i + 10u * s], dr_x[i + 11u * s]);
            var xd = vec4<f32>(dr_x[i + 12u * s], dr_x[i + 13u * s], dr_x[i + 14u * s], dr_x[i + 15u * s]);
            var next = i + 16u * s;
            for (var kx = 0u; kx < p.kw; kx = kx + 1u) {
                let wv = dr_w[k];
                let v0 = wv.x;
                let v1 = wv.y;
                let v2 = wv.z;
                let v3 = wv.w;
                a0 = fma(vec4<f32>(v0), xa, a0); b0 = fma(vec4<f32>(v0), xb, b0); c0 = fma(vec4<f32>(v0), xc, c0); d0 = fma(vec4<f32>(v0), xd, d0);
                a1 = fma(vec4<f32>(v1), xa, a1); b1 = fma(vec4<f32>(v1), xb, b1); c1 = fma(vec4<f32>(v1), xc, c1); d1 = fma(vec4<f32>(v1), xd, d1);
                a2 = fma(vec4<f32>(v2), xa, a2); b2 = fma(vec4<f32>(v2), xb, b2); c2 = fma(vec4<f32>(v2), xc, c2); d2 = fma(vec4<f32>(v2), xd, d2);
                a3 = fma(vec4<f32>(v3), xa, a3); b3 = fma(vec4<f32>(v3), xb, b3); c3 = fma(vec4<f32>(v3), xc, c3); d3 = fma(vec4<f32>(v3), xd, d3);
                k = k + 1u;
                if (slide) {
                    xa = vec4<f32>(xa.yzw, xb.x);
                    xb = vec4<f32>(xb.yzw, xc.x);
                    xc = vec4<f32>(xc.yzw, xd.x);
                    xd = vec4<f32>(xd.yzw, dr_x[next]);
                    next = next + s;
                } else {
                    i = i + p.dw;
                    xa = vec4<f32>(dr_x[i], dr_x[i + 1u * s], dr_x[i + 2u * s], dr_x[i + 3u * s]);
                    xb = vec4<f32>(dr_x[i + 4u * s], dr_x[i + 5u * s], dr_x[i + 6u * s], dr_x[i + 7u * s]);
                    xc = vec4<f32>(dr_x[i + 8u * s], dr_x[i + 9u * s], dr_x[i + 10u * s], dr_x[i + 11u * s]);
                    xd = vec4<f32>(dr_x[i + 12u * s], dr_x[i + 13u * s], dr_x[i + 14u * s], dr_x[i + 15u * s]);
                }
            }
            row = row + rstep;
        }
        xc0 = xc0 + hw;
    }
    let ohw = p.hy * p.wy;
    let valid = min(16u, p.wy - ow0);
    let base = n * p.cy * ohw + oh * p.wy + ow0;
    dr_store(m0, base + m0 * ohw, valid, a0, b0, c0, d0);
    dr_store(m0 + 1u, base + (m0 + 1u) * ohw, valid, a1, b1, c1, d1);
    dr_store(m0 + 2u, base + (m0 + 2u) * ohw, valid, a2, b2, c2, d2);
    dr_store(m0 + 3u, base + (m0 + 3u) * ohw, valid, a3, b3, c3, d3);
}

// ---------------------------------------------------------------------------------------------
// Stride-1, dilation-1 (in width) variant of direct_reg: the same 4 x 16 block, but x is read as
// vec4s (the padded copy's width is a multiple of 4 and ow0 is a multiple of 16, so every row
// segment is vec4-aligned). The 16-column window slides one column per tap, taking the next value
// from `e`, the following 4 columns, reloaded every 4 taps: 5 + (kw - 1)/4 vec4 loads per row of
// taps instead of 16 + kw scalar loads. Its output row width wy is a multiple of 4 (the host pads
// it and crops afterwards when needed) so the results leave as vec4 stores too.

@group(0) @binding(1) var<storage, read> d1_x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> d1_w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> d1_b: array<f32>;
@group(0) @binding(4) var<storage, read_write> d1_y: array<vec4<f32>>;

fn d1_store(m: u32, base: u32, valid: u32, qa: vec4<f32>, qb: vec4<f32>, qc: vec4<f32>, qd: vec4<f32>) {
    if (m >= p.cy) { return; }
    var bias = 0.0;
    if (p.has_bias != 0u) { bias = d1_b[m]; }
    // valid is a multiple of 4 (wy is), base a multiple of 4: whole vec4 stores.
    let i = base / 4u;
    d1_y[i] = qa + bias;
    if (valid > 4u) { d1_y[i + 1u] = qb + bias; }
    if (valid > 8u) { d1_y[i + 2u] = qc + bias; }
    if (valid > 12u) { d1_y[i + 3u] = qd + bias; }
}

@compute @workgroup_size(64)
fn direct_reg_s1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let tiles_w = (p.wy + 15u) / 16u;
    let t = flat(wid, nwg, lid);
    if (t >= p.n * p.hy * tiles_w) { return; }
    let ow0 = (t % tiles_w) * 16u;
    let oh = (t / tiles_w) % p.hy;
    let n = t / (tiles_w * p.hy);
    let m0 = wid.z * 4u;
    let ksize = p.cx * p.kh * p.kw;
    let hw4 = p.hx * p.wx / 4u;
    let rstep = p.dh * p.wx / 4u;
    var xc0 = (n * p.cx * p.hx * p.wx + oh * p.sh * p.wx + ow0) / 4u;
    var a0 = vec4<f32>(0.0); var b0 = vec4<f32>(0.0); var c0 = vec4<f32>(0.0); var d0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0); var b1 = vec4<f32>(0.0); var c1 = vec4<f32>(0.0); var d1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0); var b2 = vec4<f32>(0.0); var c2 = vec4<f32>(0.0); var d2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0); var b3 = vec4<f32>(0.0); var c3 = vec4<f32>(0.0); var d3 = vec4<f32>(0.0);
    var k = wid.z * ksize;
    for (var c = 0u; c < p.cx; c = c + 1u) {
        var row = xc0;
        for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
            var xa = d1_x[row];
            var xb = d1_x[row + 1u];
            var xc = d1_x[row + 2u];
            var xd = d1_x[row + 3u];
            var e = d1_x[row + 4u];
            var i = row + 5u;
            var used = 0u;
            var kx = 0u;
            loop {
                let wv = d1_w[k];
                a0 = fma(vec4<f32>(wv.x), xa, a0); b0 = fma(vec4<f32>(wv.x), xb, b0); c0 = fma(vec4<f32>(wv.x), xc, c0); d0 = fma(vec4<f32>(wv.x), xd, d0);
                a1 = fma(vec4<f32>(wv.y), xa, a1); b1 = fma(vec4<f32>(wv.y), xb, b1); c1 = fma(vec4<f32>(wv.y), xc, c1); d1 = fma(vec4<f32>(wv.y), xd, d1);
                a2 = fma(vec4<f32>(wv.z), xa, a2); b2 = fma(vec4<f32>(wv.z), xb, b2); c2 = fma(vec4<f32>(wv.z), xc, c2); d2 = fma(vec4<f32>(wv.z), xd, d2);
                a3 = fma(vec4<f32>(wv.w), xa, a3); b3 = fma(vec4<f32>(wv.w), xb, b3); c3 = fma(vec4<f32>(wv.w), xc, c3); d3 = fma(vec4<f32>(wv.w), xd, d3);
                k = k + 1u;
                kx = kx + 1u;
                if (kx >= p.kw) { break; }
                xa = vec4<f32>(xa.yzw, xb.x);
                xb = vec4<f32>(xb.yzw, xc.x);
                xc = vec4<f32>(xc.yzw, xd.x);
                xd = vec4<f32>(xd.yzw, e.x);
                e = e.yzwx;
                used = used + 1u;
                if (used == 4u) {
                    e = d1_x[i];
                    i = i + 1u;
                    used = 0u;
                }
            }
            row = row + rstep;
        }
        xc0 = xc0 + hw4;
    }
    let ohw = p.hy * p.wy;
    let valid = min(16u, p.wy - ow0);
    let base = n * p.cy * ohw + oh * p.wy + ow0;
    d1_store(m0, base + m0 * ohw, valid, a0, b0, c0, d0);
    d1_store(m0 + 1u, base + (m0 + 1u) * ohw, valid, a1, b1, c1, d1);
    d1_store(m0 + 2u, base + (m0 + 2u) * ohw, valid, a2, b2, c2, d2);
    d1_store(m0 + 3u, base + (m0 + 3u) * ohw, valid, a3, b3, c3, d3);
}

// direct_reg_s1 with 8 output channels per invocation (wid.z = block of 8): twice the FMAs per x
// load, for more than 4 output channels. Its 128 accumulators spill, but spills are plain stack
// loads and stores, far cheaper than lavapipe's per-lane storage loads (about +25% measured).
@compute @workgroup_size(64)
fn direct_reg_s1_r8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let tiles_w = (p.wy + 15u) / 16u;
    let t = flat(wid, nwg, lid);
    if (t >= p.n * p.hy * tiles_w) { return; }
    let ow0 = (t % tiles_w) * 16u;
    let oh = (t / tiles_w) % p.hy;
    let n = t / (tiles_w * p.hy);
    let m0 = wid.z * 8u;
    let ksize = p.cx * p.kh * p.kw;
    let hw4 = p.hx * p.wx / 4u;
    let rstep = p.dh * p.wx / 4u;
    var xc0 = (n * p.cx * p.hx * p.wx + oh * p.sh * p.wx + ow0) / 4u;
    var a0 = vec4<f32>(0.0); var b0 = vec4<f32>(0.0); var c0 = vec4<f32>(0.0); var d0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0); var b1 = vec4<f32>(0.0); var c1 = vec4<f32>(0.0); var d1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0); var b2 = vec4<f32>(0.0); var c2 = vec4<f32>(0.0); var d2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0); var b3 = vec4<f32>(0.0); var c3 = vec4<f32>(0.0); var d3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0); var b4 = vec4<f32>(0.0); var c4 = vec4<f32>(0.0); var d4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0); var b5 = vec4<f32>(0.0); var c5 = vec4<f32>(0.0); var d5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0); var b6 = vec4<f32>(0.0); var c6 = vec4<f32>(0.0); var d6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0); var b7 = vec4<f32>(0.0); var c7 = vec4<f32>(0.0); var d7 = vec4<f32>(0.0);
    // The two 4-channel blocks of packed weights of this 8-channel block, ksize apart.
    var k = wid.z * 2u * ksize;
    for (var c = 0u; c < p.cx; c = c + 1u) {
        var row = xc0;
        for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
            var xa = d1_x[row];
            var xb = d1_x[row + 1u];
            var xc = d1_x[row + 2u];
            var xd = d1_x[row + 3u];
            var e = d1_x[row + 4u];
            var i = row + 5u;
            var used = 0u;
            var kx = 0u;
            loop {
                let wv = d1_w[k];
                let wu = d1_w[k + ksize];
                a0 = fma(vec4<f32>(wv.x), xa, a0); b0 = fma(vec4<f32>(wv.x), xb, b0); c0 = fma(vec4<f32>(wv.x), xc, c0); d0 = fma(vec4<f32>(wv.x), xd, d0);
                a1 = fma(vec4<f32>(wv.y), xa, a1); b1 = fma(vec4<f32>(wv.y), xb, b1); c1 = fma(vec4<f32>(wv.y), xc, c1); d1 = fma(vec4<f32>(wv.y), xd, d1);
                a2 = fma(vec4<f32>(wv.z), xa, a2); b2 = fma(vec4<f32>(wv.z), xb, b2); c2 = fma(vec4<f32>(wv.z), xc, c2); d2 = fma(vec4<f32>(wv.z), xd, d2);
                a3 = fma(vec4<f32>(wv.w), xa, a3); b3 = fma(vec4<f32>(wv.w), xb, b3); c3 = fma(vec4<f32>(wv.w), xc, c3); d3 = fma(vec4<f32>(wv.w), xd, d3);
                a4 = fma(vec4<f32>(wu.x), xa, a4); b4 = fma(vec4<f32>(wu.x), xb, b4); c4 = fma(vec4<f32>(wu.x), xc, c4); d4 = fma(vec4<f32>(wu.x), xd, d4);
                a5 = fma(vec4<f32>(wu.y), xa, a5); b5 = fma(vec4<f32>(wu.y), xb, b5); c5 = fma(vec4<f32>(wu.y), xc, c5); d5 = fma(vec4<f32>(wu.y), xd, d5);
                a6 = fma(vec4<f32>(wu.z), xa, a6); b6 = fma(vec4<f32>(wu.z), xb, b6); c6 = fma(vec4<f32>(wu.z), xc, c6); d6 = fma(vec4<f32>(wu.z), xd, d6);
                a7 = fma(vec4<f32>(wu.w), xa, a7); b7 = fma(vec4<f32>(wu.w), xb, b7); c7 = fma(vec4<f32>(wu.w), xc, c7); d7 = fma(vec4<f32>(wu.w), xd, d7);
                k = k + 1u;
                kx = kx + 1u;
                if (kx >= p.kw) { break; }
                xa = vec4<f32>(xa.yzw, xb.x);
                xb = vec4<f32>(xb.yzw, xc.x);
                xc = vec4<f32>(xc.yzw, xd.x);
                xd = vec4<f32>(xd.yzw, e.x);
                e = e.yzwx;
                used = used + 1u;
                if (used == 4u) {
                    e = d1_x[i];
                    i = i + 1u;
                    used = 0u;
                }
            }
            row = row + rstep;
        }
        xc0 = xc0 + hw4;
    }
    let ohw = p.hy * p.wy;
    let valid = min(16u, p.wy - ow0);
    let base = n * p.cy * ohw + oh * p.wy + ow0;
    d1_store(m0 + 0u, base + (m0 + 0u) * ohw, valid, a0, b0, c0, d0);
    d1_store(m0 + 1u, base + (m0 + 1u) * ohw, valid, a1, b1, c1, d1);
    d1_store(m0 + 2u, base + (m0 + 2u) * ohw, valid, a2, b2, c2, d2);
    d1_store(m0 + 3u, base + (m0 + 3u) * ohw, valid, a3, b3, c3, d3);
    d1_store(m0 + 4u, base + (m0 + 4u) * ohw, valid, a4, b4, c4, d4);
    d1_store(m0 + 5u, base + (m0 + 5u) * ohw, valid, a5, b5, c5, d5);
    d1_store(m0 + 6u, base + (m0 + 6u) * ohw, valid, a6, b6, c6, d6);
    d1_store(m0 + 7u, base + (m0 + 7u) * ohw, valid, a7, b7, c7, d7);
}

// ---------------------------------------------------------------------------------------------
// Stride-2, dilation-1 (in width) variant of direct_reg, same 4 x 16 block. Column j of tap kx
// reads position 2j + kx of the row segment starting at 2*ow0: the even taps see the even
// positions and the odd taps the odd ones, each window sliding one column per two taps. So 8 vec4
// loads, split into even and odd positions, give the first window of both phases; each phase then
// slides with the positions from 32 on, taken from the 4-wide lookahead `e` (2 per reload).
// Output width a multiple of 4 and vec4 stores, as in direct_reg_s1.

@group(0) @binding(1) var<storage, read> d2_x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> d2_w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> d2_b: array<f32>;
@group(0) @binding(4) var<storage, read_write> d2_y: array<vec4<f32>>;

fn d2_store(m: u32, base: u32, valid: u32, qa: vec4<f32>, qb: vec4<f32>, qc: vec4<f32>, qd: vec4<f32>) {
    if (m >= p.cy) { return; }
    var bias = 0.0;
    if (p.has_bias != 0u) { bias = d2_b[m]; }
    // valid is a multiple of 4 (wy is), base a multiple of 4: whole vec4 stores.
    let i = base / 4u;
    d2_y[i] = qa + bias;
    if (valid > 4u) { d2_y[i + 1u] = qb + bias; }
    if (valid > 8u) { d2_y[i + 2u] = qc + bias; }
    if (valid > 12u) { d2_y[i + 3u] = qd + bias; }
}

@compute @workgroup_size(64)
fn direct_reg_s2(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let tiles_w = (p.wy + 15u) / 16u;
    let t = flat(wid, nwg, lid);
    if (t >= p.n * p.hy * tiles_w) { return; }
    let ow0 = (t % tiles_w) * 16u;
    let oh = (t / tiles_w) % p.hy;
    let n = t / (tiles_w * p.hy);
    let m0 = wid.z * 4u;
    let ksize = p.cx * p.kh * p.kw;
    let hw4 = p.hx * p.wx / 4u;
    let rstep = p.dh * p.wx / 4u;
    let phases = min(2u, p.kw);
    var xc0 = (n * p.cx * p.hx * p.wx + oh * p.sh * p.wx + 2u * ow0) / 4u;
    var a0 = vec4<f32>(0.0); var b0 = vec4<f32>(0.0); var c0 = vec4<f32>(0.0); var d0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0); var b1 = vec4<f32>(0.0); var c1 = vec4<f32>(0.0); var d1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0); var b2 = vec4<f32>(0.0); var c2 = vec4<f32>(0.0); var d2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0); var b3 = vec4<f32>(0.0); var c3 = vec4<f32>(0.0); var d3 = vec4<f32>(0.0);
    var krow = wid.z * ksize;
    for (var c = 0u; c < p.cx; c = c + 1u) {
        var row = xc0;
        for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
            let v0 = d2_x[row];
            let v1 = d2_x[row + 1u];
            let v2 = d2_x[row + 2u];
            let v3 = d2_x[row + 3u];
            let v4 = d2_x[row + 4u];
            let v5 = d2_x[row + 5u];
            let v6 = d2_x[row + 6u];
            let v7 = d2_x[row + 7u];
            for (var q = 0u; q < phases; q = q + 1u) {
                let even = q == 0u;
                var xa = select(vec4<f32>(v0.yw, v1.yw), vec4<f32>(v0.xz, v1.xz), even);
                var xb = select(vec4<f32>(v2.yw, v3.yw), vec4<f32>(v2.xz, v3.xz), even);
                var xc = select(vec4<f32>(v4.yw, v5.yw), vec4<f32>(v4.xz, v5.xz), even);
                var xd = select(vec4<f32>(v6.yw, v7.yw), vec4<f32>(v6.xz, v7.xz), even);
                // e.x is the position the next slide takes: 32 + q, then 34 + q.
                var i = row + 8u;
                var e = d2_x[i];
                e = select(e.yzwx, e, even);
                var used = 0u;
                var kx = q;
                loop {
                    let wv = d2_w[krow + kx];
                    a0 = fma(vec4<f32>(wv.x), xa, a0); b0 = fma(vec4<f32>(wv.x), xb, b0); c0 = fma(vec4<f32>(wv.x), xc, c0); d0 = fma(vec4<f32>(wv.x), xd, d0);
                    a1 = fma(vec4<f32>(wv.y), xa, a1); b1 = fma(vec4<f32>(wv.y), xb, b1); c1 = fma(vec4<f32>(wv.y), xc, c1); d1 = fma(vec4<f32>(wv.y), xd, d1);
                    a2 = fma(vec4<f32>(wv.z), xa, a2); b2 = fma(vec4<f32>(wv.z), xb, b2); c2 = fma(vec4<f32>(wv.z), xc, c2); d2 = fma(vec4<f32>(wv.z), xd, d2);
                    a3 = fma(vec4<f32>(wv.w), xa, a3); b3 = fma(vec4<f32>(wv.w), xb, b3); c3 = fma(vec4<f32>(wv.w), xc, c3); d3 = fma(vec4<f32>(wv.w), xd, d3);
                    kx = kx + 2u;
                    if (kx >= p.kw) { break; }
                    xa = vec4<f32>(xa.yzw, xb.x);
                    xb = vec4<f32>(xb.yzw, xc.x);
                    xc = vec4<f32>(xc.yzw, xd.x);
                    xd = vec4<f32>(xd.yzw, e.x);
                    e = e.zwxy;
                    used = used + 1u;
                    if (used == 2u) {
                        i = i + 1u;
                        e = d2_x[i];
                        e = select(e.yzwx, e, even);
                        used = 0u;
                    }
                }
            }
            row = row + rstep;
            krow = krow + p.kw;
        }
        xc0 = xc0 + hw4;
    }
    let ohw = p.hy * p.wy;
    let valid = min(16u, p.wy - ow0);
    let base = n * p.cy * ohw + oh * p.wy + ow0;
    d2_store(m0, base + m0 * ohw, valid, a0, b0, c0, d0);
    d2_store(m0 + 1u, base + (m0 + 1u) * ohw, valid, a1, b1, c1, d1);
    d2_store(m0 + 2u, base + (m0 + 2u) * ohw, valid, a2, b2, c2, d2);
    d2_store(m0 + 3u, base + (m0 + 3u) * ohw, valid, a3, b3, c3, d3);
}

// direct_reg_s2 with 8 output channels per invocation (wid.z = block of 8): twice the FMAs per x load.
@compute @workgroup_size(64)
fn direct_reg_s2_r8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let tiles_w = (p.wy + 15u) / 16u;
    let t = flat(wid, nwg, lid);
    if (t >= p.n * p.hy * tiles_w) { return; }
    let ow0 = (t % tiles_w) * 16u;
    let oh = (t / tiles_w) % p.hy;
    let n = t / (tiles_w * p.hy);
    let m0 = wid.z * 8u;
    let ksize = p.cx * p.kh * p.kw;
    let hw4 = p.hx * p.wx / 4u;
    let rstep = p.dh * p.wx / 4u;
    let phases = min(2u, p.kw);
    var xc0 = (n * p.cx * p.hx * p.wx + oh * p.sh * p.wx + 2u * ow0) / 4u;
    var a0 = vec4<f32>(0.0); var b0 = vec4<f32>(0.0); var c0 = vec4<f32>(0.0); var d0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0); var b1 = vec4<f32>(0.0); var c1 = vec4<f32>(0.0); var d1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0); var b2 = vec4<f32>(0.0); var c2 = vec4<f32>(0.0); var d2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0); var b3 = vec4<f32>(0.0); var c3 = vec4<f32>(0.0); var d3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0); var b4 = vec4<f32>(0.0); var c4 = vec4<f32>(0.0); var d4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0); var b5 = vec4<f32>(0.0); var c5 = vec4<f32>(0.0); var d5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0); var b6 = vec4<f32>(0.0); var c6 = vec4<f32>(0.0); var d6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0); var b7 = vec4<f32>(0.0); var c7 = vec4<f32>(0.0); var d7 = vec4<f32>(0.0);
    var krow = wid.z * 2u * ksize;
    for (var c = 0u; c < p.cx; c = c + 1u) {
        var row = xc0;
        for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
            let v0 = d2_x[row];
            let v1 = d2_x[row + 1u];
            let v2 = d2_x[row + 2u];
            let v3 = d2_x[row + 3u];
            let v4 = d2_x[row + 4u];
            let v5 = d2_x[row + 5u];
            let v6 = d2_x[row + 6u];
            let v7 = d2_x[row + 7u];
            for (var q = 0u; q < phases; q = q + 1u) {
                let even = q == 0u;
                var xa = select(vec4<f32>(v0.yw, v1.yw), vec4<f32>(v0.xz, v1.xz), even);
                var xb = select(vec4<f32>(v2.yw, v3.yw), vec4<f32>(v2.xz, v3.xz), even);
                var xc = select(vec4<f32>(v4.yw, v5.yw), vec4<f32>(v4.xz, v5.xz), even);
                var xd = select(vec4<f32>(v6.yw, v7.yw), vec4<f32>(v6.xz, v7.xz), even);
                // e.x is the position the next slide takes: 32 + q, then 34 + q.
                var i = row + 8u;
                var e = d2_x[i];
                e = select(e.yzwx, e, even);
                var used = 0u;
                var kx = q;
                loop {
                    let wv = d2_w[krow + kx];
                    let wu = d2_w[krow + ksize + kx];
                    a0 = fma(vec4<f32>(wv.x), xa, a0); b0 = fma(vec4<f32>(wv.x), xb, b0); c0 = fma(vec4<f32>(wv.x), xc, c0); d0 = fma(vec4<f32>(wv.x), xd, d0);
                    a1 = fma(vec4<f32>(wv.y), xa, a1); b1 = fma(vec4<f32>(wv.y), xb, b1); c1 = fma(vec4<f32>(wv.y), xc, c1); d1 = fma(vec4<f32>(wv.y), xd, d1);
                    a2 = fma(vec4<f32>(wv.z), xa, a2); b2 = fma(vec4<f32>(wv.z), xb, b2); c2 = fma(vec4<f32>(wv.z), xc, c2); d2 = fma(vec4<f32>(wv.z), xd, d2);
                    a3 = fma(vec4<f32>(wv.w), xa, a3); b3 = fma(vec4<f32>(wv.w), xb, b3); c3 = fma(vec4<f32>(wv.w), xc, c3); d3 = fma(vec4<f32>(wv.w), xd, d3);
                    a4 = fma(vec4<f32>(wu.x), xa, a4); b4 = fma(vec4<f32>(wu.x), xb, b4); c4 = fma(vec4<f32>(wu.x), xc, c4); d4 = fma(vec4<f32>(wu.x), xd, d4);
                    a5 = fma(vec4<f32>(wu.y), xa, a5); b5 = fma(vec4<f32>(wu.y), xb, b5); c5 = fma(vec4<f32>(wu.y), xc, c5); d5 = fma(vec4<f32>(wu.y), xd, d5);
                    a6 = fma(vec4<f32>(wu.z), xa, a6); b6 = fma(vec4<f32>(wu.z), xb, b6); c6 = fma(vec4<f32>(wu.z), xc, c6); d6 = fma(vec4<f32>(wu.z), xd, d6);
                    a7 = fma(vec4<f32>(wu.w), xa, a7); b7 = fma(vec4<f32>(wu.w), xb, b7); c7 = fma(vec4<f32>(wu.w), xc, c7); d7 = fma(vec4<f32>(wu.w), xd, d7);
                    kx = kx + 2u;
                    if (kx >= p.kw) { break; }
                    xa = vec4<f32>(xa.yzw, xb.x);
                    xb = vec4<f32>(xb.yzw, xc.x);
                    xc = vec4<f32>(xc.yzw, xd.x);
                    xd = vec4<f32>(xd.yzw, e.x);
                    e = e.zwxy;
                    used = used + 1u;
                    if (used == 2u) {
                        i = i + 1u;
                        e = d2_x[i];
                        e = select(e.yzwx, e, even);
                        used = 0u;
                    }
                }
            }
            row = row + rstep;
            krow = krow + p.kw;
        }
        xc0 = xc0 + hw4;
    }
    let ohw = p.hy * p.wy;
    let valid = min(16u, p.wy - ow0);
    let base = n * p.cy * ohw + oh * p.wy + ow0;
    d2_store(m0 + 0u, base + (m0 + 0u) * ohw, valid, a0, b0, c0, d0);
    d2_store(m0 + 1u, base + (m0 + 1u) * ohw, valid, a1, b1, c1, d1);
    d2_store(m0 + 2u, base + (m0 + 2u) * ohw, valid, a2, b2, c2, d2);
    d2_store(m0 + 3u, base + (m0 + 3u) * ohw, valid, a3, b3, c3, d3);
    d2_store(m0 + 4u, base + (m0 + 4u) * ohw, valid, a4, b4, c4, d4);
    d2_store(m0 + 5u, base + (m0 + 5u) * ohw, valid, a5, b5, c5, d5);
    d2_store(m0 + 6u, base + (m0 + 6u) * ohw, valid, a6, b6, c6, d6);
    d2_store(m0 + 7u, base + (m0 + 7u) * ohw, valid, a7, b7, c7, d7);
}

// ---------------------------------------------------------------------------------------------
// Register-blocked transposed conv (CPU adapters), gathered by output phase: wid.z holds the phase
// (oh % sh, ow % sw) and the channel block, so within a workgroup the valid taps are uniform
// (only 1/(sh*sw) of them contribute to a phase) and the 8 output columns ow = phw + sw*(c0 + j) of
// an invocation read 8 consecutive source columns. x is padded by (pad_top, pad_left).
// w: [cx, cy, kh, kw].

@group(0) @binding(1) var<storage, read> tr_x: array<f32>;
@group(0) @binding(2) var<storage, read> tr_w: array<f32>;
@group(0) @binding(3) var<storage, read> tr_b: array<f32>;
@group(0) @binding(4) var<storage, read_write> tr_y: array<f32>;

fn tr_store(m: u32, base: u32, valid: u32, lo: vec4<f32>, hi: vec4<f32>) {
    if (m >= p.cy) { return; }
    var bias = 0.0;
    if (p.has_bias != 0u) { bias = tr_b[m]; }
    for (var j = 0u; j < 4u; j = j + 1u) {
        if (j < valid) { tr_y[base + j * p.sw] = lo[j] + bias; }
        if (j + 4u < valid) { tr_y[base + (j + 4u) * p.sw] = hi[j] + bias; }
    }
}

@compute @workgroup_size(64)
fn transposed_reg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let mblocks = (p.cy + 3u) / 4u;
    let phase = wid.z / mblocks;
    let m0 = (wid.z % mblocks) * 4u;
    let phh = phase / p.sw;
    let phw = phase % p.sw;
    let rows = (p.hy + p.sh - 1u) / p.sh;
    let cols = (p.wy + p.sw - 1u) / p.sw;
    let tiles_w = (cols + 7u) / 8u;
    let t = flat(wid, nwg, lid);
    if (t >= p.n * rows * tiles_w) { return; }
    let c0 = (t % tiles_w) * 8u;
    let r = (t / tiles_w) % rows;
    let n = t / (tiles_w * rows);
    let oh = phh + r * p.sh;
    let ow0 = phw + c0 * p.sw;
    if (oh >= p.hy || ow0 >= p.wy) { return; }
    let kk = p.kh * p.kw;
    let mstride = p.cy * kk;
    let w0 = min(m0, p.cy - 1u) * kk;
    let w1 = min(m0 + 1u, p.cy - 1u) * kk;
    let w2 = min(m0 + 2u, p.cy - 1u) * kk;
    let w3 = min(m0 + 3u, p.cy - 1u) * kk;
    let hw = p.hx * p.wx;
    var a0 = vec4<f32>(0.0); var b0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0); var b1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0); var b2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0); var b3 = vec4<f32>(0.0);
    // (ph + p - k*d) / s with the numerator kept non-negative by adding big*s: GLSL leaves % and
    // / of negative integers undefined.
    let bigh = ((p.kh - 1u) * p.dh) / p.sh + 1u;
    let bigw = ((p.kw - 1u) * p.dw) / p.sw + 1u;
    for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
        let th = phh + p.ph + bigh * p.sh - ky * p.dh;
        if (th % p.sh != 0u) { continue; }
        let ih = u32(i32(r + th / p.sh + p.pad_top) - i32(bigh));
        for (var kx = 0u; kx < p.kw; kx = kx + 1u) {
            let tw = phw + p.pw + bigw * p.sw - kx * p.dw;
            if (tw % p.sw != 0u) { continue; }
            let iw = u32(i32(c0 + tw / p.sw + p.pad_left) - i32(bigw));
            var i = n * p.cx * hw + ih * p.wx + iw;
            var k = ky * p.kw + kx;
            for (var c = 0u; c < p.cx; c = c + 1u) {
                let xa = vec4<f32>(tr_x[i], tr_x[i + 1u], tr_x[i + 2u], tr_x[i + 3u]);
                let xb = vec4<f32>(tr_x[i + 4u], tr_x[i + 5u], tr_x[i + 6u], tr_x[i + 7u]);
                let v0 = tr_w[w0 + k];
                let v1 = tr_w[w1 + k];
                let v2 = tr_w[w2 + k];
                let v3 = tr_w[w3 + k];
                a0 = fma(vec4<f32>(v0), xa, a0); b0 = fma(vec4<f32>(v0), xb, b0);
                a1 = fma(vec4<f32>(v1), xa, a1); b1 = fma(vec4<f32>(v1), xb, b1);
                a2 = fma(vec4<f32>(v2), xa, a2); b2 = fma(vec4<f32>(v2), xb, b2);
                a3 = fma(vec4<f32>(v3), xa, a3); b3 = fma(vec4<f32>(v3), xb, b3);
                i = i + hw;
                k = k + mstride;
            }
        }
    }
    let ohw = p.hy * p.wy;
    let valid = min(8u, (p.wy - ow0 + p.sw - 1u) / p.sw);
    let base = n * p.cy * ohw + oh * p.wy + ow0;
    tr_store(m0, base + m0 * ohw, valid, a0, b0);
    tr_store(m0 + 1u, base + (m0 + 1u) * ohw, valid, a1, b1);
    tr_store(m0 + 2u, base + (m0 + 2u) * ohw, valid, a2, b2);
    tr_store(m0 + 3u, base + (m0 + 3u) * ohw, valid, a3, b3);
}

// ---------------------------------------------------------------------------------------------
// Register-blocked weight gradient partials (CPU adapters). Invocation: 4 output channels (from
// wid.z) x 8 consecutive taps k = (c, ky, kx); wid.y is the split of the batch*rows reduction
// (rows [wid.y * chunk, ..)), uniform per workgroup so the gy loads are uniform. x is the padded copy.
// part: [splits, cy, cx*kh*kw], summed over splits by `sum_splits` (deterministic, no atomics).

@group(0) @binding(1) var<storage, read> wg_x: array<f32>;
@group(0) @binding(2) var<storage, read> wg_gy: array<f32>;
@group(0) @binding(3) var<storage, read_write> wg_part: array<f32>;

fn wg_tap_offset(k: u32, ksize: u32) -> u32 {
    let kc = min(k, ksize - 1u);
    let c = kc / (p.kh * p.kw);
    let ky = (kc / p.kw) % p.kh;
    let kx = kc % p.kw;
    return c * p.hx * p.wx + ky * p.dh * p.wx + kx * p.dw;
}

fn wg_store(m: u32, k0: u32, ksize: u32, lo: vec4<f32>, hi: vec4<f32>, split: u32) {
    if (m >= p.cy) { return; }
    let base = (split * p.cy + m) * ksize;
    for (var j = 0u; j < 4u; j = j + 1u) {
        if (k0 + j < ksize) { wg_part[base + k0 + j] = lo[j]; }
        if (k0 + j + 4u < ksize) { wg_part[base + k0 + j + 4u] = hi[j]; }
    }
}

@compute @workgroup_size(64)
fn wgrad_reg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let ksize = p.cx * p.kh * p.kw;
    let k0 = (wid.x * 64u + lid) * 8u;
    if (k0 >= ksize) { return; }
    let split = wid.y;
    let m0 = wid.z * 4u;
    let o0 = wg_tap_offset(k0, ksize);
    let o1 = wg_tap_offset(k0 + 1u, ksize);
    let o2 = wg_tap_offset(k0 + 2u, ksize);
    let o3 = wg_tap_offset(k0 + 3u, ksize);
    let o4 = wg_tap_offset(k0 + 4u, ksize);
    let o5 = wg_tap_offset(k0 + 5u, ksize);
    let o6 = wg_tap_offset(k0 + 6u, ksize);
    let o7 = wg_tap_offset(k0 + 7u, ksize);
    let ohw = p.hy * p.wy;
    let g1 = select(0u, ohw, m0 + 1u < p.cy);
    let g2 = select(0u, 2u * ohw, m0 + 2u < p.cy);
    let g3 = select(0u, 3u * ohw, m0 + 3u < p.cy);
    let hw = p.hx * p.wx;
    var a0 = vec4<f32>(0.0); var b0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0); var b1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0); var b2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0); var b3 = vec4<f32>(0.0);
    let rows_end = min(p.n * p.hy, (split + 1u) * p.chunk);
    for (var g = split * p.chunk; g < rows_end; g = g + 1u) {
        let n = g / p.hy;
        let oh = g % p.hy;
        var xi = n * p.cx * hw + oh * p.sh * p.wx;
        var gi = (n * p.cy + m0) * ohw + oh * p.wy;
        for (var ow = 0u; ow < p.wy; ow = ow + 1u) {
            let xa = vec4<f32>(wg_x[xi + o0], wg_x[xi + o1], wg_x[xi + o2], wg_x[xi + o3]);
            let xb = vec4<f32>(wg_x[xi + o4], wg_x[xi + o5], wg_x[xi + o6], wg_x[xi + o7]);
            let v0 = wg_gy[gi];
            let v1 = wg_gy[gi + g1];
            let v2 = wg_gy[gi + g2];
            let v3 = wg_gy[gi + g3];
            a0 = fma(vec4<f32>(v0), xa, a0); b0 = fma(vec4<f32>(v0), xb, b0);
            a1 = fma(vec4<f32>(v1), xa, a1); b1 = fma(vec4<f32>(v1), xb, b1);
            a2 = fma(vec4<f32>(v2), xa, a2); b2 = fma(vec4<f32>(v2), xb, b2);
            a3 = fma(vec4<f32>(v3), xa, a3); b3 = fma(vec4<f32>(v3), xb, b3);
            xi = xi + p.sw;
            gi = gi + 1u;
        }
    }
    wg_store(m0, k0, ksize, a0, b0, split);
    wg_store(m0 + 1u, k0, ksize, a1, b1, split);
    wg_store(m0 + 2u, k0, ksize, a2, b2, split);
    wg_store(m0 + 3u, k0, ksize, a3, b3, split);
}

// ---------------------------------------------------------------------------------------------
// Workgroup-memory tiled implicit GEMM (GPUs): C[64 x 64] per workgroup, 16 x 16 invocations with
// 4 x 4 each, K in steps of 16 staged through workgroup memory. mode 0 = direct, 1 = transposed,
// 2 = weight gradient (wid.z = split of the reduction, output partials like wgrad_reg).
// Source x is unpadded here: tile loads check bounds. ga: the weight (modes 0, 1) or gy (mode 2).

@group(0) @binding(1) var<storage, read> gt_a: array<f32>;
@group(0) @binding(2) var<storage, read> gt_x: array<f32>;
@group(0) @binding(3) var<storage, read> gt_b: array<f32>;
@group(0) @binding(4) var<storage, read_write> gt_out: array<f32>;

var<workgroup> tile_a: array<f32, 1024>; // [16 k][64 m]
var<workgroup> tile_b: array<f32, 1024>; // [16 k][64 n]

// x at tap t = (c, ky, kx) of destination pixel q = (n, oh, ow) of the direct map, zero outside.
fn gt_direct_x(t: u32, q: u32) -> f32 {
    let kk = p.kh * p.kw;
    let c = t / kk;
    let ky = (t % kk) / p.kw;
    let kx = t % p.kw;
    let ohw = p.hy * p.wy;
    let n = q / ohw;
    let oh = (q % ohw) / p.wy;
    let ow = q % p.wy;
    let ih = i32(oh * p.sh + ky * p.dh) - i32(p.ph);
    let iw = i32(ow * p.sw + kx * p.dw) - i32(p.pw);
    let ok = ih >= 0 && ih < i32(p.hx) && iw >= 0 && iw < i32(p.wx);
    let j = select(0u, ((n * p.cx + c) * p.hx + u32(ih)) * p.wx + u32(iw), ok);
    return select(0.0, gt_x[j], ok);
}

// A[m, k] of the GEMM (rows = destination channels).
fn gt_load_a(m: u32, k: u32) -> f32 {
    let kk = p.kh * p.kw;
    if (p.mode == 0u) {
        return gt_a[m * p.cx * kk + k];
    }
    if (p.mode == 1u) {
        return gt_a[((k / kk) * p.cy + m) * kk + k % kk];
    }
    let ohw = p.hy * p.wy;
    return gt_a[((k / ohw) * p.cy + m) * ohw + k % ohw];
}

// B[k, col] of the GEMM.
fn gt_load_b(k: u32, col: u32) -> f32 {
    if (p.mode == 0u) {
        return gt_direct_x(k, col);
    }
    if (p.mode == 2u) {
        return gt_direct_x(col, k);
    }
    let kk = p.kh * p.kw;
    let c = k / kk;
    let ky = (k % kk) / p.kw;
    let kx = k % p.kw;
    let ohw = p.hy * p.wy;
    let n = col / ohw;
    let oh = (col % ohw) / p.wy;
    let ow = col % p.wy;
    // Unsigned arithmetic once the numerators are known non-negative (GLSL leaves % and / of
    // negative integers undefined).
    let nonneg = oh + p.ph >= ky * p.dh && ow + p.pw >= kx * p.dw;
    let th = select(0u, oh + p.ph - ky * p.dh, nonneg);
    let tw = select(0u, ow + p.pw - kx * p.dw, nonneg);
    let ih = th / p.sh;
    let iw = tw / p.sw;
    let ok = nonneg && th % p.sh == 0u && tw % p.sw == 0u && ih < p.hx && iw < p.wx;
    let j = select(0u, ((n * p.cx + c) * p.hx + ih) * p.wx + iw, ok);
    return select(0.0, gt_x[j], ok);
}

@compute @workgroup_size(16, 16)
fn gemm_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let kk = p.kh * p.kw;
    let rows_m = p.cy;
    var cols = p.n * p.hy * p.wy;
    var k_begin = 0u;
    var k_end = p.cx * kk;
    var tile_n = wid.z * nwg.x + wid.x;
    if (p.mode == 2u) {
        cols = p.cx * kk;
        k_begin = wid.z * p.chunk;
        k_end = min(p.n * p.hy * p.wy, k_begin + p.chunk);
        tile_n = wid.x;
    }
    let m0 = wid.y * 64u;
    let n0 = tile_n * 64u;
    if (n0 >= cols) { return; } // uniform per workgroup: the grid's last row may overshoot
    var acc: array<vec4<f32>, 4>;
    for (var kt = k_begin; kt < k_end; kt = kt + 16u) {
        for (var e = li; e < 1024u; e = e + 256u) {
            let kr = e / 64u;
            let c = e % 64u;
            let k = kt + kr;
            let m = m0 + c;
            var va = 0.0;
            if (k < k_end && m < rows_m) { va = gt_load_a(m, k); }
            tile_a[e] = va;
            var vb = 0.0;
            if (k < k_end && n0 + c < cols) { vb = gt_load_b(k, n0 + c); }
            tile_b[e] = vb;
        }
        workgroupBarrier();
        for (var kr = 0u; kr < 16u; kr = kr + 1u) {
            let a = vec4<f32>(tile_a[kr * 64u + lid.y * 4u], tile_a[kr * 64u + lid.y * 4u + 1u],
                              tile_a[kr * 64u + lid.y * 4u + 2u], tile_a[kr * 64u + lid.y * 4u + 3u]);
            let b = vec4<f32>(tile_b[kr * 64u + lid.x * 4u], tile_b[kr * 64u + lid.x * 4u + 1u],
                              tile_b[kr * 64u + lid.x * 4u + 2u], tile_b[kr * 64u + lid.x * 4u + 3u]);
            acc[0] = fma(vec4<f32>(a.x), b, acc[0]);
            acc[1] = fma(vec4<f32>(a.y), b, acc[1]);
            acc[2] = fma(vec4<f32>(a.z), b, acc[2]);
            acc[3] = fma(vec4<f32>(a.w), b, acc[3]);
        }
        workgroupBarrier();
    }
    let ohw = p.hy * p.wy;
    for (var i = 0u; i < 4u; i = i + 1u) {
        let m = m0 + lid.y * 4u + i;
        if (m >= rows_m) { continue; }
        var bias = 0.0;
        if (p.has_bias != 0u && p.mode != 2u) { bias = gt_b[m]; }
        for (var j = 0u; j < 4u; j = j + 1u) {
            let col = n0 + lid.x * 4u + j;
            if (col >= cols) { continue; }
            let v = acc[i][j] + bias;
            if (p.mode == 2u) {
                gt_out[(wid.z * p.cy + m) * cols + col] = v;
            } else {
                gt_out[((col / ohw) * p.cy + m) * ohw + col % ohw] = v;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// out[i] = sum over s < splits of part[s * len + i], in split order (deterministic).

@group(0) @binding(1) var<storage, read> ss_part: array<f32>;
@group(0) @binding(2) var<storage, read_write> ss_out: array<f32>;

@compute @workgroup_size(64)
fn sum_splits(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.len) { return; }
    var acc = 0.0;
    for (var s = 0u; s < p.splits; s = s + 1u) {
        acc = acc + ss_part[s * p.len + i];
    }
    ss_out[i] = acc;
}

// ---------------------------------------------------------------------------------------------
// Bias gradient gb[c] = sum_{n, pixel} gy[n, c, pixel]: one workgroup per channel (wid.x), 64
// strided partial sums, then a fixed-order tree in workgroup memory (deterministic).
// gy: [n, cy, hy, wy].

@group(0) @binding(1) var<storage, read> bg_gy: array<f32>;
@group(0) @binding(2) var<storage, read_write> bg_out: array<f32>;

var<workgroup> bg_partial: array<f32, 64>;

@compute @workgroup_size(64)
fn bias_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = wid.x;
    let ohw = p.hy * p.wy;
    var acc = 0.0;
    for (var n = 0u; n < p.n; n = n + 1u) {
        let base = (n * p.cy + c) * ohw;
        for (var q = lid; q < ohw; q = q + 64u) {
            acc = acc + bg_gy[base + q];
        }
    }
    bg_partial[lid] = acc;
    workgroupBarrier();
    for (var h = 32u; h > 0u; h = h / 2u) {
        if (lid < h) {
            bg_partial[lid] = bg_partial[lid] + bg_partial[lid + h];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        bg_out[c] = bg_partial[0];
    }
}
