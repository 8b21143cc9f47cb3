//! The bench report: probe + measure + project, JSON shape and table.

use std::time::Duration;
mod common;
use common::edge_target;
use workbench::hardware::roofline::ProbeOptions;
use workbench::measure::bench::{run, BenchOptions, BenchScenario};
use workbench::measure::MeasureProgress;
use workbench_kernels::{Activation, BackendKind, Graph, MlpSpec, ModelSpec, Precision};

fn small_scenario() -> BenchScenario {
    let spec = ModelSpec::Mlp(MlpSpec {
        input: 32,
        hidden: vec![32],
        output: 4,
        activation: Activation::Relu,
    });
    BenchScenario {
        name: "tiny-mlp".into(),
        graph: Graph::from_spec(&spec, 3).unwrap(),
        targets: vec![
            edge_target("roomy", 1 << 30, 10.0),
            edge_target("roomy-2x", 1 << 30, 20.0),
            edge_target("cramped", 1000, 10.0),
        ],
    }
}

/// A quick bench of the small scenario only, cached under `dir`.
fn scenario_bench(dir: &std::path::Path, autotune_scenario: bool) -> BenchOptions {
    BenchOptions {
        quick: true,
        fresh: false,
        cache_dir: dir.to_path_buf(),
        scenario: Some(small_scenario()),
        budget: Some(Duration::from_secs(2)),
        probe: Some(ProbeOptions::quick()),
        reference_workloads: false,
        autotune_scenario,
    }
}

#[test]
fn bench_with_a_scenario_reports_measured_and_projected_figures() {
    let dir = std::env::temp_dir().join(format!("wb-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let opts = scenario_bench(&dir, false);
    let mut events = 0;
    let report = run(&opts, &mut |_| events += 1).unwrap();
    assert!(events > 0);
    assert!(report.hardware.peak_gflops_f32 > 0.0);
    assert_eq!(report.roofline.bandwidth.len(), 4);
    assert!(!report.roofline_from_cache);
    // fused + tiled at f32 and quantized at int8, batches 1 and 8; the pairs a
    // backend refuses (fused int8, quantized f32) are not tried at all.
    assert_eq!(report.kernels.len(), 6, "{:?}", report.kernels);
    assert!(report
        .kernels
        .iter()
        .any(|k| k.backend == BackendKind::Quantized && k.precision == Precision::Int8));
    assert!(report
        .kernels
        .iter()
        .all(|k| k.median_ns > 0.0 && k.gflops > 0.0));
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);

    // Every measurement is projected onto every target; the cramped one is infeasible.
    assert_eq!(report.projections.len(), 6 * 3);
    for p in &report.projections {
        if p.target == "cramped" {
            assert!(p.projected_ns.is_none());
            assert!(
                p.infeasible.as_deref().unwrap().contains("model needs"),
                "{p:?}"
            );
        } else {
            assert!(p.projected_ns.unwrap() > 0.0, "{p:?}");
        }
    }
    // Twice the compute on the same bandwidth is never slower.
    for (a, b) in report
        .projections
        .iter()
        .filter(|p| p.target == "roomy")
        .zip(report.projections.iter().filter(|p| p.target == "roomy-2x"))
    {
        if let (Some(slow), Some(fast)) = (a.projected_ns, b.projected_ns) {
            assert!(fast <= slow, "{a:?} vs {b:?}");
        }
    }

    let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
    assert!(json["hardware"]["cpu"].is_string());
    assert!(json["hardware"]["features"].is_array());
    assert!(json["hardware"]["peak_gflops_f32"].as_f64().unwrap() > 0.0);
    assert!(json["roofline"]["dram_gbs"].is_number());
    let k = &json["kernels"][0];
    for key in [
        "backend",
        "precision",
        "workload",
        "shape",
        "batch",
        "median_ns",
        "gflops",
    ] {
        assert!(!k[key].is_null(), "kernels[0].{key} missing: {k}");
    }
    assert_eq!(k["provenance"]["kind"], "measured");
    assert!(
        k["trials"].is_null(),
        "only autotuned records carry trials: {k}"
    );
    assert_eq!(json["projections"][0]["provenance"]["kind"], "projected");

    let table = report.render_table();
    for needle in [
        "Hardware",
        "Roofline",
        "GFLOP/s",
        "tiny-mlp",
        "infeasible: model needs",
        "roomy-2x",
    ] {
        assert!(table.contains(needle), "table lacks {needle}:\n{table}");
    }
    // It says what it timed of the scenario, and what it did not.
    assert!(
        table.contains(
            "scenario tiny-mlp: its reference model variant only, timed with fused f32, \
             tiled f32, quantized int8; not measured by bench: f16, bf16"
        ),
        "{table}"
    );

    // Second run: roofline and measurements come from the cache.
    let again = run(&opts, &mut |_| {}).unwrap();
    assert!(again.roofline_from_cache);
    assert_eq!(again.roofline, report.roofline);
    assert!(again.kernels.iter().all(|k| k.from_cache));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bench_json_has_quantized_and_autotuned_records_with_precision_and_trials() {
    let dir = std::env::temp_dir().join(format!("wb-bench-tuned-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // The autotuned backend logs its trials under WORKBENCH_CACHE_DIR; no other
    // test in this binary compiles the autotuned backend or reads the variable.
    std::env::set_var("WORKBENCH_CACHE_DIR", &dir);
    let opts = scenario_bench(&dir, true);
    // The autotuner's search is reported as it goes (the TUI shows its best
    // so far): trials counting up to each shape's limit, a best once timed.
    let mut tuning = Vec::new();
    let report = run(&opts, &mut |p| {
        if let MeasureProgress::Tuning {
            shape,
            trials,
            max_trials,
            best_gflops,
            best,
        } = p
        {
            tuning.push((shape, trials, max_trials, best_gflops, best));
        }
    })
    .unwrap();
    assert!(!tuning.is_empty(), "no tuning progress reported");
    assert!(tuning.iter().all(|(_, t, max, _, _)| t <= max && *max > 0));
    let (shape, _, _, best_gflops, best) = tuning.last().unwrap();
    assert!(shape.split('x').count() == 3, "{shape}");
    assert!(
        best_gflops.is_some_and(|g| g > 0.0) && best.contains("mc="),
        "{tuning:?}"
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
    let kernels = json["kernels"].as_array().unwrap();
    let of = |backend: &str| -> Vec<&serde_json::Value> {
        kernels.iter().filter(|k| k["backend"] == backend).collect()
    };
    let (quantized, autotuned) = (of("quantized"), of("autotuned"));
    assert_eq!(quantized.len(), 2, "batches 1 and 8");
    assert_eq!(autotuned.len(), 2, "batches 1 and 8");
    for k in &quantized {
        assert_eq!(k["precision"], "int8");
        assert!(k["trials"].is_null());
    }
    let tiny_shapes: u64 = 2; // 32 -> 32 and 32 -> 4 dense layers
    for k in &autotuned {
        assert_eq!(k["precision"], "f32");
        assert!(k["median_ns"].as_f64().unwrap() > 0.0);
        let trials = k["trials"]
            .as_u64()
            .expect("autotuned records carry trials");
        // Every shape ran at least its initial trials and at most the default budget.
        assert!(
            (tiny_shapes..=40 * tiny_shapes).contains(&trials),
            "{trials}"
        );
    }
    let table = report.render_table();
    assert!(table.contains("tuning trials"), "{table}");
    assert!(
        table.contains("timed with fused f32, tiled f32, quantized int8, autotuned f32;"),
        "{table}"
    );
    // A second run reuses measurements and the tuning log: same trial count.
    let again = run(&opts, &mut |_| {}).unwrap();
    let trials = |r: &workbench::measure::bench::BenchReport| -> Vec<Option<usize>> {
        r.kernels
            .iter()
            .filter(|k| k.backend == BackendKind::Autotuned)
            .map(|k| k.trials)
            .collect()
    };
    assert_eq!(trials(&again), trials(&report));
    std::env::remove_var("WORKBENCH_CACHE_DIR");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `bench --help` says what bench measures of a scenario, and what it leaves
/// to `workbench run`, rather than promising "the kernel backends".
#[test]
fn bench_help_says_what_it_measures_and_what_it_does_not() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_workbench"))
        .args(["bench", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap().replace('\n', " ");
    for part in [
        "its reference model variant is timed with fused and tiled f32 and quantized int8",
        "Not measured by bench: f16 and bf16",
        "the scenario's other variants",
        "workbench run",
    ] {
        assert!(help.contains(part), "`{part}` missing from: {help}");
    }
    assert!(
        !help.contains("the kernel backends of a scenario"),
        "{help}"
    );
}

/// Prints the quick bench (probe figures and reference workloads) for a person to read:
/// `cargo test --release --test measure_bench -- --ignored --nocapture`.
#[test]
#[ignore = "slow: runs the full quick bench; for reading, not asserting"]
fn print_quick_bench() {
    let opts = BenchOptions {
        quick: true,
        fresh: true,
        cache_dir: std::env::temp_dir().join("wb-bench-print"),
        ..BenchOptions::default()
    };
    let report = run(&opts, &mut |_| {}).unwrap();
    println!("{}", report.render_table());
}

/// A workload whose cheapest call would outrun its share of the budget is
/// skipped with why, and the report of the others stands: on a busy machine
/// the first workloads had used a quick bench's budget up, and the bench
/// exited 4 with no JSON at all. Here 1 ms leaves the reference workloads
/// (sgemm at n = 256 and up, the models) too little by their FLOPs alone;
/// the scenario's tiny MLP fits.
#[test]
fn workloads_left_without_budget_are_skipped_not_fatal() {
    let dir = std::env::temp_dir().join(format!("wb-bench-starved-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let opts = BenchOptions {
        quick: true,
        fresh: true,
        cache_dir: dir.clone(),
        scenario: Some(small_scenario()),
        budget: Some(Duration::from_millis(1)),
        probe: Some(ProbeOptions::quick()),
        reference_workloads: true,
        autotune_scenario: false,
    };
    let report = run(&opts, &mut |_| {}).unwrap();
    assert!(!report.kernels.is_empty());
    let starved: Vec<_> = report
        .skipped
        .iter()
        .filter(|s| s.reason.contains("cannot be measured within its budget"))
        .collect();
    assert!(!starved.is_empty(), "{:?}", report.skipped);
    // Each names its workload and backend, one no record was timed for (a
    // faster backend of the same workload may have fitted: skips are per
    // backend and precision).
    for s in &starved {
        assert!(
            !report.kernels.iter().any(|k| k.workload == s.workload
                && k.backend == s.backend
                && k.precision == s.precision),
            "{s:?}"
        );
    }
    assert!(report
        .render_table()
        .contains(&format!("skipped {}", starved[0].workload)));
    std::fs::remove_dir_all(&dir).unwrap();
}
