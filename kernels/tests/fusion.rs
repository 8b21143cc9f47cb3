//! What the fusion pass does, checked on the lowered program and its printed form.

use workbench_kernels::backends::{fused::FusedBackend, tiled::TiledBackend};
use workbench_kernels::fusion::{lower, lower_with, FusionOptions, StepKind};
use workbench_kernels::{
    compile, models, Backend, BackendKind, CompileOptions, Graph, ModelSpec, TransformerSpec,
};

#[test]
fn chain_becomes_one_loop() {
    let g = models::elementwise_chain(100, 1).unwrap();
    let l = lower(&g).unwrap();
    assert_eq!(l.steps.len(), 1, "{l}");
    let text = l.to_string();
    assert!(text.contains("(x0 + 0.5*x1) * x2"), "{text}");
    assert!(text.contains("3 graph ops -> 1 steps"), "{text}");
    let unfused = lower_with(&g, FusionOptions::NONE).unwrap();
    assert_eq!(unfused.steps.len(), 3, "{unfused}");
}

#[test]
fn bias_and_activation_become_epilogues() {
    let g = models::dense_bias_relu_graph(4, 8, 6, 1).unwrap();
    let l = lower(&g).unwrap();
    assert_eq!(l.steps.len(), 1, "{l}");
    match &l.steps[0].kind {
        StepKind::Dense { bias, act, .. } => {
            assert!(bias.is_some());
            assert_eq!(*act, Some(workbench_kernels::Activation::Relu));
        }
        other => panic!("expected a dense step, got {other:?}"),
    }
    assert!(l.to_string().contains("+bias +relu"), "{l}");
    let mlp = lower(&models::mlp_1024(1).unwrap()).unwrap();
    assert_eq!(mlp.steps.len(), 3, "{mlp}");
    let convnet = lower(&models::convnet_224(1).unwrap()).unwrap();
    // conv+relu, dw+relu, pw+relu, pool, classifier
    assert_eq!(convnet.steps.len(), 5, "{convnet}");
}

#[test]
fn qkv_projections_fuse_horizontally() {
    let g = models::transformer_block(1).unwrap();
    let l = lower(&g).unwrap();
    let text = l.to_string();
    assert!(
        text.contains("horizontal[layer0.q:256, layer0.k:256, layer0.v:256]"),
        "{text}"
    );
    assert!(text.contains("cols 256.., ld 768"), "{text}");
    let widest = l
        .steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::Dense { n, .. } => Some(*n),
            _ => None,
        })
        .max();
    assert_eq!(widest, Some(1024)); // ffn1; the fused QKV step is 768 wide
    let no_h = lower_with(
        &g,
        FusionOptions {
            horizontal: false,
            ..FusionOptions::default()
        },
    )
    .unwrap();
    assert_eq!(no_h.steps.len(), l.steps.len() + 2);
}

#[test]
fn every_fusion_subset_matches_naive() {
    let spec = ModelSpec::Transformer(TransformerSpec {
        seq_len: 9,
        d_model: 32,
        heads: 4,
        ffn: 65,
        layers: 2,
        classes: 3,
    });
    let g = Graph::from_spec(&spec, 3).unwrap();
    let x: Vec<f32> = (0..g.input_len())
        .map(|i| ((i * 7 % 13) as f32 - 6.0) / 6.0)
        .collect();
    let mut naive = compile(&g, BackendKind::Naive, &CompileOptions::default()).unwrap();
    let want = naive.run(&x, 1).unwrap().to_vec();
    let lowered = compile(&g, BackendKind::Fused, &CompileOptions::default())
        .unwrap()
        .lowered();
    assert!(lowered.starts_with("fused (simple kernels)"), "{lowered}");
    for mask in 0..8u8 {
        let fusion = FusionOptions {
            epilogues: mask & 1 != 0,
            chains: mask & 2 != 0,
            horizontal: mask & 4 != 0,
        };
        let l = lower_with(&g, fusion).unwrap();
        assert!(l.steps.len() <= l.graph_ops);
        let backends: [Box<dyn Backend>; 2] = [
            Box::new(FusedBackend { fusion }),
            Box::new(TiledBackend { fusion }),
        ];
        for backend in backends {
            let mut exe = backend.compile(&g, &CompileOptions::default()).unwrap();
            let got = exe.run(&x, 1).unwrap();
            let diff: f64 = got
                .iter()
                .zip(&want)
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum();
            let norm: f64 = want.iter().map(|b| (*b as f64).powi(2)).sum();
            assert!(
                (diff / norm).sqrt() <= 1e-5,
                "{fusion:?} on {}",
                backend.kind()
            );
        }
    }
    let mut fused = compile(&g, BackendKind::Fused, &CompileOptions::default()).unwrap();
    let got = fused.run(&x, 1).unwrap();
    let err: f32 = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(err < 1e-4, "max abs error {err}");
}

#[test]
fn the_softmax_runs_over_the_attention_scores_in_their_step() {
    let g = models::transformer_block(1).unwrap();
    let l = lower(&g).unwrap();
    let text = l.to_string();
    assert!(
        text.contains("4 heads, seq 64 +softmax  # layer0.scores+layer0.softmax"),
        "{text}"
    );
    let standalone = |l: &workbench_kernels::fusion::Lowered| {
        l.steps
            .iter()
            .filter(|s| matches!(s.kind, StepKind::Softmax { .. }))
            .count()
    };
    assert_eq!(standalone(&l), 0, "{text}");
    // The context reads the probabilities straight from the scores' step.
    let scores = l
        .steps
        .iter()
        .find(|s| s.name == "layer0.scores+layer0.softmax")
        .unwrap();
    let reads_probabilities = l
        .steps
        .iter()
        .any(|s| matches!(s.kind, StepKind::AttnContext { p, .. } if p == scores.out));
    assert!(reads_probabilities, "{text}");
    // Without epilogues the softmax is a step of its own.
    let unfused = lower_with(&g, FusionOptions::NONE).unwrap();
    assert_eq!(standalone(&unfused), 1, "{unfused}");
    assert!(!unfused.to_string().contains("+softmax"), "{unfused}");
}
