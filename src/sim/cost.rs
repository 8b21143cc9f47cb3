//! Cost model: $/month and $/1M predictions with a per-line breakdown.
//!
//! [`estimate`] prices a monthly [`Usage`]; [`monthly_usage`] derives that
//! usage from a simulation outcome (rates observed over the measured window,
//! scaled to a month of [`HOURS_PER_MONTH`] and, when given, from the arrival
//! rate simulated to the long-run mean: see [`traffic_scale`]).

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::batch::BatchJobPlan;
use super::stats::SimOutcome;

/// Billing convention: 730 hours per month.
pub const HOURS_PER_MONTH: f64 = 730.0;
const SECONDS_PER_MONTH: f64 = HOURS_PER_MONTH * 3600.0;
const BYTES_PER_GB: f64 = 1e9;
const JOULES_PER_KWH: f64 = 3.6e6;

/// Prices (USD).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CostRates {
    /// Serving instance, per instance-hour.
    pub instance_per_hour: f64,
    /// Batch-job instance, per instance-hour.
    pub batch_instance_per_hour: f64,
    /// Data out of the cloud, per GB.
    pub egress_per_gb: f64,
    /// Broker cluster, fixed per month (when used).
    pub broker_per_month: f64,
    /// Broker traffic, per GB through it.
    pub broker_per_gb: f64,
    /// Prediction storage, per GB-month.
    pub storage_per_gb_month: f64,
    /// Electricity for edge devices, per kWh.
    pub energy_per_kwh: f64,
}

/// Monthly quantities to price.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Serving replicas running all month (may be fractional: an average).
    pub replicas: f64,
    /// Instances running all month that carry events from the broker to an
    /// HTTP service (billed at the serving instance's price, on a line of
    /// their own: they are not the plan's replicas).
    #[serde(default)]
    pub bridge_instances: f64,
    pub batch_instance_hours: f64,
    pub egress_bytes: f64,
    pub broker: bool,
    pub broker_bytes: f64,
    pub storage_bytes: f64,
    pub edge_energy_j: f64,
    /// Predictions served per month (for $/1M).
    pub predictions: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostLine {
    pub item: String,
    pub quantity: f64,
    pub unit: String,
    pub unit_price_usd: f64,
    pub monthly_usd: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostEstimate {
    /// Lines with a non-zero quantity, in a fixed order.
    pub lines: Vec<CostLine>,
    pub monthly_usd: f64,
    /// `None` when no predictions are served.
    pub usd_per_million_predictions: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum CostError {
    #[error("invalid cost input: {field} = {value}; expected a finite value >= 0")]
    Invalid { field: &'static str, value: f64 },
}

fn check(field: &'static str, value: f64) -> Result<f64, CostError> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(CostError::Invalid { field, value })
    }
}

/// Prices a month of usage.
pub fn estimate(usage: &Usage, rates: &CostRates) -> Result<CostEstimate, CostError> {
    let mut lines = Vec::new();
    let mut line = |item: &str, quantity: f64, unit: &str, price: f64| {
        if quantity > 0.0 {
            lines.push(CostLine {
                item: item.to_string(),
                quantity,
                unit: unit.to_string(),
                unit_price_usd: price,
                monthly_usd: quantity * price,
            });
        }
    };
    line(
        "serving instances",
        check("replicas", usage.replicas)? * HOURS_PER_MONTH,
        "instance-hours",
        check("instance_per_hour", rates.instance_per_hour)?,
    );
    line(
        "broker-to-HTTP bridge",
        check("bridge_instances", usage.bridge_instances)? * HOURS_PER_MONTH,
        "instance-hours",
        check("instance_per_hour", rates.instance_per_hour)?,
    );
    line(
        "batch job instances",
        check("batch_instance_hours", usage.batch_instance_hours)?,
        "instance-hours",
        check("batch_instance_per_hour", rates.batch_instance_per_hour)?,
    );
    line(
        "egress",
        check("egress_bytes", usage.egress_bytes)? / BYTES_PER_GB,
        "GB",
        check("egress_per_gb", rates.egress_per_gb)?,
    );
    if usage.broker {
        line(
            "broker cluster",
            1.0,
            "month",
            check("broker_per_month", rates.broker_per_month)?,
        );
        line(
            "broker traffic",
            check("broker_bytes", usage.broker_bytes)? / BYTES_PER_GB,
            "GB",
            check("broker_per_gb", rates.broker_per_gb)?,
        );
    }
    line(
        "prediction storage",
        check("storage_bytes", usage.storage_bytes)? / BYTES_PER_GB,
        "GB-month",
        check("storage_per_gb_month", rates.storage_per_gb_month)?,
    );
    line(
        "edge energy",
        check("edge_energy_j", usage.edge_energy_j)? / JOULES_PER_KWH,
        "kWh",
        check("energy_per_kwh", rates.energy_per_kwh)?,
    );
    // from +0: an empty `sum` of floats is -0.0, printed "$-0"
    let monthly_usd = lines.iter().fold(0.0, |total, l| total + l.monthly_usd);
    let predictions = check("predictions", usage.predictions)?;
    Ok(CostEstimate {
        lines,
        monthly_usd,
        usd_per_million_predictions: (predictions > 0.0).then(|| monthly_usd / predictions * 1e6),
    })
}

/// What the outcome alone does not know.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UsageInputs<'a> {
    /// Serving replicas billed: the pool size, or `PoolStats::mean_replicas`
    /// of the outcome when the pool autoscales.
    pub replicas: f64,
    /// Batch job feeding lookups, if any.
    pub batch_job: Option<&'a BatchJobPlan>,
    /// Request + response bytes per message through the broker, if used.
    pub broker_bytes_per_message: Option<f64>,
    /// Real devices per simulated device (fleet scaling of edge energy).
    pub devices_per_simulated_device: f64,
    /// Long-run mean arrival rate (per second) of the traffic simulated.
    /// Usage that follows the traffic (predictions, broker and egress bytes,
    /// busy energy) is scaled from the rate simulated to it: a run of a
    /// minute or less is often a burst or a diurnal peak and must not be
    /// billed as if it lasted all month. `None`: bill the rate simulated.
    pub mean_rate_per_s: Option<f64>,
}

/// Long-run mean arrival rate over the rate simulated (measured arrivals
/// over the measured window), for every arrival process; 1 when either is
/// not a positive number.
pub fn traffic_scale(outcome: &SimOutcome, mean_rate_per_s: f64) -> f64 {
    let simulated = outcome.measured_arrival_rate_per_s();
    if simulated > 0.0 && mean_rate_per_s.is_finite() && mean_rate_per_s > 0.0 {
        mean_rate_per_s / simulated
    } else {
        1.0
    }
}

/// Monthly usage implied by a simulation: per-second rates over the
/// measured window (energy over the whole run) times a month, at the mean
/// rate when [`UsageInputs::mean_rate_per_s`] is given.
pub fn monthly_usage(outcome: &SimOutcome, inputs: &UsageInputs<'_>) -> Usage {
    let window = outcome.measured_window_s;
    let mean = inputs.mean_rate_per_s.filter(|m| m.is_finite() && *m > 0.0);
    let scale = mean.map_or(1.0, |m| traffic_scale(outcome, m));
    let per_month = |x: f64, over: f64| {
        if over > 0.0 {
            x / over * SECONDS_PER_MONTH
        } else {
            0.0
        }
    };
    let predictions = per_month(outcome.completed as f64, window) * scale;
    let cloud_messages = per_month(outcome.paths.cloud as f64, window) * scale;
    // Busy energy follows the traffic: energy per arrival times the mean
    // arrivals (as the busy share at the mean does, see
    // `SimOutcome::busy_share_at`). Idle energy follows the clock.
    let busy_energy = |busy_j: f64| match mean {
        Some(m) if outcome.simulated_requests > 0 => {
            outcome.per_second_at(busy_j, m) * SECONDS_PER_MONTH
        }
        _ => per_month(busy_j, outcome.simulated_time_s),
    };
    Usage {
        replicas: inputs.replicas,
        bridge_instances: 0.0,
        batch_instance_hours: inputs.batch_job.map_or(0.0, |j| j.instance_hours_per_month),
        egress_bytes: per_month(outcome.egress_bytes as f64, window) * scale,
        broker: inputs.broker_bytes_per_message.is_some(),
        broker_bytes: inputs
            .broker_bytes_per_message
            .map_or(0.0, |b| b * cloud_messages),
        storage_bytes: inputs.batch_job.map_or(0.0, |j| j.storage_bytes as f64),
        edge_energy_j: outcome.energy.map_or(0.0, |e| {
            (busy_energy(e.busy_energy_j) + per_month(e.idle_energy_j, outcome.simulated_time_s))
                * inputs.devices_per_simulated_device
        }),
        predictions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates() -> CostRates {
        CostRates {
            instance_per_hour: 1.0,
            batch_instance_per_hour: 2.0,
            egress_per_gb: 0.09,
            broker_per_month: 500.0,
            broker_per_gb: 0.01,
            storage_per_gb_month: 0.023,
            energy_per_kwh: 0.3,
        }
    }

    #[test]
    fn lines_add_up() {
        let usage = Usage {
            replicas: 3.0,
            bridge_instances: 1.0,
            batch_instance_hours: 10.0,
            egress_bytes: 100e9,
            broker: true,
            broker_bytes: 50e9,
            storage_bytes: 2e9,
            edge_energy_j: 3.6e6 * 10.0,
            predictions: 2e6,
        };
        let c = estimate(&usage, &rates()).expect("valid");
        let expect = (3.0 + 1.0) * 730.0 + 20.0 + 9.0 + 500.0 + 0.5 + 0.046 + 3.0;
        assert!((c.monthly_usd - expect).abs() < 1e-9, "{}", c.monthly_usd);
        assert_eq!(c.lines.len(), 8);
        let bridge = c
            .lines
            .iter()
            .find(|l| l.item == "broker-to-HTTP bridge")
            .expect("a bridge line");
        assert_eq!(bridge.quantity, 730.0);
        let per_m = c.usd_per_million_predictions.unwrap_or(0.0);
        assert!((per_m - expect / 2.0).abs() < 1e-9);
        let mut bad = usage;
        bad.replicas = -1.0;
        assert!(estimate(&bad, &rates()).is_err());
        let none = estimate(&Usage::default(), &rates()).expect("valid");
        assert!(none.lines.is_empty() && none.usd_per_million_predictions.is_none());
    }

    #[test]
    fn nothing_to_pay_is_plus_zero() {
        // an empty float sum is -0.0, which a report printed as "$-0/month"
        let none = estimate(&Usage::default(), &rates()).expect("valid");
        assert!(none.monthly_usd == 0.0 && none.monthly_usd.is_sign_positive());
        assert_eq!(format!("{:.0}", none.monthly_usd), "0");
    }
}
