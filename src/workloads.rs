//! The speed workloads of issue 10: one full training step (forward, loss, backward, Adam) of
//! each network the seeds train, shared by `benches/steps.rs` (criterion) and `oddity bench`
//! (the CLI), so both time exactly the same graph. `benches/torch/steps.py` builds the same
//! networks, losses and optimiser settings in PyTorch; keep the two in step.
//!
//! | name                | network                                   | loss                      | input            |
//! |---------------------|-------------------------------------------|---------------------------|------------------|
//! | `fmnist_lenet_svdd` | bias-free Fashion-MNIST LeNet (thesis §4.2) | mean ‖φ(x) − c‖²        | [B, 1, 28, 28]   |
//! | `cifar10_lenet_svdd`| bias-free CIFAR-10 LeNet                   | mean ‖φ(x) − c‖²          | [B, 3, 32, 32]   |
//! | `bergmann_ae_ssim`  | Bergmann et al. 256x256 SSIM autoencoder   | SSIM loss (§4.1.4)        | [B, 1, 256, 256] |
//! | `mlsad_detector8`   | MLSAD level-8 detector stand-in ([`mlsad_detector8`]) | per-patch logistic (eq. 3) | [B, 3+2, 32, 32] |
//! | `ssim_map11`        | none: 11x11 SSIM map forward + backward to both images | mean S          | [B, 1, 256, 256] |
//!
//! Inputs are seeded standard normal draws (values do not change the work done). A step only
//! records GPU work; [`time_steps`] waits for the GPU after each step, so a time is a step's
//! real time.

use std::time::Instant;

use crate::autograd::{concat, ssim_loss, ssim_map, Var};
use crate::error::{Error, Result};
use crate::kernels::{rng, Context, Tensor};
use crate::models::autoencoder::{bergmann_autoencoder, AutoEncoder, BergmannConfig};
use crate::models::losses::pixel_logistic_loss;
use crate::models::{deep_svdd, lenet};
use crate::nn::{self, Activation, Conv2d, Dropout, GaussianNoise, Init, Module, Residual, Sequential};
use crate::optim::{Adam, AdamConfig, Optimizer};

/// The networks benchmarked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    FmnistLenetSvdd,
    Cifar10LenetSvdd,
    BergmannAeSsim,
    MlsadDetector8,
    SsimMap11,
}

/// One benchmarked network at one batch size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Workload {
    pub name: &'static str,
    pub batch: usize,
    pub kind: Kind,
}

/// Every workload of issue 10, in table order.
pub fn all() -> Vec<Workload> {
    let w = |name, batch, kind| Workload { name, batch, kind };
    vec![
        w("fmnist_lenet_svdd", 128, Kind::FmnistLenetSvdd),
        w("fmnist_lenet_svdd", 1024, Kind::FmnistLenetSvdd),
        w("cifar10_lenet_svdd", 128, Kind::Cifar10LenetSvdd),
        w("bergmann_ae_ssim", 32, Kind::BergmannAeSsim),
        w("mlsad_detector8", 8, Kind::MlsadDetector8),
        w("mlsad_detector8", 64, Kind::MlsadDetector8),
        w("ssim_map11", 32, Kind::SsimMap11),
    ]
}

/// The workloads a filter names: `all`, a name (every batch size), or `name/batch`; several
/// filters may be joined with commas.
pub fn select(filter: &str) -> Result<Vec<Workload>> {
    let every = all();
    let mut chosen: Vec<Workload> = Vec::new();
    for part in filter.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let matched: Vec<Workload> = every
            .iter()
            .copied()
            .filter(|w| part == "all" || part == w.name || part == w.id())
            .collect();
        if matched.is_empty() {
            let names: Vec<String> = every.iter().map(Workload::id).collect();
            return Err(Error::InvalidArgument(format!(
                "no workload matches {part:?}; use all, a name or name/batch from: {}",
                names.join(", ")
            )));
        }
        for w in matched {
            if !chosen.contains(&w) {
                chosen.push(w);
            }
        }
    }
    if chosen.is_empty() {
        return Err(Error::InvalidArgument(format!("workload filter {filter:?} names nothing")));
    }
    Ok(chosen)
}

/// One step of a prepared workload: records the GPU work, does not wait for it.
pub trait TrainStep {
    fn step(&mut self) -> Result<()>;
}

impl Workload {
    /// `name/batch`, e.g. `fmnist_lenet_svdd/128`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.name, self.batch)
    }

    /// Builds the network, optimiser and seeded inputs on `ctx`.
    pub fn prepare(&self, ctx: &Context, seed: u64) -> Result<Box<dyn TrainStep>> {
        let mut init = Init::new(ctx, seed);
        let b = self.batch;
        let input = |shape: &[usize], stream: u32| -> Result<Var> {
            Ok(Var::constant(rng::normal(ctx, shape, seed, stream, 0.0, 1.0)?))
        };
        Ok(match self.kind {
            Kind::FmnistLenetSvdd | Kind::Cifar10LenetSvdd => {
                let (net, shape, latent) = if self.kind == Kind::FmnistLenetSvdd {
                    (lenet::fmnist_lenet(&mut init)?, [b, 1, 28, 28], 32)
                } else {
                    (lenet::cifar10_lenet(&mut init)?, [b, 3, 32, 32], 128)
                };
                // Deep SVDD's Adam: lr 1e-4, weight decay 0.5e-6 (Ruff et al. 2018).
                let opt = Adam::new(nn::parameters(&net), AdamConfig { lr: 1e-4, weight_decay: 0.5e-6, ..Default::default() })?;
                let c = deep_svdd::centre_var(ctx, &vec![0.1; latent])?;
                Box::new(SvddStep { net, x: input(&shape, 0)?, c, opt })
            }
            Kind::BergmannAeSsim => {
                let ae = bergmann_autoencoder(&mut init, &BergmannConfig::default())?;
                // Bergmann et al.: Adam, lr 2e-4, weight decay 1e-5.
                let opt = Adam::new(nn::parameters(&ae), AdamConfig { lr: 2e-4, weight_decay: 1e-5, ..Default::default() })?;
                Box::new(AutoencoderStep { ae, x: input(&[b, 1, 256, 256], 0)?, opt })
            }
            Kind::MlsadDetector8 => {
                let det = mlsad_detector8(&mut init)?;
                // MLSAD appendix C.2 (CIFAR-10): Adam, lr 1e-3, betas (0.9, 0.999), weight decay 1e-4.
                let opt = Adam::new(nn::parameters(&det), AdamConfig { lr: 1e-3, weight_decay: 1e-4, ..Default::default() })?;
                let images = input(&[b, 3, DETECTOR_INPUT, DETECTOR_INPUT], 0)?;
                let coords = Var::constant(coordinate_maps(ctx, b, DETECTOR_INPUT)?);
                let out = DETECTOR_INPUT + 1 - DETECTOR_LEVEL;
                // Alternate normal (0) and anomalous (1) pairs, every patch of a pair labelled alike.
                let labels: Vec<f32> = (0..b).flat_map(|i| std::iter::repeat_n((i % 2) as f32, out * out)).collect();
                let labels = Var::constant(Tensor::from_slice(ctx, &[b, 1, out, out], &labels)?);
                let noise = GaussianNoise::new(&mut init, DETECTOR_NOISE_STD);
                Box::new(DetectorStep { det, noise, images, coords, labels, opt })
            }
            Kind::SsimMap11 => {
                let x = Var::leaf(rng::normal(ctx, &[b, 1, 256, 256], seed, 0, 0.0, 1.0)?);
                let y = Var::leaf(rng::normal(ctx, &[b, 1, 256, 256], seed, 1, 0.0, 1.0)?);
                Box::new(SsimMapStep { x, y })
            }
        })
    }
}

struct SvddStep {
    net: Sequential,
    x: Var,
    c: Var,
    opt: Adam,
}

impl TrainStep for SvddStep {
    fn step(&mut self) -> Result<()> {
        self.opt.zero_grad();
        deep_svdd::loss(&self.net.forward(&self.x)?, &self.c)?.backward()?;
        self.opt.step()
    }
}

struct AutoencoderStep {
    ae: AutoEncoder,
    x: Var,
    opt: Adam,
}

impl TrainStep for AutoencoderStep {
    fn step(&mut self) -> Result<()> {
        self.opt.zero_grad();
        // Inputs are z-scored, so the padding value (the data mean) is 0.
        ssim_loss(&self.ae.forward(&self.x)?, &self.x, 0.0)?.backward()?;
        self.opt.step()
    }
}

/// Input side of the level-8 detector stand-in (the paper's CIFAR-10 crops).
pub const DETECTOR_INPUT: usize = 32;
/// Receptive field of the level-8 detector: 4 + 2 + 2 = 8 pixels.
pub const DETECTOR_LEVEL: usize = 8;

/// A stand-in for the MLSAD level-8 detector A^8 (paper §3.2.1, appendix C.2), written before
/// `src/mlsad` landed and kept as the benchmark's fixed network (`benches/torch/steps.py` mirrors
/// it layer for layer; [`crate::mlsad::Detector`] joins the coordinates after its features
/// instead). Built from the paper's description: a stride-1 fully convolutional net
/// with a receptive field of 8 x 8 pixels, the coordinate maps r^s as 2 extra input channels,
/// Gaussian noise (variance 0.05) on the input image, residual blocks with dropout (num_block 2,
/// the CIFAR-10 setting), no normalisation, one logit per 8x8 patch. The widths follow the
/// paper's level-8 PatchGAN critic (Table 7: 64, 128, 256, 512, ResBlock(256)) since the
/// detector's own table is a figure; the leaky ReLU slope (0.2) and dropout rate (0.1) are not
/// stated and are ours. Coordinates join the image at the input, not at an intermediate layer,
/// which costs the same to within the first layer.
///
/// [B, 5, 32, 32] -> logits [B, 1, 25, 25]:
/// conv 4x4 (5 -> 64), conv 3x3 (64 -> 128), conv 3x3 (128 -> 256), conv 1x1 (256 -> 512), each
/// with leaky ReLU; 2 x residual(conv 1x1 512 -> 256, leaky ReLU, dropout, conv 1x1 256 -> 512)
/// + leaky ReLU; conv 1x1 (512 -> 1).
pub fn mlsad_detector8(init: &mut Init) -> Result<Sequential> {
    // Leaky ReLUs fused into the convs' stores, as in `mlsad::Detector` (names are unchanged).
    let leaky = Activation::LeakyRelu(0.2);
    let conv = |init: &mut Init, cin, cout, k| Ok::<_, crate::kernels::Error>(Conv2d::new(init, cin, cout, k, 1, 0, true)?.with_activation(leaky));
    let mut seq = Sequential::new()
        .push("conv1", conv(init, 5, 64, 4)?)
        .push("conv2", conv(init, 64, 128, 3)?)
        .push("conv3", conv(init, 128, 256, 3)?)
        .push("conv4", conv(init, 256, 512, 1)?);
    for i in 1..=2 {
        let body = Sequential::new()
            .push("conv1", conv(init, 512, 256, 1)?)
            .push("drop", Dropout::new(init, 0.1))
            .push("conv2", Conv2d::new(init, 256, 512, 1, 1, 0, true)?);
        let block = Residual { body, shortcut: None, activation: Some(Box::new(leaky)) };
        seq = seq.push(format!("res{i}"), block);
    }
    Ok(seq.push("head", Conv2d::new(init, 512, 1, 1, 1, 0, true)?))
}

/// The true coordinate maps r: channel 0 the column, channel 1 the row, both scaled to [-1, 1].
/// -> [batch, 2, size, size]
pub fn coordinate_maps(ctx: &Context, batch: usize, size: usize) -> Result<Tensor> {
    let scale = |i: usize| if size > 1 { 2.0 * i as f32 / (size - 1) as f32 - 1.0 } else { 0.0 };
    let mut data = Vec::with_capacity(batch * 2 * size * size);
    for _ in 0..batch {
        data.extend((0..size * size).map(|p| scale(p % size)));
        data.extend((0..size * size).map(|p| scale(p / size)));
    }
    Ok(Tensor::from_slice(ctx, &[batch, 2, size, size], &data)?)
}

struct DetectorStep {
    det: Sequential,
    noise: GaussianNoise,
    images: Var,
    coords: Var,
    labels: Var,
    opt: Adam,
}

/// The detector's input noise: variance 0.05 (appendix C.2).
const DETECTOR_NOISE_STD: f32 = 0.223_606_8;

impl TrainStep for DetectorStep {
    fn step(&mut self) -> Result<()> {
        self.opt.zero_grad();
        let noisy = self.noise.forward(&self.images)?;
        let z = self.det.forward(&concat(&[&noisy, &self.coords])?)?;
        pixel_logistic_loss(&z, &self.labels)?.backward()?;
        self.opt.step()
    }
}

struct SsimMapStep {
    x: Var,
    y: Var,
}

impl TrainStep for SsimMapStep {
    fn step(&mut self) -> Result<()> {
        self.x.zero_grad();
        self.y.zero_grad();
        Ok(ssim_map(&self.x, &self.y, 0.0)?.mean()?.backward()?)
    }
}

/// Step times of one workload, in milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    pub batch: usize,
    /// One entry per timed step, in run order.
    pub samples_ms: Vec<f64>,
    /// The host's part of each step: recording the step and submitting it, before waiting for
    /// the GPU. On a fast GPU a step cannot take less; on a software adapter the two overlap little.
    pub host_ms: Vec<f64>,
    /// Kernel dispatches the last timed step recorded (each costs a launch on the GPU).
    pub dispatches: u64,
}

impl Timing {
    pub fn median_ms(&self) -> f64 {
        median(&self.samples_ms)
    }

    pub fn min_ms(&self) -> f64 {
        self.samples_ms.iter().copied().fold(f64::INFINITY, f64::min)
    }

    pub fn max_ms(&self) -> f64 {
        self.samples_ms.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    }

    /// Median of the host's part of a step (see [`Timing::host_ms`]).
    pub fn median_host_ms(&self) -> f64 {
        median(&self.host_ms)
    }

    /// Images per second at the median step time.
    pub fn images_per_s(&self) -> f64 {
        self.batch as f64 / (self.median_ms() / 1e3)
    }
}

/// Median of a non-empty sample (mean of the middle two for an even count).
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs `warmup` untimed steps, then `steps` steps each timed from its start until the GPU has
/// finished it (`Context::wait`), and until it is recorded and submitted (`Context::flush`).
pub fn time_steps(ctx: &Context, step: &mut dyn TrainStep, batch: usize, warmup: usize, steps: usize) -> Result<Timing> {
    if steps == 0 {
        return Err(Error::InvalidArgument("timing needs at least one step (--steps 0 given)".into()));
    }
    for _ in 0..warmup {
        step.step()?;
        ctx.wait()?;
    }
    let mut samples_ms = Vec::with_capacity(steps);
    let mut host_ms = Vec::with_capacity(steps);
    let mut dispatches = 0;
    for _ in 0..steps {
        let before = ctx.dispatch_count();
        let t = Instant::now();
        step.step()?;
        dispatches = ctx.dispatch_count() - before;
        ctx.flush();
        host_ms.push(t.elapsed().as_secs_f64() * 1e3);
        ctx.wait()?;
        samples_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(Timing { batch, samples_ms, host_ms, dispatches })
}

#[cfg(test)]
mod tests {
    use super::{all, median, select, Kind};
    use crate::kernels::gpu_or_skip;
    use crate::models::autoencoder::{bergmann_autoencoder, BergmannConfig};
    use crate::models::lenet;
    use crate::nn::{self, Init, Module};

    fn count(m: &dyn Module) -> usize {
        nn::parameters(m).iter().map(|(_, v)| v.value().numel()).sum()
    }

    #[test]
    fn parameter_counts_match_the_pytorch_mirror() {
        // The counts `benches/torch/steps.py` builds (sum of p.numel() in PyTorch 2.15): the two
        // sides time the same networks only if these agree.
        let ctx = gpu_or_skip!();
        let mut init = Init::new(&ctx, 0);
        assert_eq!(count(&super::mlsad_detector8(&mut init).unwrap()), 1_032_129);
        assert_eq!(count(&bergmann_autoencoder(&mut init, &BergmannConfig::default()).unwrap()), 1_081_381);
        assert_eq!(count(&lenet::cifar10_lenet(&mut init).unwrap()), 520_544);
        assert_eq!(count(&lenet::fmnist_lenet(&mut init).unwrap()), 7_272);
        assert!(all().iter().any(|w| w.kind == Kind::SsimMap11));
    }

    #[test]
    fn select_by_name_id_and_all() {
        assert_eq!(select("all").unwrap().len(), 7);
        let lenet = select("fmnist_lenet_svdd").unwrap();
        assert_eq!(lenet.iter().map(|w| w.batch).collect::<Vec<_>>(), vec![128, 1024]);
        let one = select("mlsad_detector8/64, ssim_map11").unwrap();
        assert_eq!(one.iter().map(|w| w.id()).collect::<Vec<_>>(), vec!["mlsad_detector8/64", "ssim_map11/32"]);
        let err = select("resnet").unwrap_err().to_string();
        assert!(err.contains("resnet") && err.contains("fmnist_lenet_svdd/128"), "{err}");
    }

    #[test]
    fn median_of_odd_and_even_samples() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }
}
