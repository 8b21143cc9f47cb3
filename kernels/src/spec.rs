//! Model descriptions the graph builders accept. The scenario parser turns a
//! scenario's `[model]` table into one of these; the kernels crate knows
//! nothing about TOML.

use serde::{Deserialize, Serialize};

/// Elementwise activation after a dense or conv layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Relu,
    Gelu,
    Sigmoid,
    Tanh,
}

/// Multi-layer perceptron: input -> hidden layers (each dense + activation) -> output (dense, no activation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpSpec {
    pub input: usize,
    pub hidden: Vec<usize>,
    pub output: usize,
    pub activation: Activation,
}

/// One block of a convnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConvBlock {
    /// conv2d kernel x kernel, padding kernel/2, then activation.
    Standard {
        out_channels: usize,
        kernel: usize,
        stride: usize,
    },
    /// depthwise kernel x kernel (padding kernel/2) + activation, then pointwise 1x1 + activation.
    DepthwiseSeparable {
        out_channels: usize,
        kernel: usize,
        stride: usize,
    },
}

/// What every kind of block has: its output channels, kernel side and stride.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockGeometry {
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
}

impl ConvBlock {
    /// The block's output channels, kernel and stride, whatever its kind.
    pub fn geometry(&self) -> BlockGeometry {
        let (ConvBlock::Standard {
            out_channels,
            kernel,
            stride,
        }
        | ConvBlock::DepthwiseSeparable {
            out_channels,
            kernel,
            stride,
        }) = *self;
        BlockGeometry {
            out_channels,
            kernel,
            stride,
        }
    }
}

/// Convolutional classifier: NCHW input -> blocks -> global average pool -> dense to `classes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvnetSpec {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub blocks: Vec<ConvBlock>,
    pub classes: usize,
    pub activation: Activation,
}

/// Transformer encoder: `layers` blocks of (multi-head self-attention + residual + layer norm,
/// FFN with GELU + residual + layer norm) over a `seq_len x d_model` input.
/// `classes` > 0 adds mean pooling over the sequence and a dense classifier head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransformerSpec {
    pub seq_len: usize,
    pub d_model: usize,
    pub heads: usize,
    pub ffn: usize,
    pub layers: usize,
    pub classes: usize,
}

/// The three model families a scenario can describe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ModelSpec {
    Mlp(MlpSpec),
    Convnet(ConvnetSpec),
    Transformer(TransformerSpec),
}

/// Kernel backend families. Every backend is checked against `Naive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Naive,
    Fused,
    Tiled,
    Quantized,
    Autotuned,
}

impl BackendKind {
    pub const ALL: [BackendKind; 5] = [
        BackendKind::Naive,
        BackendKind::Fused,
        BackendKind::Tiled,
        BackendKind::Quantized,
        BackendKind::Autotuned,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Naive => "naive",
            BackendKind::Fused => "fused",
            BackendKind::Tiled => "tiled",
            BackendKind::Quantized => "quantized",
            BackendKind::Autotuned => "autotuned",
        }
    }

    pub fn parse(name: &str) -> Option<BackendKind> {
        BackendKind::ALL.into_iter().find(|b| b.name() == name)
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Numeric precision of weights (and, for int8, activations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    F32,
    F16,
    Bf16,
    Int8,
}

impl Precision {
    pub const ALL: [Precision; 4] = [
        Precision::F32,
        Precision::F16,
        Precision::Bf16,
        Precision::Int8,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Bf16 => "bf16",
            Precision::Int8 => "int8",
        }
    }

    pub fn parse(name: &str) -> Option<Precision> {
        Precision::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Bytes used to store one weight.
    pub fn weight_bytes(self) -> usize {
        match self {
            Precision::F32 => 4,
            Precision::F16 | Precision::Bf16 => 2,
            Precision::Int8 => 1,
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Spatial output size of a convolution with padding `kernel / 2`.
pub fn conv_output_size(input: usize, kernel: usize, stride: usize) -> usize {
    let padded = input + 2 * (kernel / 2);
    if padded < kernel || stride == 0 {
        return 0;
    }
    (padded - kernel) / stride + 1
}

/// Sizes derived from a spec without building the graph, so absurd models can
/// be refused before any memory is allocated. All counts saturate instead of
/// overflowing, so a 10^12-wide layer reports a huge number rather than wrapping.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpecCounts {
    /// Weights and biases.
    pub params: u64,
    /// FLOPs for one sample: 2 per multiply-accumulate of dense/conv/attention
    /// matmuls plus one per element for elementwise, normalisation, pooling and softmax ops.
    pub flops_per_sample: f64,
    /// Elements of the largest intermediate tensor for one sample.
    pub max_activation_elems: u64,
    /// Elements of every tensor one sample's call writes: the input and each
    /// node's output as the graph builders lay the model out (the executors
    /// give each node its own buffer, all alive over a call). What measuring
    /// a model holds in activations.
    pub total_activation_elems: f64,
}

impl SpecCounts {
    pub fn weight_bytes(&self, precision: Precision) -> u64 {
        self.params.saturating_mul(precision.weight_bytes() as u64)
    }
}

impl ModelSpec {
    /// Parameter count, FLOPs per sample and largest activation, computed from the spec alone.
    /// The graph builders construct exactly these layers (tests pin the two together).
    pub fn counts(&self) -> SpecCounts {
        match self {
            ModelSpec::Mlp(m) => mlp_counts(m),
            ModelSpec::Convnet(c) => convnet_counts(c),
            ModelSpec::Transformer(t) => transformer_counts(t),
        }
    }

    /// Elements of one input sample.
    pub fn input_len(&self) -> usize {
        match self {
            ModelSpec::Mlp(m) => m.input,
            ModelSpec::Convnet(c) => c.channels.saturating_mul(c.height).saturating_mul(c.width),
            ModelSpec::Transformer(t) => t.seq_len.saturating_mul(t.d_model),
        }
    }

    /// Elements of one output sample.
    pub fn output_len(&self) -> usize {
        match self {
            ModelSpec::Mlp(m) => m.output,
            ModelSpec::Convnet(c) => c.classes,
            ModelSpec::Transformer(t) if t.classes > 0 => t.classes,
            ModelSpec::Transformer(t) => t.seq_len.saturating_mul(t.d_model),
        }
    }

    /// Whether the output is a vector of class scores (accuracy is then top-1 agreement).
    pub fn is_classifier(&self) -> bool {
        match self {
            ModelSpec::Mlp(_) | ModelSpec::Convnet(_) => true,
            ModelSpec::Transformer(t) => t.classes > 0,
        }
    }
}

fn sat(a: u64, b: u64) -> u64 {
    a.saturating_mul(b)
}

/// Running totals while walking the layers of a spec.
#[derive(Default)]
struct Tally {
    params: u64,
    flops: f64,
    max_act: u64,
    total_act: f64,
}

impl Tally {
    /// A dense layer `inputs -> outputs` applied to `rows` rows, with bias.
    fn dense(&mut self, rows: u64, inputs: u64, outputs: u64) {
        self.params = self
            .params
            .saturating_add(sat(inputs, outputs).saturating_add(outputs));
        self.flops += 2.0 * rows as f64 * inputs as f64 * outputs as f64;
        self.tensor(sat(rows, outputs));
    }

    /// An elementwise-like op over `elems` elements writing as many
    /// (activation, add, norm, softmax).
    fn elementwise(&mut self, elems: u64) {
        self.flops += elems as f64;
        self.tensor(elems);
    }

    /// A pool reading `inputs` elements into `outputs`.
    fn pool(&mut self, inputs: u64, outputs: u64) {
        self.flops += inputs as f64;
        self.tensor(outputs);
    }

    /// A tensor of `elems` elements a call writes (or its input).
    fn tensor(&mut self, elems: u64) {
        self.max_act = self.max_act.max(elems);
        self.total_act += elems as f64;
    }

    fn finish(self) -> SpecCounts {
        SpecCounts {
            params: self.params,
            flops_per_sample: self.flops,
            max_activation_elems: self.max_act,
            total_activation_elems: self.total_act,
        }
    }
}

fn mlp_counts(m: &MlpSpec) -> SpecCounts {
    let mut t = Tally::default();
    t.tensor(m.input as u64);
    let mut width = m.input as u64;
    for &h in &m.hidden {
        t.dense(1, width, h as u64);
        t.elementwise(h as u64); // activation
        width = h as u64;
    }
    t.dense(1, width, m.output as u64);
    t.finish()
}

fn convnet_counts(c: &ConvnetSpec) -> SpecCounts {
    let mut t = Tally::default();
    let (mut h, mut w, mut ch) = (c.height as u64, c.width as u64, c.channels as u64);
    t.tensor(sat(sat(h, w), ch));
    for block in &c.blocks {
        match *block {
            ConvBlock::Standard {
                out_channels,
                kernel,
                stride,
            } => {
                let (k, oc) = (kernel as u64, out_channels as u64);
                h = conv_output_size(h as usize, kernel, stride) as u64;
                w = conv_output_size(w as usize, kernel, stride) as u64;
                t.params = t
                    .params
                    .saturating_add(sat(sat(sat(k, k), ch), oc).saturating_add(oc));
                t.flops += 2.0 * (h * w) as f64 * oc as f64 * (k * k) as f64 * ch as f64;
                let out = sat(sat(h, w), oc);
                t.tensor(out); // the convolution
                t.elementwise(out); // its activation
                ch = oc;
            }
            ConvBlock::DepthwiseSeparable {
                out_channels,
                kernel,
                stride,
            } => {
                let (k, oc) = (kernel as u64, out_channels as u64);
                h = conv_output_size(h as usize, kernel, stride) as u64;
                w = conv_output_size(w as usize, kernel, stride) as u64;
                // depthwise k x k, then activation
                t.params = t
                    .params
                    .saturating_add(sat(sat(k, k), ch).saturating_add(ch));
                t.flops += 2.0 * (h * w) as f64 * ch as f64 * (k * k) as f64;
                let dw_out = sat(sat(h, w), ch);
                t.tensor(dw_out);
                t.elementwise(dw_out);
                // pointwise 1x1, then activation
                t.params = t.params.saturating_add(sat(ch, oc).saturating_add(oc));
                t.flops += 2.0 * (h * w) as f64 * ch as f64 * oc as f64;
                let pw_out = sat(sat(h, w), oc);
                t.tensor(pw_out);
                t.elementwise(pw_out);
                ch = oc;
            }
        }
    }
    t.pool(sat(sat(h, w), ch), ch); // global average pool
    t.dense(1, ch, c.classes as u64);
    t.finish()
}

fn transformer_counts(s: &TransformerSpec) -> SpecCounts {
    let mut t = Tally::default();
    let (seq, d, f) = (s.seq_len as u64, s.d_model as u64, s.ffn as u64);
    let tokens = sat(seq, d);
    t.tensor(tokens);
    for _ in 0..s.layers {
        t.dense(seq, d, sat(3, d)); // fused Q/K/V projection (three d x d matrices)
        let scores = sat(sat(s.heads as u64, seq), seq);
        t.flops += 2.0 * seq as f64 * seq as f64 * d as f64; // Q K^T over all heads
        t.tensor(scores);
        t.elementwise(scores); // softmax
        t.flops += 2.0 * seq as f64 * seq as f64 * d as f64; // softmax(QK^T) V
        t.tensor(tokens); // the heads' context
        t.dense(seq, d, d); // output projection
        t.elementwise(tokens); // residual add
        t.elementwise(tokens); // layer norm
        t.params = t.params.saturating_add(sat(2, d)); // layer norm gamma, beta
        t.dense(seq, d, f);
        t.elementwise(sat(seq, f)); // GELU
        t.dense(seq, f, d);
        t.elementwise(tokens); // residual add
        t.elementwise(tokens); // layer norm
        t.params = t.params.saturating_add(sat(2, d));
    }
    if s.classes > 0 {
        t.pool(tokens, d); // mean pool over the sequence
        t.dense(1, d, s.classes as u64);
    }
    t.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocks_geometry_is_its_own_whatever_its_kind() {
        let standard = ConvBlock::Standard {
            out_channels: 32,
            kernel: 3,
            stride: 2,
        };
        let separable = ConvBlock::DepthwiseSeparable {
            out_channels: 64,
            kernel: 5,
            stride: 1,
        };
        assert_eq!(
            standard.geometry(),
            BlockGeometry {
                out_channels: 32,
                kernel: 3,
                stride: 2
            }
        );
        assert_eq!(
            separable.geometry(),
            BlockGeometry {
                out_channels: 64,
                kernel: 5,
                stride: 1
            }
        );
    }

    #[test]
    fn mlp_1024_counts() {
        let spec = ModelSpec::Mlp(MlpSpec {
            input: 1024,
            hidden: vec![1024, 1024],
            output: 10,
            activation: Activation::Relu,
        });
        let c = spec.counts();
        assert_eq!(c.params, 2 * (1024 * 1024 + 1024) + 1024 * 10 + 10);
        let macs = 2.0 * 1024.0 * 1024.0 + 1024.0 * 10.0;
        assert_eq!(c.flops_per_sample, 2.0 * macs + 2048.0);
        assert_eq!(c.weight_bytes(Precision::Int8), c.params);
    }

    #[test]
    fn convnet_224_shapes() {
        assert_eq!(conv_output_size(224, 3, 2), 112);
        assert_eq!(conv_output_size(7, 3, 1), 7);
        assert_eq!(conv_output_size(1, 3, 2), 1);
        let spec = ModelSpec::Convnet(ConvnetSpec {
            height: 224,
            width: 224,
            channels: 3,
            blocks: vec![
                ConvBlock::Standard {
                    out_channels: 32,
                    kernel: 3,
                    stride: 2,
                },
                ConvBlock::DepthwiseSeparable {
                    out_channels: 64,
                    kernel: 3,
                    stride: 1,
                },
            ],
            classes: 10,
            activation: Activation::Relu,
        });
        let c = spec.counts();
        let conv = 3 * 3 * 3 * 32 + 32;
        let dw = 9 * 32 + 32;
        let pw = 32 * 64 + 64;
        let fc = 64 * 10 + 10;
        assert_eq!(c.params, (conv + dw + pw + fc) as u64);
        assert_eq!(c.max_activation_elems, 112 * 112 * 64);
    }

    #[test]
    fn absurd_sizes_saturate_instead_of_overflowing() {
        let spec = ModelSpec::Mlp(MlpSpec {
            input: usize::MAX / 2,
            hidden: vec![usize::MAX / 2],
            output: 10,
            activation: Activation::Relu,
        });
        assert_eq!(spec.counts().params, u64::MAX);
    }
}
