//! The quantized backend on several threads: its GEMMs (int8 dense, conv and
//! pointwise; f16/bf16 dense and conv) split into blocks of rows and column
//! panels, which must give the bits of one thread. The size thresholds are
//! off here (`split_small_work`), so test-sized GEMMs split too.

use workbench_kernels::backends::quantized::{seeded_inputs, QuantizedBackend};
use workbench_kernels::gemm::split_small_work;
use workbench_kernels::quant::Int8Path;
use workbench_kernels::{
    compile, Activation, Backend, BackendKind, CompileOptions, ConvBlock, ConvnetSpec, Graph,
    GraphBuilder, MlpSpec, ModelSpec, Op, Precision, Tensor, TransformerSpec,
};

/// The three families at odd sizes (1, 3, 7, 63, 65, 257): chained int8
/// layers (ReLU) and unchained ones (tanh), int8 convs over many taps and
/// pointwise convs with a pooled epilogue, a transformer's dense layers.
fn graphs() -> Vec<Graph> {
    let specs = [
        ModelSpec::Mlp(MlpSpec {
            input: 63,
            hidden: vec![257, 65],
            output: 7,
            activation: Activation::Relu,
        }),
        ModelSpec::Mlp(MlpSpec {
            input: 65,
            hidden: vec![63],
            output: 3,
            activation: Activation::Tanh,
        }),
        ModelSpec::Convnet(ConvnetSpec {
            height: 15,
            width: 13,
            channels: 7,
            blocks: vec![
                // 7 x 3 x 3 = 63 taps: the f32 direct kernel on AVX-512.
                ConvBlock::Standard {
                    out_channels: 65,
                    kernel: 3,
                    stride: 2,
                },
                // 65 x 3 x 3 taps: an int8 conv GEMM.
                ConvBlock::Standard {
                    out_channels: 63,
                    kernel: 3,
                    stride: 1,
                },
                ConvBlock::DepthwiseSeparable {
                    out_channels: 257,
                    kernel: 3,
                    stride: 1,
                },
            ],
            classes: 7,
            activation: Activation::Relu,
        }),
        // Several bands of pixels per conv GEMM (`band_pixels`: 768 of the
        // 61 x 59 for the 3x3 conv over 8 channels, 2336 for the pointwise
        // 12 -> 16), the last one short, and a pool summed band by band.
        ModelSpec::Convnet(ConvnetSpec {
            height: 61,
            width: 59,
            channels: 3,
            blocks: vec![
                ConvBlock::Standard {
                    out_channels: 8,
                    kernel: 3,
                    stride: 1,
                },
                ConvBlock::Standard {
                    out_channels: 12,
                    kernel: 3,
                    stride: 1,
                },
                ConvBlock::DepthwiseSeparable {
                    out_channels: 16,
                    kernel: 3,
                    stride: 1,
                },
            ],
            classes: 3,
            activation: Activation::Relu,
        }),
        // A stem (27 taps: the f32 direct kernel on AVX2 and AVX-512) read
        // only by a stride-1 depthwise conv: it writes into that conv's
        // zero-padded input, split by rows over threads.
        ModelSpec::Convnet(ConvnetSpec {
            height: 57,
            width: 63,
            channels: 3,
            blocks: vec![
                ConvBlock::Standard {
                    out_channels: 17,
                    kernel: 3,
                    stride: 2,
                },
                ConvBlock::DepthwiseSeparable {
                    out_channels: 24,
                    kernel: 3,
                    stride: 1,
                },
            ],
            classes: 5,
            activation: Activation::Relu,
        }),
        ModelSpec::Transformer(TransformerSpec {
            seq_len: 7,
            d_model: 24,
            heads: 3,
            ffn: 65,
            layers: 1,
            classes: 3,
        }),
    ];
    specs
        .iter()
        .enumerate()
        .map(|(i, spec)| Graph::from_spec(spec, 40 + i as u64).expect("graph"))
        .collect()
}

/// Outputs of `graph` compiled by `backend` at `precision` on `threads`
/// threads, at every batch in `batches`, as bits.
fn outputs(
    backend: &QuantizedBackend,
    graph: &Graph,
    precision: Precision,
    threads: usize,
    batches: &[usize],
) -> Vec<Vec<u32>> {
    let opts = CompileOptions {
        precision,
        threads,
        ..CompileOptions::default()
    };
    let mut exe = backend.compile(graph, &opts).expect("compile");
    batches
        .iter()
        .map(|&batch| {
            let x = seeded_inputs(graph.input_len(), batch, 7 + batch as u64);
            let y = exe.run(&x, batch).expect("run");
            y.iter().map(|v| v.to_bits()).collect()
        })
        .collect()
}

#[test]
fn two_and_three_threads_give_the_bits_of_one_at_every_precision() {
    split_small_work(true);
    let backend = QuantizedBackend::default();
    let batches = [1, 3, 7];
    for graph in graphs() {
        for precision in [Precision::Int8, Precision::F16, Precision::Bf16] {
            let one = outputs(&backend, &graph, precision, 1, &batches);
            for threads in [2, 3] {
                let many = outputs(&backend, &graph, precision, threads, &batches);
                assert!(
                    one == many,
                    "{} {precision} on {threads} threads differs from one thread",
                    graph.name()
                );
            }
        }
    }
}

/// Every int8 kernel path here (each with its own register tile and panel
/// width, so its own chunk boundaries) splits without changing a bit.
#[test]
fn every_int8_path_splits_without_changing_a_bit() {
    split_small_work(true);
    for path in Int8Path::supported() {
        let backend = QuantizedBackend {
            int8_path: Some(path),
            ..QuantizedBackend::default()
        };
        for graph in graphs().iter().take(4) {
            let one = outputs(&backend, graph, Precision::Int8, 1, &[3]);
            let two = outputs(&backend, graph, Precision::Int8, 2, &[3]);
            assert!(one == two, "{} on {path}", graph.name());
        }
    }
}

/// Seeded values in [-1, 1).
fn values(len: usize, seed: u64) -> Vec<f32> {
    seeded_inputs(len, 1, seed)
}

/// A 3x3 conv (72 taps: an int8 / half GEMM) over 8 channels of 61 x 59,
/// its ReLU (in the GEMM's epilogue), and a pointwise conv whose every output
/// pixel is the graph's output: 5 and 2 bands of pixels, the last ones short.
fn conv_graph() -> Graph {
    let mut b = GraphBuilder::new("banded-convs", vec![8, 61, 59]).expect("builder");
    let tensor = |shape: Vec<usize>, seed| {
        let len = shape.iter().product();
        Tensor::new(shape, values(len, seed)).expect("tensor")
    };
    let conv = Op::Conv2d {
        weight: tensor(vec![12, 8, 3, 3], 1),
        bias: Some(tensor(vec![12], 2)),
        stride: 1,
        padding: 1,
    };
    let x = b.input();
    let conv = b.push("conv", conv, &[x]).expect("conv");
    let relu = b
        .push("relu", Op::Activation(Activation::Relu), &[conv])
        .expect("relu");
    let pointwise = Op::PointwiseConv {
        weight: tensor(vec![16, 12], 3),
        bias: Some(tensor(vec![16], 4)),
    };
    let out = b.push("pointwise", pointwise, &[relu]).expect("pointwise");
    b.finish(out, false, 5).expect("graph")
}

/// Every output pixel of banded conv GEMMs is where it belongs: f16 and
/// bf16 weights (f32 sums) on one and two threads agree with the naive f32
/// convolutions element by element, to the weights' rounding. A band that
/// wrote its pixels elsewhere, or left some unwritten, would be far off.
#[test]
fn banded_conv_gemms_put_every_pixel_in_place() {
    split_small_work(true);
    let graph = conv_graph();
    let batch = 2;
    let x = seeded_inputs(graph.input_len(), batch, 9);
    let mut naive = compile(&graph, BackendKind::Naive, &CompileOptions::default()).expect("naive");
    let want = naive.run(&x, batch).expect("naive run").to_vec();
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(
        scale > 1.0,
        "outputs too small to tell pixels apart: {scale}"
    );
    for precision in [Precision::F16, Precision::Bf16] {
        for threads in [1, 2] {
            let opts = CompileOptions {
                precision,
                threads,
                ..CompileOptions::default()
            };
            let mut exe = compile(&graph, BackendKind::Quantized, &opts).expect("compile");
            let got = exe.run(&x, batch).expect("run");
            let tolerance = if precision == Precision::F16 {
                2e-3
            } else {
                2e-2
            };
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= tolerance * scale,
                    "{precision} on {threads} threads: output {i} is {g}, f32 {w}"
                );
            }
        }
    }
}
