//! Loaders and protocols on small trees made by the tests, on one CIFAR-10 class subset, and
//! on Fashion-MNIST when the Debian package is installed.

mod common;

use common::{write_image, write_mask};
use oddity::data::fashion_mnist::FASHION_MNIST_DEFAULT_DIR;
use oddity::data::folder::{image_folder, list_images_recursive};
use oddity::data::mvtec::list_categories;
use oddity::data::{
    ClassSet, DataSplit, FashionMnist, MaskSource, MvtecCategory, FASHION_MNIST_CLASSES,
};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// `<root>/widget` in the MVTec layout: 8 train, 3 test/good, 2 test/crack, 2 test/hole.
fn mvtec_tree(root: &Path) -> PathBuf {
    let cat = root.join("widget");
    for i in 0..8 {
        write_image(
            &cat.join(format!("train/good/{i:03}.png")),
            20,
            16,
            false,
            i,
        );
    }
    for i in 0..3 {
        write_image(
            &cat.join(format!("test/good/{i:03}.png")),
            20,
            16,
            false,
            50 + i,
        );
    }
    for defect in ["crack", "hole"] {
        for i in 0..2 {
            write_image(
                &cat.join(format!("test/{defect}/{i:03}.png")),
                20,
                16,
                false,
                90 + i,
            );
            write_mask(
                &cat.join(format!("ground_truth/{defect}/{i:03}_mask.png")),
                20,
                16,
            );
        }
    }
    std::fs::write(cat.join("train/good/readme.txt"), "not an image").unwrap();
    cat
}

#[test]
fn mvtec_layout_labels_masks_and_order() {
    let root = common::scratch_dir("mvtec_layout");
    let cat_dir = mvtec_tree(&root);
    assert_eq!(list_categories(&root).unwrap(), vec!["widget"]);
    let cat = MvtecCategory::load(&cat_dir).unwrap();
    assert_eq!(cat.name, "widget");
    assert_eq!(cat.train.len(), 8, "the .txt file is not an image");
    assert_eq!(cat.test.len(), 7);
    let groups: Vec<&str> = cat.test.iter().map(|s| s.group.as_str()).collect();
    assert_eq!(
        groups,
        ["good", "good", "good", "crack", "crack", "hole", "hole"]
    );
    let labels: Vec<u8> = cat.test.iter().map(|s| s.label).collect();
    assert_eq!(labels, [0, 0, 0, 1, 1, 1, 1]);
    assert_eq!(cat.defects(), ["crack", "hole"]);
    assert_eq!(cat.test[0].mask, MaskSource::AllNormal);
    let (img, mask) = cat.test[3].load_with_mask().unwrap();
    assert_eq!((img.channels, img.height, img.width), (3, 16, 20));
    let mask = mask.unwrap();
    assert_eq!(mask.anomalous_pixels(), 5 * 4); // x in 5..10, y in 4..8
    assert_eq!(mask.data[5 * 20 + 6], 1);
    assert_eq!(mask.data[0], 0);
    let (_, normal_mask) = cat.test[0].load_with_mask().unwrap();
    assert_eq!(normal_mask.unwrap().anomalous_pixels(), 0);
    // pixel values as written: red = x*5 + seed
    let (first, _) = cat.train[0].load_with_mask().unwrap();
    assert_eq!(first.at(0, 0, 3), 15.0 / 255.0);

    let split = DataSplit::per_category(&cat, 3).unwrap();
    assert_eq!((split.train.len(), split.calibration.len()), (6, 2));
}

fn class_tree(root: &Path) {
    for (c, class) in ["cat", "dog", "frog"].iter().enumerate() {
        for i in 0..8 {
            write_image(
                &root.join(format!("train/{class}/{i:04}.jpg")),
                8,
                8,
                false,
                (c * 10 + i) as u8,
            );
        }
        for i in 0..3 {
            write_image(
                &root.join(format!("test/{class}/{i:04}.jpg")),
                8,
                8,
                false,
                (c * 10 + i) as u8,
            );
        }
    }
}

#[test]
fn class_folders_one_vs_all() {
    let root = common::scratch_dir("class_folders");
    class_tree(&root);
    let (train, test) = oddity::data::cifar10(&root).unwrap();
    assert_eq!(train.class_names(), ["cat", "dog", "frog"]);
    assert_eq!(train.len(), 24);
    let split = DataSplit::one_vs_all(&train, &test, "dog", 11).unwrap();
    assert_eq!(split.normal, "dog");
    assert_eq!((split.train.len(), split.calibration.len()), (6, 2));
    assert!(split
        .train
        .iter()
        .chain(&split.calibration)
        .all(|s| s.group == "dog" && s.label == 0));
    assert_eq!(split.test.len(), 9);
    assert!(split.test[..3]
        .iter()
        .all(|s| s.group == "dog" && s.label == 0));
    assert!(split.test[3..]
        .iter()
        .all(|s| s.group != "dog" && s.label == 1));
    let img = split.test[0].load().unwrap();
    assert_eq!((img.channels, img.height, img.width), (3, 8, 8));
    let err = DataSplit::one_vs_all(&train, &test, "horse", 11)
        .unwrap_err()
        .to_string();
    assert!(err.contains("horse"), "{err}");
}

#[test]
fn split_is_3_to_1_disjoint_and_seeded() {
    let root = common::scratch_dir("split_seeded");
    for i in 0..40 {
        write_image(&root.join(format!("imgs/{i:03}.png")), 4, 4, true, i);
    }
    let samples = image_folder(&root.join("imgs"), 0).unwrap();
    let (train, cal) = oddity::data::train_calibration_split(&samples, 5).unwrap();
    assert_eq!((train.len(), cal.len()), (30, 10));
    let names = |v: &[oddity::data::Sample]| v.iter().map(|s| s.describe()).collect::<HashSet<_>>();
    assert!(names(&train).is_disjoint(&names(&cal)));
    assert_eq!(names(&train).union(&names(&cal)).count(), 40);
    let (_, cal_again) = oddity::data::train_calibration_split(&samples, 5).unwrap();
    assert_eq!(names(&cal), names(&cal_again));
    let (_, cal_other) = oddity::data::train_calibration_split(&samples, 6).unwrap();
    assert_ne!(names(&cal), names(&cal_other));

    // The thesis fraction through the general form is the same split; other fractions round
    // to nearest and always leave both parts non-empty; out-of-range fractions are errors.
    let (_, cal_quarter) = oddity::data::train_calibration_split_with(&samples, 5, 0.25).unwrap();
    assert_eq!(names(&cal), names(&cal_quarter));
    for (fraction, expect) in [(0.4, 16), (0.01, 1), (0.999, 39), (0.5, 20)] {
        let (train, cal) = oddity::data::train_calibration_split_with(&samples, 5, fraction).unwrap();
        assert_eq!((train.len(), cal.len()), (40 - expect, expect), "fraction {fraction}");
    }
    for bad in [0.0, 1.0, -0.5, f64::NAN] {
        let err = oddity::data::train_calibration_split_with(&samples, 5, bad).unwrap_err().to_string();
        assert!(err.contains("calibration fraction") && err.contains(&bad.to_string()), "{err}");
    }
}

#[test]
fn plain_folder_is_recursive_and_sorted() {
    let root = common::scratch_dir("plain_folder");
    write_image(&root.join("b/2.png"), 4, 4, true, 0);
    write_image(&root.join("a/1.JPG"), 4, 4, false, 0);
    write_image(&root.join("0.jpeg"), 4, 4, false, 0);
    std::fs::write(root.join("notes.md"), "x").unwrap();
    let files = list_images_recursive(&root).unwrap();
    let rel: Vec<String> = files
        .iter()
        .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    assert_eq!(rel, ["0.jpeg", "a/1.JPG", "b/2.png"]);
    assert_eq!(image_folder(&root, 1).unwrap().len(), 3);
}

#[test]
fn cifar10_one_class_subset() {
    let members = [
        "cifar10/train/airplane",
        "cifar10/test/airplane",
        "cifar10/test/cat",
    ];
    let Some(cache) = common::extracted("cifar10-jpg.tar.gz", "cifar10-subset", &members) else {
        return;
    };
    let root = cache.join("cifar10");
    let train =
        ClassSet::from_selected_class_folders(&root.join("train"), Some(&["airplane"])).unwrap();
    let test =
        ClassSet::from_selected_class_folders(&root.join("test"), Some(&["airplane", "cat"]))
            .unwrap();
    assert_eq!(train.len(), 5000);
    let split = DataSplit::one_vs_all(&train, &test, "airplane", 0).unwrap();
    assert_eq!((split.train.len(), split.calibration.len()), (3750, 1250));
    assert_eq!(split.test.len(), 2000);
    assert_eq!(split.test.iter().filter(|s| s.label == 1).count(), 1000);
    for sample in split.test.iter().step_by(40) {
        let img = sample.load().unwrap();
        assert_eq!(
            (img.channels, img.height, img.width),
            (3, 32, 32),
            "{}",
            sample.describe()
        );
    }
}

#[test]
fn fashion_mnist_from_the_debian_package() {
    let dir = Path::new(FASHION_MNIST_DEFAULT_DIR);
    if !dir.is_dir() {
        eprintln!(
            "skipped: {} not found (apt-get install dataset-fashion-mnist)",
            dir.display()
        );
        return;
    }
    let fm = FashionMnist::load(dir).unwrap();
    assert_eq!(fm.train.len(), 60_000);
    assert_eq!(fm.test.len(), 10_000);
    assert_eq!(fm.train.class_names(), FASHION_MNIST_CLASSES);
    assert!(fm.train.classes.iter().all(|c| c.samples.len() == 6000));
    assert!(fm.test.classes.iter().all(|c| c.samples.len() == 1000));
    let split = DataSplit::one_vs_all(&fm.train, &fm.test, "trouser", 0).unwrap();
    assert_eq!(
        (split.train.len(), split.calibration.len(), split.test.len()),
        (4500, 1500, 10_000)
    );
    assert_eq!(split.test.iter().filter(|s| s.label == 0).count(), 1000);
    let img = split.train[0].load().unwrap();
    assert_eq!((img.channels, img.height, img.width), (1, 28, 28));
    assert!(img.data.iter().all(|v| (0.0..=1.0).contains(v)));
    assert!(
        img.data.iter().any(|&v| v > 0.5),
        "a trouser has bright pixels"
    );
    assert!(split.test[0]
        .describe()
        .contains("t10k-images-idx3-ubyte.gz["));
}
