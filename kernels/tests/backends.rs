//! Every backend agrees with naive on every op and on the three model families,
//! at odd shapes (1, 3, 7, 63, 65, 257) and batch sizes 1 to 64, on every SIMD path.
//! Tolerance (f32): relative error of the output norm <= 1e-5; random cases
//! (proptest) measure it against an output RMS of at least 0.1
//! (`common::model_err`), since random weights can make an output cancel.

mod common;

use common::{check_against_naive, check_against_naive_floored, ACTS};
use proptest::prelude::*;
use workbench_kernels::fusion::{lower, StepKind};
use workbench_kernels::{
    compile, models, Activation, BackendKind, CompileOptions, ConvBlock, ConvnetSpec, Graph,
    GraphBuilder, MlpSpec, ModelSpec, NodeId, Op, SimdLevel, Tensor, TransformerSpec,
};

const TOL: f64 = 1e-5;
/// The odd sizes.
const ODD: [usize; 6] = [1, 3, 7, 63, 65, 257];

fn tensor(shape: Vec<usize>, seed: u64) -> Tensor {
    let n = shape.iter().product();
    Tensor::new(shape, common::input(n, seed)).unwrap()
}

#[test]
fn dense_bias_activation_at_odd_shapes() {
    for (i, &(rows, k, n)) in [
        (1, 1, 1),
        (3, 7, 63),
        (1, 65, 257),
        (7, 257, 3),
        (2, 63, 65),
    ]
    .iter()
    .enumerate()
    {
        let act = ACTS[i % 4];
        let mut g = GraphBuilder::new("dense", vec![rows, k]).unwrap();
        let y = g
            .push(
                "fc",
                Op::Dense {
                    weight: tensor(vec![k, n], 1),
                    bias: None,
                },
                &[0],
            )
            .unwrap();
        let y = g
            .push(
                "bias",
                Op::BiasAdd {
                    bias: tensor(vec![n], 2),
                },
                &[y],
            )
            .unwrap();
        let y = g.push("act", Op::Activation(act), &[y]).unwrap();
        // A second dense with its own bias, consuming the first (epilogue = activation only).
        let y = g
            .push(
                "fc2",
                Op::Dense {
                    weight: tensor(vec![n, 5], 3),
                    bias: Some(tensor(vec![5], 4)),
                },
                &[y],
            )
            .unwrap();
        let y = g
            .push("act2", Op::Activation(ACTS[(i + 1) % 4]), &[y])
            .unwrap();
        check_against_naive(&g.finish(y, false, 0).unwrap(), &[1, 3, 64], TOL);
    }
}

/// Narrow classifiers (n below one register tile width) run on a narrower tile
/// of more rows: every SIMD path agrees with naive, batch 1 to 64.
#[test]
fn narrow_dense_layers_use_a_narrow_tile_and_agree() {
    for (i, &n) in [1, 3, 7, 10, 17].iter().enumerate() {
        let k = 37;
        let mut g = GraphBuilder::new("narrow", vec![1, k]).unwrap();
        let y = g
            .push(
                "classifier",
                Op::Dense {
                    weight: tensor(vec![k, n], 5 + i as u64),
                    bias: Some(tensor(vec![n], 9)),
                },
                &[0],
            )
            .unwrap();
        let y = g.push("act", Op::Activation(ACTS[i % 4]), &[y]).unwrap();
        let g = g.finish(y, false, 0).unwrap();
        check_against_naive(&g, &[1, 3, 15, 64], TOL);
        if n <= 16 && SimdLevel::Avx512.is_supported() {
            let opts = CompileOptions {
                simd: Some(SimdLevel::Avx512),
                ..CompileOptions::default()
            };
            let exe = compile(&g, BackendKind::Tiled, &opts).unwrap();
            assert!(
                exe.lowered().contains("runs on its own tile")
                    && exe.lowered().contains("mr 14 nr 16"),
                "{}",
                exe.lowered()
            );
        }
    }
}

#[test]
fn convolutions_at_odd_shapes() {
    // (in_c, h, w, out_c, kernel, stride, padding)
    for &(c, h, w, oc, k, s, p) in &[
        (3, 7, 9, 5, 3, 1, 1),
        (3, 7, 9, 5, 3, 2, 1),
        (1, 1, 1, 3, 3, 1, 1),
        (4, 13, 6, 7, 1, 1, 0),
        (2, 9, 11, 3, 5, 2, 0),
        (2, 8, 8, 3, 1, 2, 0),
    ] {
        let mut g =
            GraphBuilder::new(&format!("conv{c}x{h}x{w}-k{k}s{s}p{p}"), vec![c, h, w]).unwrap();
        let op = Op::Conv2d {
            weight: tensor(vec![oc, c, k, k], 1),
            bias: Some(tensor(vec![oc], 2)),
            stride: s,
            padding: p,
        };
        let y = g.push("conv", op, &[0]).unwrap();
        let y = g
            .push("relu", Op::Activation(Activation::Relu), &[y])
            .unwrap();
        let op = Op::DepthwiseConv2d {
            weight: tensor(vec![oc, k, k], 3),
            bias: Some(tensor(vec![oc], 4)),
            stride: s,
            padding: k / 2,
        };
        let y = g.push("dw", op, &[y]).unwrap();
        let y = g
            .push("tanh", Op::Activation(Activation::Tanh), &[y])
            .unwrap();
        let op = Op::PointwiseConv {
            weight: tensor(vec![3, oc], 5),
            bias: None,
        };
        let y = g.push("pw", op, &[y]).unwrap();
        let y = g.push("pool", Op::GlobalAvgPool, &[y]).unwrap();
        check_against_naive(&g.finish(y, false, 0).unwrap(), &[1, 2, 7, 64], TOL);
    }
}

/// (in_c, h, w, stem kernel, stride, padding) of `pooled_convnet`s.
const POOLED_CONVNETS: [(usize, usize, usize, usize, usize, usize); 4] = [
    (3, 57, 47, 3, 2, 1),
    (3, 65, 63, 5, 3, 2),
    (1, 33, 35, 3, 1, 1),
    // Rows wider than 64 (depthwise in row pairs, 64 columns at a time) and an odd row count.
    (2, 9, 131, 3, 1, 1),
];

/// Stem conv (32 channels) + ReLU, 3x3 depthwise + ReLU, pointwise (63) + ReLU,
/// global average pool: the `convnet-224` pipeline.
fn pooled_convnet(c: usize, h: usize, w: usize, k: usize, s: usize, p: usize) -> Graph {
    let mut g = GraphBuilder::new(&format!("convnet{c}x{h}x{w}"), vec![c, h, w]).unwrap();
    let op = Op::Conv2d {
        weight: tensor(vec![32, c, k, k], 1),
        bias: Some(tensor(vec![32], 2)),
        stride: s,
        padding: p,
    };
    let y = g.push("stem", op, &[0]).unwrap();
    let y = g
        .push("relu1", Op::Activation(Activation::Relu), &[y])
        .unwrap();
    let op = Op::DepthwiseConv2d {
        weight: tensor(vec![32, 3, 3], 3),
        bias: Some(tensor(vec![32], 4)),
        stride: 1,
        padding: 1,
    };
    let y = g.push("dw", op, &[y]).unwrap();
    let y = g
        .push("relu2", Op::Activation(Activation::Relu), &[y])
        .unwrap();
    let op = Op::PointwiseConv {
        weight: tensor(vec![63, 32], 5),
        bias: Some(tensor(vec![63], 6)),
    };
    let y = g.push("pw", op, &[y]).unwrap();
    let y = g
        .push("relu3", Op::Activation(Activation::Relu), &[y])
        .unwrap();
    let y = g.push("pool", Op::GlobalAvgPool, &[y]).unwrap();
    g.finish(y, false, 0).unwrap()
}

/// The `convnet-224` pipeline at odd image sizes large enough that the tiled
/// engine's fused pointwise + pool runs over several pixel chunks (> 512 pixels),
/// with stride 2 and 3 and a 5x5 stem.
#[test]
fn convnet_pipeline_with_pooled_pointwise_over_many_pixels() {
    for &(c, h, w, k, s, p) in &POOLED_CONVNETS {
        let graph = pooled_convnet(c, h, w, k, s, p);
        check_against_naive(&graph, &[1, 3], TOL);
        let exe = compile(&graph, BackendKind::Tiled, &CompileOptions::default()).unwrap();
        assert!(
            exe.lowered().contains("pooled in"),
            "pointwise + pool not fused:\n{}",
            exe.lowered()
        );
        assert!(
            exe.lowered()
                .contains("dw+relu2 runs with the next step in bands"),
            "depthwise not run in bands with the pooled pointwise:\n{}",
            exe.lowered()
        );
        // The direct kernel exists for AVX-512 and AVX2: whichever level the
        // compile picks (this CPU's best, or what `WORKBENCH_SIMD` forces).
        if k == 3 && workbench_kernels::simd::detect() >= SimdLevel::Avx2Fma {
            assert!(
                exe.lowered()
                    .contains("stem+relu1 runs from its split input directly"),
                "shallow stem not computed directly:\n{}",
                exe.lowered()
            );
            // On one thread it runs inside the depthwise bands; with threads,
            // on its own (split by rows).
            assert!(
                exe.lowered()
                    .contains("stem+relu1 runs inside dw+relu2's bands"),
                "stem not run in the depthwise bands:\n{}",
                exe.lowered()
            );
            let threaded = CompileOptions {
                threads: 2,
                ..CompileOptions::default()
            };
            let exe = compile(&graph, BackendKind::Tiled, &threaded).unwrap();
            assert!(!exe.lowered().contains("runs inside"), "{}", exe.lowered());
        }
        assert!(
            exe.lowered()
                .contains("stem+relu1 to pool run one sample at a time; 1 buffer(s)"),
            "convolutions not run sample by sample:\n{}",
            exe.lowered()
        );
        assert!(
            exe.lowered().contains("writes straight into dw"),
            "stem does not write the depthwise's padded input:\n{}",
            exe.lowered()
        );
    }
}

/// Shallow convolutions (few input channels: computed straight from the split
/// input on AVX-512 and AVX2) into a plain image, rows wider than one 32-column strip and
/// channel counts that split into uneven tiles; and with an activation the direct
/// kernel does not fuse (the GEMM runs instead).
#[test]
fn shallow_convolutions_with_wide_rows() {
    // (in_c, h, w, out_c, kernel, stride, padding, activation)
    for &(c, h, w, oc, k, s, p, act) in &[
        (3, 6, 37, 13, 3, 1, 1, Activation::Relu),
        // 16 + 13 columns: AVX2's last strip is a masked pair of vectors.
        (3, 5, 29, 11, 3, 1, 1, Activation::Relu),
        (3, 9, 70, 32, 3, 2, 1, Activation::Relu),
        (1, 5, 33, 25, 5, 1, 2, Activation::Relu),
        (2, 4, 40, 7, 3, 1, 0, Activation::Tanh),
    ] {
        let mut g = GraphBuilder::new(&format!("conv{c}x{h}x{w}-{oc}"), vec![c, h, w]).unwrap();
        let op = Op::Conv2d {
            weight: tensor(vec![oc, c, k, k], 1),
            bias: Some(tensor(vec![oc], 2)),
            stride: s,
            padding: p,
        };
        let y = g.push("conv", op, &[0]).unwrap();
        let y = g.push("act", Op::Activation(act), &[y]).unwrap();
        check_against_naive(&g.finish(y, false, 0).unwrap(), &[1, 2, 64], TOL);
    }
}

#[test]
fn depthwise_alone_with_wide_rows() {
    for &(c, h, w, k, s) in &[
        (3, 5, 65, 3, 1),
        (2, 7, 63, 3, 2),
        (1, 3, 257, 5, 2),
        (3, 1, 7, 3, 1),
        // Stride 1 row pairs: 64 + 48 + 15, 32 + 8 and 16 + 4 columns.
        (2, 4, 127, 3, 1),
        (1, 3, 40, 3, 1),
        (1, 5, 20, 3, 1),
    ] {
        let mut g = GraphBuilder::new("dw", vec![c, h, w]).unwrap();
        let op = Op::DepthwiseConv2d {
            weight: tensor(vec![c, k, k], 1),
            bias: None,
            stride: s,
            padding: k / 2,
        };
        let y = g.push("dw", op, &[0]).unwrap();
        check_against_naive(&g.finish(y, false, 0).unwrap(), &[1, 3, 64], TOL);
    }
}

#[test]
fn normalisation_pooling_reshape_and_chains() {
    let (s, d) = (7, 65);
    let mut g = GraphBuilder::new("misc", vec![s, d]).unwrap();
    let c = g
        .push("c", Op::Constant(tensor(vec![s, d], 9)), &[])
        .unwrap();
    let a = g.push("scale", Op::Scale(-0.75), &[0]).unwrap();
    let a = g.push("add", Op::Add, &[a, c]).unwrap();
    let a = g
        .push("gelu", Op::Activation(Activation::Gelu), &[a])
        .unwrap();
    let b = g
        .push(
            "bias",
            Op::BiasAdd {
                bias: tensor(vec![d], 3),
            },
            &[0],
        )
        .unwrap();
    let m = g.push("mul", Op::Mul, &[a, b]).unwrap();
    let n = g
        .push(
            "norm",
            Op::LayerNorm {
                gamma: tensor(vec![d], 4),
                beta: tensor(vec![d], 5),
                eps: 1e-5,
            },
            &[m],
        )
        .unwrap();
    let sm = g.push("softmax", Op::Softmax, &[n]).unwrap();
    let r = g.push("residual", Op::Add, &[sm, n]).unwrap();
    let flat = g.push("flatten", Op::Reshape(vec![s * d]), &[r]).unwrap();
    let back = g
        .push("unflatten", Op::Reshape(vec![s, d]), &[flat])
        .unwrap();
    let pool = g.push("pool", Op::MeanPool, &[back]).unwrap();
    let y = g
        .push("sigmoid", Op::Activation(Activation::Sigmoid), &[pool])
        .unwrap();
    check_against_naive(&g.finish(y, false, 0).unwrap(), &[1, 3, 64], TOL);
}

/// Softmax and layer norm alone over every pair of odd row counts and widths
/// (width 1: softmax gives 1, layer norm gives beta).
#[test]
fn softmax_and_layer_norm_at_odd_rows_and_widths() {
    for &rows in &ODD {
        for &d in &ODD {
            // The batch only adds rows: batch 64 where it stays cheap.
            let batches: &[usize] = if rows * d <= 65 * 65 {
                &[1, 64]
            } else {
                &[1, 3]
            };
            let mut g = GraphBuilder::new(&format!("softmax{rows}x{d}"), vec![rows, d]).unwrap();
            let y = g.push("softmax", Op::Softmax, &[0]).unwrap();
            check_against_naive(&g.finish(y, false, 0).unwrap(), batches, TOL);

            let mut g = GraphBuilder::new(&format!("layer_norm{rows}x{d}"), vec![rows, d]).unwrap();
            let op = Op::LayerNorm {
                gamma: tensor(vec![d], 4),
                beta: tensor(vec![d], 5),
                eps: 1e-5,
            };
            let y = g.push("norm", op, &[0]).unwrap();
            check_against_naive(&g.finish(y, false, 0).unwrap(), batches, TOL);
        }
    }
}

/// Standard convolutions into and out of 63, 65 and 257 channels: channel
/// counts one off a multiple of the register tiles, with shallow stems (the
/// direct kernel) and deep inputs (im2col + GEMM).
#[test]
fn convolutions_with_63_65_and_257_channels() {
    // (in_c, h, w, out_c, kernel, stride, padding)
    for &(c, h, w, oc, k, s, p) in &[
        (63, 5, 7, 65, 3, 1, 1),
        (65, 7, 5, 63, 3, 2, 1),
        (65, 3, 3, 257, 1, 1, 0),
        (3, 9, 9, 65, 3, 2, 1),
        (3, 11, 13, 63, 3, 1, 1),
        (1, 6, 5, 257, 3, 1, 1),
    ] {
        let mut g = GraphBuilder::new(&format!("conv{c}x{h}x{w}-{oc}"), vec![c, h, w]).unwrap();
        let op = Op::Conv2d {
            weight: tensor(vec![oc, c, k, k], 1),
            bias: Some(tensor(vec![oc], 2)),
            stride: s,
            padding: p,
        };
        let y = g.push("conv", op, &[0]).unwrap();
        let y = g
            .push("relu", Op::Activation(Activation::Relu), &[y])
            .unwrap();
        let g = g.finish(y, false, 0).unwrap();
        check_against_naive(&g, &[1, 16], TOL);
        if c <= 3 && workbench_kernels::simd::detect() >= SimdLevel::Avx2Fma {
            let exe = compile(&g, BackendKind::Tiled, &CompileOptions::default()).unwrap();
            assert!(
                exe.lowered().contains("runs from its split input directly"),
                "shallow conv not computed directly:\n{}",
                exe.lowered()
            );
        }
    }
}

/// Depthwise (3x3) + ReLU, then pointwise + ReLU, over 63, 65 and 257
/// channels; with a global average pool after it (the tiled engine's pooled
/// pointwise) and without.
#[test]
fn depthwise_separable_with_63_65_and_257_channels() {
    // (channels, h, w, depthwise stride, pointwise out, pool)
    for &(c, h, w, s, oc, pool) in &[
        (63, 7, 9, 1, 65, false),
        (65, 9, 7, 2, 63, false),
        (63, 5, 5, 1, 257, true),
        (65, 6, 11, 1, 257, false),
        (257, 3, 5, 1, 65, true),
        (257, 4, 3, 2, 63, false),
    ] {
        let mut g = GraphBuilder::new(&format!("dwsep{c}x{h}x{w}-{oc}"), vec![c, h, w]).unwrap();
        let op = Op::DepthwiseConv2d {
            weight: tensor(vec![c, 3, 3], 3),
            bias: Some(tensor(vec![c], 4)),
            stride: s,
            padding: 1,
        };
        let y = g.push("dw", op, &[0]).unwrap();
        let y = g
            .push("relu1", Op::Activation(Activation::Relu), &[y])
            .unwrap();
        let op = Op::PointwiseConv {
            weight: tensor(vec![oc, c], 5),
            bias: Some(tensor(vec![oc], 6)),
        };
        let y = g.push("pw", op, &[y]).unwrap();
        let mut y = g
            .push("relu2", Op::Activation(Activation::Relu), &[y])
            .unwrap();
        if pool {
            y = g.push("pool", Op::GlobalAvgPool, &[y]).unwrap();
        }
        let g = g.finish(y, false, 0).unwrap();
        check_against_naive(&g, &[1, 64], TOL);
        let exe = compile(&g, BackendKind::Tiled, &CompileOptions::default()).unwrap();
        assert_eq!(
            exe.lowered().contains("pooled in"),
            pool,
            "pointwise + pool fused iff pooled:\n{}",
            exe.lowered()
        );
    }
}

/// Push `conv`, then `act` on it. With `fused` the activation is the conv's only
/// consumer, so the fusion pass folds it into the conv's epilogue; otherwise the
/// conv's result is also added back in (`act(conv) + conv`), which keeps the
/// activation a separate step. Returns the node the next layer reads.
fn conv_then_activation(
    g: &mut GraphBuilder,
    name: &str,
    conv: Op,
    x: NodeId,
    act: Activation,
    fused: bool,
) -> NodeId {
    let y = g.push(name, conv, &[x]).unwrap();
    let a = g
        .push(&format!("{name}.act"), Op::Activation(act), &[y])
        .unwrap();
    if fused {
        a
    } else {
        g.push(&format!("{name}.residual"), Op::Add, &[a, y])
            .unwrap()
    }
}

/// Conv2d, depthwise and pointwise with and without a bias, followed by each
/// activation folded into the epilogue and kept apart; with and without a
/// global average pool at the end (pooled inside the pointwise when fused).
/// The tiled engine's direct shallow conv takes ReLU or no activation, so the
/// other activations fused run through im2col + GEMM. Images of 143 and (over
/// several of the pooled pointwise's pixel chunks) 575 pixels.
#[test]
fn conv_epilogues_with_every_activation_fused_and_unfused() {
    // (in_c, h, w, batches)
    for &(c, h, w, batches) in &[(3, 13, 11, &[1, 2][..]), (2, 25, 23, &[1, 3][..])] {
        for act in ACTS {
            for with_bias in [false, true] {
                for fused in [true, false] {
                    for pool in [false, true] {
                        let bias = |n: usize, seed: u64| with_bias.then(|| tensor(vec![n], seed));
                        let name = format!(
                            "conv{c}x{h}x{w}-{act:?}-bias{with_bias}-fused{fused}-pool{pool}"
                        );
                        let mut g = GraphBuilder::new(&name, vec![c, h, w]).unwrap();
                        let conv = Op::Conv2d {
                            weight: tensor(vec![7, c, 3, 3], 1),
                            bias: bias(7, 2),
                            stride: 1,
                            padding: 1,
                        };
                        let y = conv_then_activation(&mut g, "conv", conv, 0, act, fused);
                        let dw = Op::DepthwiseConv2d {
                            weight: tensor(vec![7, 3, 3], 3),
                            bias: bias(7, 4),
                            stride: 1,
                            padding: 1,
                        };
                        let y = conv_then_activation(&mut g, "dw", dw, y, act, fused);
                        let pw = Op::PointwiseConv {
                            weight: tensor(vec![9, 7], 5),
                            bias: bias(9, 6),
                        };
                        let mut y = conv_then_activation(&mut g, "pw", pw, y, act, fused);
                        if pool {
                            y = g.push("pool", Op::GlobalAvgPool, &[y]).unwrap();
                        }
                        let g = g.finish(y, false, 0).unwrap();

                        // The graph takes the path it is named for.
                        let lowered = lower(&g).unwrap();
                        let convs: Vec<_> = lowered
                            .steps
                            .iter()
                            .filter_map(|s| match &s.kind {
                                StepKind::Conv2d { bias, act, .. }
                                | StepKind::Depthwise { bias, act, .. }
                                | StepKind::Pointwise { bias, act, .. } => Some((bias, act)),
                                _ => None,
                            })
                            .collect();
                        assert_eq!(convs.len(), 3, "{lowered}");
                        for (b, a) in convs {
                            assert_eq!(b.is_some(), with_bias, "{lowered}");
                            assert_eq!(*a, fused.then_some(act), "{lowered}");
                        }
                        check_against_naive(&g, batches, TOL);
                    }
                }
            }
        }
    }
}

/// Which projection of [`attention_graph`] also feeds a non-attention op.
#[derive(Clone, Copy, Debug, PartialEq)]
enum SharedProjection {
    None,
    Q,
    K,
    V,
}

/// Q, K and V projections of one input, scores, softmax and context; with
/// `shared`, that projection is also added into the context (a non-attention
/// consumer).
fn attention_graph(s: usize, d: usize, heads: usize, shared: SharedProjection) -> Graph {
    let mut g =
        GraphBuilder::new(&format!("attn-s{s}-d{d}-shared-{shared:?}"), vec![s, d]).unwrap();
    let q = g
        .push(
            "q",
            Op::Dense {
                weight: tensor(vec![d, d], 1),
                bias: Some(tensor(vec![d], 2)),
            },
            &[0],
        )
        .unwrap();
    let k = g
        .push(
            "k",
            Op::Dense {
                weight: tensor(vec![d, d], 3),
                bias: None,
            },
            &[0],
        )
        .unwrap();
    let v = g
        .push(
            "v",
            Op::Dense {
                weight: tensor(vec![d, d], 4),
                bias: Some(tensor(vec![d], 5)),
            },
            &[0],
        )
        .unwrap();
    let sc = g
        .push("scores", Op::AttentionScores { heads }, &[q, k])
        .unwrap();
    let p = g.push("softmax", Op::Softmax, &[sc]).unwrap();
    let mut y = g
        .push("context", Op::AttentionContext { heads }, &[p, v])
        .unwrap();
    let extra = match shared {
        SharedProjection::None => None,
        SharedProjection::Q => Some(q),
        SharedProjection::K => Some(k),
        SharedProjection::V => Some(v),
    };
    if let Some(extra) = extra {
        y = g.push("plus_projection", Op::Add, &[y, extra]).unwrap();
    }
    g.finish(y, false, 0).unwrap()
}

const ATTENTION_SHAPES: [(usize, usize, usize); 3] = [(1, 3, 1), (7, 12, 3), (65, 16, 2)];

#[test]
fn attention_with_and_without_horizontal_fusion() {
    for &(s, d, heads) in &ATTENTION_SHAPES {
        let g = attention_graph(s, d, heads, SharedProjection::None);
        check_against_naive(&g, &[1, 3, 64], TOL);
        // Q, K and V feed only attention: one matmul over the concatenated weights.
        let exe = compile(&g, BackendKind::Tiled, &CompileOptions::default()).unwrap();
        assert!(
            exe.lowered()
                .contains(&format!("horizontal[q:{d}, k:{d}, v:{d}]")),
            "{}",
            exe.lowered()
        );
    }
}

/// The negative case of horizontal fusion: fusion.rs joins only projections
/// whose results feed nothing but attention, so one that is also added into
/// the output runs on its own, and the other two still share one matmul.
#[test]
fn attention_projection_with_another_consumer_is_not_fused_horizontally() {
    for &(s, d, heads) in &ATTENTION_SHAPES {
        for (shared, still_fused) in [
            (SharedProjection::Q, format!("horizontal[k:{d}, v:{d}]")),
            (SharedProjection::K, format!("horizontal[q:{d}, v:{d}]")),
            (SharedProjection::V, format!("horizontal[q:{d}, k:{d}]")),
        ] {
            let g = attention_graph(s, d, heads, shared);
            check_against_naive(&g, &[1, 3, 64], TOL);
            for kind in [BackendKind::Fused, BackendKind::Tiled] {
                let text = compile(&g, kind, &CompileOptions::default())
                    .unwrap()
                    .lowered();
                let horizontal: Vec<&str> =
                    text.lines().filter(|l| l.contains("horizontal[")).collect();
                assert!(
                    horizontal.len() == 1 && horizontal[0].contains(&still_fused),
                    "{kind}, {shared:?} shared: expected only {still_fused}\n{text}"
                );
            }
        }
    }
}

fn family_specs() -> Vec<ModelSpec> {
    vec![
        ModelSpec::Mlp(MlpSpec {
            input: 63,
            hidden: vec![257, 65, 7],
            output: 3,
            activation: Activation::Relu,
        }),
        ModelSpec::Mlp(MlpSpec {
            input: 1,
            hidden: vec![],
            output: 1,
            activation: Activation::Gelu,
        }),
        ModelSpec::Convnet(ConvnetSpec {
            height: 9,
            width: 7,
            channels: 3,
            blocks: vec![
                ConvBlock::Standard {
                    out_channels: 7,
                    kernel: 3,
                    stride: 2,
                },
                ConvBlock::DepthwiseSeparable {
                    out_channels: 65,
                    kernel: 3,
                    stride: 1,
                },
                ConvBlock::DepthwiseSeparable {
                    out_channels: 3,
                    kernel: 5,
                    stride: 2,
                },
            ],
            classes: 7,
            activation: Activation::Relu,
        }),
        ModelSpec::Transformer(TransformerSpec {
            seq_len: 7,
            d_model: 12,
            heads: 3,
            ffn: 65,
            layers: 2,
            classes: 3,
        }),
        ModelSpec::Transformer(TransformerSpec {
            seq_len: 3,
            d_model: 8,
            heads: 1,
            ffn: 7,
            layers: 1,
            classes: 0,
        }),
    ]
}

#[test]
fn model_families_at_odd_shapes_and_batches() {
    for spec in family_specs() {
        let g = Graph::from_spec(&spec, 42).unwrap();
        check_against_naive(&g, &[1, 2, 7, 64], TOL);
    }
}

/// The reference models other runtimes are compared on (`models`), at the
/// batch sizes the benchmarks use (mlp-1024 at 8 and 64 takes the sparse path
/// after ReLU on AVX2).
#[test]
fn reference_mlp_1024_agrees_at_batches_1_8_64() {
    check_against_naive(&models::mlp_1024(1).unwrap(), &[1, 8, 64], TOL);
}

#[test]
fn reference_transformer_block_agrees_at_batches_1_3_8() {
    check_against_naive(&models::transformer_block(1).unwrap(), &[1, 3, 8], TOL);
}

/// Batch 64 too, against naive on a few of its samples alone (samples do
/// not mix in the block, and naive on all 64 takes about 24 s here): the
/// first, the last, and two between, each sample's output within TOL.
#[test]
fn reference_transformer_block_agrees_at_batch_64_on_sampled_rows() {
    let graph = models::transformer_block(1).unwrap();
    let (in_len, out_len, batch) = (graph.input_len(), graph.output_len(), 64);
    let x = common::input(in_len * batch, 64 + 11);
    let picked = [0usize, 21, 42, 63];
    let picked_x: Vec<f32> = picked
        .iter()
        .flat_map(|&s| x[s * in_len..(s + 1) * in_len].iter().copied())
        .collect();
    let mut naive = compile(&graph, BackendKind::Naive, &CompileOptions::default()).unwrap();
    let want = naive.run(&picked_x, picked.len()).unwrap().to_vec();
    for (name, kind, opts) in common::variants() {
        let mut exe = compile(&graph, kind, &opts).unwrap();
        let got = exe.run(&x, batch).unwrap();
        assert_eq!(got.len(), out_len * batch);
        for (i, &s) in picked.iter().enumerate() {
            let err = common::rel_err(
                &got[s * out_len..(s + 1) * out_len],
                &want[i * out_len..(i + 1) * out_len],
            );
            assert!(
                err <= TOL,
                "sample {s} of 64 on {name}: relative error {err:e}"
            );
        }
    }
}

#[test]
fn reference_convnet_224_agrees_at_batches_1_2() {
    check_against_naive(&models::convnet_224(1).unwrap(), &[1, 2], TOL);
}

/// Two and three threads give one thread's bits, with work split at any size:
/// the stem by blocks of rows, depthwise + pooled pointwise by bands, GEMMs by
/// blocks of C; one sample and several.
#[test]
fn threads_give_the_single_thread_bits() {
    workbench_kernels::gemm::split_small_work(true);
    let mut graphs: Vec<Graph> = family_specs()
        .iter()
        .map(|spec| Graph::from_spec(spec, 42).unwrap())
        .collect();
    graphs.extend(
        POOLED_CONVNETS
            .iter()
            .map(|&(c, h, w, k, s, p)| pooled_convnet(c, h, w, k, s, p)),
    );
    graphs.push(workbench_kernels::models::convnet_224(1).unwrap());
    for g in &graphs {
        let x = common::input(g.input_len() * 3, 9);
        let mut one = compile(g, BackendKind::Tiled, &CompileOptions::default()).unwrap();
        for threads in [2, 3] {
            let opts = CompileOptions {
                threads,
                ..CompileOptions::default()
            };
            let mut many = compile(g, BackendKind::Tiled, &opts).unwrap();
            for batch in [1, 3] {
                let x = &x[..g.input_len() * batch];
                let want = one.run(x, batch).unwrap().to_vec();
                for _ in 0..3 {
                    let got = many.run(x, batch).unwrap();
                    let same = want
                        .iter()
                        .zip(got)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{} batch {batch}, {threads} threads", g.name());
                }
            }
        }
    }
}

#[test]
fn runs_reuse_buffers_and_accept_batch_changes() {
    let g = Graph::from_spec(&family_specs()[0], 3).unwrap();
    for kind in [BackendKind::Naive, BackendKind::Fused, BackendKind::Tiled] {
        let mut exe = compile(&g, kind, &CompileOptions::default()).unwrap();
        let x = common::input(g.input_len() * 4, 1);
        let first = exe.run(&x, 4).unwrap().to_vec();
        let ptr = exe.run(&x, 4).unwrap().as_ptr();
        assert_eq!(
            exe.run(&x, 4).unwrap(),
            &first[..],
            "{kind}: not deterministic"
        );
        assert_eq!(
            exe.run(&x, 4).unwrap().as_ptr(),
            ptr,
            "{kind}: output buffer moved between runs"
        );
        let one = exe.run(&x[..g.input_len()], 1).unwrap().to_vec();
        assert_eq!(&one[..], &first[..g.output_len()]);
        assert!(exe.run(&x[..3], 1).is_err());
        assert_eq!(exe.backend(), kind);
        let bad = CompileOptions {
            precision: workbench_kernels::Precision::Int8,
            ..CompileOptions::default()
        };
        assert!(compile(&g, kind, &bad).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn random_mlps_agree(input in 1usize..80, hidden in proptest::collection::vec(1usize..80, 0..3),
                         output in 1usize..20, act in 0usize..4, batch in 1usize..9) {
        let spec = ModelSpec::Mlp(MlpSpec { input, hidden, output, activation: ACTS[act] });
        check_against_naive_floored(&Graph::from_spec(&spec, 5).unwrap(), &[batch], TOL);
    }

    #[test]
    fn random_convnets_agree(h in 1usize..12, w in 1usize..12, c in 1usize..4, oc in 1usize..9,
                             k in 0usize..3, stride in 1usize..3, dw in proptest::bool::ANY) {
        let kernel = 2 * k + 1;
        // A stride beyond the padded input is refused by shape inference
        // (`graph::stride_beyond_input`; tests/scenario_limits.rs checks the
        // refusal): only graphs it accepts are compared.
        prop_assume!(stride <= h.max(w) + 2 * k);
        let block = if dw {
            ConvBlock::DepthwiseSeparable { out_channels: oc, kernel, stride }
        } else {
            ConvBlock::Standard { out_channels: oc, kernel, stride }
        };
        let spec = ModelSpec::Convnet(ConvnetSpec { height: h, width: w, channels: c, blocks: vec![block], classes: 3, activation: Activation::Relu });
        check_against_naive_floored(&Graph::from_spec(&spec, 5).unwrap(), &[2], TOL);
    }
}

/// Regression: a 5x5 kernel over a 1- or 2-pixel-wide image has taps that never
/// land inside a row; im2col must skip them (it used to underflow an index).
#[test]
fn wide_kernels_over_tiny_images_agree() {
    for (h, w) in [(1, 1), (1, 2), (2, 1), (3, 2)] {
        for stride in [1, 2] {
            let spec = ModelSpec::Convnet(ConvnetSpec {
                height: h,
                width: w,
                channels: 2,
                blocks: vec![ConvBlock::Standard {
                    out_channels: 3,
                    kernel: 5,
                    stride,
                }],
                classes: 3,
                activation: Activation::Relu,
            });
            check_against_naive(&Graph::from_spec(&spec, 5).unwrap(), &[1, 2, 64], TOL);
        }
    }
}

#[test]
fn reshape_only_graph_returns_its_input() {
    let mut g = GraphBuilder::new("flatten", vec![3, 5]).unwrap();
    let y = g.push("flat", Op::Reshape(vec![15]), &[0]).unwrap();
    let g = g.finish(y, false, 0).unwrap();
    let x = common::input(30, 4);
    for kind in [BackendKind::Naive, BackendKind::Fused, BackendKind::Tiled] {
        let mut exe = compile(&g, kind, &CompileOptions::default()).unwrap();
        assert_eq!(exe.run(&x, 2).unwrap(), &x[..], "{kind}");
    }
}
