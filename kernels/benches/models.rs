//! Whole models per backend at batch 1, 8, 64: the reference models `mlp-1024`
//! and `convnet-224`, and a transformer encoder block. "unfused" is the fused
//! backend's kernels run op by op (fusion switched off); "tiled-unfused" is the
//! tiled backend run op by op (the same GEMM, bias and activation as separate
//! passes), the baseline for what fusion buys there; "tiled-2-threads" is the
//! tiled backend on two threads (never slower than one is the aim; the other
//! variants run on one). Throughput is in FLOPs.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use workbench_kernels::backends::fused::FusedBackend;
use workbench_kernels::backends::tiled::TiledBackend;
use workbench_kernels::fusion::FusionOptions;
use workbench_kernels::{compile, models, Backend, BackendKind, CompileOptions, Executable, Graph};

/// Every variant at batch 1, 8 and 64. The slow ones (naive at batch 64 takes
/// seconds a run) get criterion's minimum of 10 samples all the same, so the
/// whole bench takes several minutes.
fn bench_model(c: &mut Criterion, graph: &Graph) {
    let mut g = c.benchmark_group(graph.name().to_string());
    g.sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(300));
    let opts = CompileOptions::default();
    for batch in [1usize, 8, 64] {
        let x = models::reference_input(graph, batch);
        g.throughput(Throughput::Elements(
            (graph.flops_per_sample() * batch as f64) as u64,
        ));
        // Each variant is compiled just before it is timed and dropped after, so
        // one copy of the weights is live, as when a model is served (several
        // copies would crowd the caches and the TLB and slow all of them).
        for name in [
            "naive",
            "unfused",
            "fused",
            "tiled-unfused",
            "tiled",
            "tiled-2-threads",
        ] {
            let id = BenchmarkId::new(name, batch);
            let mut exe = compile_variant(graph, name, &opts);
            g.bench_with_input(id, &batch, |b, &batch| {
                b.iter(|| black_box(exe.run(black_box(&x), batch).expect("run")[0]))
            });
        }
    }
    g.finish();
}

/// One of the benchmarked variants of `graph` (see the module comment).
fn compile_variant(graph: &Graph, name: &str, opts: &CompileOptions) -> Box<dyn Executable> {
    let compiled = match name {
        "naive" => compile(graph, BackendKind::Naive, opts),
        "unfused" => FusedBackend {
            fusion: FusionOptions::NONE,
        }
        .compile(graph, opts),
        "fused" => compile(graph, BackendKind::Fused, opts),
        "tiled-unfused" => TiledBackend {
            fusion: FusionOptions::NONE,
        }
        .compile(graph, opts),
        "tiled-2-threads" => compile(
            graph,
            BackendKind::Tiled,
            &CompileOptions {
                threads: 2,
                ..opts.clone()
            },
        ),
        _ => compile(graph, BackendKind::Tiled, opts),
    };
    compiled.expect("compile")
}

fn all(c: &mut Criterion) {
    bench_model(c, &models::mlp_1024(1).expect("model"));
    bench_model(c, &models::convnet_224(1).expect("model"));
    bench_model(c, &models::transformer_block(1).expect("model"));
}

criterion_group!(benches, all);
criterion_main!(benches);
