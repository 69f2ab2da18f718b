//! User mistakes end with a one-line `error: ...` message naming the problem and exit code 2,
//! never a panic or backtrace: unknown class, wrong folder layout, model/input size mismatch,
//! missing or corrupt weights, no GPU adapter, a bad config file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use oddity::calibration::{Calibrator, Platt};
use oddity::predict::{prepare_model_dir, CalibrationScores};
use oddity::synth::textures::{write_texture_dataset, TextureDataset};

fn tmp(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli_errors").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oddity")).args(args).envs(envs.iter().copied()).output().unwrap()
}

/// Exit code 2 and a last stderr line `error: ...` containing every `want` (software drivers
/// may print their own warnings before it); no panic.
fn assert_user_error(out: &Output, wants: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
    let last = stderr.trim().lines().last().unwrap_or("");
    assert!(last.starts_with("error: "), "{stderr}");
    for w in wants {
        assert!(last.contains(w), "'{w}' missing from: {last}");
    }
}

fn texture_data(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    let spec = TextureDataset { size: 32, train: 8, test_good: 2, test_defects: 1, seed: 2 };
    write_texture_dataset(&data, "tex", &spec).unwrap();
    data
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn unknown_class_names_the_categories() {
    let dir = tmp("class");
    let data = texture_data(&dir);
    let out = run(&["train", "--loss", "ssim", "--data", s(&data), "--class", "nope", "--out", s(&dir.join("o"))], &[]);
    assert_user_error(&out, &["class 'nope'", "tex"]);
}

#[test]
fn wrong_folder_layout_is_named() {
    let dir = tmp("layout");
    std::fs::create_dir_all(dir.join("flat")).unwrap();
    let out = run(&["train", "--loss", "ssim", "--data", s(&dir), "--class", "flat", "--out", s(&dir.join("o"))], &[]);
    assert_user_error(&out, &["not an MVTec-layout folder"]);
}

#[test]
fn missing_weights_name_the_file_and_the_command() {
    let dir = tmp("missing");
    let data = texture_data(&dir);
    let model = dir.join("model");
    std::fs::create_dir_all(&model).unwrap();
    let out = run(&["predict", "--model", s(&model), s(&data.join("tex/test")), "--out", s(&dir.join("o"))], &[]);
    assert_user_error(&out, &["checkpoint.safetensors", "oddity train"]);
}

#[test]
fn corrupt_weights_name_the_file() {
    if std::env::var("ODDITY_SKIP_GPU_TESTS").as_deref() == Ok("1") {
        return;
    }
    let dir = tmp("corrupt");
    let data = texture_data(&dir);
    let model = dir.join("model");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(model.join("checkpoint.safetensors"), b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all").unwrap();
    let scores = CalibrationScores::new("bergmann-ae-1x32", vec![0.1, 0.2, 0.3], None, 0);
    prepare_model_dir(&model, &scores, &Calibrator::Platt(Platt::new(1.0, 0.0))).unwrap();
    let out = run(&["predict", "--fpr", "0.5", "--model", s(&model), s(&data.join("tex/test")), "--out", s(&dir.join("o"))], &[]);
    assert_user_error(&out, &["checkpoint.safetensors"]);
}

#[test]
fn resuming_with_another_input_size_is_a_size_mismatch() {
    if std::env::var("ODDITY_SKIP_GPU_TESTS").as_deref() == Ok("1") {
        return;
    }
    let dir = tmp("size");
    let data = texture_data(&dir);
    let o = dir.join("o");
    let base = ["train", "--loss", "ssim", "--data", s(&data), "--class", "tex", "--batch", "4", "--no-progress", "--out", s(&o)];
    let first = run(&[&base[..], &["--size", "32", "--epochs", "1"]].concat(), &[]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let out = run(&[&base[..], &["--size", "64", "--epochs", "2", "--resume"]].concat(), &[]);
    assert_user_error(&out, &["cannot resume", "32", "64"]);
}

#[test]
fn no_gpu_adapter_is_one_line() {
    let out = run(&["info"], &[("ODDITY_ADAPTER", "no-such-adapter")]);
    assert_user_error(&out, &["no-such-adapter"]);
}

#[test]
fn bad_config_file_is_named() {
    let dir = tmp("config");
    let cfg = dir.join("bad.toml");
    std::fs::write(&cfg, "epochs = [").unwrap();
    let out = run(&["train", "--config", s(&cfg)], &[]);
    assert_user_error(&out, &["bad.toml", "not valid TOML"]);
    let out = run(&["train", "--config", s(&dir.join("absent.toml"))], &[]);
    assert_user_error(&out, &["absent.toml"]);
}

#[test]
fn config_file_supplies_flags_and_the_run_writes_its_resolved_config() {
    let dir = tmp("resolved");
    let data = texture_data(&dir);
    let model = dir.join("model");
    std::fs::create_dir_all(&model).unwrap();
    let out_dir = dir.join("o");
    let cfg = dir.join("predict.toml");
    std::fs::write(&cfg, format!("model = \"{}\"\nout = \"{}\"\nfpr = 0.05\nbatch = 3\n", s(&model), s(&out_dir))).unwrap();
    // The command line wins over the file (--batch 5); the model folder has no checkpoint, so
    // the run stops after writing its config.
    let out = run(&["predict", "--config", s(&cfg), "--batch", "5", s(&data.join("tex/test"))], &[]);
    assert_user_error(&out, &["checkpoint.safetensors"]);
    let resolved: toml::Table = std::fs::read_to_string(out_dir.join("config.toml")).unwrap().parse().unwrap();
    assert_eq!(resolved["fpr"].as_float(), Some(0.05));
    assert_eq!(resolved["batch"].as_integer(), Some(5));
    assert_eq!(resolved["model"].as_str(), Some(s(&model)));
}
