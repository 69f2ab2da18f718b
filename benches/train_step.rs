//! `cargo bench --bench train_step`: images/s of one Deep SVDD training step (forward, loss
//! mean ||z - c||², backward, Adam update) of the thesis's LeNets at batch 128, on whatever
//! adapter is found. Each iteration waits for the GPU, so the time is the step's real time.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use oddity::autograd::Var;
use oddity::kernels::{rng, Context, Tensor};
use oddity::models::lenet;
use oddity::nn::{self, Init, Module, Sequential};
use oddity::optim::{Adam, AdamConfig, Optimizer};

fn bench_net(c: &mut Criterion, ctx: &Context, name: &str, net: Sequential, input: [usize; 4], latent: usize) {
    let batch = input[0];
    let x = Var::constant(rng::normal(ctx, &input, 1, 0, 0.0, 1.0).unwrap());
    let center = Var::constant(Tensor::from_slice(ctx, &[latent], &vec![0.1; latent]).unwrap());
    let mut opt = Adam::new(nn::parameters(&net), AdamConfig { lr: 1e-4, ..Default::default() }).unwrap();
    let mut group = c.benchmark_group("train_step");
    group.throughput(Throughput::Elements(batch as u64));
    group.bench_function(format!("{name}/batch{batch}"), |b| {
        b.iter(|| {
            opt.zero_grad();
            let z = net.forward(&x).unwrap();
            let d = z.sub(&center).unwrap();
            let loss = d.mul(&d).unwrap().sum_axis(1, false).unwrap().mean().unwrap();
            loss.backward().unwrap();
            opt.step().unwrap();
            ctx.wait().unwrap();
        })
    });
    group.finish();
}

fn train_step(c: &mut Criterion) {
    let ctx = Context::new().unwrap_or_else(|e| panic!("{e}"));
    eprintln!("adapter: {}", ctx.adapter_name());
    let fmnist = lenet::fmnist_lenet(&mut Init::new(&ctx, 0)).unwrap();
    bench_net(c, &ctx, "fmnist_lenet", fmnist, [128, 1, 28, 28], 32);
    let cifar = lenet::cifar10_lenet(&mut Init::new(&ctx, 0)).unwrap();
    bench_net(c, &ctx, "cifar10_lenet", cifar, [128, 3, 32, 32], 128);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(std::time::Duration::from_secs(1));
    targets = train_step
}
criterion_main!(benches);
