//! Batch prediction: a periodic job over a finite input space.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::config::JobSchedule;
use super::cost::HOURS_PER_MONTH;

/// The inputs a batch job must score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InputSpace {
    /// A known, finite number of distinct inputs (users, items, ...).
    Finite { items: u64 },
    /// Free-form inputs (text, images): cannot be enumerated.
    Unbounded,
}

/// A periodic batch job.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BatchJobConfig {
    pub input_space: InputSpace,
    /// Predictions per second of one instance at a large batch size.
    pub throughput_per_instance_per_s: f64,
    pub instances: u32,
    /// Time between job starts (e.g. 86_400 for daily).
    pub period_s: f64,
    /// Fixed overhead per run (provisioning, loading the model and data).
    pub startup_s: f64,
    /// Stored bytes per prediction (key + value).
    pub prediction_bytes: u64,
}

/// What a feasible job costs and implies.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BatchJobPlan {
    /// Wall time of one run (startup + items / total throughput).
    pub duration_s: f64,
    /// duration / period.
    pub period_fraction: f64,
    pub instance_hours_per_run: f64,
    pub runs_per_month: f64,
    pub instance_hours_per_month: f64,
    /// Size of one full set of stored predictions.
    pub storage_bytes: u64,
    /// Age of a served prediction over the refresh cycle (see
    /// [`JobSchedule::mean_age_s`]): mean (period + duration) / 2 and
    /// maximum period + duration (scored at the start of a run, served
    /// until the next run publishes).
    pub mean_staleness_s: f64,
    pub max_staleness_s: f64,
    pub schedule: JobSchedule,
}

/// Why batch prediction cannot serve this.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum BatchInfeasible {
    #[error("inputs unbounded: cannot precompute")]
    UnboundedInputs,
    #[error("batch job takes {duration_s:.0} s, longer than its period of {period_s:.0} s")]
    MissesPeriod { duration_s: f64, period_s: f64 },
    #[error("invalid batch job: {field} = {value}; expected {expected}")]
    InvalidConfig {
        field: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// Plans a periodic batch job, or says why it is infeasible.
pub fn plan_batch_job(job: &BatchJobConfig) -> Result<BatchJobPlan, BatchInfeasible> {
    let invalid = |field, value: f64, expected| BatchInfeasible::InvalidConfig {
        field,
        value: value.to_string(),
        expected,
    };
    let items = match job.input_space {
        InputSpace::Unbounded => return Err(BatchInfeasible::UnboundedInputs),
        InputSpace::Finite { items } => items,
    };
    let tput = job.throughput_per_instance_per_s;
    if !(tput.is_finite() && tput > 0.0) {
        return Err(invalid("throughput_per_instance_per_s", tput, "finite > 0"));
    }
    if job.instances == 0 {
        return Err(invalid("instances", 0.0, ">= 1"));
    }
    if !(job.period_s.is_finite() && job.period_s > 0.0) {
        return Err(invalid("period_s", job.period_s, "finite > 0"));
    }
    if !(job.startup_s.is_finite() && job.startup_s >= 0.0) {
        return Err(invalid("startup_s", job.startup_s, "finite >= 0"));
    }
    let instances = f64::from(job.instances);
    let duration_s = job.startup_s + items as f64 / (tput * instances);
    if duration_s > job.period_s {
        return Err(BatchInfeasible::MissesPeriod {
            duration_s,
            period_s: job.period_s,
        });
    }
    let instance_hours_per_run = duration_s * instances / 3600.0;
    let runs_per_month = HOURS_PER_MONTH * 3600.0 / job.period_s;
    let schedule = JobSchedule {
        period_s: job.period_s,
        duration_s,
    };
    Ok(BatchJobPlan {
        duration_s,
        period_fraction: duration_s / job.period_s,
        instance_hours_per_run,
        runs_per_month,
        instance_hours_per_month: instance_hours_per_run * runs_per_month,
        storage_bytes: items.saturating_mul(job.prediction_bytes),
        mean_staleness_s: schedule.mean_age_s(),
        max_staleness_s: schedule.max_age_s(),
        schedule,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(items: u64, instances: u32) -> BatchJobConfig {
        BatchJobConfig {
            input_space: InputSpace::Finite { items },
            throughput_per_instance_per_s: 10_000.0,
            instances,
            period_s: 86_400.0,
            startup_s: 600.0,
            prediction_bytes: 64,
        }
    }

    #[test]
    fn daily_job_numbers() {
        let plan = plan_batch_job(&job(72_000_000, 2)).expect("feasible");
        assert!((plan.duration_s - (600.0 + 3600.0)).abs() < 1e-9);
        assert!((plan.instance_hours_per_run - 4200.0 * 2.0 / 3600.0).abs() < 1e-9);
        assert!((plan.runs_per_month - 730.0 / 24.0).abs() < 1e-9);
        assert_eq!(plan.storage_bytes, 72_000_000 * 64);
        assert!((plan.mean_staleness_s - (86_400.0 + 4200.0) / 2.0).abs() < 1e-9);
        assert!((plan.max_staleness_s - (86_400.0 + 4200.0)).abs() < 1e-9);
    }

    #[test]
    fn infeasible_reasons() {
        let mut unbounded = job(1, 1);
        unbounded.input_space = InputSpace::Unbounded;
        assert_eq!(
            plan_batch_job(&unbounded),
            Err(BatchInfeasible::UnboundedInputs)
        );
        assert!(matches!(
            plan_batch_job(&job(10_000_000_000, 1)),
            Err(BatchInfeasible::MissesPeriod { .. })
        ));
        assert!(matches!(
            plan_batch_job(&job(1, 0)),
            Err(BatchInfeasible::InvalidConfig { .. })
        ));
    }
}
