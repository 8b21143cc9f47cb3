//! How long one TUI frame takes to draw (issue: redraws in under 16 ms).
//!
//! Every view is drawn into ratatui's `TestBackend` at 80x24 and 160x48 from
//! the state a finished run leaves, with the plan inflated to 400 candidates
//! (the shipped scenarios produce up to ~180), so the table, the Pareto
//! scatter and the CDF chart work at a realistic worst case. Run:
//! `cargo bench --bench tui_render`.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::mpsc;

use criterion::{criterion_group, criterion_main, Criterion};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use workbench::report::Alternative;
use workbench::tui::worker::run_job;
use workbench::tui::{update, Action, App, FakePipeline, Pipeline, View, WorkerEvent};

const CANDIDATES: usize = 400;

/// A finished run of the fake pipeline's first scenario, its plan inflated to `CANDIDATES`.
fn finished_app() -> App {
    let pipeline = FakePipeline::new();
    let mut app = App::new(
        pipeline.load_scenarios(&[]),
        PathBuf::from("target/bench-out"),
    );
    let Some(job) = update(&mut app, Action::Run) else {
        panic!("Run started no job");
    };
    let (tx, rx) = mpsc::channel();
    if run_job(&pipeline, &job, &tx).is_err() {
        panic!("the fake pipeline's job failed");
    }
    drop(tx);
    for event in rx {
        let event = match event {
            WorkerEvent::Planned {
                job,
                what_if,
                result: Ok(mut report),
            } => {
                let originals = report.alternatives.clone();
                let mut i = 0;
                while report.alternatives.len() + 1 < CANDIDATES && !originals.is_empty() {
                    let mut copy: Alternative = originals[i % originals.len()].clone();
                    copy.plan.id = format!("{}-copy{i}", copy.plan.id);
                    copy.plan.cost_usd_per_month *= 1.0 + (i as f64) * 0.003;
                    copy.plan.latency_ms.p99 *= 1.0 + (i as f64) * 0.002;
                    report.alternatives.push(copy);
                    i += 1;
                }
                WorkerEvent::Planned {
                    job,
                    what_if,
                    result: Ok(report),
                }
            }
            other => other,
        };
        update(&mut app, Action::Worker(event));
    }
    assert!(app.plan.is_some() && !app.busy());
    app
}

fn render(c: &mut Criterion) {
    let mut app = finished_app();
    let mut group = c.benchmark_group("tui_render");
    for view in View::ALL {
        update(&mut app, Action::ShowView(view));
        for (width, height) in [(80u16, 24u16), (160, 48)] {
            let mut terminal =
                Terminal::new(TestBackend::new(width, height)).unwrap_or_else(|e| match e {});
            let name = format!("{view:?}/{width}x{height}");
            group.bench_function(name, |b| {
                b.iter(|| {
                    let drawn = terminal.draw(|frame| workbench::tui::ui::render(&app, frame));
                    black_box(drawn.is_ok())
                })
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1));
    targets = render
}
criterion_main!(benches);
