//! U-Net (Ronneberger et al. 2015) made from the Bergmann et al. SSIM autoencoder by adding skip
//! connections (thesis §4.2: the localization network for the pixel-wise logistic loss).
//!
//! The encoder is [`bergmann_encoder`] unchanged. At every resolution the encoder's last feature
//! map (the outputs of `conv1` at S/2, `conv2` at S/4, `conv4` at S/8, `conv6` at S/16 and `conv9`
//! at S/32, S the image size) is concatenated along channels onto the decoder's feature map of the
//! same shape, i.e. onto the input of the transposed convolution that mirrors that encoder layer
//! (`deconv10`, `deconv9`, `deconv7`, `deconv5`, `deconv2`). The decoder ends in one channel of
//! per-pixel logits.

use crate::autograd::{concat, Var};
use crate::kernels::{Error, Result, Tensor};
use crate::nn::{join, Init, Module, Sequential};

use super::autoencoder::{bergmann_decoder, bergmann_encoder, BergmannConfig};

pub struct UNet {
    pub encoder: Sequential,
    pub decoder: Sequential,
    /// Indices of the encoder blocks whose outputs are skipped to the decoder.
    skips: Vec<usize>,
}

impl UNet {
    /// [N, C, S, S] -> logits [N, 1, S, S]; S = `cfg.image_size` (256 in the thesis).
    pub fn new(init: &mut Init, cfg: &BergmannConfig) -> Result<UNet> {
        let layers = cfg.encoder_layers();
        let n = layers.len();
        // Encoder block i feeds the decoder when the next encoder layer changes the resolution
        // (stride 2) or is the bottleneck: its output is the last feature map at that size.
        let skips: Vec<usize> = (0..n - 1).filter(|&i| layers[i + 1].stride != 1 || i + 1 == n - 1).collect();
        // Decoder block n - 1 - i mirrors encoder block i, so its input has block i's output shape.
        let mut extra = vec![0; n];
        for &i in &skips {
            extra[n - 1 - i] = layers[i].cout;
        }
        let encoder = bergmann_encoder(init, cfg)?;
        let decoder = bergmann_decoder(init, cfg, &extra, 1)?;
        Ok(UNet { encoder, decoder, skips })
    }

    /// Names of the encoder blocks whose outputs are skipped (`conv1`, `conv2`, ...).
    pub fn skip_sources(&self) -> Vec<&str> {
        self.skips.iter().map(|&i| self.encoder.layers[i].0.as_str()).collect()
    }
}

impl Module for UNet {
    fn forward(&self, x: &Var) -> Result<Var> {
        let n = self.encoder.layers.len();
        let mut skipped: Vec<Option<Var>> = vec![None; n];
        let mut h = x.clone();
        for (i, (_, block)) in self.encoder.layers.iter().enumerate() {
            h = block.forward(&h)?;
            if self.skips.contains(&i) {
                skipped[n - 1 - i] = Some(h.clone());
            }
        }
        for (j, (name, block)) in self.decoder.layers.iter().enumerate() {
            if let Some(s) = &skipped[j] {
                if s.shape()[2..] != h.shape()[2..] {
                    return Err(Error::Shape(format!(
                        "U-Net: skip {:?} does not match the decoder input {:?} of {name}",
                        s.shape(),
                        h.shape()
                    )));
                }
                h = concat(&[&h, s])?;
            }
            h = block.forward(&h)?;
        }
        Ok(h)
    }

    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Var)) {
        self.encoder.visit_parameters(&join(prefix, "encoder"), f);
        self.decoder.visit_parameters(&join(prefix, "decoder"), f);
    }

    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        self.encoder.visit_buffers(&join(prefix, "encoder"), f);
        self.decoder.visit_buffers(&join(prefix, "decoder"), f);
    }

    fn set_training(&self, training: bool) {
        self.encoder.set_training(training);
        self.decoder.set_training(training);
    }
}
