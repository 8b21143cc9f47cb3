//! What-if: the key assumptions a user moves (TUI keys, sensitivity analysis).

use serde::{Deserialize, Serialize};

use crate::scenario::{ArrivalProcess, Scenario};

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

    /// The scenario as it would be under these assumptions.
    pub fn apply(&self, scenario: &Scenario) -> Scenario {
        let mut s = scenario.clone();
        if self.traffic != 1.0 {
            s.traffic.rate_per_s *= self.traffic;
            if let ArrivalProcess::Trace { timestamps_s, .. } = &mut s.traffic.process {
                for t in timestamps_s.iter_mut() {
                    *t /= self.traffic;
                }
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
                parts.push(format!("{name} x{value:.2}"));
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
}
