//! `oddity demo` end to end on a tiny setting (32x32 textures, 2 epochs, seeded): it writes
//! report.html, report.md, every PNG they link, results.json with the seed, config.toml; the
//! metrics are in range; a second run with the same seed gives identical metrics; `oddity
//! report` on the demo's model folder reproduces the demo's numbers.

use std::path::{Path, PathBuf};
use std::process::Command;

fn skip_gpu() -> bool {
    if std::env::var("ODDITY_SKIP_GPU_TESTS").as_deref() == Ok("1") {
        eprintln!("skipping GPU test (ODDITY_SKIP_GPU_TESTS=1)");
        return true;
    }
    false
}

fn oddity(args: &[&str], out: &Path) -> String {
    let run = Command::new(env!("CARGO_BIN_EXE_oddity")).args(args).arg("--out").arg(out).output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(run.status.success(), "{args:?} failed: {stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    stdout
}

const TINY: &[&str] = &[
    "demo", "--seed", "5", "--size", "32", "--train-images", "32", "--test-good", "6", "--test-defects", "3",
    "--epochs", "2", "--batch", "8", "--calibration-samples", "128", "--pixel-samples", "16", "--top", "3",
    // 8 calibration normals (a quarter of 32) reach a false-positive rate of 1/9 at best.
    "--fpr", "0.2", "--no-progress",
];

/// The targets of `prefix"…"` (HTML `src="…"`) or `](…)` (Markdown) links.
fn links(text: &str, open: &str, close: char) -> Vec<String> {
    text.split(open).skip(1).filter_map(|rest| rest.split(close).next()).map(str::to_string).collect()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn check_report(dir: &Path) -> Vec<String> {
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && !html.contains("<script"), "{html}");
    let (from_html, from_md) = (links(&html, "src=\"", '"'), links(&md, "](", ')'));
    // 3 plots + 3 examples, the same files in both documents.
    assert_eq!(from_html.len(), 6, "{from_html:?}");
    assert_eq!(from_html, from_md);
    for name in &from_html {
        assert!(!name.contains('/') && name.ends_with(".png"), "relative PNG link expected: {name}");
        let path = dir.join(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{name} is not a PNG");
        let (w, h) = image::image_dimensions(&path).unwrap();
        // Plots are 640x520 and larger; example strips are 3 panels of at least 192x192 px.
        assert!(w >= 576 && h >= 192 && w <= 2000 && h <= 1000, "{name}: {w}x{h}");
    }
    for want in ["Image AUROC", "Pixel AUROC", "AUPRO", "ECE before / after", "MCE before / after", "Seed", "Adapter", "unet-1x32"] {
        assert!(html.contains(want) && md.contains(want), "{want} missing");
    }
    from_html
}

#[test]
fn demo_writes_a_report_and_is_reproducible() {
    if skip_gpu() {
        return;
    }
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let (a, b) = (base.join("demo_a"), base.join("demo_b"));
    for d in [&a, &b] {
        let _ = std::fs::remove_dir_all(d);
    }
    let stdout = oddity(TINY, &a);
    for want in ["[1/4]", "[2/4]", "[3/4]", "[4/4]", "image AUROC", "report: "] {
        assert!(stdout.contains(want), "{want} missing from: {stdout}");
    }
    assert!(stdout.contains(&a.join("report.html").display().to_string()), "{stdout}");
    let images = check_report(&a);
    let results = json(&a.join("results.json"));
    assert_eq!(results["seed"], 5);
    assert_eq!(results["run"]["config"]["seed"], 5);
    assert_eq!(results["run"]["generated"]["seed"], 5);
    assert!(!results["adapter"].as_str().unwrap().is_empty());
    assert_eq!(results["images"].as_array().unwrap().len(), images.len());
    let m = &results["metrics"];
    for key in ["image_auroc", "pixel_auroc", "aupro", "test_fpr", "test_tpr"] {
        let v = m[key].as_f64().unwrap_or_else(|| panic!("{key}: {m}"));
        assert!((0.0..=1.0).contains(&v), "{key} = {v}");
    }
    for key in ["ece", "mce", "brier"] {
        for when in ["before", "after"] {
            let v = m[when][key].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{when} {key} = {v}");
        }
    }
    assert_eq!(m["before"]["bins"].as_array().unwrap().len(), 10);
    assert_eq!((m["normal_test_images"].as_u64(), m["anomalous_test_images"].as_u64()), (Some(6), Some(6)));
    assert!(a.join("config.toml").is_file() && a.join("model/calibration_scores.json").is_file());

    // Same seed, fresh folder: the same numbers.
    oddity(TINY, &b);
    assert_eq!(json(&b.join("results.json"))["metrics"], results["metrics"]);

    // `oddity report` on the demo's model folder: the same evaluation.
    let r = a.join("again");
    let model = a.join("model");
    let stdout = oddity(&["report", "--model", model.to_str().unwrap(), "--top", "3", "--fpr", "0.2"], &r);
    assert!(stdout.contains("report: "), "{stdout}");
    check_report(&r);
    let again = json(&r.join("results.json"));
    for key in ["image_auroc", "pixel_auroc", "aupro", "threshold"] {
        assert_eq!(again["metrics"][key], m[key], "{key}");
    }
    assert_eq!(again["metrics"]["after"]["ece"], m["after"]["ece"]);
}

#[test]
fn demo_argument_mistakes_are_one_line_errors_with_exit_code_2() {
    // --out in the test's folder: config.toml is written before the arguments are checked.
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("demo_bad_args");
    for (args, want) in [
        (&["demo", "--batch", "0"][..], "--batch"),
        (&["demo", "--class", "x"][..], "needs --data"),
        (&["demo", "--method", "head"][..], "platt or beta"),
        // 128 train images give 32 calibration normals; 0.01 needs 99.
        (&["demo", "--fpr", "0.01"][..], "needs at least 99 normal calibration images"),
        (&["demo", "--train-images", "32", "--fpr", "0.1"][..], "gives 8"),
    ] {
        let run = Command::new(env!("CARGO_BIN_EXE_oddity")).args(args).arg("--out").arg(&out).output().unwrap();
        assert_eq!(run.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report_no_model");
    let run = Command::new(env!("CARGO_BIN_EXE_oddity")).args(["report", "--model"]).arg(&dir).arg("--out").arg(&dir).output().unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("report_no_model"));
}
