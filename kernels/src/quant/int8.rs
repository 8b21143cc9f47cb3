//! u8 x s8 -> i32 GEMM with zero-point compensation.
//!
//! `C[i][j] = sum_k (A[i][k] - za) * B[k][j]`, computed as
//! `sum_k A*B - za * colsum[j]` with the weight column sums precomputed at
//! packing time. Three paths, chosen at run time (`WORKBENCH_SIMD` forces one):
//! - `Vnni512`: AVX-512 VNNI `vpdpbusd`, 4 k-steps of u8*s8 per i32 lane;
//! - `Avx2`: operands widened to i16 and `vpmaddwd` (i16*i16 pairs into i32),
//!   which cannot saturate, unlike `vpmaddubsw`;
//! - `Portable`: plain i32 loops.
//!
//! A is row-major u8 with rows readable up to `k_padded()` (a multiple of 4);
//! padding bytes may hold anything because the packed weights are zero there.
//! B is given k x n row-major s8 and packed once per path into column panels
//! (`[panel][k / g][cols][g]`, g = 4 for VNNI, 2 for AVX2, 1 portable), so a
//! micro-kernel streams one contiguous panel over the whole reduction and
//! keeps its tile of accumulators in registers.
//!
//! One driver loop and one epilogue serve all paths: each tile's i32 sums go
//! through a small stack buffer into the epilogue (zero-point compensation,
//! then raw i32, dequantized f32, or requantized u8 with bias and ReLU), so
//! every path produces bit-identical results. The AVX2 path runs the f32 and
//! u8 epilogues of its full tiles in its own registers, with the same
//! operations in the same order (the compiler's version stayed scalar or
//! gathered lanes from the stack: most of that path's small-k conv GEMMs).

use std::ops::Range;

use super::calibrate::ActivationQuant;
use super::split::{run_blocks, GemmThreads};
use super::QuantError;
use crate::pages::PageBuffer;
use crate::pool::SharedOut;

/// Largest k for which `k * 255 * 127` fits in an i32 accumulator.
pub const MAX_K: usize = (i32::MAX as usize) / (255 * 127);

/// VNNI tile: 8 rows x 3 zmm (48 columns) = 24 accumulators, 3 weight
/// registers and two broadcasts: 29 of the 32 zmm registers. 8 rows divide
/// the usual batch sizes (64: no short row tile), and 3 weight loads per 8
/// broadcasts keep the panel stream from L2 lighter than 4 per 6.
const VNNI_NR: usize = 48;
/// Columns of one VNNI weight panel, for kernels that read the packing.
pub(crate) const VNNI_PANEL_COLS: usize = VNNI_NR;
const VNNI_MR: usize = 8;
const AVX2_NR: usize = 16;
const AVX2_MR: usize = 4;
const PORTABLE_NR: usize = 16;
const PORTABLE_MR: usize = 4;
/// Largest MR x NR of any path: the stack tile the epilogue reads.
const TILE_MAX: usize = VNNI_MR * VNNI_NR;

/// Which int8 kernel runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Int8Path {
    Portable,
    Avx2,
    Vnni512,
}

impl Int8Path {
    pub const ALL: [Int8Path; 3] = [Int8Path::Portable, Int8Path::Avx2, Int8Path::Vnni512];

    pub fn name(self) -> &'static str {
        match self {
            Int8Path::Portable => "portable",
            Int8Path::Avx2 => "avx2",
            Int8Path::Vnni512 => "avx512-vnni",
        }
    }

    pub fn is_supported(self) -> bool {
        match self {
            Int8Path::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Int8Path::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Int8Path::Vnni512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The paths this CPU can run (portable always).
    pub fn supported() -> Vec<Int8Path> {
        Int8Path::ALL
            .into_iter()
            .filter(|p| p.is_supported())
            .collect()
    }

    /// Best supported path, unless `WORKBENCH_SIMD` (portable | avx2 | avx512)
    /// caps it; the cap never selects an unsupported path.
    pub fn detect() -> Int8Path {
        let cap = match super::simd_override().as_deref() {
            Some("portable") => Int8Path::Portable,
            Some("avx2") | Some("avx2fma") => Int8Path::Avx2,
            _ => Int8Path::Vnni512,
        };
        Int8Path::ALL
            .into_iter()
            .rev()
            .find(|p| *p <= cap && p.is_supported())
            .unwrap_or(Int8Path::Portable)
    }
}

impl std::fmt::Display for Int8Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Rounds `k` up to the multiple of 4 every path reads A rows to.
pub fn k_padded(k: usize) -> usize {
    k.div_ceil(4) * 4
}

#[derive(Debug, Clone)]
enum PackedData {
    /// [panel of 48 cols][k/4][48 cols][4 k] s8.
    Vnni(PageBuffer<i8>),
    /// [panel of 16 cols][k/2][16 cols][2 k] widened to i16.
    Avx2(PageBuffer<i16>),
    /// [panel of 16 cols][k][16 cols] s8.
    Portable(PageBuffer<i8>),
}

/// s8 weights packed for one path's micro-kernel, with column sums for the
/// zero-point compensation.
#[derive(Debug, Clone)]
pub struct PackedWeightsS8 {
    path: Int8Path,
    k: usize,
    n: usize,
    data: PackedData,
    col_sums: Vec<i32>,
}

/// `[panel of nr cols][kp / group][nr][group]`, zero outside k x n.
fn pack_panels<T: From<i8> + Copy + Default>(
    b: &[i8],
    ldb: usize,
    k: usize,
    n: usize,
    nr: usize,
    group: usize,
) -> PageBuffer<T> {
    let kp = k_padded(k);
    let panels = n.div_ceil(nr);
    // Streamed on every run: on huge pages where the OS allows.
    let mut d: PageBuffer<T> = PageBuffer::zeroed(panels * kp * nr);
    let mut at = 0;
    for p in 0..panels {
        for kg in (0..kp).step_by(group) {
            for c in 0..nr {
                let j = p * nr + c;
                for t in 0..group {
                    let kk = kg + t;
                    let v = if kk < k && j < n { b[kk * ldb + j] } else { 0 };
                    d[at] = T::from(v);
                    at += 1;
                }
            }
        }
    }
    d
}

impl PackedWeightsS8 {
    /// Packs a k x n row-major s8 matrix (leading dimension `ldb >= n`).
    pub fn pack(
        path: Int8Path,
        k: usize,
        n: usize,
        b: &[i8],
        ldb: usize,
    ) -> Result<PackedWeightsS8, QuantError> {
        if !path.is_supported() {
            return Err(QuantError::UnsupportedPath(path.name()));
        }
        if k > MAX_K {
            return Err(QuantError::ReductionTooLong { k, max: MAX_K });
        }
        if ldb < n {
            return Err(QuantError::BadStride {
                name: "ldb",
                value: ldb,
                min: n,
            });
        }
        let needed = if k == 0 { 0 } else { (k - 1) * ldb + n };
        if b.len() < needed {
            return Err(QuantError::BufferTooSmall {
                name: "b",
                needed,
                actual: b.len(),
            });
        }
        let mut col_sums = vec![0i32; n];
        for kk in 0..k {
            for (j, s) in col_sums.iter_mut().enumerate() {
                *s += i32::from(b[kk * ldb + j]);
            }
        }
        let data = match path {
            Int8Path::Vnni512 => PackedData::Vnni(pack_panels(b, ldb, k, n, VNNI_NR, 4)),
            Int8Path::Avx2 => PackedData::Avx2(pack_panels(b, ldb, k, n, AVX2_NR, 2)),
            Int8Path::Portable => PackedData::Portable(pack_panels(b, ldb, k, n, PORTABLE_NR, 1)),
        };
        Ok(PackedWeightsS8 {
            path,
            k,
            n,
            data,
            col_sums,
        })
    }

    pub fn path(&self) -> Int8Path {
        self.path
    }
    pub fn k(&self) -> usize {
        self.k
    }
    pub fn n(&self) -> usize {
        self.n
    }
    /// Row length A must be readable to (and the minimum `lda`).
    pub fn k_padded(&self) -> usize {
        k_padded(self.k)
    }
    pub fn col_sums(&self) -> &[i32] {
        &self.col_sums
    }
    /// The VNNI path's packed panels (`[panel][kp / 4][48][4]`), if this is it.
    pub(crate) fn vnni_panels(&self) -> Option<&[i8]> {
        match &self.data {
            PackedData::Vnni(d) => Some(d),
            _ => None,
        }
    }
    /// Bytes of packed weight storage.
    pub fn bytes(&self) -> usize {
        match &self.data {
            PackedData::Vnni(d) | PackedData::Portable(d) => d.len(),
            PackedData::Avx2(d) => d.len() * 2,
        }
    }
}

/// A row-major operand of `rows` rows read to `width` with stride `ld`:
/// the stride covers the width and the buffer (of `len` elements) the rows.
pub(super) fn check_matrix(
    len: usize,
    ld: usize,
    rows: usize,
    width: usize,
    (stride_name, buffer_name): (&'static str, &'static str),
) -> Result<(), QuantError> {
    if ld < width {
        return Err(QuantError::BadStride {
            name: stride_name,
            value: ld,
            min: width,
        });
    }
    let needed = if rows == 0 {
        0
    } else {
        (rows - 1) * ld + width
    };
    if len < needed {
        return Err(QuantError::BufferTooSmall {
            name: buffer_name,
            needed,
            actual: len,
        });
    }
    Ok(())
}

/// What to do with the i32 result to produce f32 or u8 output.
#[derive(Debug, Clone, Copy)]
pub struct Int8Epilogue<'a> {
    /// Activation quantization of A.
    pub act: ActivationQuant,
    /// Per-column weight scales (length n).
    pub weight_scales: &'a [f32],
    pub bias: Option<&'a [f32]>,
    pub relu: bool,
}

impl Int8Epilogue<'_> {
    pub(super) fn check(&self, n: usize) -> Result<(), QuantError> {
        if self.weight_scales.len() < n {
            return Err(QuantError::Mismatch(format!(
                "{} weight scales for {n} columns",
                self.weight_scales.len()
            )));
        }
        if let Some(b) = self.bias {
            if b.len() < n {
                return Err(QuantError::Mismatch(format!(
                    "{} bias values for {n} columns",
                    b.len()
                )));
            }
        }
        Ok(())
    }
}

/// Where the epilogue writes (row-major with the given leading dimension),
/// shared by the threads of a split GEMM, each writing its own tiles.
enum Sink<'a> {
    I32(SharedOut<'a, i32>, usize),
    F32(SharedOut<'a, f32>, usize, Int8Epilogue<'a>),
    U8(SharedOut<'a, u8>, usize, Int8Epilogue<'a>, ActivationQuant),
}

/// `t` (already `x / scale + zero_point`) to u8: clamped to [0, 255], rounded
/// half to even by the 1.5 * 2^23 trick (exact for this range, no libm call,
/// vectorizes on every target), NaN to `nan_as`.
#[inline(always)]
pub(crate) fn saturate_u8(t: f32, nan_as: f32) -> u8 {
    let t = if t.is_nan() { nan_as } else { t };
    let c = t.clamp(0.0, 255.0);
    ((c + 12_582_912.0).to_bits() & 0xff) as u8
}

/// `dst[j] = emit(y_j)` with `y_j = (acc[j] - zsum[j]) * mul[j] + bias[j]`,
/// then ReLU, where `zsum[j] = za * colsum[j]` and `mul[j] = sa * ws[j]` come
/// from [`PanelEpilogue`]; one operation order for every path. Zipped slices
/// (no indexing) so the loop vectorizes.
#[inline(always)]
fn dequant_into<T>(
    dst: &mut [T],
    acc: &[i32],
    cols: &PanelEpilogue,
    relu: bool,
    emit: impl Fn(f32) -> T,
) {
    // The values go through a local array before `emit` stores them: with
    // the loads of one column after the store of the last, which the compiler
    // could not prove apart, the unrolled full-tile epilogue stayed scalar
    // (two thirds of the AVX2 conv GEMM's time). One loop per (bias, ReLU)
    // case keeps each body straight-line.
    let n = acc.len().min(PANEL_MAX);
    let mut ys = [0.0f32; PANEL_MAX];
    let ys = &mut ys[..n];
    let base = ys
        .iter_mut()
        .zip(acc)
        .zip(&cols.zsum[..n])
        .zip(&cols.mul[..n]);
    if cols.has_bias {
        for ((((y, &x), &z), &m), &bv) in base.zip(&cols.bias[..n]) {
            *y = (x - z) as f32 * m + bv;
        }
    } else {
        for (((y, &x), &z), &m) in base {
            *y = (x - z) as f32 * m;
        }
    }
    if relu {
        for (d, &y) in dst.iter_mut().zip(ys.iter()) {
            *d = emit(relu_of(y));
        }
    } else {
        for (d, &y) in dst.iter_mut().zip(ys.iter()) {
            *d = emit(y);
        }
    }
}

/// ReLU that keeps NaN and -0.0 as they are (`max` would not).
#[inline(always)]
fn relu_of(y: f32) -> f32 {
    if y < 0.0 {
        0.0
    } else {
        y
    }
}

/// Largest panel width of any path (the VNNI panel).
const PANEL_MAX: usize = VNNI_NR;
const _: () = assert!(AVX2_NR <= PANEL_MAX && PORTABLE_NR <= PANEL_MAX);
const _: () = assert!(AVX2_MR * AVX2_NR <= TILE_MAX && PORTABLE_MR * PORTABLE_NR <= TILE_MAX);

/// The epilogue's per-column constants of one column panel, computed once per
/// panel instead of once per output row: `za * colsum[j]`, `sa * ws[j]`, bias.
struct PanelEpilogue {
    zsum: [i32; PANEL_MAX],
    mul: [f32; PANEL_MAX],
    bias: [f32; PANEL_MAX],
    has_bias: bool,
}

impl PanelEpilogue {
    #[inline(always)]
    fn new(sink: &Sink<'_>, za: i32, col_sums: &[i32], col0: usize, cols: usize) -> Self {
        let mut pe = PanelEpilogue {
            zsum: [0; PANEL_MAX],
            mul: [0.0; PANEL_MAX],
            bias: [0.0; PANEL_MAX],
            has_bias: false,
        };
        let span = col0..col0 + cols;
        for (z, &s) in pe.zsum.iter_mut().zip(&col_sums[span.clone()]) {
            *z = za * s;
        }
        if let Sink::F32(_, _, ep) | Sink::U8(_, _, ep, _) = sink {
            let sa = ep.act.scale;
            for (m, &w) in pe.mul.iter_mut().zip(&ep.weight_scales[span.clone()]) {
                *m = sa * w;
            }
            if let Some(b) = ep.bias {
                pe.bias[..cols].copy_from_slice(&b[span]);
                pe.has_bias = true;
            }
        }
        pe
    }
}

/// Applies the epilogue to the first `rows` rows of a tile (row stride `nr`):
/// `tile[r * nr + j]` is the raw sum of output row `row0 + r`, column `col0 + j`.
///
/// # Safety
/// No other thread writes these rows and columns of the sink meanwhile.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn finish_tile(
    sink: &Sink<'_>,
    pe: &PanelEpilogue,
    tile: &[i32],
    nr: usize,
    rows: usize,
    row0: usize,
    col0: usize,
    cols: usize,
) {
    let accs = tile.chunks_exact(nr).take(rows).map(|t| &t[..cols]);
    let span = |r: usize, ld: usize| (row0 + r) * ld + col0..(row0 + r) * ld + col0 + cols;
    // SAFETY (each `slice`): these elements are this thread's (the caller's
    // contract). The sink was checked to hold the whole m x n output, so
    // every span is inside (`if let` never skips a row).
    match sink {
        Sink::I32(c, ldc) => {
            for (r, acc) in accs.enumerate() {
                if let Some(dst) = unsafe { c.slice(span(r, *ldc)) } {
                    for ((d, &x), &z) in dst.iter_mut().zip(acc).zip(&pe.zsum[..cols]) {
                        *d = x - z;
                    }
                }
            }
        }
        Sink::F32(o, ldo, ep) => {
            for (r, acc) in accs.enumerate() {
                if let Some(dst) = unsafe { o.slice(span(r, *ldo)) } {
                    dequant_into(dst, acc, pe, ep.relu, |y| y);
                }
            }
        }
        Sink::U8(o, ldo, ep, q) => {
            let inv = 1.0 / q.scale;
            let zp = f32::from(q.zero_point);
            for (r, acc) in accs.enumerate() {
                if let Some(dst) = unsafe { o.slice(span(r, *ldo)) } {
                    dequant_into(dst, acc, pe, ep.relu, |y| saturate_u8(y * inv + zp, zp));
                }
            }
        }
    }
}

/// A path's micro-kernel: sums of `rows <= MR` rows of A against one packed
/// panel over the whole (padded) reduction, written to `tile[r * NR + c]`.
trait TileKernel {
    type W: Copy;
    const MR: usize;
    const NR: usize;
    /// # Safety
    /// The CPU supports the path; `a` holds `rows` rows of stride `lda` readable
    /// to `kp`; `panel` holds `kp * NR` packed weights; `tile` >= `MR * NR`.
    /// Only the first `cols` columns of each tile row are read afterwards.
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile(
        a: &[u8],
        lda: usize,
        rows: usize,
        cols: usize,
        kp: usize,
        panel: &[Self::W],
        tile: &mut [i32],
    );

    /// The epilogue of a full `MR x NR` tile at (`row0`, `col0`) in the
    /// path's own registers, with [`finish_tile`]'s arithmetic; `false` (the
    /// default) leaves it to `finish_tile`.
    ///
    /// # Safety
    /// The CPU supports the path; as for [`finish_tile`].
    #[inline(always)]
    unsafe fn finish_full_tile(
        _sink: &Sink<'_>,
        _pe: &PanelEpilogue,
        _tile: &[i32],
        _row0: usize,
        _col0: usize,
    ) -> bool {
        false
    }
}

/// Rows and column panels of a GEMM one thread computes.
#[derive(Debug, Clone)]
struct Block {
    rows: Range<usize>,
    panels: Range<usize>,
}

/// The loop over column panels and row tiles shared by every path, for one
/// block of the output; the epilogue inlines into the caller, so it is
/// compiled with the path's features.
///
/// # Safety
/// The CPU supports `K`'s path; buffers were checked by the caller (A for m
/// rows readable to kp, `b` with ceil(n / NR) panels, the sink for m x n);
/// the block is inside m x ceil(n / NR), and no other thread writes its part
/// of the sink meanwhile.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn drive<K: TileKernel>(
    a: &[u8],
    lda: usize,
    block: Block,
    kp: usize,
    n: usize,
    za: i32,
    col_sums: &[i32],
    b: &[K::W],
    sink: &Sink<'_>,
) {
    let mut tile = [0i32; TILE_MAX];
    let panel_len = kp * K::NR;
    for p in block.panels {
        let panel = &b[p * panel_len..(p + 1) * panel_len];
        let col0 = p * K::NR;
        let cols = (n - col0).min(K::NR);
        let pe = PanelEpilogue::new(sink, za, col_sums, col0, cols);
        let mut i = block.rows.start;
        while i < block.rows.end {
            let rows = (block.rows.end - i).min(K::MR);
            if kp > 0 {
                // SAFETY: forwarded from the caller's contract; rows i..i+rows exist.
                unsafe { K::tile(&a[i * lda..], lda, rows, cols, kp, panel, &mut tile) };
            }
            // SAFETY: this tile is in the block, which is this thread's.
            unsafe {
                if cols == K::NR && rows == K::MR {
                    // Constant sizes: the epilogue unrolls without tail masks.
                    if !K::finish_full_tile(sink, &pe, &tile, i, col0) {
                        finish_tile(sink, &pe, &tile, K::NR, K::MR, i, col0, K::NR);
                    }
                } else {
                    finish_tile(sink, &pe, &tile, K::NR, rows, i, col0, cols);
                }
            }
            i += rows;
        }
    }
}

struct PortableKernel;

impl TileKernel for PortableKernel {
    type W = i8;
    const MR: usize = PORTABLE_MR;
    const NR: usize = PORTABLE_NR;
    unsafe fn tile(
        a: &[u8],
        lda: usize,
        rows: usize,
        _cols: usize,
        kp: usize,
        panel: &[i8],
        tile: &mut [i32],
    ) {
        for r in 0..rows {
            let acc = &mut tile[r * PORTABLE_NR..(r + 1) * PORTABLE_NR];
            acc.fill(0);
            for (&av, brow) in a[r * lda..r * lda + kp]
                .iter()
                .zip(panel.chunks_exact(PORTABLE_NR))
            {
                let av = i32::from(av);
                for (x, &bv) in acc.iter_mut().zip(brow) {
                    *x += av * i32::from(bv);
                }
            }
        }
    }
}

/// The register tile (rows, columns) of a path's micro-kernel.
fn tile_shape(path: Int8Path) -> (usize, usize) {
    match path {
        Int8Path::Vnni512 => (VNNI_MR, VNNI_NR),
        Int8Path::Avx2 => (AVX2_MR, AVX2_NR),
        Int8Path::Portable => (PORTABLE_MR, PORTABLE_NR),
    }
}

/// Runs the kernel of `packed`'s path into `sink` (buffers already checked),
/// on `threads` when given and the work is worth splitting (`split`).
fn run_gemm(
    a: &[u8],
    lda: usize,
    m: usize,
    za: u8,
    packed: &PackedWeightsS8,
    sink: Sink<'_>,
    threads: Option<GemmThreads<'_>>,
) -> Result<(), QuantError> {
    let (kp, n) = (packed.k_padded(), packed.n);
    if m == 0 || n == 0 {
        return Ok(());
    }
    let (mr, nr) = tile_shape(packed.path);
    let flops = 2.0 * m as f64 * n as f64 * packed.k as f64;
    let sink = &sink;
    // Each block runs once, on one thread: its tiles of the sink are its own.
    let block = |rows: Range<usize>, panels: Range<usize>| {
        // SAFETY: as just said; the block is inside m x ceil(n / nr).
        unsafe { run_block(a, lda, za, packed, sink, Block { rows, panels }) }
    };
    run_blocks(threads, flops, m, n.div_ceil(nr), mr, kp, &block)
}

/// One block of the GEMM, by the kernel of `packed`'s path.
///
/// # Safety
/// Buffers checked by the caller (as for [`drive`]); the block is inside the
/// GEMM, and no other thread writes its part of the sink meanwhile.
unsafe fn run_block(
    a: &[u8],
    lda: usize,
    za: u8,
    packed: &PackedWeightsS8,
    sink: &Sink<'_>,
    block: Block,
) -> Result<(), QuantError> {
    let (kp, n, za, sums) = (packed.k_padded(), packed.n, i32::from(za), &packed.col_sums);
    match &packed.data {
        // SAFETY: the portable kernel needs no CPU feature; the rest is the caller's contract.
        PackedData::Portable(b) => unsafe {
            drive::<PortableKernel>(a, lda, block, kp, n, za, sums, b, sink)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the path was checked supported at packing time; the rest as above.
        PackedData::Vnni(b) => unsafe { x86::vnni_gemm(a, lda, block, kp, n, za, sums, b, sink) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, for avx2.
        PackedData::Avx2(b) => unsafe { x86::avx2_gemm(a, lda, block, kp, n, za, sums, b, sink) },
        #[cfg(not(target_arch = "x86_64"))]
        _ => return Err(QuantError::UnsupportedPath(packed.path.name())),
    }
    Ok(())
}

/// `C[i][j] = sum_k (A[i][k] - a_zero_point) * B[k][j]` for an m x k u8 matrix A
/// (rows readable to `packed.k_padded()`) and the packed weights; C is m x n, `ldc >= n`.
pub fn gemm_u8s8_i32(
    a: &[u8],
    lda: usize,
    m: usize,
    a_zero_point: u8,
    packed: &PackedWeightsS8,
    c: &mut [i32],
    ldc: usize,
) -> Result<(), QuantError> {
    check_matrix(a.len(), lda, m, packed.k_padded(), ("lda", "a"))?;
    check_matrix(c.len(), ldc, m, packed.n, ("ldc", "c"))?;
    let sink = Sink::I32(SharedOut::new(c), ldc);
    run_gemm(a, lda, m, a_zero_point, packed, sink, None)
}

/// int8 GEMM with dequantizing epilogue: `out[i][j] = sa * sw[j] * C[i][j] + bias[j]`
/// (then ReLU if asked), computed tile by tile without an i32 intermediate.
pub fn gemm_u8s8_f32(
    a: &[u8],
    lda: usize,
    m: usize,
    packed: &PackedWeightsS8,
    epilogue: Int8Epilogue<'_>,
    out: &mut [f32],
    ldo: usize,
) -> Result<(), QuantError> {
    gemm_u8s8_f32_on(a, lda, m, packed, epilogue, out, ldo, None)
}

/// [`gemm_u8s8_f32`] split over `threads` when given and worth it (the same bits).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_u8s8_f32_on(
    a: &[u8],
    lda: usize,
    m: usize,
    packed: &PackedWeightsS8,
    epilogue: Int8Epilogue<'_>,
    out: &mut [f32],
    ldo: usize,
    threads: Option<GemmThreads<'_>>,
) -> Result<(), QuantError> {
    epilogue.check(packed.n)?;
    check_matrix(a.len(), lda, m, packed.k_padded(), ("lda", "a"))?;
    check_matrix(out.len(), ldo, m, packed.n, ("ldo", "out"))?;
    let sink = Sink::F32(SharedOut::new(out), ldo, epilogue);
    run_gemm(a, lda, m, epilogue.act.zero_point, packed, sink, threads)
}

/// int8 GEMM whose epilogue requantizes for the next int8 layer: the f32 value
/// of [`gemm_u8s8_f32`] (bias, ReLU) quantized with `out_quant` straight to u8,
/// so consecutive layers chain without an f32 activation buffer. Columns past
/// n of each output row (up to `ldo`) are left alone.
#[allow(clippy::too_many_arguments)]
pub fn gemm_u8s8_u8(
    a: &[u8],
    lda: usize,
    m: usize,
    packed: &PackedWeightsS8,
    epilogue: Int8Epilogue<'_>,
    out_quant: ActivationQuant,
    out: &mut [u8],
    ldo: usize,
) -> Result<(), QuantError> {
    gemm_u8s8_u8_on(a, lda, m, packed, epilogue, out_quant, out, ldo, None)
}

/// [`gemm_u8s8_u8`] split over `threads` when given and worth it (the same bits).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_u8s8_u8_on(
    a: &[u8],
    lda: usize,
    m: usize,
    packed: &PackedWeightsS8,
    epilogue: Int8Epilogue<'_>,
    out_quant: ActivationQuant,
    out: &mut [u8],
    ldo: usize,
    threads: Option<GemmThreads<'_>>,
) -> Result<(), QuantError> {
    epilogue.check(packed.n)?;
    check_matrix(a.len(), lda, m, packed.k_padded(), ("lda", "a"))?;
    check_matrix(out.len(), ldo, m, packed.n, ("ldo", "out"))?;
    let sink = Sink::U8(SharedOut::new(out), ldo, epilogue, out_quant);
    run_gemm(a, lda, m, epilogue.act.zero_point, packed, sink, threads)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{
        drive, Block, PanelEpilogue, Sink, TileKernel, AVX2_MR, AVX2_NR, VNNI_MR, VNNI_NR,
    };
    use std::arch::x86_64::*;

    /// # Safety
    /// CPU supports avx512f/bw/vnni; buffers as for [`drive`].
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn vnni_gemm(
        a: &[u8],
        lda: usize,
        block: Block,
        kp: usize,
        n: usize,
        za: i32,
        col_sums: &[i32],
        b: &[i8],
        sink: &Sink<'_>,
    ) {
        // SAFETY: forwarded contract; this function enables the features.
        unsafe { drive::<VnniKernel>(a, lda, block, kp, n, za, col_sums, b, sink) }
    }

    /// # Safety
    /// CPU supports avx2; buffers as for [`drive`].
    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn avx2_gemm(
        a: &[u8],
        lda: usize,
        block: Block,
        kp: usize,
        n: usize,
        za: i32,
        col_sums: &[i32],
        b: &[i16],
        sink: &Sink<'_>,
    ) {
        // SAFETY: forwarded contract; this function enables the features.
        unsafe { drive::<Avx2Kernel>(a, lda, block, kp, n, za, col_sums, b, sink) }
    }

    struct VnniKernel;

    impl TileKernel for VnniKernel {
        type W = i8;
        const MR: usize = VNNI_MR;
        const NR: usize = VNNI_NR;
        #[inline(always)]
        unsafe fn tile(
            a: &[u8],
            lda: usize,
            rows: usize,
            cols: usize,
            kp: usize,
            panel: &[i8],
            tile: &mut [i32],
        ) {
            let (a, b, t) = (a.as_ptr(), panel.as_ptr(), tile.as_mut_ptr());
            // SAFETY: the caller's contract (features, rows readable to kp, a
            // full panel, a tile of MR x NR). A narrow last panel (the 10
            // classes of a classifier) computes only the zmm columns it needs.
            unsafe {
                match cols.div_ceil(16) {
                    1 => vnni_rows::<1>(rows, a, lda, kp, b, t),
                    2 => vnni_rows::<2>(rows, a, lda, kp, b, t),
                    _ if rows == VNNI_MR => vnni_full_tile(a, lda, kp, b, t),
                    _ => vnni_rows::<3>(rows, a, lda, kp, b, t),
                }
            }
        }
    }

    /// # Safety
    /// As for [`vnni_tile`].
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    unsafe fn vnni_rows<const NZ: usize>(
        rows: usize,
        a: *const u8,
        lda: usize,
        kp: usize,
        b: *const i8,
        t: *mut i32,
    ) {
        // SAFETY: forwarded contract.
        unsafe {
            match rows {
                8 => vnni_tile::<8, NZ>(a, lda, kp, b, t),
                7 => vnni_tile::<7, NZ>(a, lda, kp, b, t),
                6 => vnni_tile::<6, NZ>(a, lda, kp, b, t),
                5 => vnni_tile::<5, NZ>(a, lda, kp, b, t),
                4 => vnni_tile::<4, NZ>(a, lda, kp, b, t),
                3 => vnni_tile::<3, NZ>(a, lda, kp, b, t),
                2 => vnni_tile::<2, NZ>(a, lda, kp, b, t),
                _ => vnni_tile::<1, NZ>(a, lda, kp, b, t),
            }
        }
    }

    /// The full 8 x 48 tile, where almost all the work is, in assembly: written
    /// with intrinsics, LLVM kept the 24 accumulators of this tile (and of the
    /// former 6 x 64 one) in registers only by rotating them through ~40
    /// `vmovdqa64` and 4 stack spills per k-step, and how badly depended on
    /// inlining (the same GEMM took 7.6 ms in one binary, 13.5 ms in another;
    /// this loop runs at 90-100% of the measured `vpdpbusd` peak).
    /// Per 4 k-steps: 3 weight loads, 8 broadcasts of 4 A bytes, 24 `vpdpbusd`.
    ///
    /// # Safety
    /// CPU supports avx512f/vnni; `a` has 8 rows of stride `lda` readable to
    /// `kp` (a multiple of 4, > 0); `b` holds `kp * 48` bytes; `t` holds 8 * 48 i32.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    unsafe fn vnni_full_tile(a: *const u8, lda: usize, kp: usize, b: *const i8, t: *mut i32) {
        debug_assert!(kp > 0 && kp.is_multiple_of(4));
        let lda3 = lda * 3;
        // SAFETY: the loop runs kp / 4 times; each pass reads 4 bytes at
        // column kk < kp of rows 0..8 (a0 = row 0, a4 = row 4, plus lda, 2 lda,
        // 3 lda) and 192 bytes of the panel at b + kk * 48; the stores write
        // 8 x 48 i32 to t. Only zmm0..zmm31 (declared clobbered), the pointer
        // operands and flags change; no stack use.
        unsafe {
            std::arch::asm!(
                "vpxord zmm8, zmm8, zmm8",
                "vpxord zmm9, zmm9, zmm9",
                "vpxord zmm10, zmm10, zmm10",
                "vpxord zmm11, zmm11, zmm11",
                "vpxord zmm12, zmm12, zmm12",
                "vpxord zmm13, zmm13, zmm13",
                "vpxord zmm14, zmm14, zmm14",
                "vpxord zmm15, zmm15, zmm15",
                "vpxord zmm16, zmm16, zmm16",
                "vpxord zmm17, zmm17, zmm17",
                "vpxord zmm18, zmm18, zmm18",
                "vpxord zmm19, zmm19, zmm19",
                "vpxord zmm20, zmm20, zmm20",
                "vpxord zmm21, zmm21, zmm21",
                "vpxord zmm22, zmm22, zmm22",
                "vpxord zmm23, zmm23, zmm23",
                "vpxord zmm24, zmm24, zmm24",
                "vpxord zmm25, zmm25, zmm25",
                "vpxord zmm26, zmm26, zmm26",
                "vpxord zmm27, zmm27, zmm27",
                "vpxord zmm28, zmm28, zmm28",
                "vpxord zmm29, zmm29, zmm29",
                "vpxord zmm30, zmm30, zmm30",
                "vpxord zmm31, zmm31, zmm31",
                ".p2align 5",
                "2:",
                "vmovdqu64 zmm0, [{b}]",
                "vmovdqu64 zmm1, [{b} + 64]",
                "vmovdqu64 zmm2, [{b} + 128]",
                "vpbroadcastd zmm3, dword ptr [{a0}]",
                "vpbroadcastd zmm4, dword ptr [{a0} + {lda}]",
                "vpdpbusd zmm8, zmm3, zmm0",
                "vpdpbusd zmm9, zmm3, zmm1",
                "vpdpbusd zmm10, zmm3, zmm2",
                "vpbroadcastd zmm3, dword ptr [{a0} + {lda} * 2]",
                "vpdpbusd zmm11, zmm4, zmm0",
                "vpdpbusd zmm12, zmm4, zmm1",
                "vpdpbusd zmm13, zmm4, zmm2",
                "vpbroadcastd zmm4, dword ptr [{a0} + {lda3}]",
                "vpdpbusd zmm14, zmm3, zmm0",
                "vpdpbusd zmm15, zmm3, zmm1",
                "vpdpbusd zmm16, zmm3, zmm2",
                "vpbroadcastd zmm3, dword ptr [{a4}]",
                "vpdpbusd zmm17, zmm4, zmm0",
                "vpdpbusd zmm18, zmm4, zmm1",
                "vpdpbusd zmm19, zmm4, zmm2",
                "vpbroadcastd zmm4, dword ptr [{a4} + {lda}]",
                "vpdpbusd zmm20, zmm3, zmm0",
                "vpdpbusd zmm21, zmm3, zmm1",
                "vpdpbusd zmm22, zmm3, zmm2",
                "vpbroadcastd zmm3, dword ptr [{a4} + {lda} * 2]",
                "vpdpbusd zmm23, zmm4, zmm0",
                "vpdpbusd zmm24, zmm4, zmm1",
                "vpdpbusd zmm25, zmm4, zmm2",
                "vpbroadcastd zmm4, dword ptr [{a4} + {lda3}]",
                "vpdpbusd zmm26, zmm3, zmm0",
                "vpdpbusd zmm27, zmm3, zmm1",
                "vpdpbusd zmm28, zmm3, zmm2",
                "vpdpbusd zmm29, zmm4, zmm0",
                "vpdpbusd zmm30, zmm4, zmm1",
                "vpdpbusd zmm31, zmm4, zmm2",
                "add {a0}, 4",
                "add {a4}, 4",
                "add {b}, 192",
                "dec {n}",
                "jnz 2b",
                "vmovdqu64 [{t}], zmm8",
                "vmovdqu64 [{t} + 64], zmm9",
                "vmovdqu64 [{t} + 128], zmm10",
                "vmovdqu64 [{t} + 192], zmm11",
                "vmovdqu64 [{t} + 256], zmm12",
                "vmovdqu64 [{t} + 320], zmm13",
                "vmovdqu64 [{t} + 384], zmm14",
                "vmovdqu64 [{t} + 448], zmm15",
                "vmovdqu64 [{t} + 512], zmm16",
                "vmovdqu64 [{t} + 576], zmm17",
                "vmovdqu64 [{t} + 640], zmm18",
                "vmovdqu64 [{t} + 704], zmm19",
                "vmovdqu64 [{t} + 768], zmm20",
                "vmovdqu64 [{t} + 832], zmm21",
                "vmovdqu64 [{t} + 896], zmm22",
                "vmovdqu64 [{t} + 960], zmm23",
                "vmovdqu64 [{t} + 1024], zmm24",
                "vmovdqu64 [{t} + 1088], zmm25",
                "vmovdqu64 [{t} + 1152], zmm26",
                "vmovdqu64 [{t} + 1216], zmm27",
                "vmovdqu64 [{t} + 1280], zmm28",
                "vmovdqu64 [{t} + 1344], zmm29",
                "vmovdqu64 [{t} + 1408], zmm30",
                "vmovdqu64 [{t} + 1472], zmm31",
                a0 = inout(reg) a => _,
                a4 = inout(reg) a.add(4 * lda) => _,
                b = inout(reg) b => _,
                n = inout(reg) kp / 4 => _,
                lda = in(reg) lda,
                lda3 = in(reg) lda3,
                t = in(reg) t,
                out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _, out("zmm4") _,
                out("zmm8") _, out("zmm9") _, out("zmm10") _, out("zmm11") _,
                out("zmm12") _, out("zmm13") _, out("zmm14") _, out("zmm15") _,
                out("zmm16") _, out("zmm17") _, out("zmm18") _, out("zmm19") _,
                out("zmm20") _, out("zmm21") _, out("zmm22") _, out("zmm23") _,
                out("zmm24") _, out("zmm25") _, out("zmm26") _, out("zmm27") _,
                out("zmm28") _, out("zmm29") _, out("zmm30") _, out("zmm31") _,
                options(nostack),
            );
        }
    }

    /// One MR x (16 * NZ) tile of a 48-column panel over the whole padded
    /// reduction (`kp` a multiple of 4): per 4 k-steps, NZ weight loads, MR
    /// broadcasts of 4 A bytes and NZ * MR `vpdpbusd`. Serves the edges (fewer
    /// rows, a narrow last panel) and batch 1.
    ///
    /// # Safety
    /// CPU supports avx512f/bw/vnni; `a` has MR rows of stride `lda` readable to
    /// `kp`; `b` holds `kp * 48` bytes; `t` holds MR * 48 i32.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    unsafe fn vnni_tile<const MR: usize, const NZ: usize>(
        a: *const u8,
        lda: usize,
        kp: usize,
        b: *const i8,
        t: *mut i32,
    ) {
        let mut acc = [[_mm512_setzero_si512(); NZ]; MR];
        // SAFETY (whole block): kk < kp, so every 4-byte A read is inside its
        // row and every 64-byte B read (z < NZ <= 3) inside the panel; the tile
        // store writes MR rows of at most 48 i32.
        unsafe {
            let mut kk = 0;
            while kk < kp {
                let bk = b.add(kk * VNNI_NR);
                let mut w = [_mm512_setzero_si512(); NZ];
                for (z, wz) in w.iter_mut().enumerate() {
                    *wz = _mm512_loadu_si512(bk.add(64 * z) as *const __m512i);
                }
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let quad = (a.add(r * lda + kk) as *const i32).read_unaligned();
                    let av = _mm512_set1_epi32(quad);
                    for (acc_rz, wz) in acc_r.iter_mut().zip(&w) {
                        *acc_rz = _mm512_dpbusd_epi32(*acc_rz, av, *wz);
                    }
                }
                kk += 4;
            }
            for (r, acc_r) in acc.iter().enumerate() {
                for (z, v) in acc_r.iter().enumerate() {
                    _mm512_storeu_si512(t.add(r * VNNI_NR + z * 16) as *mut __m512i, *v);
                }
            }
        }
    }

    struct Avx2Kernel;

    impl TileKernel for Avx2Kernel {
        type W = i16;
        const MR: usize = AVX2_MR;
        const NR: usize = AVX2_NR;
        #[inline(always)]
        unsafe fn tile(
            a: &[u8],
            lda: usize,
            rows: usize,
            _cols: usize,
            kp: usize,
            panel: &[i16],
            tile: &mut [i32],
        ) {
            let (a, b, t) = (a.as_ptr(), panel.as_ptr(), tile.as_mut_ptr());
            // SAFETY: the caller's contract.
            unsafe {
                match rows {
                    4 => avx2_tile::<4>(a, lda, kp, b, t),
                    3 => avx2_tile::<3>(a, lda, kp, b, t),
                    2 => avx2_tile::<2>(a, lda, kp, b, t),
                    _ => avx2_tile::<1>(a, lda, kp, b, t),
                }
            }
        }

        /// The f32 epilogue of a full 4 x 16 tile, 8 columns a register: the
        /// compiler's version of `dequant_into` assembled its operands lane by
        /// lane from the stack (a third of this path's conv GEMM time).
        #[inline(always)]
        unsafe fn finish_full_tile(
            sink: &Sink<'_>,
            pe: &PanelEpilogue,
            tile: &[i32],
            row0: usize,
            col0: usize,
        ) -> bool {
            let rows = tile.chunks_exact(AVX2_NR).take(AVX2_MR).enumerate();
            // SAFETY (each `slice` and row call): these elements are this
            // thread's (`drive`'s contract); the sink holds the whole output,
            // so the row is inside (`if let` never skips one); the CPU has AVX2.
            match sink {
                Sink::F32(o, ldo, ep) => {
                    for (r, acc) in rows {
                        let at = (row0 + r) * ldo + col0;
                        if let Some(dst) = unsafe { o.slice(at..at + AVX2_NR) } {
                            unsafe { dequant_row16_avx2(dst, acc, pe, ep.relu) };
                        }
                    }
                    true
                }
                Sink::U8(o, ldo, ep, q) => {
                    for (r, acc) in rows {
                        let at = (row0 + r) * ldo + col0;
                        if let Some(dst) = unsafe { o.slice(at..at + AVX2_NR) } {
                            unsafe { requant_row16_avx2(dst, acc, pe, ep.relu, *q) };
                        }
                    }
                    true
                }
                Sink::I32(..) => false,
            }
        }
    }

    /// `(acc - zsum) as f32 * mul (+ bias)`, then ReLU as a select (keeps NaN
    /// and -0.0), for the 8 columns from `h * 8`: `dequant_into`'s operations
    /// in its order, so the bits are those of every other path.
    ///
    /// # Safety
    /// CPU supports avx2; `acc` holds `h * 8 + 8` elements, `h < 6`.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn dequant8_avx2(acc: &[i32], h: usize, pe: &PanelEpilogue, relu: bool) -> __m256 {
        let zero = _mm256_setzero_ps();
        let a = &acc[h * 8..h * 8 + 8];
        // SAFETY: each 8-lane load is inside `a` or the 48-column panel constants.
        unsafe {
            let x = _mm256_loadu_si256(a.as_ptr() as *const __m256i);
            let z = _mm256_loadu_si256(pe.zsum[h * 8..].as_ptr() as *const __m256i);
            let m = _mm256_loadu_ps(pe.mul[h * 8..].as_ptr());
            let mut y = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(x, z)), m);
            if pe.has_bias {
                y = _mm256_add_ps(y, _mm256_loadu_ps(pe.bias[h * 8..].as_ptr()));
            }
            if relu {
                let negative = _mm256_cmp_ps::<_CMP_LT_OQ>(y, zero);
                y = _mm256_blendv_ps(y, zero, negative);
            }
            y
        }
    }

    /// The f32 epilogue of one full tile row (16 columns): the compiler's
    /// version of `dequant_into` assembled its operands lane by lane from the
    /// stack (a third of this path's conv GEMM time).
    ///
    /// # Safety
    /// CPU supports avx2; `dst` and `acc` hold at least 16 elements.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn dequant_row16_avx2(dst: &mut [f32], acc: &[i32], pe: &PanelEpilogue, relu: bool) {
        let dst = &mut dst[..16];
        for h in 0..2 {
            // SAFETY: the CPU has AVX2; `acc` holds 16 elements; the store is
            // inside `dst[h * 8..h * 8 + 8]`.
            unsafe {
                let y = dequant8_avx2(acc, h, pe, relu);
                _mm256_storeu_ps(dst[h * 8..].as_mut_ptr(), y);
            }
        }
    }

    /// The requantizing epilogue of one full tile row (16 columns):
    /// `saturate_u8(y / scale + zp, zp)` of [`dequant8_avx2`]'s `y`, that is
    /// NaN to the zero point, clamped to [0, 255], rounded by the 1.5 * 2^23
    /// trick, the low byte of each lane.
    ///
    /// # Safety
    /// CPU supports avx2; `dst` and `acc` hold at least 16 elements.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn requant_row16_avx2(
        dst: &mut [u8],
        acc: &[i32],
        pe: &PanelEpilogue,
        relu: bool,
        q: super::ActivationQuant,
    ) {
        let inv = _mm256_set1_ps(1.0 / q.scale);
        let zp = _mm256_set1_ps(f32::from(q.zero_point));
        let top = _mm256_set1_ps(255.0);
        let magic = _mm256_set1_ps(12_582_912.0);
        // Byte 0 of each dword to the low 4 bytes of its 128-bit lane.
        let low_bytes = _mm256_setr_epi8(
            0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12, -1, -1, -1,
            -1, -1, -1, -1, -1, -1, -1, -1, -1,
        );
        let dst = &mut dst[..16];
        for h in 0..2 {
            // SAFETY: the CPU has AVX2; `acc` holds 16 elements; the 8-byte
            // store is inside `dst[h * 8..h * 8 + 8]`.
            unsafe {
                let y = dequant8_avx2(acc, h, pe, relu);
                let t = _mm256_add_ps(_mm256_mul_ps(y, inv), zp);
                let t = _mm256_blendv_ps(t, zp, _mm256_cmp_ps::<_CMP_UNORD_Q>(t, t));
                // `clamp(0, 255)` as max then min: a -0.0 that `clamp` keeps
                // rounds to the same byte as the 0.0 `max` gives.
                let c = _mm256_min_ps(_mm256_max_ps(t, _mm256_setzero_ps()), top);
                let bits = _mm256_castps_si256(_mm256_add_ps(c, magic));
                let packed = _mm256_shuffle_epi8(bits, low_bytes);
                let lo = _mm256_castsi256_si128(packed);
                let hi = _mm256_extracti128_si256::<1>(packed);
                let eight = _mm_unpacklo_epi32(lo, hi);
                _mm_storel_epi64(dst[h * 8..].as_mut_ptr() as *mut __m128i, eight);
            }
        }
    }

    /// One MR x 16 tile: u8 pairs zero-extended to i16, `vpmaddwd` against the
    /// pre-widened weights (|a*b| <= 255*128, pair sums fit i32: no saturation).
    /// Per 4 k-steps and row, one broadcast of 4 A bytes is widened in-register
    /// (`vpunpcklbw` with zero, then one `vpshufd` per k-pair) instead of two
    /// byte loads, a shift and an or per k-pair.
    ///
    /// # Safety
    /// CPU supports avx2; `a` has MR rows readable to `kp` (a multiple of 4);
    /// `b` holds `kp * 16` i16; `t` holds MR * 16 i32.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn avx2_tile<const MR: usize>(
        a: *const u8,
        lda: usize,
        kp: usize,
        b: *const i16,
        t: *mut i32,
    ) {
        let mut acc = [[_mm256_setzero_si256(); 2]; MR];
        let zero = _mm256_setzero_si256();
        // SAFETY (whole block): kk + 3 < kp for every 4-byte read of A; B reads
        // of 4 x 32 bytes per 4 k-steps stay in the panel; the tile store
        // writes MR x 16.
        unsafe {
            let mut kk = 0;
            while kk < kp {
                let bk = b.add(kk * AVX2_NR);
                let b0 = _mm256_loadu_si256(bk as *const __m256i);
                let b1 = _mm256_loadu_si256(bk.add(16) as *const __m256i);
                let b2 = _mm256_loadu_si256(bk.add(32) as *const __m256i);
                let b3 = _mm256_loadu_si256(bk.add(48) as *const __m256i);
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let quad = (a.add(r * lda + kk) as *const i32).read_unaligned();
                    // Words a0 a1 a2 a3 (zero-extended), repeated: dword 0 is
                    // the pair (a0, a1), dword 1 the pair (a2, a3).
                    let words = _mm256_unpacklo_epi8(_mm256_set1_epi32(quad), zero);
                    let p0 = _mm256_shuffle_epi32::<0x00>(words);
                    let p1 = _mm256_shuffle_epi32::<0x55>(words);
                    acc_r[0] = _mm256_add_epi32(acc_r[0], _mm256_madd_epi16(p0, b0));
                    acc_r[1] = _mm256_add_epi32(acc_r[1], _mm256_madd_epi16(p0, b1));
                    acc_r[0] = _mm256_add_epi32(acc_r[0], _mm256_madd_epi16(p1, b2));
                    acc_r[1] = _mm256_add_epi32(acc_r[1], _mm256_madd_epi16(p1, b3));
                }
                kk += 4;
            }
            for (r, acc_r) in acc.iter().enumerate() {
                let tr = t.add(r * AVX2_NR);
                _mm256_storeu_si256(tr as *mut __m256i, acc_r[0]);
                _mm256_storeu_si256(tr.add(8) as *mut __m256i, acc_r[1]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::ChunkRecord;
    use crate::quant::split::run_split;
    use rand::{Rng, SeedableRng};
    use rand_pcg::Pcg64;

    /// Sizes whose splits leave remainders: rows past whole register tiles,
    /// a narrow last panel, a k that is no multiple of 4.
    const SHAPES: [(usize, usize, usize); 6] = [
        (1, 3, 7),
        (3, 63, 65),
        (7, 65, 257),
        (65, 7, 63),
        (257, 9, 3),
        (63, 257, 1),
    ];

    /// The GEMM cut into chunks for 1 and 2 helpers (2 and 3 threads, with
    /// row blocks of one tile or of the whole A) writes the bits of the one
    /// block a single thread runs, into every sink, on every path here.
    #[test]
    fn split_gemm_writes_the_bits_of_one_block() {
        let mut rng = Pcg64::seed_from_u64(29);
        for path in Int8Path::supported() {
            let (mr, nr) = tile_shape(path);
            for (m, k, n) in SHAPES {
                let kp = k_padded(k);
                // Padding bytes of A hold garbage: the packed weights are zero there.
                let a: Vec<u8> = (0..m * kp).map(|_| rng.random()).collect();
                let b: Vec<i8> = (0..k * n).map(|_| rng.random()).collect();
                let scales: Vec<f32> = (0..n).map(|j| 1e-3 * (1 + j % 7) as f32).collect();
                let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.37 - 3.0).collect();
                let packed = PackedWeightsS8::pack(path, k, n, &b, n).expect("pack");
                let act = ActivationQuant {
                    scale: 0.021,
                    zero_point: 117,
                };
                let ep = Int8Epilogue {
                    act,
                    weight_scales: &scales,
                    bias: Some(&bias),
                    relu: true,
                };
                let out_q = ActivationQuant {
                    scale: 0.05,
                    zero_point: 3,
                };
                let ldq = k_padded(n);
                let mut want_f32 = vec![0.0f32; m * n];
                gemm_u8s8_f32(&a, kp, m, &packed, ep, &mut want_f32, n).expect("f32");
                let mut want_u8 = vec![0u8; m * ldq];
                gemm_u8s8_u8(&a, kp, m, &packed, ep, out_q, &mut want_u8, ldq).expect("u8");
                let mut want_i32 = vec![0i32; m * n];
                gemm_u8s8_i32(&a, kp, m, 117, &packed, &mut want_i32, n).expect("i32");
                for helpers in [1, 2] {
                    for budget in [mr * kp, 1 << 19] {
                        let what = format!("{path} {m}x{k}x{n} helpers {helpers} budget {budget}");
                        let mut got_f32 = vec![f32::NAN; m * n];
                        let mut got_u8 = vec![0u8; m * ldq];
                        let mut got_i32 = vec![i32::MIN; m * n];
                        // The sinks borrow the outputs until this scope ends.
                        {
                            let sinks = [
                                Sink::F32(SharedOut::new(&mut got_f32), n, ep),
                                Sink::U8(SharedOut::new(&mut got_u8), ldq, ep, out_q),
                                Sink::I32(SharedOut::new(&mut got_i32), n),
                            ];
                            for sink in &sinks {
                                let za = 117;
                                run_split(
                                    &mut ChunkRecord::default(),
                                    helpers,
                                    m,
                                    n.div_ceil(nr),
                                    mr,
                                    kp,
                                    budget,
                                    &|rows, panels| {
                                        // SAFETY: buffers sized above; each chunk runs once.
                                        unsafe {
                                            run_block(
                                                &a,
                                                kp,
                                                za,
                                                &packed,
                                                sink,
                                                Block { rows, panels },
                                            )
                                        }
                                    },
                                )
                                .expect("split gemm");
                            }
                        }
                        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(&got_f32), bits(&want_f32), "{what}");
                        assert_eq!(got_u8, want_u8, "{what}");
                        assert_eq!(got_i32, want_i32, "{what}");
                    }
                }
            }
        }
    }
}
