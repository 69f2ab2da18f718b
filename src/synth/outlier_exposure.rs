//! Outlier exposure (OE): images of an auxiliary data set used as anomalies (thesis §4.2.1).
//! When OE feeds both training and post-hoc calibration, the two subsets are disjoint
//! ("care is taken to ensure the sets for both phases are disjoint"), and the anomalies that
//! measure calibration error are a third set neither phase saw: [`OutlierExposure::part`] assigns
//! every file to one [`OePart`] by a hash of its path inside the folder, so `oddity train`,
//! `oddity calibrate` and `oddity experiment` agree on the parts whatever their seeds, and adding
//! files to the folder never moves the others.
//!
//! OE images pass through their own augmentation [`Pipeline`] (the normal data's, without
//! normalization), then are resized to the normal images' size by the batch builder.

use super::AnomalySource;
use crate::data::folder::list_images_recursive;
use crate::data::transforms::Pipeline;
use crate::data::{load_image, ImageTensor};
use crate::error::{Error, Result};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

/// The phase an outlier-exposure image serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OePart {
    /// Anomalies of the supervised losses' balanced batches (`oddity train`).
    Training,
    /// Anomalies the post-hoc calibration is fitted on (`oddity calibrate`).
    Calibration,
    /// Anomalies for ECE/MCE of a calibrated model (`oddity experiment`), seen by neither.
    Evaluation,
}

impl OePart {
    /// The part of the file at `relative` (its path inside the folder): FNV-1a of the path's
    /// bytes with `/` separators, mixed (FNV's low bits depend on the bytes' low bits only),
    /// modulo 4: 0 and 1 train, 2 calibrates, 3 evaluates.
    pub fn of(relative: &Path) -> OePart {
        let name = relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
        let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3));
        let mixed = (hash ^ (hash >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        match (mixed ^ (mixed >> 33)) % 4 {
            0 | 1 => OePart::Training,
            2 => OePart::Calibration,
            _ => OePart::Evaluation,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            OePart::Training => "training",
            OePart::Calibration => "calibration",
            OePart::Evaluation => "evaluation",
        }
    }
}

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

    /// The files of one phase's part of the folder `root` (the folder given to
    /// [`OutlierExposure::from_folder`]): half for training, a quarter for calibration, a quarter
    /// for evaluation, by [`OePart::of`]. An empty part is an error naming the folder.
    pub fn part(&self, root: &Path, part: OePart) -> Result<Self> {
        let files: Vec<PathBuf> = self
            .files
            .iter()
            .filter(|f| OePart::of(f.strip_prefix(root).unwrap_or(f)) == part)
            .cloned()
            .collect();
        if files.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "outlier-exposure folder {}: none of its {} images falls in the {} part (half of the images \
                 train, a quarter calibrate, a quarter evaluate, chosen by file name); add images",
                root.display(),
                self.files.len(),
                part.name()
            )));
        }
        Ok(OutlierExposure { files, pipeline: self.pipeline.clone() })
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
