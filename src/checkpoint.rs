//! Checkpoints: every parameter and buffer of a model (running statistics, spectral-norm vectors,
//! SVDD centre, input normalisation) as safetensors, with the architecture name, seed and training
//! config as JSON metadata.
//!
//! Saving writes a temporary file in the same folder and renames it over the target, so an
//! interrupted save never leaves a half-written checkpoint where the last good one was. A checksum
//! of the tensor bytes is stored in the metadata, so a corrupted (not only truncated) file is an
//! error on load.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Metadata key under which oddity stores its JSON.
const META_KEY: &str = "oddity";
const FORMAT_VERSION: u32 = 1;

/// A tensor held on the CPU: row-major f32 data and its shape.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl HostTensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<HostTensor> {
        let numel: usize = shape.iter().product();
        if numel != data.len() {
            return Err(Error::Shape {
                what: "host tensor".into(),
                expected: format!("{numel} values for shape {shape:?}"),
                got: format!("{} values", data.len()),
            });
        }
        Ok(HostTensor { shape, data })
    }
}

/// What a checkpoint records besides tensors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Network family and variant, e.g. "fcdd-cifar10".
    pub architecture: String,
    /// The seed the run was started with.
    pub seed: u64,
    /// The training configuration as given (learning rate, epochs, loss, ...).
    pub config: serde_json::Value,
    #[serde(default)]
    pub format_version: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub meta: CheckpointMeta,
    /// Tensors by stable name, e.g. `encoder.conv1.weight`.
    pub tensors: BTreeMap<String, HostTensor>,
}

#[derive(Serialize, Deserialize)]
struct StoredMeta {
    #[serde(flatten)]
    meta: CheckpointMeta,
    /// FNV-1a 64 over names and bytes of all tensors, in name order, as hex.
    checksum: String,
}

fn checksum(tensors: &BTreeMap<String, Vec<u8>>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, bytes) in tensors {
        for &b in name.as_bytes().iter().chain([0u8].iter()).chain(bytes.iter()) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

fn checkpoint_error(path: &Path, message: impl Into<String>) -> Error {
    Error::Checkpoint { path: path.to_path_buf(), message: message.into() }
}

impl Checkpoint {
    pub fn new(architecture: impl Into<String>, seed: u64, config: serde_json::Value) -> Checkpoint {
        Checkpoint {
            meta: CheckpointMeta { architecture: architecture.into(), seed, config, format_version: FORMAT_VERSION },
            tensors: BTreeMap::new(),
        }
    }

    pub fn insert(&mut self, name: impl Into<String>, tensor: HostTensor) {
        self.tensors.insert(name.into(), tensor);
    }

    /// Writes `path` atomically: a temporary file in the same folder, synced, renamed over
    /// `path`, then the folder synced. Temporary files of earlier saves killed midway are removed.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes: BTreeMap<String, Vec<u8>> = self
            .tensors
            .iter()
            .map(|(name, t)| (name.clone(), t.data.iter().flat_map(|v| v.to_le_bytes()).collect()))
            .collect();
        let stored = StoredMeta { meta: self.meta.clone(), checksum: checksum(&bytes) };
        let json = serde_json::to_string(&stored).map_err(|e| checkpoint_error(path, format!("metadata: {e}")))?;
        let views = self
            .tensors
            .iter()
            .map(|(name, t)| {
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, t.shape.clone(), &bytes[name])
                    .map(|v| (name.clone(), v))
                    .map_err(|e| checkpoint_error(path, format!("tensor {name} {:?}: {e}", t.shape)))
            })
            .collect::<Result<Vec<_>>>()?;
        let info = HashMap::from([(META_KEY.to_string(), json)]);
        let data = safetensors::serialize(views, Some(info)).map_err(|e| checkpoint_error(path, e.to_string()))?;

        write_atomically(path, &data)
    }

    /// The temporary files a save of `path` writes before its rename: `.<name>.tmp-<pid>` in
    /// the same folder. They are never read as checkpoints.
    pub fn temp_files(path: &Path) -> Vec<PathBuf> {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else { return Vec::new() };
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        let prefix = temp_prefix(&name.to_string_lossy());
        let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path())
            .collect();
        found.sort();
        found
    }

    /// Reads a checkpoint; a truncated or corrupted file is an error naming the path.
    pub fn load(path: &Path) -> Result<Checkpoint> {
        let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let st = safetensors::SafeTensors::deserialize(&data)
            .map_err(|e| checkpoint_error(path, format!("not a readable safetensors file (truncated or corrupt?): {e}")))?;
        let (_, header) = safetensors::SafeTensors::read_metadata(&data)
            .map_err(|e| checkpoint_error(path, format!("unreadable header: {e}")))?;
        let json = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(META_KEY))
            .ok_or_else(|| checkpoint_error(path, "no oddity metadata: not an oddity checkpoint"))?;
        let stored: StoredMeta =
            serde_json::from_str(json).map_err(|e| checkpoint_error(path, format!("metadata: {e}")))?;
        let mut bytes = BTreeMap::new();
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            if view.dtype() != safetensors::Dtype::F32 {
                return Err(checkpoint_error(path, format!("tensor {name} has dtype {:?}, expected F32", view.dtype())));
            }
            let values: Vec<f32> =
                view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            bytes.insert(name.clone(), view.data().to_vec());
            tensors.insert(name, HostTensor { shape: view.shape().to_vec(), data: values });
        }
        let sum = checksum(&bytes);
        if sum != stored.checksum {
            return Err(checkpoint_error(
                path,
                format!("checksum {sum} does not match the stored {}: the file is corrupted", stored.checksum),
            ));
        }
        Ok(Checkpoint { meta: stored.meta, tensors })
    }

    /// Checks that the checkpoint holds exactly the tensors a model expects, with their shapes.
    /// The error names every missing, extra or wrongly shaped tensor.
    pub fn check_matches(&self, expected: &[(String, Vec<usize>)], path: &Path) -> Result<()> {
        let mut problems = Vec::new();
        for (name, shape) in expected {
            match self.tensors.get(name) {
                None => problems.push(format!("missing tensor {name} {shape:?}")),
                Some(t) if &t.shape != shape => {
                    problems.push(format!("tensor {name} has shape {:?}, the model expects {shape:?}", t.shape))
                }
                Some(_) => {}
            }
        }
        for name in self.tensors.keys() {
            if !expected.iter().any(|(n, _)| n == name) {
                problems.push(format!("unexpected tensor {name}"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(checkpoint_error(path, problems.join("; ")))
        }
    }
}

fn temp_prefix(file_name: &str) -> String {
    format!(".{file_name}.tmp-")
}

/// Removes temporary files that a killed save of the same checkpoint left behind: those of
/// processes that no longer run (Linux: no `/proc/<pid>`), or elsewhere those older than an
/// hour. Failures are ignored: a leftover temp file is clutter, never mistaken for the
/// checkpoint.
fn remove_stale_temp_files(dir: &Path, file_name: &str) {
    let prefix = temp_prefix(file_name);
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let proc_fs = Path::new("/proc/self").exists();
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name.strip_prefix(&prefix).and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid == std::process::id() {
            continue;
        }
        let stale = if proc_fs {
            !Path::new("/proc").join(pid.to_string()).exists()
        } else {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 3600)
        };
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Writes `bytes` to `path` atomically: a temporary file `.<name>.tmp-<pid>` in the same folder,
/// synced, renamed over `path`, then the folder synced. Temporary files of earlier writes killed
/// midway are removed first. Checkpoints and every JSON file the tool keeps use this, so a killed
/// run never leaves a half-written file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| checkpoint_error(path, "the path has no file name"))?
        .to_string_lossy()
        .to_string();
    remove_stale_temp_files(&dir, &file_name);
    let tmp = dir.join(format!("{}{}", temp_prefix(&file_name), std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(&tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })?;
    // The rename is durable only once the folder's entry is on disk: without this a power
    // cut can leave the old name pointing at nothing.
    sync_dir(&dir).map_err(|e| Error::io(&dir, e))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    // Windows cannot open a folder as a file; NTFS journals the rename itself.
    Ok(())
}
