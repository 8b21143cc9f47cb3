//! `report.md`: the serving plan for people, with the SVG pictures beside it.

use std::fmt::Write as _;

use super::format::{self, table, Align};
use super::model::{
    CompiledProgram, ConstraintCheck, Fallback, FigureSource, LatencySlo, Placement, Plan, Report,
    RooflinePoint, ServingMode,
};
use super::{CDF_SVG, PARETO_SVG, ROOFLINE_SVG};
use crate::scenario::format_bytes;
use workbench_kernels::Precision;

fn yes_no(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "NO"
    }
}

/// An achieved rate in its precision's units: int8 kernels count integer
/// ops (GOP/s), the others floating-point ones (GFLOP/s).
fn rate(giga_per_s: f64, precision: Precision) -> String {
    let text = format::gflops(giga_per_s);
    match precision {
        Precision::Int8 => text.replace("GFLOP/s", "GOP/s"),
        _ => text,
    }
}

fn latency_label(plan: &Plan) -> &'static str {
    match plan.latency_source {
        FigureSource::Measured => "simulated; compute measured",
        FigureSource::Projected => "simulated; compute projected",
    }
}

/// How often a plan's batch job runs and how long a run takes, e.g. "a run
/// every 24.0 h, each taking 3.2 min on each device (30.4 runs a month)".
fn job_schedule(plan: &Plan) -> Option<String> {
    let job = plan.batch_job?;
    let on = match (plan.placement, job.instances) {
        (Placement::Cloud, 1) => " on 1 instance".to_string(),
        (Placement::Cloud, n) => format!(" on {n} instances"),
        _ => " on each device".to_string(),
    };
    Some(format!(
        "a run every {}, each taking {}{on} ({:.1} runs a month)",
        format::age_s(job.every_s),
        format::age_s(job.run_s),
        job.runs_per_month
    ))
}

/// What a hybrid plan's cloud fallback runs, and on how many replicas:
/// "aws-c7g.xlarge x 2 replicas: model `cloud`, tiled f32, for the requests
/// the device defers".
fn fallback_text(plan: &Plan, fallback: &Fallback) -> String {
    format!(
        "{} x {}: model `{}`, {} {}, for the requests the device defers",
        fallback.target,
        format::count(plan.replicas, "replica"),
        fallback.model_variant,
        fallback.backend,
        fallback.precision
    )
}

/// The dynamic batching row: a batch is of requests, and a request asks
/// `predictions_per_request` predictions (`None`: not known, older reports).
fn batching(plan: &Plan, predictions_per_request: Option<u64>) -> String {
    let per = predictions_per_request.filter(|&per| per > 1);
    let n = |count: f64| format::thousands(count);
    match (plan.max_batch, per) {
        (0 | 1, None) => "none (batch 1)".to_string(),
        (0 | 1, Some(per)) => format!(
            "none (one request of {} predictions at a time)",
            n(per as f64)
        ),
        (requests, None) => format!(
            "up to {requests} requests, wait at most {}",
            format::ms(plan.max_delay_ms)
        ),
        (requests, Some(per)) => format!(
            "up to {requests} requests of {} predictions each ({} predictions), wait at most {}",
            n(per as f64),
            n(f64::from(requests) * per as f64),
            format::ms(plan.max_delay_ms)
        ),
    }
}

fn headline(plan: &Plan) -> String {
    // On devices a plan runs on each user's own device: no replica count.
    let on = if plan.placement == crate::scenario::Placement::Edge {
        plan.target.clone()
    } else if let Some(fallback) = &plan.fallback {
        // The replicas are the cloud fallback's, not the devices'.
        let device = plan
            .target
            .strip_suffix(&format!(" + {}", fallback.target))
            .unwrap_or(&plan.target);
        format!(
            "{device} + {} x {} (cloud fallback)",
            plan.replicas, fallback.target
        )
    } else {
        format!("{} x {}", plan.replicas, plan.target)
    };
    if plan.tiered() {
        return format!(
            "**{}** in the **{}** on **{}**, a build per device class: {}",
            plan.mode,
            plan.placement,
            on,
            plan.build_text()
        );
    }
    format!(
        "**{}** in the **{}** on **{}**, {} {}, model `{}`",
        plan.mode, plan.placement, on, plan.backend, plan.precision, plan.model_variant
    )
}

/// "p99", or "p95" and the like when the SLO is at another percentile.
fn slo_percentile_name(slo: Option<&LatencySlo>) -> String {
    slo.map_or_else(
        || "p99".to_string(),
        |s| crate::plan::evaluate::percentile_name(s.percentile),
    )
}

/// A fleet plan's device classes: each class's share of the requests,
/// what its users see at the median and at the SLO's percentile, and what
/// its devices run.
fn device_classes_table(out: &mut String, plan: &Plan, slo: Option<&LatencySlo>) {
    if plan.device_classes.is_empty() {
        return;
    }
    out.push_str("Device classes (one fleet, each class serving its own users):\n\n");
    let at_slo = slo_percentile_name(slo);
    let rows: Vec<Vec<String>> = plan
        .device_classes
        .iter()
        .map(|c| {
            // Files written before the class's SLO figure was kept: p99.
            let tail = match (c.slo_latency_ms, slo) {
                (Some(ms), Some(_)) => format::ms(ms),
                (None, Some(_)) => "-".to_string(),
                _ => format::ms(c.latency_ms.p99),
            };
            let build = c.build.as_ref().map_or_else(
                || "-".to_string(),
                |b| format!("`{}` {} {}", b.model_variant, b.backend, b.precision),
            );
            vec![
                c.target.clone(),
                format::thousands(c.devices as f64),
                format::percent(c.traffic_share, 1),
                build,
                format::ms(c.latency_ms.p50),
                tail,
                format::watts(c.average_power_w),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            ("Class", Align::Left),
            ("Devices", Align::Right),
            ("Share of requests", Align::Right),
            ("Runs", Align::Left),
            ("p50", Align::Right),
            (at_slo.as_str(), Align::Right),
            ("Average power", Align::Right),
        ],
        &rows,
    ));
    out.push('\n');
}

/// Every plan of the report: recommended first, then alternatives, with
/// whether it is feasible and its rejection reason.
fn all_plans(report: &Report) -> Vec<(&Plan, bool, Option<&str>)> {
    let mut plans: Vec<(&Plan, bool, Option<&str>)> = Vec::new();
    if let Some(plan) = &report.recommended {
        plans.push((plan, true, None));
    }
    for alt in &report.alternatives {
        plans.push((
            &alt.plan,
            alt.rejected_because.is_none(),
            alt.rejected_because.as_deref(),
        ));
    }
    plans
}

/// A latency cell of a plan none of whose requests completed.
const ALL_FAILED: &str = "all failed";

fn plan_row(plan: &Plan, recommended: bool) -> Vec<String> {
    let marker = if recommended { " (recommended)" } else { "" };
    // A plan rejected before simulation has no p99 or cost: its latency is
    // the compute time alone, a lower bound.
    // Its instances' cost is a lower bound too, when it has instances.
    let (p99, cost, cost_per_million) = if plan.nothing_completed() {
        (
            ALL_FAILED.to_string(),
            format::usd(plan.cost_usd_per_month),
            "-".to_string(),
        )
    } else if plan.simulated {
        (
            format::ms(plan.latency_ms.p99),
            format::usd(plan.cost_usd_per_month),
            format::usd_small(plan.cost_usd_per_million),
        )
    } else {
        let bound = |x: f64, text: String| {
            if x > 0.0 {
                format!("≥ {text}")
            } else {
                "-".to_string()
            }
        };
        (
            bound(plan.latency_ms.p99, format::ms(plan.latency_ms.p99)),
            bound(
                plan.cost_usd_per_month,
                format::usd(plan.cost_usd_per_month),
            ),
            "-".to_string(),
        )
    };
    vec![
        format!("`{}`{marker}", plan.id),
        p99,
        cost,
        cost_per_million,
        format::agreement(plan.accuracy_agreement, 2),
        plan.latency_source.to_string(),
    ]
}

const PLAN_HEADERS: [(&str, Align); 6] = [
    ("Plan", Align::Left),
    ("p99", Align::Right),
    ("Cost/month", Align::Right),
    ("Cost/1M pred.", Align::Right),
    ("Agreement", Align::Right),
    ("Latency figure", Align::Left),
];

/// A confidence interval in milliseconds: "80.2-86.0 ms", the unit once
/// when both ends print in it; one too narrow for its ends to print apart
/// as its middle and half-width ("0.133 ms ±0.09%", not "0.13-0.13 ms").
fn interval_ms([low, high]: [f64; 2]) -> String {
    let (low_text, high_text) = (format::ms(low), format::ms(high));
    let middle = (low + high) / 2.0;
    if low_text == high_text && high > low && middle > 0.0 {
        let half_pct = (high - low) / 2.0 / middle * 100.0;
        return format!("{} ±{}%", format::ms(middle), one_figure(half_pct));
    }
    let (low, high) = (low_text, high_text);
    match (low.strip_suffix(" ms"), high.ends_with(" ms")) {
        (Some(number), true) => format!("{number}-{high}"),
        _ => format!("{low} to {high}"),
    }
}

/// A small positive figure to one significant figure ("0.2", "0.04"), whole
/// from 1 ("3").
fn one_figure(value: f64) -> String {
    if value >= 1.0 || value <= 0.0 || !value.is_finite() {
        return format!("{value:.0}");
    }
    let decimals = (-value.log10().floor()).clamp(1.0, 12.0) as usize;
    format!("{value:.decimals$}")
}

fn section_summary(out: &mut String, report: &Report) {
    let plans = all_plans(report);
    let feasible = plans.iter().filter(|(_, ok, _)| *ok).count();
    let on_front = plans.iter().filter(|(p, _, _)| p.on_pareto_front).count();
    out.push_str("## Summary\n\n");
    match (&report.recommended, report.feasible) {
        (Some(plan), true) => {
            let _ = writeln!(out, "- Recommended: {}.", headline(plan));
            let (at, ms) = plan.headline_latency(report.slo.as_ref());
            // The simulation's uncertainty, where the figure is the SLO's.
            let interval = plan
                .slo_latency_ci_ms
                .filter(|_| report.slo.is_some() && plan.slo_latency_ms.is_some())
                .map_or(String::new(), |ci| format!("95% CI {}, ", interval_ms(ci)));
            let _ = writeln!(
                out,
                "- {at} latency {} ({interval}{}), {} per month ({} per million predictions), {} agreement with the reference model at f32.",
                format::ms(ms),
                latency_label(plan),
                format::usd(plan.cost_usd_per_month),
                format::usd_small(plan.cost_usd_per_million),
                format::agreement(plan.accuracy_agreement, 2)
            );
        }
        (Some(plan), false) => {
            let _ = writeln!(
                out,
                "- **No plan meets every constraint.** Closest: {}.",
                headline(plan)
            );
        }
        (None, _) => out.push_str("- **No plan meets every constraint.**\n"),
    }
    let _ = writeln!(
        out,
        "- {} plans evaluated: {} feasible, {} rejected, {} on the Pareto front (cost, p99 latency, accuracy loss).",
        plans.len(),
        feasible,
        plans.len() - feasible,
        on_front
    );
    // What could make the answer above read differently on another run.
    let noisy = report
        .recommended
        .as_ref()
        .and_then(|plan| super::json::MeasurementSummary::of_plan(plan, &report.kernels))
        .filter(|m| m.high_variance);
    if let Some(m) = noisy {
        let _ = writeln!(
            out,
            "- **Timed on a busy machine:** the timings this plan rests on ({}) spread more than 10% even when measured again, so its latency and instance count may read high and the choice among close plans may differ on a quieter machine (`--fresh` times them anew).",
            m.plan_kernels
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if report.assumptions.quick {
        out.push_str("- **A quick run** (`--quick`): shorter measurements and simulations over a smaller search space; a full run may recommend another plan.\n");
    }
    out.push('\n');
}

fn section_baseline(out: &mut String, report: &Report) {
    let Some(comparison) = &report.baseline else {
        return;
    };
    out.push_str("## Against the baseline\n\n");
    let failing = comparison.findings.iter().filter(|f| f.fails()).count();
    let _ = writeln!(
        out,
        "Baseline `{}`, tolerance {}: {}.\n",
        comparison.baseline,
        format::percent(comparison.tolerance, 1),
        if failing == 0 {
            "no regression".to_string()
        } else {
            format!("**{failing} regression(s)**")
        }
    );
    for finding in &comparison.findings {
        let tag = if finding.fails() {
            "FAIL"
        } else if finding.qualifies_comparison() {
            "note"
        } else {
            "changed"
        };
        let _ = writeln!(out, "- {tag}: {}", finding.describe());
    }
    if comparison.findings.is_empty() {
        out.push_str("- the recommended plan is unchanged\n");
    }
    out.push('\n');
}

fn section_recommended(
    out: &mut String,
    plan: &Plan,
    slo: Option<&LatencySlo>,
    predictions_per_request: Option<u64>,
) {
    out.push_str("## Recommended plan\n\n");
    let source = latency_label(plan);
    let l = plan.latency_ms;
    let mut rows = vec![
        vec!["Plan".to_string(), format!("`{}`", plan.id)],
        vec!["Mode".to_string(), plan.mode.to_string()],
        vec!["Placement".to_string(), plan.placement.to_string()],
        vec!["Target".to_string(), plan.target.clone()],
        // A hybrid plan's replicas are its cloud fallback's (the devices
        // are the users' own).
        vec![
            if plan.fallback.is_some() {
                "Replicas (cloud fallback)".to_string()
            } else {
                "Replicas".to_string()
            },
            plan.replicas.to_string(),
        ],
    ];
    if plan.tiered() {
        rows.push(vec![
            "Builds (one per device class)".to_string(),
            plan.build_text(),
        ]);
    } else {
        // With a cloud fallback these are the device's; the fallback's own
        // row follows.
        let on_device = if plan.fallback.is_some() {
            " (device)"
        } else {
            ""
        };
        rows.extend([
            vec![
                format!("Model variant{on_device}"),
                plan.model_variant.clone(),
            ],
            vec![format!("Backend{on_device}"), plan.backend.to_string()],
            vec![format!("Precision{on_device}"), plan.precision.to_string()],
        ]);
    }
    if let Some(fallback) = &plan.fallback {
        rows.push(vec![
            "Cloud fallback".to_string(),
            fallback_text(plan, fallback),
        ]);
    }
    rows.extend([
        if plan.mode == ServingMode::Batch {
            vec![
                "Batch job".to_string(),
                format!(
                    // The batch is of predictions: an input asks `predictions_per_request`.
                    "precomputes the predictions {} at a time{}; requests read the stored ones",
                    plan.max_batch,
                    job_schedule(plan)
                        .map(|s| format!(", {s}"))
                        .unwrap_or_default()
                ),
            ]
        } else if plan.fallback.is_some() {
            // The device answers one request at a time; the batching is the cloud's.
            vec![
                "Dynamic batching (cloud fallback)".to_string(),
                batching(plan, predictions_per_request),
            ]
        } else {
            vec![
                "Dynamic batching".to_string(),
                batching(plan, predictions_per_request),
            ]
        },
        vec![
            "Latency p50 / p90 / p99 / p99.9".to_string(),
            format!(
                "{} / {} / {} / {} ({source})",
                format::ms(l.p50),
                format::ms(l.p90),
                format::ms(l.p99),
                format::ms(l.p999)
            ),
        ],
        vec!["Throughput".to_string(), format::rps(plan.throughput_rps)],
        vec![
            "Cost".to_string(),
            format!(
                "{}/month, {} per million predictions",
                format::usd(plan.cost_usd_per_month),
                format::usd_small(plan.cost_usd_per_million)
            ),
        ],
        vec![
            "Accuracy agreement with f32".to_string(),
            format::agreement(plan.accuracy_agreement, 2),
        ],
        vec![
            "Utilisation".to_string(),
            if plan.mode == ServingMode::Batch {
                "none serve requests (answered from storage)".to_string()
            } else {
                format::percent(plan.utilisation, 0)
            },
        ],
        vec![
            "Failed or dropped requests".to_string(),
            format::percent(plan.failure_rate, 2),
        ],
    ]);
    if let Some(lag) = plan.consumer_lag {
        rows.push(vec![
            "Consumer lag".to_string(),
            format!(
                "{} waiting on average (at most {}); a message waits {} on average before it is processed",
                format::thousands(lag.mean_messages.round()),
                format::thousands(lag.max_messages as f64),
                format::ms(lag.mean_wait_ms)
            ),
        ]);
    }
    if let Some(staleness) = plan.staleness_s {
        let oldest = plan
            .batch_job
            .map(|job| {
                format!(
                    " on average, at most {}",
                    format::age_s(job.max_staleness_s)
                )
            })
            .unwrap_or_default();
        rows.push(vec![
            "Staleness of precomputed predictions".to_string(),
            format!("{}{oldest}", format::age_s(staleness)),
        ]);
    }
    if let (false, Some(schedule)) = (plan.mode == ServingMode::Batch, job_schedule(plan)) {
        rows.push(vec!["Batch job (precomputed inputs)".to_string(), schedule]);
    }
    if let Some(energy) = plan.energy_mj_per_prediction {
        rows.push(vec![
            "Energy per prediction (device)".to_string(),
            format!("{energy:.2} mJ"),
        ]);
    }
    if let Some(bytes) = plan.device_memory_bytes {
        rows.push(vec![
            "Memory on the device (weights + activations)".to_string(),
            crate::scenario::format_bytes(bytes as f64),
        ]);
    }
    out.push_str(&table(&[("", Align::Left), ("", Align::Left)], &rows));
    out.push('\n');
    device_classes_table(out, plan, slo);
    if !plan.cost_breakdown.is_empty() {
        out.push_str("Cost breakdown:\n\n");
        let mut rows: Vec<Vec<String>> = plan
            .cost_breakdown
            .iter()
            .map(|line| vec![line.item.clone(), format::usd(line.usd_per_month)])
            .collect();
        rows.push(vec![
            "**total**".to_string(),
            format!("**{}**", format::usd(plan.cost_usd_per_month)),
        ]);
        out.push_str(&table(
            &[("Item", Align::Left), ("USD/month", Align::Right)],
            &rows,
        ));
        out.push('\n');
    }
}

fn section_list(out: &mut String, title: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(out, "## {title}\n");
    for item in items {
        let _ = writeln!(out, "- {item}");
    }
    out.push('\n');
}

/// A constraint's "met" cell: a row the plan's simulation would have
/// checked, for a plan rejected before it, is "not simulated" (its figure is
/// a lower bound, or none), not a pass.
fn met_cell(check: &ConstraintCheck) -> &'static str {
    if check.checked {
        yes_no(check.ok)
    } else {
        "not simulated"
    }
}

fn section_constraints(out: &mut String, report: &Report) {
    if report.constraints.is_empty() {
        return;
    }
    out.push_str("## Constraints\n\n");
    let rows: Vec<Vec<String>> = report
        .constraints
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.required.clone(),
                c.achieved.clone(),
                met_cell(c).to_string(),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            ("Constraint", Align::Left),
            ("Required", Align::Left),
            ("Achieved", Align::Left),
            ("Met", Align::Left),
        ],
        &rows,
    ));
    out.push('\n');
    if report.constraints.iter().any(|c| !c.checked) {
        out.push_str(
            "The constraints are checked against the closest plan, which was rejected \
             before the simulation: its latency is the compute time alone and its cost \
             the instances alone, lower bounds that can show a miss but not a pass.\n\n",
        );
    }
}

fn section_sensitivity(out: &mut String, report: &Report) {
    if report.sensitivity.is_empty() {
        return;
    }
    out.push_str("## Sensitivity\n\n");
    for line in &report.sensitivity {
        let _ = writeln!(out, "- **{}**: {}", line.parameter, line.summary);
    }
    out.push('\n');
}

fn section_pareto(out: &mut String, report: &Report) {
    out.push_str("## Pareto front\n\n");
    let _ = writeln!(
        out,
        "![Cost per month vs p99 latency of every plan]({PARETO_SVG})\n"
    );
    let rows: Vec<Vec<String>> = all_plans(report)
        .into_iter()
        .enumerate()
        .filter(|(_, (plan, _, _))| plan.on_pareto_front)
        .map(|(i, (plan, feasible, _))| {
            let mut row = plan_row(plan, i == 0 && report.recommended.is_some());
            row.push(yes_no(feasible).to_string());
            row
        })
        .collect();
    if rows.is_empty() {
        out.push_str("No plan is on the Pareto front.\n\n");
        return;
    }
    let mut headers = PLAN_HEADERS.to_vec();
    headers.push(("Feasible", Align::Left));
    out.push_str(&table(&headers, &rows));
    out.push('\n');
}

fn section_alternatives(out: &mut String, report: &Report) {
    let feasible: Vec<Vec<String>> = report
        .alternatives
        .iter()
        .filter(|a| a.rejected_because.is_none())
        .map(|a| plan_row(&a.plan, false))
        .collect();
    if !feasible.is_empty() {
        out.push_str("## Feasible alternatives (ranked)\n\n");
        out.push_str(&table(&PLAN_HEADERS, &feasible));
        out.push('\n');
    }
    let rejected: Vec<Vec<String>> = report
        .alternatives
        .iter()
        .filter_map(|a| {
            a.rejected_because.as_ref().map(|reason| {
                let mut row = plan_row(&a.plan, false);
                row.push(reason.clone());
                row
            })
        })
        .collect();
    if !rejected.is_empty() {
        out.push_str("## Rejected plans\n\n");
        let mut headers = PLAN_HEADERS.to_vec();
        headers.push(("Rejected because", Align::Left));
        out.push_str(&table(&headers, &rejected));
        out.push('\n');
        if report.alternatives.iter().any(|a| !a.plan.simulated) {
            out.push_str(
                "Plans marked \"not simulated\" were rejected before the simulation: \
                 their p99 (≥) is the compute time alone and their cost (≥) their \
                 instances' alone.\n\n",
            );
        }
    }
}

fn section_latency(out: &mut String, report: &Report) {
    out.push_str("## Simulated latency\n\n");
    let _ = writeln!(out, "![Latency CDF of the top plans]({CDF_SVG})\n");
    let plans = all_plans(report);
    let shown: Vec<&Plan> = plans
        .iter()
        .map(|(plan, _, _)| *plan)
        .filter(|plan| {
            report.recommended.as_ref().is_some_and(|r| r.id == plan.id)
                || report.latency_cdfs.iter().any(|c| c.plan_id == plan.id)
        })
        .collect();
    let rejected = |plan: &Plan| {
        report
            .alternatives
            .iter()
            .any(|a| a.plan.id == plan.id && a.rejected_because.is_some())
    };
    let rows: Vec<Vec<String>> = shown
        .iter()
        .map(|plan| {
            let marker = if rejected(plan) { " (infeasible)" } else { "" };
            let l = &plan.latency_ms;
            let cell = |ms: f64| {
                if plan.nothing_completed() {
                    ALL_FAILED.to_string()
                } else {
                    format::ms(ms)
                }
            };
            vec![
                format!("`{}`{marker}", plan.id),
                cell(l.p50),
                cell(l.p90),
                cell(l.p99),
                cell(l.p999),
                latency_label(plan).to_string(),
            ]
        })
        .collect();
    if rows.is_empty() {
        let simulated = plans.iter().filter(|(plan, _, _)| plan.simulated).count();
        if simulated == 0 {
            out.push_str("No latency was simulated.\n\n");
        } else {
            let _ = writeln!(
                out,
                "This report keeps no latency distribution; {simulated} plan(s) were simulated (their p99 is in the tables above).\n"
            );
        }
        return;
    }
    if shown.iter().any(|plan| rejected(plan)) {
        let slo = report.slo.map_or_else(String::new, |slo| {
            format!(
                " against the SLO ({} ≤ {})",
                crate::plan::evaluate::percentile_name(slo.percentile),
                format::ms(slo.latency_ms)
            )
        });
        let _ = writeln!(
            out,
            "No plan meets every constraint: the closest simulated plans{slo}, each infeasible for the reason given in the rejected plans above.\n"
        );
    }
    out.push_str(&table(
        &[
            ("Plan", Align::Left),
            ("p50", Align::Right),
            ("p90", Align::Right),
            ("p99", Align::Right),
            ("p99.9", Align::Right),
            ("Figure", Align::Left),
        ],
        &rows,
    ));
    out.push('\n');
}

/// Marks a kernel figure taken with fewer samples than usual.
pub const REDUCED_MARK: &str = "†";
/// Marks a kernel whose timings spread too much (see
/// [`KernelMeasurement::high_variance`](super::model::KernelMeasurement)).
pub const NOISY_MARK: &str = "‡";

fn section_kernels(out: &mut String, report: &Report) {
    out.push_str("## Kernel measurements\n\n");
    if report.kernels.is_empty() {
        out.push_str("No kernels were measured.\n\n");
        return;
    }
    let rows: Vec<Vec<String>> = report
        .kernels
        .iter()
        .map(|k| {
            vec![
                k.workload.clone(),
                k.backend.to_string(),
                k.precision.to_string(),
                k.batch.to_string(),
                {
                    let mut median = format::duration_ns(k.median_ns);
                    for (flagged, mark) in
                        [(k.reduced, REDUCED_MARK), (k.high_variance, NOISY_MARK)]
                    {
                        if flagged {
                            median.push(' ');
                            median.push_str(mark);
                        }
                    }
                    median
                },
                format::duration_ns(k.p90_ns),
                format::duration_ns(k.p99_ns),
                rate(k.gflops, k.precision),
                of_peak(k.fraction_of_peak),
                format::recorded_bytes(k.activation_bytes),
                format!(
                    "{} {} {}",
                    k.source,
                    match k.source {
                        FigureSource::Measured => "on",
                        FigureSource::Projected => "to",
                    },
                    k.target
                ),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            ("Workload", Align::Left),
            ("Backend", Align::Left),
            ("Precision", Align::Left),
            ("Batch", Align::Right),
            ("Median", Align::Right),
            ("p90", Align::Right),
            ("p99", Align::Right),
            ("Achieved", Align::Right),
            ("Of peak", Align::Right),
            ("Activations", Align::Right),
            ("Figure", Align::Left),
        ],
        &rows,
    ));
    out.push('\n');
    if report.kernels.iter().any(|k| k.activation_bytes.is_some()) {
        out.push_str(
            "Activations: the memory the compiled model held for its activations at \
             that batch, measured after its timed runs (weights not included; buffers \
             never live at once share memory), the same on any target it runs on.\n\n",
        );
    }
    if report.kernels.iter().any(|k| k.reduced) {
        out.push_str(&format!(
            "{REDUCED_MARK} Measured with fewer samples than usual (one call is slow for the measurement budget), or projected from such a measurement: treat with care.\n\n"
        ));
    }
    if report.kernels.iter().any(|k| k.high_variance) {
        out.push_str(&format!(
            "{NOISY_MARK} Its timings spread more than 10% (coefficient of variation) even when measured again: the machine was busy while it ran, so its median and tail may read high, and so may the plans built on it. Run again on a quieter machine (`--fresh` times it anew).\n\n"
        ));
    }
    if report.kernels.iter().any(|k| k.fraction_of_peak == 0.0) {
        out.push_str(
            "Of peak \"-\": no peak is known for the machine the figure is for (a \
             target given by its `speed_factor` states none), so no fraction of it.\n\n",
        );
    }
    if report.kernels.iter().any(|k| k.fraction_of_peak > 1.0) {
        out.push_str(
            "Achieved rates count every multiply-add of the model, so a rate above \
             peak means the kernel did less work than that: dense layers after a ReLU \
             skip the products of their input's zeros.\n\n",
        );
    }
}

/// A kernel's achieved rate over its machine's peak, "-" when the machine
/// states no peak (a target given by its speed factor alone: its fraction is
/// written as 0, which read "0.0%" as if the kernel did nothing).
fn of_peak(fraction: f64) -> String {
    if fraction == 0.0 {
        "-".to_string()
    } else {
        format::percent(fraction, 1)
    }
}

/// Ops shown in the projection table (the longest on the target).
const PROJECTED_OPS_SHOWN: usize = 10;

fn section_projection(out: &mut String, report: &Report) {
    let Some(p) = &report.projection else {
        return;
    };
    out.push_str(
        "## How the compute time was projected

",
    );
    let ops = p.ops.len();
    let split = p.ops.iter().filter(|o| o.cores_used > 1).count();
    let cached = p
        .ops
        .iter()
        .filter(|o| o.in_target_cache && o.weights_in_target_cache)
        .count();
    let _ = writeln!(
        out,
        "`{}` {} {} at batch {} took {} here (one core) and is projected at {} on {} \
         ({} vCPUs). It runs {ops} steps (ops the backend fuses are one step): {split} split \
         over all the target's cores, the rest stay on one (the backend runs them on one \
         thread, or splitting them would cost more than it saves); {cached} read everything from its cache (a step's weights stay there \
         when the whole model's weights fit, its activations when they fit), the rest some of \
         it from its memory.\n",
        p.model_variant,
        p.backend,
        p.precision,
        p.batch,
        format::duration_ns(p.measured_ns),
        format::duration_ns(p.projected_ns),
        p.target,
        p.target_cores,
    );
    let mut shown: Vec<&super::ProjectedOp> = p.ops.iter().collect();
    shown.sort_by(|a, b| b.projected_ns.total_cmp(&a.projected_ns));
    let rows: Vec<Vec<String>> = shown
        .iter()
        .take(PROJECTED_OPS_SHOWN)
        .map(|o| {
            vec![
                format!("`{}`", o.name),
                o.kind.clone(),
                format::duration_ns(o.local_ns),
                format::duration_ns(o.projected_ns),
                o.cores_used.to_string(),
                match (o.weights_in_target_cache, o.in_target_cache) {
                    (true, true) => "cache",
                    (false, true) => "weights from memory",
                    (true, false) => "activations from memory",
                    (false, false) => "memory",
                }
                .to_string(),
            ]
        })
        .collect();
    let on_target = format!("On {}", p.target);
    out.push_str(&table(
        &[
            ("Step", Align::Left),
            ("Kind", Align::Left),
            ("Here", Align::Right),
            (on_target.as_str(), Align::Right),
            ("Cores", Align::Right),
            ("Reads from", Align::Left),
        ],
        &rows,
    ));
    if ops > PROJECTED_OPS_SHOWN {
        let _ = writeln!(
            out,
            "\nThe {PROJECTED_OPS_SHOWN} longest of {ops} steps on the target; `kernels.csv` has every measurement."
        );
    }
    out.push('\n');
}

/// What the compiler made of the recommended plan's builds, each folded
/// under its name (a 12-layer encoder prints some 200 lines).
fn section_programs(out: &mut String, report: &Report) {
    let Some(plan) = &report.recommended else {
        return;
    };
    out.push_str("## Compiled program\n\n");
    if report.programs.is_empty() {
        let _ = writeln!(
            out,
            "The program of `{}` {} {} was not recorded: its timings were cached before \
             programs were kept (`workbench run --fresh` compiles and times it again).\n",
            plan.model_variant, plan.backend, plan.precision
        );
        return;
    }
    out.push_str(
        "What the compiler made of the model, as compiled on this machine when it was \
         timed. In a fused, tiled or autotuned program each line is one step: `+` joins \
         the graph ops it computes in one pass (a bias and activation in a matmul's \
         epilogue, an elementwise chain in one loop, the softmax in the attention \
         scores' step), `|` the matmuls sharing an input run as one wider one, `%n` is a \
         buffer (buffers never live at once share memory). The naive reference lists \
         the graph's ops one by one, the quantized backend each op and how it runs \
         (int8, f16 or bf16, its scales, what it is fused into).\n\n",
    );
    for program in &report.programs {
        let steps = program
            .steps_summary()
            .map(|s| format!(": {s}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<details><summary><code>{}</code> {} {}{}{steps}</summary>\n",
            html_text(&program.model_variant),
            program.backend,
            program.precision,
            html_text(&runs_on(plan, program)),
        );
        let fence = "`".repeat(longest_backtick_run(&program.text).max(2) + 1);
        let _ = writeln!(out, "{fence}text\n{}\n{fence}\n", program.text.trim_end());
        out.push_str("</details>\n\n");
    }
}

/// Where `plan` runs `program`'s build: ", on <target>" (its fallback's
/// "<target> (fallback)"), every place in turn.
fn runs_on(plan: &Plan, program: &CompiledProgram) -> String {
    let is = |variant: &str, backend, precision| program.is_build(variant, backend, precision);
    let mut places: Vec<String> = Vec::new();
    let mut add = |place: String| {
        if !places.contains(&place) {
            places.push(place);
        }
    };
    if plan.device_classes.iter().all(|c| c.build.is_none())
        && is(&plan.model_variant, plan.backend, plan.precision)
    {
        add(plan.target.clone());
    }
    for class in &plan.device_classes {
        if let Some(b) = &class.build {
            if is(&b.model_variant, b.backend, b.precision) {
                add(class.target.clone());
            }
        }
    }
    if let Some(f) = &plan.fallback {
        if is(&f.model_variant, f.backend, f.precision) {
            add(format!("{} (fallback)", f.target));
        }
    }
    if places.is_empty() {
        String::new()
    } else {
        format!(", on {}", places.join(", "))
    }
}

/// `text` safe inside HTML.
fn html_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The longest run of backticks in `text`: a code fence must be longer.
fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

fn section_roofline(out: &mut String, report: &Report) {
    let roof = &report.roofline;
    out.push_str("## Roofline\n\n");
    let _ = writeln!(
        out,
        "![Roofline of {} with the measured kernels]({ROOFLINE_SVG})\n",
        roof.machine
    );
    // Each kernel is held to its own precision's roof: int8 ops to the int8 peak.
    let precision_of = |p: &RooflinePoint| p.precision;
    let has_int8 = roof
        .points
        .iter()
        .any(|p| precision_of(p) == Precision::Int8);
    let int8_roof = has_int8
        .then(|| report.compute_roof(Precision::Int8))
        .flatten();
    let _ = write!(
        out,
        "- Machine: {}; compute roof {} (f32, also for f16 and bf16, computed in f32)",
        roof.machine,
        format::gflops(roof.peak_gflops)
    );
    match int8_roof {
        Some(peak) => {
            let _ = writeln!(out, "; int8 roof {}.", rate(peak, Precision::Int8));
        }
        None => out.push_str(".\n"),
    }
    for bw in &roof.bandwidths {
        let ridge = if bw.gb_per_s > 0.0 {
            let f32_ridge = format!("{:.1} FLOP/byte", roof.peak_gflops / bw.gb_per_s);
            match int8_roof {
                Some(peak) => format!("{f32_ridge} (int8: {:.1} ops/byte)", peak / bw.gb_per_s),
                None => f32_ridge,
            }
        } else {
            "n/a".to_string()
        };
        let _ = writeln!(
            out,
            "- {} bandwidth {:.1} GB/s; ridge point {ridge}.",
            bw.name, bw.gb_per_s
        );
    }
    out.push('\n');
    if roof.points.is_empty() {
        return;
    }
    // Each kernel is held to the roof of the memory level its working set
    // fits (a cache-resident kernel is not held to DRAM's).
    let mut over_roof = Vec::new();
    let rows: Vec<Vec<String>> = roof
        .points
        .iter()
        .map(|p| {
            let (bound, of_roof) = match report.attainable(p) {
                Some(attainable) => {
                    let fraction = p.achieved_gflops / attainable.giga_per_s;
                    // Over the roof as printed (100.0% is on it).
                    if (fraction * 1e3).round() > 1e3 {
                        over_roof.push((p.label.as_str(), attainable.bound().to_string()));
                    }
                    (attainable.bound().to_string(), format::percent(fraction, 1))
                }
                // No roof known for its precision: nothing to hold it to.
                None => ("n/a".to_string(), "n/a".to_string()),
            };
            vec![
                p.label.clone(),
                format!("{:.2}", p.arithmetic_intensity),
                rate(p.achieved_gflops, precision_of(p)),
                p.working_set_bytes
                    .map_or_else(|| "-".to_string(), |b| format_bytes(b as f64)),
                p.memory_level.clone().unwrap_or_else(|| "-".to_string()),
                bound,
                of_roof,
                p.source.to_string(),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            ("Kernel", Align::Left),
            ("FLOP/byte", Align::Right),
            ("Achieved", Align::Right),
            ("Working set", Align::Right),
            ("Fits in", Align::Left),
            ("Bound", Align::Left),
            ("Of roof", Align::Right),
            ("Figure", Align::Left),
        ],
        &rows,
    ));
    out.push('\n');
    if roof.points.iter().any(|p| p.memory_level.is_some()) {
        out.push_str(
            "Each kernel is held to the bandwidth of the memory level its working set fits \
             (every weight plus the largest step's activations): intensity x that bandwidth, \
             or the compute roof of its precision when that is lower; \"Bound\" names the \
             one that binds.\n\n",
        );
    }
    if !over_roof.is_empty() {
        let names: Vec<String> = over_roof
            .iter()
            .map(|(label, bound)| format!("{label} ({bound})"))
            .collect();
        let _ = write!(
            out,
            "Above its roof: {}. The measured run beat the roof it is held to, which \
             is the best of short probes on a shared machine",
            names.join(", ")
        );
        if over_roof.iter().any(|(_, bound)| bound != "compute") {
            out.push_str(
                "; a call's smaller tensors may also stream from a faster level than \
                 its whole working set fits",
            );
        }
        if over_roof.iter().any(|(_, bound)| bound == "compute") {
            out.push_str("; a kernel may also skip work its rate counts (zeros after a ReLU)");
        }
        out.push_str(". Read the excess as the roof being low, not as headroom.\n\n");
    }
    if has_int8 {
        out.push_str(
            "int8 kernels count integer ops (a multiply-add as 2) per byte and per second \
             (GOP/s), and are held to the int8 roof, as in the kernel table.\n\n",
        );
    }
}

fn section_assumptions(out: &mut String, report: &Report) {
    let a = &report.assumptions;
    out.push_str("## Assumptions\n\n");
    let _ = writeln!(out, "- Hardware fingerprint: `{}`", a.hardware_fingerprint);
    let _ = writeln!(out, "- CPU: {}", a.cpu);
    let _ = writeln!(out, "- Seed: {}", a.seed);
    let _ = writeln!(out, "- workbench version: {}", a.tool_version);
    for item in &a.measured {
        let _ = writeln!(out, "- Measured: {item}");
    }
    for item in &a.projected {
        let _ = writeln!(out, "- Projected: {item}");
    }
    for item in &a.notes {
        let _ = writeln!(out, "- {item}");
    }
    // The only line that differs between two runs with the same inputs.
    let _ = writeln!(
        out,
        "- Generated at: {}",
        a.generated_at.replace(['\n', '\r'], " ")
    );
}

/// Render `report.md`. Pictures are linked by relative path (`pareto.svg`,
/// `latency-cdf.svg`, `roofline.svg`), written beside it by `write_report`.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Serving plan: {}\n", report.scenario);
    if !report.description.is_empty() {
        let _ = writeln!(out, "> {}\n", report.description.replace('\n', " "));
    }
    section_summary(&mut out, report);
    section_baseline(&mut out, report);
    if let Some(plan) = &report.recommended {
        section_recommended(
            &mut out,
            plan,
            report.slo.as_ref(),
            report.predictions_per_request,
        );
    }
    section_list(&mut out, "Rationale", &report.rationale);
    section_constraints(&mut out, report);
    section_sensitivity(&mut out, report);
    section_pareto(&mut out, report);
    section_alternatives(&mut out, report);
    section_latency(&mut out, report);
    section_kernels(&mut out, report);
    section_projection(&mut out, report);
    section_programs(&mut out, report);
    section_roofline(&mut out, report);
    section_assumptions(&mut out, report);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::roofline::{LevelBandwidth, Roofline as Machine};
    use crate::report::fixtures::sample_report;
    use crate::report::model::{Alternative, BandwidthRoof, LatencyPercentiles};

    /// A machine with a 100 GFLOP/s f32 roof and L1 (32 KiB, 400 GB/s),
    /// L2 (1 MiB, 100 GB/s), L3 (32 MiB, 60 GB/s) and DRAM (20 GB/s).
    fn machine() -> Machine {
        let mut machine = Machine::flat("test", 100.0, 400.0, 20.0);
        for (level, capacity, gbs) in [
            ("L1", 32u64 << 10, 400.0),
            ("L2", 1 << 20, 100.0),
            ("L3", 32 << 20, 60.0),
            ("DRAM", 0, 20.0),
        ] {
            machine.bandwidth.push(LevelBandwidth {
                level: level.to_string(),
                working_set_bytes: capacity / 2,
                capacity_bytes: capacity,
                read_gbs: gbs,
                copy_gbs: gbs,
                triad_gbs: gbs,
            });
        }
        machine
    }

    /// An f32 kernel at 0.5 FLOP/byte whose call keeps `working_set` bytes in
    /// use, placed at the level of `machine` that holds them, as the pipeline does.
    fn point(label: &str, working_set: u64, achieved_gflops: f64) -> RooflinePoint {
        RooflinePoint {
            label: label.to_string(),
            arithmetic_intensity: 0.5,
            achieved_gflops,
            source: FigureSource::Measured,
            precision: Precision::F32,
            working_set_bytes: Some(working_set),
            memory_level: Some(machine().level_for_footprint(working_set).to_string()),
        }
    }

    /// The sample report measured on `machine()` with these points.
    fn report_with(points: Vec<RooflinePoint>) -> Report {
        let machine = machine();
        let mut report = sample_report();
        report.roofline.peak_gflops = machine.peak_gflops_f32;
        report.roofline.bandwidths = machine
            .bandwidth
            .iter()
            .map(|b| BandwidthRoof {
                name: b.level.clone(),
                gb_per_s: b.read_gbs,
            })
            .collect();
        report.roofline.points = points;
        report
    }

    /// Cells of the roofline table's row for `label` (after the empty cell
    /// before the first `|`): Kernel, FLOP/byte, Achieved, Working set,
    /// Fits in, Bound, Of roof, Figure.
    fn roofline_row(md: &str, label: &str) -> Vec<String> {
        let section = &md[md.find("## Roofline").unwrap_or(0)..];
        section
            .lines()
            .map(|l| {
                l.split('|')
                    .map(|c| c.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .find(|cells| cells.get(1).is_some_and(|c| c == label))
            .unwrap_or_else(|| panic!("no row {label} in\n{section}"))
    }

    /// A stream plan's consumer lag is a row of the recommended plan's table.
    #[test]
    fn a_stream_plans_consumer_lag_is_shown() {
        let mut report = sample_report();
        assert!(!markdown(&report).contains("Consumer lag"));
        if let Some(plan) = report.recommended.as_mut() {
            plan.consumer_lag = Some(crate::report::ConsumerLag {
                mean_messages: 3.4,
                max_messages: 41,
                mean_wait_ms: 1.25,
            });
        }
        let md = markdown(&report);
        let row = md
            .lines()
            .find(|l| l.contains("Consumer lag"))
            .unwrap_or_else(|| panic!("no consumer lag row in\n{md}"));
        assert!(row.contains("3 waiting on average (at most 41)"), "{row}");
        assert!(row.contains("1.25 ms"), "{row}");
    }

    /// The section `## title` of `md`, up to the next section.
    fn section<'a>(md: &'a str, title: &str) -> Option<&'a str> {
        let start = md.find(&format!("## {title}\n"))?;
        let rest = &md[start..];
        Some(rest[3..].find("\n## ").map_or(rest, |end| &rest[..end + 3]))
    }

    /// The recommended build's program is shown folded under its name and
    /// step count, whole and verbatim; a report whose build was timed before
    /// programs were kept says so; no recommendation, no section.
    #[test]
    fn the_recommended_builds_compiled_program_is_shown() {
        let mut report = sample_report();
        let md = markdown(&report);
        let text = &report.programs[0].text;
        let programs = section(&md, "Compiled program").unwrap_or_else(|| panic!("{md}"));
        assert!(
            programs.contains(
                "<details><summary><code>base</code> tiled int8, on c7i.large: 5 graph ops -> 3 steps</summary>"
            ),
            "{programs}"
        );
        assert!(
            programs.contains(&format!("```text\n{text}\n```")),
            "{programs}"
        );
        // After the projection, before the roofline.
        let at = |title: &str| md.find(&format!("## {title}\n"));
        assert!(at("Kernel measurements") < at("Compiled program"));
        assert!(at("Compiled program") < at("Roofline"));

        // A fallback's build says it is the fallback's.
        let mut with_fallback = report.clone();
        if let Some(plan) = with_fallback.recommended.as_mut() {
            plan.fallback = Some(Fallback {
                target: "m7i.large".to_string(),
                model_variant: "base".to_string(),
                backend: workbench_kernels::BackendKind::Fused,
                precision: Precision::F32,
            });
        }
        with_fallback.programs.push(CompiledProgram {
            backend: workbench_kernels::BackendKind::Fused,
            precision: Precision::F32,
            ..report.programs[0].clone()
        });
        let md = markdown(&with_fallback);
        assert!(
            md.contains("<code>base</code> fused f32, on m7i.large (fallback): 5 graph ops"),
            "{md}"
        );

        // A fence no line of the program can close.
        report.programs[0].text = "a ``` b\n````".to_string();
        let md = markdown(&report);
        let programs = section(&md, "Compiled program").unwrap_or_default();
        assert!(
            programs.contains("`````text\na ``` b\n````\n`````"),
            "{programs}"
        );

        report.programs.clear();
        let md = markdown(&report);
        let programs = section(&md, "Compiled program").unwrap_or_default();
        assert!(
            programs.contains("The program of `base` tiled int8 was not recorded"),
            "{programs}"
        );
        assert!(!programs.contains("<details>"), "{programs}");

        report.recommended = None;
        assert_eq!(section(&markdown(&report), "Compiled program"), None);
    }

    /// A kernel timed while the machine was busy is marked, with the note
    /// saying what that means; without one, no note.
    #[test]
    fn noisy_kernels_are_marked_and_explained() {
        let mut report = sample_report();
        let quiet = markdown(&report);
        assert!(!quiet.contains(NOISY_MARK), "{quiet}");
        report.kernels[0].high_variance = true;
        let md = markdown(&report);
        let row = md
            .lines()
            .find(|l| l.contains(NOISY_MARK) && l.starts_with('|'))
            .unwrap_or_else(|| panic!("no marked row in\n{md}"));
        assert!(row.contains(&report.kernels[0].workload), "{row}");
        assert!(md.contains(&format!("{NOISY_MARK} Its timings spread more than 10%")));
    }

    /// The summary says when the recommended plan rests on noisy timings, and
    /// when the run was quick; neither otherwise.
    #[test]
    fn the_summary_warns_of_noisy_timings_and_quick_runs() {
        let mut report = sample_report();
        let summary = |md: &str| {
            md.split("## Summary")
                .nth(1)
                .and_then(|rest| rest.split("\n## ").next())
                .unwrap_or_default()
                .to_string()
        };
        let quiet = summary(&markdown(&report));
        assert!(!quiet.contains("busy machine"), "{quiet}");
        assert!(!quiet.contains("quick run"), "{quiet}");
        let plan = report.recommended.clone().expect("recommended");
        let Some(used) = super::super::json::MeasurementSummary::of_plan(&plan, &report.kernels)
        else {
            panic!("the sample's plan rests on a measured kernel");
        };
        for k in &mut report.kernels {
            let key = format!("{} {} {} b{}", k.workload, k.backend, k.precision, k.batch);
            k.high_variance = used.plan_kernels.contains(&key);
        }
        report.assumptions.quick = true;
        let warned = summary(&markdown(&report));
        assert!(warned.contains("Timed on a busy machine"), "{warned}");
        assert!(
            warned.contains(&format!("`{}`", used.plan_kernels[0])),
            "{warned}"
        );
        assert!(warned.contains("A quick run"), "{warned}");
    }

    #[test]
    fn a_kernel_whose_working_set_fits_l2_is_held_to_l2_not_dram() {
        // 512 KiB: more than L1, inside L2. Its roof: 0.5 x 100 GB/s = 50 GFLOP/s.
        let report = report_with(vec![point("in l2", 512 << 10, 40.0)]);
        let attainable = report.attainable(&report.roofline.points[0]).unwrap();
        assert_eq!(attainable.bound(), "L2");
        assert!(
            (attainable.giga_per_s - 50.0).abs() < 1e-9,
            "{attainable:?}"
        );
        let row = roofline_row(&markdown(&report), "in l2");
        // 40 / 50, not 40 / (0.5 x 20 GB/s of DRAM) = 400%.
        assert_eq!(&row[4..8], ["524.3 kB", "L2", "L2", "80.0%"], "{row:?}");
    }

    #[test]
    fn a_kernel_larger_than_the_last_cache_is_held_to_dram() {
        // 64 MiB: more than L3. Its roof: 0.5 x 20 GB/s = 10 GFLOP/s.
        let report = report_with(vec![point("in dram", 64 << 20, 8.0)]);
        let attainable = report.attainable(&report.roofline.points[0]).unwrap();
        assert_eq!(attainable.bound(), "DRAM");
        assert!(
            (attainable.giga_per_s - 10.0).abs() < 1e-9,
            "{attainable:?}"
        );
        let row = roofline_row(&markdown(&report), "in dram");
        assert_eq!(&row[5..8], ["DRAM", "DRAM", "80.0%"], "{row:?}");
    }

    #[test]
    fn a_level_roof_above_the_compute_roof_leaves_the_kernel_compute_bound() {
        // Inside L1: 0.5 x 400 GB/s = 200 > the 100 GFLOP/s compute roof.
        let report = report_with(vec![point("in l1", 16 << 10, 30.0)]);
        let row = roofline_row(&markdown(&report), "in l1");
        assert_eq!(&row[5..8], ["L1", "compute", "30.0%"], "{row:?}");
    }

    #[test]
    fn a_kernel_beating_its_level_roof_is_named_not_hidden() {
        // 60 GFLOP/s against L2's 50: over the roof, and the report says so.
        let report = report_with(vec![
            point("fast", 512 << 10, 60.0),
            point("on roof", 64 << 20, 10.0),
        ]);
        let md = markdown(&report);
        assert_eq!(&roofline_row(&md, "fast")[6..8], ["L2", "120.0%"]);
        assert!(md.contains("Above its roof: fast (L2)."), "{md}");
        // Exactly on its roof is not above it.
        assert!(!md.contains("on roof (DRAM)"), "{md}");
        let report = report_with(vec![point("slow", 512 << 10, 40.0)]);
        assert!(!markdown(&report).contains("Above its roof"));
    }

    #[test]
    fn a_point_from_an_older_file_loads_and_is_held_to_the_slowest_roof() {
        let json = r#"{"label": "old", "arithmetic_intensity": 0.5,
            "achieved_gflops": 8.0, "source": "measured", "precision": "f32"}"#;
        let old: RooflinePoint = serde_json::from_str(json).unwrap();
        assert_eq!(
            (old.working_set_bytes, old.memory_level.as_deref()),
            (None, None)
        );
        let report = report_with(vec![old]);
        let row = roofline_row(&markdown(&report), "old");
        assert_eq!(&row[4..8], ["-", "-", "DRAM", "80.0%"], "{row:?}");
    }

    /// A plan none of whose requests completed shows "all failed", not
    /// "0.00 ms" and "$0.00" per million; a plan rejected before simulation
    /// shows its instances' cost as the lower bound it is.
    #[test]
    fn plans_without_figures_say_why_instead_of_showing_zeros() {
        let mut report = sample_report();
        let drawn = |r: &Report| {
            let svg = crate::report::svg::pareto_svg(r).expect("svg");
            svg.matches("<circle").count()
        };
        let before = drawn(&report);
        let mut failed = report.alternatives[0].plan.clone();
        failed.id = "all-failed".to_string();
        failed.simulated = true;
        failed.failure_rate = 1.0;
        failed.latency_ms = LatencyPercentiles::default();
        failed.cost_usd_per_month = 1893.0;
        failed.cost_usd_per_million = 0.0;
        let mut unsimulated = failed.clone();
        unsimulated.id = "not-simulated".to_string();
        unsimulated.simulated = false;
        unsimulated.failure_rate = 0.0;
        unsimulated.latency_ms.p99 = 2.5;
        unsimulated.cost_usd_per_month = 65.15;
        for plan in [failed, unsimulated] {
            report.alternatives.push(Alternative {
                plan,
                rejected_because: Some("a reason".to_string()),
            });
        }
        let md = markdown(&report);
        let row = |id: &str| {
            md.lines()
                .find(|l| l.starts_with(&format!("| `{id}`")))
                .unwrap_or_else(|| panic!("no row for {id}: {md}"))
                .to_string()
        };
        let failed_row = row("all-failed");
        assert!(
            failed_row.contains("| all failed |")
                && failed_row.contains("$1,893.00")
                && !failed_row.contains("0.00 ms"),
            "{failed_row}"
        );
        let unsimulated_row = row("not-simulated");
        assert!(
            unsimulated_row.contains("≥ 2.50 ms") && unsimulated_row.contains("≥ $65.15"),
            "{unsimulated_row}"
        );
        // and the chart leaves the failed plan off: it has no latency to place
        assert_eq!(drawn(&report), before);
    }

    /// The summary quotes the latency at the SLO's own percentile (what the
    /// plan was judged on), not a p99 next to a p95 SLO.
    #[test]
    fn the_summary_quotes_the_slos_own_percentile() {
        let mut report = sample_report();
        report.slo = Some(LatencySlo {
            percentile: 95.0,
            latency_ms: 200.0,
        });
        if let Some(plan) = report.recommended.as_mut() {
            plan.latency_ms.p99 = 216.0;
            plan.slo_latency_ms = Some(132.0);
        }
        let md = markdown(&report);
        assert!(md.contains("- p95 latency 132 ms ("), "{md}");
        // without a figure at the SLO's percentile (older files): the p99
        if let Some(plan) = report.recommended.as_mut() {
            plan.slo_latency_ms = None;
        }
        assert!(markdown(&report).contains("- p99 latency 216 ms ("));
    }

    #[test]
    fn the_summary_gives_the_slo_figures_confidence_interval() {
        let mut report = sample_report();
        report.slo = Some(LatencySlo {
            percentile: 99.9,
            latency_ms: 90.0,
        });
        if let Some(plan) = report.recommended.as_mut() {
            plan.slo_latency_ms = Some(83.1);
            plan.slo_latency_ci_ms = Some([80.2, 86.0]);
        }
        let md = markdown(&report);
        assert!(
            md.contains("- p99.9 latency 83.1 ms (95% CI 80.2-86.0 ms, "),
            "{md}"
        );
        // not estimated: no interval
        if let Some(plan) = report.recommended.as_mut() {
            plan.slo_latency_ci_ms = None;
        }
        assert!(!markdown(&report).contains("95% CI"));
        assert_eq!(interval_ms([0.05, 0.2]), "50.0 µs to 0.200 ms");
    }

    /// smart-reply-fallback's table named the device's model alone: what
    /// its cloud fallback runs, and on how many replicas, was only in the
    /// rationale.
    #[test]
    fn a_hybrid_plans_cloud_fallback_has_its_row() {
        let mut report = sample_report();
        assert!(!markdown(&report).contains("Cloud fallback"));
        if let Some(plan) = report.recommended.as_mut() {
            plan.placement = Placement::Hybrid;
            plan.mode = ServingMode::OnlineHttp;
            plan.replicas = 2;
            plan.max_batch = 8;
            plan.max_delay_ms = 2.0;
            plan.fallback = Some(Fallback {
                target: "aws-c7g.xlarge".to_string(),
                model_variant: "cloud".to_string(),
                backend: workbench_kernels::BackendKind::Tiled,
                precision: Precision::F32,
            });
        }
        let md = markdown(&report);
        let row = |name: &str| {
            md.lines()
                .find(|l| l.starts_with(&format!("| {name} ")))
                .unwrap_or_else(|| panic!("no row {name}: {md}"))
                .to_string()
        };
        assert!(
            row("Cloud fallback").contains(
                "aws-c7g.xlarge x 2 replicas: model `cloud`, tiled f32, for the requests the device defers"
            ),
            "{md}"
        );
        assert!(row("Model variant (device)").contains("|"), "{md}");
        assert!(
            row("Dynamic batching (cloud fallback)").contains("up to 8 requests"),
            "{md}"
        );
    }

    /// restaurant-recs-hybrid's batching row read "up to 8 requests" where
    /// each request scores 100 restaurants: the row says what a batch
    /// computes when a request asks more than one prediction.
    #[test]
    fn the_batching_row_counts_a_requests_predictions() {
        let mut report = sample_report();
        let row = |report: &Report| {
            let md = markdown(report);
            md.lines()
                .find(|l| l.starts_with("| Dynamic batching "))
                .unwrap_or_else(|| panic!("no batching row: {md}"))
                .to_string()
        };
        if let Some(plan) = report.recommended.as_mut() {
            plan.max_batch = 8;
            plan.max_delay_ms = 2.0;
        }
        // Unknown (an older report) or one per request: requests only.
        for per in [None, Some(1)] {
            report.predictions_per_request = per;
            let line = row(&report);
            assert!(line.contains("up to 8 requests, wait at most"), "{line}");
            assert!(!line.contains("predictions"), "{line}");
        }
        report.predictions_per_request = Some(1_000);
        let line = row(&report);
        assert!(
            line.contains(
                "up to 8 requests of 1,000 predictions each (8,000 predictions), wait at most"
            ),
            "{line}"
        );
        if let Some(plan) = report.recommended.as_mut() {
            plan.max_batch = 1;
        }
        let line = row(&report);
        assert!(
            line.contains("none (one request of 1,000 predictions at a time)"),
            "{line}"
        );
    }

    /// face-unlock's summary read "95% CI 0.13-0.13 ms" for [0.13316,
    /// 0.13363]: an interval's ends must print apart, or it is given as
    /// its middle and half-width.
    #[test]
    fn a_narrow_interval_reads_as_an_interval() {
        let mut report = sample_report();
        report.slo = Some(LatencySlo {
            percentile: 95.0,
            latency_ms: 150.0,
        });
        if let Some(plan) = report.recommended.as_mut() {
            plan.slo_latency_ms = Some(0.13331);
            plan.slo_latency_ci_ms = Some([0.13316, 0.13363]);
        }
        let md = markdown(&report);
        assert!(
            md.contains("- p95 latency 0.133 ms (95% CI 0.133-0.134 ms, "),
            "{md}"
        );
        assert_eq!(interval_ms([0.13316, 0.13340]), "0.133 ms ±0.09%");
        assert_eq!(interval_ms([131.2, 131.4]), "131 ms ±0.08%");
        assert_eq!(interval_ms([20.0, 20.0]), "20.0-20.0 ms");
    }

    /// A batch job's run of 1.6076 s read "each taking 2 s"; the kernel
    /// table's 9.9996 GFLOP/s read "10.00 GFLOP/s".
    #[test]
    fn short_runs_and_round_rates_keep_three_figures() {
        let mut report = sample_report();
        if let Some(plan) = report.recommended.as_mut() {
            plan.batch_job = Some(crate::report::model::BatchJob {
                every_s: 86_400.0,
                run_s: 1.6076,
                instances: 1,
                runs_per_month: 30.4,
                max_staleness_s: 86_401.6,
            });
        }
        let md = markdown(&report);
        assert!(md.contains("each taking 1.6 s"), "{md}");
        report.kernels.truncate(1);
        report.kernels[0].gflops = 9.9996;
        let md = markdown(&report);
        assert!(md.contains(" 10.0 G") && !md.contains("10.00 G"), "{md}");
    }

    /// A batch job's batch is of predictions (an input may ask for many):
    /// "precomputes the inputs 128 at a time" had counted them as inputs.
    #[test]
    fn a_batch_jobs_batch_counts_predictions() {
        let mut report = sample_report();
        if let Some(plan) = report.recommended.as_mut() {
            plan.mode = ServingMode::Batch;
            plan.max_batch = 128;
        }
        let md = markdown(&report);
        assert!(
            md.contains("precomputes the predictions 128 at a time"),
            "{md}"
        );
        assert!(!md.contains("precomputes the inputs"), "{md}");
    }
}
