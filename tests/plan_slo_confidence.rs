//! A plan's SLO verdict must not depend on the seed: the finalists' runs go on
//! until the latency at the SLO's own percentile is known within a few
//! percent, and the figure carries its confidence interval.
//!
//! The hand check: one replica, 5 ms of CPU per request, Poisson arrivals at
//! 160/s (an M/D/1 queue at utilisation 0.8), SLO p99.9 <= 90 ms. Its waiting
//! time's tail decays at theta = 86/s (160 (e^{0.005 theta} - 1) = theta) and
//! the p99.9 of the latency is about 83 ms (a Lindley recursion over 2 million
//! requests gives 82.9 ms). With 100,000 requests the planner had reported
//! 74-117 ms by seed and called seed 2 infeasible.

mod common;

use common::synthetic_profiles_with;
use workbench::plan::{self, PlanOptions, WhatIf};
use workbench::scenario::Scenario;

const MD1: &str = r#"
name = "queue-md1-slo"
description = "Queueing hand-check: one replica, deterministic 5 ms service, poisson 160/s"
[model]
[[model.variants]]
name = "m"
family = "mlp"
input = 16
hidden = [16]
output = 2
[traffic]
process = "poisson"
rate_per_s = 160
duration_s = 600
[inputs]
space = "unbounded"
request_bytes = 0
response_bytes = 0
[objectives]
latency_percentile = 99.9
latency_ms = 90
accuracy_floor = 0.5
[targets]
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
backends = ["tiled"]
precisions = ["f32"]
batch_sizes = [1]
max_queue_delay_ms = [0]
min_replicas = 1
max_replicas = 1
"#;

/// The M/D/1 queue's p99.9 latency, ms (see the module docs).
const THEORY_P999_MS: f64 = 83.0;

fn md1() -> Scenario {
    common::parsed(MD1, "queue-md1-slo.toml")
}

/// The recommendation's latency at the SLO percentile and its interval, or
/// why there is none.
fn planned(s: &Scenario, seed: u64) -> Result<(f64, [f64; 2]), String> {
    let options = PlanOptions {
        sensitivity: false,
        ..PlanOptions::standard(seed)
    };
    let out = plan::plan(
        s,
        &synthetic_profiles_with(s, 0.6, 1.0),
        &WhatIf::default(),
        &options,
    );
    let Some(best) = out.recommended() else {
        let why = out
            .evaluations
            .first()
            .and_then(|e| e.reason())
            .unwrap_or_default();
        return Err(format!("seed {seed}: no feasible plan: {why}"));
    };
    let ms = best.plan.slo_latency_ms.ok_or("no SLO figure")?;
    let ci = best.plan.slo_latency_ci_ms.ok_or("no interval")?;
    Ok((ms, ci))
}

/// Six seeds, every one feasible against the 90 ms SLO and within 10% of the
/// theory, each interval narrow and around its figure. (Before the finalists'
/// runs were extended, seed 2 was rejected at p99.9 117 ms and seed 5
/// reported 74.6 ms.)
#[test]
fn md1_p999_is_the_same_verdict_on_every_seed() {
    let s = md1();
    let seeds: Vec<u64> = (1..=6).collect();
    // Two at a time: the machine's cores share the seeds.
    let results: Vec<Result<(f64, [f64; 2]), String>> = std::thread::scope(|scope| {
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
    for (seed, r) in seeds.iter().zip(&results) {
        let (ms, [low, high]) = match r {
            Ok(x) => *x,
            Err(why) => panic!("{why}"),
        };
        assert!(
            (ms / THEORY_P999_MS - 1.0).abs() < 0.10,
            "seed {seed}: p99.9 {ms:.1} ms, theory {THEORY_P999_MS} ms"
        );
        assert!(low < ms && ms < high, "seed {seed}: {low}..{high} vs {ms}");
        // The run goes on until the interval is narrow (or the cap): at most
        // a few percent either side.
        assert!(
            (high - low) / 2.0 / ms < 0.05,
            "seed {seed}: 95% CI {low:.1}-{high:.1} ms around {ms:.1} ms"
        );
    }
}

/// An SLO inside the recommendation's interval is met only within the
/// simulation's uncertainty, and the rationale says so; one well above it
/// is met clearly, and nothing is said.
#[test]
fn an_slo_inside_the_interval_is_called_narrow() {
    let mut s = md1();
    let options = PlanOptions {
        sensitivity: false,
        ..PlanOptions::quick(3)
    };
    let plan_at = |s: &Scenario| {
        plan::plan(
            s,
            &synthetic_profiles_with(s, 0.6, 1.0),
            &WhatIf::default(),
            &options,
        )
    };
    s.objectives.latency_ms = 200.0;
    let clear = plan_at(&s);
    let best = clear.recommended().expect("feasible at 200 ms");
    let ms = best.plan.slo_latency_ms.expect("figure");
    let [low, high] = best.plan.slo_latency_ci_ms.expect("a finalist's interval");
    assert!(low < ms && ms < high, "{low} {ms} {high}");
    let text = clear.rationale.join("\n");
    assert!(!text.contains("only narrowly"), "{text}");
    // Between the figure and the top of its interval: the same run (same
    // seed), met, but narrowly.
    s.objectives.latency_ms = (ms + high) / 2.0;
    let narrow = plan_at(&s);
    let best = narrow.recommended().expect("still met");
    assert_eq!(best.plan.slo_latency_ms, Some(ms));
    let text = narrow.rationale.join("\n");
    assert!(text.contains("only narrowly"), "{text}");
}

/// A finalist's figures are its extended run's, and that run is the shorter
/// one continued: [`plan::final_budget`] simulates the plan again to the
/// same figures, and at least as many requests as `final_requests`.
#[test]
fn a_finalists_figures_are_those_of_its_final_budget() {
    let s = md1();
    let profiles = synthetic_profiles_with(&s, 0.6, 1.0);
    let options = PlanOptions {
        sensitivity: false,
        ..PlanOptions::quick(2)
    };
    let out = plan::plan(&s, &profiles, &WhatIf::default(), &options);
    let best = out.recommended().expect("feasible");
    let ctx = plan::evaluate::Context {
        scenario: &s,
        profiles: &profiles,
        only: None,
        cancel: None,
    };
    let budget = plan::final_budget(&options, &best.plan.id);
    let again = plan::search::reevaluate_within(&ctx, &best.candidate, &budget)
        .expect("the candidate evaluates again");
    assert_eq!(best.plan.latency_ms, again.plan.latency_ms);
    assert_eq!(best.plan.slo_latency_ci_ms, again.plan.slo_latency_ci_ms);
    // The shorter run alone: no interval, and other figures.
    let short = plan::search::reevaluate(&ctx, &best.candidate, &budget.sim)
        .expect("the candidate evaluates again");
    assert_eq!(short.plan.slo_latency_ci_ms, None);
    assert_ne!(short.plan.latency_ms, best.plan.latency_ms);
}

/// A lossy link puts a gap in the latency distribution at the p99: about 1%
/// of requests wait for a 200 ms retransmission, so a run's p99 is ~150 ms
/// or ~230 ms as it draws a few fewer or more of them. The intervals reach
/// across the gap: the seeds' intervals overlap and each holds its figure,
/// wider above the figure than below when it lies under the gap. (They had
/// been +-5% around 161, 232 and 172 ms for three seeds: none overlapping.)
#[test]
fn a_gap_at_the_percentile_widens_the_interval_across_it() {
    let lossy = MD1
        .replace("request_cpu_us = 5000", "request_cpu_us = 100")
        .replace("latency_percentile = 99.9", "latency_percentile = 99")
        .replace("latency_ms = 90", "latency_ms = 400")
        .replace(
            "rtt_median_ms = 0\nrtt_p99_ms = 0\nbandwidth_mbps = 100000",
            "rtt_median_ms = 40\nrtt_p99_ms = 90\nbandwidth_mbps = 200\nloss_fraction = 0.005\nmin_rto_ms = 200",
        )
        .replace("request_bytes = 0", "request_bytes = 1500");
    let s = common::parsed(&lossy, "lossy.toml");
    let results: Vec<(f64, [f64; 2])> = (21..=23)
        .map(|seed| planned(&s, seed).unwrap_or_else(|why| panic!("{why}")))
        .collect();
    for (ms, [low, high]) in &results {
        assert!(low <= ms && ms <= high, "{ms} not in {low}-{high}");
    }
    let highest_low = results.iter().map(|r| r.1[0]).fold(f64::MIN, f64::max);
    let lowest_high = results.iter().map(|r| r.1[1]).fold(f64::MAX, f64::min);
    assert!(
        highest_low <= lowest_high,
        "intervals do not overlap: {results:?}"
    );
    // Under the gap, the interval reaches across it: far more room above.
    for (ms, [low, high]) in &results {
        if *ms < 190.0 {
            assert!(high - ms > 1.5 * (ms - low), "{ms}: {low}-{high}");
        }
    }
}
