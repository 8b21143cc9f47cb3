//! The elementwise chain `R = (A + s*B) * C` on 16M floats, op by op and fused,
//! run in turn `PAIRS` times: prints each one's median and the median of the
//! per-turn ratios (on a machine whose memory bandwidth moves by a third within
//! minutes, a ratio of runs taken moments apart is steadier than a ratio of
//! medians taken a minute apart). Then, as a yardstick, one plain loop over the
//! same data, timed after the pairs (its ordinary stores leave the cache full
//! of dirty lines, which would slow whichever run came next).
//!
//! `cargo run --release -p workbench-kernels --example chain_ab`

use std::hint::black_box;
use std::time::Instant;

use workbench_kernels::backends::fused::FusedBackend;
use workbench_kernels::fusion::FusionOptions;
use workbench_kernels::{compile, models, Backend, BackendKind, CompileOptions};

const LEN: usize = 16 << 20;

/// What the chain computes, as one loop over plain vectors (no staging, no
/// stores past the caches): the figure a block-by-block evaluation aims at.
fn plain_loop(a: &[f32], b: &[f32], c: &[f32], r: &mut [f32]) {
    for (((r, a), b), c) in r.iter_mut().zip(a).zip(b).zip(c) {
        *r = (a + models::CHAIN_SCALE * b) * c;
    }
}

fn millis(run: impl FnOnce()) -> f64 {
    let start = Instant::now();
    run();
    start.elapsed().as_secs_f64() * 1e3
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pairs: usize = std::env::var("PAIRS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(21);
    let graph = models::elementwise_chain(LEN, 1)?;
    let a: Vec<f32> = (0..LEN).map(|i| (i % 11) as f32 * 0.1).collect();
    let opts = CompileOptions::default();
    let mut unfused = FusedBackend {
        fusion: FusionOptions::NONE,
    }
    .compile(&graph, &opts)?;
    let mut fused = compile(&graph, BackendKind::Fused, &opts)?;
    let b: Vec<f32> = (0..LEN).map(|i| (i % 7) as f32 * 0.1).collect();
    let c: Vec<f32> = (0..LEN).map(|i| (i % 5) as f32 * 0.1).collect();
    let mut r = vec![0.0f32; LEN];
    let (mut t_unfused, mut t_fused, mut t_loop) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..pairs.max(1) {
        let mut failed = None;
        t_unfused.push(millis(|| {
            failed = unfused.run(black_box(&a), 1).err();
        }));
        t_fused.push(millis(|| {
            failed = failed.take().or(fused.run(black_box(&a), 1).err());
        }));
        if let Some(e) = failed {
            return Err(e.into());
        }
    }
    for _ in 0..pairs.max(1) {
        t_loop.push(millis(|| plain_loop(black_box(&a), &b, &c, &mut r)));
        black_box(&r);
    }
    let ratio = |num: &[f64], den: &[f64]| {
        let r: Vec<f64> = num.iter().zip(den).map(|(n, d)| n / d).collect();
        median(&r)
    };
    println!(
        "unfused {:.1} ms  fused {:.1} ms  (per turn: {:.2}x)  | plain loop {:.1} ms",
        median(&t_unfused),
        median(&t_fused),
        ratio(&t_unfused, &t_fused),
        median(&t_loop),
    );
    Ok(())
}
