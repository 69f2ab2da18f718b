//! The seed corpus, made by code so it can be rebuilt (`oddity-fuzz write-seeds`): small valid
//! files of every format, files that are wrong in one known way, and headers that declare huge
//! sizes (decompression bombs, IDX sizes that overflow).

use std::io::Write;

use oddity::checkpoint::{Checkpoint, HostTensor};

/// `(target, file name, bytes)` for every seed.
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    let images = image_seeds();
    for (name, bytes) in &images {
        out.push(("image", name.clone(), bytes.clone()));
        out.push(("mask", name.clone(), bytes.clone()));
    }
    for (name, bytes) in images.iter().filter(|(n, _)| n.starts_with("ok_") || n.contains("bomb")) {
        out.push(("mvtec", name.clone(), bytes.clone()));
    }
    for (name, bytes) in idx_seeds() {
        out.push(("idx", format!("{name}.idx"), bytes.clone()));
        out.push(("idx_gz", format!("{name}.idx.gz"), gzip(&bytes)));
        // An IDX1 label file is a valid IDX file but not a valid image file.
        out.push(("fmnist", format!("{}.idx", name.replace("ok_labels", "bad_labels_as_images")), bytes));
    }
    for (name, text) in csv_seeds() {
        out.push(("csv", format!("{name}.csv"), text.into_bytes()));
    }
    for (name, bytes) in checkpoint_seeds() {
        out.push(("checkpoint", format!("{name}.safetensors"), bytes));
    }
    for (name, text) in json_seeds() {
        out.push(("normalization_json", format!("{name}.json"), text.into_bytes()));
    }
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn encode(img: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, format).unwrap();
    bytes.into_inner()
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
    out
}

/// A well-formed PNG header declaring `width x height` 8-bit gray, with a few bytes of pixels.
fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&vec![0u8; 4096]).unwrap();
    let idat = z.finish().unwrap();
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(png_chunk(b"IHDR", &ihdr));
    out.extend(png_chunk(b"IDAT", &idat));
    out.extend(png_chunk(b"IEND", &[]));
    out
}

/// A JPEG whose frame header (SOF0) is patched to declare `width x height`.
fn jpeg_declaring(width: u16, height: u16) -> Vec<u8> {
    let mut bytes = encode(gradient_rgb(8, 8).into(), image::ImageFormat::Jpeg);
    let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).expect("baseline JPEG has SOF0");
    bytes[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    bytes
}

fn gradient_rgb(w: u32, h: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 30) as u8, (y * 40) as u8, ((x + y) * 10) as u8]))
}

fn image_seeds() -> Vec<(String, Vec<u8>)> {
    use image::{DynamicImage, ImageFormat, ImageBuffer, Luma, LumaA, Rgba};
    let gray = image::GrayImage::from_fn(7, 5, |x, y| Luma([((x * 37 + y * 11) % 256) as u8]));
    let mask = image::GrayImage::from_fn(7, 5, |x, _| Luma([if x > 3 { 255 } else { 0 }]));
    let gray16: ImageBuffer<Luma<u16>, Vec<u16>> = ImageBuffer::from_fn(5, 3, |x, y| Luma([(x * 9000 + y * 300) as u16]));
    let rgba = image::RgbaImage::from_fn(4, 6, |x, y| Rgba([x as u8 * 60, y as u8 * 40, 200, 128]));
    let graya: ImageBuffer<LumaA<u8>, Vec<u8>> = ImageBuffer::from_fn(3, 3, |x, y| LumaA([(x * 80) as u8, (y * 100) as u8]));
    let png_rgb = encode(gradient_rgb(6, 4).into(), ImageFormat::Png);
    let jpg_rgb = encode(gradient_rgb(9, 7).into(), ImageFormat::Jpeg);
    let mut v = vec![
        ("ok_gray_7x5.png".to_string(), encode(gray.clone().into(), ImageFormat::Png)),
        ("ok_mask_7x5.png".to_string(), encode(mask.into(), ImageFormat::Png)),
        ("ok_gray16_5x3.png".to_string(), encode(DynamicImage::ImageLuma16(gray16), ImageFormat::Png)),
        ("ok_rgba_4x6.png".to_string(), encode(rgba.into(), ImageFormat::Png)),
        ("ok_graya_3x3.png".to_string(), encode(DynamicImage::ImageLumaA8(graya), ImageFormat::Png)),
        ("ok_rgb_6x4.png".to_string(), png_rgb.clone()),
        ("ok_rgb_9x7.jpg".to_string(), jpg_rgb.clone()),
        ("ok_gray_7x5.jpg".to_string(), encode(gray.into(), ImageFormat::Jpeg)),
        ("bad_empty.png".to_string(), Vec::new()),
        ("bad_text.png".to_string(), b"not an image at all\n".to_vec()),
        ("bad_truncated.png".to_string(), png_rgb[..png_rgb.len() / 2].to_vec()),
        ("bad_truncated.jpg".to_string(), jpg_rgb[..jpg_rgb.len() / 2].to_vec()),
        ("bad_zero_width.png".to_string(), png_declaring(0, 5)),
        // Decompression bombs: a few hundred bytes that declare gigapixels.
        ("bomb_65535x65535.png".to_string(), png_declaring(65535, 65535)),
        ("bomb_1x4000000000.png".to_string(), png_declaring(1, 4_000_000_000)),
        ("bomb_65500x65500.jpg".to_string(), jpeg_declaring(65500, 65500)),
    ];
    v.sort();
    v
}

fn idx_header(dims: &[u32]) -> Vec<u8> {
    let mut out = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out
}

fn idx_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let images = |n: u32, r: u32, c: u32| {
        let mut b = idx_header(&[n, r, c]);
        b.extend((0..n * r * c).map(|i| (i * 7 % 256) as u8));
        b
    };
    let mut labels = idx_header(&[12]);
    labels.extend((0..12).map(|i| i % 10));
    vec![
        ("ok_images_10x2x2", images(10, 2, 2)),
        ("ok_images_20x3x3", images(20, 3, 3)),
        ("ok_labels_12", labels),
        ("bad_magic", b"\x00\x01\x08\x03\x00\x00\x00\x01".to_vec()),
        ("bad_dtype_f32", idx_header(&[1, 1, 1]).into_iter().enumerate().map(|(i, b)| if i == 2 { 0x0D } else { b }).collect()),
        ("bad_short_data", { let mut b = idx_header(&[3, 2, 2]); b.extend([1, 2, 3]); b }),
        ("bad_header_cut", idx_header(&[3, 2, 2])[..9].to_vec()),
        ("huge_dims_overflow", idx_header(&[u32::MAX, u32::MAX, u32::MAX])),
        ("huge_dims_4gb", idx_header(&[65536, 256, 256])),
        ("zero_images", idx_header(&[0, 28, 28])),
        ("ndim_0", idx_header(&[])),
    ]
}

fn csv_seeds() -> Vec<(&'static str, String)> {
    vec![
        ("ok_score", "score,label\n0.9,1\n0.1,0\n0.4,0\n0.8,1\n".into()),
        ("ok_prob", "prob,label\n0.9,1\n0.1,0\n0.4,0\n0.8,1\n0.5,1\n".into()),
        ("ok_extra_columns_quoted", "\"file\",\"label\",\"score\"\n\"a.png\",\"0\",\"-3.5\"\n\"b.png\",\"1.0\",\"2e3\"\n".into()),
        ("ok_crlf_blank_lines", "\r\n score , label \r\n1,0\r\n\r\n2,1\r\n".into()),
        ("ok_ties", "score,label\n1,0\n1,1\n1,0\n1,1\n".into()),
        ("bad_one_class", "score,label\n0.1,0\n0.2,0\n".into()),
        ("bad_nan", "score,label\nNaN,0\n1,1\n".into()),
        ("bad_label", "prob,label\n0.5,2\n".into()),
        ("bad_prob_range", "prob,label\n1.5,1\n0.2,0\n".into()),
        ("bad_missing_field", "score,label\n0.5\n".into()),
        ("bad_header", "a,b\n1,2\n".into()),
        ("bad_both_columns", "score,prob,label\n1,0.5,1\n".into()),
        ("bad_empty", String::new()),
        ("bad_header_only", "score,label\n".into()),
    ]
}

fn checkpoint_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let dir = std::env::temp_dir().join(format!("oddity-fuzz-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let save = |ck: &Checkpoint, name: &str| {
        let path = dir.join(name);
        ck.save(&path).unwrap();
        std::fs::read(&path).unwrap()
    };
    let mut ck = Checkpoint::new("lenet-fmnist", 3, serde_json::json!({ "lr": 1e-4, "epochs": 2 }));
    ck.insert("conv1.weight", HostTensor::new(vec![2, 1, 3, 3], (0..18).map(|i| i as f32 * 0.1).collect()).unwrap());
    ck.insert("conv1.bias", HostTensor::new(vec![2], vec![0.5, -0.5]).unwrap());
    ck.insert("scalar", HostTensor::new(vec![], vec![1.0]).unwrap());
    ck.insert("empty", HostTensor::new(vec![0, 4], vec![]).unwrap());
    let ok = save(&ck, "ok.safetensors");
    let empty = save(&Checkpoint::new("x", 0, serde_json::Value::Null), "empty.safetensors");
    let mut bad_sum = ok.clone();
    let last = bad_sum.len() - 1;
    bad_sum[last] ^= 0x40;
    let _ = std::fs::remove_dir_all(&dir);
    // A header claiming a huge JSON length.
    let mut huge_header = u64::MAX.to_le_bytes().to_vec();
    huge_header.extend_from_slice(b"{}");
    vec![
        ("ok_small", ok.clone()),
        ("ok_no_tensors", empty),
        ("bad_checksum", bad_sum),
        ("bad_truncated", ok[..ok.len() * 2 / 3].to_vec()),
        ("bad_header_len", huge_header),
        ("bad_empty", Vec::new()),
    ]
}

fn json_seeds() -> Vec<(&'static str, String)> {
    vec![
        ("ok_gray", r#"{"mean":[0.286],"std":[0.353]}"#.into()),
        ("ok_rgb", r#"{ "mean": [0.49, 0.48, 0.45], "std": [0.25, 0.24, 0.26] }"#.into()),
        ("zero_std", r#"{"mean":[0.5],"std":[0]}"#.into()),
        ("mismatched_lengths", r#"{"mean":[0.5,0.5,0.5],"std":[1]}"#.into()),
        ("empty_arrays", r#"{"mean":[],"std":[]}"#.into()),
        ("huge_values", r#"{"mean":[1e38],"std":[1e-38]}"#.into()),
        ("bad_missing_std", r#"{"mean":[0.5]}"#.into()),
        ("bad_type", r#"{"mean":"0.5","std":[1]}"#.into()),
        ("bad_truncated", r#"{"mean":[0.5],"st"#.into()),
        ("bad_empty", String::new()),
    ]
}
