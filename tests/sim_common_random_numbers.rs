//! Common random numbers: plans simulated with one seed see the same requests
//! (send times, network delays, service-time noise), so they differ by what the
//! plans change and not by sampling noise. The planner compares plans that
//! differ by tens of microseconds of compute behind a network of hundreds of
//! milliseconds; with independent noise the ranking was a coin toss.

use workbench::sim::{
    simulate, ArrivalProcess, Balancer, Batching, JobSchedule, LatencyFit, LookupPath, Mode,
    NetworkLink, OnlinePath, Payload, ProfilePoint, RunControl, ServiceTime, ServingPool,
    SimConfig, SimOutcome, Transport,
};

/// A phone on a mobile network (the shipped scenarios' "mobile" link).
fn mobile() -> NetworkLink {
    let mut l = NetworkLink::simple(
        LatencyFit {
            median_s: 0.060,
            p99_s: 0.300,
        },
        10e6,
    );
    l.loss_probability = 0.01;
    l.retransmit_timeout_s = 0.060;
    l
}

/// Compute of `median_us` at batch 1 (p99 twice that), growing with the batch.
fn compute(median_us: f64) -> ServiceTime {
    let m = median_us * 1e-6;
    ServiceTime::Profile(vec![
        ProfilePoint {
            batch_size: 1,
            median_s: m,
            p99_s: 2.0 * m,
        },
        ProfilePoint {
            batch_size: 8,
            median_s: 4.0 * m,
            p99_s: 8.0 * m,
        },
    ])
}

fn online(
    seed: u64,
    link: NetworkLink,
    replicas: u32,
    balancer: Balancer,
    batching: Batching,
    service: ServiceTime,
) -> SimConfig {
    SimConfig {
        seed,
        arrivals: ArrivalProcess::Poisson {
            rate_per_s: 6_000.0,
        },
        payload: Payload {
            request_bytes: 4_000,
            response_bytes: 200,
        },
        timeout_s: None,
        mode: Mode::Online(OnlinePath {
            link,
            transport: Transport::Http,
            pool: ServingPool {
                replicas,
                balancer,
                batching,
                service,
                queue_capacity: 100_000,
                cold_start: None,
                autoscale: None,
            },
        }),
        run: RunControl {
            duration_s: 60.0,
            max_requests: Some(60_000),
            warmup_s: 0.5,
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

fn percentiles(o: &SimOutcome) -> [f64; 6] {
    let l = &o.latency;
    [l.p50_s, l.p90_s, l.p99_s, l.p999_s, l.max_s, l.mean_s]
}

/// One FIFO server, the same requests, each served faster: no request can be
/// slower (Lindley's recursion), so no percentile can be larger.
#[test]
fn less_compute_never_makes_a_percentile_larger() {
    for seed in [1, 2, 3, 4, 5, 6] {
        let fast = run(&online(
            seed,
            mobile(),
            1,
            Balancer::LeastOutstanding,
            Batching::NONE,
            compute(30.0),
        ));
        let slow = run(&online(
            seed,
            mobile(),
            1,
            Balancer::LeastOutstanding,
            Batching::NONE,
            compute(50.0),
        ));
        assert_eq!(fast.measured_requests, slow.measured_requests);
        for (f, s) in percentiles(&fast).iter().zip(percentiles(&slow)) {
            assert!(
                *f <= s,
                "seed {seed}: 30 us gave {f} s, 50 us {s} s ({:?} vs {:?})",
                percentiles(&fast),
                percentiles(&slow)
            );
        }
    }
}

/// 30 against 50 us of compute behind a 60/300 ms network: the p99s differ by
/// about the compute, far less than a millisecond. With one stream for every
/// draw they differed by several milliseconds either way.
#[test]
fn plans_differing_only_in_compute_have_p99_within_a_margin() {
    let batchings = [
        Batching::NONE,
        Batching {
            max_batch_size: 8,
            max_queue_delay_s: 0.005,
        },
    ];
    for seed in [11, 12, 13, 14, 15] {
        for batching in batchings {
            for (replicas, balancer) in [(1, Balancer::LeastOutstanding), (3, Balancer::Random)] {
                let p99 = |us: f64| {
                    run(&online(
                        seed,
                        mobile(),
                        replicas,
                        balancer,
                        batching,
                        compute(us),
                    ))
                    .latency
                    .p99_s
                };
                let (a, b) = (p99(30.0), p99(50.0));
                assert!(
                    (a - b).abs() < 0.000_5,
                    "seed {seed}, {batching:?}, {replicas} x {balancer:?}: \
                     p99 {:.3} ms at 30 us vs {:.3} ms at 50 us",
                    a * 1e3,
                    b * 1e3
                );
            }
        }
    }
}

fn lookup(link: NetworkLink) -> LookupPath {
    LookupPath {
        link: Some(link),
        lookup: LatencyFit::constant(0.0),
        job: JobSchedule {
            period_s: 3_600.0,
            duration_s: 600.0,
        },
    }
}

/// With nothing to wait for but the network, request k's latency is its own
/// network draw: every mode, route mix, balancer and batching gives the same
/// latencies, request by request.
#[test]
fn request_k_sees_the_same_network_in_every_mode() {
    let instant = ServiceTime::Deterministic { seconds: 0.0 };
    let seed = 21;
    let http = |replicas, balancer, batching| {
        online(
            seed,
            mobile(),
            replicas,
            balancer,
            batching,
            instant.clone(),
        )
    };
    let reference = run(&http(1, Balancer::LeastOutstanding, Batching::NONE));
    let mut lookup_only = http(1, Balancer::LeastOutstanding, Batching::NONE);
    lookup_only.mode = Mode::BatchLookup(lookup(mobile()));
    let mut hybrid = http(2, Balancer::Random, Batching::NONE);
    if let Mode::Online(o) = hybrid.mode.clone() {
        hybrid.mode = Mode::PrecomputeHybrid {
            lookup: lookup(mobile()),
            hit_rate: 0.5,
            online: o,
        };
    }
    let variants = [
        ("random balancer", http(3, Balancer::Random, Batching::NONE)),
        (
            "batching",
            http(
                2,
                Balancer::RoundRobin,
                Batching {
                    max_batch_size: 8,
                    max_queue_delay_s: 0.0,
                },
            ),
        ),
        ("batch lookup", lookup_only),
        ("precompute hybrid", hybrid),
    ];
    for (name, cfg) in variants {
        let o = run(&cfg);
        assert_eq!(o.measured_requests, reference.measured_requests, "{name}");
        assert_eq!(o.latency.count, reference.latency.count, "{name}");
        assert_eq!(
            percentiles(&o),
            percentiles(&reference),
            "{name}: the same requests should see the same network"
        );
    }
}
