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
//!   GEMM's (whose output is then never stored). Nothing else is fused; a
//!   standalone activation copies its input to its output and applies itself
//!   there (two passes). Its int8 programs are charged at the int8 peak, so
//!   the steps it computes in f32 count their FLOPs in int8-op equivalents.
//! - The naive backend runs the graph op by op: [`Graph::op_costs`].
//!
//! FLOPs are the graph nodes' own, so every program adds up to the graph's
//! total (an int8 program's f32 steps are marked to be timed at the f32
//! peak: [`OpCost::runs_at_f32_peak`]).
//! Bytes count each tensor at the width the backend stores it: f32
//! everywhere but in the quantized backend, whose GEMMs read their weights at
//! the precision (int8 weights with an f32 scale per output channel; biases
//! stay f32) and whose activations stay f32, except where an int8 dense layer
//! hands its output to the next as u8. The f32 programs never move more bytes
//! than the graph's op costs.
//!
//! Each cost also says how the backend spreads the call over threads
//! ([`Parallelism`]): the tiled engine splits its GEMMs and attention once per
//! call, and its convolutions (the direct stem, the banded depthwise +
//! pointwise + pool) once per sample; its other kernels run on one thread.
//! The quantized backend splits its dense GEMMs (int8 or f16/bf16 weights)
//! once per call (an int8 one on an f32 input twice: the input's
//! quantization, then the GEMM) and its convolutions once per sample (conv
//! and pointwise GEMMs; the f32 direct and depthwise kernels twice: the
//! input's split layout, then the conv); its attention, row and elementwise
//! kernels run on one thread. Every kernel of the naive and fused
//! backends runs on one thread.

use std::collections::{BTreeMap, BTreeSet};

use crate::backend::CompileOptions;
use crate::backends::quantized::QuantizedBackend;
use crate::cost::{OpCost, Parallelism};
use crate::error::KernelError;
use crate::exec;
use crate::fusion::{self, BufId, ChainOp, Lowered, Step, StepKind};
use crate::graph::{Graph, NodeId, Op};
use crate::quant::int8::k_padded;
use crate::simd::SimdLevel;
use crate::spec::{BackendKind, Precision};

/// Bytes of an f32 element.
const F32: f64 = 4.0;

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
    calls: Vec<Charged>,
}

impl ExecutedProgram {
    /// The program `backend` runs for `graph`. The naive backend runs the
    /// graph op by op ([`ExecutedProgram::unfused`]); `precision` decides what
    /// the quantized backend fuses and stores narrow, the others run f32 only.
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
                let calls = QuantizedBackend::default().node_calls(graph, &opts)?;
                QuantizedStorage::new(graph, precision, opts.resolved_simd()?).charge(&calls)
            }
        };
        Ok(ExecutedProgram { calls })
    }

    /// The graph op by op, every intermediate stored, on one thread:
    /// [`Graph::op_costs`].
    pub fn unfused(graph: &Graph) -> ExecutedProgram {
        let calls = graph
            .op_costs(1)
            .into_iter()
            .map(|op| Charged {
                // At batch 1 the bytes are the activations plus the weights.
                activation_bytes: op.bytes - op.weight_bytes,
                weight_bytes: op.weight_bytes,
                flops: op.flops,
                name: op.name,
                kind: op.kind,
                parallelism: op.parallelism,
                runs_at_f32_peak: op.runs_at_f32_peak,
            })
            .collect();
        ExecutedProgram { calls }
    }

    /// Each call's FLOPs and bytes at `batch`.
    pub fn costs(&self, batch: usize) -> Vec<OpCost> {
        self.calls.iter().map(|c| c.cost(batch)).collect()
    }
}

/// One kernel call as a backend plans it: its work and the elements it moves
/// to and from memory, counted as f32.
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
    /// The call before writes this one's input straight into the layout it
    /// reads (the quantized backend's direct stem into a depthwise conv's
    /// padded input): no copy pass of its own.
    pub(crate) input_written_for_it: bool,
}

impl Call {
    /// Every element at f32.
    fn at_f32(self, parallelism: Parallelism) -> Charged {
        Charged {
            activation_bytes: F32 * self.activations,
            weight_bytes: F32 * self.weights,
            flops: self.flops,
            name: self.name,
            kind: self.kind,
            parallelism,
            runs_at_f32_peak: false,
        }
    }
}

/// One call in bytes at the widths its tensors are stored at.
#[derive(Debug, Clone, PartialEq)]
struct Charged {
    name: String,
    kind: String,
    /// Per sample.
    flops: f64,
    /// Activation bytes read and written per sample.
    activation_bytes: f64,
    /// Weight (and constant) bytes, read once per call.
    weight_bytes: f64,
    parallelism: Parallelism,
    /// See [`OpCost::runs_at_f32_peak`].
    runs_at_f32_peak: bool,
}

impl Charged {
    fn cost(&self, batch: usize) -> OpCost {
        let b = batch as f64;
        OpCost {
            name: self.name.clone(),
            kind: self.kind.clone(),
            flops: self.flops * b,
            bytes: self.activation_bytes * b + self.weight_bytes,
            weight_bytes: self.weight_bytes,
            parallelism: self.parallelism,
            runs_at_f32_peak: self.runs_at_f32_peak,
        }
    }
}

/// What the quantized backend stores narrower than f32, node by node.
/// Its plan is made from the graph alone (`QuantizedBackend::compile`); a test
/// pins this reading of it to what the compiled backend reports it runs.
struct QuantizedStorage<'g> {
    graph: &'g Graph,
    precision: Precision,
    simd: SimdLevel,
    by_name: BTreeMap<&'g str, NodeId>,
    /// [`Graph::sole_consumers`], computed once: asking per call which
    /// nodes read a node would scan the graph each time (quadratic).
    sole_consumers: Vec<Option<NodeId>>,
}

impl<'g> QuantizedStorage<'g> {
    fn new(graph: &'g Graph, precision: Precision, simd: SimdLevel) -> QuantizedStorage<'g> {
        let by_name = (0..graph.nodes.len())
            .map(|i| (graph.nodes[i].name.as_str(), i))
            .collect();
        QuantizedStorage {
            graph,
            precision,
            simd,
            by_name,
            sole_consumers: graph.sole_consumers(),
        }
    }

    /// The first and last node of a call (`node_calls` joins their names).
    fn ends(&self, call: &Call) -> Option<(NodeId, NodeId)> {
        let node = |name: &str| self.by_name.get(name).copied();
        let mut names = call.name.split('+');
        let head = node(names.next()?)?;
        Some((head, names.next_back().map_or(Some(head), node)?))
    }

    /// `(k, n)` of node `i`'s weight matrix when it runs as a GEMM on quantized
    /// weights: every dense layer and pointwise conv, and every conv but those
    /// over a few taps, which stay f32 on the direct kernel where it exists.
    fn gemm(&self, i: NodeId) -> Option<(usize, usize)> {
        match &self.graph.nodes[i].op {
            Op::Dense { weight, .. } => Some((weight.shape[0], weight.shape[1])),
            Op::PointwiseConv { weight, .. } => Some((weight.shape[1], weight.shape[0])),
            Op::Conv2d { weight, .. } => {
                let taps: usize = weight.shape[1..].iter().product();
                let direct =
                    crate::backends::quantized::direct_conv_applies_to_taps(self.simd, taps);
                (!direct).then_some((taps, weight.shape[0]))
            }
            _ => None,
        }
    }

    /// The int8 dense layer a call ending at `last` hands its output to as
    /// u8, requantized in its epilogue: when the call is an int8 dense layer
    /// (with its ReLU; another activation, applied in place over the f32
    /// output, is no epilogue) and that layer is the only reader of its
    /// output (and reads nothing else; the graph's output has no reader).
    fn u8_reader(&self, head: NodeId, last: NodeId) -> Option<NodeId> {
        let dense = |i: NodeId| matches!(self.graph.nodes[i].op, Op::Dense { .. });
        let relu = |i: NodeId| {
            matches!(
                self.graph.nodes[i].op,
                Op::Activation(crate::spec::Activation::Relu)
            )
        };
        if self.precision != Precision::Int8 || !dense(head) || (last != head && !relu(last)) {
            return None;
        }
        self.sole_consumers
            .get(last)
            .copied()
            .flatten()
            .filter(|&j| dense(j))
    }

    /// Per sample: the elements of node `x`, in rows of `len`, and the bytes
    /// of those rows as u8 (padded as the int8 kernels read them).
    fn u8_rows(&self, x: NodeId, len: usize) -> (f64, f64) {
        let elements = self.graph.nodes[x].numel();
        let rows = elements / len.max(1);
        (elements as f64, (rows * k_padded(len)) as f64)
    }

    /// How the backend spreads a call headed by node `head` over threads: its
    /// GEMMs (see [`QuantizedStorage::gemm`]) split once per call when dense
    /// (twice when int8 and `quantizes_input`: the quantization of the f32
    /// input splits on its own before the GEMM) and once per sample when
    /// convolutions; its f32 direct and depthwise convolutions twice per
    /// sample (the input's copy into its split layout, then the conv), once
    /// when the conv before wrote its input in that layout (`input_written`);
    /// everything else runs on one thread.
    fn parallelism(&self, head: NodeId, quantizes_input: bool, input_written: bool) -> Parallelism {
        let gemm = self.gemm(head).is_some();
        match self.graph.nodes[head].op {
            Op::Dense { .. } if gemm && quantizes_input && self.precision == Precision::Int8 => {
                Parallelism::TwicePerCall
            }
            Op::Dense { .. } if gemm => Parallelism::PerCall,
            Op::Conv2d { .. } | Op::PointwiseConv { .. } if gemm => Parallelism::PerSample,
            Op::Conv2d { .. } | Op::DepthwiseConv2d { .. } if input_written => {
                Parallelism::PerSample
            }
            Op::Conv2d { .. } | Op::DepthwiseConv2d { .. } => Parallelism::TwicePerSample,
            _ => Parallelism::Serial,
        }
    }

    /// The calls `node_calls` plans (elements at f32), in bytes at the widths
    /// the backend stores them: quantized weight matrices at the precision
    /// (int8 with an f32 scale per column), everything else f32 but the u8
    /// activations int8 dense layers hand one another; each split over
    /// threads as [`QuantizedStorage::parallelism`] says (a standalone
    /// activation is one pass, its input read and its output written; one
    /// applied in place after a dense GEMM, in that GEMM's call, reads and
    /// writes the GEMM's output once more); an int8 program's steps that are
    /// not int8 GEMMs run at the f32 peak.
    fn charge(&self, calls: &[Call]) -> Vec<Charged> {
        let u8_inputs: BTreeSet<NodeId> = calls
            .iter()
            .filter_map(|c| self.ends(c))
            .filter_map(|(head, last)| self.u8_reader(head, last))
            .collect();
        let narrow_bytes = match self.precision {
            Precision::Int8 => 1.0,
            Precision::F16 | Precision::Bf16 => 2.0,
            Precision::F32 => F32,
        };
        calls
            .iter()
            .map(|call| {
                let Some((head, last)) = self.ends(call) else {
                    return call.clone().at_f32(Parallelism::Serial);
                };
                let quantizes_input = !u8_inputs.contains(&head);
                let parallelism =
                    self.parallelism(head, quantizes_input, call.input_written_for_it);
                let mut charged = call.clone().at_f32(parallelism);
                let Some((k, n)) = self.gemm(head) else {
                    if self.precision == Precision::Int8 {
                        charged.runs_at_f32_peak = true;
                    }
                    return charged;
                };
                charged.weight_bytes -= (F32 - narrow_bytes) * (k * n) as f64;
                if self.precision == Precision::Int8 {
                    charged.weight_bytes += F32 * n as f64;
                }
                if u8_inputs.contains(&head) {
                    let input = self.graph.nodes[head].inputs.first().copied().unwrap_or(0);
                    let (elements, bytes) = self.u8_rows(input, k);
                    charged.activation_bytes -= F32 * elements - bytes;
                }
                if self.u8_reader(head, last).is_some() {
                    let (elements, bytes) = self.u8_rows(last, n);
                    charged.activation_bytes -= F32 * elements - bytes;
                }
                charged
            })
            .collect()
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
    fn calls(&self, tiled: bool) -> Vec<Charged> {
        // The engine's own decision, so the costs follow what it runs.
        let (pool_fused, depthwise_pooled) = exec::pool_fusion(self, |_| tiled);
        let mut calls = Vec::new();
        let mut si = 0;
        while si < self.steps.len() {
            let end = (si + 1 + exec::fused_after(&pool_fused, &depthwise_pooled, si))
                .min(self.steps.len());
            let group = &self.steps[si..end];
            let parallelism = if tiled {
                tiled_parallelism(group)
            } else {
                // The simple kernels of the fused backend have no threads.
                Parallelism::Serial
            };
            calls.push(self.group_call(group).at_f32(parallelism));
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
            // The tiled engine's forks come from `tiled_parallelism`.
            input_written_for_it: false,
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

/// How the tiled engine spreads a group of steps it runs as one over its
/// threads: GEMMs over the whole batch and attention's (sample, head) products
/// split once per call; convolutions (a GEMM or the direct stem, and the banded
/// depthwise + pointwise + pool) once per sample. A pointwise conv pooled in
/// place without a depthwise conv before it, and the row, elementwise, pooling
/// and standalone depthwise kernels run on one thread.
fn tiled_parallelism(group: &[Step]) -> Parallelism {
    match group {
        [step] => match step.kind {
            StepKind::Dense { .. } | StepKind::AttnScores { .. } | StepKind::AttnContext { .. } => {
                Parallelism::PerCall
            }
            StepKind::Conv2d { .. } | StepKind::Pointwise { .. } => Parallelism::PerSample,
            _ => Parallelism::Serial,
        },
        [first, ..] if matches!(first.kind, StepKind::Depthwise { .. }) => Parallelism::PerSample,
        _ => Parallelism::Serial,
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
        StepKind::AttnScores { softmax: false, .. } => "attention_scores",
        StepKind::AttnScores { softmax: true, .. } => "attention_scores+softmax",
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
                let activation_copies: f64 = graph
                    .nodes
                    .iter()
                    .filter(|node| matches!(node.op, Op::Activation(_)))
                    .map(|node| 2.0 * F32 * (batch * node.numel()) as f64)
                    .sum();
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
                    // The quantized backend's standalone activations make a
                    // pass more than the graph counts (copy, then apply).
                    let copies = if backend == BackendKind::Quantized {
                        activation_copies
                    } else {
                        0.0
                    };
                    assert!(b <= bytes + copies, "{what}: {b} > {bytes} + {copies}");
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

    /// The projection charges an int8 program at the int8 peak: the steps
    /// the quantized backend computes in f32 (attention, the row kernels, the
    /// stem and depthwise convs) count their FLOPs in int8-op equivalents, the
    /// int8 GEMMs their own; f16/bf16 programs are charged at the f32 peak and
    /// keep every step's FLOPs.
    #[test]
    fn int8_programs_charge_their_f32_steps_at_the_f32_rate() {
        let batch = 8;
        let graph = models::transformer_block(1).expect("transformer");
        let graphs = graph.op_costs(batch);
        let int8 =
            executed_costs(&graph, BackendKind::Quantized, Precision::Int8, batch).expect("costs");
        let bf16 =
            executed_costs(&graph, BackendKind::Quantized, Precision::Bf16, batch).expect("costs");
        // The softmax runs in place over the scores, in their call.
        let calls: [(&str, &[&str]); 2] = [
            (
                "layer0.scores+layer0.softmax",
                &["layer0.scores", "layer0.softmax"],
            ),
            ("layer0.context", &["layer0.context"]),
        ];
        for (name, ops) in calls {
            let own: f64 = ops.iter().map(|op| named(&graphs, op).flops).sum();
            assert!(own > 0.0, "{name}");
            assert_eq!(named(&int8, name).flops, own, "{name}");
            assert!(named(&int8, name).runs_at_f32_peak, "{name}");
            assert!(!named(&bf16, name).runs_at_f32_peak, "{name}");
        }
        // The FFN's GELU runs in place after its GEMM, in the GEMM's call.
        for name in ["layer0.q", "layer0.ffn1+layer0.gelu"] {
            assert!(!named(&int8, name).runs_at_f32_peak, "{name}");
        }
        let graph = models::convnet_224(1).expect("convnet-224");
        let graphs = graph.op_costs(batch);
        let int8 =
            executed_costs(&graph, BackendKind::Quantized, Precision::Int8, batch).expect("costs");
        let stem = named(&graphs, "block0.conv").flops + named(&graphs, "block0.act").flops;
        let pointwise = ["block1.pw", "block1.pw_act", "pool"]
            .iter()
            .map(|name| named(&graphs, name).flops)
            .sum::<f64>();
        let stem_cost = named(&int8, "block0.conv+block0.act");
        // The stem stays f32 where the direct kernel exists (AVX-512, AVX2);
        // else it is an int8 GEMM like the others.
        let direct_stem = matches!(
            crate::simd::detect(),
            SimdLevel::Avx512 | SimdLevel::Avx2Fma
        );
        assert_eq!(
            (stem_cost.flops, stem_cost.runs_at_f32_peak),
            (stem, direct_stem)
        );
        let pointwise_cost = named(&int8, "block1.pw+block1.pw_act+pool");
        assert_eq!(
            (pointwise_cost.flops, pointwise_cost.runs_at_f32_peak),
            (pointwise, false)
        );
        // Split twice, they fork and join twice.
        assert_eq!(Parallelism::TwicePerSample.forks(batch), Some(16.0));
        assert_eq!(Parallelism::TwicePerCall.forks(batch), Some(2.0));
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
            let f = named(&fused, &c.name);
            assert_eq!(
                (f.flops, f.bytes, f.weight_bytes),
                (c.flops, c.bytes, c.weight_bytes)
            );
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
        // The softmax runs over each head's scores in their call: the
        // probabilities are written once and never read back to be normalised.
        let scores = named(&costs, "layer0.scores+layer0.softmax");
        assert_eq!(scores.kind, "attention_scores+softmax");
        assert_eq!(scores.bytes, 4.0 * b * (2.0 * s * d + 4.0 * s * s));
        let graphs = graph.op_costs(4);
        let both = named(&graphs, "layer0.scores").flops + named(&graphs, "layer0.softmax").flops;
        assert_eq!(scores.flops, both);
        let context = named(&costs, "layer0.context");
        assert_eq!(context.bytes, 4.0 * b * (4.0 * s * s + 2.0 * s * d));
    }

    /// A 15 x 13 convnet of `channels` input channels: a strided 3 x 3 conv,
    /// a conv of `middle_kernel` (1: pointwise), a depthwise-separable block.
    fn small_convnet(channels: usize, middle_kernel: usize) -> Graph {
        Graph::from_spec(
            &ModelSpec::Convnet(ConvnetSpec {
                height: 15,
                width: 13,
                channels,
                blocks: vec![
                    ConvBlock::Standard {
                        out_channels: 8,
                        kernel: 3,
                        stride: 2,
                    },
                    ConvBlock::Standard {
                        out_channels: 12,
                        kernel: middle_kernel,
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
        .expect("convnet")
    }

    /// The quantized costs fold into a call exactly the nodes the compiled
    /// executable skips as done by the kernel before them.
    #[test]
    fn quantized_costs_fold_the_nodes_the_compiled_backend_skips() {
        let convnet = small_convnet(3, 3);
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
        let pw_in = 32.0 * 112.0 * 112.0;
        // int8 weights, an f32 bias and an f32 scale per output channel.
        let pw_weights = 64.0 * 32.0 + 4.0 * (64.0 + 64.0);
        assert_eq!(pw.weight_bytes, pw_weights);
        assert_eq!(pw.bytes, 4.0 * b * (pw_in + 64.0) + pw_weights);
        // The depthwise conv (f32 kernel) runs its ReLU; it stays apart from the pointwise.
        named(&costs, "block1.dw+block1.dw_act");
        let activations = |c: &OpCost| c.bytes - c.weight_bytes;
        let unfused = total(&graph.op_costs(batch), activations);
        let saved = unfused - total(&costs, activations);
        // The ReLUs' passes (stem, depthwise, pointwise) and the pointwise output the pool read.
        let relus = 2.0 * (2.0 * 32.0 + 2.0 * 64.0) * 112.0 * 112.0;
        assert_eq!(saved, 4.0 * b * relus);
        // Not the f32 program's: no chains, no Q/K/V fusion; the GELU runs
        // in place after its GEMM, in that GEMM's call.
        let graph = models::transformer_block(1).expect("transformer");
        for precision in [Precision::Int8, Precision::F16] {
            let costs =
                executed_costs(&graph, BackendKind::Quantized, precision, 1).expect("costs");
            for name in [
                "layer0.q",
                "layer0.k",
                "layer0.v",
                "layer0.ffn1+layer0.gelu",
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

    /// Bytes of one call at batch `b`: `per_sample` activation bytes each,
    /// `weights` once.
    fn at(b: f64, per_sample: f64, weights: f64) -> f64 {
        b * per_sample + weights
    }

    #[test]
    fn the_quantized_backend_reads_narrow_weights_and_keeps_activations_f32() {
        let (batch, b) = (8, 8.0);
        let graph = models::mlp_1024(1).expect("mlp-1024");
        let (d, classes) = (1024.0, 10.0);
        // int8: s8 weights with an f32 bias and scale per column. The layers
        // hand one another u8 rows (the first reads the f32 input, the last
        // writes f32 logits).
        let costs =
            executed_costs(&graph, BackendKind::Quantized, Precision::Int8, batch).expect("costs");
        let hidden = d * d + 4.0 * (d + d);
        let last = d * classes + 4.0 * (classes + classes);
        let expected = [
            ("dense0+act0", at(b, 4.0 * d + d, hidden), hidden),
            ("dense1+act1", at(b, d + d, hidden), hidden),
            ("dense2", at(b, d + 4.0 * classes, last), last),
        ];
        for (name, bytes, weights) in expected {
            let c = named(&costs, name);
            assert_eq!((c.bytes, c.weight_bytes), (bytes, weights), "{name}");
        }
        // f16 and bf16: 2-byte weights, f32 bias, f32 activations throughout.
        for precision in [Precision::F16, Precision::Bf16] {
            let costs =
                executed_costs(&graph, BackendKind::Quantized, precision, batch).expect("costs");
            let c = named(&costs, "dense1+act1");
            let weights = 2.0 * d * d + 4.0 * d;
            assert_eq!(c.weight_bytes, weights, "{precision}");
            assert_eq!(c.bytes, at(b, 4.0 * (d + d), weights), "{precision}");
        }
        // The transformer: GEMMs read narrow weights, the rest is f32 as in the graph.
        let graph = models::transformer_block(1).expect("transformer");
        let costs =
            executed_costs(&graph, BackendKind::Quantized, Precision::Int8, batch).expect("costs");
        let (s, d) = (64.0, 256.0);
        let q = named(&costs, "layer0.q");
        let weights = d * d + 4.0 * (d + d);
        assert_eq!(
            (q.bytes, q.weight_bytes),
            (at(b, 4.0 * 2.0 * s * d, weights), weights)
        );
        // The FFN's first GEMM writes its output into the GELU's buffer,
        // then the GELU reads and writes it there once more.
        let ffn1 = named(&costs, "layer0.ffn1+layer0.gelu");
        let weights = d * 1024.0 + 4.0 * (1024.0 + 1024.0);
        assert_eq!(
            (ffn1.bytes, ffn1.weight_bytes),
            (at(b, 4.0 * (s * d + 3.0 * s * 1024.0), weights), weights)
        );
        let graphs = graph.op_costs(batch);
        let norm = named(&costs, "layer0.norm1");
        // Timed at the f32 rate (see the test below).
        let f32_step = OpCost {
            runs_at_f32_peak: true,
            ..named(&graphs, "layer0.norm1").clone()
        };
        assert_eq!(norm, &f32_step);
        // The scores land in the softmax's buffer, which reads and writes
        // them once more in place.
        let scores = named(&costs, "layer0.scores+layer0.softmax");
        let heads_s_s = named(&graphs, "layer0.softmax").bytes / (2.0 * 4.0 * b);
        assert_eq!(
            scores.bytes,
            named(&graphs, "layer0.scores").bytes + 2.0 * 4.0 * b * heads_s_s
        );
    }

    /// `u8_reader` as it was, scanning every node for the readers of `last`.
    fn u8_reader_by_scan(
        storage: &QuantizedStorage<'_>,
        head: NodeId,
        last: NodeId,
    ) -> Option<NodeId> {
        let graph = storage.graph;
        let dense = |i: NodeId| matches!(graph.nodes[i].op, Op::Dense { .. });
        let relu = |i: NodeId| matches!(graph.nodes[i].op, Op::Activation(Activation::Relu));
        if storage.precision != Precision::Int8
            || !dense(head)
            || (last != head && !relu(last))
            || last == graph.output
        {
            return None;
        }
        let mut readers = (0..graph.nodes.len()).filter(|&j| graph.nodes[j].inputs.contains(&last));
        match (readers.next(), readers.next()) {
            (Some(j), None) if graph.nodes[j].inputs.len() == 1 && dense(j) => Some(j),
            _ => None,
        }
    }

    /// `u8_reader` on the precomputed consumers answers what the scan over
    /// every node did: for every call the backend plans, and every node as a
    /// call of its own or with the node after it, on a deep MLP (ReLU and
    /// not) and the graphs above (a transformer's shared inputs, a convnet).
    #[test]
    fn u8_reader_answers_as_the_scan_over_every_node_did() {
        let deep_mlp = |activation| {
            Graph::from_spec(
                &ModelSpec::Mlp(MlpSpec {
                    input: 8,
                    hidden: vec![8; 300],
                    output: 2,
                    activation,
                }),
                1,
            )
            .expect("deep mlp")
        };
        let mut models = vec![deep_mlp(Activation::Relu), deep_mlp(Activation::Tanh)];
        models.extend(graphs());
        let mut handed_on = 0;
        for graph in &models {
            for precision in [Precision::Int8, Precision::F16] {
                let opts = CompileOptions {
                    precision,
                    ..CompileOptions::default()
                };
                let storage =
                    QuantizedStorage::new(graph, precision, opts.resolved_simd().expect("simd"));
                let calls = QuantizedBackend::default()
                    .node_calls(graph, &opts)
                    .expect("calls");
                let planned = calls.iter().map(|c| storage.ends(c).expect("call nodes"));
                let nodes = graph.nodes.len();
                let singles = (0..nodes).map(|i| (i, i));
                let pairs = (1..nodes).map(|i| (i - 1, i));
                for (head, last) in planned.chain(singles).chain(pairs) {
                    let reader = storage.u8_reader(head, last);
                    assert_eq!(
                        reader,
                        u8_reader_by_scan(&storage, head, last),
                        "{precision}: {head} -> {last} of {} nodes",
                        nodes
                    );
                    handed_on += usize::from(reader.is_some());
                }
            }
        }
        assert!(handed_on > 300, "{handed_on}");
    }

    /// What `QuantizedStorage` reads of the backend's plan (which nodes run as
    /// GEMMs on narrow weights, which int8 layers hand the next u8) is what the
    /// compiled executable says it runs.
    #[test]
    fn quantized_storage_agrees_with_the_compiled_backend() {
        let graphs = [
            models::mlp_1024(1).expect("mlp-1024"),
            Graph::from_spec(
                &ModelSpec::Mlp(MlpSpec {
                    input: 17,
                    hidden: vec![33, 9, 7],
                    output: 5,
                    activation: Activation::Relu,
                }),
                2,
            )
            .expect("mlp"),
            small_convnet(8, 1),
            Graph::from_spec(
                &ModelSpec::Transformer(TransformerSpec {
                    seq_len: 8,
                    d_model: 16,
                    heads: 2,
                    ffn: 32,
                    layers: 1,
                    classes: 3,
                }),
                2,
            )
            .expect("transformer"),
        ];
        let mut chained = 0;
        let mut split = BTreeMap::new();
        for graph in &graphs {
            for precision in [Precision::Int8, Precision::F16] {
                // On two threads the text says which nodes split, and how.
                let opts = CompileOptions {
                    precision,
                    threads: 2,
                    ..CompileOptions::default()
                };
                let text = crate::compile(graph, BackendKind::Quantized, &opts)
                    .expect("compile")
                    .lowered();
                let how = |name: &str| {
                    text.lines()
                        .find(|l| l.split_whitespace().next() == Some(name))
                        .unwrap_or_else(|| panic!("{name} in {text}"))
                        .to_string()
                };
                let storage =
                    QuantizedStorage::new(graph, precision, opts.resolved_simd().expect("simd"));
                let calls = QuantizedBackend::default()
                    .node_calls(graph, &opts)
                    .expect("calls");
                let charged = storage.charge(&calls);
                for (call, charged) in calls.iter().zip(&charged) {
                    let (head, last) = storage.ends(call).expect("call nodes");
                    let name = &graph.nodes[head].name;
                    let line = how(name);
                    // An int8 dense GEMM whose input no GEMM before hands it
                    // as u8 quantizes it first; an f32 conv copies its input
                    // into its layout first: both split twice.
                    let quantizes = line.contains("int8 gemm")
                        && !text.contains(&format!("requantized u8 to {name})"));
                    let copies = (line.contains("f32 direct conv")
                        || line.contains("f32 depthwise"))
                        && !line.contains("its input written in place");
                    let runs = if line.ends_with("split over 2 threads per call") {
                        if quantizes {
                            Parallelism::TwicePerCall
                        } else {
                            Parallelism::PerCall
                        }
                    } else if line.ends_with("split over 2 threads per sample") {
                        if copies {
                            Parallelism::TwicePerSample
                        } else {
                            Parallelism::PerSample
                        }
                    } else {
                        assert!(!line.contains("split"), "{line}");
                        Parallelism::Serial
                    };
                    assert_eq!(charged.parallelism, runs, "{precision}: {line}");
                    *split.entry(format!("{runs:?}")).or_insert(0) += 1;
                    assert_eq!(
                        storage.gemm(head).is_some(),
                        line.contains(" gemm"),
                        "{precision}: {line}"
                    );
                    let reader = storage.u8_reader(head, last);
                    let to = reader.map(|j| format!("requantized u8 to {}", graph.nodes[j].name));
                    assert_eq!(
                        to.as_ref().is_some_and(|to| line.contains(to)),
                        line.contains("requantized"),
                        "{precision}: {line}"
                    );
                    chained += usize::from(reader.is_some());
                }
            }
        }
        // mlp-1024 hands on twice, the small MLP three times.
        assert_eq!(chained, 5);
        // Per precision: the dense layers (mlp-1024 3, the small MLP 4, the
        // convnet's classifier 1, the transformer's Q, K, V, O, FFN and
        // classifier 7) split per call, the int8 ones on an f32 input (all but
        // the 5 handed u8) twice; the convnet's four convolutions (a GEMM, a
        // 1x1 on the direct kernel or a GEMM, the depthwise and the pointwise)
        // per sample, the f32 kernels twice.
        assert_eq!(split.get("PerCall"), Some(&20), "{split:?}");
        assert_eq!(split.get("TwicePerCall"), Some(&10), "{split:?}");
        let per_sample = split.get("PerSample").copied().unwrap_or(0);
        let twice_per_sample = split.get("TwicePerSample").copied().unwrap_or(0);
        assert_eq!(per_sample + twice_per_sample, 8, "{split:?}");
        assert!(twice_per_sample >= 2, "{split:?}");
        assert!(split.get("Serial").is_some_and(|&n| n > 0), "{split:?}");
    }

    #[test]
    fn costs_say_which_calls_the_backend_splits_over_threads() {
        let graph = models::convnet_224(1).expect("convnet-224");
        let costs = executed_costs(&graph, BackendKind::Tiled, Precision::F32, 8).expect("costs");
        let split: Vec<(&str, Parallelism)> = costs
            .iter()
            .map(|c| (c.name.as_str(), c.parallelism))
            .collect();
        // The stem and the banded group fork and join once per sample; the
        // classifier's GEMM once for the batch.
        assert_eq!(
            split,
            [
                ("block0.conv+block0.act", Parallelism::PerSample),
                (
                    "block1.dw+block1.dw_act+block1.pw+block1.pw_act+pool",
                    Parallelism::PerSample
                ),
                ("classifier", Parallelism::PerCall),
            ],
            "{costs:#?}"
        );
        // The transformer: GEMMs and attention split, the row and elementwise kernels do not.
        let graph = models::transformer_block(1).expect("transformer");
        let costs = executed_costs(&graph, BackendKind::Tiled, Precision::F32, 8).expect("costs");
        for (name, expected) in [
            ("layer0.q|layer0.k|layer0.v", Parallelism::PerCall),
            ("layer0.scores+layer0.softmax", Parallelism::PerCall),
            ("layer0.context", Parallelism::PerCall),
            ("layer0.norm1", Parallelism::Serial),
        ] {
            assert_eq!(named(&costs, name).parallelism, expected, "{name}");
        }
        // The quantized backend: dense GEMMs split once per call (int8 ones
        // on an f32 input twice: the quantization, then the GEMM), the conv
        // GEMMs once per sample, the f32 stem (on the direct kernel, AVX-512
        // and AVX2; else a GEMM) twice (the input's layout, then the conv) and
        // the depthwise kernel once after it (the stem wrote its input's
        // layout), twice after a GEMM; attention and the row kernels not.
        let (stem, depthwise) = if matches!(
            crate::simd::detect(),
            SimdLevel::Avx512 | SimdLevel::Avx2Fma
        ) {
            (Parallelism::TwicePerSample, Parallelism::PerSample)
        } else {
            (Parallelism::PerSample, Parallelism::TwicePerSample)
        };
        for precision in [Precision::Int8, Precision::Bf16] {
            let quantized_input = if precision == Precision::Int8 {
                Parallelism::TwicePerCall
            } else {
                Parallelism::PerCall
            };
            let graph = models::convnet_224(1).expect("convnet-224");
            let costs =
                executed_costs(&graph, BackendKind::Quantized, precision, 8).expect("costs");
            let split: Vec<(&str, Parallelism)> = costs
                .iter()
                .map(|c| (c.name.as_str(), c.parallelism))
                .collect();
            assert_eq!(
                split,
                [
                    ("block0.conv+block0.act", stem),
                    ("block1.dw+block1.dw_act", depthwise),
                    ("block1.pw+block1.pw_act+pool", Parallelism::PerSample),
                    ("classifier", quantized_input),
                ],
                "{precision}: {costs:#?}"
            );
            let graph = models::mlp_1024(1).expect("mlp-1024");
            let costs =
                executed_costs(&graph, BackendKind::Quantized, precision, 8).expect("costs");
            let split: Vec<Parallelism> = costs.iter().map(|c| c.parallelism).collect();
            // The hidden layers hand one another u8 rows: only the first quantizes.
            assert_eq!(
                split,
                [quantized_input, Parallelism::PerCall, Parallelism::PerCall],
                "{precision}: {costs:#?}"
            );
            let graph = models::transformer_block(1).expect("transformer");
            let costs =
                executed_costs(&graph, BackendKind::Quantized, precision, 8).expect("costs");
            for (name, expected) in [
                ("layer0.q", quantized_input),
                ("layer0.ffn1+layer0.gelu", quantized_input),
                ("layer0.scores+layer0.softmax", Parallelism::Serial),
                ("layer0.context", Parallelism::Serial),
                ("layer0.norm1", Parallelism::Serial),
            ] {
                assert_eq!(
                    named(&costs, name).parallelism,
                    expected,
                    "{precision} {name}"
                );
            }
        }
        // Everything else runs on one thread: the naive and fused backends.
        for graph in graphs() {
            for (backend, precision) in [
                (BackendKind::Naive, Precision::F32),
                (BackendKind::Fused, Precision::F32),
            ] {
                let costs = executed_costs(&graph, backend, precision, 2).expect("costs");
                assert!(
                    costs.iter().all(|c| c.parallelism == Parallelism::Serial),
                    "{} {backend} {precision}: {costs:#?}",
                    graph.name
                );
            }
        }
    }
}
