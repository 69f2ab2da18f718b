//! The fuzz loop of one target: replay the corpus, then mutate it until the time is up. Each
//! input runs inside `catch_unwind`; a panic's input and message are written to the crash
//! folder and the run goes on, so one run reports every distinct crash it finds.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::mutate::mutate;
use crate::targets::Target;

/// What one target's run did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub corpus: usize,
    pub mutated: usize,
    /// Inputs the parser accepted (the rest were errors, as they should be for most mutations).
    pub accepted: usize,
    pub crashes: Vec<Crash>,
    pub seconds: f64,
    /// Set when the target cannot run here (a GPU target without an adapter).
    pub skipped: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Crash {
    pub message: String,
    pub file: PathBuf,
}

static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Replaces the panic hook with one that records the message and location quietly; the
/// driver prints one line per distinct crash instead of a backtrace per input.
pub fn install_quiet_panic_hook() {
    panic::set_hook(Box::new(|info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(non-string panic payload)".into());
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        *LAST_PANIC.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{payload} at {location}"));
    }));
}

/// Corpus files of a target, sorted by name (empty when the folder is missing).
pub fn read_corpus(dir: &Path) -> std::io::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut files: Vec<PathBuf> = Vec::new();
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    files.into_iter().map(|p| std::fs::read(&p).map(|b| (p, b))).collect()
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Runs `target` for `seconds` after its corpus; crashes go to `crash_dir`.
pub fn fuzz(target: &Target, corpus_dir: &Path, crash_dir: &Path, seconds: f64, seed: u64) -> std::io::Result<Outcome> {
    let mut outcome = Outcome::default();
    if target.needs_gpu && crate::targets::gpu().is_none() {
        outcome.skipped = Some("no GPU adapter opens".into());
        return Ok(outcome);
    }
    let corpus: Vec<Vec<u8>> = read_corpus(corpus_dir)?.into_iter().map(|(_, b)| b).collect();
    let scratch = std::env::temp_dir().join(format!("oddity-fuzz-{}", std::process::id())).join(target.name);
    std::fs::create_dir_all(&scratch)?;
    let start = Instant::now();
    let deadline = Duration::from_secs_f64(seconds);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ fnv(target.name.as_bytes()));
    let mut seen = std::collections::BTreeSet::new();
    let mut run_one = |input: &[u8], outcome: &mut Outcome| -> std::io::Result<()> {
        match panic::catch_unwind(AssertUnwindSafe(|| (target.run)(&scratch, input))) {
            Ok(Ok(())) => outcome.accepted += 1,
            Ok(Err(_)) => {}
            Err(_) => {
                let message = LAST_PANIC.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or_default();
                std::fs::create_dir_all(crash_dir)?;
                let file = crash_dir.join(format!("crash-{:016x}", fnv(input)));
                std::fs::write(&file, input)?;
                std::fs::write(file.with_extension("txt"), format!("{message}\n"))?;
                // One line per distinct panic site; every input is kept.
                let site = message.rsplit(" at ").next().unwrap_or("").to_string();
                if seen.insert(site) {
                    eprintln!("CRASH {}: {message}\n  input: {}", target.name, file.display());
                }
                outcome.crashes.push(Crash { message, file });
            }
        }
        Ok(())
    };
    for input in &corpus {
        run_one(input, &mut outcome)?;
        outcome.corpus += 1;
    }
    if !corpus.is_empty() {
        while start.elapsed() < deadline {
            let base = &corpus[rng.random_range(0..corpus.len())];
            let input = mutate(&mut rng, base, &corpus);
            run_one(&input, &mut outcome)?;
            outcome.mutated += 1;
        }
    }
    outcome.seconds = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(outcome)
}
