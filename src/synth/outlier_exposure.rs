//! Outlier exposure (OE): images of an auxiliary data set used as anomalies (thesis §4.2.1).
//! When OE feeds both training and post-hoc calibration, the two subsets are disjoint
//! ("care is taken to ensure the sets for both phases are disjoint"): [`OutlierExposure::split`]
//! partitions the files with a seeded shuffle.
//!
//! OE images pass through their own augmentation [`Pipeline`] (the normal data's, without
//! normalization), then are resized to the normal images' size by the batch builder.

use super::AnomalySource;
use crate::data::folder::list_images_recursive;
use crate::data::transforms::Pipeline;
use crate::data::{load_image, ImageTensor};
use crate::error::{Error, Result};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

/// A set of outlier-exposure image files and the augmentation applied to them.
#[derive(Debug, Clone)]
pub struct OutlierExposure {
    pub files: Vec<PathBuf>,
    /// Augmentation for OE images; a normalization in it is ignored (the batch builder
    /// normalizes the whole batch).
    pub pipeline: Pipeline,
}

impl OutlierExposure {
    /// Every PNG/JPEG under `dir` (sub-folders included). A missing or image-less folder is an
    /// error naming it.
    pub fn from_folder(dir: &Path) -> Result<Self> {
        let files = list_images_recursive(dir)?;
        if files.is_empty() {
            return Err(Error::EmptyClass {
                class: "outlier exposure".into(),
                path: dir.to_path_buf(),
            });
        }
        Ok(OutlierExposure {
            files,
            pipeline: Pipeline::default(),
        })
    }

    /// Sets the augmentation pipeline.
    pub fn with_pipeline(mut self, pipeline: Pipeline) -> Self {
        self.pipeline = Pipeline {
            normalization: None,
            ..pipeline
        };
        self
    }

    /// Splits the files into two disjoint sets (training, calibration) after a seeded
    /// shuffle; `calibration_fraction` of them (rounded, at least 1 each side) go to the second.
    pub fn split(&self, calibration_fraction: f64, seed: u64) -> Result<(Self, Self)> {
        if !(calibration_fraction > 0.0 && calibration_fraction < 1.0) || self.files.len() < 2 {
            return Err(Error::InvalidArgument(format!(
                "cannot split {} outlier-exposure files with calibration fraction {calibration_fraction}",
                self.files.len()
            )));
        }
        let mut files = self.files.clone();
        files.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let n_cal = ((files.len() as f64 * calibration_fraction).round() as usize)
            .clamp(1, files.len() - 1);
        let calibration = files.split_off(files.len() - n_cal);
        files.sort();
        let mut calibration = calibration;
        calibration.sort();
        Ok((
            OutlierExposure {
                files,
                pipeline: self.pipeline.clone(),
            },
            OutlierExposure {
                files: calibration,
                pipeline: self.pipeline.clone(),
            },
        ))
    }

    /// Loads and augments one file drawn uniformly at random.
    pub fn sample(&self, rng: &mut ChaCha8Rng) -> Result<ImageTensor> {
        let path = &self.files[rng.random_range(0..self.files.len())];
        let augment = Pipeline {
            normalization: None,
            ..self.pipeline.clone()
        };
        augment.apply(load_image(path)?, rng)
    }
}

impl AnomalySource for OutlierExposure {
    fn generate(
        &mut self,
        normal: &[ImageTensor],
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<ImageTensor>> {
        normal.iter().map(|_| self.sample(rng)).collect()
    }
}
