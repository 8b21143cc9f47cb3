//! Autotuned tile vs the tiled defaults, per GEMM shape, side by side
//! (single thread), on every GEMM shape of the benchmarks: sgemm
//! n = 64..1024, the `mlp-1024` layers at batch 1 / 8 / 64, the `convnet-224`
//! steps that run as GEMMs at this SIMD level (on AVX-512 its stem runs a direct
//! kernel and its pooled pointwise conv a row-sum GEMM, tuned as neither), and the
//! transformer block's projections, FFN and per-head attention GEMMs. The default of a shape is the tile the tiled backend runs it with
//! (`TileParams::for_this_machine().adapted_to(simd)`, narrowed for dense
//! layers a few columns wide). Tuning results are logged to the default tuning
//! log (`$WORKBENCH_CACHE_DIR` or `.workbench-cache/`), so a re-run only benches.
//!
//! `WORKBENCH_CACHE_DIR=$(mktemp -d) cargo bench -p workbench-kernels --bench autotune`
//! (a fresh directory tunes from scratch). `AUTOTUNE_SHAPES=64x1024x10,1x1024x1024`
//! limits the run to those m x n x k shapes; `AUTOTUNE_TRIALS=80` tunes with
//! another trial budget than the backend's default (40). Then the models themselves, tiled
//! vs autotuned (`-- model_` runs only those).

use std::collections::BTreeSet;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use workbench_kernels::autotune::TuningLog;
use workbench_kernels::backends::autotuned::{
    default_log_path, gemm_shapes, shape_default, time_gemm, AutotunedBackend, GemmShape,
};
use workbench_kernels::{
    compile, models, sgemm_with, BOperand, BackendKind, CompileOptions, Epilogue, Executable,
    GemmWorkspace, Graph, MatRef, PackedB, SimdLevel, TileParams,
};

/// Every GEMM shape of the benchmarks, in order, each once.
/// The benchmark models and the batches they are benchmarked at here.
fn benchmark_models() -> Vec<(&'static str, Graph, Vec<usize>)> {
    let models = [
        ("mlp-1024", models::mlp_1024(1), vec![1, 8, 64]),
        ("convnet-224", models::convnet_224(1), vec![1]),
        ("transformer-block", models::transformer_block(1), vec![1]),
    ];
    models
        .into_iter()
        .map(|(name, graph, batches)| match graph {
            Ok(g) => (name, g, batches),
            Err(e) => panic!("{name}: {e}"),
        })
        .collect()
}

fn benchmark_shapes() -> Vec<(String, GemmShape)> {
    let mut out: Vec<(String, GemmShape)> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut add = |what: String, shape: GemmShape, out: &mut Vec<(String, GemmShape)>| {
        if seen.insert(shape) {
            out.push((what, shape));
        }
    };
    for n in [64, 128, 256, 512, 1024] {
        let shape = GemmShape {
            m: n,
            n,
            k: n,
            packed_b: true,
        };
        add(format!("sgemm n={n}"), shape, &mut out);
    }
    for (name, graph, batches) in benchmark_models() {
        for batch in batches {
            // The shapes that run as plain GEMMs at this SIMD level (the convnet's stem and
            // pooled pointwise conv run as a direct kernel and a row-sum GEMM).
            for shape in gemm_shapes(&graph, batch, workbench_kernels::simd::detect()).into_keys() {
                add(format!("{name} batch {batch}"), shape, &mut out);
            }
        }
    }
    // The transformer's per-head attention GEMMs (seq 64, head dim 64): scores
    // Q K^T and context P V, B strided per call (scores reads K transposed).
    add(
        "transformer-block attention".into(),
        GemmShape {
            m: 64,
            n: 64,
            k: 64,
            packed_b: false,
        },
        &mut out,
    );
    if let Ok(only) = std::env::var("AUTOTUNE_SHAPES") {
        let keep: BTreeSet<String> = only.split(',').map(|s| s.trim().to_string()).collect();
        out.retain(|(_, s)| keep.contains(&format!("{}x{}x{}", s.m, s.n, s.k)));
    }
    out
}

fn runner(shape: GemmShape, tile: TileParams, simd: SimdLevel) -> impl FnMut() {
    let GemmShape { m, n, k, packed_b } = shape;
    let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
    let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
    let packed = if packed_b {
        match PackedB::pack(MatRef::row_major(&b, n), k, n, tile.kc, tile.nr) {
            Ok(p) => Some(p),
            Err(e) => panic!("pack: {e}"),
        }
    } else {
        None
    };
    let mut c = vec![0.0f32; m * n];
    let mut ws = GemmWorkspace::new();
    move || {
        let operand = match &packed {
            Some(p) => BOperand::Packed(p),
            None => BOperand::Mat(MatRef::row_major(&b, n)),
        };
        let r = sgemm_with(
            &mut ws,
            &tile,
            simd,
            m,
            n,
            k,
            MatRef::row_major(black_box(&a), k),
            operand,
            &mut c,
            n,
            Epilogue::NONE,
        );
        black_box(r.is_ok());
    }
}

fn autotuned_vs_default(c: &mut Criterion) {
    let simd = workbench_kernels::simd::detect();
    let default = TileParams::for_this_machine().adapted_to(simd);
    let mut backend = AutotunedBackend::default();
    // `AUTOTUNE_TRIALS=n` tunes with another trial budget than the backend's default.
    if let Some(n) = std::env::var("AUTOTUNE_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        backend.budget.max_trials = n;
    }
    let mut log = match TuningLog::open(&default_log_path()) {
        Ok(l) => l,
        Err(e) => panic!("{e}"),
    };
    let mut ratios: Vec<(GemmShape, f64)> = Vec::new();
    for (what, shape) in benchmark_shapes() {
        let incumbent = shape_default(&shape, simd, &default);
        // The same per-shape tuning the autotuned backend runs at compile time.
        let tuned = match backend.tune_shape(shape, simd, &default, 1, &mut log, &mut |_| {}) {
            Ok(t) => t,
            Err(e) => panic!("tune: {e}"),
        };
        println!(
            "shape {}x{}x{}{} ({what}): {} trials{}, tuned {:?}{}",
            shape.m,
            shape.n,
            shape.k,
            if shape.packed_b { " packed B" } else { "" },
            tuned.trials,
            if tuned.from_log { " (from log)" } else { "" },
            tuned.tile,
            if tuned.tile == incumbent {
                " = default"
            } else {
                ""
            },
        );
        // Interleaved minimum of many runs next to criterion's medians: on a
        // loaded machine other work only adds time, so the minima compare the
        // two tiles themselves.
        let (mut d_ns, mut t_ns) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..5 {
            let timed = |tile| time_gemm(shape, tile, simd, 10).unwrap_or(f64::INFINITY);
            d_ns = d_ns.min(timed(&incumbent));
            t_ns = t_ns.min(timed(&tuned.tile));
        }
        println!(
            "  interleaved minimum of 50 runs: default {:.2} us, autotuned {:.2} us, ratio {:.3}",
            d_ns / 1e3,
            t_ns / 1e3,
            d_ns / t_ns
        );
        ratios.push((shape, d_ns / t_ns));
        let mut grp = c.benchmark_group(format!(
            "gemm_{}x{}x{}_{}",
            shape.m,
            shape.n,
            shape.k,
            if shape.packed_b { "packed" } else { "strided" }
        ));
        grp.sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        grp.throughput(Throughput::Elements(shape.flops() as u64));
        let mut d = runner(shape, incumbent, simd);
        grp.bench_function("tiled_default", |b| b.iter(&mut d));
        let mut t = runner(shape, tuned.tile, simd);
        grp.bench_function("autotuned", |b| b.iter(&mut t));
        grp.finish();
    }
    let faster = ratios.iter().filter(|r| r.1 >= 1.05).count();
    let worst = ratios.iter().map(|r| r.1).fold(f64::INFINITY, f64::min);
    println!(
        "summary (interleaved minima): {faster} of {} shapes >= 1.05x, lowest ratio {worst:.3}",
        ratios.len()
    );
    for (s, r) in &ratios {
        println!("  {}x{}x{}: {r:.3}", s.m, s.n, s.k);
    }
}

/// The whole models, tiled vs autotuned (compiled with the same tuning log, so
/// after the shape groups above only the transformer's batch-64 dense shapes,
/// which the backend tunes at, are new). Single thread.
fn models_tiled_vs_autotuned(c: &mut Criterion) {
    let opts = CompileOptions::default();
    for (name, graph, batches) in benchmark_models() {
        let mut tiled = match compile(&graph, BackendKind::Tiled, &opts) {
            Ok(e) => e,
            Err(e) => panic!("{name}: {e}"),
        };
        let (mut auto, summary) =
            match AutotunedBackend::default().compile_tuned(&graph, &opts, &mut |_, _| {}) {
                Ok(r) => r,
                Err(e) => panic!("{name}: {e}"),
            };
        println!(
            "model {name}: {} trials run, {} logged",
            summary.trials, summary.logged_trials
        );
        let mut grp = c.benchmark_group(format!("model_{name}"));
        grp.sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        for batch in batches {
            let x: Vec<f32> = (0..graph.input_len() * batch)
                .map(|i| (i % 7) as f32 * 0.1)
                .collect();
            let (mut t_ns, mut a_ns) = (f64::INFINITY, f64::INFINITY);
            for _ in 0..5 {
                for _ in 0..10 {
                    let start = Instant::now();
                    black_box(tiled.run(&x, batch).is_ok());
                    t_ns = t_ns.min(start.elapsed().as_nanos() as f64);
                }
                for _ in 0..10 {
                    let start = Instant::now();
                    black_box(auto.run(&x, batch).is_ok());
                    a_ns = a_ns.min(start.elapsed().as_nanos() as f64);
                }
            }
            println!(
                "  {name} batch {batch}, interleaved minimum of 50 runs: tiled {:.1} us, autotuned {:.1} us, ratio {:.3}",
                t_ns / 1e3,
                a_ns / 1e3,
                t_ns / a_ns
            );
            grp.bench_function(format!("tiled/{batch}"), |b| {
                b.iter(|| black_box(tiled.run(black_box(&x), batch).is_ok()))
            });
            grp.bench_function(format!("autotuned/{batch}"), |b| {
                b.iter(|| black_box(auto.run(black_box(&x), batch).is_ok()))
            });
        }
        grp.finish();
    }
}

criterion_group!(benches, autotuned_vs_default, models_tiled_vs_autotuned);
criterion_main!(benches);
