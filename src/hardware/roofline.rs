//! This machine's roofline: peak f32 and int8 throughput of one core and the
//! memory bandwidth at each cache level, from short probes (about 2 s in all),
//! cached on disk keyed by the hardware fingerprint.

use super::probe::LocalHardware;
use super::target::{TargetKind, TargetSpec};
use crate::measure::cache::{self, CacheError};
use serde::{Deserialize, Serialize};
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};
use workbench_kernels::probe::{self as kprobe, Int8Path, SimdPath};
use workbench_kernels::{OpCost, Precision};

/// Peak throughput of one SIMD path, one core.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathPeak {
    pub path: String,
    /// GFLOP/s (f32) or G ops/s (int8).
    pub giga_per_s: f64,
}

/// Bandwidth of one core at one working-set size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelBandwidth {
    /// `L1`, `L2`, `L3` or `DRAM`.
    pub level: String,
    pub working_set_bytes: u64,
    /// Size of the cache at this level (0 for DRAM: unbounded).
    #[serde(default)]
    pub capacity_bytes: u64,
    /// Sum of a buffer (4 bytes per element).
    pub read_gbs: f64,
    /// `dst = src` (8 bytes per element: read + write).
    pub copy_gbs: f64,
    /// `a = b + s * c` (12 bytes per element).
    pub triad_gbs: f64,
}

/// This machine's roofline. Throughputs are single-thread: the backends are
/// timed on one thread, and the projection compares like with like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Roofline {
    pub hardware_fingerprint: String,
    /// Best f32 path, GFLOP/s on one core.
    pub peak_gflops_f32: f64,
    /// Best int8 path, G ops/s on one core (a multiply-add counts as 2).
    pub peak_gops_int8: f64,
    pub f32_by_path: Vec<PathPeak>,
    pub int8_by_path: Vec<PathPeak>,
    /// L1, L2, L3, DRAM, in that order.
    pub bandwidth: Vec<LevelBandwidth>,
    /// Sustained DRAM bandwidth used by the projection: the DRAM copy figure.
    pub dram_gbs: f64,
    /// Cores of this machine (the single-core peaks above do not multiply by it).
    pub cores: u32,
    pub memory_bytes: u64,
    /// Wall time the probe took.
    pub probe_ms: f64,
}

/// Most operations (GFLOP/s, G int8 ops/s) or bytes (GB/s) per second one
/// core is believed to reach, here or in a cache entry: 100 T, about 60 times
/// the fastest figure a core reaches today (a Zen 4 core's AVX-512 VNNI int8
/// peak is about 1.5 T ops/s, its f32 peak 0.4 TFLOP/s, its L1 about 1 TB/s).
pub const MAX_PLAUSIBLE_GIGA_PER_S: f64 = 1e5;

#[derive(Debug, thiserror::Error)]
pub enum RooflineError {
    #[error(transparent)]
    Cache(#[from] CacheError),
}

/// How long each probe runs; `quick` is for tests.
#[derive(Debug, Clone, Copy)]
pub struct ProbeOptions {
    /// Time spent on each (path or level x kernel) probe.
    pub per_probe: Duration,
}

impl Default for ProbeOptions {
    /// 3 f32 + 3 int8 paths + 4 levels x 3 kernels = 18 probes x ~100 ms ≈ 2 s.
    fn default() -> Self {
        ProbeOptions {
            per_probe: Duration::from_millis(100),
        }
    }
}

impl ProbeOptions {
    pub fn quick() -> Self {
        ProbeOptions {
            per_probe: Duration::from_millis(10),
        }
    }
}

impl Roofline {
    /// A machine known only by its peaks and its DRAM bandwidth: one core, no
    /// cache levels or per-path figures, no memory size (tests and estimates).
    pub fn flat(
        hardware_fingerprint: &str,
        peak_gflops_f32: f64,
        peak_gops_int8: f64,
        dram_gbs: f64,
    ) -> Roofline {
        Roofline {
            hardware_fingerprint: hardware_fingerprint.to_string(),
            peak_gflops_f32,
            peak_gops_int8,
            f32_by_path: Vec::new(),
            int8_by_path: Vec::new(),
            bandwidth: Vec::new(),
            dram_gbs,
            cores: 1,
            memory_bytes: 0,
            probe_ms: 0.0,
        }
    }

    /// Run every probe now (no cache).
    pub fn probe(hw: &LocalHardware, opts: ProbeOptions) -> Roofline {
        Roofline::probe_noting_clamps(hw, opts).0
    }

    /// [`Roofline::probe`], also returning the bandwidth figures the
    /// plausibility guard raised ([`clamp_to_next_level`]): a probe that
    /// still came out below the next larger level's.
    pub fn probe_noting_clamps(
        hw: &LocalHardware,
        opts: ProbeOptions,
    ) -> (Roofline, Vec<BandwidthClamp>) {
        let start = Instant::now();
        let mut f32_by_path = Vec::new();
        for path in SimdPath::ALL {
            if !path.is_available() {
                continue;
            }
            let per_iter = kprobe::fma_flops_per_iter(path);
            let rate = best_rate(opts.per_probe, |iters| {
                black_box(kprobe::fma_f32(path, iters));
                per_iter * iters as f64
            });
            f32_by_path.push(PathPeak {
                path: path.name().to_string(),
                giga_per_s: rate / 1e9,
            });
        }
        let mut int8_by_path = Vec::new();
        for path in Int8Path::ALL {
            if !path.is_available() {
                continue;
            }
            let per_iter = kprobe::dot_i8_ops_per_iter(path);
            let rate = best_rate(opts.per_probe, |iters| {
                black_box(kprobe::dot_i8(path, iters));
                per_iter * iters as f64
            });
            int8_by_path.push(PathPeak {
                path: path.name().to_string(),
                giga_per_s: rate / 1e9,
            });
        }
        let mut bandwidth = working_sets(hw)
            .into_iter()
            .map(|(level, bytes)| {
                let mut b = measure_level(level, bytes, opts.per_probe);
                b.capacity_bytes = match level {
                    "L1" => hw.cache_bytes(1).unwrap_or(0),
                    "L2" => hw.cache_bytes(2).unwrap_or(0),
                    "L3" => hw.cache_bytes(3).unwrap_or(0),
                    _ => 0,
                };
                b
            })
            .collect::<Vec<_>>();
        let clamps = clamp_to_next_level(&mut bandwidth);
        let best = |v: &[PathPeak]| v.iter().map(|p| p.giga_per_s).fold(0.0, f64::max);
        let dram_gbs = bandwidth.last().map(|b| b.copy_gbs).unwrap_or(0.0);
        let roofline = Roofline {
            hardware_fingerprint: hw.fingerprint.clone(),
            peak_gflops_f32: best(&f32_by_path),
            peak_gops_int8: best(&int8_by_path),
            f32_by_path,
            int8_by_path,
            bandwidth,
            dram_gbs,
            cores: hw.physical_cores,
            memory_bytes: hw.memory_bytes,
            probe_ms: start.elapsed().as_secs_f64() * 1e3,
        };
        (roofline, clamps)
    }

    /// The cached roofline for `hw` under `cache_dir`, probing (and caching) when
    /// there is none or `fresh` is set. Returns the roofline and whether it came from the cache.
    pub fn load_or_probe(
        hw: &LocalHardware,
        cache_dir: &Path,
        fresh: bool,
        opts: ProbeOptions,
    ) -> Result<(Roofline, bool), RooflineError> {
        let path = cache_dir.join(format!("roofline-{}.json", hw.fingerprint));
        if !fresh {
            if let Some(cached) = cache::read_json::<Roofline>(&path) {
                // A corrupted entry (a zero or absurd peak) is probed again, as garbage JSON is.
                if cached.hardware_fingerprint == hw.fingerprint && cached.is_plausible() {
                    return Ok((cached, true));
                }
            }
        }
        let roofline = Roofline::probe(hw, opts);
        cache::write_json_atomic(&path, &roofline)?;
        Ok((roofline, false))
    }

    /// Whether these figures could come from the probes: the f32 peak and the
    /// DRAM bandwidth finite and above zero, every peak and bandwidth finite,
    /// not negative and at most [`MAX_PLAUSIBLE_GIGA_PER_S`], and no level
    /// slower than the next larger one (what [`clamp_to_next_level`] ensures;
    /// entries cached by the older probe, whose L2 copy fell below DRAM, fail
    /// this and are probed again).
    pub fn is_plausible(&self) -> bool {
        let at_most_bound = |x: f64| x.is_finite() && (0.0..=MAX_PLAUSIBLE_GIGA_PER_S).contains(&x);
        let positive = |x: f64| at_most_bound(x) && x > 0.0;
        let paths = self.f32_by_path.iter().chain(&self.int8_by_path);
        let levels = self.bandwidth.iter();
        positive(self.peak_gflops_f32)
            && positive(self.dram_gbs)
            && at_most_bound(self.peak_gops_int8)
            && paths.map(|p| p.giga_per_s).all(at_most_bound)
            && levels
                .flat_map(|b| [b.read_gbs, b.copy_gbs, b.triad_gbs])
                .all(at_most_bound)
            && self.bandwidth.windows(2).all(|pair| {
                let (smaller, larger) = (kernel_figures(&pair[0]), kernel_figures(&pair[1]));
                smaller.iter().zip(larger).all(|(s, l)| *s >= l)
            })
    }

    /// Bandwidth figure (copy) at `level` (`L1`, `L2`, `L3`, `DRAM`).
    pub fn bandwidth_gbs(&self, level: &str) -> Option<f64> {
        self.bandwidth
            .iter()
            .find(|b| b.level == level)
            .map(|b| b.copy_gbs)
    }

    /// Bandwidth (copy, GB/s) of the smallest level that holds `bytes`
    /// (DRAM when none does, or when the levels are unknown).
    pub fn bandwidth_for_footprint(&self, bytes: u64) -> f64 {
        self.cache_for_footprint(bytes)
            .map_or(self.dram_gbs, |level| level.copy_gbs)
    }

    /// The cache level that holds `bytes` (the smallest that does), if it has
    /// a measured bandwidth.
    pub fn cache_for_footprint(&self, bytes: u64) -> Option<&LevelBandwidth> {
        self.bandwidth
            .iter()
            .find(|b| b.capacity_bytes > 0 && bytes <= b.capacity_bytes)
            .filter(|b| b.copy_gbs > 0.0)
    }

    /// Name of the memory level a working set of `bytes` streams from: the
    /// cache that holds it ([`Roofline::cache_for_footprint`]), else `DRAM`.
    pub fn level_for_footprint(&self, bytes: u64) -> &str {
        self.cache_for_footprint(bytes)
            .map_or(DRAM, |level| level.level.as_str())
    }

    /// The largest cache level with a measured bandwidth (L3 here), if any.
    pub fn largest_cache(&self) -> Option<&LevelBandwidth> {
        self.bandwidth
            .iter()
            .filter(|b| b.capacity_bytes > 0 && b.copy_gbs > 0.0)
            .max_by_key(|b| b.capacity_bytes)
    }

    /// Compute peak (G ops/s) this machine reaches at `precision` on one core:
    /// int8 uses the int8 path, f16/bf16 are computed in f32.
    pub fn compute_peak(&self, precision: Precision) -> f64 {
        match precision {
            Precision::Int8 if self.peak_gops_int8 > 0.0 => self.peak_gops_int8,
            _ => self.peak_gflops_f32,
        }
    }

    /// This machine as a projection target with the single-core figures: projecting
    /// onto it must return the measured times (the identity projection).
    pub fn as_target(&self, name: &str) -> TargetSpec {
        TargetSpec {
            name: name.to_string(),
            kind: TargetKind::Edge,
            cores: 1,
            threads_per_core: 1,
            memory_bytes: self.memory_bytes,
            peak_gflops_f32: self.peak_gflops_f32,
            peak_gops_int8: self.peak_gops_int8,
            mem_bandwidth_gbs: self.dram_gbs,
            cache_bytes: self.largest_cache().map_or(0, |level| level.capacity_bytes),
            precisions: Precision::ALL.to_vec(),
            usd_per_hour: 0.0,
            cold_start_ms: 0.0,
            power_watts: 0.0,
            idle_power_watts: 0.0,
            // One core: nothing runs in parallel.
            parallel_overhead_us: 0.0,
            fastest_core_speedup: None,
            source: "measured on this machine by the roofline probe".to_string(),
        }
    }
}

/// Name of main memory among the levels.
pub const DRAM: &str = "DRAM";

/// Bytes one call of a program (`ops`: its costs at one batch) keeps in use,
/// as the projection counts footprints (`hardware::project`, step 1): all of
/// the model's weights, read by every call, plus the largest op's activations
/// (`bytes - weight_bytes`), at the widths the backend stores them. The
/// call's bytes all come from a cache only when this fits it.
pub fn call_working_set_bytes(ops: &[OpCost]) -> u64 {
    let weights: f64 = ops.iter().map(|op| op.weight_bytes.max(0.0)).sum();
    let activations = ops
        .iter()
        .map(|op| (op.bytes - op.weight_bytes).max(0.0))
        .fold(0.0, f64::max);
    // NaNs were dropped by `max`; the cast saturates, so an infinite sum fits no cache.
    (weights + activations).ceil() as u64
}

/// Working-set sizes that sit in each level: half of L1 and L2 (room for the
/// rest of the process), a quarter of a shared L3, and DRAM at twice L3 (at least 64 MiB).
pub fn working_sets(hw: &LocalHardware) -> Vec<(&'static str, u64)> {
    let l1 = hw.cache_bytes(1).unwrap_or(32 << 10);
    let l2 = hw.cache_bytes(2).unwrap_or(1 << 20);
    let l3 = hw.cache_bytes(3).unwrap_or(32 << 20);
    vec![
        ("L1", l1 / 2),
        ("L2", l2 / 2),
        ("L3", (l3 / 4).max(l2 * 2)),
        (DRAM, (l3 * 2).max(64 << 20)),
    ]
}

/// Names of the bandwidth kernels, in the order of [`kernel_figures`].
const KERNELS: [&str; 3] = ["read", "copy", "triad"];

/// A level's read, copy and triad figures (GB/s).
fn kernel_figures(level: &LevelBandwidth) -> [f64; 3] {
    [level.read_gbs, level.copy_gbs, level.triad_gbs]
}

fn kernel_figures_mut(level: &mut LevelBandwidth) -> [&mut f64; 3] {
    [
        &mut level.read_gbs,
        &mut level.copy_gbs,
        &mut level.triad_gbs,
    ]
}

/// A bandwidth figure the plausibility guard raised to the next larger level's.
#[derive(Debug, Clone, PartialEq)]
pub struct BandwidthClamp {
    /// Level whose figure was raised (`L2`).
    pub level: String,
    /// `read`, `copy` or `triad`.
    pub kernel: &'static str,
    pub measured_gbs: f64,
    /// The next larger level (`L3`), whose figure it now has.
    pub next_level: String,
    pub clamped_gbs: f64,
}

impl std::fmt::Display for BandwidthClamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} bandwidth measured {:.1} GB/s, below {}'s {:.1} GB/s: using {:.1} GB/s",
            self.level,
            self.kernel,
            self.measured_gbs,
            self.next_level,
            self.clamped_gbs,
            self.clamped_gbs
        )
    }
}

/// Plausibility guard: a smaller level (ordered smallest first, as the probe
/// lists them) is never slower than the next larger one, which it fronts. A
/// figure that still comes out below is a probe artefact (the old `memcpy`
/// copy put L2 below DRAM), not the hardware: it is raised to the next level's
/// figure, which the level can always deliver, and returned so callers can say so.
/// Works from the largest level down, so a raised figure propagates (L1 is
/// compared with L2's figure after L2's own clamp).
pub fn clamp_to_next_level(levels: &mut [LevelBandwidth]) -> Vec<BandwidthClamp> {
    // One list per level, largest first; returned smallest level first.
    let mut clamps_by_level = Vec::new();
    for smaller in (0..levels.len().saturating_sub(1)).rev() {
        let mut clamps = Vec::new();
        let (head, tail) = levels.split_at_mut(smaller + 1);
        let (level, next) = (&mut head[smaller], &tail[0]);
        let level_name = level.level.clone();
        let figures = KERNELS.into_iter().zip(kernel_figures_mut(level));
        for ((kernel, gbs), next_gbs) in figures.zip(kernel_figures(next)) {
            if next_gbs.is_finite() && (gbs.is_nan() || *gbs < next_gbs) {
                clamps.push(BandwidthClamp {
                    level: level_name.clone(),
                    kernel,
                    measured_gbs: *gbs,
                    next_level: next.level.clone(),
                    clamped_gbs: next_gbs,
                });
                *gbs = next_gbs;
            }
        }
        clamps_by_level.push(clamps);
    }
    clamps_by_level.into_iter().rev().flatten().collect()
}

/// Bytes between the page offsets of consecutive buffers from [`staggered_buffers`].
/// Buffers at the same offset modulo 4 KiB make the CPU's store-to-load
/// check (which compares address bits 0-11) see false dependencies, and
/// glibc's `rep movsb` copy slowed about 20-fold when `dst` sat 16 bytes
/// above `src` modulo 4 KiB, as two `Vec`s of the same size usually do.
fn page_stagger_bytes(count: usize) -> usize {
    // An odd number of cache lines between each pair, well apart within the page.
    let spacing = 4096 / count.max(1);
    (spacing / 64) * 64 + 64
}

/// f32 per 64-byte cache line.
const LINE_ELEMS: usize = 64 / 4;

/// `count` buffers of `len` f32 in one allocation, filled with `fill`, each
/// starting on a cache line (a vector load that straddles two lines halves
/// L1 read bandwidth on Zen 3, and `malloc` only promises 16 bytes) and at a
/// distinct page offset ([`page_stagger_bytes`] apart): the allocation and
/// the start of each buffer in it.
fn staggered_buffers(len: usize, count: usize, fill: f32) -> (Vec<f32>, Vec<usize>) {
    let stagger_elems = page_stagger_bytes(count) / 4;
    let page_elems = 4096 / 4;
    let gaps = count * page_elems + LINE_ELEMS;
    let mut block = vec![fill; count * len + gaps];
    // `align_offset` may in principle decline (usize::MAX); any start then still works.
    let first = block.as_ptr().align_offset(64).min(LINE_ELEMS - 1);
    let mut starts = Vec::with_capacity(count);
    let mut next = first;
    for k in 0..count {
        starts.push(next);
        // The following buffer starts past this one, k + 1 staggers from the
        // first modulo a page.
        let end = next + len;
        let want = ((k + 1) * stagger_elems) % page_elems;
        let from_first = (end - first) % page_elems;
        next = end + (want + page_elems - from_first) % page_elems;
    }
    block.truncate(starts.last().map_or(0, |s| s + len));
    (block, starts)
}

fn measure_level(level: &str, working_set: u64, budget: Duration) -> LevelBandwidth {
    let elems = usize::try_from(working_set / 4)
        .unwrap_or(usize::MAX)
        .max(64);
    // read: one buffer of the whole working set.
    let (block, starts) = staggered_buffers(elems, 1, 1.0);
    let read_buf = &block[starts[0]..starts[0] + elems];
    let read_gbs = best_rate(budget, |reps| {
        for _ in 0..reps {
            black_box(kprobe::read_sum(black_box(read_buf)));
        }
        (reps as usize * elems * 4) as f64
    }) / 1e9;
    drop(block);
    // copy: two buffers sharing the working set, at different page offsets.
    let half = (elems / 2).max(16);
    let (mut block, starts) = staggered_buffers(half, 2, 1.0);
    let (src, rest) = block.split_at_mut(starts[1]);
    let (src, dst) = (&src[..half], &mut rest[..half]);
    let copy_gbs = best_rate(budget, |reps| {
        let mut n = 0;
        for _ in 0..reps {
            n += kprobe::copy(black_box(&mut *dst), black_box(src));
        }
        (n * 8) as f64
    }) / 1e9;
    drop(block);
    // triad: three buffers sharing the working set, at different page offsets.
    let third = (elems / 3).max(16);
    let (mut block, starts) = staggered_buffers(third, 3, 1.0);
    let (bc, a) = block.split_at_mut(starts[2]);
    let (b, c) = bc.split_at(starts[1]);
    let (a, b, c) = (&mut a[..third], &b[..third], &c[..third]);
    let triad_gbs = best_rate(budget, |reps| {
        let mut n = 0;
        for _ in 0..reps {
            n += kprobe::triad(black_box(&mut *a), black_box(b), black_box(c), 0.5);
        }
        (n * 12) as f64
    }) / 1e9;
    LevelBandwidth {
        level: level.to_string(),
        working_set_bytes: working_set,
        capacity_bytes: 0,
        read_gbs,
        copy_gbs,
        triad_gbs,
    }
}

/// Best rate (work units per second) of `run(reps)` (which returns the work it did)
/// over `budget`: reps are doubled until one run lasts 0.5 ms, then repeated; the
/// fastest run wins (a peak probe wants the undisturbed figure, and short runs
/// have a better chance of escaping preemption on a shared machine).
fn best_rate(budget: Duration, mut run: impl FnMut(u64) -> f64) -> f64 {
    const MIN_RUN: Duration = Duration::from_micros(500);
    let start = Instant::now();
    let mut reps: u64 = 1;
    let mut best = 0.0f64;
    loop {
        let t = Instant::now();
        let work = run(reps);
        let elapsed = t.elapsed();
        if elapsed >= MIN_RUN || reps >= 1 << 40 {
            best = best.max(work / elapsed.as_secs_f64().max(1e-9));
            if start.elapsed() >= budget {
                return best;
            }
        } else {
            reps = reps.saturating_mul(2);
            if start.elapsed() >= budget * 4 {
                return best.max(work / elapsed.as_secs_f64().max(1e-9));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_sets_grow_by_level() {
        let hw = LocalHardware::detect();
        let ws = working_sets(&hw);
        assert_eq!(
            ws.iter().map(|w| w.0).collect::<Vec<_>>(),
            ["L1", "L2", "L3", "DRAM"]
        );
        assert!(ws.windows(2).all(|w| w[0].1 < w[1].1), "{ws:?}");
    }

    /// An op moving `bytes`, `weight_bytes` of them weights (the other
    /// fields at their defaults).
    fn op(bytes: f64, weight_bytes: f64) -> OpCost {
        serde_json::from_value(serde_json::json!({
            "name": "op", "kind": "matmul", "flops": 1.0,
            "bytes": bytes, "weight_bytes": weight_bytes,
        }))
        .unwrap()
    }

    #[test]
    fn a_call_keeps_every_weight_and_the_largest_activations() {
        // Weights 600 + 300; activations 100 and 500: 900 + 500.
        let ops = [op(700.0, 600.0), op(800.0, 300.0)];
        assert_eq!(call_working_set_bytes(&ops), 1400);
        assert_eq!(call_working_set_bytes(&[]), 0);
    }

    #[test]
    fn a_footprint_streams_from_the_smallest_level_holding_it() {
        let mut machine = Roofline::flat("test", 100.0, 400.0, 20.0);
        for (level, capacity, gbs) in [("L1", 32 << 10, 200.0), ("L2", 1 << 20, 100.0)] {
            machine.bandwidth.push(LevelBandwidth {
                level: level.to_string(),
                working_set_bytes: capacity / 2,
                capacity_bytes: capacity,
                read_gbs: gbs,
                copy_gbs: gbs,
                triad_gbs: gbs,
            });
        }
        assert_eq!(machine.level_for_footprint(32 << 10), "L1");
        assert_eq!(machine.level_for_footprint((32 << 10) + 1), "L2");
        assert_eq!(machine.level_for_footprint((1 << 20) + 1), DRAM);
        assert_eq!(
            Roofline::flat("test", 1.0, 1.0, 1.0).level_for_footprint(0),
            DRAM
        );
    }

    /// A level with the given read, copy and triad figures (GB/s).
    fn level(name: &str, read: f64, copy: f64, triad: f64) -> LevelBandwidth {
        LevelBandwidth {
            level: name.to_string(),
            working_set_bytes: 1024,
            capacity_bytes: 0,
            read_gbs: read,
            copy_gbs: copy,
            triad_gbs: triad,
        }
    }

    /// The shape six probes of this machine cached before the fix (GB/s):
    /// read flat across the caches, L1 and L2 copy below DRAM.
    fn review_levels() -> Vec<LevelBandwidth> {
        vec![
            level("L1", 33.1, 4.0, 66.6),
            level("L2", 37.6, 5.9, 98.8),
            level("L3", 36.2, 54.6, 73.4),
            level(DRAM, 10.8, 12.5, 16.7),
        ]
    }

    #[test]
    fn the_guard_raises_a_level_below_the_next_one_and_says_so() {
        let mut levels = review_levels();
        let clamps = clamp_to_next_level(&mut levels);
        let figures: Vec<[f64; 3]> = levels.iter().map(kernel_figures).collect();
        assert_eq!(
            figures,
            [
                // L1 read and triad take L2's; L1 copy takes L2's raised figure (L3's).
                [37.6, 54.6, 98.8],
                [37.6, 54.6, 98.8],
                [36.2, 54.6, 73.4],
                [10.8, 12.5, 16.7],
            ]
        );
        let said: Vec<(&str, &str, f64, &str, f64)> = clamps
            .iter()
            .map(|c| {
                let (level, next) = (c.level.as_str(), c.next_level.as_str());
                (level, c.kernel, c.measured_gbs, next, c.clamped_gbs)
            })
            .collect();
        assert_eq!(
            said,
            [
                ("L1", "read", 33.1, "L2", 37.6),
                ("L1", "copy", 4.0, "L2", 54.6),
                ("L1", "triad", 66.6, "L2", 98.8),
                ("L2", "copy", 5.9, "L3", 54.6),
            ]
        );
        assert!(clamps[3]
            .to_string()
            .contains("L2 copy bandwidth measured 5.9 GB/s"));
        // Already monotonic: nothing to say, nothing changed.
        let before = levels.clone();
        assert!(clamp_to_next_level(&mut levels).is_empty());
        assert_eq!(levels, before);
        // A NaN figure is raised; a NaN next level raises nothing.
        let mut odd = vec![
            level("L1", f64::NAN, 9.0, 9.0),
            level("L2", 5.0, f64::NAN, 5.0),
        ];
        let clamps = clamp_to_next_level(&mut odd);
        assert_eq!(clamps.len(), 1);
        assert_eq!(kernel_figures(&odd[0]), [5.0, 9.0, 9.0]);
        assert!(clamp_to_next_level(&mut []).is_empty());
    }

    #[test]
    fn a_roofline_with_a_cache_slower_than_dram_is_not_plausible() {
        // So entries cached by the old probe are probed again.
        let mut machine = Roofline::flat("test", 100.0, 400.0, 12.5);
        machine.bandwidth = review_levels();
        assert!(!machine.is_plausible());
        clamp_to_next_level(&mut machine.bandwidth);
        assert!(machine.is_plausible(), "{machine:?}");
    }

    #[test]
    fn a_probed_roofline_is_plausible_and_monotonic() {
        let machine = Roofline::probe(&LocalHardware::detect(), ProbeOptions::quick());
        assert!(machine.is_plausible(), "{machine:?}");
        assert_eq!(machine.bandwidth.len(), 4);
        let copy = machine
            .bandwidth
            .iter()
            .map(|b| b.copy_gbs)
            .collect::<Vec<_>>();
        assert!(copy.windows(2).all(|w| w[0] >= w[1]), "{copy:?}");
    }

    #[test]
    fn staggered_buffers_are_disjoint_at_distinct_page_offsets() {
        for (len, count) in [
            (16, 2),
            (1000, 2),
            (32768, 2),
            (16, 3),
            (43690, 3),
            (1024, 3),
        ] {
            let (block, starts) = staggered_buffers(len, count, 1.5);
            assert_eq!(starts.len(), count);
            assert!(block.iter().all(|&x| x == 1.5));
            assert_eq!(starts.last().map(|s| s + len), Some(block.len()));
            let line = |start: usize| block[start..].as_ptr() as usize % 64;
            assert!(starts.iter().all(|&s| line(s) == 0), "{starts:?}");
            // Disjoint, in order, and each at its own offset within a 4 KiB page
            // relative to the first, at least a cache line from the others'.
            assert!(starts.windows(2).all(|w| w[0] + len <= w[1]), "{starts:?}");
            let offsets: Vec<usize> = starts.iter().map(|s| s * 4 % 4096).collect();
            for (i, a) in offsets.iter().enumerate() {
                for b in &offsets[i + 1..] {
                    let apart = a.abs_diff(*b).min(4096 - a.abs_diff(*b));
                    assert!(apart >= 64, "len {len}: offsets {offsets:?}");
                }
            }
        }
    }

    #[test]
    fn best_rate_reports_work_per_second() {
        // 1 unit per rep, each rep sleeping 1 ms: at most 1000 units/s.
        let rate = best_rate(Duration::from_millis(20), |reps| {
            for _ in 0..reps {
                std::thread::sleep(Duration::from_millis(1));
            }
            reps as f64
        });
        assert!(rate > 100.0 && rate <= 1000.0, "{rate}");
    }
}
