//! Goto/BLIS-style single-precision GEMM: `C = epilogue(A . B)`.
//!
//! Loop nest: columns of C in `nc` blocks (B packed, sized for L3), K in `kc`
//! slices, rows in `mc` blocks (A packed, sized for L2), then `mr x nr` register
//! tiles computed by a micro-kernel (AVX-512, AVX2+FMA or portable, picked at
//! run time). The epilogue (bias per row or column, activation) is applied to
//! each register tile right after its last K slice, while it is still in L1.
//! Weights used as B can be packed once (`PackedB`) and reused across runs.
//! Beyond the blocking, `TileParams` chooses the order of the two innermost
//! block loops, K-split accumulators for tiles of at most three rows, and
//! whether a row-major A or B is read in place instead of packed (the
//! schedule choices the autotuner searches).

use crate::act;
use crate::error::KernelError;
use crate::pages::{self, PageBuffer};
use crate::pool;
use crate::simd::SimdLevel;
use crate::sparse;
use crate::spec::Activation;
use crate::tile::{LoopOrder, TileParams};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

/// A strided read-only matrix view: element (i, j) is `data[i * rs + j * cs]`.
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> MatRef<'a> {
    /// Row-major with leading dimension `ld`.
    pub fn row_major(data: &'a [f32], ld: usize) -> MatRef<'a> {
        MatRef {
            data,
            rs: ld,
            cs: 1,
        }
    }

    /// The transpose of a row-major matrix with leading dimension `ld`.
    pub fn transposed(data: &'a [f32], ld: usize) -> MatRef<'a> {
        MatRef {
            data,
            rs: 1,
            cs: ld,
        }
    }

    fn check(&self, rows: usize, cols: usize, what: &str) -> Result<(), KernelError> {
        if rows == 0 || cols == 0 {
            return Ok(());
        }
        let last = (rows - 1).checked_mul(self.rs).and_then(|r| {
            (cols - 1)
                .checked_mul(self.cs)
                .and_then(|c| r.checked_add(c))
        });
        match last {
            Some(l) if l < self.data.len() => Ok(()),
            _ => Err(KernelError::Gemm(format!(
                "{what}: {rows}x{cols} with strides ({}, {}) does not fit in {} elements",
                self.rs,
                self.cs,
                self.data.len()
            ))),
        }
    }
}

/// Bias added in the epilogue.
#[derive(Debug, Clone, Copy, Default)]
pub enum Bias<'a> {
    #[default]
    None,
    /// `C[i, j] += bias[j]` (dense layers).
    PerColumn(&'a [f32]),
    /// `C[i, j] += bias[i]` (convolutions as `W . im2col`).
    PerRow(&'a [f32]),
}

/// What happens to each element of C after the products are summed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Epilogue<'a> {
    pub bias: Bias<'a>,
    pub activation: Option<Activation>,
}

impl<'a> Epilogue<'a> {
    pub const NONE: Epilogue<'static> = Epilogue {
        bias: Bias::None,
        activation: None,
    };

    fn is_none(&self) -> bool {
        matches!(self.bias, Bias::None) && self.activation.is_none()
    }

    /// Apply to the `rows x cols` tile of C starting at (i0, j0); `c` starts at that tile.
    fn apply(&self, c: &mut [f32], ldc: usize, i0: usize, j0: usize, rows: usize, cols: usize) {
        if self.is_none() {
            return;
        }
        for r in 0..rows {
            let row = &mut c[r * ldc..r * ldc + cols];
            match self.bias {
                Bias::None => {}
                Bias::PerColumn(b) => row
                    .iter_mut()
                    .zip(&b[j0..j0 + cols])
                    .for_each(|(x, b)| *x += b),
                Bias::PerRow(b) => {
                    let bi = b[i0 + r];
                    row.iter_mut().for_each(|x| *x += bi);
                }
            }
            if let Some(a) = self.activation {
                act::apply_slice(a, row);
            }
        }
    }
}

/// B packed once for a given `kc` and `nr` (weights reused across runs).
/// Layout: for each K slice starting at `p0` (depth `kc_eff`), the slivers of
/// `nr` columns, each `kc_eff x nr`, at `p0 * n_padded + s * kc_eff * nr`.
#[derive(Debug, Clone)]
pub struct PackedB {
    k: usize,
    n: usize,
    kc: usize,
    nr: usize,
    /// Streamed on every run: on huge pages where the OS allows.
    data: PageBuffer<f32>,
    /// No infinity or NaN: products with A's zeros are all +-0 and may be skipped.
    finite: bool,
}

impl PackedB {
    pub fn pack(
        b: MatRef<'_>,
        k: usize,
        n: usize,
        kc: usize,
        nr: usize,
    ) -> Result<PackedB, KernelError> {
        if kc == 0 || nr == 0 {
            return Err(KernelError::Gemm("kc and nr must be > 0".into()));
        }
        b.check(k, n, "B")?;
        let n_padded = n.div_ceil(nr) * nr;
        let mut data = PageBuffer::zeroed(k * n_padded);
        // The same equal K slices `gemm_serial` uses.
        let kc_slice = balanced(k, kc);
        let mut p0 = 0;
        while p0 < k {
            let kc_eff = kc_slice.min(k - p0);
            pack_b(b, p0, kc_eff, 0, n, nr, &mut data[p0 * n_padded..]);
            p0 += kc_eff;
        }
        let finite = data.iter().all(|x| x.is_finite());
        Ok(PackedB {
            k,
            n,
            kc,
            nr,
            data,
            finite,
        })
    }

    pub(crate) fn nr(&self) -> usize {
        self.nr
    }

    pub(crate) fn data(&self) -> &[f32] {
        &self.data
    }

    /// Whether products with zeros of A may be skipped: all of B is finite and
    /// packed in one K slice (the layout `sparse::gemm_block` reads).
    fn zeros_skippable(&self) -> bool {
        self.finite && self.is_one_slice()
    }

    /// Whether all of K is one slice: the packing is then `[sliver][k][nr]`.
    pub(crate) fn is_one_slice(&self) -> bool {
        self.k <= self.kc
    }

    pub fn k(&self) -> usize {
        self.k
    }

    pub fn n(&self) -> usize {
        self.n
    }

    /// Whether this packing fits a GEMM run with `params`.
    pub fn matches(&self, params: &TileParams) -> bool {
        self.kc == params.kc && self.nr == params.nr
    }
}

/// B read through per-row offsets: element (p, j) is
/// `data[row_offsets[p] + (j / run) * run_step + j % run]`. A convolution over a
/// zero-padded, stride-split image is such a matrix (row p = kernel tap, column
/// j = output pixel, `run` = output width), so it is packed straight from the
/// image without materialising im2col patches.
#[derive(Debug, Clone, Copy)]
pub struct GatherB<'a> {
    pub data: &'a [f32],
    pub row_offsets: &'a [usize],
    pub run: usize,
    pub run_step: usize,
}

impl GatherB<'_> {
    fn check(&self, k: usize, n: usize) -> Result<(), KernelError> {
        if k == 0 || n == 0 {
            return Ok(());
        }
        let bad = || {
            KernelError::Gemm(format!(
                "gathered B: {k}x{n} (run {}, step {}, {} row offsets) does not fit in {} elements",
                self.run,
                self.run_step,
                self.row_offsets.len(),
                self.data.len()
            ))
        };
        if self.run == 0 || self.row_offsets.len() < k {
            return Err(bad());
        }
        let max_row = self.row_offsets[..k].iter().copied().max().unwrap_or(0);
        let last = ((n - 1) / self.run)
            .checked_mul(self.run_step)
            .and_then(|x| x.checked_add(max_row))
            .and_then(|x| x.checked_add((n - 1) % self.run));
        match last {
            Some(l) if l < self.data.len() => Ok(()),
            _ => Err(bad()),
        }
    }
}

/// The B operand: a strided view (packed per call), pre-packed weights, or a
/// gathered (implicit im2col) matrix packed per call.
#[derive(Debug, Clone, Copy)]
pub enum BOperand<'a> {
    Mat(MatRef<'a>),
    Packed(&'a PackedB),
    Gathered(GatherB<'a>),
}

/// Packing buffers of one thread.
#[derive(Debug, Default, Clone)]
struct PackBuffers {
    a: Vec<f32>,
    b: Vec<f32>,
    /// The A block (row block start, K slice start) `a` holds, within the
    /// current GEMM call only: a thread taking several column chunks of one
    /// GEMM packs each A block once while it stays the current one.
    a_block: Option<(usize, usize)>,
    /// The zero-skipping kernel's partial sums.
    sparse_partial: Vec<f32>,
}

/// Reusable packing buffers: after the first call with given blocking, GEMM allocates nothing.
#[derive(Debug, Default, Clone)]
pub struct GemmWorkspace {
    threads: Vec<PackBuffers>,
    chunks: pool::ChunkRecord,
    /// A's nonzeros, when the zero-skipping kernel reads them gathered.
    gathered: sparse::Gathered,
}

impl GemmWorkspace {
    pub fn new() -> GemmWorkspace {
        GemmWorkspace::default()
    }
}

impl pool::GrowLike for PackBuffers {
    fn grow_like(&mut self, other: &PackBuffers) {
        pool::reserve_like(&mut self.a, &other.a);
        pool::reserve_like(&mut self.b, &other.b);
        pool::reserve_like(&mut self.sparse_partial, &other.sparse_partial);
    }
}

impl pool::GrowLike for GemmWorkspace {
    /// For workspaces of different threads (each running serial GEMMs).
    fn grow_like(&mut self, other: &GemmWorkspace) {
        if self.threads.len() < other.threads.len() {
            self.threads
                .resize(other.threads.len(), PackBuffers::default());
        }
        for (mine, theirs) in self.threads.iter_mut().zip(&other.threads) {
            mine.grow_like(theirs);
        }
        self.gathered.grow_like(&other.gathered);
    }
}

fn grow(v: &mut Vec<f32>, len: usize) {
    if v.len() < len {
        v.resize(len, 0.0);
    }
}

/// Pack rows `i0..i0+rows` x cols `p0..p0+kc` of A into `mr`-row slivers, each
/// `kc x mr` (the last, partial sliver is `kc x rows_left`, compact).
/// `simd` above portable transposes 4 rows x 8 columns at a time in AVX registers.
#[allow(clippy::too_many_arguments)]
fn pack_a(
    simd: SimdLevel,
    a: MatRef<'_>,
    i0: usize,
    rows: usize,
    p0: usize,
    kc: usize,
    mr: usize,
    dst: &mut [f32],
) {
    // A safe function: the level is checked here, not trusted from the caller.
    #[cfg(target_arch = "x86_64")]
    let vector = simd != SimdLevel::Portable && simd.is_supported();
    let mut t = 0;
    while t * mr < rows {
        let r0 = t * mr;
        let re = mr.min(rows - r0);
        let base = t * mr * kc;
        let out = &mut dst[base..base + re * kc];
        if a.cs == 1 && re <= MAX_MR {
            // Row slices once, then K outer: the writes are sequential and each
            // row is read as its own sequential stream.
            let mut rows: [&[f32]; MAX_MR] = [&[]; MAX_MR];
            for (r, row) in rows.iter_mut().enumerate().take(re) {
                let start = (i0 + r0 + r) * a.rs + p0;
                *row = &a.data[start..start + kc];
            }
            let rows = &rows[..re];
            #[cfg(target_arch = "x86_64")]
            if vector && re >= 4 && kc >= 8 {
                // SAFETY: AVX2 or AVX-512F support (checked above) implies AVX;
                // every row holds `kc` floats and `out` `kc * re`.
                unsafe { pack_x86::transpose_rows(rows, kc, out) };
                t += 1;
                continue;
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = simd;
            // 8 columns of every row at a time: one bounds check per 8 reads, and the
            // writes stay within a few lines.
            let mut p = 0;
            while p + 8 <= kc {
                let block = &mut out[p * re..(p + 8) * re];
                for (r, row) in rows.iter().enumerate() {
                    let src = &row[p..p + 8];
                    for (q, &v) in src.iter().enumerate() {
                        block[q * re + r] = v;
                    }
                }
                p += 8;
            }
            for (q, dst) in out[p * re..].chunks_exact_mut(re).enumerate() {
                for (d, row) in dst.iter_mut().zip(rows) {
                    *d = row[p + q];
                }
            }
        } else {
            for r in 0..re {
                let row_start = (i0 + r0 + r) * a.rs + p0 * a.cs;
                for p in 0..kc {
                    out[p * re + r] = a.data[row_start + p * a.cs];
                }
            }
        }
        t += 1;
    }
}

#[cfg(target_arch = "x86_64")]
mod pack_x86 {
    use std::arch::x86_64::*;

    /// `pack_b` compiled for AVX-512 (plain copies, wider moves).
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn pack_b_avx512(
        b: super::MatRef<'_>,
        p0: usize,
        kc: usize,
        j0: usize,
        cols: usize,
        nr: usize,
        dst: &mut [f32],
    ) {
        super::pack_b_body(b, p0, kc, j0, cols, nr, dst)
    }

    /// `pack_b_gathered` compiled for AVX-512.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn pack_b_gathered_avx512(
        b: &super::GatherB<'_>,
        p0: usize,
        kc: usize,
        j0: usize,
        cols: usize,
        nr: usize,
        dst: &mut [f32],
    ) {
        super::pack_b_gathered_body(b, p0, kc, j0, cols, nr, dst)
    }

    /// `out[p * re + r] = rows[r][p]` for `re = rows.len()` rows, `p < kc`: 4 rows x
    /// 8 columns per step, transposed in registers (4 loads, 8 shuffles, 8 stores
    /// for 32 floats). The last row group and column block overlap the previous
    /// ones when `re` or `kc` is not a multiple, rewriting equal values, so no
    /// scalar tail is needed.
    ///
    /// # Safety
    /// CPU must support AVX; `rows.len() >= 4`, `kc >= 8`, every row holds at least
    /// `kc` floats and `out` at least `kc * rows.len()`.
    #[target_feature(enable = "avx")]
    pub unsafe fn transpose_rows(rows: &[&[f32]], kc: usize, out: &mut [f32]) {
        let re = rows.len();
        debug_assert!(re >= 4 && kc >= 8 && out.len() >= kc * re);
        debug_assert!(rows.iter().all(|r| r.len() >= kc));
        let o = out.as_mut_ptr();
        let mut block = 0;
        loop {
            let p = block.min(kc - 8);
            let mut group = 0;
            loop {
                let r = group.min(re - 4);
                // SAFETY: rows r..r+4 exist (r <= re - 4) and hold columns p..p+8 (p + 8 <= kc);
                // the stores write out[(p + q) * re + r .. + 4] for q < 8, below kc * re.
                unsafe {
                    let a = _mm256_loadu_ps(rows[r].as_ptr().add(p));
                    let b = _mm256_loadu_ps(rows[r + 1].as_ptr().add(p));
                    let c = _mm256_loadu_ps(rows[r + 2].as_ptr().add(p));
                    let d = _mm256_loadu_ps(rows[r + 3].as_ptr().add(p));
                    // a0 b0 a1 b1 | a4 b4 a5 b5, a2 b2 a3 b3 | a6 b6 a7 b7 (and c, d).
                    let ab_lo = _mm256_unpacklo_ps(a, b);
                    let ab_hi = _mm256_unpackhi_ps(a, b);
                    let cd_lo = _mm256_unpacklo_ps(c, d);
                    let cd_hi = _mm256_unpackhi_ps(c, d);
                    // Column q in the low half, column q + 4 in the high half.
                    let cols = [
                        _mm256_shuffle_ps::<0x44>(ab_lo, cd_lo),
                        _mm256_shuffle_ps::<0xEE>(ab_lo, cd_lo),
                        _mm256_shuffle_ps::<0x44>(ab_hi, cd_hi),
                        _mm256_shuffle_ps::<0xEE>(ab_hi, cd_hi),
                    ];
                    let dst = o.add(p * re + r);
                    for (q, v) in cols.iter().enumerate() {
                        _mm_storeu_ps(dst.add(q * re), _mm256_castps256_ps128(*v));
                        _mm_storeu_ps(dst.add((q + 4) * re), _mm256_extractf128_ps::<1>(*v));
                    }
                }
                if r + 4 >= re {
                    break;
                }
                group += 4;
            }
            if p + 8 >= kc {
                break;
            }
            block += 8;
        }
    }
}

/// `dst.copy_from_slice(src)` for the short runs packing copies, as inline vector
/// moves rather than one `memcpy` call per run.
#[inline(always)]
fn copy_floats(dst: &mut [f32], src: &[f32]) {
    let n = dst.len().min(src.len());
    let (dst, src) = (&mut dst[..n], &src[..n]);
    // Odd lengths (runs split at image rows) end with one more whole vector that
    // overlaps the last one, rather than a scalar tail.
    fn overlapped<const W: usize>(dst: &mut [f32], src: &[f32]) {
        let n = dst.len();
        let mut i = 0;
        while i + W <= n {
            dst[i..i + W].copy_from_slice(&src[i..i + W]);
            i += W;
        }
        if i < n {
            dst[n - W..].copy_from_slice(&src[n - W..]);
        }
    }
    match n {
        16.. => overlapped::<16>(dst, src),
        8.. => overlapped::<8>(dst, src),
        4.. => overlapped::<4>(dst, src),
        _ => dst.copy_from_slice(src),
    }
}

/// Pack rows `p0..p0+kc` x cols `j0..j0+cols` of B into `nr`-column slivers, each `kc x nr`,
/// zero-padded on the right.
fn pack_b(b: MatRef<'_>, p0: usize, kc: usize, j0: usize, cols: usize, nr: usize, dst: &mut [f32]) {
    // The same copies either way; with AVX-512 they move whole 64-byte rows.
    #[cfg(target_arch = "x86_64")]
    if crate::simd::shared_helpers_level() == SimdLevel::Avx512 {
        // SAFETY: the level is capped at what this CPU has (`simd::detect`).
        return unsafe { pack_x86::pack_b_avx512(b, p0, kc, j0, cols, nr, dst) };
    }
    pack_b_body(b, p0, kc, j0, cols, nr, dst)
}

#[inline(always)]
fn pack_b_body(
    b: MatRef<'_>,
    p0: usize,
    kc: usize,
    j0: usize,
    cols: usize,
    nr: usize,
    dst: &mut [f32],
) {
    let slivers = cols.div_ceil(nr);
    for s in 0..slivers {
        let c0 = s * nr;
        let ce = nr.min(cols - c0);
        let out = &mut dst[s * kc * nr..(s + 1) * kc * nr];
        if b.cs == 1 && ce == nr {
            // The common case: whole rows of contiguous columns.
            let first = p0 * b.rs + j0 + c0;
            for (p, row) in out.chunks_exact_mut(nr).enumerate() {
                let start = first + p * b.rs;
                copy_floats(row, &b.data[start..start + nr]);
            }
            continue;
        }
        for p in 0..kc {
            let row = &mut out[p * nr..(p + 1) * nr];
            let start = (p0 + p) * b.rs + (j0 + c0) * b.cs;
            if b.cs == 1 {
                copy_floats(&mut row[..ce], &b.data[start..start + ce]);
            } else {
                for (j, x) in row[..ce].iter_mut().enumerate() {
                    *x = b.data[start + j * b.cs];
                }
            }
            if ce < nr {
                row[ce..].iter_mut().for_each(|x| *x = 0.0);
            }
        }
    }
}

/// Pack rows `p0..p0+kc` x cols `j0..j0+cols` of a gathered B (see `GatherB`):
/// each sliver row is one or two contiguous runs of the source.
fn pack_b_gathered(
    b: &GatherB<'_>,
    p0: usize,
    kc: usize,
    j0: usize,
    cols: usize,
    nr: usize,
    dst: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::shared_helpers_level() == SimdLevel::Avx512 {
        // SAFETY: the level is capped at what this CPU has (`simd::detect`).
        return unsafe { pack_x86::pack_b_gathered_avx512(b, p0, kc, j0, cols, nr, dst) };
    }
    pack_b_gathered_body(b, p0, kc, j0, cols, nr, dst)
}

#[inline(always)]
fn pack_b_gathered_body(
    b: &GatherB<'_>,
    p0: usize,
    kc: usize,
    j0: usize,
    cols: usize,
    nr: usize,
    dst: &mut [f32],
) {
    let slivers = cols.div_ceil(nr);
    for s in 0..slivers {
        let c0 = j0 + s * nr;
        let ce = nr.min(j0 + cols - c0);
        let out = &mut dst[s * kc * nr..(s + 1) * kc * nr];
        // Split the sliver's columns into runs that stay inside one source row.
        let mut runs = [(0usize, 0usize, 0usize); 8];
        let mut nruns = 0;
        let (mut j, mut d) = (c0, 0);
        while j < c0 + ce && nruns < runs.len() {
            let (row, col) = (j / b.run, j % b.run);
            let len = (b.run - col).min(c0 + ce - j);
            runs[nruns] = (d, row * b.run_step + col, len);
            nruns += 1;
            j += len;
            d += len;
        }
        let runs = &runs[..nruns];
        if d == nr {
            // The common case: whole slivers of one or two runs.
            for (p, row) in out.chunks_exact_mut(nr).enumerate() {
                let off = b.row_offsets[p0 + p];
                for &(d, src, len) in runs {
                    copy_floats(&mut row[d..d + len], &b.data[off + src..off + src + len]);
                }
            }
            continue;
        }
        for p in 0..kc {
            let row = &mut out[p * nr..(p + 1) * nr];
            let off = b.row_offsets[p0 + p];
            for &(d, src, len) in runs {
                copy_floats(&mut row[d..d + len], &b.data[off + src..off + src + len]);
            }
            row[d..].iter_mut().for_each(|x| *x = 0.0);
            // Runs shorter than a sliver beyond the table (run < nr / 8): element by element.
            for (jj, x) in row.iter_mut().enumerate().take(ce).skip(d) {
                let jg = c0 + jj;
                *x = b.data[off + (jg / b.run) * b.run_step + jg % b.run];
            }
        }
    }
}

/// Bias and ReLU the micro-kernel applies in registers before storing a tile
/// (after the last K slice only). Null pointers mean "no bias".
#[derive(Clone, Copy)]
pub(crate) struct TileEpilogue {
    /// `bias[col..]`: one value per column of the tile.
    bias_col: *const f32,
    /// `bias[row..]`: one value per row of the tile.
    bias_row: *const f32,
    relu: bool,
}

impl TileEpilogue {
    const NONE: TileEpilogue = TileEpilogue {
        bias_col: std::ptr::null(),
        bias_row: std::ptr::null(),
        relu: false,
    };
}

/// Micro-kernel: `C[0..MR, 0..nr_eff] = epi(C (if accumulate) + A_sliver (kc x MR) . B_sliver (kc x NR))`.
/// Row p of the A sliver (MR floats) starts `p * a_step` floats after `a`: `a_step` is MR
/// for a packed sliver, or the leading dimension of a k-major A read in place. Row p of
/// the B sliver (NR floats) starts `p * b_step` after `b`: NR when packed, the leading
/// dimension of a row-major B read in place.
type MicroKernel = unsafe fn(
    usize,
    *const f32,
    usize,
    *const f32,
    usize,
    *mut f32,
    usize,
    usize,
    bool,
    TileEpilogue,
);

mod portable {
    /// Plain loops over fixed-size arrays; the compiler vectorises them for the baseline ISA.
    ///
    /// # Safety
    /// `a` must hold MR floats at each `p * a_step` (p < kc), `b` NR at each `p * b_step`, and `c` must be writable at
    /// `r * ldc + j` for `r < MR`, `j < nr_eff <= NR`.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn kernel<const MR: usize, const NR: usize>(
        kc: usize,
        a: *const f32,
        a_step: usize,
        b: *const f32,
        b_step: usize,
        c: *mut f32,
        ldc: usize,
        nr_eff: usize,
        accumulate: bool,
        epi: super::TileEpilogue,
    ) {
        let mut acc = [[0.0f32; NR]; MR];
        for p in 0..kc {
            // SAFETY: row p of the B sliver holds NR floats at p * b_step.
            let bp = unsafe { std::slice::from_raw_parts(b.add(p * b_step), NR) };
            // SAFETY: row p of the A sliver holds MR floats at p * a_step.
            let ap = unsafe { std::slice::from_raw_parts(a.add(p * a_step), MR) };
            for r in 0..MR {
                let x = ap[r];
                for j in 0..NR {
                    acc[r][j] += x * bp[j];
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for (j, &v) in row.iter().enumerate().take(nr_eff) {
                // SAFETY: r < MR and j < nr_eff, inside the tile the caller owns; bias
                // pointers (when not null) cover the tile's columns / rows.
                unsafe {
                    let p = c.add(r * ldc + j);
                    let mut out = if accumulate { *p + v } else { v };
                    if !epi.bias_col.is_null() {
                        out += *epi.bias_col.add(j);
                    }
                    if !epi.bias_row.is_null() {
                        out += *epi.bias_row.add(r);
                    }
                    if epi.relu {
                        out = out.max(0.0);
                    }
                    *p = out;
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Strides of the A sliver: element (r, p) is at `r * rows + p * depth`.
    /// `AR` (A read by rows) means a row-major A read in place (`a_step` apart
    /// rows, unit K step); otherwise rows are adjacent and K steps `a_step` apart.
    #[inline(always)]
    const fn a_strides<const AR: bool>(a_step: usize) -> (usize, usize) {
        if AR {
            (a_step, 1)
        } else {
            (1, a_step)
        }
    }

    /// The `MR x 16 NV` product of an A and a B sliver, in registers.
    ///
    /// # Safety
    /// CPU must support AVX-512F; `a` holds element (r, p) of the A sliver for r < MR, p < kc
    /// at `a_strides::<AR>(a_step)`, `b` 16 * NV floats at each `p * b_step`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn avx512_product<const MR: usize, const NV: usize, const AR: bool>(
        kc: usize,
        a: *const f32,
        a_step: usize,
        b: *const f32,
        b_step: usize,
    ) -> [[__m512; NV]; MR] {
        let (a_row, a_depth) = a_strides::<AR>(a_step);
        let mut acc = [[_mm512_setzero_ps(); NV]; MR];
        let (mut ap, mut bp) = (a, b);
        for _ in 0..kc {
            let mut bv = [_mm512_setzero_ps(); NV];
            for (v, x) in bv.iter_mut().enumerate() {
                // SAFETY: bp points at a row of NV*16 floats (packed, or B read in place).
                *x = unsafe { _mm512_loadu_ps(bp.add(16 * v)) };
            }
            for (r, row) in acc.iter_mut().enumerate() {
                // SAFETY: ap points at column p of the A sliver; row r is r * a_row further.
                let av = _mm512_set1_ps(unsafe { *ap.add(r * a_row) });
                for (v, x) in row.iter_mut().enumerate() {
                    *x = _mm512_fmadd_ps(av, bv[v], *x);
                }
            }
            // SAFETY: advancing by one K step within the slivers (kc steps each).
            unsafe {
                ap = ap.add(a_depth);
                bp = bp.add(b_step);
            }
        }
        acc
    }

    /// `avx512_product` with K split across `U` independent accumulator sets
    /// (row p goes to set p % U, summed at the end): a short tile's few
    /// accumulator chains no longer wait on each FMA's latency.
    ///
    /// # Safety
    /// As `avx512_product`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn avx512_product_split<
        const MR: usize,
        const NV: usize,
        const U: usize,
        const AR: bool,
    >(
        kc: usize,
        a: *const f32,
        a_step: usize,
        b: *const f32,
        b_step: usize,
    ) -> [[__m512; NV]; MR] {
        let (a_row, a_depth) = a_strides::<AR>(a_step);
        let mut sets = [[[_mm512_setzero_ps(); NV]; MR]; U];
        let (mut ap, mut bp) = (a, b);
        let mut left = kc;
        while left >= U {
            for set in sets.iter_mut() {
                // SAFETY: ap / bp point at one of the kc rows of the slivers.
                unsafe { avx512_rank1::<MR, NV>(set, ap, a_row, bp) };
                // SAFETY: advancing by one K step within the slivers (kc steps in all).
                unsafe {
                    ap = ap.add(a_depth);
                    bp = bp.add(b_step);
                }
            }
            left -= U;
        }
        for _ in 0..left {
            // SAFETY: as above: the remaining `left` rows.
            unsafe {
                avx512_rank1::<MR, NV>(&mut sets[0], ap, a_row, bp);
                ap = ap.add(a_depth);
                bp = bp.add(b_step);
            }
        }
        let mut acc = sets[0];
        for set in &sets[1..] {
            for (row, other) in acc.iter_mut().zip(set) {
                for (x, &y) in row.iter_mut().zip(other) {
                    *x = _mm512_add_ps(*x, y);
                }
            }
        }
        acc
    }

    /// `acc += a_row (MR floats) x b_row (16 * NV floats)`: one K step.
    ///
    /// # Safety
    /// CPU must support AVX-512F; `ap` holds MR floats `a_row` apart and `bp` 16 * NV.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn avx512_rank1<const MR: usize, const NV: usize>(
        acc: &mut [[__m512; NV]; MR],
        ap: *const f32,
        a_row: usize,
        bp: *const f32,
    ) {
        let mut bv = [_mm512_setzero_ps(); NV];
        for (v, x) in bv.iter_mut().enumerate() {
            // SAFETY: bp points at a row of NV*16 floats (packed, or B read in place).
            *x = unsafe { _mm512_loadu_ps(bp.add(16 * v)) };
        }
        for (r, row) in acc.iter_mut().enumerate() {
            // SAFETY: ap points at MR floats a_row apart.
            let av = _mm512_set1_ps(unsafe { *ap.add(r * a_row) });
            for (v, x) in row.iter_mut().enumerate() {
                *x = _mm512_fmadd_ps(av, bv[v], *x);
            }
        }
    }

    /// Column masks for `nr_eff` valid columns, and the per-column bias (0 without).
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn avx512_columns<const NV: usize>(
        nr_eff: usize,
        epi: &super::TileEpilogue,
    ) -> ([__mmask16; NV], [__m512; NV]) {
        let mut masks = [0 as __mmask16; NV];
        for (v, m) in masks.iter_mut().enumerate() {
            let count = nr_eff.saturating_sub(16 * v).min(16);
            *m = ((1u32 << count) - 1) as __mmask16;
        }
        let mut bias_col = [_mm512_setzero_ps(); NV];
        if !epi.bias_col.is_null() {
            for (v, b) in bias_col.iter_mut().enumerate() {
                // SAFETY: the bias covers the tile's columns < nr_eff (masked).
                *b = unsafe { _mm512_maskz_loadu_ps(masks[v], epi.bias_col.add(16 * v)) };
            }
        }
        (masks, bias_col)
    }

    /// AVX-512 micro-kernel: MR rows x (16 * NV) columns, accumulators in zmm
    /// registers, K split across U accumulator sets (1 = no split), A read by
    /// rows when AR (see `a_strides`).
    ///
    /// # Safety
    /// CPU must support AVX-512F; `a` holds the A sliver at `a_strides::<AR>(a_step)`, `b` 16 * NV at each `p * b_step`,
    /// `c` writable at `r * ldc + j` for `r < MR`, `j < nr_eff <= 16 * NV`.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn avx512<const MR: usize, const NV: usize, const U: usize, const AR: bool>(
        kc: usize,
        a: *const f32,
        a_step: usize,
        b: *const f32,
        b_step: usize,
        c: *mut f32,
        ldc: usize,
        nr_eff: usize,
        accumulate: bool,
        epi: super::TileEpilogue,
    ) {
        // SAFETY: the caller's guarantees are the product's.
        let acc = unsafe {
            if U > 1 {
                avx512_product_split::<MR, NV, U, AR>(kc, a, a_step, b, b_step)
            } else {
                avx512_product::<MR, NV, AR>(kc, a, a_step, b, b_step)
            }
        };
        // Everything the epilogue needs is decided once, and the per-element work is
        // branch-free with no early exit, so the loops unroll completely and the
        // accumulators never leave registers (a branchy epilogue made the compiler
        // keep them in a stack array: a memset and reloads on every call).
        let (masks, bias_col) = avx512_columns::<NV>(nr_eff, &epi);
        // Loading C with an empty mask reads nothing and gives zeros.
        let c_load: __mmask16 = if accumulate { 0xffff } else { 0 };
        let relu_lanes: __mmask16 = if epi.relu { 0xffff } else { 0 };
        let zero = _mm512_setzero_ps();
        for (r, row) in acc.iter().enumerate() {
            let bias_row = if epi.bias_row.is_null() {
                0.0
            } else {
                // SAFETY: the bias covers the tile's rows.
                unsafe { *epi.bias_row.add(r) }
            };
            let bias_row = _mm512_set1_ps(bias_row);
            for (v, &x) in row.iter().enumerate() {
                let mask = masks[v];
                // SAFETY: the mask limits loads and stores to columns < nr_eff of row r < MR
                // (an all-zero mask touches no memory).
                unsafe {
                    let cp = c.add(r * ldc + 16 * v);
                    let old = _mm512_maskz_loadu_ps(mask & c_load, cp);
                    let out = _mm512_add_ps(_mm512_add_ps(x, old), bias_col[v]);
                    let out = _mm512_add_ps(out, bias_row);
                    // max(x, 0) on ReLU lanes (NaN -> 0 as in `f32::max`), x elsewhere.
                    let out = _mm512_mask_max_ps(out, relu_lanes, out, zero);
                    _mm512_mask_storeu_ps(cp, mask, out);
                }
            }
        }
    }

    /// Row-sum variant of `avx512`: the finished tile (bias per column, ReLU) is not
    /// stored; the sum of its rows is added to `c[0..nr_eff]` (`ldc` and `accumulate`
    /// are ignored: one K slice only, see `sgemm_row_sums`).
    ///
    /// # Safety
    /// As `avx512`, with `c` writable for `nr_eff` floats.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn avx512_row_sums<const MR: usize, const NV: usize>(
        kc: usize,
        a: *const f32,
        a_step: usize,
        b: *const f32,
        b_step: usize,
        c: *mut f32,
        _ldc: usize,
        nr_eff: usize,
        _accumulate: bool,
        epi: super::TileEpilogue,
    ) {
        // SAFETY: the caller's guarantees are the product's.
        let acc = unsafe { avx512_product::<MR, NV, false>(kc, a, a_step, b, b_step) };
        let (masks, bias_col) = avx512_columns::<NV>(nr_eff, &epi);
        let relu_lanes: __mmask16 = if epi.relu { 0xffff } else { 0 };
        let zero = _mm512_setzero_ps();
        let mut sums = [zero; NV];
        for row in acc.iter() {
            for (v, &x) in row.iter().enumerate() {
                let out = _mm512_add_ps(x, bias_col[v]);
                let out = _mm512_mask_max_ps(out, relu_lanes, out, zero);
                sums[v] = _mm512_add_ps(sums[v], out);
            }
        }
        for (v, &sum) in sums.iter().enumerate() {
            // SAFETY: c is writable for the columns < nr_eff (masked).
            unsafe {
                let cp = c.add(16 * v);
                let old = _mm512_maskz_loadu_ps(masks[v], cp);
                _mm512_mask_storeu_ps(cp, masks[v], _mm512_add_ps(old, sum));
            }
        }
    }

    /// K steps ahead the AVX2 micro-kernel prefetches its B sliver: a 1024-deep
    /// sliver (64 KiB) does not fit L1 and streams from L2 on every row tile.
    /// Alternating runs on Zen 3 (2026-11-30): sgemm n=1000 / 1024 1.16-1.2x,
    /// n=512 1.09x, n=256 even; 8 steps gained nothing, 16-32 alike; prefetching
    /// the A sliver too was slower.
    const PF_B: usize = 32;

    /// AVX2+FMA micro-kernel: MR rows x (8 * NV) columns in ymm registers.
    ///
    /// # Safety
    /// CPU must support AVX2 and FMA; same buffer requirements as `avx512`.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn avx2<const MR: usize, const NV: usize>(
        kc: usize,
        a: *const f32,
        a_step: usize,
        b: *const f32,
        b_step: usize,
        c: *mut f32,
        ldc: usize,
        nr_eff: usize,
        accumulate: bool,
        epi: super::TileEpilogue,
    ) {
        // The tile of C is read (K slices after the first) or written at the end:
        // ask for its lines now, so they arrive while the FMAs run instead of
        // stalling the epilogue (ColumnsOuter walks C down a column of tiles,
        // which the hardware prefetchers do not follow).
        for r in 0..MR {
            let row = c.wrapping_add(r * ldc) as *const i8;
            _mm_prefetch::<_MM_HINT_T0>(row);
            _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(4 * (8 * NV - 1)));
        }
        let mut acc = [[_mm256_setzero_ps(); NV]; MR];
        let (mut ap, mut bp) = (a, b);
        for _ in 0..kc {
            _mm_prefetch::<_MM_HINT_T0>(bp.wrapping_add(PF_B * b_step) as *const i8);
            let mut bv = [_mm256_setzero_ps(); NV];
            for (v, x) in bv.iter_mut().enumerate() {
                // SAFETY: bp points at a row of NV*8 floats (packed, or B read in place).
                *x = unsafe { _mm256_loadu_ps(bp.add(8 * v)) };
            }
            for (r, row) in acc.iter_mut().enumerate() {
                // SAFETY: ap points at a row of MR packed floats.
                let av = _mm256_set1_ps(unsafe { *ap.add(r) });
                for (v, x) in row.iter_mut().enumerate() {
                    *x = _mm256_fmadd_ps(av, bv[v], *x);
                }
            }
            // SAFETY: advancing by one row within the slivers (kc rows each).
            unsafe {
                ap = ap.add(a_step);
                bp = bp.add(b_step);
            }
        }
        // Full vectors in registers, bias and ReLU as adds and a blend (no
        // branch per element; `accumulate` and the column bias are the same for
        // every tile of a call); a partial last vector element by element (AMD
        // microcodes masked stores).
        let relu_lanes = crate::simd::avx2::relu_lanes(epi.relu);
        let has_col_bias = !epi.bias_col.is_null();
        for (r, row) in acc.iter().enumerate() {
            let bias_row = if epi.bias_row.is_null() {
                0.0
            } else {
                // SAFETY: the bias covers the tile's rows.
                unsafe { *epi.bias_row.add(r) }
            };
            let bias_row_v = _mm256_set1_ps(bias_row);
            for (v, &x) in row.iter().enumerate() {
                let lo = 8 * v;
                if lo >= nr_eff {
                    break;
                }
                let count = (nr_eff - lo).min(8);
                // SAFETY: row r < MR; full vectors only when all 8 columns are < nr_eff,
                // otherwise element by element.
                unsafe {
                    let cp = c.add(r * ldc + lo);
                    if count == 8 {
                        let mut out = x;
                        if accumulate {
                            out = _mm256_add_ps(out, _mm256_loadu_ps(cp));
                        }
                        if has_col_bias {
                            out = _mm256_add_ps(out, _mm256_loadu_ps(epi.bias_col.add(lo)));
                        }
                        out = _mm256_add_ps(out, bias_row_v);
                        out = crate::simd::avx2::relu(out, relu_lanes);
                        _mm256_storeu_ps(cp, out);
                    } else {
                        let mut tmp = [0.0f32; 8];
                        _mm256_storeu_ps(tmp.as_mut_ptr(), x);
                        for (j, &t) in tmp.iter().enumerate().take(count) {
                            let p = cp.add(j);
                            let mut out = if accumulate { *p + t } else { t };
                            if !epi.bias_col.is_null() {
                                out += *epi.bias_col.add(lo + j);
                            }
                            if !epi.bias_row.is_null() {
                                out += *epi.bias_row.add(r);
                            }
                            if epi.relu {
                                out = out.max(0.0);
                            }
                            *p = out;
                        }
                    }
                }
            }
        }
    }
}

macro_rules! pick {
    ($mr:expr, $m:ident :: $f:ident, $c:expr; $($n:literal)*) => {
        match $mr {
            $($n => Some($m::$f::<$n, $c> as MicroKernel),)*
            _ => None,
        }
    };
    ($mr:expr, $m:ident :: $f:ident, $c:expr, $u:expr, $ar:expr; $($n:literal)*) => {
        match $mr {
            $($n => Some($m::$f::<$n, $c, $u, $ar> as MicroKernel),)*
            _ => None,
        }
    };
}

/// The K-split micro-kernel for `simd`, an `mr x nr` tile and `k_split` sets,
/// if compiled (AVX-512, `mr <= K_SPLIT_MAX_ROWS`, split 2 or 4); `a_rows`:
/// reading a row-major A in place.
fn split_micro_kernel(
    simd: SimdLevel,
    mr: usize,
    nr: usize,
    k_split: usize,
    a_rows: bool,
) -> Option<MicroKernel> {
    if !simd.is_supported() || mr > crate::tile::K_SPLIT_MAX_ROWS {
        return None;
    }
    match (simd, nr, k_split, a_rows) {
        #[cfg(target_arch = "x86_64")]
        (SimdLevel::Avx512, 32, 2, false) => pick!(mr, x86::avx512, 2, 2, false; 1 2 3),
        #[cfg(target_arch = "x86_64")]
        (SimdLevel::Avx512, 32, 4, false) => pick!(mr, x86::avx512, 2, 4, false; 1 2 3),
        #[cfg(target_arch = "x86_64")]
        (SimdLevel::Avx512, 16, 2, false) => pick!(mr, x86::avx512, 1, 2, false; 1 2 3),
        #[cfg(target_arch = "x86_64")]
        (SimdLevel::Avx512, 16, 4, false) => pick!(mr, x86::avx512, 1, 4, false; 1 2 3),
        #[cfg(target_arch = "x86_64")]
        (SimdLevel::Avx512, 32, 2, true) => pick!(mr, x86::avx512, 2, 2, true; 1 2 3),
        #[cfg(target_arch = "x86_64")]
        (SimdLevel::Avx512, 32, 4, true) => pick!(mr, x86::avx512, 2, 4, true; 1 2 3),
        #[cfg(target_arch = "x86_64")]
        (SimdLevel::Avx512, 16, 2, true) => pick!(mr, x86::avx512, 1, 2, true; 1 2 3),
        #[cfg(target_arch = "x86_64")]
        (SimdLevel::Avx512, 16, 4, true) => pick!(mr, x86::avx512, 1, 4, true; 1 2 3),
        _ => None,
    }
}

/// The micro-kernel for `simd` and an `mr x nr` tile, if compiled; `a_rows`:
/// reading a row-major A in place (AVX-512 only).
fn micro_kernel(simd: SimdLevel, mr: usize, nr: usize, a_rows: bool) -> Option<MicroKernel> {
    if !simd.is_supported() {
        return None;
    }
    match (simd, nr, a_rows) {
        #[cfg(target_arch = "x86_64")]
        (SimdLevel::Avx512, 32, false) => {
            pick!(mr, x86::avx512, 2, 1, false; 1 2 3 4 5 6 7 8 9 10 11 12 13 14)
        }
        #[cfg(target_arch = "x86_64")]
        (SimdLevel::Avx512, 16, false) => {
            pick!(mr, x86::avx512, 1, 1, false; 1 2 3 4 5 6 7 8 9 10 11 12 13 14)
        }
        #[cfg(target_arch = "x86_64")]
        (SimdLevel::Avx512, 32, true) => {
            pick!(mr, x86::avx512, 2, 1, true; 1 2 3 4 5 6 7 8 9 10 11 12 13 14)
        }
        #[cfg(target_arch = "x86_64")]
        (SimdLevel::Avx512, 16, true) => {
            pick!(mr, x86::avx512, 1, 1, true; 1 2 3 4 5 6 7 8 9 10 11 12 13 14)
        }
        #[cfg(target_arch = "x86_64")]
        (SimdLevel::Avx2Fma, 16, false) => pick!(mr, x86::avx2, 2; 1 2 3 4 5 6),
        #[cfg(target_arch = "x86_64")]
        (SimdLevel::Avx2Fma, 8, false) => pick!(mr, x86::avx2, 1; 1 2 3 4 5 6),
        (SimdLevel::Portable, 16, false) => pick!(mr, portable::kernel, 16; 1 2 3 4 5 6 7 8),
        (SimdLevel::Portable, 8, false) => pick!(mr, portable::kernel, 8; 1 2 3 4 5 6 7 8),
        _ => None,
    }
}

/// Largest `mr` the row-sum kernels are compiled for.
const MAX_ROW_SUM_MR: usize = 12;

/// The AVX-512 row-sum kernels for every row count 1..=mr, if compiled.
fn row_sum_kernels_up_to(
    simd: SimdLevel,
    mr: usize,
    nr: usize,
) -> Option<([MicroKernel; MAX_MR], usize)> {
    if !simd.is_supported() || mr == 0 || mr > MAX_ROW_SUM_MR {
        return None;
    }
    let pick = |m: usize| -> Option<MicroKernel> {
        match (simd, nr) {
            #[cfg(target_arch = "x86_64")]
            (SimdLevel::Avx512, 32) => {
                pick!(m, x86::avx512_row_sums, 2; 1 2 3 4 5 6 7 8 9 10 11 12)
            }
            #[cfg(target_arch = "x86_64")]
            (SimdLevel::Avx512, 16) => {
                pick!(m, x86::avx512_row_sums, 1; 1 2 3 4 5 6 7 8 9 10 11 12)
            }
            _ => None,
        }
    };
    let first = pick(1)?;
    let mut table = [first; MAX_MR];
    for (m, slot) in table.iter_mut().enumerate().take(mr).skip(1) {
        *slot = pick(m + 1)?;
    }
    Some((table, mr))
}

/// Kernels for every row count 1..=mr (partial row tiles use a smaller kernel, not padding).
/// Largest `mr` any micro-kernel is compiled for.
const MAX_MR: usize = 14;

/// Kernels for every row count 1..=mr (partial row tiles use a smaller kernel, not padding);
/// rows up to `K_SPLIT_MAX_ROWS` use the `k_split` kernels when `k_split > 1`;
/// `a_rows`: kernels reading a row-major A in place.
/// A fixed array, so a GEMM call allocates nothing.
fn kernels_up_to(
    simd: SimdLevel,
    mr: usize,
    nr: usize,
    k_split: usize,
    a_rows: bool,
) -> Result<([MicroKernel; MAX_MR], usize), KernelError> {
    let missing = |m: usize| {
        KernelError::Gemm(format!(
            "no {simd} micro-kernel for a {m}x{nr} tile on this CPU"
        ))
    };
    if mr == 0 || mr > MAX_MR {
        return Err(missing(mr));
    }
    let kernel = |rows: usize| {
        let split = if k_split > 1 {
            split_micro_kernel(simd, rows, nr, k_split, a_rows)
        } else {
            None
        };
        split
            .or_else(|| micro_kernel(simd, rows, nr, a_rows))
            .ok_or_else(|| missing(rows))
    };
    let first = kernel(1)?;
    let mut table = [first; MAX_MR];
    for (m, slot) in table.iter_mut().enumerate().take(mr).skip(1) {
        *slot = kernel(m + 1)?;
    }
    Ok((table, mr))
}

/// Raw pointer to C shared by threads writing disjoint column ranges.
#[derive(Clone, Copy)]
struct CPtr(*mut f32);
// SAFETY: threads only write disjoint blocks of C (see `sgemm_with`).
unsafe impl Send for CPtr {}
// SAFETY: as above; no two threads touch the same element.
unsafe impl Sync for CPtr {}

/// Below this many FLOPs a GEMM runs on one thread even when a helper is
/// polling for work (handing out chunks would cost more than it saves).
pub const PARALLEL_MIN_FLOPS: f64 = 1.0e6;

/// Below this many FLOPs a GEMM does not wake a sleeping helper: the wake-up
/// costs the caller about 6.5 us here, over 5% of a smaller GEMM's time.
pub const WAKE_MIN_FLOPS: f64 = 16.0e6;

/// Whether the helper threads of multi-threaded kernels are running: only a
/// kernel compiled for more than one thread starts them.
pub fn helper_threads_started() -> bool {
    pool::started()
}

/// How long a sleeping helper thread has been taking to start once woken
/// (smoothed), if one was woken yet. Until a model run has timed runs both
/// with and without a woken helper, one expected to end sooner than 1.5
/// times this wakes none (`pool::begin_run`).
pub fn helper_wake_latency() -> Option<std::time::Duration> {
    pool::wake_latency()
}

pub use crate::pool::{set_chunk_takers, ChunkTakers};

static SPLIT_SMALL_WORK: AtomicBool = AtomicBool::new(false);

/// Split work across the threads asked for however small it is, from now on in
/// this process: for tests of the parallel paths, which the size thresholds
/// would keep on one thread at test sizes. Results are the same bits either way.
pub fn split_small_work(on: bool) {
    SPLIT_SMALL_WORK.store(on, Ordering::Relaxed);
}

/// Helpers worth asking for, for `flops` of work split `threads` ways: none
/// under [`PARALLEL_MIN_FLOPS`], and under [`WAKE_MIN_FLOPS`] only if one is
/// already awake (polling for work); in a model run that chose to wake none
/// (`pool::begin_run`), only one that is polling.
pub(crate) fn helpers_worth(threads: usize, flops: f64) -> usize {
    let worth = if SPLIT_SMALL_WORK.load(Ordering::Relaxed) {
        true
    } else if pool::waking_not_worth() {
        // A model run that wakes no helper (`pool::begin_run`).
        flops >= PARALLEL_MIN_FLOPS && pool::helper_polling()
    } else {
        flops >= WAKE_MIN_FLOPS || (flops >= PARALLEL_MIN_FLOPS && pool::helper_awake())
    };
    if worth {
        pool::helpers_for(threads)
    } else {
        0
    }
}

/// Column blocks per thread and row block of a parallel GEMM: fine enough that
/// a thread joining late or running slow leaves little for the others to wait
/// for, coarse enough to keep each micro-kernel loop long.
pub(crate) const CHUNKS_PER_THREAD: usize = 8;

/// `C[m x n] = epilogue(A[m x k] . B[k x n])`, row-major C with leading dimension `ldc`.
/// Convenience entry with row-major A and B; allocates its packing buffers.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    params: &TileParams,
    simd: SimdLevel,
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
    epilogue: Epilogue<'_>,
) -> Result<(), KernelError> {
    let mut ws = GemmWorkspace::new();
    sgemm_with(
        &mut ws,
        params,
        simd,
        m,
        n,
        k,
        MatRef::row_major(a, lda),
        BOperand::Mat(MatRef::row_major(b, ldb)),
        c,
        ldc,
        epilogue,
    )
}

/// General entry: strided A, strided or pre-packed B, reusable workspace.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_with(
    ws: &mut GemmWorkspace,
    params: &TileParams,
    simd: SimdLevel,
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_>,
    b: BOperand<'_>,
    c: &mut [f32],
    ldc: usize,
    epilogue: Epilogue<'_>,
) -> Result<(), KernelError> {
    params.validate(simd)?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    if ldc < n
        || (m - 1)
            .checked_mul(ldc)
            .and_then(|x| x.checked_add(n))
            .is_none_or(|need| need > c.len())
    {
        return Err(KernelError::Gemm(format!(
            "C: {m}x{n} with ldc {ldc} does not fit in {} elements",
            c.len()
        )));
    }
    match epilogue.bias {
        Bias::PerColumn(bias) if bias.len() < n => {
            return Err(KernelError::Gemm(format!(
                "bias has {} < n = {n} entries",
                bias.len()
            )))
        }
        Bias::PerRow(bias) if bias.len() < m => {
            return Err(KernelError::Gemm(format!(
                "bias has {} < m = {m} entries",
                bias.len()
            )))
        }
        _ => {}
    }
    if k == 0 {
        for i in 0..m {
            c[i * ldc..i * ldc + n].iter_mut().for_each(|x| *x = 0.0);
        }
        epilogue.apply(c, ldc, 0, 0, m, n);
        return Ok(());
    }
    a.check(m, k, "A")?;
    match b {
        BOperand::Mat(bm) => bm.check(k, n, "B")?,
        BOperand::Gathered(g) => g.check(k, n)?,
        BOperand::Packed(p) => {
            if p.k != k || p.n != n || !p.matches(params) {
                return Err(KernelError::Gemm(format!(
                    "packed B is {}x{} (kc {}, nr {}), GEMM wants {k}x{n} (kc {}, nr {})",
                    p.k, p.n, p.kc, p.nr, params.kc, params.nr
                )));
            }
        }
    }
    let (table, count) = kernels_up_to(
        simd,
        params.mr,
        params.nr,
        params.k_split,
        reads_a_by_rows(params, &a),
    )?;
    let kernels = &table[..count];
    // Weights times a mostly-zero A (a ReLU's output): skip the zeros' products.
    let sparse_b = match b {
        BOperand::Packed(p)
            if params.skip_zeros
                && p.zeros_skippable()
                && a.cs == 1
                && sparse::supported(simd)
                && sparse::probably_worth_skipping(simd, a, m, k) =>
        {
            Some(p)
        }
        _ => None,
    };
    let flops = 2.0 * m as f64 * n as f64 * k as f64;
    let slivers = n.div_ceil(params.nr);
    let helpers = helpers_worth(params.threads, flops);
    // Buffers for every helper this GEMM could ever have, not only this
    // call's: a later call with more helpers then allocates nothing.
    let possible = if params.threads > 1 {
        pool::helpers_for(params.threads)
    } else {
        0
    };
    let participants = possible.max(helpers) + 1;
    if ws.threads.len() < participants {
        ws.threads.resize(participants, PackBuffers::default());
    }
    let may_gather = matches!(b, BOperand::Packed(p) if params.skip_zeros && p.zeros_skippable())
        && a.cs == 1
        && sparse::gathers(simd);
    if may_gather {
        // Sized whether or not this input skips, so that the next one never
        // has to allocate.
        ws.gathered.reserve(m, k);
        for buffers in &mut ws.threads {
            sparse::reserve_partial(&mut buffers.sparse_partial);
        }
    }
    // The AVX2 zero-skipping kernel reads A's nonzeros gathered once here.
    let gathering = sparse_b.is_some() && sparse::gathers(simd);
    if gathering {
        sparse::gather(simd, a, m, k, &mut ws.gathered);
    }
    let gathered = &ws.gathered;
    for buffers in &mut ws.threads {
        buffers.a_block = None;
    }
    let cptr = CPtr(c.as_mut_ptr());
    let epilogue = &epilogue;
    // Rows `rows` by columns `cols` of C, with the zero-skipping kernel or the
    // packed micro-kernels. Each block is handed to one thread only.
    let block = |buf: &mut PackBuffers, rows: Range<usize>, cols: Range<usize>| {
        if let Some(packed) = sparse_b {
            // SAFETY: as below; A is row-major and B packed in one K slice, all finite.
            return unsafe {
                sparse::gemm_block(
                    simd,
                    a,
                    k,
                    packed,
                    cptr.0,
                    ldc,
                    rows,
                    cols,
                    epilogue,
                    gathered,
                    &mut buf.sparse_partial,
                )
            };
        }
        // SAFETY: arguments validated above (C covers (m-1)*ldc + n elements),
        // and no other thread writes this block.
        unsafe {
            gemm_serial(
                buf, simd, params, kernels, m, n, k, a, b, cptr, ldc, rows, cols, epilogue,
            )
        };
        Ok(())
    };
    if helpers == 0 {
        ws.chunks.prepare();
        let done = block(&mut ws.threads[0], 0..m, 0..n);
        pool::equalize(&mut ws.threads);
        return done;
    }
    // Blocks of C handed out one at a time, so a thread that starts late or
    // runs slow (a busy vCPU) takes fewer of them and nobody waits long for
    // the last. A block is one row block by a few column slivers, taken in
    // row-block order, so a thread packs each A block once for all the blocks
    // it takes in that row. A B that is not pre-packed would be packed again
    // for every row block: then blocks span all rows.
    let block_rows = if gathering {
        // Row blocks as the gather's chunks.
        sparse::ROW_CHUNK
    } else if matches!(b, BOperand::Packed(_)) {
        row_block_size(m, params)
    } else {
        m
    };
    let row_blocks = m.div_ceil(block_rows);
    let slivers_per_block = slivers.div_ceil((helpers + 1) * CHUNKS_PER_THREAD).max(1);
    let col_blocks = slivers.div_ceil(slivers_per_block);
    let buffers = pool::PerParticipant::new(&mut ws.threads);
    let take_chunk = |participant: usize, chunk: usize| {
        let (row_block, col_block) = (chunk / col_blocks, chunk % col_blocks);
        let rows = row_block * block_rows..((row_block + 1) * block_rows).min(m);
        let step = slivers_per_block * params.nr;
        let cols = col_block * step..((col_block + 1) * step).min(n);
        // SAFETY: `participant` is the number `run_chunks` gave this thread.
        let buf = unsafe { buffers.get(participant) }.ok_or_else(|| {
            KernelError::Gemm("internal: a thread of a parallel GEMM had no packing buffers".into())
        })?;
        // Each chunk runs once: its block of C is written by this thread only.
        block(buf, rows, cols)
    };
    let chunks = row_blocks * col_blocks;
    let done = pool::try_run_chunks(&mut ws.chunks, helpers, chunks, &take_chunk);
    pool::equalize(&mut ws.threads);
    done
}

/// `sums[j] += sum_i epilogue(A . B)[i, j]`: the column sums of the product
/// without storing it (the AVX-512 micro-kernels add each register tile's rows
/// and only touch `sums`). Returns `Ok(false)`, doing nothing, when this is not
/// available: another SIMD level, register tiles taller than 12, K deeper than
/// one `kc` slice, an activation other than ReLU or a per-row bias. Single-threaded.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm_row_sums(
    ws: &mut GemmWorkspace,
    params: &TileParams,
    simd: SimdLevel,
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_>,
    b: BOperand<'_>,
    sums: &mut [f32],
    epilogue: Epilogue<'_>,
) -> Result<bool, KernelError> {
    params.validate(simd)?;
    let supported = simd == SimdLevel::Avx512
        && k >= 1
        && k <= params.kc
        && matches!(epilogue.activation, None | Some(Activation::Relu))
        && !matches!(epilogue.bias, Bias::PerRow(_));
    if !supported {
        return Ok(false);
    }
    if m == 0 || n == 0 {
        return Ok(true);
    }
    if sums.len() < n {
        return Err(KernelError::Gemm(format!(
            "sums has {} < n = {n} entries",
            sums.len()
        )));
    }
    if let Bias::PerColumn(bias) = epilogue.bias {
        if bias.len() < n {
            return Err(KernelError::Gemm(format!(
                "bias has {} < n = {n} entries",
                bias.len()
            )));
        }
    }
    a.check(m, k, "A")?;
    match b {
        BOperand::Mat(bm) => bm.check(k, n, "B")?,
        BOperand::Gathered(g) => g.check(k, n)?,
        BOperand::Packed(p) => {
            if p.k != k || p.n != n || !p.matches(params) {
                return Err(KernelError::Gemm(format!(
                    "packed B is {}x{} (kc {}, nr {}), GEMM wants {k}x{n} (kc {}, nr {})",
                    p.k, p.n, p.kc, p.nr, params.kc, params.nr
                )));
            }
        }
    }
    let Some((table, count)) = row_sum_kernels_up_to(simd, params.mr, params.nr) else {
        return Ok(false);
    };
    if ws.threads.is_empty() {
        ws.threads.push(PackBuffers::default());
    }
    ws.threads[0].a_block = None;
    // The row-sum kernels read A packed (or k-major in place) only.
    let params = &TileParams {
        a_in_place: false,
        ..*params
    };
    // SAFETY: arguments validated above; with ldc 0 every tile row is `sums`
    // (n floats), which the kernels only update at row 0 in row-sum mode.
    unsafe {
        gemm_serial(
            &mut ws.threads[0],
            simd,
            params,
            &table[..count],
            m,
            n,
            k,
            a,
            b,
            CPtr(sums.as_mut_ptr()),
            0,
            0..m,
            0..n,
            &epilogue,
        )
    };
    Ok(true)
}

/// Whether the tile reads A in place by rows (a row-major A, the `a_in_place`
/// knob): the kernels then take A's row stride instead of packed slivers.
fn reads_a_by_rows(params: &TileParams, a: &MatRef<'_>) -> bool {
    params.a_in_place && a.cs == 1 && a.rs != 1
}

/// Rows `rows` by columns `cols` of the product: `rows` whole row blocks of
/// this GEMM's blocking (`row_block_size`), `cols.start` a multiple of nr.
///
/// # Safety
/// A, B, C and the epilogue's bias must have been validated for an m x n x k GEMM with `ldc`;
/// no other thread may touch that part of C meanwhile.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_serial(
    buf: &mut PackBuffers,
    simd: SimdLevel,
    params: &TileParams,
    kernels: &[MicroKernel],
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_>,
    b: BOperand<'_>,
    c: CPtr,
    ldc: usize,
    rows: Range<usize>,
    cols: Range<usize>,
    epilogue: &Epilogue<'_>,
) {
    let TileParams { nc, kc, mr, nr, .. } = *params;
    let nc = nc.div_ceil(nr) * nr;
    // A row-major B (unit column stride) can be read in place, sliver rows `rs` apart.
    let b_in_place = params.b_in_place && matches!(b, BOperand::Mat(bm) if bm.cs == 1);
    // A stored k-major (rows adjacent in memory, e.g. the transpose of a row-major
    // matrix) already has the packed sliver layout with a longer step: read it in place.
    let a_in_place = a.rs == 1;
    // A row-major A read in place (the kernels were picked for it: `reads_a_by_rows`).
    let a_by_rows = reads_a_by_rows(params, &a);
    // Equal K slices (1024 deep in slices of 384 would end with one of 256).
    let kc = balanced(k, kc);
    let mc = row_block_size(m, params);
    // Packed panels start on a cache line, wherever the allocator put the
    // buffer: the micro-kernel's vector loads then never split a line.
    grow(&mut buf.a, mc * kc + pool::LINE_FLOATS);
    let a_start = pages::line_offset(&buf.a);
    if !matches!(b, BOperand::Packed(_)) {
        grow(&mut buf.b, nc * kc + pool::LINE_FLOATS);
    }
    let b_start = pages::line_offset(&buf.b);
    let n_padded = n.div_ceil(nr) * nr;
    // What the micro-kernel cannot do in registers: activations other than ReLU.
    let post_activation = epilogue.activation.filter(|a| *a != Activation::Relu);
    let mut jc = cols.start;
    while jc < cols.end {
        let nc_eff = nc.min(cols.end - jc);
        let mut pc = 0;
        while pc < k {
            let kc_eff = kc.min(k - pc);
            let last_slice = pc + kc_eff == k;
            // Whole slivers of B read in place (no packing): only a partial last
            // sliver is packed, at the start of the buffer.
            let full_slivers = if b_in_place { nc_eff / nr } else { 0 };
            let b_panel: &[f32] = match b {
                BOperand::Mat(bm) if b_in_place => {
                    let done = full_slivers * nr;
                    if done < nc_eff {
                        pack_b(
                            bm,
                            pc,
                            kc_eff,
                            jc + done,
                            nc_eff - done,
                            nr,
                            &mut buf.b[b_start..],
                        );
                    }
                    &buf.b[b_start..]
                }
                BOperand::Mat(bm) => {
                    pack_b(bm, pc, kc_eff, jc, nc_eff, nr, &mut buf.b[b_start..]);
                    &buf.b[b_start..]
                }
                BOperand::Gathered(g) => {
                    pack_b_gathered(&g, pc, kc_eff, jc, nc_eff, nr, &mut buf.b[b_start..]);
                    &buf.b[b_start..]
                }
                BOperand::Packed(p) => {
                    let start = pc * n_padded + (jc / nr) * kc_eff * nr;
                    &p.data[start..]
                }
            };
            let mut ic = rows.start;
            while ic < rows.end {
                let mc_eff = mc.min(m - ic);
                // Equal register tiles too (64 rows as 11+11+11+11+11+9, not 12 x 5 + 4).
                let mr = balanced(mc_eff, mr);
                if !a_in_place && !a_by_rows && buf.a_block != Some((ic, pc)) {
                    pack_a(simd, a, ic, mc_eff, pc, kc_eff, mr, &mut buf.a[a_start..]);
                    buf.a_block = Some((ic, pc));
                }
                // One mr x nr register tile at (ir, jr) of the block.
                let tile = |jr: usize, nr_eff: usize, ir: usize, mr_eff: usize| {
                    let sliver = jr / nr;
                    let (b_sliver, b_step) = match b {
                        BOperand::Mat(bm) if sliver < full_slivers => {
                            (bm.data[pc * bm.rs + jc + jr..].as_ptr(), bm.rs)
                        }
                        BOperand::Mat(_) if b_in_place => (b_panel.as_ptr(), nr),
                        _ => (b_panel[sliver * kc_eff * nr..].as_ptr(), nr),
                    };
                    let (a_sliver, a_step) = if a_in_place {
                        (a.data[(ic + ir) + pc * a.cs..].as_ptr(), a.cs)
                    } else if a_by_rows {
                        (a.data[(ic + ir) * a.rs + pc..].as_ptr(), a.rs)
                    } else {
                        // Packed slivers are compact: the last, partial one steps by its own rows.
                        (buf.a[a_start + (ir / mr) * mr * kc_eff..].as_ptr(), mr_eff)
                    };
                    let (row, col) = (ic + ir, jc + jr);
                    // Bias and ReLU are applied in registers; other activations after the store.
                    let tile_epi = if last_slice {
                        TileEpilogue {
                            bias_col: match epilogue.bias {
                                Bias::PerColumn(b) => b[col..].as_ptr(),
                                _ => std::ptr::null(),
                            },
                            bias_row: match epilogue.bias {
                                Bias::PerRow(b) => b[row..].as_ptr(),
                                _ => std::ptr::null(),
                            },
                            relu: epilogue.activation == Some(Activation::Relu),
                        }
                    } else {
                        TileEpilogue::NONE
                    };
                    // SAFETY: row + mr_eff <= m and col + nr_eff <= n, validated against C
                    // and the bias lengths; the B sliver holds nr floats at each p * b_step
                    // (packed, or B itself, validated for k x n: a whole sliver's row pc + p
                    // is columns col..col + nr <= n at (pc + p) * rs + col), and the A
                    // sliver mr_eff floats at each p * a_step (packed, or A itself, validated
                    // for m x k: element (row + r, pc + p) is at (row + r) + (pc + p) * a.cs,
                    // or read by rows at (row + r) * a.rs + pc + p).
                    unsafe {
                        let cp = c.0.add(row * ldc + col);
                        kernels[mr_eff - 1](
                            kc_eff,
                            a_sliver,
                            a_step,
                            b_sliver,
                            b_step,
                            cp,
                            ldc,
                            nr_eff,
                            pc > 0,
                            tile_epi,
                        );
                        if let Some(act) = post_activation.filter(|_| last_slice) {
                            // The tile just stored, in one call (not a slice: the
                            // columns between its rows may be another thread's).
                            act::apply_rows(act, cp, ldc, mr_eff, nr_eff);
                        }
                    }
                };
                match params.loop_order {
                    LoopOrder::ColumnsOuter => {
                        let mut jr = 0;
                        while jr < nc_eff {
                            let nr_eff = nr.min(nc_eff - jr);
                            let mut ir = 0;
                            while ir < mc_eff {
                                let mr_eff = mr.min(mc_eff - ir);
                                tile(jr, nr_eff, ir, mr_eff);
                                ir += mr_eff;
                            }
                            jr += nr_eff;
                        }
                    }
                    LoopOrder::RowsOuter => {
                        let mut ir = 0;
                        while ir < mc_eff {
                            let mr_eff = mr.min(mc_eff - ir);
                            let mut jr = 0;
                            while jr < nc_eff {
                                let nr_eff = nr.min(nc_eff - jr);
                                tile(jr, nr_eff, ir, mr_eff);
                                jr += nr_eff;
                            }
                            ir += mr_eff;
                        }
                    }
                }
                ic += mc_eff;
            }
            pc += kc_eff;
        }
        jc += nc_eff;
    }
}

/// Rows per row block of an m-row GEMM: equal blocks of whole register tiles
/// (1024 rows in blocks of 504 would leave a block of 16).
fn row_block_size(m: usize, params: &TileParams) -> usize {
    let mr = params.mr;
    balanced(m, params.mc.div_ceil(mr) * mr).div_ceil(mr) * mr
}

/// The smallest block size that splits `len` into as few blocks of at most `max` as possible.
fn balanced(len: usize, max: usize) -> usize {
    if len == 0 || max == 0 {
        return max;
    }
    len.div_ceil(len.div_ceil(max))
}

/// Reference GEMM (plain triple loop) used by tests and the naive backend's dense op.
pub fn sgemm_reference(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: &mut [f32],
    ldc: usize,
) {
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f32;
            for p in 0..k {
                acc += a.data[i * a.rs + p * a.cs] * b.data[p * b.rs + j * b.cs];
            }
            c[i * ldc + j] = acc;
        }
    }
}

/// Register tiles this build has micro-kernels for at `simd` (tests iterate over all of them).
pub fn supported_tiles_for_tests(simd: SimdLevel) -> Vec<(usize, usize)> {
    crate::tile::supported_micro_tiles(simd)
        .into_iter()
        .filter(|&(mr, nr)| micro_kernel(simd, mr, nr, false).is_some())
        .collect()
}
