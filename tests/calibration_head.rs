//! Calibration head training (thesis §3.2.3): only the named parameters change; every frozen one
//! is bit-for-bit what it was, and the logistic loss falls on a separable two-cluster task.

use oddity::autograd::Var;
use oddity::calibration::{train_head, HeadConfig, SampleSet};
use oddity::kernels::testing::TestRng;
use oddity::kernels::{gpu_or_skip, Context};
use oddity::nn::{self, Init, Linear, Module, Relu, Sequential};

fn network(ctx: &Context) -> Sequential {
    let mut init = Init::new(ctx, 4);
    Sequential::new()
        .push("body1", Linear::new(&mut init, 6, 8, true).unwrap())
        .push("act1", Relu)
        .push("body2", Linear::new(&mut init, 8, 5, true).unwrap())
        .push("act2", Relu)
        .push("head", Linear::new(&mut init, 5, 1, true).unwrap())
}

/// Two Gaussian-ish clusters in 6 dimensions, normal around -0.5 and anomalous around +0.5.
fn cluster(rng: &mut TestRng, n: usize, centre: f64) -> Vec<f32> {
    (0..n * 6).map(|_| (centre + rng.uniform(-0.6, 0.6)) as f32).collect()
}

fn bytes(params: &[(String, Var)]) -> Vec<(String, Vec<u32>)> {
    params.iter().map(|(n, p)| (n.clone(), p.value().to_vec().unwrap().iter().map(|v| v.to_bits()).collect())).collect()
}

#[test]
fn head_training_changes_only_the_head() {
    let ctx = gpu_or_skip!();
    let net = network(&ctx);
    let params = nn::parameters(&net);
    // One frozen parameter starts out already frozen: its flag must come back as it was.
    params[1].1.set_requires_grad(false).unwrap();
    let before = bytes(&params);
    let mut rng = TestRng::new(1);
    let (normal, anomalous) = (cluster(&mut rng, 40, -0.5), cluster(&mut rng, 24, 0.5));
    let cfg = HeadConfig { lr: 0.05, steps: 60, batch_size: 16, seed: 3 };
    let losses = train_head(
        &ctx,
        &params,
        &["head.weight", "head.bias"],
        |x: &Var| Ok(net.forward(x)?),
        SampleSet { data: &normal, sample_shape: &[6] },
        SampleSet { data: &anomalous, sample_shape: &[6] },
        cfg,
    )
    .unwrap();
    assert_eq!(losses.len(), 60);
    let early: f32 = losses[..5].iter().sum::<f32>() / 5.0;
    let late: f32 = losses[55..].iter().sum::<f32>() / 5.0;
    println!("head loss: first 5 steps {early:.4}, last 5 steps {late:.4}");
    assert!(late < 0.7 * early, "loss {early} -> {late}");
    for ((name, old), (_, new)) in before.iter().zip(bytes(&params)) {
        if name.starts_with("head.") {
            assert_ne!(old, &new, "{name} was trained and should have changed");
        } else {
            assert_eq!(old, &new, "{name} is frozen and must not change by a single bit");
        }
    }
    let flags: Vec<bool> = params.iter().map(|(_, p)| p.requires_grad()).collect();
    assert_eq!(flags, (0..params.len()).map(|i| i != 1).collect::<Vec<_>>(), "requires_grad flags restored");
}

#[test]
fn head_training_rejects_bad_requests() {
    let ctx = gpu_or_skip!();
    let net = network(&ctx);
    let params = nn::parameters(&net);
    let data = vec![0.0f32; 12];
    let run = |train: &[&str], normal_shape: &[usize], batch_size: usize| {
        train_head(
            &ctx,
            &params,
            train,
            |x: &Var| Ok(net.forward(x)?),
            SampleSet { data: &data, sample_shape: normal_shape },
            SampleSet { data: &data, sample_shape: &[6] },
            HeadConfig { steps: 1, batch_size, ..HeadConfig::default() },
        )
        .unwrap_err()
        .to_string()
    };
    let err = run(&["head.kernel"], &[6], 4);
    assert!(err.contains("head.kernel"), "{err}");
    let err = run(&["head.bias"], &[6], 3);
    assert!(err.contains("even") && err.contains('3'), "{err}");
    let err = run(&["head.bias"], &[4], 4);
    assert!(err.contains("[4]") && err.contains("[6]"), "{err}");
    // Logits of the wrong shape (the features, not a head) are an error naming the shape.
    let err = train_head(
        &ctx,
        &params,
        &["head.bias"],
        |x: &Var| Ok(x.clone()),
        SampleSet { data: &data, sample_shape: &[6] },
        SampleSet { data: &data, sample_shape: &[6] },
        HeadConfig { steps: 1, batch_size: 2, ..HeadConfig::default() },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("[2, 6]"), "{err}");
    assert!(params.iter().all(|(_, p)| p.requires_grad()), "flags restored after an error");
}
