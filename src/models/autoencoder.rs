//! Convolutional autoencoders for the SSIM loss (thesis §4.2).
//!
//! - [`fmnist_autoencoder`] and [`cifar10_autoencoder`]: the LeNet encoders of [`super::lenet`]
//!   decapitated (fully connected head removed) plus convolutions down to a 100-dimensional
//!   bottleneck; the decoders reflect the encoders with transposed convolutions.
//! - [`bergmann_autoencoder`]: the SSIM autoencoder of Bergmann et al. (VISAPP 2019) for 256x256
//!   grayscale images (MVTec AD / MPDD objects), whose encoder and decoder [`super::unet`] reuses.
//!
//! Every autoencoder is an [`AutoEncoder`]: an `encoder` and a `decoder`, both [`Sequential`], so
//! parameter names are `encoder.<layer>.weight` / `decoder.<layer>.weight` and either half can be
//! run alone ([`AutoEncoder::encode`], [`AutoEncoder::decode`]). Outputs are linear (no sigmoid):
//! inputs are z-scored (thesis §4.2.2), so the reconstruction lives in the same unbounded range.

use crate::autograd::Var;
use crate::kernels::{Error, Result, Tensor};
use crate::nn::{join, Activation, BatchNorm, Conv2d, ConvTranspose2d, Init, Module, Sequential};

use super::lenet;

/// Size of the bottleneck of every SSIM autoencoder of the thesis.
pub const LATENT: usize = 100;

/// An encoder and a decoder; `forward` reconstructs.
pub struct AutoEncoder {
    pub encoder: Sequential,
    pub decoder: Sequential,
}

impl AutoEncoder {
    /// x: [N, C, H, W] -> the latent code [N, latent, 1, 1]
    pub fn encode(&self, x: &Var) -> Result<Var> {
        self.encoder.forward(x)
    }

    /// z: [N, latent, 1, 1] -> the reconstruction [N, C, H, W]
    pub fn decode(&self, z: &Var) -> Result<Var> {
        self.decoder.forward(z)
    }
}

impl Module for AutoEncoder {
    fn forward(&self, x: &Var) -> Result<Var> {
        self.decode(&self.encode(x)?)
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

/// Batch norm as in the LeNet encoders: no affine parameters, eps 1e-4.
fn lenet_bn(init: &mut Init, channels: usize) -> Result<BatchNorm> {
    let mut bn = BatchNorm::new(init, channels, false)?;
    bn.eps = 1e-4;
    Ok(bn)
}

/// Appends `deconv{i}`, and unless it is the output layer `bn{i}` with leaky ReLU 0.01 fused.
#[allow(clippy::too_many_arguments)]
fn lenet_deconv(
    init: &mut Init,
    seq: Sequential,
    i: usize,
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    padding: usize,
    output_padding: usize,
    output: bool,
) -> Result<Sequential> {
    let seq = seq.push(format!("deconv{i}"), ConvTranspose2d::new(init, cin, cout, k, stride, padding, output_padding, false)?);
    if output {
        return Ok(seq);
    }
    Ok(seq.push(format!("bn{i}"), lenet_bn(init, cout)?.with_activation(Activation::LeakyRelu(0.01))))
}

/// Fashion-MNIST SSIM autoencoder, [N, 1, 28, 28] -> [N, 1, 28, 28]. Bias-free like the LeNet.
///
/// Encoder (`encoder.*`): the Fashion-MNIST LeNet without `flatten`/`fc1`:
/// `conv1` 1->8 5x5 pad 2, `bn1` + leaky ReLU 0.01 + 2x2 max pool (8x14x14);
/// `conv2` 8->4 5x5 pad 2, `bn2` + leaky ReLU + pool (4x7x7); then the bottleneck
/// `conv3` 4->100 7x7 valid (100x1x1, linear).
/// Decoder (`decoder.*`), the reflection: `deconv1` 100->4 7x7 (4x7x7), `bn1` + leaky ReLU;
/// `deconv2` 4->8 5x5 stride 2 pad 2 output-pad 1 (8x14x14; conv + pool mirrored by one
/// stride-2 transposed conv), `bn2` + leaky ReLU; `deconv3` 8->1 5x5 stride 2 pad 2 output-pad 1
/// (1x28x28, linear).
pub fn fmnist_autoencoder(init: &mut Init) -> Result<AutoEncoder> {
    let encoder = lenet::conv_block(init, Sequential::new(), 1, 1, 8, false)?;
    let encoder = lenet::conv_block(init, encoder, 2, 8, 4, false)?;
    let encoder = encoder.push("conv3", Conv2d::new(init, 4, LATENT, 7, 1, 0, false)?);
    let decoder = lenet_deconv(init, Sequential::new(), 1, LATENT, 4, 7, 1, 0, 0, false)?;
    let decoder = lenet_deconv(init, decoder, 2, 4, 8, 5, 2, 2, 1, false)?;
    let decoder = lenet_deconv(init, decoder, 3, 8, 1, 5, 2, 2, 1, true)?;
    Ok(AutoEncoder { encoder, decoder })
}

/// CIFAR-10 SSIM autoencoder, [N, C, 32, 32] -> [N, C, 32, 32]; `in_channels` is 1 for the
/// grayscaled images SSIM is trained on (thesis §4.2.2), 3 for colour. Bias-free like the LeNet.
///
/// The thesis appends two convolutions to the decapitated LeNet, "the first to dimension
/// 64x8x8 and the second to 100 latent features". The CIFAR LeNet's third block ends at 8x8
/// before its pool, so decapitation here removes block 3's pool, `flatten` and `fc1`:
/// Encoder: `conv1` C->32 5x5 pad 2, `bn1` + leaky ReLU + 2x2 max pool (32x16x16); `conv2` 32->64,
/// `bn2` + leaky ReLU + pool (64x8x8); `conv3` 64->128 5x5 pad 2, `bn3` + leaky ReLU (128x8x8); appended
/// `conv4` 128->64 3x3 pad 1, `bn4` + leaky ReLU (64x8x8); bottleneck `conv5` 64->100 8x8 valid
/// (100x1x1, linear). Batch norms without affine parameters (eps 1e-4), leaky ReLU 0.01.
/// Decoder: `deconv1` 100->64 8x8 (64x8x8), `deconv2` 64->128 3x3 pad 1, `deconv3` 128->64 5x5
/// pad 2, `deconv4` 64->32 5x5 stride 2 pad 2 output-pad 1 (32x16x16), each with `bn` + leaky ReLU;
/// `deconv5` 32->C 5x5 stride 2 pad 2 output-pad 1 (Cx32x32, linear).
pub fn cifar10_autoencoder(init: &mut Init, in_channels: usize) -> Result<AutoEncoder> {
    if in_channels == 0 {
        return Err(Error::Shape("cifar10_autoencoder: in_channels must be positive, got 0".into()));
    }
    let encoder = lenet::conv_block(init, Sequential::new(), 1, in_channels, 32, false)?;
    let encoder = lenet::conv_block(init, encoder, 2, 32, 64, false)?;
    let encoder = encoder
        .push("conv3", Conv2d::new(init, 64, 128, 5, 1, 2, false)?)
        .push("bn3", lenet_bn(init, 128)?.with_activation(Activation::LeakyRelu(0.01)))
        .push("conv4", Conv2d::new(init, 128, 64, 3, 1, 1, false)?)
        .push("bn4", lenet_bn(init, 64)?.with_activation(Activation::LeakyRelu(0.01)))
        .push("conv5", Conv2d::new(init, 64, LATENT, 8, 1, 0, false)?);
    let decoder = lenet_deconv(init, Sequential::new(), 1, LATENT, 64, 8, 1, 0, 0, false)?;
    let decoder = lenet_deconv(init, decoder, 2, 64, 128, 3, 1, 1, 0, false)?;
    let decoder = lenet_deconv(init, decoder, 3, 128, 64, 5, 1, 2, 0, false)?;
    let decoder = lenet_deconv(init, decoder, 4, 64, 32, 5, 2, 2, 1, false)?;
    let decoder = lenet_deconv(init, decoder, 5, 32, in_channels, 5, 2, 2, 1, true)?;
    Ok(AutoEncoder { encoder, decoder })
}

/// Sizes of the Bergmann et al. autoencoder. The default is the thesis's: 256x256 grayscale,
/// 32/64/128 channels, 100 latent features. Smaller settings run the same code (tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BergmannConfig {
    /// Height = width of the input; a multiple of 32 (five stride-2 convolutions).
    pub image_size: usize,
    pub in_channels: usize,
    /// The paper's 32, 64, 128 channels.
    pub widths: [usize; 3],
    pub latent: usize,
}

impl Default for BergmannConfig {
    fn default() -> Self {
        BergmannConfig { image_size: 256, in_channels: 1, widths: [32, 64, 128], latent: LATENT }
    }
}

/// One convolution of the encoder: in and out channels, kernel, stride, padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvSpec {
    pub cin: usize,
    pub cout: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl BergmannConfig {
    fn check(&self) -> Result<()> {
        if self.image_size < 32 || self.image_size % 32 != 0 {
            return Err(Error::Shape(format!(
                "Bergmann autoencoder: image size {} must be a positive multiple of 32 (five stride-2 convolutions)",
                self.image_size
            )));
        }
        if self.in_channels == 0 || self.widths.contains(&0) || self.latent == 0 {
            return Err(Error::Shape(format!("Bergmann autoencoder: channel counts must be positive, got {self:?}")));
        }
        Ok(())
    }

    /// The encoder's layers, `conv1`..`conv10`. For 256x256 (spatial size after each):
    ///
    /// | layer  | channels  | kernel | stride | pad | output  |
    /// |--------|-----------|--------|--------|-----|---------|
    /// | conv1  | C -> 32   | 4x4    | 2      | 1   | 128     |
    /// | conv2  | 32 -> 32  | 4x4    | 2      | 1   | 64      |
    /// | conv3  | 32 -> 32  | 4x4    | 2      | 1   | 32      |
    /// | conv4  | 32 -> 32  | 3x3    | 1      | 1   | 32      |
    /// | conv5  | 32 -> 64  | 4x4    | 2      | 1   | 16      |
    /// | conv6  | 64 -> 64  | 3x3    | 1      | 1   | 16      |
    /// | conv7  | 64 -> 128 | 4x4    | 2      | 1   | 8       |
    /// | conv8  | 128 -> 64 | 3x3    | 1      | 1   | 8       |
    /// | conv9  | 64 -> 32  | 3x3    | 1      | 1   | 8       |
    /// | conv10 | 32 -> 100 | 8x8    | 1      | 0   | 1       |
    ///
    /// This is the paper's 128x128 table (conv2..conv10 here) with one more 4x4 stride-2
    /// convolution in front for 256x256 inputs, as in the MVTec AD baseline. Every layer but the
    /// bottleneck is followed by leaky ReLU (slope 0.2); all have a bias. The bottleneck kernel is
    /// `image_size / 32`.
    pub fn encoder_layers(&self) -> Vec<ConvSpec> {
        let [w0, w1, w2] = self.widths;
        let c = |cin, cout, kernel, stride, padding| ConvSpec { cin, cout, kernel, stride, padding };
        vec![
            c(self.in_channels, w0, 4, 2, 1),
            c(w0, w0, 4, 2, 1),
            c(w0, w0, 4, 2, 1),
            c(w0, w0, 3, 1, 1),
            c(w0, w1, 4, 2, 1),
            c(w1, w1, 3, 1, 1),
            c(w1, w2, 4, 2, 1),
            c(w2, w1, 3, 1, 1),
            c(w1, w0, 3, 1, 1),
            c(w0, self.latent, self.image_size / 32, 1, 0),
        ]
    }
}

/// Slope of the Bergmann autoencoder's leaky ReLUs.
pub const BERGMANN_SLOPE: f32 = 0.2;

/// The Bergmann encoder: blocks `conv1`..`conv10` of [`BergmannConfig::encoder_layers`].
/// [N, C, S, S] -> [N, latent, 1, 1]
pub fn bergmann_encoder(init: &mut Init, cfg: &BergmannConfig) -> Result<Sequential> {
    cfg.check()?;
    let layers = cfg.encoder_layers();
    let last = layers.len() - 1;
    let mut seq = Sequential::new();
    for (i, l) in layers.iter().enumerate() {
        let mut conv = Conv2d::new(init, l.cin, l.cout, l.kernel, l.stride, l.padding, true)?;
        if i != last {
            conv = conv.with_activation(Activation::LeakyRelu(BERGMANN_SLOPE));
        }
        seq = seq.push(format!("conv{}", i + 1), conv);
    }
    Ok(seq)
}

/// The mirrored decoder: `deconv1`..`deconv10`, `deconv{j}` reflecting encoder layer
/// `conv{11 - j}` as a transposed convolution with the same kernel, stride and padding (so the
/// spatial sizes retrace the encoder's). `extra_inputs[j - 1]` channels are added to the input of
/// `deconv{j}` (the U-Net's skip connections; all zero for the autoencoder); the last layer
/// outputs `out_channels` and is linear, the others use leaky ReLU 0.2.
/// [N, latent, 1, 1] -> [N, out_channels, S, S]
pub fn bergmann_decoder(init: &mut Init, cfg: &BergmannConfig, extra_inputs: &[usize], out_channels: usize) -> Result<Sequential> {
    cfg.check()?;
    let layers = cfg.encoder_layers();
    if extra_inputs.len() != layers.len() {
        return Err(Error::Shape(format!(
            "bergmann_decoder: {} extra input counts for {} layers",
            extra_inputs.len(),
            layers.len()
        )));
    }
    if out_channels == 0 {
        return Err(Error::Shape("bergmann_decoder: out_channels must be positive, got 0".into()));
    }
    let mut seq = Sequential::new();
    for (j, l) in layers.iter().rev().enumerate() {
        let output = j == layers.len() - 1;
        let cout = if output { out_channels } else { l.cin };
        let mut deconv = ConvTranspose2d::new(init, l.cout + extra_inputs[j], cout, l.kernel, l.stride, l.padding, 0, true)?;
        if !output {
            deconv = deconv.with_activation(Activation::LeakyRelu(BERGMANN_SLOPE));
        }
        seq = seq.push(format!("deconv{}", j + 1), deconv);
    }
    Ok(seq)
}

/// The SSIM autoencoder of Bergmann et al.: [N, C, S, S] -> [N, C, S, S] (S = 256 by default).
/// Layers: [`BergmannConfig::encoder_layers`] and their mirror ([`bergmann_decoder`]).
pub fn bergmann_autoencoder(init: &mut Init, cfg: &BergmannConfig) -> Result<AutoEncoder> {
    let encoder = bergmann_encoder(init, cfg)?;
    let decoder = bergmann_decoder(init, cfg, &vec![0; cfg.encoder_layers().len()], cfg.in_channels)?;
    Ok(AutoEncoder { encoder, decoder })
}
