//! Compiled executables hold only the activations live at once: buffers
//! whose lifetimes do not overlap share memory (`liveness`), so what a run
//! takes beyond its weights is what `Graph::peak_activation_bytes` (the
//! planner's device-memory figure) says, not every node's output.

use workbench_kernels::{
    compile, models, Activation, BackendKind, CompileOptions, ConvBlock, ConvnetSpec, Graph,
    ModelSpec, Precision, TransformerSpec,
};

fn encoder(layers: usize) -> Graph {
    Graph::from_spec(
        &ModelSpec::Transformer(TransformerSpec {
            seq_len: 32,
            d_model: 64,
            heads: 4,
            ffn: 256,
            layers,
            classes: 3,
        }),
        5,
    )
    .unwrap()
}

fn convnet() -> Graph {
    Graph::from_spec(
        &ModelSpec::Convnet(ConvnetSpec {
            height: 32,
            width: 32,
            channels: 3,
            blocks: vec![
                ConvBlock::Standard {
                    out_channels: 16,
                    kernel: 3,
                    stride: 1,
                },
                ConvBlock::DepthwiseSeparable {
                    out_channels: 32,
                    kernel: 3,
                    stride: 2,
                },
                ConvBlock::DepthwiseSeparable {
                    out_channels: 32,
                    kernel: 3,
                    stride: 1,
                },
            ],
            classes: 4,
            activation: Activation::Relu,
        }),
        5,
    )
    .unwrap()
}

fn held(graph: &Graph, (kind, precision): (BackendKind, Precision), batch: usize) -> usize {
    let options = CompileOptions {
        precision,
        ..CompileOptions::default()
    };
    let mut exe = compile(graph, kind, &options).unwrap();
    let x = models::reference_input(graph, batch);
    exe.run(&x, batch).unwrap();
    exe.activation_bytes()
}

/// The compiled backends, each with the most it may hold over the peak of
/// live activations. Slots take the size of their largest tenant, so a
/// little over the exact peak; every node's output would be several times
/// it. The quantized backend runs node by node (a softmax, a bias-free GELU,
/// each a buffer), so its slots are less tightly packed than the fused
/// steps', and the u8 inputs of int8 GEMMs count too.
const COMPILED: [((BackendKind, Precision), f64); 4] = [
    ((BackendKind::Fused, Precision::F32), 1.25),
    ((BackendKind::Tiled, Precision::F32), 1.25),
    ((BackendKind::Quantized, Precision::Int8), 1.5),
    ((BackendKind::Quantized, Precision::F16), 1.5),
];

#[test]
fn compiled_backends_hold_about_the_peak_of_live_activations() {
    let graphs = [encoder(6), convnet(), models::mlp_1024(3).unwrap()];
    for graph in &graphs {
        for (variant, bound) in COMPILED {
            for batch in [1, 4] {
                let peak = graph.peak_activation_bytes(batch) as f64;
                let bytes = held(graph, variant, batch) as f64;
                assert!(
                    bytes <= bound * peak,
                    "{} on {variant:?} at batch {batch}: {bytes} bytes held, peak of live activations {peak}",
                    graph.name()
                );
            }
        }
    }
}

#[test]
fn attention_holds_its_scores_once_not_beside_their_softmax() {
    // A long sequence on a narrow model: the heads x seq x seq scores are
    // nearly everything. The softmax runs over the scores where they lie,
    // so a run holds one such matrix (the probabilities), not the scores
    // and the probabilities side by side.
    let graph = Graph::from_spec(
        &ModelSpec::Transformer(TransformerSpec {
            seq_len: 128,
            d_model: 32,
            heads: 4,
            ffn: 32,
            layers: 1,
            classes: 3,
        }),
        5,
    )
    .unwrap();
    let batch = 2;
    let one_matrix = 4 * 128 * 128 * 4 * batch;
    for (variant, _) in COMPILED {
        let bytes = held(&graph, variant, batch);
        assert!(
            bytes < 2 * one_matrix,
            "{variant:?}: {bytes} bytes held, one score matrix is {one_matrix}"
        );
    }
}

#[test]
fn a_padded_depthwise_input_shares_its_slot_and_is_padded_anew() {
    // The tiled stem writes straight into the first depthwise conv's
    // zero-padded input (64 x 27 x 7 for the keyword-spotting DS-CNN). That
    // image shares its slot with later feature maps, so it costs no more
    // than its padding over the fused backend's plain maps; its writer zeroes
    // the padding each run, so a run after another input gives the same bits.
    let graph = models::ds_cnn_small(1).unwrap();
    let padded_image = 64 * 27 * 7 * 4;
    for batch in [1, 4] {
        let fused = held(&graph, (BackendKind::Fused, Precision::F32), batch);
        let tiled = held(&graph, (BackendKind::Tiled, Precision::F32), batch);
        assert!(
            tiled < fused + padded_image,
            "batch {batch}: tiled holds {tiled} bytes, fused {fused}"
        );
        let mut exe = compile(&graph, BackendKind::Tiled, &CompileOptions::default()).unwrap();
        let x = models::reference_input(&graph, batch);
        let first = exe.run(&x, batch).unwrap().to_vec();
        let other: Vec<f32> = x.iter().map(|v| 1.0 - 3.0 * v).collect();
        exe.run(&other, batch).unwrap();
        assert_eq!(exe.run(&x, batch).unwrap(), &first[..], "batch {batch}");
    }
}

#[test]
fn deeper_models_take_no_more_activation_memory() {
    // Each layer's buffers are free once the next layer has read them.
    for (variant, _) in COMPILED {
        let (two, eight) = (held(&encoder(2), variant, 2), held(&encoder(8), variant, 2));
        assert_eq!(
            two, eight,
            "{variant:?}: 2 layers hold {two} bytes, 8 layers {eight}"
        );
    }
}

#[test]
fn a_convnet_batch_goes_through_its_convolutions_a_sample_at_a_time() {
    // Runs of per-sample steps take one sample at a time: the buffers inside
    // them hold one sample whatever the batch, so a batch of 16 holds little
    // more than one sample does (node by node over the batch: 16 times).
    let graph = convnet();
    for (variant, _) in COMPILED {
        let (one, sixteen) = (held(&graph, variant, 1), held(&graph, variant, 16));
        assert!(
            sixteen < 2 * one,
            "{variant:?}: batch 1 holds {one} bytes, batch 16 {sixteen}"
        );
    }
}

#[test]
fn the_naive_reference_keeps_every_output() {
    // The reference stays op by op: its figure is the sum of every node's output.
    let graph = encoder(2);
    let all: usize = graph
        .nodes()
        .iter()
        .filter(|n| !matches!(n.op, workbench_kernels::Op::Constant(_)))
        .map(|n| n.numel() * 4 * 3)
        .sum();
    assert_eq!(held(&graph, (BackendKind::Naive, Precision::F32), 3), all);
}
