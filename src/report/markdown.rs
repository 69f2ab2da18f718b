//! `report.md`: the same content as `report.html` in Markdown, images linked by relative paths.

use std::fmt::Write;

use super::html::{captions, metric_rows};
use super::summary::Summary;
use super::{example_file, ReportData, HISTOGRAM_FILE, RELIABILITY_FILE, ROC_FILE};

/// `s` safe inside a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The whole document.
pub fn render(data: &ReportData, s: &Summary) -> String {
    let mut m = String::new();
    let _ = writeln!(m, "# oddity report: {}\n", data.data);
    let _ = writeln!(
        m,
        "Model **{}**, calibrated with **{}**, evaluated on {} test images on **{}** (seed {}).\n",
        data.model,
        data.calibration,
        data.scores.len(),
        data.adapter,
        data.seed
    );
    m.push_str("## Metrics\n\n| Metric | Value |\n|---|---:|\n");
    for (k, v) in metric_rows(data, s) {
        let _ = writeln!(m, "| {} | {} |", cell(&k), cell(&v));
    }
    let [roc, hist, rel] = captions(s);
    for (heading, file, alt, caption) in [
        ("ROC curve", ROC_FILE, "ROC curve", roc),
        ("Scores and threshold", HISTOGRAM_FILE, "score histograms", hist),
        ("Calibration", RELIABILITY_FILE, "reliability diagrams", rel),
    ] {
        let _ = writeln!(m, "\n## {heading}\n\n![{alt}]({file})\n\n{caption}");
    }
    if !data.examples.is_empty() {
        let _ = writeln!(
            m,
            "\n## Most anomalous test images\n\nImage, heatmap overlay (blue at {:.4} or below, red at {:.4} or above) and ground-truth mask.\n\n\
             | # | Image | Label | Score | Probability | Image, heatmap, mask |\n|---:|---|---|---:|---:|---|",
            data.heat_range.0, data.heat_range.1
        );
        for (i, ex) in data.examples.iter().enumerate() {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {:.4} | {:.3} | ![{}]({}) |",
                i + 1,
                cell(&ex.name),
                if ex.label == 1 { "anomalous" } else { "normal" },
                ex.score,
                ex.probability,
                cell(&ex.name),
                example_file(i)
            );
        }
    }
    m
}
