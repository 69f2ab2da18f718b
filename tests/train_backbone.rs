//! `oddity train --backbone-weights`: torchvision VGG11-BN weights start FCDD's VGG network and
//! its first 15 modules stay frozen, also after `--resume`; the file and its CRC-32 are recorded
//! in the checkpoint's run info and metrics.json; a missing or wrongly shaped tensor, another
//! network or a different file on resume are errors naming what is wrong.
//!
//! The weights are a fake written here with torchvision's names and shapes and seeded values
//! (the real file is 500 MB); the data is a tiny MVTec-layout folder at 32x32.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oddity::checkpoint::Checkpoint;
use oddity::kernels::testing::TestRng;

use common::train_cli as train;

const SIDE: u32 = 32;

fn gpu_missing() -> bool {
    if std::env::var("ODDITY_SKIP_GPU_TESTS").as_deref() == Ok("1") || oddity::kernels::testing::gpu().is_none() {
        eprintln!("skipping GPU test");
        return true;
    }
    false
}

/// torchvision `vgg11_bn().features[0..21]`: (conv index, in channels, out channels); each conv
/// is followed by its batch norm at index + 1.
const VGG_CONVS: [(usize, usize, usize); 6] = [(0, 3, 64), (4, 64, 128), (8, 128, 256), (11, 256, 256), (15, 256, 512), (18, 512, 512)];
/// Modules 0..15 are frozen: the first four convolutions and their batch norms.
const FROZEN_CONVS: usize = 4;

/// The tensors of a torchvision VGG11-BN state dict that FCDD uses, with seeded values (running
/// variances positive), by name.
fn fake_vgg(seed: u64) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let mut rng = TestRng::new(seed);
    let mut out = BTreeMap::new();
    let mut put = |name: String, shape: Vec<usize>, lo: f64, hi: f64| {
        let n = shape.iter().product();
        let values = rng.vec(n, lo, hi).into_iter().map(|v| v as f32).collect();
        out.insert(name, (shape, values));
    };
    for (i, cin, cout) in VGG_CONVS {
        put(format!("features.{i}.weight"), vec![cout, cin, 3, 3], -0.05, 0.05);
        put(format!("features.{i}.bias"), vec![cout], -0.1, 0.1);
        let bn = i + 1;
        put(format!("features.{bn}.weight"), vec![cout], 0.5, 1.5);
        put(format!("features.{bn}.bias"), vec![cout], -0.1, 0.1);
        put(format!("features.{bn}.running_mean"), vec![cout], -0.2, 0.2);
        put(format!("features.{bn}.running_var"), vec![cout], 0.5, 1.5);
    }
    out
}

/// Writes `tensors` as safetensors, plus an I64 `num_batches_tracked` and a classifier tensor
/// (present in torchvision's file, unused by FCDD).
fn write_safetensors(path: &Path, tensors: &BTreeMap<String, (Vec<usize>, Vec<f32>)>) {
    let bytes: BTreeMap<&String, Vec<u8>> =
        tensors.iter().map(|(n, (_, v))| (n, v.iter().flat_map(|x| x.to_le_bytes()).collect())).collect();
    let mut views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, (shape, _))| {
            (n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), &bytes[n]).unwrap())
        })
        .collect();
    let tracked = 7i64.to_le_bytes();
    views.push(("features.1.num_batches_tracked".into(), safetensors::tensor::TensorView::new(safetensors::Dtype::I64, vec![], &tracked).unwrap()));
    let classifier = [0u8; 4 * 6];
    views.push(("classifier.6.bias".into(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![6], &classifier).unwrap()));
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

/// `<root>/wood/{train/good, test/good, test/crack, ground_truth/crack}` of RGB 32x32 images.
fn tiny_mvtec() -> PathBuf {
    static ONCE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let root = common::scratch_dir("train_backbone_data");
        let c = root.join("wood");
        for i in 0..8u8 {
            common::write_image(&c.join(format!("train/good/{i:03}.png")), SIDE, SIDE, false, i * 11);
        }
        for i in 0..3u8 {
            common::write_image(&c.join(format!("test/good/{i:03}.png")), SIDE, SIDE, false, 100 + i);
            common::write_image(&c.join(format!("test/crack/{i:03}.png")), SIDE, SIDE, false, 200 + i);
            common::write_mask(&c.join(format!("ground_truth/crack/{i:03}_mask.png")), SIDE, SIDE);
        }
        root
    })
    .clone()
}

fn args<'a>(loss: &'a str, data: &'a str, out: &'a str, epochs: &'a str) -> Vec<&'a str> {
    vec![
        "--loss", loss, "--data", data, "--class", "wood", "--size", "32", "--epochs", epochs, "--batch", "4", "--seed",
        "5", "--out", out, "--lr", "1e-3",
    ]
}

fn crc32_of(path: &Path) -> String {
    let mut crc = flate2::Crc::new();
    crc.update(&std::fs::read(path).unwrap());
    format!("{:08x}", crc.sum())
}

/// Compares the network's VGG tensors in the checkpoint with the file: frozen parameters must be
/// bit-identical; trained ones started from the file, so they moved by at most `max_step`
/// (lr 1e-3: Adam moves a parameter by about lr per step, at most (1 - beta1) / sqrt(1 - beta2)
/// = 3.16 lr) and some did move. Batch-norm running
/// statistics keep updating in training (FCDD freezes parameters only) and are not compared.
fn check_against_file(ck: &Checkpoint, fake: &BTreeMap<String, (Vec<usize>, Vec<f32>)>, max_step: f32) {
    let mut trained_moved = false;
    for (k, (i, _, _)) in VGG_CONVS.iter().enumerate() {
        for name in [format!("features.{i}.weight"), format!("features.{i}.bias"), format!("features.{}.weight", i + 1), format!("features.{}.bias", i + 1)] {
            let got = &ck.tensors.get(&name).unwrap_or_else(|| panic!("no {name} in the checkpoint")).data;
            let want = &fake[&name].1;
            assert_eq!(got.len(), want.len(), "{name}");
            if k < FROZEN_CONVS {
                let same = got.iter().zip(want).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "frozen {name} changed in training");
            } else {
                let diff = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                assert!(diff <= max_step, "{name} moved {diff} from the file: not started from it?");
                trained_moved |= diff > 0.0;
            }
        }
    }
    assert!(trained_moved, "no trainable VGG layer changed: was anything trained?");
}

#[test]
fn backbone_weights_load_stay_frozen_across_resume_and_are_recorded() {
    if gpu_missing() {
        return;
    }
    let data = tiny_mvtec();
    let dir = common::scratch_dir("train_backbone_run");
    let weights = dir.join("vgg11_bn.safetensors");
    let fake = fake_vgg(42);
    write_safetensors(&weights, &fake);
    let out = dir.join("run");
    let (d, o, w) = (data.to_str().unwrap(), out.to_str().unwrap(), weights.to_str().unwrap());
    let log = train(&[args("fcdd", d, o, "1"), vec!["--backbone-weights", w]].concat()).unwrap();
    assert!(log.contains("first 15 modules frozen"), "{log}");
    let ck = Checkpoint::load(&out.join("checkpoint.safetensors")).unwrap();
    // 6 normal training images (8 less the calibration quarter), batch 4 (2 normal + 2
    // anomalies): 3 steps.
    check_against_file(&ck, &fake, 3.0 * 3.2e-3);
    let crc = crc32_of(&weights);
    let metrics: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["backbone_weights"], serde_json::json!({ "file": w, "crc32": crc }), "{metrics}");
    let stored = oddity::train::StoredConfig::from_checkpoint(&ck, &out).unwrap();
    assert_eq!(stored.run["backbone_weights"]["crc32"], crc.as_str());

    // Resume without the flag: the recorded backbone is frozen again for epoch 2.
    let log = train(&[args("fcdd", d, o, "2"), vec!["--resume"]].concat()).unwrap();
    assert!(log.contains("resuming") && log.contains("first 15 modules frozen"), "{log}");
    let ck = Checkpoint::load(&out.join("checkpoint.safetensors")).unwrap();
    check_against_file(&ck, &fake, 6.0 * 3.2e-3);
    let metrics: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["epochs_done"], 2);
    assert_eq!(metrics["backbone_weights"]["crc32"], crc.as_str());

    // Resume naming other weights: refused, both files' CRCs named.
    let other = dir.join("other.safetensors");
    write_safetensors(&other, &fake_vgg(43));
    let err = train(&[args("fcdd", d, o, "3"), vec!["--resume", "--backbone-weights", other.to_str().unwrap()]].concat())
        .unwrap_err()
        .to_string();
    assert!(err.contains(&crc) && err.contains(&crc32_of(&other)) && err.contains("other.safetensors"), "{err}");
}

#[test]
fn bad_backbone_files_and_other_networks_are_named_errors() {
    if gpu_missing() {
        return;
    }
    let data = tiny_mvtec();
    let dir = common::scratch_dir("train_backbone_errors");
    let d = data.to_str().unwrap();
    let out = dir.join("run");
    let o = out.to_str().unwrap();
    let run = |weights: &Path| train(&[args("fcdd", d, o, "1"), vec!["--backbone-weights", weights.to_str().unwrap()]].concat());

    let mut wrong_shape = fake_vgg(1);
    wrong_shape.get_mut("features.8.weight").unwrap().0 = vec![256, 128, 1, 9];
    let path = dir.join("wrong_shape.safetensors");
    write_safetensors(&path, &wrong_shape);
    let err = run(&path).unwrap_err().to_string();
    assert!(err.contains("features.8.weight") && err.contains("[256, 128, 1, 9]") && err.contains("[256, 128, 3, 3]"), "{err}");
    assert!(err.contains("wrong_shape.safetensors"), "{err}");

    let mut missing = fake_vgg(1);
    missing.remove("features.19.running_var");
    let path = dir.join("missing.safetensors");
    write_safetensors(&path, &missing);
    let err = run(&path).unwrap_err().to_string();
    assert!(err.contains("missing tensor features.19.running_var"), "{err}");
    assert!(!out.join("checkpoint.safetensors").exists(), "a failed load must not train");

    let err = run(&dir.join("absent.safetensors")).unwrap_err().to_string();
    assert!(err.contains("absent.safetensors") && err.contains("--backbone-weights"), "{err}");

    let good = dir.join("good.safetensors");
    write_safetensors(&good, &fake_vgg(1));
    let err = train(&[args("unet", d, o, "1"), vec!["--backbone-weights", good.to_str().unwrap()]].concat())
        .unwrap_err()
        .to_string();
    assert!(err.contains("--backbone-weights") && err.contains("unet"), "{err}");
}
