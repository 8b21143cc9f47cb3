//! Graph IR: a topologically ordered list of nodes, each producing one f32
//! tensor. Shapes are per sample; the batch is the implicit leading dimension
//! chosen at run time. Dense ops apply to the last axis (rows = the other axes);
//! conv ops take `[channels, height, width]` per sample (NCHW with the batch).

use std::fmt;
use std::sync::Arc;

use crate::act;
use crate::cost::OpCost;
use crate::error::KernelError;
use crate::spec::{Activation, Precision};

/// Index of a node (and of the tensor it produces) in `Graph::nodes`.
pub type NodeId = usize;

/// Storage type of a tensor. Activations are f32 in every backend here;
/// weights may be stored narrower by the quantized backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F16,
    Bf16,
    I8,
}

/// A constant tensor (weights, biases, norms, constants of elementwise chains).
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub data: Arc<[f32]>,
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Tensor, KernelError> {
        let numel = checked_numel(&shape)
            .ok_or_else(|| KernelError::InvalidSpec(format!("tensor shape {shape:?} overflows")))?;
        if numel != data.len() {
            return Err(KernelError::InvalidSpec(format!(
                "tensor shape {shape:?} needs {numel} elements, got {}",
                data.len()
            )));
        }
        Ok(Tensor {
            shape,
            dtype: DType::F32,
            data: data.into(),
        })
    }

    pub fn numel(&self) -> usize {
        self.data.len()
    }
}

/// Product of the dimensions, `None` on overflow.
pub fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Operations of the IR. Weights are stored in the op.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// The graph input (node 0).
    Input,
    /// A constant with the same per-sample shape as the values it is combined with.
    Constant(Tensor),
    /// `y[.., n] = x[.., k] . weight[k, n] (+ bias[n])` (weight row-major `[k, n]`).
    Dense {
        weight: Tensor,
        bias: Option<Tensor>,
    },
    /// `y[.., n] = x[.., n] + bias[n]`.
    BiasAdd {
        bias: Tensor,
    },
    Activation(Activation),
    /// Softmax over the last axis.
    Softmax,
    /// Layer norm over the last axis with learned scale and shift.
    LayerNorm {
        gamma: Tensor,
        beta: Tensor,
        eps: f32,
    },
    /// Conv2d, weight `[out, in, kh, kw]`, bias `[out]`, on `[in, h, w]`.
    Conv2d {
        weight: Tensor,
        bias: Option<Tensor>,
        stride: usize,
        padding: usize,
    },
    /// Depthwise conv2d, weight `[c, kh, kw]`, bias `[c]`.
    DepthwiseConv2d {
        weight: Tensor,
        bias: Option<Tensor>,
        stride: usize,
        padding: usize,
    },
    /// 1x1 conv, weight `[out, in]`, bias `[out]`.
    PointwiseConv {
        weight: Tensor,
        bias: Option<Tensor>,
    },
    /// `[c, h, w] -> [c]`, mean over the spatial axes.
    GlobalAvgPool,
    /// `[s, d] -> [d]`, mean over the first axis (sequence pooling).
    MeanPool,
    /// Elementwise sum of two tensors of the same shape (residual add).
    Add,
    /// Elementwise product of two tensors of the same shape.
    Mul,
    /// Multiply every element by a constant.
    Scale(f32),
    /// Same data, new shape (flatten is `Reshape(vec![numel])`).
    Reshape(Vec<usize>),
    /// Inputs q `[s, d]`, k `[s, d]`: per head `q_h k_h^T / sqrt(d / heads)`, output `[heads, s, s]`.
    AttentionScores {
        heads: usize,
    },
    /// Inputs p `[heads, s, s]`, v `[s, d]`: per head `p_h v_h`, heads concatenated, output `[s, d]`.
    AttentionContext {
        heads: usize,
    },
}

impl Op {
    /// Short kind name used in costs, errors and the lowered form.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Input => "input",
            Op::Constant(_) => "constant",
            Op::Dense { .. } => "matmul",
            Op::BiasAdd { .. } => "bias_add",
            Op::Activation(a) => act::name(*a),
            Op::Softmax => "softmax",
            Op::LayerNorm { .. } => "layer_norm",
            Op::Conv2d { .. } => "conv2d",
            Op::DepthwiseConv2d { .. } => "depthwise_conv2d",
            Op::PointwiseConv { .. } => "pointwise_conv",
            Op::GlobalAvgPool => "global_avg_pool",
            Op::MeanPool => "mean_pool",
            Op::Add => "add",
            Op::Mul => "mul",
            Op::Scale(_) => "scale",
            Op::Reshape(_) => "reshape",
            Op::AttentionScores { .. } => "attention_scores",
            Op::AttentionContext { .. } => "attention_context",
        }
    }

    /// The weight tensors of this op (what `param_count` sums).
    pub fn params(&self) -> Vec<&Tensor> {
        match self {
            Op::Constant(t) => vec![t],
            Op::Dense { weight, bias }
            | Op::Conv2d { weight, bias, .. }
            | Op::DepthwiseConv2d { weight, bias, .. }
            | Op::PointwiseConv { weight, bias } => {
                let mut v = vec![weight];
                v.extend(bias.iter());
                v
            }
            Op::BiasAdd { bias } => vec![bias],
            Op::LayerNorm { gamma, beta, .. } => vec![gamma, beta],
            _ => Vec::new(),
        }
    }

    /// Number of value inputs the op takes.
    pub fn arity(&self) -> usize {
        match self {
            Op::Input | Op::Constant(_) => 0,
            Op::Add | Op::Mul | Op::AttentionScores { .. } | Op::AttentionContext { .. } => 2,
            _ => 1,
        }
    }

    /// Elementwise ops: one output element from the same-index element of each input.
    pub fn is_elementwise(&self) -> bool {
        matches!(
            self,
            Op::Add | Op::Mul | Op::Scale(_) | Op::Activation(_) | Op::BiasAdd { .. }
        )
    }
}

/// One node: an op applied to earlier nodes' outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    pub op: Op,
    pub inputs: Vec<NodeId>,
    /// Per-sample output shape (inferred).
    pub shape: Vec<usize>,
}

impl Node {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A validated model graph.
#[derive(Debug, Clone)]
pub struct Graph {
    pub(crate) name: String,
    pub(crate) nodes: Vec<Node>,
    pub(crate) output: NodeId,
    pub(crate) classifier: bool,
    pub(crate) seed: u64,
}

/// Builds a graph node by node, inferring and checking shapes as it goes.
#[derive(Debug)]
pub struct GraphBuilder {
    name: String,
    nodes: Vec<Node>,
}

fn shape_err(node: &str, op: &Op, detail: String) -> KernelError {
    KernelError::Shape {
        node: node.to_string(),
        op: op.kind(),
        detail,
    }
}

fn conv_out(input: usize, kernel: usize, stride: usize, padding: usize) -> Option<usize> {
    let padded = input.checked_add(padding.checked_mul(2)?)?;
    if stride == 0 || padded < kernel {
        return None;
    }
    Some((padded - kernel) / stride + 1)
}

/// Why a conv's stride is refused: one larger than both sides of its padded
/// input reads a single output pixel per row and column, and the tiled
/// kernels' stride-split layout (`conv::SplitLayout`) holds `stride` columns
/// per output column, so an absurd stride would ask for absurd memory.
fn stride_beyond_input(h: usize, w: usize, stride: usize, padding: usize) -> Option<String> {
    let padded = h.max(w).saturating_add(padding.saturating_mul(2));
    (stride > padded).then(|| {
        format!("stride {stride} exceeds the padded input ({h}x{w}, padding {padding}): at most {padded}")
    })
}

/// Most values one node may hold per sample: 2^30 (4 GiB of f32). A
/// padding or a reshape asking for more is a mistake, refused rather than
/// allocated (a 1x1 conv on a 2x2 image with padding 100000 had asked for
/// 160 GB and aborted the process).
pub const MAX_NODE_ELEMENTS: usize = 1 << 30;

/// Infer the per-sample output shape of `op` on inputs of shapes `ins`.
pub fn infer_shape(name: &str, op: &Op, ins: &[&[usize]]) -> Result<Vec<usize>, KernelError> {
    let err = |d: String| shape_err(name, op, d);
    if ins.len() != op.arity() {
        return Err(err(format!(
            "expects {} inputs, got {}",
            op.arity(),
            ins.len()
        )));
    }
    let last = |s: &[usize]| s.last().copied();
    let shape = match op {
        Op::Input => return Err(err("input node must be the first node".into())),
        Op::Constant(t) => t.shape.clone(),
        Op::Dense { weight, bias } => {
            let x = ins[0];
            if weight.shape.len() != 2 {
                return Err(err(format!(
                    "weight must be [k, n], got {:?}",
                    weight.shape
                )));
            }
            let (k, n) = (weight.shape[0], weight.shape[1]);
            if last(x) != Some(k) {
                return Err(err(format!(
                    "input {x:?} last axis must equal weight rows {k} (weight [{k}, {n}])"
                )));
            }
            if let Some(b) = bias {
                if b.shape != [n] {
                    return Err(err(format!("bias must be [{n}], got {:?}", b.shape)));
                }
            }
            let mut s = x.to_vec();
            if let Some(l) = s.last_mut() {
                *l = n;
            }
            s
        }
        Op::BiasAdd { bias } => {
            let x = ins[0];
            if last(x) != Some(bias.numel()) || bias.shape.len() != 1 {
                return Err(err(format!(
                    "bias {:?} must match the last axis of {x:?}",
                    bias.shape
                )));
            }
            x.to_vec()
        }
        Op::Activation(_) | Op::Scale(_) => ins[0].to_vec(),
        Op::Softmax => {
            if ins[0].is_empty() {
                return Err(err("softmax needs at least one axis".into()));
            }
            ins[0].to_vec()
        }
        Op::LayerNorm { gamma, beta, eps } => {
            let x = ins[0];
            if x.is_empty() {
                return Err(err("layer norm needs at least one axis".into()));
            }
            let d = last(x).unwrap_or(0);
            if gamma.shape != [d] || beta.shape != [d] {
                return Err(err(format!(
                    "gamma {:?} and beta {:?} must be [{d}] for input {x:?}",
                    gamma.shape, beta.shape
                )));
            }
            if eps.is_nan() || *eps <= 0.0 {
                return Err(err(format!("eps must be > 0, got {eps}")));
            }
            x.to_vec()
        }
        Op::Conv2d {
            weight,
            bias,
            stride,
            padding,
        } => {
            let x = ins[0];
            let [c, h, w] = x else {
                return Err(err(format!("input must be [c, h, w], got {x:?}")));
            };
            let [oc, ic, kh, kw] = weight.shape[..] else {
                return Err(err(format!(
                    "weight must be [out, in, kh, kw], got {:?}",
                    weight.shape
                )));
            };
            if ic != *c {
                return Err(err(format!(
                    "weight expects {ic} input channels, input has {c}"
                )));
            }
            check_bias(bias, oc).map_err(&err)?;
            if let Some(detail) = stride_beyond_input(*h, *w, *stride, *padding) {
                return Err(err(detail));
            }
            let (oh, ow) = (
                conv_out(*h, kh, *stride, *padding),
                conv_out(*w, kw, *stride, *padding),
            );
            match (oh, ow) {
                (Some(oh), Some(ow)) if oh > 0 && ow > 0 => vec![oc, oh, ow],
                _ => {
                    return Err(err(format!(
                    "kernel {kh}x{kw} stride {stride} padding {padding} does not fit input {h}x{w}"
                )))
                }
            }
        }
        Op::DepthwiseConv2d {
            weight,
            bias,
            stride,
            padding,
        } => {
            let x = ins[0];
            let [c, h, w] = x else {
                return Err(err(format!("input must be [c, h, w], got {x:?}")));
            };
            let [wc, kh, kw] = weight.shape[..] else {
                return Err(err(format!(
                    "weight must be [c, kh, kw], got {:?}",
                    weight.shape
                )));
            };
            if wc != *c {
                return Err(err(format!("weight has {wc} channels, input has {c}")));
            }
            check_bias(bias, wc).map_err(&err)?;
            if let Some(detail) = stride_beyond_input(*h, *w, *stride, *padding) {
                return Err(err(detail));
            }
            match (
                conv_out(*h, kh, *stride, *padding),
                conv_out(*w, kw, *stride, *padding),
            ) {
                (Some(oh), Some(ow)) if oh > 0 && ow > 0 => vec![wc, oh, ow],
                _ => {
                    return Err(err(format!(
                    "kernel {kh}x{kw} stride {stride} padding {padding} does not fit input {h}x{w}"
                )))
                }
            }
        }
        Op::PointwiseConv { weight, bias } => {
            let x = ins[0];
            let [c, h, w] = x else {
                return Err(err(format!("input must be [c, h, w], got {x:?}")));
            };
            let [oc, ic] = weight.shape[..] else {
                return Err(err(format!(
                    "weight must be [out, in], got {:?}",
                    weight.shape
                )));
            };
            if ic != *c {
                return Err(err(format!(
                    "weight expects {ic} input channels, input has {c}"
                )));
            }
            check_bias(bias, oc).map_err(&err)?;
            vec![oc, *h, *w]
        }
        Op::GlobalAvgPool => match ins[0] {
            [c, h, w] if h * w > 0 => vec![*c],
            x => {
                return Err(err(format!(
                    "input must be [c, h, w] with h*w > 0, got {x:?}"
                )))
            }
        },
        Op::MeanPool => match ins[0] {
            [s, d] if *s > 0 => vec![*d],
            x => return Err(err(format!("input must be [s, d] with s > 0, got {x:?}"))),
        },
        Op::Add | Op::Mul => {
            if ins[0] != ins[1] {
                return Err(err(format!(
                    "operands must have the same shape, got {:?} and {:?}",
                    ins[0], ins[1]
                )));
            }
            ins[0].to_vec()
        }
        Op::Reshape(to) => {
            let from_n = checked_numel(ins[0]);
            if from_n != checked_numel(to) {
                return Err(err(format!(
                    "cannot reshape {:?} to {to:?}: element counts differ",
                    ins[0]
                )));
            }
            to.clone()
        }
        Op::AttentionScores { heads } => {
            let (q, k) = (ins[0], ins[1]);
            let [s, d] = q else {
                return Err(err(format!("q must be [s, d], got {q:?}")));
            };
            if q != k {
                return Err(err(format!("q {q:?} and k {k:?} must have the same shape")));
            }
            if *heads == 0 || d % heads != 0 {
                return Err(err(format!(
                    "d_model {d} is not divisible by {heads} heads"
                )));
            }
            vec![*heads, *s, *s]
        }
        Op::AttentionContext { heads } => {
            let (p, v) = (ins[0], ins[1]);
            let [s, d] = v else {
                return Err(err(format!("v must be [s, d], got {v:?}")));
            };
            if p != [*heads, *s, *s] {
                return Err(err(format!(
                    "probabilities must be [{heads}, {s}, {s}], got {p:?}"
                )));
            }
            if *heads == 0 || d % heads != 0 {
                return Err(err(format!(
                    "d_model {d} is not divisible by {heads} heads"
                )));
            }
            vec![*s, *d]
        }
    };
    match checked_numel(&shape) {
        None => return Err(err(format!("output shape {shape:?} overflows"))),
        Some(0) => {
            return Err(err(format!(
                "output shape {shape:?} has a dimension of 0"
            )))
        }
        Some(n) if n > MAX_NODE_ELEMENTS => {
            return Err(err(format!(
                "output shape {shape:?} holds {n} values per sample, more than the {MAX_NODE_ELEMENTS} a node may hold (4 GiB of f32)"
            )))
        }
        Some(_) => {}
    }
    Ok(shape)
}

fn check_bias(bias: &Option<Tensor>, n: usize) -> Result<(), String> {
    match bias {
        Some(b) if b.shape != [n] => Err(format!("bias must be [{n}], got {:?}", b.shape)),
        _ => Ok(()),
    }
}

impl GraphBuilder {
    /// Start a graph whose input has the given per-sample shape.
    pub fn new(name: &str, input_shape: Vec<usize>) -> Result<GraphBuilder, KernelError> {
        if checked_numel(&input_shape).is_none_or(|n| n == 0) {
            return Err(KernelError::InvalidSpec(format!(
                "input shape {input_shape:?} is empty or overflows"
            )));
        }
        Ok(GraphBuilder {
            name: name.to_string(),
            nodes: vec![Node {
                name: "input".into(),
                op: Op::Input,
                inputs: Vec::new(),
                shape: input_shape,
            }],
        })
    }

    pub fn input(&self) -> NodeId {
        0
    }

    pub fn shape(&self, id: NodeId) -> &[usize] {
        self.nodes
            .get(id)
            .map(|n| n.shape.as_slice())
            .unwrap_or(&[])
    }

    /// Append a node; infers and validates its shape.
    pub fn push(&mut self, name: &str, op: Op, inputs: &[NodeId]) -> Result<NodeId, KernelError> {
        let mut shapes = Vec::with_capacity(inputs.len());
        for &i in inputs {
            match self.nodes.get(i) {
                Some(n) => shapes.push(n.shape.as_slice()),
                None => {
                    return Err(shape_err(
                        name,
                        &op,
                        format!("input node {i} does not exist"),
                    ))
                }
            }
        }
        for t in op.params() {
            if checked_numel(&t.shape) != Some(t.data.len()) || t.data.is_empty() {
                return Err(shape_err(
                    name,
                    &op,
                    format!(
                        "a tensor of shape {:?} holds {} values: every weight needs at least one value and exactly as many as its shape",
                        t.shape,
                        t.data.len()
                    ),
                ));
            }
        }
        // Constants hold one sample's values: elementwise ops broadcast them
        // over a batch, the others read a whole batch of their input.
        let constant_only = self.constant_only();
        if !op.is_elementwise() && inputs.iter().any(|&i| constant_only[i]) {
            return Err(shape_err(
                name,
                &op,
                "a constant (or a value computed from constants alone) can only be an operand of add, mul, scale, bias or an activation".into(),
            ));
        }
        let shape = infer_shape(name, &op, &shapes)?;
        self.nodes.push(Node {
            name: name.to_string(),
            op,
            inputs: inputs.to_vec(),
            shape,
        });
        Ok(self.nodes.len() - 1)
    }

    /// Whether each node's value comes from constants alone (the same for
    /// every sample of a batch), in node order.
    fn constant_only(&self) -> Vec<bool> {
        let mut out: Vec<bool> = Vec::with_capacity(self.nodes.len());
        for n in &self.nodes {
            let from_constants = match n.op {
                Op::Input => false,
                Op::Constant(_) => true,
                _ => n
                    .inputs
                    .iter()
                    .all(|&i| out.get(i).copied().unwrap_or(false)),
            };
            out.push(from_constants);
        }
        out
    }

    /// Finish with `output` as the graph output.
    pub fn finish(self, output: NodeId, classifier: bool, seed: u64) -> Result<Graph, KernelError> {
        if output >= self.nodes.len() {
            return Err(KernelError::InvalidSpec(format!(
                "output node {output} does not exist"
            )));
        }
        if self.constant_only()[output] {
            return Err(KernelError::InvalidSpec(format!(
                "output node {output} (`{}`) is computed from constants alone: the output must depend on the input",
                self.nodes[output].name
            )));
        }
        Ok(Graph {
            name: self.name,
            nodes: self.nodes,
            output,
            classifier,
            seed,
        })
    }
}

impl Graph {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn output_node(&self) -> NodeId {
        self.output
    }

    /// Of node `i`'s first two inputs (no op has more): each one's elements
    /// per sample, and whether it is a constant (the same for every sample).
    /// Fixed arrays, so executors read them without allocating per run.
    pub(crate) fn input_sizes(&self, i: NodeId) -> ([usize; 2], [bool; 2]) {
        let mut len = [0usize; 2];
        let mut constant = [false; 2];
        for (slot, &j) in self.nodes[i].inputs.iter().enumerate().take(2) {
            len[slot] = self.nodes[j].numel();
            constant[slot] = matches!(self.nodes[j].op, Op::Constant(_));
        }
        (len, constant)
    }

    /// Per node: the only node reading it, when exactly one node does, that
    /// node reads nothing else, and the node is not the graph's output (what
    /// a kernel may fuse into the node's own). One pass over the edges, so
    /// compiling stays linear in the node count.
    pub fn sole_consumers(&self) -> Vec<Option<NodeId>> {
        // (readers counted with multiplicity, the first reader).
        let mut readers: Vec<(usize, NodeId)> = vec![(0, 0); self.nodes.len()];
        for (j, node) in self.nodes.iter().enumerate() {
            for &i in &node.inputs {
                let r = &mut readers[i];
                if r.0 == 0 {
                    r.1 = j;
                }
                r.0 += 1;
            }
        }
        // A node reading `i` twice has two inputs, so it is refused either way.
        readers
            .iter()
            .enumerate()
            .map(|(i, &(count, j))| {
                (i != self.output && count == 1 && self.nodes[j].inputs.len() == 1).then_some(j)
            })
            .collect()
    }

    /// Per-sample input shape.
    pub fn input_shape(&self) -> &[usize] {
        &self.nodes[0].shape
    }

    /// Elements per sample of the input.
    pub fn input_len(&self) -> usize {
        self.nodes[0].numel()
    }

    /// Elements per sample of the output.
    pub fn output_len(&self) -> usize {
        self.nodes[self.output].numel()
    }

    pub fn is_classifier(&self) -> bool {
        self.classifier
    }

    /// Seed the synthetic weights were drawn from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Weights, biases, norm parameters and constants.
    pub fn param_count(&self) -> u64 {
        self.nodes
            .iter()
            .flat_map(|n| n.op.params())
            .map(|t| t.numel() as u64)
            .sum()
    }

    pub fn weight_bytes(&self, p: Precision) -> u64 {
        self.param_count().saturating_mul(p.weight_bytes() as u64)
    }

    pub fn flops_per_sample(&self) -> f64 {
        self.op_costs(1).iter().map(|c| c.flops).sum()
    }

    /// FLOPs and bytes (at f32) of every node except the input, at batch `batch`.
    pub fn op_costs(&self, batch: usize) -> Vec<OpCost> {
        let b = batch as f64;
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| !matches!(n.op, Op::Input))
            .map(|(i, n)| {
                let out = n.numel() as f64;
                let in_elems: f64 = n.inputs.iter().map(|&i| self.nodes[i].numel() as f64).sum();
                let params: f64 = n.op.params().iter().map(|t| t.numel() as f64).sum();
                // A constant operand is charged to its reader once per sample,
                // as the elementwise kernels read it again for each sample
                // (weights, by contrast, once per call); reshape is free.
                let (bytes, weight_bytes) = match &n.op {
                    Op::Input | Op::Reshape(_) | Op::Constant(_) => (0.0, 0.0),
                    _ => (4.0 * (b * (in_elems + out) + params), 4.0 * params),
                };
                OpCost {
                    name: n.name.clone(),
                    kind: n.op.kind().to_string(),
                    flops: self.node_flops(i) * b,
                    bytes,
                    weight_bytes,
                    parallelism: crate::cost::Parallelism::Serial,
                    runs_at_f32_peak: false,
                }
            })
            .collect()
    }

    /// FLOPs of node `i` for one sample, a multiply-add counted as 2. Fused
    /// programs add up their nodes' figures, so fusion keeps the total.
    pub(crate) fn node_flops(&self, i: NodeId) -> f64 {
        let n = &self.nodes[i];
        let out = n.numel() as f64;
        let in0 = n
            .inputs
            .first()
            .map(|&i| self.nodes[i].shape.as_slice())
            .unwrap_or(&[]);
        match &n.op {
            Op::Input | Op::Constant(_) | Op::Reshape(_) => 0.0,
            Op::Dense { weight, .. } => 2.0 * weight.shape[0] as f64 * out,
            Op::Conv2d { weight, .. } => {
                let per_out: usize = weight.shape[1..].iter().product();
                2.0 * per_out as f64 * out
            }
            Op::DepthwiseConv2d { weight, .. } => {
                2.0 * (weight.shape[1] * weight.shape[2]) as f64 * out
            }
            Op::PointwiseConv { weight, .. } => 2.0 * weight.shape[1] as f64 * out,
            Op::GlobalAvgPool | Op::MeanPool => in0.iter().product::<usize>() as f64,
            Op::AttentionScores { .. } => {
                // [h, s, s] outputs, each a dot product of length d / h.
                let (s, d) = (in0[0] as f64, in0[1] as f64);
                2.0 * s * s * d
            }
            Op::AttentionContext { .. } => {
                let s = n.shape[0] as f64;
                let d = n.shape[1] as f64;
                2.0 * s * s * d
            }
            _ => out,
        }
    }

    /// Largest sum of live activation tensors (f32) while running node by node,
    /// a value being live from its producer to its last consumer.
    pub fn peak_activation_bytes(&self, batch: usize) -> u64 {
        let n = self.nodes.len();
        let mut last_use: Vec<usize> = (0..n).collect();
        for (i, node) in self.nodes.iter().enumerate() {
            for &inp in &node.inputs {
                last_use[inp] = last_use[inp].max(i);
            }
        }
        last_use[self.output] = n;
        // A value is live over steps `v..=last_use[v]`: added at its producer,
        // dropped after its last consumer (one sweep, not a scan per step).
        let mut dropped_after = vec![0u64; n + 1];
        let (mut live, mut peak) = (0u64, 0u64);
        for step in 0..n {
            if !matches!(self.nodes[step].op, Op::Constant(_)) {
                let elements = self.nodes[step].numel() as u64;
                live = live.saturating_add(elements);
                let end = last_use[step].min(n);
                dropped_after[end] = dropped_after[end].saturating_add(elements);
            }
            peak = peak.max(live);
            live = live.saturating_sub(dropped_after[step]);
        }
        peak.saturating_mul(batch as u64).saturating_mul(4)
    }

    /// Stable 64-bit FNV-1a hash of the structure, shapes, op parameters, the
    /// weight seed and a sample of every weight tensor. Same graph, same value
    /// on every run and Rust version (no `std::hash`).
    pub fn fingerprint(&self) -> u64 {
        let mut h = Fnv::new();
        h.bytes(self.name.as_bytes());
        h.u64(self.seed);
        h.u64(self.output as u64);
        h.u64(self.classifier as u64);
        for n in &self.nodes {
            h.bytes(n.name.as_bytes());
            h.bytes(n.op.kind().as_bytes());
            for &i in &n.inputs {
                h.u64(i as u64);
            }
            for &d in &n.shape {
                h.u64(d as u64);
            }
            match &n.op {
                Op::Scale(s) => h.u64(s.to_bits() as u64),
                Op::LayerNorm { eps, .. } => h.u64(eps.to_bits() as u64),
                Op::Conv2d {
                    stride, padding, ..
                }
                | Op::DepthwiseConv2d {
                    stride, padding, ..
                } => {
                    h.u64(*stride as u64);
                    h.u64(*padding as u64);
                }
                Op::AttentionScores { heads } | Op::AttentionContext { heads } => {
                    h.u64(*heads as u64)
                }
                Op::Reshape(s) => s.iter().for_each(|&d| h.u64(d as u64)),
                _ => {}
            }
            for t in n.op.params() {
                for &d in &t.shape {
                    h.u64(d as u64);
                }
                // A bounded sample keeps this cheap on big models while still
                // telling apart graphs with different weights.
                let step = (t.numel() / 256).max(1);
                for x in t.data.iter().step_by(step) {
                    h.u64(x.to_bits() as u64);
                }
            }
        }
        h.finish()
    }
}

/// 64-bit FNV-1a.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Separator so ("ab","c") and ("a","bc") differ.
        self.0 ^= 0xff;
        self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
    }
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl fmt::Display for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "graph {} ({} nodes)", self.name, self.nodes.len())?;
        for (i, n) in self.nodes.iter().enumerate() {
            let ins: Vec<String> = n.inputs.iter().map(|i| format!("%{i}")).collect();
            writeln!(
                f,
                "  %{i} = {}({}) {:?}  # {}",
                n.op.kind(),
                ins.join(", "),
                n.shape,
                n.name
            )?;
        }
        write!(f, "  output %{}", self.output)
    }
}
