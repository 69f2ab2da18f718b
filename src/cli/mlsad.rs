//! `oddity mlsad`: multi-level structure anomaly detection (the MLSAD paper).
//!
//! - `train --data <dir> [--class <c>] --levels 1,2,4,8 --out <run>`: trains the PatchGANs and
//!   the level-specific detectors (checkpoints after every epoch; `--resume` continues), then
//!   evaluates on the test set into `<run>/metrics.json`. `<dir>` is either a CIFAR-10-style
//!   folder (`train/<class>/`, `test/<class>/`; one-vs-all with `--class`: objects, 32x32) or a
//!   category in the MVTec AD layout (`train/good/`, `test/<defect>/`, `ground_truth/`:
//!   textures, 256x256, detectors on random 32x32 crops, pixel AUROC and AUPRO).
//! - `eval <run>`: evaluates a trained run again into `metrics.json`.
//! - `samples <run>`: `samples.png`, a grid with one row per MRF level (normal images first,
//!   then levels high to low, as the paper's Fig. 3).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::cifar::cifar10;
use crate::data::{DataSplit, ImageTensor, MvtecCategory, Sample};
use crate::error::{Error, Result};
use crate::kernels::Context;
use crate::mlsad::mrf::{generate, MrfSource};
use crate::mlsad::train::{
    evaluate, load_gan, load_images, load_model, train_all, Evaluation, MlsadConfig, RunOptions,
};
use crate::mlsad::Images;

pub const CONFIG_FILE: &str = "config.json";
pub const METRICS_FILE: &str = "metrics.json";
pub const SAMPLES_FILE: &str = "samples.png";

#[derive(Debug, Args)]
pub struct MlsadArgs {
    #[command(subcommand)]
    pub command: MlsadCommand,
}

#[derive(Debug, Subcommand)]
pub enum MlsadCommand {
    /// Train PatchGANs and detectors, then evaluate into metrics.json.
    Train(Box<TrainArgs>),
    /// Evaluate a trained run folder into its metrics.json.
    Eval(RunArgs),
    /// Write samples.png: generated images of every MRF level.
    Samples(SamplesArgs),
}

#[derive(Debug, Args, Clone, Serialize)]
pub struct TrainArgs {
    /// A CIFAR-10-style folder (train/<class>, test/<class>) or an MVTec-layout category.
    #[arg(long)]
    pub data: PathBuf,
    /// The normal class (one-vs-all folders only).
    #[arg(long)]
    pub class: Option<String>,
    /// Detector levels s (receptive fields s x s).
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 2, 4, 8, 16])]
    pub levels: Vec<usize>,
    /// Detector epochs (default 250 objects, 100 textures).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// PatchGAN epochs.
    #[arg(long)]
    pub gan_epochs: Option<usize>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The run folder: config.json, checkpoints, metrics.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue the run in --out (its config.json; --epochs and --gan-epochs may grow).
    #[arg(long)]
    pub resume: bool,
    /// Image size (default 32 objects, 256 textures).
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Detector training crop (default: the image size for objects, 32 for textures).
    #[arg(long)]
    pub crop: Option<usize>,
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    #[arg(long, default_value_t = 32)]
    pub gan_batch: usize,
    /// Channels of the detectors' first convolution.
    #[arg(long, default_value_t = 64)]
    pub width: usize,
    /// Base channels of the PatchGAN networks (64 in Tables 5-8).
    #[arg(long, default_value_t = 64)]
    pub gan_width: usize,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Default 1e-4 objects, 1e-3 textures.
    #[arg(long)]
    pub weight_decay: Option<f32>,
    /// Default 100,200 objects, 50,75 textures.
    #[arg(long, value_delimiter = ',')]
    pub milestones: Option<Vec<u64>>,
    #[arg(long, default_value_t = 0.3)]
    pub gamma: f64,
    /// Residual blocks per detector (default 2 objects, 1 textures).
    #[arg(long)]
    pub num_blocks: Option<usize>,
    #[arg(long, default_value_t = 0.2)]
    pub dropout: f32,
    #[arg(long, default_value_t = 0.6)]
    pub alpha1: f32,
    #[arg(long, default_value_t = 0.4)]
    pub alpha2: f32,
    /// Train plain PatchGANs (no entropy term).
    #[arg(long)]
    pub no_entropy: bool,
    /// At most this many steps per epoch (reduced runs).
    #[arg(long)]
    pub steps_per_epoch: Option<usize>,
    /// Use a seeded subset of this many normal training images.
    #[arg(long)]
    pub limit_train: Option<usize>,
    /// Use a seeded subset of this many test images.
    #[arg(long)]
    pub limit_test: Option<usize>,
    #[arg(long, default_value_t = 64)]
    pub eval_batch: usize,
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// The run folder.
    pub dir: PathBuf,
    #[arg(long, default_value_t = 64)]
    pub eval_batch: usize,
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Debug, Args, Clone)]
pub struct SamplesArgs {
    /// The run folder.
    pub dir: PathBuf,
    /// Images per row.
    #[arg(long, default_value_t = 8)]
    pub count: usize,
    /// Output file (default <dir>/samples.png).
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// How the data folder is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// One-vs-all class folders, e.g. CIFAR-10.
    Objects,
    /// An MVTec AD category.
    Textures,
}

/// What `config.json` holds: the configuration and where the data came from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunInfo {
    pub config: MlsadConfig,
    pub data: PathBuf,
    pub class: Option<String>,
    pub layout: Layout,
    pub limit_train: Option<usize>,
    pub limit_test: Option<usize>,
}

fn detect_layout(data: &Path) -> Result<Layout> {
    if data.join("train").join("good").is_dir() {
        Ok(Layout::Textures)
    } else if data.join("train").is_dir() && data.join("test").is_dir() {
        Ok(Layout::Objects)
    } else {
        Err(Error::MissingFolder { path: data.join("train") })
    }
}

/// A seeded subset of `n` samples, kept in order.
fn limit(samples: Vec<Sample>, n: Option<usize>, seed: u64) -> Result<Vec<Sample>> {
    let Some(n) = n else { return Ok(samples) };
    if n == 0 {
        return Err(Error::InvalidArgument("a --limit-* of 0 images".into()));
    }
    if n >= samples.len() {
        return Ok(samples);
    }
    let mut idx: Vec<usize> = (0..samples.len()).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut keep = idx[..n].to_vec();
    keep.sort_unstable();
    Ok(keep.into_iter().map(|i| samples[i].clone()).collect())
}

/// (normal training samples, test samples) of a run.
fn samples(info: &RunInfo) -> Result<(Vec<Sample>, Vec<Sample>)> {
    let seed = info.config.seed;
    let split = match info.layout {
        Layout::Objects => {
            let class = info.class.as_deref().ok_or_else(|| {
                Error::InvalidArgument(format!("{} holds class folders: --class names the normal one", info.data.display()))
            })?;
            let (train, test) = cifar10(&info.data)?;
            DataSplit::one_vs_all(&train, &test, class, seed)?
        }
        Layout::Textures => DataSplit::per_category(&MvtecCategory::load(&info.data)?, seed)?,
    };
    // the paper trains on the whole normal training split
    let train = limit(split.full_train(), info.limit_train, seed ^ 0x74_7261_696e)?;
    let test = limit(split.test, info.limit_test, seed ^ 0x7465_7374)?;
    Ok((train, test))
}

fn new_run_info(args: &TrainArgs) -> Result<RunInfo> {
    let layout = detect_layout(&args.data)?;
    let objects = layout == Layout::Objects;
    let image_size = args.image_size.unwrap_or(if objects { 32 } else { 256 });
    let probe = RunInfo {
        config: MlsadConfig {
            levels: args.levels.clone(),
            image_size,
            channels: 3,
            crop: args.crop.unwrap_or(if objects { image_size } else { 32 }),
            epochs: args.epochs.unwrap_or(if objects { 250 } else { 100 }),
            batch: args.batch,
            lr: args.lr,
            weight_decay: args.weight_decay.unwrap_or(if objects { 1e-4 } else { 1e-3 }),
            milestones: args.milestones.clone().unwrap_or(if objects { vec![100, 200] } else { vec![50, 75] }),
            gamma: args.gamma,
            num_blocks: args.num_blocks.unwrap_or(if objects { 2 } else { 1 }),
            dropout: args.dropout,
            noise_variance: 0.05,
            alpha1: args.alpha1,
            alpha2: args.alpha2,
            width: args.width,
            gan_epochs: args.gan_epochs.unwrap_or(300),
            gan_batch: args.gan_batch,
            gan_width: args.gan_width,
            entropy: !args.no_entropy,
            steps_per_epoch: args.steps_per_epoch,
            seed: args.seed,
        },
        data: args.data.clone(),
        class: args.class.clone(),
        layout,
        limit_train: args.limit_train,
        limit_test: args.limit_test,
    };
    Ok(probe)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::InvalidArgument(format!("{}: {e}", path.display())))
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let json = serde_json::to_string_pretty(value).map_err(|e| Error::InvalidArgument(format!("{}: {e}", path.display())))?;
    crate::checkpoint::write_atomically(path, json.as_bytes())
}

#[derive(Serialize)]
struct Metrics<'a> {
    #[serde(flatten)]
    evaluation: &'a Evaluation,
    seed: u64,
    data: &'a Path,
    class: Option<&'a str>,
    layout: Layout,
    levels: &'a [usize],
    adapter: &'a str,
    train_images: usize,
    seconds: f64,
    config: &'a MlsadConfig,
}

#[allow(clippy::too_many_arguments)]
fn evaluate_run(ctx: &Context, info: &RunInfo, dir: &Path, model: &[crate::mlsad::detector::Detector], test: &[Sample], train_images: usize, eval_batch: usize, progress: bool, started: Instant, out: &mut dyn Write) -> Result<()> {
    let io = |e| Error::io("<stdout>", e);
    let batch = if info.config.image_size > 64 { eval_batch.min(8) } else { eval_batch };
    let ev = evaluate(ctx, &info.config, model, test, batch, progress)?;
    let levels: Vec<String> = ev.level_auroc.iter().map(|(s, a)| format!("A^{s} {a:.4}")).collect();
    writeln!(out, "image AUROC {:.4} ({} test images, {} anomalous); per level: {}", ev.image_auroc, ev.test_images, ev.test_anomalies, levels.join(", ")).map_err(io)?;
    if let (Some(p), Some(a)) = (ev.pixel_auroc, ev.aupro) {
        writeln!(out, "pixel AUROC {p:.4}, AUPRO {a:.4}").map_err(io)?;
    }
    let metrics = Metrics {
        evaluation: &ev,
        seed: info.config.seed,
        data: &info.data,
        class: info.class.as_deref(),
        layout: info.layout,
        levels: &info.config.levels,
        adapter: ctx.adapter_name(),
        train_images,
        seconds: started.elapsed().as_secs_f64(),
        config: &info.config,
    };
    let path = dir.join(METRICS_FILE);
    write_json(&path, &metrics)?;
    writeln!(out, "wrote {}", path.display()).map_err(io)?;
    Ok(())
}

fn train(args: &TrainArgs, out: &mut dyn Write) -> Result<()> {
    let io = |e| Error::io("<stdout>", e);
    let started = Instant::now();
    let config_path = args.out.join(CONFIG_FILE);
    let info = if args.resume {
        if !config_path.is_file() {
            return Err(Error::MissingFile { path: config_path, what: "the run configuration --resume continues".into() });
        }
        let mut info: RunInfo = read_json(&config_path)?;
        if let Some(e) = args.epochs {
            info.config.epochs = e;
        }
        if let Some(e) = args.gan_epochs {
            info.config.gan_epochs = e;
        }
        info
    } else {
        if config_path.exists() {
            return Err(Error::InvalidArgument(format!(
                "{} exists: pass --resume to continue that run, or choose a new --out",
                config_path.display()
            )));
        }
        new_run_info(args)?
    };
    let (train_samples, test) = samples(&info)?;
    let first = train_samples.first().ok_or_else(|| Error::InvalidArgument("no normal training images".into()))?;
    let mut info = info;
    if !args.resume {
        info.config.channels = first.load()?.channels;
    }
    info.config.validate()?;
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    write_json(&config_path, &info)?;
    let ctx = Context::new()?;
    writeln!(out, "adapter: {}", ctx.adapter_name()).map_err(io)?;
    let data = load_images(&train_samples, info.config.channels, info.config.image_size)?;
    writeln!(
        out,
        "MLSAD on {} ({}): {} normal training images, {} test images; levels {:?}, PatchGAN levels {:?}",
        info.data.display(),
        info.class.as_deref().unwrap_or("textures"),
        data.n,
        test.len(),
        info.config.levels,
        info.config.gan_levels()
    )
    .map_err(io)?;
    let opts = RunOptions { dir: &args.out, progress: !args.no_progress };
    let model = train_all(&ctx, &info.config, &data, &opts, out)?;
    evaluate_run(&ctx, &info, &args.out, &model.detectors, &test, data.n, args.eval_batch, !args.no_progress, started, out)
}

fn eval(args: &RunArgs, out: &mut dyn Write) -> Result<()> {
    let started = Instant::now();
    let info: RunInfo = read_json(&args.dir.join(CONFIG_FILE))?;
    let (train_samples, test) = samples(&info)?;
    let ctx = Context::new()?;
    let model = load_model(&ctx, &info.config, &args.dir)?;
    evaluate_run(&ctx, &info, &args.dir, &model.detectors, &test, train_samples.len(), args.eval_batch, !args.no_progress, started, out)
}

/// Lays out rows of images (`[-1, 1]`, one shape) with a 2-pixel gap, as a [0, 1] image.
pub fn grid(rows: &[Images]) -> Result<ImageTensor> {
    let first = rows.first().ok_or_else(|| Error::InvalidArgument("a grid of no rows".into()))?;
    let (c, h, w) = (first.channels, first.height, first.width);
    let cols = rows.iter().map(|r| r.n).max().unwrap_or(0);
    let gap = 2;
    let (gh, gw) = (rows.len() * (h + gap) + gap, cols * (w + gap) + gap);
    let mut img = ImageTensor::zeros(c, gh, gw);
    img.data.iter_mut().for_each(|v| *v = 1.0);
    for (r, row) in rows.iter().enumerate() {
        if (row.channels, row.height, row.width) != (c, h, w) {
            return Err(Error::InvalidArgument("grid rows of different image shapes".into()));
        }
        for i in 0..row.n {
            let src = row.image(i);
            for ch in 0..c {
                for y in 0..h {
                    for x in 0..w {
                        let (gy, gx) = (gap + r * (h + gap) + y, gap + i * (w + gap) + x);
                        img.data[(ch * gh + gy) * gw + gx] = (src[(ch * h + y) * w + x] + 1.0) / 2.0;
                    }
                }
            }
        }
    }
    Ok(img)
}

fn samples_grid(args: &SamplesArgs, out: &mut dyn Write) -> Result<()> {
    let io = |e| Error::io("<stdout>", e);
    if args.count == 0 {
        return Err(Error::InvalidArgument("--count must be at least 1".into()));
    }
    let info: RunInfo = read_json(&args.dir.join(CONFIG_FILE))?;
    let cfg = &info.config;
    let (train_samples, _) = samples(&info)?;
    let ctx = Context::new()?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x73_616d_706c);
    let mut picked = train_samples.clone();
    picked.shuffle(&mut rng);
    picked.truncate(args.count.max(32).min(train_samples.len()));
    let normals = load_images(&picked, cfg.channels, cfg.image_size)?;
    let shown: Vec<usize> = (0..args.count.min(normals.n)).collect();
    let mut rows = vec![normals.select(&shown)];
    let mut names = vec!["normal".to_string()];
    for w in cfg.gan_levels().into_iter().rev() {
        let gan = load_gan(&ctx, cfg, &args.dir, w)?;
        rows.push(generate(&gan.generator, &ctx, args.count, &mut rng)?);
        names.push(format!("level {w}"));
    }
    // levels 1 and 0: shuffle a batch of (up to) 32 normals, uniform noise
    rows.push(MrfSource::Shuffle.sample(&normals, &mut rng)?.select(&shown));
    names.push("level 1".into());
    rows.push(MrfSource::Uniform.sample(&normals.select(&shown), &mut rng)?);
    names.push("level 0".into());
    let path = args.output.clone().unwrap_or_else(|| args.dir.join(SAMPLES_FILE));
    grid(&rows)?.save_png(&path)?;
    writeln!(out, "wrote {} (rows: {})", path.display(), names.join(", ")).map_err(io)?;
    Ok(())
}

pub fn run(args: &MlsadArgs, out: &mut dyn Write) -> Result<()> {
    match &args.command {
        MlsadCommand::Train(a) => train(a, out),
        MlsadCommand::Eval(a) => eval(a, out),
        MlsadCommand::Samples(a) => samples_grid(a, out),
    }
}
