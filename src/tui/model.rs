//! What the Simulation, Plan and Export views show: a flat view of the
//! planner's report, so the views do not depend on every detail of it.

use crate::report::{LatencySlo, Plan, Report};

/// One candidate serving plan with its simulated figures.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateRow {
    /// Short unique label, e.g. "online-http cloud c7i.xlarge x3 tiled int8 b8".
    pub label: String,
    pub mode: String,
    pub placement: String,
    pub target: String,
    pub replicas: u32,
    pub backend: String,
    pub precision: String,
    pub max_batch: u32,
    pub max_delay_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    /// Latency at the scenario's SLO percentile (p99 without an SLO): the
    /// figure the plan was judged on, as the CLI and report lead with.
    /// `None` when unknown (too many requests failed to reach it).
    pub at_slo_ms: Option<f64>,
    pub throughput_rps: f64,
    pub cost_usd_per_month: f64,
    /// Mean replica utilisation 0..=1 (simulated).
    pub utilisation: f64,
    /// Fraction of requests dropped or failed (simulated).
    pub failure_rate: f64,
    /// Age of precomputed predictions served, minutes (batch and hybrid modes).
    pub staleness_min: Option<f64>,
    /// `None` when the plan meets every constraint.
    pub rejected_because: Option<String>,
    /// On the cost / p99 / accuracy Pareto front.
    pub pareto: bool,
    /// `false`: rejected before simulation (latencies are a lower bound, no cost).
    pub simulated: bool,
    /// Edge and hybrid plans: what one device holds for the plan's build
    /// (weights and activations, bytes; [`Plan::device_memory_bytes`]).
    pub device_memory_bytes: Option<u64>,
}

impl CandidateRow {
    pub fn feasible(&self) -> bool {
        self.rejected_because.is_none()
    }

    /// The same plan but for its replica count (a what-if that changes the
    /// traffic scales the replicas of the original plan).
    pub fn same_but_replicas(&self, other: &CandidateRow) -> bool {
        changed_fields(self, other)
            .iter()
            .all(|field| *field == "replicas")
            && self.max_delay_ms == other.max_delay_ms
            // the id names what the fields above do not (variant, fallback,
            // precomputed share, per-class builds)
            && without_replicas(&self.label) == without_replicas(&other.label)
    }
}

/// A plan id without its replica segment (`/x3/`): the plan at any count.
fn without_replicas(id: &str) -> Vec<&str> {
    id.split('/')
        .filter(|part| {
            !(part.len() > 1
                && part.starts_with('x')
                && part[1..].bytes().all(|b| b.is_ascii_digit()))
        })
        .collect()
}

/// Latency CDF of one plan: (latency ms, cumulative fraction 0..=1), increasing.
#[derive(Debug, Clone, PartialEq)]
pub struct CdfSeries {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// The planner's answer for one scenario, as the TUI shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanView {
    pub scenario: String,
    /// Index into `candidates` of the recommended plan; `None` when nothing is feasible.
    pub recommended: Option<usize>,
    pub candidates: Vec<CandidateRow>,
    /// A few sentences computed from the numbers.
    pub rationale: Vec<String>,
    /// Latency CDFs of the top plans (recommended first).
    pub cdfs: Vec<CdfSeries>,
    /// The scenario's latency SLO after the what-if (drawn on the charts).
    pub slo: Option<LatencySlo>,
    /// Planned with the quick options (shorter measurements and simulations,
    /// a smaller search): `workbench run` may recommend another plan.
    pub quick: bool,
    /// Kernels the recommended plan rests on whose timings spread more than
    /// 10% (a busy machine), as the exported report warns; empty otherwise.
    pub noisy_kernels: Vec<String>,
}

impl PlanView {
    pub fn recommended_row(&self) -> Option<&CandidateRow> {
        self.recommended.and_then(|i| self.candidates.get(i))
    }
}

/// Columns the Plan view's candidate table can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Rank,
    Cost,
    /// Latency at the SLO's percentile (see [`CandidateRow::at_slo_ms`]).
    Latency,
    Throughput,
    Feasible,
}

impl SortKey {
    pub fn next(self) -> SortKey {
        match self {
            SortKey::Rank => SortKey::Cost,
            SortKey::Cost => SortKey::Latency,
            SortKey::Latency => SortKey::Throughput,
            SortKey::Throughput => SortKey::Feasible,
            SortKey::Feasible => SortKey::Rank,
        }
    }

    /// The sort's name; the latency sort is named after the figure it
    /// sorts by (`latency_name`: "p99", "p95"...).
    pub fn name(self, latency_name: &str) -> String {
        match self {
            SortKey::Rank => "rank".to_string(),
            SortKey::Cost => "cost".to_string(),
            SortKey::Latency => latency_name.to_string(),
            SortKey::Throughput => "throughput".to_string(),
            SortKey::Feasible => "feasible first".to_string(),
        }
    }
}

/// Candidate indices in display order for `key` (stable, so ties keep the
/// planner's rank). By cost, latency or throughput, the simulated plans come
/// first: a plan rejected before simulation has no cost or throughput and
/// only a lower bound of its latency, so it cannot rank among them.
pub fn sorted_indices(plan: &PlanView, key: SortKey) -> Vec<usize> {
    let mut order: Vec<usize> = (0..plan.candidates.len()).collect();
    let c = &plan.candidates;
    let unsimulated_last = |a: usize, b: usize| c[b].simulated.cmp(&c[a].simulated);
    // An unknown latency sorts after every known one.
    let latency = |i: usize| c[i].at_slo_ms.unwrap_or(f64::INFINITY);
    match key {
        SortKey::Rank => {}
        SortKey::Cost => order.sort_by(|&a, &b| {
            unsimulated_last(a, b).then(c[a].cost_usd_per_month.total_cmp(&c[b].cost_usd_per_month))
        }),
        SortKey::Latency => {
            order.sort_by(|&a, &b| unsimulated_last(a, b).then(latency(a).total_cmp(&latency(b))))
        }
        SortKey::Throughput => order.sort_by(|&a, &b| {
            unsimulated_last(a, b).then(c[b].throughput_rps.total_cmp(&c[a].throughput_rps))
        }),
        SortKey::Feasible => order.sort_by_key(|&i| !c[i].feasible()),
    }
    order
}

/// Which fields of the recommendation changed between the original plan and a what-if plan.
pub fn changed_fields(original: &CandidateRow, now: &CandidateRow) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if original.mode != now.mode {
        changed.push("mode");
    }
    if original.placement != now.placement {
        changed.push("placement");
    }
    if original.target != now.target {
        changed.push("target");
    }
    if original.replicas != now.replicas {
        changed.push("replicas");
    }
    if original.backend != now.backend {
        changed.push("backend");
    }
    if original.precision != now.precision {
        changed.push("precision");
    }
    if original.max_batch != now.max_batch {
        changed.push("batch");
    }
    changed
}

impl CandidateRow {
    /// The view of one planner plan; `rejected_because` from its alternative
    /// entry; `slo`: the report's latency SLO (its percentile is the one the
    /// latency column shows).
    pub fn from_plan(
        plan: &Plan,
        rejected_because: Option<String>,
        slo: Option<&LatencySlo>,
    ) -> CandidateRow {
        // A tiered plan's classes run different builds: each class's, in the
        // order of its target's classes (as its id gives them).
        // One name when every class agrees ("autotuned", not "autotuned&autotuned").
        let per_class = |f: &dyn Fn(&crate::report::ClassBuildFigures) -> &'static str| {
            let names: Vec<&str> = plan
                .device_classes
                .iter()
                .filter_map(|c| c.build.as_ref().map(f))
                .collect();
            if names.windows(2).all(|w| w[0] == w[1]) {
                names.first().copied().unwrap_or_default().to_string()
            } else {
                names.join("&")
            }
        };
        let (backend, precision) = if plan.tiered() {
            (
                per_class(&|b| b.backend.name()),
                per_class(&|b| b.precision.name()),
            )
        } else {
            (
                plan.backend.name().to_string(),
                plan.precision.name().to_string(),
            )
        };
        CandidateRow {
            label: plan.id.clone(),
            mode: plan.mode.name().to_string(),
            placement: plan.placement.name().to_string(),
            target: plan.target.clone(),
            replicas: plan.replicas,
            backend,
            precision,
            max_batch: plan.max_batch,
            max_delay_ms: plan.max_delay_ms,
            p50_ms: plan.latency_ms.p50,
            p90_ms: plan.latency_ms.p90,
            p99_ms: plan.latency_ms.p99,
            at_slo_ms: latency_at_slo(plan, slo),
            throughput_rps: plan.throughput_rps,
            cost_usd_per_month: plan.cost_usd_per_month,
            utilisation: plan.utilisation,
            failure_rate: plan.failure_rate,
            staleness_min: plan.staleness_s.map(|s| s / 60.0),
            rejected_because,
            pareto: plan.on_pareto_front,
            simulated: plan.simulated,
            device_memory_bytes: plan.device_memory_bytes,
        }
    }
}

/// A plan's latency at the SLO's percentile, as the report's headline gives
/// it ([`Plan::headline_latency`]); a figure kept under the percentile's own
/// name when the planner kept none; `None` when there is none at it.
fn latency_at_slo(plan: &Plan, slo: Option<&LatencySlo>) -> Option<f64> {
    let Some(slo) = slo else {
        return Some(plan.latency_ms.p99);
    };
    // Rejected before simulation: one lower bound for every percentile.
    if !plan.simulated {
        return Some(plan.latency_ms.p99);
    }
    if plan.slo_latency_ms.is_some() {
        return Some(plan.headline_latency(Some(slo)).1);
    }
    let l = plan.latency_ms;
    [(50.0, l.p50), (90.0, l.p90), (99.0, l.p99), (99.9, l.p999)]
        .iter()
        .find(|(q, _)| (q - slo.percentile).abs() < 1e-9)
        .map(|&(_, ms)| ms)
}

impl PlanView {
    /// Flattens the planner's report: the recommended plan first, then the
    /// alternatives in ranking order (feasible runners-up and rejected plans).
    pub fn from_report(report: &Report) -> PlanView {
        let mut candidates = Vec::with_capacity(report.alternatives.len() + 1);
        if let Some(best) = &report.recommended {
            candidates.push(CandidateRow::from_plan(best, None, report.slo.as_ref()));
        }
        candidates.extend(report.alternatives.iter().map(|alt| {
            CandidateRow::from_plan(&alt.plan, alt.rejected_because.clone(), report.slo.as_ref())
        }));
        let cdfs = report
            .latency_cdfs
            .iter()
            .map(|cdf| CdfSeries {
                label: cdf.plan_id.clone(),
                points: cdf
                    .points
                    .iter()
                    .map(|p| (p.latency_ms, p.fraction))
                    .collect(),
            })
            .collect();
        PlanView {
            scenario: report.scenario.clone(),
            recommended: report.recommended.as_ref().map(|_| 0),
            candidates,
            rationale: report.rationale.clone(),
            cdfs,
            slo: report.slo,
            quick: report.assumptions.quick,
            noisy_kernels: report
                .recommended
                .as_ref()
                .and_then(|plan| {
                    crate::report::json::MeasurementSummary::of_plan(plan, &report.kernels)
                })
                .filter(|m| m.high_variance)
                .map(|m| m.plan_kernels)
                .unwrap_or_default(),
        }
    }
}

impl PlanView {
    /// The name of the latency the candidates are judged on and shown with:
    /// the SLO's percentile ("p95", "p99.9"), "p99" without an SLO.
    pub fn latency_name(&self) -> String {
        self.slo.map_or_else(
            || "p99".to_string(),
            |s| crate::plan::evaluate::percentile_name(s.percentile),
        )
    }

    /// The SLO's latency, at the percentile every row's `at_slo_ms` is.
    pub fn slo_ms(&self) -> Option<f64> {
        self.slo.map(|s| s.latency_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::device_class;
    use crate::report::DeviceClassFigures;
    use workbench_kernels::{BackendKind, Precision};

    fn class(target: &str, variant: &str, precision: Precision) -> DeviceClassFigures {
        device_class(target, variant, BackendKind::Autotuned, precision)
    }

    /// A tiered plan's row names each class's backend and precision, once
    /// when the classes agree on it.
    #[test]
    fn a_tiered_plan_row_gives_each_class_build() {
        let report = crate::report::fixtures::sample_report();
        let mut plan = report.recommended.expect("a plan");
        plan.device_classes = vec![
            class("phone", "full", Precision::F32),
            class("watch", "distilled", Precision::Int8),
        ];
        let row = CandidateRow::from_plan(&plan, None, None);
        assert_eq!(
            (row.backend.as_str(), row.precision.as_str()),
            ("autotuned", "f32&int8")
        );
        plan.device_classes[1] = class("watch", "full", Precision::F32);
        let uniform = CandidateRow::from_plan(&plan, None, None);
        assert_eq!(uniform.backend, plan.backend.name());
    }
}
