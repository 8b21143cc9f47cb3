//! Distributions: lognormal fits, service-time profiles, Zipf hit rates.

use rand::Rng;
use rand_distr::{Distribution, Exp, StandardNormal};
use rand_pcg::Pcg64Mcg;

use super::config::{LatencyFit, ProfilePoint, ServiceTime};
use super::SimError;

/// z-score of the 99th percentile of the standard normal.
pub const Z99: f64 = 2.326_347_874_040_841;

/// Lognormal parameters `(mu, sigma)` fitted to a median and a p99.
pub fn lognormal_params(median_s: f64, p99_s: f64) -> (f64, f64) {
    (median_s.ln(), (p99_s / median_s).ln() / Z99)
}

pub(crate) fn check_fit(fit: &LatencyFit, field: &'static str) -> Result<(), SimError> {
    let ok = fit.median_s.is_finite()
        && fit.median_s >= 0.0
        && fit.p99_s.is_finite()
        && fit.p99_s >= fit.median_s
        && (fit.median_s > 0.0 || fit.p99_s == 0.0);
    if ok {
        Ok(())
    } else {
        Err(SimError::invalid(
            field,
            format!("median {} s, p99 {} s", fit.median_s, fit.p99_s),
            "finite, 0 <= median <= p99 (both 0 for no delay)",
        ))
    }
}

/// Sampler for a [`LatencyFit`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct FitSampler {
    mu: f64,
    sigma: f64,
    constant: Option<f64>,
}

impl FitSampler {
    pub fn new(fit: &LatencyFit) -> Self {
        if fit.median_s <= 0.0 || fit.p99_s <= fit.median_s {
            return Self {
                mu: 0.0,
                sigma: 0.0,
                constant: Some(fit.median_s.max(0.0)),
            };
        }
        let (mu, sigma) = lognormal_params(fit.median_s, fit.p99_s);
        Self {
            mu,
            sigma,
            constant: None,
        }
    }

    /// The value every draw returns, if the fit is a constant.
    pub fn constant(&self) -> Option<f64> {
        self.constant
    }

    #[inline]
    pub fn sample(&self, rng: &mut Pcg64Mcg) -> f64 {
        match self.constant {
            Some(c) => c,
            None => {
                let z: f64 = StandardNormal.sample(rng);
                (self.mu + self.sigma * z).exp()
            }
        }
    }
}

/// Per-batch-size lognormal parameters, precomputed for every batch size
/// up to the pool's maximum so a draw is one table look-up.
#[derive(Debug, Clone)]
pub(crate) enum ServiceSampler {
    Table(Vec<FitSampler>),
    Exponential(Exp<f64>),
    Deterministic(f64),
}

impl ServiceSampler {
    pub fn new(
        service: &ServiceTime,
        max_batch: u32,
        field: &'static str,
    ) -> Result<Self, SimError> {
        match service {
            ServiceTime::Exponential { mean_s } => {
                if !(mean_s.is_finite() && *mean_s > 0.0) {
                    return Err(SimError::invalid(field, mean_s, "finite mean > 0"));
                }
                Exp::new(1.0 / mean_s)
                    .map(ServiceSampler::Exponential)
                    .map_err(|_| SimError::invalid(field, mean_s, "finite mean > 0"))
            }
            ServiceTime::Deterministic { seconds } => {
                if !(seconds.is_finite() && *seconds >= 0.0) {
                    return Err(SimError::invalid(field, seconds, "finite seconds >= 0"));
                }
                Ok(ServiceSampler::Deterministic(*seconds))
            }
            ServiceTime::Profile(points) => {
                validate_profile(points, field)?;
                let table = (1..=max_batch)
                    .map(|b| FitSampler::new(&interpolate_profile(points, b)))
                    .collect();
                Ok(ServiceSampler::Table(table))
            }
        }
    }

    #[inline]
    pub fn sample(&self, batch: u32, rng: &mut Pcg64Mcg) -> f64 {
        match self {
            ServiceSampler::Table(t) => {
                let i = (batch.max(1) as usize - 1).min(t.len().saturating_sub(1));
                t.get(i).map_or(0.0, |s| s.sample(rng))
            }
            ServiceSampler::Exponential(e) => e.sample(rng),
            ServiceSampler::Deterministic(s) => *s,
        }
    }
}

fn validate_profile(points: &[ProfilePoint], field: &'static str) -> Result<(), SimError> {
    if points.is_empty() {
        return Err(SimError::invalid(field, "[]", "at least one profile point"));
    }
    let mut last = 0u32;
    for p in points {
        if p.batch_size <= last {
            return Err(SimError::invalid(
                field,
                p.batch_size,
                "batch sizes >= 1, strictly increasing",
            ));
        }
        last = p.batch_size;
        check_fit(
            &LatencyFit {
                median_s: p.median_s,
                p99_s: p.p99_s,
            },
            field,
        )?;
    }
    Ok(())
}

/// Median and p99 of a batch of `batch` requests, interpolated linearly
/// between measured batch sizes (see [`ServiceTime::Profile`]).
pub fn interpolate_profile(points: &[ProfilePoint], batch: u32) -> LatencyFit {
    let b = f64::from(batch);
    let fit = |p: &ProfilePoint| LatencyFit {
        median_s: p.median_s,
        p99_s: p.p99_s,
    };
    let (first, last) = match (points.first(), points.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => return LatencyFit::constant(0.0),
    };
    if batch <= first.batch_size {
        return fit(first);
    }
    if points.len() == 1 {
        let scale = b / f64::from(first.batch_size);
        return LatencyFit {
            median_s: first.median_s * scale,
            p99_s: first.p99_s * scale,
        };
    }
    // segment containing b, or the last segment for extrapolation
    let seg = points
        .windows(2)
        .find(|w| batch <= w[1].batch_size)
        .unwrap_or(&points[points.len() - 2..]);
    let (a, c) = (&seg[0], &seg[1]);
    let t = (b - f64::from(a.batch_size)) / f64::from(c.batch_size - a.batch_size);
    let median = (a.median_s + t * (c.median_s - a.median_s)).max(0.0);
    let p99 = (a.p99_s + t * (c.p99_s - a.p99_s)).max(median);
    let _ = last;
    LatencyFit {
        median_s: median,
        p99_s: p99,
    }
}

/// Generalised harmonic number `H_{n,s} = sum_{i=1..n} i^-s`: exact for
/// `n <= 10_000`, otherwise the first 1000 terms exactly plus an
/// Euler–Maclaurin tail (relative error far below 1e-12 for s >= 0).
pub fn generalized_harmonic(n: u64, s: f64) -> f64 {
    const EXACT: u64 = 10_000;
    const HEAD: u64 = 1_000;
    if n <= EXACT {
        return (1..=n).map(|i| (i as f64).powf(-s)).sum();
    }
    let head: f64 = (1..HEAD).map(|i| (i as f64).powf(-s)).sum();
    let (a, b) = (HEAD as f64, n as f64);
    let f = |x: f64| x.powf(-s);
    let d1 = |x: f64| -s * x.powf(-s - 1.0);
    let d3 = |x: f64| -s * (s + 1.0) * (s + 2.0) * x.powf(-s - 3.0);
    let integral = if (s - 1.0).abs() < 1e-12 {
        (b / a).ln()
    } else {
        (b.powf(1.0 - s) - a.powf(1.0 - s)) / (1.0 - s)
    };
    // sum_{i=a..b} f(i) = int_a^b f + (f(a)+f(b))/2 + (f'(b)-f'(a))/12 - (f'''(b)-f'''(a))/720
    let tail = integral + (f(a) + f(b)) / 2.0 + (d1(b) - d1(a)) / 12.0 - (d3(b) - d3(a)) / 720.0;
    head + tail
}

/// Share of requests hitting a cache of the `cached` most popular of
/// `items` inputs when popularity is Zipf with exponent `s`:
/// `H_{k,s} / H_{N,s}`.
pub fn zipf_hit_rate(items: u64, cached: u64, s: f64) -> Result<f64, SimError> {
    if items == 0 {
        return Err(SimError::invalid("zipf.items", items, ">= 1"));
    }
    if !(s.is_finite() && s >= 0.0) {
        return Err(SimError::invalid("zipf.exponent", s, "finite, >= 0"));
    }
    let k = cached.min(items);
    if k == 0 {
        return Ok(0.0);
    }
    if k == items {
        return Ok(1.0);
    }
    Ok((generalized_harmonic(k, s) / generalized_harmonic(items, s)).clamp(0.0, 1.0))
}

/// Uniform in [0, 1).
#[inline]
pub(crate) fn unit(rng: &mut Pcg64Mcg) -> f64 {
    rng.random::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(n: u64, s: f64) -> f64 {
        (1..=n).map(|i| (i as f64).powf(-s)).sum()
    }

    #[test]
    fn euler_maclaurin_matches_exact_sum() {
        for &s in &[0.0, 0.5, 0.8, 1.0, 1.2, 2.0] {
            for &n in &[10_001u64, 50_000, 300_000] {
                let approx = generalized_harmonic(n, s);
                let e = exact(n, s);
                assert!(
                    ((approx - e) / e).abs() < 1e-10,
                    "s {s} n {n}: {approx} vs {e}"
                );
            }
        }
    }

    #[test]
    fn hit_rate_edges_and_uniform() {
        assert_eq!(zipf_hit_rate(100, 0, 1.0).ok(), Some(0.0));
        assert_eq!(zipf_hit_rate(100, 200, 1.0).ok(), Some(1.0));
        let uniform = zipf_hit_rate(1_000_000_000, 1_000_000, 0.0).unwrap_or(-1.0);
        assert!((uniform - 1e-3).abs() < 1e-9);
        // skew concentrates hits: 1% of items gives far more than 1% of hits
        let skewed = zipf_hit_rate(1_000_000, 10_000, 1.0).unwrap_or(-1.0);
        assert!(skewed > 0.6 && skewed < 0.8, "{skewed}");
        assert!(zipf_hit_rate(0, 1, 1.0).is_err());
        assert!(zipf_hit_rate(10, 1, -1.0).is_err());
    }

    #[test]
    fn profile_interpolates_and_extrapolates() {
        let pts = [
            ProfilePoint {
                batch_size: 1,
                median_s: 1.0,
                p99_s: 2.0,
            },
            ProfilePoint {
                batch_size: 5,
                median_s: 3.0,
                p99_s: 4.0,
            },
        ];
        let mid = interpolate_profile(&pts, 3);
        assert!((mid.median_s - 2.0).abs() < 1e-12 && (mid.p99_s - 3.0).abs() < 1e-12);
        let beyond = interpolate_profile(&pts, 9);
        assert!((beyond.median_s - 5.0).abs() < 1e-12);
        let single = interpolate_profile(&pts[1..], 10);
        assert!((single.median_s - 6.0).abs() < 1e-12);
        assert_eq!(interpolate_profile(&pts[1..], 2).median_s, 3.0);
    }

    #[test]
    fn lognormal_fit_hits_median_and_p99() {
        use rand::SeedableRng;
        let fit = LatencyFit {
            median_s: 0.010,
            p99_s: 0.050,
        };
        let s = FitSampler::new(&fit);
        let mut rng = Pcg64Mcg::seed_from_u64(7);
        let mut v: Vec<f64> = (0..200_000).map(|_| s.sample(&mut rng)).collect();
        v.sort_by(f64::total_cmp);
        let med = v[100_000];
        let p99 = v[198_000];
        assert!((med / 0.010 - 1.0).abs() < 0.02, "{med}");
        assert!((p99 / 0.050 - 1.0).abs() < 0.04, "{p99}");
    }
}
