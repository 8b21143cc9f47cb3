//! The planner on a fleet of clients: devices offline part of the time, and
//! traffic in bursts or daily peaks whose mean is what a month costs. Shipped
//! scenarios with synthetic, roofline-shaped compute profiles (no timing).

mod common;

use common::{load, synthetic_profiles_with};
use workbench::plan::{self, Evaluation, PlanOptions, ProfileSet, WhatIf};
use workbench::scenario::{ArrivalProcess, Placement, Scenario};

/// Tiled f32 at 0.3 of the target's peak, int8 at 0.6, both agreeing with f32.
fn synthetic_profiles(s: &Scenario) -> ProfileSet {
    synthetic_profiles_with(s, 0.6, 1.0)
}

fn quick() -> PlanOptions {
    PlanOptions {
        sensitivity: false,
        ..PlanOptions::quick(7)
    }
}

fn plan_of(s: &Scenario) -> plan::PlanOutcome {
    plan::plan(s, &synthetic_profiles(s), &WhatIf::default(), &quick())
}

fn simulated(out: &plan::PlanOutcome, placement: Placement) -> Vec<&Evaluation> {
    out.evaluations
        .iter()
        .filter(|e| e.simulated && e.plan.placement == placement)
        .collect()
}

#[test]
fn offline_devices_rule_out_cloud_plans_but_not_answers_on_the_device() {
    let mut s = load("smart-reply-fallback");
    assert_eq!(s.objectives.latency_percentile, 95.0);
    // Offline half the time, the fallback defers 7.5% of requests and
    // catches 3.8 of the small model's 7.0 points of errors: 96.8%, under
    // the shipped 97% floor. This test is about connectivity, not accuracy.
    s.objectives.accuracy_floor = 0.95;
    for offline in [0.15, 0.5] {
        s.constraints.offline_fraction = offline;
        let out = plan_of(&s);
        let cloud = simulated(&out, Placement::Cloud);
        assert!(!cloud.is_empty());
        let said = format!(
            "needs connectivity; device offline {}% of the time",
            plan::evaluate::fmt_pct(offline)
        );
        for e in cloud {
            // each request's device is offline with the fleet's share, from the start
            assert!(
                (e.plan.failure_rate - offline).abs() < 0.03,
                "{}: failure rate {} at {offline} offline",
                e.plan.id,
                e.plan.failure_rate
            );
            let why = e.reason().unwrap_or_default();
            assert!(why.contains(&said), "{}: {why}", e.plan.id);
        }
        // the small model answers on the device whether or not it is online
        let best = out.recommended().expect("a feasible plan");
        assert_eq!(best.plan.placement, Placement::Hybrid, "{}", best.plan.id);
        assert!(best.plan.failure_rate < 0.01, "{}", best.plan.failure_rate);
        let why = out.rationale.join("\n");
        assert!(why.contains(&said), "{why}");
    }
}

/// The line of a plan's cost breakdown whose item starts with `item`.
fn line(e: &Evaluation, item: &str) -> f64 {
    e.plan
        .cost_breakdown
        .iter()
        .filter(|l| l.item.starts_with(item))
        .map(|l| l.usd_per_month)
        .sum()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs())
}

#[test]
fn bursty_traffic_is_billed_at_its_mean_and_judged_at_its_bursts() {
    let poisson = load("card-fraud-stream");
    assert_eq!(poisson.traffic.process, ArrivalProcess::Poisson);
    let mut bursty = poisson.clone();
    bursty.traffic.process = ArrivalProcess::Bursty {
        on_s: 1.0,
        off_s: 9.0,
    };
    let (p, b) = (plan_of(&poisson), plan_of(&bursty));
    let mean = poisson.traffic.rate_per_s;
    let mut compared = 0;
    for e in p.evaluations.iter().filter(|e| e.simulated && e.feasible()) {
        let same_config = |o: &&Evaluation| {
            o.simulated
                && o.candidate.family() == e.candidate.family()
                && o.candidate.max_batch == e.candidate.max_batch
                && o.candidate.max_delay_ms == e.candidate.max_delay_ms
        };
        let Some(o) = b.evaluations.iter().find(same_config) else {
            continue;
        };
        compared += 1;
        // what follows the traffic costs the same at the same mean rate;
        // replicas may differ (sized for the bursts), the rest may not
        for item in ["broker traffic", "egress", "broker cluster"] {
            let (x, y) = (line(e, item), line(o, item));
            assert!(close(x, y, 0.03), "{}: {item} ${x} vs ${y}", e.plan.id);
        }
        let rest = |v: &Evaluation| v.plan.cost_usd_per_month - line(v, "serving instances");
        assert!(
            close(rest(e), rest(o), 0.03),
            "{} vs {}",
            e.plan.id,
            o.plan.id
        );
        if e.plan.replicas == o.plan.replicas {
            assert!(close(
                e.plan.cost_usd_per_month,
                o.plan.cost_usd_per_month,
                0.03
            ));
        } else {
            assert!(
                o.plan.replicas > e.plan.replicas,
                "{} vs {}",
                e.plan.id,
                o.plan.id
            );
        }
        for v in [e, o] {
            let served = mean * (1.0 - v.plan.failure_rate);
            assert!(
                close(v.plan.throughput_rps, served, 0.01),
                "{}: throughput {} at a mean of {mean}/s",
                v.plan.id,
                v.plan.throughput_rps
            );
        }
        // latency and utilisation are the bursts' (ten times the mean rate, for
        // the part of the run in a burst); unbatched, busy time follows the rate
        if e.plan.replicas == o.plan.replicas && e.plan.max_batch == 1 {
            assert!(
                o.plan.utilisation > 5.0 * e.plan.utilisation,
                "{}: utilisation {} bursty vs {} poisson",
                e.plan.id,
                o.plan.utilisation,
                e.plan.utilisation
            );
        }
    }
    assert!(compared >= 4, "only {compared} plans compared");
}

#[test]
fn edge_energy_and_throughput_follow_the_mean_rate() {
    // bursty as shipped: 5 s of typing in every 25
    let bursty = load("predictive-text");
    assert!(matches!(
        bursty.traffic.process,
        ArrivalProcess::Bursty { .. }
    ));
    let mut poisson = bursty.clone();
    poisson.traffic.process = ArrivalProcess::Poisson;
    let (b, p) = (plan_of(&bursty), plan_of(&poisson));
    let mean = bursty.traffic.rate_per_s;
    let edge = simulated(&b, Placement::Edge);
    assert!(!edge.is_empty());
    for e in edge {
        let o = p
            .evaluations
            .iter()
            .find(|o| o.plan.id == e.plan.id)
            .expect("the same edge plan");
        let (x, y) = (line(e, "edge energy"), line(o, "edge energy"));
        assert!(x > 0.0 && close(x, y, 0.05), "{}: ${x} vs ${y}", e.plan.id);
        assert!(
            close(e.plan.throughput_rps, mean, 0.01),
            "{}",
            e.plan.throughput_rps
        );
        assert!(
            close(o.plan.throughput_rps, mean, 0.01),
            "{}",
            o.plan.throughput_rps
        );
    }
    // a diurnal scenario is simulated at its peak and reported at its mean
    let s = load("assistant-speech");
    assert!(matches!(s.traffic.process, ArrivalProcess::Diurnal { .. }));
    let out = plan_of(&s);
    let best = out.recommended().expect("a feasible plan");
    let served = s.traffic.rate_per_s * (1.0 - best.plan.failure_rate);
    assert!(
        close(best.plan.throughput_rps, served, 0.01),
        "{} at a mean of {}/s",
        best.plan.throughput_rps,
        s.traffic.rate_per_s
    );
}
