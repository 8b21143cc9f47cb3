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
    /// Bytes read and written (inputs, weights, outputs) at f32.
    pub bytes: f64,
    /// The weights' share of `bytes`: read by every call, so whether the whole
    /// model's weights fit a cache decides where they come from.
    #[serde(default)]
    pub weight_bytes: f64,
}
