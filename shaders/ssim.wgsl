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
