//! Validation of the simulator against queueing theory.
//!
//! Each case runs independent replications (different seeds, warm-up
//! discarded) and compares the grand mean with the closed form:
//! `|estimate - theory| <= max(2% of theory, 3 standard errors)`, where the
//! standard error comes from the spread between replications. To keep the
//! check meaningful, the 3-SE band itself must be narrower than a stated
//! bound (so a noisy run cannot pass by being vague).
//!
//! The default run uses 2e5 measured requests per case, 1e6 near saturation
//! (about a second in the dev profile); `cargo test --release --test
//! sim_queueing -- --ignored` runs the full 1e6 per case of issue 6.

use workbench::sim::{
    simulate, ArrivalProcess, Balancer, Batching, LatencyFit, Mode, NetworkLink, OnlinePath,
    Payload, RunControl, ServiceTime, ServingPool, SimConfig, SimOutcome, Transport,
};

const MEAN_SERVICE_S: f64 = 0.001;

fn config(seed: u64, rho: f64, servers: u32, service: ServiceTime, n: u64, warm: u64) -> SimConfig {
    let lambda = rho * f64::from(servers) / MEAN_SERVICE_S;
    SimConfig {
        seed,
        arrivals: ArrivalProcess::Poisson { rate_per_s: lambda },
        payload: Payload {
            request_bytes: 0,
            response_bytes: 0,
        },
        timeout_s: None,
        mode: Mode::Online(OnlinePath {
            link: NetworkLink::simple(LatencyFit::constant(0.0), f64::INFINITY),
            transport: Transport::Http,
            pool: ServingPool {
                replicas: servers,
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
            max_requests: Some(n + warm),
            warmup_s: warm as f64 / lambda,
            early_stop: None,
        },
    }
}

/// Erlang C: probability an arrival waits in M/M/c with offered load a = lambda/mu.
fn erlang_c(c: u32, a: f64) -> f64 {
    let rho = a / f64::from(c);
    let mut term = 1.0; // a^k / k!
    let mut sum = 1.0;
    for k in 1..c {
        term *= a / f64::from(k);
        sum += term;
    }
    let last = term * a / f64::from(c) / (1.0 - rho);
    last / (sum + last)
}

struct Case {
    name: &'static str,
    servers: u32,
    service: ServiceTime,
    theory: fn(f64) -> f64,
    measure: fn(&SimOutcome) -> f64,
    /// Resolving-power factor (see `band`).
    band_factor: f64,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "M/M/1 mean sojourn",
            servers: 1,
            service: ServiceTime::Exponential {
                mean_s: MEAN_SERVICE_S,
            },
            theory: |rho| MEAN_SERVICE_S / (1.0 - rho),
            measure: |o| o.latency.mean_s,
            band_factor: 1.0,
        },
        Case {
            name: "M/M/1 p99 sojourn",
            servers: 1,
            service: ServiceTime::Exponential {
                mean_s: MEAN_SERVICE_S,
            },
            theory: |rho| 100f64.ln() * MEAN_SERVICE_S / (1.0 - rho),
            measure: |o| o.latency.p99_s,
            band_factor: 1.5,
        },
        Case {
            name: "M/M/4 Erlang-C mean wait",
            servers: 4,
            service: ServiceTime::Exponential {
                mean_s: MEAN_SERVICE_S,
            },
            theory: |rho| {
                let c = 4.0;
                erlang_c(4, rho * c) * MEAN_SERVICE_S / (c * (1.0 - rho))
            },
            measure: |o| o.mean_queue_wait_s,
            band_factor: 2.0,
        },
        Case {
            name: "M/D/1 Pollaczek-Khinchine mean wait",
            servers: 1,
            service: ServiceTime::Deterministic {
                seconds: MEAN_SERVICE_S,
            },
            theory: |rho| rho * MEAN_SERVICE_S / (2.0 * (1.0 - rho)),
            measure: |o| o.mean_queue_wait_s,
            band_factor: 1.0,
        },
    ]
}

/// Largest acceptable 3-SE band relative to theory at 2e5 requests. Near
/// saturation the sojourn process is strongly autocorrelated (relaxation
/// time ~ 1/(1-rho)^2 services), so the same number of requests resolves
/// far less: at rho = 0.95 even 1e6 requests give a 3-SE band near 10%
/// for the M/M/1 mean, which is why the criterion is "2% or 3 SE".
fn band(rho: f64) -> f64 {
    if rho < 0.7 {
        0.05
    } else if rho < 0.9 {
        0.12
    } else {
        0.40
    }
}

/// Requests for a case at `rho`: near saturation a run of 2e4 requests holds
/// only ~50 relaxation times, and its p99 is biased low (a replication often
/// misses the rare long excursions), so 3 SE cannot cover the error: with 2e5
/// per case the check passed for only 17 of 30 seed bases (with the old single
/// random stream and with per-source streams alike), with 1e6 for 27 of 30.
fn requests_at(rho: f64, total_measured: u64) -> u64 {
    if rho > 0.9 {
        total_measured.max(1_000_000)
    } else {
        total_measured
    }
}

fn check_all(total_measured: u64, replications: u64, band_scale: f64, seed_base: u64) {
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for case in cases() {
        for &rho in &[0.5, 0.8, 0.95] {
            let n = requests_at(rho, total_measured) / replications;
            // warm-up: many relaxation times (~1/(1-rho)^2 services)
            let warm = ((20.0 / ((1.0 - rho) * (1.0 - rho))) as u64).max(2_000);
            let values: Vec<f64> = (0..replications)
                .map(|r| {
                    let cfg = config(
                        seed_base + r,
                        rho,
                        case.servers,
                        case.service.clone(),
                        n,
                        warm,
                    );
                    let out = simulate(&cfg).expect("valid config");
                    assert_eq!(out.failures.total(), 0);
                    assert_eq!(out.completed, out.measured_requests);
                    (case.measure)(&out)
                })
                .collect();
            let k = values.len() as f64;
            let mean = values.iter().sum::<f64>() / k;
            let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (k - 1.0);
            let se = (var / k).sqrt();
            let theory = (case.theory)(rho);
            let err = (mean - theory).abs();
            let tol = (0.02 * theory).max(3.0 * se);
            let line = format!(
                "{} rho {rho}: sim {mean:.6e} theory {theory:.6e} rel err {:.4} 3SE/theory {:.4}",
                case.name,
                err / theory,
                3.0 * se / theory
            );
            if err > tol || 3.0 * se > band(rho) * case.band_factor * band_scale * theory {
                failures.push(line.clone());
            }
            report.push(line);
        }
    }
    println!("{}", report.join("\n"));
    assert!(failures.is_empty(), "failed:\n{}", failures.join("\n"));
}

#[test]
fn queueing_theory_default_size() {
    check_all(200_000, 10, 1.0, 1_000);
}

#[test]
#[ignore = "1e6 requests per case; run with --release -- --ignored"]
fn queueing_theory_one_million_per_case() {
    check_all(1_000_000, 20, 0.5, 7_000);
}

#[test]
fn erlang_c_formula_sanity() {
    // c = 1 reduces to rho
    assert!((erlang_c(1, 0.7) - 0.7).abs() < 1e-12);
    // textbook value: c = 2, a = 1 -> 1/3
    assert!((erlang_c(2, 1.0) - 1.0 / 3.0).abs() < 1e-12);
}
