//! The one pipeline both front ends call: measure a scenario's model variants on
//! this machine, project them onto its targets, plan, and assemble the report.
//!
//! `measure_scenario` is the only stage that touches the hardware (and it is
//! cached); `plan_scenario` is a pure function of the scenario, the
//! measurements, the what-if changes and the seed.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use workbench_kernels::backends::quantized::seeded_inputs;
use workbench_kernels::{
    compile, BackendKind, CompileOptions, Executable, ExecutedProgram, Graph, KernelError, OpCost,
    Precision,
};

use crate::hardware::project::{
    check_feasible, executed_program, project_latency, Infeasible, ProjectedLatency, Provenance,
};
use crate::hardware::roofline::{call_working_set_bytes, ProbeOptions};
use crate::hardware::{LocalHardware, Roofline};
use crate::measure::{self, memory, MeasureOptions, MeasureProgress};
use crate::plan::{self, search::backend_allows, ComputeProfile, PlanOptions, ProfileSet, WhatIf};
use crate::report::{
    self, Alternative, Assumptions, BandwidthRoof, FigureSource, LatencyCdf, Report, RooflinePoint,
};
use crate::scenario::{InputSpace, Mode, Scenario, Target};
use crate::sim::ProfilePoint;

/// Seed used for synthetic weights and accuracy inputs (the scenario seed drives simulation).
/// Seed of the synthetic weights of every scenario model (the same graph,
/// and so the same cache entries, in every command).
pub const MODEL_SEED: u64 = 0x5EED;
/// Rate the agreement check is assumed to run a model at (reference and
/// candidate; the half formats run slower than tiled f32): it sizes the check
/// to the budget from the model's FLOPs alone, so the count is the same on
/// every machine.
const AGREEMENT_NOMINAL_FLOPS_PER_S: f64 = 20e9;

/// Seeded inputs the agreement of a variant's reduced precisions with f32 is
/// measured on: [`plan::evaluate::AGREEMENT_INPUTS`], or fewer (a multiple
/// of 16, at least 16) when running the reference and one candidate on them
/// at [`AGREEMENT_NOMINAL_FLOPS_PER_S`] would take more than half the
/// variant's equal share of the scenario's measurement budget: a 5 GFLOP
/// convnet under a 1 s budget had spent minutes on it.
fn agreement_inputs(flops_per_sample: f64, scenario: &Scenario) -> usize {
    agreement_inputs_within(
        flops_per_sample,
        scenario.search.measurement_budget_s,
        scenario.model.variants.len(),
    )
}

/// [`agreement_inputs`] of a variant with `flops_per_sample` among `variants`
/// sharing `measurement_budget_s` (for validation, before there is a scenario).
pub(crate) fn agreement_inputs_within(
    flops_per_sample: f64,
    measurement_budget_s: f64,
    variants: usize,
) -> usize {
    let share_s = measurement_budget_s.max(1.0) / variants.max(1) as f64;
    let per_input_s = 2.0 * flops_per_sample / AGREEMENT_NOMINAL_FLOPS_PER_S;
    let affordable = if per_input_s > 0.0 {
        0.5 * share_s / per_input_s
    } else {
        f64::INFINITY
    };
    let most = plan::evaluate::AGREEMENT_INPUTS;
    if affordable >= most as f64 {
        most
    } else {
        ((affordable / 16.0).floor() as usize * 16).clamp(16, most)
    }
}
/// Batch size batch jobs are measured at.
const BATCH_JOB_BATCH: usize = 64;

/// How the pipeline runs.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Short measurement budget and lighter simulation.
    pub quick: bool,
    /// Ignore cached measurements and the cached roofline.
    pub fresh: bool,
    /// Overrides the scenario's seed.
    pub seed: Option<u64>,
    /// Where measurements, the roofline and tuning logs are cached.
    pub cache_dir: PathBuf,
    /// Set by another thread (the TUI's Esc) to stop measuring between samples.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl PipelineOptions {
    fn check_cancelled(&self) -> Result<(), PipelineError> {
        if measure::cancel_requested(self.cancel.as_deref()) {
            Err(PipelineError::Cancelled)
        } else {
            Ok(())
        }
    }
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            quick: false,
            fresh: false,
            seed: None,
            cache_dir: measure::cache::default_cache_dir(),
            cancel: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("model variant `{variant}`: {message}")]
    Model { variant: String, message: String },
    #[error("measuring `{variant}`: {source}")]
    Measure {
        variant: String,
        source: measure::MeasureError,
    },
    #[error("probing this machine: {0}")]
    Probe(String),
    /// Even the fastest configuration's first call is far over the budget: refused before measuring.
    #[error("model variant `{variant}` cannot be measured within the budget: {message}")]
    OverBudget { variant: String, message: String },
    #[error("cancelled")]
    Cancelled,
}

/// Everything measured for one scenario, ready to plan from (and re-plan, for what-if).
#[derive(Debug, Clone)]
pub struct Measured {
    pub hardware: LocalHardware,
    pub roofline: Roofline,
    pub profiles: ProfileSet,
    /// Local measurements and projections, as the reports show them.
    pub kernels: Vec<report::KernelMeasurement>,
    pub roofline_points: Vec<RooflinePoint>,
    /// Backends, precisions or batch sizes that could not be measured, and why.
    pub skipped: Vec<String>,
    /// Measurements taken with fewer samples than usual because one call is
    /// slow for the budget (`variant backend precision batch N (n samples, median a call)`).
    pub reduced: Vec<String>,
    /// Measurements timed in this run (the rest came from the cache).
    pub timed: usize,
    /// Every roofline projection behind the profiles, op by op, so the report
    /// can show how the recommended plan's figure came about.
    pub projections: Vec<ProjectionRecord>,
    /// What the compiler made of each measured build (timed before programs
    /// were kept: none).
    pub programs: Vec<report::CompiledProgram>,
}

/// One measurement projected onto one target.
#[derive(Debug, Clone)]
pub struct ProjectionRecord {
    pub variant: String,
    pub backend: BackendKind,
    /// vCPUs of the target (the projection names the target).
    pub target_cores: u32,
    pub latency: ProjectedLatency,
}

/// The seed a run uses: the command line's, else the scenario's.
pub fn seed_for(scenario: &Scenario, options: &PipelineOptions) -> u64 {
    options.seed.unwrap_or(scenario.search.seed)
}

/// (backend, precision) pairs the scenario's search space allows.
pub fn configs(scenario: &Scenario) -> Vec<(BackendKind, Precision)> {
    let mut out = Vec::new();
    for &b in &scenario.search.backends {
        for &p in &scenario.search.precisions {
            if backend_allows(b, p) {
                out.push((b, p));
            }
        }
    }
    out
}

/// Batch sizes measured: 1, the search's batch sizes, and a large one for batch
/// jobs when the scenario could have one (its inputs can be precomputed).
pub fn batches(scenario: &Scenario) -> Vec<usize> {
    let mut b: Vec<usize> = std::iter::once(1)
        .chain(scenario.search.batch_sizes.iter().copied())
        .collect();
    let inputs = &scenario.inputs;
    let can_precompute =
        matches!(inputs.space, InputSpace::Finite { .. }) && inputs.freshness_s > 0.0;
    if can_precompute
        && scenario
            .search
            .modes
            .iter()
            .any(|m| matches!(m, Mode::Batch | Mode::Hybrid))
    {
        b.push(BATCH_JOB_BATCH);
    }
    b.sort_unstable();
    b.dedup();
    b
}

/// Probe this machine (cached), time every variant x backend x precision x batch
/// (cached), measure reduced-precision agreement, and project onto every target.
pub fn measure_scenario(
    scenario: &Scenario,
    options: &PipelineOptions,
    progress: &mut dyn FnMut(MeasureProgress),
) -> Result<Measured, PipelineError> {
    let hardware = LocalHardware::detect();
    let (roofline, _) = Roofline::load_or_probe(
        &hardware,
        &options.cache_dir,
        options.fresh,
        ProbeOptions::default(),
    )
    .map_err(|e| PipelineError::Probe(e.to_string()))?;
    let mut measure_options = if options.quick {
        MeasureOptions::quick()
    } else {
        MeasureOptions::standard()
    };
    let total_budget = measure_options
        .budget
        .min(std::time::Duration::from_secs_f64(
            scenario.search.measurement_budget_s.max(1.0),
        ));
    measure_options.fresh = options.fresh;
    measure_options.cache_dir = options.cache_dir.clone();
    measure_options.hardware_fingerprint = Some(hardware.fingerprint.clone());
    measure_options.roofline = Some(roofline.clone());
    measure_options.cancel = options.cancel.clone();

    let configs = configs(scenario);
    let batches = batches(scenario);
    refuse_over_budget(scenario, options, &measure_options, &configs, total_budget)?;
    let mut profiles = ProfileSet::default();
    let mut kernels = Vec::new();
    let mut points = Vec::new();
    let mut skipped = Vec::new();
    let mut reduced = Vec::new();
    let mut projections = Vec::new();
    let mut programs = Vec::new();
    let mut timed = 0;
    let mut budget_used = std::time::Duration::ZERO;
    let variant_count = scenario.model.variants.len();
    let equal_share = total_budget / u32::try_from(variant_count.max(1)).unwrap_or(u32::MAX);
    // Shared by the timing and the agreement check run inside it (the
    // callbacks take turns: neither holds it while the other runs).
    let progress = RefCell::new(progress);
    for (i, variant) in scenario.model.variants.iter().enumerate() {
        options.check_cancelled()?;
        // Each variant gets what is left over the variants left (a small one's
        // unused time goes to the next), and never less than its equal share,
        // so one that ran over does not starve the rest.
        let left = total_budget.saturating_sub(budget_used);
        let variants_left = u32::try_from(variant_count - i).unwrap_or(u32::MAX);
        measure_options.budget = (left / variants_left).max(equal_share);
        let graph =
            Graph::from_spec(&variant.spec, MODEL_SEED).map_err(|e| PipelineError::Model {
                variant: variant.name.clone(),
                message: e.to_string(),
            })?;
        let inputs = agreement_inputs(graph.flops_per_sample(), scenario);
        // A batch size whose call would not fit the memory limit is not
        // timed (validation refuses the search's own sizes that far over;
        // this catches the batch-job batch).
        let (batches, too_large) = batches_within_memory(variant, &batches, inputs);
        skipped.extend(too_large);
        if batches.is_empty() {
            continue;
        }
        let check = AgreementCheck {
            graph: &graph,
            inputs,
            batch: memory::agreement_batch(memory::activation_bytes_per_sample(&variant.spec)),
            cancel: options.cancel.as_deref(),
        };
        // The agreement check runs on the executables timed here (tiled f32
        // and quantized), so that the largest models are not compiled twice.
        let uncached: Vec<Precision> = scenario
            .search
            .precisions
            .iter()
            .copied()
            .filter(|&p| {
                p != Precision::F32 && cached_agreement(&graph, p, inputs, options).is_none()
            })
            .collect();
        let keep_outputs = !uncached.is_empty()
            && inputs.saturating_mul(graph.output_len()) <= memory::MAX_KEPT_OUTPUTS;
        let mut outputs: BTreeMap<(BackendKind, Precision), Vec<f32>> = BTreeMap::new();
        // What timing saw, for whether running the reference's outputs now
        // is worth it: (backend, precision) -> (ns per sample at its smallest
        // batch, compile time).
        let seen: RefCell<BTreeMap<(BackendKind, Precision), (f64, Duration)>> = RefCell::default();
        let mut keep = |backend: BackendKind,
                        precision: Precision,
                        exe: &mut dyn Executable|
         -> Result<(), measure::MeasureError> {
            let wanted = match backend {
                BackendKind::Tiled => precision == Precision::F32,
                BackendKind::Quantized => uncached.contains(&precision),
                _ => false,
            };
            if !(keep_outputs && wanted) {
                return Ok(());
            }
            // The reference's outputs only serve a candidate's: when running
            // them costs more than compiling the reference again, they wait
            // until a candidate's are kept (a large model's budget may
            // measure none: 16 inputs of a 168 GFLOP transformer had run for
            // three minutes for nothing).
            let candidate_kept = outputs.keys().any(|(b, _)| *b == BackendKind::Quantized);
            if backend == BackendKind::Tiled && !candidate_kept {
                let seen = seen.borrow().get(&(backend, precision)).copied();
                if let Some((per_sample_ns, compile)) = seen {
                    let run_ns = per_sample_ns * inputs as f64;
                    if run_ns.is_finite() && run_ns > compile.as_nanos() as f64 {
                        return Ok(());
                    }
                }
            }
            match check.outputs(exe, backend, precision, &mut |p| (progress.borrow_mut())(p)) {
                Ok(out) => {
                    outputs.insert((backend, precision), out);
                }
                Err(AgreementError::Cancelled) => return Err(measure::MeasureError::Cancelled),
                // The agreement is then computed the usual way, compiling again.
                Err(AgreementError::Kernel(_)) => {}
            }
            Ok(())
        };
        let outcome = measure::measure_model_with(
            &graph,
            &configs,
            &batches,
            &measure_options,
            &mut |p| {
                note_timing(&mut seen.borrow_mut(), &p);
                (progress.borrow_mut())(p)
            },
            &mut keep,
        )
        .map_err(|source| match source {
            measure::MeasureError::Cancelled => PipelineError::Cancelled,
            source => PipelineError::Measure {
                variant: variant.name.clone(),
                source,
            },
        })?;
        for s in &outcome.skipped {
            let at = if s.batches.is_empty() {
                String::new()
            } else {
                let list: Vec<String> = s.batches.iter().map(usize::to_string).collect();
                format!(" batch {}", list.join(", "))
            };
            skipped.push(format!(
                "{} {} {}{at}: {}",
                variant.name, s.backend, s.precision, s.reason
            ));
        }
        reduced.extend(outcome.measurements.iter().filter(|m| m.reduced).map(|m| {
            format!(
                "{} {} {} batch {} ({}, {} a call)",
                variant.name,
                m.backend,
                m.precision,
                m.batch,
                crate::report::format::count(m.stats.samples as u64, "sample"),
                measure::budget::duration(m.stats.median_ns)
            )
        }));
        budget_used += outcome.budget_used;
        timed += outcome
            .measurements
            .iter()
            .filter(|m| !m.from_cache)
            .count();
        // A reduced precision none of whose configurations was measured has no
        // plan to weigh its agreement against: the model is not compiled again for it.
        let measured_precisions: BTreeSet<Precision> =
            outcome.measurements.iter().map(|m| m.precision).collect();
        let agreement_needed: Vec<Precision> = scenario
            .search
            .precisions
            .iter()
            .copied()
            .filter(|p| *p == Precision::F32 || measured_precisions.contains(p))
            .collect();
        // The f32 reference's outputs, computed at most once for every
        // precision (kept while timing, or compiled again when first needed).
        let mut reference = outputs.remove(&(BackendKind::Tiled, Precision::F32));
        for &precision in &agreement_needed {
            options.check_cancelled()?;
            let candidate = outputs.get(&(BackendKind::Quantized, precision));
            let agreement = match precision_agreement(
                &check,
                precision,
                options,
                &mut reference,
                candidate.map(Vec::as_slice),
                &mut |p| (progress.borrow_mut())(p),
            ) {
                Ok(a) => a,
                Err(AgreementError::Cancelled) => return Err(PipelineError::Cancelled),
                Err(AgreementError::Kernel(e)) => {
                    skipped.push(format!("{} {precision} accuracy: {e}", variant.name));
                    continue;
                }
            };
            profiles
                .accuracy
                .insert((variant.name.clone(), precision), agreement);
            profiles
                .agreement_inputs
                .insert((variant.name.clone(), precision), inputs);
        }
        let local_name = format!("this machine ({})", hardware.cpu_brand);
        for &(backend, precision) in &configs {
            let mut ms: Vec<&measure::KernelMeasurement> = outcome
                .measurements
                .iter()
                .filter(|m| m.backend == backend && m.precision == precision)
                .collect();
            if ms.is_empty() {
                continue;
            }
            ms.sort_by_key(|m| m.batch);
            let held: Vec<(u32, u64)> = ms
                .iter()
                .filter_map(|m| Some((u32::try_from(m.batch).ok()?, m.activation_bytes?)))
                .collect();
            if !held.is_empty() {
                profiles
                    .activations
                    .insert((variant.name.clone(), backend, precision), held);
            }
            // One compile serves every batch of a build.
            if let Some(text) = ms.iter().rev().find_map(|m| m.program.clone()) {
                programs.push(report::CompiledProgram {
                    model_variant: variant.name.clone(),
                    backend,
                    precision,
                    text,
                });
            }
            let program = executed_program(&graph, backend, precision);
            for m in &ms {
                kernels.push(report::KernelMeasurement {
                    backend,
                    precision,
                    batch: m.batch as u32,
                    workload: variant.name.clone(),
                    median_ns: m.stats.median_ns,
                    p90_ns: m.stats.p90_ns,
                    p99_ns: m.stats.p99_ns,
                    gflops: m.gflops,
                    fraction_of_peak: m.fraction_of_peak.unwrap_or(0.0),
                    source: FigureSource::Measured,
                    target: local_name.clone(),
                    reduced: m.reduced,
                    high_variance: m.high_variance,
                    activation_bytes: m.activation_bytes,
                });
                if m.batch == 1 || Some(&m.batch) == batches.last() {
                    let label = report::kernel_label(
                        (scenario.model.variants.len() > 1).then_some(variant.name.as_str()),
                        backend.name(),
                        precision.name(),
                        m.batch as u32,
                    );
                    points.extend(measured_point(
                        label,
                        &program.costs(m.batch),
                        m.gflops,
                        precision,
                        &roofline,
                    ));
                }
            }
            for target in scenario.targets.cloud.iter().chain(&scenario.targets.edge) {
                let (profile, projected, breakdowns) = project_onto(
                    &graph,
                    &program,
                    &ms,
                    &roofline,
                    (backend, precision),
                    target,
                    &variant.name,
                );
                kernels.extend(projected);
                profiles.profiles.push(profile);
                projections.extend(breakdowns);
            }
        }
    }
    Ok(Measured {
        hardware,
        roofline,
        profiles,
        kernels,
        roofline_points: points,
        skipped,
        reduced,
        timed,
        projections,
        programs,
    })
}

/// A kernel measured here on this machine's roofline (`ops`: the costs of
/// what ran at its batch), with the working set of one call and the memory
/// level that holds it, whose roof the report holds it to. `None` when the
/// program moves no bytes (no intensity to place it at).
fn measured_point(
    label: String,
    ops: &[OpCost],
    achieved_gflops: f64,
    precision: Precision,
    roofline: &Roofline,
) -> Option<RooflinePoint> {
    let bytes: f64 = ops.iter().map(|c| c.bytes).sum();
    let flops: f64 = ops.iter().map(|c| c.flops).sum();
    if bytes <= 0.0 {
        return None;
    }
    let working_set = call_working_set_bytes(ops);
    Some(RooflinePoint {
        label,
        arithmetic_intensity: flops / bytes.max(1.0),
        achieved_gflops,
        source: FigureSource::Measured,
        precision,
        working_set_bytes: Some(working_set),
        memory_level: Some(roofline.level_for_footprint(working_set).to_string()),
    })
}

/// Refuses a scenario one of whose variants cannot be measured at all within
/// the budget: when even its fastest configuration's first call, estimated
/// from the spec (no weights are built) and this machine's roofline, would
/// take more than `max_overrun` times the variant's share of the budget.
fn refuse_over_budget(
    scenario: &Scenario,
    options: &PipelineOptions,
    measure_options: &MeasureOptions,
    configs: &[(BackendKind, Precision)],
    total_budget: std::time::Duration,
) -> Result<(), PipelineError> {
    let variant_count = scenario.model.variants.len().max(1);
    let share = total_budget / u32::try_from(variant_count).unwrap_or(u32::MAX);
    let overrun = measure_options.harness.max_overrun.max(1.0);
    let allowed_ns = share.as_nanos() as f64 * overrun;
    for variant in &scenario.model.variants {
        let counts = variant.counts();
        let mut subject = measure::MeasureSubject {
            hardware_fingerprint: measure_options
                .hardware_fingerprint
                .clone()
                .unwrap_or_default(),
            graph_fingerprint: 0,
            workload: variant.name.clone(),
            flops_per_sample: counts.flops_per_sample,
            weight_bytes: counts.weight_bytes(Precision::F32) as f64,
            roofline: measure_options.roofline.clone(),
            rates: None,
            compile_rates: None,
        };
        if configs.iter().all(|&(b, _)| measure::budget::per_sample(b))
            && measure::budget::rates_needed(&subject, 1, 1.0, allowed_ns)
        {
            subject.rates = Some(
                measure::budget::probe_rates(
                    &options.cache_dir,
                    &subject.hardware_fingerprint,
                    options.fresh,
                )
                .map_err(|source| PipelineError::Measure {
                    variant: variant.name.clone(),
                    source,
                })?,
            );
        }
        let fastest = configs
            .iter()
            .filter_map(|&(b, p)| measure::budget::first_call(&subject, b, p, 1).map(|e| (b, p, e)))
            .min_by(|a, b| a.2.call_ns.total_cmp(&b.2.call_ns));
        let Some((backend, precision, estimate)) = fastest else {
            continue;
        };
        if estimate.call_ns <= allowed_ns {
            continue;
        }
        let scenario_budget = scenario.search.measurement_budget_s;
        // The budget at which the variant's share lets one call fit.
        let needed_s = (estimate.call_ns / 1e9 / overrun * variant_count as f64).ceil();
        let most_s = MeasureOptions::standard().budget.as_secs_f64();
        let advice = if needed_s > most_s {
            format!(
                "Use a smaller model: it would need a measurement budget of {needed_s} s, and a run measures for at most {most_s} s"
            )
        } else if options.quick && needed_s > measure_options.budget.as_secs_f64() {
            format!(
                "Use a smaller model, or raise search.measurement_budget_s to at least {needed_s} s and run without --quick (which caps it at {} s)",
                measure_options.budget.as_secs_f64()
            )
        } else {
            format!(
                "Use a smaller model, or raise search.measurement_budget_s to at least {needed_s} s"
            )
        };
        return Err(PipelineError::OverBudget {
            variant: variant.name.clone(),
            message: format!(
                "it needs {} FLOPs per sample ({} parameters), and one call at batch 1 takes at least {} on this machine even with its fastest configuration ({backend} {precision}: {}), more than {overrun}x its {} of the measurement budget (search.measurement_budget_s = {scenario_budget} s over {variant_count} variant(s)). {advice}",
                measure::budget::count(counts.flops_per_sample),
                measure::budget::count(counts.params as f64),
                measure::budget::duration(estimate.call_ns),
                estimate.basis,
                measure::budget::duration(share.as_nanos() as f64),
            ),
        });
    }
    Ok(())
}

/// Cache file of `precision`'s agreement with f32 for `graph` on `inputs` inputs.
fn agreement_path(
    graph: &Graph,
    precision: Precision,
    inputs: usize,
    options: &PipelineOptions,
) -> PathBuf {
    options.cache_dir.join("accuracy").join(format!(
        "{:016x}-{precision}-seed{MODEL_SEED}-n{inputs}.json",
        graph.fingerprint()
    ))
}

/// The cached agreement, unless the run is fresh (or the entry is not a
/// fraction: a corrupted file is computed again).
fn cached_agreement(
    graph: &Graph,
    precision: Precision,
    inputs: usize,
    options: &PipelineOptions,
) -> Option<f64> {
    if options.fresh {
        return None;
    }
    measure::cache::read_json::<f64>(&agreement_path(graph, precision, inputs, options))
        .filter(|a| (0.0..=1.0).contains(a))
}

/// Why the agreement check stopped.
#[derive(Debug)]
enum AgreementError {
    /// The run was asked to stop (between two calls of the model).
    Cancelled,
    /// Compiling or running the model failed (the precision is listed as not checked).
    Kernel(KernelError),
}

impl From<KernelError> for AgreementError {
    fn from(e: KernelError) -> Self {
        AgreementError::Kernel(e)
    }
}

/// The agreement check of one variant: its seeded inputs, run through the
/// model `batch` at a time ([`memory::agreement_batch`]: a large model's
/// activations for 16 samples had taken 14 GB), stopping between calls when
/// the run is cancelled.
struct AgreementCheck<'a> {
    graph: &'a Graph,
    inputs: usize,
    batch: usize,
    cancel: Option<&'a AtomicBool>,
}

impl AgreementCheck<'_> {
    /// Outputs of `exe` (`backend` at `precision`) on the check's seeded
    /// inputs, telling `progress` before each call.
    fn outputs(
        &self,
        exe: &mut dyn Executable,
        backend: BackendKind,
        precision: Precision,
        progress: &mut dyn FnMut(MeasureProgress),
    ) -> Result<Vec<f32>, AgreementError> {
        let mut out = Vec::with_capacity(self.inputs.saturating_mul(self.graph.output_len()));
        self.run(&mut [(backend, precision, exe)], progress, &mut |_, o| {
            out.extend_from_slice(o);
        })?;
        Ok(out)
    }

    /// Runs every executable of `exes` on each batch of the seeded inputs in
    /// turn, handing `each` the executable's index and its outputs.
    fn run(
        &self,
        exes: &mut [(BackendKind, Precision, &mut dyn Executable)],
        progress: &mut dyn FnMut(MeasureProgress),
        each: &mut dyn FnMut(usize, &[f32]),
    ) -> Result<(), AgreementError> {
        let len = self.graph.input_len();
        let inputs = seeded_inputs(len, self.inputs, MODEL_SEED);
        let batch = self.batch.max(1);
        let mut s0 = 0;
        while s0 < self.inputs {
            let b = (self.inputs - s0).min(batch);
            for (i, (backend, precision, exe)) in exes.iter_mut().enumerate() {
                if measure::cancel_requested(self.cancel) {
                    return Err(AgreementError::Cancelled);
                }
                progress(MeasureProgress::Checking {
                    backend: *backend,
                    precision: *precision,
                    done: s0,
                    total: self.inputs,
                });
                each(i, exe.run(&inputs[s0 * len..(s0 + b) * len], b)?);
            }
            s0 += b;
        }
        Ok(())
    }

    /// Compiles `graph` for `backend` at `precision` as the kernels'
    /// agreement check does (default options).
    fn compile(
        &self,
        backend: BackendKind,
        precision: Precision,
    ) -> Result<Box<dyn Executable>, AgreementError> {
        if measure::cancel_requested(self.cancel) {
            return Err(AgreementError::Cancelled);
        }
        let opts = CompileOptions {
            precision,
            ..CompileOptions::default()
        };
        Ok(compile(self.graph, backend, &opts)?)
    }

    /// The reference's (tiled f32) outputs, compiled for them alone.
    fn reference_outputs(
        &self,
        progress: &mut dyn FnMut(MeasureProgress),
    ) -> Result<Vec<f32>, AgreementError> {
        let mut exe = self.compile(BackendKind::Tiled, Precision::F32)?;
        self.outputs(exe.as_mut(), BackendKind::Tiled, Precision::F32, progress)
    }

    /// The agreement of `precision` with the reference with both compiled at
    /// once and their outputs compared batch by batch: for outputs too large
    /// to keep whole ([`memory::MAX_KEPT_OUTPUTS`]).
    fn streamed(
        &self,
        precision: Precision,
        progress: &mut dyn FnMut(MeasureProgress),
    ) -> Result<f64, AgreementError> {
        let mut reference = self.compile(BackendKind::Tiled, Precision::F32)?;
        let mut candidate = self.compile(BackendKind::Quantized, precision)?;
        let mut tally = AgreementTally::default();
        let mut want = Vec::new();
        self.run(
            &mut [
                (BackendKind::Tiled, Precision::F32, reference.as_mut()),
                (BackendKind::Quantized, precision, candidate.as_mut()),
            ],
            progress,
            &mut |i, out| {
                if i == 0 {
                    want.clear();
                    want.extend_from_slice(out);
                } else {
                    tally.add(self.graph, &want, out);
                }
            },
        )?;
        Ok(tally.value(self.graph))
    }
}

/// Agreement of `precision` with the f32 reference on the check's seeded
/// inputs (top-1 for classifiers, 1 - relative error otherwise).
/// Deterministic for a graph, so it is cached beside the measurements and
/// re-planning does not recompute it. `reference` holds the reference's
/// outputs once computed (kept from timing, or computed here for the first
/// precision that needs them, for the next); `candidate` the candidate's
/// when the executable timed here produced them: then it is not compiled again.
fn precision_agreement(
    check: &AgreementCheck<'_>,
    precision: Precision,
    options: &PipelineOptions,
    reference: &mut Option<Vec<f32>>,
    candidate: Option<&[f32]>,
    progress: &mut dyn FnMut(MeasureProgress),
) -> Result<f64, AgreementError> {
    if precision == Precision::F32 {
        return Ok(1.0);
    }
    let (graph, inputs) = (check.graph, check.inputs);
    if let Some(cached) = cached_agreement(graph, precision, inputs, options) {
        return Ok(cached);
    }
    let agreement = if inputs.saturating_mul(graph.output_len()) > memory::MAX_KEPT_OUTPUTS {
        check.streamed(precision, progress)?
    } else {
        let want = match reference {
            Some(want) => want,
            None => reference.insert(check.reference_outputs(progress)?),
        };
        match candidate {
            Some(got) => agreement_of(graph, want, got),
            None => {
                // One executable at a time: the reference's is dropped already.
                let mut exe = check.compile(BackendKind::Quantized, precision)?;
                let got =
                    check.outputs(exe.as_mut(), BackendKind::Quantized, precision, progress)?;
                agreement_of(graph, want, &got)
            }
        }
    };
    // A cache that cannot be written only costs the next run the same work.
    let _ = measure::cache::write_json_atomic(
        &agreement_path(graph, precision, inputs, options),
        &agreement,
    );
    Ok(agreement)
}

/// Records, from the timing's progress, each configuration's time per
/// sample at its smallest batch and its compile time (for whether running
/// the agreement check's reference now is worth it).
fn note_timing(
    seen: &mut BTreeMap<(BackendKind, Precision), (f64, Duration)>,
    progress: &MeasureProgress,
) {
    const UNSEEN: (f64, Duration) = (f64::INFINITY, Duration::ZERO);
    match *progress {
        MeasureProgress::Compiled {
            backend,
            precision,
            elapsed,
        } => {
            seen.entry((backend, precision)).or_insert(UNSEEN).1 = elapsed;
        }
        MeasureProgress::Finished {
            backend,
            precision,
            batch,
            median_ns,
            ..
        } => {
            let entry = seen.entry((backend, precision)).or_insert(UNSEEN);
            entry.0 = entry.0.min(median_ns / batch.max(1) as f64);
        }
        _ => {}
    }
}

/// The batch sizes of `batches` whose measuring fits
/// [`crate::scenario::MAX_MEASURE_BYTES`] ([`memory::measuring_memory`]),
/// and a line for each one that does not.
fn batches_within_memory(
    variant: &crate::scenario::ModelVariant,
    batches: &[usize],
    agreement_inputs: usize,
) -> (Vec<usize>, Vec<String>) {
    let limit = crate::scenario::MAX_MEASURE_BYTES as f64;
    let params = variant.counts().params;
    let mut fit = Vec::new();
    let mut refused = Vec::new();
    for &batch in batches {
        let need = memory::measuring_memory(&variant.spec, params, batch, agreement_inputs);
        if need.total() <= limit {
            fit.push(batch);
        } else {
            refused.push(format!(
                "{} batch {batch}: not measured: it would hold {} ({} of activations at batch {batch} besides {} of weights), more than the {} a measurement may take",
                variant.name,
                crate::scenario::format_bytes(need.total()),
                crate::scenario::format_bytes(need.activations),
                crate::scenario::format_bytes(need.weights),
                crate::scenario::format_bytes(limit),
            ));
        }
    }
    (fit, refused)
}

/// Sums behind an agreement figure, added to batch by batch in the order
/// [`accuracy::agreement`](workbench_kernels::accuracy::agreement) adds them.
#[derive(Debug, Default)]
struct AgreementTally {
    diff: f64,
    norm: f64,
    agree: usize,
    count: usize,
}

impl AgreementTally {
    fn add(&mut self, graph: &Graph, want: &[f32], got: &[f32]) {
        for (g, w) in got.iter().zip(want) {
            self.diff += f64::from(g - w).powi(2);
            self.norm += f64::from(*w).powi(2);
        }
        let argmax = |v: &[f32]| {
            v.iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, _)| i)
        };
        let out_len = graph.output_len().max(1);
        self.agree += got
            .chunks(out_len)
            .zip(want.chunks(out_len))
            .filter(|(g, w)| argmax(g) == argmax(w))
            .count();
        self.count += want.len() / out_len;
    }

    fn value(&self, graph: &Graph) -> f64 {
        let rel_error = if self.norm > 0.0 {
            (self.diff / self.norm).sqrt()
        } else {
            self.diff.sqrt()
        };
        if graph.is_classifier() {
            self.agree as f64 / self.count.max(1) as f64
        } else {
            1.0 - rel_error.min(1.0)
        }
    }
}

/// The agreement of `got` with `want` (outputs of [`AgreementCheck::outputs`]), as
/// [`accuracy::agreement`](workbench_kernels::accuracy::agreement) computes it.
fn agreement_of(graph: &Graph, want: &[f32], got: &[f32]) -> f64 {
    let mut tally = AgreementTally::default();
    tally.add(graph, want, got);
    tally.value(graph)
}

/// Latency by batch size of one configuration on one target, and the report rows.
fn project_onto(
    graph: &Graph,
    program: &ExecutedProgram,
    measured: &[&measure::KernelMeasurement],
    roofline: &Roofline,
    (backend, precision): (BackendKind, Precision),
    target: &Target,
    variant: &str,
) -> (
    ComputeProfile,
    Vec<report::KernelMeasurement>,
    Vec<ProjectionRecord>,
) {
    let spec = &target.spec;
    // One input's activations: what this build held when timed at its
    // smallest batch (sorted), else what the graph holds live at once.
    let activations = measured
        .first()
        .and_then(|m| m.activation_bytes)
        .unwrap_or_else(|| graph.peak_activation_bytes(1));
    // A speed factor stands in for the peak figures (docs/scenarios.md): a
    // target given one needs none.
    let infeasible = check_feasible(graph.weight_bytes(precision), activations, precision, spec)
        .err()
        .filter(|e| {
            !(target.speed_factor.is_some() && matches!(e, Infeasible::MissingFigures { .. }))
        });
    let mut points = Vec::new();
    let mut rows = Vec::new();
    let mut breakdowns = Vec::new();
    for m in measured {
        let median = m.stats.median_ns;
        // Both tails from the same fit, so the projected p90 never passes the p99.
        let (p90_spread, spread) = (m.stats.planning_p90_spread(), m.stats.planning_p99_spread());
        let projected_ns = match target.speed_factor {
            Some(f) if f > 0.0 => Some(median / f),
            _ => project_latency(
                &program.costs(m.batch),
                median,
                Provenance::Measured,
                m.batch,
                roofline,
                precision,
                spec,
            )
            .ok()
            .map(|p| {
                let ns = p.latency_ns;
                breakdowns.push(ProjectionRecord {
                    variant: variant.to_string(),
                    backend,
                    target_cores: spec.cores,
                    latency: p,
                });
                ns
            }),
        };
        let Some(ns) = projected_ns else {
            continue;
        };
        points.push(ProfilePoint {
            batch_size: m.batch as u32,
            median_s: ns / 1e9,
            p99_s: ns * spread / 1e9,
        });
        let flops = graph.flops_per_sample() * m.batch as f64;
        let peak = match precision {
            Precision::Int8 if spec.peak_gops_int8 > 0.0 => spec.peak_gops_int8,
            _ => spec.peak_gflops_f32,
        };
        let gflops = if ns > 0.0 { flops / ns } else { 0.0 };
        rows.push(report::KernelMeasurement {
            backend,
            precision,
            batch: m.batch as u32,
            workload: variant.to_string(),
            median_ns: ns,
            p90_ns: ns * p90_spread,
            p99_ns: ns * spread,
            gflops,
            fraction_of_peak: if peak > 0.0 { gflops / peak } else { 0.0 },
            source: FigureSource::Projected,
            target: spec.name.clone(),
            reduced: m.reduced,
            high_variance: m.high_variance,
            activation_bytes: m.activation_bytes,
        });
    }
    ComputeProfile::never_slower_than_a_larger_batch(&mut points);
    let infeasible = infeasible.or_else(|| {
        points.is_empty().then(|| Infeasible::NoProjection {
            target: spec.name.clone(),
        })
    });
    (
        ComputeProfile {
            variant: variant.to_string(),
            backend,
            precision,
            target: spec.name.clone(),
            source: FigureSource::Projected,
            points,
            infeasible,
        },
        rows,
        breakdowns,
    )
}

/// The projection behind `plan`'s compute time: its variant, backend and
/// precision on its target, at the measured batch closest to its own (the
/// largest not above it, else the smallest). `None` for plans whose compute
/// was not projected by the roofline (measured here, a speed factor, hybrids).
pub fn projection_breakdown(
    plan: &report::Plan,
    projections: &[ProjectionRecord],
) -> Option<report::ProjectionBreakdown> {
    let batch = plan.max_batch.max(1) as usize;
    let record_on = |target: &str| {
        let same_config = |r: &&ProjectionRecord| {
            r.variant == plan.model_variant
                && r.backend == plan.backend
                && r.latency.precision == plan.precision
                && r.latency.target == target
        };
        projections
            .iter()
            .filter(same_config)
            .filter(|r| r.latency.batch <= batch)
            .max_by_key(|r| r.latency.batch)
            .or_else(|| {
                projections
                    .iter()
                    .filter(same_config)
                    .min_by_key(|r| r.latency.batch)
            })
    };
    // A fleet ("phone-a&phone-b") or an edge model with a cloud fallback
    // ("phone + cloud-instance") names several targets: the breakdown is of
    // the first that runs the plan's build.
    let record = std::iter::once(plan.target.as_str())
        .chain(plan.target.split(['&', '+']).map(str::trim))
        .find_map(record_on)?;
    let p = &record.latency;
    Some(report::ProjectionBreakdown {
        target: p.target.clone(),
        model_variant: record.variant.clone(),
        backend: record.backend,
        precision: p.precision,
        batch: u32::try_from(p.batch).unwrap_or(u32::MAX),
        measured_ns: p.measured_ns,
        projected_ns: p.latency_ns,
        target_cores: record.target_cores,
        ops: p
            .ops
            .iter()
            .map(|o| report::ProjectedOp {
                name: o.name.clone(),
                kind: o.kind.clone(),
                local_ns: o.local_ns,
                projected_ns: o.projected_ns,
                cores_used: o.cores_used,
                in_target_cache: o.in_target_cache,
                weights_in_target_cache: o.weights_in_target_cache,
            })
            .collect(),
    })
}

/// This machine's roofline with the measured kernels on it, as reports show it.
pub fn roofline_report(measured: &Measured) -> report::Roofline {
    let r = &measured.roofline;
    report::Roofline {
        machine: measured.hardware.cpu_brand.clone(),
        peak_gflops: r.peak_gflops_f32,
        peak_gops_int8: Some(r.peak_gops_int8),
        bandwidths: r
            .bandwidth
            .iter()
            // The copy figure, as the projection uses it (read + write, as
            // a kernel's bytes moved count them); the read figure had shown
            // a roof the projection never used.
            .map(|b| BandwidthRoof {
                name: b.level.clone(),
                gb_per_s: b.copy_gbs,
            })
            .collect(),
        points: measured.roofline_points.clone(),
    }
}

/// Plan options for a run.
pub fn plan_options(scenario: &Scenario, options: &PipelineOptions) -> PlanOptions {
    let seed = seed_for(scenario, options);
    if options.quick {
        PlanOptions::quick(seed)
    } else {
        PlanOptions::standard(seed)
    }
}

/// The assumptions' traffic line: the rates (every digit a low rate needs),
/// and for a trace how it is replayed and measured.
fn traffic_note(scenario: &Scenario, options: &PlanOptions) -> String {
    use crate::report::format::{rps, thousands};
    use crate::scenario::{ArrivalProcess, Traffic, TRACE_PEAK_WINDOW_S};
    let t = &scenario.traffic;
    match &t.process {
        ArrivalProcess::Trace { timestamps_s, .. } => {
            let n = timestamps_s.len();
            let warm = Traffic::trace_warmup_arrivals(n);
            let measured = (n - warm) as u64;
            let q = scenario.objectives.latency_percentile;
            let needed = plan::evaluate::requests_for_percentile(q).unwrap_or(u64::MAX);
            let most = options.final_requests.max(options.screening_requests);
            let replay = if n as u64 > most {
                format!("a plan replays at most its first {} arrivals (the requests a plan is simulated with)", thousands(most as f64))
            } else if measured >= needed {
                "every arrival is replayed once".to_string()
            } else {
                format!(
                        "{} needs {} measured requests, more than the trace's {} measured arrivals: it is replayed in laps back to back, its arrival times repeated with fresh service and network draws (the percentile is this trace's, not a longer sample's)",
                        plan::evaluate::percentile_name(q),
                        thousands(needed as f64),
                        thousands(measured as f64)
                    )
            };
            format!(
                    "traffic: trace of {} arrivals over {} s, replayed from its first arrival (any time before it is not simulated): {} mean, {} peak (the most arrivals in any {TRACE_PEAK_WINDOW_S} s); {replay}; the first {}% of the arrivals replayed ({} of one pass) warm the empty system up and are not measured (arrivals at the same instant as the last of them are)",
                    thousands(n as f64),
                    thousands(t.duration_s.round()),
                    rps(t.rate_per_s),
                    rps(t.peak_rate_per_s()),
                    crate::scenario::limits::WARMUP_FRACTION * 100.0,
                    thousands(warm as f64)
                )
        }
        _ => format!(
            "traffic: {} at {} mean ({} peak)",
            t.process.name(),
            rps(t.rate_per_s),
            rps(t.peak_rate_per_s())
        ),
    }
}

/// The broker's prices as the plans used them, and where they came from.
fn broker_price_note(scenario: &Scenario) -> String {
    let prices = plan::evaluate::broker_prices(scenario);
    let source = match (prices.per_month_stated, prices.per_gb_stated) {
        (true, true) => "(scenario)",
        (false, false) => "(assumption: a small managed Kafka cluster; the broker's `usd_per_month` and `usd_per_gb` set them)",
        _ => "(the one stated by the scenario, the other assumed)",
    };
    format!(
        "broker ${}/month plus ${}/GB through it, a request's and its answer's bytes for each pair of hops {source}",
        prices.per_month, prices.per_gb
    )
}

/// Plan from measurements and assemble the report (pure: no timing, no I/O).
pub fn plan_scenario(
    scenario: &Scenario,
    measured: &Measured,
    what_if: &WhatIf,
    options: &PlanOptions,
    generated_at: &str,
) -> Report {
    let outcome = plan::plan(scenario, &measured.profiles, what_if, options);
    report_of(scenario, measured, what_if, options, generated_at, outcome)
}

/// [`plan_scenario`], given up soon after `cancel` is set: `None` then.
pub fn plan_scenario_cancellable(
    scenario: &Scenario,
    measured: &Measured,
    what_if: &WhatIf,
    options: &PlanOptions,
    generated_at: &str,
    cancel: &AtomicBool,
) -> Option<Report> {
    let outcome = plan::plan_cancellable(scenario, &measured.profiles, what_if, options, cancel)?;
    Some(report_of(
        scenario,
        measured,
        what_if,
        options,
        generated_at,
        outcome,
    ))
}

/// The compiled programs of the builds `plan` runs: its own, each device
/// class's, its fallback's (each once, in that order).
fn plan_programs(
    plan: &report::Plan,
    programs: &[report::CompiledProgram],
) -> Vec<report::CompiledProgram> {
    let builds = std::iter::once((plan.model_variant.as_str(), plan.backend, plan.precision))
        .chain(plan.device_classes.iter().filter_map(|class| {
            let b = class.build.as_ref()?;
            Some((b.model_variant.as_str(), b.backend, b.precision))
        }))
        .chain(
            plan.fallback
                .iter()
                .map(|f| (f.model_variant.as_str(), f.backend, f.precision)),
        );
    let mut out: Vec<report::CompiledProgram> = Vec::new();
    for (variant, backend, precision) in builds {
        if out.iter().any(|p| p.is_build(variant, backend, precision)) {
            continue;
        }
        if let Some(p) = programs
            .iter()
            .find(|p| p.is_build(variant, backend, precision))
        {
            out.push(p.clone());
        }
    }
    out
}

/// The report of a plan's outcome.
fn report_of(
    scenario: &Scenario,
    measured: &Measured,
    what_if: &WhatIf,
    options: &PlanOptions,
    generated_at: &str,
    outcome: plan::PlanOutcome,
) -> Report {
    // What the plans were made for: the notes state the traffic and serving
    // figures with the what-if applied (a report of traffic x3 had stated the
    // scenario's own rate).
    let planned_for = what_if.apply(scenario);
    let recommended = outcome.recommended().map(|e| e.plan.clone());
    let skip = usize::from(recommended.is_some());
    let alternatives = outcome
        .evaluations
        .iter()
        .skip(skip)
        .map(|e| Alternative {
            plan: e.plan.clone(),
            rejected_because: e.reason(),
        })
        .collect();
    // The top feasible plans; when none is feasible, the closest simulated
    // ones (ranking order), so the report shows how far they are from the SLO.
    let any_feasible_cdf = outcome
        .evaluations
        .iter()
        .any(|e| e.feasible() && !e.cdf.is_empty());
    let latency_cdfs = outcome
        .evaluations
        .iter()
        .filter(|e| !e.cdf.is_empty() && (e.feasible() || !any_feasible_cdf))
        .take(3)
        .map(|e| LatencyCdf {
            plan_id: e.plan.id.clone(),
            points: e.cdf.clone(),
        })
        .collect();
    let mut notes = vec![
        traffic_note(&planned_for, options),
        "targets are projected from single-core measurements to the whole machine's published peak: an op is split over every core when that saves more than the target's fork and join (parallel_overhead_us, default 5 us) and otherwise runs on one physical core; an op reads its weights at cache speed when the whole model's weights fit the target's cache, its activations when they fit, and otherwise from the target's memory".to_string(),
        format!(
            "prices: instance list prices from the scenario or catalog; egress ${}/GB; {}; energy ${}/kWh{}",
            plan::evaluate::EGRESS_USD_PER_GB,
            broker_price_note(&planned_for),
            plan::evaluate::ENERGY_USD_PER_KWH,
            if planned_for.targets.storage.is_some() {
                "; the prediction store is priced by the GB-month stored, its reads not (a batch plan's lookups cost nothing more)"
            } else {
                ""
            }
        ),
        "edge fleets are simulated as a sample of devices, each at its real per-device request rate".to_string(),
        format!(
            "an edge model with cloud fallback is assumed to defer its least confident inputs: the first inputs it defers are {:.0}% ones it would have got wrong, later ones fewer, so that only deferring every input catches every error",
            plan::search::DEFERRAL_PRECISION * 100.0
        ),
        "latency SLOs count failed requests (timeouts, offline) as slower than any SLO".to_string(),
    ];
    notes.extend(plan::search::serving_notes(&planned_for));
    notes.extend(
        what_if
            .changes()
            .into_iter()
            .map(|w| format!("what-if: {w}")),
    );
    notes.extend(
        measured
            .skipped
            .iter()
            .map(|s| format!("not measured: {s}")),
    );
    if !measured.reduced.is_empty() {
        notes.push(format!(
            "measured with fewer samples than usual, one call being slow for the measurement budget (treat these figures with care): {}",
            measured.reduced.join("; ")
        ));
    }
    let projection = recommended
        .as_ref()
        .and_then(|plan| projection_breakdown(plan, &measured.projections));
    let programs = recommended
        .as_ref()
        .map(|plan| plan_programs(plan, &measured.programs))
        .unwrap_or_default();
    Report {
        scenario: scenario.name.clone(),
        description: scenario.description.clone(),
        feasible: outcome.feasible,
        recommended,
        alternatives,
        rationale: outcome.rationale,
        constraints: outcome.constraints,
        sensitivity: outcome.sensitivity,
        kernels: measured.kernels.clone(),
        roofline: roofline_report(measured),
        latency_cdfs,
        baseline: None,
        projection,
        slo: Some(report::LatencySlo {
            percentile: planned_for.objectives.latency_percentile,
            latency_ms: planned_for.objectives.latency_ms,
        }),
        predictions_per_request: Some(planned_for.inputs.predictions_per_request),
        programs,
        assumptions: Assumptions {
            hardware_fingerprint: measured.hardware.fingerprint.clone(),
            cpu: measured.hardware.cpu_brand.clone(),
            seed: options.seed,
            quick: options.is_quick(),
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            measured: vec![
                "kernel latency of every model variant x backend x precision x batch size, single thread, on this machine".to_string(),
                format!(
                    "agreement of reduced precisions with f32 on {} seeded inputs (fewer for a model too large for its measurement budget: the rationale says how many) of the model with its seeded synthetic weights (top-1 for classifiers, else 1 - relative error): how much precision changes this model's answers, not its accuracy on real data",
                    plan::evaluate::AGREEMENT_INPUTS
                ),
                "this machine's roofline (peak FLOP/s and bandwidth probes)".to_string(),
            ],
            projected: vec![
                "latency on every cloud instance and edge device, from the local measurements by the roofline model".to_string(),
                "end-to-end latency, throughput and cost of every plan, by the seeded discrete-event simulator".to_string(),
            ],
            notes,
            generated_at: generated_at.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The agreement computed from the timed executables' outputs, from
    /// executables compiled one at a time, or from both streamed batch by
    /// batch, is the kernels' own figure, for classifiers (top-1) and a
    /// regressor (1 - error), whatever batch the inputs run in.
    #[test]
    fn agreement_from_reused_executables_equals_the_kernels_agreement() {
        use workbench_kernels::{
            accuracy, compile, Activation, CompileOptions, MlpSpec, ModelSpec, TransformerSpec,
        };
        let mlp = |output| {
            ModelSpec::Mlp(MlpSpec {
                input: 24,
                hidden: vec![40],
                output,
                activation: Activation::Relu,
            })
        };
        let regressor = ModelSpec::Transformer(TransformerSpec {
            seq_len: 4,
            d_model: 8,
            heads: 2,
            ffn: 16,
            layers: 1,
            classes: 0,
        });
        let dir = std::env::temp_dir().join(format!("workbench-agreement-{}", std::process::id()));
        let options = PipelineOptions {
            fresh: true,
            cache_dir: dir.clone(),
            ..PipelineOptions::default()
        };
        for spec in [mlp(2), mlp(7), regressor] {
            let graph = Graph::from_spec(&spec, MODEL_SEED).unwrap();
            let opts = |precision| CompileOptions {
                precision,
                threads: 1,
                ..CompileOptions::default()
            };
            let count = plan::evaluate::AGREEMENT_INPUTS;
            for batch in [16, 5] {
                let check = AgreementCheck {
                    graph: &graph,
                    inputs: count,
                    batch,
                    cancel: None,
                };
                let mut tiled = compile(&graph, BackendKind::Tiled, &opts(Precision::F32)).unwrap();
                let want = check
                    .outputs(
                        tiled.as_mut(),
                        BackendKind::Tiled,
                        Precision::F32,
                        &mut |_| {},
                    )
                    .unwrap();
                for precision in [Precision::Int8, Precision::F16, Precision::Bf16] {
                    let mut q = compile(&graph, BackendKind::Quantized, &opts(precision)).unwrap();
                    let got = check
                        .outputs(q.as_mut(), BackendKind::Quantized, precision, &mut |_| {})
                        .unwrap();
                    let a = accuracy::agreement(&graph, precision, MODEL_SEED, count).unwrap();
                    let expected = a.top1.unwrap_or(1.0 - a.rel_error.min(1.0));
                    let what = format!("{} at {precision}, batch {batch}", graph.name());
                    let close = |x: f64| (x - expected).abs() <= 1e-6;
                    assert!(close(agreement_of(&graph, &want, &got)), "reused: {what}");
                    let mut reference = None;
                    let compiled = precision_agreement(
                        &check,
                        precision,
                        &options,
                        &mut reference,
                        None,
                        &mut |_| {},
                    )
                    .unwrap();
                    assert!(
                        close(compiled),
                        "compiled again: {compiled} vs {expected}, {what}"
                    );
                    let streamed = check.streamed(precision, &mut |_| {}).unwrap();
                    assert!(
                        close(streamed),
                        "streamed: {streamed} vs {expected}, {what}"
                    );
                }
            }
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    /// The agreement check stops between two calls of the model once the
    /// run is cancelled, not after all its inputs (a large model's 16 inputs
    /// had run for minutes after Esc).
    #[test]
    fn the_agreement_check_stops_at_the_next_call_once_cancelled() {
        use workbench_kernels::{Activation, MlpSpec, ModelSpec};
        let spec = ModelSpec::Mlp(MlpSpec {
            input: 24,
            hidden: vec![40],
            output: 4,
            activation: Activation::Relu,
        });
        let graph = Graph::from_spec(&spec, MODEL_SEED).unwrap();
        let cancel = AtomicBool::new(false);
        let check = AgreementCheck {
            graph: &graph,
            inputs: 64,
            batch: 1,
            cancel: Some(&cancel),
        };
        let mut exe = compile(&graph, BackendKind::Tiled, &CompileOptions::default()).unwrap();
        let mut calls = 0;
        let result = check.outputs(exe.as_mut(), BackendKind::Tiled, Precision::F32, &mut |p| {
            if let MeasureProgress::Checking { done, total, .. } = p {
                assert_eq!(total, 64);
                assert_eq!(done, calls);
                calls += 1;
                // Esc during the third call.
                if calls == 3 {
                    cancel.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
        assert!(
            matches!(result, Err(AgreementError::Cancelled)),
            "{result:?}"
        );
        assert_eq!(calls, 3);
    }

    /// A batch size whose measuring would hold more than the memory limit is
    /// not timed, and says so; the others are.
    #[test]
    fn a_batch_over_the_memory_limit_is_not_measured() {
        use workbench_kernels::{ModelSpec, TransformerSpec};
        // an-heavy-model's transformer: 0.86 GB of activations a sample.
        let variant = crate::scenario::ModelVariant {
            name: "big".to_string(),
            spec: ModelSpec::Transformer(TransformerSpec {
                seq_len: 512,
                d_model: 1024,
                heads: 16,
                ffn: 4096,
                layers: 12,
                classes: 256,
            }),
            accuracy: None,
            fallback_fraction: None,
        };
        let (fit, refused) = batches_within_memory(&variant, &[1, 4, 64], 16);
        assert_eq!(fit, vec![1, 4]);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(
            refused[0].contains("batch 64: not measured"),
            "{}",
            refused[0]
        );
        assert!(
            refused[0].contains("of activations at batch 64"),
            "{}",
            refused[0]
        );
    }

    /// The agreement check runs on every input the budget affords, in
    /// multiples of 16, at least 16 and at most AGREEMENT_INPUTS.
    #[test]
    fn the_agreement_check_fits_the_measurement_budget() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/face-unlock.toml");
        let mut s = crate::scenario::load(&path).unwrap();
        s.search.measurement_budget_s = 10.0;
        let variants = s.model.variants.len() as f64;
        // FLOPs of a model whose reference and candidate, at the nominal
        // rate, take half the variant's budget share on `inputs` inputs.
        let flops_for =
            |inputs: f64| 0.5 * 10.0 / variants / inputs * AGREEMENT_NOMINAL_FLOPS_PER_S / 2.0;
        let most = plan::evaluate::AGREEMENT_INPUTS;
        assert_eq!(agreement_inputs(flops_for(1000.0), &s), most);
        assert_eq!(agreement_inputs(0.0, &s), most);
        assert_eq!(agreement_inputs(flops_for(100.0), &s), 96);
        assert_eq!(agreement_inputs(flops_for(3.0), &s), 16);
    }

    /// The batch-job batch is measured only where a batch job could run.
    #[test]
    fn the_batch_job_batch_is_measured_only_for_inputs_that_can_be_precomputed() {
        let load = |name: &str| {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("scenarios")
                .join(format!("{name}.toml"));
            crate::scenario::load(&path).unwrap()
        };
        // Finite inputs refreshed nightly: a batch job can precompute them.
        let mut s = load("hotel-ranking");
        s.search.modes = vec![Mode::OnlineHttp, Mode::Batch];
        s.search.batch_sizes = vec![1, 8];
        assert!(batches(&s).contains(&BATCH_JOB_BATCH), "{:?}", batches(&s));
        // Answers needed fresh: no batch job, so no batch to time for one.
        s.inputs.freshness_s = 0.0;
        assert!(!batches(&s).contains(&BATCH_JOB_BATCH), "{:?}", batches(&s));
        // Unbounded inputs: the same.
        let mut s = load("card-fraud-stream");
        s.search.modes = vec![Mode::OnlineHttp, Mode::Hybrid];
        s.search.batch_sizes = vec![1, 8];
        assert!(matches!(s.inputs.space, InputSpace::Unbounded));
        assert!(!batches(&s).contains(&BATCH_JOB_BATCH), "{:?}", batches(&s));
    }

    /// A measured kernel carries the working set of one call of what ran
    /// (every weight plus its largest activations) and the level holding it:
    /// an MLP's 0.5 MB of f32 weights fit a 1 MiB L2 at batch 1, not with
    /// the 2 MB of activations of batch 1024.
    #[test]
    fn a_measured_point_is_placed_at_the_level_its_working_set_fits() {
        use crate::hardware::roofline::LevelBandwidth;
        use workbench_kernels::{Activation, MlpSpec, ModelSpec};
        let spec = ModelSpec::Mlp(MlpSpec {
            input: 256,
            hidden: vec![512],
            output: 10,
            activation: Activation::Relu,
        });
        let graph = Graph::from_spec(&spec, MODEL_SEED).unwrap();
        let program = executed_program(&graph, BackendKind::Tiled, Precision::F32);
        let mut machine = Roofline::flat("test", 100.0, 400.0, 20.0);
        for (level, capacity) in [("L1", 32u64 << 10), ("L2", 1 << 20)] {
            machine.bandwidth.push(LevelBandwidth {
                level: level.to_string(),
                working_set_bytes: capacity / 2,
                capacity_bytes: capacity,
                read_gbs: 100.0,
                copy_gbs: 100.0,
                triad_gbs: 100.0,
            });
        }
        let weights = graph.weight_bytes(Precision::F32);
        let point = |batch| {
            measured_point(
                "p".to_string(),
                &program.costs(batch),
                10.0,
                Precision::F32,
                &machine,
            )
            .unwrap()
        };
        let one = point(1);
        let ws = one.working_set_bytes.unwrap();
        assert!(
            ws > weights && ws < weights + (64 << 10),
            "{ws} vs {weights}"
        );
        assert_eq!(one.memory_level.as_deref(), Some("L2"));
        let large = point(1024);
        assert!(large.working_set_bytes.unwrap() > 1 << 20, "{large:?}");
        assert_eq!(large.memory_level.as_deref(), Some("DRAM"));
        // A program that moves no bytes has no intensity to place it at.
        assert_eq!(
            measured_point("p".to_string(), &[], 1.0, Precision::F32, &machine),
            None
        );
    }

    /// A plan's programs: its own build's, each device class's and its
    /// fallback's, each once; a build without a recorded program is left out.
    #[test]
    fn a_plan_shows_the_program_of_every_build_it_runs_once() {
        use report::fixtures::device_class as class;
        use report::{CompiledProgram, Fallback};
        let program = |variant: &str, backend, precision| CompiledProgram {
            model_variant: variant.to_string(),
            backend,
            precision,
            text: format!("{variant} {backend} {precision}"),
        };
        let programs = [
            program("full", BackendKind::Tiled, Precision::F32),
            program("distilled", BackendKind::Quantized, Precision::Int8),
            program("full", BackendKind::Fused, Precision::F32),
            program("full", BackendKind::Autotuned, Precision::F32),
        ];
        let mut plan = report::fixtures::sample_report()
            .recommended
            .expect("a plan");
        plan.model_variant = "full".to_string();
        (plan.backend, plan.precision) = (BackendKind::Tiled, Precision::F32);
        plan.device_classes = vec![
            class("phone", "full", BackendKind::Tiled, Precision::F32),
            class(
                "watch",
                "distilled",
                BackendKind::Quantized,
                Precision::Int8,
            ),
            // Timed before programs were kept.
            class("band", "distilled", BackendKind::Tiled, Precision::F32),
        ];
        plan.fallback = Some(Fallback {
            target: "cloud".to_string(),
            model_variant: "full".to_string(),
            backend: BackendKind::Fused,
            precision: Precision::F32,
        });
        let texts: Vec<String> = plan_programs(&plan, &programs)
            .into_iter()
            .map(|p| p.text)
            .collect();
        assert_eq!(
            texts,
            [
                "full tiled f32",
                "distilled quantized int8",
                "full fused f32"
            ]
        );
    }

    /// A slow machine: 1 GFLOP/s, 4 G int8 ops/s, 0.1 GB/s.
    fn slow_machine() -> Roofline {
        Roofline::flat("slow", 1.0, 4.0, 0.1)
    }

    /// A measurement of `config` at batch 1 with `stats`, holding `activation_bytes`.
    fn measurement(
        config: (BackendKind, Precision),
        stats: measure::stats::SampleStats,
        activation_bytes: Option<u64>,
    ) -> measure::KernelMeasurement {
        measure::KernelMeasurement {
            backend: config.0,
            precision: config.1,
            workload: "test".to_string(),
            batch: 1,
            stats,
            iters_per_sample: 1,
            remeasures: 0,
            high_variance: false,
            reduced: false,
            spent_ms: 0.0,
            compile_ms: 0.0,
            budget_ms: 0.0,
            tuning_cut_short: false,
            first_window_median_ns: None,
            second_window_median_ns: None,
            gflops: 1.0,
            fraction_of_peak: None,
            hardware_fingerprint: "test".to_string(),
            graph_fingerprint: 0,
            from_cache: false,
            activation_bytes,
            program: None,
            quick: true,
        }
    }

    /// The card-fraud-stream scenario, its model's graph, and the program its
    /// tiled f32 build runs.
    fn card_fraud_tiled() -> (Scenario, Graph, ExecutedProgram, (BackendKind, Precision)) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join("card-fraud-stream.toml");
        let scenario = crate::scenario::load(&path).unwrap();
        let graph = Graph::from_spec(&scenario.model.variants[0].spec, MODEL_SEED).unwrap();
        let config = (BackendKind::Tiled, Precision::F32);
        let program = executed_program(&graph, config.0, config.1);
        (scenario, graph, program, config)
    }

    /// A target judged on the memory the build held when timed: one with
    /// room for the weights and that, though not for everything the graph
    /// holds live at once, runs it; without a measured figure, the graph's
    /// count stands and the target is refused.
    #[test]
    fn a_target_fits_what_the_build_held_when_timed() {
        let (scenario, graph, program, config) = card_fraud_tiled();
        let stats = measure::stats::summarize(&[1e5; 10], 1).unwrap();
        let weights = graph.weight_bytes(Precision::F32);
        let live = graph.peak_activation_bytes(1);
        let mut target = scenario.targets.cloud[0].clone();
        target.spec.memory_bytes = weights + live / 2;
        let project = |held: Option<u64>| {
            let m = measurement(config, stats.clone(), held);
            project_onto(
                &graph,
                &program,
                &[&m],
                &slow_machine(),
                config,
                &target,
                "t",
            )
            .0
        };
        let fits = project(Some(live / 4));
        assert_eq!(fits.infeasible, None);
        assert!(!fits.points.is_empty());
        let refused = project(None);
        assert!(
            matches!(refused.infeasible, Some(Infeasible::DoesNotFit { needed_bytes, .. }) if needed_bytes == weights + live),
            "{:?}",
            refused.infeasible
        );
        // More than the graph's count, when that is what it held, is refused too.
        assert!(project(Some(live)).infeasible.is_some());
    }

    /// The reviewer's case: a measurement whose sample p90 is an interruption
    /// of this host (ten times the median) while its quartiles, from which the
    /// p99 is fitted, are tight. Every projected row keeps median <= p90 <= p99,
    /// on the roofline and by a speed factor.
    #[test]
    fn projected_percentiles_are_ordered_when_the_sample_p90_is_an_interruption() {
        let (scenario, graph, program, config) = card_fraud_tiled();
        // Eight calls of 0.1 ms and two interrupted ones of 1 ms.
        let mut calls = vec![1e5; 8];
        calls.extend([1e6, 1e6]);
        let stats = measure::stats::summarize(&calls, 1).unwrap();
        assert!(stats.p90_ns > 5.0 * stats.median_ns, "{stats:?}");
        let measured = measure::KernelMeasurement {
            high_variance: true,
            ..measurement(config, stats, None)
        };
        let mut rows = Vec::new();
        for target in scenario.targets.cloud.iter().chain(&scenario.targets.edge) {
            for speed_factor in [None, Some(2.0)] {
                let target = Target {
                    speed_factor,
                    ..target.clone()
                };
                let (_, projected, _) = project_onto(
                    &graph,
                    &program,
                    &[&measured],
                    &slow_machine(),
                    config,
                    &target,
                    "test",
                );
                rows.extend(projected);
            }
        }
        // A target described by its speed factor alone (no peak figures) runs.
        let by_factor = Target {
            speed_factor: Some(0.5),
            spec: crate::hardware::TargetSpec {
                peak_gflops_f32: 0.0,
                peak_gops_int8: 0.0,
                mem_bandwidth_gbs: 0.0,
                ..scenario.targets.cloud[0].spec.clone()
            },
            ..scenario.targets.cloud[0].clone()
        };
        let (profile, projected, _) = project_onto(
            &graph,
            &program,
            &[&measured],
            &slow_machine(),
            config,
            &by_factor,
            "test",
        );
        assert_eq!(profile.infeasible, None);
        assert_eq!(projected.len(), 1);
        rows.extend(projected);
        assert!(rows.len() >= 2, "{rows:?}");
        for r in &rows {
            assert!(
                r.median_ns <= r.p90_ns && r.p90_ns <= r.p99_ns,
                "{} {}: median {} p90 {} p99 {}",
                r.target,
                r.batch,
                r.median_ns,
                r.p90_ns,
                r.p99_ns
            );
        }
    }

    fn big_scenario(budget_s: f64) -> Scenario {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let path = root.join("scenarios/card-fraud-stream.toml");
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("hidden = [256, 128]", "hidden = [16000, 16000]")
            .replace(
                "measurement_budget_s = 10",
                &format!("measurement_budget_s = {budget_s}"),
            );
        crate::scenario::parse_str(&text, &path).unwrap()
    }

    #[test]
    fn a_variant_whose_fastest_call_is_far_over_its_budget_is_refused_with_the_figures() {
        let scenario = big_scenario(10.0);
        let options = PipelineOptions {
            quick: true,
            cache_dir: std::env::temp_dir().join("wb-pipeline-refuse-unused"),
            ..PipelineOptions::default()
        };
        let mut measure_options = MeasureOptions::quick();
        measure_options.roofline = Some(slow_machine());
        let configs = configs(&scenario);
        let budget = std::time::Duration::from_secs(10);
        // 258 M parameters: 258 MB of int8 weights at 0.1 GB/s is 2.6 s a call,
        // within 3x the 5 s each of the two variants has.
        assert!(
            refuse_over_budget(&scenario, &options, &measure_options, &configs, budget).is_ok()
        );
        // With a second's budget (half a second per variant) it does not.
        let scenario = big_scenario(1.0);
        let budget = std::time::Duration::from_secs(1);
        let err = refuse_over_budget(&scenario, &options, &measure_options, &configs, budget)
            .unwrap_err();
        let text = err.to_string();
        for part in [
            "model variant `full` cannot be measured within the budget",
            "516.2 M FLOPs per sample",
            "258.1 M parameters",
            "at least 2.58 s",
            "quantized int8",
            "258 MB of weights",
            "more than 3x its 500 ms of the measurement budget",
            "search.measurement_budget_s = 1 s over 2 variant(s)",
            "Use a smaller model, or raise search.measurement_budget_s to at least 2 s",
        ] {
            assert!(text.contains(part), "`{part}` missing from: {text}");
        }
        // Slower memory: the advice says what the caps allow.
        let scenario = big_scenario(10.0);
        let budget = std::time::Duration::from_secs(10);
        let mut slower = slow_machine();
        slower.dram_gbs = 0.01;
        measure_options.roofline = Some(slower.clone());
        let err = refuse_over_budget(&scenario, &options, &measure_options, &configs, budget)
            .unwrap_err();
        assert!(
            err.to_string().contains(
                "raise search.measurement_budget_s to at least 18 s and run without --quick"
            ),
            "{err}"
        );
        slower.dram_gbs = 0.001;
        measure_options.roofline = Some(slower);
        let err = refuse_over_budget(&scenario, &options, &measure_options, &configs, budget)
            .unwrap_err();
        assert!(
            err.to_string().contains("Use a smaller model: it would need a measurement budget of 173 s, and a run measures for at most 60 s"),
            "{err}"
        );
        // The small variant alone is not refused.
        let mut small = scenario.clone();
        small.model.variants.retain(|v| v.name == "distilled");
        assert!(refuse_over_budget(&small, &options, &measure_options, &configs, budget).is_ok());
    }
}
