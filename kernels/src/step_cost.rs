//! Work and memory traffic of what an executable runs ([`ExecutedProgram`]),
//! for the roofline projection: the graph's op costs count every intermediate
//! as written and read back, but the compiled backends never store many of them.
//!
//! - The fused program ([`Lowered::step_costs`]): a bias or activation in a
//!   GEMM's or conv's epilogue costs no pass of its own; an elementwise chain
//!   reads each input once and writes its result once; Q/K/V, one wide matmul,
//!   read their input once; constants and biases are weights, read once per call.
//! - The tiled engine ([`Lowered::tiled_step_costs`]) also runs a pointwise conv
//!   whose output only feeds a global average pool as one kernel with the pool,
//!   and a depthwise conv feeding it band by band with both: neither the
//!   pointwise output nor the depthwise output is stored, the depthwise band
//!   staying in cache while the pointwise GEMM reads it. Such a group is one
//!   cost, its steps' names joined with `+`.
//! - The quantized backend runs the graph node by node; a ReLU runs in the
//!   epilogue of the kernel before it, and a global average pool in a conv
//!   GEMM's (whose output is then never stored). Nothing else is fused.
//! - The naive backend runs the graph op by op: [`Graph::op_costs`].
//!
//! FLOPs are the graph nodes' own, so every program adds up to the graph's
//! total; bytes are counted at f32, as [`Graph::op_costs`] counts them (the
//! projection scales them to the precision), and never exceed the graph's.

use crate::backend::CompileOptions;
use crate::backends::quantized::QuantizedBackend;
use crate::cost::OpCost;
use crate::error::KernelError;
use crate::exec;
use crate::fusion::{self, BufId, ChainOp, Lowered, Step, StepKind};
use crate::graph::Graph;
use crate::spec::{BackendKind, Precision};

/// Costs of what `backend` runs for `graph` at `batch` (see [`ExecutedProgram`]).
pub fn executed_costs(
    graph: &Graph,
    backend: BackendKind,
    precision: Precision,
    batch: usize,
) -> Result<Vec<OpCost>, KernelError> {
    Ok(ExecutedProgram::of(graph, backend, precision)?.costs(batch))
}

/// What a backend runs for a graph, call by call (a fused step, a group of
/// steps run as one, or a graph node): the ops the roofline projection shares
/// a measured time among. Built once, its costs at any batch.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutedProgram {
    calls: Vec<Call>,
}

impl ExecutedProgram {
    /// The program `backend` runs for `graph`. The naive backend runs the
    /// graph op by op ([`ExecutedProgram::unfused`]); `precision` decides what
    /// the quantized backend fuses, the others run f32 only.
    pub fn of(
        graph: &Graph,
        backend: BackendKind,
        precision: Precision,
    ) -> Result<ExecutedProgram, KernelError> {
        let calls = match backend {
            BackendKind::Naive => return Ok(ExecutedProgram::unfused(graph)),
            BackendKind::Fused => fusion::lower(graph)?.calls(false),
            BackendKind::Tiled | BackendKind::Autotuned => fusion::lower(graph)?.calls(true),
            BackendKind::Quantized => {
                let opts = CompileOptions {
                    precision,
                    ..CompileOptions::default()
                };
                QuantizedBackend::default().node_calls(graph, &opts)?
            }
        };
        Ok(ExecutedProgram { calls })
    }

    /// The graph op by op, every intermediate stored: [`Graph::op_costs`].
    pub fn unfused(graph: &Graph) -> ExecutedProgram {
        let calls = graph
            .op_costs(1)
            .into_iter()
            .map(|op| Call {
                // At batch 1 the bytes are the activations plus the weights.
                activations: (op.bytes - op.weight_bytes) / 4.0,
                weights: op.weight_bytes / 4.0,
                flops: op.flops,
                name: op.name,
                kind: op.kind,
            })
            .collect();
        ExecutedProgram { calls }
    }

    /// Each call's FLOPs and bytes (at f32) at `batch`.
    pub fn costs(&self, batch: usize) -> Vec<OpCost> {
        self.calls.iter().map(|c| c.cost(batch)).collect()
    }
}

/// One kernel call: its work and the elements it moves to and from memory.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Call {
    pub(crate) name: String,
    pub(crate) kind: String,
    /// Per sample.
    pub(crate) flops: f64,
    /// Activation elements read and written per sample.
    pub(crate) activations: f64,
    /// Weight (and constant) elements, read once per call.
    pub(crate) weights: f64,
}

impl Call {
    fn cost(&self, batch: usize) -> OpCost {
        let b = batch as f64;
        OpCost {
            name: self.name.clone(),
            kind: self.kind.clone(),
            flops: self.flops * b,
            bytes: 4.0 * (self.activations * b + self.weights),
            weight_bytes: 4.0 * self.weights,
        }
    }
}

impl Lowered {
    /// Costs of the program as the fused backend runs it: step by step.
    pub fn step_costs(&self, batch: usize) -> Vec<OpCost> {
        self.calls(false).iter().map(|c| c.cost(batch)).collect()
    }

    /// Costs of the program as the tiled engine runs it (the tiled and
    /// autotuned backends): a pooled pointwise conv, and a depthwise conv
    /// feeding it, run with the pool as one call.
    pub fn tiled_step_costs(&self, batch: usize) -> Vec<OpCost> {
        self.calls(true).iter().map(|c| c.cost(batch)).collect()
    }

    /// One call per step, or on the tiled engine per group of steps it runs
    /// as one: the inputs the group reads from outside, its weights and its
    /// last step's output. What its steps pass one another is never stored.
    fn calls(&self, tiled: bool) -> Vec<Call> {
        // The engine's own decision, so the costs follow what it runs.
        let (pool_fused, depthwise_pooled) = exec::pool_fusion(self, |_| tiled);
        let mut calls = Vec::new();
        let mut si = 0;
        while si < self.steps.len() {
            let end = (si + 1 + exec::fused_after(&pool_fused, &depthwise_pooled, si))
                .min(self.steps.len());
            calls.push(self.group_call(&self.steps[si..end]));
            si = end;
        }
        calls
    }

    fn group_call(&self, steps: &[Step]) -> Call {
        let inside: Vec<BufId> = steps.iter().map(|s| s.out).collect();
        let (mut activations, mut weights) = (0.0, 0.0);
        for step in steps {
            for (buf, elements) in self.reads(step) {
                match &self.buffers[buf].constant {
                    Some(data) => weights += data.len() as f64,
                    None if inside.contains(&buf) => {}
                    None => activations += elements as f64,
                }
            }
            weights += weight_elements(&step.kind) as f64;
        }
        if let Some(last) = steps.last() {
            activations += self.buffers[last.out].numel as f64;
        }
        let join = |f: &dyn Fn(&Step) -> &str| steps.iter().map(f).collect::<Vec<_>>().join("+");
        Call {
            name: join(&|s| s.name.as_str()),
            kind: join(&|s| kind(&s.kind)),
            flops: steps.iter().map(|s| s.flops).sum(),
            activations,
            weights,
        }
    }

    /// Buffers `step` reads and the elements per sample it reads of each
    /// (attention reads its operands' columns of a wider Q/K/V buffer).
    fn reads(&self, step: &Step) -> Vec<(BufId, usize)> {
        let whole = |b: BufId| (b, self.buffers[b].numel);
        match &step.kind {
            StepKind::AttnScores { q, k, s, d, .. } => vec![(q.buf, s * d), (k.buf, s * d)],
            StepKind::AttnContext { p, v, s, d, .. } => vec![whole(*p), (v.buf, s * d)],
            kind => kind.inputs().into_iter().map(whole).collect(),
        }
    }
}

/// Weight elements a step reads besides constant buffers.
fn weight_elements(kind: &StepKind) -> usize {
    let len = |b: &Option<std::sync::Arc<[f32]>>| b.as_ref().map_or(0, |b| b.len());
    match kind {
        StepKind::Dense { weight, bias, .. }
        | StepKind::Conv2d { weight, bias, .. }
        | StepKind::Depthwise { weight, bias, .. }
        | StepKind::Pointwise { weight, bias, .. } => weight.len() + len(bias),
        StepKind::LayerNorm { gamma, beta, .. } => gamma.len() + beta.len(),
        StepKind::Chain { program, .. } => program
            .iter()
            .map(|op| match op {
                ChainOp::BiasAdd(b) => b.len(),
                _ => 0,
            })
            .sum(),
        StepKind::Softmax { .. }
        | StepKind::GlobalAvgPool { .. }
        | StepKind::MeanPool { .. }
        | StepKind::AttnScores { .. }
        | StepKind::AttnContext { .. } => 0,
    }
}

/// Short kind name of a step, as graph ops name theirs.
fn kind(kind: &StepKind) -> &'static str {
    match kind {
        StepKind::Dense { .. } => "matmul",
        StepKind::Conv2d { .. } => "conv2d",
        StepKind::Depthwise { .. } => "depthwise_conv2d",
        StepKind::Pointwise { .. } => "pointwise_conv",
        StepKind::Chain { .. } => "elementwise",
        StepKind::Softmax { .. } => "softmax",
        StepKind::LayerNorm { .. } => "layer_norm",
        StepKind::GlobalAvgPool { .. } => "global_avg_pool",
        StepKind::MeanPool { .. } => "mean_pool",
        StepKind::AttnScores { .. } => "attention_scores",
        StepKind::AttnContext { .. } => "attention_context",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models;
    use crate::spec::{Activation, ConvBlock, ConvnetSpec, MlpSpec, ModelSpec, TransformerSpec};

    /// The three model families at odd sizes (activations other than ReLU,
    /// strides, several layers) and the reference models.
    fn graphs() -> Vec<Graph> {
        let families = [
            ModelSpec::Mlp(MlpSpec {
                input: 63,
                hidden: vec![65, 7],
                output: 3,
                activation: Activation::Tanh,
            }),
            ModelSpec::Mlp(MlpSpec {
                input: 17,
                hidden: vec![33],
                output: 5,
                activation: Activation::Relu,
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
                    ConvBlock::DepthwiseSeparable {
                        out_channels: 12,
                        kernel: 3,
                        stride: 1,
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
        ];
        let mut graphs: Vec<Graph> = families
            .iter()
            .map(|spec| Graph::from_spec(spec, 3).expect("family"))
            .collect();
        graphs.extend([
            models::mlp_1024(1).expect("mlp-1024"),
            models::convnet_224(1).expect("convnet-224"),
            models::transformer_block(1).expect("transformer"),
            models::elementwise_chain(1000, 1).expect("chain"),
            models::dense_bias_relu_graph(7, 65, 33, 1).expect("dense+bias+relu"),
        ]);
        graphs
    }

    fn total(costs: &[OpCost], f: fn(&OpCost) -> f64) -> f64 {
        costs.iter().map(f).sum()
    }

    /// Every backend and precision: what runs does the graph's arithmetic
    /// (fusion moves it, never changes it) and moves no more bytes than the
    /// unfused graph, and the fused programs fewer.
    #[test]
    fn executed_programs_keep_the_graphs_flops_and_never_add_bytes() {
        let configs = [
            (BackendKind::Naive, Precision::F32),
            (BackendKind::Fused, Precision::F32),
            (BackendKind::Tiled, Precision::F32),
            (BackendKind::Autotuned, Precision::F32),
            (BackendKind::Quantized, Precision::Int8),
            (BackendKind::Quantized, Precision::F16),
            (BackendKind::Quantized, Precision::Bf16),
        ];
        for graph in graphs() {
            for batch in [1, 8] {
                let ops = graph.op_costs(batch);
                let (flops, bytes) = (total(&ops, |c| c.flops), total(&ops, |c| c.bytes));
                for (backend, precision) in configs {
                    let costs = executed_costs(&graph, backend, precision, batch).expect("costs");
                    let what = format!("{} b{batch} {backend} {precision}", graph.name);
                    if backend == BackendKind::Naive {
                        // Op by op: the graph's own costs, to the byte.
                        assert_eq!(costs, ops, "{what}");
                    }
                    let f = total(&costs, |c| c.flops);
                    assert!((f - flops).abs() <= 1e-9 * flops, "{what}: {f} vs {flops}");
                    let b = total(&costs, |c| c.bytes);
                    assert!(b <= bytes, "{what}: {b} > {bytes}");
                    // Every model here has an epilogue, a chain or a pool for the
                    // fused program to save a pass on (the quantized backend's
                    // fewer fusions have a test of their own).
                    if !matches!(backend, BackendKind::Naive | BackendKind::Quantized) {
                        assert!(b < bytes, "{what}: {b} = {bytes}");
                    }
                    for c in &costs {
                        assert!(c.flops >= 0.0 && c.weight_bytes >= 0.0, "{what}: {c:?}");
                        assert!(c.weight_bytes <= c.bytes, "{what}: {c:?}");
                    }
                }
            }
        }
    }

    /// The one cost whose name is `name`.
    fn named<'a>(costs: &'a [OpCost], name: &str) -> &'a OpCost {
        let found: Vec<&OpCost> = costs.iter().filter(|c| c.name == name).collect();
        assert_eq!(found.len(), 1, "{name} in {costs:#?}");
        found[0]
    }

    #[test]
    fn convnet_224_in_bands_never_stores_the_pointwise_or_depthwise_output() {
        let graph = models::convnet_224(1).expect("convnet-224");
        let batch = 8;
        let lowered = fusion::lower(&graph).expect("lower");
        let fused = lowered.step_costs(batch);
        let tiled = lowered.tiled_step_costs(batch);
        let b = batch as f64;
        // Per sample: depthwise in and out 32x112x112, pointwise out 64x112x112.
        let (dw_in, dw_out, pw_out) = (
            32.0 * 112.0 * 112.0,
            32.0 * 112.0 * 112.0,
            64.0 * 112.0 * 112.0,
        );
        let (dw_weights, pw_weights) = (32.0 * 9.0 + 32.0, 64.0 * 32.0 + 64.0);
        let dw = named(&fused, "block1.dw+block1.dw_act");
        assert_eq!(dw.bytes, 4.0 * (b * (dw_in + dw_out) + dw_weights));
        let pw = named(&fused, "block1.pw+block1.pw_act");
        assert_eq!(pw.bytes, 4.0 * (b * (dw_out + pw_out) + pw_weights));
        assert_eq!(pw.weight_bytes, 4.0 * pw_weights);
        // 26 MB of pointwise output written here, and read by the pool.
        assert!(4.0 * b * pw_out > 25e6);
        let pool = named(&fused, "pool");
        assert_eq!(pool.bytes, 4.0 * b * (pw_out + 64.0));
        // The tiled engine: one call reads the depthwise input and writes the pooled values.
        let banded = named(
            &tiled,
            "block1.dw+block1.dw_act+block1.pw+block1.pw_act+pool",
        );
        assert_eq!(
            banded.kind,
            "depthwise_conv2d+pointwise_conv+global_avg_pool"
        );
        assert_eq!(
            banded.bytes,
            4.0 * (b * (dw_in + 64.0) + dw_weights + pw_weights)
        );
        assert_eq!(banded.flops, dw.flops + pw.flops + pool.flops);
        assert_eq!(tiled.len(), fused.len() - 2);
        let saved = total(&fused, |c| c.bytes) - total(&tiled, |c| c.bytes);
        assert_eq!(saved, 4.0 * b * 2.0 * (dw_out + pw_out));
        // The other steps cost the same either way.
        for c in tiled.iter().filter(|c| c.name != banded.name) {
            assert_eq!(named(&fused, &c.name), c);
        }
    }

    #[test]
    fn epilogues_chains_and_horizontal_fusion_cost_one_pass() {
        let b = 4.0;
        // dense + bias + ReLU: one GEMM writing once (the graph writes and reads the result twice more).
        let (m, k, n) = (7.0, 65.0, 33.0);
        let graph = models::dense_bias_relu_graph(7, 65, 33, 1).expect("graph");
        let costs = executed_costs(&graph, BackendKind::Fused, Precision::F32, 4).expect("costs");
        let step = named(&costs, "matmul+bias+relu");
        assert_eq!(step.bytes, 4.0 * (b * (m * k + m * n) + k * n + n));
        assert_eq!(step.weight_bytes, 4.0 * (k * n + n));
        assert_eq!(costs.len(), 1);
        // R = (A + s*B) * C: A read and R written per sample, B and C read once.
        let len = 1000.0;
        let graph = models::elementwise_chain(1000, 1).expect("chain");
        let costs = executed_costs(&graph, BackendKind::Tiled, Precision::F32, 4).expect("costs");
        let step = named(&costs, "scale+add+mul");
        assert_eq!(step.kind, "elementwise");
        assert_eq!(step.bytes, 4.0 * (b * 2.0 * len + 2.0 * len));
        assert_eq!(step.weight_bytes, 4.0 * 2.0 * len);
        assert_eq!(step.flops, b * 3.0 * len);
        // Q, K and V: one GEMM reads the input once and writes the three side by side;
        // attention reads its columns of them.
        let graph = models::transformer_block(1).expect("transformer");
        let costs = executed_costs(&graph, BackendKind::Fused, Precision::F32, 4).expect("costs");
        let (s, d) = (64.0, 256.0);
        let qkv = named(&costs, "layer0.q|layer0.k|layer0.v");
        assert_eq!(
            qkv.bytes,
            4.0 * (b * (s * d + 3.0 * s * d) + 3.0 * (d * d + d))
        );
        let scores = named(&costs, "layer0.scores");
        assert_eq!(scores.bytes, 4.0 * b * (2.0 * s * d + 4.0 * s * s));
        let context = named(&costs, "layer0.context");
        assert_eq!(context.bytes, 4.0 * b * (4.0 * s * s + 2.0 * s * d));
    }

    /// The quantized costs fold into a call exactly the nodes the compiled
    /// executable skips as done by the kernel before them.
    #[test]
    fn quantized_costs_fold_the_nodes_the_compiled_backend_skips() {
        let convnet = Graph::from_spec(
            &ModelSpec::Convnet(ConvnetSpec {
                height: 15,
                width: 13,
                channels: 3,
                blocks: vec![
                    ConvBlock::Standard {
                        out_channels: 8,
                        kernel: 3,
                        stride: 2,
                    },
                    ConvBlock::Standard {
                        out_channels: 12,
                        kernel: 3,
                        stride: 1,
                    },
                    ConvBlock::DepthwiseSeparable {
                        out_channels: 16,
                        kernel: 3,
                        stride: 1,
                    },
                ],
                classes: 5,
                activation: Activation::Relu,
            }),
            2,
        )
        .expect("convnet");
        let mlp = Graph::from_spec(
            &ModelSpec::Mlp(MlpSpec {
                input: 17,
                hidden: vec![33, 9],
                output: 5,
                activation: Activation::Relu,
            }),
            2,
        )
        .expect("mlp");
        for graph in [&convnet, &mlp] {
            for precision in [Precision::Int8, Precision::F16, Precision::Bf16] {
                let opts = CompileOptions {
                    precision,
                    ..CompileOptions::default()
                };
                let exe = crate::compile(graph, BackendKind::Quantized, &opts).expect("compile");
                let text = exe.lowered();
                let skipped: Vec<&str> = text
                    .lines()
                    .filter(|l| l.ends_with(": fused into the op before"))
                    .filter_map(|l| l.split_whitespace().next())
                    .collect();
                let costs =
                    executed_costs(graph, BackendKind::Quantized, precision, 2).expect("costs");
                let folded: Vec<&str> = costs
                    .iter()
                    .flat_map(|c| c.name.split('+').skip(1))
                    .collect();
                assert!(!folded.is_empty(), "{text}");
                assert_eq!(folded, skipped, "{precision}: {text}");
            }
        }
    }

    #[test]
    fn the_quantized_backend_runs_relu_and_pool_in_the_kernel_before() {
        let batch = 8;
        let b = batch as f64;
        let graph = models::convnet_224(1).expect("convnet-224");
        let costs =
            executed_costs(&graph, BackendKind::Quantized, Precision::Int8, batch).expect("costs");
        // The pointwise GEMM's output goes straight into the pool's column sums.
        let pw = named(&costs, "block1.pw+block1.pw_act+pool");
        let (pw_in, pw_weights) = (32.0 * 112.0 * 112.0, 64.0 * 32.0 + 64.0);
        assert_eq!(pw.bytes, 4.0 * (b * (pw_in + 64.0) + pw_weights));
        // The depthwise conv (f32 kernel) runs its ReLU; it stays apart from the pointwise.
        named(&costs, "block1.dw+block1.dw_act");
        let unfused = total(&graph.op_costs(batch), |c| c.bytes);
        let saved = unfused - total(&costs, |c| c.bytes);
        // The ReLUs' passes (stem, depthwise, pointwise) and the pointwise output the pool read.
        let relus = 2.0 * (2.0 * 32.0 + 2.0 * 64.0) * 112.0 * 112.0;
        assert_eq!(saved, 4.0 * b * relus);
        // Not the f32 program's: no chains, no Q/K/V fusion, no GELU epilogue.
        let graph = models::transformer_block(1).expect("transformer");
        for precision in [Precision::Int8, Precision::F16] {
            let costs =
                executed_costs(&graph, BackendKind::Quantized, precision, 1).expect("costs");
            for name in [
                "layer0.q",
                "layer0.k",
                "layer0.v",
                "layer0.gelu",
                "layer0.residual1",
            ] {
                named(&costs, name);
            }
        }
        // int8 and f16 dense layers run their ReLU in the GEMM's epilogue.
        let graph = models::mlp_1024(1).expect("mlp-1024");
        for precision in [Precision::Int8, Precision::Bf16] {
            let costs =
                executed_costs(&graph, BackendKind::Quantized, precision, 1).expect("costs");
            let names: Vec<&str> = costs.iter().map(|c| c.name.as_str()).collect();
            assert_eq!(
                names,
                ["dense0+act0", "dense1+act1", "dense2"],
                "{precision}"
            );
        }
        assert!(executed_costs(&graph, BackendKind::Quantized, Precision::F32, 1).is_err());
    }
}
