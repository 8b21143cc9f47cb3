//! Fused backend: the fusion pass applied, then simple per-step kernels
//! (i-k-j matmul loops with the epilogue fused, elementwise chains in one loop).

use crate::backend::{require_f32, Backend, CompileOptions, Executable};
use crate::error::KernelError;
use crate::exec::{Engine, LoweredExecutable};
use crate::fusion;
use crate::graph::Graph;
use crate::spec::{BackendKind, Precision};

/// `fusion` selects the fusions applied (all by default; switching them off gives
/// the same kernels run op by op, for measuring what fusion buys).
#[derive(Debug, Clone, Copy, Default)]
pub struct FusedBackend {
    pub fusion: fusion::FusionOptions,
}

impl Backend for FusedBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Fused
    }

    fn compile(
        &self,
        graph: &Graph,
        opts: &CompileOptions,
    ) -> Result<Box<dyn Executable>, KernelError> {
        require_f32(BackendKind::Fused, opts)?;
        let lowered = fusion::lower_with(graph, self.fusion)?;
        Ok(Box::new(FusedExecutable(LoweredExecutable::new(
            BackendKind::Fused,
            lowered,
            Engine::Simple,
        )?)))
    }
}

pub struct FusedExecutable(LoweredExecutable);

impl FusedExecutable {
    pub fn lowered_program(&self) -> &fusion::Lowered {
        self.0.lowered_program()
    }
}

impl Executable for FusedExecutable {
    fn run(&mut self, input: &[f32], batch: usize) -> Result<&[f32], KernelError> {
        self.0.run_impl(input, batch)
    }
    fn lowered(&self) -> String {
        self.0.describe()
    }
    fn backend(&self) -> BackendKind {
        self.0.kind()
    }
    fn activation_bytes(&self) -> usize {
        self.0.activation_bytes()
    }
    fn precision(&self) -> Precision {
        self.0.precision()
    }
}
