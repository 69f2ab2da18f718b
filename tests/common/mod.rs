//! Helpers shared by the integration tests: fixture paths, scratch folders under the target
//! directory, and the KolektorSDD copy extracted once into a cache.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// `tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(rel)
}

/// A fresh empty folder for one test, under cargo's per-target scratch space.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The shared data folder: `$ODDITY_DATA`, else `../shared/data` beside the project.
pub fn shared_data_dir() -> PathBuf {
    match std::env::var_os("ODDITY_DATA") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("shared")
            .join("data"),
    }
}

/// Extracts `tarball` (members `members`, all if empty) from the shared data folder into a
/// cache under the target directory once, and returns the cache folder. `None` (with a
/// printed message) when the tarball is absent.
pub fn extracted(tarball: &str, cache_name: &str, members: &[&str]) -> Option<PathBuf> {
    let archive = shared_data_dir().join(tarball);
    if !archive.is_file() {
        eprintln!(
            "skipped: {} not found (set ODDITY_DATA to the shared data folder)",
            archive.display()
        );
        return None;
    }
    // tests of one binary run on threads of one process: extract once
    static EXTRACT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = EXTRACT.lock().unwrap_or_else(|e| e.into_inner());
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("data-cache")
        .join(cache_name);
    let done = cache.join(".extracted");
    if !done.is_file() {
        let _ = std::fs::remove_dir_all(&cache);
        std::fs::create_dir_all(&cache).unwrap();
        let status = Command::new("tar")
            .arg("xzf")
            .arg(&archive)
            .arg("-C")
            .arg(&cache)
            .args(members)
            .status()
            .expect("running tar");
        assert!(status.success(), "tar xzf {} failed", archive.display());
        std::fs::write(&done, b"ok").unwrap();
    }
    Some(cache)
}

/// Writes a `width x height` RGB or gray PNG/JPEG (by extension) with a simple pattern.
pub fn write_image(path: &Path, width: u32, height: u32, gray: bool, seed: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    if gray {
        let img = image::GrayImage::from_fn(width, height, |x, y| {
            image::Luma([(x * 7 + y * 3 + seed as u32) as u8])
        });
        img.save(path).unwrap();
    } else {
        let img = image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([
                (x * 5 + seed as u32) as u8,
                (y * 9) as u8,
                seed.wrapping_mul(13),
            ])
        });
        img.save(path).unwrap();
    }
}

/// Writes a 0/255 mask PNG with a filled rectangle.
pub fn write_mask(path: &Path, width: u32, height: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let img = image::GrayImage::from_fn(width, height, |x, y| {
        image::Luma([
            if x >= width / 4 && x < width / 2 && y >= height / 4 && y < height / 2 {
                255
            } else {
                0
            },
        ])
    });
    img.save(path).unwrap();
}

/// Generates the procedural texture data set `spec` under `dir/data` (category `tex`) and trains
/// one epoch of the 32x32 SSIM autoencoder on it with `oddity train` into `dir/model`; returns
/// (data root, model folder). The model predicts; its calibration files are the caller's.
pub fn trained_texture_ssim(dir: &Path, spec: &oddity::synth::textures::TextureDataset) -> (PathBuf, PathBuf) {
    let data = dir.join("data");
    oddity::synth::textures::write_texture_dataset(&data, "tex", spec).unwrap();
    let model = dir.join("model");
    let run = Command::new(env!("CARGO_BIN_EXE_oddity"))
        .args(["train", "--loss", "ssim", "--class", "tex", "--size", "32", "--epochs", "1", "--batch", "8", "--no-progress"])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&model)
        .output()
        .unwrap();
    assert!(run.status.success(), "train failed: {}", String::from_utf8_lossy(&run.stderr));
    (data, model)
}

/// Runs `oddity train --no-progress <args>` through the library entry (no process); returns
/// what it printed.
pub fn train_cli(args: &[&str]) -> oddity::Result<String> {
    use clap::Parser;
    let mut all = vec!["oddity", "train", "--no-progress"];
    all.extend_from_slice(args);
    let cli = oddity::cli::Cli::try_parse_from(&all).map_err(|e| oddity::Error::InvalidArgument(e.to_string()))?;
    let oddity::cli::Command::Train(args) = cli.command else { unreachable!("parsed a train command") };
    let mut out = Vec::new();
    oddity::cli::train::run(&args, &mut out)?;
    Ok(String::from_utf8(out).expect("the CLI prints UTF-8"))
}
