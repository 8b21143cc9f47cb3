//! Helpers shared by the backend tests.
#![allow(dead_code)]

use workbench_kernels::tile::LoopOrder;
use workbench_kernels::{
    compile, Activation, BackendKind, CompileOptions, Graph, SimdLevel, TileParams,
};

/// Every activation the IR has.
pub const ACTS: [Activation; 4] = [
    Activation::Relu,
    Activation::Gelu,
    Activation::Sigmoid,
    Activation::Tanh,
];

/// Deterministic input in [-1, 1).
pub fn input(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// `(||got - want||^2, ||want||^2)`.
fn squared_norms(got: &[f32], want: &[f32]) -> (f64, f64) {
    assert_eq!(got.len(), want.len());
    let diff: f64 = got
        .iter()
        .zip(want)
        .map(|(a, b)| ((a - b) as f64).powi(2))
        .sum();
    let norm: f64 = want.iter().map(|b| (*b as f64).powi(2)).sum();
    (diff, norm)
}

/// `||got - want|| / ||want||`.
pub fn rel_err(got: &[f32], want: &[f32]) -> f64 {
    let (diff, norm) = squared_norms(got, want);
    if norm == 0.0 {
        diff.sqrt()
    } else {
        (diff / norm).sqrt()
    }
}

/// Output RMS below which [`model_err`] measures against this RMS instead.
pub const CANCELLATION_FLOOR: f64 = 0.1;

/// `||got - want||` relative to `||want||`, or to an RMS of
/// [`CANCELLATION_FLOOR`] per element where the outputs nearly cancel: a
/// single output of -0.0014 summed from thirty terms of about 0.2 carries
/// rounding of 4e-8 in any summation order, 3e-5 of itself (a proptest case
/// of `mlp-30-[]-1`), which no relative bound on the output alone can allow
/// for.
pub fn model_err(got: &[f32], want: &[f32]) -> f64 {
    let (diff, norm) = squared_norms(got, want);
    let floor = CANCELLATION_FLOOR.powi(2) * want.len() as f64;
    (diff / norm.max(floor)).sqrt()
}

/// Every (backend, options) combination that must agree with naive: fused, and tiled
/// on every SIMD level this CPU supports, with default and deliberately small blocking,
/// single and two threads.
pub fn variants() -> Vec<(String, BackendKind, CompileOptions)> {
    let mut v = vec![(
        "fused".to_string(),
        BackendKind::Fused,
        CompileOptions::default(),
    )];
    for simd in SimdLevel::supported() {
        let (mr, nr) = workbench_kernels::tile::default_micro_tile(simd);
        let small = TileParams {
            mc: 2 * mr,
            nc: 2 * nr,
            kc: 16,
            mr,
            nr,
            threads: 1,
            loop_order: LoopOrder::ColumnsOuter,
            k_split: 1,
            b_in_place: false,
            a_in_place: false,
            skip_zeros: false,
        };
        // The other schedule knobs: rows-outer loop order, the largest K split
        // (its kernels run on the short row tiles of batch 1 and the edges),
        // A and B read in place (attention context, pointwise convolutions).
        let other_schedule = TileParams {
            loop_order: LoopOrder::RowsOuter,
            k_split: workbench_kernels::tile::supported_k_splits(simd)
                .iter()
                .copied()
                .max()
                .unwrap_or(1),
            b_in_place: true,
            a_in_place: workbench_kernels::tile::a_in_place_supported(simd),
            ..small
        };
        v.push((
            format!("tiled/{simd}"),
            BackendKind::Tiled,
            CompileOptions {
                simd: Some(simd),
                ..CompileOptions::default()
            },
        ));
        v.push((
            format!("tiled/{simd}/small-blocks"),
            BackendKind::Tiled,
            CompileOptions {
                simd: Some(simd),
                tile: Some(small),
                ..CompileOptions::default()
            },
        ));
        v.push((
            format!("tiled/{simd}/small-blocks-other-schedule"),
            BackendKind::Tiled,
            CompileOptions {
                simd: Some(simd),
                tile: Some(other_schedule),
                ..CompileOptions::default()
            },
        ));
        // Each level's kernels split across threads (rows of the direct conv,
        // depthwise + pooled bands, blocks of C), not only the detected level's.
        v.push((
            format!("tiled/{simd}/2-threads"),
            BackendKind::Tiled,
            CompileOptions {
                simd: Some(simd),
                threads: 2,
                ..CompileOptions::default()
            },
        ));
    }
    v
}

/// Run `graph` on every variant at each batch size and compare with naive:
/// `||got - want|| / ||want|| <= tol`, the measure, for cases chosen
/// by hand.
pub fn check_against_naive(graph: &Graph, batches: &[usize], tol: f64) {
    check_with(graph, batches, tol, rel_err, "relative error");
}

/// As [`check_against_naive`] with [`model_err`]'s floor, for random cases
/// (proptest), where an output can come out of near-total cancellation.
pub fn check_against_naive_floored(graph: &Graph, batches: &[usize], tol: f64) {
    check_with(graph, batches, tol, model_err, "error (cancellation floor)");
}

fn check_with(
    graph: &Graph,
    batches: &[usize],
    tol: f64,
    measure: fn(&[f32], &[f32]) -> f64,
    what: &str,
) {
    let mut naive = compile(graph, BackendKind::Naive, &CompileOptions::default()).unwrap();
    let variants = variants();
    let mut exes: Vec<_> = variants
        .iter()
        .map(|(name, kind, opts)| (name, compile(graph, *kind, opts).unwrap()))
        .collect();
    for &batch in batches {
        let x = input(graph.input_len() * batch, batch as u64 + 11);
        let want = naive.run(&x, batch).unwrap().to_vec();
        assert_eq!(want.len(), graph.output_len() * batch);
        assert!(
            want.iter().all(|v| v.is_finite()),
            "{}: naive produced non-finite values",
            graph.name()
        );
        for (name, exe) in exes.iter_mut() {
            let got = exe.run(&x, batch).unwrap();
            let err = measure(got, &want);
            assert!(
                err <= tol,
                "{} batch {batch} on {name}: {what} {err:e} > {tol:e}\n{}",
                graph.name(),
                exe.lowered()
            );
        }
    }
}
