//! What-if: the key assumptions a user moves (TUI keys, sensitivity analysis).

use serde::{Deserialize, Serialize};

use crate::scenario::{ArrivalProcess, Scenario};

/// Changes applied to a scenario before planning. `Default` changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WhatIf {
    /// Multiplies the arrival rate.
    pub traffic_factor: f64,
    /// Multiplies every link's RTT (median and p99).
    pub rtt_factor: f64,
    /// Multiplies every cloud instance's price.
    pub price_factor: f64,
    /// Replaces the latency SLO (ms).
    pub slo_ms: Option<f64>,
    /// Replaces the monthly budget (USD).
    pub budget_usd: Option<f64>,
    /// Replaces the fraction of time devices are offline.
    pub offline_fraction: Option<f64>,
}

impl Default for WhatIf {
    fn default() -> Self {
        Self {
            traffic_factor: 1.0,
            rtt_factor: 1.0,
            price_factor: 1.0,
            slo_ms: None,
            budget_usd: None,
            offline_fraction: None,
        }
    }
}

impl WhatIf {
    pub fn is_identity(&self) -> bool {
        *self == WhatIf::default()
    }

    /// The scenario as it would be under these assumptions.
    pub fn apply(&self, scenario: &Scenario) -> Scenario {
        let mut s = scenario.clone();
        if self.traffic_factor != 1.0 {
            s.traffic.rate_per_s *= self.traffic_factor;
            if let ArrivalProcess::Trace { timestamps_s, .. } = &mut s.traffic.process {
                for t in timestamps_s.iter_mut() {
                    *t /= self.traffic_factor;
                }
            }
        }
        for link in &mut s.targets.links {
            link.rtt_median_ms *= self.rtt_factor;
            link.rtt_p99_ms *= self.rtt_factor;
        }
        for target in &mut s.targets.cloud {
            target.spec.usd_per_hour *= self.price_factor;
        }
        if let Some(slo) = self.slo_ms {
            s.objectives.latency_ms = slo;
        }
        if let Some(budget) = self.budget_usd {
            s.objectives.monthly_budget_usd = Some(budget);
        }
        if let Some(offline) = self.offline_fraction {
            s.constraints.offline_fraction = offline.clamp(0.0, 1.0);
        }
        s
    }

    /// Lines describing what differs from the scenario, for reports and the TUI.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let factor = |name: &str, f: f64, lines: &mut Vec<String>| {
            if f != 1.0 {
                lines.push(format!("{name} x{f:.2}"));
            }
        };
        factor("traffic", self.traffic_factor, &mut lines);
        factor("RTT", self.rtt_factor, &mut lines);
        factor("instance price", self.price_factor, &mut lines);
        if let Some(v) = self.slo_ms {
            lines.push(format!("SLO {v:.1} ms"));
        }
        if let Some(v) = self.budget_usd {
            lines.push(format!("budget ${v:.0}/month"));
        }
        if let Some(v) = self.offline_fraction {
            lines.push(format!("offline {:.0}%", v * 100.0));
        }
        lines
    }
}
