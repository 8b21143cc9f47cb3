//! A device's cloud fallback travels over the device's own uplink: a phone
//! on a mobile network (60 ms median, 250 ms p99) reaching a cloud whose
//! `link` is a 1 ms datacentre one. The fallback's requests are the slowest
//! 15%, so the plan's p99 is about the 93rd percentile of the mobile round
//! trip (~150 ms with a log-normal through 60 and 250 ms), not the
//! datacentre's 2 ms the planner had reported.

mod common;

use common::{parsed, synthetic_profiles_with};
use workbench::plan::{self, PlanOptions, WhatIf};
use workbench::scenario::Placement;

const FALLBACK: &str = r#"
name = "fallback-uplink"
description = "On-device model, cloud fallback over the phone's mobile uplink"
[model]
reference = "full"
[[model.variants]]
name = "full"
family = "mlp"
accuracy = 0.95
input = 64
hidden = [64]
output = 2
[[model.variants]]
name = "tiny"
family = "mlp"
accuracy = 0.945
input = 64
hidden = [16]
output = 2
fallback_fraction = 0.15
[traffic]
process = "poisson"
rate_per_s = 2000
duration_s = 60
[inputs]
space = "unbounded"
request_bytes = 256
response_bytes = 16
[objectives]
latency_percentile = 99
latency_ms = 1000
accuracy_floor = 0.9
[constraints]
data_may_leave_device = true
offline_fraction = 0
[targets]
[[targets.edge]]
catalog = "phone-midrange"
fleet_size = 1_000_000
link = "mobile"
[[targets.cloud]]
catalog = "aws-c7i.xlarge"
link = "dc"
[[targets.links]]
name = "mobile"
rtt_median_ms = 60
rtt_p99_ms = 250
bandwidth_mbps = 5
[[targets.links]]
name = "dc"
rtt_median_ms = 1
rtt_p99_ms = 3
bandwidth_mbps = 10000
[search]
modes = ["online-http"]
placements = ["hybrid"]
batch_sizes = [1]
max_queue_delay_ms = [0]
"#;

#[test]
fn a_fallback_is_timed_over_the_devices_uplink() {
    let s = parsed(FALLBACK, "fallback.toml");
    let options = PlanOptions {
        sensitivity: false,
        ..PlanOptions::quick(7)
    };
    let outcome = plan::plan(
        &s,
        &synthetic_profiles_with(&s, 0.6, 1.0),
        &WhatIf::default(),
        &options,
    );
    let hybrid = outcome
        .evaluations
        .iter()
        .find(|e| {
            e.simulated
                && e.candidate.placement == Placement::Hybrid
                && e.candidate.fallback_target.is_some()
        })
        .expect("a simulated edge + cloud fallback plan");
    let p99 = hybrid.plan.latency_ms.p99;
    assert!(
        (100.0..250.0).contains(&p99),
        "{}: p99 {p99} ms",
        hybrid.plan.id
    );
    // Its CDF: at a single run's fractions, from the fastest request (not
    // the search's floor of 0), rising through the gap to the cloud's.
    let cdf = &hybrid.cdf;
    assert_eq!(cdf.len(), 21, "{cdf:?}");
    assert!(
        cdf[0].fraction == 0.0 && cdf[0].latency_ms > 1e-4,
        "{cdf:?}"
    );
    assert!(
        cdf.windows(2)
            .all(|w| w[0].latency_ms <= w[1].latency_ms && w[0].fraction < w[1].fraction),
        "{cdf:?}"
    );
    assert!(
        cdf.iter()
            .any(|p| p.fraction > 0.85 && p.fraction < 0.99 && p.latency_ms > 20.0),
        "no point inside the cloud's share: {cdf:?}"
    );
    // The device's own answers stay fast: the median is on the device.
    assert!(
        hybrid.plan.latency_ms.p50 < 10.0,
        "{:?}",
        hybrid.plan.latency_ms
    );
}
