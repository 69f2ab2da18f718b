//! `oddity demo` end to end on a small setting: it trains, scores, and writes a results file that
//! records the seed and a checkpoint that loads back.

use std::process::Command;

#[test]
fn demo_trains_scores_and_records_its_seed() {
    if std::env::var("ODDITY_SKIP_GPU_TESTS").as_deref() == Ok("1") {
        eprintln!("skipping GPU test (ODDITY_SKIP_GPU_TESTS=1)");
        return;
    }
    let out = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("demo_run");
    let _ = std::fs::remove_dir_all(&out);
    let run = Command::new(env!("CARGO_BIN_EXE_oddity"))
        .args(["demo", "--seed", "3", "--train", "96", "--test", "48", "--epochs", "12", "--batch", "32", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "demo failed: {stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("test AUROC"), "{stdout}");
    let results: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["seed"], 3);
    let auroc = results["auroc"].as_f64().unwrap();
    // Gratings against 1/f noise separate easily; a broken pipeline scores near 0.5.
    assert!(auroc > 0.9, "AUROC {auroc}");
    let ck = oddity::checkpoint::Checkpoint::load(&out.join("model.safetensors")).unwrap();
    assert_eq!(ck.meta.seed, 3);
    assert_eq!(ck.tensors["svdd.center"].shape, vec![32]);
}

#[test]
fn demo_rejects_a_zero_batch_with_a_clear_message() {
    let run = Command::new(env!("CARGO_BIN_EXE_oddity")).args(["demo", "--batch", "0"]).output().unwrap();
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("--batch"), "{stderr}");
}
