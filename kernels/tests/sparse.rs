//! The GEMM that skips the products of A's zeros (`sparse`) against the dense
//! kernels it replaces: the same bits, on AVX-512 and AVX2, at odd shapes,
//! every epilogue, both register-tile widths and with threads; and never where
//! skipping would change the result (weights with an infinity).

use proptest::prelude::*;
use workbench_kernels::gemm::{sgemm_reference, split_small_work};
use workbench_kernels::sparse::{nonzero_fraction, supported, worth_skipping};
use workbench_kernels::tile::LoopOrder;
use workbench_kernels::{
    sgemm_with, Activation, BOperand, Bias, Epilogue, GemmWorkspace, MatRef, PackedB, SimdLevel,
    TileParams,
};

/// A pseudo-random `len` values in [-1, 1), with about `nonzero` of them kept
/// and the rest exactly 0.0 (a ReLU's output, signs aside).
fn sparse_data(len: usize, seed: u64, nonzero: f64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let keep = (state >> 11) as f64 / (1u64 << 53) as f64;
            let value = (state & 0xffff) as f32 / 32768.0 - 1.0;
            if keep < nonzero {
                value
            } else {
                0.0
            }
        })
        .collect()
}

/// The instruction sets with a zero-skipping kernel that this CPU runs.
fn levels() -> Vec<SimdLevel> {
    let levels: Vec<SimdLevel> = SimdLevel::supported()
        .into_iter()
        .filter(|&simd| supported(simd))
        .collect();
    if levels.is_empty() {
        eprintln!("no AVX2 or AVX-512 on this CPU: no zero-skipping kernel here");
    }
    levels
}

/// Register-tile widths of `simd`.
fn widths(simd: SimdLevel) -> [usize; 2] {
    if simd == SimdLevel::Avx512 {
        [16, 32]
    } else {
        [8, 16]
    }
}

fn tile(simd: SimdLevel, nr: usize, kc: usize, threads: usize, skip_zeros: bool) -> TileParams {
    let mr = if simd == SimdLevel::Avx512 { 12 } else { 6 };
    TileParams {
        mc: 2 * mr,
        nc: 4 * nr,
        kc,
        mr,
        nr,
        threads,
        loop_order: LoopOrder::ColumnsOuter,
        k_split: 1,
        b_in_place: false,
        a_in_place: false,
        skip_zeros,
    }
}

/// C from the dense kernels and from the skipping path for one case.
#[allow(clippy::too_many_arguments)]
fn both(
    simd: SimdLevel,
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    nr: usize,
    threads: usize,
    epilogue: Epilogue<'_>,
) -> (Vec<f32>, Vec<f32>) {
    let mut out = Vec::new();
    for skip_zeros in [false, true] {
        let t = tile(simd, nr, 1024, threads, skip_zeros);
        let packed = PackedB::pack(MatRef::row_major(b, n), k, n, t.kc, t.nr).expect("pack");
        // C starts dirty: every element must be written.
        let mut c = vec![f32::NAN; m * n];
        sgemm_with(
            &mut GemmWorkspace::new(),
            &t,
            simd,
            m,
            n,
            k,
            MatRef::row_major(a, k),
            BOperand::Packed(&packed),
            &mut c,
            n,
            epilogue,
        )
        .expect("gemm");
        out.push(c);
    }
    let skipped = out.pop().expect("two runs");
    let dense = out.pop().expect("two runs");
    (dense, skipped)
}

fn same_bits(dense: &[f32], skipped: &[f32]) -> Result<(), String> {
    for (i, (d, s)) in dense.iter().zip(skipped).enumerate() {
        if d.to_bits() != s.to_bits() && !(d.is_nan() && s.is_nan()) {
            return Err(format!(
                "element {i}: dense {d:e} ({:#x}), skipping {s:e} ({:#x})",
                d.to_bits(),
                s.to_bits()
            ));
        }
    }
    Ok(())
}

#[test]
fn skipping_zeros_gives_the_dense_bits_at_odd_shapes() {
    split_small_work(true);
    for simd in levels() {
        let cases = odd_shapes(simd);
        // Most cases must have taken the skipping path, or this test tests nothing.
        assert!(
            cases >= 200,
            "{simd}: only {cases} cases were sparse enough to skip zeros"
        );
    }
}

/// Every odd-shape case sparse enough to skip zeros, on `simd`: panics on the
/// first whose bits differ; returns how many there were.
fn odd_shapes(simd: SimdLevel) -> usize {
    let bias_n: Vec<f32> = sparse_data(300, 7, 1.0);
    let bias_m: Vec<f32> = sparse_data(300, 8, 1.0);
    let epilogues = [
        Epilogue::NONE,
        Epilogue {
            bias: Bias::PerColumn(&bias_n),
            activation: Some(Activation::Relu),
        },
        Epilogue {
            bias: Bias::PerRow(&bias_m),
            activation: Some(Activation::Gelu),
        },
        Epilogue {
            bias: Bias::None,
            activation: Some(Activation::Sigmoid),
        },
    ];
    let mut cases = 0;
    let shapes = [(1, 1), (10, 63), (17, 64), (33, 65), (129, 130), (257, 200)];
    for &m in &[1, 3, 8, 13, 64, 65] {
        for &(n, k) in &shapes {
            for (seed, nonzero) in [(1u64, 0.0), (2, 0.1), (3, 0.45)] {
                let a = sparse_data(m * k, seed, nonzero);
                let b = sparse_data(k * n, seed + 100, 1.0);
                let fraction = nonzero_fraction(simd, MatRef::row_major(&a, k), m, k);
                if !worth_skipping(simd, m, fraction) {
                    continue;
                }
                for nr in widths(simd) {
                    for threads in [1, 2] {
                        for (e, epi) in epilogues.iter().enumerate() {
                            let (dense, skipped) = both(simd, m, n, k, &a, &b, nr, threads, *epi);
                            if let Err(diff) = same_bits(&dense, &skipped) {
                                panic!(
                                    "{simd} {m}x{n}x{k}, {nonzero} nonzero, nr {nr}, \
                                     {threads} threads, epilogue {e}: {diff}"
                                );
                            }
                            cases += 1;
                        }
                    }
                }
            }
        }
    }
    cases
}

#[test]
fn skipping_zeros_matches_the_reference_product() {
    let (m, n, k) = (64, 100, 300);
    let a = sparse_data(m * k, 11, 0.4);
    let b = sparse_data(k * n, 12, 1.0);
    let mut want = vec![0.0; m * n];
    sgemm_reference(
        m,
        n,
        k,
        MatRef::row_major(&a, k),
        MatRef::row_major(&b, n),
        &mut want,
        n,
    );
    for simd in levels() {
        let (_, skipped) = both(simd, m, n, k, &a, &b, 16, 1, Epilogue::NONE);
        for (i, (got, want)) in skipped.iter().zip(&want).enumerate() {
            let close = (got - want).abs() <= 1e-5 * (1.0 + want.abs());
            assert!(close, "{simd} element {i}: {got} vs {want}");
        }
    }
}

#[test]
fn nan_in_a_and_infinite_weights_give_what_the_dense_product_gives() {
    let (m, n, k) = (16, 40, 70);
    for simd in levels() {
        // A NaN in A is not a zero: its row of C is NaN in both.
        let mut a = sparse_data(m * k, 21, 0.3);
        a[3 * k + 5] = f32::NAN;
        let b = sparse_data(k * n, 22, 1.0);
        let (dense, skipped) = both(simd, m, n, k, &a, &b, 16, 1, Epilogue::NONE);
        assert!(skipped[3 * n..4 * n].iter().all(|x| x.is_nan()), "{simd}");
        same_bits(&dense, &skipped).expect("NaN in A");
        // An infinite weight under a zero of A: 0 * inf is NaN in the dense
        // product, so these weights must not take the skipping path.
        let a = sparse_data(m * k, 23, 0.3);
        let zero_at = a[..k]
            .iter()
            .position(|&x| x == 0.0)
            .expect("a zero in row 0");
        let mut b = sparse_data(k * n, 24, 1.0);
        b[zero_at * n + 2] = f32::INFINITY;
        let (dense, skipped) = both(simd, m, n, k, &a, &b, 16, 1, Epilogue::NONE);
        assert!(dense[2].is_nan(), "{simd}: 0 * inf in the dense product");
        same_bits(&dense, &skipped).expect("infinite weights");
    }
}

#[test]
fn skipping_is_chosen_by_how_many_zeros_and_rows() {
    for simd in [SimdLevel::Avx512, SimdLevel::Avx2Fma] {
        // One row: skipping pays while it reads at most 3/4 of B.
        assert!(worth_skipping(simd, 1, 0.5));
        assert!(!worth_skipping(simd, 1, 0.9));
        // A few rows need the union of their nonzero columns: at half zeros,
        // four rows read nearly all of B.
        assert!(!worth_skipping(simd, 4, 0.5));
        assert!(worth_skipping(simd, 4, 0.2));
        // Many rows: the FMAs saved against the dearer ones kept.
        assert!(worth_skipping(simd, 64, 0.3));
        assert!(worth_skipping(simd, 64, 0.5));
        assert!(!worth_skipping(simd, 64, 0.7));
    }
    let a = [0.0, 1.0, f32::NAN, 0.0, -0.0, 2.0, 0.0, 0.0];
    for simd in SimdLevel::supported() {
        let got = nonzero_fraction(simd, MatRef::row_major(&a, 4), 2, 3);
        // Rows [0, 1, NaN] and [-0, 2, 0]: 1, NaN and 2 are not zeros.
        assert_eq!(got, 3.0 / 6.0, "{simd}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_shapes_and_zeros(m in 1usize..80, n in 1usize..300, k in 1usize..300,
                               nonzero in 0.0f64..0.6, seed in 0u64..1000, nr_wide in any::<bool>(),
                               relu in any::<bool>(), level in 0usize..2) {
        let levels = levels();
        let Some(&simd) = levels.get(level % levels.len().max(1)) else {
            return Ok(());
        };
        let a = sparse_data(m * k, seed, nonzero);
        let b = sparse_data(k * n, seed + 1, 1.0);
        let bias = sparse_data(n, seed + 2, 1.0);
        let epilogue = Epilogue {
            bias: Bias::PerColumn(&bias),
            activation: relu.then_some(Activation::Relu),
        };
        let nr = widths(simd)[usize::from(nr_wide)];
        let (dense, skipped) = both(simd, m, n, k, &a, &b, nr, 1, epilogue);
        prop_assert!(same_bits(&dense, &skipped).is_ok(), "{:?}", same_bits(&dense, &skipped));
    }
}
