//! Networks, one folder per family as the thesis's experiments use them, and their losses.

pub mod lenet;
pub mod deep_svdd;
pub mod autoencoder;
pub mod fcdd;
pub mod losses;
pub mod resnet;
pub mod unet;
