//! Whole-graph gradient check: autograd's vector-Jacobian product against central differences
//! of the same GPU forward pass.

use oddity_kernels::testing::TestRng;
use oddity_kernels::{Context, Error, Result, Tensor};

use super::var::{no_grad, Var};

/// Checks the gradients of `f` with respect to every input. The scalar checked is
/// `sum(f(inputs) * w)` for fixed random weights `w`, so any output shape works.
/// `eps` is the difference step; the forward runs in f32, so pick `eps` around 1e-2 and state
/// tolerances that cover f32 rounding (error ~ ulp(sum) / eps).
pub fn gradcheck(
    ctx: &Context,
    f: &dyn Fn(&[Var]) -> Result<Var>,
    inputs: &[(Vec<usize>, Vec<f32>)],
    eps: f32,
    atol: f64,
    rtol: f64,
) -> Result<()> {
    let vars: Vec<Var> = inputs
        .iter()
        .map(|(shape, data)| Ok(Var::leaf(Tensor::from_slice(ctx, shape, data)?)))
        .collect::<Result<_>>()?;
    let out = f(&vars)?;
    let mut rng = TestRng::new(7);
    let w: Vec<f32> = (0..out.value().numel()).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
    out.backward_with(&Tensor::from_slice(ctx, out.shape(), &w)?)?;

    let objective = |consts: &[Var]| -> Result<f64> {
        let y = no_grad(|| f(consts))?.value().to_vec()?;
        Ok(y.iter().zip(&w).map(|(a, b)| *a as f64 * *b as f64).sum())
    };
    for (i, (shape, data)) in inputs.iter().enumerate() {
        let analytic = vars[i].grad().map(|g| g.to_vec()).transpose()?.unwrap_or_else(|| vec![0.0; data.len()]);
        for j in 0..data.len() {
            let eval = |delta: f32| -> Result<f64> {
                let consts: Vec<Var> = inputs
                    .iter()
                    .enumerate()
                    .map(|(k, (s, d))| {
                        let mut d = d.clone();
                        if k == i {
                            d[j] += delta;
                        }
                        Ok(Var::constant(Tensor::from_slice(ctx, s, &d)?))
                    })
                    .collect::<Result<_>>()?;
                objective(&consts)
            };
            let numeric = (eval(eps)? - eval(-eps)?) / (2.0 * eps as f64);
            let got = analytic[j] as f64;
            if (got - numeric).abs() > atol + rtol * numeric.abs() {
                return Err(Error::Shape(format!(
                    "gradcheck: input {i} {shape:?} element {j}: autograd {got} vs central difference {numeric} (atol {atol}, rtol {rtol})"
                )));
            }
        }
    }
    Ok(())
}

/// Checks the gradients of a whole network with respect to its parameters: `f` runs the forward
/// pass on fixed inputs and reads the parameters in `params`; each parameter element is perturbed
/// in place by ±`eps` and restored. The scalar checked is `sum(f() * w)` for fixed random `w`.
/// Layers whose forward changes their own state (spectral-norm power iteration) should be in
/// evaluation mode, so that `f` is a function.
pub fn gradcheck_params(
    ctx: &Context,
    f: &dyn Fn() -> Result<Var>,
    params: &[(String, Var)],
    eps: f32,
    atol: f64,
    rtol: f64,
) -> Result<()> {
    for (_, p) in params {
        p.zero_grad();
    }
    let out = f()?;
    let mut rng = TestRng::new(13);
    let w: Vec<f32> = (0..out.value().numel()).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
    out.backward_with(&Tensor::from_slice(ctx, out.shape(), &w)?)?;
    drop(out);
    let objective = || -> Result<f64> {
        let y = no_grad(f)?.value().to_vec()?;
        Ok(y.iter().zip(&w).map(|(a, b)| *a as f64 * *b as f64).sum())
    };
    for (name, p) in params {
        let original = p.value().to_vec()?;
        let analytic = p.grad().map(|g| g.to_vec()).transpose()?.unwrap_or_else(|| vec![0.0; original.len()]);
        let mut data = original.clone();
        for j in 0..original.len() {
            data[j] = original[j] + eps;
            p.value().write(&data)?;
            let plus = objective()?;
            data[j] = original[j] - eps;
            p.value().write(&data)?;
            let minus = objective()?;
            data[j] = original[j];
            p.value().write(&data)?;
            let numeric = (plus - minus) / (2.0 * eps as f64);
            let got = analytic[j] as f64;
            if (got - numeric).abs() > atol + rtol * numeric.abs() {
                return Err(Error::Shape(format!(
                    "gradcheck: parameter {name} {:?} element {j}: autograd {got} vs central difference {numeric} (atol {atol}, rtol {rtol})",
                    p.shape()
                )));
            }
        }
    }
    Ok(())
}
