//! Issue 12, item 5: `oddity predict` over a folder of 10,000 images keeps memory flat. The
//! same model predicts a 100-image folder and a 10,000-image folder (heatmaps on, so every
//! output path runs); the child's resident memory is sampled from /proc while it works. The
//! 10,000-image run may use at most `CEILING_MB` more than the 100-image run: holding the decoded
//! images alone would take 10,000 x 64 x 64 x 4 bytes = 164 MB, holding the results or the
//! heatmaps a few MB per thousand images, so either mistake fails the test.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use oddity::calibration::{Calibrator, Platt};
use oddity::data::{DataSplit, MvtecCategory};
use oddity::kernels::Context;
use oddity::predict::{prepare_model_dir, CalibrationScores};
use oddity::synth::textures::{texture, TextureDataset};
use oddity::train::{evaluate, load_model};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Allowed growth of peak resident memory from 100 to 10,000 images. Allocator and driver
/// noise between two runs of the same process is a few MB; 32 MB is a fifth of what keeping the
/// decoded images would cost.
const CEILING_MB: f64 = 32.0;
const IMAGES: usize = 10_000;
const SIDE: usize = 64;

fn skip() -> bool {
    if std::env::var("ODDITY_SKIP_GPU_TESTS").as_deref() == Ok("1") {
        eprintln!("skipping GPU test (ODDITY_SKIP_GPU_TESTS=1)");
        return true;
    }
    if !Path::new("/proc/self/status").is_file() {
        eprintln!("skipping: resident memory is read from /proc (Linux only)");
        return true;
    }
    false
}

/// Trains one epoch of the 32x32 SSIM autoencoder on generated textures and writes its
/// calibration files (scores of the calibration split, identity Platt map).
fn calibrated_model(dir: &Path) -> PathBuf {
    let spec = TextureDataset { size: 32, train: 32, test_good: 2, test_defects: 1, seed: 3 };
    let (data, model) = common::trained_texture_ssim(dir, &spec);
    let ctx = Context::new().unwrap();
    let (net, _) = load_model(&ctx, &model.join("checkpoint.safetensors")).unwrap();
    let split = DataSplit::per_category(&MvtecCategory::load(&data.join("tex")).unwrap(), 0).unwrap();
    let ev = evaluate(&ctx, &net, &split.calibration, 8).unwrap();
    let scores = CalibrationScores::new(&net.architecture, ev.scores, Some(1.0), 0);
    prepare_model_dir(&model, &scores, &Calibrator::Platt(Platt::new(1.0, 0.0))).unwrap();
    model
}

/// `n` seeded 64x64 texture PNGs in `dir` (the model resizes them to 32x32).
fn image_folder(dir: &Path, n: usize, seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for i in 0..n {
        texture(SIDE, &mut rng).save_png(&dir.join(format!("img{i:05}.png"))).unwrap();
    }
}

/// `VmHWM` (peak resident set) of process `pid` in MB, while it runs.
fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

struct Run {
    peak_mb: f64,
    /// Peak when the first 10 % of the images were done.
    peak_at_tenth_mb: f64,
    images_done: usize,
}

/// Runs `oddity predict` on `folder`, sampling the child's peak resident memory until it exits.
fn predict(model: &Path, folder: &Path, out: &Path, total: usize) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_oddity"))
        .args(["predict", "--fpr", "0.2", "--batch", "32", "--model"])
        .arg(model)
        .arg(folder)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Progress lines ("predict: N/M images") tell how far the run is.
    let stderr = child.stderr.take().unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let done_w = done.clone();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
            if let Some(n) = line.strip_prefix("predict: ").and_then(|r| r.split('/').next()).and_then(|n| n.parse().ok()) {
                done_w.store(n, std::sync::atomic::Ordering::Relaxed);
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let (mut peak, mut peak_at_tenth) = (0.0f64, None);
    loop {
        if let Some(mb) = peak_rss_mb(pid) {
            peak = peak.max(mb);
        }
        let n = done.load(std::sync::atomic::Ordering::Relaxed);
        if peak_at_tenth.is_none() && n * 10 >= total && n > 0 {
            peak_at_tenth = Some(peak);
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = child.wait().unwrap();
    let log = reader.join().unwrap();
    assert!(status.success(), "predict failed:\n{log}");
    Run { peak_mb: peak, peak_at_tenth_mb: peak_at_tenth.unwrap_or(peak), images_done: done.load(std::sync::atomic::Ordering::Relaxed) }
}

#[test]
fn predict_over_ten_thousand_images_keeps_memory_flat() {
    if skip() {
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("predict_memory");
    let _ = std::fs::remove_dir_all(&dir);
    let model = calibrated_model(&dir);
    image_folder(&dir.join("small"), 100, 1);
    image_folder(&dir.join("large"), IMAGES, 2);

    let small = predict(&model, &dir.join("small"), &dir.join("out-small"), 100);
    let large = predict(&model, &dir.join("large"), &dir.join("out-large"), IMAGES);
    eprintln!(
        "predict_memory: peak resident memory 100 images {:.1} MB; 10,000 images {:.1} MB \
         ({:.1} MB after the first 1,000); allowed growth {CEILING_MB} MB",
        small.peak_mb, large.peak_mb, large.peak_at_tenth_mb
    );
    assert_eq!(large.images_done, IMAGES);
    assert!(small.peak_mb > 0.0, "no memory samples were taken");
    assert!(
        large.peak_mb - small.peak_mb <= CEILING_MB,
        "10,000 images peaked at {:.1} MB, 100 images at {:.1} MB: memory grows with the number of images",
        large.peak_mb,
        small.peak_mb
    );

    // Every image has its row in both result files and its heatmap.
    let csv = std::fs::read_to_string(dir.join("out-large/predictions.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + IMAGES);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("out-large/predictions.json")).unwrap()).unwrap();
    let rows = json["predictions"].as_array().unwrap();
    assert_eq!(rows.len(), IMAGES);
    assert_eq!(json["images"].as_u64(), Some(IMAGES as u64));
    let flagged = rows.iter().filter(|r| r["anomalous"].as_bool().unwrap()).count();
    assert_eq!(json["flagged"].as_u64(), Some(flagged as u64));
    let heatmaps = std::fs::read_dir(dir.join("out-large/heatmaps")).unwrap().count();
    assert_eq!(heatmaps, IMAGES);
    // No temporary file is left beside the results.
    let leftovers: Vec<String> = std::fs::read_dir(dir.join("out-large"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
