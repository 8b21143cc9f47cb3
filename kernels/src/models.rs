//! Fixed reference models other runtimes can be compared on (issue 3), and the
//! elementwise chain `R = (A + s*B) * C` used to show fusion.
//!
//! They return `Result` although the fixed specs are valid: the crate never panics.

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use crate::error::KernelError;
use crate::graph::{Graph, GraphBuilder, Op, Tensor};
use crate::spec::{Activation, ConvBlock, ConvnetSpec, MlpSpec, ModelSpec, TransformerSpec};

/// Scale factor `s` of the elementwise chain.
pub const CHAIN_SCALE: f32 = 0.5;

/// `mlp-1024`: input 1024 -> dense 1024 + ReLU -> dense 1024 + ReLU -> dense 10.
pub fn mlp_1024_spec() -> ModelSpec {
    ModelSpec::Mlp(MlpSpec {
        input: 1024,
        hidden: vec![1024, 1024],
        output: 10,
        activation: Activation::Relu,
    })
}

/// `convnet-224`: 3x224x224 -> conv 3x3/32 stride 2 + ReLU -> depthwise 3x3 + ReLU
/// -> pointwise 64 + ReLU -> global average pool -> dense 10.
pub fn convnet_224_spec() -> ModelSpec {
    ModelSpec::Convnet(ConvnetSpec {
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
    })
}

/// `ds-cnn-small`, the keyword-spotting DS-CNN of Zhang et al. ("Hello Edge",
/// 2017) as the wake-word scenario has it: 49 frames x 10 MFCCs -> conv 3x3/64
/// stride 2 + ReLU -> three depthwise-separable blocks of 64 channels -> global
/// average pool -> dense 12. Its 25x5 feature maps are the narrow case the
/// convolution kernels must not spend on per-row overheads.
pub fn ds_cnn_small_spec() -> ModelSpec {
    let separable = ConvBlock::DepthwiseSeparable {
        out_channels: 64,
        kernel: 3,
        stride: 1,
    };
    ModelSpec::Convnet(ConvnetSpec {
        height: 49,
        width: 10,
        channels: 1,
        blocks: vec![
            ConvBlock::Standard {
                out_channels: 64,
                kernel: 3,
                stride: 2,
            },
            separable,
            separable,
            separable,
        ],
        classes: 12,
        activation: Activation::Relu,
    })
}

/// A small transformer encoder block used by the benches (seq 64, d 256, 4 heads, ffn 1024).
pub fn transformer_block_spec() -> ModelSpec {
    ModelSpec::Transformer(TransformerSpec {
        seq_len: 64,
        d_model: 256,
        heads: 4,
        ffn: 1024,
        layers: 1,
        classes: 10,
    })
}

pub fn mlp_1024(seed: u64) -> Result<Graph, KernelError> {
    let mut g = Graph::from_spec(&mlp_1024_spec(), seed)?;
    g.name = "mlp-1024".into();
    Ok(g)
}

pub fn convnet_224(seed: u64) -> Result<Graph, KernelError> {
    let mut g = Graph::from_spec(&convnet_224_spec(), seed)?;
    g.name = "convnet-224".into();
    Ok(g)
}

pub fn ds_cnn_small(seed: u64) -> Result<Graph, KernelError> {
    let mut g = Graph::from_spec(&ds_cnn_small_spec(), seed)?;
    g.name = "ds-cnn-small".into();
    Ok(g)
}

pub fn transformer_block(seed: u64) -> Result<Graph, KernelError> {
    let mut g = Graph::from_spec(&transformer_block_spec(), seed)?;
    g.name = "transformer-block".into();
    Ok(g)
}

/// `R = (A + s*B) * C` over `len` elements: A is the input, B and C constants
/// drawn from `seed`, s = `CHAIN_SCALE`. Three elementwise ops the fused backend
/// runs as one loop.
pub fn elementwise_chain(len: usize, seed: u64) -> Result<Graph, KernelError> {
    if len == 0 {
        return Err(KernelError::InvalidSpec("chain length must be > 0".into()));
    }
    let mut rng = Pcg64::seed_from_u64(seed);
    let constant = |rng: &mut Pcg64| -> Result<Tensor, KernelError> {
        Tensor::new(
            vec![len],
            (0..len).map(|_| rng.random_range(-1.0f32..=1.0)).collect(),
        )
    };
    let b_data = constant(&mut rng)?;
    let c_data = constant(&mut rng)?;
    let mut g = GraphBuilder::new(&format!("chain-{len}"), vec![len])?;
    let a = g.input();
    let b = g.push("b", Op::Constant(b_data), &[])?;
    let c = g.push("c", Op::Constant(c_data), &[])?;
    let sb = g.push("scale", Op::Scale(CHAIN_SCALE), &[b])?;
    let sum = g.push("add", Op::Add, &[a, sb])?;
    let r = g.push("mul", Op::Mul, &[sum, c])?;
    g.finish(r, false, seed)
}

/// The input the benchmarks and A/B examples feed `graph` at `batch`: a fixed
/// ramp in [-1, 1], so every run and every tool times the same data.
pub fn reference_input(graph: &Graph, batch: usize) -> Vec<f32> {
    (0..graph.input_len() * batch)
        .map(|i| ((i % 13) as f32 - 6.0) / 6.0)
        .collect()
}

/// A single dense layer `[n] x [n, n]` applied to `n` rows per sample: one n x n x n sgemm.
pub fn sgemm_graph(m: usize, k: usize, n: usize, seed: u64) -> Result<Graph, KernelError> {
    let mut rng = Pcg64::seed_from_u64(seed);
    let bound = 1.0 / (k.max(1) as f32).sqrt();
    let data = (0..k * n)
        .map(|_| rng.random_range(-bound..=bound))
        .collect();
    let weight = Tensor::new(vec![k, n], data)?;
    let mut g = GraphBuilder::new(&format!("sgemm-{m}x{k}x{n}"), vec![m, k])?;
    let x = g.input();
    let y = g.push("matmul", Op::Dense { weight, bias: None }, &[x])?;
    g.finish(y, false, seed)
}

/// Dense + bias + ReLU as separate ops (what the fused backend folds into one GEMM epilogue).
pub fn dense_bias_relu_graph(
    m: usize,
    k: usize,
    n: usize,
    seed: u64,
) -> Result<Graph, KernelError> {
    let mut rng = Pcg64::seed_from_u64(seed);
    let bound = 1.0 / (k.max(1) as f32).sqrt();
    let data = (0..k * n)
        .map(|_| rng.random_range(-bound..=bound))
        .collect();
    let weight = Tensor::new(vec![k, n], data)?;
    let bias = Tensor::new(
        vec![n],
        (0..n).map(|_| rng.random_range(-0.1f32..=0.1)).collect(),
    )?;
    let mut g = GraphBuilder::new(&format!("dense-bias-relu-{m}x{k}x{n}"), vec![m, k])?;
    let x = g.input();
    let y = g.push("matmul", Op::Dense { weight, bias: None }, &[x])?;
    let y = g.push("bias", Op::BiasAdd { bias }, &[y])?;
    let y = g.push("relu", Op::Activation(Activation::Relu), &[y])?;
    g.finish(y, false, seed)
}
