//! Spatial graph ops: pooling, bilinear and Gaussian upsampling, batch norm, minibatch stddev.

use oddity_kernels::batchnorm::pool::{self as bn_pool, BatchNormPoolSaved};
use oddity_kernels::batchnorm::{self as bn, BatchNormArgs, BatchNormGrads, BatchNormSaved};
use oddity_kernels::conv2d::Epilogue;
use oddity_kernels::gaussian_upsample::{self as gu, GaussianUpsample};
use oddity_kernels::minibatch_stddev as mbstd;
use oddity_kernels::pool2d::{self as pool, Pool2d};
use oddity_kernels::upsample::{self as up, Resize};
use oddity_kernels::{Result, Tensor};

use super::var::{BackwardOp, Var};

struct MaxPoolBackward {
    argmax: Tensor,
    input_shape: Vec<usize>,
    geometry: Pool2d,
}

impl BackwardOp for MaxPoolBackward {
    fn backward(&self, gy: &Tensor, _needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(pool::max_pool2d_backward(gy, &self.argmax, &self.input_shape, &self.geometry)?)])
    }
}

struct AvgPoolBackward {
    input_shape: Vec<usize>,
    geometry: Pool2d,
}

impl BackwardOp for AvgPoolBackward {
    fn backward(&self, gy: &Tensor, _needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(pool::avg_pool2d_backward(gy, &self.input_shape, &self.geometry)?)])
    }
}

/// x: [N, C, H, W]
pub fn max_pool2d(x: &Var, geometry: Pool2d) -> Result<Var> {
    let (y, argmax) = pool::max_pool2d(x.value(), &geometry)?;
    let backward = MaxPoolBackward { argmax, input_shape: x.shape().to_vec(), geometry };
    Ok(Var::from_op(y, "max_pool2d", &[x], Some(Box::new(backward))))
}

/// x: [N, C, H, W]; padding counts towards the divisor (PyTorch's default).
pub fn avg_pool2d(x: &Var, geometry: Pool2d) -> Result<Var> {
    let y = pool::avg_pool2d(x.value(), &geometry)?;
    let backward = AvgPoolBackward { input_shape: x.shape().to_vec(), geometry };
    Ok(Var::from_op(y, "avg_pool2d", &[x], Some(Box::new(backward))))
}

struct BilinearBackward {
    input_shape: Vec<usize>,
    resize: Resize,
}

impl BackwardOp for BilinearBackward {
    fn backward(&self, gy: &Tensor, _needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(up::upsample_bilinear_backward(gy, &self.input_shape, self.resize)?)])
    }
}

/// Bilinear resize with align_corners = false. x: [N, C, H, W]
pub fn upsample_bilinear(x: &Var, resize: Resize) -> Result<Var> {
    let y = up::upsample_bilinear(x.value(), resize)?;
    let backward = BilinearBackward { input_shape: x.shape().to_vec(), resize };
    Ok(Var::from_op(y, "upsample_bilinear", &[x], Some(Box::new(backward))))
}

struct GaussianBackward {
    input_shape: Vec<usize>,
    geometry: GaussianUpsample,
}

impl BackwardOp for GaussianBackward {
    fn backward(&self, gy: &Tensor, _needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(gu::gaussian_upsample_backward(gy, &self.input_shape, &self.geometry)?)])
    }
}

/// FCDD's Gaussian transposed-convolution upsampling of a one-channel map. x: [N, 1, h, w]
pub fn gaussian_upsample(x: &Var, geometry: GaussianUpsample) -> Result<Var> {
    let y = gu::gaussian_upsample(x.value(), &geometry)?;
    let backward = GaussianBackward { input_shape: x.shape().to_vec(), geometry };
    Ok(Var::from_op(y, "gaussian_upsample", &[x], Some(Box::new(backward))))
}

struct MinibatchStddevBackward {
    x: Tensor,
    eps: f32,
}

impl BackwardOp for MinibatchStddevBackward {
    fn backward(&self, gy: &Tensor, _needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(mbstd::minibatch_stddev_backward(&self.x, gy, self.eps)?)])
    }
}

/// Appends the batch-std feature as one more channel. x: [N, C, H, W] -> [N, C + 1, H, W]
pub fn minibatch_stddev(x: &Var, eps: f32) -> Result<Var> {
    let y = mbstd::minibatch_stddev(x.value(), eps)?;
    let backward = MinibatchStddevBackward { x: x.value().clone(), eps };
    Ok(Var::from_op(y, "minibatch_stddev", &[x], Some(Box::new(backward))))
}

struct BatchNormBackward {
    x: Tensor,
    gamma: Option<Tensor>,
    saved: BatchNormSaved,
}

impl BackwardOp for BatchNormBackward {
    fn backward(&self, gy: &Tensor, _needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        Ok(bn_grads(bn::batch_norm_backward(&self.x, gy, self.gamma.as_ref(), &self.saved)?))
    }
}

/// [gx, ggamma, gbeta] in the parents' order (x, gamma, beta), the last two when affine.
fn bn_grads(g: BatchNormGrads) -> Vec<Option<Tensor>> {
    let mut out = vec![Some(g.gx)];
    if g.ggamma.is_some() {
        out.push(g.ggamma);
        out.push(g.gbeta);
    }
    out
}

struct BatchNormPoolBackward {
    x: Tensor,
    saved: BatchNormPoolSaved,
}

impl BackwardOp for BatchNormPoolBackward {
    fn backward(&self, gy: &Tensor, _needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        Ok(bn_grads(bn_pool::batch_norm_max_pool_backward(&self.x, gy, &self.saved)?))
    }
}

/// Batch norm over [N, C] or [N, C, H, W]. In training the batch statistics normalise and the
/// running statistics (when given) are updated in place; in eval the running statistics normalise.
pub fn batch_norm(
    x: &Var,
    affine: Option<(&Var, &Var)>,
    running: Option<(&Tensor, &Tensor)>,
    training: bool,
    momentum: f32,
    eps: f32,
) -> Result<Var> {
    batch_norm_fused(x, affine, running, training, momentum, eps, Epilogue::Identity)
}

/// The batch-norm ops' kernel arguments and graph parents (x, then gamma and beta when affine).
fn bn_call<'a>(
    x: &'a Var,
    affine: Option<(&'a Var, &'a Var)>,
    running: Option<(&'a Tensor, &'a Tensor)>,
    training: bool,
    momentum: f32,
    eps: f32,
    epilogue: Epilogue,
) -> (BatchNormArgs<'a>, Vec<&'a Var>) {
    let args = BatchNormArgs { affine: affine.map(|(g, b)| (g.value(), b.value())), running, training, momentum, eps, epilogue };
    let parents = match affine {
        Some((g, b)) => vec![x, g, b],
        None => vec![x],
    };
    (args, parents)
}

/// [`batch_norm`] followed by the epilogue's activation inside the normalising pass; its
/// backward folds the activation's derivative into the batch-norm reduction (no extra pass).
pub fn batch_norm_fused(
    x: &Var,
    affine: Option<(&Var, &Var)>,
    running: Option<(&Tensor, &Tensor)>,
    training: bool,
    momentum: f32,
    eps: f32,
    epilogue: Epilogue,
) -> Result<Var> {
    let (args, parents) = bn_call(x, affine, running, training, momentum, eps, epilogue);
    let (y, saved) = bn::batch_norm(x.value(), &args)?;
    let backward = BatchNormBackward { x: x.value().clone(), gamma: affine.map(|(g, _)| g.value().clone()), saved };
    let name = if epilogue == Epilogue::Identity { "batch_norm" } else { "batch_norm+leaky_relu" };
    Ok(Var::from_op(y, name, &parents, Some(Box::new(backward))))
}

/// [`batch_norm_fused`] followed by a 2x2 max pool at stride 2, as one op whose normalised map is
/// never written at full size (see `oddity_kernels::batchnorm::pool`). x: [N, C, H, W] with H
/// and W even (`bn_pool::fits`) -> [N, C, H/2, W/2].
pub fn batch_norm_max_pool(
    x: &Var,
    affine: Option<(&Var, &Var)>,
    running: Option<(&Tensor, &Tensor)>,
    training: bool,
    momentum: f32,
    eps: f32,
    epilogue: Epilogue,
) -> Result<Var> {
    let (args, parents) = bn_call(x, affine, running, training, momentum, eps, epilogue);
    let (y, saved) = bn_pool::batch_norm_max_pool(x.value(), &args)?;
    let backward = BatchNormPoolBackward { x: x.value().clone(), saved };
    Ok(Var::from_op(y, "batch_norm+max_pool2d", &parents, Some(Box::new(backward))))
}
