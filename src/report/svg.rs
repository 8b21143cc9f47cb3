//! SVG pictures drawn with plotters into a `String`: cost vs p99 Pareto
//! scatter, latency CDF of the top plans, roofline with the measured kernels.
//! Text is emitted as SVG `<text>` (no font files are read).

use std::ops::Range;

use plotters::coord::combinators::{BindKeyPoints, LogCoord, WithKeyPoints};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::error::ReportError;
use super::format;
use super::model::{BandwidthRoof, FigureSource, Plan, Report};
use workbench_kernels::Precision;

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

/// `range` widened evenly in log space to span at least two decades: over
/// fewer, plotters draws some 99 minor grid lines a decade, crowded into a
/// grey band at the top of it.
fn at_least_two_decades(range: Range<f64>) -> Range<f64> {
    // A little over 100, so rounding cannot leave it just short.
    const MIN_SPAN: f64 = 120.0;
    let span = range.end / range.start;
    if !(span.is_finite() && span > 0.0) || span >= MIN_SPAN {
        return range;
    }
    let widen = (MIN_SPAN / span).sqrt();
    range.start / widen..range.end * widen
}

/// Data that spans more than this ratio (largest over smallest) is drawn on
/// a log axis: on a linear one the small values would be squeezed together.
const LOG_SPAN: f64 = 20.0;

/// The range and scale of one axis, chosen from the data it shows.
#[derive(Debug, Clone, PartialEq)]
enum Axis {
    Linear(Range<f64>),
    Log(Range<f64>),
}

impl Axis {
    fn range(&self) -> &Range<f64> {
        match self {
            Axis::Linear(r) | Axis::Log(r) => r,
        }
    }

    fn contains(&self, value: f64) -> bool {
        self.range().contains(&value)
    }
}

/// The axis for `values` with a margin each side, not anchored at 0: points
/// all far from 0 spread over the plot instead of sitting in a corner. Log
/// scale when the values span more than [`LOG_SPAN`]. `extra` (a reference
/// line such as the SLO) is taken in when it is near the data (within the
/// data's own span, or a decade on a log axis), so a far-off line does not
/// squeeze the data; the caller says it is off the chart instead.
fn data_axis(values: impl Iterator<Item = f64>, extra: Option<f64>) -> Axis {
    axis_over(values, extra, true)
}

/// [`data_axis`], linear whatever the span unless `allow_log`.
fn axis_over(values: impl Iterator<Item = f64>, extra: Option<f64>, allow_log: bool) -> Axis {
    let (mut lo, mut hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return Axis::Linear(0.0..1.0);
    }
    let log = allow_log && lo > 0.0 && hi / lo >= LOG_SPAN;
    if let Some(extra) = extra.filter(|v| v.is_finite()) {
        let reach = if log {
            lo / 10.0..=hi * 10.0
        } else {
            let span = (hi - lo).max(hi.abs() * 0.25);
            lo - span..=hi + span
        };
        if reach.contains(&extra) {
            lo = lo.min(extra);
            hi = hi.max(extra);
        }
    }
    if log {
        let factor = (hi / lo).powf(0.07).max(1.15);
        return Axis::Log(lo / factor..hi * factor);
    }
    let span = hi - lo;
    let pad = if span > 1e-9 * hi.abs().max(lo.abs()) {
        span * 0.08
    } else if lo == 0.0 {
        0.5
    } else {
        lo.abs() * 0.1
    };
    let start = if lo >= 0.0 && lo - pad < 0.0 {
        0.0
    } else {
        lo - pad
    };
    Axis::Linear(start..hi + pad)
}

/// Labelled ticks of a log axis: 1, 2 and 5 of each decade in `range` (every
/// digit when that gives fewer than three), and a light grid line at every
/// digit. Plotters' own ticks label only powers of ten, which leaves an axis
/// spanning 20..400 with two labels at its right end.
fn log_ticks(range: &Range<f64>) -> (Vec<f64>, Vec<f64>) {
    let ticks_with = |digits: &[f64]| -> Vec<f64> {
        let first = range.start.log10().floor() as i32;
        let last = range.end.log10().ceil() as i32;
        (first..=last)
            .flat_map(|k| digits.iter().map(move |d| d * 10f64.powi(k)))
            .filter(|v| range.contains(v))
            .collect()
    };
    let every_digit = ticks_with(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    let bold = ticks_with(&[1.0, 2.0, 5.0]);
    if bold.len() >= 3 {
        (bold, every_digit)
    } else {
        (every_digit.clone(), every_digit)
    }
}

/// A log axis over `range` with [`log_ticks`].
fn log_coord(range: Range<f64>) -> WithKeyPoints<LogCoord<f64>> {
    let (bold, light) = log_ticks(&range);
    range
        .log_scale()
        .with_key_points(bold)
        .with_light_points(light)
}

/// A latency objective: `percentile` (e.g. 99.9) of requests at or below `latency_ms`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Slo {
    percentile: f64,
    latency_ms: f64,
}

impl Slo {
    fn label(&self) -> String {
        format!(
            "SLO: p{} ≤ {}",
            trim_number(self.percentile),
            format::ms(self.latency_ms)
        )
    }

    /// Whether the objective is on p99, the latency of the cost vs p99 chart.
    fn is_p99(&self) -> bool {
        (self.percentile - 99.0).abs() < 1e-9
    }
}

fn trim_number(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The SLO's line in a legend; an SLO beyond the axis is listed, not drawn.
fn slo_legend_entry(slo: Slo, on_axis: bool) -> LegendEntry {
    let label = if on_axis {
        slo.label()
    } else {
        format!("{} (off the chart)", slo.label())
    };
    LegendEntry {
        swatch: Swatch::Dashed(SLO_COLOR),
        label,
    }
}

/// The report's latency objective, if it has one worth a line (not zero).
fn slo(report: &Report) -> Option<Slo> {
    let slo = report.slo?;
    let valid = slo.percentile > 0.0
        && slo.percentile < 100.0
        && slo.latency_ms.is_finite()
        && slo.latency_ms > 0.0;
    valid.then_some(Slo {
        percentile: slo.percentile,
        latency_ms: slo.latency_ms,
    })
}

fn with_svg<F>(plot: &'static str, size: (u32, u32), draw: F) -> Result<String, ReportError>
where
    F: FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), ReportError>,
{
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
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

const CHART_MARGIN: i32 = 18;
const Y_LABEL_AREA: i32 = 78;

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
        .margin(CHART_MARGIN)
        .x_label_area_size(48)
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(x, y)
        .map_err(svg_error(plot))
}

/// The mesh, axis descriptions and tick labels of a chart.
fn draw_mesh<'a, 'b: 'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>,
    plot: &'static str,
    x_desc: &str,
    y_desc: &str,
) -> Result<(), ReportError>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&tick_label)
        .y_label_formatter(&tick_label)
        .axis_desc_style((FONT, 16))
        .label_style((FONT, 13))
        .draw()
        .map_err(svg_error(plot))
}

/// How a legend entry is drawn.
#[derive(Debug, Clone, Copy)]
enum Swatch {
    Line { color: RGBColor, width: u32 },
    Dashed(RGBColor),
    Dot(RGBColor),
    Ring(RGBColor),
    Cross(RGBColor),
    Triangle(RGBColor),
}

struct LegendEntry {
    swatch: Swatch,
    label: String,
}

const LEGEND_ROW_PX: i32 = 20;
const LEGEND_PAD_PX: i32 = 8;
const LEGEND_FONT_PX: i32 = 14;
/// Width of one character at the legend's font size, estimated (no font is
/// read): wide enough that entries laid out side by side do not overlap.
const LEGEND_CHAR_PX: f64 = 7.4;
const LEGEND_SWATCH_PX: i32 = 30;
const LEGEND_GAP_PX: i32 = 26;

/// The legend's entries laid out left to right, wrapping at `width`: the
/// row of each entry and its x offset.
fn legend_layout(labels: &[&str], width: i32) -> Vec<(i32, i32)> {
    let mut placed = Vec::with_capacity(labels.len());
    let (mut row, mut x) = (0, 0);
    for label in labels {
        let w = LEGEND_SWATCH_PX + (label.chars().count() as f64 * LEGEND_CHAR_PX).ceil() as i32;
        if x > 0 && x + w > width {
            row += 1;
            x = 0;
        }
        placed.push((row, x));
        x += w + LEGEND_GAP_PX;
    }
    placed
}

fn legend_rows(layout: &[(i32, i32)]) -> i32 {
    layout.last().map_or(0, |(row, _)| row + 1)
}

/// Height of the band below the plot that holds the legend, so the legend
/// never covers data.
fn legend_band_px(entries: &[LegendEntry], width: u32) -> u32 {
    let labels: Vec<&str> = entries.iter().map(|e| e.label.as_str()).collect();
    let rows = legend_rows(&legend_layout(&labels, legend_width(width)));
    if rows == 0 {
        0
    } else {
        (rows * LEGEND_ROW_PX + 2 * LEGEND_PAD_PX) as u32
    }
}

fn legend_left() -> i32 {
    CHART_MARGIN + Y_LABEL_AREA
}

fn legend_width(width: u32) -> i32 {
    width as i32 - legend_left() - CHART_MARGIN
}

fn draw_legend_band(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    plot: &'static str,
    entries: &[LegendEntry],
) -> Result<(), ReportError> {
    let labels: Vec<&str> = entries.iter().map(|e| e.label.as_str()).collect();
    let layout = legend_layout(&labels, legend_width(area.dim_in_pixel().0));
    let font = (FONT, LEGEND_FONT_PX)
        .into_font()
        .into_text_style(area)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (entry, (row, offset)) in entries.iter().zip(layout) {
        let x = legend_left() + offset;
        let y = LEGEND_PAD_PX + row * LEGEND_ROW_PX + LEGEND_ROW_PX / 2;
        let centre = (x + 11, y);
        let result = match entry.swatch {
            Swatch::Line { color, width } => area.draw(&PathElement::new(
                vec![(x, y), (x + 22, y)],
                color.stroke_width(width),
            )),
            Swatch::Dashed(color) => [(x, x + 6), (x + 9, x + 15), (x + 18, x + 22)]
                .into_iter()
                .try_for_each(|(a, b)| {
                    area.draw(&PathElement::new(
                        vec![(a, y), (b, y)],
                        color.stroke_width(2),
                    ))
                }),
            Swatch::Dot(color) => area.draw(&Circle::new(centre, 4, color.filled())),
            Swatch::Ring(color) => area.draw(&Circle::new(centre, 6, color.stroke_width(2))),
            Swatch::Cross(color) => area.draw(&Cross::new(centre, 4, color.stroke_width(2))),
            Swatch::Triangle(color) => area.draw(&TriangleMarker::new(centre, 6, color.filled())),
        };
        result.map_err(svg_error(plot))?;
        area.draw(&Text::new(
            entry.label.clone(),
            (x + LEGEND_SWATCH_PX, y),
            font.clone(),
        ))
        .map_err(svg_error(plot))?;
    }
    Ok(())
}

/// A picture with nothing to plot says so, instead of empty axes and legend.
fn empty_chart(plot: &'static str, caption: &str, message: &str) -> Result<String, ReportError> {
    with_svg(plot, SIZE, |root| {
        let (w, h) = root.dim_in_pixel();
        let centred = |size: i32| {
            (FONT, size)
                .into_font()
                .into_text_style(root)
                .pos(Pos::new(HPos::Center, VPos::Center))
        };
        root.draw(&Text::new(
            caption.to_string(),
            (w as i32 / 2, 30),
            centred(22),
        ))
        .map_err(svg_error(plot))?;
        root.draw(&Rectangle::new(
            [
                (CHART_MARGIN + Y_LABEL_AREA, 60),
                (w as i32 - CHART_MARGIN, h as i32 - 60),
            ],
            RGBColor(200, 200, 200).stroke_width(1),
        ))
        .map_err(svg_error(plot))?;
        root.draw(&Text::new(
            message.to_string(),
            ((w as i32 + CHART_MARGIN + Y_LABEL_AREA) / 2, h as i32 / 2),
            centred(18),
        ))
        .map_err(svg_error(plot))
    })
}

/// A vertical reference line at `x` over the whole plot, dashed, with its
/// label at the top beside it (on the left of the line near the right edge).
fn draw_vertical_marker<'a, 'b: 'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>,
    root: &DrawingArea<SVGBackend<'b>, Shift>,
    plot: &'static str,
    x: f64,
    y_range: &Range<f64>,
    label: &str,
) -> Result<(), ReportError>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let style = SLO_COLOR.stroke_width(2);
    chart
        .draw_series(DashedLineSeries::new(
            vec![(x, y_range.start), (x, y_range.end)],
            8,
            5,
            style,
        ))
        .map_err(svg_error(plot))?;
    let (px, _) = chart.backend_coord(&(x, y_range.end));
    let (x_pixels, y_pixels) = chart.plotting_area().get_pixel_range();
    let near_right = px + 12 + (label.chars().count() as f64 * 7.2) as i32 > x_pixels.end;
    let (text_x, anchor) = if near_right {
        (px - 6, HPos::Right)
    } else {
        (px + 6, HPos::Left)
    };
    let font = (FONT, 13)
        .into_font()
        .color(&SLO_COLOR)
        .pos(Pos::new(anchor, VPos::Top));
    root.draw(&Text::new(
        label.to_string(),
        (text_x, y_pixels.start + 6),
        font,
    ))
    .map_err(svg_error(plot))
}

const SLO_COLOR: RGBColor = RGBColor(90, 90, 90);
const FRONT_COLOR: RGBColor = RGBColor(255, 127, 14);
const RECOMMENDED_COLOR: RGBColor = RGBColor(214, 39, 40);

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
/// have no cost or simulated latency, so they are left off rather than drawn at $0; so are plans none of whose
/// requests completed (no latency).
fn finite_point(plan: &Plan) -> Option<(f64, f64)> {
    if !plan.simulated || plan.nothing_completed() {
        return None;
    }
    let point = (plan.latency_ms.p99, plan.cost_usd_per_month);
    (point.0.is_finite() && point.1.is_finite()).then_some(point)
}

/// The step line through the points no other point beats on both p99 (x)
/// and cost (y): from each, across to the next one's latency, then down to
/// its cost, the way a trade-off front is read.
fn front_steps(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut sorted: Vec<(f64, f64)> = points.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let mut kept: Vec<(f64, f64)> = Vec::new();
    for p in sorted {
        if kept.last().is_none_or(|last| p.1 < last.1) {
            kept.push(p);
        }
    }
    let mut steps = Vec::with_capacity(kept.len() * 2);
    for (i, p) in kept.iter().enumerate() {
        if i > 0 {
            steps.push((p.0, kept[i - 1].1));
        }
        steps.push(*p);
    }
    steps
}

/// Whether two CDFs would be drawn on top of each other: the same
/// fractions at latencies within 1% of each other.
fn curves_overlap(a: &[(f64, f64)], b: &[(f64, f64)]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(p, q)| {
            (p.1 - q.1).abs() < 1e-9 && (p.0 - q.0).abs() <= 0.01 * p.0.abs().max(q.0.abs())
        })
}

/// The plans the cost vs p99 chart leaves off, by why: rejected before
/// simulation (no cost or simulated latency), or simulated with not one
/// request completed (no latency to place).
struct LeftOff {
    unsimulated: usize,
    nothing_completed: usize,
}

impl LeftOff {
    fn count(plans: &[(&Plan, bool)]) -> Self {
        LeftOff {
            unsimulated: plans.iter().filter(|(p, _)| !p.simulated).count(),
            nothing_completed: plans.iter().filter(|(p, _)| p.nothing_completed()).count(),
        }
    }

    /// "6 plans rejected before simulation, 3 with every request failed".
    fn why(&self) -> String {
        let plans = |n: usize| if n == 1 { "plan" } else { "plans" };
        match (self.unsimulated, self.nothing_completed) {
            (0, failed) => format!("{failed} {} with every request failed", plans(failed)),
            (unsimulated, 0) => format!(
                "{unsimulated} {} rejected before simulation",
                plans(unsimulated)
            ),
            (unsimulated, failed) => format!(
                "{unsimulated} {} rejected before simulation, {failed} with every request failed",
                plans(unsimulated)
            ),
        }
    }

    /// Kept short enough to fit above the plot: both causes named in few words.
    fn caption(&self) -> String {
        match (self.unsimulated, self.nothing_completed) {
            (0, 0) => "Cost vs p99 latency of every plan".to_string(),
            (_, 0) | (0, _) => format!("Cost vs p99 latency ({} not drawn)", self.why()),
            (unsimulated, failed) => format!(
                "Cost vs p99 latency (not drawn: {unsimulated} not simulated, {failed} with all requests failed)"
            ),
        }
    }
}

/// What the cost vs p99 chart draws, with its axes chosen.
struct ParetoPicture<'r> {
    caption: String,
    plans: Vec<(&'r Plan, bool)>,
    recommended: Option<(f64, f64)>,
    /// The SLO when it is on p99 and within the latency axis.
    slo: Option<Slo>,
    entries: Vec<LegendEntry>,
}

/// Cost per month against p99 latency of every simulated plan: feasible and
/// rejected plans in different markers, the plans on the Pareto front ringed
/// and their cost/p99 trade-off joined by a step line, the recommended plan
/// marked, and the SLO as a dashed line when it is on p99. The legend sits
/// below the plot.
pub fn pareto_svg(report: &Report) -> Result<String, ReportError> {
    const PLOT: &str = "pareto.svg";
    let plans = all_plans(report);
    let points: Vec<(f64, f64)> = plans.iter().filter_map(|(p, _)| finite_point(p)).collect();
    let left_off = LeftOff::count(&plans);
    let caption = left_off.caption();
    if points.is_empty() {
        let message = if left_off.nothing_completed == 0 {
            "No plan was simulated: there is no cost or p99 latency to plot.".to_string()
        } else {
            format!("No plan has a p99 latency to plot: {}.", left_off.why())
        };
        return empty_chart(PLOT, &caption, &message);
    }
    let p99_slo = slo(report).filter(Slo::is_p99);
    let x = data_axis(points.iter().map(|p| p.0), p99_slo.map(|s| s.latency_ms));
    let y = data_axis(points.iter().map(|p| p.1), None);
    let slo_on_axis = p99_slo.filter(|s| x.contains(s.latency_ms));

    let on_front = plans
        .iter()
        .any(|(p, _)| p.on_pareto_front && finite_point(p).is_some());
    let mut entries = Vec::new();
    if on_front {
        entries.push(LegendEntry {
            swatch: Swatch::Ring(FRONT_COLOR),
            label: "on Pareto front (cost, p99, accuracy loss)".to_string(),
        });
        entries.push(LegendEntry {
            swatch: Swatch::Line {
                color: FRONT_COLOR,
                width: 2,
            },
            label: "front's cost/p99 trade-off".to_string(),
        });
    }
    if plans.iter().any(|(p, ok)| *ok && finite_point(p).is_some()) {
        entries.push(LegendEntry {
            swatch: Swatch::Dot(FEASIBLE_COLOR),
            label: "feasible plan".to_string(),
        });
    }
    if plans
        .iter()
        .any(|(p, ok)| !*ok && finite_point(p).is_some())
    {
        entries.push(LegendEntry {
            swatch: Swatch::Cross(REJECTED_COLOR),
            label: "rejected plan".to_string(),
        });
    }
    let recommended = report.recommended.as_ref().and_then(finite_point);
    if recommended.is_some() {
        entries.push(LegendEntry {
            swatch: Swatch::Triangle(RECOMMENDED_COLOR),
            label: "recommended".to_string(),
        });
    }
    entries.extend(p99_slo.map(|slo| slo_legend_entry(slo, slo_on_axis.is_some())));
    let picture = ParetoPicture {
        caption,
        plans,
        recommended,
        slo: slo_on_axis,
        entries,
    };
    match (x, y) {
        (Axis::Linear(x), Axis::Linear(y)) => draw_pareto(&picture, x, y),
        (Axis::Linear(x), Axis::Log(y)) => draw_pareto(&picture, x, log_coord(y)),
        (Axis::Log(x), Axis::Linear(y)) => draw_pareto(&picture, log_coord(x), y),
        (Axis::Log(x), Axis::Log(y)) => draw_pareto(&picture, log_coord(x), log_coord(y)),
    }
}

const FEASIBLE_COLOR: RGBColor = RGBColor(31, 119, 180);
const REJECTED_COLOR: RGBColor = RGBColor(150, 150, 150);

fn draw_pareto<X, Y>(picture: &ParetoPicture<'_>, x: X, y: Y) -> Result<String, ReportError>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    const PLOT: &str = "pareto.svg";
    let band = legend_band_px(&picture.entries, SIZE.0);
    with_svg(PLOT, (SIZE.0, SIZE.1 + band), |root| {
        let (upper, lower) = root.split_vertically(SIZE.1);
        let mut chart = chart(&upper, PLOT, &picture.caption, x, y)?;
        draw_mesh(
            &mut chart,
            PLOT,
            "p99 latency (ms, simulated)",
            "cost (USD/month)",
        )?;
        if let Some(slo) = picture.slo {
            let y_range = chart.y_range();
            draw_vertical_marker(
                &mut chart,
                &upper,
                PLOT,
                slo.latency_ms,
                &y_range,
                &slo.label(),
            )?;
        }
        let front: Vec<(f64, f64)> = picture
            .plans
            .iter()
            .filter(|(p, _)| p.on_pareto_front)
            .filter_map(|(p, _)| finite_point(p))
            .collect();
        chart
            .draw_series(LineSeries::new(
                front_steps(&front),
                FRONT_COLOR.stroke_width(2),
            ))
            .map_err(svg_error(PLOT))?;
        let ring = FRONT_COLOR.stroke_width(2);
        chart
            .draw_series(front.iter().map(|p| Circle::new(*p, 9, ring)))
            .map_err(svg_error(PLOT))?;
        let points = |feasible: bool| -> Vec<(f64, f64)> {
            picture
                .plans
                .iter()
                .filter(|(_, ok)| *ok == feasible)
                .filter_map(|(p, _)| finite_point(p))
                .collect()
        };
        chart
            .draw_series(
                points(true)
                    .into_iter()
                    .map(|p| Circle::new(p, 4, FEASIBLE_COLOR.filled())),
            )
            .map_err(svg_error(PLOT))?;
        chart
            .draw_series(
                points(false)
                    .into_iter()
                    .map(|p| Cross::new(p, 4, REJECTED_COLOR.stroke_width(2))),
            )
            .map_err(svg_error(PLOT))?;
        if let Some(point) = picture.recommended {
            chart
                .draw_series(std::iter::once(TriangleMarker::new(
                    point,
                    9,
                    RECOMMENDED_COLOR.filled(),
                )))
                .map_err(svg_error(PLOT))?;
        }
        draw_legend_band(&lower, PLOT, &picture.entries)
    })
}

/// One plan's curve on the latency chart.
struct CdfCurve {
    points: Vec<(f64, f64)>,
    color: RGBColor,
    width: u32,
}

/// Simulated end-to-end latency CDF of the top plans (those with a CDF in the
/// report). The recommended plan is drawn last, thicker and in red, so a plan
/// with the same curve cannot hide it (the covered plan's legend entry says
/// it is under it); the SLO is a dashed line at its latency and a dotted one
/// at its percentile. The legend sits below the plot; the axis follows the
/// data (see [`cdf_axis`]); with no simulated request the picture says so.
pub fn latency_cdf_svg(report: &Report) -> Result<String, ReportError> {
    const PLOT: &str = "latency-cdf.svg";
    const CAPTION: &str = "Simulated end-to-end latency of the top plans";
    let finite = |cdf: &super::model::LatencyCdf| -> Vec<(f64, f64)> {
        cdf.points
            .iter()
            .filter(|p| p.latency_ms.is_finite() && p.fraction.is_finite())
            .map(|p| (p.latency_ms, p.fraction))
            .collect()
    };
    let recommended_id = report.recommended.as_ref().map(|r| r.id.as_str());
    let recommended_points = report
        .latency_cdfs
        .iter()
        .find(|c| Some(c.plan_id.as_str()) == recommended_id)
        .map(finite);
    let mut entries = Vec::new();
    let mut others = Vec::new();
    let mut top = None;
    for cdf in &report.latency_cdfs {
        let points = finite(cdf);
        if points.is_empty() {
            continue;
        }
        if Some(cdf.plan_id.as_str()) == recommended_id {
            let curve = CdfCurve {
                points,
                color: RECOMMENDED_COLOR,
                width: 3,
            };
            entries.insert(
                0,
                LegendEntry {
                    swatch: Swatch::Line {
                        color: curve.color,
                        width: curve.width,
                    },
                    label: format!("{} (recommended)", cdf.plan_id),
                },
            );
            top = Some(curve);
        } else {
            // Red is the recommended plan's.
            let color = PALETTE[1 + others.len() % (PALETTE.len() - 1)];
            let infeasible = report
                .alternatives
                .iter()
                .any(|a| a.plan.id == cdf.plan_id && a.rejected_because.is_some());
            let mut label = cdf.plan_id.clone();
            if infeasible {
                label.push_str(" (infeasible)");
            }
            if recommended_points
                .as_ref()
                .is_some_and(|r| curves_overlap(r, &points))
            {
                label.push_str(" (under the recommended plan's curve)");
            }
            entries.push(LegendEntry {
                swatch: Swatch::Line { color, width: 2 },
                label,
            });
            others.push(CdfCurve {
                points,
                color,
                width: 2,
            });
        }
    }
    if entries.is_empty() {
        let simulated = report.recommended.iter().any(|p| p.simulated)
            || report.alternatives.iter().any(|a| a.plan.simulated);
        let message = if simulated {
            "This report keeps no latency distribution of its simulated plans."
        } else {
            "No requests were simulated: there is no latency to plot."
        };
        return empty_chart(PLOT, CAPTION, message);
    }
    // With no feasible plan the curves are the closest plans'.
    let caption = if report.recommended.is_none() {
        "Simulated latency of the closest plans (none meets every constraint)"
    } else {
        CAPTION
    };
    let mut curves: Vec<CdfCurve> = others.into_iter().chain(top).collect();
    let slo = slo(report);
    let x = cdf_axis(&curves, slo.map(|s| s.latency_ms));
    // The fastest requests of a log axis can sit below its start: they are
    // drawn at the left edge (the curve reads "at or below" there).
    for curve in &mut curves {
        for point in &mut curve.points {
            point.0 = point.0.max(x.range().start);
        }
    }
    let slo_on_axis = slo.filter(|s| x.contains(s.latency_ms));
    entries.extend(slo.map(|slo| slo_legend_entry(slo, slo_on_axis.is_some())));
    let picture = CdfPicture {
        curves,
        slo: slo_on_axis,
        entries,
    };
    match x {
        Axis::Linear(x) => draw_cdf(&picture, caption, x),
        Axis::Log(x) => draw_cdf(&picture, caption, log_coord(x)),
    }
}

/// A log axis of latencies covers at most this many decades below the
/// slowest request: the fastest requests of a plan that answers some from a
/// cache come out at ~1e-16 ms, which would stretch the axis over 20 decades.
const CDF_DECADES: f64 = 4.0;

/// The latency axis of the CDF chart. Whether it is logarithmic is decided
/// without each curve's first point (fraction 0, the single fastest request,
/// which may be ~0), and a log axis is kept to [`CDF_DECADES`]; within
/// those, it covers the fastest requests too (it had started at the second
/// point and drawn a plan's fastest request, 6.56 ms, at the axis's edge).
fn cdf_axis(curves: &[CdfCurve], slo_ms: Option<f64>) -> Axis {
    let all = || curves.iter().flat_map(|c| c.points.iter());
    let slowest = all().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let floor = slowest / 10f64.powf(CDF_DECADES);
    let body = || all().filter(|p| p.1 > 0.0).map(|p| p.0.max(floor));
    let shown = || {
        all()
            .filter(|p| p.1 > 0.0 || p.0 >= floor)
            .map(|p| p.0.max(floor))
    };
    match data_axis(body(), slo_ms) {
        log @ Axis::Log(_) => match data_axis(shown(), slo_ms) {
            wider @ Axis::Log(_) => wider,
            Axis::Linear(_) => log,
        },
        Axis::Linear(_) => axis_over(all().map(|p| p.0), slo_ms, false),
    }
}

struct CdfPicture {
    /// Drawn in this order: the recommended plan's last.
    curves: Vec<CdfCurve>,
    slo: Option<Slo>,
    entries: Vec<LegendEntry>,
}

fn draw_cdf<X>(picture: &CdfPicture, caption: &str, x: X) -> Result<String, ReportError>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    const PLOT: &str = "latency-cdf.svg";
    let band = legend_band_px(&picture.entries, SIZE.0);
    with_svg(PLOT, (SIZE.0, SIZE.1 + band), |root| {
        let (upper, lower) = root.split_vertically(SIZE.1);
        let mut chart = chart(&upper, PLOT, caption, x, 0.0..1.0)?;
        draw_mesh(
            &mut chart,
            PLOT,
            "latency (ms, simulated)",
            "fraction of requests at or below",
        )?;
        if let Some(slo) = picture.slo {
            let x_range = chart.x_range();
            let fraction = slo.percentile / 100.0;
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(x_range.start, fraction), (x_range.end, fraction)],
                    3,
                    4,
                    SLO_COLOR.stroke_width(1),
                ))
                .map_err(svg_error(PLOT))?;
            draw_vertical_marker(
                &mut chart,
                &upper,
                PLOT,
                slo.latency_ms,
                &(0.0..1.0),
                &slo.label(),
            )?;
        }
        for curve in &picture.curves {
            chart
                .draw_series(LineSeries::new(
                    curve.points.iter().copied(),
                    curve.color.stroke_width(curve.width),
                ))
                .map_err(svg_error(PLOT))?;
        }
        draw_legend_band(&lower, PLOT, &picture.entries)
    })
}

/// Tick labels without spurious decimals, on linear and log axes alike:
/// "200", "12.5", "0.25", "0.002".
fn tick_label(value: &f64) -> String {
    let v = *value;
    let text = if v.abs() >= 100.0 || v == 0.0 {
        format!("{v:.0}")
    } else if v.abs() < 1e-3 {
        return format!("{v:e}");
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        // Three significant figures below 1.
        let decimals = (2 - v.abs().log10().floor() as i32).clamp(2, 12) as usize;
        format!("{v:.decimals$}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

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

/// One kernel on the roofline as drawn.
struct KernelDot<'a> {
    /// (arithmetic intensity, achieved GFLOP/s).
    at: (f64, f64),
    label: &'a str,
    /// The colour of the roof of its memory level.
    colour: RGBColor,
}

/// Roofline of the measuring machine (log-log): compute roof, one roof per
/// bandwidth, and the kernels at their arithmetic intensity, each in the
/// colour of the roof of the memory level its working set fits.
pub fn roofline_svg(report: &Report) -> Result<String, ReportError> {
    const PLOT: &str = "roofline.svg";
    let roof = &report.roofline;
    // int8 kernels count integer ops and are held to the int8 roof (drawn
    // dashed, with the bandwidth of each memory level an int8 kernel fits),
    // not the f32 one.
    let int8_roof = roof
        .points
        .iter()
        .any(|p| p.precision == Precision::Int8)
        .then(|| report.compute_roof(Precision::Int8))
        .flatten();
    let mut int8_roofs: Vec<(f64, &BandwidthRoof)> = Vec::new();
    if let Some(peak) = int8_roof {
        for p in roof
            .points
            .iter()
            .filter(|p| p.precision == Precision::Int8)
        {
            if let Some(memory) = roof.memory_roof(p) {
                if !int8_roofs.iter().any(|(_, m)| m.name == memory.name) {
                    int8_roofs.push((peak, memory));
                }
            }
        }
    }
    // Each point is drawn in the colour of the roof of its memory level.
    let roof_colour = |memory: Option<&BandwidthRoof>| {
        memory
            .and_then(|m| roof.bandwidths.iter().position(|b| b.name == m.name))
            .map_or(RGBColor(20, 20, 20), |i| palette(i + 1))
    };
    let ridges: Vec<f64> = roof
        .bandwidths
        .iter()
        .filter(|b| b.gb_per_s > 0.0)
        .map(|b| roof.peak_gflops / b.gb_per_s)
        .chain(int8_roofs.iter().map(|(peak, b)| peak / b.gb_per_s))
        .collect();
    let x = at_least_two_decades(log_range(
        roof.points
            .iter()
            .map(|p| p.arithmetic_intensity)
            .chain(ridges.iter().copied()),
        4.0,
    ));
    let y = log_range(
        roof.points
            .iter()
            .map(|p| p.achieved_gflops)
            .chain(std::iter::once(roof.peak_gflops))
            .chain(int8_roof),
        3.0,
    );
    let (x_lo, x_hi) = (x.start, x.end);
    let bandwidth_roofs: Vec<(RGBColor, &BandwidthRoof)> = roof
        .bandwidths
        .iter()
        .enumerate()
        .filter(|(_, bw)| bw.gb_per_s > 0.0 && bw.gb_per_s.is_finite())
        .map(|(i, bw)| (palette(i + 1), bw))
        .collect();
    // Kernels by source: measured filled, projected as rings.
    let kernels: Vec<(FigureSource, Vec<KernelDot<'_>>)> =
        [FigureSource::Measured, FigureSource::Projected]
            .into_iter()
            .map(|source| {
                let points: Vec<_> = roof
                    .points
                    .iter()
                    .filter(|p| p.source == source)
                    .filter(|p| p.arithmetic_intensity > 0.0 && p.achieved_gflops > 0.0)
                    .filter(|p| p.arithmetic_intensity.is_finite() && p.achieved_gflops.is_finite())
                    .map(|p| KernelDot {
                        at: (p.arithmetic_intensity, p.achieved_gflops),
                        label: p.label.as_str(),
                        colour: roof_colour(roof.memory_roof(p)),
                    })
                    .collect();
                (source, points)
            })
            .filter(|(_, points)| !points.is_empty())
            .collect();
    // The legend goes below the plot, never over the roofs or the kernels.
    let mut entries: Vec<LegendEntry> = bandwidth_roofs
        .iter()
        .map(|(colour, bw)| LegendEntry {
            swatch: Swatch::Line {
                color: *colour,
                width: 2,
            },
            // The peak as the report's Roofline section gives it.
            label: format!(
                "{} roof {:.1} GB/s, peak {}",
                bw.name,
                bw.gb_per_s,
                format::gflops(roof.peak_gflops)
            ),
        })
        .collect();
    entries.extend(int8_roofs.iter().map(|&(peak, bw)| LegendEntry {
        // Dashed, in the colour of the level's own roof.
        swatch: Swatch::Dashed(roof_colour(Some(bw))),
        label: format!(
            "int8 roof {} ({} {:.1} GB/s)",
            format::gflops(peak).replace("GFLOP/s", "GOP/s"),
            bw.name,
            bw.gb_per_s
        ),
    }));
    let kernel_colour = RGBColor(20, 20, 20);
    entries.extend(kernels.iter().map(|(source, _)| LegendEntry {
        swatch: match source {
            FigureSource::Measured => Swatch::Dot(kernel_colour),
            FigureSource::Projected => Swatch::Ring(kernel_colour),
        },
        label: format!("kernel ({source}), in its memory level's colour"),
    }));
    let band = legend_band_px(&entries, SIZE.0);
    with_svg(PLOT, (SIZE.0, SIZE.1 + band), |root| {
        let (upper, lower) = root.split_vertically(SIZE.1);
        let caption = format!("Roofline of {}", roof.machine);
        let mut chart = chart(&upper, PLOT, &caption, x.log_scale(), y.log_scale())?;
        chart
            .configure_mesh()
            .x_desc(if int8_roof.is_some() {
                "arithmetic intensity (FLOP/byte; int8: ops/byte)"
            } else {
                "arithmetic intensity (FLOP/byte)"
            })
            .y_desc(if int8_roof.is_some() {
                "achieved GFLOP/s (int8: GOP/s)"
            } else {
                "achieved GFLOP/s"
            })
            .x_label_formatter(&tick_label)
            .y_label_formatter(&tick_label)
            .axis_desc_style((FONT, 16))
            .label_style((FONT, 13))
            .draw()
            .map_err(svg_error(PLOT))?;

        // Sample each roof evenly in log space so the knee is drawn sharply.
        let samples: Vec<f64> = (0..=64)
            .map(|i| (x_lo.ln() + (x_hi.ln() - x_lo.ln()) * f64::from(i) / 64.0).exp())
            .chain(ridges.iter().copied())
            .collect();
        let roof_line = |peak: f64, gb_per_s: f64| {
            let mut line: Vec<(f64, f64)> = samples
                .iter()
                .map(|ai| (*ai, peak.min(ai * gb_per_s)))
                .collect();
            line.sort_by(|a, b| a.0.total_cmp(&b.0));
            line
        };
        for (colour, bw) in &bandwidth_roofs {
            let style = ShapeStyle::from(colour).stroke_width(2);
            chart
                .draw_series(LineSeries::new(
                    roof_line(roof.peak_gflops, bw.gb_per_s),
                    style,
                ))
                .map_err(svg_error(PLOT))?;
        }
        for &(peak, bw) in &int8_roofs {
            let style = ShapeStyle::from(&roof_colour(Some(bw))).stroke_width(2);
            chart
                .draw_series(DashedLineSeries::new(
                    roof_line(peak, bw.gb_per_s),
                    8,
                    5,
                    style,
                ))
                .map_err(svg_error(PLOT))?;
        }

        for (source, points) in &kernels {
            let filled = *source == FigureSource::Measured;
            let style = |colour: RGBColor| {
                if filled {
                    colour.filled()
                } else {
                    colour.stroke_width(2)
                }
            };
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|dot| Circle::new(dot.at, 5, style(dot.colour))),
                )
                .map_err(svg_error(PLOT))?;
            // Kernels of one model share an intensity, so their labels would
            // pile up: stack them downwards, with a leader line when moved.
            let anchors: Vec<(i32, i32)> = points
                .iter()
                .map(|dot| chart.backend_coord(&dot.at))
                .collect();
            let label_ys = stack_labels(&anchors, LABEL_LINE_PX, LABEL_WIDTH_PX);
            for ((&(px, py), label_y), dot) in anchors.iter().zip(&label_ys).zip(points) {
                let text_x = px + 12;
                if (label_y - py).abs() > 2 {
                    upper
                        .draw(&PathElement::new(
                            vec![(px + 5, py), (text_x - 2, *label_y)],
                            RGBColor(150, 150, 150).stroke_width(1),
                        ))
                        .map_err(svg_error(PLOT))?;
                }
                upper
                    .draw(&Text::new(
                        dot.label.to_string(),
                        (text_x, label_y - LABEL_LINE_PX / 2),
                        (FONT, 13).into_font(),
                    ))
                    .map_err(svg_error(PLOT))?;
            }
        }
        draw_legend_band(&lower, PLOT, &entries)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// photo-tagging's chart said "6 plans rejected before simulation not
    /// drawn" while 9 were missing: 3 simulated plans had every request fail
    /// (no latency to place) and were neither drawn nor counted.
    #[test]
    fn plans_with_every_request_failed_are_counted_in_the_caption() {
        let mut report = crate::report::fixtures::sample_report();
        let failed = |plan: &mut Plan| {
            plan.simulated = true;
            plan.failure_rate = 1.0;
            plan.latency_ms = Default::default();
        };
        failed(&mut report.alternatives[0].plan);
        let caption = |r: &Report| LeftOff::count(&all_plans(r)).caption();
        assert_eq!(
            caption(&report),
            "Cost vs p99 latency (1 plan with every request failed not drawn)"
        );
        report.alternatives[1].plan.simulated = false;
        assert_eq!(
            caption(&report),
            "Cost vs p99 latency (not drawn: 1 not simulated, 1 with all requests failed)"
        );
        assert!(pareto_svg(&report)
            .expect("svg")
            .contains("1 with all requests failed"));
        // Nothing to draw at all: the message says why.
        for plan in std::iter::once(report.recommended.as_mut().expect("a plan"))
            .chain(report.alternatives.iter_mut().map(|a| &mut a.plan))
        {
            failed(plan);
        }
        let svg = pareto_svg(&report).expect("svg");
        assert!(
            svg.contains("No plan has a p99 latency to plot")
                && !svg.contains("No plan was simulated"),
            "{svg}"
        );
    }

    /// The legend's peak is the report's ("compute roof 99.6 GFLOP/s" had
    /// read "peak 100 GFLOP/s" in the picture).
    #[test]
    fn the_roofline_legend_gives_the_peak_as_the_report_does() {
        let mut report = crate::report::fixtures::sample_report();
        report.roofline.peak_gflops = 99.6;
        let svg = roofline_svg(&report).expect("svg");
        assert!(
            svg.contains("peak 99.6 GFLOP/s") && !svg.contains("peak 100 GFLOP/s"),
            "{svg}"
        );
    }

    #[test]
    fn a_log_axis_spans_at_least_two_decades() {
        let r = at_least_two_decades(1.0..12.0);
        assert!((r.end / r.start - 120.0).abs() < 1e-9, "{r:?}");
        // Widened evenly about the geometric middle.
        assert!(
            ((r.start * r.end).sqrt() - 12f64.sqrt()).abs() < 1e-9,
            "{r:?}"
        );
        assert_eq!(at_least_two_decades(0.1..100.0), 0.1..100.0);
    }

    #[test]
    fn axes_follow_the_data_with_a_margin() {
        // Far from 0: not anchored there.
        let Axis::Linear(r) = data_axis([108.0, 150.0].into_iter(), None) else {
            panic!("linear expected");
        };
        assert!(r.start > 100.0 && r.start < 108.0 && r.end > 150.0, "{r:?}");
        // Near 0 and non-negative: stops at 0, never below.
        let Axis::Linear(r) = data_axis([0.2, 3.0].into_iter(), None) else {
            panic!("linear expected");
        };
        assert_eq!(r.start, 0.0);
        // Three decades: log.
        let Axis::Log(r) = data_axis([0.1, 2.0, 100.0].into_iter(), None) else {
            panic!("log expected");
        };
        assert!(r.start < 0.1 && r.start > 0.05 && r.end > 100.0, "{r:?}");
        // One value: a range around it.
        let Axis::Linear(r) = data_axis([2.97, 2.97].into_iter(), None) else {
            panic!("linear expected");
        };
        assert!(r.contains(&2.97) && r.start > 2.0, "{r:?}");
    }

    #[test]
    fn a_reference_line_near_the_data_widens_the_axis_but_a_far_one_does_not() {
        let near = data_axis([20.0, 35.0].into_iter(), Some(50.0));
        assert!(near.contains(50.0), "{near:?}");
        let far = data_axis([1.0, 3.0].into_iter(), Some(150.0));
        assert!(!far.contains(150.0), "{far:?}");
        assert!(far.range().end < 5.0, "{far:?}");
    }

    /// A plan answering some requests from a cache has a fastest request of
    /// ~1e-16 ms: that single point neither turns the axis logarithmic nor
    /// stretches a log axis over twenty decades.
    #[test]
    fn a_near_zero_fastest_request_does_not_stretch_the_latency_axis() {
        let curve = |points: &[(f64, f64)]| CdfCurve {
            points: points.to_vec(),
            color: RECOMMENDED_COLOR,
            width: 3,
        };
        let narrow = [curve(&[
            (7.7e-16, 0.0),
            (5.0, 0.1),
            (12.0, 0.5),
            (30.0, 1.0),
        ])];
        assert!(matches!(cdf_axis(&narrow, None), Axis::Linear(r) if r.start == 0.0));
        let wide = [curve(&[
            (7.7e-16, 0.0),
            (0.05, 0.1),
            (1.0, 0.5),
            (300.0, 1.0),
        ])];
        let Axis::Log(r) = cdf_axis(&wide, None) else {
            panic!("log expected");
        };
        assert!(r.start > 0.01 && r.start < 0.05, "{r:?}");
        // A real fastest request within the axis's decades is on it.
        let fastest_real = [curve(&[
            (6.56, 0.0),
            (40.0, 0.1),
            (100.0, 0.5),
            (2000.0, 1.0),
        ])];
        let Axis::Log(r) = cdf_axis(&fastest_real, None) else {
            panic!("log expected");
        };
        assert!(r.start < 6.56 && r.start > 3.0, "{r:?}");
        // The decades' cap holds for every point, not the first alone.
        let below_floor = [curve(&[
            (0.0017, 0.0),
            (0.0021, 0.01),
            (1.0, 0.5),
            (159.0, 1.0),
        ])];
        let Axis::Log(r) = cdf_axis(&below_floor, None) else {
            panic!("log expected");
        };
        assert!(r.start > 0.005, "{r:?}");
    }

    #[test]
    fn log_axes_label_more_than_the_powers_of_ten() {
        let (bold, light) = log_ticks(&(15.0..470.0));
        assert_eq!(bold, vec![20.0, 50.0, 100.0, 200.0]);
        assert_eq!(light.first(), Some(&20.0));
        assert_eq!(light.len(), 8 + 4);
        // Less than a decade: every digit is labelled.
        let (bold, _) = log_ticks(&(2.5..9.5));
        assert_eq!(bold, vec![3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    }

    #[test]
    fn the_slo_is_the_reports_own() {
        let mut report = crate::report::fixtures::sample_report();
        report.slo = Some(crate::report::LatencySlo {
            percentile: 99.9,
            latency_ms: 0.412,
        });
        let slo = slo(&report).unwrap();
        assert_eq!(slo.percentile, 99.9);
        assert_eq!(slo.label(), "SLO: p99.9 ≤ 0.412 ms");
        assert!(!slo.is_p99());
        report.slo = Some(crate::report::LatencySlo {
            percentile: 99.0,
            latency_ms: 0.0,
        });
        assert_eq!(super::slo(&report), None);
        report.slo = None;
        assert_eq!(super::slo(&report), None);
    }

    #[test]
    fn the_front_step_line_joins_only_the_cost_p99_trade_off() {
        // (p99, cost): the third is beaten by the second on both.
        let steps = front_steps(&[(30.0, 100.0), (10.0, 300.0), (40.0, 350.0), (20.0, 200.0)]);
        assert_eq!(
            steps,
            vec![
                (10.0, 300.0),
                (20.0, 300.0),
                (20.0, 200.0),
                (30.0, 200.0),
                (30.0, 100.0)
            ]
        );
        assert!(front_steps(&[]).is_empty());
    }

    #[test]
    fn legend_entries_wrap_without_overlapping() {
        let layout = legend_layout(&["a long label of thirty chars..", "short", "x"], 400);
        assert_eq!(layout[0], (0, 0));
        assert_eq!(layout[1].0, 0, "fits beside the first: {layout:?}");
        assert!(layout[1].1 >= LEGEND_SWATCH_PX + (30.0 * LEGEND_CHAR_PX) as i32);
        assert_eq!(legend_rows(&layout), 2, "\"x\" wraps: {layout:?}");
        let layout = legend_layout(
            &[
                "a long label of thirty chars..",
                "another long label, thirty ch",
            ],
            400,
        );
        assert_eq!(layout[1], (1, 0));
    }

    #[test]
    fn tick_labels_have_no_spurious_decimals() {
        assert_eq!(tick_label(&200.0), "200");
        assert_eq!(tick_label(&12.5), "12.5");
        assert_eq!(tick_label(&0.25), "0.25");
        assert_eq!(tick_label(&0.002), "0.002");
        assert_eq!(tick_label(&1.0), "1");
        assert_eq!(tick_label(&0.0), "0");
    }

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
