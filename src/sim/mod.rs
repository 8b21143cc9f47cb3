//! Discrete-event serving simulator and cost model.
//!
//! [`simulate`] runs one [`SimConfig`] (arrivals, network, broker, serving
//! pool with dynamic batching, edge devices, precomputed lookups) and returns
//! a [`SimOutcome`]: latency percentiles from a streaming histogram,
//! throughput, utilisation, queue lengths, failures by reason, staleness,
//! energy, egress and Little's-law inputs. Memory does not grow with the
//! number of simulated requests: statistics are streaming, queues bounded.
//!
//! Determinism: the simulation owns its PCG generators, all derived from
//! `config.seed`; events are ordered by (time in integer nanoseconds,
//! sequence number), so ties resolve the same way every run and the
//! serialized outcome is identical byte for byte for the same config.
//!
//! Common random numbers: each source of randomness (arrivals, routes,
//! network, broker, connectivity, balancer, service noise, lookups) has its
//! own stream, and per-request draws are keyed by the request's index, so
//! request k sees the same send time, network delays and service-time noise
//! in every plan simulated with one seed. Plans then differ by what they
//! change, not by noise: a plan with less compute is not slower by chance.
//!
//! Mapping a candidate plan (what the planner does):
//! - online-http: `Mode::Online` with `Transport::Http`, the region's
//!   [`NetworkLink`] (RTT median/p99 from the scenario), a [`ServingPool`]
//!   with the instance count, balancer, batching and the projected
//!   [`ServiceTime::Profile`] (batch size -> median, p99);
//! - online-stream: the same with `Transport::Stream(Broker { .. })`;
//! - batch: [`plan_batch_job`] for feasibility, cost and staleness, then
//!   `Mode::BatchLookup` with its `schedule` for request-time latency;
//! - hybrid precompute: [`zipf_hit_rate`] for the hit rate, a batch job over
//!   the cached items, `Mode::PrecomputeHybrid`;
//! - edge / edge + cloud fallback: `Mode::Edge` / `Mode::EdgeWithFallback`
//!   with the device's projected profile and power;
//! - cost: [`cost::monthly_usage`] of the outcome, priced by [`cost::estimate`].
//!
//! Analytic helpers: [`plan_batch_job`] (periodic batch prediction job:
//! duration, instance-hours, storage, staleness, feasibility),
//! [`zipf_hit_rate`] (hybrid precompute hit rate) and [`cost`] (monthly
//! cost and $/1M predictions).

mod arrivals;
mod batch;
mod config;
pub mod cost;
mod dist;
mod engine;
mod network;
mod stats;
mod streams;

pub use arrivals::{parse_trace_csv, trace_lap_length_s, TraceError};
pub use batch::{plan_batch_job, BatchInfeasible, BatchJobConfig, BatchJobPlan, InputSpace};
pub use config::{
    ArrivalProcess, Autoscale, Balancer, Batching, Broker, ColdStart, EarlyStop, EdgeDevices,
    JobSchedule, LatencyFit, LookupPath, Mode, NetworkLink, Offline, OfflinePolicy, OnlinePath,
    Payload, ProfilePoint, RunControl, ServiceTime, ServingPool, SimConfig, Throttling, Transport,
    TAIL_REQUESTS_PER_BATCH,
};
pub use dist::{generalized_harmonic, interpolate_profile, lognormal_params, zipf_hit_rate, Z99};
pub use engine::simulate;
#[doc(hidden)]
pub use engine::{simulate_with_footprint, StateFootprint};
pub use network::MAX_RETRANSMISSIONS;
pub use stats::{
    CdfPoint, EarlyStopReport, EnergyStats, Failures, HistogramBucket, LagStats, LatencySummary,
    LittlesLaw, PathCounts, PoolStats, ReplicaStats, SimOutcome, StalenessStats, CDF_QUANTILES,
};

use thiserror::Error;

/// Why a simulation could not run.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SimError {
    #[error("invalid simulation config: {field} = {value}; expected {expected}")]
    InvalidConfig {
        field: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("latency histogram: {0}")]
    Histogram(String),
}

impl SimError {
    pub(crate) fn invalid(
        field: &'static str,
        value: impl std::fmt::Display,
        expected: &'static str,
    ) -> Self {
        SimError::InvalidConfig {
            field,
            value: value.to_string(),
            expected,
        }
    }
}
