//! A deterministic stand-in pipeline for tests and demos. Its numbers follow
//! simple formulas (queueing, price x replicas) so what-if changes move the
//! recommendation the way a person would expect, but they are not measured.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::pipeline::{
    KernelRow, Measurements, Pipeline, Progress, ScenarioEntry, WhatIf, WhatIfLimits,
};
use super::scenarios::scenario_entries;
use crate::report::{
    Alternative, Assumptions, BandwidthRoof, CdfPoint, CompiledProgram, ConstraintCheck, CostLine,
    FigureSource, KernelMeasurement, LatencyCdf, LatencyPercentiles, LatencySlo, Placement, Plan,
    Report, Roofline, RooflinePoint, ServingMode,
};
use workbench_kernels::{BackendKind, Precision};

/// The fake pipeline. `step_delay` slows measuring down so progress is visible.
#[derive(Debug, Clone, Default)]
pub struct FakePipeline {
    pub step_delay: Duration,
}

/// What the fake keeps between measuring and planning (stands in for latency profiles).
#[derive(Debug, Clone, PartialEq)]
struct FakeCache {
    /// One-sample service time on one core, f32 and int8.
    service_ms_f32: f64,
    service_ms_int8: f64,
}

const SAMPLES_PER_KERNEL: u32 = 20;
const SAMPLE_STEP: u32 = 5;
const PEAK_F32: f64 = 160.0;
const PEAK_INT8: f64 = 630.0;
const BANDWIDTH: f64 = 20.0;

impl FakePipeline {
    pub fn new() -> FakePipeline {
        FakePipeline::default()
    }

    pub fn with_delay(step_delay: Duration) -> FakePipeline {
        FakePipeline { step_delay }
    }

    fn pause(&self) {
        if !self.step_delay.is_zero() {
            std::thread::sleep(self.step_delay);
        }
    }
}

/// The fake model's only variant (kernels and plans are builds of it).
const FAKE_VARIANT: &str = "base";

/// The backend this fake build has no program of, as if its timings had
/// been cached before programs were kept (the Kernels view says so).
const FAKE_UNRECORDED: (&str, &str) = ("naive", "int8");

/// A program per fake build (one compile serves every batch), but
/// [`FAKE_UNRECORDED`]'s: what the backend would print for a small MLP.
fn fake_programs(kernels: &[KernelRow]) -> Vec<CompiledProgram> {
    let mut programs: Vec<CompiledProgram> = Vec::new();
    for k in kernels {
        if (k.backend.as_str(), k.precision.as_str()) == FAKE_UNRECORDED
            || programs.iter().any(|p| k.is_build_of(p))
        {
            continue;
        }
        let (Some(backend), Some(precision)) = (
            BackendKind::parse(&k.backend),
            Precision::parse(&k.precision),
        ) else {
            continue;
        };
        programs.push(CompiledProgram {
            model_variant: k.model_variant.clone(),
            backend,
            precision,
            text: fake_program_text(backend, precision),
        });
    }
    programs
}

/// A lowered MLP 64-128-128-2 as each backend prints one (the tiled
/// backend's header and steps as `Executable::lowered` writes them).
fn fake_program_text(backend: BackendKind, precision: Precision) -> String {
    let mut lines: Vec<String> = Vec::new();
    match (backend, precision) {
        (BackendKind::Naive, _) => {
            lines.push("naive (op by op, no fusion)".to_string());
            lines.push("mlp: 5 graph ops".to_string());
            lines.push("  %0 = input [64]".to_string());
            for (i, (k, n)) in [(64, 128), (128, 128), (128, 2)].into_iter().enumerate() {
                let input = if i == 0 { 0 } else { 2 * i };
                lines.push(format!(
                    "  %{} = dense{i}(%{input}) {k}x{n} +bias",
                    2 * i + 1
                ));
                if i < 2 {
                    lines.push(format!("  %{} = relu(%{})  # act{i}", 2 * i + 2, 2 * i + 1));
                }
            }
            lines.push("  output %5".to_string());
        }
        (_, Precision::Int8) => {
            lines.push(format!(
                "{backend} int8: quantized (int8 path vnni512, half path f16c)"
            ));
            lines.push("lowered mlp: 5 graph ops -> 3 steps".to_string());
            for (i, scale) in ["7.843e-3", "1.214e-2", "9.977e-3"].into_iter().enumerate() {
                let relu = if i < 2 { " + relu" } else { "" };
                lines.push(format!(
                    "  dense{i}: int8 gemm{relu} (u8 act scale {scale} zp 128, s8 per-channel weights)"
                ));
                if i < 2 {
                    lines.push(format!("  act{i}: fused into the op before"));
                }
            }
            lines.push("  output: dequantized to f32 (scale 3.1e-3)".to_string());
        }
        (BackendKind::Autotuned, _) => {
            lines.push(
                "autotuned: a tile per GEMM shape (8 trials run, 8 logged; default mc 120 nc 2048 kc 1024 mr 12 nr 32)"
                    .to_string(),
            );
            for (k, n) in [(64, 128), (128, 128), (128, 2)] {
                lines.push(format!(
                    "  gemm 1x{n}x{k}: mc 64 nc 256 kc 256 mr 8 nr 32 threads 1 MNK k_split 1, 310 ns, 8 trials"
                ));
            }
            lines.extend(fake_tiled_steps());
        }
        (_, _) => {
            lines.push(format!(
                "{backend} ({backend} kernels, avx512, mc 120 nc 2048 kc 1024 mr 12 nr 32, 1 thread)"
            ));
            lines.extend(fake_tiled_steps());
        }
    }
    lines.join("\n")
}

/// The fused steps of the fake MLP: each dense layer with its bias and ReLU.
fn fake_tiled_steps() -> Vec<String> {
    vec![
        "lowered mlp: 5 graph ops -> 3 steps".to_string(),
        "  %0 = input [64]".to_string(),
        "  %1 = matmul(%0) 1x64 . 64x128 +bias +relu  # dense0+act0".to_string(),
        "  %2 = matmul(%1) 1x128 . 128x128 +bias +relu  # dense1+act1".to_string(),
        "  %3 = matmul(%2) 1x128 . 128x2 +bias  # dense2".to_string(),
        "  output %3".to_string(),
    ]
}

/// The built-in scenarios' devices are offline this share of the time.
const FAKE_OFFLINE_FRACTION: f64 = 0.1;

/// The three scenarios listed when no paths are given: two valid, one broken.
pub fn builtin_scenarios() -> Vec<ScenarioEntry> {
    vec![
        ScenarioEntry {
            path: PathBuf::from("scenarios/recsys-online.toml"),
            name: "recsys-online".to_string(),
            summary: vec![
                "model: mlp 512-1024-1024-256, 1.8 M params, 3.7 MFLOP/sample".to_string(),
                "traffic: 200 req/s, diurnal x3 peak".to_string(),
                "SLO: p99 <= 50 ms · budget $600/month".to_string(),
                "constraints: inputs unbounded".to_string(),
                "targets: c7i.large, c7i.xlarge, c7i.2xlarge, phone-mid".to_string(),
            ],
            errors: vec![],
            problems: 0,
            offline_fraction: FAKE_OFFLINE_FRACTION,
            has_budget: true,
            has_edge: true,
            what_if_limits: WhatIfLimits::default(),
        },
        ScenarioEntry {
            path: PathBuf::from("scenarios/keyboard-edge.toml"),
            name: "keyboard-edge".to_string(),
            summary: vec![
                "model: transformer 4 layers d256, 3.2 M params, 52 MFLOP/sample".to_string(),
                "traffic: 20 req/s per device".to_string(),
                "SLO: p99 <= 80 ms · data may not leave the device".to_string(),
                "targets: phone-mid, phone-low".to_string(),
            ],
            errors: vec![],
            problems: 0,
            offline_fraction: FAKE_OFFLINE_FRACTION,
            has_budget: false,
            has_edge: true,
            what_if_limits: WhatIfLimits::default(),
        },
        ScenarioEntry {
            path: PathBuf::from("scenarios/broken.toml"),
            name: "broken".to_string(),
            summary: vec![],
            errors: vec![
                "scenarios/broken.toml:3:1: unknown key `trafic` (expected one of: traffic, slo, budget, model, targets)".to_string(),
            ],
            problems: 1,
            offline_fraction: 0.0,
            has_budget: false,
            has_edge: false,
            what_if_limits: WhatIfLimits::default(),
        },
    ]
}

fn scenario_seed(name: &str) -> u64 {
    name.bytes().fold(7u64, |acc, b| {
        acc.wrapping_mul(31).wrapping_add(u64::from(b))
    })
}

impl Pipeline for FakePipeline {
    /// No paths: three built-in entries (one broken). Otherwise the real
    /// scenario parser lists the files, errors and all.
    fn load_scenarios(&self, paths: &[PathBuf]) -> Vec<ScenarioEntry> {
        if paths.is_empty() {
            builtin_scenarios()
        } else {
            scenario_entries(paths)
        }
    }

    /// A listed file as it reads now; the built-in entries (no files) as they are.
    fn reload(&self, scenario: &ScenarioEntry) -> ScenarioEntry {
        let builtin = builtin_scenarios().iter().any(|b| b.path == scenario.path);
        if builtin || !scenario.path.is_file() {
            scenario.clone()
        } else {
            super::scenarios::scenario_entry(&scenario.path)
        }
    }

    fn measure(
        &self,
        scenario: &ScenarioEntry,
        progress: &dyn Fn(Progress),
        cancel: &Arc<AtomicBool>,
    ) -> Result<Measurements, String> {
        let seed = scenario_seed(&scenario.name);
        let flops_per_sample = 2.0e6 * (1.0 + (seed % 5) as f64);
        progress(Progress::Stage("measuring kernels".to_string()));
        let mut kernels = Vec::new();
        for backend in ["naive", "tiled", "autotuned"] {
            if backend == "autotuned" {
                let total = 8;
                let mut best: f64 = 0.0;
                for trial in 1..=total {
                    if cancel.load(Ordering::Relaxed) {
                        return Err("cancelled".to_string());
                    }
                    best = best.max(40.0 + 25.0 * (1.0 - 1.0 / f64::from(trial)));
                    progress(Progress::Tuning {
                        trial,
                        total,
                        best_gflops: best,
                        best_config: format!("tile {}x32x256", 16 * trial.min(4)),
                    });
                    self.pause();
                }
            }
            for precision in ["f32", "int8"] {
                for batch in [1u32, 32] {
                    let key = format!("{backend} {precision} b{batch}");
                    let mut done = 0;
                    while done < SAMPLES_PER_KERNEL {
                        if cancel.load(Ordering::Relaxed) {
                            return Err("cancelled".to_string());
                        }
                        done += SAMPLE_STEP;
                        progress(Progress::Kernel {
                            key: key.clone(),
                            done,
                            total: SAMPLES_PER_KERNEL,
                        });
                        self.pause();
                    }
                    let base: f64 = match backend {
                        "naive" => 4.0,
                        "tiled" => 40.0,
                        _ => 60.0,
                    };
                    let peak = if precision == "int8" {
                        PEAK_INT8
                    } else {
                        PEAK_F32
                    };
                    let speedup = if precision == "int8" { 2.5 } else { 1.0 };
                    let batching = if batch > 1 { 2.5 } else { 1.0 };
                    let gflops = (base * speedup * batching).min(0.9 * peak);
                    let latency_ms = flops_per_sample * f64::from(batch) / (gflops * 1e9) * 1e3;
                    kernels.push(KernelRow {
                        variant: None,
                        model_variant: FAKE_VARIANT.to_string(),
                        backend: backend.to_string(),
                        precision: precision.to_string(),
                        batch,
                        latency_ms,
                        throughput_per_s: f64::from(batch) / (latency_ms / 1e3),
                        gflops,
                        fraction_of_peak: gflops / peak,
                        arithmetic_intensity: 0.5 * f64::from(batch).powf(0.8) * speedup,
                        // The reference keeps every output; the others a few buffers.
                        activation_bytes: Some(
                            u64::from(batch) * if backend == "naive" { 96_000 } else { 24_000 },
                        ),
                    });
                }
            }
        }
        let best_ms = |precision: &str| {
            kernels
                .iter()
                .filter(|k| k.precision == precision && k.batch == 1)
                .map(|k| k.latency_ms)
                .fold(f64::INFINITY, f64::min)
        };
        let cache = FakeCache {
            service_ms_f32: best_ms("f32"),
            service_ms_int8: best_ms("int8"),
        };
        let programs = fake_programs(&kernels);
        Ok(Measurements {
            kernels,
            peak_gflops: PEAK_F32,
            bandwidth_gbs: BANDWIDTH,
            peak_gops_int8: Some(PEAK_INT8),
            bandwidth_roofs: vec![("DRAM".to_string(), BANDWIDTH)],
            tuned: Some("tile 64x32x256".to_string()),
            not_measured: Vec::new(),
            programs,
            cache: Arc::new(cache),
        })
    }

    fn plan(
        &self,
        scenario: &ScenarioEntry,
        measurements: &Measurements,
        what_if: &WhatIf,
        progress: &dyn Fn(Progress),
        cancel: &Arc<AtomicBool>,
    ) -> Result<Report, String> {
        let cache = measurements
            .cache
            .downcast_ref::<FakeCache>()
            .ok_or("measurements come from another pipeline")?;
        progress(Progress::Stage("simulating candidates".to_string()));
        if cancel.load(Ordering::Relaxed) {
            return Err("cancelled".to_string());
        }
        Ok(fake_report(&scenario.name, measurements, cache, what_if))
    }

    fn export(
        &self,
        _scenario: &ScenarioEntry,
        report: &Report,
        out_dir: &Path,
    ) -> Result<Vec<PathBuf>, String> {
        // As the real writer: the report's own name is its directory.
        let dir = out_dir.join(&report.scenario);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let best = report
            .recommended
            .as_ref()
            .map_or("none".to_string(), |p| p.id.clone());
        let mut csv = String::from("id,p99_ms,cost_usd_per_month,feasible,rejected_because\n");
        let rows = report.recommended.iter().map(|p| (p, None)).chain(
            report
                .alternatives
                .iter()
                .map(|a| (&a.plan, a.rejected_because.as_ref())),
        );
        for (plan, reason) in rows {
            csv.push_str(&format!(
                "{},{:.3},{:.2},{},{}\n",
                plan.id,
                plan.latency_ms.p99,
                plan.cost_usd_per_month,
                reason.is_none(),
                reason.cloned().unwrap_or_default()
            ));
        }
        let json = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
        let files = [
            (
                "report.md",
                format!("# {}\n\nRecommended: {best}\n", report.scenario),
            ),
            ("candidates.csv", csv),
            ("plan.json", json),
        ];
        let mut written = Vec::new();
        for (name, contents) in files {
            let path = dir.join(name);
            std::fs::write(&path, contents).map_err(|e| format!("{}: {e}", path.display()))?;
            written.push(path);
        }
        Ok(written)
    }
}

struct Target {
    name: &'static str,
    cloud: bool,
    cores: f64,
    usd_per_hour: f64,
}

const TARGETS: [Target; 4] = [
    Target {
        name: "c7i.large",
        cloud: true,
        cores: 2.0,
        usd_per_hour: 0.089,
    },
    Target {
        name: "c7i.xlarge",
        cloud: true,
        cores: 4.0,
        usd_per_hour: 0.178,
    },
    Target {
        name: "c7i.2xlarge",
        cloud: true,
        cores: 8.0,
        usd_per_hour: 0.357,
    },
    Target {
        name: "phone-mid",
        cloud: false,
        cores: 1.0,
        usd_per_hour: 0.0,
    },
];

const HOURS_PER_MONTH: f64 = 730.0;

/// Simulated figures of one fake candidate.
struct Figures {
    p99_ms: f64,
    cost_usd_per_month: f64,
    throughput_rps: f64,
    utilisation: f64,
}

fn fake_report(
    scenario: &str,
    measurements: &Measurements,
    cache: &FakeCache,
    what_if: &WhatIf,
) -> Report {
    let traffic = 200.0 * what_if.traffic;
    let slo = 50.0 * what_if.slo;
    let budget = 600.0 * what_if.budget;
    let rtt = 20.0 * what_if.rtt;
    let offline = what_if.offline_fraction.unwrap_or(FAKE_OFFLINE_FRACTION);
    // Scale the measured service times to a realistic model size (8 ms per f32
    // sample on one core), keeping the measured int8/f32 ratio.
    let scale = 8.0 / cache.service_ms_f32.max(1e-9);
    let mut candidates: Vec<(Plan, Option<String>)> = Vec::new();
    for target in &TARGETS {
        for precision in [Precision::F32, Precision::Int8] {
            let one_core_ms = scale
                * if precision == Precision::Int8 {
                    cache.service_ms_int8
                } else {
                    cache.service_ms_f32
                };
            if target.cloud {
                for replicas in [1u32, 2, 4] {
                    // Each core serves one request at a time; a replica is `cores` servers.
                    let capacity = f64::from(replicas) * target.cores * 1000.0 / one_core_ms;
                    let utilisation = traffic / capacity;
                    let cost = f64::from(replicas)
                        * target.usd_per_hour
                        * what_if.instance_price
                        * HOURS_PER_MONTH;
                    let p99 = if utilisation < 1.0 {
                        rtt + one_core_ms * (1.0 + 4.6 * utilisation / (1.0 - utilisation))
                    } else {
                        f64::INFINITY // overloaded: the queue grows without bound
                    };
                    let reason = if utilisation >= 1.0 {
                        Some(format!(
                            "utilisation {utilisation:.2} >= 1: needs more replicas"
                        ))
                    } else if p99 > slo {
                        Some(format!("p99 {p99:.0} ms > SLO {slo:.0} ms"))
                    } else if cost > budget {
                        Some(format!("over budget by ${:.0}/month", cost - budget))
                    } else {
                        None
                    };
                    let figures = Figures {
                        p99_ms: p99,
                        cost_usd_per_month: cost,
                        throughput_rps: traffic.min(capacity),
                        utilisation: utilisation.min(1.0),
                    };
                    candidates.push((
                        plan(
                            ServingMode::OnlineHttp,
                            Placement::Cloud,
                            target.name,
                            replicas,
                            precision,
                            figures,
                        ),
                        reason,
                    ));
                }
            } else {
                let p99 = one_core_ms * 20.0; // a phone core is ~20x slower
                let too_big = precision == Precision::F32;
                let reason = if too_big {
                    Some("model needs 310 MB, device has 256 MB".to_string())
                } else if p99 > slo {
                    Some(format!("p99 {p99:.0} ms > SLO {slo:.0} ms"))
                } else {
                    None
                };
                let figures = Figures {
                    p99_ms: p99,
                    cost_usd_per_month: 0.0,
                    throughput_rps: 1000.0 / p99,
                    utilisation: 0.3,
                };
                candidates.push((
                    plan(
                        ServingMode::OnlineHttp,
                        Placement::Edge,
                        target.name,
                        1,
                        precision,
                        figures,
                    ),
                    reason,
                ));
                let hybrid_p99 = p99 * 0.8 + rtt;
                let hybrid_reason = if offline > 0.2 {
                    Some(format!(
                        "needs connectivity; device offline {:.0}% of the time",
                        offline * 100.0
                    ))
                } else if too_big {
                    Some("model needs 310 MB, device has 256 MB".to_string())
                } else if hybrid_p99 > slo {
                    Some(format!("p99 {hybrid_p99:.0} ms > SLO {slo:.0} ms"))
                } else {
                    None
                };
                let figures = Figures {
                    p99_ms: hybrid_p99,
                    cost_usd_per_month: 90.0 * what_if.instance_price,
                    throughput_rps: 1000.0 / p99,
                    utilisation: 0.4,
                };
                candidates.push((
                    plan(
                        ServingMode::Hybrid,
                        Placement::Hybrid,
                        target.name,
                        1,
                        precision,
                        figures,
                    ),
                    hybrid_reason,
                ));
            }
        }
    }
    let mut batch = plan(
        ServingMode::Batch,
        Placement::Cloud,
        "c7i.large",
        1,
        Precision::F32,
        Figures {
            p99_ms: 2.0,
            cost_usd_per_month: 70.0,
            throughput_rps: traffic,
            utilisation: 0.1,
        },
    );
    batch.staleness_s = Some(3600.0);
    candidates.push((
        batch,
        Some("inputs unbounded: cannot precompute".to_string()),
    ));

    // Rank: feasible by cost then p99; rejected after them, in the same order.
    candidates.sort_by(|(a, ra), (b, rb)| {
        ra.is_some()
            .cmp(&rb.is_some())
            .then(a.cost_usd_per_month.total_cmp(&b.cost_usd_per_month))
            .then(a.latency_ms.p99.total_cmp(&b.latency_ms.p99))
    });
    let on_front: Vec<bool> = candidates
        .iter()
        .map(|(c, reason)| {
            reason.is_none()
                && !candidates.iter().any(|(o, other_reason)| {
                    other_reason.is_none()
                        && o.cost_usd_per_month <= c.cost_usd_per_month
                        && o.latency_ms.p99 <= c.latency_ms.p99
                        && (o.cost_usd_per_month < c.cost_usd_per_month
                            || o.latency_ms.p99 < c.latency_ms.p99)
                })
        })
        .collect();
    for ((plan, _), front) in candidates.iter_mut().zip(on_front) {
        plan.on_pareto_front = front;
    }
    let feasible = candidates
        .first()
        .is_some_and(|(_, reason)| reason.is_none());
    let mut rest = candidates.into_iter();
    let recommended = if feasible {
        rest.next().map(|(plan, _)| plan)
    } else {
        None
    };
    let alternatives: Vec<Alternative> = rest
        .map(|(plan, rejected_because)| Alternative {
            plan,
            rejected_because,
        })
        .collect();

    let mut rationale = Vec::new();
    let p99_achieved;
    if let Some(best) = &recommended {
        p99_achieved = best.latency_ms.p99;
        rationale.push(format!(
            "Cheapest plan with p99 <= {slo:.0} ms within ${budget:.0}/month at {traffic:.0} req/s: {} {} on {} x{}.",
            best.mode, best.placement, best.target, best.replicas
        ));
        rationale.push(format!(
            "int8 serves a request {:.1}x faster than f32 on this machine.",
            cache.service_ms_f32 / cache.service_ms_int8
        ));
        if let Some(runner_up) = alternatives.iter().find(|a| a.rejected_because.is_none()) {
            rationale.push(format!(
                "Runner-up: {} at ${:.0}/month (+${:.0}).",
                runner_up.plan.id,
                runner_up.plan.cost_usd_per_month,
                runner_up.plan.cost_usd_per_month - best.cost_usd_per_month
            ));
        }
    } else {
        p99_achieved = f64::INFINITY;
        rationale.push(format!(
            "No candidate meets p99 <= {slo:.0} ms within ${budget:.0}/month at {traffic:.0} req/s."
        ));
    }
    let latency_cdfs = recommended
        .iter()
        .chain(
            alternatives
                .iter()
                .filter(|a| a.rejected_because.is_none())
                .map(|a| &a.plan),
        )
        .take(3)
        .map(|plan| LatencyCdf {
            plan_id: plan.id.clone(),
            points: cdf_points(plan.latency_ms.p50, plan.latency_ms.p99),
        })
        .collect();
    // As the real report: the recommended plan's build only.
    let programs = recommended
        .iter()
        .flat_map(|plan| {
            measurements
                .programs
                .iter()
                .filter(|p| p.is_build(&plan.model_variant, plan.backend, plan.precision))
        })
        .cloned()
        .collect();
    let kernels = measurements
        .kernels
        .iter()
        .map(|k| KernelMeasurement {
            backend: BackendKind::parse(&k.backend).unwrap_or(BackendKind::Naive),
            precision: Precision::parse(&k.precision).unwrap_or(Precision::F32),
            batch: k.batch,
            workload: "fake model".to_string(),
            median_ns: k.latency_ms * 1e6,
            p90_ns: k.latency_ms * 1.1e6,
            p99_ns: k.latency_ms * 1.3e6,
            gflops: k.gflops,
            fraction_of_peak: k.fraction_of_peak,
            source: FigureSource::Measured,
            target: "this machine".to_string(),
            reduced: false,
            high_variance: false,
            activation_bytes: None,
        })
        .collect();
    let roofline = Roofline {
        machine: "this machine".to_string(),
        peak_gflops: measurements.peak_gflops,
        peak_gops_int8: None,
        bandwidths: vec![BandwidthRoof {
            name: "DRAM".to_string(),
            gb_per_s: measurements.bandwidth_gbs,
        }],
        points: measurements
            .kernels
            .iter()
            .map(|k| RooflinePoint {
                label: k.key(),
                arithmetic_intensity: k.arithmetic_intensity,
                achieved_gflops: k.gflops,
                source: FigureSource::Measured,
                precision: Precision::parse(&k.precision).unwrap_or(Precision::F32),
                working_set_bytes: None,
                memory_level: None,
            })
            .collect(),
    };
    Report {
        scenario: scenario.to_string(),
        description: "fake pipeline".to_string(),
        feasible,
        recommended,
        alternatives,
        rationale,
        constraints: vec![ConstraintCheck {
            name: "p99 latency".to_string(),
            required: format!("<= {slo:.0} ms"),
            achieved: format!("{p99_achieved:.1} ms"),
            ok: feasible,
            checked: true,
        }],
        sensitivity: vec![],
        kernels,
        roofline,
        latency_cdfs,
        baseline: None,
        projection: None,
        slo: Some(LatencySlo {
            percentile: 99.0,
            latency_ms: slo,
        }),
        predictions_per_request: Some(1),
        programs,
        assumptions: Assumptions {
            hardware_fingerprint: "fake".to_string(),
            cpu: "fake".to_string(),
            seed: 0,
            quick: false,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            measured: vec![],
            projected: vec![],
            notes: vec![format!("what-if: {}", what_if.describe())],
            generated_at: "1970-01-01T00:00:00Z".to_string(),
        },
    }
}

/// Shifted-exponential latency CDF through the given p50 and p99.
fn cdf_points(p50: f64, p99: f64) -> Vec<CdfPoint> {
    let scale = ((p99 - p50) / (100f64.ln() - 2f64.ln())).max(1e-6);
    let shift = p50 - scale * 2f64.ln();
    (0..=40)
        .map(|i| {
            let fraction = f64::from(i) / 40.0 * 0.995;
            CdfPoint {
                latency_ms: shift - scale * (1.0 - fraction).ln(),
                fraction,
            }
        })
        .collect()
}

fn plan(
    mode: ServingMode,
    placement: Placement,
    target: &str,
    replicas: u32,
    precision: Precision,
    figures: Figures,
) -> Plan {
    let backend = BackendKind::Autotuned;
    let max_batch = if mode == ServingMode::Batch { 256 } else { 8 };
    let monthly = figures.throughput_rps * 3600.0 * HOURS_PER_MONTH;
    Plan {
        id: format!("{mode} {placement} {target} x{replicas} {precision} b{max_batch}"),
        mode,
        placement,
        target: target.to_string(),
        replicas,
        model_variant: FAKE_VARIANT.to_string(),
        backend,
        precision,
        max_batch,
        max_delay_ms: 2.0,
        fallback: None,
        precompute_fraction: None,
        latency_ms: LatencyPercentiles {
            p50: figures.p99_ms * 0.45,
            p90: figures.p99_ms * 0.7,
            p99: figures.p99_ms,
            p999: figures.p99_ms * 1.3,
        },
        latency_source: FigureSource::Projected,
        throughput_rps: figures.throughput_rps,
        cost_usd_per_month: figures.cost_usd_per_month,
        cost_usd_per_million: if monthly > 0.0 {
            figures.cost_usd_per_month / monthly * 1e6
        } else {
            0.0
        },
        cost_breakdown: vec![CostLine {
            item: format!("{replicas} x {target}"),
            usd_per_month: figures.cost_usd_per_month,
        }],
        accuracy_agreement: if precision == Precision::Int8 {
            0.995
        } else {
            1.0
        },
        utilisation: figures.utilisation,
        failure_rate: if figures.utilisation > 0.9 { 0.01 } else { 0.0 },
        staleness_s: None,
        batch_job: None,
        consumer_lag: None,
        device_classes: Vec::new(),
        // What a phone holds for a small model's weights and activations.
        device_memory_bytes: (placement != Placement::Cloud).then_some(
            if precision == Precision::Int8 {
                620_000
            } else {
                2_400_000
            },
        ),
        energy_mj_per_prediction: None,
        on_pareto_front: false,
        simulated: true,
        // The fake's SLO is on p99.
        slo_latency_ms: Some(figures.p99_ms),
        slo_latency_ci_ms: None,
    }
}
