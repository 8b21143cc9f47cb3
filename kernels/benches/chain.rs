//! The elementwise chain R = (A + s*B) * C on 16M f32 elements: op by op
//! (naive, and the fused backend with fusion switched off) against one fused loop.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use workbench_kernels::backends::fused::FusedBackend;
use workbench_kernels::fusion::FusionOptions;
use workbench_kernels::{compile, models, Backend, BackendKind, CompileOptions};

const LEN: usize = 16 << 20;

fn chain(c: &mut Criterion) {
    let graph = models::elementwise_chain(LEN, 1).expect("graph");
    let x: Vec<f32> = (0..LEN).map(|i| (i % 11) as f32 * 0.1).collect();
    let mut g = c.benchmark_group("chain_16M");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    g.throughput(Throughput::Elements(LEN as u64));
    let opts = CompileOptions::default();
    let exes = [
        (
            "naive",
            compile(&graph, BackendKind::Naive, &opts).expect("compile"),
        ),
        (
            "unfused",
            FusedBackend {
                fusion: FusionOptions::NONE,
            }
            .compile(&graph, &opts)
            .expect("compile"),
        ),
        (
            "fused",
            compile(&graph, BackendKind::Fused, &opts).expect("compile"),
        ),
    ];
    for (name, mut exe) in exes {
        g.bench_function(name, |b| {
            b.iter(|| black_box(exe.run(black_box(&x), 1).expect("run")[0]))
        });
    }
    g.finish();
}

criterion_group!(benches, chain);
criterion_main!(benches);
