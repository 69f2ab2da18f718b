//! Outlier exposure from a folder: disjoint seeded subsets for training and calibration.

mod common;

use oddity::data::{ImageTensor, Pipeline};
use oddity::synth::{AnomalySource, OePart, OutlierExposure};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashSet;

#[test]
fn parts_are_disjoint_complete_stable_and_name_based() {
    let root = common::scratch_dir("oe_split");
    let name = |i: usize| format!("{}/{i:02}.png", if i % 2 == 0 { "a" } else { "b/c" });
    for i in 0..40 {
        common::write_image(&root.join(name(i)), 10, 6, false, i as u8);
    }
    let oe = OutlierExposure::from_folder(&root).unwrap();
    assert_eq!(oe.files.len(), 40);
    let parts = [OePart::Training, OePart::Calibration, OePart::Evaluation];
    let sets: Vec<HashSet<_>> = parts.iter().map(|&p| oe.part(&root, p).unwrap().files.into_iter().collect()).collect();
    for i in 0..3 {
        for j in i + 1..3 {
            assert!(sets[i].is_disjoint(&sets[j]), "{:?} and {:?} overlap", parts[i], parts[j]);
        }
    }
    assert_eq!(sets.iter().map(HashSet::len).sum::<usize>(), 40);
    // Half, a quarter, a quarter: with 40 names the hash gives each part at least a fifth.
    let sizes: Vec<usize> = sets.iter().map(HashSet::len).collect();
    assert!(sizes[0] >= 12 && sizes[1] >= 5 && sizes[2] >= 5, "{sizes:?}");
    // A file's part depends on its name inside the folder only: the same files under another
    // folder, or with more files beside them, fall in the same parts.
    let other = common::scratch_dir("oe_split_more");
    for i in 0..60 {
        common::write_image(&other.join(name(i)), 10, 6, false, i as u8);
    }
    let more = OutlierExposure::from_folder(&other).unwrap();
    for (k, &p) in parts.iter().enumerate() {
        let moved: HashSet<_> = more.part(&other, p).unwrap().files.iter().map(|f| f.strip_prefix(&other).unwrap().to_path_buf()).collect();
        let here: HashSet<_> = sets[k].iter().map(|f| f.strip_prefix(&root).unwrap().to_path_buf()).collect();
        assert!(here.is_subset(&moved), "{p:?}");
    }
    // One image: some part is empty, and the error says which and names the folder.
    let single = common::scratch_dir("oe_split_one");
    common::write_image(&single.join("x.png"), 10, 6, false, 1);
    let one = OutlierExposure::from_folder(&single).unwrap();
    let errors: Vec<String> = parts.iter().filter_map(|&p| one.part(&single, p).err().map(|e| e.to_string())).collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors.iter().all(|e| e.contains(&single.display().to_string()) && e.contains("add images")), "{errors:?}");
    let cal = oe.part(&root, OePart::Calibration).unwrap();

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
