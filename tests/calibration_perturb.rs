//! Input perturbation (thesis eq. 3.3): every input element moves by exactly eps against the sign
//! of the label-0 loss gradient through the model and its calibration; elements with a zero
//! gradient stay put (sgn(0) = 0, as in ODIN).

use oddity::autograd::{no_grad, Var};
use oddity::calibration::{perturb, Beta, Calibrator, Method, PixelCalibrator, Platt, DEFAULT_EPSILON};
use oddity::kernels::testing::TestRng;
use oddity::kernels::{gpu_or_skip, Context, Tensor};
use oddity::nn::{Init, Linear, Module};

fn sign(v: f32) -> f32 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Checks `y == x - eps * s` bit for bit (one f32 rounding, as the kernel does) for every
/// element, where `s` is the expected sign, and that the change is eps up to that rounding.
fn assert_moved(what: &str, x: &[f32], y: &[f32], expected_sign: &[f32], eps: f32) {
    assert_eq!(x.len(), y.len());
    for (i, ((&xi, &yi), &s)) in x.iter().zip(y).zip(expected_sign).enumerate() {
        let want = xi - eps * s;
        assert_eq!(yi.to_bits(), want.to_bits(), "{what}: element {i}: x {xi}, sign {s}, got {yi}, want {want}");
        // Exactly eps in real arithmetic, up to the one f32 rounding of the result (<= 1 ulp).
        let moved = yi as f64 - xi as f64;
        let half_ulp = (f32::EPSILON as f64) * (yi.abs() as f64).max(f32::MIN_POSITIVE as f64);
        assert!((moved + eps as f64 * s as f64).abs() <= half_ulp, "{what}: element {i} moved {moved}");
    }
}

fn linear_model(ctx: &Context, weight: &[f32], bias: f32) -> Linear {
    let mut init = Init::new(ctx, 3);
    let layer = Linear::new(&mut init, weight.len(), 1, true).unwrap();
    layer.weight.value().write(weight).unwrap();
    layer.bias.as_ref().unwrap().value().write(&[bias]).unwrap();
    for (_, p) in oddity::nn::parameters(&layer) {
        p.set_requires_grad(false).unwrap(); // a frozen, trained model
    }
    layer
}

#[test]
fn every_element_moves_by_eps_against_the_loss_gradient() {
    let ctx = gpu_or_skip!();
    let mut rng = TestRng::new(1);
    // Input 3 is ignored by the model (weight exactly 0): its gradient is exactly 0.
    let weight = [0.5f32, -1.25, 0.75, 0.0, -0.3, 2.0, -0.01];
    let model = linear_model(&ctx, &weight, 0.2);
    let (n, d) = (5, weight.len());
    let x: Vec<f32> = rng.vec(n * d, -2.0, 2.0).iter().map(|&v| v as f32).collect();
    let xt = Tensor::from_slice(&ctx, &[n, d], &x).unwrap();
    // The loss softplus(z_cal) with z_cal = cal(w.x + b): its gradient is σ(z_cal) cal'(z) w, so
    // its sign is sgn(cal'(z)) sgn(w). A Platt slope below 0 flips it; Beta's slope is positive.
    let calibrators = [
        (Calibrator::Platt(Platt::new(2.0, -0.5)), 1.0),
        (Calibrator::Platt(Platt::new(-1.5, 0.5)), -1.0),
        (Calibrator::Beta(Beta::new(0.4, 1.3, 0.1)), 1.0),
    ];
    for (cal, slope_sign) in calibrators {
        let logits = |v: &Var| cal.apply_var(&model.forward(v)?);
        let y = perturb(&xt, logits, DEFAULT_EPSILON).unwrap();
        assert_eq!(y.shape(), &[n, d]);
        let y = y.to_vec().unwrap();
        let expected: Vec<f32> = (0..n * d).map(|i| slope_sign * sign(weight[i % d])).collect();
        assert_moved(&format!("{cal:?}"), &x, &y, &expected, DEFAULT_EPSILON);
        for i in 0..n {
            assert_eq!(y[i * d + 3], x[i * d + 3], "the ignored input stays put");
        }
        // The label-0 loss went down for every sample.
        let loss = |data: &[f32]| -> Vec<f32> {
            let t = Var::constant(Tensor::from_slice(&ctx, &[n, d], data).unwrap());
            no_grad(|| cal.apply_var(&model.forward(&t).unwrap()).unwrap().softplus().unwrap()).value().to_vec().unwrap()
        };
        let (before, after) = (loss(&x), loss(&y));
        assert!(before.iter().zip(&after).all(|(b, a)| a < b), "{cal:?}: {before:?} -> {after:?}");
    }
}

#[test]
fn pixel_maps_move_by_eps_through_per_pixel_calibration() {
    let ctx = gpu_or_skip!();
    let mut rng = TestRng::new(2);
    let (h, w) = (3, 5);
    // The "model" is the identity, so the logit map is the input; per-pixel Platt slopes of both
    // signs and one exact zero decide each pixel's direction.
    let mut cal = PixelCalibrator::identity(Method::Platt, h, w);
    let slopes: Vec<f32> = (0..h * w).map(|i| if i == 7 { 0.0 } else { rng.uniform(-2.0, 2.0) as f32 }).collect();
    cal.params[..h * w].copy_from_slice(&slopes);
    let x: Vec<f32> = rng.vec(2 * h * w, -3.0, 3.0).iter().map(|&v| v as f32).collect();
    let xt = Tensor::from_slice(&ctx, &[2, 1, h, w], &x).unwrap();
    let eps = 0.01;
    let y = perturb(&xt, |v: &Var| cal.apply(v), eps).unwrap().to_vec().unwrap();
    let expected: Vec<f32> = (0..x.len()).map(|i| sign(slopes[i % (h * w)])).collect();
    assert_moved("per-pixel Platt", &x, &y, &expected, eps);
}

#[test]
fn bad_perturbation_requests_are_errors() {
    let ctx = gpu_or_skip!();
    let model = linear_model(&ctx, &[1.0, 2.0], 0.0);
    let xt = Tensor::from_slice(&ctx, &[1, 2], &[0.5, -0.5]).unwrap();
    for eps in [0.0, -1e-3, f32::NAN] {
        let err = perturb(&xt, |v: &Var| Ok(model.forward(v)?), eps).unwrap_err().to_string();
        assert!(err.contains("epsilon"), "{err}");
    }
    let err = no_grad(|| perturb(&xt, |v: &Var| Ok(model.forward(v)?), 1e-3)).unwrap_err().to_string();
    assert!(err.contains("no_grad"), "{err}");
    let other = Tensor::from_slice(&ctx, &[1, 2], &[0.0, 0.0]).unwrap();
    let err = perturb(&xt, |_: &Var| Ok(model.forward(&Var::constant(other.clone()))?), 1e-3).unwrap_err().to_string();
    assert!(err.contains("do not depend on the input"), "{err}");
}
