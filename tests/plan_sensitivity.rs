//! The sensitivity lines' thresholds hold for the plan a user would get: the
//! scenario planned again with the assumption scaled to the stated factor
//! (same options, every candidate, the final budget) keeps the recommendation,
//! and one step above it does not. Shipped scenarios with synthetic,
//! roofline-shaped compute profiles (no timing) and a small simulation budget.

mod common;

use common::{load, synthetic_profiles_with};
use workbench::plan::{self, PlanOptions, ProfileSet, WhatIf, SENSITIVITY_RESOLUTION};
use workbench::scenario::Scenario;

/// A small budget keeps the test fast; the finalists are still simulated
/// longer than the screening, as in a real run.
fn options() -> PlanOptions {
    PlanOptions {
        screening_requests: 1_000,
        final_requests: 8_000,
        finalists: 2,
        ..PlanOptions::quick(7)
    }
}

/// The what-if that scales a sensitivity line's parameter by `factor`.
fn scaled(parameter: &str, factor: f64) -> WhatIf {
    let mut what_if = WhatIf::default();
    match parameter {
        "traffic" => what_if.traffic = factor,
        "network RTT" => what_if.rtt = factor,
        "instance price" => what_if.instance_price = factor,
        other => panic!("unknown parameter {other}"),
    }
    what_if
}

/// Whether a full plan under `what_if` still recommends `plan_id`, or a plan
/// tied with it (the rule the ranking uses).
fn still_best(s: &Scenario, profiles: &ProfileSet, what_if: &WhatIf, plan_id: &str) -> bool {
    let options = PlanOptions {
        sensitivity: false,
        ..options()
    };
    let out = plan::plan(s, profiles, what_if, &options);
    let ties = plan::tie_test(&what_if.apply(s), &out.evaluations);
    out.recommended().is_some()
        && out
            .evaluations
            .iter()
            .find(|e| e.plan.id == plan_id)
            .is_some_and(|e| e.feasible() && ties(e))
}

/// Plans `name` and checks every stated threshold with full plans.
fn check_thresholds(name: &str) {
    let s = load(name);
    let profiles = synthetic_profiles_with(&s, 0.6, 0.995);
    let out = plan::plan(&s, &profiles, &WhatIf::default(), &options());
    let best = out.recommended().expect("a feasible plan");
    let stated: Vec<_> = out
        .sensitivity
        .iter()
        .filter_map(|l| l.stays_best_up_to_factor.map(|f| (l, f)))
        .collect();
    assert!(!stated.is_empty(), "{name}: no threshold to check");
    for (line, factor) in stated {
        assert!(
            still_best(
                &s,
                &profiles,
                &scaled(&line.parameter, factor),
                &best.plan.id
            ),
            "{name}: a full plan at {factor}x {} no longer recommends {}: {}",
            line.parameter,
            best.plan.id,
            line.summary
        );
        let above = factor * SENSITIVITY_RESOLUTION;
        assert!(
            !still_best(
                &s,
                &profiles,
                &scaled(&line.parameter, above),
                &best.plan.id
            ),
            "{name}: a full plan at {above}x {} still recommends {}: {}",
            line.parameter,
            best.plan.id,
            line.summary
        );
    }
}

/// The shorter re-plan alone put the RTT threshold above where a full plan
/// finds no plan meeting every constraint (2.71x where it changes at 2.6x).
#[test]
fn the_rtt_threshold_of_smart_reply_holds_for_a_full_plan() {
    check_thresholds("smart-reply-fallback");
}

/// The shorter re-plan alone put the RTT threshold at 1.61x where a full
/// plan already recommends another plan.
#[test]
fn the_thresholds_of_hotel_ranking_hold_for_a_full_plan() {
    check_thresholds("hotel-ranking");
}
