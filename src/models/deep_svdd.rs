//! Deep SVDD (Ruff et al. 2018; thesis §2.2): map normal data close to a centre c in feature
//! space. Loss: mean_i ||φ(x_i) - c||²; anomaly score: ||φ(x) - c||².

use crate::autograd::{no_grad, Var};
use crate::kernels::{Context, Result, Tensor};
use crate::nn::Module;

/// Coordinates of the centre closer to zero than this are pushed to ±this, as in Ruff et al.:
/// a centre coordinate at zero is trivially reachable by zeroing weights.
pub const CENTRE_EPS: f32 = 0.1;

/// The centre c: mean of the network's initial outputs over `batches` (eval mode, no gradient).
pub fn centre(net: &dyn Module, batches: &[Tensor]) -> Result<Vec<f32>> {
    net.set_training(false);
    let mut sum: Vec<f64> = Vec::new();
    let mut count = 0usize;
    for x in batches {
        let z = no_grad(|| net.forward(&Var::constant(x.clone())))?;
        let (n, d) = (z.shape()[0], z.shape()[1]);
        sum.resize(d, 0.0);
        for (i, v) in z.value().to_vec()?.iter().enumerate() {
            sum[i % d] += *v as f64;
        }
        count += n;
    }
    net.set_training(true);
    Ok(sum
        .iter()
        .map(|s| {
            let c = (s / count.max(1) as f64) as f32;
            if c.abs() < CENTRE_EPS {
                CENTRE_EPS.copysign(c)
            } else {
                c
            }
        })
        .collect())
}

/// Per-sample squared distance to the centre. z: [N, D], c: [D] -> [N]
pub fn distances(z: &Var, c: &Var) -> Result<Var> {
    let d = z.sub(c)?;
    d.mul(&d)?.sum_axis(1, false)
}

/// The Deep SVDD loss mean_i ||z_i - c||².
pub fn loss(z: &Var, c: &Var) -> Result<Var> {
    distances(z, c)?.mean()
}

/// Anomaly scores of a batch (eval mode, no gradient). x: [N, C, H, W]
pub fn scores(net: &dyn Module, c: &Var, x: &Tensor) -> Result<Vec<f32>> {
    no_grad(|| distances(&net.forward(&Var::constant(x.clone()))?, c))?.value().to_vec()
}

/// The centre as a graph constant.
pub fn centre_var(ctx: &Context, c: &[f32]) -> Result<Var> {
    Ok(Var::constant(Tensor::from_slice(ctx, &[c.len()], c)?))
}

/// The SVDD logit z (thesis §4.1.1: the anomaly score itself). dist: [N] -> [N]
pub fn logit(dist: &Var) -> Result<Var> {
    Ok(dist.clone())
}

/// The SVDD probability estimate η̂ = σ(z) with z the squared distance. dist: [N] -> [N]
pub fn eta(dist: &Var) -> Result<Var> {
    dist.sigmoid()
}
