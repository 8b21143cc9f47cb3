//! Arrival generators (lazy: one next time at a time) and a trace CSV parser.

use rand_distr::{Distribution, Exp1};
use rand_pcg::Pcg64Mcg;
use thiserror::Error;

use super::config::ArrivalProcess;
use super::dist::unit;
use super::SimError;

/// A malformed trace CSV.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum TraceError {
    #[error("trace line {line}: `{text}` is not a timestamp in seconds (finite, >= 0)")]
    NotANumber { line: usize, text: String },
    #[error("trace line {line}: timestamp {value} s is earlier than the previous {previous} s (timestamps must not decrease)")]
    Decreasing {
        line: usize,
        value: f64,
        previous: f64,
    },
    #[error("trace has no timestamps")]
    Empty,
}

/// Parses a CSV of send timestamps (seconds): the first column of each
/// line; blank lines and `#` comments skipped; one header line allowed
/// (a first line whose first field is not a number). A UTF-8 byte order
/// mark before the first line is not part of it (spreadsheets write one).
pub fn parse_trace_csv(text: &str) -> Result<Vec<f64>, TraceError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    let mut previous = f64::NEG_INFINITY;
    let mut seen_line = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let field = line.split(',').next().unwrap_or("").trim();
        let first_line = !seen_line;
        seen_line = true;
        let value = match field.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => v,
            _ if first_line => continue, // header
            _ => {
                return Err(TraceError::NotANumber {
                    line: i + 1,
                    text: field.to_string(),
                })
            }
        };
        if value < previous {
            return Err(TraceError::Decreasing {
                line: i + 1,
                value,
                previous,
            });
        }
        previous = value;
        out.push(value);
    }
    if out.is_empty() {
        return Err(TraceError::Empty);
    }
    Ok(out)
}

pub(crate) fn validate(process: &ArrivalProcess) -> Result<(), SimError> {
    let rate_ok = |r: f64| r.is_finite() && r > 0.0;
    match process {
        ArrivalProcess::Poisson { rate_per_s } | ArrivalProcess::Constant { rate_per_s } => {
            if !rate_ok(*rate_per_s) {
                return Err(SimError::invalid("arrivals.rate_per_s", rate_per_s, "> 0"));
            }
        }
        ArrivalProcess::BurstyOnOff {
            on_rate_per_s,
            off_rate_per_s,
            mean_on_s,
            mean_off_s,
        } => {
            if !rate_ok(*on_rate_per_s) {
                return Err(SimError::invalid(
                    "arrivals.on_rate_per_s",
                    on_rate_per_s,
                    "> 0",
                ));
            }
            if !(off_rate_per_s.is_finite() && *off_rate_per_s >= 0.0) {
                return Err(SimError::invalid(
                    "arrivals.off_rate_per_s",
                    off_rate_per_s,
                    ">= 0",
                ));
            }
            if !rate_ok(*mean_on_s) || !rate_ok(*mean_off_s) {
                return Err(SimError::invalid(
                    "arrivals.mean_on_s/mean_off_s",
                    format!("{mean_on_s}/{mean_off_s}"),
                    "both > 0",
                ));
            }
        }
        ArrivalProcess::Diurnal {
            mean_rate_per_s,
            peak_factor,
            period_s,
        } => {
            if !rate_ok(*mean_rate_per_s) {
                return Err(SimError::invalid(
                    "arrivals.mean_rate_per_s",
                    mean_rate_per_s,
                    "> 0",
                ));
            }
            if !(peak_factor.is_finite() && *peak_factor >= 1.0) {
                return Err(SimError::invalid(
                    "arrivals.peak_factor",
                    peak_factor,
                    ">= 1",
                ));
            }
            if !rate_ok(*period_s) {
                return Err(SimError::invalid("arrivals.period_s", period_s, "> 0"));
            }
        }
        ArrivalProcess::Trace {
            timestamps_s,
            share,
            laps,
        } => {
            if !(share.is_finite() && *share > 0.0 && *share <= 1.0) {
                return Err(SimError::invalid("arrivals.share", share, "0 < share <= 1"));
            }
            if *laps == 0 {
                return Err(SimError::invalid("arrivals.laps", laps, ">= 1"));
            }
            if timestamps_s.is_empty() {
                return Err(SimError::invalid(
                    "arrivals.timestamps_s",
                    "[]",
                    "non-empty",
                ));
            }
            let mut prev = 0.0f64;
            for &t in timestamps_s {
                if !(t.is_finite() && t >= prev) {
                    return Err(SimError::invalid(
                        "arrivals.timestamps_s",
                        t,
                        "finite, >= 0, non-decreasing",
                    ));
                }
                prev = t;
            }
            if *laps > 1 && trace_lap_length_s(timestamps_s) <= 0.0 {
                return Err(SimError::invalid(
                    "arrivals.laps",
                    laps,
                    "1 when every timestamp of the trace is the same",
                ));
            }
        }
    }
    Ok(())
}

/// How far one lap of a replayed trace is shifted from the previous: its
/// span plus the mean gap between its timestamps (so that laps back to back
/// keep the trace's mean rate); 0 for a trace of one instant.
pub fn trace_lap_length_s(timestamps_s: &[f64]) -> f64 {
    match (timestamps_s.first(), timestamps_s.last()) {
        (Some(first), Some(last)) if timestamps_s.len() > 1 => {
            let span = last - first;
            span + span / (timestamps_s.len() - 1) as f64
        }
        _ => 0.0,
    }
}

/// Lazy arrival generator; `next` returns send times in non-decreasing order.
#[derive(Debug, Clone)]
pub(crate) struct Arrivals {
    process: ArrivalProcess,
    now: f64,
    index: u64,
    on: bool,
    state_end: f64,
    /// Trace: shift of each replay (see [`trace_lap_length_s`]).
    lap_s: f64,
}

impl Arrivals {
    pub fn new(process: &ArrivalProcess, rng: &mut Pcg64Mcg) -> Self {
        let state_end = match process {
            ArrivalProcess::BurstyOnOff { mean_on_s, .. } => exp(rng) * mean_on_s,
            _ => f64::INFINITY,
        };
        let lap_s = match process {
            ArrivalProcess::Trace { timestamps_s, .. } => trace_lap_length_s(timestamps_s),
            _ => 0.0,
        };
        Self {
            process: process.clone(),
            now: 0.0,
            index: 0,
            on: true,
            state_end,
            lap_s,
        }
    }

    /// Next send time, or `None` when a trace is exhausted.
    #[inline]
    pub fn next(&mut self, rng: &mut Pcg64Mcg) -> Option<f64> {
        match &self.process {
            ArrivalProcess::Poisson { rate_per_s } => {
                self.now += exp(rng) / rate_per_s;
                Some(self.now)
            }
            ArrivalProcess::Constant { rate_per_s } => {
                let t = self.index as f64 / rate_per_s;
                self.index += 1;
                Some(t)
            }
            ArrivalProcess::BurstyOnOff {
                on_rate_per_s,
                off_rate_per_s,
                mean_on_s,
                mean_off_s,
            } => loop {
                let rate = if self.on {
                    *on_rate_per_s
                } else {
                    *off_rate_per_s
                };
                let candidate = if rate > 0.0 {
                    self.now + exp(rng) / rate
                } else {
                    f64::INFINITY
                };
                if candidate < self.state_end {
                    self.now = candidate;
                    return Some(candidate);
                }
                // memoryless: restart the draw from the state change
                self.now = self.state_end;
                self.on = !self.on;
                let mean = if self.on { mean_on_s } else { mean_off_s };
                self.state_end = self.now + exp(rng) * mean;
            },
            ArrivalProcess::Diurnal {
                mean_rate_per_s,
                peak_factor,
                period_s,
            } => {
                // thinning against the peak rate
                let max_rate = mean_rate_per_s * peak_factor;
                let amplitude = peak_factor - 1.0;
                loop {
                    self.now += exp(rng) / max_rate;
                    let phase = std::f64::consts::TAU * self.now / period_s;
                    let rate = mean_rate_per_s * (1.0 + amplitude * phase.sin()).max(0.0);
                    if unit(rng) * max_rate < rate {
                        return Some(self.now);
                    }
                }
            }
            ArrivalProcess::Trace {
                timestamps_s,
                share,
                laps,
            } => {
                if *share < 1.0 {
                    // Each timestamp kept with probability `share`, drawn by the
                    // gaps: the count skipped before the next kept one is
                    // geometric (one draw per kept request, however small the share).
                    let skipped = ((-unit(rng)).ln_1p() / (-share).ln_1p()).floor();
                    self.index = self.index.saturating_add(skipped as u64);
                }
                let len = (timestamps_s.len() as u64).max(1);
                let lap = self.index / len;
                if lap >= u64::from(*laps) {
                    return None;
                }
                let t = timestamps_s.get((self.index % len) as usize).copied()?;
                self.index += 1;
                Some(t + lap as f64 * self.lap_s)
            }
        }
    }
}

#[inline]
fn exp(rng: &mut Pcg64Mcg) -> f64 {
    Exp1.sample(rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn count_until(process: ArrivalProcess, horizon: f64) -> u64 {
        let mut rng = Pcg64Mcg::seed_from_u64(3);
        let mut a = Arrivals::new(&process, &mut rng);
        let mut n = 0;
        let mut last = 0.0;
        while let Some(t) = a.next(&mut rng) {
            assert!(t >= last);
            last = t;
            if t >= horizon {
                break;
            }
            n += 1;
        }
        n
    }

    #[test]
    fn rates_match_their_means() {
        let n = count_until(ArrivalProcess::Poisson { rate_per_s: 1000.0 }, 100.0);
        assert!((n as f64 - 1e5).abs() < 1500.0, "{n}");
        let n = count_until(ArrivalProcess::Constant { rate_per_s: 1000.0 }, 100.0);
        assert_eq!(n, 100_000);
        let bursty = ArrivalProcess::BurstyOnOff {
            on_rate_per_s: 2000.0,
            off_rate_per_s: 0.0,
            mean_on_s: 1.0,
            mean_off_s: 1.0,
        };
        let n = count_until(bursty, 2000.0);
        // mean rate 1000/s; on/off cycles add variance (~2000 cycles)
        assert!((n as f64 / 2000.0 - 1000.0).abs() < 80.0, "{n}");
        let diurnal = ArrivalProcess::Diurnal {
            mean_rate_per_s: 1000.0,
            peak_factor: 1.8,
            period_s: 10.0,
        };
        let n = count_until(diurnal.clone(), 100.0);
        assert!((n as f64 - 1e5).abs() < 1500.0, "{n}");
        // first quarter period (rising to the peak) is busier than the third
        let peak = count_until(diurnal.clone(), 5.0);
        let first_half_share = peak as f64 / (n as f64 / 10.0);
        assert!(first_half_share > 0.7, "{first_half_share}");
    }

    #[test]
    fn trace_parses_and_rejects() {
        let ok = parse_trace_csv("ts,user\n0.5,a\n\n# x\n1.0,b\n1.0,c\n");
        assert_eq!(ok, Ok(vec![0.5, 1.0, 1.0]));
        assert_eq!(
            parse_trace_csv("0.5\nabc\n"),
            Err(TraceError::NotANumber {
                line: 2,
                text: "abc".into()
            })
        );
        assert!(matches!(
            parse_trace_csv("2\n1\n"),
            Err(TraceError::Decreasing { line: 2, .. })
        ));
        assert_eq!(parse_trace_csv("ts\n"), Err(TraceError::Empty));
        let n = count_until(
            ArrivalProcess::Trace {
                timestamps_s: vec![0.1, 0.2, 0.3],
                share: 1.0,
                laps: 1,
            },
            10.0,
        );
        assert_eq!(n, 3);
    }

    fn times(process: &ArrivalProcess) -> Vec<f64> {
        let mut rng = Pcg64Mcg::seed_from_u64(11);
        let mut a = Arrivals::new(process, &mut rng);
        std::iter::from_fn(|| a.next(&mut rng)).collect()
    }

    fn trace(share: f64, laps: u32) -> ArrivalProcess {
        ArrivalProcess::Trace {
            timestamps_s: (0..1_000).map(|i| 2.0 + f64::from(i) * 0.01).collect(),
            share,
            laps,
        }
    }

    #[test]
    fn share_one_is_the_trace_and_a_share_keeps_its_part_of_it() {
        let ArrivalProcess::Trace { timestamps_s, .. } = trace(1.0, 1) else {
            unreachable!()
        };
        assert_eq!(times(&trace(1.0, 1)), timestamps_s);
        for share in [0.5, 0.1, 0.01] {
            let kept = times(&trace(share, 1));
            let expect = 1_000.0 * share;
            let sd = (expect * (1.0 - share)).sqrt();
            assert!(
                (kept.len() as f64 - expect).abs() < 4.0 * sd + 1.0,
                "{share}: {}",
                kept.len()
            );
            assert!(kept.iter().all(|t| timestamps_s.contains(t)));
            assert!(kept.windows(2).all(|w| w[0] < w[1]), "each at most once");
        }
    }

    #[test]
    fn laps_replay_the_trace_back_to_back_each_thinned_afresh() {
        let all = times(&trace(1.0, 3));
        assert_eq!(all.len(), 3_000);
        assert!(all.windows(2).all(|w| w[0] <= w[1]));
        // a lap lasts the span plus the mean gap: the rate is kept across laps
        assert!((all[1_000] - 12.0).abs() < 1e-9, "{}", all[1_000]);
        assert!((all[2_999] - (2.0 + 9.99 + 20.0)).abs() < 1e-9);
        let thinned = times(&trace(0.2, 3));
        let lap = |t: &f64| ((t - 2.0) / 10.0).floor() as usize;
        let per_lap: Vec<usize> = (0..3)
            .map(|l| thinned.iter().filter(|t| lap(t) == l).count())
            .collect();
        assert!(per_lap.iter().all(|&n| (n as f64 - 200.0).abs() < 50.0));
        // not the same subset lap after lap
        let offsets = |l: usize| -> Vec<i64> {
            thinned
                .iter()
                .filter(|t| lap(t) == l)
                .map(|t| ((t - 2.0 - 10.0 * l as f64) * 100.0).round() as i64)
                .collect()
        };
        assert_ne!(offsets(0), offsets(1));
    }
}
