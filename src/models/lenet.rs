//! The LeNet-style encoders of Deep SVDD (Ruff et al. 2018), used by the thesis for
//! Fashion-MNIST and CIFAR-10 (§4.2): 5x5 convolutions without bias, batch norm without affine
//! parameters (eps 1e-4), leaky ReLU (0.01) and 2x2 max pooling, then a bias-free linear layer.
//! Bias-free layers matter for Deep SVDD: a bias lets the network map everything to the centre.

use crate::kernels::pool2d::Pool2d;
use crate::kernels::Result;
use crate::nn::{BatchNorm, Conv2d, Flatten, Init, LeakyRelu, Linear, MaxPool2d, Sequential};

/// Appends block `i` (`conv{i}`, `bn{i}`, `act{i}`, `pool{i}`): 5x5 conv without bias, batch norm
/// without affine parameters (eps 1e-4), leaky ReLU 0.01, 2x2 max pool. Halves height and width.
pub fn conv_block(init: &mut Init, seq: Sequential, i: usize, cin: usize, cout: usize) -> Result<Sequential> {
    let mut bn = BatchNorm::new(init, cout, false)?;
    bn.eps = 1e-4;
    Ok(seq
        .push(format!("conv{i}"), Conv2d::new(init, cin, cout, 5, 1, 2, false)?)
        .push(format!("bn{i}"), bn)
        .push(format!("act{i}"), LeakyRelu(0.01))
        .push(format!("pool{i}"), MaxPool2d(Pool2d::square(2))))
}

/// Fashion-MNIST LeNet: [N, 1, 28, 28] -> [N, 32].
pub fn fmnist_lenet(init: &mut Init) -> Result<Sequential> {
    let seq = conv_block(init, Sequential::new(), 1, 1, 8)?;
    let seq = conv_block(init, seq, 2, 8, 4)?;
    Ok(seq.push("flatten", Flatten).push("fc1", Linear::new(init, 4 * 7 * 7, 32, false)?))
}

/// CIFAR-10 LeNet: [N, 3, 32, 32] -> [N, 128].
pub fn cifar10_lenet(init: &mut Init) -> Result<Sequential> {
    let seq = conv_block(init, Sequential::new(), 1, 3, 32)?;
    let seq = conv_block(init, seq, 2, 32, 64)?;
    let seq = conv_block(init, seq, 3, 64, 128)?;
    Ok(seq.push("flatten", Flatten).push("fc1", Linear::new(init, 128 * 4 * 4, 128, false)?))
}
