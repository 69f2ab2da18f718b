//! Per-pixel Platt scaling and Beta calibration for localization (thesis §4.2): one parameter
//! set per output pixel of a logit map, trained on the GPU with Adam on the average per-pixel
//! logistic loss (thesis Proposition 1: the average of strictly proper pixel losses is strictly
//! proper). The map is the kernel `oddity_kernels::pixel_calibration`, wrapped as the graph op
//! [`crate::autograd::pixel_calibration`]. Beta's a, b >= 0 are kept by projecting after every
//! step.

use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use crate::kernels::pixel_calibration::PixelMethod;

use super::{write_atomically, Method};
use crate::autograd::{pixel_calibration, Var};
use crate::error::{Error, Result};
use crate::kernels::pixel_calibration::project_nonnegative;
use crate::kernels::{Context, Tensor};
use crate::optim::{Adam, AdamConfig, Optimizer};

fn pixel_method(m: Method) -> PixelMethod {
    match m {
        Method::Platt => PixelMethod::Platt,
        Method::Beta => PixelMethod::Beta,
    }
}

/// Fitted per-pixel parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PixelCalibrator {
    pub method: Method,
    pub height: usize,
    pub width: usize,
    /// [P, height, width] flattened: the planes a, b (Platt) or a, b, c (Beta).
    pub params: Vec<f32>,
}

impl PixelCalibrator {
    /// The identity map (Platt a = 1, b = 0; Beta a = b = 1, c = 0).
    pub fn identity(method: Method, height: usize, width: usize) -> PixelCalibrator {
        PixelCalibrator { method, height, width, params: pixel_method(method).identity(height * width) }
    }

    pub fn kernel_method(&self) -> PixelMethod {
        pixel_method(self.method)
    }

    /// The parameters as a GPU tensor [P, height, width].
    pub fn params_tensor(&self, ctx: &Context) -> Result<Tensor> {
        Ok(Tensor::from_slice(ctx, &[self.kernel_method().num_params(), self.height, self.width], &self.params)?)
    }

    /// Calibrated logit maps, differentiable with respect to `z` (for input perturbation).
    /// z: [N, height, width] or [N, 1, height, width] -> z's shape.
    pub fn apply(&self, z: &Var) -> Result<Var> {
        let w = Var::constant(self.params_tensor(z.value().context())?);
        Ok(pixel_calibration(z, &w, self.kernel_method())?)
    }

    /// Writes the parameters as JSON, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string(self).map_err(|e| Error::InvalidArgument(format!("{}: {e}", path.display())))?;
        write_atomically(path, json.as_bytes())
    }

    /// Reads a file written by [`PixelCalibrator::save`]; a wrong parameter count is an error.
    pub fn load(path: &Path) -> Result<PixelCalibrator> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let bad = |message: String| Error::Checkpoint { path: path.to_path_buf(), message };
        let c: PixelCalibrator = serde_json::from_str(&text).map_err(|e| bad(format!("not a pixel calibrator: {e}")))?;
        let want = c.kernel_method().num_params() * c.height * c.width;
        if c.params.len() != want {
            return Err(bad(format!(
                "{:?} for {}x{} maps needs {want} parameters, got {}",
                c.method,
                c.height,
                c.width,
                c.params.len()
            )));
        }
        Ok(c)
    }
}

/// Adam on the per-pixel parameters, one batch at a time; the runner feeds it logit maps as the
/// frozen model produces them.
pub struct PixelTrainer {
    method: Method,
    height: usize,
    width: usize,
    params: Var,
    adam: Adam,
}

impl PixelTrainer {
    /// Starts from the identity map. `lr`: Adam's learning rate.
    pub fn new(ctx: &Context, method: Method, height: usize, width: usize, lr: f32) -> Result<PixelTrainer> {
        let start = PixelCalibrator::identity(method, height, width);
        let params = Var::leaf(start.params_tensor(ctx)?);
        let adam = Adam::new(vec![("pixel_calibration".into(), params.clone())], AdamConfig { lr, ..AdamConfig::default() })?;
        Ok(PixelTrainer { method, height, width, params, adam })
    }

    /// The average per-pixel logistic loss `mean(softplus(z_cal) - y z_cal)` (shape `[]`).
    /// z: [N, height, width] or [N, 1, height, width]; labels: z's shape, 0 or 1 per pixel.
    pub fn loss(&self, z: &Var, labels: &Var) -> Result<Var> {
        if labels.shape() != z.shape() {
            return Err(Error::Shape {
                what: "per-pixel calibration labels".into(),
                expected: format!("the logits' shape {:?}", z.shape()),
                got: format!("{:?}", labels.shape()),
            });
        }
        let zc = pixel_calibration(z, &self.params, pixel_method(self.method))?;
        Ok(zc.softplus()?.sub(&labels.mul(&zc)?)?.mean()?)
    }

    /// One Adam step on a batch; returns the batch loss before the step (not read back).
    pub fn step(&mut self, z: &Tensor, labels: &Tensor) -> Result<Var> {
        let loss = self.loss(&Var::constant(z.clone()), &Var::constant(labels.clone()))?;
        self.adam.zero_grad();
        loss.backward()?;
        self.adam.step()?;
        project_nonnegative(self.params.value(), pixel_method(self.method))?;
        Ok(loss)
    }

    /// The current parameters, read back.
    pub fn calibrator(&self) -> Result<PixelCalibrator> {
        Ok(PixelCalibrator {
            method: self.method,
            height: self.height,
            width: self.width,
            params: self.params.value().to_vec()?,
        })
    }
}

/// Training settings of [`fit_pixel`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PixelFitConfig {
    pub lr: f32,
    pub epochs: usize,
    /// Maps per batch (the thesis uses 128).
    pub batch_size: usize,
    /// Seeds the shuffling of the maps.
    pub seed: u64,
}

impl Default for PixelFitConfig {
    fn default() -> Self {
        PixelFitConfig { lr: 1e-2, epochs: 10, batch_size: 128, seed: 0 }
    }
}

/// Fits per-pixel calibration on logit maps held on the CPU. maps, labels: [N, H, W] flattened
/// (`shape` = [N, H, W]); labels 0 or 1 per pixel (all 0 for a normal image, all 1 for a
/// synthetic anomaly in the thesis). Returns the calibrator and the mean loss of every epoch.
pub fn fit_pixel(
    ctx: &Context,
    method: Method,
    maps: &[f32],
    labels: &[f32],
    shape: [usize; 3],
    cfg: PixelFitConfig,
) -> Result<(PixelCalibrator, Vec<f64>)> {
    let [n, h, w] = shape;
    let pixels = h * w;
    if n == 0 || pixels == 0 || maps.len() != n * pixels || labels.len() != maps.len() {
        return Err(Error::Shape {
            what: "per-pixel calibration maps and labels".into(),
            expected: format!("{} values each for shape {shape:?}", n * pixels),
            got: format!("{} maps, {} labels", maps.len(), labels.len()),
        });
    }
    if let Some((index, &v)) = maps.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(Error::NonFiniteScore { index, value: v as f64 });
    }
    if let Some((index, &v)) = labels.iter().enumerate().find(|(_, &v)| v != 0.0 && v != 1.0) {
        return Err(Error::InvalidLabel { index, value: v.to_string() });
    }
    if cfg.batch_size == 0 || cfg.epochs == 0 {
        return Err(Error::InvalidArgument(format!("per-pixel calibration needs batch_size and epochs > 0, got {cfg:?}")));
    }
    let mut trainer = PixelTrainer::new(ctx, method, h, w, cfg.lr)?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut order: Vec<usize> = (0..n).collect();
    let mut epoch_losses = Vec::with_capacity(cfg.epochs);
    for _ in 0..cfg.epochs {
        order.shuffle(&mut rng);
        let mut total = 0.0;
        for batch in order.chunks(cfg.batch_size) {
            let gather = |src: &[f32]| -> Vec<f32> {
                batch.iter().flat_map(|&i| src[i * pixels..(i + 1) * pixels].iter().copied()).collect()
            };
            let z = Tensor::from_slice(ctx, &[batch.len(), h, w], &gather(maps))?;
            let y = Tensor::from_slice(ctx, &[batch.len(), h, w], &gather(labels))?;
            let loss = trainer.step(&z, &y)?;
            total += loss.value().item()? as f64 * batch.len() as f64;
        }
        epoch_losses.push(total / n as f64);
    }
    Ok((trainer.calibrator()?, epoch_losses))
}
