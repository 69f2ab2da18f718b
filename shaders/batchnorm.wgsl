// Batch normalisation over x viewed as [batch, channels, spatial] (spatial = 1 for [N, C],
// H * W for [N, C, H, W]); statistics per channel over M = batch * spatial values.
// Per-channel reductions run one workgroup per channel with a fixed-order tree in workgroup
// memory: no atomics, the same bits every run. CPU reference: kernels/src/batchnorm.rs.

struct Params {
    batch: u32,
    channels: u32,
    spatial: u32,
    // stats: bit 0 update running stats. normalize / backward: bit 0 affine, bit 1 training,
    // bit 2 leaky ReLU (slope `slope`, 0 = ReLU) fused after the affine map
    flags: u32,
    eps: f32,
    momentum: f32,
    total: u32,      // batch * channels * spatial
    slope: f32,
}

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 64u;
const RWG: u32 = 256u;

fn flat(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid;
}

// The elementwise kernels (normalize, backward_dx) take RUN consecutive values per thread: the
// channel of the first is decoded once and then stepped (lavapipe divides lane by lane).
const RUN: u32 = 8u;

// Steps (position in the plane, channel) to the next flat index; true when the channel changed.
fn next_value(pos: ptr<function, u32>, c: ptr<function, u32>) -> bool {
    *pos = *pos + 1u;
    if (*pos == p.spatial) {
        *pos = 0u;
        *c = *c + 1u;
        if (*c == p.channels) { *c = 0u; }
        return true;
    }
    return false;
}

// The reductions walk channel c's values j = lid, lid + RWG, .. (j < batch * spatial) in a fixed
// order, stepping (sample, position) by (RWG / spatial, RWG % spatial) with one carry instead of
// dividing per value, which lavapipe runs lane by lane. Every invocation works for any plane size.
struct Walk { b: u32, j: u32 }

fn walk_start(lid: u32) -> Walk {
    return Walk(lid / p.spatial, lid % p.spatial);
}

// Flat index of the walk's value in channel c.
fn walk_at(w: Walk, c: u32) -> u32 {
    return (w.b * p.channels + c) * p.spatial + w.j;
}

fn walk_next(w: ptr<function, Walk>) {
    (*w).b = (*w).b + RWG / p.spatial;
    (*w).j = (*w).j + RWG % p.spatial;
    if ((*w).j >= p.spatial) {
        (*w).j = (*w).j - p.spatial;
        (*w).b = (*w).b + 1u;
    }
}

var<workgroup> red: array<vec2<f32>, 256>;

// Sum of v over the workgroup, in a fixed order. Callers are in workgroup-uniform control flow.
fn tree_sum(lid: u32, v: vec2<f32>) -> vec2<f32> {
    red[lid] = v;
    workgroupBarrier();
    for (var s = RWG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            red[lid] = red[lid] + red[lid + s];
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier(); // everyone has read red[0] before a next tree_sum overwrites it
    return r;
}

@group(0) @binding(1) var<storage, read> st_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> st_mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> st_invstd: array<f32>;
@group(0) @binding(4) var<storage, read_write> st_rmean: array<f32>;
@group(0) @binding(5) var<storage, read_write> st_rvar: array<f32>;

// Training statistics of one channel per workgroup. Two passes (mean, then squared deviations)
// rather than E[x^2] - E[x]^2, which cancels catastrophically in f32 when |mean| >> std.
// Normalisation uses the biased variance; the running variance gets the unbiased one (PyTorch):
// running = (1 - momentum) * running + momentum * batch_stat.
@compute @workgroup_size(256)
fn stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let c = wid.y * nwg.x + wid.x;
    if (c >= p.channels) { return; }
    let m = p.batch * p.spatial;
    var acc = 0.0;
    for (var w = walk_start(lid); w.b < p.batch; walk_next(&w)) {
        acc = acc + st_x[walk_at(w, c)];
    }
    let mean = tree_sum(lid, vec2<f32>(acc, 0.0)).x / f32(m);
    var dev = 0.0;
    for (var w = walk_start(lid); w.b < p.batch; walk_next(&w)) {
        let d = st_x[walk_at(w, c)] - mean;
        dev = dev + d * d;
    }
    let ss = tree_sum(lid, vec2<f32>(dev, 0.0)).x;
    if (lid == 0u) {
        let var_biased = ss / f32(m);
        st_mean[c] = mean;
        st_invstd[c] = 1.0 / sqrt(var_biased + p.eps);
        if ((p.flags & 1u) != 0u) {
            let var_unbiased = ss / f32(m - 1u);
            st_rmean[c] = (1.0 - p.momentum) * st_rmean[c] + p.momentum * mean;
            st_rvar[c] = (1.0 - p.momentum) * st_rvar[c] + p.momentum * var_unbiased;
        }
    }
}

@group(0) @binding(1) var<storage, read> ev_rmean: array<f32>;
@group(0) @binding(2) var<storage, read> ev_rvar: array<f32>;
@group(0) @binding(3) var<storage, read_write> ev_mean: array<f32>;
@group(0) @binding(4) var<storage, read_write> ev_invstd: array<f32>;

// Eval mode: the saved statistics are the running ones, one thread per channel.
@compute @workgroup_size(64)
fn eval_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let c = flat(wid, nwg, lid);
    if (c >= p.channels) { return; }
    ev_mean[c] = ev_rmean[c];
    ev_invstd[c] = 1.0 / sqrt(ev_rvar[c] + p.eps);
}

@group(0) @binding(1) var<storage, read> nm_x: array<f32>;
@group(0) @binding(2) var<storage, read> nm_mean: array<f32>;
@group(0) @binding(3) var<storage, read> nm_invstd: array<f32>;
@group(0) @binding(4) var<storage, read> nm_gamma: array<f32>;
@group(0) @binding(5) var<storage, read> nm_beta: array<f32>;
@group(0) @binding(6) var<storage, read_write> nm_y: array<f32>;

// y = (x - mean) * invstd * gamma + beta (then the fused activation), RUN values per thread.
@compute @workgroup_size(64)
fn normalize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i0 = flat(wid, nwg, lid) * RUN;
    if (i0 >= p.total) { return; }
    var pos = i0 % p.spatial;
    var c = (i0 / p.spatial) % p.channels;
    let affine = (p.flags & 1u) != 0u;
    // The channel's constants, reloaded only when the run crosses into the next channel.
    var mean = nm_mean[c];
    var invstd = nm_invstd[c];
    var gamma = 1.0;
    var beta = 0.0;
    if (affine) { gamma = nm_gamma[c]; beta = nm_beta[c]; }
    for (var i = i0; i < min(i0 + RUN, p.total); i = i + 1u) {
        var v = (nm_x[i] - mean) * invstd;
        if (affine) {
            v = v * gamma + beta;
        }
        if ((p.flags & 4u) != 0u && !(v > 0.0)) {
            v = v * p.slope;
        }
        nm_y[i] = v;
        if (next_value(&pos, &c)) {
            mean = nm_mean[c];
            invstd = nm_invstd[c];
            if (affine) { gamma = nm_gamma[c]; beta = nm_beta[c]; }
        }
    }
}

@group(0) @binding(1) var<storage, read> br_x: array<f32>;
@group(0) @binding(2) var<storage, read> br_gy: array<f32>;
@group(0) @binding(3) var<storage, read> br_mean: array<f32>;
@group(0) @binding(4) var<storage, read> br_invstd: array<f32>;
@group(0) @binding(5) var<storage, read_write> br_gbeta: array<f32>;
@group(0) @binding(6) var<storage, read_write> br_ggamma: array<f32>;
@group(0) @binding(7) var<storage, read> br_y: array<f32>;
@group(0) @binding(8) var<storage, read_write> br_gz: array<f32>;

// (gz, gz * xhat) at flat index k; writes gz when an activation is fused.
fn br_term(k: u32, mean: f32, invstd: f32) -> vec2<f32> {
    var g = br_gy[k];
    if ((p.flags & 4u) != 0u) {
        if (!(br_y[k] > 0.0)) { g = g * p.slope; }
        br_gz[k] = g;
    }
    return vec2<f32>(g, g * (br_x[k] - mean) * invstd);
}

// Per channel: gbeta = sum gz, ggamma = sum gz * xhat (one workgroup per channel), where gz is
// gy, or with a fused leaky ReLU gy times its derivative read off the output y (slope >= 0, so
// y > 0 exactly where the pre-activation is), written to gz for backward_dx.
@compute @workgroup_size(256)
fn backward_reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let c = wid.y * nwg.x + wid.x;
    if (c >= p.channels) { return; }
    let mean = br_mean[c];
    let invstd = br_invstd[c];
    var acc = vec2<f32>(0.0, 0.0);
    for (var w = walk_start(lid); w.b < p.batch; walk_next(&w)) {
        acc = acc + br_term(walk_at(w, c), mean, invstd);
    }
    let s = tree_sum(lid, acc);
    if (lid == 0u) {
        br_gbeta[c] = s.x;
        br_ggamma[c] = s.y;
    }
}

@group(0) @binding(1) var<storage, read> bd_x: array<f32>;
@group(0) @binding(2) var<storage, read> bd_gy: array<f32>;
@group(0) @binding(3) var<storage, read> bd_mean: array<f32>;
@group(0) @binding(4) var<storage, read> bd_invstd: array<f32>;
@group(0) @binding(5) var<storage, read> bd_gamma: array<f32>;
@group(0) @binding(6) var<storage, read> bd_gbeta: array<f32>;
@group(0) @binding(7) var<storage, read> bd_ggamma: array<f32>;
@group(0) @binding(8) var<storage, read_write> bd_gx: array<f32>;

// Training: gx = gamma * invstd / M * (M * gy - sum(gy) - xhat * sum(gy * xhat)), computed as
// gamma * invstd * (gy - sum(gy) / M - xhat * sum(gy * xhat) / M).
// Eval (statistics are constants): gx = gamma * invstd * gy.
// (With a fused activation, bd_gy is backward_reduce's gz.)
@compute @workgroup_size(64)
fn backward_dx(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i0 = flat(wid, nwg, lid) * RUN;
    if (i0 >= p.total) { return; }
    var pos = i0 % p.spatial;
    var c = (i0 / p.spatial) % p.channels;
    let m = f32(p.batch * p.spatial);
    let training = (p.flags & 2u) != 0u;
    // The channel's constants, reloaded only when the run crosses into the next channel.
    var k = bd_channel(c, m);
    var gg = bd_ggamma[c] / m;
    for (var i = i0; i < min(i0 + RUN, p.total); i = i + 1u) {
        if (training) {
            let xhat = (bd_x[i] - k.y) * k.z;
            bd_gx[i] = k.x * (bd_gy[i] - k.w - xhat * gg);
        } else {
            bd_gx[i] = k.x * bd_gy[i];
        }
        if (next_value(&pos, &c)) {
            k = bd_channel(c, m);
            gg = bd_ggamma[c] / m;
        }
    }
}

// Channel c's (scale = gamma * invstd, mean, invstd, gbeta / m).
fn bd_channel(c: u32, m: f32) -> vec4<f32> {
    var scale = bd_invstd[c];
    if ((p.flags & 1u) != 0u) {
        scale = scale * bd_gamma[c];
    }
    return vec4<f32>(scale, bd_mean[c], bd_invstd[c], bd_gbeta[c] / m);
}
