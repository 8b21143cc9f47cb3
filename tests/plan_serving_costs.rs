//! What a scenario says its server, consumer, broker and network do replaces
//! the planner's assumptions: CPU per HTTP request and per stream message
//! (`request_cpu_us`, `message_cpu_us` on a cloud target), what a partition
//! delivers (`partition_mb_per_s`, `partition_messages_per_s` on the broker)
//! and TCP's retransmission floor (`min_rto_ms` on a link). Each changes the
//! plan as it should, the defaults change nothing, bad values are refused
//! where they are written, and the report says which figures were stated.
//! The shipped card-fraud stream, edited; synthetic compute (no timing).

mod common;

use std::path::Path;

use common::{load, plan_quickly};
use workbench::plan::search::{
    broker_partition_capacity_per_s, message_cpu_s, physical_cores, request_cpu_s, serving_notes,
};
use workbench::plan::{Evaluation, PlanOutcome};
use workbench::scenario::{self, Mode, Placement, Scenario, ScenarioError, Target};

/// Poisson at 4,000 transactions/s, 1,024 B each, over 32 partitions.
const SHIPPED: &str = "card-fraud-stream";
const C7I: &str = "catalog = \"aws-c7i.xlarge\"\n";
const C7G: &str = "catalog = \"aws-c7g.xlarge\"\n";

fn shipped_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{SHIPPED}.toml"));
    std::fs::read_to_string(path).expect("shipped scenario")
}

/// The shipped text with each `(anchor, replacement)` applied once.
fn edited_text(edits: &[(&str, &str)]) -> String {
    let mut text = shipped_text();
    for (anchor, replacement) in edits {
        assert!(text.contains(anchor), "`{anchor}` not in {SHIPPED}");
        text = text.replacen(anchor, replacement, 1);
    }
    text
}

fn parse(text: &str) -> Result<Scenario, scenario::ScenarioErrors> {
    scenario::parse_str(text, Path::new("serving.toml"))
}

fn edited(edits: &[(&str, &str)]) -> Scenario {
    parse(&edited_text(edits)).unwrap_or_else(|e| panic!("{e}"))
}

/// Both cloud targets with `lines` added.
fn both_targets(lines: &str) -> Scenario {
    edited(&[
        (C7I, &format!("{C7I}{lines}\n")),
        (C7G, &format!("{C7G}{lines}\n")),
    ])
}

fn of_mode(out: &PlanOutcome, mode: Mode) -> Vec<&Evaluation> {
    let mut list: Vec<&Evaluation> = out
        .evaluations
        .iter()
        .filter(|e| e.candidate.mode == mode)
        .collect();
    list.sort_by(|a, b| a.plan.id.cmp(&b.plan.id));
    list
}

/// The plans of `mode` are the same in both outcomes, with the same capacity
/// (their simulated figures may differ: the front-runners of the whole
/// search are simulated again at length, and the front changed).
fn same_plans(a: &PlanOutcome, b: &PlanOutcome, mode: Mode) {
    let plans = |out: &PlanOutcome| -> Vec<(String, f64)> {
        of_mode(out, mode)
            .iter()
            .map(|e| (e.plan.id.clone(), e.capacity_rps))
            .collect()
    };
    assert!(!plans(a).is_empty());
    assert_eq!(plans(a), plans(b));
}

/// The fewest replicas of any plan of `mode` on `target` that meets every constraint.
fn fewest_feasible_replicas(out: &PlanOutcome, mode: Mode, target: &str) -> Option<u32> {
    of_mode(out, mode)
        .into_iter()
        .filter(|e| e.feasible() && e.candidate.target == target)
        .map(|e| e.plan.replicas)
        .min()
}

fn target<'s>(s: &'s Scenario, name: &str) -> &'s Target {
    s.targets.find(name).expect("target")
}

/// Per target: the stated per-request (or per-message) CPU bounds what a
/// replica serves, so the plans of `mode` need at least the replicas that CPU
/// alone takes, more than with the assumed figure; and no plan claims more
/// capacity than its cores' CPU allows.
fn cpu_bounds_replicas(
    default: &PlanOutcome,
    stated: &PlanOutcome,
    s: &Scenario,
    mode: Mode,
    cpu_s: fn(&Target) -> f64,
) {
    for t in &s.targets.cloud {
        let name = t.spec.name.as_str();
        let cores = physical_cores(t);
        let at_least = (s.traffic.peak_rate_per_s() * cpu_s(t) / cores).ceil() as u32;
        assert!(at_least >= 2, "{name}: {at_least}");
        let before = fewest_feasible_replicas(default, mode, name).expect("feasible by default");
        let after = fewest_feasible_replicas(stated, mode, name).expect("feasible with more");
        assert!(after >= at_least, "{name}: {after} < {at_least}");
        assert!(after > before, "{name}: {after} <= {before}");
        for e in of_mode(stated, mode) {
            if e.candidate.target == name && e.capacity_rps > 0.0 {
                let most = f64::from(e.plan.replicas) * cores / cpu_s(t);
                assert!(e.capacity_rps <= most * (1.0 + 1e-9), "{}", e.plan.id);
            }
        }
    }
}

#[test]
fn a_server_that_spends_more_cpu_per_request_needs_more_replicas() {
    let default = plan_quickly(&load(SHIPPED), 0.99);
    // 2 ms of a core per request: an aws-c7i.xlarge (2 physical cores) serves
    // at most 1,000 requests/s, an aws-c7g.xlarge (4) 2,000
    let s = both_targets("request_cpu_us = 2000");
    for t in &s.targets.cloud {
        assert_eq!(request_cpu_s(t), 2e-3);
    }
    let stated = plan_quickly(&s, 0.99);
    cpu_bounds_replicas(&default, &stated, &s, Mode::OnlineHttp, request_cpu_s);
    // stream consumers do not parse HTTP: their plans are the same
    same_plans(&default, &stated, Mode::OnlineStream);
}

#[test]
fn a_consumer_that_spends_more_cpu_per_message_needs_more_replicas() {
    let default = plan_quickly(&load(SHIPPED), 0.99);
    let s = both_targets("message_cpu_us = 2000");
    let stated = plan_quickly(&s, 0.99);
    cpu_bounds_replicas(&default, &stated, &s, Mode::OnlineStream, message_cpu_s);
    same_plans(&default, &stated, Mode::OnlineHttp);
}

#[test]
fn each_target_uses_its_own_figure() {
    let s = edited(&[(C7I, &format!("{C7I}request_cpu_us = 2000\n"))]);
    assert_eq!(request_cpu_s(target(&s, "aws-c7i.xlarge")), 2e-3);
    assert_eq!(request_cpu_s(target(&s, "aws-c7g.xlarge")), 30e-6);
    let default = plan_quickly(&load(SHIPPED), 0.99);
    let stated = plan_quickly(&s, 0.99);
    let fewest = |out: &PlanOutcome, t: &str| fewest_feasible_replicas(out, Mode::OnlineHttp, t);
    assert!(fewest(&stated, "aws-c7i.xlarge") > fewest(&default, "aws-c7i.xlarge"));
    assert_eq!(
        fewest(&stated, "aws-c7g.xlarge"),
        fewest(&default, "aws-c7g.xlarge")
    );
}

/// Every plan that reads the broker (streams, and HTTP bridged from it).
fn through_the_broker(out: &PlanOutcome) -> Vec<&Evaluation> {
    out.evaluations
        .iter()
        .filter(|e| matches!(e.candidate.mode, Mode::OnlineStream | Mode::OnlineHttp))
        .collect()
}

#[test]
fn a_slower_partition_needs_more_partitions_and_says_how_many() {
    // 0.1 MB/s of 1,024 B messages: 97.66/s per partition, 3,125/s over 32
    let s = edited(&[(
        "partitions = 32",
        "partitions = 32\npartition_mb_per_s = 0.1",
    )]);
    let broker = s.targets.broker.as_ref().expect("broker");
    let per_partition = broker_partition_capacity_per_s(broker, 1024);
    assert!((per_partition - 1e5 / 1024.0).abs() < 1e-9);
    let out = plan_quickly(&s, 0.99);
    // (inputs are unbounded: nothing can be precomputed either)
    assert!(out.recommended().is_none());
    let plans = through_the_broker(&out);
    assert!(!plans.is_empty());
    for e in plans {
        let reason = e.rejected.join("; ");
        assert!(
            reason.contains("32 partition(s) deliver at most 3125 msg/s")
                && reason.contains("needs at least 41 partitions"),
            "{reason}"
        );
    }
}

/// A stream's broker traffic is its requests' and answers' bytes once per
/// pair of hops: four hops (each message re-published once more) carry
/// twice the bytes of two (it had been charged once whatever the hops).
#[test]
fn broker_traffic_grows_with_the_hops() {
    let broker_usd = |hops: &str| {
        let s = edited(&[("hops = 2", hops)]);
        let out = plan_quickly(&s, 0.99);
        let stream = of_mode(&out, Mode::OnlineStream)
            .into_iter()
            .find(|e| e.simulated)
            .expect("a simulated stream plan");
        let line = stream
            .plan
            .cost_breakdown
            .iter()
            .find(|l| l.item.starts_with("broker traffic"))
            .expect("a broker traffic line");
        (stream.plan.id.clone(), line.usd_per_month)
    };
    let (two_id, two) = broker_usd("hops = 2");
    let (four_id, four) = broker_usd("hops = 4");
    assert_eq!(two_id, four_id);
    assert!(two > 0.0);
    assert!((four / two - 2.0).abs() < 0.02, "${two} vs ${four}");
}

#[test]
fn a_partition_message_cap_binds_exactly_at_the_peak() {
    let with_cap = |cap: u32| {
        let s = edited(&[(
            "partitions = 32",
            &format!("partitions = 32\npartition_messages_per_s = {cap}"),
        )]);
        plan_quickly(&s, 0.99)
    };
    // 32 x 125 = 4,000/s: just enough for the peak
    let enough = with_cap(125);
    assert!(through_the_broker(&enough)
        .iter()
        .all(|e| !e.rejected.iter().any(|r| r.contains("partition"))));
    assert_eq!(
        enough.recommended().map(|e| e.candidate.mode),
        Some(Mode::OnlineStream)
    );
    // 32 x 124 = 3,968/s: one short, and 4,000 / 124 = 32.3 means 33
    let short = with_cap(124);
    for e in through_the_broker(&short) {
        let reason = e.rejected.join("; ");
        assert!(reason.contains("needs at least 33 partitions"), "{reason}");
    }
}

#[test]
fn stating_the_assumed_figures_changes_nothing() {
    let shipped = load(SHIPPED);
    let stated = edited(&[
        (
            C7I,
            &format!("{C7I}request_cpu_us = 30\nmessage_cpu_us = 10\n"),
        ),
        (
            C7G,
            &format!("{C7G}request_cpu_us = 30\nmessage_cpu_us = 10\n"),
        ),
        (
            "partitions = 32",
            "partitions = 32\npartition_mb_per_s = 10\npartition_messages_per_s = 100_000",
        ),
    ]);
    assert_ne!(shipped.targets, stated.targets);
    let before = plan_quickly(&shipped, 0.99);
    let after = plan_quickly(&stated, 0.99);
    assert_eq!(before.evaluations, after.evaluations);
    // and the shipped answer is still the one the scenario expects
    let best = before.recommended().expect("feasible");
    let expect = shipped.expect.expect("an expectation");
    assert_eq!(
        (best.candidate.mode, best.candidate.placement),
        (expect.mode, expect.placement)
    );
    assert_eq!(expect.placement, Placement::Cloud);
}

/// The shipped scenario served over HTTP to callers (not from the topic),
/// through a data-centre link that loses 2% of packets.
fn lossy(min_rto: &str) -> Scenario {
    let link = "link = \"dc\"\n";
    edited(&[
        ("source = \"stream\"", ""),
        (C7I, &format!("{C7I}{link}")),
        (C7G, &format!("{C7G}{link}")),
        (
            "[targets.broker]",
            &format!("[[targets.links]]\nname = \"dc\"\nrtt_median_ms = 0.5\nrtt_p99_ms = 2\nbandwidth_mbps = 10_000\nloss_fraction = 0.02\n{min_rto}\n\n[targets.broker]"),
        ),
        (
            "modes = [\"online-stream\", \"online-http\", \"batch\"]",
            "modes = [\"online-http\"]",
        ),
        (
            "[expect]\nmode = \"online-stream\"",
            "[expect]\nmode = \"online-http\"",
        ),
    ])
}

#[test]
fn a_lower_retransmission_floor_shortens_a_lossy_links_tail() {
    // Linux's 200 ms floor: the 1 in 1,000 slowest requests wait for it
    let default = plan_quickly(&lossy(""), 0.99);
    assert!(default.recommended().is_none());
    let simulated: Vec<&Evaluation> = of_mode(&default, Mode::OnlineHttp)
        .into_iter()
        .filter(|e| e.simulated)
        .collect();
    assert!(!simulated.is_empty());
    for e in simulated {
        let ms = e.slo_latency_ms.unwrap_or(f64::INFINITY);
        assert!(ms >= 200.0, "{}: {ms}", e.plan.id);
    }
    // a data-centre floor of 5 ms: the tail is a few retransmissions
    let stated = plan_quickly(&lossy("min_rto_ms = 5"), 0.99);
    let best = stated.recommended().expect("feasible with a 5 ms floor");
    let ms = best.slo_latency_ms.expect("estimated");
    assert!(ms < 50.0, "{ms}");
}

/// The notes of a report, joined.
fn notes(s: &Scenario) -> String {
    serving_notes(s).join("\n")
}

#[test]
fn the_report_says_which_figures_the_scenario_stated() {
    let defaults = notes(&load(SHIPPED));
    for key in [
        "request_cpu_us",
        "message_cpu_us",
        "partition_mb_per_s",
        "partition_messages_per_s",
        "min_rto_ms",
    ] {
        assert!(defaults.contains(&format!("`{key}` sets it")), "{defaults}");
    }
    assert!(!defaults.contains("(scenario)"), "{defaults}");
    assert!(defaults.contains("30 µs (assumption"), "{defaults}");
    assert!(
        defaults.contains("100,000 messages/s (assumption"),
        "{defaults}"
    );
    assert!(
        defaults.contains("at least 200 ms (assumption"),
        "{defaults}"
    );

    let mut s = edited(&[
        (C7I, &format!("{C7I}request_cpu_us = 45\n")),
        (
            "partitions = 32",
            "partitions = 32\npartition_mb_per_s = 2.5",
        ),
    ]);
    let stated = notes(&s);
    assert!(
        stated.contains(
            "45 µs (scenario) on `aws-c7i.xlarge`, 30 µs (assumption; a cloud target's `request_cpu_us` sets it) on `aws-c7g.xlarge`"
        ),
        "{stated}"
    );
    assert!(stated.contains("at most 2.5 MB/s (scenario)"), "{stated}");
    assert!(stated.contains("10 µs (assumption"), "{stated}");
    // the same figure on every target is said once
    for t in &mut s.targets.cloud {
        t.request_cpu_us = Some(45.0);
    }
    assert!(notes(&s).contains("response) 45 µs (scenario); per stream"));
    assert!(notes(&lossy("min_rto_ms = 5")).contains("at least 5 ms (scenario)"));
}

/// The only error for `text`.
fn only_error(text: &str) -> ScenarioError {
    let errs = parse(text).expect_err("refused").errors;
    assert_eq!(errs.len(), 1, "{errs:#?}");
    errs.into_iter().next().expect("one")
}

/// Line and column (1-based) of the first `needle` in `text`.
fn position(text: &str, needle: &str) -> (usize, usize) {
    let at = text.find(needle).expect("needle");
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    (
        text[..at].matches('\n').count() + 1,
        text[line_start..at].chars().count() + 1,
    )
}

#[test]
fn bad_figures_are_refused_where_they_are_written() {
    let cases = [
        (
            C7G,
            format!("{C7G}request_cpu_us = -3\n"),
            "targets.cloud[1].request_cpu_us",
            ">= 0 and <= 1000000",
        ),
        (
            C7I,
            format!("{C7I}message_cpu_us = 2e6\n"),
            "targets.cloud[0].message_cpu_us",
            ">= 0 and <= 1000000",
        ),
        (
            "partitions = 32",
            "partitions = 32\npartition_mb_per_s = 0".to_string(),
            "targets.broker.partition_mb_per_s",
            ">= 1e-6 and <= 100000",
        ),
        (
            "partitions = 32",
            "partitions = 32\npartition_messages_per_s = 1e9".to_string(),
            "targets.broker.partition_messages_per_s",
            ">= 1e-6 and <= 100000000",
        ),
    ];
    for (anchor, replacement, key, range) in cases {
        let text = edited_text(&[(anchor, &replacement)]);
        let e = only_error(&text);
        let line_of_key = replacement.lines().last().expect("a line");
        let (line, _) = position(&text, line_of_key);
        // the column of the value, after `key = `
        let col = line_of_key.find("= ").expect("a key = value line") + 3;
        assert_eq!((e.key.as_str(), e.line, e.col), (key, line, col), "{e}");
        assert!(e.message.contains("is not accepted"), "{e}");
        assert!(e.message.contains(range), "{e}");
    }
}

#[test]
fn server_figures_are_refused_on_a_device_and_misspellings_anywhere() {
    let edge = edited_text(&[(
        "[targets.broker]",
        "[[targets.edge]]\ncatalog = \"phone-midrange\"\nrequest_cpu_us = 50\n\n[targets.broker]",
    )]);
    let e = only_error(&edge);
    assert_eq!(e.key, "targets.edge[0].request_cpu_us");
    let (line, col) = position(&edge, "request_cpu_us = 50");
    assert_eq!((e.line, e.col), (line, col + "request_cpu_us = ".len()));
    assert!(
        e.message.contains("applies only to [[targets.cloud]]"),
        "{e}"
    );
    let misspelt = edited_text(&[(C7I, &format!("{C7I}request_cpu_ms = 50\n"))]);
    let e = only_error(&misspelt);
    assert!(e.message.contains("request_cpu_us"), "{e}");
    assert_eq!(e.line, position(&misspelt, "request_cpu_ms").0);
}

/// An HTTP plan over events already on the broker pays a bridge instance
/// on a line of its own: its serving instances are the replicas its id
/// names (an `x1` plan had been billed 1,460 serving instance-hours).
#[test]
fn a_bridged_http_plan_bills_its_bridge_on_its_own_line() {
    let out = plan_quickly(&load(SHIPPED), 0.99);
    let http = of_mode(&out, Mode::OnlineHttp)
        .into_iter()
        .find(|e| e.simulated)
        .expect("a simulated HTTP plan");
    let line = |prefix: &str| {
        http.plan
            .cost_breakdown
            .iter()
            .find(|l| l.item.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} line in {:?}", http.plan.cost_breakdown))
    };
    let serving = line("serving instances");
    let bridge = line("broker-to-HTTP bridge");
    let replicas = f64::from(http.plan.replicas);
    assert!(
        serving
            .item
            .contains(&format!("({:.1} instance-hours)", 730.0 * replicas)),
        "{serving:?}"
    );
    assert!(
        (bridge.usd_per_month - serving.usd_per_month / replicas).abs() < 1e-6,
        "{bridge:?} vs {serving:?}"
    );
}
