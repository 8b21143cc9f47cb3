//! The backend trait every kernel backend implements, and compile options.

use crate::error::KernelError;
use crate::graph::Graph;
use crate::simd::SimdLevel;
use crate::spec::{BackendKind, Precision};
use crate::tile::TileParams;

/// How to compile a graph.
#[derive(Debug, Clone, PartialEq)]
pub struct CompileOptions {
    pub precision: Precision,
    /// Threads a backend may use (1 = single thread). The tiled GEMMs split
    /// across them (see `TileParams::threads`); other steps run on one thread.
    pub threads: usize,
    /// SIMD level; `None` = `simd::detect()` (honours `WORKBENCH_SIMD`).
    pub simd: Option<SimdLevel>,
    /// GEMM blocking; `None` = `TileParams::for_caches` of this machine's caches
    /// at the resolved SIMD level.
    pub tile: Option<TileParams>,
}

impl Default for CompileOptions {
    fn default() -> CompileOptions {
        CompileOptions {
            precision: Precision::F32,
            threads: 1,
            simd: None,
            tile: None,
        }
    }
}

impl CompileOptions {
    /// The SIMD level to use; an explicitly requested level the CPU lacks is an error.
    pub fn resolved_simd(&self) -> Result<SimdLevel, KernelError> {
        match self.simd {
            None => Ok(crate::simd::detect()),
            Some(level) if level.is_supported() => Ok(level),
            Some(level) => Err(KernelError::Unsupported {
                backend: "tiled".into(),
                what: format!("SIMD level {level} on this CPU"),
            }),
        }
    }

    /// Tile parameters adapted to `simd`, with `threads` from these options.
    pub fn resolved_tile(&self, simd: SimdLevel) -> Result<TileParams, KernelError> {
        let tile = match self.tile {
            Some(t) => t,
            // The blocking of `simd` itself (an AVX2 run on an AVX-512 host gets
            // AVX2's tile and loop order, not AVX-512's adapted).
            None => TileParams::for_caches(crate::tile::CacheSizes::detect(), simd),
        };
        let tile = TileParams {
            threads: self.threads.max(1),
            ..tile
        };
        tile.validate(simd)?;
        Ok(tile)
    }
}

/// A compiler from graphs to executables.
pub trait Backend: Send + Sync {
    fn kind(&self) -> BackendKind;
    fn compile(
        &self,
        graph: &Graph,
        opts: &CompileOptions,
    ) -> Result<Box<dyn Executable>, KernelError>;
}

/// A compiled graph. Buffers are allocated by the first run at the largest
/// batch so far and reused by every later run at that batch or a smaller one
/// (`tests/no_alloc.rs`, `tests/batch_changes.rs`).
pub trait Executable: Send {
    /// Run on `batch` samples laid out one after another; returns `batch * output_len` values.
    fn run(&mut self, input: &[f32], batch: usize) -> Result<&[f32], KernelError>;
    /// The lowered program, printable.
    fn lowered(&self) -> String;
    fn backend(&self) -> BackendKind;
    fn precision(&self) -> Precision;
    /// Bytes of activation buffers held after the last run (weights,
    /// constants and kernel workspaces excluded): what running the model
    /// takes beyond its weights, to compare with
    /// `Graph::peak_activation_bytes`.
    fn activation_bytes(&self) -> usize;
    /// The autotuner's time budget cut its search short, so a compile with
    /// more time may find faster tiles (a measurement of this is provisional).
    fn tuning_cut_short(&self) -> bool {
        false
    }
}

/// The backend of a kind, if this build has it.
pub fn backend_for(kind: BackendKind) -> Option<Box<dyn Backend>> {
    match kind {
        BackendKind::Naive => Some(Box::new(crate::backends::naive::NaiveBackend)),
        BackendKind::Fused => Some(Box::new(crate::backends::fused::FusedBackend::default())),
        BackendKind::Tiled => Some(Box::new(crate::backends::tiled::TiledBackend::default())),
        BackendKind::Quantized => Some(Box::new(
            crate::backends::quantized::QuantizedBackend::default(),
        )),
        BackendKind::Autotuned => Some(Box::new(
            crate::backends::autotuned::AutotunedBackend::default(),
        )),
    }
}

/// Compile `graph` with the backend of `kind`.
pub fn compile(
    graph: &Graph,
    kind: BackendKind,
    opts: &CompileOptions,
) -> Result<Box<dyn Executable>, KernelError> {
    let backend = backend_for(kind).ok_or_else(|| KernelError::Unsupported {
        backend: kind.name().into(),
        what: "this build (backend not available)".into(),
    })?;
    backend.compile(graph, opts)
}

/// Only f32 is implemented by the naive, fused and tiled backends.
pub(crate) fn require_f32(kind: BackendKind, opts: &CompileOptions) -> Result<(), KernelError> {
    if opts.precision != Precision::F32 {
        return Err(KernelError::Unsupported {
            backend: kind.name().into(),
            what: format!(
                "precision {} (accepted: f32; use the quantized backend for f16/bf16/int8)",
                opts.precision
            ),
        });
    }
    Ok(())
}

/// Check `input` against batch and per-sample length.
pub(crate) fn check_input(
    input: &[f32],
    batch: usize,
    per_sample: usize,
) -> Result<(), KernelError> {
    if batch == 0 {
        return Err(KernelError::Batch(batch));
    }
    let expected = batch
        .checked_mul(per_sample)
        .ok_or(KernelError::Batch(batch))?;
    if input.len() != expected {
        return Err(KernelError::InputLength {
            got: input.len(),
            batch,
            per_sample,
            expected,
        });
    }
    Ok(())
}
