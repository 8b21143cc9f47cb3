//! Runs a lowered (fused) program. The fused backend uses the simple kernels;
//! the tiled backend swaps in the blocked GEMM (dense, conv packed from a split input,
//! pointwise, attention) and a direct depthwise kernel.

use std::ops::Range;

use crate::act;
use crate::backend::check_input;
use crate::chain::{ChainPlan, MAX_CHAIN_INPUTS};
use crate::conv::{self, SplitLayout};
use crate::error::KernelError;
use crate::fusion::{BufId, ChainOp, Lowered, StepKind, View};
use crate::gemm::{
    helpers_worth, sgemm_with, BOperand, Bias, Epilogue, GatherB, GemmWorkspace, MatRef, PackedB,
};
use crate::liveness::{self, Placement, SlotBuffers, SlotPlan};
use crate::pages::PageBuffer;
use crate::pool;
use crate::pooled;
use crate::reference::{self as r, ConvGeom, RowView};
use crate::rowops;
use crate::simd::SimdLevel;
use crate::spec::{Activation, BackendKind, Precision};
use crate::stream;
use crate::tile::TileParams;

/// Kernel family used for the heavy steps.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Engine {
    Simple,
    Tiled { simd: SimdLevel, tile: TileParams },
}

/// The engine of step `si`: the tiled engine with that step's tile, if it has one.
fn step_engine(engine: Engine, step_tiles: &[Option<TileParams>], si: usize) -> Engine {
    match (engine, step_tiles.get(si).copied().flatten()) {
        (Engine::Tiled { simd, .. }, Some(tile)) => Engine::Tiled { simd, tile },
        (engine, _) => engine,
    }
}

/// Per-step tiles for the tiled engine: dense steps only a few columns wide get a
/// narrower register tile (see `TileParams::narrowed_for_columns`), and dense
/// steps whose input is not a ReLU's output do not look for zeros to skip
/// (`skip_zeros_only_after_relu`); others none.
pub(crate) fn narrow_dense_tiles(
    lowered: &Lowered,
    simd: SimdLevel,
    tile: TileParams,
) -> Vec<Option<TileParams>> {
    let mut tiles: Vec<Option<TileParams>> = lowered
        .steps
        .iter()
        .map(|step| match step.kind {
            StepKind::Dense { n, .. } => {
                Some(tile.narrowed_for_columns(simd, n)).filter(|t| *t != tile)
            }
            _ => None,
        })
        .collect();
    skip_zeros_only_after_relu(lowered, tile, &mut tiles);
    tiles
}

/// Turn `skip_zeros` off for dense steps whose input is not a ReLU's output:
/// there are no zeros to find, and looking costs a scan of the input. `tile`
/// is the engine's, which steps without their own use.
pub(crate) fn skip_zeros_only_after_relu(
    lowered: &Lowered,
    tile: TileParams,
    step_tiles: &mut [Option<TileParams>],
) {
    for (si, step) in lowered.steps.iter().enumerate() {
        let StepKind::Dense { x, .. } = step.kind else {
            continue;
        };
        let Some(slot) = step_tiles.get_mut(si) else {
            continue;
        };
        let current = slot.unwrap_or(tile);
        if current.skip_zeros && !relu_output(lowered, si, x) {
            *slot = Some(TileParams {
                skip_zeros: false,
                ..current
            });
        }
    }
}

/// Whether buffer `x`, as step `si` reads it, is a ReLU's output (typically
/// half exact zeros): the last step before `si` that writes it ends in a ReLU.
fn relu_output(lowered: &Lowered, si: usize, x: BufId) -> bool {
    let relu = Some(Activation::Relu);
    lowered.steps[..si]
        .iter()
        .rev()
        .find(|s| s.out == x)
        .is_some_and(|s| match &s.kind {
            StepKind::Dense { act, .. }
            | StepKind::Conv2d { act, .. }
            | StepKind::Depthwise { act, .. }
            | StepKind::Pointwise { act, .. } => *act == relu,
            StepKind::Chain { program, .. } => {
                matches!(program.last(), Some(ChainOp::Act(Activation::Relu)))
            }
            _ => false,
        })
}

/// Pixels per pointwise GEMM when its output only feeds a global average pool:
/// the `POOL_CHUNK x oc` result stays in L2 and is summed there instead of being
/// written out whole and read back.
/// A multiple of every register tile height (12 and 14 for AVX-512, 6, 4) so the
/// chunk splits into whole tiles.
const POOL_CHUNK: usize = 504;

/// Floats of depthwise output computed at a time when a pooled pointwise conv
/// reads it (a band of rows of every channel): 128 KiB, so the band is still in
/// L2 when the pointwise GEMM reads it, instead of the whole image going out to
/// L3 and back.
const DEPTHWISE_BAND_FLOATS: usize = 32 * 1024;

/// Output rows per band for a depthwise conv of `c` channels `ow` wide: even (the
/// AVX-512 kernel computes rows in pairs), at least 2.
fn depthwise_band_rows(c: usize, ow: usize) -> usize {
    (DEPTHWISE_BAND_FLOATS / (c * ow).max(1)).max(2) / 2 * 2
}

/// The steps the tiled engine runs with the ones after them, as
/// `(pool_fused, depthwise_pooled)` per step; `tiled(si)`: step `si` runs on
/// the tiled engine. A pointwise conv whose output only feeds the next step, a
/// global average pool, writes the pooled values in its place; a depthwise conv
/// feeding such a step runs with it band by band. Neither output is stored.
pub(crate) fn pool_fusion(
    lowered: &Lowered,
    tiled: impl Fn(usize) -> bool,
) -> (Vec<bool>, Vec<bool>) {
    let steps = 0..lowered.steps.len();
    let readers = sole_readers(lowered);
    let pool_fused: Vec<bool> = steps
        .clone()
        .map(|si| {
            tiled(si)
                && matches!(lowered.steps[si].kind, StepKind::Pointwise { .. })
                && pools_next(lowered, &readers, si)
        })
        .collect();
    let depthwise_pooled = steps
        .map(|si| tiled(si) && depthwise_feeds_pool(lowered, &readers, &pool_fused, si))
        .collect();
    (pool_fused, depthwise_pooled)
}

/// Steps run together with step `si` (skipped after it), given `pool_fusion`'s
/// flags: a pointwise step with pooling fused writes the pool's output, and a
/// depthwise step feeding it runs both.
pub(crate) fn fused_after(pool_fused: &[bool], depthwise_pooled: &[bool], si: usize) -> usize {
    if depthwise_pooled.get(si).copied().unwrap_or(false) {
        2
    } else {
        usize::from(pool_fused.get(si).copied().unwrap_or(false))
    }
}

/// Whether step `si` is a depthwise conv whose output only feeds step `si + 1`, a
/// pointwise conv pooled in place (`pool_fused`): the two then run band by band.
fn depthwise_feeds_pool(
    lowered: &Lowered,
    readers: &[Option<usize>],
    pool_fused: &[bool],
    si: usize,
) -> bool {
    matches!(lowered.steps[si].kind, StepKind::Depthwise { .. })
        && readers.get(si).copied().flatten() == Some(si + 1)
        && matches!(lowered.steps[si + 1].kind, StepKind::Pointwise { .. })
        && pool_fused.get(si + 1).copied().unwrap_or(false)
}

/// Per step: the one step reading its output, when its output is nobody
/// else's business: not the graph's output, written by no other step, read by
/// one step. One pass over the steps for all of them, so that compiling stays
/// linear in the step count.
pub(crate) fn sole_readers(lowered: &Lowered) -> Vec<Option<usize>> {
    let buffers = lowered.buffers.len();
    let mut writers = vec![0usize; buffers];
    for step in &lowered.steps {
        if let Some(w) = writers.get_mut(step.out) {
            *w += 1;
        }
    }
    // Per buffer: the steps reading it (each counted once) and the first.
    let mut readers: Vec<(usize, usize)> = vec![(0, 0); buffers];
    for (j, step) in lowered.steps.iter().enumerate() {
        let mut inputs = step.kind.inputs();
        inputs.sort_unstable();
        inputs.dedup();
        for b in inputs {
            if let Some(r) = readers.get_mut(b) {
                if r.0 == 0 {
                    r.1 = j;
                }
                r.0 += 1;
            }
        }
    }
    lowered
        .steps
        .iter()
        .map(|step| {
            let out = step.out;
            let sole = out != lowered.output
                && writers.get(out) == Some(&1)
                && readers.get(out).is_some_and(|r| r.0 == 1);
            sole.then(|| readers[out].1)
        })
        .collect()
}

/// One thread's scratch for the steps split across threads: depthwise +
/// pooled pointwise bands, attention heads.
#[derive(Debug, Default)]
struct Worker {
    ws: GemmWorkspace,
    /// One band of depthwise output, `[c][rows * ow]`.
    band: Vec<f32>,
    /// One head's attention context, `[seq][dh]` (copied into its columns).
    head: Vec<f32>,
    /// Pointwise results of one pixel chunk, `[pixel, channel]` (fused pooling).
    scratch: Vec<f32>,
    /// Per-channel sums of one pixel chunk (fused pooling).
    partial: Vec<f32>,
    /// Per-channel sums of the band being run: summed here, in this thread's
    /// cache, and copied out once per band (the micro-kernels update the sums
    /// every few pixels; bands adjacent in the shared buffer would share a line).
    band_total: pool::OwnLines,
}

impl pool::GrowLike for Worker {
    /// Only the GEMM workspace grows; the other buffers are sized at compile time.
    fn grow_like(&mut self, other: &Worker) {
        self.ws.grow_like(&other.ws);
    }
}

/// A pointwise conv whose output only feeds a global average pool, run as per-channel
/// sums (tiled engine).
struct PoolPointwise<'a> {
    ws: &'a mut GemmWorkspace,
    tile: TileParams,
    simd: SimdLevel,
    /// `W^T` (the GEMM's B: pixels are its rows, channels its columns).
    packed: &'a PackedB,
    epi: Epilogue<'a>,
    ic: usize,
    oc: usize,
    scratch: &'a mut [f32],
    partial: &'a mut [f32],
}

impl PoolPointwise<'_> {
    /// Add to `pooled[o]` the sum over `pixels` pixels of `act(x . W^T + b)[o]`, with
    /// `x` read in place from `planes` (channel planes `plane_len` apart, pixels adjacent).
    fn add_sums(
        &mut self,
        planes: &[f32],
        plane_len: usize,
        pixels: usize,
        pooled: &mut [f32],
    ) -> Result<(), KernelError> {
        let (ic, oc) = (self.ic, self.oc);
        let a = MatRef {
            data: planes,
            rs: 1,
            cs: plane_len,
        };
        // AVX2: channels x pixels tiles, summed in registers. AVX-512: pixels x
        // channels tiles whose rows the micro-kernels sum. Nothing is stored
        // either way. Elsewhere: chunks through a scratch in L2.
        let job = pooled::PooledPointwise {
            weights: self.packed,
            planes,
            plane_len,
            pixels,
            epilogue: self.epi,
        };
        if pooled::pooled_pointwise_sums(self.simd, &job, pooled) {
            return Ok(());
        }
        let mut p0 = if crate::gemm::sgemm_row_sums(
            self.ws,
            &self.tile,
            self.simd,
            pixels,
            oc,
            ic,
            a,
            BOperand::Packed(self.packed),
            pooled,
            self.epi,
        )? {
            pixels
        } else {
            0
        };
        while p0 < pixels {
            let len = POOL_CHUNK.min(pixels - p0);
            let scratch = self
                .scratch
                .get_mut(..len * oc)
                .ok_or_else(|| KernelError::Gemm("pool scratch too small".into()))?;
            let a = MatRef {
                data: &planes[p0..],
                rs: 1,
                cs: plane_len,
            };
            sgemm_with(
                self.ws,
                &self.tile,
                self.simd,
                len,
                oc,
                ic,
                a,
                BOperand::Packed(self.packed),
                scratch,
                oc,
                self.epi,
            )?;
            // Column sums per chunk, then into the total (shorter sums, less rounding).
            let partial = &mut self.partial[..oc];
            conv::column_sums(self.simd, scratch, oc, partial);
            pooled.iter_mut().zip(&*partial).for_each(|(t, &v)| *t += v);
            p0 += len;
        }
        Ok(())
    }
}

/// How the tiled engine runs a convolution step: its input in split layout
/// (padded, stride phases apart) and the tap offsets into it.
struct ConvPlan {
    layout: SplitLayout,
    offsets: Vec<usize>,
}

impl ConvPlan {
    /// The direct kernel's view of a conv of `geom` reading its split input
    /// `q` (this plan's layout) and writing plain planes or, with `padded`,
    /// its depthwise consumer's zero-padded input.
    fn direct_conv<'a>(
        &'a self,
        q: &'a [f32],
        geom: &ConvGeom,
        (weight, bias): (&'a [f32], Option<&'a [f32]>),
        act: Option<Activation>,
        padded: Option<PaddedOutput>,
    ) -> conv::DirectConv<'a> {
        conv::DirectConv {
            q,
            offsets: &self.offsets,
            row_step: self.layout.row_step(),
            weight,
            bias,
            relu: act == Some(Activation::Relu),
            out_c: geom.out_c,
            oh: geom.oh,
            ow: geom.ow,
            out_at: padded.map_or(0, |p| p.pad * p.row_width + p.pad),
            out_channel_step: padded.map_or(geom.oh * geom.ow, |p| p.plane),
            out_row_step: padded.map_or(geom.ow, |p| p.row_width),
        }
    }
}

/// A conv step that writes its output straight into the zero-padded input layout
/// of the depthwise step reading it (that step then copies nothing): channel `c`,
/// pixel `(y, x)` at `c * plane + (y + pad) * row_width + x + pad`.
#[derive(Debug, Clone, Copy)]
struct PaddedOutput {
    plane: usize,
    row_width: usize,
    pad: usize,
    /// The depthwise step reading it.
    consumer: usize,
}

/// A stem conv run inside the depthwise step after it (`stem_in_bands`): its
/// output buffer and split input, taken out of the executable meanwhile.
struct StemInBands {
    si: usize,
    out: PageBuffer<f32>,
    split: Vec<f32>,
}

/// Whether the tiled engine at `simd` computes this convolution straight from its
/// split input (`conv::conv_direct`) rather than as a GEMM over packed patches.
fn conv_runs_direct(simd: SimdLevel, g: &ConvGeom, act: Option<Activation>) -> bool {
    matches!(simd, SimdLevel::Avx512 | SimdLevel::Avx2Fma)
        && simd.is_supported()
        && !is_direct(g)
        && g.in_c * g.kh * g.kw <= conv::DIRECT_CONV_MAX_TAPS
        && matches!(act, None | Some(Activation::Relu))
}

/// Whether step `si` runs as the plain GEMM its shape describes (what the autotuner
/// times): not a pointwise conv pooled in place (a transposed row-sum GEMM) nor a
/// convolution computed directly.
/// `readers` are the steps' [`sole_readers`].
pub(crate) fn step_runs_as_gemm(
    lowered: &Lowered,
    readers: &[Option<usize>],
    si: usize,
    simd: SimdLevel,
) -> bool {
    match &lowered.steps[si].kind {
        StepKind::Pointwise { .. } => !pools_next(lowered, readers, si),
        StepKind::Conv2d { geom, act, .. } => !conv_runs_direct(simd, geom, *act),
        _ => true,
    }
}

/// A convolution the tiled engine runs as a 1x1 GEMM over its input as it is.
fn is_direct(g: &ConvGeom) -> bool {
    g.kh == 1 && g.kw == 1 && g.stride == 1 && g.pad == 0
}

/// If step `si` is a (gathered) conv whose output only feeds a stride-1 depthwise
/// step with a zero-padded layout, that step and the layout to write.
fn padded_consumer(
    lowered: &Lowered,
    readers: &[Option<usize>],
    plans: &[Option<ConvPlan>],
    si: usize,
) -> Option<PaddedOutput> {
    let step = &lowered.steps[si];
    let StepKind::Conv2d { geom: cg, .. } = &step.kind else {
        return None;
    };
    let own = plans.get(si)?.as_ref()?;
    let sj = readers
        .get(si)
        .copied()
        .flatten()
        .filter(|&sj| sj > si && !is_direct(cg))?;
    let StepKind::Depthwise { geom: dg, .. } = &lowered.steps[sj].kind else {
        return None;
    };
    let lay = plans.get(sj)?.as_ref()?.layout;
    // The conv's GEMM also computes the columns between rows (they land on the padding
    // and are zeroed after); their patches must stay inside the conv's own input.
    let reads_in_range = own.layout.row_step() + cg.ow >= lay.row_width();
    let fits = lay.is_padded_image_of(dg)
        && (dg.in_c, dg.h, dg.w) == (cg.out_c, cg.oh, cg.ow)
        && reads_in_range;
    fits.then_some(PaddedOutput {
        plane: lay.plane(),
        row_width: lay.row_width(),
        pad: dg.pad,
        consumer: sj,
    })
}

pub(crate) struct LoweredExecutable {
    kind: BackendKind,
    lowered: Lowered,
    engine: Engine,
    /// Per-step blocking overriding the engine's tile (autotuned backend).
    step_tiles: Vec<Option<TileParams>>,
    /// Pre-packed weights of each dense step (tiled engine).
    packed: Vec<Option<PackedB>>,
    /// Split-layout plan of each conv / depthwise step (tiled engine).
    conv_plans: Vec<Option<ConvPlan>>,
    /// Conv steps writing straight into their depthwise consumer's padded input.
    padded_outputs: Vec<Option<PaddedOutput>>,
    /// Depthwise steps whose input buffer already is their padded layout.
    reads_padded: Vec<bool>,
    /// Floats per sample of each buffer (its element count, or the padded layout's).
    sample_len: Vec<usize>,
    /// Runs of consecutive per-sample steps (two or more step groups), taken one sample
    /// at a time when the batch has more than one.
    sample_major: Vec<Range<usize>>,
    /// Buffers written and read only inside a run of per-sample steps, which runs one
    /// sample at a time: they hold one sample, reused by every sample (so it stays in
    /// cache), instead of the whole batch.
    sample_local: Vec<bool>,
    /// Pointwise steps whose output only feeds the next step, a global average
    /// pool: they write the pooled values into that step's output (tiled engine).
    pool_fused: Vec<bool>,
    /// Depthwise steps feeding such a pointwise step: run with it, band by band
    /// (the depthwise output is never stored whole).
    depthwise_pooled: Vec<bool>,
    /// Direct conv steps (a stem) writing the padded input of such a depthwise
    /// step, all on one thread: run inside that step's bands, each band's input
    /// rows just before it (see `run_depthwise_pooled`). `convnet-224` on Zen 3,
    /// alternating with the build before (2026-12-01, nine rounds of 60 runs):
    /// batch 8 0.92-0.97x the time in eight rounds (1.01x in one), batch 1
    /// 0.88-0.99x in seven (1.08x and 1.27x in two, as the host's speed moved).
    /// With threads the stem keeps its own row blocks.
    stem_in_bands: Vec<bool>,
    /// Per thread the steps split across threads may use (the first also runs
    /// pooled pointwise steps on their own).
    workers: Vec<Worker>,
    /// How runs went with and without waking a helper thread
    /// (`pool::begin_run`).
    run_history: pool::RunHistory,
    /// Per band of one sample, the pooled pointwise sums, `[band][oc]`: added up
    /// in band order, so the result does not depend on which thread took which.
    band_sums: Vec<f32>,
    /// Reused by each parallel convolution step.
    chunks: pool::ChunkRecord,
    /// Buffers no step writes (`unwritten_buffers`).
    unwritten: Vec<bool>,
    /// Per step, whether it writes a padded layout (`padded_outputs`) into a
    /// slot other buffers use too: it zeroes the padding before writing, as
    /// the last tenant's values lie there (alone in its slot, the padding
    /// stays zero from the allocation).
    rezero_padding: Vec<bool>,
    /// The buffers, in slots: buffers never live at once share one (`plan_slots`).
    buffers: SlotBuffers,
    batch: usize,
    /// The batch the slots were allocated for: the largest run so far.
    capacity_batch: usize,
    ws: GemmWorkspace,
    /// Per conv / depthwise step, one sample's input in its split layout. Only the
    /// image is written per run: the padding stays zero from the allocation.
    splits: Vec<Vec<f32>>,
    /// Per step, its elementwise chain compiled (chain steps only).
    chain_plans: Vec<Option<ChainPlan>>,
    /// The chains' slots, one block each (sized for the largest).
    chain_scratch: Vec<f32>,
    /// Bytes above which a chain's output is stored past the caches: the
    /// last-level cache's size.
    stream_above: usize,
}

impl LoweredExecutable {
    pub(crate) fn new(
        kind: BackendKind,
        lowered: Lowered,
        engine: Engine,
    ) -> Result<LoweredExecutable, KernelError> {
        LoweredExecutable::with_step_tiles(kind, lowered, engine, Vec::new())
    }

    /// As `new`, with a tiled-engine blocking per step (the autotuned backend
    /// tunes each GEMM shape); `None` or a missing entry uses the engine's tile.
    pub(crate) fn with_step_tiles(
        kind: BackendKind,
        lowered: Lowered,
        engine: Engine,
        step_tiles: Vec<Option<TileParams>>,
    ) -> Result<LoweredExecutable, KernelError> {
        let mut packed = Vec::with_capacity(lowered.steps.len());
        let mut conv_plans = Vec::with_capacity(lowered.steps.len());
        let (pool_fused, depthwise_pooled) = pool_fusion(&lowered, |si| {
            matches!(step_engine(engine, &step_tiles, si), Engine::Tiled { .. })
        });
        let mut pool_scratch_len = 0;
        let mut pool_partial_len = 0;
        let mut chain_scratch = 0;
        let mut chain_plans = Vec::with_capacity(lowered.steps.len());
        for (si, step) in lowered.steps.iter().enumerate() {
            let mut p = None;
            let mut plan = None;
            let mut chain_plan = None;
            match (&step.kind, step_engine(engine, &step_tiles, si)) {
                (StepKind::Dense { k, n, weight, .. }, Engine::Tiled { tile, .. }) => {
                    p = Some(PackedB::pack(
                        MatRef::row_major(weight, *n),
                        *k,
                        *n,
                        tile.kc,
                        tile.nr,
                    )?);
                }
                (StepKind::Conv2d { geom, .. }, Engine::Tiled { .. }) => {
                    let layout = SplitLayout::new(geom);
                    plan = Some(ConvPlan {
                        layout,
                        offsets: layout.conv_offsets(geom),
                    });
                }
                (StepKind::Depthwise { geom, .. }, Engine::Tiled { .. }) => {
                    let layout = SplitLayout::new(geom);
                    plan = Some(ConvPlan {
                        layout,
                        offsets: layout.depthwise_offsets(geom),
                    });
                }
                (
                    StepKind::Pointwise {
                        oc, ic, hw, weight, ..
                    },
                    Engine::Tiled { tile, .. },
                ) if pool_fused[si] => {
                    pool_scratch_len = pool_scratch_len.max(oc * POOL_CHUNK.min(*hw));
                    pool_partial_len = pool_partial_len.max(*oc);
                    // Pixels are the GEMM rows (read in place from the channel planes),
                    // channels its columns: W^T is the B operand, packed once.
                    p = Some(PackedB::pack(
                        MatRef::transposed(weight, *ic),
                        *ic,
                        *oc,
                        tile.kc,
                        tile.nr,
                    )?);
                }
                (StepKind::Chain { program, .. }, step_engine) => {
                    let simd = match step_engine {
                        Engine::Tiled { simd, .. } => simd,
                        Engine::Simple => crate::simd::detect(),
                    };
                    let chain =
                        ChainPlan::new(program, simd).map_err(|what| KernelError::Unsupported {
                            backend: kind.name().into(),
                            what,
                        })?;
                    chain_scratch = chain_scratch.max(chain.scratch_len());
                    chain_plan = Some(chain);
                }
                _ => {}
            }
            packed.push(p);
            conv_plans.push(plan);
            chain_plans.push(chain_plan);
        }
        let steps = lowered.steps.len();
        let readers = sole_readers(&lowered);
        let padded_outputs: Vec<Option<PaddedOutput>> = (0..steps)
            .map(|si| padded_consumer(&lowered, &readers, &conv_plans, si))
            .collect();
        let mut reads_padded = vec![false; steps];
        let mut sample_len: Vec<usize> = lowered.buffers.iter().map(|b| b.numel).collect();
        for (si, po) in padded_outputs.iter().enumerate() {
            if let Some(po) = po {
                reads_padded[po.consumer] = true;
                let layout_len = conv_plans[po.consumer]
                    .as_ref()
                    .map_or(0, |p| p.layout.len());
                sample_len[lowered.steps[si].out] = layout_len;
            }
        }
        let one_thread = |si: usize| matches!(step_engine(engine, &step_tiles, si), Engine::Tiled { tile, .. } if tile.threads == 1);
        let stem_in_bands: Vec<bool> = (0..steps)
            .map(|si| {
                match (
                    &lowered.steps[si].kind,
                    step_engine(engine, &step_tiles, si),
                ) {
                    (StepKind::Conv2d { geom, act, .. }, Engine::Tiled { simd, .. }) => {
                        padded_outputs[si].is_some_and(|po| po.consumer == si + 1)
                            && depthwise_pooled.get(si + 1) == Some(&true)
                            && conv_runs_direct(simd, geom, *act)
                            && (si..si + 3).all(one_thread)
                    }
                    _ => false,
                }
            })
            .collect();
        let mut band_len = 0;
        let mut band_sums_len = 0;
        for si in (0..steps).filter(|&si| depthwise_pooled[si]) {
            if let (StepKind::Depthwise { geom, .. }, Some(StepKind::Pointwise { oc, .. })) = (
                &lowered.steps[si].kind,
                lowered.steps.get(si + 1).map(|st| &st.kind),
            ) {
                let rows = depthwise_band_rows(geom.out_c, geom.ow).min(geom.oh);
                band_len = band_len.max(geom.out_c * rows * geom.ow);
                band_sums_len = band_sums_len.max(geom.oh.div_ceil(rows.max(1)) * oc);
            }
        }
        // One worker per thread the tiled steps may use.
        let mut head_len = 0;
        for st in &lowered.steps {
            if let StepKind::AttnContext {
                s: seq, d, heads, ..
            } = &st.kind
            {
                head_len = head_len.max(seq * (d / heads.max(&1)));
            }
        }
        let threads = (0..steps)
            .filter_map(|si| match step_engine(engine, &step_tiles, si) {
                Engine::Tiled { tile, .. } => Some(tile.threads),
                Engine::Simple => None,
            })
            .max()
            .unwrap_or(1);
        let workers = (0..=pool::helpers_for(threads))
            .map(|_| Worker {
                ws: GemmWorkspace::new(),
                band: vec![0.0; band_len],
                head: vec![0.0; head_len],
                scratch: vec![0.0; pool_scratch_len],
                partial: vec![0.0; pool_partial_len],
                band_total: pool::OwnLines::new(pool_partial_len),
            })
            .collect();
        let splits = (0..steps)
            .map(|si| {
                let direct = matches!(&lowered.steps[si].kind, StepKind::Conv2d { geom, .. } if is_direct(geom));
                match &conv_plans[si] {
                    Some(plan) if !direct && !reads_padded[si] => vec![0.0; plan.layout.len()],
                    _ => Vec::new(),
                }
            })
            .collect();
        let mut exe = LoweredExecutable {
            kind,
            lowered,
            engine,
            step_tiles,
            packed,
            conv_plans,
            padded_outputs,
            reads_padded,
            sample_len,
            sample_major: Vec::new(),
            sample_local: Vec::new(),
            pool_fused,
            depthwise_pooled,
            stem_in_bands,
            workers,
            run_history: pool::RunHistory::default(),
            band_sums: vec![0.0; band_sums_len],
            chunks: pool::ChunkRecord::default(),
            unwritten: Vec::new(),
            rezero_padding: Vec::new(),
            buffers: SlotBuffers::new(SlotPlan::one_each(0)),
            batch: 0,
            capacity_batch: 0,
            ws: GemmWorkspace::new(),
            splits,
            chain_plans,
            chain_scratch: vec![0.0; chain_scratch],
            stream_above: stream::last_level_cache_bytes(),
        };
        exe.sample_major = exe.sample_major_runs();
        exe.sample_local = exe.sample_local_buffers();
        exe.unwritten = exe.unwritten_buffers();
        // A padded layout shares a slot only where that saves at least a
        // quarter of what the padded layouts take: its writer then zeroes the
        // whole layout every run (the DS-CNN's 48 kB: 3% of its run, for 32 kB
        // less held; `convnet-224`'s 1.66 MB image is the peak anyway, and
        // zeroing it would cost 9%).
        let (own, shared) = (exe.plan_slots(false), exe.plan_slots(true));
        let padded: usize = (exe.padded_outputs.iter().zip(&exe.lowered.steps))
            .filter(|(padded, _)| padded.is_some())
            .map(|(_, step)| exe.sample_len[step.out])
            .sum();
        let saved = exe
            .slot_floats(&own)
            .saturating_sub(exe.slot_floats(&shared));
        let slots = if padded > 0 && saved >= padded / 4 {
            shared
        } else {
            own
        };
        exe.rezero_padding = (exe.padded_outputs.iter())
            .zip(&exe.lowered.steps)
            .map(|(padded, step)| padded.is_some() && slots.shares_slot(step.out))
            .collect();
        exe.buffers = SlotBuffers::new(slots);
        Ok(exe)
    }

    /// The runs of per-sample steps `run_impl` takes one sample at a time (two or
    /// more step groups), as step ranges.
    fn sample_major_runs(&self) -> Vec<Range<usize>> {
        let steps = self.lowered.steps.len();
        let mut runs = Vec::new();
        let mut si = 0;
        while si < steps {
            let mut end = si;
            while end < steps && self.works_per_sample(end) {
                end += 1 + self.fused_after(end);
            }
            if end > si + 1 + self.fused_after(si) {
                runs.push(si..end);
                si = end;
            } else {
                si += 1 + self.fused_after(si);
            }
        }
        runs
    }

    /// Per buffer: whether it is written and read only inside one sample-major run.
    fn sample_local_buffers(&self) -> Vec<bool> {
        let buffers = self.lowered.buffers.len();
        // Per buffer: the first and last step writing or reading it (a run is
        // a range of steps, so these two say whether all of them are inside),
        // found in one pass rather than a scan of every step per buffer.
        let mut touched: Vec<Option<(usize, usize)>> = vec![None; buffers];
        for (j, st) in self.lowered.steps.iter().enumerate() {
            for b in st.kind.inputs().into_iter().chain([st.out]) {
                if let Some(t) = touched.get_mut(b) {
                    *t = Some(t.map_or((j, j), |(first, _)| (first, j)));
                }
            }
        }
        let mut local = vec![false; buffers];
        for run in &self.sample_major {
            for si in run.clone() {
                let out = self.lowered.steps[si].out;
                local[out] = out != self.lowered.output
                    && out != self.lowered.input
                    && self.lowered.buffers[out].constant.is_none()
                    && touched[out]
                        .is_some_and(|(first, last)| run.contains(&first) && run.contains(&last));
            }
        }
        local
    }

    pub(crate) fn lowered_program(&self) -> &Lowered {
        &self.lowered
    }

    /// Per buffer: whether it is the output of a pointwise step with pooling
    /// fused, or of a depthwise step run in bands with one: never written, no memory.
    fn unwritten_buffers(&self) -> Vec<bool> {
        let mut unwritten = vec![false; self.lowered.buffers.len()];
        for (si, step) in self.lowered.steps.iter().enumerate() {
            if self.pool_fused[si] || self.depthwise_pooled[si] {
                unwritten[step.out] = true;
            }
        }
        unwritten
    }

    /// Floats buffer `id` holds at `batch`.
    fn len_at(&self, id: BufId, batch: usize) -> usize {
        let (infos, local) = (&self.lowered.buffers, &self.sample_local);
        buffer_len(infos, &self.sample_len, local, id, batch)
    }

    /// Slots for the buffers by liveness. A buffer is live over the steps
    /// reading or writing it, widened to the steps run together with them (a
    /// fused group, a stem run in its depthwise step's bands, a sample-major
    /// run, whose steps interleave sample by sample); the output stays live
    /// past the last step. Constants, the caller's input (read in place),
    /// never-written outputs keep slots of their own; so do padded layouts
    /// unless `share_padded` (their writers must then zero the padding each
    /// run: `rezero_padding`).
    fn plan_slots(&self, share_padded: bool) -> SlotPlan {
        let steps = &self.lowered.steps;
        let n = steps.len();
        let mut span: Vec<(usize, usize)> = (0..n).map(|si| (si, si)).collect();
        let widen = |span: &mut [(usize, usize)], range: Range<usize>| {
            for sj in range.clone() {
                let s = &mut span[sj];
                *s = (s.0.min(range.start), s.1.max(range.end - 1));
            }
        };
        for si in 0..n {
            let group_end = si + 1 + self.fused_after(si);
            let end = if self.stem_in_bands[si] {
                (group_end + 1 + self.fused_after(group_end)).min(n)
            } else {
                group_end.min(n)
            };
            widen(&mut span, si..end);
        }
        // A one-sample buffer lives inside its run, whose steps run in order
        // for each sample: it keeps its group's span (one-sample buffers of
        // a run share slots among themselves, and with no other buffer, whose
        // spans cover the whole run).
        let group_span = span.clone();
        for run in &self.sample_major {
            widen(&mut span, run.clone());
        }
        let mut live: Vec<Option<(usize, usize)>> = vec![None; self.lowered.buffers.len()];
        for (sj, st) in steps.iter().enumerate() {
            for b in st.kind.inputs().into_iter().chain([st.out]) {
                let local = self.sample_local.get(b).copied().unwrap_or(false);
                let (lo, hi) = if local { group_span[sj] } else { span[sj] };
                if let Some(l) = live.get_mut(b) {
                    *l = Some(l.map_or((lo, hi), |(f, e)| (f.min(lo), e.max(hi))));
                }
            }
        }
        let placements: Vec<Placement> = (0..self.lowered.buffers.len())
            .map(|id| {
                let info = &self.lowered.buffers[id];
                let own = info.constant.is_some()
                    || id == self.lowered.input
                    || (!share_padded && self.sample_len[id] != info.numel)
                    || self.unwritten[id];
                match live[id] {
                    Some((first, last)) if !own => Placement::Shared {
                        first,
                        last: if id == self.lowered.output { n } else { last },
                        size: self.sample_len[id],
                    },
                    _ => Placement::Own,
                }
            })
            .collect();
        liveness::plan(&placements)
    }

    /// Sizes the slots for `batch`. They only grow: a batch no larger than
    /// the largest run so far reuses their allocations (so runs alternating
    /// batch sizes allocate nothing), which keeps the padding the steps never
    /// write at zero, since every sample's padding sits at the same place
    /// whatever the batch.
    fn prepare(&mut self, batch: usize) {
        if self.batch == batch && self.buffers.is_allocated() {
            return;
        }
        let sizes = SlotSizes::new(
            &self.lowered,
            &self.sample_len,
            &self.sample_local,
            &self.unwritten,
        );
        let constant = |id: BufId| self.lowered.buffers[id].constant.as_deref();
        let reuse = batch <= self.capacity_batch;
        if self
            .buffers
            .size(|id| sizes.len(id, batch), constant, reuse)
        {
            self.capacity_batch = batch;
        }
        self.batch = batch;
    }

    /// Floats the slots of `plan` take at batch 1 (constants included).
    fn slot_floats(&self, plan: &SlotPlan) -> usize {
        let sizes = SlotSizes::new(
            &self.lowered,
            &self.sample_len,
            &self.sample_local,
            &self.unwritten,
        );
        let mut lens = vec![0; plan.slots];
        plan.fill_slot_lens(&mut lens, |id| sizes.len(id, 1));
        lens.iter().sum()
    }

    /// Bytes of the activation slots at the batch of the last run (constants
    /// excluded): what this executable holds beyond its weights.
    pub(crate) fn activation_bytes(&self) -> usize {
        let infos = &self.lowered.buffers;
        self.buffers
            .bytes_without(|id| infos[id].constant.is_some())
    }

    pub(crate) fn run_impl(&mut self, input: &[f32], batch: usize) -> Result<&[f32], KernelError> {
        let input_buf = self.lowered.input;
        check_input(input, batch, self.lowered.buffers[input_buf].numel)?;
        self.prepare(batch);
        // Timed from before a wake-up, which the caller pays for.
        let started = std::time::Instant::now();
        let helpers = pool::begin_run(self.workers.len(), &self.run_history, batch);
        let mut si = 0;
        while si < self.lowered.steps.len() {
            // Consecutive steps that each work sample by sample (convolutions, pooling)
            // run all of them for one sample before the next: that sample's activations
            // stay in cache from step to step instead of a whole batch of them going
            // out to memory between steps.
            let run = self.sample_major.iter().find(|r| r.start == si).cloned();
            match run {
                Some(run) if batch > 1 => {
                    for s in 0..batch {
                        let mut sj = run.start;
                        while sj < run.end {
                            sj = self.run_group(sj, batch, s..s + 1, input)?;
                        }
                    }
                    si = run.end;
                }
                _ => si = self.run_group(si, batch, 0..batch, input)?,
            }
        }
        self.run_history
            .record(batch, helpers.plan(), started.elapsed());
        drop(helpers);
        let out = self.lowered.output;
        let len = self.lowered.buffers[out].numel * batch;
        if out == input_buf {
            // Identity graph (e.g. only a reshape): the output is the input.
            self.buffers.slot_mut(out)[..len].copy_from_slice(input);
        }
        Ok(&self.buffers.buffer(out, len)[..len])
    }

    /// Steps run together with step `si` (skipped after it): a pointwise step with
    /// pooling fused writes the pool's output, and a depthwise step feeding it runs both.
    fn fused_after(&self, si: usize) -> usize {
        fused_after(&self.pool_fused, &self.depthwise_pooled, si)
    }

    /// Whether step `si` (with the steps fused after it) computes each sample on
    /// its own, so it can run for a range of samples.
    fn works_per_sample(&self, si: usize) -> bool {
        matches!(
            self.lowered.steps[si].kind,
            StepKind::Conv2d { .. }
                | StepKind::Depthwise { .. }
                | StepKind::Pointwise { .. }
                | StepKind::GlobalAvgPool { .. }
        )
    }

    /// Run step `si` and the steps fused after it for `samples` (all of `0..batch`
    /// unless `works_per_sample(si)`); returns the next step to run.
    fn run_group(
        &mut self,
        si: usize,
        batch: usize,
        samples: Range<usize>,
        input: &[f32],
    ) -> Result<usize, KernelError> {
        if self.stem_in_bands[si] {
            // Runs with the depthwise step after it.
            return Ok(si + 1);
        }
        let fused = self.fused_after(si);
        let out_id = self.lowered.steps[si + fused].out;
        // Take the output's slot out so inputs can be borrowed alongside (no
        // allocation; no input shares it, being live at the same step).
        let out_len = self.len_at(out_id, batch);
        let (slot, mut out) = self.buffers.take(out_id);
        let result = match out.get_mut(..out_len) {
            Some(out) if fused == 2 => self.run_depthwise_pooled(si, samples, input, out),
            Some(out) => self.run_step(si, batch, samples, input, out),
            None => Err(KernelError::Gemm(format!(
                "step {si}: its output's slot is shorter than the output"
            ))),
        };
        self.buffers.put_back((slot, out));
        result?;
        Ok(si + 1 + fused)
    }

    /// Depthwise step `si`, the pointwise step after it and the pool after that, band
    /// by band: each band of depthwise rows (all channels) goes straight into the
    /// pointwise GEMM's per-channel sums while it is in L2. `out` is the pool's output.
    /// A direct stem before it (`stem_in_bands`) runs here: each band's input
    /// rows are computed just before the band, so they are still in L2 when it
    /// reads them, instead of the whole padded image going out to L3 and back.
    fn run_depthwise_pooled(
        &mut self,
        si: usize,
        samples: Range<usize>,
        input: &[f32],
        out: &mut [f32],
    ) -> Result<(), KernelError> {
        let Some(stem_si) = si.checked_sub(1).filter(|&sj| self.stem_in_bands[sj]) else {
            return self.depthwise_pooled_bands(si, samples, input, out, None);
        };
        // The stem's output (this step's input) and its split input, taken out
        // to be written between bands, then put back.
        let (stem_slot, stem_out) = self.buffers.take(self.lowered.steps[stem_si].out);
        let mut stem = StemInBands {
            si: stem_si,
            out: stem_out,
            split: std::mem::take(&mut self.splits[stem_si]),
        };
        let result = self.depthwise_pooled_bands(si, samples, input, out, Some(&mut stem));
        self.buffers.put_back((stem_slot, stem.out));
        self.splits[stem_si] = stem.split;
        result
    }

    /// `run_depthwise_pooled` with the stem, if any, taken out.
    fn depthwise_pooled_bands(
        &mut self,
        si: usize,
        samples: Range<usize>,
        input: &[f32],
        out: &mut [f32],
        mut stem: Option<&mut StemInBands>,
    ) -> Result<(), KernelError> {
        let unexpected =
            || KernelError::Gemm("depthwise + pooled pointwise: unexpected steps".into());
        let (dw, pw) = (&self.lowered.steps[si], &self.lowered.steps[si + 1]);
        let (
            StepKind::Depthwise {
                x,
                geom,
                weight,
                bias,
                act,
            },
            StepKind::Pointwise {
                ic,
                hw,
                oc,
                bias: pw_bias,
                act: pw_act,
                ..
            },
        ) = (&dw.kind, &pw.kind)
        else {
            return Err(unexpected());
        };
        let (Engine::Tiled { simd, .. }, Engine::Tiled { tile, .. }) = (
            step_engine(self.engine, &self.step_tiles, si),
            step_engine(self.engine, &self.step_tiles, si + 1),
        ) else {
            return Err(unexpected());
        };
        let plan = self.conv_plans[si].as_ref().ok_or_else(unexpected)?;
        let packed = self.packed[si + 1].as_ref().ok_or_else(unexpected)?;
        let epi = Epilogue {
            bias: pw_bias.as_deref().map_or(Bias::None, Bias::PerColumn),
            activation: *pw_act,
        };
        let (oc, ic) = (*oc, *ic);
        let band_rows = depthwise_band_rows(geom.out_c, geom.ow).min(geom.oh);
        let bands = geom.oh.div_ceil(band_rows.max(1));
        let row_step = plan.layout.row_step();
        let relu = *act == Some(Activation::Relu);
        let views = BufferViews {
            input,
            input_id: self.lowered.input,
            buffers: &self.buffers,
            batch: self.batch,
            infos: &self.lowered.buffers,
            sample_len: &self.sample_len,
            local: &self.sample_local,
        };
        let out_local = self.sample_local[self.lowered.steps[si + 2].out];
        // Depthwise and pointwise multiply-adds of one sample.
        let flops =
            2.0 * (geom.oh * geom.ow) as f64 * (geom.out_c * plan.offsets.len() + ic * oc) as f64;
        let helpers = helpers_worth(tile.threads, flops).min(self.workers.len().saturating_sub(1));
        for s in samples {
            let sums = self
                .band_sums
                .get_mut(..bands * oc)
                .ok_or_else(unexpected)?;
            let sums = pool::SharedOut::new(sums);
            let workers = pool::PerParticipant::new(&mut self.workers);
            // Band b: rows b * band_rows.. of every channel, depthwise then into
            // the pointwise GEMM's per-channel sums while in L2.
            let run_band = |participant: usize, b: usize, q: &[f32]| -> Result<(), KernelError> {
                // SAFETY: `participant` is this thread's own number: the one
                // `run_chunks` gave it, or 0 when the bands run on this thread
                // alone (with the stem), as `run_chunks` numbers its caller.
                let worker = unsafe { workers.get(participant) }.ok_or_else(unexpected)?;
                // SAFETY: each band runs once and owns its row of sums.
                let band_sums =
                    unsafe { sums.slice(b * oc..(b + 1) * oc) }.ok_or_else(unexpected)?;
                let y0 = b * band_rows;
                let rows = band_rows.min(geom.oh - y0);
                // Rows y0.. of every channel: the same layout, started y0 rows in.
                let band_geom = ConvGeom { oh: rows, ..*geom };
                let pixels = rows * geom.ow;
                let band = worker
                    .band
                    .get_mut(..geom.out_c * pixels)
                    .ok_or_else(unexpected)?;
                conv::depthwise(
                    simd,
                    q.get(y0 * row_step..).ok_or_else(unexpected)?,
                    &plan.layout,
                    &plan.offsets,
                    &band_geom,
                    weight,
                    bias.as_deref(),
                    relu,
                    band,
                );
                if !relu {
                    apply_act(*act, band);
                }
                let mut pool = PoolPointwise {
                    ws: &mut worker.ws,
                    tile,
                    simd,
                    packed,
                    epi,
                    ic,
                    oc,
                    scratch: &mut worker.scratch,
                    partial: &mut worker.partial,
                };
                let total = worker
                    .band_total
                    .as_mut_slice()
                    .get_mut(..oc)
                    .ok_or_else(unexpected)?;
                total.iter_mut().for_each(|v| *v = 0.0);
                pool.add_sums(band, pixels, pixels, total)?;
                band_sums.copy_from_slice(total);
                Ok(())
            };
            match stem.as_deref_mut() {
                None => {
                    let xs = views.sample(*x, s);
                    let q = depthwise_input(
                        simd,
                        self.reads_padded[si],
                        xs,
                        geom,
                        &plan.layout,
                        &mut self.splits[si],
                    )?;
                    pool::try_run_chunks(&mut self.chunks, helpers, bands, &|p, b| {
                        run_band(p, b, q)
                    })?;
                }
                Some(stem) => {
                    let (
                        StepKind::Conv2d {
                            x: stem_x,
                            geom: sg,
                            weight: sw,
                            bias: sb,
                            act: sa,
                        },
                        Some(splan),
                        Some(po),
                        Engine::Tiled { simd: ssimd, .. },
                    ) = (
                        &self.lowered.steps[stem.si].kind,
                        self.conv_plans[stem.si].as_ref(),
                        self.padded_outputs[stem.si],
                        step_engine(self.engine, &self.step_tiles, stem.si),
                    )
                    else {
                        return Err(unexpected());
                    };
                    let split = stem
                        .split
                        .get_mut(..splan.layout.len())
                        .ok_or_else(unexpected)?;
                    conv::split_interior(ssimd, views.sample(*stem_x, s), sg, &splan.layout, split);
                    let direct = splan.direct_conv(split, sg, (sw, sb.as_deref()), *sa, Some(po));
                    let stem_out = self.lowered.steps[stem.si].out;
                    let len = self.sample_len[stem_out];
                    let o = if self.sample_local[stem_out] { 0 } else { s };
                    let slot = stem
                        .out
                        .get_mut(o * len..(o + 1) * len)
                        .ok_or_else(unexpected)?;
                    if self.rezero_padding[stem.si] {
                        zero_padding(slot, sg, po);
                    }
                    // Stem rows written so far.
                    let mut done = 0;
                    for b in 0..bands {
                        let y0 = b * band_rows;
                        let rows = band_rows.min(geom.oh - y0);
                        // The band reads padded rows y0..y0 + rows + kh - 1: stem rows
                        // up to there, less the top padding.
                        let need = (y0 + rows + geom.kh - 1)
                            .saturating_sub(geom.pad)
                            .min(sg.oh);
                        if need > done {
                            let part = direct.rows(done..need).ok_or_else(unexpected)?;
                            if !conv::conv_direct(ssimd, &part, slot) {
                                return Err(unexpected());
                            }
                            done = need;
                        }
                        run_band(0, b, slot.get(..plan.layout.len()).ok_or_else(unexpected)?)?;
                    }
                }
            }
            let o = if out_local { 0 } else { s };
            let pooled = out.get_mut(o * oc..(o + 1) * oc).ok_or_else(unexpected)?;
            let sums = &self.band_sums[..bands * oc];
            let inv = 1.0 / *hw as f32;
            for (c, p) in pooled.iter_mut().enumerate() {
                *p = (0..bands).map(|b| sums[b * oc + c]).sum::<f32>() * inv;
            }
        }
        pool::equalize(&mut self.workers);
        Ok(())
    }

    /// Step `si`; per-sample steps only for `samples`, the others for the whole batch.
    fn run_step(
        &mut self,
        si: usize,
        batch: usize,
        samples: Range<usize>,
        input: &[f32],
        out: &mut [f32],
    ) -> Result<(), KernelError> {
        let step = &self.lowered.steps[si];
        let infos = &self.lowered.buffers;
        let local = &self.sample_local;
        let views = BufferViews {
            input,
            input_id: self.lowered.input,
            buffers: &self.buffers,
            batch: self.batch,
            infos,
            sample_len: &self.sample_len,
            local,
        };
        let bufs = |id: BufId| views.whole(id);
        let sample = |id: BufId, s: usize| views.sample(id, s);
        let short = || KernelError::Gemm(format!("step {si}: a buffer is shorter than its step"));
        match (&step.kind, step_engine(self.engine, &self.step_tiles, si)) {
            (
                StepKind::Dense {
                    x,
                    rows,
                    k,
                    n,
                    weight,
                    bias,
                    act,
                    ..
                },
                engine,
            ) => {
                let m = rows * batch;
                let xb = &bufs(*x)[..m * k];
                match engine {
                    Engine::Simple => {
                        dense_simple(xb, m, *k, *n, weight, bias.as_deref(), *act, out)
                    }
                    Engine::Tiled { simd, tile } => {
                        let packed = self.packed[si]
                            .as_ref()
                            .ok_or_else(|| KernelError::Gemm("weights not packed".into()))?;
                        let epi = Epilogue {
                            bias: bias.as_deref().map_or(Bias::None, Bias::PerColumn),
                            activation: *act,
                        };
                        sgemm_with(
                            &mut self.ws,
                            &tile,
                            simd,
                            m,
                            *n,
                            *k,
                            MatRef::row_major(xb, *k),
                            BOperand::Packed(packed),
                            out,
                            *n,
                            epi,
                        )?;
                    }
                }
            }
            (
                StepKind::Conv2d {
                    x,
                    geom,
                    weight,
                    bias,
                    act,
                },
                engine,
            ) => {
                let out_len = self.sample_len[step.out];
                for s in samples.clone() {
                    let xs = sample(*x, s);
                    let o = if local[step.out] { 0 } else { s };
                    let os = &mut out[o * out_len..(o + 1) * out_len];
                    match engine {
                        Engine::Simple => {
                            r::conv2d(xs, geom, weight, bias.as_deref(), os);
                            apply_act(*act, os);
                        }
                        Engine::Tiled { simd, tile } => {
                            let kdim = geom.in_c * geom.kh * geom.kw;
                            let ohw = geom.oh * geom.ow;
                            let padded = self.padded_outputs[si];
                            if let Some(p) = padded.filter(|_| self.rezero_padding[si]) {
                                zero_padding(os, geom, p);
                            }
                            // Into a padded layout, output row y starts `row_width` after
                            // row y - 1: the GEMM computes the columns between as well (they
                            // fall on the padding, zeroed below) so C stays one matrix.
                            let (c_start, cols, run, ldc) = match padded {
                                Some(p) => (
                                    p.pad * p.row_width + p.pad,
                                    (geom.oh - 1) * p.row_width + geom.ow,
                                    p.row_width,
                                    p.plane,
                                ),
                                None => (0, ohw, geom.ow, ohw),
                            };
                            let b = if is_direct(geom) {
                                BOperand::Mat(MatRef::row_major(xs, ohw))
                            } else {
                                // Patches are packed straight from the split input (no im2col).
                                let plan = self.conv_plans[si].as_ref().ok_or_else(|| {
                                    KernelError::Gemm("conv step without a plan".into())
                                })?;
                                let q = &mut self.splits[si][..plan.layout.len()];
                                conv::split_interior(simd, xs, geom, &plan.layout, q);
                                // Shallow convolutions (a stem over a few input channels)
                                // read their patches in place, written where they belong.
                                let direct = plan.direct_conv(
                                    &self.splits[si][..plan.layout.len()],
                                    geom,
                                    (weight, bias.as_deref()),
                                    *act,
                                    padded,
                                );
                                if conv_runs_direct(simd, geom, *act)
                                    && direct_conv_in_rows(
                                        &mut self.chunks,
                                        simd,
                                        &direct,
                                        os,
                                        tile.threads,
                                    )
                                {
                                    continue;
                                }
                                BOperand::Gathered(GatherB {
                                    data: &self.splits[si][..plan.layout.len()],
                                    row_offsets: &plan.offsets,
                                    run,
                                    run_step: plan.layout.row_step(),
                                })
                            };
                            let epi = Epilogue {
                                bias: bias.as_deref().map_or(Bias::None, Bias::PerRow),
                                activation: *act,
                            };
                            sgemm_with(
                                &mut self.ws,
                                &tile,
                                simd,
                                geom.out_c,
                                cols,
                                kdim,
                                MatRef::row_major(weight, kdim),
                                b,
                                &mut os[c_start..],
                                ldc,
                                epi,
                            )?;
                            if let Some(p) = padded {
                                zero_row_gaps(os, geom, p);
                            }
                        }
                    }
                }
            }
            (
                StepKind::Depthwise {
                    x,
                    geom,
                    weight,
                    bias,
                    act,
                },
                engine,
            ) => {
                let out_len = geom.out_c * geom.oh * geom.ow;
                for s in samples.clone() {
                    let xs = sample(*x, s);
                    let o = if local[step.out] { 0 } else { s };
                    let os = &mut out[o * out_len..(o + 1) * out_len];
                    match engine {
                        Engine::Simple => {
                            r::depthwise(xs, geom, weight, bias.as_deref(), os);
                            apply_act(*act, os);
                        }
                        Engine::Tiled { simd, .. } => {
                            let plan = self.conv_plans[si].as_ref().ok_or_else(|| {
                                KernelError::Gemm("depthwise step without a plan".into())
                            })?;
                            let q = depthwise_input(
                                simd,
                                self.reads_padded[si],
                                xs,
                                geom,
                                &plan.layout,
                                &mut self.splits[si],
                            )?;
                            let relu = *act == Some(Activation::Relu);
                            conv::depthwise(
                                simd,
                                q,
                                &plan.layout,
                                &plan.offsets,
                                geom,
                                weight,
                                bias.as_deref(),
                                relu,
                                os,
                            );
                            if !relu {
                                apply_act(*act, os);
                            }
                        }
                    }
                }
            }
            (
                StepKind::Pointwise {
                    x,
                    ic,
                    hw,
                    oc,
                    weight,
                    bias,
                    act,
                },
                engine,
            ) => {
                let out_len = oc * hw;
                if let (true, Engine::Tiled { simd, tile }) = (self.pool_fused[si], engine) {
                    // Pointwise + global average pool: out is the pool's [batch, oc]. Per
                    // chunk of pixels, C[pixel, channel] = X^T . W^T with X^T read in place
                    // (pixels adjacent in each channel plane) and W^T packed at compile time.
                    let packed = self.packed[si]
                        .as_ref()
                        .ok_or_else(|| KernelError::Gemm("weights not packed".into()))?;
                    let epi = Epilogue {
                        bias: bias.as_deref().map_or(Bias::None, Bias::PerColumn),
                        activation: *act,
                    };
                    let worker = self
                        .workers
                        .first_mut()
                        .ok_or_else(|| KernelError::Gemm("no band worker".into()))?;
                    let mut pool = PoolPointwise {
                        ws: &mut worker.ws,
                        tile,
                        simd,
                        packed,
                        epi,
                        ic: *ic,
                        oc: *oc,
                        scratch: &mut worker.scratch,
                        partial: &mut worker.partial,
                    };
                    for s in samples.clone() {
                        let o = if local[self.lowered.steps[si + 1].out] {
                            0
                        } else {
                            s
                        };
                        let pooled = &mut out[o * oc..(o + 1) * oc];
                        pooled.iter_mut().for_each(|v| *v = 0.0);
                        pool.add_sums(sample(*x, s), *hw, *hw, pooled)?;
                        let inv = 1.0 / *hw as f32;
                        pooled.iter_mut().for_each(|v| *v *= inv);
                    }
                    return Ok(());
                }
                for s in samples.clone() {
                    let xs = sample(*x, s);
                    let o = if local[step.out] { 0 } else { s };
                    let os = &mut out[o * out_len..(o + 1) * out_len];
                    match engine {
                        Engine::Simple => {
                            pointwise_simple(xs, *ic, *hw, weight, *oc, bias.as_deref(), os);
                            apply_act(*act, os);
                        }
                        Engine::Tiled { simd, tile } => {
                            let epi = Epilogue {
                                bias: bias.as_deref().map_or(Bias::None, Bias::PerRow),
                                activation: *act,
                            };
                            sgemm_with(
                                &mut self.ws,
                                &tile,
                                simd,
                                *oc,
                                *hw,
                                *ic,
                                MatRef::row_major(weight, *ic),
                                BOperand::Mat(MatRef::row_major(xs, *hw)),
                                os,
                                *hw,
                                epi,
                            )?;
                        }
                    }
                }
            }
            (StepKind::Chain { inputs, len, .. }, _) => {
                let chain = self.chain_plans[si].as_ref().ok_or_else(|| {
                    KernelError::Gemm(format!("step {si}: a chain without its compiled plan"))
                })?;
                // An output larger than the last-level cache goes to memory
                // whatever the store: stored past the caches, it is not read first.
                let streamed = len * batch * std::mem::size_of::<f32>() > self.stream_above;
                let mut ins: [&[f32]; MAX_CHAIN_INPUTS] = [&[]; MAX_CHAIN_INPUTS];
                for s in 0..batch {
                    for (slot, &b) in ins.iter_mut().zip(inputs) {
                        *slot = sample(b, s);
                    }
                    let os = out.get_mut(s * len..(s + 1) * len).ok_or_else(short)?;
                    chain
                        .run(&ins, os, &mut self.chain_scratch, streamed)
                        .map_err(|e| KernelError::Gemm(format!("step {si}: {e}")))?;
                }
                if streamed {
                    stream::fence();
                }
            }
            (StepKind::Softmax { x, d }, engine) => {
                let x = &bufs(*x)[..out.len()];
                match engine {
                    Engine::Simple => r::softmax(x, *d, out),
                    Engine::Tiled { .. } => rowops::softmax(x, *d, out),
                }
            }
            (
                StepKind::LayerNorm {
                    x,
                    gamma,
                    beta,
                    eps,
                },
                engine,
            ) => {
                let x = &bufs(*x)[..out.len()];
                match engine {
                    Engine::Simple => r::layer_norm(x, gamma, beta, *eps, out),
                    Engine::Tiled { .. } => rowops::layer_norm(x, gamma, beta, *eps, out),
                }
            }
            (StepKind::GlobalAvgPool { x, c, hw }, _) => {
                for s in samples {
                    r::global_avg_pool(sample(*x, s), *c, *hw, &mut out[s * c..(s + 1) * c]);
                }
            }
            (StepKind::MeanPool { x, s: seq, d }, _) => {
                for s in 0..batch {
                    r::mean_pool(sample(*x, s), *seq, *d, &mut out[s * d..(s + 1) * d]);
                }
            }
            (
                StepKind::AttnScores {
                    q,
                    k,
                    s: seq,
                    d,
                    heads,
                    softmax,
                },
                Engine::Simple,
            ) => {
                let per = heads * seq * seq;
                for s in 0..batch {
                    let (qb, qv) = view_sample(bufs(q.buf), infos, *q, s);
                    let (kb, kv) = view_sample(bufs(k.buf), infos, *k, s);
                    let os = &mut out[s * per..(s + 1) * per];
                    r::attention_scores(qb, qv, kb, kv, *seq, *d, *heads, os);
                    if *softmax {
                        r::softmax_in_place(os, *seq);
                    }
                }
            }
            (
                StepKind::AttnContext {
                    p,
                    v,
                    s: seq,
                    d,
                    heads,
                },
                Engine::Simple,
            ) => {
                let per = seq * d;
                for s in 0..batch {
                    let ps = sample(*p, s);
                    let (vb, vv) = view_sample(bufs(v.buf), infos, *v, s);
                    let os = &mut out[s * per..(s + 1) * per];
                    r::attention_context(ps, vb, vv, *seq, *d, *heads, os);
                }
            }
            (
                StepKind::AttnScores {
                    q,
                    k,
                    s: seq,
                    d,
                    heads,
                    softmax,
                },
                Engine::Tiled { simd, tile },
            ) => {
                let (seq, d, heads) = (*seq, *d, *heads);
                let dh = d / heads.max(1);
                let per_head = seq * seq;
                // One chunk per (sample, head): its seq x seq scores, contiguous.
                let out = pool::SharedOut::new(out);
                let one_head = |worker: &mut Worker, s: usize, h: usize| {
                    let (qb, qv) = view_sample(bufs(q.buf), infos, *q, s);
                    let (kb, kv) = view_sample(bufs(k.buf), infos, *k, s);
                    let at = (s * heads + h) * per_head;
                    // SAFETY: each (sample, head) runs once and owns these scores.
                    let os = unsafe { out.slice(at..at + per_head) }.ok_or_else(short)?;
                    let dims = (seq, dh, h);
                    attention_scores_head(
                        &mut worker.ws,
                        (simd, &tile),
                        (qb, qv),
                        (kb, kv),
                        dims,
                        os,
                    )?;
                    // While this head's scores are still in cache.
                    if *softmax {
                        rowops::softmax_in_place(os, seq);
                    }
                    Ok(())
                };
                let split = (batch, heads, seq, dh, tile.threads);
                run_heads(&mut self.workers, &mut self.chunks, split, &one_head)?;
            }
            (
                StepKind::AttnContext {
                    p,
                    v,
                    s: seq,
                    d,
                    heads,
                },
                Engine::Tiled { simd, tile },
            ) => {
                let (seq, d, heads) = (*seq, *d, *heads);
                let dh = d / heads.max(1);
                // One chunk per (sample, head): computed into the worker's
                // [seq x dh] buffer, then copied into the head's columns.
                let out = pool::SharedOut::new(out);
                let one_head = |worker: &mut Worker, s: usize, h: usize| {
                    let ps = sample(*p, s);
                    let (vb, vv) = view_sample(bufs(v.buf), infos, *v, s);
                    let head = worker.head.get_mut(..seq * dh).ok_or_else(short)?;
                    let dims = (seq, dh, h);
                    attention_context_head(
                        &mut worker.ws,
                        (simd, &tile),
                        ps,
                        (vb, vv),
                        dims,
                        head,
                        dh,
                    )?;
                    for (i, row) in head.chunks_exact(dh.max(1)).enumerate() {
                        let at = s * seq * d + i * d + h * dh;
                        // SAFETY: each (sample, head) runs once and owns its
                        // columns h * dh.. of every row of its sample.
                        let dst = unsafe { out.slice(at..at + dh) }.ok_or_else(short)?;
                        dst.copy_from_slice(row);
                    }
                    Ok(())
                };
                let split = (batch, heads, seq, dh, tile.threads);
                run_heads(&mut self.workers, &mut self.chunks, split, &one_head)?;
            }
        }
        Ok(())
    }

    pub(crate) fn kind(&self) -> BackendKind {
        self.kind
    }

    pub(crate) fn precision(&self) -> Precision {
        Precision::F32
    }

    pub(crate) fn describe(&self) -> String {
        let engine = match self.engine {
            Engine::Simple => "simple kernels".to_string(),
            Engine::Tiled { simd, tile } if tile.threads > 1 => format!(
                "tiled kernels, {simd}, mc {} nc {} kc {} mr {} nr {}, {} threads: GEMMs split \
                 by blocks of C, direct convolutions by rows, depthwise + pooled pointwise by \
                 bands (work under {:.0} MFLOP only when a helper is awake); other steps on one",
                tile.mc,
                tile.nc,
                tile.kc,
                tile.mr,
                tile.nr,
                tile.threads,
                crate::gemm::WAKE_MIN_FLOPS / 1e6
            ),
            Engine::Tiled { simd, tile } => format!(
                "tiled kernels, {simd}, mc {} nc {} kc {} mr {} nr {}, 1 thread",
                tile.mc, tile.nc, tile.kc, tile.mr, tile.nr
            ),
        };
        let mut text = format!("{} ({engine})\n{}", self.kind, self.lowered);
        for run in &self.sample_major {
            let steps = &self.lowered.steps;
            let held = run
                .clone()
                // Outputs never stored (fused pooling, depthwise in bands) hold nothing.
                .filter(|&si| {
                    self.sample_local[steps[si].out]
                        && !self.pool_fused[si]
                        && !self.depthwise_pooled[si]
                })
                .count();
            text.push_str(&format!(
                "\n  # {} to {} run one sample at a time; {held} buffer(s) between them hold one sample",
                steps[run.start].name,
                steps[run.end - 1].name
            ));
        }
        for (si, step) in self.lowered.steps.iter().enumerate() {
            if let Some(t) = self.step_tiles.get(si).copied().flatten() {
                text.push_str(&format!(
                    "\n  # {} runs on its own tile: mc {} nc {} kc {} mr {} nr {}",
                    step.name, t.mc, t.nc, t.kc, t.mr, t.nr
                ));
            }
            if let (StepKind::Conv2d { geom, act, .. }, Engine::Tiled { simd, .. }) =
                (&step.kind, step_engine(self.engine, &self.step_tiles, si))
            {
                let taps = geom.in_c * geom.kh * geom.kw;
                if conv_runs_direct(simd, geom, *act) {
                    text.push_str(&format!(
                        "\n  # {} runs from its split input directly ({taps} taps: no packed patches)",
                        step.name
                    ));
                }
            }
            if let Some(p) = self.padded_outputs[si] {
                text.push_str(&format!(
                    "\n  # {} writes straight into {}'s zero-padded input (no copy between)",
                    step.name, self.lowered.steps[p.consumer].name
                ));
            }
            if self.stem_in_bands[si] {
                text.push_str(&format!(
                    "\n  # {} runs inside {}'s bands, each band's input rows just before it",
                    step.name,
                    self.lowered.steps[si + 1].name
                ));
            }
            if self.depthwise_pooled[si] {
                text.push_str(&format!(
                    "\n  # {} runs with the next step in bands of rows (its output never stored whole)",
                    step.name
                ));
            }
            if self.pool_fused[si] {
                text.push_str(&format!(
                    "\n  # {} runs with the next step: pooled in {POOL_CHUNK}-pixel chunks, output never stored",
                    step.name
                ));
            }
            if let Some(note) = self.chain_plans[si].as_ref().and_then(ChainPlan::describe) {
                text.push_str(&format!("\n  # {} {note}", step.name));
            }
        }
        text
    }
}

/// Floats buffer `id` holds at `batch`: a constant's or a one-sample buffer's
/// one sample, any other's `batch` samples.
fn buffer_len(
    infos: &[crate::fusion::BufferInfo],
    sample_len: &[usize],
    local: &[bool],
    id: BufId,
    batch: usize,
) -> usize {
    if infos[id].constant.is_some() || local[id] {
        sample_len[id]
    } else {
        sample_len[id] * batch
    }
}

/// Read access to a run's buffers while one step's output is taken out.
struct BufferViews<'a> {
    /// The caller's input, read in place (no copy).
    input: &'a [f32],
    input_id: BufId,
    buffers: &'a SlotBuffers,
    /// The batch the slots are sized for.
    batch: usize,
    infos: &'a [crate::fusion::BufferInfo],
    sample_len: &'a [usize],
    local: &'a [bool],
}

impl<'a> BufferViews<'a> {
    /// All of buffer `id` (its slot may be longer, holding larger buffers at
    /// other steps).
    fn whole(&self, id: BufId) -> &'a [f32] {
        if id == self.input_id {
            return self.input;
        }
        let len = buffer_len(self.infos, self.sample_len, self.local, id, self.batch);
        self.buffers.buffer(id, len)
    }

    /// Sample `s` of buffer `id`: a constant is the same for every sample, and a
    /// sample-local buffer has one slot.
    fn sample(&self, id: BufId, s: usize) -> &'a [f32] {
        let n = self.sample_len[id];
        let s = if self.local[id] { 0 } else { s };
        if self.infos[id].constant.is_some() {
            &self.whole(id)[..n]
        } else {
            &self.whole(id)[s * n..(s + 1) * n]
        }
    }
}

/// Output row blocks per thread of a direct convolution run on several threads.
const ROW_BLOCKS_PER_THREAD: usize = 8;

/// `conv::conv_direct`, by blocks of output rows taken in turn by up to
/// `threads` threads (the same bits as one thread: each row is computed alike).
/// `false` if the direct kernel does not run here (nothing is written).
pub(crate) fn direct_conv_in_rows(
    record: &mut pool::ChunkRecord,
    simd: SimdLevel,
    conv: &conv::DirectConv<'_>,
    out: &mut [f32],
    threads: usize,
) -> bool {
    if !conv::direct_conv_runs(simd, conv, out.len()) {
        return false;
    }
    let flops = 2.0 * (conv.out_c * conv.oh * conv.ow * conv.offsets.len()) as f64;
    let helpers = helpers_worth(threads, flops);
    if helpers == 0 {
        record.prepare();
        return conv::conv_direct(simd, conv, out);
    }
    let rows_per_block = conv
        .oh
        .div_ceil((helpers + 1) * ROW_BLOCKS_PER_THREAD)
        .max(1);
    let blocks = conv.oh.div_ceil(rows_per_block);
    let out = pool::SharedOut::new(out);
    let ran = pool::try_run_chunks(record, helpers, blocks, &|_, block| {
        let rows = block * rows_per_block..((block + 1) * rows_per_block).min(conv.oh);
        // SAFETY: `out` holds `out.len()` floats, and row blocks write disjoint
        // elements (each its own rows of every channel).
        let ran = conv.rows(rows).is_some_and(|part| unsafe {
            conv::conv_direct_shared(simd, &part, out.as_ptr(), out.len())
        });
        ran.then_some(()).ok_or(())
    });
    // Otherwise the caller runs the conv as a GEMM, which writes every element.
    ran.is_ok()
}

/// A depthwise step's input in its split layout: the input buffer itself when the
/// producing conv wrote it there (`reads_padded`), else split into `split`.
fn depthwise_input<'a>(
    simd: SimdLevel,
    reads_padded: bool,
    xs: &'a [f32],
    geom: &ConvGeom,
    layout: &SplitLayout,
    split: &'a mut [f32],
) -> Result<&'a [f32], KernelError> {
    let len = layout.len();
    let short = || KernelError::Gemm("depthwise input shorter than its split layout".into());
    if reads_padded {
        return xs.get(..len).ok_or_else(short);
    }
    let q = split.get_mut(..len).ok_or_else(short)?;
    conv::split_interior(simd, xs, geom, layout, q);
    Ok(q)
}

/// What sizes a buffer's share of its slot, borrowed from the executable
/// apart from its slots (which are sized with it).
struct SlotSizes<'e> {
    infos: &'e [crate::fusion::BufferInfo],
    sample_len: &'e [usize],
    local: &'e [bool],
    unwritten: &'e [bool],
    input: BufId,
    output: BufId,
}

impl<'e> SlotSizes<'e> {
    fn new(
        lowered: &'e Lowered,
        sample_len: &'e [usize],
        local: &'e [bool],
        unwritten: &'e [bool],
    ) -> SlotSizes<'e> {
        SlotSizes {
            infos: &lowered.buffers,
            sample_len,
            local,
            unwritten,
            input: lowered.input,
            output: lowered.output,
        }
    }

    /// Floats buffer `id` takes in its slot at `batch`. The input is read
    /// from the caller: it is only copied into its buffer when it is also
    /// the output.
    fn len(&self, id: BufId, batch: usize) -> usize {
        if self.unwritten[id] || (id == self.input && id != self.output) {
            0
        } else {
            buffer_len(self.infos, self.sample_len, self.local, id, batch)
        }
    }
}

/// Zero the padding of one sample's padded layout `os` that conv `g` writes
/// the image of: the whole layout in one fill, which the image is then
/// written over. On the keyword-spotting DS-CNN (a 64 x 27 x 7 layout, a
/// third of it padding) that costs about 1.2 us a run; zeroing only the
/// padding (above, below, the 2-cell gaps between rows) cost about 2 us.
fn zero_padding(os: &mut [f32], g: &ConvGeom, p: PaddedOutput) {
    if let Some(layout) = os.get_mut(..g.out_c * p.plane) {
        layout.fill(0.0);
    }
}

/// Zero what a conv's GEMM wrote between the rows of a padded layout (the right
/// padding of row y and the left padding of row y + 1).
fn zero_row_gaps(os: &mut [f32], g: &ConvGeom, p: PaddedOutput) {
    let gap = p.row_width - g.ow;
    let first = p.pad * p.row_width + p.pad + g.ow;
    for c in 0..g.out_c {
        for y in 0..g.oh.saturating_sub(1) {
            let at = c * p.plane + first + y * p.row_width;
            // Usually two cells (pad 1): two stores, not a call to memset per row.
            match os.get_mut(at..at + gap) {
                Some([a, b]) => {
                    *a = 0.0;
                    *b = 0.0;
                }
                Some(cells) => cells.fill(0.0),
                None => {}
            }
        }
    }
}

/// Attention scores of one sample on the tiled GEMM, one GEMM per head:
/// `out[h, i, j] = q_h[i] . k_h[j] / sqrt(dh)`; `dims` = (seq, d, heads).
pub(crate) fn attention_scores(
    ws: &mut GemmWorkspace,
    engine: (SimdLevel, &TileParams),
    q: (&[f32], RowView),
    k: (&[f32], RowView),
    (seq, d, heads): (usize, usize, usize),
    out: &mut [f32],
) -> Result<(), KernelError> {
    let dh = d / heads.max(1);
    for h in 0..heads {
        let out = &mut out[h * seq * seq..(h + 1) * seq * seq];
        attention_scores_head(ws, engine, q, k, (seq, dh, h), out)?;
    }
    Ok(())
}

/// Head `h` of [`attention_scores`]: `out[i, j]`, seq x seq; `dims` = (seq, dh, h).
fn attention_scores_head(
    ws: &mut GemmWorkspace,
    (simd, tile): (SimdLevel, &TileParams),
    (qb, qv): (&[f32], RowView),
    (kb, kv): (&[f32], RowView),
    (seq, dh, h): (usize, usize, usize),
    out: &mut [f32],
) -> Result<(), KernelError> {
    let scale = 1.0 / (dh as f32).sqrt();
    let a = MatRef::row_major(&qb[qv.offset + h * dh..], qv.ld);
    // K_h^T: element (t, j) = k[j, h*dh + t].
    let b = MatRef::transposed(&kb[kv.offset + h * dh..], kv.ld);
    let c = &mut out[..seq * seq];
    sgemm_with(
        ws,
        tile,
        simd,
        seq,
        seq,
        dh,
        a,
        BOperand::Mat(b),
        c,
        seq,
        Epilogue::NONE,
    )?;
    c.iter_mut().for_each(|v| *v *= scale);
    Ok(())
}

/// Attention context of one sample on the tiled GEMM, one GEMM per head:
/// `out[i, h*dh + t] = sum_j p[h, i, j] * v[j, h*dh + t]`; `dims` = (seq, d, heads).
pub(crate) fn attention_context(
    ws: &mut GemmWorkspace,
    engine: (SimdLevel, &TileParams),
    p: &[f32],
    v: (&[f32], RowView),
    (seq, d, heads): (usize, usize, usize),
    out: &mut [f32],
) -> Result<(), KernelError> {
    let dh = d / heads.max(1);
    for h in 0..heads {
        attention_context_head(ws, engine, p, v, (seq, dh, h), &mut out[h * dh..], d)?;
    }
    Ok(())
}

/// Head `h` of [`attention_context`]: `seq` rows of `dh` values, `ldc` apart in `out`.
fn attention_context_head(
    ws: &mut GemmWorkspace,
    (simd, tile): (SimdLevel, &TileParams),
    p: &[f32],
    (vb, vv): (&[f32], RowView),
    (seq, dh, h): (usize, usize, usize),
    out: &mut [f32],
    ldc: usize,
) -> Result<(), KernelError> {
    let a = MatRef::row_major(&p[h * seq * seq..], seq);
    let b = MatRef::row_major(&vb[vv.offset + h * dh..], vv.ld);
    sgemm_with(
        ws,
        tile,
        simd,
        seq,
        dh,
        seq,
        a,
        BOperand::Mat(b),
        out,
        ldc,
        Epilogue::NONE,
    )
}

/// Run `one_head(worker, sample, head)` for every (sample, head) of `batch`
/// samples of `heads` heads, each a seq x seq x dh GEMM, on up to `threads`
/// threads when that much work is worth it (`split` = (batch, heads, seq, dh,
/// threads)); the first error wins.
fn run_heads(
    workers: &mut [Worker],
    record: &mut pool::ChunkRecord,
    (batch, heads, seq, dh, threads): (usize, usize, usize, usize, usize),
    one_head: &(dyn Fn(&mut Worker, usize, usize) -> Result<(), KernelError> + Sync),
) -> Result<(), KernelError> {
    let flops = 2.0 * (batch * heads * seq * seq * dh) as f64;
    let helpers = helpers_worth(threads, flops).min(workers.len().saturating_sub(1));
    let participants = pool::PerParticipant::new(workers);
    let done = pool::try_run_chunks(record, helpers, batch * heads, &|participant, chunk| {
        // SAFETY: `participant` is the number `run_chunks` gave this thread.
        let worker = unsafe { participants.get(participant) }
            .ok_or_else(|| KernelError::Gemm("attention: no worker".into()))?;
        one_head(worker, chunk / heads, chunk % heads)
    });
    pool::equalize(workers);
    done
}

/// The buffer slice of sample `s` holding a view, and the view relative to it.
fn view_sample<'a>(
    buf: &'a [f32],
    infos: &[crate::fusion::BufferInfo],
    v: View,
    s: usize,
) -> (&'a [f32], RowView) {
    let n = infos[v.buf].numel;
    if infos[v.buf].constant.is_some() {
        (&buf[..n], v.rows)
    } else {
        (&buf[s * n..(s + 1) * n], v.rows)
    }
}

fn apply_act(act: Option<Activation>, xs: &mut [f32]) {
    if let Some(a) = act {
        act::apply_slice(a, xs);
    }
}

/// Row-times-matrix in i-k-j order (contiguous, vectorisable) with the epilogue fused.
#[allow(clippy::too_many_arguments)]
fn dense_simple(
    x: &[f32],
    m: usize,
    k: usize,
    n: usize,
    w: &[f32],
    bias: Option<&[f32]>,
    act: Option<Activation>,
    out: &mut [f32],
) {
    for i in 0..m {
        let row = &mut out[i * n..(i + 1) * n];
        match bias {
            Some(b) => row.copy_from_slice(&b[..n]),
            None => row.iter_mut().for_each(|v| *v = 0.0),
        }
        for p in 0..k {
            let a = x[i * k + p];
            let wr = &w[p * n..(p + 1) * n];
            row.iter_mut().zip(wr).for_each(|(c, &b)| *c += a * b);
        }
        apply_act(act, row);
    }
}

/// 1x1 conv as rows of axpys over contiguous pixel rows.
fn pointwise_simple(
    x: &[f32],
    ic: usize,
    hw: usize,
    w: &[f32],
    oc: usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    for o in 0..oc {
        let row = &mut out[o * hw..(o + 1) * hw];
        let b0 = bias.map_or(0.0, |b| b[o]);
        row.iter_mut().for_each(|v| *v = b0);
        for i in 0..ic {
            let wv = w[o * ic + i];
            row.iter_mut()
                .zip(&x[i * hw..(i + 1) * hw])
                .for_each(|(c, &v)| *c += wv * v);
        }
    }
}

/// Whether step `si` is a pointwise conv whose output only feeds step `si + 1`,
/// a global average pool (so the pooled sums can be taken in its place).
fn pools_next(lowered: &Lowered, readers: &[Option<usize>], si: usize) -> bool {
    readers.get(si).copied().flatten() == Some(si + 1)
        && matches!(lowered.steps[si + 1].kind, StepKind::GlobalAvgPool { .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fusion::{lower_with, FusionOptions};

    /// The steps' sole readers, found in one pass, are those a scan of every
    /// step per step finds, on programs lowered with and without fusion
    /// (branches, residuals, a pooled pointwise conv, chains).
    #[test]
    fn sole_readers_agree_with_a_scan_of_every_step() {
        let scan = |lowered: &Lowered, si: usize| -> Option<usize> {
            let out = lowered.steps[si].out;
            let writers = lowered.steps.iter().filter(|s| s.out == out).count();
            if out == lowered.output || writers != 1 {
                return None;
            }
            let mut readers =
                (0..lowered.steps.len()).filter(|&j| lowered.steps[j].kind.inputs().contains(&out));
            let first = readers.next()?;
            readers.next().is_none().then_some(first)
        };
        let graphs = [
            crate::models::convnet_224(1).expect("model"),
            crate::models::transformer_block(1).expect("model"),
            crate::models::mlp_1024(1).expect("model"),
            crate::models::elementwise_chain(64, 1).expect("model"),
        ];
        let mut found = 0;
        for graph in &graphs {
            for opts in [
                FusionOptions::default(),
                FusionOptions {
                    epilogues: false,
                    chains: false,
                    horizontal: false,
                },
            ] {
                let lowered = lower_with(graph, opts).expect("lowered");
                let want: Vec<Option<usize>> = (0..lowered.steps.len())
                    .map(|si| scan(&lowered, si))
                    .collect();
                assert_eq!(sole_readers(&lowered), want, "{}", graph.name());
                found += want.iter().flatten().count();
            }
        }
        assert!(found > 0);
    }

    /// Which dense steps look for zeros to skip: those reading a ReLU's
    /// output, whether the ReLU ran as the producing GEMM's epilogue or
    /// (op by op) as a step of its own.
    #[test]
    fn only_dense_steps_after_a_relu_skip_zeros() {
        let graph = crate::models::mlp_1024(1).expect("model");
        let simd = SimdLevel::Portable;
        let tile = TileParams::for_caches(crate::tile::CacheSizes::FALLBACK, simd);
        assert!(tile.skip_zeros);
        for fusion in [FusionOptions::default(), FusionOptions::NONE] {
            let lowered = lower_with(&graph, fusion).expect("lower");
            // Input -> dense + ReLU -> dense + ReLU -> dense 10.
            let skipping = dense_skipping(&lowered, simd, tile);
            assert_eq!(skipping, [false, true, true], "{fusion:?}");
        }
        // The transformer's dense steps read layer norms, attention and a GELU:
        // no exact zeros to look for.
        let transformer = crate::models::transformer_block(1).expect("model");
        for fusion in [FusionOptions::default(), FusionOptions::NONE] {
            let lowered = lower_with(&transformer, fusion).expect("lower");
            let skipping = dense_skipping(&lowered, simd, tile);
            assert!(
                skipping.len() >= 5 && skipping.iter().all(|s| !s),
                "{fusion:?}"
            );
        }
        // Switched off in the tile: no step skips.
        let off = TileParams {
            skip_zeros: false,
            ..tile
        };
        let lowered = lower_with(&graph, FusionOptions::default()).expect("lower");
        assert_eq!(dense_skipping(&lowered, simd, off), [false; 3]);
    }

    /// `skip_zeros` of each dense step's tile, in program order.
    fn dense_skipping(lowered: &Lowered, simd: SimdLevel, tile: TileParams) -> Vec<bool> {
        let tiles = narrow_dense_tiles(lowered, simd, tile);
        lowered
            .steps
            .iter()
            .zip(&tiles)
            .filter(|(step, _)| matches!(step.kind, StepKind::Dense { .. }))
            .map(|(_, t)| t.unwrap_or(tile).skip_zeros)
            .collect()
    }

    /// A chain whose output is larger than the last-level cache stores it
    /// past the caches: the same bits as ordinary stores, at lengths that end
    /// mid-block and samples that start unaligned (batch 3), fused and op by op.
    #[test]
    fn a_chain_stored_past_the_caches_writes_what_a_cached_one_does() {
        for len in [1usize, 7, 127, 129, 1003] {
            let graph = crate::models::elementwise_chain(len, 3).expect("model");
            for fusion in [FusionOptions::default(), FusionOptions::NONE] {
                let run = |stream_above: usize, batch: usize| -> Vec<u32> {
                    let lowered = lower_with(&graph, fusion).expect("lower");
                    let mut exe =
                        LoweredExecutable::new(BackendKind::Fused, lowered, Engine::Simple)
                            .expect("executable");
                    exe.stream_above = stream_above;
                    let input = crate::models::reference_input(&graph, batch);
                    let out = exe.run_impl(&input, batch).expect("run");
                    out.iter().map(|v| v.to_bits()).collect()
                };
                for batch in [1, 3] {
                    let cached = run(usize::MAX, batch);
                    assert_eq!(cached.len(), len * batch);
                    assert_eq!(run(0, batch), cached, "len {len} batch {batch}");
                }
            }
        }
    }
}
