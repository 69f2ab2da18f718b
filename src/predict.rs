//! Predictions a user can act on (issue 9): for each image the raw anomaly score, the calibrated
//! probability of being anomalous (thesis §3.2), a conformal p-value against the calibration
//! split's normal scores, and a decision at a threshold chosen on normal data alone for a target
//! false-positive rate; heatmap overlays for models with maps.
//!
//! A model folder holds three files:
//! - [`CHECKPOINT_FILE`] (`checkpoint.safetensors`): written by `oddity train`;
//! - [`CALIBRATOR_FILE`] (`calibration.json`): a [`Calibrator`] ([`Calibrator::save`]);
//! - [`CALIBRATION_SCORES_FILE`] (`calibration_scores.json`): the raw scores of the calibration
//!   split's normal images ([`CalibrationScores`]).
//!
//! [`prepare_model_dir`] writes the last two (`oddity demo` and `oddity calibrate` call it).
//!
//! Conformal p-value of a score `s` against `n` normal calibration scores:
//! `p = (1 + #{s_cal >= s}) / (n + 1)`; under exchangeability `P(p <= α) <= α` for normal images.
//! The threshold for a false-positive rate `α` is the `k`-th smallest calibration score with
//! `k = ceil((1 - α)(n + 1))`, and an image is flagged when its score is above it: the flagged
//! images are exactly those with `p <= α` (up to ties), so the rate on normal data is at most `α`.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::autograd::{no_grad, Var};
use crate::calibration::Calibrator;
use crate::data::batches::{BatchPlan, Prefetcher};
use crate::data::folder::list_images_recursive;
use crate::data::{is_image_file, ImageTensor, Sample};
use crate::error::{Error, Result};
use crate::kernels::{Context, Tensor};
use crate::nn::Module;
use crate::train::{load_model, Model};

/// The checkpoint inside a model folder (as `oddity train` writes it).
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// The image-level calibrator inside a model folder.
pub const CALIBRATOR_FILE: &str = "calibration.json";
/// The calibration split's normal scores inside a model folder.
pub const CALIBRATION_SCORES_FILE: &str = "calibration_scores.json";

const SCORES_FORMAT: &str = "oddity-calibration-scores";
const SCORES_VERSION: u32 = 1;

/// What [`CALIBRATION_SCORES_FILE`] holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationScores {
    pub format: String,
    pub version: u32,
    /// The architecture of the model that scored them (a mismatch with the checkpoint is an error).
    pub architecture: String,
    /// Raw anomaly scores of the calibration split's normal images (higher = more anomalous).
    pub scores: Vec<f64>,
    /// A high quantile (99.9%) of the normal images' pixel scores: the top of the heatmap colour
    /// scale, so that colours mean the same in every image. `None` for image-level models.
    pub pixel_scale: Option<f64>,
    /// The seed of the calibration split.
    pub seed: u64,
}

impl CalibrationScores {
    pub fn new(architecture: &str, scores: Vec<f64>, pixel_scale: Option<f64>, seed: u64) -> CalibrationScores {
        CalibrationScores {
            format: SCORES_FORMAT.into(),
            version: SCORES_VERSION,
            architecture: architecture.into(),
            scores,
            pixel_scale,
            seed,
        }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        self.validate(path)?;
        let json = serde_json::to_string_pretty(self)
            .map_err(|e| Error::InvalidArgument(format!("cannot serialise {}: {e}", path.display())))?;
        // Temp file + rename: a killed run never leaves a half-written scores file.
        crate::calibration::write_atomically(path, json.as_bytes())
    }

    /// Reads a file written by [`CalibrationScores::save`]; errors name the path and the problem.
    pub fn load(path: &Path) -> Result<CalibrationScores> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let file: CalibrationScores = serde_json::from_str(&text).map_err(|e| Error::Checkpoint {
            path: path.to_path_buf(),
            message: format!("not a calibration scores file: {e}"),
        })?;
        file.validate(path)?;
        Ok(file)
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let bad = |message: String| Error::Checkpoint { path: path.to_path_buf(), message };
        if self.format != SCORES_FORMAT || self.version != SCORES_VERSION {
            return Err(bad(format!(
                "format {} version {} (expected {SCORES_FORMAT} version {SCORES_VERSION})",
                self.format, self.version
            )));
        }
        if self.scores.is_empty() {
            return Err(bad("no calibration scores".into()));
        }
        if let Some((i, s)) = self.scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
            return Err(bad(format!("calibration score {i} is {s}")));
        }
        if let Some(p) = self.pixel_scale {
            if !(p.is_finite() && p > 0.0) {
                return Err(bad(format!("pixel_scale is {p}, expected a positive number")));
            }
        }
        Ok(())
    }
}

/// Writes the calibrator and the calibration split's normal scores into `model_dir` (beside
/// `checkpoint.safetensors`), the two files `oddity predict` reads besides the checkpoint.
pub fn prepare_model_dir(model_dir: &Path, scores: &CalibrationScores, calibrator: &Calibrator) -> Result<()> {
    std::fs::create_dir_all(model_dir).map_err(|e| Error::io(model_dir, e))?;
    scores.save(&model_dir.join(CALIBRATION_SCORES_FILE))?;
    calibrator.save(&model_dir.join(CALIBRATOR_FILE))
}

/// The conformal p-value `(1 + #{s_cal >= s}) / (n + 1)`; `sorted` ascending.
pub fn conformal_p_value(sorted: &[f64], s: f64) -> f64 {
    let below = sorted.partition_point(|&c| c < s);
    (1 + sorted.len() - below) as f64 / (sorted.len() + 1) as f64
}

/// The score threshold for a false-positive rate `fpr` on normal data: the
/// `ceil((1 - fpr)(n + 1))`-th smallest of the `sorted` (ascending) calibration scores. Flag
/// scores strictly above it. Errors when `fpr` is outside (0, 1) or there are too few scores to
/// reach it (at least `1/fpr - 1`).
pub fn fpr_threshold(sorted: &[f64], fpr: f64) -> Result<f64> {
    if !(fpr > 0.0 && fpr < 1.0) {
        return Err(Error::InvalidArgument(format!("--fpr must be in (0, 1), got {fpr}")));
    }
    let n = sorted.len();
    // The small epsilon keeps (1 - 0.01) * 100 = 99.00000000000001 from rounding up to 100.
    let k = (((1.0 - fpr) * (n + 1) as f64) - 1e-9).ceil() as usize;
    if k == 0 || k > n {
        return Err(Error::InvalidArgument(format!(
            "--fpr {fpr} needs at least {} calibration normal scores, the model folder has {n}; \
             use a larger --fpr or train with a larger --calibration-fraction",
            (1.0 / fpr - 1.0).ceil() as usize
        )));
    }
    Ok(sorted[k - 1])
}

/// The three files of a model folder, each checked to exist.
pub struct ModelFiles {
    pub checkpoint: PathBuf,
    pub calibrator: PathBuf,
    pub calibration_scores: PathBuf,
}

impl ModelFiles {
    /// The files of `model_dir`; a missing one is an error naming it and the command that writes
    /// it. Cheap (no GPU): call it before opening a [`Context`].
    pub fn check(model_dir: &Path) -> Result<ModelFiles> {
        if !model_dir.is_dir() {
            return Err(Error::MissingFolder { path: model_dir.to_path_buf() });
        }
        let checkpoint = require_file(model_dir.join(CHECKPOINT_FILE), "`oddity train --out DIR` or `oddity demo`")?;
        let made_by = "`oddity calibrate` or `oddity demo` (predict::prepare_model_dir)";
        let calibrator = require_file(model_dir.join(CALIBRATOR_FILE), made_by)?;
        let calibration_scores = require_file(model_dir.join(CALIBRATION_SCORES_FILE), made_by)?;
        Ok(ModelFiles { checkpoint, calibrator, calibration_scores })
    }
}

/// A loaded model folder, ready to score images.
pub struct Predictor {
    pub model: Model,
    pub calibrator: Calibrator,
    /// Calibration normal scores, ascending.
    pub calibration_scores: Vec<f64>,
    pub pixel_scale: Option<f64>,
    pub fpr: f64,
    pub threshold: f64,
}

/// A missing model-folder file, naming it and the command that writes it.
fn require_file(path: PathBuf, made_by: &str) -> Result<PathBuf> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::MissingFile { path, what: format!("written by {made_by}") })
    }
}

impl Predictor {
    /// Loads `model_dir`'s checkpoint, calibrator and calibration scores; the threshold is set
    /// for `fpr`.
    pub fn load(ctx: &Context, model_dir: &Path, fpr: f64) -> Result<Predictor> {
        let ModelFiles { checkpoint: ck, calibrator: cal, calibration_scores: cal_scores } = ModelFiles::check(model_dir)?;
        let calibrator = Calibrator::load(&cal)?;
        let scores = CalibrationScores::load(&cal_scores)?;
        let (model, _) = load_model(ctx, &ck)?;
        if scores.architecture != model.architecture {
            return Err(Error::Checkpoint {
                path: cal_scores,
                message: format!(
                    "scores of the network {}, but the checkpoint holds {}",
                    scores.architecture, model.architecture
                ),
            });
        }
        let mut sorted = scores.scores;
        sorted.sort_by(f64::total_cmp);
        let threshold = fpr_threshold(&sorted, fpr)?;
        model.net.set_training(false);
        Ok(Predictor { model, calibrator, calibration_scores: sorted, pixel_scale: scores.pixel_scale, fpr, threshold })
    }

    /// The result for one raw score and logit.
    pub fn judge(&self, score: f64, logit: f64) -> Judgement {
        Judgement {
            score,
            probability: self.calibrator.apply(&[logit])[0],
            p_value: conformal_p_value(&self.calibration_scores, score),
            anomalous: score > self.threshold,
        }
    }
}

/// The verdict on one image.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Judgement {
    pub score: f64,
    /// Calibrated probability of being anomalous.
    pub probability: f64,
    /// Conformal p-value against the calibration normal scores.
    pub p_value: f64,
    /// Score above the threshold for the target false-positive rate.
    pub anomalous: bool,
}

/// One line of the results.
#[derive(Clone, Debug, Serialize)]
pub struct Prediction {
    pub image: PathBuf,
    #[serde(flatten)]
    pub judgement: Judgement,
    /// The heatmap overlay PNG (models with maps).
    pub heatmap: Option<PathBuf>,
}

/// The image files named by `inputs`: files as given, folders searched recursively (sorted).
/// A missing path or a folder without images is an error naming it.
pub fn collect_images(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let found = list_images_recursive(input)?;
            if found.is_empty() {
                return Err(Error::InvalidArgument(format!("{} holds no PNG or JPEG images", input.display())));
            }
            files.extend(found);
        } else if input.is_file() {
            if !is_image_file(input) {
                return Err(Error::InvalidArgument(format!("{} is not a PNG or JPEG image", input.display())));
            }
            files.push(input.clone());
        } else {
            return Err(Error::MissingFile { path: input.clone(), what: "an image or folder to predict on".into() });
        }
    }
    if files.is_empty() {
        return Err(Error::InvalidArgument("no images given".into()));
    }
    Ok(files)
}

/// A blue-to-red colour for `v` in [0, 1] (a "jet"-like map).
pub fn heat_colour(v: f32) -> [f32; 3] {
    let v = v.clamp(0.0, 1.0);
    let f = |c: f32| (1.5 - (4.0 * v - c).abs()).clamp(0.0, 1.0);
    [f(4.0), f(2.0), f(0.0)]
}

/// The image (1 or 3 channels in [0, 1]) in gray with the heat colours of `map` ([h * w], same
/// size) blended in, more where the map is hotter; `map / scale` is clamped to [0, 1].
/// Returns [3, h, w].
pub fn heatmap_overlay(image: &ImageTensor, map: &[f32], scale: f32) -> Result<ImageTensor> {
    let plane = image.height * image.width;
    if map.len() != plane {
        return Err(Error::Shape {
            what: "heatmap".into(),
            expected: format!("{} values ({}x{})", plane, image.height, image.width),
            got: format!("{} values", map.len()),
        });
    }
    let mut out = ImageTensor::zeros(3, image.height, image.width);
    for (i, &m) in map.iter().enumerate() {
        let gray = (0..image.channels).map(|c| image.data[c * plane + i]).sum::<f32>() / image.channels as f32;
        let v = (m / scale).clamp(0.0, 1.0);
        let colour = heat_colour(v);
        let alpha = 0.25 + 0.5 * v;
        for (c, col) in colour.iter().enumerate() {
            out.data[c * plane + i] = (1.0 - alpha) * gray.clamp(0.0, 1.0) + alpha * col;
        }
    }
    Ok(out)
}

/// Where the outputs of [`predict_images`] go.
pub struct PredictOutputs {
    pub dir: PathBuf,
    /// Write heatmap overlays (models with maps).
    pub heatmaps: bool,
}

/// What [`predict_images`] did, in counts: the per-image results are in the files it wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PredictSummary {
    pub images: usize,
    pub flagged: usize,
}

/// Scores `images` in batches of `batch_size` and streams every result to disk: images are
/// decoded on a background thread at most two batches ahead, and each batch's rows go straight
/// to `predictions.csv` and `predictions.json` (heatmaps under `heatmaps/`), so memory stays flat
/// however many images there are (`tests/predict_memory.rs` holds it to a ceiling over 10,000).
/// `predictions.json` is assembled in a temporary file and renamed into place at the end: an
/// interrupted run never leaves a half-written JSON over a good one. `on_batch(done, total)`
/// reports progress.
pub fn predict_images(
    predictor: &Predictor,
    images: &[PathBuf],
    outputs: &PredictOutputs,
    batch_size: usize,
    mut on_batch: impl FnMut(usize, usize),
) -> Result<PredictSummary> {
    let dir = &outputs.dir;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let heat_dir = dir.join("heatmaps");
    let heatmaps = outputs.heatmaps && predictor.model.has_maps();
    if heatmaps {
        std::fs::create_dir_all(&heat_dir).map_err(|e| Error::io(&heat_dir, e))?;
    }
    let csv_path = dir.join("predictions.csv");
    let csv_file = std::fs::File::create(&csv_path).map_err(|e| Error::io(&csv_path, e))?;
    let mut csv = std::io::BufWriter::new(csv_file);
    let csv_err = |e| Error::io(&csv_path, e);
    writeln!(csv, "image,score,probability,p_value,anomalous,heatmap").map_err(csv_err)?;
    let mut json = JsonRows::create(&dir.join("predictions.json"), predictor)?;

    let model = &predictor.model;
    let samples: Vec<Sample> = images.iter().map(|p| Sample::file(p.clone(), 0, "")).collect();
    let mut plan = BatchPlan::evaluation(samples, model.test_pipeline(), batch_size.max(1));
    plan.with_masks = false;
    let ctx = &model.ctx;
    let mut summary = PredictSummary { images: 0, flagged: 0 };
    for batch in Prefetcher::spawn(plan, None, 2)? {
        let batch = batch?;
        let x = Var::constant(Tensor::from_slice(ctx, &batch.shape, &batch.data)?);
        let (est, map) = no_grad(|| model.estimates_and_maps(&x))?;
        let scores = est.score.value().to_vec()?;
        let logits = est.logit.value().to_vec()?;
        let maps = match (&map, heatmaps) {
            (Some(m), true) => Some(m.value().to_vec()?),
            _ => None,
        };
        let [_, _, h, w] = batch.shape;
        for i in 0..batch.len() {
            let index = summary.images;
            let image = &images[index];
            let judgement = predictor.judge(scores[i] as f64, logits[i] as f64);
            let heatmap = match &maps {
                Some(m) => {
                    let plane = &m[i * h * w..(i + 1) * h * w];
                    let scale = predictor
                        .pixel_scale
                        .map(|s| s as f32)
                        .unwrap_or_else(|| plane.iter().copied().fold(f32::MIN_POSITIVE, f32::max));
                    let mut shown = batch.image(i);
                    model.normalization.invert(&mut shown)?;
                    let stem = image.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
                    let path = heat_dir.join(format!("{index:05}_{stem}.png"));
                    heatmap_overlay(&shown, plane, scale)?.save_png(&path)?;
                    Some(path)
                }
                None => None,
            };
            writeln!(
                csv,
                "{},{},{},{},{},{}",
                csv_field(&image.display().to_string()),
                judgement.score,
                judgement.probability,
                judgement.p_value,
                u8::from(judgement.anomalous),
                heatmap.as_ref().map(|p| csv_field(&p.display().to_string())).unwrap_or_default()
            )
            .map_err(csv_err)?;
            json.row(&Prediction { image: image.clone(), judgement, heatmap })?;
            summary.images += 1;
            summary.flagged += usize::from(judgement.anomalous);
        }
        on_batch(summary.images, images.len());
    }
    csv.flush().map_err(csv_err)?;
    json.finish(&summary)?;
    Ok(summary)
}

/// `predictions.json`, written a row at a time into a temporary file beside it and renamed into
/// place by [`JsonRows::finish`]. The counts come after the rows because they are known last.
struct JsonRows {
    path: PathBuf,
    tmp: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
    rows: usize,
}

impl JsonRows {
    fn create(path: &Path, predictor: &Predictor) -> Result<JsonRows> {
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.partial-{}", std::process::id()));
        let file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut rows = JsonRows { path: path.to_path_buf(), tmp, out: std::io::BufWriter::new(file), rows: 0 };
        let head = serde_json::json!({
            "fpr": predictor.fpr,
            "threshold": predictor.threshold,
            "calibration_normal_scores": predictor.calibration_scores.len(),
            "calibrator": predictor.calibrator,
            "architecture": predictor.model.architecture,
        });
        let head = rows.to_json(&head)?;
        // The head object without its closing brace, then the rows array.
        let head = head.trim_end().strip_suffix('}').unwrap_or(&head).to_string();
        rows.write(&format!("{head},\n  \"predictions\": ["))?;
        Ok(rows)
    }

    fn to_json(&self, value: &impl Serialize) -> Result<String> {
        serde_json::to_string_pretty(value)
            .map_err(|e| Error::InvalidArgument(format!("cannot serialise {}: {e}", self.path.display())))
    }

    fn write(&mut self, text: &str) -> Result<()> {
        self.out.write_all(text.as_bytes()).map_err(|e| Error::io(&self.tmp, e))
    }

    fn row(&mut self, prediction: &Prediction) -> Result<()> {
        let row = serde_json::to_string(prediction)
            .map_err(|e| Error::InvalidArgument(format!("cannot serialise {}: {e}", self.path.display())))?;
        let sep = if self.rows == 0 { "\n    " } else { ",\n    " };
        self.rows += 1;
        self.write(&format!("{sep}{row}"))
    }

    fn finish(mut self, summary: &PredictSummary) -> Result<()> {
        self.write(&format!("\n  ],\n  \"flagged\": {},\n  \"images\": {}\n}}\n", summary.flagged, summary.images))?;
        let file = self.out.into_inner().map_err(|e| Error::io(&self.tmp, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&self.tmp, e))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))
    }
}

/// A CSV field, quoted when it holds a comma, quote or newline.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p_values_count_calibration_scores_at_or_above() {
        let cal = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(conformal_p_value(&cal, 0.5), 1.0);
        assert_eq!(conformal_p_value(&cal, 3.0), 3.0 / 5.0);
        assert_eq!(conformal_p_value(&cal, 3.5), 2.0 / 5.0);
        assert_eq!(conformal_p_value(&cal, 9.0), 1.0 / 5.0);
    }

    #[test]
    fn threshold_is_the_conservative_quantile_and_matches_p_values() {
        let cal: Vec<f64> = (1..=99).map(f64::from).collect();
        // k = ceil(0.99 * 100) = 99: the largest score.
        assert_eq!(fpr_threshold(&cal, 0.01).unwrap(), 99.0);
        // k = ceil(0.9 * 100) = 90.
        assert_eq!(fpr_threshold(&cal, 0.1).unwrap(), 90.0);
        // Flagged (score > threshold) iff p <= fpr, away from ties.
        let t = fpr_threshold(&cal, 0.1).unwrap();
        for s in [0.5, 89.5, 90.5, 95.5, 120.0] {
            assert_eq!(s > t, conformal_p_value(&cal, s) <= 0.1, "score {s}");
        }
        let err = fpr_threshold(&cal[..50], 0.01).unwrap_err().to_string();
        assert!(err.contains("at least 99"), "{err}");
        assert!(fpr_threshold(&cal, 0.0).is_err());
    }

    #[test]
    fn the_false_positive_rate_on_fresh_normal_data_stays_near_the_target() {
        // Exchangeable normal scores: calibration and test from one distribution.
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut cal: Vec<f64> = (0..999).map(|_| rng.random::<f64>()).collect();
        cal.sort_by(f64::total_cmp);
        let t = fpr_threshold(&cal, 0.05).unwrap();
        let flagged = (0..20000).filter(|_| rng.random::<f64>() > t).count() as f64 / 20000.0;
        // Expected rate 1 - 950/1000 = 0.05; binomial sd over 20000 draws ~0.0015, plus the
        // calibration sample's own spread (~0.007): 0.02 is about 3 sd.
        assert!((flagged - 0.05).abs() < 0.02, "flagged {flagged}");
    }

    #[test]
    fn overlay_is_gray_where_cold_and_red_where_hot() {
        let img = ImageTensor::from_vec(vec![0.5; 4], 1, 2, 2).unwrap();
        let o = heatmap_overlay(&img, &[0.0, 0.0, 1.0, 2.0], 1.0).unwrap();
        assert_eq!(o.channels, 3);
        // Hot pixel: red above blue.
        assert!(o.at(0, 1, 1) > 0.6 && o.at(2, 1, 1) < 0.4, "{:?}", o.data);
        assert!(heatmap_overlay(&img, &[0.0; 3], 1.0).is_err());
    }
}
