//! Numerical faults are caught where they appear and named: a non-finite pixel in a batch names
//! the image file and the pixel; with the finiteness checks on (`ODDITY_CHECK_FINITE=1`, here
//! through `set_check_finite`), the first op whose output holds NaN or infinity is named by the
//! next `backward`, and so is a backward that makes a non-finite gradient. (A non-finite loss
//! stops training by default: `Error::Diverged`, tested in `tests/train_loop.rs`.)

use oddity::autograd::{check_finite, set_check_finite, Var};
use oddity::data::batches::BatchPlan;
use oddity::data::transforms::{Normalization, Pipeline};
use oddity::data::{ImageTensor, Sample};
use oddity::kernels::{gpu_or_skip, Tensor};
use oddity::Error;
use rand::SeedableRng;

#[test]
fn a_non_finite_pixel_after_normalization_names_the_file_and_pixel() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("numerical_faults");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("flat.png");
    ImageTensor::from_vec(vec![0.5; 12], 1, 3, 4).unwrap().save_png(&file).unwrap();
    // A zero standard deviation (as a hand-edited statistics file could hold) makes x / 0.
    let pipeline = Pipeline::default().with_normalization(Normalization { mean: vec![0.2], std: vec![0.0] });
    let plan = BatchPlan::evaluation(vec![Sample::file(&file, 0, "good")], pipeline, 1);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let err = plan.build_batch(&[0], None, &mut rng).unwrap_err();
    assert!(matches!(err, Error::NonFinite(_)), "{err}");
    let message = err.to_string();
    assert!(message.contains("flat.png") && message.contains("inf at [0, 0, 0]"), "{message}");
    assert!(message.contains("after normalization"), "{message}");
    // The same image with a real standard deviation is fine.
    let ok = Pipeline::default().with_normalization(Normalization { mean: vec![0.2], std: vec![0.5] });
    BatchPlan::evaluation(vec![Sample::file(&file, 0, "good")], ok, 1).build_batch(&[0], None, &mut rng).unwrap();
}

#[test]
fn the_finiteness_check_names_the_op_that_first_made_a_nan() {
    let ctx = gpu_or_skip!();
    let x = Var::leaf(Tensor::from_slice(&ctx, &[3], &[1.0, -1.0, 2.0]).unwrap());
    // Off (the default): log(-1) = NaN flows on silently to the loss.
    set_check_finite(false);
    let loss = x.log().unwrap().mul_scalar(2.0).unwrap().sum().unwrap();
    loss.backward().unwrap();
    assert!(loss.value().item().unwrap().is_nan());

    set_check_finite(true);
    let loss = x.log().unwrap().mul_scalar(2.0).unwrap().sum().unwrap();
    let err = loss.backward().unwrap_err().to_string();
    // The first op, not the affine or sum that carried the NaN on.
    assert!(err.contains("op log produced NaN at flat index 1 of its output [3]"), "{err}");
    assert!(err.contains("ODDITY_CHECK_FINITE"), "{err}");
    // Reported once; a clean graph afterwards passes.
    assert!(check_finite().is_ok());
    let y = Var::leaf(Tensor::from_slice(&ctx, &[2], &[1.0, 4.0]).unwrap());
    y.sqrt().unwrap().sum().unwrap().backward().unwrap();
    set_check_finite(false);
}

#[test]
fn the_finiteness_check_names_a_backward_that_makes_an_infinite_gradient() {
    let ctx = gpu_or_skip!();
    set_check_finite(true);
    // sqrt(0) = 0 is finite, but d sqrt(x)/dx = 1 / (2 sqrt(x)) is infinite at 0.
    let x = Var::leaf(Tensor::from_slice(&ctx, &[2], &[4.0, 0.0]).unwrap());
    let loss = x.sqrt().unwrap().sum().unwrap();
    let err = loss.backward().unwrap_err().to_string();
    set_check_finite(false);
    assert!(err.contains("the backward of op sqrt gave input 0 (leaf [2]) a gradient holding inf at flat index 1"), "{err}");
}
