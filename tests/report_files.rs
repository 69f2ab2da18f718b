//! The report writer on made-up evaluation results (no GPU): every file it names exists and is a
//! PNG of the stated size, the documents show the numbers of `oddity::metrics`, and bad inputs
//! are errors naming what is wrong.

use oddity::data::{ImageTensor, Mask};
use oddity::metrics::{auroc, ece, mce};
use oddity::report::{summarize, write_report, Example, ReportData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn data(seed: u64) -> ReportData {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let labels: Vec<u8> = (0..60).map(|i| u8::from(i % 3 == 0)).collect();
    let scores: Vec<f64> = labels.iter().map(|&l| rng.random_range(0.0..1.0) + 0.6 * f64::from(l)).collect();
    let sig = |z: f64| 1.0 / (1.0 + (-z).exp());
    let probs_before = scores.iter().map(|&s| sig(12.0 * (s - 0.5))).collect();
    let probs_after = scores.iter().map(|&s| sig(3.0 * (s - 0.9))).collect();
    let (h, w) = (24, 24);
    let examples = (0..2)
        .map(|i| {
            let mut mask = Mask::zeros(h, w);
            mask.data[10 * w + 5..10 * w + 15].fill(1);
            Example {
                name: format!("blob/{i:03}.png"),
                label: 1,
                score: 1.5 - i as f64 * 0.1,
                probability: 0.9,
                image: ImageTensor::from_vec((0..h * w).map(|p| (p % 7) as f32 / 7.0).collect(), 1, h, w).unwrap(),
                heatmap: mask.data.iter().map(|&m| f32::from(m) * 2.0 + 0.1).collect(),
                mask: Some(mask),
            }
        })
        .collect();
    ReportData {
        data: "made-up <scores> & masks".into(),
        model: "bergmann-ae-1x24".into(),
        adapter: "test adapter".into(),
        calibration: "beta".into(),
        seed,
        calibration_scores: (0..200).map(|_| rng.random_range(0.0..1.0)).collect(),
        scores,
        labels,
        probs_before,
        probs_after,
        fpr: 0.01,
        pixel_auroc: Some(0.91),
        aupro: Some(0.62),
        examples,
        heat_range: (0.0, 2.0),
    }
}

#[test]
fn report_files_exist_are_pngs_and_show_the_metrics() {
    if oddity::report::font::find_font().is_err() {
        // The plots need a system font; CI installs one (.ci/run), say so rather than pass silently.
        panic!("no TrueType font found: {}", oddity::report::font::find_font().unwrap_err());
    }
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report_files");
    let _ = std::fs::remove_dir_all(&dir);
    let d = data(3);
    let written = write_report(&dir, &d).unwrap();
    assert_eq!(written.images.len(), 3 + 2);
    for name in &written.images {
        let (w, h) = image::image_dimensions(dir.join(name)).unwrap();
        assert!(w >= 576 && h >= 192, "{name}: {w}x{h}");
    }
    // Example strips: 3 panels of 24 px x 8 plus two 8 px gaps.
    assert_eq!(image::image_dimensions(dir.join("example_00.png")).unwrap(), (3 * 192 + 16, 192));
    let html = std::fs::read_to_string(&written.html).unwrap();
    let md = std::fs::read_to_string(&written.markdown).unwrap();
    let s = &written.summary;
    assert_eq!(s.image_auroc, auroc(&d.scores, &d.labels).unwrap());
    assert_eq!(s.before.ece, ece(&d.probs_before, &d.labels, 10).unwrap());
    assert_eq!(s.after.mce, mce(&d.probs_after, &d.labels, 10).unwrap());
    for text in [&html, &md] {
        for want in [
            format!("{:.4}", s.image_auroc),
            format!("{:.4} / {:.4}", s.before.ece, s.after.ece),
            format!("{:.4} / {:.4}", s.before.mce, s.after.mce),
            "0.9100".to_string(),
            "0.6200".to_string(),
            format!("{:.6}", s.threshold),
        ] {
            assert!(text.contains(&want), "{want} missing");
        }
    }
    // The data label is escaped in HTML.
    assert!(html.contains("made-up &lt;scores&gt; &amp; masks"));
    // Re-running gives the same documents (no time stamps, seeded inputs).
    let again = write_report(&dir, &d).unwrap();
    assert_eq!(std::fs::read_to_string(&again.html).unwrap(), html);
}

#[test]
fn the_threshold_flags_about_the_target_rate_of_fresh_normal_scores() {
    // Normal test scores from the calibration scores' distribution: the flagged fraction is at
    // most the target on average (conformal guarantee); with 2000 normals and FPR 0.05 it stays
    // within 0.05 +- 0.02 (about 4 binomial standard deviations).
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut d = data(1);
    d.fpr = 0.05;
    d.calibration_scores = (0..999).map(|_| rng.random_range(0.0..1.0)).collect();
    d.labels = (0..2000).map(|i| u8::from(i < 10)).collect();
    d.scores = d.labels.iter().map(|&l| rng.random_range(0.0..1.0) + f64::from(l)).collect();
    d.probs_before = vec![0.5; 2000];
    d.probs_after = vec![0.5; 2000];
    let s = summarize(&d).unwrap();
    assert!((s.test_fpr - 0.05).abs() < 0.02, "test FPR {}", s.test_fpr);
    assert_eq!(s.test_tpr, 1.0);
}

#[test]
fn inconsistent_inputs_are_errors() {
    let mut d = data(2);
    d.labels.pop();
    assert!(summarize(&d).unwrap_err().to_string().contains("labels"));
    let mut d = data(2);
    d.calibration_scores[3] = f64::NAN;
    assert!(summarize(&d).unwrap_err().to_string().contains("index 3"));
    let mut d = data(2);
    d.examples[0].heatmap.pop();
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report_bad");
    assert!(write_report(&dir, &d).unwrap_err().to_string().contains("heatmap"));
}
