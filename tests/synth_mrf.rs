//! MRF approximations (MLSAD §3.1.2): level 0 is uniform noise; level 1 shuffles whole pixels
//! along the batch axis, keeping each position's pixels.

use oddity::data::ImageTensor;
use oddity::synth::{mrf_level0, mrf_level1};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[test]
fn level0_is_uniform() {
    let img = mrf_level0(3, 64, 64, &mut ChaCha8Rng::seed_from_u64(0));
    assert_eq!((img.channels, img.height, img.width), (3, 64, 64));
    assert!(img.data.iter().all(|v| (0.0..1.0).contains(v)));
    let n = img.data.len() as f64;
    let mean = img.data.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = img
        .data
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    assert!(
        (mean - 0.5).abs() < 0.01 && (var - 1.0 / 12.0).abs() < 0.003,
        "{mean} {var}"
    );
}

#[test]
fn level1_permutes_whole_pixels_at_each_position() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let batch: Vec<ImageTensor> = (0..6).map(|_| mrf_level0(3, 9, 7, &mut rng)).collect();
    let shuffled = mrf_level1(&batch, &mut rng).unwrap();
    assert_eq!(shuffled.len(), 6);
    let plane = 63;
    let pixel =
        |img: &ImageTensor, p: usize| [img.data[p], img.data[plane + p], img.data[2 * plane + p]];
    let mut moved = 0;
    for p in 0..plane {
        let mut before: Vec<[u32; 3]> = batch
            .iter()
            .map(|i| pixel(i, p).map(f32::to_bits))
            .collect();
        let mut after: Vec<[u32; 3]> = shuffled
            .iter()
            .map(|i| pixel(i, p).map(f32::to_bits))
            .collect();
        moved += before.iter().zip(&after).filter(|(a, b)| a != b).count();
        before.sort();
        after.sort();
        assert_eq!(
            before, after,
            "position {p}: the same pixels, channels together"
        );
    }
    assert!(moved > plane * 6 / 2, "most pixels move: {moved}");
    // positions are shuffled independently: output images mix several inputs
    let sources: std::collections::HashSet<usize> = (0..plane)
        .map(|p| {
            batch
                .iter()
                .position(|b| pixel(b, p) == pixel(&shuffled[0], p))
                .unwrap()
        })
        .collect();
    assert!(sources.len() > 3);
}

#[test]
fn level1_rejects_mixed_shapes() {
    let batch = vec![ImageTensor::zeros(3, 4, 4), ImageTensor::zeros(3, 4, 5)];
    let err = mrf_level1(&batch, &mut ChaCha8Rng::seed_from_u64(0))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("image 1") && err.contains("[3, 4, 4]") && err.contains("[3, 4, 5]"),
        "{err}"
    );
}
