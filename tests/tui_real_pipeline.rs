//! The TUI's real pipeline gives the same plan as `workbench run` for the same
//! scenario and seed (same cache of measurements).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use workbench::pipeline::PipelineOptions;
use workbench::report::{self, PlanFile};
use workbench::tui::{Pipeline, Progress, RealPipeline, WhatIf};

fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("workbench-tui-real-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("cannot create {}: {e}", dir.display());
    }
    dir
}

#[test]
fn tui_plan_equals_workbench_run_plan() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scenario = root.join("scenarios/wake-word.toml");
    let cache = temp_dir("cache");
    let out = temp_dir("out");
    let status = Command::new(env!("CARGO_BIN_EXE_workbench"))
        .args([
            "run",
            &scenario.to_string_lossy(),
            "--quick",
            "--quiet",
            "--format",
            "json",
            "--out",
        ])
        .arg(&out)
        .env("WORKBENCH_CACHE_DIR", &cache)
        .current_dir(root)
        .output();
    let output = match status {
        Ok(o) => o,
        Err(e) => panic!("cannot start workbench: {e}"),
    };
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let cli_text = match std::fs::read_to_string(out.join("wake-word").join("plan.json")) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    let mut cli_plan = match report::read_plan(&cli_text) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };

    let pipeline = RealPipeline {
        options: PipelineOptions {
            quick: true,
            cache_dir: cache.clone(),
            ..PipelineOptions::default()
        },
    };
    let entries = pipeline.load_scenarios(&[scenario]);
    assert_eq!(entries.len(), 1);
    let cancel = Arc::new(AtomicBool::new(false));
    let bars = std::sync::Mutex::new(std::collections::BTreeMap::new());
    let measurements = match pipeline.measure(
        &entries[0],
        &|p| {
            if let Progress::Kernel { key, done, total } = p {
                if let Ok(mut bars) = bars.lock() {
                    bars.insert(key, (done, total));
                }
            }
        },
        &cancel,
    ) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    };
    // Each kernel's bar ends full (not at its place in the queue).
    let bars = bars.into_inner().unwrap_or_default();
    assert!(bars.len() > 1, "{bars:?}");
    assert!(bars.values().all(|(done, total)| done == total), "{bars:?}");
    let tui_report = match pipeline.plan(
        &entries[0],
        &measurements,
        &WhatIf::default(),
        &|_| {},
        &cancel,
    ) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    // As `workbench run` writes it: from the report with its figures
    // rounded for export (derived figures, such as the spread, from those).
    use workbench::report::writer::{with_export_figures, with_rounded_figures};
    let written = with_export_figures(&tui_report)
        .map_err(|e| e.to_string())
        .and_then(|rounded| {
            with_rounded_figures(&PlanFile::from_report(&rounded)).map_err(|e| e.to_string())
        });
    let mut tui_plan = match written {
        Ok(plan) => plan,
        Err(e) => panic!("{e}"),
    };
    // The generation time is the only field allowed to differ.
    tui_plan.assumptions.generated_at.clear();
    cli_plan.assumptions.generated_at.clear();
    assert!(tui_plan.recommended.is_some());
    assert_eq!(tui_plan, cli_plan);

    // A what-if re-plans from the same measurements and changes the answer's inputs.
    let busier = match pipeline.plan(
        &entries[0],
        &measurements,
        &WhatIf {
            traffic: 3.0,
            ..WhatIf::default()
        },
        &|_| {},
        &cancel,
    ) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    assert!(busier
        .assumptions
        .notes
        .iter()
        .any(|n| n.contains("traffic x3.00")));
    let _ = std::fs::remove_dir_all(cache);
    let _ = std::fs::remove_dir_all(out);
}

/// Esc while measuring: the real measurement stops within a sample of the flag,
/// not when the whole (here 120 s) budget is spent.
#[test]
fn cancelling_stops_a_real_measurement_promptly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cache = temp_dir("cancel-cache");
    let pipeline = RealPipeline {
        options: PipelineOptions {
            quick: false,
            fresh: true,
            cache_dir: cache.clone(),
            ..PipelineOptions::default()
        },
    };
    // Give the measurement two minutes, so only the cancel can end it in seconds.
    let text = match std::fs::read_to_string(root.join("scenarios/wake-word.toml")) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    assert!(text.contains("measurement_budget_s = 5\n"));
    let slow = cache.join("wake-word.toml");
    if let Err(e) = std::fs::write(
        &slow,
        text.replace("measurement_budget_s = 5\n", "measurement_budget_s = 120\n"),
    ) {
        panic!("{e}");
    }
    let entries = pipeline.load_scenarios(&[slow]);
    assert_eq!(entries.len(), 1);
    let cancel = Arc::new(AtomicBool::new(false));
    let kernels_done = std::sync::atomic::AtomicUsize::new(0);
    let cancelled_at = std::sync::OnceLock::new();
    let result = pipeline.measure(
        &entries[0],
        &|p| {
            if let Progress::Kernel { .. } = p {
                kernels_done.fetch_add(1, Ordering::Relaxed);
                cancel.store(true, Ordering::Relaxed);
                cancelled_at.get_or_init(Instant::now);
            }
        },
        &cancel,
    );
    match result {
        Err(e) => assert!(e.contains("cancelled"), "{e}"),
        Ok(_) => panic!("a cancelled measurement returned measurements"),
    }
    assert_eq!(kernels_done.load(Ordering::Relaxed), 1);
    let at = cancelled_at.get().copied().unwrap_or_else(Instant::now);
    assert!(
        at.elapsed() < Duration::from_secs(5),
        "stopped {:?} after the cancel",
        at.elapsed()
    );
    let _ = std::fs::remove_dir_all(cache);
}

/// A model with two variants: one bar per kernel of each (named after its
/// variant), and one count over both that never goes back.
#[test]
fn measuring_two_variants_counts_and_names_each_kernel() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cache = temp_dir("variants-cache");
    let pipeline = RealPipeline {
        options: PipelineOptions {
            quick: true,
            cache_dir: cache.clone(),
            ..PipelineOptions::default()
        },
    };
    let entries = pipeline.load_scenarios(&[root.join("scenarios/card-fraud-stream.toml")]);
    assert_eq!(entries.len(), 1);
    let cancel = Arc::new(AtomicBool::new(false));
    let bars = std::sync::Mutex::new(std::collections::BTreeSet::new());
    let counts = std::sync::Mutex::new(Vec::new());
    let measurements = pipeline.measure(
        &entries[0],
        &|p| match p {
            Progress::Kernel { key, .. } => {
                if let Ok(mut bars) = bars.lock() {
                    bars.insert(key);
                }
            }
            // "timing 3 of 42: distilled tiled f32 b8"
            Progress::Stage(stage) => {
                let count = stage
                    .strip_prefix("timing ")
                    .and_then(|rest| rest.split_once(':'))
                    .and_then(|(count, _)| count.split_once(" of "))
                    .and_then(|(i, n)| Some((i.parse::<usize>().ok()?, n.parse::<usize>().ok()?)));
                if let (Some(count), Ok(mut counts)) = (count, counts.lock()) {
                    counts.push(count);
                }
            }
            _ => {}
        },
        &cancel,
    );
    let measurements = match measurements {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    };
    let kernels = measurements.kernels.len();
    let bars = bars.into_inner().unwrap_or_default();
    assert!(kernels > 2, "{kernels}");
    assert_eq!(bars.len(), kernels, "one bar per kernel: {bars:?}");
    assert!(bars.iter().any(|b| b.starts_with("full ")), "{bars:?}");
    assert!(bars.iter().any(|b| b.starts_with("distilled ")), "{bars:?}");
    let counts = counts.into_inner().unwrap_or_default();
    assert_eq!(counts.len(), kernels, "every kernel was timed: {counts:?}");
    assert!(
        counts.windows(2).all(|w| w[1].0 == w[0].0 + 1),
        "the count goes on over the variants: {counts:?}"
    );
    assert!(
        counts.iter().all(|&(_, total)| total == kernels),
        "{counts:?}"
    );
    let _ = std::fs::remove_dir_all(cache);
}
