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
        let written: f64 = g
            .nodes()
            .iter()
            .filter(|n| !matches!(n.op, Op::Constant(_)))
            .map(|n| n.numel() as f64)
            .sum();
        assert_eq!(c.total_activation_elems, written, "{}", g.name());
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

/// Graphs every backend would panic on (or abort allocating for) are
/// refused as they are built, with the node named: empty weights, tensors
/// whose values do not match their shape, constants read as a batch, an
/// output of constants alone, layer norm of a scalar, absurd padding.
#[test]
fn graphs_the_backends_cannot_run_are_refused_when_built() {
    let t = |shape: Vec<usize>, n: usize| Tensor::new(shape, vec![0.5; n]).unwrap();
    let dense = |weight: Tensor| Op::Dense { weight, bias: None };
    let refused = |g: &mut GraphBuilder, name: &str, op: Op, inputs: &[usize], says: &str| {
        let err = g.push(name, op, inputs).unwrap_err().to_string();
        assert!(
            err.contains(&format!("`{name}`")) && err.contains(says),
            "{err}"
        );
    };
    let mut g = GraphBuilder::new("t", vec![3]).unwrap();
    refused(
        &mut g,
        "empty",
        dense(t(vec![3, 0], 0)),
        &[0],
        "at least one value",
    );
    let short = Tensor {
        shape: vec![3, 4],
        dtype: workbench_kernels::graph::DType::F32,
        data: vec![0.0; 5].into(),
    };
    refused(&mut g, "short", dense(short), &[0], "holds 5 values");
    let c = g.push("c", Op::Constant(t(vec![3], 3)), &[]).unwrap();
    let scaled = g.push("s", Op::Scale(2.0), &[c]).unwrap();
    refused(&mut g, "fc", dense(t(vec![3, 2], 6)), &[scaled], "constant");
    // Elementwise with the input is fine; an output of constants alone is not.
    let sum = g.push("sum", Op::Add, &[0, scaled]).unwrap();
    let mut g2 = GraphBuilder::new("t2", vec![3]).unwrap();
    let c2 = g2.push("c", Op::Constant(t(vec![3], 3)), &[]).unwrap();
    let err = g2.finish(c2, false, 0).unwrap_err().to_string();
    assert!(err.contains("constants alone"), "{err}");
    assert!(g.finish(sum, false, 0).is_ok());
    let mut g = GraphBuilder::new("scalar", vec![]).unwrap();
    let ln = Op::LayerNorm {
        gamma: t(vec![1], 1),
        beta: t(vec![1], 1),
        eps: 1e-5,
    };
    refused(&mut g, "ln", ln, &[0], "at least one axis");
    let mut g = GraphBuilder::new("img", vec![1, 2, 2]).unwrap();
    let padded = Op::Conv2d {
        weight: t(vec![1, 1, 1, 1], 1),
        bias: None,
        stride: 1,
        padding: 100_000,
    };
    refused(&mut g, "pad", padded, &[0], "more than the");
}

#[test]
fn chain_model_has_three_elementwise_ops() {
    let g = models::elementwise_chain(1000, 3).unwrap();
    assert_eq!(g.input_len(), 1000);
    assert_eq!(g.flops_per_sample(), 3000.0);
    assert!(models::elementwise_chain(0, 3).is_err());
}

/// The only node reading `i`, by the definition: scan every node (quadratic, for checking).
fn sole_consumer_by_scan(g: &Graph, i: usize) -> Option<usize> {
    if i == g.output_node() {
        return None;
    }
    let mut users = g
        .nodes()
        .iter()
        .enumerate()
        .filter(|(_, n)| n.inputs.contains(&i));
    match (users.next(), users.next()) {
        (Some((j, n)), None) if n.inputs.len() == 1 => Some(j),
        _ => None,
    }
}

#[test]
fn sole_consumers_name_the_one_single_input_reader_of_each_node() {
    let relu = || Op::Activation(Activation::Relu);
    let mut b = GraphBuilder::new("branches", vec![4]).unwrap();
    let x = b.input();
    let r1 = b.push("r1", relu(), &[x]).unwrap();
    let t = b
        .push("t", Op::Activation(Activation::Tanh), &[r1])
        .unwrap();
    let sum = b.push("sum", Op::Add, &[x, t]).unwrap();
    let r2 = b.push("r2", relu(), &[sum]).unwrap();
    let square = b.push("square", Op::Mul, &[r2, r2]).unwrap();
    let unused = b.push("unused", relu(), &[square]).unwrap();
    let out = b.push("out", Op::Scale(2.0), &[square]).unwrap();
    let g = b.finish(out, false, 1).unwrap();
    let mut want = vec![None; g.nodes().len()];
    // x is read by r1 and sum; t only by sum, which reads x too; r2 twice by
    // one node of two inputs; square by two nodes; out is the output.
    want[r1] = Some(t);
    want[sum] = Some(r2);
    assert_eq!(want[unused], None);
    assert_eq!(g.sole_consumers(), want);
}

#[test]
fn sole_consumers_and_peak_activations_agree_with_a_scan_of_every_node() {
    let mut graphs: Vec<Graph> = specs()
        .iter()
        .map(|s| Graph::from_spec(s, 7).unwrap())
        .collect();
    graphs.push(models::elementwise_chain(64, 3).unwrap());
    for g in &graphs {
        let scanned: Vec<Option<usize>> = (0..g.nodes().len())
            .map(|i| sole_consumer_by_scan(g, i))
            .collect();
        assert_eq!(g.sole_consumers(), scanned, "{}", g.name());
        assert!(scanned.iter().any(Option::is_some), "{}", g.name());
        // Peak: at each step, the values produced so far and read at or after it.
        let n = g.nodes().len();
        let mut last_use: Vec<usize> = (0..n).collect();
        for (i, node) in g.nodes().iter().enumerate() {
            for &inp in &node.inputs {
                last_use[inp] = last_use[inp].max(i);
            }
        }
        last_use[g.output_node()] = n;
        let peak = (0..n)
            .map(|step| {
                (0..=step)
                    .filter(|&v| last_use[v] >= step && !matches!(g.nodes()[v].op, Op::Constant(_)))
                    .map(|v| g.nodes()[v].numel() as u64)
                    .sum::<u64>()
            })
            .max()
            .unwrap();
        assert_eq!(g.peak_activation_bytes(3), peak * 3 * 4, "{}", g.name());
    }
}
