//! Executables keep their buffers when the batch shrinks and reuse them when
//! it grows back (`prepare`): a run at any batch must give the bits a fresh
//! executable gives at that batch, whatever ran before it. Stale values left
//! by a larger batch, or padding a step never writes, would show here.

mod common;

use workbench_kernels::{
    compile, models, Activation, BackendKind, CompileOptions, ConvBlock, ConvnetSpec, Graph,
    MlpSpec, ModelSpec, Precision, TransformerSpec,
};

fn graphs() -> Vec<Graph> {
    let specs = [
        ModelSpec::Mlp(MlpSpec {
            input: 63,
            hidden: vec![65, 7],
            output: 3,
            activation: Activation::Relu,
        }),
        // Padded convolutions, a depthwise stage and pooling: the layouts
        // whose padding is zeroed once, at allocation.
        ModelSpec::Convnet(ConvnetSpec {
            height: 13,
            width: 11,
            channels: 3,
            blocks: vec![
                ConvBlock::Standard {
                    out_channels: 8,
                    kernel: 3,
                    stride: 2,
                },
                ConvBlock::DepthwiseSeparable {
                    out_channels: 17,
                    kernel: 3,
                    stride: 1,
                },
            ],
            classes: 5,
            activation: Activation::Relu,
        }),
        ModelSpec::Transformer(TransformerSpec {
            seq_len: 5,
            d_model: 12,
            heads: 3,
            ffn: 20,
            layers: 1,
            classes: 3,
        }),
    ];
    let mut graphs: Vec<Graph> = specs
        .iter()
        .map(|spec| Graph::from_spec(spec, 9).unwrap())
        .collect();
    graphs.push(models::elementwise_chain(1000, 1).unwrap());
    graphs
}

#[test]
fn a_run_after_other_batches_gives_a_fresh_runs_bits() {
    let batches = [4usize, 1, 3, 4, 2, 1, 4];
    for g in graphs() {
        for (name, kind, options) in common::variants().into_iter().chain([
            (
                "naive".to_string(),
                BackendKind::Naive,
                CompileOptions::default(),
            ),
            (
                "quantized/int8".to_string(),
                BackendKind::Quantized,
                CompileOptions {
                    precision: Precision::Int8,
                    ..CompileOptions::default()
                },
            ),
            (
                "quantized/f16".to_string(),
                BackendKind::Quantized,
                CompileOptions {
                    precision: Precision::F16,
                    ..CompileOptions::default()
                },
            ),
        ]) {
            let mut reused = compile(&g, kind, &options).unwrap();
            for (run, &batch) in batches.iter().enumerate() {
                // A different input each run, so a stale value cannot pass
                // for a fresh one.
                let x = common::input(g.input_len() * batch, run as u64 + 3);
                let got = reused.run(&x, batch).unwrap().to_vec();
                let mut fresh = compile(&g, kind, &options).unwrap();
                let want = fresh.run(&x, batch).unwrap();
                let same = got.len() == want.len()
                    && got
                        .iter()
                        .zip(want)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(
                    same,
                    "{} on {name}: run {run} at batch {batch} after {:?} differs from a fresh run",
                    g.name(),
                    &batches[..run]
                );
            }
        }
    }
}
