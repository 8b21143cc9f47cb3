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
