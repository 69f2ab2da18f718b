//! The embedding API (`oddity::embed`) on the shared test device (WebGPU baseline limits):
//! texture scores agree with the CPU data pipeline, a checkpoint loads onto a host device, and
//! the `embed_heatmap` example's frame puts the heatmap on the defect.

use std::path::PathBuf;

use oddity::autograd::{no_grad, Var};
use oddity::checkpoint::{Checkpoint, HostTensor};
use oddity::data::transforms::{ChannelMode, Normalization, Pipeline};
use oddity::data::ImageTensor;
use oddity::embed::Detector;
use oddity::kernels::gpu_or_skip;
use oddity::kernels::testing::{assert_close, TestRng};
use oddity::kernels::texture::{InputSpec, TextureIo};
use oddity::kernels::{wgpu, Context, Tensor};
use oddity::models::fcdd::{fcdd_cifar10, fcdd_fmnist};
use oddity::nn::{self, Init, Module};
use oddity::train::{DatasetKind, LossKind, Model, StoredConfig, TrainConfig};

#[path = "../examples/embed_heatmap.rs"]
#[allow(dead_code)]
mod example;

fn rgba_texture(ctx: &Context, width: usize, height: usize, bytes: &[u8]) -> wgpu::Texture {
    let t = ctx.device().create_texture(&wgpu::TextureDescriptor {
        label: Some("host image"),
        size: wgpu::Extent3d { width: width as u32, height: height as u32, depth_or_array_layers: 1 },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba8Unorm,
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    });
    ctx.queue().write_texture(
        t.as_image_copy(),
        bytes,
        wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(4 * width as u32), rows_per_image: None },
        t.size(),
    );
    t
}

/// The CPU path: bytes / 255 as the file loader reads them, then the test pipeline (resize,
/// channel mode, z-score).
fn cpu_pipeline(bytes: &[u8], width: usize, height: usize, side: usize, channels: ChannelMode, norm: &Normalization) -> ImageTensor {
    let plane = width * height;
    let mut data = vec![0f32; 3 * plane];
    for i in 0..plane {
        for c in 0..3 {
            data[c * plane + i] = bytes[4 * i + c] as f32 / 255.0;
        }
    }
    let img = ImageTensor::from_vec(data, 3, height, width).unwrap();
    let pipeline = Pipeline::test(side).with_channels(channels).with_normalization(norm.clone());
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    pipeline.apply(img, &mut rng).unwrap()
}

#[test]
fn texture_scores_agree_with_the_cpu_data_pipeline() {
    let ctx = gpu_or_skip!();
    let mut rng = TestRng::new(91);
    // A 37x23 host texture scored by a grayscale 28x28 model and by a colour 32x32 model.
    let (w, h) = (37, 23);
    let bytes: Vec<u8> = (0..w * h * 4).map(|_| (rng.next_u64() >> 56) as u8).collect();
    let texture = rgba_texture(&ctx, w, h, &bytes);
    let io = TextureIo::new(&ctx);
    for (channels, side) in [(1usize, 28usize), (3, 32)] {
        let norm = Normalization { mean: (0..channels).map(|c| 0.45 + 0.02 * c as f32).collect(), std: vec![0.28; channels] };
        let mode = if channels == 1 { ChannelMode::Gray } else { ChannelMode::Keep };
        let cpu = cpu_pipeline(&bytes, w, h, side, mode, &norm);
        let spec = InputSpec { channels, size: [side, side], mean: norm.mean.clone(), std: norm.std.clone() };
        let gpu = io.read(&texture, &spec).unwrap();
        // Both resize with f32 weights (the CPU in two passes), then / 0.28: 5e-5.
        let want: Vec<f64> = cpu.data.iter().map(|&v| v as f64).collect();
        assert_close(&format!("{channels} channels"), &gpu.to_vec().unwrap(), &want, 5e-5, 0.0);

        let mut init = Init::new(&ctx, 5);
        let fcdd = if channels == 1 {
            fcdd_fmnist(&mut init, 1, [side, side], 4).unwrap()
        } else {
            fcdd_cifar10(&mut init, 3, [side, side], [4, 4]).unwrap()
        };
        let detector = Detector::from_fcdd(&ctx, fcdd, norm.mean.clone(), norm.std.clone(), 2.0).unwrap();
        let x = Tensor::from_slice(&ctx, &[1, channels, side, side], &cpu.data).unwrap();
        let from_cpu = detector.score_batch(&x).unwrap();
        let from_texture = detector.score_texture(&texture).unwrap();
        // The same network on inputs that differ by ~1e-5: scores agree to 1e-4 relative.
        let s_cpu: Vec<f64> = from_cpu.scores().unwrap().iter().map(|&v| v as f64).collect();
        assert_close("score", &from_texture.scores.scores().unwrap(), &s_cpu, 1e-6, 1e-4);
        let p_cpu: Vec<f64> = from_cpu.probabilities().unwrap().iter().map(|&v| v as f64).collect();
        assert_close("probability", &from_texture.scores.probabilities().unwrap(), &p_cpu, 1e-6, 1e-4);
        let heat = from_texture.heatmap.expect("FCDD gives a heatmap");
        assert_eq!((heat.width(), heat.height(), heat.format()), (w as u32, h as u32, wgpu::TextureFormat::Rgba8Unorm));
    }
}

#[test]
fn score_batch_names_a_wrong_input_shape() {
    let ctx = gpu_or_skip!();
    let fcdd = fcdd_fmnist(&mut Init::new(&ctx, 1), 1, [28, 28], 4).unwrap();
    let detector = Detector::from_fcdd(&ctx, fcdd, vec![0.5], vec![0.25], 1.75).unwrap();
    let x = Tensor::zeros(&ctx, &[2, 3, 28, 28]).unwrap();
    let err = detector.score_batch(&x).err().expect("a wrong shape is an error").to_string();
    assert!(err.contains("[2, 3, 28, 28]") && err.contains("[batch, 1, 28, 28]"), "{err}");
    let fcdd = fcdd_fmnist(&mut Init::new(&ctx, 1), 1, [28, 28], 4).unwrap();
    let err = Detector::from_fcdd(&ctx, fcdd, vec![0.5, 0.5], vec![0.25], 1.75).err().expect("mismatched statistics").to_string();
    assert!(err.contains("1 channels") && err.contains("[0.5, 0.5]"), "{err}");
}

#[test]
fn load_puts_a_training_checkpoint_on_the_host_device() {
    let ctx = gpu_or_skip!();
    // A checkpoint as `oddity train` writes it, of a fresh logistic LeNet for Fashion-MNIST.
    let norm = Normalization { mean: vec![0.3], std: vec![0.35] };
    let model = Model::new(&ctx, DatasetKind::Fmnist, LossKind::Logistic, 3, norm, &[]).unwrap();
    let stored = StoredConfig { train: TrainConfig::thesis(LossKind::Logistic, 3), epochs_done: 0, run: serde_json::json!({}) };
    let mut ck = Checkpoint::new(model.architecture.clone(), 3, serde_json::to_value(&stored).unwrap());
    for (name, v) in nn::parameters(&model.net) {
        ck.insert(name, HostTensor::new(v.shape().to_vec(), v.value().to_vec().unwrap()).unwrap());
    }
    for (name, t) in nn::buffers(&model.net) {
        ck.insert(name, HostTensor::new(t.shape().to_vec(), t.to_vec().unwrap()).unwrap());
    }
    for (name, t) in model.extra_tensors().unwrap() {
        ck.insert(name, t);
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("embed_load");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    ck.save(&path).unwrap();

    // The host's device and queue (here the test context's).
    let detector = Detector::load(ctx.device(), ctx.queue(), &path).unwrap();
    assert_eq!(detector.input_shape(), [1, 28, 28]);
    assert!(!detector.has_maps());
    let mut rng = TestRng::new(92);
    let x = Tensor::from_slice(&ctx, &[3, 1, 28, 28], &(0..3 * 784).map(|_| rng.uniform(-1.0, 1.0) as f32).collect::<Vec<_>>()).unwrap();
    // The loaded detector's context wraps the same device; move the batch there through the CPU
    // (the test's only way between two contexts).
    let x_host = Tensor::from_slice(detector.context(), &[3, 1, 28, 28], &x.to_vec().unwrap()).unwrap();
    let got = detector.score_batch(&x_host).unwrap();
    model.net.set_training(false);
    let want = no_grad(|| model.objective.estimates(&model.net.forward(&Var::constant(x.clone())).unwrap())).unwrap();
    let want: Vec<f64> = want.eta.value().to_vec().unwrap().iter().map(|&v| v as f64).collect();
    // Same weights, same kernels: equal up to f32 rounding order.
    assert_close("eta", &got.probabilities().unwrap(), &want, 1e-6, 1e-5);
    let texture = rgba_texture(detector.context(), 9, 5, &[200; 9 * 5 * 4]);
    let out = detector.score_texture(&texture).unwrap();
    assert!(out.heatmap.is_none(), "a LeNet has no maps");
    assert_eq!(out.scores.probabilities().unwrap().len(), 1);

    let err = Detector::load(ctx.device(), ctx.queue(), &dir.join("missing.safetensors")).err().expect("missing file").to_string();
    assert!(err.contains("missing.safetensors"), "{err}");
}

/// Mean over the pixels inside (`true`) or outside the frame's defect disk of `f(pixel index)`.
fn mean_in_and_out(frame: &example::Frame, scene: &example::Scene, f: impl Fn(usize) -> f64) -> (f64, f64) {
    let (cu, cv, r) = scene.defect.unwrap();
    let (mut inside, mut outside) = ((0.0, 0usize), (0.0, 0usize));
    for y in 0..frame.height {
        for x in 0..frame.width {
            let (u, v) = ((x as f32 + 0.5) / frame.width as f32, (y as f32 + 0.5) / frame.height as f32);
            let d2 = (u - cu).powi(2) + (v - cv).powi(2);
            let i = y * frame.width + x;
            if d2 < r * r {
                inside = (inside.0 + f(i), inside.1 + 1);
            } else if d2 > (2.0 * r) * (2.0 * r) {
                // Away from the disk's blurred rim.
                outside = (outside.0 + f(i), outside.1 + 1);
            }
        }
    }
    (inside.0 / inside.1 as f64, outside.0 / outside.1 as f64)
}

#[test]
fn embed_heatmap_frame_puts_the_heatmap_on_the_defect() {
    let _ = gpu_or_skip!(); // honours ODDITY_SKIP_GPU_TESTS
    // A device of its own, made as the example's host makes it: the frame checks that it took
    // one submission, which other tests submitting on the shared context would disturb.
    let (device, queue) = example::host_device().unwrap();
    let ctx = Context::from_device(device, queue);
    let seed = 7;
    let start = std::time::Instant::now();
    let (detector, loss) = example::train_builtin(&ctx, seed, 120).unwrap();
    eprintln!("trained the example's FCDD in {:.1} s, last loss {loss:.4}", start.elapsed().as_secs_f64());
    let scene = example::frame_scene(seed);
    let frame = example::render_frame(&detector, &scene, 120, 90).unwrap();
    assert_eq!(frame.overlay.len(), 120 * 90 * 4);

    // Heat = the heatmap's alpha (per-pixel probability); the overlay's change to the image.
    let (alpha_in, alpha_out) = mean_in_and_out(&frame, &scene, |i| frame.heatmap[4 * i + 3] as f64 / 255.0);
    let change = |i: usize| (0..3).map(|c| (frame.overlay[4 * i + c] as f64 - frame.image[4 * i + c] as f64).abs()).sum::<f64>();
    let (change_in, change_out) = mean_in_and_out(&frame, &scene, change);
    eprintln!("alpha on the defect {alpha_in:.3}, elsewhere {alpha_out:.3}; overlay change {change_in:.1} vs {change_out:.1}");
    // The defect must stand out clearly: twice the heat of the background, and a visible overlay.
    assert!(alpha_in > 2.0 * alpha_out && alpha_in > 0.2, "alpha {alpha_in} on the defect vs {alpha_out} elsewhere");
    assert!(change_in > 2.0 * change_out, "overlay change {change_in} on the defect vs {change_out} elsewhere");

    // A clean scene scores lower than the one with the defect.
    let mut clean = scene;
    clean.defect = None;
    let p_clean = example::render_frame(&detector, &clean, 120, 90).unwrap().probability;
    eprintln!("probability with defect {:.3}, clean {p_clean:.3}", frame.probability);
    assert!(frame.probability > p_clean, "defect {} vs clean {p_clean}", frame.probability);
}
