//! `oddity::Error`: the one error type of the library.
//!
//! Every variant names what went wrong and where: the file, the CSV row, the sample index,
//! the shapes or the value. Library functions return `Result<T, oddity::Error>`; nothing on a
//! user-input path panics.

use std::path::{Path, PathBuf};

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors raised by data loading, synthetic anomalies, metrics and the CLI.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A folder the data layout requires does not exist.
    #[error("folder not found: {}", path.display())]
    MissingFolder { path: PathBuf },

    /// A file the data layout requires does not exist (e.g. the mask of a defect image).
    #[error("file not found: {} ({what})", path.display())]
    MissingFile { path: PathBuf, what: String },

    /// An I/O error on a named file or folder.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// An image file that cannot be decoded (unreadable, truncated, unsupported).
    #[error("cannot decode image {}: {message}", path.display())]
    Image { path: PathBuf, message: String },

    /// A ground-truth mask whose size differs from the size of its image.
    #[error(
        "mask {} is {mask_width}x{mask_height} but its image {} is {image_width}x{image_height}",
        mask.display(),
        image.display()
    )]
    MaskSize {
        mask: PathBuf,
        image: PathBuf,
        mask_width: usize,
        mask_height: usize,
        image_width: usize,
        image_height: usize,
    },

    /// A class (or category part) with no images in it.
    #[error("class '{class}' has no images in {}", path.display())]
    EmptyClass { class: String, path: PathBuf },

    /// A malformed IDX (Fashion-MNIST) file.
    #[error("malformed IDX file {}: {message}", path.display())]
    Idx { path: PathBuf, message: String },

    /// A malformed row of a CSV file; `line` is 1-based and counts the header.
    #[error("{}: line {line}: {message}", path.display())]
    CsvRow {
        path: PathBuf,
        line: usize,
        message: String,
    },

    /// A label that is neither 0 nor 1, at sample `index` (0-based).
    #[error("label at index {index} is {value}, expected 0 or 1")]
    InvalidLabel { index: usize, value: String },

    /// A NaN or infinite score at sample `index` (0-based).
    #[error("score at index {index} is {value}, expected a finite number")]
    NonFiniteScore { index: usize, value: f64 },

    /// A probability outside [0, 1] at sample `index` (0-based).
    #[error("probability at index {index} is {value}, expected a value in [0, 1]")]
    InvalidProbability { index: usize, value: f64 },

    /// A metric that needs both classes got only one (AUROC, AUPRO).
    #[error("{metric} is undefined: {message}")]
    UndefinedMetric {
        metric: &'static str,
        message: String,
    },

    /// Buffers whose lengths or shapes do not agree.
    #[error("shape mismatch in {what}: expected {expected}, got {got}")]
    Shape {
        what: String,
        expected: String,
        got: String,
    },

    /// An argument outside its valid range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The background batch thread stopped unexpectedly.
    #[error("batch prefetch thread stopped: {0}")]
    Prefetch(String),

    /// A GPU-side error: no adapter, shapes that do not fit a kernel, an op with no backward.
    #[error(transparent)]
    Kernel(#[from] oddity_kernels::Error),

    /// Training produced a NaN or infinite loss or parameter; it stopped without overwriting the
    /// last good checkpoint. `epoch` and `step` are 1-based.
    #[error("training diverged at epoch {epoch}, step {step}: {what}; stopped, the last good checkpoint is kept ({})", checkpoint.display())]
    Diverged {
        epoch: usize,
        step: usize,
        what: String,
        checkpoint: PathBuf,
    },

    /// A NaN or infinite value where there must be none: an input image, a normalised batch.
    /// The message names the file (or sample) and where in it.
    #[error("non-finite value: {0}")]
    NonFinite(String),

    /// A checkpoint that cannot be written or read, or that does not fit the model.
    #[error("checkpoint {}: {message}", path.display())]
    Checkpoint { path: PathBuf, message: String },
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// An [`Error::Image`] for `path`.
    pub fn image(path: impl AsRef<Path>, message: impl std::fmt::Display) -> Self {
        Error::Image {
            path: path.as_ref().to_path_buf(),
            message: message.to_string(),
        }
    }
}
