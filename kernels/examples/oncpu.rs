//! On-CPU time per run of the reference workloads, read from the kernel's
//! per-thread accounting (`/proc/thread-self/schedstat`), so time spent
//! descheduled on a loaded machine does not count. A diagnostic beside the
//! criterion benches (which measure wall time): ratios between rows of one run
//! are what to compare.
//!
//! `cargo run --release -p workbench-kernels --example oncpu [filter]`

use std::hint::black_box;
use std::time::Instant;

use workbench_kernels::backends::fused::FusedBackend;
use workbench_kernels::backends::tiled::TiledBackend;
use workbench_kernels::fusion::FusionOptions;
use workbench_kernels::{compile, models, Backend, BackendKind, CompileOptions, Executable, Graph};

/// Nanoseconds this thread has spent on a CPU.
fn on_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Median on-CPU and wall time of `reps` rounds of `inner` runs each.
fn measure(exe: &mut dyn Executable, x: &[f32], batch: usize, target_ms: f64) -> (f64, f64) {
    let _ = exe.run(x, batch);
    let t = Instant::now();
    let c = on_cpu_ns();
    let _ = black_box(exe.run(black_box(x), batch));
    let one = ((on_cpu_ns() - c) as f64).max(t.elapsed().as_nanos() as f64 * 0.1);
    let inner = ((target_ms * 1e6 / 10.0 / one.max(1.0)) as usize).clamp(1, 100_000);
    let (mut cpu, mut wall) = (Vec::new(), Vec::new());
    for _ in 0..11 {
        let t = Instant::now();
        let c = on_cpu_ns();
        for _ in 0..inner {
            black_box(exe.run(black_box(x), batch).map(|o| o[0]).unwrap_or(0.0));
        }
        cpu.push((on_cpu_ns() - c) as f64 / inner as f64);
        wall.push(t.elapsed().as_nanos() as f64 / inner as f64);
    }
    cpu.sort_by(f64::total_cmp);
    wall.sort_by(f64::total_cmp);
    (cpu[cpu.len() / 2], wall[wall.len() / 2])
}

fn row(name: &str, flops: f64, exe: &mut dyn Executable, x: &[f32], batch: usize) {
    let (cpu, wall) = measure(exe, x, batch, 300.0);
    println!(
        "{name:<34} on-cpu {:>10.1} us  {:>7.1} GFLOP/s   wall {:>10.1} us",
        cpu / 1e3,
        flops / cpu,
        wall / 1e3
    );
}

fn model(filter: &str, graph: &Graph, batches: &[usize]) {
    let opts = options();
    for &batch in batches {
        let x = models::reference_input(graph, batch);
        let flops = graph.flops_per_sample() * batch as f64;
        let variants: Vec<(&str, Box<dyn Executable>)> = vec![
            (
                "tiled-unfused",
                TiledBackend {
                    fusion: FusionOptions::NONE,
                }
                .compile(graph, &opts)
                .expect("compile"),
            ),
            (
                "tiled",
                compile(graph, BackendKind::Tiled, &opts).expect("compile"),
            ),
        ];
        for (name, mut exe) in variants {
            let label = format!("{}/{name}/{batch}", graph.name());
            if label.contains(filter) {
                row(&label, flops, exe.as_mut(), &x, batch);
            }
        }
    }
}

/// Options with the blocking overridden by `ONCPU_KC` / `ONCPU_MC` / `ONCPU_MR` (for experiments).
fn options() -> CompileOptions {
    let var = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
    let mut tile = workbench_kernels::TileParams::for_this_machine();
    tile.kc = var("ONCPU_KC").unwrap_or(tile.kc);
    tile.mc = var("ONCPU_MC").unwrap_or(tile.mc);
    tile.mr = var("ONCPU_MR").unwrap_or(tile.mr);
    CompileOptions {
        tile: Some(tile),
        ..CompileOptions::default()
    }
}

fn main() {
    let filter = std::env::args().nth(1).unwrap_or_default();
    let opts = options();
    for n in [256usize, 512, 1024] {
        let label = format!("sgemm/tiled/{n}");
        if label.contains(&filter) {
            let graph = models::sgemm_graph(n, n, n, 1).expect("graph");
            let x: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32 * 0.1).collect();
            let mut exe = compile(&graph, BackendKind::Tiled, &opts).expect("compile");
            row(&label, 2.0 * (n * n * n) as f64, exe.as_mut(), &x, 1);
        }
        let label = format!("sgemm_epilogue/gemm+bias+relu/{n}");
        if label.contains(&filter) {
            let graph = models::dense_bias_relu_graph(n, n, n, 1).expect("graph");
            let x: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32 * 0.1 - 0.3).collect();
            let mut exe = compile(&graph, BackendKind::Tiled, &opts).expect("compile");
            row(&label, 2.0 * (n * n * n) as f64, exe.as_mut(), &x, 1);
        }
    }
    // Batch-64 dense layers: B streamed from L3 (1024) against B resident in L2 (256).
    for (m, k, n) in [
        (64usize, 1024usize, 1024usize),
        (64, 256, 256),
        (64, 1024, 10),
    ] {
        let label = format!("gemm/tiled/{m}x{k}x{n}");
        if label.contains(&filter) {
            let graph = models::sgemm_graph(m, k, n, 1).expect("graph");
            let x: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
            let mut exe = compile(&graph, BackendKind::Tiled, &opts).expect("compile");
            row(&label, 2.0 * (m * n * k) as f64, exe.as_mut(), &x, 1);
        }
    }
    model(&filter, &models::mlp_1024(1).expect("model"), &[1, 64]);
    // mlp-1024's classifier alone at batch 64 (a narrow GEMM).
    model(
        &filter,
        &models::sgemm_graph(64, 1024, 10, 1).expect("model"),
        &[1],
    );
    model(&filter, &models::convnet_224(1).expect("model"), &[1, 8]);
    model(
        &filter,
        &models::transformer_block(1).expect("model"),
        &[1, 8],
    );
    let len = 16 << 20;
    if "chain_16M/unfused chain_16M/fused".contains(&filter) {
        let graph = models::elementwise_chain(len, 1).expect("graph");
        let x: Vec<f32> = (0..len).map(|i| (i % 11) as f32 * 0.1).collect();
        for (name, fusion) in [
            ("chain_16M/unfused", FusionOptions::NONE),
            ("chain_16M/fused", FusionOptions::default()),
        ] {
            let mut exe = FusedBackend { fusion }
                .compile(&graph, &opts)
                .expect("compile");
            row(name, len as f64, exe.as_mut(), &x, 1);
        }
    }
}
