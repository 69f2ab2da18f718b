//! Interrupted writes: the real `oddity train` binary is killed with SIGKILL many times at seeded
//! random moments, most of them while it is writing its checkpoint (the temporary file exists),
//! and resumed each time. After every kill the checkpoint, if there is one, loads and passes its
//! checksum, its epoch count never goes back, and the temporary file of a cut save is never the
//! checkpoint; the last run finishes every epoch and leaves no temporary file behind.
//!
//! The data is a tiny generated set in the Fashion-MNIST file layout (40 training and 10 test
//! images per class), so each run starts fast and an epoch (4 steps) ends in a checkpoint write.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use oddity::checkpoint::Checkpoint;
use oddity::train::StoredConfig;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const KILLS: usize = 30;
// Enough epochs that 30 kills land before the run ends even on a fast, idle machine (60 were
// done after 10 kills in CI); the final resumed run finishes the rest.
const EPOCHS: usize = 240;
const SEED: u64 = 12;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Writes `<split>-images-idx3-ubyte.gz` and labels: `per_class` 28x28 images of each class,
/// a class-dependent stripe pattern plus seeded noise.
fn write_split(dir: &Path, split: &str, per_class: usize, rng: &mut ChaCha8Rng) {
    let n = per_class * 10;
    let mut images = vec![0, 0, 8, 3];
    for d in [n as u32, 28, 28] {
        images.extend_from_slice(&d.to_be_bytes());
    }
    let mut labels = vec![0, 0, 8, 1];
    labels.extend_from_slice(&(n as u32).to_be_bytes());
    for i in 0..n {
        let class = i % 10;
        labels.push(class as u8);
        for y in 0..28 {
            for x in 0..28 {
                let stripe = if (x + y * class) / 4 % 2 == 0 { 180 } else { 40 };
                images.push((stripe + rng.random_range(0..60)) as u8);
            }
        }
    }
    std::fs::write(dir.join(format!("{split}-images-idx3-ubyte.gz")), gzip(&images)).unwrap();
    std::fs::write(dir.join(format!("{split}-labels-idx1-ubyte.gz")), gzip(&labels)).unwrap();
}

fn start(data: &Path, out: &Path, resume: bool) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oddity"));
    cmd.args(["train", "--loss", "svdd", "--data", "fmnist", "--class", "trouser", "--batch", "8"])
        .args(["--epochs", &EPOCHS.to_string(), "--seed", "5", "--readback-every", "4", "--no-progress"])
        .arg("--data-root")
        .arg(data)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if resume {
        cmd.arg("--resume");
    }
    cmd.spawn().unwrap()
}

/// The checkpoint's completed epochs, checking that it loads (checksum included).
fn checked_epochs(path: &Path) -> Option<usize> {
    if !path.exists() {
        return None;
    }
    let ck = Checkpoint::load(path).unwrap_or_else(|e| panic!("checkpoint after a kill does not load: {e}"));
    Some(StoredConfig::from_checkpoint(&ck, path).unwrap().epochs_done)
}

#[test]
fn sigkill_at_random_moments_never_leaves_a_bad_checkpoint_and_resume_finishes() {
    if std::env::var("ODDITY_SKIP_GPU_TESTS").as_deref() == Ok("1") {
        eprintln!("skipping GPU test (ODDITY_SKIP_GPU_TESTS=1)");
        return;
    }
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kill_resume");
    let _ = std::fs::remove_dir_all(&root);
    let (data, out) = (root.join("data"), root.join("run"));
    std::fs::create_dir_all(&data).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    write_split(&data, "train", 40, &mut rng);
    write_split(&data, "t10k", 10, &mut rng);
    let ck_path = out.join("checkpoint.safetensors");

    let (mut kills, mut resumptions, mut mid_write, mut partial_temps, mut exited_first) = (0, 0, 0, 0, 0);
    let mut last_epochs = 0;
    let began = Instant::now();
    while kills < KILLS {
        let resume = ck_path.exists();
        resumptions += resume as usize;
        let mut child = start(&data, &out, resume);
        // Two kinds of moment: as soon as a checkpoint write starts (its temporary file appears)
        // or a seeded 0..400 µs later, in the middle of writing and syncing it; or a seeded time
        // into the run.
        let at_write = rng.random_bool(0.75);
        let extra = if rng.random_bool(0.5) { Duration::ZERO } else { Duration::from_micros(rng.random_range(0..400)) };
        let delay = Duration::from_millis(rng.random_range(0..1500));
        let t0 = Instant::now();
        let exited = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            let fire = if at_write { !Checkpoint::temp_files(&ck_path).is_empty() } else { t0.elapsed() >= delay };
            if fire || t0.elapsed() > Duration::from_secs(20) {
                if at_write && !extra.is_zero() {
                    std::thread::sleep(extra);
                }
                break None;
            }
            std::thread::sleep(Duration::from_micros(20));
        };
        if let Some(status) = exited {
            // Finished (or failed) before the kill: a failure is a test failure.
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            assert!(status.success(), "oddity train failed before its kill: {err}");
            exited_first += 1;
            break;
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        kills += 1;
        let temps = Checkpoint::temp_files(&ck_path);
        if !temps.is_empty() {
            mid_write += 1;
            // The cut write is a temporary file; most are incomplete. Either way the loader
            // reads only the checkpoint itself, checked below.
            partial_temps += temps.iter().filter(|t| Checkpoint::load(t).is_err()).count();
        }
        if let Some(epochs) = checked_epochs(&ck_path) {
            assert!(epochs >= last_epochs, "checkpoint went back from epoch {last_epochs} to {epochs}");
            last_epochs = epochs;
        }
    }
    // Let the last run finish.
    let resume = ck_path.exists();
    if exited_first == 0 {
        resumptions += resume as usize;
        let mut child = start(&data, &out, resume);
        let status = child.wait().unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert!(status.success(), "the final resumed run failed: {err}");
    }
    assert_eq!(checked_epochs(&ck_path), Some(EPOCHS));
    assert!(out.join("metrics.json").is_file());
    let left = Checkpoint::temp_files(&ck_path);
    assert!(left.is_empty(), "temporary files left behind: {left:?}");
    println!(
        "kill_resume: {kills} SIGKILLs ({mid_write} while a checkpoint write was under way, {partial_temps} \
         temporary files cut short), {resumptions} resumptions, every checkpoint valid, {EPOCHS} epochs done, \
         {:.1} s (seed {SEED})",
        began.elapsed().as_secs_f64()
    );
    assert!(kills >= KILLS / 2, "only {kills} kills before the run finished: the runs are too short to test");
    assert!(mid_write > 0, "no kill landed inside a checkpoint write");
}
