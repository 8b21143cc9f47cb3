//! Skipping A's zeros against computing them, on one GEMM with pre-packed
//! weights (a dense layer after a ReLU) at several fractions of nonzeros in A:
//! where the crossover of `sparse::worth_skipping` lies. Both variants are
//! timed in turn, three rounds; medians and the ratio are what to compare.
//! The skipping variant takes the dense path where `worth_skipping` says no.
//!
//! `cargo run --release -p workbench-kernels --example zeros_ab [m] [n] [k]`
//! (default 64 1024 1024)

use std::hint::black_box;

#[path = "ab/mod.rs"]
mod ab;

use workbench_kernels::gemm::{sgemm_with, BOperand, Bias, Epilogue, GemmWorkspace, MatRef};
use workbench_kernels::{simd, sparse, Activation, PackedB, TileParams};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (m, n, k) = (
        args.first().copied().unwrap_or(64),
        args.get(1).copied().unwrap_or(1024),
        args.get(2).copied().unwrap_or(1024),
    );
    let simd = simd::detect();
    if !sparse::supported(simd) {
        println!("no zero-skipping kernel for {simd}");
        return;
    }
    let skipping = TileParams {
        threads: 1,
        ..TileParams::for_this_machine()
    };
    let dense = TileParams {
        skip_zeros: false,
        ..skipping
    };
    // Weights and bias from a fixed pseudo-random sequence.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let w: Vec<f32> = (0..k * n).map(|_| next()).collect();
    let bias: Vec<f32> = (0..n).map(|_| next()).collect();
    let packed =
        PackedB::pack(MatRef::row_major(&w, n), k, n, skipping.kc, skipping.nr).expect("pack");
    let epi = Epilogue {
        bias: Bias::PerColumn(&bias),
        activation: Some(Activation::Relu),
    };
    let runs = ((2e9 / (2.0 * (m * n * k) as f64)) as usize).clamp(5, 200);
    println!("{m}x{n}x{k}, {simd}, {runs} runs per median");
    for percent in [0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90] {
        let a: Vec<f32> = (0..m * k)
            .map(|_| {
                let x = next();
                if (x + 0.5) * 100.0 < percent as f32 {
                    x + 0.75
                } else {
                    0.0
                }
            })
            .collect();
        let mut c = vec![0.0f32; m * n];
        let mut ws = GemmWorkspace::new();
        for round in 0..3 {
            let mut line = format!("{percent:>3}% nonzero, round {round}:");
            let mut first = None;
            for (label, tile) in [("skipping zeros", &skipping), ("dense", &dense)] {
                let median = ab::median_us(
                    runs,
                    || {},
                    || {
                        let ok = sgemm_with(
                            &mut ws,
                            tile,
                            simd,
                            m,
                            n,
                            k,
                            MatRef::row_major(black_box(&a), k),
                            BOperand::Packed(&packed),
                            &mut c,
                            n,
                            epi,
                        )
                        .is_ok();
                        black_box(ok);
                    },
                );
                line += &ab::cell(label, median, &mut first);
            }
            println!("{line}");
        }
    }
}
