//! Checkpoints: bit-exact round trip, atomic replacement, and clear errors for truncated,
//! corrupted or mismatched files.

use std::path::PathBuf;

use oddity::checkpoint::{Checkpoint, HostTensor};

fn sample() -> Checkpoint {
    let mut ck = Checkpoint::new("test-net", 42, serde_json::json!({ "lr": 1e-3, "epochs": 3 }));
    // Awkward values: subnormals, negative zero, large magnitudes, NaN payloads are not used
    // because a model never stores them; everything else must survive bit for bit.
    let weird = vec![1.0e-40, -0.0, 3.4e38, -1.175_494_4e-38, std::f32::consts::PI, 1.0 / 3.0];
    ck.insert("encoder.conv1.weight", HostTensor::new(vec![2, 3], weird).unwrap());
    ck.insert("encoder.bn1.running_mean", HostTensor::new(vec![5], (0..5).map(|i| i as f32 * 0.1).collect()).unwrap());
    ck.insert("svdd.center", HostTensor::new(vec![], vec![0.5]).unwrap());
    ck
}

fn dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn round_trip_is_bit_exact_with_metadata() {
    let path = dir("ck_round_trip").join("model.safetensors");
    let ck = sample();
    ck.save(&path).unwrap();
    let back = Checkpoint::load(&path).unwrap();
    assert_eq!(back.meta, ck.meta);
    assert_eq!(back.tensors.len(), 3);
    for (name, t) in &ck.tensors {
        let b = &back.tensors[name];
        assert_eq!(b.shape, t.shape, "{name}");
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&b.data), bits(&t.data), "{name} must round-trip bit for bit");
    }
    // Only the checkpoint remains: the temporary file was renamed, not left behind.
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn saving_over_an_existing_checkpoint_replaces_it_whole() {
    let path = dir("ck_replace").join("model.safetensors");
    sample().save(&path).unwrap();
    let mut newer = sample();
    newer.meta.seed = 7;
    newer.save(&path).unwrap();
    assert_eq!(Checkpoint::load(&path).unwrap().meta.seed, 7);
}

#[test]
fn truncated_and_corrupted_files_are_errors_naming_the_file() {
    let d = dir("ck_bad");
    let path = d.join("model.safetensors");
    sample().save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();

    let truncated = d.join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() - 5]).unwrap();
    let err = Checkpoint::load(&truncated).unwrap_err().to_string();
    assert!(err.contains("truncated.safetensors") && err.contains("truncated or corrupt"), "{err}");

    // Flip one bit of the last tensor byte: the header still parses, the checksum does not match.
    let corrupted = d.join("corrupted.safetensors");
    let mut flipped = bytes.clone();
    *flipped.last_mut().unwrap() ^= 1;
    std::fs::write(&corrupted, &flipped).unwrap();
    let err = Checkpoint::load(&corrupted).unwrap_err().to_string();
    assert!(err.contains("corrupted.safetensors") && err.contains("checksum"), "{err}");

    let missing = d.join("absent.safetensors");
    let err = Checkpoint::load(&missing).unwrap_err().to_string();
    assert!(err.contains("absent.safetensors"), "{err}");
}

#[test]
fn missing_extra_and_misshaped_tensors_are_named() {
    let path = PathBuf::from("model.safetensors");
    let ck = sample();
    let expected = vec![
        ("encoder.conv1.weight".to_string(), vec![3, 2]),
        ("encoder.bn1.running_mean".to_string(), vec![5]),
        ("decoder.conv1.weight".to_string(), vec![4]),
    ];
    let err = ck.check_matches(&expected, &path).unwrap_err().to_string();
    assert!(err.contains("encoder.conv1.weight has shape [2, 3], the model expects [3, 2]"), "{err}");
    assert!(err.contains("missing tensor decoder.conv1.weight"), "{err}");
    assert!(err.contains("unexpected tensor svdd.center"), "{err}");
    let exact: Vec<(String, Vec<usize>)> = ck.tensors.iter().map(|(n, t)| (n.clone(), t.shape.clone())).collect();
    ck.check_matches(&exact, &path).unwrap();
}

#[test]
fn a_network_round_trips_through_a_checkpoint_bit_exactly() {
    use oddity::autograd::Var;
    use oddity::kernels::{gpu_or_skip, Tensor};
    use oddity::models::lenet;
    use oddity::nn::{self, Init, Module};

    let ctx = gpu_or_skip!();
    let net = lenet::fmnist_lenet(&mut Init::new(&ctx, 1)).unwrap();
    // One training forward moves the batch-norm running statistics away from their defaults.
    let x = Var::constant(Tensor::from_slice(&ctx, &[4, 1, 28, 28], &(0..4 * 784).map(|i| (i % 17) as f32 / 17.0).collect::<Vec<_>>()).unwrap());
    net.forward(&x).unwrap();
    let path = dir("ck_network").join("lenet.safetensors");
    let centre = vec![("svdd.center".to_string(), HostTensor::new(vec![32], vec![0.25; 32]).unwrap())];
    let meta = oddity::checkpoint::CheckpointMeta {
        architecture: "fmnist-lenet".into(),
        seed: 1,
        config: serde_json::json!({ "loss": "deep-svdd" }),
        format_version: 1,
    };
    nn::save_checkpoint(&net, &centre, meta, &path).unwrap();

    let other = lenet::fmnist_lenet(&mut Init::new(&ctx, 2)).unwrap();
    let ck = nn::load_checkpoint(&other, &[("svdd.center".to_string(), vec![32])], &path).unwrap();
    assert_eq!(ck.meta.architecture, "fmnist-lenet");
    assert_eq!(ck.tensors["svdd.center"].data, vec![0.25; 32]);
    let dump = |m: &dyn Module| -> Vec<(String, Vec<u32>)> {
        let mut all: Vec<(String, Tensor)> = nn::parameters(m).into_iter().map(|(n, v)| (n, v.value().clone())).collect();
        all.extend(nn::buffers(m));
        all.into_iter().map(|(n, t)| (n, t.to_vec().unwrap().iter().map(|v| v.to_bits()).collect())).collect()
    };
    assert_eq!(dump(&net), dump(&other), "parameters and buffers must match bit for bit");

    // A model of another shape refuses the file and names the tensor.
    let cifar = lenet::cifar10_lenet(&mut Init::new(&ctx, 2)).unwrap();
    let err = nn::load_checkpoint(&cifar, &[("svdd.center".to_string(), vec![32])], &path).unwrap_err().to_string();
    assert!(err.contains("conv1.weight has shape [8, 1, 5, 5], the model expects [32, 3, 5, 5]"), "{err}");
}
