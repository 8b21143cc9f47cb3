//! SVG pictures drawn with plotters into a `String`: cost vs p99 Pareto
//! scatter, latency CDF of the top plans, roofline with the measured kernels.
//! Text is emitted as SVG `<text>` (no font files are read).

use plotters::coord::ranged1d::AsRangedCoord;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::error::ReportError;
use super::model::{FigureSource, Plan, Report};

const SIZE: (u32, u32) = (900, 560);
const FONT: &str = "sans-serif";

/// Distinct, readable line colours (matplotlib's tab10).
const PALETTE: [RGBColor; 8] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
    RGBColor(127, 127, 127),
];

fn palette(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn svg_error<E: std::fmt::Display>(plot: &'static str) -> impl Fn(E) -> ReportError {
    move |err| ReportError::Svg {
        plot,
        message: err.to_string(),
    }
}

/// A padded, non-degenerate linear range covering `values` (and `floor` if given).
fn linear_range(values: impl Iterator<Item = f64>, floor: Option<f64>) -> std::ops::Range<f64> {
    let (mut lo, mut hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if let Some(f) = floor {
        lo = lo.min(f);
    }
    if !lo.is_finite() || !hi.is_finite() {
        return 0.0..1.0;
    }
    if hi - lo < 1e-12 {
        hi = lo + lo.abs().max(1.0);
    }
    let pad = (hi - lo) * 0.08;
    let lo = match floor {
        Some(f) if lo - pad < f => f,
        _ => lo - pad,
    };
    lo..hi + pad
}

/// A range in log space covering the positive `values`, widened by `factor` each side.
fn log_range(values: impl Iterator<Item = f64>, factor: f64) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() || !hi.is_finite() {
        return 0.1..100.0;
    }
    lo / factor..hi * factor
}

fn with_svg<F>(plot: &'static str, draw: F) -> Result<String, ReportError>
where
    F: FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), ReportError>,
{
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(svg_error(plot))?;
        draw(&root)?;
        root.present().map_err(svg_error(plot))?;
    }
    Ok(text)
}

/// A chart over an SVG drawing area with the coordinates of ranges `X` and `Y`.
type SvgChart<'a, 'b, X, Y> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<<X as AsRangedCoord>::CoordDescType, <Y as AsRangedCoord>::CoordDescType>,
>;

fn chart<'a, 'b, X, Y>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    plot: &'static str,
    caption: &str,
    x: X,
    y: Y,
) -> Result<SvgChart<'a, 'b, X, Y>, ReportError>
where
    X: AsRangedCoord,
    Y: AsRangedCoord,
{
    ChartBuilder::on(root)
        .caption(caption, (FONT, 22))
        .margin(18)
        .x_label_area_size(48)
        .y_label_area_size(78)
        .build_cartesian_2d(x, y)
        .map_err(svg_error(plot))
}

fn draw_legend<'a, 'b: 'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>,
    plot: &'static str,
    position: SeriesLabelPosition,
) -> Result<(), ReportError>
where
    X: Ranged,
    Y: Ranged,
{
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(svg_error(plot))
}

fn all_plans(report: &Report) -> Vec<(&Plan, bool)> {
    let mut plans: Vec<(&Plan, bool)> = Vec::new();
    if let Some(plan) = &report.recommended {
        plans.push((plan, report.feasible));
    }
    plans.extend(
        report
            .alternatives
            .iter()
            .map(|a| (&a.plan, a.rejected_because.is_none())),
    );
    plans
}

/// Where a plan sits on the cost vs p99 chart; plans rejected before simulation
/// have no cost or simulated latency, so they are left off rather than drawn at $0.
fn finite_point(plan: &Plan) -> Option<(f64, f64)> {
    if !plan.simulated {
        return None;
    }
    let point = (plan.latency_ms.p99, plan.cost_usd_per_month);
    (point.0.is_finite() && point.1.is_finite()).then_some(point)
}

/// Cost per month against p99 latency of every plan; feasible and rejected
/// plans in different markers, the Pareto front joined and highlighted, the
/// recommended plan marked.
pub fn pareto_svg(report: &Report) -> Result<String, ReportError> {
    const PLOT: &str = "pareto.svg";
    let plans = all_plans(report);
    let x = linear_range(
        plans
            .iter()
            .filter_map(|(p, _)| finite_point(p))
            .map(|p| p.0),
        Some(0.0),
    );
    let y = linear_range(
        plans
            .iter()
            .filter_map(|(p, _)| finite_point(p))
            .map(|p| p.1),
        Some(0.0),
    );
    // Head room above the dearest plan for the legend (upper right).
    let y = y.start..y.start + (y.end - y.start) * 1.4;
    with_svg(PLOT, |root| {
        let unsimulated = plans.iter().filter(|(p, _)| !p.simulated).count();
        let caption = if unsimulated == 0 {
            "Cost vs p99 latency of every plan".to_string()
        } else {
            let plans = if unsimulated == 1 { "plan" } else { "plans" };
            format!(
                "Cost vs p99 latency ({unsimulated} {plans} rejected before simulation not drawn)"
            )
        };
        let mut chart = chart(root, PLOT, &caption, x, y)?;
        chart
            .configure_mesh()
            .x_desc("p99 latency (ms, simulated)")
            .y_desc("cost (USD/month)")
            .x_label_formatter(&linear_ticks_formatter)
            .y_label_formatter(&linear_ticks_formatter)
            .axis_desc_style((FONT, 16))
            .label_style((FONT, 13))
            .draw()
            .map_err(svg_error(PLOT))?;

        // The front is over three objectives (cost, p99, accuracy loss), so its
        // members are ringed rather than joined: a 2-D line would zig-zag.
        let front: Vec<(f64, f64)> = plans
            .iter()
            .filter(|(p, _)| p.on_pareto_front)
            .filter_map(|(p, _)| finite_point(p))
            .collect();
        let front_style = ShapeStyle::from(&RGBColor(255, 127, 14)).stroke_width(2);
        chart
            .draw_series(front.iter().map(|p| Circle::new(*p, 9, front_style)))
            .map_err(svg_error(PLOT))?
            .label("on Pareto front (cost, p99, accuracy loss)")
            .legend(move |(x, y)| Circle::new((x + 10, y), 6, front_style));

        let feasible_color = RGBColor(31, 119, 180);
        let rejected_color = RGBColor(150, 150, 150);
        let feasible: Vec<(f64, f64)> = plans
            .iter()
            .filter(|(_, ok)| *ok)
            .filter_map(|(p, _)| finite_point(p))
            .collect();
        let rejected: Vec<(f64, f64)> = plans
            .iter()
            .filter(|(_, ok)| !*ok)
            .filter_map(|(p, _)| finite_point(p))
            .collect();
        chart
            .draw_series(
                feasible
                    .iter()
                    .map(|p| Circle::new(*p, 4, feasible_color.filled())),
            )
            .map_err(svg_error(PLOT))?
            .label("feasible plan")
            .legend(move |(x, y)| Circle::new((x + 10, y), 4, feasible_color.filled()));
        chart
            .draw_series(
                rejected
                    .iter()
                    .map(|p| Cross::new(*p, 4, rejected_color.stroke_width(2))),
            )
            .map_err(svg_error(PLOT))?
            .label("rejected plan")
            .legend(move |(x, y)| Cross::new((x + 10, y), 4, rejected_color.stroke_width(2)));
        if let Some(point) = report.recommended.as_ref().and_then(finite_point) {
            let color = RGBColor(214, 39, 40);
            chart
                .draw_series(std::iter::once(TriangleMarker::new(
                    point,
                    9,
                    color.filled(),
                )))
                .map_err(svg_error(PLOT))?
                .label("recommended")
                .legend(move |(x, y)| TriangleMarker::new((x + 10, y), 6, color.filled()));
        }
        draw_legend(&mut chart, PLOT, SeriesLabelPosition::UpperRight)
    })
}

/// Simulated end-to-end latency CDF of the top plans (those with a CDF in the report).
pub fn latency_cdf_svg(report: &Report) -> Result<String, ReportError> {
    const PLOT: &str = "latency-cdf.svg";
    let x = linear_range(
        report
            .latency_cdfs
            .iter()
            .flat_map(|c| c.points.iter().map(|p| p.latency_ms)),
        Some(0.0),
    );
    with_svg(PLOT, |root| {
        let mut chart = chart(
            root,
            PLOT,
            "Simulated end-to-end latency of the top plans",
            x,
            0.0..1.0,
        )?;
        chart
            .configure_mesh()
            .x_desc("latency (ms, simulated)")
            .y_desc("fraction of requests at or below")
            .x_label_formatter(&linear_ticks_formatter)
            .y_label_formatter(&linear_ticks_formatter)
            .axis_desc_style((FONT, 16))
            .label_style((FONT, 13))
            .draw()
            .map_err(svg_error(PLOT))?;
        for (i, cdf) in report.latency_cdfs.iter().enumerate() {
            let color = palette(i);
            let style = ShapeStyle::from(&color).stroke_width(2);
            let points: Vec<(f64, f64)> = cdf
                .points
                .iter()
                .filter(|p| p.latency_ms.is_finite() && p.fraction.is_finite())
                .map(|p| (p.latency_ms, p.fraction))
                .collect();
            let recommended = report
                .recommended
                .as_ref()
                .is_some_and(|r| r.id == cdf.plan_id);
            let label = if recommended {
                format!("{} (recommended)", cdf.plan_id)
            } else {
                cdf.plan_id.clone()
            };
            chart
                .draw_series(LineSeries::new(points, style))
                .map_err(svg_error(PLOT))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
        draw_legend(&mut chart, PLOT, SeriesLabelPosition::LowerRight)
    })
}

/// Linear axis ticks without spurious decimals: "200", "12.5", "0.25".
fn linear_ticks_formatter(value: &f64) -> String {
    let v = *value;
    if v.abs() >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn log_ticks_formatter(value: &f64) -> String {
    if *value >= 1.0 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

/// Roofline of the measuring machine (log-log): compute roof, one roof per
/// bandwidth, and the kernels at their arithmetic intensity.
/// Height of one kernel label on the roofline, pixels.
const LABEL_LINE_PX: i32 = 14;
/// Labels whose points are closer than this horizontally may collide, pixels.
const LABEL_WIDTH_PX: i32 = 150;

/// The vertical centre of each point's label: at the point itself unless a
/// label above it (within `width` horizontally) is in the way, in which case
/// just below that one. Pure, so the layout is tested without an SVG.
fn stack_labels(anchors: &[(i32, i32)], line: i32, width: i32) -> Vec<i32> {
    let mut order: Vec<usize> = (0..anchors.len()).collect();
    order.sort_by_key(|&i| (anchors[i].1, anchors[i].0));
    let mut placed: Vec<(i32, i32)> = Vec::with_capacity(anchors.len());
    let mut ys = vec![0; anchors.len()];
    for i in order {
        let (x, y) = anchors[i];
        let mut label_y = y;
        // Placed labels are visited top to bottom, so one pass pushes past all.
        for &(px, py) in &placed {
            if (px - x).abs() < width && label_y > py - line && label_y < py + line {
                label_y = py + line;
            }
        }
        placed.push((x, label_y));
        placed.sort_by_key(|p| p.1);
        ys[i] = label_y;
    }
    ys
}

pub fn roofline_svg(report: &Report) -> Result<String, ReportError> {
    const PLOT: &str = "roofline.svg";
    let roof = &report.roofline;
    let ridges: Vec<f64> = roof
        .bandwidths
        .iter()
        .filter(|b| b.gb_per_s > 0.0)
        .map(|b| roof.peak_gflops / b.gb_per_s)
        .collect();
    let x = log_range(
        roof.points
            .iter()
            .map(|p| p.arithmetic_intensity)
            .chain(ridges.iter().copied()),
        4.0,
    );
    let y = log_range(
        roof.points
            .iter()
            .map(|p| p.achieved_gflops)
            .chain(std::iter::once(roof.peak_gflops)),
        3.0,
    );
    // Head room above the peak for the legend (upper left, clear of the roofs).
    let y = y.start..y.end * 2.5;
    let (x_lo, x_hi) = (x.start, x.end);
    with_svg(PLOT, |root| {
        let caption = format!("Roofline of {}", roof.machine);
        let mut chart = chart(root, PLOT, &caption, x.log_scale(), y.log_scale())?;
        chart
            .configure_mesh()
            .x_desc("arithmetic intensity (FLOP/byte)")
            .y_desc("achieved GFLOP/s")
            .x_label_formatter(&log_ticks_formatter)
            .y_label_formatter(&log_ticks_formatter)
            .axis_desc_style((FONT, 16))
            .label_style((FONT, 13))
            .draw()
            .map_err(svg_error(PLOT))?;

        // Sample each roof evenly in log space so the knee is drawn sharply.
        let samples: Vec<f64> = (0..=64)
            .map(|i| (x_lo.ln() + (x_hi.ln() - x_lo.ln()) * f64::from(i) / 64.0).exp())
            .chain(ridges.iter().copied())
            .collect();
        for (i, bw) in roof.bandwidths.iter().enumerate() {
            if bw.gb_per_s <= 0.0 || !bw.gb_per_s.is_finite() {
                continue;
            }
            let mut line: Vec<(f64, f64)> = samples
                .iter()
                .map(|ai| (*ai, roof.peak_gflops.min(ai * bw.gb_per_s)))
                .collect();
            line.sort_by(|a, b| a.0.total_cmp(&b.0));
            let color = palette(i + 1);
            let style = ShapeStyle::from(&color).stroke_width(2);
            chart
                .draw_series(LineSeries::new(line, style))
                .map_err(svg_error(PLOT))?
                .label(format!(
                    "{} roof {:.1} GB/s, peak {:.0} GFLOP/s",
                    bw.name, bw.gb_per_s, roof.peak_gflops
                ))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }

        for (source, label) in [
            (FigureSource::Measured, "kernel (measured)"),
            (FigureSource::Projected, "kernel (projected)"),
        ] {
            let points: Vec<(f64, f64, &str)> = roof
                .points
                .iter()
                .filter(|p| p.source == source)
                .filter(|p| p.arithmetic_intensity > 0.0 && p.achieved_gflops > 0.0)
                .filter(|p| p.arithmetic_intensity.is_finite() && p.achieved_gflops.is_finite())
                .map(|p| (p.arithmetic_intensity, p.achieved_gflops, p.label.as_str()))
                .collect();
            if points.is_empty() {
                continue;
            }
            let color = RGBColor(20, 20, 20);
            let filled = source == FigureSource::Measured;
            let style = if filled {
                color.filled()
            } else {
                color.stroke_width(2)
            };
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|(x, y, _)| Circle::new((*x, *y), 5, style)),
                )
                .map_err(svg_error(PLOT))?
                .label(label)
                .legend(move |(x, y)| Circle::new((x + 10, y), 5, style));
            // Kernels of one model share an intensity, so their labels would
            // pile up: stack them downwards, with a leader line when moved.
            let anchors: Vec<(i32, i32)> = points
                .iter()
                .map(|(x, y, _)| chart.backend_coord(&(*x, *y)))
                .collect();
            let label_ys = stack_labels(&anchors, LABEL_LINE_PX, LABEL_WIDTH_PX);
            for ((&(px, py), label_y), (_, _, name)) in anchors.iter().zip(&label_ys).zip(&points) {
                let text_x = px + 12;
                if (label_y - py).abs() > 2 {
                    root.draw(&PathElement::new(
                        vec![(px + 5, py), (text_x - 2, *label_y)],
                        RGBColor(150, 150, 150).stroke_width(1),
                    ))
                    .map_err(svg_error(PLOT))?;
                }
                root.draw(&Text::new(
                    name.to_string(),
                    (text_x, label_y - LABEL_LINE_PX / 2),
                    (FONT, 13).into_font(),
                ))
                .map_err(svg_error(PLOT))?;
            }
        }
        draw_legend(&mut chart, PLOT, SeriesLabelPosition::UpperLeft)
    })
}

#[cfg(test)]
mod tests {
    use super::stack_labels;

    #[test]
    fn coincident_labels_are_stacked_a_line_apart() {
        let anchors = [(100, 50), (100, 50), (102, 52), (100, 200)];
        let ys = stack_labels(&anchors, 14, 150);
        let mut near: Vec<i32> = ys[..3].to_vec();
        near.sort_unstable();
        assert!(near.windows(2).all(|w| w[1] - w[0] >= 14), "{ys:?}");
        assert_eq!(near[0], 50, "the first stays at its point: {ys:?}");
        assert_eq!(ys[3], 200, "a label far below is not moved: {ys:?}");
    }

    #[test]
    fn labels_in_different_columns_do_not_push_each_other() {
        let anchors = [(100, 50), (400, 50), (400, 55)];
        let ys = stack_labels(&anchors, 14, 150);
        assert_eq!(ys[0], 50);
        assert_eq!(ys[1], 50);
        assert_eq!(ys[2], 64);
    }
}
