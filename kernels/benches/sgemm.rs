//! sgemm n = 64..1024 on the naive, fused and tiled backends (one n x n x n
//! matmul compiled as a one-node graph), and GEMM + bias + ReLU against GEMM alone.
//! Throughput is in FLOPs, so criterion prints GFLOP/s ("Gelem/s").

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use workbench_kernels::{compile, models, BackendKind, CompileOptions};

fn sgemm(c: &mut Criterion) {
    let mut g = c.benchmark_group("sgemm");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(300));
    for n in [64usize, 128, 256, 512, 1024] {
        let graph = models::sgemm_graph(n, n, n, 1).expect("graph");
        let x: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32 * 0.1).collect();
        g.throughput(Throughput::Elements((2 * n * n * n) as u64));
        // The naive triple loop takes seconds a call at 1024: criterion's
        // minimum of 10 samples takes a minute or so.
        for kind in [BackendKind::Naive, BackendKind::Fused, BackendKind::Tiled] {
            let mut exe = compile(&graph, kind, &CompileOptions::default()).expect("compile");
            g.bench_with_input(BenchmarkId::new(kind.name(), n), &n, |b, _| {
                b.iter(|| {
                    black_box(exe.run(black_box(&x), 1).expect("run")[0]);
                })
            });
        }
    }
    g.finish();

    let mut g = c.benchmark_group("sgemm_epilogue");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(300));
    for n in [256usize, 512, 1024] {
        let x: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32 * 0.1 - 0.3).collect();
        g.throughput(Throughput::Elements((2 * n * n * n) as u64));
        for (name, graph) in [
            ("gemm", models::sgemm_graph(n, n, n, 1).expect("graph")),
            (
                "gemm+bias+relu",
                models::dense_bias_relu_graph(n, n, n, 1).expect("graph"),
            ),
        ] {
            let mut exe =
                compile(&graph, BackendKind::Tiled, &CompileOptions::default()).expect("compile");
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| {
                    black_box(exe.run(black_box(&x), 1).expect("run")[0]);
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, sgemm);
criterion_main!(benches);
