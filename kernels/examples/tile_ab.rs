//! The tiled backend's defaults against alternatives, on whole workloads: each
//! variant is compiled and timed in turn (one copy of the weights live at a
//! time), three rounds, so host noise hits all alike. Medians and the ratio to
//! the first variant of the same round are what to compare.
//!
//! `cargo run --release -p workbench-kernels --example tile_ab [filter] [--threads] [--cold] [--zeros]`
//!
//! - default: the default blocking against other blockings, one thread;
//! - `--zeros`: skipping the products of zeros in ReLU outputs (the default)
//!   against computing them, one thread;
//! - `--threads`: one thread against two (the default blocking);
//! - `--cold`: sleep 3 ms before each timed run, so the pool's helper thread
//!   is asleep when a run starts, as between sparse requests.
//!
//! With `--threads`, each workload's line ends with the round trip of a cache
//! line between two threads: this host at times runs the two vCPUs on
//! different dies (about 350 ns instead of 65-80 ns), and then threads that
//! hand data to each other gain much less; and with the smoothed time a
//! sleeping helper takes to start once woken. With `--cold`, each executable
//! learns whether waking a helper made its runs faster (`pool::RunHistory`)
//! and mostly does what was.

use std::hint::black_box;

#[path = "ab/mod.rs"]
mod ab;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use workbench_kernels::{compile, models, BackendKind, CompileOptions, Graph, TileParams};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let threads = args.iter().any(|a| a == "--threads");
    let cold = args.iter().any(|a| a == "--cold");
    let zeros = args.iter().any(|a| a == "--zeros");
    let filter = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_default();
    let base = TileParams::for_this_machine();
    let with_tile = |tile: TileParams| CompileOptions {
        tile: Some(tile),
        ..CompileOptions::default()
    };
    let variants: Vec<(&str, CompileOptions)> = if threads {
        vec![
            ("1 thread", with_tile(base)),
            (
                "2 threads",
                CompileOptions {
                    threads: 2,
                    ..with_tile(base)
                },
            ),
        ]
    } else if zeros {
        vec![
            ("skipping zeros", with_tile(base)),
            (
                "dense",
                with_tile(TileParams {
                    skip_zeros: false,
                    ..base
                }),
            ),
        ]
    } else {
        // The L1-sized K slices used before 2026-11-29, and wider row blocks.
        vec![
            ("default", with_tile(base)),
            (
                "kc384-mc336",
                with_tile(TileParams {
                    kc: 384,
                    mc: 336,
                    nc: 4096,
                    ..base
                }),
            ),
            ("mc252", with_tile(TileParams { mc: 252, ..base })),
        ]
    };
    let mlp = models::mlp_1024(1).expect("mlp-1024");
    let convnet = models::convnet_224(1).expect("convnet-224");
    let transformer = models::transformer_block(1).expect("transformer");
    let kws = models::ds_cnn_small(1).expect("ds-cnn-small");
    let sgemm = |n: usize| models::sgemm_graph(n, n, n, 1).expect("sgemm");
    let work: Vec<(String, &Graph, usize)> = vec![
        ("mlp-1024 b1".into(), &mlp, 1),
        ("mlp-1024 b8".into(), &mlp, 8),
        ("mlp-1024 b64".into(), &mlp, 64),
        ("convnet-224 b1".into(), &convnet, 1),
        ("convnet-224 b8".into(), &convnet, 8),
        ("ds-cnn-small b1".into(), &kws, 1),
        ("transformer b1".into(), &transformer, 1),
        ("transformer b8".into(), &transformer, 8),
    ];
    let gemms: Vec<(usize, Graph)> = [64, 128, 256, 512, 1024, 2048]
        .into_iter()
        .map(|n| (n, sgemm(n)))
        .collect();
    let work = work.into_iter().chain(
        gemms
            .iter()
            .map(|(n, g)| (format!("sgemm n={n}"), g, 1usize)),
    );
    for (name, graph, batch) in work {
        if !name.contains(&filter) {
            continue;
        }
        // Inputs as in the models bench.
        let x = models::reference_input(graph, batch);
        let runs = if graph.flops_per_sample() * batch as f64 > 5e8 {
            10
        } else {
            60
        };
        for round in 0..3 {
            let mut line = format!("{name:<16} round {round}:");
            let mut first = None;
            for (label, opts) in &variants {
                let mut exe = compile(graph, BackendKind::Tiled, opts).expect("compile");
                black_box(exe.run(&x, batch).is_ok());
                let median = ab::median_us(
                    runs,
                    || {
                        if cold {
                            std::thread::sleep(Duration::from_millis(3));
                        }
                    },
                    || {
                        black_box(exe.run(black_box(&x), batch).is_ok());
                    },
                );
                line += &ab::cell(label, median, &mut first);
            }
            if threads {
                let wake = workbench_kernels::gemm::helper_wake_latency()
                    .map_or("-".to_string(), |d| {
                        format!("{:.0} us", d.as_secs_f64() * 1e6)
                    });
                line += &format!(
                    "  [core-to-core round trip {:.0} ns, helper wake-up {wake}]",
                    round_trip_ns()
                );
            }
            println!("{line}");
        }
    }
}

/// Median round trip of a cache line between this thread and another, both
/// spinning (so on the two vCPUs): each bumps a counter the other waits for.
fn round_trip_ns() -> f64 {
    let trips = 20_000u64;
    let flag = Arc::new(AtomicU64::new(0));
    let other = Arc::clone(&flag);
    let echo = std::thread::spawn(move || {
        for i in 0..trips {
            while other.load(Ordering::Acquire) != 2 * i + 1 {
                std::hint::spin_loop();
            }
            other.store(2 * i + 2, Ordering::Release);
        }
    });
    let start = Instant::now();
    for i in 0..trips {
        flag.store(2 * i + 1, Ordering::Release);
        while flag.load(Ordering::Acquire) != 2 * i + 2 {
            std::hint::spin_loop();
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / trips as f64;
    black_box(echo.join().is_ok());
    ns
}
