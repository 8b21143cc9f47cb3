//! Autotuned backend: the tiled backend with its `TileParams` chosen by the
//! autotuner for this graph's GEMM shapes on this machine.
//!
//! Each distinct GEMM shape (dense at a nominal batch, conv and pointwise per
//! sample) is tuned with the cost-model guided search, timing the real tiled
//! `sgemm_with`; every trial goes to the tuning log, so a second compile on
//! the same machine runs no trials. The tiled executor takes one tile for the
//! whole graph, so the graph uses the tuned tile of the shape with the most
//! FLOPs; the tiled default is always among the measured candidates and wins
//! unless a tuned tile measured faster.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use crate::autotune::{
    hardware_fingerprint, tune, Dimension, Params, SearchSpace, TuneBudget, TuneError, TuneKey,
    TuneOptions, TuneProgress, TuningLog,
};
use crate::backend::{Backend, CompileOptions, Executable};
use crate::backends::tiled::TiledBackend;
use crate::error::KernelError;
use crate::gemm::{sgemm_with, BOperand, Epilogue, GemmWorkspace, MatRef, PackedB};
use crate::graph::{Graph, Op};
use crate::simd::SimdLevel;
use crate::spec::{BackendKind, Precision};
use crate::tile::{supported_micro_tiles, TileParams};

fn terr(e: TuneError) -> KernelError {
    KernelError::Gemm(format!("autotune: {e}"))
}

/// The tuning log used when none is given: `$WORKBENCH_CACHE_DIR/tuning.jsonl`,
/// else `.workbench-cache/tuning.jsonl`.
pub fn default_log_path() -> PathBuf {
    let dir = std::env::var_os("WORKBENCH_CACHE_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".workbench-cache"));
    dir.join("tuning.jsonl")
}

/// One GEMM shape of a graph: `C[m x n] = A[m x k] . B[k x n]`, B pre-packed for dense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct GemmShape {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub packed_b: bool,
}

impl GemmShape {
    pub fn flops(&self) -> f64 {
        2.0 * self.m as f64 * self.n as f64 * self.k as f64
    }
}

/// What tuning found for one shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeTuning {
    pub shape: GemmShape,
    pub tile: TileParams,
    pub best_ns: f64,
    pub trials: usize,
    pub from_log: bool,
}

/// Per-shape results and the tile the graph was compiled with.
#[derive(Debug, Clone, PartialEq)]
pub struct TuneSummary {
    pub shapes: Vec<ShapeTuning>,
    pub tile: TileParams,
    pub default_tile: TileParams,
    pub trials: usize,
}

#[derive(Debug, Clone)]
pub struct AutotunedBackend {
    /// `None` = [`default_log_path`].
    pub log_path: Option<PathBuf>,
    /// Per shape.
    pub budget: TuneBudget,
    /// Batch size dense shapes are tuned at.
    pub tune_batch: usize,
    pub seed: u64,
    /// `None` = [`hardware_fingerprint`].
    pub fingerprint: Option<String>,
    /// Timed repetitions per trial (the minimum is kept).
    pub reps: usize,
    /// A tuned tile must beat the default by this fraction after re-measurement.
    pub incumbent_margin: f64,
}

impl Default for AutotunedBackend {
    fn default() -> Self {
        AutotunedBackend {
            log_path: None,
            budget: TuneBudget {
                max_trials: 40,
                max_seconds: Some(20.0),
            },
            tune_batch: 64,
            seed: 1,
            fingerprint: None,
            reps: 3,
            incumbent_margin: 0.02,
        }
    }
}

/// Distinct GEMM shapes of a graph with their total FLOPs per batch.
pub fn gemm_shapes(graph: &Graph, batch: usize) -> BTreeMap<GemmShape, f64> {
    let mut out: BTreeMap<GemmShape, f64> = BTreeMap::new();
    let nodes = graph.nodes();
    for node in nodes {
        let in_len = node
            .inputs
            .first()
            .and_then(|&i| nodes.get(i))
            .map_or(0, |n| n.numel());
        let shape = match &node.op {
            Op::Dense { weight, .. } => {
                let (k, n) = (weight.shape[0], weight.shape[1]);
                Some(GemmShape {
                    m: batch * in_len / k.max(1),
                    n,
                    k,
                    packed_b: true,
                })
            }
            Op::Conv2d { weight, .. } => Some(GemmShape {
                m: weight.shape[0],
                n: node.numel() / weight.shape[0].max(1),
                k: weight.shape[1] * weight.shape[2] * weight.shape[3],
                packed_b: false,
            }),
            Op::PointwiseConv { weight, .. } => Some(GemmShape {
                m: weight.shape[0],
                n: node.numel() / weight.shape[0].max(1),
                k: weight.shape[1],
                packed_b: false,
            }),
            _ => None,
        };
        if let Some(s) = shape.filter(|s| s.m > 0 && s.n > 0 && s.k > 0) {
            let per = if s.packed_b { 1.0 } else { batch as f64 };
            *out.entry(s).or_default() += s.flops() * per;
        }
    }
    out
}

/// The tile search space for a SIMD level, always containing `default`.
pub fn tile_space(simd: SimdLevel, default: &TileParams, threads: usize) -> SearchSpace {
    let with = |mut v: Vec<i64>, d: usize| {
        v.push(d as i64);
        v.sort_unstable();
        v.dedup();
        v
    };
    let tiles = supported_micro_tiles(simd);
    let mut mrs: Vec<i64> = tiles
        .iter()
        .map(|t| t.0 as i64)
        .filter(|m| [2, 4, 6, 8, 12].contains(m))
        .collect();
    mrs = with(mrs, default.mr);
    let nrs: Vec<i64> = with(tiles.iter().map(|t| t.1 as i64).collect(), default.nr);
    let mut thr = vec![1i64];
    if threads > 1 {
        thr.push(threads as i64);
    }
    SearchSpace::new(
        &format!("tile-{}-v1", simd.name()),
        vec![
            Dimension::new("mc", &with(vec![48, 96, 144, 192, 288, 384], default.mc)),
            Dimension::new("nc", &with(vec![256, 512, 1024, 2048, 4096], default.nc)),
            Dimension::new("kc", &with(vec![128, 192, 256, 384, 512], default.kc)),
            Dimension::new("mr", &mrs),
            Dimension::new("nr", &nrs),
            Dimension::new("threads", &thr),
        ],
    )
}

fn tile_of(p: &Params, simd: SimdLevel) -> Option<TileParams> {
    let g = |k: &str| p.get(k).and_then(|v| usize::try_from(*v).ok());
    let t = TileParams {
        mc: g("mc")?,
        nc: g("nc")?,
        kc: g("kc")?,
        mr: g("mr")?,
        nr: g("nr")?,
        threads: g("threads")?,
    };
    t.validate(simd).ok().map(|_| t)
}

fn params_of(t: &TileParams) -> Params {
    [
        ("mc", t.mc),
        ("nc", t.nc),
        ("kc", t.kc),
        ("mr", t.mr),
        ("nr", t.nr),
        ("threads", t.threads),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v as i64))
    .collect()
}

/// Times one GEMM shape with one tile: minimum of `reps` runs after a warm-up, in ns.
pub fn time_gemm(
    shape: GemmShape,
    tile: &TileParams,
    simd: SimdLevel,
    reps: usize,
) -> Result<f64, KernelError> {
    let GemmShape { m, n, k, packed_b } = shape;
    let a: Vec<f32> = (0..m * k).map(|i| ((i % 17) as f32 - 8.0) * 0.01).collect();
    let b: Vec<f32> = (0..k * n).map(|i| ((i % 13) as f32 - 6.0) * 0.01).collect();
    let mut c = vec![0.0f32; m * n];
    let mut ws = GemmWorkspace::new();
    let packed = if packed_b {
        Some(PackedB::pack(
            MatRef::row_major(&b, n),
            k,
            n,
            tile.kc,
            tile.nr,
        )?)
    } else {
        None
    };
    let mut best = f64::INFINITY;
    for rep in 0..=reps.max(1) {
        let operand = match &packed {
            Some(p) => BOperand::Packed(p),
            None => BOperand::Mat(MatRef::row_major(&b, n)),
        };
        let start = Instant::now();
        sgemm_with(
            &mut ws,
            tile,
            simd,
            m,
            n,
            k,
            MatRef::row_major(&a, k),
            operand,
            &mut c,
            n,
            Epilogue::NONE,
        )?;
        let t = start.elapsed().as_nanos() as f64;
        if rep > 0 {
            best = best.min(t);
        }
    }
    std::hint::black_box(&c);
    Ok(best)
}

impl AutotunedBackend {
    /// Tunes the graph's GEMM shapes (or reads them from the log) and compiles
    /// the tiled backend with the chosen tile.
    pub fn compile_tuned(
        &self,
        graph: &Graph,
        opts: &CompileOptions,
        progress: &mut dyn FnMut(&GemmShape, TuneProgress),
    ) -> Result<(AutotunedExecutable, TuneSummary), KernelError> {
        if opts.precision != Precision::F32 {
            return Err(KernelError::Unsupported {
                backend: "autotuned".into(),
                what: format!("precision {} (accepted: f32)", opts.precision),
            });
        }
        let simd = opts.resolved_simd()?;
        let default_tile = opts.resolved_tile(simd)?;
        let space = tile_space(simd, &default_tile, opts.threads.max(1));
        let path = self.log_path.clone().unwrap_or_else(default_log_path);
        let mut log = TuningLog::open(&path).map_err(terr)?;
        let fingerprint = self
            .fingerprint
            .clone()
            .unwrap_or_else(hardware_fingerprint);
        let mut topts = TuneOptions::new(&fingerprint, self.budget.max_trials, self.seed);
        topts.budget = self.budget;
        topts.initial = vec![params_of(&default_tile)];
        topts.incumbent_margin = self.incumbent_margin;
        let mut shapes = Vec::new();
        for (shape, _) in gemm_shapes(graph, self.tune_batch.max(1)) {
            let key = TuneKey {
                op: if shape.packed_b {
                    "sgemm-packed"
                } else {
                    "sgemm"
                }
                .into(),
                shape: vec![shape.m, shape.n, shape.k],
            };
            let mut measure = |p: &Params| -> Result<f64, TuneError> {
                let tile = tile_of(p, simd)
                    .ok_or_else(|| TuneError::Measure(format!("invalid tile {p:?}")))?;
                time_gemm(shape, &tile, simd, self.reps)
                    .map_err(|e| TuneError::Measure(e.to_string()))
            };
            let out = tune(&space, &key, &mut log, &topts, &mut measure, &mut |pr| {
                progress(&shape, pr)
            })
            .map_err(terr)?;
            let tile = tile_of(&out.params, simd).unwrap_or(default_tile);
            shapes.push(ShapeTuning {
                shape,
                tile,
                best_ns: out.best_ns,
                trials: out.trials,
                from_log: out.from_log,
            });
        }
        let flops = gemm_shapes(graph, self.tune_batch.max(1));
        let tile = shapes
            .iter()
            .max_by(|a, b| {
                let fa = flops.get(&a.shape).copied().unwrap_or(0.0);
                let fb = flops.get(&b.shape).copied().unwrap_or(0.0);
                fa.total_cmp(&fb)
            })
            .map_or(default_tile, |s| s.tile);
        let trials = shapes.iter().map(|s| s.trials).sum();
        let tiled_opts = CompileOptions {
            tile: Some(tile),
            ..opts.clone()
        };
        let inner = TiledBackend::default().compile(graph, &tiled_opts)?;
        let summary = TuneSummary {
            shapes,
            tile,
            default_tile,
            trials,
        };
        Ok((
            AutotunedExecutable {
                inner,
                summary: summary.clone(),
            },
            summary,
        ))
    }
}

impl Backend for AutotunedBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Autotuned
    }

    fn compile(
        &self,
        graph: &Graph,
        opts: &CompileOptions,
    ) -> Result<Box<dyn Executable>, KernelError> {
        let (exe, _) = self.compile_tuned(graph, opts, &mut |_, _| {})?;
        Ok(Box::new(exe))
    }
}

pub struct AutotunedExecutable {
    inner: Box<dyn Executable>,
    summary: TuneSummary,
}

impl AutotunedExecutable {
    pub fn summary(&self) -> &TuneSummary {
        &self.summary
    }
}

impl Executable for AutotunedExecutable {
    fn run(&mut self, input: &[f32], batch: usize) -> Result<&[f32], KernelError> {
        self.inner.run(input, batch)
    }

    fn lowered(&self) -> String {
        let t = &self.summary.tile;
        let mut s = format!(
            "autotuned: tile mc {} nc {} kc {} mr {} nr {} threads {} ({} trials; default mc {} nc {} kc {} mr {} nr {})\n",
            t.mc, t.nc, t.kc, t.mr, t.nr, t.threads, self.summary.trials,
            self.summary.default_tile.mc, self.summary.default_tile.nc, self.summary.default_tile.kc,
            self.summary.default_tile.mr, self.summary.default_tile.nr,
        );
        for sh in &self.summary.shapes {
            s.push_str(&format!(
                "  gemm {}x{}x{}: {:.0} ns, {} trials{}\n",
                sh.shape.m,
                sh.shape.n,
                sh.shape.k,
                sh.best_ns,
                sh.trials,
                if sh.from_log { " (from log)" } else { "" }
            ));
        }
        s.push_str(&self.inner.lowered());
        s
    }

    fn backend(&self) -> BackendKind {
        BackendKind::Autotuned
    }

    fn precision(&self) -> Precision {
        Precision::F32
    }
}
