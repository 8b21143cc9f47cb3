//! Compiling is part of a measuring run: it is announced (start and finish,
//! with the time it took), estimated before it starts (a configuration whose
//! compile cannot fit what its batches may spend is skipped without being
//! built), charged to the budget (again when a later run reuses the
//! measurement), and the autotuner is told how long it may search. Reduced
//! measurements are timed again by a run whose budget fits a full one.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use workbench::hardware::roofline::Roofline;
use workbench::measure::harness::{HarnessConfig, Workload};
use workbench::measure::{
    cache_path, measure_jobs, KernelMeasurement, MeasureError, MeasureOptions, MeasureOutcome,
    MeasureProgress, MeasureSubject,
};
use workbench_kernels::{BackendKind, Precision};

fn spin(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// A cache directory of a test's own, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("wb-measure-compile-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn options(dir: &TempDir, budget: Duration) -> MeasureOptions {
    MeasureOptions {
        budget,
        fresh: false,
        quick: true,
        cache_dir: dir.0.clone(),
        harness: HarnessConfig {
            warmup: Duration::from_millis(1),
            min_sample: Duration::from_micros(200),
            max_samples: 20,
            max_remeasures: 0,
            ..HarnessConfig::default()
        },
        hardware_fingerprint: None,
        roofline: None,
        cancel: None,
    }
}

/// A machine of 100 GFLOP/s and 10 GB/s, when `roofline`.
fn subject(flops_per_sample: f64, weight_bytes: f64, roofline: bool) -> MeasureSubject {
    MeasureSubject {
        hardware_fingerprint: "0123456789abcdef".into(),
        graph_fingerprint: 99,
        workload: "compile-test".into(),
        flops_per_sample,
        weight_bytes,
        roofline: roofline.then(|| Roofline::flat("0123456789abcdef", 100.0, 400.0, 10.0)),
        rates: None,
        compile_rates: None,
    }
}

/// What the factory saw: the configurations built, with the compile time each was allowed.
#[derive(Default)]
struct Built {
    configs: Vec<(BackendKind, Duration)>,
    calls: u64,
}

/// Tiled "compiles" for `compile` (spinning), the others at once; every call takes 0.2 ms.
fn run(
    subject: &MeasureSubject,
    configs: &[(BackendKind, Precision)],
    batches: &[usize],
    opts: &MeasureOptions,
    compile: Duration,
    built: &RefCell<Built>,
    events: &mut Vec<MeasureProgress>,
) -> Result<MeasureOutcome, MeasureError> {
    let mut factory = |backend: BackendKind,
                       _p: Precision,
                       allowance: Duration|
     -> Result<Result<Box<dyn Workload + '_>, String>, MeasureError> {
        built.borrow_mut().configs.push((backend, allowance));
        if backend == BackendKind::Tiled {
            spin(compile);
        }
        let w = move |_batch: usize| -> Result<(), MeasureError> {
            built.borrow_mut().calls += 1;
            spin(Duration::from_micros(200));
            Ok(())
        };
        Ok(Ok(Box::new(w)))
    };
    measure_jobs(subject, configs, batches, opts, &mut factory, &mut |e| {
        events.push(e)
    })
}

const NAIVE_AND_TILED: [(BackendKind, Precision); 2] = [
    (BackendKind::Naive, Precision::F32),
    (BackendKind::Tiled, Precision::F32),
];

#[test]
fn each_compile_is_announced_charged_and_charged_again_from_the_cache() {
    let dir = TempDir::new("events");
    let opts = options(&dir, Duration::from_secs(2));
    let subject = subject(1e6, 1e6, false);
    let built = RefCell::new(Built::default());
    let mut events = Vec::new();
    let compile = Duration::from_millis(40);
    let first = run(
        &subject,
        &NAIVE_AND_TILED,
        &[1, 4],
        &opts,
        compile,
        &built,
        &mut events,
    )
    .unwrap();

    // Each configuration: compiling, compiled, then its batches; never a batch before.
    for backend in [BackendKind::Naive, BackendKind::Tiled] {
        let at = |want: &dyn Fn(&MeasureProgress) -> bool| events.iter().position(want);
        let compiling =
            at(&|e| matches!(e, MeasureProgress::Compiling { backend: b, .. } if *b == backend));
        let compiled =
            at(&|e| matches!(e, MeasureProgress::Compiled { backend: b, .. } if *b == backend));
        let started =
            at(&|e| matches!(e, MeasureProgress::Started { backend: b, .. } if *b == backend));
        let (Some(c), Some(d), Some(s)) = (compiling, compiled, started) else {
            panic!("{backend}: {events:?}");
        };
        assert!(c < d && d < s, "{backend}: {events:?}");
    }
    let tiled_compile = events
        .iter()
        .find_map(|e| match e {
            MeasureProgress::Compiled {
                backend: BackendKind::Tiled,
                elapsed,
                ..
            } => Some(*elapsed),
            _ => None,
        })
        .unwrap();
    assert!(tiled_compile >= compile, "{tiled_compile:?}");
    // The compile time is recorded on the first batch timed after it, and charged.
    let tiled: Vec<&KernelMeasurement> = first
        .measurements
        .iter()
        .filter(|m| m.backend == BackendKind::Tiled)
        .collect();
    assert!(tiled[0].compile_ms >= 40.0, "{:?}", tiled[0]);
    assert_eq!(tiled[1].compile_ms, 0.0);
    let timing: f64 = first.measurements.iter().map(|m| m.spent_ms).sum();
    assert!(
        first.budget_used.as_secs_f64() * 1e3 >= timing + 40.0,
        "{:?} for {timing} ms of timing",
        first.budget_used
    );

    // From the cache: nothing is compiled, and the same time is charged.
    let mut again = Vec::new();
    let second = run(
        &subject,
        &NAIVE_AND_TILED,
        &[1, 4],
        &opts,
        compile,
        &built,
        &mut again,
    )
    .unwrap();
    assert_eq!(built.borrow().configs.len(), 2, "nothing built again");
    assert!(!again
        .iter()
        .any(|e| matches!(e, MeasureProgress::Compiling { .. })));
    assert_eq!(second.budget_used, first.budget_used);
}

#[test]
fn a_compile_that_cannot_fit_is_skipped_unbuilt_and_a_fitting_one_is_told_its_time() {
    // 1 GB of weights (a pass over them takes 0.1 s) and 1 GFLOP a sample: the
    // autotuner's first trials alone (6 calls at batch 64) take 3.84 s at peak.
    let subject = subject(1e9, 1e9, true);
    let configs = [
        (BackendKind::Tiled, Precision::F32),
        (BackendKind::Autotuned, Precision::F32),
    ];
    let dir = TempDir::new("skip");
    let opts = MeasureOptions {
        fresh: true,
        ..options(&dir, Duration::from_secs(1))
    };
    let built = RefCell::new(Built::default());
    let mut events = Vec::new();
    let out = run(
        &subject,
        &configs,
        &[1],
        &opts,
        Duration::ZERO,
        &built,
        &mut events,
    )
    .unwrap();
    let backends: Vec<BackendKind> = built.borrow().configs.iter().map(|c| c.0).collect();
    assert_eq!(backends, vec![BackendKind::Tiled], "autotuned never built");
    assert_eq!(out.skipped.len(), 1, "{:?}", out.skipped);
    let skipped = &out.skipped[0];
    assert_eq!(skipped.backend, BackendKind::Autotuned);
    assert_eq!(skipped.batches, vec![1]);
    // The reason names both sides of the comparison: the compile, and what
    // the configuration's share leaves after its calls.
    for part in [
        "compiling it would take about 4.14 s",
        "3 passes over its 1.00 GB of weights at 10.0 GB/s",
        "autotuning",
        "it may take: 3x its ",
        " share of the budget for each of its 1 batch size(s) to go (",
        "for a warm-up call and ",
        " samples at batch 1",
    ] {
        assert!(
            skipped.reason.contains(part),
            "`{part}`: {}",
            skipped.reason
        );
    }
    assert!(events.iter().any(|e| matches!(
        e,
        MeasureProgress::Skipped {
            backend: BackendKind::Autotuned,
            ..
        }
    )));
    assert!(!events.iter().any(|e| matches!(
        e,
        MeasureProgress::Compiling {
            backend: BackendKind::Autotuned,
            ..
        }
    )));

    // With 10 s the autotuner is built, and told what its batch's share
    // leaves after its calls: about 3 x 10 s, less tiled's time and 4 calls of 0.1 s.
    let opts = MeasureOptions {
        fresh: true,
        ..options(&dir, Duration::from_secs(10))
    };
    let built = RefCell::new(Built::default());
    run(
        &subject,
        &configs,
        &[1],
        &opts,
        Duration::ZERO,
        &built,
        &mut Vec::new(),
    )
    .unwrap();
    let allowance = built
        .borrow()
        .configs
        .iter()
        .find(|c| c.0 == BackendKind::Autotuned)
        .map(|c| c.1)
        .unwrap();
    assert!(
        allowance > Duration::from_secs(25) && allowance <= Duration::from_millis(29_600),
        "{allowance:?}"
    );
}

/// Rewrites the cached entry of (tiled, f32, batch 1) with `edit`.
fn edit_entry(
    opts: &MeasureOptions,
    subject: &MeasureSubject,
    edit: impl Fn(&mut serde_json::Value),
) {
    let path = cache_path(opts, subject, BackendKind::Tiled, Precision::F32, 1);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    edit(&mut value);
    std::fs::write(&path, serde_json::to_string(&value).unwrap()).unwrap();
}

/// Sets every time of an entry's statistics to `ns` (a consistent entry: an
/// inconsistent one is corrupted, and timed again).
fn every_call_took(entry: &mut serde_json::Value, ns: f64) {
    for field in [
        "min_ns",
        "p25_ns",
        "median_ns",
        "mean_ns",
        "p75_ns",
        "p90_ns",
        "p99_ns",
        "max_ns",
    ] {
        entry["stats"][field] = ns.into();
    }
}

#[test]
fn a_reduced_measurement_is_timed_again_when_a_larger_budget_fits_a_full_one() {
    let dir = TempDir::new("reduced");
    let subject = subject(1e6, 1e6, false);
    let tiled = [(BackendKind::Tiled, Precision::F32)];
    let small = options(&dir, Duration::from_millis(500));
    let built = RefCell::new(Built::default());
    let timed_again = |opts: &MeasureOptions| -> bool {
        let before = built.borrow().calls;
        let out = run(
            &subject,
            &tiled,
            &[1],
            opts,
            Duration::ZERO,
            &built,
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!(out.measurements.len(), 1);
        let again = built.borrow().calls > before;
        assert_eq!(out.measurements[0].from_cache, !again);
        again
    };
    assert!(timed_again(&small), "the first run times it");
    assert!(!timed_again(&small), "then it is cached");
    // Say that run could only take a reduced measurement.
    edit_entry(&small, &subject, |v| v["reduced"] = true.into());
    // The same budget could not do better: reused.
    assert!(!timed_again(&small));
    // A larger budget whose share does not fit a full one either (11 calls of 1 s): reused.
    let larger = options(&dir, Duration::from_secs(2));
    edit_entry(&small, &subject, |v| every_call_took(v, 1e9));
    assert!(!timed_again(&larger));
    // A larger budget that fits one: timed again, and no longer reduced.
    edit_entry(&small, &subject, |v| every_call_took(v, 2e5));
    assert!(timed_again(&larger));
    let path = cache_path(&larger, &subject, BackendKind::Tiled, Precision::F32, 1);
    let entry: KernelMeasurement =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(!entry.reduced);
    assert_eq!(entry.budget_ms, 2000.0);
}

#[test]
fn cache_entries_written_before_compile_and_budget_were_recorded_still_load() {
    let dir = TempDir::new("old");
    let subject = subject(1e6, 1e6, false);
    let tiled = [(BackendKind::Tiled, Precision::F32)];
    let opts = options(&dir, Duration::from_millis(500));
    let built = RefCell::new(Built::default());
    run(
        &subject,
        &tiled,
        &[1],
        &opts,
        Duration::ZERO,
        &built,
        &mut Vec::new(),
    )
    .unwrap();
    edit_entry(&opts, &subject, |v| {
        let fields = v.as_object_mut().unwrap();
        for key in ["compile_ms", "budget_ms", "reduced", "spent_ms"] {
            assert!(fields.remove(key).is_some(), "{key}");
        }
    });
    let calls = built.borrow().calls;
    let out = run(
        &subject,
        &tiled,
        &[1],
        &opts,
        Duration::ZERO,
        &built,
        &mut Vec::new(),
    )
    .unwrap();
    assert_eq!(built.borrow().calls, calls, "served from the cache");
    assert!(out.measurements[0].from_cache);
    assert!(!out.measurements[0].reduced);
}

#[test]
fn compile_events_read_as_progress_and_only_slow_ones_as_log_lines() {
    let compiling = MeasureProgress::Compiling {
        backend: BackendKind::Quantized,
        precision: Precision::Int8,
    };
    assert_eq!(
        compiling.compile_text().as_deref(),
        Some("compiling quantized int8")
    );
    assert_eq!(compiling.slow_compile(), None);
    let compiled = |ms| MeasureProgress::Compiled {
        backend: BackendKind::Autotuned,
        precision: Precision::F32,
        elapsed: Duration::from_millis(ms),
    };
    assert_eq!(
        compiled(2_340).slow_compile().as_deref(),
        Some("compiled autotuned f32 in 2.34 s")
    );
    assert_eq!(
        compiled(120).compile_text().as_deref(),
        Some("compiled autotuned f32 in 120 ms")
    );
    assert_eq!(compiled(120).slow_compile(), None);
}

#[test]
fn the_autotuner_searches_each_shape_for_its_share_of_the_allowance_at_most() {
    use workbench::measure::model::autotuner_within;
    use workbench_kernels::backends::autotuned::gemm_shapes;
    let spec = workbench_kernels::ModelSpec::Mlp(workbench_kernels::MlpSpec {
        input: 24,
        hidden: vec![40, 40],
        output: 3,
        activation: workbench_kernels::Activation::Relu,
    });
    let graph = workbench_kernels::Graph::from_spec(&spec, 1).unwrap();
    let shapes = gemm_shapes(&graph, 64, workbench_kernels::simd::detect()).len();
    assert!(shapes >= 2, "{shapes}");
    let cut = autotuner_within(&graph, Duration::from_secs(3));
    let per_shape = cut.budget.max_seconds.unwrap();
    assert!(
        (per_shape - 3.0 / shapes as f64).abs() < 1e-9,
        "{per_shape}"
    );
    // A generous allowance leaves the default search alone.
    let default = workbench_kernels::backends::autotuned::AutotunedBackend::default();
    let roomy = autotuner_within(&graph, Duration::from_secs(3600));
    assert_eq!(roomy.budget, default.budget);
}

#[test]
fn reduced_kernel_figures_are_marked_in_the_markdown_and_optional_in_json() {
    use workbench::report::{self, fixtures::sample_report, markdown::REDUCED_MARK};
    let mut r = sample_report();
    let plain = report::markdown::markdown(&r);
    assert!(
        !plain.contains(REDUCED_MARK),
        "nothing reduced, nothing marked"
    );
    r.kernels[0].reduced = true;
    let marked = report::markdown::markdown(&r);
    let median = format!(
        "{} {REDUCED_MARK}",
        workbench::report::format::duration_ns(r.kernels[0].median_ns)
    );
    assert!(marked.contains(&median), "{marked}");
    assert!(marked.contains(&format!(
        "{REDUCED_MARK} Measured with fewer samples than usual"
    )));
    // JSON: the field appears only when set, and a row without it reads as not reduced.
    let row = serde_json::to_value(&r.kernels[1]).unwrap();
    assert!(row.get("reduced").is_none(), "{row}");
    let mut flagged = serde_json::to_value(&r.kernels[0]).unwrap();
    assert_eq!(flagged["reduced"], serde_json::Value::Bool(true));
    flagged.as_object_mut().unwrap().remove("reduced");
    let old: report::KernelMeasurement = serde_json::from_value(flagged).unwrap();
    assert!(!old.reduced);
}

/// The TUI's measuring view shows its stage line: while a configuration
/// compiles, the stage says which, then how long it took.
#[test]
fn the_tui_pipeline_reports_what_is_compiling_as_its_stage() {
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Mutex};
    use workbench::pipeline::PipelineOptions;
    use workbench::tui::{Pipeline, Progress, RealPipeline};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let cache = TempDir::new("tui");
    let pipeline = RealPipeline {
        options: PipelineOptions {
            quick: true,
            cache_dir: cache.0.clone(),
            ..PipelineOptions::default()
        },
    };
    let entries = pipeline.load_scenarios(&[root.join("scenarios/wake-word.toml")]);
    let stages = Mutex::new(Vec::new());
    let progress = |p: Progress| {
        if let Progress::Stage(s) = p {
            stages.lock().unwrap().push(s);
        }
    };
    let cancel = Arc::new(AtomicBool::new(false));
    pipeline.measure(&entries[0], &progress, &cancel).unwrap();
    let stages = stages.into_inner().unwrap();
    let compiling = stages
        .iter()
        .position(|s| s == "compiling tiled f32")
        .unwrap_or_else(|| panic!("{stages:?}"));
    assert!(
        stages[compiling + 1].starts_with("compiled tiled f32 in "),
        "{stages:?}"
    );
}

/// A compile far slower than its passes over the weights (fresh memory,
/// scalar conversions) teaches the estimate: the next run skips it when its
/// allowance is shorter than what it took.
#[test]
fn compile_times_learnt_on_this_machine_raise_the_estimate() {
    use workbench::measure::budget::{compile_time, load_compile_rates, CompileRates};
    let dir = TempDir::new("learn");
    let tiled = [(BackendKind::Tiled, Precision::F32)];
    // 100 MB of weights: 3 passes at 10 GB/s would be 30 ms; it takes at least 80.
    let mut learning = subject(1e6, 1e8, true);
    learning.compile_rates = Some(CompileRates::default());
    let opts = MeasureOptions {
        fresh: true,
        ..options(&dir, Duration::from_secs(5))
    };
    let built = RefCell::new(Built::default());
    let compile = Duration::from_millis(80);
    run(
        &learning,
        &tiled,
        &[1],
        &opts,
        compile,
        &built,
        &mut Vec::new(),
    )
    .unwrap();
    let rates = load_compile_rates(&dir.0, &learning.hardware_fingerprint);
    let rate = rates.get(BackendKind::Tiled, Precision::F32).unwrap();
    assert!(rate * 1e8 >= 80e6, "{rates:?}");
    // Small models and the autotuner teach nothing.
    let mut small = CompileRates::default();
    assert!(!small.learn(BackendKind::Tiled, Precision::F32, 1e6, 1e9));
    assert!(!small.learn(BackendKind::Autotuned, Precision::F32, 1e9, 1e9));

    let mut taught = subject(1e6, 1e8, true);
    taught.compile_rates = Some(rates);
    let estimate = compile_time(&taught, BackendKind::Tiled, Precision::F32).unwrap();
    assert!(estimate.call_ns >= 80e6, "{estimate:?}");
    assert!(
        estimate.basis.contains("per GB of weights on this machine"),
        "{estimate:?}"
    );
    // 20 ms of budget: 60 ms for its one job, 10 ms of which its call: the compile does not fit.
    let opts = MeasureOptions {
        fresh: true,
        ..options(&dir, Duration::from_millis(20))
    };
    let built = RefCell::new(Built::default());
    let out = run(
        &taught,
        &tiled,
        &[1],
        &opts,
        compile,
        &built,
        &mut Vec::new(),
    )
    .unwrap();
    assert!(built.borrow().configs.is_empty(), "not built");
    assert_eq!(out.skipped.len(), 1);
    assert!(
        out.skipped[0]
            .reason
            .contains("compiling it would take about"),
        "{:?}",
        out.skipped
    );
    // Untaught, the same run compiles it (the passes alone fit).
    let built = RefCell::new(Built::default());
    let untaught = subject(1e6, 1e8, true);
    run(
        &untaught,
        &tiled,
        &[1],
        &opts,
        Duration::ZERO,
        &built,
        &mut Vec::new(),
    )
    .unwrap();
    assert_eq!(built.borrow().configs.len(), 1);
}

/// A workload from an autotuner whose search its compile allowance cut short.
struct Tuned<'a> {
    built: &'a RefCell<Built>,
    cut_short: bool,
}

impl Workload for Tuned<'_> {
    fn run(&mut self, _batch: usize) -> Result<(), MeasureError> {
        self.built.borrow_mut().calls += 1;
        spin(Duration::from_micros(200));
        Ok(())
    }

    fn tuning_cut_short(&self) -> bool {
        self.cut_short
    }
}

/// A measurement whose autotuning was cut short is recorded so, and timed
/// again (compiled again: the search resumes) by a run with a larger budget;
/// once tuned in full it stays cached.
#[test]
fn a_cut_short_autotuning_is_compiled_and_timed_again_with_a_larger_budget() {
    let dir = TempDir::new("cut-tuning");
    let subject = subject(1e6, 1e6, false);
    let autotuned = [(BackendKind::Autotuned, Precision::F32)];
    let built = RefCell::new(Built::default());
    // The search finishes when allowed 10 s of compiling (a first job may
    // take its budget times the overrun).
    let measure = |opts: &MeasureOptions| -> KernelMeasurement {
        let mut factory = |backend: BackendKind,
                           _p: Precision,
                           allowance: Duration|
         -> Result<Result<Box<dyn Workload + '_>, String>, MeasureError> {
            built.borrow_mut().configs.push((backend, allowance));
            Ok(Ok(Box::new(Tuned {
                built: &built,
                cut_short: allowance < Duration::from_secs(10),
            })))
        };
        let mut out =
            measure_jobs(&subject, &autotuned, &[1], opts, &mut factory, &mut |_| {}).unwrap();
        out.measurements.remove(0)
    };
    let compiles = || built.borrow().configs.len();

    let small = options(&dir, Duration::from_millis(500));
    let first = measure(&small);
    assert!(first.tuning_cut_short && !first.from_cache, "{first:?}");
    // The same budget would be cut again: reused.
    assert!(measure(&small).from_cache);
    assert_eq!(compiles(), 1);
    // A larger one compiles again and, tuned in full, is no longer provisional.
    let larger = options(&dir, Duration::from_secs(20));
    let again = measure(&larger);
    assert!(!again.from_cache && !again.tuning_cut_short, "{again:?}");
    assert_eq!(compiles(), 2);
    // Then it stays cached, even for a still larger budget.
    assert!(measure(&options(&dir, Duration::from_secs(40))).from_cache);
    assert_eq!(compiles(), 2);
}
