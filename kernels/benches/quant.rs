//! int8 GEMM and half-precision GEMV, and whole models per precision, side by
//! side (single thread); int8 models on one thread and two (`int8_threads`).
//!
//! `cargo bench -p workbench-kernels --bench quant`
//! `cargo bench -p workbench-kernels --bench quant -- int8_threads`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use workbench_kernels::backends::quantized::seeded_inputs;
use workbench_kernels::models::{convnet_224, ds_cnn_small, mlp_1024, transformer_block};
use workbench_kernels::quant::int8::k_padded;
use workbench_kernels::quant::{
    gemm_u8s8_i32, HalfPath, Int8Path, PackedPanelWeights, PackedWeightsS8, WeightStorage,
};
use workbench_kernels::{
    compile, sgemm_with, BOperand, BackendKind, CompileOptions, Epilogue, GemmWorkspace, Graph,
    MatRef, PackedB, Precision, TileParams,
};

/// Tiled f32 GEMM with pre-packed B, as the tiled backend runs dense layers.
fn tiled_f32(m: usize, n: usize, k: usize) -> impl FnMut() {
    let simd = workbench_kernels::simd::detect();
    let tile = TileParams::for_this_machine().adapted_to(simd);
    let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
    let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
    let packed = match PackedB::pack(MatRef::row_major(&b, n), k, n, tile.kc, tile.nr) {
        Ok(p) => p,
        Err(e) => panic!("pack: {e}"),
    };
    let mut c = vec![0.0f32; m * n];
    let mut ws = GemmWorkspace::new();
    move || {
        let r = sgemm_with(
            &mut ws,
            &tile,
            simd,
            m,
            n,
            k,
            MatRef::row_major(black_box(&a), k),
            BOperand::Packed(&packed),
            &mut c,
            n,
            Epilogue::NONE,
        );
        black_box(r.is_ok());
    }
}

fn int8_gemm(c: &mut Criterion) {
    let n = 1024;
    let mut rng = Pcg64::seed_from_u64(1);
    let kp = k_padded(n);
    let a: Vec<u8> = (0..n * kp).map(|_| rng.random()).collect();
    let b: Vec<i8> = (0..n * n).map(|_| rng.random()).collect();
    let mut out = vec![0i32; n * n];
    let mut g = c.benchmark_group("int8_gemm_n1024");
    g.sample_size(10);
    g.throughput(Throughput::Elements((2 * n * n * n) as u64));
    let mut f32_gemm = tiled_f32(n, n, n);
    g.bench_function("tiled_f32", |bch| bch.iter(&mut f32_gemm));
    for path in Int8Path::supported() {
        let packed = match PackedWeightsS8::pack(path, n, n, &b, n) {
            Ok(p) => p,
            Err(e) => panic!("pack {path}: {e}"),
        };
        g.bench_function(path.name(), |bch| {
            bch.iter(|| {
                gemm_u8s8_i32(black_box(&a), kp, n, 3, &packed, &mut out, n).ok();
            })
        });
    }
    g.finish();
}

fn half_gemv(c: &mut Criterion) {
    // 8192 x 8192: 256 MiB in f32, 128 MiB in f16/bf16, both far beyond the 32 MiB L3.
    let (k, n) = (8192, 8192);
    let mut rng = Pcg64::seed_from_u64(2);
    let w: Vec<f32> = (0..k * n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let x: Vec<f32> = (0..k).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let mut y = vec![0.0f32; n];
    let path = HalfPath::detect();
    let mut g = c.benchmark_group("gemv_8192x8192_batch1");
    g.sample_size(10);
    g.throughput(Throughput::Elements((2 * k * n) as u64));
    for storage in [WeightStorage::F32, WeightStorage::F16, WeightStorage::Bf16] {
        let packed = match PackedPanelWeights::pack(storage, k, n, &w, n) {
            Ok(p) => p,
            Err(e) => panic!("pack: {e}"),
        };
        g.bench_function(format!("{storage:?}"), |bch| {
            bch.iter(|| {
                packed.gemm(path, black_box(&x), k, 1, None, &mut y, n).ok();
            })
        });
    }
    drop(w);
    let mut tiled = tiled_f32(1, n, k);
    g.bench_function("tiled_f32_sgemm", |bch| bch.iter(&mut tiled));
    g.finish();
}

fn mlp(c: &mut Criterion) {
    let graph = match mlp_1024(1) {
        Ok(g) => g,
        Err(e) => panic!("mlp-1024: {e}"),
    };
    for batch in [1usize, 64] {
        precisions_side_by_side(c, &graph, "mlp-1024", batch);
    }
}

/// The convnets per precision: the reference `convnet-224` and the
/// wake-word scenario's `ds-cnn-small` (25x5 maps). The quantized backend
/// keeps the stem and the depthwise convs in f32 on the SIMD kernels; its
/// pointwise convs run int8 (pixels in the vector lanes on VNNI).
fn convnet(c: &mut Criterion) {
    for (label, graph) in [
        ("convnet-224", convnet_224(1)),
        ("ds-cnn-small", ds_cnn_small(1)),
    ] {
        let graph = match graph {
            Ok(g) => g,
            Err(e) => panic!("{label}: {e}"),
        };
        precisions_side_by_side(c, &graph, label, 1);
    }
}

/// The transformer block per precision (attention, softmax and layer norm in
/// f32 on the tiled engine's kernels; projections and FFN quantized).
fn transformer(c: &mut Criterion) {
    let graph = match transformer_block(1) {
        Ok(g) => g,
        Err(e) => panic!("transformer-block: {e}"),
    };
    precisions_side_by_side(c, &graph, "transformer-block", 1);
}

/// Tiled f32 against quantized int8 and f16 on one model and batch.
fn precisions_side_by_side(c: &mut Criterion, graph: &Graph, label: &str, batch: usize) {
    let x = seeded_inputs(graph.input_len(), batch, 3);
    let mut g = c.benchmark_group(format!("{label}_batch{batch}"));
    g.sample_size(20);
    let variants = [
        ("tiled_f32", BackendKind::Tiled, Precision::F32),
        ("quantized_int8", BackendKind::Quantized, Precision::Int8),
        ("quantized_f16", BackendKind::Quantized, Precision::F16),
    ];
    for (name, kind, precision) in variants {
        let opts = CompileOptions {
            precision,
            threads: 1,
            simd: Some(workbench_kernels::simd::detect()),
            tile: None,
        };
        let mut exe = match compile(graph, kind, &opts) {
            Ok(e) => e,
            Err(e) => panic!("{name}: {e}"),
        };
        // Minimum of many runs next to criterion's median: on a loaded
        // machine other work only adds time (the absolute targets read this).
        let mut fastest = std::time::Duration::MAX;
        for _ in 0..200 {
            let start = std::time::Instant::now();
            black_box(exe.run(black_box(&x), batch).is_ok());
            fastest = fastest.min(start.elapsed());
        }
        println!("{label} batch {batch} {name}: minimum of 200 runs {fastest:?}");
        g.bench_function(name, |bch| {
            bch.iter(|| {
                black_box(exe.run(black_box(&x), batch).is_ok());
            })
        });
    }
    g.finish();
}

/// The int8 models whose GEMMs split over threads, on one thread and on two,
/// side by side: mlp-1024 at batch 64 (dense GEMMs split by column panels)
/// and convnet-224 at batch 8 (per sample: the pointwise GEMM by bands of
/// pixels, the stem by output rows, the depthwise conv by channels). The tiled f32 backend on one
/// and two threads alongside, as a control: on a loaded host (other work on
/// both vCPUs) neither gains from a second thread.
fn int8_threads(c: &mut Criterion) {
    let models = [
        ("mlp-1024", mlp_1024(1), 64usize),
        ("convnet-224", convnet_224(1), 8),
    ];
    for (label, graph, batch) in models {
        let graph = match graph {
            Ok(g) => g,
            Err(e) => panic!("{label}: {e}"),
        };
        let x = seeded_inputs(graph.input_len(), batch, 3);
        let mut g = c.benchmark_group(format!("int8_threads_{label}_batch{batch}"));
        g.sample_size(20);
        let variants = [
            ("int8", BackendKind::Quantized, Precision::Int8),
            ("tiled_f32", BackendKind::Tiled, Precision::F32),
        ];
        for (name, kind, precision) in variants {
            for threads in [1usize, 2] {
                let opts = CompileOptions {
                    precision,
                    threads,
                    simd: Some(workbench_kernels::simd::detect()),
                    tile: None,
                };
                let mut exe = match compile(&graph, kind, &opts) {
                    Ok(e) => e,
                    Err(e) => panic!("{label} {name} on {threads} threads: {e}"),
                };
                g.bench_function(format!("{name}_threads{threads}"), |bch| {
                    bch.iter(|| {
                        black_box(exe.run(black_box(&x), batch).is_ok());
                    })
                });
            }
        }
        g.finish();
    }
}

criterion_group!(
    benches,
    int8_gemm,
    mlp,
    convnet,
    transformer,
    half_gemv,
    int8_threads
);
criterion_main!(benches);
