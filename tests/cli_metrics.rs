//! `oddity metrics --scores FILE.csv`: output keys and values, and one test per bad input,
//! each asserting the message names the file and line, and the exit code is 2.

mod common;

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn oddity(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oddity"))
        .args(args)
        .output()
        .expect("running oddity")
}

fn metrics_json(path: &Path) -> Value {
    let out = oddity(&["metrics", "--scores", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

fn golden(file: &str, key: &str) -> f64 {
    let text = std::fs::read_to_string(common::fixture("metrics/golden.json")).unwrap();
    let g: Value = serde_json::from_str(&text).unwrap();
    g[file][key].as_f64().unwrap()
}

/// Runs on a CSV with `body`, expects exit code 2 and returns stderr.
fn failing(name: &str, body: &str) -> (String, String) {
    let dir = common::scratch_dir(&format!("cli_metrics_{name}"));
    let path = dir.join("scores.csv");
    std::fs::write(&path, body).unwrap();
    let out = oddity(&["metrics", "--scores", path.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        path.display().to_string(),
    )
}

#[test]
fn scores_give_auroc_and_n_only() {
    let v = metrics_json(&common::fixture("metrics/scores_ties.csv"));
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    assert_eq!(keys.len(), 2, "{v}");
    assert_eq!(v["n"], 400);
    let expected = golden("scores_ties.csv", "auroc");
    assert!(
        (v["auroc"].as_f64().unwrap() - expected).abs() < 1e-12,
        "{v} vs {expected}"
    );
}

#[test]
fn probabilities_give_calibration_too() {
    let v = metrics_json(&common::fixture("metrics/probs.csv"));
    assert_eq!(v["n"], 500);
    for (key, golden_key) in [
        ("auroc", "auroc"),
        ("ece", "ece_10"),
        ("mce", "mce_10"),
        ("brier", "brier"),
    ] {
        let expected = golden("probs.csv", golden_key);
        let got = v[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing in {v}"));
        assert!((got - expected).abs() < 1e-12, "{key}: {got} vs {expected}");
    }
}

#[test]
fn bins_option_changes_ece() {
    let path = common::fixture("metrics/probs.csv");
    let out = oddity(&[
        "metrics",
        "--scores",
        path.to_str().unwrap(),
        "--bins",
        "15",
    ]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!((v["ece"].as_f64().unwrap() - golden("probs.csv", "ece_15")).abs() < 1e-12);
}

#[test]
fn nan_score_names_the_row() {
    let (err, path) = failing("nan", "score,label\n0.5,1\n0.2,0\nNaN,1\n");
    assert!(
        err.contains(&path) && err.contains("line 4") && err.contains("NaN"),
        "{err}"
    );
}

#[test]
fn label_outside_0_1_names_the_row() {
    let (err, path) = failing("label", "score,label\n0.5,1\n0.2,2\n");
    assert!(
        err.contains(&path) && err.contains("line 3") && err.contains("label is '2'"),
        "{err}"
    );
}

#[test]
fn probability_outside_unit_interval_names_the_row() {
    let (err, _) = failing("prob", "prob,label\n0.5,1\n1.2,0\n");
    assert!(err.contains("line 3") && err.contains("1.2"), "{err}");
}

#[test]
fn non_numeric_and_missing_fields_name_the_row() {
    let (err, _) = failing("text", "score,label\n0.5,1\nabc,0\n");
    assert!(
        err.contains("line 3") && err.contains("'abc' is not a number"),
        "{err}"
    );
    let (err, _) = failing("short", "label,score\n1,0.5\n0\n");
    assert!(
        err.contains("line 3") && err.contains("no `score` field"),
        "{err}"
    );
}

#[test]
fn bad_header_and_single_class() {
    let (err, _) = failing("header", "a,b\n0.5,1\n");
    assert!(
        err.contains("line 1") && err.contains("score,label"),
        "{err}"
    );
    let (err, _) = failing("oneclass", "score,label\n0.5,1\n0.7,1\n");
    assert!(err.contains("AUROC is undefined"), "{err}");
}

#[test]
fn missing_file_is_named() {
    let out = oddity(&["metrics", "--scores", "/nonexistent/oddity/scores.csv"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/oddity/scores.csv"), "{err}");
}
