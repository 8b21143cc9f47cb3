//! Keeping a measuring run within its budget: how long one call of a
//! (backend, precision, batch) will take, estimated before it is made, so
//! that a configuration which cannot fit its share of the budget is not started.
//!
//! Estimates come from the same configuration timed at a smaller batch when
//! there is one; otherwise from the model's FLOPs and weight bytes, with this
//! machine's roofline for the blocked backends (tiled, autotuned, quantized:
//! a lower bound) and, for the per-sample backends (naive, fused: their time
//! grows with the batch and depends on the weights' layout, far below the
//! roofline), rates measured on two probe layers.

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use workbench_kernels::backends::quantized::QuantizedBackend;
use workbench_kernels::{compile, models, BackendKind, CompileOptions, Precision};

use super::{cache, MeasureError, MeasureSubject};
use crate::hardware::roofline::{Roofline, MAX_PLAUSIBLE_GIGA_PER_S};

/// Probe layers (k x n dense, one row per sample): one whose weights fit in the
/// caches and one whose 16 MB of rows, 4 kB apart, miss them and the TLB, as a
/// large model's do.
const PROBE_LAYERS: [(usize, usize); 2] = [(512, 512), (4096, 1024)];
/// Timed calls per probe (the fastest counts), after one warm-up call.
const PROBE_CALLS: usize = 3;
/// How far below this machine's peak a per-sample backend may run when no
/// probe was taken: slower than any model measured here (naive reached 1/730).
const PER_SAMPLE_WORST_FRACTION_OF_PEAK: f64 = 1.0 / 2000.0;

/// Naive and fused run each sample through their loops on its own, so a call's
/// time is proportional to the batch; the others block over the batch.
pub fn per_sample(backend: BackendKind) -> bool {
    matches!(backend, BackendKind::Naive | BackendKind::Fused)
}

/// GFLOP/s of a per-sample backend on one probe layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatePoint {
    pub backend: BackendKind,
    /// f32 weight bytes of the probe layer.
    pub weight_bytes: f64,
    pub gflops: f64,
}

/// Rates of the per-sample backends on this machine, measured on probe layers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BackendRates {
    pub points: Vec<RatePoint>,
}

impl BackendRates {
    /// Whether every probe point could have been timed: its weights and rate
    /// finite and above zero, the rate at most [`MAX_PLAUSIBLE_GIGA_PER_S`].
    pub fn is_plausible(&self) -> bool {
        self.points.iter().all(|p| {
            p.weight_bytes.is_finite()
                && p.weight_bytes > 0.0
                && p.gflops.is_finite()
                && p.gflops > 0.0
                && p.gflops <= MAX_PLAUSIBLE_GIGA_PER_S
        })
    }

    /// GFLOP/s of `backend` on a model with `weight_bytes` of f32 weights:
    /// interpolated between the probes on a log scale of the weights, and the
    /// nearest probe's rate outside them.
    pub fn gflops(&self, backend: BackendKind, weight_bytes: f64) -> Option<f64> {
        let mut pts: Vec<&RatePoint> = self
            .points
            .iter()
            .filter(|p| p.backend == backend && p.gflops > 0.0 && p.weight_bytes > 0.0)
            .collect();
        pts.sort_by(|a, b| a.weight_bytes.total_cmp(&b.weight_bytes));
        let (first, last) = (pts.first()?, pts.last()?);
        if weight_bytes <= first.weight_bytes {
            return Some(first.gflops);
        }
        if weight_bytes >= last.weight_bytes {
            return Some(last.gflops);
        }
        let seg = pts.windows(2).find(|w| weight_bytes <= w[1].weight_bytes)?;
        let (a, b) = (seg[0], seg[1]);
        let t =
            (weight_bytes.ln() - a.weight_bytes.ln()) / (b.weight_bytes.ln() - a.weight_bytes.ln());
        Some((a.gflops.ln() + t * (b.gflops.ln() - a.gflops.ln())).exp())
    }
}

/// Cache file of the probe rates: per machine, kernel build and SIMD level in force.
fn rates_path(cache_dir: &Path, hardware_fingerprint: &str) -> std::path::PathBuf {
    cache_dir.join("measure").join(format!(
        "rates-{hardware_fingerprint}-k{}-{}.json",
        workbench_kernels::SOURCE_ID,
        workbench_kernels::simd::detect().name()
    ))
}

/// The per-sample backends' rates on this machine: from the cache, else timed
/// on the probe layers (a fraction of a second in a release build) and cached.
pub fn probe_rates(
    cache_dir: &Path,
    hardware_fingerprint: &str,
    fresh: bool,
) -> Result<BackendRates, MeasureError> {
    let path = rates_path(cache_dir, hardware_fingerprint);
    if !fresh {
        // A corrupted entry (a zero or absurd rate) is probed again, as garbage JSON is.
        if let Some(r) = cache::read_json::<BackendRates>(&path).filter(BackendRates::is_plausible)
        {
            return Ok(r);
        }
    }
    let workload_err = |e: workbench_kernels::KernelError| MeasureError::Workload(e.to_string());
    let mut rates = BackendRates::default();
    for (k, n) in PROBE_LAYERS {
        let graph = models::sgemm_graph(1, k, n, 0x5EED).map_err(workload_err)?;
        let input = models::reference_input(&graph, 1);
        for backend in [BackendKind::Naive, BackendKind::Fused] {
            let copts = CompileOptions {
                precision: Precision::F32,
                threads: 1,
                ..CompileOptions::default()
            };
            // A backend missing from this build has no rate: its configurations go unestimated.
            let Ok(mut exe) = compile(&graph, backend, &copts) else {
                continue;
            };
            exe.run(&input, 1).map_err(workload_err)?;
            let mut fastest = f64::INFINITY;
            for _ in 0..PROBE_CALLS {
                let t = Instant::now();
                std::hint::black_box(exe.run(&input, 1).map_err(workload_err)?);
                fastest = fastest.min(t.elapsed().as_nanos() as f64);
            }
            rates.points.push(RatePoint {
                backend,
                weight_bytes: (k * n * 4) as f64,
                gflops: graph.flops_per_sample() / fastest.max(1.0),
            });
        }
    }
    cache::write_json_atomic(&path, &rates)?;
    Ok(rates)
}

/// Whether the probe rates are worth taking for `subject`: only when `calls`
/// of a per-sample backend, at a rate slower than any seen here, might not fit
/// a quarter of `allowance_ns` (shares shrink as a run goes on). Without the
/// probe, such a backend's first call is estimated at that slowest rate.
pub fn rates_needed(subject: &MeasureSubject, batch: usize, calls: f64, allowance_ns: f64) -> bool {
    let Some(peak) = subject.roofline.as_ref().map(|r| r.peak_gflops_f32) else {
        return false;
    };
    let worst = peak * PER_SAMPLE_WORST_FRACTION_OF_PEAK;
    worst > 0.0 && subject.flops_per_sample * batch as f64 / worst * calls * 4.0 > allowance_ns
}

/// An estimate of one call, and what it rests on (for messages).
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub call_ns: f64,
    pub basis: String,
}

/// One call of a configuration nothing was timed of yet. `None` when there is
/// nothing to go on (no roofline).
pub fn first_call(
    subject: &MeasureSubject,
    backend: BackendKind,
    precision: Precision,
    batch: usize,
) -> Option<Estimate> {
    let roofline = subject.roofline.as_ref()?;
    let flops = subject.flops_per_sample * batch as f64;
    if per_sample(backend) {
        let (gflops, source) = match subject
            .rates
            .as_ref()
            .and_then(|r| r.gflops(backend, subject.weight_bytes))
        {
            Some(g) => (g, "on probe layers"),
            None => (
                roofline.peak_gflops_f32 * PER_SAMPLE_WORST_FRACTION_OF_PEAK,
                "the slowest rate assumed",
            ),
        };
        if gflops <= 0.0 {
            return None;
        }
        return Some(Estimate {
            call_ns: flops / gflops,
            basis: format!(
                "{} FLOPs at {backend}'s {} GFLOP/s, {source}",
                count(flops),
                sig(gflops)
            ),
        });
    }
    let peak = roofline.compute_peak(precision);
    let weights = subject.weight_bytes * precision.weight_bytes() as f64 / 4.0;
    let compute_ns = if peak > 0.0 { flops / peak } else { 0.0 };
    // Weights are only read: the faster of the read and copy figures keeps this a lower bound.
    let dram_gbs = roofline
        .bandwidth
        .iter()
        .filter(|b| b.level == "DRAM")
        .map(|b| b.read_gbs)
        .fold(roofline.dram_gbs, f64::max);
    let memory_ns = if dram_gbs > 0.0 {
        weights / dram_gbs
    } else {
        0.0
    };
    if compute_ns <= 0.0 && memory_ns <= 0.0 {
        return None;
    }
    let basis = if memory_ns >= compute_ns {
        format!(
            "at least its {} of weights at this machine's {} GB/s",
            bytes(weights),
            sig(dram_gbs)
        )
    } else {
        format!("at least {}", at_peak(flops, roofline, precision))
    };
    Some(Estimate {
        call_ns: compute_ns.max(memory_ns),
        basis,
    })
}

/// Models with fewer f32 weight bytes than this do not teach compile rates:
/// their compiles are too short to time well.
pub const COMPILE_RATE_MIN_BYTES: f64 = 64e6;

/// How long compiling took here per f32 weight byte, by configuration
/// (`tiled-f32`), the fastest seen: real compiles allocate and touch fresh
/// memory, which the passes at copy bandwidth do not count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompileRates {
    pub ns_per_byte: std::collections::BTreeMap<String, f64>,
}

fn rate_key(backend: BackendKind, precision: Precision) -> String {
    format!("{backend}-{precision}")
}

impl CompileRates {
    pub fn get(&self, backend: BackendKind, precision: Precision) -> Option<f64> {
        self.ns_per_byte
            .get(&rate_key(backend, precision))
            .copied()
            .filter(|r| r.is_finite() && *r > 0.0)
    }

    /// Keeps the rate of a compile of `weight_bytes` that took `elapsed_ns`
    /// if it is the fastest yet; the autotuner's (which depends on its log
    /// and its allowance) and small models' are not kept. Whether it changed.
    pub fn learn(
        &mut self,
        backend: BackendKind,
        precision: Precision,
        weight_bytes: f64,
        elapsed_ns: f64,
    ) -> bool {
        if backend == BackendKind::Autotuned || weight_bytes < COMPILE_RATE_MIN_BYTES {
            return false;
        }
        let rate = elapsed_ns / weight_bytes;
        if self.get(backend, precision).is_some_and(|r| r <= rate) || rate <= 0.0 {
            return false;
        }
        self.ns_per_byte.insert(rate_key(backend, precision), rate);
        true
    }
}

/// Cache file of the compile rates: per machine, kernel build and SIMD level in force.
pub fn compile_rates_path(cache_dir: &Path, hardware_fingerprint: &str) -> std::path::PathBuf {
    cache_dir.join("measure").join(format!(
        "compile-{hardware_fingerprint}-k{}-{}.json",
        workbench_kernels::SOURCE_ID,
        workbench_kernels::simd::detect().name()
    ))
}

/// The compile rates learnt on this machine (none yet: empty). Kept also by
/// `--fresh` runs, like the tuning log: they describe the machine, not a model.
pub fn load_compile_rates(cache_dir: &Path, hardware_fingerprint: &str) -> CompileRates {
    let mut rates: CompileRates =
        cache::read_json(&compile_rates_path(cache_dir, hardware_fingerprint)).unwrap_or_default();
    // A corrupted rate is forgotten (and learnt again): an absurd one would
    // refuse every compile, which would then never teach a better one.
    rates
        .ns_per_byte
        .retain(|_, r| r.is_finite() && *r > 0.0 && *r <= MAX_PLAUSIBLE_COMPILE_NS_PER_BYTE);
    rates
}

/// Slowest compile rate believed from the cache: a millisecond per byte of
/// weights (the smallest model that teaches a rate would compile in 18 hours).
const MAX_PLAUSIBLE_COMPILE_NS_PER_BYTE: f64 = 1e6;

/// Passes over the f32 weights a backend's compile makes at a precision:
/// copying the graph, lowering it, packing (read and write), and for int8 the
/// calibration (one pass, its samples batched; its FLOPs are counted apart),
/// the per-channel quantization (two) and packing the s8 weights.
fn compile_passes(backend: BackendKind, precision: Precision) -> f64 {
    match (backend, precision) {
        (BackendKind::Naive, _) => 1.0,
        (BackendKind::Fused, _) => 2.0,
        (BackendKind::Tiled | BackendKind::Autotuned, _) => 3.0,
        (BackendKind::Quantized, Precision::Int8) => 5.0,
        (BackendKind::Quantized, _) => 3.0,
    }
}

/// Compiling a configuration: its passes over the weights at this machine's
/// copy bandwidth, for the autotuner at least one trial of each GEMM at its
/// tuning batch (the model's FLOPs at that batch, each trial timed `reps`
/// times after a warm-up, at peak), and for int8 the calibration: the f32
/// model run on its samples. A lower bound; `None` without a roofline.
pub fn compile_time(
    subject: &MeasureSubject,
    backend: BackendKind,
    precision: Precision,
) -> Option<Estimate> {
    let roofline = subject.roofline.as_ref()?;
    let passes = compile_passes(backend, precision);
    let memory_ns = if roofline.dram_gbs > 0.0 {
        passes * subject.weight_bytes / roofline.dram_gbs
    } else {
        0.0
    };
    let mut basis = format!(
        "{passes} passes over its {} of weights at {} GB/s",
        bytes(subject.weight_bytes),
        sig(roofline.dram_gbs)
    );
    let mut tuning_ns = 0.0;
    if backend == BackendKind::Autotuned {
        let tuner = workbench_kernels::backends::autotuned::AutotunedBackend::default();
        let calls = (tuner.reps.max(1) + 1) as f64;
        let flops = subject.flops_per_sample * tuner.tune_batch.max(1) as f64;
        let peak = roofline.compute_peak(precision);
        if peak > 0.0 {
            tuning_ns = calls * flops / peak;
            basis.push_str(&format!(
                ", and autotuning: at least one trial of each GEMM at batch {} ({} x {})",
                tuner.tune_batch,
                calls,
                at_peak(flops, roofline, precision)
            ));
        }
    }
    let mut calibration_ns = 0.0;
    if (backend, precision) == (BackendKind::Quantized, Precision::Int8) {
        let samples = QuantizedBackend::default().calibration_samples.max(1) as f64;
        let cores = roofline.cores.max(1);
        let rate = roofline.peak_gflops_f32 * CALIBRATION_FRACTION_OF_PEAK * cores as f64;
        if rate > 0.0 {
            calibration_ns = samples * subject.flops_per_sample / rate;
            let on_cores = if cores > 1 {
                format!(" on each of its {cores} cores")
            } else {
                String::new()
            };
            basis.push_str(&format!(
                ", and int8 calibration: the f32 model on {samples} samples ({} FLOPs at {} GFLOP/s, 1/{} of this machine's f32 peak{on_cores})",
                count(samples * subject.flops_per_sample),
                sig(rate),
                (1.0 / CALIBRATION_FRACTION_OF_PEAK).round()
            ));
        }
    }
    let learnt = subject
        .compile_rates
        .as_ref()
        .and_then(|r| r.get(backend, precision))
        .map(|rate| (rate, rate * subject.weight_bytes))
        .filter(|&(_, ns)| ns > memory_ns + tuning_ns + calibration_ns);
    if let Some((rate, ns)) = learnt {
        return Some(Estimate {
            call_ns: ns,
            basis: format!(
                "its compiles took at least {} per GB of weights on this machine",
                duration(rate * 1e9)
            ),
        });
    }
    Some(Estimate {
        call_ns: memory_ns + tuning_ns + calibration_ns,
        basis,
    })
}

/// The most of one core's f32 peak the int8 compile's calibration pass can
/// run the f32 model at: its dense and conv layers go through `dense_f32`,
/// whose separate multiplies and adds (the reference's roundings) take two
/// instructions where a fused multiply-add takes one, on every core (a
/// large layer's rows are split over them). So the estimate is a lower
/// bound (the roofline's `cores`); measured on the Xeon host 2 (2 cores, 224 GFLOP/s a core), whole
/// int8 compiles ran at 1/2.6 of one core's peak on a BERT-base encoder and
/// 1/5 on the review's 5.1 GFLOP convnet (`compile_scaling calibration`).
const CALIBRATION_FRACTION_OF_PEAK: f64 = 1.0 / 2.0;

/// One call at `batch` from the same configuration timed at the smaller
/// `known_batch` (median `known_ns`): in proportion for a per-sample backend;
/// for a blocked one, at least that time and at least the FLOPs at peak.
pub fn scaled_call(
    subject: &MeasureSubject,
    backend: BackendKind,
    precision: Precision,
    batch: usize,
    (known_batch, known_ns): (usize, f64),
) -> Estimate {
    let ratio = batch as f64 / known_batch.max(1) as f64;
    if per_sample(backend) {
        return Estimate {
            call_ns: known_ns * ratio,
            basis: format!(
                "batch {known_batch} took {}, and {backend}'s time grows with the batch",
                duration(known_ns)
            ),
        };
    }
    let roofline = subject.roofline.as_ref();
    let peak = roofline.map_or(0.0, |r| r.compute_peak(precision));
    let compute_ns = if peak > 0.0 {
        subject.flops_per_sample * batch as f64 / peak
    } else {
        0.0
    };
    Estimate {
        call_ns: known_ns.max(compute_ns),
        basis: match roofline.filter(|_| compute_ns > known_ns) {
            Some(r) => format!(
                "at least {}",
                at_peak(subject.flops_per_sample * batch as f64, r, precision)
            ),
            None => format!("at least batch {known_batch}'s {}", duration(known_ns)),
        },
    }
}

/// `ops` at this machine's compute peak for `precision`, in the peak's own
/// units: "516.2 M FLOPs at this machine's peak of 100 GFLOP/s", or for int8
/// on its int8 path "516.2 M int8 ops at this machine's int8 peak of 400 G ops/s".
fn at_peak(ops: f64, roofline: &Roofline, precision: Precision) -> String {
    let peak = roofline.compute_peak(precision);
    if precision == Precision::Int8 && roofline.peak_gops_int8 > 0.0 {
        format!(
            "{} int8 ops at this machine's int8 peak of {} G ops/s",
            count(ops),
            sig(peak)
        )
    } else {
        format!(
            "{} FLOPs at this machine's peak of {} GFLOP/s",
            count(ops),
            sig(peak)
        )
    }
}

/// `1.23 s`, `45.6 ms`, `789 µs`, `12 ns`.
pub fn duration(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{} s", sig(ns / 1e9))
    } else if ns >= 1e6 {
        format!("{} ms", sig(ns / 1e6))
    } else if ns >= 1e3 {
        format!("{} µs", sig(ns / 1e3))
    } else {
        format!("{ns:.0} ns")
    }
}

/// Three significant figures, no exponent (99.97 is `100`, not `100.0`).
fn sig(x: f64) -> String {
    let decimals = if x.abs() >= 99.95 {
        0
    } else if x.abs() >= 9.995 {
        1
    } else {
        2
    };
    format!("{x:.decimals$}")
}

/// `516.2 M`, `1.3 G`.
pub fn count(x: f64) -> String {
    for (scale, unit) in [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")] {
        if x >= scale {
            return format!("{:.1} {unit}", x / scale);
        }
    }
    format!("{x:.0}")
}

/// `1.0 GB`, `258 MB`.
pub fn bytes(x: f64) -> String {
    for (scale, unit) in [(1e9, "GB"), (1e6, "MB"), (1e3, "kB")] {
        if x >= scale {
            return format!("{} {unit}", sig(x / scale));
        }
    }
    format!("{x:.0} B")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::roofline::Roofline;

    fn subject(flops: f64, weight_bytes: f64) -> MeasureSubject {
        let roofline = Roofline::flat("test", 100.0, 400.0, 10.0);
        MeasureSubject {
            hardware_fingerprint: "test".into(),
            graph_fingerprint: 1,
            workload: "test".into(),
            flops_per_sample: flops,
            weight_bytes,
            roofline: Some(roofline),
            rates: Some(BackendRates {
                points: vec![
                    RatePoint {
                        backend: BackendKind::Naive,
                        weight_bytes: 1e6,
                        gflops: 2.0,
                    },
                    RatePoint {
                        backend: BackendKind::Naive,
                        weight_bytes: 16e6,
                        gflops: 0.5,
                    },
                ],
            }),
            compile_rates: None,
        }
    }

    #[test]
    fn probe_rates_interpolate_on_a_log_scale_and_clamp_outside() {
        let s = subject(1e9, 1e9);
        let rates = s.rates.as_ref().unwrap();
        assert_eq!(rates.gflops(BackendKind::Naive, 1e3), Some(2.0));
        assert_eq!(rates.gflops(BackendKind::Naive, 1e9), Some(0.5));
        let mid = rates.gflops(BackendKind::Naive, 4e6).unwrap();
        assert!((mid - 1.0).abs() < 1e-9, "{mid}");
        assert_eq!(rates.gflops(BackendKind::Fused, 4e6), None);
    }

    #[test]
    fn first_calls_use_the_probe_for_per_sample_backends_and_the_roofline_otherwise() {
        // 1 GFLOP per sample, 1 GB of f32 weights.
        let s = subject(1e9, 1e9);
        let naive = first_call(&s, BackendKind::Naive, Precision::F32, 2).unwrap();
        assert!((naive.call_ns - 4e9).abs() < 1.0, "{naive:?}");
        // Tiled f32: 1 GB at 10 GB/s (0.1 s) beats 1 GFLOP at 100 GFLOP/s (0.01 s).
        let tiled = first_call(&s, BackendKind::Tiled, Precision::F32, 1).unwrap();
        assert!((tiled.call_ns - 1e8).abs() < 1.0, "{tiled:?}");
        assert!(tiled.basis.contains("GB/s"), "{tiled:?}");
        // int8 weights are a quarter of that.
        let int8 = first_call(&s, BackendKind::Quantized, Precision::Int8, 1).unwrap();
        assert!((int8.call_ns - 2.5e7).abs() < 1.0, "{int8:?}");
        // Fused has no probe here: the slowest rate assumed.
        let fused = first_call(&s, BackendKind::Fused, Precision::F32, 1).unwrap();
        assert!(
            (fused.call_ns - 1e9 / (100.0 / 2000.0)).abs() < 1.0,
            "{fused:?}"
        );
        let blind = MeasureSubject {
            roofline: None,
            ..s
        };
        assert_eq!(
            first_call(&blind, BackendKind::Tiled, Precision::F32, 1),
            None
        );
    }

    #[test]
    fn int8_estimates_are_stated_in_int8_ops_at_the_int8_peak() {
        // 100 GFLOP per sample, 1 kB of weights: compute bound at 400 G ops/s.
        let s = subject(1e11, 1e3);
        let int8 = first_call(&s, BackendKind::Quantized, Precision::Int8, 1).unwrap();
        assert!((int8.call_ns - 2.5e8).abs() < 1.0, "{int8:?}");
        assert_eq!(
            int8.basis,
            "at least 100.0 G int8 ops at this machine's int8 peak of 400 G ops/s"
        );
        let scaled = scaled_call(&s, BackendKind::Quantized, Precision::Int8, 2, (1, 1.0));
        assert!(scaled.basis.contains("200.0 G int8 ops"), "{scaled:?}");
        let f32 = first_call(&s, BackendKind::Tiled, Precision::F32, 1).unwrap();
        assert_eq!(
            f32.basis,
            "at least 100.0 G FLOPs at this machine's peak of 100 GFLOP/s"
        );
    }

    #[test]
    fn larger_batches_scale_in_proportion_for_per_sample_backends_only() {
        let s = subject(1e9, 1e9);
        let naive = scaled_call(&s, BackendKind::Naive, Precision::F32, 16, (1, 2e9));
        assert!((naive.call_ns - 32e9).abs() < 1.0, "{naive:?}");
        // Tiled at batch 16: at least batch 1's 0.1 s, and 16 GFLOP at peak is 0.16 s.
        let tiled = scaled_call(&s, BackendKind::Tiled, Precision::F32, 16, (1, 1e8));
        assert!((tiled.call_ns - 1.6e8).abs() < 1.0, "{tiled:?}");
        let tiled = scaled_call(&s, BackendKind::Tiled, Precision::F32, 4, (1, 1e8));
        assert!((tiled.call_ns - 1e8).abs() < 1.0, "{tiled:?}");
    }

    #[test]
    fn the_probe_is_taken_only_for_models_it_could_matter_for() {
        // The slowest rate assumed here is 100 / 2000 = 0.05 GFLOP/s.
        let small = subject(1e3, 1e3);
        assert!(!rates_needed(&small, 1, 4.0, 1e8));
        let big = subject(1e8, 1e8);
        assert!(rates_needed(&big, 1, 4.0, 1e8));
        let blind = MeasureSubject {
            roofline: None,
            ..big
        };
        assert!(!rates_needed(&blind, 1, 4.0, 1e8));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(2.36e9), "2.36 s");
        assert_eq!(duration(70.4e6), "70.4 ms");
        assert_eq!(duration(789e3), "789 µs");
        assert_eq!(count(516.2e6), "516.2 M");
        assert_eq!(bytes(1.032e9), "1.03 GB");
        assert_eq!(duration(99.99e6), "100 ms");
        assert_eq!(duration(9.999e6), "10.0 ms");
    }
}
