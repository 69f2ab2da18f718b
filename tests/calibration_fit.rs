//! Platt scaling and Beta calibration (thesis §3.2): recovery of known parameters, lower ECE on a
//! miscalibrated score set, Beta's ranking on overconfident logits, the GPU form of each map, and
//! the JSON file beside a model.

use oddity::autograd::Var;
use oddity::calibration::beta::{features_from_logit, features_from_probability};
use oddity::calibration::{logistic_loss, sigmoid, Beta, Calibrator, Method, Platt};
use oddity::kernels::testing::{assert_close, TestRng};
use oddity::kernels::{gpu_or_skip, Tensor};
use oddity::metrics::{auroc, ece};

/// `n` logits uniform in [lo, hi) and labels drawn from Bernoulli(σ(true_logit(z))).
fn sample(rng: &mut TestRng, n: usize, lo: f64, hi: f64, true_logit: impl Fn(f64) -> f64) -> (Vec<f64>, Vec<u8>) {
    let z: Vec<f64> = (0..n).map(|_| rng.uniform(lo, hi)).collect();
    let y = z.iter().map(|&v| (rng.uniform(0.0, 1.0) < sigmoid(true_logit(v))) as u8).collect();
    (z, y)
}

fn mean_loss(logits: &[f64], labels: &[u8], map: impl Fn(f64) -> f64) -> f64 {
    logits.iter().zip(labels).map(|(&z, &y)| logistic_loss(map(z), y)).sum::<f64>() / logits.len() as f64
}

#[test]
fn platt_recovers_known_parameters() {
    let mut rng = TestRng::new(1);
    let (a, b) = (1.7, -0.8);
    let (z, y) = sample(&mut rng, 50_000, -6.0, 6.0, |z| a * z + b);
    let fit = Platt::fit(&z, &y).unwrap();
    // Maximum-likelihood standard errors (inverse Fisher information) at n = 50,000 are 0.019
    // for a and 0.022 for b; the tolerances are 4 of them.
    assert!((fit.a - a).abs() < 0.076 && (fit.b - b).abs() < 0.088, "fitted a = {}, b = {}", fit.a, fit.b);
    let summary = fit.fit.clone().unwrap();
    assert!(summary.converged, "{summary:?}");
    assert_eq!((summary.samples, summary.anomalies), (50_000, y.iter().filter(|&&v| v == 1).count()));
    // The log line `oddity calibrate` prints: parameters and the fit, not a Debug dump.
    let line = oddity::calibration::Calibrator::Platt(fit.clone()).to_string();
    assert!(line.starts_with(&format!("Platt: sigmoid({:.6} z + {:.6}) (50000 samples, ", fit.a, fit.b)), "{line}");
    assert!(line.contains("L-BFGS iterations)") && !line.contains("not converged"), "{line}");
    // The fit is the minimiser: no worse than the true map on the same sample.
    assert!(summary.loss <= mean_loss(&z, &y, |v| a * v + b) + 1e-12);
    assert!((summary.loss - mean_loss(&z, &y, |v| fit.calibrated_logit(v))).abs() < 1e-12);
}

#[test]
fn platt_handles_large_logit_scales() {
    // Logits of an overconfident network (scale ~50): standardisation keeps L-BFGS converging.
    let mut rng = TestRng::new(2);
    let (a, b) = (0.04, 0.5);
    let (z, y) = sample(&mut rng, 20_000, -150.0, 150.0, |z| a * z + b);
    let fit = Platt::fit(&z, &y).unwrap();
    // Standard errors at n = 20,000: 5.6e-4 for a, 0.025 for b; tolerances ~7 and 6 of them.
    assert!((fit.a - a).abs() < 4e-3 && (fit.b - b).abs() < 0.15, "fitted a = {}, b = {}", fit.a, fit.b);
    assert!(fit.fit.unwrap().converged);
}

#[test]
fn beta_recovers_known_parameters() {
    let mut rng = TestRng::new(3);
    let (a, b, c) = (0.6, 1.4, 0.4);
    let truth = Beta::new(a, b, c);
    let (z, y) = sample(&mut rng, 50_000, -6.0, 6.0, |z| truth.calibrated_logit(z));
    let fit = Beta::fit(&z, &y).unwrap();
    // Standard errors (inverse Fisher information) at n = 50,000: 0.014 for a, 0.034 for b,
    // 0.041 for c; the tolerances are 4 of them.
    assert!(
        (fit.a - a).abs() < 0.055 && (fit.b - b).abs() < 0.14 && (fit.c - c).abs() < 0.165,
        "fitted a = {}, b = {}, c = {}",
        fit.a,
        fit.b,
        fit.c
    );
    let summary = fit.fit.clone().unwrap();
    assert!(summary.converged && summary.loss <= mean_loss(&z, &y, |v| truth.calibrated_logit(v)) + 1e-12);
}

#[test]
fn beta_drops_a_negative_coefficient_and_refits() {
    // Truths with a < 0 (then b < 0): the unconstrained optimum breaks a, b >= 0, so the fit must
    // drop that feature, as the betacal package does, and keep the other one positive.
    let mut rng = TestRng::new(4);
    for (a, b, c) in [(-1.0, 1.5, -0.5), (1.2, -0.8, 0.3)] {
        let truth = Beta::new(a, b, c);
        let (z, y) = sample(&mut rng, 5000, -6.0, 6.0, |z| truth.calibrated_logit(z));
        let fit = Beta::fit(&z, &y).unwrap();
        if a < 0.0 {
            assert!(fit.a == 0.0 && fit.b > 0.0, "truth {a}, {b}: fitted a = {}, b = {}", fit.a, fit.b);
        } else {
            assert!(fit.b == 0.0 && fit.a > 0.0, "truth {a}, {b}: fitted a = {}, b = {}", fit.a, fit.b);
        }
        // The refit is the best one-feature map: no worse than the truth's kept term alone.
        let summary = fit.fit.clone().unwrap();
        let kept = if a < 0.0 { Beta::new(0.0, b, c) } else { Beta::new(a, 0.0, c) };
        assert!(summary.converged && summary.loss <= mean_loss(&z, &y, |v| kept.calibrated_logit(v)) + 1e-12);
        // The constrained map is monotone in z.
        let grid: Vec<f64> = (0..200).map(|i| -10.0 + 0.1 * i as f64).collect();
        assert!(grid.windows(2).all(|w| fit.probability(w[1]) >= fit.probability(w[0])));
    }
}

#[test]
fn calibration_lowers_ece_of_a_miscalibrated_score_set() {
    // The model's logit is 4 z + 1 where the true log-odds are z: overconfident and biased.
    let mut rng = TestRng::new(5);
    let model = |z: f64| 4.0 * z + 1.0;
    let draw = |rng: &mut TestRng, n| {
        let (z, y) = sample(rng, n, -4.0, 4.0, |z| z);
        (z.iter().map(|&v| model(v)).collect::<Vec<f64>>(), y)
    };
    let (cal_logits, cal_labels) = draw(&mut rng, 10_000);
    let (test_logits, test_labels) = draw(&mut rng, 10_000);
    let raw: Vec<f64> = test_logits.iter().map(|&v| sigmoid(v)).collect();
    let raw_ece = ece(&raw, &test_labels, 15).unwrap();
    assert!(raw_ece > 0.08, "the synthetic model should be miscalibrated, ECE {raw_ece}");
    for method in [Method::Platt, Method::Beta] {
        let cal = Calibrator::fit(method, &cal_logits, &cal_labels).unwrap();
        let probs = cal.apply(&test_logits);
        let cal_ece = ece(&probs, &test_labels, 15).unwrap();
        println!("{method:?}: ECE {raw_ece:.4} -> {cal_ece:.4}");
        // With 10,000 test samples in 15 bins the ECE of a perfectly calibrated map is ~0.01.
        assert!(cal_ece < 0.025 && cal_ece < raw_ece / 4.0, "{method:?}: ECE {raw_ece} -> {cal_ece}");
        // Monotone maps keep the ranking.
        let (a0, a1) = (auroc(&raw, &test_labels).unwrap(), auroc(&probs, &test_labels).unwrap());
        assert!((a0 - a1).abs() < 1e-9, "{method:?}: AUROC {a0} -> {a1}");
    }
}

/// Overconfident normals and anomalies: every σ(z) rounds to exactly 1 in `eta`'s precision.
fn overconfident(rng: &mut TestRng, normal: (f64, f64), anomalous: (f64, f64)) -> (Vec<f64>, Vec<u8>) {
    let mut z = Vec::new();
    let mut y = Vec::new();
    for _ in 0..1000 {
        z.push(rng.uniform(normal.0, normal.1) as f32 as f64);
        y.push(0);
        z.push(rng.uniform(anomalous.0, anomalous.1) as f32 as f64);
        y.push(1);
    }
    (z, y)
}

#[test]
fn beta_from_logits_keeps_the_ranking_that_rounded_probabilities_lose() {
    let mut rng = TestRng::new(6);
    // f64: σ(z) = 1 exactly for z > ~37; f32: for z > ~17.
    // (precision, normal logit range, anomalous logit range, η as the model would round it)
    type Case = (&'static str, (f64, f64), (f64, f64), fn(f64) -> f64);
    let cases: [Case; 2] = [
        ("f64", (40.0, 55.0), (45.0, 60.0), sigmoid),
        ("f32", (20.0, 35.0), (25.0, 40.0), |z| sigmoid(z) as f32 as f64),
    ];
    for (precision, normal, anomalous, eta_of) in cases {
        let (z, y) = overconfident(&mut rng, normal, anomalous);
        let eta: Vec<f64> = z.iter().map(|&v| eta_of(v)).collect();
        assert!(eta.iter().all(|&e| e == 1.0), "{precision}: every eta should round to 1");
        let raw_auroc = auroc(&z, &y).unwrap();
        assert!(raw_auroc > 0.75, "{precision}: the logits rank well, AUROC {raw_auroc}");

        // Ours: features from the logit.
        let ours = Beta::fit(&z, &y).unwrap();
        let ours_scores: Vec<f64> = z.iter().map(|&v| ours.probability(v)).collect();
        let ours_logits: Vec<f64> = z.iter().map(|&v| ours.calibrated_logit(v)).collect();
        assert!(ours.a + ours.b > 0.0, "{precision}: {ours:?}");
        let ours_auroc = auroc(&ours_logits, &y).unwrap();
        assert!((ours_auroc - raw_auroc).abs() < 1e-9, "{precision}: AUROC {raw_auroc} -> {ours_auroc}");
        // The calibrated probabilities are no longer saturated at 1: they spread over (0, 1).
        let ours_ece = ece(&ours_scores, &y, 10).unwrap();
        let (lo, hi) = ours_scores.iter().fold((1.0f64, 0.0f64), |(l, h), &p| (l.min(p), h.max(p)));

        // betacal's route: features from the rounded eta, clipped to [eps, 1 - eps].
        let from_eta = Beta::fit_probabilities(&eta, &y).unwrap();
        let eta_logits: Vec<f64> = eta.iter().map(|&e| from_eta.calibrated_logit_from_probability(e)).collect();
        let eta_scores: Vec<f64> = eta_logits.iter().map(|&v| sigmoid(v)).collect();
        let eta_auroc = auroc(&eta_logits, &y).unwrap();
        let eta_ece = ece(&eta_scores, &y, 10).unwrap();
        println!(
            "{precision}: AUROC logits {raw_auroc:.4}, Beta from logits {ours_auroc:.4} (ECE {ours_ece:.4}), \
             Beta from rounded eta {eta_auroc:.4} (ECE {eta_ece:.4})"
        );
        // Every sample has the same features, so every sample gets the same score: chance level.
        assert!(eta_logits.iter().all(|&v| v == eta_logits[0]));
        assert_eq!(eta_auroc, 0.5, "{precision}");
        assert!(lo < 0.2 && hi > 0.8, "{precision}: calibrated probabilities in [{lo}, {hi}]");
    }
    // The features themselves: exact from the logit, constant from the rounded eta.
    assert_eq!(features_from_logit(50.0).1, 50.0);
    assert_eq!(features_from_probability(sigmoid(50.0)), features_from_probability(sigmoid(40.0)));
}

#[test]
fn fitting_rejects_bad_input_naming_it() {
    let err = Platt::fit(&[0.0, 1.0, f64::NAN], &[0, 1, 1]).unwrap_err().to_string();
    assert!(err.contains("index 2") && err.contains("NaN"), "{err}");
    let err = Beta::fit(&[0.0, 1.0], &[0, 2]).unwrap_err().to_string();
    assert!(err.contains("index 1") && err.contains('2'), "{err}");
    let err = Platt::fit(&[0.0, 1.0], &[1, 1]).unwrap_err().to_string();
    assert!(err.contains("both") && err.contains("0 normal"), "{err}");
    let err = Platt::fit(&[0.0, 1.0, 2.0], &[0, 1]).unwrap_err().to_string();
    assert!(err.contains('3') && err.contains('2'), "{err}");
    let err = Beta::fit_probabilities(&[0.5, 1.5], &[0, 1]).unwrap_err().to_string();
    assert!(err.contains("index 1") && err.contains("1.5"), "{err}");
    let err = "isotonic".parse::<Method>().unwrap_err().to_string();
    assert!(err.contains("isotonic"), "{err}");
}

#[test]
fn calibrator_round_trips_through_json_and_rejects_bad_files() {
    let dir = std::env::temp_dir().join(format!("oddity-calibration-fit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = TestRng::new(7);
    let (z, y) = sample(&mut rng, 2000, -5.0, 5.0, |z| 0.7 * z + 0.2);
    for method in [Method::Platt, Method::Beta] {
        let cal = Calibrator::fit(method, &z, &y).unwrap();
        let path = dir.join(format!("{method:?}.json"));
        cal.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"format\": \"oddity-calibrator\"") && text.contains(&format!("{method:?}").to_lowercase()));
        let back = Calibrator::load(&path).unwrap();
        assert_eq!(back, cal, "{method:?}: the parameters are stored exactly");
        assert_eq!(back.method(), method);
        assert!(back.fit_summary().is_some());
    }
    let bad = dir.join("negative.json");
    std::fs::write(&bad, r#"{"format": "oddity-calibrator", "version": 1, "method": "beta", "a": -1.0, "b": 1.0, "c": 0.0}"#).unwrap();
    let err = Calibrator::load(&bad).unwrap_err().to_string();
    assert!(err.contains("negative.json") && err.contains("a = -1"), "{err}");
    std::fs::write(&bad, r#"{"format": "oddity-calibrator", "version": 1, "method": "isotonic"}"#).unwrap();
    let err = Calibrator::load(&bad).unwrap_err().to_string();
    assert!(err.contains("negative.json") && err.contains("isotonic"), "{err}");
    std::fs::write(&bad, r#"{"format": "something-else", "version": 1, "method": "platt", "a": 1.0, "b": 0.0}"#).unwrap();
    let err = Calibrator::load(&bad).unwrap_err().to_string();
    assert!(err.contains("something-else"), "{err}");
    let err = Calibrator::load(&dir.join("missing.json")).unwrap_err().to_string();
    assert!(err.contains("missing.json"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn gpu_form_matches_the_cpu_map() {
    let ctx = gpu_or_skip!();
    let mut rng = TestRng::new(8);
    let z = rng.vec(77, -60.0, 60.0); // includes logits whose σ rounds to 0 or 1 in f32
    let zt = Var::constant(Tensor::from_slice(&ctx, &[7, 11], &z.iter().map(|&v| v as f32).collect::<Vec<_>>()).unwrap());
    for cal in [Calibrator::Platt(Platt::new(0.75, -1.25)), Calibrator::Beta(Beta::new(0.5, 1.5, -0.25))] {
        let got = cal.apply_var(&zt).unwrap().value().to_vec().unwrap();
        let want: Vec<f64> = z.iter().map(|&v| cal.calibrated_logit(v)).collect();
        // f32 products of values up to ~90 and f32 softplus: 1e-5 relative plus 1e-5 absolute.
        assert_close(&format!("{:?}", cal.method()), &got, &want, 1e-5, 1e-5);
    }
}

/// Synthetic anomalies that score *lower* than the normal images (a 1-epoch SSIM model with
/// spectral anomalies): under a, b >= 0 Beta has nothing to fit and returns a constant, and
/// Platt fits a negative slope that reverses the ranking. Both are the correct optimum of their
/// constrained / unconstrained problem, so neither is an error, but each must say so: a
/// warning in the fit summary, kept in the calibrator's JSON.
#[test]
fn reversed_anomaly_scores_are_reported_not_hidden() {
    let mut rng = TestRng::new(11);
    // Normal logits around +1, anomalies around -1: anomalies look *more* normal.
    let z: Vec<f64> = (0..4000).map(|i| if i < 2000 { rng.uniform(0.0, 2.0) } else { rng.uniform(-2.0, 0.0) } + rng.uniform(-0.5, 0.5)).collect();
    let y: Vec<u8> = (0..4000).map(|i| u8::from(i >= 2000)).collect();

    let beta = Beta::fit(&z, &y).unwrap();
    assert_eq!((beta.a, beta.b), (0.0, 0.0), "{beta:?}");
    let cal = Calibrator::Beta(beta.clone());
    assert_eq!(cal.warnings().len(), 1, "{:?}", cal.warnings());
    assert!(cal.warnings()[0].contains("collapsed to a constant"), "{:?}", cal.warnings());
    let probs = cal.apply(&z);
    assert!(probs.iter().all(|&p| (p - probs[0]).abs() < 1e-12), "a constant map");
    assert!((probs[0] - 0.5).abs() < 1e-6, "the balanced base rate, got {}", probs[0]);

    let platt = Platt::fit(&z, &y).unwrap();
    assert!(platt.a < 0.0, "{platt:?}");
    let cal = Calibrator::Platt(platt);
    assert!(cal.warnings().iter().any(|w| w.contains("negative") && w.contains("reverses")), "{:?}", cal.warnings());
    let base = auroc(&z, &y).unwrap();
    let calibrated = auroc(&cal.apply(&z), &y).unwrap();
    assert!(base < 0.1 && (calibrated - (1.0 - base)).abs() < 1e-9, "base {base}, calibrated {calibrated}");

    // The warning lives in calibration.json (inside the fit summary) and comes back on load.
    let dir = std::env::temp_dir().join(format!("oddity_reversed_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("calibration.json");
    Calibrator::Beta(beta).save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"warnings\"") && text.contains("collapsed to a constant"), "{text}");
    assert_eq!(Calibrator::load(&path).unwrap().warnings().len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();

    // Ordinary scores carry no warning.
    let (z, y) = sample(&mut rng, 4000, -4.0, 4.0, |z| 1.3 * z - 0.2);
    assert!(Calibrator::fit(Method::Platt, &z, &y).unwrap().warnings().is_empty());
    assert!(Calibrator::fit(Method::Beta, &z, &y).unwrap().warnings().is_empty());
}
