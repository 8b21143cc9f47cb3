//! The naive backend against hand-computed values.

use workbench_kernels::{
    compile, models, Activation, BackendKind, CompileOptions, GraphBuilder, Op, Tensor,
};

#[test]
fn dense_bias_relu_by_hand() {
    let mut g = GraphBuilder::new("t", vec![2]).unwrap();
    let w = Tensor::new(vec![2, 3], vec![1.0, 2.0, 3.0, -1.0, -2.0, -3.0]).unwrap();
    let b = Tensor::new(vec![3], vec![0.5, 0.0, -10.0]).unwrap();
    let y = g
        .push(
            "fc",
            Op::Dense {
                weight: w,
                bias: Some(b),
            },
            &[0],
        )
        .unwrap();
    let y = g
        .push("relu", Op::Activation(Activation::Relu), &[y])
        .unwrap();
    let graph = g.finish(y, false, 0).unwrap();
    let mut exe = compile(&graph, BackendKind::Naive, &CompileOptions::default()).unwrap();
    // sample 1: x = [2, 1] -> [2-1+0.5, 4-2, 6-3-10] = [1.5, 2, -7] -> relu
    // sample 2: x = [0, 1] -> [-1+0.5, -2, -3-10] -> [0, 0, 0]
    let out = exe.run(&[2.0, 1.0, 0.0, 1.0], 2).unwrap().to_vec();
    assert_eq!(out, vec![1.5, 2.0, 0.0, 0.0, 0.0, 0.0]);
    assert!(exe.run(&[1.0], 1).is_err());
    assert!(exe.run(&[], 0).is_err());
}

#[test]
fn chain_by_hand() {
    let g = models::elementwise_chain(5, 9).unwrap();
    let (b, c) = match (&g.nodes()[1].op, &g.nodes()[2].op) {
        (Op::Constant(b), Op::Constant(c)) => (b.data.to_vec(), c.data.to_vec()),
        _ => panic!("chain layout changed"),
    };
    let mut exe = compile(&g, BackendKind::Naive, &CompileOptions::default()).unwrap();
    let a: Vec<f32> = (0..10).map(|i| i as f32).collect();
    let out = exe.run(&a, 2).unwrap();
    for i in 0..10 {
        let want = (a[i] + models::CHAIN_SCALE * b[i % 5]) * c[i % 5];
        assert!((out[i] - want).abs() <= 1e-6 * want.abs().max(1.0));
    }
}

#[test]
fn classifier_outputs_are_finite() {
    for g in [
        models::mlp_1024(1).unwrap(),
        models::transformer_block(1).unwrap(),
    ] {
        let mut exe = compile(&g, BackendKind::Naive, &CompileOptions::default()).unwrap();
        let input: Vec<f32> = (0..g.input_len())
            .map(|i| ((i % 17) as f32 - 8.0) / 8.0)
            .collect();
        let out = exe.run(&input, 1).unwrap();
        assert_eq!(out.len(), g.output_len());
        assert!(out.iter().all(|v| v.is_finite()));
        assert!(out.iter().any(|&v| v != 0.0));
    }
}
