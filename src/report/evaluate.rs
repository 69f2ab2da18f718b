//! Scores a trained, calibrated model folder on the test split of its run (or of another
//! MVTec-layout folder) and gathers what the report shows. The model folder is the one
//! `oddity predict` reads ([`crate::predict::Predictor`]): the checkpoint, the calibrator and the
//! normal calibration scores; the test split comes from the run info stored in the checkpoint
//! ([`TrainArgs::from_stored`] and [`run_data`], the code paths of `oddity train`).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Example, ReportData};
use crate::calibration::sigmoid;
use crate::checkpoint::Checkpoint;
use crate::cli::train::{run_data, DataArg, TrainArgs, CHECKPOINT_FILE};
use crate::data::batches::resize_mask;
use crate::data::transforms::resize;
use crate::data::Sample;
use crate::error::{Error, Result};
use crate::kernels::Context;
use crate::predict::Predictor;
use crate::train::{evaluate, StoredConfig};

/// Settings of [`evaluate_model_dir`].
#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// Target false-positive rate of the decision threshold.
    pub fpr: f64,
    /// How many of the most anomalous test images to show.
    pub top: usize,
    /// Images per evaluation batch.
    pub batch: usize,
    /// Another MVTec-layout folder and category to test on instead of the run's own.
    pub data: Option<(PathBuf, String)>,
    /// Describes the data in the report (default: the data folder and class).
    pub data_label: Option<String>,
}

/// The `q` quantile (0..=1, nearest rank) of `values`; 0 for none.
pub fn quantile(values: &[f32], q: f64) -> f32 {
    let mut v: Vec<f32> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f32::total_cmp);
    v[((q.clamp(0.0, 1.0) * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)]
}

/// The name of a test sample in the report: its folder (defect type) and file name.
fn sample_name(s: &Sample) -> String {
    match s.path() {
        Some(p) => {
            let parent = p.parent().and_then(Path::file_name).map(|n| n.to_string_lossy().into_owned());
            let file = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            parent.map_or(file.clone(), |d| format!("{d}/{file}"))
        }
        None => s.describe(),
    }
}

/// Scores the model in `model_dir` on its test split and returns the report's data.
pub fn evaluate_model_dir(ctx: &Context, model_dir: &Path, opts: &ReportOptions, log: &mut dyn Write) -> Result<ReportData> {
    let io = |e| Error::io("<log>", e);
    let predictor = Predictor::load(ctx, model_dir, opts.fpr)?;
    let ck_path = model_dir.join(CHECKPOINT_FILE);
    let stored = StoredConfig::from_checkpoint(&Checkpoint::load(&ck_path)?, &ck_path)?;
    let mut args = TrainArgs::from_stored(&stored, model_dir)?;
    if let Some((dir, class)) = &opts.data {
        args.data = DataArg::Mvtec(dir.clone());
        args.class = class.clone();
    }
    let test = run_data(&args)?.test;
    let model = &predictor.model;
    writeln!(log, "evaluating {} on {} test images of {} ({})", model.architecture, test.len(), args.data, args.class).map_err(io)?;
    let ev = evaluate(ctx, model, &test, opts.batch)?;
    let probs_before: Vec<f64> = ev.logits.iter().map(|&z| sigmoid(z)).collect();
    let probs_after = predictor.calibrator.apply(&ev.logits);
    let (pixel_auroc, aupro) = match &ev.maps {
        Some(m) => (Some(m.pixel_auroc()?), Some(m.aupro()?)),
        None => (None, None),
    };
    let mut examples = Vec::new();
    let mut heat_range = (0.0, 1.0);
    if let Some(maps) = &ev.maps {
        let plane = maps.height * maps.width;
        // The colour scale: from a low to a high quantile of the normal test images' pixel
        // scores, so normal texture stays cool and only clearly higher scores turn red.
        let normal_pixels: Vec<f32> = ev
            .labels
            .iter()
            .enumerate()
            .filter(|(_, &l)| l == 0)
            .flat_map(|(i, _)| maps.scores[i * plane..(i + 1) * plane].iter().copied())
            .collect();
        let source = if normal_pixels.is_empty() { &maps.scores } else { &normal_pixels };
        heat_range = (quantile(source, 0.005), quantile(source, 0.999));
        let mut order: Vec<usize> = (0..ev.scores.len()).collect();
        order.sort_by(|&a, &b| ev.scores[b].total_cmp(&ev.scores[a]).then(a.cmp(&b)));
        for &i in order.iter().take(opts.top) {
            let (image, mask) = test[i].load_with_mask()?;
            examples.push(Example {
                name: sample_name(&test[i]),
                label: ev.labels[i],
                score: ev.scores[i],
                probability: probs_after[i],
                image: resize(&image, maps.height, maps.width),
                heatmap: maps.scores[i * plane..(i + 1) * plane].to_vec(),
                mask: mask.map(|m| resize_mask(&m, maps.height, maps.width)),
            });
        }
    }
    let calibration = predictor.calibrator.method();
    Ok(ReportData {
        data: opts.data_label.clone().unwrap_or_else(|| format!("{} ({})", args.data, args.class)),
        model: model.architecture.clone(),
        adapter: ctx.adapter_name().to_string(),
        calibration: format!("{calibration:?}").to_lowercase(),
        seed: stored.train.seed,
        scores: ev.scores,
        labels: ev.labels,
        probs_before,
        probs_after,
        calibration_scores: predictor.calibration_scores.clone(),
        fpr: opts.fpr,
        pixel_auroc,
        aupro,
        examples,
        heat_range,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_is_nearest_rank_and_ignores_non_finite_values() {
        let v = [3.0, 1.0, f32::NAN, 2.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 1.0), 5.0);
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&[], 0.9), 0.0);
    }
}
