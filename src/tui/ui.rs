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
use super::pipeline::Measurements;
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

/// The body: the screen without the tabs and the status lines.
fn body_area(screen: Rect) -> Rect {
    let [_, body, _] = Layout::vertical([
        Constraint::Length(TABS_ROWS),
        Constraint::Min(0),
        Constraint::Length(STATUS_ROWS),
    ])
    .areas(screen);
    body
}

/// The help overlay's box on a screen: centred in the body, or the whole
/// screen when the body is too small to show a line of it.
fn help_area(screen: Rect) -> Rect {
    let body = body_area(screen);
    if body.height < 5 || body.width < 24 {
        return screen;
    }
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
    let screen = Rect::new(0, 0, 80, terminal_rows);
    help_line_count().saturating_sub(help_lines_fitting(help_area(screen).height))
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
        render_help(app, frame, frame.area());
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
    let mut room = usize::from(message_area.width);
    if let Some(job) = &app.job {
        let stage = app.stage.as_deref().unwrap_or(job.label);
        let stage = short(&format!("[{stage}…] "), room);
        room = room.saturating_sub(stage.chars().count());
        message.push(Span::styled(stage, Style::new().fg(Color::Yellow)));
    }
    // A message longer than the line ends in "…" (an error's start says what failed).
    match &app.message {
        Some(Message::Info(text)) => message.push(Span::raw(short(text, room))),
        Some(Message::Error(text)) => message.push(Span::styled(short(text, room), ERROR)),
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

fn render_help(app: &App, frame: &mut Frame, screen: Rect) {
    let area = help_area(screen);
    // Lines cut to the box say so.
    let room = usize::from(area.width.saturating_sub(2));
    let mut lines = Vec::new();
    for (group, bindings) in HELP {
        lines.push(Line::styled(
            short(group, room),
            Style::new().fg(ACCENT).add_modifier(Modifier::BOLD),
        ));
        for (key, what) in *bindings {
            // The key column narrows on a narrow box, so each line keeps some of its text.
            let column = 26.min(room / 2);
            let key = short(&format!("  {key:<column$}"), room);
            let what = short(what, room.saturating_sub(key.chars().count()));
            lines.push(Line::from(vec![
                Span::styled(key, Style::new().bold()),
                Span::raw(what),
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
    // Borders, the highlight symbol and the mark: the rest is the name's.
    let name_room = usize::from(list_width.saturating_sub(2 + 2 + 2));
    let items: Vec<ListItem> = app
        .scenarios
        .iter()
        .map(|entry| {
            let name = short(&entry.name, name_room);
            if entry.is_valid() {
                ListItem::new(Line::from(vec![Span::styled("✓ ", GOOD), Span::raw(name)]))
            } else {
                ListItem::new(Line::from(vec![
                    Span::styled("✗ ", ERROR),
                    Span::styled(name, ERROR),
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
        // Wrapped here rather than by the paragraph, so that a long value
        // continues under its own column instead of under the label.
        let inner = usize::from(detail_area.width.saturating_sub(2));
        lines.extend(
            (entry.summary.iter())
                .flat_map(|l| hanging_wrap(l, inner))
                .map(Line::raw),
        );
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            "Enter: measure and plan this scenario",
            Style::new().fg(ACCENT),
        ));
    } else {
        lines.push(Line::styled(
            format!("{} error(s):", entry.problems),
            ERROR.bold(),
        ));
        lines.extend(entry.errors.iter().map(|l| Line::styled(l.clone(), ERROR)));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .block(Block::bordered().title(format!(
                " {} ",
                short(
                    &entry.name,
                    usize::from(detail_area.width.saturating_sub(4))
                )
            )))
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
    let not_measured = &measurements.not_measured;
    let [table_area, notes_area, chart_area] = kernels_layout(area, measurements);
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

    let header = Row::new(["kernel", "latency", "pred/s", "GFLOP/s", "peak", "memory"])
        .style(Style::new().bold());
    let rows = measurements.kernels.iter().map(|k| {
        Row::new([
            Cell::from(k.key()),
            // Three significant figures, as the report's kernel table.
            Cell::from(crate::report::format::duration_ns(k.latency_ms * 1e6)),
            Cell::from(fmt_count(k.throughput_per_s)),
            Cell::from(format!("{:.1}", k.gflops)),
            Cell::from(format!("{:.0}%", k.fraction_of_peak * 100.0)),
            // The activations it held (the report's "Activations").
            Cell::from(crate::report::format::recorded_bytes(k.activation_bytes)),
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
            Constraint::Length(8),
        ],
    )
    .header(header)
    .row_highlight_style(SELECTED)
    .block(Block::bordered().title(title));
    let mut state = TableState::default().with_selected(Some(app.kernel_cursor));
    frame.render_stateful_widget(table, table_area, &mut state);

    match &app.program_pane {
        Some(pane) => render_program(app, pane.scroll, frame, chart_area),
        None => render_roofline(app, frame, chart_area),
    }
}

/// The Kernels view's areas: the table, the box of kernels not measured
/// under it, and the roofline (or compiled program) beside or under them.
/// One place, so that scrolling the program knows the rows render shows.
fn kernels_layout(area: Rect, measurements: &Measurements) -> [Rect; 3] {
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
        let kernel_rows = u16::try_from(measurements.kernels.len()).unwrap_or(u16::MAX);
        let table_rows = kernel_rows.saturating_add(3).min(area.height / 2) + notes_rows;
        let [a, b] =
            Layout::vertical([Constraint::Length(table_rows), Constraint::Min(0)]).areas(area);
        (a, b)
    };
    let [table_area, notes_area] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(notes_rows)]).areas(table_area);
    [table_area, notes_area, chart_area]
}

/// Where the compiled program's rows go (inside its box) on a `width` x
/// `height` screen; `None` when the Kernels view draws no table there (no
/// measurements, or a screen too small for the view).
fn program_text_area(app: &App, width: u16, height: u16) -> Option<Rect> {
    let measurements = app.measurements.as_ref()?;
    if width < MIN_WIDTH || height < MIN_HEIGHT {
        return None;
    }
    let body = body_area(Rect::new(0, 0, width, height));
    let [_, _, pane] = kernels_layout(body, measurements);
    Some(Block::bordered().inner(pane))
}

/// The rows of the compiled program of the selected kernel's build, each
/// line of it wrapped to `width`; or why there is none. With the title.
fn program_rows(app: &App, width: usize) -> (String, Vec<Line<'static>>) {
    let Some(m) = &app.measurements else {
        return (String::new(), Vec::new());
    };
    let Some(kernel) = m.kernels.get(app.kernel_cursor) else {
        return (
            "Compiled program".to_string(),
            vec![Line::raw("no kernel selected")],
        );
    };
    let mut title = format!("Compiled program: {}", kernel.build_label());
    let Some(program) = m.program_of(kernel) else {
        let file = app
            .active
            .as_ref()
            .map_or("<file>".to_string(), |s| s.path.display().to_string());
        let why = format!(
            "not recorded: timed before programs were kept (`workbench run --fresh {file}` \
             times it again)"
        );
        let rows = program_line_rows(&why, width)
            .into_iter()
            .map(|row| Line::styled(row, Style::new().fg(Color::Yellow)))
            .collect();
        return (title, rows);
    };
    if let Some(steps) = program.steps_summary() {
        title.push_str(&format!(" ({steps})"));
    }
    let text = program.text.trim_end();
    if text.is_empty() {
        return (
            title,
            vec![Line::styled("(the backend printed nothing)", REJECTED)],
        );
    }
    let rows = text
        .lines()
        .flat_map(|line| program_line_rows(line, width))
        .map(Line::raw)
        .collect();
    (title, rows)
}

/// One line of a program broken at spaces into rows at most `width` wide;
/// rows after the first are indented under the line's own indent and 4
/// more (at most half a row), so a step's continuation reads as such. A
/// word longer than a row is cut over rows.
fn program_line_rows(line: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    // A tab would throw the columns out: one space each.
    let chars: Vec<char> = line
        .trim_end()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let lead = chars.iter().take_while(|c| **c == ' ').count();
    let wrap = LineWrap {
        first_floor: lead,
        indent: (lead + 4).min(width / 2),
        comment_with_text: true,
    };
    wrap_rows(&chars, width, wrap)
}

/// The rows the compiled program shows at once (0 when it is not drawn),
/// on the terminal as last told.
pub fn program_page_rows(app: &App) -> usize {
    match (app.terminal_cols, app.terminal_rows) {
        (Some(width), Some(height)) => {
            program_text_area(app, width, height).map_or(0, |area| usize::from(area.height))
        }
        _ => 0,
    }
}

/// The last row the compiled program can start from: its last row at the
/// bottom of the pane (0 when it all shows), on the terminal as last told.
/// Before the terminal's size is known, its last row at the top (render
/// never scrolls past the end).
pub fn program_last_start(app: &App) -> usize {
    let area = match (app.terminal_cols, app.terminal_rows) {
        (Some(width), Some(height)) => program_text_area(app, width, height),
        _ => None,
    };
    match area {
        Some(area) => {
            let (_, rows) = program_rows(app, usize::from(area.width));
            rows.len().saturating_sub(usize::from(area.height))
        }
        None => program_rows(app, usize::MAX).1.len().saturating_sub(1),
    }
}

/// The compiled program of the selected kernel's build, from row `scroll`
/// (kept within the program here, never written back).
fn render_program(app: &App, scroll: usize, frame: &mut Frame, area: Rect) {
    let inner = Block::bordered().inner(area);
    let (title, rows) = program_rows(app, usize::from(inner.width));
    let last_start = rows.len().saturating_sub(usize::from(inner.height));
    let first = scroll.min(last_start);
    let shown_to = (first + usize::from(inner.height)).min(rows.len());
    let room = usize::from(area.width.saturating_sub(4));
    // A narrow pane keeps the build and its steps before the word "Compiled".
    let title = if title.chars().count() > room {
        title.replacen("Compiled program", "Program", 1)
    } else {
        title
    };
    let mut block = Block::bordered()
        .title(format!(" {} ", short(&title, room)))
        .border_style(Style::new().fg(ACCENT));
    if first > 0 || shown_to < rows.len() {
        let mut place = format!(" rows {}-{shown_to} of {} ", first + 1, rows.len());
        if shown_to < rows.len() {
            place.push_str("↓ more ");
        }
        block = block.title_bottom(Line::from(short(&place, room)).right_aligned());
    }
    let visible: Vec<Line> = rows.into_iter().skip(first).collect();
    frame.render_widget(Paragraph::new(visible).block(block), area);
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
    // b1, b8, b32: batch sizes in numeric order, not as text.
    let mut bars: Vec<(&String, &(u32, u32))> = app.kernel_progress.iter().collect();
    bars.sort_by(|a, b| natural_order(a.0, b.0));
    for (i, (key, (done, total))) in bars.into_iter().enumerate() {
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

/// The roofs of the Kernels view's roofline: one per memory level (its
/// bandwidth up to the f32 compute roof), and the int8 compute roof over the
/// slowest level when int8 kernels were measured, as roofline.svg draws them.
/// Each: its legend name and its points (log10 FLOP/B, log10 GFLOP/s).
fn roofline_roofs(
    m: &super::pipeline::Measurements,
    x_min: f64,
    x_max: f64,
) -> Vec<(String, Vec<(f64, f64)>)> {
    let line = |bandwidth: f64, peak: f64| -> Vec<(f64, f64)> {
        (0..=60)
            .map(|i| {
                let x = x_min + (x_max - x_min) * f64::from(i) / 60.0;
                let attainable = (bandwidth * 10f64.powf(x)).min(peak);
                (x, attainable.max(1e-6).log10())
            })
            .collect()
    };
    let mut roofs: Vec<(String, f64)> = m.bandwidth_roofs.clone();
    if roofs.is_empty() && m.bandwidth_gbs > 0.0 {
        roofs.push(("memory".to_string(), m.bandwidth_gbs));
    }
    let slowest = roofs
        .iter()
        .map(|r| r.1)
        .reduce(f64::min)
        .unwrap_or(m.bandwidth_gbs);
    let mut lines: Vec<(String, Vec<(f64, f64)>)> = roofs
        .iter()
        .map(|(name, gbs)| (format!("{name} {gbs:.0} GB/s"), line(*gbs, m.peak_gflops)))
        .collect();
    let has_int8 = m.kernels.iter().any(|k| k.precision == "int8");
    if let Some(peak) = m.peak_gops_int8.filter(|_| has_int8) {
        lines.push((format!("int8 roof {peak:.0} Gop/s"), line(slowest, peak)));
    }
    lines
}

fn render_roofline(app: &App, frame: &mut Frame, area: Rect) {
    let Some(m) = &app.measurements else { return };
    let plotted = |k: &&super::pipeline::KernelRow| k.arithmetic_intensity > 0.0 && k.gflops > 0.0;
    let as_point =
        |k: &super::pipeline::KernelRow| (k.arithmetic_intensity.log10(), k.gflops.log10());
    // Log-log axes: x = log10(FLOP/byte), y = log10(GFLOP/s), over every
    // kernel (the slowest ones too) and the roofs.
    let xs = || {
        m.kernels
            .iter()
            .filter(plotted)
            .map(|k| k.arithmetic_intensity.log10())
    };
    let ys = || m.kernels.iter().filter(plotted).map(|k| k.gflops.log10());
    let x_min = xs().fold(-1.0_f64, f64::min).floor();
    let x_max = xs().fold(3.0_f64, f64::max).ceil();
    let top = m.peak_gflops.max(m.peak_gops_int8.unwrap_or(0.0)).max(1.0);
    let y_max = ys().fold(top.log10(), f64::max).ceil() + 0.3;
    let y_min = ys().fold(0.0_f64, f64::min).floor();
    let roofs = roofline_roofs(m, x_min, x_max);
    // int8 kernels count integer ops and are held to the int8 roof: drawn apart.
    let points: Vec<(f64, f64)> = m
        .kernels
        .iter()
        .filter(plotted)
        .filter(|k| k.precision != "int8")
        .map(as_point)
        .collect();
    let int8_points: Vec<(f64, f64)> = m
        .kernels
        .iter()
        .filter(plotted)
        .filter(|k| k.precision == "int8")
        .map(as_point)
        .collect();
    let selected: Vec<(f64, f64)> = m
        .kernels
        .get(app.kernel_cursor)
        .filter(|k| plotted(k))
        .map(|k| vec![as_point(k)])
        .unwrap_or_default();
    let roof_colors = [Color::DarkGray, Color::Blue, Color::Green, Color::Gray];
    let mut names: Vec<String> = roofs.iter().map(|(name, _)| name.clone()).collect();
    names.extend(["kernels", "int8 kernels", "selected"].map(String::from));
    let names = padded_legend(names);
    let int8_roof = m.peak_gops_int8.is_some() && !int8_points.is_empty();
    let mut datasets: Vec<Dataset> = roofs
        .iter()
        .enumerate()
        .map(|(i, (_, data))| {
            let is_int8 = int8_roof && i + 1 == roofs.len();
            let color = if is_int8 {
                Color::Magenta
            } else {
                roof_colors[i.min(roof_colors.len() - 1)]
            };
            Dataset::default()
                .name(names[i].clone())
                .graph_type(GraphType::Line)
                .marker(Marker::Braille)
                .style(Style::new().fg(color))
                .data(data)
        })
        .collect();
    let n = roofs.len();
    datasets.push(
        Dataset::default()
            .name(names[n].clone())
            .graph_type(GraphType::Scatter)
            .marker(Marker::Dot)
            .style(Style::new().fg(ACCENT))
            .data(&points),
    );
    if !int8_points.is_empty() {
        datasets.push(
            Dataset::default()
                .name(names[n + 1].clone())
                .graph_type(GraphType::Scatter)
                .marker(Marker::Dot)
                .style(Style::new().fg(Color::Magenta))
                .data(&int8_points),
        );
    }
    datasets.push(
        Dataset::default()
            .name(names[n + 2].clone())
            .graph_type(GraphType::Scatter)
            .marker(Marker::Block)
            .style(Style::new().fg(Color::Yellow))
            .data(&selected),
    );
    // What fits of the roofs on the border (the legend names them all).
    let mut title = format!(" Roofline: peak {:.0} GFLOP/s", m.peak_gflops);
    let room = usize::from(area.width.saturating_sub(4));
    let extras = [
        m.peak_gops_int8
            .filter(|_| int8_roof)
            .map(|int8| format!(", int8 {int8:.0} Gop/s")),
        Some(format!(", DRAM {:.0} GB/s", m.bandwidth_gbs)),
    ];
    for extra in extras.into_iter().flatten() {
        if title.chars().count() + extra.chars().count() < room {
            title.push_str(&extra);
        }
    }
    title.push(' ');
    let chart = Chart::new(datasets)
        .block(Block::bordered().title(title))
        .legend_position(Some(LegendPosition::BottomRight))
        .hidden_legend_constraints((Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)))
        .x_axis(
            Axis::default()
                .title("FLOP/B")
                .bounds([x_min, x_max])
                .labels(log_labels(x_min, x_max)),
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
    // Scaled to the curves; the SLO is taken in when near them (as
    // latency-cdf.svg does), else the legend says it is off the chart.
    let data_max = plan
        .cdfs
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .filter(|x| x.is_finite())
        .fold(0.0_f64, f64::max);
    let (x_max, slo_on_chart) = axis_with_reference(data_max, plan.slo_ms());
    let slo_line: Vec<(f64, f64)> = plan
        .slo
        .filter(|_| slo_on_chart)
        .map(|slo| vec![(slo.latency_ms, 0.0), (slo.latency_ms, 1.0)])
        .unwrap_or_default();
    let slo_name = plan.slo.map_or_else(String::new, |s| {
        let name = format!(
            "{} SLO {}",
            crate::plan::evaluate::percentile_name(s.percentile),
            fmt_ms(s.latency_ms)
        );
        if slo_on_chart {
            name
        } else {
            format!("{name} (off the chart)")
        }
    });
    // The legend tells the top plans apart by what differs between them.
    let cdf_labels: Vec<&str> = plan.cdfs.iter().map(|c| c.label.as_str()).collect();
    let (cdf_compact, cdf_shared) = without_shared_parts(&cdf_labels);
    let legend_labels = elide_labels(&cdf_compact, LEGEND_LABEL_WIDTH);
    let mut names: Vec<String> = legend_labels
        .iter()
        .enumerate()
        .map(|(i, label)| format!("#{} {label}", i + 1))
        .collect();
    if plan.slo.is_some() {
        names.push(slo_name);
    }
    let names = padded_legend(names);
    let mut datasets: Vec<Dataset> = plan
        .cdfs
        .iter()
        .enumerate()
        .map(|(i, series)| {
            Dataset::default()
                .name(names[i].clone())
                .graph_type(GraphType::Line)
                .marker(Marker::Braille)
                .style(Style::new().fg(colors[i % colors.len()]))
                .data(&series.points)
        })
        .collect();
    if let Some(slo_name) = names.get(plan.cdfs.len()).filter(|_| plan.slo.is_some()) {
        datasets.push(
            Dataset::default()
                .name(slo_name.clone())
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
            axis_number(x_max / 2.0),
            axis_number(x_max),
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
    // Borders, the other columns and six gaps: the rest is the plan's.
    let plan_width = usize::from(table_area.width)
        .saturating_sub(2 + 2 + 9 + 9 + 5 + 7 + 7 + 6)
        .max(10);
    let table_labels = elide_labels(&cdf_compact, plan_width);
    let rows = plan.cdfs.iter().enumerate().map(|(i, series)| {
        let row = plan.candidates.iter().find(|c| c.label == series.label);
        let cells = match row {
            Some(c) => vec![
                format!("{}", i + 1),
                table_labels[i].clone(),
                fmt_ms(c.p50_ms),
                c.at_slo_ms.map_or_else(|| "-".to_string(), fmt_ms),
                format!("{:.0}%", c.utilisation * 100.0),
                format!("{:.2}%", c.failure_rate * 100.0),
                c.staleness_min
                    .map_or("-".to_string(), |m| format!("{m:.0} min")),
            ],
            None => vec![format!("{}", i + 1), table_labels[i].clone()],
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
    .block(Block::bordered().title(short(
        &if cdf_shared.is_empty() {
            " Top plans: utilisation, failures, staleness ".to_string()
        } else {
            format!(" Top plans (all {cdf_shared}): utilisation, failures, staleness ")
        },
        usize::from(table_area.width.saturating_sub(2)),
    )));
    frame.render_widget(table, table_area);
}

/// Plan labels in a chart legend are cut to this width.
const LEGEND_LABEL_WIDTH: usize = 30;

/// Legend names padded to one width: ratatui draws the legend box over the
/// plot without clearing it, so a short name would let the lines behind
/// (the SLO's) show through.
fn padded_legend(names: Vec<String>) -> Vec<String> {
    let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    names
        .into_iter()
        .map(|n| {
            let pad = width - n.chars().count();
            format!("{n}{}", " ".repeat(pad))
        })
        .collect()
}

/// The upper bound of an axis from 0 over data reaching `data_max`, and
/// whether the `reference` line (the SLO) is on it: taken in when it is
/// within the data's own span of it, as the report's SVG charts do, so a
/// far-off SLO does not squeeze the data into a corner.
fn axis_with_reference(data_max: f64, reference: Option<f64>) -> (f64, bool) {
    let data_max = if data_max.is_finite() && data_max > 0.0 {
        data_max
    } else {
        reference
            .filter(|r| r.is_finite() && *r > 0.0)
            .unwrap_or(1.0)
    };
    let on_chart = reference.is_some_and(|r| r.is_finite() && r <= 2.0 * data_max);
    let top = match reference {
        Some(r) if on_chart => data_max.max(r),
        _ => data_max,
    };
    (top * 1.05, on_chart)
}

/// An axis label with the decimals a small number needs ("0.21", "2.5", "158").
fn axis_number(value: f64) -> String {
    if value < 1.0 {
        format!("{value:.2}")
    } else if value < 10.0 {
        format!("{value:.1}")
    } else {
        fmt_count(value)
    }
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
    let lines = recommendation_lines(app, plan);
    let compact_height = if area.height >= 40 { 10 } else { 7 };
    // `w`: the summary takes the rows its text needs (the table keeps a few).
    let summary_height = if app.plan_details {
        let needed = wrapped_rows(&lines, area.width.saturating_sub(2)) + 2;
        let most = area.height.saturating_sub(6).max(compact_height);
        u16::try_from(needed)
            .unwrap_or(u16::MAX)
            .clamp(compact_height, most)
    } else {
        compact_height
    };
    let [summary_area, rest] =
        Layout::vertical([Constraint::Length(summary_height), Constraint::Min(0)]).areas(area);
    render_recommendation(app, plan, lines, frame, summary_area);
    if area.width >= WIDE {
        let [chart_area, table_area] =
            Layout::horizontal([Constraint::Percentage(35), Constraint::Percentage(65)])
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

/// The Plan view's summary: the recommendation, its figures, the what-if
/// and the rationale, as lines to wrap.
fn recommendation_lines(app: &App, plan: &PlanView) -> Vec<Line<'static>> {
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
            // On devices, what one of them holds for the model.
            let on_device = best.device_memory_bytes.map_or_else(String::new, |b| {
                format!(
                    " · {} on the device",
                    crate::scenario::format_bytes(b as f64)
                )
            });
            let mut figures = vec![Span::raw(format!(
                "{latency_name} {} · {} · {}/month{on_device}",
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
                "  ⟳ re-planning for {} ({})",
                app.what_if.describe(),
                plan_shown_for(app)
            ),
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ));
    }
    lines.push(Line::from(what_if));
    // As the exported report warns: timings that spread are not to be trusted closely.
    if !plan.noisy_kernels.is_empty() {
        lines.push(Line::styled(
            format!(
                "Timed on a busy machine: {} spread more than 10%, so latency and instance count may read high (workbench run --fresh times them anew).",
                plan.noisy_kernels.join(", ")
            ),
            Style::new().fg(Color::Yellow),
        ));
    }
    for sentence in &plan.rationale {
        lines.push(Line::raw(sentence.clone()));
    }
    lines
}

/// Rows `lines` take wrapped at `width` (word by word, as the paragraph wraps them).
fn wrapped_rows(lines: &[Line], width: u16) -> usize {
    let width = usize::from(width.max(1));
    lines
        .iter()
        .map(|line| {
            let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
            let mut rows = 1;
            let mut used = 0;
            for word in text.split_whitespace() {
                let len = word.chars().count();
                let needed = if used == 0 { len } else { used + 1 + len };
                if needed <= width {
                    used = needed;
                } else {
                    // A word longer than the line is broken over rows.
                    rows += 1;
                    used = len;
                    while used > width {
                        rows += 1;
                        used -= width;
                    }
                }
            }
            rows
        })
        .sum()
}

/// The summary box's title (`width` columns wide with its corners): the
/// scenario, and that the TUI plans a quick run, in full when it fits.
fn plan_title(plan: &PlanView, width: u16) -> String {
    let room = usize::from(width.saturating_sub(2));
    let plain = format!(" Plan: {} ", plan.scenario);
    if !plan.quick {
        return short(&plain, room);
    }
    let long = format!(
        " Plan: {} · quick run (workbench run plans in full; figures may differ) ",
        plan.scenario
    );
    let brief = format!(" Plan: {} · quick run ", plan.scenario);
    if long.chars().count() <= room {
        long
    } else if brief.chars().count() <= room {
        brief
    } else {
        // The scenario's name gives way before "quick run" does.
        format!(
            " Plan: {} · quick run ",
            short(&plan.scenario, room.saturating_sub(20))
        )
    }
}

fn render_recommendation(
    app: &App,
    plan: &PlanView,
    lines: Vec<Line<'static>>,
    frame: &mut Frame,
    area: Rect,
) {
    let needed = wrapped_rows(&lines, area.width.saturating_sub(2));
    let shown = usize::from(area.height.saturating_sub(2));
    let mut block = Block::bordered().title(plan_title(plan, area.width));
    if needed > shown {
        let hint = if app.plan_details {
            " ↓ more than fits: enlarge the terminal "
        } else {
            " ↓ more: w shows the whole rationale "
        };
        block = block.title_bottom(Line::from(hint).right_aligned());
    } else if app.plan_details {
        block = block.title_bottom(Line::from(" w: back to the table ").right_aligned());
    }
    frame.render_widget(
        Paragraph::new(lines).block(block).wrap(Wrap { trim: true }),
        area,
    );
}

/// "the scenario's own plan", or "the plan with what-if traffic x1.25".
fn plan_for(what_if: crate::plan::WhatIf) -> String {
    if what_if.is_identity() {
        "the scenario's own plan".to_string()
    } else {
        format!("the plan with what-if {}", what_if.describe())
    }
}

/// Which plan is shown while another is being made: the scenario's own, or
/// the one for a what-if.
fn plan_shown_for(app: &App) -> String {
    if app.plan_what_if.is_identity() {
        "the plan shown is the scenario's own".to_string()
    } else {
        format!("the plan shown is for {}", app.plan_what_if.describe())
    }
}

/// Where the Cost chart marks the table's selected plan: not at all when
/// it was rejected before simulation (it has no cost to be drawn at).
fn cursor_point(app: &App, plan: &PlanView) -> Option<(f64, f64)> {
    app.plan_order()
        .get(app.plan_cursor)
        .and_then(|&i| plan.candidates.get(i))
        .filter(|c| c.simulated)
        .map(|c| (c.at_slo_ms.unwrap_or(f64::INFINITY), c.cost_usd_per_month))
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
    let cursor: Vec<(f64, f64)> = cursor_point(app, plan).into_iter().collect();
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
    // The SLO is taken in when near the plans, else said to be off the chart.
    let (x_max, slo_on_chart) = axis_with_reference(feasible_or_all(&latency) * 1.4, plan.slo_ms());
    let y_max = (feasible_or_all(&|c| c.cost_usd_per_month) * 1.5).max(1.0);
    let slo_line: Vec<(f64, f64)> = plan
        .slo_ms()
        .filter(|_| slo_on_chart)
        .map(|slo| vec![(slo, 0.0), (slo, y_max)])
        .unwrap_or_default();
    let slo_name = if slo_on_chart || plan.slo_ms().is_none() {
        "SLO".to_string()
    } else {
        "SLO off chart".to_string()
    };
    let names = padded_legend(
        [
            "rejected",
            "feasible",
            "Pareto",
            slo_name.as_str(),
            "cursor",
            "best",
        ]
        .iter()
        .map(|n| n.to_string())
        .collect(),
    );
    let datasets = vec![
        Dataset::default()
            .name(names[0].clone())
            .graph_type(GraphType::Scatter)
            .marker(Marker::Dot)
            .style(REJECTED)
            .data(&rejected),
        Dataset::default()
            .name(names[1].clone())
            .graph_type(GraphType::Scatter)
            .marker(Marker::Dot)
            .style(Style::new().fg(ACCENT))
            .data(&feasible),
        Dataset::default()
            .name(names[2].clone())
            .graph_type(GraphType::Line)
            .marker(Marker::Braille)
            .style(Style::new().fg(Color::Magenta))
            .data(&front),
        Dataset::default()
            .name(names[3].clone())
            .graph_type(GraphType::Line)
            .marker(Marker::Braille)
            .style(Style::new().fg(Color::Red))
            .data(&slo_line),
        Dataset::default()
            .name(names[4].clone())
            .graph_type(GraphType::Scatter)
            .marker(Marker::Block)
            .style(Style::new().fg(Color::Yellow))
            .data(&cursor),
        Dataset::default()
            .name(names[5].clone())
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
                .labels(["0".to_string(), axis_number(x_max)]),
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
    // Whole labels when there is room (long names shorten only to fit).
    let longest = compact.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let verdicts: Vec<String> = plan
        .candidates
        .iter()
        .map(|c| {
            c.rejected_because
                .clone()
                .unwrap_or_else(|| "ok".to_string())
        })
        .collect();
    let longest_verdict = verdicts.iter().map(|v| v.chars().count()).max();
    let (label_width, verdict_width) = plan_and_verdict_widths(
        usize::from(area.width),
        longest,
        longest_verdict.unwrap_or(0),
    );
    let shown_labels = elide_labels(&compact, label_width);
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
        let verdict = short(&verdicts[i], verdict_width);
        let style = if Some(i) == plan.recommended {
            GOOD
        } else if c.feasible() {
            Style::new()
        } else {
            REJECTED
        };
        Row::new([
            mark.to_string(),
            shown_labels[i].clone(),
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
        .map(|c| {
            let reason = c
                .rejected_because
                .as_deref()
                .unwrap_or("meets every constraint");
            selected_reason_title(&c.label, reason, usize::from(area.width))
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

/// Columns of the candidate table besides the plan and the verdict: the
/// borders, the mark, the latency and cost columns and the four gaps.
const CANDIDATE_FIXED_COLUMNS: usize = 2 + 1 + 9 + 8 + 4;

/// Widths of the plan and verdict columns of a candidate table `width`
/// wide: each its longest text when both fit; otherwise the verdict gets
/// its longest text up to a third of the room (at least 12 columns), and
/// the plan the rest (at least 10).
fn plan_and_verdict_widths(
    width: usize,
    longest_label: usize,
    longest_verdict: usize,
) -> (usize, usize) {
    let room = width.saturating_sub(CANDIDATE_FIXED_COLUMNS);
    let label = longest_label.max(4);
    if label + longest_verdict <= room {
        return (label, room - label);
    }
    let verdict = longest_verdict.min((room / 3).max(12));
    let label = label.min(room.saturating_sub(verdict).max(10));
    (label, room.saturating_sub(label))
}

/// The table's bottom title for the selected row: its label and the reason
/// in full; when that is too wide the label shortens first, then goes, and
/// only then is the reason cut (marked "…").
fn selected_reason_title(label: &str, reason: &str, width: usize) -> String {
    // Two border corners and a space each side.
    let room = width.saturating_sub(4);
    let reason_len = reason.chars().count();
    let label_room = room.saturating_sub(reason_len + 2);
    if label_room >= 12 {
        format!(
            " {}: {reason} ",
            elide_middle(&short_names(label), label_room)
        )
    } else {
        format!(" {} ", short(reason, room))
    }
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
    if parts.len() < 2 {
        return whole();
    }
    // Places every label has, from the start (plan ids of one table may
    // differ in their optional trailing parts: `/pre1`, a fallback).
    let common = parts.iter().map(Vec::len).min().unwrap_or(0);
    let shared: Vec<bool> = (0..common)
        .map(|i| parts.iter().all(|p| p[i] == first[i]))
        .collect();
    // Nothing shared, or a label would be left with nothing.
    if !shared.iter().any(|&s| s)
        || parts
            .iter()
            .any(|p| p.len() == common && shared.iter().all(|&s| s))
    {
        return whole();
    }
    let keep = |p: &Vec<&str>, want_shared: bool| -> String {
        p.iter()
            .enumerate()
            .filter(|(i, _)| shared.get(*i).copied().unwrap_or(false) == want_shared)
            .map(|(_, part)| *part)
            .collect::<Vec<_>>()
            .join(&sep.to_string())
    };
    (
        parts.iter().map(|p| keep(p, false)).collect(),
        first[..common]
            .iter()
            .zip(&shared)
            .filter(|(_, &s)| s)
            .map(|(part, _)| *part)
            .collect::<Vec<_>>()
            .join(&sep.to_string()),
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
    let short = short_names(label);
    let label = short.as_str();
    if count(label) <= max {
        return label.to_string();
    }
    let sep = if label.contains('/') { '/' } else { ' ' };
    let mut lengths: Vec<usize> = label.split(sep).map(count).collect();
    let mut excess = count(label) - max;
    // One character at a time off the longest part, keeping at least 3 of
    // each (an ellipsis and two characters), so separators survive.
    while excess > 0 {
        let Some((longest, &len)) = lengths
            .iter()
            .enumerate()
            .max_by_key(|&(i, &len)| (len, std::cmp::Reverse(i)))
        else {
            break;
        };
        if len <= 3 {
            break;
        }
        lengths[longest] -= 1;
        excess -= 1;
    }
    // A part loses its start: instance and device names differ at their end
    // ("…c7g.xlarge", "…c7i.xlarge"), not at their vendor prefix.
    let mut parts: Vec<String> = label
        .split(sep)
        .zip(&lengths)
        .map(|(part, &len)| elide_start(part, len))
        .collect();
    // Still too long: whole parts from the middle give way to one "…" part,
    // so no part runs into its neighbour.
    let joined_len = |parts: &[String]| {
        parts.iter().map(|p| count(p)).sum::<usize>() + parts.len().saturating_sub(1)
    };
    while joined_len(&parts) > max && parts.len() > 3 {
        let middle = parts.len() / 2;
        if parts[middle] == "…" {
            parts.remove(middle + 1);
        } else {
            parts[middle] = "…".to_string();
            if parts[middle - 1] == "…" {
                parts.remove(middle);
            }
        }
    }
    elide_middle(&parts.join(&sep.to_string()), max)
}

/// Long names of modes and backends in short (`online-http` to `http`).
fn short_names(label: &str) -> String {
    [
        ("online-stream", "stream"),
        ("online-http", "http"),
        ("quantized-", "q-"),
        ("autotuned-", "auto-"),
    ]
    .iter()
    .fold(label.to_string(), |text, (long, short)| {
        text.replace(long, short)
    })
}

/// The labels of one table, each cut to `max` characters so that labels
/// that differ still read differently: first the long names shorten, then
/// the parts (split at `/`, or spaces) shorten place by place, each place
/// cut the same way in every label and only as far as its values stay
/// distinct (`aws-c7i.xlarge` and `aws-c7g.xlarge` keep the `c7i` and `c7g`
/// that tell them apart); only then does each label shorten on its own
/// ([`elide_label`]). Separators are never cut.
fn elide_labels(labels: &[String], max: usize) -> Vec<String> {
    if labels.iter().all(|l| l.chars().count() <= max) {
        return labels.to_vec();
    }
    let shortened: Vec<String> = labels.iter().map(|l| short_names(l)).collect();
    if shortened.iter().all(|l| l.chars().count() <= max) {
        return shortened;
    }
    shrink_places(&shortened, max)
        .iter()
        .map(|label| elide_label(label, max))
        .collect()
}

/// The fewest characters a cut part keeps (with its ellipses).
const MIN_PART: usize = 3;
/// Parts are cut to this width before any is cut further.
const READABLE_PART: usize = 6;

/// `part` in `width` characters, showing what starts at `offset` (cuts
/// marked "…"); whole when it fits.
fn part_window(part: &[char], width: usize, offset: usize) -> String {
    if part.len() <= width {
        return part.iter().collect();
    }
    let room = width.saturating_sub(1);
    let offset = offset.min(part.len() - room);
    if offset == 0 {
        format!("{}…", part[..room].iter().collect::<String>())
    } else if offset + room >= part.len() {
        format!("…{}", part[part.len() - room..].iter().collect::<String>())
    } else {
        let inner = room.saturating_sub(1);
        format!(
            "…{}…",
            part[offset..offset + inner].iter().collect::<String>()
        )
    }
}

/// Shortens the labels' parts place by place (the n-th part of every label
/// the same way), the widest place first, each only as far as its distinct
/// values stay distinct, until every label fits in `max` or no place can
/// shorten. Labels that differed then still differ.
fn shrink_places(labels: &[String], max: usize) -> Vec<String> {
    let sep = if labels.iter().all(|l| l.contains('/')) {
        '/'
    } else {
        ' '
    };
    let rows: Vec<Vec<Vec<char>>> = labels
        .iter()
        .map(|l| l.split(sep).map(|part| part.chars().collect()).collect())
        .collect();
    let places = rows.iter().map(Vec::len).max().unwrap_or(0);
    let values: Vec<Vec<&Vec<char>>> = (0..places)
        .map(|j| {
            let set: std::collections::BTreeSet<&Vec<char>> =
                rows.iter().filter_map(|r| r.get(j)).collect();
            set.into_iter().collect()
        })
        .collect();
    // Where the values of a place start to differ, back to the last word
    // break before it ("aws-c7i", "aws-c7g": from "c7"): the window's start.
    let offsets_to_try: Vec<Vec<usize>> = values
        .iter()
        .map(|vals| {
            let shortest = vals.iter().map(|v| v.len()).min().unwrap_or(0);
            let shared = vals.first().map_or(0, |first| {
                (0..shortest)
                    .take_while(|&k| vals.iter().all(|v| v[k] == first[k]))
                    .count()
            });
            let word = vals.first().map_or(0, |first| {
                first[..shared]
                    .iter()
                    .rposition(|c| matches!(c, '-' | '.' | '_'))
                    .map_or(0, |i| i + 1)
            });
            let mut offsets = vec![word, 0, shared, usize::MAX];
            offsets.dedup();
            offsets
        })
        .collect();
    let mut widths: Vec<usize> = values
        .iter()
        .map(|vals| vals.iter().map(|v| v.len()).max().unwrap_or(0))
        .collect();
    let mut offsets = vec![0_usize; places];
    let row_width = |row: &Vec<Vec<char>>, widths: &[usize]| {
        row.iter()
            .enumerate()
            .map(|(j, part)| part.len().min(widths[j]))
            .sum::<usize>()
            + row.len().saturating_sub(1)
    };
    let distinct = |j: usize, width: usize, offset: usize| {
        let shown: std::collections::BTreeSet<String> = values[j]
            .iter()
            .map(|v| part_window(v, width, offset))
            .collect();
        shown.len() == values[j].len()
    };
    // Every place down to a readable width first, then further if need be:
    // one place cut to nothing tells less than every place cut a little.
    let mut floor = READABLE_PART;
    while rows
        .iter()
        .map(|r| row_width(r, &widths))
        .max()
        .unwrap_or(0)
        > max
    {
        // Down to the readable width, places with few values give way first
        // (they say least per character: the mode before the batch
        // settings); below it, the widest place first.
        let mut by_width: Vec<usize> = (0..places).collect();
        if floor == READABLE_PART {
            by_width.sort_by_key(|&j| (values[j].len(), std::cmp::Reverse(widths[j])));
        } else {
            by_width.sort_by_key(|&j| (std::cmp::Reverse(widths[j]), values[j].len()));
        }
        let shrunk = by_width.into_iter().find_map(|j| {
            let width = widths[j].checked_sub(1).filter(|&w| w >= floor)?;
            let offset = offsets_to_try[j]
                .iter()
                .copied()
                .find(|&o| distinct(j, width, o))?;
            Some((j, width, offset))
        });
        let Some((j, width, offset)) = shrunk else {
            if floor > MIN_PART {
                floor = MIN_PART;
                continue;
            }
            break;
        };
        widths[j] = width;
        offsets[j] = offset;
    }
    rows.iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .map(|(j, part)| part_window(part, widths[j], offsets[j]))
                .collect::<Vec<_>>()
                .join(&sep.to_string())
        })
        .collect()
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
            lines.push(Line::raw(if app.plan_what_if.is_identity() {
                format!(
                    "Scenario {} · the scenario's own plan (no what-if)",
                    scenario.name
                )
            } else {
                format!(
                    "Scenario {} · plan with what-if: {}",
                    scenario.name,
                    app.plan_what_if.describe()
                )
            }));
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
                    format!("Exporting once {} is made.", plan_for(app.what_if)),
                    Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
                ));
            } else if app.what_if_pending() {
                lines.push(Line::styled(
                    format!(
                        "Making {}: e then exports that plan, once made.",
                        plan_for(app.what_if)
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
            format!("Exporting once {} is made.", plan_for(app.what_if)),
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

/// Text order, except that runs of digits compare as numbers ("b8" < "b32").
fn natural_order(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(text: &str) -> Vec<(bool, String)> {
        let mut out: Vec<(bool, String)> = Vec::new();
        for c in text.chars() {
            let digit = c.is_ascii_digit();
            match out.last_mut() {
                Some((d, chunk)) if *d == digit => chunk.push(c),
                _ => out.push((digit, c.to_string())),
            }
        }
        out
    }
    let (a, b) = (chunks(a), chunks(b));
    for (x, y) in a.iter().zip(&b) {
        let order = match (x, y) {
            ((true, x), (true, y)) => {
                let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                x.len().cmp(&y.len()).then_with(|| x.cmp(y))
            }
            ((_, x), (_, y)) => x.cmp(y),
        };
        if order.is_ne() {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

/// Where a summary line's value starts, at most `max` in: after its label,
/// the text up to the last gap of two or more spaces ending by `max`
/// (`model       mlp ...`, `  edge  phone-midrange     2 cores ...`), or
/// after the leading spaces of a line without one (a line continuing a
/// value, or prose); 0 when those are past `max` too.
fn value_column(line: &str, max: usize) -> usize {
    let chars: Vec<char> = line.trim_end().chars().collect();
    let leading = chars.iter().take_while(|c| **c == ' ').count();
    let mut column = leading;
    let mut i = leading;
    while i < chars.len() {
        let gap = chars[i..].iter().take_while(|c| **c == ' ').count();
        if gap >= 2 && i + gap < chars.len() && i + gap <= max {
            column = i + gap;
        }
        i += gap.max(1);
    }
    if column <= max {
        column
    } else {
        0
    }
}

/// `line` broken at spaces into rows of at most `width` characters, rows
/// after the first indented to its value column (a hanging indent, within
/// the first half of the row). A word longer than a row is cut.
fn hanging_wrap(line: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let chars: Vec<char> = line.trim_end().chars().collect();
    let indent = value_column(line, width / 2);
    // The first row never breaks before its value column (a label alone on a row).
    let wrap = LineWrap {
        first_floor: indent,
        indent,
        comment_with_text: false,
    };
    wrap_rows(&chars, width, wrap)
}

/// How [`wrap_rows`] breaks a line.
struct LineWrap {
    /// The first row breaks only after this column.
    first_floor: usize,
    /// Rows after the first start this far in.
    indent: usize,
    /// A `#` that starts a comment goes to the next row with its text, not
    /// alone at the end of a row.
    comment_with_text: bool,
}

/// `chars` broken at spaces into rows of at most `width` (at least 1)
/// characters: at the last space within the row, else cut there.
fn wrap_rows(chars: &[char], width: usize, wrap: LineWrap) -> Vec<String> {
    let mut rows = Vec::new();
    let mut start = 0;
    let mut prefix = 0;
    loop {
        let room = width.saturating_sub(prefix).max(1);
        let rest = &chars[start..];
        if rest.len() <= room {
            rows.push(" ".repeat(prefix) + &rest.iter().collect::<String>());
            return rows;
        }
        let floor = if prefix == 0 { wrap.first_floor } else { 0 };
        let mut end = (floor + 1..=room)
            .rev()
            .find(|&i| rest[i] == ' ')
            .unwrap_or(room);
        if wrap.comment_with_text {
            if let Some(hash) = rest[..end].iter().rposition(|c| *c != ' ') {
                if rest[hash] == '#' && hash > floor && rest[hash - 1] == ' ' {
                    end = hash;
                }
            }
        }
        let row: String = rest[..end].iter().collect();
        rows.push(" ".repeat(prefix) + row.trim_end());
        start += end;
        start += chars[start..].iter().take_while(|c| **c == ' ').count();
        prefix = wrap.indent;
        if start >= chars.len() {
            return rows;
        }
    }
}

/// `text` cut to `max` characters, ending in "…" when cut.
fn short(text: &str, max: usize) -> String {
    elide(text, max, |room| room)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lines_wrap_under_their_value_column() {
        let line = "model       convnet 40x98x1 -> 256 classes, 62.5 k params";
        let rows = hanging_wrap(line, 30);
        assert_eq!(
            rows,
            [
                "model       convnet 40x98x1 ->",
                "            256 classes, 62.5",
                "            k params",
            ]
        );
        assert!(rows.iter().all(|r| r.chars().count() <= 30), "{rows:?}");
        // A line continuing a value keeps its own indent.
        assert_eq!(
            hanging_wrap("      62.5 k params; 5.3 M FLOPs", 20),
            ["      62.5 k params;", "      5.3 M FLOPs"]
        );
        // No label column: rows start at the left; a long word is cut.
        assert_eq!(
            hanging_wrap("model: abcdefghij xy", 8),
            ["model:", "abcdefgh", "ij xy"]
        );
        assert_eq!(hanging_wrap("short", 80), ["short"]);
        // An indented label.
        assert_eq!(
            hanging_wrap("  edge  phone 2 cores, 1.0 GB", 20),
            ["  edge  phone 2", "        cores, 1.0", "        GB"]
        );
        // Of two gaps, the last within half the row: the value after a
        // two-part label.
        assert_eq!(
            hanging_wrap("  edge  phone  2 cores, 1.0 GB, 70 GFLOP/s", 30),
            [
                "  edge  phone  2 cores, 1.0",
                "               GB, 70 GFLOP/s"
            ]
        );
        // An indent past half the width is dropped rather than leaving a sliver.
        assert_eq!(hanging_wrap("a          bbbb cccc", 12), ["a", "bbbb cccc"]);
    }

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
        assert!(elide_label(id, 10).chars().count() <= 10);
        assert_eq!(elide_label("a b c", 3).chars().count(), 3);
    }

    /// Candidate ids that differ in the middle of a part (c7i / c7g) stay
    /// distinct when cut, and keep every separator.
    #[test]
    fn labels_of_one_table_stay_distinct_when_cut() {
        let ids: Vec<String> = [
            "online-http/aws-c7i.xlarge/x1/distilled/tiled-f32/b16-d1",
            "online-http/aws-c7g.xlarge/x1/distilled/tiled-f32/b16-d1",
            "online-http/aws-m7i.2xlarge/x2/full/quantized-int8/b8-d1",
            "online-stream/aws-c7i.xlarge/x10/distilled/tiled-f32/b16-d10",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for width in [44, 40, 36, 32] {
            let cut = elide_labels(&ids, width);
            for (label, id) in cut.iter().zip(&ids) {
                assert!(label.chars().count() <= width, "{width}: {label}");
                assert_eq!(
                    label.matches('/').count(),
                    id.matches('/').count(),
                    "{width}: a separator was cut: {label}"
                );
            }
            let distinct: std::collections::BTreeSet<&String> = cut.iter().collect();
            assert_eq!(distinct.len(), ids.len(), "{width}: {cut:?}");
        }
        // What tells the instances apart is what is kept.
        let cut = elide_labels(&ids, 40);
        assert!(cut[0].contains("c7i") && cut[1].contains("c7g"), "{cut:?}");
    }

    /// A long hybrid id sharing much with its neighbours loses no separator
    /// (it had read `…brid/cloud/…arge/x1…ll/…int8/…-d10/pre1`).
    #[test]
    fn a_long_label_cut_on_its_own_keeps_its_separators() {
        let id = "hybrid/cloud/aws-c7i.xlarge/x1/full/quantized-int8/b32-d10/pre1";
        for width in [40, 32] {
            let cut = elide_label(id, width);
            assert!(cut.chars().count() <= width, "{cut}");
            assert_eq!(cut.matches('/').count(), 7, "{width}: {cut}");
        }
        // Narrower than its parts can shrink: middle parts give way whole.
        let cut = elide_label(id, 24);
        assert!(cut.chars().count() <= 24, "{cut}");
        assert!(cut.contains("/…/") && cut.starts_with('…'), "{cut}");
    }

    /// The verdict gets a fair share of a narrow table; at 200 columns it
    /// shows whole beside a long plan column.
    #[test]
    fn the_verdict_column_gets_a_fair_share() {
        // The Plan view's table at 120 columns is 72 wide.
        let (label, verdict) = plan_and_verdict_widths(72, 45, 29);
        assert!(verdict >= (72 - CANDIDATE_FIXED_COLUMNS) / 3, "{verdict}");
        assert_eq!(label + verdict, 72 - CANDIDATE_FIXED_COLUMNS);
        let (label, verdict) = plan_and_verdict_widths(120, 60, 29);
        assert_eq!((label, verdict >= 29), (60, true));
        // Cut verdicts say so.
        assert_eq!(short("p99 70.9 ms > SLO 30.0 ms", 12), "p99 70.9 ms…");
    }

    #[test]
    fn the_selected_rows_reason_is_whole_or_marked() {
        let label = "online-http/cloud/aws-c7i.xlarge/x1/distilled/tiled-f32/b16-d1";
        let reason = "accuracy agreement 98.5% < 99.0% required";
        let title = selected_reason_title(label, reason, 72);
        assert!(title.chars().count() <= 70, "{title}");
        assert!(title.contains(reason), "{title}");
        let narrow = selected_reason_title(label, reason, 30);
        assert!(narrow.chars().count() <= 28, "{narrow}");
        assert!(narrow.ends_with("… "), "{narrow}");
    }

    fn screen(app: &App, width: u16, height: u16) -> String {
        let mut terminal =
            ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height))
                .expect("test backend");
        terminal.draw(|frame| render(app, frame)).expect("draw");
        terminal.backend().to_string()
    }

    /// An app showing `report` as its plan, in `view`.
    fn showing(report: &crate::report::Report, view: View) -> App {
        let mut app = App::new(Vec::new(), "unused".into());
        let plan = PlanView::from_report(report);
        app.original_plan = Some(plan.clone());
        app.plan = Some(plan);
        app.view = view;
        app
    }

    /// The top plans of the Simulation legend differ in the middle of their
    /// instance name: the legend keeps what tells them apart; a far-off SLO
    /// is said to be off the chart instead of squeezing the curves.
    #[test]
    fn the_simulation_legend_tells_the_top_plans_apart() {
        let mut report = crate::report::fixtures::sample_report();
        let ids = [
            "online-stream/cloud/aws-c7g.xlarge/x1/full/tiled-f32/b1-d0",
            "online-stream/cloud/aws-c7i.xlarge/x1/full/tiled-f32/b1-d0",
            "online-stream/cloud/aws-m7i.xlarge/x1/full/tiled-f32/b1-d0",
        ];
        for (cdf, id) in report.latency_cdfs.iter_mut().zip(ids) {
            cdf.plan_id = id.to_string();
            for point in &mut cdf.points {
                point.latency_ms /= 100.0;
            }
        }
        let app = showing(&report, View::Simulation);
        let text = screen(&app, 120, 34);
        for tell in ["#1 aws-c7g", "#2 aws-c7i", "#3 aws-m7i"] {
            assert!(text.contains(tell), "{tell}:\n{text}");
        }
        assert!(text.contains("(off the chart)"), "{text}");
        assert!(
            text.contains("all online-stream/cloud/x1/full/tiled-f32/b1-d0"),
            "{text}"
        );
    }

    #[test]
    fn an_slo_near_the_data_is_on_the_axis_a_far_one_is_not() {
        assert_eq!(axis_with_reference(40.0, Some(50.0)), (50.0 * 1.05, true));
        let (top, on) = axis_with_reference(0.2, Some(30.0));
        assert!(!on && top < 1.0, "{top}");
        assert_eq!(axis_number(0.21), "0.21");
        assert_eq!(axis_number(158.0), "158");
    }

    /// The cursor on a plan rejected before simulation (no cost) is not drawn.
    #[test]
    fn the_cost_chart_draws_no_cursor_for_a_plan_never_simulated() {
        let mut report = crate::report::fixtures::sample_report();
        for alt in &mut report.alternatives {
            alt.plan.simulated = false;
        }
        let mut app = showing(&report, View::Plan);
        let plan = app.plan.clone().expect("a plan");
        assert!(
            cursor_point(&app, &plan).is_some(),
            "the recommended plan was simulated"
        );
        app.plan_cursor = 3;
        assert_eq!(cursor_point(&app, &plan), None);
    }

    /// The TUI plans a quick run and says so; a busy machine's timings too.
    #[test]
    fn the_plan_view_says_it_is_a_quick_run() {
        let mut report = crate::report::fixtures::sample_report();
        let app = showing(&report, View::Plan);
        assert!(!screen(&app, 120, 34).contains("quick run"));
        report.assumptions.quick = true;
        let app = showing(&report, View::Plan);
        let text = screen(&app, 120, 34);
        assert!(text.contains("quick run"), "{text}");
        assert!(screen(&app, 80, 24).contains("quick run"));
    }

    /// The recommendation's figures say what a device holds for an edge
    /// plan; a cloud plan's say nothing of it.
    #[test]
    fn an_edge_plan_says_what_the_device_holds() {
        let mut report = crate::report::fixtures::sample_report();
        let app = showing(&report, View::Plan);
        assert!(!screen(&app, 120, 34).contains("on the device"));
        if let Some(plan) = report.recommended.as_mut() {
            plan.device_memory_bytes = Some(294_300);
        }
        let app = showing(&report, View::Plan);
        let text = screen(&app, 120, 34);
        assert!(text.contains("/month · 294.3 kB on the device"), "{text}");
    }

    /// A rationale longer than the summary box says there is more, and `w`
    /// shows all of it.
    #[test]
    fn the_whole_rationale_can_be_read() {
        let report = crate::report::fixtures::sample_report();
        let last = report.rationale.last().expect("a rationale").clone();
        let mut app = showing(&report, View::Plan);
        let text = screen(&app, 120, 34);
        assert!(!text.contains("Runner-up"), "{text}");
        assert!(text.contains("more: w"), "{text}");
        app.plan_details = true;
        let text = screen(&app, 120, 34);
        assert!(text.contains("Runner-up"), "{text}");
        assert!(text.contains(&last[last.len() - 20..]), "{text}");
        assert!(text.contains("w: back"), "{text}");
    }

    /// The roofline draws each memory level's roof and the int8 roof its
    /// int8 kernels are held to, and its y axis reaches kernels below 1 GFLOP/s.
    #[test]
    fn the_roofline_draws_every_roof_and_every_kernel() {
        use crate::tui::pipeline::{KernelRow, Measurements};
        let kernel = |precision: &str, gflops: f64, intensity: f64| KernelRow {
            variant: None,
            model_variant: "base".into(),
            backend: "naive".into(),
            precision: precision.into(),
            batch: 1,
            latency_ms: 1.0,
            throughput_per_s: 1000.0,
            gflops,
            fraction_of_peak: 0.01,
            arithmetic_intensity: intensity,
            activation_bytes: None,
        };
        let measurements = Measurements {
            kernels: vec![kernel("f32", 0.05, 0.5), kernel("int8", 300.0, 200.0)],
            peak_gflops: 160.0,
            bandwidth_gbs: 20.0,
            peak_gops_int8: Some(630.0),
            bandwidth_roofs: vec![
                ("L1".into(), 400.0),
                ("L2".into(), 150.0),
                ("DRAM".into(), 20.0),
            ],
            tuned: None,
            not_measured: Vec::new(),
            programs: Vec::new(),
            cache: std::sync::Arc::new(()),
        };
        let roofs = roofline_roofs(&measurements, -1.0, 3.0);
        let names: Vec<&str> = roofs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "L1 400 GB/s",
                "L2 150 GB/s",
                "DRAM 20 GB/s",
                "int8 roof 630 Gop/s"
            ]
        );
        // The int8 roof flattens at its own peak, above the f32 one.
        let int8_top = roofs[3].1.last().expect("points").1;
        assert!((int8_top - 630f64.log10()).abs() < 1e-9, "{int8_top}");
        let mut app = App::new(Vec::new(), "unused".into());
        app.measurements = Some(measurements);
        app.view = View::Kernels;
        let text = screen(&app, 160, 48);
        assert!(text.contains("int8 630 Gop/s"), "{text}");
        // The axis reaches down to the 0.05 GFLOP/s kernel.
        assert!(text.contains("0.01"), "{text}");
    }

    #[test]
    fn numbers_in_names_sort_as_numbers() {
        let mut keys = vec![
            "tiled f32 b32",
            "tiled f32 b1",
            "tiled f32 b8",
            "naive f32 b16",
        ];
        keys.sort_by(|a, b| natural_order(a, b));
        assert_eq!(
            keys,
            [
                "naive f32 b16",
                "tiled f32 b1",
                "tiled f32 b8",
                "tiled f32 b32"
            ]
        );
    }

    /// On a tiny terminal the help still shows (it had drawn nothing at
    /// 20x5), and cut lines end in "…".
    #[test]
    fn the_help_shows_on_a_tiny_terminal() {
        let mut app = App::new(Vec::new(), "unused".into());
        app.show_help = true;
        let text = screen(&app, 20, 5);
        assert!(text.contains("Everywhere"), "{text}");
        assert!(text.contains('…'), "{text}");
    }

    /// Names and messages too long for a small terminal end in "…".
    #[test]
    fn cut_names_and_messages_say_so() {
        let mut entries = crate::tui::fake::builtin_scenarios();
        entries[0].name = "a-very-long-scenario-name-for-a-small-list".to_string();
        let mut app = App::new(entries, "unused".into());
        app.message = Some(Message::Error(
            "scenarios/broken.toml:3:1: unknown key `trafic` (expected one of: traffic, slo, budget)"
                .to_string(),
        ));
        let text = screen(&app, 60, 16);
        assert!(text.contains("✓ a-very-long-s…"), "{text}");
        assert!(
            text.contains("a-very-long-scenario-name-for-a-sma… "),
            "{text}"
        );
        assert!(text.contains("(expected o…"), "{text}");
    }

    /// Wording when the plan shown is the scenario's own.
    #[test]
    fn the_scenarios_own_plan_is_called_so() {
        let report = crate::report::fixtures::sample_report();
        let mut app = showing(&report, View::Export);
        app.active = Some(crate::tui::fake::builtin_scenarios().remove(0));
        let text = screen(&app, 120, 34);
        assert!(text.contains("the scenario's own plan"), "{text}");
        assert!(!text.contains("what-if: as in the scenario"), "{text}");
        app.view = View::Plan;
        app.what_if.traffic = 2.0;
        let text = screen(&app, 160, 34);
        assert!(
            text.contains("the plan shown is the scenario's own"),
            "{text}"
        );
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

    /// The Kernels view's compiled program (Enter / p), driven by keys as a
    /// person presses them, over the fake pipeline's measurements.
    mod program_pane {
        use super::*;
        use crate::tui::app::{update, Action, ProgramPane, WhatIfKnob};
        use crate::tui::fake::{builtin_scenarios, FakePipeline};
        use crate::tui::keys::{action_for_key, status_hints};
        use crate::tui::pipeline::Pipeline;
        use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;

        /// The fake's rows, in order: naive, tiled, autotuned x f32, int8 x b1, b32.
        const NAIVE_F32: usize = 0;
        const NAIVE_INT8: usize = 2;
        const TILED_F32_B1: usize = 4;
        const TILED_F32_B32: usize = 5;

        /// The Kernels view of a measured fake scenario on a `width` x `height` terminal.
        fn measured(width: u16, height: u16) -> App {
            let scenario = builtin_scenarios().remove(0);
            let measurements = FakePipeline::new()
                .measure(&scenario, &|_| {}, &Arc::new(AtomicBool::new(false)))
                .expect("fake measurements");
            let mut app = App::new(builtin_scenarios(), "unused".into());
            app.active = Some(scenario);
            app.measurements = Some(measurements);
            app.view = View::Kernels;
            app.set_terminal_size(width, height);
            app
        }

        /// Presses `code` as the event loop would: key, action, update.
        fn press(app: &mut App, code: KeyCode) {
            let key = KeyEvent::new(code, KeyModifiers::NONE);
            if let Some(action) = action_for_key(app, key) {
                assert!(update(app, action).is_none(), "{code:?} started a job");
            }
        }

        fn select(app: &mut App, row: usize) {
            while app.kernel_cursor > row {
                press(app, KeyCode::Up);
            }
            while app.kernel_cursor < row {
                press(app, KeyCode::Down);
            }
            assert_eq!(app.kernel_cursor, row);
        }

        fn now(app: &App) -> String {
            let (width, height) = (
                app.terminal_cols.expect("size"),
                app.terminal_rows.expect("size"),
            );
            screen(app, width, height)
        }

        /// A program of `lines` numbered lines for the tiled f32 build.
        fn with_long_tiled_program(app: &mut App, lines: usize) {
            let m = app.measurements.as_mut().expect("measured");
            let program = m
                .programs
                .iter_mut()
                .find(|p| p.backend.name() == "tiled" && p.precision.name() == "f32")
                .expect("the tiled f32 program");
            program.text = (1..=lines)
                .map(|i| format!("step {i:02}"))
                .collect::<Vec<_>>()
                .join("\n");
        }

        fn scroll(app: &App) -> usize {
            app.program_pane.expect("open").scroll
        }

        #[test]
        fn enter_shows_the_selected_builds_program_and_p_closes_it() {
            for (width, height) in [(80, 24), (160, 48)] {
                let mut app = measured(width, height);
                select(&mut app, TILED_F32_B1);
                assert!(now(&app).contains("Roofline"));
                press(&mut app, KeyCode::Enter);
                let text = now(&app);
                assert!(
                    text.contains("Compiled program: base tiled f32 (5 graph ops -> 3 steps)"),
                    "{text}"
                );
                assert!(
                    text.contains("%1 = matmul(%0) 1x64 . 64x128 +bias +relu  # dense0+act0"),
                    "{text}"
                );
                assert!(!text.contains("Roofline"), "{text}");
                // The table stays, its row selected, and the keys say how to close.
                assert!(text.contains("tiled f32 b1"), "{text}");
                assert!(text.contains("close program"), "{text}");
                press(&mut app, KeyCode::Char('p'));
                let text = now(&app);
                assert!(text.contains("Roofline"), "{text}");
                assert!(!text.contains("Compiled program"), "{text}");
            }
        }

        #[test]
        fn another_row_shows_its_own_builds_program() {
            let mut app = measured(80, 24);
            select(&mut app, NAIVE_F32);
            press(&mut app, KeyCode::Char('p'));
            let naive = now(&app);
            assert!(
                naive.contains("Compiled program: base naive f32"),
                "{naive}"
            );
            assert!(naive.contains("%2 = relu(%1)  # act0"), "{naive}");
            assert!(!naive.contains("matmul(%0)"), "{naive}");
            // While open the arrows scroll the program, not the table.
            press(&mut app, KeyCode::Down);
            assert_eq!(app.kernel_cursor, NAIVE_F32);
            press(&mut app, KeyCode::Esc);
            select(&mut app, TILED_F32_B1);
            press(&mut app, KeyCode::Enter);
            let tiled = now(&app);
            assert!(
                tiled.contains("Compiled program: base tiled f32"),
                "{tiled}"
            );
            assert!(tiled.contains("matmul(%0) 1x64"), "{tiled}");
            assert!(!tiled.contains("relu(%1)"), "{tiled}");
            // Another batch of the same build: one compile, the same program.
            press(&mut app, KeyCode::Enter);
            select(&mut app, TILED_F32_B32);
            press(&mut app, KeyCode::Enter);
            assert_eq!(program_rows(&app, 70), {
                let mut b1 = measured(80, 24);
                b1.kernel_cursor = TILED_F32_B1;
                program_rows(&b1, 70)
            });
        }

        #[test]
        fn the_program_scrolls_by_row_and_page_and_stops_at_its_end() {
            // 80x24: the pane under the table shows 9 rows of 40.
            let mut app = measured(80, 24);
            with_long_tiled_program(&mut app, 40);
            select(&mut app, TILED_F32_B1);
            press(&mut app, KeyCode::Enter);
            assert_eq!(program_page_rows(&app), 9);
            let text = now(&app);
            assert!(
                text.contains("step 01") && text.contains("step 09"),
                "{text}"
            );
            assert!(!text.contains("step 10"), "{text}");
            assert!(text.contains("rows 1-9 of 40 ↓ more"), "{text}");
            press(&mut app, KeyCode::Char('j'));
            let text = now(&app);
            assert!(
                !text.contains("step 01") && text.contains("step 10"),
                "{text}"
            );
            // A page keeps one row of the last in sight.
            press(&mut app, KeyCode::PageDown);
            assert_eq!(scroll(&app), 9);
            assert!(now(&app).contains("step 10 "), "the last page's row");
            for _ in 0..10 {
                press(&mut app, KeyCode::PageDown);
            }
            // The end: the last row at the bottom, and no further.
            assert_eq!(scroll(&app), 40 - 9);
            let text = now(&app);
            assert!(
                text.contains("step 40") && text.contains("step 32"),
                "{text}"
            );
            assert!(!text.contains("step 31"), "{text}");
            assert!(text.contains("rows 32-40 of 40"), "{text}");
            assert!(!text.contains("↓ more"), "{text}");
            press(&mut app, KeyCode::Down);
            assert_eq!(scroll(&app), 40 - 9);
            press(&mut app, KeyCode::PageUp);
            assert_eq!(scroll(&app), 40 - 9 - 8);
            press(&mut app, KeyCode::Char('k'));
            assert_eq!(scroll(&app), 40 - 9 - 9);
            for _ in 0..10 {
                press(&mut app, KeyCode::PageUp);
            }
            assert_eq!(scroll(&app), 0);
            // A larger terminal shows it all: nothing to scroll.
            app.set_terminal_size(160, 48);
            press(&mut app, KeyCode::PageDown);
            assert_eq!(scroll(&app), 0);
            let text = now(&app);
            assert!(
                text.contains("step 01") && text.contains("step 40"),
                "{text}"
            );
        }

        #[test]
        fn a_resize_brings_a_scrolled_program_back_to_its_end() {
            let mut app = measured(80, 24);
            with_long_tiled_program(&mut app, 40);
            select(&mut app, TILED_F32_B1);
            press(&mut app, KeyCode::Enter);
            for _ in 0..40 {
                press(&mut app, KeyCode::Down);
            }
            assert_eq!(scroll(&app), 31);
            app.set_terminal_size(80, 40);
            let rows = program_page_rows(&app);
            assert!(rows > 9, "{rows}");
            assert_eq!(scroll(&app), 40 - rows);
            // The first key up shows a row more at once.
            press(&mut app, KeyCode::Up);
            assert_eq!(scroll(&app), 40 - rows - 1);
        }

        #[test]
        fn a_build_timed_before_programs_were_kept_says_so() {
            for (width, height) in [(80, 24), (160, 48)] {
                let mut app = measured(width, height);
                select(&mut app, NAIVE_INT8);
                press(&mut app, KeyCode::Enter);
                let text = now(&app);
                assert!(text.contains("Compiled program: base naive int8"), "{text}");
                assert!(
                    text.contains("not recorded: timed before programs were kept"),
                    "{text}"
                );
                assert!(text.contains("--fresh"), "{text}");
                assert!(text.contains("scenarios/recsys-online.toml"), "{text}");
            }
        }

        #[test]
        fn an_empty_program_says_the_backend_printed_nothing() {
            let mut app = measured(80, 24);
            with_long_tiled_program(&mut app, 0);
            select(&mut app, TILED_F32_B1);
            press(&mut app, KeyCode::Enter);
            let text = now(&app);
            assert!(text.contains("Compiled program: base tiled f32 "), "{text}");
            assert!(text.contains("(the backend printed nothing)"), "{text}");
        }

        /// Esc closes the program first; with it closed, Esc cancels the
        /// running job as ever (in any view the program is not shown in).
        #[test]
        fn esc_closes_the_program_before_it_cancels_a_job() {
            let mut app = measured(80, 24);
            app.view = View::Plan;
            let replan = update(
                &mut app,
                Action::Nudge {
                    knob: WhatIfKnob::Traffic,
                    up: true,
                },
            );
            assert!(replan.is_some() && app.busy());
            app.view = View::Kernels;
            press(&mut app, KeyCode::Enter);
            assert!(app.program_shown());
            assert!(status_hints(&app).contains(&("Enter/p/Esc", "close program")));
            assert!(!status_hints(&app).contains(&("Esc", "cancel")));
            press(&mut app, KeyCode::Esc);
            assert!(app.program_pane.is_none());
            assert!(app.busy(), "the job runs on");
            assert!(now(&app).contains("Roofline"));
            assert!(status_hints(&app).contains(&("Esc", "cancel")));
            press(&mut app, KeyCode::Esc);
            assert!(!app.busy(), "the second Esc cancels it");

            // Open, then another view: Esc there is the job's, as before.
            press(&mut app, KeyCode::Enter);
            app.view = View::Plan;
            update(
                &mut app,
                Action::Nudge {
                    knob: WhatIfKnob::Traffic,
                    up: true,
                },
            );
            assert!(app.busy());
            press(&mut app, KeyCode::Esc);
            assert!(!app.busy());
            assert!(app.program_pane.is_some(), "still open in the Kernels view");
        }

        /// The program's keys take nothing from the other views: `p` is the
        /// price what-if in the Plan view, Enter runs on Scenarios.
        #[test]
        fn the_program_keys_are_the_kernels_views_only() {
            let app = measured(80, 24);
            let key =
                |app: &App, code| action_for_key(app, KeyEvent::new(code, KeyModifiers::NONE));
            assert!(matches!(
                key(&app, KeyCode::Enter),
                Some(Action::ToggleProgram)
            ));
            assert!(matches!(
                key(&app, KeyCode::Char('p')),
                Some(Action::ToggleProgram)
            ));
            // Closed, the pages mean nothing (the arrows move the cursor).
            assert!(key(&app, KeyCode::PageDown).is_none());
            let mut plan = measured(80, 24);
            plan.view = View::Plan;
            assert!(matches!(
                key(&plan, KeyCode::Char('p')),
                Some(Action::Nudge {
                    knob: WhatIfKnob::Price,
                    up: true
                })
            ));
            plan.view = View::Scenarios;
            assert!(matches!(key(&plan, KeyCode::Enter), Some(Action::Run)));
            // The key line and the help name the key.
            assert!(status_hints(&app).contains(&("Enter/p", "program")));
            let help: Vec<&str> = crate::tui::keys::HELP
                .iter()
                .flat_map(|(_, bindings)| bindings.iter().map(|(_, what)| *what))
                .collect();
            assert!(help.contains(&"the selected build's compiled program"));
            // Nothing measured: the key says so and opens nothing.
            let mut empty = App::new(builtin_scenarios(), "unused".into());
            empty.view = View::Kernels;
            press(&mut empty, KeyCode::Enter);
            assert!(empty.program_pane.is_none());
            assert!(
                matches!(&empty.message, Some(Message::Info(m)) if m.contains("no kernels measured"))
            );
        }

        /// Any size, any scroll, any text: drawing never panics, and at a
        /// size too small for the view it says so instead.
        #[test]
        fn small_terminals_and_odd_programs_never_panic() {
            let odd = [
                String::new(),
                "x".repeat(300),
                "\t%1 = matmul\t(%0)\r\n\n\n   ".to_string(),
                "  ".repeat(200) + "deep",
                "é中".repeat(100),
            ];
            for text in odd {
                for (width, height) in [(40, 12), (60, 16), (61, 17), (80, 24), (1, 1), (200, 5)] {
                    let mut app = measured(width, height);
                    let m = app.measurements.as_mut().expect("measured");
                    for p in &mut m.programs {
                        p.text = text.clone();
                    }
                    select(&mut app, TILED_F32_B1);
                    press(&mut app, KeyCode::Enter);
                    for code in [
                        KeyCode::PageDown,
                        KeyCode::Down,
                        KeyCode::PageUp,
                        KeyCode::Up,
                    ] {
                        press(&mut app, code);
                    }
                    let text = screen(&app, width, height);
                    if width >= MIN_WIDTH && height >= MIN_HEIGHT {
                        assert!(text.contains("Compiled program"), "{text}");
                    } else if width >= 40 && height >= 12 {
                        assert!(text.contains("Enlarge the terminal"), "{text}");
                    }
                    // A scroll beyond the end (set by hand) is drawn at the end.
                    app.program_pane = Some(ProgramPane { scroll: usize::MAX });
                    screen(&app, width, height);
                }
            }
        }

        #[test]
        fn long_program_lines_wrap_under_their_indent() {
            let line = "  gemm 1x128x64: mc 64 nc 256 kc 256 mr 8 nr 32 threads 1";
            let rows = program_line_rows(line, 30);
            assert_eq!(
                rows,
                [
                    "  gemm 1x128x64: mc 64 nc 256",
                    "      kc 256 mr 8 nr 32",
                    "      threads 1",
                ]
            );
            assert!(rows.iter().all(|r| r.chars().count() <= 30));
            // A comment's `#` starts the row its text is on.
            let rows = program_line_rows("  %1 = conv2d(%0) +bias +relu  # block0.conv", 34);
            assert_eq!(
                rows,
                ["  %1 = conv2d(%0) +bias +relu", "      # block0.conv"]
            );
            // A word longer than a row is cut over rows, nothing lost.
            let rows = program_line_rows(&"y".repeat(25), 10);
            assert_eq!(rows.concat().replace(' ', ""), "y".repeat(25));
            assert!(rows.iter().all(|r| r.chars().count() <= 10), "{rows:?}");
            assert_eq!(program_line_rows("", 10), [""]);
        }

        /// A title too long for a narrow pane gives up "Compiled" before
        /// the build or its steps.
        #[test]
        fn a_narrow_pane_keeps_the_build_in_its_title() {
            let mut app = measured(60, 16);
            select(&mut app, 8);
            press(&mut app, KeyCode::Enter);
            let text = now(&app);
            assert!(
                text.contains(" Program: base autotuned f32 (5 graph ops -> 3 steps) "),
                "{text}"
            );
        }

        /// The pane as a person sees it, with the key line under it.
        #[test]
        fn snapshot_of_the_program_pane() {
            for (width, height) in [(80, 24), (160, 48)] {
                let mut app = measured(width, height);
                select(&mut app, 8);
                press(&mut app, KeyCode::Enter);
                insta::assert_snapshot!(format!("program_pane_{width}x{height}"), now(&app));
            }
        }
    }
}
