//! A machine a plan may be placed on: a cloud instance type or an edge device class.

use serde::{Deserialize, Serialize};
use workbench_kernels::Precision;

/// Cloud instance types are rented per hour; edge devices are owned by users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    Cloud,
    Edge,
}

/// Published figures of one target, after catalog lookup and scenario overrides.
/// Throughputs are for the whole machine (all cores the model may use).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetSpec {
    pub name: String,
    pub kind: TargetKind,
    /// Cores (vCPUs) available to the model.
    pub cores: u32,
    pub memory_bytes: u64,
    /// Peak f32 throughput, GFLOP/s.
    pub peak_gflops_f32: f64,
    /// Peak int8 throughput, G ops/s (0 = no int8 acceleration: emulated at f32 speed).
    pub peak_gops_int8: f64,
    /// Sustained memory bandwidth, GB/s.
    pub mem_bandwidth_gbs: f64,
    /// Precisions the target can run.
    pub precisions: Vec<Precision>,
    /// Cloud: on-demand price. Edge: 0 (the user owns the device).
    pub usd_per_hour: f64,
    /// Time to start one more replica (cloud) or load the model (edge).
    pub cold_start_ms: f64,
    /// Power draw under load (edge energy per prediction).
    pub power_watts: f64,
    /// Where the figures come from (datasheet, benchmark), shown in reports.
    pub source: String,
}
