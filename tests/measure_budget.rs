//! A measuring run stays near its budget: a configuration whose calls cannot
//! fit its share is not started (its larger batches are reported as not
//! measured, with the estimate), and a model nothing of which can be measured
//! is refused with the figures rather than timed for minutes.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use workbench::hardware::roofline::Roofline;
use workbench::measure::budget::{BackendRates, RatePoint};
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

/// Options with a cache directory of their own (see [`Cleanup`]).
fn options(tag: &str, budget: Duration) -> MeasureOptions {
    let dir = std::env::temp_dir().join(format!("wb-measure-budget-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    MeasureOptions {
        budget,
        fresh: true,
        quick: true,
        cache_dir: dir,
        harness: HarnessConfig {
            warmup: Duration::from_millis(1),
            max_samples: 20,
            max_remeasures: 0,
            ..HarnessConfig::default()
        },
        hardware_fingerprint: None,
        roofline: None,
        cancel: None,
    }
}

/// Removes a test's cache directory when dropped.
struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A machine of 100 GFLOP/s and 10 GB/s, on which naive runs 0.1 GFLOP/s.
fn subject(flops_per_sample: f64, weight_bytes: f64) -> MeasureSubject {
    MeasureSubject {
        hardware_fingerprint: "0123456789abcdef".into(),
        graph_fingerprint: 42,
        workload: "big-mlp".into(),
        flops_per_sample,
        weight_bytes,
        roofline: Some(Roofline::flat("0123456789abcdef", 100.0, 400.0, 10.0)),
        rates: Some(BackendRates {
            points: vec![RatePoint {
                backend: BackendKind::Naive,
                weight_bytes: 1e6,
                gflops: 0.1,
            }],
        }),
        compile_rates: None,
    }
}

const BOTH: [(BackendKind, Precision); 2] = [
    (BackendKind::Naive, Precision::F32),
    (BackendKind::Tiled, Precision::F32),
];

/// The duration (`1.30 s`, `112 ms`, `789 µs`, `12 ns`) that follows `prefix` in `text`, in ns.
fn figure_after(text: &str, prefix: &str) -> f64 {
    let start = text
        .find(prefix)
        .unwrap_or_else(|| panic!("`{prefix}` missing from: {text}"))
        + prefix.len();
    let mut words = text[start..].split_whitespace();
    let value: f64 = words
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no figure after `{prefix}`: {text}"));
    let unit = words.next().unwrap_or_default();
    let scale = match unit.trim_end_matches([',', ')', ';']) {
        "s" => 1e9,
        "ms" => 1e6,
        "µs" => 1e3,
        "ns" => 1.0,
        other => panic!("unit `{other}` after `{prefix}`: {text}"),
    };
    value * scale
}

/// Calls by (backend, batch), and how many workloads were built.
#[derive(Default)]
struct Counts {
    calls: BTreeMap<(BackendKind, usize), u64>,
    built: u64,
}

/// Naive takes 20 ms per sample (as its 0.1 GFLOP/s predicts for 2 MFLOP);
/// tiled 0.2 ms per call whatever the batch.
fn run(
    subject: &MeasureSubject,
    configs: &[(BackendKind, Precision)],
    opts: &MeasureOptions,
    counts: &RefCell<Counts>,
    events: &mut Vec<MeasureProgress>,
) -> Result<workbench::measure::MeasureOutcome, MeasureError> {
    let mut factory = |backend: BackendKind,
                       _p: Precision,
                       _allowance: Duration|
     -> Result<Result<Box<dyn Workload + '_>, String>, MeasureError> {
        counts.borrow_mut().built += 1;
        let w = move |batch: usize| -> Result<(), MeasureError> {
            *counts
                .borrow_mut()
                .calls
                .entry((backend, batch))
                .or_default() += 1;
            spin(match backend {
                BackendKind::Naive => Duration::from_millis(20 * batch as u64),
                _ => Duration::from_micros(200),
            });
            Ok(())
        };
        Ok(Ok(Box::new(w)))
    };
    measure_jobs(
        subject,
        configs,
        &[1, 16, 64],
        opts,
        &mut factory,
        &mut |e| events.push(e),
    )
}

#[test]
fn naive_is_not_started_at_batches_whose_calls_cannot_fit_the_budget() {
    // 2 MFLOP per sample: naive takes 20 ms a sample, so 0.32 s a call at batch 16
    // and 1.3 s at 64, against a 0.6 s budget for six jobs.
    let subject = subject(2e6, 1e6);
    let opts = options("naive", Duration::from_millis(600));
    let _cleanup = Cleanup(opts.cache_dir.clone());
    let counts = RefCell::new(Counts::default());
    let mut events = Vec::new();
    let started = Instant::now();
    let out = run(&subject, &BOTH, &opts, &counts, &mut events).unwrap();
    let counts = counts.into_inner();

    // The estimate decided it: naive never ran at batch 16 or 64.
    assert_eq!(
        counts.calls.get(&(BackendKind::Naive, 16)),
        None,
        "{:?}",
        counts.calls
    );
    assert_eq!(
        counts.calls.get(&(BackendKind::Naive, 64)),
        None,
        "{:?}",
        counts.calls
    );
    let skipped: Vec<_> = out
        .skipped
        .iter()
        .filter(|s| s.backend == BackendKind::Naive)
        .collect();
    assert_eq!(skipped.len(), 1, "{:?}", out.skipped);
    assert_eq!(skipped[0].batches, vec![16, 64]);
    let reason = &skipped[0].reason;
    assert!(
        // The figures follow batch 1's median, which a loaded machine stretches.
        reason.contains("one call at batch 16 would take about")
            && reason.contains("batch 1 took")
            && reason.contains("naive's time grows with the batch")
            && reason.contains("share of the budget"),
        "{reason}"
    );
    // The sentence states what was compared, and its figures agree with the
    // refusal: a warm-up call and the reduced samples, more than 3x the share.
    let samples = opts.harness.reduced_samples;
    let needed = figure_after(
        reason,
        &format!("a warm-up call and {samples} samples would take about "),
    );
    let share = figure_after(reason, "more than 3x its ");
    let allowed = figure_after(reason, "share of the budget (");
    assert!(needed > allowed, "{needed} <= {allowed}: {reason}");
    assert!((allowed / share - 3.0).abs() < 0.05, "{reason}");
    assert!(events.iter().any(|e| matches!(
        e,
        MeasureProgress::Skipped { backend: BackendKind::Naive, batches, .. } if batches == &[16, 64]
    )));

    // What fits is measured: naive at batch 1, tiled at every batch, in the order given.
    let got: Vec<(BackendKind, usize)> = out
        .measurements
        .iter()
        .map(|m| (m.backend, m.batch))
        .collect();
    assert_eq!(
        got,
        vec![
            (BackendKind::Naive, 1),
            (BackendKind::Tiled, 1),
            (BackendKind::Tiled, 16),
            (BackendKind::Tiled, 64),
        ]
    );
    // One compiled workload per configuration.
    assert_eq!(counts.built, 2);
    // Not a timing assertion on the result, only a guard against a runaway:
    // the old harness took 10 samples of each batch (about 10 s here).
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_call_slower_than_its_share_is_measured_with_fewer_samples_and_flagged() {
    // Naive alone: 20 ms a call at batch 1 with a 40 ms budget for three
    // batch sizes. Whatever it gets, it is not ten samples, and it says so.
    let subject = subject(2e6, 1e6);
    let opts = options("reduced", Duration::from_millis(40));
    let _cleanup = Cleanup(opts.cache_dir.clone());
    let counts = RefCell::new(Counts::default());
    let naive_only = [(BackendKind::Naive, Precision::F32)];
    let out = run(&subject, &naive_only, &opts, &counts, &mut Vec::new()).unwrap();
    let naive = out
        .measurements
        .iter()
        .find(|m| m.backend == BackendKind::Naive && m.batch == 1)
        .expect("naive at batch 1 is the first job: it may use the whole budget");
    assert!(naive.reduced, "{naive:?}");
    assert!(naive.stats.samples < 10, "{naive:?}");
    let calls = counts.borrow().calls.get(&(BackendKind::Naive, 1)).copied();
    assert!(calls.is_some_and(|c| c < 10), "{calls:?}");
}

#[test]
fn a_model_nothing_of_which_fits_is_refused_without_building_anything() {
    // 10 GFLOP per sample and 40 GB of weights: at least 4 s a call on this
    // machine, against a budget of 100 ms.
    let subject = subject(1e10, 4e10);
    let opts = options("refused", Duration::from_millis(100));
    let _cleanup = Cleanup(opts.cache_dir.clone());
    let counts = RefCell::new(Counts::default());
    let err = run(&subject, &BOTH, &opts, &counts, &mut Vec::new()).unwrap_err();
    assert_eq!(counts.borrow().built, 0, "nothing is compiled");
    assert!(counts.borrow().calls.is_empty());
    let MeasureError::OverBudget(details) = &err else {
        panic!("{err:?}");
    };
    assert_eq!(details.backend, BackendKind::Tiled);
    let text = err.to_string();
    for part in [
        "`big-mlp` cannot be measured within its budget",
        "10.0 G FLOPs per sample",
        "about 4.00 s",
        "40.0 GB of weights",
        "100 ms",
        "smaller model",
        "larger measurement budget",
    ] {
        assert!(text.contains(part), "`{part}` missing from: {text}");
    }
}

#[test]
fn a_rerun_on_the_same_cache_and_budget_makes_the_same_decisions() {
    // A 1 s budget: naive at batch 16 (0.32 s a call, 1.3 s for a reduced
    // measurement) does not fit what the first run has left. The second run
    // times nothing, yet charges the cached measurements their time again: it
    // skips the same jobs instead of spending the budget they no longer need.
    let subject = subject(2e6, 1e6);
    let opts = MeasureOptions {
        fresh: false,
        ..options("rerun", Duration::from_millis(1000))
    };
    let _cleanup = Cleanup(opts.cache_dir.clone());
    let counts = RefCell::new(Counts::default());
    let first = run(&subject, &BOTH, &opts, &counts, &mut Vec::new()).unwrap();
    let calls_after_first: u64 = counts.borrow().calls.values().sum();
    let second = run(&subject, &BOTH, &opts, &counts, &mut Vec::new()).unwrap();
    assert_eq!(
        counts.borrow().calls.values().sum::<u64>(),
        calls_after_first,
        "the second run times nothing"
    );
    assert_eq!(counts.borrow().calls.get(&(BackendKind::Naive, 16)), None);
    let skipped = |o: &workbench::measure::MeasureOutcome| -> Vec<(BackendKind, Vec<usize>)> {
        o.skipped
            .iter()
            .map(|s| (s.backend, s.batches.clone()))
            .collect()
    };
    assert_eq!(skipped(&first), vec![(BackendKind::Naive, vec![16, 64])]);
    assert_eq!(skipped(&second), skipped(&first));
    assert!(second.measurements.iter().all(|m| m.from_cache));
    assert_eq!(second.budget_used, first.budget_used);
}

#[test]
fn an_int8_compile_whose_calibration_cannot_fit_is_skipped_unbuilt() {
    // 20 GFLOP per sample, 1 MB of weights: the int8 call is the cheapest
    // (50 ms at the 400 G ops/s int8 peak), but its compile runs the f32
    // model on 16 calibration samples, 320 GFLOP: seconds at any f32 rate
    // the roofline allows (one core of 100 GFLOP/s).
    let opts = options("calibration", Duration::from_secs(1));
    let _cleanup = Cleanup(opts.cache_dir.clone());
    let s = subject(20e9, 1e6);
    let configs = [
        (BackendKind::Quantized, Precision::Int8),
        (BackendKind::Quantized, Precision::F16),
    ];
    let built = RefCell::new(Vec::new());
    let mut factory = |backend: BackendKind,
                       precision: Precision,
                       _allowance: Duration|
     -> Result<Result<Box<dyn Workload + '_>, String>, MeasureError> {
        built.borrow_mut().push((backend, precision));
        let w = |_batch: usize| -> Result<(), MeasureError> {
            spin(Duration::from_micros(200));
            Ok(())
        };
        Ok(Ok(Box::new(w)))
    };
    let mut events = Vec::new();
    let out = measure_jobs(&s, &configs, &[1], &opts, &mut factory, &mut |e| {
        events.push(e)
    })
    .unwrap();
    assert_eq!(
        *built.borrow(),
        vec![(BackendKind::Quantized, Precision::F16)],
        "int8 is not compiled: {events:?}"
    );
    let skipped = out
        .skipped
        .iter()
        .find(|k| k.precision == Precision::Int8)
        .unwrap_or_else(|| panic!("int8 skipped: {out:?}"));
    assert!(
        skipped.reason.contains("compiling it would take about")
            && skipped
                .reason
                .contains("int8 calibration: the f32 model on 16 samples"),
        "{}",
        skipped.reason
    );
    // 320 GFLOP at half the 100 GFLOP/s peak.
    let compile_ns = figure_after(&skipped.reason, "compiling it would take about");
    assert!((6.3e9..6.5e9).contains(&compile_ns), "{}", skipped.reason);
    assert_eq!(out.measurements.len(), 1);
    assert_eq!(out.measurements[0].precision, Precision::F16);
}
