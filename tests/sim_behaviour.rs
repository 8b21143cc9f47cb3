//! Behaviour of the simulator: determinism, Little's law on every plan type,
//! batching, timeouts, network, streaming, cold start, edge, lookups,
//! hybrids, early stop, bounded memory, cost.

use workbench::sim::cost::{estimate, monthly_usage, CostRates, UsageInputs};
use workbench::sim::{
    plan_batch_job, simulate, simulate_with_footprint, zipf_hit_rate, ArrivalProcess, Balancer,
    BatchJobConfig, Batching, Broker, ColdStart, EarlyStop, EdgeDevices, InputSpace, JobSchedule,
    LatencyFit, LookupPath, Mode, NetworkLink, Offline, OnlinePath, Payload, ProfilePoint,
    RunControl, ServiceTime, ServingPool, SimConfig, SimError, SimOutcome, Throttling, Transport,
};

fn no_link() -> NetworkLink {
    NetworkLink::simple(LatencyFit::constant(0.0), f64::INFINITY)
}

fn wan() -> NetworkLink {
    NetworkLink::simple(
        LatencyFit {
            median_s: 0.030,
            p99_s: 0.120,
        },
        100e6,
    )
}

fn profile() -> ServiceTime {
    ServiceTime::Profile(vec![
        ProfilePoint {
            batch_size: 1,
            median_s: 0.002,
            p99_s: 0.004,
        },
        ProfilePoint {
            batch_size: 8,
            median_s: 0.006,
            p99_s: 0.010,
        },
        ProfilePoint {
            batch_size: 32,
            median_s: 0.016,
            p99_s: 0.025,
        },
    ])
}

fn pool(
    replicas: u32,
    balancer: Balancer,
    batching: Batching,
    service: ServiceTime,
) -> ServingPool {
    ServingPool {
        replicas,
        balancer,
        batching,
        service,
        queue_capacity: 100_000,
        cold_start: None,
        autoscale: None,
    }
}

fn online(link: NetworkLink, transport: Transport, pool: ServingPool) -> OnlinePath {
    OnlinePath {
        link,
        transport,
        pool,
    }
}

fn base(mode: Mode, arrivals: ArrivalProcess, duration_s: f64) -> SimConfig {
    SimConfig {
        seed: 42,
        arrivals,
        payload: Payload {
            request_bytes: 2_000,
            response_bytes: 500,
        },
        timeout_s: Some(1.0),
        mode,
        run: RunControl {
            duration_s,
            max_requests: None,
            warmup_s: 0.0,
            early_stop: None,
        },
    }
}

fn poisson(rate: f64) -> ArrivalProcess {
    ArrivalProcess::Poisson { rate_per_s: rate }
}

fn edge_devices(devices: u32) -> EdgeDevices {
    EdgeDevices {
        devices,
        batching: Batching::NONE,
        service: ServiceTime::Deterministic { seconds: 0.010 },
        queue_capacity: 1_000,
        busy_power_w: 2.0,
        idle_power_w: 0.0,
        throttling: None,
    }
}

fn lookup_path(link: Option<NetworkLink>) -> LookupPath {
    LookupPath {
        link,
        lookup: LatencyFit {
            median_s: 0.002,
            p99_s: 0.008,
        },
        job: JobSchedule {
            period_s: 3_600.0,
            duration_s: 600.0,
        },
    }
}

fn http_online(replicas: u32) -> OnlinePath {
    online(
        wan(),
        Transport::Http,
        pool(
            replicas,
            Balancer::LeastOutstanding,
            Batching {
                max_batch_size: 8,
                max_queue_delay_s: 0.002,
            },
            profile(),
        ),
    )
}

fn every_mode() -> Vec<(&'static str, SimConfig)> {
    let stream = Transport::Stream(Broker {
        partitions: 6,
        produce: LatencyFit {
            median_s: 0.003,
            p99_s: 0.015,
        },
        consume: LatencyFit {
            median_s: 0.005,
            p99_s: 0.050,
        },
    });
    vec![
        (
            "online http",
            base(Mode::Online(http_online(4)), poisson(2_000.0), 20.0),
        ),
        (
            "online stream",
            base(
                Mode::Online(online(
                    wan(),
                    stream,
                    pool(4, Balancer::RoundRobin, Batching::NONE, profile()),
                )),
                poisson(1_000.0),
                20.0,
            ),
        ),
        (
            "edge",
            base(Mode::Edge(edge_devices(50)), poisson(2_000.0), 20.0),
        ),
        (
            "batch lookup",
            base(
                Mode::BatchLookup(lookup_path(Some(wan()))),
                poisson(2_000.0),
                20.0,
            ),
        ),
        (
            "precompute hybrid",
            base(
                Mode::PrecomputeHybrid {
                    lookup: lookup_path(None),
                    hit_rate: 0.7,
                    online: http_online(2),
                },
                poisson(2_000.0),
                20.0,
            ),
        ),
        (
            "edge with fallback",
            base(
                Mode::EdgeWithFallback {
                    edge: edge_devices(50),
                    fallback_rate: 0.1,
                    online: http_online(1),
                },
                poisson(2_000.0),
                20.0,
            ),
        ),
    ]
}

fn accounted(o: &SimOutcome) {
    assert_eq!(o.completed + o.failures.total(), o.measured_requests);
    assert_eq!(o.latency.count, o.completed);
}

#[test]
fn littles_law_and_accounting_on_every_plan_type() {
    for (name, cfg) in every_mode() {
        let o = simulate(&cfg).expect(name);
        accounted(&o);
        assert!(o.completed > 15_000, "{name}: {}", o.completed);
        let l = &o.littles_law;
        let rhs = l.arrival_rate_per_s * l.mean_sojourn_s;
        assert!(l.time_avg_in_system > 0.0, "{name}");
        assert!(
            (l.time_avg_in_system - rhs).abs() <= 1e-6 * rhs,
            "{name}: L {} vs lambda W {rhs}",
            l.time_avg_in_system
        );
        // the serving stage sees (about) the offered rate
        assert!(l.arrival_rate_per_s > 0.8 * 1_000.0, "{name}");
        let p = &o.latency;
        assert!(p.p50_s <= p.p90_s && p.p90_s <= p.p99_s && p.p99_s <= p.p999_s);
        assert!(p.mean_s > 0.0 && p.max_s >= p.p999_s);
    }
}

#[test]
fn same_seed_same_bytes_different_seed_different_samples() {
    for (name, cfg) in every_mode().into_iter().take(3) {
        let a = serde_json::to_vec(&simulate(&cfg).expect(name)).expect("json");
        let b = serde_json::to_vec(&simulate(&cfg).expect(name)).expect("json");
        assert_eq!(a, b, "{name}");
        let mut other = cfg.clone();
        other.seed += 1;
        let x = simulate(&cfg).expect(name);
        let y = simulate(&other).expect(name);
        assert_ne!(x.latency.mean_s, y.latency.mean_s, "{name}");
        assert_ne!(x.simulated_requests, y.simulated_requests, "{name}");
    }
}

#[test]
fn batches_wait_at_most_max_delay_and_never_exceed_max_size() {
    // constant arrivals every 1 ms, 2.5 ms max delay: batches of exactly 3
    let cfg = base(
        Mode::Online(online(
            no_link(),
            Transport::Http,
            pool(
                1,
                Balancer::RoundRobin,
                Batching {
                    max_batch_size: 16,
                    max_queue_delay_s: 0.0025,
                },
                ServiceTime::Deterministic { seconds: 0.0001 },
            ),
        )),
        ArrivalProcess::Constant {
            rate_per_s: 1_000.0,
        },
        3.0,
    );
    let o = simulate(&cfg).expect("valid");
    let c = o.cloud.expect("cloud pool");
    assert_eq!(c.max_batch_size, 3);
    assert!(
        (c.mean_batch_size - 3.0).abs() < 0.01,
        "{}",
        c.mean_batch_size
    );
    assert!(o.latency.max_s <= 0.0026 * 1.001, "{}", o.latency.max_s);
    assert!(o.latency.min_s >= 0.0006 * 0.999, "{}", o.latency.min_s);

    // heavy load: batches fill to the maximum and never beyond
    let mut heavy = cfg.clone();
    heavy.arrivals = poisson(40_000.0);
    heavy.run.duration_s = 1.0;
    if let Mode::Online(o) = &mut heavy.mode {
        o.pool.batching.max_batch_size = 8;
        o.pool.service = ServiceTime::Deterministic { seconds: 0.00015 };
    }
    let h = simulate(&heavy).expect("valid");
    let c = h.cloud.expect("cloud pool");
    assert_eq!(c.max_batch_size, 8);
    assert!(c.mean_batch_size > 4.0, "{}", c.mean_batch_size);
    assert!(h.latency.max_s < 0.01, "{}", h.latency.max_s);
}

#[test]
fn overload_is_counted_as_timeouts_and_full_queues_not_dropped() {
    let mut cfg = base(
        Mode::Online(online(
            no_link(),
            Transport::Http,
            pool(
                1,
                Balancer::RoundRobin,
                Batching::NONE,
                ServiceTime::Exponential { mean_s: 0.001 },
            ),
        )),
        poisson(1_500.0),
        10.0,
    );
    cfg.timeout_s = Some(0.050);
    let o = simulate(&cfg).expect("valid");
    accounted(&o);
    assert!(
        o.failures.timeout > o.measured_requests / 10,
        "{:?}",
        o.failures
    );
    assert!(o.latency.max_s <= 0.050 * 1.001);
    // served at most the capacity of one replica
    assert!(o.throughput_per_s < 1_050.0, "{}", o.throughput_per_s);

    if let Mode::Online(p) = &mut cfg.mode {
        p.pool.queue_capacity = 10;
    }
    cfg.timeout_s = None;
    let q = simulate(&cfg).expect("valid");
    accounted(&q);
    assert!(
        q.failures.queue_full > q.measured_requests / 10,
        "{:?}",
        q.failures
    );
    assert_eq!(q.failures.timeout, 0);
    assert!(q.cloud.expect("pool").max_queue_len <= 10);
}

#[test]
fn least_outstanding_beats_round_robin_tail() {
    let make = |b: Balancer| {
        base(
            Mode::Online(online(
                no_link(),
                Transport::Http,
                pool(
                    4,
                    b,
                    Batching::NONE,
                    ServiceTime::Exponential { mean_s: 0.001 },
                ),
            )),
            poisson(3_400.0),
            30.0,
        )
    };
    let rr = simulate(&make(Balancer::RoundRobin)).expect("valid");
    let lo = simulate(&make(Balancer::LeastOutstanding)).expect("valid");
    assert!(
        lo.latency.p99_s < 0.7 * rr.latency.p99_s,
        "{} vs {}",
        lo.latency.p99_s,
        rr.latency.p99_s
    );
    let util: Vec<f64> = lo
        .cloud
        .expect("pool")
        .replicas
        .iter()
        .map(|r| r.utilisation)
        .collect();
    assert_eq!(util.len(), 4);
    for u in util {
        assert!((u - 0.85).abs() < 0.1, "{u}");
    }
}

#[test]
fn a_link_that_loses_nearly_everything_fails_requests_at_their_deadline() {
    let fast = ServiceTime::Deterministic { seconds: 0.0001 };
    let mut link = NetworkLink::simple(LatencyFit::constant(0.001), 1e9);
    link.loss_probability = 0.999_999;
    let mut cfg = base(
        Mode::Online(online(
            link,
            Transport::Http,
            pool(1, Balancer::LeastOutstanding, Batching::NONE, fast),
        )),
        poisson(200.0),
        50.0,
    );
    cfg.timeout_s = Some(1.0);
    let o = simulate(&cfg).expect("valid");
    accounted(&o);
    assert!(o.measured_requests > 1_000);
    assert_eq!(o.failures.timeout, o.measured_requests);
    assert_eq!(o.completed, 0);
    // nothing waits out hours of backed-off retransmissions
    assert!(o.simulated_time_s < 52.0, "{}", o.simulated_time_s);
}

#[test]
fn network_rtt_serialisation_loss_and_offline() {
    let fast = ServiceTime::Deterministic { seconds: 0.0001 };
    let mut link = NetworkLink::simple(LatencyFit::constant(0.040), 8e6);
    let mk = |link: NetworkLink| {
        base(
            Mode::Online(online(
                link,
                Transport::Http,
                pool(2, Balancer::LeastOutstanding, Batching::NONE, fast.clone()),
            )),
            poisson(200.0),
            50.0,
        )
    };
    // 40 ms RTT + 2000 B and 500 B at 1 MB/s + 0.1 ms service
    let o = simulate(&mk(link.clone())).expect("valid");
    let expect = 0.040 + 0.002 + 0.0005 + 0.0001;
    assert!(
        (o.latency.p50_s / expect - 1.0).abs() < 0.002,
        "{}",
        o.latency.p50_s
    );
    assert_eq!(o.egress_bytes, 500 * o.completed);

    let (p, rto, rtt) = (0.05, 0.2, 0.040);
    link.loss_probability = p;
    link.retransmit_timeout_s = rto;
    let lossy = simulate(&mk(link.clone())).expect("valid");
    // TCP recovery (see `NetworkLink::retransmit_timeout_s`): the request's
    // first packet is recovered by fast retransmit in one RTT, a lost last
    // packet (the request's second, the response's only one) or a lost
    // retransmission waits for the timeout, doubled at each further loss.
    let losses = |k: i32| p.powi(k) * (1.0 - p);
    let timeouts = |k: i32| rto * (2f64.powi(k) - 1.0);
    let fast = |k: i32| if k == 0 { 0.0 } else { rtt + timeouts(k - 1) };
    let mut expect = 0.0;
    for last in 0..30 {
        expect += losses(last) * timeouts(last); // the response
        for first in 0..30 {
            expect += losses(last) * losses(first) * timeouts(last).max(fast(first));
        }
    }
    let extra = lossy.latency.mean_s - o.latency.mean_s;
    assert!((extra / expect - 1.0).abs() < 0.1, "{extra} vs {expect}");
    // the old model (every loss one flat timeout, retransmissions never lost)
    // would add 3 p RTO
    assert!((extra / (3.0 * p * rto) - 1.0).abs() > 0.15, "{extra}");

    link.loss_probability = 0.0;
    link.offline = Offline::Random {
        mean_online_s: 7.0,
        mean_offline_s: 3.0,
    };
    let mut cfg = mk(link.clone());
    cfg.arrivals = poisson(20.0);
    cfg.run.duration_s = 20_000.0;
    let off = simulate(&cfg).expect("valid");
    accounted(&off);
    let frac = off.failures.offline as f64 / off.measured_requests as f64;
    assert!((frac - 0.3).abs() < 0.04, "{frac}");

    link.offline_policy = workbench::sim::OfflinePolicy::WaitForReconnect;
    let mut cfg = mk(link);
    cfg.arrivals = poisson(20.0);
    cfg.run.duration_s = 20_000.0;
    cfg.timeout_s = Some(60.0);
    let wait = simulate(&cfg).expect("valid");
    accounted(&wait);
    assert!(
        wait.failures.offline < off.failures.offline / 10,
        "{:?}",
        wait.failures
    );
    // waiting requests carry the remaining offline time: mean ~ 0.3 * 3 s
    assert!(
        wait.latency.mean_s > 0.5 && wait.latency.mean_s < 1.4,
        "{}",
        wait.latency.mean_s
    );
}

/// 4 replicas of 1 ms behind a broker of 2 partitions (3 ms produce, 5 ms
/// consume), at 1,600 requests/s, through `transport`.
fn four_replicas_two_partitions(transport: fn(Broker) -> Transport) -> SimConfig {
    let broker = Broker {
        partitions: 2,
        produce: LatencyFit::constant(0.003),
        consume: LatencyFit::constant(0.005),
    };
    base(
        Mode::Online(online(
            no_link(),
            transport(broker),
            pool(
                4,
                Balancer::RoundRobin,
                Batching::NONE,
                ServiceTime::Exponential { mean_s: 0.001 },
            ),
        )),
        poisson(1_600.0),
        20.0,
    )
}

#[test]
fn streaming_partitions_limit_consumers_and_report_lag() {
    let cfg = four_replicas_two_partitions(Transport::Stream);
    let o = simulate(&cfg).expect("valid");
    accounted(&o);
    let replicas = o.cloud.expect("pool").replicas;
    assert_eq!(
        replicas[2].served + replicas[3].served,
        0,
        "no partition for replicas 2, 3"
    );
    assert!(replicas[0].utilisation > 0.7 && replicas[1].utilisation > 0.7);
    let lag = o.consumer_lag.expect("stream reports lag");
    // two M/M/1 consumers at rho 0.8: Lq = rho^2/(1-rho) = 3.2 each
    assert!(
        (lag.mean_messages / 6.4 - 1.0).abs() < 0.3,
        "{}",
        lag.mean_messages
    );
    assert!(lag.max_messages >= 10);
    // produce + consume in, and again out: a 16 ms floor
    assert!(o.latency.min_s >= 0.016 * 0.999, "{}", o.latency.min_s);
}

#[test]
fn cold_replicas_serve_only_after_startup() {
    let mut p = pool(
        2,
        Balancer::RoundRobin,
        Batching::NONE,
        ServiceTime::Deterministic { seconds: 0.001 },
    );
    p.cold_start = Some(ColdStart {
        cold_replicas: 1,
        scale_out_at_s: 0.0,
        startup_s: 10.0,
        first_batch_extra_s: 0.5,
    });
    let cfg = base(
        Mode::Online(online(no_link(), Transport::Http, p)),
        poisson(400.0),
        20.0,
    );
    let o = simulate(&cfg).expect("valid");
    accounted(&o);
    let r = o.cloud.expect("pool").replicas;
    // warm replica alone for 10 s, then round robin
    let share = r[0].served as f64 / (r[0].served + r[1].served) as f64;
    assert!((share - 0.75).abs() < 0.03, "{share}");
    // the first cold batch takes 0.5 s extra: visible in the max latency
    assert!(o.latency.max_s > 0.5, "{}", o.latency.max_s);
}

#[test]
fn edge_energy_and_throttling() {
    let cfg = base(Mode::Edge(edge_devices(1)), poisson(10.0), 2_000.0);
    let o = simulate(&cfg).expect("valid");
    accounted(&o);
    let e = o.energy.expect("edge energy");
    assert!(
        (e.energy_per_prediction_j - 0.02).abs() < 1e-9,
        "{}",
        e.energy_per_prediction_j
    );
    assert_eq!(o.egress_bytes, 0);
    assert_eq!(e.throttled_batch_fraction, 0.0);
    // no network hop: the fastest answer is the service time
    // (histogram values are exact to 3 significant digits)
    assert!((o.latency.min_s / 0.010 - 1.0).abs() < 1e-3);

    let mut hot = edge_devices(1);
    hot.throttling = Some(Throttling {
        time_constant_s: 5.0,
        threshold: 0.5,
        slowdown: 1.5,
    });
    let busy = base(Mode::Edge(hot), poisson(60.0), 500.0);
    let t = simulate(&busy).expect("valid");
    let mut cool = busy.clone();
    if let Mode::Edge(d) = &mut cool.mode {
        d.throttling = None;
    }
    let c = simulate(&cool).expect("valid");
    let te = t.energy.expect("energy");
    assert!(
        te.throttled_batch_fraction > 0.5,
        "{}",
        te.throttled_batch_fraction
    );
    assert!(t.latency.mean_s > 1.4 * c.latency.mean_s);
    assert!(te.energy_per_prediction_j > 0.02);
}

#[test]
fn lookup_staleness_matches_the_schedule() {
    let cfg = base(
        Mode::BatchLookup(lookup_path(None)),
        poisson(10.0),
        36_000.0,
    );
    let o = simulate(&cfg).expect("valid");
    accounted(&o);
    let s = o.staleness.expect("staleness");
    assert_eq!(s.served, o.completed);
    // over the refresh cycle: mean age (P + D) / 2, max P + D
    assert_eq!((s.mean_age_s, s.max_age_s), (2_100.0, 4_200.0));
    assert_eq!(o.egress_bytes, 0);
    assert!((o.latency.p50_s / 0.002 - 1.0).abs() < 0.03);

    let plan = plan_batch_job(&BatchJobConfig {
        input_space: InputSpace::Finite { items: 6_000_000 },
        throughput_per_instance_per_s: 10_000.0,
        instances: 1,
        period_s: 3_600.0,
        startup_s: 0.0,
        prediction_bytes: 100,
    })
    .expect("feasible");
    assert_eq!(
        plan.schedule,
        JobSchedule {
            period_s: 3_600.0,
            duration_s: 600.0
        }
    );
    assert!((plan.mean_staleness_s - 2_100.0).abs() < 1e-9);
}

#[test]
fn hybrids_split_traffic() {
    let modes = every_mode();
    let hybrid = simulate(&modes[4].1).expect("hybrid");
    let share = hybrid.paths.lookup as f64 / hybrid.measured_requests as f64;
    assert!((share - 0.7).abs() < 0.01, "{share}");
    assert!(hybrid.staleness.expect("lookup part").served > 0);
    let fallback = simulate(&modes[5].1).expect("fallback");
    let share = fallback.paths.cloud as f64 / fallback.measured_requests as f64;
    assert!((share - 0.1).abs() < 0.01, "{share}");
    // egress: one response per answered cloud request
    assert!(fallback.egress_bytes <= 500 * fallback.paths.cloud);
    assert!(fallback.egress_bytes >= 500 * (fallback.paths.cloud - fallback.failures.total()));
    assert!(fallback.energy.is_some() && fallback.edge.is_some() && fallback.cloud.is_some());
    // a hit rate from the Zipf helper plugs straight in
    let h = zipf_hit_rate(10_000_000, 100_000, 1.1).expect("valid");
    assert!(h > 0.8 && h < 1.0, "{h}");
}

#[test]
fn early_stop_once_p99_is_tight() {
    // an hour at 10,000 req/s; a 2% target keeps the dev-profile test short
    // (the bench runs the default 0.5%)
    let pool = pool(
        8,
        Balancer::LeastOutstanding,
        Batching {
            max_batch_size: 32,
            max_queue_delay_s: 0.002,
        },
        profile(),
    );
    let mut cfg = base(
        Mode::Online(online(wan(), Transport::Http, pool)),
        poisson(10_000.0),
        3_600.0,
    );
    cfg.run.early_stop = Some(EarlyStop {
        relative_half_width: 0.02,
        ..EarlyStop::default()
    });
    let o = simulate(&cfg).expect("valid");
    assert!(o.early_stop.enabled && o.early_stop.stopped_early);
    assert_eq!(o.failures.total(), 0);
    let rel = o.early_stop.p99_relative_half_width.expect("estimate");
    assert!(rel <= 0.02, "{rel}");
    assert!(o.early_stop.batches >= 20);
    assert!(
        o.simulated_requests < 36_000_000 / 10,
        "{}",
        o.simulated_requests
    );
    cfg.run.early_stop = None;
    cfg.run.duration_s = 2.0;
    let short = simulate(&cfg).expect("valid");
    assert!(!short.early_stop.enabled && !short.early_stop.stopped_early);
}

#[test]
fn state_does_not_grow_with_request_count() {
    let cfg = |n: u64| {
        let mut c = base(Mode::Online(http_online(4)), poisson(2_000.0), 1e9);
        c.run.max_requests = Some(n);
        c
    };
    let (small_o, small) = simulate_with_footprint(&cfg(100_000)).expect("valid");
    let (big_o, big) = simulate_with_footprint(&cfg(1_000_000)).expect("valid");
    assert_eq!(big_o.simulated_requests, 1_000_000);
    assert_eq!(small_o.simulated_requests, 100_000);
    assert_eq!(small.histogram_bytes, big.histogram_bytes);
    // in-flight state tracks the (stable) population, not the count
    assert!(
        big.peak_events <= 2 * small.peak_events + 64,
        "{small:?} {big:?}"
    );
    assert!(
        big.event_heap_capacity <= 2 * small.event_heap_capacity + 64,
        "{small:?} {big:?}"
    );
    assert!(
        big.queue_capacity_total <= 2 * small.queue_capacity_total + 256,
        "{small:?} {big:?}"
    );
}

#[test]
fn other_arrival_processes_run() {
    let trace = workbench::sim::parse_trace_csv("t\n0.0\n0.001\n0.5\n0.5\n0.9\n").expect("csv");
    let mut cfg = base(
        Mode::Online(http_online(1)),
        ArrivalProcess::Trace {
            timestamps_s: trace,
            share: 1.0,
            laps: 1,
        },
        10.0,
    );
    let o = simulate(&cfg).expect("valid");
    assert_eq!(o.simulated_requests, 5);
    accounted(&o);
    cfg.arrivals = ArrivalProcess::Diurnal {
        mean_rate_per_s: 500.0,
        peak_factor: 2.0,
        period_s: 5.0,
    };
    let d = simulate(&cfg).expect("valid");
    assert!((d.simulated_requests as f64 / 5_000.0 - 1.0).abs() < 0.05);
    cfg.arrivals = ArrivalProcess::BurstyOnOff {
        on_rate_per_s: 2_000.0,
        off_rate_per_s: 0.0,
        mean_on_s: 0.5,
        mean_off_s: 0.5,
    };
    let b = simulate(&cfg).expect("valid");
    accounted(&b);
    // bursts at 2x the capacity of one replica queue up: worse tail than steady
    cfg.arrivals = poisson(b.simulated_requests as f64 / 10.0);
    let steady = simulate(&cfg).expect("valid");
    assert!(b.latency.p99_s > steady.latency.p99_s);
}

#[test]
fn invalid_configs_are_typed_errors() {
    let mut cfg = base(Mode::Online(http_online(0)), poisson(10.0), 1.0);
    assert!(matches!(
        simulate(&cfg),
        Err(SimError::InvalidConfig { .. })
    ));
    cfg.mode = Mode::Online(http_online(1));
    cfg.arrivals = poisson(-1.0);
    assert!(matches!(
        simulate(&cfg),
        Err(SimError::InvalidConfig { .. })
    ));
    cfg.arrivals = poisson(10.0);
    if let Mode::Online(o) = &mut cfg.mode {
        o.pool.service = ServiceTime::Profile(vec![
            ProfilePoint {
                batch_size: 4,
                median_s: 0.01,
                p99_s: 0.02,
            },
            ProfilePoint {
                batch_size: 2,
                median_s: 0.01,
                p99_s: 0.02,
            },
        ]);
    }
    let err = simulate(&cfg).expect_err("unsorted profile");
    assert!(err.to_string().contains("strictly increasing"), "{err}");
    cfg.mode = Mode::PrecomputeHybrid {
        lookup: lookup_path(None),
        hit_rate: 1.5,
        online: http_online(1),
    };
    assert!(simulate(&cfg).is_err());
}

#[test]
fn cost_from_a_simulated_plan() {
    let (_, cfg) = every_mode().remove(0);
    let o = simulate(&cfg).expect("valid");
    let usage = monthly_usage(
        &o,
        &UsageInputs {
            replicas: 4.0,
            batch_job: None,
            broker_bytes_per_message: None,
            devices_per_simulated_device: 1.0,
            mean_rate_per_s: None,
        },
    );
    // 2000 req/s for a month
    assert!((usage.predictions / (2_000.0 * 730.0 * 3600.0) - 1.0).abs() < 0.02);
    assert!((usage.egress_bytes / (500.0 * 2_000.0 * 730.0 * 3600.0) - 1.0).abs() < 0.02);
    // the same run standing for a long-run mean of 500 req/s (a peak hour, a
    // burst) is billed at 500 req/s, exactly (not with the run's sampling noise)
    let at_mean = monthly_usage(
        &o,
        &UsageInputs {
            replicas: 4.0,
            batch_job: None,
            broker_bytes_per_message: None,
            devices_per_simulated_device: 1.0,
            mean_rate_per_s: Some(500.0),
        },
    );
    let served = o.completed as f64 / o.measured_requests as f64;
    let month = 730.0 * 3600.0;
    assert!((at_mean.predictions / (500.0 * served * month) - 1.0).abs() < 1e-9);
    assert!((at_mean.egress_bytes / (500.0 * 500.0 * served * month) - 1.0).abs() < 1e-9);
    let rates = CostRates {
        instance_per_hour: 0.5,
        batch_instance_per_hour: 0.0,
        egress_per_gb: 0.09,
        broker_per_month: 0.0,
        broker_per_gb: 0.0,
        storage_per_gb_month: 0.0,
        energy_per_kwh: 0.0,
    };
    let c = estimate(&usage, &rates).expect("valid");
    let instances = 4.0 * 730.0 * 0.5;
    let egress = usage.egress_bytes / 1e9 * 0.09;
    assert!((c.monthly_usd - instances - egress).abs() < 1e-6);
    assert_eq!(c.lines.len(), 2);
    assert!(c.usd_per_million_predictions.expect("predictions") > 0.0);
}

#[test]
fn autoscaler_launches_cold_replicas_under_load_only() {
    let make = |rate: f64| {
        let mut p = pool(
            1,
            Balancer::LeastOutstanding,
            Batching::NONE,
            ServiceTime::Deterministic { seconds: 0.001 },
        );
        p.autoscale = Some(workbench::sim::Autoscale {
            max_replicas: 4,
            interval_s: 1.0,
            target_outstanding_per_replica: 5.0,
            startup_s: 2.0,
            first_batch_extra_s: 0.1,
        });
        let mut c = base(
            Mode::Online(online(no_link(), Transport::Http, p)),
            poisson(rate),
            30.0,
        );
        c.timeout_s = None;
        c
    };
    let hot = simulate(&make(2_500.0)).expect("valid");
    accounted(&hot);
    let pool = hot.cloud.expect("pool");
    assert!(
        pool.scale_outs >= 2 && pool.scale_outs <= 3,
        "{}",
        pool.scale_outs
    );
    assert!(
        pool.mean_replicas > 2.5 && pool.mean_replicas < 4.0,
        "{}",
        pool.mean_replicas
    );
    assert_eq!(pool.replicas.len(), 4);
    assert!(pool.replicas[2].served > 0);
    // the backlog built while replicas start shows in the tail
    assert!(hot.latency.max_s > 1.0, "{}", hot.latency.max_s);
    let calm = simulate(&make(300.0)).expect("valid");
    let pool = calm.cloud.expect("pool");
    assert_eq!(pool.scale_outs, 0);
    assert!((pool.mean_replicas - 1.0).abs() < 1e-9);
    assert_eq!(pool.replicas[1].served, 0);
}

/// Events bridged from a broker to an HTTP service pay the broker's
/// latency but are spread by the service's balancer: with 2 partitions, all
/// 4 replicas serve (a stream's consumers 2 and 3 would get no partition).
#[test]
fn a_bridge_pays_the_broker_but_not_its_partitions() {
    let cfg = four_replicas_two_partitions(Transport::Bridged);
    let o = simulate(&cfg).expect("valid");
    accounted(&o);
    let replicas = o.cloud.expect("pool").replicas;
    assert!(replicas.iter().all(|r| r.served > 0), "{replicas:?}");
    // produce + consume in, and again out: a 16 ms floor
    assert!(o.latency.min_s >= 0.016 * 0.999, "{}", o.latency.min_s);
}
