//! A deterministic stand-in pipeline for tests and demos. Its numbers follow
//! simple formulas (queueing, price x replicas) so what-if changes move the
//! recommendation the way a person would expect, but they are not measured.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::model::{CandidateRow, CdfSeries, PlanView};
use super::pipeline::{KernelRow, Measurements, Pipeline, Progress, ScenarioEntry, WhatIf};

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
        },
        ScenarioEntry {
            path: PathBuf::from("scenarios/broken.toml"),
            name: "broken".to_string(),
            summary: vec![],
            errors: vec![
                "scenarios/broken.toml:3:1: unknown key `trafic` (expected one of: traffic, slo, budget, model, targets)".to_string(),
            ],
        },
    ]
}

fn scenario_seed(name: &str) -> u64 {
    name.bytes().fold(7u64, |acc, b| {
        acc.wrapping_mul(31).wrapping_add(u64::from(b))
    })
}

fn entry_for_file(path: &Path) -> ScenarioEntry {
    let name = path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    let (summary, errors) = match std::fs::read_to_string(path) {
        Err(error) => (
            vec![],
            vec![format!("{}: cannot read: {error}", path.display())],
        ),
        Ok(text) => match text.parse::<toml::Table>() {
            Err(error) => (
                vec![],
                vec![format!("{}: {}", path.display(), error.message())],
            ),
            Ok(table) => (
                vec![
                    format!(
                        "{} top-level keys (fake pipeline: no real parsing)",
                        table.len()
                    ),
                    format!(
                        "keys: {}",
                        table.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ],
                vec![],
            ),
        },
    };
    ScenarioEntry {
        path: path.to_path_buf(),
        name,
        summary,
        errors,
    }
}

impl Pipeline for FakePipeline {
    fn load_scenarios(&self, paths: &[PathBuf]) -> Vec<ScenarioEntry> {
        if paths.is_empty() {
            return builtin_scenarios();
        }
        let mut entries = Vec::new();
        for path in paths {
            if path.is_dir() {
                let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                    .map(|dir| {
                        dir.filter_map(|e| e.ok().map(|e| e.path()))
                            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                            .collect()
                    })
                    .unwrap_or_default();
                files.sort();
                entries.extend(files.iter().map(|p| entry_for_file(p)));
            } else {
                entries.push(entry_for_file(path));
            }
        }
        entries
    }

    fn measure(
        &self,
        scenario: &ScenarioEntry,
        progress: &dyn Fn(Progress),
        cancel: &AtomicBool,
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
                        backend: backend.to_string(),
                        precision: precision.to_string(),
                        batch,
                        latency_ms,
                        throughput_per_s: f64::from(batch) / (latency_ms / 1e3),
                        gflops,
                        fraction_of_peak: gflops / peak,
                        arithmetic_intensity: 0.5 * f64::from(batch).powf(0.8) * speedup,
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
        Ok(Measurements {
            kernels,
            peak_gflops: PEAK_F32,
            bandwidth_gbs: BANDWIDTH,
            tuned: Some("tile 64x32x256".to_string()),
            cache: Arc::new(cache),
        })
    }

    fn plan(
        &self,
        scenario: &ScenarioEntry,
        measurements: &Measurements,
        what_if: &WhatIf,
        progress: &dyn Fn(Progress),
        cancel: &AtomicBool,
    ) -> Result<PlanView, String> {
        let cache = measurements
            .cache
            .downcast_ref::<FakeCache>()
            .ok_or("measurements come from another pipeline")?;
        progress(Progress::Stage("simulating candidates".to_string()));
        if cancel.load(Ordering::Relaxed) {
            return Err("cancelled".to_string());
        }
        Ok(fake_plan(&scenario.name, cache, what_if))
    }

    fn export(
        &self,
        scenario: &ScenarioEntry,
        plan: &PlanView,
        out_dir: &Path,
    ) -> Result<Vec<PathBuf>, String> {
        let dir = out_dir.join(&scenario.name);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let best = plan
            .recommended_row()
            .map_or("none".to_string(), |c| c.label.clone());
        let mut csv = String::from("label,p99_ms,cost_usd_per_month,feasible,rejected_because\n");
        for c in &plan.candidates {
            csv.push_str(&format!(
                "{},{:.3},{:.2},{},{}\n",
                c.label,
                c.p99_ms,
                c.cost_usd_per_month,
                c.feasible(),
                c.rejected_because.clone().unwrap_or_default()
            ));
        }
        let files = [
            (
                "report.md",
                format!("# {}\n\nRecommended: {best}\n", plan.scenario),
            ),
            ("candidates.csv", csv),
            (
                "plan.json",
                serde_json::json!({
                    "schema_version": 0,
                    "scenario": plan.scenario,
                    "feasible": plan.recommended.is_some(),
                    "recommended": best,
                })
                .to_string(),
            ),
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

fn fake_plan(scenario: &str, cache: &FakeCache, what_if: &WhatIf) -> PlanView {
    let traffic = 200.0 * what_if.traffic;
    // Scale the measured service times to a realistic model size (8 ms per f32
    // sample on one core), keeping the measured int8/f32 ratio.
    let scale = 8.0 / cache.service_ms_f32.max(1e-9);
    let slo = 50.0 * what_if.slo;
    let budget = 600.0 * what_if.budget;
    let rtt = 20.0 * what_if.rtt;
    let offline = what_if.offline_fraction.unwrap_or(0.1);
    let mut candidates = Vec::new();
    for target in &TARGETS {
        for precision in ["f32", "int8"] {
            let one_core_ms = scale
                * if precision == "int8" {
                    cache.service_ms_int8
                } else {
                    cache.service_ms_f32
                };
            if target.cloud {
                for replicas in [1u32, 2, 4] {
                    // Each core serves one request at a time; a replica is `cores` servers.
                    let service_ms = one_core_ms;
                    let capacity = f64::from(replicas) * target.cores * 1000.0 / service_ms;
                    let utilisation = traffic / capacity;
                    let cost = f64::from(replicas)
                        * target.usd_per_hour
                        * what_if.instance_price
                        * HOURS_PER_MONTH;
                    let p99 = if utilisation < 1.0 {
                        rtt + service_ms * (1.0 + 4.6 * utilisation / (1.0 - utilisation))
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
                    candidates.push(row(
                        "online-http",
                        "cloud",
                        target.name,
                        replicas,
                        precision,
                        (p99, cost, traffic.min(capacity), utilisation.min(1.0)),
                        reason,
                    ));
                }
            } else {
                let p99 = one_core_ms * 20.0; // a phone core is ~20x slower
                let reason = if precision == "f32" {
                    Some("model needs 310 MB, device has 256 MB".to_string())
                } else if p99 > slo {
                    Some(format!("p99 {p99:.0} ms > SLO {slo:.0} ms"))
                } else {
                    None
                };
                candidates.push(row(
                    "online-http",
                    "edge",
                    target.name,
                    1,
                    precision,
                    (p99, 0.0, 1000.0 / p99, 0.3),
                    reason,
                ));
                let hybrid_reason = if offline > 0.2 {
                    Some(format!(
                        "needs connectivity; device offline {:.0}% of the time",
                        offline * 100.0
                    ))
                } else if precision == "f32" {
                    Some("model needs 310 MB, device has 256 MB".to_string())
                } else if p99 * 0.8 + rtt > slo {
                    Some(format!("p99 {:.0} ms > SLO {slo:.0} ms", p99 * 0.8 + rtt))
                } else {
                    None
                };
                candidates.push(row(
                    "hybrid",
                    "hybrid",
                    target.name,
                    1,
                    precision,
                    (
                        p99 * 0.8 + rtt,
                        90.0 * what_if.instance_price,
                        1000.0 / p99,
                        0.4,
                    ),
                    hybrid_reason,
                ));
            }
        }
    }
    candidates.push(CandidateRow {
        staleness_min: Some(60.0),
        ..row(
            "batch",
            "cloud",
            "c7i.large",
            1,
            "f32",
            (2.0, 70.0, traffic, 0.1),
            Some("inputs unbounded: cannot precompute".to_string()),
        )
    });

    // Rank: feasible by cost then p99; rejected after, by p99.
    candidates.sort_by(|a, b| {
        b.feasible()
            .cmp(&a.feasible())
            .then(a.cost_usd_per_month.total_cmp(&b.cost_usd_per_month))
            .then(a.p99_ms.total_cmp(&b.p99_ms))
    });
    let pareto: Vec<bool> = candidates
        .iter()
        .map(|c| {
            c.feasible()
                && !candidates.iter().any(|o| {
                    o.feasible()
                        && o.cost_usd_per_month <= c.cost_usd_per_month
                        && o.p99_ms <= c.p99_ms
                        && (o.cost_usd_per_month < c.cost_usd_per_month || o.p99_ms < c.p99_ms)
                })
        })
        .collect();
    for (c, on_front) in candidates.iter_mut().zip(pareto) {
        c.pareto = on_front;
    }
    let recommended = candidates.first().filter(|c| c.feasible()).map(|_| 0);
    let mut rationale = Vec::new();
    if let Some(best) = recommended.and_then(|i| candidates.get(i)) {
        rationale.push(format!(
            "Cheapest plan with p99 <= {slo:.0} ms within ${budget:.0}/month at {traffic:.0} req/s: {} {} on {} x{}.",
            best.mode, best.placement, best.target, best.replicas
        ));
        rationale.push(format!(
            "int8 serves a request {:.1}x faster than f32 on this machine.",
            cache.service_ms_f32 / cache.service_ms_int8
        ));
        if let Some(runner_up) = candidates.get(1).filter(|c| c.feasible()) {
            rationale.push(format!(
                "Runner-up: {} at ${:.0}/month (+${:.0}).",
                runner_up.label,
                runner_up.cost_usd_per_month,
                runner_up.cost_usd_per_month - best.cost_usd_per_month
            ));
        }
    } else {
        rationale.push(format!(
            "No candidate meets p99 <= {slo:.0} ms within ${budget:.0}/month at {traffic:.0} req/s."
        ));
    }
    let top: Vec<&CandidateRow> = candidates.iter().filter(|c| c.feasible()).take(3).collect();
    let cdfs = top
        .iter()
        .map(|c| CdfSeries {
            label: c.label.clone(),
            points: cdf_points(c.p50_ms, c.p99_ms),
        })
        .collect();
    PlanView {
        scenario: scenario.to_string(),
        recommended,
        candidates,
        rationale,
        cdfs,
        slo_p99_ms: Some(slo),
    }
}

/// Shifted-exponential latency CDF through the given p50 and p99.
fn cdf_points(p50: f64, p99: f64) -> Vec<(f64, f64)> {
    let scale = ((p99 - p50) / (100f64.ln() - 2f64.ln())).max(1e-6);
    let shift = p50 - scale * 2f64.ln();
    (0..=40)
        .map(|i| {
            let q = f64::from(i) / 40.0 * 0.995;
            (shift - scale * (1.0 - q).ln(), q)
        })
        .collect()
}

fn row(
    mode: &str,
    placement: &str,
    target: &str,
    replicas: u32,
    precision: &str,
    (p99, cost, throughput, utilisation): (f64, f64, f64, f64),
    rejected_because: Option<String>,
) -> CandidateRow {
    let backend = "autotuned";
    let max_batch = if mode == "batch" { 256 } else { 8 };
    CandidateRow {
        label: format!("{mode} {placement} {target} x{replicas} {precision} b{max_batch}"),
        mode: mode.to_string(),
        placement: placement.to_string(),
        target: target.to_string(),
        replicas,
        backend: backend.to_string(),
        precision: precision.to_string(),
        max_batch,
        max_delay_ms: 2.0,
        p50_ms: p99 * 0.45,
        p90_ms: p99 * 0.7,
        p99_ms: p99,
        throughput_rps: throughput,
        cost_usd_per_month: cost,
        utilisation,
        failure_rate: if utilisation > 0.9 { 0.01 } else { 0.0 },
        staleness_min: None,
        rejected_because,
        pareto: false,
    }
}
