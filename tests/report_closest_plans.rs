//! When no plan meets the SLO, the report still shows the simulated latency
//! of the closest plans (and says they are infeasible) instead of claiming
//! nothing was simulated.

mod common;

use common::report_quickly;
use workbench::report::{latency_cdf_svg, markdown};

/// One cloud target, online over HTTP, an SLO no plan can meet (10 us).
const IMPOSSIBLE_SLO: &str = r#"
name = "closest-plans-test"

[model]
[[model.variants]]
name = "m"
family = "mlp"
input = 32
hidden = [64]
output = 4

[traffic]
process = "poisson"
rate_per_s = 50
duration_s = 20

[inputs]
space = "unbounded"
request_bytes = 100
response_bytes = 10

[objectives]
latency_percentile = 99
latency_ms = 0.01

[targets]
[[targets.cloud]]
catalog = "aws-c7i.large"

[search]
modes = ["online-http"]
placements = ["cloud"]
max_replicas = 2
seed = 3
"#;

#[test]
fn an_infeasible_run_shows_the_closest_plans_latency() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let s = common::parsed(IMPOSSIBLE_SLO, dir.join("closest-plans.toml"));
    let report = report_quickly(&s);
    assert!(!report.feasible);
    assert!(
        report.alternatives.iter().any(|a| a.plan.simulated),
        "the sample should simulate plans"
    );
    assert!(
        !report.latency_cdfs.is_empty(),
        "no CDF of the closest plans"
    );
    assert!(report.latency_cdfs.len() <= 3);
    // The closest plans first: the CDFs follow the ranking.
    let first_simulated = report
        .alternatives
        .iter()
        .find(|a| a.plan.simulated)
        .map(|a| a.plan.id.as_str());
    assert_eq!(
        Some(report.latency_cdfs[0].plan_id.as_str()),
        first_simulated
    );

    let md = markdown(&report);
    let section = md
        .split("## Simulated latency")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a latency section");
    assert!(!section.contains("No latency was simulated"), "{section}");
    assert!(
        section.contains(
            "No plan meets every constraint: the closest simulated plans against the SLO (p99 ≤"
        ),
        "{section}"
    );
    assert!(
        section.contains(&format!(
            "`{}` (infeasible)",
            report.latency_cdfs[0].plan_id
        )),
        "{section}"
    );

    let svg = latency_cdf_svg(&report).expect("renders");
    assert!(!svg.contains("No requests were simulated"));
    assert!(svg.contains("(infeasible)"));
    assert!(svg.contains("closest plans"));
}
