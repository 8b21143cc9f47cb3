//! The seam between the TUI and the real pipeline.
//!
//! The worker thread calls a [`Pipeline`]; the TUI never measures, plans or
//! writes files itself. The lead wires the real stages (scenario, measure,
//! plan, report) behind this trait; [`crate::tui::fake::FakePipeline`] is a
//! deterministic stand-in for tests and demos.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::report::{CompiledProgram, KernelMeasurement, Report, Roofline};

/// One scenario file as listed in the Scenarios view. A file that fails to
/// parse is still listed, with its errors, so a bad file never crashes the TUI.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioEntry {
    pub path: PathBuf,
    /// Display name (the scenario's `name`, or the file stem if it failed to parse).
    pub name: String,
    /// Summary lines (model size, FLOPs, traffic, SLO, constraints, targets).
    pub summary: Vec<String>,
    /// Parse or validation errors, one per line (`file:line:col: ...`). Empty when valid.
    pub errors: Vec<String>,
    /// Problems found, listed in `errors` or not (0 when valid).
    pub problems: usize,
    /// The scenario's own share of time its devices are offline (0 when it
    /// failed to parse): where the offline what-if starts.
    pub offline_fraction: f64,
    /// The scenario sets a monthly budget (the budget what-if scales it).
    pub has_budget: bool,
    /// The scenario lists edge devices (the offline what-if applies to them).
    pub has_edge: bool,
    /// How far each what-if factor may go for this scenario (the default
    /// range when it failed to parse).
    pub what_if_limits: WhatIfLimits,
}

impl ScenarioEntry {
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Progress reported by the pipeline while a job runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// A named stage started ("probing hardware", "simulating 42 candidates").
    Stage(String),
    /// One kernel (backend x precision x batch) advanced: `done` of `total` samples.
    Kernel { key: String, done: u32, total: u32 },
    /// Autotuning: trial `trial` of `total`, best throughput so far and its configuration.
    Tuning {
        trial: u32,
        total: u32,
        best_gflops: f64,
        best_config: String,
    },
}

/// One measured kernel, as shown in the Kernels table and roofline.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelRow {
    /// Model variant, when the scenario has several (`None`: the only one).
    pub variant: Option<String>,
    /// The model variant this kernel is a build of, named or not in `variant`:
    /// with the backend and precision, it finds the build's compiled program.
    pub model_variant: String,
    pub backend: String,
    pub precision: String,
    pub batch: u32,
    /// Median latency of one batch, milliseconds.
    pub latency_ms: f64,
    /// Predictions per second at this batch size.
    pub throughput_per_s: f64,
    pub gflops: f64,
    /// Fraction of the machine's peak for this precision, 0..=1.
    pub fraction_of_peak: f64,
    /// FLOP per byte moved (roofline x axis).
    pub arithmetic_intensity: f64,
    /// Bytes of activations the compiled model held at this batch (`None`:
    /// not recorded).
    pub activation_bytes: Option<u64>,
}

impl KernelRow {
    /// "tiled f32 b32", or "student tiled f32 b32" when the scenario has several
    /// variants: also the label of the kernel's roofline point.
    pub fn key(&self) -> String {
        crate::report::kernel_label(
            self.variant.as_deref(),
            &self.backend,
            &self.precision,
            self.batch,
        )
    }

    /// The build this kernel times, any batch: "base tiled f32" (the variant
    /// always named: the program pane's title stands apart from the table).
    pub fn build_label(&self) -> String {
        format!("{} {} {}", self.model_variant, self.backend, self.precision)
    }

    /// Is `program` the compiled program of this kernel's build?
    pub fn is_build_of(&self, program: &CompiledProgram) -> bool {
        program.model_variant == self.model_variant
            && program.backend.name() == self.backend
            && program.precision.name() == self.precision
    }

    /// The row for one report kernel; the arithmetic intensity comes from the
    /// roofline point with the same label, 0 (not plotted) if none.
    /// `name_variant`: the scenario has several variants, so rows say which.
    pub fn from_measurement(
        kernel: &KernelMeasurement,
        roofline: &Roofline,
        name_variant: bool,
    ) -> KernelRow {
        let latency_ms = kernel.median_ns / 1e6;
        let mut row = KernelRow {
            variant: name_variant.then(|| kernel.workload.clone()),
            model_variant: kernel.workload.clone(),
            backend: kernel.backend.name().to_string(),
            precision: kernel.precision.name().to_string(),
            batch: kernel.batch,
            latency_ms,
            throughput_per_s: if latency_ms > 0.0 {
                f64::from(kernel.batch) * 1000.0 / latency_ms
            } else {
                0.0
            },
            gflops: kernel.gflops,
            fraction_of_peak: kernel.fraction_of_peak,
            arithmetic_intensity: 0.0,
            activation_bytes: kernel.activation_bytes,
        };
        let label = row.key();
        row.arithmetic_intensity = roofline
            .points
            .iter()
            .find(|p| p.label == label)
            .map_or(0.0, |p| p.arithmetic_intensity);
        row
    }
}

impl Measurements {
    /// Builds the Kernels view's data from report-shaped measurements (the
    /// kernels and roofline the real pipeline also puts in its `Report`).
    pub fn from_report_parts(
        kernels: &[KernelMeasurement],
        roofline: &Roofline,
        tuned: Option<String>,
        cache: Arc<dyn Any + Send + Sync>,
    ) -> Measurements {
        let name_variant = kernels.windows(2).any(|w| w[0].workload != w[1].workload);
        Measurements {
            kernels: kernels
                .iter()
                .map(|k| KernelRow::from_measurement(k, roofline, name_variant))
                .collect(),
            peak_gflops: roofline.peak_gflops,
            // The slowest roof (DRAM) is the one a kernel streaming its weights meets.
            bandwidth_gbs: roofline
                .bandwidths
                .iter()
                .map(|b| b.gb_per_s)
                .reduce(f64::min)
                .unwrap_or(0.0),
            peak_gops_int8: roofline
                .peak_gops_int8
                .filter(|peak| peak.is_finite() && *peak > 0.0),
            bandwidth_roofs: roofline
                .bandwidths
                .iter()
                .filter(|b| b.gb_per_s.is_finite() && b.gb_per_s > 0.0)
                .map(|b| (b.name.clone(), b.gb_per_s))
                .collect(),
            tuned,
            not_measured: Vec::new(),
            programs: Vec::new(),
            cache,
        }
    }

    /// The compiled program of `kernel`'s build (one compile serves every
    /// batch, and a projected kernel is its measurement's build); `None`
    /// when it was timed before programs were kept.
    pub fn program_of(&self, kernel: &KernelRow) -> Option<&CompiledProgram> {
        self.programs.iter().find(|p| kernel.is_build_of(p))
    }
}

/// The result of measuring one scenario's kernels on this machine.
#[derive(Clone)]
pub struct Measurements {
    pub kernels: Vec<KernelRow>,
    /// Roofline ceilings of this machine.
    pub peak_gflops: f64,
    pub bandwidth_gbs: f64,
    /// Compute roof of the int8 path, G ops/s, when it was probed: int8
    /// kernels are held to it, not to the f32 roof.
    pub peak_gops_int8: Option<f64>,
    /// Every memory level's roof (name, GB/s), fastest cache to DRAM, as the
    /// report's roofline.svg draws them.
    pub bandwidth_roofs: Vec<(String, f64)>,
    /// Best autotuned configuration, if the scenario asked for autotuning.
    pub tuned: Option<String>,
    /// Kernels that could not be measured, each with why, as `workbench run`
    /// lists them ("student tiled f32 batch 64: compiling it would take ...").
    pub not_measured: Vec<String>,
    /// What the compiler made of each measured build (variant x backend x
    /// precision); a build whose timings were cached before programs were
    /// kept has none.
    pub programs: Vec<CompiledProgram>,
    /// The pipeline's own typed data (latency profiles...), handed back to
    /// [`Pipeline::plan`] so a what-if re-plans without re-measuring.
    pub cache: Arc<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for Measurements {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Measurements")
            .field("kernels", &self.kernels)
            .field("peak_gflops", &self.peak_gflops)
            .field("bandwidth_gbs", &self.bandwidth_gbs)
            .field("peak_gops_int8", &self.peak_gops_int8)
            .field("bandwidth_roofs", &self.bandwidth_roofs)
            .field("tuned", &self.tuned)
            .field("not_measured", &self.not_measured)
            .field("programs", &self.programs)
            .finish_non_exhaustive()
    }
}

/// What-if changes: the planner's own type, so the TUI and `workbench run` agree.
pub use crate::plan::whatif::WhatIfLimits;
pub use crate::plan::WhatIf;

/// The pipeline stages the TUI's worker thread calls. Every method may take
/// long; `measure` and `plan` must poll `cancel` and return early (with an
/// error) when set.
pub trait Pipeline: Send + Sync {
    /// Lists the scenarios found under `paths` (files, or directories of `*.toml`).
    fn load_scenarios(&self, paths: &[PathBuf]) -> Vec<ScenarioEntry>;

    /// The entry as its file now reads (it may have been edited since it was
    /// listed); by default the entry as it is.
    fn reload(&self, scenario: &ScenarioEntry) -> ScenarioEntry {
        scenario.clone()
    }

    /// Measures the scenario's kernels on this machine (or loads them from the cache).
    fn measure(
        &self,
        scenario: &ScenarioEntry,
        progress: &dyn Fn(Progress),
        cancel: &Arc<AtomicBool>,
    ) -> Result<Measurements, String>;

    /// Projects, simulates and recommends from cached measurements, with the what-if applied.
    fn plan(
        &self,
        scenario: &ScenarioEntry,
        measurements: &Measurements,
        what_if: &WhatIf,
        progress: &dyn Fn(Progress),
        cancel: &Arc<AtomicBool>,
    ) -> Result<Report, String>;

    /// Writes the same Markdown/CSV/JSON as `workbench run` under `out_dir`; returns the paths written.
    fn export(
        &self,
        scenario: &ScenarioEntry,
        report: &Report,
        out_dir: &Path,
    ) -> Result<Vec<PathBuf>, String>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::FigureSource;
    use workbench_kernels::{BackendKind, Precision};

    /// Every batch of a build, and its projection onto a target, is the one
    /// compile: each row finds the build's program; another build's row
    /// (or variant's) does not.
    #[test]
    fn rows_of_one_build_share_its_program() {
        let report = crate::report::fixtures::sample_report();
        let measured = |variant: &str, backend, precision, batch| KernelMeasurement {
            workload: variant.to_string(),
            backend,
            precision,
            batch,
            ..report.kernels[0].clone()
        };
        let projected = KernelMeasurement {
            source: FigureSource::Projected,
            target: "phone-midrange".to_string(),
            ..measured("base", BackendKind::Tiled, Precision::Int8, 8)
        };
        let kernels = [
            measured("base", BackendKind::Tiled, Precision::Int8, 1),
            projected,
            measured("base", BackendKind::Tiled, Precision::F32, 1),
            measured("distilled", BackendKind::Tiled, Precision::Int8, 1),
        ];
        let mut m = Measurements::from_report_parts(&kernels, &report.roofline, None, Arc::new(()));
        m.programs = vec![CompiledProgram {
            model_variant: "base".to_string(),
            backend: BackendKind::Tiled,
            precision: Precision::Int8,
            text: "tiled int8".to_string(),
        }];
        let found: Vec<bool> = m
            .kernels
            .iter()
            .map(|k| m.program_of(k).is_some())
            .collect();
        assert_eq!(found, [true, true, false, false]);
        assert_eq!(m.kernels[1].build_label(), "base tiled int8");
        assert_eq!(m.kernels[3].variant.as_deref(), Some("distilled"));
    }
}
