//! Times compiling deep, tiny models with every backend, to show how compile
//! time grows with the node count (it should grow linearly).
//!
//! `cargo run --release -p workbench-kernels --example compile_scaling [layers...]`
//! (default 1000 5000 20000): an MLP of that many 8-wide hidden layers and a
//! convnet of that many 8-channel depthwise-separable blocks on an 8x8 image.

use std::time::Instant;

use workbench_kernels::spec::{Activation, ConvBlock, ConvnetSpec, MlpSpec, ModelSpec};
use workbench_kernels::{compile, BackendKind, CompileOptions, Graph, Precision};

/// `calibration` as first argument: compiles the int8 convnet of the review's
/// `conv256.toml` (256x256x3, two 3x3 convs of 64 channels) and prints the
/// rate of its calibration pass, what the measurement budget assumes.
fn calibration_rate() {
    let spec = ModelSpec::Convnet(ConvnetSpec {
        height: 256,
        width: 256,
        channels: 3,
        blocks: vec![
            ConvBlock::Standard {
                out_channels: 64,
                kernel: 3,
                stride: 1,
            };
            2
        ],
        classes: 2,
        activation: Activation::Relu,
    });
    let graph = match Graph::from_spec(&spec, 1) {
        Ok(g) => g,
        Err(e) => panic!("conv256: {e}"),
    };
    let backend = workbench_kernels::backends::quantized::QuantizedBackend::default();
    let opts = CompileOptions {
        precision: Precision::Int8,
        ..CompileOptions::default()
    };
    let started = Instant::now();
    if let Err(e) = workbench_kernels::Backend::compile(&backend, &graph, &opts) {
        panic!("conv256 int8: {e}");
    }
    let seconds = started.elapsed().as_secs_f64();
    let flops = graph.flops_per_sample() * backend.calibration_samples as f64;
    println!(
        "conv256 int8: compiled in {seconds:.3} s; calibration {} samples x {:.2} GFLOP = {:.1} GFLOP/s",
        backend.calibration_samples,
        graph.flops_per_sample() / 1e9,
        flops / seconds / 1e9
    );
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("calibration") {
        calibration_rate();
        return;
    }
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1000, 5000, 20000]
    } else {
        sizes
    };
    for &layers in &sizes {
        let mlp = ModelSpec::Mlp(MlpSpec {
            input: 8,
            hidden: vec![8; layers],
            output: 2,
            activation: Activation::Relu,
        });
        let convnet = ModelSpec::Convnet(ConvnetSpec {
            height: 8,
            width: 8,
            channels: 8,
            blocks: vec![
                ConvBlock::DepthwiseSeparable {
                    out_channels: 8,
                    kernel: 3,
                    stride: 1,
                };
                layers
            ],
            classes: 2,
            activation: Activation::Relu,
        });
        for (name, spec) in [("mlp", mlp), ("convnet", convnet)] {
            let graph = match Graph::from_spec(&spec, 1) {
                Ok(g) => g,
                Err(e) => panic!("{name} x{layers}: {e}"),
            };
            for (kind, precision) in [
                (BackendKind::Fused, Precision::F32),
                (BackendKind::Tiled, Precision::F32),
                (BackendKind::Quantized, Precision::Int8),
                (BackendKind::Quantized, Precision::F16),
            ] {
                let opts = CompileOptions {
                    precision,
                    ..CompileOptions::default()
                };
                let started = Instant::now();
                let result = compile(&graph, kind, &opts);
                let elapsed = started.elapsed();
                let status = match result {
                    Ok(_) => "ok".to_string(),
                    Err(e) => format!("error: {e}"),
                };
                println!(
                    "{name:8} {layers:6} layers {:6} nodes  {kind:?} {precision:5}: {:8.3} s  {status}",
                    graph.nodes().len(),
                    elapsed.as_secs_f64()
                );
            }
        }
    }
}
