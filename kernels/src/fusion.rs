//! The fusion pass: lowers a graph into a program of fused steps over buffers.
//!
//! - bias add and activation after a dense/conv op become the op's epilogue;
//! - chains of elementwise ops (add, mul, scale, activation, bias add) become
//!   one loop (`R = (A + s*B) * C` reads A, B, C once and writes R once);
//! - dense ops sharing an input whose results only feed attention (Q/K/V) become
//!   one wider matmul; attention reads its operands as column views of the result;
//! - the softmax over attention scores runs in the scores' step, over each
//!   head's scores while they are in cache: no scores buffer of its own;
//! - reshape is free (the buffer is reused).
//!
//! `Display` prints the lowered program so a user can see what was fused.

use std::fmt;
use std::sync::Arc;

use crate::act;
use crate::error::KernelError;
use crate::graph::{Graph, NodeId, Op};
use crate::reference::{ConvGeom, RowView};
use crate::spec::Activation;

/// Index of a buffer in `Lowered::buffers`.
pub type BufId = usize;

/// A buffer of the lowered program: `numel` values per sample, or one constant sample.
#[derive(Debug, Clone)]
pub struct BufferInfo {
    pub name: String,
    pub numel: usize,
    pub constant: Option<Arc<[f32]>>,
}

/// An operand that may be a column window of a wider buffer (Q/K/V after horizontal fusion).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    pub buf: BufId,
    pub rows: RowView,
}

/// Instruction of an elementwise chain, evaluated on a stack.
#[derive(Debug, Clone, PartialEq)]
pub enum ChainOp {
    /// Push input `i` of the chain.
    Load(usize),
    Add,
    Mul,
    Scale(f32),
    Act(Activation),
    /// Add `bias[index % bias.len()]`.
    BiasAdd(Arc<[f32]>),
}

/// One fused step.
#[derive(Debug, Clone)]
pub enum StepKind {
    /// `out[rows, n] = act(x[rows, k] . weight[k, n] + bias)`; `parts` names the
    /// horizontally fused matmuls and their widths.
    Dense {
        x: BufId,
        rows: usize,
        k: usize,
        n: usize,
        weight: Arc<[f32]>,
        bias: Option<Arc<[f32]>>,
        act: Option<Activation>,
        parts: Vec<(String, usize)>,
    },
    Conv2d {
        x: BufId,
        geom: ConvGeom,
        weight: Arc<[f32]>,
        bias: Option<Arc<[f32]>>,
        act: Option<Activation>,
    },
    Depthwise {
        x: BufId,
        geom: ConvGeom,
        weight: Arc<[f32]>,
        bias: Option<Arc<[f32]>>,
        act: Option<Activation>,
    },
    Pointwise {
        x: BufId,
        ic: usize,
        hw: usize,
        oc: usize,
        weight: Arc<[f32]>,
        bias: Option<Arc<[f32]>>,
        act: Option<Activation>,
    },
    Chain {
        inputs: Vec<BufId>,
        program: Vec<ChainOp>,
        len: usize,
    },
    Softmax {
        x: BufId,
        d: usize,
    },
    LayerNorm {
        x: BufId,
        gamma: Arc<[f32]>,
        beta: Arc<[f32]>,
        eps: f32,
    },
    GlobalAvgPool {
        x: BufId,
        c: usize,
        hw: usize,
    },
    MeanPool {
        x: BufId,
        s: usize,
        d: usize,
    },
    /// `q . k^T / sqrt(d / heads)` per head; with `softmax`, the row softmax
    /// too, over each head's scores right after they are computed.
    AttnScores {
        q: View,
        k: View,
        s: usize,
        d: usize,
        heads: usize,
        softmax: bool,
    },
    AttnContext {
        p: BufId,
        v: View,
        s: usize,
        d: usize,
        heads: usize,
    },
}

impl StepKind {
    /// The buffers this step reads (weights excluded).
    pub fn inputs(&self) -> Vec<BufId> {
        match self {
            StepKind::Dense { x, .. }
            | StepKind::Conv2d { x, .. }
            | StepKind::Depthwise { x, .. }
            | StepKind::Pointwise { x, .. }
            | StepKind::Softmax { x, .. }
            | StepKind::LayerNorm { x, .. }
            | StepKind::GlobalAvgPool { x, .. }
            | StepKind::MeanPool { x, .. } => vec![*x],
            StepKind::Chain { inputs, .. } => inputs.clone(),
            StepKind::AttnScores { q, k, .. } => vec![q.buf, k.buf],
            StepKind::AttnContext { p, v, .. } => vec![*p, v.buf],
        }
    }
}

#[derive(Debug, Clone)]
pub struct Step {
    /// Graph nodes this step computes, joined with `+`.
    pub name: String,
    pub kind: StepKind,
    pub out: BufId,
    /// FLOPs per sample of the graph nodes this step computes: fusion moves
    /// work between steps but never changes it.
    pub flops: f64,
}

/// A graph after fusion.
#[derive(Debug, Clone)]
pub struct Lowered {
    pub graph_name: String,
    pub buffers: Vec<BufferInfo>,
    pub steps: Vec<Step>,
    pub input: BufId,
    pub output: BufId,
    /// Graph nodes before fusion (excluding input, constants and reshapes), for the summary.
    pub graph_ops: usize,
}

/// Which fusions to apply (all by default; tests switch them off one by one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FusionOptions {
    pub epilogues: bool,
    pub chains: bool,
    pub horizontal: bool,
}

impl Default for FusionOptions {
    fn default() -> FusionOptions {
        FusionOptions {
            epilogues: true,
            chains: true,
            horizontal: true,
        }
    }
}

impl FusionOptions {
    pub const NONE: FusionOptions = FusionOptions {
        epilogues: false,
        chains: false,
        horizontal: false,
    };
}

fn opt_data(t: &Option<crate::graph::Tensor>) -> Option<Arc<[f32]>> {
    t.as_ref().map(|t| t.data.clone())
}

/// Last absorbed node, bias, activation and the absorbed nodes.
type EpilogueMatch = (NodeId, Option<Arc<[f32]>>, Option<Activation>, Vec<NodeId>);

struct Lowerer<'g> {
    graph: &'g Graph,
    opts: FusionOptions,
    consumers: Vec<Vec<NodeId>>,
    /// Where each lowered node's value lives.
    place: Vec<Option<View>>,
    buffers: Vec<BufferInfo>,
    steps: Vec<Step>,
}

impl<'g> Lowerer<'g> {
    fn new_buffer(&mut self, name: &str, numel: usize, constant: Option<Arc<[f32]>>) -> BufId {
        self.buffers.push(BufferInfo {
            name: name.to_string(),
            numel,
            constant,
        });
        self.buffers.len() - 1
    }

    fn contiguous(&mut self, node: NodeId, buf: BufId) {
        let ld = self.graph.nodes[node].shape.last().copied().unwrap_or(1);
        self.place[node] = Some(View {
            buf,
            rows: RowView { offset: 0, ld },
        });
    }

    /// Buffer of an already lowered node that must be contiguous.
    fn buf(&self, node: NodeId) -> Result<BufId, KernelError> {
        match self.place[node] {
            Some(v) if v.rows.offset == 0 => Ok(v.buf),
            _ => Err(KernelError::Unsupported {
                backend: "fused".into(),
                what: format!(
                    "node {} used before it is lowered",
                    self.graph.nodes[node].name
                ),
            }),
        }
    }

    fn view(&self, node: NodeId) -> Result<View, KernelError> {
        self.place[node].ok_or_else(|| KernelError::Unsupported {
            backend: "fused".into(),
            what: format!(
                "node {} used before it is lowered",
                self.graph.nodes[node].name
            ),
        })
    }

    fn single_consumer(&self, node: NodeId) -> Option<NodeId> {
        match self.consumers[node][..] {
            [c] if node != self.graph.output => Some(c),
            _ => None,
        }
    }

    /// Will this elementwise node be inlined into its consumer's chain?
    fn inlined_later(&self, node: NodeId) -> bool {
        self.opts.chains
            && self
                .single_consumer(node)
                .is_some_and(|c| self.graph.nodes[c].op.is_elementwise())
    }

    /// Follow bias add / activation consumers that can become the epilogue of `node`.
    fn epilogue(&self, node: NodeId, has_bias: bool, bias_len: usize) -> EpilogueMatch {
        let mut last = node;
        let mut bias = None;
        let mut act = None;
        let mut absorbed = Vec::new();
        if !self.opts.epilogues {
            return (last, bias, act, absorbed);
        }
        if let Some(c) = self.single_consumer(last) {
            if let Op::BiasAdd { bias: b } = &self.graph.nodes[c].op {
                if !has_bias && b.numel() == bias_len {
                    bias = Some(b.data.clone());
                    absorbed.push(c);
                    last = c;
                }
            }
        }
        if let Some(c) = self.single_consumer(last) {
            if let Op::Activation(a) = self.graph.nodes[c].op {
                act = Some(a);
                absorbed.push(c);
                last = c;
            }
        }
        (last, bias, act, absorbed)
    }

    fn flops(&self, ids: &[NodeId]) -> f64 {
        ids.iter().map(|&i| self.graph.node_flops(i)).sum()
    }

    fn names(&self, ids: &[NodeId]) -> String {
        ids.iter()
            .map(|&i| self.graph.nodes[i].name.as_str())
            .collect::<Vec<_>>()
            .join("+")
    }

    /// Add a step computing `out_node`; nodes it absorbed are marked done too
    /// (their only consumer is inside the step, so nothing reads them).
    fn emit(&mut self, ids: &[NodeId], kind: StepKind, out_node: NodeId) {
        let numel = self.graph.nodes[out_node].numel();
        let out = self.new_buffer(&self.graph.nodes[out_node].name.clone(), numel, None);
        self.steps.push(Step {
            name: self.names(ids),
            kind,
            out,
            flops: self.flops(ids),
        });
        self.contiguous(out_node, out);
    }

    fn mark_absorbed(&mut self, nodes: &[NodeId], out_node: NodeId) {
        if let Some(v) = self.place[out_node] {
            for &n in nodes {
                self.place[n] = Some(v);
            }
        }
    }

    /// Dense nodes sharing `x` with `first` whose results feed only attention.
    fn horizontal_group(&self, first: NodeId) -> Vec<NodeId> {
        let g = self.graph;
        let feeds_attention_only = |n: NodeId| {
            n != g.output
                && !self.consumers[n].is_empty()
                && self.consumers[n].iter().all(|&c| {
                    matches!(
                        g.nodes[c].op,
                        Op::AttentionScores { .. } | Op::AttentionContext { .. }
                    )
                })
        };
        let x = g.nodes[first].inputs[0];
        if !self.opts.horizontal || !feeds_attention_only(first) {
            return vec![first];
        }
        let mut group = vec![first];
        for &c in &self.consumers[x] {
            if c > first
                && self.place[c].is_none()
                && matches!(g.nodes[c].op, Op::Dense { .. })
                && feeds_attention_only(c)
                && g.nodes[c].shape[..g.nodes[c].shape.len() - 1]
                    == g.nodes[first].shape[..g.nodes[first].shape.len() - 1]
            {
                group.push(c);
            }
        }
        group
    }

    fn lower_dense(&mut self, i: NodeId) -> Result<(), KernelError> {
        let g = self.graph;
        let group = self.horizontal_group(i);
        let x_node = g.nodes[i].inputs[0];
        let x = self.buf(x_node)?;
        let k = g.nodes[x_node].shape.last().copied().unwrap_or(1);
        let rows = g.nodes[x_node].numel() / k.max(1);
        if group.len() == 1 {
            let Op::Dense { weight, bias } = &g.nodes[i].op else {
                return Ok(());
            };
            let n = weight.shape[1];
            let (last, extra_bias, act, absorbed) = self.epilogue(i, bias.is_some(), n);
            let mut ids = vec![i];
            ids.extend(&absorbed);
            let kind = StepKind::Dense {
                x,
                rows,
                k,
                n,
                weight: weight.data.clone(),
                bias: opt_data(bias).or(extra_bias),
                act,
                parts: vec![(g.nodes[i].name.clone(), n)],
            };
            self.emit(&ids, kind, last);
            self.mark_absorbed(&ids, last);
            return Ok(());
        }
        // Horizontal fusion: concatenate the weights column-wise.
        let mut parts = Vec::new();
        let mut total_n = 0;
        for &m in &group {
            if let Op::Dense { weight, .. } = &g.nodes[m].op {
                parts.push((g.nodes[m].name.clone(), weight.shape[1]));
                total_n += weight.shape[1];
            }
        }
        let mut weight = vec![0.0f32; k * total_n];
        let mut bias = vec![0.0f32; total_n];
        let mut any_bias = false;
        let mut offset = 0;
        for &m in &group {
            if let Op::Dense { weight: w, bias: b } = &g.nodes[m].op {
                let n = w.shape[1];
                for p in 0..k {
                    weight[p * total_n + offset..p * total_n + offset + n]
                        .copy_from_slice(&w.data[p * n..(p + 1) * n]);
                }
                if let Some(b) = b {
                    bias[offset..offset + n].copy_from_slice(&b.data);
                    any_bias = true;
                }
                offset += n;
            }
        }
        let out = self.new_buffer(&self.names(&group).replace('+', "|"), rows * total_n, None);
        self.steps.push(Step {
            name: self.names(&group).replace('+', "|"),
            kind: StepKind::Dense {
                x,
                rows,
                k,
                n: total_n,
                weight: weight.into(),
                bias: any_bias.then(|| bias.into()),
                act: None,
                parts,
            },
            out,
            flops: self.flops(&group),
        });
        let mut offset = 0;
        for &m in &group {
            let n = g.nodes[m].shape.last().copied().unwrap_or(0);
            self.place[m] = Some(View {
                buf: out,
                rows: RowView {
                    offset,
                    ld: total_n,
                },
            });
            offset += n;
        }
        Ok(())
    }

    /// Stack program for the chain rooted at `node`; returns the nodes it covers.
    fn chain_expr(
        &self,
        node: NodeId,
        inputs: &mut Vec<BufId>,
        program: &mut Vec<ChainOp>,
        covered: &mut Vec<NodeId>,
    ) -> Result<(), KernelError> {
        let g = self.graph;
        let n = &g.nodes[node];
        for &inp in &n.inputs {
            let inline = self.place[inp].is_none()
                && g.nodes[inp].op.is_elementwise()
                && self.inlined_later(inp);
            if inline {
                self.chain_expr(inp, inputs, program, covered)?;
            } else {
                let b = self.buf(inp)?;
                let slot = match inputs.iter().position(|&x| x == b) {
                    Some(s) => s,
                    None => {
                        inputs.push(b);
                        inputs.len() - 1
                    }
                };
                program.push(ChainOp::Load(slot));
            }
        }
        program.push(match &n.op {
            Op::Add => ChainOp::Add,
            Op::Mul => ChainOp::Mul,
            Op::Scale(s) => ChainOp::Scale(*s),
            Op::Activation(a) => ChainOp::Act(*a),
            Op::BiasAdd { bias } => ChainOp::BiasAdd(bias.data.clone()),
            other => {
                return Err(KernelError::Unsupported {
                    backend: "fused".into(),
                    what: format!("{} inside an elementwise chain", other.kind()),
                })
            }
        });
        covered.push(node);
        Ok(())
    }

    fn lower_node(&mut self, i: NodeId) -> Result<(), KernelError> {
        let g = self.graph;
        let node = &g.nodes[i];
        let in0 = node.inputs.first().copied();
        let in_shape = in0.map(|j| g.nodes[j].shape.clone()).unwrap_or_default();
        match &node.op {
            Op::Input => {
                let b = self.new_buffer("input", node.numel(), None);
                self.contiguous(i, b);
            }
            Op::Constant(t) => {
                let b = self.new_buffer(&node.name, node.numel(), Some(t.data.clone()));
                self.contiguous(i, b);
            }
            Op::Reshape(_) => {
                let b = self.buf(node.inputs[0])?;
                self.contiguous(i, b);
            }
            Op::Dense { .. } => self.lower_dense(i)?,
            Op::Conv2d {
                weight,
                bias,
                stride,
                padding,
            } => {
                let x = self.buf(node.inputs[0])?;
                let geom = crate::backends::naive::conv_geom(
                    &in_shape,
                    &node.shape,
                    weight.shape[2],
                    weight.shape[3],
                    *stride,
                    *padding,
                );
                let (last, _, act, absorbed) = self.epilogue(i, true, 0);
                let kind = StepKind::Conv2d {
                    x,
                    geom,
                    weight: weight.data.clone(),
                    bias: opt_data(bias),
                    act,
                };
                let mut ids = vec![i];
                ids.extend(absorbed);
                self.emit(&ids, kind, last);
                self.mark_absorbed(&ids, last);
            }
            Op::DepthwiseConv2d {
                weight,
                bias,
                stride,
                padding,
            } => {
                let x = self.buf(node.inputs[0])?;
                let geom = crate::backends::naive::conv_geom(
                    &in_shape,
                    &node.shape,
                    weight.shape[1],
                    weight.shape[2],
                    *stride,
                    *padding,
                );
                let (last, _, act, absorbed) = self.epilogue(i, true, 0);
                let kind = StepKind::Depthwise {
                    x,
                    geom,
                    weight: weight.data.clone(),
                    bias: opt_data(bias),
                    act,
                };
                let mut ids = vec![i];
                ids.extend(absorbed);
                self.emit(&ids, kind, last);
                self.mark_absorbed(&ids, last);
            }
            Op::PointwiseConv { weight, bias } => {
                let x = self.buf(node.inputs[0])?;
                let (oc, ic) = (weight.shape[0], weight.shape[1]);
                let (last, _, act, absorbed) = self.epilogue(i, true, 0);
                let kind = StepKind::Pointwise {
                    x,
                    ic,
                    hw: in_shape[1] * in_shape[2],
                    oc,
                    weight: weight.data.clone(),
                    bias: opt_data(bias),
                    act,
                };
                let mut ids = vec![i];
                ids.extend(absorbed);
                self.emit(&ids, kind, last);
                self.mark_absorbed(&ids, last);
            }
            op if op.is_elementwise() => {
                if self.inlined_later(i) {
                    return Ok(()); // lowered with its consumer's chain
                }
                let (mut inputs, mut program, mut covered) = (Vec::new(), Vec::new(), Vec::new());
                if self.opts.chains {
                    self.chain_expr(i, &mut inputs, &mut program, &mut covered)?;
                } else {
                    for (slot, &inp) in node.inputs.iter().enumerate() {
                        inputs.push(self.buf(inp)?);
                        program.push(ChainOp::Load(slot));
                    }
                    self.chain_expr_single(op, &mut program)?;
                    covered.push(i);
                }
                let kind = StepKind::Chain {
                    inputs,
                    program,
                    len: node.numel(),
                };
                self.emit(&covered, kind, i);
            }
            Op::Softmax => {
                let x = self.buf(node.inputs[0])?;
                let d = node.shape.last().copied().unwrap_or(1);
                self.emit(&[i], StepKind::Softmax { x, d }, i);
            }
            Op::LayerNorm { gamma, beta, eps } => {
                let x = self.buf(node.inputs[0])?;
                let kind = StepKind::LayerNorm {
                    x,
                    gamma: gamma.data.clone(),
                    beta: beta.data.clone(),
                    eps: *eps,
                };
                self.emit(&[i], kind, i);
            }
            Op::GlobalAvgPool => {
                let x = self.buf(node.inputs[0])?;
                let kind = StepKind::GlobalAvgPool {
                    x,
                    c: in_shape[0],
                    hw: in_shape[1] * in_shape[2],
                };
                self.emit(&[i], kind, i);
            }
            Op::MeanPool => {
                let x = self.buf(node.inputs[0])?;
                let kind = StepKind::MeanPool {
                    x,
                    s: in_shape[0],
                    d: in_shape[1],
                };
                self.emit(&[i], kind, i);
            }
            Op::AttentionScores { heads } => {
                let (q, k) = (self.view(node.inputs[0])?, self.view(node.inputs[1])?);
                // The softmax as the scores' epilogue: it reads nothing else.
                let softmax = self
                    .single_consumer(i)
                    .filter(|&c| self.opts.epilogues && matches!(g.nodes[c].op, Op::Softmax));
                let kind = StepKind::AttnScores {
                    q,
                    k,
                    s: in_shape[0],
                    d: in_shape[1],
                    heads: *heads,
                    softmax: softmax.is_some(),
                };
                let ids: Vec<NodeId> = std::iter::once(i).chain(softmax).collect();
                let last = softmax.unwrap_or(i);
                self.emit(&ids, kind, last);
                self.mark_absorbed(&ids, last);
            }
            Op::AttentionContext { heads } => {
                let p = self.buf(node.inputs[0])?;
                let v = self.view(node.inputs[1])?;
                let kind = StepKind::AttnContext {
                    p,
                    v,
                    s: node.shape[0],
                    d: node.shape[1],
                    heads: *heads,
                };
                self.emit(&[i], kind, i);
            }
            other => {
                return Err(KernelError::Unsupported {
                    backend: "fused".into(),
                    what: format!("op {}", other.kind()),
                })
            }
        }
        Ok(())
    }

    fn chain_expr_single(&self, op: &Op, program: &mut Vec<ChainOp>) -> Result<(), KernelError> {
        program.push(match op {
            Op::Add => ChainOp::Add,
            Op::Mul => ChainOp::Mul,
            Op::Scale(s) => ChainOp::Scale(*s),
            Op::Activation(a) => ChainOp::Act(*a),
            Op::BiasAdd { bias } => ChainOp::BiasAdd(bias.data.clone()),
            other => {
                return Err(KernelError::Unsupported {
                    backend: "fused".into(),
                    what: format!("{} as an elementwise op", other.kind()),
                })
            }
        });
        Ok(())
    }
}

/// Lower `graph` with all fusions.
pub fn lower(graph: &Graph) -> Result<Lowered, KernelError> {
    lower_with(graph, FusionOptions::default())
}

/// Lower `graph` applying only the fusions enabled in `opts`.
pub fn lower_with(graph: &Graph, opts: FusionOptions) -> Result<Lowered, KernelError> {
    let n = graph.nodes.len();
    let mut consumers = vec![Vec::new(); n];
    for (i, node) in graph.nodes.iter().enumerate() {
        for &inp in &node.inputs {
            if !consumers[inp].contains(&i) {
                consumers[inp].push(i);
            }
        }
    }
    let mut l = Lowerer {
        graph,
        opts,
        consumers,
        place: vec![None; n],
        buffers: Vec::new(),
        steps: Vec::new(),
    };
    for i in 0..n {
        if l.place[i].is_none() {
            l.lower_node(i)?;
        }
    }
    let output = l.buf(graph.output)?;
    let graph_ops = graph
        .nodes
        .iter()
        .filter(|n| !matches!(n.op, Op::Input | Op::Constant(_) | Op::Reshape(_)))
        .count();
    Ok(Lowered {
        graph_name: graph.name.clone(),
        buffers: l.buffers,
        steps: l.steps,
        input: 0,
        output,
        graph_ops,
    })
}

/// Infix form of a chain program, inputs named `x0, x1, ...`.
pub fn chain_to_string(program: &[ChainOp]) -> String {
    let mut stack: Vec<String> = Vec::new();
    for op in program {
        let s = match op {
            ChainOp::Load(i) => format!("x{i}"),
            ChainOp::Add | ChainOp::Mul => {
                let b = stack.pop().unwrap_or_default();
                let a = stack.pop().unwrap_or_default();
                let sym = if matches!(op, ChainOp::Add) { "+" } else { "*" };
                format!("({a} {sym} {b})")
            }
            ChainOp::Scale(s) => format!("{s}*{}", stack.pop().unwrap_or_default()),
            ChainOp::Act(a) => format!("{}({})", act::name(*a), stack.pop().unwrap_or_default()),
            ChainOp::BiasAdd(_) => format!("({} + bias)", stack.pop().unwrap_or_default()),
        };
        stack.push(s);
    }
    stack.pop().unwrap_or_default()
}

fn epi(bias: &Option<Arc<[f32]>>, act: &Option<Activation>) -> String {
    let mut s = String::new();
    if bias.is_some() {
        s.push_str(" +bias");
    }
    if let Some(a) = act {
        s.push_str(&format!(" +{}", act::name(*a)));
    }
    s
}

fn view(v: &View) -> String {
    if v.rows.offset == 0 {
        format!("%{}", v.buf)
    } else {
        format!("%{}[cols {}.., ld {}]", v.buf, v.rows.offset, v.rows.ld)
    }
}

impl fmt::Display for Lowered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "lowered {}: {} graph ops -> {} steps",
            self.graph_name,
            self.graph_ops,
            self.steps.len()
        )?;
        for (i, b) in self.buffers.iter().enumerate() {
            if b.constant.is_some() {
                writeln!(f, "  %{i} = const {} [{}]", b.name, b.numel)?;
            }
        }
        writeln!(
            f,
            "  %{} = input [{}]",
            self.input, self.buffers[self.input].numel
        )?;
        for s in &self.steps {
            let body = match &s.kind {
                StepKind::Dense {
                    x,
                    rows,
                    k,
                    n,
                    bias,
                    act,
                    parts,
                    ..
                } => {
                    let h = if parts.len() > 1 {
                        format!(
                            " horizontal[{}]",
                            parts
                                .iter()
                                .map(|(n, w)| format!("{n}:{w}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    } else {
                        String::new()
                    };
                    format!("matmul(%{x}) {rows}x{k} . {k}x{n}{}{h}", epi(bias, act))
                }
                StepKind::Conv2d {
                    x, geom, bias, act, ..
                } => format!(
                    "conv2d(%{x}) {}x{}x{} -> {}x{}x{} k{}x{} s{} p{}{}",
                    geom.in_c,
                    geom.h,
                    geom.w,
                    geom.out_c,
                    geom.oh,
                    geom.ow,
                    geom.kh,
                    geom.kw,
                    geom.stride,
                    geom.pad,
                    epi(bias, act)
                ),
                StepKind::Depthwise {
                    x, geom, bias, act, ..
                } => format!(
                    "depthwise_conv2d(%{x}) {}x{}x{} -> {}x{} k{}x{} s{}{}",
                    geom.in_c,
                    geom.h,
                    geom.w,
                    geom.oh,
                    geom.ow,
                    geom.kh,
                    geom.kw,
                    geom.stride,
                    epi(bias, act)
                ),
                StepKind::Pointwise {
                    x,
                    ic,
                    hw,
                    oc,
                    bias,
                    act,
                    ..
                } => {
                    format!(
                        "pointwise_conv(%{x}) {ic} -> {oc} over {hw} pixels{}",
                        epi(bias, act)
                    )
                }
                StepKind::Chain {
                    inputs,
                    program,
                    len,
                    ..
                } => {
                    let ins: Vec<String> = inputs
                        .iter()
                        .map(|b| {
                            format!("x{}=%{b}", inputs.iter().position(|x| x == b).unwrap_or(0))
                        })
                        .collect();
                    format!(
                        "loop[{len}] {} where {}",
                        chain_to_string(program),
                        ins.join(", ")
                    )
                }
                StepKind::Softmax { x, d } => format!("softmax(%{x}) rows of {d}"),
                StepKind::LayerNorm { x, gamma, .. } => {
                    format!("layer_norm(%{x}) rows of {}", gamma.len())
                }
                StepKind::GlobalAvgPool { x, c, hw } => format!("global_avg_pool(%{x}) {c} x {hw}"),
                StepKind::MeanPool { x, s, d } => format!("mean_pool(%{x}) {s} x {d}"),
                StepKind::AttnScores {
                    q,
                    k,
                    s,
                    heads,
                    softmax,
                    ..
                } => {
                    format!(
                        "attention_scores({}, {}) {heads} heads, seq {s}{}",
                        view(q),
                        view(k),
                        if *softmax { " +softmax" } else { "" }
                    )
                }
                StepKind::AttnContext { p, v, s, heads, .. } => {
                    format!(
                        "attention_context(%{p}, {}) {heads} heads, seq {s}",
                        view(v)
                    )
                }
            };
            writeln!(f, "  %{} = {body}  # {}", s.out, s.name)?;
        }
        write!(f, "  output %{}", self.output)
    }
}
