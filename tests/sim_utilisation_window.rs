//! A pool's utilisation is its busy time over the window its arrivals came
//! in, not over the whole run: the run lasts until the last response
//! reaches the client, so a slow network's tail used to dilute it (the same
//! compute reported 0.84 busy with no network and 0.57 behind a link).
//!
//! Plans simulated with one seed see the same requests (common random
//! numbers), and a constant link delays every request alike, so with and
//! without the link a pool does exactly the same work: its figures must
//! agree to rounding, and match queueing theory (rate x mean service time /
//! replicas) within sampling noise.

use workbench::sim::{
    simulate, ArrivalProcess, Balancer, Batching, LatencyFit, Mode, NetworkLink, OnlinePath,
    Payload, PoolStats, RunControl, ServiceTime, ServingPool, SimConfig, Transport,
};

const RATE_PER_S: f64 = 6_000.0;
/// About 3.3 s of arrivals: the window's length is within 1% of
/// requests / rate (one standard error of a Poisson count of 20,000).
const REQUESTS: u64 = 20_000;
/// A slow link (a round trip of one second, constant): on the old figure
/// the drain after the last send was a quarter of the run.
const SLOW_RTT_S: f64 = 1.0;
const SEEDS: [u64; 3] = [1, 7, 42];

fn config(seed: u64, rtt_s: f64, replicas: u32, service: ServiceTime) -> SimConfig {
    SimConfig {
        seed,
        arrivals: ArrivalProcess::Poisson {
            rate_per_s: RATE_PER_S,
        },
        payload: Payload {
            request_bytes: 0,
            response_bytes: 0,
        },
        timeout_s: None,
        mode: Mode::Online(OnlinePath {
            link: NetworkLink::simple(LatencyFit::constant(rtt_s), f64::INFINITY),
            transport: Transport::Http,
            pool: ServingPool {
                replicas,
                balancer: Balancer::SharedQueue,
                batching: Batching::NONE,
                service,
                queue_capacity: u32::MAX,
                cold_start: None,
                autoscale: None,
            },
        }),
        run: RunControl {
            duration_s: 1e9,
            max_requests: Some(REQUESTS),
            warmup_s: 0.1,
            early_stop: None,
        },
    }
}

fn pool(seed: u64, rtt_s: f64, replicas: u32, service: &ServiceTime) -> PoolStats {
    let outcome = simulate(&config(seed, rtt_s, replicas, service.clone())).expect("valid config");
    assert_eq!(outcome.failures.total(), 0);
    outcome.cloud.expect("an online plan has a cloud pool")
}

struct Case {
    name: &'static str,
    replicas: u32,
    service: ServiceTime,
    mean_service_s: f64,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "M/D/1 at 0.84",
            replicas: 1,
            service: ServiceTime::Deterministic { seconds: 0.000_14 },
            mean_service_s: 0.000_14,
        },
        Case {
            name: "M/M/1 at 0.6",
            replicas: 1,
            service: ServiceTime::Exponential { mean_s: 0.000_1 },
            mean_service_s: 0.000_1,
        },
        Case {
            name: "M/M/4 at 0.75",
            replicas: 4,
            service: ServiceTime::Exponential { mean_s: 0.000_5 },
            mean_service_s: 0.000_5,
        },
    ]
}

/// Utilisation is rate x mean service time / replicas whatever the link:
/// within 4% (about four standard errors of the window and the service
/// draws at 20,000 requests); the old figure behind the slow link was
/// 23% low, 3.3 s of busy time over 4.3 s of run.
#[test]
fn utilisation_is_the_offered_load_with_or_without_a_slow_link() {
    for case in cases() {
        let theory = RATE_PER_S * case.mean_service_s / f64::from(case.replicas);
        for seed in SEEDS {
            let near = pool(seed, 0.0, case.replicas, &case.service);
            let far = pool(seed, SLOW_RTT_S, case.replicas, &case.service);
            // the same requests, the same work
            assert_eq!(near.served, far.served, "{}", case.name);
            assert!(
                (near.busy_s - far.busy_s).abs() <= 1e-6 * near.busy_s,
                "{} seed {seed}: busy {} s vs {} s",
                case.name,
                near.busy_s,
                far.busy_s
            );
            for (link, p) in [("no link", &near), ("slow link", &far)] {
                let error = p.mean_utilisation / theory - 1.0;
                assert!(
                    error.abs() < 0.04,
                    "{} seed {seed}, {link}: utilisation {:.4}, theory {theory:.4}",
                    case.name,
                    p.mean_utilisation
                );
                // each replica's share averages to the pool's
                let per_replica = p.replicas.iter().map(|r| r.utilisation).sum::<f64>()
                    / f64::from(case.replicas);
                assert!(
                    (per_replica - p.mean_utilisation).abs() < 1e-9,
                    "{} seed {seed}, {link}: replicas {per_replica} vs pool {}",
                    case.name,
                    p.mean_utilisation
                );
            }
            assert!(
                (near.mean_utilisation - far.mean_utilisation).abs() < 1e-6,
                "{} seed {seed}: {} without the link, {} with it",
                case.name,
                near.mean_utilisation,
                far.mean_utilisation
            );
        }
    }
}

/// The time-average queue is the queue's area (waits summed) over the same
/// window, so a slow link leaves it alone too; at 0.84 an M/D/1 queue holds
/// rho^2 / (2 (1 - rho)) = 2.2 requests on average (Pollaczek-Khinchine;
/// within 25%: near saturation 20,000 requests resolve the queue coarsely).
#[test]
fn the_mean_queue_is_over_the_same_window() {
    let case = &cases()[0];
    let rho: f64 = 0.84;
    let theory = rho * rho / (2.0 * (1.0 - rho));
    for seed in SEEDS {
        let near = pool(seed, 0.0, case.replicas, &case.service);
        let far = pool(seed, SLOW_RTT_S, case.replicas, &case.service);
        assert!(
            (near.mean_queue_len - far.mean_queue_len).abs() <= 1e-6 * near.mean_queue_len,
            "seed {seed}: {} without the link, {} with it",
            near.mean_queue_len,
            far.mean_queue_len
        );
        assert!(
            (near.mean_queue_len / theory - 1.0).abs() < 0.25,
            "seed {seed}: mean queue {}, theory {theory}",
            near.mean_queue_len
        );
    }
}

/// Past saturation the pool is busy for all of the window (and the drain
/// after it): utilisation is 1, not the offered load of 1.5.
#[test]
fn an_overloaded_pool_is_busy_all_of_the_window() {
    let service = ServiceTime::Deterministic { seconds: 0.000_25 };
    let p = pool(3, SLOW_RTT_S, 1, &service);
    assert_eq!(p.mean_utilisation, 1.0);
    assert_eq!(p.replicas[0].utilisation, 1.0);
}
