//! The planner's replica search and the plans it rejects before simulating:
//! no replica retries for devices that are offline, and the instance cost of
//! a plan that was never simulated. Shipped scenarios with synthetic,
//! roofline-shaped compute profiles (no timing).

mod common;

use std::collections::BTreeMap;

use common::{load, plan_quickly};
use workbench::plan::{self, Evaluation};
use workbench::scenario::{Mode, Placement, Scenario};

/// Simulated cloud plans, grouped by everything but their replica count.
fn cloud_families(out: &plan::PlanOutcome) -> BTreeMap<String, Vec<&Evaluation>> {
    let mut families: BTreeMap<String, Vec<&Evaluation>> = BTreeMap::new();
    for e in out
        .evaluations
        .iter()
        .filter(|e| e.simulated && e.plan.placement == Placement::Cloud)
    {
        families.entry(e.candidate.family()).or_default().push(e);
    }
    families
}

fn connectivity(s: &Scenario) -> String {
    format!(
        "needs connectivity; device offline {}% of the time",
        plan::evaluate::fmt_pct(s.constraints.offline_fraction)
    )
}

#[test]
fn devices_offline_end_the_replica_search_with_the_reason_given() {
    // 15% of requests find their device offline; p95 allows 5% to fail
    let s = load("smart-reply-fallback");
    assert_eq!(s.objectives.latency_percentile, 95.0);
    let out = plan_quickly(&s, 1.0);
    let families = cloud_families(&out);
    assert!(!families.is_empty());
    let said = connectivity(&s);
    let mut most = 0;
    for (family, rows) in &families {
        // one simulation per configuration: the first replica count tried
        assert_eq!(rows.len(), 1, "{family}: {} replica counts", rows.len());
        let e = rows[0];
        assert!(e.offline_bound && !e.feasible(), "{family}");
        assert!(e.rejected.contains(&said), "{family}: {:?}", e.rejected);
        most = most.max(e.plan.replicas);
    }
    let best = out.recommended().expect("a feasible plan");
    assert_eq!(best.plan.placement, Placement::Hybrid, "{}", best.plan.id);
    assert!(out.rationale.join("\n").contains(&said));
    // the counts no longer tried fail for the same reason: more replicas bring
    // no device online (the same requests are offline whatever the count)
    let mut more = s.clone();
    more.search.min_replicas = most + 1;
    let out = plan_quickly(&more, 1.0);
    for (family, rows) in cloud_families(&out) {
        for e in rows {
            assert!(e.plan.replicas > most, "{family}");
            assert!(e.offline_bound && e.rejected.contains(&said), "{family}");
        }
    }
}

#[test]
fn devices_offline_less_than_the_percentile_allows_bound_nothing() {
    let mut s = load("smart-reply-fallback");
    s.constraints.offline_fraction = 0.03;
    let out = plan_quickly(&s, 1.0);
    let families = cloud_families(&out);
    assert!(!families.is_empty());
    for e in families.values().flatten() {
        assert!(!e.offline_bound, "{}", e.plan.id);
        assert!(!e.rejected.contains(&connectivity(&s)), "{:?}", e.rejected);
    }
}

#[test]
fn plans_rejected_before_simulation_carry_their_instance_cost() {
    // keystrokes may not leave the phone: every cloud plan is pruned unsimulated
    let s = load("predictive-text");
    assert!(!s.constraints.data_may_leave_device);
    let out = plan_quickly(&s, 1.0);
    let price = s.targets.cloud[0].spec.usd_per_hour;
    let monthly_predictions = s.traffic.rate_per_s * 730.0 * 3600.0;
    let mut priced = 0;
    for e in out.evaluations.iter().filter(|e| {
        !e.simulated
            && e.plan.placement == Placement::Cloud
            && matches!(e.plan.mode, Mode::OnlineHttp | Mode::OnlineStream)
    }) {
        let p = &e.plan;
        let instances = f64::from(p.replicas) * price * 730.0;
        assert!(instances > 0.0);
        assert!(
            (p.cost_usd_per_month - instances).abs() < 1e-9 * instances,
            "{}",
            p.id
        );
        let per_million = instances / monthly_predictions * 1e6;
        assert!((p.cost_usd_per_million - per_million).abs() < 1e-9 * per_million);
        assert_eq!(p.cost_breakdown.len(), 1, "{:?}", p.cost_breakdown);
        assert!(p.cost_breakdown[0].item.starts_with("serving instances"));
        // the latency stays the compute floor, flagged as not simulated
        assert!(p.latency_ms.p99 > 0.0 && !p.simulated);
        let why = e.reason().unwrap_or_default();
        assert!(why.contains("data may not leave the device"), "{why}");
        assert!(why.ends_with("(not simulated)"), "{why}");
        priced += 1;
    }
    assert!(priced >= 2, "{priced} pruned cloud plans");
}

/// Sizing at 85% utilisation is a first guess, not a floor: under an SLO any
/// stable queue meets, each online cloud plan's fewest passing replicas are
/// the fewest at or below 90% utilisation (one c7i.large at 86% had been
/// left out for two at 43%, $65 a month more); above 90% a simulation's p99
/// depends on its seed, so the search does not go there.
#[test]
fn the_replica_search_goes_below_the_sizing_guess_when_fewer_pass() {
    let mut s = load("card-fraud-stream");
    // Several replicas each, so that 85% and 100% sizing differ.
    s.traffic.rate_per_s = 100_000.0;
    s.objectives.latency_ms = 60_000.0;
    s.objectives.min_throughput_per_s = 0.0;
    let peak = s.traffic.peak_rate_per_s();
    let out = plan_quickly(&s, 1.0);
    let mut below_guess = 0;
    let mut families = 0;
    for (family, rows) in cloud_families(&out) {
        let passing: Vec<&Evaluation> = rows
            .iter()
            .copied()
            .filter(|e| e.feasible() && e.candidate.mode != Mode::Batch)
            .collect();
        let Some(fewest) = passing.iter().min_by_key(|e| e.plan.replicas) else {
            continue;
        };
        families += 1;
        let r = fewest.plan.replicas;
        let per_replica = fewest.capacity_rps / f64::from(r);
        let guess = (peak / (per_replica * 0.85)).ceil() as u32;
        if r < guess {
            below_guess += 1;
        }
        // The plan runs at most at 90%, and one replica fewer would run above
        // it (or is below the scenario's minimum).
        let utilisation = |replicas: u32| peak / (per_replica * f64::from(replicas));
        assert!(
            utilisation(r) <= 0.9 + 1e-9,
            "{family}: {r} replicas at {:.3}",
            utilisation(r)
        );
        assert!(
            r <= s.search.min_replicas.max(1) || utilisation(r - 1) > 0.9,
            "{family}: {r} replicas pass, and {} would run at {:.2} utilisation",
            r - 1,
            utilisation(r - 1)
        );
    }
    assert!(families > 0);
    assert!(below_guess > 0, "no family went below the 85% sizing");
}
