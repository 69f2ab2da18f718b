// Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as
// 1, 2, 3", SC 2011; constants as in Random123). Stateless, so every backend and the CPU reference
// (kernels/src/rng.rs, `cpu`) give the same 32-bit words for the same (seed, stream, index).
//
// Counter scheme: element i of a fill takes word (i % 4) of
//     philox4x32_10(counter = (i / 4, stream, 0, 0), key = (seed & 0xffffffff, seed >> 32)).
// One thread computes one Philox block and writes the (up to) four elements it covers.
// Normals pair words (0, 1) and (2, 3) of the block in a Box-Muller transform: element 4g + 2j
// is r*cos(theta) and element 4g + 2j + 1 is r*sin(theta) of pair j.

struct Params {
    n: u32,        // elements to write
    key_lo: u32,   // seed bits 0..32
    key_hi: u32,   // seed bits 32..64
    stream: u32,   // counter word 1
    a: f32,        // uniform: lo; normal: mean; bernoulli: keep_prob
    b: f32,        // uniform: hi - lo; normal: std; bernoulli: 1 / keep_prob
    one: f32,      // always 1.0, opaque to the compiler (see uniform_fill)
    pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 64u;
const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;
const TWO_POW_M24: f32 = 5.9604644775390625e-8;  // 2^-24
const PI: f32 = 3.14159265358979323846;

fn flat(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid;
}

// Full 32x32 -> 64-bit product as (hi, lo). WGSL has no mulhi, so the high word is built from
// 16-bit halves: a*b = hh*2^32 + (lh + hl)*2^16 + ll, carrying the middle column by hand.
// Every partial product is below 2^32 and `mid` below 3*2^16, so nothing wraps.
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
    let al = a & 0xffffu;
    let ah = a >> 16u;
    let bl = b & 0xffffu;
    let bh = b >> 16u;
    let ll = al * bl;
    let lh = al * bh;
    let hl = ah * bl;
    let hh = ah * bh;
    let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
    let hi = hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
    return vec2<u32>(hi, a * b);  // u32 multiplication wraps: the low word
}

fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var r = 0u; r < 10u; r = r + 1u) {
        if (r > 0u) {
            k = k + vec2<u32>(PHILOX_W0, PHILOX_W1);  // key schedule (wrapping)
        }
        let p0 = mulhilo(PHILOX_M0, c.x);
        let p1 = mulhilo(PHILOX_M1, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
    }
    return c;
}

fn block(g: u32) -> vec4<u32> {
    return philox4x32_10(vec4<u32>(g, p.stream, 0u, 0u), vec2<u32>(p.key_lo, p.key_hi));
}

// Top 24 bits as a float in [0, 1): exact in f32.
fn unit_closed_open(w: u32) -> f32 {
    return f32(w >> 8u) * TWO_POW_M24;
}

// (0, 1]: never 0, so log() below is finite.
fn unit_open_closed(w: u32) -> f32 {
    return f32((w >> 8u) + 1u) * TWO_POW_M24;
}

// lo + (hi - lo) * u. The product is multiplied by the runtime 1.0 in `p.one` before the add: a
// driver may contract `x * one + lo` into an fma, but x * 1 is exact, so fused or not the result is
// one rounding of (x + lo) and bit-identical to the CPU reference. Without it, GPUs that contract
// `d * u + lo` into an fma would differ from the CPU in the last bit.
fn uniform_value(w: u32) -> f32 {
    return p.a + (p.b * unit_closed_open(w)) * p.one;
}

@group(0) @binding(1) var<storage, read_write> u_out: array<f32>;

@compute @workgroup_size(64)
fn uniform_fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let g = flat(wid, nwg, lid);
    let base = g * 4u;
    if (base >= p.n) { return; }
    let w = block(g);
    u_out[base] = uniform_value(w.x);
    if (base + 1u < p.n) { u_out[base + 1u] = uniform_value(w.y); }
    if (base + 2u < p.n) { u_out[base + 2u] = uniform_value(w.z); }
    if (base + 3u < p.n) { u_out[base + 3u] = uniform_value(w.w); }
}

// Box-Muller: r = sqrt(-2 ln u1) with u1 in (0, 1], theta = pi * (2 u2 - 1) in [-pi, pi).
// Theta is kept in [-pi, pi) because that is where WGSL bounds the error of sin and cos.
fn box_muller(w1: u32, w2: u32) -> vec2<f32> {
    let r = sqrt(max(-2.0 * log(unit_open_closed(w1)), 0.0));
    let theta = PI * (2.0 * unit_closed_open(w2) - 1.0);
    return vec2<f32>(r * cos(theta), r * sin(theta));
}

@group(0) @binding(1) var<storage, read_write> n_out: array<f32>;

@compute @workgroup_size(64)
fn normal_fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let g = flat(wid, nwg, lid);
    let base = g * 4u;
    if (base >= p.n) { return; }
    let w = block(g);
    let z01 = box_muller(w.x, w.y);
    n_out[base] = p.a + p.b * z01.x;
    if (base + 1u < p.n) { n_out[base + 1u] = p.a + p.b * z01.y; }
    if (base + 2u < p.n) {
        let z23 = box_muller(w.z, w.w);
        n_out[base + 2u] = p.a + p.b * z23.x;
        if (base + 3u < p.n) { n_out[base + 3u] = p.a + p.b * z23.y; }
    }
}

// 1 / keep_prob where u < keep_prob, else 0 (inverted dropout: the kept values are rescaled so
// the expectation is unchanged). The comparison is exact, so the mask is bit-identical to the CPU.
fn keep_value(w: u32) -> f32 {
    return select(0.0, p.b, unit_closed_open(w) < p.a);
}

@group(0) @binding(1) var<storage, read_write> b_out: array<f32>;

@compute @workgroup_size(64)
fn bernoulli_fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let g = flat(wid, nwg, lid);
    let base = g * 4u;
    if (base >= p.n) { return; }
    let w = block(g);
    b_out[base] = keep_value(w.x);
    if (base + 1u < p.n) { b_out[base + 1u] = keep_value(w.y); }
    if (base + 2u < p.n) { b_out[base + 2u] = keep_value(w.z); }
    if (base + 3u < p.n) { b_out[base + 3u] = keep_value(w.w); }
}
