//! What-if: the key assumptions a user moves (TUI keys, sensitivity analysis).

use serde::{Deserialize, Serialize};

use crate::scenario::limits::{
    MAX_DURATION_S, MAX_LATENCY_SLO_MS, MAX_MONTHLY_BUDGET_USD, MAX_NETWORK_MS, MAX_RATE_PER_S,
    MAX_USD_PER_HOUR,
};
use crate::scenario::{ArrivalProcess, Scenario};

/// The furthest any what-if factor goes, either way: three orders of
/// magnitude is past any question a what-if answers, and it keeps finite the
/// figures a factor shrinks towards zero.
pub const MAX_WHAT_IF_FACTOR: f64 = 1e3;
pub const MIN_WHAT_IF_FACTOR: f64 = 1.0 / MAX_WHAT_IF_FACTOR;

/// The range one what-if factor may take for one scenario. It always holds
/// 1.0: the scenario itself is within the limits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FactorRange {
    pub min: f64,
    pub max: f64,
}

impl Default for FactorRange {
    fn default() -> Self {
        Self {
            min: MIN_WHAT_IF_FACTOR,
            max: MAX_WHAT_IF_FACTOR,
        }
    }
}

impl FactorRange {
    /// The default range, its top lowered so that `value x factor <= limit`
    /// (a `value` of 0 or less is unaffected by any factor).
    fn up_to(value: f64, limit: f64) -> FactorRange {
        let mut range = FactorRange::default();
        if value > 0.0 && value.is_finite() {
            range.max = range.max.min(limit / value).max(1.0);
        }
        range
    }

    /// `factor` moved into the range (NaN becomes 1.0, "unchanged").
    pub fn clamp(&self, factor: f64) -> f64 {
        if factor.is_nan() {
            1.0
        } else {
            factor.clamp(self.min, self.max)
        }
    }
}

/// How far each what-if factor may go for one scenario so that the scenario
/// it makes stays within [`crate::scenario::limits`] (the bounds a scenario
/// file must keep) and within [`MAX_WHAT_IF_FACTOR`] either way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct WhatIfLimits {
    /// Peak arrival rate at most `MAX_RATE_PER_S`; a trace stretched no
    /// longer than `MAX_DURATION_S`.
    pub traffic: FactorRange,
    /// Every link's p99 RTT at most `MAX_NETWORK_MS`.
    pub rtt: FactorRange,
    /// The latency SLO at most `MAX_LATENCY_SLO_MS`.
    pub slo: FactorRange,
    /// The monthly budget at most `MAX_MONTHLY_BUDGET_USD`.
    pub budget: FactorRange,
    /// Every cloud instance's price at most `MAX_USD_PER_HOUR`.
    pub instance_price: FactorRange,
}

impl WhatIfLimits {
    pub fn for_scenario(scenario: &Scenario) -> WhatIfLimits {
        let traffic = &scenario.traffic;
        let mut traffic_range = FactorRange::up_to(traffic.peak_rate_per_s(), MAX_RATE_PER_S);
        if let ArrivalProcess::Trace { timestamps_s, .. } = &traffic.process {
            // Less traffic stretches the trace and its window: both stay
            // within 30 days.
            let last = timestamps_s
                .last()
                .copied()
                .unwrap_or(0.0)
                .max(traffic.duration_s);
            if last > 0.0 && last.is_finite() {
                traffic_range.min = traffic_range.min.max(last / MAX_DURATION_S).min(1.0);
            }
        }
        let worst_rtt = scenario
            .targets
            .links
            .iter()
            .map(|link| link.rtt_median_ms.max(link.rtt_p99_ms))
            .fold(0.0, f64::max);
        let dearest = scenario
            .targets
            .cloud
            .iter()
            .map(|target| target.spec.usd_per_hour)
            .fold(0.0, f64::max);
        let budget = scenario.objectives.monthly_budget_usd.unwrap_or(0.0);
        WhatIfLimits {
            traffic: traffic_range,
            rtt: FactorRange::up_to(worst_rtt, MAX_NETWORK_MS),
            slo: FactorRange::up_to(scenario.objectives.latency_ms, MAX_LATENCY_SLO_MS),
            budget: FactorRange::up_to(budget, MAX_MONTHLY_BUDGET_USD),
            instance_price: FactorRange::up_to(dearest, MAX_USD_PER_HOUR),
        }
    }
}

/// Changes applied to a scenario before planning. Multipliers are relative to
/// the scenario's own value (1.0 = unchanged); `Default` changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WhatIf {
    /// Multiplies the arrival rate.
    pub traffic: f64,
    /// Multiplies every link's RTT (median and p99).
    pub rtt: f64,
    /// Multiplies the latency SLO.
    pub slo: f64,
    /// Multiplies the monthly budget (if the scenario has one).
    pub budget: f64,
    /// Multiplies every cloud instance's price.
    pub instance_price: f64,
    /// Replaces the fraction of time devices are offline (0..=1).
    pub offline_fraction: Option<f64>,
}

impl Default for WhatIf {
    fn default() -> Self {
        Self {
            traffic: 1.0,
            rtt: 1.0,
            slo: 1.0,
            budget: 1.0,
            instance_price: 1.0,
            offline_fraction: None,
        }
    }
}

impl WhatIf {
    /// True when nothing is changed: the plan is the scenario's own plan.
    pub fn is_identity(&self) -> bool {
        *self == WhatIf::default()
    }

    /// This what-if with each factor moved into `limits`, so the scenario
    /// [`WhatIf::apply`] makes stays within the scenario limits.
    pub fn clamped(&self, limits: &WhatIfLimits) -> WhatIf {
        WhatIf {
            traffic: limits.traffic.clamp(self.traffic),
            rtt: limits.rtt.clamp(self.rtt),
            slo: limits.slo.clamp(self.slo),
            budget: limits.budget.clamp(self.budget),
            instance_price: limits.instance_price.clamp(self.instance_price),
            offline_fraction: self.offline_fraction.map(|f| {
                if f.is_nan() {
                    0.0
                } else {
                    f.clamp(0.0, 1.0)
                }
            }),
        }
    }

    /// The scenario as it would be under these assumptions.
    pub fn apply(&self, scenario: &Scenario) -> Scenario {
        let mut s = scenario.clone();
        if self.traffic != 1.0 {
            s.traffic.rate_per_s *= self.traffic;
            if let ArrivalProcess::Trace { timestamps_s, .. } = &mut s.traffic.process {
                for t in timestamps_s.iter_mut() {
                    *t /= self.traffic;
                }
                // The trace replays faster: so does its window (it had
                // stayed as long, with nothing arriving after the trace).
                s.traffic.duration_s /= self.traffic;
            }
        }
        for link in &mut s.targets.links {
            link.rtt_median_ms *= self.rtt;
            link.rtt_p99_ms *= self.rtt;
        }
        for target in &mut s.targets.cloud {
            target.spec.usd_per_hour *= self.instance_price;
        }
        s.objectives.latency_ms *= self.slo;
        if let Some(budget) = &mut s.objectives.monthly_budget_usd {
            *budget *= self.budget;
        }
        if let Some(offline) = self.offline_fraction {
            s.constraints.offline_fraction = offline.clamp(0.0, 1.0);
        }
        s
    }

    /// Each change in words ("traffic x2.00"), for reports and the TUI.
    pub fn changes(&self) -> Vec<String> {
        let mut parts = Vec::new();
        for (name, value) in [
            ("traffic", self.traffic),
            ("RTT", self.rtt),
            ("SLO", self.slo),
            ("budget", self.budget),
            ("price", self.instance_price),
        ] {
            if (value - 1.0).abs() > 1e-9 {
                parts.push(format!("{name} x{}", format_factor(value)));
            }
        }
        if let Some(offline) = self.offline_fraction {
            parts.push(format!("offline {:.0}%", offline * 100.0));
        }
        parts
    }

    /// Short description of what differs from the scenario ("traffic x2.00, SLO x0.80").
    pub fn describe(&self) -> String {
        let parts = self.changes();
        if parts.is_empty() {
            "as in the scenario".to_string()
        } else {
            parts.join(", ")
        }
    }
}

/// A factor with two decimals, more below 0.1 so that a small one never
/// reads "x0.00" (0.05 is "0.050", 0.0013 is "0.0013").
pub fn format_factor(value: f64) -> String {
    let decimals = if value > 0.0 && value < 0.1 {
        // Two significant digits.
        (1.0 - value.log10().floor()).clamp(2.0, 12.0) as usize
    } else {
        2
    };
    format!("{value:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_changes_nothing_and_says_so() {
        let w = WhatIf::default();
        assert!(w.is_identity());
        assert_eq!(w.describe(), "as in the scenario");
        let w = WhatIf {
            traffic: 2.0,
            offline_fraction: Some(0.3),
            ..WhatIf::default()
        };
        assert_eq!(w.describe(), "traffic x2.00, offline 30%");
    }

    /// Twice the traffic replays a trace twice as fast, over half the window.
    #[test]
    fn more_traffic_replays_a_trace_faster_over_a_shorter_window() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/valid/trace-replay-custom-target.toml");
        let s = crate::scenario::load(&path).unwrap();
        let doubled = WhatIf {
            traffic: 2.0,
            ..WhatIf::default()
        }
        .apply(&s);
        let timestamps = |s: &Scenario| match &s.traffic.process {
            ArrivalProcess::Trace { timestamps_s, .. } => timestamps_s.clone(),
            other => panic!("not a trace: {other:?}"),
        };
        let (before, after) = (timestamps(&s), timestamps(&doubled));
        assert_eq!(before.len(), after.len());
        assert!((after[after.len() - 1] * 2.0 - before[before.len() - 1]).abs() < 1e-9);
        assert!((doubled.traffic.duration_s * 2.0 - s.traffic.duration_s).abs() < 1e-9);
        assert!((doubled.traffic.rate_per_s - 2.0 * s.traffic.rate_per_s).abs() < 1e-9);
    }
}

#[cfg(test)]
mod limit_tests {
    use std::path::Path;

    use super::*;
    use crate::scenario::load;

    fn shipped(name: &str) -> Scenario {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join(name);
        match load(&path) {
            Ok(scenario) => scenario,
            Err(e) => panic!("{}: {e:?}", path.display()),
        }
    }

    /// The figures a what-if scales, checked against the scenario limits.
    fn assert_within_limits(s: &Scenario) {
        let peak = s.traffic.peak_rate_per_s();
        assert!(peak > 0.0 && peak <= MAX_RATE_PER_S, "peak rate {peak}");
        let slo = s.objectives.latency_ms;
        assert!(slo > 0.0 && slo <= MAX_LATENCY_SLO_MS, "SLO {slo}");
        for link in &s.targets.links {
            assert!(link.rtt_p99_ms <= MAX_NETWORK_MS, "{}", link.rtt_p99_ms);
            assert!(link.rtt_median_ms <= MAX_NETWORK_MS);
        }
        for target in &s.targets.cloud {
            let price = target.spec.usd_per_hour;
            assert!(price > 0.0 && price <= MAX_USD_PER_HOUR, "price {price}");
        }
        if let Some(budget) = s.objectives.monthly_budget_usd {
            assert!(
                budget > 0.0 && budget <= MAX_MONTHLY_BUDGET_USD,
                "budget {budget}"
            );
        }
    }

    #[test]
    fn a_clamped_what_if_keeps_the_scenario_within_its_limits() {
        let scenario = shipped("assistant-speech.toml");
        let limits = WhatIfLimits::for_scenario(&scenario);
        // 1.25^150 and 1.25^-150: what 150 key presses asked for before the cap.
        for factor in [1.25f64.powi(150), 1.25f64.powi(-150), f64::INFINITY, 0.0] {
            let wild = WhatIf {
                traffic: factor,
                rtt: factor,
                slo: factor,
                budget: factor,
                instance_price: factor,
                offline_fraction: Some(factor),
            };
            let clamped = wild.clamped(&limits);
            assert_within_limits(&clamped.apply(&scenario));
            for f in [
                clamped.traffic,
                clamped.rtt,
                clamped.slo,
                clamped.budget,
                clamped.instance_price,
            ] {
                assert!(
                    (MIN_WHAT_IF_FACTOR..=MAX_WHAT_IF_FACTOR).contains(&f),
                    "{f}"
                );
            }
        }
        // What is within the limits is left alone.
        let modest = WhatIf {
            traffic: 2.0,
            slo: 0.5,
            ..WhatIf::default()
        };
        assert_eq!(modest.clamped(&limits), modest);
    }

    #[test]
    fn the_traffic_cap_follows_the_scenarios_peak_rate() {
        let mut scenario = shipped("assistant-speech.toml");
        scenario.traffic.rate_per_s = 5e6;
        let peak = scenario.traffic.peak_rate_per_s();
        let limits = WhatIfLimits::for_scenario(&scenario);
        assert!((limits.traffic.max - MAX_RATE_PER_S / peak).abs() < 1e-9 * limits.traffic.max);
        let capped = WhatIf {
            traffic: 1e3,
            ..WhatIf::default()
        }
        .clamped(&limits);
        let scaled = capped.apply(&scenario).traffic.peak_rate_per_s();
        assert!(scaled <= MAX_RATE_PER_S * (1.0 + 1e-12), "{scaled}");
        assert!(
            scaled >= MAX_RATE_PER_S * 0.999,
            "capped at the limit, not below: {scaled}"
        );
        // The SLO cap: an hour.
        let slo = scenario.objectives.latency_ms;
        assert!((limits.slo.max - (MAX_LATENCY_SLO_MS / slo).min(MAX_WHAT_IF_FACTOR)).abs() < 1e-9);
        // The price cap: the dearest instance at MAX_USD_PER_HOUR.
        assert!(!scenario.targets.cloud.is_empty());
        for target in &mut scenario.targets.cloud {
            target.spec.usd_per_hour = MAX_USD_PER_HOUR / 4.0;
        }
        let limits = WhatIfLimits::for_scenario(&scenario);
        assert!((limits.instance_price.max - 4.0).abs() < 1e-12);
    }

    #[test]
    fn small_factors_never_read_as_zero() {
        assert_eq!(format_factor(1.25), "1.25");
        assert_eq!(format_factor(0.05), "0.050");
        assert_eq!(format_factor(0.0013), "0.0013");
        let w = WhatIf {
            slo: 1.25f64.powi(-40),
            ..WhatIf::default()
        };
        assert_eq!(w.describe(), "SLO x0.00013");
    }
}
