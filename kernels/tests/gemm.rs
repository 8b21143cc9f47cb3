//! Tiled sgemm against the reference triple loop, for every SIMD path this CPU
//! has, every register tile, odd shapes, strided and pre-packed operands,
//! epilogues and threads.

use proptest::prelude::*;
use workbench_kernels::gemm::{sgemm_reference, supported_tiles_for_tests};
use workbench_kernels::tile::{
    a_in_place_supported, supported_k_splits, LoopOrder, K_SPLIT_MAX_ROWS,
};
use workbench_kernels::{
    sgemm, sgemm_with, Activation, BOperand, Bias, Epilogue, GatherB, GemmWorkspace, MatRef,
    PackedB, SimdLevel, TileParams,
};

fn data(len: usize, seed: u32) -> Vec<f32> {
    (0..len)
        .map(|i| {
            (((i as u32).wrapping_mul(2654435761).wrapping_add(seed * 97)) % 1000) as f32 / 500.0
                - 1.0
        })
        .collect()
}

fn rel_err(got: &[f32], want: &[f32]) -> f64 {
    let diff: f64 = got
        .iter()
        .zip(want)
        .map(|(a, b)| ((a - b) as f64).powi(2))
        .sum();
    let norm: f64 = want.iter().map(|b| (*b as f64).powi(2)).sum();
    (diff / norm.max(1e-30)).sqrt()
}

fn small_tile(simd: SimdLevel, mr: usize, nr: usize) -> TileParams {
    // Small blocks so odd shapes cross every block boundary.
    TileParams {
        mc: 2 * mr + mr / 2 + 1,
        nc: 2 * nr + 1,
        kc: 7,
        mr,
        nr,
        threads: 1,
        loop_order: LoopOrder::ColumnsOuter,
        k_split: 1,
        b_in_place: false,
        a_in_place: false,
        skip_zeros: false,
    }
    .adapted_to(simd)
}

fn check(simd: SimdLevel, tile: TileParams, m: usize, n: usize, k: usize) {
    let a = data(m * k, 1);
    let b = data(k * n, 2);
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
    let mut got = vec![f32::NAN; m * n];
    if tile.threads > 1 {
        // Split even shapes the size thresholds would keep on one thread.
        workbench_kernels::gemm::split_small_work(true);
        let mut ws = GemmWorkspace::new();
        sgemm_with(
            &mut ws,
            &tile,
            simd,
            m,
            n,
            k,
            MatRef::row_major(&a, k),
            BOperand::Mat(MatRef::row_major(&b, n)),
            &mut got,
            n,
            Epilogue::NONE,
        )
        .unwrap();
    } else {
        sgemm(
            &tile,
            simd,
            m,
            n,
            k,
            &a,
            k,
            &b,
            n,
            &mut got,
            n,
            Epilogue::NONE,
        )
        .unwrap();
    }
    assert!(
        rel_err(&got, &want) <= 1e-5,
        "{simd} {tile:?} {m}x{n}x{k}: {}",
        rel_err(&got, &want)
    );
}

#[test]
fn every_simd_path_and_tile_on_odd_shapes() {
    for simd in SimdLevel::supported() {
        for (mr, nr) in supported_tiles_for_tests(simd) {
            let tile = TileParams {
                mc: (3 * mr).max(1),
                nc: 2 * nr,
                kc: 5,
                mr,
                nr,
                threads: 1,
                loop_order: LoopOrder::ColumnsOuter,
                k_split: 1,
                b_in_place: false,
                a_in_place: false,
                skip_zeros: false,
            };
            for &(m, n, k) in &[(1, 1, 1), (mr + 1, nr + 3, 7), (3, 2 * nr - 1, 13)] {
                check(simd, tile, m, n, k);
            }
        }
        for &s in &[1, 3, 7, 63, 65] {
            let (mr, nr) = workbench_kernels::tile::default_micro_tile(simd);
            check(simd, small_tile(simd, mr, nr), s, s, s);
            check(
                simd,
                TileParams::for_this_machine().adapted_to(simd),
                s,
                2 * s + 1,
                s + 2,
            );
        }
    }
}

/// Every schedule knob value (loop order, K split, A and B in place) on every SIMD path and
/// register tile width: short tiles (where the K-split kernels run) and taller
/// ones, K depths not a multiple of the split and across K slices (the split
/// kernels then accumulate into C), one K slice, epilogues, pre-packed B and
/// two threads.
#[test]
fn every_loop_order_and_k_split_on_odd_shapes() {
    for simd in SimdLevel::supported() {
        let nrs: std::collections::BTreeSet<usize> = supported_tiles_for_tests(simd)
            .iter()
            .map(|t| t.1)
            .collect();
        for &nr in &nrs {
            let a_options: &[bool] = if a_in_place_supported(simd) {
                &[false, true]
            } else {
                &[false]
            };
            for (loop_order, b_in_place, a_in_place) in LoopOrder::ALL.into_iter().flat_map(|o| {
                [false, true]
                    .into_iter()
                    .flat_map(move |b| a_options.iter().map(move |&a| (o, b, a)))
            }) {
                for &k_split in supported_k_splits(simd) {
                    for mr in [1, 2, K_SPLIT_MAX_ROWS, K_SPLIT_MAX_ROWS + 1] {
                        for kc in [5, 64] {
                            let tile = TileParams {
                                mc: 2 * mr + 1,
                                nc: 2 * nr,
                                kc,
                                mr,
                                nr,
                                threads: 1,
                                loop_order,
                                k_split,
                                b_in_place,
                                a_in_place,
                                skip_zeros: false,
                            };
                            for &(m, n, k) in &[
                                (1, 1, 1),
                                (1, 2 * nr + 3, 13),
                                (mr + 1, nr + 3, 7),
                                (3, 2 * nr - 1, 11),
                                (2 * mr + 3, 3 * nr + 1, 31),
                            ] {
                                check(simd, tile, m, n, k);
                            }
                        }
                    }
                    let tile = TileParams {
                        loop_order,
                        k_split,
                        b_in_place,
                        a_in_place,
                        nr,
                        ..small_tile(simd, 3, nr)
                    };
                    check_epilogues_and_packed(simd, tile, 7, 2 * nr + 5, 29);
                    check_epilogues_and_packed(simd, tile, 1, nr + 1, 9);
                    let big = TileParams {
                        loop_order,
                        k_split,
                        b_in_place,
                        a_in_place,
                        threads: 2,
                        ..TileParams::for_this_machine().adapted_to(simd)
                    };
                    check(simd, big, 130, 257, 131);
                    check(simd, big, 1, 1031, 1000);
                }
            }
        }
    }
}

/// `tile` on an m x n x k GEMM with each epilogue, B strided and pre-packed,
/// A stored transposed (read in place) and row-major.
fn check_epilogues_and_packed(simd: SimdLevel, tile: TileParams, m: usize, n: usize, k: usize) {
    let a = data(m * k, 11);
    let a_t: Vec<f32> = (0..k * m).map(|idx| a[(idx % m) * k + idx / m]).collect();
    let b = data(k * n, 12);
    let bias_c = data(n, 13);
    let bias_r = data(m, 14);
    let mut plain = vec![0.0; m * n];
    sgemm_reference(
        m,
        n,
        k,
        MatRef::row_major(&a, k),
        MatRef::row_major(&b, n),
        &mut plain,
        n,
    );
    let packed = PackedB::pack(MatRef::row_major(&b, n), k, n, tile.kc, tile.nr).unwrap();
    let mut ws = GemmWorkspace::new();
    for (bias, act) in [
        (Bias::PerColumn(&bias_c[..]), Some(Activation::Relu)),
        (Bias::PerRow(&bias_r[..]), Some(Activation::Gelu)),
        (Bias::None, None),
    ] {
        let want: Vec<f32> = (0..m * n)
            .map(|idx| {
                let (i, j) = (idx / n, idx % n);
                let v = plain[idx]
                    + match bias {
                        Bias::PerColumn(b) => b[j],
                        Bias::PerRow(b) => b[i],
                        Bias::None => 0.0,
                    };
                act.map_or(v, |f| workbench_kernels::act::apply(f, v))
            })
            .collect();
        for a_op in [MatRef::row_major(&a, k), MatRef::transposed(&a_t, m)] {
            for b_op in [
                BOperand::Mat(MatRef::row_major(&b, n)),
                BOperand::Packed(&packed),
            ] {
                let mut got = vec![f32::NAN; m * n];
                let epilogue = Epilogue {
                    bias,
                    activation: act,
                };
                sgemm_with(
                    &mut ws, &tile, simd, m, n, k, a_op, b_op, &mut got, n, epilogue,
                )
                .unwrap();
                let e = rel_err(&got, &want);
                assert!(e <= 1e-5, "{simd} {tile:?} {m}x{n}x{k} {bias:?}: {e}");
            }
        }
    }
}

/// Packing A (4x8 register transposes on the x86 paths, overlapping at the
/// edges): row counts around multiples of 4 and of every tile height, depths
/// around multiples of 8 and across K slices.
#[test]
fn packing_a_at_odd_rows_and_depths() {
    for simd in SimdLevel::supported() {
        for (mr, nr) in [
            workbench_kernels::tile::default_micro_tile(simd),
            (5, workbench_kernels::tile::default_micro_tile(simd).1),
        ] {
            for kc in [8, 11, 384] {
                let tile = TileParams {
                    mc: 3 * mr,
                    nc: 2 * nr,
                    kc,
                    mr,
                    nr,
                    threads: 1,
                    loop_order: LoopOrder::ColumnsOuter,
                    k_split: 1,
                    b_in_place: false,
                    a_in_place: false,
                    skip_zeros: false,
                };
                for m in [1, 3, 4, 5, 7, 13, 14, 15, 29, 64] {
                    for k in [1, 7, 8, 9, 17, 33] {
                        check(simd, tile, m, 10, k);
                    }
                }
            }
        }
    }
}

/// Split across 2 and 3 threads (blocks of row blocks by column slivers with
/// pre-packed B, column slivers otherwise), with several row blocks, K slices
/// and column panels, each epilogue and A row-major or transposed: the same
/// bits as one thread, since each element is still summed by one tile in the
/// same order.
#[test]
fn threads_give_the_serial_bits() {
    workbench_kernels::gemm::split_small_work(true);
    for simd in SimdLevel::supported() {
        let (mr, nr) = workbench_kernels::tile::default_micro_tile(simd);
        let serial = TileParams {
            mc: 2 * mr + 1,
            nc: 3 * nr,
            kc: 19,
            ..TileParams::for_this_machine().adapted_to(simd)
        };
        for &(m, n, k) in &[
            (1, 5 * nr + 3, 40),
            (7, 2 * nr, 19),
            (5 * mr + 2, 7 * nr + 1, 45),
            (3 * mr, 33 * nr - 5, 8),
            // Tall and narrow: one column sliver, split by row blocks.
            (7 * mr + 5, nr - 3, 23),
        ] {
            let a = data(m * k, 21);
            let a_t: Vec<f32> = (0..k * m).map(|idx| a[(idx % m) * k + idx / m]).collect();
            let b = data(k * n, 22);
            let bias_c = data(n, 23);
            let bias_r = data(m, 24);
            // The tile's own nr: under `WORKBENCH_SIMD=avx2` the machine's
            // tile (16 wide) suits the AVX-512 kernels too, and is kept.
            let packed =
                PackedB::pack(MatRef::row_major(&b, n), k, n, serial.kc, serial.nr).unwrap();
            for (bias, activation) in [
                (Bias::PerColumn(&bias_c[..]), Some(Activation::Relu)),
                (Bias::PerRow(&bias_r[..]), Some(Activation::Gelu)),
                (Bias::None, None),
            ] {
                for a_op in [MatRef::row_major(&a, k), MatRef::transposed(&a_t, m)] {
                    for b_op in [
                        BOperand::Mat(MatRef::row_major(&b, n)),
                        BOperand::Packed(&packed),
                    ] {
                        let run = |threads: usize| {
                            let tile = TileParams { threads, ..serial };
                            let mut ws = GemmWorkspace::new();
                            let mut c = vec![f32::NAN; m * n];
                            let epilogue = Epilogue { bias, activation };
                            sgemm_with(
                                &mut ws, &tile, simd, m, n, k, a_op, b_op, &mut c, n, epilogue,
                            )
                            .unwrap();
                            c
                        };
                        let one = run(1);
                        for threads in [2, 3] {
                            let got = run(threads);
                            let same = one
                                .iter()
                                .zip(&got)
                                .all(|(x, y)| x.to_bits() == y.to_bits());
                            assert!(same, "{simd} {m}x{n}x{k} {bias:?} {threads} threads");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn large_default_blocking_and_threads() {
    for simd in SimdLevel::supported() {
        let mut tile = TileParams::for_this_machine().adapted_to(simd);
        check(simd, tile, 257, 257, 257);
        tile.threads = 2;
        check(simd, tile, 130, 257, 300);
    }
}

#[test]
fn strided_packed_and_epilogue() {
    let (m, n, k) = (37, 45, 29);
    let a_t = data(k * m, 3); // A stored transposed: a_t[p * m + i]
    let b = data(k * n, 4);
    let bias_c = data(n, 5);
    let bias_r = data(m, 6);
    let mut plain = vec![0.0; m * n];
    sgemm_reference(
        m,
        n,
        k,
        MatRef::transposed(&a_t, m),
        MatRef::row_major(&b, n),
        &mut plain,
        n,
    );
    for simd in SimdLevel::supported() {
        let (mr, nr) = workbench_kernels::tile::default_micro_tile(simd);
        let tile = small_tile(simd, mr, nr);
        let packed = PackedB::pack(MatRef::row_major(&b, n), k, n, tile.kc, tile.nr).unwrap();
        let mut ws = GemmWorkspace::new();
        for (bias, act) in [
            (Bias::PerColumn(&bias_c[..]), Some(Activation::Relu)),
            (Bias::PerRow(&bias_r[..]), Some(Activation::Gelu)),
            (Bias::None, Some(Activation::Sigmoid)),
        ] {
            let want: Vec<f32> = (0..m * n)
                .map(|idx| {
                    let (i, j) = (idx / n, idx % n);
                    let bv = match bias {
                        Bias::PerColumn(b) => b[j],
                        Bias::PerRow(b) => b[i],
                        Bias::None => 0.0,
                    };
                    workbench_kernels::act::apply(act.unwrap(), plain[idx] + bv)
                })
                .collect();
            // ldc > n: the padding columns must stay untouched.
            let ldc = n + 3;
            for b_op in [
                BOperand::Mat(MatRef::row_major(&b, n)),
                BOperand::Packed(&packed),
            ] {
                let mut c = vec![-7.0; m * ldc];
                let epi = Epilogue {
                    bias,
                    activation: act,
                };
                sgemm_with(
                    &mut ws,
                    &tile,
                    simd,
                    m,
                    n,
                    k,
                    MatRef::transposed(&a_t, m),
                    b_op,
                    &mut c,
                    ldc,
                    epi,
                )
                .unwrap();
                let got: Vec<f32> = (0..m * n).map(|idx| c[(idx / n) * ldc + idx % n]).collect();
                assert!(rel_err(&got, &want) <= 1e-5, "{simd} {bias:?}");
                assert!((0..m).all(|i| c[i * ldc + n..i * ldc + ldc].iter().all(|&v| v == -7.0)));
            }
        }
    }
}

/// A gathered B (rows at arbitrary offsets, columns in runs of `run` with a gap
/// between runs, as a convolution reads its split input) against the same
/// matrix materialised, on every SIMD path, with runs shorter and longer than a
/// register tile, at odd shapes and small blocks.
#[test]
fn gathered_b_matches_the_materialised_matrix() {
    for simd in SimdLevel::supported() {
        let (mr, nr) = workbench_kernels::tile::default_micro_tile(simd);
        for &(m, n, k, run, gap) in &[
            (1usize, 1usize, 1usize, 1usize, 0usize),
            (3, 7, 3, 7, 2),
            (7, 63, 27, 9, 3),
            (65, 65, 7, 65, 1),
            (5, 257, 9, 112, 5),
            (2, 40, 3, 2, 1),
        ] {
            let step = run + gap;
            let rows_of_runs = n.div_ceil(run);
            // Row p starts at offsets[p]; reversed and spaced so rows overlap nothing in order.
            let row_len = (rows_of_runs - 1) * step + run;
            let offsets: Vec<usize> = (0..k).rev().map(|p| p * (row_len + 3) + 1).collect();
            let data_len = k * (row_len + 3) + 1;
            let source = data(data_len, 9);
            let mut b = vec![0.0; k * n];
            for p in 0..k {
                for j in 0..n {
                    b[p * n + j] = source[offsets[p] + (j / run) * step + j % run];
                }
            }
            let a = data(m * k, 4);
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
            for tile in [
                TileParams::for_this_machine().adapted_to(simd),
                small_tile(simd, mr, nr),
            ] {
                let mut got = vec![f32::NAN; m * n];
                let gathered = GatherB {
                    data: &source,
                    row_offsets: &offsets,
                    run,
                    run_step: step,
                };
                sgemm_with(
                    &mut GemmWorkspace::new(),
                    &tile,
                    simd,
                    m,
                    n,
                    k,
                    MatRef::row_major(&a, k),
                    BOperand::Gathered(gathered),
                    &mut got,
                    n,
                    Epilogue::NONE,
                )
                .unwrap();
                let e = rel_err(&got, &want);
                assert!(e <= 1e-5, "{simd} {m}x{n}x{k} run {run}: {e}");
            }
            // Too few row offsets, or a source too short, is an error.
            let tile = TileParams::for_this_machine().adapted_to(simd);
            let need = offsets.iter().max().unwrap() + ((n - 1) / run) * step + (n - 1) % run + 1;
            for (offs, src_len) in [(&offsets[..k - 1], data_len), (&offsets[..], need - 1)] {
                let bad = GatherB {
                    data: &source[..src_len],
                    row_offsets: offs,
                    run,
                    run_step: step,
                };
                let mut c = vec![0.0; m * n];
                let r = sgemm_with(
                    &mut GemmWorkspace::new(),
                    &tile,
                    simd,
                    m,
                    n,
                    k,
                    MatRef::row_major(&a, k),
                    BOperand::Gathered(bad),
                    &mut c,
                    n,
                    Epilogue::NONE,
                );
                assert!(r.is_err(), "{m}x{n}x{k}: bad gathered B accepted");
            }
        }
    }
}

#[test]
fn bad_arguments_are_errors_not_panics() {
    let simd = SimdLevel::Portable;
    let tile = TileParams {
        mc: 8,
        nc: 16,
        kc: 8,
        mr: 4,
        nr: 16,
        threads: 1,
        loop_order: LoopOrder::ColumnsOuter,
        k_split: 1,
        b_in_place: false,
        a_in_place: false,
        skip_zeros: false,
    };
    let a = vec![0.0; 6];
    let b = vec![0.0; 6];
    let mut c = vec![0.0; 3];
    assert!(sgemm(
        &tile,
        simd,
        2,
        2,
        3,
        &a,
        3,
        &b,
        2,
        &mut c,
        2,
        Epilogue::NONE
    )
    .is_err());
    let mut c = vec![0.0; 4];
    assert!(sgemm(
        &tile,
        simd,
        2,
        2,
        4,
        &a,
        3,
        &b,
        2,
        &mut c,
        2,
        Epilogue::NONE
    )
    .is_err());
    let bad = TileParams { mr: 99, ..tile };
    assert!(sgemm(&bad, simd, 2, 2, 3, &a, 3, &b, 2, &mut c, 2, Epilogue::NONE).is_err());
    // K split factors the micro-kernels are not compiled for.
    for k_split in [0, 3, 8] {
        let bad = TileParams { k_split, ..tile };
        assert!(sgemm(&bad, simd, 2, 2, 3, &a, 3, &b, 2, &mut c, 2, Epilogue::NONE).is_err());
    }
    let bias = [1.0];
    let epi = Epilogue {
        bias: Bias::PerColumn(&bias),
        activation: None,
    };
    assert!(sgemm(&tile, simd, 2, 2, 3, &a, 3, &b, 2, &mut c, 2, epi).is_err());
    // k = 0: C = epilogue(0).
    let epi = Epilogue {
        bias: Bias::PerRow(&[1.0, -1.0]),
        activation: Some(Activation::Relu),
    };
    sgemm(&tile, simd, 2, 2, 0, &[], 0, &[], 2, &mut c, 2, epi).unwrap();
    assert_eq!(c, vec![1.0, 1.0, 0.0, 0.0]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn random_shapes_and_blocking(m in 1usize..40, n in 1usize..70, k in 1usize..40, kc in 1usize..20,
                                  mc_mult in 1usize..4, nc_mult in 1usize..4, level in 0usize..3, tile_idx in 0usize..64,
                                  order in 0usize..2, split_idx in 0usize..3, b_in_place in any::<bool>(),
                                  a_in_place in any::<bool>()) {
        let supported = SimdLevel::supported();
        let simd = supported[level % supported.len()];
        let tiles = supported_tiles_for_tests(simd);
        let (mr, nr) = tiles[tile_idx % tiles.len()];
        let splits = supported_k_splits(simd);
        let tile = TileParams {
            mc: mr * mc_mult,
            nc: nr * nc_mult,
            kc,
            mr,
            nr,
            threads: 1,
            loop_order: LoopOrder::ALL[order],
            k_split: splits[split_idx % splits.len()],
            b_in_place,
            a_in_place: a_in_place && a_in_place_supported(simd),
            skip_zeros: false,
        };
        check(simd, tile, m, n, k);
    }
}
