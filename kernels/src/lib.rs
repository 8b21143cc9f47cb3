//! workbench-kernels: the graph IR, optimisation passes and kernel backends
//! that compile a model and run it on this machine.
//!
//! This crate is the only place in the workspace where `unsafe` and SIMD are
//! allowed; every `unsafe` block carries a SAFETY comment.

pub mod autotune;
pub mod cost;
pub mod quant;
pub mod spec;

pub use cost::OpCost;

pub use spec::{
    conv_output_size, Activation, BackendKind, ConvBlock, ConvnetSpec, MlpSpec, ModelSpec,
    Precision, SpecCounts, TransformerSpec,
};
