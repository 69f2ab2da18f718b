//! Level-specific detectors A^s (§3.2.1, appendix C.2) and their contrastive loss, eq. 3.
//!
//! A^s is a stride-1 fully convolutional net with receptive field s x s and no normalisation:
//! Gaussian input noise (variance 0.05) -> valid convolutions of the kernel plan
//! [`receptive_kernels`](super::coords::receptive_kernels) with leaky ReLUs -> concatenation of
//! the coordinate map r^s (two channels) -> 1x1 convolution -> `num_blocks` residual blocks of
//! 1x1 convolutions with dropout -> a 1x1 convolution to one logit per patch. Everything after
//! the coordinates is 1x1, so a fake coordinate map's pixel-to-pixel discontinuities stay
//! invisible (§3.2.2). A^s_c = sigmoid(logit).

use crate::autograd::{concat, Var};
use crate::kernels::{Context, Result, Tensor};
use crate::nn::{join, Activation, Conv2d, Dropout, GaussianNoise, Init, LeakyRelu, Module, Residual, Sequential};

use super::coords::{coordinate_map, receptive_kernels};

/// Leaky ReLU slope of every MLSAD network.
pub const SLOPE: f32 = 0.2;
const LEAKY: Activation = Activation::LeakyRelu(SLOPE);

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DetectorConfig {
    /// The level s: receptive field s x s.
    pub level: usize,
    /// Image channels.
    pub channels: usize,
    /// Channels of the first convolution; later ones double up to 4x this.
    pub width: usize,
    /// Residual blocks after the coordinates (1 for MNIST and textures, 2 for CIFAR-10).
    pub num_blocks: usize,
    pub dropout: f32,
    /// Variance of the Gaussian input noise (0.05 in appendix C.2).
    pub noise_variance: f32,
}

pub struct Detector {
    pub cfg: DetectorConfig,
    noise: GaussianNoise,
    /// Input -> features of receptive field s.
    pub features: Sequential,
    /// Features + coordinates -> one logit per patch.
    pub head: Sequential,
}

impl Detector {
    pub fn new(init: &mut Init, cfg: &DetectorConfig) -> Result<Detector> {
        let kernels = receptive_kernels(cfg.level).map_err(|e| crate::kernels::Error::Shape(e.to_string()))?;
        let noise = GaussianNoise::new(init, cfg.noise_variance.sqrt());
        let mut features = Sequential::new();
        let mut cin = cfg.channels;
        let mut cout = cfg.width;
        for (i, &k) in kernels.iter().enumerate() {
            // The leaky ReLUs run inside the convs' stores (no parameters, so names are unchanged).
            features = features.push(format!("conv{i}"), Conv2d::new(init, cin, cout, k, 1, 0, true)?.with_activation(LEAKY));
            cin = cout;
            cout = (cout * 2).min(4 * cfg.width);
        }
        let hidden = 2 * cin;
        let mut head = Sequential::new()
            .push("coord_conv", Conv2d::new(init, cin + 2, hidden, 1, 1, 0, true)?.with_activation(LEAKY));
        for b in 0..cfg.num_blocks {
            let body = Sequential::new()
                .push("conv0", Conv2d::new(init, hidden, hidden, 1, 1, 0, true)?.with_activation(LEAKY))
                .push("dropout", Dropout::new(init, cfg.dropout))
                .push("conv1", Conv2d::new(init, hidden, hidden, 1, 1, 0, true)?);
            head = head.push(format!("block{b}"), Residual { body, shortcut: None, activation: Some(Box::new(LeakyRelu(SLOPE))) });
        }
        head = head.push("out", Conv2d::new(init, hidden, 1, 1, 1, 0, true)?);
        Ok(Detector { cfg: cfg.clone(), noise, features, head })
    }

    pub fn level(&self) -> usize {
        self.cfg.level
    }

    /// Patch logits. x: `[N, C, H, W]`, coords: `[N, 2, H - s + 1, W - s + 1]` ->
    /// `[N, 1, H - s + 1, W - s + 1]`.
    pub fn logits(&self, x: &Var, coords: &Var) -> Result<Var> {
        let h = self.features.forward(&self.noise.forward(x)?)?;
        if h.shape()[0] != coords.shape()[0] || h.shape()[2..] != coords.shape()[2..] || coords.shape()[1] != 2 {
            return Err(crate::kernels::Error::Shape(format!(
                "detector A^{}: coordinate map {:?} does not fit the features {:?}",
                self.cfg.level,
                coords.shape(),
                h.shape()
            )));
        }
        self.head.forward(&concat(&[&h, coords])?)
    }

    /// The true coordinate map r^s of whole `height x width` images, repeated `n` times:
    /// `[n, 2, height - s + 1, width - s + 1]`.
    pub fn true_coordinates(&self, ctx: &Context, n: usize, height: usize, width: usize) -> crate::Result<Var> {
        let s = self.cfg.level;
        let map = coordinate_map(s, height, width, (0, 0), (height, width))?;
        let data: Vec<f32> = (0..n).flat_map(|_| map.iter().copied()).collect();
        Ok(Var::constant(Tensor::from_slice(ctx, &[n, 2, height + 1 - s, width + 1 - s], &data)?))
    }
}

impl Module for Detector {
    /// Logits of whole images with their true coordinates.
    fn forward(&self, x: &Var) -> Result<Var> {
        let s = x.shape();
        let coords = self
            .true_coordinates(x.value().context(), s[0], s[2], s[3])
            .map_err(|e| crate::kernels::Error::Shape(e.to_string()))?;
        self.logits(x, &coords)
    }

    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Var)) {
        self.features.visit_parameters(&join(prefix, "features"), f);
        self.head.visit_parameters(&join(prefix, "head"), f);
    }

    fn set_training(&self, training: bool) {
        self.noise.set_training(training);
        self.features.set_training(training);
        self.head.set_training(training);
    }
}

/// Eq. 3 on logits of a batch stacked as `[normal pairs (x, r); position-anomaly pairs
/// (x, r̂); structure-anomaly pairs (x̂, r)]`, `n` of each: `logits` `[3n, 1, h, w]`.
///
/// L = mean_c [softplus(l(x, r)) + alpha1 softplus(-l(x, r̂)) + alpha2 softplus(-l(x̂, r))],
/// as -log(1 - sigmoid(l)) = softplus(l) and -log sigmoid(l) = softplus(-l).
pub fn contrastive_loss(logits: &Var, n: usize, alpha1: f32, alpha2: f32) -> Result<Var> {
    let s = logits.shape();
    if s.len() != 4 || s[0] != 3 * n || s[1] != 1 {
        return Err(crate::kernels::Error::Shape(format!("contrastive loss: logits {s:?} for 3 x {n} pairs")));
    }
    let per_group = (n * s[2] * s[3]) as f32;
    let mut sign = vec![1.0f32; 3 * n];
    let mut weight = vec![1.0 / per_group; 3 * n];
    for i in n..3 * n {
        sign[i] = -1.0;
        weight[i] = if i < 2 * n { alpha1 } else { alpha2 } / per_group;
    }
    let ctx = logits.value().context();
    let sign = Var::constant(Tensor::from_slice(ctx, &[3 * n, 1, 1, 1], &sign)?);
    let weight = Var::constant(Tensor::from_slice(ctx, &[3 * n, 1, 1, 1], &weight)?);
    logits.mul(&sign)?.softplus()?.mul(&weight)?.sum()
}
