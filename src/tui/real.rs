//! The real pipeline behind the TUI: the same stages `workbench run` calls.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::measure::MeasureProgress;
use crate::pipeline::{self, Measured, PipelineOptions};
use crate::report::{self, FigureSource, Report};
use crate::scenario::{self, Scenario};

use super::pipeline::{Measurements, Pipeline, Progress, ScenarioEntry, WhatIf};

/// Measures with the kernels, plans with the simulator, exports with the report writers.
pub struct RealPipeline {
    pub options: PipelineOptions,
}

/// What `measure` hands back to `plan` (inside `Measurements::cache`).
struct Cached {
    scenario: Scenario,
    measured: Measured,
}

fn cancelled(cancel: &AtomicBool) -> Result<(), String> {
    if cancel.load(Ordering::Relaxed) {
        Err("cancelled".to_string())
    } else {
        Ok(())
    }
}

impl Pipeline for RealPipeline {
    fn load_scenarios(&self, paths: &[PathBuf]) -> Vec<ScenarioEntry> {
        super::scenario_entries(paths)
    }

    fn reload(&self, entry: &ScenarioEntry) -> ScenarioEntry {
        super::scenario_entry(&entry.path)
    }

    fn measure(
        &self,
        entry: &ScenarioEntry,
        progress: &dyn Fn(Progress),
        cancel: &Arc<AtomicBool>,
    ) -> Result<Measurements, String> {
        let scenario = scenario::load(&entry.path).map_err(|e| e.to_string())?;
        progress(Progress::Stage("probing this machine".to_string()));
        let mut on_progress = |p: MeasureProgress| {
            // What is compiling (a large model's compile can take seconds).
            if let Some(text) = p.compile_text() {
                progress(Progress::Stage(text));
            }
            if let MeasureProgress::Planned { total, cached } = p {
                progress(Progress::Stage(format!(
                    "timing {} kernels ({cached} from the cache)",
                    total.saturating_sub(cached)
                )));
            }
            // One bar per kernel: empty while it is timed, full when done (the
            // harness reports no samples along the way); the stage counts them.
            match p {
                MeasureProgress::Started {
                    index,
                    total,
                    backend,
                    precision,
                    batch,
                } => {
                    let key = format!("{backend} {precision} b{batch}");
                    progress(Progress::Stage(format!("timing {index} of {total}: {key}")));
                    progress(Progress::Kernel {
                        key,
                        done: 0,
                        total: 1,
                    });
                }
                MeasureProgress::Finished {
                    backend,
                    precision,
                    batch,
                    ..
                } => progress(Progress::Kernel {
                    key: format!("{backend} {precision} b{batch}"),
                    done: 1,
                    total: 1,
                }),
                _ => {}
            }
        };
        let options = PipelineOptions {
            cancel: Some(Arc::clone(cancel)),
            ..self.options.clone()
        };
        let measured = pipeline::measure_scenario(&scenario, &options, &mut on_progress)
            .map_err(|e| e.to_string())?;
        cancelled(cancel)?;
        let local: Vec<report::KernelMeasurement> = measured
            .kernels
            .iter()
            .filter(|k| k.source == FigureSource::Measured)
            .cloned()
            .collect();
        let roofline = pipeline::roofline_report(&measured);
        Ok(Measurements::from_report_parts(
            &local,
            &roofline,
            None,
            Arc::new(Cached { scenario, measured }),
        ))
    }

    fn plan(
        &self,
        _entry: &ScenarioEntry,
        measurements: &Measurements,
        what_if: &WhatIf,
        progress: &dyn Fn(Progress),
        cancel: &Arc<AtomicBool>,
    ) -> Result<Report, String> {
        let cached = measurements
            .cache
            .downcast_ref::<Cached>()
            .ok_or_else(|| "measurements from another pipeline: measure again".to_string())?;
        progress(Progress::Stage("simulating candidate plans".to_string()));
        let options = pipeline::plan_options(&cached.scenario, &self.options);
        let report = pipeline::plan_scenario(
            &cached.scenario,
            &cached.measured,
            what_if,
            &options,
            &humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        );
        cancelled(cancel)?;
        Ok(report)
    }

    fn export(
        &self,
        _entry: &ScenarioEntry,
        report: &Report,
        out_dir: &Path,
    ) -> Result<Vec<PathBuf>, String> {
        report::write_report(report, out_dir, &report::Formats::all()).map_err(|e| e.to_string())
    }
}
