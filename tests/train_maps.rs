//! The map models of `oddity train` (fcdd, ssim, unet) on a tiny MVTec-layout folder made here:
//! 32x32 grayscale "fabric" (smooth stripes plus noise), anomalies are bright squares with
//! their masks. Each loss trains a few steps through the CLI's library entry and writes pixel
//! AUROC and AUPRO; a checkpoint reloads to the same scores and maps; an interrupted map-model
//! run resumes bit-identically; maps have the input's size and match their CPU formulas; bad
//! `--data` folders and classes give errors naming them.

mod common;

use std::path::{Path, PathBuf};

use oddity::autograd::{no_grad, Var};
use oddity::checkpoint::Checkpoint;
use oddity::data::ImageTensor;
use oddity::kernels::testing::TestRng;
use oddity::kernels::{gpu_or_skip, Context, Tensor};
use oddity::models::losses::cpu;
use oddity::nn::Module;
use oddity::train::{evaluate, load_model, Model};

use common::train_cli as train;

const SIDE: usize = 32;

fn gpu_tests_skipped() -> bool {
    let skip = std::env::var("ODDITY_SKIP_GPU_TESTS").as_deref() == Ok("1");
    if skip {
        eprintln!("skipping GPU test (ODDITY_SKIP_GPU_TESTS=1)");
    }
    skip
}

/// A normal image: stripes of random period and phase plus noise, in [0, 1].
fn fabric(rng: &mut TestRng) -> Vec<f32> {
    let period = rng.uniform(5.0, 8.0);
    let phase = rng.uniform(0.0, std::f64::consts::TAU);
    (0..SIDE * SIDE)
        .map(|i| {
            let y = (i / SIDE) as f64;
            let v = 0.5 + 0.25 * (std::f64::consts::TAU * y / period + phase).sin() + rng.uniform(-0.05, 0.05);
            v as f32
        })
        .collect()
}

fn save_gray(path: &Path, data: Vec<f32>) {
    ImageTensor::from_vec(data, 1, SIDE, SIDE).unwrap().save_png(path).unwrap();
}

/// `<root>/<category>/{train/good, test/good, test/spot, ground_truth/spot}`: `train` normal
/// training images, 6 normal and 6 anomalous test images (a bright 6..10-pixel square).
fn make_mvtec(root: &Path, category: &str, train: usize, seed: u64) {
    let mut rng = TestRng::new(seed);
    let c = root.join(category);
    for d in ["train/good", "test/good", "test/spot", "ground_truth/spot"] {
        std::fs::create_dir_all(c.join(d)).unwrap();
    }
    for i in 0..train {
        save_gray(&c.join(format!("train/good/{i:03}.png")), fabric(&mut rng));
    }
    for i in 0..6 {
        save_gray(&c.join(format!("test/good/{i:03}.png")), fabric(&mut rng));
        let mut img = fabric(&mut rng);
        let side = 6 + (rng.uniform(0.0, 4.0) as usize);
        let (y0, x0) = (rng.uniform(2.0, (SIDE - side - 2) as f64) as usize, rng.uniform(2.0, (SIDE - side - 2) as f64) as usize);
        let mut mask = vec![0u8; SIDE * SIDE];
        for y in y0..y0 + side {
            for x in x0..x0 + side {
                img[y * SIDE + x] = 1.0;
                mask[y * SIDE + x] = 255;
            }
        }
        save_gray(&c.join(format!("test/spot/{i:03}.png")), img);
        image::GrayImage::from_raw(SIDE as u32, SIDE as u32, mask)
            .unwrap()
            .save(c.join(format!("ground_truth/spot/{i:03}_mask.png")))
            .unwrap();
    }
}

/// The tiny data set, made once per test process.
fn tiny_mvtec() -> PathBuf {
    static ONCE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let root = common::scratch_dir("train_maps_data");
        make_mvtec(&root, "fabric", 24, 7);
        root
    })
    .clone()
}

fn tiny_args<'a>(loss: &'a str, data: &'a str, out: &'a str, epochs: &'a str) -> Vec<&'a str> {
    vec![
        "--loss", loss, "--data", data, "--class", "fabric", "--size", "32", "--epochs", epochs, "--batch", "8",
        "--seed", "3", "--out", out, "--readback-every", "2",
    ]
}

fn metrics(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap()
}

#[test]
fn every_map_loss_trains_and_reports_pixel_auroc_and_aupro() {
    if gpu_tests_skipped() || oddity::kernels::testing::gpu().is_none() {
        return;
    }
    let data = tiny_mvtec();
    // FCDD (the slowest: VGG11-BN to 512 channels) trains in the reload test below.
    for (loss, architecture) in [("ssim", "bergmann-ae-1x32"), ("unet", "unet-1x32")] {
        let out = common::scratch_dir(&format!("train_maps_{loss}"));
        let log = train(&tiny_args(loss, data.to_str().unwrap(), out.to_str().unwrap(), "2"))
            .unwrap_or_else(|e| panic!("{loss}: {e}"));
        assert!(log.contains("pixel AUROC"), "{loss}: {log}");
        let m = metrics(&out);
        assert_eq!(m["architecture"], architecture, "{loss}");
        assert_eq!(m["epochs_done"], 2);
        assert_eq!(m["seed"], 3);
        // MVTec-layout defaults (300 epochs, milestones 200 and 250) but for the epochs given.
        assert_eq!(m["config"]["milestones"], serde_json::json!([200, 250]), "{loss}");
        for key in ["auroc", "pixel_auroc", "aupro"] {
            let v = m[key].as_f64().unwrap_or_else(|| panic!("{loss}: no {key} in {m}"));
            assert!((0.0..=1.0).contains(&v), "{loss}: {key} = {v}");
        }
        assert_eq!(m["test_images"], 12);
        assert_eq!(m["test_anomalies"], 6);
        eprintln!("{loss}: AUROC {}, pixel AUROC {}, AUPRO {}", m["auroc"], m["pixel_auroc"], m["aupro"]);
    }
}

#[test]
fn ssim_on_fashion_mnist_uses_the_fmnist_autoencoder_without_pixel_metrics() {
    if gpu_tests_skipped() || oddity::kernels::testing::gpu().is_none() {
        return;
    }
    if !Path::new(oddity::data::FASHION_MNIST_DEFAULT_DIR).is_dir() {
        eprintln!("skipping: no Fashion-MNIST");
        return;
    }
    let out = common::scratch_dir("train_maps_fmnist_ssim");
    let o = out.to_str().unwrap();
    train(&[
        "--loss", "ssim", "--data", "fmnist", "--class", "trouser", "--epochs", "1", "--batch", "32", "--limit-train",
        "64", "--limit-test", "100", "--out", o,
    ])
    .unwrap();
    let m = metrics(&out);
    assert_eq!(m["architecture"], "fmnist-ae-1x28");
    assert_eq!(m["config"]["milestones"], serde_json::json!([100, 150]));
    assert!((0.0..=1.0).contains(&m["auroc"].as_f64().unwrap()));
    assert!(m["pixel_auroc"].is_null() && m["aupro"].is_null(), "{m}");
}

/// Images of the tiny test split as one normalised batch through the model's test pipeline.
fn test_batch(ctx: &Context, model: &Model, data: &Path) -> Var {
    let category = oddity::data::MvtecCategory::load(&data.join("fabric")).unwrap();
    let plan = oddity::data::batches::BatchPlan::evaluation(category.test.clone(), model.test_pipeline(), 64);
    let b = oddity::data::batches::Prefetcher::spawn(plan, None, 1).unwrap().next().unwrap().unwrap();
    Var::constant(Tensor::from_slice(ctx, &b.shape, &b.data).unwrap())
}

#[test]
fn a_checkpoint_reloads_to_the_same_scores_and_maps() {
    let ctx = gpu_or_skip!();
    if gpu_tests_skipped() {
        return;
    }
    let data = tiny_mvtec();
    let out = common::scratch_dir("train_maps_reload");
    // 8 normal images: two steps of the VGG (the slowest network here) are enough.
    train(&[tiny_args("fcdd", data.to_str().unwrap(), out.to_str().unwrap(), "1"), vec!["--limit-train", "8"]].concat()).unwrap();
    let (model, stored) = load_model(&ctx, &out.join("checkpoint.safetensors")).unwrap();
    assert_eq!(stored.epochs_done, 1);
    assert_eq!(model.input_shape(), [3, 32, 32]);
    let category = oddity::data::MvtecCategory::load(&data.join("fabric")).unwrap();
    // Same weights, inputs and kernels as the CLI's evaluation: the numbers are identical, up
    // to metrics.json's round trip (serde_json's default float parser may be 1 ulp off).
    let ev = evaluate(&ctx, &model, &category.test, 256).unwrap();
    let m = metrics(&out);
    assert_eq!(m["architecture"], "fcdd-vgg11bn-3x32");
    for key in ["auroc", "pixel_auroc", "aupro"] {
        let v = m[key].as_f64().unwrap_or_else(|| panic!("fcdd: no {key} in {m}"));
        assert!((0.0..=1.0).contains(&v), "fcdd: {key} = {v}");
    }
    let same = |what: &str, a: f64, key: &str| {
        let b = m[key].as_f64().unwrap();
        assert!((a - b).abs() <= 1e-15, "{what}: reloaded {a}, metrics.json {b}");
    };
    same("image AUROC", ev.auroc().unwrap(), "auroc");
    let maps = ev.maps.as_ref().expect("fcdd on masked data has maps");
    same("pixel AUROC", maps.pixel_auroc().unwrap(), "pixel_auroc");
    same("AUPRO", maps.aupro().unwrap(), "aupro");

    // Twice loaded, the same maps bit for bit.
    let (again, _) = load_model(&ctx, &out.join("checkpoint.safetensors")).unwrap();
    model.net.set_training(false);
    again.net.set_training(false);
    let x = test_batch(&ctx, &model, &data);
    let a = no_grad(|| model.anomaly_maps(&x)).unwrap().unwrap().value().to_vec().unwrap();
    let b = no_grad(|| again.anomaly_maps(&x)).unwrap().unwrap().value().to_vec().unwrap();
    assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()), "reloaded maps differ");
}

#[test]
fn an_interrupted_unet_run_resumes_bit_identically() {
    if gpu_tests_skipped() || oddity::kernels::testing::gpu().is_none() {
        return;
    }
    let data = tiny_mvtec();
    let d = data.to_str().unwrap();
    let whole = common::scratch_dir("train_maps_resume_whole");
    train(&tiny_args("unet", d, whole.to_str().unwrap(), "2")).unwrap();
    let parts = common::scratch_dir("train_maps_resume_parts");
    train(&tiny_args("unet", d, parts.to_str().unwrap(), "1")).unwrap();
    let log = train(&[tiny_args("unet", d, parts.to_str().unwrap(), "2"), vec!["--resume"]].concat()).unwrap();
    assert!(log.contains("resuming"), "{log}");
    let a = Checkpoint::load(&whole.join("checkpoint.safetensors")).unwrap();
    let b = Checkpoint::load(&parts.join("checkpoint.safetensors")).unwrap();
    assert_eq!(a.meta, b.meta);
    assert_eq!(a.tensors.keys().collect::<Vec<_>>(), b.tensors.keys().collect::<Vec<_>>());
    for (name, t) in &a.tensors {
        let u = &b.tensors[name];
        assert!(
            t.shape == u.shape && t.data.iter().zip(&u.data).all(|(x, y)| x.to_bits() == y.to_bits()),
            "tensor {name} differs between the uninterrupted and the resumed run"
        );
    }
    assert_eq!(metrics(&whole)["pixel_auroc"], metrics(&parts)["pixel_auroc"]);
    assert!(metrics(&parts)["images_per_second"].as_f64().is_some_and(|r| r > 0.0), "{}", metrics(&parts));
    // Resuming the finished run trains no step: no rate (null, not 0), the same weights, and
    // metrics.json rewritten in place (atomically: no temporary file left behind).
    train(&[tiny_args("unet", d, parts.to_str().unwrap(), "2"), vec!["--resume"]].concat()).unwrap();
    let m = metrics(&parts);
    assert!(m["images_per_second"].is_null(), "{m}");
    assert_eq!(m["epochs_done"], 2);
    assert_eq!(m["pixel_auroc"], metrics(&whole)["pixel_auroc"]);
    let names: Vec<String> = std::fs::read_dir(&parts).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");
}

fn read(v: &Var) -> Vec<f64> {
    v.value().to_vec().unwrap().into_iter().map(f64::from).collect()
}

fn logit(p: f64) -> f64 {
    p.ln() - (1.0 - p).ln()
}

/// Maps are [N, 1, H, W] at the input size, and scores, logits, estimates and per-pixel logits
/// follow thesis §4.1.3-4.1.4 computed in f64 from the GPU's maps. Tolerance: 1e-5 relative +
/// 1e-5 absolute, a few f32 roundings of the elementwise chain (log, exp, sigmoid); the image
/// means are sums of 1024 f32 terms (error ~1e-7 relative).
#[test]
fn maps_have_the_input_size_and_follow_the_thesis_formulas() {
    let ctx = gpu_or_skip!();
    let data = tiny_mvtec();
    let close = |what: &str, got: &[f64], want: &[f64]| {
        assert_eq!(got.len(), want.len(), "{what}");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= 1e-5 + 1e-5 * w.abs(), "{what}[{i}]: {g} vs {w}");
        }
    };
    let norm = |c: usize| oddity::data::Normalization { mean: vec![0.5; c], std: vec![0.2; c] };
    let build = |arch: &str, loss| {
        Model::build(&ctx, oddity::train::Architecture::parse(arch).unwrap(), loss, 1, norm(if arch.contains("-3x") { 3 } else { 1 }), &[], 14.0)
            .unwrap()
    };
    use oddity::train::LossKind;
    for (arch, loss) in [("fcdd-vgg11bn-3x32", LossKind::Fcdd), ("bergmann-ae-1x32", LossKind::Ssim), ("unet-1x32", LossKind::Unet)] {
        let model = build(arch, loss);
        model.net.set_training(false);
        let x = test_batch(&ctx, &model, &data);
        let n = x.shape()[0];
        let maps = no_grad(|| model.anomaly_maps(&x)).unwrap().unwrap();
        assert_eq!(maps.shape(), &[n, 1, SIDE, SIDE], "{arch}");
        let z = no_grad(|| model.pixel_logits(&x)).unwrap().unwrap();
        assert_eq!(z.shape(), &[n, 1, SIDE, SIDE], "{arch}");
        let est = no_grad(|| model.estimates(&x)).unwrap();
        for v in [&est.score, &est.logit, &est.eta] {
            assert_eq!(v.shape(), &[n], "{arch}");
        }
        let (m, z, score, lg, eta) = (read(&maps), read(&z), read(&est.score), read(&est.logit), read(&est.eta));
        let plane = SIDE * SIDE;
        match loss {
            LossKind::Fcdd => {
                // A' >= 0; z = σ⁻¹(1 - e^{-A'}); the image score is the mean of the low-resolution map.
                assert!(m.iter().all(|&a| a >= 0.0), "{arch}: negative A'");
                close("fcdd pixel logits", &z, &m.iter().map(|&a| cpu::hsc_logit(a)).collect::<Vec<_>>());
                close("fcdd eta", &eta, &score.iter().map(|&v| cpu::hsc_eta(v)).collect::<Vec<_>>());
                close("fcdd logit", &lg, &score.iter().map(|&v| cpu::hsc_logit(v)).collect::<Vec<_>>());
            }
            LossKind::Ssim => {
                // map = 1 - S = 2η̂; z = σ⁻¹(η̂); image η̂ = mean η̂_ij, score 2η̂, logit σ⁻¹(η̂).
                close("ssim pixel logits", &z, &m.iter().map(|&a| logit(a / 2.0)).collect::<Vec<_>>());
                let means: Vec<f64> = m.chunks(plane).map(|c| c.iter().sum::<f64>() / plane as f64 / 2.0).collect();
                close("ssim eta", &eta, &means);
                close("ssim score", &score, &means.iter().map(|e| 2.0 * e).collect::<Vec<_>>());
                close("ssim logit", &lg, &means.iter().map(|&e| logit(e)).collect::<Vec<_>>());
            }
            _ => {
                // map = pixel logits; image η̂ = mean σ(z_ij) = score, logit σ⁻¹(η̂).
                close("unet map", &z, &m);
                let means: Vec<f64> = z.chunks(plane).map(|c| c.iter().map(|&v| cpu::sigmoid(v)).sum::<f64>() / plane as f64).collect();
                close("unet eta", &eta, &means);
                close("unet score", &score, &means);
                close("unet logit", &lg, &means.iter().map(|&e| logit(e)).collect::<Vec<_>>());
            }
        }
    }
    // Image-level models have no maps.
    let lenet = Model::build(&ctx, oddity::train::Architecture::parse("fmnist-lenet-bias").unwrap(), LossKind::Hsc, 1, norm(1), &[], 14.0).unwrap();
    let x = Var::constant(Tensor::zeros(&ctx, &[2, 1, 28, 28]).unwrap());
    assert!(lenet.anomaly_maps(&x).unwrap().is_none() && lenet.pixel_logits(&x).unwrap().is_none());
    // A wrong input shape names the network.
    let e = lenet.estimates(&Var::constant(Tensor::zeros(&ctx, &[2, 1, 32, 32]).unwrap())).err().unwrap().to_string();
    assert!(e.contains("fmnist-lenet-bias") && e.contains("28"), "{e}");
}

#[test]
fn bad_data_folders_and_classes_are_named() {
    let data = tiny_mvtec();
    let out = common::scratch_dir("train_maps_bad");
    let o = out.to_str().unwrap();
    // A folder that is not in the MVTec layout.
    let plain = common::scratch_dir("train_maps_not_mvtec");
    std::fs::write(plain.join("readme.txt"), "no categories").unwrap();
    let e = train(&tiny_args("ssim", plain.to_str().unwrap(), o, "1")).unwrap_err().to_string();
    assert!(e.contains(plain.to_str().unwrap()) && e.contains("MVTec"), "{e}");
    // An unknown class names it and the categories there are.
    let mut args = tiny_args("ssim", data.to_str().unwrap(), o, "1");
    args[5] = "carpet";
    let e = train(&args).unwrap_err().to_string();
    assert!(e.contains("carpet") && e.contains("fabric"), "{e}");
    // Neither a data set name nor a folder.
    let e = train(&tiny_args("ssim", "/nonexistent/mvtec", o, "1")).unwrap_err().to_string();
    assert!(e.contains("/nonexistent/mvtec") && e.contains("fmnist"), "{e}");
    // A size the U-Net cannot take, and a loss without a network for this data.
    let mut args = tiny_args("unet", data.to_str().unwrap(), o, "1");
    args[7] = "40";
    let e = train(&args).unwrap_err().to_string();
    assert!(e.contains("unet-1x40") && e.contains("multiple of 32"), "{e}");
    let e = train(&tiny_args("svdd", data.to_str().unwrap(), o, "1")).unwrap_err().to_string();
    assert!(e.contains("svdd") && e.contains("fcdd, ssim or unet"), "{e}");
}
