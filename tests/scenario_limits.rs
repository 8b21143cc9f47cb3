//! Validation refuses absurd numbers, empty choice lists, a rate next to a
//! trace, and traces that cannot define a rate, each with a message that says
//! what is accepted, before anything runs.

use std::path::{Path, PathBuf};

use workbench::scenario::limits::*;
use workbench::scenario::{self, ScenarioErrors};

const BASE: &str = r#"
[model]
[[model.variants]]
name = "m"
family = "mlp"
input = 16
hidden = [32, 8]
output = 4

[traffic]
process = "poisson"
rate_per_s = 100

[inputs]
space = "unbounded"
request_bytes = 100
response_bytes = 10

[objectives]
latency_percentile = 99
latency_ms = 50

[targets]
[[targets.cloud]]
catalog = "aws-c7i.large"
link = "dc"

[[targets.edge]]
catalog = "phone-midrange"

[[targets.links]]
name = "dc"
rtt_median_ms = 1
rtt_p99_ms = 2
bandwidth_mbps = 1000

[targets.broker]
per_hop_ms = 2

[targets.storage]
lookup_ms = 1
usd_per_gb_month = 0.1
"#;

fn parse(text: &str) -> Result<scenario::Scenario, ScenarioErrors> {
    scenario::parse_str(text, Path::new("mem.toml"))
}

fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e.errors.iter().map(ToString::to_string).collect(),
    }
}

/// BASE with `old` replaced by `new` (which must be found).
fn with(old: &str, new: &str) -> String {
    assert!(BASE.contains(old), "`{old}` not in BASE");
    BASE.replacen(old, new, 1)
}

/// BASE with a `[search]` table.
fn with_search(body: &str) -> String {
    format!("{BASE}\n[search]\n{body}\n")
}

/// Exactly one error, on `key`, containing every fragment.
fn refused_once(text: &str, key: &str, fragments: &[&str]) {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].contains(&format!(": {key}: ")), "{errs:#?}");
    for f in fragments {
        assert!(errs[0].contains(f), "no `{f}` in {errs:#?}");
    }
}

#[test]
fn the_base_is_valid() {
    parse(BASE).expect("valid");
}

#[test]
fn an_absurd_measurement_budget_is_refused_with_its_range() {
    refused_once(
        &with_search("measurement_budget_s = 1e300"),
        "search.measurement_budget_s",
        &["value 1e300 is not accepted", "> 0 and <= 86400"],
    );
    let day = parse(&with_search("measurement_budget_s = 86400")).expect("a day is accepted");
    assert_eq!(day.search.measurement_budget_s, MAX_MEASUREMENT_BUDGET_S);
    refused_once(
        &with_search("measurement_budget_s = 86401"),
        "search.measurement_budget_s",
        &["> 0 and <= 86400"],
    );
}

/// Each bounded key: its largest accepted value passes, and the next is
/// refused with the accepted range.
#[test]
fn every_bounded_key_accepts_its_limit_and_refuses_beyond() {
    let rate = format!("rate_per_s = {MAX_RATE_PER_S}");
    let duration = format!("rate_per_s = 100\nduration_s = {MAX_DURATION_S}");
    let cases: Vec<(String, String, String, &str, String)> = vec![
        (
            "rate_per_s = 100".into(),
            rate,
            "rate_per_s = 1e12".into(),
            "traffic.rate_per_s",
            "> 0 and <= 100000000".into(),
        ),
        (
            "rate_per_s = 100".into(),
            duration,
            "rate_per_s = 100\nduration_s = 1e12".into(),
            "traffic.duration_s",
            "> 0 and <= 2592000".into(),
        ),
        (
            "request_bytes = 100".into(),
            format!("request_bytes = {MAX_PAYLOAD_BYTES}"),
            "request_bytes = 9_200_000_000_000_000_000".into(),
            "inputs.request_bytes",
            "[0, 1073741824]".into(),
        ),
        (
            "response_bytes = 10".into(),
            format!("response_bytes = {MAX_PAYLOAD_BYTES}"),
            format!("response_bytes = {}", MAX_PAYLOAD_BYTES + 1),
            "inputs.response_bytes",
            "[0, 1073741824]".into(),
        ),
        (
            "catalog = \"phone-midrange\"".into(),
            format!("catalog = \"phone-midrange\"\nfleet_size = {MAX_FLEET_SIZE}"),
            "catalog = \"phone-midrange\"\nfleet_size = 1_000_000_000_000".into(),
            "targets.edge[0].fleet_size",
            "[1, 10000000000]".into(),
        ),
        (
            "catalog = \"aws-c7i.large\"".into(),
            format!("catalog = \"aws-c7i.large\"\ncores = {MAX_CORES}"),
            "catalog = \"aws-c7i.large\"\ncores = 1_000_000_000".into(),
            "targets.cloud[0].cores",
            "[1, 4096]".into(),
        ),
        (
            "catalog = \"aws-c7i.large\"".into(),
            format!("catalog = \"aws-c7i.large\"\nthreads_per_core = {MAX_THREADS_PER_CORE}"),
            "catalog = \"aws-c7i.large\"\nthreads_per_core = 9".into(),
            "targets.cloud[0].threads_per_core",
            "[1, 8]".into(),
        ),
        (
            "catalog = \"aws-c7i.large\"".into(),
            format!("catalog = \"aws-c7i.large\"\nspeed_factor = {MAX_SPEED_FACTOR}"),
            "catalog = \"aws-c7i.large\"\nspeed_factor = 1e300".into(),
            "targets.cloud[0].speed_factor",
            "[1e-6, 10000]".into(),
        ),
        (
            "catalog = \"aws-c7i.large\"".into(),
            format!("catalog = \"aws-c7i.large\"\nspeed_factor = {MIN_SPEED_FACTOR}"),
            "catalog = \"aws-c7i.large\"\nspeed_factor = 1e-300".into(),
            "targets.cloud[0].speed_factor",
            "[1e-6, 10000]".into(),
        ),
        (
            "catalog = \"aws-c7i.large\"".into(),
            format!("catalog = \"aws-c7i.large\"\ncold_start_ms = {MAX_COLD_START_MS}"),
            "catalog = \"aws-c7i.large\"\ncold_start_ms = 1e300".into(),
            "targets.cloud[0].cold_start_ms",
            ">= 0 and <= 3600000".into(),
        ),
        (
            "latency_ms = 50".into(),
            format!("latency_ms = {MAX_LATENCY_SLO_MS}"),
            "latency_ms = 1e300".into(),
            "objectives.latency_ms",
            "> 0 and <= 3600000".into(),
        ),
        (
            "rtt_p99_ms = 2".into(),
            format!("rtt_p99_ms = {MAX_NETWORK_MS}"),
            "rtt_p99_ms = 1e300".into(),
            "targets.links[0].rtt_p99_ms",
            ">= 0 and <= 60000".into(),
        ),
        (
            "per_hop_ms = 2".into(),
            format!(
                "per_hop_ms = {MAX_NETWORK_MS}\nhops = {MAX_HOPS}\npartitions = {MAX_PARTITIONS}"
            ),
            "per_hop_ms = 2\npartitions = 4_000_000_000".into(),
            "targets.broker.partitions",
            "[1, 1000000]".into(),
        ),
        (
            "per_hop_ms = 2".into(),
            "per_hop_ms = 2".into(),
            "per_hop_ms = 2\nhops = 1_000_000".into(),
            "targets.broker.hops",
            "[1, 100]".into(),
        ),
        (
            "catalog = \"aws-c7i.large\"".into(),
            format!("catalog = \"aws-c7i.large\"\nrequest_cpu_us = {MAX_HANDLING_CPU_US}"),
            "catalog = \"aws-c7i.large\"\nrequest_cpu_us = 1e300".into(),
            "targets.cloud[0].request_cpu_us",
            ">= 0 and <= 1000000".into(),
        ),
        (
            "catalog = \"aws-c7i.large\"".into(),
            format!("catalog = \"aws-c7i.large\"\nmessage_cpu_us = {MAX_HANDLING_CPU_US}"),
            "catalog = \"aws-c7i.large\"\nmessage_cpu_us = -1".into(),
            "targets.cloud[0].message_cpu_us",
            ">= 0 and <= 1000000".into(),
        ),
        (
            "rtt_p99_ms = 2".into(),
            format!("rtt_p99_ms = 2\nmin_rto_ms = {MAX_NETWORK_MS}"),
            "rtt_p99_ms = 2\nmin_rto_ms = 0".into(),
            "targets.links[0].min_rto_ms",
            "> 0 and <= 60000".into(),
        ),
        (
            "per_hop_ms = 2".into(),
            format!(
                "per_hop_ms = 2\npartition_mb_per_s = {MAX_PARTITION_MB_PER_S}\npartition_messages_per_s = {MAX_RATE_PER_S}"
            ),
            "per_hop_ms = 2\npartition_mb_per_s = 1e300".into(),
            "targets.broker.partition_mb_per_s",
            "> 0 and <= 100000".into(),
        ),
        (
            "per_hop_ms = 2".into(),
            "per_hop_ms = 2".into(),
            "per_hop_ms = 2\npartition_messages_per_s = 1e300".into(),
            "targets.broker.partition_messages_per_s",
            "> 0 and <= 100000000".into(),
        ),
        (
            "lookup_ms = 1".into(),
            format!("lookup_ms = {MAX_NETWORK_MS}"),
            "lookup_ms = 1e300".into(),
            "targets.storage.lookup_ms",
            ">= 0 and <= 60000".into(),
        ),
    ];
    for (old, ok, bad, key, range) in &cases {
        parse(&with(old, ok)).unwrap_or_else(|e| panic!("`{ok}` should be accepted:\n{e}"));
        refused_once(&with(old, bad), key, &["is not accepted", range]);
    }
}

#[test]
fn search_counts_are_bounded() {
    let max =
        format!("max_replicas = {MAX_REPLICAS}\nmax_queue_delay_ms = [0, {MAX_QUEUE_DELAY_MS}]");
    let s = parse(&with_search(&max)).expect("limits accepted");
    assert_eq!(u64::from(s.search.max_replicas), MAX_REPLICAS);
    refused_once(
        &with_search("max_replicas = 4_000_000_000"),
        "search.max_replicas",
        &["[1, 4096]"],
    );
    refused_once(
        &with_search("min_replicas = 5000"),
        "search.min_replicas",
        &["[1, 4096]"],
    );
    refused_once(
        &with_search("max_queue_delay_ms = [0, 1e300]"),
        "search.max_queue_delay_ms[1]",
        &[">= 0 and <= 60000"],
    );
}

#[test]
fn a_burst_or_peak_beyond_the_rate_limit_is_refused() {
    let bursty = |on: &str| {
        with(
            "process = \"poisson\"\nrate_per_s = 100",
            &format!(
                "process = \"bursty\"\nrate_per_s = 1e6\nburst_on_s = {on}\nburst_off_s = 100"
            ),
        )
    };
    // peak 1e6 x 101 / 1 = 1.01e8 > 1e8; with 2 s on it is 5.05e7
    parse(&bursty("2")).expect("peak within the limit");
    refused_once(
        &bursty("1"),
        "traffic.burst_on_s",
        &["peak rate 101000000", "at most 100000000"],
    );
    let diurnal = with(
        "process = \"poisson\"\nrate_per_s = 100",
        "process = \"diurnal\"\nrate_per_s = 1e6\npeak_factor = 1000",
    );
    refused_once(
        &diurnal,
        "traffic.peak_factor",
        &["rate_per_s x peak_factor"],
    );
}

#[test]
fn empty_choice_lists_are_refused_consistently() {
    for (key, body) in [
        ("search.targets", "targets = []"),
        ("search.max_queue_delay_ms", "max_queue_delay_ms = []"),
        ("search.batch_sizes", "batch_sizes = []"),
        ("search.modes", "modes = []"),
        ("search.placements", "placements = []"),
        ("search.backends", "backends = []"),
        ("search.precisions", "precisions = []"),
    ] {
        refused_once(
            &with_search(body),
            key,
            &[
                "empty list is not accepted: give at least one",
                "; omit the key for ",
            ],
        );
    }
    // the message lists what would be accepted
    refused_once(
        &with_search("targets = []"),
        "search.targets",
        &[
            "(accepted: aws-c7i.large, phone-midrange)",
            "omit the key for all targets",
        ],
    );
    refused_once(
        &with(
            "catalog = \"aws-c7i.large\"",
            "catalog = \"aws-c7i.large\"\nprecisions = []",
        ),
        "targets.cloud[0].precisions",
        &[
            "give at least one precision",
            "omit the key for the catalog entry's precisions",
        ],
    );
    // a target listed twice is refused as other lists' duplicates are
    refused_once(
        &with_search("targets = [\"phone-midrange\", \"phone-midrange\"]"),
        "search.targets[1]",
        &["listed twice"],
    );
}

/// A scratch directory with `trace.csv` holding `csv`, and the scenario
/// `traffic` section replaced by `traffic`.
fn trace_scenario(
    name: &str,
    csv: &str,
    traffic: &str,
) -> Result<scenario::Scenario, ScenarioErrors> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("scenario-limits-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    std::fs::write(dir.join("trace.csv"), csv).expect("write trace");
    let text = with("process = \"poisson\"\nrate_per_s = 100", traffic);
    scenario::parse_str(&text, &dir.join("s.toml"))
}

fn trace_errors(name: &str, csv: &str, traffic: &str) -> Vec<String> {
    match trace_scenario(name, csv, traffic) {
        Ok(_) => panic!("{name}: expected errors"),
        Err(e) => e.errors.iter().map(ToString::to_string).collect(),
    }
}

/// `n` arrivals evenly spread over `span_s` seconds, starting at `start_s`.
fn even(n: usize, start_s: f64, span_s: f64) -> String {
    let mut csv = String::from("timestamp_s\n");
    for i in 0..n {
        csv.push_str(&format!(
            "{}\n",
            start_s + span_s * i as f64 / (n - 1) as f64
        ));
    }
    csv
}

const TRACE: &str = "process = \"trace\"\ntrace_csv = \"trace.csv\"";

#[test]
fn a_good_trace_sets_the_rate_and_duration() {
    let s = trace_scenario("good", &even(1001, 0.0, 10.0), TRACE).expect("valid");
    assert_eq!(s.traffic.duration_s, 10.0);
    assert!(
        (s.traffic.rate_per_s - 100.1).abs() < 1e-9,
        "{}",
        s.traffic.rate_per_s
    );
}

#[test]
fn a_rate_next_to_a_trace_is_refused() {
    let errs = trace_errors(
        "rate",
        &even(1001, 0.0, 10.0),
        "process = \"trace\"\nrate_per_s = 100\ntrace_csv = \"trace.csv\"",
    );
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].contains(": traffic.rate_per_s: "), "{errs:#?}");
    assert!(errs[0].contains("the trace sets the rate"), "{errs:#?}");
}

#[test]
fn a_trace_that_cannot_define_a_rate_is_refused() {
    let cases: [(&str, String, &str); 6] = [
        ("one", "5.0\n".into(), "single timestamp"),
        (
            "zero",
            "0\n".repeat(5000),
            "all 5000 timestamps of the trace are 0 s",
        ),
        // two timestamps 1e15 s apart: a span no simulation covers
        ("huge-span", "0\n1e15\n".into(), "beyond 2592000 s"),
        // epoch seconds: refused with the hint to shift them
        (
            "epoch",
            even(1000, 1.7e9, 100.0),
            "shift a trace of epoch times",
        ),
        // a thousand arrivals in a microsecond: 1e9 requests/s
        (
            "rate",
            even(1000, 0.0, 1e-6),
            "the limit is 100000000 requests/s",
        ),
        // 50 arrivals: too few for a p99
        (
            "few",
            even(50, 0.0, 10.0),
            "only 47 of the trace's 50 arrivals",
        ),
    ];
    for (name, csv, fragment) in &cases {
        let errs = trace_errors(name, csv, TRACE);
        assert_eq!(errs.len(), 1, "{name}: {errs:#?}");
        assert!(
            errs[0].contains(": traffic.trace_csv: "),
            "{name}: {errs:#?}"
        );
        assert!(
            errs[0].contains(fragment),
            "{name}: no `{fragment}` in {errs:#?}"
        );
    }
}

#[test]
fn a_duration_that_cuts_the_trace_to_nothing_is_refused() {
    let csv = even(1001, 100.0, 10.0);
    trace_scenario("cut-ok", &csv, &format!("{TRACE}\nduration_s = 110")).expect("whole trace");
    // the window ends before the first arrival
    let errs = trace_errors("cut", &csv, &format!("{TRACE}\nduration_s = 50"));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].contains("only 0 of the trace's 1001 arrivals"),
        "{errs:#?}"
    );
}
