//! int8 and half-precision kernels against scalar references.

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use workbench_kernels::quant::int8::k_padded;
use workbench_kernels::quant::{
    gemm_u8s8_f32, gemm_u8s8_i32, gemm_u8s8_u8, quantize_weights_per_channel, requantize,
    ActivationQuant, CalibrationMethod, Calibrator, HalfPath, Int8Epilogue, Int8Path,
    PackedPanelWeights, PackedWeightsS8, QuantError, WeightStorage,
};

fn reference_i32(a: &[u8], lda: usize, m: usize, k: usize, za: u8, b: &[i8], n: usize) -> Vec<i32> {
    let mut c = vec![0i32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0i64;
            for kk in 0..k {
                s += (i64::from(a[i * lda + kk]) - i64::from(za)) * i64::from(b[kk * n + j]);
            }
            c[i * n + j] = i32::try_from(s).expect("fits");
        }
    }
    c
}

fn random_case(rng: &mut Pcg64, m: usize, k: usize, n: usize) -> (Vec<u8>, usize, Vec<i8>) {
    let lda = k_padded(k) + 3;
    // Padding bytes hold garbage on purpose: the packed weights must zero them out.
    let a: Vec<u8> = (0..m * lda).map(|_| rng.random()).collect();
    let b: Vec<i8> = (0..k * n).map(|_| rng.random()).collect();
    (a, lda, b)
}

#[test]
fn every_int8_path_matches_the_scalar_reference_exactly() {
    let paths = Int8Path::supported();
    assert!(paths.contains(&Int8Path::Portable));
    let mut rng = Pcg64::seed_from_u64(7);
    let shapes = [
        (1, 1, 1),
        (1, 257, 65),
        (3, 7, 33),
        (7, 63, 31),
        (9, 65, 64),
        (17, 4, 1),
        (8, 128, 96),
        (65, 5, 7),
        // Full 8 x 48 VNNI tiles (the assembly kernel) with and without edges,
        // an empty reduction, and the model's batch-64 shape in small.
        (8, 4, 48),
        (16, 100, 96),
        (24, 300, 112),
        (3, 0, 5),
        (64, 1024, 160),
    ];
    for &(m, k, n) in &shapes {
        let (a, lda, b) = random_case(&mut rng, m, k, n);
        for za in [0u8, 1, 128, 255] {
            let want = reference_i32(&a, lda, m, k, za, &b, n);
            for &path in &paths {
                let packed = PackedWeightsS8::pack(path, k, n, &b, n).expect("pack");
                let ldc = n + 2;
                let mut c = vec![i32::MIN; m * ldc];
                gemm_u8s8_i32(&a, lda, m, za, &packed, &mut c, ldc).expect("gemm");
                for i in 0..m {
                    assert_eq!(
                        &c[i * ldc..i * ldc + n],
                        &want[i * n..(i + 1) * n],
                        "path {path} m={m} k={k} n={n} za={za} row {i}"
                    );
                    // Columns past n untouched (masked / buffered tail stores).
                    assert!(c[i * ldc + n..(i + 1) * ldc].iter().all(|&x| x == i32::MIN));
                }
            }
        }
    }
}

#[test]
fn extreme_operands_do_not_saturate_on_any_path() {
    // 255 * -128 in every product: vpmaddubsw would saturate its i16 pair sums here.
    let (m, k, n) = (9, 1024, 50);
    let a = vec![255u8; m * k];
    let b = vec![-128i8; k * n];
    for path in Int8Path::supported() {
        let packed = PackedWeightsS8::pack(path, k, n, &b, n).expect("pack");
        let mut c = vec![0i32; m * n];
        gemm_u8s8_i32(&a, k, m, 0, &packed, &mut c, n).expect("gemm");
        assert!(c.iter().all(|&x| x == -255 * 128 * 1024), "path {path}");
        gemm_u8s8_i32(&a, k, m, 255, &packed, &mut c, n).expect("gemm");
        assert!(c.iter().all(|&x| x == 0), "path {path} with zero point");
    }
}

#[test]
fn int8_rejects_bad_buffers() {
    let b = vec![1i8; 6 * 4];
    let packed = PackedWeightsS8::pack(Int8Path::Portable, 6, 4, &b, 4).expect("pack");
    let mut c = vec![0i32; 8];
    // lda must cover the padded k (8), not just k (6).
    let err = gemm_u8s8_i32(&[0u8; 12], 6, 2, 0, &packed, &mut c, 4).unwrap_err();
    assert!(matches!(err, QuantError::BadStride { name: "lda", .. }));
    let err = gemm_u8s8_i32(&[0u8; 10], 8, 2, 0, &packed, &mut c, 4).unwrap_err();
    assert!(matches!(err, QuantError::BufferTooSmall { name: "a", .. }));
    let err = PackedWeightsS8::pack(Int8Path::Portable, 6, 4, &b[..20], 4).unwrap_err();
    assert!(matches!(err, QuantError::BufferTooSmall { name: "b", .. }));
}

#[test]
fn detect_picks_a_supported_path_and_honours_the_override() {
    assert!(Int8Path::detect().is_supported());
    assert!(HalfPath::detect().is_supported());
    // Only this test in this binary touches WORKBENCH_SIMD.
    std::env::set_var("WORKBENCH_SIMD", "portable");
    assert_eq!(Int8Path::detect(), Int8Path::Portable);
    assert_eq!(HalfPath::detect(), HalfPath::Portable);
    std::env::set_var("WORKBENCH_SIMD", "avx2");
    let avx2 = Int8Path::Avx2.is_supported();
    assert_eq!(Int8Path::detect() == Int8Path::Avx2, avx2);
    assert!(Int8Path::detect() <= Int8Path::Avx2);
    assert!(HalfPath::detect() <= HalfPath::Avx2);
    std::env::remove_var("WORKBENCH_SIMD");
    assert_eq!(
        Int8Path::detect(),
        Int8Path::supported()
            .into_iter()
            .max()
            .unwrap_or(Int8Path::Portable)
    );
}

#[test]
fn activation_quant_round_trip_within_half_a_step() {
    let q = ActivationQuant::from_range(-1.5, 3.0);
    assert_eq!(q.dequantize(q.quantize(0.0)), 0.0, "zero is exact");
    for i in 0..=1000 {
        let x = -1.5 + 4.5 * i as f32 / 1000.0;
        let err = (q.dequantize(q.quantize(x)) - x).abs();
        assert!(err <= q.scale * 0.5 + 1e-6, "x={x} err={err}");
    }
    assert_eq!(q.quantize(100.0), 255);
    assert_eq!(q.quantize(-100.0), 0);
    assert_eq!(q.quantize(f32::NAN), q.zero_point);
    // A non-negative range (post-ReLU) has zero point 0.
    assert_eq!(ActivationQuant::from_range(0.0, 6.0).zero_point, 0);
}

#[test]
fn percentile_calibration_clips_outliers_min_max_does_not() {
    let mut data: Vec<f32> = (0..10_000).map(|i| (i % 100) as f32 / 100.0).collect();
    data.push(1000.0);
    let mut mm = Calibrator::new(CalibrationMethod::MinMax).expect("new");
    let mut pc = Calibrator::new(CalibrationMethod::Percentile(99.9)).expect("new");
    for chunk in data.chunks(777) {
        mm.observe(chunk);
        pc.observe(chunk);
    }
    assert_eq!(mm.range().expect("range"), (0.0, 1000.0));
    let (lo, hi) = pc.range().expect("range");
    assert_eq!(lo, 0.0);
    assert!((0.98..=0.99).contains(&hi), "hi={hi}");
    assert!(Calibrator::new(CalibrationMethod::Percentile(40.0)).is_err());
    let empty = Calibrator::new(CalibrationMethod::MinMax).expect("new");
    assert_eq!(empty.finish(), Err(QuantError::EmptyCalibration));
}

#[test]
fn per_channel_weights_round_trip_and_requantize_matches_formula() {
    let (k, n) = (37, 5);
    let mut rng = Pcg64::seed_from_u64(3);
    // Column j has magnitude ~10^j: per-channel scales keep small columns accurate.
    let w: Vec<f32> = (0..k * n)
        .map(|i| rng.random_range(-1.0f32..1.0) * 10f32.powi((i % n) as i32))
        .collect();
    let q = quantize_weights_per_channel(&w, k, n).expect("quantize");
    for kk in 0..k {
        for j in 0..n {
            let back = f32::from(q.values[kk * n + j]) * q.scales[j];
            assert!((back - w[kk * n + j]).abs() <= q.scales[j] * 0.5 + 1e-6);
        }
    }
    assert!(q.values.iter().all(|&v| v >= -127));
    let out = ActivationQuant {
        scale: 0.05,
        zero_point: 10,
    };
    assert_eq!(requantize(1000, 0.01, 0.02, out), 14); // 1000*0.0002/0.05 = 4 -> 14
    assert_eq!(requantize(-1_000_000, 0.01, 0.02, out), 0);
    assert_eq!(requantize(1_000_000, 0.01, 0.02, out), 255);
}

#[test]
fn int8_f32_epilogue_approximates_the_f32_product() {
    let (m, k, n) = (6, 200, 50);
    let mut rng = Pcg64::seed_from_u64(11);
    let x: Vec<f32> = (0..m * k).map(|_| rng.random_range(-1.0f32..2.0)).collect();
    let w: Vec<f32> = (0..k * n).map(|_| rng.random_range(-0.1f32..0.1)).collect();
    let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.01).collect();
    let mut cal = Calibrator::new(CalibrationMethod::MinMax).expect("new");
    cal.observe(&x);
    let act = cal.finish().expect("finish");
    let qw = quantize_weights_per_channel(&w, k, n).expect("qw");
    let lda = k_padded(k);
    let mut qa = vec![0u8; m * lda];
    for i in 0..m {
        act.quantize_slice(&x[i * k..(i + 1) * k], &mut qa[i * lda..i * lda + k]);
    }
    for path in Int8Path::supported() {
        let packed = PackedWeightsS8::pack(path, k, n, &qw.values, n).expect("pack");
        let mut out = vec![0.0f32; m * n];
        let ep = Int8Epilogue {
            act,
            weight_scales: &qw.scales,
            bias: Some(&bias),
            relu: false,
        };
        gemm_u8s8_f32(&qa, lda, m, &packed, ep, &mut out, n).expect("gemm");
        let (mut num, mut den) = (0.0f64, 0.0f64);
        for i in 0..m {
            for j in 0..n {
                let want: f32 =
                    (0..k).map(|kk| x[i * k + kk] * w[kk * n + j]).sum::<f32>() + bias[j];
                num += f64::from(out[i * n + j] - want).powi(2);
                den += f64::from(want).powi(2);
            }
        }
        let rel = (num / den).sqrt();
        assert!(rel < 0.02, "path {path}: relative error {rel}");
    }
}

/// The epilogues are their documented formulas, bit for bit, on every path:
/// `y = c as f32 * (sa * ws[j]) + bias[j]` from the exact i32 sum `c`, then
/// ReLU that keeps NaN and -0.0 (a `max`-style ReLU would turn them into
/// 0.0); requantized, `quantize(y)` (NaN to the zero point). Full register
/// tiles of every path (4 x 16 AVX2, 8 x 48 VNNI) and edges, with and
/// without bias: the AVX2 full-tile epilogues in registers included.
#[test]
fn epilogues_are_their_formula_bit_for_bit_on_every_path() {
    let mut rng = Pcg64::seed_from_u64(17);
    for &(m, k, n) in &[(8, 64, 96), (16, 28, 32), (5, 33, 17), (12, 9, 50)] {
        let (mut a, lda, b) = random_case(&mut rng, m, k, n);
        let za = 77u8;
        // Row 1 sums to exactly zero: with a negative weight scale and a -0.0
        // bias its y is -0.0, which ReLU must keep.
        a[lda..lda + k].fill(za);
        let mut scales: Vec<f32> = (0..n).map(|_| rng.random_range(1e-4f32..1e-3)).collect();
        scales[0] = -scales[0];
        let mut bias: Vec<f32> = (0..n).map(|_| rng.random_range(-0.5f32..0.5)).collect();
        bias[0] = -0.0;
        bias[n - 1] = f32::NAN;
        let act = ActivationQuant {
            scale: 0.013,
            zero_point: za,
        };
        let out_q = ActivationQuant {
            scale: 0.004,
            zero_point: 9,
        };
        let sums = reference_i32(&a, lda, m, k, za, &b, n);
        for path in Int8Path::supported() {
            let packed = PackedWeightsS8::pack(path, k, n, &b, n).expect("pack");
            for (with_bias, relu) in [(true, false), (true, true), (false, false), (false, true)] {
                let ep = Int8Epilogue {
                    act,
                    weight_scales: &scales,
                    bias: with_bias.then_some(&bias[..]),
                    relu,
                };
                let mut out = vec![f32::INFINITY; m * n];
                gemm_u8s8_f32(&a, lda, m, &packed, ep, &mut out, n).expect("gemm");
                let ldq = k_padded(n);
                let mut requantized = vec![0xa5u8; m * ldq];
                gemm_u8s8_u8(&a, lda, m, &packed, ep, out_q, &mut requantized, ldq).expect("u8");
                for (idx, (&got, &c)) in out.iter().zip(&sums).enumerate() {
                    let j = idx % n;
                    let mut want = c as f32 * (act.scale * scales[j]);
                    if with_bias {
                        want += bias[j];
                    }
                    if relu && want < 0.0 {
                        want = 0.0;
                    }
                    let what = format!("{path} {m}x{k}x{n} bias {with_bias} relu {relu} at {idx}");
                    let (i, q) = (idx / n, out_q.quantize(want));
                    assert_eq!(requantized[i * ldq + j], q, "{what}: u8 of {want}");
                    if want.is_nan() {
                        assert!(got.is_nan(), "{what}: {got}");
                    } else {
                        assert_eq!(got.to_bits(), want.to_bits(), "{what}: {got} vs {want}");
                    }
                }
                if with_bias {
                    assert_eq!(out[n].to_bits(), (-0.0f32).to_bits(), "{path} relu {relu}");
                }
            }
        }
    }
}

#[test]
fn requantizing_epilogue_equals_quantizing_the_f32_epilogue_on_every_path() {
    let mut rng = Pcg64::seed_from_u64(13);
    for &(m, k, n) in &[(1, 1, 1), (7, 63, 65), (13, 130, 129), (2, 1024, 10)] {
        let (a, lda, b) = random_case(&mut rng, m, k, n);
        let scales: Vec<f32> = (0..n).map(|_| rng.random_range(1e-4f32..1e-3)).collect();
        let bias: Vec<f32> = (0..n).map(|_| rng.random_range(-2.0f32..2.0)).collect();
        let act = ActivationQuant {
            scale: 0.02,
            zero_point: 37,
        };
        let out_q = ActivationQuant {
            scale: 0.05,
            zero_point: 3,
        };
        let ldo = k_padded(n) + 1;
        let mut results = Vec::new();
        for path in Int8Path::supported() {
            let packed = PackedWeightsS8::pack(path, k, n, &b, n).expect("pack");
            for relu in [false, true] {
                let ep = Int8Epilogue {
                    act,
                    weight_scales: &scales,
                    bias: Some(&bias),
                    relu,
                };
                let mut f = vec![0.0f32; m * n];
                gemm_u8s8_f32(&a, lda, m, &packed, ep, &mut f, n).expect("f32");
                let mut q = vec![0xa5u8; m * ldo];
                gemm_u8s8_u8(&a, lda, m, &packed, ep, out_q, &mut q, ldo).expect("u8");
                for i in 0..m {
                    for j in 0..n {
                        assert_eq!(
                            q[i * ldo + j],
                            out_q.quantize(f[i * n + j]),
                            "{path} ({i},{j})"
                        );
                        if relu {
                            assert!(f[i * n + j] >= 0.0);
                        }
                    }
                    // The row padding past n is not written.
                    assert!(q[i * ldo + n..(i + 1) * ldo].iter().all(|&x| x == 0xa5));
                }
                results.push((f, q));
            }
        }
        // Same arithmetic on every path: bit-identical results.
        let first_relu = &results[1];
        for (idx, r) in results.iter().enumerate() {
            let want = if idx % 2 == 1 {
                first_relu
            } else {
                &results[0]
            };
            assert_eq!(r, want, "m={m} k={k} n={n}");
        }
    }
}

#[test]
fn half_gemm_every_path_and_storage_matches_reference() {
    let mut rng = Pcg64::seed_from_u64(5);
    for &(m, k, n) in &[
        (1, 1, 1),
        (1, 257, 65),
        (3, 63, 130),
        (5, 9, 64),
        (7, 100, 7),
    ] {
        let w: Vec<f32> = (0..k * n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let a: Vec<f32> = (0..m * k).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let bias: Vec<f32> = (0..n).map(|j| j as f32).collect();
        for storage in [WeightStorage::F32, WeightStorage::F16, WeightStorage::Bf16] {
            let packed = PackedPanelWeights::pack(storage, k, n, &w, n).expect("pack");
            // Storage error bound per weight: f16 2^-11, bf16 2^-8 relative.
            let tol = match storage {
                WeightStorage::F32 => 0.0,
                WeightStorage::F16 => 1.0 / 2048.0,
                WeightStorage::Bf16 => 1.0 / 256.0,
            };
            for kk in 0..k {
                for j in 0..n {
                    let x = w[kk * n + j];
                    assert!((packed.get(kk, j) - x).abs() <= x.abs() * tol);
                }
            }
            for path in HalfPath::ALL.into_iter().filter(|p| p.is_supported()) {
                let mut out = vec![f32::NAN; m * n];
                packed
                    .gemm(path, &a, k, m, Some(&bias), &mut out, n)
                    .expect("gemm");
                for i in 0..m {
                    for j in 0..n {
                        let want: f64 = (0..k)
                            .map(|kk| f64::from(a[i * k + kk]) * f64::from(packed.get(kk, j)))
                            .sum::<f64>()
                            + f64::from(bias[j]);
                        let got = f64::from(out[i * n + j]);
                        assert!(
                            (got - want).abs() <= 1e-5 * (k as f64).sqrt() * (1.0 + want.abs()),
                            "{storage:?} {path:?} m={m} k={k} n={n} ({i},{j}): {got} vs {want}"
                        );
                    }
                }
                // The fused ReLU is max(y, 0) of the very same values, bias or not.
                for bias in [Some(&bias[..]), None] {
                    let mut plain = vec![f32::NAN; m * n];
                    packed
                        .gemm(path, &a, k, m, bias, &mut plain, n)
                        .expect("gemm");
                    let mut fused = vec![f32::NAN; m * n];
                    packed
                        .gemm_fused(path, &a, k, m, bias, true, &mut fused, n)
                        .expect("gemm_fused");
                    let want: Vec<f32> = plain.iter().map(|y| y.max(0.0)).collect();
                    assert_eq!(fused, want, "{storage:?} {path:?} m={m} k={k} n={n}");
                    assert!(plain.iter().any(|&y| y < 0.0) || n * m < 8);
                }
            }
        }
    }
}
