//! The SSIM graph op: whole-graph gradient check through both images, SSIM(x, x) = 1, and the map
//! and the thesis loss against the f64 CPU reference.

use oddity::autograd::{gradcheck, ssim_loss, ssim_map, Var};
use oddity::kernels::gpu_or_skip;
use oddity::kernels::ssim::cpu;
use oddity::kernels::testing::{assert_close, TestRng};
use oddity::kernels::Tensor;

/// An image and a noisy "reconstruction" of it, in [0, 1] like grayscale pixels.
fn pair(seed: u64, n: usize) -> (Vec<f32>, Vec<f32>) {
    let mut rng = TestRng::new(seed);
    let x: Vec<f32> = (0..n).map(|_| rng.uniform(0.0, 1.0) as f32).collect();
    let y = x.iter().map(|v| v + rng.uniform(-0.25, 0.25) as f32).collect();
    (x, y)
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&a| a as f64).collect()
}

#[test]
fn ssim_map_passes_gradcheck_in_both_images() {
    let ctx = gpu_or_skip!();
    let shape = vec![1, 1, 12, 12];
    let (x, y) = pair(80, 144);
    // f32 forward, sum of 144 weighted S values (~10): difference noise ~ 1e-6 / eps(1e-2) = 1e-4;
    // the curvature term eps² S''' stays below ~1e-3 with local variances ~0.1. A wrong partial
    // shows errors of the order of the gradients themselves (0.1 .. 5).
    gradcheck(
        &ctx,
        &|v: &[Var]| ssim_map(&v[0], &v[1], 0.5),
        &[(shape.clone(), x), (shape, y)],
        1e-2,
        3e-3,
        2e-2,
    )
    .unwrap();
}

#[test]
fn ssim_of_an_image_with_itself_is_one() {
    let ctx = gpu_or_skip!();
    let (x, _) = pair(81, 2 * 3 * 10 * 7);
    let xv = Var::constant(Tensor::from_slice(&ctx, &[2, 3, 10, 7], &x).unwrap());
    let s = ssim_map(&xv, &xv, 0.4).unwrap().value().to_vec().unwrap();
    assert_close("S(x, x)", &s, &vec![1.0; s.len()], 1e-6, 0.0);
    let loss = ssim_loss(&xv, &xv, 0.4).unwrap().value().item().unwrap();
    assert!(loss.abs() < 1e-6, "loss(x, x) = {loss}");
}

#[test]
fn map_and_loss_match_the_cpu_reference() {
    let ctx = gpu_or_skip!();
    let shape = [2, 1, 15, 11];
    let (x, y) = pair(82, shape.iter().product());
    let xv = Var::leaf(Tensor::from_slice(&ctx, &shape, &x).unwrap());
    let yv = Var::leaf(Tensor::from_slice(&ctx, &shape, &y).unwrap());
    let want = cpu::ssim_map(&f64s(&x), &f64s(&y), &shape, 0.45);
    // Same bound as the kernel test: f32 moments and quotient, ~1e-5 on S in [-1, 1].
    assert_close("S", &ssim_map(&xv, &yv, 0.45).unwrap().value().to_vec().unwrap(), &want, 2e-5, 1e-5);
    // ℓ = mean(1 - S) (thesis §4.1.4); a mean of values accurate to 2e-5.
    let loss = ssim_loss(&xv, &yv, 0.45).unwrap();
    let want_loss = 1.0 - want.iter().sum::<f64>() / want.len() as f64;
    assert!((loss.value().item().unwrap() as f64 - want_loss).abs() < 2e-5);
    assert!(want_loss > 0.05, "the noisy pair must be visibly dissimilar: {want_loss}");
    // The loss's gradient reaches both images: -1/numel times the map's gradient.
    loss.backward().unwrap();
    let gs = vec![-1.0 / want.len() as f64; want.len()];
    let (gx, gy) = cpu::ssim_map_backward(&gs, &f64s(&x), &f64s(&y), &shape, 0.45);
    // Per-pixel gradients ~1e-3 after the 1/330 scale: 1e-6 absolute + 1e-3 relative.
    assert_close("d loss / dx", &xv.grad().unwrap().to_vec().unwrap(), &gx, 1e-6, 1e-3);
    assert_close("d loss / dy", &yv.grad().unwrap().to_vec().unwrap(), &gy, 1e-6, 1e-3);
}
