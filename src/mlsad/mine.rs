//! The MINE statistics network T and the mutual-information estimate of eq. 1 (Belghazi et
//! al. 2018), used to maximise the entropy H(G(Z)) = I(G(Z), Z) of the generator (§3.1.2).
//!
//! T takes concat(z, x) (`[N, 2C, S, S]`), a 3x3 convolution and then stride-2 4x4
//! convolutions (channels doubling); the global average of every stage's output is kept
//! ("multi-scale pooling", appendix C.1), and a linear layer maps the concatenated averages to
//! one statistic per pair. Eq. 1 with the supremum replaced by T's current parameters:
//!
//! I_T(X, Z) = mean_i T(z_i, x_i) - log mean_i exp T(z̃_i, x_i),
//!
//! where z̃ is z shuffled along the batch (samples of the product of the marginals).

use crate::autograd::{concat, Var};
use crate::error::Result;
use crate::kernels::{Error, Tensor};
use crate::nn::{join, Conv2d, Init, LeakyRelu, Linear, Module, Sequential};

use super::detector::SLOPE;

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MineConfig {
    /// Channels of z and of x (each).
    pub channels: usize,
    /// Channels of the first stage.
    pub base: usize,
    /// Stride-2 stages after the first convolution (each adds one pooled scale).
    pub stages: usize,
}

pub struct StatisticsNetwork {
    pub cfg: MineConfig,
    /// Stage 0 is the 3x3 convolution, then the stride-2 ones.
    pub stages: Vec<Sequential>,
    pub out: Linear,
}

impl StatisticsNetwork {
    pub fn new(init: &mut Init, cfg: &MineConfig) -> crate::kernels::Result<StatisticsNetwork> {
        let mut stages = Vec::new();
        let mut c = cfg.base;
        stages.push(Sequential::new().push("conv", Conv2d::new(init, 2 * cfg.channels, c, 3, 1, 1, true)?).push("act", LeakyRelu(SLOPE)));
        let mut pooled = c;
        for _ in 0..cfg.stages {
            stages.push(Sequential::new().push("conv", Conv2d::new(init, c, 2 * c, 4, 2, 1, true)?).push("act", LeakyRelu(SLOPE)));
            c *= 2;
            pooled += c;
        }
        let out = Linear::new(init, pooled, 1, true)?;
        Ok(StatisticsNetwork { cfg: cfg.clone(), stages, out })
    }

    /// T(z, x): z, x `[N, C, S, S]` -> `[N, 1]`.
    pub fn statistic(&self, z: &Var, x: &Var) -> crate::kernels::Result<Var> {
        if z.shape() != x.shape() || z.shape().len() != 4 || z.shape()[1] != self.cfg.channels {
            return Err(Error::Shape(format!(
                "statistics network: z {:?} and x {:?} must both be [N, {}, S, S]",
                z.shape(),
                x.shape(),
                self.cfg.channels
            )));
        }
        let n = z.shape()[0];
        let mut h = concat(&[z, x])?;
        let mut pooled = Vec::new();
        for stage in &self.stages {
            h = stage.forward(&h)?;
            let (c, hw) = (h.shape()[1], h.shape()[2] * h.shape()[3]);
            pooled.push(h.reshape(&[n, c, hw])?.mean_axis(2, false)?.reshape(&[n, c, 1, 1])?);
        }
        let features = concat(&pooled.iter().collect::<Vec<_>>())?.flatten()?;
        self.out.forward(&features)
    }
}

impl Module for StatisticsNetwork {
    /// `input` = concat(z, x) along channels.
    fn forward(&self, input: &Var) -> crate::kernels::Result<Var> {
        let c = self.cfg.channels;
        self.statistic(&input.slice_channels(0, c)?, &input.slice_channels(c, 2 * c)?)
    }

    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Var)) {
        for (i, s) in self.stages.iter().enumerate() {
            s.visit_parameters(&join(prefix, &format!("stage{i}")), f);
        }
        self.out.visit_parameters(&join(prefix, "out"), f);
    }

    fn visit_buffers(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Tensor)) {}
}

/// Eq. 1 with the current T: mean T(z, x) - log mean exp T(z_marginal, x), a scalar variable.
/// `z_marginal` is z shuffled along the batch. The log-mean-exp subtracts the (detached) largest
/// marginal statistic first, which changes neither the value nor the gradient but keeps exp finite.
pub fn mine_estimate(t: &StatisticsNetwork, z: &Var, z_marginal: &Var, x: &Var) -> Result<Var> {
    let joint = t.statistic(z, x)?.mean()?;
    let marginal = t.statistic(z_marginal, x)?;
    let shift = marginal.value().to_vec()?.into_iter().fold(f32::NEG_INFINITY, f32::max);
    if !shift.is_finite() {
        return Err(crate::Error::InvalidArgument(format!("MINE: statistics network output is not finite ({shift})")));
    }
    let lme = marginal.add_scalar(-shift)?.exp()?.mean()?.log()?.add_scalar(shift)?;
    Ok(joint.sub(&lme)?)
}
