//! Rendering: `render(&App, &mut Frame)` draws the whole screen from the
//! state and never changes it. Layouts adapt to the size, down to 80x24.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{
    Axis, Block, Cell, Chart, Clear, Dataset, GraphType, LegendPosition, LineGauge, List, ListItem,
    ListState, Paragraph, Row, Table, TableState, Tabs, Wrap,
};
use ratatui::Frame;

use super::app::{App, Message, View};
use super::keys::{help_line_count, status_hints, HELP};
use super::model::{changed_fields, CandidateRow, PlanView};
use super::worker::JobTag;

/// Widths at or above this get side-by-side layouts.
const WIDE: u16 = 120;

const ACCENT: Color = Color::Cyan;
const CHANGED: Style = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);
const REJECTED: Style = Style::new().fg(Color::DarkGray);
const ERROR: Style = Style::new().fg(Color::Red);
const GOOD: Style = Style::new().fg(Color::Green);
const SELECTED: Style = Style::new().add_modifier(Modifier::REVERSED);

/// Rows above and below every view: the tabs, and the message and key hints.
const TABS_ROWS: u16 = 1;
const STATUS_ROWS: u16 = 2;

/// The help overlay's box in the body area.
fn help_area(body: Rect) -> Rect {
    let width = body.width.saturating_sub(4).min(72);
    let height = body.height.saturating_sub(2).min(30);
    body.centered(Constraint::Length(width), Constraint::Length(height))
}

/// Help lines that fit in an overlay box of `box_rows` (inside its border).
fn help_lines_fitting(box_rows: u16) -> usize {
    usize::from(box_rows.saturating_sub(2))
}

/// The last line the help can start from on a terminal `terminal_rows` high
/// (0 when it all fits): scrolling stops there.
pub fn help_last_start(terminal_rows: u16) -> usize {
    let body = Rect::new(
        0,
        0,
        80,
        terminal_rows.saturating_sub(TABS_ROWS + STATUS_ROWS),
    );
    help_line_count().saturating_sub(help_lines_fitting(help_area(body).height))
}

/// Draws the whole screen.
pub fn render(app: &App, frame: &mut Frame) {
    let [tabs, body, status] = Layout::vertical([
        Constraint::Length(TABS_ROWS),
        Constraint::Min(0),
        Constraint::Length(STATUS_ROWS),
    ])
    .areas(frame.area());
    render_tabs(app, frame, tabs);
    let too_small = matches!(app.view, View::Kernels | View::Simulation | View::Plan)
        && (frame.area().width < MIN_WIDTH || frame.area().height < MIN_HEIGHT);
    match app.view {
        _ if too_small => render_too_small(app, frame, body),
        View::Scenarios => render_scenarios(app, frame, body),
        View::Kernels => render_kernels(app, frame, body),
        View::Simulation => render_simulation(app, frame, body),
        View::Plan => render_plan(app, frame, body),
        View::Export => render_export(app, frame, body),
    }
    render_status(app, frame, status);
    if app.show_help {
        render_help(app, frame, body);
    }
}

/// The smallest terminal the Kernels, Simulation and Plan views draw in (a
/// chart or table needs a few rows under the Plan's summary).
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

fn render_too_small(app: &App, frame: &mut Frame, area: Rect) {
    let size = frame.area();
    frame.render_widget(
        Paragraph::new(format!(
            "Enlarge the terminal: the {} view needs at least {MIN_WIDTH}x{MIN_HEIGHT} (this one is {}x{}).",
            app.view.title(),
            size.width,
            size.height
        ))
        .style(Style::new().fg(Color::Yellow))
        .wrap(Wrap { trim: true }),
        area,
    );
}

fn render_tabs(app: &App, frame: &mut Frame, area: Rect) {
    let titles = View::ALL
        .iter()
        .enumerate()
        .map(|(i, view)| format!("{} {}", i + 1, view.title()));
    let tabs = Tabs::new(titles)
        .select(app.view.index())
        .highlight_style(Style::new().fg(ACCENT).add_modifier(Modifier::BOLD))
        .divider("|");
    let [name, rest] = Layout::horizontal([Constraint::Length(10), Constraint::Min(0)]).areas(area);
    frame.render_widget(
        Paragraph::new("workbench").style(Style::new().add_modifier(Modifier::BOLD)),
        name,
    );
    frame.render_widget(tabs, rest);
}

fn render_status(app: &App, frame: &mut Frame, area: Rect) {
    let [message_area, keys_area] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(area);
    let mut message = Vec::new();
    if let Some(job) = &app.job {
        let stage = app.stage.as_deref().unwrap_or(job.label);
        message.push(Span::styled(
            format!("[{stage}…] "),
            Style::new().fg(Color::Yellow),
        ));
    }
    match &app.message {
        Some(Message::Info(text)) => message.push(Span::raw(text.clone())),
        Some(Message::Error(text)) => message.push(Span::styled(text.clone(), ERROR)),
        None => {}
    }
    frame.render_widget(Paragraph::new(Line::from(message)), message_area);

    // To fit: first drop "Tab/1-5 view" (the tabs show their numbers), then
    // close up the gaps, then drop the least important hints (those before
    // "help" and "quit") until they fit.
    let mut hints = status_hints(app);
    let room = usize::from(keys_area.width);
    let width = |hints: &[(&str, &str)], gap: usize| -> usize {
        let text: usize = hints
            .iter()
            .map(|(k, w)| k.chars().count() + 1 + w.chars().count() + gap)
            .sum();
        text.saturating_sub(gap)
    };
    if width(&hints, 2) > room {
        hints.retain(|(key, _)| *key != "Tab/1-5");
    }
    let gap = if width(&hints, 2) > room { 1 } else { 2 };
    while width(&hints, gap) > room && hints.len() > 2 {
        hints.remove(hints.len() - 3);
    }
    let mut keys = Vec::new();
    for (key, what) in hints {
        keys.push(Span::styled(
            key,
            Style::new().fg(ACCENT).add_modifier(Modifier::BOLD),
        ));
        keys.push(Span::raw(format!(" {what}{}", " ".repeat(gap))));
    }
    frame.render_widget(
        Paragraph::new(Line::from(keys)).style(Style::new().bg(Color::Black)),
        keys_area,
    );
}

fn render_help(app: &App, frame: &mut Frame, body: Rect) {
    let area = help_area(body);
    let mut lines = Vec::new();
    for (group, bindings) in HELP {
        lines.push(Line::styled(
            *group,
            Style::new().fg(ACCENT).add_modifier(Modifier::BOLD),
        ));
        for (key, what) in *bindings {
            lines.push(Line::from(vec![
                Span::styled(format!("  {key:<26}"), Style::new().bold()),
                Span::raw(*what),
            ]));
        }
    }
    // On a small terminal the help scrolls; say that there is more.
    let last_start = lines.len().saturating_sub(help_lines_fitting(area.height));
    let scroll = usize::from(app.help_scroll).min(last_start);
    let mut block = Block::bordered().title(" Help (Esc or ? to close) ");
    if scroll > 0 {
        block = block.title(Line::from(" ↑ more ").right_aligned());
    }
    if scroll < last_start {
        block = block.title_bottom(Line::from(" ↓ more (j/↓) ").right_aligned());
    }
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .scroll((u16::try_from(scroll).unwrap_or(u16::MAX), 0)),
        area,
    );
}

fn placeholder(frame: &mut Frame, area: Rect, title: &str, text: &str) {
    frame.render_widget(
        Paragraph::new(text.to_string())
            .block(Block::bordered().title(format!(" {title} ")))
            .wrap(Wrap { trim: true }),
        area,
    );
}

// ---------------------------------------------------------------- Scenarios

fn render_scenarios(app: &App, frame: &mut Frame, area: Rect) {
    let list_width = (area.width / 3).clamp(20, 40);
    let [list_area, detail_area] =
        Layout::horizontal([Constraint::Length(list_width), Constraint::Min(0)]).areas(area);
    let items: Vec<ListItem> = app
        .scenarios
        .iter()
        .map(|entry| {
            if entry.is_valid() {
                ListItem::new(Line::from(vec![
                    Span::styled("✓ ", GOOD),
                    Span::raw(entry.name.clone()),
                ]))
            } else {
                ListItem::new(Line::from(vec![
                    Span::styled("✗ ", ERROR),
                    Span::styled(entry.name.clone(), ERROR),
                ]))
            }
        })
        .collect();
    let title = format!(" Scenarios ({}) ", app.scenarios.len());
    let list = List::new(items)
        .block(Block::bordered().title(title))
        .highlight_style(SELECTED)
        .highlight_symbol("> ");
    // The list state is rebuilt from the app each frame: rendering never writes back.
    let mut state = ListState::default().with_selected(Some(app.selected));
    frame.render_stateful_widget(list, list_area, &mut state);

    let Some(entry) = app.selected_scenario() else {
        placeholder(frame, detail_area, "Summary", &app.no_scenarios_hint);
        return;
    };
    let mut lines = vec![Line::styled(
        entry.path.display().to_string(),
        Style::new().fg(Color::DarkGray),
    )];
    if entry.is_valid() {
        lines.extend(entry.summary.iter().map(|l| Line::raw(l.clone())));
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            "Enter: measure and plan this scenario",
            Style::new().fg(ACCENT),
        ));
    } else {
        lines.push(Line::styled(
            format!("{} error(s):", entry.errors.len()),
            ERROR.bold(),
        ));
        lines.extend(entry.errors.iter().map(|l| Line::styled(l.clone(), ERROR)));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .block(Block::bordered().title(format!(" {} ", entry.name)))
            .wrap(Wrap { trim: false }),
        detail_area,
    );
}

// ---------------------------------------------------------------- Kernels

fn render_kernels(app: &App, frame: &mut Frame, area: Rect) {
    let measuring = app.measurements.is_none() && !app.kernel_progress.is_empty();
    if measuring || (app.measurements.is_none() && app.busy()) {
        render_kernel_progress(app, frame, area);
        return;
    }
    let Some(measurements) = &app.measurements else {
        placeholder(
            frame,
            area,
            "Kernels",
            "No measurements yet. Select a scenario (1) and press Enter to measure it.",
        );
        return;
    };
    // Kernels that could not be measured get a box of their own under the
    // table, with why (as `workbench run` lists them).
    let not_measured = &measurements.not_measured;
    let notes_rows = if not_measured.is_empty() {
        0
    } else {
        let wanted = 2 + 2 * u16::try_from(not_measured.len()).unwrap_or(u16::MAX / 4);
        wanted.min(area.height / 4).max(3)
    };
    let (table_area, chart_area) = if area.width >= WIDE {
        let [a, b] = Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
            .areas(area);
        (a, b)
    } else {
        let table_rows = (measurements.kernels.len() as u16 + 3).min(area.height / 2) + notes_rows;
        let [a, b] =
            Layout::vertical([Constraint::Length(table_rows), Constraint::Min(0)]).areas(area);
        (a, b)
    };
    let [table_area, notes_area] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(notes_rows)]).areas(table_area);
    if !not_measured.is_empty() {
        let lines: Vec<Line> = not_measured
            .iter()
            .map(|reason| Line::styled(format!("• {reason}"), Style::new().fg(Color::Yellow)))
            .collect();
        frame.render_widget(
            Paragraph::new(lines)
                .block(Block::bordered().title(format!(" Not measured ({}) ", not_measured.len())))
                .wrap(Wrap { trim: true }),
            notes_area,
        );
    }

    let header =
        Row::new(["kernel", "latency", "pred/s", "GFLOP/s", "peak"]).style(Style::new().bold());
    let rows = measurements.kernels.iter().map(|k| {
        Row::new([
            Cell::from(k.key()),
            // Three significant figures, as the report's kernel table.
            Cell::from(crate::report::format::duration_ns(k.latency_ms * 1e6)),
            Cell::from(fmt_count(k.throughput_per_s)),
            Cell::from(format!("{:.1}", k.gflops)),
            Cell::from(format!("{:.0}%", k.fraction_of_peak * 100.0)),
        ])
    });
    let mut title = format!(" Kernels: {} measured ", measurements.kernels.len());
    if let Some(tuned) = &measurements.tuned {
        title = format!(
            " Kernels: {} measured, tuned {tuned} ",
            measurements.kernels.len()
        );
    }
    let table = Table::new(
        rows,
        [
            Constraint::Min(18),
            Constraint::Length(10),
            Constraint::Length(9),
            Constraint::Length(8),
            Constraint::Length(5),
        ],
    )
    .header(header)
    .row_highlight_style(SELECTED)
    .block(Block::bordered().title(title));
    let mut state = TableState::default().with_selected(Some(app.kernel_cursor));
    frame.render_stateful_widget(table, table_area, &mut state);

    render_roofline(app, frame, chart_area);
}

fn render_kernel_progress(app: &App, frame: &mut Frame, area: Rect) {
    let name = app.active.as_ref().map_or("", |s| s.name.as_str());
    let title = if app.busy() {
        format!(" Measuring {name} ")
    } else {
        format!(" Measuring {name}: stopped (m to measure again) ")
    };
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut constraints = vec![Constraint::Length(1); app.kernel_progress.len() + 2];
    constraints.push(Constraint::Min(0));
    let rows = Layout::vertical(constraints).split(inner);
    let stage = app.stage.clone().unwrap_or_default();
    if let Some(row) = rows.first() {
        frame.render_widget(Paragraph::new(stage), *row);
    }
    if let Some(row) = rows.get(1) {
        let tuning = match &app.tuning {
            Some(t) => format!(
                "autotune: trial {}/{}, best so far {:.1} GFLOP/s ({})",
                t.trial, t.total, t.best_gflops, t.best_config
            ),
            None => String::new(),
        };
        frame.render_widget(Paragraph::new(tuning).style(Style::new().fg(ACCENT)), *row);
    }
    for (i, (key, (done, total))) in app.kernel_progress.iter().enumerate() {
        let Some(row) = rows.get(i + 2) else { break };
        let ratio = if *total == 0 {
            0.0
        } else {
            (*done as f64 / *total as f64).clamp(0.0, 1.0)
        };
        let gauge = LineGauge::default()
            .ratio(ratio)
            .label(format!("{key:<20} {done:>4}/{total:<4}"))
            // Distinct glyphs so progress reads without colour (tmux captures, mono terminals).
            .filled_symbol("█")
            .unfilled_symbol("░")
            .filled_style(Style::new().fg(if ratio >= 1.0 { Color::Green } else { ACCENT }));
        frame.render_widget(gauge, *row);
    }
}

fn render_roofline(app: &App, frame: &mut Frame, area: Rect) {
    let Some(m) = &app.measurements else { return };
    // Log-log axes: x = log10(FLOP/byte), y = log10(GFLOP/s).
    let (x_min, x_max) = (-1.0_f64, 3.0_f64);
    let roof: Vec<(f64, f64)> = (0..=40)
        .map(|i| {
            let x = x_min + (x_max - x_min) * i as f64 / 40.0;
            let attainable = (m.bandwidth_gbs * 10f64.powf(x)).min(m.peak_gflops);
            (x, attainable.max(1e-3).log10())
        })
        .collect();
    let points: Vec<(f64, f64)> = m
        .kernels
        .iter()
        .filter(|k| k.arithmetic_intensity > 0.0 && k.gflops > 0.0)
        .map(|k| (k.arithmetic_intensity.log10(), k.gflops.log10()))
        .collect();
    let selected: Vec<(f64, f64)> = m
        .kernels
        .get(app.kernel_cursor)
        .filter(|k| k.arithmetic_intensity > 0.0 && k.gflops > 0.0)
        .map(|k| vec![(k.arithmetic_intensity.log10(), k.gflops.log10())])
        .unwrap_or_default();
    let y_max = m.peak_gflops.max(1.0).log10().ceil() + 0.3;
    let y_min = 0.0;
    let datasets = vec![
        Dataset::default()
            .name("roof")
            .graph_type(GraphType::Line)
            .marker(Marker::Braille)
            .style(Style::new().fg(Color::DarkGray))
            .data(&roof),
        Dataset::default()
            .name("kernels")
            .graph_type(GraphType::Scatter)
            .marker(Marker::Dot)
            .style(Style::new().fg(ACCENT))
            .data(&points),
        Dataset::default()
            .name("selected")
            .graph_type(GraphType::Scatter)
            .marker(Marker::Block)
            .style(Style::new().fg(Color::Yellow))
            .data(&selected),
    ];
    let chart = Chart::new(datasets)
        .block(Block::bordered().title(format!(
            " Roofline: peak {:.0} GFLOP/s, {:.0} GB/s ",
            m.peak_gflops, m.bandwidth_gbs
        )))
        .legend_position(Some(LegendPosition::BottomRight))
        .hidden_legend_constraints((Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)))
        .x_axis(
            Axis::default()
                .title("FLOP/B")
                .bounds([x_min, x_max])
                .labels(["0.1", "1", "10", "100", "1k"]),
        )
        .y_axis(
            Axis::default()
                .title("GFLOP/s")
                .bounds([y_min, y_max])
                .labels(log_labels(y_min, y_max)),
        );
    frame.render_widget(chart, area);
}

fn log_labels(min: f64, max: f64) -> Vec<String> {
    let lo = min.ceil() as i32;
    let hi = max.floor() as i32;
    (lo..=hi)
        .map(|e| match e {
            e if e < 0 => format!("{}", 10f64.powi(e)),
            e if e < 3 => format!("{}", 10u64.pow(e as u32)),
            e if e < 6 => format!("{}k", 10u64.pow(e as u32 - 3)),
            e => format!("1e{e}"),
        })
        .collect()
}

// ---------------------------------------------------------------- Simulation

fn render_simulation(app: &App, frame: &mut Frame, area: Rect) {
    let Some(plan) = &app.plan else {
        placeholder(
            frame,
            area,
            "Simulation",
            &no_plan_yet(app, "the latency CDFs of the top plans"),
        );
        return;
    };
    let table_rows = (plan.cdfs.len() as u16 + 3).max(4);
    let [chart_area, table_area] =
        Layout::vertical([Constraint::Min(8), Constraint::Length(table_rows)]).areas(area);

    let colors = [
        Color::Green,
        ACCENT,
        Color::Magenta,
        Color::Yellow,
        Color::Blue,
    ];
    let x_max = plan
        .cdfs
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .chain(plan.slo.map(|s| s.latency_ms))
        .fold(1.0_f64, f64::max)
        * 1.05;
    let slo_line: Vec<(f64, f64)> = plan
        .slo
        .map(|slo| vec![(slo.latency_ms, 0.0), (slo.latency_ms, 1.0)])
        .unwrap_or_default();
    let slo_name = plan.slo.map_or_else(String::new, |s| {
        format!(
            "{} SLO",
            crate::plan::evaluate::percentile_name(s.percentile)
        )
    });
    let mut datasets: Vec<Dataset> = plan
        .cdfs
        .iter()
        .enumerate()
        .map(|(i, series)| {
            Dataset::default()
                .name(format!("#{} {}", i + 1, short(&series.label, 28)))
                .graph_type(GraphType::Line)
                .marker(Marker::Braille)
                .style(Style::new().fg(colors[i % colors.len()]))
                .data(&series.points)
        })
        .collect();
    if !slo_line.is_empty() {
        datasets.push(
            Dataset::default()
                .name(slo_name)
                .graph_type(GraphType::Line)
                .marker(Marker::Braille)
                .style(Style::new().fg(Color::Red))
                .data(&slo_line),
        );
    }
    let chart = Chart::new(datasets)
        .block(Block::bordered().title(format!(
            " Latency CDF, top plans ({}) ",
            app.plan_what_if.describe()
        )))
        // A CDF rises on the left and runs along the top: the bottom right is empty.
        .legend_position(Some(LegendPosition::BottomRight))
        .hidden_legend_constraints((Constraint::Ratio(2, 3), Constraint::Ratio(2, 3)))
        .x_axis(Axis::default().title("ms").bounds([0.0, x_max]).labels([
            "0".to_string(),
            format!("{:.0}", x_max / 2.0),
            format!("{x_max:.0}"),
        ]))
        .y_axis(Axis::default().bounds([0.0, 1.0]).labels(["0", "0.5", "1"]));
    frame.render_widget(chart, chart_area);

    let latency_name = plan.latency_name();
    let header = Row::new([
        "#",
        "plan",
        "p50",
        latency_name.as_str(),
        "util",
        "failed",
        "stale",
    ])
    .style(Style::new().bold());
    let rows = plan.cdfs.iter().enumerate().map(|(i, series)| {
        let row = plan.candidates.iter().find(|c| c.label == series.label);
        let cells = match row {
            Some(c) => vec![
                format!("{}", i + 1),
                c.label.clone(),
                fmt_ms(c.p50_ms),
                c.at_slo_ms.map_or_else(|| "-".to_string(), fmt_ms),
                format!("{:.0}%", c.utilisation * 100.0),
                format!("{:.2}%", c.failure_rate * 100.0),
                c.staleness_min
                    .map_or("-".to_string(), |m| format!("{m:.0} min")),
            ],
            None => vec![format!("{}", i + 1), series.label.clone()],
        };
        Row::new(cells).style(Style::new().fg(colors[i % colors.len()]))
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(2),
            Constraint::Min(20),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(5),
            Constraint::Length(7),
            Constraint::Length(7),
        ],
    )
    .header(header)
    .block(Block::bordered().title(" Top plans: utilisation, failures, staleness "));
    frame.render_widget(table, table_area);
}

// ---------------------------------------------------------------- Plan

/// What the Simulation and Plan views say before there is a plan: that one
/// is being made, or how to get one.
fn no_plan_yet(app: &App, what: &str) -> String {
    match (&app.active, app.running(JobTag::Run)) {
        (Some(scenario), true) => {
            let mut text = format!(
                "Planning {}: measuring its kernels, then simulating the candidate plans; {what} appears here when done.",
                scenario.name
            );
            if app.what_if_pending() {
                text.push_str(&format!(
                    " Then re-planned with the what-if set meanwhile ({}).",
                    app.what_if.describe()
                ));
            }
            text
        }
        _ => format!("No plan yet. Select a scenario (1) and press Enter: {what} appears here."),
    }
}

fn render_plan(app: &App, frame: &mut Frame, area: Rect) {
    let Some(plan) = &app.plan else {
        placeholder(frame, area, "Plan", &no_plan_yet(app, "the plan"));
        return;
    };
    let summary_height = if area.height >= 40 { 10 } else { 7 };
    let [summary_area, rest] =
        Layout::vertical([Constraint::Length(summary_height), Constraint::Min(0)]).areas(area);
    render_recommendation(app, plan, frame, summary_area);
    if area.width >= WIDE {
        let [chart_area, table_area] =
            Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)])
                .areas(rest);
        render_pareto(app, plan, frame, chart_area);
        render_candidates(app, plan, frame, table_area);
    } else if rest.height >= 24 {
        let [chart_area, table_area] =
            Layout::vertical([Constraint::Percentage(45), Constraint::Min(0)]).areas(rest);
        render_pareto(app, plan, frame, chart_area);
        render_candidates(app, plan, frame, table_area);
    } else if app.plan_chart {
        // Too small for both: `v` switches between the chart and the table.
        render_pareto(app, plan, frame, rest);
    } else {
        render_candidates(app, plan, frame, rest);
    }
}

fn render_recommendation(app: &App, plan: &PlanView, frame: &mut Frame, area: Rect) {
    let original = app
        .original_plan
        .as_ref()
        .filter(|_| !app.plan_what_if.is_identity());
    let original_best = original.and_then(|p| p.recommended_row());
    let mut lines = Vec::new();
    match plan.recommended_row() {
        Some(best) => {
            let changed = original_best
                .map(|o| changed_fields(o, best))
                .unwrap_or_default();
            let field = |name: &'static str, text: String| {
                if changed.contains(&name) {
                    Span::styled(text, CHANGED)
                } else {
                    Span::raw(text)
                }
            };
            lines.push(Line::from(vec![
                Span::styled("Recommended: ", GOOD.bold()),
                field("mode", best.mode.clone()),
                Span::raw(" · "),
                field("placement", best.placement.clone()),
                Span::raw(" · "),
                field("target", best.target.clone()),
                // On devices a plan runs on each user's own: no replica count.
                if best.placement == "edge" {
                    Span::raw("")
                } else {
                    field("replicas", format!(" x{}", best.replicas))
                },
                Span::raw(" · "),
                field("backend", best.backend.clone()),
                Span::raw(" "),
                field("precision", best.precision.clone()),
                Span::raw(" · batch "),
                field("batch", best.max_batch.to_string()),
            ]));
            // The latency the plan was judged on (the SLO's percentile), as
            // the CLI's summary line and the report lead with.
            let latency_name = plan.latency_name();
            let at_slo = |c: &CandidateRow| c.at_slo_ms.map_or_else(|| "-".to_string(), fmt_ms);
            let mut figures = vec![Span::raw(format!(
                "{latency_name} {} · {} · {}/month",
                at_slo(best),
                format_args!("{} req/s", fmt_count(best.throughput_rps)),
                fmt_usd(best.cost_usd_per_month)
            ))];
            if let Some(o) = original_best {
                figures.push(Span::styled(
                    format!(
                        "  (original: {} {}, {}/month)",
                        original.map_or_else(|| latency_name.clone(), PlanView::latency_name),
                        at_slo(o),
                        fmt_usd(o.cost_usd_per_month)
                    ),
                    if changed.is_empty() {
                        Style::new().fg(Color::DarkGray)
                    } else {
                        CHANGED
                    },
                ));
            }
            lines.push(Line::from(figures));
        }
        None => lines.push(Line::styled(
            "No feasible plan: every candidate breaks a constraint (see the table).",
            ERROR.bold(),
        )),
    }
    let what_if_style = if app.plan_what_if.is_identity() {
        Style::new().fg(Color::DarkGray)
    } else {
        CHANGED
    };
    let mut what_if = vec![
        Span::raw("What-if: "),
        Span::styled(app.plan_what_if.describe(), what_if_style),
    ];
    if let (Some(o), true) = (original, !app.plan_what_if.is_identity()) {
        let verdict = match (o.recommended_row(), plan.recommended_row()) {
            (Some(a), Some(b)) if changed_fields(a, b).is_empty() => {
                " → same plan as the original".to_string()
            }
            (Some(a), Some(b)) => format!(
                " → changed: {} (was {})",
                changed_fields(a, b).join(", "),
                a.label
            ),
            (Some(a), None) => format!(" → no plan fits any more (was {})", a.label),
            (None, Some(_)) => " → now feasible".to_string(),
            (None, None) => " → still nothing feasible".to_string(),
        };
        what_if.push(Span::styled(verdict, CHANGED));
        if o.recommended_row().is_some() && original_in(app, plan).is_none() {
            what_if.push(Span::styled(
                "; the original plan is not among these candidates",
                Style::new().fg(Color::DarkGray),
            ));
        }
    }
    // The what-if in force is not yet this plan's: say a plan is coming for it.
    if app.what_if_pending() {
        what_if.push(Span::styled(
            format!(
                "  ⟳ re-planning for {} (this plan is the one for {})",
                app.what_if.describe(),
                app.plan_what_if.describe()
            ),
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ));
    }
    lines.push(Line::from(what_if));
    for sentence in &plan.rationale {
        lines.push(Line::raw(sentence.clone()));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .block(Block::bordered().title(format!(" Plan: {} ", plan.scenario)))
            .wrap(Wrap { trim: true }),
        area,
    );
}

fn render_pareto(app: &App, plan: &PlanView, frame: &mut Frame, area: Rect) {
    // Latency at the SLO's percentile, so the SLO line belongs on the axis.
    let latency = |c: &CandidateRow| c.at_slo_ms.unwrap_or(f64::INFINITY);
    let point = |c: &CandidateRow| (latency(c), c.cost_usd_per_month);
    // Plans rejected before simulation have no cost: not drawn at $0.
    let rejected: Vec<(f64, f64)> = plan
        .candidates
        .iter()
        .filter(|c| !c.feasible() && c.simulated)
        .map(point)
        .collect();
    let feasible: Vec<(f64, f64)> = plan
        .candidates
        .iter()
        .filter(|c| c.feasible())
        .map(point)
        .collect();
    let mut front: Vec<(f64, f64)> = plan
        .candidates
        .iter()
        .filter(|c| c.pareto)
        .map(point)
        .collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0));
    let best: Vec<(f64, f64)> = plan.recommended_row().map(point).into_iter().collect();
    let order = app.plan_order();
    let cursor: Vec<(f64, f64)> = order
        .get(app.plan_cursor)
        .and_then(|&i| plan.candidates.get(i))
        .map(point)
        .into_iter()
        .collect();
    // Scale to the feasible plans and the SLO; far-off rejected plans (an
    // overloaded queue has p99 = ∞) fall outside and are not drawn.
    let feasible_or_all = |f: &dyn Fn(&CandidateRow) -> f64| {
        let feasible = plan
            .candidates
            .iter()
            .filter(|c| c.feasible())
            .map(f)
            .filter(|v| v.is_finite())
            .fold(0.0_f64, f64::max);
        if feasible > 0.0 {
            feasible
        } else {
            plan.candidates
                .iter()
                .map(f)
                .filter(|v| v.is_finite())
                .fold(1.0_f64, f64::max)
        }
    };
    let x_max = (feasible_or_all(&latency) * 1.5)
        .max(plan.slo_ms().unwrap_or(0.0) * 1.5)
        .max(1.0);
    let y_max = (feasible_or_all(&|c| c.cost_usd_per_month) * 1.5).max(1.0);
    let slo_line: Vec<(f64, f64)> = plan
        .slo_ms()
        .map(|slo| vec![(slo, 0.0), (slo, y_max)])
        .unwrap_or_default();
    let datasets = vec![
        Dataset::default()
            .name("rejected")
            .graph_type(GraphType::Scatter)
            .marker(Marker::Dot)
            .style(REJECTED)
            .data(&rejected),
        Dataset::default()
            .name("feasible")
            .graph_type(GraphType::Scatter)
            .marker(Marker::Dot)
            .style(Style::new().fg(ACCENT))
            .data(&feasible),
        Dataset::default()
            .name("Pareto")
            .graph_type(GraphType::Line)
            .marker(Marker::Braille)
            .style(Style::new().fg(Color::Magenta))
            .data(&front),
        Dataset::default()
            .name("SLO")
            .graph_type(GraphType::Line)
            .marker(Marker::Braille)
            .style(Style::new().fg(Color::Red))
            .data(&slo_line),
        Dataset::default()
            .name("cursor")
            .graph_type(GraphType::Scatter)
            .marker(Marker::Block)
            .style(Style::new().fg(Color::Yellow))
            .data(&cursor),
        Dataset::default()
            .name("best")
            .graph_type(GraphType::Scatter)
            .marker(Marker::Block)
            .style(GOOD)
            .data(&best),
    ];
    let latency_name = plan.latency_name();
    let chart = Chart::new(datasets)
        .block(Block::bordered().title(format!(" Cost vs {latency_name} ")))
        .legend_position(Some(LegendPosition::TopRight))
        .hidden_legend_constraints((Constraint::Ratio(1, 2), Constraint::Ratio(2, 3)))
        .x_axis(
            Axis::default()
                .title(format!("{latency_name} ms"))
                .bounds([0.0, x_max])
                .labels(["0".to_string(), format!("{x_max:.0}")]),
        )
        .y_axis(
            Axis::default()
                .title("$/mo")
                .bounds([0.0, y_max])
                .labels(["0".to_string(), fmt_count(y_max)]),
        );
    frame.render_widget(chart, area);
}

fn render_candidates(app: &App, plan: &PlanView, frame: &mut Frame, area: Rect) {
    let order = app.plan_order();
    let original_row = original_in(app, plan);
    let labels: Vec<&str> = plan.candidates.iter().map(|c| c.label.as_str()).collect();
    let (compact, shared) = without_shared_parts(&labels);
    let longest = compact.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    // Borders, the mark, p99 and cost columns and four gaps; the verdict keeps
    // at least 8 columns (the selected row's reason is also in the title).
    let room = usize::from(area.width).saturating_sub(2 + 1 + 9 + 8 + 4 + 8);
    let label_width = longest.max(4).min(room.max(10));
    let plan_header = if shared.is_empty() {
        "plan".to_string()
    } else {
        format!("plan (all: {shared})")
    };
    let latency_name = plan.latency_name();
    let header = Row::new([
        String::new(),
        elide_label(&plan_header, label_width),
        latency_name.clone(),
        "$/month".to_string(),
        "verdict".to_string(),
    ])
    .style(Style::new().bold());
    let rows = order.iter().map(|&i| {
        let c = &plan.candidates[i];
        let mark = if Some(i) == plan.recommended {
            "★"
        } else if original_row == Some(i) {
            "◆"
        } else if c.pareto {
            "·"
        } else {
            " "
        };
        let verdict = c
            .rejected_because
            .clone()
            .unwrap_or_else(|| "ok".to_string());
        let style = if Some(i) == plan.recommended {
            GOOD
        } else if c.feasible() {
            Style::new()
        } else {
            REJECTED
        };
        Row::new([
            mark.to_string(),
            elide_label(&compact[i], label_width),
            // At the SLO's percentile; not simulated: an analytic lower bound at best.
            match (
                c.simulated,
                c.at_slo_ms.filter(|ms| *ms > 0.0 || c.simulated),
            ) {
                (true, Some(ms)) => fmt_ms(ms),
                (false, Some(ms)) => format!("≥{}", fmt_ms(ms)),
                (_, None) => "-".to_string(),
            },
            if c.simulated {
                fmt_usd(c.cost_usd_per_month)
            } else {
                "-".to_string()
            },
            verdict,
        ])
        .style(style)
    });
    let feasible = plan.candidates.iter().filter(|c| c.feasible()).count();
    let selected_reason = order
        .get(app.plan_cursor)
        .and_then(|&i| plan.candidates.get(i))
        .map(|c| match &c.rejected_because {
            Some(reason) => format!(" {}: {reason} ", short(&c.label, 40)),
            None => format!(" {}: meets every constraint ", short(&c.label, 40)),
        })
        .unwrap_or_default();
    let table = Table::new(
        rows,
        [
            Constraint::Length(1),
            Constraint::Length(u16::try_from(label_width).unwrap_or(u16::MAX)),
            Constraint::Length(9),
            Constraint::Length(8),
            Constraint::Fill(1),
        ],
    )
    .header(header)
    .row_highlight_style(SELECTED)
    .block(
        Block::bordered()
            .title(format!(
                " Candidates: {feasible}/{} feasible, sort: {} ",
                plan.candidates.len(),
                app.sort.name(&latency_name)
            ))
            .title_bottom(Line::from(selected_reason)),
    );
    let mut state = TableState::default().with_selected(Some(app.plan_cursor));
    frame.render_stateful_widget(table, area, &mut state);
}

/// Where the original plan (the scenario's own recommendation) is among the
/// shown what-if plan's candidates: the same plan, or, when the what-if
/// changed its replica count, the same plan at another count. `None` without
/// a what-if, or when no candidate is that plan.
fn original_in(app: &App, plan: &PlanView) -> Option<usize> {
    let original = app
        .original_plan
        .as_ref()
        .filter(|_| !app.plan_what_if.is_identity())
        .and_then(PlanView::recommended_row)?;
    plan.candidates
        .iter()
        .position(|c| c.label == original.label)
        .or_else(|| {
            plan.candidates
                .iter()
                .position(|c| c.same_but_replicas(original))
        })
}

/// Plan labels without the parts every candidate shares (`cloud` when only
/// the cloud was considered, the one model variant), so the parts that tell
/// candidates apart fit; and the shared parts, for the header. Labels are
/// split at `/` (plan ids) or spaces; labels of different shapes are kept whole.
fn without_shared_parts(labels: &[&str]) -> (Vec<String>, String) {
    let whole = || {
        (
            labels.iter().map(|l| l.to_string()).collect(),
            String::new(),
        )
    };
    let sep = if labels.iter().all(|l| l.contains('/')) {
        '/'
    } else {
        ' '
    };
    let parts: Vec<Vec<&str>> = labels.iter().map(|l| l.split(sep).collect()).collect();
    let Some(first) = parts.first() else {
        return whole();
    };
    if parts.len() < 2 || parts.iter().any(|p| p.len() != first.len()) {
        return whole();
    }
    let shared: Vec<bool> = (0..first.len())
        .map(|i| parts.iter().all(|p| p[i] == first[i]))
        .collect();
    if shared.iter().all(|&s| s) || !shared.iter().any(|&s| s) {
        return whole();
    }
    let keep = |p: &Vec<&str>, want_shared: bool| -> String {
        p.iter()
            .zip(&shared)
            .filter(|(_, &s)| s == want_shared)
            .map(|(part, _)| *part)
            .collect::<Vec<_>>()
            .join(&sep.to_string())
    };
    (
        parts.iter().map(|p| keep(p, false)).collect(),
        keep(first, true),
    )
}

/// `label` cut to `max` characters: first the long names of modes and
/// backends shorten (`online-http` to `http`, `quantized-` to `q-`); then its
/// longest `/`- or space-separated parts lose characters from their starts in
/// turn, so the short parts that tell plans apart (replicas, batch) stay
/// whole; last the whole label loses its middle.
fn elide_label(label: &str, max: usize) -> String {
    let count = |t: &str| t.chars().count();
    if count(label) <= max {
        return label.to_string();
    }
    // Short names first: they lose nothing a reader needs.
    let short = [
        ("online-stream", "stream"),
        ("online-http", "http"),
        ("quantized-", "q-"),
        ("autotuned-", "auto-"),
    ]
    .iter()
    .fold(label.to_string(), |text, (long, short)| {
        text.replace(long, short)
    });
    let label = short.as_str();
    if count(label) <= max {
        return label.to_string();
    }
    let sep = if label.contains('/') { '/' } else { ' ' };
    let mut lengths: Vec<usize> = label.split(sep).map(count).collect();
    let mut excess = count(label) - max;
    // One character at a time off the longest part, keeping at least 5 of each.
    while excess > 0 {
        let Some((longest, &len)) = lengths
            .iter()
            .enumerate()
            .max_by_key(|&(i, &len)| (len, std::cmp::Reverse(i)))
        else {
            break;
        };
        if len <= 5 {
            break;
        }
        lengths[longest] -= 1;
        excess -= 1;
    }
    // A part loses its start: instance and device names differ at their end
    // ("…c7g.xlarge", "…c7i.xlarge"), not at their vendor prefix.
    let parts: Vec<String> = label
        .split(sep)
        .zip(&lengths)
        .map(|(part, &len)| elide_start(part, len))
        .collect();
    elide_middle(&parts.join(&sep.to_string()), max)
}

/// `text` cut to its last `max` characters, behind an ellipsis.
fn elide_start(text: &str, max: usize) -> String {
    elide(text, max, |_| 0)
}

/// `text` cut to `max` characters in the middle, so both its start and its
/// end stay visible.
fn elide_middle(text: &str, max: usize) -> String {
    elide(text, max, |room| room - room / 2)
}

/// `text` cut to `max` characters with one ellipsis: `head(room)` of the
/// `room = max - 1` characters kept come from its start, the rest from its end.
fn elide(text: &str, max: usize, head: impl Fn(usize) -> usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_string();
    }
    let Some(room) = max.checked_sub(1) else {
        return String::new();
    };
    let head = head(room).min(room);
    let start: String = text.chars().take(head).collect();
    let end: String = text.chars().skip(count - (room - head)).collect();
    format!("{start}…{end}")
}

// ---------------------------------------------------------------- Export

fn render_export(app: &App, frame: &mut Frame, area: Rect) {
    let mut lines = Vec::new();
    match (&app.active, &app.plan) {
        (Some(scenario), Some(plan)) => {
            lines.push(Line::raw(format!(
                "Scenario {} · plan with what-if: {}",
                scenario.name,
                app.plan_what_if.describe()
            )));
            lines.push(Line::raw(match plan.recommended_row() {
                Some(best) => format!("Recommended: {}", best.label),
                None => "No feasible plan (the report says why).".to_string(),
            }));
            lines.push(Line::raw(format!(
                "Output directory: {}",
                app.out_dir.display()
            )));
            lines.push(Line::raw(""));
            if app.pending_export {
                lines.push(Line::styled(
                    format!(
                        "Exporting once the plan with what-if {} is made.",
                        app.what_if.describe()
                    ),
                    Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
                ));
            } else if app.what_if_pending() {
                lines.push(Line::styled(
                    format!(
                        "Re-planning for what-if {}: e then exports that plan, once made.",
                        app.what_if.describe()
                    ),
                    Style::new().fg(Color::Yellow),
                ));
            } else if app.exported.is_empty() {
                lines.push(Line::styled(
                    "Press e or Enter to write report.md, the CSV files and plan.json.",
                    Style::new().fg(ACCENT),
                ));
            } else {
                lines.push(Line::styled(
                    format!("Wrote {} files:", app.exported.len()),
                    GOOD.bold(),
                ));
                lines.extend(
                    app.exported
                        .iter()
                        .map(|p| Line::raw(format!("  {}", p.display()))),
                );
            }
        }
        _ if app.pending_export => lines.push(Line::styled(
            format!(
                "Exporting once the plan with what-if {} is made.",
                app.what_if.describe()
            ),
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        )),
        _ => lines.push(Line::raw(
            "Nothing to export yet. Run a scenario (1, Enter) first.",
        )),
    }
    frame.render_widget(
        Paragraph::new(Text::from(lines))
            .block(Block::bordered().title(" Export "))
            .wrap(Wrap { trim: false }),
        area,
    );
}

// ---------------------------------------------------------------- formatting

/// As the reports write milliseconds ("0.42 ms", "28.3 ms", "3.10 µs"), with
/// "∞" for an unbounded queue and seconds from 1000 ms.
fn fmt_ms(ms: f64) -> String {
    if !ms.is_finite() {
        "∞".to_string()
    } else if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        crate::report::format::ms(ms)
    }
}

/// Dollars to a glance's precision; cents below $10 (an edge plan's few
/// cents of energy a month had read "$0").
fn fmt_usd(usd: f64) -> String {
    if usd >= 10_000.0 {
        format!("${:.1}k", usd / 1000.0)
    } else if usd >= 10.0 || usd == 0.0 {
        format!("${usd:.0}")
    } else {
        format!("${usd:.2}")
    }
}

fn fmt_count(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.1}M", value / 1e6)
    } else if value >= 1e4 {
        format!("{:.0}k", value / 1e3)
    } else if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A what-if that changes the original plan's replica count: the row of
    /// the same plan at the new count is marked as the original.
    #[test]
    fn the_original_plan_is_found_at_another_replica_count() {
        let mut report = crate::report::fixtures::sample_report();
        if let Some(plan) = report.recommended.as_mut() {
            plan.id = format!(
                "online-http/cloud/c7i.large/x{}/base/tiled-int8/b8-d0",
                plan.replicas
            );
        }
        let original = PlanView::from_report(&report);
        let best = original.recommended_row().expect("a plan").clone();
        let mut plan = original.clone();
        // The what-if's plans: the original's at twice its replicas, first
        // among the alternatives; not the original itself.
        let mut scaled = best.clone();
        scaled.replicas = best.replicas * 2;
        scaled.label = best.label.replace(
            &format!("/x{}/", best.replicas),
            &format!("/x{}/", scaled.replicas),
        );
        assert_ne!(scaled.label, best.label);
        plan.candidates.retain(|c| c.label != best.label);
        plan.candidates.insert(1, scaled);
        let mut app = App::new(Vec::new(), "unused".into());
        app.original_plan = Some(original);
        app.plan_what_if.traffic = 2.0;
        app.what_if.traffic = 2.0;
        assert_eq!(original_in(&app, &plan), Some(1));
        // Another variant's plan at that count is not the original.
        let mut other_variant = plan.candidates[1].clone();
        other_variant.label = other_variant.label.replacen("/x", "/other/x", 1);
        plan.candidates[1] = other_variant;
        assert_eq!(original_in(&app, &plan), None);
        // Nothing like it among the candidates: none is marked.
        plan.candidates.remove(1);
        plan.candidates.retain(|c| !c.same_but_replicas(&best));
        assert_eq!(original_in(&app, &plan), None);
    }

    #[test]
    fn shared_parts_of_plan_ids_move_to_the_header() {
        let ids = [
            "online-stream/cloud/aws-c7g.xlarge/x1/full/quantized-int8/b1-d0",
            "online-http/cloud/aws-c7i.xlarge/x2/full/tiled-f32/b8-d5",
        ];
        let (compact, shared) = without_shared_parts(&ids);
        assert_eq!(shared, "cloud/full");
        assert_eq!(
            compact,
            [
                "online-stream/aws-c7g.xlarge/x1/quantized-int8/b1-d0",
                "online-http/aws-c7i.xlarge/x2/tiled-f32/b8-d5"
            ]
        );
        // Space-separated labels too; nothing shared, one label, or different
        // shapes: kept whole.
        let (compact, shared) = without_shared_parts(&["http cloud a x1", "batch cloud b x2"]);
        assert_eq!(
            (compact.join("|"), shared.as_str()),
            ("http a x1|batch b x2".to_string(), "cloud")
        );
        for labels in [
            &["a/b", "c/d"][..],
            &["a/b"][..],
            &["a/b/c", "a/b"][..],
            &["a/b", "a/b"][..],
        ] {
            let (compact, shared) = without_shared_parts(labels);
            assert_eq!(compact, labels, "{labels:?}");
            assert_eq!(shared, "");
        }
    }

    #[test]
    fn long_labels_shorten_names_then_their_longest_parts() {
        let id = "online-http/aws-c7i.xlarge/x2/autotuned-f32/b8-d20";
        assert_eq!(elide_label(id, 60), id);
        // Short names first.
        assert_eq!(
            elide_label(id, 44),
            "http/aws-c7i.xlarge/x2/auto-f32/b8-d20"
        );
        let cut = elide_label(id, 30);
        assert_eq!(cut.chars().count(), 30, "{cut}");
        // The replicas, backend and batch survive; the instance name gave way.
        assert!(cut.contains("/x2/") && cut.ends_with("f32/b8-d20"), "{cut}");
        assert!(cut.contains('…'), "{cut}");
        // Past what shortening parts can do, the whole label loses its middle.
        assert_eq!(elide_label(id, 10).chars().count(), 10);
        assert_eq!(elide_label("a b c", 3).chars().count(), 3);
    }

    #[test]
    fn long_labels_lose_their_middle() {
        assert_eq!(elide_middle("abcdefghij", 10), "abcdefghij");
        assert_eq!(elide_middle("abcdefghij", 7), "abc…hij");
        assert_eq!(elide_middle("abcdefghij", 6), "abc…ij");
        assert_eq!(elide_middle("abcdefghij", 1), "…");
        assert_eq!(elide_middle("abcdefghij", 0), "");
        assert_eq!(elide_middle("añbcdéfghij", 5).chars().count(), 5);
    }
}
