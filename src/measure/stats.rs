//! Statistics of timing samples. Pure: no clock, seeded resampling.

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

/// Tukey-fence outlier counts: mild beyond 1.5 IQR, severe beyond 3 IQR.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outliers {
    pub low_severe: usize,
    pub low_mild: usize,
    pub high_mild: usize,
    pub high_severe: usize,
}

impl Outliers {
    pub fn total(&self) -> usize {
        self.low_severe + self.low_mild + self.high_mild + self.high_severe
    }
}

/// Summary of one set of per-call times (nanoseconds per `run`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleStats {
    pub samples: usize,
    pub median_ns: f64,
    pub mean_ns: f64,
    pub p90_ns: f64,
    pub p99_ns: f64,
    /// Quartiles (0 in caches written before they were kept).
    #[serde(default)]
    pub p25_ns: f64,
    #[serde(default)]
    pub p75_ns: f64,
    pub min_ns: f64,
    pub max_ns: f64,
    /// Sample standard deviation (n - 1).
    pub std_dev_ns: f64,
    /// Coefficient of variation: std_dev / mean.
    pub cv: f64,
    /// Bootstrap 95% confidence interval of the median (percentile method).
    pub median_ci_low_ns: f64,
    pub median_ci_high_ns: f64,
    pub outliers: Outliers,
}

/// Standard normal quantiles: the 90th and 99th percentiles, and the spread
/// between the quartiles (z(0.75) - z(0.25)).
const Z_90: f64 = 1.281_552;
const Z_99: f64 = 2.326_348;
const Z_INTERQUARTILE: f64 = 1.348_980;

impl SampleStats {
    /// Whether these figures could come from timing calls: all finite, the
    /// times at least `floor_ns`, in order (min <= median <= p90 <= p99 <=
    /// max, the mean between min and max, the quartiles around the median
    /// unless 0, as caches written before they were kept hold), the spread
    /// figures not negative, at least one sample. A cache entry failing this
    /// was corrupted: it is timed again, as garbage JSON is.
    pub fn is_consistent(&self, floor_ns: f64) -> bool {
        let times = [
            self.min_ns,
            self.median_ns,
            self.p90_ns,
            self.p99_ns,
            self.max_ns,
        ];
        // Ordered up to rounding: a mean of equal times, or a percentile
        // interpolated between two, may land an ulp beyond them.
        let at_most = |a: f64, b: f64| a <= b + b.abs() * 1e-9;
        let ordered = times.windows(2).all(|w| at_most(w[0], w[1]));
        let finite = [
            self.mean_ns,
            self.p25_ns,
            self.p75_ns,
            self.std_dev_ns,
            self.cv,
            self.median_ci_low_ns,
            self.median_ci_high_ns,
        ]
        .iter()
        .chain(&times)
        .all(|x| x.is_finite());
        let quartiles = (self.p25_ns == 0.0 && self.p75_ns == 0.0)
            || [
                self.min_ns,
                self.p25_ns,
                self.median_ns,
                self.p75_ns,
                self.max_ns,
            ]
            .windows(2)
            .all(|w| at_most(w[0], w[1]));
        finite
            && ordered
            && quartiles
            && self.samples >= 1
            && self.min_ns >= floor_ns
            && at_most(self.min_ns, self.mean_ns)
            && at_most(self.mean_ns, self.max_ns)
            && self.std_dev_ns >= 0.0
            && self.cv >= 0.0
    }

    /// p99 / median to plan with on a target. A few dozen samples' p99 is
    /// about their largest, and on a shared host that is an interruption of
    /// this machine (13 ms against a 0.22 ms median was seen), not a property
    /// of the kernel on the target. So the tail is fitted as log-normal from
    /// the quartiles, which an interruption or two do not move:
    /// sigma = ln(p75 / p25) / 1.349, p99 / median = exp(2.326 sigma); never
    /// more than the sample p99 shows, never below 1.
    pub fn planning_p99_spread(&self) -> f64 {
        self.planning_spread(Z_99, self.p99_ns)
    }

    /// p90 / median to plan with on a target: the same log-normal fit at
    /// z = 1.282, never more than the sample p90 shows, never below 1 and
    /// never above [`Self::planning_p99_spread`], so that percentiles
    /// projected with the two are ordered (median <= p90 <= p99).
    pub fn planning_p90_spread(&self) -> f64 {
        self.planning_spread(Z_90, self.p90_ns)
            .min(self.planning_p99_spread())
    }

    /// The log-normal fit's quantile at `z` over the median, capped at the
    /// sample's own (`sampled_ns`) and at least 1.
    fn planning_spread(&self, z: f64, sampled_ns: f64) -> f64 {
        if self.median_ns <= 0.0 {
            return 1.0;
        }
        let sampled = sampled_ns / self.median_ns;
        let fitted = if self.p25_ns > 0.0 && self.p75_ns >= self.p25_ns {
            let sigma = (self.p75_ns / self.p25_ns).ln() / Z_INTERQUARTILE;
            (z * sigma).exp()
        } else {
            sampled // a cache entry from before the quartiles were kept
        };
        // `max` last: a NaN from a corrupt entry becomes 1, not a NaN latency.
        fitted.min(sampled).max(1.0)
    }
}

/// Resamples used for the bootstrap confidence interval.
pub const BOOTSTRAP_RESAMPLES: usize = 1000;

/// Linear-interpolation percentile (`p` in 0..=100) of sorted data.
pub fn percentile_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let rank = (p.clamp(0.0, 100.0) / 100.0) * last as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let frac = rank - lo as f64;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * frac)
}

fn sorted_finite(samples: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Classify `sorted` against Tukey's fences.
pub fn classify_outliers(sorted: &[f64]) -> Outliers {
    let (Some(q1), Some(q3)) = (
        percentile_sorted(sorted, 25.0),
        percentile_sorted(sorted, 75.0),
    ) else {
        return Outliers::default();
    };
    let iqr = q3 - q1;
    let (mild_lo, mild_hi) = (q1 - 1.5 * iqr, q3 + 1.5 * iqr);
    let (severe_lo, severe_hi) = (q1 - 3.0 * iqr, q3 + 3.0 * iqr);
    let mut out = Outliers::default();
    for &x in sorted {
        if x < severe_lo {
            out.low_severe += 1;
        } else if x < mild_lo {
            out.low_mild += 1;
        } else if x > severe_hi {
            out.high_severe += 1;
        } else if x > mild_hi {
            out.high_mild += 1;
        }
    }
    out
}

/// Percentile-bootstrap confidence interval of the median at `confidence` (e.g. 0.95).
pub fn bootstrap_median_ci(
    samples: &[f64],
    resamples: usize,
    confidence: f64,
    seed: u64,
) -> Option<(f64, f64)> {
    let data = sorted_finite(samples);
    if data.is_empty() {
        return None;
    }
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let mut medians = Vec::with_capacity(resamples.max(1));
    let mut scratch = vec![0.0; data.len()];
    for _ in 0..resamples.max(1) {
        for slot in scratch.iter_mut() {
            *slot = data[rng.random_range(0..data.len())];
        }
        scratch.sort_by(f64::total_cmp);
        medians.push(percentile_sorted(&scratch, 50.0)?);
    }
    medians.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence.clamp(0.0, 1.0)) / 2.0 * 100.0;
    Some((
        percentile_sorted(&medians, tail)?,
        percentile_sorted(&medians, 100.0 - tail)?,
    ))
}

/// Summarise `samples` (non-finite values are dropped); `None` when nothing is left.
pub fn summarize(samples: &[f64], seed: u64) -> Option<SampleStats> {
    let sorted = sorted_finite(samples);
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let mean = sorted.iter().sum::<f64>() / n as f64;
    let var = if n > 1 {
        sorted.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64
    } else {
        0.0
    };
    let std_dev = var.sqrt();
    let (ci_low, ci_high) = bootstrap_median_ci(&sorted, BOOTSTRAP_RESAMPLES, 0.95, seed)?;
    Some(SampleStats {
        samples: n,
        median_ns: percentile_sorted(&sorted, 50.0)?,
        mean_ns: mean,
        p90_ns: percentile_sorted(&sorted, 90.0)?,
        p99_ns: percentile_sorted(&sorted, 99.0)?,
        p25_ns: percentile_sorted(&sorted, 25.0)?,
        p75_ns: percentile_sorted(&sorted, 75.0)?,
        min_ns: sorted[0],
        max_ns: sorted[n - 1],
        std_dev_ns: std_dev,
        cv: if mean > 0.0 { std_dev / mean } else { 0.0 },
        median_ci_low_ns: ci_low,
        median_ci_high_ns: ci_high,
        outliers: classify_outliers(&sorted),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_interruption_of_this_host_is_not_planned_as_the_kernels_tail() {
        // Ten calls of a 0.22 ms kernel, one interrupted for 13 ms.
        let mut calls = vec![
            0.220, 0.221, 0.219, 0.222, 0.220, 0.223, 0.218, 0.221, 0.220,
        ];
        calls.push(13.1);
        let s = summarize(&calls, 1).unwrap();
        assert!(
            s.p99_ns / s.median_ns > 40.0,
            "the sample p99 is the interruption"
        );
        let spread = s.planning_p99_spread();
        assert!((1.0..1.05).contains(&spread), "{spread}");

        // A kernel whose times really spread (log-normal, sigma 0.3) keeps
        // about its tail: exp(2.326 * 0.3) = 2.01.
        let z = [-1.28, -0.84, -0.52, -0.25, 0.0, 0.25, 0.52, 0.84, 1.28];
        let spread_out: Vec<f64> = z.iter().map(|z: &f64| (0.3 * z).exp()).collect();
        let s = summarize(&spread_out, 1).unwrap();
        let spread = s.planning_p99_spread();
        assert!((1.3..=s.p99_ns / s.median_ns).contains(&spread), "{spread}");

        // Caches from before the quartiles were kept: the sample p99.
        let old = SampleStats {
            p25_ns: 0.0,
            p75_ns: 0.0,
            ..summarize(&calls, 1).unwrap()
        };
        assert_eq!(old.planning_p99_spread(), old.p99_ns / old.median_ns);
    }

    #[test]
    fn known_values() {
        let s = summarize(&[1.0, 2.0, 3.0, 4.0, 5.0], 7).unwrap();
        assert_eq!(s.median_ns, 3.0);
        assert_eq!(s.mean_ns, 3.0);
        assert_eq!(s.min_ns, 1.0);
        assert_eq!(s.max_ns, 5.0);
        assert!((s.std_dev_ns - 2.5f64.sqrt()).abs() < 1e-12);
        assert!((s.p90_ns - 4.6).abs() < 1e-12);
        assert_eq!(s.outliers.total(), 0);
        assert!(summarize(&[], 1).is_none());
        assert!(summarize(&[f64::NAN], 1).is_none());
    }

    #[test]
    fn tukey_fences_separate_mild_from_severe() {
        // q1 = 10, q3 = 12 (IQR 2): mild above 15, severe above 18.
        let mut v = vec![10.0, 10.0, 11.0, 11.0, 12.0, 12.0, 10.0, 12.0, 11.0];
        v.extend([16.0, 30.0, 0.0]);
        v.sort_by(f64::total_cmp);
        let o = classify_outliers(&v);
        assert_eq!(o.high_mild, 1, "{o:?} {v:?}");
        assert_eq!(o.high_severe, 1);
        assert_eq!(o.low_severe, 1);
        assert_eq!(o.low_mild, 0);
    }

    #[test]
    fn bootstrap_is_seeded_and_narrows_with_more_data() {
        let data: Vec<f64> = (0..200).map(|i| 100.0 + (i * 37 % 23) as f64).collect();
        let a = bootstrap_median_ci(&data, 500, 0.95, 42).unwrap();
        assert_eq!(a, bootstrap_median_ci(&data, 500, 0.95, 42).unwrap());
        let small = bootstrap_median_ci(&data[..10], 500, 0.95, 42).unwrap();
        assert!(a.1 - a.0 <= small.1 - small.0, "{a:?} vs {small:?}");
    }

    fn samples() -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec(1.0f64..1e9, 1..60)
    }

    proptest! {
        // Each case bootstraps 1000 resamples: keep the count modest for the dev profile.
        #![proptest_config(ProptestConfig::with_cases(40))]

        #[test]
        fn order_statistics_are_ordered(v in samples(), seed in any::<u64>()) {
            let s = summarize(&v, seed).unwrap();
            prop_assert!(s.min_ns <= s.median_ns && s.median_ns <= s.p90_ns);
            prop_assert!(s.p90_ns <= s.p99_ns && s.p99_ns <= s.max_ns);
            prop_assert!(s.min_ns <= s.mean_ns && s.mean_ns <= s.max_ns * (1.0 + 1e-12));
            prop_assert!(s.min_ns <= s.median_ci_low_ns);
            prop_assert!(s.median_ci_low_ns <= s.median_ci_high_ns);
            prop_assert!(s.median_ci_high_ns <= s.max_ns);
            prop_assert!(s.std_dev_ns >= 0.0 && s.cv >= 0.0);
            prop_assert!(s.outliers.total() <= v.len());
            prop_assert_eq!(s.samples, v.len());
            // What the cache accepts: a real measurement is never taken for a corrupted one.
            prop_assert!(s.is_consistent(0.0), "{:?}", s);
        }

        #[test]
        fn scaling_the_samples_scales_the_statistics(v in samples(), k in 0.5f64..100.0) {
            let a = summarize(&v, 3).unwrap();
            let scaled: Vec<f64> = v.iter().map(|x| x * k).collect();
            let b = summarize(&scaled, 3).unwrap();
            let close = |x: f64, y: f64| (x * k - y).abs() <= 1e-9 * y.abs().max(1.0);
            prop_assert!(close(a.median_ns, b.median_ns));
            prop_assert!(close(a.mean_ns, b.mean_ns));
            prop_assert!(close(a.p99_ns, b.p99_ns));
            prop_assert!(close(a.std_dev_ns, b.std_dev_ns));
            prop_assert!(close(a.median_ci_low_ns, b.median_ci_low_ns));
            prop_assert!((a.cv - b.cv).abs() < 1e-9);
            prop_assert_eq!(a.outliers, b.outliers);
        }

        /// Projected rows scale a median by these spreads: whatever the
        /// samples (a tail of interruptions that moves the sample p90 but not
        /// the quartiles included), median <= p90 <= p99.
        #[test]
        fn planning_spreads_are_ordered(
            mut v in samples(),
            spikes in prop::collection::vec(1e3f64..1e12, 0..8),
        ) {
            v.extend(spikes);
            let s = summarize(&v, 5).unwrap();
            let (p90, p99) = (s.planning_p90_spread(), s.planning_p99_spread());
            prop_assert!(1.0 <= p90 && p90 <= p99, "p90 {} p99 {} of {:?}", p90, p99, s);
            prop_assert!(p90 <= (s.p90_ns / s.median_ns).max(1.0) * (1.0 + 1e-12));
        }

        /// The same for any figures a cache file may hold (quartiles missing,
        /// out of order, or percentiles below the median).
        #[test]
        fn planning_spreads_are_ordered_for_any_cached_figures(
            median in 0.0f64..1e9,
            p25 in 0.0f64..1e9,
            p75 in 0.0f64..1e9,
            p90 in 0.0f64..1e10,
            p99 in 0.0f64..1e10,
        ) {
            let s = SampleStats {
                median_ns: median,
                p25_ns: p25,
                p75_ns: p75,
                p90_ns: p90,
                p99_ns: p99,
                ..summarize(&[1.0], 1).unwrap()
            };
            let (p90, p99) = (s.planning_p90_spread(), s.planning_p99_spread());
            prop_assert!(1.0 <= p90 && p90 <= p99 && p99.is_finite(), "{} {} {:?}", p90, p99, s);
        }

        #[test]
        fn order_of_samples_does_not_matter(mut v in samples()) {
            let a = summarize(&v, 9).unwrap();
            v.reverse();
            prop_assert_eq!(a, summarize(&v, 9).unwrap());
        }

        #[test]
        fn constant_samples_have_no_spread(x in 1.0f64..1e9, n in 1usize..50) {
            let s = summarize(&vec![x; n], 1).unwrap();
            prop_assert_eq!(s.median_ns, x);
            prop_assert!(s.std_dev_ns <= 1e-9 * x);
            prop_assert_eq!(s.outliers.total(), 0);
            prop_assert_eq!((s.median_ci_low_ns, s.median_ci_high_ns), (x, x));
        }
    }
}
