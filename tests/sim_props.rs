//! Property tests: on arbitrary valid plans the simulator never panics,
//! accounts for every measured request, and satisfies Little's law.

use proptest::prelude::*;
use workbench::sim::{
    simulate, ArrivalProcess, Autoscale, Balancer, Batching, Broker, ColdStart, EdgeDevices,
    JobSchedule, LatencyFit, LookupPath, Mode, NetworkLink, Offline, OfflinePolicy, OnlinePath,
    Payload, ProfilePoint, RunControl, ServiceTime, ServingPool, SimConfig, Throttling, Transport,
};

fn fit() -> impl Strategy<Value = LatencyFit> {
    (0.0f64..0.05, 1.0f64..5.0).prop_map(|(m, r)| LatencyFit {
        median_s: m,
        p99_s: m * r,
    })
}

fn link() -> impl Strategy<Value = NetworkLink> {
    (
        fit(),
        1e6f64..1e9,
        0.0f64..0.2,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(rtt, bw, loss, offline, wait)| {
            let mut l = NetworkLink::simple(rtt, bw);
            l.loss_probability = loss;
            if offline {
                l.offline = Offline::Random {
                    mean_online_s: 2.0,
                    mean_offline_s: 0.5,
                };
            }
            if wait {
                l.offline_policy = OfflinePolicy::WaitForReconnect;
            }
            l
        })
}

fn service() -> impl Strategy<Value = ServiceTime> {
    prop_oneof![
        (0.0001f64..0.01).prop_map(|m| ServiceTime::Exponential { mean_s: m }),
        (0.0f64..0.01).prop_map(|s| ServiceTime::Deterministic { seconds: s }),
        (0.0001f64..0.005, 1.0f64..3.0, 1.0f64..6.0).prop_map(|(m, r, g)| {
            ServiceTime::Profile(vec![
                ProfilePoint {
                    batch_size: 1,
                    median_s: m,
                    p99_s: m * r,
                },
                ProfilePoint {
                    batch_size: 16,
                    median_s: m * g,
                    p99_s: m * g * r,
                },
            ])
        }),
    ]
}

fn pool() -> impl Strategy<Value = ServingPool> {
    (
        1u32..6,
        prop_oneof![
            Just(Balancer::RoundRobin),
            Just(Balancer::LeastOutstanding),
            Just(Balancer::Random),
            Just(Balancer::SharedQueue)
        ],
        1u32..33,
        0.0f64..0.01,
        service(),
        1u32..200,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(replicas, balancer, b, d, service, cap, cold, scale)| ServingPool {
                replicas,
                balancer,
                batching: Batching {
                    max_batch_size: b,
                    max_queue_delay_s: d,
                },
                service,
                queue_capacity: cap,
                cold_start: cold.then_some(ColdStart {
                    cold_replicas: replicas / 2,
                    scale_out_at_s: 0.5,
                    startup_s: 1.0,
                    first_batch_extra_s: 0.2,
                }),
                autoscale: scale.then_some(Autoscale {
                    max_replicas: replicas + 3,
                    interval_s: 0.1,
                    target_outstanding_per_replica: 2.0,
                    startup_s: 0.3,
                    first_batch_extra_s: 0.05,
                }),
            },
        )
}

fn online() -> impl Strategy<Value = OnlinePath> {
    (link(), pool(), any::<bool>(), 1u32..8, fit(), fit()).prop_map(
        |(link, pool, stream, partitions, produce, consume)| OnlinePath {
            link,
            transport: if stream {
                Transport::Stream(Broker {
                    partitions,
                    produce,
                    consume,
                })
            } else {
                Transport::Http
            },
            pool,
        },
    )
}

fn edge() -> impl Strategy<Value = EdgeDevices> {
    (1u32..20, service(), any::<bool>()).prop_map(|(devices, service, hot)| EdgeDevices {
        devices,
        batching: Batching::NONE,
        service,
        queue_capacity: 50,
        busy_power_w: 3.0,
        idle_power_w: 0.1,
        throttling: hot.then_some(Throttling {
            time_constant_s: 1.0,
            threshold: 0.3,
            slowdown: 2.0,
        }),
    })
}

fn lookup() -> impl Strategy<Value = LookupPath> {
    (proptest::option::of(link()), fit()).prop_map(|(link, lookup)| LookupPath {
        link,
        lookup,
        job: JobSchedule {
            period_s: 60.0,
            duration_s: 10.0,
        },
    })
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![
        online().prop_map(Mode::Online),
        edge().prop_map(Mode::Edge),
        lookup().prop_map(Mode::BatchLookup),
        (lookup(), 0.0f64..=1.0, online()).prop_map(|(lookup, hit_rate, online)| {
            Mode::PrecomputeHybrid {
                lookup,
                hit_rate,
                online,
            }
        }),
        (edge(), 0.0f64..=1.0, online()).prop_map(|(edge, fallback_rate, online)| {
            Mode::EdgeWithFallback {
                edge,
                fallback_rate,
                online,
            }
        }),
    ]
}

fn arrivals() -> impl Strategy<Value = ArrivalProcess> {
    prop_oneof![
        (10.0f64..3_000.0).prop_map(|r| ArrivalProcess::Poisson { rate_per_s: r }),
        (10.0f64..3_000.0).prop_map(|r| ArrivalProcess::Constant { rate_per_s: r }),
        (10.0f64..3_000.0, 0.0f64..100.0).prop_map(|(on, off)| ArrivalProcess::BurstyOnOff {
            on_rate_per_s: on,
            off_rate_per_s: off,
            mean_on_s: 0.3,
            mean_off_s: 0.3,
        }),
        (10.0f64..3_000.0, 1.0f64..4.0).prop_map(|(m, p)| ArrivalProcess::Diurnal {
            mean_rate_per_s: m,
            peak_factor: p,
            period_s: 1.0,
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_request_is_accounted_for(
        seed in any::<u64>(),
        arrivals in arrivals(),
        mode in mode(),
        timeout in proptest::option::of(0.005f64..1.0),
        warmup in 0.0f64..0.5,
    ) {
        let cfg = SimConfig {
            seed,
            arrivals,
            payload: Payload { request_bytes: 1_000, response_bytes: 300 },
            timeout_s: timeout,
            mode,
            run: RunControl {
                duration_s: 2.0,
                max_requests: Some(4_000),
                warmup_s: warmup,
                early_stop: None,
            },
        };
        let o = simulate(&cfg).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(o.completed + o.failures.total(), o.measured_requests);
        prop_assert!(o.measured_requests <= o.simulated_requests);
        prop_assert_eq!(o.latency.count, o.completed);
        let p = &o.paths;
        prop_assert_eq!(p.cloud + p.edge + p.lookup, o.measured_requests);
        if let Some(t) = timeout {
            prop_assert!(o.latency.max_s <= t * 1.001);
        }
        let l = &o.littles_law;
        let rhs = l.arrival_rate_per_s * l.mean_sojourn_s;
        prop_assert!((l.time_avg_in_system - rhs).abs() <= 1e-6 * rhs.max(1e-12));
        for pool in o.cloud.iter().chain(o.edge.iter()) {
            for r in &pool.replicas {
                prop_assert!(r.utilisation >= 0.0 && r.utilisation <= 1.0 + 1e-9);
                prop_assert!(r.max_batch_size <= 32);
            }
        }
    }
}
