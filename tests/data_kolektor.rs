//! The KolektorSDD copy in the shared data folder (MVTec layout): every image loads with its
//! mask. Skipped, with a message, when the shared data folder is absent.

mod common;

use oddity::data::{DataSplit, MaskSource, MvtecCategory};
use std::collections::HashSet;

fn kolektor() -> Option<MvtecCategory> {
    let cache = common::extracted("kolektorsdd-mvtec.tar.gz", "kolektor", &[])?;
    Some(MvtecCategory::load(&cache.join("kolektor")).expect("loading kolektor"))
}

#[test]
fn kolektor_all_399_images_load_with_their_52_masks() {
    let Some(category) = kolektor() else { return };
    assert_eq!(category.name, "kolektor");
    assert_eq!(category.train.len(), 260);
    assert_eq!(category.test.iter().filter(|s| s.label == 0).count(), 87);
    assert_eq!(category.test.iter().filter(|s| s.label == 1).count(), 52);
    assert_eq!(category.masked_test_images(), 52);
    assert_eq!(category.defects(), vec!["defect".to_string()]);

    let (mut images, mut masks) = (0, 0);
    for sample in category.train.iter().chain(&category.test) {
        let (image, mask) = sample.load_with_mask().unwrap();
        assert_eq!(image.channels, 1, "{} is grayscale", sample.describe());
        assert!(
            image.width >= 200 && image.height >= 500,
            "{}: {}x{}",
            sample.describe(),
            image.width,
            image.height
        );
        assert!(image.data.iter().all(|v| (0.0..=1.0).contains(v)));
        images += 1;
        if let MaskSource::File(_) = sample.mask {
            let mask = mask.unwrap();
            assert_eq!((mask.height, mask.width), (image.height, image.width));
            assert!(
                mask.anomalous_pixels() > 0,
                "{}: empty mask",
                sample.describe()
            );
            masks += 1;
        }
    }
    assert_eq!((images, masks), (399, 52));
}

#[test]
fn kolektor_per_category_split_is_3_to_1_and_seeded() {
    let Some(category) = kolektor() else { return };
    let a = DataSplit::per_category(&category, 1).unwrap();
    assert_eq!(
        (a.train.len(), a.calibration.len(), a.test.len()),
        (195, 65, 139)
    );
    let names = |v: &[oddity::data::Sample]| v.iter().map(|s| s.describe()).collect::<HashSet<_>>();
    assert!(names(&a.train).is_disjoint(&names(&a.calibration)));
    assert_eq!(a.full_train().len(), 260);
    let again = DataSplit::per_category(&category, 1).unwrap();
    assert_eq!(names(&again.calibration), names(&a.calibration));
    let other = DataSplit::per_category(&category, 2).unwrap();
    assert_ne!(names(&other.calibration), names(&a.calibration));
}
