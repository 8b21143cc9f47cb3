//! How well does the projection predict a machine with more cores? The one
//! multi-core machine at hand is this one: each workload is timed with the
//! tiled backend (a few also with the int8 quantized backend, which splits
//! its GEMMs and convolutions as the tiled one does) on one thread and on
//! every core (alternating, three rounds, so host noise hits both alike), and
//! the one-thread median is projected onto this machine with all its cores,
//! once with free forks and joins (the ops the backend splits scale perfectly,
//! the others stay on one core) and once with the default fork and join per
//! split (per call, or per sample for the convolutions).
//!
//! `cargo run --release --example projection_check [filter]`
//!
//! Each line: the one-thread and all-core medians, the two projections and
//! their error against the all-core median (positive: the projection is slower
//! than the measurement).

use std::hint::black_box;
use std::time::Instant;

use workbench::hardware::project::{executed_program, project_latency, Provenance};
use workbench::hardware::roofline::{ProbeOptions, Roofline};
use workbench::hardware::{LocalHardware, DEFAULT_PARALLEL_OVERHEAD_US};
use workbench_kernels::{compile, models, BackendKind, CompileOptions, Graph, Precision};

fn main() {
    let filter = std::env::args().nth(1).unwrap_or_default();
    let hw = LocalHardware::detect();
    let roofline = Roofline::probe(&hw, ProbeOptions::default());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let target = |overhead_us: f64| {
        let mut t = roofline.as_target("this machine, every core");
        t.cores = u32::try_from(cores).unwrap_or(u32::MAX);
        t.peak_gflops_f32 *= cores as f64;
        t.peak_gops_int8 *= cores as f64;
        t.parallel_overhead_us = overhead_us;
        t
    };
    println!(
        "{cores} cores, {:.1} GFLOP/s and {:.1} GB/s (DRAM) per core; fork and join {DEFAULT_PARALLEL_OVERHEAD_US} us",
        roofline.peak_gflops_f32, roofline.dram_gbs
    );
    let mlp = models::mlp_1024(1).expect("mlp-1024");
    let convnet = models::convnet_224(1).expect("convnet-224");
    let transformer = models::transformer_block(1).expect("transformer");
    let (tiled, int8) = (
        (BackendKind::Tiled, Precision::F32),
        (BackendKind::Quantized, Precision::Int8),
    );
    let work: [(&str, &Graph, usize, (BackendKind, Precision)); 10] = [
        ("mlp-1024 b1", &mlp, 1, tiled),
        ("mlp-1024 b8", &mlp, 8, tiled),
        ("mlp-1024 b64", &mlp, 64, tiled),
        ("convnet-224 b1", &convnet, 1, tiled),
        ("convnet-224 b8", &convnet, 8, tiled),
        ("transformer b1", &transformer, 1, tiled),
        ("transformer b8", &transformer, 8, tiled),
        ("int8 mlp b64", &mlp, 64, int8),
        ("int8 convnet b8", &convnet, 8, int8),
        ("int8 transf. b8", &transformer, 8, int8),
    ];
    for (name, graph, batch, (backend, precision)) in work {
        if !name.contains(&filter) {
            continue;
        }
        let x = models::reference_input(graph, batch);
        let options = |threads| CompileOptions {
            threads,
            precision,
            ..CompileOptions::default()
        };
        let (mut one, mut all) = (Vec::new(), Vec::new());
        for _round in 0..3 {
            one.push(median_ns(graph, backend, batch, &x, &options(1)));
            all.push(median_ns(graph, backend, batch, &x, &options(cores)));
        }
        let (one, all) = (median(&mut one), median(&mut all));
        // The costs of what the backend runs (the tiled one its fused program), not the graph's.
        let ops = executed_program(graph, backend, precision).costs(batch);
        let project = |overhead_us: f64| {
            project_latency(
                &ops,
                one,
                Provenance::Measured,
                batch,
                &roofline,
                precision,
                &target(overhead_us),
            )
            .map_or(f64::NAN, |p| p.latency_ns)
        };
        let (perfect, forked) = (project(0.0), project(DEFAULT_PARALLEL_OVERHEAD_US));
        let error = |p: f64| (p / all - 1.0) * 100.0;
        println!(
            "{name:<15} 1 thread {:>9.1} us  {cores} threads {:>9.1} us ({:.2}x)  projected: perfect {:>9.1} us ({:+.0}%), fork and join {:>9.1} us ({:+.0}%)",
            one / 1e3,
            all / 1e3,
            one / all,
            perfect / 1e3,
            error(perfect),
            forked / 1e3,
            error(forked)
        );
    }
}

/// Median of timed runs (for 200 ms, 5 to 100 of them) after one untimed run, in ns.
fn median_ns(
    graph: &Graph,
    backend: BackendKind,
    batch: usize,
    x: &[f32],
    options: &CompileOptions,
) -> f64 {
    let mut exe = compile(graph, backend, options).expect("compile");
    black_box(exe.run(x, batch).is_ok());
    let budget = Instant::now();
    let mut times = Vec::new();
    while times.len() < 5 || (times.len() < 100 && budget.elapsed().as_millis() < 200) {
        let start = Instant::now();
        black_box(exe.run(black_box(x), batch).is_ok());
        times.push(start.elapsed().as_nanos() as f64);
    }
    median(&mut times)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
