//! What the planner knows about compute: latency by batch size of each compiled
//! configuration on each target, and each configuration's accuracy.

use std::collections::BTreeMap;

use workbench_kernels::{BackendKind, Precision};

use crate::hardware::project::Infeasible;
use crate::report::FigureSource;
use crate::sim::{interpolate_profile, lognormal_params, LatencyFit, ProfilePoint, Z99};

/// Latency of one (model variant, backend, precision) on one target, by batch size.
#[derive(Debug, Clone, PartialEq)]
pub struct ComputeProfile {
    pub variant: String,
    pub backend: BackendKind,
    pub precision: Precision,
    pub target: String,
    /// Timed on this machine, or projected onto `target`.
    pub source: FigureSource,
    /// Sorted by batch size; seconds per batch.
    pub points: Vec<ProfilePoint>,
    /// Why the configuration cannot run on the target (memory, precision); `None` if it can.
    pub infeasible: Option<Infeasible>,
}

impl ComputeProfile {
    /// Median seconds for one batch of `batch` requests (interpolated between measured sizes).
    pub fn median_s(&self, batch: u32) -> f64 {
        interpolate_profile(&self.points, batch).median_s
    }

    /// 99th-percentile seconds for one batch of `batch` requests (interpolated).
    pub fn p99_s(&self, batch: u32) -> f64 {
        interpolate_profile(&self.points, batch).p99_s
    }

    /// Predictions per second one replica sustains with full batches of `batch`.
    pub fn capacity_per_s(&self, batch: u32) -> f64 {
        let t = self.median_s(batch);
        if t > 0.0 {
            f64::from(batch) / t
        } else {
            f64::INFINITY
        }
    }

    /// The profile of requests that each need `k` predictions: a batch of `r`
    /// requests runs `r * k` samples, see [`ComputeProfile::samples`].
    pub fn per_request(&self, k: u64) -> ComputeProfile {
        if k <= 1 {
            return self.clone();
        }
        let points = self
            .points
            .iter()
            .map(|p| {
                let fit = self.samples(u64::from(p.batch_size).saturating_mul(k));
                ProfilePoint {
                    batch_size: p.batch_size,
                    median_s: fit.median_s,
                    p99_s: fit.p99_s,
                }
            })
            .collect();
        ComputeProfile {
            points,
            ..self.clone()
        }
    }

    /// How [`Self::samples`] runs `n` samples beyond the largest measured
    /// batch: `(b*, ceil(n / b*))`, chunks of the most efficient batch `b*`;
    /// `None` up to the largest batch (one run of `n`).
    pub fn runs_for(&self, n: u64) -> Option<(u32, u64)> {
        if n <= u64::from(self.largest_batch()) {
            return None;
        }
        let best = self.most_efficient_batch(|_| true).max(1);
        Some((best, n.div_ceil(u64::from(best))))
    }

    /// Seconds to run `n` samples: one batch (interpolated) up to the
    /// largest measured batch; beyond it, as `m = ceil(n / b*)` chunks of the
    /// most efficient measured batch `b*`, as a device or server runs a
    /// request of 5,000 photos (extrapolating the last measured segment,
    /// often the least efficient step, charged its slope to every sample).
    /// The chunks are independent runs, so their sum is summarised by
    /// `sum_of_independent_runs`: its spread grows as `sqrt(m)`, not `m`
    /// (charging `m x p99` assumed every chunk slow at once).
    /// Never less than the largest batch takes (fewer samples): chunks of a
    /// `b*` below it would otherwise undercut it, and time fall as `n` grows.
    pub fn samples(&self, n: u64) -> LatencyFit {
        let Some((best, chunks)) = self.runs_for(n) else {
            // At most the largest batch: one run.
            return interpolate_profile(&self.points, u32::try_from(n).unwrap_or(u32::MAX));
        };
        let chunk = interpolate_profile(&self.points, best);
        let sum = sum_of_independent_runs(&chunk, chunks);
        let floor = interpolate_profile(&self.points, self.largest_batch());
        LatencyFit {
            median_s: sum.median_s.max(floor.median_s),
            p99_s: sum.p99_s.max(floor.p99_s),
        }
    }

    /// No batch slower than a larger one: a smaller batch can always run
    /// padded to the larger size, so its time is at most the larger's. On a
    /// busy machine a batch of 1 timed during interference can come out
    /// slower than a batch of 8 timed in a quiet moment (a reviewer saw a
    /// phone's int8 batch 1 projected at 31 ms, batch 8 at 22 ms); the
    /// planner takes the larger batch's time for it. `points` sorted by batch.
    pub fn never_slower_than_a_larger_batch(points: &mut [ProfilePoint]) {
        let (mut median, mut p99) = (f64::INFINITY, f64::INFINITY);
        for p in points.iter_mut().rev() {
            median = median.min(p.median_s);
            p99 = p99.min(p.p99_s.max(median));
            p.median_s = median;
            p.p99_s = p99;
        }
    }

    /// The largest batch size measured.
    pub fn largest_batch(&self) -> u32 {
        self.points.last().map_or(1, |p| p.batch_size)
    }

    /// The measured batch size with the most inputs per second among those
    /// `fits` allows (ties: the larger), 1 when none fits: what a batch job
    /// runs at. The largest is not always the fastest per input (a batch of
    /// 64 whose activations spill a cache can be slower per input than 16),
    /// and a job run at it takes longer and draws more energy.
    pub fn most_efficient_batch(&self, fits: impl Fn(u32) -> bool) -> u32 {
        self.points
            .iter()
            .map(|p| p.batch_size)
            .filter(|&b| fits(b))
            .map(|b| (self.capacity_per_s(b), b))
            .filter(|(rate, _)| rate.is_finite())
            .max_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
            .map_or(1, |(_, b)| b)
    }
}

/// Median and p99 of the total of `runs` independent runs of one latency
/// fit, each the lognormal the simulator draws from it ([`lognormal_params`];
/// a constant when `median <= 0` or `p99 <= median`, as there). One run is
/// the fit itself. For more, the total is near-normal (central limit), with
/// mean `runs x mean` and standard deviation `sqrt(runs) x sd`, so its p99
/// is `runs x mean + Z99 x sqrt(runs) x sd`. Its median is taken as the
/// mean: the skew pulls it below by about `sd x skew / 6` of one run, a
/// fixed fraction of a run whatever `runs` is.
fn sum_of_independent_runs(run: &LatencyFit, runs: u64) -> LatencyFit {
    if runs <= 1 {
        return *run;
    }
    let (mean_s, sd_s) = if run.median_s <= 0.0 || run.p99_s <= run.median_s {
        (run.median_s.max(0.0), 0.0)
    } else {
        let (_, sigma) = lognormal_params(run.median_s, run.p99_s);
        let sigma_squared = sigma * sigma;
        let mean_s = run.median_s * (sigma_squared / 2.0).exp();
        (mean_s, mean_s * sigma_squared.exp_m1().sqrt())
    };
    let runs = runs as f64;
    LatencyFit {
        median_s: runs * mean_s,
        p99_s: runs * mean_s + Z99 * runs.sqrt() * sd_s,
    }
}

/// Everything measured and projected for one scenario.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProfileSet {
    pub profiles: Vec<ComputeProfile>,
    /// Agreement with the reference model at f32, by (variant, precision), 0..=1.
    pub accuracy: BTreeMap<(String, Precision), f64>,
    /// Seeded inputs each agreement was measured on (absent: not measured here).
    pub agreement_inputs: BTreeMap<(String, Precision), usize>,
    /// Activation bytes each build held when timed here, by (variant,
    /// backend, precision): `(batch, bytes)` sorted by batch. The same build
    /// runs on every target, so it holds the same there. Absent: timed by a
    /// build that did not record it (an older cache entry).
    pub activations: BTreeMap<(String, BackendKind, Precision), Vec<(u32, u64)>>,
}

impl ProfileSet {
    pub fn find(
        &self,
        variant: &str,
        backend: BackendKind,
        precision: Precision,
        target: &str,
    ) -> Option<&ComputeProfile> {
        self.profiles.iter().find(|p| {
            p.variant == variant
                && p.backend == backend
                && p.precision == precision
                && p.target == target
        })
    }

    /// The fastest feasible backend for a variant and precision on a target: the one
    /// with the lowest median at the most batch sizes (ties: lower at batch 1).
    /// Other backends are dominated for planning purposes.
    pub fn best_backend(
        &self,
        variant: &str,
        precision: Precision,
        target: &str,
        allowed: &[BackendKind],
    ) -> Option<&ComputeProfile> {
        self.best_backend_where(variant, precision, target, allowed, |_| true)
    }

    /// [`Self::best_backend`] among the profiles `keep` accepts (those whose
    /// build fits a device's memory, say).
    pub fn best_backend_where(
        &self,
        variant: &str,
        precision: Precision,
        target: &str,
        allowed: &[BackendKind],
        keep: impl Fn(&ComputeProfile) -> bool,
    ) -> Option<&ComputeProfile> {
        let options: Vec<&ComputeProfile> = self
            .profiles
            .iter()
            .filter(|p| {
                p.variant == variant
                    && p.precision == precision
                    && p.target == target
                    && allowed.contains(&p.backend)
                    && !p.points.is_empty()
                    && keep(p)
            })
            .collect();
        let score = |p: &ComputeProfile| -> (usize, f64) {
            let wins = p
                .points
                .iter()
                .filter(|pt| {
                    options
                        .iter()
                        .all(|o| o.median_s(pt.batch_size) >= pt.median_s)
                })
                .count();
            (wins, -p.median_s(1))
        };
        let scored: Vec<(&ComputeProfile, (usize, f64))> =
            options.iter().map(|p| (*p, score(p))).collect();
        scored
            .into_iter()
            .max_by(|(a, (wa, ta)), (b, (wb, tb))| {
                wa.cmp(wb)
                    .then(ta.total_cmp(tb))
                    .then(b.backend.cmp(&a.backend))
            })
            .map(|(p, _)| p)
    }

    /// Activation bytes a build holds running `batch` inputs at once, from
    /// what it held when timed: the figure at a timed batch; between two,
    /// the straight line through them (buffers grow with the batch by a
    /// fixed amount per input, over a part that does not grow); below the
    /// smallest, the smallest's; beyond the largest, the largest's scaled
    /// in proportion to the batch (never below the line, as the part that
    /// does not grow is scaled too). `None` when the build recorded none.
    pub fn activation_bytes(
        &self,
        variant: &str,
        backend: BackendKind,
        precision: Precision,
        batch: u32,
    ) -> Option<u64> {
        let measured = self
            .activations
            .get(&(variant.to_string(), backend, precision))?;
        let after = measured.partition_point(|&(b, _)| b < batch);
        match (
            after.checked_sub(1).map(|i| measured[i]),
            measured.get(after),
        ) {
            (_, Some(&(b, bytes))) if b == batch => Some(bytes),
            (None, Some(&(_, bytes))) => Some(bytes),
            (Some((b0, y0)), Some(&(b1, y1))) => {
                let t = f64::from(batch - b0) / f64::from(b1 - b0);
                Some((y0 as f64 + t * (y1 as f64 - y0 as f64)).round() as u64)
            }
            (Some((b, bytes)), None) => {
                Some((bytes as f64 * f64::from(batch) / f64::from(b.max(1))).round() as u64)
            }
            (None, None) => None,
        }
    }

    pub fn accuracy_of(&self, variant: &str, precision: Precision) -> Option<f64> {
        self.accuracy
            .get(&(variant.to_string(), precision))
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(backend: BackendKind, medians: &[(u32, f64)]) -> ComputeProfile {
        ComputeProfile {
            variant: "base".into(),
            backend,
            precision: Precision::F32,
            target: "t".into(),
            source: FigureSource::Measured,
            points: medians
                .iter()
                .map(|&(b, m)| ProfilePoint {
                    batch_size: b,
                    median_s: m,
                    p99_s: m * 1.2,
                })
                .collect(),
            infeasible: None,
        }
    }

    /// A batch timed slower than a larger one takes the larger's time (it
    /// can run padded); a profile that rises with the batch is unchanged.
    #[test]
    fn no_batch_is_slower_than_a_larger_one() {
        let mut noisy = profile(BackendKind::Tiled, &[(1, 0.031), (8, 0.022), (64, 0.1)]).points;
        ComputeProfile::never_slower_than_a_larger_batch(&mut noisy);
        let medians: Vec<f64> = noisy.iter().map(|p| p.median_s).collect();
        assert_eq!(medians, [0.022, 0.022, 0.1]);
        assert!(noisy.iter().all(|p| p.p99_s >= p.median_s));
        assert!((noisy[0].p99_s - 0.022 * 1.2).abs() < 1e-12);
        let rising = profile(BackendKind::Tiled, &[(1, 0.01), (8, 0.02), (64, 0.1)]).points;
        let mut same = rising.clone();
        ComputeProfile::never_slower_than_a_larger_batch(&mut same);
        assert_eq!(same, rising);
    }

    /// A batch job runs the batch with the most inputs per second that fits:
    /// 16 when 64 is slower per input (its activations spill a cache).
    #[test]
    fn batch_jobs_run_the_most_efficient_batch_that_fits() {
        // Per input: b1 1.0 s, b16 0.0625 s... b64 0.09375 s.
        let p = profile(BackendKind::Tiled, &[(1, 1.0), (16, 1.0), (64, 6.0)]);
        assert_eq!(p.largest_batch(), 64);
        assert_eq!(p.most_efficient_batch(|_| true), 16);
        assert_eq!(p.most_efficient_batch(|b| b < 16), 1);
        assert_eq!(p.most_efficient_batch(|_| false), 1);
    }

    #[test]
    fn best_backend_is_fastest_at_most_batch_sizes() {
        let set = ProfileSet {
            profiles: vec![
                profile(BackendKind::Naive, &[(1, 1.0), (8, 8.0)]),
                profile(BackendKind::Tiled, &[(1, 0.2), (8, 0.5)]),
                profile(BackendKind::Fused, &[(1, 0.1), (8, 0.9)]),
            ],
            ..ProfileSet::default()
        };
        let all = BackendKind::ALL;
        let best = set.best_backend("base", Precision::F32, "t", &all);
        // Tiled wins at batch 8, fused at batch 1: a tie on wins, broken by batch-1 latency.
        assert_eq!(best.map(|p| p.backend), Some(BackendKind::Fused));
        let best = set.best_backend(
            "base",
            Precision::F32,
            "t",
            &[BackendKind::Naive, BackendKind::Tiled],
        );
        assert_eq!(best.map(|p| p.backend), Some(BackendKind::Tiled));
        assert!(set
            .best_backend("other", Precision::F32, "t", &all)
            .is_none());
    }

    /// Only the builds `keep` accepts compete: the fastest that fits, not
    /// the fastest.
    #[test]
    fn best_backend_where_chooses_among_the_kept_builds() {
        let set = ProfileSet {
            profiles: vec![
                profile(BackendKind::Naive, &[(1, 1.0)]),
                profile(BackendKind::Tiled, &[(1, 0.2)]),
                profile(BackendKind::Fused, &[(1, 0.5)]),
            ],
            ..ProfileSet::default()
        };
        let all = BackendKind::ALL;
        let best = |keep: &dyn Fn(&ComputeProfile) -> bool| {
            set.best_backend_where("base", Precision::F32, "t", &all, keep)
                .map(|p| p.backend)
        };
        assert_eq!(best(&|_| true), Some(BackendKind::Tiled));
        assert_eq!(
            best(&|p| p.backend != BackendKind::Tiled),
            Some(BackendKind::Fused)
        );
        assert_eq!(best(&|_| false), None);
    }

    /// A build's activations at a timed batch are what it held there;
    /// between timed batches on the line through them; outside, never less
    /// than the nearest timed figure says.
    #[test]
    fn activations_come_from_the_timed_batches() {
        let key = ("base".to_string(), BackendKind::Tiled, Precision::F32);
        let mut set = ProfileSet::default();
        set.activations
            .insert(key.clone(), vec![(2, 1_000), (8, 1_600), (64, 7_200)]);
        let at = |b: u32| set.activation_bytes("base", BackendKind::Tiled, Precision::F32, b);
        assert_eq!(at(8), Some(1_600));
        assert_eq!(at(64), Some(7_200));
        // 100 bytes per input from 2 to 8, over a fixed 800.
        assert_eq!(at(5), Some(1_300));
        assert_eq!(at(1), Some(1_000));
        assert_eq!(at(128), Some(14_400));
        assert_eq!(
            set.activation_bytes("base", BackendKind::Naive, Precision::F32, 8),
            None
        );
        assert_eq!(
            set.activation_bytes("other", BackendKind::Tiled, Precision::F32, 8),
            None
        );
    }

    #[test]
    fn a_request_of_k_predictions_costs_a_batch_of_k() {
        let p = profile(BackendKind::Tiled, &[(1, 0.001), (64, 0.033)]);
        let per = p.per_request(10);
        // One request of 10 predictions takes what a batch of 10 samples takes.
        assert!((per.median_s(1) - p.median_s(10)).abs() < 1e-12);
        // Capacity in requests is the sample capacity divided by the fan-out, at large batches.
        assert!(
            (per.capacity_per_s(64) - p.capacity_per_s(64) / 10.0).abs() / per.capacity_per_s(64)
                < 0.05
        );
        assert_eq!(p.per_request(1), p);
    }

    /// One run is the fit itself (the near-normal total would give its mean
    /// as the median and a lighter tail); no runs are treated as one.
    #[test]
    fn one_run_is_the_fit_itself() {
        let fit = LatencyFit {
            median_s: 0.15e-3,
            p99_s: 0.65e-3,
        };
        assert_eq!(sum_of_independent_runs(&fit, 1), fit);
        assert_eq!(sum_of_independent_runs(&fit, 0), fit);
        let two = sum_of_independent_runs(&fit, 2);
        assert!(two.median_s > 2.0 * fit.median_s && two.p99_s < 2.0 * fit.p99_s);
    }

    #[test]
    fn capacity_uses_full_batches() {
        let p = profile(BackendKind::Tiled, &[(1, 0.001), (16, 0.004)]);
        assert!((p.capacity_per_s(16) - 4000.0).abs() < 1e-6);
        assert!((p.capacity_per_s(1) - 1000.0).abs() < 1e-6);
        assert_eq!(p.largest_batch(), 16);
    }
}
