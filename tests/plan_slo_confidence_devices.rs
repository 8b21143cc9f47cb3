//! An edge plan simulated class by class (an edge model with a cloud
//! fallback, a fleet) gets the same treatment as a plan simulated as one
//! run: the finalist's components run on until the mixture's latency at the
//! SLO percentile is known within a few percent, and the figure carries its
//! confidence interval.
//!
//! The hand check: the phone answers in microseconds and defers half the
//! requests (no offline time) to one cloud replica with 5 ms of CPU (and
//! 20 us of model) per request at 320/s x 0.5 = 160/s: the M/D/1 queue of
//! `plan_slo_confidence.rs`, at utilisation 0.8. The mixture's p99.9 is the
//! cloud's p99.8 (0.001 = 0.5 x 0.002), which a Lindley recursion over 20
//! million requests with 5.02 ms of service puts at 77.0 ms. Against an
//! 80 ms SLO, the plan's run of 100,000 requests (per component) reports
//! 72.6-108 ms by seed and calls seeds 1 and 3 infeasible, with no interval.

mod common;

use common::synthetic_profiles_with;
use workbench::plan::{self, PlanOptions, WhatIf};
use workbench::scenario::{Placement, Scenario};

const FALLBACK: &str = r#"
name = "fallback-md1-slo"
description = "Edge model deferring half its requests to an M/D/1 cloud queue"
[model]
reference = "cloud"
[[model.variants]]
name = "cloud"
family = "mlp"
accuracy = 0.95
input = 16
hidden = [16]
output = 2
[[model.variants]]
name = "small"
family = "mlp"
accuracy = 0.90
fallback_fraction = 0.5
input = 16
hidden = [8]
output = 2
[traffic]
process = "poisson"
rate_per_s = 320
duration_s = 600
[inputs]
space = "unbounded"
request_bytes = 0
response_bytes = 0
[objectives]
latency_percentile = 99.9
latency_ms = 80
accuracy_floor = 0.99
[targets]
[[targets.edge]]
catalog = "phone-midrange"
fleet_size = 10_000
link = "zero"
[[targets.cloud]]
catalog = "aws-c7i.large"
request_cpu_us = 5000
link = "zero"
[[targets.links]]
name = "zero"
rtt_median_ms = 0
rtt_p99_ms = 0
bandwidth_mbps = 100000
[search]
modes = ["online-http"]
placements = ["hybrid"]
backends = ["tiled"]
precisions = ["f32"]
batch_sizes = [1]
max_queue_delay_ms = [0]
min_replicas = 1
max_replicas = 1
"#;

/// The mixture's p99.9, ms (see the module docs).
const THEORY_MS: f64 = 77.0;

fn fallback() -> Scenario {
    common::parsed(FALLBACK, "fallback-md1-slo.toml")
}

/// What a seed's plan recommends: its latency at the SLO percentile, its
/// interval, and whether the same plan simulated once, with the finalists'
/// requests and no more (the figure before finalists' runs were extended),
/// meets the SLO.
struct Seeded {
    ms: f64,
    ci: [f64; 2],
    short_run_meets_slo: bool,
}

fn planned(s: &Scenario, seed: u64) -> Result<Seeded, String> {
    let options = PlanOptions {
        sensitivity: false,
        ..PlanOptions::standard(seed)
    };
    let profiles = synthetic_profiles_with(s, 0.6, 1.0);
    let out = plan::plan(s, &profiles, &WhatIf::default(), &options);
    let Some(best) = out.recommended() else {
        let why = out
            .evaluations
            .first()
            .map(|e| format!("{}: {}", e.plan.id, e.reason().unwrap_or_default()))
            .unwrap_or_default();
        return Err(format!("seed {seed}: no feasible plan: {why}"));
    };
    if best.plan.placement != Placement::Hybrid {
        return Err(format!("seed {seed}: {} recommended", best.plan.id));
    }
    let ms = best.plan.slo_latency_ms.ok_or("no SLO figure")?;
    let ci = best
        .plan
        .slo_latency_ci_ms
        .ok_or_else(|| format!("seed {seed}: {} at {ms:.1} ms: no interval", best.plan.id))?;
    let ctx = plan::evaluate::Context {
        scenario: s,
        profiles: &profiles,
        only: None,
        cancel: None,
    };
    let budget = plan::final_budget(&options, &best.plan.id);
    let short = plan::search::reevaluate(&ctx, &best.candidate, &budget.sim)
        .ok_or("the plan evaluates again")?;
    if short.plan.slo_latency_ci_ms.is_some() {
        return Err(format!("seed {seed}: an interval from a short run"));
    }
    Ok(Seeded {
        ms,
        ci,
        short_run_meets_slo: short.feasible(),
    })
}

/// Six seeds, every one feasible against the 80 ms SLO and within 5% of the
/// theory, each interval around its figure and at most 5% either side (the
/// cloud's run goes on to 3%, or to its cap of 2 million requests, which
/// some seeds reach), where the plan's single run of the finalists'
/// requests met the SLO on some seeds and missed it on others.
#[test]
fn a_fallback_plans_p999_is_the_same_verdict_on_every_seed() {
    let s = fallback();
    let seeds: Vec<u64> = (1..=6).collect();
    // Three at a time: the machine's cores share the seeds.
    let results: Vec<Result<Seeded, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = seeds
            .chunks(3)
            .map(|chunk| {
                let s = &s;
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|&seed| planned(s, seed))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    assert_eq!(results.len(), seeds.len());
    let mut short_verdicts = Vec::new();
    for (seed, r) in seeds.iter().zip(&results) {
        let (ms, [low, high]) = match r {
            Ok(x) => {
                short_verdicts.push(x.short_run_meets_slo);
                (x.ms, x.ci)
            }
            Err(why) => panic!("{why}"),
        };
        assert!(
            (ms / THEORY_MS - 1.0).abs() < 0.05,
            "seed {seed}: p99.9 {ms:.1} ms, theory {THEORY_MS} ms"
        );
        assert!(low < ms && ms < high, "seed {seed}: {low}..{high} vs {ms}");
        assert!(
            (high - ms).max(ms - low) / ms < 0.05,
            "seed {seed}: 95% CI {low:.1}-{high:.1} ms around {ms:.1} ms"
        );
    }
    // The case is one where a single run's verdict depends on the seed.
    assert!(
        short_verdicts.contains(&true) && short_verdicts.contains(&false),
        "{short_verdicts:?}"
    );
}

/// Where the cap allows it, the run goes on until the interval is within
/// 3% either side: against a p99 (the cloud's p98, 49.7 ms by the same
/// recursion, with ten times the p99.8's requests beyond it) the cloud's
/// run gets there well within its cap.
#[test]
fn a_fallback_plans_interval_is_narrow_where_the_cap_allows() {
    let mut s = fallback();
    s.objectives.latency_percentile = 99.0;
    s.objectives.latency_ms = 60.0;
    for seed in [1, 2] {
        let r = match planned(&s, seed) {
            Ok(r) => r,
            Err(why) => panic!("{why}"),
        };
        let [low, high] = r.ci;
        assert!(
            (r.ms / 49.7 - 1.0).abs() < 0.05,
            "seed {seed}: p99 {:.1} ms, theory 49.7 ms",
            r.ms
        );
        assert!(
            low < r.ms && r.ms < high,
            "seed {seed}: {low}..{high} vs {}",
            r.ms
        );
        assert!(
            (high - r.ms).max(r.ms - low) / r.ms <= plan::SLO_CI_RELATIVE_HALF_WIDTH + 1e-9,
            "seed {seed}: 95% CI {low:.1}-{high:.1} ms around {:.1} ms",
            r.ms
        );
    }
}

/// A fleet's plan (each device class simulated apart) gets its interval too:
/// workout-tracking's recommendation serves phones and watches.
#[test]
fn a_fleets_recommendation_gets_an_interval() {
    let s = common::load("workout-tracking");
    let out = common::plan_quickly(&s, 1.0);
    let best = out.recommended().expect("feasible");
    assert!(best.plan.device_classes.len() > 1, "{}", best.plan.id);
    let ms = best.plan.slo_latency_ms.expect("figure");
    let [low, high] = best.plan.slo_latency_ci_ms.expect("an interval");
    assert!(low <= ms && ms <= high, "{low}..{high} vs {ms}");
    assert!(low < high, "{low}..{high}");
}
