//! `workbench run` end to end through the real binary: every shipped scenario is
//! measured (quick), planned and exported; every plan matches its scenario's
//! `expect` block; `--check` and `--baseline`
//! set the exit code; a second run from the cache gives byte-identical exports
//! but for the one timestamp line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use workbench::report::{self, FigureSource};
use workbench::scenario;

fn workbench(args: &[&str], cache: &Path) -> Output {
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

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every line but the ones carrying the generation timestamp.
fn without_timestamp(text: &str) -> String {
    text.lines()
        .filter(|l| !l.contains("generated_at") && !l.to_lowercase().contains("generated at"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn shipped_scenarios_plan_as_expected_check_and_baseline_gate_and_reruns_are_identical() {
    let cache = temp_dir("cache");
    let first = temp_dir("first");
    let second = temp_dir("second");
    let run = |out: &Path| {
        workbench(
            &[
                "run",
                "scenarios",
                "--quick",
                "--quiet",
                "--out",
                &out.to_string_lossy(),
            ],
            &cache,
        )
    };
    let a = run(&first);
    assert_eq!(a.status.code(), Some(0), "{}", text(&a));

    // Plans against expectations.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (mut checked, mut projected) = (0, 0);
    for path in scenario::scenarios_in_dir(&root.join("scenarios")) {
        let s = match scenario::load(&path) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        let plan = match report::read_plan(&read(&first.join(&s.name).join("plan.json"))) {
            Ok(p) => p,
            Err(e) => panic!("{}: {e}", s.name),
        };
        let rec = match &plan.recommended {
            Some(r) => r,
            None => panic!("{}: no feasible plan: {:?}", s.name, plan.rationale),
        };
        let planned = format!("{}/{}", rec.mode, rec.placement);
        let expect = s.expect.map(|e| format!("{}/{}", e.mode, e.placement));
        assert_eq!(Some(planned), expect, "{}: {:?}", s.name, plan.rationale);
        // A projected plan shows its projection, for its own configuration
        // (on one of its targets, for a fleet or an edge model with a fallback).
        if let Some(p) = &plan.projection {
            assert_eq!(
                (p.backend, p.precision, &p.model_variant),
                (rec.backend, rec.precision, &rec.model_variant),
                "{}",
                s.name
            );
            let targets: Vec<&str> = rec.target.split(['&', '+']).map(str::trim).collect();
            assert!(
                p.target == rec.target || targets.contains(&p.target.as_str()),
                "{}: projection on {} for {}",
                s.name,
                p.target,
                rec.target
            );
            assert!(
                p.batch <= rec.max_batch.max(1) || p.batch == 1,
                "{}",
                s.name
            );
            let sum: f64 = p.ops.iter().map(|o| o.projected_ns).sum();
            assert!(
                (sum - p.projected_ns).abs() <= 1e-6 * p.projected_ns,
                "{}",
                s.name
            );
            projected += 1;
        } else {
            // Every shipped scenario's targets come from the catalog, with no
            // speed factor: a projected figure has its projection to show,
            // fleets and edge models with a fallback included.
            assert_ne!(
                rec.latency_source,
                FigureSource::Projected,
                "{}: projected on {} without a projection",
                s.name,
                rec.target
            );
        }
        checked += 1;
    }
    assert!(
        checked >= 6,
        "only {checked} scenarios checked against expect"
    );
    // Every shipped scenario's targets come from the catalog, with no speed factor.
    assert!(
        projected >= 6,
        "only {projected} plans show their projection"
    );

    // Same seed, cached measurements: byte-identical exports but for the timestamp.
    let b = run(&second);
    assert_eq!(b.status.code(), Some(0), "{}", text(&b));
    let mut compared = 0;
    for entry in std::fs::read_dir(&first).into_iter().flatten().flatten() {
        let name = entry.file_name();
        for file in [
            "plan.json",
            "report.md",
            "candidates.csv",
            "latency.csv",
            "kernels.csv",
        ] {
            let (x, y) = (first.join(&name).join(file), second.join(&name).join(file));
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

    // --check: a matching expectation passes, a wrong one exits 1.
    let ok = workbench(
        &[
            "run",
            "scenarios/predictive-text.toml",
            "--quick",
            "--check",
            "--quiet",
            "--out",
            &second.to_string_lossy(),
        ],
        &cache,
    );
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    let wrong_dir = temp_dir("wrong");
    let wrong = wrong_dir.join("predictive-text.toml");
    let original = read(&root.join("scenarios/predictive-text.toml"));
    let edited = original.replace("placement = \"edge\"", "placement = \"cloud\"");
    assert_ne!(original, edited);
    if let Err(e) = std::fs::write(&wrong, edited) {
        panic!("{e}");
    }
    let mismatch = workbench(
        &[
            "run",
            &wrong.to_string_lossy(),
            "--quick",
            "--check",
            "--quiet",
            "--out",
            &wrong_dir.join("out").to_string_lossy(),
        ],
        &cache,
    );
    assert_eq!(mismatch.status.code(), Some(1), "{}", text(&mismatch));
    assert!(
        text(&mismatch).contains("CHECK FAILED"),
        "{}",
        text(&mismatch)
    );

    // --baseline: the run's own plan passes; a baseline 50% cheaper flags a cost regression.
    let baseline = first.join("predictive-text").join("plan.json");
    let same = workbench(
        &[
            "run",
            "scenarios/predictive-text.toml",
            "--quick",
            "--quiet",
            "--out",
            &wrong_dir.join("b1").to_string_lossy(),
            "--baseline",
            &baseline.to_string_lossy(),
        ],
        &cache,
    );
    assert_eq!(same.status.code(), Some(0), "{}", text(&same));
    let mut cheaper = match report::read_plan(&read(&baseline)) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    if let Some(r) = cheaper.recommended.as_mut() {
        r.cost_usd_per_month *= 0.5;
        r.latency_ms.p99 *= 0.5;
    }
    let cheaper_path = wrong_dir.join("cheaper-plan.json");
    match serde_json::to_string(&cheaper) {
        Ok(json) => {
            if let Err(e) = std::fs::write(&cheaper_path, json) {
                panic!("{e}");
            }
        }
        Err(e) => panic!("{e}"),
    }
    let regressed = workbench(
        &[
            "run",
            "scenarios/predictive-text.toml",
            "--quick",
            "--quiet",
            "--out",
            &wrong_dir.join("b2").to_string_lossy(),
            "--baseline",
            &cheaper_path.to_string_lossy(),
            "--tolerance",
            "10%",
        ],
        &cache,
    );
    assert_eq!(regressed.status.code(), Some(1), "{}", text(&regressed));
    assert!(
        text(&regressed).contains("REGRESSION"),
        "{}",
        text(&regressed)
    );
    let md = read(
        &wrong_dir
            .join("b2")
            .join("predictive-text")
            .join("report.md"),
    );
    assert!(
        md.to_lowercase().contains("baseline"),
        "report.md does not mention the baseline"
    );

    for dir in [cache, first, second, wrong_dir] {
        let _ = std::fs::remove_dir_all(dir);
    }
}
