//! Tiled backend: the fusion pass applied, then the Goto/BLIS GEMM (weights
//! packed once at compile time, SIMD micro-kernel chosen at run time, optional
//! threads) for dense, conv (im2col), pointwise and attention, and a direct
//! depthwise kernel.

use crate::backend::{require_f32, Backend, CompileOptions, Executable};
use crate::error::KernelError;
use crate::exec::{narrow_dense_tiles, Engine, LoweredExecutable};
use crate::fusion;
use crate::graph::Graph;
use crate::spec::{BackendKind, Precision};

/// `fusion` selects the fusions applied (all by default; switching them off gives
/// the same kernels run op by op, for measuring what fusion buys).
#[derive(Debug, Clone, Copy, Default)]
pub struct TiledBackend {
    pub fusion: fusion::FusionOptions,
}

impl Backend for TiledBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Tiled
    }

    fn compile(
        &self,
        graph: &Graph,
        opts: &CompileOptions,
    ) -> Result<Box<dyn Executable>, KernelError> {
        require_f32(BackendKind::Tiled, opts)?;
        let simd = opts.resolved_simd()?;
        let tile = opts.resolved_tile(simd)?;
        let lowered = fusion::lower_with(graph, self.fusion)?;
        let step_tiles = narrow_dense_tiles(&lowered, simd, tile);
        let exe = LoweredExecutable::with_step_tiles(
            BackendKind::Tiled,
            lowered,
            Engine::Tiled { simd, tile },
            step_tiles,
        )?;
        Ok(Box::new(TiledExecutable(exe)))
    }
}

pub struct TiledExecutable(LoweredExecutable);

impl Executable for TiledExecutable {
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
