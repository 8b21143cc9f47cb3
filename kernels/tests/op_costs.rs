//! Per-op FLOP and byte counts of `Graph::op_costs`, pinned to hand formulas.
//!
//! The convention the code documents (`cost::OpCost`, `Graph::op_costs`,
//! `Graph::node_flops`) and these tests hold it to:
//! - FLOPs: a multiply-add counts 2. Dense, conv, depthwise and pointwise:
//!   2 x (multiply-adds per output element) x outputs; the bias add is not
//!   counted. Attention scores and context: 2 s^2 d over all heads
//!   (heads x s x s dot products of length d / heads). Elementwise ops,
//!   activations, bias add, scale, softmax and layer norm: 1 per output
//!   element. Global average and mean pooling: 1 per input element. Input,
//!   constant and reshape: 0. All per sample, times the batch.
//! - Bytes: f32 (4 bytes) for every tensor: each input and the output per
//!   sample (times the batch), plus the op's parameters (weights, biases,
//!   gamma/beta) once per call, not per sample. `weight_bytes` is that
//!   parameter share. Input, constant and reshape nodes move 0 bytes (a
//!   constant's values are charged to the op reading it, per sample, as an
//!   ordinary input).
//!
//! Every expected value is written as a formula of the shapes; all are
//! integers well below 2^53, so the comparisons are exact.

use workbench_kernels::{models, Activation, Graph, GraphBuilder, Op, OpCost, Tensor};

const F32: f64 = 4.0;
const BATCH: usize = 3;
const B: f64 = BATCH as f64;

fn t(shape: Vec<usize>) -> Tensor {
    let n = shape.iter().product();
    Tensor::new(shape, vec![0.5; n]).unwrap()
}

fn cost(g: &Graph, name: &str, batch: usize) -> OpCost {
    let costs = g.op_costs(batch);
    // One entry per node except the input, in node order.
    assert_eq!(costs.len(), g.nodes().len() - 1);
    costs
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no cost for node {name}"))
}

#[track_caller]
fn check(c: &OpCost, kind: &str, flops: f64, bytes: f64, weight_bytes: f64) {
    assert_eq!(c.kind, kind, "{}: kind", c.name);
    assert_eq!(c.flops, flops, "{}: flops", c.name);
    assert_eq!(c.bytes, bytes, "{}: bytes", c.name);
    assert_eq!(c.weight_bytes, weight_bytes, "{}: weight bytes", c.name);
}

#[test]
fn dense_with_and_without_bias() {
    // Input per sample [rows=2, k=5], weight [5, 7], bias [7]: output [2, 7].
    let (rows, k, n) = (2.0, 5.0, 7.0);
    let mut g = GraphBuilder::new("t", vec![2, 5]).unwrap();
    let a = g
        .push(
            "fc",
            Op::Dense {
                weight: t(vec![5, 7]),
                bias: Some(t(vec![7])),
            },
            &[0],
        )
        .unwrap();
    let b = g
        .push(
            "fc_nobias",
            Op::Dense {
                weight: t(vec![7, 3]),
                bias: None,
            },
            &[a],
        )
        .unwrap();
    let g = g.finish(b, false, 0).unwrap();
    let params = k * n + n;
    check(
        &cost(&g, "fc", BATCH),
        "matmul",
        B * 2.0 * rows * k * n,
        F32 * (B * (rows * k + rows * n) + params),
        F32 * params,
    );
    // [2, 7] x [7, 3] -> [2, 3], no bias.
    check(
        &cost(&g, "fc_nobias", BATCH),
        "matmul",
        B * 2.0 * rows * 7.0 * 3.0,
        F32 * (B * (rows * 7.0 + rows * 3.0) + 7.0 * 3.0),
        F32 * 7.0 * 3.0,
    );
    // At batch 1 the weights are still read once: only activations scale.
    check(
        &cost(&g, "fc", 1),
        "matmul",
        2.0 * rows * k * n,
        F32 * (rows * k + rows * n + params),
        F32 * params,
    );
}

#[test]
fn convolutions() {
    // Input [c=3, h=5, w=7]. Conv2d weight [4, 3, 3, 2], stride 2, pad 1:
    // oh = (5 + 2 - 3) / 2 + 1 = 3, ow = (7 + 2 - 2) / 2 + 1 = 4.
    let (c, h, w) = (3.0, 5.0, 7.0);
    let x = c * h * w;
    let mut g = GraphBuilder::new("t", vec![3, 5, 7]).unwrap();
    let conv = g
        .push(
            "conv",
            Op::Conv2d {
                weight: t(vec![4, 3, 3, 2]),
                bias: Some(t(vec![4])),
                stride: 2,
                padding: 1,
            },
            &[0],
        )
        .unwrap();
    let dw = g
        .push(
            "dw",
            Op::DepthwiseConv2d {
                weight: t(vec![3, 3, 3]),
                bias: Some(t(vec![3])),
                stride: 2,
                padding: 1,
            },
            &[0],
        )
        .unwrap();
    let pw = g
        .push(
            "pw",
            Op::PointwiseConv {
                weight: t(vec![4, 3]),
                bias: None,
            },
            &[0],
        )
        .unwrap();
    let gap = g.push("gap", Op::GlobalAvgPool, &[pw]).unwrap();
    let g = g.finish(gap, false, 0).unwrap();
    assert_eq!(g.nodes()[conv].shape, vec![4, 3, 4]);
    // Depthwise 3x3, stride 2, pad 1: oh = (5 + 2 - 3) / 2 + 1 = 3, ow = (7 + 2 - 3) / 2 + 1 = 4.
    assert_eq!(g.nodes()[dw].shape, vec![3, 3, 4]);
    let conv_out = 4.0 * 3.0 * 4.0;
    let conv_params = 4.0 * 3.0 * 3.0 * 2.0 + 4.0;
    check(
        &cost(&g, "conv", BATCH),
        "conv2d",
        B * 2.0 * (3.0 * 3.0 * 2.0) * conv_out,
        F32 * (B * (x + conv_out) + conv_params),
        F32 * conv_params,
    );
    // Depthwise [3, 3, 3]: one 3x3 window per output, oh 3, ow 4.
    let dw_out = 3.0 * 3.0 * 4.0;
    let dw_params = 3.0 * 9.0 + 3.0;
    check(
        &cost(&g, "dw", BATCH),
        "depthwise_conv2d",
        B * 2.0 * 9.0 * dw_out,
        F32 * (B * (x + dw_out) + dw_params),
        F32 * dw_params,
    );
    // Pointwise [4, 3] keeps 5x7: 3 multiply-adds per output.
    let pw_out = 4.0 * h * w;
    check(
        &cost(&g, "pw", BATCH),
        "pointwise_conv",
        B * 2.0 * c * pw_out,
        F32 * (B * (x + pw_out) + 4.0 * 3.0),
        F32 * 4.0 * 3.0,
    );
    // Global average pool [4, 5, 7] -> [4]: one FLOP per input element.
    check(
        &cost(&g, "gap", BATCH),
        "global_avg_pool",
        B * pw_out,
        F32 * B * (pw_out + 4.0),
        0.0,
    );
}

#[test]
fn elementwise_norm_and_softmax() {
    // Per sample [s=4, d=6] = 24 elements.
    let (s, d) = (4.0, 6.0);
    let e = s * d;
    let mut g = GraphBuilder::new("t", vec![4, 6]).unwrap();
    let bias = g
        .push("bias", Op::BiasAdd { bias: t(vec![6]) }, &[0])
        .unwrap();
    let mut last = bias;
    for (name, a) in [
        ("relu", Activation::Relu),
        ("gelu", Activation::Gelu),
        ("sigmoid", Activation::Sigmoid),
        ("tanh", Activation::Tanh),
    ] {
        last = g.push(name, Op::Activation(a), &[last]).unwrap();
    }
    let sm = g.push("softmax", Op::Softmax, &[last]).unwrap();
    let ln = g
        .push(
            "ln",
            Op::LayerNorm {
                gamma: t(vec![6]),
                beta: t(vec![6]),
                eps: 1e-5,
            },
            &[sm],
        )
        .unwrap();
    let sc = g.push("scale", Op::Scale(2.0), &[ln]).unwrap();
    let add = g.push("add", Op::Add, &[sc, bias]).unwrap();
    let mul = g.push("mul", Op::Mul, &[add, 0]).unwrap();
    let mp = g.push("mean_pool", Op::MeanPool, &[mul]).unwrap();
    let g = g.finish(mp, false, 0).unwrap();

    let unary = F32 * B * (e + e);
    check(
        &cost(&g, "bias", BATCH),
        "bias_add",
        B * e,
        unary + F32 * d,
        F32 * d,
    );
    for kind in ["relu", "gelu", "sigmoid", "tanh", "softmax", "scale"] {
        check(&cost(&g, kind, BATCH), kind, B * e, unary, 0.0);
    }
    check(
        &cost(&g, "ln", BATCH),
        "layer_norm",
        B * e,
        unary + F32 * 2.0 * d,
        F32 * 2.0 * d,
    );
    // Binary ops read two inputs and write one.
    for kind in ["add", "mul"] {
        check(&cost(&g, kind, BATCH), kind, B * e, F32 * B * 3.0 * e, 0.0);
    }
    // Mean pool [4, 6] -> [6]: one FLOP per input element.
    check(
        &cost(&g, "mean_pool", BATCH),
        "mean_pool",
        B * e,
        F32 * B * (e + d),
        0.0,
    );
}

#[test]
fn reshape_and_constants_are_free_and_constants_are_charged_to_their_reader() {
    let mut g = GraphBuilder::new("t", vec![2, 3]).unwrap();
    let r = g.push("reshape", Op::Reshape(vec![6]), &[0]).unwrap();
    let c = g.push("const", Op::Constant(t(vec![6])), &[]).unwrap();
    let a = g.push("add", Op::Add, &[r, c]).unwrap();
    let g = g.finish(a, false, 0).unwrap();
    check(&cost(&g, "reshape", BATCH), "reshape", 0.0, 0.0, 0.0);
    check(&cost(&g, "const", BATCH), "constant", 0.0, 0.0, 0.0);
    // The constant [6] is read like any input, once per sample, and is not
    // counted as a weight.
    check(
        &cost(&g, "add", BATCH),
        "add",
        B * 6.0,
        F32 * B * (6.0 + 6.0 + 6.0),
        0.0,
    );
    // No entry for the input node.
    assert!(g.op_costs(BATCH).iter().all(|c| c.kind != "input"));
}

#[test]
fn attention() {
    // Per sample x [s=5, d=8], 2 heads (d_head 4): q, k, v projections,
    // scores [2, 5, 5] = 2 x 5 x 5 dot products of length 4 -> 2 s^2 d
    // FLOPs over all heads; context [5, 8] = per head [5, 5] x [5, 4].
    let (s, d, heads) = (5.0, 8.0, 2.0);
    let mut g = GraphBuilder::new("t", vec![5, 8]).unwrap();
    let mut p = Vec::new();
    for name in ["q", "k", "v"] {
        let op = Op::Dense {
            weight: t(vec![8, 8]),
            bias: Some(t(vec![8])),
        };
        p.push(g.push(name, op, &[0]).unwrap());
    }
    let sc = g
        .push("scores", Op::AttentionScores { heads: 2 }, &[p[0], p[1]])
        .unwrap();
    let sm = g.push("softmax", Op::Softmax, &[sc]).unwrap();
    let ctx = g
        .push("context", Op::AttentionContext { heads: 2 }, &[sm, p[2]])
        .unwrap();
    let g = g.finish(ctx, false, 0).unwrap();
    let scores = heads * s * s;
    check(
        &cost(&g, "q", BATCH),
        "matmul",
        B * 2.0 * s * d * d,
        F32 * (B * (s * d + s * d) + d * d + d),
        F32 * (d * d + d),
    );
    check(
        &cost(&g, "scores", BATCH),
        "attention_scores",
        B * heads * s * s * 2.0 * (d / heads),
        F32 * B * (s * d + s * d + scores),
        0.0,
    );
    assert_eq!(
        cost(&g, "scores", 1).flops,
        2.0 * s * s * d,
        "2 s^2 d per sample"
    );
    check(
        &cost(&g, "softmax", BATCH),
        "softmax",
        B * scores,
        F32 * B * 2.0 * scores,
        0.0,
    );
    check(
        &cost(&g, "context", BATCH),
        "attention_context",
        B * 2.0 * s * s * d,
        F32 * B * (scores + s * d + s * d),
        0.0,
    );
}

#[test]
fn reference_models_per_op() {
    // mlp-1024 at batch 1: dense 1024 -> 1024 is 2 * 1024^2 FLOPs, reading
    // 1024 + writing 1024 values and 1024^2 + 1024 parameters.
    let g = models::mlp_1024(1).unwrap();
    let w = 1024.0 * 1024.0 + 1024.0;
    check(
        &cost(&g, "dense0", 1),
        "matmul",
        2.0 * 1024.0 * 1024.0,
        F32 * (2048.0 + w),
        F32 * w,
    );
    check(&cost(&g, "act0", 1), "relu", 1024.0, F32 * 2048.0, 0.0);
    check(
        &cost(&g, "dense2", 1),
        "matmul",
        2.0 * 1024.0 * 10.0,
        F32 * (1024.0 + 10.0 + 1024.0 * 10.0 + 10.0),
        F32 * (1024.0 * 10.0 + 10.0),
    );
    let total: f64 = g.op_costs(1).iter().map(|c| c.flops).sum();
    assert_eq!(
        total,
        2.0 * (2.0 * 1024.0 * 1024.0) + 2.0 * 1024.0 + 2.0 * 10240.0
    );

    // convnet-224 at batch 2: conv 3x3 stride 2 pad 1 on 3x224x224 -> 32x112x112.
    let g = models::convnet_224(1).unwrap();
    let b = 2.0;
    let (x, o) = (3.0 * 224.0 * 224.0, 32.0 * 112.0 * 112.0);
    let conv_params = 32.0 * 27.0 + 32.0;
    check(
        &cost(&g, "block0.conv", 2),
        "conv2d",
        b * 2.0 * 27.0 * o,
        F32 * (b * (x + o) + conv_params),
        F32 * conv_params,
    );
    check(
        &cost(&g, "block1.dw", 2),
        "depthwise_conv2d",
        b * 2.0 * 9.0 * o,
        F32 * (b * 2.0 * o + 32.0 * 9.0 + 32.0),
        F32 * (32.0 * 9.0 + 32.0),
    );
    let pw_out = 64.0 * 112.0 * 112.0;
    check(
        &cost(&g, "block1.pw", 2),
        "pointwise_conv",
        b * 2.0 * 32.0 * pw_out,
        F32 * (b * (o + pw_out) + 64.0 * 32.0 + 64.0),
        F32 * (64.0 * 32.0 + 64.0),
    );
    check(
        &cost(&g, "pool", 2),
        "global_avg_pool",
        b * pw_out,
        F32 * b * (pw_out + 64.0),
        0.0,
    );
    check(
        &cost(&g, "classifier", 2),
        "matmul",
        b * 2.0 * 64.0 * 10.0,
        F32 * (b * (64.0 + 10.0) + 640.0 + 10.0),
        F32 * 650.0,
    );
}
