//! Replays the fuzz corpora through the same target functions `oddity-fuzz` runs
//! (`fuzz/src/targets.rs`, compiled in here): every committed seed (`fuzz/corpus/**`) must run
//! without a panic, and every input that once crashed a parser (`fuzz/regressions/**`) must now
//! be an error naming the file. Also checks the decompression-bomb and oversized-IDX seeds give
//! errors that name the declared size and the limit.

#[path = "../fuzz/src/targets.rs"]
#[allow(dead_code)]
mod targets;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz_regressions").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `(target, file)` for every file under `root/<target>/`.
fn inputs(root: &Path) -> Vec<(&'static targets::Target, PathBuf)> {
    let mut out = Vec::new();
    for t in targets::TARGETS {
        let Ok(entries) = std::fs::read_dir(root.join(t.name)) else { continue };
        let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
        files.sort();
        out.extend(files.into_iter().map(|f| (t, f)));
    }
    out
}

fn skip_gpu(t: &targets::Target) -> bool {
    t.needs_gpu && std::env::var("ODDITY_SKIP_GPU_TESTS").as_deref() == Ok("1")
}

#[test]
fn every_committed_crash_input_is_now_an_error() {
    let found = inputs(&fuzz_dir().join("regressions"));
    assert!(!found.is_empty(), "no regression inputs under fuzz/regressions");
    for (t, file) in found {
        if skip_gpu(t) {
            continue;
        }
        let data = std::fs::read(&file).unwrap();
        let dir = scratch(t.name);
        let result = catch_unwind(AssertUnwindSafe(|| (t.run)(&dir, &data)))
            .unwrap_or_else(|_| panic!("{} still panics on {}", t.name, file.display()));
        let err = result.expect_err(&format!("{} accepted the crash input {}", t.name, file.display()));
        println!("{} {}: {err}", t.name, file.display());
    }
}

#[test]
fn every_seed_runs_without_a_panic() {
    let found = inputs(&fuzz_dir().join("corpus"));
    assert!(found.len() > 50, "only {} seeds under fuzz/corpus", found.len());
    let mut accepted = 0;
    for (t, file) in &found {
        if skip_gpu(t) {
            continue;
        }
        let data = std::fs::read(file).unwrap();
        let dir = scratch(t.name);
        let result = catch_unwind(AssertUnwindSafe(|| (t.run)(&dir, &data)))
            .unwrap_or_else(|_| panic!("{} panics on {}", t.name, file.display()));
        // Seeds named ok_* are valid files of their format and must load.
        let name = file.file_name().unwrap().to_string_lossy();
        if name.starts_with("ok_") && !["checkpoint", "model_checkpoint"].contains(&t.name) {
            result.unwrap_or_else(|e| panic!("{} rejects the valid seed {}: {e}", t.name, file.display()));
            accepted += 1;
        }
    }
    println!("{} seeds, {accepted} valid ones loaded", found.len());
}

#[test]
fn decompression_bombs_are_refused_before_decoding_naming_size_and_limit() {
    let dir = scratch("bombs");
    for (name, size) in
        [("bomb_65535x65535.png", "65535x65535"), ("bomb_1x4000000000.png", "1x4000000000"), ("bomb_65500x65500.jpg", "65500x65500")]
    {
        let file = dir.join(name);
        std::fs::copy(fuzz_dir().join("corpus/image").join(name), &file).unwrap();
        let err = oddity::data::load_image(&file).unwrap_err().to_string();
        assert!(err.contains(name) && err.contains(&format!("declares {size} pixels")), "{err}");
        assert!(err.contains("16384 per side") && err.contains("67108864 pixels"), "{err}");
        let err = oddity::data::load_mask(&file).unwrap_err().to_string();
        assert!(err.contains(&format!("declares {size} pixels")), "{err}");
    }
}

#[test]
fn idx_headers_declaring_too_much_data_are_refused_before_reading_it() {
    let dir = scratch("idx");
    for (name, dims) in [("huge_dims_4gb", "[65536, 256, 256]"), ("huge_dims_overflow", "[4294967295, 4294967295, 4294967295]")] {
        let file = dir.join(format!("{name}.idx.gz"));
        std::fs::copy(fuzz_dir().join("corpus/idx_gz").join(format!("{name}.idx.gz")), &file).unwrap();
        let err = oddity::data::fashion_mnist::read_idx_gz(&file).unwrap_err().to_string();
        assert!(err.contains(&format!("dimensions {dims} declare more than the 1073741824 bytes")), "{err}");
        assert!(err.contains(&format!("{name}.idx.gz")), "{err}");
    }
}
