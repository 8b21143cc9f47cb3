//! Staleness of precomputed answers is a property of the refresh cycle: a
//! lookup at a uniformly random time in the steady-state cycle sees data
//! scored between one job's start and its publication, so the mean age is
//! (period + duration) / 2 and the maximum period + duration, whatever the
//! simulated window's length and position (it is seconds to days long and
//! starts at t = 0, while the cycle is hours to days).

mod common;

use std::collections::BTreeMap;

use workbench::sim::{
    plan_batch_job, simulate, ArrivalProcess, Balancer, BatchJobConfig, Batching, InputSpace,
    JobSchedule, LatencyFit, LookupPath, Mode, NetworkLink, OnlinePath, Payload, RunControl,
    ServiceTime, ServingPool, SimConfig, SimOutcome, Transport,
};

/// The nightly scenario the bug was found on: a 12 h period, a 237 s job.
const NIGHTLY: JobSchedule = JobSchedule {
    period_s: 43_200.0,
    duration_s: 237.0,
};

fn lookup(job: JobSchedule) -> LookupPath {
    LookupPath {
        link: None,
        lookup: LatencyFit {
            median_s: 0.002,
            p99_s: 0.008,
        },
        job,
    }
}

fn online() -> OnlinePath {
    OnlinePath {
        link: NetworkLink::simple(LatencyFit::constant(0.010), f64::INFINITY),
        transport: Transport::Http,
        pool: ServingPool {
            replicas: 2,
            balancer: Balancer::LeastOutstanding,
            batching: Batching::NONE,
            service: ServiceTime::Deterministic { seconds: 0.002 },
            queue_capacity: 10_000,
            cold_start: None,
            autoscale: None,
        },
    }
}

/// About 2,000 requests over `duration_s`, measured after `warmup_s`.
fn config(mode: Mode, duration_s: f64, warmup_s: f64) -> SimConfig {
    SimConfig {
        seed: 7,
        arrivals: ArrivalProcess::Poisson {
            rate_per_s: 2_000.0 / duration_s,
        },
        payload: Payload {
            request_bytes: 200,
            response_bytes: 100,
        },
        timeout_s: Some(1.0),
        mode,
        run: RunControl {
            duration_s,
            max_requests: None,
            warmup_s,
            early_stop: None,
        },
    }
}

fn staleness(o: &SimOutcome) -> (f64, f64) {
    let s = o.staleness.expect("a plan with lookups reports staleness");
    assert!(s.served > 0, "some lookups answered");
    (s.mean_age_s, s.max_age_s)
}

fn assert_close(what: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= 1e-6 * want,
        "{what}: got {got:.1} s, want {want:.1} s"
    );
}

/// Windows of 10 s, 1 h and 2 days (which covers four whole cycles and a
/// fraction), measured from their start or after a warm-up.
const WINDOWS: [(f64, f64); 5] = [
    (10.0, 0.0),
    (10.0, 5.0),
    (3_600.0, 0.0),
    (3_600.0, 1_800.0),
    (172_800.0, 50_000.0),
];

#[test]
fn batch_staleness_is_the_cycle_mean_whatever_the_window() {
    let mean = (NIGHTLY.period_s + NIGHTLY.duration_s) / 2.0;
    let max = NIGHTLY.period_s + NIGHTLY.duration_s;
    for (duration_s, warmup_s) in WINDOWS {
        let o = simulate(&config(
            Mode::BatchLookup(lookup(NIGHTLY)),
            duration_s,
            warmup_s,
        ))
        .expect("valid");
        let what = format!("window {duration_s} s after {warmup_s} s");
        let (got_mean, got_max) = staleness(&o);
        assert_close(&format!("{what}: mean"), got_mean, mean);
        assert_close(&format!("{what}: max"), got_max, max);
    }
}

#[test]
fn the_precomputed_part_of_a_hybrid_follows_the_same_rule() {
    let job = JobSchedule {
        period_s: 1_800.0,
        duration_s: 90.0,
    };
    for (duration_s, warmup_s) in [(10.0, 0.0), (3_600.0, 600.0)] {
        let hybrid = Mode::PrecomputeHybrid {
            lookup: lookup(job),
            hit_rate: 0.6,
            online: online(),
        };
        let o = simulate(&config(hybrid, duration_s, warmup_s)).expect("valid");
        let s = o.staleness.expect("the lookup part reports staleness");
        // only the precomputed answers count, and only those answered
        assert_eq!(s.served, o.paths.lookup);
        let (got_mean, got_max) = staleness(&o);
        assert_close("hybrid mean", got_mean, 945.0);
        assert_close("hybrid max", got_max, 1_890.0);
    }
}

#[test]
fn the_simulated_figure_agrees_with_the_job_plan() {
    // a 12 h period, 2.4 M inputs at 10,000/s: a 240 s run plus 60 s startup
    let plan = plan_batch_job(&BatchJobConfig {
        input_space: InputSpace::Finite { items: 2_400_000 },
        throughput_per_instance_per_s: 10_000.0,
        instances: 1,
        period_s: 43_200.0,
        startup_s: 60.0,
        prediction_bytes: 64,
    })
    .expect("feasible");
    assert_close("plan mean", plan.mean_staleness_s, 21_750.0);
    assert_close("plan max", plan.max_staleness_s, 43_500.0);
    let o = simulate(&config(Mode::BatchLookup(lookup(plan.schedule)), 30.0, 0.0)).expect("valid");
    let (mean, max) = staleness(&o);
    assert_close("simulated mean", mean, plan.mean_staleness_s);
    assert_close("simulated max", max, plan.max_staleness_s);
}

#[test]
fn a_job_that_runs_the_whole_period_is_a_period_old_on_average() {
    // back-to-back runs: scored over one period, served for the next
    let job = JobSchedule {
        period_s: 600.0,
        duration_s: 600.0,
    };
    let o = simulate(&config(Mode::BatchLookup(lookup(job)), 10.0, 0.0)).expect("valid");
    let (mean, max) = staleness(&o);
    assert_close("mean", mean, 600.0);
    assert_close("max", max, 1_200.0);
}

/// The figure a report shows: every batch or hybrid plan of a nightly
/// scenario (freshness one day) and of an hourly hybrid one reports a mean
/// age of at most half the freshness (no answer is older than the
/// freshness, and the mean of a cycle is half its maximum), the same
/// whatever the traffic (a lower rate simulates a longer window, which used
/// to move the figure).
#[test]
fn planned_staleness_does_not_depend_on_the_simulated_traffic() {
    let staleness = |s: &workbench::scenario::Scenario| -> BTreeMap<String, f64> {
        common::plan_quickly(s, 0.99)
            .evaluations
            .iter()
            .filter(|e| e.simulated)
            .filter_map(|e| Some((e.plan.id.clone(), e.plan.staleness_s?)))
            .collect()
    };
    for name in ["hotel-ranking", "restaurant-recs-hybrid"] {
        let busy = common::load(name);
        let freshness_s = busy.inputs.freshness_s;
        let mut quiet = busy.clone();
        quiet.traffic.rate_per_s /= 100.0;
        let (a, b) = (staleness(&busy), staleness(&quiet));
        assert!(!a.is_empty(), "{name}: some precomputed plans simulated");
        for (id, age) in &a {
            assert!(
                *age > 0.0 && *age <= freshness_s / 2.0,
                "{id}: {age} s for a freshness of {freshness_s} s"
            );
            if let Some(other) = b.get(id) {
                assert_eq!(age, other, "{id}: depends on the traffic");
            }
        }
        assert!(
            a.keys().any(|id| b.contains_key(id)),
            "{name}: plans in common"
        );
    }
}
