//! A replayed trace is the user's own traffic: every arrival is replayed and
//! measured wherever its timestamps start (a warm-up of its first arrivals
//! aside), a trace too short for the SLO percentile is replayed in laps, and
//! the rates the planner bills, sizes and reports at are the replayed ones.

mod common;

use std::path::PathBuf;

use common::{plan_quickly, report_quickly, with_trace};
use workbench::scenario::{self, ArrivalProcess, Scenario};

/// One cloud target, online over HTTP only: a plan per replica count.
const BASE: &str = r#"
name = "trace-replay-test"

[model]
[[model.variants]]
name = "m"
family = "mlp"
input = 32
hidden = [64]
output = 4

[traffic]
process = "trace"
trace_csv = "trace.csv"
EXTRA

[inputs]
space = "unbounded"
request_bytes = 100
response_bytes = 10

[objectives]
latency_percentile = PERCENTILE
latency_ms = 50

[targets]
[[targets.cloud]]
catalog = "aws-c7i.large"

[search]
modes = ["online-http"]
placements = ["cloud"]
max_replicas = 8
seed = 3
"#;

/// The scenario with `csv` as its trace, `extra` in its traffic table and
/// the SLO at `percentile`, read from a scratch directory.
fn trace_scenario(name: &str, csv: &str, extra: &str, percentile: f64) -> Scenario {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("trace-replay-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    std::fs::write(dir.join("trace.csv"), csv).expect("write trace");
    let text = BASE
        .replace("EXTRA", extra)
        .replace("PERCENTILE", &percentile.to_string());
    let parsed = scenario::parse_str(&text, &dir.join("s.toml"));
    std::fs::remove_dir_all(&dir).expect("remove scratch dir");
    match parsed {
        Ok(s) => s,
        Err(e) => panic!("{name}: {e}"),
    }
}

/// `n` arrivals evenly spread over [start_s, start_s + span_s).
fn even(n: usize, start_s: f64, span_s: f64) -> Vec<f64> {
    (0..n)
        .map(|i| start_s + span_s * i as f64 / n as f64)
        .collect()
}

fn csv(timestamps_s: &[f64]) -> String {
    let mut out = String::from("timestamp_s\n");
    for t in timestamps_s {
        out.push_str(&format!("{t}\n"));
    }
    out
}

fn timestamps(s: &Scenario) -> &[f64] {
    match &s.traffic.process {
        ArrivalProcess::Trace { timestamps_s, .. } => timestamps_s,
        other => panic!("not a trace: {other:?}"),
    }
}

/// Every simulated plan judged its SLO percentile: none lacks requests.
fn every_plan_is_judged(s: &Scenario, what: &str) {
    let out = plan_quickly(s, 1.0);
    let simulated: Vec<_> = out.evaluations.iter().filter(|e| e.simulated).collect();
    assert!(!simulated.is_empty(), "{what}: nothing simulated");
    for e in simulated {
        let why = e.rejected.join("; ");
        assert!(
            !why.contains("requests simulated") && e.slo_latency_ms.is_some(),
            "{what}: {}: {why}",
            e.plan.id
        );
    }
}

#[test]
fn a_trace_that_starts_late_is_replayed_from_its_first_arrival() {
    // 4,000 arrivals between 15 and 25 s: the replay starts at 15 s
    let s = trace_scenario("late", &csv(&even(4000, 15.0, 10.0)), "", 99.0);
    let ts = timestamps(&s);
    assert_eq!(ts.len(), 4000);
    assert_eq!(ts[0], 0.0);
    assert!(
        (s.traffic.duration_s - 10.0).abs() < 0.01,
        "{}",
        s.traffic.duration_s
    );
    assert!(
        (s.traffic.rate_per_s - 400.0).abs() < 1.0,
        "{}",
        s.traffic.rate_per_s
    );
    every_plan_is_judged(&s, "late, validated");
    // An explicit window is on the trace's clock: 20 s holds half of it
    // (and the arrival at 20 s).
    let s = trace_scenario(
        "late-cut",
        &csv(&even(4000, 15.0, 10.0)),
        "duration_s = 20",
        99.0,
    );
    assert_eq!(timestamps(&s).len(), 2001);
    assert!((s.traffic.duration_s - 5.0).abs() < 1e-9);
    assert!((s.traffic.rate_per_s - 400.2).abs() < 1e-6);
}

#[test]
fn a_trace_built_in_code_that_starts_late_is_measured_too() {
    // Not shifted by validation: the run must reach arrivals at 1000-1010 s.
    let mut s = with_trace(
        &trace_scenario("base-late", &csv(&even(200, 0.0, 10.0)), "", 99.0),
        even(4000, 1000.0, 10.0),
        1010.0,
    );
    s.traffic.rate_per_s = 400.0;
    every_plan_is_judged(&s, "late, in code");
}

#[test]
fn a_burst_at_the_start_of_a_trace_is_measured() {
    // 3,000 arrivals at 0 s, then 1,000 over 10 s: a warm-up of the first
    // half second would skip the burst and leave 950 for a p99 (needs 1,000)
    let mut ts = vec![0.0; 3000];
    ts.extend(even(1000, 0.01, 10.0));
    let s = trace_scenario("burst", &csv(&ts), "", 99.0);
    every_plan_is_judged(&s, "burst");
}

#[test]
fn the_first_of_two_bursts_a_day_apart_is_measured() {
    // 1,500 arrivals in 5 s, then 600 more 100,000 s later: a warm-up of 5%
    // of the window's time would skip the whole first burst
    let mut ts = even(1500, 0.0, 5.0);
    ts.extend(even(600, 100_000.0, 5.0));
    let s = trace_scenario("gap", &csv(&ts), "", 99.0);
    every_plan_is_judged(&s, "gap");
}

#[test]
fn a_whole_trace_too_short_for_its_percentile_is_replayed_in_laps() {
    // 500 arrivals for a p99 (1,000 measured), 4,000 for a p99.9 (10,000)
    let s = trace_scenario("short-p99", &csv(&even(500, 0.0, 10.0)), "", 99.0);
    every_plan_is_judged(&s, "500 arrivals, p99");
    let s = trace_scenario("short-p999", &csv(&even(4000, 0.0, 10.0)), "", 99.9);
    every_plan_is_judged(&s, "4000 arrivals, p99.9");
}

#[test]
fn an_explicit_duration_sets_the_rate_of_the_window_it_replays() {
    // 2,000 arrivals in the first 10 s, 2,000 more 100,000 s later: 20 s
    // replays the first 2,000, a mean of 100/s over the window (not the
    // 0.04/s of the whole trace)
    let mut ts = even(2000, 0.0, 10.0);
    ts.extend(even(2000, 100_000.0, 10.0));
    let s = trace_scenario("cut", &csv(&ts), "duration_s = 20", 99.0);
    assert_eq!(timestamps(&s).len(), 2000);
    assert_eq!(s.traffic.duration_s, 20.0);
    assert!(
        (s.traffic.rate_per_s - 100.0).abs() < 1e-9,
        "{}",
        s.traffic.rate_per_s
    );
    // the plans are billed at it: egress for 100 responses of 10 B a second
    let out = plan_quickly(&s, 1.0);
    let best = out.recommended().expect("a plan");
    assert!(
        best.plan.throughput_rps > 50.0 && best.plan.throughput_rps < 200.0,
        "{}",
        best.plan.throughput_rps
    );
}

#[test]
fn a_traces_peak_is_its_busiest_second() {
    // 1,000 arrivals in the first second, 1,000 over the next ten: mean 182/s
    let mut ts = even(1000, 0.0, 1.0);
    ts.extend(even(1000, 1.0, 10.0));
    let s = trace_scenario("peak", &csv(&ts), "", 99.0);
    let peak = s.traffic.peak_rate_per_s();
    assert!((s.traffic.rate_per_s - 2000.0 / 10.99).abs() < 1.0);
    assert!((999.0..=1001.0).contains(&peak), "{peak}");
    // one arrival every 5 s: a second holds one at most
    let s = trace_scenario("slow", &csv(&even(200, 0.0, 1000.0)), "", 99.0);
    assert_eq!(s.traffic.peak_rate_per_s(), 1.0);
    // a trace within a second peaks at its mean
    let s = trace_scenario("fast", &csv(&even(2000, 0.0, 0.5)), "", 99.0);
    assert_eq!(s.traffic.peak_rate_per_s(), s.traffic.rate_per_s);
}

#[test]
fn the_summary_rounds_a_traces_window() {
    let s = trace_scenario(
        "summary",
        &csv(&even(4000, 0.0, 9.992686916595911)),
        "",
        99.0,
    );
    let summary = s.summary();
    assert!(summary.contains("simulated 9.99 s"), "{summary}");
    assert!(summary.contains("4000 arrivals replayed from"), "{summary}");
}

#[test]
fn the_assumptions_state_a_low_traces_rates_and_how_it_is_replayed() {
    // 500 arrivals over 10,000 s: 0.05/s
    let s = trace_scenario("note", &csv(&even(500, 0.0, 10_000.0)), "", 99.0);
    let report = report_quickly(&s);
    let notes = &report.assumptions.notes;
    let traffic = notes
        .iter()
        .find(|n| n.starts_with("traffic: "))
        .expect("a traffic note");
    for fragment in [
        "trace of 500 arrivals",
        "0.050 req/s mean",
        "1.0 req/s peak",
        "replayed from its first arrival",
        "replayed in laps",
        "the first 5% of the arrivals replayed (25 of one pass)",
    ] {
        assert!(traffic.contains(fragment), "no `{fragment}` in {traffic}");
    }
}

#[test]
fn a_byte_order_mark_does_not_hide_the_first_arrival() {
    let ts = workbench::sim::parse_trace_csv("\u{feff}0.5\n1.0\n2.0\n").expect("parses");
    assert_eq!(ts, vec![0.5, 1.0, 2.0]);
    // and through a scenario: every arrival, the first at 0 after the shift
    let body = format!(
        "\u{feff}{}",
        csv(&even(400, 1.0, 10.0)).trim_start_matches("timestamp_s\n")
    );
    let s = trace_scenario("bom", &body, "", 99.0);
    assert_eq!(timestamps(&s).len(), 400);
    assert!(
        (s.traffic.duration_s - 9.975).abs() < 1e-9,
        "{}",
        s.traffic.duration_s
    );
}
