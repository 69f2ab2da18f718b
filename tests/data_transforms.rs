//! Transforms (thesis §4.2): sizes, flip switch, grayscale, jitter and noise ranges, and the
//! serializable z-score normalization.

mod common;

use oddity::data::transforms::{
    crop, gaussian_noise, grayscale, hflip, resize, resize_before_crop, to_rgb, ChannelMode,
    ColorJitter,
};
use oddity::data::{ImageTensor, Normalization, Pipeline};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn ramp(channels: usize, height: usize, width: usize) -> ImageTensor {
    let mut img = ImageTensor::zeros(channels, height, width);
    for (i, v) in img.data.iter_mut().enumerate() {
        *v = (i % 97) as f32 / 96.0;
    }
    img
}

#[test]
fn crop_sizes_of_the_thesis() {
    assert_eq!(resize_before_crop(256), 292);
    assert_eq!(resize_before_crop(224), 256);
    let p = Pipeline::train(256, true);
    assert_eq!(
        (p.resize, p.random_crop),
        (Some((292, 292)), Some((256, 256)))
    );
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let out = p.apply(ramp(3, 300, 410), &mut rng).unwrap();
    assert_eq!((out.channels, out.height, out.width), (3, 256, 256));
    let test = Pipeline::train(224, false).for_test();
    assert_eq!(
        (
            test.resize,
            test.random_crop,
            test.jitter,
            test.noise_std,
            test.hflip
        ),
        (Some((224, 224)), None, None, 0.0, false)
    );
    let out = test.apply(ramp(1, 627, 250), &mut rng).unwrap();
    assert_eq!((out.channels, out.height, out.width), (1, 224, 224));
}

#[test]
fn resize_keeps_constants_and_averages_when_shrinking() {
    let mut flat = ImageTensor::zeros(2, 37, 23);
    flat.data.iter_mut().for_each(|v| *v = 0.25);
    let out = resize(&flat, 11, 50);
    assert!(out.data.iter().all(|v| (v - 0.25).abs() < 1e-6));
    // a 1-pixel checkerboard shrunk 4x averages to 1/2 (antialiased)
    let mut board = ImageTensor::zeros(1, 64, 64);
    for y in 0..64 {
        for x in 0..64 {
            board.data[y * 64 + x] = ((x + y) % 2) as f32;
        }
    }
    let small = resize(&board, 16, 16);
    assert!(
        small.data.iter().all(|v| (v - 0.5).abs() < 0.05),
        "{:?}",
        &small.data[..4]
    );
}

#[test]
fn crop_takes_the_window() {
    let img = ramp(1, 6, 5);
    let c = crop(&img, 2, 1, 3, 2).unwrap();
    assert_eq!(
        c.data,
        vec![
            img.at(0, 2, 1),
            img.at(0, 2, 2),
            img.at(0, 3, 1),
            img.at(0, 3, 2),
            img.at(0, 4, 1),
            img.at(0, 4, 2)
        ]
    );
    let err = crop(&img, 5, 0, 3, 2).unwrap_err().to_string();
    assert!(err.contains("crop window"), "{err}");
}

#[test]
fn flip_mirrors_and_can_be_switched_off() {
    let img = ramp(3, 4, 5);
    let mut flipped = img.clone();
    hflip(&mut flipped);
    assert_eq!(flipped.at(1, 2, 0), img.at(1, 2, 4));
    hflip(&mut flipped);
    assert_eq!(flipped, img);
    // flip on: some of 20 runs flip; flip off: none does
    let on = Pipeline {
        hflip: true,
        ..Pipeline::default()
    };
    let off = Pipeline {
        hflip: false,
        ..Pipeline::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let flips = (0..20)
        .filter(|_| on.apply(img.clone(), &mut rng).unwrap() != img)
        .count();
    assert!(flips > 0 && flips < 20, "{flips}");
    assert!((0..20).all(|_| off.apply(img.clone(), &mut rng).unwrap() == img));
}

#[test]
fn grayscale_and_rgb() {
    let mut img = ImageTensor::zeros(3, 1, 2);
    img.data = vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0];
    let g = grayscale(&img);
    assert_eq!(g.channels, 1);
    assert!((g.data[0] - 0.299).abs() < 1e-6 && (g.data[1] - 0.587).abs() < 1e-6);
    let rgb = to_rgb(&g);
    assert_eq!((rgb.channels, rgb.channel(2)), (3, g.channel(0)));
    let p = Pipeline::default().with_channels(ChannelMode::Gray);
    let out = p
        .apply(ramp(3, 4, 4), &mut ChaCha8Rng::seed_from_u64(0))
        .unwrap();
    assert_eq!(out.channels, 1);
}

#[test]
fn jitter_and_noise_stay_small_and_in_range() {
    let img = ramp(3, 16, 16);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut j = img.clone();
    ColorJitter {
        brightness: 0.0,
        contrast: 0.0,
        saturation: 0.0,
    }
    .apply(&mut j, &mut rng);
    assert!(
        j.data
            .iter()
            .zip(&img.data)
            .all(|(a, b)| (a - b).abs() < 1e-6),
        "zero jitter is the identity"
    );
    let mut j = img.clone();
    ColorJitter::default().apply(&mut j, &mut rng);
    assert!(j.data.iter().all(|v| (0.0..=1.0).contains(v)));
    let max_change = j
        .data
        .iter()
        .zip(&img.data)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(max_change > 0.0 && max_change < 0.15, "{max_change}");
    let mut mid = ImageTensor::zeros(1, 100, 100);
    mid.data.iter_mut().for_each(|v| *v = 0.5);
    gaussian_noise(&mut mid, 0.01, &mut rng);
    let n = mid.data.len() as f32;
    let mean = mid.data.iter().sum::<f32>() / n;
    let sd = (mid.data.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n).sqrt();
    assert!(
        (mean - 0.5).abs() < 0.001 && (sd - 0.01).abs() < 0.001,
        "{mean} {sd}"
    );
}

#[test]
fn normalization_z_scores_and_round_trips_through_json() {
    let images: Vec<ImageTensor> = (0..5)
        .map(|k| {
            let mut img = ramp(3, 8, 8);
            img.channel_mut(1)
                .iter_mut()
                .for_each(|v| *v = *v * 0.5 + 0.1 * k as f32);
            img
        })
        .collect();
    let norm = Normalization::fit(images.iter().cloned().map(Ok)).unwrap();
    assert_eq!(norm.mean.len(), 3);
    let mut all = Vec::new();
    for img in &images {
        let mut z = img.clone();
        norm.apply(&mut z).unwrap();
        all.push(z);
    }
    for c in 0..3 {
        let vals: Vec<f64> = all
            .iter()
            .flat_map(|z| z.channel(c).iter().map(|&v| v as f64))
            .collect();
        let mean = vals.iter().sum::<f64>() / vals.len() as f64;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64;
        assert!(
            mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4,
            "channel {c}: {mean} {var}"
        );
    }
    let mut back = all[2].clone();
    norm.invert(&mut back).unwrap();
    assert!(back
        .data
        .iter()
        .zip(&images[2].data)
        .all(|(a, b)| (a - b).abs() < 1e-5));

    let dir = common::scratch_dir("normalization_json");
    let path = dir.join("normalization.json");
    norm.save_json(&path).unwrap();
    assert_eq!(Normalization::load_json(&path).unwrap(), norm);
    let pipeline: Pipeline = serde_json::from_str(
        &serde_json::to_string(&Pipeline::train(224, true).with_normalization(norm.clone()))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(pipeline.normalization, Some(norm.clone()));

    let err = norm.apply(&mut ramp(1, 2, 2)).unwrap_err().to_string();
    assert!(
        err.contains("3 channels") && err.contains("1 channels"),
        "{err}"
    );
}

#[test]
fn png_round_trip() {
    let dir = common::scratch_dir("png_round_trip");
    for channels in [1, 3] {
        let img = ramp(channels, 5, 7);
        let path = dir.join(format!("ramp{channels}.png"));
        img.save_png(&path).unwrap();
        let back = oddity::data::load_image(&path).unwrap();
        assert_eq!((back.channels, back.height, back.width), (channels, 5, 7));
        assert!(back
            .data
            .iter()
            .zip(&img.data)
            .all(|(a, b)| (a - b).abs() <= 0.5 / 255.0 + 1e-6));
    }
    let err = ImageTensor::zeros(2, 2, 2)
        .save_png(&dir.join("x.png"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("2 channels"), "{err}");
}
