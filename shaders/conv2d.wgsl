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
// (workgroup-memory tiles of 16, 32 or 64 rows, 4 x 4 per invocation, bounds checked while loading tiles).

struct Params {
    n: u32, cx: u32, hx: u32, wx: u32,
    cy: u32, hy: u32, wy: u32, mode: u32,
    kh: u32, kw: u32, sh: u32, sw: u32,
    ph: u32, pw: u32, dh: u32, dw: u32,
    has_bias: u32, splits: u32, chunk: u32, len: u32,
    // pad: offset of the source inside the padded copy, and the unpadded source size.
    pad_top: u32, pad_left: u32, src_h: u32, src_w: u32,
    // gemm_tiled: invocations along the tile's rows (4, 8 or 16) and its K step (8 or 16).
    // leaky != 0: the forward stores apply leaky ReLU (slope 0 is ReLU) after the bias, so a
    // layer's activation costs no pass of its own over y.
    tile_m: u32, tile_k: u32, leaky: u32, slope: f32,
    // gemm_tiled mode 3: the output phase this dispatch computes (see gt_phase).
    phase_h: u32, phase_w: u32, pad0: u32, pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// The store epilogue: bias, then the activation when `p.leaky` says so.
fn epilogue(v: f32, bias: f32) -> f32 {
    let z = v + bias;
    if (p.leaky != 0u && !(z > 0.0)) { return z * p.slope; }
    return z;
}

fn epilogue4(v: vec4<f32>, bias: f32) -> vec4<f32> {
    let z = v + bias;
    if (p.leaky == 0u) { return z; }
    return select(z * p.slope, z, z > vec4<f32>(0.0));
}

fn flat(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 64u + lid;
}

// ---------------------------------------------------------------------------------------------
// Zero-padded copy: dst[n, c, hx, wx] (padded size) from src[n, c, src_h, src_w] at (pad_top, pad_left).

@group(0) @binding(1) var<storage, read> pd_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> pd_dst: array<f32>;

// Each invocation writes PAD_RUN consecutive values: the (plane, row, column) of the first is
// decoded once and the rest step through it, since lavapipe runs integer division lane by lane.
const PAD_RUN: u32 = 8u;

@compute @workgroup_size(64)
fn pad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
    let i0 = flat(wid, nwg, lid) * PAD_RUN;
    if (i0 >= p.len) { return; }
    var col = i0 % p.wx;
    let rows = i0 / p.wx;
    var row = rows % p.hx;
    var plane = rows / p.hx;
    for (var i = i0; i < min(i0 + PAD_RUN, p.len); i = i + 1u) {
        let r = i32(row) - i32(p.pad_top);
        let c = i32(col) - i32(p.pad_left);
        let inside = r >= 0 && r < i32(p.src_h) && c >= 0 && c < i32(p.src_w);
        let j = select(0u, (plane * p.src_h + u32(r)) * p.src_w + u32(c), inside);
        pd_dst[i] = select(0.0, pd_src[j], inside);
        col = col + 1u;
        if (col == p.wx) {
            col = 0u;
            row = row + 1u;
            if (row == p.hx) {
                row = 0u;
                plane = plane + 1u;
            }
        }
    }
}

// pad for a destination row a multiple of 4 wide: PAD_RUN / 4 vec4 stores per invocation instead
// of PAD_RUN scalar ones (lavapipe stores lane by lane, as it loads); the source is read value by
// value, since its rows need not be aligned (the pointwise GEMM pads 25 x 25 planes to 628).
@group(0) @binding(2) var<storage, read_write> pd4_dst: array<vec4<f32>>;

// Source value (r, c) of plane `plane`, 0 outside it.
fn pd_at(plane: u32, r: i32, c: i32) -> f32 {
    let inside = r >= 0 && r < i32(p.src_h) && c >= 0 && c < i32(p.src_w);
    let j = select(0u, (plane * p.src_h + u32(r)) * p.src_w + u32(c), inside);
    return select(0.0, pd_src[j], inside);
}

@compute @workgroup_size(64)
fn pad4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let w4 = p.wx / 4u;
    let len4 = p.len / 4u;
    let i0 = flat(wid, nwg, lid) * (PAD_RUN / 4u);
    if (i0 >= len4) { return; }
    var col = (i0 % w4) * 4u;
    let rows = i0 / w4;
    var row = rows % p.hx;
    var plane = rows / p.hx;
    for (var i = i0; i < min(i0 + PAD_RUN / 4u, len4); i = i + 1u) {
        let r = i32(row) - i32(p.pad_top);
        let c = i32(col) - i32(p.pad_left);
        pd4_dst[i] = vec4<f32>(pd_at(plane, r, c), pd_at(plane, r, c + 1), pd_at(plane, r, c + 2), pd_at(plane, r, c + 3));
        col = col + 4u;
        if (col == p.wx) {
            col = 0u;
            row = row + 1u;
            if (row == p.hx) {
                row = 0u;
                plane = plane + 1u;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Crop: dst[r, col] = src[r, col] for rows r of width wy taken from rows of width wx >= wy.

@group(0) @binding(1) var<storage, read> cr_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> cr_dst: array<f32>;

// PAD_RUN consecutive values per invocation, as `pad`.
@compute @workgroup_size(64)
fn crop(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i0 = flat(wid, nwg, lid) * PAD_RUN;
    if (i0 >= p.len) { return; }
    var col = i0 % p.wy;
    var src = (i0 / p.wy) * p.wx + col;
    for (var i = i0; i < min(i0 + PAD_RUN, p.len); i = i + 1u) {
        cr_dst[i] = cr_src[src];
        col = col + 1u;
        src = src + 1u;
        if (col == p.wy) {
            col = 0u;
            src = src + p.wx - p.wy;
        }
    }
}

// crop, then the store epilogue (bias of the row's channel, activation) for producers that have
// none: the pointwise GEMM. Rows are [n, cy, hy] planes of rows; the channel is decoded once and
// stepped at each row end.
@group(0) @binding(1) var<storage, read> ce_src: array<f32>;
@group(0) @binding(2) var<storage, read> ce_bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> ce_dst: array<f32>;

@compute @workgroup_size(64)
fn crop_epilogue(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let i0 = flat(wid, nwg, lid) * PAD_RUN;
    if (i0 >= p.len) { return; }
    var col = i0 % p.wy;
    let r = i0 / p.wy;
    var src = r * p.wx + col;
    var prow = r % p.hy;
    var c = (r / p.hy) % p.cy;
    var bias = 0.0;
    if (p.has_bias != 0u) { bias = ce_bias[c]; }
    for (var i = i0; i < min(i0 + PAD_RUN, p.len); i = i + 1u) {
        ce_dst[i] = epilogue(ce_src[src], bias);
        col = col + 1u;
        src = src + 1u;
        if (col == p.wy) {
            col = 0u;
            src = src + p.wx - p.wy;
            prow = prow + 1u;
            if (prow == p.hy) {
                prow = 0u;
                c = c + 1u;
                if (c == p.cy) { c = 0u; }
                if (p.has_bias != 0u) { bias = ce_bias[c]; }
            }
        }
    }
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
        if (j < valid) { dr_y[base + j] = epilogue(qa[j], bias); }
        if (j + 4u < valid) { dr_y[base + j + 4u] = epilogue(qb[j], bias); }
        if (j + 8u < valid) { dr_y[base + j + 8u] = epilogue(qc[j], bias); }
        if (j + 12u < valid) { dr_y[base + j + 12u] = epilogue(qd[j], bias); }
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
    d1_y[i] = epilogue4(qa, bias);
    if (valid > 4u) { d1_y[i + 1u] = epilogue4(qb, bias); }
    if (valid > 8u) { d1_y[i + 2u] = epilogue4(qc, bias); }
    if (valid > 12u) { d1_y[i + 3u] = epilogue4(qd, bias); }
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
    let total = p.n * p.hy * tiles_w;
    let t_raw = flat(wid, nwg, lid);
    let lane = load_lane();
    if (lanes_done(t_raw >= total)) { return; }
    let t = min(t_raw, total - 1u);
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
            let rw = d1_row_weights(k, lane);
            var xa = d1_x[row];
            var xb = d1_x[row + 1u];
            var xc = d1_x[row + 2u];
            var xd = d1_x[row + 3u];
            var e = d1_x[row + 4u];
            var i = row + 5u;
            var used = 0u;
            var kx = 0u;
            loop {
                let w = d1_tap_weights(rw, k, kx);
                let wv = w[0];
                let wu = w[1];
                a0 = fma(vec4<f32>(wv.x), xa, a0); b0 = fma(vec4<f32>(wv.x), xb, b0); c0 = fma(vec4<f32>(wv.x), xc, c0); d0 = fma(vec4<f32>(wv.x), xd, d0);
                a1 = fma(vec4<f32>(wv.y), xa, a1); b1 = fma(vec4<f32>(wv.y), xb, b1); c1 = fma(vec4<f32>(wv.y), xc, c1); d1 = fma(vec4<f32>(wv.y), xd, d1);
                a2 = fma(vec4<f32>(wv.z), xa, a2); b2 = fma(vec4<f32>(wv.z), xb, b2); c2 = fma(vec4<f32>(wv.z), xc, c2); d2 = fma(vec4<f32>(wv.z), xd, d2);
                a3 = fma(vec4<f32>(wv.w), xa, a3); b3 = fma(vec4<f32>(wv.w), xb, b3); c3 = fma(vec4<f32>(wv.w), xc, c3); d3 = fma(vec4<f32>(wv.w), xd, d3);
                a4 = fma(vec4<f32>(wu.x), xa, a4); b4 = fma(vec4<f32>(wu.x), xb, b4); c4 = fma(vec4<f32>(wu.x), xc, c4); d4 = fma(vec4<f32>(wu.x), xd, d4);
                a5 = fma(vec4<f32>(wu.y), xa, a5); b5 = fma(vec4<f32>(wu.y), xb, b5); c5 = fma(vec4<f32>(wu.y), xc, c5); d5 = fma(vec4<f32>(wu.y), xd, d5);
                a6 = fma(vec4<f32>(wu.z), xa, a6); b6 = fma(vec4<f32>(wu.z), xb, b6); c6 = fma(vec4<f32>(wu.z), xc, c6); d6 = fma(vec4<f32>(wu.z), xd, d6);
                a7 = fma(vec4<f32>(wu.w), xa, a7); b7 = fma(vec4<f32>(wu.w), xb, b7); c7 = fma(vec4<f32>(wu.w), xc, c7); d7 = fma(vec4<f32>(wu.w), xd, d7);
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
            k = k + p.kw;
            row = row + rstep;
        }
        xc0 = xc0 + hw4;
    }
    if (t_raw >= total) { return; }
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

// direct_reg_s1 with 16 output channels per invocation (wid.z = block of 16, four packed 4-channel
// blocks ksize apart): four times the FMAs per x load of direct_reg_s1, for more than 8 output
// channels. Its 256 accumulators spill; the spills are plain stack traffic, cheaper than the
// per-lane storage loads they save (cifar10 LeNet forward on lavapipe: see direct_r16's doc).
@compute @workgroup_size(64)
fn direct_reg_s1_r16(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    let tiles_w = (p.wy + 15u) / 16u;
    let total = p.n * p.hy * tiles_w;
    let t_raw = flat(wid, nwg, lid);
    let lane = load_lane();
    if (lanes_done(t_raw >= total)) { return; }
    let t = min(t_raw, total - 1u);
    let ow0 = (t % tiles_w) * 16u;
    let oh = (t / tiles_w) % p.hy;
    let n = t / (tiles_w * p.hy);
    let m0 = wid.z * 16u;
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
    var a8 = vec4<f32>(0.0); var b8 = vec4<f32>(0.0); var c8 = vec4<f32>(0.0); var d8 = vec4<f32>(0.0);
    var a9 = vec4<f32>(0.0); var b9 = vec4<f32>(0.0); var c9 = vec4<f32>(0.0); var d9 = vec4<f32>(0.0);
    var a10 = vec4<f32>(0.0); var b10 = vec4<f32>(0.0); var c10 = vec4<f32>(0.0); var d10 = vec4<f32>(0.0);
    var a11 = vec4<f32>(0.0); var b11 = vec4<f32>(0.0); var c11 = vec4<f32>(0.0); var d11 = vec4<f32>(0.0);
    var a12 = vec4<f32>(0.0); var b12 = vec4<f32>(0.0); var c12 = vec4<f32>(0.0); var d12 = vec4<f32>(0.0);
    var a13 = vec4<f32>(0.0); var b13 = vec4<f32>(0.0); var c13 = vec4<f32>(0.0); var d13 = vec4<f32>(0.0);
    var a14 = vec4<f32>(0.0); var b14 = vec4<f32>(0.0); var c14 = vec4<f32>(0.0); var d14 = vec4<f32>(0.0);
    var a15 = vec4<f32>(0.0); var b15 = vec4<f32>(0.0); var c15 = vec4<f32>(0.0); var d15 = vec4<f32>(0.0);
    var k = wid.z * 4u * ksize;
    for (var c = 0u; c < p.cx; c = c + 1u) {
        var row = xc0;
        for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
            let rw = d1_row_weights4(k, lane);
            var xa = d1_x[row];
            var xb = d1_x[row + 1u];
            var xc = d1_x[row + 2u];
            var xd = d1_x[row + 3u];
            var e = d1_x[row + 4u];
            var i = row + 5u;
            var used = 0u;
            var kx = 0u;
            loop {
                let w = d1_tap_weights4(rw, k, kx);
                a0 = fma(vec4<f32>(w[0].x), xa, a0); b0 = fma(vec4<f32>(w[0].x), xb, b0); c0 = fma(vec4<f32>(w[0].x), xc, c0); d0 = fma(vec4<f32>(w[0].x), xd, d0);
                a1 = fma(vec4<f32>(w[0].y), xa, a1); b1 = fma(vec4<f32>(w[0].y), xb, b1); c1 = fma(vec4<f32>(w[0].y), xc, c1); d1 = fma(vec4<f32>(w[0].y), xd, d1);
                a2 = fma(vec4<f32>(w[0].z), xa, a2); b2 = fma(vec4<f32>(w[0].z), xb, b2); c2 = fma(vec4<f32>(w[0].z), xc, c2); d2 = fma(vec4<f32>(w[0].z), xd, d2);
                a3 = fma(vec4<f32>(w[0].w), xa, a3); b3 = fma(vec4<f32>(w[0].w), xb, b3); c3 = fma(vec4<f32>(w[0].w), xc, c3); d3 = fma(vec4<f32>(w[0].w), xd, d3);
                a4 = fma(vec4<f32>(w[1].x), xa, a4); b4 = fma(vec4<f32>(w[1].x), xb, b4); c4 = fma(vec4<f32>(w[1].x), xc, c4); d4 = fma(vec4<f32>(w[1].x), xd, d4);
                a5 = fma(vec4<f32>(w[1].y), xa, a5); b5 = fma(vec4<f32>(w[1].y), xb, b5); c5 = fma(vec4<f32>(w[1].y), xc, c5); d5 = fma(vec4<f32>(w[1].y), xd, d5);
                a6 = fma(vec4<f32>(w[1].z), xa, a6); b6 = fma(vec4<f32>(w[1].z), xb, b6); c6 = fma(vec4<f32>(w[1].z), xc, c6); d6 = fma(vec4<f32>(w[1].z), xd, d6);
                a7 = fma(vec4<f32>(w[1].w), xa, a7); b7 = fma(vec4<f32>(w[1].w), xb, b7); c7 = fma(vec4<f32>(w[1].w), xc, c7); d7 = fma(vec4<f32>(w[1].w), xd, d7);
                a8 = fma(vec4<f32>(w[2].x), xa, a8); b8 = fma(vec4<f32>(w[2].x), xb, b8); c8 = fma(vec4<f32>(w[2].x), xc, c8); d8 = fma(vec4<f32>(w[2].x), xd, d8);
                a9 = fma(vec4<f32>(w[2].y), xa, a9); b9 = fma(vec4<f32>(w[2].y), xb, b9); c9 = fma(vec4<f32>(w[2].y), xc, c9); d9 = fma(vec4<f32>(w[2].y), xd, d9);
                a10 = fma(vec4<f32>(w[2].z), xa, a10); b10 = fma(vec4<f32>(w[2].z), xb, b10); c10 = fma(vec4<f32>(w[2].z), xc, c10); d10 = fma(vec4<f32>(w[2].z), xd, d10);
                a11 = fma(vec4<f32>(w[2].w), xa, a11); b11 = fma(vec4<f32>(w[2].w), xb, b11); c11 = fma(vec4<f32>(w[2].w), xc, c11); d11 = fma(vec4<f32>(w[2].w), xd, d11);
                a12 = fma(vec4<f32>(w[3].x), xa, a12); b12 = fma(vec4<f32>(w[3].x), xb, b12); c12 = fma(vec4<f32>(w[3].x), xc, c12); d12 = fma(vec4<f32>(w[3].x), xd, d12);
                a13 = fma(vec4<f32>(w[3].y), xa, a13); b13 = fma(vec4<f32>(w[3].y), xb, b13); c13 = fma(vec4<f32>(w[3].y), xc, c13); d13 = fma(vec4<f32>(w[3].y), xd, d13);
                a14 = fma(vec4<f32>(w[3].z), xa, a14); b14 = fma(vec4<f32>(w[3].z), xb, b14); c14 = fma(vec4<f32>(w[3].z), xc, c14); d14 = fma(vec4<f32>(w[3].z), xd, d14);
                a15 = fma(vec4<f32>(w[3].w), xa, a15); b15 = fma(vec4<f32>(w[3].w), xb, b15); c15 = fma(vec4<f32>(w[3].w), xc, c15); d15 = fma(vec4<f32>(w[3].w), xd, d15);
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
            k = k + p.kw;
            row = row + rstep;
        }
        xc0 = xc0 + hw4;
    }
    if (t_raw >= total) { return; }
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
    d1_store(m0 + 8u, base + (m0 + 8u) * ohw, valid, a8, b8, c8, d8);
    d1_store(m0 + 9u, base + (m0 + 9u) * ohw, valid, a9, b9, c9, d9);
    d1_store(m0 + 10u, base + (m0 + 10u) * ohw, valid, a10, b10, c10, d10);
    d1_store(m0 + 11u, base + (m0 + 11u) * ohw, valid, a11, b11, c11, d11);
    d1_store(m0 + 12u, base + (m0 + 12u) * ohw, valid, a12, b12, c12, d12);
    d1_store(m0 + 13u, base + (m0 + 13u) * ohw, valid, a13, b13, c13, d13);
    d1_store(m0 + 14u, base + (m0 + 14u) * ohw, valid, a14, b14, c14, d14);
    d1_store(m0 + 15u, base + (m0 + 15u) * ohw, valid, a15, b15, c15, d15);
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
    d2_y[i] = epilogue4(qa, bias);
    if (valid > 4u) { d2_y[i + 1u] = epilogue4(qb, bias); }
    if (valid > 8u) { d2_y[i + 2u] = epilogue4(qc, bias); }
    if (valid > 12u) { d2_y[i + 3u] = epilogue4(qd, bias); }
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
    let total = p.n * p.hy * tiles_w;
    let t_raw = flat(wid, nwg, lid);
    let lane = load_lane();
    if (lanes_done(t_raw >= total)) { return; }
    let t = min(t_raw, total - 1u);
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
            let rw = d2_row_weights(krow, lane);
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
                    let w = d2_tap_weights(rw, krow, kx);
                    let wv = w[0];
                    let wu = w[1];
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
    if (t_raw >= total) { return; }
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

// direct_reg_s2 with 16 output channels per invocation (wid.z = block of 16): four times the FMAs
// per x load, for more than 8 output channels (see direct_reg_s1_r16).
@compute @workgroup_size(64)
fn direct_reg_s2_r16(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let tiles_w = (p.wy + 15u) / 16u;
    let total = p.n * p.hy * tiles_w;
    let t_raw = flat(wid, nwg, lid);
    let lane = load_lane();
    if (lanes_done(t_raw >= total)) { return; }
    let t = min(t_raw, total - 1u);
    let ow0 = (t % tiles_w) * 16u;
    let oh = (t / tiles_w) % p.hy;
    let n = t / (tiles_w * p.hy);
    let m0 = wid.z * 16u;
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
    var a8 = vec4<f32>(0.0); var b8 = vec4<f32>(0.0); var c8 = vec4<f32>(0.0); var d8 = vec4<f32>(0.0);
    var a9 = vec4<f32>(0.0); var b9 = vec4<f32>(0.0); var c9 = vec4<f32>(0.0); var d9 = vec4<f32>(0.0);
    var a10 = vec4<f32>(0.0); var b10 = vec4<f32>(0.0); var c10 = vec4<f32>(0.0); var d10 = vec4<f32>(0.0);
    var a11 = vec4<f32>(0.0); var b11 = vec4<f32>(0.0); var c11 = vec4<f32>(0.0); var d11 = vec4<f32>(0.0);
    var a12 = vec4<f32>(0.0); var b12 = vec4<f32>(0.0); var c12 = vec4<f32>(0.0); var d12 = vec4<f32>(0.0);
    var a13 = vec4<f32>(0.0); var b13 = vec4<f32>(0.0); var c13 = vec4<f32>(0.0); var d13 = vec4<f32>(0.0);
    var a14 = vec4<f32>(0.0); var b14 = vec4<f32>(0.0); var c14 = vec4<f32>(0.0); var d14 = vec4<f32>(0.0);
    var a15 = vec4<f32>(0.0); var b15 = vec4<f32>(0.0); var c15 = vec4<f32>(0.0); var d15 = vec4<f32>(0.0);
    var krow = wid.z * 4u * ksize;
    for (var c = 0u; c < p.cx; c = c + 1u) {
        var row = xc0;
        for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
            let rw = d2_row_weights4(krow, lane);
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
                    let w = d2_tap_weights4(rw, krow, kx);
                    a0 = fma(vec4<f32>(w[0].x), xa, a0); b0 = fma(vec4<f32>(w[0].x), xb, b0); c0 = fma(vec4<f32>(w[0].x), xc, c0); d0 = fma(vec4<f32>(w[0].x), xd, d0);
                    a1 = fma(vec4<f32>(w[0].y), xa, a1); b1 = fma(vec4<f32>(w[0].y), xb, b1); c1 = fma(vec4<f32>(w[0].y), xc, c1); d1 = fma(vec4<f32>(w[0].y), xd, d1);
                    a2 = fma(vec4<f32>(w[0].z), xa, a2); b2 = fma(vec4<f32>(w[0].z), xb, b2); c2 = fma(vec4<f32>(w[0].z), xc, c2); d2 = fma(vec4<f32>(w[0].z), xd, d2);
                    a3 = fma(vec4<f32>(w[0].w), xa, a3); b3 = fma(vec4<f32>(w[0].w), xb, b3); c3 = fma(vec4<f32>(w[0].w), xc, c3); d3 = fma(vec4<f32>(w[0].w), xd, d3);
                    a4 = fma(vec4<f32>(w[1].x), xa, a4); b4 = fma(vec4<f32>(w[1].x), xb, b4); c4 = fma(vec4<f32>(w[1].x), xc, c4); d4 = fma(vec4<f32>(w[1].x), xd, d4);
                    a5 = fma(vec4<f32>(w[1].y), xa, a5); b5 = fma(vec4<f32>(w[1].y), xb, b5); c5 = fma(vec4<f32>(w[1].y), xc, c5); d5 = fma(vec4<f32>(w[1].y), xd, d5);
                    a6 = fma(vec4<f32>(w[1].z), xa, a6); b6 = fma(vec4<f32>(w[1].z), xb, b6); c6 = fma(vec4<f32>(w[1].z), xc, c6); d6 = fma(vec4<f32>(w[1].z), xd, d6);
                    a7 = fma(vec4<f32>(w[1].w), xa, a7); b7 = fma(vec4<f32>(w[1].w), xb, b7); c7 = fma(vec4<f32>(w[1].w), xc, c7); d7 = fma(vec4<f32>(w[1].w), xd, d7);
                    a8 = fma(vec4<f32>(w[2].x), xa, a8); b8 = fma(vec4<f32>(w[2].x), xb, b8); c8 = fma(vec4<f32>(w[2].x), xc, c8); d8 = fma(vec4<f32>(w[2].x), xd, d8);
                    a9 = fma(vec4<f32>(w[2].y), xa, a9); b9 = fma(vec4<f32>(w[2].y), xb, b9); c9 = fma(vec4<f32>(w[2].y), xc, c9); d9 = fma(vec4<f32>(w[2].y), xd, d9);
                    a10 = fma(vec4<f32>(w[2].z), xa, a10); b10 = fma(vec4<f32>(w[2].z), xb, b10); c10 = fma(vec4<f32>(w[2].z), xc, c10); d10 = fma(vec4<f32>(w[2].z), xd, d10);
                    a11 = fma(vec4<f32>(w[2].w), xa, a11); b11 = fma(vec4<f32>(w[2].w), xb, b11); c11 = fma(vec4<f32>(w[2].w), xc, c11); d11 = fma(vec4<f32>(w[2].w), xd, d11);
                    a12 = fma(vec4<f32>(w[3].x), xa, a12); b12 = fma(vec4<f32>(w[3].x), xb, b12); c12 = fma(vec4<f32>(w[3].x), xc, c12); d12 = fma(vec4<f32>(w[3].x), xd, d12);
                    a13 = fma(vec4<f32>(w[3].y), xa, a13); b13 = fma(vec4<f32>(w[3].y), xb, b13); c13 = fma(vec4<f32>(w[3].y), xc, c13); d13 = fma(vec4<f32>(w[3].y), xd, d13);
                    a14 = fma(vec4<f32>(w[3].z), xa, a14); b14 = fma(vec4<f32>(w[3].z), xb, b14); c14 = fma(vec4<f32>(w[3].z), xc, c14); d14 = fma(vec4<f32>(w[3].z), xd, d14);
                    a15 = fma(vec4<f32>(w[3].w), xa, a15); b15 = fma(vec4<f32>(w[3].w), xb, b15); c15 = fma(vec4<f32>(w[3].w), xc, c15); d15 = fma(vec4<f32>(w[3].w), xd, d15);
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
    if (t_raw >= total) { return; }
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
    d2_store(m0 + 8u, base + (m0 + 8u) * ohw, valid, a8, b8, c8, d8);
    d2_store(m0 + 9u, base + (m0 + 9u) * ohw, valid, a9, b9, c9, d9);
    d2_store(m0 + 10u, base + (m0 + 10u) * ohw, valid, a10, b10, c10, d10);
    d2_store(m0 + 11u, base + (m0 + 11u) * ohw, valid, a11, b11, c11, d11);
    d2_store(m0 + 12u, base + (m0 + 12u) * ohw, valid, a12, b12, c12, d12);
    d2_store(m0 + 13u, base + (m0 + 13u) * ohw, valid, a13, b13, c13, d13);
    d2_store(m0 + 14u, base + (m0 + 14u) * ohw, valid, a14, b14, c14, d14);
    d2_store(m0 + 15u, base + (m0 + 15u) * ohw, valid, a15, b15, c15, d15);
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
        if (j < valid) { tr_y[base + j * p.sw] = epilogue(lo[j], bias); }
        if (j + 4u < valid) { tr_y[base + (j + 4u) * p.sw] = epilogue(hi[j], bias); }
    }
}

// The 8 output channels' weights (clamped into range) of tap k for source channel c.
fn tr_w8(c: u32, m0: u32, k: u32) -> array<vec4<f32>, 2> {
    let kk = p.kh * p.kw;
    let base = min(c, p.cx - 1u) * p.cy * kk + k;
    var lo = vec4<f32>(0.0);
    var hi = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j = j + 1u) {
        lo[j] = tr_w[base + min(m0 + j, p.cy - 1u) * kk];
        hi[j] = tr_w[base + min(m0 + 4u + j, p.cy - 1u) * kk];
    }
    return array<vec4<f32>, 2>(lo, hi);
}

// Invocation: 8 output channels (wid.z = phase * blocks of 8 + block) x 8 output columns of one
// phase row. Source channels go in runs of 8; the weights of a run come through the load helpers
// (conv2d_loads.wgsl: each channel's 8 loaded where used; conv2d_subgroup.wgsl: lane l loads
// channel cb + l's and subgroupShuffle hands them round, so a lane loads the 8 x values and no
// weights for 64 multiply-adds). Lanes without an output of their own (past the last tile, or a
// phase row or column past the edge) run on clamped indices without storing, so that a
// subgroup's shuffles stay defined.
@compute @workgroup_size(64)
fn transposed_reg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let mblocks = (p.cy + 7u) / 8u;
    let phase = wid.z / mblocks;
    let m0 = (wid.z % mblocks) * 8u;
    let phh = phase / p.sw;
    let phw = phase % p.sw;
    let rows = (p.hy + p.sh - 1u) / p.sh;
    let cols = (p.wy + p.sw - 1u) / p.sw;
    let tiles_w = (cols + 7u) / 8u;
    let total = p.n * rows * tiles_w;
    let t_raw = flat(wid, nwg, lid);
    let t = min(t_raw, total - 1u);
    let c0 = (t % tiles_w) * 8u;
    let r = (t / tiles_w) % rows;
    let n = t / (tiles_w * rows);
    let oh = phh + r * p.sh;
    let ow0 = phw + c0 * p.sw;
    let live = t_raw < total && oh < p.hy && ow0 < p.wy;
    let lane = load_lane();
    if (lanes_done(!live)) { return; }
    let kk = p.kh * p.kw;
    let hw = p.hx * p.wx;
    var a0 = vec4<f32>(0.0); var b0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0); var b1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0); var b2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0); var b3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0); var b4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0); var b5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0); var b6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0); var b7 = vec4<f32>(0.0);
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
            let k = ky * p.kw + kx;
            for (var cb = 0u; cb < p.cx; cb = cb + 8u) {
                let run = tr_run_weights(cb, lane, m0, k);
                let cend = min(8u, p.cx - cb);
                for (var j = 0u; j < cend; j = j + 1u) {
                    let xa = vec4<f32>(tr_x[i], tr_x[i + 1u], tr_x[i + 2u], tr_x[i + 3u]);
                    let xb = vec4<f32>(tr_x[i + 4u], tr_x[i + 5u], tr_x[i + 6u], tr_x[i + 7u]);
                    let w = tr_channel_weights(run, cb, j, m0, k);
                    let v = w[0];
                    let u = w[1];
                    a0 = fma(vec4<f32>(v.x), xa, a0); b0 = fma(vec4<f32>(v.x), xb, b0);
                    a1 = fma(vec4<f32>(v.y), xa, a1); b1 = fma(vec4<f32>(v.y), xb, b1);
                    a2 = fma(vec4<f32>(v.z), xa, a2); b2 = fma(vec4<f32>(v.z), xb, b2);
                    a3 = fma(vec4<f32>(v.w), xa, a3); b3 = fma(vec4<f32>(v.w), xb, b3);
                    a4 = fma(vec4<f32>(u.x), xa, a4); b4 = fma(vec4<f32>(u.x), xb, b4);
                    a5 = fma(vec4<f32>(u.y), xa, a5); b5 = fma(vec4<f32>(u.y), xb, b5);
                    a6 = fma(vec4<f32>(u.z), xa, a6); b6 = fma(vec4<f32>(u.z), xb, b6);
                    a7 = fma(vec4<f32>(u.w), xa, a7); b7 = fma(vec4<f32>(u.w), xb, b7);
                    i = i + hw;
                }
            }
        }
    }
    if (!live) { return; }
    let ohw = p.hy * p.wy;
    let valid = min(8u, (p.wy - ow0 + p.sw - 1u) / p.sw);
    let base = n * p.cy * ohw + oh * p.wy + ow0;
    tr_store(m0, base + m0 * ohw, valid, a0, b0);
    tr_store(m0 + 1u, base + (m0 + 1u) * ohw, valid, a1, b1);
    tr_store(m0 + 2u, base + (m0 + 2u) * ohw, valid, a2, b2);
    tr_store(m0 + 3u, base + (m0 + 3u) * ohw, valid, a3, b3);
    tr_store(m0 + 4u, base + (m0 + 4u) * ohw, valid, a4, b4);
    tr_store(m0 + 5u, base + (m0 + 5u) * ohw, valid, a5, b5);
    tr_store(m0 + 6u, base + (m0 + 6u) * ohw, valid, a6, b6);
    tr_store(m0 + 7u, base + (m0 + 7u) * ohw, valid, a7, b7);
}

// transposed_reg with 16 output channels per invocation (wid.z = phase * blocks of 16 + block):
// twice the multiply-adds per x value loaded, for more than 8 output channels.
@compute @workgroup_size(64)
fn transposed_reg16(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let mblocks = (p.cy + 15u) / 16u;
    let phase = wid.z / mblocks;
    let m0 = (wid.z % mblocks) * 16u;
    let phh = phase / p.sw;
    let phw = phase % p.sw;
    let rows = (p.hy + p.sh - 1u) / p.sh;
    let cols = (p.wy + p.sw - 1u) / p.sw;
    let tiles_w = (cols + 7u) / 8u;
    let total = p.n * rows * tiles_w;
    let t_raw = flat(wid, nwg, lid);
    let t = min(t_raw, total - 1u);
    let c0 = (t % tiles_w) * 8u;
    let r = (t / tiles_w) % rows;
    let n = t / (tiles_w * rows);
    let oh = phh + r * p.sh;
    let ow0 = phw + c0 * p.sw;
    let live = t_raw < total && oh < p.hy && ow0 < p.wy;
    let lane = load_lane();
    if (lanes_done(!live)) { return; }
    let kk = p.kh * p.kw;
    let hw = p.hx * p.wx;
    var a0 = vec4<f32>(0.0); var b0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0); var b1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0); var b2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0); var b3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0); var b4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0); var b5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0); var b6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0); var b7 = vec4<f32>(0.0);
    var a8 = vec4<f32>(0.0); var b8 = vec4<f32>(0.0);
    var a9 = vec4<f32>(0.0); var b9 = vec4<f32>(0.0);
    var a10 = vec4<f32>(0.0); var b10 = vec4<f32>(0.0);
    var a11 = vec4<f32>(0.0); var b11 = vec4<f32>(0.0);
    var a12 = vec4<f32>(0.0); var b12 = vec4<f32>(0.0);
    var a13 = vec4<f32>(0.0); var b13 = vec4<f32>(0.0);
    var a14 = vec4<f32>(0.0); var b14 = vec4<f32>(0.0);
    var a15 = vec4<f32>(0.0); var b15 = vec4<f32>(0.0);
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
            let k = ky * p.kw + kx;
            for (var cb = 0u; cb < p.cx; cb = cb + 8u) {
                let run = tr_run_weights16(cb, lane, m0, k);
                let cend = min(8u, p.cx - cb);
                for (var j = 0u; j < cend; j = j + 1u) {
                    let xa = vec4<f32>(tr_x[i], tr_x[i + 1u], tr_x[i + 2u], tr_x[i + 3u]);
                    let xb = vec4<f32>(tr_x[i + 4u], tr_x[i + 5u], tr_x[i + 6u], tr_x[i + 7u]);
                    let w = tr_channel_weights16(run, cb, j, m0, k);
                    a0 = fma(vec4<f32>(w[0].x), xa, a0); b0 = fma(vec4<f32>(w[0].x), xb, b0);
                    a1 = fma(vec4<f32>(w[0].y), xa, a1); b1 = fma(vec4<f32>(w[0].y), xb, b1);
                    a2 = fma(vec4<f32>(w[0].z), xa, a2); b2 = fma(vec4<f32>(w[0].z), xb, b2);
                    a3 = fma(vec4<f32>(w[0].w), xa, a3); b3 = fma(vec4<f32>(w[0].w), xb, b3);
                    a4 = fma(vec4<f32>(w[1].x), xa, a4); b4 = fma(vec4<f32>(w[1].x), xb, b4);
                    a5 = fma(vec4<f32>(w[1].y), xa, a5); b5 = fma(vec4<f32>(w[1].y), xb, b5);
                    a6 = fma(vec4<f32>(w[1].z), xa, a6); b6 = fma(vec4<f32>(w[1].z), xb, b6);
                    a7 = fma(vec4<f32>(w[1].w), xa, a7); b7 = fma(vec4<f32>(w[1].w), xb, b7);
                    a8 = fma(vec4<f32>(w[2].x), xa, a8); b8 = fma(vec4<f32>(w[2].x), xb, b8);
                    a9 = fma(vec4<f32>(w[2].y), xa, a9); b9 = fma(vec4<f32>(w[2].y), xb, b9);
                    a10 = fma(vec4<f32>(w[2].z), xa, a10); b10 = fma(vec4<f32>(w[2].z), xb, b10);
                    a11 = fma(vec4<f32>(w[2].w), xa, a11); b11 = fma(vec4<f32>(w[2].w), xb, b11);
                    a12 = fma(vec4<f32>(w[3].x), xa, a12); b12 = fma(vec4<f32>(w[3].x), xb, b12);
                    a13 = fma(vec4<f32>(w[3].y), xa, a13); b13 = fma(vec4<f32>(w[3].y), xb, b13);
                    a14 = fma(vec4<f32>(w[3].z), xa, a14); b14 = fma(vec4<f32>(w[3].z), xb, b14);
                    a15 = fma(vec4<f32>(w[3].w), xa, a15); b15 = fma(vec4<f32>(w[3].w), xb, b15);
                    i = i + hw;
                }
            }
        }
    }
    if (!live) { return; }
    let ohw = p.hy * p.wy;
    let valid = min(8u, (p.wy - ow0 + p.sw - 1u) / p.sw);
    let base = n * p.cy * ohw + oh * p.wy + ow0;
    tr_store(m0 + 0u, base + (m0 + 0u) * ohw, valid, a0, b0);
    tr_store(m0 + 1u, base + (m0 + 1u) * ohw, valid, a1, b1);
    tr_store(m0 + 2u, base + (m0 + 2u) * ohw, valid, a2, b2);
    tr_store(m0 + 3u, base + (m0 + 3u) * ohw, valid, a3, b3);
    tr_store(m0 + 4u, base + (m0 + 4u) * ohw, valid, a4, b4);
    tr_store(m0 + 5u, base + (m0 + 5u) * ohw, valid, a5, b5);
    tr_store(m0 + 6u, base + (m0 + 6u) * ohw, valid, a6, b6);
    tr_store(m0 + 7u, base + (m0 + 7u) * ohw, valid, a7, b7);
    tr_store(m0 + 8u, base + (m0 + 8u) * ohw, valid, a8, b8);
    tr_store(m0 + 9u, base + (m0 + 9u) * ohw, valid, a9, b9);
    tr_store(m0 + 10u, base + (m0 + 10u) * ohw, valid, a10, b10);
    tr_store(m0 + 11u, base + (m0 + 11u) * ohw, valid, a11, b11);
    tr_store(m0 + 12u, base + (m0 + 12u) * ohw, valid, a12, b12);
    tr_store(m0 + 13u, base + (m0 + 13u) * ohw, valid, a13, b13);
    tr_store(m0 + 14u, base + (m0 + 14u) * ohw, valid, a14, b14);
    tr_store(m0 + 15u, base + (m0 + 15u) * ohw, valid, a15, b15);
}

// ---------------------------------------------------------------------------------------------
// Transposed map with a 4x4 kernel at stride 2, dilation 1 (the DCGAN / Bergmann decoder layer,
// and the backward-data of its 4x4 stride-2 conv), for CPU adapters. Work in q = o + p: output
// rows q = 2Q and 2Q + 1 take source rows Q and Q - 1 only (tap rows r and r + 2 for q = 2Q + r),
// and the same along columns. So one invocation computes all four output phases of 8 source
// columns at once, 8 output channels x 2 rows x 16 columns, from two rows of 12 source values
// loaded as three aligned vec4s each: 6 vec4 loads of x per source channel for 1,024
// multiply-adds, where transposed_reg's phase-by-phase scalar loads take 128 for the same work.
// x is the padded copy: source row Q - 1 at padded row Q - 1 + pad_top, source column C - 1 at
// padded column C - 1 + pad_left, which the host makes a multiple of 4 for the first C of every
// block. Weights [cx, cy, 4, 4]: one output channel's 16 taps of a source channel are 4 vec4s.

@group(0) @binding(1) var<storage, read> u4_x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> u4_w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> u4_b: array<f32>;
@group(0) @binding(4) var<storage, read_write> u4_y: array<f32>;

// One output channel's 32 sums: e<r><b><l|h> is q-row 2Q + r, q-columns 2(C0 + j) + b for
// j = 0..3 (l) and 4..7 (h).
struct U4Block {
    e00l: vec4<f32>, e00h: vec4<f32>, e01l: vec4<f32>, e01h: vec4<f32>,
    e10l: vec4<f32>, e10h: vec4<f32>, e11l: vec4<f32>, e11h: vec4<f32>,
}

// A source channel's window: s = row Q - 1, t = row Q; <0> = columns C0 - 1 + j, <1> = C0 + j.
struct U4Window {
    s0l: vec4<f32>, s0h: vec4<f32>, s1l: vec4<f32>, s1h: vec4<f32>,
    t0l: vec4<f32>, t0h: vec4<f32>, t1l: vec4<f32>, t1h: vec4<f32>,
}

fn u4_window(i: u32, wx4: u32) -> U4Window {
    let a = u4_x[i]; let b = u4_x[i + 1u]; let c = u4_x[i + 2u];
    let d = u4_x[i + wx4]; let e = u4_x[i + wx4 + 1u]; let f = u4_x[i + wx4 + 2u];
    return U4Window(a, b, vec4<f32>(a.yzw, b.x), vec4<f32>(b.yzw, c.x),
                    d, e, vec4<f32>(d.yzw, e.x), vec4<f32>(e.yzw, f.x));
}

// Adds one source channel: w[ky] holds taps (ky, 0..3).
fn u4_accumulate(a: U4Block, w: array<vec4<f32>, 4>, x: U4Window) -> U4Block {
    var o = a;
    o.e00l = fma(vec4<f32>(w[2u].z), x.s0l, fma(vec4<f32>(w[2u].x), x.s1l, fma(vec4<f32>(w[0u].z), x.t0l, fma(vec4<f32>(w[0u].x), x.t1l, o.e00l))));
    o.e00h = fma(vec4<f32>(w[2u].z), x.s0h, fma(vec4<f32>(w[2u].x), x.s1h, fma(vec4<f32>(w[0u].z), x.t0h, fma(vec4<f32>(w[0u].x), x.t1h, o.e00h))));
    o.e01l = fma(vec4<f32>(w[2u].w), x.s0l, fma(vec4<f32>(w[2u].y), x.s1l, fma(vec4<f32>(w[0u].w), x.t0l, fma(vec4<f32>(w[0u].y), x.t1l, o.e01l))));
    o.e01h = fma(vec4<f32>(w[2u].w), x.s0h, fma(vec4<f32>(w[2u].y), x.s1h, fma(vec4<f32>(w[0u].w), x.t0h, fma(vec4<f32>(w[0u].y), x.t1h, o.e01h))));
    o.e10l = fma(vec4<f32>(w[3u].z), x.s0l, fma(vec4<f32>(w[3u].x), x.s1l, fma(vec4<f32>(w[1u].z), x.t0l, fma(vec4<f32>(w[1u].x), x.t1l, o.e10l))));
    o.e10h = fma(vec4<f32>(w[3u].z), x.s0h, fma(vec4<f32>(w[3u].x), x.s1h, fma(vec4<f32>(w[1u].z), x.t0h, fma(vec4<f32>(w[1u].x), x.t1h, o.e10h))));
    o.e11l = fma(vec4<f32>(w[3u].w), x.s0l, fma(vec4<f32>(w[3u].y), x.s1l, fma(vec4<f32>(w[1u].w), x.t0l, fma(vec4<f32>(w[1u].y), x.t1l, o.e11l))));
    o.e11h = fma(vec4<f32>(w[3u].w), x.s0h, fma(vec4<f32>(w[3u].y), x.s1h, fma(vec4<f32>(w[1u].w), x.t0h, fma(vec4<f32>(w[1u].y), x.t1h, o.e11h))));
    return o;
}

// Stores output channel m's block (bias and activation applied), skipping what lies outside y.
fn u4_store(m: u32, n: u32, rq: u32, cq: u32, a: U4Block) {
    if (m >= p.cy) { return; }
    var bias = 0.0;
    if (p.has_bias != 0u) { bias = u4_b[m]; }
    u4_store_row(m, n, 2u * rq, cq, bias, a.e00l, a.e00h, a.e01l, a.e01h);
    u4_store_row(m, n, 2u * rq + 1u, cq, bias, a.e10l, a.e10h, a.e11l, a.e11h);
}

fn u4_store_row(m: u32, n: u32, q: u32, cq: u32, bias: f32, el: vec4<f32>, eh: vec4<f32>, ol: vec4<f32>, oh: vec4<f32>) {
    if (q < p.ph || q - p.ph >= p.hy) { return; }
    let row = ((n * p.cy + m) * p.hy + q - p.ph) * p.wy;
    for (var j = 0u; j < 4u; j = j + 1u) {
        let c = 2u * (cq + j);
        if (c >= p.pw && c - p.pw < p.wy) { u4_y[row + c - p.pw] = epilogue(el[j], bias); }
        if (c + 1u >= p.pw && c + 1u - p.pw < p.wy) { u4_y[row + c + 1u - p.pw] = epilogue(ol[j], bias); }
        let d = c + 8u;
        if (d >= p.pw && d - p.pw < p.wy) { u4_y[row + d - p.pw] = epilogue(eh[j], bias); }
        if (d + 1u >= p.pw && d + 1u - p.pw < p.wy) { u4_y[row + d + 1u - p.pw] = epilogue(oh[j], bias); }
    }
}

// Invocation: 8 output channels (wid.z = block) x q-rows 2Q, 2Q + 1 x the q-columns of source
// columns C0..C0+8. Lanes past the end run on clamped indices without storing, so that a
// subgroup's shuffles stay defined (see the load helpers).
@compute @workgroup_size(64)
fn transposed_s2k4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let q0h = p.ph / 2u;
    let q0w = p.pw / 2u;
    let rows = (p.hy + p.ph - 1u) / 2u + 1u - q0h;
    let cols = (p.wy + p.pw - 1u) / 2u + 1u - q0w;
    let tiles_w = (cols + 7u) / 8u;
    let total = p.n * rows * tiles_w;
    let t_raw = flat(wid, nwg, lid);
    let lane = load_lane();
    if (lanes_done(t_raw >= total)) { return; }
    let t = min(t_raw, total - 1u);
    let cq = q0w + (t % tiles_w) * 8u;
    let rq = q0h + (t / tiles_w) % rows;
    let n = t / (tiles_w * rows);
    let m0 = wid.z * 8u;
    let wx4 = p.wx / 4u;
    let plane4 = p.hx * wx4;
    var i = n * p.cx * plane4 + (rq + p.pad_top - 1u) * wx4 + (cq + p.pad_left - 1u) / 4u;
    var a0 = U4Block();
    var a1 = U4Block();
    var a2 = U4Block();
    var a3 = U4Block();
    var a4 = U4Block();
    var a5 = U4Block();
    var a6 = U4Block();
    var a7 = U4Block();
    for (var c = 0u; c < p.cx; c = c + 1u) {
        let win = u4_window(i, wx4);
        let wr = u4_channel_weights(c, m0, lane);
        a0 = u4_accumulate(a0, u4_weights(wr, c, m0, 0u), win);
        a1 = u4_accumulate(a1, u4_weights(wr, c, m0, 1u), win);
        a2 = u4_accumulate(a2, u4_weights(wr, c, m0, 2u), win);
        a3 = u4_accumulate(a3, u4_weights(wr, c, m0, 3u), win);
        a4 = u4_accumulate(a4, u4_weights(wr, c, m0, 4u), win);
        a5 = u4_accumulate(a5, u4_weights(wr, c, m0, 5u), win);
        a6 = u4_accumulate(a6, u4_weights(wr, c, m0, 6u), win);
        a7 = u4_accumulate(a7, u4_weights(wr, c, m0, 7u), win);
        i = i + plane4;
    }
    if (t_raw >= total) { return; }
    u4_store(m0 + 0u, n, rq, cq, a0);
    u4_store(m0 + 1u, n, rq, cq, a1);
    u4_store(m0 + 2u, n, rq, cq, a2);
    u4_store(m0 + 3u, n, rq, cq, a3);
    u4_store(m0 + 4u, n, rq, cq, a4);
    u4_store(m0 + 5u, n, rq, cq, a5);
    u4_store(m0 + 6u, n, rq, cq, a6);
    u4_store(m0 + 7u, n, rq, cq, a7);
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
    var r = row_at(split * p.chunk);
    for (var g = split * p.chunk; g < rows_end; g = g + 1u) {
        let n = r.n;
        let oh = r.oh;
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
        row_next(&r);
    }
    wg_store(m0, k0, ksize, a0, b0, split);
    wg_store(m0 + 1u, k0, ksize, a1, b1, split);
    wg_store(m0 + 2u, k0, ksize, a2, b2, split);
    wg_store(m0 + 3u, k0, ksize, a3, b3, split);
}

// ---------------------------------------------------------------------------------------------
// Weight gradient partials with vec4 loads along the row (CPU adapters), for unit width stride
// and dilation. wgrad_reg's 12 scalar loads per 32 FMAs made it the slowest conv kernel on
// lavapipe; here x rows (the padded copy, width a multiple of 4) and gy rows (padded with zeros
// to a multiple of 4, so columns past wy add nothing) are read 4 columns at a time.
//   wgrad_reg_s1: invocation = 4 output channels x taps kx0..kx0+3 of one (c, ky). For 4 columns
//     ow0..ow0+3 the taps read x[ow0 + kx0 .. ow0 + kx0 + 6], a two-vec4 window that slides one
//     vec4 per step: 1 x load and 4 gy loads per 64 FMAs. Taps past kw are computed and dropped.
//   wgrad_reg_s1_t8: the same with 8 taps per invocation, for kernels wider than 4.
//   wgrad_reg_k1: 1x1 kernels, invocation = 4 output channels x 4 input channels: 4 x and 4 gy
//     loads per 64 FMAs (dot products over the 4 columns).
// wid.x * 64 + lid: the tap block; wid.y: the split of the batch*rows reduction; wid.z: the
// block of 4 output channels. part: [splits, cy, cx*kh*kw], as wgrad_reg.

@group(0) @binding(1) var<storage, read> w4_x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w4_gy: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> w4_part: array<f32>;

// Destination row g = n * hy + oh of the weight-gradient row loops, stepped by one without
// dividing: lavapipe divides lane by lane, and on narrow rows (LeNet's 8 and 16) the per-row
// divisions cost more than the row's multiply-adds.
struct Row { n: u32, oh: u32 }

fn row_at(g: u32) -> Row {
    return Row(g / p.hy, g % p.hy);
}

fn row_next(r: ptr<function, Row>) {
    (*r).oh = (*r).oh + 1u;
    if ((*r).oh == p.hy) {
        (*r).oh = 0u;
        (*r).n = (*r).n + 1u;
    }
}

// Row of gy [n, cy, hy, wy] (wy a multiple of 4) of output channel m (clamped into range; the
// store drops channels past cy) at destination row g = n * hy + oh, in vec4 units.
fn w4_gy_row(m: u32, r: Row) -> u32 {
    return ((r.n * p.cy + min(m, p.cy - 1u)) * p.hy + r.oh) * (p.wy / 4u);
}

// Stores split `split`'s partial sums of taps k0 + 0..3 (those below `end`) of output channel m.
fn w4_store(split: u32, m: u32, k0: u32, end: u32, v: vec4<f32>) {
    if (m >= p.cy) { return; }
    let base = (split * p.cy + m) * p.cx * p.kh * p.kw + k0;
    for (var j = 0u; j < 4u; j = j + 1u) {
        if (k0 + j < end) { w4_part[base + j] = v[j]; }
    }
}

// Invocation t's block of `taps` taps of wgrad_reg_s1(_t8): (first kx, ky, c).
fn w4_tap_block(t: u32, taps: u32) -> vec3<u32> {
    let kb = (p.kw + taps - 1u) / taps;
    return vec3<u32>((t % kb) * taps, (t / kb) % p.kh, t / (kb * p.kh));
}

// Row of the padded x read by tap (c, ky, kx0) at destination row g = n * hy + oh, in vec4 units.
fn w4_x_row(r: Row, c: u32, ky: u32, kx0: u32) -> u32 {
    return (((r.n * p.cx + c) * p.hx + r.oh * p.sh + ky * p.dh) * p.wx + kx0) / 4u;
}

@compute @workgroup_size(64)
fn wgrad_reg_s1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = wid.x * 64u + lid;
    if (t >= p.cx * p.kh * ((p.kw + 3u) / 4u)) { return; }
    let blk = w4_tap_block(t, 4u);
    let kx0 = blk.x;
    let ky = blk.y;
    let c = blk.z;
    let m0 = wid.z * 4u;
    let q_end = p.wy / 4u;
    var a0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0); var a2 = vec4<f32>(0.0); var a3 = vec4<f32>(0.0);
    let rows_end = min(p.n * p.hy, (wid.y + 1u) * p.chunk);
    var r = row_at(wid.y * p.chunk);
    for (var g = wid.y * p.chunk; g < rows_end; g = g + 1u) {
        let xrow = w4_x_row(r, c, ky, kx0);
        let g0 = w4_gy_row(m0, r);
        let g1 = w4_gy_row(m0 + 1u, r);
        let g2 = w4_gy_row(m0 + 2u, r);
        let g3 = w4_gy_row(m0 + 3u, r);
        var xa = w4_x[xrow];
        for (var q = 0u; q < q_end; q = q + 1u) {
            let xb = w4_x[xrow + q + 1u];
            // Taps kx0..kx0+3 of column ow0 + j read xa/xb shifted by j.
            let x0 = xa;
            let x1 = vec4<f32>(xa.yzw, xb.x);
            let x2 = vec4<f32>(xa.zw, xb.xy);
            let x3 = vec4<f32>(xa.w, xb.xyz);
            let v0 = w4_gy[g0 + q];
            let v1 = w4_gy[g1 + q];
            let v2 = w4_gy[g2 + q];
            let v3 = w4_gy[g3 + q];
            a0 = fma(vec4<f32>(v0.x), x0, a0); a0 = fma(vec4<f32>(v0.y), x1, a0);
            a0 = fma(vec4<f32>(v0.z), x2, a0); a0 = fma(vec4<f32>(v0.w), x3, a0);
            a1 = fma(vec4<f32>(v1.x), x0, a1); a1 = fma(vec4<f32>(v1.y), x1, a1);
            a1 = fma(vec4<f32>(v1.z), x2, a1); a1 = fma(vec4<f32>(v1.w), x3, a1);
            a2 = fma(vec4<f32>(v2.x), x0, a2); a2 = fma(vec4<f32>(v2.y), x1, a2);
            a2 = fma(vec4<f32>(v2.z), x2, a2); a2 = fma(vec4<f32>(v2.w), x3, a2);
            a3 = fma(vec4<f32>(v3.x), x0, a3); a3 = fma(vec4<f32>(v3.y), x1, a3);
            a3 = fma(vec4<f32>(v3.z), x2, a3); a3 = fma(vec4<f32>(v3.w), x3, a3);
            xa = xb;
        }
        row_next(&r);
    }
    let k0 = (c * p.kh + ky) * p.kw + kx0;
    let end = k0 - kx0 + p.kw;
    w4_store(wid.y, m0, k0, end, a0);
    w4_store(wid.y, m0 + 1u, k0, end, a1);
    w4_store(wid.y, m0 + 2u, k0, end, a2);
    w4_store(wid.y, m0 + 3u, k0, end, a3);
}

// wgrad_reg_s1 with taps kx0..kx0+7 (kernels wider than 4): the same 5 loads per column block feed
// 128 FMAs, the window is three vec4s. Wider rows waste fewer of them (5 of 8 taps used at kw = 5,
// against 5 of 8 in two 4-tap blocks that cost twice the loads).
@compute @workgroup_size(64)
fn wgrad_reg_s1_t8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = wid.x * 64u + lid;
    if (t >= p.cx * p.kh * ((p.kw + 7u) / 8u)) { return; }
    let blk = w4_tap_block(t, 8u);
    let kx0 = blk.x;
    let ky = blk.y;
    let c = blk.z;
    let m0 = wid.z * 4u;
    let q_end = p.wy / 4u;
    var a0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0); var a2 = vec4<f32>(0.0); var a3 = vec4<f32>(0.0);
    var b0 = vec4<f32>(0.0); var b1 = vec4<f32>(0.0); var b2 = vec4<f32>(0.0); var b3 = vec4<f32>(0.0);
    let rows_end = min(p.n * p.hy, (wid.y + 1u) * p.chunk);
    var r = row_at(wid.y * p.chunk);
    for (var g = wid.y * p.chunk; g < rows_end; g = g + 1u) {
        let xrow = w4_x_row(r, c, ky, kx0);
        let g0 = w4_gy_row(m0, r);
        let g1 = w4_gy_row(m0 + 1u, r);
        let g2 = w4_gy_row(m0 + 2u, r);
        let g3 = w4_gy_row(m0 + 3u, r);
        var xa = w4_x[xrow];
        var xb = w4_x[xrow + 1u];
        for (var q = 0u; q < q_end; q = q + 1u) {
            let xc = w4_x[xrow + q + 2u];
            // Column ow0 + j: taps 0..3 read x[j..j+3], taps 4..7 read x[j+4..j+7] of the window.
            let l1 = vec4<f32>(xa.yzw, xb.x);
            let l2 = vec4<f32>(xa.zw, xb.xy);
            let l3 = vec4<f32>(xa.w, xb.xyz);
            let h1 = vec4<f32>(xb.yzw, xc.x);
            let h2 = vec4<f32>(xb.zw, xc.xy);
            let h3 = vec4<f32>(xb.w, xc.xyz);
            let v0 = w4_gy[g0 + q];
            let v1 = w4_gy[g1 + q];
            let v2 = w4_gy[g2 + q];
            let v3 = w4_gy[g3 + q];
            a0 = fma(vec4<f32>(v0.x), xa, a0); a0 = fma(vec4<f32>(v0.y), l1, a0); a0 = fma(vec4<f32>(v0.z), l2, a0); a0 = fma(vec4<f32>(v0.w), l3, a0);
            b0 = fma(vec4<f32>(v0.x), xb, b0); b0 = fma(vec4<f32>(v0.y), h1, b0); b0 = fma(vec4<f32>(v0.z), h2, b0); b0 = fma(vec4<f32>(v0.w), h3, b0);
            a1 = fma(vec4<f32>(v1.x), xa, a1); a1 = fma(vec4<f32>(v1.y), l1, a1); a1 = fma(vec4<f32>(v1.z), l2, a1); a1 = fma(vec4<f32>(v1.w), l3, a1);
            b1 = fma(vec4<f32>(v1.x), xb, b1); b1 = fma(vec4<f32>(v1.y), h1, b1); b1 = fma(vec4<f32>(v1.z), h2, b1); b1 = fma(vec4<f32>(v1.w), h3, b1);
            a2 = fma(vec4<f32>(v2.x), xa, a2); a2 = fma(vec4<f32>(v2.y), l1, a2); a2 = fma(vec4<f32>(v2.z), l2, a2); a2 = fma(vec4<f32>(v2.w), l3, a2);
            b2 = fma(vec4<f32>(v2.x), xb, b2); b2 = fma(vec4<f32>(v2.y), h1, b2); b2 = fma(vec4<f32>(v2.z), h2, b2); b2 = fma(vec4<f32>(v2.w), h3, b2);
            a3 = fma(vec4<f32>(v3.x), xa, a3); a3 = fma(vec4<f32>(v3.y), l1, a3); a3 = fma(vec4<f32>(v3.z), l2, a3); a3 = fma(vec4<f32>(v3.w), l3, a3);
            b3 = fma(vec4<f32>(v3.x), xb, b3); b3 = fma(vec4<f32>(v3.y), h1, b3); b3 = fma(vec4<f32>(v3.z), h2, b3); b3 = fma(vec4<f32>(v3.w), h3, b3);
            xa = xb;
            xb = xc;
        }
        row_next(&r);
    }
    let k0 = (c * p.kh + ky) * p.kw + kx0;
    let end = k0 - kx0 + p.kw;
    w4_store(wid.y, m0, k0, end, a0);
    w4_store(wid.y, m0, k0 + 4u, end, b0);
    w4_store(wid.y, m0 + 1u, k0, end, a1);
    w4_store(wid.y, m0 + 1u, k0 + 4u, end, b1);
    w4_store(wid.y, m0 + 2u, k0, end, a2);
    w4_store(wid.y, m0 + 2u, k0 + 4u, end, b2);
    w4_store(wid.y, m0 + 3u, k0, end, a3);
    w4_store(wid.y, m0 + 3u, k0 + 4u, end, b3);
}

// wgrad_reg_s1 for 5-wide kernels (the LeNets' 5x5 layers): taps 0..3 as in wgrad_reg_s1, tap 4
// as one dot product per column block (over 4 columns, tap t's sum is dot(gy, x shifted by t)).
// 80 FMAs per 5 loads where wgrad_reg_s1_t8 spends 128, 48 of them on taps past the kernel.
@compute @workgroup_size(64)
fn wgrad_reg_s1_t5(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = wid.x * 64u + lid;
    if (t >= p.cx * p.kh) { return; }
    let ky = t % p.kh;
    let c = t / p.kh;
    let m0 = wid.z * 4u;
    let q_end = p.wy / 4u;
    var a0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0); var a2 = vec4<f32>(0.0); var a3 = vec4<f32>(0.0);
    var tap4 = vec4<f32>(0.0); // tap 4 of channels m0..m0+3
    let rows_end = min(p.n * p.hy, (wid.y + 1u) * p.chunk);
    var r = row_at(wid.y * p.chunk);
    for (var g = wid.y * p.chunk; g < rows_end; g = g + 1u) {
        let xrow = w4_x_row(r, c, ky, 0u);
        let g0 = w4_gy_row(m0, r);
        let g1 = w4_gy_row(m0 + 1u, r);
        let g2 = w4_gy_row(m0 + 2u, r);
        let g3 = w4_gy_row(m0 + 3u, r);
        var xa = w4_x[xrow];
        for (var q = 0u; q < q_end; q = q + 1u) {
            let xb = w4_x[xrow + q + 1u];
            let x1 = vec4<f32>(xa.yzw, xb.x);
            let x2 = vec4<f32>(xa.zw, xb.xy);
            let x3 = vec4<f32>(xa.w, xb.xyz);
            let v0 = w4_gy[g0 + q];
            let v1 = w4_gy[g1 + q];
            let v2 = w4_gy[g2 + q];
            let v3 = w4_gy[g3 + q];
            a0 = fma(vec4<f32>(v0.x), xa, a0); a0 = fma(vec4<f32>(v0.y), x1, a0); a0 = fma(vec4<f32>(v0.z), x2, a0); a0 = fma(vec4<f32>(v0.w), x3, a0);
            a1 = fma(vec4<f32>(v1.x), xa, a1); a1 = fma(vec4<f32>(v1.y), x1, a1); a1 = fma(vec4<f32>(v1.z), x2, a1); a1 = fma(vec4<f32>(v1.w), x3, a1);
            a2 = fma(vec4<f32>(v2.x), xa, a2); a2 = fma(vec4<f32>(v2.y), x1, a2); a2 = fma(vec4<f32>(v2.z), x2, a2); a2 = fma(vec4<f32>(v2.w), x3, a2);
            a3 = fma(vec4<f32>(v3.x), xa, a3); a3 = fma(vec4<f32>(v3.y), x1, a3); a3 = fma(vec4<f32>(v3.z), x2, a3); a3 = fma(vec4<f32>(v3.w), x3, a3);
            tap4 = tap4 + vec4<f32>(dot(v0, xb), dot(v1, xb), dot(v2, xb), dot(v3, xb));
            xa = xb;
        }
        row_next(&r);
    }
    let k0 = (c * p.kh + ky) * 5u;
    let end = k0 + 5u;
    w4_store(wid.y, m0, k0, end, a0);
    w4_store(wid.y, m0 + 1u, k0, end, a1);
    w4_store(wid.y, m0 + 2u, k0, end, a2);
    w4_store(wid.y, m0 + 3u, k0, end, a3);
    w4_store(wid.y, m0, k0 + 4u, end, vec4<f32>(tap4.x, 0.0, 0.0, 0.0));
    w4_store(wid.y, m0 + 1u, k0 + 4u, end, vec4<f32>(tap4.y, 0.0, 0.0, 0.0));
    w4_store(wid.y, m0 + 2u, k0 + 4u, end, vec4<f32>(tap4.z, 0.0, 0.0, 0.0));
    w4_store(wid.y, m0 + 3u, k0 + 4u, end, vec4<f32>(tap4.w, 0.0, 0.0, 0.0));
}

// 5x5 kernels at unit width stride (the LeNets' layers): one invocation per (input channel,
// 4-output-channel block, split of the rows) accumulates all 25 taps; the splits fill the
// workgroups where a layer has few pairs (LeNet conv1: 1 input channel). Lavapipe loads
// storage lane by lane and component by component, so loaded components per multiply-add set the
// speed: per 4-column block this loads 16 gy and 20 x components for 400 multiply-adds, where a
// one-row kernel (wgrad_reg_s1_t5) loads 20 for 80. Taps 0..3 of row r and channel m accumulate
// in a vec4 (a{r}{m}); tap 4 of row r in t{r} over the 4 channels, as a dot product per block.
@compute @workgroup_size(64)
fn wgrad_reg_s1_k5(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let pairs = p.cx * ((p.cy + 3u) / 4u);
    let t = flat(wid, nwg, lid);
    if (t >= pairs * p.splits) { return; }
    let split = t / pairs;
    let c = t % p.cx;
    let m0 = ((t % pairs) / p.cx) * 4u;
    let q_end = p.wy / 4u;
    var a00 = vec4<f32>(0.0); var a01 = vec4<f32>(0.0); var a02 = vec4<f32>(0.0); var a03 = vec4<f32>(0.0); var t0 = vec4<f32>(0.0);
    var a10 = vec4<f32>(0.0); var a11 = vec4<f32>(0.0); var a12 = vec4<f32>(0.0); var a13 = vec4<f32>(0.0); var t1 = vec4<f32>(0.0);
    var a20 = vec4<f32>(0.0); var a21 = vec4<f32>(0.0); var a22 = vec4<f32>(0.0); var a23 = vec4<f32>(0.0); var t2 = vec4<f32>(0.0);
    var a30 = vec4<f32>(0.0); var a31 = vec4<f32>(0.0); var a32 = vec4<f32>(0.0); var a33 = vec4<f32>(0.0); var t3 = vec4<f32>(0.0);
    var a40 = vec4<f32>(0.0); var a41 = vec4<f32>(0.0); var a42 = vec4<f32>(0.0); var a43 = vec4<f32>(0.0); var t4 = vec4<f32>(0.0);
    let rows_end = min(p.n * p.hy, (split + 1u) * p.chunk);
    var r = row_at(split * p.chunk);
    for (var g = split * p.chunk; g < rows_end; g = g + 1u) {
        let g0 = w4_gy_row(m0, r);
        let g1 = w4_gy_row(m0 + 1u, r);
        let g2 = w4_gy_row(m0 + 2u, r);
        let g3 = w4_gy_row(m0 + 3u, r);
        let x0row = w4_x_row(r, c, 0u, 0u);
        let x1row = w4_x_row(r, c, 1u, 0u);
        let x2row = w4_x_row(r, c, 2u, 0u);
        let x3row = w4_x_row(r, c, 3u, 0u);
        let x4row = w4_x_row(r, c, 4u, 0u);
        var x0a = w4_x[x0row];
        var x1a = w4_x[x1row];
        var x2a = w4_x[x2row];
        var x3a = w4_x[x3row];
        var x4a = w4_x[x4row];
        for (var q = 0u; q < q_end; q = q + 1u) {
            let v0 = w4_gy[g0 + q];
            let v1 = w4_gy[g1 + q];
            let v2 = w4_gy[g2 + q];
            let v3 = w4_gy[g3 + q];
            let x0b = w4_x[x0row + q + 1u];
            let x01 = vec4<f32>(x0a.yzw, x0b.x); let x02 = vec4<f32>(x0a.zw, x0b.xy); let x03 = vec4<f32>(x0a.w, x0b.xyz);
            a00 = fma(vec4<f32>(v0.x), x0a, a00); a00 = fma(vec4<f32>(v0.y), x01, a00); a00 = fma(vec4<f32>(v0.z), x02, a00); a00 = fma(vec4<f32>(v0.w), x03, a00);
            a01 = fma(vec4<f32>(v1.x), x0a, a01); a01 = fma(vec4<f32>(v1.y), x01, a01); a01 = fma(vec4<f32>(v1.z), x02, a01); a01 = fma(vec4<f32>(v1.w), x03, a01);
            a02 = fma(vec4<f32>(v2.x), x0a, a02); a02 = fma(vec4<f32>(v2.y), x01, a02); a02 = fma(vec4<f32>(v2.z), x02, a02); a02 = fma(vec4<f32>(v2.w), x03, a02);
            a03 = fma(vec4<f32>(v3.x), x0a, a03); a03 = fma(vec4<f32>(v3.y), x01, a03); a03 = fma(vec4<f32>(v3.z), x02, a03); a03 = fma(vec4<f32>(v3.w), x03, a03);
            t0 = t0 + vec4<f32>(dot(v0, x0b), dot(v1, x0b), dot(v2, x0b), dot(v3, x0b));
            x0a = x0b;
            let x1b = w4_x[x1row + q + 1u];
            let x11 = vec4<f32>(x1a.yzw, x1b.x); let x12 = vec4<f32>(x1a.zw, x1b.xy); let x13 = vec4<f32>(x1a.w, x1b.xyz);
            a10 = fma(vec4<f32>(v0.x), x1a, a10); a10 = fma(vec4<f32>(v0.y), x11, a10); a10 = fma(vec4<f32>(v0.z), x12, a10); a10 = fma(vec4<f32>(v0.w), x13, a10);
            a11 = fma(vec4<f32>(v1.x), x1a, a11); a11 = fma(vec4<f32>(v1.y), x11, a11); a11 = fma(vec4<f32>(v1.z), x12, a11); a11 = fma(vec4<f32>(v1.w), x13, a11);
            a12 = fma(vec4<f32>(v2.x), x1a, a12); a12 = fma(vec4<f32>(v2.y), x11, a12); a12 = fma(vec4<f32>(v2.z), x12, a12); a12 = fma(vec4<f32>(v2.w), x13, a12);
            a13 = fma(vec4<f32>(v3.x), x1a, a13); a13 = fma(vec4<f32>(v3.y), x11, a13); a13 = fma(vec4<f32>(v3.z), x12, a13); a13 = fma(vec4<f32>(v3.w), x13, a13);
            t1 = t1 + vec4<f32>(dot(v0, x1b), dot(v1, x1b), dot(v2, x1b), dot(v3, x1b));
            x1a = x1b;
            let x2b = w4_x[x2row + q + 1u];
            let x21 = vec4<f32>(x2a.yzw, x2b.x); let x22 = vec4<f32>(x2a.zw, x2b.xy); let x23 = vec4<f32>(x2a.w, x2b.xyz);
            a20 = fma(vec4<f32>(v0.x), x2a, a20); a20 = fma(vec4<f32>(v0.y), x21, a20); a20 = fma(vec4<f32>(v0.z), x22, a20); a20 = fma(vec4<f32>(v0.w), x23, a20);
            a21 = fma(vec4<f32>(v1.x), x2a, a21); a21 = fma(vec4<f32>(v1.y), x21, a21); a21 = fma(vec4<f32>(v1.z), x22, a21); a21 = fma(vec4<f32>(v1.w), x23, a21);
            a22 = fma(vec4<f32>(v2.x), x2a, a22); a22 = fma(vec4<f32>(v2.y), x21, a22); a22 = fma(vec4<f32>(v2.z), x22, a22); a22 = fma(vec4<f32>(v2.w), x23, a22);
            a23 = fma(vec4<f32>(v3.x), x2a, a23); a23 = fma(vec4<f32>(v3.y), x21, a23); a23 = fma(vec4<f32>(v3.z), x22, a23); a23 = fma(vec4<f32>(v3.w), x23, a23);
            t2 = t2 + vec4<f32>(dot(v0, x2b), dot(v1, x2b), dot(v2, x2b), dot(v3, x2b));
            x2a = x2b;
            let x3b = w4_x[x3row + q + 1u];
            let x31 = vec4<f32>(x3a.yzw, x3b.x); let x32 = vec4<f32>(x3a.zw, x3b.xy); let x33 = vec4<f32>(x3a.w, x3b.xyz);
            a30 = fma(vec4<f32>(v0.x), x3a, a30); a30 = fma(vec4<f32>(v0.y), x31, a30); a30 = fma(vec4<f32>(v0.z), x32, a30); a30 = fma(vec4<f32>(v0.w), x33, a30);
            a31 = fma(vec4<f32>(v1.x), x3a, a31); a31 = fma(vec4<f32>(v1.y), x31, a31); a31 = fma(vec4<f32>(v1.z), x32, a31); a31 = fma(vec4<f32>(v1.w), x33, a31);
            a32 = fma(vec4<f32>(v2.x), x3a, a32); a32 = fma(vec4<f32>(v2.y), x31, a32); a32 = fma(vec4<f32>(v2.z), x32, a32); a32 = fma(vec4<f32>(v2.w), x33, a32);
            a33 = fma(vec4<f32>(v3.x), x3a, a33); a33 = fma(vec4<f32>(v3.y), x31, a33); a33 = fma(vec4<f32>(v3.z), x32, a33); a33 = fma(vec4<f32>(v3.w), x33, a33);
            t3 = t3 + vec4<f32>(dot(v0, x3b), dot(v1, x3b), dot(v2, x3b), dot(v3, x3b));
            x3a = x3b;
            let x4b = w4_x[x4row + q + 1u];
            let x41 = vec4<f32>(x4a.yzw, x4b.x); let x42 = vec4<f32>(x4a.zw, x4b.xy); let x43 = vec4<f32>(x4a.w, x4b.xyz);
            a40 = fma(vec4<f32>(v0.x), x4a, a40); a40 = fma(vec4<f32>(v0.y), x41, a40); a40 = fma(vec4<f32>(v0.z), x42, a40); a40 = fma(vec4<f32>(v0.w), x43, a40);
            a41 = fma(vec4<f32>(v1.x), x4a, a41); a41 = fma(vec4<f32>(v1.y), x41, a41); a41 = fma(vec4<f32>(v1.z), x42, a41); a41 = fma(vec4<f32>(v1.w), x43, a41);
            a42 = fma(vec4<f32>(v2.x), x4a, a42); a42 = fma(vec4<f32>(v2.y), x41, a42); a42 = fma(vec4<f32>(v2.z), x42, a42); a42 = fma(vec4<f32>(v2.w), x43, a42);
            a43 = fma(vec4<f32>(v3.x), x4a, a43); a43 = fma(vec4<f32>(v3.y), x41, a43); a43 = fma(vec4<f32>(v3.z), x42, a43); a43 = fma(vec4<f32>(v3.w), x43, a43);
            t4 = t4 + vec4<f32>(dot(v0, x4b), dot(v1, x4b), dot(v2, x4b), dot(v3, x4b));
            x4a = x4b;
        }
        row_next(&r);
    }
    let k0 = (c * 5u + 0u) * 5u;
    w4_store(split, m0, k0, k0 + 5u, a00); w4_store(split, m0, k0 + 4u, k0 + 5u, vec4<f32>(t0.x, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 1u, k0, k0 + 5u, a01); w4_store(split, m0 + 1u, k0 + 4u, k0 + 5u, vec4<f32>(t0.y, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 2u, k0, k0 + 5u, a02); w4_store(split, m0 + 2u, k0 + 4u, k0 + 5u, vec4<f32>(t0.z, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 3u, k0, k0 + 5u, a03); w4_store(split, m0 + 3u, k0 + 4u, k0 + 5u, vec4<f32>(t0.w, 0.0, 0.0, 0.0));
    let k1 = (c * 5u + 1u) * 5u;
    w4_store(split, m0, k1, k1 + 5u, a10); w4_store(split, m0, k1 + 4u, k1 + 5u, vec4<f32>(t1.x, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 1u, k1, k1 + 5u, a11); w4_store(split, m0 + 1u, k1 + 4u, k1 + 5u, vec4<f32>(t1.y, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 2u, k1, k1 + 5u, a12); w4_store(split, m0 + 2u, k1 + 4u, k1 + 5u, vec4<f32>(t1.z, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 3u, k1, k1 + 5u, a13); w4_store(split, m0 + 3u, k1 + 4u, k1 + 5u, vec4<f32>(t1.w, 0.0, 0.0, 0.0));
    let k2 = (c * 5u + 2u) * 5u;
    w4_store(split, m0, k2, k2 + 5u, a20); w4_store(split, m0, k2 + 4u, k2 + 5u, vec4<f32>(t2.x, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 1u, k2, k2 + 5u, a21); w4_store(split, m0 + 1u, k2 + 4u, k2 + 5u, vec4<f32>(t2.y, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 2u, k2, k2 + 5u, a22); w4_store(split, m0 + 2u, k2 + 4u, k2 + 5u, vec4<f32>(t2.z, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 3u, k2, k2 + 5u, a23); w4_store(split, m0 + 3u, k2 + 4u, k2 + 5u, vec4<f32>(t2.w, 0.0, 0.0, 0.0));
    let k3 = (c * 5u + 3u) * 5u;
    w4_store(split, m0, k3, k3 + 5u, a30); w4_store(split, m0, k3 + 4u, k3 + 5u, vec4<f32>(t3.x, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 1u, k3, k3 + 5u, a31); w4_store(split, m0 + 1u, k3 + 4u, k3 + 5u, vec4<f32>(t3.y, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 2u, k3, k3 + 5u, a32); w4_store(split, m0 + 2u, k3 + 4u, k3 + 5u, vec4<f32>(t3.z, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 3u, k3, k3 + 5u, a33); w4_store(split, m0 + 3u, k3 + 4u, k3 + 5u, vec4<f32>(t3.w, 0.0, 0.0, 0.0));
    let k4 = (c * 5u + 4u) * 5u;
    w4_store(split, m0, k4, k4 + 5u, a40); w4_store(split, m0, k4 + 4u, k4 + 5u, vec4<f32>(t4.x, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 1u, k4, k4 + 5u, a41); w4_store(split, m0 + 1u, k4 + 4u, k4 + 5u, vec4<f32>(t4.y, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 2u, k4, k4 + 5u, a42); w4_store(split, m0 + 2u, k4 + 4u, k4 + 5u, vec4<f32>(t4.z, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 3u, k4, k4 + 5u, a43); w4_store(split, m0 + 3u, k4 + 4u, k4 + 5u, vec4<f32>(t4.w, 0.0, 0.0, 0.0));
}

// wgrad_reg_s1_k5 with 8 output channels per invocation (t names (split, block of 8, input
// channel)): 8 gy and 5 x loads per 800 multiply-adds where the 4-channel kernel takes 4 and 5
// per 400. For more than 4 output channels (the CIFAR-10 LeNet's 5x5 layers).
@compute @workgroup_size(64)
fn wgrad_reg_s1_k5_r8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let pairs = p.cx * ((p.cy + 7u) / 8u);
    let t = flat(wid, nwg, lid);
    if (t >= pairs * p.splits) { return; }
    let split = t / pairs;
    let c = t % p.cx;
    let m0 = ((t % pairs) / p.cx) * 8u;
    let q_end = p.wy / 4u;
    var a0_0 = vec4<f32>(0.0); var a0_1 = vec4<f32>(0.0); var a0_2 = vec4<f32>(0.0); var a0_3 = vec4<f32>(0.0); var a0_4 = vec4<f32>(0.0); var a0_5 = vec4<f32>(0.0); var a0_6 = vec4<f32>(0.0); var a0_7 = vec4<f32>(0.0); var t0lo = vec4<f32>(0.0); var t0hi = vec4<f32>(0.0);
    var a1_0 = vec4<f32>(0.0); var a1_1 = vec4<f32>(0.0); var a1_2 = vec4<f32>(0.0); var a1_3 = vec4<f32>(0.0); var a1_4 = vec4<f32>(0.0); var a1_5 = vec4<f32>(0.0); var a1_6 = vec4<f32>(0.0); var a1_7 = vec4<f32>(0.0); var t1lo = vec4<f32>(0.0); var t1hi = vec4<f32>(0.0);
    var a2_0 = vec4<f32>(0.0); var a2_1 = vec4<f32>(0.0); var a2_2 = vec4<f32>(0.0); var a2_3 = vec4<f32>(0.0); var a2_4 = vec4<f32>(0.0); var a2_5 = vec4<f32>(0.0); var a2_6 = vec4<f32>(0.0); var a2_7 = vec4<f32>(0.0); var t2lo = vec4<f32>(0.0); var t2hi = vec4<f32>(0.0);
    var a3_0 = vec4<f32>(0.0); var a3_1 = vec4<f32>(0.0); var a3_2 = vec4<f32>(0.0); var a3_3 = vec4<f32>(0.0); var a3_4 = vec4<f32>(0.0); var a3_5 = vec4<f32>(0.0); var a3_6 = vec4<f32>(0.0); var a3_7 = vec4<f32>(0.0); var t3lo = vec4<f32>(0.0); var t3hi = vec4<f32>(0.0);
    var a4_0 = vec4<f32>(0.0); var a4_1 = vec4<f32>(0.0); var a4_2 = vec4<f32>(0.0); var a4_3 = vec4<f32>(0.0); var a4_4 = vec4<f32>(0.0); var a4_5 = vec4<f32>(0.0); var a4_6 = vec4<f32>(0.0); var a4_7 = vec4<f32>(0.0); var t4lo = vec4<f32>(0.0); var t4hi = vec4<f32>(0.0);
    let rows_end = min(p.n * p.hy, (split + 1u) * p.chunk);
    var r = row_at(split * p.chunk);
    for (var g = split * p.chunk; g < rows_end; g = g + 1u) {
        let g0 = w4_gy_row(m0 + 0u, r);
        let g1 = w4_gy_row(m0 + 1u, r);
        let g2 = w4_gy_row(m0 + 2u, r);
        let g3 = w4_gy_row(m0 + 3u, r);
        let g4 = w4_gy_row(m0 + 4u, r);
        let g5 = w4_gy_row(m0 + 5u, r);
        let g6 = w4_gy_row(m0 + 6u, r);
        let g7 = w4_gy_row(m0 + 7u, r);
        let x0row = w4_x_row(r, c, 0u, 0u);
        let x1row = w4_x_row(r, c, 1u, 0u);
        let x2row = w4_x_row(r, c, 2u, 0u);
        let x3row = w4_x_row(r, c, 3u, 0u);
        let x4row = w4_x_row(r, c, 4u, 0u);
        var x0a = w4_x[x0row];
        var x1a = w4_x[x1row];
        var x2a = w4_x[x2row];
        var x3a = w4_x[x3row];
        var x4a = w4_x[x4row];
        for (var q = 0u; q < q_end; q = q + 1u) {
            let v0 = w4_gy[g0 + q];
            let v1 = w4_gy[g1 + q];
            let v2 = w4_gy[g2 + q];
            let v3 = w4_gy[g3 + q];
            let v4 = w4_gy[g4 + q];
            let v5 = w4_gy[g5 + q];
            let v6 = w4_gy[g6 + q];
            let v7 = w4_gy[g7 + q];
            let x0b = w4_x[x0row + q + 1u];
            let x01 = vec4<f32>(x0a.yzw, x0b.x); let x02 = vec4<f32>(x0a.zw, x0b.xy); let x03 = vec4<f32>(x0a.w, x0b.xyz);
            a0_0 = fma(vec4<f32>(v0.x), x0a, a0_0); a0_0 = fma(vec4<f32>(v0.y), x01, a0_0); a0_0 = fma(vec4<f32>(v0.z), x02, a0_0); a0_0 = fma(vec4<f32>(v0.w), x03, a0_0);
            a0_1 = fma(vec4<f32>(v1.x), x0a, a0_1); a0_1 = fma(vec4<f32>(v1.y), x01, a0_1); a0_1 = fma(vec4<f32>(v1.z), x02, a0_1); a0_1 = fma(vec4<f32>(v1.w), x03, a0_1);
            a0_2 = fma(vec4<f32>(v2.x), x0a, a0_2); a0_2 = fma(vec4<f32>(v2.y), x01, a0_2); a0_2 = fma(vec4<f32>(v2.z), x02, a0_2); a0_2 = fma(vec4<f32>(v2.w), x03, a0_2);
            a0_3 = fma(vec4<f32>(v3.x), x0a, a0_3); a0_3 = fma(vec4<f32>(v3.y), x01, a0_3); a0_3 = fma(vec4<f32>(v3.z), x02, a0_3); a0_3 = fma(vec4<f32>(v3.w), x03, a0_3);
            a0_4 = fma(vec4<f32>(v4.x), x0a, a0_4); a0_4 = fma(vec4<f32>(v4.y), x01, a0_4); a0_4 = fma(vec4<f32>(v4.z), x02, a0_4); a0_4 = fma(vec4<f32>(v4.w), x03, a0_4);
            a0_5 = fma(vec4<f32>(v5.x), x0a, a0_5); a0_5 = fma(vec4<f32>(v5.y), x01, a0_5); a0_5 = fma(vec4<f32>(v5.z), x02, a0_5); a0_5 = fma(vec4<f32>(v5.w), x03, a0_5);
            a0_6 = fma(vec4<f32>(v6.x), x0a, a0_6); a0_6 = fma(vec4<f32>(v6.y), x01, a0_6); a0_6 = fma(vec4<f32>(v6.z), x02, a0_6); a0_6 = fma(vec4<f32>(v6.w), x03, a0_6);
            a0_7 = fma(vec4<f32>(v7.x), x0a, a0_7); a0_7 = fma(vec4<f32>(v7.y), x01, a0_7); a0_7 = fma(vec4<f32>(v7.z), x02, a0_7); a0_7 = fma(vec4<f32>(v7.w), x03, a0_7);
            t0lo = t0lo + vec4<f32>(dot(v0, x0b), dot(v1, x0b), dot(v2, x0b), dot(v3, x0b));
            t0hi = t0hi + vec4<f32>(dot(v4, x0b), dot(v5, x0b), dot(v6, x0b), dot(v7, x0b));
            x0a = x0b;
            let x1b = w4_x[x1row + q + 1u];
            let x11 = vec4<f32>(x1a.yzw, x1b.x); let x12 = vec4<f32>(x1a.zw, x1b.xy); let x13 = vec4<f32>(x1a.w, x1b.xyz);
            a1_0 = fma(vec4<f32>(v0.x), x1a, a1_0); a1_0 = fma(vec4<f32>(v0.y), x11, a1_0); a1_0 = fma(vec4<f32>(v0.z), x12, a1_0); a1_0 = fma(vec4<f32>(v0.w), x13, a1_0);
            a1_1 = fma(vec4<f32>(v1.x), x1a, a1_1); a1_1 = fma(vec4<f32>(v1.y), x11, a1_1); a1_1 = fma(vec4<f32>(v1.z), x12, a1_1); a1_1 = fma(vec4<f32>(v1.w), x13, a1_1);
            a1_2 = fma(vec4<f32>(v2.x), x1a, a1_2); a1_2 = fma(vec4<f32>(v2.y), x11, a1_2); a1_2 = fma(vec4<f32>(v2.z), x12, a1_2); a1_2 = fma(vec4<f32>(v2.w), x13, a1_2);
            a1_3 = fma(vec4<f32>(v3.x), x1a, a1_3); a1_3 = fma(vec4<f32>(v3.y), x11, a1_3); a1_3 = fma(vec4<f32>(v3.z), x12, a1_3); a1_3 = fma(vec4<f32>(v3.w), x13, a1_3);
            a1_4 = fma(vec4<f32>(v4.x), x1a, a1_4); a1_4 = fma(vec4<f32>(v4.y), x11, a1_4); a1_4 = fma(vec4<f32>(v4.z), x12, a1_4); a1_4 = fma(vec4<f32>(v4.w), x13, a1_4);
            a1_5 = fma(vec4<f32>(v5.x), x1a, a1_5); a1_5 = fma(vec4<f32>(v5.y), x11, a1_5); a1_5 = fma(vec4<f32>(v5.z), x12, a1_5); a1_5 = fma(vec4<f32>(v5.w), x13, a1_5);
            a1_6 = fma(vec4<f32>(v6.x), x1a, a1_6); a1_6 = fma(vec4<f32>(v6.y), x11, a1_6); a1_6 = fma(vec4<f32>(v6.z), x12, a1_6); a1_6 = fma(vec4<f32>(v6.w), x13, a1_6);
            a1_7 = fma(vec4<f32>(v7.x), x1a, a1_7); a1_7 = fma(vec4<f32>(v7.y), x11, a1_7); a1_7 = fma(vec4<f32>(v7.z), x12, a1_7); a1_7 = fma(vec4<f32>(v7.w), x13, a1_7);
            t1lo = t1lo + vec4<f32>(dot(v0, x1b), dot(v1, x1b), dot(v2, x1b), dot(v3, x1b));
            t1hi = t1hi + vec4<f32>(dot(v4, x1b), dot(v5, x1b), dot(v6, x1b), dot(v7, x1b));
            x1a = x1b;
            let x2b = w4_x[x2row + q + 1u];
            let x21 = vec4<f32>(x2a.yzw, x2b.x); let x22 = vec4<f32>(x2a.zw, x2b.xy); let x23 = vec4<f32>(x2a.w, x2b.xyz);
            a2_0 = fma(vec4<f32>(v0.x), x2a, a2_0); a2_0 = fma(vec4<f32>(v0.y), x21, a2_0); a2_0 = fma(vec4<f32>(v0.z), x22, a2_0); a2_0 = fma(vec4<f32>(v0.w), x23, a2_0);
            a2_1 = fma(vec4<f32>(v1.x), x2a, a2_1); a2_1 = fma(vec4<f32>(v1.y), x21, a2_1); a2_1 = fma(vec4<f32>(v1.z), x22, a2_1); a2_1 = fma(vec4<f32>(v1.w), x23, a2_1);
            a2_2 = fma(vec4<f32>(v2.x), x2a, a2_2); a2_2 = fma(vec4<f32>(v2.y), x21, a2_2); a2_2 = fma(vec4<f32>(v2.z), x22, a2_2); a2_2 = fma(vec4<f32>(v2.w), x23, a2_2);
            a2_3 = fma(vec4<f32>(v3.x), x2a, a2_3); a2_3 = fma(vec4<f32>(v3.y), x21, a2_3); a2_3 = fma(vec4<f32>(v3.z), x22, a2_3); a2_3 = fma(vec4<f32>(v3.w), x23, a2_3);
            a2_4 = fma(vec4<f32>(v4.x), x2a, a2_4); a2_4 = fma(vec4<f32>(v4.y), x21, a2_4); a2_4 = fma(vec4<f32>(v4.z), x22, a2_4); a2_4 = fma(vec4<f32>(v4.w), x23, a2_4);
            a2_5 = fma(vec4<f32>(v5.x), x2a, a2_5); a2_5 = fma(vec4<f32>(v5.y), x21, a2_5); a2_5 = fma(vec4<f32>(v5.z), x22, a2_5); a2_5 = fma(vec4<f32>(v5.w), x23, a2_5);
            a2_6 = fma(vec4<f32>(v6.x), x2a, a2_6); a2_6 = fma(vec4<f32>(v6.y), x21, a2_6); a2_6 = fma(vec4<f32>(v6.z), x22, a2_6); a2_6 = fma(vec4<f32>(v6.w), x23, a2_6);
            a2_7 = fma(vec4<f32>(v7.x), x2a, a2_7); a2_7 = fma(vec4<f32>(v7.y), x21, a2_7); a2_7 = fma(vec4<f32>(v7.z), x22, a2_7); a2_7 = fma(vec4<f32>(v7.w), x23, a2_7);
            t2lo = t2lo + vec4<f32>(dot(v0, x2b), dot(v1, x2b), dot(v2, x2b), dot(v3, x2b));
            t2hi = t2hi + vec4<f32>(dot(v4, x2b), dot(v5, x2b), dot(v6, x2b), dot(v7, x2b));
            x2a = x2b;
            let x3b = w4_x[x3row + q + 1u];
            let x31 = vec4<f32>(x3a.yzw, x3b.x); let x32 = vec4<f32>(x3a.zw, x3b.xy); let x33 = vec4<f32>(x3a.w, x3b.xyz);
            a3_0 = fma(vec4<f32>(v0.x), x3a, a3_0); a3_0 = fma(vec4<f32>(v0.y), x31, a3_0); a3_0 = fma(vec4<f32>(v0.z), x32, a3_0); a3_0 = fma(vec4<f32>(v0.w), x33, a3_0);
            a3_1 = fma(vec4<f32>(v1.x), x3a, a3_1); a3_1 = fma(vec4<f32>(v1.y), x31, a3_1); a3_1 = fma(vec4<f32>(v1.z), x32, a3_1); a3_1 = fma(vec4<f32>(v1.w), x33, a3_1);
            a3_2 = fma(vec4<f32>(v2.x), x3a, a3_2); a3_2 = fma(vec4<f32>(v2.y), x31, a3_2); a3_2 = fma(vec4<f32>(v2.z), x32, a3_2); a3_2 = fma(vec4<f32>(v2.w), x33, a3_2);
            a3_3 = fma(vec4<f32>(v3.x), x3a, a3_3); a3_3 = fma(vec4<f32>(v3.y), x31, a3_3); a3_3 = fma(vec4<f32>(v3.z), x32, a3_3); a3_3 = fma(vec4<f32>(v3.w), x33, a3_3);
            a3_4 = fma(vec4<f32>(v4.x), x3a, a3_4); a3_4 = fma(vec4<f32>(v4.y), x31, a3_4); a3_4 = fma(vec4<f32>(v4.z), x32, a3_4); a3_4 = fma(vec4<f32>(v4.w), x33, a3_4);
            a3_5 = fma(vec4<f32>(v5.x), x3a, a3_5); a3_5 = fma(vec4<f32>(v5.y), x31, a3_5); a3_5 = fma(vec4<f32>(v5.z), x32, a3_5); a3_5 = fma(vec4<f32>(v5.w), x33, a3_5);
            a3_6 = fma(vec4<f32>(v6.x), x3a, a3_6); a3_6 = fma(vec4<f32>(v6.y), x31, a3_6); a3_6 = fma(vec4<f32>(v6.z), x32, a3_6); a3_6 = fma(vec4<f32>(v6.w), x33, a3_6);
            a3_7 = fma(vec4<f32>(v7.x), x3a, a3_7); a3_7 = fma(vec4<f32>(v7.y), x31, a3_7); a3_7 = fma(vec4<f32>(v7.z), x32, a3_7); a3_7 = fma(vec4<f32>(v7.w), x33, a3_7);
            t3lo = t3lo + vec4<f32>(dot(v0, x3b), dot(v1, x3b), dot(v2, x3b), dot(v3, x3b));
            t3hi = t3hi + vec4<f32>(dot(v4, x3b), dot(v5, x3b), dot(v6, x3b), dot(v7, x3b));
            x3a = x3b;
            let x4b = w4_x[x4row + q + 1u];
            let x41 = vec4<f32>(x4a.yzw, x4b.x); let x42 = vec4<f32>(x4a.zw, x4b.xy); let x43 = vec4<f32>(x4a.w, x4b.xyz);
            a4_0 = fma(vec4<f32>(v0.x), x4a, a4_0); a4_0 = fma(vec4<f32>(v0.y), x41, a4_0); a4_0 = fma(vec4<f32>(v0.z), x42, a4_0); a4_0 = fma(vec4<f32>(v0.w), x43, a4_0);
            a4_1 = fma(vec4<f32>(v1.x), x4a, a4_1); a4_1 = fma(vec4<f32>(v1.y), x41, a4_1); a4_1 = fma(vec4<f32>(v1.z), x42, a4_1); a4_1 = fma(vec4<f32>(v1.w), x43, a4_1);
            a4_2 = fma(vec4<f32>(v2.x), x4a, a4_2); a4_2 = fma(vec4<f32>(v2.y), x41, a4_2); a4_2 = fma(vec4<f32>(v2.z), x42, a4_2); a4_2 = fma(vec4<f32>(v2.w), x43, a4_2);
            a4_3 = fma(vec4<f32>(v3.x), x4a, a4_3); a4_3 = fma(vec4<f32>(v3.y), x41, a4_3); a4_3 = fma(vec4<f32>(v3.z), x42, a4_3); a4_3 = fma(vec4<f32>(v3.w), x43, a4_3);
            a4_4 = fma(vec4<f32>(v4.x), x4a, a4_4); a4_4 = fma(vec4<f32>(v4.y), x41, a4_4); a4_4 = fma(vec4<f32>(v4.z), x42, a4_4); a4_4 = fma(vec4<f32>(v4.w), x43, a4_4);
            a4_5 = fma(vec4<f32>(v5.x), x4a, a4_5); a4_5 = fma(vec4<f32>(v5.y), x41, a4_5); a4_5 = fma(vec4<f32>(v5.z), x42, a4_5); a4_5 = fma(vec4<f32>(v5.w), x43, a4_5);
            a4_6 = fma(vec4<f32>(v6.x), x4a, a4_6); a4_6 = fma(vec4<f32>(v6.y), x41, a4_6); a4_6 = fma(vec4<f32>(v6.z), x42, a4_6); a4_6 = fma(vec4<f32>(v6.w), x43, a4_6);
            a4_7 = fma(vec4<f32>(v7.x), x4a, a4_7); a4_7 = fma(vec4<f32>(v7.y), x41, a4_7); a4_7 = fma(vec4<f32>(v7.z), x42, a4_7); a4_7 = fma(vec4<f32>(v7.w), x43, a4_7);
            t4lo = t4lo + vec4<f32>(dot(v0, x4b), dot(v1, x4b), dot(v2, x4b), dot(v3, x4b));
            t4hi = t4hi + vec4<f32>(dot(v4, x4b), dot(v5, x4b), dot(v6, x4b), dot(v7, x4b));
            x4a = x4b;
        }
        row_next(&r);
    }
    let k0 = (c * 5u + 0u) * 5u;
    w4_store(split, m0 + 0u, k0, k0 + 5u, a0_0); w4_store(split, m0 + 0u, k0 + 4u, k0 + 5u, vec4<f32>(t0lo.x, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 1u, k0, k0 + 5u, a0_1); w4_store(split, m0 + 1u, k0 + 4u, k0 + 5u, vec4<f32>(t0lo.y, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 2u, k0, k0 + 5u, a0_2); w4_store(split, m0 + 2u, k0 + 4u, k0 + 5u, vec4<f32>(t0lo.z, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 3u, k0, k0 + 5u, a0_3); w4_store(split, m0 + 3u, k0 + 4u, k0 + 5u, vec4<f32>(t0lo.w, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 4u, k0, k0 + 5u, a0_4); w4_store(split, m0 + 4u, k0 + 4u, k0 + 5u, vec4<f32>(t0hi.x, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 5u, k0, k0 + 5u, a0_5); w4_store(split, m0 + 5u, k0 + 4u, k0 + 5u, vec4<f32>(t0hi.y, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 6u, k0, k0 + 5u, a0_6); w4_store(split, m0 + 6u, k0 + 4u, k0 + 5u, vec4<f32>(t0hi.z, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 7u, k0, k0 + 5u, a0_7); w4_store(split, m0 + 7u, k0 + 4u, k0 + 5u, vec4<f32>(t0hi.w, 0.0, 0.0, 0.0));
    let k1 = (c * 5u + 1u) * 5u;
    w4_store(split, m0 + 0u, k1, k1 + 5u, a1_0); w4_store(split, m0 + 0u, k1 + 4u, k1 + 5u, vec4<f32>(t1lo.x, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 1u, k1, k1 + 5u, a1_1); w4_store(split, m0 + 1u, k1 + 4u, k1 + 5u, vec4<f32>(t1lo.y, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 2u, k1, k1 + 5u, a1_2); w4_store(split, m0 + 2u, k1 + 4u, k1 + 5u, vec4<f32>(t1lo.z, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 3u, k1, k1 + 5u, a1_3); w4_store(split, m0 + 3u, k1 + 4u, k1 + 5u, vec4<f32>(t1lo.w, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 4u, k1, k1 + 5u, a1_4); w4_store(split, m0 + 4u, k1 + 4u, k1 + 5u, vec4<f32>(t1hi.x, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 5u, k1, k1 + 5u, a1_5); w4_store(split, m0 + 5u, k1 + 4u, k1 + 5u, vec4<f32>(t1hi.y, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 6u, k1, k1 + 5u, a1_6); w4_store(split, m0 + 6u, k1 + 4u, k1 + 5u, vec4<f32>(t1hi.z, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 7u, k1, k1 + 5u, a1_7); w4_store(split, m0 + 7u, k1 + 4u, k1 + 5u, vec4<f32>(t1hi.w, 0.0, 0.0, 0.0));
    let k2 = (c * 5u + 2u) * 5u;
    w4_store(split, m0 + 0u, k2, k2 + 5u, a2_0); w4_store(split, m0 + 0u, k2 + 4u, k2 + 5u, vec4<f32>(t2lo.x, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 1u, k2, k2 + 5u, a2_1); w4_store(split, m0 + 1u, k2 + 4u, k2 + 5u, vec4<f32>(t2lo.y, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 2u, k2, k2 + 5u, a2_2); w4_store(split, m0 + 2u, k2 + 4u, k2 + 5u, vec4<f32>(t2lo.z, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 3u, k2, k2 + 5u, a2_3); w4_store(split, m0 + 3u, k2 + 4u, k2 + 5u, vec4<f32>(t2lo.w, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 4u, k2, k2 + 5u, a2_4); w4_store(split, m0 + 4u, k2 + 4u, k2 + 5u, vec4<f32>(t2hi.x, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 5u, k2, k2 + 5u, a2_5); w4_store(split, m0 + 5u, k2 + 4u, k2 + 5u, vec4<f32>(t2hi.y, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 6u, k2, k2 + 5u, a2_6); w4_store(split, m0 + 6u, k2 + 4u, k2 + 5u, vec4<f32>(t2hi.z, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 7u, k2, k2 + 5u, a2_7); w4_store(split, m0 + 7u, k2 + 4u, k2 + 5u, vec4<f32>(t2hi.w, 0.0, 0.0, 0.0));
    let k3 = (c * 5u + 3u) * 5u;
    w4_store(split, m0 + 0u, k3, k3 + 5u, a3_0); w4_store(split, m0 + 0u, k3 + 4u, k3 + 5u, vec4<f32>(t3lo.x, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 1u, k3, k3 + 5u, a3_1); w4_store(split, m0 + 1u, k3 + 4u, k3 + 5u, vec4<f32>(t3lo.y, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 2u, k3, k3 + 5u, a3_2); w4_store(split, m0 + 2u, k3 + 4u, k3 + 5u, vec4<f32>(t3lo.z, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 3u, k3, k3 + 5u, a3_3); w4_store(split, m0 + 3u, k3 + 4u, k3 + 5u, vec4<f32>(t3lo.w, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 4u, k3, k3 + 5u, a3_4); w4_store(split, m0 + 4u, k3 + 4u, k3 + 5u, vec4<f32>(t3hi.x, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 5u, k3, k3 + 5u, a3_5); w4_store(split, m0 + 5u, k3 + 4u, k3 + 5u, vec4<f32>(t3hi.y, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 6u, k3, k3 + 5u, a3_6); w4_store(split, m0 + 6u, k3 + 4u, k3 + 5u, vec4<f32>(t3hi.z, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 7u, k3, k3 + 5u, a3_7); w4_store(split, m0 + 7u, k3 + 4u, k3 + 5u, vec4<f32>(t3hi.w, 0.0, 0.0, 0.0));
    let k4 = (c * 5u + 4u) * 5u;
    w4_store(split, m0 + 0u, k4, k4 + 5u, a4_0); w4_store(split, m0 + 0u, k4 + 4u, k4 + 5u, vec4<f32>(t4lo.x, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 1u, k4, k4 + 5u, a4_1); w4_store(split, m0 + 1u, k4 + 4u, k4 + 5u, vec4<f32>(t4lo.y, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 2u, k4, k4 + 5u, a4_2); w4_store(split, m0 + 2u, k4 + 4u, k4 + 5u, vec4<f32>(t4lo.z, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 3u, k4, k4 + 5u, a4_3); w4_store(split, m0 + 3u, k4 + 4u, k4 + 5u, vec4<f32>(t4lo.w, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 4u, k4, k4 + 5u, a4_4); w4_store(split, m0 + 4u, k4 + 4u, k4 + 5u, vec4<f32>(t4hi.x, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 5u, k4, k4 + 5u, a4_5); w4_store(split, m0 + 5u, k4 + 4u, k4 + 5u, vec4<f32>(t4hi.y, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 6u, k4, k4 + 5u, a4_6); w4_store(split, m0 + 6u, k4 + 4u, k4 + 5u, vec4<f32>(t4hi.z, 0.0, 0.0, 0.0));
    w4_store(split, m0 + 7u, k4, k4 + 5u, a4_7); w4_store(split, m0 + 7u, k4 + 4u, k4 + 5u, vec4<f32>(t4hi.w, 0.0, 0.0, 0.0));
}

// wgrad_reg_s1_k5 for 3x3 kernels (the MLSAD detectors' layers): all 9 taps of one (input channel,
// 4-output-channel block) pair per invocation, 16 gy and 12 x components loaded per 4-column block
// for 144 multiply-adds (a 4-tap row kernel: 20 for 64). Taps 0..2 of row r and channel m in
// a{r}{m}.xyz (.w, a fourth tap past the kernel, is dropped when stored).
@compute @workgroup_size(64)
fn wgrad_reg_s1_k3(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let pairs = p.cx * ((p.cy + 3u) / 4u);
    let total = pairs * p.splits;
    let t_raw = flat(wid, nwg, lid);
    let lane = load_lane();
    if (lanes_done(t_raw >= total)) { return; }
    let t = min(t_raw, total - 1u);
    // t / cx names (split, output block), so the gy rows every lane of a run reads.
    var gy_run = gy_run_start(t / p.cx);
    let split = t / pairs;
    let c = t % p.cx;
    let m0 = ((t % pairs) / p.cx) * 4u;
    let q_end = p.wy / 4u;
    var a00 = vec4<f32>(0.0); var a01 = vec4<f32>(0.0); var a02 = vec4<f32>(0.0); var a03 = vec4<f32>(0.0);
    var a10 = vec4<f32>(0.0); var a11 = vec4<f32>(0.0); var a12 = vec4<f32>(0.0); var a13 = vec4<f32>(0.0);
    var a20 = vec4<f32>(0.0); var a21 = vec4<f32>(0.0); var a22 = vec4<f32>(0.0); var a23 = vec4<f32>(0.0);
    let rows_end = min(p.n * p.hy, (split + 1u) * p.chunk);
    var r = row_at(split * p.chunk);
    for (var g = split * p.chunk; g < rows_end; g = g + 1u) {
        let g0 = w4_gy_row(m0, r);
        let g1 = w4_gy_row(m0 + 1u, r);
        let g2 = w4_gy_row(m0 + 2u, r);
        let g3 = w4_gy_row(m0 + 3u, r);
        let x0row = w4_x_row(r, c, 0u, 0u);
        let x1row = w4_x_row(r, c, 1u, 0u);
        let x2row = w4_x_row(r, c, 2u, 0u);
        var x0a = w4_x[x0row];
        var x1a = w4_x[x1row];
        var x2a = w4_x[x2row];
        for (var q = 0u; q < q_end; q = q + 1u) {
            let v = gy_blocks(&gy_run, vec4<u32>(g0, g1, g2, g3), q, q_end, lane, 0u);
            let v0 = v[0]; let v1 = v[1]; let v2 = v[2]; let v3 = v[3];
            let x0b = w4_x[x0row + q + 1u];
            let x01 = vec4<f32>(x0a.yzw, x0b.x); let x02 = vec4<f32>(x0a.zw, x0b.xy); let x03 = vec4<f32>(x0a.w, x0b.xyz);
            a00 = fma(vec4<f32>(v0.x), x0a, a00); a00 = fma(vec4<f32>(v0.y), x01, a00); a00 = fma(vec4<f32>(v0.z), x02, a00); a00 = fma(vec4<f32>(v0.w), x03, a00);
            a01 = fma(vec4<f32>(v1.x), x0a, a01); a01 = fma(vec4<f32>(v1.y), x01, a01); a01 = fma(vec4<f32>(v1.z), x02, a01); a01 = fma(vec4<f32>(v1.w), x03, a01);
            a02 = fma(vec4<f32>(v2.x), x0a, a02); a02 = fma(vec4<f32>(v2.y), x01, a02); a02 = fma(vec4<f32>(v2.z), x02, a02); a02 = fma(vec4<f32>(v2.w), x03, a02);
            a03 = fma(vec4<f32>(v3.x), x0a, a03); a03 = fma(vec4<f32>(v3.y), x01, a03); a03 = fma(vec4<f32>(v3.z), x02, a03); a03 = fma(vec4<f32>(v3.w), x03, a03);
            x0a = x0b;
            let x1b = w4_x[x1row + q + 1u];
            let x11 = vec4<f32>(x1a.yzw, x1b.x); let x12 = vec4<f32>(x1a.zw, x1b.xy); let x13 = vec4<f32>(x1a.w, x1b.xyz);
            a10 = fma(vec4<f32>(v0.x), x1a, a10); a10 = fma(vec4<f32>(v0.y), x11, a10); a10 = fma(vec4<f32>(v0.z), x12, a10); a10 = fma(vec4<f32>(v0.w), x13, a10);
            a11 = fma(vec4<f32>(v1.x), x1a, a11); a11 = fma(vec4<f32>(v1.y), x11, a11); a11 = fma(vec4<f32>(v1.z), x12, a11); a11 = fma(vec4<f32>(v1.w), x13, a11);
            a12 = fma(vec4<f32>(v2.x), x1a, a12); a12 = fma(vec4<f32>(v2.y), x11, a12); a12 = fma(vec4<f32>(v2.z), x12, a12); a12 = fma(vec4<f32>(v2.w), x13, a12);
            a13 = fma(vec4<f32>(v3.x), x1a, a13); a13 = fma(vec4<f32>(v3.y), x11, a13); a13 = fma(vec4<f32>(v3.z), x12, a13); a13 = fma(vec4<f32>(v3.w), x13, a13);
            x1a = x1b;
            let x2b = w4_x[x2row + q + 1u];
            let x21 = vec4<f32>(x2a.yzw, x2b.x); let x22 = vec4<f32>(x2a.zw, x2b.xy); let x23 = vec4<f32>(x2a.w, x2b.xyz);
            a20 = fma(vec4<f32>(v0.x), x2a, a20); a20 = fma(vec4<f32>(v0.y), x21, a20); a20 = fma(vec4<f32>(v0.z), x22, a20); a20 = fma(vec4<f32>(v0.w), x23, a20);
            a21 = fma(vec4<f32>(v1.x), x2a, a21); a21 = fma(vec4<f32>(v1.y), x21, a21); a21 = fma(vec4<f32>(v1.z), x22, a21); a21 = fma(vec4<f32>(v1.w), x23, a21);
            a22 = fma(vec4<f32>(v2.x), x2a, a22); a22 = fma(vec4<f32>(v2.y), x21, a22); a22 = fma(vec4<f32>(v2.z), x22, a22); a22 = fma(vec4<f32>(v2.w), x23, a22);
            a23 = fma(vec4<f32>(v3.x), x2a, a23); a23 = fma(vec4<f32>(v3.y), x21, a23); a23 = fma(vec4<f32>(v3.z), x22, a23); a23 = fma(vec4<f32>(v3.w), x23, a23);
            x2a = x2b;
        }
        row_next(&r);
    }
    if (t_raw >= total) { return; }
    let k0 = (c * 3u + 0u) * 3u;
    w4_store(split, m0, k0, k0 + 3u, a00); w4_store(split, m0 + 1u, k0, k0 + 3u, a01); w4_store(split, m0 + 2u, k0, k0 + 3u, a02); w4_store(split, m0 + 3u, k0, k0 + 3u, a03);
    let k1 = (c * 3u + 1u) * 3u;
    w4_store(split, m0, k1, k1 + 3u, a10); w4_store(split, m0 + 1u, k1, k1 + 3u, a11); w4_store(split, m0 + 2u, k1, k1 + 3u, a12); w4_store(split, m0 + 3u, k1, k1 + 3u, a13);
    let k2 = (c * 3u + 2u) * 3u;
    w4_store(split, m0, k2, k2 + 3u, a20); w4_store(split, m0 + 1u, k2, k2 + 3u, a21); w4_store(split, m0 + 2u, k2, k2 + 3u, a22); w4_store(split, m0 + 3u, k2, k2 + 3u, a23);
}

// wgrad_reg_s1_k3 with 8 output channels per invocation (t names (split, block of 8, input
// channel)): 3 x loads per 288 multiply-adds where the 4-channel kernel takes 3 per 144; gy comes
// through the same helpers in two groups of four. For more than 4 output channels.
@compute @workgroup_size(64)
fn wgrad_reg_s1_k3_r8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let pairs = p.cx * ((p.cy + 7u) / 8u);
    let total = pairs * p.splits;
    let t_raw = flat(wid, nwg, lid);
    let lane = load_lane();
    if (lanes_done(t_raw >= total)) { return; }
    let t = min(t_raw, total - 1u);
    // t / cx names (split, output block), so the gy rows every lane of a run reads.
    var gy_run = gy_run_start(t / p.cx);
    let split = t / pairs;
    let c = t % p.cx;
    let m0 = ((t % pairs) / p.cx) * 8u;
    let q_end = p.wy / 4u;
    var a0_0 = vec4<f32>(0.0); var a0_1 = vec4<f32>(0.0); var a0_2 = vec4<f32>(0.0); var a0_3 = vec4<f32>(0.0); var a0_4 = vec4<f32>(0.0); var a0_5 = vec4<f32>(0.0); var a0_6 = vec4<f32>(0.0); var a0_7 = vec4<f32>(0.0);
    var a1_0 = vec4<f32>(0.0); var a1_1 = vec4<f32>(0.0); var a1_2 = vec4<f32>(0.0); var a1_3 = vec4<f32>(0.0); var a1_4 = vec4<f32>(0.0); var a1_5 = vec4<f32>(0.0); var a1_6 = vec4<f32>(0.0); var a1_7 = vec4<f32>(0.0);
    var a2_0 = vec4<f32>(0.0); var a2_1 = vec4<f32>(0.0); var a2_2 = vec4<f32>(0.0); var a2_3 = vec4<f32>(0.0); var a2_4 = vec4<f32>(0.0); var a2_5 = vec4<f32>(0.0); var a2_6 = vec4<f32>(0.0); var a2_7 = vec4<f32>(0.0);
    let rows_end = min(p.n * p.hy, (split + 1u) * p.chunk);
    var r = row_at(split * p.chunk);
    for (var g = split * p.chunk; g < rows_end; g = g + 1u) {
        let glo = vec4<u32>(w4_gy_row(m0, r), w4_gy_row(m0 + 1u, r), w4_gy_row(m0 + 2u, r), w4_gy_row(m0 + 3u, r));
        let ghi = vec4<u32>(w4_gy_row(m0 + 4u, r), w4_gy_row(m0 + 5u, r), w4_gy_row(m0 + 6u, r), w4_gy_row(m0 + 7u, r));
        let x0row = w4_x_row(r, c, 0u, 0u);
        let x1row = w4_x_row(r, c, 1u, 0u);
        let x2row = w4_x_row(r, c, 2u, 0u);
        var x0a = w4_x[x0row];
        var x1a = w4_x[x1row];
        var x2a = w4_x[x2row];
        for (var q = 0u; q < q_end; q = q + 1u) {
            let vl = gy_blocks(&gy_run, glo, q, q_end, lane, 0u);
            let vh = gy_blocks(&gy_run, ghi, q, q_end, lane, 1u);
            let v0 = vl[0]; let v1 = vl[1]; let v2 = vl[2]; let v3 = vl[3];
            let v4 = vh[0]; let v5 = vh[1]; let v6 = vh[2]; let v7 = vh[3];
            let x0b = w4_x[x0row + q + 1u];
            let x01 = vec4<f32>(x0a.yzw, x0b.x); let x02 = vec4<f32>(x0a.zw, x0b.xy); let x03 = vec4<f32>(x0a.w, x0b.xyz);
            a0_0 = fma(vec4<f32>(v0.x), x0a, a0_0); a0_0 = fma(vec4<f32>(v0.y), x01, a0_0); a0_0 = fma(vec4<f32>(v0.z), x02, a0_0); a0_0 = fma(vec4<f32>(v0.w), x03, a0_0);
            a0_1 = fma(vec4<f32>(v1.x), x0a, a0_1); a0_1 = fma(vec4<f32>(v1.y), x01, a0_1); a0_1 = fma(vec4<f32>(v1.z), x02, a0_1); a0_1 = fma(vec4<f32>(v1.w), x03, a0_1);
            a0_2 = fma(vec4<f32>(v2.x), x0a, a0_2); a0_2 = fma(vec4<f32>(v2.y), x01, a0_2); a0_2 = fma(vec4<f32>(v2.z), x02, a0_2); a0_2 = fma(vec4<f32>(v2.w), x03, a0_2);
            a0_3 = fma(vec4<f32>(v3.x), x0a, a0_3); a0_3 = fma(vec4<f32>(v3.y), x01, a0_3); a0_3 = fma(vec4<f32>(v3.z), x02, a0_3); a0_3 = fma(vec4<f32>(v3.w), x03, a0_3);
            a0_4 = fma(vec4<f32>(v4.x), x0a, a0_4); a0_4 = fma(vec4<f32>(v4.y), x01, a0_4); a0_4 = fma(vec4<f32>(v4.z), x02, a0_4); a0_4 = fma(vec4<f32>(v4.w), x03, a0_4);
            a0_5 = fma(vec4<f32>(v5.x), x0a, a0_5); a0_5 = fma(vec4<f32>(v5.y), x01, a0_5); a0_5 = fma(vec4<f32>(v5.z), x02, a0_5); a0_5 = fma(vec4<f32>(v5.w), x03, a0_5);
            a0_6 = fma(vec4<f32>(v6.x), x0a, a0_6); a0_6 = fma(vec4<f32>(v6.y), x01, a0_6); a0_6 = fma(vec4<f32>(v6.z), x02, a0_6); a0_6 = fma(vec4<f32>(v6.w), x03, a0_6);
            a0_7 = fma(vec4<f32>(v7.x), x0a, a0_7); a0_7 = fma(vec4<f32>(v7.y), x01, a0_7); a0_7 = fma(vec4<f32>(v7.z), x02, a0_7); a0_7 = fma(vec4<f32>(v7.w), x03, a0_7);
            x0a = x0b;
            let x1b = w4_x[x1row + q + 1u];
            let x11 = vec4<f32>(x1a.yzw, x1b.x); let x12 = vec4<f32>(x1a.zw, x1b.xy); let x13 = vec4<f32>(x1a.w, x1b.xyz);
            a1_0 = fma(vec4<f32>(v0.x), x1a, a1_0); a1_0 = fma(vec4<f32>(v0.y), x11, a1_0); a1_0 = fma(vec4<f32>(v0.z), x12, a1_0); a1_0 = fma(vec4<f32>(v0.w), x13, a1_0);
            a1_1 = fma(vec4<f32>(v1.x), x1a, a1_1); a1_1 = fma(vec4<f32>(v1.y), x11, a1_1); a1_1 = fma(vec4<f32>(v1.z), x12, a1_1); a1_1 = fma(vec4<f32>(v1.w), x13, a1_1);
            a1_2 = fma(vec4<f32>(v2.x), x1a, a1_2); a1_2 = fma(vec4<f32>(v2.y), x11, a1_2); a1_2 = fma(vec4<f32>(v2.z), x12, a1_2); a1_2 = fma(vec4<f32>(v2.w), x13, a1_2);
            a1_3 = fma(vec4<f32>(v3.x), x1a, a1_3); a1_3 = fma(vec4<f32>(v3.y), x11, a1_3); a1_3 = fma(vec4<f32>(v3.z), x12, a1_3); a1_3 = fma(vec4<f32>(v3.w), x13, a1_3);
            a1_4 = fma(vec4<f32>(v4.x), x1a, a1_4); a1_4 = fma(vec4<f32>(v4.y), x11, a1_4); a1_4 = fma(vec4<f32>(v4.z), x12, a1_4); a1_4 = fma(vec4<f32>(v4.w), x13, a1_4);
            a1_5 = fma(vec4<f32>(v5.x), x1a, a1_5); a1_5 = fma(vec4<f32>(v5.y), x11, a1_5); a1_5 = fma(vec4<f32>(v5.z), x12, a1_5); a1_5 = fma(vec4<f32>(v5.w), x13, a1_5);
            a1_6 = fma(vec4<f32>(v6.x), x1a, a1_6); a1_6 = fma(vec4<f32>(v6.y), x11, a1_6); a1_6 = fma(vec4<f32>(v6.z), x12, a1_6); a1_6 = fma(vec4<f32>(v6.w), x13, a1_6);
            a1_7 = fma(vec4<f32>(v7.x), x1a, a1_7); a1_7 = fma(vec4<f32>(v7.y), x11, a1_7); a1_7 = fma(vec4<f32>(v7.z), x12, a1_7); a1_7 = fma(vec4<f32>(v7.w), x13, a1_7);
            x1a = x1b;
            let x2b = w4_x[x2row + q + 1u];
            let x21 = vec4<f32>(x2a.yzw, x2b.x); let x22 = vec4<f32>(x2a.zw, x2b.xy); let x23 = vec4<f32>(x2a.w, x2b.xyz);
            a2_0 = fma(vec4<f32>(v0.x), x2a, a2_0); a2_0 = fma(vec4<f32>(v0.y), x21, a2_0); a2_0 = fma(vec4<f32>(v0.z), x22, a2_0); a2_0 = fma(vec4<f32>(v0.w), x23, a2_0);
            a2_1 = fma(vec4<f32>(v1.x), x2a, a2_1); a2_1 = fma(vec4<f32>(v1.y), x21, a2_1); a2_1 = fma(vec4<f32>(v1.z), x22, a2_1); a2_1 = fma(vec4<f32>(v1.w), x23, a2_1);
            a2_2 = fma(vec4<f32>(v2.x), x2a, a2_2); a2_2 = fma(vec4<f32>(v2.y), x21, a2_2); a2_2 = fma(vec4<f32>(v2.z), x22, a2_2); a2_2 = fma(vec4<f32>(v2.w), x23, a2_2);
            a2_3 = fma(vec4<f32>(v3.x), x2a, a2_3); a2_3 = fma(vec4<f32>(v3.y), x21, a2_3); a2_3 = fma(vec4<f32>(v3.z), x22, a2_3); a2_3 = fma(vec4<f32>(v3.w), x23, a2_3);
            a2_4 = fma(vec4<f32>(v4.x), x2a, a2_4); a2_4 = fma(vec4<f32>(v4.y), x21, a2_4); a2_4 = fma(vec4<f32>(v4.z), x22, a2_4); a2_4 = fma(vec4<f32>(v4.w), x23, a2_4);
            a2_5 = fma(vec4<f32>(v5.x), x2a, a2_5); a2_5 = fma(vec4<f32>(v5.y), x21, a2_5); a2_5 = fma(vec4<f32>(v5.z), x22, a2_5); a2_5 = fma(vec4<f32>(v5.w), x23, a2_5);
            a2_6 = fma(vec4<f32>(v6.x), x2a, a2_6); a2_6 = fma(vec4<f32>(v6.y), x21, a2_6); a2_6 = fma(vec4<f32>(v6.z), x22, a2_6); a2_6 = fma(vec4<f32>(v6.w), x23, a2_6);
            a2_7 = fma(vec4<f32>(v7.x), x2a, a2_7); a2_7 = fma(vec4<f32>(v7.y), x21, a2_7); a2_7 = fma(vec4<f32>(v7.z), x22, a2_7); a2_7 = fma(vec4<f32>(v7.w), x23, a2_7);
            x2a = x2b;
        }
        row_next(&r);
    }
    if (t_raw >= total) { return; }
    let k0 = (c * 3u + 0u) * 3u;
    w4_store(split, m0 + 0u, k0, k0 + 3u, a0_0); w4_store(split, m0 + 1u, k0, k0 + 3u, a0_1); w4_store(split, m0 + 2u, k0, k0 + 3u, a0_2); w4_store(split, m0 + 3u, k0, k0 + 3u, a0_3); w4_store(split, m0 + 4u, k0, k0 + 3u, a0_4); w4_store(split, m0 + 5u, k0, k0 + 3u, a0_5); w4_store(split, m0 + 6u, k0, k0 + 3u, a0_6); w4_store(split, m0 + 7u, k0, k0 + 3u, a0_7);
    let k1 = (c * 3u + 1u) * 3u;
    w4_store(split, m0 + 0u, k1, k1 + 3u, a1_0); w4_store(split, m0 + 1u, k1, k1 + 3u, a1_1); w4_store(split, m0 + 2u, k1, k1 + 3u, a1_2); w4_store(split, m0 + 3u, k1, k1 + 3u, a1_3); w4_store(split, m0 + 4u, k1, k1 + 3u, a1_4); w4_store(split, m0 + 5u, k1, k1 + 3u, a1_5); w4_store(split, m0 + 6u, k1, k1 + 3u, a1_6); w4_store(split, m0 + 7u, k1, k1 + 3u, a1_7);
    let k2 = (c * 3u + 2u) * 3u;
    w4_store(split, m0 + 0u, k2, k2 + 3u, a2_0); w4_store(split, m0 + 1u, k2, k2 + 3u, a2_1); w4_store(split, m0 + 2u, k2, k2 + 3u, a2_2); w4_store(split, m0 + 3u, k2, k2 + 3u, a2_3); w4_store(split, m0 + 4u, k2, k2 + 3u, a2_4); w4_store(split, m0 + 5u, k2, k2 + 3u, a2_5); w4_store(split, m0 + 6u, k2, k2 + 3u, a2_6); w4_store(split, m0 + 7u, k2, k2 + 3u, a2_7);
}

// Weight gradient of 4x4 stride-2 convs (the SSIM autoencoder's encoder, and its decoder's
// transposed convs through their direct map): one invocation per (input channel, 8-output-channel
// block) pair takes all 16 taps. Over 4 destination columns ow0..ow0+3, tap (ky, kx) reads source
// columns 2 ow + kx of row 2 oh + ky, so a row's window of 12 columns (three vec4s, two new per
// block) serves all 4 of its taps: for channel m, a{m}{ky} (over kx) += v.x * w[0..4] + v.y *
// w[2..6] + v.z * w[4..8] + v.w * w[6..10]. 32 x and 32 gy components per 512 multiply-adds,
// where wgrad_reg loads 12 per 32. x: padded, rows a multiple of 4 wide; gy: padded to wy4 columns.
@compute @workgroup_size(64)
fn wgrad_reg_s2_k4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let pairs = p.cx * ((p.cy + 7u) / 8u);
    let total = pairs * p.splits;
    let t_raw = flat(wid, nwg, lid);
    let lane = load_lane();
    if (lanes_done(t_raw >= total)) { return; }
    let t = min(t_raw, total - 1u);
    // t / cx names (split, output block), so the gy rows every lane of a run reads.
    var gy_run = gy_run_start(t / p.cx);
    let split = t / pairs;
    let c = t % p.cx;
    let m0 = ((t % pairs) / p.cx) * 8u;
    let q_end = p.wy / 4u;
    var a00 = vec4<f32>(0.0); var a01 = vec4<f32>(0.0); var a02 = vec4<f32>(0.0); var a03 = vec4<f32>(0.0);
    var a10 = vec4<f32>(0.0); var a11 = vec4<f32>(0.0); var a12 = vec4<f32>(0.0); var a13 = vec4<f32>(0.0);
    var a20 = vec4<f32>(0.0); var a21 = vec4<f32>(0.0); var a22 = vec4<f32>(0.0); var a23 = vec4<f32>(0.0);
    var a30 = vec4<f32>(0.0); var a31 = vec4<f32>(0.0); var a32 = vec4<f32>(0.0); var a33 = vec4<f32>(0.0);
    var a40 = vec4<f32>(0.0); var a41 = vec4<f32>(0.0); var a42 = vec4<f32>(0.0); var a43 = vec4<f32>(0.0);
    var a50 = vec4<f32>(0.0); var a51 = vec4<f32>(0.0); var a52 = vec4<f32>(0.0); var a53 = vec4<f32>(0.0);
    var a60 = vec4<f32>(0.0); var a61 = vec4<f32>(0.0); var a62 = vec4<f32>(0.0); var a63 = vec4<f32>(0.0);
    var a70 = vec4<f32>(0.0); var a71 = vec4<f32>(0.0); var a72 = vec4<f32>(0.0); var a73 = vec4<f32>(0.0);
    let rows_end = min(p.n * p.hy, (split + 1u) * p.chunk);
    var r = row_at(split * p.chunk);
    for (var g = split * p.chunk; g < rows_end; g = g + 1u) {
        let g0 = w4_gy_row(m0, r);
        let g1 = w4_gy_row(m0 + 1u, r);
        let g2 = w4_gy_row(m0 + 2u, r);
        let g3 = w4_gy_row(m0 + 3u, r);
        let g4 = w4_gy_row(m0 + 4u, r);
        let g5 = w4_gy_row(m0 + 5u, r);
        let g6 = w4_gy_row(m0 + 6u, r);
        let g7 = w4_gy_row(m0 + 7u, r);
        let x0row = w4_x_row(r, c, 0u, 0u);
        let x1row = w4_x_row(r, c, 1u, 0u);
        let x2row = w4_x_row(r, c, 2u, 0u);
        let x3row = w4_x_row(r, c, 3u, 0u);
        var x0p = w4_x[x0row];
        var x1p = w4_x[x1row];
        var x2p = w4_x[x2row];
        var x3p = w4_x[x3row];
        for (var q = 0u; q < q_end; q = q + 1u) {
            let v = gy_blocks(&gy_run, vec4<u32>(g0, g1, g2, g3), q, q_end, lane, 0u);
            let u = gy_blocks(&gy_run, vec4<u32>(g4, g5, g6, g7), q, q_end, lane, 1u);
            let v0 = v[0]; let v1 = v[1]; let v2 = v[2]; let v3 = v[3];
            let v4 = u[0]; let v5 = u[1]; let v6 = u[2]; let v7 = u[3];
            let x0a = w4_x[x0row + 2u * q + 1u];
            let x0b = w4_x[x0row + 2u * q + 2u];
            let x0s1 = vec4<f32>(x0p.zw, x0a.xy); let x0s3 = vec4<f32>(x0a.zw, x0b.xy);
            a00 = fma(vec4<f32>(v0.x), x0p, a00); a00 = fma(vec4<f32>(v0.y), x0s1, a00); a00 = fma(vec4<f32>(v0.z), x0a, a00); a00 = fma(vec4<f32>(v0.w), x0s3, a00);
            a10 = fma(vec4<f32>(v1.x), x0p, a10); a10 = fma(vec4<f32>(v1.y), x0s1, a10); a10 = fma(vec4<f32>(v1.z), x0a, a10); a10 = fma(vec4<f32>(v1.w), x0s3, a10);
            a20 = fma(vec4<f32>(v2.x), x0p, a20); a20 = fma(vec4<f32>(v2.y), x0s1, a20); a20 = fma(vec4<f32>(v2.z), x0a, a20); a20 = fma(vec4<f32>(v2.w), x0s3, a20);
            a30 = fma(vec4<f32>(v3.x), x0p, a30); a30 = fma(vec4<f32>(v3.y), x0s1, a30); a30 = fma(vec4<f32>(v3.z), x0a, a30); a30 = fma(vec4<f32>(v3.w), x0s3, a30);
            a40 = fma(vec4<f32>(v4.x), x0p, a40); a40 = fma(vec4<f32>(v4.y), x0s1, a40); a40 = fma(vec4<f32>(v4.z), x0a, a40); a40 = fma(vec4<f32>(v4.w), x0s3, a40);
            a50 = fma(vec4<f32>(v5.x), x0p, a50); a50 = fma(vec4<f32>(v5.y), x0s1, a50); a50 = fma(vec4<f32>(v5.z), x0a, a50); a50 = fma(vec4<f32>(v5.w), x0s3, a50);
            a60 = fma(vec4<f32>(v6.x), x0p, a60); a60 = fma(vec4<f32>(v6.y), x0s1, a60); a60 = fma(vec4<f32>(v6.z), x0a, a60); a60 = fma(vec4<f32>(v6.w), x0s3, a60);
            a70 = fma(vec4<f32>(v7.x), x0p, a70); a70 = fma(vec4<f32>(v7.y), x0s1, a70); a70 = fma(vec4<f32>(v7.z), x0a, a70); a70 = fma(vec4<f32>(v7.w), x0s3, a70);
            x0p = x0b;
            let x1a = w4_x[x1row + 2u * q + 1u];
            let x1b = w4_x[x1row + 2u * q + 2u];
            let x1s1 = vec4<f32>(x1p.zw, x1a.xy); let x1s3 = vec4<f32>(x1a.zw, x1b.xy);
            a01 = fma(vec4<f32>(v0.x), x1p, a01); a01 = fma(vec4<f32>(v0.y), x1s1, a01); a01 = fma(vec4<f32>(v0.z), x1a, a01); a01 = fma(vec4<f32>(v0.w), x1s3, a01);
            a11 = fma(vec4<f32>(v1.x), x1p, a11); a11 = fma(vec4<f32>(v1.y), x1s1, a11); a11 = fma(vec4<f32>(v1.z), x1a, a11); a11 = fma(vec4<f32>(v1.w), x1s3, a11);
            a21 = fma(vec4<f32>(v2.x), x1p, a21); a21 = fma(vec4<f32>(v2.y), x1s1, a21); a21 = fma(vec4<f32>(v2.z), x1a, a21); a21 = fma(vec4<f32>(v2.w), x1s3, a21);
            a31 = fma(vec4<f32>(v3.x), x1p, a31); a31 = fma(vec4<f32>(v3.y), x1s1, a31); a31 = fma(vec4<f32>(v3.z), x1a, a31); a31 = fma(vec4<f32>(v3.w), x1s3, a31);
            a41 = fma(vec4<f32>(v4.x), x1p, a41); a41 = fma(vec4<f32>(v4.y), x1s1, a41); a41 = fma(vec4<f32>(v4.z), x1a, a41); a41 = fma(vec4<f32>(v4.w), x1s3, a41);
            a51 = fma(vec4<f32>(v5.x), x1p, a51); a51 = fma(vec4<f32>(v5.y), x1s1, a51); a51 = fma(vec4<f32>(v5.z), x1a, a51); a51 = fma(vec4<f32>(v5.w), x1s3, a51);
            a61 = fma(vec4<f32>(v6.x), x1p, a61); a61 = fma(vec4<f32>(v6.y), x1s1, a61); a61 = fma(vec4<f32>(v6.z), x1a, a61); a61 = fma(vec4<f32>(v6.w), x1s3, a61);
            a71 = fma(vec4<f32>(v7.x), x1p, a71); a71 = fma(vec4<f32>(v7.y), x1s1, a71); a71 = fma(vec4<f32>(v7.z), x1a, a71); a71 = fma(vec4<f32>(v7.w), x1s3, a71);
            x1p = x1b;
            let x2a = w4_x[x2row + 2u * q + 1u];
            let x2b = w4_x[x2row + 2u * q + 2u];
            let x2s1 = vec4<f32>(x2p.zw, x2a.xy); let x2s3 = vec4<f32>(x2a.zw, x2b.xy);
            a02 = fma(vec4<f32>(v0.x), x2p, a02); a02 = fma(vec4<f32>(v0.y), x2s1, a02); a02 = fma(vec4<f32>(v0.z), x2a, a02); a02 = fma(vec4<f32>(v0.w), x2s3, a02);
            a12 = fma(vec4<f32>(v1.x), x2p, a12); a12 = fma(vec4<f32>(v1.y), x2s1, a12); a12 = fma(vec4<f32>(v1.z), x2a, a12); a12 = fma(vec4<f32>(v1.w), x2s3, a12);
            a22 = fma(vec4<f32>(v2.x), x2p, a22); a22 = fma(vec4<f32>(v2.y), x2s1, a22); a22 = fma(vec4<f32>(v2.z), x2a, a22); a22 = fma(vec4<f32>(v2.w), x2s3, a22);
            a32 = fma(vec4<f32>(v3.x), x2p, a32); a32 = fma(vec4<f32>(v3.y), x2s1, a32); a32 = fma(vec4<f32>(v3.z), x2a, a32); a32 = fma(vec4<f32>(v3.w), x2s3, a32);
            a42 = fma(vec4<f32>(v4.x), x2p, a42); a42 = fma(vec4<f32>(v4.y), x2s1, a42); a42 = fma(vec4<f32>(v4.z), x2a, a42); a42 = fma(vec4<f32>(v4.w), x2s3, a42);
            a52 = fma(vec4<f32>(v5.x), x2p, a52); a52 = fma(vec4<f32>(v5.y), x2s1, a52); a52 = fma(vec4<f32>(v5.z), x2a, a52); a52 = fma(vec4<f32>(v5.w), x2s3, a52);
            a62 = fma(vec4<f32>(v6.x), x2p, a62); a62 = fma(vec4<f32>(v6.y), x2s1, a62); a62 = fma(vec4<f32>(v6.z), x2a, a62); a62 = fma(vec4<f32>(v6.w), x2s3, a62);
            a72 = fma(vec4<f32>(v7.x), x2p, a72); a72 = fma(vec4<f32>(v7.y), x2s1, a72); a72 = fma(vec4<f32>(v7.z), x2a, a72); a72 = fma(vec4<f32>(v7.w), x2s3, a72);
            x2p = x2b;
            let x3a = w4_x[x3row + 2u * q + 1u];
            let x3b = w4_x[x3row + 2u * q + 2u];
            let x3s1 = vec4<f32>(x3p.zw, x3a.xy); let x3s3 = vec4<f32>(x3a.zw, x3b.xy);
            a03 = fma(vec4<f32>(v0.x), x3p, a03); a03 = fma(vec4<f32>(v0.y), x3s1, a03); a03 = fma(vec4<f32>(v0.z), x3a, a03); a03 = fma(vec4<f32>(v0.w), x3s3, a03);
            a13 = fma(vec4<f32>(v1.x), x3p, a13); a13 = fma(vec4<f32>(v1.y), x3s1, a13); a13 = fma(vec4<f32>(v1.z), x3a, a13); a13 = fma(vec4<f32>(v1.w), x3s3, a13);
            a23 = fma(vec4<f32>(v2.x), x3p, a23); a23 = fma(vec4<f32>(v2.y), x3s1, a23); a23 = fma(vec4<f32>(v2.z), x3a, a23); a23 = fma(vec4<f32>(v2.w), x3s3, a23);
            a33 = fma(vec4<f32>(v3.x), x3p, a33); a33 = fma(vec4<f32>(v3.y), x3s1, a33); a33 = fma(vec4<f32>(v3.z), x3a, a33); a33 = fma(vec4<f32>(v3.w), x3s3, a33);
            a43 = fma(vec4<f32>(v4.x), x3p, a43); a43 = fma(vec4<f32>(v4.y), x3s1, a43); a43 = fma(vec4<f32>(v4.z), x3a, a43); a43 = fma(vec4<f32>(v4.w), x3s3, a43);
            a53 = fma(vec4<f32>(v5.x), x3p, a53); a53 = fma(vec4<f32>(v5.y), x3s1, a53); a53 = fma(vec4<f32>(v5.z), x3a, a53); a53 = fma(vec4<f32>(v5.w), x3s3, a53);
            a63 = fma(vec4<f32>(v6.x), x3p, a63); a63 = fma(vec4<f32>(v6.y), x3s1, a63); a63 = fma(vec4<f32>(v6.z), x3a, a63); a63 = fma(vec4<f32>(v6.w), x3s3, a63);
            a73 = fma(vec4<f32>(v7.x), x3p, a73); a73 = fma(vec4<f32>(v7.y), x3s1, a73); a73 = fma(vec4<f32>(v7.z), x3a, a73); a73 = fma(vec4<f32>(v7.w), x3s3, a73);
            x3p = x3b;
        }
        row_next(&r);
    }
    if (t_raw >= total) { return; }
    let k0 = (c * 4u + 0u) * 4u;
    let k1 = (c * 4u + 1u) * 4u;
    let k2 = (c * 4u + 2u) * 4u;
    let k3 = (c * 4u + 3u) * 4u;
    w4_store(split, m0, k0, k0 + 4u, a00); w4_store(split, m0, k1, k1 + 4u, a01); w4_store(split, m0, k2, k2 + 4u, a02); w4_store(split, m0, k3, k3 + 4u, a03);
    w4_store(split, m0 + 1u, k0, k0 + 4u, a10); w4_store(split, m0 + 1u, k1, k1 + 4u, a11); w4_store(split, m0 + 1u, k2, k2 + 4u, a12); w4_store(split, m0 + 1u, k3, k3 + 4u, a13);
    w4_store(split, m0 + 2u, k0, k0 + 4u, a20); w4_store(split, m0 + 2u, k1, k1 + 4u, a21); w4_store(split, m0 + 2u, k2, k2 + 4u, a22); w4_store(split, m0 + 2u, k3, k3 + 4u, a23);
    w4_store(split, m0 + 3u, k0, k0 + 4u, a30); w4_store(split, m0 + 3u, k1, k1 + 4u, a31); w4_store(split, m0 + 3u, k2, k2 + 4u, a32); w4_store(split, m0 + 3u, k3, k3 + 4u, a33);
    w4_store(split, m0 + 4u, k0, k0 + 4u, a40); w4_store(split, m0 + 4u, k1, k1 + 4u, a41); w4_store(split, m0 + 4u, k2, k2 + 4u, a42); w4_store(split, m0 + 4u, k3, k3 + 4u, a43);
    w4_store(split, m0 + 5u, k0, k0 + 4u, a50); w4_store(split, m0 + 5u, k1, k1 + 4u, a51); w4_store(split, m0 + 5u, k2, k2 + 4u, a52); w4_store(split, m0 + 5u, k3, k3 + 4u, a53);
    w4_store(split, m0 + 6u, k0, k0 + 4u, a60); w4_store(split, m0 + 6u, k1, k1 + 4u, a61); w4_store(split, m0 + 6u, k2, k2 + 4u, a62); w4_store(split, m0 + 6u, k3, k3 + 4u, a63);
    w4_store(split, m0 + 7u, k0, k0 + 4u, a70); w4_store(split, m0 + 7u, k1, k1 + 4u, a71); w4_store(split, m0 + 7u, k2, k2 + 4u, a72); w4_store(split, m0 + 7u, k3, k3 + 4u, a73);
}

@compute @workgroup_size(64)
fn wgrad_reg_k1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c0 = (wid.x * 64u + lid) * 4u;
    if (c0 >= p.cx) { return; }
    let m0 = wid.z * 4u;
    let q_end = p.wy / 4u;
    let plane = p.hx * p.wx / 4u;
    // Channels past cx reread channel c0 (finite values); their sums are dropped.
    let s1 = select(0u, plane, c0 + 1u < p.cx);
    let s2 = select(0u, 2u * plane, c0 + 2u < p.cx);
    let s3 = select(0u, 3u * plane, c0 + 3u < p.cx);
    var a0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0); var a2 = vec4<f32>(0.0); var a3 = vec4<f32>(0.0);
    let rows_end = min(p.n * p.hy, (wid.y + 1u) * p.chunk);
    var r = row_at(wid.y * p.chunk);
    for (var g = wid.y * p.chunk; g < rows_end; g = g + 1u) {
        let n = r.n;
        let oh = r.oh;
        let xrow = ((n * p.cx + c0) * p.hx + oh * p.sh) * (p.wx / 4u);
        let g0 = w4_gy_row(m0, r);
        let g1 = w4_gy_row(m0 + 1u, r);
        let g2 = w4_gy_row(m0 + 2u, r);
        let g3 = w4_gy_row(m0 + 3u, r);
        for (var q = 0u; q < q_end; q = q + 1u) {
            let x0 = w4_x[xrow + q];
            let x1 = w4_x[xrow + s1 + q];
            let x2 = w4_x[xrow + s2 + q];
            let x3 = w4_x[xrow + s3 + q];
            let v0 = w4_gy[g0 + q];
            let v1 = w4_gy[g1 + q];
            let v2 = w4_gy[g2 + q];
            let v3 = w4_gy[g3 + q];
            a0 = a0 + vec4<f32>(dot(v0, x0), dot(v0, x1), dot(v0, x2), dot(v0, x3));
            a1 = a1 + vec4<f32>(dot(v1, x0), dot(v1, x1), dot(v1, x2), dot(v1, x3));
            a2 = a2 + vec4<f32>(dot(v2, x0), dot(v2, x1), dot(v2, x2), dot(v2, x3));
            a3 = a3 + vec4<f32>(dot(v3, x0), dot(v3, x1), dot(v3, x2), dot(v3, x3));
        }
        row_next(&r);
    }
    w4_store(wid.y, m0, c0, p.cx, a0);
    w4_store(wid.y, m0 + 1u, c0, p.cx, a1);
    w4_store(wid.y, m0 + 2u, c0, p.cx, a2);
    w4_store(wid.y, m0 + 3u, c0, p.cx, a3);
}

// ---------------------------------------------------------------------------------------------
// Workgroup-memory tiled implicit GEMM (GPUs). 256 invocations, 4 x 4 outputs each, laid out as
// tile_m x (256 / tile_m) invocations over a (4 tile_m) x (1024 / tile_m) tile of C, K in steps of
// tile_k staged through workgroup memory. The host picks tile_m by the row count (out channels) so
// that few-channel layers do not fill 64-row tiles with zeros: 4 (16 x 256, tile_k 8), 8 (32 x 128)
// or 16 (64 x 64), tile_k 16. mode 0 = direct, 1 = transposed, 2 = weight gradient (wid.z = split
// of the reduction, output partials like wgrad_reg), 3 = one output phase of a strided transposed
// map (see gt_phase). Source x is unpadded: tile loads check bounds.
// ga: the weight (modes 0, 1) or gy (mode 2).
//
// Index arithmetic, not FMAs, was this kernel's cost (integer division is tens of instructions on
// GPUs): every invocation loads B from one fixed column, decoded once, and each K step's row
// decode is computed once per workgroup into `gt_row`. Both decodes are "places": for the direct
// map a destination pixel gives (x offset, first source row, first source column) and a tap adds
// (offset, row step, column step); B = x at the sum when the row and column are inside. Mode 0
// fixes the pixel per column and takes taps per row; mode 2 the other way round.

@group(0) @binding(1) var<storage, read> gt_a: array<f32>;
@group(0) @binding(2) var<storage, read> gt_x: array<f32>;
@group(0) @binding(3) var<storage, read> gt_b: array<f32>;
@group(0) @binding(4) var<storage, read_write> gt_out: array<f32>;

// Scalar arrays: a store to one component of a shared vec4 may be a read-modify-write of all
// four (the GL backend on llvmpipe lost writes that way), racing with the neighbours' stores.
var<workgroup> tile_a: array<f32, 1024>; // [tile_k][rows]
var<workgroup> tile_b: array<f32, 2048>; // [tile_k][cols]
// Decode of the K step's rows: .xyz a place (modes 0, 2) or mode 1's tap, .w the row's A offset
// (-1 past the end of K).
var<workgroup> gt_row: array<vec4<i32>, 16>;

// Tap t = (c, ky, kx) of the direct map: (x offset, row step, column step).
fn gt_tap(t: u32) -> vec3<i32> {
    let kk = p.kh * p.kw;
    let c = t / kk;
    let ky = (t % kk) / p.kw;
    let kx = t % p.kw;
    return vec3<i32>(i32(c * p.hx * p.wx + ky * p.dh * p.wx + kx * p.dw), i32(ky * p.dh), i32(kx * p.dw));
}

// Destination pixel q = (n, oh, ow) of the direct map: (x offset of the tap (0, 0, 0), its row,
// its column); row and column may be negative (padding).
fn gt_pixel(q: u32) -> vec3<i32> {
    let ohw = p.hy * p.wy;
    let n = q / ohw;
    let ih = i32((q % ohw) / p.wy * p.sh) - i32(p.ph);
    let iw = i32(q % p.wy * p.sw) - i32(p.pw);
    return vec3<i32>(i32(n * p.cx * p.hx * p.wx) + ih * i32(p.wx) + iw, ih, iw);
}

// x at the place f + r, zero outside (modes 0 and 2).
fn gt_x_at(f: vec3<i32>, r: vec3<i32>) -> f32 {
    let ih = f.y + r.y;
    let iw = f.z + r.z;
    let ok = ih >= 0 && ih < i32(p.hx) && iw >= 0 && iw < i32(p.wx);
    return select(0.0, gt_x[select(0u, u32(f.x + r.x), ok)], ok);
}

// Mode 1: f = (n * cx * hx * wx, oh + ph, ow + pw) of the destination pixel, r = (c * hx * wx,
// ky * dh, kx * dw) of the tap; x at ((oh + ph - ky dh) / sh, ..) when both divide, zero otherwise.
fn gt_x_transposed(f: vec3<i32>, r: vec3<i32>) -> f32 {
    let th = f.y - r.y;
    let tw = f.z - r.z;
    // Unsigned division once the numerators are known non-negative (GLSL leaves % and / of
    // negative integers undefined).
    let nonneg = th >= 0 && tw >= 0;
    let uh = select(0u, u32(th), nonneg);
    let uw = select(0u, u32(tw), nonneg);
    let ih = uh / p.sh;
    let iw = uw / p.sw;
    let ok = nonneg && uh % p.sh == 0u && uw % p.sw == 0u && ih < p.hx && iw < p.wx;
    return select(0.0, gt_x[select(0u, u32(f.x + r.x) + ih * p.wx + iw, ok)], ok);
}

// Mode 3: a transposed map at stride s (no dilation) reaches output row oh only from taps ky with
// ky = (oh + ph) mod sh, + sh, ...: mode 1 would run every tap and discard all but 1 in sh (3 in
// 4 of a 4x4 stride-2 kernel's products are zeros). So the host dispatches one GEMM per phase
// (qh, qw) = ((oh + ph) % sh, (ow + pw) % sw): its outputs are rows oh0, oh0 + sh, .. (oh0 the
// first with that phase) and columns likewise, its K the input channels times the phase's taps
// ky = qh + i sh, kx = qw + j sw; then output (th, tw) of the phase reads x at (bh + th - i,
// bw + tw - j), bh = (oh0 + ph - qh) / sh (exact): a direct map with unit stride and negative
// tap steps, which mode 0's places express as they are.
struct Phase { oh0: u32, ow0: u32, rows: u32, cols: u32, khq: u32, kwq: u32, bh: i32, bw: i32 }

fn gt_phase() -> Phase {
    var f: Phase;
    f.oh0 = (p.phase_h + p.sh - p.ph % p.sh) % p.sh;
    f.ow0 = (p.phase_w + p.sw - p.pw % p.sw) % p.sw;
    f.rows = select(0u, (p.hy - f.oh0 + p.sh - 1u) / p.sh, f.oh0 < p.hy);
    f.cols = select(0u, (p.wy - f.ow0 + p.sw - 1u) / p.sw, f.ow0 < p.wy);
    f.khq = select(0u, (p.kh - p.phase_h + p.sh - 1u) / p.sh, p.phase_h < p.kh);
    f.kwq = select(0u, (p.kw - p.phase_w + p.sw - 1u) / p.sw, p.phase_w < p.kw);
    f.bh = i32((f.oh0 + p.ph - p.phase_h) / p.sh);
    f.bw = i32((f.ow0 + p.pw - p.phase_w) / p.sw);
    return f;
}

// Mode 3's column q = (n, th, tw) of the phase: the place of x at (bh + th, bw + tw).
fn gt_phase_pixel(f: Phase, q: u32) -> vec3<i32> {
    let per = f.rows * f.cols;
    let n = q / per;
    let ih = f.bh + i32((q % per) / f.cols);
    let iw = f.bw + i32(q % f.cols);
    return vec3<i32>(i32(n * p.cx * p.hx * p.wx) + ih * i32(p.wx) + iw, ih, iw);
}

// Mode 3's K row k = (c, i, j): the tap's place step (c's plane, i rows and j columns back) and
// its A offset, w[c, ., qh + i sh, qw + j sw].
fn gt_phase_tap(f: Phase, k: u32) -> vec4<i32> {
    let per = f.khq * f.kwq;
    let c = k / per;
    let i = (k % per) / f.kwq;
    let j = k % f.kwq;
    let a = c * p.cy * p.kh * p.kw + (p.phase_h + i * p.sh) * p.kw + p.phase_w + j * p.sw;
    return vec4<i32>(i32(c * p.hx * p.wx) - i32(i * p.wx + j), -i32(i), -i32(j), i32(a));
}

// What a tiled workgroup works on, decoded once: the tile's shape (bm x bn outputs, K steps of ks;
// every size a power of two, so / and % are shifts and masks), the product's column count, its K
// range (mode 2: this split's), the stride between A's rows, the tile's first row and column, the
// invocation's place (ty, tx) among the tm x tn invocations, the column it loads B from (`lc` in
// the tile, `fixed` its decode; `col_ok` false past the end), and mode 3's phase.
struct GtTile {
    bm: u32,
    bn: u32,
    ks: u32,
    ty: u32,
    tx: u32,
    cols: u32,
    k_begin: u32,
    k_end: u32,
    a_step: u32,
    m0: u32,
    n0: u32,
    lc: u32,
    col_ok: bool,
    fixed: vec3<i32>,
    phase: Phase,
}

// The workgroup's tile for `block` x `block` outputs per invocation: p.tile_m x (256 / tile_m)
// invocations, so (block tile_m) x (block 256 / tile_m) outputs (bn <= 256: one B column per
// invocation).
fn gt_tile(wid: vec3<u32>, nwg: vec3<u32>, li: u32, block: u32) -> GtTile {
    let kk = p.kh * p.kw;
    let ohw = p.hy * p.wy;
    var t: GtTile;
    let tn = 256u / p.tile_m;
    t.bm = block * p.tile_m;
    t.bn = block * tn;
    t.ks = p.tile_k;
    t.ty = li >> countTrailingZeros(tn);
    t.tx = li & (tn - 1u);
    t.cols = p.n * ohw;
    t.k_begin = 0u;
    t.k_end = p.cx * kk;
    var tile_n = wid.z * nwg.x + wid.x;
    // Stride between the A entries of consecutive rows m.
    t.a_step = p.cx * kk;
    if (p.mode == 1u || p.mode == 3u) { t.a_step = kk; }
    if (p.mode == 2u) {
        t.cols = p.cx * kk;
        t.k_begin = wid.z * p.chunk;
        t.k_end = min(p.n * ohw, t.k_begin + p.chunk);
        tile_n = wid.x;
        t.a_step = ohw;
    }
    if (p.mode == 3u) {
        t.phase = gt_phase();
        t.cols = p.n * t.phase.rows * t.phase.cols;
        t.k_end = p.cx * t.phase.khq * t.phase.kwq;
    }
    t.m0 = wid.y * t.bm;
    t.n0 = tile_n * t.bn;
    t.lc = li & (t.bn - 1u);
    t.col_ok = t.n0 + t.lc < t.cols;
    let lcol = min(t.n0 + t.lc, max(t.cols, 1u) - 1u);
    if (p.mode == 0u) {
        t.fixed = gt_pixel(lcol);
    } else if (p.mode == 2u) {
        t.fixed = gt_tap(lcol);
    } else if (p.mode == 3u) {
        t.fixed = gt_phase_pixel(t.phase, lcol);
    } else {
        let n = lcol / ohw;
        t.fixed = vec3<i32>(i32(n * p.cx * p.hx * p.wx), i32((lcol % ohw) / p.wy + p.ph), i32(lcol % p.wy + p.pw));
    }
    return t;
}

// Stages K rows kt..kt + ks of the tile's A (bm rows) and B (bn columns) in tile_a / tile_b,
// [ks][bm] and [ks][bn]. Called in workgroup-uniform control flow; ends with a barrier, so the
// tiles are ready, and the caller's compute must end with one before the next call.
fn gt_stage(t: GtTile, kt: u32, li: u32) {
    let bm = t.bm;
    let bn = t.bn;
    let ks = t.ks;
    let kk = p.kh * p.kw;
    let ohw = p.hy * p.wy;
    let ks_sh = countTrailingZeros(ks);
    let bn_sh = countTrailingZeros(bn);
    if (li < ks) {
        let k = kt + li;
        let kc = min(k, t.k_end - 1u);
        var row: vec4<i32>;
        if (p.mode == 0u) {
            row = vec4<i32>(gt_tap(kc), i32(kc));
        } else if (p.mode == 2u) {
            let q = kc % ohw;
            row = vec4<i32>(gt_pixel(kc), i32((kc / ohw) * p.cy * ohw + q));
        } else if (p.mode == 3u) {
            row = gt_phase_tap(t.phase, kc);
        } else {
            let c = kc / kk;
            let tap = kc % kk;
            row = vec4<i32>(i32(c * p.hx * p.wx), i32(tap / p.kw * p.dh), i32(tap % p.kw * p.dw), i32(c * p.cy * kk + tap));
        }
        gt_row[li] = select(vec4<i32>(0, 0, 0, -1), row, k < t.k_end);
    }
    workgroupBarrier();
    // A tile: consecutive invocations take consecutive k (contiguous in every mode's A).
    for (var e = li; e < ks * bm; e = e + 256u) {
        let mm = e >> ks_sh;
        let r = e & (ks - 1u);
        let m = t.m0 + mm;
        let row = gt_row[r];
        var va = 0.0;
        if (m < p.cy && row.w >= 0) { va = gt_a[u32(row.w) + m * t.a_step]; }
        tile_a[r * bm + mm] = va;
    }
    // B tile: this invocation's column lc, rows li / bn, li / bn + 256 / bn, ...
    for (var r = li >> bn_sh; r < ks; r = r + (256u >> bn_sh)) {
        let row = gt_row[r];
        var vb = 0.0;
        if (t.col_ok && row.w >= 0) {
            if (p.mode == 1u) {
                vb = gt_x_transposed(t.fixed, row.xyz);
            } else {
                vb = gt_x_at(t.fixed, row.xyz);
            }
        }
        tile_b[r * bn + t.lc] = vb;
    }
    workgroupBarrier();
}

// c + the outer product of a (rows) and b (columns): column i of the result is row i's 4 values.
fn gt_outer(c: mat4x4<f32>, a: vec4<f32>, b: vec4<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(fma(vec4<f32>(a.x), b, c[0]), fma(vec4<f32>(a.y), b, c[1]),
                       fma(vec4<f32>(a.z), b, c[2]), fma(vec4<f32>(a.w), b, c[3]));
}

// Four consecutive values of a staged tile row.
fn gt_a4(i: u32) -> vec4<f32> {
    return vec4<f32>(tile_a[i], tile_a[i + 1u], tile_a[i + 2u], tile_a[i + 3u]);
}

fn gt_b4(i: u32) -> vec4<f32> {
    return vec4<f32>(tile_b[i], tile_b[i + 1u], tile_b[i + 2u], tile_b[i + 3u]);
}

@compute @workgroup_size(256)
fn gemm_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) li: u32) {
    let t = gt_tile(wid, nwg, li, 4u);
    if (t.n0 >= t.cols) { return; } // uniform per workgroup: the grid's last row may overshoot
    let ra = t.ty * 4u;
    let rb = t.tx * 4u;
    var c = mat4x4<f32>();
    for (var kt = t.k_begin; kt < t.k_end; kt = kt + t.ks) {
        gt_stage(t, kt, li);
        for (var r = 0u; r < t.ks; r = r + 1u) {
            c = gt_outer(c, gt_a4(r * t.bm + ra), gt_b4(r * t.bn + rb));
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i = i + 1u) {
        gt_store(t, wid.z, t.m0 + ra + i, t.n0 + rb, c[i]);
    }
}

// gemm_tiled with 8 x 8 outputs per invocation (GPUs, big layers): twice the multiply-adds per
// value read from workgroup memory (64 per 16 read, where 4 x 4 does 16 per 8), which is what
// bounds a tiled GEMM once loads are coalesced. tile_m 8 (64 x 256 tiles) or 16 (128 x 128),
// tile_k 8. An invocation's rows are ty*4.. and bm/2 + ty*4.., its columns tx*4.. and
// bn/2 + tx*4..: neighbouring invocations read neighbouring values of a tile row.
@compute @workgroup_size(256)
fn gemm_tiled8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) li: u32) {
    let t = gt_tile(wid, nwg, li, 8u);
    if (t.n0 >= t.cols) { return; }
    let bm = t.bm;
    let bn = t.bn;
    let ra = t.ty * 4u;
    let rb = t.tx * 4u;
    var c_ll = mat4x4<f32>(); var c_lh = mat4x4<f32>();
    var c_hl = mat4x4<f32>(); var c_hh = mat4x4<f32>();
    for (var kt = t.k_begin; kt < t.k_end; kt = kt + t.ks) {
        gt_stage(t, kt, li);
        for (var r = 0u; r < t.ks; r = r + 1u) {
            let a_lo = gt_a4(r * bm + ra);
            let a_hi = gt_a4(r * bm + bm / 2u + ra);
            let b_lo = gt_b4(r * bn + rb);
            let b_hi = gt_b4(r * bn + bn / 2u + rb);
            c_ll = gt_outer(c_ll, a_lo, b_lo);
            c_lh = gt_outer(c_lh, a_lo, b_hi);
            c_hl = gt_outer(c_hl, a_hi, b_lo);
            c_hh = gt_outer(c_hh, a_hi, b_hi);
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i = i + 1u) {
        gt_store(t, wid.z, t.m0 + ra + i, t.n0 + rb, c_ll[i]);
        gt_store(t, wid.z, t.m0 + ra + i, t.n0 + bn / 2u + rb, c_lh[i]);
        gt_store(t, wid.z, t.m0 + bm / 2u + ra + i, t.n0 + rb, c_hl[i]);
        gt_store(t, wid.z, t.m0 + bm / 2u + ra + i, t.n0 + bn / 2u + rb, c_hh[i]);
    }
}

// Row m, columns col0..col0 + 3 of C (those inside): partials of split `split` in mode 2, else
// y[n, m, pixel] through the epilogue (bias, activation).
fn gt_store(t: GtTile, split: u32, m: u32, col0: u32, v: vec4<f32>) {
    let cols = t.cols;
    if (m >= p.cy) { return; }
    var bias = 0.0;
    if (p.has_bias != 0u && p.mode != 2u) { bias = gt_b[m]; }
    let ohw = p.hy * p.wy;
    for (var j = 0u; j < 4u; j = j + 1u) {
        let col = col0 + j;
        if (col >= cols) { return; }
        if (p.mode == 2u) {
            gt_out[(split * p.cy + m) * cols + col] = v[j];
        } else if (p.mode == 3u) {
            let f = t.phase;
            let per = f.rows * f.cols;
            let oh = f.oh0 + (col % per) / f.cols * p.sh;
            let ow = f.ow0 + col % f.cols * p.sw;
            gt_out[((col / per) * p.cy + m) * ohw + oh * p.wy + ow] = epilogue(v[j], bias);
        } else {
            gt_out[((col / ohw) * p.cy + m) * ohw + col % ohw] = epilogue(v[j], bias);
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
// Bias gradient gb[c] = sum_{n, pixel} gy[n, c, pixel]: one workgroup per (channel wid.x,
// sample chunk wid.y), 64 strided partial sums, then a fixed-order tree in workgroup memory
// (deterministic). With splits > 1 it writes [splits, cy] partials for sum_splits: one workgroup
// per channel would leave a GPU idle on few-channel layers. gy: [n, cy, hy, wy].

@group(0) @binding(1) var<storage, read> bg_gy: array<f32>;
@group(0) @binding(2) var<storage, read_write> bg_out: array<f32>;

var<workgroup> bg_partial: array<f32, 64>;

@compute @workgroup_size(64)
fn bias_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = wid.x;
    let ohw = p.hy * p.wy;
    let n0 = wid.y * p.chunk;
    var acc = 0.0;
    for (var n = n0; n < min(n0 + p.chunk, p.n); n = n + 1u) {
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
        bg_out[wid.y * p.cy + c] = bg_partial[0];
    }
}
