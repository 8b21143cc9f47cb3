//! From a candidate to simulated metrics and the reasons it fails, if it does.
//!
//! Each candidate is mapped onto the simulator's plain config (arrivals, link,
//! broker, pool, edge devices, lookup path), simulated with the scenario's seed,
//! priced, and checked against every constraint and objective.

use workbench_kernels::Precision;

pub use crate::report::format::{ms as fmt_ms, usd as fmt_usd};
use crate::report::{self, CostLine, FigureSource, LatencyPercentiles};
use crate::scenario::{self, InputSpace, Mode, Placement, Scenario, Target};
use crate::sim::{
    self, cost, ArrivalProcess, Balancer, BatchJobConfig, Batching, Broker, EdgeDevices,
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
/// Mean length of a device's offline period when the scenario has devices offline
/// part of the time (how long a request that waits for reconnection would wait).
const MEAN_OFFLINE_S: f64 = 120.0;

/// How much simulation each candidate gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimBudget {
    pub requests: u64,
    pub seed: u64,
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
    /// power times its busy share), for the power limit. `None` elsewhere.
    pub device_power_w: Option<f64>,
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
}

impl Context<'_> {
    pub fn allows(&self, c: &Candidate) -> bool {
        self.only.is_none_or(|only| only.contains(&c.family()))
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

    fn slo_s(&self) -> f64 {
        self.scenario.objectives.latency_ms / 1000.0
    }

    fn timeout_s(&self) -> f64 {
        (self.slo_s() * 10.0).max(1.0)
    }

    pub fn target(&self, name: &str) -> Option<&Target> {
        self.scenario.targets.find(name)
    }

    /// Declared agreement of `variant` with the reference, times the measured
    /// agreement of `precision` with f32.
    pub fn accuracy(&self, variant: &str, precision: Precision) -> f64 {
        let declared = |name: &str| {
            self.scenario
                .model
                .variants
                .iter()
                .find(|v| v.name == name)
                .and_then(|v| v.accuracy)
        };
        let variant_agreement = match (declared(variant), declared(self.reference_variant())) {
            (Some(v), Some(r)) if r > 0.0 => (v / r).min(1.0),
            _ => 1.0,
        };
        let precision_agreement = self.profiles.accuracy_of(variant, precision).unwrap_or(1.0);
        variant_agreement * precision_agreement
    }

    /// Client <-> target link, with the scenario's offline devices.
    fn link(&self, target: &Target) -> NetworkLink {
        let s = self.scenario;
        let named = target
            .link
            .as_deref()
            .and_then(|n| s.targets.link(n))
            .or_else(|| s.targets.links.first());
        let mut link = match named {
            Some(l) => NetworkLink {
                rtt: LatencyFit {
                    median_s: l.rtt_median_ms / 1000.0,
                    p99_s: l.rtt_p99_ms.max(l.rtt_median_ms) / 1000.0,
                },
                bandwidth_bps: l.bandwidth_mbps * 1e6,
                loss_probability: l.loss_fraction.clamp(0.0, 0.5),
                // Fast retransmit recovers most single losses in about one RTT.
                retransmit_timeout_s: l.rtt_median_ms / 1000.0,
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

    /// The scenario's arrivals, scaled to a share of the traffic.
    fn arrivals(&self, share: f64) -> ArrivalProcess {
        let t = &self.scenario.traffic;
        let rate = t.rate_per_s * share;
        match &t.process {
            scenario::ArrivalProcess::Poisson => ArrivalProcess::Poisson { rate_per_s: rate },
            scenario::ArrivalProcess::Constant => ArrivalProcess::Constant { rate_per_s: rate },
            scenario::ArrivalProcess::Bursty { on_s, off_s } => ArrivalProcess::BurstyOnOff {
                on_rate_per_s: rate * (on_s + off_s) / on_s,
                off_rate_per_s: 0.0,
                mean_on_s: *on_s,
                mean_off_s: *off_s,
            },
            // A planning run is far shorter than a day: size for the peak.
            scenario::ArrivalProcess::Diurnal { peak_factor, .. } => ArrivalProcess::Poisson {
                rate_per_s: rate * peak_factor,
            },
            scenario::ArrivalProcess::Trace { timestamps_s, .. } => ArrivalProcess::Trace {
                timestamps_s: timestamps_s.clone(),
            },
        }
    }

    fn run_control(&self, budget: &SimBudget, share: f64) -> RunControl {
        let rate = (self.scenario.traffic.peak_rate_per_s() * share).max(1e-9);
        let t = &self.scenario.traffic;
        // A low rate over the scenario's window gives a handful of requests
        // and a meaningless p99: simulate long enough for a few thousand (a
        // stationary process only; a trace is what it is).
        let window = match t.process {
            scenario::ArrivalProcess::Trace { .. } => t.duration_s,
            _ => {
                let enough = MIN_SIMULATED_REQUESTS.min(budget.requests) as f64 / rate;
                t.duration_s.max(enough.min(MAX_EXTENDED_WINDOW_S))
            }
        };
        let duration = (budget.requests as f64 / rate).min(window);
        RunControl {
            duration_s: duration,
            max_requests: Some(budget.requests),
            warmup_s: duration * 0.05,
            early_stop: None,
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
            let hop = b.per_hop_ms / 1000.0 * f64::from(b.hops.max(1));
            Broker {
                partitions: b.partitions.max(1),
                produce: LatencyFit {
                    median_s: hop / 2.0,
                    p99_s: hop * 1.5,
                },
                consume: LatencyFit {
                    median_s: hop / 2.0,
                    p99_s: hop * 1.5,
                },
            }
        })
    }

    /// Model bytes on a device at a precision: weights plus the largest activation at batch 1.
    pub fn model_bytes(&self, variant: &str, precision: Precision) -> u64 {
        device_memory_needed(self.scenario, variant, precision)
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
        energy_mj_per_prediction: None,
        on_pareto_front: false,
        simulated: false,
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
    }
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
    /// Edge: the device's power while running the model (the average it draws is
    /// checked against the scenario's power limit).
    pub device_power_w: Option<f64>,
}

/// Usage the simulation outcome does not capture.
#[derive(Debug, Clone, Copy, Default)]
pub struct UsageExtras {
    pub replicas: f64,
    pub batch_job: Option<sim::BatchJobPlan>,
    pub broker_bytes_per_message: Option<f64>,
    pub devices_per_simulated_device: f64,
    /// Extra energy (J per month) not in the outcome, e.g. an on-device batch job.
    pub extra_energy_j: f64,
}

/// Requests a plan's simulation covers at least (when the budget allows),
/// however low the scenario's rate.
const MIN_SIMULATED_REQUESTS: u64 = 2_000;

/// The longest a low rate stretches the simulated window (30 days): beyond
/// it, on/off cycles would be simulated by the million for a few requests.
const MAX_EXTENDED_WINDOW_S: f64 = 30.0 * 86_400.0;

/// Simulate, price and check one candidate.
pub fn simulate_candidate(
    ctx: &Context<'_>,
    c: Candidate,
    plan: SimPlan,
    budget: &SimBudget,
) -> Evaluation {
    if !ctx.allows(&c) {
        return pruned(
            c,
            plan.source,
            plan.accuracy,
            0.0,
            "outside the families re-planned".into(),
        );
    }
    let config = SimConfig {
        seed: budget.seed,
        arrivals: ctx.arrivals(plan.arrival_share),
        payload: ctx.payload(),
        timeout_s: Some(ctx.timeout_s()),
        mode: plan.mode,
        run: ctx.run_control(budget, plan.arrival_share),
    };
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
            };
        }
    };
    fill_metrics(&mut row, &outcome);
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
    rejected.extend(price(&mut row, &usage, &plan.rates));
    let slo_latency_ms =
        latency_at_percentile_ms(&outcome, ctx.scenario.objectives.latency_percentile);
    rejected.extend(check(
        ctx,
        &row,
        slo_latency_ms,
        &outcome,
        plan.capacity_rps,
    ));
    let device_power_w = plan.device_power_w.map(|busy_w| {
        let edge_util = outcome.edge.as_ref().map_or(0.0, |p| p.mean_utilisation);
        rejected.extend(power_check(ctx, busy_w, edge_util));
        busy_w * edge_util
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
    }
}

/// Price a month of usage into the plan row; the reason if it cannot be priced.
fn price(row: &mut report::Plan, usage: &cost::Usage, rates: &cost::CostRates) -> Option<String> {
    match cost::estimate(usage, rates) {
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

fn fill_metrics(row: &mut report::Plan, o: &SimOutcome) {
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
        .map_or(0.0, |p| p.mean_utilisation);
    row.failure_rate = if o.measured_requests > 0 {
        o.failures.total() as f64 / o.measured_requests as f64
    } else {
        0.0
    };
    row.staleness_s = o.staleness.map(|s| s.mean_age_s);
    row.energy_mj_per_prediction = o.energy.map(|e| e.energy_per_prediction_j * 1000.0);
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
    latency_at_slo_ms: Option<f64>,
    o: &SimOutcome,
    capacity: f64,
) -> Vec<String> {
    let failed = FailureSummary {
        offline_dominated: o.failures.offline > 0 && o.failures.offline * 2 >= o.failures.total(),
        text: format!(
            "{} timed out, {} hit a full queue, {} offline",
            o.failures.timeout, o.failures.queue_full, o.failures.offline
        ),
    };
    check_metrics(ctx, row, latency_at_slo_ms, &failed, capacity)
}

/// How requests failed, for the reason text.
pub struct FailureSummary {
    pub offline_dominated: bool,
    pub text: String,
}

/// The checks on metrics: latency at the SLO percentile (`None`: too many
/// failures to reach it), capacity, budget.
fn check_metrics(
    ctx: &Context<'_>,
    row: &report::Plan,
    latency_at_q_ms: Option<f64>,
    failed: &FailureSummary,
    capacity: f64,
) -> Vec<String> {
    let s = ctx.scenario;
    let obj = &s.objectives;
    let mut reasons = Vec::new();
    let q = obj.latency_percentile;
    match latency_at_q_ms {
        None => {
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
        Some(ms) if ms > obj.latency_ms => reasons.push(format!(
            "{} {} > SLO {}",
            percentile_name(q),
            fmt_ms(ms),
            fmt_ms(obj.latency_ms)
        )),
        Some(_) => {}
    }
    if obj.min_throughput_per_s > 0.0 && capacity < obj.min_throughput_per_s {
        reasons.push(format!(
            "capacity {:.0}/s < required {:.0}/s",
            capacity, obj.min_throughput_per_s
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

/// An edge model with cloud fallback: every request runs on the device; a share
/// (its least confident inputs) is then also sent to the cloud model while online.
pub struct FallbackPlan {
    pub edge: EdgeDevices,
    /// Share of the traffic the sampled devices receive, and real devices per sampled one.
    pub edge_share: f64,
    pub devices_per_simulated_device: f64,
    pub online: OnlinePath,
    /// Share of all requests answered by the cloud (deferred and online).
    pub cloud_share: f64,
    pub rates: cost::CostRates,
    pub replicas: u32,
    pub source: FigureSource,
    pub accuracy: f64,
    pub capacity_rps: f64,
    pub edge_busy_power_w: f64,
}

/// Simulate the device and the cloud fallback separately (a fleet of millions cannot be
/// simulated device by device, the cloud must see all fallback traffic), then combine:
/// latency is the device's for the (1 - share) answered locally, device + cloud for the rest.
pub fn simulate_fallback(
    ctx: &Context<'_>,
    c: Candidate,
    p: FallbackPlan,
    budget: &SimBudget,
) -> Evaluation {
    if !ctx.allows(&c) {
        return pruned(
            c,
            p.source,
            p.accuracy,
            0.0,
            "outside the families re-planned".into(),
        );
    }
    let config = |mode: sim::Mode, share: f64, seed: u64| SimConfig {
        seed,
        arrivals: ctx.arrivals(share),
        payload: ctx.payload(),
        timeout_s: Some(ctx.timeout_s()),
        mode,
        run: ctx.run_control(budget, share),
    };
    let mut row = blank_plan(&c, p.source, p.accuracy);
    let edge_cfg = config(sim::Mode::Edge(p.edge), p.edge_share, budget.seed);
    let cloud_cfg = config(
        sim::Mode::Online(p.online),
        p.cloud_share.max(1e-9),
        budget.seed.wrapping_add(1),
    );
    let (e, k) = match (sim::simulate(&edge_cfg), sim::simulate(&cloud_cfg)) {
        (Ok(e), Ok(k)) => (e, k),
        (Err(err), _) | (_, Err(err)) => {
            let mut ev = pruned(
                c,
                p.source,
                p.accuracy,
                0.0,
                format!("cannot simulate: {err}"),
            );
            ev.capacity_rps = p.capacity_rps;
            return ev;
        }
    };
    let w = p.cloud_share;
    let shift = e.latency.mean_s;
    let mixture = |x: f64| (1.0 - w) * cdf_at(&e.latency, x) + w * cdf_at(&k.latency, x - shift);
    let hi = e.latency.max_s + k.latency.max_s + shift;
    let q = |f: f64| mixture_quantile(&mixture, f, hi);
    row.latency_ms = LatencyPercentiles {
        p50: q(0.5) * 1000.0,
        p90: q(0.9) * 1000.0,
        p99: q(0.99) * 1000.0,
        p999: q(0.999) * 1000.0,
    };
    let cloud_fail = if k.measured_requests > 0 {
        k.failures.total() as f64 / k.measured_requests as f64
    } else {
        0.0
    };
    row.failure_rate = w * cloud_fail;
    row.throughput_rps = ctx.scenario.traffic.rate_per_s * (1.0 - row.failure_rate);
    row.utilisation = k.cloud.as_ref().map_or(0.0, |x| x.mean_utilisation);
    row.energy_mj_per_prediction = e.energy.map(|x| x.energy_per_prediction_j * 1000.0);
    let edge_usage = cost::monthly_usage(
        &e,
        &cost::UsageInputs {
            replicas: 0.0,
            batch_job: None,
            broker_bytes_per_message: None,
            devices_per_simulated_device: p.devices_per_simulated_device,
            mean_rate_per_s: Some(ctx.mean_rate(p.edge_share)),
        },
    );
    let usage = cost::Usage {
        replicas: f64::from(p.replicas),
        egress_bytes: ctx.monthly_response_bytes(p.cloud_share),
        edge_energy_j: edge_usage.edge_energy_j,
        predictions: edge_usage.predictions / p.edge_share.max(1e-12),
        ..cost::Usage::default()
    };
    let mut rejected = Vec::new();
    rejected.extend(price(&mut row, &usage, &p.rates));
    let slo_q = ctx.scenario.objectives.latency_percentile / 100.0;
    let lat = (row.failure_rate < 1.0 - slo_q)
        .then(|| q((slo_q / (1.0 - row.failure_rate)).min(1.0)) * 1000.0);
    let failed = FailureSummary {
        offline_dominated: false,
        text: format!(
            "{} timed out, {} hit a full queue in the cloud",
            k.failures.timeout, k.failures.queue_full
        ),
    };
    rejected.extend(check_metrics(ctx, &row, lat, &failed, p.capacity_rps));
    let edge_util = e.edge.as_ref().map_or(0.0, |x| x.mean_utilisation);
    rejected.extend(power_check(ctx, p.edge_busy_power_w, edge_util));
    let cdf = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0]
        .iter()
        .map(|&f| report::CdfPoint {
            latency_ms: if f >= 1.0 { hi * 1000.0 } else { q(f) * 1000.0 },
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
        device_power_w: Some(p.edge_busy_power_w * edge_util),
    }
}

/// The average power a device spends on the model against the scenario's limit.
fn power_check(ctx: &Context<'_>, busy_w: f64, utilisation: f64) -> Option<String> {
    let limit = ctx.scenario.constraints.max_device_power_watts?;
    let average = busy_w * utilisation;
    (average > limit).then(|| {
        format!(
            "draws {average:.2} W on average ({busy_w:.1} W busy {}% of the time), limit {limit:.1} W",
            fmt_pct(utilisation)
        )
    })
}

/// Memory a device needs to run a variant at a precision: its weights and its
/// largest activation (f32).
pub fn device_memory_needed(scenario: &Scenario, variant: &str, precision: Precision) -> u64 {
    scenario
        .model
        .variants
        .iter()
        .find(|v| v.name == variant)
        .map_or(0, |v| {
            let c = v.counts();
            c.weight_bytes(precision)
                .saturating_add(c.max_activation_elems.saturating_mul(4))
        })
}

/// Checks that need no simulation: privacy, accuracy, memory, power, precision.
pub fn static_checks(
    ctx: &Context<'_>,
    placement_uses_cloud: bool,
    variant: &str,
    precision: workbench_kernels::Precision,
    accuracy: f64,
    device: Option<&Target>,
) -> Vec<String> {
    let s = ctx.scenario;
    let mut reasons = Vec::new();
    if placement_uses_cloud && !s.constraints.data_may_leave_device {
        reasons.push("data may not leave the device".to_string());
    }
    if accuracy + 1e-12 < s.objectives.accuracy_floor {
        reasons.push(format!(
            "accuracy agreement {}% < floor {}%",
            fmt_pct(accuracy),
            fmt_pct(s.objectives.accuracy_floor)
        ));
    }
    if let Some(device) = device {
        let needs = ctx.model_bytes(variant, precision);
        let limit = match s.constraints.max_device_memory_bytes {
            Some(m) => m.min(device.spec.memory_bytes),
            None => device.spec.memory_bytes,
        };
        if needs > limit {
            reasons.push(format!(
                "needs {}, device has {}",
                scenario::format_bytes(needs as f64),
                scenario::format_bytes(limit as f64)
            ));
        }
    }
    reasons
}

pub fn percentile_name(q: f64) -> String {
    format!("p{}", super::candidate::trim_float(q))
}

pub fn fmt_pct(fraction: f64) -> String {
    let pct = fraction * 100.0;
    if (pct - pct.round()).abs() < 1e-9 {
        format!("{pct:.0}")
    } else {
        format!("{pct:.1}")
    }
}

/// Cost rates for a plan whose serving instances cost `instance_per_hour`.
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
    device: &Target,
    profile: &ComputeProfile,
    c: &Candidate,
) -> (EdgeDevices, f64, f64) {
    let fleet = device.fleet_size.unwrap_or(1).max(1);
    let simulated = fleet.min(MAX_SIMULATED_DEVICES);
    (
        EdgeDevices {
            devices: simulated as u32,
            batching: batching(c),
            service: ServiceTime::Profile(profile.points.clone()),
            queue_capacity: QUEUE_CAPACITY,
            busy_power_w: device.spec.power_watts,
            idle_power_w: 0.0,
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

/// Plan a periodic job scoring `items` with the given per-instance throughput,
/// using the fewest instances (up to `max_instances`) that finish within the period.
/// The period is half the freshness, so an answer is never older than the freshness.
pub fn batch_job(
    ctx: &Context<'_>,
    items: u64,
    throughput_per_instance: f64,
    max_instances: u32,
    startup_s: f64,
) -> Result<sim::BatchJobPlan, String> {
    let inputs = &ctx.scenario.inputs;
    if inputs.freshness_s <= 0.0 {
        return Err(
            "predictions must be computed on request (freshness 0 s): cannot precompute"
                .to_string(),
        );
    }
    let mut last = String::new();
    for instances in 1..=max_instances.max(1) {
        let config = BatchJobConfig {
            input_space: sim::InputSpace::Finite { items },
            throughput_per_instance_per_s: throughput_per_instance,
            instances,
            period_s: inputs.freshness_s / 2.0,
            startup_s,
            prediction_bytes: inputs.response_bytes.max(1) + 16,
        };
        match sim::plan_batch_job(&config) {
            Ok(plan) => return Ok(plan),
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!(
        "{last} even with {} instances",
        max_instances.max(1)
    ))
}

/// Distinct inputs, or why precomputing is impossible.
pub fn finite_inputs(s: &Scenario) -> Result<u64, String> {
    match s.inputs.space {
        InputSpace::Finite { distinct_inputs } => Ok(distinct_inputs),
        InputSpace::Unbounded => Err("inputs unbounded: cannot precompute".to_string()),
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

    #[test]
    fn percent_and_percentile_formatting() {
        assert_eq!(fmt_pct(0.3), "30");
        assert_eq!(fmt_pct(0.975), "97.5");
        assert_eq!(percentile_name(99.9), "p99.9");
    }
}
