//! The evaluation report of a trained, calibrated model (issue 9): `report.html`, `report.md`
//! and PNGs in one folder, the HTML readable without JavaScript and linking its PNGs by relative
//! paths.
//!
//! - [`summary`]: the numbers (image AUROC, ROC curve, the threshold at the target false-positive
//!   rate chosen on normal calibration scores alone, reliability bins and ECE/MCE before and
//!   after calibration), all from [`crate::metrics`] and [`crate::predict`];
//! - [`plots`]: the ROC curve, reliability diagrams and score histograms, drawn with `plotters`
//!   ([`font`] finds a system font for their text);
//! - [`examples`]: the most anomalous test images beside their heatmap overlay and mask;
//! - [`html`], [`markdown`]: the two documents;
//! - [`evaluate`]: scores a model folder on its test split and gathers a [`ReportData`]
//!   (`oddity report`, `oddity demo`).

pub mod evaluate;
pub mod examples;
pub mod font;
pub mod html;
pub mod markdown;
pub mod plots;
pub mod summary;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::data::{ImageTensor, Mask};
use crate::error::{Error, Result};

pub use evaluate::{evaluate_model_dir, ReportOptions};
pub use summary::{summarize, Summary};

/// One of the most anomalous test images, at the model's map size.
#[derive(Clone, Debug)]
pub struct Example {
    /// Where the image came from (shown as its caption).
    pub name: String,
    pub label: u8,
    pub score: f64,
    /// Calibrated probability of being anomalous.
    pub probability: f64,
    /// The image, 1 or 3 channels in [0, 1]: [C, H, W].
    pub image: ImageTensor,
    /// Its anomaly map [H * W] (higher = more anomalous).
    pub heatmap: Vec<f32>,
    /// Its ground-truth mask at H x W, when the data has one (normal images: all zero).
    pub mask: Option<Mask>,
}

/// Everything the report shows; the derived numbers come from [`summarize`].
#[derive(Clone, Debug)]
pub struct ReportData {
    /// What was evaluated, e.g. "textures (generated)" or a folder and class.
    pub data: String,
    /// The architecture name, e.g. `bergmann-ae-1x64`.
    pub model: String,
    /// The GPU adapter that ran it.
    pub adapter: String,
    /// The image-level calibration method (platt, beta).
    pub calibration: String,
    pub seed: u64,
    /// Raw test image scores (higher = more anomalous) and labels (0 normal, 1 anomalous).
    pub scores: Vec<f64>,
    pub labels: Vec<u8>,
    /// Probabilities of "anomalous" of the test images: sigmoid of the base model's logit
    /// (before) and through the calibrator (after).
    pub probs_before: Vec<f64>,
    pub probs_after: Vec<f64>,
    /// Raw scores of the normal calibration images (the threshold comes from them alone).
    pub calibration_scores: Vec<f64>,
    /// Target false-positive rate of the decision threshold.
    pub fpr: f64,
    /// Pixel AUROC and AUPRO (models with maps, data with masks).
    pub pixel_auroc: Option<f64>,
    pub aupro: Option<f64>,
    pub examples: Vec<Example>,
    /// The anomaly-map values drawn coldest and hottest in the overlays (maps may be signed
    /// logits, so both ends are given).
    pub heat_range: (f32, f32),
}

/// The files of a report, relative to its folder.
pub const HTML_FILE: &str = "report.html";
pub const MARKDOWN_FILE: &str = "report.md";
pub const ROC_FILE: &str = "roc.png";
pub const RELIABILITY_FILE: &str = "reliability.png";
pub const HISTOGRAM_FILE: &str = "score_histogram.png";

/// The PNG of example `i` (0-based), relative to the report folder.
pub fn example_file(i: usize) -> String {
    format!("example_{i:02}.png")
}

/// What [`write_report`] produced.
#[derive(Clone, Debug, Serialize)]
pub struct Written {
    pub html: PathBuf,
    pub markdown: PathBuf,
    /// Every PNG, relative to the folder (the documents link exactly these).
    pub images: Vec<String>,
    pub summary: Summary,
}

/// Writes `report.html`, `report.md` and the PNGs into `dir` (created if needed).
pub fn write_report(dir: &Path, data: &ReportData) -> Result<Written> {
    let summary = summarize(data)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    plots::roc_png(&dir.join(ROC_FILE), &summary)?;
    plots::reliability_png(&dir.join(RELIABILITY_FILE), &summary)?;
    plots::histogram_png(&dir.join(HISTOGRAM_FILE), data, &summary)?;
    let mut images = vec![ROC_FILE.to_string(), RELIABILITY_FILE.to_string(), HISTOGRAM_FILE.to_string()];
    for (i, ex) in data.examples.iter().enumerate() {
        let name = example_file(i);
        examples::example_png(&dir.join(&name), ex, data.heat_range)?;
        images.push(name);
    }
    let html = dir.join(HTML_FILE);
    let markdown = dir.join(MARKDOWN_FILE);
    write_text(&html, &html::render(data, &summary))?;
    write_text(&markdown, &markdown::render(data, &summary))?;
    Ok(Written { html, markdown, images, summary })
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    crate::checkpoint::write_atomically(path, text.as_bytes())
}

/// `v` with 4 decimals, or "n/a".
pub(crate) fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.4}"))
}
