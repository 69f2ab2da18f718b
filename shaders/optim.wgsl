// In-place optimizer updates (Adam, SGD with momentum / Nesterov, PyTorch semantics), the sign
// gradient step of ODIN input perturbation, and gradient accumulation. One thread per element.
// The CPU-side constants (bias corrections, 1 - beta) are computed in f64 and passed in `p`.
// CPU reference and the update equations: kernels/src/optim.rs.

struct Params {
    n: u32,
    flags: u32,        // bit 0: weight decay on; bit 1: SGD first step (buffer := d); bit 2: Nesterov
    pad0: u32,
    pad1: u32,
    rate: f32,         // adam: lr / (1 - beta1^t); sgd: lr; sign_step: eps; accumulate: alpha
    weight_decay: f32,
    k1: f32,           // adam: 1 - beta1;  sgd: momentum
    k2: f32,           // adam: beta2;      sgd: 1 - dampening
    k3: f32,           // adam: 1 - beta2
    k4: f32,           // adam: sqrt(1 - beta2^t)
    eps: f32,          // adam: eps
    pad2: f32,
}

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 64u;
const WEIGHT_DECAY: u32 = 1u;
const FIRST_STEP: u32 = 2u;
const NESTEROV: u32 = 4u;

fn flat(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid;
}

// d = g + weight_decay * param: PyTorch's L2 penalty, added only when weight_decay != 0 so a
// non-finite parameter is not mixed into a gradient that did not ask for it.
fn decayed(g: f32, param: f32) -> f32 {
    if ((p.flags & WEIGHT_DECAY) != 0u) {
        return g + p.weight_decay * param;
    }
    return g;
}

@group(0) @binding(1) var<storage, read_write> adam_param: array<f32>;
@group(0) @binding(2) var<storage, read> adam_grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> adam_m: array<f32>;
@group(0) @binding(4) var<storage, read_write> adam_v: array<f32>;

// Adam (Kingma & Ba 2015, Algorithm 1, in torch.optim.Adam's arrangement):
//   m <- m + (1 - b1) (d - m);  v <- b2 v + (1 - b2) d^2
//   param <- param - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
@compute @workgroup_size(64)
fn adam(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let param = adam_param[i];
    let d = decayed(adam_grad[i], param);
    let m = adam_m[i] + p.k1 * (d - adam_m[i]);
    let v = p.k2 * adam_v[i] + p.k3 * d * d;
    adam_m[i] = m;
    adam_v[i] = v;
    adam_param[i] = param - p.rate * (m / (sqrt(v) / p.k4 + p.eps));
}

@group(0) @binding(1) var<storage, read_write> sgd_param: array<f32>;
@group(0) @binding(2) var<storage, read> sgd_grad: array<f32>;

// Plain SGD (momentum 0): param <- param - lr d.
@compute @workgroup_size(64)
fn sgd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let param = sgd_param[i];
    sgd_param[i] = param - p.rate * decayed(sgd_grad[i], param);
}

@group(0) @binding(1) var<storage, read_write> sgdm_param: array<f32>;
@group(0) @binding(2) var<storage, read> sgdm_grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> sgdm_buf: array<f32>;

// SGD with momentum as torch.optim.SGD:
//   buf <- d on the first step, else momentum buf + (1 - dampening) d
//   step = d + momentum buf (Nesterov) or buf;  param <- param - lr step
// The first step never reads the old buffer, so it may hold anything.
@compute @workgroup_size(64)
fn sgd_momentum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let param = sgdm_param[i];
    let d = decayed(sgdm_grad[i], param);
    var buf = d;
    if ((p.flags & FIRST_STEP) == 0u) {
        buf = p.k1 * sgdm_buf[i] + p.k2 * d;
    }
    sgdm_buf[i] = buf;
    var step = buf;
    if ((p.flags & NESTEROV) != 0u) {
        step = d + p.k1 * buf;
    }
    sgdm_param[i] = param - p.rate * step;
}

@group(0) @binding(1) var<storage, read> ss_x: array<f32>;
@group(0) @binding(2) var<storage, read> ss_g: array<f32>;
@group(0) @binding(3) var<storage, read_write> ss_y: array<f32>;

// Thesis eq. 3.3 (ODIN input perturbation): y = x - eps * sgn(g), g the loss gradient at x, so the
// step lowers the loss; sign(0) = 0 leaves such elements unchanged.
@compute @workgroup_size(64)
fn sign_step(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    ss_y[i] = ss_x[i] - p.rate * sign(ss_g[i]);
}

@group(0) @binding(1) var<storage, read_write> acc_dst: array<f32>;
@group(0) @binding(2) var<storage, read> acc_src: array<f32>;

// dst <- dst + alpha src (gradient accumulation).
@compute @workgroup_size(64)
fn accumulate(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    acc_dst[i] = acc_dst[i] + p.rate * acc_src[i];
}

@group(0) @binding(1) var<storage, read_write> self_dst: array<f32>;

// The same when src is dst itself (one buffer cannot be bound both writable and read-only).
@compute @workgroup_size(64)
fn accumulate_self(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let d = self_dst[i];
    self_dst[i] = d + p.rate * d;
}
