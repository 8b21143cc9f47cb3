//! `workbench bench --json`: numbers written as the report's data files write
//! them, both DRAM bandwidths, and every field documented in
//! `docs/bench-format.md`.

use std::time::Duration;

use workbench::hardware::roofline::ProbeOptions;
mod common;
use common::edge_target;
use workbench::measure::bench::{run, BenchOptions, BenchScenario};
use workbench_kernels::{Activation, Graph, MlpSpec, ModelSpec};

/// A quick bench of a tiny scenario model only, as `bench --json --quick`
/// writes it.
fn bench_json() -> String {
    let dir = std::env::temp_dir().join(format!("wb-export-numbers-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let spec = ModelSpec::Mlp(MlpSpec {
        input: 32,
        hidden: vec![32],
        output: 4,
        activation: Activation::Relu,
    });
    let options = BenchOptions {
        quick: true,
        fresh: false,
        cache_dir: dir.clone(),
        scenario: Some(BenchScenario {
            name: "tiny/full".into(),
            graph: Graph::from_spec(&spec, 3).expect("a graph"),
            targets: vec![edge_target("roomy", 1 << 30, 10.0)],
        }),
        budget: Some(Duration::from_secs(2)),
        probe: Some(ProbeOptions::quick()),
        reference_workloads: false,
        autotune_scenario: false,
    };
    let report = run(&options, &mut |_| {}).expect("bench runs");
    let _ = std::fs::remove_dir_all(&dir);
    report.to_json().expect("json")
}

/// Every key of a JSON value, with the path of objects it sits in.
fn keys(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(fields) => {
            for (key, inner) in fields {
                out.push(key.clone());
                keys(inner, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| keys(item, out)),
        _ => {}
    }
}

fn numbers(value: &serde_json::Value, out: &mut Vec<f64>) {
    match value {
        serde_json::Value::Number(n) if n.is_f64() => out.extend(n.as_f64()),
        serde_json::Value::Object(fields) => fields.values().for_each(|v| numbers(v, out)),
        serde_json::Value::Array(items) => items.iter().for_each(|v| numbers(v, out)),
        _ => {}
    }
}

#[test]
fn bench_json_numbers_bandwidths_and_fields() {
    let text = bench_json();
    let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");

    // Numbers: 10 significant digits, plain decimal (a measured median such
    // as 107323.76181818181 was written with 17).
    let mut floats = Vec::new();
    numbers(&json, &mut floats);
    assert!(floats.len() > 20, "{}", floats.len());
    for value in floats {
        let rounded: f64 = format!("{value:.9e}").parse().expect("a number");
        assert_eq!(
            value, rounded,
            "{value} has more than 10 significant digits"
        );
    }
    assert!(!text.contains("e-"), "an exponent in {text}");

    // Both DRAM figures: the projection's (copy) and the roofline picture's (read).
    let dram = json["roofline"]["bandwidth"]
        .as_array()
        .expect("levels")
        .iter()
        .find(|level| level["level"] == "DRAM")
        .expect("a DRAM level");
    let hardware = &json["hardware"];
    assert_eq!(hardware["dram_gbs"], json["roofline"]["dram_gbs"]);
    assert_eq!(hardware["dram_gbs"], dram["copy_gbs"]);
    assert_eq!(hardware["dram_read_gbs"], dram["read_gbs"], "{hardware}");

    // Every field is documented.
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/bench-format.md"))
        .expect("docs/bench-format.md");
    let mut names = Vec::new();
    keys(&json, &mut names);
    names.sort();
    names.dedup();
    let undocumented: Vec<&String> = names
        .iter()
        .filter(|name| !doc.contains(&format!("`{name}`")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "not in docs/bench-format.md: {undocumented:?}"
    );
}
