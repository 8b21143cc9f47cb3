//! The scenario file as written: serde structs mirroring the TOML, every field
//! optional and spanned so that validation can report all missing or bad keys
//! at once with their line and column. `deny_unknown_fields` everywhere: a
//! misspelt key is an error, never silently ignored.

use serde::Deserialize;
use toml::Spanned;

pub(crate) type S<T> = Spanned<T>;
pub(crate) type Opt<T> = Option<Spanned<T>>;
/// Integers are read wider than TOML's i64 so that a value out of range is
/// reported with the key's accepted range, not as a type error.
pub(crate) type Int = i128;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScenario {
    pub name: Opt<String>,
    pub description: Opt<String>,
    pub model: Opt<RawModel>,
    pub traffic: Opt<RawTraffic>,
    pub inputs: Opt<RawInputs>,
    pub objectives: Opt<RawObjectives>,
    pub constraints: Opt<RawConstraints>,
    pub targets: Opt<RawTargets>,
    pub search: Opt<RawSearch>,
    pub expect: Opt<RawExpect>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawModel {
    pub task: Opt<String>,
    pub reference: Opt<String>,
    pub variants: Option<Vec<S<RawVariant>>>,
}

/// One model variant. Which keys apply depends on `family`; validation
/// rejects keys of another family.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVariant {
    pub name: Opt<String>,
    pub family: Opt<String>,
    pub accuracy: Opt<f64>,
    pub fallback_fraction: Opt<f64>,
    pub activation: Opt<String>,
    // mlp
    pub input: Opt<Int>,
    pub hidden: Opt<Vec<S<Int>>>,
    pub output: Opt<Int>,
    // convnet
    pub input_hwc: Opt<Vec<S<Int>>>,
    pub blocks: Opt<Vec<S<RawBlock>>>,
    pub pooling: Opt<String>,
    pub classes: Opt<Int>,
    // transformer
    pub seq_len: Opt<Int>,
    pub d_model: Opt<Int>,
    pub heads: Opt<Int>,
    pub ffn: Opt<Int>,
    pub layers: Opt<Int>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBlock {
    pub kind: Opt<String>,
    pub out_channels: Opt<Int>,
    pub kernel: Opt<Int>,
    pub stride: Opt<Int>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTraffic {
    pub process: Opt<String>,
    pub rate_per_s: Opt<f64>,
    pub duration_s: Opt<f64>,
    pub burst_on_s: Opt<f64>,
    pub burst_off_s: Opt<f64>,
    pub peak_factor: Opt<f64>,
    pub period_s: Opt<f64>,
    pub trace_csv: Opt<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInputs {
    pub space: Opt<String>,
    pub distinct_inputs: Opt<Int>,
    pub freshness_s: Opt<f64>,
    pub refresh_every_s: Opt<f64>,
    pub batch_window_s: Opt<f64>,
    pub zipf_exponent: Opt<f64>,
    pub request_bytes: Opt<Int>,
    pub response_bytes: Opt<Int>,
    pub predictions_per_request: Opt<Int>,
    pub source: Opt<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawObjectives {
    pub latency_percentile: Opt<f64>,
    pub latency_ms: Opt<f64>,
    pub min_throughput_per_s: Opt<f64>,
    pub accuracy_floor: Opt<f64>,
    pub monthly_budget_usd: Opt<f64>,
    pub cost_weight: Opt<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConstraints {
    pub data_may_leave_device: Opt<bool>,
    pub offline_fraction: Opt<f64>,
    pub max_device_memory_mb: Opt<f64>,
    pub max_device_power_watts: Opt<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTargets {
    pub cloud: Option<Vec<S<RawTarget>>>,
    pub edge: Option<Vec<S<RawTarget>>>,
    pub edge_classes: Opt<String>,
    pub links: Option<Vec<S<RawLink>>>,
    pub broker: Opt<RawBroker>,
    pub storage: Opt<RawStorage>,
}

/// A cloud instance type or an edge device class; `catalog` names a built-in
/// entry whose figures the other keys override.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTarget {
    pub name: Opt<String>,
    pub catalog: Opt<String>,
    pub cores: Opt<Int>,
    pub threads_per_core: Opt<Int>,
    pub memory_gb: Opt<f64>,
    pub peak_gflops_f32: Opt<f64>,
    pub peak_gops_int8: Opt<f64>,
    pub mem_bandwidth_gbs: Opt<f64>,
    pub cache_mb: Opt<f64>,
    pub speed_factor: Opt<f64>,
    pub precisions: Opt<Vec<S<String>>>,
    pub usd_per_hour: Opt<f64>,
    pub cold_start_ms: Opt<f64>,
    pub power_watts: Opt<f64>,
    pub idle_power_watts: Opt<f64>,
    pub parallel_overhead_us: Opt<f64>,
    // cloud only: CPU a replica spends per request besides the model
    pub request_cpu_us: Opt<f64>,
    pub message_cpu_us: Opt<f64>,
    pub fleet_size: Opt<Int>,
    pub traffic_share: Opt<f64>,
    pub link: Opt<String>,
    pub source: Opt<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLink {
    pub name: Opt<String>,
    pub rtt_median_ms: Opt<f64>,
    pub rtt_p99_ms: Opt<f64>,
    pub bandwidth_mbps: Opt<f64>,
    pub loss_fraction: Opt<f64>,
    pub min_rto_ms: Opt<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBroker {
    pub per_hop_ms: Opt<f64>,
    pub hops: Opt<Int>,
    pub partitions: Opt<Int>,
    pub partition_mb_per_s: Opt<f64>,
    pub partition_messages_per_s: Opt<f64>,
    pub usd_per_month: Opt<f64>,
    pub usd_per_gb: Opt<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStorage {
    pub lookup_ms: Opt<f64>,
    pub usd_per_gb_month: Opt<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSearch {
    pub modes: Opt<Vec<S<String>>>,
    pub placements: Opt<Vec<S<String>>>,
    pub backends: Opt<Vec<S<String>>>,
    pub precisions: Opt<Vec<S<String>>>,
    pub batch_sizes: Opt<Vec<S<Int>>>,
    pub max_queue_delay_ms: Opt<Vec<S<f64>>>,
    pub min_replicas: Opt<Int>,
    pub max_replicas: Opt<Int>,
    pub targets: Opt<Vec<S<String>>>,
    pub measurement_budget_s: Opt<f64>,
    pub seed: Opt<Int>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExpect {
    pub mode: Opt<String>,
    pub placement: Opt<String>,
}
