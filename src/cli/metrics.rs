//! `oddity metrics --scores FILE.csv`: metrics of scores made by any tool.
//!
//! The CSV has a header naming a `label` column (0 normal, 1 anomalous) and either a `score`
//! column (any real number, higher = more anomalous) or a `prob` column (probability of
//! anomalous, in [0, 1]); other columns are ignored. Prints JSON
//! `{ "auroc", "ece", "mce", "brier", "n" }`; ECE, MCE and Brier only for a `prob` column.
//! A bad row (missing field, NaN, a label outside {0, 1}, a probability outside [0, 1]) is an
//! error naming the file and line.

use crate::error::{Error, Result};
use crate::metrics::{auroc, CalibrationReport};
use clap::Args;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Arguments of `oddity metrics`.
#[derive(Debug, Clone, Args)]
pub struct MetricsArgs {
    /// CSV file with a header and columns `score,label` or `prob,label`.
    #[arg(long, value_name = "FILE.csv")]
    pub scores: PathBuf,
    /// Number of equal-width bins for ECE and MCE.
    #[arg(long, default_value_t = 10)]
    pub bins: usize,
}

/// What `oddity metrics` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricsReport {
    pub auroc: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ece: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mce: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brier: Option<f64>,
    pub n: usize,
}

/// Scores and labels read from a CSV file.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreTable {
    pub values: Vec<f64>,
    pub labels: Vec<u8>,
    /// True when the value column is `prob` (a probability), false for `score`.
    pub is_probability: bool,
}

/// Reads a `score,label` or `prob,label` CSV file.
pub fn read_score_csv(path: &Path) -> Result<ScoreTable> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let row_error = |line: usize, message: String| Error::CsvRow {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
    let (_, header) = lines
        .by_ref()
        .find(|(_, l)| !l.is_empty())
        .ok_or_else(|| row_error(1, "the file is empty".into()))?;
    let columns: Vec<String> = header
        .split(',')
        .map(|c| c.trim().trim_matches('"').to_ascii_lowercase())
        .collect();
    let find = |name: &str| columns.iter().position(|c| c == name);
    let label_col = find("label");
    let (value_col, is_probability) = match (find("score"), find("prob")) {
        (Some(_), Some(_)) => {
            return Err(row_error(
                1,
                "header has both `score` and `prob`; keep one".into(),
            ))
        }
        (Some(c), None) => (c, false),
        (None, Some(c)) => (c, true),
        (None, None) => (usize::MAX, false),
    };
    let Some(label_col) = label_col.filter(|_| value_col != usize::MAX) else {
        return Err(row_error(
            1,
            format!("header is '{header}', expected columns `score,label` or `prob,label`"),
        ));
    };

    let mut table = ScoreTable {
        values: Vec::new(),
        labels: Vec::new(),
        is_probability,
    };
    for (line, row) in lines {
        if row.is_empty() {
            continue;
        }
        let fields: Vec<&str> = row.split(',').map(|f| f.trim().trim_matches('"')).collect();
        let field = |col: usize, name: &str| {
            fields.get(col).copied().ok_or_else(|| {
                row_error(
                    line,
                    format!("row '{row}' has no `{name}` field (column {})", col + 1),
                )
            })
        };
        let name = if is_probability { "prob" } else { "score" };
        let raw = field(value_col, name)?;
        let value: f64 = raw
            .parse()
            .map_err(|_| row_error(line, format!("{name} '{raw}' is not a number")))?;
        if !value.is_finite() {
            return Err(row_error(
                line,
                format!("{name} is {raw}, expected a finite number"),
            ));
        }
        if is_probability && !(0.0..=1.0).contains(&value) {
            return Err(row_error(
                line,
                format!("prob is {raw}, expected a value in [0, 1]"),
            ));
        }
        let raw_label = field(label_col, "label")?;
        // "0", "1", "0.0", "1.0" are accepted
        let label = match raw_label.parse::<f64>().map(|v| (v == 0.0, v == 1.0)) {
            Ok((true, _)) => 0,
            Ok((_, true)) => 1,
            _ => {
                return Err(row_error(
                    line,
                    format!("label is '{raw_label}', expected 0 or 1"),
                ))
            }
        };
        table.values.push(value);
        table.labels.push(label);
    }
    if table.values.is_empty() {
        return Err(row_error(2, "no data rows after the header".into()));
    }
    Ok(table)
}

/// Computes the report of a score table.
pub fn compute_report(table: &ScoreTable, bins: usize) -> Result<MetricsReport> {
    let auroc = auroc(&table.values, &table.labels)?;
    let mut report = MetricsReport {
        auroc,
        ece: None,
        mce: None,
        brier: None,
        n: table.values.len(),
    };
    if table.is_probability {
        let calibration = CalibrationReport::new(&table.values, &table.labels, bins)?;
        report.ece = Some(calibration.ece);
        report.mce = Some(calibration.mce);
        report.brier = Some(calibration.brier);
    }
    Ok(report)
}

/// Runs `oddity metrics`, writing the JSON report to `out`.
pub fn run(args: &MetricsArgs, out: &mut dyn Write) -> Result<()> {
    let table = read_score_csv(&args.scores)?;
    let report = compute_report(&table, args.bins)?;
    let json = serde_json::to_string_pretty(&report)
        .map_err(|e| Error::InvalidArgument(format!("cannot serialise the report: {e}")))?;
    writeln!(out, "{json}").map_err(|e| Error::io("<stdout>", e))?;
    Ok(())
}
