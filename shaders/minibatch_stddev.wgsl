// ProGAN's minibatch standard deviation layer over the whole batch: for x [n, c, h, w],
//   std[f] = sqrt(mean_n (x[n, f] - mean_n x[., f])^2 + eps)   for each feature f = (c, h, w),
//   s = mean_f std[f],  y = [x, s as one extra constant channel] : [n, c + 1, h, w].
// Backward: gx[n, f] = gy[n, f] + G / F * (x[n, f] - mean_f) / (n * std[f]), G = sum of gy over
// the extra channel, F = c * h * w. Reductions are loops or one fixed-order workgroup tree.
// CPU reference: kernels/src/minibatch_stddev.rs.

struct Params {
    batch: u32,
    features: u32,   // F = c * h * w
    spatial: u32,    // h * w
    channels: u32,   // c (of x)
    eps: f32,
    scale: f32,      // sum_strided: factor applied to the sum
    count: u32,      // sum_strided: number of values summed
    group_len: u32,  // sum_strided: contiguous run length
    plane: u32,      // sum_strided: distance between runs
    offset: u32,     // sum_strided: start of the first run
    total: u32,      // assemble: output elements
    pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 64u;
const RWG: u32 = 256u;

fn flat(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid;
}

@group(0) @binding(1) var<storage, read> fs_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> fs_std: array<f32>;

// One thread per feature: two passes over the batch (mean, then squared deviations).
@compute @workgroup_size(64)
fn feature_std(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let f = flat(wid, nwg, lid);
    if (f >= p.features) { return; }
    var mean = 0.0;
    for (var n = 0u; n < p.batch; n = n + 1u) {
        mean = mean + fs_x[n * p.features + f];
    }
    mean = mean / f32(p.batch);
    var ss = 0.0;
    for (var n = 0u; n < p.batch; n = n + 1u) {
        let d = fs_x[n * p.features + f] - mean;
        ss = ss + d * d;
    }
    fs_std[f] = sqrt(ss / f32(p.batch) + p.eps);
}

var<workgroup> red: array<f32, 256>;

@group(0) @binding(1) var<storage, read> ss_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> ss_out: array<f32>;

// out[0] = scale * sum_j src[(j / group_len) * plane + offset + j % group_len], j < count:
// a single workgroup, per-thread strided partial sums, then a fixed-order tree.
@compute @workgroup_size(256)
fn sum_strided(@builtin(local_invocation_index) lid: u32) {
    var acc = 0.0;
    for (var j = lid; j < p.count; j = j + RWG) {
        acc = acc + ss_src[(j / p.group_len) * p.plane + p.offset + j % p.group_len];
    }
    red[lid] = acc;
    workgroupBarrier();
    for (var s = RWG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            red[lid] = red[lid] + red[lid + s];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        ss_out[0] = red[0] * p.scale;
    }
}

@group(0) @binding(1) var<storage, read> as_x: array<f32>;
@group(0) @binding(2) var<storage, read> as_s: array<f32>;
@group(0) @binding(3) var<storage, read_write> as_y: array<f32>;

// y[n, c', h, w] = x[n, c', h, w] for c' < c, the scalar for c' = c.
@compute @workgroup_size(64)
fn assemble(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.total) { return; }
    let plane = p.features + p.spatial;
    let n = i / plane;
    let r = i % plane;
    if (r < p.features) {
        as_y[i] = as_x[n * p.features + r];
    } else {
        as_y[i] = as_s[0];
    }
}

@group(0) @binding(1) var<storage, read> bw_x: array<f32>;
@group(0) @binding(2) var<storage, read> bw_gy: array<f32>;
@group(0) @binding(3) var<storage, read> bw_g: array<f32>;
@group(0) @binding(4) var<storage, read_write> bw_gx: array<f32>;

// One thread per feature: recompute mean and std, then write gx for every batch item.
@compute @workgroup_size(64)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let f = flat(wid, nwg, lid);
    if (f >= p.features) { return; }
    var mean = 0.0;
    for (var n = 0u; n < p.batch; n = n + 1u) {
        mean = mean + bw_x[n * p.features + f];
    }
    mean = mean / f32(p.batch);
    var ss = 0.0;
    for (var n = 0u; n < p.batch; n = n + 1u) {
        let d = bw_x[n * p.features + f] - mean;
        ss = ss + d * d;
    }
    let sd = sqrt(ss / f32(p.batch) + p.eps);
    let k = bw_g[0] / (f32(p.features) * f32(p.batch) * sd);
    let plane = p.features + p.spatial;
    for (var n = 0u; n < p.batch; n = n + 1u) {
        let xi = n * p.features + f;
        bw_gx[xi] = bw_gy[n * plane + f] + k * (bw_x[xi] - mean);
    }
}
