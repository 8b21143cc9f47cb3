//! Bursty traffic: a plan's figures that rest on the busy share must not be
//! seed noise. The simulated requests arrive in a burst or two while the run
//! spans however many on/off cycles the seed draws, so busy time over the
//! run's length read anything from a tenth to nearly all of the busy share
//! while a burst is on. Utilisation is the busy share at the peak (on) rate; the
//! month-scale figures (average device power, edge energy) follow the mean.

mod common;

use common::{load, synthetic_profiles_with};
use workbench::plan::evaluate::{Context, Evaluation, SimBudget, ENERGY_USD_PER_KWH};
use workbench::plan::search::{evaluate_all, physical_cores, request_cpu_s};
use workbench::plan::ProfileSet;
use workbench::scenario::{Scenario, Target};
use workbench::sim::{
    cost, lognormal_params, simulate, ArrivalProcess, Batching, EdgeDevices, Mode, Payload,
    RunControl, ServiceTime, SimConfig,
};

const SEEDS: std::ops::Range<u64> = 0..8;
const REQUESTS: u64 = 20_000;

/// Mean of the lognormal service time the simulator draws for a median and p99.
fn mean_service_s(median_s: f64, p99_s: f64) -> f64 {
    let (mu, sigma) = lognormal_params(median_s, p99_s);
    (mu + sigma * sigma / 2.0).exp()
}

/// The model's (median, p99) at batch 1, variant `small` in tiled f32 on `target`.
fn model_time_s(profiles: &ProfileSet, target: &str) -> (f64, f64) {
    let p = profiles
        .profiles
        .iter()
        .find(|p| p.target == target && p.variant == "small" && p.backend.name() == "tiled")
        .unwrap_or_else(|| panic!("no tiled profile for {target}"));
    let first = p.points[0];
    assert_eq!(first.batch_size, 1);
    (first.median_s, first.p99_s)
}

/// Every simulated plan of `family` (an id with replicas `x0`), one run per seed.
fn runs(s: &Scenario, profiles: &ProfileSet, family: &str) -> Vec<Vec<Evaluation>> {
    let only = [family.to_string()].into_iter().collect();
    let ctx = Context {
        scenario: s,
        profiles,
        only: Some(&only),
        cancel: None,
    };
    SEEDS
        .map(|seed| {
            let budget = SimBudget {
                requests: REQUESTS,
                seed,
            };
            let simulated: Vec<Evaluation> = evaluate_all(&ctx, &budget)
                .into_iter()
                .filter(|e| e.simulated)
                .collect();
            assert!(!simulated.is_empty(), "seed {seed}: no plan of {family}");
            simulated
        })
        .collect()
}

/// Why `figures` are not all within `tolerance` (relative) of `expected`, if so.
fn off(what: &str, figures: &[f64], expected: f64, tolerance: f64) -> Option<String> {
    let lo = figures.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = figures.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let near = |f: &f64| (f / expected - 1.0).abs() <= tolerance;
    (figures.is_empty() || !figures.iter().all(near)).then(|| {
        format!(
            "{what}: expected {expected:.6e} within {}%, got {lo:.6e}..{hi:.6e} over seeds: {figures:?}",
            tolerance * 100.0
        )
    })
}

fn target<'a>(s: &'a Scenario, name: &str) -> &'a Target {
    s.targets
        .cloud
        .iter()
        .chain(&s.targets.edge)
        .find(|t| t.spec.name == name)
        .unwrap_or_else(|| panic!("no target {name}"))
}

/// The estimate is busy time per simulated request (a mean over the
/// requests: lognormal service times with sigma ~0.11, so over 20,000
/// requests its standard error is ~0.08%) times a rate: 2% is some twenty
/// standard errors, yet well below the old figures' errors (utilisation low
/// by up to 92% over these seeds; device power high by up to 5%, busy time of the
/// warm-up's requests scaled by the rate measured after it).
const TOLERANCE: f64 = 0.02;

#[test]
fn cloud_utilisation_is_the_busy_share_at_the_peak_rate_whatever_the_seed() {
    // predictive-text's bursts (5 s typing, 20 s reading) served from the
    // cloud at a rate a few replicas serve; no device offline, so every
    // request reaches the pool.
    let mut s = load("predictive-text");
    s.constraints.data_may_leave_device = true;
    s.constraints.offline_fraction = 0.0;
    s.traffic.rate_per_s = 2_000.0;
    let profiles = synthetic_profiles_with(&s, 0.6, 0.995);
    let name = "aws-c7i.xlarge";
    let cloud = target(&s, name);
    let (median, p99) = model_time_s(&profiles, name);
    // what the planner adds per request: request handling spread over the cores
    let handling = request_cpu_s(cloud) / physical_cores(cloud);
    let service_s = mean_service_s(median + handling, p99 + handling);
    let peak = s.traffic.peak_rate_per_s();
    let by_seed = runs(
        &s,
        &profiles,
        &format!("online-http/cloud/{name}/x0/small/tiled-f32/b1-d0"),
    );
    let replica_counts: std::collections::BTreeSet<u32> =
        by_seed.iter().flatten().map(|e| e.plan.replicas).collect();
    let mut wrong = Vec::new();
    for replicas in replica_counts {
        let figures: Vec<f64> = by_seed
            .iter()
            .flatten()
            .filter(|e| e.plan.replicas == replicas)
            .map(|e| e.plan.utilisation)
            .collect();
        let expected = peak * service_s / f64::from(replicas);
        assert!(expected < 0.9, "{replicas} replicas: {expected}");
        wrong.extend(off(
            &format!("utilisation, {replicas} replicas"),
            &figures,
            expected,
            TOLERANCE,
        ));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn edge_utilisation_is_at_the_peak_and_device_power_at_the_mean_whatever_the_seed() {
    // The flagships alone (as an alternative), at their own per-device rate.
    let mut s = load("predictive-text");
    s.targets.edge_classes = workbench::scenario::EdgeClasses::Alternatives;
    let profiles = synthetic_profiles_with(&s, 0.6, 0.995);
    let name = "phone-flagship";
    let device = target(&s, name);
    let (median, p99) = model_time_s(&profiles, name);
    let service_s = mean_service_s(median, p99);
    // each device sees its own share of the traffic
    let per_device = |rate: f64| rate / device.fleet_size.unwrap_or(1) as f64;
    let by_seed = runs(
        &s,
        &profiles,
        &format!("online-http/edge/{name}/x0/small/tiled-f32/b1-d0"),
    );
    let plans: Vec<&Evaluation> = by_seed.iter().flatten().collect();
    assert_eq!(plans.len(), SEEDS.count());
    let utilisation: Vec<f64> = plans.iter().map(|e| e.plan.utilisation).collect();
    let mut wrong = Vec::new();
    wrong.extend(off(
        "edge utilisation",
        &utilisation,
        per_device(s.traffic.peak_rate_per_s()) * service_s,
        TOLERANCE,
    ));
    let power: Vec<f64> = plans.iter().filter_map(|e| e.device_power_w).collect();
    assert_eq!(power.len(), plans.len());
    wrong.extend(off(
        "average device power (W)",
        &power,
        device.spec.power_watts * per_device(s.traffic.rate_per_s) * service_s,
        TOLERANCE,
    ));
    // energy per prediction is busy power x service time (batch 1)
    let energy: Vec<f64> = plans
        .iter()
        .filter_map(|e| e.plan.energy_mj_per_prediction)
        .collect();
    wrong.extend(off(
        "energy per prediction (mJ)",
        &energy,
        device.spec.power_watts * service_s * 1000.0,
        TOLERANCE,
    ));
    // a month of the fleet's busy energy at the mean rate, priced (an edge
    // plan pays nothing else)
    let monthly_usd: Vec<f64> = plans.iter().map(|e| e.plan.cost_usd_per_month).collect();
    let busy_j_per_month =
        device.spec.power_watts * service_s * s.traffic.rate_per_s * cost::HOURS_PER_MONTH * 3600.0;
    wrong.extend(off(
        "edge energy, $/month",
        &monthly_usd,
        busy_j_per_month / 3.6e6 * ENERGY_USD_PER_KWH,
        TOLERANCE,
    ));
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The simulator's own figure, on a queue simple enough to know it exactly:
/// four devices, 10 ms per request, bursts at 200/s (half the devices' time
/// while on) of 1 s on average, pauses of 4 s (a mean rate of 40/s).
#[test]
fn the_busy_share_at_a_rate_is_work_per_request_times_the_rate() {
    let config = |arrivals: ArrivalProcess, seed: u64| SimConfig {
        seed,
        arrivals,
        payload: Payload {
            request_bytes: 100,
            response_bytes: 100,
        },
        timeout_s: Some(1.0),
        mode: Mode::Edge(EdgeDevices {
            devices: 4,
            batching: Batching::NONE,
            service: ServiceTime::Deterministic { seconds: 0.010 },
            queue_capacity: 1_000,
            busy_power_w: 2.0,
            idle_power_w: 0.0,
            throttling: None,
        }),
        run: RunControl {
            duration_s: 1_000.0,
            max_requests: Some(2_000),
            warmup_s: 0.5,
            early_stop: None,
        },
    };
    let bursts = ArrivalProcess::BurstyOnOff {
        on_rate_per_s: 200.0,
        off_rate_per_s: 0.0,
        mean_on_s: 1.0,
        mean_off_s: 4.0,
    };
    for seed in SEEDS {
        let o = simulate(&config(bursts.clone(), seed)).expect("valid config");
        let devices = o.edge.as_ref().expect("an edge pool");
        // every request is served and costs exactly 10 ms of one device
        assert_eq!(devices.served, o.simulated_requests);
        let at = |rate: f64| o.busy_share_at(devices, rate);
        assert!((at(200.0) - 0.5).abs() < 1e-9, "seed {seed}: {}", at(200.0));
        assert!((at(40.0) - 0.1).abs() < 1e-9, "seed {seed}: {}", at(40.0));
        // past saturation: a share, at most 1
        assert_eq!(at(1_000.0), 1.0);
    }
    // at a steady rate the two agree (all but the last request's drain)
    let o =
        simulate(&config(ArrivalProcess::Constant { rate_per_s: 200.0 }, 1)).expect("valid config");
    let devices = o.edge.as_ref().expect("an edge pool");
    let relative = o.busy_share_at(devices, 200.0) / devices.mean_utilisation - 1.0;
    assert!(relative.abs() < 0.01, "{relative}");
}
