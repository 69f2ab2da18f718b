//! The per-level PatchGAN discriminator D of Tables 5-7.
//!
//! Input: the image concatenated with its pixel coordinate map (two channels, like [31]), so
//! D may learn position-dependent patch statistics. Valid stride-1 convolutions of the kernel
//! plan give a receptive field of w x w; each is spectrally normalised, followed by a leaky
//! ReLU and a minibatch-stddev feature. Then a 1x1 convolution to twice the channels, two
//! residual blocks of 1x1 convolutions and a 1x1 convolution to one logit per w x w patch
//! (D_c = sigmoid(logit)). Spectral norm on every layer but the output (as the tables).
//! Channels double from `base` per convolution, capped at `8 * base`. The minibatch-stddev
//! layer appends one channel (Tables 5-7 list four, StyleGAN2's grouped variant).

use crate::autograd::{concat, Var};
use crate::kernels::{Error, Result, Tensor};
use crate::nn::{join, Conv2d, Init, LeakyRelu, MinibatchStddev, Module, Residual, Sequential, SpectralLayer, SpectralNorm};

use super::coords::{coordinate_map, receptive_kernels};
use super::detector::SLOPE;

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DiscriminatorConfig {
    /// The MRF level w: receptive field w x w.
    pub level: usize,
    pub channels: usize,
    /// Channels of the first convolution (64 in Tables 5 and 7).
    pub base: usize,
}

fn sn_conv(init: &mut Init, cin: usize, cout: usize, k: usize) -> Result<SpectralNorm> {
    let conv = Conv2d::new(init, cin, cout, k, 1, 0, true)?;
    SpectralNorm::new(init, SpectralLayer::Conv(conv))
}

pub struct Discriminator {
    pub cfg: DiscriminatorConfig,
    pub net: Sequential,
}

impl Discriminator {
    pub fn new(init: &mut Init, cfg: &DiscriminatorConfig) -> Result<Discriminator> {
        let kernels = receptive_kernels(cfg.level).map_err(|e| Error::Shape(e.to_string()))?;
        let mut net = Sequential::new();
        let mut cin = cfg.channels + 2;
        let mut cout = cfg.base;
        for (i, &k) in kernels.iter().enumerate() {
            net = net
                .push(format!("conv{i}"), sn_conv(init, cin, cout, k)?)
                .push(format!("act{i}"), LeakyRelu(SLOPE))
                .push(format!("mbstd{i}"), MinibatchStddev { eps: 1e-8 });
            cin = cout + 1;
            cout = (cout * 2).min(8 * cfg.base);
        }
        let hidden = 2 * (cin - 1);
        net = net.push("wide", sn_conv(init, cin, hidden, 1)?).push("wide_act", LeakyRelu(SLOPE));
        for b in 0..2 {
            let body = Sequential::new()
                .push("conv0", sn_conv(init, hidden, hidden, 1)?)
                .push("act0", LeakyRelu(SLOPE))
                .push("conv1", sn_conv(init, hidden, hidden, 1)?);
            net = net.push(format!("block{b}"), Residual { body, shortcut: None, activation: Some(Box::new(LeakyRelu(SLOPE))) });
        }
        net = net.push("out", Conv2d::new(init, hidden, 1, 1, 1, 0, true)?);
        Ok(Discriminator { cfg: cfg.clone(), net })
    }
}

/// Pixel coordinate maps `[n, 2, h, w]` of whole images.
pub fn pixel_coordinates(x: &Var) -> Result<Var> {
    let s = x.shape();
    if s.len() != 4 {
        return Err(Error::Shape(format!("expected [N, C, H, W], got {s:?}")));
    }
    let map = coordinate_map(1, s[2], s[3], (0, 0), (s[2], s[3])).map_err(|e| Error::Shape(e.to_string()))?;
    let data: Vec<f32> = (0..s[0]).flat_map(|_| map.iter().copied()).collect();
    Ok(Var::constant(Tensor::from_slice(x.value().context(), &[s[0], 2, s[2], s[3]], &data)?))
}

impl Module for Discriminator {
    /// x: `[N, C, H, W]` -> patch logits `[N, 1, H - w + 1, W - w + 1]`.
    fn forward(&self, x: &Var) -> Result<Var> {
        let input = concat(&[x, &pixel_coordinates(x)?])?;
        self.net.forward(&input)
    }

    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Var)) {
        self.net.visit_parameters(&join(prefix, "net"), f);
    }

    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        self.net.visit_buffers(&join(prefix, "net"), f);
    }

    fn set_training(&self, training: bool) {
        self.net.set_training(training);
    }
}
