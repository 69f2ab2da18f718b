//! Background batches: order, shapes, masks, balanced halves, seeding, and errors delivered
//! through the channel.

mod common;

use common::{write_image, write_mask};
use oddity::data::batches::{BatchPlan, Prefetcher};
use oddity::data::{MvtecCategory, Normalization, Pipeline, Sample};
use oddity::synth::{MrfAnomalies, MrfLevel, SpectralAnomalies};

fn category(name: &str) -> MvtecCategory {
    let root = common::scratch_dir(name);
    let cat = root.join("part");
    for i in 0..7 {
        write_image(&cat.join(format!("train/good/{i}.png")), 24, 20, false, i);
    }
    write_image(&cat.join("test/good/0.png"), 24, 20, false, 40);
    for i in 0..2 {
        write_image(
            &cat.join(format!("test/dent/{i}.png")),
            24,
            20,
            false,
            60 + i,
        );
        write_mask(&cat.join(format!("ground_truth/dent/{i}_mask.png")), 24, 20);
    }
    MvtecCategory::load(&cat).unwrap()
}

#[test]
fn evaluation_batches_keep_order_and_masks() {
    let cat = category("batches_eval");
    let plan = BatchPlan::evaluation(cat.test.clone(), Pipeline::test(16), 2);
    let batches: Vec<_> = Prefetcher::spawn(plan, None, 2)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0].shape, [2, 3, 16, 16]);
    assert_eq!(batches[1].shape, [1, 3, 16, 16]);
    assert_eq!(batches[0].labels, [0, 1]);
    let masks = batches[0].masks.as_ref().unwrap();
    assert_eq!(masks.len(), 2 * 16 * 16);
    assert!(masks[..256].iter().all(|&m| m == 0));
    assert!(masks[256..].contains(&1));
    assert_eq!(batches[0].data.len(), 2 * 3 * 16 * 16);
}

#[test]
fn balanced_batches_are_half_synthetic_normalized_and_seeded() {
    let cat = category("batches_balanced");
    let pipeline = Pipeline::train(16, true);
    let norm = Normalization::fit_samples(&cat.train, &pipeline).unwrap();
    let pipeline = pipeline.with_normalization(norm);
    let run = |seed: u64| {
        let plan = BatchPlan::training(cat.train.clone(), pipeline.clone(), 4, 2, seed);
        Prefetcher::spawn(plan, Some(Box::new(SpectralAnomalies::new())), 3)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    };
    let a = run(5);
    // 7 samples, 2 normal per batch, last partial dropped: 3 batches per epoch, 2 epochs
    assert_eq!(a.len(), 6);
    for b in &a {
        assert_eq!(b.shape, [4, 3, 16, 16]);
        assert_eq!(b.labels, [0, 0, 1, 1]);
        assert!(b.masks.is_none());
        assert_eq!(
            b.pixel_labels()[2 * 256..]
                .iter()
                .filter(|&&l| l == 1)
                .count(),
            2 * 256
        );
        assert!(b.data.iter().all(|v| v.is_finite()));
        assert!(b.data.iter().any(|&v| v < 0.0), "z-scores are centred");
    }
    assert_eq!(run(5), a, "same seed, same batches");
    assert_ne!(run(6), a, "another seed, other batches");
}

#[test]
fn mrf_level1_batches_shuffle_the_normal_half() {
    let cat = category("batches_mrf");
    let plan = BatchPlan::training(cat.train.clone(), Pipeline::test(8), 6, 1, 0);
    let batches: Vec<_> = Prefetcher::spawn(
        plan,
        Some(Box::new(MrfAnomalies {
            level: MrfLevel::Level1,
        })),
        1,
    )
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap();
    assert_eq!(batches.len(), 2);
    let b = &batches[0];
    // every anomalous pixel (all channels) is a normal pixel of the batch at the same position
    for n in 3..6 {
        let img = b.image(n);
        for p in 0..64 {
            let px: Vec<f32> = (0..3).map(|c| img.data[c * 64 + p]).collect();
            assert!((0..3).any(|m| (0..3).all(|c| b.image(m).data[c * 64 + p] == px[c])));
        }
    }
}

#[test]
fn a_broken_image_arrives_as_an_error_naming_it() {
    let cat = category("batches_broken");
    let broken = cat.root.join("train/good/broken.png");
    std::fs::write(&broken, b"\x89PNG not really").unwrap();
    let mut samples = cat.train.clone();
    samples.insert(1, Sample::file(&broken, 0, "good"));
    let plan = BatchPlan::evaluation(samples, Pipeline::test(8), 1);
    let mut prefetcher = Prefetcher::spawn(plan, None, 1).unwrap();
    assert!(prefetcher.next().unwrap().is_ok());
    let err = prefetcher.next().unwrap().unwrap_err().to_string();
    assert!(err.contains("broken.png"), "{err}");
    assert!(
        prefetcher.next().is_none(),
        "the thread stops after an error"
    );
}

#[test]
fn dropping_early_does_not_hang() {
    let cat = category("batches_drop");
    let plan = BatchPlan::training(cat.train.clone(), Pipeline::test(8), 2, 1000, 0);
    let mut prefetcher = Prefetcher::spawn(plan, None, 1).unwrap();
    assert!(prefetcher.next().unwrap().is_ok());
    drop(prefetcher);
}
