//! The losses of `oddity::models::losses` and their scores, logits and estimates against plain
//! f64 formulas (`losses::cpu`, written with `exp_m1`/`ln_1p`, independent of the GPU branches),
//! gradients against f64 central differences, and the stable forms at extreme values.

use oddity::autograd::Var;
use oddity::kernels::testing::{assert_close, numeric_vjp, TestRng};
use oddity::kernels::{gpu_or_skip, Context, Tensor};
use oddity::models::losses::{self, cpu, Objective};

fn var(ctx: &Context, shape: &[usize], data: &[f64]) -> Var {
    let v: Vec<f32> = data.iter().map(|&x| x as f32).collect();
    Var::constant(Tensor::from_slice(ctx, shape, &v).unwrap())
}

fn leaf(ctx: &Context, shape: &[usize], data: &[f64]) -> Var {
    let v: Vec<f32> = data.iter().map(|&x| x as f32).collect();
    Var::leaf(Tensor::from_slice(ctx, shape, &v).unwrap())
}

fn read(v: &Var) -> Vec<f32> {
    v.value().to_vec().unwrap()
}

fn assert_finite(what: &str, xs: &[f32]) {
    assert!(xs.iter().all(|x| x.is_finite()), "{what}: non-finite values {xs:?}");
}

/// Every decade from 1e-30 to 1e30, both sides of the branch point 0.5 and where e^{-v}
/// underflows in f32 (v > 88).
const V_GRID: [f64; 20] =
    [1e-30, 1e-20, 1e-8, 1e-4, 1e-2, 0.1, 0.3, 0.4999, 0.5, 0.5001, 0.69, 1.0, 2.0, 5.0, 10.0, 17.0, 30.0, 88.0, 1e4, 1e30];

#[test]
fn neg_log1mexp_matches_f64_from_1e_minus_30_to_1e30() {
    let ctx = gpu_or_skip!();
    let v = leaf(&ctx, &[V_GRID.len()], &V_GRID);
    let y = losses::neg_log1mexp(&v).unwrap();
    let want: Vec<f64> = V_GRID.iter().map(|&x| cpu::neg_log1mexp(x)).collect();
    // f32 transcendental functions (a few ulp) on values up to 69: 1e-6 relative; the series
    // truncation error is below 9e-8 absolute at v = 0.5.
    assert_close("-ln(1 - e^-v)", &read(&y), &want, 1e-6, 1e-5);
    // d/dv = -1 / expm1(v); the series' derivative is truncated at v^5/720 (5e-5 at v = 0.5,
    // relative to 1.54), f32 rounding elsewhere.
    y.sum().unwrap().backward().unwrap();
    let g = v.grad().unwrap().to_vec().unwrap();
    let want_g: Vec<f64> = V_GRID.iter().map(|&x| -1.0 / x.exp_m1()).collect();
    assert_close("d/dv -ln(1 - e^-v)", &g, &want_g, 1e-6, 1e-4);
}

#[test]
fn neg_log1mexp_is_finite_at_zero_and_at_huge_v() {
    let ctx = gpu_or_skip!();
    let v = leaf(&ctx, &[4], &[0.0, 1e-45, 3e38, 1e-38]);
    let y = losses::neg_log1mexp(&v).unwrap();
    let vals = read(&y);
    assert_finite("values", &vals);
    // v = 0 is clamped to 1e-30: -ln(1e-30) = 69.08.
    assert!((vals[0] - 69.0776).abs() < 1e-3, "{vals:?}");
    assert_eq!(vals[2], 0.0);
    y.sum().unwrap().backward().unwrap();
    assert_finite("gradients", &v.grad().unwrap().to_vec().unwrap());
}

#[test]
fn hsc_loss_and_gradient_match_f64() {
    let ctx = gpu_or_skip!();
    let mut rng = TestRng::new(61);
    let (n, d) = (7, 5);
    let mut phi = rng.vec(n * d, -2.0, 2.0);
    // Row 0: all zero (v = 0), normal. Row 1: tiny (v ~ 2.5e-8), anomalous. Row 2: large.
    phi[..d].iter_mut().for_each(|x| *x = 0.0);
    phi[d..2 * d].iter_mut().for_each(|x| *x = 1e-4);
    phi[2 * d..3 * d].iter_mut().for_each(|x| *x *= 500.0);
    let labels = [0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0];
    let cpu_loss = |p: &[f64]| -> Vec<f64> {
        let total: f64 = p.chunks(d).zip(&labels).map(|(row, &y)| cpu::hsc(y, cpu::pseudo_huber(row))).sum();
        vec![total / n as f64]
    };
    let x = leaf(&ctx, &[n, d], &phi);
    let y = var(&ctx, &[n], &labels);
    let loss = losses::hsc_loss(&x, &y).unwrap();
    // A sum of 7 terms up to ~1e3 and one of 17.5 from a tiny v: f32 relative precision.
    assert_close("hsc loss", &read(&loss), &cpu_loss(&phi), 1e-5, 1e-5);
    loss.backward().unwrap();
    let g = x.grad().unwrap().to_vec().unwrap();
    let want = numeric_vjp(cpu_loss, &phi, &[1.0], 1e-7);
    // Central differences with step 1e-7 in f64 (error ~1e-7 relative, larger on the 1e-4 row
    // whose gradient is ~-2e3), against f32 arithmetic.
    assert_close("hsc gradient", &g, &want, 1e-4, 1e-3);
}

#[test]
fn hsc_score_logit_and_eta_match_f64() {
    let ctx = gpu_or_skip!();
    let mut rng = TestRng::new(62);
    let (n, d) = (9, 3);
    let mut phi = rng.vec(n * d, -3.0, 3.0);
    phi[..d].iter_mut().for_each(|x| *x = 1e-3);
    phi[d..2 * d].iter_mut().for_each(|x| *x *= 100.0);
    let est = Objective::Hsc.estimates(&var(&ctx, &[n, d], &phi)).unwrap();
    let v: Vec<f64> = phi.chunks(d).map(cpu::pseudo_huber).collect();
    // s / (sqrt(s + 1) + 1) keeps relative precision at small s (v = 1.5e-6 in row 0).
    assert_close("hsc score", &read(&est.score), &v, 1e-9, 1e-5);
    let eta: Vec<f64> = v.iter().map(|&x| cpu::hsc_eta(x)).collect();
    assert_close("hsc eta", &read(&est.eta), &eta, 1e-7, 1e-5);
    // z = v + ln(1 - e^-v): absolute f32 error of the sum of terms up to |ln v| ~ 13 and v ~ 300.
    let z: Vec<f64> = v.iter().map(|&x| cpu::hsc_logit(x)).collect();
    assert_close("hsc logit", &read(&est.logit), &z, 1e-5, 1e-5);
    assert!(Objective::Hsc.supervised());
}

#[test]
fn logistic_loss_matches_f64_including_extreme_logits() {
    let ctx = gpu_or_skip!();
    let mut rng = TestRng::new(63);
    let mut z = rng.vec(10, -4.0, 4.0);
    z[0] = 1e4;
    z[1] = -1e4;
    z[2] = 100.0;
    z[3] = -100.0;
    let labels = [1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0];
    let cpu_loss = |zz: &[f64]| -> Vec<f64> {
        vec![zz.iter().zip(&labels).map(|(&z, &y)| cpu::logistic(y, z)).sum::<f64>() / zz.len() as f64]
    };
    // The scalar head's [N, 1] output.
    let x = leaf(&ctx, &[10, 1], &z);
    let loss = losses::logistic_loss(&x, &var(&ctx, &[10], &labels)).unwrap();
    let got = read(&loss);
    assert_finite("logistic loss", &got);
    // Two of the terms are 100 (z = 100 with y = 0, z = -100 with y = 1): f32 relative.
    assert_close("logistic loss", &got, &cpu_loss(&z), 1e-6, 1e-6);
    loss.backward().unwrap();
    let g = x.grad().unwrap().to_vec().unwrap();
    assert_finite("logistic gradient", &g);
    // d/dz = (sigmoid(z) - y) / N, exactly; against f32 sigmoid.
    let want: Vec<f64> = z.iter().zip(&labels).map(|(&z, &y)| (cpu::sigmoid(z) - y) / 10.0).collect();
    assert_close("logistic gradient", &g, &want, 1e-7, 1e-5);
    let est = Objective::Logistic.estimates(&x).unwrap();
    assert_close("logistic score", &read(&est.score), &z, 0.0, 0.0);
    assert_close("logistic logit", &read(&est.logit), &z, 0.0, 0.0);
    let eta: Vec<f64> = z.iter().map(|&v| cpu::sigmoid(v)).collect();
    assert_close("logistic eta", &read(&est.eta), &eta, 1e-7, 1e-6);
}

#[test]
fn svdd_objective_matches_f64() {
    let ctx = gpu_or_skip!();
    let mut rng = TestRng::new(64);
    let (n, d) = (6, 4);
    let phi = rng.vec(n * d, -1.0, 1.0);
    let c = rng.vec(d, -0.5, 0.5);
    let obj = Objective::Svdd { centre: var(&ctx, &[d], &c) };
    assert!(!obj.supervised());
    let out = var(&ctx, &[n, d], &phi);
    let dist: Vec<f64> = phi.chunks(d).map(|r| cpu::svdd(r, &c)).collect();
    let est = obj.estimates(&out).unwrap();
    assert_close("svdd score", &read(&est.score), &dist, 1e-6, 1e-5);
    assert_close("svdd logit", &read(&est.logit), &dist, 1e-6, 1e-5);
    let eta: Vec<f64> = dist.iter().map(|&x| cpu::sigmoid(x)).collect();
    assert_close("svdd eta", &read(&est.eta), &eta, 1e-6, 1e-5);
    let mean = dist.iter().sum::<f64>() / n as f64;
    assert_close("svdd loss", &read(&obj.loss(&out, None).unwrap()), &[mean], 1e-6, 1e-5);
}

#[test]
fn fcdd_and_pixel_logistic_losses_match_f64() {
    let ctx = gpu_or_skip!();
    let mut rng = TestRng::new(65);
    let (n, h, w) = (3, 4, 5);
    let phi = rng.vec(n * h * w, -3.0, 3.0);
    let labels = [0.0, 1.0, 1.0];
    let a: Vec<f64> = phi.iter().map(|&x| (x * x + 1.0).sqrt() - 1.0).collect();
    let out = var(&ctx, &[n, 1, h, w], &phi);
    assert_close("pseudo-Huber map", &read(&losses::pseudo_huber_map(&out).unwrap()), &a, 1e-7, 1e-5);
    let v: Vec<f64> = a.chunks(h * w).map(|c| c.iter().sum::<f64>() / (h * w) as f64).collect();
    assert_close("fcdd v", &read(&losses::fcdd_v(&out).unwrap()), &v, 1e-7, 1e-5);
    let want = v.iter().zip(&labels).map(|(&v, &y)| cpu::hsc(y, v)).sum::<f64>() / n as f64;
    let got = read(&losses::fcdd_loss(&out, &var(&ctx, &[n], &labels)).unwrap());
    assert_close("fcdd loss", &got, &[want], 1e-6, 1e-5);

    // Per-pixel logistic loss against a pixel label map, with saturated logits in it.
    let mut z = rng.vec(n * h * w, -5.0, 5.0);
    z[0] = 300.0;
    z[1] = -300.0;
    let y: Vec<f64> = (0..n * h * w).map(|i| ((i * 7) % 3 == 0) as u8 as f64).collect();
    let want = z.iter().zip(&y).map(|(&z, &y)| cpu::logistic(y, z)).sum::<f64>() / z.len() as f64;
    let got = read(&losses::pixel_logistic_loss(&var(&ctx, &[n, 1, h, w], &z), &var(&ctx, &[n, 1, h, w], &y)).unwrap());
    assert_finite("pixel logistic", &got);
    assert_close("pixel logistic loss", &got, &[want], 1e-5, 1e-5);
}

#[test]
fn losses_reject_mismatched_labels_naming_the_shapes() {
    let ctx = gpu_or_skip!();
    let phi = var(&ctx, &[4, 3], &[0.5; 12]);
    let err = losses::hsc_loss(&phi, &var(&ctx, &[3], &[0.0; 3])).unwrap_err().to_string();
    assert!(err.contains("[3]") && err.contains("[4]"), "{err}");
    let err = Objective::Logistic.loss(&var(&ctx, &[4, 2], &[0.0; 8]), Some(&var(&ctx, &[4], &[0.0; 4])));
    let err = err.unwrap_err().to_string();
    assert!(err.contains("[4, 2]"), "{err}");
    let err = Objective::Hsc.loss(&phi, None).unwrap_err().to_string();
    assert!(err.contains("HSC") && err.contains("labels"), "{err}");
}
