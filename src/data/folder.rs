//! A plain folder of images, e.g. an outlier-exposure source: every PNG or JPEG file under the
//! folder (sub-folders included), in sorted path order so that seeded subsets are
//! reproducible.

use super::{is_image_file, require_dir, Sample};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The image files directly in `dir` (not in sub-folders), sorted by path. A missing folder
/// is an error; an empty one gives an empty list.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    require_dir(dir)?;
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.is_file() && is_image_file(&path) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The image files in `dir` and all its sub-folders, sorted by path.
pub fn list_images_recursive(dir: &Path) -> Result<Vec<PathBuf>> {
    require_dir(dir)?;
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))? {
            let path = entry.map_err(|e| Error::io(&d, e))?.path();
            if path.is_dir() {
                pending.push(path);
            } else if is_image_file(&path) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Every image under `dir` as a sample with `label`, grouped under the folder's name.
/// An empty folder is an [`Error::EmptyClass`].
pub fn image_folder(dir: &Path, label: u8) -> Result<Vec<Sample>> {
    let files = list_images_recursive(dir)?;
    let group = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if files.is_empty() {
        return Err(Error::EmptyClass {
            class: group,
            path: dir.to_path_buf(),
        });
    }
    Ok(files
        .into_iter()
        .map(|p| Sample::file(p, label, group.clone()))
        .collect())
}
