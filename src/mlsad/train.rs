//! Training and evaluation of a whole MLSAD model.
//!
//! Order: one entropy-regularised PatchGAN per MRF level w = floor(s / 2) >= 2 that a detector
//! needs, then the detectors A^s. Every component has its own checkpoint in the run folder,
//! written atomically after every epoch (`gan_w<w>.safetensors`, `detector_s<s>.safetensors`:
//! networks, optimizer state and `epochs_done`); a second run over the same folder continues
//! each component from its last finished epoch (resume) and skips finished ones. Per-epoch
//! randomness (batch order, crops, noise, fakes) comes from a generator seeded by (seed,
//! component, epoch), so a resumed run draws what an uninterrupted one would (the GPU dropout
//! and input-noise streams restart, though).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::autograd::Var;
use crate::checkpoint::{Checkpoint, HostTensor};
use crate::data::transforms::{resize, to_rgb, grayscale};
use crate::data::{Mask, Sample};
use crate::error::{Error, Result};
use crate::kernels::{Context, Tensor};
use crate::metrics::{aupro, auroc, PixelAuroc};
use crate::nn::{Init, Module};
use crate::optim::{Adam, AdamConfig, MultiStepLr, Optimizer, STATE_PREFIX};
use crate::train::Progress;

use super::coords::{coordinate_map, fake_coordinate_map};
use super::detector::{contrastive_loss, Detector, DetectorConfig};
use super::mrf::{fake_level, MrfSource};
use super::patchgan::{named_parameters, PatchGan, PatchGanConfig};
use super::scoring::{combine_levels, combine_maps, score_levels};
use super::Images;

/// Everything that defines a run (stored as `config.json` in the run folder).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlsadConfig {
    /// Detector levels s (powers of two in the paper: 1, 2, 4, 8, 16).
    pub levels: Vec<usize>,
    /// Images are resized to `image_size` x `image_size` (32 for objects, 256 for textures).
    pub image_size: usize,
    pub channels: usize,
    /// Detectors train on random `crop` x `crop` windows (32 for textures; the image size for
    /// objects, i.e. whole images).
    pub crop: usize,
    /// Detector epochs (250 for CIFAR-10, 100 for textures), batch (8), Adam lr (1e-3), weight
    /// decay (1e-4 / 1e-3), milestones and decay factor (appendix C.2).
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub weight_decay: f32,
    pub milestones: Vec<u64>,
    pub gamma: f64,
    pub num_blocks: usize,
    pub dropout: f32,
    pub noise_variance: f32,
    pub alpha1: f32,
    pub alpha2: f32,
    /// Channels of the detectors' first convolution.
    pub width: usize,
    /// PatchGAN epochs (300), batch (32) and base channels (64).
    pub gan_epochs: usize,
    pub gan_batch: usize,
    pub gan_width: usize,
    /// Maximise the generator's entropy (eq. 2); false trains plain PatchGANs.
    pub entropy: bool,
    /// At most this many steps per epoch (reduced runs); `None`: one pass over the data.
    pub steps_per_epoch: Option<usize>,
    pub seed: u64,
}

impl MlsadConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if self.levels.is_empty() {
            return bad("no detector levels given".into());
        }
        for &s in &self.levels {
            if s == 0 || s > self.crop / 2 {
                return bad(format!("detector level {s} must be in 1..={} (half the {} pixel training crop)", self.crop / 2, self.crop));
            }
        }
        let mut sorted = self.levels.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != self.levels.len() {
            return bad(format!("detector levels {:?} repeat a level", self.levels));
        }
        if self.crop == 0 || self.crop > self.image_size {
            return bad(format!("crop {} must be in 1..={}", self.crop, self.image_size));
        }
        if !(self.channels == 1 || self.channels == 3) {
            return bad(format!("images must have 1 or 3 channels, not {}", self.channels));
        }
        if self.batch == 0 || self.gan_batch < 2 || self.width == 0 || self.gan_width < 2 {
            return bad(format!(
                "batch {} (>= 1), gan batch {} (>= 2), width {} (>= 1) and gan width {} (>= 2)",
                self.batch, self.gan_batch, self.width, self.gan_width
            ));
        }
        if !self.gan_levels().is_empty() && (self.image_size < 8 || !self.image_size.is_power_of_two()) {
            return bad(format!("levels >= 4 need a generator, whose image size must be a power of two >= 8, not {}", self.image_size));
        }
        if self.steps_per_epoch == Some(0) {
            return bad("--steps-per-epoch must be at least 1".into());
        }
        for (name, a) in [("alpha1", self.alpha1), ("alpha2", self.alpha2), ("dropout", self.dropout)] {
            if !(0.0..=1.0).contains(&a) {
                return bad(format!("{name} = {a} is outside [0, 1]"));
            }
        }
        Ok(())
    }

    /// The MRF levels w >= 2 that need a PatchGAN, ascending.
    pub fn gan_levels(&self) -> Vec<usize> {
        let mut w: Vec<usize> = self.levels.iter().map(|&s| fake_level(s)).filter(|&w| w >= 2).collect();
        w.sort_unstable();
        w.dedup();
        w
    }

    pub fn detector(&self, s: usize) -> DetectorConfig {
        DetectorConfig {
            level: s,
            channels: self.channels,
            width: self.width,
            num_blocks: self.num_blocks,
            dropout: self.dropout,
            noise_variance: self.noise_variance,
        }
    }

    pub fn gan(&self, w: usize) -> PatchGanConfig {
        PatchGanConfig { level: w, size: self.image_size, channels: self.channels, width: self.gan_width, entropy: self.entropy }
    }

    /// A seed for (component, epoch).
    fn epoch_seed(&self, component: u64, epoch: usize) -> u64 {
        self.seed ^ component.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (epoch as u64).wrapping_mul(0xd1b5_4a32_d192_ed03)
    }
}

pub fn gan_checkpoint(dir: &Path, w: usize) -> PathBuf {
    dir.join(format!("gan_w{w}.safetensors"))
}

/// Per-epoch PatchGAN statistics (losses, the MINE estimate and its terms, beta and the two
/// gradient norms of eq. 8; means and the epoch's largest estimate and smallest beta), rewritten
/// after every epoch from the checkpoint's history.
pub fn gan_history(dir: &Path, w: usize) -> PathBuf {
    dir.join(format!("gan_w{w}_history.json"))
}

pub fn detector_checkpoint(dir: &Path, s: usize) -> PathBuf {
    dir.join(format!("detector_s{s}.safetensors"))
}

/// Saves modules (parameters and buffers) and optimizer states under their prefixes.
fn save_component(
    path: &Path,
    architecture: &str,
    cfg: &MlsadConfig,
    epochs_done: usize,
    history: &[serde_json::Value],
    modules: &[(&str, &dyn Module)],
    optimizers: &[(&str, &dyn Optimizer)],
) -> Result<()> {
    let meta = serde_json::json!({ "epochs_done": epochs_done, "history": history, "run": cfg });
    let mut ck = Checkpoint::new(architecture, cfg.seed, meta);
    for (prefix, m) in modules {
        let mut named: Vec<(String, Tensor)> = Vec::new();
        m.visit_parameters(prefix, &mut |n, v| named.push((n, v.value().clone())));
        m.visit_buffers(prefix, &mut |n, t| named.push((n, t.clone())));
        for (name, t) in named {
            ck.insert(name, HostTensor::new(t.shape().to_vec(), t.to_vec()?)?);
        }
    }
    for (prefix, opt) in optimizers {
        for (name, t) in opt.state_tensors()? {
            ck.insert(format!("{prefix}.{name}"), HostTensor::new(t.shape().to_vec(), t.to_vec()?)?);
        }
    }
    ck.save(path)
}

/// Loads what [`save_component`] wrote into the modules (and, when given, optimizers); returns
/// (epochs_done, history).
fn load_component(
    path: &Path,
    architecture: &str,
    modules: &[(&str, &dyn Module)],
    optimizers: Vec<(&str, &mut dyn Optimizer)>,
) -> Result<(usize, Vec<serde_json::Value>)> {
    let ck = Checkpoint::load(path)?;
    if ck.meta.architecture != architecture {
        return Err(Error::Checkpoint {
            path: path.to_path_buf(),
            message: format!("holds {}, expected {architecture}", ck.meta.architecture),
        });
    }
    let mut named: Vec<(String, Tensor)> = Vec::new();
    for (prefix, m) in modules {
        m.visit_parameters(prefix, &mut |n, v| named.push((n, v.value().clone())));
        m.visit_buffers(prefix, &mut |n, t| named.push((n, t.clone())));
    }
    for (name, t) in &named {
        let stored = ck.tensors.get(name).ok_or_else(|| Error::Checkpoint {
            path: path.to_path_buf(),
            message: format!("missing tensor {name} {:?}", t.shape()),
        })?;
        if stored.shape != t.shape() {
            return Err(Error::Checkpoint {
                path: path.to_path_buf(),
                message: format!("tensor {name} has shape {:?}, the model expects {:?}", stored.shape, t.shape()),
            });
        }
    }
    for (name, t) in &named {
        t.write(&ck.tensors[name].data)?;
    }
    for (prefix, opt) in optimizers {
        let head = format!("{prefix}.{STATE_PREFIX}");
        let ctx = opt.params()[0].1.value().context().clone();
        let state = ck
            .tensors
            .iter()
            .filter(|(n, _)| n.starts_with(&head))
            .map(|(n, t)| Ok((n[prefix.len() + 1..].to_string(), Tensor::from_slice(&ctx, &t.shape, &t.data)?)))
            .collect::<Result<Vec<_>>>()?;
        opt.load_state(&state)?;
    }
    let epochs_done = ck.meta.config["epochs_done"].as_u64().ok_or_else(|| Error::Checkpoint {
        path: path.to_path_buf(),
        message: "no epochs_done in the metadata".into(),
    })? as usize;
    let history = ck.meta.config["history"].as_array().cloned().unwrap_or_default();
    Ok((epochs_done, history))
}

/// Options of a training run besides the configuration.
pub struct RunOptions<'a> {
    pub dir: &'a Path,
    pub progress: bool,
}

fn diverged(what: String, epoch: usize, step: usize, checkpoint: &Path) -> Error {
    Error::Diverged { epoch, step, what, checkpoint: checkpoint.to_path_buf() }
}

/// Trains (or resumes, or just loads when finished) the PatchGAN of level `w` on `data`.
pub fn train_gan(ctx: &Context, cfg: &MlsadConfig, w: usize, data: &Images, opts: &RunOptions, out: &mut dyn Write) -> Result<PatchGan> {
    let io = |e| Error::io("<stdout>", e);
    let path = gan_checkpoint(opts.dir, w);
    let arch = format!("mlsad-patchgan-w{w}");
    let mut gan = PatchGan::new(ctx, &cfg.gan(w), cfg.seed ^ (0x6761_6e00 + w as u64))?;
    let (mut first, mut history) = (0, Vec::new());
    if path.is_file() {
        let modules: Vec<(&str, &dyn Module)> = vec![("generator", &gan.generator), ("discriminator", &gan.discriminator), ("statistics", &gan.statistics)];
        let optimizers: Vec<(&str, &mut dyn Optimizer)> = vec![("generator", &mut gan.opt_g), ("discriminator", &mut gan.opt_d), ("statistics", &mut gan.opt_t)];
        (first, history) = load_component(&path, &arch, &modules, optimizers)?;
        writeln!(out, "PatchGAN w={w}: resuming after epoch {first} from {}", path.display()).map_err(io)?;
    }
    if first >= cfg.gan_epochs {
        return Ok(gan);
    }
    let per_epoch = data.n / cfg.gan_batch;
    if per_epoch == 0 {
        return Err(Error::InvalidArgument(format!("{} training images are fewer than one GAN batch of {}", data.n, cfg.gan_batch)));
    }
    let steps = cfg.steps_per_epoch.map_or(per_epoch, |m| m.min(per_epoch));
    let mut progress = Progress::new(first, cfg.gan_epochs, steps, opts.progress);
    for epoch in first..cfg.gan_epochs {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.epoch_seed(0x100 + w as u64, epoch));
        let mut order: Vec<usize> = (0..data.n).collect();
        order.shuffle(&mut rng);
        let mut sums = [0.0f64; 8];
        // the extremes show a diverging MINE term within the epoch (issue 8)
        let (mut mi_max, mut beta_min) = (f32::NEG_INFINITY, f32::INFINITY);
        for step in 0..steps {
            let batch = data.select(&order[step * cfg.gan_batch..(step + 1) * cfg.gan_batch]);
            let st = gan.step(&batch, &mut rng)?;
            for (what, v) in [("discriminator loss", st.d_loss), ("generator loss", st.g_adv), ("MINE estimate", st.mi)] {
                if !v.is_finite() {
                    return Err(diverged(format!("PatchGAN w={w}: {what} is {v}"), epoch, step, &path));
                }
            }
            let values = [st.d_loss, st.g_adv, st.mi, st.beta, st.t_joint, st.t_log_mean_exp, st.grad_adv, st.grad_mi];
            for (s, v) in sums.iter_mut().zip(values) {
                *s += v as f64;
            }
            mi_max = mi_max.max(st.mi);
            beta_min = beta_min.min(st.beta);
            progress.step(cfg.gan_batch);
            progress.report(epoch, step, st.g_adv);
        }
        let m = |i: usize| sums[i] / steps as f64;
        history.push(serde_json::json!({
            "epoch": epoch, "d_loss": m(0), "g_adv": m(1), "mi": m(2), "mi_max": mi_max, "beta": m(3),
            "beta_min": beta_min, "t_joint": m(4), "t_log_mean_exp": m(5), "grad_adv": m(6), "grad_mi": m(7),
        }));
        save_component(&path, &arch, cfg, epoch + 1, &history, &gan.modules(), &gan.optimizers())?;
        let log = gan_history(opts.dir, w);
        let json = serde_json::to_string_pretty(&history).map_err(|e| Error::InvalidArgument(format!("{}: {e}", log.display())))?;
        crate::checkpoint::write_atomically(&log, json.as_bytes())?;
        progress.suspend(|| {
            writeln!(
                out,
                "PatchGAN w={w} epoch {}/{}: D {:.4} G {:.4} MI {:.4} nats (max {mi_max:.4}) beta {:.3} (min {beta_min:.3})",
                epoch + 1,
                cfg.gan_epochs,
                m(0),
                m(1),
                m(2),
                m(3)
            )
        })
        .map_err(io)?;
    }
    progress.finish();
    Ok(gan)
}

/// One batch of eq. 3 inputs: `[normals; normals; fakes]` and `[r; r̂; r]`.
fn detector_batch(
    ctx: &Context,
    cfg: &MlsadConfig,
    s: usize,
    data: &Images,
    indices: &[usize],
    source: &MrfSource,
    rng: &mut ChaCha8Rng,
) -> Result<(Var, Var)> {
    let b = indices.len();
    let full = (data.height, data.width);
    let crop = cfg.crop;
    let top: Vec<usize> = (0..b).map(|_| rng.random_range(0..=data.height - crop)).collect();
    let left: Vec<usize> = (0..b).map(|_| rng.random_range(0..=data.width - crop)).collect();
    let normals = data.select(indices).crop(&top, &left, crop)?;
    let fakes = match source {
        MrfSource::Generator { .. } => {
            let full_fakes = source.sample(&data.select(indices), rng)?;
            full_fakes.crop(&top, &left, crop)?
        }
        _ => source.sample(&normals, rng)?,
    };
    let x = Images::concat(&[&normals, &normals, &fakes])?.to_var(ctx)?;
    let o = crop + 1 - s;
    let mut coords = Vec::with_capacity(3 * b * 2 * o * o);
    let true_maps: Vec<Vec<f32>> = (0..b).map(|i| coordinate_map(s, crop, crop, (top[i], left[i]), full)).collect::<Result<_>>()?;
    for m in &true_maps {
        coords.extend_from_slice(m);
    }
    for _ in 0..b {
        coords.extend(fake_coordinate_map(s, crop, crop, full, rng)?);
    }
    for m in &true_maps {
        coords.extend_from_slice(m);
    }
    let coords = Var::constant(Tensor::from_slice(ctx, &[3 * b, 2, o, o], &coords)?);
    Ok((x, coords))
}

/// Trains (or resumes, or loads when finished) the level-`s` detector against `source`.
pub fn train_detector(
    ctx: &Context,
    cfg: &MlsadConfig,
    s: usize,
    data: &Images,
    source: &MrfSource,
    opts: &RunOptions,
    out: &mut dyn Write,
) -> Result<Detector> {
    let io = |e| Error::io("<stdout>", e);
    let path = detector_checkpoint(opts.dir, s);
    let arch = format!("mlsad-detector-s{s}");
    let mut init = Init::new(ctx, cfg.seed ^ (0x6465_7400 + s as u64));
    let det = Detector::new(&mut init, &cfg.detector(s))?;
    let adam = AdamConfig { lr: cfg.lr as f32, betas: (0.9, 0.999), eps: 1e-8, weight_decay: cfg.weight_decay };
    let mut opt = Adam::new(named_parameters(&det, "detector"), adam)?;
    let (mut first, mut history) = (0, Vec::new());
    if path.is_file() {
        (first, history) = load_component(&path, &arch, &[("detector", &det)], vec![("detector", &mut opt)])?;
        writeln!(out, "detector A^{s}: resuming after epoch {first} from {}", path.display()).map_err(io)?;
    }
    if first >= cfg.epochs {
        return Ok(det);
    }
    let per_epoch = data.n / cfg.batch;
    if per_epoch == 0 {
        return Err(Error::InvalidArgument(format!("{} training images are fewer than one batch of {}", data.n, cfg.batch)));
    }
    let steps = cfg.steps_per_epoch.map_or(per_epoch, |m| m.min(per_epoch));
    let schedule = MultiStepLr::new(cfg.lr, &cfg.milestones, cfg.gamma)?;
    let mut progress = Progress::new(first, cfg.epochs, steps, opts.progress);
    for epoch in first..cfg.epochs {
        schedule.apply(&mut opt, epoch as u64)?;
        det.set_training(true);
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.epoch_seed(0x200 + s as u64, epoch));
        let mut order: Vec<usize> = (0..data.n).collect();
        order.shuffle(&mut rng);
        let (mut sum, mut read) = (0.0f64, 0usize);
        for step in 0..steps {
            let (x, coords) = detector_batch(ctx, cfg, s, data, &order[step * cfg.batch..(step + 1) * cfg.batch], source, &mut rng)?;
            let loss = contrastive_loss(&det.logits(&x, &coords)?, cfg.batch, cfg.alpha1, cfg.alpha2)?;
            opt.zero_grad();
            loss.backward()?;
            opt.step()?;
            progress.step(cfg.batch);
            if step % 10 == 0 || step + 1 == steps {
                let v = loss.value().item()?;
                if !v.is_finite() {
                    return Err(diverged(format!("detector A^{s}: loss is {v}"), epoch, step, &path));
                }
                sum += v as f64;
                read += 1;
                progress.report(epoch, step, v);
            }
        }
        let mean = sum / read.max(1) as f64;
        history.push(serde_json::json!({ "epoch": epoch, "loss": mean, "lr": opt.lr() }));
        save_component(&path, &arch, cfg, epoch + 1, &history, &[("detector", &det)], &[("detector", &opt)])?;
        progress.suspend(|| writeln!(out, "detector A^{s} epoch {}/{}: loss {mean:.5}", epoch + 1, cfg.epochs)).map_err(io)?;
    }
    progress.finish();
    Ok(det)
}

/// A trained model: detectors in `cfg.levels` order and the PatchGANs by level.
pub struct TrainedModel {
    pub detectors: Vec<Detector>,
    pub gans: BTreeMap<usize, PatchGan>,
}

/// Trains every component in order (PatchGANs, then detectors), resuming from the folder.
pub fn train_all(ctx: &Context, cfg: &MlsadConfig, data: &Images, opts: &RunOptions, out: &mut dyn Write) -> Result<TrainedModel> {
    cfg.validate()?;
    let mut gans = BTreeMap::new();
    for w in cfg.gan_levels() {
        gans.insert(w, train_gan(ctx, cfg, w, data, opts, out)?);
    }
    let mut detectors = Vec::new();
    for &s in &cfg.levels {
        let source = source_for(ctx, s, &gans)?;
        detectors.push(train_detector(ctx, cfg, s, data, &source, opts, out)?);
    }
    Ok(TrainedModel { detectors, gans })
}

/// The fakes of the level-`s` detector.
pub fn source_for<'a>(ctx: &'a Context, s: usize, gans: &'a BTreeMap<usize, PatchGan>) -> Result<MrfSource<'a>> {
    Ok(match fake_level(s) {
        0 => MrfSource::Uniform,
        1 => MrfSource::Shuffle,
        w => {
            let gan = gans.get(&w).ok_or_else(|| Error::InvalidArgument(format!("no PatchGAN of level {w} for detector A^{s}")))?;
            MrfSource::Generator { level: w, generator: &gan.generator, ctx }
        }
    })
}

/// Loads the level-`w` PatchGAN of a run folder.
pub fn load_gan(ctx: &Context, cfg: &MlsadConfig, dir: &Path, w: usize) -> Result<PatchGan> {
    let path = gan_checkpoint(dir, w);
    if !path.is_file() {
        return Err(Error::MissingFile { path, what: format!("the level-{w} PatchGAN checkpoint") });
    }
    let gan = PatchGan::new(ctx, &cfg.gan(w), 0)?;
    load_component(&path, &format!("mlsad-patchgan-w{w}"), &gan.modules(), vec![])?;
    Ok(gan)
}

/// Loads a finished model from its folder (every checkpoint must exist).
pub fn load_model(ctx: &Context, cfg: &MlsadConfig, dir: &Path) -> Result<TrainedModel> {
    let mut gans = BTreeMap::new();
    for w in cfg.gan_levels() {
        gans.insert(w, load_gan(ctx, cfg, dir, w)?);
    }
    let mut detectors = Vec::new();
    for &s in &cfg.levels {
        let path = detector_checkpoint(dir, s);
        if !path.is_file() {
            return Err(Error::MissingFile { path, what: format!("the detector A^{s} checkpoint") });
        }
        let det = Detector::new(&mut Init::new(ctx, 0), &cfg.detector(s))?;
        load_component(&path, &format!("mlsad-detector-s{s}"), &[("detector", &det)], vec![])?;
        detectors.push(det);
    }
    Ok(TrainedModel { detectors, gans })
}

/// Loads an image as `channels` x `size` x `size` in [-1, 1].
pub fn load_image(sample: &Sample, channels: usize, size: usize) -> Result<Vec<f32>> {
    let img = sample.load()?;
    let img = match (img.channels, channels) {
        (1, 3) => to_rgb(&img),
        (3, 1) => grayscale(&img),
        (a, b) if a == b => img,
        (a, b) => return Err(Error::InvalidArgument(format!("{}: {a} channels, the model takes {b}", sample.describe()))),
    };
    let img = resize(&img, size, size);
    Ok(img.data.iter().map(|v| 2.0 * v - 1.0).collect())
}

/// Loads samples into one batch (see [`load_image`]).
pub fn load_images(samples: &[Sample], channels: usize, size: usize) -> Result<Images> {
    let mut data = Vec::with_capacity(samples.len() * channels * size * size);
    for s in samples {
        data.extend(load_image(s, channels, size)?);
    }
    Images::new(data, samples.len(), channels, size, size)
}

/// A mask resized to `size` x `size` by nearest neighbour (anomalous stays 0/1).
pub fn resize_mask(mask: &Mask, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size * size);
    for y in 0..size {
        let sy = ((y as f64 + 0.5) * mask.height as f64 / size as f64) as usize;
        for x in 0..size {
            let sx = ((x as f64 + 0.5) * mask.width as f64 / size as f64) as usize;
            out.push(u8::from(mask.data[sy.min(mask.height - 1) * mask.width + sx.min(mask.width - 1)] != 0));
        }
    }
    out
}

/// Test-set results: image AUROC (eq. 4), per-level AUROC and, where masks exist, pixel AUROC
/// and AUPRO of the averaged pixel maps.
#[derive(Clone, Debug, Serialize)]
pub struct Evaluation {
    pub image_auroc: f64,
    /// Level s -> AUROC of that level's score alone.
    pub level_auroc: BTreeMap<usize, f64>,
    pub pixel_auroc: Option<f64>,
    pub aupro: Option<f64>,
    pub test_images: usize,
    pub test_anomalies: usize,
    #[serde(skip)]
    pub scores: Vec<f64>,
    #[serde(skip)]
    pub labels: Vec<u8>,
}

/// Scores `test` in batches of `batch`; pixel metrics when every test sample has a mask.
pub fn evaluate(ctx: &Context, cfg: &MlsadConfig, detectors: &[Detector], test: &[Sample], batch: usize, progress: bool) -> Result<Evaluation> {
    if test.is_empty() || batch == 0 {
        return Err(Error::InvalidArgument("evaluation needs test images and a batch >= 1".into()));
    }
    let with_masks = test.iter().all(|s| s.mask != crate::data::MaskSource::None);
    let size = cfg.image_size;
    let mut per_level: Vec<Vec<f64>> = vec![Vec::new(); detectors.len()];
    let mut labels = Vec::new();
    let mut pixel = PixelAuroc::new();
    let (mut all_maps, mut all_masks) = (Vec::new(), Vec::new());
    let bar = Progress::new(0, 1, test.len().div_ceil(batch), progress);
    let mut bar = bar;
    for (step, chunk) in test.chunks(batch).enumerate() {
        let images = load_images(chunk, cfg.channels, size)?;
        let levels = score_levels(ctx, detectors, &images, with_masks)?;
        for (acc, l) in per_level.iter_mut().zip(&levels) {
            acc.extend(&l.scores);
        }
        labels.extend(chunk.iter().map(|s| s.label));
        if with_masks {
            let maps: Vec<&[f32]> = levels.iter().filter_map(|l| l.maps.as_deref()).collect();
            let combined = combine_maps(&maps)?;
            for (i, s) in chunk.iter().enumerate() {
                let (_, mask) = s.load_with_mask()?;
                let mask = mask.ok_or_else(|| Error::InvalidArgument(format!("{}: no mask", s.describe())))?;
                let mask = resize_mask(&mask, size);
                let map = &combined[i * size * size..(i + 1) * size * size];
                pixel.add(map, &mask)?;
                all_maps.extend_from_slice(map);
                all_masks.extend(mask);
            }
        }
        bar.step(chunk.len());
        bar.report(0, step, 0.0);
    }
    bar.finish();
    let refs: Vec<&[f64]> = per_level.iter().map(|v| v.as_slice()).collect();
    let scores = combine_levels(&refs)?;
    let image_auroc = auroc(&scores, &labels)?;
    let mut level_auroc = BTreeMap::new();
    for (det, s) in detectors.iter().zip(&per_level) {
        level_auroc.insert(det.level(), auroc(s, &labels)?);
    }
    let (pixel_auroc, aupro_value) = if with_masks && all_masks.contains(&1) {
        (Some(pixel.compute()?), Some(aupro(&all_maps, &all_masks, size, size, 0.3)?))
    } else {
        (None, None)
    };
    Ok(Evaluation {
        image_auroc,
        level_auroc,
        pixel_auroc,
        aupro: aupro_value,
        test_images: labels.len(),
        test_anomalies: labels.iter().filter(|&&l| l == 1).count(),
        scores,
        labels,
    })
}
