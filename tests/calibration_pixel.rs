//! Per-pixel Platt and Beta calibration (thesis §4.2): the graph op's gradients against central
//! differences, GPU training against per-pixel CPU L-BFGS fits, Beta's a, b >= 0 during training,
//! and the parameter file.

use oddity::autograd::{gradcheck, pixel_calibration, Var};
use oddity::calibration::{fit_pixel, sigmoid, Beta, Method, PixelCalibrator, PixelFitConfig, PixelMethod, Platt};
use oddity::kernels::testing::TestRng;
use oddity::kernels::{gpu_or_skip, Tensor};

#[test]
fn graph_op_gradients_match_central_differences() {
    let ctx = gpu_or_skip!();
    let mut rng = TestRng::new(1);
    for (method, shape) in [(PixelMethod::Platt, vec![3, 1, 2, 3]), (PixelMethod::Beta, vec![2, 3, 5])] {
        let (h, w) = (shape[shape.len() - 2], shape[shape.len() - 1]);
        let n: usize = shape.iter().product();
        let z: Vec<f32> = rng.vec(n, -4.0, 4.0).iter().map(|&v| v as f32).collect();
        let mut params: Vec<f32> = rng.vec(method.num_params() * h * w, -1.0, 1.0).iter().map(|&v| v as f32).collect();
        for v in &mut params[..2 * h * w] {
            *v = 0.3 + v.abs(); // Beta's a, b > 0
        }
        let f = |v: &[Var]| pixel_calibration(&v[0], &v[1], method);
        // f32 forward, step 1e-2: rounding error ~ulp(sum of ~30 terms ~10) / 1e-2 ~ 1e-4, and
        // the curvature of softplus adds ~1e-5; 2e-3 absolute + 1e-2 relative covers both.
        gradcheck(&ctx, &f, &[(shape.clone(), z), (vec![method.num_params(), h, w], params)], 1e-2, 2e-3, 1e-2)
            .unwrap_or_else(|e| panic!("{method:?}: {e}"));
    }
}

/// A pixel's true map from the logit to the log-odds of "anomalous".
type TrueMap = Box<dyn Fn(f64) -> f64>;

/// N maps of `pixels` pixels with logits uniform in [-4, 4) and labels drawn per pixel from that
/// pixel's true calibration map.
fn maps(rng: &mut TestRng, n: usize, truth: &[TrueMap]) -> (Vec<f32>, Vec<f32>) {
    let mut z = Vec::new();
    let mut y = Vec::new();
    for _ in 0..n {
        for map in truth {
            let v = rng.uniform(-4.0, 4.0) as f32;
            z.push(v);
            y.push((rng.uniform(0.0, 1.0) < sigmoid(map(v as f64))) as u8 as f32);
        }
    }
    (z, y)
}

fn column(v: &[f32], pixels: usize, px: usize) -> Vec<f64> {
    v.iter().skip(px).step_by(pixels).map(|&x| x as f64).collect()
}

#[test]
fn gpu_training_reaches_the_per_pixel_cpu_optimum() {
    let ctx = gpu_or_skip!();
    let mut rng = TestRng::new(2);
    let (n, h, w) = (400, 2, 3);
    let pixels = h * w;
    let platt: Vec<(f64, f64)> = (0..pixels).map(|i| (0.5 + 0.3 * i as f64, 0.4 - 0.2 * i as f64)).collect();
    let beta: Vec<(f64, f64, f64)> = (0..pixels).map(|i| (0.4 + 0.2 * i as f64, 1.6 - 0.2 * i as f64, 0.3 - 0.1 * i as f64)).collect();
    let cases: [(Method, Vec<TrueMap>); 2] = [
        (Method::Platt, platt.iter().map(|&(a, b)| Box::new(move |z| a * z + b) as TrueMap).collect()),
        (
            Method::Beta,
            beta.iter().map(|&(a, b, c)| Box::new(move |z| Beta::new(a, b, c).calibrated_logit(z)) as TrueMap).collect(),
        ),
    ];
    for (method, truth) in cases {
        let (z, y) = maps(&mut rng, n, &truth);
        // Full batches: 1000 deterministic Adam steps. Beta's two features are strongly
        // correlated, so it needs them: an f64 simulation of this problem is 0.14 from the
        // optimum after 300 steps and 2e-5 after 1000.
        let cfg = PixelFitConfig { lr: 0.03, epochs: 1000, batch_size: n, seed: 5 };
        let (cal, losses) = fit_pixel(&ctx, method, &z, &y, [n, h, w], cfg).unwrap();
        assert_eq!(losses.len(), 1000);
        assert!(losses[999] < losses[0], "{method:?}: loss {} -> {}", losses[0], losses[999]);
        let mut cpu_loss = 0.0;
        for px in 0..pixels {
            let (zc, yc): (Vec<f64>, Vec<u8>) =
                (column(&z, pixels, px), column(&y, pixels, px).iter().map(|&v| v as u8).collect());
            let got: Vec<f64> = (0..method_params(method)).map(|k| cal.params[k * pixels + px] as f64).collect();
            let want: Vec<f64> = match method {
                Method::Platt => {
                    let p = Platt::fit(&zc, &yc).unwrap();
                    cpu_loss += p.fit.unwrap().loss;
                    vec![p.a, p.b]
                }
                Method::Beta => {
                    let b = Beta::fit(&zc, &yc).unwrap();
                    cpu_loss += b.fit.unwrap().loss;
                    vec![b.a, b.b, b.c]
                }
            };
            // f32 gradients of a mean over 2400 terms (~1e-7 relative) and Adam's last steps
            // (lr 0.03 times a ratio that shrinks with the gradient) leave the GPU ~1e-3 from the
            // f64 L-BFGS optimum; 0.01 allows that ten times over and fails any wrong gradient.
            for (k, (g, wv)) in got.iter().zip(&want).enumerate() {
                assert!((g - wv).abs() < 0.01, "{method:?} pixel {px} parameter {k}: GPU {g}, CPU {wv}");
            }
        }
        cpu_loss /= pixels as f64;
        let final_loss = losses[999];
        println!("{method:?}: mean pixel loss GPU {final_loss:.6}, CPU optimum {cpu_loss:.6}");
        // The last epoch's loss is taken before its step; an f32 mean of 2400 terms is good to
        // ~1e-6, and parameters 1e-3 from the optimum raise the loss by ~1e-6: 1e-4 both ways.
        assert!((final_loss - cpu_loss).abs() < 1e-4, "{method:?}: {final_loss} vs {cpu_loss}");
    }
}

fn method_params(m: Method) -> usize {
    match m {
        Method::Platt => 2,
        Method::Beta => 3,
    }
}

#[test]
fn beta_training_keeps_a_and_b_nonnegative() {
    let ctx = gpu_or_skip!();
    let mut rng = TestRng::new(3);
    let (n, h, w) = (300, 1, 4);
    // True maps that decrease with z in some pixels: the unconstrained optimum has a or b < 0.
    let truth: Vec<TrueMap> = vec![
        Box::new(|z| -1.5 * z),
        Box::new(|z| Beta::new(-1.0, 1.0, 0.0).calibrated_logit(z)),
        Box::new(|z| Beta::new(1.0, -1.0, 0.0).calibrated_logit(z)),
        Box::new(|z| z),
    ];
    let (z, y) = maps(&mut rng, n, &truth);
    let cfg = PixelFitConfig { lr: 0.05, epochs: 100, batch_size: 64, seed: 9 };
    let (cal, _) = fit_pixel(&ctx, Method::Beta, &z, &y, [n, h, w], cfg).unwrap();
    let ab = &cal.params[..2 * h * w];
    assert!(ab.iter().all(|&v| v >= 0.0), "a, b planes {ab:?}");
    // Pixel 0's truth decreases: both a and b are pushed to the bound.
    assert!(ab[0] == 0.0 && ab[4] == 0.0, "a, b planes {ab:?}");
}

#[test]
fn pixel_calibrator_files_and_bad_input() {
    let ctx = gpu_or_skip!();
    let dir = std::env::temp_dir().join(format!("oddity-calibration-pixel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cal = PixelCalibrator::identity(Method::Beta, 2, 3);
    cal.params[17] = -0.125;
    let path = dir.join("pixel.json");
    cal.save(&path).unwrap();
    assert_eq!(PixelCalibrator::load(&path).unwrap(), cal);
    std::fs::write(&path, r#"{"method": "platt", "height": 2, "width": 3, "params": [1.0, 2.0]}"#).unwrap();
    let err = PixelCalibrator::load(&path).unwrap_err().to_string();
    assert!(err.contains("pixel.json") && err.contains("12") && err.contains("got 2"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();

    let cfg = PixelFitConfig::default();
    let err = fit_pixel(&ctx, Method::Platt, &[0.0; 5], &[0.0; 6], [1, 2, 3], cfg).unwrap_err().to_string();
    assert!(err.contains("5 maps") && err.contains("6 labels"), "{err}");
    let err = fit_pixel(&ctx, Method::Platt, &[0.0; 6], &[0.0, 1.0, 0.5, 0.0, 0.0, 0.0], [1, 2, 3], cfg).unwrap_err().to_string();
    assert!(err.contains("index 2") && err.contains("0.5"), "{err}");
    // A map whose size differs from the calibrator's is a shape error naming both.
    let z = Var::constant(Tensor::zeros(&ctx, &[1, 1, 3, 2]).unwrap());
    let err = cal.apply(&z).unwrap_err().to_string();
    assert!(err.contains("[3, 2, 3]") && err.contains("[1, 1, 3, 2]"), "{err}");
}
