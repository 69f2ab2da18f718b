//! A small procedural defect data set in the MVTec AD layout, for `oddity demo` and tests:
//! normal images are oriented gratings (angle within ±15° of a fixed direction, random period
//! and phase) with pixel noise; defect images add a scratch (a thin bright or dark line) or a
//! blob (a dark ellipse), with their pixel masks under `ground_truth/<defect>/<stem>_mask.png`.

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::data::{ImageTensor, Mask};
use crate::error::{Error, Result};

/// How many images of each kind [`write_texture_dataset`] makes, and their size.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct TextureDataset {
    /// Height = width of every image.
    pub size: usize,
    /// Normal training images (`train/good`).
    pub train: usize,
    /// Normal test images (`test/good`).
    pub test_good: usize,
    /// Test images of each defect type (`test/scratch`, `test/blob`).
    pub test_defects: usize,
    pub seed: u64,
}

/// The defect types, as folder names.
pub const DEFECTS: [&str; 2] = ["scratch", "blob"];

/// A grating near 30° with noise, values in [0, 1]: [1, size, size].
pub fn texture(size: usize, rng: &mut ChaCha8Rng) -> ImageTensor {
    let angle = (30.0 + rng.random_range(-15f64..15.0)).to_radians();
    let period = rng.random_range(6.0..10.0);
    let phase = rng.random_range(0.0..std::f64::consts::TAU);
    let mut img = ImageTensor::zeros(1, size, size);
    for y in 0..size {
        for x in 0..size {
            let t = y as f64 * angle.cos() + x as f64 * angle.sin();
            let v = 0.5 + 0.3 * (std::f64::consts::TAU * t / period + phase).sin() + rng.random_range(-0.08..0.08);
            img.data[y * size + x] = v.clamp(0.0, 1.0) as f32;
        }
    }
    img
}

/// Paints a defect of `kind` into `img` and returns its mask.
pub fn add_defect(img: &mut ImageTensor, kind: &str, rng: &mut ChaCha8Rng) -> Result<Mask> {
    let (h, w) = (img.height, img.width);
    let mut mask = Mask::zeros(h, w);
    let (cy, cx) = (rng.random_range(0.25..0.75) * h as f64, rng.random_range(0.25..0.75) * w as f64);
    let inside: Box<dyn Fn(f64, f64) -> bool> = match kind {
        "scratch" => {
            let a = rng.random_range(0.0..std::f64::consts::PI);
            let half_len = rng.random_range(0.2..0.35) * w as f64;
            let half_width = rng.random_range(0.8..1.6);
            Box::new(move |y, x| {
                let (dy, dx) = (y - cy, x - cx);
                let along = dx * a.cos() + dy * a.sin();
                let across = -dx * a.sin() + dy * a.cos();
                along.abs() <= half_len && across.abs() <= half_width
            })
        }
        "blob" => {
            let (ry, rx) = (rng.random_range(0.06..0.14) * h as f64, rng.random_range(0.06..0.14) * w as f64);
            Box::new(move |y, x| ((y - cy) / ry).powi(2) + ((x - cx) / rx).powi(2) <= 1.0)
        }
        other => return Err(Error::InvalidArgument(format!("unknown defect '{other}', expected scratch or blob"))),
    };
    let value: f32 = if kind == "scratch" && rng.random_bool(0.5) { 0.97 } else { 0.05 };
    for y in 0..h {
        for x in 0..w {
            if inside(y as f64 + 0.5, x as f64 + 0.5) {
                img.data[y * w + x] = value;
                mask.data[y * w + x] = 1;
            }
        }
    }
    Ok(mask)
}

fn save_mask(mask: &Mask, path: &Path) -> Result<()> {
    let img = ImageTensor::from_vec(mask.data.iter().map(|&m| f32::from(m)).collect(), 1, mask.height, mask.width)?;
    img.save_png(path)
}

fn create(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

/// Writes the data set to `root/<class>/` in the MVTec layout (seeded: the same files for the
/// same settings).
pub fn write_texture_dataset(root: &Path, class: &str, spec: &TextureDataset) -> Result<()> {
    if spec.size < 16 || spec.train == 0 || spec.test_good == 0 || spec.test_defects == 0 {
        return Err(Error::InvalidArgument(format!(
            "a texture data set needs size >= 16 and at least one image of each kind, got {spec:?}"
        )));
    }
    let dir = root.join(class);
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    for (part, n) in [("train/good", spec.train), ("test/good", spec.test_good)] {
        let d = dir.join(part);
        create(&d)?;
        for i in 0..n {
            texture(spec.size, &mut rng).save_png(&d.join(format!("{i:03}.png")))?;
        }
    }
    for defect in DEFECTS {
        let d = dir.join("test").join(defect);
        let g = dir.join("ground_truth").join(defect);
        create(&d)?;
        create(&g)?;
        for i in 0..spec.test_defects {
            let mut img = texture(spec.size, &mut rng);
            let mask = add_defect(&mut img, defect, &mut rng)?;
            img.save_png(&d.join(format!("{i:03}.png")))?;
            save_mask(&mask, &g.join(format!("{i:03}_mask.png")))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::MvtecCategory;

    #[test]
    fn written_data_set_loads_as_an_mvtec_category_with_masks() {
        let root = std::env::temp_dir().join(format!("oddity-textures-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let spec = TextureDataset { size: 32, train: 5, test_good: 3, test_defects: 2, seed: 4 };
        write_texture_dataset(&root, "tex", &spec).unwrap();
        let cat = MvtecCategory::load(&root.join("tex")).unwrap();
        assert_eq!(cat.train.len(), 5);
        assert_eq!(cat.test.len(), 3 + 2 * DEFECTS.len());
        assert_eq!(cat.masked_test_images(), 2 * DEFECTS.len());
        for s in cat.test.iter().filter(|s| s.label == 1) {
            let (img, mask) = s.load_with_mask().unwrap();
            let mask = mask.unwrap();
            assert_eq!((img.height, img.width), (32, 32));
            assert!(mask.anomalous_pixels() > 0, "{}", s.describe());
        }
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn unknown_defect_is_an_error() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut img = texture(16, &mut rng);
        assert!(add_defect(&mut img, "dent", &mut rng).unwrap_err().to_string().contains("dent"));
    }
}
