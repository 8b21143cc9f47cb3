//! A device's memory is judged on what each build held when timed here (its
//! activation buffers by batch), not on one count for every backend: a
//! compiled build that reuses its buffers fits where the naive reference
//! does not, and the other way round. A cloud instance's too: a replica
//! holds a whole batch of requests.

use std::path::Path;
mod common;

use common::{load, synthetic_profiles_with};
use workbench::plan::{self, PlanOptions, ProfileSet, WhatIf};
use workbench::scenario::{self, Mode, Placement, Scenario};
use workbench_kernels::{BackendKind, Precision};

/// An on-prem server (32 MB for the model) scoring scans, which may not
/// leave it, as a batch job. Each input's largest op holds
/// 4.2 MB in and out, so the estimate lets a batch of 4 fit, not 8.
fn onprem(backends: &[BackendKind]) -> Scenario {
    let mut s = scenario::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/planning/onprem-triage-batch.toml"
    )))
    .unwrap();
    s.search.backends = backends.to_vec();
    s.search.precisions = vec![Precision::F32];
    s
}

const LIMIT: u64 = 32_000_000;

fn planned(s: &Scenario, profiles: &ProfileSet) -> plan::PlanOutcome {
    let options = PlanOptions {
        sensitivity: false,
        ..PlanOptions::quick(7)
    };
    plan::plan(s, profiles, &WhatIf::default(), &options)
}

/// Synthetic profiles in which `backend` at f32 held `held` (batch, bytes).
fn holding(s: &Scenario, held: &[(BackendKind, Vec<(u32, u64)>)]) -> ProfileSet {
    let mut profiles = synthetic_profiles_with(s, 0.6, 0.995);
    for (backend, figures) in held {
        profiles.activations.insert(
            ("full".to_string(), *backend, Precision::F32),
            figures.clone(),
        );
    }
    profiles
}

/// The plans `keep` accepts.
fn plans(
    out: &plan::PlanOutcome,
    keep: impl Fn(&plan::Candidate) -> bool,
) -> Vec<&plan::Evaluation> {
    out.evaluations
        .iter()
        .filter(|e| keep(&e.candidate))
        .collect()
}

fn device_plans(out: &plan::PlanOutcome) -> Vec<&plan::Evaluation> {
    plans(out, |c| c.placement == Placement::Edge)
}

/// Measured at 200 kB plus 50 kB an input (a build that takes the batch a
/// sample at a time), the batch job runs the batch of 64 the synthetic
/// profiles make the most efficient: the estimate had held it to 4. The
/// constraint row shows that batch's measured figure.
#[test]
fn a_batch_job_runs_the_batch_its_builds_measured_memory_holds() {
    let s = onprem(&[BackendKind::Tiled]);
    let small = |b: u32| 200_000 + 50_000 * u64::from(b);
    let profiles = holding(
        &s,
        &[(BackendKind::Tiled, vec![(1, small(1)), (64, small(64))])],
    );
    let out = planned(&s, &profiles);
    let best = out.recommended().expect("a feasible plan");
    let c = &best.candidate;
    assert_eq!((c.mode, c.placement), (Mode::Batch, Placement::Edge));
    assert_eq!(c.max_batch, 64, "{}", best.plan.id);
    let needs =
        plan::evaluate::device_memory_needed(&s, &profiles, ("full", c.backend, c.precision), 64);
    assert!(needs.measured);
    assert_eq!(needs.activation_bytes, small(64));
    let row = out
        .constraints
        .iter()
        .find(|r| r.name == "device memory")
        .expect("a device memory row");
    assert!(row.ok);
    assert_eq!(
        row.achieved,
        format!(
            "{} ({})",
            scenario::format_bytes(needs.total() as f64),
            needs.describe(Precision::F32, 64)
        )
    );
    assert!(
        row.achieved.contains("at batch 64, as measured"),
        "{}",
        row.achieved
    );
    // plan.json carries the figure.
    assert_eq!(best.plan.device_memory_bytes, Some(needs.total()));
    // Without the measured figure, the estimate's batch of 4.
    let estimated = planned(&s, &synthetic_profiles_with(&s, 0.6, 0.995));
    let best = estimated.recommended().expect("a feasible plan");
    assert_eq!(best.candidate.max_batch, 4, "{}", best.plan.id);
}

/// The device runs the fastest build whose memory it holds: tiled, faster,
/// held 40 MB, so the naive build (100 kB) serves. When neither fits, the
/// plans are rejected with the measured figure and what it is made of.
#[test]
fn a_device_runs_the_fastest_build_its_memory_holds() {
    let backends = [BackendKind::Naive, BackendKind::Tiled];
    let s = onprem(&backends);
    let flat = |bytes: u64| vec![(1, bytes), (64, bytes)];
    let profiles = holding(
        &s,
        &[
            (BackendKind::Tiled, flat(40_000_000)),
            (BackendKind::Naive, flat(100_000)),
        ],
    );
    let out = planned(&s, &profiles);
    let on_device = device_plans(&out);
    assert!(!on_device.is_empty());
    for e in &on_device {
        assert_eq!(e.candidate.backend, BackendKind::Naive, "{}", e.plan.id);
        let why = e.reason().unwrap_or_default();
        assert!(!why.contains("needs"), "{}: {why}", e.plan.id);
    }
    assert!(out
        .recommended()
        .is_some_and(|b| b.candidate.placement == Placement::Edge));
    // The rationale says why the slower build runs.
    let tiled = ("full", BackendKind::Tiled, Precision::F32);
    let needs = plan::evaluate::device_memory_needed(&s, &profiles, tiled, 1).total();
    let rationale = out.rationale.join("\n");
    let why = format!(
        "tiled f32 is faster there but needs {} at batch 1, more than the 32.0 MB the device may use.",
        scenario::format_bytes(needs as f64)
    );
    assert!(
        rationale.contains("naive f32 runs a batch of 64 in") && rationale.contains(&why),
        "{rationale}"
    );

    // The estimate alone would pick tiled, the faster (and fit at batch 1).
    let estimated = planned(&s, &synthetic_profiles_with(&s, 0.6, 0.995));
    assert!(device_plans(&estimated)
        .iter()
        .all(|e| e.candidate.backend == BackendKind::Tiled));

    let too_large = holding(
        &s,
        &[
            (BackendKind::Tiled, flat(40_000_000)),
            (BackendKind::Naive, flat(50_000_000)),
        ],
    );
    let out = planned(&s, &too_large);
    assert!(out.recommended().is_none());
    for e in device_plans(&out) {
        let why = e.reason().unwrap_or_default();
        assert!(
            why.contains("device has 32.0 MB (")
                && why.contains("40.0 MB activations at batch 1, as measured"),
            "{}: {why}",
            e.plan.id
        );
    }
}

/// A request of 16 predictions runs as a batch of 16 on the device, and
/// holds that batch's activations: over the limit here (38.5 MB), so the
/// device cannot answer requests, while its batch job runs batches of 8
/// (18.5 MB), the largest that fit.
#[test]
fn a_request_of_many_predictions_holds_them_all_at_once() {
    let mut s = onprem(&[BackendKind::Tiled]);
    s.inputs.predictions_per_request = 16;
    s.search.modes = vec![Mode::Batch, Mode::OnlineHttp];
    let line = |b: u32| 1_000_000 + 2_500_000 * u64::from(b - 1);
    let profiles = holding(
        &s,
        &[(BackendKind::Tiled, vec![(1, line(1)), (64, line(64))])],
    );
    let out = planned(&s, &profiles);
    let online = plans(&out, |c| {
        c.placement == Placement::Edge && c.mode != Mode::Batch
    });
    assert!(!online.is_empty());
    for e in online {
        let why = e.reason().unwrap_or_default();
        assert!(
            why.contains("activations at batch 16, as measured"),
            "{}: {why}",
            e.plan.id
        );
    }
    let job = device_plans(&out)
        .into_iter()
        .find(|e| e.candidate.mode == Mode::Batch)
        .expect("an on-device batch job");
    assert_eq!(job.candidate.max_batch, 8, "{}", job.plan.id);
    assert!(line(16) > LIMIT && line(8) <= LIMIT);
}

/// A cloud instance holds a replica's whole batch: with 1 MB of activations
/// an input and room for 4 MB beside the weights, plans batching 16 or 64
/// requests are rejected for the instance's memory (and say so), unbatched
/// ones are simulated, and the batch job runs the largest batch that fits.
#[test]
fn a_cloud_replica_holds_its_whole_batch() {
    let mut s = load("card-fraud-stream");
    let reference = s
        .model
        .reference_variant()
        .expect("a reference")
        .name
        .clone();
    s.model.variants.retain(|v| v.name == reference);
    s.model.reference = 0;
    s.search.precisions = vec![Precision::F32];
    let mut profiles = synthetic_profiles_with(&s, 0.6, 0.995);
    let per_input = 1_000_000;
    for backend in [BackendKind::Naive, BackendKind::Tiled] {
        profiles.activations.insert(
            (reference.clone(), backend, Precision::F32),
            vec![(1, per_input), (64, 64 * per_input)],
        );
    }
    let weights = s.model.variants[0].counts().weight_bytes(Precision::F32);
    for target in &mut s.targets.cloud {
        target.spec.memory_bytes = weights + 4 * per_input;
    }
    let out = planned(&s, &profiles);
    let online = plans(&out, |c| {
        c.mode != Mode::Batch && c.precompute_fraction.is_none()
    });
    assert!(online
        .iter()
        .any(|e| e.candidate.max_batch == 1 && e.simulated));
    let batched: Vec<&&plan::Evaluation> = online
        .iter()
        .filter(|e| e.candidate.max_batch > 1)
        .collect();
    assert!(!batched.is_empty());
    for e in batched {
        let why = e.reason().unwrap_or_default();
        let at = format!(
            "activations at batch {}, as measured",
            e.candidate.max_batch
        );
        assert!(
            !e.simulated && why.contains("instance has 4.") && why.contains(&at),
            "{}: {why}",
            e.plan.id
        );
    }
    let jobs = plans(&out, |c| c.mode == Mode::Batch);
    assert!(!jobs.is_empty());
    for job in jobs {
        // Of the timed batches 1, 4, 8, ...: 4 is the largest that fits.
        assert_eq!(job.candidate.max_batch, 4, "{}", job.plan.id);
    }
}
