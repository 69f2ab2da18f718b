//! One test per bad input of the issue: each is an error (never a panic) whose message names
//! the file, row, shape or value.

mod common;

use common::{write_image, write_mask};
use oddity::data::fashion_mnist::read_idx_gz;
use oddity::data::{load_image, ClassSet, MvtecCategory};
use oddity::metrics::{auroc, ece, pixel_auroc};
use std::io::Write;

#[test]
fn missing_folder_is_named() {
    let root = common::scratch_dir("bad_missing");
    let missing = root.join("no_such_category");
    let err = MvtecCategory::load(&missing).unwrap_err().to_string();
    assert!(
        err.contains("folder not found") && err.contains("no_such_category"),
        "{err}"
    );
    // a category without test/
    write_image(&root.join("cat/train/good/0.png"), 4, 4, true, 0);
    let err = MvtecCategory::load(&root.join("cat"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("folder not found") && err.contains("cat/test"),
        "{err}"
    );
    let err = ClassSet::from_class_folders(&root.join("nope"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn mask_size_mismatch_names_mask_image_and_sizes() {
    let root = common::scratch_dir("bad_mask_size");
    let cat = root.join("cat");
    write_image(&cat.join("train/good/0.png"), 10, 8, false, 0);
    write_image(&cat.join("test/scratch/007.png"), 10, 8, false, 0);
    write_mask(&cat.join("ground_truth/scratch/007_mask.png"), 12, 8);
    let category = MvtecCategory::load(&cat).unwrap();
    let err = category.test[0].load_with_mask().unwrap_err().to_string();
    assert!(
        err.contains("007_mask.png") && err.contains("007.png"),
        "{err}"
    );
    assert!(err.contains("12x8") && err.contains("10x8"), "{err}");
}

#[test]
fn missing_mask_names_the_expected_file() {
    let root = common::scratch_dir("bad_missing_mask");
    let cat = root.join("cat");
    write_image(&cat.join("train/good/0.png"), 4, 4, true, 0);
    write_image(&cat.join("test/hole/003.png"), 4, 4, true, 0);
    let err = MvtecCategory::load(&cat).unwrap_err().to_string();
    assert!(
        err.contains("ground_truth/hole/003_mask.png") && err.contains("003.png"),
        "{err}"
    );
}

#[test]
fn unreadable_image_names_the_file() {
    let root = common::scratch_dir("bad_unreadable");
    let path = root.join("garbage.png");
    std::fs::write(&path, b"this is not a png at all").unwrap();
    let err = load_image(&path).unwrap_err().to_string();
    assert!(
        err.contains("cannot decode image") && err.contains("garbage.png"),
        "{err}"
    );
    let missing = root.join("absent.png");
    let err = load_image(&missing).unwrap_err().to_string();
    assert!(err.contains("absent.png"), "{err}");
}

#[test]
fn truncated_png_and_jpeg_name_the_file() {
    let root = common::scratch_dir("bad_truncated");
    for name in ["cut.png", "cut.jpg"] {
        let path = root.join(name);
        write_image(&path, 64, 48, false, 3);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() * 2 / 3]).unwrap();
        let err = load_image(&path).unwrap_err().to_string();
        assert!(
            err.contains("cannot decode image") && err.contains(name),
            "{err}"
        );
    }
}

#[test]
fn empty_class_names_the_folder() {
    let root = common::scratch_dir("bad_empty_class");
    write_image(&root.join("train/cat/0.jpg"), 4, 4, false, 0);
    std::fs::create_dir_all(root.join("train/dog")).unwrap();
    let err = ClassSet::from_class_folders(&root.join("train"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("class 'dog' has no images") && err.contains("train/dog"),
        "{err}"
    );
    // MVTec: an empty train/good
    std::fs::create_dir_all(root.join("cat/train/good")).unwrap();
    std::fs::create_dir_all(root.join("cat/test/good")).unwrap();
    let err = MvtecCategory::load(&root.join("cat"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("train/good") && err.contains("has no images"),
        "{err}"
    );
}

#[test]
fn label_outside_0_1_names_the_index() {
    let err = auroc(&[0.1, 0.2, 0.3], &[0, 1, 3]).unwrap_err().to_string();
    assert!(err.contains("index 2") && err.contains("is 3"), "{err}");
    let err = ece(&[0.1, 0.2], &[7, 1], 10).unwrap_err().to_string();
    assert!(err.contains("index 0") && err.contains("is 7"), "{err}");
    let err = pixel_auroc(&[0.1, 0.2], &[0, 255]).unwrap_err().to_string();
    assert!(err.contains("index 1") && err.contains("255"), "{err}");
}

#[test]
fn nan_score_names_the_index() {
    let err = auroc(&[0.1, f64::NAN, 0.3], &[0, 1, 1])
        .unwrap_err()
        .to_string();
    assert!(err.contains("index 1") && err.contains("NaN"), "{err}");
    let err = pixel_auroc(&[0.1, 0.2, f32::NAN], &[0, 1, 1])
        .unwrap_err()
        .to_string();
    assert!(err.contains("index 2") && err.contains("NaN"), "{err}");
}

#[test]
fn malformed_idx_names_the_file() {
    let root = common::scratch_dir("bad_idx");
    let path = root.join("train-images-idx3-ubyte.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::fast(),
    );
    // 3 dims 2x2x2 = 8 bytes promised, 5 given
    gz.write_all(&[
        0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4, 5,
    ])
    .unwrap();
    gz.finish().unwrap();
    let err = read_idx_gz(&path).unwrap_err().to_string();
    assert!(
        err.contains("train-images-idx3-ubyte.gz") && err.contains("need 8 bytes"),
        "{err}"
    );
}
