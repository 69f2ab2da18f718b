//! Synthetic anomalies: images labelled anomalous for the supervised losses and for post-hoc
//! calibration (thesis §3.4, §4.2.1; MLSAD §3.1.2).
//!
//! - [`spectral`]: random images with a 1/f^alpha spectrum (thesis §3.4);
//! - [`mrf`]: MRF approximations of level 0 (uniform noise) and level 1 (pixels shuffled
//!   along the batch axis);
//! - [`outlier_exposure`]: images of an auxiliary folder, with disjoint subsets for training
//!   and calibration.
//!
//! Each implements [`AnomalySource`], which [`crate::data::batches`] uses to fill the
//! anomalous half of balanced batches.

pub mod mrf;
pub mod outlier_exposure;
pub mod spectral;
pub mod textures;

pub use mrf::{mrf_level0, mrf_level1, MrfAnomalies, MrfLevel};
pub use outlier_exposure::{OePart, OutlierExposure};
pub use spectral::{spectral_image, spectral_image_with_exponents, SpectralAnomalies};

use crate::data::ImageTensor;
use crate::error::Result;
use rand_chacha::ChaCha8Rng;

/// A generator of synthetic anomalies.
pub trait AnomalySource: Send {
    /// One anomaly per image of `normal` (the augmented, not yet normalized normal half of a
    /// batch, values in [0, 1]), each `[C, H, W]` like its normal image where the source can
    /// choose, values in [0, 1]. Sources that cannot choose the size (outlier exposure) are
    /// resized by the caller.
    fn generate(
        &mut self,
        normal: &[ImageTensor],
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<ImageTensor>>;
}
