//! Experimental protocols and the train/calibration split (thesis §4.2.1, §4.2.2).
//!
//! - One-vs-all (CIFAR-10, Fashion-MNIST): the normal class's training images are the normal
//!   data; the test set is the normal class's test images (label 0) followed by the test
//!   images of every other class (label 1).
//! - Per category (MVTec layout): `train/good` is the normal data; the test set is the
//!   category's own test folder.
//! - The normal data splits 3:1 into a training part and a calibration part, seeded
//!   ("split into training and calibration sets in a 3:1 ratio"). The "fully trained" baseline
//!   uses both parts ([`DataSplit::full_train`]).

use super::cifar::ClassSet;
use super::mvtec::MvtecCategory;
use super::Sample;
use crate::error::{Error, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The data of one experiment: normal training and calibration parts, and the test set.
#[derive(Debug, Clone)]
pub struct DataSplit {
    /// Name of the normal class or the category.
    pub normal: String,
    /// Normal training part (3/4), label 0.
    pub train: Vec<Sample>,
    /// Normal calibration part (1/4), label 0.
    pub calibration: Vec<Sample>,
    /// Test samples, label 0 normal and 1 anomalous.
    pub test: Vec<Sample>,
}

impl DataSplit {
    /// One-vs-all: `normal_class` of `train`/`test` is normal, every other class anomalous.
    pub fn one_vs_all(
        train: &ClassSet,
        test: &ClassSet,
        normal_class: &str,
        seed: u64,
    ) -> Result<Self> {
        Self::one_vs_all_with(train, test, normal_class, seed, THESIS_CALIBRATION_FRACTION)
    }

    /// [`DataSplit::one_vs_all`] with `fraction` of the normal training images in the
    /// calibration part instead of the thesis's 1/4.
    pub fn one_vs_all_with(
        train: &ClassSet,
        test: &ClassSet,
        normal_class: &str,
        seed: u64,
        fraction: f64,
    ) -> Result<Self> {
        let normal_train = train.class(normal_class).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "normal class '{normal_class}' is not among the training classes {:?}",
                train.class_names()
            ))
        })?;
        if test.class(normal_class).is_none() {
            return Err(Error::InvalidArgument(format!(
                "normal class '{normal_class}' is not among the test classes {:?}",
                test.class_names()
            )));
        }
        let relabel = |s: &Sample, label: u8| Sample { label, ..s.clone() };
        let mut test_samples: Vec<Sample> = Vec::with_capacity(test.len());
        for class in test.classes.iter().filter(|c| c.name == normal_class) {
            test_samples.extend(class.samples.iter().map(|s| relabel(s, 0)));
        }
        for class in test.classes.iter().filter(|c| c.name != normal_class) {
            test_samples.extend(class.samples.iter().map(|s| relabel(s, 1)));
        }
        let normal: Vec<Sample> = normal_train.samples.iter().map(|s| relabel(s, 0)).collect();
        let (train_part, calibration) = train_calibration_split_with(&normal, seed, fraction)?;
        Ok(DataSplit {
            normal: normal_class.to_string(),
            train: train_part,
            calibration,
            test: test_samples,
        })
    }

    /// Per category: `train/good` split 3:1, the category's test folder as test set.
    pub fn per_category(category: &MvtecCategory, seed: u64) -> Result<Self> {
        Self::per_category_with(category, seed, THESIS_CALIBRATION_FRACTION)
    }

    /// [`DataSplit::per_category`] with `fraction` of `train/good` in the calibration part.
    /// A larger part buys finer false-positive-rate thresholds (`oddity predict --fpr α` needs
    /// at least `1/α - 1` calibration normals) at the cost of training images.
    pub fn per_category_with(category: &MvtecCategory, seed: u64, fraction: f64) -> Result<Self> {
        let (train, calibration) = train_calibration_split_with(&category.train, seed, fraction)?;
        Ok(DataSplit {
            normal: category.name.clone(),
            train,
            calibration,
            test: category.test.clone(),
        })
    }

    /// Training and calibration parts together: the data of a network trained on the full
    /// training data (the "fully trained" column of the thesis tables).
    pub fn full_train(&self) -> Vec<Sample> {
        self.train
            .iter()
            .chain(&self.calibration)
            .cloned()
            .collect()
    }
}

/// The thesis's 3:1 training/calibration split.
pub const THESIS_CALIBRATION_FRACTION: f64 = 0.25;

/// Number of calibration samples out of `n` for the 3:1 split: n/4 rounded to nearest.
pub fn calibration_count(n: usize) -> usize {
    (n + 2) / 4
}

/// Number of calibration samples out of `n` for a calibration `fraction`: `n * fraction`
/// rounded half up (for 1/4 exactly [`calibration_count`], since `n/4` is exact in f64).
pub fn calibration_count_for(n: usize, fraction: f64) -> usize {
    (n as f64 * fraction + 0.5).floor() as usize
}

/// Checks a calibration fraction given by a user: strictly between 0 and 1.
pub fn check_calibration_fraction(fraction: f64) -> Result<()> {
    if fraction > 0.0 && fraction < 1.0 {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "the calibration fraction must be strictly between 0 and 1, got {fraction}"
        )))
    }
}

/// Splits `samples` 3:1 into (train, calibration) after a shuffle seeded by `seed`. Each part
/// keeps the input order of its members. Errors if fewer than 2 samples.
pub fn train_calibration_split(
    samples: &[Sample],
    seed: u64,
) -> Result<(Vec<Sample>, Vec<Sample>)> {
    train_calibration_split_with(samples, seed, THESIS_CALIBRATION_FRACTION)
}

/// [`train_calibration_split`] with `fraction` of the samples (rounded, at least one, never
/// all) in the calibration part.
pub fn train_calibration_split_with(
    samples: &[Sample],
    seed: u64,
    fraction: f64,
) -> Result<(Vec<Sample>, Vec<Sample>)> {
    check_calibration_fraction(fraction)?;
    if samples.len() < 2 {
        return Err(Error::InvalidArgument(format!(
            "a train/calibration split needs at least 2 normal samples, got {}",
            samples.len()
        )));
    }
    let n_cal = calibration_count_for(samples.len(), fraction).clamp(1, samples.len() - 1);
    let mut order: Vec<usize> = (0..samples.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut in_calibration = vec![false; samples.len()];
    for &i in &order[..n_cal] {
        in_calibration[i] = true;
    }
    let (mut train, mut calibration) = (Vec::new(), Vec::new());
    for (s, &cal) in samples.iter().zip(&in_calibration) {
        if cal {
            calibration.push(s.clone());
        } else {
            train.push(s.clone());
        }
    }
    Ok((train, calibration))
}
