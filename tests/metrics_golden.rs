//! Metrics against golden values from `scripts/golden_metrics.py` (sklearn for AUROC and ROC
//! points, an independent numpy/scipy AUPRO, numpy ECE/MCE, sklearn Brier).

mod common;

use oddity::cli::metrics::read_score_csv;
use oddity::metrics::{
    aupro, auroc, pixel_auroc, pro_curve, roc_curve, CalibrationReport, PixelAuroc,
};
use serde_json::Value;

fn golden() -> Value {
    let text = std::fs::read_to_string(common::fixture("metrics/golden.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn nums(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(num).collect()
}

fn close(what: &str, got: f64, expected: f64, tol: f64) {
    assert!(
        (got - expected).abs() <= tol,
        "{what}: got {got:.17}, expected {expected:.17} (tolerance {tol:e})"
    );
}

struct PixelFixture {
    height: usize,
    width: usize,
    scores: Vec<f32>,
    masks: Vec<u8>,
}

fn pixel_fixture(name: &str) -> PixelFixture {
    let text = std::fs::read_to_string(common::fixture(&format!("metrics/{name}"))).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let (n, height, width) = (
        v["n"].as_u64().unwrap() as usize,
        v["height"].as_u64().unwrap() as usize,
        v["width"].as_u64().unwrap() as usize,
    );
    // the f64 values in the file are exactly the f32 scores
    let scores: Vec<f32> = nums(&v["scores"]).into_iter().map(|s| s as f32).collect();
    let masks: Vec<u8> = v["masks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_u64().unwrap() as u8)
        .collect();
    assert_eq!(scores.len(), n * height * width);
    PixelFixture {
        height,
        width,
        scores,
        masks,
    }
}

#[test]
fn auroc_matches_sklearn_with_heavy_ties() {
    let g = golden();
    let t = read_score_csv(&common::fixture("metrics/scores_ties.csv")).unwrap();
    assert!(!t.is_probability);
    assert_eq!(t.values.len(), 400);
    close(
        "AUROC",
        auroc(&t.values, &t.labels).unwrap(),
        num(&g["scores_ties.csv"]["auroc"]),
        1e-12,
    );
}

#[test]
fn auroc_matches_sklearn_on_continuous_scores() {
    let g = golden();
    let t = read_score_csv(&common::fixture("metrics/scores_continuous.csv")).unwrap();
    assert_eq!(t.values.len(), 300);
    close(
        "AUROC",
        auroc(&t.values, &t.labels).unwrap(),
        num(&g["scores_continuous.csv"]["auroc"]),
        1e-12,
    );
}

#[test]
fn roc_points_match_sklearn() {
    let g = &golden()["scores_ties.csv"];
    let t = read_score_csv(&common::fixture("metrics/scores_ties.csv")).unwrap();
    let curve = roc_curve(&t.values, &t.labels).unwrap();
    assert_eq!(curve.thresholds[0], f64::INFINITY);
    assert_eq!(
        curve.thresholds[1..],
        nums(&g["roc_thresholds_after_first"])[..]
    );
    let (fpr, tpr) = (nums(&g["roc_fpr"]), nums(&g["roc_tpr"]));
    assert_eq!(curve.fpr.len(), fpr.len());
    for i in 0..fpr.len() {
        close(&format!("fpr[{i}]"), curve.fpr[i], fpr[i], 1e-15);
        close(&format!("tpr[{i}]"), curve.tpr[i], tpr[i], 1e-15);
    }
    close("ROC area", curve.area(), num(&g["auroc"]), 1e-12);
}

#[test]
fn calibration_matches_reference() {
    let g = &golden()["probs.csv"];
    let t = read_score_csv(&common::fixture("metrics/probs.csv")).unwrap();
    assert!(t.is_probability);
    for k in [10usize, 15] {
        let r = CalibrationReport::new(&t.values, &t.labels, k).unwrap();
        close(
            &format!("ECE K={k}"),
            r.ece,
            num(&g[format!("ece_{k}")]),
            1e-12,
        );
        close(
            &format!("MCE K={k}"),
            r.mce,
            num(&g[format!("mce_{k}")]),
            1e-12,
        );
        close("Brier", r.brier, num(&g["brier"]), 1e-12);
        let bins = g[format!("bins_{k}")].as_array().unwrap();
        assert_eq!(r.bins.len(), k);
        for (j, (ours, theirs)) in r.bins.iter().zip(bins).enumerate() {
            assert_eq!(
                ours.count as u64,
                theirs["count"].as_u64().unwrap(),
                "bin {j} count"
            );
            match (ours.confidence, theirs["confidence"].as_f64()) {
                (None, None) => assert!(ours.frequency.is_none()),
                (Some(c), Some(e)) => {
                    close(&format!("bin {j} confidence"), c, e, 1e-12);
                    close(
                        &format!("bin {j} frequency"),
                        ours.frequency.unwrap(),
                        num(&theirs["frequency"]),
                        1e-12,
                    );
                }
                other => panic!("bin {j}: emptiness differs: {other:?}"),
            }
        }
    }
}

#[test]
fn pixel_auroc_matches_sklearn() {
    let g = golden();
    for name in ["pixels_ties.json", "pixels_continuous.json"] {
        let f = pixel_fixture(name);
        let expected = num(&g[name]["pixel_auroc"]);
        close(
            name,
            pixel_auroc(&f.scores, &f.masks).unwrap(),
            expected,
            1e-12,
        );
        // image by image through the streaming accumulator
        let mut acc = PixelAuroc::new();
        let plane = f.height * f.width;
        for (s, m) in f.scores.chunks(plane).zip(f.masks.chunks(plane)) {
            acc.add(s, m).unwrap();
        }
        close(name, acc.compute().unwrap(), expected, 1e-12);
    }
}

#[test]
fn aupro_matches_reference_to_1e6() {
    let g = golden();
    for name in ["pixels_ties.json", "pixels_continuous.json"] {
        let f = pixel_fixture(name);
        let curve = pro_curve(&f.scores, &f.masks, f.height, f.width, 1.0).unwrap();
        assert_eq!(
            curve.regions as u64,
            g[name]["regions"].as_u64().unwrap(),
            "{name}: regions"
        );
        for limit in ["0.3", "0.05", "1.0"] {
            let expected = num(&g[name][format!("aupro_{limit}")]);
            let got = aupro(
                &f.scores,
                &f.masks,
                f.height,
                f.width,
                limit.parse().unwrap(),
            )
            .unwrap();
            println!("{name} AUPRO@{limit}: oddity {got:.12} reference {expected:.12}");
            close(&format!("{name} AUPRO@{limit}"), got, expected, 1e-6);
            close(
                &format!("{name} AUPRO@{limit} (tight)"),
                got,
                expected,
                1e-12,
            );
        }
    }
}
