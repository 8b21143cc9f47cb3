//! Timing compiled models on this machine: harness, statistics, on-disk cache.
//!
//! [`measure_jobs`] is the engine (generic over how a workload is built, so tests
//! can count calls); `measure_model` drives it with the kernels crate's backends.
//! [`budget`] estimates each call before it is made, so a run stays near its budget.

pub mod bench;
pub mod budget;
pub mod cache;
pub mod harness;
pub mod memory;
pub mod model;
pub mod stats;

pub use model::{measure_model, measure_model_with, Inspect};

use crate::hardware::roofline::{Roofline, MAX_PLAUSIBLE_GIGA_PER_S};
use harness::{time_workload, HarnessConfig, Timing, Workload};
use serde::{Deserialize, Serialize};
use stats::SampleStats;
use std::path::{Path, PathBuf};
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
    #[error("{0}")]
    OverBudget(Box<OverBudget>),
}

/// Nothing of a model could be measured: even its cheapest configuration's
/// first call would take far longer than the budget.
#[derive(Debug, Clone, PartialEq)]
pub struct OverBudget {
    pub workload: String,
    pub flops_per_sample: f64,
    pub batch: usize,
    pub backend: BackendKind,
    pub precision: Precision,
    pub call_ns: f64,
    /// What the estimate rests on.
    pub basis: String,
    /// A measurement may take this many times its budget.
    pub overrun: f64,
    pub budget: Duration,
}

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` cannot be measured within its budget: it needs {} FLOPs per sample, and one call at batch {} takes about {} even with its fastest configuration ({} {}: {}), more than {}x the {} it has ({}); use a smaller model or a larger measurement budget",
            self.workload,
            budget::count(self.flops_per_sample),
            self.batch,
            budget::duration(self.call_ns),
            self.backend,
            self.precision,
            self.basis,
            self.overrun,
            budget::duration(self.budget.as_nanos() as f64),
            budget::duration(self.budget.as_nanos() as f64 * self.overrun)
        )
    }
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
    /// Bytes of the f32 weights (for the estimate of a call: they are read once per call).
    pub weight_bytes: f64,
    /// This machine's roofline, for the fraction of peak and the estimates of a
    /// call (none without it: every configuration is started).
    pub roofline: Option<Roofline>,
    /// The per-sample backends' rates, for the estimate of their first call.
    pub rates: Option<budget::BackendRates>,
    /// Compile times learnt on this machine, for the estimate of a compile;
    /// when given, the run's compiles add to them (in `cache_dir`).
    pub compile_rates: Option<budget::CompileRates>,
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
    /// Fewer samples than the harness minimum: one call is slow for the budget.
    #[serde(default)]
    pub reduced: bool,
    /// Wall time the measurement took (ms, warm-up included; a second
    /// window counts as the time it was given). A run that reuses
    /// it from the cache charges it to the budget again, so that it makes the
    /// same decisions as the run that timed it.
    #[serde(default)]
    pub spent_ms: f64,
    /// Wall time compiling the configuration took (ms), recorded on the first
    /// batch timed after it was compiled and charged again when reused, like `spent_ms`.
    #[serde(default)]
    pub compile_ms: f64,
    /// Budget of the run that timed it (ms): a reduced measurement is timed
    /// again by a run with a larger budget, in which a full one fits.
    #[serde(default)]
    pub budget_ms: f64,
    /// Autotuned, and the tuning's time budget cut its search short: a run
    /// with a larger budget compiles (resuming the search) and times it again.
    #[serde(default)]
    pub tuning_cut_short: bool,
    /// The medians of the two timing windows, when two were taken (see
    /// [`HarnessConfig::windows`]); the other figures are the quieter one's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_window_median_ns: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_window_median_ns: Option<f64>,
    /// Achieved GFLOP/s at the median.
    pub gflops: f64,
    /// `gflops` over this machine's single-core peak at the precision, when a roofline was given.
    pub fraction_of_peak: Option<f64>,
    pub hardware_fingerprint: String,
    pub graph_fingerprint: u64,
    /// Loaded from the on-disk cache rather than timed in this run.
    pub from_cache: bool,
    /// Bytes of activations the compiled model held at this batch (weights
    /// excluded; `Executable::activation_bytes`); `None` when cached before
    /// it was recorded, or for a workload that is not a compiled model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_bytes: Option<u64>,
    /// What the compiler made of the model (the backend's printed lowered
    /// form: fused steps, tiles, int8 scales); `None` when cached before it
    /// was recorded, or for a workload that is not a compiled model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// Timed by a quick run (shorter warm-up, fewer samples). Entries cached
    /// before this was recorded count as quick: a full run times them again.
    #[serde(default = "recorded_before_grades")]
    pub quick: bool,
}

fn recorded_before_grades() -> bool {
    true
}

/// Shortest call a cache entry is believed to record: a twentieth of a cycle
/// at 5 GHz (no call, even of an empty model, returns in less than a cycle).
pub const MIN_PLAUSIBLE_CALL_NS: f64 = 0.01;

impl KernelMeasurement {
    /// Whether a cached measurement of `subject` could have been timed: its
    /// statistics consistent ([`SampleStats::is_consistent`]), its fastest
    /// call no faster than [`MAX_PLAUSIBLE_GIGA_PER_S`] allows for the
    /// subject's FLOPs, and the times charged to the budget finite and not
    /// negative. A corrupted entry fails this and is timed again.
    pub fn is_plausible(&self, subject: &MeasureSubject) -> bool {
        let flops = subject.flops_per_sample * self.batch as f64;
        let charges = [self.spent_ms, self.compile_ms, self.budget_ms, self.gflops];
        self.stats.is_consistent(MIN_PLAUSIBLE_CALL_NS)
            && flops / self.stats.min_ns <= MAX_PLAUSIBLE_GIGA_PER_S
            && charges.iter().all(|x| x.is_finite() && *x >= 0.0)
    }

    pub fn median_ns(&self) -> f64 {
        self.stats.median_ns
    }

    /// Keeps the quieter of this window and `second` (the lower median: a
    /// busy host only slows calls); the time spent is this window's and the
    /// `reserve` the second was given.
    fn take_quieter(&mut self, second: KernelMeasurement, reserve: Duration) {
        let spent_ms = self.spent_ms + reserve.as_secs_f64() * 1e3;
        let medians = (self.stats.median_ns, second.stats.median_ns);
        if medians.1 < medians.0 {
            *self = KernelMeasurement {
                compile_ms: self.compile_ms,
                tuning_cut_short: self.tuning_cut_short,
                activation_bytes: self.activation_bytes,
                program: self.program.take(),
                ..second
            };
        }
        self.spent_ms = spent_ms;
        self.first_window_median_ns = Some(medians.0);
        self.second_window_median_ns = Some(medians.1);
    }

    /// Timing windows taken: 2 when both medians are recorded, else 1.
    pub fn windows(&self) -> u32 {
        match (self.first_window_median_ns, self.second_window_median_ns) {
            (Some(_), Some(_)) => 2,
            _ => 1,
        }
    }

    /// The median of the window not kept, when two were taken: how much the
    /// host's load moved this figure during the run.
    pub fn other_window_median_ns(&self) -> Option<f64> {
        let (first, second) = (self.first_window_median_ns?, self.second_window_median_ns?);
        Some(if second < first { first } else { second })
    }

    /// The median of the first window: the figure the measuring run had
    /// before any second window (it estimated the next batch from it, and
    /// so does a rerun from the cache).
    pub fn first_window_median(&self) -> f64 {
        self.first_window_median_ns.unwrap_or(self.stats.median_ns)
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

/// A (backend, precision) that was not measured, or not at some batch sizes, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkippedConfig {
    pub backend: BackendKind,
    pub precision: Precision,
    /// The batch sizes not measured; empty = none of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<usize>,
    pub reason: String,
}

/// Tell the caller that a configuration (or some of its batches) is not
/// measured, and keep it for the outcome.
fn skip(
    progress: &mut dyn FnMut(MeasureProgress),
    skipped: &mut Vec<(usize, SkippedConfig)>,
    index: usize,
    config: SkippedConfig,
) {
    progress(MeasureProgress::Skipped {
        backend: config.backend,
        precision: config.precision,
        batches: config.batches.clone(),
        reason: config.reason.clone(),
    });
    skipped.push((index, config));
}
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MeasureOutcome {
    pub measurements: Vec<KernelMeasurement>,
    pub skipped: Vec<SkippedConfig>,
    /// Time charged to the budget: what compiling and the measurements took
    /// (those from the cache as when they were timed).
    #[serde(default)]
    pub budget_used: Duration,
}

/// Progress events, in order, for a bar or a TUI gauge.
#[derive(Debug, Clone, PartialEq)]
pub enum MeasureProgress {
    /// `total` (config, batch) jobs, of which `cached` come from the cache.
    Planned { total: usize, cached: usize },
    /// `index` counts the jobs in the order they run, from 1.
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
    /// Job `index` is timed again, after every job's first window.
    SecondWindow {
        index: usize,
        total: usize,
        backend: BackendKind,
        precision: Precision,
        batch: usize,
    },
    /// Compiling a configuration started (once, before its first batch not in the cache).
    Compiling {
        backend: BackendKind,
        precision: Precision,
    },
    /// Compiling it finished (or was refused, then `Skipped` follows) after
    /// `elapsed`, which is charged to the budget.
    Compiled {
        backend: BackendKind,
        precision: Precision,
        elapsed: Duration,
    },
    /// The agreement check runs the executable of (`backend`, `precision`)
    /// on its seeded inputs `done` to the next batch, of `total` (after the
    /// configuration is timed, or compiled again for it).
    Checking {
        backend: BackendKind,
        precision: Precision,
        done: usize,
        total: usize,
    },
    /// The autotuner searched `shape` (`m x n x k`): `trials` of at most
    /// `max_trials`, its best so far `best_gflops` with the tile `best`
    /// (`mc=96 nc=512 ...`), while compiling `autotuned f32`.
    Tuning {
        shape: String,
        trials: usize,
        max_trials: usize,
        best_gflops: Option<f64>,
        best: String,
    },
    /// Not measured at `batches` (empty = at all).
    Skipped {
        backend: BackendKind,
        precision: Precision,
        batches: Vec<usize>,
        reason: String,
    },
}

/// Compiling slower than this is worth a line of its own in a log.
pub const SLOW_COMPILE: Duration = Duration::from_secs(1);

impl MeasureProgress {
    /// What a compile or agreement-check event says: `compiling tiled f32`,
    /// `compiled tiled f32 in 1.23 s`, `checking agreement: tiled f32, input 17 of 256`
    /// (the stages between timings that can take a while on a large model).
    pub fn compile_text(&self) -> Option<String> {
        match self {
            MeasureProgress::Checking {
                backend,
                precision,
                done,
                total,
            } => Some(format!(
                "checking agreement: {backend} {precision}, input {} of {total}",
                (done + 1).min(*total)
            )),
            MeasureProgress::Compiling { backend, precision } => {
                Some(format!("compiling {backend} {precision}"))
            }
            MeasureProgress::Tuning {
                shape,
                trials,
                max_trials,
                best_gflops,
                ..
            } => Some(format!(
                "autotuning GEMM {shape}: trial {trials} of at most {max_trials}{}",
                best_gflops.map_or(String::new(), |g| format!(", best {g:.1} GFLOP/s"))
            )),
            MeasureProgress::Compiled {
                backend,
                precision,
                elapsed,
            } => Some(format!(
                "compiled {backend} {precision} in {}",
                budget::duration(elapsed.as_nanos() as f64)
            )),
            _ => None,
        }
    }

    /// A finished compile slow enough ([`SLOW_COMPILE`]) to be logged on its own line.
    pub fn slow_compile(&self) -> Option<String> {
        match self {
            MeasureProgress::Compiled { elapsed, .. } if *elapsed >= SLOW_COMPILE => {
                self.compile_text()
            }
            _ => None,
        }
    }
}

/// Builds the workload of one (backend, precision), given the time its
/// compile may take (the autotuner trims its search to it): `Ok(Err(reason))`
/// means the backend is not available (skipped, not an error).
pub type WorkloadFactory<'a> = dyn FnMut(
        BackendKind,
        Precision,
        Duration,
    ) -> Result<Result<Box<dyn Workload + 'a>, String>, MeasureError>
    + 'a;

/// Cache file of one measurement: per machine, graph, kernel build (a new build's
/// kernels time differently, so its measurements are not reused), SIMD level
/// in force (`WORKBENCH_SIMD=portable` times the portable kernels, which a run
/// on the best level must not reuse), backend, precision and batch.
pub fn cache_path(
    opts: &MeasureOptions,
    subject: &MeasureSubject,
    backend: BackendKind,
    precision: Precision,
    batch: usize,
) -> PathBuf {
    opts.cache_dir.join("measure").join(format!(
        "{}-{:016x}-k{}-{}-{}-{}-b{}.json",
        subject.hardware_fingerprint,
        subject.graph_fingerprint,
        workbench_kernels::SOURCE_ID,
        workbench_kernels::simd::detect().name(),
        backend,
        precision,
        batch
    ))
}

/// Removes the cached measurements of the autotuned backend on the graph of
/// `graph_fingerprint` (every machine, precision and batch; see
/// [`cache_path`]), so that the next run compiles the tiles `workbench tune`
/// has since found and times them. Returns how many were removed.
pub fn forget_autotuned(cache_dir: &Path, graph_fingerprint: u64) -> std::io::Result<usize> {
    let dir = cache_dir.join("measure");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let graph = format!("-{graph_fingerprint:016x}-k");
    let backend = format!("-{}-", BackendKind::Autotuned);
    let mut removed = 0;
    for entry in entries {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.contains(&graph) && name.contains(&backend) {
            std::fs::remove_file(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Measure every (config, batch), using the cache unless `opts.fresh`. Jobs not in
/// the cache share the budget: each gets what is left divided by the jobs left,
/// so quick jobs hand their unused time to the later ones. A job charges the time
/// its measurement took, also when it comes from the cache: a rerun on the same
/// cache and budget makes the same decisions. Compiling is charged the same
/// way: estimated before it starts ([`budget::compile_time`]), a configuration
/// whose compile would not fit what its batches' shares leave after their
/// calls is skipped, the rest is told how long it may take, and the time it
/// took is charged (and recorded with the measurement, for reruns).
///
/// Before a job starts, one call is estimated ([`budget`]); a job whose
/// warm-up and `reduced_samples` would not fit `max_overrun` times its share
/// is not started, nor are the larger batches of its configuration, and the
/// configuration is reported in `skipped` with the estimate. The first job
/// timed may use the whole budget, so that something is measured; when
/// nothing can be, the run fails with [`MeasureError::OverBudget`].
/// Configurations run cheapest first (so a slow one that outruns its estimate
/// delays no other), one compiled at a time; the outcome lists them in the
/// order given.
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
                    // A corrupted entry is a miss, as garbage JSON is; so is
                    // one whose body names another configuration than its
                    // file (a batch-1 timing read as batch 64).
                    .filter(|m| m.is_plausible(subject))
                    .filter(|m| (m.backend, m.precision, m.batch) == (backend, precision, batch))
                    // A full run does not settle for a quick run's figures.
                    .filter(|m| opts.quick || !m.quick)
                    .filter(|m| !worth_timing_again(m, opts, total))
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
    // Jobs not yet visited (from the cache or not), and the time charged so far.
    let mut remaining = total;
    let mut spent = Duration::ZERO;
    // The part of `spent` that went to compiling (for the reasons given).
    let mut compiling = Duration::ZERO;

    let smallest = batches.iter().copied().min().unwrap_or(1);
    let first_estimate = |ci: usize| {
        let (backend, precision) = configs[ci];
        budget::first_call(subject, backend, precision, smallest).map_or(0.0, |e| e.call_ns)
    };
    let mut order: Vec<usize> = (0..configs.len()).collect();
    order.sort_by(|&a, &b| first_estimate(a).total_cmp(&first_estimate(b)));

    let overrun = opts.harness.max_overrun.max(1.0);
    let calls_needed = 1.0 + opts.harness.reduced_samples as f64;
    let mut measured: Vec<(usize, usize, KernelMeasurement)> = Vec::new();
    let mut skipped: Vec<(usize, SkippedConfig)> = Vec::new();
    // The cheapest estimate among configurations that could not start at all.
    let mut cheapest_refused: Option<(BackendKind, Precision, usize, budget::Estimate, Duration)> =
        None;
    let mut position = 0;
    // Jobs timed in a first window, whose second comes after every job's first.
    let mut second_looks: Vec<SecondLook> = Vec::new();
    // Compiled workloads kept for their jobs' second windows, by configuration.
    let mut kept: Vec<(usize, Box<dyn Workload + '_>)> = Vec::new();
    let keep_at_most = if opts.harness.windows >= 2 {
        (KEPT_WEIGHT_BYTES / subject.weight_bytes.max(1.0)).floor() as usize
    } else {
        0
    };
    for ci in order {
        let (backend, precision) = configs[ci];
        let row = std::mem::take(&mut cached[ci]);
        let mut workload: Option<Box<dyn Workload + '_>> = None;
        let keep_alive = kept.len() < keep_at_most;
        // Whether a job of this configuration has a second window to come.
        let mut has_second_window = false;
        // (batch, median ns) of this configuration so far, for the next estimate.
        let mut known: Option<(usize, f64)> = None;
        let mut over_budget: Option<(Vec<usize>, String)> = None;
        // Compile time not yet recorded on a measurement (the next one timed carries it).
        let mut pending_compile_ms = 0.0;
        for (bi, (&batch, hit)) in batches.iter().zip(row).enumerate() {
            if opts.cancelled() {
                return Err(MeasureError::Cancelled);
            }
            // Jobs in the order they run (skipped ones count), so a gauge only moves forward.
            position += 1;
            let index = position;
            // The time kept for this job's second window, when it gets one.
            let mut second_window = None;
            let m = match hit {
                Some(m) => {
                    remaining = remaining.saturating_sub(1);
                    spent += charge(m.spent_ms) + charge(m.compile_ms);
                    compiling += charge(m.compile_ms);
                    m
                }
                None => {
                    if let Some((skipped_batches, _)) = over_budget.as_mut() {
                        skipped_batches.push(batch);
                        remaining = remaining.saturating_sub(1);
                        continue;
                    }
                    let left = opts.budget.saturating_sub(spent);
                    let share = left / u32::try_from(remaining.max(1)).unwrap_or(u32::MAX);
                    // The first job may have all that is left: a run must measure something.
                    let allowed = if measured.is_empty() {
                        left.mul_f64(overrun)
                    } else {
                        share.mul_f64(overrun)
                    };
                    let estimate = match known {
                        Some(k) => Some(budget::scaled_call(subject, backend, precision, batch, k)),
                        None => budget::first_call(subject, backend, precision, batch),
                    };
                    // The first job needs one call and may have all that is
                    // left; the others a warm-up call and `reduced_samples` in their share.
                    let first = measured.is_empty();
                    let (needed, samples, room) = if first {
                        (1.0, None, Room::Left(left))
                    } else {
                        (
                            calls_needed,
                            Some(opts.harness.reduced_samples),
                            Room::Share(share),
                        )
                    };
                    if let Some(e) = estimate
                        .clone()
                        .filter(|e| e.call_ns * needed > allowed.as_nanos() as f64)
                    {
                        let reason = refusal_reason(batch, &e, samples, room, overrun, compiling);
                        if known.is_none()
                            && cheapest_refused
                                .as_ref()
                                .is_none_or(|(_, _, _, c, _)| e.call_ns < c.call_ns)
                        {
                            cheapest_refused = Some((backend, precision, batch, e, allowed));
                        }
                        over_budget = Some((vec![batch], reason));
                        remaining = remaining.saturating_sub(1);
                        continue;
                    }
                    if workload.is_none() {
                        // Compiling is charged to the configuration: it may take
                        // what its batches' shares leave after their calls.
                        let calls_ns = estimate.as_ref().map_or(0.0, |e| e.call_ns * needed);
                        let batches_left = batches.len() - bi;
                        let config_allowed = if first {
                            left.mul_f64(overrun)
                        } else {
                            share
                                .mul_f64(overrun)
                                .saturating_mul(u32::try_from(batches_left).unwrap_or(1))
                        };
                        let compile_allowance = config_allowed
                            .saturating_sub(Duration::from_nanos(calls_ns.max(0.0) as u64));
                        if let Some(c) = budget::compile_time(subject, backend, precision)
                            .filter(|c| Duration::from_nanos(c.call_ns as u64) > compile_allowance)
                        {
                            let per_batch = if first {
                                String::new()
                            } else {
                                format!(" for each of its {batches_left} batch size(s) to go")
                            };
                            let calls = if estimate.is_some() {
                                format!(
                                    ", less {} for {}",
                                    budget::duration(calls_ns),
                                    calls_text(batch, samples)
                                )
                            } else {
                                String::new()
                            };
                            let reason = format!(
                                "compiling it would take about {} ({}), more than the {} it may take: {overrun}x {}{per_batch} ({}){calls}",
                                budget::duration(c.call_ns),
                                c.basis,
                                budget::duration(compile_allowance.as_nanos() as f64),
                                room.describe(),
                                budget::duration(config_allowed.as_nanos() as f64),
                            );
                            over_budget = Some((vec![batch], reason));
                            remaining = remaining.saturating_sub(1);
                            continue;
                        }
                        progress(MeasureProgress::Compiling { backend, precision });
                        let started = Instant::now();
                        let built = make_workload(backend, precision, compile_allowance)?;
                        let elapsed = started.elapsed();
                        progress(MeasureProgress::Compiled {
                            backend,
                            precision,
                            elapsed,
                        });
                        pending_compile_ms = elapsed.as_secs_f64() * 1e3;
                        learn_compile(opts, subject, backend, precision, elapsed, built.is_ok())?;
                        spent += charge(pending_compile_ms);
                        compiling += charge(pending_compile_ms);
                        match built {
                            Ok(w) => workload = Some(w),
                            Err(reason) => {
                                skip(
                                    progress,
                                    &mut skipped,
                                    ci,
                                    SkippedConfig {
                                        backend,
                                        precision,
                                        batches: Vec::new(),
                                        reason,
                                    },
                                );
                                remaining = remaining.saturating_sub(batches.len() - bi);
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
                    // Two windows when a full measurement fits half the share:
                    // the host's load moves for seconds at a time, so one
                    // window can be slowed throughout, and the same job
                    // timed later in the run is likely not.
                    let split = keep_alive
                        && estimate.as_ref().is_some_and(|e| {
                            e.call_ns * (1 + opts.harness.min_samples) as f64
                                <= share.as_nanos() as f64 / 2.0
                        });
                    let window = if split { share / 2 } else { share };
                    let timing = time_workload(
                        w.as_mut(),
                        batch,
                        window,
                        &opts.harness,
                        opts.cancel.as_deref(),
                    )?;
                    remaining = remaining.saturating_sub(1);
                    spent += charge(timing.spent_ms);
                    if split {
                        // Charged now, so the jobs after it share what is left.
                        let reserve = share.saturating_sub(window);
                        spent += reserve;
                        second_window = Some(reserve);
                        has_second_window = true;
                    }
                    let mut m = measurement(subject, backend, precision, batch, timing, opts);
                    m.compile_ms = std::mem::take(&mut pending_compile_ms);
                    m.tuning_cut_short = w.tuning_cut_short();
                    m.activation_bytes = w.activation_bytes();
                    m.program = w.program();
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
                median_ns: m.first_window_median(),
                from_cache: m.from_cache,
            });
            // The first window's figure, which is all the run that timed it
            // had at this point: a rerun from the cache estimates as it did.
            known = Some((batch, m.first_window_median()));
            measured.push((ci, bi, m));
            if let Some(reserve) = second_window {
                second_looks.push(SecondLook {
                    at: measured.len() - 1,
                    ci,
                    index,
                    reserve,
                });
            }
        }
        if let Some((batches, reason)) = over_budget {
            skip(
                progress,
                &mut skipped,
                ci,
                SkippedConfig {
                    backend,
                    precision,
                    batches,
                    reason,
                },
            );
        }
        // The compiled workload (the model's weights, packed) is dropped here,
        // before the next configuration is compiled, unless its jobs have
        // second windows to come.
        if let Some(mut w) = workload.take() {
            if has_second_window {
                kept.push((ci, w));
            } else {
                w.finish()?;
            }
        }
    }
    // Second windows in the reverse order, so a job's two windows lie apart.
    for look in second_looks.iter().rev() {
        if opts.cancelled() {
            return Err(MeasureError::Cancelled);
        }
        let Some((_, w)) = kept.iter_mut().find(|(ci, _)| *ci == look.ci) else {
            continue;
        };
        let (_, _, first) = &mut measured[look.at];
        let (backend, precision, batch) = (first.backend, first.precision, first.batch);
        progress(MeasureProgress::SecondWindow {
            index: look.index,
            total,
            backend,
            precision,
            batch,
        });
        let timing = time_workload(
            w.as_mut(),
            batch,
            look.reserve,
            &opts.harness,
            opts.cancel.as_deref(),
        )?;
        // The window stays charged at its reserve (already in `spent`, and
        // in what the measurement records), so that a rerun from the cache
        // charges each job as this run did and makes the same decisions.
        first.take_quieter(
            measurement(subject, backend, precision, batch, timing, opts),
            look.reserve,
        );
        cache::write_json_atomic(&cache_path(opts, subject, backend, precision, batch), first)?;
    }
    for (_, mut w) in kept {
        w.finish()?;
    }
    if measured.is_empty() {
        if let Some((backend, precision, batch, e, allowed)) = cheapest_refused {
            return Err(MeasureError::OverBudget(Box::new(OverBudget {
                workload: subject.workload.clone(),
                flops_per_sample: subject.flops_per_sample,
                batch,
                backend,
                precision,
                call_ns: e.call_ns,
                basis: e.basis,
                overrun,
                budget: allowed.div_f64(overrun),
            })));
        }
    }
    measured.sort_by_key(|&(ci, bi, _)| (ci, bi));
    skipped.sort_by_key(|(ci, _)| *ci);
    Ok(MeasureOutcome {
        measurements: measured.into_iter().map(|(_, _, m)| m).collect(),
        skipped: skipped.into_iter().map(|(_, s)| s).collect(),
        budget_used: spent,
    })
}

/// Most f32 weight bytes of the compiled configurations kept alive for their
/// jobs' second windows (a large model's configurations get one window each).
const KEPT_WEIGHT_BYTES: f64 = 256.0 * 1024.0 * 1024.0;

/// A job whose second window is still to come.
struct SecondLook {
    /// Its measurement in `measured`.
    at: usize,
    /// Its configuration.
    ci: usize,
    /// Its place in the run (for progress).
    index: usize,
    /// The part of its share kept for the window.
    reserve: Duration,
}

/// What a job may take: the first job all that is left of the budget, the
/// others their share of it.
#[derive(Debug, Clone, Copy)]
enum Room {
    Left(Duration),
    Share(Duration),
}

impl Room {
    fn duration(self) -> Duration {
        match self {
            Room::Left(d) | Room::Share(d) => d,
        }
    }

    /// "the 1.20 s left of the measurement budget", "its 19.5 ms share of the budget".
    fn describe(self) -> String {
        let ns = budget::duration(self.duration().as_nanos() as f64);
        match self {
            Room::Left(_) => format!("the {ns} left of the measurement budget"),
            Room::Share(_) => format!("its {ns} share of the budget"),
        }
    }
}

/// The calls a job needs: one for the first job (`samples` is `None`), else
/// a warm-up call and `samples`.
fn calls_text(batch: usize, samples: Option<usize>) -> String {
    match samples {
        None => format!("one call at batch {batch}"),
        Some(n) => format!(
            "a warm-up call and {} at batch {batch}",
            crate::report::format::count(n as u64, "sample")
        ),
    }
}

/// Why a job is not started, stating the two figures compared: the calls it
/// needs ([`calls_text`]) against `overrun` times its room.
fn refusal_reason(
    batch: usize,
    estimate: &budget::Estimate,
    samples: Option<usize>,
    room: Room,
    overrun: f64,
    compiling: Duration,
) -> String {
    let mut needed = format!(
        "one call at batch {batch} would take about {} ({})",
        budget::duration(estimate.call_ns),
        estimate.basis
    );
    if let Some(n) = samples {
        needed.push_str(&format!(
            ", so a warm-up call and {} would take about {}",
            crate::report::format::count(n as u64, "sample"),
            budget::duration(estimate.call_ns * (1 + n) as f64)
        ));
    }
    if room.duration().is_zero() && compiling.is_zero() {
        format!("{needed}, and the measurement budget is spent")
    } else if room.duration().is_zero() {
        format!(
            "{needed}, and the measurement budget is spent ({} of it compiling)",
            budget::duration(compiling.as_nanos() as f64)
        )
    } else {
        format!(
            "{needed}, more than {overrun}x {} ({})",
            room.describe(),
            budget::duration(room.duration().mul_f64(overrun).as_nanos() as f64)
        )
    }
}

/// Adds a compile's time to the rates the caller keeps (if it keeps them).
fn learn_compile(
    opts: &MeasureOptions,
    subject: &MeasureSubject,
    backend: BackendKind,
    precision: Precision,
    elapsed: Duration,
    built: bool,
) -> Result<(), MeasureError> {
    let Some(mut rates) = subject.compile_rates.clone().filter(|_| built) else {
        return Ok(());
    };
    let ns = elapsed.as_nanos() as f64;
    if rates.learn(backend, precision, subject.weight_bytes, ns) {
        let path = budget::compile_rates_path(&opts.cache_dir, &subject.hardware_fingerprint);
        // Another run's rates may have landed since this one read them.
        let mut latest: budget::CompileRates = cache::read_json(&path).unwrap_or_default();
        latest.learn(backend, precision, subject.weight_bytes, ns);
        cache::write_json_atomic(&path, &latest)?;
    }
    Ok(())
}

/// `ms` milliseconds as budget time (both when spent and when charged again
/// from the cache, so that the two add up to the same).
fn charge(ms: f64) -> Duration {
    Duration::from_secs_f64(ms.max(0.0) / 1e3)
}

/// Whether a cached measurement should be timed again: when this run's
/// budget is larger than the one that took it, and it was reduced and its
/// equal share of the budget fits a full measurement (a warm-up call and
/// `min_samples`), or its autotuning was cut short (the compile resumes it).
fn worth_timing_again(m: &KernelMeasurement, opts: &MeasureOptions, jobs: usize) -> bool {
    let budget_ms = opts.budget.as_secs_f64() * 1e3;
    let share_ns =
        opts.budget.as_nanos() as f64 / jobs.max(1) as f64 * opts.harness.max_overrun.max(1.0);
    let full_fits = m.stats.median_ns * (1 + opts.harness.min_samples) as f64 <= share_ns;
    budget_ms > m.budget_ms && ((m.reduced && full_fits) || m.tuning_cut_short)
}

fn measurement(
    subject: &MeasureSubject,
    backend: BackendKind,
    precision: Precision,
    batch: usize,
    timing: Timing,
    opts: &MeasureOptions,
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
        reduced: timing.reduced,
        spent_ms: timing.spent_ms,
        compile_ms: 0.0,
        budget_ms: opts.budget.as_secs_f64() * 1e3,
        tuning_cut_short: false,
        first_window_median_ns: None,
        second_window_median_ns: None,
        gflops,
        fraction_of_peak,
        hardware_fingerprint: subject.hardware_fingerprint.clone(),
        graph_fingerprint: subject.graph_fingerprint,
        from_cache: false,
        activation_bytes: None,
        program: None,
        quick: opts.quick,
    }
}
