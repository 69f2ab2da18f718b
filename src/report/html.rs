//! `report.html`: one self-contained page (inline CSS, no JavaScript) linking the PNGs beside it
//! by relative paths.

use std::fmt::Write;

use super::plots::percent;
use super::summary::Summary;
use super::{example_file, fmt_opt, ReportData, HISTOGRAM_FILE, RELIABILITY_FILE, ROC_FILE};

/// `s` with `& < > " '` escaped for HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;max-width:1240px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:left}\
th{background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums}\
img{max-width:100%;height:auto;border:1px solid #ddd}figure{margin:1.5em 0}figcaption{color:#555;font-size:0.95em}\
.examples td{vertical-align:top}.examples img{image-rendering:pixelated;max-width:600px}";

/// The metrics table rows (name, value) shared by both documents.
pub fn metric_rows(data: &ReportData, s: &Summary) -> Vec<(String, String)> {
    vec![
        ("Image AUROC".into(), format!("{:.4}", s.image_auroc)),
        ("Pixel AUROC".into(), fmt_opt(s.pixel_auroc)),
        ("AUPRO (FPR ≤ 0.3)".into(), fmt_opt(s.aupro)),
        ("ECE before / after calibration".into(), format!("{:.4} / {:.4}", s.before.ece, s.after.ece)),
        ("MCE before / after calibration".into(), format!("{:.4} / {:.4}", s.before.mce, s.after.mce)),
        ("Brier score before / after calibration".into(), format!("{:.4} / {:.4}", s.before.brier, s.after.brier)),
        (format!("Threshold for FPR {} (normal calibration scores)", percent(s.target_fpr)), format!("{:.6}", s.threshold)),
        ("Flagged at the threshold: normal / anomalous test images".into(), format!("{:.2}% / {:.2}%", 100.0 * s.test_fpr, 100.0 * s.test_tpr)),
        ("Test images: normal / anomalous".into(), format!("{} / {}", s.normal_test_images, s.anomalous_test_images)),
        ("Normal calibration images".into(), s.calibration_images.to_string()),
        ("Model".into(), data.model.clone()),
        ("Calibration".into(), data.calibration.clone()),
        ("Data".into(), data.data.clone()),
        ("Seed".into(), data.seed.to_string()),
        ("Adapter".into(), data.adapter.clone()),
    ]
}

/// The explanation under each figure, shared by both documents.
pub fn captions(s: &Summary) -> [String; 3] {
    [
        format!(
            "ROC curve of the raw anomaly scores of the test images (AUROC {:.4}). The red dot is the decision \
             threshold chosen on normal calibration images alone for a {} false-positive rate.",
            s.image_auroc,
            percent(s.target_fpr)
        ),
        format!(
            "Raw scores of the normal and anomalous test images. The vertical line is the threshold {:.4}: the \
             conservative {} quantile of {} normal calibration scores; it flags {:.2}% of the normal and {:.2}% \
             of the anomalous test images.",
            s.threshold,
            percent(1.0 - s.target_fpr),
            s.calibration_images,
            100.0 * s.test_fpr,
            100.0 * s.test_tpr
        ),
        format!(
            "Reliability diagrams of the test images' probabilities of being anomalous, in {} equal-width bins: \
             before calibration (the base model's own probability) and after post-hoc calibration on normal \
             data and synthetic anomalies. Bars at the diagonal are calibrated. ECE {:.4} → {:.4}, MCE {:.4} → {:.4}.",
            s.before.bins.len(),
            s.before.ece,
            s.after.ece,
            s.before.mce,
            s.after.mce
        ),
    ]
}

/// The whole page.
pub fn render(data: &ReportData, s: &Summary) -> String {
    let mut h = String::new();
    let title = format!("oddity report: {}", data.data);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    let _ = writeln!(
        h,
        "<p>Model <b>{}</b>, calibrated with <b>{}</b>, evaluated on {} test images on <b>{}</b> (seed {}).</p>",
        escape(&data.model),
        escape(&data.calibration),
        data.scores.len(),
        escape(&data.adapter),
        data.seed
    );
    h.push_str("<h2>Metrics</h2>\n<table>\n<tr><th>Metric</th><th>Value</th></tr>\n");
    for (k, v) in metric_rows(data, s) {
        let _ = writeln!(h, "<tr><td>{}</td><td class=\"num\">{}</td></tr>", escape(&k), escape(&v));
    }
    h.push_str("</table>\n");
    let [roc, hist, rel] = captions(s);
    for (heading, file, alt, caption) in [
        ("ROC curve", ROC_FILE, "ROC curve", roc),
        ("Scores and threshold", HISTOGRAM_FILE, "histograms of normal and anomalous scores", hist),
        ("Calibration", RELIABILITY_FILE, "reliability diagrams before and after calibration", rel),
    ] {
        let _ = writeln!(
            h,
            "<h2>{heading}</h2>\n<figure><img src=\"{file}\" alt=\"{}\"><figcaption>{}</figcaption></figure>",
            escape(alt),
            escape(&caption)
        );
    }
    if !data.examples.is_empty() {
        let _ = writeln!(
            h,
            "<h2>Most anomalous test images</h2>\n<p>Each row: the image, its anomaly heatmap overlaid (blue at {:.4} or below, red at {:.4} \
             or above: the 0.5% and 99.9% quantiles of the normal test images' pixel scores), and its ground-truth mask (white = defect; gray when the data has no mask).</p>\n\
             <table class=\"examples\">\n<tr><th>#</th><th>Image</th><th>Label</th><th>Score</th><th>Probability</th><th>Image | heatmap | mask</th></tr>",
            data.heat_range.0, data.heat_range.1
        );
        for (i, ex) in data.examples.iter().enumerate() {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{:.4}</td><td class=\"num\">{:.3}</td><td><img src=\"{}\" alt=\"{}\"></td></tr>",
                i + 1,
                escape(&ex.name),
                if ex.label == 1 { "anomalous" } else { "normal" },
                ex.score,
                ex.probability,
                example_file(i),
                escape(&format!("{}: image, heatmap, mask", ex.name))
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("<p>Written by <code>oddity</code>. Numbers are in <code>results.json</code> when the report comes from <code>oddity demo</code> or <code>oddity report</code>.</p>\n</body>\n</html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_characters() {
        assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
    }
}
