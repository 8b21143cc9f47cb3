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

/// 100 errors listed, then the line that says the rest were not: `last`.
fn listed_then_cut(errs: &[String], last: &str) {
    assert_eq!(
        errs.len(),
        101,
        "{:#?}",
        &errs[errs.len().saturating_sub(5)..]
    );
    assert!(errs[100].contains(last), "{}", errs[100]);
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
            ">= 1e-6 and <= 100000000".into(),
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
            ">= 1e-6 and <= 100000".into(),
        ),
        (
            "per_hop_ms = 2".into(),
            "per_hop_ms = 2".into(),
            "per_hop_ms = 2\npartition_messages_per_s = 1e300".into(),
            "targets.broker.partition_messages_per_s",
            ">= 1e-6 and <= 100000000".into(),
        ),
        (
            "per_hop_ms = 2".into(),
            format!("per_hop_ms = 2\nusd_per_month = {MAX_BROKER_USD_PER_MONTH}\nusd_per_gb = 0"),
            "per_hop_ms = 2\nusd_per_month = -1".into(),
            "targets.broker.usd_per_month",
            ">= 0 and <= 10000000".into(),
        ),
        (
            "per_hop_ms = 2".into(),
            format!("per_hop_ms = 2\nusd_per_gb = {MAX_USD_PER_GB}\nusd_per_month = 0"),
            "per_hop_ms = 2\nusd_per_gb = 1001".into(),
            "targets.broker.usd_per_gb",
            ">= 0 and <= 1000".into(),
        ),
        (
            "lookup_ms = 1".into(),
            format!("lookup_ms = {MAX_NETWORK_MS}"),
            "lookup_ms = 1e300".into(),
            "targets.storage.lookup_ms",
            ">= 0 and <= 60000".into(),
        ),
        (
            "catalog = \"aws-c7i.large\"".into(),
            format!("catalog = \"aws-c7i.large\"\nusd_per_hour = {MAX_USD_PER_HOUR}"),
            "catalog = \"aws-c7i.large\"\nusd_per_hour = 1e300".into(),
            "targets.cloud[0].usd_per_hour",
            ">= 0 and <= 100000".into(),
        ),
        (
            "usd_per_gb_month = 0.1".into(),
            format!("usd_per_gb_month = {MAX_USD_PER_GB_MONTH}"),
            "usd_per_gb_month = 1e300".into(),
            "targets.storage.usd_per_gb_month",
            ">= 0 and <= 10000".into(),
        ),
        (
            "latency_ms = 50".into(),
            format!("latency_ms = 50\nmonthly_budget_usd = {MAX_MONTHLY_BUDGET_USD}"),
            "latency_ms = 50\nmonthly_budget_usd = 1e300".into(),
            "objectives.monthly_budget_usd",
            "> 0 and <= 1000000000000".into(),
        ),
        (
            "space = \"unbounded\"".into(),
            format!("space = \"finite\"\ndistinct_inputs = {MAX_DISTINCT_INPUTS}"),
            format!("space = \"finite\"\ndistinct_inputs = {}", MAX_DISTINCT_INPUTS + 1),
            "inputs.distinct_inputs",
            "[1, 1000000000000000]".into(),
        ),
        (
            "space = \"unbounded\"".into(),
            format!("space = \"unbounded\"\nfreshness_s = {MAX_FRESHNESS_S}"),
            "space = \"unbounded\"\nfreshness_s = 1e300".into(),
            "inputs.freshness_s",
            ">= 0 and <= 31622400".into(),
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

/// What a batch plan would store is bounded too: each bound alone would let
/// `distinct_inputs` x `response_bytes` overflow the byte count.
#[test]
fn what_a_batch_plan_stores_is_bounded() {
    let finite = |distinct: u64, response: u64| {
        with(
            "space = \"unbounded\"\nrequest_bytes = 100\nresponse_bytes = 10",
            &format!(
                "space = \"finite\"\ndistinct_inputs = {distinct}\nrequest_bytes = 100\nresponse_bytes = {response}"
            ),
        )
    };
    // 10^15 inputs of 984 bytes (+16) make exactly the 10^18 bytes allowed.
    parse(&finite(MAX_DISTINCT_INPUTS, 984)).expect("an exabyte is accepted");
    refused_once(
        &finite(MAX_DISTINCT_INPUTS, 985),
        "inputs.distinct_inputs",
        &[
            "is not accepted",
            "1001 bytes each",
            "more than the 1000.0 PB",
        ],
    );
    refused_once(
        &finite(1_000_000_000_000, MAX_PAYLOAD_BYTES),
        "inputs.distinct_inputs",
        &["is not accepted", "1073741840 bytes each"],
    );
}

/// MLP `hidden` and convnet `blocks` lists are bounded like transformer
/// `layers`, before each entry is checked.
#[test]
fn layer_lists_are_bounded_like_transformer_layers() {
    let hidden = |n: usize| {
        with(
            "hidden = [32, 8]",
            &format!("hidden = [{}]", vec!["8"; n].join(", ")),
        )
    };
    parse(&hidden(MAX_LAYERS)).expect("the limit is accepted");
    refused_once(
        &hidden(MAX_LAYERS + 1),
        "model.variants[0].hidden",
        &["1001 hidden layer widths given: at most 1000 layers"],
    );
    // Entries beyond the limit are not each reported.
    let bad_entries = with(
        "hidden = [32, 8]",
        &format!("hidden = [{}]", vec!["0"; 5000].join(", ")),
    );
    assert_eq!(errors(&bad_entries).len(), 1);
    let blocks = |n: usize| {
        with(
            "family = \"mlp\"\ninput = 16\nhidden = [32, 8]\noutput = 4",
            &format!(
                "family = \"convnet\"\ninput_hwc = [8, 8, 1]\nclasses = 2\nblocks = [{}]",
                vec!["{ kind = \"standard\", out_channels = 1, kernel = 1 }"; n].join(", ")
            ),
        )
    };
    parse(&blocks(MAX_LAYERS)).expect("the limit is accepted");
    refused_once(
        &blocks(MAX_LAYERS + 1),
        "model.variants[0].blocks",
        &["1001 conv blocks given: at most 1000 layers"],
    );
}

/// The scenario name names the report directory: validation applies the
/// report writer's rule, so a run never measures for minutes and then fails
/// to write.
#[test]
fn scenario_names_that_cannot_name_a_directory_are_refused() {
    let named = |name: &str| format!("name = {name:?}\n{BASE}");
    for bad in [
        "../../escape",
        "..",
        ".",
        "a/b",
        "café-recs",
        "two words",
        "tab\there",
    ] {
        refused_once(
            &named(bad),
            "name",
            &["is not accepted", "ASCII letters, digits"],
        );
    }
    let long = "x".repeat(MAX_NAME_CHARS + 1);
    let errs = errors(&named(&long));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    // The message quotes the start of the name, not all of it.
    assert!(
        errs[0].contains("(101 characters)") && errs[0].len() < 400,
        "{errs:#?}"
    );
    parse(&named(&long[1..])).expect("100 characters are accepted");
    // An empty name does not silently become the file name.
    refused_once(
        &named(""),
        "name",
        &["empty name is not accepted", "omit the key", "`mem`"],
    );
    // Without a name key the file name gives the name, which must be valid too.
    let errs = match scenario::parse_str(BASE, Path::new("dir/my scenario.toml")) {
        Ok(_) => panic!("a file name with a space is refused without a `name` key"),
        Err(e) => e.errors,
    };
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(
        (errs[0].line, errs[0].col, errs[0].key.as_str()),
        (1, 1, "name")
    );
    assert!(
        errs[0].message.contains("`my scenario`") && errs[0].message.contains("add a `name` key")
    );
    let ok = scenario::parse_str(&named("my-scenario"), Path::new("dir/my scenario.toml"));
    assert_eq!(ok.expect("a name key fixes it").name, "my-scenario");
}

/// Control characters in text printed to terminals are refused: an escape
/// sequence in a description would clear the screen of whoever validates it.
#[test]
fn control_characters_in_printed_text_are_refused() {
    let esc = "\\u001b[2J";
    for (text, key) in [
        (format!("description = \"{esc}\"\n{BASE}"), "description"),
        (
            format!("description = \"x\\u001b]0;title\\u0007\"\n{BASE}"),
            "description",
        ),
        (
            with("[model]", &format!("[model]\ntask = \"{esc}\"")),
            "model.task",
        ),
        (
            with("name = \"m\"", &format!("name = \"m{esc}\"")),
            "model.variants[0].name",
        ),
        (
            with(
                "catalog = \"phone-midrange\"",
                &format!("catalog = \"phone-midrange\"\nname = \"p{esc}\""),
            ),
            "targets.edge[0].name",
        ),
        (
            with(
                "catalog = \"phone-midrange\"",
                &format!("catalog = \"phone-midrange\"\nsource = \"{esc}\""),
            ),
            "targets.edge[0].source",
        ),
    ] {
        refused_once(&text, key, &["control character", "is not accepted"]);
    }
    // A link's name too (the target naming it then finds no link as well).
    let errs = errors(&with("name = \"dc\"", "name = \"dc\\r\""));
    assert!(
        errs.iter()
            .any(|e| e.contains("targets.links[0].name: control character \\u{d} is not accepted")),
        "{errs:#?}"
    );
    // Newlines and tabs lay out a description or a task.
    let laid_out = format!("description = \"\"\"\nline one\n\tline two\"\"\"\n{BASE}");
    parse(&laid_out).expect("newlines and tabs are accepted");
}

/// A FIFO named as a trace is refused from its metadata: opening it would
/// wait for a writer forever.
#[test]
fn a_trace_that_is_not_a_regular_file_is_refused_without_blocking() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("scenario-limits-{}-fifo", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let Ok(status) = std::process::Command::new("mkfifo")
        .arg(dir.join("trace.csv"))
        .status()
    else {
        eprintln!("no mkfifo here: skipped");
        return;
    };
    assert!(status.success(), "mkfifo failed");
    let text = with("process = \"poisson\"\nrate_per_s = 100", TRACE);
    let path = dir.join("s.toml");
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = send.send(scenario::parse_str(&text, &path).map(|_| ()));
    });
    let result = receive
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("validation blocked on the FIFO");
    let errs = result.expect_err("a FIFO is refused").errors;
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].key, "traffic.trace_csv");
    assert!(
        errs[0]
            .message
            .contains("named pipe (FIFO), not a regular file"),
        "{errs:#?}"
    );
}

/// A number on the first line is a timestamp, not a header: `-1` there is
/// refused like anywhere else rather than silently dropped.
#[test]
fn a_bad_timestamp_on_the_first_line_is_not_taken_for_a_header() {
    let body = even(200, 0.0, 10.0);
    let body = body.trim_start_matches("timestamp_s\n");
    for first in ["-1", "inf", "NaN"] {
        let errs = trace_errors(
            &format!("first-{first}"),
            &format!("{first}\n{body}"),
            TRACE,
        );
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(
            errs[0].contains(&format!("line 1: timestamp `{first}` is not accepted")),
            "{errs:#?}"
        );
    }
    // A header that is text is still skipped; so are comments before it.
    trace_scenario(
        "first-header",
        &format!("# recorded\ntimestamp_s\n{body}"),
        TRACE,
    )
    .expect("a text header is skipped");
}

/// BASE with its model replaced by a convnet of one block.
fn convnet(input_hwc: &str, block: &str) -> String {
    with(
        "family = \"mlp\"\ninput = 16\nhidden = [32, 8]\noutput = 4",
        &format!("family = \"convnet\"\ninput_hwc = {input_hwc}\nblocks = [{block}]\nclasses = 4"),
    )
}

#[test]
fn a_conv_stride_or_kernel_wider_than_its_input_is_refused() {
    let key = "model.variants[0].blocks[0].stride";
    refused_once(
        &convnet(
            "[7, 7, 3]",
            "{ kind = \"standard\", out_channels = 16, kernel = 3, stride = 1000000000 }",
        ),
        key,
        &["value 1000000000 is not accepted", "[1, 7]", "7x7 input"],
    );
    refused_once(
        &convnet(
            "[7, 5, 3]",
            "{ kind = \"depthwise-separable\", out_channels = 16, kernel = 9, stride = 1 }",
        ),
        "model.variants[0].blocks[0].kernel",
        &["kernel size must be an integer in [1, 7]"],
    );
    // The second block's input is the first block's output (7 -> 4).
    let two = convnet(
        "[7, 7, 3]",
        "{ kind = \"standard\", out_channels = 8, kernel = 3, stride = 2 }, { kind = \"standard\", out_channels = 8, kernel = 3, stride = 5 }",
    );
    refused_once(
        &two,
        "model.variants[0].blocks[1].stride",
        &["[1, 4]", "4x4 input"],
    );
    parse(&convnet(
        "[7, 7, 3]",
        "{ kind = \"standard\", out_channels = 16, kernel = 7, stride = 7 }",
    ))
    .expect("a stride and kernel as wide as the input are accepted");
}

#[test]
fn an_integer_beyond_64_bits_is_refused_with_its_range() {
    refused_once(
        &convnet(
            "[18446744073709551615, 1, 1]",
            "{ kind = \"standard\", out_channels = 4 }",
        ),
        "model.variants[0].input_hwc[0]",
        &[
            "value 18446744073709551615 is not accepted",
            &format!("[1, {MAX_DIM}]"),
        ],
    );
}

#[test]
fn more_model_variants_than_the_cap_are_refused() {
    let variant = |i: usize| {
        format!("[[model.variants]]\nname = \"m{i}\"\nfamily = \"mlp\"\ninput = 16\nhidden = [8]\noutput = 4\n")
    };
    let with_variants = |n: usize| {
        let all: String = (0..n).map(variant).collect();
        with(
            "[[model.variants]]\nname = \"m\"\nfamily = \"mlp\"\ninput = 16\nhidden = [32, 8]\noutput = 4\n",
            &all,
        )
    };
    let most = parse(&with_variants(MAX_VARIANTS)).expect("the cap is accepted");
    assert_eq!(most.model.variants.len(), MAX_VARIANTS);
    refused_once(
        &with_variants(MAX_VARIANTS + 1),
        "model.variants",
        &[&format!(
            "{} variants given: at most {MAX_VARIANTS}",
            MAX_VARIANTS + 1
        )],
    );
}

#[test]
fn a_bursty_process_needs_a_pause_the_simulator_accepts() {
    let bursty = |off: &str| {
        with(
            "process = \"poisson\"",
            &format!("process = \"bursty\"\nburst_on_s = 2\nburst_off_s = {off}"),
        )
    };
    refused_once(
        &bursty("0"),
        "traffic.burst_off_s",
        &["value 0 is not accepted", "> 0 and <= 2592000"],
    );
    parse(&bursty("0.001")).expect("a short pause is accepted");
}

#[test]
fn rates_that_divide_have_a_minimum() {
    refused_once(
        &with("rate_per_s = 100", "rate_per_s = 5e-324"),
        "traffic.rate_per_s",
        &["value 5e-324 is not accepted", ">= 1e-6 and <= 100000000"],
    );
    let lowest = parse(&with("rate_per_s = 100", "rate_per_s = 1e-6")).expect("the minimum");
    assert_eq!(lowest.traffic.rate_per_s, MIN_RATE_PER_S);
    refused_once(
        &with(
            "per_hop_ms = 2",
            "per_hop_ms = 2\npartition_messages_per_s = 1e-300",
        ),
        "targets.broker.partition_messages_per_s",
        &[">= 1e-6"],
    );
    // Bandwidths divide a payload too: 5e-324 had been "positive".
    refused_once(
        &with(
            "per_hop_ms = 2",
            "per_hop_ms = 2\npartition_mb_per_s = 5e-324",
        ),
        "targets.broker.partition_mb_per_s",
        &["value 5e-324 is not accepted", ">= 1e-6"],
    );
    refused_once(
        &with("bandwidth_mbps = 1000", "bandwidth_mbps = 5e-324"),
        "targets.links[0].bandwidth_mbps",
        &["value 5e-324 is not accepted", ">= 1e-6"],
    );
    parse(&with("bandwidth_mbps = 1000", "bandwidth_mbps = 1e-6")).expect("the minimum");
}

#[test]
fn a_percentile_the_simulator_cannot_estimate_is_refused() {
    refused_once(
        &with(
            "latency_percentile = 99\n",
            "latency_percentile = 99.99999999999999\n",
        ),
        "objectives.latency_percentile",
        &["value 99.99999999999999 is not accepted", "(0, 99.998]"],
    );
    let strictest = parse(&with(
        "latency_percentile = 99\n",
        "latency_percentile = 99.998\n",
    ))
    .expect("the maximum is accepted");
    // The planner can simulate enough requests for it: at most 10^6, less
    // the warm-up and a 10% margin (`plan::evaluate`).
    let needed =
        workbench::plan::evaluate::requests_for_percentile(strictest.objectives.latency_percentile)
            .expect("finite");
    assert!(
        (needed as f64) / (1.0 - WARMUP_FRACTION) * 1.1 + 10.0 <= 1e6,
        "{needed}"
    );
}

/// Each list that multiplies the search is bounded, refused at once (not
/// entry by entry) with its limit; the limit itself is accepted.
#[test]
fn lists_that_multiply_the_search_are_bounded() {
    let numbers = |n: usize| {
        (1..=n)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let search = parse(&with_search(&format!(
        "batch_sizes = [{}]",
        numbers(MAX_BATCH_SIZES)
    )))
    .expect("the limit is accepted");
    assert_eq!(search.search.batch_sizes.len(), MAX_BATCH_SIZES);
    refused_once(
        &with_search(&format!("batch_sizes = [{}]", numbers(200))),
        "search.batch_sizes",
        &["200 batch sizes given: at most 20 are accepted"],
    );
    // 200,000 bad entries: one error, not one per entry.
    let zeros = vec!["0"; 200_000].join(",\n");
    refused_once(
        &with_search(&format!("batch_sizes = [\n{zeros}]")),
        "search.batch_sizes",
        &["200000 batch sizes given: at most 20"],
    );
    parse(&with_search(&format!(
        "max_queue_delay_ms = [{}]",
        numbers(MAX_QUEUE_DELAYS)
    )))
    .expect("the limit is accepted");
    refused_once(
        &with_search(&format!("max_queue_delay_ms = [{}]", numbers(200_000))),
        "search.max_queue_delay_ms",
        &["200000 queue delays given: at most 20 are accepted"],
    );
    // A choice list longer than its choices repeats one.
    refused_once(
        &with_search(&format!("modes = [{}]", vec!["\"batch\""; 1000].join(", "))),
        "search.modes",
        &["1000 entries given: there are 4 of them"],
    );
    refused_once(
        &with_search(&format!(
            "targets = [{}]",
            vec!["\"aws-c7i.large\""; 1000].join(", ")
        )),
        "search.targets",
        &["1000 names given: only 2 target(s) are defined"],
    );
}

/// BASE with `n` more tables of `table` (numbered names) before [targets.broker].
fn with_tables(n: usize, table: impl Fn(usize) -> String) -> String {
    let tables: String = (0..n).map(table).collect();
    with("[targets.broker]", &format!("{tables}\n[targets.broker]"))
}

#[test]
fn target_and_link_tables_are_bounded() {
    let cloud = |i: usize| {
        format!("[[targets.cloud]]\ncatalog = \"aws-c7i.large\"\nname = \"c{i}\"\nlink = \"dc\"\n")
    };
    // BASE has one cloud target already.
    parse(&with_tables(MAX_CLOUD_TARGETS - 1, cloud)).expect("the limit is accepted");
    let text = with_tables(1000, cloud);
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].contains(": targets.cloud: 1001 [[targets.cloud]] tables given: at most 32"),
        "{errs:#?}"
    );
    // At the first table past the limit: its header, two lines above its name.
    let name_line = text
        .lines()
        .position(|l| l == format!("name = \"c{}\"", MAX_CLOUD_TARGETS - 1))
        .expect("that table")
        + 1;
    let line = name_line - 2;
    assert!(
        errs[0].starts_with(&format!("mem.toml:{line}:1: ")),
        "{errs:#?}"
    );

    let edge =
        |i: usize| format!("[[targets.edge]]\ncatalog = \"phone-midrange\"\nname = \"e{i}\"\n");
    parse(&with_tables(MAX_EDGE_TARGETS - 1, edge)).expect("the limit is accepted");
    let errs = errors(&with_tables(MAX_EDGE_TARGETS, edge));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].contains(": targets.edge: 33 [[targets.edge]] tables given: at most 32"),
        "{errs:#?}"
    );

    let link = |i: usize| {
        format!("[[targets.links]]\nname = \"l{i}\"\nrtt_median_ms = 1\nrtt_p99_ms = 2\nbandwidth_mbps = 10\n")
    };
    // With several links every target names its own.
    let links = |n: usize| {
        with_tables(n, link).replace(
            "catalog = \"phone-midrange\"",
            "catalog = \"phone-midrange\"\nlink = \"dc\"",
        )
    };
    parse(&links(MAX_LINKS - 1)).expect("the limit is accepted");
    let errs = errors(&links(MAX_LINKS));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].contains(&format!(
            ": targets.links: {} [[targets.links]] tables given: at most {MAX_LINKS}",
            MAX_LINKS + 1
        )),
        "{errs:#?}"
    );
}

/// A second link of one name was silently ignored (targets name links).
#[test]
fn a_link_name_used_twice_is_refused() {
    let text = with_tables(1, |_| {
        "[[targets.links]]\nname = \"dc\"\nrtt_median_ms = 100\nrtt_p99_ms = 200\nbandwidth_mbps = 10\n"
            .to_string()
    });
    refused_once(
        &text,
        "targets.links[1].name",
        &["link name `dc` is used twice"],
    );
}

/// A file of thousands of bad values lists the first hundred by position,
/// then says how many more there are.
#[test]
fn errors_are_capped_with_a_count_of_the_rest() {
    let zeros = vec!["0"; MAX_LAYERS].join(", ");
    let second = "[[model.variants]]\nname = \"n\"\nfamily = \"mlp\"\ninput = 16\noutput = 4";
    let text = with("hidden = [32, 8]", &format!("hidden = [{zeros}]")).replacen(
        "output = 4",
        &format!("output = 4\n{second}\nhidden = [{zeros}]"),
        1,
    );
    let errs = errors(&text);
    listed_then_cut(&errs, "... and 1900 more error(s) from here on, not listed");
    assert!(
        errs[0].contains(": model.variants[0].hidden[0]: value 0 is not accepted"),
        "{}",
        errs[0]
    );
    assert!(
        errs[99].contains("model.variants[0].hidden[99]: "),
        "{}",
        errs[99]
    );
}

/// Schema errors (unknown keys) are listed by position, not by name, all
/// of one table at once, and those past the cap are counted.
#[test]
fn schema_errors_are_listed_by_position_and_counted() {
    // Named in the reverse of their order in the file.
    let keys: String = (0..150).rev().map(|i| format!("k{i:03} = 1\n")).collect();
    let text = with("[traffic]\n", &format!("[traffic]\n{keys}"));
    let errs = errors(&text);
    listed_then_cut(&errs, "... and 50 more error(s)");
    let first = text
        .lines()
        .position(|l| l == "k149 = 1")
        .expect("first key")
        + 1;
    assert!(
        errs[0].starts_with(&format!(
            "mem.toml:{first}:1: traffic.k149: unknown key `k149`"
        )),
        "{}",
        errs[0]
    );
    assert!(errs[99].contains("traffic.k050: "), "{}", errs[99]);
}

/// Target figures have ranges from microcontrollers to the largest
/// servers: `1e-300` had passed and ended a run with non-finite timings.
#[test]
fn target_hardware_figures_have_ranges() {
    let target = |key: &str, value: &str| {
        with(
            "catalog = \"aws-c7i.large\"\nlink = \"dc\"",
            &format!("catalog = \"aws-c7i.large\"\nlink = \"dc\"\n{key} = {value}"),
        )
    };
    let cases: [(&str, f64, f64, &str, &str); 8] = [
        (
            "peak_gflops_f32",
            MIN_PEAK_GFLOPS,
            MAX_PEAK_GFLOPS,
            "1e-300",
            ">= 0.001 and <= 1000000",
        ),
        (
            "peak_gops_int8",
            MIN_PEAK_GFLOPS,
            MAX_PEAK_GOPS_INT8,
            "1e-300",
            "<= 10000000 or 0 (no int8 figure)",
        ),
        (
            "mem_bandwidth_gbs",
            MIN_MEM_BANDWIDTH_GBS,
            MAX_MEM_BANDWIDTH_GBS,
            "1e-300",
            ">= 0.001 and <= 100000",
        ),
        (
            "memory_gb",
            MIN_MEMORY_GB,
            MAX_MEMORY_GB,
            "1e300",
            ">= 1e-6 and <= 100000",
        ),
        ("cache_mb", 0.0, MAX_CACHE_MB, "1e300", ">= 0 and <= 10000"),
        (
            "power_watts",
            0.0,
            MAX_POWER_WATTS,
            "1e300",
            ">= 0 and <= 100000",
        ),
        (
            "parallel_overhead_us",
            0.0,
            MAX_PARALLEL_OVERHEAD_US,
            "1e300",
            ">= 0 and <= 100000",
        ),
        (
            "usd_per_hour",
            0.0,
            MAX_USD_PER_HOUR,
            "1e300",
            ">= 0 and <= 100000",
        ),
    ];
    for (key, lo, hi, bad, range) in cases {
        for ok in [lo, hi] {
            parse(&target(key, &format!("{ok:?}")))
                .unwrap_or_else(|e| panic!("{key} = {ok} is accepted: {e}"));
        }
        refused_once(
            &target(key, bad),
            &format!("targets.cloud[0].{key}"),
            &[&format!("value {bad} is not accepted"), range],
        );
    }
    parse(&target("peak_gops_int8", "0")).expect("0: no int8 figure");
    refused_once(
        &with(
            "latency_ms = 50",
            "latency_ms = 50\nmin_throughput_per_s = 1e300",
        ),
        "objectives.min_throughput_per_s",
        &["value 1e300 is not accepted", "<= 100000000000000"],
    );
    parse(&with(
        "latency_ms = 50",
        &format!("latency_ms = 50\nmin_throughput_per_s = {MAX_THROUGHPUT_PER_S:?}"),
    ))
    .expect("the limit is accepted");
}

/// Messages say what is wrong in the scenario's terms.
#[test]
fn messages_name_the_real_range_and_the_real_problem() {
    refused_once(
        &with_search("batch_sizes = [0]"),
        "search.batch_sizes[0]",
        &["batch size must be an integer in [1, 65536]"],
    );
    refused_once(
        &with("rate_per_s = 100", "rate_per_s = 1979-05-27"),
        "traffic.rate_per_s",
        &[
            "invalid type: a date or time (`1979-05-27`",
            "expected a number",
        ],
    );
    refused_once(
        &with(
            "catalog = \"phone-midrange\"",
            "catalog = \"aws-c7i.large\"\nname = \"x\"",
        ),
        "targets.edge[0].catalog",
        &["`aws-c7i.large` is a cloud catalog entry"],
    );
    let long = "k".repeat(200_000);
    let errs = errors(&format!("{long} = 1\n{BASE}"));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].len() < 1000, "{} bytes", errs[0].len());
    assert!(
        errs[0].contains("... (200000 characters)"),
        "{}",
        &errs[0][..300]
    );
    let widest = i64::MAX;
    let errs = errors(&with(
        "hidden = [32, 8]",
        &format!("hidden = [{widest}, {widest}]"),
    ));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].contains("its parameter count overflows 64 bits"),
        "{errs:#?}"
    );
    assert!(!errs[0].contains("18446.7 P"), "{errs:#?}");
}

#[test]
fn an_empty_trace_path_is_refused_as_empty() {
    let errs = trace_errors(
        "empty-path",
        "0\n1\n",
        "process = \"trace\"\ntrace_csv = \"\"",
    );
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].contains(": traffic.trace_csv: empty path is not accepted"),
        "{errs:#?}"
    );
}

/// One line more than the limit is a header only when it is text.
#[test]
fn a_trace_one_arrival_over_the_limit_is_refused_without_a_header() {
    let arrivals = |n: usize| {
        let mut csv = "0\n".repeat(n - 1);
        csv.push_str("1\n");
        csv
    };
    let errs = trace_errors("over-limit", &arrivals(10_000_001), TRACE);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].contains("10000001 lines of arrivals; the limit is 10000000"),
        "{errs:#?}"
    );
    let with_header = format!("timestamp_s\n{}", arrivals(10_000_000));
    trace_scenario("at-limit", &with_header, TRACE).expect("a header and the limit");
}

/// The schema stage reports one wrong type a round; when it gives up, it
/// says so rather than the list seeming complete.
#[test]
fn a_schema_stage_that_gives_up_says_so() {
    let text = with_tables(150, |i| {
        format!("[[targets.cloud]]\ncatalog = \"aws-c7i.large\"\nname = \"c{i}\"\nlink = {i}\n")
    });
    let errs = errors(&text);
    listed_then_cut(
        &errs,
        "checking stopped here, after 100 rounds of key and type errors",
    );
    assert!(
        errs[0].contains(": targets.cloud[1].link: invalid type: integer `0`, expected a string"),
        "{}",
        errs[0]
    );
}
