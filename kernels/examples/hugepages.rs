//! What transparent huge pages do for the data streamed on every run
//! (pre-packed weights, `workbench_kernels::pages`): each workload is built
//! with `WORKBENCH_HUGE_PAGES=0` (ordinary 4 KiB pages) and without, one at a
//! time (only one copy of the weights is live, as in real use: two copies
//! would crowd the TLB and flatter huge pages), alternating three times so
//! host noise hits both alike. Medians and ratios of one run are what to compare.
//!
//! `cargo run --release -p workbench-kernels --example hugepages [filter]`

use std::hint::black_box;
use std::time::Instant;

use workbench_kernels::quant::half_gemm::{HalfPath, PackedPanelWeights, WeightStorage};
use workbench_kernels::{compile, models, BackendKind, CompileOptions, Precision};

/// Median and minimum of `runs` timed runs (after one warm-up) of an instance
/// built by `make` with huge pages on or off, in microseconds.
fn time<T>(
    huge: bool,
    make: &mut impl FnMut() -> T,
    run: &mut impl FnMut(&mut T),
    runs: usize,
) -> (f64, f64) {
    // The choice is read when the buffers are made.
    std::env::set_var("WORKBENCH_HUGE_PAGES", if huge { "1" } else { "0" });
    let mut it = make();
    run(&mut it);
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            run(&mut it);
            start.elapsed().as_nanos() as f64 / 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    (t[runs / 2], t[0])
}

/// Three rounds of: 4 KiB pages, then huge pages; prints medians, minima and the ratio.
fn alternating<T>(
    name: &str,
    mut make: impl FnMut() -> T,
    mut run: impl FnMut(&mut T),
    runs: usize,
) {
    for round in 0..3 {
        let (a, a_min) = time(false, &mut make, &mut run, runs);
        let (b, b_min) = time(true, &mut make, &mut run, runs);
        println!(
            "{name:<22} round {round}: 4 KiB pages median {a:>9.1} us (min {a_min:>9.1}) | huge pages median {b:>9.1} us (min {b_min:>9.1}) | {:.3}x",
            a / b
        );
    }
}

fn main() {
    let filter = std::env::args().nth(1).unwrap_or_default();
    let mlp = models::mlp_1024(1).expect("mlp-1024");
    let variants = [
        ("f32", BackendKind::Tiled, Precision::F32),
        ("int8", BackendKind::Quantized, Precision::Int8),
        ("f16", BackendKind::Quantized, Precision::F16),
    ];
    for (label, kind, precision) in variants {
        let opts = CompileOptions {
            precision,
            ..CompileOptions::default()
        };
        for batch in [1usize, 64] {
            let name = format!("mlp-1024 {label} b{batch}");
            if !name.contains(&filter) {
                continue;
            }
            let x: Vec<f32> = (0..mlp.input_len() * batch)
                .map(|i| (i % 7) as f32 * 0.1)
                .collect();
            alternating(
                &name,
                || compile(&mlp, kind, &opts).expect("compile"),
                |exe| {
                    black_box(exe.run(black_box(&x), batch).is_ok());
                },
                100,
            );
        }
    }
    // Batch-1 GEMV over weights far beyond L3 (as in the quant bench).
    let (k, n) = (8192usize, 8192usize);
    let w: Vec<f32> = (0..k * n)
        .map(|i| ((i % 101) as f32 - 50.0) * 0.01)
        .collect();
    let x: Vec<f32> = (0..k).map(|i| ((i % 7) as f32 - 3.0) * 0.1).collect();
    let mut y = vec![0.0f32; n];
    let path = HalfPath::detect();
    for storage in [WeightStorage::F32, WeightStorage::F16] {
        let name = format!("gemv 8192 {storage:?}");
        if !name.contains(&filter) {
            continue;
        }
        alternating(
            &name,
            || PackedPanelWeights::pack(storage, k, n, &w, n).expect("pack"),
            |packed| {
                black_box(packed.gemm(path, &x, k, 1, None, &mut y, n).is_ok());
            },
            15,
        );
    }
}
