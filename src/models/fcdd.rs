//! Fully convolutional data description networks (FCDD; Liznerski et al. 2021; thesis §4.1.3):
//! convolutions and max pools only, ending in a 1x1 convolution to one channel, so every output
//! pixel scores one receptive field of the input. The heatmap is brought back to the image size
//! by a transposed convolution with a fixed Gaussian whose size, stride and offset come from the
//! receptive field ([`ReceptiveField`], computed layer by layer as the network is built).
//!
//! Networks (from the FCDD reference code):
//! - [`fcdd_fmnist`] (`FCDD_CNN28_W`): [N, 1, 28, 28] -> [N, 1, 7, 7];
//! - [`fcdd_cifar10`] (`FCDD_CNN32_LW3K`): [N, 3, 32, 32] -> [N, 1, 8, 8];
//! - [`fcdd_vgg11_bn`] (`FCDD_CNN224_VGG_F`): torchvision's VGG11-BN features cut after the
//!   fourth 512-channel block (before the fourth max pool), [N, 3, 224, 224] -> [N, 1, 28, 28];
//!   ImageNet weights load with [`Fcdd::load_torchvision_vgg11_bn`].
//!
//! All three builders take the input size, so the same code runs on small inputs in tests.

use std::path::Path;

use crate::autograd::{gaussian_upsample, Var};
use crate::kernels::conv2d::conv_out_size;
use crate::kernels::gaussian_upsample::{GaussianUpsample, THESIS_SIGMA};
use crate::kernels::pool2d::Pool2d;
use crate::kernels::{Error, Result, Tensor};
use crate::nn::{join, Activation, BatchNorm, Conv2d, Init, MaxPool2d, Module, Sequential};

/// Receptive field of the pixels of a feature map with respect to the input, per axis (square
/// kernels): `size` r (extent in input pixels), `jump` j (input pixels between neighbouring
/// feature pixels, the product of strides) and `start` s (input coordinate of the centre of the
/// first feature pixel's field; input pixel i has centre i). A layer with kernel k, stride t and
/// padding p maps (r, j, s) to (r + (k - 1) j, j t, s + ((k - 1) / 2 - p) j) (Dumoulin & Visin's
/// receptive-field arithmetic, as FCDD's `RecConv2d`/`RecMaxPool2d` track it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReceptiveField {
    pub size: usize,
    pub jump: usize,
    pub start: f64,
}

impl ReceptiveField {
    /// The input itself: every pixel sees itself.
    pub const INPUT: ReceptiveField = ReceptiveField { size: 1, jump: 1, start: 0.0 };

    /// After a convolution or pooling with square kernel `kernel`, `stride` and `padding`
    /// (dilation 1).
    pub fn then(self, kernel: usize, stride: usize, padding: usize) -> ReceptiveField {
        ReceptiveField {
            size: self.size + (kernel - 1) * self.jump,
            jump: self.jump * stride,
            start: self.start + ((kernel as f64 - 1.0) / 2.0 - padding as f64) * self.jump as f64,
        }
    }

    /// FCDD's Gaussian upsampling of a heatmap with this receptive field to an `image` of
    /// `[height, width]`: kernel size r, stride j, offset from s (see
    /// [`GaussianUpsample::fcdd`]); `sigma` is the Gaussian's standard deviation (the thesis: 14).
    pub fn upsampler(&self, image: [usize; 2], sigma: f32) -> GaussianUpsample {
        GaussianUpsample::fcdd(self.size, self.jump, self.start, image, sigma)
    }
}

/// An FCDD network: `features` then `conv_final` (1x1 to one channel).
pub struct Fcdd {
    pub features: Sequential,
    pub conv_final: Conv2d,
    /// Receptive field of the output pixels.
    pub receptive_field: ReceptiveField,
    pub in_channels: usize,
    /// `[height, width]` the network was built for.
    pub input_size: [usize; 2],
    /// `[height, width]` of the output map for that input.
    pub output_size: [usize; 2],
    /// How many of the builder's modules each `features` entry stands for: a batch norm carries
    /// the activation and 2x2 max pool that followed it (run inside its own pass), so
    /// [`Fcdd::freeze_features`] still counts modules as they were built.
    spans: Vec<usize>,
}

impl Fcdd {
    /// The Gaussian upsampling for this network's heatmaps.
    pub fn upsampler(&self, sigma: f32) -> GaussianUpsample {
        self.receptive_field.upsampler(self.input_size, sigma)
    }

    /// FCDD's heatmap A = sqrt(phi(x)^2 + 1) - 1 (pseudo-Huber). x: [N, C, H, W] -> [N, 1, h, w]
    pub fn anomaly_map(&self, x: &Var) -> Result<Var> {
        let y = self.forward(x)?;
        y.mul(&y)?.add_scalar(1.0)?.sqrt()?.add_scalar(-1.0)
    }

    /// Upsamples a map of this network's output size to the input size with the receptive-field
    /// Gaussian (std `sigma`). map: [N, 1, h, w] -> [N, 1, H, W]
    pub fn upsample(&self, map: &Var, sigma: f32) -> Result<Var> {
        let s = map.shape();
        if s.len() != 4 || s[1] != 1 || s[2..] != self.output_size {
            return Err(Error::Shape(format!(
                "FCDD upsampling: map {s:?} must be [batch, 1, {}, {}], the output of this network for {:?} inputs",
                self.output_size[0], self.output_size[1], self.input_size
            )));
        }
        gaussian_upsample(map, self.upsampler(sigma))
    }

    /// The full-resolution heatmap with the thesis's Gaussian (std 14). x: [N, C, H, W] -> [N, 1, H, W]
    pub fn full_resolution_map(&self, x: &Var) -> Result<Var> {
        self.upsample(&self.anomaly_map(x)?, THESIS_SIGMA)
    }

    /// Freezes the parameters of the first `layers` modules as built (FCDD freezes the pretrained
    /// VGG's first [`VGG_FROZEN_LAYERS`]; a batch norm carrying the activation and pool after it
    /// counts as those modules); their batch norms still track statistics in training.
    pub fn freeze_features(&self, layers: usize) -> Result<()> {
        let mut built = 0;
        for ((name, layer), span) in self.features.layers.iter().zip(&self.spans) {
            if built >= layers {
                break;
            }
            built += span;
            let mut result = Ok(());
            layer.visit_parameters(name, &mut |_, v| {
                if result.is_ok() {
                    result = v.set_requires_grad(false);
                }
            });
            result?;
        }
        Ok(())
    }

    /// Loads ImageNet weights into the VGG11-BN features of [`fcdd_vgg11_bn`] from a safetensors
    /// file with torchvision's names (`features.0.weight`, `features.1.running_mean`, ...), e.g.
    /// `torchvision.models.vgg11_bn(weights="DEFAULT").state_dict()` saved with
    /// `safetensors.torch.save_file`. Tensors the network does not use (`classifier.*`, the cut
    /// layers, `num_batches_tracked`) are ignored; `conv_final` keeps its initialisation. Every
    /// missing, wrongly shaped or non-F32 tensor is named in the error, and then nothing is changed.
    pub fn load_torchvision_vgg11_bn(&self, path: &Path) -> crate::Result<()> {
        let bad = |message: String| crate::Error::Checkpoint { path: path.to_path_buf(), message };
        let data = std::fs::read(path).map_err(|e| crate::Error::io(path, e))?;
        let st = safetensors::SafeTensors::deserialize(&data)
            .map_err(|e| bad(format!("not a readable safetensors file: {e}")))?;
        let mut targets: Vec<(String, Tensor)> = Vec::new();
        self.features.visit_parameters("features", &mut |n, v| targets.push((n, v.value().clone())));
        self.features.visit_buffers("features", &mut |n, t| targets.push((n, t.clone())));
        let mut problems = Vec::new();
        let mut values = Vec::with_capacity(targets.len());
        for (name, t) in &targets {
            match st.tensor(name) {
                Err(_) => problems.push(format!("missing tensor {name} {:?}", t.shape())),
                Ok(view) if view.shape() != t.shape() => {
                    problems.push(format!("tensor {name} has shape {:?}, the network expects {:?}", view.shape(), t.shape()))
                }
                Ok(view) if view.dtype() != safetensors::Dtype::F32 => {
                    problems.push(format!("tensor {name} has dtype {:?}, expected F32", view.dtype()))
                }
                Ok(view) => values.push(
                    view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect::<Vec<f32>>(),
                ),
            }
        }
        if !problems.is_empty() {
            return Err(bad(format!("not VGG11-BN features for this network: {}", problems.join("; "))));
        }
        for ((_, t), v) in targets.iter().zip(&values) {
            t.write(v)?;
        }
        Ok(())
    }
}

impl Module for Fcdd {
    /// x: [N, C, H, W] -> [N, 1, h, w]
    fn forward(&self, x: &Var) -> Result<Var> {
        self.conv_final.forward(&self.features.forward(x)?)
    }

    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Var)) {
        self.features.visit_parameters(&join(prefix, "features"), f);
        self.conv_final.visit_parameters(&join(prefix, "conv_final"), f);
    }

    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        self.features.visit_buffers(&join(prefix, "features"), f);
    }

    fn set_training(&self, training: bool) {
        self.features.set_training(training);
    }
}

/// Builds an FCDD network layer by layer, tracking channels, feature-map size and receptive field
/// (FCDD's `_create_conv2d` / `_create_maxpool2d`). Layers are named as given; they become
/// `features.<name>`. A ReLU / leaky ReLU and a 2x2 stride-2 max pool right after a batch norm run
/// inside the batch norm's pass (`BatchNorm::with_activation`, `with_max_pool`): they have no
/// parameters, so the names are the same.
pub struct FcddBuilder<'a> {
    init: &'a mut Init,
    features: Sequential,
    spans: Vec<usize>,
    /// The last batch norm, held back so that an activation with a fused form and a 2x2 max
    /// pool right after it run inside its pass: (name, layer, modules it stands for, pooled).
    pending: Option<(String, BatchNorm, usize, bool)>,
    in_channels: usize,
    input_size: [usize; 2],
    channels: usize,
    size: [usize; 2],
    rf: ReceptiveField,
}

impl<'a> FcddBuilder<'a> {
    pub fn new(init: &'a mut Init, in_channels: usize, input_size: [usize; 2]) -> FcddBuilder<'a> {
        FcddBuilder {
            init,
            features: Sequential::new(),
            spans: Vec::new(),
            pending: None,
            in_channels,
            input_size,
            channels: in_channels,
            size: input_size,
            rf: ReceptiveField::INPUT,
        }
    }

    /// The receptive field of the current feature map.
    pub fn receptive_field(&self) -> ReceptiveField {
        self.rf
    }

    fn shrink(&mut self, what: &str, name: &str, k: usize, stride: usize, padding: usize) -> Result<()> {
        let mut out = [0; 2];
        for (o, &i) in out.iter_mut().zip(&self.size) {
            *o = conv_out_size(i, k, stride, padding, 1).ok_or_else(|| {
                Error::Shape(format!(
                    "FCDD network for {:?} inputs: {what} {name} (kernel {k}, stride {stride}, padding {padding}) does not fit its {:?} input",
                    self.input_size, self.size
                ))
            })?;
        }
        self.size = out;
        self.rf = self.rf.then(k, stride, padding);
        Ok(())
    }

    /// A square convolution from the current channels to `out`.
    pub fn conv(mut self, name: &str, out: usize, k: usize, stride: usize, padding: usize, bias: bool) -> Result<Self> {
        self.shrink("convolution", name, k, stride, padding)?;
        let conv = Conv2d::new(self.init, self.channels, out, k, stride, padding, bias)?;
        self.push(name, conv);
        self.channels = out;
        Ok(self)
    }

    /// Appends a module after the held-back batch norm.
    fn push(&mut self, name: &str, layer: impl Module + 'static) {
        self.flush();
        self.features = std::mem::take(&mut self.features).push(name, layer);
        self.spans.push(1);
    }

    /// Appends the held-back batch norm, if any.
    fn flush(&mut self) {
        if let Some((name, bn, span, _)) = self.pending.take() {
            self.features = std::mem::take(&mut self.features).push(name, bn);
            self.spans.push(span);
        }
    }

    /// Batch norm over the current channels.
    pub fn batch_norm(mut self, name: &str, eps: f32, affine: bool) -> Result<Self> {
        let mut bn = BatchNorm::new(self.init, self.channels, affine)?;
        bn.eps = eps;
        self.flush();
        self.pending = Some((name.to_string(), bn, 1, false));
        Ok(self)
    }

    /// An activation; right after a batch norm, ReLU and leaky ReLU run in its pass (no
    /// parameters, so names are as with a module of its own).
    pub fn activation(mut self, name: &str, a: Activation) -> Self {
        match self.pending.take() {
            Some((n, bn, span, false)) if bn.activation.is_none() && a.epilogue().is_some() => {
                self.pending = Some((n, bn.with_activation(a), span + 1, false));
            }
            held => {
                self.pending = held;
                self.push(name, a);
            }
        }
        self
    }

    /// Square max pooling; a 2x2 window at stride 2 right after a batch norm (and its
    /// activation) runs in the batch norm's pass.
    pub fn max_pool(mut self, name: &str, k: usize, stride: usize) -> Result<Self> {
        self.shrink("max pool", name, k, stride, 0)?;
        let pool = Pool2d { kernel: [k, k], stride: [stride, stride], padding: [0, 0] };
        match self.pending.take() {
            Some((n, bn, span, false)) if pool == Pool2d::square(2) => {
                self.pending = Some((n, bn.with_max_pool(pool), span + 1, true));
            }
            held => {
                self.pending = held;
                self.push(name, MaxPool2d(pool));
            }
        }
        Ok(self)
    }

    /// Appends the 1x1 convolution to one channel (`conv_final`).
    pub fn finish(mut self, final_bias: bool) -> Result<Fcdd> {
        self.flush();
        let conv_final = Conv2d::new(self.init, self.channels, 1, 1, 1, 0, final_bias)?;
        Ok(Fcdd {
            spans: self.spans,
            features: self.features,
            conv_final,
            receptive_field: self.rf,
            in_channels: self.in_channels,
            input_size: self.input_size,
            output_size: self.size,
        })
    }
}

const LEAKY: Activation = Activation::LeakyRelu(0.01);

/// FCDD's `FCDD_CNN28_W` for Fashion-MNIST, bias-free, batch norm without affine parameters
/// (eps 1e-4), leaky ReLU 0.01: `conv1` 1->128 5x5 pad 2, `bn1`, `act1`, `pool1` 2x2;
/// `conv2` 128->128 5x5 pad 2, `pool2` 2x2 (no norm or activation, as in the reference);
/// `conv_final` 128->1 1x1. 28x28 -> 7x7; receptive field r 16, j 4, s 1.5.
/// `width` is 128 in FCDD; smaller values run the same network faster.
pub fn fcdd_fmnist(init: &mut Init, in_channels: usize, input_size: [usize; 2], width: usize) -> Result<Fcdd> {
    FcddBuilder::new(init, in_channels, input_size)
        .conv("conv1", width, 5, 1, 2, false)?
        .batch_norm("bn1", 1e-4, false)?
        .activation("act1", LEAKY)
        .max_pool("pool1", 2, 2)?
        .conv("conv2", width, 5, 1, 2, false)?
        .max_pool("pool2", 2, 2)?
        .finish(false)
}

/// FCDD's `FCDD_CNN32_LW3K` for CIFAR-10, bias-free, batch norm without affine parameters
/// (eps 1e-4), leaky ReLU 0.01: `conv1` C->128 3x3 pad 1, `bn1`, `act1`, `pool1`;
/// `conv2` 128->256 3x3, `bn2`, `act2`; `conv25` 256->256 3x3, `bn25`, `act25`, `pool2`;
/// `conv3` 256->128 3x3 (no norm or activation, as in the reference); `conv_final` 128->1.
/// 32x32 -> 8x8; receptive field r 22, j 4, s 1.5. `widths` are FCDD's [128, 256].
pub fn fcdd_cifar10(init: &mut Init, in_channels: usize, input_size: [usize; 2], widths: [usize; 2]) -> Result<Fcdd> {
    let [a, b] = widths;
    FcddBuilder::new(init, in_channels, input_size)
        .conv("conv1", a, 3, 1, 1, false)?
        .batch_norm("bn1", 1e-4, false)?
        .activation("act1", LEAKY)
        .max_pool("pool1", 2, 2)?
        .conv("conv2", b, 3, 1, 1, false)?
        .batch_norm("bn2", 1e-4, false)?
        .activation("act2", LEAKY)
        .conv("conv25", b, 3, 1, 1, false)?
        .batch_norm("bn25", 1e-4, false)?
        .activation("act25", LEAKY)
        .max_pool("pool2", 2, 2)?
        .conv("conv3", a, 3, 1, 1, false)?
        .finish(false)
}

/// How many leading `features` modules FCDD freezes on the pretrained VGG (through the third
/// max pool).
pub const VGG_FROZEN_LAYERS: usize = 15;

/// FCDD's `FCDD_CNN224_VGG_F`: torchvision VGG11-BN `features[0..21]` with torchvision's
/// module indices as names, then `conv_final` 512->1 1x1 with bias:
///
/// | index | module                         | output (224 input) |
/// |-------|--------------------------------|--------------------|
/// | 0-3   | conv 3->64 3x3 p1, bn, relu, pool 2 | 64x112x112     |
/// | 4-7   | conv 64->128, bn, relu, pool   | 128x56x56          |
/// | 8-10  | conv 128->256, bn, relu        | 256x56x56          |
/// | 11-14 | conv 256->256, bn, relu, pool  | 256x28x28          |
/// | 15-17 | conv 256->512, bn, relu        | 512x28x28          |
/// | 18-20 | conv 512->512, bn, relu        | 512x28x28          |
///
/// Convolutions have biases; batch norms are affine with eps 1e-5 (torchvision). Receptive field
/// at 224: r 62, j 8, s 3.5. Freeze the pretrained part with
/// `freeze_features(VGG_FROZEN_LAYERS)` after loading weights.
pub fn fcdd_vgg11_bn(init: &mut Init, input_size: [usize; 2]) -> Result<Fcdd> {
    let mut b = FcddBuilder::new(init, 3, input_size);
    let mut index = 0usize;
    // (channels, followed by a max pool)
    for (out, pool) in [(64, true), (128, true), (256, false), (256, true), (512, false), (512, false)] {
        b = b
            .conv(&index.to_string(), out, 3, 1, 1, true)?
            .batch_norm(&(index + 1).to_string(), 1e-5, true)?
            .activation(&(index + 2).to_string(), Activation::Relu);
        index += 3;
        if pool {
            b = b.max_pool(&index.to_string(), 2, 2)?;
            index += 1;
        }
    }
    b.finish(true)
}
