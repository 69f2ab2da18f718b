//! Outlier exposure from a folder: disjoint seeded subsets for training and calibration.

mod common;

use oddity::data::{ImageTensor, Pipeline};
use oddity::synth::{AnomalySource, OutlierExposure};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashSet;

#[test]
fn split_is_disjoint_complete_and_seeded() {
    let root = common::scratch_dir("oe_split");
    for i in 0..20 {
        common::write_image(
            &root.join(format!(
                "{}/{i:02}.png",
                if i % 2 == 0 { "a" } else { "b/c" }
            )),
            10,
            6,
            false,
            i,
        );
    }
    let oe = OutlierExposure::from_folder(&root).unwrap();
    assert_eq!(oe.files.len(), 20);
    let (train, cal) = oe.split(0.25, 7).unwrap();
    assert_eq!((train.files.len(), cal.files.len()), (15, 5));
    let t: HashSet<_> = train.files.iter().collect();
    let c: HashSet<_> = cal.files.iter().collect();
    assert!(t.is_disjoint(&c));
    assert_eq!(t.union(&c).count(), 20);
    assert_eq!(oe.split(0.25, 7).unwrap().1.files, cal.files);
    assert_ne!(oe.split(0.25, 8).unwrap().1.files, cal.files);

    // samples come from the subset, augmented, in image range
    let mut cal = cal.with_pipeline(Pipeline::test(8));
    let normal = vec![ImageTensor::zeros(3, 8, 8); 3];
    let out = cal
        .generate(&normal, &mut ChaCha8Rng::seed_from_u64(0))
        .unwrap();
    assert_eq!(out.len(), 3);
    assert!(out
        .iter()
        .all(|o| (o.channels, o.height, o.width) == (3, 8, 8)));
    assert!(out
        .iter()
        .all(|o| o.data.iter().all(|v| (0.0..=1.0).contains(v))));
}

#[test]
fn missing_or_empty_folder_is_named() {
    let root = common::scratch_dir("oe_bad");
    let err = OutlierExposure::from_folder(&root.join("absent"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("folder not found") && err.contains("absent"),
        "{err}"
    );
    std::fs::create_dir_all(root.join("empty")).unwrap();
    let err = OutlierExposure::from_folder(&root.join("empty"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("outlier exposure") && err.contains("empty"),
        "{err}"
    );
}
