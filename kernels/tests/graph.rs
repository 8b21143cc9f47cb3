//! Graph IR: builders match spec counts, shape errors, memory limit, fingerprints.

use workbench_kernels::models;
use workbench_kernels::{
    Activation, ConvBlock, ConvnetSpec, Graph, GraphBuilder, KernelError, MlpSpec, ModelSpec, Op,
    Tensor, TransformerSpec,
};

fn specs() -> Vec<ModelSpec> {
    vec![
        models::mlp_1024_spec(),
        models::convnet_224_spec(),
        models::transformer_block_spec(),
        ModelSpec::Mlp(MlpSpec {
            input: 63,
            hidden: vec![65, 7],
            output: 3,
            activation: Activation::Tanh,
        }),
        ModelSpec::Convnet(ConvnetSpec {
            height: 33,
            width: 17,
            channels: 8,
            blocks: vec![
                ConvBlock::Standard {
                    out_channels: 16,
                    kernel: 3,
                    stride: 1,
                },
                ConvBlock::DepthwiseSeparable {
                    out_channels: 24,
                    kernel: 5,
                    stride: 2,
                },
            ],
            classes: 5,
            activation: Activation::Gelu,
        }),
        ModelSpec::Transformer(TransformerSpec {
            seq_len: 16,
            d_model: 64,
            heads: 4,
            ffn: 128,
            layers: 2,
            classes: 0,
        }),
    ]
}

#[test]
fn builders_match_spec_counts() {
    for spec in specs() {
        let g = Graph::from_spec(&spec, 7).unwrap();
        let c = spec.counts();
        assert_eq!(g.param_count(), c.params, "{spec:?}");
        let rel = (g.flops_per_sample() - c.flops_per_sample).abs() / c.flops_per_sample;
        assert!(
            rel <= 0.02,
            "{}: flops {} vs spec {}",
            g.name(),
            g.flops_per_sample(),
            c.flops_per_sample
        );
        assert_eq!(g.input_len(), spec.input_len());
        assert_eq!(g.output_len(), spec.output_len());
        assert_eq!(g.is_classifier(), spec.is_classifier());
        let costs = g.op_costs(4);
        assert_eq!(costs.len(), g.nodes().len() - 1);
        let total: f64 = costs.iter().map(|c| c.flops).sum();
        assert!((total - 4.0 * g.flops_per_sample()).abs() <= 1e-6 * total);
        assert!(g.peak_activation_bytes(2) >= 2 * 4 * c.max_activation_elems);
    }
}

#[test]
fn weights_are_deterministic_and_fingerprint_is_stable() {
    let spec = models::mlp_1024_spec();
    let a = Graph::from_spec(&spec, 1).unwrap();
    let b = Graph::from_spec(&spec, 1).unwrap();
    let c = Graph::from_spec(&spec, 2).unwrap();
    assert_eq!(a.nodes(), b.nodes());
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_ne!(a.fingerprint(), c.fingerprint());
    assert_ne!(a.nodes(), c.nodes());
    let other = Graph::from_spec(&models::convnet_224_spec(), 1).unwrap();
    assert_ne!(a.fingerprint(), other.fingerprint());
}

#[test]
fn refuses_huge_models_before_allocating() {
    let spec = ModelSpec::Mlp(MlpSpec {
        input: 100_000,
        hidden: vec![100_000],
        output: 10,
        activation: Activation::Relu,
    });
    let err = Graph::from_spec(&spec, 0).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, KernelError::TooLarge { .. }), "{msg}");
    assert!(
        msg.contains("GiB") && msg.contains("8.0 GiB limit"),
        "{msg}"
    );
    let saturating = ModelSpec::Mlp(MlpSpec {
        input: usize::MAX / 2,
        hidden: vec![usize::MAX / 2],
        output: 1,
        activation: Activation::Relu,
    });
    assert!(matches!(
        Graph::from_spec(&saturating, 0),
        Err(KernelError::TooLarge { .. })
    ));
}

#[test]
fn invalid_specs_are_named() {
    let bad_heads = ModelSpec::Transformer(TransformerSpec {
        seq_len: 4,
        d_model: 10,
        heads: 3,
        ffn: 8,
        layers: 1,
        classes: 0,
    });
    let msg = Graph::from_spec(&bad_heads, 0).unwrap_err().to_string();
    assert!(msg.contains("not divisible by heads 3"), "{msg}");
    let zero = ModelSpec::Mlp(MlpSpec {
        input: 4,
        hidden: vec![3, 0],
        output: 2,
        activation: Activation::Relu,
    });
    assert!(Graph::from_spec(&zero, 0)
        .unwrap_err()
        .to_string()
        .contains("hidden layer 1"));
}

#[test]
fn shape_errors_name_node_and_shapes() {
    let mut g = GraphBuilder::new("t", vec![3, 5]).unwrap();
    let w = Tensor::new(vec![4, 2], vec![0.0; 8]).unwrap();
    let err = g
        .push(
            "fc",
            Op::Dense {
                weight: w,
                bias: None,
            },
            &[0],
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`fc`") && err.contains("[3, 5]") && err.contains("weight rows 4"),
        "{err}"
    );
    let err = g
        .push("r", Op::Reshape(vec![7]), &[0])
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot reshape"), "{err}");
    let ok = g.push("flat", Op::Reshape(vec![15]), &[0]).unwrap();
    assert_eq!(g.shape(ok), &[15]);
    let err = g
        .push("pool", Op::GlobalAvgPool, &[ok])
        .unwrap_err()
        .to_string();
    assert!(err.contains("[c, h, w]"), "{err}");
    assert!(Tensor::new(vec![2, 2], vec![0.0; 3]).is_err());
}

#[test]
fn chain_model_has_three_elementwise_ops() {
    let g = models::elementwise_chain(1000, 3).unwrap();
    assert_eq!(g.input_len(), 1000);
    assert_eq!(g.flops_per_sample(), 3000.0);
    assert!(models::elementwise_chain(0, 3).is_err());
}
