//! The PatchGAN generator of Table 8: a U-Net from noise z (image-shaped) to an image.
//!
//! For an S x S image (S a power of two, >= 8) there are `log2(S / 4)` encoder stages, each a
//! 4x4 stride-2 convolution and a 1x1 convolution `c_i` whose output is also the skip; channels
//! `base * 2^i`, capped at `8 * base`. A 4x4 valid convolution takes the 4x4 map to 1x1 with
//! `8 * base` channels, a fully connected layer brings it back to `[c_last, 4, 4]`. Each decoder
//! stage concatenates its skip, upsamples bilinearly x2 and applies a 3x3 convolution (to the
//! next shallower skip's channels, `base` at the top) and, except at full size, a 1x1 one. A 1x1
//! convolution with tanh makes the image. All hidden layers: batch norm and leaky ReLU. For
//! S = 32 and base = 64 this is Table 8 layer for layer; S = 256 is the "similar but deeper"
//! texture network.

use crate::autograd::{concat, Var};
use crate::kernels::upsample::Resize;
use crate::kernels::{Error, Result, Tensor};
use crate::nn::{join, BatchNorm, Conv2d, Init, LeakyRelu, Linear, Module, Sequential, Tanh, Upsample};

use super::detector::SLOPE;

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GeneratorConfig {
    /// Image (and noise) size S.
    pub size: usize,
    pub channels: usize,
    /// Channels of the first stage (64 in Table 8).
    pub base: usize,
}

/// conv -> batch norm -> leaky ReLU.
fn conv_bn(init: &mut Init, cin: usize, cout: usize, k: usize, stride: usize, padding: usize) -> Result<Sequential> {
    Ok(Sequential::new()
        .push("conv", Conv2d::new(init, cin, cout, k, stride, padding, false)?)
        .push("bn", BatchNorm::new(init, cout, true)?)
        .push("act", LeakyRelu(SLOPE)))
}

pub struct Generator {
    pub cfg: GeneratorConfig,
    /// Stage i: the stride-2 convolution then `c_i`.
    pub down: Vec<Sequential>,
    pub bottleneck: Sequential,
    pub fc: Linear,
    pub fc_bn: BatchNorm,
    /// Deepest first.
    pub up: Vec<Sequential>,
    pub out: Sequential,
    c_last: usize,
}

impl Generator {
    pub fn new(init: &mut Init, cfg: &GeneratorConfig) -> Result<Generator> {
        if cfg.size < 8 || !cfg.size.is_power_of_two() {
            return Err(Error::Shape(format!("generator: image size {} is not a power of two >= 8", cfg.size)));
        }
        let stages = (cfg.size / 4).trailing_zeros() as usize;
        let widths: Vec<usize> = (0..stages).map(|i| (cfg.base << i).min(8 * cfg.base)).collect();
        let mut down = Vec::new();
        let mut cin = cfg.channels;
        for &c in &widths {
            down.push(
                Sequential::new()
                    .push("down", conv_bn(init, cin, c, 4, 2, 1)?)
                    .push("skip", conv_bn(init, c, c, 1, 1, 0)?),
            );
            cin = c;
        }
        let c_last = widths[stages - 1];
        let bottleneck = conv_bn(init, c_last, 8 * cfg.base, 4, 1, 0)?;
        let fc = Linear::new(init, 8 * cfg.base, 16 * c_last, false)?;
        let fc_bn = BatchNorm::new(init, c_last, true)?;
        let mut up = Vec::new();
        let mut h = c_last;
        for j in (0..stages).rev() {
            let out = if j == 0 { cfg.base } else { widths[j - 1] };
            let mut stage = Sequential::new()
                .push("upsample", Upsample(Resize::Factor([2.0, 2.0])))
                .push("conv3", conv_bn(init, h + widths[j], out, 3, 1, 1)?);
            if j > 0 {
                stage = stage.push("conv1", conv_bn(init, out, out, 1, 1, 0)?);
            }
            up.push(stage);
            h = out;
        }
        let out = Sequential::new().push("conv", Conv2d::new(init, h, cfg.channels, 1, 1, 0, true)?).push("tanh", Tanh);
        Ok(Generator { cfg: cfg.clone(), down, bottleneck, fc, fc_bn, up, out, c_last })
    }

    fn parts(&self) -> Vec<(String, &dyn Module)> {
        let mut v: Vec<(String, &dyn Module)> = Vec::new();
        for (i, d) in self.down.iter().enumerate() {
            v.push((format!("down{i}"), d));
        }
        v.push(("bottleneck".into(), &self.bottleneck));
        v.push(("fc".into(), &self.fc));
        v.push(("fc_bn".into(), &self.fc_bn));
        for (j, u) in self.up.iter().enumerate() {
            v.push((format!("up{j}"), u));
        }
        v.push(("out".into(), &self.out));
        v
    }
}

impl Module for Generator {
    /// z: `[N, C, S, S]` -> image `[N, C, S, S]` in (-1, 1).
    fn forward(&self, z: &Var) -> Result<Var> {
        let want = [self.cfg.channels, self.cfg.size, self.cfg.size];
        if z.shape().len() != 4 || z.shape()[1..] != want {
            return Err(Error::Shape(format!("generator: noise {:?}, expected [N, {}, {}, {}]", z.shape(), want[0], want[1], want[2])));
        }
        let n = z.shape()[0];
        let mut skips = Vec::new();
        let mut h = z.clone();
        for d in &self.down {
            h = d.forward(&h)?;
            skips.push(h.clone());
        }
        let b = self.bottleneck.forward(&h)?.flatten()?;
        let mut h = self.fc.forward(&b)?.reshape(&[n, self.c_last, 4, 4])?;
        h = self.fc_bn.forward(&h)?.leaky_relu(SLOPE)?;
        for (u, skip) in self.up.iter().zip(skips.iter().rev()) {
            h = u.forward(&concat(&[&h, skip])?)?;
        }
        self.out.forward(&h)
    }

    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Var)) {
        for (name, m) in self.parts() {
            m.visit_parameters(&join(prefix, &name), f);
        }
    }

    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        for (name, m) in self.parts() {
            m.visit_buffers(&join(prefix, &name), f);
        }
    }

    fn set_training(&self, training: bool) {
        for (_, m) in self.parts() {
            m.set_training(training);
        }
    }
}
