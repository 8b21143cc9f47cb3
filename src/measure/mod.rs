//! Timing compiled models on this machine: harness, statistics, on-disk cache.
//!
//! [`measure_jobs`] is the engine (generic over how a workload is built, so tests
//! can count calls); `measure_model` drives it with the kernels crate's backends.

pub mod bench;
pub mod cache;
pub mod harness;
pub mod model;
pub mod stats;

pub use model::measure_model;

use crate::hardware::roofline::Roofline;
use harness::{time_workload, HarnessConfig, Timing, Workload};
use serde::{Deserialize, Serialize};
use stats::SampleStats;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use workbench_kernels::{BackendKind, Precision};

#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error("the workload failed: {0}")]
    Workload(String),
    #[error("no timing samples were collected")]
    NoSamples,
    #[error("batch size must be at least 1 (got {0})")]
    ZeroBatch(usize),
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Cache(#[from] cache::CacheError),
}

/// Options of one measuring run.
#[derive(Debug, Clone)]
pub struct MeasureOptions {
    /// Total time budget for all (backend, precision, batch) jobs not in the cache.
    pub budget: Duration,
    /// Ignore cached results (they are overwritten by the new ones).
    pub fresh: bool,
    /// A short run (`--quick`): its measurements are cached as quick ones,
    /// which later quick runs reuse and full runs time again.
    pub quick: bool,
    pub cache_dir: PathBuf,
    pub harness: HarnessConfig,
    /// Key of this machine in the cache; `None` = probe it (`LocalHardware::detect`).
    pub hardware_fingerprint: Option<String>,
    /// This machine's roofline, for each measurement's fraction of peak.
    pub roofline: Option<Roofline>,
    /// Set by another thread (the TUI's Esc) to stop between timing samples.
    pub cancel: Option<Arc<AtomicBool>>,
}

/// Whether another thread asked the run holding `flag` to stop.
pub fn cancel_requested(flag: Option<&AtomicBool>) -> bool {
    flag.is_some_and(|c| c.load(Ordering::Relaxed))
}

impl MeasureOptions {
    /// Whether the run was asked to stop.
    pub fn cancelled(&self) -> bool {
        cancel_requested(self.cancel.as_deref())
    }
}

impl MeasureOptions {
    /// About 60 s in all.
    pub fn standard() -> MeasureOptions {
        MeasureOptions {
            budget: Duration::from_secs(60),
            fresh: false,
            quick: false,
            cache_dir: cache::default_cache_dir(),
            harness: HarnessConfig::default(),
            hardware_fingerprint: None,
            roofline: None,
            cancel: None,
        }
    }

    /// About 10 s in all (`--quick`).
    pub fn quick() -> MeasureOptions {
        MeasureOptions {
            budget: Duration::from_secs(10),
            quick: true,
            harness: HarnessConfig {
                warmup: Duration::from_millis(20),
                max_samples: 50,
                max_remeasures: 1,
                ..HarnessConfig::default()
            },
            ..MeasureOptions::standard()
        }
    }
}

impl Default for MeasureOptions {
    fn default() -> Self {
        MeasureOptions::standard()
    }
}

/// What is being measured (besides backend, precision and batch).
#[derive(Debug, Clone)]
pub struct MeasureSubject {
    /// [`crate::hardware::probe::LocalHardware::fingerprint`].
    pub hardware_fingerprint: String,
    /// Hash of the compiled graph (kernels' `Graph::fingerprint`).
    pub graph_fingerprint: u64,
    /// Workload name shown in reports (`mlp-1024`, `convnet-224`, a scenario's model).
    pub workload: String,
    /// FLOPs of one sample (for GFLOP/s).
    pub flops_per_sample: f64,
    /// This machine's roofline, for the fraction of peak (optional).
    pub roofline: Option<Roofline>,
}

/// One timed (backend, precision, batch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelMeasurement {
    pub backend: BackendKind,
    pub precision: Precision,
    pub workload: String,
    pub batch: usize,
    /// Per-call latency statistics (one call = one batch).
    pub stats: SampleStats,
    pub iters_per_sample: u64,
    pub remeasures: u32,
    /// Spread stayed above the harness limit: treat the figure with care.
    pub high_variance: bool,
    /// Achieved GFLOP/s at the median.
    pub gflops: f64,
    /// `gflops` over this machine's single-core peak at the precision, when a roofline was given.
    pub fraction_of_peak: Option<f64>,
    pub hardware_fingerprint: String,
    pub graph_fingerprint: u64,
    /// Loaded from the on-disk cache rather than timed in this run.
    pub from_cache: bool,
    /// Timed by a quick run (shorter warm-up, fewer samples). Entries cached
    /// before this was recorded count as quick: a full run times them again.
    #[serde(default = "recorded_before_grades")]
    pub quick: bool,
}

fn recorded_before_grades() -> bool {
    true
}

impl KernelMeasurement {
    pub fn median_ns(&self) -> f64 {
        self.stats.median_ns
    }

    /// Samples per second at the median latency.
    pub fn throughput_per_s(&self) -> f64 {
        if self.stats.median_ns > 0.0 {
            self.batch as f64 * 1e9 / self.stats.median_ns
        } else {
            0.0
        }
    }
}

/// A (backend, precision) that was not measured, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkippedConfig {
    pub backend: BackendKind,
    pub precision: Precision,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MeasureOutcome {
    pub measurements: Vec<KernelMeasurement>,
    pub skipped: Vec<SkippedConfig>,
}

/// Progress events, in order, for a bar or a TUI gauge.
#[derive(Debug, Clone, PartialEq)]
pub enum MeasureProgress {
    /// `total` (config, batch) jobs, of which `cached` come from the cache.
    Planned { total: usize, cached: usize },
    Started {
        index: usize,
        total: usize,
        backend: BackendKind,
        precision: Precision,
        batch: usize,
    },
    Finished {
        index: usize,
        total: usize,
        backend: BackendKind,
        precision: Precision,
        batch: usize,
        median_ns: f64,
        from_cache: bool,
    },
    Skipped {
        backend: BackendKind,
        precision: Precision,
        reason: String,
    },
}

/// Builds the workload of one (backend, precision): `Ok(Err(reason))` means
/// the backend is not available (skipped, not an error).
pub type WorkloadFactory<'a> = dyn FnMut(BackendKind, Precision) -> Result<Result<Box<dyn Workload + 'a>, String>, MeasureError>
    + 'a;

/// Cache file of one measurement: per machine, graph, kernel build (a new build's
/// kernels time differently, so its measurements are not reused), backend,
/// precision and batch.
pub fn cache_path(
    opts: &MeasureOptions,
    subject: &MeasureSubject,
    backend: BackendKind,
    precision: Precision,
    batch: usize,
) -> PathBuf {
    opts.cache_dir.join("measure").join(format!(
        "{}-{:016x}-k{}-{}-{}-b{}.json",
        subject.hardware_fingerprint,
        subject.graph_fingerprint,
        workbench_kernels::SOURCE_ID,
        backend,
        precision,
        batch
    ))
}

/// Measure every (config, batch), using the cache unless `opts.fresh`. Jobs not in
/// the cache share the budget: each gets what is left divided by the jobs left,
/// so quick jobs hand their unused time to the later ones.
pub fn measure_jobs(
    subject: &MeasureSubject,
    configs: &[(BackendKind, Precision)],
    batches: &[usize],
    opts: &MeasureOptions,
    make_workload: &mut WorkloadFactory<'_>,
    progress: &mut dyn FnMut(MeasureProgress),
) -> Result<MeasureOutcome, MeasureError> {
    if let Some(&bad) = batches.iter().find(|&&b| b == 0) {
        return Err(MeasureError::ZeroBatch(bad));
    }
    let start = Instant::now();
    let total = configs.len() * batches.len();
    // Cache lookups first, so the budget is shared only among the jobs to time.
    let mut cached: Vec<Vec<Option<KernelMeasurement>>> = Vec::new();
    for &(backend, precision) in configs {
        let row = batches
            .iter()
            .map(|&batch| {
                if opts.fresh {
                    return None;
                }
                let path = cache_path(opts, subject, backend, precision, batch);
                cache::read_json::<KernelMeasurement>(&path)
                    // A full run does not settle for a quick run's figures.
                    .filter(|m| opts.quick || !m.quick)
                    .map(|mut m| {
                        m.from_cache = true;
                        m
                    })
            })
            .collect();
        cached.push(row);
    }
    let cached_count = cached.iter().flatten().filter(|m| m.is_some()).count();
    progress(MeasureProgress::Planned {
        total,
        cached: cached_count,
    });
    let mut to_time = total - cached_count;

    let mut outcome = MeasureOutcome::default();
    for (config_index, (&(backend, precision), row)) in configs.iter().zip(cached).enumerate() {
        let mut untimed_in_row = row.iter().filter(|m| m.is_none()).count();
        let mut workload: Option<Box<dyn Workload + '_>> = None;
        for (batch_index, (&batch, hit)) in batches.iter().zip(row).enumerate() {
            if opts.cancelled() {
                return Err(MeasureError::Cancelled);
            }
            let index = config_index * batches.len() + batch_index + 1;
            let m = match hit {
                Some(m) => m,
                None => {
                    if workload.is_none() {
                        match make_workload(backend, precision)? {
                            Ok(w) => workload = Some(w),
                            Err(reason) => {
                                progress(MeasureProgress::Skipped {
                                    backend,
                                    precision,
                                    reason: reason.clone(),
                                });
                                outcome.skipped.push(SkippedConfig {
                                    backend,
                                    precision,
                                    reason,
                                });
                                to_time = to_time.saturating_sub(untimed_in_row);
                                break;
                            }
                        }
                    }
                    let Some(w) = workload.as_mut() else {
                        break;
                    };
                    progress(MeasureProgress::Started {
                        index,
                        total,
                        backend,
                        precision,
                        batch,
                    });
                    let left = opts.budget.saturating_sub(start.elapsed());
                    let share = left / u32::try_from(to_time.max(1)).unwrap_or(u32::MAX);
                    let timing = time_workload(
                        w.as_mut(),
                        batch,
                        share,
                        &opts.harness,
                        opts.cancel.as_deref(),
                    )?;
                    to_time = to_time.saturating_sub(1);
                    untimed_in_row = untimed_in_row.saturating_sub(1);
                    let m = measurement(subject, backend, precision, batch, timing, opts.quick);
                    cache::write_json_atomic(
                        &cache_path(opts, subject, backend, precision, batch),
                        &m,
                    )?;
                    m
                }
            };
            progress(MeasureProgress::Finished {
                index,
                total,
                backend,
                precision,
                batch,
                median_ns: m.stats.median_ns,
                from_cache: m.from_cache,
            });
            outcome.measurements.push(m);
        }
    }
    Ok(outcome)
}

fn measurement(
    subject: &MeasureSubject,
    backend: BackendKind,
    precision: Precision,
    batch: usize,
    timing: Timing,
    quick: bool,
) -> KernelMeasurement {
    let gflops = if timing.stats.median_ns > 0.0 {
        subject.flops_per_sample * batch as f64 / timing.stats.median_ns
    } else {
        0.0
    };
    let fraction_of_peak = subject
        .roofline
        .as_ref()
        .map(|r| r.compute_peak(precision))
        .filter(|&p| p > 0.0)
        .map(|p| gflops / p);
    KernelMeasurement {
        backend,
        precision,
        workload: subject.workload.clone(),
        batch,
        stats: timing.stats,
        iters_per_sample: timing.iters_per_sample,
        remeasures: timing.remeasures,
        high_variance: timing.high_variance,
        gflops,
        fraction_of_peak,
        hardware_fingerprint: subject.hardware_fingerprint.clone(),
        graph_fingerprint: subject.graph_fingerprint,
        from_cache: false,
        quick,
    }
}
