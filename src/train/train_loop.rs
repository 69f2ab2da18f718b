//! The training loop: epochs of Adam steps on an [`EpochBatches`] source, a checkpoint after
//! every epoch, resume, and a stop on a non-finite loss or parameter.

use std::io::Write;
use std::path::PathBuf;

use super::{EpochBatches, Model, Progress, StoredConfig, TrainConfig};
use crate::checkpoint::{Checkpoint, HostTensor};
use crate::error::{Error, Result};
use crate::kernels::{concat, Tensor};
use crate::nn::{self, Module};
use crate::optim::{restore_state, save_state, Adam, AdamConfig, MultiStepLr, Optimizer};

/// Where the checkpoint goes and what the run records besides the optimisation settings.
pub struct FitOptions {
    /// The checkpoint file, rewritten (atomically) after every epoch.
    pub checkpoint: PathBuf,
    /// The data side of the run (stored in the checkpoint; a resume must match it).
    pub run: serde_json::Value,
    /// Show the progress bar (on a terminal).
    pub progress: bool,
}

/// What a finished [`fit`] reports.
#[derive(Clone, Debug, PartialEq)]
pub struct FitSummary {
    /// Epochs done in total (including those before a resume).
    pub epochs_done: usize,
    /// The epoch a resumed run started at (0 for a fresh run).
    pub started_at: usize,
    /// Mean loss of each epoch this call ran.
    pub epoch_losses: Vec<f32>,
    /// Training throughput of this call; `None` when it trained no step (a resumed run that was
    /// already complete, or no epochs asked), where a rate would be meaningless.
    pub images_per_second: Option<f64>,
}

/// Trains `model` up to `config.epochs`. With `resume`, the checkpoint the model was loaded from
/// ([`Model::from_checkpoint`]): its optimizer state is restored and training continues after its
/// last completed epoch; its settings must match `config` (but for `epochs`) and `opts.run`.
pub fn fit(
    model: &Model,
    batches: &mut dyn EpochBatches,
    config: &TrainConfig,
    resume: Option<&Checkpoint>,
    opts: &FitOptions,
    out: &mut dyn Write,
) -> Result<FitSummary> {
    config.validate()?;
    if config.loss.supervised() != model.objective.supervised() || !model.spec.fits(config.loss) {
        return Err(Error::InvalidArgument(format!(
            "the {} loss does not fit the model's objective {:?}",
            config.loss.name(),
            model.objective
        )));
    }
    let adam = AdamConfig { lr: config.lr as f32, weight_decay: config.weight_decay, ..Default::default() };
    let mut opt = Adam::new(nn::parameters(&model.net), adam)?;
    let schedule = MultiStepLr::new(config.lr, &config.milestones, config.gamma)?;
    let mut start = 0;
    if let Some(ck) = resume {
        let stored = StoredConfig::from_checkpoint(ck, &opts.checkpoint)?;
        let mut conflicts = config.resume_conflicts(&stored.train);
        if stored.run != opts.run {
            conflicts.push(format!("run: checkpoint {}, now {}", stored.run, opts.run));
        }
        if !conflicts.is_empty() {
            return Err(Error::Checkpoint {
                path: opts.checkpoint.clone(),
                message: format!("cannot resume with different settings: {}", conflicts.join("; ")),
            });
        }
        restore_state(&mut opt, ck)?;
        start = stored.epochs_done;
    }
    let steps = batches.steps_per_epoch();
    let io = |e| Error::io("<output>", e);
    let mut progress = Progress::new(start, config.epochs, steps, opts.progress);
    let mut epoch_losses = Vec::new();
    model.net.set_training(true);
    for epoch in start..config.epochs {
        let lr = schedule.apply(&mut opt, epoch as u64)?;
        let mut sum = 0f64;
        let mut count = 0usize;
        // Loss tensors of the steps since the last readback, with their step index.
        let mut pending: Vec<(usize, Tensor)> = Vec::new();
        let mut step = 0usize;
        let mut check = |pending: &mut Vec<(usize, Tensor)>, progress: &Progress| -> Result<()> {
            let Some(&(last, _)) = pending.last() else { return Ok(()) };
            let values = read_losses(pending)?;
            for ((s, _), v) in pending.iter().zip(&values) {
                if !v.is_finite() {
                    return Err(Error::Diverged {
                        epoch: epoch + 1,
                        step: s + 1,
                        what: format!("the loss is {v}"),
                        checkpoint: opts.checkpoint.clone(),
                    });
                }
                sum += *v as f64;
                count += 1;
            }
            progress.report(epoch, last, *values.last().unwrap_or(&f32::NAN));
            pending.clear();
            Ok(())
        };
        for batch in batches.epoch(epoch)? {
            let batch = batch?;
            opt.zero_grad();
            let loss = model.batch_loss(&batch)?;
            loss.backward()?;
            opt.step()?;
            // Submit the step (no wait): buffers freed while recording it become reusable by the
            // next step's uploads. Without this the pool would keep every step's buffers until the
            // next readback, `readback_every` steps later.
            model.ctx.flush();
            // Keep only the value: the graph is freed here.
            pending.push((step, loss.value().clone()));
            progress.step(batch.len());
            if pending.len() >= config.readback_every {
                check(&mut pending, &progress)?;
            }
            step += 1;
        }
        check(&mut pending, &progress)?;
        if step == 0 {
            return Err(Error::InvalidArgument(format!("epoch {} had no batches", epoch + 1)));
        }
        let mean = (sum / count.max(1) as f64) as f32;
        epoch_losses.push(mean);
        save(model, &opt, config, epoch + 1, step, opts)?;
        let line = format!(
            "epoch {:>3}/{}  loss {mean:.6}  lr {lr:.1e}  {:.0} img/s",
            epoch + 1,
            config.epochs,
            progress.images_per_second()
        );
        progress.suspend(|| writeln!(out, "{line}")).map_err(io)?;
    }
    progress.finish();
    if start >= config.epochs && resume.is_none() {
        // No training asked (epochs = 0): still leave a checkpoint of the initial model.
        save(model, &opt, config, 0, 0, opts)?;
    }
    Ok(FitSummary {
        epochs_done: config.epochs.max(start),
        started_at: start,
        epoch_losses,
        images_per_second: (progress.images() > 0).then(|| progress.images_per_second()),
    })
}

/// One readback for all pending one-element losses: concatenated on the GPU, read once.
fn read_losses(pending: &[(usize, Tensor)]) -> Result<Vec<f32>> {
    let parts: Vec<Tensor> = pending.iter().map(|(_, t)| t.reshape(&[1, 1])).collect::<crate::kernels::Result<_>>()?;
    let refs: Vec<&Tensor> = parts.iter().collect();
    Ok(concat::concat(&refs)?.to_vec()?)
}

/// Writes the checkpoint after `epochs_done` epochs; a non-finite parameter stops training
/// (without writing) with an error naming it.
fn save(model: &Model, opt: &Adam, config: &TrainConfig, epochs_done: usize, steps: usize, opts: &FitOptions) -> Result<()> {
    let stored = StoredConfig { train: config.clone(), epochs_done, run: opts.run.clone() };
    let meta_config = serde_json::to_value(&stored).map_err(|e| Error::InvalidArgument(format!("config: {e}")))?;
    let mut ck = Checkpoint::new(model.architecture.clone(), config.seed, meta_config);
    let mut named: Vec<(String, Tensor)> =
        nn::parameters(&model.net).into_iter().map(|(n, v)| (n, v.value().clone())).collect();
    named.extend(nn::buffers(&model.net));
    for (name, t) in named {
        let data = t.to_vec()?;
        if let Some(bad) = data.iter().find(|v| !v.is_finite()) {
            return Err(Error::Diverged {
                epoch: epochs_done,
                step: steps,
                what: format!("{name} holds {bad} after the epoch's last step"),
                checkpoint: opts.checkpoint.clone(),
            });
        }
        ck.insert(name, HostTensor::new(t.shape().to_vec(), data)?);
    }
    for (name, t) in model.extra_tensors()? {
        ck.insert(name, t);
    }
    save_state(opt, &mut ck)?;
    if let Some(dir) = opts.checkpoint.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    ck.save(&opts.checkpoint)
}
