//! The data every exporter renders: plain data filled by the planner
//! (`src/plan/`), rendered by the exporters in this module and by the TUI.
//!
//! Units are in the field names (`_ms`, `_usd_per_month`, `_ns`, ...).
//! Fractions (`accuracy_agreement`, `utilisation`, `failure_rate`) are in
//! 0..=1; `fraction_of_peak` too, unless a kernel skipped work it counts. Order of every `Vec` is the order the
//! exporters print, so the planner decides it (deterministic output).

use serde::{Deserialize, Serialize};
use workbench_kernels::{BackendKind, Precision};

/// Serving mode and placement are the scenario's own types (one definition
/// for the scenario's search space, the planner and every export).
pub use crate::scenario::{Mode as ServingMode, Placement};

/// Whether a figure was timed on this machine or projected to another one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FigureSource {
    Measured,
    Projected,
}

impl FigureSource {
    pub fn name(self) -> &'static str {
        match self {
            FigureSource::Measured => "measured",
            FigureSource::Projected => "projected",
        }
    }
}

impl std::fmt::Display for FigureSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// End-to-end latency percentiles of one plan, milliseconds (network, queueing,
/// batching and compute included).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LatencyPercentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
}

/// One line of a plan's monthly cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostLine {
    /// What is paid for, e.g. "3 x c7i.xlarge on-demand", "Kafka broker", "egress".
    pub item: String,
    pub usd_per_month: f64,
}

/// One candidate serving plan with its simulated metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Stable, unique identifier within the report (the planner builds it from
    /// the dimensions); used to link CDFs, CSV rows and baseline comparisons.
    pub id: String,
    pub mode: ServingMode,
    pub placement: Placement,
    /// Cloud instance type or edge device class (hybrid: "edge-device + cloud-instance").
    pub target: String,
    /// Cloud replicas (edge: 1 per device).
    pub replicas: u32,
    /// Model variant name, e.g. "base", "distilled", "pruned-50".
    pub model_variant: String,
    pub backend: BackendKind,
    pub precision: Precision,
    /// Dynamic batching: most requests per batch.
    pub max_batch: u32,
    /// Dynamic batching: longest a request waits for a batch to fill.
    pub max_delay_ms: f64,
    /// Edge + cloud fallback (placement `hybrid`): what the cloud runs for
    /// the deferred share. `max_batch` and `max_delay_ms` are its batching;
    /// the device answers one request at a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
    /// Precomputed hybrid (mode `hybrid`): share of the distinct inputs the
    /// batch job precomputes; the rest are served online.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precompute_fraction: Option<f64>,
    pub latency_ms: LatencyPercentiles,
    /// Whether the compute part of the latency was measured here or projected to `target`.
    pub latency_source: FigureSource,
    /// Sustained predictions per second the plan serves.
    pub throughput_rps: f64,
    pub cost_usd_per_month: f64,
    pub cost_usd_per_million: f64,
    /// Lines summing to `cost_usd_per_month`.
    pub cost_breakdown: Vec<CostLine>,
    /// Fraction of predictions agreeing with the f32 reference model, 0..=1.
    pub accuracy_agreement: f64,
    /// Busy fraction of the serving replicas (or devices), 0..=1.
    pub utilisation: f64,
    /// Fraction of requests dropped, timed out or failed (e.g. device offline), 0..=1.
    pub failure_rate: f64,
    /// Batch and hybrid modes: mean age of a precomputed answer at lookup over
    /// the refresh cycle, (period + job duration) / 2, seconds. `None` when
    /// every prediction is computed on request.
    pub staleness_s: Option<f64>,
    /// Batch and precomputed hybrid plans: the job that refreshes the stored
    /// answers. `None` for plans that compute every prediction on request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_job: Option<BatchJob>,
    /// Edge: energy per prediction on the device, millijoules. `None` in the cloud.
    pub energy_mj_per_prediction: Option<f64>,
    /// online-stream: messages waiting at the consumers and how long one
    /// waits there before it is processed (the stream's consumer lag), over
    /// the simulated traffic. `None` for other modes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_lag: Option<ConsumerLag>,
    /// On the Pareto front over cost, p99 latency and accuracy loss.
    pub on_pareto_front: bool,
    /// `false`: rejected before simulation, so the latency is an analytic lower
    /// bound and cost, throughput and utilisation were not estimated.
    #[serde(default = "simulated_by_default")]
    pub simulated: bool,
    /// Latency at the scenario's own SLO percentile (p95, p99.9, ...), ms: the
    /// figure the SLO was checked against. `None` when not simulated, when too
    /// many requests failed to reach it, or in files written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_latency_ms: Option<f64>,
    /// 95% confidence interval of `slo_latency_ms`, ms, `[low, high]`: the
    /// simulation's own uncertainty (batch means over the run), estimated for
    /// the finalists (the plans re-simulated for the reported figures).
    /// `None` when not estimated: plans screened only, traces, device fleets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_latency_ci_ms: Option<[f64; 2]>,
    /// Edge and hybrid plans on a fleet (`targets.edge_classes = "fleet"`):
    /// each device class with its share of the requests and what its users
    /// see. Empty for plans on one class or in the cloud.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_classes: Vec<DeviceClassFigures>,
    /// Edge and hybrid plans: the most memory one device holds for the
    /// plan's build, bytes: its weights at the precision and the activations
    /// at the batch the device runs (a batch job's batch; online, one
    /// request's predictions), as measured when timed. On a fleet, the class
    /// holding the most. `None` for plans in the cloud and in older files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_memory_bytes: Option<u64>,
}

/// A plan's latency where its SLO is judged, with its name ("p95 132 ms"
/// next to a p95 SLO: what the plan was judged on), else (no SLO kept, or no
/// figure at it: too many requests failed) its p99.
pub fn latency_at_slo(
    percentile: Option<f64>,
    slo_latency_ms: Option<f64>,
    p99_ms: f64,
) -> (String, f64) {
    match (percentile, slo_latency_ms) {
        (Some(q), Some(ms)) => (crate::plan::evaluate::percentile_name(q), ms),
        _ => ("p99".to_string(), p99_ms),
    }
}

impl Plan {
    /// Simulated, and not one request completed (every one failed): its
    /// latency figures (0) and cost per prediction (0) describe nothing.
    pub fn nothing_completed(&self) -> bool {
        self.simulated && self.failure_rate >= 1.0
    }

    /// The latency a headline quotes, with its name (see [`latency_at_slo`]).
    pub fn headline_latency(&self, slo: Option<&LatencySlo>) -> (String, f64) {
        latency_at_slo(
            slo.map(|s| s.percentile),
            self.slo_latency_ms,
            self.latency_ms.p99,
        )
    }

    /// Whether the plan's device classes run different builds (a tiered
    /// fleet plan): `model_variant`, `backend` and `precision` are then
    /// those of the class serving the most requests.
    pub fn tiered(&self) -> bool {
        let mut builds = self.device_classes.iter().filter_map(|c| c.build.as_ref());
        builds
            .next()
            .is_some_and(|first| builds.any(|b| b != first))
    }

    /// What the plan runs, in short: "tiled f32", or on a tiered plan each
    /// class's build ("full tiled f32 on phone-flagship, distilled ...").
    pub fn build_text(&self) -> String {
        if !self.tiered() {
            return format!("{} {}", self.backend, self.precision);
        }
        self.device_classes
            .iter()
            .filter_map(|c| {
                c.build.as_ref().map(|b| {
                    format!(
                        "{} {} {} on {}",
                        b.model_variant, b.backend, b.precision, c.target
                    )
                })
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One device class of a plan on a fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceClassFigures {
    /// The class's edge target.
    pub target: String,
    pub devices: u64,
    /// Share of all requests this class's devices serve, 0..=1.
    pub traffic_share: f64,
    /// Latency of the requests this class's devices serve (with a cloud
    /// fallback, its share of them answered in the cloud included).
    pub latency_ms: LatencyPercentiles,
    /// Average power a device of this class draws for the model, W.
    pub average_power_w: f64,
    /// Latency of this class's requests at the scenario's SLO percentile, ms.
    /// `None` in files written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_latency_ms: Option<f64>,
    /// What this class's devices run (the classes of a tiered plan run
    /// different builds). `None` in files written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<ClassBuildFigures>,
}

/// The build one device class of a fleet plan runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassBuildFigures {
    pub model_variant: String,
    pub backend: BackendKind,
    pub precision: Precision,
}

/// The cloud half of an edge + cloud fallback plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fallback {
    /// Cloud instance type.
    pub target: String,
    pub model_variant: String,
    pub backend: BackendKind,
    pub precision: Precision,
}

/// The schedule of a plan's batch job.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BatchJob {
    /// Seconds from one run's start to the next's.
    pub every_s: f64,
    /// Seconds one run takes, start-up included.
    pub run_s: f64,
    /// Instances a run uses (1 on a device: each runs its own).
    pub instances: u32,
    pub runs_per_month: f64,
    /// The oldest answer served: scored as a run starts, served until the
    /// next run publishes (every_s + run_s).
    pub max_staleness_s: f64,
}

/// A stream's consumer lag over the simulated traffic.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ConsumerLag {
    /// Time-average of the messages waiting at all consumers together.
    pub mean_messages: f64,
    pub max_messages: u64,
    /// Mean time a message waits at its consumer before processing, ms.
    pub mean_wait_ms: f64,
}

/// Plans written before `simulated` existed were all simulated or marked in words.
fn simulated_by_default() -> bool {
    true
}

/// A plan that was not recommended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alternative {
    pub plan: Plan,
    /// Why the plan fails a constraint, in words a person can check
    /// ("p99 212 ms > SLO 50 ms"). `None`: the plan meets every constraint
    /// but ranked below the recommendation.
    pub rejected_because: Option<String>,
}

/// One constraint of the scenario checked against the recommended plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConstraintCheck {
    /// e.g. "p99 latency", "budget", "accuracy agreement", "data stays on device".
    pub name: String,
    /// Human-readable requirement with unit, e.g. "<= 50 ms".
    pub required: String,
    /// Human-readable achieved value with unit, e.g. "38.2 ms"; for a plan
    /// not simulated, a lower bound ("≥ 28.3 ms (compute alone)") or "-".
    pub achieved: String,
    /// Met. False also when `checked` is false: not shown to be met.
    pub ok: bool,
    /// `false`: the figure needs the simulation and the plan was rejected
    /// before it, so the row is neither a pass nor a proven miss. (A lower
    /// bound that already misses is checked: `ok` false.)
    #[serde(default = "checked_by_default")]
    pub checked: bool,
}

/// Files written before `checked` existed had every row checked.
fn checked_by_default() -> bool {
    true
}

/// How far one input can move before the recommendation changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensitivityLine {
    /// What moves: "traffic", "network RTT", "instance price", ...
    pub parameter: String,
    /// Largest multiple of the scenario's value for which the plan stays best
    /// (`None`: stays best over the whole range explored).
    pub stays_best_up_to_factor: Option<f64>,
    /// The sentence shown, e.g. "stays best up to 3.2x traffic; above that, 2 more replicas".
    pub summary: String,
}

/// How the recommended plan's compute time was projected onto its target, op
/// by op (the roofline projection of `hardware::project`): the answer to "why
/// that figure?".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectionBreakdown {
    pub target: String,
    pub model_variant: String,
    pub backend: BackendKind,
    pub precision: Precision,
    /// The measured batch size closest to the plan's.
    pub batch: u32,
    /// The whole model at that batch, here and projected.
    pub measured_ns: f64,
    pub projected_ns: f64,
    /// vCPUs of the target.
    pub target_cores: u32,
    pub ops: Vec<ProjectedOp>,
}

/// One op's share of the measured time and its projection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectedOp {
    pub name: String,
    pub kind: String,
    pub local_ns: f64,
    pub projected_ns: f64,
    /// All of the target's cores, or 1 when the backend runs the op on one
    /// thread or splitting would not pay.
    pub cores_used: u32,
    /// The op's activations come from the target's cache (true without any).
    pub in_target_cache: bool,
    /// Its weights do too: the whole model's weights fit (true without any).
    #[serde(default = "yes")]
    pub weights_in_target_cache: bool,
}

fn yes() -> bool {
    true
}

/// What the compiler made of one build of a model variant: the backend's
/// printed lowered form (fused steps and their buffers, tiles, int8 scales),
/// as compiled when it was timed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompiledProgram {
    pub model_variant: String,
    pub backend: BackendKind,
    pub precision: Precision,
    pub text: String,
}

impl CompiledProgram {
    /// Is this the program of `(variant, backend, precision)`?
    pub fn is_build(&self, variant: &str, backend: BackendKind, precision: Precision) -> bool {
        self.model_variant == variant && self.backend == backend && self.precision == precision
    }

    /// "5 graph ops -> 3 steps", from the line of a fused program that says
    /// so ("lowered mlp: 5 graph ops -> 3 steps"); `None` for the naive and
    /// quantized backends' op-by-op listings.
    pub fn steps_summary(&self) -> Option<&str> {
        self.text
            .lines()
            .find_map(|line| {
                Some(line.split_once(": ")?.1).filter(|s| s.contains(" graph ops -> "))
            })
            .map(str::trim)
    }
}

/// One timed (or projected) kernel run: a compiled model at one batch size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelMeasurement {
    pub backend: BackendKind,
    pub precision: Precision,
    pub batch: u32,
    /// What ran, e.g. "mlp 256-512-512-10" or the model variant name.
    pub workload: String,
    pub median_ns: f64,
    pub p90_ns: f64,
    pub p99_ns: f64,
    /// Achieved GFLOP/s (int8: G ops/s) at the median.
    pub gflops: f64,
    /// Achieved over the machine's peak for this precision: at most 1 unless
    /// the kernel skipped work that `gflops` counts (zeros after a ReLU).
    pub fraction_of_peak: f64,
    pub source: FigureSource,
    /// Machine the figure is for: this machine's name when measured, the target when projected.
    pub target: String,
    /// Measured with fewer samples than usual (one call is slow for the
    /// measurement budget), or projected from such a measurement: low confidence.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reduced: bool,
    /// Its timings spread more than the harness accepts (coefficient of
    /// variation above 10%) even after measuring again: the machine was busy
    /// while it ran, so its median and tail may be high. Projected figures
    /// carry their measurement's flag.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub high_variance: bool,
    /// Bytes of activations the compiled model held at this batch on this
    /// machine (weights excluded); the same executable holds the same on a
    /// target. `None` when not recorded (a measurement cached before it was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_bytes: Option<u64>,
}

/// A memory or cache bandwidth roof.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BandwidthRoof {
    /// e.g. "DRAM", "L2".
    pub name: String,
    pub gb_per_s: f64,
}

/// Label of a measured kernel on the roofline, also the TUI's row key (so the
/// two can be matched): "tiled f32 b32", or "student tiled f32 b32" when the
/// scenario has several variants.
pub fn kernel_label(variant: Option<&str>, backend: &str, precision: &str, batch: u32) -> String {
    match variant {
        Some(variant) => format!("{variant} {backend} {precision} b{batch}"),
        None => format!("{backend} {precision} b{batch}"),
    }
}

/// One kernel placed on the roofline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RooflinePoint {
    /// Legend label, e.g. "tiled f32 b32" ([`kernel_label`]).
    pub label: String,
    /// FLOPs (int8: integer ops) per byte moved.
    pub arithmetic_intensity: f64,
    /// GFLOP/s (int8: G ops/s).
    pub achieved_gflops: f64,
    pub source: FigureSource,
    /// The kernel's precision: its roof is that precision's peak.
    pub precision: Precision,
    /// Bytes one call keeps in use: every weight plus the largest op's
    /// activations (`hardware::roofline::call_working_set_bytes`). `None` in
    /// files written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_set_bytes: Option<u64>,
    /// The memory level that holds that working set, the name of one of
    /// [`Roofline::bandwidths`] ("L2", "DRAM"): its bandwidth is the point's
    /// memory roof. `None` (older files): the slowest roof.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_level: Option<String>,
}

/// The roof a point on the roofline is held to.
#[derive(Debug, Clone, PartialEq)]
pub struct Attainable {
    /// min(compute roof of its precision, arithmetic intensity x bandwidth
    /// of its memory level), GFLOP/s (int8: G ops/s).
    pub giga_per_s: f64,
    /// The bandwidth roof it is held to (`None`: the machine has none).
    pub memory: Option<BandwidthRoof>,
    /// The compute roof is the lower of the two.
    pub compute_bound: bool,
}

impl Attainable {
    /// What binds, as the report says it: "compute" or the memory level ("L2").
    pub fn bound(&self) -> &str {
        match &self.memory {
            Some(memory) if !self.compute_bound => &memory.name,
            _ => "compute",
        }
    }
}

/// Roofline of the machine the kernels were measured on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Roofline {
    pub machine: String,
    /// Compute roof, GFLOP/s (f32; also f16 and bf16, computed in f32).
    pub peak_gflops: f64,
    /// Compute roof of the int8 path, G ops/s, when it was probed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_gops_int8: Option<f64>,
    pub bandwidths: Vec<BandwidthRoof>,
    pub points: Vec<RooflinePoint>,
}

impl Roofline {
    /// The lowest usable bandwidth roof (DRAM's): the one a kernel streaming
    /// from main memory meets.
    pub fn slowest_roof(&self) -> Option<&BandwidthRoof> {
        self.bandwidths
            .iter()
            .filter(|b| b.gb_per_s.is_finite() && b.gb_per_s > 0.0)
            .min_by(|a, b| a.gb_per_s.total_cmp(&b.gb_per_s))
    }

    /// The bandwidth roof `point` is held to: that of the level its working
    /// set fits, else (level unknown or without a usable roof) the slowest.
    pub fn memory_roof(&self, point: &RooflinePoint) -> Option<&BandwidthRoof> {
        point
            .memory_level
            .as_deref()
            .and_then(|level| self.bandwidths.iter().find(|b| b.name == level))
            .filter(|b| b.gb_per_s.is_finite() && b.gb_per_s > 0.0)
            .or_else(|| self.slowest_roof())
    }
}

/// One point of an empirical latency CDF.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CdfPoint {
    pub latency_ms: f64,
    /// Fraction of requests at or below `latency_ms`, 0..=1, non-decreasing.
    pub fraction: f64,
}

/// Simulated end-to-end latency distribution of one plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyCdf {
    /// `Plan::id` of the plan.
    pub plan_id: String,
    pub points: Vec<CdfPoint>,
}

/// What the figures rest on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assumptions {
    /// Fingerprint the measurement cache is keyed by.
    pub hardware_fingerprint: String,
    /// CPU model string of this machine.
    pub cpu: String,
    /// Seed of the simulator and every other random choice.
    pub seed: u64,
    /// The run was `--quick`: shorter measurements and simulations, a
    /// smaller search space (false in files written before it was kept).
    #[serde(default)]
    pub quick: bool,
    /// workbench version that produced the report.
    pub tool_version: String,
    /// Which figures were timed on this machine, one entry per kind of figure.
    pub measured: Vec<String>,
    /// Which figures were projected (and from what), one entry per kind of figure.
    pub projected: Vec<String>,
    /// Other assumptions in words (prices, traffic model, network RTT, ...).
    pub notes: Vec<String>,
    /// When the report was generated (RFC 3339, UTC). The only field that may
    /// differ between two runs with the same inputs.
    pub generated_at: String,
}

/// One finding of a baseline comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Regression {
    /// The recommended plan's p99 latency grew by more than the tolerance.
    P99Latency {
        old_ms: f64,
        new_ms: f64,
        /// (new - old) / old.
        relative_change: f64,
    },
    /// The recommended plan's monthly cost grew by more than the tolerance.
    Cost {
        old_usd_per_month: f64,
        new_usd_per_month: f64,
        relative_change: f64,
    },
    /// The baseline had a feasible plan; the new run has none.
    NoLongerFeasible,
    /// A dimension of the recommended plan changed (informational).
    PlanChanged {
        field: PlanDimension,
        old: String,
        new: String,
    },
    /// The recommended plan's latency at the SLO's own percentile (when that
    /// is not p99, which `P99Latency` covers) grew by more than the tolerance.
    SloLatency {
        /// The SLO's percentile, e.g. 99.9.
        percentile: f64,
        old_ms: f64,
        new_ms: f64,
        /// (new - old) / old.
        relative_change: f64,
    },
    /// The baseline's serving decision (mode, placement, model variant,
    /// backend, precision) has no feasible plan in the new run.
    DecisionNoLongerFeasible {
        /// The baseline's decision, e.g. "online-http cloud base tiled int8".
        decision: String,
        /// Why the new run rejected it, or that it was not evaluated.
        reason: String,
    },
    /// Something the comparison rests on differs from the baseline's
    /// (informational; says how far the other findings can be trusted).
    ComparisonNote {
        about: ComparisonBasis,
        /// The baseline's value, in words.
        old: String,
        /// This run's value, in words.
        new: String,
    },
}

/// A dimension of the recommended plan a [`Regression::PlanChanged`] names:
/// in plan.json, the `plans[]` field of that name (`recommended`: which plan,
/// by id, when one run has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanDimension {
    Recommended,
    Mode,
    Placement,
    Target,
    Replicas,
    ModelVariant,
    Backend,
    Precision,
    /// What each device class runs (`device_classes[].build`), on a fleet.
    ClassBuilds,
    MaxBatch,
    MaxDelayMs,
    Fallback,
    PrecomputeFraction,
}

impl PlanDimension {
    /// The name plan.json gives it.
    pub fn name(self) -> &'static str {
        match self {
            PlanDimension::Recommended => "recommended",
            PlanDimension::Mode => "mode",
            PlanDimension::Placement => "placement",
            PlanDimension::Target => "target",
            PlanDimension::Replicas => "replicas",
            PlanDimension::ModelVariant => "model_variant",
            PlanDimension::Backend => "backend",
            PlanDimension::Precision => "precision",
            PlanDimension::ClassBuilds => "class_builds",
            PlanDimension::MaxBatch => "max_batch",
            PlanDimension::MaxDelayMs => "max_delay_ms",
            PlanDimension::Fallback => "fallback",
            PlanDimension::PrecomputeFraction => "precompute_fraction",
        }
    }
}

/// What a [`Regression::ComparisonNote`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComparisonBasis {
    /// Another hardware fingerprint: latency and cost are not compared.
    Hardware,
    /// Another simulator seed.
    Seed,
    /// Another workbench version wrote the baseline.
    ToolVersion,
    /// Another latency SLO: the latency at its percentile is not compared.
    Slo,
    /// The tolerance was widened by the measurement noise.
    Tolerance,
    /// The baseline keeps no kernel timings (written by an older workbench).
    Measurements,
}

/// The result of comparing this run with a baseline `plan.json`
/// (`workbench run --baseline`), shown in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineComparison {
    /// The baseline file as given on the command line.
    pub baseline: String,
    /// Allowed relative growth of p99 latency and cost (0.10 = 10%).
    pub tolerance: f64,
    /// From `compare_with_baseline`; empty when nothing changed.
    pub findings: Vec<Regression>,
}

/// Everything the exporters render for one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Scenario name; also the output directory name.
    pub scenario: String,
    pub description: String,
    /// At least one plan meets every constraint.
    pub feasible: bool,
    /// The chosen plan; `None` when nothing is feasible.
    pub recommended: Option<Plan>,
    /// Every other evaluated plan, in ranking order.
    pub alternatives: Vec<Alternative>,
    /// A few sentences computed from the numbers.
    pub rationale: Vec<String>,
    /// The scenario's constraints checked against the recommended plan (or,
    /// when infeasible, against the closest plan).
    pub constraints: Vec<ConstraintCheck>,
    pub sensitivity: Vec<SensitivityLine>,
    pub kernels: Vec<KernelMeasurement>,
    pub roofline: Roofline,
    /// Latency CDFs of the top plans (recommended first).
    pub latency_cdfs: Vec<LatencyCdf>,
    pub assumptions: Assumptions,
    /// Set by the CLI when run with `--baseline`; `None` otherwise.
    #[serde(default)]
    pub baseline: Option<BaselineComparison>,
    /// How the recommended plan's compute was projected onto its target;
    /// `None` when it was measured here, scaled by a speed factor, or there
    /// is no recommendation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projection: Option<ProjectionBreakdown>,
    /// The latency objective the plans were judged against (the what-if's,
    /// when one was applied); `None` in reports written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<LatencySlo>,
    /// Predictions one request asks for (`inputs.predictions_per_request`):
    /// a dynamic batch of `max_batch` requests runs that many times as many.
    /// `None` in reports written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predictions_per_request: Option<u64>,
    /// What the compiler made of each build the recommended plan runs (its
    /// own, its fallback's, each device class's), as compiled when timed;
    /// a build timed before programs were kept has none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub programs: Vec<CompiledProgram>,
}

impl Report {
    /// The compute roof of the measuring machine for kernels at `precision`,
    /// the peak their "of peak" in the kernel table is over: the int8 path's
    /// G ops/s for int8 (`None` when not probed), the f32 roof otherwise (f16
    /// and bf16 are computed in f32).
    pub fn compute_roof(&self, precision: Precision) -> Option<f64> {
        let roof = match precision {
            Precision::Int8 => self.roofline.peak_gops_int8?,
            _ => self.roofline.peak_gflops,
        };
        (roof.is_finite() && roof > 0.0).then_some(roof)
    }

    /// The roof `point` is held to on the measuring machine: the compute roof
    /// of its precision or its intensity times the bandwidth of the memory
    /// level its working set fits, whichever is lower (the compute roof alone
    /// when the machine has no bandwidth roof). `None` when its precision has
    /// no compute roof: nothing to hold it to.
    pub fn attainable(&self, point: &RooflinePoint) -> Option<Attainable> {
        let peak = self.compute_roof(point.precision)?;
        let memory = self.roofline.memory_roof(point);
        let from_memory = memory.map_or(f64::INFINITY, |m| point.arithmetic_intensity * m.gb_per_s);
        let giga_per_s = peak.min(from_memory);
        (giga_per_s.is_finite() && giga_per_s > 0.0).then(|| Attainable {
            giga_per_s,
            memory: memory.cloned(),
            compute_bound: peak <= from_memory,
        })
    }
}

/// A latency objective: `percentile` (e.g. 99.9) of requests at or below `latency_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencySlo {
    pub percentile: f64,
    pub latency_ms: f64,
}
