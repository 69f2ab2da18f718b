//! L-BFGS with the strong-Wolfe line search: Rosenbrock, a Platt-style logistic regression
//! against a value computed with scipy, a start at the optimum, functions that overflow on long
//! steps, and bad input.

use oddity::optim::{minimize_lbfgs, LbfgsConfig, LbfgsStop};

fn rosenbrock(x: &[f64]) -> (f64, Vec<f64>) {
    let (a, b) = (x[0], x[1]);
    let f = (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2);
    let g = vec![-2.0 * (1.0 - a) - 400.0 * a * (b - a * a), 200.0 * (b - a * a)];
    (f, g)
}

#[test]
fn rosenbrock_minimum_from_the_classic_start() {
    let cfg = LbfgsConfig { tol_grad: 1e-10, tol_change: 0.0, ..Default::default() };
    let r = minimize_lbfgs(rosenbrock, &[-1.2, 1.0], cfg).unwrap();
    assert!(r.converged && r.stop == LbfgsStop::Gradient, "{r:?}");
    assert!((r.x[0] - 1.0).abs() < 1e-6 && (r.x[1] - 1.0).abs() < 1e-6, "{r:?}");
    assert!(r.value < 1e-12, "{r:?}");
    // L-BFGS takes a few dozen iterations here (scipy's L-BFGS-B: ~35); many more means the line
    // search or the update is broken even if it gets there.
    assert!(r.iterations < 100, "{r:?}");
    eprintln!("rosenbrock: {r:?}");
}

/// Scores and labels of the Platt-style fit below.
const S: [f64; 12] = [-2.1, -1.3, -0.7, -0.2, 0.1, 0.4, 0.9, 1.5, 2.2, 3.0, -0.5, 1.1];
const Y: [f64; 12] = [0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0];

/// Negative log-likelihood of p = sigmoid(a s + b): sum softplus(z) - y z, z = a s + b.
fn platt_nll(w: &[f64]) -> (f64, Vec<f64>) {
    let (mut f, mut g) = (0.0, vec![0.0, 0.0]);
    for (s, y) in S.iter().zip(Y) {
        let z = w[0] * s + w[1];
        let softplus = if z > 0.0 { z + (-z).exp().ln_1p() } else { z.exp().ln_1p() };
        f += softplus - y * z;
        let p = 1.0 / (1.0 + (-z).exp());
        g[0] += (p - y) * s;
        g[1] += p - y;
    }
    (f, g)
}

#[test]
fn platt_logistic_regression_reaches_the_scipy_optimum() {
    // Made once with scipy 1.17.1 / numpy 2.4.6 on the same data: scipy.optimize.minimize(nll,
    // [0, 0], jac=True, method="BFGS", options={"gtol": 1e-13}), then five Newton steps with the
    // exact Hessian (the NLL is strictly convex here), leaving a gradient of ~1e-16; nll used
    // np.logaddexp(0, z) - y z and scipy.special.expit.
    const A: f64 = 1.4521733039398472;
    const B: f64 = -0.47900070005001816;
    const NLL: f64 = 5.368422084198283;
    let r = minimize_lbfgs(platt_nll, &[0.0, 0.0], LbfgsConfig::default()).unwrap();
    assert!(r.converged, "{r:?}");
    // The Hessian's eigenvalues are O(1) here, so a gradient below 1e-9 puts the point within
    // ~1e-9 of the optimum; 1e-8 leaves margin for the rounding of the summed gradient.
    assert!((r.x[0] - A).abs() < 1e-8 && (r.x[1] - B).abs() < 1e-8, "{r:?}");
    assert!((r.value - NLL).abs() < 1e-12, "{r:?}");
}

#[test]
fn a_start_at_the_optimum_stops_at_once() {
    let r = minimize_lbfgs(rosenbrock, &[1.0, 1.0], LbfgsConfig::default()).unwrap();
    assert_eq!((r.iterations, r.evaluations, r.stop), (0, 1, LbfgsStop::Gradient));
}

#[test]
fn overflowing_trial_points_shrink_the_step() {
    // f = exp(x - 5) - x, minimum at x = 5 (value -4). From x = -1e5 the slope is ~-1 for a long
    // way, so the bracketing phase grows the step about fivefold per trial and jumps from x < 0 straight to x > 710,
    // where exp overflows to inf: those trials must count as too high, not end the search.
    let overflows = std::cell::Cell::new(0);
    let f = |x: &[f64]| {
        let e = (x[0] - 5.0).exp();
        overflows.set(overflows.get() + e.is_infinite() as usize);
        (e - x[0], vec![e - 1.0])
    };
    let r = minimize_lbfgs(f, &[-1e5], LbfgsConfig::default()).unwrap();
    assert!(overflows.get() > 0, "the test no longer probes the overflow: {r:?}");
    assert!(r.converged && (r.x[0] - 5.0).abs() < 1e-8, "{r:?}");
    assert!((r.value + 4.0).abs() < 1e-14, "{r:?}");
}

#[test]
fn a_gradient_that_disagrees_with_the_function_stops_without_converging() {
    // The "gradient" points uphill: no step lowers f along minus it.
    let f = |x: &[f64]| (x[0] * x[0], vec![-2.0 * x[0] - 1.0]);
    let r = minimize_lbfgs(f, &[1.0], LbfgsConfig::default()).unwrap();
    assert!(!r.converged && r.stop == LbfgsStop::LineSearch, "{r:?}");
    assert_eq!(r.x, vec![1.0]);
}

#[test]
fn iteration_limit_is_reported() {
    let cfg = LbfgsConfig { max_iters: 3, ..Default::default() };
    let r = minimize_lbfgs(rosenbrock, &[-1.2, 1.0], cfg).unwrap();
    assert_eq!((r.iterations, r.stop, r.converged), (3, LbfgsStop::MaxIterations, false));
}

#[test]
fn bad_input_is_a_named_error() {
    let err = minimize_lbfgs(rosenbrock, &[], LbfgsConfig::default()).unwrap_err().to_string();
    assert!(err.contains("x0 is empty"), "{err}");
    let err = minimize_lbfgs(|_| (0.0, vec![0.0; 3]), &[1.0, 2.0], LbfgsConfig::default()).unwrap_err().to_string();
    assert!(err.contains("2 components") && err.contains("3 components"), "{err}");
    let err = minimize_lbfgs(|_| (f64::NAN, vec![0.0]), &[1.0], LbfgsConfig::default()).unwrap_err().to_string();
    assert!(err.contains("NaN") && err.contains("x0"), "{err}");
    let cfg = LbfgsConfig { c1: 0.9, c2: 0.1, ..Default::default() };
    let err = minimize_lbfgs(rosenbrock, &[0.0, 0.0], cfg).unwrap_err().to_string();
    assert!(err.contains("c1 0.9") && err.contains("c2 0.1"), "{err}");
}
