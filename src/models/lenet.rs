//! The LeNet-style encoders of Deep SVDD (Ruff et al. 2018), used by the thesis for
//! Fashion-MNIST and CIFAR-10 (§4.2): 5x5 convolutions, batch norm without affine parameters
//! (eps 1e-4), leaky ReLU (0.01) and 2x2 max pooling, then a linear layer.
//!
//! Variants ([`LenetVariant`]):
//! - `Svdd`: bias-free layers. Bias-free layers matter for Deep SVDD: a bias lets the network
//!   map everything to the centre (thesis §4.1.1, hypersphere collapse).
//! - `Features`: the same layers with biases, vector output (HSC, §4.1.2, where collapse is
//!   prevented by the labelled anomalies instead).
//! - `Scalar`: with biases and a final linear layer to one logit (logistic loss, eq. 2.15; the
//!   only loss with a scalar output space, §4.1).

use crate::kernels::pool2d::Pool2d;
use crate::kernels::Result;
use crate::nn::{Activation, BatchNorm, Conv2d, Flatten, Init, Linear, Sequential};

/// Which head and whether the layers carry biases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LenetVariant {
    /// No biases, feature vector output (Deep SVDD).
    Svdd,
    /// Biases, feature vector output (HSC).
    Features,
    /// Biases, feature layer then a linear layer to `[N, 1]` (logistic loss).
    Scalar,
}

impl LenetVariant {
    fn bias(self) -> bool {
        self != LenetVariant::Svdd
    }

    /// Suffix of the architecture name stored in checkpoints.
    pub fn suffix(self) -> &'static str {
        match self {
            LenetVariant::Svdd => "",
            LenetVariant::Features => "-bias",
            LenetVariant::Scalar => "-scalar",
        }
    }
}

/// Appends block `i` (`conv{i}`, `bn{i}`): 5x5 conv (with bias when `bias`), batch norm without
/// affine parameters (eps 1e-4) followed by leaky ReLU 0.01 and a 2x2 max pool, all three one
/// fused layer (`bn{i}`; the pool has no parameters, so names are as with a separate `pool{i}`).
/// Halves height and width.
pub fn conv_block(init: &mut Init, seq: Sequential, i: usize, cin: usize, cout: usize, bias: bool) -> Result<Sequential> {
    let mut bn = BatchNorm::new(init, cout, false)?;
    bn.eps = 1e-4;
    Ok(seq
        .push(format!("conv{i}"), Conv2d::new(init, cin, cout, 5, 1, 2, bias)?)
        .push(format!("bn{i}"), bn.with_activation(Activation::LeakyRelu(0.01)).with_max_pool(Pool2d::square(2))))
}

fn head(init: &mut Init, seq: Sequential, features: usize, rep: usize, variant: LenetVariant) -> Result<Sequential> {
    let seq = seq.push("flatten", Flatten).push("fc1", Linear::new(init, features, rep, variant.bias())?);
    if variant == LenetVariant::Scalar {
        Ok(seq.push("head", Linear::new(init, rep, 1, true)?))
    } else {
        Ok(seq)
    }
}

/// Fashion-MNIST LeNet of a variant: [N, 1, 28, 28] -> [N, 32] (or [N, 1] for `Scalar`).
pub fn fmnist_lenet_variant(init: &mut Init, variant: LenetVariant) -> Result<Sequential> {
    let bias = variant.bias();
    let seq = conv_block(init, Sequential::new(), 1, 1, 8, bias)?;
    let seq = conv_block(init, seq, 2, 8, 4, bias)?;
    head(init, seq, 4 * 7 * 7, 32, variant)
}

/// CIFAR-10 LeNet of a variant: [N, 3, 32, 32] -> [N, 128] (or [N, 1] for `Scalar`).
pub fn cifar10_lenet_variant(init: &mut Init, variant: LenetVariant) -> Result<Sequential> {
    let bias = variant.bias();
    let seq = conv_block(init, Sequential::new(), 1, 3, 32, bias)?;
    let seq = conv_block(init, seq, 2, 32, 64, bias)?;
    let seq = conv_block(init, seq, 3, 64, 128, bias)?;
    head(init, seq, 128 * 4 * 4, 128, variant)
}

/// Fashion-MNIST LeNet for Deep SVDD (no biases): [N, 1, 28, 28] -> [N, 32].
pub fn fmnist_lenet(init: &mut Init) -> Result<Sequential> {
    fmnist_lenet_variant(init, LenetVariant::Svdd)
}

/// CIFAR-10 LeNet for Deep SVDD (no biases): [N, 3, 32, 32] -> [N, 128].
pub fn cifar10_lenet(init: &mut Init) -> Result<Sequential> {
    cifar10_lenet_variant(init, LenetVariant::Svdd)
}

/// Fashion-MNIST LeNet with biases (HSC): [N, 1, 28, 28] -> [N, 32].
pub fn fmnist_lenet_bias(init: &mut Init) -> Result<Sequential> {
    fmnist_lenet_variant(init, LenetVariant::Features)
}

/// CIFAR-10 LeNet with biases (HSC): [N, 3, 32, 32] -> [N, 128].
pub fn cifar10_lenet_bias(init: &mut Init) -> Result<Sequential> {
    cifar10_lenet_variant(init, LenetVariant::Features)
}

/// Fashion-MNIST LeNet with biases and a scalar logit head (logistic): [N, 1, 28, 28] -> [N, 1].
pub fn fmnist_lenet_scalar(init: &mut Init) -> Result<Sequential> {
    fmnist_lenet_variant(init, LenetVariant::Scalar)
}

/// CIFAR-10 LeNet with biases and a scalar logit head (logistic): [N, 3, 32, 32] -> [N, 1].
pub fn cifar10_lenet_scalar(init: &mut Init) -> Result<Sequential> {
    cifar10_lenet_variant(init, LenetVariant::Scalar)
}
