//! Autotuned backend: the tiled backend's lowered program with a `TileParams`
//! chosen by the autotuner for each GEMM step, keyed by its shape.
//!
//! Each distinct GEMM shape of the lowered program (dense at a nominal batch,
//! conv and pointwise per sample) is tuned with the cost-model guided search,
//! timing the real tiled `sgemm_with`; every trial goes to the tuning log, so
//! a second compile on the same machine runs no trials. Every GEMM step then
//! runs with the tile tuned for its own shape. The tiled default is always
//! among the re-measured finalists and is kept unless a tuned tile beat it by
//! the margin, so a shape tuning cannot improve keeps the default.

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use crate::autotune::bench::{time_gemm, GemmBench};
use crate::autotune::log::{RecordKind, LOG_VERSION};
use crate::autotune::{
    hardware_fingerprint, tune, Dimension, Params, SearchSpace, TuneBudget, TuneError, TuneKey,
    TuneOptions, TuneProgress, TuningLog,
};
use crate::backend::{Backend, CompileOptions, Executable};
use crate::error::KernelError;
use crate::exec::{Engine, LoweredExecutable};
use crate::fusion::{self, Lowered, StepKind};
use crate::graph::Graph;
use crate::simd::SimdLevel;
use crate::spec::{BackendKind, Precision};
use crate::tile::{
    a_in_place_supported, supported_k_splits, supported_micro_tiles, LoopOrder, TileParams,
    K_SPLIT_MAX_ROWS,
};

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
    /// What the tiled backend runs this shape with (the tile to beat).
    pub incumbent: TileParams,
    pub best_ns: f64,
    pub trials: usize,
    pub from_log: bool,
    /// The tuning's time budget cut it short: the best so far, which the
    /// next compile of this shape resumes searching from.
    pub provisional: bool,
}

/// Per-shape results; each GEMM step runs with the tile of its shape.
#[derive(Debug, Clone, PartialEq)]
pub struct TuneSummary {
    pub shapes: Vec<ShapeTuning>,
    /// The tile of the shape with the most FLOPs (what one tile for the whole
    /// graph would have been).
    pub tile: TileParams,
    pub default_tile: TileParams,
    /// Search trials run by this compile (0 when everything came from the log).
    pub trials: usize,
    /// Search trials the tuning log holds for this graph's shapes on this
    /// machine: the search effort behind the tiles, also when reused.
    pub logged_trials: usize,
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
    /// `None` = [`hardware_fingerprint`] with this build's kernel [`crate::SOURCE_ID`].
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
            reps: 5,
            incumbent_margin: 0.03,
        }
    }
}

/// The GEMM a lowered step runs, with dense rows at `batch` (conv and
/// pointwise run one GEMM per sample); `None` for non-GEMM steps and for
/// attention (its per-head GEMMs keep the default tile).
/// The GEMM shape step `si` runs at `simd`, if it runs as one (steps the tiled
/// engine computes another way keep the default tile: their timing is not this shape's).
/// `readers` are the steps' `exec::sole_readers`.
fn step_shape(
    lowered: &Lowered,
    readers: &[Option<usize>],
    si: usize,
    batch: usize,
    simd: SimdLevel,
) -> Option<GemmShape> {
    if !crate::exec::step_runs_as_gemm(lowered, readers, si, simd) {
        return None;
    }
    let shape = match &lowered.steps[si].kind {
        StepKind::Dense { rows, k, n, .. } => GemmShape {
            m: batch * rows,
            n: *n,
            k: *k,
            packed_b: true,
        },
        StepKind::Conv2d { geom, .. } => GemmShape {
            m: geom.out_c,
            n: geom.oh * geom.ow,
            k: geom.in_c * geom.kh * geom.kw,
            packed_b: false,
        },
        StepKind::Pointwise { ic, hw, oc, .. } => GemmShape {
            m: *oc,
            n: *hw,
            k: *ic,
            packed_b: false,
        },
        _ => return None,
    };
    Some(shape).filter(|s| s.m > 0 && s.n > 0 && s.k > 0)
}

fn lowered_shapes(lowered: &Lowered, batch: usize, simd: SimdLevel) -> BTreeMap<GemmShape, f64> {
    let mut out: BTreeMap<GemmShape, f64> = BTreeMap::new();
    let readers = crate::exec::sole_readers(lowered);
    for si in 0..lowered.steps.len() {
        if let Some(s) = step_shape(lowered, &readers, si, batch, simd) {
            let per = if s.packed_b { 1.0 } else { batch as f64 };
            *out.entry(s).or_default() += s.flops() * per;
        }
    }
    out
}

/// Distinct GEMM shapes of a graph's lowered (fused) program at `simd` with their
/// total FLOPs per batch: the shapes the autotuned backend tunes.
pub fn gemm_shapes(graph: &Graph, batch: usize, simd: SimdLevel) -> BTreeMap<GemmShape, f64> {
    fusion::lower_with(graph, fusion::FusionOptions::default())
        .map(|l| lowered_shapes(&l, batch, simd))
        .unwrap_or_default()
}

/// The tuning-log key of a GEMM shape.
pub fn tune_key(shape: &GemmShape) -> TuneKey {
    TuneKey {
        op: if shape.packed_b {
            "sgemm-packed"
        } else {
            "sgemm"
        }
        .into(),
        shape: vec![shape.m, shape.n, shape.k],
    }
}

/// The tile the tiled backend runs a shape with: `default`, narrowed for dense
/// layers only a few columns wide (see `TileParams::narrowed_for_columns`).
/// The incumbent the tuner must beat.
pub fn shape_default(shape: &GemmShape, simd: SimdLevel, default: &TileParams) -> TileParams {
    if shape.packed_b {
        default.narrowed_for_columns(simd, shape.n)
    } else {
        *default
    }
}

/// The tile search space for a SIMD level, always containing `default`:
/// blocking (mc, nc, kc; kc 1024 is one K slice for every benchmark K),
/// register tile (mr, nr), loop order, K-split accumulators, A and B read in
/// place or packed, and threads.
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
        .filter(|m| [4, 6, 8, 10, 12, 14].contains(m))
        .collect();
    mrs.dedup();
    mrs = with(mrs, default.mr);
    let mut nrs: Vec<i64> = with(tiles.iter().map(|t| t.1 as i64).collect(), default.nr);
    let mut mcs = with(vec![48, 96, 144, 192, 288, 384], default.mc);
    let mut ncs = with(vec![256, 512, 1024, 2048, 4096], default.nc);
    // The narrowed tiles of narrow dense layers (each shape's incumbent), so
    // the space is the same for every shape.
    for &(_, nr) in &tiles {
        let t = default.narrowed_for_columns(simd, nr);
        mrs = with(mrs, t.mr);
        nrs = with(nrs, t.nr);
        mcs = with(mcs, t.mc);
        ncs = with(ncs, t.nc);
    }
    let mut thr = vec![1i64];
    if threads > 1 {
        thr.push(threads as i64);
    }
    let orders: Vec<i64> = LoopOrder::ALL.iter().map(|o| o.index() as i64).collect();
    let splits: Vec<i64> = with(
        supported_k_splits(simd).iter().map(|&k| k as i64).collect(),
        default.k_split,
    );
    let adirect: Vec<i64> = if a_in_place_supported(simd) {
        vec![0, 1]
    } else {
        vec![0]
    };
    // A space with a second thread is another space: a log tuned on one
    // thread (which never tried two) must not answer a two-thread compile.
    let name = if threads > 1 {
        format!("tile-{}-v2-t{threads}", simd.name())
    } else {
        format!("tile-{}-v2", simd.name())
    };
    SearchSpace::new(
        &name,
        vec![
            Dimension::new("mc", &mcs),
            Dimension::new("nc", &ncs),
            Dimension::new(
                "kc",
                &with(vec![128, 192, 256, 384, 512, 768, 1024], default.kc),
            ),
            Dimension::new("mr", &mrs),
            Dimension::new("nr", &nrs),
            Dimension::new("threads", &thr),
            Dimension::new("order", &orders),
            Dimension::new("ksplit", &splits),
            Dimension::new("bdirect", &[0, 1]),
            Dimension::new("adirect", &adirect),
        ],
    )
}

/// The tile of a configuration. `order`, `ksplit`, `bdirect` and `adirect` default to the plain
/// schedule when absent (parameters logged before they existed).
fn tile_of(p: &Params, simd: SimdLevel) -> Option<TileParams> {
    let g = |k: &str| p.get(k).and_then(|v| usize::try_from(*v).ok());
    let t = TileParams {
        mc: g("mc")?,
        nc: g("nc")?,
        kc: g("kc")?,
        mr: g("mr")?,
        nr: g("nr")?,
        threads: g("threads")?,
        loop_order: LoopOrder::from_index(g("order").unwrap_or(0))?,
        k_split: g("ksplit").unwrap_or(1),
        b_in_place: g("bdirect").unwrap_or(0) == 1,
        a_in_place: g("adirect").unwrap_or(0) == 1,
        skip_zeros: true,
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
        ("order", t.loop_order.index()),
        ("ksplit", t.k_split),
        ("bdirect", usize::from(t.b_in_place)),
        ("adirect", usize::from(t.a_in_place)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v as i64))
    .collect()
}

/// The incumbent first, then it with one schedule choice changed (loop order,
/// each K split, A in place, B in place, one K slice): the search measures what each knob does to
/// this shape before the cost model proposes anything.
fn seed_tiles(simd: SimdLevel, incumbent: &TileParams, shape: &GemmShape) -> Vec<TileParams> {
    let mut out = vec![*incumbent];
    let flip = match incumbent.loop_order {
        LoopOrder::ColumnsOuter => LoopOrder::RowsOuter,
        LoopOrder::RowsOuter => LoopOrder::ColumnsOuter,
    };
    out.push(TileParams {
        loop_order: flip,
        ..*incumbent
    });
    // K splits only change tiles of at most K_SPLIT_MAX_ROWS rows.
    if shape.m <= K_SPLIT_MAX_ROWS {
        for &k_split in supported_k_splits(simd) {
            out.push(TileParams {
                k_split,
                ..*incumbent
            });
        }
    }
    if a_in_place_supported(simd) {
        out.push(TileParams {
            a_in_place: !incumbent.a_in_place,
            ..*incumbent
        });
    }
    // Reading B in place only applies to a B that is not pre-packed.
    if !shape.packed_b {
        out.push(TileParams {
            b_in_place: !incumbent.b_in_place,
            ..*incumbent
        });
    }
    if shape.k > incumbent.kc && shape.k <= 1024 {
        out.push(TileParams {
            kc: 1024,
            ..*incumbent
        });
    }
    let mut unique: Vec<TileParams> = Vec::new();
    for t in out {
        if !unique.contains(&t) {
            unique.push(t);
        }
    }
    unique
}

impl AutotunedBackend {
    /// The tuning log's machine key: the hardware and this build's kernels (a
    /// tile measured with other kernels is retuned, not reused).
    fn fingerprint(&self) -> String {
        self.fingerprint
            .clone()
            .unwrap_or_else(|| format!("{} kernels {}", hardware_fingerprint(), crate::SOURCE_ID))
    }

    fn tune_options(&self, seeds: &[TileParams]) -> TuneOptions {
        let mut topts = TuneOptions::new(&self.fingerprint(), self.budget.max_trials, self.seed);
        topts.budget = self.budget;
        topts.initial = seeds.iter().map(params_of).collect();
        topts.incumbent_margin = self.incumbent_margin;
        topts
    }

    /// Tunes one GEMM shape (or reads it from `log`): the tile the tiled
    /// backend runs it with ([`shape_default`] of `default_tile`) is the
    /// incumbent and is kept unless a tuned tile beats it after re-measurement.
    pub fn tune_shape(
        &self,
        shape: GemmShape,
        simd: SimdLevel,
        default_tile: &TileParams,
        threads: usize,
        log: &mut TuningLog,
        progress: &mut dyn FnMut(TuneProgress),
    ) -> Result<ShapeTuning, KernelError> {
        let incumbent = shape_default(&shape, simd, default_tile);
        let space = tile_space(simd, default_tile, threads.max(1));
        let topts = self.tune_options(&seed_tiles(simd, &incumbent, &shape));
        let mut bench = GemmBench::new(shape);
        let mut measure = |p: &Params| -> Result<f64, TuneError> {
            let tile = tile_of(p, simd)
                .ok_or_else(|| TuneError::Measure(format!("invalid tile {p:?}")))?;
            bench
                .time(&tile, simd, self.reps)
                .map_err(|e| TuneError::Measure(e.to_string()))
        };
        let out = tune(
            &space,
            &tune_key(&shape),
            log,
            &topts,
            &mut measure,
            progress,
        )
        .map_err(terr)?;
        Ok(ShapeTuning {
            shape,
            tile: tile_of(&out.params, simd).unwrap_or(incumbent),
            incumbent,
            best_ns: out.best_ns,
            trials: out.trials,
            from_log: out.from_log,
            provisional: out.provisional,
        })
    }

    /// Search trials the log at `log` holds for `graph`'s GEMM shapes on this
    /// machine (what `workbench bench` reports next to an autotuned timing).
    /// Runs nothing; a missing log counts as empty.
    pub fn logged_trials(
        &self,
        graph: &Graph,
        opts: &CompileOptions,
    ) -> Result<usize, KernelError> {
        let simd = opts.resolved_simd()?;
        let default_tile = opts.resolved_tile(simd)?;
        let space = tile_space(simd, &default_tile, opts.threads.max(1));
        let path = self.log_path.clone().unwrap_or_else(default_log_path);
        let log = TuningLog::open(&path).map_err(terr)?;
        let shapes = gemm_shapes(graph, self.tune_batch.max(1), simd);
        Ok(count_trials(
            &log,
            &space.name,
            &self.fingerprint(),
            &shapes,
        ))
    }

    /// Tunes the GEMM shapes of the graph's lowered program (or reads them
    /// from the log) and compiles it with each GEMM step on its shape's tile.
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
        let threads = opts.threads.max(1);
        let path = self.log_path.clone().unwrap_or_else(default_log_path);
        let mut log = TuningLog::open(&path).map_err(terr)?;
        let lowered = fusion::lower_with(graph, fusion::FusionOptions::default())?;
        let tune_batch = self.tune_batch.max(1);
        let flops = lowered_shapes(&lowered, tune_batch, simd);
        let mut tuned: BTreeMap<GemmShape, ShapeTuning> = BTreeMap::new();
        for &shape in flops.keys() {
            let t = self.tune_shape(shape, simd, &default_tile, threads, &mut log, &mut |pr| {
                progress(&shape, pr)
            })?;
            tuned.insert(shape, t);
        }
        let readers = crate::exec::sole_readers(&lowered);
        let mut step_tiles: Vec<Option<TileParams>> = (0..lowered.steps.len())
            .map(|si| {
                step_shape(&lowered, &readers, si, tune_batch, simd)
                    .and_then(|s| tuned.get(&s))
                    .map(|t| t.tile)
            })
            .collect();
        crate::exec::skip_zeros_only_after_relu(&lowered, default_tile, &mut step_tiles);
        let tile = flops
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .and_then(|(s, _)| tuned.get(s))
            .map_or(default_tile, |t| t.tile);
        let space = tile_space(simd, &default_tile, threads);
        let logged_trials = count_trials(&log, &space.name, &self.fingerprint(), &flops);
        let shapes: Vec<ShapeTuning> = tuned.into_values().collect();
        let trials = shapes.iter().map(|s| s.trials).sum();
        let engine = Engine::Tiled {
            simd,
            tile: default_tile,
        };
        let inner = LoweredExecutable::with_step_tiles(
            BackendKind::Autotuned,
            lowered,
            engine,
            step_tiles,
        )?;
        let summary = TuneSummary {
            shapes,
            tile,
            default_tile,
            trials,
            logged_trials,
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

/// Search-trial records of `shapes` in `log` for this space and machine.
fn count_trials(
    log: &TuningLog,
    space: &str,
    fingerprint: &str,
    shapes: &BTreeMap<GemmShape, f64>,
) -> usize {
    let keys: Vec<TuneKey> = shapes.keys().map(tune_key).collect();
    log.records()
        .iter()
        .filter(|r| {
            r.kind == RecordKind::Trial
                && r.version == LOG_VERSION
                && r.space == space
                && r.fingerprint == fingerprint
                && keys.iter().any(|k| k.op == r.op && k.shape == r.shape)
        })
        .count()
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
    inner: LoweredExecutable,
    summary: TuneSummary,
}

impl AutotunedExecutable {
    pub fn summary(&self) -> &TuneSummary {
        &self.summary
    }
}

impl Executable for AutotunedExecutable {
    fn run(&mut self, input: &[f32], batch: usize) -> Result<&[f32], KernelError> {
        self.inner.run_impl(input, batch)
    }

    fn tuning_cut_short(&self) -> bool {
        self.summary.shapes.iter().any(|shape| shape.provisional)
    }

    fn lowered(&self) -> String {
        let d = &self.summary.default_tile;
        let mut s = format!(
            "autotuned: a tile per GEMM shape ({} trials run, {} logged; default mc {} nc {} kc {} mr {} nr {})\n",
            self.summary.trials, self.summary.logged_trials, d.mc, d.nc, d.kc, d.mr, d.nr,
        );
        for sh in &self.summary.shapes {
            let t = &sh.tile;
            s.push_str(&format!(
                "  gemm {}x{}x{}: mc {} nc {} kc {} mr {} nr {} threads {} {:?} k_split {} b_in_place {} a_in_place {}{}, {:.0} ns, {} trials{}\n",
                sh.shape.m,
                sh.shape.n,
                sh.shape.k,
                t.mc,
                t.nc,
                t.kc,
                t.mr,
                t.nr,
                t.threads,
                t.loop_order,
                t.k_split,
                t.b_in_place,
                t.a_in_place,
                if *t == sh.incumbent {
                    " (default)"
                } else {
                    ""
                },
                sh.best_ns,
                sh.trials,
                if sh.from_log {
                    " (from log)"
                } else if sh.provisional {
                    " (cut short by the time budget: the next compile resumes)"
                } else {
                    ""
                }
            ));
        }
        s.push_str(&self.inner.describe());
        s
    }

    fn backend(&self) -> BackendKind {
        BackendKind::Autotuned
    }

    fn activation_bytes(&self) -> usize {
        self.inner.activation_bytes()
    }
    fn precision(&self) -> Precision {
        Precision::F32
    }
}
