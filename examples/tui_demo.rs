//! Try the TUI with the fake pipeline: `cargo run --example tui_demo [PATHS...]`.
//! With no paths it lists three built-in scenarios (one with errors).
//! `WORKBENCH_TUI_DEMO_PANIC=1` makes measuring panic, to check that the
//! terminal is restored on panic.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use workbench::report::Report;
use workbench::tui::{
    run_tui_with_out_dir, FakePipeline, Measurements, Pipeline, Progress, ScenarioEntry, WhatIf,
};

/// The fake pipeline, except that measuring panics.
struct PanickingPipeline(FakePipeline);

impl Pipeline for PanickingPipeline {
    fn load_scenarios(&self, paths: &[PathBuf]) -> Vec<ScenarioEntry> {
        self.0.load_scenarios(paths)
    }

    fn measure(
        &self,
        _scenario: &ScenarioEntry,
        _progress: &dyn Fn(Progress),
        _cancel: &Arc<AtomicBool>,
    ) -> Result<Measurements, String> {
        panic!("demo panic in the worker (WORKBENCH_TUI_DEMO_PANIC)")
    }

    fn plan(
        &self,
        scenario: &ScenarioEntry,
        measurements: &Measurements,
        what_if: &WhatIf,
        progress: &dyn Fn(Progress),
        cancel: &Arc<AtomicBool>,
    ) -> Result<Report, String> {
        self.0
            .plan(scenario, measurements, what_if, progress, cancel)
    }

    fn export(
        &self,
        scenario: &ScenarioEntry,
        report: &Report,
        out_dir: &Path,
    ) -> Result<Vec<PathBuf>, String> {
        self.0.export(scenario, report, out_dir)
    }
}

fn main() -> anyhow::Result<()> {
    let paths: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    // Slow the fake down so the progress bars are visible.
    let fake = FakePipeline::with_delay(Duration::from_millis(25));
    let pipeline: Arc<dyn Pipeline> = if std::env::var_os("WORKBENCH_TUI_DEMO_PANIC").is_some() {
        Arc::new(PanickingPipeline(fake))
    } else {
        Arc::new(fake)
    };
    let out_dir = std::env::temp_dir().join("workbench-tui-demo");
    run_tui_with_out_dir(paths, pipeline, out_dir)?;
    Ok(())
}
