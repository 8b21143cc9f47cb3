//! Post-training quantization: int8 (u8 activations x s8 weights, i32
//! accumulation) and f16/bf16 weight storage with f32 accumulation.
//!
//! - [`calibrate`]: activation ranges from sample inputs (min-max or
//!   percentile), per-tensor u8 scale + zero point, per-channel symmetric s8
//!   weight scales, requantize/dequantize.
//! - [`int8`]: the u8 x s8 -> i32 GEMM with zero-point compensation
//!   (AVX-512 VNNI, AVX2 widening `vpmaddwd`, portable), weights pre-packed.
//! - [`pointwise`]: the int8 pointwise conv with pixels in the vector lanes
//!   (VNNI), reading and writing channel planes without transposes.
//! - [`half_gemm`]: GEMV/GEMM over f16/bf16 (or f32) weight panels converted
//!   on the fly, for memory-bound batch-1 work.

pub mod accuracy;
pub mod calibrate;
pub mod half_gemm;
pub mod int8;
pub mod pointwise;
pub(crate) mod split;

pub use calibrate::{
    dequantize_i32, quantize_weights_per_channel, requantize, ActivationQuant, CalibrationMethod,
    Calibrator, QuantizedWeights,
};
pub use half_gemm::{HalfPath, PackedPanelWeights, WeightStorage};
pub use int8::{
    gemm_u8s8_f32, gemm_u8s8_i32, gemm_u8s8_u8, Int8Epilogue, Int8Path, PackedWeightsS8,
};

/// Errors of the quantization maths and the int8 / half GEMMs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuantError {
    #[error("buffer `{name}` has {actual} elements, needs at least {needed}")]
    BufferTooSmall {
        name: &'static str,
        needed: usize,
        actual: usize,
    },
    #[error("leading dimension `{name}` = {value} is smaller than {min}")]
    BadStride {
        name: &'static str,
        value: usize,
        min: usize,
    },
    #[error("reduction length k = {k} exceeds {max}: the i32 accumulator could overflow")]
    ReductionTooLong { k: usize, max: usize },
    #[error("int8 path `{0}` is not supported on this CPU")]
    UnsupportedPath(&'static str),
    #[error("calibration saw no finite values")]
    EmptyCalibration,
    #[error("percentile {0} is outside (50, 100]")]
    BadPercentile(f64),
    #[error("weights and packing disagree: {0}")]
    Mismatch(String),
}

/// Reads `WORKBENCH_SIMD` (portable | avx2 | avx512): forces a SIMD level for tests.
/// Unknown values are ignored (detection decides).
pub(crate) fn simd_override() -> Option<String> {
    std::env::var("WORKBENCH_SIMD")
        .ok()
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
}
