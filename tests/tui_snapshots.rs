//! Snapshot tests of every view at 80x24 and 160x48 (ratatui `TestBackend` +
//! insta). States are reached through `update` with the fake pipeline's
//! events, played synchronously so the screens are deterministic.

use std::path::PathBuf;
use std::sync::mpsc;

use ratatui::backend::TestBackend;
use ratatui::Terminal;
use workbench::tui::worker::run_job;
use workbench::tui::{
    update, Action, App, FakePipeline, Job, Pipeline, View, WhatIfKnob, WorkerEvent,
};

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

fn new_app() -> App {
    let pipeline = FakePipeline::new();
    App::new(
        pipeline.load_scenarios(&[]),
        PathBuf::from("target/tui-snapshot-out"),
    )
}

/// The events the worker would send for `job`.
fn job_events(job: &Job) -> Vec<WorkerEvent> {
    let (tx, rx) = mpsc::channel();
    run_job(&FakePipeline::new(), job, &tx).unwrap();
    drop(tx);
    rx.into_iter().collect()
}

/// Applies an action and, if it starts a job, the first `limit` of its events.
fn act(app: &mut App, action: Action, limit: usize) {
    if let Some(job) = update(app, action) {
        for event in job_events(&job).into_iter().take(limit) {
            update(app, Action::Worker(event));
        }
    }
}

fn act_all(app: &mut App, action: Action) {
    act(app, action, usize::MAX);
}

fn after_run() -> App {
    let mut app = new_app();
    act_all(&mut app, Action::Run);
    assert!(app.plan.is_some() && !app.busy());
    app
}

fn snapshot(name: &str, app: &App) {
    for (width, height) in SIZES {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal
            .draw(|frame| workbench::tui::ui::render(app, frame))
            .unwrap();
        insta::assert_snapshot!(format!("{name}_{width}x{height}"), terminal.backend());
    }
}

#[test]
fn scenarios_view() {
    snapshot("scenarios", &new_app());
}

#[test]
fn scenarios_view_with_errors() {
    let mut app = new_app();
    act_all(&mut app, Action::Down);
    act_all(&mut app, Action::Down);
    snapshot("scenarios_errors", &app);
}

#[test]
fn kernels_view_while_measuring() {
    let mut app = new_app();
    // Part way through: some kernels done, autotuning under way.
    act(&mut app, Action::Run, 40);
    assert!(app.busy());
    assert!(app.tuning.is_some());
    snapshot("kernels_measuring", &app);
}

#[test]
fn kernels_view_measured() {
    let mut app = after_run();
    act_all(&mut app, Action::ShowView(View::Kernels));
    act_all(&mut app, Action::Down);
    snapshot("kernels_measured", &app);
}

#[test]
fn simulation_view() {
    let mut app = after_run();
    act_all(&mut app, Action::ShowView(View::Simulation));
    snapshot("simulation", &app);
}

#[test]
fn plan_view() {
    let mut app = after_run();
    act_all(&mut app, Action::ShowView(View::Plan));
    snapshot("plan", &app);
    // At 80x24 the chart and the table take turns (`v`).
    act_all(&mut app, Action::TogglePlanChart);
    snapshot("plan_chart", &app);
}

#[test]
fn plan_view_what_if_changed() {
    let mut app = after_run();
    act_all(&mut app, Action::ShowView(View::Plan));
    for _ in 0..4 {
        act_all(
            &mut app,
            Action::Nudge {
                knob: WhatIfKnob::Traffic,
                up: true,
            },
        );
    }
    act_all(&mut app, Action::CycleSort);
    snapshot("plan_what_if", &app);
}

#[test]
fn plan_view_before_any_run() {
    let mut app = new_app();
    act_all(&mut app, Action::ShowView(View::Plan));
    snapshot("plan_empty", &app);
}

#[test]
fn export_view() {
    let mut app = after_run();
    act_all(&mut app, Action::ShowView(View::Export));
    snapshot("export_ready", &app);
    act_all(&mut app, Action::Export);
    assert_eq!(app.exported.len(), 3);
    snapshot("export_done", &app);
}

#[test]
fn help_overlay() {
    let mut app = after_run();
    act_all(&mut app, Action::ShowView(View::Plan));
    act_all(&mut app, Action::ToggleHelp);
    snapshot("help", &app);
}

/// The report module's hand-built fixture, fed in as if the worker had produced it.
fn app_with_fixture_report() -> App {
    app_with_report(workbench::report::fixtures::sample_report())
}

fn app_with_report(report: workbench::report::Report) -> App {
    use std::sync::Arc;
    use workbench::tui::Measurements;

    let mut app = new_app();
    let job = update(&mut app, Action::Run).expect("a run job");
    let measurements =
        Measurements::from_report_parts(&report.kernels, &report.roofline, None, Arc::new(()));
    update(
        &mut app,
        Action::Worker(WorkerEvent::Measured {
            job: job.id,
            result: Ok(measurements),
        }),
    );
    update(
        &mut app,
        Action::Worker(WorkerEvent::Planned {
            job: job.id,
            what_if: workbench::tui::WhatIf::default(),
            result: Ok(Box::new(report)),
        }),
    );
    update(
        &mut app,
        Action::Worker(WorkerEvent::Finished {
            job: job.id,
            cancelled: false,
        }),
    );
    assert!(!app.busy());
    app
}

#[test]
fn views_of_the_report_fixture() {
    let mut app = app_with_fixture_report();
    let plan = app.plan.clone().expect("plan view");
    let report = app.report.clone().expect("report kept");
    assert_eq!(plan.candidates.len(), report.alternatives.len() + 1);
    assert_eq!(
        plan.recommended_row().map(|c| c.label.clone()),
        report.recommended.as_ref().map(|p| p.id.clone())
    );
    assert_eq!(plan.slo_ms(), Some(50.0));
    assert_eq!(plan.latency_name(), "p99");
    for view in [View::Kernels, View::Simulation, View::Plan] {
        act_all(&mut app, Action::ShowView(view));
        snapshot(&format!("fixture_{}", view.title().to_lowercase()), &app);
    }
}

fn screen(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| workbench::tui::ui::render(app, frame))
        .unwrap();
    terminal.backend().to_string()
}

/// The fixture with its SLO on p95 and each plan's p95 set apart from its p99.
fn p95_report() -> workbench::report::Report {
    let mut report = workbench::report::fixtures::sample_report();
    report.slo = Some(workbench::report::LatencySlo {
        percentile: 95.0,
        latency_ms: 30.0,
    });
    let plans = report
        .recommended
        .iter_mut()
        .chain(report.alternatives.iter_mut().map(|a| &mut a.plan));
    for plan in plans {
        // 0.777 of the p99: a figure no other column shows.
        plan.slo_latency_ms = Some(plan.latency_ms.p99 * 0.777);
    }
    report
}

/// The SLO line is drawn at the report's own objective (its percentile and
/// its unit), and the latencies beside it are at the same percentile.
#[test]
fn the_slo_line_is_the_reports_objective() {
    let report = p95_report();
    let p95 = report.recommended.as_ref().unwrap().slo_latency_ms.unwrap();
    let p95_text = workbench::report::format::ms(p95);
    let mut app = app_with_report(report);
    let plan = app.plan.clone().expect("plan view");
    assert_eq!(plan.latency_name(), "p95");
    assert_eq!(plan.slo_ms(), Some(30.0));
    act_all(&mut app, Action::ShowView(View::Simulation));
    let sim = screen(&app, 160, 48);
    assert!(sim.contains("p95 SLO"), "{sim}");
    assert!(!sim.contains("p99 SLO"), "{sim}");
    assert!(sim.contains(&p95_text), "the table gives the p95: {sim}");
    // The Plan view leads with the p95 too: summary, candidates, chart.
    act_all(&mut app, Action::ShowView(View::Plan));
    let plan_screen = screen(&app, 160, 48);
    assert!(
        plan_screen.contains(&format!("p95 {p95_text} ·")),
        "{plan_screen}"
    );
    assert!(plan_screen.contains("Cost vs p95"), "{plan_screen}");
    assert!(plan_screen.contains("p95 ms"), "{plan_screen}");
    let header = plan_screen
        .lines()
        .find(|l| l.contains("$/month"))
        .expect("the candidates' header");
    assert!(
        header.contains(" p95 ") && !header.contains("p99"),
        "{header}"
    );
}

/// Sorting by cost or latency puts the plans rejected before simulation
/// (no cost, a latency lower bound) after every simulated one.
#[test]
fn sorting_puts_unsimulated_plans_last() {
    let mut report = workbench::report::fixtures::sample_report();
    let unsimulated = report.alternatives.len();
    assert!(unsimulated >= 2);
    let alt = &mut report.alternatives[unsimulated - 1];
    alt.plan.simulated = false;
    alt.plan.cost_usd_per_month = 0.0;
    alt.plan.latency_ms = workbench::report::LatencyPercentiles {
        p50: 0.07,
        p90: 0.07,
        p99: 0.07,
        p999: 0.07,
    };
    alt.plan.slo_latency_ms = None;
    alt.rejected_because = Some("model needs 9 GB, device has 4 GB".to_string());
    let mut app = app_with_report(report);
    act_all(&mut app, Action::ShowView(View::Plan));
    let last_label = app.plan.as_ref().unwrap().candidates[unsimulated]
        .label
        .clone();
    for _ in 0..3 {
        act_all(&mut app, Action::CycleSort);
        let order = app.plan_order();
        let plan = app.plan.as_ref().unwrap();
        assert_eq!(
            plan.candidates[*order.last().unwrap()].label,
            last_label,
            "sort {:?}",
            app.sort
        );
    }
}
