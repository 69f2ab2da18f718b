//! Pooling and upsampling modules (no parameters).

use crate::autograd::{avg_pool2d, max_pool2d, upsample_bilinear, Var};
use crate::kernels::pool2d::Pool2d;
use crate::kernels::upsample::Resize;
use crate::kernels::Result;

use super::Module;

pub struct MaxPool2d(pub Pool2d);

impl Module for MaxPool2d {
    fn forward(&self, x: &Var) -> Result<Var> {
        max_pool2d(x, self.0)
    }
    fn visit_parameters(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Var)) {}
}

pub struct AvgPool2d(pub Pool2d);

impl Module for AvgPool2d {
    fn forward(&self, x: &Var) -> Result<Var> {
        avg_pool2d(x, self.0)
    }
    fn visit_parameters(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Var)) {}
}

/// Bilinear upsampling (align_corners = false).
pub struct Upsample(pub Resize);

impl Module for Upsample {
    fn forward(&self, x: &Var) -> Result<Var> {
        upsample_bilinear(x, self.0)
    }
    fn visit_parameters(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Var)) {}
}
