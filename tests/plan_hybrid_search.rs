//! The search's choices for hybrid and stream plans: the batchings a fallback
//! or the misses of a precomputed hybrid are tried at, and a stream's
//! consumers at most one per partition.

use std::path::Path;
mod common;

use common::{load, synthetic_profiles_with};
use workbench::plan::{self, PlanOptions, WhatIf};
use workbench::scenario::{self, Mode, Placement};

fn quick() -> PlanOptions {
    PlanOptions {
        sensitivity: false,
        ..PlanOptions::quick(7)
    }
}

/// 20% of a keyboard's 200 req/s (less the 20% offline) go to the cloud: 32
/// req/s fill a batch of 8 in a quarter of a second, so a batched fallback
/// waits its whole 10 ms delay and misses the 80 ms p95 that an unbatched one
/// meets. Only the largest batching was tried: no feasible plan.
#[test]
fn a_light_fallback_is_tried_unbatched() {
    let s = scenario::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/planning/keyboard-fallback.toml"
    )))
    .unwrap();
    let out = plan::plan(
        &s,
        &synthetic_profiles_with(&s, 0.6, 0.995),
        &WhatIf::default(),
        &quick(),
    );
    let best = out
        .recommended()
        .unwrap_or_else(|| panic!("no feasible plan:\n{}", out.rationale.join("\n")));
    assert_eq!(
        best.candidate.placement,
        Placement::Hybrid,
        "{}",
        best.plan.id
    );
    assert_eq!(best.candidate.max_batch, 1, "{}", best.plan.id);
    // Both batchings were simulated, and the batched one missed the SLO.
    let batched_miss = out.evaluations.iter().any(|e| {
        e.candidate.placement == Placement::Hybrid
            && e.candidate.max_batch == 8
            && e.reason().is_some_and(|why| why.contains("SLO"))
    });
    assert!(batched_miss, "no batched fallback simulated");
    // The description and the rationale name what the fallback runs and
    // where the batching is: the device answers one request at a time.
    let described = best.candidate.describe();
    assert!(
        described.contains("on the device; cloud fallback cloud tiled f32, unbatched"),
        "{described}"
    );
    let why = out.rationale.join("\n");
    assert!(
        why.contains("The cloud fallback runs cloud tiled f32"),
        "{why}"
    );
}

/// A precomputed hybrid's misses are tried at every batching, as online plans are.
#[test]
fn a_precomputed_hybrids_misses_are_tried_at_every_batching() {
    let s = load("restaurant-recs-hybrid");
    let out = plan::plan(
        &s,
        &synthetic_profiles_with(&s, 0.6, 0.995),
        &WhatIf::default(),
        &quick(),
    );
    let batchings = |mode: Mode| {
        let mut seen: Vec<(u32, String)> = out
            .evaluations
            .iter()
            .filter(|e| e.candidate.mode == mode && e.simulated)
            .map(|e| {
                (
                    e.candidate.max_batch,
                    format!("{}", e.candidate.max_delay_ms),
                )
            })
            .collect();
        seen.sort();
        seen.dedup();
        seen
    };
    let online = batchings(Mode::OnlineHttp);
    assert!(online.len() > 1, "{online:?}");
    assert_eq!(batchings(Mode::Hybrid), online);
}

/// Consumers beyond the broker's partitions would get none and sit idle: no
/// stream plan has more replicas than partitions.
#[test]
fn a_stream_has_no_more_consumers_than_partitions() {
    let mut s = load("card-fraud-stream");
    let partitions = 3;
    s.targets.broker.as_mut().expect("a broker").partitions = partitions;
    let out = plan::plan(
        &s,
        &synthetic_profiles_with(&s, 0.6, 0.995),
        &WhatIf::default(),
        &quick(),
    );
    let stream: Vec<_> = out
        .evaluations
        .iter()
        .filter(|e| e.candidate.mode == Mode::OnlineStream && e.simulated)
        .collect();
    assert!(!stream.is_empty(), "no stream plan simulated");
    for e in &stream {
        assert!(e.candidate.replicas <= partitions, "{}", e.plan.id);
    }
    // A configuration that needs more consumers says why it has no plan.
    let capped = out.evaluations.iter().find_map(|e| {
        e.reason()
            .filter(|why| why.contains("partition(s): one consumer each"))
    });
    assert!(capped.is_some() || stream.iter().all(|e| e.feasible()));
}
