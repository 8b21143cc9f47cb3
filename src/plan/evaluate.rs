//! From a candidate to simulated metrics and the reasons it fails, if it does.
//!
//! Each candidate is mapped onto the simulator's plain config (arrivals, link,
//! broker, pool, edge devices, lookup path), simulated with the scenario's seed,
//! priced, and checked against every constraint and objective.

use workbench_kernels::{BackendKind, Precision};

use crate::hardware::TargetSpec;
pub use crate::report::format::{ms as fmt_ms, usd as fmt_usd, watts as fmt_watts};
use crate::report::{self, CostLine, FigureSource, LatencyPercentiles};
use crate::scenario::{self, InputSpace, Mode, Placement, Scenario, Target};
// The share of the simulated window not measured (the empty-system
// transient), for a trace the share of its arrivals replayed; validation
// counts a trace's measured arrivals the same way.
use crate::scenario::limits::{MIN_TRACE_ARRIVALS, WARMUP_FRACTION};
use crate::sim::{
    self, cost, ArrivalProcess, Balancer, BatchJobConfig, Batching, Broker, EarlyStop, EdgeDevices,
    LatencyFit, LookupPath, NetworkLink, Offline, OfflinePolicy, OnlinePath, Payload, RunControl,
    ServiceTime, ServingPool, SimConfig, SimOutcome, Transport,
};

use super::candidate::Candidate;
use super::profile::{ComputeProfile, ProfileSet};

/// Prices the scenario format does not carry (published list prices, 2026).
pub const EGRESS_USD_PER_GB: f64 = 0.09;
/// A small managed Kafka cluster (3 brokers, smallest instance class), per month.
pub const BROKER_USD_PER_MONTH: f64 = 220.0;
pub const BROKER_USD_PER_GB: f64 = 0.01;
pub const ENERGY_USD_PER_KWH: f64 = 0.15;
/// Replica sizing aims at this utilisation before simulation decides.
pub const TARGET_UTILISATION: f64 = 0.85;
/// Per-replica queue bound (also bounds the simulator's memory).
const QUEUE_CAPACITY: u32 = 4096;
/// Edge fleets larger than this are simulated as a sample of this many devices,
/// each with its real per-device share of the traffic.
const MAX_SIMULATED_DEVICES: u64 = 256;
/// The largest sample of a fleet: when [`MAX_SIMULATED_DEVICES`] devices would
/// see too few requests in the longest window to judge the SLO percentile (a
/// rarely used feature on millions of phones), more are sampled, each still
/// at its own rate. About 1 KB of simulator state per device.
const MAX_SAMPLED_DEVICES: u64 = 16_384;
/// Slack on the requests a fleet's sample is sized for: arrivals in a window
/// are random, and the sample must not fall just short.
const SAMPLE_MARGIN: f64 = 1.5;
/// Mean length of a device's offline period when the scenario has devices offline
/// part of the time (how long a request that waits for reconnection would wait).
const MEAN_OFFLINE_S: f64 = 120.0;

/// Linux's floor on TCP's retransmission timeout (`TCP_RTO_MIN`, 200 ms),
/// unless a link states its own `min_rto_ms` (data centres often lower it).
pub const RTO_MIN_S: f64 = 0.2;

/// The highest packet loss simulated: at 1 no packet would ever arrive.
const MAX_LOSS_PROBABILITY: f64 = 1.0 - 1e-9;

/// TCP's retransmission timeout on a link whose RTT has this p99: Linux sets
/// it to the smoothed RTT plus four mean deviations, which for the lognormal
/// RTTs fitted here lies near the p99 (median 60 ms, p99 300 ms: about
/// 265 ms), with a floor: the link's `min_rto_ms`, else [`RTO_MIN_S`].
pub fn retransmit_timeout_s(link: &scenario::Link) -> f64 {
    let floor_s = link.min_rto_ms.map_or(RTO_MIN_S, |ms| ms / 1000.0);
    (link.rtt_p99_ms.max(link.rtt_median_ms) / 1000.0).max(floor_s)
}

/// How much simulation each candidate gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimBudget {
    pub requests: u64,
    pub seed: u64,
}

/// A [`SimBudget`] and, for a finalist, its SLO percentile's confidence
/// interval: estimated by batch means, the run extended until it is narrow.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchBudget {
    pub sim: SimBudget,
    pub confidence: Option<SloConfidence>,
}

impl From<SimBudget> for SearchBudget {
    fn from(sim: SimBudget) -> Self {
        Self {
            sim,
            confidence: None,
        }
    }
}

impl std::ops::Deref for SearchBudget {
    type Target = SimBudget;
    fn deref(&self) -> &SimBudget {
        &self.sim
    }
}

/// How far one plan's run goes for its SLO percentile's confidence interval:
/// at least the budget's requests (the same run, the same seed), then on
/// until the interval's half-width is at most `relative_half_width` of the
/// estimate or `max_requests` were simulated.
#[derive(Debug, Clone, PartialEq)]
pub struct SloConfidence {
    /// The plan whose run is extended (see [`Candidate::id`]): others of its
    /// family, simulated on the way to it, are not.
    pub plan_id: String,
    pub relative_half_width: f64,
    pub max_requests: u64,
}

/// Batches a confidence interval needs at least: with fewer, Student's t
/// at so few degrees of freedom makes it wide and its own width unreliable.
pub const MIN_CONFIDENCE_BATCHES: u64 = 10;

/// How a variant's agreement with the reference variant is known.
#[derive(Debug, Clone, PartialEq)]
pub enum VariantBasis {
    /// The reference variant itself: 1 by definition.
    Reference,
    /// The ratio of the accuracies the scenario declares (not measured here).
    Declared { variant: f64, reference: f64 },
    /// `undeclared` (the variant or the reference) declares no `accuracy`:
    /// the agreement is unknown and cannot be shown to meet any floor.
    Unknown { undeclared: String },
}

/// Seeded inputs a reduced precision's agreement with f32 is measured on:
/// one disagreement moves it 0.39 points (64 had moved it 1.56, so a 99%
/// floor could only be met by no disagreement at all).
pub const AGREEMENT_INPUTS: usize = 256;

/// Agreement of a (variant, precision) with the reference model at f32, and
/// where the figure comes from (for a reason a person can check).
#[derive(Debug, Clone, PartialEq)]
pub struct Agreement {
    pub variant: String,
    pub reference: String,
    pub basis: VariantBasis,
    pub precision: Precision,
    /// Measured agreement of `precision` with f32 on seeded inputs (1 at f32).
    pub precision_agreement: f64,
    /// A figure combined from several models (an edge model with cloud
    /// fallback), replacing the product when set.
    pub combined: Option<f64>,
}

impl Agreement {
    /// The agreement, `None` when unknown.
    pub fn value(&self) -> Option<f64> {
        let variant = match &self.basis {
            VariantBasis::Reference => 1.0,
            VariantBasis::Declared { variant, reference } => (variant / reference).min(1.0),
            VariantBasis::Unknown { .. } => return None,
        };
        Some(self.combined.unwrap_or(variant * self.precision_agreement))
    }

    /// The figure shown in a plan row: an unknown agreement counts as none, so
    /// that a plan of unknown accuracy never looks better than a known one.
    pub fn shown(&self) -> f64 {
        self.value().unwrap_or(0.0)
    }

    /// Why the plan fails the scenario's accuracy floor, if it does.
    pub fn below_floor(&self, floor: f64) -> Option<String> {
        if floor <= 0.0 {
            return None;
        }
        let Some(value) = self.value() else {
            let undeclared = match &self.basis {
                VariantBasis::Unknown { undeclared } => undeclared.as_str(),
                _ => "",
            };
            return Some(format!(
                "agreement of `{}` with `{}` unknown (`{undeclared}` declares no accuracy): cannot be shown to meet the floor {}% (declare `accuracy` for both variants)",
                self.variant,
                self.reference,
                fmt_pct(floor)
            ));
        };
        if value + 1e-12 >= floor {
            return None;
        }
        let precision_part = || {
            format!(
                "{} agreement {}% with f32, measured",
                self.precision.name(),
                fmt_pct(self.precision_agreement)
            )
        };
        let basis = match (&self.basis, self.combined) {
            (_, Some(_)) => "with its cloud fallback".to_string(),
            (VariantBasis::Declared { variant, reference }, None) => {
                let declared = format!(
                    "ratio of declared accuracies, `{}` {variant} / `{}` {reference}, not measured",
                    self.variant, self.reference
                );
                if self.precision_agreement < 1.0 {
                    format!("{declared}, times {}", precision_part())
                } else {
                    declared
                }
            }
            _ => precision_part(),
        };
        let (value, floor) = told_apart(value, floor, fmt_pct, 100.0, "");
        Some(format!(
            "accuracy agreement {value}% < floor {floor}% ({basis})"
        ))
    }
}

/// A candidate with its metrics and, if it fails any constraint, why.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub candidate: Candidate,
    pub plan: report::Plan,
    /// Reasons a person can check; empty = meets every constraint.
    pub rejected: Vec<String>,
    /// Simulated latency CDF (empty when pruned before simulation).
    pub cdf: Vec<report::CdfPoint>,
    /// False when pruned analytically (metrics are then lower bounds).
    pub simulated: bool,
    /// Capacity of the plan, predictions per second (for the throughput objective).
    pub capacity_rps: f64,
    /// Latency at the scenario's SLO percentile over all requests, the figure
    /// the SLO is checked against (`None`: too many requests failed to reach it).
    pub slo_latency_ms: Option<f64>,
    /// Edge: the average power the device draws running the model (busy
    /// power times its busy share at the scenario's mean traffic), the figure
    /// checked against the power limit. `None` elsewhere.
    pub device_power_w: Option<f64>,
    /// Rejected whatever its replica count: the requests whose device is offline
    /// alone are more than the SLO percentile allows (more replicas bring no
    /// device online), so a search for the replicas that pass can stop.
    pub offline_bound: bool,
}

impl Evaluation {
    pub fn feasible(&self) -> bool {
        self.rejected.is_empty()
    }

    /// Every reason, joined; pruned plans say they were not simulated.
    pub fn reason(&self) -> Option<String> {
        (!self.rejected.is_empty()).then(|| {
            let reasons = self.rejected.join("; ");
            if self.simulated {
                reasons
            } else {
                format!("{reasons} (not simulated)")
            }
        })
    }
}

/// Everything about the scenario the evaluation needs, looked up once.
pub struct Context<'a> {
    pub scenario: &'a Scenario,
    pub profiles: &'a ProfileSet,
    /// When set, only candidates of these families (see [`Candidate::family`]) are
    /// evaluated: sensitivity re-plans the front-runners only.
    pub only: Option<&'a std::collections::BTreeSet<String>>,
    /// Set by whoever no longer wants the answer (the TUI, when a re-plan is
    /// superseded): candidates not yet simulated are then skipped.
    pub cancel: Option<&'a std::sync::atomic::AtomicBool>,
}

impl Context<'_> {
    pub fn allows(&self, c: &Candidate) -> bool {
        self.only.is_none_or(|only| only.contains(&c.family()))
    }

    /// Whether the planning was cancelled: what is computed after that is thrown away.
    pub fn cancelled(&self) -> bool {
        self.cancel
            .is_some_and(|flag| flag.load(std::sync::atomic::Ordering::Relaxed))
    }

    fn reference_variant(&self) -> &str {
        self.scenario
            .model
            .reference_variant()
            .map_or("", |v| v.name.as_str())
    }

    /// Response bytes a month at the scenario's mean rate, for `share` of the requests.
    fn monthly_response_bytes(&self, share: f64) -> f64 {
        self.scenario.traffic.rate_per_s
            * share
            * self.scenario.inputs.response_bytes as f64
            * cost::HOURS_PER_MONTH
            * 3600.0
    }

    /// The scenario's long-run mean rate for `share` of its traffic: what usage is
    /// billed at, whatever rate the (short) simulation ran at.
    fn mean_rate(&self, share: f64) -> f64 {
        self.scenario.traffic.rate_per_s * share
    }

    /// See [`throughput_floor_rps`].
    pub fn throughput_floor_rps(&self) -> f64 {
        throughput_floor_rps(self.scenario)
    }

    /// A per-request figure (the simulator's unit: one request, one
    /// response) per prediction: a request asks `predictions_per_request`.
    pub(super) fn per_prediction(&self, per_request: f64) -> f64 {
        per_request / self.scenario.inputs.predictions_per_request.max(1) as f64
    }

    fn slo_s(&self) -> f64 {
        self.scenario.objectives.latency_ms / 1000.0
    }

    fn timeout_s(&self) -> f64 {
        (self.slo_s() * 10.0).max(1.0)
    }

    pub fn target(&self, name: &str) -> Option<&Target> {
        self.scenario.targets.find(name)
    }

    /// Agreement of `variant` at `precision` with the reference model at f32:
    /// the variant's declared accuracy over the reference's (1 for the
    /// reference itself; unknown when either declares none), times the
    /// measured agreement of `precision` with f32.
    pub fn agreement(&self, variant: &str, precision: Precision) -> Agreement {
        let declared = |name: &str| {
            self.scenario
                .model
                .variants
                .iter()
                .find(|v| v.name == name)
                .and_then(|v| v.accuracy)
        };
        let reference = self.reference_variant();
        let basis = if variant == reference {
            VariantBasis::Reference
        } else {
            match (declared(variant), declared(reference)) {
                (Some(v), Some(r)) if r > 0.0 => VariantBasis::Declared {
                    variant: v,
                    reference: r,
                },
                (v, _) => VariantBasis::Unknown {
                    undeclared: if v.is_none() {
                        variant.to_string()
                    } else {
                        reference.to_string()
                    },
                },
            }
        };
        Agreement {
            variant: variant.to_string(),
            reference: reference.to_string(),
            basis,
            precision,
            precision_agreement: self.profiles.accuracy_of(variant, precision).unwrap_or(1.0),
            combined: None,
        }
    }

    /// Client <-> target link, with the scenario's offline devices.
    pub(super) fn link(&self, target: &Target) -> NetworkLink {
        let s = self.scenario;
        let named = target.link.as_deref().and_then(|n| s.targets.link(n));
        let mut link = match named {
            Some(l) => NetworkLink {
                rtt: LatencyFit {
                    median_s: l.rtt_median_ms / 1000.0,
                    p99_s: l.rtt_p99_ms.max(l.rtt_median_ms) / 1000.0,
                },
                bandwidth_bps: l.bandwidth_mbps * 1e6,
                // the simulator takes any loss below 1 (at 1 nothing arrives)
                loss_probability: l.loss_fraction.clamp(0.0, MAX_LOSS_PROBABILITY),
                retransmit_timeout_s: retransmit_timeout_s(l),
                ..NetworkLink::simple(LatencyFit::constant(0.0), f64::INFINITY)
            },
            None => NetworkLink::simple(LatencyFit::constant(0.0), f64::INFINITY),
        };
        // The clients are a fleet: at any moment `offline_fraction` of the devices
        // are offline, each on its own schedule, so each request's device is offline
        // with that probability from the first request on. (One shared link, starting
        // online, with two-minute outages, never went offline in a one-minute run.)
        let offline = s.constraints.offline_fraction;
        if offline > 0.0 {
            link.offline = Offline::Fleet {
                offline_fraction: offline.min(1.0),
                mean_offline_s: MEAN_OFFLINE_S,
            };
            link.offline_policy = OfflinePolicy::Fail;
        }
        link
    }

    /// The scenario's arrivals, scaled to a share of the traffic (a trace is
    /// thinned to it: each timestamp kept with that probability, seeded).
    pub fn arrivals(&self, share: f64) -> ArrivalProcess {
        let t = &self.scenario.traffic;
        let rate = t.rate_per_s * share;
        match &t.process {
            scenario::ArrivalProcess::Poisson => ArrivalProcess::Poisson {
                rate_per_s: self.simulated_rate(share),
            },
            scenario::ArrivalProcess::Constant => ArrivalProcess::Constant {
                rate_per_s: self.simulated_rate(share),
            },
            scenario::ArrivalProcess::Bursty { on_s, off_s } => ArrivalProcess::BurstyOnOff {
                on_rate_per_s: rate * (on_s + off_s) / on_s,
                off_rate_per_s: 0.0,
                mean_on_s: *on_s,
                mean_off_s: *off_s,
            },
            // A planning run is far shorter than a day: size for the peak.
            scenario::ArrivalProcess::Diurnal { .. } => ArrivalProcess::Poisson {
                rate_per_s: self.simulated_rate(share),
            },
            scenario::ArrivalProcess::Trace { timestamps_s, .. } => ArrivalProcess::Trace {
                timestamps_s: timestamps_s.clone(),
                share: share.min(1.0),
                laps: self.trace_laps(share),
            },
        }
    }

    /// Replays of a trace (thinned to `share`, or whole) back to back: enough
    /// for the requests a simulation wants (as a stationary process gets a
    /// longer window), within the longest window. A thinned lap is a fresh
    /// sample of the trace; a whole trace's laps repeat its arrival times with
    /// fresh service and network draws, so a trace too short for the SLO
    /// percentile is judged on its own arrivals, each replayed, rather than
    /// refused (it is lapped only when it holds the [`MIN_TRACE_ARRIVALS`]
    /// validation requires: fewer is no traffic to judge a percentile on).
    /// 1 for another process.
    fn trace_laps(&self, share: f64) -> u32 {
        let t = &self.scenario.traffic;
        let scenario::ArrivalProcess::Trace { timestamps_s, .. } = &t.process else {
            return 1;
        };
        let lap_s = sim::trace_lap_length_s(timestamps_s);
        if lap_s <= 0.0 {
            return 1;
        }
        let share = share.min(1.0);
        let n = timestamps_s.len() as f64;
        // The last lap ends where the scenario's window does.
        let in_last_lap = timestamps_s.partition_point(|&x| x <= t.duration_s) as f64;
        let wanted = if share >= 1.0 {
            if in_last_lap < MIN_TRACE_ARRIVALS as f64 {
                return 1;
            }
            // the percentile's requests, not the floor for a process whose
            // rate alone would give a handful (a whole trace is the traffic)
            self.requests_wanted(0)
        } else {
            self.requests_wanted(MIN_SIMULATED_REQUESTS)
        } as f64;
        let per_lap = n * share;
        let mut laps = (wanted / per_lap).ceil();
        if (laps - 1.0) * per_lap + in_last_lap * share < wanted {
            laps += 1.0; // the last lap is cut short
        }
        let longest = (MAX_EXTENDED_WINDOW_S / lap_s).floor();
        // saturating casts: NaN or huge become 0 or u32::MAX, then at least 1
        (laps.min(longest) as u32).max(1)
    }

    /// Requests to simulate: at least `floor`, and enough that the measured ones
    /// (after the warm-up) can estimate the SLO percentile, within a bound.
    fn requests_wanted(&self, floor: u64) -> u64 {
        let q = self.scenario.objectives.latency_percentile;
        let for_percentile = requests_for_percentile(q)
            .map_or(MAX_REQUESTS_FOR_PERCENTILE, simulated_for)
            .min(MAX_REQUESTS_FOR_PERCENTILE);
        floor.max(for_percentile)
    }

    /// Devices to simulate of a fleet of `fleet` serving `traffic_share` of
    /// the requests: all of a small fleet, else [`MAX_SIMULATED_DEVICES`], or
    /// as many more (up to [`MAX_SAMPLED_DEVICES`]) as it takes for the
    /// sample's requests in the longest window to estimate the SLO percentile.
    /// A bigger sample, not a longer window: each device keeps its own rate.
    pub fn sampled_devices(&self, fleet: u64, traffic_share: f64) -> u64 {
        let base = fleet.min(MAX_SIMULATED_DEVICES);
        let wanted = self.requests_wanted(0) as f64 * SAMPLE_MARGIN;
        let per_device = traffic_share / fleet.max(1) as f64;
        let devices = (self.share_for_requests(wanted, MAX_EXTENDED_WINDOW_S) / per_device).ceil();
        if devices > base as f64 {
            // a saturating cast: infinity (no window is long enough) is the cap
            (devices as u64).min(MAX_SAMPLED_DEVICES).min(fleet)
        } else {
            base
        }
    }

    /// The smallest share of the traffic whose arrivals bring `n` requests
    /// within `window_s`, as [`Self::run_control`] and [`Self::trace_laps`]
    /// size their windows (infinite when no share can).
    fn share_for_requests(&self, n: f64, window_s: f64) -> f64 {
        let t = &self.scenario.traffic;
        match &t.process {
            scenario::ArrivalProcess::Bursty { on_s, off_s } => {
                let left = window_s - 20.0 * (on_s + off_s);
                if left > 0.0 && t.rate_per_s > 0.0 {
                    2.0 * n / (t.rate_per_s * left)
                } else {
                    f64::INFINITY
                }
            }
            scenario::ArrivalProcess::Trace { timestamps_s, .. } => {
                let lap_s = sim::trace_lap_length_s(timestamps_s);
                let laps = if lap_s > 0.0 {
                    (window_s / lap_s).floor().max(1.0)
                } else {
                    1.0
                };
                n / (timestamps_s.len().max(1) as f64 * laps)
            }
            _ => n / (t.peak_rate_per_s() * window_s),
        }
    }

    /// The least rate a stationary process (Poisson, constant, a diurnal
    /// day's peak) is simulated at: the one that brings the SLO percentile's
    /// requests (with [`SAMPLE_MARGIN`]) within the longest window. Slower
    /// traffic could not be judged at all; simulated faster, its queues can
    /// only be longer, and at this rate requests almost never meet anyway (a
    /// lone request's latency either way). Cost is billed at the real rate.
    fn rate_floor(&self) -> f64 {
        self.requests_wanted(0) as f64 * SAMPLE_MARGIN / MAX_EXTENDED_WINDOW_S
    }

    /// Requests per second `share` of the traffic is simulated at: its peak,
    /// for a stationary process at least [`Self::rate_floor`].
    fn simulated_rate(&self, share: f64) -> f64 {
        let t = &self.scenario.traffic;
        let peak = t.peak_rate_per_s() * share;
        match &t.process {
            scenario::ArrivalProcess::Poisson
            | scenario::ArrivalProcess::Constant
            | scenario::ArrivalProcess::Diurnal { .. } => peak.max(self.rate_floor()),
            _ => peak,
        }
    }

    /// The rate the whole traffic is simulated at when it is raised to
    /// [`Self::rate_floor`] (too slow to judge the SLO percentile otherwise).
    pub fn raised_rate(&self) -> Option<f64> {
        let rate = self.simulated_rate(1.0);
        (rate > self.scenario.traffic.peak_rate_per_s()).then_some(rate)
    }

    /// Edge classes whose sampled devices, even at the largest sample, are
    /// simulated at a raised rate: each class's name, the devices simulated,
    /// the requests per second one of its devices sees and the rate it is
    /// simulated at.
    pub fn raised_device_rates(&self) -> Vec<(String, u64, f64, f64)> {
        let targets = &self.scenario.targets;
        let fleet = targets.fleet();
        let classes: Vec<(&Target, f64)> = if fleet.is_empty() {
            targets.edge.iter().map(|t| (t, 1.0)).collect()
        } else {
            fleet
        };
        let peak = self.scenario.traffic.peak_rate_per_s();
        classes
            .into_iter()
            .filter_map(|(t, share)| {
                let devices = t.devices();
                let sampled = self.sampled_devices(devices, share);
                let arrival_share = share * sampled as f64 / devices as f64;
                let simulated = self.simulated_rate(arrival_share);
                (simulated > peak * arrival_share).then(|| {
                    let per_device = |rate: f64| rate / sampled as f64;
                    (
                        t.spec.name.clone(),
                        sampled,
                        per_device(peak * arrival_share),
                        per_device(simulated),
                    )
                })
            })
            .collect()
    }

    fn run_control(&self, budget: &SimBudget, share: f64) -> RunControl {
        let t = &self.scenario.traffic;
        let requests = self.requests_wanted(budget.requests);
        if let scenario::ArrivalProcess::Trace { timestamps_s, .. } = &t.process {
            return self.trace_run_control(timestamps_s, requests, share);
        }
        let rate = self.simulated_rate(share).max(1e-9);
        // A low rate over the scenario's window gives a handful of requests
        // and a meaningless p99: simulate long enough for a few thousand (a
        // stationary process for longer, a trace in laps).
        // Time for `n` requests: at the peak rate, or, for bursts, twice that
        // at the mean rate and 20 more on/off cycles. Burst and pause lengths
        // are exponential: a window of a few cycles can hold a long pause and
        // few requests (a window sized at the peak rate had held none; one of
        // n at the mean rate and two cycles still lost a seed in twenty).
        // Arrivals stop at `max_requests`, so the slack costs nothing when
        // they come.
        let time_for = |n: u64| match &t.process {
            scenario::ArrivalProcess::Bursty { on_s, off_s } => {
                2.0 * n as f64 / (t.rate_per_s * share).max(1e-9) + 20.0 * (on_s + off_s)
            }
            _ => n as f64 / rate,
        };
        let wanted = self.requests_wanted(MIN_SIMULATED_REQUESTS.min(budget.requests));
        let window = t
            .duration_s
            .max(time_for(wanted).min(MAX_EXTENDED_WINDOW_S));
        let duration = time_for(requests).min(window);
        // The warm-up skips the empty system's transient: a share of the time
        // the requests take at the peak (the first burst's), not of the slack.
        let warmup = (requests as f64 / rate).min(duration) * WARMUP_FRACTION;
        RunControl {
            duration_s: duration,
            max_requests: Some(requests),
            warmup_s: warmup,
            early_stop: None,
        }
    }

    /// A trace is replayed as recorded, wherever its timestamps start: every
    /// lap but the last whole, the last cut where the scenario's window ends
    /// (its last timestamp included), unless `requests` cap the run. The
    /// warm-up is the first [`WARMUP_FRACTION`] of the arrivals replayed
    /// (counted before thinning), not a share of the window's time: a
    /// trace's lead-in and lulls are no transient (a share of the time had
    /// skipped a whole trace that starts late, or the first of two bursts a
    /// day apart), and arrivals at the same instant as the last one warming
    /// up are measured (a burst at the start is traffic to judge).
    /// Validation counts the measured arrivals the same way.
    fn trace_run_control(&self, timestamps_s: &[f64], requests: u64, share: f64) -> RunControl {
        let laps = self.trace_laps(share);
        let lap_s = sim::trace_lap_length_s(timestamps_s);
        let duration = self.scenario.traffic.duration_s;
        let window = duration + f64::from(laps - 1) * lap_s;
        let n = timestamps_s.len();
        let in_last_lap = timestamps_s.partition_point(|&x| x <= duration);
        let replayed = (laps as usize - 1) * n + in_last_lap;
        let simulated = (replayed as f64).min(requests as f64 / share.clamp(1e-12, 1.0));
        let warm = scenario::Traffic::trace_warmup_arrivals(simulated as usize);
        // Measuring starts when arrival `warm` (the first after the warm-up)
        // is replayed, by the same sum the replay makes: at the trace's first
        // arrival at the earliest, whenever that is.
        let warmup = match timestamps_s.get(warm % n.max(1)) {
            Some(&at) if warm < replayed => at + (warm / n) as f64 * lap_s,
            _ => 0.0,
        };
        // Arrivals are replayed strictly before the end: a hair past it keeps
        // the timestamp the window ends at.
        let duration_s = window + TRACE_END_MARGIN_S;
        RunControl {
            duration_s,
            max_requests: Some(requests),
            warmup_s: if warmup < duration_s { warmup } else { 0.0 },
            early_stop: None,
        }
    }

    /// Sets `run` (from [`Self::run_control`]) up to estimate the SLO
    /// percentile's 95% confidence interval by batch means, and, for the
    /// plan `confidence` names, to go on past its requests until the interval
    /// is narrow (see [`SloConfidence`]). Returns whether it did either.
    ///
    /// - poisson, constant, diurnal (simulated at its peak): stationary, so
    ///   the run is extended (its window too) and the first requests are
    ///   those of the shorter run, the same seed;
    /// - bursty: the interval is estimated, with batches spanning ten on/off
    ///   cycles on average (shorter ones would see one burst or one pause and
    ///   call their spread the estimate's), but the run keeps its length,
    ///   sized in on/off cycles: how many bursts a run spans is its own rule;
    /// - a trace: neither; its laps replay the same arrivals, so batches are
    ///   not independent samples of the traffic, and the trace sets the run.
    fn with_slo_confidence(
        &self,
        run: &mut RunControl,
        confidence: Option<&SloConfidence>,
        share: f64,
    ) -> bool {
        let q = self.scenario.objectives.latency_percentile / 100.0;
        self.with_quantile_confidence(run, confidence, share, q)
    }

    /// [`Self::with_slo_confidence`] for quantile `q` in (0, 1) of the run's
    /// own latencies: one component of an edge plan simulated class by class
    /// tracks the level at which its latencies meet the mixture's SLO
    /// percentile (see [`simulate_devices`]).
    fn with_quantile_confidence(
        &self,
        run: &mut RunControl,
        confidence: Option<&SloConfidence>,
        share: f64,
        q: f64,
    ) -> bool {
        let t = &self.scenario.traffic;
        let (Some(confidence), Some(tail_batch)) = (confidence, EarlyStop::batch_requests_for(q))
        else {
            return false;
        };
        let base = run.max_requests.unwrap_or(0);
        match &t.process {
            scenario::ArrivalProcess::Trace { .. } => false,
            scenario::ArrivalProcess::Bursty { on_s, off_s } => {
                let per_cycle = t.rate_per_s * share * (on_s + off_s);
                let batch = tail_batch.max((10.0 * per_cycle).ceil() as u64);
                run.early_stop = Some(EarlyStop {
                    quantile: q,
                    relative_half_width: 0.0,
                    batch_requests: batch,
                    min_batches: MIN_CONFIDENCE_BATCHES,
                    min_requests: 0,
                });
                true
            }
            _ => {
                // An interval needs MIN_CONFIDENCE_BATCHES whole batches
                // after the warm-up: a cap short of that (p99.99 needs 2M
                // measured requests) would stretch the run for nothing. Up
                // to 4x the cap is granted; beyond, the run keeps its length.
                let needed = (MIN_CONFIDENCE_BATCHES as f64 * tail_batch as f64
                    / (1.0 - WARMUP_FRACTION))
                    .ceil() as u64;
                let cap = confidence.max_requests.max(base);
                if needed > cap.saturating_mul(4) {
                    return false;
                }
                let cap = cap.max(needed);
                let rate = self.simulated_rate(share).max(1e-9);
                run.duration_s = run
                    .duration_s
                    .max((cap as f64 / rate).min(MAX_EXTENDED_WINDOW_S));
                run.max_requests = Some(cap);
                run.early_stop = Some(EarlyStop {
                    quantile: q,
                    relative_half_width: confidence.relative_half_width,
                    batch_requests: tail_batch,
                    min_batches: MIN_CONFIDENCE_BATCHES,
                    min_requests: base,
                });
                true
            }
        }
    }

    fn payload(&self) -> Payload {
        Payload {
            request_bytes: self.scenario.inputs.request_bytes,
            response_bytes: self.scenario.inputs.response_bytes,
        }
    }

    pub fn broker(&self) -> Option<Broker> {
        self.scenario.targets.broker.as_ref().map(|b| {
            // `hops` hops of `per_hop_ms` each (produce -> consume), taken
            // as the simulator's two, in and out, each a produce and a
            // consume: a quarter of the whole each, at the median.
            let quarter = b.per_hop_ms / 1000.0 * f64::from(b.hops.max(1)) / 4.0;
            let fit = LatencyFit {
                median_s: quarter,
                p99_s: quarter * 3.0,
            };
            Broker {
                partitions: b.partitions.max(1),
                produce: fit,
                consume: fit,
            }
        })
    }

    /// What a device holds running `profile`'s build on `batch` inputs at
    /// once (see [`device_memory_needed`]).
    pub fn device_memory(&self, profile: &ComputeProfile, batch: u32) -> DeviceMemory {
        device_memory_needed(
            self.scenario,
            self.profiles,
            (&profile.variant, profile.backend, profile.precision),
            batch,
        )
    }

    /// Whether `profile`'s build fits `device`'s memory on `batch` inputs at
    /// once ([`memory_check`] finds no reason).
    pub fn fits(&self, profile: &ComputeProfile, device: &Target, batch: u32) -> bool {
        memory_check(self, device, profile, batch).is_none()
    }
}

fn pool(profile: &ComputeProfile, replicas: u32, batching: Batching) -> ServingPool {
    ServingPool {
        replicas,
        balancer: Balancer::LeastOutstanding,
        batching,
        service: ServiceTime::Profile(profile.points.clone()),
        queue_capacity: QUEUE_CAPACITY,
        cold_start: None,
        autoscale: None,
    }
}

fn batching(c: &Candidate) -> Batching {
    Batching {
        max_batch_size: c.max_batch.max(1),
        max_queue_delay_s: c.max_delay_ms / 1000.0,
    }
}

/// A plan row with the candidate's dimensions and empty metrics.
fn blank_plan(c: &Candidate, source: FigureSource, accuracy: f64) -> report::Plan {
    report::Plan {
        id: c.id(),
        mode: c.mode,
        placement: c.placement,
        target: match &c.fallback_target {
            Some(cloud) => format!("{} + {}", c.target, cloud),
            None => c.target.clone(),
        },
        replicas: c.replicas,
        model_variant: c.variant.clone(),
        backend: c.backend,
        precision: c.precision,
        max_batch: c.max_batch,
        max_delay_ms: c.max_delay_ms,
        fallback: c
            .fallback_target
            .as_ref()
            .zip(c.fallback_model.as_ref())
            .map(|(target, model)| report::Fallback {
                target: target.clone(),
                model_variant: model.variant.clone(),
                backend: model.backend,
                precision: model.precision,
            }),
        precompute_fraction: c.precompute_fraction,
        latency_ms: LatencyPercentiles::default(),
        latency_source: source,
        throughput_rps: 0.0,
        cost_usd_per_month: 0.0,
        cost_usd_per_million: 0.0,
        cost_breakdown: Vec::new(),
        accuracy_agreement: accuracy,
        utilisation: 0.0,
        failure_rate: 0.0,
        staleness_s: None,
        batch_job: None,
        consumer_lag: None,
        device_classes: Vec::new(),
        device_memory_bytes: None,
        energy_mj_per_prediction: None,
        on_pareto_front: false,
        simulated: false,
        slo_latency_ms: None,
        slo_latency_ci_ms: None,
    }
}

/// A candidate rejected before simulation; metrics are analytic lower bounds.
pub fn pruned(
    c: Candidate,
    source: FigureSource,
    accuracy: f64,
    latency_floor_s: f64,
    reason: String,
) -> Evaluation {
    let mut plan = blank_plan(&c, source, accuracy);
    let ms = latency_floor_s * 1000.0;
    plan.latency_ms = LatencyPercentiles {
        p50: ms,
        p90: ms,
        p99: ms,
        p999: ms,
    };
    Evaluation {
        candidate: c,
        plan,
        rejected: reason.split("; ").map(str::to_string).collect(),
        cdf: Vec::new(),
        simulated: false,
        capacity_rps: 0.0,
        slo_latency_ms: Some(ms),
        device_power_w: None,
        offline_bound: false,
    }
}

/// A plan rejected before simulation, priced without it: its `replicas`
/// serving instances all month at `usd_per_hour` (what it costs at least, as
/// its latency is a lower bound: what follows the traffic needs the simulation),
/// per million of the scenario's mean traffic.
pub fn with_instance_cost(ctx: &Context<'_>, mut e: Evaluation, usd_per_hour: f64) -> Evaluation {
    let usage = cost::Usage {
        replicas: f64::from(e.plan.replicas),
        predictions: ctx.mean_rate(1.0) * cost::HOURS_PER_MONTH * 3600.0,
        ..cost::Usage::default()
    };
    if let Some(why) = price(ctx, &mut e.plan, &usage, &rates(usd_per_hour, 0.0, 0.0)) {
        e.rejected.push(why);
    }
    e
}

/// What the sim-based evaluation needs besides the candidate.
pub struct SimPlan {
    pub mode: sim::Mode,
    pub rates: cost::CostRates,
    pub usage: UsageExtras,
    pub source: FigureSource,
    pub accuracy: f64,
    pub capacity_rps: f64,
    /// Reasons known before simulating (they are still simulated, to show the metrics).
    pub rejected: Vec<String>,
    /// Share of the scenario's traffic simulated (edge fleets simulate a sample of devices).
    pub arrival_share: f64,
    /// Edge: the device's power (the average it draws is checked against the
    /// scenario's power limit).
    pub device_power: Option<DevicePower>,
}

/// Usage the simulation outcome does not capture.
#[derive(Debug, Clone, Copy, Default)]
pub struct UsageExtras {
    pub replicas: f64,
    /// Broker-to-HTTP bridge instances (see [`cost::Usage::bridge_instances`]).
    pub bridge_instances: f64,
    pub batch_job: Option<sim::BatchJobPlan>,
    pub broker_bytes_per_message: Option<f64>,
    pub devices_per_simulated_device: f64,
    /// Extra energy (J per month) not in the outcome, e.g. an on-device batch job.
    pub extra_energy_j: f64,
    /// Share of each device's time an on-device batch job keeps it busy
    /// (its average power counts it).
    pub device_job_busy_share: f64,
}

/// Requests a plan's simulation covers at least (when the budget allows),
/// however low the scenario's rate.
const MIN_SIMULATED_REQUESTS: u64 = 2_000;

/// Requests beyond a percentile a simulation must measure to estimate it: with
/// n requests about n (1 - q) lie beyond the q-quantile (a Poisson count), so
/// ten gives the estimate a relative spread of about 1/sqrt(10) in tail
/// probability; with fewer than one it is just the largest latency seen (and
/// with none, 0 ms). A p99 needs 1,000 measured requests, a p99.9 10,000.
pub const MIN_REQUESTS_BEYOND_PERCENTILE: f64 = 10.0;

/// The most requests one plan is simulated with to reach its SLO percentile
/// (a p99.999 needs a million): a stricter percentile is refused, not guessed.
const MAX_REQUESTS_FOR_PERCENTILE: u64 = 1_000_000;

/// Measured requests needed to estimate the latency at percentile `q` (0..100);
/// `None` when no finite simulation can (q = 100).
pub fn requests_for_percentile(q: f64) -> Option<u64> {
    let tail = 1.0 - q / 100.0;
    // less a hair: 10 / (1 - 0.999) is 10000.000000000009 in floating point
    let needed = (MIN_REQUESTS_BEYOND_PERCENTILE / tail * (1.0 - 1e-12)).ceil();
    // saturating cast; tail <= 0 gives infinity or NaN
    (tail > 0.0 && needed.is_finite()).then_some(needed as u64)
}

/// Requests to simulate for `measured` of them to be measured: the warm-up is
/// not measured, and the arrivals in a window are random, so 10% more that the
/// count rarely falls short.
fn simulated_for(measured: u64) -> u64 {
    ((measured as f64 / (1.0 - WARMUP_FRACTION) * 1.1).ceil() as u64).saturating_add(10)
}

/// Why a simulation of `measured` requests cannot judge the SLO percentile `q`, if so.
fn too_few_requests(measured: u64, q: f64) -> Option<String> {
    let name = percentile_name(q);
    match requests_for_percentile(q) {
        Some(needed) if measured >= needed => None,
        Some(needed) if simulated_for(needed) > MAX_REQUESTS_FOR_PERCENTILE => Some(format!(
            "{name} needs at least {needed} measured requests (about {} simulated), more than the {MAX_REQUESTS_FOR_PERCENTILE} a plan is simulated with",
            simulated_for(needed)
        )),
        Some(needed) => Some(format!(
            "only {measured} requests simulated: too few to estimate {name} (needs at least {needed})"
        )),
        None => Some(format!(
            "{name} is the worst case of all requests: no simulation can estimate it"
        )),
    }
}

/// Past the last timestamp a trace's window ends at (a few nanoseconds, the
/// simulator's clock tick), so that arrival is replayed too.
const TRACE_END_MARGIN_S: f64 = 4e-9;

/// The longest a low rate stretches the simulated window (30 days): beyond
/// it, on/off cycles would be simulated by the million for a few requests.
const MAX_EXTENDED_WINDOW_S: f64 = 30.0 * 86_400.0;

/// Why a candidate is not simulated: outside a sensitivity re-plan's
/// families, or the planning was cancelled.
fn skipped_because(ctx: &Context<'_>) -> &'static str {
    if ctx.cancelled() {
        "planning cancelled"
    } else {
        "outside the families re-planned"
    }
}

/// Simulate, price and check one candidate.
pub fn simulate_candidate(
    ctx: &Context<'_>,
    c: Candidate,
    plan: SimPlan,
    budget: &SearchBudget,
) -> Evaluation {
    if !ctx.allows(&c) || ctx.cancelled() {
        return pruned(
            c,
            plan.source,
            plan.accuracy,
            0.0,
            skipped_because(ctx).into(),
        );
    }
    let mut config = SimConfig {
        seed: budget.seed,
        arrivals: ctx.arrivals(plan.arrival_share),
        payload: ctx.payload(),
        timeout_s: Some(ctx.timeout_s()),
        mode: plan.mode,
        run: ctx.run_control(budget, plan.arrival_share),
    };
    let confidence = budget.confidence.as_ref().filter(|k| k.plan_id == c.id());
    ctx.with_slo_confidence(&mut config.run, confidence, plan.arrival_share);
    let mut row = blank_plan(&c, plan.source, plan.accuracy);
    let mut rejected = plan.rejected;
    let outcome = match sim::simulate(&config) {
        Ok(o) => o,
        Err(e) => {
            rejected.push(format!("cannot simulate: {e}"));
            return Evaluation {
                candidate: c,
                plan: row,
                rejected,
                cdf: Vec::new(),
                simulated: false,
                capacity_rps: plan.capacity_rps,
                slo_latency_ms: None,
                device_power_w: None,
                offline_bound: false,
            };
        }
    };
    fill_metrics(&mut row, &outcome, &config.arrivals);
    row.batch_job = plan.usage.batch_job.as_ref().map(report_batch_job);
    row.energy_mj_per_prediction = row
        .energy_mj_per_prediction
        .map(|mj| ctx.per_prediction(mj));
    // Latency and utilisation are judged on the traffic simulated (a burst, a
    // diurnal peak); what follows the traffic over a month is at the mean rate.
    let mean_rate = ctx.mean_rate(plan.arrival_share);
    // A sample of an edge fleet stands for all of it.
    row.throughput_rps *= cost::traffic_scale(&outcome, mean_rate) / plan.arrival_share;
    let usage_inputs = cost::UsageInputs {
        replicas: plan.usage.replicas,
        batch_job: plan.usage.batch_job.as_ref(),
        broker_bytes_per_message: plan.usage.broker_bytes_per_message,
        devices_per_simulated_device: plan.usage.devices_per_simulated_device,
        mean_rate_per_s: Some(mean_rate),
    };
    let mut usage = cost::monthly_usage(&outcome, &usage_inputs);
    usage.bridge_instances = plan.usage.bridge_instances;
    // A simulated slice of the traffic stands for all of it.
    usage.predictions /= plan.arrival_share;
    // Egress is the same for every plan that answers from the cloud: price it
    // from the mean rate, not from the sampled count, so sampling noise in a
    // large shared cost never decides between plans.
    usage.egress_bytes = if outcome.egress_bytes > 0 {
        ctx.monthly_response_bytes(1.0)
    } else {
        0.0
    };
    usage.broker_bytes /= plan.arrival_share;
    usage.edge_energy_j += plan.usage.extra_energy_j;
    rejected.extend(price(ctx, &mut row, &usage, &plan.rates));
    let q = ctx.scenario.objectives.latency_percentile;
    let slo = match too_few_requests(outcome.measured_requests, q) {
        Some(why) => SloFigure::NotEstimated(why),
        None => latency_at_percentile_ms(&outcome, q).map_or(SloFigure::Failed, SloFigure::Ms),
    };
    let slo_latency_ms = slo.ms();
    row.slo_latency_ci_ms = slo_latency_ms.and_then(|ms| slo_interval_ms(&outcome, ms));
    rejected.extend(check(ctx, &row, slo, &outcome, plan.capacity_rps));
    let device_power_w = plan.device_power.map(|power| {
        let job = plan.usage.device_job_busy_share;
        device_power(ctx, power, &outcome, mean_rate, job, &mut rejected)
    });
    let cdf = outcome
        .latency
        .cdf
        .iter()
        .map(|p| report::CdfPoint {
            latency_ms: p.latency_s * 1000.0,
            fraction: p.fraction,
        })
        .collect();
    row.simulated = true;
    Evaluation {
        candidate: c,
        plan: row,
        rejected,
        cdf,
        simulated: true,
        capacity_rps: plan.capacity_rps,
        slo_latency_ms,
        device_power_w,
        offline_bound: offline_alone_fails(&outcome, ctx.scenario.objectives.latency_percentile),
    }
}

/// The 95% confidence interval of a plan's latency at the SLO percentile,
/// `slo_ms`, when the run estimated it: the run's interval around the
/// tracked quantile, each side relative to it (a gap at the quantile makes
/// the sides differ: 152 ms with an upper end of 235 ms across a lossy
/// link's retransmissions), around the figure. (With failures, the figure is
/// a higher quantile of the completed requests than the one tracked; nearly
/// as precise when they are few, which is when a plan is near its SLO.)
fn slo_interval_ms(o: &SimOutcome, slo_ms: f64) -> Option<[f64; 2]> {
    let e = &o.early_stop;
    let [low, high] = e.interval_s?;
    let estimate = e.estimate_s.filter(|x| x.is_finite() && *x > 0.0)?;
    let (below, above) = ((estimate - low) / estimate, (high - estimate) / estimate);
    (below.is_finite() && above.is_finite())
        .then(|| [(slo_ms * (1.0 - below)).max(0.0), slo_ms * (1.0 + above)])
}

/// A rationale line when feasible plan `e`'s latency at the SLO percentile
/// meets the SLO only within the simulation's uncertainty: the SLO lies
/// inside the figure's 95% confidence interval. `None` otherwise (clear of
/// it, or no interval estimated).
pub fn narrow_slo_margin(e: &Evaluation, scenario: &Scenario) -> Option<String> {
    let obj = &scenario.objectives;
    let [low, high] = e.plan.slo_latency_ci_ms?;
    let ms = e.slo_latency_ms?;
    (e.feasible() && low <= obj.latency_ms && obj.latency_ms <= high).then(|| {
        format!(
            "It meets the SLO only narrowly: {} {} against {}, within the simulation's 95% confidence interval ({} to {}), so by its uncertainty the plan may as well miss it.",
            percentile_name(obj.latency_percentile),
            fmt_ms(ms),
            fmt_ms(obj.latency_ms),
            fmt_ms(low),
            fmt_ms(high)
        )
    })
}

/// Whether the requests that failed because their device was offline are, alone,
/// more than percentile `q` (0..100) allows (see [`latency_at_percentile_ms`]).
fn offline_alone_fails(o: &SimOutcome, q: f64) -> bool {
    let offline = o.failures.offline as f64 / o.measured_requests.max(1) as f64;
    offline > 0.0 && offline >= 1.0 - q / 100.0 + 1e-12
}

/// Instances a batch job's run uses (recovered from its instance-hours).
pub(super) fn job_instances(job: &sim::BatchJobPlan) -> u32 {
    let instances = job.instance_hours_per_run * 3600.0 / job.duration_s;
    if instances.is_finite() && instances >= 1.0 {
        instances.round() as u32
    } else {
        1
    }
}

/// A batch job's schedule as a plan reports it.
pub(super) fn report_batch_job(job: &sim::BatchJobPlan) -> report::BatchJob {
    report::BatchJob {
        every_s: job.schedule.period_s,
        run_s: job.duration_s,
        instances: job_instances(job),
        runs_per_month: job.runs_per_month,
        max_staleness_s: job.max_staleness_s,
    }
}

/// Price a month of usage into the plan row; the reason if it cannot be priced.
/// `usage.predictions` counts requests: each is the scenario's
/// `predictions_per_request` predictions, which $/1M predictions counts.
fn price(
    ctx: &Context<'_>,
    row: &mut report::Plan,
    usage: &cost::Usage,
    rates: &cost::CostRates,
) -> Option<String> {
    let usage = cost::Usage {
        predictions: usage.predictions * ctx.scenario.inputs.predictions_per_request.max(1) as f64,
        ..*usage
    };
    // Every plan is priced here: the scenario's broker prices replace the
    // assumed ones `rates` starts from.
    let broker = broker_prices(ctx.scenario);
    let rates = cost::CostRates {
        broker_per_month: broker.per_month,
        broker_per_gb: broker.per_gb,
        ..*rates
    };
    match cost::estimate(&usage, &rates) {
        Ok(estimate) => {
            row.cost_usd_per_month = estimate.monthly_usd;
            row.cost_usd_per_million = estimate.usd_per_million_predictions.unwrap_or(0.0);
            row.cost_breakdown = estimate
                .lines
                .iter()
                .map(|l| CostLine {
                    item: format!("{} ({:.1} {})", l.item, l.quantity, l.unit),
                    usd_per_month: l.monthly_usd,
                })
                .collect();
            None
        }
        Err(e) => Some(format!("cannot price: {e}")),
    }
}

fn fill_metrics(row: &mut report::Plan, o: &SimOutcome, arrivals: &ArrivalProcess) {
    let l = &o.latency;
    row.latency_ms = LatencyPercentiles {
        p50: l.p50_s * 1000.0,
        p90: l.p90_s * 1000.0,
        p99: l.p99_s * 1000.0,
        p999: l.p999_s * 1000.0,
    };
    row.throughput_rps = o.throughput_per_s;
    row.utilisation = o
        .cloud
        .as_ref()
        .or(o.edge.as_ref())
        .map_or(0.0, |p| utilisation(o, p, arrivals));
    row.failure_rate = if o.measured_requests > 0 {
        o.failures.total() as f64 / o.measured_requests as f64
    } else {
        0.0
    };
    row.staleness_s = o.staleness.map(|s| s.mean_age_s);
    // A bridge to an HTTP service queues at its replicas, not at consumers.
    row.consumer_lag = o
        .consumer_lag
        .filter(|_| row.mode == crate::scenario::Mode::OnlineStream)
        .map(|lag| report::ConsumerLag {
            mean_messages: lag.mean_messages,
            max_messages: lag.max_messages,
            mean_wait_ms: lag.mean_lag_s * 1000.0,
        });
    row.energy_mj_per_prediction = o.energy.map(|e| e.energy_per_prediction_j * 1000.0);
}

/// The utilisation a plan reports for `pool` of outcome `o`, simulated with
/// `arrivals`: the share of its replicas' (devices') time spent busy under
/// the traffic the latency was judged at (a burst, a diurnal peak, a trace).
/// - bursty: the busy share while a burst is on, at the on rate (see
///   [`SimOutcome::busy_share_at`]). Busy time over the whole run would mix
///   in as many pauses as the seed drew: the requests simulated arrive in a
///   burst or two, the run spans whatever pauses fall between them.
/// - poisson, constant, diurnal (simulated at its peak rate): busy time over
///   the run, which at a steady rate is the busy share at that rate.
/// - trace: busy time over the replayed trace, its own lulls included.
fn utilisation(o: &SimOutcome, pool: &sim::PoolStats, arrivals: &ArrivalProcess) -> f64 {
    match arrivals {
        ArrivalProcess::BurstyOnOff { on_rate_per_s, .. } => o.busy_share_at(pool, *on_rate_per_s),
        _ => pool.mean_utilisation,
    }
}

/// Latency at percentile `q` (0..100) of all measured requests, failures counted
/// as infinitely slow; `None` when more than `100 - q` percent failed.
pub fn latency_at_percentile_ms(o: &SimOutcome, q: f64) -> Option<f64> {
    let measured = o.measured_requests.max(1) as f64;
    let fail = o.failures.total() as f64 / measured;
    let target = q / 100.0;
    if fail >= 1.0 - target + 1e-12 && fail > 0.0 {
        return None;
    }
    // The q-quantile over all requests is this quantile over completed ones.
    let among_completed = (target / (1.0 - fail)).min(1.0);
    Some(quantile_from_cdf(&o.latency, among_completed) * 1000.0)
}

fn quantile_from_cdf(l: &sim::LatencySummary, q: f64) -> f64 {
    // Exact summary percentiles where they apply; else interpolate the CDF.
    for (p, v) in [
        (0.5, l.p50_s),
        (0.9, l.p90_s),
        (0.99, l.p99_s),
        (0.999, l.p999_s),
    ] {
        if (q - p).abs() < 1e-9 {
            return v;
        }
    }
    let pts = &l.cdf;
    match pts.iter().position(|p| p.fraction >= q) {
        Some(0) => pts.first().map_or(0.0, |p| p.latency_s),
        Some(i) => {
            let (a, b) = (&pts[i - 1], &pts[i]);
            let span = b.fraction - a.fraction;
            if span <= 0.0 {
                b.latency_s
            } else {
                a.latency_s + (q - a.fraction) / span * (b.latency_s - a.latency_s)
            }
        }
        None => l.max_s,
    }
}

/// Every constraint and objective that needs the simulated metrics.
fn check(
    ctx: &Context<'_>,
    row: &report::Plan,
    latency_at_slo_ms: SloFigure,
    o: &SimOutcome,
    capacity: f64,
) -> Vec<String> {
    let failed = FailureSummary {
        offline_dominated: o.failures.offline > 0 && o.failures.offline * 2 >= o.failures.total(),
        text: failure_counts(
            o.failures.timeout,
            o.failures.queue_full,
            o.failures.offline,
        ),
    };
    check_metrics(ctx, row, latency_at_slo_ms, &failed, capacity)
}

/// How many requests failed in each way, the ways none did left out ("12
/// timed out, 3 offline"; "none").
fn failure_counts(timeout: u64, queue_full: u64, offline: u64) -> String {
    let parts: Vec<String> = [
        (timeout, "timed out"),
        (queue_full, "hit a full queue"),
        (offline, "offline"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(", ")
    }
}

/// How requests failed, for the reason text.
pub struct FailureSummary {
    pub offline_dominated: bool,
    pub text: String,
}

/// The latency a plan's SLO is checked against.
#[derive(Debug, Clone, PartialEq)]
enum SloFigure {
    /// Latency at the SLO percentile over all requests.
    Ms(f64),
    /// More requests failed than the percentile allows.
    Failed,
    /// The simulation cannot tell (too few requests measured): why.
    NotEstimated(String),
}

impl SloFigure {
    fn ms(&self) -> Option<f64> {
        match self {
            SloFigure::Ms(ms) => Some(*ms),
            _ => None,
        }
    }
}

/// The checks on metrics: latency at the SLO percentile, capacity, budget.
fn check_metrics(
    ctx: &Context<'_>,
    row: &report::Plan,
    latency_at_q_ms: SloFigure,
    failed: &FailureSummary,
    capacity: f64,
) -> Vec<String> {
    let s = ctx.scenario;
    let obj = &s.objectives;
    let mut reasons = Vec::new();
    let q = obj.latency_percentile;
    match latency_at_q_ms {
        SloFigure::NotEstimated(why) => reasons.push(why),
        SloFigure::Failed => {
            if failed.offline_dominated {
                reasons.push(format!(
                    "needs connectivity; device offline {}% of the time",
                    fmt_pct(s.constraints.offline_fraction)
                ));
            } else {
                reasons.push(format!(
                    "{}% of requests fail ({})",
                    fmt_pct(row.failure_rate),
                    failed.text
                ));
            }
        }
        SloFigure::Ms(ms) if ms > obj.latency_ms => {
            let (ms, slo) = told_apart(ms, obj.latency_ms, fmt_ms, 1.0, " ms");
            // The plan's latency figures are the completed requests'; the
            // SLO's counts the failed ones as slowest: said where they are a
            // tenth of the tail or more, enough to set the figures apart.
            let counting = if row.failure_rate >= (1.0 - q / 100.0) * 0.1 {
                format!(
                    " (the {}% that failed counted as slowest)",
                    fmt_small_pct(row.failure_rate)
                )
            } else {
                String::new()
            };
            reasons.push(format!("{} {ms} > SLO {slo}{counting}", percentile_name(q)));
        }
        SloFigure::Ms(_) => {}
    }
    if obj.min_throughput_per_s > 0.0 && capacity < ctx.throughput_floor_rps() {
        reasons.push(format!(
            "capacity {} < required {}",
            capacity_text(s, capacity),
            floor_text(s)
        ));
    }
    if let Some(budget) = obj.monthly_budget_usd {
        if row.cost_usd_per_month > budget {
            reasons.push(format!(
                "over budget by {}/month",
                fmt_usd(row.cost_usd_per_month - budget)
            ));
        }
    }
    reasons
}

/// Fraction of completed requests at or below `x` seconds, from the outcome's CDF points.
fn cdf_at(l: &sim::LatencySummary, x: f64) -> f64 {
    let pts = &l.cdf;
    if l.count == 0 || x < 0.0 {
        return 0.0;
    }
    match pts.iter().position(|p| p.latency_s >= x) {
        None => 1.0,
        Some(0) => {
            let first = &pts[0];
            if x >= first.latency_s {
                first.fraction
            } else {
                0.0
            }
        }
        Some(i) => {
            let (a, b) = (&pts[i - 1], &pts[i]);
            let span = b.latency_s - a.latency_s;
            if span <= 0.0 {
                b.fraction
            } else {
                a.fraction + (x - a.latency_s) / span * (b.fraction - a.fraction)
            }
        }
    }
}

/// Smallest x with `cdf(x) >= q`, by bisection on [0, hi].
fn mixture_quantile(cdf: &dyn Fn(f64) -> f64, q: f64, hi: f64) -> f64 {
    let (mut lo, mut hi) = (0.0_f64, hi.max(1e-9));
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if cdf(mid) >= q {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// One device class of an edge plan: a sample of its devices, simulated,
/// and what it stands for.
pub struct DeviceClass {
    /// The class's target name (named in the reasons of a fleet's plan).
    pub name: String,
    pub edge: EdgeDevices,
    /// Share of the scenario's traffic the sampled devices receive, and
    /// real devices per sampled one (see [`edge_devices`]).
    pub arrival_share: f64,
    pub devices_per_simulated_device: f64,
    /// Share of all requests this class's devices serve: 1 for a plan on one
    /// class, its users' share for a class of a fleet.
    pub traffic_share: f64,
    pub power: DevicePower,
    /// Devices of the class (reported on a fleet's plan).
    pub devices: u64,
    /// What its devices run (reported on a fleet's plan).
    pub build: report::ClassBuildFigures,
}

/// The cloud half of an edge model with cloud fallback: a share of the
/// requests (the small model's least confident inputs) is also sent to the
/// cloud model while the device is online.
pub struct CloudFallback {
    pub online: OnlinePath,
    /// Share of all requests answered by the cloud (deferred and online).
    pub cloud_share: f64,
    pub rates: cost::CostRates,
    pub replicas: u32,
}

/// An edge plan simulated class by class: every request runs on a device of
/// one of `classes` (a fleet's classes, or the one class planned), and with a
/// fallback a share is then also answered in the cloud.
pub struct DevicesPlan {
    pub classes: Vec<DeviceClass>,
    pub fallback: Option<CloudFallback>,
    pub source: FigureSource,
    pub accuracy: f64,
    pub capacity_rps: f64,
}

/// Simulate each device class and the cloud fallback separately (a fleet of
/// millions cannot be simulated device by device, the cloud must see all
/// fallback traffic), then combine them: a request's latency is its class's
/// device time, plus the cloud's for the fallback share; the classes weigh in
/// by the share of requests they serve.
pub fn simulate_devices(
    ctx: &Context<'_>,
    c: Candidate,
    p: DevicesPlan,
    budget: &SearchBudget,
) -> Evaluation {
    if !ctx.allows(&c) || ctx.cancelled() {
        return pruned(c, p.source, p.accuracy, 0.0, skipped_because(ctx).into());
    }
    let mut row = blank_plan(&c, p.source, p.accuracy);
    let cannot = |c: Candidate, err: sim::SimError| {
        let mut ev = pruned(
            c,
            p.source,
            p.accuracy,
            0.0,
            format!("cannot simulate: {err}"),
        );
        ev.capacity_rps = p.capacity_rps;
        ev
    };
    let slo_q = ctx.scenario.objectives.latency_percentile / 100.0;
    let mut runs = match simulate_components(ctx, &p, &budget.sim) {
        Ok(runs) => runs,
        Err(err) => return cannot(c, err),
    };
    // The finalist's components again, each run on until its latency at
    // the level that meets the mixture's SLO percentile is known.
    let mut tracked: Option<ComponentIntervals> = None;
    if let Some(k) = budget.confidence.as_ref().filter(|k| k.plan_id == c.id()) {
        match extend_components(ctx, &p, &budget.sim, k, runs, slo_q) {
            Ok((extended, rel)) => {
                runs = extended;
                tracked = rel;
            }
            Err(err) => return cannot(c, err),
        }
    }
    let mixture_of = Mixture::new(&p, &runs);
    let devices: Vec<(&DeviceClass, &SimOutcome, &ArrivalProcess)> = p
        .classes
        .iter()
        .zip(&runs)
        .map(|(class, (o, arrivals))| (class, o, arrivals))
        .collect();
    let cloud: Option<(&CloudFallback, &SimOutcome, &ArrivalProcess)> = p
        .fallback
        .as_ref()
        .zip(runs.get(p.classes.len()))
        .map(|(f, (o, arrivals))| (f, o, arrivals));
    let w = mixture_of.w;
    let unscaled = |_: usize| 1.0;
    let mixture = |x: f64| mixture_of.cdf(x, &unscaled);
    let hi = mixture_of.hi();
    // No request completed (every one failed): no latency to interpolate
    // (the search would settle on its floor, 1 ns); 0, as a single class has.
    let completed = mixture(hi) > 0.0;
    let q = |f: f64| {
        if completed {
            mixture_quantile(&mixture, f, hi)
        } else {
            0.0
        }
    };
    row.latency_ms = LatencyPercentiles {
        p50: q(0.5) * 1000.0,
        p90: q(0.9) * 1000.0,
        p99: q(0.99) * 1000.0,
        p999: q(0.999) * 1000.0,
    };
    row.failure_rate = components_failure_rate(&p, &runs);
    row.throughput_rps = ctx.scenario.traffic.rate_per_s * (1.0 - row.failure_rate);
    // The cloud's pool when there is one; else the busiest class's devices.
    row.utilisation = match &cloud {
        Some((_, k, arrivals)) => k
            .cloud
            .as_ref()
            .map_or(0.0, |x| utilisation(k, x, arrivals)),
        None => devices
            .iter()
            .filter_map(|(_, e, arrivals)| e.edge.as_ref().map(|x| utilisation(e, x, arrivals)))
            .fold(0.0, f64::max),
    };
    row.energy_mj_per_prediction = devices
        .iter()
        .map(|(class, e, _)| {
            e.energy
                .map(|x| class.traffic_share * x.energy_per_prediction_j * 1000.0)
        })
        .sum::<Option<f64>>()
        .map(|mj| ctx.per_prediction(mj));
    let (mut edge_energy_j, mut predictions) = (0.0, 0.0);
    for (class, e, _) in &devices {
        let usage = cost::monthly_usage(
            e,
            &cost::UsageInputs {
                replicas: 0.0,
                batch_job: None,
                broker_bytes_per_message: None,
                devices_per_simulated_device: class.devices_per_simulated_device,
                mean_rate_per_s: Some(ctx.mean_rate(class.arrival_share)),
            },
        );
        edge_energy_j += usage.edge_energy_j;
        // The sampled devices stand for their class, which serves its share.
        predictions += usage.predictions / class.arrival_share.max(1e-12) * class.traffic_share;
    }
    let usage = cost::Usage {
        replicas: cloud
            .as_ref()
            .map_or(0.0, |(f, _, _)| f64::from(f.replicas)),
        egress_bytes: if cloud.is_some() {
            ctx.monthly_response_bytes(w)
        } else {
            0.0
        },
        edge_energy_j,
        predictions,
        ..cost::Usage::default()
    };
    let no_rates = rates(0.0, 0.0, 0.0);
    let plan_rates = cloud.as_ref().map_or(&no_rates, |(f, _, _)| &f.rates);
    let mut rejected = Vec::new();
    rejected.extend(price(ctx, &mut row, &usage, plan_rates));
    let slo_pct = ctx.scenario.objectives.latency_percentile;
    // The mixture's tail is every class's and the cloud's: each simulation
    // must reach the percentile for the share it stands for.
    let needed = |share: f64| {
        requests_for_percentile(slo_pct)
            .map(|n| (n as f64 * share.min(1.0)).ceil() as u64)
            .unwrap_or(u64::MAX)
    };
    // On a fleet a class stands for its share of the requests: one with a
    // small share (a few dev kits among millions of phones) needs only
    // enough for that share of the tail (none below one request's worth).
    let device_short = if devices.len() == 1 {
        devices
            .iter()
            .find_map(|(_, e, _)| too_few_requests(e.measured_requests, slo_pct))
    } else {
        devices.iter().find_map(|(class, e, _)| {
            let wanted = requests_for_percentile(slo_pct)
                .map(|n| (n as f64 * class.traffic_share.min(1.0)).floor() as u64)
                .unwrap_or(u64::MAX);
            (e.measured_requests < wanted).then(|| {
                format!(
                    "only {} requests simulated on {}: too few to estimate {} for its {}% of the requests (needs at least {wanted})",
                    e.measured_requests,
                    class.name,
                    percentile_name(slo_pct),
                    fmt_pct(class.traffic_share)
                )
            })
        })
    };
    let cloud_short = cloud
        .as_ref()
        .filter(|(_, k, _)| k.measured_requests < needed(w))
        .map(|(_, k, _)| k.measured_requests);
    let slo = match (device_short, cloud_short) {
        (Some(why), _) => SloFigure::NotEstimated(why),
        (None, Some(measured)) => SloFigure::NotEstimated(format!(
            "only {measured} requests simulated on the cloud fallback: too few to estimate {} (needs at least {})",
            percentile_name(slo_pct),
            needed(w)
        )),
        (None, None) => slo_level(slo_q, row.failure_rate)
            .map_or(SloFigure::Failed, |level| SloFigure::Ms(q(level) * 1000.0)),
    };
    let lat = slo.ms();
    row.slo_latency_ci_ms = lat.zip(tracked.as_deref()).and_then(|(ms, rel)| {
        let target = slo_level(slo_q, row.failure_rate)?;
        mixture_interval_ms(&mixture_of, target, rel, ms)
    });
    // On a fleet, each class's failures under its own name.
    let mut text = if devices.len() == 1 {
        let f = &devices[0].1.failures;
        format!(
            "{} on the devices",
            failure_counts(f.timeout, f.queue_full, 0)
        )
    } else {
        let each: Vec<String> = devices
            .iter()
            .filter(|(_, e, _)| e.failures.total() > 0)
            .map(|(class, e, _)| {
                format!(
                    "{}: {}",
                    class.name,
                    failure_counts(e.failures.timeout, e.failures.queue_full, 0)
                )
            })
            .collect();
        if each.is_empty() {
            "none on the devices".to_string()
        } else {
            each.join(", ")
        }
    };
    if let Some((_, k, _)) = &cloud {
        text.push_str(&format!(
            "; {} in the cloud",
            failure_counts(k.failures.timeout, k.failures.queue_full, 0)
        ));
    }
    let failed = FailureSummary {
        offline_dominated: false,
        text,
    };
    rejected.extend(check_metrics(ctx, &row, slo, &failed, p.capacity_rps));
    // Each class's devices draw their own power, checked against the limit;
    // on a fleet, each class's users' latency is reported too.
    let several = devices.len() > 1;
    let mut device_power_w: Option<f64> = None;
    for (class, e, _) in &devices {
        let own = |x: f64| {
            let after_device = cloud
                .as_ref()
                .map_or(0.0, |(_, k, _)| cdf_at(&k.latency, x - e.latency.mean_s));
            (1.0 - w) * cdf_at(&e.latency, x) + w * after_device
        };
        let own_q = |f: f64| mixture_quantile(&own, f, hi) * 1000.0;
        let mut why = Vec::new();
        let watts = device_power(
            ctx,
            class.power,
            e,
            ctx.mean_rate(class.arrival_share),
            0.0,
            &mut why,
        );
        rejected.extend(why.into_iter().map(|r| {
            if several {
                format!("{}: {r}", class.name)
            } else {
                r
            }
        }));
        device_power_w = Some(device_power_w.map_or(watts, |w: f64| w.max(watts)));
        if several {
            row.device_classes.push(report::DeviceClassFigures {
                target: class.name.clone(),
                devices: class.devices,
                traffic_share: class.traffic_share,
                latency_ms: LatencyPercentiles {
                    p50: own_q(0.5),
                    p90: own_q(0.9),
                    p99: own_q(0.99),
                    p999: own_q(0.999),
                },
                average_power_w: watts,
                // As the fleet's: over the requests that did not fail.
                slo_latency_ms: (failed_share(e) < 1.0 - slo_q)
                    .then(|| own_q((slo_q / (1.0 - failed_share(e))).min(1.0))),
                build: Some(class.build.clone()),
            });
        }
    }
    // At the fractions a single run reports (ten points had drawn a straight
    // ramp across the gap between the device's answers and the cloud's),
    // from the fastest request of any class (the search's floor at fraction
    // 0 is 0: a 1e-15 ms first point).
    let fastest = devices
        .iter()
        .filter(|(_, e, _)| e.latency.count > 0)
        .map(|(_, e, _)| e.latency.min_s)
        .fold(f64::INFINITY, f64::min);
    let cdf = sim::CDF_QUANTILES
        .iter()
        .map(|&f| report::CdfPoint {
            latency_ms: 1000.0
                * if f >= 1.0 {
                    hi
                } else if f <= 0.0 && fastest.is_finite() {
                    fastest
                } else {
                    q(f)
                },
            fraction: f,
        })
        .collect();
    row.simulated = true;
    Evaluation {
        candidate: c,
        plan: row,
        rejected,
        cdf,
        simulated: true,
        capacity_rps: p.capacity_rps,
        slo_latency_ms: lat,
        device_power_w,
        // offline, the device's own answer stands: no request fails for it
        offline_bound: false,
    }
}

/// Share of `o`'s measured requests that failed (0 when none was measured).
fn failed_share(o: &SimOutcome) -> f64 {
    if o.measured_requests > 0 {
        o.failures.total() as f64 / o.measured_requests as f64
    } else {
        0.0
    }
}

/// The simulation of component `i` of `p` (its classes in order, then the
/// cloud fallback) under `budget`, and the share of the traffic it receives.
/// Seeds: the first class keeps the plan's, the cloud the next, further
/// classes the ones after (a plan on one class simulates as it always did).
fn component_config(
    ctx: &Context<'_>,
    p: &DevicesPlan,
    i: usize,
    budget: &SimBudget,
) -> Option<(SimConfig, f64)> {
    let (mode, share, seed) = match p.classes.get(i) {
        Some(class) => (
            sim::Mode::Edge(class.edge.clone()),
            class.arrival_share,
            budget
                .seed
                .wrapping_add(if i == 0 { 0 } else { 1 + i as u64 }),
        ),
        None => {
            let f = p.fallback.as_ref().filter(|_| i == p.classes.len())?;
            (
                sim::Mode::Online(f.online.clone()),
                f.cloud_share.max(1e-9),
                budget.seed.wrapping_add(1),
            )
        }
    };
    let config = SimConfig {
        seed,
        arrivals: ctx.arrivals(share),
        payload: ctx.payload(),
        timeout_s: Some(ctx.timeout_s()),
        mode,
        run: ctx.run_control(budget, share),
    };
    Some((config, share))
}

/// A simulated component of a [`DevicesPlan`] and the arrivals it was given.
type ComponentRun = (SimOutcome, ArrivalProcess);

/// Every component of `p` simulated under `budget` (see [`component_config`]).
fn simulate_components(
    ctx: &Context<'_>,
    p: &DevicesPlan,
    budget: &SimBudget,
) -> Result<Vec<ComponentRun>, sim::SimError> {
    let count = p.classes.len() + usize::from(p.fallback.is_some());
    (0..count)
        .filter_map(|i| component_config(ctx, p, i, budget))
        .map(|(cfg, _)| sim::simulate(&cfg).map(|o| (o, cfg.arrivals)))
        .collect()
}

/// Share of all requests that failed: each class's by its share of the
/// requests, the cloud's by the share it answers.
fn components_failure_rate(p: &DevicesPlan, runs: &[ComponentRun]) -> f64 {
    let device_fail: f64 = p
        .classes
        .iter()
        .zip(runs)
        .map(|(class, (o, _))| class.traffic_share * failed_share(o))
        .sum();
    let w = p.fallback.as_ref().map_or(0.0, |f| f.cloud_share);
    let cloud_fail = runs
        .get(p.classes.len())
        .map_or(0.0, |(o, _)| failed_share(o));
    (device_fail + w * cloud_fail).min(1.0)
}

/// The level of the completed requests' latency distribution that is the
/// SLO percentile `slo_q` over all requests, failures counted as slowest;
/// `None` when so many failed that it is the worst case (or beyond).
fn slo_level(slo_q: f64, failure_rate: f64) -> Option<f64> {
    let level = slo_q / (1.0 - failure_rate);
    (failure_rate < 1.0 - slo_q && level < 1.0).then_some(level)
}

/// The latency distribution of an edge plan's completed requests, from its
/// components' runs: a request's latency is its class's device time, plus,
/// for the fallback share `w`, the cloud's after the device's mean. Each
/// component's latencies can be scaled (component `i` of [`component_config`])
/// to bound the mixture's quantile by its components' uncertainty.
struct Mixture<'a> {
    /// (share of the requests, latencies) of each device class.
    classes: Vec<(f64, &'a sim::LatencySummary)>,
    cloud: Option<&'a sim::LatencySummary>,
    /// Share of the requests also answered in the cloud.
    w: f64,
}

impl<'a> Mixture<'a> {
    fn new(p: &DevicesPlan, runs: &'a [ComponentRun]) -> Self {
        let cloud = p
            .fallback
            .as_ref()
            .zip(runs.get(p.classes.len()))
            .map(|(f, (o, _))| (f.cloud_share, &o.latency));
        Self {
            classes: p
                .classes
                .iter()
                .zip(runs)
                .map(|(class, (o, _))| (class.traffic_share, &o.latency))
                .collect(),
            cloud: cloud.map(|(_, l)| l),
            w: cloud.map_or(0.0, |(w, _)| w),
        }
    }

    fn components(&self) -> usize {
        self.classes.len() + usize::from(self.cloud.is_some())
    }

    /// Fraction of completed requests at or below `x` seconds with component
    /// `i`'s latencies multiplied by `scale(i)` (all 1: as simulated).
    fn cdf(&self, x: f64, scale: &dyn Fn(usize) -> f64) -> f64 {
        let cloud_scale = scale(self.classes.len());
        self.classes
            .iter()
            .enumerate()
            .map(|(i, (share, l))| {
                let s = scale(i);
                let after_device = self
                    .cloud
                    .map_or(0.0, |k| cdf_at(k, (x - s * l.mean_s) / cloud_scale));
                share * ((1.0 - self.w) * cdf_at(l, x / s) + self.w * after_device)
            })
            .sum()
    }

    /// A latency no request of the mixture exceeds, as simulated.
    fn hi(&self) -> f64 {
        self.classes
            .iter()
            .map(|(_, l)| l.max_s + l.mean_s)
            .fold(0.0, f64::max)
            + self.cloud.map_or(0.0, |k| k.max_s)
    }

    /// The mixture's `f`-quantile with component latencies scaled by `scale`.
    fn quantile(&self, f: f64, scale: &dyn Fn(usize) -> f64) -> f64 {
        let most = (0..self.components()).map(scale).fold(1.0, f64::max);
        mixture_quantile(&|x| self.cdf(x, scale), f, self.hi() * most)
    }

    /// Share of the completed requests component `i`'s latencies stand for.
    fn weight(&self, i: usize) -> f64 {
        match self.classes.get(i) {
            Some((share, _)) => share * (1.0 - self.w),
            None => self.w,
        }
    }

    /// Fraction of component `i`'s own latencies that leave a request at or
    /// below `x`: a class's device times; the cloud's after each class's
    /// device mean, averaged over the classes by their shares.
    fn level(&self, i: usize, x: f64) -> f64 {
        match (self.classes.get(i), self.cloud) {
            (Some((_, l)), _) => cdf_at(l, x),
            (None, Some(k)) => {
                let total: f64 = self.classes.iter().map(|(share, _)| share).sum();
                self.classes
                    .iter()
                    .map(|(share, l)| share * cdf_at(k, x - l.mean_s))
                    .sum::<f64>()
                    / total.max(1e-12)
            }
            (None, None) => 1.0,
        }
    }

    /// Whether component `i` puts mass between `low` and `high`: one that
    /// does not (every latency below, or every one above) cannot move the
    /// mixture's quantile there.
    fn moves_between(&self, i: usize, low: f64, high: f64) -> bool {
        self.weight(i) > 0.0 && self.level(i, low) != self.level(i, high)
    }
}

/// Lowest level a component's run tracks: 20 latencies below it in a batch
/// of 1,000 (as [`EarlyStop::batch_requests_for`] asks beyond it).
const MIN_TRACKED_LEVEL: f64 = 0.02;

/// The most of the mixture's tail beyond its SLO quantile a component may
/// hold at a level its run cannot track (beyond what ten batches of its cap
/// resolve, or below [`MIN_TRACKED_LEVEL`]): its interval is then taken at
/// the nearest level tracked, which misjudges little of the tail; more, and
/// the plan gets no interval.
const MAX_UNTRACKED_TAIL_SHARE: f64 = 0.1;

/// The level each component of mixture `m` tracks for the confidence
/// interval of the mixture's `target` quantile x*, from a first run: its own
/// fraction at or below x*, p_i with sum_i weight_i p_i = target, clamped to
/// what a run capped at `cap` requests can track. `None` for a component
/// with no mass near x* (within twice `relative_half_width` of it): it
/// cannot move the quantile. `None` overall when a component's level is out
/// of reach and it holds more than [`MAX_UNTRACKED_TAIL_SHARE`] of the tail.
fn tracked_levels(
    m: &Mixture<'_>,
    target: f64,
    relative_half_width: f64,
    cap: u64,
) -> Option<Vec<Option<f64>>> {
    let x = m.quantile(target, &|_| 1.0);
    // Ten batches of 20 beyond the level within four times the cap, as
    // `Context::with_quantile_confidence` grants (a hair inside it).
    let highest = 1.0
        - sim::TAIL_REQUESTS_PER_BATCH * MIN_CONFIDENCE_BATCHES as f64
            / (4.0 * cap as f64 * (1.0 - WARMUP_FRACTION))
            * 1.01;
    let tail = 1.0 - target;
    let margin = 2.0 * relative_half_width;
    let mut levels = Vec::with_capacity(m.components());
    for i in 0..m.components() {
        if !m.moves_between(i, x * (1.0 - margin), x * (1.0 + margin)) {
            levels.push(None);
            continue;
        }
        let level = m.level(i, x);
        let untracked = if level > highest {
            m.weight(i) * (1.0 - level)
        } else if level < MIN_TRACKED_LEVEL {
            m.weight(i) * level
        } else {
            0.0
        };
        if highest < MIN_TRACKED_LEVEL || untracked > MAX_UNTRACKED_TAIL_SHARE * tail {
            return None;
        }
        levels.push(Some(level.clamp(MIN_TRACKED_LEVEL, highest)));
    }
    levels.iter().any(Option::is_some).then_some(levels)
}

/// A finalist's components simulated again (same seeds) with the early stop
/// of `confidence` on the level each tracks (see [`tracked_levels`]): each
/// run goes on until its latency there is within `relative_half_width` (or
/// its cap), which bounds the mixture's SLO quantile to the same (see
/// [`mixture_interval_ms`]). The runs, and each component's interval
/// relative to its figure (`None` for one left as first simulated, which
/// cannot move the quantile); `None` when no interval can be given: a component's level out
/// of reach, a run that cannot track it (a trace's replay), or one that
/// ended with fewer than [`MIN_CONFIDENCE_BATCHES`] batches.
fn extend_components(
    ctx: &Context<'_>,
    p: &DevicesPlan,
    budget: &SimBudget,
    confidence: &SloConfidence,
    mut runs: Vec<ComponentRun>,
    slo_q: f64,
) -> Result<(Vec<ComponentRun>, Option<ComponentIntervals>), sim::SimError> {
    let levels = {
        let m = Mixture::new(p, &runs);
        let target = slo_level(slo_q, components_failure_rate(p, &runs))
            .filter(|_| m.cdf(m.hi(), &|_| 1.0) > 0.0);
        target.and_then(|target| {
            tracked_levels(
                &m,
                target,
                confidence.relative_half_width,
                confidence.max_requests,
            )
        })
    };
    let Some(levels) = levels else {
        return Ok((runs, None));
    };
    let mut configs = Vec::new();
    for (i, level) in levels.iter().enumerate() {
        let Some(level) = *level else { continue };
        let Some((mut cfg, share)) = component_config(ctx, p, i, budget) else {
            return Ok((runs, None));
        };
        if !ctx.with_quantile_confidence(&mut cfg.run, Some(confidence), share, level) {
            return Ok((runs, None));
        }
        configs.push((i, cfg));
    }
    let mut relative: Vec<Option<RelativeInterval>> = vec![None; levels.len()];
    let mut complete = true;
    for (i, cfg) in configs {
        let mut o = sim::simulate(&cfg)?;
        match relative_interval(&o.early_stop) {
            Some(r) => relative[i] = Some(r),
            None => complete = false,
        }
        with_tracked_point(&mut o.latency, &o.early_stop);
        if let Some(run) = runs.get_mut(i) {
            *run = (o, cfg.arrivals);
        }
    }
    Ok((runs, complete.then_some(relative)))
}

/// How far a component's 95% confidence interval at its tracked level
/// reaches below and above its figure there, relative to it.
type RelativeInterval = [f64; 2];

/// Each component's [`RelativeInterval`], `None` for one taken as simulated
/// (see [`extend_components`]).
type ComponentIntervals = Vec<Option<RelativeInterval>>;

/// `report`'s interval relative to its estimate (the interval may reach
/// further on one side, where the latencies have a gap at the quantile; its
/// half-width alone where it gives none); `None` without an interval or with
/// a lower side as wide as the figure (latencies are scaled by 1 minus it).
/// The upper side may be any size: across a gap it is several times the
/// figure (171 ms below a gap up to 1,022 ms).
fn relative_interval(report: &sim::EarlyStopReport) -> Option<RelativeInterval> {
    let relative = match (report.estimate_s, report.interval_s) {
        (Some(at), Some([low, high])) if at > 0.0 => [(at - low) / at, (high - at) / at],
        _ => {
            let r = report.relative_half_width?;
            [r, r]
        }
    };
    let [below, above] = relative;
    ((0.0..1.0).contains(&below) && above.is_finite() && above >= 0.0).then_some(relative)
}

/// Adds the tracked quantile, read from the run's whole histogram, to
/// `latency`'s CDF points: the mixture then interpolates between its
/// component's exact figure there, not between the fixed points around it.
fn with_tracked_point(latency: &mut sim::LatencySummary, report: &sim::EarlyStopReport) {
    let (Some(at_s), q) = (report.estimate_s, report.quantile) else {
        return;
    };
    let pts = &mut latency.cdf;
    let i = pts.partition_point(|p| p.fraction < q);
    if pts.get(i).is_some_and(|p| (p.fraction - q).abs() < 1e-12) {
        return;
    }
    let low = i
        .checked_sub(1)
        .and_then(|j| pts.get(j))
        .map_or(0.0, |p| p.latency_s);
    let high = pts.get(i).map_or(f64::INFINITY, |p| p.latency_s);
    pts.insert(
        i,
        sim::CdfPoint {
            latency_s: at_s.clamp(low, high.max(low)),
            fraction: q,
        },
    );
}

/// The 95% confidence interval, ms, of mixture `m`'s `target` quantile
/// (`slo_ms` as computed), from each component's interval at the level it
/// tracked, relative (`None`: a component that cannot move the quantile).
///
/// The quantile x* solves sum_i w_i F_i(x*) = target. A component's
/// interval at its level p_i = F_i(x*) is its latency there scaled by
/// 1 - r_i (below) and 1 + r_i' (above); scaling all of its latencies so
/// moves F_i(x*) across what its interval allows. The mixture is monotone in every scale, so its quantile
/// with every component scaled down (up) bounds x* from below (above), each
/// x_i* at its own interval's end: conservative, as if the components'
/// errors, independent runs, all went the same way (the interval is at most
/// the widest component's, relative). Failures shift the level as the figure
/// has it; their share's own noise is not counted. `None` when a component
/// taken as fixed does move the quantile within the interval.
fn mixture_interval_ms(
    m: &Mixture<'_>,
    target: f64,
    relative: &[Option<RelativeInterval>],
    slo_ms: f64,
) -> Option<[f64; 2]> {
    let r = |i: usize| relative.get(i).copied().flatten().unwrap_or([0.0, 0.0]);
    let widest_below = (0..m.components()).map(|i| r(i)[0]).fold(0.0, f64::max);
    let widest_above = (0..m.components()).map(|i| r(i)[1]).fold(0.0, f64::max);
    if widest_below >= 1.0 {
        return None;
    }
    let low = m.quantile(target, &|i| 1.0 - r(i)[0]);
    let high = m.quantile(target, &|i| 1.0 + r(i)[1]);
    let fixed_moves = (0..m.components())
        .filter(|&i| relative.get(i).copied().flatten().is_none())
        .any(|i| m.moves_between(i, low * (1.0 - widest_below), high * (1.0 + widest_above)));
    (!fixed_moves).then(|| [(low * 1000.0).min(slo_ms), (high * 1000.0).max(slo_ms)])
}

/// The average power a device spends on the model (`busy_w` times its busy
/// share at the scenario's mean traffic), checked against the scenario's limit
/// (a reason pushed on `rejected` if over); the figure the constraint table shows.
/// The simulation ran at a burst or a diurnal peak: the busy share is taken at
/// the mean rate (busy time per request times that rate, as billing takes busy
/// energy), not the simulated run's, whose length is seed noise under bursts.
/// `job_busy_share` is the share of its time an on-device batch job keeps
/// each device busy, besides what the simulation saw.
fn device_power(
    ctx: &Context<'_>,
    power: DevicePower,
    outcome: &SimOutcome,
    mean_rate: f64,
    job_busy_share: f64,
    rejected: &mut Vec<String>,
) -> f64 {
    let simulated = outcome
        .edge
        .as_ref()
        .map_or(0.0, |x| outcome.busy_share_at(x, mean_rate));
    check_device_power(ctx, power, simulated + job_busy_share.max(0.0), rejected)
}

/// What an edge device draws: running the model, and between inputs when it
/// stays awake for it ([`TargetSpec::idle_power_watts`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DevicePower {
    pub busy_w: f64,
    pub idle_w: f64,
}

impl DevicePower {
    pub fn of(spec: &TargetSpec) -> DevicePower {
        DevicePower {
            busy_w: spec.power_watts,
            idle_w: spec.idle_power_watts,
        }
    }

    /// The average draw of a device busy `busy_share` of its time.
    pub fn average(self, busy_share: f64) -> f64 {
        let share = busy_share.clamp(0.0, 1.0);
        self.idle_w + (self.busy_w.max(self.idle_w) - self.idle_w) * share
    }
}

/// The average power of a device busy `busy_share` of its time, checked
/// against the scenario's limit (a reason pushed on `rejected` if over).
pub fn check_device_power(
    ctx: &Context<'_>,
    power: DevicePower,
    busy_share: f64,
    rejected: &mut Vec<String>,
) -> f64 {
    let busy_share = busy_share.min(1.0);
    let average = power.average(busy_share);
    if let Some(limit) = ctx.scenario.constraints.max_device_power_watts {
        if average > limit {
            let awake = if power.idle_w > 0.0 {
                format!(", {} awake between inputs", fmt_watts(power.idle_w))
            } else {
                String::new()
            };
            rejected.push(format!(
                "draws {} on average ({} busy {}% of the time{awake}), limit {}",
                fmt_watts(average),
                fmt_watts(power.busy_w),
                fmt_small_pct(busy_share),
                fmt_watts(limit)
            ));
        }
    }
    average
}

/// A percentage with two significant figures when below 0.1% ("0.021"),
/// else as [`fmt_pct`].
pub fn fmt_small_pct(fraction: f64) -> String {
    let pct = fraction * 100.0;
    if pct <= 0.0 || pct >= 0.1 || !pct.is_finite() {
        return fmt_pct(fraction);
    }
    let decimals = (1.0 - pct.log10().floor()).clamp(2.0, 12.0) as usize;
    format!("{pct:.decimals$}")
}

/// What a device holds running one build (variant, backend, precision) on
/// `batch` inputs at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceMemory {
    /// The variant's weights at the precision.
    pub weight_bytes: u64,
    /// Its activation buffers at the batch.
    pub activation_bytes: u64,
    /// `activation_bytes` is what this build held when timed here
    /// ([`ProfileSet::activation_bytes`]); else the estimate: for each
    /// input, the input and output of the model's largest op in f32.
    pub measured: bool,
}

impl DeviceMemory {
    pub fn total(&self) -> u64 {
        self.weight_bytes.saturating_add(self.activation_bytes)
    }

    /// "2.1 MB weights at int8 + 310.0 kB activations at batch 1, as
    /// measured": what the total is made of.
    pub fn describe(&self, precision: Precision, batch: u32) -> String {
        format!(
            "{} weights at {precision} + {} activations at batch {batch}, {}",
            scenario::format_bytes(self.weight_bytes as f64),
            scenario::format_bytes(self.activation_bytes as f64),
            if self.measured {
                "as measured"
            } else {
                "estimated (not measured)"
            }
        )
    }
}

/// Memory a device needs to run `variant` compiled by `backend` at
/// `precision` on `batch` inputs at once: its weights, and the activation
/// buffers that build held when timed here at that batch. A compiled build
/// reuses buffers and takes a convnet's batch a sample at a time, so this is
/// far below what a model's largest op alone suggests (`convnet-224` at
/// batch 8: 1.6-4.8 MB, not 26 MB), and the naive reference, keeping every
/// layer's output, above it. A build with no measured figure is counted, for
/// each input, the input and output of its largest op (f32).
pub fn device_memory_needed(
    scenario: &Scenario,
    profiles: &ProfileSet,
    (variant, backend, precision): (&str, BackendKind, Precision),
    batch: u32,
) -> DeviceMemory {
    let counts = scenario
        .model
        .variants
        .iter()
        .find(|v| v.name == variant)
        .map(|v| v.counts());
    let weight_bytes = counts.as_ref().map_or(0, |c| c.weight_bytes(precision));
    let measured = profiles.activation_bytes(variant, backend, precision, batch.max(1));
    let estimate = || {
        counts.as_ref().map_or(0, |c| {
            c.max_activation_elems
                .saturating_mul(2 * 4)
                .saturating_mul(u64::from(batch.max(1)))
        })
    };
    DeviceMemory {
        weight_bytes,
        activation_bytes: measured.unwrap_or_else(estimate),
        measured: measured.is_some(),
    }
}

/// What one device class of a plan holds for the build it runs.
#[derive(Debug, Clone)]
pub struct ClassMemory<'a> {
    pub device: &'a Target,
    pub precision: Precision,
    /// Inputs it runs at once.
    pub batch: u32,
    pub needs: DeviceMemory,
    /// What it may use ([`device_memory_limit`]).
    pub limit: u64,
}

impl ClassMemory<'_> {
    /// Its share of the limit it uses (above 1: it does not fit).
    pub fn room_used(&self) -> f64 {
        self.needs.total() as f64 / self.limit.max(1) as f64
    }

    /// "294.3 kB weights at f32 + ... , as measured" (see [`DeviceMemory::describe`]).
    pub fn describe(&self) -> String {
        self.needs.describe(self.precision, self.batch)
    }
}

/// What each device class a plan runs on holds for its build, at the batch
/// it runs there: an on-device batch job its batch; online, and the device
/// half of a fallback, one request's predictions at once (see
/// [`inputs_at_once`]). Empty for a plan in the cloud.
pub fn plan_device_memory<'a>(
    scenario: &'a Scenario,
    profiles: &ProfileSet,
    c: &Candidate,
) -> Vec<ClassMemory<'a>> {
    if c.placement == Placement::Cloud {
        return Vec::new();
    }
    scenario
        .targets
        .device_classes(&c.target)
        .into_iter()
        .map(|(device, _)| {
            let build = c.build_on(&device.spec.name);
            let batch = if c.placement == Placement::Edge && c.mode == Mode::Batch {
                c.max_batch.max(1)
            } else {
                let fan_out = scenario.inputs.predictions_per_request;
                profiles
                    .find(
                        &build.variant,
                        build.backend,
                        build.precision,
                        &device.spec.name,
                    )
                    .map_or(1, |profile| inputs_at_once(profile, fan_out))
            };
            let config = (build.variant.as_str(), build.backend, build.precision);
            ClassMemory {
                device,
                precision: build.precision,
                batch,
                needs: device_memory_needed(scenario, profiles, config, batch),
                limit: device_memory_limit(scenario, device),
            }
        })
        .collect()
}

/// The memory a model may use on `device`: the device's, or the scenario's
/// limit when lower.
pub fn device_memory_limit(scenario: &Scenario, device: &Target) -> u64 {
    match scenario.constraints.max_device_memory_bytes {
        Some(m) => m.min(device.spec.memory_bytes),
        None => device.spec.memory_bytes,
    }
}

/// The reason given for a plan that sends data off the device when the
/// scenario forbids it: the user's own stipulation rather than a limit found.
pub const DATA_STAYS_ON_DEVICE: &str = "data may not leave the device";

/// The end of the reason given for a batch job the scenario's inputs rule out.
pub const CANNOT_PRECOMPUTE: &str = "cannot precompute";

/// Checks of the plan that need no simulation: privacy and accuracy (a
/// device's memory is [`memory_check`]'s, for the build it runs).
pub fn static_checks(
    ctx: &Context<'_>,
    placement_uses_cloud: bool,
    accuracy: &Agreement,
) -> Vec<String> {
    let s = ctx.scenario;
    let mut reasons = Vec::new();
    if placement_uses_cloud && !s.constraints.data_may_leave_device {
        reasons.push(DATA_STAYS_ON_DEVICE.to_string());
    }
    reasons.extend(accuracy.below_floor(s.objectives.accuracy_floor));
    reasons
}

/// Inputs a device holds at once running `inputs` with `profile`'s build
/// (a request's predictions, say): one run of them all up to the largest
/// batch timed, beyond it runs of at most that batch (see
/// [`ComputeProfile::samples`]).
pub fn inputs_at_once(profile: &ComputeProfile, inputs: u64) -> u32 {
    let largest = u64::from(profile.largest_batch().max(1));
    u32::try_from(inputs.clamp(1, largest)).unwrap_or(1)
}

/// Why `profile`'s build does not fit `device` on `batch` inputs at once:
/// "needs 5.3 MB, device has 4.0 MB (...)", the parenthesis saying what the
/// figure is made of; `None` when it fits.
pub fn memory_check(
    ctx: &Context<'_>,
    device: &Target,
    profile: &ComputeProfile,
    batch: u32,
) -> Option<String> {
    let limit = device_memory_limit(ctx.scenario, device);
    memory_reason(
        ctx.device_memory(profile, batch),
        limit,
        "device",
        profile,
        batch,
    )
}

/// Why a cloud instance of `target` cannot serve `inputs` at once (a batch
/// of requests, each of the scenario's predictions) with `profile`'s build:
/// its memory does not hold the weights and that batch's activations
/// ("needs 9.1 GB, instance has 8.0 GB (...)"). `None` when it does.
pub fn instance_memory_check(
    ctx: &Context<'_>,
    target: &Target,
    profile: &ComputeProfile,
    inputs: u64,
) -> Option<String> {
    let batch = inputs_at_once(profile, inputs);
    let needs = ctx.device_memory(profile, batch);
    memory_reason(needs, target.spec.memory_bytes, "instance", profile, batch)
}

/// Whether a cloud instance of `target` holds `profile`'s build running
/// `batch` inputs at once ([`instance_memory_check`] finds no reason).
pub fn fits_instance(
    ctx: &Context<'_>,
    target: &Target,
    profile: &ComputeProfile,
    batch: u32,
) -> bool {
    instance_memory_check(ctx, target, profile, u64::from(batch)).is_none()
}

/// The one comparison of what a build needs with what holds it, worded for
/// a `holder` ("device", "instance"); `None` when it fits.
fn memory_reason(
    needs: DeviceMemory,
    limit: u64,
    holder: &str,
    profile: &ComputeProfile,
    batch: u32,
) -> Option<String> {
    (needs.total() > limit).then(|| {
        format!(
            "needs {}, {holder} has {} ({})",
            scenario::format_bytes(needs.total() as f64),
            scenario::format_bytes(limit as f64),
            needs.describe(profile.precision, batch)
        )
    })
}

/// "p99", "p99.9", "p99.99999999": as many decimals as `q` has (up to 12),
/// so a percentile just under 100 is not called p100.
pub fn percentile_name(q: f64) -> String {
    let digits = (0..=12)
        .find(|&d| {
            let shown: f64 = format!("{q:.d$}").parse().unwrap_or(q);
            (shown - q).abs() <= 1e-12 * q.abs().max(1.0) && (d > 0 || q.fract() == 0.0)
        })
        .unwrap_or(12);
    let text = format!("{q:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("p{text}")
}

/// `a` and `b` as `short` prints them or, when that prints them the same,
/// both as `a * scale` with as many decimals as tell them apart, then `unit`
/// ("150 ms > SLO 150 ms" says nothing; "150.04 ms > SLO 150.00 ms" does).
pub fn told_apart(
    a: f64,
    b: f64,
    short: impl Fn(f64) -> String,
    scale: f64,
    unit: &str,
) -> (String, String) {
    let (sa, sb) = (short(a), short(b));
    if sa != sb || a == b || !(a.is_finite() && b.is_finite()) {
        return (sa, sb);
    }
    let (x, y) = (a * scale, b * scale);
    let digits = (1..=12)
        .find(|&d| format!("{x:.d$}") != format!("{y:.d$}"))
        .unwrap_or(12);
    (format!("{x:.digits$}{unit}"), format!("{y:.digits$}{unit}"))
}

/// A percentage with one decimal, dropped when it is 0: decided on the
/// printed figure, so 59.97% reads "60" as 60% does (it had read "60.0"
/// beside another plan's "60").
pub fn fmt_pct(fraction: f64) -> String {
    let text = format!("{:.1}", fraction * 100.0);
    match text.strip_suffix(".0") {
        Some("-0") => "0".to_string(),
        Some(whole) => whole.to_string(),
        None => text,
    }
}

/// Requests per second the throughput floor asks for: the floor counts
/// predictions, and each request asks `predictions_per_request` of them.
pub fn throughput_floor_rps(scenario: &Scenario) -> f64 {
    scenario.objectives.min_throughput_per_s / scenario.inputs.predictions_per_request.max(1) as f64
}

/// A capacity of `requests_per_s` in the floor's unit: "702,632
/// predictions/s (3,513 req/s of 200)", or "3,513 req/s" when a request is
/// one prediction.
pub fn capacity_text(scenario: &Scenario, requests_per_s: f64) -> String {
    use crate::report::format::{predictions_per_s, rps, thousands};
    let fan_out = scenario.inputs.predictions_per_request.max(1);
    if fan_out > 1 {
        format!(
            "{} ({} of {})",
            predictions_per_s(requests_per_s * fan_out as f64),
            rps(requests_per_s),
            thousands(fan_out as f64)
        )
    } else {
        rps(requests_per_s)
    }
}

/// The throughput floor as the scenario states it, in predictions/s (req/s
/// when a request is one prediction).
pub fn floor_text(scenario: &Scenario) -> String {
    let floor = scenario.objectives.min_throughput_per_s;
    if scenario.inputs.predictions_per_request > 1 {
        crate::report::format::predictions_per_s(floor)
    } else {
        crate::report::format::rps(floor)
    }
}

/// The broker's prices: the scenario's where it states them, else
/// [`BROKER_USD_PER_MONTH`] and [`BROKER_USD_PER_GB`], and which were stated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BrokerPrices {
    pub per_month: f64,
    pub per_gb: f64,
    pub per_month_stated: bool,
    pub per_gb_stated: bool,
}

pub fn broker_prices(scenario: &Scenario) -> BrokerPrices {
    let broker = scenario.targets.broker.as_ref();
    let (month, gb) = (
        broker.and_then(|b| b.usd_per_month),
        broker.and_then(|b| b.usd_per_gb),
    );
    BrokerPrices {
        per_month: month.unwrap_or(BROKER_USD_PER_MONTH),
        per_gb: gb.unwrap_or(BROKER_USD_PER_GB),
        per_month_stated: month.is_some(),
        per_gb_stated: gb.is_some(),
    }
}

/// Cost rates for a plan whose serving instances cost `instance_per_hour`,
/// with the assumed broker prices ([`price`] puts the scenario's in).
pub fn rates(
    instance_per_hour: f64,
    batch_instance_per_hour: f64,
    storage: f64,
) -> cost::CostRates {
    cost::CostRates {
        instance_per_hour,
        batch_instance_per_hour,
        egress_per_gb: EGRESS_USD_PER_GB,
        broker_per_month: BROKER_USD_PER_MONTH,
        broker_per_gb: BROKER_USD_PER_GB,
        storage_per_gb_month: storage,
        energy_per_kwh: ENERGY_USD_PER_KWH,
    }
}

/// The cloud online path for a candidate.
pub fn online_path(
    ctx: &Context<'_>,
    target: &Target,
    profile: &ComputeProfile,
    c: &Candidate,
    stream: bool,
) -> Option<OnlinePath> {
    let transport = if stream {
        Transport::Stream(ctx.broker()?)
    } else {
        Transport::Http
    };
    Some(OnlinePath {
        link: ctx.link(target),
        transport,
        pool: pool(profile, c.replicas, batching(c)),
    })
}

/// Edge devices for a candidate: a sample of the fleet, returned with the share of
/// the traffic it receives (each device sees its real per-device rate) and the
/// number of real devices each simulated one stands for.
pub fn edge_devices(
    ctx: &Context<'_>,
    device: &Target,
    traffic_share: f64,
    profile: &ComputeProfile,
    c: &Candidate,
) -> (EdgeDevices, f64, f64) {
    let fleet = device.devices();
    let simulated = ctx.sampled_devices(fleet, traffic_share);
    (
        EdgeDevices {
            devices: simulated as u32,
            batching: batching(c),
            service: ServiceTime::Profile(profile.points.clone()),
            queue_capacity: QUEUE_CAPACITY,
            busy_power_w: device.spec.power_watts,
            idle_power_w: device.spec.idle_power_watts,
            throttling: None,
        },
        simulated as f64 / fleet as f64,
        fleet as f64 / simulated as f64,
    )
}

/// Lookup path for precomputed predictions: storage read plus, for cloud storage, the link.
pub fn lookup_path(
    ctx: &Context<'_>,
    link_target: Option<&Target>,
    job: &sim::BatchJobPlan,
) -> LookupPath {
    let lookup_ms = ctx
        .scenario
        .targets
        .storage
        .as_ref()
        .map_or(1.0, |s| s.lookup_ms);
    LookupPath {
        link: link_target.map(|t| ctx.link(t)),
        lookup: LatencyFit {
            median_s: lookup_ms / 1000.0,
            p99_s: lookup_ms * 3.0 / 1000.0,
        },
        job: job.schedule,
    }
}

/// Plan a periodic job scoring `items` with the given per-instance throughput:
/// of the instance counts (up to `max_instances`) whose job keeps up, the one
/// with the fewest instance-hours a month. On a fixed schedule
/// (`inputs.refresh_every_s`) a run starts every period and must end before
/// the next; otherwise a run takes at most half the freshness and each starts
/// `freshness - duration` after the last, so an answer is never older than the
/// freshness. Either way a run takes at most `inputs.batch_window_s`.
pub fn batch_job(
    ctx: &Context<'_>,
    items: u64,
    throughput_per_instance: f64,
    max_instances: u32,
    startup_s: f64,
) -> Result<sim::BatchJobPlan, String> {
    let inputs = &ctx.scenario.inputs;
    if inputs.freshness_s <= 0.0 {
        return Err(format!(
            "predictions must be computed on request (freshness 0 s): {CANNOT_PRECOMPUTE}"
        ));
    }
    // Every instance count that keeps up, priced: more instances finish
    // sooner, so the job can start later and run less often (the oldest
    // answer is period + duration = freshness either way), at the cost of
    // one more start-up per instance and run. The cheapest wins; on a tie
    // the fewest instances.
    let mut last = String::new();
    let mut cheapest: Option<sim::BatchJobPlan> = None;
    for instances in 1..=max_instances.max(1) {
        let mut config = BatchJobConfig {
            input_space: sim::InputSpace::Finite { items },
            throughput_per_instance_per_s: throughput_per_instance,
            instances,
            period_s: inputs.refresh_every_s.unwrap_or(inputs.freshness_s / 2.0),
            startup_s,
            // The answer plus its key and timestamp (8 bytes each).
            prediction_bytes: inputs.response_bytes.max(1) + 16,
        };
        let plan = sim::plan_batch_job(&config)
            .map_err(|e| match (e, inputs.refresh_every_s) {
                (sim::BatchInfeasible::MissesPeriod { duration_s, .. }, None) => format!(
                    "batch job takes {duration_s:.0} s, more than half the freshness of {:.0} s (a run must end before the next starts, and no answer be older than the freshness)",
                    inputs.freshness_s
                ),
                (e, _) => e.to_string(),
            })
            .and_then(|plan| match inputs.refresh_every_s {
                // The oldest answer, scored as a run starts and served
                // until the next run publishes, is period + duration.
                Some(every) if every + plan.duration_s > inputs.freshness_s => Err(format!(
                    "batch job takes {:.0} s: started every {every:.0} s, its oldest answer is {:.0} s old, more than the freshness of {:.0} s",
                    plan.duration_s,
                    every + plan.duration_s,
                    inputs.freshness_s
                )),
                Some(_) => Ok(plan),
                // A job no longer than half the freshness keeps up; it then
                // runs as rarely as the freshness allows.
                None => {
                    config.period_s = inputs.freshness_s - plan.duration_s;
                    sim::plan_batch_job(&config).map_err(|e| e.to_string())
                }
            })
            .and_then(|plan| match inputs.batch_window_s {
                Some(window) if plan.duration_s > window => Err(format!(
                    "batch job takes {:.0} s, longer than its window of {window:.0} s",
                    plan.duration_s
                )),
                _ => Ok(plan),
            });
        match plan {
            Ok(plan) => {
                let cheaper = cheapest.as_ref().is_none_or(|best| {
                    plan.instance_hours_per_month < best.instance_hours_per_month * (1.0 - 1e-9)
                });
                if cheaper {
                    cheapest = Some(plan);
                }
            }
            Err(e) if cheapest.is_none() => last = e,
            Err(_) => {}
        }
    }
    cheapest.ok_or_else(|| format!("{last} even with {} instances", max_instances.max(1)))
}

/// Distinct inputs, or why precomputing is impossible.
pub fn finite_inputs(s: &Scenario) -> Result<u64, String> {
    match s.inputs.space {
        InputSpace::Finite { distinct_inputs } => Ok(distinct_inputs),
        InputSpace::Unbounded => Err(format!("inputs unbounded: {CANNOT_PRECOMPUTE}")),
    }
}

/// Whether a mode/placement pair sends data off the device.
pub fn uses_cloud(mode: Mode, placement: Placement) -> bool {
    let _ = mode;
    placement != Placement::Edge
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One wording for one figure: 59.97% and 60% both read "60".
    #[test]
    fn a_percentage_is_written_by_its_printed_figure() {
        assert_eq!(fmt_pct(0.5997), "60");
        assert_eq!(fmt_pct(0.6), "60");
        assert_eq!(fmt_pct(0.123), "12.3");
        assert_eq!(fmt_pct(0.99951), "100");
        assert_eq!(fmt_pct(-0.0000001), "0");
    }

    #[test]
    fn percentiles_keep_their_decimals() {
        assert_eq!(percentile_name(99.0), "p99");
        assert_eq!(percentile_name(99.9), "p99.9");
        assert_eq!(percentile_name(99.95), "p99.95");
        assert_eq!(percentile_name(99.99999999), "p99.99999999");
        assert_eq!(percentile_name(50.0), "p50");
    }

    #[test]
    fn small_powers_and_shares_keep_their_digits() {
        assert_eq!(fmt_watts(5.0), "5.00 W");
        assert_eq!(fmt_watts(0.0018), "1.80 mW");
        assert_eq!(fmt_watts(0.0001), "100 µW");
        assert_eq!(fmt_watts(0.0), "0 W");
        assert_eq!(fmt_small_pct(0.5), "50");
        assert_eq!(fmt_small_pct(0.00021), "0.021");
        assert_eq!(fmt_small_pct(0.0000021), "0.00021");
    }

    #[test]
    fn percentiles_need_requests_beyond_them() {
        assert_eq!(requests_for_percentile(99.0), Some(1_000));
        assert_eq!(requests_for_percentile(99.9), Some(10_000));
        assert_eq!(requests_for_percentile(50.0), Some(20));
        assert_eq!(requests_for_percentile(100.0), None);
        assert_eq!(too_few_requests(1_000, 99.0), None);
        let few = too_few_requests(999, 99.0).unwrap_or_default();
        assert!(few.contains("only 999 requests"), "{few}");
        // beyond what a plan is simulated with: said so, not "only N"
        let strict = too_few_requests(2_000_000, 99.9999).unwrap_or_default();
        assert!(strict.contains("more than the 1000000"), "{strict}");
        assert!(too_few_requests(u64::MAX, 100.0).is_some());
    }

    #[test]
    fn figures_that_print_the_same_get_the_digits_that_differ() {
        assert_eq!(
            told_apart(150.004, 150.0, fmt_ms, 1.0, " ms"),
            ("150.004 ms".to_string(), "150.000 ms".to_string())
        );
        // different already: the usual figures
        assert_eq!(told_apart(212.0, 50.0, fmt_ms, 1.0, " ms").0, fmt_ms(212.0));
        assert_eq!(
            told_apart(0.99496, 0.995, fmt_pct, 100.0, ""),
            ("99.496".to_string(), "99.500".to_string())
        );
    }

    #[test]
    fn the_retransmit_timeout_is_the_rtt_p99_above_the_links_floor() {
        let link = |p99_ms: f64, min_rto_ms: Option<f64>| scenario::Link {
            name: "l".to_string(),
            rtt_median_ms: 1.0,
            rtt_p99_ms: p99_ms,
            bandwidth_mbps: 1000.0,
            loss_fraction: 0.01,
            min_rto_ms,
        };
        // Linux's floor unless the link states its own
        assert_eq!(retransmit_timeout_s(&link(2.0, None)), RTO_MIN_S);
        assert_eq!(retransmit_timeout_s(&link(2.0, Some(5.0))), 0.005);
        // the RTT p99 above the floor either way
        assert_eq!(retransmit_timeout_s(&link(300.0, None)), 0.3);
        assert_eq!(retransmit_timeout_s(&link(300.0, Some(5.0))), 0.3);
        // a stated floor may also be higher than Linux's
        assert_eq!(retransmit_timeout_s(&link(2.0, Some(1000.0))), 1.0);
    }

    /// A fleet's sample grows only when its devices would see too few
    /// requests in the longest window, keeping each device's own rate; never
    /// beyond the fleet or the cap.
    #[test]
    fn a_fleets_sample_grows_with_how_rarely_its_devices_are_used() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/face-unlock.toml");
        let mut s = crate::scenario::load(&path).expect("shipped scenario");
        let profiles = ProfileSet::default();
        let sample = |s: &Scenario, fleet: u64, share: f64| {
            Context {
                scenario: s,
                profiles: &profiles,
                only: None,
                cancel: None,
            }
            .sampled_devices(fleet, share)
        };
        // busy enough: the usual sample, or the whole of a small fleet
        assert_eq!(sample(&s, 4_000_000, 0.4), MAX_SIMULATED_DEVICES);
        assert_eq!(sample(&s, 100, 0.4), 100);
        // 1 request/s at a peak of 2 over 4 M devices with 40% of the traffic:
        // the p99's requests (with the margin) within 30 days
        s.traffic.rate_per_s = 1.0;
        let grown = sample(&s, 4_000_000, 0.4);
        let ctx = Context {
            scenario: &s,
            profiles: &profiles,
            only: None,
            cancel: None,
        };
        let per_device = 2.0 * 0.4 / 4e6;
        let wanted = ctx.requests_wanted(0) as f64 * SAMPLE_MARGIN;
        let in_window = |devices: u64| devices as f64 * per_device * MAX_EXTENDED_WINDOW_S;
        assert!(in_window(grown) >= wanted, "{grown} devices");
        assert!(in_window(grown - 1) < wanted, "{grown} devices");
        assert!(grown > MAX_SIMULATED_DEVICES && grown < MAX_SAMPLED_DEVICES);
        // a smaller share needs a larger sample; never beyond the fleet or the cap
        assert!(sample(&s, 4_000_000, 0.1) > grown);
        assert_eq!(sample(&s, 1_000, 0.4), MAX_SIMULATED_DEVICES);
        s.traffic.rate_per_s = 1e-6;
        assert_eq!(sample(&s, 1_000, 0.4), 1_000);
        assert_eq!(sample(&s, 4_000_000, 0.4), MAX_SAMPLED_DEVICES);
    }

    /// An SLO miss names the failed requests it counted as slowest when they
    /// are enough of the tail to set the SLO figure apart from the plan's
    /// percentiles (those of the completed requests).
    #[test]
    fn an_slo_miss_says_when_failed_requests_count_in_it() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/face-unlock.toml");
        let s = crate::scenario::load(&path).expect("shipped scenario");
        let profiles = ProfileSet::default();
        let ctx = Context {
            scenario: &s,
            profiles: &profiles,
            only: None,
            cancel: None,
        };
        let failed = FailureSummary {
            offline_dominated: false,
            text: String::new(),
        };
        let reason = |failure_rate: f64| {
            let mut row = crate::report::fixtures::sample_report()
                .recommended
                .expect("a recommended plan");
            row.failure_rate = failure_rate;
            check_metrics(&ctx, &row, SloFigure::Ms(461.0), &failed, 1e9).join("; ")
        };
        // p99: the tail is 1%, a tenth of it 0.1%
        assert_eq!(
            reason(0.005),
            "p99 461 ms > SLO 150 ms (the 0.5% that failed counted as slowest)"
        );
        assert_eq!(reason(0.0005), "p99 461 ms > SLO 150 ms");
        assert_eq!(reason(0.0), "p99 461 ms > SLO 150 ms");
    }

    /// A batch job takes the instance count with the fewest instance-hours a
    /// month, not the fewest instances that keep up: more instances finish
    /// sooner, so each run can start later and the job runs less often.
    #[test]
    fn a_batch_job_runs_on_its_cheapest_number_of_instances() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/hotel-ranking.toml");
        let mut s = crate::scenario::load(&path).expect("shipped scenario");
        s.inputs.freshness_s = 86_400.0;
        let profiles = ProfileSet::default();
        let ctx = Context {
            scenario: &s,
            profiles: &profiles,
            only: None,
            cancel: None,
        };
        // 43,600 instance-seconds of scoring a run, 60 s to start an instance.
        let (items, per_instance, startup_s) = (43_600_000, 1_000.0, 60.0);
        let job = batch_job(&ctx, items, per_instance, 16, startup_s).expect("a job");
        let hours_with = |instances: u32| {
            let mut config = BatchJobConfig {
                input_space: sim::InputSpace::Finite { items },
                throughput_per_instance_per_s: per_instance,
                instances,
                period_s: s.inputs.freshness_s / 2.0,
                startup_s,
                prediction_bytes: 16,
            };
            let first = sim::plan_batch_job(&config).ok()?;
            config.period_s = s.inputs.freshness_s - first.duration_s;
            sim::plan_batch_job(&config)
                .ok()
                .map(|p| p.instance_hours_per_month)
        };
        // One instance takes longer than half a day; two is the fewest.
        assert!(hours_with(1).is_none());
        let fewest = hours_with(2).expect("two instances keep up");
        let cheapest = (1..=16)
            .filter_map(hours_with)
            .fold(f64::INFINITY, f64::min);
        assert!(cheapest < fewest * 0.9, "{cheapest} vs {fewest}");
        assert!(
            (job.instance_hours_per_month / cheapest - 1.0).abs() < 1e-9,
            "{} instance-hours, cheapest {cheapest}",
            job.instance_hours_per_month
        );
        assert!((job.schedule.period_s + job.duration_s - s.inputs.freshness_s).abs() < 1e-6);
        // Nothing keeps up: the error names the most instances tried.
        let err = batch_job(&ctx, items * 100, per_instance, 16, startup_s);
        assert!(
            err.as_ref()
                .is_err_and(|e| e.ends_with("even with 16 instances")),
            "{err:?}"
        );
    }

    /// On a fixed schedule a job runs once a period whatever its duration
    /// (nightly is 30.4 runs a month; the freshness rule would start a 9.6 h
    /// job every 14.4 h, 50.7 times), on the fewest instances that keep up;
    /// a window refuses instance counts whose run is longer.
    #[test]
    fn a_scheduled_batch_job_runs_once_a_period_within_its_window() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/hotel-ranking.toml");
        let mut s = crate::scenario::load(&path).expect("shipped scenario");
        let profiles = ProfileSet::default();
        // 9.6 h of scoring on one instance, no start-up.
        let (items, per_instance) = (34_560_000, 1_000.0);
        let job_with = |s: &Scenario, max: u32| {
            let ctx = Context {
                scenario: s,
                profiles: &profiles,
                only: None,
                cancel: None,
            };
            batch_job(&ctx, items, per_instance, max, 0.0)
        };
        s.inputs.freshness_s = 86_400.0;
        let by_freshness = job_with(&s, 1).expect("keeps up");
        assert!((by_freshness.runs_per_month - 730.0 / 14.4).abs() < 0.01);

        s.inputs.refresh_every_s = Some(86_400.0);
        s.inputs.freshness_s = 86_400.0 + 43_200.0;
        let nightly = job_with(&s, 4).expect("keeps up");
        assert!((nightly.runs_per_month - 730.0 / 24.0).abs() < 1e-9);
        assert_eq!(job_instances(&nightly), 1);
        assert!((nightly.duration_s - 34_560.0).abs() < 1e-6);
        assert!((nightly.max_staleness_s - (86_400.0 + 34_560.0)).abs() < 1e-6);

        // Done within 8 h: one instance (9.6 h) is refused, two do it.
        s.inputs.batch_window_s = Some(28_800.0);
        let windowed = job_with(&s, 4).expect("keeps up");
        assert_eq!(job_instances(&windowed), 2);
        assert!(windowed.duration_s <= 28_800.0);
        let err = job_with(&s, 1);
        assert!(
            err.as_ref().is_err_and(|e| e
                == "batch job takes 34560 s, longer than its window of 28800 s even with 1 instances"),
            "{err:?}"
        );

        // The oldest answer must be within an explicit freshness.
        s.inputs.batch_window_s = None;
        s.inputs.freshness_s = 86_400.0 + 30_000.0;
        let err = job_with(&s, 1);
        assert!(
            err.as_ref().is_err_and(|e| e.contains(
                "its oldest answer is 120960 s old, more than the freshness of 116400 s"
            )),
            "{err:?}"
        );
        assert_eq!(job_instances(&job_with(&s, 4).expect("two keep up")), 2);
    }

    /// A run is stretched for an interval only when ten batches fit: p99.99
    /// needs 2.1M requests, past a quick run's 400k cap and within four
    /// times a full run's 2M, which grows to hold them; p99.9 fits as is.
    #[test]
    fn an_slo_interval_is_sought_only_where_ten_batches_fit() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/hotel-ranking.toml");
        let mut s = crate::scenario::load(&path).expect("shipped scenario");
        s.traffic.process = scenario::ArrivalProcess::Poisson;
        let profiles = ProfileSet::default();
        let extended = |s: &Scenario, cap: u64| {
            let ctx = Context {
                scenario: s,
                profiles: &profiles,
                only: None,
                cancel: None,
            };
            let mut run = RunControl {
                duration_s: 10.0,
                max_requests: Some(cap / 10),
                warmup_s: 0.5,
                early_stop: None,
            };
            let confidence = SloConfidence {
                plan_id: String::new(),
                relative_half_width: 0.03,
                max_requests: cap,
            };
            ctx.with_slo_confidence(&mut run, Some(&confidence), 1.0)
                .then_some(run.max_requests.unwrap_or(0))
        };
        s.objectives.latency_percentile = 99.99;
        assert_eq!(extended(&s, 400_000), None);
        let full = extended(&s, 2_000_000).expect("extended");
        assert!((2_100_000..2_200_000).contains(&full), "{full}");
        s.objectives.latency_percentile = 99.9;
        assert_eq!(extended(&s, 400_000), Some(400_000));
    }

    /// Latencies uniform between `low_ms` and `high_ms` (CDF points at the
    /// ends and the middle).
    fn uniform(low_ms: f64, high_ms: f64) -> sim::LatencySummary {
        let (a, b) = (low_ms / 1000.0, high_ms / 1000.0);
        let point = |fraction: f64| sim::CdfPoint {
            latency_s: a + fraction * (b - a),
            fraction,
        };
        sim::LatencySummary {
            count: 1_000,
            mean_s: (a + b) / 2.0,
            min_s: a,
            max_s: b,
            p50_s: (a + b) / 2.0,
            p90_s: a + 0.9 * (b - a),
            p99_s: a + 0.99 * (b - a),
            p999_s: a + 0.999 * (b - a),
            histogram: Vec::new(),
            cdf: vec![point(0.0), point(0.5), point(1.0)],
        }
    }

    /// Two classes, half the requests each, 10-20 ms and 15-25 ms: the
    /// mixture's p70 is 19.5 ms (0.5 x 0.95 + 0.5 x 0.45). Each class's
    /// latencies scaled down by its own relative half-width (2%, 4%) bound
    /// it from below, up from above: no further than the widest, no nearer
    /// than the narrowest.
    #[test]
    fn a_mixtures_interval_lies_between_its_components_widths() {
        let (fast, slow) = (uniform(10.0, 20.0), uniform(15.0, 25.0));
        let m = Mixture {
            classes: vec![(0.5, &fast), (0.5, &slow)],
            cloud: None,
            w: 0.0,
        };
        let x = m.quantile(0.7, &|_| 1.0);
        assert!((x * 1000.0 - 19.5).abs() < 1e-6, "{x}");
        let [low, high] = mixture_interval_ms(
            &m,
            0.7,
            &[Some([0.02, 0.02]), Some([0.04, 0.04])],
            x * 1000.0,
        )
        .expect("both tracked");
        let ms = x * 1000.0;
        assert!(ms * 0.96 - 1e-9 <= low && low <= ms * 0.98 + 1e-9, "{low}");
        assert!(
            ms * 1.02 - 1e-9 <= high && high <= ms * 1.04 + 1e-9,
            "{high}"
        );
        // The fast class has latencies near 19.5 ms: taken as exact, it
        // could still move the quantile, so there is no interval.
        assert_eq!(
            mixture_interval_ms(&m, 0.7, &[None, Some([0.04, 0.04])], ms),
            None
        );
        // Below a gap a component's interval reaches several times its
        // figure above it (171 ms up to 1,022 ms): still an interval, far
        // wider above than below (such a plan had been given none).
        let gap = sim::EarlyStopReport {
            estimate_s: Some(0.171),
            interval_s: Some([0.165, 1.022]),
            ..sim::EarlyStopReport::default()
        };
        let relative = relative_interval(&gap).expect("a lower side under 1");
        assert!((relative[1] - (1.022 - 0.171) / 0.171).abs() < 1e-9);
        let [low, high] = mixture_interval_ms(&m, 0.7, &[Some([0.02, 0.02]), Some(relative)], ms)
            .expect("an interval across the gap");
        assert!(low >= ms * 0.96 - 1e-9 && high > ms * 1.5, "{low}-{high}");
    }

    /// Each class tracks its own level at the mixture's quantile: the slow
    /// one (10-20 ms) is at 0.8 where the mixture is at 0.9 (18 ms); the
    /// fast one (1-2 ms) has no latency near 18 ms and tracks nothing. A
    /// level beyond what ten batches of the cap resolve, holding the whole
    /// tail, leaves the plan without an interval.
    #[test]
    fn each_component_tracks_its_own_level_at_the_mixtures_quantile() {
        let (slow, fast) = (uniform(10.0, 20.0), uniform(1.0, 2.0));
        let m = Mixture {
            classes: vec![(0.5, &slow), (0.5, &fast)],
            cloud: None,
            w: 0.0,
        };
        let levels = tracked_levels(&m, 0.9, 0.03, 400_000).expect("levels");
        assert_eq!(levels.len(), 2);
        assert!(
            (levels[0].expect("tracked") - 0.8).abs() < 1e-6,
            "{levels:?}"
        );
        assert_eq!(levels[1], None);
        let alone = Mixture {
            classes: vec![(1.0, &slow)],
            cloud: None,
            w: 0.0,
        };
        assert!(tracked_levels(&alone, 0.99, 0.03, 400_000).is_some());
        assert_eq!(tracked_levels(&alone, 0.99, 0.03, 1_000), None);
    }

    /// With a fallback, the cloud's latencies follow the device's mean: half
    /// the requests at 1-2 ms on the device, half also sent to a cloud at
    /// 40-60 ms after it. The p99 is the cloud's 0.98 level, and the device
    /// has no latency near it.
    #[test]
    fn a_fallbacks_cloud_tracks_its_level_after_the_device() {
        let (device, cloud) = (uniform(1.0, 2.0), uniform(40.0, 60.0));
        let m = Mixture {
            classes: vec![(1.0, &device)],
            cloud: Some(&cloud),
            w: 0.5,
        };
        let x = m.quantile(0.99, &|_| 1.0);
        assert!(
            (x * 1000.0 - (1.5 + 40.0 + 0.98 * 20.0)).abs() < 1e-6,
            "{x}"
        );
        let levels = tracked_levels(&m, 0.99, 0.03, 400_000).expect("levels");
        assert_eq!(levels[0], None);
        assert!(
            (levels[1].expect("cloud") - 0.98).abs() < 1e-6,
            "{levels:?}"
        );
    }

    /// The tracked quantile joins the CDF points in order; one already there
    /// is not repeated.
    #[test]
    fn the_tracked_quantile_joins_the_cdf_points() {
        let mut l = uniform(10.0, 20.0);
        // From JSON: the fields this test does not need take their defaults.
        let report = |quantile: f64, at_s: f64| -> sim::EarlyStopReport {
            serde_json::from_value(serde_json::json!({
                "enabled": true,
                "stopped_early": false,
                "batches": 10,
                "p99_relative_half_width": null,
                "quantile": quantile,
                "estimate_s": at_s,
            }))
            .expect("a report")
        };
        with_tracked_point(&mut l, &report(0.8, 0.0185));
        with_tracked_point(&mut l, &report(0.5, 0.0151));
        let fractions: Vec<f64> = l.cdf.iter().map(|p| p.fraction).collect();
        assert_eq!(fractions, vec![0.0, 0.5, 0.8, 1.0]);
        assert_eq!(l.cdf[2].latency_s, 0.0185);
        assert_eq!(l.cdf[1].latency_s, 0.015);
    }

    #[test]
    fn failure_counts_leave_out_the_ways_none_failed() {
        assert_eq!(failure_counts(12, 0, 3), "12 timed out, 3 offline");
        assert_eq!(failure_counts(0, 5, 0), "5 hit a full queue");
        assert_eq!(failure_counts(0, 0, 0), "none");
    }

    #[test]
    fn percent_and_percentile_formatting() {
        assert_eq!(fmt_pct(0.3), "30");
        assert_eq!(fmt_pct(0.975), "97.5");
        assert_eq!(percentile_name(99.9), "p99.9");
    }
}
