//! One file per backend.

pub mod fused;
pub mod naive;
pub mod quantized;
pub mod tiled;
