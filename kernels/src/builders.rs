//! Graph builders for the three model families, with deterministic synthetic
//! weights. They build exactly the layers `ModelSpec::counts` describes
//! (a test pins parameter and FLOP counts together).

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use crate::error::KernelError;
use crate::graph::{Graph, GraphBuilder, NodeId, Op, Tensor};
use crate::spec::{
    Activation, BlockGeometry, ConvBlock, ConvnetSpec, MlpSpec, ModelSpec, TransformerSpec,
};

/// Default ceiling on weights + activations of one sample (f32): 8 GiB.
pub const DEFAULT_MEMORY_LIMIT_BYTES: u64 = 8 << 30;

/// Layer norm epsilon used by the transformer builder.
pub const LAYER_NORM_EPS: f32 = 1e-5;

/// Memory a spec needs at batch 1 in f32: all weights plus the input and output
/// of its largest op. Returns `(weight_bytes, activation_bytes)`.
pub fn spec_memory_bytes(spec: &ModelSpec) -> (u64, u64) {
    let counts = spec.counts();
    let weights = counts.weight_bytes(crate::spec::Precision::F32);
    let activations = counts.max_activation_elems.saturating_mul(2 * 4);
    (weights, activations)
}

fn spec_name(spec: &ModelSpec) -> String {
    match spec {
        ModelSpec::Mlp(m) => {
            let hidden: Vec<String> = m.hidden.iter().map(|h| h.to_string()).collect();
            format!("mlp-{}-[{}]-{}", m.input, hidden.join("x"), m.output)
        }
        ModelSpec::Convnet(c) => format!(
            "convnet-{}x{}x{}-{}blocks-{}",
            c.channels,
            c.height,
            c.width,
            c.blocks.len(),
            c.classes
        ),
        ModelSpec::Transformer(t) => format!(
            "transformer-s{}-d{}-h{}-f{}-l{}-c{}",
            t.seq_len, t.d_model, t.heads, t.ffn, t.layers, t.classes
        ),
    }
}

fn invalid(msg: String) -> KernelError {
    KernelError::InvalidSpec(msg)
}

fn validate(spec: &ModelSpec) -> Result<(), KernelError> {
    match spec {
        ModelSpec::Mlp(m) => {
            if m.input == 0 || m.output == 0 {
                return Err(invalid(format!(
                    "mlp input ({}) and output ({}) must be > 0",
                    m.input, m.output
                )));
            }
            if let Some(i) = m.hidden.iter().position(|&h| h == 0) {
                return Err(invalid(format!("mlp hidden layer {i} has width 0")));
            }
        }
        ModelSpec::Convnet(c) => {
            if c.height == 0 || c.width == 0 || c.channels == 0 {
                return Err(invalid(format!(
                    "convnet input {}x{}x{} must have no zero dimension",
                    c.channels, c.height, c.width
                )));
            }
            if c.classes == 0 {
                return Err(invalid("convnet classes must be > 0".into()));
            }
            for (i, b) in c.blocks.iter().enumerate() {
                let BlockGeometry {
                    out_channels,
                    kernel,
                    stride,
                } = b.geometry();
                if out_channels == 0 || kernel == 0 || stride == 0 {
                    return Err(invalid(format!(
                        "convnet block {i}: out_channels ({out_channels}), kernel ({kernel}) and stride ({stride}) must be > 0"
                    )));
                }
            }
        }
        ModelSpec::Transformer(t) => {
            if t.seq_len == 0 || t.d_model == 0 || t.heads == 0 || t.ffn == 0 || t.layers == 0 {
                return Err(invalid(format!(
                    "transformer seq_len ({}), d_model ({}), heads ({}), ffn ({}) and layers ({}) must be > 0",
                    t.seq_len, t.d_model, t.heads, t.ffn, t.layers
                )));
            }
            if t.d_model % t.heads != 0 {
                return Err(invalid(format!(
                    "transformer d_model {} is not divisible by heads {} (accepted: a divisor of d_model)",
                    t.d_model, t.heads
                )));
            }
        }
    }
    Ok(())
}

/// Draws weights uniformly in +-1/sqrt(fan_in) (keeps activations O(1) through deep stacks).
struct Weights {
    rng: Pcg64,
}

impl Weights {
    fn new(seed: u64) -> Weights {
        Weights {
            rng: Pcg64::seed_from_u64(seed),
        }
    }

    fn uniform(&mut self, shape: Vec<usize>, bound: f32) -> Result<Tensor, KernelError> {
        let n: usize = shape.iter().product();
        let data = (0..n)
            .map(|_| self.rng.random_range(-bound..=bound))
            .collect();
        Tensor::new(shape, data)
    }

    fn weight(&mut self, shape: Vec<usize>, fan_in: usize) -> Result<Tensor, KernelError> {
        self.uniform(shape, 1.0 / (fan_in.max(1) as f32).sqrt())
    }

    fn bias(&mut self, n: usize) -> Result<Tensor, KernelError> {
        self.uniform(vec![n], 0.1)
    }

    fn around_one(&mut self, n: usize) -> Result<Tensor, KernelError> {
        let data = (0..n)
            .map(|_| 1.0 + self.rng.random_range(-0.1f32..=0.1))
            .collect();
        Tensor::new(vec![n], data)
    }
}

impl Graph {
    /// Build the graph a spec describes, with synthetic weights drawn from `seed`.
    /// Refuses (before allocating) models over `DEFAULT_MEMORY_LIMIT_BYTES`.
    pub fn from_spec(spec: &ModelSpec, seed: u64) -> Result<Graph, KernelError> {
        Graph::from_spec_with_limit(spec, seed, DEFAULT_MEMORY_LIMIT_BYTES)
    }

    /// `from_spec` with an explicit memory ceiling in bytes.
    pub fn from_spec_with_limit(
        spec: &ModelSpec,
        seed: u64,
        limit_bytes: u64,
    ) -> Result<Graph, KernelError> {
        validate(spec)?;
        let name = spec_name(spec);
        let (weight_bytes, activation_bytes) = spec_memory_bytes(spec);
        let needed = weight_bytes.saturating_add(activation_bytes);
        if needed > limit_bytes {
            return Err(KernelError::TooLarge {
                model: name,
                needed_bytes: needed,
                weight_bytes,
                activation_bytes,
                limit_bytes,
            });
        }
        let mut w = Weights::new(seed);
        match spec {
            ModelSpec::Mlp(m) => build_mlp(&name, m, &mut w, seed),
            ModelSpec::Convnet(c) => build_convnet(&name, c, &mut w, seed),
            ModelSpec::Transformer(t) => build_transformer(&name, t, &mut w, seed),
        }
    }
}

fn dense(
    g: &mut GraphBuilder,
    w: &mut Weights,
    name: &str,
    x: NodeId,
    outputs: usize,
) -> Result<NodeId, KernelError> {
    let k = g.shape(x).last().copied().unwrap_or(0);
    let op = Op::Dense {
        weight: w.weight(vec![k, outputs], k)?,
        bias: Some(w.bias(outputs)?),
    };
    g.push(name, op, &[x])
}

fn build_mlp(name: &str, m: &MlpSpec, w: &mut Weights, seed: u64) -> Result<Graph, KernelError> {
    let mut g = GraphBuilder::new(name, vec![m.input])?;
    let mut x = g.input();
    for (i, &h) in m.hidden.iter().enumerate() {
        x = dense(&mut g, w, &format!("dense{i}"), x, h)?;
        x = g.push(&format!("act{i}"), Op::Activation(m.activation), &[x])?;
    }
    x = dense(&mut g, w, &format!("dense{}", m.hidden.len()), x, m.output)?;
    g.finish(x, true, seed)
}

fn build_convnet(
    name: &str,
    c: &ConvnetSpec,
    w: &mut Weights,
    seed: u64,
) -> Result<Graph, KernelError> {
    let mut g = GraphBuilder::new(name, vec![c.channels, c.height, c.width])?;
    let mut x = g.input();
    let act = c.activation;
    for (i, block) in c.blocks.iter().enumerate() {
        let ch = g.shape(x)[0];
        match *block {
            ConvBlock::Standard {
                out_channels,
                kernel,
                stride,
            } => {
                let fan_in = ch * kernel * kernel;
                let op = Op::Conv2d {
                    weight: w.weight(vec![out_channels, ch, kernel, kernel], fan_in)?,
                    bias: Some(w.bias(out_channels)?),
                    stride,
                    padding: kernel / 2,
                };
                x = g.push(&format!("block{i}.conv"), op, &[x])?;
                x = g.push(&format!("block{i}.act"), Op::Activation(act), &[x])?;
            }
            ConvBlock::DepthwiseSeparable {
                out_channels,
                kernel,
                stride,
            } => {
                let op = Op::DepthwiseConv2d {
                    weight: w.weight(vec![ch, kernel, kernel], kernel * kernel)?,
                    bias: Some(w.bias(ch)?),
                    stride,
                    padding: kernel / 2,
                };
                x = g.push(&format!("block{i}.dw"), op, &[x])?;
                x = g.push(&format!("block{i}.dw_act"), Op::Activation(act), &[x])?;
                let op = Op::PointwiseConv {
                    weight: w.weight(vec![out_channels, ch], ch)?,
                    bias: Some(w.bias(out_channels)?),
                };
                x = g.push(&format!("block{i}.pw"), op, &[x])?;
                x = g.push(&format!("block{i}.pw_act"), Op::Activation(act), &[x])?;
            }
        }
    }
    x = g.push("pool", Op::GlobalAvgPool, &[x])?;
    x = dense(&mut g, w, "classifier", x, c.classes)?;
    g.finish(x, true, seed)
}

fn build_transformer(
    name: &str,
    t: &TransformerSpec,
    w: &mut Weights,
    seed: u64,
) -> Result<Graph, KernelError> {
    let d = t.d_model;
    let mut g = GraphBuilder::new(name, vec![t.seq_len, d])?;
    let mut x = g.input();
    for l in 0..t.layers {
        let p = format!("layer{l}");
        let q = dense(&mut g, w, &format!("{p}.q"), x, d)?;
        let k = dense(&mut g, w, &format!("{p}.k"), x, d)?;
        let v = dense(&mut g, w, &format!("{p}.v"), x, d)?;
        let s = g.push(
            &format!("{p}.scores"),
            Op::AttentionScores { heads: t.heads },
            &[q, k],
        )?;
        let probs = g.push(&format!("{p}.softmax"), Op::Softmax, &[s])?;
        let ctx = g.push(
            &format!("{p}.context"),
            Op::AttentionContext { heads: t.heads },
            &[probs, v],
        )?;
        let o = dense(&mut g, w, &format!("{p}.out"), ctx, d)?;
        let r1 = g.push(&format!("{p}.residual1"), Op::Add, &[x, o])?;
        let n1 = layer_norm(&mut g, w, &format!("{p}.norm1"), r1, d)?;
        let f1 = dense(&mut g, w, &format!("{p}.ffn1"), n1, t.ffn)?;
        let gelu = g.push(
            &format!("{p}.gelu"),
            Op::Activation(Activation::Gelu),
            &[f1],
        )?;
        let f2 = dense(&mut g, w, &format!("{p}.ffn2"), gelu, d)?;
        let r2 = g.push(&format!("{p}.residual2"), Op::Add, &[n1, f2])?;
        x = layer_norm(&mut g, w, &format!("{p}.norm2"), r2, d)?;
    }
    if t.classes > 0 {
        x = g.push("pool", Op::MeanPool, &[x])?;
        x = dense(&mut g, w, "classifier", x, t.classes)?;
    }
    g.finish(x, t.classes > 0, seed)
}

fn layer_norm(
    g: &mut GraphBuilder,
    w: &mut Weights,
    name: &str,
    x: NodeId,
    d: usize,
) -> Result<NodeId, KernelError> {
    let op = Op::LayerNorm {
        gamma: w.around_one(d)?,
        beta: w.bias(d)?,
        eps: LAYER_NORM_EPS,
    };
    g.push(name, op, &[x])
}
