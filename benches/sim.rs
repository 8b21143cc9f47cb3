//! Simulator throughput: simulated requests per second of wall time.
//!
//! `cargo bench --bench sim` (criterion reports elements/s = simulated
//! requests/s). Plans:
//! - `online_1e6/no_network`: 4 replicas, least outstanding, no batching,
//!   lognormal profile, zero-delay link (the event core alone);
//! - `online_1e6/wan_batched`: same pool behind a WAN link (RTT lognormal
//!   30 ms / 120 ms p99) with dynamic batching (8, 2 ms);
//! - `hour_10k_rps`: a simulated hour at 10,000 req/s of the WAN plan,
//!   with the default early stop (p99 95% CI narrower than 1%) and without;
//! - `many_replicas_2e5/{64,4096}`: the batched plan on a wide pool (least
//!   outstanding picks among 64 or 4,096 replicas) at 5e6 req/s, zero-delay
//!   link: the balancer's cost per request.
//!
//! Instruction counts (not disturbed by other load):
//! `SIM_ONCE=no_network valgrind --tool=callgrind target/release/deps/sim-<hash>`
//! (also `wan_batched`, `hour_full`, `many_4096`); see `main`.

use std::hint::black_box;

use criterion::{criterion_group, Criterion, Throughput};
use workbench::sim::{
    simulate, ArrivalProcess, Balancer, Batching, EarlyStop, LatencyFit, Mode, NetworkLink,
    OnlinePath, Payload, ProfilePoint, RunControl, ServiceTime, ServingPool, SimConfig, Transport,
};

fn plan(rate: f64, link: NetworkLink, batching: Batching, replicas: u32) -> SimConfig {
    SimConfig {
        seed: 1,
        arrivals: ArrivalProcess::Poisson { rate_per_s: rate },
        payload: Payload {
            request_bytes: 2_000,
            response_bytes: 500,
        },
        timeout_s: Some(1.0),
        mode: Mode::Online(OnlinePath {
            link,
            transport: Transport::Http,
            pool: ServingPool {
                replicas,
                balancer: Balancer::LeastOutstanding,
                batching,
                service: ServiceTime::Profile(vec![
                    ProfilePoint {
                        batch_size: 1,
                        median_s: 0.0003,
                        p99_s: 0.0006,
                    },
                    ProfilePoint {
                        batch_size: 8,
                        median_s: 0.0008,
                        p99_s: 0.0014,
                    },
                    ProfilePoint {
                        batch_size: 32,
                        median_s: 0.0025,
                        p99_s: 0.004,
                    },
                ]),
                queue_capacity: 10_000,
                cold_start: None,
                autoscale: None,
            },
        }),
        run: RunControl {
            duration_s: 1e9,
            max_requests: None,
            warmup_s: 0.0,
            early_stop: None,
        },
    }
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

fn batched() -> Batching {
    Batching {
        max_batch_size: 8,
        max_queue_delay_s: 0.002,
    }
}

/// The plain online plan: the event core alone.
fn plain_online(n: u64) -> SimConfig {
    let mut plain = plan(
        10_000.0,
        NetworkLink::simple(LatencyFit::constant(0.0), f64::INFINITY),
        Batching::NONE,
        4,
    );
    plain.run.max_requests = Some(n);
    plain
}

fn wan_online(n: u64) -> SimConfig {
    let mut wan_plan = plan(10_000.0, wan(), batched(), 4);
    wan_plan.run.max_requests = Some(n);
    wan_plan
}

/// The batched plan on `replicas` replicas at 5e6 req/s, zero-delay link.
fn wide_pool(replicas: u32, n: u64) -> SimConfig {
    let mut wide = plan(
        5e6,
        NetworkLink::simple(LatencyFit::constant(0.0), f64::INFINITY),
        batched(),
        replicas,
    );
    wide.run.max_requests = Some(n);
    wide
}

/// A simulated hour at 10,000 req/s of the WAN plan.
fn hour_plan(early_stop: Option<EarlyStop>) -> SimConfig {
    let mut hour = plan(10_000.0, wan(), batched(), 4);
    hour.run.duration_s = 3_600.0;
    hour.run.early_stop = early_stop;
    hour
}

fn online(c: &mut Criterion) {
    const N: u64 = 1_000_000;
    let mut g = c.benchmark_group("online_1e6");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    let plain = plain_online(N);
    g.bench_function("no_network", |b| {
        b.iter(|| black_box(simulate(black_box(&plain))))
    });
    let wan_plan = wan_online(N);
    g.bench_function("wan_batched", |b| {
        b.iter(|| black_box(simulate(black_box(&wan_plan))))
    });
    g.finish();
}

fn hour(c: &mut Criterion) {
    let mut g = c.benchmark_group("hour_10k_rps");
    g.sample_size(10);
    let early = hour_plan(Some(EarlyStop::default()));
    if let Ok(o) = simulate(&early) {
        eprintln!(
            "early stop: stopped {} after {} requests ({} batches), p99 {:.6} s, CI half-width {:?}",
            o.early_stop.stopped_early,
            o.simulated_requests,
            o.early_stop.batches,
            o.latency.p99_s,
            o.early_stop.p99_relative_half_width
        );
    }
    g.bench_function("early_stop", |b| {
        b.iter(|| black_box(simulate(black_box(&early))))
    });
    let full = hour_plan(None);
    g.throughput(Throughput::Elements(36_000_000));
    g.bench_function("full", |b| b.iter(|| black_box(simulate(black_box(&full)))));
    g.finish();
}

fn many_replicas(c: &mut Criterion) {
    const N: u64 = 200_000;
    let mut g = c.benchmark_group("many_replicas_2e5");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    for replicas in [64, 4_096] {
        let wide = wide_pool(replicas, N);
        g.bench_function(replicas.to_string(), |b| {
            b.iter(|| black_box(simulate(black_box(&wide))))
        });
    }
    g.finish();
}

criterion_group!(benches, online, hour, many_replicas);

/// `SIM_ONCE=no_network|wan_batched|hour_full|many_4096` runs that plan once and exits
/// (no criterion): for instruction counts that load does not disturb,
/// `SIM_ONCE=no_network valgrind --tool=callgrind target/release/deps/sim-<hash>`.
fn main() {
    if let Ok(which) = std::env::var("SIM_ONCE") {
        let cfg = match which.as_str() {
            "no_network" => plain_online(1_000_000),
            "wan_batched" => wan_online(1_000_000),
            "hour_full" => hour_plan(None),
            "many_4096" => wide_pool(4_096, 200_000),
            other => {
                eprintln!(
                    "SIM_ONCE={other}: expected no_network, wan_batched, hour_full or many_4096"
                );
                std::process::exit(2);
            }
        };
        match simulate(&cfg) {
            Ok(o) => eprintln!(
                "{which}: {} requests, p99 {:.6} s",
                o.simulated_requests, o.latency.p99_s
            ),
            Err(e) => {
                eprintln!("{which}: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
