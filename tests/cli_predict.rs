//! `oddity predict` end to end: a small SSIM autoencoder trained by `oddity train` on the
//! procedural texture data set, its calibration files written by `predict::prepare_model_dir`,
//! then predictions, p-values, decisions and heatmaps for the test folder; and the missing-file
//! errors that name the file and the command that makes it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use oddity::calibration::{Calibrator, Platt};
use oddity::data::{DataSplit, MvtecCategory};
use oddity::kernels::Context;
use oddity::predict::{prepare_model_dir, CalibrationScores, CALIBRATION_SCORES_FILE, CALIBRATOR_FILE};
use oddity::synth::textures::TextureDataset;
use oddity::train::{evaluate, load_model};

fn skip_gpu() -> bool {
    if std::env::var("ODDITY_SKIP_GPU_TESTS").as_deref() == Ok("1") {
        eprintln!("skipping GPU test (ODDITY_SKIP_GPU_TESTS=1)");
        return true;
    }
    false
}

fn oddity(args: &[&str], paths: &[&Path]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oddity"));
    cmd.args(args);
    for p in paths {
        cmd.arg(p);
    }
    cmd.output().unwrap()
}

/// Trains one epoch of the 32x32 SSIM autoencoder; returns (data root, model folder).
fn trained_model(name: &str) -> (PathBuf, PathBuf) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let spec = TextureDataset { size: 32, train: 32, test_good: 6, test_defects: 3, seed: 1 };
    common::trained_texture_ssim(&dir, &spec)
}

#[test]
fn predict_writes_probabilities_p_values_decisions_and_heatmaps() {
    if skip_gpu() {
        return;
    }
    let (data, model_dir) = trained_model("predict_run");
    let out = model_dir.parent().unwrap().join("predictions");

    // Without the calibration files predict names the missing file and who writes it.
    let run = oddity(&["predict", "--model"], &[&model_dir, &data.join("tex/test"), Path::new("--out"), &out]);
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains(CALIBRATOR_FILE) && stderr.contains("oddity calibrate"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");

    // Calibration normal scores: the model on the calibration split of the same seed (0).
    let ctx = Context::new().unwrap();
    let (model, _) = load_model(&ctx, &model_dir.join("checkpoint.safetensors")).unwrap();
    let split = DataSplit::per_category(&MvtecCategory::load(&data.join("tex")).unwrap(), 0).unwrap();
    let ev = evaluate(&ctx, &model, &split.calibration, 8).unwrap();
    let n_cal = ev.scores.len();
    assert!(n_cal >= 4, "{n_cal} calibration images");
    let scores = CalibrationScores::new(&model.architecture, ev.scores.clone(), Some(1.0), 0);
    prepare_model_dir(&model_dir, &scores, &Calibrator::Platt(Platt::new(1.0, 0.0))).unwrap();
    assert!(model_dir.join(CALIBRATION_SCORES_FILE).is_file());

    // --fpr 0.2 needs >= 4 calibration scores.
    let run = oddity(&["predict", "--fpr", "0.2", "--batch", "4", "--model"], &[&model_dir, &data.join("tex/test"), Path::new("--out"), &out]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "predict failed: {stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("flagged"), "{stdout}");

    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("predictions.json")).unwrap()).unwrap();
    let preds = json["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 6 + 2 * 3);
    let mut cal = ev.scores.clone();
    cal.sort_by(f64::total_cmp);
    let threshold = json["threshold"].as_f64().unwrap();
    for p in preds {
        let s = p["score"].as_f64().unwrap();
        let pv = p["p_value"].as_f64().unwrap();
        // p = (1 + #{cal >= s}) / (n + 1), recomputed here from the scores evaluate gave.
        let expect = (1 + cal.iter().filter(|&&c| c >= s).count()) as f64 / (n_cal + 1) as f64;
        assert!((pv - expect).abs() < 1e-9, "{p}");
        let prob = p["probability"].as_f64().unwrap();
        assert!(prob > 0.0 && prob < 1.0, "{p}");
        assert_eq!(p["anomalous"].as_bool().unwrap(), s > threshold, "{p}");
        let heat = PathBuf::from(p["heatmap"].as_str().unwrap());
        let img = image::open(&heat).unwrap();
        assert_eq!((img.width(), img.height()), (32, 32));
    }
    let csv = std::fs::read_to_string(out.join("predictions.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + preds.len());
    assert!(csv.starts_with("image,score,probability,p_value,anomalous,heatmap"));

    // Too few calibration scores for --fpr 0.01 is a one-line error naming how many are needed.
    let run = oddity(&["predict", "--model"], &[&model_dir, &data.join("tex/test"), Path::new("--out"), &out]);
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    // The last line is ours (software drivers may print warnings before it).
    let last = stderr.trim().lines().last().unwrap_or("");
    assert!(last.starts_with("error: ") && last.contains("at least 99 calibration normal scores"), "{stderr}");
}
