// Windowed SSIM map (Wang et al. 2004; thesis §4.1.4) of x, y: [n, c, h, w], each image padded by
// 5 pixels with the constant `pad_value`, an 11x11 Gaussian window w = g g^T (g: 11 taps, σ 1.5,
// sum 1), so the map has the images' size:
//   S = (2 μx μy + c1)(2 σxy + c2) / ((μx² + μy² + c1)(σx² + σy² + c2))
//   μx = w * x, σx² = w * x² - μx², σxy = w * (x y) - μx μy      (* over the padded image)
// The five moments come from a separable blur: a horizontal pass per image row, then a vertical
// pass. Values are shifted by the pad value first (x' = x - pad): padding becomes zero (one rule for
// forward and backward) and, as the pad value is the training mean, σ² = E[x'²] - μ'² cancels far
// less in f32 than E[x²] - μ² would. Only μx = μ'x + pad enters the luminance term unshifted.
//
// Backward (upstream gS per pixel): with the per-pixel partials of S w.r.t. the five moments
// (dS/dE[x'²] = dS/dE[y'²] = -S / B2, so four planes), the transpose of the blur is the same blur
// with zero padding (the window is symmetric and padding is constant), and
//   dL/dx = w*(gS dS/dμx) + 2 x' w*(gS dS/dE[x'²]) + y' w*(gS dS/dE[x'y'])   (and symmetrically y).
// Passes: moments_h -> forward_v (forward); moments_h -> partials_v -> blur_h -> backward_v.
// Planes of one moment sit back to back in one tensor ([2 or 3, n c h w]) to keep bindings few.
// CPU reference: kernels/src/ssim.rs (a direct 11x11 window over the padded image, in f64).

struct Params {
    n: u32,          // pixels n * c * h * w (one thread each)
    h: u32,
    w: u32,
    _pad0: u32,
    pad_value: f32,
    c1: f32,
    c2: f32,
    _pad1: f32,
    taps: array<vec4<f32>, 3>,   // the 11 Gaussian taps, then zeros
}

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 64u;
const TAPS: i32 = 11;
const RADIUS: i32 = 5;

fn flat(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid;
}

fn tap(k: i32) -> f32 {
    return p.taps[k / 4][k % 4];
}

// The four SSIM factors from the shifted moments.
struct Terms {
    mx: f32,   // unshifted means
    my: f32,
    a1: f32,   // 2 μx μy + c1
    a2: f32,   // 2 σxy + c2
    b1: f32,   // μx² + μy² + c1
    b2: f32,   // σx² + σy² + c2
}

fn terms(mxs: f32, mys: f32, exx: f32, eyy: f32, exy: f32) -> Terms {
    let mx = mxs + p.pad_value;
    let my = mys + p.pad_value;
    var t: Terms;
    t.mx = mx;
    t.my = my;
    t.a1 = 2.0 * mx * my + p.c1;
    t.b1 = mx * mx + my * my + p.c1;
    t.a2 = 2.0 * (exy - mxs * mys) + p.c2;
    t.b2 = (exx - mxs * mxs) + (eyy - mys * mys) + p.c2;
    return t;
}

// ---- moments_h: horizontal blur of x', y', x'², y'², x'y' (columns outside the image are 0).
@group(0) @binding(1) var<storage, read> mh_x: array<f32>;
@group(0) @binding(2) var<storage, read> mh_y: array<f32>;
@group(0) @binding(3) var<storage, read_write> mh_m: array<f32>;   // [2, n]: x', y'
@group(0) @binding(4) var<storage, read_write> mh_s: array<f32>;   // [3, n]: x'², y'², x'y'

@compute @workgroup_size(64)
fn moments_h(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let col = i32(i % p.w);
    let row0 = i - u32(col);
    let wi = i32(p.w);
    var mx = 0.0;
    var my = 0.0;
    var xx = 0.0;
    var yy = 0.0;
    var xy = 0.0;
    for (var k = 0; k < TAPS; k = k + 1) {
        let c = col + k - RADIUS;
        let inside = c >= 0 && c < wi;
        // Clamped index so the load stays in bounds; select zeroes it outside (no divergence).
        let j = row0 + u32(clamp(c, 0, wi - 1));
        let a = select(0.0, mh_x[j] - p.pad_value, inside);
        let b = select(0.0, mh_y[j] - p.pad_value, inside);
        let t = tap(k);
        mx = mx + t * a;
        my = my + t * b;
        xx = xx + t * a * a;
        yy = yy + t * b * b;
        xy = xy + t * a * b;
    }
    mh_m[i] = mx;
    mh_m[p.n + i] = my;
    mh_s[i] = xx;
    mh_s[p.n + i] = yy;
    mh_s[2u * p.n + i] = xy;
}

// ---- forward_v: vertical blur of the five row-blurred planes (rows outside are 0), then S.
@group(0) @binding(1) var<storage, read> fv_m: array<f32>;
@group(0) @binding(2) var<storage, read> fv_s: array<f32>;
@group(0) @binding(3) var<storage, read_write> fv_out: array<f32>;

@compute @workgroup_size(64)
fn forward_v(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let row = i32((i / p.w) % p.h);
    let col0 = i - u32(row) * p.w;   // this column in row 0 of the image
    let hi = i32(p.h);
    var mx = 0.0;
    var my = 0.0;
    var xx = 0.0;
    var yy = 0.0;
    var xy = 0.0;
    for (var k = 0; k < TAPS; k = k + 1) {
        let r = row + k - RADIUS;
        let inside = r >= 0 && r < hi;
        let j = col0 + u32(clamp(r, 0, hi - 1)) * p.w;
        let t = select(0.0, tap(k), inside);
        mx = mx + t * fv_m[j];
        my = my + t * fv_m[p.n + j];
        xx = xx + t * fv_s[j];
        yy = yy + t * fv_s[p.n + j];
        xy = xy + t * fv_s[2u * p.n + j];
    }
    let s = terms(mx, my, xx, yy, xy);
    fv_out[i] = (s.a1 * s.a2) / (s.b1 * s.b2);
}

// ---- partials_v: the same vertical blur, then gS times the partials of S w.r.t. the moments.
@group(0) @binding(1) var<storage, read> pv_m: array<f32>;
@group(0) @binding(2) var<storage, read> pv_s: array<f32>;
@group(0) @binding(3) var<storage, read> pv_gs: array<f32>;
@group(0) @binding(4) var<storage, read_write> pv_pm: array<f32>;   // [2, n]: d/dμx, d/dμy
@group(0) @binding(5) var<storage, read_write> pv_ps: array<f32>;   // [2, n]: d/dE[x'²] (= d/dE[y'²]), d/dE[x'y']

@compute @workgroup_size(64)
fn partials_v(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let row = i32((i / p.w) % p.h);
    let col0 = i - u32(row) * p.w;
    let hi = i32(p.h);
    var mx = 0.0;
    var my = 0.0;
    var xx = 0.0;
    var yy = 0.0;
    var xy = 0.0;
    for (var k = 0; k < TAPS; k = k + 1) {
        let r = row + k - RADIUS;
        let inside = r >= 0 && r < hi;
        let j = col0 + u32(clamp(r, 0, hi - 1)) * p.w;
        let t = select(0.0, tap(k), inside);
        mx = mx + t * pv_m[j];
        my = my + t * pv_m[p.n + j];
        xx = xx + t * pv_s[j];
        yy = yy + t * pv_s[p.n + j];
        xy = xy + t * pv_s[2u * p.n + j];
    }
    let s = terms(mx, my, xx, yy, xy);
    // S = A1 A2 / D, D = B1 B2; dS = S (dA1/A1 + dA2/A2 - dB1/B1 - dB2/B2), written without
    // dividing by A1 or A2 (either may be 0). dA2/dμ'x = -2 μ'y, dB2/dμ'x = -2 μ'x.
    let d = 1.0 / (s.b1 * s.b2);
    let ssim = s.a1 * s.a2 * d;
    let g = pv_gs[i];
    pv_pm[i] = g * (2.0 * (s.my * s.a2 - my * s.a1) * d + 2.0 * ssim * (mx / s.b2 - s.mx / s.b1));
    pv_pm[p.n + i] = g * (2.0 * (s.mx * s.a2 - mx * s.a1) * d + 2.0 * ssim * (my / s.b2 - s.my / s.b1));
    pv_ps[i] = g * (-ssim / s.b2);
    pv_ps[p.n + i] = g * (2.0 * s.a1 * d);
}

// ---- blur_h: horizontal blur of the four partial planes, zero padding (the transposed window).
@group(0) @binding(1) var<storage, read> bh_pm: array<f32>;
@group(0) @binding(2) var<storage, read> bh_ps: array<f32>;
@group(0) @binding(3) var<storage, read_write> bh_qm: array<f32>;
@group(0) @binding(4) var<storage, read_write> bh_qs: array<f32>;

@compute @workgroup_size(64)
fn blur_h(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let col = i32(i % p.w);
    let row0 = i - u32(col);
    let wi = i32(p.w);
    var a = 0.0;
    var b = 0.0;
    var c = 0.0;
    var e = 0.0;
    for (var k = 0; k < TAPS; k = k + 1) {
        let cc = col + k - RADIUS;
        let inside = cc >= 0 && cc < wi;
        let j = row0 + u32(clamp(cc, 0, wi - 1));
        let t = select(0.0, tap(k), inside);
        a = a + t * bh_pm[j];
        b = b + t * bh_pm[p.n + j];
        c = c + t * bh_ps[j];
        e = e + t * bh_ps[p.n + j];
    }
    bh_qm[i] = a;
    bh_qm[p.n + i] = b;
    bh_qs[i] = c;
    bh_qs[p.n + i] = e;
}

// ---- backward_v: vertical blur of the row-blurred partials, zero padding, then the chain rule
// through the moments at this pixel: dμ'x/dx = w, dE[x'²]/dx = 2 x' w, dE[x'y']/dx = y' w.
@group(0) @binding(1) var<storage, read> bv_qm: array<f32>;
@group(0) @binding(2) var<storage, read> bv_qs: array<f32>;
@group(0) @binding(3) var<storage, read> bv_x: array<f32>;
@group(0) @binding(4) var<storage, read> bv_y: array<f32>;
@group(0) @binding(5) var<storage, read_write> bv_gx: array<f32>;
@group(0) @binding(6) var<storage, read_write> bv_gy: array<f32>;

@compute @workgroup_size(64)
fn backward_v(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let row = i32((i / p.w) % p.h);
    let col0 = i - u32(row) * p.w;
    let hi = i32(p.h);
    var a = 0.0;
    var b = 0.0;
    var c = 0.0;
    var e = 0.0;
    for (var k = 0; k < TAPS; k = k + 1) {
        let r = row + k - RADIUS;
        let inside = r >= 0 && r < hi;
        let j = col0 + u32(clamp(r, 0, hi - 1)) * p.w;
        let t = select(0.0, tap(k), inside);
        a = a + t * bv_qm[j];
        b = b + t * bv_qm[p.n + j];
        c = c + t * bv_qs[j];
        e = e + t * bv_qs[p.n + j];
    }
    let xs = bv_x[i] - p.pad_value;
    let ys = bv_y[i] - p.pad_value;
    bv_gx[i] = a + 2.0 * xs * c + ys * e;
    bv_gy[i] = b + 2.0 * ys * c + xs * e;
}

// ---------------------------------------------------------------------------------------------
// The same passes, 4 pixels per invocation on vec4s, for CPU adapters (lavapipe loads and stores
// lane by lane, so loads per pixel set the speed) and images a multiple of 4 wide. A row pass
// reads its row as five aligned vec4s (columns 4q - 8 .. 4q + 12) and takes the 11 shifted
// windows of 4 from registers: 10 loads for 4 pixels where the per-pixel pass loads 22 values
// for each. A column pass computes a block of 4 rows x 4 columns from the 14 rows around it:
// 14 vec4 loads per plane for 16 pixels, where the per-pixel pass loads 11 values per pixel.
// Planes of a moment are n / 4 vec4s apart.

// Five vec4s of one row, columns 4q - 8 .. 4q + 12 around quad q (zero outside the row).
struct Row20 { v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>, v4: vec4<f32> }

fn row20_mul(a: Row20, b: Row20) -> Row20 {
    return Row20(a.v0 * b.v0, a.v1 * b.v1, a.v2 * b.v2, a.v3 * b.v3, a.v4 * b.v4);
}

// The 11-tap blur of the 4 pixels of quad q (window value 3 + k + j for tap k of pixel j).
fn h_blur(v: Row20) -> vec4<f32> {
    var s = vec4<f32>(0.0);
    s = s + tap(0) * vec4<f32>(v.v0.w, v.v1.x, v.v1.y, v.v1.z);
    s = s + tap(1) * v.v1;
    s = s + tap(2) * vec4<f32>(v.v1.y, v.v1.z, v.v1.w, v.v2.x);
    s = s + tap(3) * vec4<f32>(v.v1.z, v.v1.w, v.v2.x, v.v2.y);
    s = s + tap(4) * vec4<f32>(v.v1.w, v.v2.x, v.v2.y, v.v2.z);
    s = s + tap(5) * v.v2;
    s = s + tap(6) * vec4<f32>(v.v2.y, v.v2.z, v.v2.w, v.v3.x);
    s = s + tap(7) * vec4<f32>(v.v2.z, v.v2.w, v.v3.x, v.v3.y);
    s = s + tap(8) * vec4<f32>(v.v2.w, v.v3.x, v.v3.y, v.v3.z);
    s = s + tap(9) * v.v3;
    s = s + tap(10) * vec4<f32>(v.v3.y, v.v3.z, v.v3.w, v.v4.x);
    return s;
}

// Quad index of column quad cq + d of the row starting at quad `row` (clamped into the row), and
// whether it lies inside.
fn h_quad(row: u32, cq: u32, d: i32, qpr: u32) -> vec2<u32> {
    let c = i32(cq) + d;
    let inside = c >= 0 && c < i32(qpr);
    return vec2<u32>(row + u32(clamp(c, 0, i32(qpr) - 1)), u32(inside));
}

// Lanes past the end run on quad 0 without storing (no early return: loads after one go lane
// by lane even where their address is uniform).
fn h_lane(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> vec4<u32> {
    let qpr = p.w / 4u;
    let t = flat(wid, nwg, lid);
    let live = t < p.n / 4u;
    let q = select(0u, t, live);
    let cq = q % qpr;
    return vec4<u32>(q, cq, q - cq, u32(live));
}

@group(0) @binding(1) var<storage, read> mh4_x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> mh4_y: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> mh4_m: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> mh4_s: array<vec4<f32>>;

@compute @workgroup_size(64)
fn moments_h4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let l = h_lane(wid, nwg, lid);
    let qpr = p.w / 4u;
    var x: array<vec4<f32>, 5>;
    var y: array<vec4<f32>, 5>;
    for (var j = 0; j < 5; j = j + 1) {
        let at = h_quad(l.z, l.y, j - 2, qpr);
        let keep = at.y != 0u;
        x[j] = select(vec4<f32>(0.0), mh4_x[at.x] - p.pad_value, keep);
        y[j] = select(vec4<f32>(0.0), mh4_y[at.x] - p.pad_value, keep);
    }
    let xr = Row20(x[0], x[1], x[2], x[3], x[4]);
    let yr = Row20(y[0], y[1], y[2], y[3], y[4]);
    if (l.w == 0u) { return; }
    let n4 = p.n / 4u;
    mh4_m[l.x] = h_blur(xr);
    mh4_m[n4 + l.x] = h_blur(yr);
    mh4_s[l.x] = h_blur(row20_mul(xr, xr));
    mh4_s[n4 + l.x] = h_blur(row20_mul(yr, yr));
    mh4_s[2u * n4 + l.x] = h_blur(row20_mul(xr, yr));
}

@group(0) @binding(1) var<storage, read> bh4_pm: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bh4_ps: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> bh4_qm: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> bh4_qs: array<vec4<f32>>;

@compute @workgroup_size(64)
fn blur_h4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let l = h_lane(wid, nwg, lid);
    let qpr = p.w / 4u;
    let n4 = p.n / 4u;
    var a: array<vec4<f32>, 5>;
    var b: array<vec4<f32>, 5>;
    var c: array<vec4<f32>, 5>;
    var e: array<vec4<f32>, 5>;
    for (var j = 0; j < 5; j = j + 1) {
        let at = h_quad(l.z, l.y, j - 2, qpr);
        let keep = at.y != 0u;
        a[j] = select(vec4<f32>(0.0), bh4_pm[at.x], keep);
        b[j] = select(vec4<f32>(0.0), bh4_pm[n4 + at.x], keep);
        c[j] = select(vec4<f32>(0.0), bh4_ps[at.x], keep);
        e[j] = select(vec4<f32>(0.0), bh4_ps[n4 + at.x], keep);
    }
    if (l.w == 0u) { return; }
    bh4_qm[l.x] = h_blur(Row20(a[0], a[1], a[2], a[3], a[4]));
    bh4_qm[n4 + l.x] = h_blur(Row20(b[0], b[1], b[2], b[3], b[4]));
    bh4_qs[l.x] = h_blur(Row20(c[0], c[1], c[2], c[3], c[4]));
    bh4_qs[n4 + l.x] = h_blur(Row20(e[0], e[1], e[2], e[3], e[4]));
}

// Column passes: the invocation's block is rows 4 rb .. 4 rb + 4 of column quad cq of one plane;
// source row r0 - 5 + u feeds block row j through tap u - j.
struct Terms4 { mx: vec4<f32>, my: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, b1: vec4<f32>, b2: vec4<f32> }

fn terms4(mxs: vec4<f32>, mys: vec4<f32>, exx: vec4<f32>, eyy: vec4<f32>, exy: vec4<f32>) -> Terms4 {
    let mx = mxs + p.pad_value;
    let my = mys + p.pad_value;
    return Terms4(mx, my, 2.0 * mx * my + p.c1, 2.0 * (exy - mxs * mys) + p.c2,
                  mx * mx + my * my + p.c1, (exx - mxs * mxs) + (eyy - mys * mys) + p.c2);
}

// The invocation's block: quad `base` of row 0 of its plane (vec4 units) and first row r0. Lanes
// past the end take block 0 and store nothing.
struct VBlock { base: u32, r0: i32, live: bool }

fn v_block(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> VBlock {
    let qpr = p.w / 4u;
    let blocks = (p.h + 3u) / 4u;
    let t = flat(wid, nwg, lid);
    let live = t < qpr * blocks * (p.n / p.w / p.h);
    let tc = select(0u, t, live);
    let plane = tc / (qpr * blocks);
    return VBlock(plane * p.h * qpr + tc % qpr, i32(((tc / qpr) % blocks) * 4u), live);
}

// vec4 index of row r (clamped into the plane) of the block's column quad, and whether r is inside.
fn v_row(b: VBlock, r: i32) -> vec2<u32> {
    let hi = i32(p.h);
    return vec2<u32>(b.base + u32(clamp(r, 0, hi - 1)) * (p.w / 4u), u32(r >= 0 && r < hi));
}

// The five row-blurred moment planes (forward_v4 and partials_v4 bind them alike).
@group(0) @binding(1) var<storage, read> v4_m: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> v4_s: array<vec4<f32>>;

// Their vertical blur at the block's 4 rows (rows outside the image are 0).
struct Moments4 {
    mx: array<vec4<f32>, 4>, my: array<vec4<f32>, 4>,
    xx: array<vec4<f32>, 4>, yy: array<vec4<f32>, 4>, xy: array<vec4<f32>, 4>,
}

fn v4_moments(b: VBlock) -> Moments4 {
    let n4 = p.n / 4u;
    var m: Moments4;
    for (var u = 0; u < 14; u = u + 1) {
        let at = v_row(b, b.r0 - 5 + u);
        let inside = at.y != 0u;
        let i = at.x;
        let m0 = select(vec4<f32>(0.0), v4_m[i], inside);
        let m1 = select(vec4<f32>(0.0), v4_m[n4 + i], inside);
        let s0 = select(vec4<f32>(0.0), v4_s[i], inside);
        let s1 = select(vec4<f32>(0.0), v4_s[n4 + i], inside);
        let s2 = select(vec4<f32>(0.0), v4_s[2u * n4 + i], inside);
        for (var j = 0; j < 4; j = j + 1) {
            let k = u - j;
            if (k >= 0 && k < TAPS) {
                let t = tap(k);
                m.mx[j] = m.mx[j] + t * m0; m.my[j] = m.my[j] + t * m1;
                m.xx[j] = m.xx[j] + t * s0; m.yy[j] = m.yy[j] + t * s1; m.xy[j] = m.xy[j] + t * s2;
            }
        }
    }
    return m;
}

@group(0) @binding(3) var<storage, read_write> fv4_out: array<vec4<f32>>;

@compute @workgroup_size(64)
fn forward_v4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let b = v_block(wid, nwg, lid);
    let m = v4_moments(b);
    if (!b.live) { return; }
    // Rows written one by one with constant indices: a loop over them, if not unrolled, would
    // index the accumulator arrays dynamically, which llvmpipe does through memory.
    let hi = i32(p.h);
    let qpr = p.w / 4u;
    if (b.r0 < hi) { fv4_out[b.base + u32(b.r0) * qpr] = fv4_ssim(m.mx[0], m.my[0], m.xx[0], m.yy[0], m.xy[0]); }
    if (b.r0 + 1 < hi) { fv4_out[b.base + u32(b.r0 + 1) * qpr] = fv4_ssim(m.mx[1], m.my[1], m.xx[1], m.yy[1], m.xy[1]); }
    if (b.r0 + 2 < hi) { fv4_out[b.base + u32(b.r0 + 2) * qpr] = fv4_ssim(m.mx[2], m.my[2], m.xx[2], m.yy[2], m.xy[2]); }
    if (b.r0 + 3 < hi) { fv4_out[b.base + u32(b.r0 + 3) * qpr] = fv4_ssim(m.mx[3], m.my[3], m.xx[3], m.yy[3], m.xy[3]); }
}

fn fv4_ssim(mx: vec4<f32>, my: vec4<f32>, xx: vec4<f32>, yy: vec4<f32>, xy: vec4<f32>) -> vec4<f32> {
    let s = terms4(mx, my, xx, yy, xy);
    return (s.a1 * s.a2) / (s.b1 * s.b2);
}

@group(0) @binding(3) var<storage, read> pv4_gs: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> pv4_pm: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> pv4_ps: array<vec4<f32>>;

@compute @workgroup_size(64)
fn partials_v4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let b = v_block(wid, nwg, lid);
    let m = v4_moments(b);
    if (!b.live) { return; }
    let hi = i32(p.h);
    let qpr = p.w / 4u;
    if (b.r0 < hi) { pv4_out(b.base + u32(b.r0) * qpr, m.mx[0], m.my[0], m.xx[0], m.yy[0], m.xy[0]); }
    if (b.r0 + 1 < hi) { pv4_out(b.base + u32(b.r0 + 1) * qpr, m.mx[1], m.my[1], m.xx[1], m.yy[1], m.xy[1]); }
    if (b.r0 + 2 < hi) { pv4_out(b.base + u32(b.r0 + 2) * qpr, m.mx[2], m.my[2], m.xx[2], m.yy[2], m.xy[2]); }
    if (b.r0 + 3 < hi) { pv4_out(b.base + u32(b.r0 + 3) * qpr, m.mx[3], m.my[3], m.xx[3], m.yy[3], m.xy[3]); }
}

// As partials_v, four pixels at a time: vec4 o of the planes.
fn pv4_out(o: u32, mx: vec4<f32>, my: vec4<f32>, xx: vec4<f32>, yy: vec4<f32>, xy: vec4<f32>) {
    let n4 = p.n / 4u;
    let s = terms4(mx, my, xx, yy, xy);
    let d = 1.0 / (s.b1 * s.b2);
    let ssim = s.a1 * s.a2 * d;
    let g = pv4_gs[o];
    pv4_pm[o] = g * (2.0 * (s.my * s.a2 - my * s.a1) * d + 2.0 * ssim * (mx / s.b2 - s.mx / s.b1));
    pv4_pm[n4 + o] = g * (2.0 * (s.mx * s.a2 - mx * s.a1) * d + 2.0 * ssim * (my / s.b2 - s.my / s.b1));
    pv4_ps[o] = g * (-ssim / s.b2);
    pv4_ps[n4 + o] = g * (2.0 * s.a1 * d);
}

@group(0) @binding(1) var<storage, read> bv4_qm: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bv4_qs: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bv4_x: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> bv4_y: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> bv4_gx: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> bv4_gy: array<vec4<f32>>;

@compute @workgroup_size(64)
fn backward_v4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let b = v_block(wid, nwg, lid);
    let n4 = p.n / 4u;
    var a: array<vec4<f32>, 4>; var bb: array<vec4<f32>, 4>;
    var c: array<vec4<f32>, 4>; var e: array<vec4<f32>, 4>;
    for (var u = 0; u < 14; u = u + 1) {
        let at = v_row(b, b.r0 - 5 + u);
        let inside = at.y != 0u;
        let i = at.x;
        let m0 = select(vec4<f32>(0.0), bv4_qm[i], inside);
        let m1 = select(vec4<f32>(0.0), bv4_qm[n4 + i], inside);
        let s0 = select(vec4<f32>(0.0), bv4_qs[i], inside);
        let s1 = select(vec4<f32>(0.0), bv4_qs[n4 + i], inside);
        for (var j = 0; j < 4; j = j + 1) {
            let k = u - j;
            if (k >= 0 && k < TAPS) {
                let t = tap(k);
                a[j] = a[j] + t * m0; bb[j] = bb[j] + t * m1;
                c[j] = c[j] + t * s0; e[j] = e[j] + t * s1;
            }
        }
    }
    if (!b.live) { return; }
    let hi = i32(p.h);
    let qpr = p.w / 4u;
    if (b.r0 < hi) { bv4_out(b.base + u32(b.r0) * qpr, a[0], bb[0], c[0], e[0]); }
    if (b.r0 + 1 < hi) { bv4_out(b.base + u32(b.r0 + 1) * qpr, a[1], bb[1], c[1], e[1]); }
    if (b.r0 + 2 < hi) { bv4_out(b.base + u32(b.r0 + 2) * qpr, a[2], bb[2], c[2], e[2]); }
    if (b.r0 + 3 < hi) { bv4_out(b.base + u32(b.r0 + 3) * qpr, a[3], bb[3], c[3], e[3]); }
}

// The chain rule through the moments for vec4 o, as backward_v.
fn bv4_out(o: u32, a: vec4<f32>, b: vec4<f32>, c: vec4<f32>, e: vec4<f32>) {
    let xs = bv4_x[o] - p.pad_value;
    let ys = bv4_y[o] - p.pad_value;
    bv4_gx[o] = a + 2.0 * xs * c + ys * e;
    bv4_gy[o] = b + 2.0 * ys * c + xs * e;
}
