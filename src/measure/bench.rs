//! `workbench bench [SCENARIO] [--json] [--quick] [--fresh]`: probe this machine,
//! time the reference workloads per backend x precision x batch, and (with a
//! scenario's model and targets) project the latencies onto each target.

use super::{measure_model, MeasureError, MeasureOptions, MeasureProgress};
use crate::hardware::probe::LocalHardware;
use crate::hardware::project::{check_feasible, executed_program, project_latency, Provenance};
use crate::hardware::roofline::{ProbeOptions, Roofline, RooflineError};
use crate::hardware::target::TargetSpec;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use workbench_kernels::backends::autotuned::AutotunedBackend;
use workbench_kernels::{models, BackendKind, CompileOptions, Graph, KernelError, Precision};

/// A scenario's model and targets, as the caller (CLI/TUI) resolved them.
#[derive(Debug, Clone)]
pub struct BenchScenario {
    pub name: String,
    pub graph: Graph,
    pub targets: Vec<TargetSpec>,
}

#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// About 10 s in all instead of about 60 s.
    pub quick: bool,
    /// Ignore cached probes and measurements.
    pub fresh: bool,
    pub cache_dir: PathBuf,
    pub scenario: Option<BenchScenario>,
    /// Override the time budget of the measurements (tests); `None` = 10 s quick / 60 s.
    pub budget: Option<Duration>,
    /// Override the roofline probe's per-probe time (tests).
    pub probe: Option<ProbeOptions>,
    /// Time the reference workloads (sgemm, chain, mlp-1024, convnet-224); tests
    /// turn this off to time only a small scenario model.
    pub reference_workloads: bool,
    /// Also time the autotuned backend on the scenario model (tunes each GEMM
    /// shape on first use; the tuning log makes later runs cheap).
    pub autotune_scenario: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            quick: false,
            fresh: false,
            cache_dir: super::cache::default_cache_dir(),
            scenario: None,
            budget: None,
            probe: None,
            reference_workloads: true,
            autotune_scenario: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Measure(#[from] MeasureError),
    #[error(transparent)]
    Roofline(#[from] RooflineError),
    #[error("building workload {workload}: {source}")]
    Kernel {
        workload: String,
        source: KernelError,
    },
    #[error("encoding the report as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The `hardware` object of the JSON report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HardwareSummary {
    pub cpu: String,
    pub arch: String,
    pub physical_cores: u32,
    pub logical_cpus: u32,
    pub frequency_mhz: u64,
    pub memory_bytes: u64,
    pub os: String,
    pub features: Vec<String>,
    /// Data/unified cache sizes by level (L1, L2, L3).
    pub caches: Vec<crate::hardware::probe::CacheLevel>,
    pub fingerprint: String,
    /// Single-core peaks from the roofline probe.
    pub peak_gflops_f32: f64,
    pub peak_gops_int8: f64,
    /// DRAM bandwidth of one core, GB/s, as the latency projection uses it:
    /// the probe's DRAM copy figure (`roofline.dram_gbs`).
    pub dram_gbs: f64,
    /// DRAM bandwidth of one core, GB/s, reading only
    /// (`roofline.bandwidth[DRAM].read_gbs`); 0 when the probe has no DRAM
    /// level. Absent in output of older versions.
    #[serde(default)]
    pub dram_read_gbs: f64,
}

/// One measured (workload, backend, precision, batch): a record of `kernels`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelRecord {
    pub backend: BackendKind,
    pub precision: Precision,
    /// `sgemm`, `chain`, `mlp-1024`, `convnet-224`, or the scenario's model
    /// name (a deep MLP's repeated hidden widths as `width*count`:
    /// `mlp-1024-[1024*98]-10`).
    pub workload: String,
    /// Human-readable shape (`256x256x256`, `1024-1024-1024-10`, `3x224x224`;
    /// the scenario's model: its name, as `workload`).
    pub shape: String,
    pub batch: usize,
    pub median_ns: f64,
    pub mean_ns: f64,
    pub p90_ns: f64,
    pub p99_ns: f64,
    pub min_ns: f64,
    pub max_ns: f64,
    pub std_dev_ns: f64,
    pub median_ci_low_ns: f64,
    pub median_ci_high_ns: f64,
    pub cv: f64,
    pub samples: usize,
    pub high_variance: bool,
    pub throughput_per_s: f64,
    pub gflops: f64,
    pub fraction_of_peak: Option<f64>,
    pub from_cache: bool,
    pub provenance: Provenance,
    /// Autotuned records: the search trials the tuning log holds for this
    /// workload's GEMM shapes on this machine (the effort behind its tiles,
    /// also when they were reused from the log); `null` for other backends.
    #[serde(default)]
    pub trials: Option<usize>,
    /// Bytes of activations the compiled model held at this batch (weights
    /// excluded; for sgemm and chain, their output and any intermediates
    /// naive keeps); `null` for measurements cached before it was recorded.
    #[serde(default)]
    pub activation_bytes: Option<u64>,
}

/// The projected latency of a scenario measurement on one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectionRecord {
    pub target: String,
    pub backend: BackendKind,
    pub precision: Precision,
    pub batch: usize,
    pub measured_ns: f64,
    /// `None` when infeasible.
    pub projected_ns: Option<f64>,
    /// Share of the projected time not spent on the target's main memory
    /// (compute, cache traffic, fork and join).
    pub compute_fraction: Option<f64>,
    pub infeasible: Option<String>,
    pub provenance: Provenance,
}

/// A configuration of a workload the bench did not time (or not at some
/// batch sizes), and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchSkip {
    pub workload: String,
    pub backend: BackendKind,
    pub precision: Precision,
    /// The batch sizes not measured; empty = none of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<usize>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    pub hardware: HardwareSummary,
    pub roofline: Roofline,
    pub roofline_from_cache: bool,
    pub kernels: Vec<KernelRecord>,
    pub skipped: Vec<BenchSkip>,
    pub scenario: Option<String>,
    pub projections: Vec<ProjectionRecord>,
    pub quick: bool,
    /// What the full bench measures that `--quick` leaves out by design, one
    /// line per workload and configuration ("convnet-224 3x224x224 tiled f32
    /// at batch 8"): so a reader of a quick run does not take them as missing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quick_omits: Vec<String>,
}

struct Job {
    /// The reference workload's name, or the scenario model's [`model_label`].
    workload: String,
    shape: String,
    graph: Graph,
    configs: Vec<(BackendKind, Precision)>,
    batches: Vec<usize>,
}

const F32_BACKENDS: [BackendKind; 3] = [BackendKind::Naive, BackendKind::Fused, BackendKind::Tiled];

fn configs(backends: &[BackendKind], precisions: &[Precision]) -> Vec<(BackendKind, Precision)> {
    backends
        .iter()
        .flat_map(|&b| precisions.iter().map(move |&p| (b, p)))
        .collect()
}

fn kernel_err(workload: &str) -> impl FnOnce(KernelError) -> BenchError + '_ {
    move |source| BenchError::Kernel {
        workload: workload.to_string(),
        source,
    }
}

/// The reference workloads: quick keeps the naive backend to small batches
/// (it is the slowest by far) and the sizes the planner reads most.
fn reference_jobs(quick: bool) -> Result<Vec<Job>, BenchError> {
    let all = configs(&F32_BACKENDS, &[Precision::F32]);
    // The quantized backend stores int8 (or half) weights, the autotuned one f32.
    let extra = [
        (BackendKind::Quantized, Precision::Int8),
        (BackendKind::Autotuned, Precision::F32),
    ];
    let mut jobs = Vec::new();
    let sgemm_sizes: &[usize] = if quick { &[256] } else { &[256, 512] };
    for &n in sgemm_sizes {
        jobs.push(Job {
            workload: "sgemm".into(),
            shape: format!("{n}x{n}x{n}"),
            graph: models::sgemm_graph(n, n, n, 1).map_err(kernel_err("sgemm"))?,
            configs: all.clone(),
            batches: vec![1],
        });
    }
    let chain_len = if quick { 1 << 20 } else { 1 << 22 };
    jobs.push(Job {
        workload: "chain".into(),
        shape: format!("{chain_len}"),
        graph: models::elementwise_chain(chain_len, 1).map_err(kernel_err("chain"))?,
        configs: all.clone(),
        batches: vec![1],
    });
    let mlp = models::mlp_1024(1).map_err(kernel_err("mlp-1024"))?;
    let mlp_batches = if quick {
        vec![1, 8, 64]
    } else {
        vec![1, 2, 4, 8, 16, 32, 64]
    };
    jobs.push(Job {
        workload: "mlp-1024".into(),
        shape: "1024-1024-1024-10".into(),
        graph: mlp.clone(),
        configs: configs(&[BackendKind::Fused, BackendKind::Tiled], &[Precision::F32])
            .into_iter()
            .chain(extra.iter().copied())
            .collect(),
        batches: mlp_batches,
    });
    jobs.push(Job {
        workload: "mlp-1024".into(),
        shape: "1024-1024-1024-10".into(),
        graph: mlp,
        configs: vec![(BackendKind::Naive, Precision::F32)],
        batches: if quick { vec![1, 8] } else { vec![1, 8, 64] },
    });
    jobs.push(Job {
        workload: "convnet-224".into(),
        shape: "3x224x224".into(),
        graph: models::convnet_224(1).map_err(kernel_err("convnet-224"))?,
        configs: all,
        batches: if quick { vec![1] } else { vec![1, 8] },
    });
    Ok(jobs)
}

/// The batch sizes a scenario's model is timed at.
fn scenario_batches(quick: bool) -> Vec<usize> {
    if quick {
        vec![1, 8]
    } else {
        vec![1, 8, 64]
    }
}

/// The scenario's model, timed with what `run` would measure of it.
fn scenario_job(s: &BenchScenario, opts: &BenchOptions) -> Job {
    let label = model_label(s.graph.name());
    Job {
        workload: label.clone(),
        shape: label,
        graph: s.graph.clone(),
        configs: configs(
            &[
                BackendKind::Fused,
                BackendKind::Tiled,
                BackendKind::Quantized,
            ],
            &[Precision::F32, Precision::Int8],
        )
        .into_iter()
        // Only what `run` would measure: no fused or tiled int8, no
        // quantized f32 (each took budget to be skipped).
        .filter(|&(backend, precision)| crate::plan::search::backend_allows(backend, precision))
        .chain(
            opts.autotune_scenario
                .then_some((BackendKind::Autotuned, Precision::F32)),
        )
        .collect(),
        batches: scenario_batches(opts.quick),
    }
}

/// Model names up to this long are reported as they are.
const MAX_PLAIN_MODEL_LABEL: usize = 40;

/// Shortest run of equal hidden widths [`model_label`] writes with a count
/// (a pair reads as well spelt out).
const MIN_COUNTED_RUN: usize = 3;

/// A scenario model's `workload` and `shape` in the report: its graph name,
/// except that in a long MLP name (`mlp-{input}-[{hidden widths, x-separated}]-{output}`,
/// one width per layer) a run of equal hidden widths is written once with
/// its count: a 100-layer MLP's `mlp-1024-[1024x1024x...x1024]-10` becomes
/// `mlp-1024-[1024*98]-10`, and `[512x1024*6x256]` is 512, six times 1024,
/// 256. Nothing is dropped, so the label still names one model.
fn model_label(name: &str) -> String {
    let plain = || name.to_string();
    if name.chars().count() <= MAX_PLAIN_MODEL_LABEL || !name.starts_with("mlp-") {
        return plain();
    }
    let Some((head, rest)) = name.split_once('[') else {
        return plain();
    };
    let Some((hidden, tail)) = rest.split_once(']') else {
        return plain();
    };
    let widths: Vec<&str> = hidden.split('x').collect();
    let mut parts: Vec<String> = Vec::new();
    let mut start = 0;
    while let Some(&width) = widths.get(start) {
        let run = widths[start..].iter().take_while(|w| **w == width).count();
        if run >= MIN_COUNTED_RUN {
            parts.push(format!("{width}*{run}"));
        } else {
            parts.extend(std::iter::repeat_n(width.to_string(), run));
        }
        start += run;
    }
    format!("{head}[{}]{tail}", parts.join("x"))
}

/// The reference measurements the full bench makes and the quick one does
/// not, grouped by workload and configuration with the batches left out, and
/// the scenario model's batches left out (its configurations are the same).
fn quick_omissions(
    reference_workloads: bool,
    scenario: Option<&str>,
) -> Result<Vec<String>, BenchError> {
    let measured = |jobs: &[Job]| -> BTreeSet<(String, String, &'static str, &'static str, usize)> {
        jobs.iter()
            .flat_map(|job| {
                job.configs.iter().flat_map(move |&(backend, precision)| {
                    job.batches.iter().map(move |&batch| {
                        (
                            job.workload.clone(),
                            job.shape.clone(),
                            backend.name(),
                            precision.name(),
                            batch,
                        )
                    })
                })
            })
            .collect()
    };
    let (quick, full) = if reference_workloads {
        (
            measured(&reference_jobs(true)?),
            measured(&reference_jobs(false)?),
        )
    } else {
        (BTreeSet::new(), BTreeSet::new())
    };
    let mut omitted: BTreeMap<(String, String, &str, &str), Vec<usize>> = BTreeMap::new();
    for (workload, shape, backend, precision, batch) in full {
        if !quick.contains(&(workload.clone(), shape.clone(), backend, precision, batch)) {
            omitted
                .entry((workload, shape, backend, precision))
                .or_default()
                .push(batch);
        }
    }
    let batch_list = |batches: &[usize]| {
        let batches: Vec<String> = batches.iter().map(usize::to_string).collect();
        batches.join(", ")
    };
    let mut lines: Vec<String> = omitted
        .into_iter()
        .map(|((workload, shape, backend, precision), batches)| {
            format!(
                "{workload} {shape} {backend} {precision} at batch {}",
                batch_list(&batches)
            )
        })
        .collect();
    if let Some(name) = scenario {
        let quick = scenario_batches(true);
        let left_out: Vec<usize> = scenario_batches(false)
            .into_iter()
            .filter(|b| !quick.contains(b))
            .collect();
        if !left_out.is_empty() {
            lines.push(format!(
                "scenario {name}: every configuration at batch {}",
                batch_list(&left_out)
            ));
        }
    }
    Ok(lines)
}

/// The DRAM read bandwidth of `roofline` (0 when it has no DRAM level).
fn dram_read_gbs(roofline: &Roofline) -> f64 {
    roofline
        .bandwidth
        .iter()
        .find(|level| level.level == crate::hardware::roofline::DRAM)
        .map_or(0.0, |level| level.read_gbs)
}

/// Probe, measure and (with a scenario) project. Progress events of every
/// workload go to `progress` in order.
pub fn run(
    opts: &BenchOptions,
    progress: &mut dyn FnMut(MeasureProgress),
) -> Result<BenchReport, BenchError> {
    let hw = LocalHardware::detect();
    let probe_opts = opts.probe.unwrap_or_default();
    let (roofline, roofline_from_cache) =
        Roofline::load_or_probe(&hw, &opts.cache_dir, opts.fresh, probe_opts)?;
    // The budget is the measurements' (the probe is cached, and timed apart).
    let start = Instant::now();
    let budget = opts.budget.unwrap_or(if opts.quick {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(60)
    });
    let base = if opts.quick {
        MeasureOptions::quick()
    } else {
        MeasureOptions::standard()
    };
    let mut jobs = if opts.reference_workloads {
        reference_jobs(opts.quick)?
    } else {
        Vec::new()
    };
    let scenario_index = opts.scenario.as_ref().map(|s| {
        jobs.push(scenario_job(s, opts));
        jobs.len() - 1
    });
    let job_count = |j: &Job| j.configs.len() * j.batches.len();
    let all_jobs: usize = jobs.iter().map(job_count).sum();
    let mut jobs_left = all_jobs;

    let mut report = BenchReport {
        hardware: HardwareSummary {
            cpu: hw.cpu_brand.clone(),
            arch: hw.arch.clone(),
            physical_cores: hw.physical_cores,
            logical_cpus: hw.logical_cpus,
            frequency_mhz: hw.frequency_mhz,
            memory_bytes: hw.memory_bytes,
            os: hw.os.clone(),
            features: hw.features.clone(),
            caches: hw.caches.clone(),
            fingerprint: hw.fingerprint.clone(),
            peak_gflops_f32: roofline.peak_gflops_f32,
            peak_gops_int8: roofline.peak_gops_int8,
            dram_gbs: roofline.dram_gbs,
            dram_read_gbs: dram_read_gbs(&roofline),
        },
        roofline: roofline.clone(),
        roofline_from_cache,
        kernels: Vec::new(),
        skipped: Vec::new(),
        scenario: opts.scenario.as_ref().map(|s| s.name.clone()),
        projections: Vec::new(),
        quick: opts.quick,
        quick_omits: if opts.quick {
            quick_omissions(
                opts.reference_workloads,
                opts.scenario.as_ref().map(|s| s.name.as_str()),
            )?
        } else {
            Vec::new()
        },
    };
    // The first workload that could not be measured at all: the error when
    // none could.
    let mut over_budget = None;
    for (index, job) in jobs.iter().enumerate() {
        // Each workload gets the budget left in proportion to its share of
        // the jobs left, and never less than its share of the whole budget:
        // workloads that ran long on a busy machine do not starve the rest
        // (the bench then runs over its budget by about as much).
        let left = budget.saturating_sub(start.elapsed());
        let share = left
            .mul_f64(job_count(job) as f64 / jobs_left.max(1) as f64)
            .max(budget.mul_f64(job_count(job) as f64 / all_jobs.max(1) as f64));
        jobs_left = jobs_left.saturating_sub(job_count(job));
        let mopts = MeasureOptions {
            budget: share,
            fresh: opts.fresh,
            cache_dir: opts.cache_dir.clone(),
            hardware_fingerprint: Some(hw.fingerprint.clone()),
            roofline: Some(roofline.clone()),
            ..base.clone()
        };
        let workload = job.workload.clone();
        let outcome = match measure_model(&job.graph, &job.configs, &job.batches, &mopts, progress)
        {
            Ok(outcome) => outcome,
            // The jobs before it used the budget up (a busy machine runs
            // slower than estimated): the workload is skipped, with why,
            // and the rest of the report stands.
            Err(MeasureError::OverBudget(over)) => {
                over_budget.get_or_insert_with(|| over.clone());
                for &(backend, precision) in &job.configs {
                    report.skipped.push(BenchSkip {
                        workload: workload.clone(),
                        backend,
                        precision,
                        batches: Vec::new(),
                        reason: over.to_string(),
                    });
                }
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        for s in outcome.skipped {
            let skip = BenchSkip {
                workload: workload.clone(),
                backend: s.backend,
                precision: s.precision,
                batches: s.batches,
                reason: s.reason,
            };
            if !report.skipped.contains(&skip) {
                report.skipped.push(skip);
            }
        }
        let trials = if outcome
            .measurements
            .iter()
            .any(|m| m.backend == BackendKind::Autotuned)
        {
            let copts = CompileOptions {
                threads: 1,
                ..CompileOptions::default()
            };
            Some(
                AutotunedBackend::default()
                    .logged_trials(&job.graph, &copts)
                    .map_err(kernel_err(&job.workload))?,
            )
        } else {
            None
        };
        for m in &outcome.measurements {
            report.kernels.push(KernelRecord {
                backend: m.backend,
                precision: m.precision,
                workload: workload.clone(),
                shape: job.shape.clone(),
                batch: m.batch,
                median_ns: m.stats.median_ns,
                mean_ns: m.stats.mean_ns,
                p90_ns: m.stats.p90_ns,
                p99_ns: m.stats.p99_ns,
                min_ns: m.stats.min_ns,
                max_ns: m.stats.max_ns,
                std_dev_ns: m.stats.std_dev_ns,
                median_ci_low_ns: m.stats.median_ci_low_ns,
                median_ci_high_ns: m.stats.median_ci_high_ns,
                cv: m.stats.cv,
                samples: m.stats.samples,
                high_variance: m.high_variance,
                throughput_per_s: m.throughput_per_s(),
                gflops: m.gflops,
                fraction_of_peak: m.fraction_of_peak,
                from_cache: m.from_cache,
                provenance: Provenance::Measured,
                trials: trials.filter(|_| m.backend == BackendKind::Autotuned),
                activation_bytes: m.activation_bytes,
            });
        }
        if let (Some(s), true) = (&opts.scenario, Some(index) == scenario_index) {
            let mut programs = BTreeMap::new();
            for m in &outcome.measurements {
                let ops = programs
                    .entry((m.backend, m.precision))
                    .or_insert_with(|| executed_program(&job.graph, m.backend, m.precision))
                    .costs(m.batch);
                for target in &s.targets {
                    // What the build held at this batch, where recorded.
                    let activations = m
                        .activation_bytes
                        .unwrap_or_else(|| job.graph.peak_activation_bytes(m.batch));
                    let fit = check_feasible(
                        job.graph.weight_bytes(m.precision),
                        activations,
                        m.precision,
                        target,
                    );
                    let projected = fit.map_err(|e| e.to_string()).and_then(|()| {
                        project_latency(
                            &ops,
                            m.stats.median_ns,
                            Provenance::Measured,
                            m.batch,
                            &roofline,
                            m.precision,
                            target,
                        )
                        .map_err(|e| e.to_string())
                    });
                    report.projections.push(ProjectionRecord {
                        target: target.name.clone(),
                        backend: m.backend,
                        precision: m.precision,
                        batch: m.batch,
                        measured_ns: m.stats.median_ns,
                        projected_ns: projected.as_ref().ok().map(|p| p.latency_ns),
                        compute_fraction: projected.as_ref().ok().map(|p| p.compute_fraction),
                        infeasible: projected.err(),
                        provenance: Provenance::Projected {
                            target: target.name.clone(),
                        },
                    });
                }
            }
        }
    }
    if let (true, Some(over)) = (report.kernels.is_empty(), over_budget) {
        return Err(MeasureError::OverBudget(over).into());
    }
    Ok(report)
}

/// `1.23 ms`, `456 µs`, `789 ns`.
pub fn human_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

impl BenchReport {
    /// Pretty-printed JSON (`docs/bench-format.md`), numbers written as the
    /// report's CSV and JSON files write them (10 significant digits, plain
    /// decimal: [`crate::report::writer::figure_text`]).
    pub fn to_json(&self) -> Result<String, BenchError> {
        Ok(crate::report::writer::figures_json(self)?)
    }

    /// What bench timed of the scenario `name` (the configurations its
    /// projections come from) and what it leaves to `workbench run`.
    fn scenario_scope(&self, name: &str) -> String {
        let mut timed: Vec<String> = Vec::new();
        for p in &self.projections {
            let config = format!("{} {}", p.backend.name(), p.precision.name());
            if !timed.contains(&config) {
                timed.push(config);
            }
        }
        let with = if timed.is_empty() {
            String::new()
        } else {
            format!(", timed with {}", timed.join(", "))
        };
        format!(
            "scenario {name}: its reference model variant only{with}; not measured by bench: \
             f16, bf16 and the scenario's other variants (`workbench run` measures those its search names)"
        )
    }

    /// Plain-text tables: hardware, roofline, measurements, projections.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        let h = &self.hardware;
        let _ = writeln!(out, "Hardware");
        let _ = writeln!(
            out,
            "  CPU        {} ({}, {} cores / {} threads, {} MHz)",
            h.cpu, h.arch, h.physical_cores, h.logical_cpus, h.frequency_mhz
        );
        let _ = writeln!(
            out,
            "  memory     {:.1} GiB, {}",
            h.memory_bytes as f64 / (1u64 << 30) as f64,
            h.os
        );
        let _ = writeln!(out, "  features   {}", h.features.join(" "));
        let caches: Vec<String> = h
            .caches
            .iter()
            .map(|c| format!("L{} {} {} KiB", c.level, c.kind, c.size_bytes / 1024))
            .collect();
        let _ = writeln!(out, "  caches     {}", caches.join(", "));
        let _ = writeln!(out, "  fingerprint {}", h.fingerprint);
        let r = &self.roofline;
        let _ = writeln!(
            out,
            "\nRoofline (one core{}, probe {:.0} ms)",
            if self.roofline_from_cache {
                ", cached"
            } else {
                ""
            },
            r.probe_ms
        );
        for p in &r.f32_by_path {
            let _ = writeln!(out, "  f32 {:<12} {:>8.1} GFLOP/s", p.path, p.giga_per_s);
        }
        for p in &r.int8_by_path {
            let _ = writeln!(out, "  int8 {:<11} {:>8.1} G ops/s", p.path, p.giga_per_s);
        }
        let _ = writeln!(
            out,
            "  {:<6} {:>10} {:>9} {:>9} {:>9}",
            "level", "set", "read", "copy", "triad"
        );
        for b in &r.bandwidth {
            let _ = writeln!(
                out,
                "  {:<6} {:>6} KiB {:>5.1} GB/s {:>5.1} GB/s {:>5.1} GB/s",
                b.level,
                b.working_set_bytes / 1024,
                b.read_gbs,
                b.copy_gbs,
                b.triad_gbs
            );
        }
        let _ = writeln!(
            out,
            "\nMeasured (single thread; * = high variance, c = from cache)"
        );
        let _ = writeln!(
            out,
            "  {:<13} {:<18} {:<9} {:<5} {:>5} {:>11} {:>12} {:>9} {:>6} {:>11}",
            "workload",
            "shape",
            "backend",
            "prec",
            "batch",
            "median",
            "samples/s",
            "GFLOP/s",
            "peak",
            "activations"
        );
        for k in &self.kernels {
            let flags = format!(
                "{}{}{}",
                if k.high_variance { "*" } else { "" },
                if k.from_cache { "c" } else { "" },
                k.trials
                    .map_or(String::new(), |t| format!(" ({t} tuning trials)"))
            );
            let _ = writeln!(
                out,
                "  {:<13} {:<18} {:<9} {:<5} {:>5} {:>11} {:>12.1} {:>9.2} {:>5.1}% {:>11} {}",
                k.workload,
                k.shape,
                k.backend.name(),
                k.precision.name(),
                k.batch,
                human_ns(k.median_ns),
                k.throughput_per_s,
                k.gflops,
                k.fraction_of_peak.unwrap_or(0.0) * 100.0,
                crate::report::format::recorded_bytes(k.activation_bytes),
                flags
            );
        }
        if self
            .kernels
            .iter()
            .any(|k| k.fraction_of_peak.is_some_and(|f| f > 1.0))
        {
            let _ = writeln!(
                out,
                "  (GFLOP/s counts every multiply-add of the model: above peak, the kernel \
                 skipped some, as dense layers after a ReLU skip their input's zeros)"
            );
        }
        for s in &self.skipped {
            let at: Vec<String> = s.batches.iter().map(usize::to_string).collect();
            let at = if at.is_empty() {
                String::new()
            } else {
                format!(" at batch {}", at.join(", "))
            };
            let _ = writeln!(
                out,
                "  skipped {} {} {}{at}: {}",
                s.workload,
                s.backend.name(),
                s.precision.name(),
                s.reason
            );
        }
        if !self.quick_omits.is_empty() {
            let _ = writeln!(
                out,
                "  --quick leaves out (the full bench times them): {}",
                self.quick_omits.join("; ")
            );
        }
        if let Some(name) = &self.scenario {
            let _ = writeln!(out, "  {}", self.scenario_scope(name));
            let _ = writeln!(
                out,
                "\nProjected onto the targets of {name} (roofline rescaling of the measured median)"
            );
            let _ = writeln!(
                out,
                "  {:<24} {:<9} {:<5} {:>5} {:>11} {:>11}  note",
                "target", "backend", "prec", "batch", "measured", "projected"
            );
            for p in &self.projections {
                let (value, note) = match (&p.projected_ns, &p.infeasible) {
                    (Some(ns), _) => (
                        human_ns(*ns),
                        format!(
                            "{:.0}% not waiting on memory",
                            p.compute_fraction.unwrap_or(0.0) * 100.0
                        ),
                    ),
                    (None, Some(reason)) => ("-".to_string(), format!("infeasible: {reason}")),
                    (None, None) => ("-".to_string(), String::new()),
                };
                let _ = writeln!(
                    out,
                    "  {:<24} {:<9} {:<5} {:>5} {:>11} {:>11}  {}",
                    p.target,
                    p.backend.name(),
                    p.precision.name(),
                    p.batch,
                    human_ns(p.measured_ns),
                    value,
                    note
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use workbench_kernels::{Activation, MlpSpec, ModelSpec};

    fn mlp_scenario(input: usize, hidden: Vec<usize>, output: usize) -> BenchScenario {
        let spec = ModelSpec::Mlp(MlpSpec {
            input,
            hidden,
            output,
            activation: Activation::Relu,
        });
        BenchScenario {
            name: "deep".into(),
            graph: Graph::from_spec(&spec, 1).unwrap(),
            targets: Vec::new(),
        }
    }

    /// The widths a label's `[...]` stands for, runs expanded.
    fn expand_hidden(label: &str) -> Vec<usize> {
        let hidden = label.split_once('[').unwrap().1.split_once(']').unwrap().0;
        hidden
            .split('x')
            .flat_map(|part| match part.split_once('*') {
                Some((width, count)) => vec![width.parse().unwrap(); count.parse().unwrap()],
                None => vec![part.parse().unwrap()],
            })
            .collect()
    }

    /// A 100-layer MLP's workload listed all its layers (over 500 characters).
    #[test]
    fn a_deep_mlp_is_labelled_compactly_and_unambiguously() {
        let hidden: Vec<usize> = std::iter::once(512)
            .chain(std::iter::repeat_n(1024, 97))
            .chain([256, 256])
            .collect();
        let s = mlp_scenario(1024, hidden.clone(), 10);
        assert!(s.graph.name().len() > 400, "{}", s.graph.name());
        let job = scenario_job(&s, &BenchOptions::default());
        assert_eq!(job.workload, "mlp-1024-[512x1024*97x256x256]-10");
        assert_eq!(job.shape, job.workload);
        assert_eq!(expand_hidden(&job.workload), hidden);

        let uniform = mlp_scenario(64, vec![64; 100], 4);
        let label = scenario_job(&uniform, &BenchOptions::default()).workload;
        assert_eq!(label, "mlp-64-[64*100]-4");
        assert_eq!(expand_hidden(&label), vec![64; 100]);
    }

    /// Short names, and the reference workloads, are left as they were.
    #[test]
    fn short_model_names_and_reference_workloads_are_unchanged() {
        for (hidden, name) in [
            (vec![32], "mlp-32-[32]-4"),
            (vec![512, 512, 512], "mlp-32-[512x512x512]-4"),
        ] {
            let job = scenario_job(&mlp_scenario(32, hidden, 4), &BenchOptions::default());
            assert_eq!(job.workload, name);
            assert_eq!(job.shape, name);
        }
        assert_eq!(
            model_label("convnet-3x224x224-5blocks-1000"),
            "convnet-3x224x224-5blocks-1000"
        );
        let names: BTreeSet<String> = reference_jobs(true)
            .unwrap()
            .into_iter()
            .map(|j| j.workload)
            .collect();
        let expected: BTreeSet<String> = ["sgemm", "chain", "mlp-1024", "convnet-224"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(names, expected);
    }

    #[test]
    fn quick_omissions_list_what_only_the_full_bench_times() {
        let lines = quick_omissions(true, Some("tiny")).unwrap();
        for expected in [
            "convnet-224 3x224x224 tiled f32 at batch 8",
            "mlp-1024 1024-1024-1024-10 naive f32 at batch 64",
            "mlp-1024 1024-1024-1024-10 tiled f32 at batch 2, 4, 16, 32",
            "sgemm 512x512x512 naive f32 at batch 1",
            "scenario tiny: every configuration at batch 64",
        ] {
            assert!(
                lines.iter().any(|l| l == expected),
                "{expected} not in {lines:#?}"
            );
        }
        // Measured by both: not listed.
        assert!(!lines.iter().any(|l| l.starts_with("sgemm 256x256x256")));
        assert!(!lines
            .iter()
            .any(|l| l.starts_with("convnet-224") && l.contains("at batch 1")));
        assert!(quick_omissions(false, None).unwrap().is_empty());
        // Only configurations a backend accepts are listed (quantized stores
        // int8, autotuned f32).
        assert!(lines
            .iter()
            .any(|l| l.contains("quantized int8 at batch 2")));
        assert!(!lines
            .iter()
            .any(|l| l.contains("quantized f32") || l.contains("autotuned int8")));
    }
}
