// Batch normalisation over x viewed as [batch, channels, spatial] (spatial = 1 for [N, C],
// H * W for [N, C, H, W]); statistics per channel over M = batch * spatial values.
// Per-channel reductions run `splits` workgroups per channel, each over one chunk of the
// channel's values with a fixed-order tree in workgroup memory, then (splits > 1) a combine pass
// over the chunks in order: no atomics, the same bits every run. One workgroup per channel
// leaves a GPU nearly idle on few-channel layers (LeNet: 8 channels, 1024 x 24 x 24 values each);
// the host picks the splits. CPU reference: kernels/src/batchnorm.rs.

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
    splits: u32,     // reduction workgroups per channel
    chunk: u32,      // values of a channel per reduction workgroup (the last may have fewer)
    width: u32,      // the *_pool kernels: W of x [N, C, H, W]
    pad0: u32,
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

// Steps (position in the plane of `plane` entries, channel) to the next flat index; true when
// the channel changed.
fn next_value(pos: ptr<function, u32>, c: ptr<function, u32>, plane: u32) -> bool {
    *pos = *pos + 1u;
    if (*pos == plane) {
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

// Walks count in entries of the storage array: values, or vec4s in the *4 kernels, so a plane
// has `plane` = spatial or spatial / 4 entries.
// The walk at the channel's j-th entry (j = sample * plane + position).
fn walk_start(j: u32, plane: u32) -> Walk {
    return Walk(j / plane, j % plane);
}

// Flat index of the walk's entry in channel c.
fn walk_at(w: Walk, c: u32, plane: u32) -> u32 {
    return (w.b * p.channels + c) * plane + w.j;
}

fn walk_next(w: ptr<function, Walk>, plane: u32) {
    (*w).b = (*w).b + RWG / plane;
    (*w).j = (*w).j + RWG % plane;
    if ((*w).j >= plane) {
        (*w).j = (*w).j - plane;
        (*w).b = (*w).b + 1u;
    }
}

// A reduction workgroup's (channel, chunk, first value, end) from its flat index g = c * splits + s.
struct Chunk { c: u32, g: u32, j0: u32, j1: u32 }

fn chunk_of(wid: vec3<u32>, nwg: vec3<u32>) -> Chunk {
    let g = wid.y * nwg.x + wid.x;
    let c = g / p.splits;
    let j0 = (g - c * p.splits) * p.chunk;
    return Chunk(c, g, j0, min(j0 + p.chunk, p.batch * p.spatial));
}

// Values in chunk s of a channel (the host makes every chunk non-empty).
fn chunk_len(s: u32) -> u32 {
    return min(p.chunk, p.batch * p.spatial - s * p.chunk);
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

// Training statistics in one pass over each chunk: every thread sums its values' deviations d
// from its own first value K, and their squares (its mean is K + sum d / n, its squared deviations
// sum d^2 - (sum d)^2 / n), then the workgroup merges the threads' (count, mean, squared
// deviations) with Chan's pairwise update in a fixed-order tree. Not E[x^2] - E[x]^2, which
// cancels catastrophically in f32 when |mean| >> std: shifted by a value of the data, the
// cancellation is of the order of ((mean - K) / std)^2 ulps. One read of x rather than two (mean,
// then deviations), which on lavapipe, loading lane by lane, cost twice the time; and no division
// per value, so the statistics stay as smooth in x as the two-pass sums (gradient checks by
// central differences see no extra noise). Chunks are merged with the same update (stats_combine).
// Normalisation uses the biased variance; the running variance gets the unbiased one (PyTorch):
// running = (1 - momentum) * running + momentum * batch_stat.
// With splits > 1, st_mean / st_invstd are [channels * splits] partials: the chunk's mean and its
// sum of squared deviations, which stats_combine merges.
@compute @workgroup_size(256)
fn stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let ch = chunk_of(wid, nwg);
    if (ch.c >= p.channels) { return; }
    var w = walk_start(ch.j0 + lid, p.spatial);
    var shift = 0.0;
    if (ch.j0 + lid < ch.j1) { shift = st_x[walk_at(w, ch.c, p.spatial)]; }
    var n = 0.0;
    var s1 = 0.0;
    var s2 = 0.0;
    for (var j = ch.j0 + lid; j < ch.j1; j = j + RWG) {
        let d = st_x[walk_at(w, ch.c, p.spatial)] - shift;
        s1 = s1 + d;
        s2 = s2 + d * d;
        n = n + 1.0;
        walk_next(&w, p.spatial);
    }
    let r = tree_runs(lid, shifted_run(n, shift, s1, s2));
    if (lid == 0u) {
        stats_store(ch, r.y, r.z);
    }
}

// A thread's (count, mean, squared deviations) from its sums of deviations from `shift`.
fn shifted_run(n: f32, shift: f32, s1: f32, s2: f32) -> vec3<f32> {
    let inv = 1.0 / max(n, 1.0);
    return vec3<f32>(n, shift + s1 * inv, max(s2 - s1 * s1 * inv, 0.0));
}

// Chan: (count, mean, squared deviations) of two runs merged. With n = na + nb and
// delta = mean_b - mean_a: mean = mean_a + delta * nb / n, ss = ss_a + ss_b + delta^2 * na * nb / n.
// Two empty runs merge to an empty one (no division by zero, no branch).
fn merge_runs(a: vec3<f32>, b: vec3<f32>) -> vec3<f32> {
    let n = a.x + b.x;
    let f = b.x / max(n, 1.0);
    let delta = b.y - a.y;
    return vec3<f32>(n, a.y + delta * f, a.z + b.z + delta * delta * a.x * f);
}

var<workgroup> red3: array<vec3<f32>, 256>;

// The workgroup's runs merged in a fixed order (as tree_sum).
fn tree_runs(lid: u32, v: vec3<f32>) -> vec3<f32> {
    red3[lid] = v;
    workgroupBarrier();
    for (var s = RWG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            red3[lid] = merge_runs(red3[lid], red3[lid + s]);
        }
        workgroupBarrier();
    }
    let r = red3[0];
    workgroupBarrier();
    return r;
}

// A chunk's statistics: the channel's own (one chunk), or the chunk's partials.
fn stats_store(ch: Chunk, mean: f32, ss: f32) {
    if (p.splits == 1u) {
        st_mean[ch.c] = mean;
        st_invstd[ch.c] = invstd_of(ss);
        if ((p.flags & 1u) != 0u) {
            let r = running_update(vec2<f32>(st_rmean[ch.c], st_rvar[ch.c]), mean, ss);
            st_rmean[ch.c] = r.x;
            st_rvar[ch.c] = r.y;
        }
    } else {
        st_mean[ch.g] = mean;
        st_invstd[ch.g] = ss;
    }
}

// stats over vec4s (planes and chunks a multiple of 4 values, so no vec4 straddles a channel or a
// chunk): lavapipe loads storage lane by lane, and a vec4 load shares that loop's cost over 4 values.
@group(0) @binding(1) var<storage, read> st4_x: array<vec4<f32>>;

@compute @workgroup_size(256)
fn stats4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let ch = chunk_of(wid, nwg);
    if (ch.c >= p.channels) { return; }
    let plane = p.spatial / 4u;
    let j0 = ch.j0 / 4u + lid;
    let j1 = ch.j1 / 4u;
    var w = walk_start(j0, plane);
    var shift = 0.0;
    if (j0 < j1) { shift = st4_x[walk_at(w, ch.c, plane)].x; }
    var n = 0.0;
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    for (var j = j0; j < j1; j = j + RWG) {
        let d = st4_x[walk_at(w, ch.c, plane)] - vec4<f32>(shift);
        s1 = s1 + d;
        s2 = s2 + d * d;
        n = n + 4.0;
        walk_next(&w, plane);
    }
    let r = tree_runs(lid, shifted_run(n, shift, (s1.x + s1.y) + (s1.z + s1.w), (s2.x + s2.y) + (s2.z + s2.w)));
    if (lid == 0u) {
        stats_store(ch, r.y, r.z);
    }
}

// 1 / sqrt(biased variance + eps) of a channel from its sum of squared deviations.
fn invstd_of(ss: f32) -> f32 {
    return 1.0 / sqrt(ss / f32(p.batch * p.spatial) + p.eps);
}

// The running (mean, var) after this batch (flags bit 0; the buffers are stand-ins otherwise).
fn running_update(old: vec2<f32>, mean: f32, ss: f32) -> vec2<f32> {
    let var_unbiased = ss / f32(p.batch * p.spatial - 1u);
    return (1.0 - p.momentum) * old + p.momentum * vec2<f32>(mean, var_unbiased);
}

@group(0) @binding(1) var<storage, read> sc_pmean: array<f32>;
@group(0) @binding(2) var<storage, read> sc_pss: array<f32>;
@group(0) @binding(3) var<storage, read_write> sc_mean: array<f32>;
@group(0) @binding(4) var<storage, read_write> sc_invstd: array<f32>;
@group(0) @binding(5) var<storage, read_write> sc_rmean: array<f32>;
@group(0) @binding(6) var<storage, read_write> sc_rvar: array<f32>;

// Merges a channel's chunk (mean, squared deviations) in chunk order with merge_runs, one thread
// per channel.
@compute @workgroup_size(64)
fn stats_combine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let c = flat(wid, nwg, lid);
    if (c >= p.channels) { return; }
    let base = c * p.splits;
    var run = vec3<f32>(0.0);
    for (var s = 0u; s < p.splits; s = s + 1u) {
        run = merge_runs(run, vec3<f32>(f32(chunk_len(s)), sc_pmean[base + s], sc_pss[base + s]));
    }
    let mean = run.y;
    let ss = run.z;
    sc_mean[c] = mean;
    sc_invstd[c] = invstd_of(ss);
    if ((p.flags & 1u) != 0u) {
        let r = running_update(vec2<f32>(sc_rmean[c], sc_rvar[c]), mean, ss);
        sc_rmean[c] = r.x;
        sc_rvar[c] = r.y;
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
        if (next_value(&pos, &c, p.spatial)) {
            mean = nm_mean[c];
            invstd = nm_invstd[c];
            if (affine) { gamma = nm_gamma[c]; beta = nm_beta[c]; }
        }
    }
}

// normalize over vec4s (planes a multiple of 4 values): RUN / 4 vec4s per thread.
@group(0) @binding(1) var<storage, read> nm4_x: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> nm4_y: array<vec4<f32>>;

@compute @workgroup_size(64)
fn normalize4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let plane = p.spatial / 4u;
    let total = p.total / 4u;
    let i0 = flat(wid, nwg, lid) * (RUN / 4u);
    if (i0 >= total) { return; }
    var pos = i0 % plane;
    var c = (i0 / plane) % p.channels;
    let affine = (p.flags & 1u) != 0u;
    var mean = nm_mean[c];
    var invstd = nm_invstd[c];
    var gamma = 1.0;
    var beta = 0.0;
    if (affine) { gamma = nm_gamma[c]; beta = nm_beta[c]; }
    for (var i = i0; i < min(i0 + RUN / 4u, total); i = i + 1u) {
        var v = (nm4_x[i] - vec4<f32>(mean)) * invstd;
        if (affine) {
            v = v * gamma + vec4<f32>(beta);
        }
        if ((p.flags & 4u) != 0u) {
            v = select(v * p.slope, v, v > vec4<f32>(0.0));
        }
        nm4_y[i] = v;
        if (next_value(&pos, &c, plane)) {
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
// sums: [2, channels * splits]: gbeta's then ggamma's (chunk) sums, so that backward_dx reads both
// through one binding and has one left for y under the WebGPU baseline's 8.
@group(0) @binding(5) var<storage, read_write> br_sums: array<f32>;
@group(0) @binding(6) var<storage, read> br_y: array<f32>;

// (gz, gz * xhat) at flat index k.
fn br_term(k: u32, mean: f32, invstd: f32) -> vec2<f32> {
    var g = br_gy[k];
    if ((p.flags & 4u) != 0u && !(br_y[k] > 0.0)) {
        g = g * p.slope;
    }
    return vec2<f32>(g, g * (br_x[k] - mean) * invstd);
}

// A reduction workgroup's (gbeta, ggamma) sums into br_sums.
fn br_store(ch: Chunk, s: vec2<f32>) {
    br_sums[ch.g] = s.x;
    br_sums[p.channels * p.splits + ch.g] = s.y;
}

// Per channel: gbeta = sum gz, ggamma = sum gz * xhat, where gz is gy, or with a fused leaky
// ReLU gy times its derivative read off the output y (slope >= 0, so y > 0 exactly where the
// pre-activation is). backward_dx reads y again rather than a stored gz: lavapipe stores lane by
// lane, and a store cost more than the extra load. The sums are chunk sums (one chunk per channel
// where splits = 1), which backward_combine adds up.
@compute @workgroup_size(256)
fn backward_reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let ch = chunk_of(wid, nwg);
    if (ch.c >= p.channels) { return; }
    let mean = br_mean[ch.c];
    let invstd = br_invstd[ch.c];
    var acc = vec2<f32>(0.0, 0.0);
    var w = walk_start(ch.j0 + lid, p.spatial);
    for (var j = ch.j0 + lid; j < ch.j1; j = j + RWG) {
        acc = acc + br_term(walk_at(w, ch.c, p.spatial), mean, invstd);
        walk_next(&w, p.spatial);
    }
    let s = tree_sum(lid, acc);
    if (lid == 0u) {
        br_store(ch, s);
    }
}

// backward_reduce over vec4s (planes and chunks a multiple of 4 values). The stand-in for y must
// hold a vec4.
@group(0) @binding(1) var<storage, read> br4_x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> br4_gy: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> br4_y: array<vec4<f32>>;

fn br4_term(k: u32, mean: f32, invstd: f32) -> vec2<f32> {
    var g = br4_gy[k];
    if ((p.flags & 4u) != 0u) {
        g = select(g * p.slope, g, br4_y[k] > vec4<f32>(0.0));
    }
    let xhat = (br4_x[k] - vec4<f32>(mean)) * invstd;
    return vec2<f32>((g.x + g.y) + (g.z + g.w), dot(g, xhat));
}

@compute @workgroup_size(256)
fn backward_reduce4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let ch = chunk_of(wid, nwg);
    if (ch.c >= p.channels) { return; }
    let plane = p.spatial / 4u;
    let mean = br_mean[ch.c];
    let invstd = br_invstd[ch.c];
    var acc = vec2<f32>(0.0, 0.0);
    var w = walk_start(ch.j0 / 4u + lid, plane);
    for (var j = ch.j0 / 4u + lid; j < ch.j1 / 4u; j = j + RWG) {
        acc = acc + br4_term(walk_at(w, ch.c, plane), mean, invstd);
        walk_next(&w, plane);
    }
    let s = tree_sum(lid, acc);
    if (lid == 0u) {
        br_store(ch, s);
    }
}

@group(0) @binding(1) var<storage, read> bc_partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> bc_sums: array<f32>;
@group(0) @binding(3) var<storage, read_write> bc_gbeta: array<f32>;
@group(0) @binding(4) var<storage, read_write> bc_ggamma: array<f32>;

// Sums a channel's chunk sums in chunk order, one thread per channel: [2, channels * splits]
// partials to [2, channels] for backward_dx, and to the gradients gbeta and ggamma (a dispatch
// rather than buffer copies, which would end the step's compute pass).
@compute @workgroup_size(64)
fn backward_combine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let c = flat(wid, nwg, lid);
    if (c >= p.channels) { return; }
    var acc = vec2<f32>(0.0, 0.0);
    let half = p.channels * p.splits;
    for (var s = 0u; s < p.splits; s = s + 1u) {
        acc = acc + vec2<f32>(bc_partial[c * p.splits + s], bc_partial[half + c * p.splits + s]);
    }
    bc_sums[c] = acc.x;
    bc_sums[p.channels + c] = acc.y;
    bc_gbeta[c] = acc.x;
    bc_ggamma[c] = acc.y;
}

@group(0) @binding(1) var<storage, read> bd_x: array<f32>;
@group(0) @binding(2) var<storage, read> bd_gy: array<f32>;
@group(0) @binding(3) var<storage, read> bd_mean: array<f32>;
@group(0) @binding(4) var<storage, read> bd_invstd: array<f32>;
@group(0) @binding(5) var<storage, read> bd_gamma: array<f32>;
@group(0) @binding(6) var<storage, read> bd_sums: array<f32>;   // [2, channels]: gbeta, ggamma
@group(0) @binding(7) var<storage, read> bd_y: array<f32>;
@group(0) @binding(8) var<storage, read_write> bd_gx: array<f32>;

// Training: gx = gamma * invstd / M * (M * gy - sum(gy) - xhat * sum(gy * xhat)), computed as
// gamma * invstd * (gy - sum(gy) / M - xhat * sum(gy * xhat) / M).
// Eval (statistics are constants): gx = gamma * invstd * gy.
// With a fused activation gy is first multiplied by its derivative read off the output y, as in
// backward_reduce.
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
    var gg = bd_sums[p.channels + c] / m;
    for (var i = i0; i < min(i0 + RUN, p.total); i = i + 1u) {
        var g = bd_gy[i];
        if ((p.flags & 4u) != 0u && !(bd_y[i] > 0.0)) {
            g = g * p.slope;
        }
        if (training) {
            let xhat = (bd_x[i] - k.y) * k.z;
            bd_gx[i] = k.x * (g - k.w - xhat * gg);
        } else {
            bd_gx[i] = k.x * g;
        }
        if (next_value(&pos, &c, p.spatial)) {
            k = bd_channel(c, m);
            gg = bd_sums[p.channels + c] / m;
        }
    }
}

// backward_dx over vec4s (planes a multiple of 4 values): RUN / 4 vec4s per thread.
@group(0) @binding(1) var<storage, read> bd4_x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bd4_gy: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> bd4_y: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> bd4_gx: array<vec4<f32>>;

@compute @workgroup_size(64)
fn backward_dx4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let plane = p.spatial / 4u;
    let total = p.total / 4u;
    let i0 = flat(wid, nwg, lid) * (RUN / 4u);
    if (i0 >= total) { return; }
    var pos = i0 % plane;
    var c = (i0 / plane) % p.channels;
    let m = f32(p.batch * p.spatial);
    let training = (p.flags & 2u) != 0u;
    var k = bd_channel(c, m);
    var gg = bd_sums[p.channels + c] / m;
    for (var i = i0; i < min(i0 + RUN / 4u, total); i = i + 1u) {
        var g = bd4_gy[i];
        if ((p.flags & 4u) != 0u) {
            g = select(g * p.slope, g, bd4_y[i] > vec4<f32>(0.0));
        }
        if (training) {
            let xhat = (bd4_x[i] - vec4<f32>(k.y)) * k.z;
            bd4_gx[i] = k.x * (g - vec4<f32>(k.w) - xhat * gg);
        } else {
            bd4_gx[i] = k.x * g;
        }
        if (next_value(&pos, &c, plane)) {
            k = bd_channel(c, m);
            gg = bd_sums[p.channels + c] / m;
        }
    }
}

// Channel c's (scale = gamma * invstd, mean, invstd, gbeta / m).
fn bd_channel(c: u32, m: f32) -> vec4<f32> {
    var scale = bd_invstd[c];
    if ((p.flags & 1u) != 0u) {
        scale = scale * bd_gamma[c];
    }
    return vec4<f32>(scale, bd_mean[c], bd_invstd[c], bd_sums[c] / m);
}

// ---------------------------------------------------------------------------------------------
// Batch norm + activation + 2x2 max pool at stride 2, fused (the LeNets' conv blocks). x is
// [N, C, H, W] with H and W even. Only the pooled map [N, C, H/2, W/2] and the x value each
// window's maximum came from ("picked") are stored: the full-size normalised map is never written,
// and the backward reads the pooled gradient and x where the separate layers would write, then
// read, a scattered full-size gradient and the full-size activations (about 14 passes over the
// full size in all become 6). The argmax is the first slot (row-major in the window) whose x
// equals the picked value: the first maximum, as max_forward, since equal x normalise and activate
// to equal values; an exact comparison of stored bits, so every backward finds the forward's slot.
// The sums of the backward read the picked values in order, with no gather and no division.
// consts: [4, channels] per channel mean, invstd, gamma, beta (1 and 0 without affine).

@group(0) @binding(1) var<storage, read> pk_mean: array<f32>;
@group(0) @binding(2) var<storage, read> pk_invstd: array<f32>;
@group(0) @binding(3) var<storage, read> pk_gamma: array<f32>;
@group(0) @binding(4) var<storage, read> pk_beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> pk_consts: array<f32>;

@compute @workgroup_size(64)
fn pool_consts(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let c = flat(wid, nwg, lid);
    if (c >= p.channels) { return; }
    var gamma = 1.0;
    var beta = 0.0;
    if ((p.flags & 1u) != 0u) { gamma = pk_gamma[c]; beta = pk_beta[c]; }
    pk_consts[c] = pk_mean[c];
    pk_consts[p.channels + c] = pk_invstd[c];
    pk_consts[2u * p.channels + c] = gamma;
    pk_consts[3u * p.channels + c] = beta;
}

// The three pooled kernels share bindings 1 (x, which backward_reduce_pool binds but does not
// read), 2 (consts), 3 and 4 (pooled y and picked: written forward, read backward).
@group(0) @binding(1) var<storage, read> pl_x: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> pl_consts: array<f32>;
@group(0) @binding(3) var<storage, read> pl_gy: array<f32>;
@group(0) @binding(4) var<storage, read> pl_picked: array<f32>;

// Channel c's (mean, invstd, gamma, beta).
fn pool_channel(c: u32) -> vec4<f32> {
    return vec4<f32>(pl_consts[c], pl_consts[p.channels + c], pl_consts[2u * p.channels + c], pl_consts[3u * p.channels + c]);
}

// The activated, normalised values of a window's four x values.
fn pool_activate(v: vec4<f32>, k: vec4<f32>) -> vec4<f32> {
    let pre = (v - vec4<f32>(k.x)) * k.y * k.z + vec4<f32>(k.w);
    if ((p.flags & 4u) != 0u) {
        return select(pre * p.slope, pre, pre > vec4<f32>(0.0));
    }
    return pre;
}

// A run of consecutive pooled outputs o (flat over [N, C, H/2, W/2]) with its window's position
// stepped, not divided, from one output to the next (lavapipe divides lane by lane): `at` the flat
// index of the window's top-left x value, (ow, oh) its pooled column and row, c its channel.
struct PoolWalk { at: u32, ow: u32, oh: u32, c: u32 }

fn pool_walk(o: u32) -> PoolWalk {
    let pw = p.width / 2u;
    let ph = p.spatial / p.width / 2u;
    let ow = o % pw;
    let t = o / pw;
    let oh = t % ph;
    let plane = t / ph;
    return PoolWalk(plane * p.spatial + 2u * oh * p.width + 2u * ow, ow, oh, plane % p.channels);
}

// Steps to the next output; true when the channel changed.
fn pool_next(w: ptr<function, PoolWalk>) -> bool {
    (*w).at = (*w).at + 2u;
    (*w).ow = (*w).ow + 1u;
    if ((*w).ow * 2u == p.width) {
        // The next window starts two rows down: skip the bottom row of this one.
        (*w).ow = 0u;
        (*w).at = (*w).at + p.width;
        (*w).oh = (*w).oh + 1u;
        if ((*w).oh * 2u * p.width == p.spatial) {
            (*w).oh = 0u;
            (*w).c = (*w).c + 1u;
            if ((*w).c == p.channels) { (*w).c = 0u; }
            return true;
        }
    }
    return false;
}

// A window's four x values, row-major (x even-aligned: W even, so every window starts a vec2).
fn pool_window(at: u32) -> vec4<f32> {
    return vec4<f32>(pl_x[at / 2u], pl_x[(at + p.width) / 2u]);
}

@group(0) @binding(3) var<storage, read_write> np_y: array<f32>;
@group(0) @binding(4) var<storage, read_write> np_picked: array<f32>;

// y[o] = max of the window's activated, normalised values; picked[o] = the x it came from. p.total counts
// pooled outputs; RUN per thread.
@compute @workgroup_size(64)
fn normalize_pool(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let o0 = flat(wid, nwg, lid) * RUN;
    if (o0 >= p.total) { return; }
    var w = pool_walk(o0);
    var k = pool_channel(w.c);
    for (var o = o0; o < min(o0 + RUN, p.total); o = o + 1u) {
        let xs = pool_window(w.at);
        let v = pool_activate(xs, k);
        var best = v.x;
        var picked = xs.x;
        if (v.y > best) { best = v.y; picked = xs.y; }
        if (v.z > best) { best = v.z; picked = xs.z; }
        if (v.w > best) { best = v.w; picked = xs.w; }
        np_y[o] = best;
        np_picked[o] = picked;
        if (pool_next(&w)) {
            k = pool_channel(w.c);
        }
    }
}

// backward_reduce for the fused layer: the gradient of the activated map is gy at each window's
// argmax and 0 elsewhere, so the sums run over the pooled values only, with xhat from the picked x.
// Chunks, walks and splits count pooled values: p.spatial here is the pooled plane (H/2 * W/2).
@group(0) @binding(5) var<storage, read_write> rp_sums: array<f32>;

@compute @workgroup_size(256)
fn backward_reduce_pool(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_index) lid: u32) {
    let ch = chunk_of(wid, nwg);
    if (ch.c >= p.channels) { return; }
    let k = pool_channel(ch.c);
    var acc = vec2<f32>(0.0, 0.0);
    var w = walk_start(ch.j0 + lid, p.spatial);
    for (var j = ch.j0 + lid; j < ch.j1; j = j + RWG) {
        let o = walk_at(w, ch.c, p.spatial);
        let xhat = (pl_picked[o] - k.x) * k.y;
        var g = pl_gy[o];
        if ((p.flags & 4u) != 0u && !(xhat * k.z + k.w > 0.0)) {
            g = g * p.slope;
        }
        acc = acc + vec2<f32>(g, g * xhat);
        walk_next(&w, p.spatial);
    }
    let s = tree_sum(lid, acc);
    if (lid == 0u) {
        rp_sums[ch.g] = s.x;
        rp_sums[p.channels * p.splits + ch.g] = s.y;
    }
}

@group(0) @binding(5) var<storage, read> dp_sums: array<f32>;   // [2, channels]: gbeta, ggamma
@group(0) @binding(6) var<storage, read_write> dp_gx: array<vec2<f32>>;

// backward_dx for the fused layer, one window (four values of gx) per pooled output: the
// gradient of the activated map is gy[o] at the argmax slot and 0 at the other three, then as
// backward_dx. p.total counts pooled outputs; p.batch * p.spatial * 4 is M.
@compute @workgroup_size(64)
fn backward_dx_pool(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let o0 = flat(wid, nwg, lid) * RUN;
    if (o0 >= p.total) { return; }
    // Pooled walk over x's full-size planes.
    var w = pool_walk(o0);
    let m = f32(p.batch * p.spatial);
    let training = (p.flags & 2u) != 0u;
    var k = pool_channel(w.c);
    var sums = vec2<f32>(dp_sums[w.c], dp_sums[p.channels + w.c]) / m;
    for (var o = o0; o < min(o0 + RUN, p.total); o = o + 1u) {
        let xs = pool_window(w.at);
        let xhat = (xs - vec4<f32>(k.x)) * k.y;
        // The argmax slot: the first x equal to the picked one.
        let hit = xs == vec4<f32>(pl_picked[o]);
        let first = hit & vec4<bool>(true, !hit.x, !(hit.x || hit.y), !(hit.x || hit.y || hit.z));
        var g = select(vec4<f32>(0.0), vec4<f32>(pl_gy[o]), first);
        if ((p.flags & 4u) != 0u) {
            g = select(g * p.slope, g, xhat * k.z + vec4<f32>(k.w) > vec4<f32>(0.0));
        }
        var gx = k.y * k.z * g;
        if (training) {
            gx = k.y * k.z * (g - vec4<f32>(sums.x) - xhat * sums.y);
        }
        dp_gx[w.at / 2u] = gx.xy;
        dp_gx[(w.at + p.width) / 2u] = gx.zw;
        if (pool_next(&w)) {
            k = pool_channel(w.c);
            sums = vec2<f32>(dp_sums[w.c], dp_sums[p.channels + w.c]) / m;
        }
    }
}
