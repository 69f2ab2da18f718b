//! Networks, one folder per family as the thesis's experiments use them.

pub mod lenet;
pub mod deep_svdd;
pub mod autoencoder;
pub mod unet;
pub mod fcdd;
pub mod resnet;
