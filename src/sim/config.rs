//! Plain configuration structs for one simulation run.
//!
//! The simulator knows nothing about scenarios: the planner maps a scenario,
//! a candidate plan and a latency profile into a [`SimConfig`]. All times are
//! seconds (`f64`), all sizes bytes, all rates per second.
//!
//! A request's journey, by [`Mode`]:
//! - `Online`: client --[`NetworkLink`] uplink--> ([`Transport::Stream`]: broker
//!   produce + consume) --> [`ServingPool`] (balancer -> replica queue ->
//!   dynamic batch -> service) --> (stream: result produce) --downlink--> client.
//! - `Edge`: on-device [`EdgeDevices`] pool, no network hop.
//! - `BatchLookup`: precomputed predictions read from storage ([`LookupPath`]).
//! - `PrecomputeHybrid`: a `hit_rate` share of requests is served from the
//!   lookup path, the rest online (see [`super::zipf_hit_rate`]).
//! - `EdgeWithFallback`: a small on-device model, a `fallback_rate` share of
//!   requests goes to the cloud online path.

use serde::{Deserialize, Serialize};

/// Everything one run needs. `simulate(&config)` is a pure function of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimConfig {
    /// Seed of the simulation's own PCG streams, one per source of randomness
    /// (see the module docs: common random numbers). Same seed, same outcome.
    pub seed: u64,
    /// How requests are generated at the clients (total traffic).
    pub arrivals: ArrivalProcess,
    /// Request and response payload sizes (network serialisation, egress).
    pub payload: Payload,
    /// Client-side deadline: a request not answered within it is a
    /// `timeout` failure (never silently dropped). `None`: no deadline.
    pub timeout_s: Option<f64>,
    /// Which serving architecture carries the requests.
    pub mode: Mode,
    /// Run length, warm-up and early stop.
    pub run: RunControl,
}

/// Payload sizes per request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    pub request_bytes: u64,
    pub response_bytes: u64,
}

/// How long to run and what to measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunControl {
    /// Arrivals are generated for this much simulated time; requests in
    /// flight at the end are drained (completed or failed) before stopping.
    pub duration_s: f64,
    /// Optional cap on generated requests (whichever comes first).
    pub max_requests: Option<u64>,
    /// Requests sent before this time are simulated but not measured
    /// (latency, failures, staleness), to skip the empty-system transient.
    pub warmup_s: f64,
    /// Estimate a quantile's confidence interval as the run goes, and stop
    /// generating arrivals once it is narrow enough.
    pub early_stop: Option<EarlyStop>,
}

/// Early stop on a latency quantile's confidence interval (batch means over
/// consecutive groups of measured completions).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EarlyStop {
    /// The quantile whose interval is estimated, in (0, 1): 0.99 is the p99.
    #[serde(default = "p99")]
    pub quantile: f64,
    /// Stop when the 95% CI half-width of the quantile divided by the
    /// quantile is at most this; 0.005 means the whole interval is narrower
    /// than 1%. 0 never stops: the interval is only estimated.
    pub relative_half_width: f64,
    /// Completions per batch (each batch yields one estimate of the
    /// quantile); at least [`EarlyStop::batch_requests_for`] the quantile.
    pub batch_requests: u64,
    /// Do not stop before this many batches.
    pub min_batches: u64,
    /// Nor before this many requests were generated: a run extended past a
    /// shorter one's requests starts with exactly them (same seed).
    #[serde(default)]
    pub min_requests: u64,
}

fn p99() -> f64 {
    0.99
}

/// Completions beyond the quantile a batch holds at least: with fewer, a
/// batch's quantile is one of its few largest latencies, a biased and
/// lumpy estimate whose spread says little about the whole run's.
pub const TAIL_REQUESTS_PER_BATCH: f64 = 20.0;

impl EarlyStop {
    /// The smallest batch for quantile `q` in (0, 1): [`TAIL_REQUESTS_PER_BATCH`]
    /// completions beyond it (2,000 for the p99, 20,000 for the p99.9), and
    /// never under 1,000 (a batch must outlast a busy period for batches to
    /// be nearly independent). `None` for a `q` outside (0, 1).
    pub fn batch_requests_for(q: f64) -> Option<u64> {
        let tail = 1.0 - q;
        let n = (TAIL_REQUESTS_PER_BATCH / tail * (1.0 - 1e-12)).ceil();
        (q > 0.0 && tail > 0.0 && n.is_finite()).then(|| (n as u64).max(1_000))
    }
}

impl Default for EarlyStop {
    fn default() -> Self {
        Self {
            quantile: 0.99,
            relative_half_width: 0.005,
            batch_requests: 20_000,
            min_batches: 20,
            min_requests: 0,
        }
    }
}

/// Arrival process of requests at the clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ArrivalProcess {
    /// Exponential inter-arrival times.
    Poisson { rate_per_s: f64 },
    /// Evenly spaced: request k is sent at k / rate.
    Constant { rate_per_s: f64 },
    /// Poisson at `on_rate_per_s` during on periods and `off_rate_per_s`
    /// during off periods; period lengths are exponential with the given
    /// means. Starts in an on period.
    BurstyOnOff {
        on_rate_per_s: f64,
        off_rate_per_s: f64,
        mean_on_s: f64,
        mean_off_s: f64,
    },
    /// Non-homogeneous Poisson with rate
    /// `mean * max(0, 1 + (peak_factor - 1) * sin(2 pi t / period_s))`;
    /// `peak_factor` = peak rate / mean rate (>= 1; the long-run mean equals
    /// `mean_rate_per_s` exactly when `peak_factor <= 2`).
    Diurnal {
        mean_rate_per_s: f64,
        peak_factor: f64,
        period_s: f64,
    },
    /// Replay of send timestamps in seconds, non-decreasing (see
    /// [`super::parse_trace_csv`]). Arrivals end with the trace (its last lap).
    Trace {
        timestamps_s: Vec<f64>,
        /// Share of the trace's requests that arrive here, in (0, 1]: each
        /// timestamp is kept with this probability (independent thinning,
        /// drawn from the arrival stream), so a device sampled from a fleet
        /// sees its share of the traffic and a burst in the trace stays a
        /// burst. 1 replays the whole trace without drawing.
        #[serde(default = "one")]
        share: f64,
        /// Times the trace is replayed back to back (>= 1): a thinned trace
        /// may hold too few requests for a percentile, so it is repeated
        /// (each lap thinned afresh) rather than stretched. A lap lasts the
        /// trace's span plus its mean gap, so the mean rate is kept.
        #[serde(default = "one_lap")]
        laps: u32,
    },
}

fn one() -> f64 {
    1.0
}

fn one_lap() -> u32 {
    1
}

/// A latency distribution fitted to a median and a p99: lognormal with
/// `mu = ln(median)`, `sigma = ln(p99 / median) / 2.326`. `p99 == median`
/// gives a constant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyFit {
    pub median_s: f64,
    pub p99_s: f64,
}

impl LatencyFit {
    /// A constant latency.
    pub fn constant(seconds: f64) -> Self {
        Self {
            median_s: seconds,
            p99_s: seconds,
        }
    }
}

/// Client <-> region network link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkLink {
    /// Round-trip time; half is charged each way.
    pub rtt: LatencyFit,
    /// Link bandwidth in bits per second (request bytes are serialised on
    /// the way up, response bytes on the way down). `f64::INFINITY` allowed.
    pub bandwidth_bps: f64,
    /// Per-transmission packet loss probability in [0, 1): retransmissions
    /// are lost with it too.
    pub loss_probability: f64,
    /// TCP's retransmission timeout (RTO) before backoff: a lost last packet
    /// of a message, or a lost retransmission, waits for it, doubled at each
    /// further loss; other losses are recovered by fast retransmit in one RTT.
    /// After [`super::MAX_RETRANSMISSIONS`] losses of one packet, or past the
    /// request's deadline, the request fails as a timeout.
    pub retransmit_timeout_s: f64,
    /// Packet payload size used to count packets (e.g. 1460).
    pub mss_bytes: u64,
    /// Periods without connectivity.
    pub offline: Offline,
    /// What a request that needs the network does while offline.
    pub offline_policy: OfflinePolicy,
}

impl NetworkLink {
    /// A lossless, always-online link with the given RTT and bandwidth.
    pub fn simple(rtt: LatencyFit, bandwidth_bps: f64) -> Self {
        Self {
            rtt,
            bandwidth_bps,
            loss_probability: 0.0,
            retransmit_timeout_s: 0.2,
            mss_bytes: 1460,
            offline: Offline::Never,
            offline_policy: OfflinePolicy::Fail,
        }
    }
}

/// Connectivity of the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Offline {
    Never,
    /// Alternating exponential online / offline periods, starting online.
    /// Long-run offline fraction = mean_offline / (mean_online + mean_offline).
    Random {
        mean_online_s: f64,
        mean_offline_s: f64,
    },
    /// Explicit offline windows `[start_s, end_s)`, sorted, not overlapping.
    Windows(Vec<(f64, f64)>),
    /// A fleet of many devices, each offline `offline_fraction` of the time
    /// independently of the others. Each request comes from its own device,
    /// so it finds that device offline with probability `offline_fraction`,
    /// from the first request on (the fleet is in its stationary state; one
    /// device's periods would be longer than a simulated window). A request
    /// that waits for reconnection waits out the rest of its device's offline
    /// period: exponential with mean `mean_offline_s` (memoryless).
    Fleet {
        offline_fraction: f64,
        mean_offline_s: f64,
    },
}

/// What happens to a request sent while the link is offline (connectivity
/// is checked when the request is sent; a response in flight is not cut).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OfflinePolicy {
    /// Fails at once (failure reason `offline`).
    Fail,
    /// Waits for the link to come back; fails as `offline` if that is
    /// after the request's deadline.
    WaitForReconnect,
}

/// Request-driven (HTTP) or event-driven (broker) transport.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Transport {
    Http,
    Stream(Broker),
    /// Events on a broker reach an HTTP service through a bridge consumer:
    /// the broker's latency, in and out, but the service's balancer (not the
    /// partitions) spreads requests over its replicas.
    Bridged(Broker),
}

/// A broker hop (e.g. Kafka). Messages are hashed to a partition uniformly;
/// partition `p` is consumed by replica `p % replicas`, so with fewer
/// partitions than replicas some replicas stay idle. Messages waiting at a
/// consumer are its consumer lag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Broker {
    pub partitions: u32,
    /// Client -> broker (and replica -> result topic) produce latency.
    pub produce: LatencyFit,
    /// Broker -> consumer delivery latency (poll interval, fetch): the
    /// replica's of a request, the client's of its result.
    pub consume: LatencyFit,
}

/// How the balancer picks a replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Balancer {
    RoundRobin,
    /// Fewest queued + in-service requests; ties to the lowest index.
    LeastOutstanding,
    /// Uniformly at random (e.g. which user's device a request belongs to).
    Random,
    /// One FIFO shared by all replicas; an idle replica pulls the next
    /// batch (a worker pool; M/M/c when unbatched). `queue_capacity` then
    /// bounds the shared queue.
    SharedQueue,
}

/// Dynamic batching: a replica dispatches a batch when `max_batch_size`
/// requests wait, or when the oldest waiting request has waited
/// `max_queue_delay_s`, whichever is first (and only when it is idle).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Batching {
    pub max_batch_size: u32,
    pub max_queue_delay_s: f64,
}

impl Batching {
    /// No batching: one request at a time, no waiting.
    pub const NONE: Batching = Batching {
        max_batch_size: 1,
        max_queue_delay_s: 0.0,
    };
}

/// One measured (or projected) point of a latency profile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProfilePoint {
    pub batch_size: u32,
    /// Median time to run one batch of this size.
    pub median_s: f64,
    /// Its p99 (the spread); `== median_s` for no spread.
    pub p99_s: f64,
}

/// Service time of one batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ServiceTime {
    /// Measured profile, points sorted by batch size. Median and p99 are
    /// interpolated linearly between measured batch sizes, extrapolated
    /// along the last segment (constant below the first point, proportional
    /// to batch size above it when there is one point), and drawn from the
    /// lognormal fitted to them.
    Profile(Vec<ProfilePoint>),
    /// Exponential with this mean whatever the batch size (theory checks).
    Exponential { mean_s: f64 },
    /// Constant whatever the batch size (theory checks).
    Deterministic { seconds: f64 },
}

/// Replicas that start cold, e.g. added by a scale-out: not routed to until
/// ready (unless no replica is ready), and slower on their first batch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ColdStart {
    /// The last `cold_replicas` replicas of the pool start cold.
    pub cold_replicas: u32,
    /// When they are asked for (scale-out trigger), seconds into the run.
    pub scale_out_at_s: f64,
    /// Trigger -> ready (image pull, model load).
    pub startup_s: f64,
    /// Extra time on each cold replica's first batch (lazy init, caches).
    pub first_batch_extra_s: f64,
}

/// Cloud serving: a balancer in front of replicas with their own queues.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServingPool {
    pub replicas: u32,
    /// Ignored for `Transport::Stream` (partitions decide).
    pub balancer: Balancer,
    pub batching: Batching,
    pub service: ServiceTime,
    /// Per-replica queue bound; arrivals to a full queue fail as
    /// `queue_full`. Also bounds the simulator's memory.
    pub queue_capacity: u32,
    pub cold_start: Option<ColdStart>,
    /// Reactive scale-out; `replicas` is then the initial count.
    pub autoscale: Option<Autoscale>,
}

/// Reactive scale-out (no scale-in): every `interval_s`, if the requests
/// queued or in service exceed `target_outstanding_per_replica` per
/// launched replica, one more replica is launched (up to `max_replicas`);
/// it starts cold: ready `startup_s` later, `first_batch_extra_s` slower
/// on its first batch. Billing follows launched replicas
/// (`PoolStats::mean_replicas`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Autoscale {
    pub max_replicas: u32,
    pub interval_s: f64,
    pub target_outstanding_per_replica: f64,
    pub startup_s: f64,
    pub first_batch_extra_s: f64,
}

/// Cloud online path (HTTP or streaming).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnlinePath {
    pub link: NetworkLink,
    pub transport: Transport,
    pub pool: ServingPool,
}

/// Sustained-load throttling of an edge device: a thermal state `u` in
/// [0, 1] follows busy time with time constant `time_constant_s`
/// (du/dt = (busy - u) / tau); batches that start while `u > threshold`
/// take `slowdown` times longer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Throttling {
    pub time_constant_s: f64,
    pub threshold: f64,
    pub slowdown: f64,
}

/// On-device execution: `devices` identical devices, each request belongs
/// to one device uniformly at random (so `devices = 1` with the per-device
/// arrival rate models one user's phone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeDevices {
    pub devices: u32,
    pub batching: Batching,
    pub service: ServiceTime,
    pub queue_capacity: u32,
    /// Device power while running the model (W); energy = power x busy time.
    pub busy_power_w: f64,
    /// Device power attributable to the model while idle (often 0).
    pub idle_power_w: f64,
    pub throttling: Option<Throttling>,
}

/// Periodic batch job producing the predictions served by lookup (see
/// [`super::plan_batch_job`]): job k runs over `[k P, k P + D)` and
/// publishes at its end; inputs are scored uniformly over the run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct JobSchedule {
    pub period_s: f64,
    pub duration_s: f64,
}

impl JobSchedule {
    /// Mean age of a precomputed answer at lookup, over the steady-state
    /// refresh cycle: (P + D) / 2. A lookup at a uniformly random time is
    /// uniform in [0, P) after the last publication (mean P / 2), and its
    /// answer was scored uniformly within the D before that (mean D / 2).
    /// The job's clock time is not tied to the traffic's, so lookups are
    /// taken as uniform over the cycle; a simulated window (seconds long,
    /// at one phase of a cycle of hours) could not measure this.
    pub fn mean_age_s(&self) -> f64 {
        (self.period_s + self.duration_s) / 2.0
    }

    /// Oldest answer a lookup can get: P + D (scored as its job started,
    /// served until the next job publishes).
    pub fn max_age_s(&self) -> f64 {
        self.period_s + self.duration_s
    }
}

/// Request-time lookup of a precomputed prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LookupPath {
    /// `None`: the store is on the device (no network, no egress).
    pub link: Option<NetworkLink>,
    /// Storage read latency (key-value store, no queueing).
    pub lookup: LatencyFit,
    pub job: JobSchedule,
}

/// Serving architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Mode {
    Online(OnlinePath),
    Edge(EdgeDevices),
    BatchLookup(LookupPath),
    /// Precomputed popular inputs (`hit_rate` of requests), online misses.
    PrecomputeHybrid {
        lookup: LookupPath,
        hit_rate: f64,
        online: OnlinePath,
    },
    /// Small edge model; `fallback_rate` of requests go to the cloud.
    EdgeWithFallback {
        edge: EdgeDevices,
        fallback_rate: f64,
        online: OnlinePath,
    },
}
