//! Naive backend: every node run by its reference kernel, one after another,
//! sample by sample. The reference all other backends are tested against.

use crate::backend::{check_input, require_f32, Backend, CompileOptions, Executable};
use crate::error::KernelError;
use crate::graph::{Graph, Op};
use crate::reference::{self as r, ConvGeom, RowView};
use crate::spec::{BackendKind, Precision};

pub struct NaiveBackend;

impl Backend for NaiveBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Naive
    }

    fn compile(
        &self,
        graph: &Graph,
        opts: &CompileOptions,
    ) -> Result<Box<dyn Executable>, KernelError> {
        require_f32(BackendKind::Naive, opts)?;
        Ok(Box::new(NaiveExecutable {
            graph: graph.clone(),
            buffers: Vec::new(),
            batch: 0,
        }))
    }
}

pub struct NaiveExecutable {
    graph: Graph,
    /// One buffer per node: `batch * numel`, except constants (`numel`).
    buffers: Vec<Vec<f32>>,
    batch: usize,
}

/// Geometry of a conv node from its input shape and weight shape.
pub(crate) fn conv_geom(
    in_shape: &[usize],
    out_shape: &[usize],
    kh: usize,
    kw: usize,
    stride: usize,
    pad: usize,
) -> ConvGeom {
    ConvGeom {
        in_c: in_shape[0],
        h: in_shape[1],
        w: in_shape[2],
        out_c: out_shape[0],
        kh,
        kw,
        stride,
        pad,
        oh: out_shape[1],
        ow: out_shape[2],
    }
}

impl NaiveExecutable {
    /// Sizes the buffers for `batch`, within their allocations when a larger
    /// batch ran before (every op writes all of its output).
    fn prepare(&mut self, batch: usize) {
        if self.batch == batch && self.buffers.len() == self.graph.nodes.len() {
            return;
        }
        if self.buffers.len() == self.graph.nodes.len()
            && self.graph.nodes.iter().zip(&self.buffers).all(|(n, buf)| {
                matches!(n.op, Op::Constant(_)) || buf.capacity() >= n.numel() * batch
            })
        {
            for (n, buf) in self.graph.nodes.iter().zip(&mut self.buffers) {
                if !matches!(n.op, Op::Constant(_)) {
                    buf.resize(n.numel() * batch, 0.0);
                }
            }
            self.batch = batch;
            return;
        }
        self.buffers = self
            .graph
            .nodes
            .iter()
            .map(|n| match &n.op {
                Op::Constant(t) => t.data.to_vec(),
                _ => vec![0.0; n.numel() * batch],
            })
            .collect();
        self.batch = batch;
    }
}

/// Sample `s` of a buffer holding `len` elements per sample (constants hold one sample).
fn sample(buf: &[f32], is_const: bool, s: usize, len: usize) -> &[f32] {
    if is_const {
        &buf[..len]
    } else {
        &buf[s * len..(s + 1) * len]
    }
}

/// One op on one sample with the reference kernels: `x(slot)` is the sample
/// of input `slot`. The naive backend and the quantized backend's f32 ops run this.
pub(crate) fn reference_op<'a>(
    op: &Op,
    in_shape: &[usize],
    out_shape: &[usize],
    in_len: &[usize],
    x: impl Fn(usize) -> &'a [f32],
    out: &mut [f32],
) {
    match op {
        Op::Input | Op::Constant(_) => {}
        Op::Dense { weight, bias } => {
            let (k, n) = (weight.shape[0], weight.shape[1]);
            r::dense(
                x(0),
                in_len[0] / k,
                k,
                n,
                &weight.data,
                bias.as_ref().map(|b| &b.data[..]),
                out,
            )
        }
        Op::BiasAdd { bias } => r::bias_add(x(0), &bias.data, out),
        Op::Activation(a) => r::activation(*a, x(0), out),
        Op::Softmax => r::softmax(x(0), out_shape[out_shape.len() - 1], out),
        Op::LayerNorm { gamma, beta, eps } => {
            r::layer_norm(x(0), &gamma.data, &beta.data, *eps, out)
        }
        Op::Conv2d {
            weight,
            bias,
            stride,
            padding,
        } => {
            let g = conv_geom(
                in_shape,
                out_shape,
                weight.shape[2],
                weight.shape[3],
                *stride,
                *padding,
            );
            r::conv2d(
                x(0),
                &g,
                &weight.data,
                bias.as_ref().map(|b| &b.data[..]),
                out,
            )
        }
        Op::DepthwiseConv2d {
            weight,
            bias,
            stride,
            padding,
        } => {
            let g = conv_geom(
                in_shape,
                out_shape,
                weight.shape[1],
                weight.shape[2],
                *stride,
                *padding,
            );
            r::depthwise(
                x(0),
                &g,
                &weight.data,
                bias.as_ref().map(|b| &b.data[..]),
                out,
            )
        }
        Op::PointwiseConv { weight, bias } => {
            let (oc, ic) = (weight.shape[0], weight.shape[1]);
            r::pointwise(
                x(0),
                ic,
                in_len[0] / ic,
                &weight.data,
                oc,
                bias.as_ref().map(|b| &b.data[..]),
                out,
            )
        }
        Op::GlobalAvgPool => r::global_avg_pool(x(0), in_shape[0], in_len[0] / in_shape[0], out),
        Op::MeanPool => r::mean_pool(x(0), in_shape[0], in_shape[1], out),
        Op::Add => r::add(x(0), x(1), out),
        Op::Mul => r::mul(x(0), x(1), out),
        Op::Scale(f) => r::scale(*f, x(0), out),
        Op::Reshape(_) => out.copy_from_slice(x(0)),
        Op::AttentionScores { heads } => {
            let (sq, d) = (in_shape[0], in_shape[1]);
            let view = RowView { offset: 0, ld: d };
            r::attention_scores(x(0), view, x(1), view, sq, d, *heads, out)
        }
        Op::AttentionContext { heads } => {
            let (sq, d) = (out_shape[0], out_shape[1]);
            r::attention_context(x(0), x(1), RowView { offset: 0, ld: d }, sq, d, *heads, out)
        }
    }
}

impl Executable for NaiveExecutable {
    fn run(&mut self, input: &[f32], batch: usize) -> Result<&[f32], KernelError> {
        check_input(input, batch, self.graph.input_len())?;
        self.prepare(batch);
        self.buffers[0].copy_from_slice(input);
        let nodes = &self.graph.nodes;
        for (i, node) in nodes.iter().enumerate().skip(1) {
            if matches!(node.op, Op::Constant(_)) {
                continue;
            }
            let (before, rest) = self.buffers.split_at_mut(i);
            let out_all = &mut rest[0];
            let out_len = node.numel();
            let (in_len, in_const) = self.graph.input_sizes(i);
            for s in 0..batch {
                let x = |slot: usize| {
                    sample(&before[node.inputs[slot]], in_const[slot], s, in_len[slot])
                };
                let out = &mut out_all[s * out_len..(s + 1) * out_len];
                let in_shape = &nodes[node.inputs.first().copied().unwrap_or(0)].shape;
                reference_op(&node.op, in_shape, &node.shape, &in_len, x, out);
            }
        }
        let out_len = self.graph.output_len() * batch;
        Ok(&self.buffers[self.graph.output][..out_len])
    }

    fn lowered(&self) -> String {
        format!("naive (op by op, no fusion)\n{}", self.graph)
    }

    fn backend(&self) -> BackendKind {
        BackendKind::Naive
    }

    fn activation_bytes(&self) -> usize {
        let nodes = &self.graph.nodes;
        nodes
            .iter()
            .zip(&self.buffers)
            .filter(|(n, _)| !matches!(n.op, Op::Constant(_)))
            .map(|(_, b)| std::mem::size_of_val(&b[..]))
            .sum()
    }

    fn precision(&self) -> Precision {
        Precision::F32
    }
}
