//! Application state, the actions that change it, and `update`: the only
//! place state changes. Rendering reads `&App`; heavy work goes to the worker
//! as a [`Job`] returned by `update`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::keys::help_line_count;
use super::model::{sorted_indices, PlanView, SortKey};
use super::pipeline::{Measurements, Progress, ScenarioEntry, WhatIf};
use super::ui::{help_last_start, program_last_start, program_page_rows};
use super::worker::{Job, JobId, JobKind, JobTag, WorkerEvent};
use crate::plan::whatif::{format_factor, FactorRange, WhatIfLimits};
use crate::report::Report;

/// The tabs, in display order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Scenarios,
    Kernels,
    Simulation,
    Plan,
    Export,
}

impl View {
    pub const ALL: [View; 5] = [
        View::Scenarios,
        View::Kernels,
        View::Simulation,
        View::Plan,
        View::Export,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Scenarios => "Scenarios",
            View::Kernels => "Kernels",
            View::Simulation => "Simulation",
            View::Plan => "Plan",
            View::Export => "Export",
        }
    }

    pub fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }

    fn offset(self, by: isize) -> View {
        let n = View::ALL.len() as isize;
        let i = (self.index() as isize + by).rem_euclid(n);
        View::ALL[i as usize]
    }
}

/// One what-if assumption the keyboard can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhatIfKnob {
    Traffic,
    Rtt,
    Slo,
    Budget,
    Price,
    Offline,
}

impl WhatIfKnob {
    /// The name the what-if's description uses ("traffic x1.25").
    pub fn name(self) -> &'static str {
        match self {
            WhatIfKnob::Traffic => "traffic",
            WhatIfKnob::Rtt => "RTT",
            WhatIfKnob::Slo => "SLO",
            WhatIfKnob::Budget => "budget",
            WhatIfKnob::Price => "price",
            WhatIfKnob::Offline => "offline",
        }
    }
}

/// Everything that can happen to the app: key presses (already mapped) and worker events.
#[derive(Debug, Clone)]
pub enum Action {
    Quit,
    NextView,
    PrevView,
    ShowView(View),
    ToggleHelp,
    /// Esc: close the help, or the compiled program shown, or cancel the
    /// running job.
    Cancel,
    Up,
    Down,
    /// A page up or down the compiled program shown (PgUp, PgDn).
    PageUp,
    PageDown,
    /// The Kernels view: the selected build's compiled program in place of
    /// the roofline, or the roofline again (Enter, p).
    ToggleProgram,
    /// Measure and plan the selected scenario.
    Run,
    /// List the scenario files again (files added, removed or edited since).
    Reload,
    Export,
    CycleSort,
    /// On small screens the Plan view shows either the chart or the table.
    TogglePlanChart,
    /// The Plan view's summary in full (the whole rationale) or in a few rows.
    TogglePlanDetails,
    /// Raise (`up = true`) or lower one what-if assumption, then re-plan.
    Nudge {
        knob: WhatIfKnob,
        up: bool,
    },
    ResetWhatIf,
    Worker(WorkerEvent),
}

/// A job the UI is waiting for.
#[derive(Debug, Clone)]
pub struct RunningJob {
    pub id: JobId,
    pub tag: JobTag,
    pub label: &'static str,
    pub cancel: Arc<AtomicBool>,
}

/// A line for the status bar.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Info(String),
    Error(String),
}

/// Autotuning progress as last reported.
#[derive(Debug, Clone, PartialEq)]
pub struct TuningStatus {
    pub trial: u32,
    pub total: u32,
    pub best_gflops: f64,
    pub best_config: String,
}

/// The Kernels view's pane showing the selected build's compiled program.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgramPane {
    /// First row shown (rows are the program's lines, wrapped to the pane);
    /// kept where the last row still shows at the bottom.
    pub scroll: usize,
}

/// The whole state of the TUI.
#[derive(Debug)]
pub struct App {
    pub view: View,
    pub show_help: bool,
    /// First help line shown (the overlay scrolls on a small terminal).
    pub help_scroll: u16,
    /// The terminal's height as last told by the event loop (`None` before):
    /// scrolling the help stops where its last line shows.
    pub terminal_rows: Option<u16>,
    /// The terminal's width as last told (`None` before): the compiled
    /// program wraps to it, so its scrolling stops where its last row shows.
    pub terminal_cols: Option<u16>,
    pub should_quit: bool,
    pub scenarios: Vec<ScenarioEntry>,
    /// What the list was loaded from (empty: the default `scenarios/`): a
    /// reload lists the same.
    pub scenario_paths: Vec<PathBuf>,
    /// A scenario listed with errors is being read again: it runs if it
    /// reads without errors now.
    pub rechecking: Option<PathBuf>,
    /// What the Scenarios view says when the list is empty.
    pub no_scenarios_hint: String,
    /// Cursor in the Scenarios list.
    pub selected: usize,
    /// Where Export writes (`reports/` by default).
    pub out_dir: PathBuf,
    pub job: Option<RunningJob>,
    /// A job cancelled with Esc that has not yet said it stopped (a compile
    /// cannot be interrupted): the status line says so until it has.
    pub cancelling: Option<RunningJob>,
    next_job_id: JobId,
    /// The scenario that was last run; measurements and plans belong to it.
    pub active: Option<ScenarioEntry>,
    pub stage: Option<String>,
    /// Per kernel (backend x precision x batch): samples done, total.
    pub kernel_progress: BTreeMap<String, (u32, u32)>,
    pub tuning: Option<TuningStatus>,
    pub measurements: Option<Measurements>,
    /// The planner's report with the scenario's own assumptions.
    pub original_report: Option<Report>,
    /// The report shown (equal to the original until a what-if is applied).
    pub report: Option<Report>,
    /// Views of the two reports above, derived when they arrive.
    pub original_plan: Option<PlanView>,
    pub plan: Option<PlanView>,
    /// The what-if in force: the one `plan` was made with (`plan_what_if`),
    /// or, while they differ, the one a job under way plans next (a re-plan,
    /// or the run whose own plan is re-planned with it once made).
    pub what_if: WhatIf,
    /// The what-if `plan` was computed with.
    pub plan_what_if: WhatIf,
    /// Export was asked for while a plan was being made: it writes that plan
    /// once it arrives.
    pub pending_export: bool,
    pub sort: SortKey,
    /// Small screens: show the cost/p99 chart instead of the candidate table.
    pub plan_chart: bool,
    /// The Plan view shows its whole summary and rationale (`w`).
    pub plan_details: bool,
    /// Cursor in the Plan view's table (position in display order).
    pub plan_cursor: usize,
    /// Cursor in the Kernels table.
    pub kernel_cursor: usize,
    /// The selected build's compiled program, open in the Kernels view
    /// (`None`: the roofline is shown). It stays open across views.
    pub program_pane: Option<ProgramPane>,
    pub exported: Vec<PathBuf>,
    pub message: Option<Message>,
}

impl App {
    /// The terminal is `width` x `rows` now (at start and on each resize); a
    /// help or program scrolled further than fits the new size comes back to
    /// its end.
    pub fn set_terminal_size(&mut self, width: u16, rows: u16) {
        self.terminal_cols = Some(width);
        self.terminal_rows = Some(rows);
        let last = u16::try_from(help_last_start(rows)).unwrap_or(u16::MAX);
        self.help_scroll = self.help_scroll.min(last);
        let last = program_last_start(self);
        if let Some(pane) = &mut self.program_pane {
            pane.scroll = pane.scroll.min(last);
        }
    }

    /// The compiled program pane is on screen (its keys apply): open, in
    /// the Kernels view, over a table of measurements, no help over it.
    pub fn program_shown(&self) -> bool {
        self.program_pane.is_some()
            && self.view == View::Kernels
            && self.measurements.is_some()
            && !self.show_help
    }

    pub fn new(scenarios: Vec<ScenarioEntry>, out_dir: PathBuf) -> App {
        let message = if scenarios.is_empty() {
            Some(Message::Error(
                "no scenario files found in scenarios/ (see the Scenarios view)".to_string(),
            ))
        } else {
            None
        };
        App {
            view: View::Scenarios,
            show_help: false,
            help_scroll: 0,
            terminal_rows: None,
            terminal_cols: None,
            should_quit: false,
            scenarios,
            scenario_paths: Vec::new(),
            rechecking: None,
            // `workbench` takes no paths: it lists ./scenarios/*.toml.
            no_scenarios_hint: "No scenarios. workbench lists the .toml files in scenarios/ \
                 under the directory it starts in: put scenario files there, or start it \
                 in a directory whose scenarios/ has some. `workbench run <files>` plans \
                 scenario files anywhere, without the TUI."
                .to_string(),
            selected: 0,
            out_dir,
            job: None,
            cancelling: None,
            next_job_id: 1,
            active: None,
            stage: None,
            kernel_progress: BTreeMap::new(),
            tuning: None,
            measurements: None,
            original_report: None,
            report: None,
            original_plan: None,
            plan: None,
            what_if: WhatIf::default(),
            plan_what_if: WhatIf::default(),
            pending_export: false,
            sort: SortKey::Rank,
            plan_chart: false,
            plan_details: false,
            plan_cursor: 0,
            kernel_cursor: 0,
            program_pane: None,
            exported: Vec::new(),
            message,
        }
    }

    pub fn busy(&self) -> bool {
        self.job.is_some()
    }

    /// The current job is of this kind.
    pub fn running(&self, tag: JobTag) -> bool {
        self.job.as_ref().is_some_and(|job| job.tag == tag)
    }

    /// A plan is being made (a run's own, or a what-if's): what-if changes
    /// and an export wait for it.
    pub fn planning(&self) -> bool {
        self.running(JobTag::Run) || self.running(JobTag::Replan)
    }

    /// The what-if in force is not yet the shown plan's: a job under way
    /// plans it (see [`App::what_if`]).
    pub fn what_if_pending(&self) -> bool {
        self.what_if != self.plan_what_if
    }

    pub fn selected_scenario(&self) -> Option<&ScenarioEntry> {
        self.scenarios.get(self.selected)
    }

    /// Candidate indices of the shown plan in the table's display order.
    pub fn plan_order(&self) -> Vec<usize> {
        self.plan
            .as_ref()
            .map(|plan| sorted_indices(plan, self.sort))
            .unwrap_or_default()
    }

    fn start_job(&mut self, kind: JobKind) -> Job {
        // Latest request wins: the previous job is told to stop and its events are ignored.
        if let Some(previous) = self.job.take() {
            previous.cancel.store(true, Ordering::Relaxed);
        }
        let id = self.next_job_id;
        self.next_job_id += 1;
        let cancel = Arc::new(AtomicBool::new(false));
        self.job = Some(RunningJob {
            id,
            tag: kind.tag(),
            label: kind.label(),
            cancel: Arc::clone(&cancel),
        });
        self.stage = Some(kind.label().to_string());
        Job { id, kind, cancel }
    }

    fn is_current(&self, job: JobId) -> bool {
        self.job.as_ref().is_some_and(|running| running.id == job)
    }
}

/// Applies one action. Returns a job for the worker when the action asks for heavy work.
pub fn update(app: &mut App, action: Action) -> Option<Job> {
    match action {
        Action::Quit => {
            if let Some(job) = &app.job {
                job.cancel.store(true, Ordering::Relaxed);
            }
            app.should_quit = true;
            None
        }
        Action::NextView => {
            app.view = app.view.offset(1);
            None
        }
        Action::PrevView => {
            app.view = app.view.offset(-1);
            None
        }
        Action::ShowView(view) => {
            app.view = view;
            None
        }
        Action::ToggleHelp => {
            app.show_help = !app.show_help;
            app.help_scroll = 0;
            None
        }
        Action::Cancel => {
            if app.show_help {
                app.show_help = false;
            } else if app.program_shown() {
                // What is on screen closes first; a running job's Esc is the next one.
                app.program_pane = None;
            } else if let Some(job) = app.job.take() {
                job.cancel.store(true, Ordering::Relaxed);
                // A re-plan cannot stop inside the planner, but nothing waits
                // for it: its result is ignored, a new job gets a thread of
                // its own, and the plan shown stays. It is over for the user.
                let replan = job.tag == JobTag::Replan;
                // Measuring stops within a sample, but a compile runs to its
                // end: until the job says it stopped, say what it waits for.
                let step = app.stage.take().unwrap_or_else(|| job.label.to_string());
                let mut text = if replan {
                    "re-planning cancelled".to_string()
                } else {
                    format!("cancelling {}: waiting for {step} to stop", job.label)
                };
                // The what-if the cancelled job was to plan is not in force:
                // the one of the plan shown is.
                if app.what_if_pending() {
                    app.what_if = app.plan_what_if;
                    text.push_str(&format!("; {}", what_if_back(app)));
                }
                if std::mem::take(&mut app.pending_export) {
                    text.push_str("; nothing exported");
                }
                app.message = Some(Message::Info(text));
                if !replan {
                    app.cancelling = Some(job);
                }
            }
            None
        }
        Action::Up => {
            move_cursor(app, -1);
            None
        }
        Action::Down => {
            move_cursor(app, 1);
            None
        }
        Action::PageUp => {
            scroll_program(app, -page_step(app));
            None
        }
        Action::PageDown => {
            scroll_program(app, page_step(app));
            None
        }
        Action::ToggleProgram => {
            toggle_program(app);
            None
        }
        Action::Run => run_selected(app),
        Action::Reload => reload_list(app),
        Action::Export => export(app),
        Action::CycleSort => {
            app.sort = app.sort.next();
            app.plan_cursor = 0;
            None
        }
        Action::TogglePlanChart => {
            app.plan_chart = !app.plan_chart;
            None
        }
        Action::TogglePlanDetails => {
            app.plan_details = !app.plan_details;
            None
        }
        Action::Nudge { knob, up } => {
            // A what-if changes a plan: one shown, or one a run is making.
            if app.measurements.is_none() && !app.running(JobTag::Run) {
                app.message = Some(Message::Info(
                    "no plan to change yet: run a scenario (Enter), then try what-ifs".to_string(),
                ));
                return None;
            }
            let scenario = app.active.as_ref().or_else(|| app.selected_scenario());
            if knob == WhatIfKnob::Budget && !scenario.is_some_and(|s| s.has_budget) {
                app.message = Some(Message::Info(
                    "this scenario sets no monthly budget to scale".to_string(),
                ));
                return None;
            }
            if knob == WhatIfKnob::Offline && !scenario.is_some_and(|s| s.has_edge) {
                app.message = Some(Message::Info(
                    "this scenario lists no edge devices: the offline what-if does not apply"
                        .to_string(),
                ));
                return None;
            }
            let scenario_offline = scenario.map_or(0.0, |s| s.offline_fraction);
            let limits = scenario.map(|s| s.what_if_limits).unwrap_or_default();
            let before = app.what_if;
            let capped = nudge(&mut app.what_if, knob, up, scenario_offline, &limits);
            let Some(at) = capped else {
                return apply_what_if(app);
            };
            // The scaled scenario must stay within the scenario limits.
            let limit = format!(
                "{} x{} is the limit for this scenario",
                knob.name(),
                format_factor(at)
            );
            if app.what_if == before {
                app.message = Some(Message::Info(limit));
                return None;
            }
            let job = apply_what_if(app);
            let said = match &app.message {
                Some(Message::Info(text)) => format!("{limit}; {text}"),
                _ => limit,
            };
            app.message = Some(Message::Info(said));
            job
        }
        Action::ResetWhatIf => {
            if app.measurements.is_none() && !app.running(JobTag::Run) {
                return None;
            }
            app.what_if = WhatIf::default();
            apply_what_if(app)
        }
        Action::Worker(event) => on_worker_event(app, event),
    }
}

fn move_cursor(app: &mut App, by: isize) {
    if app.show_help {
        // Stop where the last line shows (at the last line itself while the
        // terminal's height is unknown: render never scrolls past the end).
        let last = app
            .terminal_rows
            .map_or(help_line_count().saturating_sub(1), help_last_start);
        let last = u16::try_from(last).unwrap_or(u16::MAX);
        app.help_scroll = if by < 0 {
            app.help_scroll.saturating_sub(1)
        } else {
            app.help_scroll.saturating_add(1).min(last)
        };
        return;
    }
    if app.program_shown() {
        scroll_program(app, by);
        return;
    }
    let step = |cursor: usize, len: usize| -> usize {
        if len == 0 {
            0
        } else {
            (cursor as isize + by).clamp(0, len as isize - 1) as usize
        }
    };
    match app.view {
        View::Scenarios => app.selected = step(app.selected, app.scenarios.len()),
        View::Kernels => {
            let len = app.measurements.as_ref().map_or(0, |m| m.kernels.len());
            app.kernel_cursor = step(app.kernel_cursor, len);
        }
        View::Plan => {
            let len = app.plan.as_ref().map_or(0, |p| p.candidates.len());
            app.plan_cursor = step(app.plan_cursor, len);
        }
        View::Simulation | View::Export => {}
    }
}

/// Opens the selected build's compiled program, or closes it.
fn toggle_program(app: &mut App) {
    if app.program_pane.take().is_some() {
        return;
    }
    if app
        .measurements
        .as_ref()
        .is_some_and(|m| !m.kernels.is_empty())
    {
        app.program_pane = Some(ProgramPane::default());
    } else {
        app.message = Some(Message::Info(
            "no kernels measured yet: run a scenario (Enter on Scenarios), then see what the \
             compiler made of each build"
                .to_string(),
        ));
    }
}

/// Scrolls the compiled program shown `by` rows, stopping at its top and
/// where its last row shows.
fn scroll_program(app: &mut App, by: isize) {
    if !app.program_shown() {
        return;
    }
    let last = program_last_start(app);
    if let Some(pane) = &mut app.program_pane {
        pane.scroll = pane.scroll.saturating_add_signed(by).min(last);
    }
}

/// A page of the compiled program: the rows it shows but one, so a row of
/// the last page stays in sight.
fn page_step(app: &App) -> isize {
    let rows = program_page_rows(app).saturating_sub(1).max(1);
    isize::try_from(rows).unwrap_or(isize::MAX)
}

fn run_selected(app: &mut App) -> Option<Job> {
    let scenario = app.selected_scenario()?.clone();
    if !scenario.is_valid() {
        // Listed with errors: it may have been fixed since. Read it again
        // (on the worker) and run it if it now reads without errors; not
        // while a job runs, which a new job would cancel for a file that
        // may still be broken (as a reload waits).
        if let Some(job) = &app.job {
            app.message = Some(Message::Info(format!(
                "{} has errors; {} now: Enter re-reads it once that is done, or after Esc",
                scenario.name, job.label
            )));
            return None;
        }
        app.message = Some(Message::Info(format!(
            "re-reading {}",
            scenario.path.display()
        )));
        app.rechecking = Some(scenario.path.clone());
        return Some(app.start_job(JobKind::Recheck { scenario }));
    }
    app.active = Some(scenario.clone());
    app.kernel_progress.clear();
    app.tuning = None;
    app.measurements = None;
    app.original_report = None;
    app.report = None;
    app.original_plan = None;
    app.plan = None;
    app.what_if = WhatIf::default();
    app.plan_what_if = WhatIf::default();
    app.pending_export = false;
    app.exported.clear();
    app.plan_cursor = 0;
    app.kernel_cursor = 0;
    app.program_pane = None;
    app.message = Some(Message::Info(format!("running {}", scenario.name)));
    app.view = View::Kernels;
    Some(app.start_job(JobKind::Run { scenario }))
}

/// After a what-if was dropped: which plan is in force again.
fn what_if_back(app: &App) -> String {
    if app.what_if.is_identity() {
        "back to the scenario's own plan".to_string()
    } else {
        format!(
            "what-if back to {} (the plan shown)",
            app.what_if.describe()
        )
    }
}

/// Lists the scenario files again. Not while a job runs: a new job would
/// cancel it (latest wins), and a measurement is too dear to lose to a reload.
fn reload_list(app: &mut App) -> Option<Job> {
    if let Some(job) = &app.job {
        app.message = Some(Message::Info(format!(
            "{} now: reload (r) once it is done, or after Esc",
            job.label
        )));
        return None;
    }
    app.message = Some(Message::Info("reloading the scenario files".to_string()));
    let paths = app.scenario_paths.clone();
    Some(app.start_job(JobKind::Rescan { paths }))
}

/// The list as read again: the cursor stays on the scenario it was on (by
/// file, else by name), and the status line says what changed.
fn on_listed(app: &mut App, entries: Vec<ScenarioEntry>) {
    let before: Vec<PathBuf> = app.scenarios.iter().map(|s| s.path.clone()).collect();
    let selected = app.selected_scenario().cloned();
    let added = entries.iter().filter(|e| !before.contains(&e.path)).count();
    let gone = before
        .iter()
        .filter(|path| !entries.iter().any(|e| &e.path == *path))
        .count();
    app.scenarios = entries;
    app.selected = selected
        .and_then(|old| {
            let by_path = app.scenarios.iter().position(|s| s.path == old.path);
            by_path.or_else(|| app.scenarios.iter().position(|s| s.name == old.name))
        })
        .unwrap_or(app.selected)
        .min(app.scenarios.len().saturating_sub(1));
    let broken = app.scenarios.iter().filter(|s| !s.is_valid()).count();
    let mut text = format!("reloaded: {} scenario(s)", app.scenarios.len());
    if added > 0 || gone > 0 {
        text.push_str(&format!(", {added} new, {gone} gone"));
    }
    if broken > 0 {
        text.push_str(&format!(", {broken} with errors"));
    }
    app.message = Some(if app.scenarios.is_empty() {
        Message::Error("no scenario files found in scenarios/ (see the Scenarios view)".to_string())
    } else {
        Message::Info(text)
    });
}

/// A scenario listed with errors was read again (`entry`): it runs now if
/// it has none left.
fn after_recheck(app: &mut App, path: &std::path::Path) -> Option<Job> {
    let index = app.scenarios.iter().position(|s| s.path == path)?;
    let entry = &app.scenarios[index];
    if !entry.is_valid() {
        let first = entry.errors.first().cloned().unwrap_or_default();
        app.message = Some(Message::Error(format!(
            "{} still has errors; fix the file first: {first}",
            entry.name
        )));
        return None;
    }
    app.selected = index;
    run_selected(app)
}

/// Puts the what-if just changed in force. The rule: the what-if in force
/// is the shown plan's, or a job under way is planning it (and the Plan view
/// says so). While a run is making the scenario's own plan, the change waits
/// for that plan and is re-planned as soon as it arrives; otherwise it is
/// re-planned now, superseding any re-plan under way.
fn apply_what_if(app: &mut App) -> Option<Job> {
    if app.running(JobTag::Run) {
        app.message = Some(Message::Info(if app.what_if_pending() {
            format!(
                "what-if {}: re-planned once the scenario's own plan is made",
                app.what_if.describe()
            )
        } else {
            "what-if as in the scenario: the run's own plan".to_string()
        }));
        return None;
    }
    if !app.what_if_pending() {
        // Back to the shown plan's what-if: a re-plan under way is moot.
        if app.running(JobTag::Replan) {
            if let Some(job) = app.job.take() {
                job.cancel.store(true, Ordering::Relaxed);
            }
            app.stage = None;
        }
        app.message = Some(Message::Info(format!(
            "what-if {}: the plan shown",
            app.what_if.describe()
        )));
        // An export waiting for the superseded plan writes the one shown.
        if std::mem::take(&mut app.pending_export) {
            return export(app);
        }
        return None;
    }
    replan(app)
}

fn replan(app: &mut App) -> Option<Job> {
    let (Some(scenario), Some(measurements)) = (app.active.clone(), app.measurements.clone())
    else {
        // Nothing measured to re-plan from: the what-if cannot be in force.
        app.what_if = app.plan_what_if;
        app.message = Some(Message::Info(
            "no plan to change yet: run a scenario (Enter), then try what-ifs".to_string(),
        ));
        return None;
    };
    let what_if = app.what_if;
    app.message = Some(Message::Info(format!(
        "re-planning from cached measurements: {}",
        what_if.describe()
    )));
    Some(app.start_job(JobKind::Replan {
        scenario,
        measurements,
        what_if,
    }))
}

fn export(app: &mut App) -> Option<Job> {
    // A plan is being made: the export writes that one once it arrives (the
    // what-if in force), never the one it replaces.
    if app.planning() {
        app.pending_export = true;
        app.exported.clear();
        app.message = Some(Message::Info(format!(
            "exporting once the plan ({}) is made",
            app.what_if.describe()
        )));
        return None;
    }
    start_export(app)
}

/// Exports the plan shown (with its what-if).
fn start_export(app: &mut App) -> Option<Job> {
    let (Some(scenario), Some(report)) = (app.active.clone(), app.report.clone()) else {
        app.message = Some(Message::Error(
            "nothing to export yet: run a scenario first (Enter)".to_string(),
        ));
        return None;
    };
    app.exported.clear();
    let out_dir = app.out_dir.clone();
    let report = if app.plan_what_if.is_identity() {
        report
    } else {
        what_if_report(report, &app.plan_what_if)
    };
    Some(app.start_job(JobKind::Export {
        scenario,
        report: Box::new(report),
        out_dir,
    }))
}

/// A report planned under a what-if, marked as such so that it can be neither
/// mistaken for the scenario's own plan nor written over it: it goes to
/// `<scenario>-what-if/` and says what was changed at the top.
fn what_if_report(mut report: Report, what_if: &WhatIf) -> Report {
    let changes = what_if.describe();
    report.rationale.insert(
        0,
        format!(
            "What-if ({changes}): planned with these changes to the scenario; the scenario's own plan is in {}/.",
            report.scenario
        ),
    );
    report.description = format!("What-if: {changes}. {}", report.description);
    report.scenario = format!("{}-what-if", report.scenario);
    report
}

/// Multiplicative steps keep a knob's values symmetric (up then down returns to 1.0).
const STEP: f64 = 1.25;
/// The offline what-if moves the share of time devices are offline by 10 points.
const OFFLINE_STEP: f64 = 0.1;

/// Moves one what-if knob a step, kept within the scenario's `limits`; the
/// offline share moves 10 points from the scenario's own (`scenario_offline`),
/// and back at it means "as in the scenario". Returns the factor when the
/// step ran into its limit (it stops there).
fn nudge(
    what_if: &mut WhatIf,
    knob: WhatIfKnob,
    up: bool,
    scenario_offline: f64,
    limits: &WhatIfLimits,
) -> Option<f64> {
    let scale = |value: &mut f64, range: FactorRange| -> Option<f64> {
        let mut wanted = if up { *value * STEP } else { *value / STEP };
        // Snap back to exactly 1.0 so "unchanged" is recognised after up + down.
        if (wanted - 1.0).abs() < 1e-9 {
            wanted = 1.0;
        }
        *value = range.clamp(wanted);
        (*value != wanted).then_some(*value)
    };
    match knob {
        WhatIfKnob::Traffic => scale(&mut what_if.traffic, limits.traffic),
        WhatIfKnob::Rtt => scale(&mut what_if.rtt, limits.rtt),
        WhatIfKnob::Slo => scale(&mut what_if.slo, limits.slo),
        WhatIfKnob::Budget => scale(&mut what_if.budget, limits.budget),
        WhatIfKnob::Price => scale(&mut what_if.instance_price, limits.instance_price),
        WhatIfKnob::Offline => {
            let current = what_if.offline_fraction.unwrap_or(scenario_offline);
            let step = if up { OFFLINE_STEP } else { -OFFLINE_STEP };
            // Whole-percent figures, so ten steps up and down come back exactly.
            let next = ((current + step).clamp(0.0, 1.0) * 100.0).round() / 100.0;
            what_if.offline_fraction = ((next - scenario_offline).abs() > 1e-9).then_some(next);
            None
        }
    }
}

/// Applies a worker event; returns the next job when the event calls for
/// one (a what-if set while the run made its own plan, an export waiting
/// for a plan).
fn on_worker_event(app: &mut App, event: WorkerEvent) -> Option<Job> {
    if !app.is_current(event.job()) {
        on_cancelled_job_event(app, &event);
        return None; // an overtaken or cancelled job
    }
    match event {
        WorkerEvent::Progress { progress, .. } => match progress {
            Progress::Stage(stage) => app.stage = Some(stage),
            Progress::Kernel { key, done, total } => {
                app.kernel_progress.insert(key, (done, total));
            }
            Progress::Tuning {
                trial,
                total,
                best_gflops,
                best_config,
            } => {
                app.tuning = Some(TuningStatus {
                    trial,
                    total,
                    best_gflops,
                    best_config,
                })
            }
        },
        WorkerEvent::Measured { result, .. } => match result {
            Ok(measurements) => {
                app.kernel_cursor = 0;
                app.program_pane = None;
                app.measurements = Some(measurements);
            }
            Err(error) => {
                app.message = Some(Message::Error(format!("measure failed: {error}")));
                app.what_if = app.plan_what_if;
                app.pending_export = false;
            }
        },
        WorkerEvent::Planned {
            what_if, result, ..
        } => match result {
            Ok(report) => {
                let plan = PlanView::from_report(&report);
                if what_if.is_identity() {
                    app.original_plan = Some(plan.clone());
                    app.original_report = Some((*report).clone());
                }
                app.report = Some(*report);
                app.message = Some(Message::Info(match plan.recommended_row() {
                    Some(best) => format!("plan ({}): {}", what_if.describe(), best.label),
                    None => format!("plan ({}): no feasible plan", what_if.describe()),
                }));
                app.plan = Some(plan);
                app.plan_what_if = what_if;
                app.plan_cursor = 0;
                // A what-if set while this plan was made is re-planned now
                // (the export, if one waits, follows that plan).
                if app.what_if_pending() {
                    let job = replan(app);
                    app.message = Some(Message::Info(format!(
                        "plan ({}) ready; re-planning for {}",
                        what_if.describe(),
                        app.what_if.describe()
                    )));
                    return job;
                }
                if std::mem::take(&mut app.pending_export) {
                    return start_export(app);
                }
            }
            Err(error) => {
                let mut text = format!("plan failed: {error}");
                if app.what_if_pending() {
                    app.what_if = app.plan_what_if;
                    text.push_str(&format!("; {}", what_if_back(app)));
                }
                if std::mem::take(&mut app.pending_export) {
                    text.push_str("; nothing exported");
                }
                app.message = Some(Message::Error(text));
            }
        },
        WorkerEvent::Exported { result, .. } => match result {
            Ok(paths) => {
                app.message = Some(Message::Info(format!("wrote {} files", paths.len())));
                app.exported = paths;
            }
            Err(error) => app.message = Some(Message::Error(format!("export failed: {error}"))),
        },
        WorkerEvent::Reloaded { entry, .. } => {
            if let Some(listed) = app.scenarios.iter_mut().find(|s| s.path == entry.path) {
                *listed = (*entry).clone();
            }
            // A re-read of a file listed with errors runs nothing yet.
            if !app.running(JobTag::Recheck) {
                app.active = Some(*entry);
            }
        }
        WorkerEvent::Listed { entries, .. } => on_listed(app, entries),
        WorkerEvent::Failed { error, .. } => {
            app.job = None;
            app.stage = None;
            app.message = Some(Message::Error(error));
            app.what_if = app.plan_what_if;
            app.pending_export = false;
        }
        WorkerEvent::Finished { cancelled, .. } => {
            let mut recheck = None;
            if let Some(job) = app.job.take() {
                if cancelled {
                    app.message = Some(Message::Info(format!("{} cancelled", job.label)));
                } else if job.tag == JobTag::Recheck {
                    recheck = app.rechecking.take();
                }
            }
            app.stage = None;
            // Whatever was waiting for this job's plan has no plan coming.
            app.what_if = app.plan_what_if;
            app.pending_export = false;
            if let Some(path) = recheck {
                return after_recheck(app, &path);
            }
        }
    }
    None
}

/// An event from a job that is no longer current: only the end of the job
/// cancelled with Esc matters, to say that it has stopped.
fn on_cancelled_job_event(app: &mut App, event: &WorkerEvent) {
    let ended = matches!(
        event,
        WorkerEvent::Finished { .. } | WorkerEvent::Failed { .. }
    );
    let Some(cancelling) = app
        .cancelling
        .as_ref()
        .filter(|c| ended && c.id == event.job())
    else {
        return;
    };
    // Only while the status line still says it is cancelling: anything
    // since (a newer job, a key) is the news.
    let still_shown =
        matches!(&app.message, Some(Message::Info(text)) if text.starts_with("cancelling "));
    if still_shown {
        app.message = Some(Message::Info(format!("{} cancelled", cancelling.label)));
    }
    app.cancelling = None;
}

#[cfg(test)]
mod tests {
    use super::{nudge, WhatIfKnob};
    use crate::plan::WhatIf;

    fn press(w: &mut WhatIf, up: bool, scenario_offline: f64) {
        nudge(
            w,
            WhatIfKnob::Offline,
            up,
            scenario_offline,
            &Default::default(),
        );
    }

    #[test]
    fn the_offline_what_if_moves_from_the_scenarios_own_share() {
        // A scenario 30% offline: up raises it, down lowers it.
        let mut w = WhatIf::default();
        press(&mut w, true, 0.3);
        assert_eq!(w.offline_fraction, Some(0.4));
        let mut w = WhatIf::default();
        press(&mut w, false, 0.3);
        assert_eq!(w.offline_fraction, Some(0.2));
        // Back at the scenario's own share is "as in the scenario".
        press(&mut w, true, 0.3);
        assert_eq!(w.offline_fraction, None);
        // 0% can be reached and is kept; 100% is the ceiling.
        for _ in 0..5 {
            press(&mut w, false, 0.3);
        }
        assert_eq!(w.offline_fraction, Some(0.0));
        for _ in 0..12 {
            press(&mut w, true, 0.3);
        }
        assert_eq!(w.offline_fraction, Some(1.0));
    }
}
