//! int8 GEMM and half-precision GEMV, side by side (single thread).
//!
//! `cargo bench -p workbench-kernels --bench quant`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use workbench_kernels::quant::int8::k_padded;
use workbench_kernels::quant::{
    gemm_u8s8_i32, HalfPath, Int8Path, PackedPanelWeights, PackedWeightsS8, WeightStorage,
};

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
    g.finish();
}

criterion_group!(benches, int8_gemm, half_gemv);
criterion_main!(benches);
