//! One file per backend.

pub mod autotuned;
pub mod fused;
pub mod naive;
pub mod quantized;
pub mod tiled;
