//! Scenarios: the problem a user describes in TOML (model, traffic, inputs,
//! objectives, constraints, targets, optional search space and expectation).
//! The planner chooses the answer; a scenario never states it, except as an
//! `expect` block that `workbench run --check` compares against.
//!
//! `load` / `parse_str` return either a fully checked [`Scenario`] or every
//! problem in the file at once ([`ScenarioErrors`]). The format is documented
//! in `docs/scenarios.md`.

mod error;
mod file;
pub mod limits;
mod raw;
mod summary;
mod text;
mod validate;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use workbench_kernels::{BackendKind, ModelSpec, Precision, SpecCounts};

use crate::hardware::TargetSpec;

pub use error::{did_you_mean, line_col, ScenarioError, ScenarioErrors};
pub use file::{read_regular_file, ReadFileError};
pub use text::{control_character, is_valid_scenario_name, name_accepted, printable, quoted};

/// Largest scenario file read, so a stray multi-gigabyte file is refused
/// instead of read into memory.
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// Memory a model may need to be measured on this machine (f32 weights plus
/// activations at the largest batch size); larger models are refused up front.
pub const MAX_MEASURE_BYTES: u64 = 8 << 30;

/// FLOPs per sample above which measuring one batch would take seconds.
pub const MAX_FLOPS_PER_SAMPLE: f64 = 2e11;

/// A parsed and checked scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    /// `name` key, or the file stem.
    pub name: String,
    pub description: String,
    /// The file it was read from (as given).
    pub path: PathBuf,
    pub model: Model,
    pub traffic: Traffic,
    pub inputs: Inputs,
    pub objectives: Objectives,
    pub constraints: Constraints,
    pub targets: Targets,
    pub search: SearchSpace,
    pub expect: Option<Expect>,
}

/// The model and its variants (e.g. full model and distilled student).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Model {
    pub task: String,
    /// At least one; names are unique.
    pub variants: Vec<ModelVariant>,
    /// Index into `variants` of the reference model whose f32 outputs define
    /// accuracy agreement (`model.reference`, default the first variant).
    pub reference: usize,
}

impl Model {
    /// The reference variant (`None` only for a hand-built model without variants).
    pub fn reference_variant(&self) -> Option<&ModelVariant> {
        self.variants
            .get(self.reference)
            .or_else(|| self.variants.first())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelVariant {
    pub name: String,
    pub spec: ModelSpec,
    /// Accuracy the author declares for this variant (fraction in (0, 1]), if any.
    pub accuracy: Option<f64>,
    /// As the small on-device model of an edge + cloud hybrid: the share of
    /// requests it defers to the cloud reference model (its least confident ones).
    pub fallback_fraction: Option<f64>,
}

impl ModelVariant {
    pub fn counts(&self) -> SpecCounts {
        self.spec.counts()
    }

    pub fn family(&self) -> &'static str {
        match self.spec {
            ModelSpec::Mlp(_) => "mlp",
            ModelSpec::Convnet(_) => "convnet",
            ModelSpec::Transformer(_) => "transformer",
        }
    }
}

/// How requests arrive.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "process")]
pub enum ArrivalProcess {
    Poisson,
    Constant,
    /// On/off: all traffic arrives during `on_s` windows separated by `off_s`
    /// of silence; the mean over a cycle is `Traffic::rate_per_s`.
    Bursty {
        on_s: f64,
        off_s: f64,
    },
    /// Sinusoidal daily cycle whose peak is `peak_factor` x the mean rate.
    Diurnal {
        peak_factor: f64,
        period_s: f64,
    },
    /// Replay of recorded arrival times (seconds, non-decreasing).
    Trace {
        path: PathBuf,
        timestamps_s: Vec<f64>,
    },
}

impl ArrivalProcess {
    pub fn name(&self) -> &'static str {
        match self {
            ArrivalProcess::Poisson => "poisson",
            ArrivalProcess::Constant => "constant",
            ArrivalProcess::Bursty { .. } => "bursty",
            ArrivalProcess::Diurnal { .. } => "diurnal",
            ArrivalProcess::Trace { .. } => "trace",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Traffic {
    pub process: ArrivalProcess,
    /// Mean arrival rate, requests per second (derived from the trace for `trace`).
    pub rate_per_s: f64,
    /// Simulated duration, seconds.
    pub duration_s: f64,
}

/// The window a trace's peak rate is counted over: the most arrivals in any
/// second. Bursts much shorter than it are averaged out (a queue absorbs
/// them, or the simulation shows it cannot); longer ones are what replicas
/// must keep up with, as with a bursty process's on-rate.
pub const TRACE_PEAK_WINDOW_S: f64 = 1.0;

impl Traffic {
    /// Highest rate the process produces: the mean for poisson/constant, the
    /// on-rate of bursts, the daily peak, and for a trace the most arrivals
    /// in any [`TRACE_PEAK_WINDOW_S`] (never below its mean). Replica sizing
    /// starts from it.
    pub fn peak_rate_per_s(&self) -> f64 {
        match &self.process {
            ArrivalProcess::Bursty { on_s, off_s } => self.rate_per_s * (on_s + off_s) / on_s,
            ArrivalProcess::Diurnal { peak_factor, .. } => self.rate_per_s * peak_factor,
            ArrivalProcess::Trace { timestamps_s, .. } => {
                let busiest = most_within(timestamps_s, TRACE_PEAK_WINDOW_S) as f64;
                (busiest / TRACE_PEAK_WINDOW_S).max(self.rate_per_s)
            }
            _ => self.rate_per_s,
        }
    }

    /// Arrivals of a replayed trace that warm the empty system up (simulated,
    /// not measured) when `replayed` are replayed: the first
    /// [`limits::WARMUP_FRACTION`] of them, rounded up. The planner's run
    /// control and validation's count of measured arrivals both use it.
    pub fn trace_warmup_arrivals(replayed: usize) -> usize {
        // less a hair: 0.05 x 4000 must stay 200
        let warm = (limits::WARMUP_FRACTION * replayed as f64 - 1e-9).ceil();
        // saturating cast; never more than were replayed
        (warm.max(0.0) as usize).min(replayed)
    }
}

/// The most of the sorted `timestamps_s` within any half-open window of
/// `window_s` seconds.
fn most_within(timestamps_s: &[f64], window_s: f64) -> usize {
    let mut start = 0;
    let mut most = 0;
    for (end, &t) in timestamps_s.iter().enumerate() {
        while timestamps_s[start] <= t - window_s {
            start += 1;
        }
        most = most.max(end + 1 - start);
    }
    most
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "space")]
pub enum InputSpace {
    /// A known, countable set of inputs (e.g. users x items): precomputable.
    Finite { distinct_inputs: u64 },
    /// Free-form inputs (text, audio, transactions): cannot be precomputed.
    Unbounded,
}

/// Where prediction requests come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputSource {
    /// A caller sends a request and waits (the default).
    Request,
    /// Events already published to the broker (e.g. transactions on a Kafka
    /// topic): serving over HTTP needs a consumer that bridges them.
    Stream,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inputs {
    pub space: InputSpace,
    /// How stale a prediction may be when served, seconds (0 = computed per
    /// request). With `refresh_every_s` and no `freshness_s` written, the
    /// oldest answer that schedule leaves: its period plus the job's window.
    pub freshness_s: f64,
    /// A fixed schedule for the batch job, seconds between starts (86,400
    /// for nightly); `None`: the job runs as rarely as `freshness_s` allows.
    pub refresh_every_s: Option<f64>,
    /// The longest a batch run may take, seconds (e.g. 8 h from a 22:00
    /// start to be done by 06:00); `None`: whatever the schedule allows.
    pub batch_window_s: Option<f64>,
    /// Zipf exponent of input popularity (0 = uniform).
    pub zipf_exponent: f64,
    pub request_bytes: u64,
    pub response_bytes: u64,
    /// Predictions one request needs (e.g. every photo of a library for a
    /// search): online plans compute them all per request, lookups read them at once.
    pub predictions_per_request: u64,
    /// Where requests come from: callers waiting for an answer, or events
    /// already flowing through the broker.
    pub source: InputSource,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Objectives {
    /// Percentile in (0, 100) the latency SLO applies to, e.g. 99.
    pub latency_percentile: f64,
    /// Latency SLO at that percentile, milliseconds, end to end.
    pub latency_ms: f64,
    /// Minimum sustained throughput, predictions per second (0 = none).
    pub min_throughput_per_s: f64,
    /// Minimum top-1 agreement with the f32 reference model, fraction in (0, 1].
    pub accuracy_floor: f64,
    pub monthly_budget_usd: Option<f64>,
    /// 0 = only latency matters, 1 = only cost matters, among feasible plans.
    pub cost_weight: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Constraints {
    /// false = privacy: the input may not leave the user's device.
    pub data_may_leave_device: bool,
    /// Fraction of time edge devices have no connectivity, [0, 1].
    pub offline_fraction: f64,
    /// Memory the model may use on a device.
    pub max_device_memory_bytes: Option<u64>,
    pub max_device_power_watts: Option<f64>,
}

/// A target after catalog lookup and overrides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    pub spec: TargetSpec,
    /// The catalog entry it started from, if any.
    pub catalog: Option<String>,
    /// Speed relative to this machine; when set, projection scales local
    /// measurements by it instead of using the peak figures.
    pub speed_factor: Option<f64>,
    /// Edge: number of devices in the fleet.
    pub fleet_size: Option<u64>,
    /// Edge class of a fleet (`targets.edge_classes = "fleet"`): the share
    /// of the requests its devices serve, when stated (else its share of
    /// the fleet's devices, see [`Targets::fleet`]).
    pub traffic_share: Option<f64>,
    /// Name of the link (in `Targets::links`) between the client and this target.
    pub link: Option<String>,
    /// Cloud: µs of one core a replica spends on each HTTP request besides
    /// the model (`request_cpu_us`); `None` leaves the planner's assumption.
    pub request_cpu_us: Option<f64>,
    /// Cloud: µs of one core a replica spends on each stream message besides
    /// the model (`message_cpu_us`); `None` leaves the planner's assumption.
    pub message_cpu_us: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Link {
    pub name: String,
    pub rtt_median_ms: f64,
    pub rtt_p99_ms: f64,
    pub bandwidth_mbps: f64,
    /// Packet loss, fraction [0, 1).
    pub loss_fraction: f64,
    /// Floor of TCP's retransmission timeout on this link, ms (`min_rto_ms`);
    /// `None` leaves Linux's default.
    pub min_rto_ms: Option<f64>,
}

/// Message broker for streaming (Kafka-like).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Broker {
    pub per_hop_ms: f64,
    /// Broker hops between producer and the model's consumer (and back).
    pub hops: u32,
    pub partitions: u32,
    /// What one partition delivers to its consumer, MB/s (10^6 bytes) and
    /// messages/s, whichever binds first; `None` leaves the planner's assumption.
    pub partition_mb_per_s: Option<f64>,
    pub partition_messages_per_s: Option<f64>,
    /// What the broker costs a month, and per GB through it; `None` leaves
    /// the planner's assumption (a small managed Kafka cluster).
    pub usd_per_month: Option<f64>,
    pub usd_per_gb: Option<f64>,
}

/// Prediction store for batch mode (key-value lookup).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Storage {
    pub lookup_ms: f64,
    pub usd_per_gb_month: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Targets {
    pub cloud: Vec<Target>,
    pub edge: Vec<Target>,
    /// Whether the edge classes are alternatives or parts of one fleet.
    pub edge_classes: EdgeClasses,
    pub links: Vec<Link>,
    pub broker: Option<Broker>,
    pub storage: Option<Storage>,
}

/// How several `[[targets.edge]]` relate (`targets.edge_classes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EdgeClasses {
    /// Each class is planned on its own, carrying all the traffic: chips
    /// of one product to choose between (a microcontroller or an
    /// application processor), or devices a team could target.
    #[default]
    Alternatives,
    /// The classes are parts of one fleet (the flagship and mid-range
    /// phones users own): an edge plan runs one build of the model on
    /// every class, each serving its own users' share of the requests.
    Fleet,
}

impl EdgeClasses {
    pub const ALL: [EdgeClasses; 2] = [EdgeClasses::Alternatives, EdgeClasses::Fleet];

    pub fn name(self) -> &'static str {
        match self {
            EdgeClasses::Alternatives => "alternatives",
            EdgeClasses::Fleet => "fleet",
        }
    }
}

impl Target {
    /// Devices of an edge class (`fleet_size`, at least 1).
    pub fn devices(&self) -> u64 {
        self.fleet_size.unwrap_or(1).max(1)
    }
}

impl Targets {
    /// The target an edge plan on the whole fleet names: its classes joined
    /// by `&` (`None` unless the edge classes are a fleet).
    pub fn fleet_name(&self) -> Option<String> {
        let fleet = self.fleet();
        (!fleet.is_empty()).then(|| {
            let names: Vec<&str> = fleet.iter().map(|(t, _)| t.spec.name.as_str()).collect();
            names.join("&")
        })
    }

    /// The edge classes a plan's `target` runs on, each with the share of
    /// the requests its devices serve: the fleet's classes for the fleet's
    /// name, the class of that name alone (serving every request), or none.
    pub fn device_classes(&self, target: &str) -> Vec<(&Target, f64)> {
        if self.fleet_name().as_deref() == Some(target) {
            return self.fleet();
        }
        self.edge
            .iter()
            .filter(|t| t.spec.name == target)
            .map(|t| (t, 1.0))
            .collect()
    }

    /// The edge classes of a fleet with the share of all requests each
    /// serves: its stated `traffic_share`, else its share of the fleet's
    /// devices (every device sends as many requests). Empty unless
    /// `edge_classes` is [`EdgeClasses::Fleet`].
    pub fn fleet(&self) -> Vec<(&Target, f64)> {
        if self.edge_classes != EdgeClasses::Fleet {
            return Vec::new();
        }
        let devices: f64 = self.edge.iter().map(|t| t.devices() as f64).sum();
        let stated: Vec<f64> = self
            .edge
            .iter()
            .map(|t| {
                let by_devices = t.devices() as f64 / devices.max(1.0);
                t.traffic_share.unwrap_or(by_devices)
            })
            .collect();
        // Stated shares may add up to 1 within a rounding (0.333 three
        // times): scaled to add up to exactly 1, so the latency mixture
        // reaches every percentile.
        let total: f64 = stated.iter().sum();
        self.edge
            .iter()
            .zip(stated)
            .map(|(t, share)| (t, if total > 0.0 { share / total } else { share }))
            .collect()
    }

    /// Each class of a fleet with its share of the fleet's devices (the
    /// share of the keys an on-device batch job gives it: each device
    /// computes its owner's).
    pub fn fleet_device_shares(&self) -> Vec<(&Target, f64)> {
        let fleet = self.fleet();
        let devices: f64 = fleet.iter().map(|(t, _)| t.devices() as f64).sum();
        fleet
            .into_iter()
            .map(|(t, _)| (t, t.devices() as f64 / devices.max(1.0)))
            .collect()
    }

    /// The target called `name` (cloud or edge).
    pub fn find(&self, name: &str) -> Option<&Target> {
        self.cloud
            .iter()
            .chain(&self.edge)
            .find(|t| t.spec.name == name)
    }

    pub fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }
}

/// How predictions are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Precompute on a schedule, store, look up on request.
    Batch,
    /// Synchronous request/response.
    OnlineHttp,
    /// Event-driven through a broker.
    OnlineStream,
    /// Precompute the popular inputs, compute the rest online.
    Hybrid,
}

impl Mode {
    pub const ALL: [Mode; 4] = [
        Mode::Batch,
        Mode::OnlineHttp,
        Mode::OnlineStream,
        Mode::Hybrid,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Batch => "batch",
            Mode::OnlineHttp => "online-http",
            Mode::OnlineStream => "online-stream",
            Mode::Hybrid => "hybrid",
        }
    }

    pub fn parse(name: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    Cloud,
    Edge,
    /// Edge model with cloud fallback (or cloud-precomputed results cached on device).
    Hybrid,
}

impl Placement {
    pub const ALL: [Placement; 3] = [Placement::Cloud, Placement::Edge, Placement::Hybrid];

    pub fn name(self) -> &'static str {
        match self {
            Placement::Cloud => "cloud",
            Placement::Edge => "edge",
            Placement::Hybrid => "hybrid",
        }
    }

    pub fn parse(name: &str) -> Option<Placement> {
        Placement::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl std::fmt::Display for Placement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the planner may consider (defaults: everything).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchSpace {
    pub modes: Vec<Mode>,
    pub placements: Vec<Placement>,
    pub backends: Vec<BackendKind>,
    pub precisions: Vec<Precision>,
    /// Maximum batch sizes for dynamic batching, ascending.
    pub batch_sizes: Vec<usize>,
    /// Maximum queue delays for dynamic batching, milliseconds, ascending.
    pub max_queue_delay_ms: Vec<f64>,
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// Target names to consider (default: all targets of the scenario).
    pub targets: Vec<String>,
    /// Wall-clock budget for measuring, seconds (`--quick` shortens it).
    pub measurement_budget_s: f64,
    pub seed: u64,
}

/// What the author expects the planner to choose (`workbench run --check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Expect {
    pub mode: Mode,
    pub placement: Placement,
}

impl Scenario {
    /// One screen: model size and FLOPs per variant, traffic, inputs, SLO,
    /// constraints, targets, search space and expectation.
    pub fn summary(&self) -> String {
        summary::render(self)
    }

    /// One line: name, model family and size, traffic, SLO, expectation.
    pub fn one_line(&self) -> String {
        summary::one_line(self)
    }
}

/// Read and check a scenario file.
pub fn load(path: &Path) -> Result<Scenario, ScenarioErrors> {
    let bytes = read_regular_file(path, MAX_FILE_BYTES).map_err(|e| {
        let message = match e {
            ReadFileError::Directory => "is a directory, not a scenario file (pass the directory to `run` or `list` to use every *.toml in it)".to_string(),
            ReadFileError::TooLarge { limit } => {
                format!("file is larger than {limit} bytes, the most a scenario file may have")
            }
            ReadFileError::Io(e) => format!("cannot read scenario file: {e}"),
            other => format!("{other}; a scenario is a TOML text file"),
        };
        ScenarioErrors::whole_file(path, message)
    })?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(&e.as_bytes()[..valid]).into_owned();
            let (line, col) = line_col(&text, valid);
            return Err(ScenarioErrors {
                path: path.to_path_buf(),
                errors: vec![ScenarioError {
                    path: path.to_path_buf(),
                    line,
                    col,
                    key: String::new(),
                    message: format!(
                        "not UTF-8 text (invalid byte at offset {valid}); is this a binary file? A scenario is a TOML text file"
                    ),
                }],
                problems: 1,
            });
        }
    };
    parse_str(&text, path)
}

/// Parse and check scenario text; `path` names it in errors and is the base
/// for relative paths inside it (`traffic.trace_csv`).
pub fn parse_str(text: &str, path: &Path) -> Result<Scenario, ScenarioErrors> {
    validate::parse(text, path)
}

/// Expand the command line's files and directories into scenario files:
/// a directory contributes its `*.toml` files (sorted, not recursive), a file
/// is kept as given (even if missing, so `load` reports it).
pub fn discover<P: AsRef<Path>>(paths: &[P]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for path in paths {
        let path = path.as_ref();
        if path.is_dir() {
            found.extend(scenarios_in_dir(path));
        } else {
            found.push(path.to_path_buf());
        }
    }
    found
}

/// The `*.toml` entries directly inside `dir` that are not directories,
/// sorted (empty if unreadable). A dangling symbolic link or a FIFO named
/// `*.toml` is kept, so that `load` says what is wrong with it rather than
/// the directory seeming empty.
pub fn scenarios_in_dir(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| !p.is_dir() && p.extension().is_some_and(|x| x == "toml"))
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// Human-readable byte count (powers of 1000: kB, MB, GB, TB).
pub fn format_bytes(bytes: f64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Human-readable count with SI suffix (k, M, G, T).
pub fn format_count(count: f64) -> String {
    const UNITS: [&str; 6] = ["", " k", " M", " G", " T", " P"];
    let mut value = count;
    let mut unit = 0;
    while value.abs() >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}
