// Reductions over one axis of a tensor viewed as [outer, len, inner] (a full reduction is
// [1, numel, 1]); output o = outer_i * inner + inner_i. Ops: sum, max with argmax, and the sum of
// squared deviations from a given centre (variance = that sum / (len or len - 1), after a mean
// pass: the two-pass formula, which does not cancel catastrophically like E[x²] - E[x]²).
// No atomics: every sum runs in a fixed order, so results are the same run to run.
// Entry points:
//   rows       one thread per (output, interleaved slice of the axis), looping: many outputs or short axes
//              on GPUs, and every reduction on software drivers (no barriers).
//   partial    one 256-thread workgroup per (output, chunk of the axis), a tree in workgroup
//              memory; chunks > 1 writes partials that a further pass folds (rows too).
//   backward   one thread per input element: sum/mean, max (to the argmax only), variance.
// CPU reference: kernels/src/reduce.rs (`cpu`).

struct Params {
    outer: u32,
    len: u32,
    inner: u32,
    op: u32,        // 0 sum, 1 max (+ argmax), 2 sum of (x - centre[o])²
    chunk: u32,     // partial: axis elements per workgroup (rows: at most this many per thread)
    chunks: u32,    // chunks per output
    flags: u32,     // bit 0: input carries indices (a later max pass reads argmax from x_idx)
    outputs: u32,   // outer * inner
    scale: f32,     // multiplies the final value (1/len for mean, 1/(len-1) unbiased variance, ...)
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 64u;
const TREE: u32 = 256u;

// Running state of one reduction: value and (for max) the index of the first maximum.
struct Acc {
    v: f32,
    i: u32,
}

// Max starts empty (index NONE) so an axis of -inf still reports a real index.
const NONE: u32 = 0xffffffffu;

fn start() -> Acc {
    if (p.op == 1u) { return Acc(0.0, NONE); }
    return Acc(0.0, 0u);
}

// Max keeps the larger value and, on ties, the smaller index, so the result is the first
// maximum whatever order elements arrive in.
fn combine(a: Acc, b: Acc) -> Acc {
    if (p.op == 1u) {
        if (a.i == NONE) { return b; }
        if (b.i == NONE) { return a; }
        if (b.v > a.v || (b.v == a.v && b.i < a.i)) { return b; }
        return a;
    }
    return Acc(a.v + b.v, 0u);
}

@group(0) @binding(1) var<storage, read> r_x: array<f32>;
@group(0) @binding(2) var<storage, read> r_xi: array<u32>;
@group(0) @binding(3) var<storage, read> r_centre: array<f32>;
@group(0) @binding(4) var<storage, read_write> r_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> r_oi: array<u32>;

// Flat index of element 0 of output o; element l sits at base + l * inner.
fn base_of(o: u32) -> u32 {
    return (o / p.inner) * p.len * p.inner + o % p.inner;
}

// Element l of output o as a reduction term.
fn r_term(o: u32, base: u32, l: u32) -> Acc {
    let j = base + l * p.inner;
    let x = r_x[j];
    if (p.op == 2u) {
        let d = x - r_centre[o];
        return Acc(d * d, 0u);
    }
    if ((p.flags & 1u) != 0u) { return Acc(x, r_xi[j]); }
    return Acc(x, l);
}

// Thread g = (output o, chunk c) folds axis elements c, c + chunks, c + 2 chunks, ... in order
// and writes out[o * chunks + c]; chunks == 1 is one thread per output. Interleaving puts
// neighbouring threads on neighbouring elements (one cache line per SIMD gather on a CPU, one
// coalesced read on a GPU). No workgroup memory or barriers: this is the path for software
// drivers, where a barrier costs more than the arithmetic. One loop per op so the inner loop
// carries no op switch.
@compute @workgroup_size(64)
fn rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let g = (wid.y * nwg.x + wid.x) * WG + lid;
    if (g >= p.outputs * p.chunks) { return; }
    let o = g / p.chunks;
    let c = g % p.chunks;
    let s = p.inner * p.chunks;
    let first = base_of(o) + c * p.inner;
    let end = base_of(o) + p.len * p.inner;
    var v = 0.0;
    switch p.op {
        case 1u: {
            var bi = NONE;
            let carried = (p.flags & 1u) != 0u;
            var l = c;
            for (var j = first; j < end; j = j + s) {
                let x = r_x[j];
                let i = select(l, r_xi[j], carried);
                // The first maximum: ties go to the smaller index, whatever the visiting order.
                if (bi == NONE || x > v || (x == v && i < bi)) {
                    v = x;
                    bi = i;
                }
                l = l + p.chunks;
            }
            r_oi[g] = bi;
        }
        case 2u: {
            let m = r_centre[o];
            for (var j = first; j < end; j = j + s) {
                let d = r_x[j] - m;
                v = v + d * d;
            }
        }
        default: {
            for (var j = first; j < end; j = j + s) {
                v = v + r_x[j];
            }
        }
    }
    r_out[g] = v * p.scale;
}

var<workgroup> tv: array<f32, 256>;
var<workgroup> ti: array<u32, 256>;

// Workgroup g = (output o, chunk c): its 256 threads take elements c*chunk + t, + 256, ... of the
// chunk, then halve pairwise in workgroup memory. Writes out[o * chunks + c] (values scaled by
// `scale`, so the host passes 1 for passes whose output is folded again).
@compute @workgroup_size(256)
fn partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let g = wid.y * nwg.x + wid.x;
    // Uniform across the workgroup: whole workgroups leave, so the barriers below stay uniform.
    if (g >= p.outputs * p.chunks) { return; }
    let o = g / p.chunks;
    let c = g % p.chunks;
    let lo = c * p.chunk;
    let hi = min(lo + p.chunk, p.len);
    let base = base_of(o);
    var acc = start();
    for (var l = lo + lid; l < hi; l = l + TREE) {
        acc = combine(acc, r_term(o, base, l));
    }
    tv[lid] = acc.v;
    ti[lid] = acc.i;
    workgroupBarrier();
    for (var s = TREE / 2u; s > 0u; s = s / 2u) {
        if (lid < s) {
            let r = combine(Acc(tv[lid], ti[lid]), Acc(tv[lid + s], ti[lid + s]));
            tv[lid] = r.v;
            ti[lid] = r.i;
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        r_out[g] = tv[0] * p.scale;
        if (p.op == 1u) { r_oi[g] = ti[0]; }
    }
}

@group(0) @binding(1) var<storage, read> b_x: array<f32>;
@group(0) @binding(2) var<storage, read> b_gy: array<f32>;
@group(0) @binding(3) var<storage, read> b_centre: array<f32>;
@group(0) @binding(4) var<storage, read> b_idx: array<u32>;
@group(0) @binding(5) var<storage, read_write> b_gx: array<f32>;

// gx for every input element (op: 0 sum or mean, gy * scale; 1 max, gy to the argmax only;
// 2 variance, gy * scale * (x - mean) with scale = 2 / (len or len - 1)).
@compute @workgroup_size(64)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let e = (wid.y * nwg.x + wid.x) * WG + lid;
    if (e >= p.outer * p.len * p.inner) { return; }
    let ii = e % p.inner;
    let l = (e / p.inner) % p.len;
    let oi = e / (p.inner * p.len);
    let o = oi * p.inner + ii;
    let g = b_gy[o];
    switch p.op {
        case 1u: { b_gx[e] = select(0.0, g, b_idx[o] == l); }
        case 2u: { b_gx[e] = g * p.scale * (b_x[e] - b_centre[o]); }
        default: { b_gx[e] = g * p.scale; }
    }
}
