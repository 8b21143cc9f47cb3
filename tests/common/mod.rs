//! Helpers shared by the planner's integration tests: shipped scenarios and
//! synthetic, roofline-shaped compute profiles (no timing).

use std::path::{Path, PathBuf};

use workbench::hardware::{LocalHardware, Roofline};
use workbench::pipeline::{plan_scenario, Measured};
use workbench::plan::{self, ComputeProfile, PlanOptions, ProfileSet, WhatIf};
use workbench::report::Report;
use workbench::report::{FigureSource, KernelMeasurement};
use workbench::scenario::{self, ArrivalProcess, Scenario};
use workbench::sim::ProfilePoint;
use workbench_kernels::{BackendKind, Precision};

/// A plan's monthly edge energy bill in USD (its "edge energy" cost lines).
#[allow(dead_code)]
pub fn edge_energy_usd(plan: &workbench::report::Plan) -> f64 {
    plan.cost_breakdown
        .iter()
        .filter(|l| l.item.starts_with("edge energy"))
        .map(|l| l.usd_per_month)
        .sum()
}

/// A shipped scenario by name.
#[allow(dead_code)]
pub fn load(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"));
    match scenario::load(&path) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

/// A scenario given as text in a test, named `file` in its errors (it must be valid).
#[allow(dead_code)]
pub fn parsed(text: &str, file: impl AsRef<Path>) -> Scenario {
    match scenario::parse_str(text, file.as_ref()) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

/// Latency = 20 us + FLOPs / (a share of the target's peak): naive at 0.05,
/// tiled f32 at 0.3, int8 at `int8_speed`, with `int8_agreement` with the
/// f32 model (the others agree fully).
pub fn synthetic_profiles_with(s: &Scenario, int8_speed: f64, int8_agreement: f64) -> ProfileSet {
    let mut set = ProfileSet::default();
    let targets = s.targets.cloud.iter().chain(&s.targets.edge);
    for target in targets {
        for v in &s.model.variants {
            let flops = v.counts().flops_per_sample;
            for (backend, precision, speed) in [
                (BackendKind::Naive, Precision::F32, 0.05),
                (BackendKind::Tiled, Precision::F32, 0.3),
                (BackendKind::Quantized, Precision::Int8, int8_speed),
            ] {
                let rate = target.spec.peak_gflops_f32 * 1e9 * speed;
                let points = [1u32, 4, 8, 16, 32, 64]
                    .iter()
                    .map(|&b| {
                        let m = 20e-6 + flops * f64::from(b) / rate;
                        ProfilePoint {
                            batch_size: b,
                            median_s: m,
                            p99_s: m * 1.3,
                        }
                    })
                    .collect();
                set.profiles.push(ComputeProfile {
                    variant: v.name.clone(),
                    backend,
                    precision,
                    target: target.spec.name.clone(),
                    source: FigureSource::Projected,
                    points,
                    infeasible: None,
                });
                let agreement = if precision == Precision::Int8 {
                    int8_agreement
                } else {
                    1.0
                };
                set.accuracy.insert((v.name.clone(), precision), agreement);
            }
        }
    }
    set
}

/// The scenario planned quickly (seed 7, no sensitivity) on synthetic
/// profiles with int8 at 0.6 of peak and `int8_agreement`.
// Each test crate compiles its own copy of this module and uses part of it.
#[allow(dead_code)]
pub fn plan_quickly(s: &Scenario, int8_agreement: f64) -> plan::PlanOutcome {
    let options = PlanOptions {
        sensitivity: false,
        ..PlanOptions::quick(7)
    };
    plan::plan(
        s,
        &synthetic_profiles_with(s, 0.6, int8_agreement),
        &WhatIf::default(),
        &options,
    )
}

/// The scenario with its arrivals replaced by a trace over `duration_s`.
#[allow(dead_code)]
pub fn with_trace(s: &Scenario, timestamps_s: Vec<f64>, duration_s: f64) -> Scenario {
    let mut t = s.clone();
    t.traffic.rate_per_s = timestamps_s.len() as f64 / duration_s;
    t.traffic.duration_s = duration_s;
    t.traffic.process = ArrivalProcess::Trace {
        path: PathBuf::from("synthetic.csv"),
        timestamps_s,
    };
    t
}

/// The scenario's report, planned quickly (seed 7, no sensitivity) on
/// synthetic profiles and a synthetic roofline: no measurement.
#[allow(dead_code)]
pub fn report_quickly(s: &Scenario) -> Report {
    report_on(s, synthetic_profiles_with(s, 0.6, 1.0), Vec::new())
}

/// The scenario's report, planned quickly (seed 7, no sensitivity) on these
/// profiles and kernel timings and a synthetic roofline: no measurement.
#[allow(dead_code)]
pub fn report_on(s: &Scenario, profiles: ProfileSet, kernels: Vec<KernelMeasurement>) -> Report {
    report_under(s, profiles, kernels, &WhatIf::default())
}

/// [`report_on`] under a what-if.
#[allow(dead_code)]
pub fn report_under(
    s: &Scenario,
    profiles: ProfileSet,
    kernels: Vec<KernelMeasurement>,
    what_if: &WhatIf,
) -> Report {
    let measured = Measured {
        hardware: LocalHardware::detect(),
        roofline: Roofline {
            hardware_fingerprint: "test".into(),
            peak_gflops_f32: 50.0,
            peak_gops_int8: 200.0,
            f32_by_path: Vec::new(),
            int8_by_path: Vec::new(),
            bandwidth: Vec::new(),
            dram_gbs: 20.0,
            cores: 1,
            memory_bytes: 1 << 30,
            probe_ms: 0.0,
        },
        profiles,
        kernels,
        roofline_points: Vec::new(),
        skipped: Vec::new(),
        reduced: Vec::new(),
        timed: 0,
        projections: Vec::new(),
        programs: Vec::new(),
    };
    let options = PlanOptions {
        sensitivity: false,
        ..PlanOptions::quick(7)
    };
    plan_scenario(s, &measured, what_if, &options, "now")
}

/// A one-core edge device with these memory and f32 peak figures, for the
/// bench and projection tests.
#[allow(dead_code)]
pub fn edge_target(name: &str, memory_bytes: u64, gflops: f64) -> workbench::hardware::TargetSpec {
    use workbench::hardware::{TargetKind, TargetSpec};
    TargetSpec {
        name: name.into(),
        kind: TargetKind::Edge,
        cores: 1,
        threads_per_core: 1,
        memory_bytes,
        peak_gflops_f32: gflops,
        peak_gops_int8: 0.0,
        mem_bandwidth_gbs: 5.0,
        cache_bytes: 0,
        precisions: vec![Precision::F32, Precision::Int8],
        usd_per_hour: 0.0,
        cold_start_ms: 0.0,
        power_watts: 2.0,
        idle_power_watts: 0.0,
        parallel_overhead_us: 5.0,
        fastest_core_speedup: None,
        source: "test".into(),
    }
}
