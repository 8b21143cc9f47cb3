//! A job is timed in two windows, the second after every job's first, and
//! keeps the quieter one: a host whose load moves for seconds at a time can
//! slow one window throughout, and the comparison between configurations
//! must not rest on which of them ran in that stretch.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use workbench::hardware::roofline::Roofline;
use workbench::measure::harness::{HarnessConfig, Workload};
use workbench::measure::{
    measure_jobs, KernelMeasurement, MeasureError, MeasureOptions, MeasureProgress, MeasureSubject,
};
use workbench_kernels::{BackendKind, Precision};

fn spin(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// Removes a test's cache directory when dropped.
struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn options(tag: &str, budget: Duration, windows: usize) -> (MeasureOptions, Cleanup) {
    let dir = std::env::temp_dir().join(format!("wb-measure-windows-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let opts = MeasureOptions {
        budget,
        fresh: true,
        quick: true,
        cache_dir: dir.clone(),
        harness: HarnessConfig {
            warmup: Duration::from_millis(1),
            max_samples: 20,
            max_remeasures: 0,
            windows,
            ..HarnessConfig::default()
        },
        hardware_fingerprint: None,
        roofline: None,
        cancel: None,
    };
    (opts, Cleanup(dir))
}

/// A small model (1 MFLOP a sample) on a 100 GFLOP/s roofline, so that every
/// job's estimate says its samples fit half its share.
fn subject(weight_bytes: f64) -> MeasureSubject {
    MeasureSubject {
        hardware_fingerprint: "0123456789abcdef".into(),
        graph_fingerprint: 7,
        workload: "small-mlp".into(),
        flops_per_sample: 1e6,
        weight_bytes,
        roofline: Some(Roofline::flat("0123456789abcdef", 100.0, 400.0, 10.0)),
        rates: None,
        compile_rates: None,
    }
}

const CONFIGS: [(BackendKind, Precision); 2] = [
    (BackendKind::Tiled, Precision::F32),
    (BackendKind::Quantized, Precision::Int8),
];

/// What the workloads saw: how many were built and finished, and whether
/// the second windows have started.
#[derive(Default)]
struct Seen {
    built: Cell<u32>,
    finished: Cell<u32>,
    second_windows: Cell<bool>,
}

/// A workload that takes 200 us a call; when `busy`, twice that until the
/// second windows start: a host busy while every configuration's first
/// window is timed and quiet for the second ones, however many calls the
/// harness makes a window (it sizes them by time, which a loaded test
/// machine stretches).
struct Busy<'a> {
    busy: bool,
    seen: &'a Seen,
}

impl Workload for Busy<'_> {
    fn run(&mut self, _batch: usize) -> Result<(), MeasureError> {
        let slow = self.busy && !self.seen.second_windows.get();
        spin(Duration::from_micros(if slow { 400 } else { 200 }));
        Ok(())
    }

    fn finish(&mut self) -> Result<(), MeasureError> {
        self.seen.finished.set(self.seen.finished.get() + 1);
        Ok(())
    }
}

/// Both configurations at batch 1 within `budget`; when `busy`, every first
/// window is slow throughout and every second one quiet (see [`Busy`]).
fn run(
    opts: &MeasureOptions,
    subject: &MeasureSubject,
    busy: bool,
    seen: &Seen,
) -> (Vec<KernelMeasurement>, Vec<MeasureProgress>, Duration) {
    let mut factory = |_b: BackendKind,
                       _p: Precision,
                       _allowance: Duration|
     -> Result<Result<Box<dyn Workload + '_>, String>, MeasureError> {
        seen.built.set(seen.built.get() + 1);
        Ok(Ok(Box::new(Busy { busy, seen })))
    };
    let events = RefCell::new(Vec::new());
    let outcome = measure_jobs(subject, &CONFIGS, &[1], opts, &mut factory, &mut |e| {
        if matches!(e, MeasureProgress::SecondWindow { .. }) {
            seen.second_windows.set(true);
        }
        events.borrow_mut().push(e)
    })
    .expect("measured");
    (
        outcome.measurements,
        events.into_inner(),
        outcome.budget_used,
    )
}

#[test]
fn a_window_slowed_throughout_is_replaced_by_the_quieter_second_one() {
    let (opts, _cleanup) = options("quieter", Duration::from_millis(800), 2);
    let seen = Seen::default();
    let (measured, events, used) = run(&opts, &subject(1e6), true, &seen);
    let first = &measured[0];
    assert_eq!(first.backend, BackendKind::Tiled);
    assert_eq!(first.windows(), 2, "{first:?}");
    // The busy window's calls took twice as long; the kept figure is the quiet one.
    assert!(first.stats.median_ns < 300_000.0, "{first:?}");
    let busy_median = first
        .other_window_median_ns()
        .expect("the other window's median");
    assert!(busy_median > 300_000.0, "{first:?}");
    // Both windows' time is charged, and the run stays near its budget.
    assert!(first.spent_ms >= 30.0, "{first:?}");
    assert!(used <= opts.budget.mul_f64(1.5), "{used:?}");
    // Each configuration compiled once, kept for its second window, finished once.
    assert_eq!((seen.built.get(), seen.finished.get()), (2, 2));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, MeasureProgress::SecondWindow { index: 1, .. })),
        "{events:?}"
    );
    // The figure kept is the one cached.
    let cached: KernelMeasurement = serde_json::from_str(
        &std::fs::read_to_string(workbench::measure::cache_path(
            &opts,
            &subject(1e6),
            BackendKind::Tiled,
            Precision::F32,
            1,
        ))
        .expect("cache entry"),
    )
    .expect("json");
    assert_eq!(cached.stats.median_ns, first.stats.median_ns);
    assert_eq!(cached.windows(), 2);
}

#[test]
fn one_window_keeps_the_busy_figure() {
    // The same run with one window: what the second window is there to fix.
    let (opts, _cleanup) = options("one", Duration::from_millis(800), 1);
    let seen = Seen::default();
    let (measured, events, _) = run(&opts, &subject(1e6), true, &seen);
    let first = &measured[0];
    assert_eq!(first.windows(), 1);
    assert!(first.stats.median_ns > 300_000.0, "{first:?}");
    assert!(first.other_window_median_ns().is_none());
    assert!(!events
        .iter()
        .any(|e| matches!(e, MeasureProgress::SecondWindow { .. })));
}

#[test]
fn a_large_model_is_not_kept_compiled_for_a_second_window() {
    // 1 GB of weights per configuration: each is dropped after its first
    // window, before the next one is compiled, as with one window.
    let (opts, _cleanup) = options("large", Duration::from_millis(400), 2);
    let seen = Seen::default();
    let (measured, events, _) = run(&opts, &subject(1e9), false, &seen);
    assert!(measured.iter().all(|m| m.windows() == 1), "{measured:?}");
    assert_eq!((seen.built.get(), seen.finished.get()), (2, 2));
    assert!(!events
        .iter()
        .any(|e| matches!(e, MeasureProgress::SecondWindow { .. })));
}

#[test]
fn a_rerun_from_the_cache_sees_the_first_windows_figures_as_the_timed_run_did() {
    // The timed run estimated each next batch from a job's first window (its
    // second came later); a rerun must too, or it can refuse or start other
    // jobs than the run it replays.
    let (mut opts, _cleanup) = options("rerun", Duration::from_millis(800), 2);
    let seen = Seen::default();
    let finished = |events: &[MeasureProgress]| -> Vec<f64> {
        events
            .iter()
            .filter_map(|e| match e {
                MeasureProgress::Finished { median_ns, .. } => Some(*median_ns),
                _ => None,
            })
            .collect()
    };
    let (measured, timed, _) = run(&opts, &subject(1e6), true, &seen);
    opts.fresh = false;
    let (cached, replayed, _) = run(&opts, &subject(1e6), true, &seen);
    assert!(cached.iter().all(|m| m.from_cache), "{cached:?}");
    // The busy first window is what both runs report as each job finishes...
    assert!(finished(&timed)[0] > 300_000.0, "{timed:?}");
    assert_eq!(finished(&timed), finished(&replayed));
    // ...while the figure kept, in both, is the quiet one.
    assert_eq!(measured[0].stats.median_ns, cached[0].stats.median_ns);
    assert!(cached[0].stats.median_ns < 300_000.0, "{cached:?}");
}
