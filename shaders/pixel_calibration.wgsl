// Per-pixel Platt scaling and Beta calibration of logit maps (thesis §4.2, localization): every
// output pixel has its own parameter set, packed as planes of w: [P, H, W].
//   Platt (method 0, P = 2):  y = a z + b
//   Beta  (method 1, P = 3):  y = a ln(sigmoid(z)) - b ln(1 - sigmoid(z)) + c
//                               = -a softplus(-z) + b softplus(z) + c     (thesis eq. 3.2)
// ln(eta) and ln(1 - eta) come from the logit through softplus, never from a rounded eta, so
// overconfident logits keep their order. z and y: [N, H, W] (or [N, 1, H, W]) flattened.
// CPU reference and the launch code: kernels/src/pixel_calibration.rs.

struct Params {
    n: u32,        // elements of z: N * H * W
    pixels: u32,   // H * W
    batch: u32,    // N
    method: u32,   // 0 Platt, 1 Beta
}

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 64u;

fn flat(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid;
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

@group(0) @binding(1) var<storage, read> f_z: array<f32>;
@group(0) @binding(2) var<storage, read> f_w: array<f32>;
@group(0) @binding(3) var<storage, read_write> f_y: array<f32>;

@compute @workgroup_size(64)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let px = i % p.pixels;
    let z = f_z[i];
    if (p.method == 0u) {
        f_y[i] = f_w[px] * z + f_w[p.pixels + px];
        return;
    }
    f_y[i] = -f_w[px] * softplus(-z) + f_w[p.pixels + px] * softplus(z) + f_w[2u * p.pixels + px];
}

@group(0) @binding(1) var<storage, read> bi_z: array<f32>;
@group(0) @binding(2) var<storage, read> bi_w: array<f32>;
@group(0) @binding(3) var<storage, read> bi_gy: array<f32>;
@group(0) @binding(4) var<storage, read_write> bi_gz: array<f32>;

// gz = gy * dy/dz;  Platt: a;  Beta: a sigmoid(-z) + b sigmoid(z).
@compute @workgroup_size(64)
fn backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let px = i % p.pixels;
    if (p.method == 0u) {
        bi_gz[i] = bi_gy[i] * bi_w[px];
        return;
    }
    let z = bi_z[i];
    bi_gz[i] = bi_gy[i] * (bi_w[px] * sigmoid(-z) + bi_w[p.pixels + px] * sigmoid(z));
}

@group(0) @binding(1) var<storage, read> bp_z: array<f32>;
@group(0) @binding(2) var<storage, read> bp_gy: array<f32>;
@group(0) @binding(3) var<storage, read_write> bp_gw: array<f32>;

// Gradient of every parameter plane, one thread per pixel summing over the batch in order:
// no atomics, so the result is the same on every run.
//   Platt: (sum gy z, sum gy);  Beta: (sum gy ln sigmoid(z), sum gy softplus(z), sum gy).
@compute @workgroup_size(64)
fn backward_params(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let px = flat(wid, nwg, lid);
    if (px >= p.pixels) { return; }
    var g0 = 0.0;
    var g1 = 0.0;
    var g2 = 0.0;
    for (var s = 0u; s < p.batch; s = s + 1u) {
        let i = s * p.pixels + px;
        let z = bp_z[i];
        let gy = bp_gy[i];
        if (p.method == 0u) {
            g0 = g0 + gy * z;
            g1 = g1 + gy;
        } else {
            g0 = g0 - gy * softplus(-z);
            g1 = g1 + gy * softplus(z);
            g2 = g2 + gy;
        }
    }
    bp_gw[px] = g0;
    bp_gw[p.pixels + px] = g1;
    if (p.method == 1u) {
        bp_gw[2u * p.pixels + px] = g2;
    }
}

@group(0) @binding(1) var<storage, read_write> pr_w: array<f32>;

// Beta's a, b >= 0 (thesis §3.2.2): projects the first two planes onto [0, inf) in place after an
// optimizer step. n here is 2 * pixels.
@compute @workgroup_size(64)
fn project_nonnegative(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    pr_w[i] = max(pr_w[i], 0.0);
}
