//! Bursty traffic: the simulated window must hold enough requests whatever
//! the seed draws for the first burst (a short first burst followed by a
//! long pause had left it nearly empty: "only 0 requests simulated").

mod common;

use common::{load, synthetic_profiles_with};
use workbench::plan::{self, PlanOptions, WhatIf};

#[test]
fn a_bursty_scenario_is_feasible_whatever_the_seed() {
    let s = load("predictive-text");
    let profiles = synthetic_profiles_with(&s, 0.6, 0.995);
    for seed in 0..24 {
        let options = PlanOptions {
            sensitivity: false,
            ..PlanOptions::quick(seed)
        };
        let out = plan::plan(&s, &profiles, &WhatIf::default(), &options);
        let too_few: Vec<String> = out
            .evaluations
            .iter()
            .filter_map(|e| e.reason())
            .filter(|why| why.contains("too few to estimate"))
            .collect();
        assert!(
            too_few.is_empty(),
            "seed {seed}: {} plans simulated too few requests, e.g. {}",
            too_few.len(),
            too_few[0]
        );
        assert!(out.recommended().is_some(), "seed {seed}: no feasible plan");
    }
}
