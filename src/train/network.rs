//! The networks `oddity train` builds, named so a checkpoint rebuilds the same one.
//!
//! An [`Architecture`] is a network family with its input channels and size; its name is stored
//! in checkpoints. Names:
//!
//! | name | network | input | loss |
//! |---|---|---|---|
//! | `fmnist-lenet`, `-bias`, `-scalar` | [`crate::models::lenet`] | 1x28x28 | svdd, hsc, logistic |
//! | `cifar10-lenet`, `-bias`, `-scalar` | [`crate::models::lenet`] | 3x32x32 | svdd, hsc, logistic |
//! | `fmnist-ae-1x28` | [`fmnist_autoencoder`] | 1x28x28 | ssim |
//! | `cifar10-ae-Cx32` | [`cifar10_autoencoder`] (C = 1: grayscale, as the thesis trains SSIM) | Cx32x32 | ssim |
//! | `bergmann-ae-CxS` | [`bergmann_autoencoder`], S a multiple of 32 (thesis: 1x256) | CxSxS | ssim |
//! | `unet-CxS` | [`UNet`] from the Bergmann autoencoder (thesis: 256) | CxSxS | unet |
//! | `fcdd-fmnist-Cx28` | [`fcdd_fmnist`] (`FCDD_CNN28_W`, width 128) | CxSxS | fcdd |
//! | `fcdd-cifar10-CxS` | [`fcdd_cifar10`] (`FCDD_CNN32_LW3K`) | CxSxS | fcdd |
//! | `fcdd-vgg11bn-3xS` | [`fcdd_vgg11_bn`] (thesis: 224, ImageNet weights) | 3xSxS | fcdd |

use crate::autograd::Var;
use crate::error::{Error, Result};
use crate::kernels::{Context, Tensor};
use crate::models::autoencoder::{bergmann_autoencoder, cifar10_autoencoder, fmnist_autoencoder, AutoEncoder, BergmannConfig};
use crate::models::fcdd::{fcdd_cifar10, fcdd_fmnist, fcdd_vgg11_bn, Fcdd};
use crate::models::lenet::{cifar10_lenet_variant, fmnist_lenet_variant, LenetVariant};
use crate::models::unet::UNet;
use crate::nn::{Init, Module, Sequential};

use super::{DatasetKind, LossKind};

/// A network family; with channels and size it makes an [`Architecture`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetFamily {
    /// The LeNet of a data set (fixed input) in one of its variants.
    Lenet(DatasetKind, LenetVariant),
    FmnistAe,
    Cifar10Ae,
    BergmannAe,
    UNet,
    FcddFmnist,
    FcddCifar10,
    FcddVgg11Bn,
}

const LENET_VARIANTS: [LenetVariant; 3] = [LenetVariant::Svdd, LenetVariant::Features, LenetVariant::Scalar];

/// Prefixes of the families with a `-CxS` suffix.
const SIZED: [(NetFamily, &str); 7] = [
    (NetFamily::FmnistAe, "fmnist-ae"),
    (NetFamily::Cifar10Ae, "cifar10-ae"),
    (NetFamily::BergmannAe, "bergmann-ae"),
    (NetFamily::UNet, "unet"),
    (NetFamily::FcddFmnist, "fcdd-fmnist"),
    (NetFamily::FcddCifar10, "fcdd-cifar10"),
    (NetFamily::FcddVgg11Bn, "fcdd-vgg11bn"),
];

/// A network family and its input `[channels, size, size]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Architecture {
    pub family: NetFamily,
    pub channels: usize,
    /// Height = width of the input.
    pub size: usize,
}

impl Architecture {
    /// The LeNet of `data` for an image-level loss.
    pub fn lenet(data: DatasetKind, variant: LenetVariant) -> Architecture {
        let (channels, size) = match data {
            DatasetKind::Fmnist => (1, 28),
            DatasetKind::Cifar10 => (3, 32),
        };
        Architecture { family: NetFamily::Lenet(data, variant), channels, size }
    }

    /// A sized family; errors name the family and the size it cannot take.
    pub fn sized(family: NetFamily, channels: usize, size: usize) -> Result<Architecture> {
        let a = Architecture { family, channels, size };
        let bad = |why: &str| Err(Error::InvalidArgument(format!("network {}: {why}", a.name())));
        if channels == 0 || size == 0 {
            return bad("channels and size must be positive");
        }
        match family {
            NetFamily::Lenet(..) => return bad("LeNets have a fixed input; use Architecture::lenet"),
            NetFamily::FmnistAe if (channels, size) != (1, 28) => return bad("the Fashion-MNIST autoencoder takes 1x28x28"),
            NetFamily::Cifar10Ae if size != 32 => return bad("the CIFAR-10 autoencoder takes 32x32"),
            NetFamily::BergmannAe | NetFamily::UNet if size % 32 != 0 => {
                return bad("the size must be a multiple of 32 (five stride-2 convolutions)")
            }
            NetFamily::FcddVgg11Bn if channels != 3 => return bad("VGG11-BN takes 3 channels"),
            NetFamily::FcddVgg11Bn | NetFamily::FcddCifar10 if size < 8 => return bad("the size must be at least 8"),
            NetFamily::FcddFmnist if size < 4 => return bad("the size must be at least 4"),
            _ => {}
        }
        Ok(a)
    }

    /// The name stored in checkpoints (see the module table).
    pub fn name(&self) -> String {
        match self.family {
            NetFamily::Lenet(data, variant) => format!("{}-lenet{}", data.name(), variant.suffix()),
            f => {
                let prefix = SIZED.iter().find(|(g, _)| *g == f).map(|(_, p)| *p).unwrap_or("?");
                format!("{prefix}-{}x{}", self.channels, self.size)
            }
        }
    }

    /// Parses a name of [`Architecture::name`].
    pub fn parse(name: &str) -> Result<Architecture> {
        for data in [DatasetKind::Fmnist, DatasetKind::Cifar10] {
            for v in LENET_VARIANTS {
                let a = Architecture::lenet(data, v);
                if a.name() == name {
                    return Ok(a);
                }
            }
        }
        let unknown = || {
            Error::InvalidArgument(format!(
                "unknown architecture '{name}' (known: fmnist-lenet[-bias|-scalar], cifar10-lenet[-bias|-scalar], \
                 or one of {} followed by -<channels>x<size>, e.g. unet-1x256)",
                SIZED.iter().map(|(_, p)| *p).collect::<Vec<_>>().join(", ")
            ))
        };
        let (prefix, dims) = name.rsplit_once('-').ok_or_else(unknown)?;
        let (c, s) = dims.split_once('x').ok_or_else(unknown)?;
        let (c, s): (usize, usize) = (c.parse().map_err(|_| unknown())?, s.parse().map_err(|_| unknown())?);
        let family = SIZED.iter().find(|(_, p)| *p == prefix).map(|(f, _)| *f).ok_or_else(unknown)?;
        Architecture::sized(family, c, s)
    }

    /// The input a network takes: [channels, height, width].
    pub fn input_shape(&self) -> [usize; 3] {
        [self.channels, self.size, self.size]
    }

    /// Whether `loss` trains this network.
    pub fn fits(&self, loss: LossKind) -> bool {
        match (self.family, loss) {
            (NetFamily::Lenet(_, v), l) => Some(v) == l.lenet_variant(),
            (NetFamily::FmnistAe | NetFamily::Cifar10Ae | NetFamily::BergmannAe, LossKind::Ssim) => true,
            (NetFamily::UNet, LossKind::Unet) => true,
            (NetFamily::FcddFmnist | NetFamily::FcddCifar10 | NetFamily::FcddVgg11Bn, LossKind::Fcdd) => true,
            _ => false,
        }
    }

    /// Builds the network, initialised from `seed`.
    pub fn build(&self, ctx: &Context, seed: u64) -> Result<Network> {
        let mut init = Init::new(ctx, seed);
        let hw = [self.size, self.size];
        let bergmann = BergmannConfig { image_size: self.size, in_channels: self.channels, ..BergmannConfig::default() };
        Ok(match self.family {
            NetFamily::Lenet(DatasetKind::Fmnist, v) => Network::Sequential(fmnist_lenet_variant(&mut init, v)?),
            NetFamily::Lenet(DatasetKind::Cifar10, v) => Network::Sequential(cifar10_lenet_variant(&mut init, v)?),
            NetFamily::FmnistAe => Network::AutoEncoder(fmnist_autoencoder(&mut init)?),
            NetFamily::Cifar10Ae => Network::AutoEncoder(cifar10_autoencoder(&mut init, self.channels)?),
            NetFamily::BergmannAe => Network::AutoEncoder(bergmann_autoencoder(&mut init, &bergmann)?),
            NetFamily::UNet => Network::UNet(UNet::new(&mut init, &bergmann)?),
            NetFamily::FcddFmnist => Network::Fcdd(fcdd_fmnist(&mut init, self.channels, hw, 128)?),
            NetFamily::FcddCifar10 => Network::Fcdd(fcdd_cifar10(&mut init, self.channels, hw, [128, 256])?),
            NetFamily::FcddVgg11Bn => Network::Fcdd(fcdd_vgg11_bn(&mut init, hw)?),
        })
    }
}

/// Builds the network an architecture name stands for (see [`Architecture::name`]).
pub fn build_network(ctx: &Context, architecture: &str, seed: u64) -> Result<Network> {
    Architecture::parse(architecture)?.build(ctx, seed)
}

/// Any network of the thesis, as one [`Module`].
pub enum Network {
    /// The LeNets.
    Sequential(Sequential),
    /// The SSIM autoencoders.
    AutoEncoder(AutoEncoder),
    UNet(UNet),
    Fcdd(Fcdd),
}

impl Network {
    fn module(&self) -> &dyn Module {
        match self {
            Network::Sequential(m) => m,
            Network::AutoEncoder(m) => m,
            Network::UNet(m) => m,
            Network::Fcdd(m) => m,
        }
    }
}

impl Module for Network {
    fn forward(&self, x: &Var) -> crate::kernels::Result<Var> {
        self.module().forward(x)
    }

    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Var)) {
        self.module().visit_parameters(prefix, f)
    }

    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        self.module().visit_buffers(prefix, f)
    }

    fn set_training(&self, training: bool) {
        self.module().set_training(training)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_sizes_are_named() {
        for name in ["fmnist-lenet", "cifar10-lenet-scalar", "fmnist-ae-1x28", "cifar10-ae-1x32", "bergmann-ae-1x256", "unet-3x64", "fcdd-vgg11bn-3x224", "fcdd-fmnist-1x28", "fcdd-cifar10-3x32"] {
            assert_eq!(Architecture::parse(name).unwrap().name(), name);
        }
        let e = Architecture::parse("unet-1x100").unwrap_err().to_string();
        assert!(e.contains("unet-1x100") && e.contains("multiple of 32"), "{e}");
        let e = Architecture::parse("resnet-3x224").unwrap_err().to_string();
        assert!(e.contains("resnet-3x224") && e.contains("unet"), "{e}");
        assert_eq!(Architecture::parse("fcdd-vgg11bn-3x64").unwrap().input_shape(), [3, 64, 64]);
    }
}
