//! The reference models other runtimes are compared on, pinned node by node:
//! ops, attributes, weight shapes, wiring and output shapes. Any change to
//! either model (a layer, a width, a stride, a padding, an activation, a
//! bias dropped) fails here, and so does a change to how seeds drive weights.

use workbench_kernels::{
    models, Activation, ConvBlock, ConvnetSpec, Graph, MlpSpec, ModelSpec, Op, Tensor,
};

/// One line per op with everything but the weight values.
fn describe(op: &Op) -> String {
    let bias = |b: &Option<Tensor>| match b {
        Some(b) => format!("bias {:?}", b.shape),
        None => "no bias".to_string(),
    };
    match op {
        Op::Input => "input".into(),
        Op::Dense { weight, bias: b } => format!("dense weight {:?} {}", weight.shape, bias(b)),
        Op::Activation(a) => format!("activation {a:?}"),
        Op::Conv2d {
            weight,
            bias: b,
            stride,
            padding,
        } => format!(
            "conv2d weight {:?} {} stride {stride} padding {padding}",
            weight.shape,
            bias(b)
        ),
        Op::DepthwiseConv2d {
            weight,
            bias: b,
            stride,
            padding,
        } => format!(
            "depthwise weight {:?} {} stride {stride} padding {padding}",
            weight.shape,
            bias(b)
        ),
        Op::PointwiseConv { weight, bias: b } => {
            format!("pointwise weight {:?} {}", weight.shape, bias(b))
        }
        Op::GlobalAvgPool => "global_avg_pool".into(),
        other => format!("unexpected op {}", other.kind()),
    }
}

/// (name, op, inputs, per-sample output shape) of every node.
type Layout = Vec<(String, String, Vec<usize>, Vec<usize>)>;

fn layout(g: &Graph) -> Layout {
    g.nodes()
        .iter()
        .map(|n| {
            (
                n.name.clone(),
                describe(&n.op),
                n.inputs.clone(),
                n.shape.clone(),
            )
        })
        .collect()
}

fn row(
    name: &str,
    op: &str,
    inputs: &[usize],
    shape: &[usize],
) -> (String, String, Vec<usize>, Vec<usize>) {
    (name.into(), op.into(), inputs.to_vec(), shape.to_vec())
}

fn assert_layout(g: &Graph, want: Layout) {
    let got = layout(g);
    assert_eq!(got.len(), want.len(), "{}: node count\n{g}", g.name());
    for (i, (got, want)) in got.iter().zip(&want).enumerate() {
        assert_eq!(got, want, "{}: node {i}", g.name());
    }
}

#[test]
fn mlp_1024_is_exactly_three_dense_layers() {
    // input 1024 -> dense 1024 + ReLU -> dense 1024 + ReLU -> dense 10.
    let g = models::mlp_1024(3).unwrap();
    assert_eq!(g.name(), "mlp-1024");
    assert_eq!(g.input_shape(), [1024]);
    assert_layout(
        &g,
        vec![
            row("input", "input", &[], &[1024]),
            row(
                "dense0",
                "dense weight [1024, 1024] bias [1024]",
                &[0],
                &[1024],
            ),
            row("act0", "activation Relu", &[1], &[1024]),
            row(
                "dense1",
                "dense weight [1024, 1024] bias [1024]",
                &[2],
                &[1024],
            ),
            row("act1", "activation Relu", &[3], &[1024]),
            row("dense2", "dense weight [1024, 10] bias [10]", &[4], &[10]),
        ],
    );
    assert_eq!(g.output_node(), 5);
    assert_eq!(g.output_len(), 10);
    assert!(g.is_classifier());
    assert_eq!(g.seed(), 3);
    // 2 * (1024^2 + 1024) + 1024 * 10 + 10.
    assert_eq!(g.param_count(), 2 * (1024 * 1024 + 1024) + 10250);
}

#[test]
fn convnet_224_is_exactly_conv_depthwise_pointwise_pool_dense() {
    // 1x3x224x224 -> conv 3x3, 32 ch, stride 2, pad 1 + ReLU (112 = (224 + 2 - 3) / 2 + 1)
    // -> depthwise 3x3 stride 1 pad 1 + ReLU -> pointwise 1x1, 64 ch + ReLU
    // -> global average pool -> dense 10.
    let g = models::convnet_224(3).unwrap();
    assert_eq!(g.name(), "convnet-224");
    assert_eq!(g.input_shape(), [3, 224, 224]);
    assert_layout(
        &g,
        vec![
            row("input", "input", &[], &[3, 224, 224]),
            row(
                "block0.conv",
                "conv2d weight [32, 3, 3, 3] bias [32] stride 2 padding 1",
                &[0],
                &[32, 112, 112],
            ),
            row("block0.act", "activation Relu", &[1], &[32, 112, 112]),
            row(
                "block1.dw",
                "depthwise weight [32, 3, 3] bias [32] stride 1 padding 1",
                &[2],
                &[32, 112, 112],
            ),
            row("block1.dw_act", "activation Relu", &[3], &[32, 112, 112]),
            row(
                "block1.pw",
                "pointwise weight [64, 32] bias [64]",
                &[4],
                &[64, 112, 112],
            ),
            row("block1.pw_act", "activation Relu", &[5], &[64, 112, 112]),
            row("pool", "global_avg_pool", &[6], &[64]),
            row("classifier", "dense weight [64, 10] bias [10]", &[7], &[10]),
        ],
    );
    assert_eq!(g.output_node(), 8);
    assert_eq!(g.output_len(), 10);
    assert!(g.is_classifier());
    assert_eq!(g.seed(), 3);
    // conv 32*27 + 32, dw 32*9 + 32, pw 64*32 + 64, dense 64*10 + 10.
    assert_eq!(
        g.param_count(),
        (32 * 27 + 32) + (32 * 9 + 32) + (64 * 32 + 64) + (640 + 10)
    );
}

#[test]
fn the_specs_behind_the_models_are_pinned() {
    assert_eq!(
        models::mlp_1024_spec(),
        ModelSpec::Mlp(MlpSpec {
            input: 1024,
            hidden: vec![1024, 1024],
            output: 10,
            activation: Activation::Relu,
        })
    );
    assert_eq!(
        models::convnet_224_spec(),
        ModelSpec::Convnet(ConvnetSpec {
            height: 224,
            width: 224,
            channels: 3,
            blocks: vec![
                ConvBlock::Standard {
                    out_channels: 32,
                    kernel: 3,
                    stride: 2,
                },
                ConvBlock::DepthwiseSeparable {
                    out_channels: 64,
                    kernel: 3,
                    stride: 1,
                },
            ],
            classes: 10,
            activation: Activation::Relu,
        })
    );
}

/// Every parameter tensor of a graph as raw bits, in node order.
fn weight_bits(g: &Graph) -> Vec<Vec<u32>> {
    g.nodes()
        .iter()
        .flat_map(|n| n.op.params())
        .map(|t| t.data.iter().map(|v| v.to_bits()).collect())
        .collect()
}

fn check_seeds(build: fn(u64) -> Graph) {
    let a = weight_bits(&build(11));
    let b = weight_bits(&build(11));
    let c = weight_bits(&build(12));
    assert_eq!(a.len(), c.len());
    // Same seed: bit for bit the same weights.
    assert!(a == b, "same seed gave different weights");
    for (i, (x, y)) in a.iter().zip(&c).enumerate() {
        // Different seed: every tensor differs, and in most of its values
        // (not just a shifted or partly reused stream).
        let differing = x.iter().zip(y).filter(|(p, q)| p != q).count();
        assert!(
            differing * 10 >= x.len() * 9,
            "tensor {i}: only {differing} of {} values differ between seeds 11 and 12",
            x.len()
        );
        // And the weights are not degenerate: not all one value.
        assert!(x.iter().any(|&v| v != x[0]), "tensor {i} is constant");
    }
}

#[test]
fn mlp_weights_follow_the_seed() {
    check_seeds(|s| models::mlp_1024(s).unwrap());
}

#[test]
fn convnet_weights_follow_the_seed() {
    check_seeds(|s| models::convnet_224(s).unwrap());
}
