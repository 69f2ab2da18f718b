//! Parameter updates in place on the GPU — Adam and SGD (with momentum, dampening, Nesterov),
//! both with PyTorch's semantics — the sign-gradient input step of ODIN (thesis eq. 3.3), and
//! in-place gradient accumulation `dst += alpha * src`.
//! WGSL: `shaders/optim.wgsl`. CPU reference: [`cpu`].
//!
//! All tensors of one update must have the same shape and live on the same context. Updates are
//! recorded in the context's open encoder like every op, so they run in order with the backward
//! pass that produced the gradients; nothing is submitted here.
//!
//! None of these has a backward: the optimizer steps are not part of the differentiated graph, and
//! [`sign_step`]'s output is `x` plus a term whose derivative is zero almost everywhere
//! (d sgn(g)/dg = 0 for g != 0), so its vector-Jacobian product is `gy` for `x` and zero for `g`.

use bytemuck::{Pod, Zeroable};

use crate::error::{Error, Result};
use crate::kernel::{grid_1d, KernelSpec, R, RW, WG_1D};
use crate::tensor::{DType, Tensor};

const SRC: &str = include_str!("../../shaders/optim.wgsl");
const ADAM: KernelSpec = KernelSpec { id: "optim.adam", source: SRC, entry: "adam", bindings: &[RW, R, RW, RW] };
const SGD: KernelSpec = KernelSpec { id: "optim.sgd", source: SRC, entry: "sgd", bindings: &[RW, R] };
const SGD_MOMENTUM: KernelSpec =
    KernelSpec { id: "optim.sgd_momentum", source: SRC, entry: "sgd_momentum", bindings: &[RW, R, RW] };
const SIGN_STEP: KernelSpec = KernelSpec { id: "optim.sign_step", source: SRC, entry: "sign_step", bindings: &[R, R, RW] };
const ACCUMULATE: KernelSpec = KernelSpec { id: "optim.accumulate", source: SRC, entry: "accumulate", bindings: &[RW, R] };
const ACCUMULATE_SELF: KernelSpec =
    KernelSpec { id: "optim.accumulate_self", source: SRC, entry: "accumulate_self", bindings: &[RW] };

const WEIGHT_DECAY: u32 = 1;
const FIRST_STEP: u32 = 2;
const NESTEROV: u32 = 4;

/// Mirrors `Params` in `shaders/optim.wgsl`; the meaning of `rate` and `k1..k4` depends on the entry.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct Params {
    n: u32,
    flags: u32,
    pad0: u32,
    pad1: u32,
    rate: f32,
    weight_decay: f32,
    k1: f32,
    k2: f32,
    k3: f32,
    k4: f32,
    eps: f32,
    pad2: f32,
}

/// One Adam update (torch.optim.Adam, `amsgrad=False`, `maximize=False`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// L2 penalty added to the gradient (`d = g + weight_decay * param`), not AdamW's decoupled decay.
    pub weight_decay: f32,
    /// 1 on the first update; the bias corrections use `1 - beta^step`.
    pub step: u32,
}

impl Default for AdamStep {
    /// PyTorch's defaults, first step.
    fn default() -> Self {
        AdamStep { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, step: 1 }
    }
}

/// One SGD update (torch.optim.SGD, `maximize=False`).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct SgdStep {
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    pub dampening: f32,
    pub nesterov: bool,
    /// 1 on the first update, when the momentum buffer is set to the gradient (its old contents
    /// are ignored); later steps blend into it.
    pub step: u32,
}

fn finite_in(what: &str, value: f32, lo: f32, hi_exclusive: Option<f32>) -> Result<()> {
    let ok = value.is_finite() && value >= lo && hi_exclusive.is_none_or(|hi| value < hi);
    if !ok {
        let range = match hi_exclusive {
            Some(hi) => format!("[{lo}, {hi})"),
            None => format!(">= {lo}"),
        };
        return Err(Error::Shape(format!("{what} must be finite and {range}, got {value}")));
    }
    Ok(())
}

/// Error unless every tensor is f32, on `first`'s context and of `first`'s shape; names them all.
fn check_tensors(op: &str, names: &[&str], tensors: &[&Tensor]) -> Result<()> {
    let first = tensors[0];
    for (name, t) in names.iter().zip(tensors) {
        if t.dtype() != DType::F32 {
            return Err(Error::Shape(format!("{op}: {name} must be f32, got {:?} {:?}", t.dtype(), t.shape())));
        }
        first.expect_same_context(t, op)?;
    }
    if tensors.iter().any(|t| t.shape() != first.shape()) {
        let all: Vec<String> = names.iter().zip(tensors).map(|(n, t)| format!("{n} {:?}", t.shape())).collect();
        return Err(Error::Shape(format!("{op}: shapes differ: {}", all.join(", "))));
    }
    Ok(())
}

/// Error if two of the tensors share a buffer (a buffer cannot be bound writable twice in a dispatch,
/// and an update of param from itself as gradient is a caller bug).
fn check_distinct(op: &str, names: &[&str], tensors: &[&Tensor]) -> Result<()> {
    for i in 0..tensors.len() {
        for j in i + 1..tensors.len() {
            if tensors[i].buffer_id() == tensors[j].buffer_id() {
                return Err(Error::Shape(format!("{op}: {} and {} are the same buffer", names[i], names[j])));
            }
        }
    }
    Ok(())
}

/// One Adam step in place: updates `param`, `m` (first moment) and `v` (second moment) from `grad`.
/// `m` and `v` must start at zero before step 1. All four: the same shape, e.g. a conv weight
/// `[out_channels, in_channels, kh, kw]`.
///
/// ```text
/// d = grad + weight_decay * param
/// m = beta1 * m + (1 - beta1) * d;   v = beta2 * v + (1 - beta2) * d^2
/// param -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
/// ```
pub fn adam_step(param: &Tensor, grad: &Tensor, m: &Tensor, v: &Tensor, cfg: AdamStep) -> Result<()> {
    let names = ["param", "grad", "m", "v"];
    let tensors = [param, grad, m, v];
    check_tensors("adam_step", &names, &tensors)?;
    check_distinct("adam_step", &names, &tensors)?;
    finite_in("adam_step lr", cfg.lr, 0.0, None)?;
    finite_in("adam_step beta1", cfg.beta1, 0.0, Some(1.0))?;
    finite_in("adam_step beta2", cfg.beta2, 0.0, Some(1.0))?;
    finite_in("adam_step eps", cfg.eps, 0.0, None)?;
    finite_in("adam_step weight_decay", cfg.weight_decay, 0.0, None)?;
    if cfg.step == 0 {
        return Err(Error::Shape("adam_step step must start at 1 (bias corrections divide by 1 - beta^step), got 0".into()));
    }
    // Bias corrections in f64, as PyTorch computes them in Python floats.
    let (b1, b2, t) = (cfg.beta1 as f64, cfg.beta2 as f64, cfg.step as i32);
    let params = Params {
        n: param.numel() as u32,
        flags: if cfg.weight_decay != 0.0 { WEIGHT_DECAY } else { 0 },
        rate: (cfg.lr as f64 / (1.0 - b1.powi(t))) as f32,
        weight_decay: cfg.weight_decay,
        k1: (1.0 - b1) as f32,
        k2: cfg.beta2,
        k3: (1.0 - b2) as f32,
        k4: (1.0 - b2.powi(t)).sqrt() as f32,
        eps: cfg.eps,
        ..Default::default()
    };
    param.context().dispatch(
        &ADAM,
        &params,
        &[param.binding(), grad.binding(), m.binding(), v.binding()],
        grid_1d(param.numel(), WG_1D),
    )
}

/// One SGD step in place on `param` (and the momentum buffer, required when `cfg.momentum != 0`
/// and ignored otherwise). All tensors: the same shape.
///
/// ```text
/// d = grad + weight_decay * param
/// buf = d (step 1) or momentum * buf + (1 - dampening) * d
/// param -= lr * (nesterov ? d + momentum * buf : buf)      (momentum 0: param -= lr * d)
/// ```
pub fn sgd_step(param: &Tensor, grad: &Tensor, momentum_buf: Option<&Tensor>, cfg: SgdStep) -> Result<()> {
    finite_in("sgd_step lr", cfg.lr, 0.0, None)?;
    finite_in("sgd_step momentum", cfg.momentum, 0.0, None)?;
    finite_in("sgd_step weight_decay", cfg.weight_decay, 0.0, None)?;
    if !cfg.dampening.is_finite() {
        return Err(Error::Shape(format!("sgd_step dampening must be finite, got {}", cfg.dampening)));
    }
    if cfg.nesterov && (cfg.momentum <= 0.0 || cfg.dampening != 0.0) {
        return Err(Error::Shape(format!(
            "sgd_step nesterov needs momentum > 0 and dampening 0, got momentum {} and dampening {}",
            cfg.momentum, cfg.dampening
        )));
    }
    if cfg.step == 0 {
        return Err(Error::Shape("sgd_step step must start at 1, got 0".into()));
    }
    let wd_flag = if cfg.weight_decay != 0.0 { WEIGHT_DECAY } else { 0 };
    let mut params = Params { n: param.numel() as u32, rate: cfg.lr, weight_decay: cfg.weight_decay, ..Default::default() };
    let ctx = param.context();
    if cfg.momentum == 0.0 {
        check_tensors("sgd_step", &["param", "grad"], &[param, grad])?;
        check_distinct("sgd_step", &["param", "grad"], &[param, grad])?;
        params.flags = wd_flag;
        return ctx.dispatch(&SGD, &params, &[param.binding(), grad.binding()], grid_1d(param.numel(), WG_1D));
    }
    let Some(buf) = momentum_buf else {
        return Err(Error::Shape(format!(
            "sgd_step with momentum {} needs a momentum buffer of param's shape {:?}",
            cfg.momentum,
            param.shape()
        )));
    };
    let names = ["param", "grad", "momentum_buf"];
    check_tensors("sgd_step", &names, &[param, grad, buf])?;
    check_distinct("sgd_step", &names, &[param, grad, buf])?;
    params.flags = wd_flag | if cfg.step == 1 { FIRST_STEP } else { 0 } | if cfg.nesterov { NESTEROV } else { 0 };
    params.k1 = cfg.momentum;
    params.k2 = (1.0 - cfg.dampening as f64) as f32;
    ctx.dispatch(&SGD_MOMENTUM, &params, &[param.binding(), grad.binding(), buf.binding()], grid_1d(param.numel(), WG_1D))
}

/// Thesis eq. 3.3 (ODIN input perturbation): `x - eps * sgn(g)`, out of place.
/// `g` is the gradient of the loss with respect to `x`, so a positive `eps` steps to *lower* loss
/// (the input looks more normal to the model); a negative `eps` gives the fast gradient sign
/// step that raises it. `sgn(0) = 0`. x, g: the same shape, e.g. `[batch, channels, height, width]`.
/// No backward (see the module docs): the output's gradient flows to `x` unchanged.
pub fn sign_step(x: &Tensor, g: &Tensor, eps: f32) -> Result<Tensor> {
    check_tensors("sign_step", &["x", "g"], &[x, g])?;
    if !eps.is_finite() {
        return Err(Error::Shape(format!("sign_step eps must be finite, got {eps}")));
    }
    let y = Tensor::uninit(x.context(), x.shape(), DType::F32)?;
    let params = Params { n: x.numel() as u32, rate: eps, ..Default::default() };
    x.context().dispatch(&SIGN_STEP, &params, &[x.binding(), g.binding(), y.binding()], grid_1d(x.numel(), WG_1D))?;
    Ok(y)
}

/// `dst += alpha * src` in place (gradient accumulation into an existing buffer). Same shape;
/// `src` may be `dst` itself (or a clone sharing its buffer).
pub fn accumulate(dst: &Tensor, src: &Tensor, alpha: f32) -> Result<()> {
    check_tensors("accumulate", &["dst", "src"], &[dst, src])?;
    if !alpha.is_finite() {
        return Err(Error::Shape(format!("accumulate alpha must be finite, got {alpha}")));
    }
    let params = Params { n: dst.numel() as u32, rate: alpha, ..Default::default() };
    let grid = grid_1d(dst.numel(), WG_1D);
    if dst.buffer_id() == src.buffer_id() {
        return dst.context().dispatch(&ACCUMULATE_SELF, &params, &[dst.binding()], grid);
    }
    dst.context().dispatch(&ACCUMULATE, &params, &[dst.binding(), src.binding()], grid)
}

/// Plain-Rust f64 reference of the updates, written as the textbook equations (not the shader's
/// arrangement), so the comparison checks the algebra too.
pub mod cpu {
    use super::{AdamStep, SgdStep};

    pub fn adam_step(param: &mut [f64], grad: &[f64], m: &mut [f64], v: &mut [f64], cfg: AdamStep) {
        let (b1, b2) = (cfg.beta1 as f64, cfg.beta2 as f64);
        let t = cfg.step as i32;
        for i in 0..param.len() {
            let d = grad[i] + cfg.weight_decay as f64 * param[i];
            m[i] = b1 * m[i] + (1.0 - b1) * d;
            v[i] = b2 * v[i] + (1.0 - b2) * d * d;
            let m_hat = m[i] / (1.0 - b1.powi(t));
            let v_hat = v[i] / (1.0 - b2.powi(t));
            param[i] -= cfg.lr as f64 * m_hat / (v_hat.sqrt() + cfg.eps as f64);
        }
    }

    /// `buf` is read only after the first step, and only when momentum != 0.
    pub fn sgd_step(param: &mut [f64], grad: &[f64], buf: &mut [f64], cfg: SgdStep) {
        let (mu, damp) = (cfg.momentum as f64, cfg.dampening as f64);
        for i in 0..param.len() {
            let d = grad[i] + cfg.weight_decay as f64 * param[i];
            let step = if mu == 0.0 {
                d
            } else {
                buf[i] = if cfg.step == 1 { d } else { mu * buf[i] + (1.0 - damp) * d };
                if cfg.nesterov {
                    d + mu * buf[i]
                } else {
                    buf[i]
                }
            };
            param[i] -= cfg.lr as f64 * step;
        }
    }

    pub fn sign_step(x: &[f64], g: &[f64], eps: f32) -> Vec<f64> {
        x.iter().zip(g).map(|(&x, &g)| x - eps as f64 * if g > 0.0 { 1.0 } else if g < 0.0 { -1.0 } else { 0.0 }).collect()
    }

    pub fn accumulate(dst: &mut [f64], src: &[f64], alpha: f32) {
        for (d, s) in dst.iter_mut().zip(src) {
            *d += alpha as f64 * s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu_or_skip;
    use crate::testing::{assert_close, to_f32, TestRng};

    const N: usize = 1001; // not a multiple of the 64-thread workgroup

    // Five f32 steps against f64: each step rounds param, m and v once and the update ratio
    // m / (sqrt(v) + eps) to a few ulp; lr = 1e-2 keeps updates below 1e-1, so after five steps the
    // parameters (|p| < 2) stay within 1e-6 absolute + 1e-6 relative. A wrong bias correction or
    // missing decay term moves them by ~1e-3.
    const ATOL: f64 = 1e-6;
    const RTOL: f64 = 1e-6;

    #[test]
    fn adam_matches_cpu_over_five_steps() {
        let ctx = gpu_or_skip!();
        let configs = [
            AdamStep { lr: 1e-2, ..Default::default() },
            AdamStep { lr: 1e-2, weight_decay: 0.1, ..Default::default() },
            AdamStep { lr: 2e-2, beta1: 0.5, beta2: 0.9, eps: 1e-3, weight_decay: 0.01, step: 1 },
        ];
        for (c, cfg) in configs.into_iter().enumerate() {
            let mut rng = TestRng::new(10 + c as u64);
            let mut p = rng.vec(N, -1.0, 1.0);
            let (mut m, mut v) = (vec![0.0; N], vec![0.0; N]);
            let pt = Tensor::from_slice(&ctx, &[7, 11, 13], &to_f32(&p)).unwrap();
            let (mt, vt) = (Tensor::zeros(&ctx, &[7, 11, 13]).unwrap(), Tensor::zeros(&ctx, &[7, 11, 13]).unwrap());
            for step in 1..=5 {
                // Gradients span magnitudes so some elements are dominated by decay, some by noise.
                let g: Vec<f64> =
                    rng.vec(N, -1.0, 1.0).iter().enumerate().map(|(i, x)| x * [1.0, 1e-2, 10.0][i % 3]).collect();
                let gt = Tensor::from_slice(&ctx, &[7, 11, 13], &to_f32(&g)).unwrap();
                let cfg = AdamStep { step, ..cfg };
                adam_step(&pt, &gt, &mt, &vt, cfg).unwrap();
                cpu::adam_step(&mut p, &g, &mut m, &mut v, cfg);
            }
            let what = format!("adam {:?}", AdamStep { step: 5, ..cfg });
            assert_close(&format!("{what} param"), &pt.to_vec().unwrap(), &p, ATOL, RTOL);
            assert_close(&format!("{what} m"), &mt.to_vec().unwrap(), &m, ATOL, RTOL);
            // v holds squares of gradients up to 10: relative tolerance carries it.
            assert_close(&format!("{what} v"), &vt.to_vec().unwrap(), &v, ATOL, 1e-5);
        }
    }

    #[test]
    fn sgd_matches_cpu_over_five_steps() {
        let ctx = gpu_or_skip!();
        let base = SgdStep { lr: 1e-2, ..Default::default() };
        let configs = [
            base,
            SgdStep { weight_decay: 0.1, ..base },
            SgdStep { momentum: 0.9, ..base },
            SgdStep { momentum: 0.9, dampening: 0.3, weight_decay: 0.05, ..base },
            SgdStep { momentum: 0.9, nesterov: true, weight_decay: 0.05, ..base },
        ];
        for (c, cfg) in configs.into_iter().enumerate() {
            let mut rng = TestRng::new(20 + c as u64);
            let mut p = rng.vec(N, -1.0, 1.0);
            let mut buf = vec![0.0; N];
            let pt = Tensor::from_slice(&ctx, &[N], &to_f32(&p)).unwrap();
            // Garbage in the buffer: step 1 must overwrite it, never read it.
            let bt = Tensor::from_slice(&ctx, &[N], &vec![f32::NAN; N]).unwrap();
            for step in 1..=5 {
                let g = rng.vec(N, -1.0, 1.0);
                let gt = Tensor::from_slice(&ctx, &[N], &to_f32(&g)).unwrap();
                let cfg = SgdStep { step, ..cfg };
                sgd_step(&pt, &gt, Some(&bt), cfg).unwrap();
                cpu::sgd_step(&mut p, &g, &mut buf, cfg);
            }
            let what = format!("sgd {:?}", SgdStep { step: 5, ..cfg });
            assert_close(&format!("{what} param"), &pt.to_vec().unwrap(), &p, ATOL, RTOL);
            if cfg.momentum != 0.0 {
                assert_close(&format!("{what} buf"), &bt.to_vec().unwrap(), &buf, ATOL, RTOL);
            } else {
                assert!(bt.to_vec().unwrap().iter().all(|v| v.is_nan()), "momentum 0 must leave the buffer alone");
            }
        }
    }

    #[test]
    fn first_adam_step_moves_each_parameter_by_lr_against_the_gradient_sign() {
        // Step 1 with eps -> 0: m_hat / sqrt(v_hat) = d / |d| = sgn(d), so param moves by exactly lr.
        let mut p = vec![0.5, -0.5, 0.25];
        let (mut m, mut v) = (vec![0.0; 3], vec![0.0; 3]);
        cpu::adam_step(&mut p, &[3.0, -1e-3, 0.2], &mut m, &mut v, AdamStep { lr: 0.1, eps: 0.0, ..Default::default() });
        let lr = 0.1f32 as f64;
        let want = [0.5 - lr, -0.5 + lr, 0.25 - lr];
        assert!(p.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12), "{p:?}");
    }

    #[test]
    fn sign_step_lowers_the_loss_and_matches_cpu() {
        let ctx = gpu_or_skip!();
        let mut rng = TestRng::new(30);
        let shape = [3, 5, 67];
        let n: usize = shape.iter().product();
        let x = rng.vec(n, -1.0, 1.0);
        // Gradient of the loss 0.5 * |x - c|^2 is x - c; include exact zeros (sgn 0 = 0).
        let c = rng.vec(n, -1.0, 1.0);
        let g: Vec<f64> = x.iter().zip(&c).enumerate().map(|(i, (x, c))| if i % 7 == 0 { 0.0 } else { x - c }).collect();
        let xt = Tensor::from_slice(&ctx, &shape, &to_f32(&x)).unwrap();
        let gt = Tensor::from_slice(&ctx, &shape, &to_f32(&g)).unwrap();
        let eps = 0.01;
        let y = sign_step(&xt, &gt, eps).unwrap().to_vec().unwrap();
        // One f32 subtraction of values below 2: correctly rounded on every backend, so 1 ulp.
        assert_close("sign_step", &y, &cpu::sign_step(&x, &g, eps), 0.0, 1.2e-7);
        for i in (0..n).filter(|&i| i % 7 != 0 && (x[i] - c[i]).abs() > eps as f64) {
            assert!((y[i] as f64 - c[i]).abs() < (x[i] - c[i]).abs(), "element {i} moved away from the minimum");
        }
        for i in (0..n).step_by(7) {
            assert_eq!(y[i], x[i] as f32, "zero gradient must leave element {i} unchanged");
        }
    }

    #[test]
    fn accumulate_adds_in_place_including_into_itself() {
        let ctx = gpu_or_skip!();
        let mut rng = TestRng::new(40);
        let mut acc = rng.vec(N, -1.0, 1.0);
        let dst = Tensor::from_slice(&ctx, &[N], &to_f32(&acc)).unwrap();
        for alpha in [1.0f32, -0.5, 3.0] {
            let src = rng.vec(N, -1.0, 1.0);
            accumulate(&dst, &Tensor::from_slice(&ctx, &[N], &to_f32(&src)).unwrap(), alpha).unwrap();
            cpu::accumulate(&mut acc, &src, alpha);
        }
        // Three f32 fused-or-not multiply-adds of values below 10: 1e-6 absolute.
        assert_close("accumulate", &dst.to_vec().unwrap(), &acc, 1e-6, 1e-6);
        let alias = dst.reshape(&[7, 11, 13]).unwrap().reshape(&[N]).unwrap();
        accumulate(&dst, &alias, 0.5).unwrap();
        let src = acc.clone();
        cpu::accumulate(&mut acc, &src, 0.5);
        assert_close("accumulate into itself", &dst.to_vec().unwrap(), &acc, 1e-6, 1e-6);
    }

    #[test]
    fn bad_shapes_aliases_and_hyperparameters_are_errors() {
        let ctx = gpu_or_skip!();
        let p = Tensor::zeros(&ctx, &[1001]).unwrap();
        let g = Tensor::zeros(&ctx, &[1000]).unwrap();
        let (m, v) = (Tensor::zeros(&ctx, &[1001]).unwrap(), Tensor::zeros(&ctx, &[1001]).unwrap());
        let err = adam_step(&p, &g, &m, &v, AdamStep::default()).unwrap_err().to_string();
        assert!(err.contains("param [1001]") && err.contains("grad [1000]"), "{err}");
        let err = adam_step(&p, &m, &m, &v, AdamStep::default()).unwrap_err().to_string();
        assert!(err.contains("grad and m are the same buffer"), "{err}");
        let w = Tensor::zeros(&ctx, &[1001]).unwrap();
        let err = adam_step(&p, &m, &v, &w, AdamStep { beta2: 1.0, ..Default::default() }).unwrap_err().to_string();
        assert!(err.contains("beta2") && err.contains("got 1"), "{err}");
        let err = adam_step(&p, &m, &v, &g.reshape(&[10, 100]).unwrap(), AdamStep { step: 0, ..Default::default() })
            .unwrap_err()
            .to_string();
        assert!(err.contains("v [10, 100]"), "{err}");

        let sgd = SgdStep { lr: 0.1, momentum: 0.9, step: 1, ..Default::default() };
        let err = sgd_step(&p, &m, Some(&g), sgd).unwrap_err().to_string();
        assert!(err.contains("momentum_buf [1000]") && err.contains("param [1001]"), "{err}");
        let err = sgd_step(&p, &m, None, sgd).unwrap_err().to_string();
        assert!(err.contains("momentum buffer") && err.contains("[1001]"), "{err}");
        let err = sgd_step(&p, &m, Some(&v), SgdStep { nesterov: true, dampening: 0.1, ..sgd }).unwrap_err().to_string();
        assert!(err.contains("nesterov") && err.contains("dampening 0.1"), "{err}");

        let err = sign_step(&p, &g, 0.1).unwrap_err().to_string();
        assert!(err.contains("x [1001]") && err.contains("g [1000]"), "{err}");
        let err = accumulate(&p, &g, 1.0).unwrap_err().to_string();
        assert!(err.contains("dst [1001]") && err.contains("src [1000]"), "{err}");
        let idx = Tensor::from_u32(&ctx, &[1001], &[0; 1001]).unwrap();
        let err = accumulate(&p, &idx, 1.0).unwrap_err().to_string();
        assert!(err.contains("src must be f32"), "{err}");
    }
}
