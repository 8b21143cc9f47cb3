//! The measurement cache: a second run over the same subject does no timing,
//! `fresh` times again, a full run does not reuse a quick run's figures, and a
//! different graph or hardware misses.

use std::cell::Cell;
use std::time::{Duration, Instant};
use workbench::measure::harness::{HarnessConfig, Workload};
use workbench::measure::{
    measure_jobs, MeasureError, MeasureOptions, MeasureProgress, MeasureSubject,
};
use workbench_kernels::{BackendKind, Precision};

fn spin(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

fn options(dir: &std::path::Path) -> MeasureOptions {
    MeasureOptions {
        budget: Duration::from_millis(600),
        fresh: false,
        quick: false,
        cache_dir: dir.to_path_buf(),
        harness: HarnessConfig {
            warmup: Duration::from_millis(2),
            min_sample: Duration::from_micros(200),
            max_samples: 20,
            ..HarnessConfig::default()
        },
        hardware_fingerprint: None,
        roofline: None,
        cancel: None,
    }
}

fn subject(graph: u64) -> MeasureSubject {
    MeasureSubject {
        hardware_fingerprint: "0123456789abcdef".into(),
        graph_fingerprint: graph,
        workload: "synthetic".into(),
        flops_per_sample: 1e6,
        weight_bytes: 4e6,
        roofline: None,
        rates: None,
        compile_rates: None,
    }
}

/// Runs the jobs with workloads that count their calls; quantized is "not built".
fn run(
    subject: &MeasureSubject,
    opts: &MeasureOptions,
    calls: &Cell<u64>,
    events: &mut Vec<MeasureProgress>,
) -> workbench::measure::MeasureOutcome {
    let configs = [
        (BackendKind::Naive, Precision::F32),
        (BackendKind::Quantized, Precision::Int8),
        (BackendKind::Fused, Precision::F32),
    ];
    let mut factory = |backend: BackendKind,
                       _p: Precision,
                       _allowance: Duration|
     -> Result<Result<Box<dyn Workload + '_>, String>, MeasureError> {
        if backend == BackendKind::Quantized {
            return Ok(Err("quantized backend not built yet".into()));
        }
        let w = move |batch: usize| -> Result<(), MeasureError> {
            calls.set(calls.get() + 1);
            spin(Duration::from_micros(20 * batch as u64));
            Ok(())
        };
        Ok(Ok(Box::new(w)))
    };
    measure_jobs(subject, &configs, &[1, 4], opts, &mut factory, &mut |e| {
        events.push(e)
    })
    .unwrap()
}

#[test]
fn full_runs_time_again_what_quick_runs_measured_and_quick_runs_reuse_full_ones() {
    let dir = std::env::temp_dir().join(format!("wb-measure-grade-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let full = options(&dir);
    let quick = MeasureOptions {
        quick: true,
        ..full.clone()
    };
    let calls = Cell::new(0);
    let mut events = Vec::new();

    let first = run(&subject(7), &quick, &calls, &mut events);
    assert!(first.measurements.iter().all(|m| m.quick && !m.from_cache));
    // Another quick run reuses them.
    let before = calls.get();
    let again = run(&subject(7), &quick, &calls, &mut events);
    assert_eq!(calls.get(), before);
    assert!(again.measurements.iter().all(|m| m.from_cache));
    // A full run does not: it times everything again and replaces the entries.
    events.clear();
    let second = run(&subject(7), &full, &calls, &mut events);
    assert!(calls.get() > before);
    assert!(second
        .measurements
        .iter()
        .all(|m| !m.quick && !m.from_cache));
    assert!(events.contains(&MeasureProgress::Planned {
        total: 6,
        cached: 0
    }));
    // Now both kinds of run are served the full figures without timing.
    let before = calls.get();
    for opts in [&quick, &full] {
        let served = run(&subject(7), opts, &calls, &mut events);
        assert_eq!(calls.get(), before);
        for (a, b) in second.measurements.iter().zip(&served.measurements) {
            assert!(b.from_cache && !b.quick);
            assert_eq!(a.stats, b.stats);
        }
    }
    // Entries written before the grade was recorded count as quick.
    let path =
        workbench::measure::cache_path(&full, &subject(7), BackendKind::Naive, Precision::F32, 1);
    let text = std::fs::read_to_string(&path).unwrap();
    let old = text.replace("\"quick\": false", "\"unrelated\": 0");
    assert_ne!(old, text);
    std::fs::write(&path, old).unwrap();
    let reread = run(&subject(7), &full, &calls, &mut events);
    assert!(calls.get() > before);
    let naive1 = &reread.measurements[0];
    assert_eq!((naive1.backend, naive1.batch), (BackendKind::Naive, 1));
    assert!(!naive1.from_cache);
    assert!(reread.measurements[1..].iter().all(|m| m.from_cache));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn second_run_is_served_from_the_cache_without_timing() {
    let dir = std::env::temp_dir().join(format!("wb-measure-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let opts = options(&dir);
    let calls = Cell::new(0);
    let mut events = Vec::new();

    let first = run(&subject(7), &opts, &calls, &mut events);
    assert!(calls.get() > 0);
    assert_eq!(first.measurements.len(), 4);
    assert!(first.measurements.iter().all(|m| !m.from_cache));
    assert_eq!(first.skipped.len(), 1);
    assert_eq!(first.skipped[0].backend, BackendKind::Quantized);
    assert!(first.skipped[0].reason.contains("not built"));
    // Batch 4 spins 4x longer per call than batch 1.
    let naive: Vec<_> = first
        .measurements
        .iter()
        .filter(|m| m.backend == BackendKind::Naive)
        .collect();
    assert!(
        naive[1].stats.median_ns > 2.0 * naive[0].stats.median_ns,
        "{naive:?}"
    );
    assert!(events.contains(&MeasureProgress::Planned {
        total: 6,
        cached: 0
    }));

    let before = calls.get();
    events.clear();
    let second = run(&subject(7), &opts, &calls, &mut events);
    assert_eq!(calls.get(), before, "re-planning must not time anything");
    assert!(second.measurements.iter().all(|m| m.from_cache));
    for (a, b) in first.measurements.iter().zip(&second.measurements) {
        assert_eq!(a.stats, b.stats);
        assert_eq!(
            (a.backend, a.precision, a.batch),
            (b.backend, b.precision, b.batch)
        );
    }
    assert!(events.contains(&MeasureProgress::Planned {
        total: 6,
        cached: 4
    }));

    // A different graph is a different key.
    run(&subject(8), &opts, &calls, &mut events);
    assert!(calls.get() > before);

    // fresh ignores the cache.
    let before = calls.get();
    let fresh = MeasureOptions {
        fresh: true,
        ..opts.clone()
    };
    let third = run(&subject(7), &fresh, &calls, &mut events);
    assert!(calls.get() > before);
    assert!(third.measurements.iter().all(|m| !m.from_cache));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn zero_batch_is_an_error_not_a_panic() {
    let dir = std::env::temp_dir().join(format!("wb-measure-zero-{}", std::process::id()));
    let opts = options(&dir);
    let mut factory = |_b: BackendKind,
                       _p: Precision,
                       _allowance: Duration|
     -> Result<Result<Box<dyn Workload>, String>, MeasureError> {
        Ok(Err("unused".into()))
    };
    let r = measure_jobs(
        &subject(1),
        &[(BackendKind::Naive, Precision::F32)],
        &[1, 0],
        &opts,
        &mut factory,
        &mut |_| {},
    );
    assert!(matches!(r, Err(MeasureError::ZeroBatch(0))));
}

#[test]
fn a_cancelled_run_stops_with_an_error_and_caches_nothing_after_it() {
    let dir = std::env::temp_dir().join(format!("wb-measure-cancel-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let opts = MeasureOptions {
        cancel: Some(std::sync::Arc::clone(&cancel)),
        ..options(&dir)
    };
    let configs = [(BackendKind::Naive, Precision::F32)];
    let mut factory = |_b: BackendKind,
                       _p: Precision,
                       _allowance: Duration|
     -> Result<Result<Box<dyn Workload + '_>, String>, MeasureError> {
        let w = |_batch: usize| -> Result<(), MeasureError> {
            spin(Duration::from_micros(50));
            Ok(())
        };
        Ok(Ok(Box::new(w)))
    };
    // Cancel as soon as the first job has finished: the second must not run.
    let mut finished = 0;
    let result = measure_jobs(
        &subject(7),
        &configs,
        &[1, 4],
        &opts,
        &mut factory,
        &mut |e| {
            if matches!(e, MeasureProgress::Finished { .. }) {
                finished += 1;
                cancel.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        },
    );
    assert!(matches!(result, Err(MeasureError::Cancelled)), "{result:?}");
    assert_eq!(finished, 1);
    let cached = std::fs::read_dir(dir.join("measure"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(cached, 1, "only the finished job is cached");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Measurements are cached per kernel build: a build whose kernel sources differ
/// has another `SOURCE_ID`, so it times afresh instead of reusing old timings.
#[test]
fn cache_entries_are_keyed_by_the_kernel_build() {
    let id = workbench_kernels::SOURCE_ID;
    assert_eq!(id.len(), 16, "{id}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
    let dir = std::env::temp_dir().join(format!("wb-cache-key-{}", std::process::id()));
    let path = workbench::measure::cache_path(
        &options(&dir),
        &subject(7),
        BackendKind::Tiled,
        Precision::F32,
        4,
    );
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    assert!(
        name.as_deref()
            .is_some_and(|n| n.contains(&format!("-k{id}-"))),
        "{path:?}"
    );
}

/// Rewrites the fields `fields` of the statistics in the cache entry at `path` to `value`.
fn corrupt(path: &std::path::Path, fields: &[&str], value: f64) {
    let mut entry: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for field in fields {
        entry["stats"][*field] = serde_json::json!(value);
    }
    std::fs::write(path, serde_json::to_string(&entry).unwrap()).unwrap();
}

#[test]
fn corrupted_timings_in_the_cache_are_timed_again() {
    let dir = std::env::temp_dir().join(format!("wb-measure-corrupt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let opts = options(&dir);
    let calls = Cell::new(0);
    let mut events = Vec::new();
    let first = run(&subject(7), &opts, &calls, &mut events);
    assert_eq!(first.measurements.len(), 4);
    let path = |backend, batch| {
        workbench::measure::cache_path(&opts, &subject(7), backend, Precision::F32, batch)
    };
    // The review's corruptions: a negative median and a zero p99; every time
    // 1e-30 ns (a model of 1 MFLOP at 1e25 GFLOP/s); and a median above the p90.
    corrupt(&path(BackendKind::Naive, 1), &["median_ns"], -5.0);
    corrupt(&path(BackendKind::Naive, 1), &["p99_ns"], 0.0);
    let every = [
        "median_ns",
        "mean_ns",
        "p90_ns",
        "p99_ns",
        "p25_ns",
        "p75_ns",
        "min_ns",
        "max_ns",
    ];
    corrupt(&path(BackendKind::Naive, 4), &every, 1e-30);
    let p90 = first.measurements[2].stats.p90_ns;
    corrupt(&path(BackendKind::Fused, 1), &["median_ns"], p90 * 1.5);
    // And an entry whose body names another batch than its file: a batch-4
    // timing must not stand in for batch 64 (nor this file's batch 4 be
    // read as 64).
    let fused_4 = path(BackendKind::Fused, 4);
    let mut entry: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&fused_4).unwrap()).unwrap();
    entry["batch"] = serde_json::json!(64);
    std::fs::write(&fused_4, serde_json::to_string(&entry).unwrap()).unwrap();

    let before = calls.get();
    let second = run(&subject(7), &opts, &calls, &mut events);
    assert!(
        calls.get() > before,
        "the corrupted entries are timed again"
    );
    let from_cache: Vec<(BackendKind, usize, bool)> = second
        .measurements
        .iter()
        .map(|m| (m.backend, m.batch, m.from_cache))
        .collect();
    assert_eq!(
        from_cache,
        vec![
            (BackendKind::Naive, 1, false),
            (BackendKind::Naive, 4, false),
            (BackendKind::Fused, 1, false),
            (BackendKind::Fused, 4, false),
        ]
    );
    for m in &second.measurements {
        assert!(m.stats.is_consistent(0.0), "{m:?}");
        assert!(m.stats.min_ns > 1e3, "20 µs a call or more: {m:?}");
    }
    // ...and rewritten: a third run times nothing.
    let before = calls.get();
    let third = run(&subject(7), &opts, &calls, &mut events);
    assert_eq!(calls.get(), before);
    assert!(third.measurements.iter().all(|m| m.from_cache));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_corrupted_roofline_in_the_cache_is_probed_again() {
    use workbench::hardware::probe::LocalHardware;
    use workbench::hardware::roofline::{ProbeOptions, Roofline};
    let dir = std::env::temp_dir().join(format!("wb-roofline-corrupt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let hw = LocalHardware::detect();
    let path = dir.join(format!("roofline-{}.json", hw.fingerprint));
    let load = |roofline: &Roofline| {
        std::fs::write(&path, serde_json::to_string(roofline).unwrap()).unwrap();
        let (loaded, cached) = Roofline::load_or_probe(&hw, &dir, false, ProbeOptions::quick())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(loaded.is_plausible(), "{loaded:?}");
        cached
    };
    let good = Roofline::flat(&hw.fingerprint, 100.0, 400.0, 20.0);
    assert!(load(&good), "a plausible roofline is served from the cache");
    for (peak, int8, dram) in [
        (0.0, 400.0, 20.0),
        (1e300, 400.0, 20.0),
        (-100.0, 400.0, 20.0),
        (100.0, f64::INFINITY, 20.0),
        (100.0, 400.0, 0.0),
        (100.0, 400.0, 1e9),
    ] {
        let bad = Roofline::flat(&hw.fingerprint, peak, int8, dram);
        assert!(!bad.is_plausible(), "{bad:?}");
    }
    // The review's corruption (a zero peak) through the cache: probed again
    // (one probe only: each takes a moment).
    let zero_peak = Roofline::flat(&hw.fingerprint, 0.0, 400.0, 20.0);
    assert!(!load(&zero_peak), "a zero peak is probed again");
    let mut level = serde_json::to_value(&good).unwrap();
    level["bandwidth"] = serde_json::json!([{
        "level": "L1", "working_set_bytes": 1024, "read_gbs": 1e12, "copy_gbs": 100.0, "triad_gbs": 100.0
    }]);
    let absurd_level: Roofline = serde_json::from_value(level).unwrap();
    assert!(!absurd_level.is_plausible(), "a level at 1e12 GB/s");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Each measurement records what the compiled model held in activations at
/// its batch (what a freshly compiled executable holds after a run at that
/// batch), and a second run reads the same figures back from the cache.
#[test]
fn activation_memory_is_recorded_per_batch_and_cached() {
    use workbench_kernels::{compile, models, CompileOptions};
    let dir = std::env::temp_dir().join(format!("workbench-activations-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // A keyword-spotting DS-CNN: a conv and depthwise-separable blocks.
    let graph = models::ds_cnn_small(3).unwrap();
    let configs = [
        (BackendKind::Naive, Precision::F32),
        (BackendKind::Tiled, Precision::F32),
        (BackendKind::Quantized, Precision::Int8),
    ];
    let opts = options(&dir);
    let measure = || {
        workbench::measure::measure_model(&graph, &configs, &[1, 4], &opts, &mut |_| {}).unwrap()
    };
    let first = measure();
    let again = measure();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(first.measurements.len(), 6, "{:?}", first.skipped);
    for m in &first.measurements {
        let options = CompileOptions {
            precision: m.precision,
            ..CompileOptions::default()
        };
        let mut exe = compile(&graph, m.backend, &options).unwrap();
        exe.run(&models::reference_input(&graph, m.batch), m.batch)
            .unwrap();
        let held = exe.activation_bytes() as u64;
        assert_eq!(m.activation_bytes, Some(held), "{m:?}");
        let cached = again
            .measurements
            .iter()
            .find(|c| (c.backend, c.precision, c.batch) == (m.backend, m.precision, m.batch))
            .unwrap();
        assert!(cached.from_cache);
        assert_eq!(cached.activation_bytes, Some(held));
    }
    // The reference keeps every output, so its batch of 4 holds 4 times one
    // sample's; the compiled tiled model holds less.
    let bytes = |backend, batch| {
        (first.measurements.iter())
            .find(|m| m.backend == backend && m.batch == batch)
            .and_then(|m| m.activation_bytes)
            .unwrap()
    };
    assert_eq!(
        bytes(BackendKind::Naive, 4),
        4 * bytes(BackendKind::Naive, 1)
    );
    assert!(bytes(BackendKind::Tiled, 4) < bytes(BackendKind::Naive, 4));
}
