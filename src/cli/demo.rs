//! `oddity demo`: the whole pipeline on generated data, nothing to download. Normal images are
//! near-horizontal sine gratings with noise; test anomalies are spectral 1/f^α images
//! (thesis §3.4). A Deep SVDD LeNet trains on the normal images only, scores the test set, and
//! the run writes `results.json` (seed, config, AUROC) and `model.safetensors` to `--out`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::checkpoint::{CheckpointMeta, HostTensor};
use crate::data::ImageTensor;
use crate::error::{Error, Result};
use crate::kernels::{Context, Tensor};
use crate::metrics::auroc;
use crate::models::{deep_svdd, lenet};
use crate::nn::{self, Init, Module};
use crate::optim::{Adam, AdamConfig, Optimizer};
use crate::synth::spectral::spectral_image;

const SIDE: usize = 28;

#[derive(Debug, Args, Clone, Serialize)]
pub struct DemoArgs {
    /// Seed of the data, the initialisation and the training order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Normal training images.
    #[arg(long, default_value_t = 512)]
    pub train: usize,
    /// Test images of each kind (normal and anomalous).
    #[arg(long, default_value_t = 256)]
    pub test: usize,
    #[arg(long, default_value_t = 8)]
    pub epochs: usize,
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f32,
    /// Folder for results.json and model.safetensors.
    #[arg(long, default_value = "runs/demo")]
    pub out: PathBuf,
}

/// A grating within ±20° of horizontal, random frequency and phase, plus noise, in [0, 1].
fn grating(rng: &mut ChaCha8Rng) -> ImageTensor {
    let angle = rng.random_range(-20f64..20.0).to_radians();
    let period = rng.random_range(4.0..8.0);
    let phase = rng.random_range(0.0..std::f64::consts::TAU);
    let mut img = ImageTensor::zeros(1, SIDE, SIDE);
    for y in 0..SIDE {
        for x in 0..SIDE {
            let t = y as f64 * angle.cos() + x as f64 * angle.sin();
            let v = 0.5 + 0.4 * (std::f64::consts::TAU * t / period + phase).sin() + rng.random_range(-0.1..0.1);
            img.data[y * SIDE + x] = v.clamp(0.0, 1.0) as f32;
        }
    }
    img
}

fn to_batches(ctx: &Context, images: &[ImageTensor], batch: usize) -> Result<Vec<Tensor>> {
    images
        .chunks(batch)
        .map(|chunk| {
            let data: Vec<f32> = chunk.iter().flat_map(|i| i.data.iter().copied()).collect();
            Ok(Tensor::from_slice(ctx, &[chunk.len(), 1, SIDE, SIDE], &data)?)
        })
        .collect()
}

#[derive(Serialize)]
struct Results<'a> {
    seed: u64,
    config: &'a DemoArgs,
    adapter: String,
    model: &'static str,
    normal: &'static str,
    anomalies: &'static str,
    auroc: f64,
    final_loss: f32,
}

pub fn run(args: &DemoArgs, out: &mut dyn Write) -> Result<()> {
    if args.batch == 0 || args.train < 2 || args.test == 0 {
        return Err(Error::InvalidArgument(format!(
            "demo needs --batch > 0, --train >= 2 and --test > 0 (got {}, {}, {})",
            args.batch, args.train, args.test
        )));
    }
    let io = |e| Error::io("<stdout>", e);
    let ctx = Context::new()?;
    writeln!(out, "adapter: {}", ctx.adapter_name()).map_err(io)?;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let train: Vec<ImageTensor> = (0..args.train).map(|_| grating(&mut rng)).collect();
    let test_normal: Vec<ImageTensor> = (0..args.test).map(|_| grating(&mut rng)).collect();
    let test_anomalous =
        (0..args.test).map(|_| spectral_image(1, SIDE, SIDE, &mut rng)).collect::<Result<Vec<ImageTensor>>>()?;

    let net = lenet::fmnist_lenet(&mut Init::new(&ctx, args.seed))?;
    let train_batches = to_batches(&ctx, &train, args.batch)?;
    let centre = deep_svdd::centre(&net, &train_batches)?;
    let c = deep_svdd::centre_var(&ctx, &centre)?;
    let mut opt = Adam::new(nn::parameters(&net), AdamConfig { lr: args.lr, weight_decay: 1e-6, ..Default::default() })?;
    let mut final_loss = f32::NAN;
    for epoch in 0..args.epochs {
        let mut order: Vec<usize> = (0..train_batches.len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        let mut losses = Vec::new();
        for &b in &order {
            if train_batches[b].shape()[0] < 2 {
                continue; // batch norm needs two samples
            }
            opt.zero_grad();
            let loss = deep_svdd::loss(&net.forward(&crate::autograd::Var::constant(train_batches[b].clone()))?, &c)?;
            loss.backward()?;
            opt.step()?;
            losses.push(loss);
        }
        // One readback per epoch: the steps before it ran as recorded.
        let mean: f32 = losses.iter().map(|l| l.value().item()).sum::<crate::kernels::Result<f32>>()? / losses.len().max(1) as f32;
        final_loss = mean;
        writeln!(out, "epoch {:>3}  loss {mean:.6}", epoch + 1).map_err(io)?;
    }

    net.set_training(false);
    let mut scores = Vec::new();
    let mut labels = Vec::new();
    for (images, label) in [(&test_normal, 0u8), (&test_anomalous, 1u8)] {
        for x in to_batches(&ctx, images, args.batch)? {
            scores.extend(deep_svdd::scores(&net, &c, &x)?.into_iter().map(f64::from));
            labels.extend(std::iter::repeat_n(label, x.shape()[0]));
        }
    }
    let auroc = auroc(&scores, &labels)?;
    writeln!(out, "test AUROC (gratings vs spectral anomalies): {auroc:.4}").map_err(io)?;

    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;
    let meta = CheckpointMeta {
        architecture: "fmnist-lenet".into(),
        seed: args.seed,
        config: serde_json::to_value(args).map_err(|e| Error::InvalidArgument(e.to_string()))?,
        format_version: 1,
    };
    let centre_tensor = vec![("svdd.center".to_string(), HostTensor::new(vec![centre.len()], centre)?)];
    nn::save_checkpoint(&net, &centre_tensor, meta, &args.out.join("model.safetensors"))?;
    let results = Results {
        seed: args.seed,
        config: args,
        adapter: ctx.adapter_name().to_string(),
        model: "deep-svdd fmnist-lenet",
        normal: "sine gratings within 20 degrees of horizontal",
        anomalies: "spectral 1/f^alpha images",
        auroc,
        final_loss,
    };
    let path = args.out.join("results.json");
    let json = serde_json::to_string_pretty(&results).map_err(|e| Error::InvalidArgument(e.to_string()))?;
    std::fs::write(&path, json).map_err(|e| Error::io(&path, e))?;
    writeln!(out, "wrote {} and {}", path.display(), args.out.join("model.safetensors").display()).map_err(io)?;
    Ok(())
}
