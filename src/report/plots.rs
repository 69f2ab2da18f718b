//! The report's plots, drawn by `plotters` into an RGB buffer and written as PNG through `image`:
//! the ROC curve, the reliability diagrams before and after calibration, and the histograms of
//! normal and anomalous test scores with the decision threshold. Every axis is labelled.

use std::path::Path;

use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;

use super::font::{ensure_font, FAMILY};
use super::summary::Summary;
use super::ReportData;
use crate::error::{Error, Result};
use crate::metrics::CalibrationReport;

const NORMAL: RGBColor = RGBColor(31, 119, 180);
const ANOMALOUS: RGBColor = RGBColor(214, 39, 40);
const GRAY: RGBColor = RGBColor(150, 150, 150);

/// Bins of the score histograms.
pub const HISTOGRAM_BINS: usize = 30;

/// Counts of `values` in `bins` equal-width bins over [lo, hi]: bin k holds
/// lo + k w <= v < lo + (k + 1) w, and v = hi goes to the last bin; values outside are left out.
pub fn histogram(values: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<usize> {
    let mut counts = vec![0; bins];
    // Also no bins for NaN bounds (hi > lo fails).
    if bins == 0 || hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return counts;
    }
    let width = (hi - lo) / bins as f64;
    for &v in values {
        if (lo..=hi).contains(&v) {
            counts[(((v - lo) / width) as usize).min(bins - 1)] += 1;
        }
    }
    counts
}

fn plot_error<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> Error + '_ {
    move |e| Error::InvalidArgument(format!("cannot draw {}: {e}", path.display()))
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Draws `w` x `h` pixels with `draw` and writes them to `path` as PNG.
fn render(path: &Path, (w, h): (u32, u32), draw: impl FnOnce(&Area<'_>) -> Result<()>) -> Result<()> {
    ensure_font()?;
    let mut buf = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error(path))?;
        draw(&root)?;
        root.present().map_err(plot_error(path))?;
    }
    let img = image::RgbImage::from_raw(w, h, buf)
        .ok_or_else(|| Error::InvalidArgument(format!("{}: plot buffer of the wrong size", path.display())))?;
    img.save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| Error::InvalidArgument(format!("cannot write {}: {e}", path.display())))
}

fn font(size: u32) -> TextStyle<'static> {
    (FAMILY, size).into_font().into()
}

/// One chart's text: its caption and axis descriptions with their font sizes.
struct Labels<'t> {
    caption: &'t str,
    caption_size: u32,
    x_desc: &'t str,
    y_desc: &'t str,
    desc_size: u32,
}

/// A captioned chart over `x` x `y` on `area` with labelled axes and a mesh, the frame every
/// plot of the report shares.
fn framed_chart<'a, 'b, X, Y>(
    area: &'a Area<'b>,
    labels: &Labels<'_>,
    x: X,
    y: Y,
    path: &Path,
) -> Result<ChartContext<'a, BitMapBackend<'b>, Cartesian2d<X::CoordDescType, Y::CoordDescType>>>
where
    X: AsRangedCoord,
    Y: AsRangedCoord,
    X::CoordDescType: ValueFormatter<<X::CoordDescType as Ranged>::ValueType>,
    Y::CoordDescType: ValueFormatter<<Y::CoordDescType as Ranged>::ValueType>,
{
    let err = plot_error(path);
    let mut chart = ChartBuilder::on(area)
        .caption(labels.caption, font(labels.caption_size))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(60)
        .build_cartesian_2d(x, y)
        .map_err(&err)?;
    chart
        .configure_mesh()
        .x_desc(labels.x_desc)
        .y_desc(labels.y_desc)
        .axis_desc_style(font(labels.desc_size))
        .label_style(font(13))
        .draw()
        .map_err(&err)?;
    Ok(chart)
}

/// The legend box of the series drawn so far, at `position`.
fn legend<'a, 'b: 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, BitMapBackend<'b>, CT>,
    position: SeriesLabelPosition,
    size: u32,
    path: &Path,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font(font(size))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error(path))
}

/// The ROC curve of the test images with the AUROC in the legend and the operating point of the
/// threshold chosen on normal calibration scores.
pub fn roc_png(path: &Path, s: &Summary) -> Result<()> {
    let err = plot_error(path);
    render(path, (640, 520), |root| {
        let labels = Labels {
            caption: "ROC curve (test images)",
            caption_size: 22,
            x_desc: "false-positive rate",
            y_desc: "true-positive rate",
            desc_size: 16,
        };
        let mut chart = framed_chart(root, &labels, 0f64..1f64, 0f64..1.02f64, path)?;
        chart
            .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], GRAY.stroke_width(1)))
            .map_err(&err)?
            .label("chance")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GRAY.stroke_width(1)));
        let points: Vec<(f64, f64)> = s.roc.fpr.iter().copied().zip(s.roc.tpr.iter().copied()).collect();
        chart
            .draw_series(LineSeries::new(points, NORMAL.stroke_width(3)))
            .map_err(&err)?
            .label(format!("ROC, AUROC = {:.4}", s.image_auroc))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], NORMAL.stroke_width(3)));
        chart
            .draw_series(std::iter::once(Circle::new((s.test_fpr, s.test_tpr), 6, ANOMALOUS.filled())))
            .map_err(&err)?
            .label(format!(
                "threshold for FPR {}: FPR {:.3}, TPR {:.3}",
                percent(s.target_fpr),
                s.test_fpr,
                s.test_tpr
            ))
            .legend(|(x, y)| Circle::new((x + 10, y), 5, ANOMALOUS.filled()));
        legend(&mut chart, SeriesLabelPosition::LowerRight, 14, path)
    })
}

/// `0.01` as "1%".
pub fn percent(fraction: f64) -> String {
    format!("{}%", (fraction * 1e4).round() / 1e2)
}

fn reliability_panel(area: &Area<'_>, title: &str, report: &CalibrationReport, path: &Path) -> Result<()> {
    let err = plot_error(path);
    let caption = format!("{title}: ECE {:.4}, MCE {:.4}", report.ece, report.mce);
    let labels = Labels {
        caption: &caption,
        caption_size: 19,
        x_desc: "predicted probability of anomalous",
        y_desc: "observed fraction anomalous",
        desc_size: 15,
    };
    let mut chart = framed_chart(area, &labels, 0f64..1f64, 0f64..1f64, path)?;
    chart
        .draw_series(report.bins.iter().filter_map(|b| {
            let f = b.frequency?;
            Some(Rectangle::new([(b.lower + 0.005, 0.0), (b.upper - 0.005, f)], NORMAL.mix(0.75).filled()))
        }))
        .map_err(&err)?
        .label("observed fraction per bin")
        .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], NORMAL.mix(0.75).filled()));
    chart
        .draw_series(report.bins.iter().filter_map(|b| {
            let c = b.confidence?;
            Some(Circle::new(((b.lower + b.upper) / 2.0, c), 4, ANOMALOUS.filled()))
        }))
        .map_err(&err)?
        .label("mean predicted probability")
        .legend(|(x, y)| Circle::new((x + 8, y), 4, ANOMALOUS.filled()));
    chart
        .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.stroke_width(1)))
        .map_err(&err)?
        .label("perfect calibration")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(1)));
    legend(&mut chart, SeriesLabelPosition::UpperLeft, 13, path)
}

/// Reliability diagrams of the test images' probabilities before (sigmoid of the base model's
/// logit) and after calibration, side by side.
pub fn reliability_png(path: &Path, s: &Summary) -> Result<()> {
    render(path, (1200, 540), |root| {
        let panels = root.split_evenly((1, 2));
        reliability_panel(&panels[0], "Before calibration", &s.before, path)?;
        reliability_panel(&panels[1], "After calibration", &s.after, path)
    })
}

/// Histograms of the normal and anomalous test images' raw scores with the threshold chosen at
/// the target false-positive rate on normal calibration scores.
pub fn histogram_png(path: &Path, data: &ReportData, s: &Summary) -> Result<()> {
    let err = plot_error(path);
    let pick = |label: u8| -> Vec<f64> {
        data.scores.iter().zip(&data.labels).filter(|(_, &l)| l == label).map(|(&v, _)| v).collect()
    };
    let (normal, anomalous) = (pick(0), pick(1));
    let all = data.scores.iter().copied().chain(std::iter::once(s.threshold));
    let (mut lo, mut hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if hi <= lo {
        (lo, hi) = (lo - 0.5, hi + 0.5);
    }
    let pad = 0.02 * (hi - lo);
    let (lo, hi) = (lo - pad, hi + pad);
    let (hn, ha) = (histogram(&normal, lo, hi, HISTOGRAM_BINS), histogram(&anomalous, lo, hi, HISTOGRAM_BINS));
    // Integer counts on the y axis, with headroom above the tallest bar for the legend.
    let tallest = hn.iter().chain(&ha).copied().max().unwrap_or(1).max(1) as u32;
    let top = tallest + tallest.div_ceil(2) + 1;
    let width = (hi - lo) / HISTOGRAM_BINS as f64;
    let bars = |counts: &[usize], colour: RGBColor| -> Vec<Rectangle<(f64, u32)>> {
        counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(k, &c)| {
                let x0 = lo + k as f64 * width;
                Rectangle::new([(x0, 0), (x0 + width, c as u32)], colour.mix(0.55).filled())
            })
            .collect()
    };
    render(path, (900, 500), |root| {
        let labels = Labels {
            caption: "Test scores: normal vs anomalous",
            caption_size: 22,
            x_desc: "raw anomaly score (higher = more anomalous)",
            y_desc: "test images",
            desc_size: 16,
        };
        let mut chart = framed_chart(root, &labels, lo..hi, 0u32..top, path)?;
        chart
            .draw_series(bars(&hn, NORMAL))
            .map_err(&err)?
            .label(format!("normal ({})", normal.len()))
            .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], NORMAL.mix(0.55).filled()));
        chart
            .draw_series(bars(&ha, ANOMALOUS))
            .map_err(&err)?
            .label(format!("anomalous ({})", anomalous.len()))
            .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], ANOMALOUS.mix(0.55).filled()));
        chart
            .draw_series(LineSeries::new([(s.threshold, 0), (s.threshold, top)], BLACK.stroke_width(2)))
            .map_err(&err)?
            .label(format!(
                "threshold {:.4} (FPR {} on {} normal calibration images)",
                s.threshold,
                percent(s.target_fpr),
                s.calibration_images
            ))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
        legend(&mut chart, SeriesLabelPosition::UpperRight, 14, path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_bins_are_half_open_with_the_top_edge_in_the_last_bin() {
        let v = [0.0, 0.1, 0.25, 0.5, 0.99, 1.0, -0.1, 1.1];
        assert_eq!(histogram(&v, 0.0, 1.0, 4), vec![2, 1, 1, 2]);
        assert_eq!(histogram(&v, 0.0, 1.0, 4).iter().sum::<usize>(), 6);
        assert_eq!(histogram(&v, 1.0, 1.0, 3), vec![0, 0, 0]);
    }

    #[test]
    fn percent_formats_fractions() {
        assert_eq!(percent(0.01), "1%");
        assert_eq!(percent(0.005), "0.5%");
    }
}
