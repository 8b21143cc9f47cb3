//! f32 FMA peak of one core: independent FMA chains on registers, no memory
//! traffic. The figures of the other benches are quoted as fractions of this.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const ITERS: usize = 1 << 16;

/// 24 independent accumulators of 16 lanes: enough to cover FMA latency x 2 ports.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_avx512(iters: usize, x: f32) -> f32 {
    use std::arch::x86_64::*;
    let mul = _mm512_set1_ps(0.999_999);
    let add = _mm512_set1_ps(x);
    let mut acc = [_mm512_set1_ps(1.0); 24];
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = _mm512_fmadd_ps(*a, mul, add);
        }
    }
    let mut sum = _mm512_setzero_ps();
    for a in acc {
        sum = _mm512_add_ps(sum, a);
    }
    _mm512_reduce_add_ps(sum)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_avx2(iters: usize, x: f32) -> f32 {
    use std::arch::x86_64::*;
    let mul = _mm256_set1_ps(0.999_999);
    let add = _mm256_set1_ps(x);
    let mut acc = [_mm256_set1_ps(1.0); 12];
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = _mm256_fmadd_ps(*a, mul, add);
        }
    }
    let mut out = [0.0f32; 8];
    let mut sum = _mm256_setzero_ps();
    for a in acc {
        sum = _mm256_add_ps(sum, a);
    }
    // SAFETY: out has 8 floats.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sum) };
    out.iter().sum()
}

fn peak(c: &mut Criterion) {
    let mut g = c.benchmark_group("peak_f32");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            g.throughput(Throughput::Elements((ITERS * 24 * 16 * 2) as u64));
            // SAFETY: AVX-512F detected above.
            g.bench_function("fma_avx512", |b| {
                b.iter(|| unsafe { fma_avx512(black_box(ITERS), black_box(1e-7)) })
            });
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            g.throughput(Throughput::Elements((ITERS * 12 * 8 * 2) as u64));
            // SAFETY: AVX2 and FMA detected above.
            g.bench_function("fma_avx2", |b| {
                b.iter(|| unsafe { fma_avx2(black_box(ITERS), black_box(1e-7)) })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, peak);
criterion_main!(benches);
