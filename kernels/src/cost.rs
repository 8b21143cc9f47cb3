//! Work and traffic of one op, used by the roofline projection.

use serde::{Deserialize, Serialize};

/// FLOPs and bytes moved by one op of a compiled graph at a given batch size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpCost {
    /// Node name in the graph (e.g. `dense0`, `block1.dw`).
    pub name: String,
    /// Op kind (e.g. `matmul`, `conv2d`, `softmax`).
    pub kind: String,
    /// Floating-point (or integer) operations, counting a multiply-add as 2.
    pub flops: f64,
    /// Bytes read and written (inputs, weights, outputs), each tensor at the
    /// width it is stored at: f32 for the graph's own costs and the f32
    /// backends; the quantized backend's weights at their precision.
    pub bytes: f64,
    /// The weights' share of `bytes`: read by every call, so whether the whole
    /// model's weights fit a cache decides where they come from.
    #[serde(default)]
    pub weight_bytes: f64,
    /// How the backend spreads the op over threads.
    #[serde(default)]
    pub parallelism: Parallelism,
    /// An int8 program's f32 step (attention, GELU, softmax, norms, the f32
    /// stem and depthwise convs): it runs at the f32 peak, not the int8 one,
    /// here and on a target, whatever the two peaks' ratio on each machine.
    #[serde(default)]
    pub runs_at_f32_peak: bool,
}

/// How a backend runs one op on a machine with several cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parallelism {
    /// Split over the cores when worth it, with one fork and join per call
    /// (a GEMM over the whole batch, attention's (sample, head) products).
    #[default]
    PerCall,
    /// Split the same way one sample at a time: a fork and join per sample
    /// (the tiled engine's convolutions).
    PerSample,
    /// Always on one thread.
    Serial,
    /// As [`Parallelism::PerCall`], in two passes each split with its own
    /// fork and join (an int8 GEMM's f32 input quantized, then the GEMM).
    TwicePerCall,
    /// As [`Parallelism::PerSample`], in two passes each split with its own
    /// fork and join (a conv's input copied into its layout, then the conv).
    TwicePerSample,
}

impl Parallelism {
    /// Forks and joins the op pays at `batch` when split; `None`: it never splits.
    pub fn forks(self, batch: usize) -> Option<f64> {
        match self {
            Parallelism::PerCall => Some(1.0),
            Parallelism::PerSample => Some(batch.max(1) as f64),
            Parallelism::TwicePerCall => Some(2.0),
            Parallelism::TwicePerSample => Some(2.0 * batch.max(1) as f64),
            Parallelism::Serial => None,
        }
    }
}
