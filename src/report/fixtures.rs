//! A realistic hand-built [`Report`] for tests, snapshots and the TUI's
//! view tests. Not used by the pipeline itself.

use super::model::*;
use workbench_kernels::{BackendKind, Precision};

#[allow(clippy::too_many_arguments)]
fn plan(
    mode: ServingMode,
    placement: Placement,
    target: &str,
    replicas: u32,
    backend: BackendKind,
    precision: Precision,
    max_batch: u32,
    max_delay_ms: f64,
    latency_ms: [f64; 4],
    cost_usd_per_month: f64,
    accuracy_agreement: f64,
    utilisation: f64,
    on_pareto_front: bool,
) -> Plan {
    let throughput_rps = 400.0;
    let monthly_predictions = throughput_rps * 3600.0 * 24.0 * 30.0;
    let id = format!("{mode}/{placement}/{target}x{replicas}/{backend}-{precision}/b{max_batch}");
    let cost_breakdown = match placement {
        Placement::Edge => vec![CostLine {
            item: "model download (CDN egress)".to_string(),
            usd_per_month: cost_usd_per_month,
        }],
        _ => vec![
            CostLine {
                item: format!("{replicas} x {target} on-demand"),
                usd_per_month: cost_usd_per_month * 0.9,
            },
            CostLine {
                item: "load balancer and egress".to_string(),
                usd_per_month: cost_usd_per_month * 0.1,
            },
        ],
    };
    Plan {
        id,
        mode,
        placement,
        target: target.to_string(),
        replicas,
        model_variant: "base".to_string(),
        backend,
        precision,
        max_batch,
        max_delay_ms,
        fallback: None,
        precompute_fraction: None,
        latency_ms: LatencyPercentiles {
            p50: latency_ms[0],
            p90: latency_ms[1],
            p99: latency_ms[2],
            p999: latency_ms[3],
        },
        latency_source: FigureSource::Projected,
        throughput_rps,
        cost_usd_per_month,
        cost_usd_per_million: cost_usd_per_month / monthly_predictions * 1e6,
        cost_breakdown,
        accuracy_agreement,
        utilisation,
        failure_rate: 0.0,
        staleness_s: None,
        batch_job: None,
        consumer_lag: None,
        device_classes: Vec::new(),
        device_memory_bytes: None,
        energy_mj_per_prediction: None,
        on_pareto_front,
        simulated: true,
        slo_latency_ms: Some(latency_ms[2]),
        slo_latency_ci_ms: None,
    }
}

/// Latency CDF shaped like a shifted log-normal through the given percentiles.
fn cdf(plan: &Plan) -> LatencyCdf {
    let l = plan.latency_ms;
    let points = [
        (l.p50 * 0.6, 0.0),
        (l.p50 * 0.8, 0.1),
        (l.p50 * 0.92, 0.3),
        (l.p50, 0.5),
        (l.p50 + (l.p90 - l.p50) * 0.5, 0.75),
        (l.p90, 0.9),
        (l.p90 + (l.p99 - l.p90) * 0.5, 0.97),
        (l.p99, 0.99),
        (l.p999, 0.999),
        (l.p999 * 1.1, 1.0),
    ]
    .into_iter()
    .map(|(latency_ms, fraction)| CdfPoint {
        latency_ms,
        fraction,
    })
    .collect();
    LatencyCdf {
        plan_id: plan.id.clone(),
        points,
    }
}

fn kernel(
    backend: BackendKind,
    precision: Precision,
    batch: u32,
    median_us: f64,
    gflops: f64,
    peak: f64,
) -> KernelMeasurement {
    KernelMeasurement {
        backend,
        precision,
        batch,
        workload: "mlp 256-512-512-2".to_string(),
        median_ns: median_us * 1e3,
        p90_ns: median_us * 1.12e3,
        p99_ns: median_us * 1.35e3,
        gflops,
        fraction_of_peak: gflops / peak,
        source: FigureSource::Measured,
        target: "local (AMD EPYC 9R14)".to_string(),
        reduced: false,
        high_variance: false,
        // The model's widest layer in and out, per sample.
        activation_bytes: Some(u64::from(batch) * (512 + 512) * 4),
    }
}

/// A fraud-scoring scenario: online HTTP in the cloud wins; a batch plan,
/// an edge plan and an over-budget plan are rejected with reasons.
/// One device class of a fleet plan, ten devices serving half the
/// requests, running `variant` `backend` `precision`.
pub fn device_class(
    target: &str,
    variant: &str,
    backend: BackendKind,
    precision: Precision,
) -> DeviceClassFigures {
    DeviceClassFigures {
        target: target.into(),
        devices: 10,
        traffic_share: 0.5,
        latency_ms: Default::default(),
        average_power_w: 0.1,
        slo_latency_ms: None,
        build: Some(ClassBuildFigures {
            model_variant: variant.into(),
            backend,
            precision,
        }),
    }
}

pub fn sample_report() -> Report {
    use BackendKind::*;
    use Placement::*;
    use Precision::*;
    use ServingMode::*;

    let recommended = plan(
        OnlineHttp,
        Cloud,
        "c7i.large",
        2,
        Tiled,
        Int8,
        8,
        2.0,
        [11.4, 16.9, 28.3, 41.7],
        142.56,
        0.9962,
        0.41,
        true,
    );
    let runner_up = plan(
        OnlineHttp,
        Cloud,
        "c7i.large",
        2,
        Tiled,
        F32,
        8,
        2.0,
        [13.1, 19.8, 33.9, 52.2],
        142.56,
        1.0,
        0.58,
        true,
    );
    let mut stream = plan(
        OnlineStream,
        Cloud,
        "c7i.xlarge",
        1,
        Autotuned,
        F32,
        32,
        10.0,
        [18.2, 27.5, 44.1, 61.0],
        196.30,
        1.0,
        0.33,
        false,
    );
    stream.cost_breakdown.push(CostLine {
        item: "Kafka broker (managed, 1 partition)".to_string(),
        usd_per_month: 72.0,
    });
    stream.cost_usd_per_month += 72.0;
    stream.cost_usd_per_million = stream.cost_usd_per_month / (400.0 * 3600.0 * 24.0 * 30.0) * 1e6;
    let fast_but_costly = plan(
        OnlineHttp,
        Cloud,
        "c7i.2xlarge",
        4,
        Fused,
        F32,
        1,
        0.0,
        [6.2, 8.0, 12.4, 19.9],
        1425.60,
        1.0,
        0.07,
        true,
    );
    let mut batch = plan(
        Batch,
        Cloud,
        "c7i.large",
        1,
        Tiled,
        F32,
        256,
        0.0,
        [1.2, 1.9, 3.1, 4.4],
        38.88,
        1.0,
        0.02,
        true,
    );
    batch.staleness_s = Some(43_200.0);
    batch.batch_job = Some(BatchJob {
        every_s: 84_600.0,
        run_s: 1_800.0,
        instances: 1,
        runs_per_month: 730.0 / 23.5,
        max_staleness_s: 86_400.0,
    });
    batch.latency_source = FigureSource::Measured;
    let mut edge = plan(
        OnlineHttp,
        Edge,
        "phone-midrange",
        1,
        Quantized,
        Int8,
        1,
        0.0,
        [9.8, 14.0, 22.5, 35.1],
        5.0,
        0.9962,
        0.12,
        true,
    );
    edge.energy_mj_per_prediction = Some(3.4);
    edge.failure_rate = 0.3;
    let naive = plan(
        OnlineHttp,
        Cloud,
        "c7i.large",
        2,
        Naive,
        F32,
        8,
        2.0,
        [96.0, 151.0, 212.0, 260.0],
        142.56,
        1.0,
        0.97,
        false,
    );

    let latency_cdfs = vec![cdf(&recommended), cdf(&runner_up), cdf(&stream)];
    let peak = 165.0;
    Report {
        scenario: "fraud-scoring".to_string(),
        description: "Score card transactions for fraud before authorisation: 400 req/s, p99 under 50 ms, budget $500/month.".to_string(),
        feasible: true,
        recommended: Some(recommended),
        alternatives: vec![
            Alternative {
                plan: runner_up,
                rejected_because: None,
            },
            Alternative {
                plan: stream,
                rejected_because: None,
            },
            Alternative {
                plan: fast_but_costly,
                rejected_because: Some("over budget by $925.60/month ($1,425.60 > $500.00)".to_string()),
            },
            Alternative {
                plan: batch,
                rejected_because: Some("inputs unbounded: cannot precompute".to_string()),
            },
            Alternative {
                plan: edge,
                rejected_because: Some("needs connectivity; device offline 30% of the time".to_string()),
            },
            Alternative {
                plan: naive,
                rejected_because: Some("p99 212 ms > SLO 50 ms".to_string()),
            },
        ],
        rationale: vec![
            "Online HTTP: transactions arrive one at a time and must be scored before authorisation, so nothing can be precomputed.".to_string(),
            "Cloud: the scoring features live in the data centre; an edge plan would be offline 30% of the time.".to_string(),
            "Tiled int8 cuts p99 from 33.9 ms (tiled f32) to 28.3 ms at 99.62% agreement with the f32 model, on the same 2 replicas.".to_string(),
            "Runner-up: the same plan in f32 costs the same ($142.56/month) with 5.6 ms more p99 latency.".to_string(),
        ],
        constraints: vec![
            ConstraintCheck {
                name: "p99 latency".to_string(),
                required: "<= 50 ms".to_string(),
                achieved: "28.3 ms".to_string(),
                ok: true,
                checked: true,
            },
            ConstraintCheck {
                name: "throughput".to_string(),
                required: ">= 400 req/s".to_string(),
                achieved: "400 req/s at 41% utilisation".to_string(),
                ok: true,
                checked: true,
            },
            ConstraintCheck {
                name: "budget".to_string(),
                required: "<= $500.00/month".to_string(),
                achieved: "$142.56/month".to_string(),
                ok: true,
                checked: true,
            },
            ConstraintCheck {
                name: "accuracy agreement".to_string(),
                required: ">= 99.0%".to_string(),
                achieved: "99.62%".to_string(),
                ok: true,
                checked: true,
            },
        ],
        sensitivity: vec![
            SensitivityLine {
                parameter: "traffic".to_string(),
                stays_best_up_to_factor: Some(2.4),
                summary: "stays best up to 2.4x traffic; above that, 1 more replica".to_string(),
            },
            SensitivityLine {
                parameter: "network RTT".to_string(),
                stays_best_up_to_factor: Some(3.0),
                summary: "meets the SLO up to 3.0x RTT (60 ms round trip)".to_string(),
            },
            SensitivityLine {
                parameter: "instance price".to_string(),
                stays_best_up_to_factor: None,
                summary: "stays best at any price explored (0.5x to 4x)".to_string(),
            },
        ],
        kernels: vec![
            kernel(Naive, F32, 1, 412.0, 1.28, peak),
            kernel(Fused, F32, 1, 160.0, 3.30, peak),
            kernel(Tiled, F32, 1, 61.0, 8.66, peak),
            kernel(Tiled, F32, 8, 118.0, 35.8, peak),
            kernel(Tiled, Int8, 8, 71.0, 59.5, 630.0),
            kernel(Autotuned, F32, 32, 301.0, 56.2, peak),
        ],
        roofline: Roofline {
            machine: "local (AMD EPYC 9R14, 1 core)".to_string(),
            peak_gflops: peak,
            peak_gops_int8: Some(630.0),
            bandwidths: vec![
                BandwidthRoof {
                    name: "L2".to_string(),
                    gb_per_s: 180.0,
                },
                BandwidthRoof {
                    name: "DRAM".to_string(),
                    gb_per_s: 20.0,
                },
            ],
            points: vec![
                RooflinePoint {
                    label: "naive f32 b1".to_string(),
                    arithmetic_intensity: 0.5,
                    achieved_gflops: 1.28,
                    source: FigureSource::Measured,
                    precision: Precision::F32,
                    working_set_bytes: Some(300_000),
                    memory_level: Some("L2".to_string()),
                },
                RooflinePoint {
                    label: "tiled f32 b8".to_string(),
                    arithmetic_intensity: 3.9,
                    achieved_gflops: 35.8,
                    source: FigureSource::Measured,
                    precision: Precision::F32,
                    working_set_bytes: Some(2_400_000),
                    memory_level: Some("DRAM".to_string()),
                },
                RooflinePoint {
                    label: "autotuned f32 b32".to_string(),
                    arithmetic_intensity: 14.2,
                    achieved_gflops: 56.2,
                    source: FigureSource::Measured,
                    precision: Precision::F32,
                    working_set_bytes: Some(9_600_000),
                    memory_level: Some("DRAM".to_string()),
                },
            ],
        },
        latency_cdfs,
        assumptions: Assumptions {
            hardware_fingerprint: "x86_64-zen4-avx512f-vnni-2c-24g-3f9a1c".to_string(),
            cpu: "AMD EPYC 9R14 (2 vCPU)".to_string(),
            seed: 42,
            quick: false,
            tool_version: "0.1.0".to_string(),
            measured: vec![
                "kernel latencies on this machine (criterion-style harness, 30 samples)".to_string(),
            ],
            projected: vec![
                "latencies on c7i.* instances and phone-midrange: roofline projection from the measured kernels".to_string(),
                "network RTT, broker and queueing: simulated (seeded)".to_string(),
            ],
            notes: vec![
                "on-demand prices, us-east-1, 730 hours/month".to_string(),
                "Poisson arrivals at 400 req/s, 20 ms RTT to the region".to_string(),
            ],
            generated_at: "2026-01-01T00:00:00Z".to_string(),
        },
        baseline: None,
        projection: None,
        slo: Some(LatencySlo {
            percentile: 99.0,
            latency_ms: 50.0,
        }),
        predictions_per_request: None,
        programs: vec![CompiledProgram {
            model_variant: "base".to_string(),
            backend: Tiled,
            precision: Int8,
            text: "tiled (tiled kernels, avx512, mc 120 nc 2048 kc 1024 mr 12 nr 32, 1 thread)
lowered mlp: 5 graph ops -> 3 steps
  %0 = input [64]
  %1 = matmul(%0) 1x64 . 64x128 +bias +relu  # dense0+act0
  %2 = matmul(%1) 1x128 . 128x128 +bias +relu  # dense1+act1
  %3 = matmul(%2) 1x128 . 128x2 +bias  # dense2
  output %3"
                .to_string(),
        }],
    }
}
