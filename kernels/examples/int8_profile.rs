//! Runs the int8 `mlp-1024` (single thread) in a loop, for `perf record`, and
//! prints per-run figures: the fastest and median wall time, and the mean
//! on-CPU time (`/proc/thread-self/schedstat`, so time spent descheduled on a
//! loaded machine does not count). With `f32` as third argument the tiled f32
//! model runs the same way afterwards, for a ratio measured in one process.
//! A leading `convnet`, `ds-cnn`, `face` or `speech` runs `convnet-224`,
//! `ds-cnn-small`, the face-unlock scenario's convnet (64x64x1, a stride-2
//! conv and three stride-2 depthwise-separable blocks) or the
//! assistant-speech scenario's (40x98x1 log-mel features) instead; `bert` a BERT-base encoder
//! (seq 128, d 768, 12 heads, FFN 3072, 12 layers), with its compile time.
//!
//! `cargo run --release -p workbench-kernels --example int8_profile [convnet|ds-cnn|face|bert] [batch] [seconds] [f32]`
//! `cargo run --release -p workbench-kernels --example int8_profile gemm [n | m,k,n] [seconds]`
//! (the int8 u8 x s8 -> i32 GEMM alone, n x n x n or m x k x n, on the detected path)
//! `perf record -g target/release/examples/int8_profile 64 10 && perf report --no-children`

use std::hint::black_box;
use std::time::{Duration, Instant};

use workbench_kernels::backends::quantized::seeded_inputs;
use workbench_kernels::models::{convnet_224, ds_cnn_small, mlp_1024};
use workbench_kernels::{compile, BackendKind, CompileOptions, Graph, Precision};

/// Nanoseconds this thread has spent on a CPU.
fn on_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn run(
    (label, graph): (&str, &Graph),
    kind: BackendKind,
    precision: Precision,
    batch: usize,
    seconds: f64,
) {
    let x = seeded_inputs(graph.input_len(), batch, 3);
    let opts = CompileOptions {
        precision,
        threads: 1,
        simd: Some(workbench_kernels::simd::detect()),
        tile: None,
    };
    let compiling = Instant::now();
    let mut exe = match compile(graph, kind, &opts) {
        Ok(e) => e,
        Err(e) => panic!("compile {kind:?} {precision}: {e}"),
    };
    println!(
        "{label} {kind:?} {precision}: compiled in {:?}",
        compiling.elapsed()
    );
    // One run outside the timing sizes the buffers.
    black_box(exe.run(&x, batch).is_ok());
    let mut times = Vec::new();
    let start = Instant::now();
    let cpu0 = on_cpu_ns();
    while start.elapsed().as_secs_f64() < seconds {
        let t = Instant::now();
        black_box(exe.run(black_box(&x), batch).is_ok());
        times.push(t.elapsed());
    }
    let on_cpu = Duration::from_nanos((on_cpu_ns() - cpu0) / times.len().max(1) as u64);
    times.sort();
    let median = times
        .get(times.len() / 2)
        .copied()
        .unwrap_or(Duration::ZERO);
    let fastest = times.first().copied().unwrap_or(Duration::ZERO);
    println!(
        "{label} {kind:?} {precision} batch {batch}: {} runs, fastest {fastest:?}, \
         median {median:?}, mean on-CPU {on_cpu:?}",
        times.len()
    );
}

/// Fastest and median wall time and mean on-CPU time of `gemm_u8s8_i32` at m x k x n.
fn gemm((m, k, n): (usize, usize, usize), seconds: f64) {
    use rand::{Rng, SeedableRng};
    use workbench_kernels::quant::int8::k_padded;
    use workbench_kernels::quant::{gemm_u8s8_i32, Int8Path, PackedWeightsS8};
    let mut rng = rand_pcg::Pcg64::seed_from_u64(1);
    let kp = k_padded(k);
    let a: Vec<u8> = (0..m * kp).map(|_| rng.random()).collect();
    let b: Vec<i8> = (0..k * n).map(|_| rng.random()).collect();
    let mut c = vec![0i32; m * n];
    let path = Int8Path::detect();
    let packed = match PackedWeightsS8::pack(path, k, n, &b, n) {
        Ok(p) => p,
        Err(e) => panic!("pack: {e}"),
    };
    let mut times = Vec::new();
    let start = Instant::now();
    let cpu0 = on_cpu_ns();
    while start.elapsed().as_secs_f64() < seconds {
        let t = Instant::now();
        black_box(gemm_u8s8_i32(black_box(&a), kp, m, 3, &packed, &mut c, n).is_ok());
        times.push(t.elapsed());
    }
    let on_cpu = Duration::from_nanos((on_cpu_ns() - cpu0) / times.len().max(1) as u64);
    times.sort();
    let median = times
        .get(times.len() / 2)
        .copied()
        .unwrap_or(Duration::ZERO);
    let fastest = times.first().copied().unwrap_or(Duration::ZERO);
    let gops = 2.0 * (m * k * n) as f64 / fastest.as_secs_f64() / 1e9;
    println!(
        "int8 gemm {m}x{k}x{n} ({path}): {} runs, fastest {fastest:?} ({gops:.0} G ops/s), \
         median {median:?}, mean on-CPU {on_cpu:?}",
        times.len()
    );
}

/// A BERT-base encoder: seq 128, d 768, 12 heads, FFN 3072, 12 layers.
fn bert_base() -> Result<Graph, workbench_kernels::KernelError> {
    use workbench_kernels::spec::{ModelSpec, TransformerSpec};
    let spec = ModelSpec::Transformer(TransformerSpec {
        seq_len: 128,
        d_model: 768,
        heads: 12,
        ffn: 3072,
        layers: 12,
        classes: 2,
    });
    Graph::from_spec(&spec, 1)
}

/// `scenarios/assistant-speech.toml`'s model: log-mel features 40x98x1, a
/// stride-2 conv and three depthwise-separable blocks, 256 classes.
fn speech_convnet() -> Result<Graph, workbench_kernels::KernelError> {
    use workbench_kernels::spec::{Activation, ConvBlock, ConvnetSpec, ModelSpec};
    let separable = |out_channels, stride| ConvBlock::DepthwiseSeparable {
        out_channels,
        kernel: 3,
        stride,
    };
    let spec = ModelSpec::Convnet(ConvnetSpec {
        height: 40,
        width: 98,
        channels: 1,
        blocks: vec![
            ConvBlock::Standard {
                out_channels: 32,
                kernel: 3,
                stride: 2,
            },
            separable(64, 2),
            separable(128, 2),
            separable(128, 1),
        ],
        classes: 256,
        activation: Activation::Relu,
    });
    Graph::from_spec(&spec, 1)
}

/// `scenarios/face-unlock.toml`'s model.
fn face_unlock_convnet() -> Result<Graph, workbench_kernels::KernelError> {
    use workbench_kernels::spec::{Activation, ConvBlock, ConvnetSpec, ModelSpec};
    let separable = |out_channels| ConvBlock::DepthwiseSeparable {
        out_channels,
        kernel: 3,
        stride: 2,
    };
    let spec = ModelSpec::Convnet(ConvnetSpec {
        height: 64,
        width: 64,
        channels: 1,
        blocks: vec![
            ConvBlock::Standard {
                out_channels: 16,
                kernel: 3,
                stride: 2,
            },
            separable(32),
            separable(64),
            separable(128),
        ],
        classes: 128,
        activation: Activation::Relu,
    });
    Graph::from_spec(&spec, 1)
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().is_some_and(|s| s == "gemm") {
        args.next();
        let dims: Vec<usize> = args
            .next()
            .map(|s| s.split(',').filter_map(|d| d.parse().ok()).collect())
            .unwrap_or_default();
        let shape = match dims[..] {
            [m, k, n] => (m, k, n),
            [n] => (n, n, n),
            _ => (1024, 1024, 1024),
        };
        let seconds = args.next().and_then(|s| s.parse().ok()).unwrap_or(5.0);
        gemm(shape, seconds);
        return;
    }
    let (label, graph) = match args.peek().map(String::as_str) {
        Some("convnet") => ("convnet-224", convnet_224(1)),
        Some("ds-cnn") => ("ds-cnn-small", ds_cnn_small(1)),
        Some("face") => ("face-unlock convnet", face_unlock_convnet()),
        Some("speech") => ("assistant-speech convnet", speech_convnet()),
        Some("bert") => ("bert-base encoder", bert_base()),
        _ => ("mlp-1024", mlp_1024(1)),
    };
    if label != "mlp-1024" {
        args.next();
    }
    let batch: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(64);
    let seconds: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let with_f32 = args.next().is_some_and(|s| s == "f32");
    let graph = match graph {
        Ok(g) => g,
        Err(e) => panic!("{label}: {e}"),
    };
    let model = (label, &graph);
    run(
        model,
        BackendKind::Quantized,
        Precision::Int8,
        batch,
        seconds,
    );
    if with_f32 {
        run(model, BackendKind::Tiled, Precision::F32, batch, seconds);
    }
}
