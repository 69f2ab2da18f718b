//! Markdown tables of an experiment, laid out like thesis tables 4.1–4.3: one block per loss,
//! a row per class and the mean over classes, a column per method; every entry is the mean
//! over the seeds that finished.

use std::fmt::Write;

use super::evaluate::CellMetrics;
use super::runner::Results;
use crate::train::LossKind;

/// One metric of a cell, when the cell has it.
type Pick = fn(&CellMetrics) -> Option<f64>;

const IMAGE_METRICS: [(&str, Pick); 4] = [
    ("AUROC", |m| Some(m.auroc)),
    ("AUROC, perturbed", |m| Some(m.auroc_perturbed)),
    ("ECE", |m| Some(m.ece)),
    ("MCE", |m| Some(m.mce)),
];

const PIXEL_METRICS: [(&str, Pick); 4] = [
    ("pixel AUROC", |m| m.pixel_auroc),
    ("pixel AUROC, perturbed", |m| m.pixel_auroc_perturbed),
    ("AUPRO", |m| m.aupro),
    ("AUPRO, perturbed", |m| m.aupro_perturbed),
];

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// The tables of `results` for `losses` x `methods` x `classes` (entries without results: `–`).
pub fn markdown(results: &Results, losses: &[LossKind], methods: &[String], classes: &[String]) -> String {
    let mut s = String::new();
    for loss in losses {
        let cells: Vec<_> = results.cells.iter().filter(|c| c.loss == loss.name()).collect();
        let has_pixels = cells.iter().any(|c| c.metrics.pixel_auroc.is_some());
        let metrics: Vec<(&str, Pick)> =
            IMAGE_METRICS.iter().chain(if has_pixels { &PIXEL_METRICS[..] } else { &[] }).copied().collect();
        for (metric, pick) in metrics {
            let seeds: std::collections::BTreeSet<u64> = cells.iter().map(|c| c.seed).collect();
            let _ = writeln!(s, "### {} — {metric} (mean over {} seed(s))\n", loss.name(), seeds.len());
            let _ = writeln!(s, "| class | {} |", methods.join(" | "));
            let _ = writeln!(s, "|---|{}", "---|".repeat(methods.len()));
            let mut per_method: Vec<Vec<f64>> = vec![vec![]; methods.len()];
            for class in classes {
                let mut row = format!("| {class} |");
                for (j, method) in methods.iter().enumerate() {
                    let v: Vec<f64> = cells
                        .iter()
                        .filter(|c| &c.class == class && &c.method == method)
                        .filter_map(|c| pick(&c.metrics))
                        .collect();
                    match mean(&v) {
                        Some(m) => {
                            per_method[j].push(m);
                            let _ = write!(row, " {m:.4} |");
                        }
                        None => row.push_str(" – |"),
                    }
                }
                let _ = writeln!(s, "{row}");
            }
            if classes.len() > 1 {
                let mut row = "| **mean** |".to_string();
                for v in &per_method {
                    match mean(v) {
                        Some(m) => {
                            let _ = write!(row, " **{m:.4}** |");
                        }
                        None => row.push_str(" – |"),
                    }
                }
                let _ = writeln!(s, "{row}");
            }
            s.push('\n');
        }
    }
    s
}
