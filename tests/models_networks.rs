//! Networks of `oddity::models`: output shapes, parameter names, receptive fields, gradients.
//! The 224x224 and 256x256 networks run one forward pass each; gradients are checked on the same
//! builders at small sizes and widths.

use std::path::PathBuf;

use oddity::autograd::{no_grad, Var};
use oddity::kernels::gaussian_upsample::THESIS_SIGMA;
use oddity::kernels::testing::TestRng;
use oddity::kernels::{gpu_or_skip, Context, Result, Tensor};
use oddity::models::autoencoder::{self, BergmannConfig};
use oddity::models::fcdd::{self, Fcdd, FcddBuilder, ReceptiveField};
use oddity::models::resnet::{self, ResNetConfig};
use oddity::models::unet::UNet;
use oddity::nn::{self, Activation, Init, Module};

fn input(ctx: &Context, shape: &[usize], seed: u64) -> Var {
    let mut rng = TestRng::new(seed);
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
    Var::constant(Tensor::from_slice(ctx, shape, &data).unwrap())
}

fn names_and_shapes(m: &dyn Module) -> Vec<(String, Vec<usize>)> {
    nn::parameters(m).into_iter().map(|(n, v)| (n, v.shape().to_vec())).collect()
}

fn count(m: &dyn Module) -> usize {
    nn::parameters(m).iter().map(|(_, v)| v.value().numel()).sum()
}

/// Tolerances of the sampled gradient checks. The networks' leaky ReLUs and max pools have kinks
/// and thousands of pre-activations, so a step of 1e-2 or 1e-3 crosses some of them: such central
/// differences were measured 3-10% off the autograd values (U-Net, Fashion-MNIST autoencoder),
/// converging to them as eps shrinks (e.g. -7.8488 at eps 1e-4 vs autograd -7.8485), while f32
/// rounding of the forward pass (objective ~10) adds noise ~1e-6 / eps, ~1e-2 at eps 1e-4.
/// So each element is compared at eps 1e-3, 3e-4 and 1e-4 and passes when one of them agrees
/// within ATOL + RTOL * |difference|; a wrong backward is off at every eps by the order of the
/// gradient itself (0.1 .. 10 on the checked elements).
const STEPS: [f32; 3] = [1e-3, 3e-4, 1e-4];
const ATOL: f64 = 1e-2;
const RTOL: f64 = 2e-2;

/// `gradcheck_params` on `per_param` random elements of every parameter (the networks have too
/// many weights to perturb them all), with the step rule of [`STEPS`]: autograd's gradient of
/// `sum(f() * w)` against central differences of the same f32 forward pass.
fn gradcheck_sampled(ctx: &Context, f: &dyn Fn() -> Result<Var>, params: &[(String, Var)], per_param: usize) {
    for (_, p) in params {
        p.zero_grad();
    }
    let out = f().unwrap();
    let mut rng = TestRng::new(99);
    let w: Vec<f32> = (0..out.value().numel()).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
    out.backward_with(&Tensor::from_slice(ctx, out.shape(), &w).unwrap()).unwrap();
    drop(out);
    let objective = || -> f64 {
        let y = no_grad(f).unwrap().value().to_vec().unwrap();
        y.iter().zip(&w).map(|(a, b)| *a as f64 * *b as f64).sum()
    };
    let mut checked = 0;
    for (name, p) in params {
        let original = p.value().to_vec().unwrap();
        let analytic = p.grad().unwrap_or_else(|| panic!("{name} got no gradient")).to_vec().unwrap();
        let mut data = original.clone();
        for _ in 0..per_param.min(original.len()) {
            let j = (rng.uniform(0.0, 1.0) * original.len() as f64) as usize % original.len();
            let got = analytic[j] as f64;
            let mut tried = Vec::new();
            for eps in STEPS {
                data[j] = original[j] + eps;
                p.value().write(&data).unwrap();
                let plus = objective();
                data[j] = original[j] - eps;
                p.value().write(&data).unwrap();
                let minus = objective();
                data[j] = original[j];
                p.value().write(&data).unwrap();
                let numeric = (plus - minus) / (2.0 * eps as f64);
                tried.push(numeric);
                if (got - numeric).abs() <= ATOL + RTOL * numeric.abs() {
                    break;
                }
            }
            let last = *tried.last().unwrap();
            assert!(
                (got - last).abs() <= ATOL + RTOL * last.abs(),
                "{name} {:?} element {j}: autograd {got} vs central differences {tried:?} at steps {STEPS:?}",
                p.shape()
            );
            checked += 1;
        }
    }
    assert!(checked > 0);
}

#[test]
fn lenet_autoencoders_reconstruct_their_input_shape() {
    let ctx = gpu_or_skip!();
    let ae = autoencoder::fmnist_autoencoder(&mut Init::new(&ctx, 1)).unwrap();
    let x = input(&ctx, &[2, 1, 28, 28], 1);
    assert_eq!(ae.encode(&x).unwrap().shape(), &[2, 100, 1, 1]);
    assert_eq!(ae.forward(&x).unwrap().shape(), &[2, 1, 28, 28]);
    assert_eq!(
        names_and_shapes(&ae),
        [
            ("encoder.conv1.weight", vec![8, 1, 5, 5]),
            ("encoder.conv2.weight", vec![4, 8, 5, 5]),
            ("encoder.conv3.weight", vec![100, 4, 7, 7]),
            ("decoder.deconv1.weight", vec![100, 4, 7, 7]),
            ("decoder.deconv2.weight", vec![4, 8, 5, 5]),
            ("decoder.deconv3.weight", vec![8, 1, 5, 5]),
        ]
        .map(|(n, s)| (n.to_string(), s))
    );
    let buffers: Vec<String> = nn::buffers(&ae).into_iter().map(|(n, _)| n).collect();
    assert_eq!(buffers[0], "encoder.bn1.running_mean");
    assert_eq!(buffers.last().unwrap(), "decoder.bn2.running_var");

    for channels in [1, 3] {
        let ae = autoencoder::cifar10_autoencoder(&mut Init::new(&ctx, 2), channels).unwrap();
        let x = input(&ctx, &[2, channels, 32, 32], 2);
        let z = ae.encode(&x).unwrap();
        assert_eq!(z.shape(), &[2, 100, 1, 1]);
        // The first appended convolution outputs 64x8x8 (thesis §4.2).
        let mut h = x.clone();
        for (name, layer) in &ae.encoder.layers {
            h = layer.forward(&h).unwrap();
            if name == "act4" {
                assert_eq!(h.shape(), &[2, 64, 8, 8]);
            }
        }
        assert_eq!(ae.decode(&z).unwrap().shape(), &[2, channels, 32, 32]);
    }
    assert!(autoencoder::cifar10_autoencoder(&mut Init::new(&ctx, 2), 0).err().unwrap().to_string().contains("in_channels"));
}

#[test]
fn fmnist_autoencoder_gradients_match_central_differences() {
    let ctx = gpu_or_skip!();
    let ae = autoencoder::fmnist_autoencoder(&mut Init::new(&ctx, 3)).unwrap();
    let x = input(&ctx, &[2, 1, 28, 28], 3);
    // Batch statistics in the batch norms (training mode): still a function of the parameters.
    gradcheck_sampled(&ctx, &|| ae.forward(&x), &nn::parameters(&ae), 6);
}

#[test]
fn bergmann_autoencoder_256_layer_list_and_shapes() {
    let ctx = gpu_or_skip!();
    let cfg = BergmannConfig::default();
    let specs: Vec<(usize, usize, usize, usize, usize)> =
        cfg.encoder_layers().iter().map(|l| (l.cin, l.cout, l.kernel, l.stride, l.padding)).collect();
    assert_eq!(
        specs,
        [
            (1, 32, 4, 2, 1),
            (32, 32, 4, 2, 1),
            (32, 32, 4, 2, 1),
            (32, 32, 3, 1, 1),
            (32, 64, 4, 2, 1),
            (64, 64, 3, 1, 1),
            (64, 128, 4, 2, 1),
            (128, 64, 3, 1, 1),
            (64, 32, 3, 1, 1),
            (32, 100, 8, 1, 0),
        ]
    );
    let ae = autoencoder::bergmann_autoencoder(&mut Init::new(&ctx, 4), &cfg).unwrap();
    let names = names_and_shapes(&ae);
    assert_eq!(names.len(), 40);
    assert_eq!(names[0], ("encoder.conv1.weight".to_string(), vec![32, 1, 4, 4]));
    assert_eq!(names[19], ("encoder.conv10.bias".to_string(), vec![100]));
    assert_eq!(names[20], ("decoder.deconv1.weight".to_string(), vec![100, 32, 8, 8]));
    assert_eq!(names[39], ("decoder.deconv10.bias".to_string(), vec![1]));
    let x = input(&ctx, &[2, 1, 256, 256], 4);
    let z = no_grad(|| ae.encode(&x)).unwrap();
    assert_eq!(z.shape(), &[2, 100, 1, 1]);
    assert_eq!(no_grad(|| ae.decode(&z)).unwrap().shape(), &[2, 1, 256, 256]);

    let bad = BergmannConfig { image_size: 100, ..cfg };
    assert!(autoencoder::bergmann_autoencoder(&mut Init::new(&ctx, 4), &bad).err().unwrap().to_string().contains("100"));
}

/// The Bergmann / U-Net code at 32x32 with a few channels (bottleneck kernel 1).
fn small_bergmann() -> BergmannConfig {
    BergmannConfig { image_size: 32, in_channels: 1, widths: [2, 3, 4], latent: 3 }
}

#[test]
fn bergmann_autoencoder_small_config_gradients() {
    let ctx = gpu_or_skip!();
    let ae = autoencoder::bergmann_autoencoder(&mut Init::new(&ctx, 5), &small_bergmann()).unwrap();
    let x = input(&ctx, &[2, 1, 32, 32], 5);
    assert_eq!(ae.forward(&x).unwrap().shape(), &[2, 1, 32, 32]);
    gradcheck_sampled(&ctx, &|| ae.forward(&x), &nn::parameters(&ae), 4);
}

#[test]
fn unet_256_outputs_one_logit_per_pixel() {
    let ctx = gpu_or_skip!();
    let net = UNet::new(&mut Init::new(&ctx, 6), &BergmannConfig::default()).unwrap();
    assert_eq!(net.skip_sources(), ["conv1", "conv2", "conv4", "conv6", "conv9"]);
    let names = names_and_shapes(&net);
    // Skip channels widen the decoder inputs: deconv2 takes 32 + 32 (conv9), deconv5 64 + 64
    // (conv6), deconv7 32 + 32 (conv4), deconv9 32 + 32 (conv2), deconv10 32 + 32 (conv1).
    let shape = |n: &str| names.iter().find(|(m, _)| m == n).unwrap().1.clone();
    assert_eq!(shape("decoder.deconv1.weight"), [100, 32, 8, 8]);
    assert_eq!(shape("decoder.deconv2.weight"), [64, 64, 3, 3]);
    assert_eq!(shape("decoder.deconv3.weight"), [64, 128, 3, 3]);
    assert_eq!(shape("decoder.deconv5.weight"), [128, 64, 3, 3]);
    assert_eq!(shape("decoder.deconv7.weight"), [64, 32, 3, 3]);
    assert_eq!(shape("decoder.deconv9.weight"), [64, 32, 4, 4]);
    assert_eq!(shape("decoder.deconv10.weight"), [64, 1, 4, 4]);
    let x = input(&ctx, &[2, 1, 256, 256], 6);
    assert_eq!(no_grad(|| net.forward(&x)).unwrap().shape(), &[2, 1, 256, 256]);
}

#[test]
fn unet_small_config_gradients_flow_through_skips() {
    let ctx = gpu_or_skip!();
    let cfg = BergmannConfig { in_channels: 3, ..small_bergmann() };
    let net = UNet::new(&mut Init::new(&ctx, 7), &cfg).unwrap();
    let x = input(&ctx, &[2, 3, 32, 32], 7);
    assert_eq!(net.forward(&x).unwrap().shape(), &[2, 1, 32, 32]);
    gradcheck_sampled(&ctx, &|| net.forward(&x), &nn::parameters(&net), 4);
}

#[test]
fn receptive_fields_match_hand_computed_values() {
    // Propagation rule by hand: conv k=5 s=1 p=2 from the input: r = 1 + 4 = 5, j = 1,
    // s = 0 + (2 - 2) = 0; pool 2/2: r = 6, j = 2, s = 0.5; conv k=3 s=3 p=1: r = 6 + 2*2 = 10,
    // j = 6, s = 0.5 + (1 - 1) * 2 = 0.5; conv k=4 s=1 p=0: r = 10 + 3*6 = 28, s = 0.5 + 1.5*6 = 9.5.
    let rf = ReceptiveField::INPUT.then(5, 1, 2).then(2, 2, 0).then(3, 3, 1).then(4, 1, 0);
    assert_eq!(rf, ReceptiveField { size: 28, jump: 6, start: 9.5 });

    let ctx = gpu_or_skip!();
    let init = &mut Init::new(&ctx, 8);
    // FCDD_CNN28_W: conv5p2 (5, 1, 0), pool (6, 2, .5), conv5p2 (14, 2, .5), pool (16, 4, 1.5).
    let f = fcdd::fcdd_fmnist(init, 1, [28, 28], 4).unwrap();
    assert_eq!((f.receptive_field, f.output_size), (ReceptiveField { size: 16, jump: 4, start: 1.5 }, [7, 7]));
    // FCDD_CNN32_LW3K: conv3p1 (3, 1, 0), pool (4, 2, .5), conv (8), conv (12), pool (14, 4, 1.5),
    // conv (22, 4, 1.5).
    let c = fcdd::fcdd_cifar10(init, 3, [32, 32], [4, 4]).unwrap();
    assert_eq!((c.receptive_field, c.output_size), (ReceptiveField { size: 22, jump: 4, start: 1.5 }, [8, 8]));
    // VGG11-BN cut: the values FCDD's code hard-codes for FCDD_CNN224_VGG_F (n 28, j 8, r 62, s 3.5).
    let v = fcdd::fcdd_vgg11_bn(init, [224, 224]).unwrap();
    assert_eq!((v.receptive_field, v.output_size), (ReceptiveField { size: 62, jump: 8, start: 3.5 }, [28, 28]));
    let up = v.upsampler(THESIS_SIGMA);
    assert_eq!((up.kernel_size, up.stride, up.offset, up.out), (62, 8, 30 - 3, [224, 224]));
    assert_eq!(up.sigma, 14.0);

    // A layer that does not fit its input is an error naming the layer and sizes.
    let err = FcddBuilder::new(init, 1, [4, 4]).conv("c", 2, 5, 1, 0, false).err().unwrap().to_string();
    assert!(err.contains("c (kernel 5") && err.contains("[4, 4]"), "{err}");
}

#[test]
fn fcdd_networks_output_shapes_and_full_resolution_maps() {
    let ctx = gpu_or_skip!();
    let init = &mut Init::new(&ctx, 9);
    let f = fcdd::fcdd_fmnist(init, 1, [28, 28], 128).unwrap();
    let x = input(&ctx, &[2, 1, 28, 28], 9);
    assert_eq!(f.forward(&x).unwrap().shape(), &[2, 1, 7, 7]);
    assert_eq!(f.full_resolution_map(&x).unwrap().shape(), &[2, 1, 28, 28]);
    let c = fcdd::fcdd_cifar10(init, 3, [32, 32], [128, 256]).unwrap();
    let x = input(&ctx, &[2, 3, 32, 32], 10);
    let map = no_grad(|| c.anomaly_map(&x)).unwrap();
    assert_eq!(map.shape(), &[2, 1, 8, 8]);
    assert!(map.value().to_vec().unwrap().iter().all(|&a| a >= 0.0), "pseudo-Huber maps are non-negative");
    assert_eq!(c.upsample(&map, 5.0).unwrap().shape(), &[2, 1, 32, 32]);
    let err = c.upsample(&input(&ctx, &[2, 1, 7, 7], 0), 5.0).err().unwrap().to_string();
    assert!(err.contains("[2, 1, 7, 7]") && err.contains("8, 8"), "{err}");

    let v = fcdd::fcdd_vgg11_bn(init, [224, 224]).unwrap();
    v.set_training(false);
    let x = input(&ctx, &[1, 3, 224, 224], 11);
    assert_eq!(no_grad(|| v.full_resolution_map(&x)).unwrap().shape(), &[1, 1, 224, 224]);
}

#[test]
fn fcdd_small_network_gradients_through_gaussian_upsampling() {
    let ctx = gpu_or_skip!();
    let f = fcdd::fcdd_cifar10(&mut Init::new(&ctx, 12), 3, [12, 12], [3, 4]).unwrap();
    let x = input(&ctx, &[2, 3, 12, 12], 12);
    assert_eq!(f.full_resolution_map(&x).unwrap().shape(), &[2, 1, 12, 12]);
    gradcheck_sampled(&ctx, &|| f.full_resolution_map(&x), &nn::parameters(&f), 6);
}

fn vgg_names(v: &Fcdd) -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    v.features.visit_parameters("features", &mut |n, t| out.push((n, t.shape().to_vec())));
    v.features.visit_buffers("features", &mut |n, t| out.push((n, t.shape().to_vec())));
    out
}

#[test]
fn vgg11_bn_weights_load_from_torchvision_names() {
    let ctx = gpu_or_skip!();
    let v = fcdd::fcdd_vgg11_bn(&mut Init::new(&ctx, 13), [32, 32]).unwrap();
    let names = vgg_names(&v);
    assert_eq!(names.len(), 6 * 2 + 6 * 4);
    assert_eq!(names[0], ("features.0.weight".to_string(), vec![64, 3, 3, 3]));
    assert!(names.contains(&("features.19.running_var".to_string(), vec![512])));
    assert_eq!(nn::parameters(&v).last().unwrap().0, "conv_final.bias");

    // A file laid out like torchvision's state dict: our tensors get value index + 0.5, plus
    // tensors the network ignores (classifier, a cut layer, num_batches_tracked as I64).
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>, safetensors::Dtype)> = names
        .iter()
        .enumerate()
        .map(|(i, (n, s))| {
            let numel: usize = s.iter().product();
            let bytes = vec![i as f32 + 0.5; numel].iter().flat_map(|v| v.to_le_bytes()).collect();
            (n.clone(), s.clone(), bytes, safetensors::Dtype::F32)
        })
        .collect();
    tensors.push(("features.22.weight".into(), vec![2], vec![0; 8], safetensors::Dtype::F32));
    tensors.push(("classifier.0.bias".into(), vec![3], vec![0; 12], safetensors::Dtype::F32));
    tensors.push(("features.1.num_batches_tracked".into(), vec![], vec![0; 8], safetensors::Dtype::I64));
    let write = |tensors: &[(String, Vec<usize>, Vec<u8>, safetensors::Dtype)], file: &str| -> PathBuf {
        let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
            .iter()
            .map(|(n, s, b, d)| (n.clone(), safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap()))
            .collect();
        let path = std::env::temp_dir().join(format!("oddity-{}-{file}", std::process::id()));
        std::fs::write(&path, safetensors::serialize(views, None).unwrap()).unwrap();
        path
    };
    let good = write(&tensors, "vgg-good.safetensors");
    v.load_torchvision_vgg11_bn(&good).unwrap();
    std::fs::remove_file(&good).unwrap();
    let mut i = 0;
    v.features.visit_parameters("features", &mut |n, t| {
        assert!(t.value().to_vec().unwrap().iter().all(|&x| x == i as f32 + 0.5), "{n}");
        i += 1;
    });
    v.features.visit_buffers("features", &mut |n, t| {
        assert!(t.to_vec().unwrap().iter().all(|&x| x == i as f32 + 0.5), "{n}");
        i += 1;
    });
    // The loaded network still runs.
    v.set_training(false);
    assert_eq!(no_grad(|| v.forward(&input(&ctx, &[1, 3, 32, 32], 13))).unwrap().shape(), &[1, 1, 4, 4]);

    // Missing and misshaped tensors are named, and nothing is written.
    let before = v.conv_final.weight.value().to_vec().unwrap();
    let first = v.features.layers[0].1.as_ref();
    let first_weight = nn::parameters(first)[0].1.value().to_vec().unwrap();
    let mut broken = tensors.clone();
    broken.retain(|(n, ..)| n != "features.5.running_mean");
    broken[0] = ("features.0.weight".into(), vec![64, 1, 3, 3], vec![0; 64 * 9 * 4], safetensors::Dtype::F32);
    let bad = write(&broken, "vgg-bad.safetensors");
    let err = v.load_torchvision_vgg11_bn(&bad).err().unwrap().to_string();
    std::fs::remove_file(&bad).unwrap();
    assert!(err.contains("missing tensor features.5.running_mean [128]"), "{err}");
    assert!(err.contains("features.0.weight has shape [64, 1, 3, 3]") && err.contains("[64, 3, 3, 3]"), "{err}");
    assert_eq!(nn::parameters(first)[0].1.value().to_vec().unwrap(), first_weight);
    assert_eq!(v.conv_final.weight.value().to_vec().unwrap(), before);

    // Freezing the pretrained part (FCDD: the first 15 modules).
    v.freeze_features(fcdd::VGG_FROZEN_LAYERS).unwrap();
    let frozen: Vec<String> = nn::parameters(&v).into_iter().filter(|(_, p)| !p.requires_grad()).map(|(n, _)| n).collect();
    // Convolutions 0, 4, 8, 11 and batch norms 1, 5, 9, 12: weight and bias each.
    assert_eq!(frozen.len(), 16);
    assert_eq!(frozen.last().unwrap(), "features.12.bias");
}

#[test]
fn fcdd_builder_names_are_stable() {
    let ctx = gpu_or_skip!();
    let f = FcddBuilder::new(&mut Init::new(&ctx, 14), 1, [10, 10])
        .conv("conv1", 2, 3, 1, 1, true)
        .unwrap()
        .batch_norm("bn1", 1e-4, true)
        .unwrap()
        .activation("act1", Activation::LeakyRelu(0.01))
        .max_pool("pool1", 2, 2)
        .unwrap()
        .finish(false)
        .unwrap();
    assert_eq!(
        names_and_shapes(&f),
        [
            ("features.conv1.weight", vec![2, 1, 3, 3]),
            ("features.conv1.bias", vec![2]),
            ("features.bn1.weight", vec![2]),
            ("features.bn1.bias", vec![2]),
            ("conv_final.weight", vec![1, 2, 1, 1]),
        ]
        .map(|(n, s)| (n.to_string(), s))
    );
    assert_eq!(f.output_size, [5, 5]);
    // The activation and the 2x2 pool after the batch norm run inside its pass.
    assert_eq!(f.features.layers.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["conv1", "bn1"]);
    let again = FcddBuilder::new(&mut Init::new(&ctx, 14), 1, [10, 10]).conv("conv1", 2, 3, 1, 1, true).unwrap().finish(false).unwrap();
    assert_eq!(
        nn::parameters(&f)[0].1.value().to_vec().unwrap(),
        nn::parameters(&again)[0].1.value().to_vec().unwrap(),
        "same seed, same weights"
    );
}

#[test]
fn resnet18_224_shape_and_names() {
    let ctx = gpu_or_skip!();
    let net = resnet::resnet18(&mut Init::new(&ctx, 15), 10).unwrap();
    let names = names_and_shapes(&net);
    // torchvision's resnet18 has 11,689,512 parameters with a 1000-way head; with 10 outputs:
    // 11,689,512 - 513 * 1000 + 513 * 10.
    assert_eq!(count(&net), 11_689_512 - 513_000 + 5_130);
    assert_eq!(names[0], ("conv1.weight".to_string(), vec![64, 3, 7, 7]));
    let has = |n: &str, s: &[usize]| names.contains(&(n.to_string(), s.to_vec()));
    assert!(has("layer1.0.body.conv1.weight", &[64, 64, 3, 3]));
    assert!(has("layer2.0.body.conv1.weight", &[128, 64, 3, 3]));
    assert!(has("layer2.0.shortcut.0.weight", &[128, 64, 1, 1]));
    assert!(has("layer4.1.body.bn2.bias", &[512]));
    assert!(!names.iter().any(|(n, _)| n.starts_with("layer1.0.shortcut") || n.starts_with("layer2.1.shortcut")));
    assert_eq!(names.last().unwrap(), &("fc.bias".to_string(), vec![10]));
    net.set_training(false);
    let y = no_grad(|| net.forward(&input(&ctx, &[2, 3, 224, 224], 15))).unwrap();
    assert_eq!(y.shape(), &[2, 10]);
    assert!(y.value().to_vec().unwrap().iter().all(|v| v.is_finite()));
}

#[test]
fn resnet_small_config_gradients() {
    let ctx = gpu_or_skip!();
    let cfg = ResNetConfig { in_channels: 2, widths: [2, 3, 3, 4], blocks: [1, 2, 1, 1], outputs: 3, input_size: [32, 32] };
    let net = resnet::resnet(&mut Init::new(&ctx, 16), &cfg).unwrap();
    let x = input(&ctx, &[3, 2, 32, 32], 16);
    assert_eq!(net.forward(&x).unwrap().shape(), &[3, 3]);
    gradcheck_sampled(&ctx, &|| net.forward(&x), &nn::parameters(&net), 3);
    let empty = ResNetConfig { input_size: [0, 32], ..cfg };
    assert!(resnet::resnet(&mut Init::new(&ctx, 16), &empty).err().unwrap().to_string().contains("[0, 32]"));
}
