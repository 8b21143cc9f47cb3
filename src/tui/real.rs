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

/// Turns the harness's progress into the Kernels view's: one bar per kernel
/// (named after its variant when the model has several), and a count over
/// every variant's kernels. The harness counts each variant's kernels on
/// their own, from 1, and announces each variant with a `Planned`.
#[derive(Debug)]
pub struct KernelProgress {
    variants: Vec<String>,
    /// The variant being measured (`None` before its `Planned`).
    variant: Option<usize>,
    /// Kernels of the variants measured before it.
    done_before: usize,
    /// Kernels of the variant being measured.
    current_total: usize,
}

impl KernelProgress {
    pub fn new(variants: Vec<String>) -> KernelProgress {
        KernelProgress {
            variants,
            variant: None,
            done_before: 0,
            current_total: 0,
        }
    }

    /// Kernels of every variant: those counted so far, and as many again
    /// for each variant still to come (each is measured over the same
    /// backends, precisions and batch sizes).
    fn grand_total(&self) -> usize {
        let left = self
            .variants
            .len()
            .saturating_sub(self.variant.map_or(0, |v| v + 1));
        self.done_before + self.current_total * (1 + left)
    }

    /// The bar's name: "tiled f32 b8", or "student tiled f32 b8" when the
    /// model has several variants (as the Kernels table names them).
    fn key(&self, backend: &str, precision: &str, batch: usize) -> String {
        let variant = self
            .variant
            .filter(|_| self.variants.len() > 1)
            .and_then(|v| self.variants.get(v))
            .map(String::as_str);
        crate::report::kernel_label(
            variant,
            backend,
            precision,
            u32::try_from(batch).unwrap_or(u32::MAX),
        )
    }

    /// Reports `p` through `progress`.
    pub fn report(&mut self, p: &MeasureProgress, progress: &dyn Fn(Progress)) {
        // What is compiling (a large model's compile can take seconds).
        if let Some(text) = p.compile_text() {
            progress(Progress::Stage(text));
        }
        match *p {
            MeasureProgress::Planned { total, cached } => {
                if self.variant.is_some() {
                    self.done_before += self.current_total;
                }
                let next = self.variant.map_or(0, |v| v + 1);
                self.variant = Some(next.min(self.variants.len().saturating_sub(1)));
                self.current_total = total;
                let of_variant = match self.variant.and_then(|v| self.variants.get(v)) {
                    Some(name) if self.variants.len() > 1 => format!(" of {name}"),
                    _ => String::new(),
                };
                progress(Progress::Stage(format!(
                    "timing {} kernels{of_variant} ({cached} from the cache)",
                    total.saturating_sub(cached)
                )));
            }
            // One bar per kernel: empty while it is timed, full when done (the
            // harness reports no samples along the way); the stage counts them.
            MeasureProgress::Started {
                index,
                backend,
                precision,
                batch,
                ..
            } => {
                let key = self.key(backend.name(), precision.name(), batch);
                progress(Progress::Stage(format!(
                    "timing {} of {}: {key}",
                    self.done_before + index,
                    self.grand_total()
                )));
                progress(Progress::Kernel {
                    key,
                    done: 0,
                    total: 1,
                });
            }
            MeasureProgress::SecondWindow {
                index,
                backend,
                precision,
                batch,
                ..
            } => progress(Progress::Stage(format!(
                "timing {} of {} again, later in the run: {}",
                self.done_before + index,
                self.grand_total(),
                self.key(backend.name(), precision.name(), batch)
            ))),
            MeasureProgress::Finished {
                backend,
                precision,
                batch,
                ..
            } => progress(Progress::Kernel {
                key: self.key(backend.name(), precision.name(), batch),
                done: 1,
                total: 1,
            }),
            MeasureProgress::Tuning {
                ref shape,
                trials,
                max_trials,
                best_gflops,
                ref best,
            } => progress(Progress::Tuning {
                trial: u32::try_from(trials).unwrap_or(u32::MAX),
                total: u32::try_from(max_trials).unwrap_or(u32::MAX),
                best_gflops: best_gflops.unwrap_or(0.0),
                best_config: format!("GEMM {shape}: {best}"),
            }),
            _ => {}
        }
    }
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
        let variants: Vec<String> = scenario
            .model
            .variants
            .iter()
            .map(|v| v.name.clone())
            .collect();
        let mut kernels = KernelProgress::new(variants);
        let mut on_progress = |p: MeasureProgress| kernels.report(&p, progress);
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
        let not_measured = measured.skipped.clone();
        let programs = measured.programs.clone();
        let mut measurements = Measurements::from_report_parts(
            &local,
            &roofline,
            None,
            Arc::new(Cached { scenario, measured }),
        );
        measurements.not_measured = not_measured;
        measurements.programs = programs;
        Ok(measurements)
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
        pipeline::plan_scenario_cancellable(
            &cached.scenario,
            &cached.measured,
            what_if,
            &options,
            &humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            cancel,
        )
        .ok_or_else(|| "cancelled".to_string())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use workbench_kernels::{BackendKind, Precision};

    /// Two variants of two kernels each: four bars, named after their
    /// variant, and a count that runs 1 to 4 over both, second windows too.
    #[test]
    fn kernels_of_several_variants_have_bars_and_a_count_of_their_own() {
        let mut kernels = KernelProgress::new(vec!["teacher".into(), "student".into()]);
        let seen = RefCell::new(Vec::new());
        let record = |p: Progress| seen.borrow_mut().push(p);
        for variant in 0..2 {
            kernels.report(
                &MeasureProgress::Planned {
                    total: 2,
                    cached: 0,
                },
                &record,
            );
            for (index, batch) in [(1, 1), (2, 8)] {
                let (backend, precision) = (BackendKind::Tiled, Precision::F32);
                kernels.report(
                    &MeasureProgress::Started {
                        index,
                        total: 2,
                        backend,
                        precision,
                        batch,
                    },
                    &record,
                );
                kernels.report(
                    &MeasureProgress::Finished {
                        index,
                        total: 2,
                        backend,
                        precision,
                        batch,
                        median_ns: 1.0,
                        from_cache: false,
                    },
                    &record,
                );
            }
            if variant == 1 {
                kernels.report(
                    &MeasureProgress::SecondWindow {
                        index: 1,
                        total: 2,
                        backend: BackendKind::Tiled,
                        precision: Precision::F32,
                        batch: 1,
                    },
                    &record,
                );
            }
        }
        let seen = seen.into_inner();
        let stages: Vec<&str> = seen
            .iter()
            .filter_map(|p| match p {
                Progress::Stage(s) if s.starts_with("timing ") && s.contains(" of ") => {
                    Some(s.as_str())
                }
                _ => None,
            })
            .filter(|s| s.contains(':'))
            .collect();
        assert_eq!(
            stages,
            [
                "timing 1 of 4: teacher tiled f32 b1",
                "timing 2 of 4: teacher tiled f32 b8",
                "timing 3 of 4: student tiled f32 b1",
                "timing 4 of 4: student tiled f32 b8",
                "timing 3 of 4 again, later in the run: student tiled f32 b1",
            ]
        );
        let bars: std::collections::BTreeSet<&str> = seen
            .iter()
            .filter_map(|p| match p {
                Progress::Kernel { key, .. } => Some(key.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(bars.len(), 4, "{bars:?}");
    }
}
