//! A small conv net learns a synthetic two-class image task (horizontal vs vertical stripes
//! under noise) to > 99% held-out accuracy with Adam, and a training step records into one
//! command buffer: nothing is submitted until the loss is read.

use oddity::autograd::{no_grad, Var};
use oddity::kernels::pool2d::Pool2d;
use oddity::kernels::testing::TestRng;
use oddity::kernels::{gpu_or_skip, Context, Tensor};
use oddity::nn::{self, Conv2d, Flatten, Init, Linear, MaxPool2d, Module, Relu, Sequential};
use oddity::optim::{Adam, AdamConfig, Optimizer};

const SIDE: usize = 16;

/// `n` images [n, 1, 16, 16] and targets ±1: stripes of random period and phase, plus noise.
fn stripes(rng: &mut TestRng, n: usize) -> (Vec<f32>, Vec<f32>) {
    let mut images = Vec::with_capacity(n * SIDE * SIDE);
    let mut targets = Vec::with_capacity(n);
    for _ in 0..n {
        let vertical = rng.uniform(0.0, 1.0) < 0.5;
        let period = rng.uniform(3.0, 6.0);
        let phase = rng.uniform(0.0, std::f64::consts::TAU);
        for y in 0..SIDE {
            for x in 0..SIDE {
                let t = if vertical { x } else { y } as f64;
                let v = (std::f64::consts::TAU * t / period + phase).sin() + rng.uniform(-0.5, 0.5);
                images.push(v as f32);
            }
        }
        targets.push(if vertical { 1.0 } else { -1.0 });
    }
    (images, targets)
}

fn network(ctx: &Context) -> Sequential {
    let mut init = Init::new(ctx, 1);
    Sequential::new()
        .push("conv1", Conv2d::new(&mut init, 1, 4, 3, 1, 1, true).unwrap())
        .push("act1", Relu)
        .push("pool1", MaxPool2d(Pool2d::square(2)))
        .push("conv2", Conv2d::new(&mut init, 4, 8, 3, 1, 1, true).unwrap())
        .push("act2", Relu)
        .push("pool2", MaxPool2d(Pool2d::square(2)))
        .push("flatten", Flatten)
        .push("fc", Linear::new(&mut init, 8 * 4 * 4, 1, true).unwrap())
}

/// Logistic loss mean(softplus(-t * z)) for logits z [n, 1] and targets t = ±1.
fn logistic_loss(z: &Var, t: &Var) -> oddity::kernels::Result<Var> {
    z.mul(t)?.neg()?.softplus()?.mean()
}

#[test]
fn conv_net_learns_two_classes_above_99_percent() {
    let ctx = gpu_or_skip!();
    let net = network(&ctx);
    let mut opt = Adam::new(nn::parameters(&net), AdamConfig { lr: 1e-2, ..Default::default() }).unwrap();
    let mut rng = TestRng::new(2024);
    let batch = 32;
    let mut last_loss = f32::NAN;
    for step in 0..200 {
        let (x, t) = stripes(&mut rng, batch);
        let x = Var::constant(Tensor::from_slice(&ctx, &[batch, 1, SIDE, SIDE], &x).unwrap());
        let t = Var::constant(Tensor::from_slice(&ctx, &[batch, 1], &t).unwrap());
        opt.zero_grad();
        let loss = logistic_loss(&net.forward(&x).unwrap(), &t).unwrap();
        loss.backward().unwrap();
        opt.step().unwrap();
        if step % 50 == 49 {
            last_loss = loss.value().item().unwrap();
        }
    }
    net.set_training(false);
    let (x, t) = stripes(&mut TestRng::new(99), 400);
    let xt = Var::constant(Tensor::from_slice(&ctx, &[400, 1, SIDE, SIDE], &x).unwrap());
    let z = no_grad(|| net.forward(&xt)).unwrap().value().to_vec().unwrap();
    let correct = z.iter().zip(&t).filter(|(z, t)| (**z > 0.0) == (**t > 0.0)).count();
    let accuracy = correct as f64 / 400.0;
    assert!(accuracy > 0.99, "held-out accuracy {accuracy}, last training loss {last_loss}");
}

#[test]
fn a_training_step_submits_nothing_until_the_loss_is_read() {
    let ctx = gpu_or_skip!();
    // A private context: the shared test context is used by other tests in parallel.
    let ctx = Context::with_limits(oddity::kernels::wgpu::Limits::default()).unwrap_or(ctx);
    let net = network(&ctx);
    let mut opt = Adam::new(nn::parameters(&net), AdamConfig::default()).unwrap();
    let (x, t) = stripes(&mut TestRng::new(5), 8);
    let x = Var::constant(Tensor::from_slice(&ctx, &[8, 1, SIDE, SIDE], &x).unwrap());
    let t = Var::constant(Tensor::from_slice(&ctx, &[8, 1], &t).unwrap());
    ctx.flush();
    let (submitted, dispatched) = (ctx.submission_count(), ctx.dispatch_count());
    let loss = logistic_loss(&net.forward(&x).unwrap(), &t).unwrap();
    loss.backward().unwrap();
    opt.step().unwrap();
    assert!(ctx.dispatch_count() > dispatched + 20, "forward, backward and update were recorded");
    assert_eq!(ctx.submission_count(), submitted, "no submission inside the step");
    assert!(loss.value().item().unwrap().is_finite());
    assert_eq!(ctx.submission_count(), submitted + 1, "reading the loss submits the step as one command buffer");
}
