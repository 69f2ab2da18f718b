//! The MVTec AD folder layout, as anomalib reads it:
//!
//! ```text
//! <category>/train/good/*.png|jpg            normal training images
//! <category>/test/good/*                      normal test images (all-normal masks)
//! <category>/test/<defect>/*                  anomalous test images
//! <category>/ground_truth/<defect>/<stem>_mask.png   their masks, same size as the image
//! ```
//!
//! KolektorSDD in `../shared/data/kolektorsdd-mvtec.tar.gz` (`kolektor/...`) follows it.
//! Evaluation is per category (thesis §4.2.2).

use super::folder::list_images;
use super::{require_dir, MaskSource, Sample};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// One category of an MVTec-layout data set.
#[derive(Debug, Clone)]
pub struct MvtecCategory {
    /// Category name (the folder name).
    pub name: String,
    pub root: PathBuf,
    /// `train/good`, label 0.
    pub train: Vec<Sample>,
    /// `test/good` (label 0, all-normal mask) then every `test/<defect>` (label 1, mask file),
    /// defects in sorted order, files sorted within each.
    pub test: Vec<Sample>,
}

impl MvtecCategory {
    /// Lists a category folder. Errors: a missing `train/good` or `test` folder, an empty
    /// `train/good` or defect folder, a defect image without its `_mask.png`.
    pub fn load(root: &Path) -> Result<Self> {
        require_dir(root)?;
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let train_dir = root.join("train").join("good");
        require_dir(&train_dir)?;
        let train: Vec<Sample> = list_images(&train_dir)?
            .into_iter()
            .map(|p| Sample::file(p, 0, "good"))
            .collect();
        if train.is_empty() {
            return Err(Error::EmptyClass {
                class: "train/good".into(),
                path: train_dir,
            });
        }

        let test_dir = root.join("test");
        require_dir(&test_dir)?;
        let mut groups: Vec<String> = Vec::new();
        for entry in std::fs::read_dir(&test_dir).map_err(|e| Error::io(&test_dir, e))? {
            let path = entry.map_err(|e| Error::io(&test_dir, e))?.path();
            if path.is_dir() {
                groups.push(
                    path.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
        groups.sort();
        // normal images first
        groups.sort_by_key(|g| g != "good");

        let mut test = Vec::new();
        for group in groups {
            let dir = test_dir.join(&group);
            let files = list_images(&dir)?;
            if files.is_empty() {
                return Err(Error::EmptyClass {
                    class: format!("test/{group}"),
                    path: dir,
                });
            }
            for path in files {
                let sample = if group == "good" {
                    Sample {
                        mask: MaskSource::AllNormal,
                        ..Sample::file(path, 0, "good")
                    }
                } else {
                    let mask = mask_path(root, &group, &path);
                    if !mask.is_file() {
                        return Err(Error::MissingFile {
                            path: mask,
                            what: format!("mask of {}", path.display()),
                        });
                    }
                    Sample {
                        mask: MaskSource::File(mask),
                        ..Sample::file(path, 1, group.clone())
                    }
                };
                test.push(sample);
            }
        }
        Ok(MvtecCategory {
            name,
            root: root.to_path_buf(),
            train,
            test,
        })
    }

    /// Number of test images with a mask file (the anomalous ones).
    pub fn masked_test_images(&self) -> usize {
        self.test
            .iter()
            .filter(|s| matches!(s.mask, MaskSource::File(_)))
            .count()
    }

    /// Names of the defect types, sorted.
    pub fn defects(&self) -> Vec<String> {
        let mut d: Vec<String> = self
            .test
            .iter()
            .filter(|s| s.label == 1)
            .map(|s| s.group.clone())
            .collect();
        d.dedup();
        d
    }
}

/// `ground_truth/<defect>/<stem>_mask.png` of a test image.
pub fn mask_path(root: &Path, defect: &str, image: &Path) -> PathBuf {
    let stem = image
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    root.join("ground_truth")
        .join(defect)
        .join(format!("{stem}_mask.png"))
}

/// The categories of an MVTec-layout data set: sub-folders of `dataset_root` that hold a
/// `train/good` folder, sorted.
pub fn list_categories(dataset_root: &Path) -> Result<Vec<String>> {
    require_dir(dataset_root)?;
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dataset_root).map_err(|e| Error::io(dataset_root, e))? {
        let path = entry.map_err(|e| Error::io(dataset_root, e))?.path();
        if path.join("train").join("good").is_dir() {
            names.push(
                path.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    names.sort();
    Ok(names)
}
