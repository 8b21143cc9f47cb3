//! What the compiler made of each build reaches the report: measuring keeps
//! each build's printed lowered form (in the timing cache too, so a rerun
//! from the cache still has it), and the report shows the recommended
//! build's.

use workbench::pipeline::{measure_scenario, plan_options, plan_scenario, PipelineOptions};
use workbench::plan::whatif::WhatIf;
use workbench::report;
use workbench::scenario;
use workbench_kernels::{BackendKind, Precision};

const SCENARIO: &str = r#"
name = "programs"
[model]
[[model.variants]]
name = "small"
family = "mlp"
input = 64
hidden = [128, 128]
output = 8

[traffic]
process = "poisson"
rate_per_s = 50

[inputs]
space = "unbounded"
request_bytes = 256
response_bytes = 32

[objectives]
latency_percentile = 99
latency_ms = 100

[targets]
[[targets.cloud]]
catalog = "aws-c7i.xlarge"
link = "dc"

[[targets.links]]
name = "dc"
rtt_median_ms = 1
rtt_p99_ms = 2
bandwidth_mbps = 1000

[search]
batch_sizes = [1, 4]
backends = ["naive", "tiled"]
precisions = ["f32"]
"#;

#[test]
fn each_build_keeps_its_program_and_the_report_shows_the_recommended_ones() {
    let s = scenario::parse_str(SCENARIO, std::path::Path::new("programs.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = std::env::temp_dir().join(format!("workbench-programs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let options = |fresh| PipelineOptions {
        quick: true,
        fresh,
        cache_dir: dir.clone(),
        ..PipelineOptions::default()
    };
    let timed = measure_scenario(&s, &options(true), &mut |_| {});
    // From the cache: nothing compiled, the programs read back.
    let cached = measure_scenario(&s, &options(false), &mut |_| {});
    let _ = std::fs::remove_dir_all(&dir);
    let (timed, cached) = match (timed, cached) {
        (Ok(t), Ok(c)) => (t, c),
        (t, c) => panic!("{:?} / {:?}", t.err(), c.err()),
    };
    assert_eq!(cached.timed, 0);
    assert_eq!(cached.programs, timed.programs);

    let program = |backend| {
        timed
            .programs
            .iter()
            .find(|p| p.is_build("small", backend, Precision::F32))
            .unwrap_or_else(|| panic!("no {backend:?} program in {:?}", timed.programs))
    };
    // The reference runs op by op; tiled fuses each bias and ReLU into its matmul.
    let naive = &program(BackendKind::Naive).text;
    assert!(naive.starts_with("naive (op by op, no fusion)"), "{naive}");
    assert!(naive.contains("relu(%1)"), "{naive}");
    let tiled = &program(BackendKind::Tiled).text;
    assert!(tiled.contains("lowered mlp"), "{tiled}");
    assert!(tiled.contains("+bias +relu  # dense0+act0"), "{tiled}");
    assert_eq!(timed.programs.len(), 2);

    let report = plan_scenario(
        &s,
        &timed,
        &WhatIf::default(),
        &plan_options(&s, &options(false)),
        "2026-12-03T00:00:00Z",
    );
    let plan = report.recommended.as_ref().expect("a feasible plan");
    let shown: Vec<&report::CompiledProgram> = report.programs.iter().collect();
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(shown[0].is_build(&plan.model_variant, plan.backend, plan.precision));
    let md = report::markdown(&report);
    assert!(md.contains("## Compiled program"), "{md}");
    assert!(md.contains(shown[0].text.trim_end()), "{md}");
}
