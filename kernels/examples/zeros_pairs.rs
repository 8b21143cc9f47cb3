//! `mlp-1024` with zero skipping against the same model without, one run of
//! each in turn (order swapped every pair): the median of the per-pair ratios
//! holds still on a host whose speed moves 20-30% within seconds, where
//! medians of separate batches of runs (`tile_ab --zeros`) do not.
//!
//! `cargo run --release -p workbench-kernels --example zeros_pairs [batch] [pairs] [threads]`
//! (default 64 300 1)

use std::hint::black_box;
use std::time::Instant;

use workbench_kernels::{compile, models, BackendKind, CompileOptions, Executable, TileParams};

fn main() {
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    let (batch, pairs, threads) = (arg(1, 64), arg(2, 300).max(1), arg(3, 1));
    let graph = models::mlp_1024(1).expect("mlp-1024");
    let x = models::reference_input(&graph, batch);
    let base = TileParams::for_this_machine();
    let build = |skip_zeros: bool| {
        let options = CompileOptions {
            threads,
            tile: Some(TileParams { skip_zeros, ..base }),
            ..CompileOptions::default()
        };
        compile(&graph, BackendKind::Tiled, &options).expect("compile")
    };
    let mut variants: [Box<dyn Executable>; 2] = [build(true), build(false)];
    for _ in 0..5 {
        for exe in &mut variants {
            black_box(exe.run(&x, batch).is_ok());
        }
    }
    let mut times = [Vec::new(), Vec::new()];
    let mut ratios = Vec::new();
    for pair in 0..pairs {
        let mut us = [0.0f64; 2];
        let order = if pair % 2 == 0 { [0, 1] } else { [1, 0] };
        for v in order {
            let start = Instant::now();
            black_box(variants[v].run(black_box(&x), batch).is_ok());
            us[v] = start.elapsed().as_secs_f64() * 1e6;
        }
        times[0].push(us[0]);
        times[1].push(us[1]);
        ratios.push(us[0] / us[1]);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "mlp-1024 batch {batch}, {threads} thread(s), {pairs} pairs: skipping zeros {:.1} us, \
         dense {:.1} us, median ratio {:.3}",
        median(&mut times[0]),
        median(&mut times[1]),
        median(&mut ratios)
    );
}
