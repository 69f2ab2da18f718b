//! Adam and SGD over named GPU parameters: several steps against the f64 reference equations
//! (`oddity_kernels::optim::cpu`), frozen and gradient-less parameters, `zero_grad`, the
//! learning-rate schedule hook, and the optimizer state round trip (in memory and through a
//! checkpoint file).

mod common;

use oddity::autograd::Var;
use oddity::checkpoint::Checkpoint;
use oddity::kernels::gpu_or_skip;
use oddity::kernels::optim::{cpu, AdamStep, SgdStep};
use oddity::kernels::testing::{assert_close, to_f32, TestRng};
use oddity::kernels::{Context, Tensor};
use oddity::optim::{restore_state, save_state, Adam, AdamConfig, MultiStepLr, Optimizer, Sgd, SgdConfig};

/// Shapes that do not fill a 64-wide workgroup and are not multiples of each other.
const SHAPES: [&[usize]; 3] = [&[7, 5], &[13], &[3, 1, 3]];
const STEPS: u32 = 6;

// f32 updates against f64 equations over six steps: each step rounds param, m, v (or the
// momentum buffer) once and the Adam ratio m / (sqrt(v) + eps) to a few ulp; with lr <= 3e-2
// and |param| < 2 the accumulated error stays below 1e-6 absolute + 1e-6 relative, while a
// wrong bias correction, decay or momentum term moves parameters by ~1e-3 or more.
const ATOL: f64 = 1e-6;
const RTOL: f64 = 1e-6;

struct Setup {
    params: Vec<(String, Var)>,
    /// Host copies of the initial values, as f64.
    host: Vec<Vec<f64>>,
}

fn setup(ctx: &Context, seed: u64) -> Setup {
    let mut rng = TestRng::new(seed);
    let mut params = Vec::new();
    let mut host = Vec::new();
    for (i, shape) in SHAPES.iter().enumerate() {
        let n: usize = shape.iter().product();
        let v = rng.vec(n, -1.0, 1.0);
        params.push((format!("layer{i}.weight"), Var::leaf(Tensor::from_slice(ctx, shape, &to_f32(&v)).unwrap())));
        host.push(v);
    }
    Setup { params, host }
}

/// The gradients of step `step` (1-based): loss = sum(w * c) gives dloss/dw = c exactly, so the
/// GPU and the reference see the same values. Parameter 1 gets no gradient on steps 3 and 5 (it
/// did not take part in the loss), so its own step count lags behind the optimizer's.
fn step_grads(rng: &mut TestRng, step: u32) -> Vec<Option<Vec<f64>>> {
    SHAPES
        .iter()
        .enumerate()
        .map(|(i, shape)| {
            let n: usize = shape.iter().product();
            // Magnitudes spread over 1e-2..10 so decay dominates some elements and not others.
            let c: Vec<f64> =
                rng.vec(n, -1.0, 1.0).iter().enumerate().map(|(j, x)| x * [1.0, 1e-2, 10.0][j % 3]).collect();
            (!(i == 1 && (step == 3 || step == 5))).then_some(c)
        })
        .collect()
}

/// Runs the backward of sum(w * c) for every parameter that gets a gradient this step.
fn backward(ctx: &Context, params: &[(String, Var)], grads: &[Option<Vec<f64>>]) {
    for ((_, w), g) in params.iter().zip(grads) {
        let Some(g) = g else { continue };
        let c = Var::constant(Tensor::from_slice(ctx, w.shape(), &to_f32(g)).unwrap());
        let y = w.mul(&c).unwrap();
        y.backward_with(&Tensor::from_slice(ctx, w.shape(), &vec![1.0; g.len()]).unwrap()).unwrap();
    }
}

#[test]
fn adam_matches_reference_equations_over_six_steps() {
    let ctx = gpu_or_skip!();
    let configs = [
        AdamConfig { lr: 1e-2, ..Default::default() },
        AdamConfig { lr: 3e-2, betas: (0.8, 0.99), eps: 1e-4, weight_decay: 0.05 },
    ];
    for (k, cfg) in configs.into_iter().enumerate() {
        let Setup { params, mut host } = setup(&ctx, 100 + k as u64);
        let mut opt = Adam::new(params.clone(), cfg).unwrap();
        let mut m: Vec<Vec<f64>> = host.iter().map(|p| vec![0.0; p.len()]).collect();
        let mut v = m.clone();
        let mut counts = [0u32; 3];
        let mut rng = TestRng::new(200 + k as u64);
        for step in 1..=STEPS {
            let grads = step_grads(&mut rng, step);
            opt.zero_grad();
            backward(&ctx, &params, &grads);
            opt.step().unwrap();
            for i in 0..3 {
                let Some(g) = &grads[i] else { continue };
                counts[i] += 1;
                let ref_cfg = AdamStep {
                    lr: cfg.lr,
                    beta1: cfg.betas.0,
                    beta2: cfg.betas.1,
                    eps: cfg.eps,
                    weight_decay: cfg.weight_decay,
                    step: counts[i],
                };
                cpu::adam_step(&mut host[i], g, &mut m[i], &mut v[i], ref_cfg);
            }
        }
        assert_eq!(opt.steps(), STEPS as u64);
        for (i, (name, p)) in params.iter().enumerate() {
            assert_close(&format!("adam {cfg:?} {name}"), &p.value().to_vec().unwrap(), &host[i], ATOL, RTOL);
        }
        // Per-parameter step counts as PyTorch keeps them: parameter 1 missed two steps.
        let state = opt.state_tensors().unwrap();
        let count = |name: &str| state.iter().find(|(n, _)| n == name).unwrap().1.item().unwrap();
        assert_eq!(count("optim.adam.steps"), 6.0);
        assert_eq!(count("optim.adam.step.layer0.weight"), 6.0);
        assert_eq!(count("optim.adam.step.layer1.weight"), 4.0);
        let m1 = &state.iter().find(|(n, _)| n == "optim.adam.m.layer1.weight").unwrap().1;
        assert_close("adam m of layer1", &m1.to_vec().unwrap(), &m[1], ATOL, RTOL);
    }
}

#[test]
fn sgd_with_momentum_nesterov_and_weight_decay_matches_reference_over_six_steps() {
    let ctx = gpu_or_skip!();
    let base = SgdConfig { lr: 3e-2, ..Default::default() };
    let configs = [
        SgdConfig { weight_decay: 0.1, ..base },
        SgdConfig { momentum: 0.9, dampening: 0.3, weight_decay: 0.05, ..base },
        SgdConfig { momentum: 0.9, nesterov: true, weight_decay: 0.05, ..base },
    ];
    for (k, cfg) in configs.into_iter().enumerate() {
        let Setup { params, mut host } = setup(&ctx, 300 + k as u64);
        let mut opt = Sgd::new(params.clone(), cfg).unwrap();
        let mut bufs: Vec<Vec<f64>> = host.iter().map(|p| vec![0.0; p.len()]).collect();
        let mut counts = [0u32; 3];
        let mut rng = TestRng::new(400 + k as u64);
        for step in 1..=STEPS {
            let grads = step_grads(&mut rng, step);
            opt.zero_grad();
            backward(&ctx, &params, &grads);
            opt.step().unwrap();
            for i in 0..3 {
                let Some(g) = &grads[i] else { continue };
                counts[i] += 1;
                let ref_cfg = SgdStep {
                    lr: cfg.lr,
                    momentum: cfg.momentum,
                    weight_decay: cfg.weight_decay,
                    dampening: cfg.dampening,
                    nesterov: cfg.nesterov,
                    step: counts[i],
                };
                cpu::sgd_step(&mut host[i], g, &mut bufs[i], ref_cfg);
            }
        }
        for (i, (name, p)) in params.iter().enumerate() {
            assert_close(&format!("sgd {cfg:?} {name}"), &p.value().to_vec().unwrap(), &host[i], ATOL, RTOL);
        }
        let state = opt.state_tensors().unwrap();
        let n_buffers = state.iter().filter(|(n, _)| n.starts_with("optim.sgd.momentum_buffer.")).count();
        assert_eq!(n_buffers, if cfg.momentum == 0.0 { 0 } else { 3 }, "{cfg:?}");
    }
}

#[test]
fn frozen_parameters_are_not_updated_and_zero_grad_clears() {
    let ctx = gpu_or_skip!();
    let Setup { params, host } = setup(&ctx, 500);
    let mut rng = TestRng::new(501);
    let grads = step_grads(&mut rng, 1);
    // Gradients first, then freeze layer2: it still holds a gradient, which step() must ignore.
    backward(&ctx, &params, &grads);
    params[2].1.set_requires_grad(false).unwrap();
    assert!(params[2].1.grad().is_some());
    let mut adam = Adam::new(params.clone(), AdamConfig { lr: 0.1, ..Default::default() }).unwrap();
    adam.step().unwrap();
    let mut sgd = Sgd::new(params.clone(), SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() }).unwrap();
    sgd.step().unwrap();
    assert_eq!(params[2].1.value().to_vec().unwrap(), to_f32(&host[2]), "a frozen parameter moved");
    assert_ne!(params[0].1.value().to_vec().unwrap(), to_f32(&host[0]), "a trainable parameter did not move");
    let names: Vec<String> = adam.state_tensors().unwrap().into_iter().map(|(n, _)| n).collect();
    assert!(!names.iter().any(|n| n.ends_with("layer2.weight")), "frozen parameter got state: {names:?}");

    adam.zero_grad();
    assert!(params.iter().all(|(_, p)| p.grad().is_none()), "zero_grad left a gradient");
    // With no gradients a step changes nothing.
    let before: Vec<Vec<f32>> = params.iter().map(|(_, p)| p.value().to_vec().unwrap()).collect();
    adam.step().unwrap();
    sgd.step().unwrap();
    let after: Vec<Vec<f32>> = params.iter().map(|(_, p)| p.value().to_vec().unwrap()).collect();
    assert_eq!(before, after);
}

#[test]
fn schedule_sets_the_optimizer_learning_rate_each_epoch() {
    let ctx = gpu_or_skip!();
    let Setup { params, .. } = setup(&ctx, 600);
    let mut opt = Sgd::new(params, SgdConfig { lr: 0.5, ..Default::default() }).unwrap();
    let sched = MultiStepLr::new(0.1, &[3, 6], 0.1).unwrap();
    for epoch in 0..8 {
        let lr = sched.apply(&mut opt, epoch).unwrap();
        assert_eq!(opt.lr(), lr as f32);
    }
    assert_eq!(opt.lr(), 0.1f32 * 0.1 * 0.1);
    assert!(opt.set_lr(f32::NAN).unwrap_err().to_string().contains("NaN"));
}

/// Steps 1..=3 with `a`, copies its state into `b` (over copies of the parameters), then runs
/// steps 4..=6 on both: the parameters must stay bit-identical.
fn round_trip<O: Optimizer>(ctx: &Context, make: impl Fn(Vec<(String, Var)>) -> O, via_file: Option<&str>) {
    let Setup { params: pa, .. } = setup(ctx, 700);
    let mut a = make(pa.clone());
    let mut rng = TestRng::new(701);
    let all_grads: Vec<_> = (1..=STEPS).map(|s| step_grads(&mut rng, s)).collect();
    for grads in &all_grads[..3] {
        a.zero_grad();
        backward(ctx, &pa, grads);
        a.step().unwrap();
    }
    let pb: Vec<(String, Var)> =
        pa.iter().map(|(n, p)| (n.clone(), Var::leaf(p.value().duplicate().unwrap()))).collect();
    let mut b = make(pb.clone());
    match via_file {
        None => b.load_state(&a.state_tensors().unwrap()).unwrap(),
        Some(name) => {
            let mut ckpt = Checkpoint::new("test", 0, serde_json::json!({}));
            save_state(&a, &mut ckpt).unwrap();
            let path = common::scratch_dir(name).join("opt.safetensors");
            ckpt.save(&path).unwrap();
            restore_state(&mut b, &Checkpoint::load(&path).unwrap()).unwrap();
        }
    }
    assert_eq!(b.steps(), 3);
    for grads in &all_grads[3..] {
        for (o, p) in [(&mut a, &pa), (&mut b, &pb)] {
            o.zero_grad();
            backward(ctx, p, grads);
            o.step().unwrap();
        }
    }
    for ((name, x), (_, y)) in pa.iter().zip(&pb) {
        assert_eq!(x.value().to_vec().unwrap(), y.value().to_vec().unwrap(), "{name} differs after restore");
    }
}

#[test]
fn optimizer_state_round_trip_gives_identical_steps() {
    let ctx = gpu_or_skip!();
    let adam = |p| Adam::new(p, AdamConfig { lr: 2e-2, weight_decay: 0.01, ..Default::default() }).unwrap();
    let sgd = |p| Sgd::new(p, SgdConfig { lr: 2e-2, momentum: 0.9, nesterov: true, ..Default::default() }).unwrap();
    round_trip(&ctx, adam, None);
    round_trip(&ctx, sgd, None);
    round_trip(&ctx, adam, Some("optim_round_trip_adam"));
    round_trip(&ctx, sgd, Some("optim_round_trip_sgd"));
}

#[test]
fn bad_state_and_bad_hyperparameters_are_named_errors() {
    let ctx = gpu_or_skip!();
    let Setup { params, .. } = setup(&ctx, 800);
    let mut opt = Adam::new(params.clone(), AdamConfig::default()).unwrap();
    let wrong = Tensor::zeros(&ctx, &[2, 2]).unwrap();
    let one = Tensor::from_slice(&ctx, &[1], &[1.0]).unwrap();
    let err = opt
        .load_state(&[
            ("optim.adam.m.layer0.weight".into(), wrong.clone()),
            ("optim.adam.v.layer0.weight".into(), wrong.clone()),
            ("optim.adam.step.layer0.weight".into(), one.clone()),
        ])
        .unwrap_err()
        .to_string();
    assert!(err.contains("optim.adam.m.layer0.weight") && err.contains("[7, 5]") && err.contains("[2, 2]"), "{err}");
    let err = opt.load_state(&[("optim.adam.m.nope".into(), wrong.clone())]).unwrap_err().to_string();
    assert!(err.contains("unknown parameter nope"), "{err}");
    let m = Tensor::zeros(&ctx, &[13]).unwrap();
    let err = opt.load_state(&[("optim.adam.m.layer1.weight".into(), m)]).unwrap_err().to_string();
    assert!(err.contains("incomplete") && err.contains("optim.adam.v.layer1.weight"), "{err}");
    let err = opt.load_state(&[("optim.sgd.momentum_buffer.layer0.weight".into(), wrong)]).unwrap_err().to_string();
    assert!(err.contains("optim.sgd.momentum_buffer.layer0.weight"), "{err}");

    let err = Adam::new(params.clone(), AdamConfig { betas: (0.9, 1.0), ..Default::default() }).err().unwrap();
    assert!(err.to_string().contains("beta2"), "{err}");
    let err = Sgd::new(params.clone(), SgdConfig { nesterov: true, ..Default::default() }).err().unwrap();
    assert!(err.to_string().contains("nesterov needs momentum > 0"), "{err}");
    let mut twice = params.clone();
    twice.push(("again".into(), params[0].1.clone()));
    let err = Sgd::new(twice, SgdConfig::default()).err().unwrap();
    assert!(err.to_string().contains("again"), "{err}");
}
