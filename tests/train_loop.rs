//! `oddity train` and `oddity::train::fit` on a small slice of Fashion-MNIST: a short SVDD run
//! beats the untrained network, an interrupted run resumed from its checkpoint ends bit-identical
//! to an uninterrupted one, a NaN loss stops training naming epoch and step while the last good
//! checkpoint still loads, and bad arguments give clear errors with exit code 2.

use oddity::synth::OePart;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use oddity::checkpoint::Checkpoint;
use oddity::data::batches::Batch;
use oddity::data::transforms::{Normalization, Pipeline};
use oddity::data::{DataSplit, FashionMnist, FASHION_MNIST_DEFAULT_DIR};
use oddity::error::{Error, Result};
use oddity::kernels::gpu_or_skip;
use oddity::train::{
    fit, load_model, DatasetKind, EpochBatches, FitOptions, LossKind, Model, PlannedBatches, TrainConfig,
};

fn fmnist_or_skip() -> bool {
    if Path::new(FASHION_MNIST_DEFAULT_DIR).is_dir() {
        return true;
    }
    eprintln!("skipping: Fashion-MNIST not found in {FASHION_MNIST_DEFAULT_DIR} (Debian package dataset-fashion-mnist)");
    false
}

fn gpu_tests_skipped() -> bool {
    let skip = std::env::var("ODDITY_SKIP_GPU_TESTS").as_deref() == Ok("1");
    if skip {
        eprintln!("skipping GPU test (ODDITY_SKIP_GPU_TESTS=1)");
    }
    skip
}

fn out_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn oddity(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oddity")).args(args).output().unwrap()
}

fn train(args: &[&str], out: &Path) -> Output {
    let mut all = vec!["train", "--no-progress", "--out", out.to_str().unwrap()];
    all.extend_from_slice(args);
    let run = oddity(&all);
    assert!(
        run.status.success(),
        "oddity {all:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    run
}

fn metrics(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap()
}

#[test]
fn short_svdd_run_beats_the_untrained_network() {
    if gpu_tests_skipped() || !fmnist_or_skip() {
        return;
    }
    let common = [
        "--loss", "svdd", "--data", "fmnist", "--class", "pullover", "--seed", "1", "--limit-train", "256",
        "--limit-test", "600", "--batch", "32", "--lr", "1e-3",
    ];
    let untrained = out_dir("svdd_untrained");
    train(&[&common[..], &["--epochs", "0"]].concat(), &untrained);
    let trained = out_dir("svdd_trained");
    let run = train(&[&common[..], &["--epochs", "6"]].concat(), &trained);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("test AUROC"), "{stdout}");
    let (before, after) = (metrics(&untrained), metrics(&trained));
    let (a0, a1) = (before["auroc"].as_f64().unwrap(), after["auroc"].as_f64().unwrap());
    eprintln!("pullover AUROC untrained {a0:.4}, after 6 epochs {a1:.4}");
    assert!(a1 > a0 + 0.02, "training did not raise the AUROC: untrained {a0}, trained {a1}\n{stdout}");
    assert_eq!(after["seed"], 1);
    assert_eq!(after["epochs_done"], 6);
    assert_eq!(after["config"]["lr"], 1e-3);
    let losses: Vec<f64> = after["epoch_losses"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert!(losses.last().unwrap() < &losses[0], "SVDD loss did not fall: {losses:?}");
}

#[test]
fn interrupted_and_resumed_run_matches_an_uninterrupted_one_bit_for_bit() {
    if gpu_tests_skipped() || !fmnist_or_skip() {
        return;
    }
    // HSC: balanced batches with spectral anomalies, so the per-epoch anomaly stream matters.
    let common = [
        "--loss", "hsc", "--data", "fmnist", "--class", "bag", "--seed", "5", "--limit-train", "64", "--limit-test",
        "200", "--batch", "32", "--readback-every", "3",
    ];
    let whole = out_dir("resume_whole");
    train(&[&common[..], &["--epochs", "2"]].concat(), &whole);
    let parts = out_dir("resume_parts");
    train(&[&common[..], &["--epochs", "1"]].concat(), &parts);
    let run = train(&[&common[..], &["--epochs", "2", "--resume"]].concat(), &parts);
    assert!(String::from_utf8_lossy(&run.stdout).contains("resuming"), "{}", String::from_utf8_lossy(&run.stdout));

    let a = Checkpoint::load(&whole.join("checkpoint.safetensors")).unwrap();
    let b = Checkpoint::load(&parts.join("checkpoint.safetensors")).unwrap();
    assert_eq!(a.meta, b.meta);
    assert_eq!(a.tensors.keys().collect::<Vec<_>>(), b.tensors.keys().collect::<Vec<_>>());
    assert!(a.tensors.keys().any(|k| k.starts_with("optim.adam.m.")), "no optimizer state in {:?}", a.tensors.keys());
    for (name, t) in &a.tensors {
        let u = &b.tensors[name];
        let same = t.shape == u.shape && t.data.iter().zip(&u.data).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same, "tensor {name} differs between the uninterrupted and the resumed run");
    }
    assert_eq!(metrics(&whole)["auroc"], metrics(&parts)["auroc"]);

    // A resume with other settings is refused, naming the setting.
    let mut other: Vec<&str> = vec!["train", "--no-progress", "--out", parts.to_str().unwrap()];
    other.extend_from_slice(&common);
    let seed = other.iter().position(|a| *a == "--seed").unwrap();
    other[seed + 1] = "6";
    other.extend_from_slice(&["--epochs", "3", "--resume"]);
    let run = oddity(&other);
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("seed"), "{stderr}");
}

/// Batches of a planned source, with a NaN pixel put into one step of one epoch.
struct PoisonedBatches {
    inner: PlannedBatches,
    epoch: usize,
    step: usize,
}

impl EpochBatches for PoisonedBatches {
    fn epoch(&mut self, epoch: usize) -> Result<Box<dyn Iterator<Item = Result<Batch>> + '_>> {
        let (poison_epoch, poison_step) = (self.epoch, self.step);
        let inner = self.inner.epoch(epoch)?;
        Ok(Box::new(inner.enumerate().map(move |(step, b)| {
            let mut b = b?;
            if epoch == poison_epoch && step == poison_step {
                b.data[5] = f32::NAN;
            }
            Ok(b)
        })))
    }

    fn steps_per_epoch(&self) -> usize {
        self.inner.steps_per_epoch()
    }
}

#[test]
fn nan_loss_stops_naming_epoch_and_step_and_keeps_the_last_good_checkpoint() {
    let ctx = gpu_or_skip!();
    if !fmnist_or_skip() {
        return;
    }
    let f = FashionMnist::load_default().unwrap();
    let split = DataSplit::one_vs_all(&f.train, &f.test, "coat", 0).unwrap();
    let train: Vec<_> = split.train[..96].to_vec();
    let norm = Normalization::fit_samples(&train, &Pipeline::default()).unwrap();
    let model = Model::new(&ctx, DatasetKind::Fmnist, LossKind::Svdd, 0, norm.clone(), &train).unwrap();
    let config = TrainConfig { epochs: 3, batch_size: 32, readback_every: 2, ..TrainConfig::thesis(LossKind::Svdd, 0) };
    let inner = PlannedBatches::new(train, Pipeline::default().with_normalization(norm), 32, 0, None).unwrap();
    // Epoch 2 (1-based), step 2 of 3.
    let mut batches = PoisonedBatches { inner, epoch: 1, step: 1 };
    let dir = out_dir("nan_run");
    let opts = FitOptions { checkpoint: dir.join("checkpoint.safetensors"), run: serde_json::json!({"test": "nan"}), progress: false };
    let mut log = Vec::new();
    let err = fit(&model, &mut batches, &config, None, &opts, &mut log).unwrap_err();
    assert!(matches!(err, Error::Diverged { epoch: 2, step: 2, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("epoch 2, step 2") && msg.contains("NaN") && msg.contains("checkpoint"), "{msg}");
    // The checkpoint of epoch 1 is still there, loads, and holds finite weights.
    let (loaded, stored) = load_model(&ctx, &opts.checkpoint).unwrap();
    assert_eq!(stored.epochs_done, 1);
    for (name, p) in oddity::nn::parameters(&loaded.net) {
        assert!(p.value().to_vec().unwrap().iter().all(|v| v.is_finite()), "{name} is not finite");
    }
}

fn expect_usage_error(args: &[&str], needles: &[&str]) {
    let run = oddity(args);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "oddity {args:?}: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "oddity {args:?}: stderr lacks '{n}': {stderr}");
    }
}

#[test]
fn train_rejects_bad_arguments_with_exit_code_2() {
    let out = out_dir("bad_args");
    let o = out.to_str().unwrap();
    let base = ["train", "--data", "fmnist", "--class", "coat", "--out", o];
    // Unknown losses are refused, listing the known ones.
    expect_usage_error(&[&base[..], &["--loss", "mse"]].concat(), &["mse", "svdd", "hsc", "logistic", "fcdd", "ssim", "unet"]);
    expect_usage_error(&[&base[..], &["--loss", "hsc", "--anomalies", "mrf"]].concat(), &["mrf", "spectral", "oe:<dir>"]);
    expect_usage_error(&[&base[..], &["--loss", "hsc", "--batch", "1"]].concat(), &["batch size", "1"]);
    expect_usage_error(&[&base[..], &["--loss", "hsc", "--batch", "33"]].concat(), &["even", "33"]);
    expect_usage_error(&[&base[..], &["--loss", "svdd", "--resume"]].concat(), &["checkpoint.safetensors"]);
    expect_usage_error(
        &[&base[..], &["--loss", "hsc", "--anomalies", "oe:/nonexistent/oe"]].concat(),
        &["/nonexistent/oe"],
    );
    expect_usage_error(&["train", "--loss", "svdd", "--data", "cifar10", "--class", "cat", "--out", o], &["--data-root"]);
    expect_usage_error(&["train", "--loss", "svdd", "--data", "fmnist", "--out", o], &["--class"]);
    if fmnist_or_skip() {
        // Training draws outlier exposure from the folder's training part only: a folder whose
        // one image belongs to the calibration part leaves training nothing, and says so.
        let oe = out.join("oe_calibration_only");
        let name = (0..).map(|i| format!("img{i}.png")).find(|n| OePart::of(std::path::Path::new(n)) == OePart::Calibration).unwrap();
        std::fs::create_dir_all(&oe).unwrap();
        image::GrayImage::from_pixel(8, 8, image::Luma([90])).save(oe.join(name)).unwrap();
        let arg = format!("oe:{}", oe.display());
        expect_usage_error(&[&base[..], &["--loss", "hsc", "--epochs", "1", "--limit-train", "16", "--anomalies", &arg]].concat(), &["training part", "add images"]);
        expect_usage_error(&[&base[..3], &["--class", "unicorn", "--out", o, "--loss", "svdd"]].concat(), &["unicorn", "trouser"]);
    }
}
