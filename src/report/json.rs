//! `plan.json`: the machine-readable serving plan (schema in
//! `docs/plan-format.md`), its reader, and the baseline comparison used by
//! `workbench run --baseline`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use workbench_kernels::{BackendKind, Precision};

use super::error::ReportError;
use super::format;
use super::model::{
    Assumptions, ComparisonBasis, ConstraintCheck, FigureSource, KernelMeasurement, LatencySlo,
    Plan, PlanDimension, ProjectionBreakdown, Regression, Report, SensitivityLine,
};

/// Version of the `plan.json` schema this workbench writes and reads.
/// Bumped when a field is removed, renamed or changes meaning or unit;
/// adding a field does not bump it (readers ignore fields they do not know).
pub const PLAN_SCHEMA_VERSION: u32 = 1;

/// A plan that was not recommended, as stored in `plan.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanFileAlternative {
    #[serde(flatten)]
    pub plan: Plan,
    /// `null`: meets every constraint but ranked lower.
    pub rejected_because: Option<String>,
}

/// The contents of `plan.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanFile {
    pub schema_version: u32,
    pub scenario: String,
    pub description: String,
    pub feasible: bool,
    pub recommended: Option<Plan>,
    pub alternatives: Vec<PlanFileAlternative>,
    pub rationale: Vec<String>,
    pub constraints: Vec<ConstraintCheck>,
    pub sensitivity: Vec<SensitivityLine>,
    pub assumptions: Assumptions,
    /// How the recommended plan's compute was projected; absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projection: Option<ProjectionBreakdown>,
    /// The latency objective the plans were judged against; absent in files
    /// written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<LatencySlo>,
    /// The kernel timings of this run the baseline gate weighs noise with:
    /// their spread and every median. Absent when there is no recommended
    /// plan or it rests on no measurement of this machine, and in older files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurements: Option<MeasurementSummary>,
}

/// How noisy the kernel timings behind a plan were, for `--baseline`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasurementSummary {
    /// Largest `(p90_ns - median_ns) / median_ns` of the measurements the
    /// recommended plan's compute rests on (`plan_kernels`): how far above
    /// its median the kernel ran one call in ten.
    pub spread: f64,
    /// Any of those is flagged `high_variance` (the machine was busy).
    pub high_variance: bool,
    /// Those measurements: `"<variant> <backend> <precision> b<batch>"`.
    pub plan_kernels: Vec<String>,
    /// Median of every kernel measured on this machine, by the same label,
    /// ns: how much faster or slower the machine ran than in another run.
    pub medians_ns: BTreeMap<String, f64>,
}

/// `"<variant> <backend> <precision> b<batch>"`.
fn kernel_key(k: &KernelMeasurement) -> String {
    format!("{} {} {} b{}", k.workload, k.backend, k.precision, k.batch)
}

/// A timing usable as a ratio's denominator.
fn usable(k: &KernelMeasurement) -> bool {
    k.source == FigureSource::Measured
        && k.median_ns.is_finite()
        && k.median_ns > 0.0
        && k.p90_ns.is_finite()
}

/// How far above its median a usable kernel ran one call in ten.
fn kernel_spread(k: &KernelMeasurement) -> f64 {
    ((k.p90_ns - k.median_ns) / k.median_ns).max(0.0)
}

/// The kernel measured on this machine that runs `variant` on `backend` at
/// `precision` at the measured batch size closest to `max_batch` (the
/// largest not above it, else the smallest), as the projection picks it.
fn closest_kernel<'a>(
    kernels: &'a [KernelMeasurement],
    variant: &str,
    backend: BackendKind,
    precision: Precision,
    max_batch: u32,
) -> Option<&'a KernelMeasurement> {
    let measured: Vec<&KernelMeasurement> = kernels
        .iter()
        .filter(|k| usable(k) && k.backend == backend && k.precision == precision)
        .collect();
    // Kernels are named by their model variant; a report whose workloads
    // are named otherwise matches on backend and precision.
    let of_variant: Vec<&KernelMeasurement> = measured
        .iter()
        .copied()
        .filter(|k| k.workload == variant)
        .collect();
    let candidates = if of_variant.is_empty() {
        measured
    } else {
        of_variant
    };
    candidates
        .iter()
        .copied()
        .filter(|k| k.batch <= max_batch)
        .max_by_key(|k| k.batch)
        .or_else(|| candidates.iter().copied().min_by_key(|k| k.batch))
}

impl MeasurementSummary {
    /// The summary of `kernels` for `plan`: the kernels measured on this
    /// machine that it (and its cloud fallback) runs, each at the measured
    /// batch size closest to the plan's (the largest not above it, else the
    /// smallest), as the projection picks it. `None` when none was measured.
    pub fn of_plan(plan: &Plan, kernels: &[KernelMeasurement]) -> Option<MeasurementSummary> {
        let mut runs = vec![(plan.model_variant.as_str(), plan.backend, plan.precision)];
        if let Some(fallback) = &plan.fallback {
            runs.push((
                fallback.model_variant.as_str(),
                fallback.backend,
                fallback.precision,
            ));
        }
        let mut summary: Option<MeasurementSummary> = None;
        for (variant, backend, precision) in runs {
            let Some(kernel) = closest_kernel(kernels, variant, backend, precision, plan.max_batch)
            else {
                continue;
            };
            let spread = kernel_spread(kernel);
            let entry = summary.get_or_insert_with(|| MeasurementSummary {
                spread: 0.0,
                high_variance: false,
                plan_kernels: Vec::new(),
                medians_ns: kernels
                    .iter()
                    .filter(|k| usable(k))
                    .map(|k| (kernel_key(k), k.median_ns))
                    .collect(),
            });
            entry.spread = entry.spread.max(spread);
            entry.high_variance |= kernel.high_variance;
            let key = kernel_key(kernel);
            if !entry.plan_kernels.contains(&key) {
                entry.plan_kernels.push(key);
            }
        }
        summary
    }

    /// How much slower the machine ran in `self`'s run than in `baseline`'s:
    /// the median of new over old median of every kernel both measured,
    /// but for either plan's own (a regression of the plan's kernel must not
    /// excuse itself). 1 when faster, or with no other kernel to tell by.
    fn machine_slowdown(&self, baseline: &MeasurementSummary) -> (f64, usize) {
        let mut ratios: Vec<f64> = self
            .medians_ns
            .iter()
            .filter(|(key, _)| {
                !self.plan_kernels.contains(key) && !baseline.plan_kernels.contains(key)
            })
            .filter_map(|(key, new)| {
                let old = baseline.medians_ns.get(key)?;
                (old.is_finite() && *old > 0.0 && new.is_finite()).then(|| new / old)
            })
            .collect();
        if ratios.is_empty() {
            return (1.0, 0);
        }
        ratios.sort_by(f64::total_cmp);
        let mid = ratios.len() / 2;
        let median = if ratios.len().is_multiple_of(2) {
            (ratios[mid - 1] + ratios[mid]) / 2.0
        } else {
            ratios[mid]
        };
        (median.max(1.0), ratios.len())
    }
}

impl PlanFile {
    /// The serving-plan part of a report (no kernels, roofline or CDFs).
    pub fn from_report(report: &Report) -> PlanFile {
        PlanFile {
            schema_version: PLAN_SCHEMA_VERSION,
            scenario: report.scenario.clone(),
            description: report.description.clone(),
            feasible: report.feasible,
            recommended: report.recommended.clone(),
            alternatives: report
                .alternatives
                .iter()
                .map(|a| PlanFileAlternative {
                    plan: a.plan.clone(),
                    rejected_because: a.rejected_because.clone(),
                })
                .collect(),
            rationale: report.rationale.clone(),
            constraints: report.constraints.clone(),
            sensitivity: report.sensitivity.clone(),
            assumptions: report.assumptions.clone(),
            projection: report.projection.clone(),
            slo: report.slo,
            measurements: report
                .recommended
                .as_ref()
                .and_then(|plan| MeasurementSummary::of_plan(plan, &report.kernels)),
        }
    }
}

/// Render `plan.json` (pretty-printed, trailing newline).
///
/// Numbers are written as the CSV files write them
/// ([`super::writer::figure_text`]: 10 significant digits, plain decimal), so
/// the two agree and the same report gives the same bytes. Non-finite
/// numbers would be written as `null` and not read back: [`super::validate`]
/// refuses them before anything is written.
pub fn plan_json(report: &Report) -> String {
    let file = PlanFile::from_report(report);
    // Serialising plain structs with string keys cannot fail; fall back to a
    // minimal object rather than panicking if it ever does.
    match super::writer::figures_json(&file) {
        Ok(mut text) => {
            text.push('\n');
            text
        }
        Err(err) => format!(
            "{{\"schema_version\": {PLAN_SCHEMA_VERSION}, \"error\": {:?}}}\n",
            err.to_string()
        ),
    }
}

/// Parse a `plan.json` written by this or an earlier compatible workbench.
pub fn read_plan(text: &str) -> Result<PlanFile, ReportError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ReportError::PlanFormat(e.to_string()))?;
    let version = value
        .get("schema_version")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| {
            ReportError::PlanFormat("missing or non-integer `schema_version`".to_string())
        })?;
    if version != u64::from(PLAN_SCHEMA_VERSION) {
        return Err(ReportError::UnsupportedSchema {
            found: u32::try_from(version).unwrap_or(u32::MAX),
            supported: PLAN_SCHEMA_VERSION,
        });
    }
    serde_json::from_value(value).map_err(|e| ReportError::PlanFormat(e.to_string()))
}

impl Regression {
    /// Whether this finding should fail CI: a regression of latency or cost
    /// beyond the tolerance, lost feasibility, or a baseline serving decision
    /// with no feasible plan any more. A changed dimension of the plan alone
    /// and notes on the comparison itself do not fail.
    pub fn fails(&self) -> bool {
        match self {
            Regression::P99Latency { .. }
            | Regression::SloLatency { .. }
            | Regression::Cost { .. }
            | Regression::NoLongerFeasible
            | Regression::DecisionNoLongerFeasible { .. } => true,
            Regression::PlanChanged { .. } | Regression::ComparisonNote { .. } => false,
        }
    }

    /// Whether this finding is about what the comparison rests on (another
    /// machine, seed or workbench version, another SLO, a tolerance widened
    /// by the measurement spread) rather than about the plan.
    pub fn qualifies_comparison(&self) -> bool {
        matches!(self, Regression::ComparisonNote { .. })
    }

    /// One line for the report and the CLI.
    pub fn describe(&self) -> String {
        match self {
            Regression::P99Latency {
                old_ms,
                new_ms,
                relative_change,
            } => format!(
                "p99 latency regressed {} -> {} ({:+.1}%)",
                format::ms(*old_ms),
                format::ms(*new_ms),
                relative_change * 100.0
            ),
            Regression::SloLatency {
                percentile,
                old_ms,
                new_ms,
                relative_change,
            } => format!(
                "{} latency (the SLO's percentile) regressed {} -> {} ({:+.1}%)",
                crate::plan::evaluate::percentile_name(*percentile),
                format::ms(*old_ms),
                format::ms(*new_ms),
                relative_change * 100.0
            ),
            Regression::Cost {
                old_usd_per_month,
                new_usd_per_month,
                relative_change,
            } => format!(
                "cost regressed {}/month -> {}/month ({:+.1}%)",
                format::usd(*old_usd_per_month),
                format::usd(*new_usd_per_month),
                relative_change * 100.0
            ),
            Regression::NoLongerFeasible => {
                "no plan is feasible any more (the baseline had one)".to_string()
            }
            Regression::DecisionNoLongerFeasible { decision, reason } => format!(
                "the baseline's serving decision ({decision}) has no feasible plan in this run: {reason}"
            ),
            Regression::PlanChanged { field, old, new } => {
                format!("plan changed: {} {old} -> {new}", field.name())
            }
            Regression::ComparisonNote { about, old, new } => match about {
                ComparisonBasis::Hardware => format!(
                    "the baseline was measured on another machine (hardware fingerprint {old}, \
                     this run {new}): latency and cost are not compared, only feasibility and \
                     the serving decision"
                ),
                ComparisonBasis::Seed => format!(
                    "the baseline was simulated with seed {old}, this run with {new}: \
                     simulated latencies also differ by sampling"
                ),
                ComparisonBasis::ToolVersion => {
                    format!("the baseline was written by workbench {old}, this run by {new}")
                }
                ComparisonBasis::Slo => format!(
                    "the latency SLO changed {old} -> {new}: the latency at its percentile is not compared"
                ),
                ComparisonBasis::Tolerance => format!(
                    "latency and cost tolerance widened by the measurement noise: {old} -> {new}"
                ),
                // `old` and `new` only say which run has timings.
                ComparisonBasis::Measurements => "the baseline keeps no kernel timings \
                     (no `measurements`; written by an older workbench): how fast the machine \
                     ran then is unknown, so only this run's spread widens the tolerance; \
                     regenerate the baseline with this workbench"
                    .to_string(),
            },
        }
    }
}

/// Relative growth from `old` to `new`; a growth from 0 is infinite.
fn relative_change(old: f64, new: f64) -> f64 {
    if old > 0.0 {
        (new - old) / old
    } else if new > old {
        f64::INFINITY
    } else {
        0.0
    }
}

fn plan_changed(field: PlanDimension, old: impl ToString, new: impl ToString) -> Regression {
    Regression::PlanChanged {
        field,
        old: old.to_string(),
        new: new.to_string(),
    }
}

fn comparison_note(about: ComparisonBasis, old: impl ToString, new: impl ToString) -> Regression {
    Regression::ComparisonNote {
        about,
        old: old.to_string(),
        new: new.to_string(),
    }
}

/// "p99.9 0.41 ms"-style name of an SLO.
fn slo_name(slo: &LatencySlo) -> String {
    format!(
        "{} <= {}",
        crate::plan::evaluate::percentile_name(slo.percentile),
        format::ms(slo.latency_ms)
    )
}

/// Mode, placement, model variant, backend and precision: what a deployment
/// is built around (target instance, replicas and batching are sized from it).
fn decision(p: &Plan) -> String {
    format!(
        "{} {} {} {} {}",
        p.mode, p.placement, p.model_variant, p.backend, p.precision
    )
}

/// Compare a new report against a baseline `plan.json` (the rules, for
/// people, are in `docs/plan-format.md`, "Baseline comparison").
///
/// What fails:
/// - the baseline was feasible and nothing is now;
/// - the baseline's serving decision (mode, placement, variant, backend,
///   precision) has no feasible plan in this run (another recommendation
///   alone does not fail: two feasible plans close in score swap places with
///   the measurement noise). Nor does a backend swap: the planner evaluates
///   only the fastest backend of each variant and precision, so when the
///   baseline's backend went unevaluated, the same decision on another
///   backend is feasible, and this run timed the baseline's backend within
///   the noise of it (`judge_backend_swap`), the swap is listed instead;
/// - the recommended plan's p99 latency, its latency at the SLO's own
///   percentile (when that is not p99) or its monthly cost grows by more
///   than `tolerance` (a fraction, 0.10 = 10%) widened by the measurement
///   noise (same machine only): `(1 + tolerance + spread) x slowdown - 1`,
///   where spread is the larger [`MeasurementSummary::spread`] of the two
///   runs and slowdown how much slower every other kernel ran than in the
///   baseline (a busy machine slows them all; a regressed kernel alone).
///
/// A baseline measured on other hardware (another fingerprint) is compared
/// on feasibility and decision only; a different seed or workbench version
/// is noted. Every changed plan dimension is listed without failing.
pub fn compare_with_baseline(old: &PlanFile, new: &Report, tolerance: f64) -> Vec<Regression> {
    let mut findings = Vec::new();
    let (old_assumptions, new_assumptions) = (&old.assumptions, &new.assumptions);
    let same_hardware =
        old_assumptions.hardware_fingerprint == new_assumptions.hardware_fingerprint;
    if !same_hardware {
        findings.push(comparison_note(
            ComparisonBasis::Hardware,
            &old_assumptions.hardware_fingerprint,
            &new_assumptions.hardware_fingerprint,
        ));
    }
    if old_assumptions.seed != new_assumptions.seed {
        findings.push(comparison_note(
            ComparisonBasis::Seed,
            old_assumptions.seed,
            new_assumptions.seed,
        ));
    }
    if old_assumptions.tool_version != new_assumptions.tool_version {
        findings.push(comparison_note(
            ComparisonBasis::ToolVersion,
            &old_assumptions.tool_version,
            &new_assumptions.tool_version,
        ));
    }
    if old.feasible && !new.feasible {
        findings.push(Regression::NoLongerFeasible);
    }
    let (old_plan, new_plan) = match (&old.recommended, &new.recommended) {
        (Some(o), Some(n)) => (o, n),
        (Some(o), None) => {
            findings.push(plan_changed(PlanDimension::Recommended, &o.id, "none"));
            return findings;
        }
        (None, Some(n)) => {
            findings.push(plan_changed(PlanDimension::Recommended, "none", &n.id));
            return findings;
        }
        (None, None) => return findings,
    };

    if same_hardware {
        compare_figures(old, old_plan, new, new_plan, tolerance, &mut findings);
    }

    // A backend swap within the noise, listed with the changed backend.
    let mut swap_listed: Option<(BackendKind, String)> = None;
    let baseline_decision = decision(old_plan);
    if baseline_decision != decision(new_plan) {
        let mut feasible_plans = std::iter::once(new_plan).chain(
            new.alternatives
                .iter()
                .filter(|a| a.rejected_because.is_none())
                .map(|a| &a.plan),
        );
        if !feasible_plans
            .clone()
            .any(|p| decision(p) == baseline_decision)
        {
            let rejected = new
                .alternatives
                .iter()
                .find(|a| decision(&a.plan) == baseline_decision)
                .and_then(|a| a.rejected_because.clone());
            // Not evaluated, while the same decision on another backend is
            // feasible: the planner keeps one backend per variant and
            // precision, so noise may have picked the other one.
            let other_backend = feasible_plans.find(|p| {
                p.mode == old_plan.mode
                    && p.placement == old_plan.placement
                    && p.model_variant == old_plan.model_variant
                    && p.precision == old_plan.precision
            });
            let verdict = match (rejected, other_backend) {
                (Some(reason), _) => Err(reason),
                (None, None) => Err(NOT_EVALUATED.to_string()),
                (None, Some(winner)) => {
                    judge_backend_swap(old, old_plan, winner, new, tolerance, same_hardware)
                        .map(|why| (winner.backend, why))
                        .map_err(|why| format!("{NOT_EVALUATED} ({why})"))
                }
            };
            match verdict {
                Ok(listed) => swap_listed = Some(listed),
                Err(reason) => findings.push(Regression::DecisionNoLongerFeasible {
                    decision: baseline_decision,
                    reason,
                }),
            }
        }
    }

    let dimensions = |p: &Plan| -> Vec<(PlanDimension, String)> {
        vec![
            (PlanDimension::Mode, p.mode.to_string()),
            (PlanDimension::Placement, p.placement.to_string()),
            (PlanDimension::Target, p.target.clone()),
            (PlanDimension::Replicas, p.replicas.to_string()),
            (PlanDimension::ModelVariant, p.model_variant.clone()),
            (PlanDimension::Backend, p.backend.to_string()),
            (PlanDimension::Precision, p.precision.to_string()),
            // A tiered plan's other classes run builds of their own.
            (
                PlanDimension::ClassBuilds,
                if p.tiered() {
                    p.build_text()
                } else {
                    "one build on every device".to_string()
                },
            ),
            (PlanDimension::MaxBatch, p.max_batch.to_string()),
            (PlanDimension::MaxDelayMs, format!("{}", p.max_delay_ms)),
            (
                PlanDimension::Fallback,
                p.fallback.as_ref().map_or_else(
                    || "none".to_string(),
                    |f| {
                        format!(
                            "{} {} {} {}",
                            f.target, f.model_variant, f.backend, f.precision
                        )
                    },
                ),
            ),
            (
                PlanDimension::PrecomputeFraction,
                p.precompute_fraction
                    .map_or_else(|| "none".to_string(), |f| format!("{f}")),
            ),
        ]
    };
    for ((field, old_value), (_, new_value)) in
        dimensions(old_plan).into_iter().zip(dimensions(new_plan))
    {
        if old_value == new_value {
            continue;
        }
        // The recommended plan's backend is the swap: say why it changed.
        let swap_here = field == PlanDimension::Backend
            && swap_listed
                .as_ref()
                .is_some_and(|(winner, _)| winner.to_string() == new_value);
        match swap_listed.take_if(|_| swap_here) {
            Some((winner, why)) => {
                findings.push(plan_changed(field, old_value, format!("{winner} ({why})")))
            }
            None => findings.push(plan_changed(field, old_value, new_value)),
        }
    }
    // The swap is in a plan ranked below the recommendation: still listed.
    if let Some((winner, why)) = swap_listed {
        findings.push(plan_changed(
            PlanDimension::Backend,
            old_plan.backend,
            format!(
                "{winner} in the baseline's {} {} {} {} ({why})",
                old_plan.mode, old_plan.placement, old_plan.model_variant, old_plan.precision
            ),
        ));
    }
    findings
}

/// Why a baseline decision is missing when nothing rejected it.
const NOT_EVALUATED: &str = "not among the plans evaluated";

/// Whether the baseline's backend went unevaluated only because `winner`'s
/// backend (same mode, placement, variant and precision, feasible here)
/// timed faster in this run by no more than the noise: the planner keeps
/// only the fastest backend of each variant and precision. Both are
/// compared as this run timed them on this machine, at the measured batch
/// size closest to the baseline plan's; the noise allowed is the tolerance
/// plus the larger spread of the two timings (and of the baseline's plan
/// timing, same machine). `Ok`: a swap, with why; `Err`: why it is not one
/// (the baseline's backend got slower beyond the noise, or was not timed).
fn judge_backend_swap(
    old: &PlanFile,
    old_plan: &Plan,
    winner: &Plan,
    new: &Report,
    tolerance: f64,
    same_hardware: bool,
) -> Result<String, String> {
    let (lost_backend, won_backend, precision) =
        (old_plan.backend, winner.backend, old_plan.precision);
    let build = format!("{} {precision}", old_plan.model_variant);
    let cannot_tell = |what: String| {
        format!(
            "the planner keeps only the fastest backend of each model variant and precision, \
             {won_backend} for {build} in this run; {what}, so a swap by noise cannot be told \
             from a slower {lost_backend}"
        )
    };
    let Some(lost) = closest_kernel(
        &new.kernels,
        &old_plan.model_variant,
        lost_backend,
        precision,
        old_plan.max_batch,
    ) else {
        return Err(cannot_tell(format!(
            "{lost_backend} {precision} was not timed in this run"
        )));
    };
    let Some(won) = new.kernels.iter().find(|k| {
        usable(k)
            && k.backend == won_backend
            && k.precision == precision
            && k.workload == lost.workload
            && k.batch == lost.batch
    }) else {
        return Err(cannot_tell(format!(
            "{won_backend} {precision} was not timed at batch {} in this run",
            lost.batch
        )));
    };
    let baseline_summary = old.measurements.as_ref().filter(|_| same_hardware);
    let spread = [kernel_spread(lost), kernel_spread(won)]
        .into_iter()
        .chain(baseline_summary.map(|m| m.spread))
        .filter(|s| s.is_finite())
        .fold(0.0, f64::max);
    let allowed = tolerance + spread;
    let ratio = lost.median_ns / won.median_ns;
    let in_baseline_run = baseline_summary.and_then(|m| {
        let old_lost = m.medians_ns.get(&kernel_key(lost))?;
        let old_won = m.medians_ns.get(&kernel_key(won))?;
        (*old_won > 0.0).then(|| format!("{:.2}x in the baseline's run", old_lost / old_won))
    });
    let timed = format!(
        "this run timed {build} at batch {} at {} with {lost_backend}, {} with {won_backend}",
        lost.batch,
        format::duration_ns(lost.median_ns),
        format::duration_ns(won.median_ns)
    );
    let bound = format!(
        "the {} the tolerance and the timings' spread allow",
        format::percent(allowed, 1)
    );
    if ratio - 1.0 <= allowed {
        let ratios = [format!("{ratio:.2}x")]
            .into_iter()
            .chain(in_baseline_run)
            .collect::<Vec<_>>()
            .join("; ");
        Ok(format!(
            "a swap within the measurement noise: the planner keeps only the fastest backend \
             of each model variant and precision; {timed} ({ratios}), within {bound}"
        ))
    } else {
        let then = in_baseline_run.map_or_else(String::new, |r| format!(" ({r})"));
        Err(format!(
            "the planner keeps only the fastest backend of each model variant and precision; \
             {timed}: {lost_backend} ran {ratio:.2}x slower{then}, beyond {bound}"
        ))
    }
}

/// The figures that follow the measured compute time (same machine only):
/// latency and cost, against the tolerance widened by the measurement noise.
fn compare_figures(
    old: &PlanFile,
    old_plan: &Plan,
    new: &Report,
    new_plan: &Plan,
    tolerance: f64,
    findings: &mut Vec<Regression>,
) {
    let new_summary = MeasurementSummary::of_plan(new_plan, &new.kernels);
    let summaries = [old.measurements.as_ref(), new_summary.as_ref()];
    let spread = summaries
        .iter()
        .flatten()
        .map(|s| s.spread)
        .filter(|r| r.is_finite())
        .fold(0.0, f64::max);
    let busy = summaries.iter().flatten().any(|s| s.high_variance);
    let (slowdown, compared) = match (&old.measurements, &new_summary) {
        (Some(old), Some(new)) => new.machine_slowdown(old),
        _ => (1.0, 0),
    };
    if old.measurements.is_none() && new_summary.is_some() {
        findings.push(comparison_note(
            ComparisonBasis::Measurements,
            "absent",
            "present",
        ));
    }
    let allowed = (1.0 + tolerance + spread) * slowdown - 1.0;
    // Below a tenth of a percent point the widening is not worth a line.
    if allowed - tolerance >= 0.001 {
        let mut why = vec![format!(
            "the recommended plan's timings ran up to {} above their median one call in ten{}",
            format::percent(spread, 1),
            if busy {
                ", flagged high-variance: the machine was busy"
            } else {
                ""
            }
        )];
        if slowdown > 1.0 {
            why.push(format!(
                "the other {compared} kernel(s) ran {slowdown:.2}x slower than in the baseline's run (the machine was slower)"
            ));
        }
        findings.push(comparison_note(
            ComparisonBasis::Tolerance,
            format::percent(tolerance, 1),
            format!("{} ({})", format::percent(allowed, 1), why.join("; ")),
        ));
    }

    let latency_change = relative_change(old_plan.latency_ms.p99, new_plan.latency_ms.p99);
    if latency_change > allowed {
        findings.push(Regression::P99Latency {
            old_ms: old_plan.latency_ms.p99,
            new_ms: new_plan.latency_ms.p99,
            relative_change: latency_change,
        });
    }
    // The SLO's own percentile, when it is not p99 (compared just above).
    match (old.slo, new.slo) {
        (Some(o), Some(n)) if o != n => findings.push(comparison_note(
            ComparisonBasis::Slo,
            slo_name(&o),
            slo_name(&n),
        )),
        (_, Some(slo)) if slo.percentile != 99.0 => {
            if let (Some(old_ms), Some(new_ms)) = (old_plan.slo_latency_ms, new_plan.slo_latency_ms)
            {
                let change = relative_change(old_ms, new_ms);
                if change > allowed {
                    findings.push(Regression::SloLatency {
                        percentile: slo.percentile,
                        old_ms,
                        new_ms,
                        relative_change: change,
                    });
                }
            }
        }
        _ => {}
    }
    let cost_change = relative_change(old_plan.cost_usd_per_month, new_plan.cost_usd_per_month);
    if cost_change > allowed {
        findings.push(Regression::Cost {
            old_usd_per_month: old_plan.cost_usd_per_month,
            new_usd_per_month: new_plan.cost_usd_per_month,
            relative_change: cost_change,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::sample_report;
    use crate::report::model::LatencySlo;
    use workbench_kernels::{BackendKind, Precision};

    fn failing(findings: &[Regression]) -> Vec<&Regression> {
        findings.iter().filter(|f| f.fails()).collect()
    }

    fn rerun(edit: impl FnOnce(&mut Report)) -> Report {
        let mut report = sample_report();
        edit(&mut report);
        report
    }

    fn recommended(report: &mut Report) -> &mut Plan {
        report
            .recommended
            .as_mut()
            .expect("the sample recommends a plan")
    }

    /// The recommended plan's kernel (tiled int8 b8) timed with its p90 at
    /// `p90_over_median` times its median.
    fn spread_to(report: &mut Report, p90_over_median: f64, high_variance: bool) {
        for k in &mut report.kernels {
            if k.backend == BackendKind::Tiled && k.precision == Precision::Int8 {
                k.p90_ns = k.median_ns * p90_over_median;
                k.high_variance = high_variance;
            }
        }
    }

    /// Every kernel's median times `factor` (the recommended plan's too when
    /// `with_plan`), as a slower machine or a regressed kernel would time them.
    fn slow_down(report: &mut Report, factor: f64, with_plan: bool) {
        for k in &mut report.kernels {
            let plan_kernel = k.backend == BackendKind::Tiled && k.precision == Precision::Int8;
            if with_plan || !plan_kernel {
                k.median_ns *= factor;
                k.p90_ns *= factor;
            }
        }
    }

    #[test]
    fn plan_json_records_the_measurement_noise_and_the_slo() {
        let file = PlanFile::from_report(&sample_report());
        let summary = file.measurements.clone().expect("a summary");
        assert!((summary.spread - 0.12).abs() < 1e-9, "{summary:?}");
        assert!(!summary.high_variance);
        assert_eq!(
            summary.plan_kernels,
            vec!["mlp 256-512-512-2 tiled int8 b8"]
        );
        assert_eq!(summary.medians_ns.len(), 6);
        assert_eq!(
            summary.medians_ns["mlp 256-512-512-2 tiled int8 b8"],
            71_000.0
        );
        assert_eq!(file.slo, sample_report().slo);
        // Read back, every figure is the file's, rounded as it writes them.
        let back = read_plan(&plan_json(&sample_report())).expect("reads back");
        let rounded = crate::report::writer::with_rounded_figures(&file).expect("rounds");
        assert_eq!(back, rounded);
        assert_ne!(rounded, file, "the sample has figures to round");
    }

    /// A fresh rerun on a busy machine: the same plan, its compute (and so
    /// p99 and edge energy) up by a third, the timings spreading 4x around
    /// their median. That is noise the measurement itself reports: no failure.
    #[test]
    fn a_noisy_rerun_of_the_same_plan_does_not_fail() {
        let baseline = PlanFile::from_report(&rerun(|r| spread_to(r, 4.9, true)));
        let again = rerun(|r| {
            spread_to(r, 2.5, true);
            let plan = recommended(r);
            plan.latency_ms.p99 *= 1.29;
            plan.slo_latency_ms = Some(plan.latency_ms.p99);
            plan.cost_usd_per_month *= 1.64;
        });
        let findings = compare_with_baseline(&baseline, &again, 0.10);
        assert!(failing(&findings).is_empty(), "{findings:?}");
        let widened = findings
            .iter()
            .find(|f| f.qualifies_comparison())
            .expect("the widened tolerance is said");
        assert!(
            widened.describe().contains("10.0% -> 400.0%"),
            "{}",
            widened.describe()
        );
    }

    /// The whole machine 1.6x slower (every kernel, quiet timings): the
    /// plan's cost up 60% passes, and the report says why. The plan's kernel
    /// alone 1.6x slower is a regression of that kernel: it fails.
    #[test]
    fn a_slower_machine_is_told_from_a_slower_kernel() {
        let baseline = PlanFile::from_report(&sample_report());
        let slower_machine = rerun(|r| {
            slow_down(r, 1.6, true);
            recommended(r).cost_usd_per_month *= 1.6;
        });
        let findings = compare_with_baseline(&baseline, &slower_machine, 0.10);
        assert!(failing(&findings).is_empty(), "{findings:?}");
        assert!(
            findings.iter().any(|f| f
                .describe()
                .contains("the other 5 kernel(s) ran 1.60x slower")),
            "{findings:?}"
        );

        let slower_kernel = rerun(|r| {
            slow_down(r, 1.6, false);
            slow_down(r, 1.0 / 1.6, true);
            recommended(r).cost_usd_per_month *= 1.6;
        });
        let findings = compare_with_baseline(&baseline, &slower_kernel, 0.10);
        assert!(
            matches!(failing(&findings)[..], [Regression::Cost { .. }]),
            "{findings:?}"
        );
    }

    /// A move well beyond the noise fails; sizing changes are listed.
    #[test]
    fn a_move_beyond_the_noise_fails_and_sizing_is_listed() {
        let baseline = PlanFile::from_report(&sample_report());
        // Spread 12%: allowed 22%.
        let slower = rerun(|r| recommended(r).latency_ms.p99 *= 1.30);
        let findings = compare_with_baseline(&baseline, &slower, 0.10);
        assert!(matches!(
            failing(&findings)[..],
            [Regression::P99Latency { .. }]
        ));
        let within = rerun(|r| recommended(r).latency_ms.p99 *= 1.20);
        assert!(failing(&compare_with_baseline(&baseline, &within, 0.10)).is_empty());

        let more_replicas = rerun(|r| recommended(r).replicas = 3);
        let findings = compare_with_baseline(&baseline, &more_replicas, 0.10);
        assert!(failing(&findings).is_empty(), "{findings:?}");
        assert!(findings
            .iter()
            .any(|f| f.describe() == "plan changed: replicas 2 -> 3"));
    }

    /// Another recommendation fails when the baseline's decision has no
    /// feasible plan any more, not when two feasible plans swapped places.
    #[test]
    fn a_changed_decision_fails_only_when_the_baseline_s_is_no_longer_feasible() {
        let baseline = PlanFile::from_report(&sample_report());
        // The runner-up (tiled f32) now ranks first; tiled int8 is still feasible.
        let swapped = rerun(|r| {
            let first = r.recommended.take().expect("a plan");
            let second = r.alternatives.remove(0);
            r.recommended = Some(second.plan);
            r.alternatives.insert(
                0,
                crate::report::model::Alternative {
                    plan: first,
                    rejected_because: None,
                },
            );
        });
        let findings = compare_with_baseline(&baseline, &swapped, 0.10);
        assert!(failing(&findings).is_empty(), "{findings:?}");
        assert!(findings
            .iter()
            .any(|f| f.describe() == "plan changed: precision int8 -> f32"));

        // Tiled int8 is gone, fused int8 in its place, untimed: nothing
        // tells a swap by noise from a change of outcome.
        let other_backend = rerun(|r| recommended(r).backend = BackendKind::Fused);
        let findings = compare_with_baseline(&baseline, &other_backend, 0.10);
        let failed = failing(&findings);
        assert_eq!(failed.len(), 1, "{findings:?}");
        assert_eq!(
            failed[0].describe(),
            "the baseline's serving decision (online-http cloud base tiled int8) has no \
             feasible plan in this run: not among the plans evaluated (the planner keeps only \
             the fastest backend of each model variant and precision, fused for base int8 in \
             this run; fused int8 was not timed at batch 8 in this run, so a swap by noise \
             cannot be told from a slower tiled)"
        );

        // Fused int8 timed: tiled 1.05x slower is within the 22% allowed
        // (tolerance 10%, spread 12%), a swap listed; 1.5x slower fails.
        let fused_at = |tiled_over_fused: f64| {
            rerun(|r| {
                recommended(r).backend = BackendKind::Fused;
                let tiled = r
                    .kernels
                    .iter()
                    .find(|k| k.backend == BackendKind::Tiled && k.precision == Precision::Int8)
                    .cloned()
                    .expect("the sample times tiled int8");
                r.kernels.push(KernelMeasurement {
                    backend: BackendKind::Fused,
                    median_ns: tiled.median_ns / tiled_over_fused,
                    p90_ns: tiled.p90_ns / tiled_over_fused,
                    ..tiled
                });
            })
        };
        let findings = compare_with_baseline(&baseline, &fused_at(1.05), 0.10);
        assert!(failing(&findings).is_empty(), "{findings:?}");
        assert!(
            findings.iter().any(|f| f.describe()
                == "plan changed: backend tiled -> fused (a swap within the measurement noise: \
                    the planner keeps only the fastest backend of each model variant and \
                    precision; this run timed base int8 at batch 8 at 71.0 µs with tiled, \
                    67.6 µs with fused (1.05x), within the 22.0% the tolerance and the \
                    timings' spread allow)"),
            "{findings:?}"
        );
        let findings = compare_with_baseline(&baseline, &fused_at(1.5), 0.10);
        let failed = failing(&findings);
        assert_eq!(failed.len(), 1, "{findings:?}");
        assert!(
            failed[0].describe().ends_with(
                "tiled ran 1.50x slower, beyond the 22.0% the tolerance and the \
                 timings' spread allow)"
            ),
            "{}",
            failed[0].describe()
        );
    }

    /// A baseline from before the timings were kept: said.
    #[test]
    fn a_baseline_without_timings_is_said() {
        let mut baseline = PlanFile::from_report(&sample_report());
        baseline.measurements = None;
        let findings = compare_with_baseline(&baseline, &sample_report(), 0.10);
        assert!(failing(&findings).is_empty(), "{findings:?}");
        assert!(
            findings
                .iter()
                .any(|f| f.qualifies_comparison()
                    && f.describe().contains("keeps no kernel timings")),
            "{findings:?}"
        );
    }

    /// A p99.9 objective: a tail regression that leaves p99 alone fails.
    #[test]
    fn the_slo_percentile_latency_is_compared() {
        let tail_slo = |r: &mut Report| {
            r.slo = Some(LatencySlo {
                percentile: 99.9,
                latency_ms: 50.0,
            });
            let plan = recommended(r);
            plan.slo_latency_ms = Some(plan.latency_ms.p999);
        };
        let baseline = PlanFile::from_report(&rerun(tail_slo));
        let tail = rerun(|r| {
            tail_slo(r);
            let plan = recommended(r);
            plan.latency_ms.p999 *= 1.5;
            plan.slo_latency_ms = Some(plan.latency_ms.p999);
        });
        let findings = compare_with_baseline(&baseline, &tail, 0.10);
        let failed = failing(&findings);
        assert_eq!(failed.len(), 1, "{findings:?}");
        match failed[0] {
            Regression::SloLatency {
                percentile,
                old_ms,
                new_ms,
                relative_change,
            } => {
                assert_eq!(*percentile, 99.9);
                assert!((new_ms / old_ms - 1.5).abs() < 1e-9, "{findings:?}");
                assert!((relative_change - 0.5).abs() < 1e-9, "{findings:?}");
            }
            other => panic!("expected an SLO-latency regression, got {other:?}"),
        }
        assert!(
            failed[0]
                .describe()
                .starts_with("p99.9 latency (the SLO's percentile) regressed"),
            "{}",
            failed[0].describe()
        );

        // Another SLO: said, and its percentile's latency is not compared.
        let other_slo = rerun(|r| {
            tail_slo(r);
            r.slo = Some(LatencySlo {
                percentile: 99.9,
                latency_ms: 40.0,
            });
            let plan = recommended(r);
            plan.latency_ms.p999 *= 1.5;
            plan.slo_latency_ms = Some(plan.latency_ms.p999);
        });
        let findings = compare_with_baseline(&baseline, &other_slo, 0.10);
        assert!(failing(&findings).is_empty(), "{findings:?}");
        assert!(
            findings.iter().any(|f| matches!(
                f,
                Regression::ComparisonNote {
                    about: ComparisonBasis::Slo,
                    ..
                }
            )),
            "{findings:?}"
        );
    }

    /// Notes on what the comparison rests on never fail; an SLO-latency
    /// regression and a lost serving decision do.
    #[test]
    fn a_note_does_not_fail_and_an_slo_latency_regression_does() {
        for about in [
            ComparisonBasis::Hardware,
            ComparisonBasis::Seed,
            ComparisonBasis::ToolVersion,
            ComparisonBasis::Slo,
            ComparisonBasis::Tolerance,
            ComparisonBasis::Measurements,
        ] {
            let note = comparison_note(about, "old", "new");
            assert!(!note.fails(), "{note:?}");
            assert!(note.qualifies_comparison(), "{note:?}");
        }
        let slo_latency = Regression::SloLatency {
            percentile: 99.9,
            old_ms: 40.0,
            new_ms: 60.0,
            relative_change: 0.5,
        };
        assert!(slo_latency.fails());
        assert!(!slo_latency.qualifies_comparison());
        assert_eq!(
            slo_latency.describe(),
            format!(
                "p99.9 latency (the SLO's percentile) regressed {} -> {} (+50.0%)",
                format::ms(40.0),
                format::ms(60.0)
            )
        );
        let lost = Regression::DecisionNoLongerFeasible {
            decision: "online-http cloud base tiled int8".to_string(),
            reason: "over budget".to_string(),
        };
        assert!(lost.fails());
        assert!(!lost.qualifies_comparison());
        let changed = plan_changed(PlanDimension::Replicas, 2, 3);
        assert!(!changed.fails());
        assert!(!changed.qualifies_comparison());
    }

    /// Findings keep their JSON shape (`kind` in kebab-case, then the fields)
    /// and read back.
    #[test]
    fn findings_serialize_with_a_kebab_case_kind() {
        let findings = vec![
            plan_changed(PlanDimension::Replicas, 2, 3),
            Regression::SloLatency {
                percentile: 99.9,
                old_ms: 40.0,
                new_ms: 60.0,
                relative_change: 0.5,
            },
            comparison_note(ComparisonBasis::ToolVersion, "0.0.9", "0.1.0"),
        ];
        let json = serde_json::to_value(&findings).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!([
                {"kind": "plan-changed", "field": "replicas", "old": "2", "new": "3"},
                {
                    "kind": "slo-latency",
                    "percentile": 99.9,
                    "old_ms": 40.0,
                    "new_ms": 60.0,
                    "relative_change": 0.5
                },
                {"kind": "comparison-note", "about": "tool-version", "old": "0.0.9", "new": "0.1.0"}
            ])
        );
        let back: Vec<Regression> = serde_json::from_value(json).expect("reads back");
        assert_eq!(back, findings);
    }

    /// A dimension's name in the text is the one plan.json gives it.
    #[test]
    fn plan_dimensions_are_named_as_in_plan_json() {
        use PlanDimension::*;
        for d in [
            Recommended,
            Mode,
            Placement,
            Target,
            Replicas,
            ModelVariant,
            Backend,
            Precision,
            ClassBuilds,
            MaxBatch,
            MaxDelayMs,
            Fallback,
            PrecomputeFraction,
        ] {
            assert_eq!(serde_json::to_value(d).expect("serializes"), d.name());
        }
    }

    /// A baseline measured elsewhere: said, latency and cost not compared,
    /// the decision still is; seed and version differences are said.
    #[test]
    fn a_baseline_from_other_hardware_compares_only_the_decision() {
        let mut baseline = PlanFile::from_report(&sample_report());
        baseline.assumptions.hardware_fingerprint = "aarch64-other-machine".to_string();
        baseline.assumptions.seed = 7;
        baseline.assumptions.tool_version = "0.0.9".to_string();
        let slower = rerun(|r| {
            recommended(r).latency_ms.p99 *= 3.0;
            recommended(r).cost_usd_per_month *= 3.0;
        });
        let findings = compare_with_baseline(&baseline, &slower, 0.10);
        assert!(failing(&findings).is_empty(), "{findings:?}");
        let notes: Vec<String> = findings
            .iter()
            .filter(|f| f.qualifies_comparison())
            .map(Regression::describe)
            .collect();
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(
            notes[0].contains("measured on another machine"),
            "{notes:?}"
        );
        assert!(notes[1].contains("seed 7"), "{notes:?}");
        assert!(notes[2].contains("workbench 0.0.9"), "{notes:?}");

        let other_mode = rerun(|r| recommended(r).mode = crate::report::model::ServingMode::Batch);
        assert_eq!(
            failing(&compare_with_baseline(&baseline, &other_mode, 0.10)).len(),
            1
        );
    }
}
