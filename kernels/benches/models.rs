//! Whole models per backend at batch 1, 8, 64: the reference models `mlp-1024`
//! and `convnet-224`, and a transformer encoder block. "unfused" is the fused
//! backend's kernels run op by op (fusion switched off); "tiled-unfused" is the
//! tiled backend run op by op (the same GEMM, bias and activation as separate
//! passes), the baseline for what fusion buys there. Throughput is in FLOPs.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use workbench_kernels::backends::fused::FusedBackend;
use workbench_kernels::backends::tiled::TiledBackend;
use workbench_kernels::fusion::FusionOptions;
use workbench_kernels::{compile, models, Backend, BackendKind, CompileOptions, Executable, Graph};

/// `naive_max_batch` / `simple_max_batch` cap the slow backends (naive, and the
/// simple kernels of fused/unfused) so one run stays within a few minutes.
fn bench_model(c: &mut Criterion, graph: &Graph, naive_max_batch: usize, simple_max_batch: usize) {
    let mut g = c.benchmark_group(graph.name().to_string());
    g.sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(300));
    let opts = CompileOptions::default();
    for batch in [1usize, 8, 64] {
        let x: Vec<f32> = (0..graph.input_len() * batch)
            .map(|i| ((i % 13) as f32 - 6.0) / 6.0)
            .collect();
        g.throughput(Throughput::Elements(
            (graph.flops_per_sample() * batch as f64) as u64,
        ));
        let mut exes: Vec<(&str, Box<dyn Executable>)> = Vec::new();
        if batch <= naive_max_batch {
            exes.push((
                "naive",
                compile(graph, BackendKind::Naive, &opts).expect("compile"),
            ));
        }
        if batch <= simple_max_batch {
            let unfused = FusedBackend {
                fusion: FusionOptions::NONE,
            };
            exes.push(("unfused", unfused.compile(graph, &opts).expect("compile")));
            exes.push((
                "fused",
                compile(graph, BackendKind::Fused, &opts).expect("compile"),
            ));
        }
        let tiled_unfused = TiledBackend {
            fusion: FusionOptions::NONE,
        };
        exes.push((
            "tiled-unfused",
            tiled_unfused.compile(graph, &opts).expect("compile"),
        ));
        exes.push((
            "tiled",
            compile(graph, BackendKind::Tiled, &opts).expect("compile"),
        ));
        for (name, mut exe) in exes {
            g.bench_with_input(BenchmarkId::new(name, batch), &batch, |b, &batch| {
                b.iter(|| black_box(exe.run(black_box(&x), batch).expect("run")[0]))
            });
        }
    }
    g.finish();
}

fn all(c: &mut Criterion) {
    bench_model(c, &models::mlp_1024(1).expect("model"), 64, 64);
    bench_model(c, &models::convnet_224(1).expect("model"), 1, 8);
    bench_model(c, &models::transformer_block(1).expect("model"), 1, 8);
}

criterion_group!(benches, all);
criterion_main!(benches);
