//! `oddity report --model DIR --out DIR [--data <mvtec-dir> --class NAME] [--fpr 0.05]`: scores a
//! trained and calibrated model folder (`oddity train` + `oddity calibrate`, or `oddity demo`'s
//! `<out>/model`) on the test split of its run, or of another MVTec-layout category, and writes
//! `report.html`, `report.md`, the PNGs and `results.json` into `--out` (see [`crate::report`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;

use crate::checkpoint::write_atomically;
use crate::error::{Error, Result};
use crate::kernels::Context;
use crate::predict::ModelFiles;
use crate::report::{evaluate_model_dir, write_report, ReportData, ReportOptions, Summary, Written};

/// The results file beside the report.
pub const RESULTS_FILE: &str = "results.json";

#[derive(Debug, Args, Clone, Serialize)]
pub struct ReportArgs {
    /// Model folder: checkpoint.safetensors, calibration.json and calibration_scores.json.
    #[arg(long)]
    pub model: PathBuf,
    /// Folder for report.html, report.md, the PNGs and results.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Test on this MVTec-layout folder instead of the run's own data (needs --class).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The category inside --data.
    #[arg(long)]
    pub class: Option<String>,
    /// Target false-positive rate of the decision threshold (chosen on normal calibration scores;
    /// needs at least 1/fpr - 1 of them: the demo's default model has 32, enough for 0.05).
    #[arg(long, default_value_t = 0.05)]
    pub fpr: f64,
    /// Most anomalous test images shown.
    #[arg(long, default_value_t = 6)]
    pub top: usize,
    /// Images per evaluation batch.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
}

/// `results.json`: what ran (`run`: the command's settings), the adapter, the model and the
/// report's numbers.
#[derive(Serialize)]
pub struct Results<'a, R: Serialize> {
    pub seed: u64,
    pub adapter: &'a str,
    pub model: &'a str,
    pub data: &'a str,
    pub calibration: &'a str,
    pub metrics: &'a Summary,
    pub images: &'a [String],
    pub run: &'a R,
}

/// Writes `results.json` into `dir` (atomically) and returns its path.
pub fn write_results<R: Serialize>(dir: &Path, data: &ReportData, written: &Written, run: &R) -> Result<PathBuf> {
    let results = Results {
        seed: data.seed,
        adapter: &data.adapter,
        model: &data.model,
        data: &data.data,
        calibration: &data.calibration,
        metrics: &written.summary,
        images: &written.images,
        run,
    };
    let path = dir.join(RESULTS_FILE);
    let json = serde_json::to_string_pretty(&results)
        .map_err(|e| Error::InvalidArgument(format!("cannot serialise {}: {e}", path.display())))?;
    write_atomically(&path, json.as_bytes())?;
    Ok(path)
}

/// The metrics and where the report is, as plain lines.
pub fn print_summary(out: &mut dyn Write, written: &Written, results: &Path) -> Result<()> {
    let s = &written.summary;
    let na = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.4}"));
    let text = format!(
        "image AUROC {:.4}, pixel AUROC {}, AUPRO {}\n\
         ECE {:.4} -> {:.4}, MCE {:.4} -> {:.4} (before -> after calibration)\n\
         threshold {:.6} for FPR {}: flags {:.2}% of normal and {:.2}% of anomalous test images\n\
         report: {}\nresults: {}\n",
        s.image_auroc,
        na(s.pixel_auroc),
        na(s.aupro),
        s.before.ece,
        s.after.ece,
        s.before.mce,
        s.after.mce,
        s.threshold,
        s.target_fpr,
        100.0 * s.test_fpr,
        100.0 * s.test_tpr,
        written.html.display(),
        results.display()
    );
    out.write_all(text.as_bytes()).map_err(|e| Error::io("<stdout>", e))
}

pub fn run(args: &ReportArgs, out: &mut dyn Write) -> Result<()> {
    ModelFiles::check(&args.model)?;
    let data = match (&args.data, &args.class) {
        (Some(d), Some(c)) => Some((d.clone(), c.clone())),
        (None, None) => None,
        (Some(_), None) => return Err(Error::InvalidArgument("--data needs --class (the category folder inside it)".into())),
        (None, Some(c)) => return Err(Error::InvalidArgument(format!("--class {c} needs --data"))),
    };
    if args.batch == 0 {
        return Err(Error::InvalidArgument("--batch must be at least 1".into()));
    }
    let ctx = Context::new()?;
    writeln!(out, "adapter: {}", ctx.adapter_name()).map_err(|e| Error::io("<stdout>", e))?;
    let opts = ReportOptions { fpr: args.fpr, top: args.top, batch: args.batch, data, data_label: None };
    let data = evaluate_model_dir(&ctx, &args.model, &opts, out)?;
    let written = write_report(&args.out, &data)?;
    let results = write_results(&args.out, &data, &written, args)?;
    print_summary(out, &written, &results)
}
