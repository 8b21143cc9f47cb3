//! Event-driven tests of the TUI's main flows with the fake pipeline and a
//! real worker thread: keys go through the key map, `update` and the worker.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::Event;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use workbench::tui::{
    dispatch, handle_event, key_for_char, run_loop, settle, update, Action, App, FakePipeline, Job,
    JobKind, Pipeline, Progress, ScenarioEntry, ScriptedEvents, View, WhatIf, WhatIfKnob, Worker,
    WorkerEvent,
};

const WAIT: Duration = Duration::from_secs(20);

struct Harness {
    app: App,
    worker: Worker,
    _out: tempfile::TempDir,
}

impl Harness {
    fn new() -> Harness {
        let out = tempfile::tempdir().unwrap();
        let pipeline = Arc::new(FakePipeline::new());
        let app = App::new(pipeline.load_scenarios(&[]), out.path().to_path_buf());
        let worker = Worker::spawn(pipeline).unwrap();
        Harness {
            app,
            worker,
            _out: out,
        }
    }

    /// Presses the keys (see `key_for_char`), letting each job finish before the next key.
    fn keys(&mut self, keys: &str) {
        for c in keys.chars() {
            handle_event(&mut self.app, &self.worker, Event::Key(key_for_char(c))).unwrap();
            settle(&mut self.app, &self.worker, WAIT).unwrap();
        }
    }

    fn screen(&self, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal
            .draw(|frame| workbench::tui::ui::render(&self.app, frame))
            .unwrap();
        terminal.backend().to_string()
    }
}

#[test]
fn select_run_see_plan_what_if_and_export() {
    let mut h = Harness::new();
    assert_eq!(h.app.view, View::Scenarios);
    assert_eq!(h.app.selected, 0);

    // Move down and back up, run the first scenario.
    h.keys("jk\n");
    assert_eq!(h.app.active.as_ref().unwrap().name, "recsys-online");
    assert!(!h.app.busy(), "the job finished");
    let measured = h.app.measurements.as_ref().expect("measured");
    assert_eq!(measured.kernels.len(), 12);
    assert_eq!(h.app.kernel_progress.len(), 12);
    assert!(h
        .app
        .kernel_progress
        .values()
        .all(|(done, total)| done == total));
    let tuning = h
        .app
        .tuning
        .as_ref()
        .expect("autotuning progress was reported");
    assert_eq!((tuning.trial, tuning.total), (8, 8));

    // The plan arrived and equals the original plan (no what-if yet).
    let plan = h.app.plan.clone().expect("planned");
    assert_eq!(h.app.original_plan.as_ref(), Some(&plan));
    let best = plan.recommended_row().expect("a feasible plan").clone();
    assert!(best.feasible());
    h.keys("4");
    assert_eq!(h.app.view, View::Plan);
    assert!(h.screen(80, 24).contains("Recommended:"));

    // Raise the traffic (t is x1.25; four times is 2.44x): the plan is recomputed from cache.
    let kernels_before = h.app.measurements.as_ref().unwrap().kernels.clone();
    h.keys("tttt");
    assert!((h.app.what_if.traffic - 2.44140625).abs() < 1e-9);
    assert_eq!(
        h.app.plan_what_if, h.app.what_if,
        "shown plan uses the what-if"
    );
    let replanned = h.app.plan.clone().unwrap();
    let new_best = replanned.recommended_row().expect("still feasible").clone();
    assert!(
        new_best.cost_usd_per_month > best.cost_usd_per_month,
        "more traffic needs a dearer plan: {} vs {}",
        new_best.label,
        best.label
    );
    assert_eq!(
        h.app.original_plan.as_ref(),
        Some(&plan),
        "the original is kept to compare against"
    );
    assert_eq!(
        h.app.measurements.as_ref().unwrap().kernels,
        kernels_before,
        "nothing was re-measured"
    );
    let screen = h.screen(80, 24);
    assert!(screen.contains("traffic x2.44"), "{screen}");
    assert!(screen.contains("changed:"), "{screen}");

    // Reset returns to the original plan.
    h.keys("0");
    assert_eq!(h.app.plan.as_ref(), Some(&plan));

    // Export writes files through the pipeline into the temp dir.
    h.keys("5e");
    assert_eq!(h.app.view, View::Export);
    assert_eq!(h.app.exported.len(), 3);
    for path in &h.app.exported {
        assert!(path.starts_with(&h.app.out_dir), "{}", path.display());
        let text = std::fs::read_to_string(path).unwrap();
        assert!(!text.is_empty());
    }
    let json = std::fs::read_to_string(h.app.out_dir.join("recsys-online/plan.json")).unwrap();
    assert!(json.contains(&best.label), "{json}");
    assert!(h.screen(80, 24).contains("Wrote 3 files"));

    // Under a what-if, Export writes beside the scenario's own report, never
    // over it, and the report says what was changed.
    h.keys("4tt5e");
    assert_eq!(h.app.exported.len(), 3);
    let what_if = std::fs::read_to_string(h.app.out_dir.join("recsys-online-what-if/plan.json"))
        .expect("the what-if report has a directory of its own");
    assert!(what_if.contains("What-if (traffic x1.56)"), "{what_if}");
    let own = std::fs::read_to_string(h.app.out_dir.join("recsys-online/plan.json")).unwrap();
    assert_eq!(own, json, "the scenario's own report is untouched");
}

#[test]
fn a_scenario_with_errors_is_listed_and_not_run() {
    let mut h = Harness::new();
    h.keys("jj");
    let entry = h.app.selected_scenario().unwrap().clone();
    assert!(!entry.is_valid());
    let screen = h.screen(80, 24);
    assert!(screen.contains("1 error(s)"), "{screen}");
    assert!(screen.contains("unknown key"), "{screen}");
    h.keys("\n");
    assert!(h.app.active.is_none());
    assert!(h.app.job.is_none());
    // Moving past the end stays on the last entry.
    h.keys("jjj");
    assert_eq!(h.app.selected, 2);
}

#[test]
fn what_if_before_any_run_changes_nothing() {
    let mut h = Harness::new();
    h.keys("4l");
    assert!(h.app.what_if.is_identity(), "no plan to apply it to");
    assert!(h.app.plan.is_none());
    assert!(h.app.job.is_none(), "no job without measurements");
    assert!(h.screen(80, 24).contains("no plan to change yet"));
    // Export without a plan is refused with a message, not a job.
    h.keys("5e");
    assert!(h.app.job.is_none());
    assert!(h.app.exported.is_empty());
}

#[test]
fn help_overlay_and_quit() {
    let mut h = Harness::new();
    h.keys("?");
    assert!(h.app.show_help);
    assert!(h.screen(80, 24).contains("Help (Esc or ? to close)"));
    h.keys("j"); // swallowed by the overlay
    assert_eq!(h.app.selected, 0);
    h.keys("\x1b");
    assert!(!h.app.show_help);
    h.keys("q");
    assert!(h.app.should_quit);
}

#[test]
fn views_cycle_with_tab_and_numbers() {
    let mut h = Harness::new();
    h.keys("\t");
    assert_eq!(h.app.view, View::Kernels);
    h.keys("\t\t\t\t");
    assert_eq!(h.app.view, View::Scenarios, "wraps around");
    h.keys("3");
    assert_eq!(h.app.view, View::Simulation);
}

fn scenario(h: &Harness, index: usize) -> ScenarioEntry {
    h.app.scenarios[index].clone()
}

#[test]
fn esc_cancels_the_running_job_and_its_late_events_are_ignored() {
    let mut h = Harness::new();
    // Use update directly so the job is not run: we play the worker's part.
    let job = update(&mut h.app, Action::Run).expect("a run job");
    assert!(h.app.busy());
    update(&mut h.app, Action::Cancel);
    assert!(!h.app.busy());
    assert!(
        job.cancel.load(Ordering::Relaxed),
        "the worker is told to stop"
    );
    let late = WorkerEvent::Progress {
        job: job.id,
        progress: Progress::Kernel {
            key: "naive f32 b1".to_string(),
            done: 5,
            total: 20,
        },
    };
    update(&mut h.app, Action::Worker(late));
    assert!(
        h.app.kernel_progress.is_empty(),
        "events of a cancelled job are dropped"
    );
}

#[test]
fn latest_request_wins() {
    let mut h = Harness::new();
    let first = update(&mut h.app, Action::Run).unwrap();
    h.app.selected = 1;
    let second = update(&mut h.app, Action::Run).unwrap();
    assert!(
        first.cancel.load(Ordering::Relaxed),
        "the overtaken job is cancelled"
    );
    assert!(!second.cancel.load(Ordering::Relaxed));
    assert_ne!(first.id, second.id);
    // Only the second job's results are taken.
    let pipeline = FakePipeline::new();
    let cancel = Arc::new(AtomicBool::new(false));
    let m0 = pipeline
        .measure(&scenario(&h, 0), &|_| {}, &cancel)
        .unwrap();
    update(
        &mut h.app,
        Action::Worker(WorkerEvent::Measured {
            job: first.id,
            result: Ok(m0),
        }),
    );
    assert!(h.app.measurements.is_none());
    assert_eq!(h.app.active.as_ref().unwrap().name, "keyboard-edge");

    // The real worker skips a queued job that a newer one overtook.
    let worker = &h.worker;
    let stale = Job {
        id: 100,
        kind: JobKind::Run {
            scenario: scenario(&h, 0),
        },
        cancel: Arc::new(AtomicBool::new(true)),
    };
    worker.submit(stale).unwrap();
    let mut saw_measured = false;
    while let Some(event) = worker.recv_timeout(WAIT).unwrap() {
        match event {
            WorkerEvent::Finished { job, cancelled } => {
                assert_eq!(job, 100);
                assert!(cancelled);
                break;
            }
            WorkerEvent::Measured { .. } => saw_measured = true,
            _ => {}
        }
    }
    assert!(
        !saw_measured,
        "a job cancelled before it started does no work"
    );
}

#[test]
fn fake_measure_stops_when_cancelled() {
    let pipeline = FakePipeline::new();
    let cancel = Arc::new(AtomicBool::new(false));
    let entry = workbench::tui::fake::builtin_scenarios().remove(0);
    let calls = std::cell::Cell::new(0);
    let result = pipeline.measure(
        &entry,
        &|_| {
            calls.set(calls.get() + 1);
            if calls.get() == 3 {
                cancel.store(true, Ordering::Relaxed);
            }
        },
        &cancel,
    );
    assert!(result.is_err());
    assert!(
        calls.get() < 10,
        "stopped soon after the flag: {}",
        calls.get()
    );
}

#[test]
fn run_loop_with_scripted_keys_then_a_resize() {
    let out = tempfile::tempdir().unwrap();
    let pipeline = Arc::new(FakePipeline::new());
    let mut app = App::new(pipeline.load_scenarios(&[]), out.path().to_path_buf());
    let worker = Worker::spawn(pipeline).unwrap();
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).unwrap();
    let mut events = ScriptedEvents::keys("\n45e");
    run_loop(&mut terminal, &mut app, &worker, &mut events).unwrap();
    assert!(app.should_quit, "the script ends with q");
    assert_eq!(app.view, View::Export);
    assert_eq!(app.exported.len(), 3);
    assert!(out.path().join("recsys-online/report.md").exists());
    let screen = terminal.backend().to_string();
    assert!(screen.contains("Wrote 3 files"), "{screen}");

    // A resize (the terminal shrinks to 80x24): the next draw fits the new size.
    terminal.backend_mut().resize(80, 24);
    let mut events = ScriptedEvents::new([crossterm::event::Event::Resize(80, 24)]);
    app.should_quit = false;
    app.view = View::Plan;
    run_loop(&mut terminal, &mut app, &worker, &mut events).unwrap();
    let screen = terminal.backend().to_string();
    assert_eq!(screen.lines().count(), 24, "drawn at the new size");
    assert!(screen.contains("Recommended:"), "{screen}");
}

#[test]
fn loading_paths_lists_bad_files_with_their_errors() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/wake-word.toml");
    std::fs::copy(&shipped, dir.path().join("good.toml")).unwrap();
    std::fs::write(dir.path().join("bad.toml"), "name = \n").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    let missing = PathBuf::from("/nonexistent/x.toml");
    let entries = FakePipeline::new().load_scenarios(&[dir.path().to_path_buf(), missing]);
    assert_eq!(entries.len(), 3, "{entries:#?}");
    assert_eq!(entries[0].name, "bad");
    assert!(!entries[0].is_valid());
    assert!(
        entries[0].errors[0].contains("bad.toml:1:"),
        "{:?}",
        entries[0].errors
    );
    assert!(entries[1].is_valid(), "{:?}", entries[1].errors);
    assert!(!entries[1].summary.is_empty());
    assert_eq!(entries[2].name, "x");
    assert!(!entries[2].is_valid());
    // The app shows them all without crashing; a bad file is not run.
    let mut app = App::new(entries, dir.path().to_path_buf());
    let worker = Worker::spawn(Arc::new(FakePipeline::new())).unwrap();
    dispatch(&mut app, &worker, Action::Run).unwrap();
    settle(&mut app, &worker, WAIT).unwrap();
    assert!(app.active.is_none(), "a bad file is not run");
    assert!(app.measurements.is_none(), "a bad file is not run");
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal
        .draw(|frame| workbench::tui::ui::render(&app, frame))
        .unwrap();
    assert!(terminal.backend().to_string().contains("error(s)"));
}

/// A harness over the scenario files of a directory of its own.
fn harness_on(dir: &std::path::Path) -> Harness {
    let out = tempfile::tempdir().unwrap();
    let pipeline = Arc::new(FakePipeline::new());
    let paths = vec![dir.to_path_buf()];
    let mut app = App::new(pipeline.load_scenarios(&paths), out.path().to_path_buf());
    app.scenario_paths = paths;
    let worker = Worker::spawn(pipeline).unwrap();
    Harness {
        app,
        worker,
        _out: out,
    }
}

fn shipped(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

/// A file listed with errors and fixed on disk runs on Enter (it is read
/// again), without a restart; still broken, it says so and runs nothing.
#[test]
fn a_broken_scenario_fixed_on_disk_runs_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let good = shipped("wake-word.toml");
    let file = dir.path().join("fixme.toml");
    std::fs::write(&file, good.replacen("[traffic]", "[trafic]", 1)).unwrap();
    let mut h = harness_on(dir.path());
    assert!(!h.app.scenarios[0].is_valid());
    h.keys("\n");
    assert!(h.app.active.is_none(), "still broken: nothing runs");
    let screen = h.screen(120, 30);
    assert!(screen.contains("still has errors"), "{screen}");
    std::fs::write(&file, &good).unwrap();
    h.keys("\n");
    assert!(h.app.scenarios[0].is_valid(), "{:?}", h.app.scenarios[0]);
    let active = h.app.active.as_ref().expect("the fixed file ran");
    assert_eq!(active.path, file);
    assert!(h.app.plan.is_some(), "and was planned");
}

/// `r` lists the directory again: files added since appear, files removed
/// go, and the cursor stays on the scenario it was on.
#[test]
fn r_reloads_the_scenario_list_keeping_the_selection() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.toml"), shipped("wake-word.toml")).unwrap();
    std::fs::write(dir.path().join("c.toml"), shipped("face-unlock.toml")).unwrap();
    let mut h = harness_on(dir.path());
    assert_eq!(h.app.scenarios.len(), 2);
    h.keys("j");
    let selected = h.app.selected_scenario().unwrap().name.clone();
    assert_eq!(selected, "face-unlock");
    // A file sorted before the selected one appears; the cursor follows its scenario.
    std::fs::write(dir.path().join("a.toml"), shipped("hotel-ranking.toml")).unwrap();
    h.keys("r");
    assert_eq!(h.app.scenarios.len(), 3, "{:?}", h.app.scenarios);
    assert_eq!(h.app.selected_scenario().unwrap().name, selected);
    let screen = h.screen(120, 30);
    assert!(screen.contains("1 new"), "{screen}");
    assert!(screen.contains("r reload"), "{screen}");
    std::fs::remove_file(dir.path().join("b.toml")).unwrap();
    h.keys("r");
    assert_eq!(h.app.scenarios.len(), 2);
    assert_eq!(h.app.selected_scenario().unwrap().name, selected);
}

/// A scenario without edge devices has nothing to take offline: `o` says
/// so instead of re-planning into "no plan fits any more".
#[test]
fn the_offline_what_if_does_not_apply_without_edge_devices() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("fraud.toml"),
        shipped("card-fraud-stream.toml"),
    )
    .unwrap();
    let mut h = harness_on(dir.path());
    assert!(!h.app.scenarios[0].has_edge);
    h.keys("\n4");
    let plan = h.app.plan.clone().expect("planned");
    h.keys("o");
    assert!(h.app.what_if.is_identity(), "{:?}", h.app.what_if);
    assert_eq!(h.app.plan.as_ref(), Some(&plan), "nothing was re-planned");
    let screen = h.screen(120, 30);
    assert!(screen.contains("does not apply"), "{screen}");
}

#[test]
fn every_shipped_scenario_is_listed_and_valid() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let entries = workbench::tui::scenario_entries(&[dir]);
    assert!(entries.len() >= 5, "{}", entries.len());
    for entry in &entries {
        assert!(entry.is_valid(), "{}: {:?}", entry.name, entry.errors);
    }
}

#[test]
fn what_if_describes_changes() {
    assert_eq!(WhatIf::default().describe(), "as in the scenario");
    let w = WhatIf {
        traffic: 2.0,
        offline_fraction: Some(0.3),
        ..WhatIf::default()
    };
    assert_eq!(w.describe(), "traffic x2.00, offline 30%");
}

/// The fake pipeline with one thing gone wrong.
struct Faulty {
    inner: FakePipeline,
    fault: Fault,
}

enum Fault {
    /// Measuring panics.
    PanicsInMeasure,
    /// The scenario file was edited after it was listed.
    EditedSinceListed,
}

impl Faulty {
    fn new(fault: Fault) -> Faulty {
        Faulty {
            inner: FakePipeline::new(),
            fault,
        }
    }
}

impl Pipeline for Faulty {
    fn load_scenarios(&self, paths: &[PathBuf]) -> Vec<ScenarioEntry> {
        self.inner.load_scenarios(paths)
    }
    fn reload(&self, scenario: &ScenarioEntry) -> ScenarioEntry {
        let mut now = scenario.clone();
        if let Fault::EditedSinceListed = self.fault {
            now.summary = vec!["traffic: 900 req/s (edited)".to_string()];
            now.offline_fraction = 0.5;
        }
        now
    }
    fn measure(
        &self,
        scenario: &ScenarioEntry,
        progress: &dyn Fn(Progress),
        cancel: &Arc<AtomicBool>,
    ) -> Result<workbench::tui::Measurements, String> {
        if let Fault::PanicsInMeasure = self.fault {
            panic!("boom in measure")
        }
        self.inner.measure(scenario, progress, cancel)
    }
    fn plan(
        &self,
        scenario: &ScenarioEntry,
        measurements: &workbench::tui::Measurements,
        what_if: &WhatIf,
        progress: &dyn Fn(Progress),
        cancel: &Arc<AtomicBool>,
    ) -> Result<workbench::report::Report, String> {
        self.inner
            .plan(scenario, measurements, what_if, progress, cancel)
    }
    fn export(
        &self,
        scenario: &ScenarioEntry,
        report: &workbench::report::Report,
        out_dir: &std::path::Path,
    ) -> Result<Vec<PathBuf>, String> {
        self.inner.export(scenario, report, out_dir)
    }
}

#[test]
fn a_pipeline_panic_fails_the_job_and_the_tui_carries_on() {
    let pipeline = Arc::new(Faulty::new(Fault::PanicsInMeasure));
    let mut app = App::new(pipeline.load_scenarios(&[]), PathBuf::from("unused"));
    let worker = Worker::spawn(pipeline).unwrap();
    dispatch(&mut app, &worker, Action::Run).unwrap();
    settle(&mut app, &worker, WAIT).unwrap();
    assert!(!app.busy());
    match &app.message {
        Some(workbench::tui::app::Message::Error(text)) => {
            assert!(text.contains("boom in measure"), "{text}")
        }
        other => panic!("expected an error message, got {other:?}"),
    }
    // The worker is still alive: the next job runs (and fails the same way).
    dispatch(&mut app, &worker, Action::Run).unwrap();
    settle(&mut app, &worker, WAIT).unwrap();
    assert!(!app.busy());
}

#[test]
fn the_kernels_view_says_when_measuring_stopped() {
    let mut h = Harness::new();
    let job = update(&mut h.app, Action::Run).unwrap();
    update(
        &mut h.app,
        Action::Worker(WorkerEvent::Progress {
            job: job.id,
            progress: Progress::Kernel {
                key: "naive f32 b1".to_string(),
                done: 5,
                total: 20,
            },
        }),
    );
    assert!(h.screen(80, 24).contains("Measuring recsys-online ─"));
    update(&mut h.app, Action::Cancel);
    let screen = h.screen(80, 24);
    assert!(screen.contains("stopped (m to measure again)"), "{screen}");
    // Until the job says it stopped, the status line says it is stopping.
    assert!(
        screen.contains("cancelling measuring: waiting for"),
        "{screen}"
    );
    update(
        &mut h.app,
        Action::Worker(WorkerEvent::Finished {
            job: job.id,
            cancelled: true,
        }),
    );
    let screen = h.screen(80, 24);
    assert!(screen.contains("measuring cancelled"), "{screen}");
    assert!(h.app.cancelling.is_none());
}

/// The budget what-if on a scenario with no budget changes nothing and says so.
#[test]
fn the_budget_what_if_needs_a_budget() {
    let mut h = Harness::new();
    // keyboard-edge, the second built-in scenario, sets no monthly budget.
    h.keys("j\n");
    assert_eq!(h.app.active.as_ref().unwrap().name, "keyboard-edge");
    h.keys("4b");
    assert!(h.app.what_if.is_identity(), "{:?}", h.app.what_if);
    assert!(h.screen(80, 24).contains("no monthly budget"));
    // recsys-online has one: the same key scales it.
    h.keys("1k\n4b");
    assert!((h.app.what_if.budget - 1.25).abs() < 1e-9);
}

/// At 80x24 the help does not fit: it says so and scrolls to its last line.
#[test]
fn the_help_scrolls_on_a_small_terminal() {
    let mut h = Harness::new();
    h.keys("?");
    let first = h.screen(80, 24);
    assert!(first.contains("↓ more"), "{first}");
    assert!(!first.contains("write report.md"), "{first}");
    h.keys(&"j".repeat(40));
    let last = h.screen(80, 24);
    assert!(last.contains("write report.md"), "{last}");
    assert!(!last.contains("↓ more"), "{last}");
    assert!(last.contains("↑ more"), "{last}");
    // Closing and reopening starts at the top again.
    h.keys("??");
    assert!(h.screen(80, 24).contains("Everywhere"));
    // A tall terminal shows it all.
    let tall = h.screen(100, 40);
    assert!(
        tall.contains("write report.md") && !tall.contains("more"),
        "{tall}"
    );
}

/// Told the terminal's height, the help stops scrolling where its last line
/// shows, so one `k` after scrolling too far moves the text at once; and the
/// status line offers scrolling only when the help does not fit.
#[test]
fn help_scrolling_stops_at_its_end_and_comes_straight_back() {
    let mut h = Harness::new();
    handle_event(&mut h.app, &h.worker, Event::Resize(80, 24)).unwrap();
    h.keys("?");
    assert!(h.screen(80, 24).contains("scroll"));
    h.keys(&"j".repeat(40));
    let end = h.screen(80, 24);
    assert!(!end.contains("↓ more"), "{end}");
    h.keys("k");
    let back = h.screen(80, 24);
    assert!(
        back.contains("↓ more"),
        "one k after the end moved nothing:\n{back}"
    );
    // Growing the terminal so it all fits: nothing to scroll, none offered.
    h.keys(&"j".repeat(40));
    handle_event(&mut h.app, &h.worker, Event::Resize(100, 40)).unwrap();
    assert_eq!(h.app.help_scroll, 0);
    let tall = h.screen(100, 40);
    assert!(!tall.contains("more") && !tall.contains("scroll"), "{tall}");
}

/// A run reads the file as it is now, and the list and the what-if's
/// starting points follow it instead of the summary read at start-up.
#[test]
fn a_run_refreshes_the_scenario_it_reads() {
    let pipeline = Arc::new(Faulty::new(Fault::EditedSinceListed));
    let mut app = App::new(pipeline.load_scenarios(&[]), PathBuf::from("unused"));
    let worker = Worker::spawn(pipeline).unwrap();
    dispatch(&mut app, &worker, Action::Run).unwrap();
    settle(&mut app, &worker, WAIT).unwrap();
    assert_eq!(
        app.scenarios[0].summary,
        vec!["traffic: 900 req/s (edited)".to_string()]
    );
    let active = app.active.as_ref().expect("a run");
    assert_eq!(active.offline_fraction, 0.5);
    // The offline what-if steps from the file's 50%, not the listed 10%.
    dispatch(
        &mut app,
        &worker,
        Action::Nudge {
            knob: WhatIfKnob::Offline,
            up: true,
        },
    )
    .unwrap();
    assert_eq!(app.what_if.offline_fraction, Some(0.6));
}

/// The fake pipeline, except that measuring the first built-in scenario is a
/// compile that ignores the cancel flag and runs until the test releases it.
struct UninterruptibleCompile {
    inner: FakePipeline,
    release: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl UninterruptibleCompile {
    fn new() -> (UninterruptibleCompile, std::sync::mpsc::Sender<()>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let pipeline = UninterruptibleCompile {
            inner: FakePipeline::new(),
            release: std::sync::Mutex::new(rx),
        };
        (pipeline, tx)
    }
}

impl Pipeline for UninterruptibleCompile {
    fn load_scenarios(&self, paths: &[PathBuf]) -> Vec<ScenarioEntry> {
        self.inner.load_scenarios(paths)
    }
    fn measure(
        &self,
        scenario: &ScenarioEntry,
        progress: &dyn Fn(Progress),
        cancel: &Arc<AtomicBool>,
    ) -> Result<workbench::tui::Measurements, String> {
        if scenario.name == "recsys-online" {
            progress(Progress::Stage("compiling tiled int8".to_string()));
            // Never looks at `cancel`; a minute at most, should the test fail.
            let _ = self
                .release
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(60));
            return Err("compiled too late".to_string());
        }
        self.inner.measure(scenario, progress, cancel)
    }
    fn plan(
        &self,
        scenario: &ScenarioEntry,
        measurements: &workbench::tui::Measurements,
        what_if: &WhatIf,
        progress: &dyn Fn(Progress),
        cancel: &Arc<AtomicBool>,
    ) -> Result<workbench::report::Report, String> {
        self.inner
            .plan(scenario, measurements, what_if, progress, cancel)
    }
    fn export(
        &self,
        scenario: &ScenarioEntry,
        report: &workbench::report::Report,
        out_dir: &std::path::Path,
    ) -> Result<Vec<PathBuf>, String> {
        self.inner.export(scenario, report, out_dir)
    }
}

/// Applies worker events until the stage says a compile is running.
fn wait_for_compile(app: &mut App, worker: &Worker) {
    while app.stage.as_deref() != Some("compiling tiled int8") {
        let event = worker
            .recv_timeout(WAIT)
            .unwrap()
            .expect("the compile starts");
        dispatch(app, worker, Action::Worker(event)).unwrap();
    }
}

#[test]
fn a_compile_that_ignores_esc_does_not_hold_up_the_next_run() {
    let (pipeline, release) = UninterruptibleCompile::new();
    let pipeline = Arc::new(pipeline);
    let mut app = App::new(pipeline.load_scenarios(&[]), PathBuf::from("unused"));
    let worker = Worker::spawn(pipeline).unwrap();
    dispatch(&mut app, &worker, Action::Run).unwrap();
    wait_for_compile(&mut app, &worker);
    dispatch(&mut app, &worker, Action::Cancel).unwrap();
    // The status line says what the cancel waits for, not that it is done.
    assert_eq!(
        app.message,
        Some(workbench::tui::app::Message::Info(
            "cancelling measuring: waiting for compiling tiled int8 to stop".to_string()
        ))
    );
    // The next run (keyboard-edge) starts at once on a fresh thread.
    app.selected = 1;
    dispatch(&mut app, &worker, Action::Run).unwrap();
    settle(&mut app, &worker, Duration::from_secs(10)).unwrap();
    assert!(!app.busy(), "the run waited behind the cancelled compile");
    assert_eq!(app.active.as_ref().unwrap().name, "keyboard-edge");
    assert!(app.plan.is_some(), "{:?}", app.message);
    assert_eq!(worker.abandoned_threads(), 1);
    // The compile ends later: its events change nothing but the cancel's record.
    let shown = app.message.clone();
    release.send(()).unwrap();
    while app.cancelling.is_some() {
        let event = worker
            .recv_timeout(WAIT)
            .unwrap()
            .expect("the compile ends");
        dispatch(&mut app, &worker, Action::Worker(event)).unwrap();
    }
    assert_eq!(app.message, shown, "the newer run's status stays");
    assert!(app.plan.is_some());
}

#[test]
fn quitting_does_not_wait_for_a_compile() {
    let (pipeline, release) = UninterruptibleCompile::new();
    let pipeline = Arc::new(pipeline);
    let mut app = App::new(pipeline.load_scenarios(&[]), PathBuf::from("unused"));
    let worker = Worker::spawn(pipeline).unwrap();
    dispatch(&mut app, &worker, Action::Run).unwrap();
    wait_for_compile(&mut app, &worker);
    dispatch(&mut app, &worker, Action::Quit).unwrap();
    assert!(app.should_quit);
    // Dropping the worker is what run_tui does on the way out: it must return
    // while the compile still runs (the process exit ends that thread).
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(worker);
        let _ = done_tx.send(());
    });
    let dropped = done_rx.recv_timeout(Duration::from_secs(10));
    let _ = release.send(());
    assert!(
        dropped.is_ok(),
        "dropping the worker waited for the compile"
    );
}

/// What-if keys stop at the scenario limits and say so.
#[test]
fn what_if_keys_stop_at_the_limits() {
    let mut h = Harness::new();
    h.keys("\n4");
    h.keys(&"t".repeat(150));
    assert_eq!(
        h.app.what_if.traffic,
        workbench::plan::whatif::MAX_WHAT_IF_FACTOR
    );
    assert_eq!(
        h.app.plan_what_if.traffic, h.app.what_if.traffic,
        "planned at the cap"
    );
    assert!(h.screen(80, 24).contains("traffic x1000.00 is the limit"));
    h.keys(&"L".repeat(40));
    assert_eq!(
        h.app.what_if.slo,
        workbench::plan::whatif::MIN_WHAT_IF_FACTOR
    );
    assert!(h.screen(80, 24).contains("SLO x0.0010 is the limit"));
    // Back down from the cap is one step as ever.
    h.keys("T");
    assert!((h.app.what_if.traffic - 800.0).abs() < 1e-9);

    // A scenario near the rate limit (1e8 requests/s): traffic stops at x2.
    let dir = tempfile::tempdir().unwrap();
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/assistant-speech.toml");
    let text = std::fs::read_to_string(shipped).unwrap();
    let busy = text.replace("rate_per_s = 3000\n", "rate_per_s = 25000000\n");
    assert_ne!(busy, text);
    let path = dir.path().join("busy.toml");
    std::fs::write(&path, busy).unwrap();
    let entries = FakePipeline::new().load_scenarios(&[path]);
    assert!(entries[0].is_valid(), "{:?}", entries[0].errors);
    let mut app = App::new(entries, dir.path().to_path_buf());
    let run = update(&mut app, Action::Run);
    play(&mut app, run);
    for _ in 0..6 {
        update(
            &mut app,
            Action::Nudge {
                knob: WhatIfKnob::Traffic,
                up: true,
            },
        );
    }
    // 25e6 x 2 (the diurnal peak) x 2 = 1e8.
    assert_eq!(app.what_if.traffic, 2.0);
    match &app.message {
        Some(workbench::tui::app::Message::Info(text)) => {
            assert!(text.starts_with("traffic x2.00 is the limit"), "{text}")
        }
        other => panic!("{other:?}"),
    }
}

/// No terminal events, and a stop signal that has arrived. Should the loop
/// ignore the signal, `q` comes after 50 polls (so the test fails, not hangs).
struct SignalArrived {
    signal: i32,
    polls: usize,
}

impl workbench::tui::EventSource for SignalArrived {
    fn next_event(
        &mut self,
        _app: &App,
        timeout: Duration,
    ) -> Result<Option<Event>, workbench::tui::TuiError> {
        std::thread::sleep(timeout.min(Duration::from_millis(2)));
        self.polls += 1;
        Ok((self.polls > 50).then(|| Event::Key(key_for_char('q'))))
    }
    fn stop_signal(&self) -> Option<i32> {
        Some(self.signal)
    }
}

/// A stop signal ends the loop as `q` does (run_tui then restores the
/// terminal), cancelling the running job.
#[test]
fn a_stop_signal_quits_the_loop() {
    let (pipeline, release) = UninterruptibleCompile::new();
    let pipeline = Arc::new(pipeline);
    let mut app = App::new(pipeline.load_scenarios(&[]), PathBuf::from("unused"));
    let worker = Worker::spawn(pipeline).unwrap();
    let job = update(&mut app, Action::Run).unwrap();
    let cancel = Arc::clone(&job.cancel);
    worker.submit(job).unwrap();
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let mut events = SignalArrived {
        signal: 15,
        polls: 0,
    };
    run_loop(&mut terminal, &mut app, &worker, &mut events).unwrap();
    assert!(app.should_quit);
    assert_eq!(events.polls, 1, "quit on the first tick after the signal");
    assert!(
        cancel.load(Ordering::Relaxed),
        "the running job is told to stop"
    );
    let _ = release.send(());
}

/// The handler records SIGTERM instead of letting it kill the process.
#[test]
fn stop_signals_are_caught_and_recorded() {
    let mut signals = workbench::tui::StopSignals::register().unwrap();
    assert_eq!(signals.received(), None);
    signal_hook::low_level::raise(signal_hook::consts::SIGTERM).unwrap();
    assert_eq!(signals.received(), Some(signal_hook::consts::SIGTERM));
    signals.unregister();
}

// ------------------------------------------------------------ what-if rule
//
// The what-if in force is the shown plan's, or a job under way plans it and
// the screen says so. These play the fake pipeline's events through
// `update` one by one, so a key can land at an exact point of a job.

/// The events the worker would send for `job` (fake pipeline).
fn fake_events(job: &Job) -> Vec<WorkerEvent> {
    let (tx, rx) = std::sync::mpsc::channel();
    workbench::tui::worker::run_job(&FakePipeline::new(), job, &tx).unwrap();
    drop(tx);
    rx.into_iter().collect()
}

/// Applies `events`, then plays every job they start to its end.
fn feed(app: &mut App, events: Vec<WorkerEvent>) {
    let mut next = None;
    for event in events {
        if let Some(job) = update(app, Action::Worker(event)) {
            next = Some(job);
        }
    }
    if let Some(job) = next {
        feed(app, fake_events(&job));
    }
}

fn play(app: &mut App, job: Option<Job>) {
    if let Some(job) = job {
        feed(app, fake_events(&job));
    }
}

fn traffic_up() -> Action {
    Action::Nudge {
        knob: WhatIfKnob::Traffic,
        up: true,
    }
}

fn render(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| workbench::tui::ui::render(app, frame))
        .unwrap();
    terminal.backend().to_string()
}

/// A harness-free app on the built-in scenarios, its first one run and planned.
fn planned_app(out: &std::path::Path) -> App {
    let mut app = App::new(FakePipeline::new().load_scenarios(&[]), out.to_path_buf());
    let run = update(&mut app, Action::Run);
    play(&mut app, run);
    assert!(app.plan.is_some() && !app.busy());
    update(&mut app, Action::ShowView(View::Plan));
    app
}

/// `t` then at once `5` `e`: the export waits for the what-if's plan and
/// writes that one, and the screen says what it waits for.
#[test]
fn an_export_during_a_replan_writes_the_what_ifs_plan() {
    let out = tempfile::tempdir().unwrap();
    let mut app = planned_app(out.path());
    let replan = update(&mut app, traffic_up()).expect("a re-plan");
    update(&mut app, Action::ShowView(View::Export));
    assert!(
        update(&mut app, Action::Export).is_none(),
        "the export must not supersede the re-plan"
    );
    let screen = render(&app, 80, 24);
    assert!(
        screen.contains("Exporting once the plan with what-if traffic x1.25"),
        "{screen}"
    );
    play(&mut app, Some(replan));
    assert_eq!(app.plan_what_if.traffic, 1.25);
    assert_eq!(app.what_if, app.plan_what_if);
    assert_eq!(app.exported.len(), 3, "{:?}", app.message);
    let json = std::fs::read_to_string(out.path().join("recsys-online-what-if/plan.json"))
        .expect("the what-if's plan was exported");
    assert!(json.contains("What-if (traffic x1.25)"), "{json}");
    assert!(render(&app, 80, 24).contains("plan with what-if: traffic x1.25"));
}

/// `t` then `Esc` during the re-plan: the what-if goes back to the shown
/// plan's, so the next `t` is x1.25 again, not x1.56.
#[test]
fn esc_of_a_replan_reverts_the_what_if_to_the_plan_shown() {
    let out = tempfile::tempdir().unwrap();
    let mut app = planned_app(out.path());
    let replan = update(&mut app, traffic_up()).expect("a re-plan");
    // Meanwhile the Plan view says a plan for it is coming.
    let screen = render(&app, 120, 40);
    assert!(screen.contains("re-planning for traffic x1.25"), "{screen}");
    update(&mut app, Action::Cancel);
    assert!(app.what_if.is_identity(), "{:?}", app.what_if);
    // Nothing waits for the planner to finish: the re-plan is over at once.
    assert!(app.cancelling.is_none() && !app.busy());
    match &app.message {
        Some(workbench::tui::app::Message::Info(text)) => {
            assert!(
                text.contains("re-planning cancelled; back to the scenario's own plan"),
                "{text}"
            )
        }
        other => panic!("{other:?}"),
    }
    // The cancelled job's late events change nothing.
    play(&mut app, Some(replan));
    assert!(app.plan_what_if.is_identity());
    let again = update(&mut app, traffic_up()).expect("a re-plan");
    assert_eq!(app.what_if.traffic, 1.25);
    play(&mut app, Some(again));
    assert_eq!(app.plan_what_if.traffic, 1.25);
}

/// `t` while measuring: the run's own plan is made, then re-planned with
/// the what-if, and the original is kept to compare against.
#[test]
fn a_what_if_set_while_measuring_is_planned_after_the_runs_own_plan() {
    let out = tempfile::tempdir().unwrap();
    let mut app = App::new(
        FakePipeline::new().load_scenarios(&[]),
        out.path().to_path_buf(),
    );
    let run = update(&mut app, Action::Run).expect("a run");
    let mut events = fake_events(&run);
    let measured = events
        .iter()
        .position(|e| matches!(e, WorkerEvent::Measured { .. }))
        .expect("measured");
    let rest = events.split_off(measured);
    feed(&mut app, events);
    assert!(app.measurements.is_none(), "still measuring");
    assert!(update(&mut app, traffic_up()).is_none(), "the run goes on");
    assert_eq!(app.what_if.traffic, 1.25);
    update(&mut app, Action::ShowView(View::Plan));
    let screen = render(&app, 80, 24);
    assert!(screen.contains("Planning recsys-online"), "{screen}");
    assert!(screen.contains("traffic x1.25"), "{screen}");
    feed(&mut app, rest);
    assert!(!app.busy());
    assert_eq!(app.plan_what_if.traffic, 1.25, "{:?}", app.message);
    let original = app.original_plan.as_ref().expect("the run's own plan");
    assert_ne!(Some(original), app.plan.as_ref());
    let screen = render(&app, 120, 40);
    assert!(screen.contains("What-if: traffic x1.25"), "{screen}");
    assert!(screen.contains("original:"), "{screen}");
}

/// `t` after measuring ended, while the run makes its own plan: that plan
/// still arrives (the original), then the what-if's.
#[test]
fn a_what_if_set_while_the_run_plans_does_not_replace_its_plan() {
    let out = tempfile::tempdir().unwrap();
    let mut app = App::new(
        FakePipeline::new().load_scenarios(&[]),
        out.path().to_path_buf(),
    );
    let run = update(&mut app, Action::Run).expect("a run");
    let mut events = fake_events(&run);
    let measured = events
        .iter()
        .position(|e| matches!(e, WorkerEvent::Measured { .. }))
        .expect("measured");
    let rest = events.split_off(measured + 1);
    feed(&mut app, events);
    assert!(app.measurements.is_some() && app.plan.is_none());
    assert!(
        update(&mut app, traffic_up()).is_none(),
        "the run's own plan is not superseded"
    );
    feed(&mut app, rest);
    assert_eq!(app.plan_what_if.traffic, 1.25);
    assert!(app.original_plan.is_some(), "the original plan was made");
    update(&mut app, Action::ShowView(View::Plan));
    let screen = render(&app, 120, 40);
    assert!(screen.contains("original:"), "{screen}");
}

/// Before any run there is no plan for a what-if to change: the key says
/// so and holds nothing back for later.
#[test]
fn a_what_if_before_any_run_is_refused() {
    let out = tempfile::tempdir().unwrap();
    let mut app = App::new(
        FakePipeline::new().load_scenarios(&[]),
        out.path().to_path_buf(),
    );
    assert!(update(&mut app, traffic_up()).is_none());
    assert!(app.what_if.is_identity());
    let run = update(&mut app, Action::Run);
    play(&mut app, run);
    assert!(app.plan_what_if.is_identity() && app.what_if.is_identity());
}

/// Small terminals: every Plan key shows at 80 columns; below the smallest
/// size the views say how big they need it; a run in progress says so.
#[test]
fn small_terminals_and_runs_in_progress_say_what_they_can() {
    let out = tempfile::tempdir().unwrap();
    let app = planned_app(out.path());
    let screen = render(&app, 80, 24);
    let hints = screen.lines().last().unwrap();
    for key in [
        "trlbpo/TRLBPO what-if",
        "s sort",
        "v chart",
        "↑↓",
        "e export",
        "q quit",
    ] {
        assert!(hints.contains(key), "{key}: {hints}");
    }
    for view in [View::Plan, View::Kernels, View::Simulation] {
        let mut app = planned_app(out.path());
        update(&mut app, Action::ShowView(view));
        let screen = render(&app, 40, 10);
        assert!(screen.contains("Enlarge the"), "{screen}");
        assert!(screen.contains("60x16"), "{screen}");
    }
    let mut app = App::new(
        FakePipeline::new().load_scenarios(&[]),
        out.path().to_path_buf(),
    );
    update(&mut app, Action::Run).expect("a run");
    update(&mut app, Action::ShowView(View::Plan));
    let screen = render(&app, 80, 24);
    assert!(screen.contains("Planning recsys-online"), "{screen}");
    assert!(!screen.contains("No plan yet"), "{screen}");
}

/// No scenarios: the advice works (`workbench` takes no paths).
#[test]
fn the_empty_list_gives_advice_that_works() {
    let app = App::new(Vec::new(), PathBuf::from("unused"));
    let screen = render(&app, 120, 30);
    assert!(!screen.contains("Start with paths"), "{screen}");
    assert!(screen.contains("workbench run <files>"), "{screen}");
}

/// Kernels that could not be measured are listed with why; `m` says it
/// reuses cached timings.
#[test]
fn the_kernels_view_lists_what_was_not_measured() {
    let out = tempfile::tempdir().unwrap();
    let mut app = planned_app(out.path());
    let reason = "student tiled f32: compiling it would take about 703 s";
    if let Some(m) = app.measurements.as_mut() {
        m.not_measured = vec![reason.to_string()];
    }
    update(&mut app, Action::ShowView(View::Kernels));
    for (width, height) in [(80, 24), (160, 48)] {
        let screen = render(&app, width, height);
        assert!(screen.contains("Not measured (1)"), "{screen}");
        assert!(screen.contains("703 s"), "{screen}");
        assert!(screen.contains("cached timings"), "{screen}");
    }
}

/// Enter on a scenario listed with errors re-reads it, but not while another
/// job runs: that job would be cancelled for a file that may still be broken.
#[test]
fn re_reading_a_broken_scenario_waits_for_the_running_job() {
    let mut h = Harness::new();
    let running = update(&mut h.app, Action::Run).expect("a run job");
    h.app.selected = 2;
    assert!(!h.app.selected_scenario().unwrap().is_valid());
    assert!(update(&mut h.app, Action::Run).is_none(), "no recheck job");
    assert!(
        !running.cancel.load(Ordering::Relaxed),
        "the running job goes on"
    );
    assert_eq!(h.app.job.as_ref().map(|j| j.id), Some(running.id));
    let screen = h.screen(120, 34);
    assert!(screen.contains("broken has errors"), "{screen}");
}
