//! A scenario's clients are a fleet of devices: at any moment its offline
//! share of them is offline, each on its own schedule. A request that needs the
//! network then finds its device offline with that probability, from the first
//! request of a short run on; on-device work is unaffected.

use workbench::sim::{
    simulate, ArrivalProcess, Balancer, Batching, EdgeDevices, JobSchedule, LatencyFit, LookupPath,
    Mode, NetworkLink, Offline, OfflinePolicy, OnlinePath, Payload, RunControl, ServiceTime,
    ServingPool, SimConfig, SimOutcome, Transport,
};

fn link(offline_fraction: f64) -> NetworkLink {
    let mut l = NetworkLink::simple(
        LatencyFit {
            median_s: 0.050,
            p99_s: 0.200,
        },
        10e6,
    );
    l.offline = Offline::Fleet {
        offline_fraction,
        mean_offline_s: 120.0,
    };
    l
}

fn online(link: NetworkLink) -> OnlinePath {
    OnlinePath {
        link,
        transport: Transport::Http,
        pool: ServingPool {
            replicas: 2,
            balancer: Balancer::LeastOutstanding,
            batching: Batching::NONE,
            service: ServiceTime::Deterministic { seconds: 0.001 },
            queue_capacity: 10_000,
            cold_start: None,
            autoscale: None,
        },
    }
}

fn config(mode: Mode) -> SimConfig {
    SimConfig {
        seed: 5,
        arrivals: ArrivalProcess::Poisson { rate_per_s: 500.0 },
        payload: Payload {
            request_bytes: 512,
            response_bytes: 128,
        },
        timeout_s: Some(2.0),
        mode,
        // far shorter than one device's offline period (two minutes)
        run: RunControl {
            duration_s: 20.0,
            max_requests: None,
            warmup_s: 1.0,
            early_stop: None,
        },
    }
}

fn run(cfg: &SimConfig) -> SimOutcome {
    match simulate(cfg) {
        Ok(o) => o,
        Err(e) => panic!("{e}"),
    }
}

fn offline_share(o: &SimOutcome) -> f64 {
    o.failures.offline as f64 / o.measured_requests as f64
}

#[test]
fn cloud_requests_fail_offline_at_the_fleet_share_from_the_start() {
    for fraction in [0.05, 0.15, 0.5] {
        let o = run(&config(Mode::Online(online(link(fraction)))));
        let share = offline_share(&o);
        assert!(
            (share - fraction).abs() < 0.02,
            "{fraction}: {share} of requests failed offline ({:?})",
            o.failures
        );
        assert_eq!(o.completed + o.failures.total(), o.measured_requests);
        assert_eq!(o.failures.offline, o.failures.total());
    }
    // the same requests are offline in every plan: more offline devices add
    // failures, never move them
    let at = |f: f64| run(&config(Mode::Online(online(link(f))))).failures.offline;
    assert!(at(0.1) <= at(0.2) && at(0.2) <= at(0.4));
    assert_eq!(at(0.0), 0);
    assert_eq!(
        run(&config(Mode::Online(online(link(1.0))))).completed,
        0,
        "every device offline"
    );
}

#[test]
fn lookups_from_the_cloud_fail_offline_and_the_device_does_not() {
    let store = LookupPath {
        link: Some(link(0.3)),
        lookup: LatencyFit::constant(0.001),
        job: JobSchedule {
            period_s: 3_600.0,
            duration_s: 600.0,
        },
    };
    let hybrid = run(&config(Mode::PrecomputeHybrid {
        lookup: store.clone(),
        hit_rate: 0.5,
        online: online(link(0.3)),
    }));
    assert!((offline_share(&hybrid) - 0.3).abs() < 0.02, "{:?}", hybrid);
    let on_device = run(&config(Mode::Edge(EdgeDevices {
        devices: 100,
        batching: Batching::NONE,
        service: ServiceTime::Deterministic { seconds: 0.001 },
        queue_capacity: 100,
        busy_power_w: 2.0,
        idle_power_w: 0.0,
        throttling: None,
    })));
    assert_eq!(on_device.failures.total(), 0);
    let local_store = run(&config(Mode::BatchLookup(LookupPath {
        link: None,
        ..store
    })));
    assert_eq!(local_store.failures.total(), 0);
}

#[test]
fn waiting_for_reconnection_waits_out_the_devices_offline_period() {
    let mut l = link(0.2);
    l.offline = Offline::Fleet {
        offline_fraction: 0.2,
        mean_offline_s: 0.5,
    };
    l.offline_policy = OfflinePolicy::WaitForReconnect;
    let mut cfg = config(Mode::Online(online(l)));
    cfg.timeout_s = Some(30.0);
    let o = run(&cfg);
    assert_eq!(o.failures.total(), 0, "{:?}", o.failures);
    // a fifth of the requests wait 0.5 s on average: +0.1 s on the mean
    let mut never = cfg.clone();
    if let Mode::Online(p) = &mut never.mode {
        p.link.offline = Offline::Never;
    }
    let extra = o.latency.mean_s - run(&never).latency.mean_s;
    assert!((extra - 0.1).abs() < 0.015, "{extra}");
}

#[test]
fn a_fleet_share_outside_zero_to_one_is_a_typed_error() {
    for (fraction, mean) in [(-0.1, 10.0), (1.5, 10.0), (0.2, 0.0), (f64::NAN, 1.0)] {
        let mut l = link(0.2);
        l.offline = Offline::Fleet {
            offline_fraction: fraction,
            mean_offline_s: mean,
        };
        let err = simulate(&config(Mode::Online(online(l))));
        assert!(
            matches!(err, Err(workbench::sim::SimError::InvalidConfig { .. })),
            "{fraction}/{mean}: {err:?}"
        );
    }
}
