//! What report.md says of requests of many predictions, peaking traffic,
//! unknown agreements, peak-less targets and a hybrid plan's replicas: each
//! found by a reviewer reading the report as an ML engineer would.

use std::path::Path;

use workbench::plan::evaluate::{pruned, Evaluation};
use workbench::plan::rationale::{constraint_checks, explain};
use workbench::plan::{Candidate, ComputeProfile, ProfileSet};
use workbench::report::fixtures::sample_report;
use workbench::report::{markdown, ConstraintCheck, Fallback, FigureSource, Placement};
use workbench::scenario::{self, Mode, Scenario};
use workbench::sim::ProfilePoint;
use workbench_kernels::{BackendKind, Precision};

/// feed-ranking-bursty's terms: 200 predictions a request, a floor of 80,000
/// predictions/s, traffic given by `traffic` (a `[traffic]` table's keys).
fn feed_ranking(traffic: &str) -> Scenario {
    let text = format!(
        r#"
name = "feed-ranking"

[model]
reference = "ranker"

[[model.variants]]
name = "ranker"
family = "mlp"
accuracy = 0.78
input = 192
hidden = [256, 128]
output = 1

[[model.variants]]
name = "ranker-lite"
family = "mlp"
accuracy = 0.775
input = 192
hidden = [64]
output = 1

[traffic]
{traffic}
duration_s = 600

[inputs]
space = "unbounded"
request_bytes = 40_000
response_bytes = 1_600
predictions_per_request = 200

[objectives]
latency_percentile = 99
latency_ms = 80
min_throughput_per_s = 80_000
accuracy_floor = 0.98
monthly_budget_usd = 3_000

[targets]
[[targets.cloud]]
catalog = "aws-c7g.xlarge"

[search]
modes = ["online-http"]
placements = ["cloud"]
"#
    );
    match scenario::parse_str(&text, Path::new("feed-ranking.toml")) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

const POISSON: &str = "process = \"poisson\"\nrate_per_s = 400";

fn candidate(variant: &str, replicas: u32) -> Candidate {
    Candidate {
        mode: Mode::OnlineHttp,
        placement: scenario::Placement::Cloud,
        target: "aws-c7g.xlarge".into(),
        fallback_target: None,
        fallback_model: None,
        replicas,
        variant: variant.into(),
        backend: BackendKind::Tiled,
        precision: Precision::F32,
        max_batch: 1,
        max_delay_ms: 0.0,
        precompute_fraction: None,
        class_builds: Vec::new(),
    }
}

/// A simulated plan that meets every constraint, with these figures.
fn feasible(c: Candidate, agreement: f64, p99_ms: f64, usd: f64, capacity_rps: f64) -> Evaluation {
    let mut e = pruned(c, FigureSource::Projected, agreement, 0.0, String::new());
    e.rejected.clear();
    e.simulated = true;
    e.capacity_rps = capacity_rps;
    e.slo_latency_ms = Some(p99_ms);
    e.plan.simulated = true;
    e.plan.latency_ms.p99 = p99_ms;
    e.plan.cost_usd_per_month = usd;
    e
}

fn row<'a>(checks: &'a [ConstraintCheck], name: &str) -> &'a ConstraintCheck {
    checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no row {name} in {checks:?}"))
}

/// Tiled f32 of `variant` on the scenario's target: a batch of 32 gives the
/// most predictions per second, 64 the largest batch measured.
fn profiles(variants: &[&str]) -> ProfileSet {
    let mut set = ProfileSet::default();
    for variant in variants {
        let points = [(1u32, 2e-6), (8, 8e-6), (32, 20e-6), (64, 48e-6)]
            .into_iter()
            .map(|(batch_size, median_s)| ProfilePoint {
                batch_size,
                median_s,
                p99_s: median_s * 1.2,
            })
            .collect();
        set.profiles.push(ComputeProfile {
            variant: variant.to_string(),
            backend: BackendKind::Tiled,
            precision: Precision::F32,
            target: "aws-c7g.xlarge".into(),
            source: FigureSource::Projected,
            points,
            infeasible: None,
        });
    }
    set
}

/// The throughput floor counts predictions: 3,513 requests/s of 200 are
/// 702,600 predictions/s, above the 80,000 asked. The table had compared
/// the requests with the floor ("80,000 req/s ... 3,513 req/s ... NO") on
/// a plan the planner had found feasible.
#[test]
fn the_throughput_row_counts_predictions_as_the_floor_does() {
    let s = feed_ranking(POISSON);
    let e = feasible(candidate("ranker", 1), 1.0, 9.0, 257.0, 3_513.0);
    let checks = constraint_checks(&s, &workbench::plan::ProfileSet::default(), Some(&e));
    let throughput = row(&checks, "throughput capacity");
    assert_eq!(throughput.required, ">= 80,000 predictions/s");
    assert_eq!(
        throughput.achieved,
        "702,600 predictions/s (3,513 req/s of 200)"
    );
    assert!(throughput.ok && throughput.checked, "{throughput:?}");
    // 399 requests/s of 200 are 79,800 predictions/s: short of the floor.
    let short = feasible(candidate("ranker", 1), 1.0, 9.0, 257.0, 399.0);
    let checks = constraint_checks(&s, &workbench::plan::ProfileSet::default(), Some(&short));
    assert!(!row(&checks, "throughput capacity").ok);
}

/// With 200 predictions a request the rationale said "runs a batch of 1 in
/// 2.00 µs": a request runs 200, as the planner times it, in chunks of the
/// batch with the most predictions per second beyond the largest measured.
#[test]
fn the_rationale_says_how_a_requests_predictions_run() {
    let s = feed_ranking(POISSON);
    let set = profiles(&["ranker"]);
    let best = feasible(candidate("ranker", 1), 1.0, 9.0, 257.0, 3_513.0);
    let lines = explain(&s, &set, &[best]);
    let text = lines.join("\n");
    assert!(
        lines[0].contains("unbatched; each request asks for 200 predictions."),
        "{text}"
    );
    // 200 > 64: ceil(200 / 32) = 7 runs of batch 32, the planner's time.
    let planner_s = set.profiles[0].per_request(200).median_s(1);
    let expected = format!(
        "tiled f32 runs each request's 200 predictions as 7 runs of batch 32 (its most predictions per second) in about {} on aws-c7g.xlarge (projected).",
        workbench::report::format::ms(planner_s * 1000.0)
    );
    assert!(
        lines.iter().any(|l| l == &expected),
        "{expected}\nnot in\n{text}"
    );
    assert!(!text.contains("runs a batch of 1 in"), "{text}");
}

/// ticket-summary's runner-up agreed 99.48% to the recommended plan's 98.00%
/// at the same cost; the line named cost and latency alone.
#[test]
fn the_runner_up_line_names_a_different_agreement() {
    let s = feed_ranking(POISSON);
    let set = profiles(&["ranker", "ranker-lite"]);
    let best = feasible(candidate("ranker-lite", 1), 0.98, 107.0, 76.98, 3_513.0);
    let runner = feasible(candidate("ranker", 1), 0.9948, 116.0, 76.98, 3_513.0);
    let text = explain(&s, &set, &[best.clone(), runner]).join("\n");
    assert!(
        text.contains("(same cost), p99 116 ms vs 107 ms, agreement 99.5% vs 98%."),
        "{text}"
    );
    // The same agreement: nothing to add.
    let same = feasible(candidate("ranker", 1), 0.98, 116.0, 76.98, 3_513.0);
    let text = explain(&s, &set, &[best, same]).join("\n");
    assert!(
        text.contains("p99 116 ms vs 107 ms.") && !text.contains("agreement 98.00% vs"),
        "{text}"
    );
}

/// A plan whose variant declares no accuracy carries agreement 0 in
/// plan.json; report.md read "0.00%" (tables) and "0%" (constraints).
#[test]
fn an_unknown_agreement_reads_unknown_in_the_report() {
    let s = feed_ranking(POISSON);
    let mut unknown = feasible(candidate("ranker", 1), 0.0, 9.0, 257.0, 3_513.0);
    unknown.rejected = vec!["agreement unknown".into()];
    let checks = constraint_checks(&s, &workbench::plan::ProfileSet::default(), Some(&unknown));
    let accuracy = row(&checks, "accuracy agreement");
    assert_eq!(accuracy.achieved, "unknown");
    assert!(!accuracy.ok);

    let mut report = sample_report();
    report.alternatives[0].plan.accuracy_agreement = 0.0;
    let id = report.alternatives[0].plan.id.clone();
    let md = markdown(&report);
    let plan_row = md
        .lines()
        .find(|l| l.starts_with(&format!("| `{id}`")))
        .unwrap_or_else(|| panic!("no row for {id} in\n{md}"));
    let cells: Vec<&str> = plan_row.split('|').map(str::trim).collect();
    // cells: "", Plan, p99, Cost/month, Cost/1M pred., Agreement, ...
    assert_eq!(cells[5], "unknown", "{plan_row}");
    // The JSON keeps its 0.
    let json = workbench::report::plan_json(&report);
    assert!(json.contains("\"accuracy_agreement\": 0"), "{json}");
}

/// A target given by its speed factor states no peak: its kernels' "Of
/// peak" read "0.0%", as if they did nothing.
#[test]
fn a_kernel_without_a_peak_shows_no_fraction_of_it() {
    let mut report = sample_report();
    report.kernels.truncate(1);
    report.kernels[0].fraction_of_peak = 0.0;
    let md = markdown(&report);
    let section = &md[md.find("## Kernel measurements").unwrap_or(0)..];
    let kernel_row: Vec<&str> = section
        .lines()
        .find(|l| l.starts_with(&format!("| {}", report.kernels[0].workload)))
        .unwrap_or_else(|| panic!("no kernel row in\n{section}"))
        .split('|')
        .map(str::trim)
        .collect();
    // cells: "", Workload, Backend, Precision, Batch, Median, p90, p99, Achieved, Of peak, Figure
    assert_eq!(kernel_row[9], "-", "{kernel_row:?}");
    assert!(
        section.contains("Of peak \"-\": no peak is known"),
        "{section}"
    );
}

/// Diurnal traffic is simulated at its peak and the replicas that carry it
/// are billed all month: the headline had named the mean ("at 2,000 req/s").
#[test]
fn peaking_traffic_is_named_at_its_peak_and_billed_at_it() {
    let s = feed_ranking("process = \"diurnal\"\nrate_per_s = 2000\npeak_factor = 4");
    let set = profiles(&["ranker"]);
    let best = feasible(candidate("ranker", 3), 1.0, 9.0, 887.17, 9_000.0);
    let text = explain(&s, &set, std::slice::from_ref(&best)).join("\n");
    assert!(
        text.contains("against an SLO of 80.0 ms at the peak 8,000 req/s (mean 2,000 req/s),"),
        "{text}"
    );
    assert!(
        text.contains("Instances are sized for the peak of 8,000 req/s (4.0x the mean 2,000 req/s): the 3 replicas are billed all month at that count"),
        "{text}"
    );
    // Bursts of 1,600/s (20 s on, 60 s off) averaging 400/s.
    let s =
        feed_ranking("process = \"bursty\"\nrate_per_s = 400\nburst_on_s = 20\nburst_off_s = 60");
    let text = explain(&s, &set, std::slice::from_ref(&best)).join("\n");
    assert!(
        text.contains("at the peak 1,600 req/s in bursts (mean 400 req/s),"),
        "{text}"
    );
    assert!(text.contains("sized for the peak of 1,600 req/s"), "{text}");
    // Steady traffic: the one rate, no sizing sentence.
    let text = explain(&feed_ranking(POISSON), &set, &[best]).join("\n");
    assert!(
        text.contains("at 400 req/s,") && !text.contains("sized for the peak"),
        "{text}"
    );
}

/// A hybrid plan's replica count is its cloud fallback's: the table's
/// "Replicas" row and the summary's "2 x device + cloud" named no owner.
#[test]
fn a_hybrid_plans_replicas_are_the_cloud_fallbacks() {
    let mut report = sample_report();
    let Some(plan) = report.recommended.as_mut() else {
        panic!("the sample recommends a plan");
    };
    plan.placement = Placement::Hybrid;
    plan.target = "raspberry-pi-4 + aws-c7i.xlarge".into();
    plan.replicas = 2;
    plan.fallback = Some(Fallback {
        target: "aws-c7i.xlarge".into(),
        model_variant: "base".into(),
        backend: BackendKind::Tiled,
        precision: Precision::F32,
    });
    let md = markdown(&report);
    let replicas = md
        .lines()
        .find(|l| l.starts_with("| Replicas"))
        .unwrap_or_else(|| panic!("no replicas row in\n{md}"));
    assert!(
        replicas.starts_with("| Replicas (cloud fallback) ") && replicas.contains("| 2 "),
        "{replicas}"
    );
    assert!(
        md.contains("on **raspberry-pi-4 + 2 x aws-c7i.xlarge (cloud fallback)**"),
        "{md}"
    );
}
