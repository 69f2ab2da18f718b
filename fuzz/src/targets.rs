//! The fuzz targets: one small function per parser of outside data. Each takes a scratch folder
//! and the input bytes, writes the bytes where the real loader expects a file and calls it.
//! An `Err` is the right answer to bad input; a panic is a bug (the driver catches it and keeps
//! the input). Invariants of what a parser returns are checked with `assert!`, so a wrong
//! success is caught as well.
//!
//! This file is also compiled into `tests/fuzz_regressions.rs` (`#[path]`), so it uses only
//! crates the `oddity` package depends on. A new target (e.g. TOML configs, once they exist) is
//! one function and one line in [`TARGETS`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use oddity::checkpoint::Checkpoint;
use oddity::cli::metrics::{compute_report, read_score_csv};
use oddity::data::fashion_mnist::{parse_idx, read_idx_gz};
use oddity::data::transforms::Normalization;
use oddity::data::{load_image, load_mask, FashionMnist, ImageTensor, MvtecCategory};
use oddity::kernels::Context;
use oddity::Result;

/// A parser under test: `(scratch folder, input bytes)`.
pub type TargetFn = fn(&Path, &[u8]) -> Result<()>;

pub struct Target {
    pub name: &'static str,
    pub about: &'static str,
    pub run: TargetFn,
    /// Runs only where a GPU context opens (lavapipe counts).
    pub needs_gpu: bool,
}

pub const TARGETS: &[Target] = &[
    Target { name: "image", about: "data::load_image on a PNG/JPEG file", run: image, needs_gpu: false },
    Target { name: "mask", about: "data::load_mask on a PNG/JPEG file", run: mask, needs_gpu: false },
    Target { name: "mvtec", about: "MvtecCategory::load on a folder whose images and mask are the input, then every sample's load_with_mask", run: mvtec, needs_gpu: false },
    Target { name: "idx", about: "fashion_mnist::parse_idx on raw IDX bytes", run: idx, needs_gpu: false },
    Target { name: "idx_gz", about: "fashion_mnist::read_idx_gz on a gzip file", run: idx_gz, needs_gpu: false },
    Target { name: "fmnist", about: "FashionMnist::load on a folder whose image files are the input (gzipped), then Sample::load", run: fmnist, needs_gpu: false },
    Target { name: "csv", about: "oddity metrics: read_score_csv and compute_report", run: csv, needs_gpu: false },
    Target { name: "checkpoint", about: "Checkpoint::load, check_matches and StoredConfig::from_checkpoint", run: checkpoint, needs_gpu: false },
    Target { name: "model_checkpoint", about: "train::load_model on a file whose checksum is repaired, so mutations reach the model loader", run: model_checkpoint, needs_gpu: true },
    Target { name: "normalization_json", about: "Normalization::load_json, then apply and invert on a small image", run: normalization_json, needs_gpu: false },
];

pub fn find(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// Writes the input where a loader will read it. A failing write is the harness failing, not
/// the parser, so it panics with the path.
fn put(dir: &Path, rel: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("harness: mkdir {}: {e}", parent.display()));
    }
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("harness: write {}: {e}", path.display()));
    path
}

fn fresh(dir: &Path, rel: &str) -> PathBuf {
    let d = dir.join(rel);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("harness: mkdir {}: {e}", d.display()));
    d
}

fn check_image(img: &ImageTensor) {
    assert!(img.channels == 1 || img.channels == 3, "channels {}", img.channels);
    assert!(img.height > 0 && img.width > 0, "size {}x{}", img.width, img.height);
    assert_eq!(img.data.len(), img.channels * img.height * img.width);
    assert!(img.data.iter().all(|v| (0.0..=1.0).contains(v)), "a loaded pixel outside [0, 1]");
}

fn image(dir: &Path, data: &[u8]) -> Result<()> {
    let img = load_image(&put(dir, "input.png", data))?;
    check_image(&img);
    Ok(())
}

fn mask(dir: &Path, data: &[u8]) -> Result<()> {
    let m = load_mask(&put(dir, "input_mask.png", data))?;
    assert_eq!(m.data.len(), m.height * m.width);
    assert!(m.data.iter().all(|&v| v <= 1));
    Ok(())
}

fn mvtec(dir: &Path, data: &[u8]) -> Result<()> {
    let root = fresh(dir, "category");
    put(&root, "train/good/000.png", data);
    put(&root, "test/good/000.png", data);
    put(&root, "test/crack/001.png", data);
    put(&root, "ground_truth/crack/001_mask.png", data);
    let cat = MvtecCategory::load(&root)?;
    assert_eq!((cat.train.len(), cat.test.len(), cat.masked_test_images()), (1, 2, 1));
    let mut first_error = None;
    for sample in cat.train.iter().chain(&cat.test) {
        match sample.load_with_mask() {
            Ok((img, mask)) => {
                check_image(&img);
                if let Some(m) = mask {
                    assert_eq!((m.height, m.width), (img.height, img.width));
                }
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn idx(_dir: &Path, data: &[u8]) -> Result<()> {
    let (dims, values) = parse_idx(Path::new("input.idx"), data.to_vec())?;
    assert_eq!(values.len(), dims.iter().product::<usize>());
    Ok(())
}

fn idx_gz(dir: &Path, data: &[u8]) -> Result<()> {
    let (dims, values) = read_idx_gz(&put(dir, "input-idx.gz", data))?;
    assert_eq!(values.len(), dims.iter().product::<usize>());
    Ok(())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).expect("harness: gzip in memory");
    enc.finish().expect("harness: gzip in memory")
}

/// IDX1 labels `0, 1, .., 9, 0, ..` for `count` images.
fn labels_idx(count: usize) -> Vec<u8> {
    let mut out = vec![0, 0, 8, 1];
    out.extend_from_slice(&(count as u32).to_be_bytes());
    out.extend((0..count).map(|i| (i % 10) as u8));
    out
}

fn fmnist(dir: &Path, data: &[u8]) -> Result<()> {
    let root = fresh(dir, "fmnist");
    // Labels that fit the images' declared count when it is small, so the loader gets past them.
    let count = match data.get(4..8) {
        Some(b) => (u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize).min(4096),
        None => 10,
    };
    let images = gzip(data);
    let labels = gzip(&labels_idx(count));
    for split in ["train", "t10k"] {
        put(&root, &format!("{split}-images-idx3-ubyte.gz"), &images);
        put(&root, &format!("{split}-labels-idx1-ubyte.gz"), &labels);
    }
    let set = FashionMnist::load(&root)?;
    for class in set.train.classes.iter().chain(&set.test.classes) {
        for sample in class.samples.iter().take(4) {
            let img = sample.load()?;
            assert_eq!(img.channels, 1);
            assert_eq!(img.data.len(), img.height * img.width);
        }
    }
    Ok(())
}

fn csv(dir: &Path, data: &[u8]) -> Result<()> {
    let table = read_score_csv(&put(dir, "scores.csv", data))?;
    assert_eq!(table.values.len(), table.labels.len());
    assert!(table.values.iter().all(|v| v.is_finite()));
    for bins in [1, 10] {
        let report = compute_report(&table, bins)?;
        assert!((0.0..=1.0).contains(&report.auroc), "auroc {}", report.auroc);
        assert_eq!(report.n, table.values.len());
        for v in [report.ece, report.mce, report.brier].into_iter().flatten() {
            assert!((0.0..=1.0).contains(&v), "calibration value {v}");
        }
    }
    Ok(())
}

fn checkpoint(dir: &Path, data: &[u8]) -> Result<()> {
    let path = put(dir, "checkpoint.safetensors", data);
    let ck = Checkpoint::load(&path)?;
    for t in ck.tensors.values() {
        assert_eq!(t.data.len(), t.shape.iter().product::<usize>());
    }
    let expected: Vec<(String, Vec<usize>)> = ck.tensors.iter().map(|(n, t)| (n.clone(), t.shape.clone())).collect();
    ck.check_matches(&expected, &path)?;
    oddity::train::StoredConfig::from_checkpoint(&ck, &path)?;
    Ok(())
}

/// The GPU context of the GPU targets, opened once; `None` when no adapter opens.
pub fn gpu() -> Option<&'static Context> {
    static CTX: OnceLock<Option<Context>> = OnceLock::new();
    CTX.get_or_init(|| Context::new().ok()).as_ref()
}

/// FNV-1a 64 over tensor names and bytes, the checksum `checkpoint.rs` stores.
fn checksum(tensors: &[(String, Vec<u8>)]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, bytes) in tensors {
        for &b in name.as_bytes().iter().chain([0u8].iter()).chain(bytes.iter()) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// Rewrites a safetensors file with the checksum of its tensors as they are now, so that a
/// mutated shape, value or metadata field gets past the checksum to the model loader. `None`
/// when the bytes are not safetensors or the metadata is not a JSON object.
pub fn repair_checksum(data: &[u8]) -> Option<Vec<u8>> {
    let st = safetensors::SafeTensors::deserialize(data).ok()?;
    let (_, header) = safetensors::SafeTensors::read_metadata(data).ok()?;
    let meta = header.metadata().as_ref()?.get("oddity")?;
    let mut json: serde_json::Value = serde_json::from_str(meta).ok()?;
    let mut tensors: Vec<(String, safetensors::tensor::TensorView)> = st.tensors();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let bytes: Vec<(String, Vec<u8>)> = tensors.iter().map(|(n, v)| (n.clone(), v.data().to_vec())).collect();
    json.as_object_mut()?.insert("checksum".into(), serde_json::Value::String(checksum(&bytes)));
    let info = std::collections::HashMap::from([("oddity".to_string(), json.to_string())]);
    safetensors::serialize(tensors, Some(info)).ok()
}

fn model_checkpoint(dir: &Path, data: &[u8]) -> Result<()> {
    let Some(ctx) = gpu() else { return Ok(()) };
    let repaired = repair_checksum(data);
    let path = put(dir, "model.safetensors", repaired.as_deref().unwrap_or(data));
    let (model, stored) = oddity::train::load_model(ctx, &path)?;
    assert_eq!(model.normalization.mean.len(), model.normalization.std.len());
    assert!(stored.epochs_done <= stored.train.epochs.max(stored.epochs_done));
    Ok(())
}

fn normalization_json(dir: &Path, data: &[u8]) -> Result<()> {
    let n = Normalization::load_json(&put(dir, "normalization.json", data))?;
    let channels = n.mean.len();
    if channels == 0 || channels > 64 {
        return Ok(());
    }
    let mut img = ImageTensor::from_vec((0..channels * 6).map(|i| i as f32 / 6.0).collect(), channels, 2, 3)?;
    n.apply(&mut img)?;
    n.invert(&mut img)?;
    Ok(())
}
