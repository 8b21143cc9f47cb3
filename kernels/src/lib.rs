//! workbench-kernels: the graph IR, optimisation passes and kernel backends
//! that compile a model and run it on this machine.
//!
//! This crate is the only place in the workspace where `unsafe` and SIMD are
//! allowed; every `unsafe` block carries a SAFETY comment.

pub mod act;
pub mod autotune;
pub mod backend;
pub mod backends;
pub mod builders;
pub(crate) mod chain;
pub(crate) mod conv;
pub mod cost;
pub mod error;
pub(crate) mod exec;
pub mod fusion;
pub mod gemm;
pub mod graph;
pub(crate) mod liveness;
pub mod models;
pub mod pages;
pub(crate) mod pool;
pub(crate) mod pooled;
pub mod probe;
pub mod quant;
pub mod reference;
pub(crate) mod rowops;
pub mod simd;
pub mod sparse;
pub mod spec;
pub mod step_cost;
pub(crate) mod stream;
pub mod tile;
pub(crate) mod transpose;

pub use backend::{backend_for, compile, Backend, CompileOptions, Executable};
pub use cost::OpCost;
pub use error::KernelError;
pub use gemm::{
    sgemm, sgemm_with, BOperand, Bias, Epilogue, GatherB, GemmWorkspace, MatRef, PackedB,
};
pub use graph::{DType, Graph, GraphBuilder, Node, NodeId, Op, Tensor};
pub use quant::accuracy;
pub use simd::SimdLevel;
pub use step_cost::{executed_costs, ExecutedProgram};
pub use tile::TileParams;

pub use spec::{
    conv_output_size, Activation, BackendKind, BlockGeometry, ConvBlock, ConvnetSpec, MlpSpec,
    ModelSpec, Precision, SpecCounts, TransformerSpec,
};

/// A hash of this build's kernel sources: timings measured with other kernels
/// (an older or newer build) are not this build's, so caches key on it.
pub const SOURCE_ID: &str = env!("WORKBENCH_KERNELS_SOURCE_ID");
