//! L-BFGS on the CPU for small parameter vectors (Platt and Beta calibration fit 2–3), with a
//! line search that enforces the strong Wolfe conditions.
//!
//! The direction comes from the two-loop recursion (Nocedal & Wright, Numerical Optimization,
//! 2nd ed., Algorithm 7.4) with the initial Hessian `gamma I`, `gamma = s'y / y'y` (eq. 7.20).
//! The line search is their Algorithm 3.5 (bracketing) with 3.6 (zoom), stepping by the
//! safeguarded cubic interpolation of eq. 3.59, and accepts a step `t` when
//!
//! ```text
//! f(x + t d) <= f(x) + c1 t g'd            (sufficient decrease)
//! |g(x + t d)'d| <= c2 |g'd|               (strong curvature)
//! ```
//!
//! A trial point where `f` or its gradient is not finite (e.g. `exp` overflowing on a long step)
//! counts as one with too high a value, so the search shrinks the step instead of failing.
//! An update pair is kept only when `s'y > 1e-10 y'y` (positive curvature), so the implicit
//! inverse Hessian stays positive definite.

use std::collections::VecDeque;

use crate::error::{Error, Result};

/// Stopping rules and line-search constants.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LbfgsConfig {
    /// Iterations (line searches) at most.
    pub max_iters: usize,
    /// Function evaluations at most, checked before each iteration (one line search may take up
    /// to 25 more).
    pub max_evals: usize,
    /// Update pairs kept (the `m` of L-BFGS).
    pub history: usize,
    /// Converged when the largest gradient component is at most this.
    pub tol_grad: f64,
    /// Converged when an iteration lowers `f` by at most `tol_change * max(|f_old|, |f|, 1)`
    /// (scipy's `ftol` rule); 0 turns the rule off.
    pub tol_change: f64,
    /// Sufficient-decrease constant, `0 < c1 < c2`.
    pub c1: f64,
    /// Curvature constant, `c1 < c2 < 1`.
    pub c2: f64,
}

impl Default for LbfgsConfig {
    fn default() -> Self {
        LbfgsConfig {
            max_iters: 200,
            max_evals: 5000,
            history: 10,
            tol_grad: 1e-9,
            tol_change: 1e-15,
            c1: 1e-4,
            c2: 0.9,
        }
    }
}

/// Why the minimisation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LbfgsStop {
    /// The gradient reached `tol_grad`.
    Gradient,
    /// The decrease of `f` fell below `tol_change`.
    FunctionChange,
    MaxIterations,
    MaxEvaluations,
    /// No step along the steepest-descent direction lowered `f` (the gradient disagrees with the
    /// function, or `f` is flat to rounding there).
    LineSearch,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LbfgsResult {
    /// The best point found (the last accepted iterate).
    pub x: Vec<f64>,
    pub value: f64,
    pub grad: Vec<f64>,
    pub iterations: usize,
    pub evaluations: usize,
    /// True when stopped by `tol_grad` or `tol_change`.
    pub converged: bool,
    pub stop: LbfgsStop,
}

/// Trial evaluations per line search at most (PyTorch's `max_ls`).
const MAX_LINE_EVALS: usize = 25;

/// Minimises `f` from `x0`; `f` returns the value and the gradient. Errors: an empty `x0`, a bad
/// config, a gradient of the wrong length, or a non-finite value or gradient at `x0`. Running out
/// of iterations is not an error: see `converged` and `stop`.
pub fn minimize_lbfgs(f: impl Fn(&[f64]) -> (f64, Vec<f64>), x0: &[f64], cfg: LbfgsConfig) -> Result<LbfgsResult> {
    check_config(&cfg)?;
    if x0.is_empty() {
        return Err(Error::InvalidArgument("minimize_lbfgs: x0 is empty".into()));
    }
    let mut eval = Evaluator { f: &f, n: x0.len(), count: 0 };
    let mut x = x0.to_vec();
    let (mut fx, mut g) = eval.call(&x)?;
    if !fx.is_finite() || g.iter().any(|v| !v.is_finite()) {
        return Err(Error::InvalidArgument(format!(
            "minimize_lbfgs: value {fx} or gradient {g:?} at x0 = {x0:?} is not finite"
        )));
    }
    let mut hist: VecDeque<(Vec<f64>, Vec<f64>, f64)> = VecDeque::with_capacity(cfg.history); // (s, y, 1/s'y)
    let mut iterations = 0;
    let mut stop = if inf_norm(&g) <= cfg.tol_grad { Some(LbfgsStop::Gradient) } else { None };
    while stop.is_none() {
        if iterations >= cfg.max_iters {
            stop = Some(LbfgsStop::MaxIterations);
            break;
        }
        if eval.count >= cfg.max_evals {
            stop = Some(LbfgsStop::MaxEvaluations);
            break;
        }
        iterations += 1;
        let mut d = two_loop(&g, &hist);
        let mut slope = dot(&g, &d);
        if !(slope < 0.0 && slope.is_finite()) {
            // Not a descent direction (rounding in the history): restart from steepest descent.
            hist.clear();
            d = g.iter().map(|v| -v).collect();
            slope = -dot(&g, &g);
        }
        // Without curvature information the unit step has no scale; N&W's first-step heuristic.
        let t0 = if hist.is_empty() { (1.0 / g.iter().map(|v| v.abs()).sum::<f64>()).min(1.0) } else { 1.0 };
        let Some(p) = strong_wolfe(&mut eval, &x, fx, &g, slope, &d, t0, &cfg)? else {
            if hist.is_empty() {
                stop = Some(LbfgsStop::LineSearch);
            } else {
                hist.clear();
            }
            continue;
        };
        let s: Vec<f64> = p.x.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = p.g.iter().zip(&g).map(|(a, b)| a - b).collect();
        let (sy, yy) = (dot(&s, &y), dot(&y, &y));
        if sy > 1e-10 * yy && yy > 0.0 {
            if hist.len() == cfg.history {
                hist.pop_front();
            }
            hist.push_back((s, y, 1.0 / sy));
        }
        let f_old = fx;
        (x, fx, g) = (p.x, p.f, p.g);
        if inf_norm(&g) <= cfg.tol_grad {
            stop = Some(LbfgsStop::Gradient);
        } else if f_old - fx <= cfg.tol_change * f_old.abs().max(fx.abs()).max(1.0) {
            stop = Some(LbfgsStop::FunctionChange);
        }
    }
    let stop = stop.expect("the loop ends only with a reason");
    Ok(LbfgsResult {
        x,
        value: fx,
        grad: g,
        iterations,
        evaluations: eval.count,
        converged: matches!(stop, LbfgsStop::Gradient | LbfgsStop::FunctionChange),
        stop,
    })
}

fn check_config(cfg: &LbfgsConfig) -> Result<()> {
    let bad = |m: String| Err(Error::InvalidArgument(format!("minimize_lbfgs: {m}")));
    if cfg.history == 0 {
        return bad("history must be at least 1".into());
    }
    if !(cfg.tol_grad >= 0.0 && cfg.tol_change >= 0.0) {
        return bad(format!("tol_grad {} and tol_change {} must be >= 0", cfg.tol_grad, cfg.tol_change));
    }
    if !(0.0 < cfg.c1 && cfg.c1 < cfg.c2 && cfg.c2 < 1.0) {
        return bad(format!("line-search constants need 0 < c1 < c2 < 1, got c1 {} and c2 {}", cfg.c1, cfg.c2));
    }
    Ok(())
}

struct Evaluator<'a, F> {
    f: &'a F,
    n: usize,
    count: usize,
}

impl<F: Fn(&[f64]) -> (f64, Vec<f64>)> Evaluator<'_, F> {
    fn call(&mut self, x: &[f64]) -> Result<(f64, Vec<f64>)> {
        self.count += 1;
        let (v, g) = (self.f)(x);
        if g.len() != self.n {
            return Err(Error::Shape {
                what: "minimize_lbfgs gradient".into(),
                expected: format!("{} components (the length of x)", self.n),
                got: format!("{} components at x = {x:?}", g.len()),
            });
        }
        Ok((v, g))
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn inf_norm(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// `-H g` by the two-loop recursion (N&W Algorithm 7.4).
fn two_loop(g: &[f64], hist: &VecDeque<(Vec<f64>, Vec<f64>, f64)>) -> Vec<f64> {
    let mut q: Vec<f64> = g.to_vec();
    let mut alpha = vec![0.0; hist.len()];
    for (i, (s, y, rho)) in hist.iter().enumerate().rev() {
        alpha[i] = rho * dot(s, &q);
        q.iter_mut().zip(y).for_each(|(q, y)| *q -= alpha[i] * y);
    }
    if let Some((s, y, _)) = hist.back() {
        let gamma = dot(s, y) / dot(y, y);
        q.iter_mut().for_each(|q| *q *= gamma);
    }
    for (i, (s, y, rho)) in hist.iter().enumerate() {
        let beta = rho * dot(y, &q);
        q.iter_mut().zip(s).for_each(|(q, s)| *q += (alpha[i] - beta) * s);
    }
    q.iter().map(|v| -v).collect()
}

/// A trial point of the line search: step, point, value, gradient and slope `g'd` there.
/// Non-finite evaluations are stored with `f = +inf` and `slope = NaN`.
struct Trial {
    t: f64,
    x: Vec<f64>,
    f: f64,
    g: Vec<f64>,
    slope: f64,
}

/// Minimiser of the cubic through `(t1, f1, d1)` and `(t2, f2, d2)` (values and slopes),
/// N&W eq. 3.59, clamped to `[lo, hi]`; the midpoint when the cubic has no minimiser.
fn cubic_min(a: &Trial, b: &Trial, lo: f64, hi: f64) -> f64 {
    let (t1, f1, d1, t2, f2, d2) = (a.t, a.f, a.slope, b.t, b.f, b.slope);
    let e1 = d1 + d2 - 3.0 * (f1 - f2) / (t1 - t2);
    let disc = e1 * e1 - d1 * d2;
    let mid = 0.5 * (lo + hi);
    if disc.is_nan() || disc < 0.0 {
        return mid;
    }
    let e2 = (t2 - t1).signum() * disc.sqrt();
    let t = t2 - (t2 - t1) * ((d2 + e2 - e1) / (d2 - d1 + 2.0 * e2));
    if t.is_finite() {
        t.clamp(lo, hi)
    } else {
        mid
    }
}

/// N&W Algorithms 3.5 and 3.6. Returns a point satisfying the strong Wolfe conditions, else
/// (trial budget spent, or the bracket shrank to rounding) the best point with sufficient
/// decrease, else `None`.
#[allow(clippy::too_many_arguments)]
fn strong_wolfe<F: Fn(&[f64]) -> (f64, Vec<f64>)>(
    eval: &mut Evaluator<'_, F>,
    x: &[f64],
    f0: f64,
    g0: &[f64],
    slope0: f64,
    d: &[f64],
    t_init: f64,
    cfg: &LbfgsConfig,
) -> Result<Option<Trial>> {
    let mut budget = MAX_LINE_EVALS;
    let probe = |eval: &mut Evaluator<'_, F>, t: f64| -> Result<Trial> {
        let xt: Vec<f64> = x.iter().zip(d).map(|(x, d)| x + t * d).collect();
        let (f, g) = eval.call(&xt)?;
        if f.is_finite() && g.iter().all(|v| v.is_finite()) {
            let slope = dot(&g, d);
            Ok(Trial { t, x: xt, f, g, slope })
        } else {
            Ok(Trial { t, x: xt, f: f64::INFINITY, g, slope: f64::NAN })
        }
    };
    let armijo = |p: &Trial| p.f <= f0 + cfg.c1 * p.t * slope0;
    let curvature = |p: &Trial| p.slope.abs() <= -cfg.c2 * slope0;
    let accept = |p: Trial| if p.t > 0.0 && p.f < f0 { Some(p) } else { None };

    let mut prev = Trial { t: 0.0, x: x.to_vec(), f: f0, g: g0.to_vec(), slope: slope0 };
    let mut t = t_init;
    let mut first = true;
    // Bracketing: grow the step until the interval (prev, cur) must hold an acceptable point.
    let (mut lo, mut hi) = loop {
        if budget == 0 {
            return Ok(accept(prev));
        }
        budget -= 1;
        let cur = probe(eval, t)?;
        if !armijo(&cur) || (!first && cur.f >= prev.f) {
            break (prev, cur);
        }
        if curvature(&cur) {
            return Ok(Some(cur));
        }
        if cur.slope >= 0.0 {
            break (cur, prev);
        }
        // Still descending: extrapolate, at least a little and at most tenfold.
        let next = cubic_min(&prev, &cur, cur.t + 0.01 * (cur.t - prev.t), 10.0 * cur.t);
        (prev, t, first) = (cur, next, false);
    };
    // Zoom: `lo` has sufficient decrease and the lowest value so far; the slope at `lo` points
    // towards `hi`.
    let dmax = inf_norm(d);
    while budget > 0 {
        let (a, b) = (lo.t.min(hi.t), lo.t.max(hi.t));
        let width = b - a;
        if width * dmax <= f64::EPSILON * (1.0 + inf_norm(&lo.x)) {
            break;
        }
        // Interpolate when both ends are finite, but keep 10% away from the ends so the bracket
        // shrinks geometrically; bisect otherwise.
        let t = if hi.f.is_finite() { cubic_min(&lo, &hi, a + 0.1 * width, b - 0.1 * width) } else { 0.5 * (a + b) };
        budget -= 1;
        let p = probe(eval, t)?;
        if !armijo(&p) || p.f >= lo.f {
            hi = p;
        } else {
            if curvature(&p) {
                return Ok(Some(p));
            }
            if p.slope * (hi.t - lo.t) >= 0.0 {
                hi = lo;
            }
            lo = p;
        }
    }
    Ok(accept(lo))
}
