//! Fashion-MNIST from its four IDX gz files (`train-images-idx3-ubyte.gz`,
//! `train-labels-idx1-ubyte.gz`, `t10k-images-idx3-ubyte.gz`, `t10k-labels-idx1-ubyte.gz`),
//! by default in `/usr/share/datasets/fashion-mnist/` (Debian package `dataset-fashion-mnist`).
//! 60,000 train and 10,000 test images, 28x28 grayscale, 10 classes; evaluated one-vs-all.
//!
//! IDX: big-endian magic `0x0000_08_0D` (`0x08` = u8, `D` = number of dimensions), then `D`
//! big-endian u32 sizes, then the data.

use super::cifar::{ClassSamples, ClassSet};
use super::{IdxImage, ImageSource, MaskSource, Sample};
use crate::error::{Error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the Debian package puts the files.
pub const FASHION_MNIST_DEFAULT_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Class names by label.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "t-shirt_top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle_boot",
];

/// Both splits of Fashion-MNIST, grouped by class.
#[derive(Debug, Clone)]
pub struct FashionMnist {
    pub train: ClassSet,
    pub test: ClassSet,
}

impl FashionMnist {
    /// Reads the four files from `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        super::require_dir(dir)?;
        Ok(FashionMnist {
            train: load_split(dir, "train")?,
            test: load_split(dir, "t10k")?,
        })
    }

    /// Reads the four files from [`FASHION_MNIST_DEFAULT_DIR`].
    pub fn load_default() -> Result<Self> {
        Self::load(Path::new(FASHION_MNIST_DEFAULT_DIR))
    }
}

fn load_split(dir: &Path, prefix: &str) -> Result<ClassSet> {
    let images_path = dir.join(format!("{prefix}-images-idx3-ubyte.gz"));
    let labels_path = dir.join(format!("{prefix}-labels-idx1-ubyte.gz"));
    let (image_dims, pixels) = read_idx_gz(&images_path)?;
    let (label_dims, labels) = read_idx_gz(&labels_path)?;
    if image_dims.len() != 3 {
        return Err(Error::Idx {
            path: images_path,
            message: format!("expected 3 dimensions [count, rows, cols], found {image_dims:?}"),
        });
    }
    if label_dims.len() != 1 || label_dims[0] != image_dims[0] {
        return Err(Error::Idx {
            path: labels_path,
            message: format!("expected [{}] labels, found {label_dims:?}", image_dims[0]),
        });
    }
    let (rows, cols) = (image_dims[1], image_dims[2]);
    let file = Arc::new(images_path.clone());
    let pixels = Arc::new(pixels);
    let mut classes: Vec<ClassSamples> = FASHION_MNIST_CLASSES
        .iter()
        .map(|n| ClassSamples {
            name: n.to_string(),
            samples: Vec::new(),
        })
        .collect();
    for (index, &label) in labels.iter().enumerate() {
        let class = classes.get_mut(label as usize).ok_or_else(|| Error::Idx {
            path: labels_path.clone(),
            message: format!("label {label} at index {index} is not a class 0..9"),
        })?;
        let group = class.name.clone();
        class.samples.push(Sample {
            source: ImageSource::Idx(IdxImage {
                file: file.clone(),
                pixels: pixels.clone(),
                index,
                rows,
                cols,
            }),
            label: 0,
            group,
            mask: MaskSource::None,
        });
    }
    if let Some(empty) = classes.iter().find(|c| c.samples.is_empty()) {
        return Err(Error::EmptyClass {
            class: empty.name.clone(),
            path: labels_path,
        });
    }
    Ok(ClassSet { classes })
}

/// The most IDX data read (1 GiB; Fashion-MNIST's training images are 47 MB). A header that
/// declares more is refused before anything is allocated or decompressed.
pub const MAX_IDX_BYTES: usize = 1 << 30;

/// Reads a gzip-compressed IDX file of `u8` data: (dimensions, data). Decompresses only as
/// many bytes as the header declares (plus one, to notice trailing data), so a small file
/// that inflates to gigabytes is an error, not an allocation.
pub fn read_idx_gz(path: &Path) -> Result<(Vec<usize>, Vec<u8>)> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut gz = flate2::read::GzDecoder::new(file);
    let mut bytes = Vec::new();
    let mut read = |bytes: &mut Vec<u8>, n: usize| {
        (&mut gz)
            .take(n as u64)
            .read_to_end(bytes)
            .map_err(|e| Error::io(path, e))
    };
    read(&mut bytes, 4)?;
    if bytes.len() == 4 {
        let header_rest = 4 * bytes[3] as usize;
        read(&mut bytes, header_rest)?;
    }
    let (header, expected) = idx_layout(path, &bytes)?;
    read(&mut bytes, expected + 1)?;
    if bytes.len() > header + expected {
        return Err(Error::Idx {
            path: path.to_path_buf(),
            message: format!("the header declares {expected} bytes of data but the file has more"),
        });
    }
    parse_idx(path, bytes)
}

/// Checks the magic number and header of an IDX file of `u8` data and returns (header
/// length, declared data length). Sizes whose product overflows or passes
/// [`MAX_IDX_BYTES`] are errors naming the dimensions.
fn idx_layout(path: &Path, bytes: &[u8]) -> Result<(usize, usize)> {
    let err = |message: String| Error::Idx {
        path: PathBuf::from(path),
        message,
    };
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(err("missing IDX magic number".into()));
    }
    if bytes[2] != 0x08 {
        return Err(err(format!(
            "data type 0x{:02x} is not u8 (0x08)",
            bytes[2]
        )));
    }
    let ndim = bytes[3] as usize;
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(err(format!(
            "file ends inside the header of {ndim} dimensions"
        )));
    }
    let dims = idx_dims(bytes, ndim);
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_IDX_BYTES)
        .ok_or_else(|| {
            err(format!(
                "dimensions {dims:?} declare more than the {MAX_IDX_BYTES} bytes an IDX file may hold"
            ))
        })?;
    Ok((header, expected))
}

fn idx_dims(bytes: &[u8], ndim: usize) -> Vec<usize> {
    (0..ndim)
        .map(|d| {
            let b = &bytes[4 + 4 * d..8 + 4 * d];
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
        })
        .collect()
}

/// Parses an uncompressed IDX file of `u8` data: (dimensions, data). Errors name the file and
/// what is wrong (magic, data type, a header or data cut short, sizes that overflow).
pub fn parse_idx(path: &Path, bytes: Vec<u8>) -> Result<(Vec<usize>, Vec<u8>)> {
    let (header, expected) = idx_layout(path, &bytes)?;
    let dims = idx_dims(&bytes, bytes[3] as usize);
    if bytes.len() - header != expected {
        return Err(Error::Idx {
            path: PathBuf::from(path),
            message: format!(
                "dimensions {dims:?} need {expected} bytes of data, found {}",
                bytes.len() - header
            ),
        });
    }
    Ok((dims, bytes[header..].to_vec()))
}
