//! MultiStepLr against PyTorch's values.

use oddity::optim::MultiStepLr;

#[test]
fn multistep_lr_matches_pytorch_for_milestones_3_6_gamma_0_1() {
    // torch.optim.lr_scheduler.MultiStepLR(SGD(lr=0.1), milestones=[3, 6], gamma=0.1), reading
    // the lr in epochs 0..8 (scheduler.step() after each epoch). These are the closed-form values
    // `0.1 * 0.1 ** bisect_right([3, 6], epoch)` printed by Python, which PyTorch's chained
    // update (lr *= gamma at each milestone) reproduces bit for bit for these numbers.
    let want = [
        0.1,
        0.1,
        0.1,
        0.010000000000000002,
        0.010000000000000002,
        0.010000000000000002,
        0.0010000000000000002,
        0.0010000000000000002,
    ];
    let s = MultiStepLr::new(0.1, &[3, 6], 0.1).unwrap();
    let got: Vec<f64> = (0..8).map(|e| s.lr_at(e)).collect();
    assert_eq!(got, want);
}

#[test]
fn repeated_and_unsorted_milestones_count_like_pytorch_counter() {
    // PyTorch keeps milestones in a Counter: a milestone given twice decays twice.
    let s = MultiStepLr::new(1.0, &[5, 2, 5], 0.5).unwrap();
    let got: Vec<f64> = (0..7).map(|e| s.lr_at(e)).collect();
    assert_eq!(got, [1.0, 1.0, 0.5, 0.5, 0.5, 0.125, 0.125]);
}

#[test]
fn bad_schedule_parameters_are_errors() {
    let err = MultiStepLr::new(0.1, &[3], 0.0).unwrap_err().to_string();
    assert!(err.contains("gamma") && err.contains("got 0"), "{err}");
    let err = MultiStepLr::new(f64::NAN, &[3], 0.1).unwrap_err().to_string();
    assert!(err.contains("base_lr") && err.contains("NaN"), "{err}");
}
