//! Portability: every model trains (forward, loss, backward, Adam step) and infers on a device
//! requested with `wgpu::Limits::default()`, the WebGPU baseline that integrated and mobile GPUs
//! offer (8 storage buffers per stage, 128 MiB per storage binding, 16 KiB workgroup memory,
//! 256 invocations per workgroup, 65535 workgroups per dimension).
//!
//! The LeNets, the Fashion-MNIST/CIFAR-10 autoencoders and the FCDD networks for them run at the
//! thesis sizes; the 224/256-pixel networks (Bergmann autoencoder, U-Net, FCDD on VGG11-BN,
//! ResNet-18) run at 32x32 with the same layer code (their full-size forward passes run on this
//! same baseline device in `tests/models_networks.rs`). Run with `--nocapture` to print the
//! limits, as CI does.

use oddity::autograd::{no_grad, Var};
use oddity::kernels::testing::TestRng;
use oddity::kernels::{gpu_or_skip, Context, Tensor};
use oddity::models::autoencoder::{self, BergmannConfig};
use oddity::models::deep_svdd;
use oddity::models::fcdd;
use oddity::models::losses::{fcdd_loss, logistic_loss, pixel_logistic_loss, Objective};
use oddity::models::resnet::{self, ResNetConfig};
use oddity::models::unet::UNet;
use oddity::nn::{self, Init, Module};
use oddity::optim::{Adam, AdamConfig, Optimizer};
use oddity::train::{build_network, DatasetKind, LossKind};
use oddity::kernels::Result;

#[test]
fn baseline_limits_are_what_the_test_device_has() {
    let ctx = gpu_or_skip!();
    let got = ctx.device().limits();
    let want = wgpu_limits_default();
    println!("baseline-limits device: {}", ctx.adapter_name());
    println!(
        "  storage buffers per stage {}, storage binding {} MiB, workgroup storage {} KiB, invocations per workgroup {}, workgroups per dimension {}",
        got.max_storage_buffers_per_shader_stage,
        got.max_storage_buffer_binding_size >> 20,
        got.max_compute_workgroup_storage_size >> 10,
        got.max_compute_invocations_per_workgroup,
        got.max_compute_workgroups_per_dimension
    );
    assert_eq!(got.max_storage_buffers_per_shader_stage, want.max_storage_buffers_per_shader_stage);
    assert_eq!(got.max_storage_buffer_binding_size, want.max_storage_buffer_binding_size);
    assert_eq!(got.max_compute_workgroup_storage_size, want.max_compute_workgroup_storage_size);
    assert_eq!(got.max_compute_invocations_per_workgroup, want.max_compute_invocations_per_workgroup);
    assert_eq!(got.max_compute_workgroups_per_dimension, want.max_compute_workgroups_per_dimension);
    assert_eq!(got.max_bind_groups, want.max_bind_groups);
}

fn wgpu_limits_default() -> oddity::kernels::wgpu::Limits {
    oddity::kernels::wgpu::Limits::default()
}

fn random(ctx: &Context, shape: &[usize], seed: u64) -> Var {
    let mut rng = TestRng::new(seed);
    let data: Vec<f32> = (0..shape.iter().product()).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
    Var::constant(Tensor::from_slice(ctx, shape, &data).unwrap())
}

/// Labels 0, 1, 0, 1, ... for a batch of `n`.
fn labels(ctx: &Context, n: usize) -> Var {
    Var::constant(Tensor::from_slice(ctx, &[n], &(0..n).map(|i| (i % 2) as f32).collect::<Vec<_>>()).unwrap())
}

/// One Adam step on `loss(net(x))`, then an inference pass in evaluation mode; both must be
/// finite and the step must change the parameters.
fn train_and_infer(name: &str, net: &dyn Module, x: &Var, loss: &dyn Fn(&Var) -> Result<Var>) {
    let params = nn::parameters(net);
    let before: Vec<Vec<f32>> = params.iter().map(|(_, p)| p.value().to_vec().unwrap()).collect();
    let mut adam = Adam::new(params.clone(), AdamConfig::default()).unwrap();
    net.set_training(true);
    let l = loss(&net.forward(x).unwrap()).unwrap();
    l.backward().unwrap();
    adam.step().unwrap();
    let value = l.value().item().unwrap();
    assert!(value.is_finite(), "{name}: training loss {value}");
    let unchanged: Vec<&str> = params
        .iter()
        .zip(&before)
        .filter(|((_, p), b)| p.value().to_vec().unwrap() == **b)
        .map(|((n, _), _)| n.as_str())
        .collect();
    assert!(unchanged.is_empty(), "{name}: the Adam step left {unchanged:?} unchanged");
    net.set_training(false);
    let y = no_grad(|| net.forward(x)).unwrap().value().to_vec().unwrap();
    assert!(y.iter().all(|v| v.is_finite()), "{name}: inference gave a non-finite output");
    println!("baseline limits: {name} trained one step (loss {value:.4}) and inferred {:?}", net.forward(x).map(|v| v.shape().to_vec()).unwrap());
}

#[test]
fn baseline_limits_every_model_trains_and_infers() {
    let ctx = gpu_or_skip!();
    let n = 4;
    // The LeNets of the thesis (§4.2.1) with each loss.
    for data in [DatasetKind::Fmnist, DatasetKind::Cifar10] {
        let (c, s) = if data == DatasetKind::Fmnist { (1, 28) } else { (3, 32) };
        let x = random(&ctx, &[n, c, s, s], 1);
        for loss in [LossKind::Svdd, LossKind::Hsc, LossKind::Logistic] {
            let arch = data.architecture(loss).unwrap().name();
            let net = build_network(&ctx, &arch, 2).unwrap();
            let objective = match loss {
                LossKind::Svdd => {
                    let d = net.forward(&x).unwrap().shape()[1];
                    Objective::Svdd { centre: deep_svdd::centre_var(&ctx, &vec![0.1; d]).unwrap() }
                }
                LossKind::Hsc => Objective::Hsc,
                _ => Objective::Logistic,
            };
            let y = labels(&ctx, n);
            train_and_infer(&arch, &net, &x, &|out| objective.loss(out, Some(&y)));
        }
    }
    let mse = |x: &Var| {
        let x = x.clone();
        move |out: &Var| -> Result<Var> {
            let d = out.sub(&x)?;
            d.mul(&d)?.mean()
        }
    };
    // Reconstruction autoencoders (thesis §4.1.2).
    let x1 = random(&ctx, &[n, 1, 28, 28], 3);
    let ae = autoencoder::fmnist_autoencoder(&mut Init::new(&ctx, 3)).unwrap();
    train_and_infer("fmnist autoencoder", &ae, &x1, &mse(&x1));
    let x3 = random(&ctx, &[n, 3, 32, 32], 4);
    let ae = autoencoder::cifar10_autoencoder(&mut Init::new(&ctx, 4), 3).unwrap();
    train_and_infer("cifar10 autoencoder", &ae, &x3, &mse(&x3));
    // The paper's widths and latent size at 32x32 (narrow test widths make the gradient of the
    // first layers, 20 layers from the loss, too small for one Adam step to move f32 weights).
    let small = BergmannConfig { image_size: 32, ..BergmannConfig::default() };
    let xb = random(&ctx, &[n, 1, 32, 32], 5);
    let ae = autoencoder::bergmann_autoencoder(&mut Init::new(&ctx, 5), &small).unwrap();
    train_and_infer("bergmann autoencoder (32x32)", &ae, &xb, &mse(&xb));
    // U-Net with per-pixel logits (thesis §4.2.1).
    let unet = UNet::new(&mut Init::new(&ctx, 6), &BergmannConfig { in_channels: 3, ..small }).unwrap();
    let mask = Var::constant(Tensor::zeros(&ctx, &[n, 1, 32, 32]).unwrap());
    train_and_infer("u-net (32x32)", &unet, &x3, &|out| pixel_logistic_loss(out, &mask));
    // FCDD (thesis §4.1.3).
    let y = labels(&ctx, n);
    let f = fcdd::fcdd_fmnist(&mut Init::new(&ctx, 7), 1, [28, 28], 128).unwrap();
    train_and_infer("fcdd fmnist", &f, &x1, &|out| fcdd_loss(out, &y));
    let f = fcdd::fcdd_cifar10(&mut Init::new(&ctx, 8), 3, [32, 32], [128, 256]).unwrap();
    train_and_infer("fcdd cifar10", &f, &x3, &|out| fcdd_loss(out, &y));
    let f = fcdd::fcdd_vgg11_bn(&mut Init::new(&ctx, 9), [32, 32]).unwrap();
    train_and_infer("fcdd vgg11-bn (32x32)", &f, &x3, &|out| fcdd_loss(out, &y));
    // ResNet with a scalar head (logistic).
    let cfg = ResNetConfig { in_channels: 3, widths: [4, 6, 8, 8], blocks: [2, 2, 2, 2], outputs: 1, input_size: [32, 32] };
    let r = resnet::resnet(&mut Init::new(&ctx, 10), &cfg).unwrap();
    train_and_infer("resnet-18 layout (32x32)", &r, &x3, &|out| logistic_loss(out, &y));
}
