//! `workbench run` end to end through the real binary: every shipped scenario is
//! measured (quick), planned and exported, and its plan matches its `expect`;
//! a second run from the cache gives byte-identical exports but for the timestamp.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workbench(args: &[&str], cache: &Path) -> std::process::Output {
    match Command::new(env!("CARGO_BIN_EXE_workbench"))
        .args(args)
        .env("WORKBENCH_CACHE_DIR", cache)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
    {
        Ok(o) => o,
        Err(e) => panic!("cannot start workbench: {e}"),
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("workbench-e2e-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("cannot create {}: {e}", dir.display());
    }
    dir
}

fn read(path: &Path) -> String {
    match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => panic!("cannot read {}: {e}", path.display()),
    }
}

/// Every line but the one carrying the generation timestamp.
fn without_timestamp(text: &str) -> String {
    text.lines()
        .filter(|l| {
            !l.contains("generated_at")
                && !l.contains("Generated at")
                && !l.contains("generated at")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_shipped_scenario_plans_as_expected_and_reruns_identically() {
    let cache = temp_dir("cache");
    let first = temp_dir("first");
    let second = temp_dir("second");
    let run = |out: &Path| {
        workbench(
            &[
                "run",
                "scenarios",
                "--quick",
                "--check",
                "--quiet",
                "--out",
                &out.to_string_lossy(),
            ],
            &cache,
        )
    };
    let a = run(&first);
    let stderr = String::from_utf8_lossy(&a.stderr);
    let stdout = String::from_utf8_lossy(&a.stdout);
    assert_eq!(
        a.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let b = run(&second);
    assert_eq!(
        b.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&b.stderr)
    );
    let mut compared = 0;
    for entry in std::fs::read_dir(&first).into_iter().flatten().flatten() {
        let scenario = entry.file_name();
        for file in [
            "plan.json",
            "report.md",
            "candidates.csv",
            "latency.csv",
            "kernels.csv",
        ] {
            let (x, y) = (
                first.join(&scenario).join(file),
                second.join(&scenario).join(file),
            );
            assert!(x.is_file(), "{} missing", x.display());
            assert_eq!(
                without_timestamp(&read(&x)),
                without_timestamp(&read(&y)),
                "{} differs between two runs with the same seed and cache",
                x.display()
            );
            compared += 1;
        }
    }
    assert!(compared >= 50, "compared only {compared} files");
    let plan = read(&first.join("predictive-text").join("plan.json"));
    for field in [
        "\"schema_version\"",
        "\"recommended\"",
        "\"latency_ms\"",
        "\"p99\"",
        "\"cost_usd_per_month\"",
        "\"rejected_because\"",
        "\"hardware_fingerprint\"",
    ] {
        assert!(plan.contains(field), "plan.json lacks {field}");
    }
    for dir in [cache, first, second] {
        let _ = std::fs::remove_dir_all(dir);
    }
}
