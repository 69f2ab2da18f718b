//! Data on the CPU: images as `f32` tensors, the data-set loaders, the experimental protocols,
//! the transforms of thesis §4.2 and background batches.
//!
//! - [`ImageTensor`]: one image, `[channels, height, width]` in `f32`, values in [0, 1] as
//!   loaded; [`Mask`]: one 0/1 ground-truth mask, `[height, width]` in `u8`.
//! - [`Sample`]: where an image comes from (a file or an IDX array), its label (0 normal,
//!   1 anomalous), its class or defect name and its mask; images are decoded on demand.
//! - Loaders: [`mvtec`] (the MVTec AD folder layout, e.g. the KolektorSDD copy), [`cifar`]
//!   (CIFAR-10 JPEG class folders, or any `<split>/<class>/*.jpg` tree), [`fashion_mnist`]
//!   (IDX gz files), [`folder`] (a plain folder of images, e.g. for outlier exposure).
//! - [`split`]: one-vs-all and per-category protocols and the seeded 3:1 train/calibration
//!   split of thesis §4.2.1.
//! - [`transforms`]: resize, random crop, colour jitter, Gaussian noise, flip, grayscale and
//!   the serializable z-score [`transforms::Normalization`] (thesis §4.2.1, §4.2.2).
//! - [`batches`]: `[N, C, H, W]` batches, built on a background prefetch thread, balanced
//!   half normal / half synthetic anomalies for the supervised losses.

pub mod batches;
pub mod cifar;
pub mod fashion_mnist;
pub mod folder;
pub mod mvtec;
pub mod split;
pub mod transforms;

pub use batches::{Batch, BatchPlan, Prefetcher};
pub use cifar::{cifar10, ClassSamples, ClassSet};
pub use fashion_mnist::{FashionMnist, FASHION_MNIST_CLASSES, FASHION_MNIST_DEFAULT_DIR};
pub use folder::list_images;
pub use mvtec::MvtecCategory;
pub use split::{train_calibration_split, train_calibration_split_with, DataSplit};
pub use transforms::{ColorJitter, Normalization, Pipeline};

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One image on the CPU. `data`: `[channels, height, width]`, row-major, `f32`.
/// Loaded images hold values in [0, 1]; after normalization they are z-scores.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageTensor {
    pub data: Vec<f32>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl ImageTensor {
    /// A zero image `[channels, height, width]`.
    pub fn zeros(channels: usize, height: usize, width: usize) -> Self {
        ImageTensor {
            data: vec![0.0; channels * height * width],
            channels,
            height,
            width,
        }
    }

    /// Wraps `data` (`[channels, height, width]`), checking its length.
    pub fn from_vec(data: Vec<f32>, channels: usize, height: usize, width: usize) -> Result<Self> {
        if data.len() != channels * height * width {
            return Err(Error::Shape {
                what: "image tensor".into(),
                expected: format!(
                    "[{channels}, {height}, {width}] = {}",
                    channels * height * width
                ),
                got: format!("{} values", data.len()),
            });
        }
        Ok(ImageTensor {
            data,
            channels,
            height,
            width,
        })
    }

    /// Number of values `channels * height * width`.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Pixels of one channel, `[height, width]`.
    pub fn channel(&self, c: usize) -> &[f32] {
        let plane = self.height * self.width;
        &self.data[c * plane..(c + 1) * plane]
    }

    /// Mutable pixels of one channel, `[height, width]`.
    pub fn channel_mut(&mut self, c: usize) -> &mut [f32] {
        let plane = self.height * self.width;
        &mut self.data[c * plane..(c + 1) * plane]
    }

    /// Value at channel `c`, row `y`, column `x`.
    pub fn at(&self, c: usize, y: usize, x: usize) -> f32 {
        self.data[(c * self.height + y) * self.width + x]
    }

    /// Writes the image as an 8-bit PNG (values clamped to [0, 1]); 1 or 3 channels.
    pub fn save_png(&self, path: &Path) -> Result<()> {
        let plane = self.height * self.width;
        let to_u8 = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        let (w, h) = (self.width as u32, self.height as u32);
        let result = match self.channels {
            1 => image::GrayImage::from_raw(w, h, self.data.iter().map(|&v| to_u8(v)).collect())
                .map(|img| img.save(path)),
            3 => {
                let mut rgb = Vec::with_capacity(3 * plane);
                for i in 0..plane {
                    for c in 0..3 {
                        rgb.push(to_u8(self.data[c * plane + i]));
                    }
                }
                image::RgbImage::from_raw(w, h, rgb).map(|img| img.save(path))
            }
            other => {
                return Err(Error::InvalidArgument(format!(
                    "cannot save an image with {other} channels as PNG (1 or 3)"
                )))
            }
        };
        match result {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(Error::image(path, e)),
            None => Err(Error::image(path, "buffer does not match the image size")),
        }
    }
}

/// A ground-truth mask, `[height, width]`, 1 = anomalous pixel, 0 = normal.
#[derive(Debug, Clone, PartialEq)]
pub struct Mask {
    pub data: Vec<u8>,
    pub height: usize,
    pub width: usize,
}

impl Mask {
    /// An all-normal mask.
    pub fn zeros(height: usize, width: usize) -> Self {
        Mask {
            data: vec![0; height * width],
            height,
            width,
        }
    }

    /// Number of anomalous pixels.
    pub fn anomalous_pixels(&self) -> usize {
        self.data.iter().filter(|&&m| m != 0).count()
    }
}

/// One image of an IDX array (Fashion-MNIST): `pixels` holds every image of the file,
/// `[count, rows, cols]` in `u8`.
#[derive(Debug, Clone)]
pub struct IdxImage {
    pub file: Arc<PathBuf>,
    pub pixels: Arc<Vec<u8>>,
    pub index: usize,
    pub rows: usize,
    pub cols: usize,
}

/// Where a sample's pixels come from.
#[derive(Debug, Clone)]
pub enum ImageSource {
    /// An image file (PNG or JPEG), decoded on each load.
    File(PathBuf),
    /// An image held in memory from an IDX file.
    Idx(IdxImage),
}

/// What is known of a sample's ground-truth mask.
#[derive(Debug, Clone, PartialEq)]
pub enum MaskSource {
    /// No pixel labels (e.g. a one-vs-all image).
    None,
    /// Every pixel is normal (e.g. `test/good` in the MVTec layout).
    AllNormal,
    /// A mask file, nonzero pixels (>= 128) anomalous.
    File(PathBuf),
}

/// One labelled image.
#[derive(Debug, Clone)]
pub struct Sample {
    pub source: ImageSource,
    /// 0 normal, 1 anomalous.
    pub label: u8,
    /// Class name (one-vs-all) or defect type, `good` for normal MVTec images.
    pub group: String,
    pub mask: MaskSource,
}

impl Sample {
    /// A sample read from an image file, without pixel labels.
    pub fn file(path: impl Into<PathBuf>, label: u8, group: impl Into<String>) -> Self {
        Sample {
            source: ImageSource::File(path.into()),
            label,
            group: group.into(),
            mask: MaskSource::None,
        }
    }

    /// A description for messages: the file path, or `file[index]` for IDX images.
    pub fn describe(&self) -> String {
        match &self.source {
            ImageSource::File(p) => p.display().to_string(),
            ImageSource::Idx(idx) => format!("{}[{}]", idx.file.display(), idx.index),
        }
    }

    /// The file path, if the sample is a file.
    pub fn path(&self) -> Option<&Path> {
        match &self.source {
            ImageSource::File(p) => Some(p),
            ImageSource::Idx(_) => None,
        }
    }

    /// Decodes the image: `[1 or 3, height, width]` in [0, 1].
    pub fn load(&self) -> Result<ImageTensor> {
        match &self.source {
            ImageSource::File(path) => load_image(path),
            ImageSource::Idx(idx) => {
                let plane = idx.rows * idx.cols;
                let start = idx.index * plane;
                let bytes = idx
                    .pixels
                    .get(start..start + plane)
                    .ok_or_else(|| Error::Idx {
                        path: idx.file.to_path_buf(),
                        message: format!("image {} is past the end of the data", idx.index),
                    })?;
                let data = bytes.iter().map(|&b| b as f32 / 255.0).collect();
                ImageTensor::from_vec(data, 1, idx.rows, idx.cols)
            }
        }
    }

    /// Decodes the image and its mask. The mask is `None` when the sample has no pixel
    /// labels; a mask file whose size differs from the image's is an error naming both.
    pub fn load_with_mask(&self) -> Result<(ImageTensor, Option<Mask>)> {
        let image = self.load()?;
        let mask = match &self.mask {
            MaskSource::None => None,
            MaskSource::AllNormal => Some(Mask::zeros(image.height, image.width)),
            MaskSource::File(mask_path) => {
                let mask = load_mask(mask_path)?;
                if mask.height != image.height || mask.width != image.width {
                    return Err(Error::MaskSize {
                        mask: mask_path.clone(),
                        image: PathBuf::from(self.describe()),
                        mask_width: mask.width,
                        mask_height: mask.height,
                        image_width: image.width,
                        image_height: image.height,
                    });
                }
                Some(mask)
            }
        };
        Ok((image, mask))
    }
}

/// File extensions read as images (the `image` crate is built with PNG and JPEG only).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// True when `path` has an image extension (case-insensitive).
pub fn is_image_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
        .unwrap_or(false)
}

fn decode(path: &Path) -> Result<image::DynamicImage> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let format = image::guess_format(&bytes).map_err(|e| Error::image(path, e))?;
    // A JPEG stream ends with the EOI marker FF D9; a file cut short loses it, and the JPEG
    // decoder would otherwise fill the missing rows silently.
    if format == image::ImageFormat::Jpeg && !jpeg_has_end_marker(&bytes) {
        return Err(Error::image(
            path,
            "truncated JPEG (no end-of-image marker)",
        ));
    }
    // Check the declared size before decoding: a few hundred bytes of PNG can declare
    // gigapixels (a decompression bomb).
    let reader = || image::ImageReader::with_format(std::io::Cursor::new(&bytes), format);
    let (w, h) = reader().into_dimensions().map_err(|e| Error::image(path, e))?;
    check_image_size(path, w, h)?;
    let mut reader = reader();
    reader.limits(image_limits());
    reader.decode().map_err(|e| Error::image(path, e))
}

/// The widest and tallest image decoded, in pixels (MVTec AD's largest are 1024, KolektorSDD's
/// 1270 tall).
pub const MAX_IMAGE_SIDE: u32 = 16_384;
/// The most pixels an image may have (64 Mpixel: 768 MiB as `[3, h, w]` f32 once loaded).
pub const MAX_IMAGE_PIXELS: u64 = 1 << 26;

/// Checks a declared image size against [`MAX_IMAGE_SIDE`] and [`MAX_IMAGE_PIXELS`]; the error
/// names the file, its size and the limit.
fn check_image_size(path: &Path, width: u32, height: u32) -> Result<()> {
    let pixels = width as u64 * height as u64;
    if width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE || pixels > MAX_IMAGE_PIXELS {
        return Err(Error::image(
            path,
            format!(
                "declares {width}x{height} pixels, over the limit of {MAX_IMAGE_SIDE} per side and \
                 {MAX_IMAGE_PIXELS} pixels in all (a corrupt header or a decompression bomb?)"
            ),
        ));
    }
    Ok(())
}

/// Decoder limits matching [`check_image_size`]; they also bound what the decoder allocates
/// (16-bit RGBA at the largest size).
fn image_limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_PIXELS * 8);
    limits
}

fn jpeg_has_end_marker(bytes: &[u8]) -> bool {
    // Some encoders pad after EOI; look at the last few bytes.
    let tail = &bytes[bytes.len().saturating_sub(64)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Decodes an image file: grayscale files give 1 channel, colour files 3 (alpha dropped);
/// values in [0, 1]. Errors name the file.
pub fn load_image(path: &Path) -> Result<ImageTensor> {
    let img = decode(path)?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        return Err(Error::image(path, "image has zero size"));
    }
    let plane = w * h;
    if img.color().has_color() {
        let rgb = img.to_rgb32f();
        let mut data = vec![0.0f32; 3 * plane];
        for (i, px) in rgb.pixels().enumerate() {
            for c in 0..3 {
                data[c * plane + i] = px.0[c];
            }
        }
        ImageTensor::from_vec(data, 3, h, w)
    } else {
        let gray = img.to_luma32f();
        ImageTensor::from_vec(gray.into_raw(), 1, h, w)
    }
}

/// Reads a mask file: pixels >= 128 (of 255) are anomalous (1), others normal (0).
pub fn load_mask(path: &Path) -> Result<Mask> {
    let img = decode(path)?.to_luma8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let data = img
        .into_raw()
        .into_iter()
        .map(|v| (v >= 128) as u8)
        .collect();
    Ok(Mask {
        data,
        height: h,
        width: w,
    })
}

/// Checks that `path` is an existing folder.
pub(crate) fn require_dir(path: &Path) -> Result<()> {
    if path.is_dir() {
        Ok(())
    } else {
        Err(Error::MissingFolder {
            path: path.to_path_buf(),
        })
    }
}
