//! Entropy-regularised PatchGAN (§3.1.2, appendix C.1): one generator G, one per-level
//! discriminator D and one statistics network T, trained in alternation.
//!
//! Per step, on a batch x of normal images and noise z:
//! - D: L_adv(D) = mean_c [softplus(-D_c(x)) + softplus(D_c(G(z)))] (the patch-averaged GAN
//!   loss with D_c = sigmoid(logit)), G(z) detached.
//! - G and T: L_total(G) = L_adv(G) - beta I_T(G(Z), Z) (eq. 2) with
//!   L_adv(G) = mean_c softplus(-D_c(G(z))), and T ascends I_T (eq. 1). beta (eq. 8) is
//!   min(|g_adv| / (|g_I| + 1e-8), 1) from the norms of the two gradients with respect to G's
//!   parameters, so the entropy term never overwhelms the local-structure term. Backward
//!   passes: -I (G and T), L_adv (G), then -I again seeded with beta into G alone, so G's
//!   gradient is g_adv + beta g_{-I} and T's is that of -I.
//! - Adam with the settings of Table 9 (lr 4e-4 / 1e-4 / 4e-4 for D / G / T, betas (0, 0.9)).

use rand_chacha::ChaCha8Rng;

use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::kernels::{Context, Tensor};
use crate::nn::{Init, Module};
use crate::optim::{Adam, AdamConfig, Optimizer};

use super::discriminator::{Discriminator, DiscriminatorConfig};
use super::generator::{Generator, GeneratorConfig};
use super::mine::{mine_terms, MineConfig, StatisticsNetwork};
use super::mrf::{derangement, noise};
use super::Images;

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PatchGanConfig {
    /// MRF level w (the discriminator's receptive field).
    pub level: usize,
    pub size: usize,
    pub channels: usize,
    /// Base channels of G, D and T (64 in the paper's tables).
    pub width: usize,
    /// Maximise the entropy (false: the plain PatchGAN of Fig. 3's last column).
    pub entropy: bool,
}

impl PatchGanConfig {
    pub fn generator(&self) -> GeneratorConfig {
        GeneratorConfig { size: self.size, channels: self.channels, base: self.width }
    }
    pub fn discriminator(&self) -> DiscriminatorConfig {
        DiscriminatorConfig { level: self.level, channels: self.channels, base: self.width }
    }
    pub fn mine(&self) -> MineConfig {
        MineConfig { channels: self.channels, base: self.width / 2, stages: 3 }
    }
}

/// The losses and beta of one step, read back.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct GanStepStats {
    pub d_loss: f32,
    pub g_adv: f32,
    /// The MINE estimate I_T(G(Z), Z) (0 without entropy).
    pub mi: f32,
    pub beta: f32,
    /// E_P[T] and log E_Q[e^T], the two terms of the estimate (0 without entropy).
    pub t_joint: f32,
    pub t_log_mean_exp: f32,
    /// Norms of the gradients of L_adv(G) and of I_T with respect to G's parameters (eq. 8).
    pub grad_adv: f32,
    pub grad_mi: f32,
}

/// Named parameters of `m` under `prefix`.
pub fn named_parameters(m: &dyn Module, prefix: &str) -> Vec<(String, Var)> {
    let mut out = Vec::new();
    m.visit_parameters(prefix, &mut |name, v| out.push((name, v.clone())));
    out
}

fn freeze(params: &[(String, Var)], frozen: bool) -> Result<()> {
    for (_, p) in params {
        p.set_requires_grad(!frozen)?;
    }
    Ok(())
}

/// sqrt(sum of squared gradients) over `params` (0 for parameters without a gradient).
pub fn gradient_norm(params: &[(String, Var)]) -> Result<f32> {
    let mut total: Option<Var> = None;
    crate::autograd::no_grad(|| -> Result<()> {
        for (_, p) in params {
            if let Some(g) = p.grad() {
                let g = Var::constant(g);
                let sq = g.mul(&g)?.sum()?;
                total = Some(match total.take() {
                    Some(t) => t.add(&sq)?,
                    None => sq,
                });
            }
        }
        Ok(())
    })?;
    Ok(match total {
        Some(t) => t.value().item()?.sqrt(),
        None => 0.0,
    })
}

pub struct PatchGan {
    pub cfg: PatchGanConfig,
    pub ctx: Context,
    pub generator: Generator,
    pub discriminator: Discriminator,
    pub statistics: StatisticsNetwork,
    pub opt_g: Adam,
    pub opt_d: Adam,
    pub opt_t: Adam,
}

impl PatchGan {
    pub fn new(ctx: &Context, cfg: &PatchGanConfig, seed: u64) -> Result<PatchGan> {
        if cfg.level < 2 || cfg.level > cfg.size {
            return Err(Error::InvalidArgument(format!(
                "PatchGAN level {} must be in 2..={} (levels 0 and 1 need no generator)",
                cfg.level, cfg.size
            )));
        }
        let mut init = Init::new(ctx, seed);
        let generator = Generator::new(&mut init, &cfg.generator())?;
        let discriminator = Discriminator::new(&mut init, &cfg.discriminator())?;
        let statistics = StatisticsNetwork::new(&mut init, &cfg.mine())?;
        let adam = |lr: f32| AdamConfig { lr, betas: (0.0, 0.9), eps: 1e-8, weight_decay: 0.0 };
        let opt_g = Adam::new(named_parameters(&generator, "generator"), adam(1e-4))?;
        let opt_d = Adam::new(named_parameters(&discriminator, "discriminator"), adam(4e-4))?;
        let opt_t = Adam::new(named_parameters(&statistics, "statistics"), adam(4e-4))?;
        Ok(PatchGan { cfg: cfg.clone(), ctx: ctx.clone(), generator, discriminator, statistics, opt_g, opt_d, opt_t })
    }

    /// The three networks under their checkpoint prefixes.
    pub fn modules(&self) -> Vec<(&'static str, &dyn Module)> {
        vec![("generator", &self.generator), ("discriminator", &self.discriminator), ("statistics", &self.statistics)]
    }

    /// The three optimizers under their checkpoint prefixes.
    pub fn optimizers_mut(&mut self) -> Vec<(&'static str, &mut dyn Optimizer)> {
        vec![("generator", &mut self.opt_g), ("discriminator", &mut self.opt_d), ("statistics", &mut self.opt_t)]
    }

    pub fn optimizers(&self) -> Vec<(&'static str, &dyn Optimizer)> {
        vec![("generator", &self.opt_g), ("discriminator", &self.opt_d), ("statistics", &self.opt_t)]
    }

    /// One D step and one G/T step on the normal batch `real` (`[n, C, S, S]`, n >= 2).
    pub fn step(&mut self, real: &Images, rng: &mut ChaCha8Rng) -> Result<GanStepStats> {
        let n = real.n;
        if n < 2 || (real.channels, real.height, real.width) != (self.cfg.channels, self.cfg.size, self.cfg.size) {
            return Err(Error::Shape {
                what: format!("PatchGAN level {} batch", self.cfg.level),
                expected: format!("[>= 2, {}, {}, {}]", self.cfg.channels, self.cfg.size, self.cfg.size),
                got: format!("[{}, {}, {}, {}]", real.n, real.channels, real.height, real.width),
            });
        }
        let ctx = self.ctx.clone();
        for (_, m) in self.modules() {
            m.set_training(true);
        }
        let x = real.to_var(&ctx)?;
        let z = noise(&ctx, n, self.cfg.channels, self.cfg.size, rng)?;
        let fake = self.generator.forward(&z)?;

        // discriminator
        let d_real = self.discriminator.forward(&x)?;
        let d_fake = self.discriminator.forward(&Var::constant(fake.value().clone()))?;
        let d_loss = d_real.neg()?.softplus()?.mean()?.add(&d_fake.softplus()?.mean()?)?;
        self.opt_d.zero_grad();
        d_loss.backward()?;
        self.opt_d.step()?;

        // generator (D frozen) and statistics network
        let d_params = self.opt_d.params().to_vec();
        let g_params = self.opt_g.params().to_vec();
        let t_params = self.opt_t.params().to_vec();
        freeze(&d_params, true)?;
        let result = (|| -> Result<GanStepStats> {
            let g_adv = self.discriminator.forward(&fake)?.neg()?.softplus()?.mean()?;
            self.opt_g.zero_grad();
            self.opt_t.zero_grad();
            if !self.cfg.entropy {
                g_adv.backward()?;
                return Ok(GanStepStats { g_adv: g_adv.value().item()?, ..Default::default() });
            }
            let z_host = Images::from_tensor(z.value())?;
            let z_marginal = z_host.select(&derangement(n, rng)).to_var(&ctx)?;
            let terms = mine_terms(&self.statistics, &z, &z_marginal, &fake)?;
            let mi = terms.joint.sub(&terms.log_mean_exp)?;
            let neg_mi = mi.neg()?;
            neg_mi.backward()?;
            let grad_mi = gradient_norm(&g_params)?;
            self.opt_g.zero_grad();
            g_adv.backward()?;
            let grad_adv = gradient_norm(&g_params)?;
            let beta = (grad_adv / (grad_mi + 1e-8)).min(1.0);
            freeze(&t_params, true)?;
            let seeded = neg_mi.backward_with(&Tensor::scalar(&ctx, beta)?);
            freeze(&t_params, false)?;
            seeded?;
            Ok(GanStepStats {
                d_loss: 0.0,
                g_adv: g_adv.value().item()?,
                mi: mi.value().item()?,
                beta,
                t_joint: terms.joint.value().item()?,
                t_log_mean_exp: terms.log_mean_exp.value().item()?,
                grad_adv,
                grad_mi,
            })
        })();
        freeze(&d_params, false)?;
        let mut stats = result?;
        self.opt_g.step()?;
        if self.cfg.entropy {
            self.opt_t.step()?;
        }
        stats.d_loss = d_loss.value().item()?;
        Ok(stats)
    }
}
