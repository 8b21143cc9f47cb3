//! The one error type of the kernels crate.

use thiserror::Error;

/// Everything that can go wrong while building, compiling or running a graph.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum KernelError {
    /// A spec or op parameter is out of range (zero width, heads not dividing d_model, ...).
    #[error("invalid model: {0}")]
    InvalidSpec(String),
    /// Shape inference failed at a node.
    #[error("shape mismatch at node `{node}` ({op}): {detail}")]
    Shape {
        node: String,
        op: &'static str,
        detail: String,
    },
    /// The model would need more memory than the configured limit.
    #[error(
        "model `{model}` needs {} (weights {} + activations {}), over the {} limit",
        fmt_bytes(*needed_bytes), fmt_bytes(*weight_bytes), fmt_bytes(*activation_bytes), fmt_bytes(*limit_bytes)
    )]
    TooLarge {
        model: String,
        needed_bytes: u64,
        weight_bytes: u64,
        activation_bytes: u64,
        limit_bytes: u64,
    },
    /// The input slice passed to `run` has the wrong length.
    #[error("input has {got} elements, expected batch {batch} x {per_sample} = {expected}")]
    InputLength {
        got: usize,
        batch: usize,
        per_sample: usize,
        expected: usize,
    },
    /// Batch size 0 or too large to index.
    #[error("invalid batch size {0}")]
    Batch(usize),
    /// The backend cannot run this graph or these options.
    #[error("backend `{backend}` does not support {what}")]
    Unsupported { backend: String, what: String },
    /// GEMM arguments inconsistent with the slices passed.
    #[error("gemm: {0}")]
    Gemm(String),
}

/// Human-readable byte count (binary units), for error messages.
pub fn fmt_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
