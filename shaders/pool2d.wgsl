// 2-D max and average pooling over [n, c, h, w] with per-axis kernel, stride and zero padding,
// PyTorch floor-mode output size, and their backward kernels.
// Max pool keeps the argmax as a flat index iy * w + ix within the input's (n, c) plane, as
// PyTorch's max_pool2d(return_indices=True) does. Average pool counts padded positions
// (count_include_pad = true); in floor mode every window lies inside the padded input, so the
// divisor is always kh * kw.
// Backward kernels run one thread per INPUT element and gather from the outputs whose windows
// contain it: no atomics, deterministic even when windows overlap (stride < kernel).
// CPU reference: kernels/src/pool2d.rs.

struct Params {
    n: u32,      // threads: output elements (forward) or input elements (backward)
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 64u;

fn flat(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid;
}

@group(0) @binding(1) var<storage, read> mf_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> mf_y: array<f32>;
@group(0) @binding(3) var<storage, read_write> mf_arg: array<u32>;

// One thread per output: the first maximum of the window wins (ties keep the lowest index, as
// PyTorch); padding never wins because it is not read at all.
@compute @workgroup_size(64)
fn max_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let ox = i % p.ow;
    let oy = (i / p.ow) % p.oh;
    let plane = i / (p.ow * p.oh);
    let base = plane * p.h * p.w;
    // Window bounds clipped to the real input (signed: padding puts the start below zero).
    let y0 = i32(oy * p.sh) - i32(p.ph);
    let x0 = i32(ox * p.sw) - i32(p.pw);
    let ys = u32(max(y0, 0));
    let xs = u32(max(x0, 0));
    let ye = u32(min(y0 + i32(p.kh), i32(p.h)));
    let xe = u32(min(x0 + i32(p.kw), i32(p.w)));
    var best = -3.4028235e38;
    var arg = ys * p.w + xs;
    var found = false;
    for (var y = ys; y < ye; y = y + 1u) {
        for (var x = xs; x < xe; x = x + 1u) {
            let v = mf_x[base + y * p.w + x];
            if (!found || v > best) {
                best = v;
                arg = y * p.w + x;
                found = true;
            }
        }
    }
    mf_y[i] = best;
    mf_arg[i] = arg;
}

// max_forward for 2x2 windows at stride 2 without padding on planes a multiple of 4 wide (the
// LeNets' pools): one thread per pair of outputs reads the two input rows' vec4s and writes both
// outputs and argmaxes as vec2s. lavapipe loads and stores lane by lane: 2 vec4 loads and 2 vec2
// stores in place of 8 scalar loads and 4 stores. Window order, and so the first maximum on ties,
// is max_forward's: (y0, x0), (y0, x0 + 1), (y0 + 1, x0), (y0 + 1, x0 + 1).
@group(0) @binding(1) var<storage, read> m2_x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> m2_y: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> m2_arg: array<vec2<u32>>;

// (max, argmax) of one window: a, b its top pair, c, d its bottom pair; i the index of a.
fn m2_window(a: f32, b: f32, c: f32, d: f32, i: u32) -> vec2<f32> {
    var best = a;
    var arg = 0u;
    if (b > best) { best = b; arg = 1u; }
    if (c > best) { best = c; arg = p.w; }
    if (d > best) { best = d; arg = p.w + 1u; }
    return vec2<f32>(best, bitcast<f32>(i + arg));
}

@compute @workgroup_size(64)
fn max_forward_2x2(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);   // pair of outputs: p.n counts pairs
    if (i >= p.n) { return; }
    let pairs_w = p.ow / 2u;
    let ox = (i % pairs_w) * 2u;
    let oy = (i / pairs_w) % p.oh;
    let plane = i / (pairs_w * p.oh);
    // Index (in the plane) of the top-left input of the first window.
    let at = 2u * oy * p.w + 2u * ox;
    let row = (plane * p.h * p.w + at) / 4u;
    let top = m2_x[row];
    let bottom = m2_x[row + p.w / 4u];
    let first = m2_window(top.x, top.y, bottom.x, bottom.y, at);
    let second = m2_window(top.z, top.w, bottom.z, bottom.w, at + 2u);
    m2_y[i] = vec2<f32>(first.x, second.x);
    m2_arg[i] = vec2<u32>(bitcast<u32>(first.y), bitcast<u32>(second.y));
}

// Range of output rows (or columns) whose window [o*s - pad, o*s - pad + k) contains input
// coordinate c: o*s <= c + pad and o*s > c + pad - k. Returned as [lo, hi).
fn out_range(c: u32, k: u32, s: u32, pad: u32, count: u32) -> vec2<u32> {
    let t = c + pad;
    var lo = 0u;
    if (t + 1u > k) {
        lo = (t + 1u - k + s - 1u) / s;
    }
    let hi = min(t / s + 1u, count);
    return vec2<u32>(lo, max(lo, hi));
}

@group(0) @binding(1) var<storage, read> mb_gy: array<f32>;
@group(0) @binding(2) var<storage, read> mb_arg: array<u32>;
@group(0) @binding(3) var<storage, read_write> mb_gx: array<f32>;

// gx[input] = sum of gy over the outputs whose argmax is this input.
@compute @workgroup_size(64)
fn max_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let ix = i % p.w;
    let iy = (i / p.w) % p.h;
    let plane = i / (p.w * p.h);
    let me = iy * p.w + ix;
    let ry = out_range(iy, p.kh, p.sh, p.ph, p.oh);
    let rx = out_range(ix, p.kw, p.sw, p.pw, p.ow);
    let obase = plane * p.oh * p.ow;
    var acc = 0.0;
    for (var oy = ry.x; oy < ry.y; oy = oy + 1u) {
        for (var ox = rx.x; ox < rx.y; ox = ox + 1u) {
            let o = obase + oy * p.ow + ox;
            if (mb_arg[o] == me) {
                acc = acc + mb_gy[o];
            }
        }
    }
    mb_gx[i] = acc;
}

@group(0) @binding(1) var<storage, read> ms_gy: array<f32>;
@group(0) @binding(2) var<storage, read> ms_arg: array<u32>;
@group(0) @binding(3) var<storage, read_write> ms_gx: array<f32>;

// Max backward when windows do not overlap (stride >= kernel on both axes, the usual 2x2 / 2):
// every input has at most one window, so one thread per OUTPUT writes its gy to its argmax with
// no conflicts, into a gx cleared beforehand. Cheaper than the gather for large inputs.
@compute @workgroup_size(64)
fn max_backward_scatter(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_index) lid: u32) {
    let o = flat(wid, nwg, lid);
    if (o >= p.n) { return; }
    let plane = o / (p.ow * p.oh);
    ms_gx[plane * p.h * p.w + ms_arg[o]] = ms_gy[o];
}

@group(0) @binding(1) var<storage, read> af_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> af_y: array<f32>;

@compute @workgroup_size(64)
fn avg_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let ox = i % p.ow;
    let oy = (i / p.ow) % p.oh;
    let plane = i / (p.ow * p.oh);
    let base = plane * p.h * p.w;
    let y0 = i32(oy * p.sh) - i32(p.ph);
    let x0 = i32(ox * p.sw) - i32(p.pw);
    let ys = u32(max(y0, 0));
    let xs = u32(max(x0, 0));
    let ye = u32(min(y0 + i32(p.kh), i32(p.h)));
    let xe = u32(min(x0 + i32(p.kw), i32(p.w)));
    var acc = 0.0;
    for (var y = ys; y < ye; y = y + 1u) {
        for (var x = xs; x < xe; x = x + 1u) {
            acc = acc + af_x[base + y * p.w + x];
        }
    }
    af_y[i] = acc / f32(p.kh * p.kw);
}

@group(0) @binding(1) var<storage, read> ab_gy: array<f32>;
@group(0) @binding(2) var<storage, read_write> ab_gx: array<f32>;

// gx[input] = sum over windows containing it of gy / (kh * kw).
@compute @workgroup_size(64)
fn avg_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let ix = i % p.w;
    let iy = (i / p.w) % p.h;
    let plane = i / (p.w * p.h);
    let ry = out_range(iy, p.kh, p.sh, p.ph, p.oh);
    let rx = out_range(ix, p.kw, p.sw, p.pw, p.ow);
    let obase = plane * p.oh * p.ow;
    var acc = 0.0;
    for (var oy = ry.x; oy < ry.y; oy = oy + 1u) {
        for (var ox = rx.x; ox < rx.y; ox = ox + 1u) {
            acc = acc + ab_gy[obase + oy * p.ow + ox];
        }
    }
    ab_gx[i] = acc / f32(p.kh * p.kw);
}
