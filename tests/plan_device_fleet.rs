//! Edge classes that are parts of one fleet (`targets.edge_classes =
//! "fleet"`): a plan runs on every class, each serving its own users' share
//! of the requests; against the same scenario with the classes as
//! alternatives, each carrying all the traffic. Synthetic, roofline-shaped
//! compute profiles (no timing).

mod common;

use std::path::Path;

use common::{edge_energy_usd, load, plan_quickly, synthetic_profiles_with};
use workbench::hardware::project::Infeasible;
use workbench::plan::{self, Evaluation, PlanOptions, PlanOutcome, WhatIf};
use workbench::scenario::{self, Mode, Placement, Scenario, ScenarioError};
use workbench_kernels::{BackendKind, Precision};

const FLEET: &str = "phone-flagship&phone-midrange";

fn shipped_text(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"));
    std::fs::read_to_string(path).expect("shipped scenario")
}

fn edited_text(name: &str, edits: &[(&str, &str)]) -> String {
    let mut text = shipped_text(name);
    for (anchor, replacement) in edits {
        assert!(text.contains(anchor), "`{anchor}` not in {name}");
        text = text.replacen(anchor, replacement, 1);
    }
    text
}

fn parse(text: &str) -> Result<Scenario, scenario::ScenarioErrors> {
    scenario::parse_str(text, Path::new("fleet.toml"))
}

fn edited(name: &str, edits: &[(&str, &str)]) -> Scenario {
    parse(&edited_text(name, edits)).unwrap_or_else(|e| panic!("{e}"))
}

/// The same scenario with its edge classes planned as alternatives.
fn as_alternatives(name: &str) -> Scenario {
    edited(name, &[("edge_classes = \"fleet\"", "")])
}

fn edge_plans(out: &PlanOutcome) -> Vec<&Evaluation> {
    out.evaluations
        .iter()
        .filter(|e| e.plan.placement == Placement::Edge)
        .collect()
}

/// The simulated edge plan of `variant` at `precision` on `target`.
fn plan_on<'a>(
    out: &'a PlanOutcome,
    target: &str,
    mode: Mode,
    precision: Precision,
) -> &'a Evaluation {
    edge_plans(out)
        .into_iter()
        .find(|e| {
            e.candidate.target == target
                && e.candidate.mode == mode
                && e.candidate.precision == precision
                && e.candidate.variant == "full"
        })
        .unwrap_or_else(|| panic!("no {} {mode:?} {precision:?} plan on {target}", "full"))
}

#[test]
fn a_fleet_is_planned_as_one_target_and_alternatives_each_alone() {
    let fleet = plan_quickly(&load("face-unlock"), 1.0);
    let targets: Vec<&str> = edge_plans(&fleet)
        .iter()
        .map(|e| e.candidate.target.as_str())
        .collect();
    assert!(!targets.is_empty());
    assert!(targets.iter().all(|t| *t == FLEET), "{targets:?}");
    let best = fleet.recommended().expect("a feasible plan");
    assert_eq!(best.candidate.target, FLEET);
    let why = fleet.rationale.join("\n");
    assert!(
        why.contains("phone-flagship (4,000,000 devices, 40% of requests)")
            && why.contains("phone-midrange (6,000,000 devices, 60% of requests)"),
        "{why}"
    );
    // Both classes' run times are given, each on its own device.
    assert!(
        why.contains("on phone-flagship (projected)")
            && why.contains("on phone-midrange (projected)"),
        "{why}"
    );

    let alternatives = plan_quickly(&as_alternatives("face-unlock"), 1.0);
    let mut targets: Vec<&str> = edge_plans(&alternatives)
        .iter()
        .map(|e| e.candidate.target.as_str())
        .collect();
    targets.sort_unstable();
    targets.dedup();
    assert_eq!(targets, ["phone-flagship", "phone-midrange"]);
}

/// The p99 of a fleet of a fast and a slow class follows the share of the
/// requests each serves: with the slow class at 0.1% of them it is the fast
/// class's; with half, the slow class's.
#[test]
fn a_fleets_latency_is_its_classes_weighted_by_their_share_of_requests() {
    let shares = |flagship: &str, midrange: &str| face_unlock_with_shares(flagship, midrange, &[]);
    let s = shares("0.999", "0.001");
    let profiles = synthetic_profiles_with(&s, 0.6, 1.0);
    let service = |target: &str| {
        profiles
            .profiles
            .iter()
            .find(|p| {
                p.target == target
                    && p.variant == "full"
                    && p.backend == BackendKind::Tiled
                    && p.precision == Precision::F32
            })
            .map(|p| p.median_s(1) * 1000.0)
            .expect("a tiled f32 profile")
    };
    let (fast_ms, slow_ms) = (service("phone-flagship"), service("phone-midrange"));
    assert!(slow_ms > 2.0 * fast_ms, "{fast_ms} {slow_ms}");

    let p99 = |s: &Scenario| {
        let out = plan_quickly(s, 1.0);
        let e = plan_on(&out, FLEET, Mode::OnlineHttp, Precision::F32);
        assert!(e.simulated, "{}: {:?}", e.plan.id, e.reason());
        e.plan.latency_ms.p99
    };
    let mostly_fast = p99(&s);
    assert!(
        mostly_fast < slow_ms * 0.9,
        "p99 {mostly_fast} ms with 0.1% on the slow class ({fast_ms} / {slow_ms} ms)"
    );
    let half = p99(&shares("0.5", "0.5"));
    assert!(
        half > slow_ms * 0.95,
        "p99 {half} ms with half on the slow class ({fast_ms} / {slow_ms} ms)"
    );

    // Each class's users see their own class's latency.
    let out = plan_quickly(&shares("0.5", "0.5"), 1.0);
    let e = plan_on(&out, FLEET, Mode::OnlineHttp, Precision::F32);
    let classes = &e.plan.device_classes;
    let names: Vec<&str> = classes.iter().map(|c| c.target.as_str()).collect();
    assert_eq!(names, ["phone-flagship", "phone-midrange"]);
    assert_eq!(
        (classes[0].devices, classes[1].devices),
        (4_000_000, 6_000_000)
    );
    assert_eq!(
        (classes[0].traffic_share, classes[1].traffic_share),
        (0.5, 0.5)
    );
    let (flagship, midrange) = (&classes[0].latency_ms, &classes[1].latency_ms);
    assert!(flagship.p99 < slow_ms * 0.9, "{flagship:?} vs {slow_ms} ms");
    assert!(midrange.p50 > slow_ms * 0.9, "{midrange:?} vs {slow_ms} ms");
    assert!(classes.iter().all(|c| c.average_power_w > 0.0));
    // A plan on one class lists none.
    let alternatives = plan_quickly(&as_alternatives("face-unlock"), 1.0);
    let alone = plan_on(
        &alternatives,
        "phone-midrange",
        Mode::OnlineHttp,
        Precision::F32,
    );
    assert!(alone.plan.device_classes.is_empty());
}

#[test]
fn a_class_that_cannot_hold_the_model_rules_the_fleet_out_and_is_named() {
    // The mid-range phones get 50 kB for the model: the f32 weights do not fit.
    let small = (
        "fleet_size = 6_000_000",
        "fleet_size = 6_000_000\nmemory_gb = 0.00005",
    );
    let fleet = plan_quickly(&edited("face-unlock", &[small]), 1.0);
    let e = plan_on(&fleet, FLEET, Mode::OnlineHttp, Precision::F32);
    let why = e.reason().unwrap_or_default();
    assert!(!e.feasible());
    assert!(why.contains("phone-midrange: needs"), "{why}");
    assert!(!why.contains("phone-flagship:"), "{why}");

    // As alternatives, the flagship alone holds it.
    let text = edited_text("face-unlock", &[small, ("edge_classes = \"fleet\"", "")]);
    let alternatives = plan_quickly(&parse(&text).unwrap_or_else(|e| panic!("{e}")), 1.0);
    let flagship = plan_on(
        &alternatives,
        "phone-flagship",
        Mode::OnlineHttp,
        Precision::F32,
    );
    assert!(flagship.feasible(), "{:?}", flagship.reason());
}

#[test]
fn each_class_draws_its_own_power_against_the_limit() {
    let s = edited(
        "face-unlock",
        &[(
            "max_device_power_watts = 3",
            "max_device_power_watts = 1e-9",
        )],
    );
    let out = plan_quickly(&s, 1.0);
    let e = plan_on(&out, FLEET, Mode::OnlineHttp, Precision::F32);
    let why = e.reason().unwrap_or_default();
    assert!(
        why.contains("phone-flagship: draws") && why.contains("phone-midrange: draws"),
        "{why}"
    );
    assert!(e.device_power_w.is_some_and(|w| w > 1e-9));
}

/// A batch job on a fleet: each class's devices compute their share of the
/// keys, so the month's energy is each class's energy for all the keys
/// (the alternatives' figures) weighted by its share, when starting the job
/// costs nothing (each device's start-up is its own, share or not).
#[test]
fn a_fleets_batch_job_spends_each_classes_energy_for_its_share_of_the_keys() {
    let no_start_up = [
        (
            "fleet_size = 400_000",
            "fleet_size = 400_000\ncold_start_ms = 0",
        ),
        (
            "fleet_size = 600_000",
            "fleet_size = 600_000\ncold_start_ms = 0",
        ),
    ];
    let alternatives_edits = [
        no_start_up[0],
        no_start_up[1],
        ("edge_classes = \"fleet\"", ""),
    ];
    let energy = |e: &Evaluation| {
        e.plan
            .cost_breakdown
            .iter()
            .filter(|l| l.item.contains("energy"))
            .map(|l| l.usd_per_month)
            .sum::<f64>()
    };
    let fleet = plan_quickly(&edited("photo-tagging-overnight", &no_start_up), 1.0);
    let alternatives = plan_quickly(&edited("photo-tagging-overnight", &alternatives_edits), 1.0);
    let on_fleet = plan_on(&fleet, FLEET, Mode::Batch, Precision::F32);
    let flagship = plan_on(&alternatives, "phone-flagship", Mode::Batch, Precision::F32);
    let midrange = plan_on(&alternatives, "phone-midrange", Mode::Batch, Precision::F32);
    for e in [on_fleet, flagship, midrange] {
        assert!(e.simulated, "{}: {:?}", e.plan.id, e.reason());
    }
    assert_eq!(on_fleet.candidate.max_batch, flagship.candidate.max_batch);
    assert_eq!(on_fleet.candidate.max_batch, midrange.candidate.max_batch);
    let expected = 0.4 * energy(flagship) + 0.6 * energy(midrange);
    let got = energy(on_fleet);
    assert!(expected > 0.0);
    assert!(
        (got - expected).abs() <= 0.02 * expected,
        "fleet {got} vs {expected} (flagship {}, mid-range {})",
        energy(flagship),
        energy(midrange)
    );
}

/// Text replacements in a shipped scenario: (anchor, replacement).
type Edits<'a> = &'a [(&'a str, &'a str)];

fn only_error(text: &str) -> ScenarioError {
    let errs = parse(text).expect_err("refused").errors;
    assert_eq!(errs.len(), 1, "{errs:#?}");
    errs.into_iter().next().expect("one")
}

#[test]
fn fleet_keys_are_checked_where_they_are_written() {
    let cases: [(Edits, &str, &str); 6] = [
        (
            &[("edge_classes = \"fleet\"", "edge_classes = \"fleets\"")],
            "targets.edge_classes",
            "alternatives, fleet",
        ),
        (
            &[
                ("edge_classes = \"fleet\"", ""),
                (
                    "fleet_size = 4_000_000",
                    "fleet_size = 4_000_000\ntraffic_share = 0.4",
                ),
            ],
            "targets.edge[0].traffic_share",
            "applies only to a fleet",
        ),
        (
            &[("fleet_size = 6_000_000", "")],
            "targets.edge[1].fleet_size",
            "missing required key",
        ),
        (
            &[(
                "fleet_size = 4_000_000",
                "fleet_size = 4_000_000\ntraffic_share = 0.4",
            )],
            "targets.edge[0].traffic_share",
            "but not for targets.edge[1]",
        ),
        (
            &[
                (
                    "fleet_size = 4_000_000",
                    "fleet_size = 4_000_000\ntraffic_share = 0.4",
                ),
                (
                    "fleet_size = 6_000_000",
                    "fleet_size = 6_000_000\ntraffic_share = 0.5",
                ),
            ],
            "targets.edge[0].traffic_share",
            "add up to 0.9",
        ),
        (
            &[(
                "seed = 8",
                "seed = 8\ntargets = [\"phone-midrange\", \"aws-c7i.large\"]",
            )],
            "search.targets",
            "lists phone-midrange but not phone-flagship",
        ),
    ];
    for (edits, key, said) in cases {
        let e = only_error(&edited_text("face-unlock", edits));
        assert_eq!(e.key, key, "{e}");
        assert!(e.message.contains(said), "{e}");
        assert!(e.line > 0, "{e}");
    }
    // Shares written with three decimals pass; all classes listed pass.
    let thirds = edited_text(
        "face-unlock",
        &[
            (
                "fleet_size = 4_000_000",
                "fleet_size = 4_000_000\ntraffic_share = 0.333",
            ),
            (
                "fleet_size = 6_000_000",
                "fleet_size = 6_000_000\ntraffic_share = 0.667",
            ),
            (
                "seed = 8",
                "seed = 8\ntargets = [\"phone-midrange\", \"phone-flagship\"]",
            ),
        ],
    );
    let s = parse(&thirds).unwrap_or_else(|e| panic!("{e}"));
    let shares: Vec<f64> = s.targets.fleet().iter().map(|(_, share)| *share).collect();
    assert_eq!(shares, [0.333, 0.667]);
}

/// Face-unlock with the classes' traffic shares stated.
fn face_unlock_with_shares(flagship: &str, midrange: &str, more: &[(&str, &str)]) -> Scenario {
    let flagship = format!("fleet_size = 4_000_000\ntraffic_share = {flagship}");
    let midrange = format!("fleet_size = 6_000_000\ntraffic_share = {midrange}");
    let mut edits = vec![
        ("fleet_size = 4_000_000", flagship.as_str()),
        ("fleet_size = 6_000_000", midrange.as_str()),
    ];
    edits.extend_from_slice(more);
    edited("face-unlock", &edits)
}

/// A class serving a sliver of the requests needs only its share of the
/// tail's requests, not a whole percentile's worth of its own.
#[test]
fn a_class_with_a_small_share_does_not_need_the_whole_percentiles_requests() {
    let s = face_unlock_with_shares("0.9999", "0.0001", &[]);
    let out = plan_quickly(&s, 1.0);
    let e = plan_on(&out, FLEET, Mode::OnlineHttp, Precision::F32);
    assert!(e.feasible(), "{:?}", e.reason());
}

/// Shares that add up to 1 within the rounding validation allows are scaled
/// to add up to 1: the mixture's tail is the same as with exact shares.
#[test]
fn shares_off_by_a_rounding_are_scaled_to_add_up_to_one() {
    let rounded = face_unlock_with_shares("0.4", "0.596", &[]);
    let shares: Vec<f64> = rounded.targets.fleet().iter().map(|(_, s)| *s).collect();
    assert!(
        (shares.iter().sum::<f64>() - 1.0).abs() < 1e-12,
        "{shares:?}"
    );
    assert!((shares[0] - 0.4 / 0.996).abs() < 1e-12, "{shares:?}");
    let tail = |s: &Scenario| {
        let out = plan_quickly(s, 1.0);
        plan_on(&out, FLEET, Mode::OnlineHttp, Precision::F32)
            .plan
            .latency_ms
            .p999
    };
    let (off, exact) = (
        tail(&rounded),
        tail(&face_unlock_with_shares("0.4", "0.6", &[])),
    );
    assert!(
        (off / exact - 1.0).abs() < 0.05,
        "p99.9 {off} ms with 0.4 + 0.596, {exact} ms with 0.4 + 0.6"
    );
}

/// A class whose own users miss the SLO is named, though the fleet's
/// percentile (over all requests) meets it.
#[test]
fn a_class_whose_users_miss_the_slo_is_named() {
    let base = face_unlock_with_shares("0.999", "0.001", &[]);
    let profiles = synthetic_profiles_with(&base, 0.6, 1.0);
    // The mid-range phone's fastest way to run the model.
    let slow_ms = profiles
        .profiles
        .iter()
        .filter(|p| p.target == "phone-midrange" && p.variant == "full")
        .map(|p| p.median_s(1) * 1000.0)
        .fold(f64::INFINITY, f64::min);
    let slo = format!("latency_ms = {}", slow_ms * 0.95);
    let s = face_unlock_with_shares("0.999", "0.001", &[("latency_ms = 150", &slo)]);
    let out = plan_quickly(&s, 1.0);
    let best = out.recommended().expect("a feasible plan");
    assert_eq!(best.candidate.target, FLEET);
    let why = out.rationale.join("\n");
    assert!(
        why.contains("Not every device class meets the SLO")
            && why.contains("phone-midrange's users (0.1% of the requests) see p99"),
        "{why}"
    );
    assert!(!why.contains("phone-flagship's users"), "{why}");
}

/// Each phone computes its owner's keys however often its owner asks: the
/// job's energy follows the devices, not the requests' shares.
#[test]
fn a_batch_jobs_keys_follow_the_devices_not_the_requests() {
    let energy = |s: &Scenario| {
        let out = plan_quickly(s, 1.0);
        let e = plan_on(&out, FLEET, Mode::Batch, Precision::F32);
        assert!(e.simulated, "{:?}", e.reason());
        e.plan.cost_usd_per_month
    };
    let by_devices = energy(&load("photo-tagging-overnight"));
    let skewed = energy(&edited(
        "photo-tagging-overnight",
        &[
            (
                "fleet_size = 400_000",
                "fleet_size = 400_000\ntraffic_share = 0.9",
            ),
            (
                "fleet_size = 600_000",
                "fleet_size = 600_000\ntraffic_share = 0.1",
            ),
        ],
    ));
    assert!(
        (skewed / by_devices - 1.0).abs() < 0.01,
        "${skewed}/month with 90% of requests on the flagships, ${by_devices} by devices"
    );
}

#[test]
fn a_fleet_needs_its_classes() {
    let text = edited_text("face-unlock", &[]);
    let start = text.find("[[targets.edge]]").expect("edge targets");
    let end = text.find("# Listed so the plan").expect("the cloud target");
    let without_edge = format!("{}{}", &text[..start], &text[end..]);
    let e = only_error(&without_edge);
    assert_eq!(e.key, "targets.edge_classes", "{e}");
    assert!(e.message.contains("needs its device classes"), "{e}");
}

/// A precision one class cannot run rules the fleet's plans at it out, said.
#[test]
fn a_precision_one_class_cannot_run_is_a_rejected_fleet_plan() {
    let s = edited(
        "face-unlock",
        &[(
            "fleet_size = 6_000_000",
            "fleet_size = 6_000_000\nprecisions = [\"f32\"]",
        )],
    );
    // As the pipeline measures: no int8 profile where int8 cannot run.
    let mut profiles = synthetic_profiles_with(&s, 0.6, 1.0);
    profiles
        .profiles
        .retain(|p| !(p.target == "phone-midrange" && p.precision == Precision::Int8));
    let options = PlanOptions {
        sensitivity: false,
        ..PlanOptions::quick(7)
    };
    let out = plan::plan(&s, &profiles, &WhatIf::default(), &options);
    let e = plan_on(&out, FLEET, Mode::OnlineHttp, Precision::Int8);
    let why = e.reason().unwrap_or_default();
    assert!(!e.feasible());
    assert!(
        why.contains("phone-midrange cannot run full at int8"),
        "{why}"
    );
}

/// The fixture fleet of phones and watches: a watch holds 4 MB, the full
/// model's f32 weights take 5.3 MB, the distilled model's 137 kB.
fn wearables() -> Scenario {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/planning/tiered-wearables.toml");
    scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// A fleet whose classes cannot all run the best model gets a tiered plan:
/// the phones run the full model, the watches the distilled one. One build
/// everywhere is either too big for the watches or gives up the phones'
/// accuracy; the tiered plan keeps each class's best that fits, and with
/// latency far inside the SLO it ties on figures and wins on accuracy.
#[test]
fn a_fleet_whose_classes_need_different_models_gets_a_tiered_plan() {
    let s = wearables();
    // As the pipeline projects: the full model does not fit a watch.
    let mut profiles = synthetic_profiles_with(&s, 0.6, 1.0);
    for p in &mut profiles.profiles {
        if p.target == "watch" && p.variant == "full" {
            p.infeasible = Some(Infeasible::DoesNotFit {
                target: "watch".into(),
                needed_bytes: 5_300_000,
                available_bytes: 4_000_000,
            });
        }
    }
    let options = PlanOptions {
        sensitivity: false,
        ..PlanOptions::quick(7)
    };
    let out = plan::plan(&s, &profiles, &WhatIf::default(), &options);
    let uniform = |variant: &str| {
        edge_plans(&out)
            .into_iter()
            .find(|e| e.candidate.class_builds.is_empty() && e.candidate.variant == variant)
            .unwrap_or_else(|| panic!("no uniform {variant} plan"))
    };
    let full = uniform("full");
    assert!(!full.feasible());
    // Said once: the class's memory check, not again as its projection's.
    let why = full.reason().unwrap_or_default();
    assert_eq!(why.matches("watch").count(), 1, "{why}");
    assert!(
        why.contains("watch: needs 5.3 MB, device has 4.0 MB"),
        "{why}"
    );
    assert!(
        uniform("distilled").feasible(),
        "{:?}",
        uniform("distilled").reason()
    );

    let tiered: Vec<&Evaluation> = edge_plans(&out)
        .into_iter()
        .filter(|e| !e.candidate.class_builds.is_empty())
        .collect();
    assert_eq!(tiered.len(), 1, "one tiered plan");
    let tiered = tiered[0];
    assert!(tiered.feasible(), "{:?}", tiered.reason());
    let builds: Vec<(&str, &str)> = tiered
        .candidate
        .class_builds
        .iter()
        .map(|b| (b.class.as_str(), b.variant.as_str()))
        .collect();
    assert_eq!(builds, [("phone-flagship", "full"), ("watch", "distilled")]);
    assert!(
        tiered
            .plan
            .id
            .contains("/full&distilled/tiled-f32&tiled-f32/"),
        "{}",
        tiered.plan.id
    );
    // Half the requests at full agreement, half at the distilled model's
    // declared 0.93 / 0.95.
    let expected = 0.5 + 0.5 * 0.93 / 0.95;
    assert!(
        (tiered.plan.accuracy_agreement - expected).abs() < 1e-9,
        "{} vs {expected}",
        tiered.plan.accuracy_agreement
    );
    // Each class's users see their own build: the phones' median is the
    // full model's there, the watches' the distilled model's.
    let median_ms = |variant: &str, target: &str| {
        profiles
            .find(variant, BackendKind::Tiled, Precision::F32, target)
            .expect("profile")
            .median_s(1)
            * 1000.0
    };
    for class in &tiered.plan.device_classes {
        let build = class.build.as_ref().expect("a class's build");
        let wanted = median_ms(&build.model_variant, &class.target);
        assert!(
            (class.latency_ms.p50 / wanted - 1.0).abs() < 0.15,
            "{}: p50 {} ms vs its build's median {wanted} ms",
            class.target,
            class.latency_ms.p50
        );
        assert!(class
            .slo_latency_ms
            .is_some_and(|ms| ms >= class.latency_ms.p50));
    }
    let best = out.recommended().expect("a feasible plan");
    assert_eq!(best.plan.id, tiered.plan.id);
    let why = out.rationale.join("\n");
    assert!(
        why.contains("a build per device class (full tiled f32 on phone-flagship, distilled tiled f32 on watch"),
        "{why}"
    );
    assert!(
        why.contains("distilled: tiled f32 runs a batch of 1 in"),
        "{why}"
    );
    assert!(
        why.contains("too little to give up 1.1 points of accuracy agreement"),
        "{why}"
    );
}

/// When every class's best build is the same, there is no tiered plan: the
/// fleet's uniform plan is it.
#[test]
fn a_fleet_whose_classes_agree_gets_no_tiered_plan() {
    let out = plan_quickly(&load("face-unlock"), 1.0);
    assert!(edge_plans(&out)
        .iter()
        .all(|e| e.candidate.class_builds.is_empty()));
    // Nor do classes planned as alternatives.
    let s = wearables();
    let alternatives = parse(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/planning/tiered-wearables.toml"),
        )
        .expect("fixture")
        .replace("edge_classes = \"fleet\"", ""),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.targets.edge.len(), alternatives.targets.edge.len());
    let out = plan_quickly(&alternatives, 1.0);
    assert!(edge_plans(&out)
        .iter()
        .all(|e| e.candidate.class_builds.is_empty()));
}

/// The report says what each class runs: a row of builds instead of one
/// variant, and each class's build and its latency at the SLO's percentile
/// in the device-class table; plan.json keeps each class's build.
#[test]
fn a_tiered_plan_report_names_each_class_build() {
    let report = common::report_quickly(&wearables());
    let plan = report.recommended.as_ref().expect("a recommended plan");
    assert!(plan.tiered());
    let md = workbench::report::markdown(&report);
    let builds_row = md
        .lines()
        .find(|l| l.starts_with("| Builds (one per device class)"))
        .unwrap_or_else(|| panic!("no builds row in\n{md}"));
    assert!(
        builds_row.contains("full tiled f32 on phone-flagship, distilled tiled f32 on watch"),
        "{builds_row}"
    );
    assert!(!md.contains("| Model variant "), "{md}");
    let table_header = md
        .lines()
        .find(|l| l.starts_with("| Class "))
        .expect("device-class table");
    assert!(
        table_header.contains(" Runs ") && table_header.contains(" p99 |"),
        "{table_header}"
    );
    // At a p95 SLO the table gives each class's p95.
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/planning/tiered-wearables.toml"),
    )
    .expect("fixture")
    .replace("latency_percentile = 99", "latency_percentile = 95");
    let p95 = common::report_quickly(&parse(&text).unwrap_or_else(|e| panic!("{e}")));
    let md95 = workbench::report::markdown(&p95);
    let header = md95
        .lines()
        .find(|l| l.starts_with("| Class "))
        .expect("device-class table");
    assert!(
        header.contains(" p95 |") && !header.contains(" p99 |"),
        "{header}"
    );
    let classes = &p95.recommended.as_ref().expect("a plan").device_classes;
    assert!(classes
        .iter()
        .all(|c| c.slo_latency_ms.is_some_and(|ms| ms <= c.latency_ms.p99)));
    let json = serde_json::to_value(plan).expect("plan json");
    let builds: Vec<&str> = json["device_classes"]
        .as_array()
        .expect("device classes")
        .iter()
        .map(|c| c["build"]["model_variant"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(builds, ["full", "distilled"]);
}

/// Under a tight SLO the tiered plan is feasible but slower than the
/// distilled model everywhere, which wins on latency; the rationale says
/// what the tiered plan would have given and why it was not chosen.
#[test]
fn a_tiered_plan_that_loses_on_latency_is_explained() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/planning/tiered-wearables.toml"),
    )
    .expect("fixture")
    .replace("latency_ms = 100", "latency_ms = 0.09");
    let out = plan_quickly(&parse(&text).unwrap_or_else(|e| panic!("{e}")), 1.0);
    let best = out.recommended().expect("a feasible plan");
    assert!(best.candidate.class_builds.is_empty());
    assert_eq!(best.candidate.variant, "distilled");
    let tiered = edge_plans(&out)
        .into_iter()
        .find(|e| !e.candidate.class_builds.is_empty())
        .expect("a tiered plan");
    assert!(tiered.feasible(), "{:?}", tiered.reason());
    let why = out.rationale.join("\n");
    assert!(
        why.contains("The tiered plan (full tiled f32 on phone-flagship, distilled tiled f32 on watch) agrees more with the reference model (98.9% against 97.9%)"),
        "{why}"
    );
}

/// A rarely used feature on a big fleet (face unlock at 1 request a second
/// over 10 M phones: one unlock per phone every few months): the sampled
/// devices are many more, each still at its own rate, so the p99 is judged
/// (the device's own run time: no queueing at that rate) rather than "too few
/// requests", and a prediction costs what it costs at the shipped rate.
#[test]
fn a_rarely_used_feature_on_a_big_fleet_is_judged_not_refused() {
    let busy = load("face-unlock");
    let rare = edited("face-unlock", &[("rate_per_s = 9_000", "rate_per_s = 1")]);
    let profiles = synthetic_profiles_with(&rare, 0.6, 1.0);
    let out = plan_quickly(&rare, 1.0);
    let e = plan_on(&out, FLEET, Mode::OnlineHttp, Precision::F32);
    assert!(e.simulated && e.feasible(), "{:?}", e.reason());
    let slowest_ms = profiles
        .profiles
        .iter()
        .filter(|p| {
            p.variant == "full" && p.backend == e.candidate.backend && p.precision == Precision::F32
        })
        .map(|p| p.p99_s(1) * 1000.0)
        .fold(0.0, f64::max);
    assert!(
        e.plan.latency_ms.p99 <= slowest_ms * 1.05,
        "p99 {} ms, slowest class's own p99 {slowest_ms} ms",
        e.plan.latency_ms.p99
    );
    assert!(e.plan.utilisation < 1e-3, "{}", e.plan.utilisation);

    let at_busy = plan_quickly(&busy, 1.0);
    let b = plan_on(&at_busy, FLEET, Mode::OnlineHttp, Precision::F32);
    let (rare_e, busy_e) = (
        e.plan.energy_mj_per_prediction.expect("energy"),
        b.plan.energy_mj_per_prediction.expect("energy"),
    );
    assert!(
        (rare_e / busy_e - 1.0).abs() < 0.05,
        "{rare_e} vs {busy_e} mJ"
    );
    let (rare_c, busy_c) = (e.plan.cost_usd_per_million, b.plan.cost_usd_per_million);
    assert!(
        busy_c > 0.0 && (rare_c / busy_c - 1.0).abs() < 0.05,
        "${rare_c} vs ${busy_c} per million"
    );
    // Planned as alternatives, each class alone carries the rare traffic.
    let alone = edited(
        "face-unlock",
        &[
            ("rate_per_s = 9_000", "rate_per_s = 1"),
            ("edge_classes = \"fleet\"", ""),
        ],
    );
    let out = plan_quickly(&alone, 1.0);
    let e = plan_on(&out, "phone-midrange", Mode::OnlineHttp, Precision::F32);
    assert!(e.simulated && e.feasible(), "{:?}", e.reason());
}

/// A fleet plan none of whose requests completes (each needs 1,000,000
/// predictions: seconds of compute against a 1 s deadline) reports no
/// latency at all (0, as a plan on one class does), not the 1 ns floor of a
/// search over an empty distribution, and no energy per prediction served.
#[test]
fn a_fleet_plan_whose_every_request_fails_reports_no_latency() {
    let s = edited(
        "face-unlock",
        &[(
            "response_bytes = 512",
            "response_bytes = 512\npredictions_per_request = 1_000_000",
        )],
    );
    let out = plan_quickly(&s, 1.0);
    let e = plan_on(&out, FLEET, Mode::OnlineHttp, Precision::F32);
    assert!(e.simulated, "{:?}", e.reason());
    assert_eq!(e.plan.failure_rate, 1.0, "{}", e.plan.id);
    assert!(e.plan.nothing_completed());
    let l = e.plan.latency_ms;
    assert_eq!((l.p50, l.p90, l.p99, l.p999), (0.0, 0.0, 0.0, 0.0), "{l:?}");
    assert_eq!(e.slo_latency_ms, None);
    assert!(
        e.reason()
            .is_some_and(|r| r.contains("100% of requests fail")),
        "{:?}",
        e.reason()
    );
}

/// Energy is per prediction, not per request: a request of 10 predictions
/// costs about ten times one prediction's energy, so the figure per
/// prediction stays put (a little lower: the fixed cost per batch is shared).
#[test]
fn energy_is_per_prediction_whatever_a_request_asks() {
    let energy = |s: &Scenario| {
        let out = plan_quickly(s, 1.0);
        plan_on(&out, FLEET, Mode::OnlineHttp, Precision::F32)
            .plan
            .energy_mj_per_prediction
            .expect("edge energy")
    };
    let one = energy(&load("face-unlock"));
    let ten = energy(&edited(
        "face-unlock",
        &[(
            "response_bytes = 512",
            "response_bytes = 512\npredictions_per_request = 10",
        )],
    ));
    assert!(
        ten > one * 0.3 && ten < one * 1.05,
        "{ten} mJ per prediction at 10 a request, {one} at 1"
    );
}

/// An on-device batch job's energy per prediction is the job's: its monthly
/// energy (the cost line) over the predictions it computes a month (every
/// key's `predictions_per_request`, once a period).
#[test]
fn an_on_device_batch_job_reports_its_energy_per_prediction() {
    let s = load("photo-tagging-overnight");
    let out = plan_quickly(&s, 1.0);
    let job = edge_plans(&out)
        .into_iter()
        .find(|e| e.candidate.mode == Mode::Batch && e.simulated)
        .expect("an on-device batch plan");
    let mj = job.plan.energy_mj_per_prediction.expect("the job's energy");
    let energy_usd = edge_energy_usd(&job.plan);
    let joules = energy_usd / plan::evaluate::ENERGY_USD_PER_KWH * 3.6e6;
    let month_s = workbench::sim::cost::HOURS_PER_MONTH * 3600.0;
    // the mean staleness is (period + duration) / 2, and the job lasts
    // seconds against a period of about a day
    let period_s = 2.0 * job.plan.staleness_s.expect("a staleness");
    let runs = month_s / period_s;
    let predictions = runs * 1_000_000.0 * 5_000.0;
    let expected = joules / predictions * 1000.0;
    assert!(
        (mj / expected - 1.0).abs() < 0.02,
        "{mj} mJ, expected {expected} mJ"
    );
}

/// Rarer still (a thousandth of a request a second over 10 M phones): even
/// the largest sample of each class sees a few requests in 30 days, so its
/// devices are simulated at the least rate that gives enough, and the
/// rationale says so for each class, while the service as a whole (judged
/// in the cloud at its own rate) is not raised.
#[test]
fn a_fleet_too_rare_for_its_largest_sample_is_simulated_at_a_raised_rate_and_said() {
    let rare = edited(
        "face-unlock",
        &[("rate_per_s = 9_000", "rate_per_s = 0.001")],
    );
    let out = plan_quickly(&rare, 1.0);
    let e = plan_on(&out, FLEET, Mode::OnlineHttp, Precision::F32);
    assert!(e.simulated && e.feasible(), "{:?}", e.reason());
    let note = out
        .rationale
        .iter()
        .find(|l| l.contains("raised rate"))
        .unwrap_or_else(|| panic!("{:?}", out.rationale));
    assert!(
        note.starts_with("Devices used so rarely")
            && note.contains("phone-flagship (16,384 simulated)")
            && note.contains("phone-midrange (16,384 simulated)")
            && note.contains("billed at the real rate"),
        "{note}"
    );
}
