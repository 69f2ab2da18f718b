//! ResNet-18 (He et al. 2016) for 224x224 inputs, the detection backbone of the thesis's
//! MVTec AD / MPDD experiments (§4.2; a WideResNet with a ResNet-18 backbone: widen with
//! [`ResNetConfig::widths`]).
//!
//! Layers and parameter names (torchvision's, except that a block's layers sit under `body`
//! and its projection under `shortcut`, the names of [`Residual`]):
//! `conv1` 7x7 stride 2 pad 3 (C->64, no bias), `bn1`, `relu`, `maxpool` 3x3 stride 2 pad 1;
//! `layer1`..`layer4`, each `blocks[i]` basic blocks `layer{i}.{b}` of
//! `body.conv1` 3x3 (stride 2 in the first block of layers 2-4), `body.bn1`, `body.relu`,
//! `body.conv2` 3x3, `body.bn2`, plus `shortcut.0` 1x1 stride 2 conv and `shortcut.1` batch norm
//! where the shape changes, and a ReLU after the sum; `avgpool` over the whole final map
//! (7x7 at 224), `flatten`, `fc` linear to `outputs`. Batch norms are affine, eps 1e-5.

use crate::kernels::conv2d::conv_out_size;
use crate::kernels::pool2d::Pool2d;
use crate::kernels::{Error, Result};
use crate::nn::{AvgPool2d, BatchNorm, Conv2d, Flatten, Init, Linear, MaxPool2d, Relu, Residual, Sequential};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResNetConfig {
    pub in_channels: usize,
    /// Channels of the stem and of `layer1`..`layer4`: 64, 128, 256, 512 for ResNet-18.
    pub widths: [usize; 4],
    /// Basic blocks per stage: 2, 2, 2, 2 for ResNet-18.
    pub blocks: [usize; 4],
    /// Size of the linear head's output.
    pub outputs: usize,
    /// Input `[height, width]`; 224x224 in the thesis.
    pub input_size: [usize; 2],
}

impl ResNetConfig {
    /// ResNet-18 on 224x224 RGB with `outputs` outputs.
    pub fn resnet18(outputs: usize) -> ResNetConfig {
        ResNetConfig { in_channels: 3, widths: [64, 128, 256, 512], blocks: [2, 2, 2, 2], outputs, input_size: [224, 224] }
    }
}

fn bn(init: &mut Init, c: usize) -> Result<BatchNorm> {
    BatchNorm::new(init, c, true)
}

fn basic_block(init: &mut Init, cin: usize, cout: usize, stride: usize) -> Result<Residual> {
    let body = Sequential::new()
        .push("conv1", Conv2d::new(init, cin, cout, 3, stride, 1, false)?)
        .push("bn1", bn(init, cout)?)
        .push("relu", Relu)
        .push("conv2", Conv2d::new(init, cout, cout, 3, 1, 1, false)?)
        .push("bn2", bn(init, cout)?);
    let shortcut = if stride != 1 || cin != cout {
        Some(Sequential::new().push("0", Conv2d::new(init, cin, cout, 1, stride, 0, false)?).push("1", bn(init, cout)?))
    } else {
        None
    };
    Ok(Residual { body, shortcut, activation: Some(Box::new(Relu)) })
}

/// [N, C, H, W] -> [N, outputs]
pub fn resnet(init: &mut Init, cfg: &ResNetConfig) -> Result<Sequential> {
    if cfg.in_channels == 0 || cfg.widths.contains(&0) || cfg.blocks.contains(&0) || cfg.outputs == 0 {
        return Err(Error::Shape(format!("ResNet: channel, block and output counts must be positive, got {cfg:?}")));
    }
    // Final map size: stem conv (7, 2, 3), max pool (3, 2, 1), then stride 2 in layers 2-4.
    let mut size = cfg.input_size;
    for (k, s, p) in [(7, 2, 3), (3, 2, 1), (3, 2, 1), (3, 2, 1), (3, 2, 1)] {
        for v in &mut size {
            *v = conv_out_size(*v, k, s, p, 1).ok_or_else(|| {
                Error::Shape(format!("ResNet: input size {:?} must be positive", cfg.input_size))
            })?;
        }
    }
    let mut net = Sequential::new()
        .push("conv1", Conv2d::new(init, cfg.in_channels, cfg.widths[0], 7, 2, 3, false)?)
        .push("bn1", bn(init, cfg.widths[0])?)
        .push("relu", Relu)
        .push("maxpool", MaxPool2d(Pool2d { kernel: [3, 3], stride: [2, 2], padding: [1, 1] }));
    let mut cin = cfg.widths[0];
    for stage in 0..4 {
        let cout = cfg.widths[stage];
        let mut layer = Sequential::new();
        for b in 0..cfg.blocks[stage] {
            let stride = if stage > 0 && b == 0 { 2 } else { 1 };
            layer = layer.push(b.to_string(), basic_block(init, cin, cout, stride)?);
            cin = cout;
        }
        net = net.push(format!("layer{}", stage + 1), layer);
    }
    Ok(net
        .push("avgpool", AvgPool2d(Pool2d { kernel: size, stride: size, padding: [0, 0] }))
        .push("flatten", Flatten)
        .push("fc", Linear::new(init, cin, cfg.outputs, true)?))
}

/// ResNet-18 for 224x224 RGB inputs: [N, 3, 224, 224] -> [N, outputs].
pub fn resnet18(init: &mut Init, outputs: usize) -> Result<Sequential> {
    resnet(init, &ResNetConfig::resnet18(outputs))
}
