// Elementwise unary and binary ops with numpy broadcasting (rank <= 4, shapes padded on the left),
// and their backward kernels. One params struct for all four entry points; `op` picks the function.
// CPU reference and op codes: kernels/src/elementwise.rs.

struct Params {
    n: u32,          // threads: output elements (forward) or target elements (binary backward)
    op: u32,
    red_n: u32,      // binary backward: output elements folded into each target element
    flags: u32,      // bit 0: a, b and out share one contiguous shape (no index arithmetic)
    alpha: f32,
    beta: f32,
    pad0: u32,
    pad1: u32,
    shape: vec4<u32>,   // output shape
    sa: vec4<u32>,      // strides of a in output coordinates (0 on broadcast dims)
    sb: vec4<u32>,
    tshape: vec4<u32>,  // binary backward: shape of the operand receiving the gradient
    rshape: vec4<u32>,  // binary backward: per dim, the output size summed over (1 where kept)
}

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 64u;

fn flat(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid;
}

fn coords(i: u32, s: vec4<u32>) -> vec4<u32> {
    var r = i;
    var c: vec4<u32>;
    c.w = r % s.w; r = r / s.w;
    c.z = r % s.z; r = r / s.z;
    c.y = r % s.y; r = r / s.y;
    c.x = r;
    return c;
}

fn dot4(c: vec4<u32>, s: vec4<u32>) -> u32 {
    return c.x * s.x + c.y * s.y + c.z * s.z + c.w * s.w;
}

fn linear(c: vec4<u32>, s: vec4<u32>) -> u32 {
    return ((c.x * s.y + c.y) * s.z + c.z) * s.w + c.w;
}

fn sigmoid(x: f32) -> f32 {
    // Branch on sign so exp never overflows.
    if (x >= 0.0) {
        return 1.0 / (1.0 + exp(-x));
    }
    let e = exp(x);
    return e / (1.0 + e);
}

fn softplus(x: f32) -> f32 {
    return max(x, 0.0) + log(1.0 + exp(-abs(x)));
}

// x^a, also for negative x when a is a whole number (x^2, x^3 of negative values).
fn powf(x: f32, a: f32) -> f32 {
    if (x < 0.0 && a == floor(a)) {
        let m = pow(-x, a);
        if (abs(a % 2.0) == 1.0) {
            return -m;
        }
        return m;
    }
    if (x == 0.0) {
        if (a == 0.0) { return 1.0; }
        if (a > 0.0) { return 0.0; }
    }
    return pow(x, a);
}

fn unary_f(x: f32) -> f32 {
    switch p.op {
        case 0u: { return -x; }
        case 1u: { return exp(x); }
        case 2u: { return log(x); }
        case 3u: { return sqrt(x); }
        case 4u: { return abs(x); }
        case 5u: { return sign(x); }
        case 6u: { return powf(x, p.alpha); }
        case 7u: { return clamp(x, p.alpha, p.beta); }
        case 8u: { return max(x, 0.0); }
        case 9u: { return select(p.alpha * x, x, x > 0.0); }
        case 10u: { return sigmoid(x); }
        case 11u: { return tanh(clamp(x, -15.0, 15.0)); }
        case 12u: { return softplus(x); }
        case 13u: { return -softplus(-x); }
        default: { return x * p.alpha + p.beta; }   // 14: affine (scalar add / mul)
    }
}

// d unary_f / dx at x.
fn unary_d(x: f32) -> f32 {
    switch p.op {
        case 0u: { return -1.0; }
        case 1u: { return exp(x); }
        case 2u: { return 1.0 / x; }
        case 3u: { return 0.5 / sqrt(x); }
        case 4u: { return sign(x); }
        case 5u: { return 0.0; }
        case 6u: { return p.alpha * powf(x, p.alpha - 1.0); }
        case 7u: { return select(0.0, 1.0, x >= p.alpha && x <= p.beta); }
        case 8u: { return select(0.0, 1.0, x > 0.0); }
        case 9u: { return select(p.alpha, 1.0, x > 0.0); }
        case 10u: { let s = sigmoid(x); return s * (1.0 - s); }
        case 11u: { let t = tanh(clamp(x, -15.0, 15.0)); return 1.0 - t * t; }
        case 12u: { return sigmoid(x); }
        case 13u: { return sigmoid(-x); }
        default: { return p.alpha; }
    }
}

fn binary_f(a: f32, b: f32) -> f32 {
    switch p.op {
        case 0u: { return a + b; }
        case 1u: { return a - b; }
        case 2u: { return a * b; }
        case 3u: { return a / b; }
        case 4u: { return powf(a, b); }
        case 5u: { return max(a, b); }
        default: { return min(a, b); }   // 6
    }
}

// Partial derivative of binary_f with respect to a (which == 0) or b (which == 1).
// Ties of max/min split the gradient evenly, as PyTorch does.
fn binary_d(a: f32, b: f32, which: u32) -> f32 {
    switch p.op {
        case 0u: { return 1.0; }
        case 1u: { return select(1.0, -1.0, which == 1u); }
        case 2u: { return select(b, a, which == 1u); }
        case 3u: { return select(1.0 / b, -a / (b * b), which == 1u); }
        case 4u: {
            if (which == 0u) { return b * powf(a, b - 1.0); }
            return powf(a, b) * log(a);
        }
        case 5u: {
            let mine = select(a, b, which == 1u);
            let other = select(b, a, which == 1u);
            return select(select(0.0, 0.5, mine == other), 1.0, mine > other);
        }
        default: {
            let mine = select(a, b, which == 1u);
            let other = select(b, a, which == 1u);
            return select(select(0.0, 0.5, mine == other), 1.0, mine < other);
        }
    }
}

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn unary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    y[i] = unary_f(x[i]);
}

@group(0) @binding(1) var<storage, read> ub_x: array<f32>;
@group(0) @binding(2) var<storage, read> ub_gy: array<f32>;
@group(0) @binding(3) var<storage, read_write> ub_gx: array<f32>;

// gx = gy * f'(x)
@compute @workgroup_size(64)
fn unary_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    ub_gx[i] = ub_gy[i] * unary_d(ub_x[i]);
}

@group(0) @binding(1) var<storage, read> bf_a: array<f32>;
@group(0) @binding(2) var<storage, read> bf_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> bf_y: array<f32>;

@compute @workgroup_size(64)
fn binary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    if ((p.flags & 1u) != 0u) {
        bf_y[i] = binary_f(bf_a[i], bf_b[i]);
        return;
    }
    let c = coords(i, p.shape);
    bf_y[i] = binary_f(bf_a[dot4(c, p.sa)], bf_b[dot4(c, p.sb)]);
}

@group(0) @binding(1) var<storage, read> bb_a: array<f32>;
@group(0) @binding(2) var<storage, read> bb_b: array<f32>;
@group(0) @binding(3) var<storage, read> bb_gy: array<f32>;
@group(0) @binding(4) var<storage, read_write> bb_g: array<f32>;

// Gradient for one operand (beta holds which: 0 = a, 1 = b), one thread per element of that
// operand, summing over the output elements it was broadcast to. No atomics: deterministic.
@compute @workgroup_size(64)
fn binary_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let t = flat(wid, nwg, lid);
    if (t >= p.n) { return; }
    let which = u32(p.beta);
    if ((p.flags & 1u) != 0u) {
        bb_g[t] = bb_gy[t] * binary_d(bb_a[t], bb_b[t], which);
        return;
    }
    let tc = coords(t, p.tshape);
    var acc = 0.0;
    for (var r = 0u; r < p.red_n; r = r + 1u) {
        let c = tc + coords(r, p.rshape);
        acc = acc + bb_gy[linear(c, p.shape)] * binary_d(bb_a[dot4(c, p.sa)], bb_b[dot4(c, p.sb)], which);
    }
    bb_g[t] = acc;
}

// ---------------------------------------------------------------------------------------------
// vec4 variants for operands of one contiguous shape with a multiple of 4 elements (p.n counts
// vec4s): lavapipe loads and stores storage lane by lane, and a vec4 shares that loop over 4
// values.

fn unary_f4(v: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(unary_f(v.x), unary_f(v.y), unary_f(v.z), unary_f(v.w));
}

fn unary_d4(v: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(unary_d(v.x), unary_d(v.y), unary_d(v.z), unary_d(v.w));
}

fn binary_f4(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(binary_f(a.x, b.x), binary_f(a.y, b.y), binary_f(a.z, b.z), binary_f(a.w, b.w));
}

fn binary_d4(a: vec4<f32>, b: vec4<f32>, which: u32) -> vec4<f32> {
    return vec4<f32>(binary_d(a.x, b.x, which), binary_d(a.y, b.y, which),
                     binary_d(a.z, b.z, which), binary_d(a.w, b.w, which));
}

@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y4: array<vec4<f32>>;

@compute @workgroup_size(64)
fn unary4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    y4[i] = unary_f4(x4[i]);
}

@group(0) @binding(1) var<storage, read> ub4_x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> ub4_gy: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> ub4_gx: array<vec4<f32>>;

@compute @workgroup_size(64)
fn unary_backward4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    ub4_gx[i] = ub4_gy[i] * unary_d4(ub4_x[i]);
}

@group(0) @binding(1) var<storage, read> bf4_a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bf4_b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> bf4_y: array<vec4<f32>>;

@compute @workgroup_size(64)
fn binary4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    bf4_y[i] = binary_f4(bf4_a[i], bf4_b[i]);
}

@group(0) @binding(1) var<storage, read> bb4_a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bb4_b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bb4_gy: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> bb4_g: array<vec4<f32>>;

@compute @workgroup_size(64)
fn binary_backward4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let t = flat(wid, nwg, lid);
    if (t >= p.n) { return; }
    bb4_g[t] = bb4_gy[t] * binary_d4(bb4_a[t], bb4_b[t], u32(p.beta));
}
