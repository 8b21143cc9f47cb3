//! Activation memory each backend holds after a run (`Executable::activation_bytes`)
//! next to the peak of live activations the planner counts
//! (`Graph::peak_activation_bytes`), for `mlp-1024`, `convnet-224`, the
//! criterion transformer block and a BERT-base encoder, at batch 1 and 8.
//!
//! `cargo run --release -p workbench-kernels --example activation_memory`

use workbench_kernels::spec::{ModelSpec, TransformerSpec};
use workbench_kernels::*;

fn bert(layers: usize) -> Result<Graph, KernelError> {
    let spec = ModelSpec::Transformer(TransformerSpec {
        seq_len: 128,
        d_model: 768,
        heads: 12,
        ffn: 3072,
        layers,
        classes: 2,
    });
    Graph::from_spec(&spec, 7)
}

fn main() -> Result<(), KernelError> {
    let graphs = vec![
        ("mlp-1024", models::mlp_1024(1)?),
        ("convnet-224", models::convnet_224(1)?),
        ("ds-cnn-small", models::ds_cnn_small(1)?),
        ("block", models::transformer_block(1)?),
        ("bert12", bert(12)?),
    ];
    for (name, g) in &graphs {
        for batch in [1usize, 8] {
            let peak = g.peak_activation_bytes(batch);
            let mut line = format!("{name:12} b{batch}: peak {:8.2} MB", peak as f64 / 1e6);
            for kind in [
                BackendKind::Naive,
                BackendKind::Fused,
                BackendKind::Tiled,
                BackendKind::Quantized,
            ] {
                let mut opts = CompileOptions::default();
                if kind == BackendKind::Quantized {
                    opts.precision = Precision::Int8;
                }
                let mut exe = compile(g, kind, &opts)?;
                let x = models::reference_input(g, batch);
                exe.run(&x, batch)?;
                line += &format!(
                    "  {}: {:8.2} MB",
                    if kind == BackendKind::Quantized {
                        "int8"
                    } else {
                        kind.name()
                    },
                    exe.activation_bytes() as f64 / 1e6
                );
            }
            println!("{line}");
        }
    }
    Ok(())
}
