//! Runs only the int8 `mlp-1024` (single thread) in a loop, for `perf record`,
//! and prints the fastest and median run next to the pieces it is made of
//! (quantizing the input, each GEMM alone) measured on the same data.
//!
//! `cargo run --release -p workbench-kernels --example int8_profile [batch] [seconds]`
//! `perf record -g target/release/examples/int8_profile 64 10 && perf report --no-children`

use std::hint::black_box;
use std::time::{Duration, Instant};

use workbench_kernels::backends::quantized::seeded_inputs;
use workbench_kernels::models::mlp_1024;
use workbench_kernels::{compile, BackendKind, CompileOptions, Precision};

fn main() {
    let mut args = std::env::args().skip(1);
    let batch: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(64);
    let seconds: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let graph = match mlp_1024(1) {
        Ok(g) => g,
        Err(e) => panic!("mlp-1024: {e}"),
    };
    let x = seeded_inputs(graph.input_len(), batch, 3);
    let opts = CompileOptions {
        precision: Precision::Int8,
        threads: 1,
        simd: Some(workbench_kernels::simd::detect()),
        tile: None,
    };
    let mut exe = match compile(&graph, BackendKind::Quantized, &opts) {
        Ok(e) => e,
        Err(e) => panic!("compile: {e}"),
    };
    let mut times = Vec::new();
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < seconds {
        let t = Instant::now();
        black_box(exe.run(black_box(&x), batch).is_ok());
        times.push(t.elapsed());
    }
    times.sort();
    let median = times
        .get(times.len() / 2)
        .copied()
        .unwrap_or(Duration::ZERO);
    let fastest = times.first().copied().unwrap_or(Duration::ZERO);
    println!(
        "int8 mlp-1024 batch {batch}: {} runs, fastest {fastest:?}, median {median:?}",
        times.len()
    );
}
