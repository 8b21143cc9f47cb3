//! Autotuned tile vs the tiled defaults, per GEMM shape, side by side
//! (single thread). Tuning results are logged to the default tuning log
//! (`$WORKBENCH_CACHE_DIR` or `.workbench-cache/`), so a re-run only benches.
//!
//! `cargo bench -p workbench-kernels --bench autotune`
//! (`WORKBENCH_CACHE_DIR=/tmp/fresh-tune cargo bench ...` tunes from scratch).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use workbench_kernels::autotune::TuningLog;
use workbench_kernels::backends::autotuned::{
    default_log_path, time_gemm, AutotunedBackend, GemmShape,
};
use workbench_kernels::{
    sgemm_with, BOperand, Epilogue, GemmWorkspace, MatRef, PackedB, SimdLevel, TileParams,
};

const SHAPES: [GemmShape; 5] = [
    // mlp-1024 hidden layer at batch 64
    GemmShape {
        m: 64,
        n: 1024,
        k: 1024,
        packed_b: true,
    },
    GemmShape {
        m: 256,
        n: 256,
        k: 256,
        packed_b: true,
    },
    GemmShape {
        m: 512,
        n: 512,
        k: 512,
        packed_b: true,
    },
    // convnet-224: first conv (W . im2col) and the pointwise conv
    GemmShape {
        m: 32,
        n: 12544,
        k: 27,
        packed_b: false,
    },
    GemmShape {
        m: 64,
        n: 12544,
        k: 32,
        packed_b: false,
    },
];

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
    let backend = AutotunedBackend::default();
    let mut log = match TuningLog::open(&default_log_path()) {
        Ok(l) => l,
        Err(e) => panic!("{e}"),
    };
    for shape in SHAPES {
        // The same per-shape tuning the autotuned backend runs at compile time.
        let tuned = match backend.tune_shape(shape, simd, &default, 1, &mut log, &mut |_| {}) {
            Ok(t) => t,
            Err(e) => panic!("tune: {e}"),
        };
        println!(
            "shape {}x{}x{}: {} trials{}, tuned {:?}{}",
            shape.m,
            shape.n,
            shape.k,
            tuned.trials,
            if tuned.from_log { " (from log)" } else { "" },
            tuned.tile,
            if tuned.tile == default {
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
            d_ns = d_ns.min(timed(&default));
            t_ns = t_ns.min(timed(&tuned.tile));
        }
        println!(
            "  interleaved minimum of 50 runs: default {:.1} us, autotuned {:.1} us, ratio {:.3}",
            d_ns / 1e3,
            t_ns / 1e3,
            d_ns / t_ns
        );
        let mut grp = c.benchmark_group(format!("gemm_{}x{}x{}", shape.m, shape.n, shape.k));
        grp.sample_size(20);
        grp.throughput(Throughput::Elements(shape.flops() as u64));
        let mut d = runner(shape, default, simd);
        grp.bench_function("tiled_default", |b| b.iter(&mut d));
        let mut t = runner(shape, tuned.tile, simd);
        grp.bench_function("autotuned", |b| b.iter(&mut t));
        grp.finish();
    }
}

criterion_group!(benches, autotuned_vs_default);
criterion_main!(benches);
