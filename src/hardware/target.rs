//! A machine a plan may be placed on: a cloud instance type or an edge device class.

use serde::{Deserialize, Serialize};
use workbench_kernels::Precision;

/// Fork and join of one parallel op, µs, when neither catalog nor scenario
/// says otherwise. This project's thread pool, 2 threads with helpers polling
/// (`cargo run --release -p workbench-kernels --example tile_ab -- --threads`),
/// runs `mlp-1024` batch 1 (3 parallel GEMMs) 1.75-1.80x faster, not 2x:
/// about 2.5 µs per parallel op. Joining more cores takes longer and real runtimes
/// add their own dispatch, so the default is twice that. A runtime whose
/// threads sleep between ops pays its wake-up instead (50 µs and more).
pub const DEFAULT_PARALLEL_OVERHEAD_US: f64 = 5.0;

fn one_thread_per_core() -> u32 {
    1
}

fn default_parallel_overhead_us() -> f64 {
    DEFAULT_PARALLEL_OVERHEAD_US
}

impl TargetSpec {
    /// Physical cores: vCPUs over hardware threads per core, at least 1.
    pub fn physical_cores(&self) -> u32 {
        (self.cores / self.threads_per_core.max(1)).max(1)
    }

    /// How many times the average physical core's rate a thread alone runs
    /// at: [`TargetSpec::fastest_core_speedup`], 1 when absent or not a
    /// number, and never above the physical cores (one core cannot outrun
    /// the whole machine, whose peak is their sum).
    pub fn one_thread_speedup(&self) -> f64 {
        let cores = f64::from(self.physical_cores());
        match self.fastest_core_speedup {
            Some(s) if s.is_finite() && s > 1.0 => s.min(cores),
            _ => 1.0,
        }
    }
}

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
    /// Hardware threads per physical core (2 for x86 cloud vCPUs): one thread
    /// alone gets a whole physical core, `peak / (cores / threads_per_core)`.
    #[serde(default = "one_thread_per_core")]
    pub threads_per_core: u32,
    pub memory_bytes: u64,
    /// Peak f32 throughput, GFLOP/s.
    pub peak_gflops_f32: f64,
    /// Peak int8 throughput, G ops/s (0 = no int8 acceleration: emulated at f32 speed).
    pub peak_gops_int8: f64,
    /// Sustained memory bandwidth, GB/s.
    pub mem_bandwidth_gbs: f64,
    /// Cache the model's cores have (their L2 and their share of L3): an op
    /// whose bytes fit streams them at cache speed, which grows with the cores,
    /// not at `mem_bandwidth_gbs`. 0: every byte comes from memory.
    #[serde(default)]
    pub cache_bytes: u64,
    /// Precisions the target can run.
    pub precisions: Vec<Precision>,
    /// Cloud: on-demand price. Edge: 0 (the user owns the device).
    pub usd_per_hour: f64,
    /// Time to start one more replica (cloud) or load the model (edge).
    pub cold_start_ms: f64,
    /// Power draw under load (edge energy per prediction).
    pub power_watts: f64,
    /// Power draw between inputs, counted against the model where the device
    /// stays awake for it (a board kept on to listen for a wake word): a
    /// device's average power is this plus its busy share of
    /// `power_watts - idle_power_watts`, and its energy bill follows. 0: the
    /// device sleeps between inputs, or is on anyway (a phone), so only the
    /// model's busy draw counts.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub idle_power_watts: f64,
    /// Cost of one parallel op on this target: handing its work to the other
    /// cores and waiting for the last (fork and join, load imbalance), in µs.
    /// An op whose compute would save less than this by using every core is
    /// projected on one core (see [`crate::hardware::project`]).
    #[serde(default = "default_parallel_overhead_us")]
    pub parallel_overhead_us: f64,
    /// Cores that differ (a phone's big core among smaller ones, a laptop
    /// core boosting alone above the all-core clock): how many times the
    /// average physical core's rate (`peak / physical cores`, f32 and int8
    /// alike) the fastest core computes at. Work kept on one thread runs on
    /// it, the OS scheduling a busy thread on the big core; work split over
    /// all cores still gets the whole peak. None: all cores alike.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fastest_core_speedup: Option<f64>,
    /// Where the figures come from (datasheet, benchmark), shown in reports.
    pub source: String,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_written_before_the_fastest_core_read_as_cores_alike() {
        let phone = crate::hardware::catalog::find("phone-flagship").unwrap();
        assert!(phone.fastest_core_speedup.is_some());
        let alike = TargetSpec {
            fastest_core_speedup: None,
            ..phone
        };
        // Cores alike write no field, so the JSON is what it was before it.
        let json = serde_json::to_string(&alike).unwrap();
        assert!(!json.contains("fastest_core_speedup"), "{json}");
        let read: TargetSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(read, alike);
        assert_eq!(read.one_thread_speedup(), 1.0);
    }
}
