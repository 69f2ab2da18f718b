//! Layers: a whole-network gradient check, stable parameter names, seeded initialisation,
//! train/eval behaviour, and spectral normalisation.

use oddity::autograd::{gradcheck_params, no_grad, Var};
use oddity::nn::{Activation, LeakyRelu};
use oddity::kernels::gpu_or_skip;
use oddity::kernels::pool2d::Pool2d;
use oddity::kernels::testing::TestRng;
use oddity::kernels::Tensor;
use oddity::models::lenet;
use oddity::nn::{
    self, BatchNorm, Conv2d, ConvTranspose2d, Dropout, Init, Linear, MaxPool2d, Module, Sequential, SpectralLayer,
    SpectralNorm, Tanh,
};

fn input(ctx: &oddity::kernels::Context, shape: &[usize], seed: u64) -> Var {
    let mut rng = TestRng::new(seed);
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
    Var::constant(Tensor::from_slice(ctx, shape, &data).unwrap())
}

#[test]
fn small_conv_net_passes_whole_network_gradcheck() {
    let ctx = gpu_or_skip!();
    let mut init = Init::new(&ctx, 5);
    // conv -> batch norm (batch statistics) -> tanh -> max pool -> transposed conv -> tanh
    // -> spectral-normalised conv. Smooth activations keep central differences meaningful.
    let sn_conv = Conv2d::new(&mut init, 3, 2, 3, 1, 1, true).unwrap();
    let spectral = SpectralNorm::new(&mut init, SpectralLayer::Conv(sn_conv)).unwrap();
    let net = Sequential::new()
        .push("conv1", Conv2d::new(&mut init, 2, 4, 3, 1, 1, true).unwrap())
        .push("bn1", BatchNorm::new(&mut init, 4, true).unwrap())
        .push("act1", Tanh)
        .push("pool1", MaxPool2d(Pool2d::square(2)))
        .push("up1", ConvTranspose2d::new(&mut init, 4, 3, 2, 2, 0, 0, true).unwrap())
        .push("act2", Tanh)
        .push("sn", spectral);
    // Power iteration off during the check, so the forward pass is a fixed function of the
    // parameters (u and v are constants of the gradient, as in PyTorch).
    let sn_eval = |on: bool| net.layers[6].1.set_training(on);
    // One training forward first so u, v have had a power iteration.
    let x = input(&ctx, &[3, 2, 6, 6], 21);
    net.forward(&x).unwrap();
    sn_eval(false);
    let params = nn::parameters(&net);
    // f32 forward, eps 1e-3 on O(1) activations: difference noise ~ 1e-7 * |sum| / 1e-3 ~ 1e-3.
    // A wrong backward shows errors of the order of the gradients themselves (1e-1 .. 1).
    gradcheck_params(&ctx, &|| net.forward(&x), &params, 1e-3, 5e-3, 5e-3).unwrap();
}

/// Fused conv / batch norm + activation against the same layers run separately: outputs and every gradient
/// (input, weight, bias). Both compute the same f32 sums; only where the activation is applied
/// differs, so 1e-6 covers the difference in rounding.
#[test]
fn fused_conv_activations_match_the_separate_layers() {
    let ctx = gpu_or_skip!();
    type Build = fn(&mut Init) -> (Box<dyn Module>, Box<dyn Module>);
    let builds: [(&str, Build); 6] = [
        ("conv2d leaky 0.2", |init| {
            let c = Conv2d::new(init, 3, 5, 3, 1, 1, true).unwrap();
            let plain = Conv2d { weight: c.weight.clone(), bias: c.bias.clone(), params: c.params, activation: None };
            let sep = Sequential::new().push("c", plain).push("a", LeakyRelu(0.2));
            (Box::new(c.with_activation(Activation::LeakyRelu(0.2))), Box::new(sep))
        }),
        ("conv2d relu stride 2", |init| {
            let c = Conv2d::new(init, 3, 7, 3, 2, 0, true).unwrap();
            let plain = Conv2d { weight: c.weight.clone(), bias: c.bias.clone(), params: c.params, activation: None };
            let sep = Sequential::new().push("c", plain).push("a", Activation::Relu);
            (Box::new(c.with_activation(Activation::Relu)), Box::new(sep))
        }),
        ("conv_transpose2d leaky 0.2 stride 2", |init| {
            let c = ConvTranspose2d::new(init, 3, 4, 3, 2, 1, 1, true).unwrap();
            let plain = ConvTranspose2d { weight: c.weight.clone(), bias: c.bias.clone(), params: c.params, activation: None };
            let sep = Sequential::new().push("c", plain).push("a", LeakyRelu(0.2));
            (Box::new(c.with_activation(Activation::LeakyRelu(0.2))), Box::new(sep))
        }),
        // batch norm (training, batch statistics) with the activation in its normalising pass
        ("batch_norm affine leaky 0.2", |init| {
            let sep = Sequential::new().push("b", BatchNorm::new(init, 3, true).unwrap()).push("a", LeakyRelu(0.2));
            (Box::new(BatchNorm::new(init, 3, true).unwrap().with_activation(Activation::LeakyRelu(0.2))), Box::new(sep))
        }),
        ("batch_norm relu", |init| {
            let sep = Sequential::new().push("b", BatchNorm::new(init, 3, false).unwrap()).push("a", Activation::Relu);
            (Box::new(BatchNorm::new(init, 3, false).unwrap().with_activation(Activation::Relu)), Box::new(sep))
        }),
        // tanh has no epilogue: the layer applies it as a separate op.
        ("conv2d tanh", |init| {
            let c = Conv2d::new(init, 3, 2, 1, 1, 0, false).unwrap();
            let plain = Conv2d { weight: c.weight.clone(), bias: c.bias.clone(), params: c.params, activation: None };
            let sep = Sequential::new().push("c", plain).push("a", Tanh);
            (Box::new(c.with_activation(Activation::Tanh)), Box::new(sep))
        }),
    ];
    for (what, build) in builds {
        let mut init = Init::new(&ctx, 9);
        let (fused, separate) = build(&mut init);
        let run = |net: &dyn Module| {
            let x = Var::leaf(input(&ctx, &[2, 3, 7, 9], 4).value().clone());
            let y = net.forward(&x).unwrap();
            let gy = input(&ctx, y.shape(), 5);
            y.backward_with(gy.value()).unwrap();
            let mut got = vec![y.value().to_vec().unwrap(), x.grad().unwrap().to_vec().unwrap()];
            for (_, p) in nn::parameters(net) {
                got.push(p.grad().unwrap().to_vec().unwrap());
                p.zero_grad();
            }
            got
        };
        let (a, b) = (run(fused.as_ref()), run(separate.as_ref()));
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (u, v)) in a.iter().zip(&b).enumerate() {
            assert_eq!(u.len(), v.len(), "{what} #{i}");
            for (j, (p, q)) in u.iter().zip(v).enumerate() {
                assert!((p - q).abs() <= 1e-6 + 1e-6 * q.abs(), "{what}: output/gradient #{i} element {j}: fused {p} vs separate {q}");
            }
        }
        // Some outputs on each side of zero, so both branches of the activation were checked.
        let y = &a[0];
        assert!(y.iter().any(|v| *v > 0.0) && y.iter().any(|v| *v < 0.0 || what.contains("relu")), "{what}");
    }
}

/// The fused layers against central differences. A difference step that carries a
/// pre-activation across leaky ReLU's kink would fail any correct backward, so the initialisation
/// seed is the first whose pre-activations all keep 1e-2 away from zero (the step moves them
/// by at most ~1e-3 * the few inputs they sum), and the test asserts that margin.
#[test]
fn fused_conv_activations_pass_gradcheck() {
    let ctx = gpu_or_skip!();
    let x = input(&ctx, &[2, 2, 4, 4], 8);
    let build = |seed: u64| {
        let mut init = Init::new(&ctx, seed);
        let conv = Conv2d::new(&mut init, 2, 3, 3, 1, 1, true).unwrap();
        let up = ConvTranspose2d::new(&mut init, 3, 2, 2, 2, 0, 0, true).unwrap();
        // Pre-activations of both layers, from the unfused layers on the same parameters.
        let plain_conv = Conv2d { weight: conv.weight.clone(), bias: conv.bias.clone(), params: conv.params, activation: None };
        let z1 = plain_conv.forward(&x).unwrap();
        let plain_up = ConvTranspose2d { weight: up.weight.clone(), bias: up.bias.clone(), params: up.params, activation: None };
        let z2 = plain_up.forward(&z1.leaky_relu(0.2).unwrap()).unwrap();
        let margin = [z1, z2].iter().flat_map(|z| z.value().to_vec().unwrap()).fold(f32::MAX, |m, v| m.min(v.abs()));
        let net = Sequential::new()
            .push("conv", conv.with_activation(Activation::LeakyRelu(0.2)))
            .push("up", up.with_activation(Activation::LeakyRelu(0.1)));
        (net, margin)
    };
    let (net, margin) = (0..64).map(build).find(|(_, m)| *m > 1e-2).expect("a seed with every pre-activation 1e-2 from zero");
    assert!(margin > 1e-2);
    let params = nn::parameters(&net);
    // As the whole-network check above: eps 1e-3, tolerance 5e-3 over f32 difference noise ~1e-3.
    gradcheck_params(&ctx, &|| net.forward(&x), &params, 1e-3, 5e-3, 5e-3).unwrap();
}

/// Batch norm + activation + 2x2 max pool as one fused layer against the batch norm (activation
/// fused as before) followed by a separate max pool, on the same parameters: outputs, running
/// statistics, and the gradients of x, gamma and beta, in training and in eval mode. Both compute
/// the same f32 statistics and sums, in other orders for the backward's: 1e-5.
#[test]
fn batch_norm_with_max_pool_matches_the_separate_layers() {
    let ctx = gpu_or_skip!();
    let cases: [(&str, bool, Option<Activation>, [usize; 4]); 6] = [
        ("lenet: no affine, leaky 0.01", false, Some(Activation::LeakyRelu(0.01)), [4, 3, 6, 10]),
        ("affine, relu", true, Some(Activation::Relu), [3, 2, 14, 14]),
        ("affine, no activation", true, None, [2, 5, 4, 8]),
        // No epilogue for tanh and odd planes: the layer falls back to the separate ops.
        ("affine, tanh (separate ops)", true, Some(Activation::Tanh), [2, 3, 4, 4]),
        ("odd plane (separate ops)", true, Some(Activation::LeakyRelu(0.2)), [2, 3, 5, 7]),
        ("affine, leaky 0.2", true, Some(Activation::LeakyRelu(0.2)), [5, 2, 2, 2]),
    ];
    for (what, affine, act, shape) in cases {
        let build = || {
            let mut init = Init::new(&ctx, 3);
            let mut bn = BatchNorm::new(&mut init, shape[1], affine).unwrap();
            if let Some((g, b)) = &bn.affine {
                // gamma of both signs (a negative one turns the order in a window round), beta off 0
                let c = shape[1];
                g.value().write(&(0..c).map(|i| if i % 2 == 0 { 1.3 } else { -0.7 }).collect::<Vec<_>>()).unwrap();
                b.value().write(&(0..c).map(|i| 0.1 * i as f32 - 0.2).collect::<Vec<_>>()).unwrap();
            }
            if let Some(a) = act {
                bn = bn.with_activation(a);
            }
            bn
        };
        let fused = build().with_max_pool(Pool2d::square(2));
        let separate = Sequential::new().push("bn", build()).push("pool", MaxPool2d(Pool2d::square(2)));
        for training in [true, false] {
            fused.set_training(training);
            separate.set_training(training);
            let run = |net: &dyn Module| {
                let x = Var::leaf(input(&ctx, &shape, 11).value().clone());
                let y = net.forward(&x).unwrap();
                let gy = input(&ctx, y.shape(), 12);
                y.backward_with(gy.value()).unwrap();
                let mut got = vec![y.value().to_vec().unwrap(), x.grad().unwrap().to_vec().unwrap()];
                for (_, p) in nn::parameters(net) {
                    got.push(p.grad().unwrap().to_vec().unwrap());
                    p.zero_grad();
                }
                for (_, b) in nn::buffers(net) {
                    got.push(b.to_vec().unwrap());
                }
                got
            };
            let (a, b) = (run(&fused), run(&separate));
            assert_eq!(a.len(), b.len(), "{what}");
            for (i, (u, v)) in a.iter().zip(&b).enumerate() {
                assert_eq!(u.len(), v.len(), "{what} #{i}");
                for (j, (p, q)) in u.iter().zip(v).enumerate() {
                    assert!(
                        (p - q).abs() <= 1e-5 + 1e-5 * q.abs(),
                        "{what} training {training}: output/gradient/buffer #{i} element {j}: fused {p} vs separate {q}"
                    );
                }
            }
        }
    }
}

/// The fused batch norm + leaky ReLU + pool against central differences of its parameters and
/// (through a convolution in front) its input. Pre-activations keep 1e-2 from the kink and each
/// window's top two values 1e-2 apart for the chosen seed (asserted), so no difference step of
/// 1e-3 changes a window's argmax or crosses the kink.
#[test]
fn batch_norm_with_max_pool_passes_gradcheck() {
    let ctx = gpu_or_skip!();
    let x = input(&ctx, &[3, 2, 4, 6], 8);
    let build = |seed: u64| {
        let mut init = Init::new(&ctx, seed);
        let conv = Conv2d::new(&mut init, 2, 3, 3, 1, 1, true).unwrap();
        let bn = BatchNorm::new(&mut init, 3, true).unwrap().with_activation(Activation::LeakyRelu(0.1));
        if let Some((g, b)) = &bn.affine {
            g.value().write(&[1.2, -0.8, 0.6]).unwrap();
            b.value().write(&[0.3, -0.2, 0.1]).unwrap();
        }
        // The batch norm's activated outputs from the separate layers, for the margins.
        let plain = Conv2d { weight: conv.weight.clone(), bias: conv.bias.clone(), params: conv.params, activation: None };
        let z = plain.forward(&x).unwrap();
        let a = BatchNorm::new(&mut Init::new(&ctx, 0), 3, true).unwrap();
        if let (Some((g, b)), Some((g0, b0))) = (&a.affine, &bn.affine) {
            g.value().write(&g0.value().to_vec().unwrap()).unwrap();
            b.value().write(&b0.value().to_vec().unwrap()).unwrap();
        }
        let pre = a.forward(&z).unwrap().value().to_vec().unwrap();
        let kink = pre.iter().fold(f32::MAX, |m, v| m.min(v.abs()));
        let act: Vec<f32> = pre.iter().map(|&v| if v > 0.0 { v } else { 0.1 * v }).collect();
        let mut gap = f32::MAX;
        for plane in 0..9 {
            for (oh, ow) in (0..2).flat_map(|r| (0..3).map(move |c| (r, c))) {
                let mut w: Vec<f32> = (0..4).map(|s| act[plane * 24 + (2 * oh + s / 2) * 6 + 2 * ow + s % 2]).collect();
                w.sort_by(|p, q| q.total_cmp(p));
                gap = gap.min(w[0] - w[1]);
            }
        }
        let net = Sequential::new().push("conv", conv).push("bn", bn.with_max_pool(Pool2d::square(2)));
        (net, kink.min(gap))
    };
    let (net, margin) = (0..64).map(build).find(|(_, m)| *m > 1e-2).expect("a seed with 1e-2 margins");
    assert!(margin > 1e-2);
    let params = nn::parameters(&net);
    // As the checks above: eps 1e-3, tolerance 5e-3 over f32 difference noise ~1e-3.
    gradcheck_params(&ctx, &|| net.forward(&x), &params, 1e-3, 5e-3, 5e-3).unwrap();
}

#[test]
fn lenet_parameter_and_buffer_names_are_stable() {
    let ctx = gpu_or_skip!();
    let net = lenet::fmnist_lenet(&mut Init::new(&ctx, 0)).unwrap();
    let names: Vec<(String, Vec<usize>)> = nn::parameters(&net).into_iter().map(|(n, v)| (n, v.shape().to_vec())).collect();
    assert_eq!(
        names,
        vec![
            ("conv1.weight".to_string(), vec![8, 1, 5, 5]),
            ("conv2.weight".to_string(), vec![4, 8, 5, 5]),
            ("fc1.weight".to_string(), vec![32, 196]),
        ]
    );
    let buffers: Vec<String> = nn::buffers(&net).into_iter().map(|(n, _)| n).collect();
    assert_eq!(buffers, ["bn1.running_mean", "bn1.running_var", "bn2.running_mean", "bn2.running_var"]);
    let y = net.forward(&input(&ctx, &[3, 1, 28, 28], 1)).unwrap();
    assert_eq!(y.shape(), &[3, 32]);
    let cifar = lenet::cifar10_lenet(&mut Init::new(&ctx, 0)).unwrap();
    assert_eq!(cifar.forward(&input(&ctx, &[2, 3, 32, 32], 2)).unwrap().shape(), &[2, 128]);
}

#[test]
fn initialisation_is_seeded_and_follows_pytorch_bounds() {
    let ctx = gpu_or_skip!();
    let weights = |seed| Linear::new(&mut Init::new(&ctx, seed), 50, 7, true).unwrap().weight.value().to_vec().unwrap();
    assert_eq!(weights(3), weights(3));
    assert_ne!(weights(3), weights(4));
    // PyTorch default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)); with 350 draws the extremes come close.
    let w = weights(3);
    let bound = 1.0 / 50f32.sqrt();
    let max = w.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(max <= bound && max > 0.9 * bound, "max |w| {max}, bound {bound}");
}

#[test]
fn eval_mode_uses_running_statistics_and_disables_dropout() {
    let ctx = gpu_or_skip!();
    let mut init = Init::new(&ctx, 9);
    let bn = BatchNorm::new(&mut init, 2, false).unwrap();
    let x = input(&ctx, &[5, 2, 3, 3], 4);
    let train = bn.forward(&x).unwrap().value().to_vec().unwrap();
    bn.set_training(false);
    let eval = bn.forward(&x).unwrap().value().to_vec().unwrap();
    assert_ne!(train, eval, "eval must use running statistics, not the batch's");
    // Running stats after one update: mean = 0.1 * batch mean, var = 0.9 + 0.1 * unbiased var.
    let rm = bn.running_mean.to_vec().unwrap();
    assert!(rm.iter().all(|m| m.abs() < 0.1), "{rm:?}");

    let drop = Dropout::new(&mut init, 0.5);
    let y = drop.forward(&x).unwrap().value().to_vec().unwrap();
    let zeros = y.iter().filter(|v| **v == 0.0).count();
    assert!(zeros > 10 && zeros < 80, "about half of 90 dropped, got {zeros}");
    drop.set_training(false);
    assert_eq!(drop.forward(&x).unwrap().value().to_vec().unwrap(), x.value().to_vec().unwrap());
}

/// Largest singular value of a row-major [rows, cols] matrix by many CPU power iterations.
fn top_singular_value(w: &[f32], rows: usize, cols: usize) -> f64 {
    let mut v = vec![1.0f64; cols];
    let mut sigma = 0.0;
    for _ in 0..500 {
        let u: Vec<f64> = (0..rows).map(|r| (0..cols).map(|c| w[r * cols + c] as f64 * v[c]).sum()).collect();
        let nu = u.iter().map(|x| x * x).sum::<f64>().sqrt();
        let wt: Vec<f64> = (0..cols).map(|c| (0..rows).map(|r| w[r * cols + c] as f64 * u[r] / nu).sum()).collect();
        sigma = wt.iter().map(|x| x * x).sum::<f64>().sqrt();
        v = wt.iter().map(|x| x / sigma).collect();
    }
    sigma
}

#[test]
fn spectral_norm_converges_to_unit_spectral_norm() {
    let ctx = gpu_or_skip!();
    let mut init = Init::new(&ctx, 17);
    let linear = Linear::new(&mut init, 9, 5, true).unwrap();
    let sn = SpectralNorm::new(&mut init, SpectralLayer::Linear(linear)).unwrap();
    let x = input(&ctx, &[2, 9], 3);
    // One power iteration per training forward; 30 forwards converge on a 5x9 matrix.
    for _ in 0..30 {
        no_grad(|| sn.forward(&x)).unwrap();
    }
    let w = sn.normalized_weight().unwrap().value().to_vec().unwrap();
    let sigma = top_singular_value(&w, 5, 9);
    assert!((sigma - 1.0).abs() < 1e-3, "spectral norm of W/sigma is {sigma}");
    let names: Vec<String> = nn::buffers(&sn).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["weight_u", "weight_v"]);
}
