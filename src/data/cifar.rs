//! Class-folder data sets: `<split>/<class>/*.jpg|png`, e.g. the CIFAR-10 JPEG copy
//! `cifar10/{train,test}/<class>/NNNN.jpg` (10 classes, 5,000 train and 1,000 test images
//! each, 32x32 RGB). Evaluated one-vs-all (thesis §4.2.2), see [`super::split`].

use super::folder::list_images;
use super::{require_dir, Sample};
use crate::error::{Error, Result};
use std::path::Path;

/// The samples of one class (label 0 until a protocol assigns labels).
#[derive(Debug, Clone)]
pub struct ClassSamples {
    pub name: String,
    pub samples: Vec<Sample>,
}

/// Images grouped by class, classes in sorted order.
#[derive(Debug, Clone, Default)]
pub struct ClassSet {
    pub classes: Vec<ClassSamples>,
}

impl ClassSet {
    /// Reads `<split_dir>/<class>/*`; every sub-folder is a class. Errors: a missing folder,
    /// no class folder, or a class folder without images.
    pub fn from_class_folders(split_dir: &Path) -> Result<Self> {
        Self::from_selected_class_folders(split_dir, None)
    }

    /// Like [`ClassSet::from_class_folders`] but lists only the named classes (each must
    /// exist), which avoids touching the other folders of a large data set.
    pub fn from_selected_class_folders(split_dir: &Path, only: Option<&[&str]>) -> Result<Self> {
        require_dir(split_dir)?;
        let mut names = Vec::new();
        match only {
            Some(selected) => {
                for &name in selected {
                    require_dir(&split_dir.join(name))?;
                    names.push(name.to_string());
                }
            }
            None => {
                for entry in std::fs::read_dir(split_dir).map_err(|e| Error::io(split_dir, e))? {
                    let path = entry.map_err(|e| Error::io(split_dir, e))?.path();
                    if path.is_dir() {
                        names.push(
                            path.file_name()
                                .unwrap_or_default()
                                .to_string_lossy()
                                .into(),
                        );
                    }
                }
            }
        }
        names.sort();
        if names.is_empty() {
            return Err(Error::EmptyClass {
                class: "(no class folders)".into(),
                path: split_dir.to_path_buf(),
            });
        }
        let mut classes = Vec::new();
        for name in names {
            let dir = split_dir.join(&name);
            let files = list_images(&dir)?;
            if files.is_empty() {
                return Err(Error::EmptyClass {
                    class: name,
                    path: dir,
                });
            }
            let samples = files
                .into_iter()
                .map(|p| Sample::file(p, 0, name.clone()))
                .collect();
            classes.push(ClassSamples { name, samples });
        }
        Ok(ClassSet { classes })
    }

    /// Class names in order.
    pub fn class_names(&self) -> Vec<&str> {
        self.classes.iter().map(|c| c.name.as_str()).collect()
    }

    /// The samples of class `name`.
    pub fn class(&self, name: &str) -> Option<&ClassSamples> {
        self.classes.iter().find(|c| c.name == name)
    }

    /// Total number of samples.
    pub fn len(&self) -> usize {
        self.classes.iter().map(|c| c.samples.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The CIFAR-10 JPEG folder `root` (holding `train/` and `test/`): (train, test).
pub fn cifar10(root: &Path) -> Result<(ClassSet, ClassSet)> {
    require_dir(root)?;
    Ok((
        ClassSet::from_class_folders(&root.join("train"))?,
        ClassSet::from_class_folders(&root.join("test"))?,
    ))
}
