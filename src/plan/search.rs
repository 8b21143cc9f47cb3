//! Enumerate candidate plans within the scenario's search space, prune what
//! cannot win, and simulate the rest.

use workbench_kernels::{BackendKind, Precision};

use crate::hardware::project::Infeasible;
use crate::report::{ClassBuildFigures, DeviceClassFigures, FigureSource};
use crate::scenario::{Broker, Mode, Placement, Scenario, Target};
use crate::sim;
use crate::sim::cost::HOURS_PER_MONTH;

use super::candidate::{Candidate, ClassBuild, FallbackModel};
use super::evaluate::{
    batch_job, check_device_power, edge_devices, finite_inputs, fits_instance, inputs_at_once,
    instance_memory_check, lookup_path, memory_check, online_path, pruned, rates,
    simulate_candidate, simulate_devices, static_checks, with_instance_cost, CloudFallback,
    Context, DeviceClass, DevicePower, DevicesPlan, Evaluation, SearchBudget, SimBudget, SimPlan,
    UsageExtras, TARGET_UTILISATION,
};
use super::profile::ComputeProfile;

/// Shares of the distinct inputs a hybrid plan precomputes.
const PRECOMPUTE_FRACTIONS: [f64; 2] = [0.01, 0.1];
/// Replica counts tried above the analytic minimum before giving up on a config.
const EXTRA_REPLICAS: u32 = 2;
/// Share of requests a small edge model defers to the cloud when the scenario does not say.
pub const DEFAULT_FALLBACK_FRACTION: f64 = 0.1;
/// Share of a small model's first deferred inputs (its least confident) it
/// would have answered wrongly (assumption, stated in every report that uses it).
pub const DEFERRAL_PRECISION: f64 = 0.7;

/// Share of all requests a small model that gets `errors` of them wrong
/// would have got wrong and defers, deferring `deferred` of them: the first
/// inputs deferred are wrong [`DEFERRAL_PRECISION`] of the time, each further
/// one (more confident) less often, so deferring everything catches every
/// error and nothing less does: `errors (1 - (1 - deferred)^(P / errors))`.
/// (Taking P of the deferred share up to all the errors had a 15% deferral
/// catch every one of 7% errors: 100% agreement.)
pub fn errors_caught_by_deferral(errors: f64, deferred: f64) -> f64 {
    if errors <= 0.0 || deferred <= 0.0 {
        return 0.0;
    }
    let (errors, deferred) = (errors.min(1.0), deferred.min(1.0));
    // A model wrong more often than DEFERRAL_PRECISION defers no worse than
    // at random (exponent 1): its later deferrals are never more often wrong.
    let exponent = DEFERRAL_PRECISION.max(errors) / errors;
    let caught = errors * (1.0 - (1.0 - deferred).powf(exponent));
    caught.min(deferred)
}

/// Every (variant, precision) pair the search space allows, with the backends it may use.
fn model_configs(ctx: &Context<'_>) -> Vec<(String, Precision)> {
    let search = &ctx.scenario.search;
    let mut out = Vec::new();
    for v in &ctx.scenario.model.variants {
        for &p in &search.precisions {
            out.push((v.name.clone(), p));
        }
    }
    out
}

fn targets<'a>(ctx: &'a Context<'_>, edge: bool) -> Vec<&'a Target> {
    let s = ctx.scenario;
    let list = if edge {
        &s.targets.edge
    } else {
        &s.targets.cloud
    };
    list.iter()
        .filter(|t| s.search.targets.is_empty() || s.search.targets.contains(&t.spec.name))
        .collect()
}

/// (max batch, max delay ms) pairs: batch 1 never waits.
fn batchings(ctx: &Context<'_>) -> Vec<(u32, f64)> {
    let search = &ctx.scenario.search;
    let mut out = Vec::new();
    for &b in &search.batch_sizes {
        let b = b.max(1) as u32;
        if b == 1 {
            out.push((1, 0.0));
        } else {
            for &d in &search.max_queue_delay_ms {
                if d > 0.0 {
                    out.push((b, d));
                }
            }
        }
    }
    if out.is_empty() {
        out.push((1, 0.0));
    }
    out.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    out
}

fn best<'a>(
    ctx: &'a Context<'_>,
    variant: &str,
    precision: Precision,
    target: &str,
) -> Option<&'a ComputeProfile> {
    ctx.profiles
        .best_backend(variant, precision, target, &ctx.scenario.search.backends)
}

/// The best backend's profile for requests of the scenario's fan-out (online serving).
fn best_online(
    ctx: &Context<'_>,
    variant: &str,
    precision: Precision,
    target: &str,
) -> Option<ComputeProfile> {
    best(ctx, variant, precision, target)
        .map(|p| p.per_request(ctx.scenario.inputs.predictions_per_request))
}

/// CPU time an HTTP server spends on each request besides the model: parsing
/// the request, deserialising the input, serialising and writing the response.
/// Assumption: tens of µs of one core per small request for a compiled server
/// (TechEmpower-class JSON servers peak near 10^5 requests/s per core with no
/// model at all; a realistic payload costs several times that). A cloud
/// target's `request_cpu_us` replaces it.
pub const HTTP_REQUEST_CPU_S: f64 = 30e-6;
/// CPU time a stream consumer spends on each message besides the model:
/// fetching and deserialising it, producing the result, committing the offset.
/// Assumption: about 10 µs of one core per small message (Kafka clients
/// consume and acknowledge on the order of 10^5 small messages/s per core).
/// A cloud target's `message_cpu_us` replaces it.
pub const STREAM_MESSAGE_CPU_S: f64 = 10e-6;
/// What one partition delivers to its consumer, whichever binds first: about
/// 10 MB/s or 100,000 small messages/s (Kafka sizing rule of thumb: plan
/// partitions from the per-partition consumer throughput). Assumptions the
/// broker's `partition_mb_per_s` and `partition_messages_per_s` replace.
pub const PARTITION_MAX_BYTES_PER_S: f64 = 10e6;
pub const PARTITION_MAX_MESSAGES_PER_S: f64 = 100_000.0;

/// CPU seconds of one core a replica on `target` spends per HTTP request
/// besides the model: the target's `request_cpu_us`, else the assumption.
pub fn request_cpu_s(target: &Target) -> f64 {
    target
        .request_cpu_us
        .map_or(HTTP_REQUEST_CPU_S, |us| us / 1e6)
}

/// CPU seconds of one core a replica on `target` spends per stream message
/// besides the model: the target's `message_cpu_us`, else the assumption.
pub fn message_cpu_s(target: &Target) -> f64 {
    target
        .message_cpu_us
        .map_or(STREAM_MESSAGE_CPU_S, |us| us / 1e6)
}

/// Messages of `bytes` per second a partition delivers at `max_messages_per_s`
/// and `max_bytes_per_s`, whichever binds first.
fn messages_per_s_within(max_messages_per_s: f64, max_bytes_per_s: f64, bytes: u64) -> f64 {
    max_messages_per_s.min(max_bytes_per_s / bytes.max(1) as f64)
}

/// Messages per second one partition delivers for messages of `bytes`, at
/// the assumed limits.
pub fn partition_capacity_per_s(bytes: u64) -> f64 {
    messages_per_s_within(
        PARTITION_MAX_MESSAGES_PER_S,
        PARTITION_MAX_BYTES_PER_S,
        bytes,
    )
}

/// Messages per second one partition of `broker` delivers for messages of
/// `bytes`: at the limits the scenario states, else the assumed ones.
pub fn broker_partition_capacity_per_s(broker: &Broker, bytes: u64) -> f64 {
    messages_per_s_within(
        broker
            .partition_messages_per_s
            .unwrap_or(PARTITION_MAX_MESSAGES_PER_S),
        broker
            .partition_mb_per_s
            .map_or(PARTITION_MAX_BYTES_PER_S, |mb| mb * 1e6),
        bytes,
    )
}

/// A figure as a person would write it: "30", "2.5", "100,000", "2e-5".
fn figure(value: f64) -> String {
    if value >= 1000.0 {
        crate::report::format::thousands(value)
    } else if value > 0.0 && value < 1e-3 {
        format!("{value:e}")
    } else {
        let text = format!("{value:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A figure the scenario may state for each of `items` (name, stated value),
/// in words: one value when every item agrees, else one per item, each
/// marked "(scenario)" when stated, or "(`assumption`)" when the planner's
/// `assumed` value stands.
fn stated_or_assumed(
    items: &[(&str, Option<f64>)],
    assumed: f64,
    unit: &str,
    assumption: &str,
) -> String {
    let shown = |stated: Option<f64>| match stated {
        Some(v) => format!("{} {unit} (scenario)", figure(v)),
        None => format!("{} {unit} ({assumption})", figure(assumed)),
    };
    match items.first() {
        Some(&(_, first)) if items.iter().any(|&(_, v)| v != first) => items
            .iter()
            .map(|&(name, v)| format!("{} on `{name}`", shown(v)))
            .collect::<Vec<_>>()
            .join(", "),
        Some(&(_, first)) => shown(first),
        None => shown(None),
    }
}

/// The serving and network assumptions a report should state, in words, with
/// the figures `scenario` states where it does.
pub fn serving_notes(scenario: &Scenario) -> Vec<String> {
    let targets = &scenario.targets;
    let links: Vec<(&str, Option<f64>)> = targets
        .links
        .iter()
        .map(|l| (l.name.as_str(), l.min_rto_ms))
        .collect();
    let network = format!(
        "packet loss follows TCP: a lost packet with others behind it is recovered by fast retransmit in one RTT; a lost last packet or a lost retransmission waits for the retransmission timeout, the link's RTT p99 but at least {}, doubled at each further loss; after {} losses of one packet, or past the client's deadline, the request fails as a timeout",
        stated_or_assumed(
            &links,
            super::evaluate::RTO_MIN_S * 1000.0,
            "ms",
            "assumption: Linux's floor; a link's `min_rto_ms` sets it"
        ),
        sim::MAX_RETRANSMISSIONS
    );
    let cloud = |stated: fn(&Target) -> Option<f64>| -> Vec<(&str, Option<f64>)> {
        targets
            .cloud
            .iter()
            .map(|t| (t.spec.name.as_str(), stated(t)))
            .collect()
    };
    let broker = |stated: fn(&Broker) -> Option<f64>| -> Vec<(&str, Option<f64>)> {
        vec![("broker", targets.broker.as_ref().and_then(stated))]
    };
    let handling = format!(
        "cloud replicas spend CPU time of one core on each request besides the model, spread over the instance's physical cores: per HTTP request (parsing, (de)serialisation, response) {}; per stream message (consume, produce, commit) {}; a broker partition delivers at most {} or {} to its consumer",
        stated_or_assumed(
            &cloud(|t| t.request_cpu_us),
            HTTP_REQUEST_CPU_S * 1e6,
            "µs",
            "assumption; a cloud target's `request_cpu_us` sets it"
        ),
        stated_or_assumed(
            &cloud(|t| t.message_cpu_us),
            STREAM_MESSAGE_CPU_S * 1e6,
            "µs",
            "assumption; a cloud target's `message_cpu_us` sets it"
        ),
        stated_or_assumed(
            &broker(|b| b.partition_mb_per_s),
            PARTITION_MAX_BYTES_PER_S / 1e6,
            "MB/s",
            "assumption; the broker's `partition_mb_per_s` sets it"
        ),
        stated_or_assumed(
            &broker(|b| b.partition_messages_per_s),
            PARTITION_MAX_MESSAGES_PER_S,
            "messages/s",
            "assumption; the broker's `partition_messages_per_s` sets it"
        ),
    );
    vec![network, handling]
}

/// Physical cores of a target (its vCPUs over the threads each core runs).
pub fn physical_cores(target: &Target) -> f64 {
    let spec = &target.spec;
    (f64::from(spec.cores) / f64::from(spec.threads_per_core.max(1))).max(1.0)
}

/// The profile of a cloud replica serving requests: the model's time per batch
/// plus `cpu_per_request_s` of request handling for each request of the batch,
/// spread over the instance's physical cores.
fn with_request_handling(
    profile: ComputeProfile,
    target: &Target,
    cpu_per_request_s: f64,
) -> ComputeProfile {
    let per_request = cpu_per_request_s / physical_cores(target);
    let points = profile
        .points
        .iter()
        .map(|p| {
            let handling = per_request * f64::from(p.batch_size);
            sim::ProfilePoint {
                median_s: p.median_s + handling,
                p99_s: p.p99_s + handling,
                ..*p
            }
        })
        .collect();
    ComputeProfile { points, ..profile }
}

fn source_of(profile: &ComputeProfile) -> FigureSource {
    profile.source
}

struct Base {
    mode: Mode,
    placement: Placement,
}

impl Base {
    fn candidate(&self, target: &str, profile: &ComputeProfile) -> Candidate {
        Candidate {
            mode: self.mode,
            placement: self.placement,
            target: target.to_string(),
            fallback_target: None,
            fallback_model: None,
            replicas: 1,
            variant: profile.variant.clone(),
            backend: profile.backend,
            precision: profile.precision,
            max_batch: 1,
            max_delay_ms: 0.0,
            precompute_fraction: None,
            class_builds: Vec::new(),
        }
    }
}

/// Run the whole search.
pub fn evaluate_all(ctx: &Context<'_>, budget: &SimBudget) -> Vec<Evaluation> {
    evaluate_all_within(ctx, &SearchBudget::from(*budget))
}

/// Run the whole search, a finalist's run extended for its SLO percentile's
/// confidence interval when `budget` says so.
pub fn evaluate_all_within(ctx: &Context<'_>, budget: &SearchBudget) -> Vec<Evaluation> {
    let s = ctx.scenario;
    let mut out = Vec::new();
    for &mode in &s.search.modes {
        for &placement in &s.search.placements {
            match (mode, placement) {
                (Mode::OnlineHttp | Mode::OnlineStream, Placement::Cloud) => {
                    online_cloud(ctx, budget, mode, &mut out)
                }
                (Mode::Batch, Placement::Cloud) => batch_cloud(ctx, budget, &mut out),
                (Mode::Hybrid, Placement::Cloud) => precompute_hybrid(ctx, budget, &mut out),
                (Mode::OnlineHttp, Placement::Edge) => edge_online(ctx, budget, &mut out),
                (Mode::Batch, Placement::Edge) => edge_batch(ctx, budget, &mut out),
                (Mode::OnlineHttp, Placement::Hybrid) => edge_with_fallback(ctx, budget, &mut out),
                // Streaming through a broker, or a hybrid edge model, need the other half.
                _ => {}
            }
        }
    }
    out
}

/// In-region HTTP call from a broker consumer to the serving pool (median, p99).
const BRIDGE_HOP_S: f64 = 0.001;
const BRIDGE_HOP_P99_S: f64 = 0.005;

/// Whether requests are events on the broker that an HTTP plan must bridge.
fn bridged(ctx: &Context<'_>) -> bool {
    ctx.scenario.inputs.source == crate::scenario::InputSource::Stream
        && ctx.scenario.targets.broker.is_some()
}

/// Why the broker's partitions cannot deliver `rate` messages/s, if they cannot.
fn partitions_too_few(ctx: &Context<'_>, rate: f64) -> Option<String> {
    let broker = ctx.scenario.targets.broker.as_ref()?;
    let bytes = ctx.scenario.inputs.request_bytes;
    let per_partition = broker_partition_capacity_per_s(broker, bytes);
    let partitions = broker.partitions.max(1);
    let deliver = per_partition * f64::from(partitions);
    (rate > deliver).then(|| {
        format!(
            "{partitions} partition(s) deliver at most {deliver:.0} msg/s ({per_partition:.0}/s each for {bytes} B messages): below the peak {rate:.0} msg/s; needs at least {:.0} partitions",
            (rate / per_partition).ceil()
        )
    })
}

/// Record an evaluation; true when no more replicas are worth trying: it meets
/// every constraint (replica loops stop at the first, cheapest count that does),
/// or it fails for devices offline, which more replicas cannot change (its
/// reasons are reported as they are).
fn push_is_last(out: &mut Vec<Evaluation>, e: Evaluation) -> bool {
    let last = e.feasible() || e.offline_bound;
    out.push(e);
    last
}

/// Replica counts to simulate for one plan: `first` (sized at
/// [`TARGET_UTILISATION`]) up to `last` until one passes, and when `first`
/// passes, down to `fewest` (the fewest at or below
/// [`MAX_SEARCHED_UTILISATION`]) while they pass: the sizing is a first
/// guess, the simulation decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ReplicaRange {
    fewest: u32,
    first: u32,
    last: u32,
}

/// The highest utilisation the replica search simulates. Closer to 1 a
/// queue takes longer to settle than a simulation of 10^5 requests from an
/// empty system lasts (an M/D/1 queue at 0.97 relaxes over seconds), so its
/// p99 there depends on the seed: plans at 0.97 passed a 35 ms SLO on two
/// seeds of eight whose long-run p99 is 36-42 ms.
pub const MAX_SEARCHED_UTILISATION: f64 = 0.9;

/// Replica counts to try for the `share` of the peak traffic they serve at
/// `capacity` requests/s per replica: enough for the traffic and for that
/// share of the throughput floor. A stream's consumers are at most its
/// partitions: a consumer beyond them would get no partition and sit idle.
fn replica_range(
    ctx: &Context<'_>,
    share: f64,
    capacity: f64,
    partitions: Option<u32>,
) -> Result<ReplicaRange, String> {
    let rate = ctx.scenario.traffic.peak_rate_per_s() * share;
    let floor = ctx.throughput_floor_rps() * share;
    let search = &ctx.scenario.search;
    let lo = search.min_replicas.max(1);
    let hi = partitions
        .map_or(search.max_replicas, |p| search.max_replicas.min(p))
        .max(1);
    if lo > hi {
        return Err(format!(
            "min_replicas {lo} consumers but the broker has {hi} partition(s): a consumer without a partition sits idle"
        ));
    }
    let max_util = rate / (capacity * f64::from(hi));
    if max_util >= 1.0 {
        let consumers = if hi < search.max_replicas.max(1) {
            format!(" ({hi} partition(s): one consumer each)")
        } else {
            String::new()
        };
        return Err(format!(
            "utilisation {max_util:.2} >= 1 even with {hi} replicas{consumers} at {rate:.0} req/s"
        ));
    }
    let count = |replicas: f64| {
        if replicas.is_finite() && replicas >= 1.0 {
            (replicas.min(f64::from(u32::MAX)) as u32).clamp(lo, hi)
        } else {
            lo
        }
    };
    // The floor asks for capacity, not headroom: replicas at full utilisation.
    let for_floor = count((floor / capacity).ceil());
    let first = count((rate / (capacity * TARGET_UTILISATION)).ceil()).max(for_floor);
    Ok(ReplicaRange {
        fewest: count((rate / (capacity * MAX_SEARCHED_UTILISATION)).ceil())
            .max(for_floor)
            .min(first),
        first,
        last: (first + EXTRA_REPLICAS).min(hi),
    })
}

/// Simulates the replica counts of `range` (see [`ReplicaRange`]) through
/// `evaluate` (`None`: no plan with that count), recording each.
fn try_replicas(
    range: ReplicaRange,
    out: &mut Vec<Evaluation>,
    mut evaluate: impl FnMut(u32) -> Option<Evaluation>,
) {
    let mut first_passed = false;
    for r in range.first..=range.last {
        let Some(e) = evaluate(r) else {
            continue;
        };
        let passed = e.feasible();
        if push_is_last(out, e) {
            first_passed = passed && r == range.first;
            break;
        }
    }
    if !first_passed {
        return;
    }
    for r in (range.fewest..range.first).rev() {
        let Some(e) = evaluate(r) else {
            break;
        };
        let passed = e.feasible();
        out.push(e);
        if !passed {
            break;
        }
    }
}

fn online_cloud(ctx: &Context<'_>, budget: &SearchBudget, mode: Mode, out: &mut Vec<Evaluation>) {
    let s = ctx.scenario;
    let stream = mode == Mode::OnlineStream;
    let base = Base {
        mode,
        placement: Placement::Cloud,
    };
    let peak = s.traffic.peak_rate_per_s();
    for target in targets(ctx, false) {
        for (variant, precision) in model_configs(ctx) {
            let Some(online) = best_online(ctx, &variant, precision, &target.spec.name) else {
                continue;
            };
            let handling = if stream {
                message_cpu_s(target)
            } else {
                request_cpu_s(target)
            };
            let online = with_request_handling(online, target, handling);
            let profile = &online;
            let agreement = ctx.agreement(&variant, precision);
            let accuracy = agreement.shown();
            let mut static_reasons = static_checks(ctx, true, &agreement);
            if let Some(why) = &profile.infeasible {
                static_reasons.push(why.to_string());
            }
            if stream && s.targets.broker.is_none() {
                static_reasons.push(format!("no broker {NOT_AMONG_THE_TARGETS}"));
            }
            if stream || bridged(ctx) {
                static_reasons.extend(partitions_too_few(ctx, peak));
            }
            let fan_out = s.inputs.predictions_per_request;
            for (max_batch, delay) in batchings(ctx) {
                let mut c = base.candidate(&target.spec.name, profile);
                c.max_batch = max_batch;
                c.max_delay_ms = delay;
                // A replica holds a full batch of requests' activations.
                let inputs = u64::from(max_batch).saturating_mul(fan_out);
                let memory = instance_memory_check(ctx, target, profile, inputs);
                if !static_reasons.is_empty() || memory.is_some() {
                    let reasons: Vec<String> =
                        static_reasons.iter().cloned().chain(memory).collect();
                    out.push(with_instance_cost(
                        ctx,
                        pruned(
                            c,
                            source_of(profile),
                            accuracy,
                            profile.median_s(1),
                            reasons.join("; "),
                        ),
                        target.spec.usd_per_hour,
                    ));
                    continue;
                }
                let capacity = profile.capacity_per_s(max_batch);
                let consumers_at_most = s
                    .targets
                    .broker
                    .as_ref()
                    .filter(|_| stream)
                    .map(|b| b.partitions.max(1));
                let replicas = match replica_range(ctx, 1.0, capacity, consumers_at_most) {
                    Ok(r) => r,
                    Err(why) => {
                        c.replicas = s.search.max_replicas.max(1);
                        out.push(with_instance_cost(
                            ctx,
                            pruned(c, source_of(profile), accuracy, profile.median_s(1), why),
                            target.spec.usd_per_hour,
                        ));
                        continue;
                    }
                };
                try_replicas(replicas, out, |r| {
                    let mut c = c.clone();
                    c.replicas = r;
                    let mut path = online_path(ctx, target, profile, &c, stream)?;
                    // Events already on the broker reach an HTTP service through a bridge:
                    // one more consumer service and one more in-region hop.
                    let bridge = !stream && bridged(ctx);
                    if let (true, Some(broker)) = (bridge, ctx.broker()) {
                        path.transport = sim::Transport::Bridged(broker);
                        path.link.rtt.median_s += BRIDGE_HOP_S;
                        path.link.rtt.p99_s += BRIDGE_HOP_P99_S;
                    }
                    let plan = SimPlan {
                        mode: sim::Mode::Online(path),
                        rates: rates(target.spec.usd_per_hour, 0.0, 0.0),
                        usage: UsageExtras {
                            replicas: f64::from(r),
                            bridge_instances: if bridge { 1.0 } else { 0.0 },
                            broker_bytes_per_message: (stream || bridge)
                                .then(|| broker_bytes_per_message(s)),
                            devices_per_simulated_device: 1.0,
                            ..UsageExtras::default()
                        },
                        source: source_of(profile),
                        accuracy,
                        capacity_rps: capacity * f64::from(r),
                        rejected: Vec::new(),
                        arrival_share: 1.0,
                        device_power: None,
                    };
                    Some(simulate_candidate(ctx, c, plan, budget))
                });
            }
        }
    }
}

fn batch_cloud(ctx: &Context<'_>, budget: &SearchBudget, out: &mut Vec<Evaluation>) {
    let s = ctx.scenario;
    let base = Base {
        mode: Mode::Batch,
        placement: Placement::Cloud,
    };
    for target in targets(ctx, false) {
        for (variant, precision) in model_configs(ctx) {
            let Some(profile) = best(ctx, &variant, precision, &target.spec.name) else {
                continue;
            };
            let agreement = ctx.agreement(&variant, precision);
            let accuracy = agreement.shown();
            let mut c = base.candidate(&target.spec.name, profile);
            c.max_batch = profile.most_efficient_batch(|b| fits_instance(ctx, target, profile, b));
            let mut reasons = static_checks(ctx, true, &agreement);
            if let Some(why) = &profile.infeasible {
                reasons.push(why.to_string());
            }
            if s.targets.storage.is_none() {
                reasons.push(format!("no prediction storage {NOT_AMONG_THE_TARGETS}"));
            }
            let items = match finite_inputs(s) {
                Ok(n) => n,
                Err(why) => {
                    reasons.push(why);
                    0
                }
            };
            let per_instance = inputs_per_s(ctx, profile, c.max_batch);
            let job = match job_or_reasons(
                ctx,
                reasons,
                items,
                per_instance,
                s.search.max_replicas,
                target.spec.cold_start_ms / 1000.0,
            ) {
                Ok(job) => job,
                Err(why) => {
                    out.push(pruned(c, source_of(profile), accuracy, 0.0, why));
                    continue;
                }
            };
            c.replicas = super::evaluate::job_instances(&job);
            let storage_price = s
                .targets
                .storage
                .as_ref()
                .map_or(0.0, |x| x.usd_per_gb_month);
            let plan = SimPlan {
                mode: sim::Mode::BatchLookup(lookup_path(ctx, Some(target), &job)),
                rates: rates(0.0, target.spec.usd_per_hour, storage_price),
                usage: UsageExtras {
                    batch_job: Some(job),
                    devices_per_simulated_device: 1.0,
                    ..UsageExtras::default()
                },
                source: source_of(profile),
                accuracy,
                capacity_rps: f64::INFINITY,
                rejected: Vec::new(),
                arrival_share: 1.0,
                device_power: None,
            };
            out.push(simulate_candidate(ctx, c, plan, budget));
        }
    }
}

/// Bytes a request moves through the broker: its request and its answer,
/// once per pair of hops (two hops, a topic in and a topic out, carry each
/// once; four hops re-publish each once more).
pub fn broker_bytes_per_message(s: &Scenario) -> f64 {
    let hops = s.targets.broker.as_ref().map_or(2, |b| b.hops.max(1));
    (s.inputs.request_bytes + s.inputs.response_bytes) as f64 * f64::from(hops) / 2.0
}

/// Distinct inputs one instance precomputes per second at `batch`: each
/// needs the scenario's `predictions_per_request` (a feed key's 100
/// restaurant scores), all read back in one lookup.
fn inputs_per_s(ctx: &Context<'_>, profile: &ComputeProfile, batch: u32) -> f64 {
    profile.capacity_per_s(batch) / ctx.scenario.inputs.predictions_per_request.max(1) as f64
}

/// The periodic job of a batch plan, or every reason it cannot run, joined:
/// the checks already failed and why the job itself cannot be planned.
fn job_or_reasons(
    ctx: &Context<'_>,
    mut reasons: Vec<String>,
    items: u64,
    per_instance: f64,
    max_instances: u32,
    startup_s: f64,
) -> Result<sim::BatchJobPlan, String> {
    // The job's own limits (freshness, too many inputs for the period) hold for
    // every plan of the mode, so they are named even when another reason
    // already rules this plan out: "why not batch" must not blame accuracy
    // alone when no batch job could keep up. No inputs: nothing to precompute
    // (the reason is already given).
    if items > 0 {
        match batch_job(ctx, items, per_instance, max_instances, startup_s) {
            Ok(job) if reasons.is_empty() => return Ok(job),
            Ok(_) => {}
            Err(why) => reasons.push(why),
        }
    }
    Err(reasons.join("; "))
}

fn precompute_hybrid(ctx: &Context<'_>, budget: &SearchBudget, out: &mut Vec<Evaluation>) {
    let s = ctx.scenario;
    let base = Base {
        mode: Mode::Hybrid,
        placement: Placement::Cloud,
    };
    let batchings = batchings(ctx);
    let fan_out = s.inputs.predictions_per_request;
    for target in targets(ctx, false) {
        for (variant, precision) in model_configs(ctx) {
            let Some(profile) = best(ctx, &variant, precision, &target.spec.name) else {
                continue;
            };
            // Misses are served online, each needing the scenario's fan-out of predictions.
            let online_profile =
                with_request_handling(profile.per_request(fan_out), target, request_cpu_s(target));
            let agreement = ctx.agreement(&variant, precision);
            let accuracy = agreement.shown();
            let mut reasons = static_checks(ctx, true, &agreement);
            if let Some(why) = &profile.infeasible {
                reasons.push(why.to_string());
            }
            if s.targets.storage.is_none() {
                reasons.push(format!("no prediction storage {NOT_AMONG_THE_TARGETS}"));
            }
            let items = match finite_inputs(s) {
                Ok(n) => n,
                Err(why) => {
                    reasons.push(why);
                    0
                }
            };
            for fraction in PRECOMPUTE_FRACTIONS {
                let mut c = base.candidate(&target.spec.name, profile);
                c.precompute_fraction = Some(fraction);
                let cached = ((items as f64) * fraction).ceil() as u64;
                let job = match job_or_reasons(
                    ctx,
                    reasons.clone(),
                    cached,
                    inputs_per_s(
                        ctx,
                        profile,
                        profile.most_efficient_batch(|b| fits_instance(ctx, target, profile, b)),
                    ),
                    s.search.max_replicas,
                    target.spec.cold_start_ms / 1000.0,
                ) {
                    Ok(j) => j,
                    Err(why) => {
                        out.push(with_instance_cost(
                            ctx,
                            pruned(c, source_of(profile), accuracy, 0.0, why),
                            target.spec.usd_per_hour,
                        ));
                        continue;
                    }
                };
                let hit = match sim::zipf_hit_rate(items, cached, s.inputs.zipf_exponent) {
                    Ok(h) => h,
                    Err(e) => {
                        out.push(with_instance_cost(
                            ctx,
                            pruned(c, source_of(profile), accuracy, 0.0, e.to_string()),
                            target.spec.usd_per_hour,
                        ));
                        continue;
                    }
                };
                // Misses may be too few to fill the largest batch before its
                // delay: every batching is tried.
                for &(max_batch, delay) in &batchings {
                    let mut c = c.clone();
                    c.max_batch = max_batch;
                    c.max_delay_ms = delay;
                    let capacity = online_profile.capacity_per_s(max_batch);
                    let inputs = u64::from(max_batch).saturating_mul(fan_out);
                    // A replica that cannot hold the batch rules the batching out.
                    let fits = instance_memory_check(ctx, target, &online_profile, inputs)
                        .map_or(Ok(()), Err);
                    let replicas =
                        match fits.and_then(|()| replica_range(ctx, 1.0 - hit, capacity, None)) {
                            Ok(r) => r,
                            Err(why) => {
                                out.push(with_instance_cost(
                                    ctx,
                                    pruned(c, source_of(profile), accuracy, 0.0, why),
                                    target.spec.usd_per_hour,
                                ));
                                continue;
                            }
                        };
                    let storage_price = s
                        .targets
                        .storage
                        .as_ref()
                        .map_or(0.0, |x| x.usd_per_gb_month);
                    try_replicas(replicas, out, |r| {
                        let mut c = c.clone();
                        c.replicas = r;
                        let online = online_path(ctx, target, &online_profile, &c, false)?;
                        let plan = SimPlan {
                            mode: sim::Mode::PrecomputeHybrid {
                                lookup: lookup_path(ctx, Some(target), &job),
                                hit_rate: hit,
                                online,
                            },
                            rates: rates(
                                target.spec.usd_per_hour,
                                target.spec.usd_per_hour,
                                storage_price,
                            ),
                            usage: UsageExtras {
                                replicas: f64::from(r),
                                batch_job: Some(job),
                                devices_per_simulated_device: 1.0,
                                ..UsageExtras::default()
                            },
                            source: source_of(profile),
                            accuracy,
                            capacity_rps: capacity * f64::from(r) / (1.0 - hit).max(1e-9),
                            rejected: Vec::new(),
                            arrival_share: 1.0,
                            device_power: None,
                        };
                        Some(simulate_candidate(ctx, c, plan, budget))
                    });
                }
            }
        }
    }
}

/// Edge device classes planned together: one class (the classes are
/// alternatives) or every class of a fleet (`targets.edge_classes = "fleet"`).
struct DeviceGroup<'a> {
    /// The plan's target: the class, or the fleet's classes joined by `&`.
    name: String,
    /// Each class with the share of all requests its devices serve.
    classes: Vec<(&'a Target, f64)>,
}

impl DeviceGroup<'_> {
    /// The simulated sample of each class, running `profiles` (one per
    /// class) at `c`'s batching and serving its share of the requests.
    fn simulated_classes(
        &self,
        ctx: &Context<'_>,
        profiles: &[ComputeProfile],
        c: &Candidate,
    ) -> Vec<DeviceClass> {
        self.classes
            .iter()
            .zip(profiles)
            .map(|((device, share), profile)| {
                let (edge, arrival_share, scale) = edge_devices(ctx, device, *share, profile, c);
                DeviceClass {
                    name: device.spec.name.clone(),
                    edge,
                    arrival_share: arrival_share * share,
                    devices_per_simulated_device: scale,
                    traffic_share: *share,
                    power: DevicePower::of(&device.spec),
                    devices: device.devices(),
                    build: ClassBuildFigures {
                        model_variant: profile.variant.clone(),
                        backend: profile.backend,
                        precision: profile.precision,
                    },
                }
            })
            .collect()
    }

    /// How many inputs per second the group serves before its first class
    /// saturates, given what one device of each class does per second
    /// (`per_device`, in the order of `classes`): each class's devices get
    /// their share of the requests.
    fn capacity(&self, per_device: impl Fn(usize) -> f64) -> f64 {
        self.classes
            .iter()
            .enumerate()
            .map(|(i, (device, share))| per_device(i) * device.devices() as f64 / share.max(1e-12))
            .fold(f64::INFINITY, f64::min)
    }
}

/// The device groups edge plans run on: each searched edge class alone, or
/// the whole fleet when the classes are one (validation lets
/// `search.targets` list all of a fleet's classes or none).
fn device_groups<'a>(ctx: &'a Context<'_>) -> Vec<DeviceGroup<'a>> {
    let fleet = ctx.scenario.targets.fleet();
    if fleet.is_empty() {
        return targets(ctx, true)
            .into_iter()
            .map(|t| DeviceGroup {
                name: t.spec.name.clone(),
                classes: vec![(t, 1.0)],
            })
            .collect();
    }
    let searched = &ctx.scenario.search.targets;
    if !searched.is_empty() && !fleet.iter().all(|(t, _)| searched.contains(&t.spec.name)) {
        return Vec::new();
    }
    vec![DeviceGroup {
        name: ctx.scenario.targets.fleet_name().unwrap_or_default(),
        classes: fleet,
    }]
}

/// The profiles a group runs `variant` at `precision` with, one per class:
/// on one class its best backend; on a fleet one build for every class, the
/// backend whose slowest class is fastest by `cost` (lower is better, given
/// the profile, the class and its share of the requests). A build every
/// class's memory holds running `inputs_per_run` (see [`inputs_at_once`]) comes
/// before one that does not, whatever its speed (a backend that reuses its
/// buffers fits where a faster one may not); when none does, the plan is
/// judged on the fastest and rejected for its memory.
fn group_profiles(
    ctx: &Context<'_>,
    group: &DeviceGroup<'_>,
    (variant, precision): (&str, Precision),
    inputs_per_run: u64,
    cost: impl Fn(&ComputeProfile, &Target, f64) -> f64,
) -> Option<Vec<ComputeProfile>> {
    let fits = |p: &ComputeProfile, device: &Target| {
        ctx.fits(p, device, inputs_at_once(p, inputs_per_run))
    };
    if let [(device, _)] = group.classes[..] {
        let target = &device.spec.name;
        let allowed = &ctx.scenario.search.backends;
        return ctx
            .profiles
            .best_backend_where(variant, precision, target, allowed, |p| fits(p, device))
            .or_else(|| best(ctx, variant, precision, target))
            .map(|p| vec![p.clone()]);
    }
    // (does not fit somewhere, slowest class's cost): lower is better.
    let mut chosen: Option<((bool, f64), Vec<ComputeProfile>)> = None;
    for &backend in &ctx.scenario.search.backends {
        if !backend_allows(backend, precision) {
            continue;
        }
        let profiles: Option<Vec<ComputeProfile>> = group
            .classes
            .iter()
            .map(|(device, _)| {
                ctx.profiles
                    .find(variant, backend, precision, &device.spec.name)
                    .filter(|p| !p.points.is_empty())
                    .cloned()
            })
            .collect();
        let Some(profiles) = profiles else {
            continue;
        };
        let slowest = group
            .classes
            .iter()
            .zip(&profiles)
            .map(|((device, share), p)| cost(p, device, *share))
            .fold(f64::NEG_INFINITY, f64::max);
        let misfit = !group
            .classes
            .iter()
            .zip(&profiles)
            .all(|((device, _), p)| fits(p, device));
        let key = (misfit, slowest);
        let better = chosen
            .as_ref()
            .is_none_or(|(best, _)| key.0.cmp(&best.0).then(key.1.total_cmp(&best.1)).is_lt());
        if better {
            chosen = Some((key, profiles));
        }
    }
    chosen.map(|(_, profiles)| profiles)
}

/// A fleet's plan of `variant` at `precision` that no one build can serve
/// (a class cannot run that precision, or has no projection of it): recorded
/// as rejected with the classes named, so it does not vanish without a word.
fn no_fleet_build(
    ctx: &Context<'_>,
    group: &DeviceGroup<'_>,
    base: &Base,
    variant: &str,
    precision: Precision,
    out: &mut Vec<Evaluation>,
) {
    if group.classes.len() < 2 {
        return;
    }
    let profile = |d: &Target| best(ctx, variant, precision, &d.spec.name);
    let Some(any) = group.classes.iter().find_map(|(d, _)| profile(d)) else {
        return;
    };
    let missing: Vec<&str> = group
        .classes
        .iter()
        .filter(|(d, _)| profile(d).is_none())
        .map(|(d, _)| d.spec.name.as_str())
        .collect();
    let why = if missing.is_empty() {
        format!(
            "no one backend runs {variant} at {} on every class of the fleet",
            precision.name()
        )
    } else {
        format!(
            "{} cannot run {variant} at {}",
            missing.join(", "),
            precision.name()
        )
    };
    let c = base.candidate(&group.name, any);
    let accuracy = ctx.agreement(variant, precision).shown();
    out.push(pruned(c, source_of(any), accuracy, 0.0, why));
}

/// Why a group's devices cannot run the plan: the plan's own checks (privacy,
/// accuracy) once, then each class's (its memory for its build running
/// `inputs_per_run`, its profile's limits), named by class on a fleet.
fn group_checks(
    ctx: &Context<'_>,
    group: &DeviceGroup<'_>,
    profiles: &[ComputeProfile],
    uses_cloud: bool,
    agreement: &super::evaluate::Agreement,
    inputs_per_run: u64,
) -> Vec<String> {
    let mut reasons = static_checks(ctx, uses_cloud, agreement);
    let several = group.classes.len() > 1;
    for ((device, _), profile) in group.classes.iter().zip(profiles) {
        let batch = inputs_at_once(profile, inputs_per_run);
        let memory = memory_check(ctx, device, profile, batch);
        // The class's memory check says what the profile's "does not fit"
        // would say again (against the device alone).
        let projection = profile
            .infeasible
            .as_ref()
            .filter(|i| memory.is_none() || !matches!(i, Infeasible::DoesNotFit { .. }))
            .map(|i| i.to_string());
        for why in memory.into_iter().chain(projection) {
            reasons.push(if several {
                format!("{}: {why}", device.spec.name)
            } else {
                why
            });
        }
    }
    reasons
}

/// The slowest class's time for one request (a lower bound on the plan's latency).
fn slowest_request_s(profiles: &[ComputeProfile]) -> f64 {
    profiles.iter().map(|p| p.median_s(1)).fold(0.0, f64::max)
}

fn edge_online(ctx: &Context<'_>, budget: &SearchBudget, out: &mut Vec<Evaluation>) {
    let base = Base {
        mode: Mode::OnlineHttp,
        placement: Placement::Edge,
    };
    let fan_out = ctx.scenario.inputs.predictions_per_request;
    for group in device_groups(ctx) {
        for (variant, precision) in model_configs(ctx) {
            let request_s =
                |p: &ComputeProfile, _: &Target, _: f64| p.per_request(fan_out).median_s(1);
            let config = (variant.as_str(), precision);
            let Some(profiles) = group_profiles(ctx, &group, config, fan_out, request_s) else {
                no_fleet_build(ctx, &group, &base, &variant, precision, out);
                continue;
            };
            let profiles: Vec<ComputeProfile> =
                profiles.iter().map(|p| p.per_request(fan_out)).collect();
            let source = source_of(&profiles[0]);
            let agreement = ctx.agreement(&variant, precision);
            let accuracy = agreement.shown();
            let mut c = base.candidate(&group.name, &profiles[0]);
            let reasons = group_checks(ctx, &group, &profiles, false, &agreement, fan_out);
            if !reasons.is_empty() {
                let floor = slowest_request_s(&profiles);
                out.push(pruned(c, source, accuracy, floor, reasons.join("; ")));
                continue;
            }
            c.replicas = 1;
            let capacity_rps = group.capacity(|i| profiles[i].capacity_per_s(1));
            if let ([(device, class_share)], [profile]) = (&group.classes[..], &profiles[..]) {
                let (devices, share, scale) = edge_devices(ctx, device, *class_share, profile, &c);
                let plan = SimPlan {
                    mode: sim::Mode::Edge(devices),
                    rates: rates(0.0, 0.0, 0.0),
                    usage: UsageExtras {
                        devices_per_simulated_device: scale,
                        ..UsageExtras::default()
                    },
                    source,
                    accuracy,
                    capacity_rps,
                    rejected: Vec::new(),
                    arrival_share: share,
                    device_power: Some(DevicePower::of(&device.spec)),
                };
                out.push(simulate_candidate(ctx, c, plan, budget));
                continue;
            }
            let plan = DevicesPlan {
                classes: group.simulated_classes(ctx, &profiles, &c),
                fallback: None,
                source,
                accuracy,
                capacity_rps,
            };
            out.push(simulate_devices(ctx, c, plan, budget));
        }
        if group.classes.len() > 1 {
            tiered_online(ctx, &group, &base, budget, out);
        }
    }
}

/// The build each class of a fleet runs in its tiered plan, one profile per
/// class (per request): the build that agrees most with the reference model
/// among those the class can run whose one-request p99 there is within the
/// SLO (ties: the higher precision, then the faster). A flagship keeps the
/// full model while a mid-range phone runs what it can afford. `None` when
/// every class would run one build (a uniform plan has it) or a class has no
/// build within the SLO (every fleet plan then misses it, and the uniform
/// plans say why).
fn tiered_builds(ctx: &Context<'_>, group: &DeviceGroup<'_>) -> Option<Vec<ComputeProfile>> {
    let fan_out = ctx.scenario.inputs.predictions_per_request;
    let slo_s = ctx.scenario.objectives.latency_ms / 1000.0;
    let mut chosen: Vec<ComputeProfile> = Vec::with_capacity(group.classes.len());
    for (device, _) in &group.classes {
        // (agreement, precision rank, median s, profile): the best so far.
        let mut best: Option<(f64, u8, f64, ComputeProfile)> = None;
        for (variant, precision) in model_configs(ctx) {
            let agreement = ctx.agreement(&variant, precision);
            if !static_checks(ctx, false, &agreement).is_empty() {
                continue;
            }
            for &backend in &ctx.scenario.search.backends {
                if !backend_allows(backend, precision) {
                    continue;
                }
                let Some(profile) = ctx
                    .profiles
                    .find(&variant, backend, precision, &device.spec.name)
                    .filter(|p| !p.points.is_empty() && p.infeasible.is_none())
                    .filter(|p| ctx.fits(p, device, inputs_at_once(p, fan_out)))
                else {
                    continue;
                };
                let profile = profile.per_request(fan_out);
                if profile.p99_s(1) > slo_s {
                    continue;
                }
                let key = (
                    agreement.shown(),
                    super::precision_rank(precision),
                    profile.median_s(1),
                );
                let better = best.as_ref().is_none_or(|(a, rank, t, _)| {
                    key.0
                        .total_cmp(a)
                        .then(rank.cmp(&key.1))
                        .then(t.total_cmp(&key.2))
                        .is_gt()
                });
                if better {
                    best = Some((key.0, key.1, key.2, profile));
                }
            }
        }
        chosen.push(best?.3);
    }
    let first = chosen.first()?;
    let one_build = chosen.iter().all(|p| {
        p.variant == first.variant && p.backend == first.backend && p.precision == first.precision
    });
    (!one_build).then_some(chosen)
}

/// A fleet's tiered plan (see [`tiered_builds`]), simulated class by class
/// like the fleet's uniform plans. Its accuracy is the share-weighted
/// agreement: what a request sees on average.
fn tiered_online(
    ctx: &Context<'_>,
    group: &DeviceGroup<'_>,
    base: &Base,
    budget: &SearchBudget,
    out: &mut Vec<Evaluation>,
) {
    let Some(profiles) = tiered_builds(ctx, group) else {
        return;
    };
    // The plan's own build is that of the class serving the most requests
    // (the first such on a tie).
    let main = (0..group.classes.len())
        .rev()
        .max_by(|&a, &b| group.classes[a].1.total_cmp(&group.classes[b].1))
        .unwrap_or(0);
    let mut c = base.candidate(&group.name, &profiles[main]);
    c.class_builds = group
        .classes
        .iter()
        .zip(&profiles)
        .map(|((device, _), p)| ClassBuild {
            class: device.spec.name.clone(),
            variant: p.variant.clone(),
            backend: p.backend,
            precision: p.precision,
        })
        .collect();
    let accuracy = group
        .classes
        .iter()
        .zip(&profiles)
        .map(|((_, share), p)| share * ctx.agreement(&p.variant, p.precision).shown())
        .sum();
    let plan = DevicesPlan {
        classes: group.simulated_classes(ctx, &profiles, &c),
        fallback: None,
        source: source_of(&profiles[main]),
        accuracy,
        capacity_rps: group.capacity(|i| profiles[i].capacity_per_s(1)),
    };
    out.push(simulate_devices(ctx, c, plan, budget));
}

fn edge_batch(ctx: &Context<'_>, budget: &SearchBudget, out: &mut Vec<Evaluation>) {
    let s = ctx.scenario;
    let base = Base {
        mode: Mode::Batch,
        placement: Placement::Edge,
    };
    for group in device_groups(ctx) {
        // A job's keys follow the devices (each computes its owner's), not
        // the requests: each class with its share of the fleet's devices.
        let keys = DeviceGroup {
            name: group.name.clone(),
            classes: if group.classes.len() > 1 {
                ctx.scenario.targets.fleet_device_shares()
            } else {
                group.classes.clone()
            },
        };
        for (variant, precision) in model_configs(ctx) {
            // Activations grow with the batch: the job runs the measured
            // batch with the most inputs per second among those every
            // class's memory holds for its build (one input at a time is
            // what group_checks holds it to). A class's time for its share
            // of the keys, per key:
            let job_s = |p: &ComputeProfile, device: &Target, share: f64| {
                let b = p.most_efficient_batch(|b| ctx.fits(p, device, b));
                share / (inputs_per_s(ctx, p, b) * device.devices() as f64)
            };
            let config = (variant.as_str(), precision);
            let Some(profiles) = group_profiles(ctx, &keys, config, 1, job_s) else {
                no_fleet_build(ctx, &group, &base, &variant, precision, out);
                continue;
            };
            let fits = |b: u32| {
                keys.classes
                    .iter()
                    .zip(&profiles)
                    .all(|((device, _), p)| ctx.fits(p, device, b))
            };
            let source = source_of(&profiles[0]);
            let agreement = ctx.agreement(&variant, precision);
            let accuracy = agreement.shown();
            let mut c = base.candidate(&group.name, &profiles[0]);
            // Each class's devices compute their share of the keys at once:
            // the fleet's speed is its slowest class's (on one class, every
            // device of it together).
            let speed = |b: u32| keys.capacity(|i| inputs_per_s(ctx, &profiles[i], b));
            c.max_batch = profiles[0]
                .points
                .iter()
                .map(|p| p.batch_size)
                .filter(|&b| fits(b))
                .map(|b| (speed(b), b))
                .filter(|(rate, _)| rate.is_finite())
                .max_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
                .map_or(1, |(_, b)| b);
            let mut reasons = group_checks(ctx, &group, &profiles, false, &agreement, 1);
            let items = match finite_inputs(s) {
                Ok(n) => n,
                Err(why) => {
                    reasons.push(why);
                    0
                }
            };
            // Each device computes its share of its class's keys, a fraction
            // of a key on average (rounding each device up to whole keys had
            // made one input more than a multiple of the fleet double the
            // energy): a class is busy for its start-up and its share of the
            // keys at the speed of all its devices, and the job lasts as long
            // as its slowest class, planned as one instance of that speed.
            let busy_per_run: Vec<f64> = keys
                .classes
                .iter()
                .enumerate()
                .map(|(i, (device, share))| {
                    let devices = device.devices() as f64;
                    let speed = inputs_per_s(ctx, &profiles[i], c.max_batch) * devices;
                    device.spec.cold_start_ms / 1000.0 + share * items as f64 / speed
                })
                .collect();
            let slowest = (0..keys.classes.len())
                .max_by(|&a, &b| busy_per_run[a].total_cmp(&busy_per_run[b]))
                .unwrap_or(0);
            let (device, share) = keys.classes[slowest];
            let devices = device.devices() as f64;
            let per_instance =
                inputs_per_s(ctx, &profiles[slowest], c.max_batch) * devices / share.max(1e-12);
            let startup_s = device.spec.cold_start_ms / 1000.0;
            let job = match job_or_reasons(ctx, reasons, items, per_instance, 1, startup_s) {
                Ok(job) => job,
                Err(why) => {
                    out.push(pruned(c, source, accuracy, 0.0, why));
                    continue;
                }
            };
            // Each device's share of the month the job keeps it busy, and
            // the job's energy on every device of the fleet, per month.
            let month_s = HOURS_PER_MONTH * 3600.0;
            let busy: Vec<f64> = busy_per_run
                .iter()
                .map(|b| (job.runs_per_month * b / month_s).min(1.0))
                .collect();
            let job_energy_j: f64 = group
                .classes
                .iter()
                .zip(&busy)
                .map(|((device, _), share)| {
                    // Awake all month where it stays awake for the model.
                    let devices = device.devices() as f64;
                    month_s * DevicePower::of(&device.spec).average(*share) * devices
                })
                .sum();
            let single = group.classes.len() == 1;
            let plan = SimPlan {
                mode: sim::Mode::BatchLookup(lookup_path(ctx, None, &job)),
                rates: rates(0.0, 0.0, 0.0),
                usage: UsageExtras {
                    devices_per_simulated_device: 1.0,
                    extra_energy_j: job_energy_j,
                    // Every device runs the whole job, its share of the keys.
                    device_job_busy_share: if single { busy[0] } else { 0.0 },
                    ..UsageExtras::default()
                },
                source,
                accuracy,
                capacity_rps: f64::INFINITY,
                rejected: Vec::new(),
                arrival_share: 1.0,
                device_power: single.then(|| DevicePower::of(&group.classes[0].0.spec)),
            };
            let c_backend = c.backend;
            // The simulation serves lookups, not the job: the energy per
            // prediction is the job's, over the predictions it computes
            // (each key's `predictions_per_request`).
            let keys_per_month = job.runs_per_month * items as f64;
            let job_mj_per_prediction = (keys_per_month > 0.0)
                .then(|| ctx.per_prediction(job_energy_j / keys_per_month * 1000.0));
            let mut e = simulate_candidate(ctx, c, plan, budget);
            if e.simulated {
                e.plan.energy_mj_per_prediction = job_mj_per_prediction;
                // The job runs on the devices, not on billed instances.
                e.plan.batch_job = Some(super::evaluate::report_batch_job(&job));
            }
            if !single && e.simulated {
                // Each class draws its own power, checked against the limit;
                // every class's users read the same stored answers.
                for ((device, traffic_share), busy_share) in group.classes.iter().zip(&busy) {
                    let mut why = Vec::new();
                    let watts = check_device_power(
                        ctx,
                        DevicePower::of(&device.spec),
                        *busy_share,
                        &mut why,
                    );
                    e.rejected.extend(
                        why.into_iter()
                            .map(|r| format!("{}: {r}", device.spec.name)),
                    );
                    e.device_power_w = Some(e.device_power_w.map_or(watts, |w| w.max(watts)));
                    e.plan.device_classes.push(DeviceClassFigures {
                        target: device.spec.name.clone(),
                        devices: device.devices(),
                        traffic_share: *traffic_share,
                        latency_ms: e.plan.latency_ms,
                        average_power_w: watts,
                        slo_latency_ms: e.slo_latency_ms,
                        build: Some(ClassBuildFigures {
                            model_variant: variant.clone(),
                            backend: c_backend,
                            precision,
                        }),
                    });
                }
            }
            out.push(e);
        }
    }
}

fn edge_with_fallback(ctx: &Context<'_>, budget: &SearchBudget, out: &mut Vec<Evaluation>) {
    let s = ctx.scenario;
    let base = Base {
        mode: Mode::OnlineHttp,
        placement: Placement::Hybrid,
    };
    let reference = s
        .model
        .reference_variant()
        .map_or_else(String::new, |v| v.name.clone());
    // The fallback's cloud share may be too light to fill a batch before its
    // delay: every batching is tried, unbatched among them.
    let batchings = batchings(ctx);
    let fan_out = s.inputs.predictions_per_request;
    for group in device_groups(ctx) {
        let uplink = group
            .classes
            .iter()
            .filter(|(device, _)| device.link.is_some())
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(device, _)| *device);
        for (variant, precision) in model_configs(ctx) {
            // The small model runs on the device; the reference serves the fallback.
            if variant == reference && s.model.variants.len() > 1 {
                continue;
            }
            let request_s =
                |p: &ComputeProfile, _: &Target, _: f64| p.per_request(fan_out).median_s(1);
            let config = (variant.as_str(), precision);
            let Some(edge_profiles) = group_profiles(ctx, &group, config, fan_out, request_s)
            else {
                continue;
            };
            let edge_profiles: Vec<ComputeProfile> = edge_profiles
                .iter()
                .map(|p| p.per_request(fan_out))
                .collect();
            let edge_profile = &edge_profiles[0];
            let fallback = s
                .model
                .variants
                .iter()
                .find(|v| v.name == variant)
                .and_then(|v| v.fallback_fraction)
                .unwrap_or(DEFAULT_FALLBACK_FRACTION);
            for cloud in targets(ctx, false) {
                let Some(cloud_online) =
                    best_online(ctx, &reference, Precision::F32, &cloud.spec.name)
                        .or_else(|| best_online(ctx, &reference, precision, &cloud.spec.name))
                else {
                    continue;
                };
                let cloud_online = with_request_handling(cloud_online, cloud, request_cpu_s(cloud));
                let cloud_profile = &cloud_online;
                // Deferred inputs are the small model's least confident ones, where
                // its disagreements concentrate (see errors_caught_by_deferral).
                // Offline, nothing is deferred.
                let cloud_share = fallback * (1.0 - s.constraints.offline_fraction);
                let mut agreement = ctx.agreement(&variant, precision);
                let cloud_agreement = ctx.agreement(&reference, cloud_profile.precision);
                // Unknown if either model's agreement is unknown.
                agreement.combined =
                    agreement
                        .value()
                        .zip(cloud_agreement.value())
                        .map(|(small, cloud)| {
                            let caught = errors_caught_by_deferral(1.0 - small, cloud_share);
                            (small + caught * cloud).min(1.0)
                        });
                let accuracy = agreement.shown();
                let mut c = base.candidate(&group.name, edge_profile);
                c.fallback_target = Some(cloud.spec.name.clone());
                c.fallback_model = Some(FallbackModel {
                    variant: cloud_profile.variant.clone(),
                    backend: cloud_profile.backend,
                    precision: cloud_profile.precision,
                });
                let mut reasons =
                    group_checks(ctx, &group, &edge_profiles, true, &agreement, fan_out);
                reasons.extend(cloud_profile.infeasible.as_ref().map(|i| i.to_string()));
                if !reasons.is_empty() {
                    out.push(with_instance_cost(
                        ctx,
                        pruned(
                            c,
                            source_of(edge_profile),
                            accuracy,
                            slowest_request_s(&edge_profiles),
                            reasons.join("; "),
                        ),
                        cloud.spec.usd_per_hour,
                    ));
                    continue;
                }
                for &(max_batch, delay) in &batchings {
                    let mut c = c.clone();
                    c.max_batch = max_batch;
                    c.max_delay_ms = delay;
                    let capacity = cloud_profile.capacity_per_s(max_batch);
                    let inputs = u64::from(max_batch).saturating_mul(fan_out);
                    // A replica that cannot hold the batch rules the batching out.
                    let fits = instance_memory_check(ctx, cloud, cloud_profile, inputs)
                        .map_or(Ok(()), Err);
                    let replicas =
                        match fits.and_then(|()| replica_range(ctx, cloud_share, capacity, None)) {
                            Ok(r) => r,
                            Err(why) => {
                                out.push(with_instance_cost(
                                    ctx,
                                    pruned(c, source_of(edge_profile), accuracy, 0.0, why),
                                    cloud.spec.usd_per_hour,
                                ));
                                continue;
                            }
                        };
                    try_replicas(replicas, out, |r| {
                        let mut c = c.clone();
                        c.replicas = r;
                        let mut online = online_path(ctx, cloud, cloud_profile, &c, false)?;
                        // The device reaches the cloud over its own uplink
                        // (the busiest class's, when classes name different
                        // ones); the cloud's link is its other clients'.
                        if let Some(device) = uplink {
                            online.link = ctx.link(device);
                        }
                        // While offline the device's own answer stands: no failure, no fallback.
                        online.link.offline = sim::Offline::Never;
                        let mut local = c.clone();
                        local.max_batch = 1;
                        local.max_delay_ms = 0.0;
                        let plan = DevicesPlan {
                            classes: group.simulated_classes(ctx, &edge_profiles, &local),
                            fallback: Some(CloudFallback {
                                online,
                                cloud_share,
                                rates: rates(cloud.spec.usd_per_hour, 0.0, 0.0),
                                replicas: r,
                            }),
                            source: FigureSource::Projected,
                            accuracy,
                            capacity_rps: capacity * f64::from(r) / cloud_share.max(1e-9),
                        };
                        Some(simulate_devices(ctx, c, plan, budget))
                    });
                }
            }
        }
    }
}

/// The end of the reason given to a plan that needs what the scenario's
/// targets do not offer (a broker, prediction storage).
pub const NOT_AMONG_THE_TARGETS: &str = "among the targets";

/// Backends allowed for a precision: quantized storage needs the quantized backend.
pub fn backend_allows(backend: BackendKind, precision: Precision) -> bool {
    match precision {
        Precision::F32 => backend != BackendKind::Quantized,
        _ => backend == BackendKind::Quantized,
    }
}

/// The same candidate simulated again with another budget (e.g. more requests for
/// the reported figures). `None` if the search no longer produces it.
pub fn reevaluate(ctx: &Context<'_>, c: &Candidate, budget: &SimBudget) -> Option<Evaluation> {
    reevaluate_within(ctx, c, &SearchBudget::from(*budget))
}

/// [`reevaluate`] with a [`SearchBudget`]: a finalist's run extended for its
/// SLO percentile's confidence interval.
pub fn reevaluate_within(
    ctx: &Context<'_>,
    c: &Candidate,
    budget: &SearchBudget,
) -> Option<Evaluation> {
    let only: std::collections::BTreeSet<String> = [c.family()].into_iter().collect();
    let narrowed = Context {
        scenario: ctx.scenario,
        profiles: ctx.profiles,
        only: Some(&only),
        cancel: ctx.cancel,
    };
    let id = c.id();
    evaluate_all_within(&narrowed, budget)
        .into_iter()
        .find(|e| e.plan.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_as_written() {
        assert_eq!(figure(HTTP_REQUEST_CPU_S * 1e6), "30");
        assert_eq!(figure(2.5), "2.5");
        assert_eq!(figure(0.125), "0.125");
        assert_eq!(figure(2e-5), "2e-5");
        assert_eq!(figure(0.0), "0");
        assert_eq!(figure(PARTITION_MAX_MESSAGES_PER_S), "100,000");
    }

    #[test]
    fn a_stated_figure_is_told_from_an_assumed_one() {
        let assumed = "assumption; `k` sets it";
        // nothing to state it on, or nobody states it: the assumption
        assert_eq!(
            stated_or_assumed(&[], 30.0, "µs", assumed),
            "30 µs (assumption; `k` sets it)"
        );
        assert_eq!(
            stated_or_assumed(&[("a", None), ("b", None)], 30.0, "µs", assumed),
            "30 µs (assumption; `k` sets it)"
        );
        // everyone states the same: said once
        assert_eq!(
            stated_or_assumed(&[("a", Some(50.0)), ("b", Some(50.0))], 30.0, "µs", assumed),
            "50 µs (scenario)"
        );
        // they differ: one figure per item, each with where it comes from
        assert_eq!(
            stated_or_assumed(&[("a", Some(50.0)), ("b", None)], 30.0, "µs", assumed),
            "50 µs (scenario) on `a`, 30 µs (assumption; `k` sets it) on `b`"
        );
    }
}
