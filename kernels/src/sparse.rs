//! GEMM over a left operand with many exact zeros: `C = epilogue(A . B)`
//! where A is the output of a ReLU (about half of its entries are 0.0) and B
//! is pre-packed weights. The products of A's zeros are skipped: for each row
//! of A, only the rows of B under its nonzero entries are read and added.
//!
//! The result has the same bits as the dense micro-kernels': each element is
//! the same chain of fused multiply-adds in K order, less the terms `0 * b`,
//! which change nothing when every `b` is finite (adding +-0 to a sum only
//! decides the sign of a zero sum, and the epilogue's `+ 0.0` makes that +0 in
//! both). Weights with an infinity or NaN therefore never take this path.
//!
//! Blocking: a pass covers 128 columns of C (8 AVX-512 accumulators per row,
//! two rows at a time; AVX2: 64 columns, 8 ymm accumulators, one row) and 64
//! rows of B (32 KiB, AVX2 16 KiB, kept in L1 while the rows of A go by).
//! AVX-512 compares each row's 64 entries against zero in every pass and
//! keeps partial sums in C; AVX2 gathers A's nonzeros once per call (bits and
//! packed values, in the order the passes read them) and keeps partial sums
//! in a buffer of its own. The portable path has no such kernel: it computes
//! every product.

use crate::error::KernelError;
use crate::gemm::{Epilogue, MatRef, PackedB};
use crate::simd::SimdLevel;
use std::ops::Range;

/// Whether skipping pays on `simd` for an `m`-row A with `nonzero_fraction`
/// of its entries nonzero. Each kept product loads its row of B for one row
/// of A alone (the dense kernel shares a loaded row of B across 12 or 6 rows
/// of A), so a kept product costs about 1.2-1.5 dense ones, plus a fixed
/// cost per row and pass (`examples/zeros_ab.rs`, 64x1024x1024: AVX-512
/// 0.80x of dense at 50% nonzero, 0.92x at 60%, 1.04x at 70%; AVX2, one run
/// of each against the other in turn, 0.71x at 45%, 0.72-0.78x at 55%,
/// 0.86-0.93x at 65%, and at 50% with 8 / 16 / 256 rows 0.66-0.78x /
/// 0.71-0.82x / 0.72-0.75x; but while the host ran the dense GEMM 20% slower,
/// 0.74x at 40%, 0.87-0.91x at 50%, 1.01-1.04x at 60%). Under 8 rows the
/// dense GEMM streams B at memory speed, and skipping saves only the rows of
/// B that no row of A needs: at 50% nonzero, 1 row takes 0.71x (AVX2
/// 0.61-0.70x), 2 rows 0.98x (1.0x), 4 rows 1.01x.
pub fn worth_skipping(simd: SimdLevel, m: usize, nonzero_fraction: f64) -> bool {
    if m < 8 {
        // Fraction of B's rows some row of A needs, if zeros fall at random.
        let rows_of_b_read = 1.0 - (1.0 - nonzero_fraction).powi(m as i32);
        rows_of_b_read <= 0.75
    } else if simd == SimdLevel::Avx512 {
        nonzero_fraction <= 0.60
    } else {
        // Short of the 60-70% where AVX2 breaks even when the core is to
        // itself: with a busy sibling thread its loads suffer first (1.03x of
        // dense at 60%).
        nonzero_fraction <= 0.55
    }
}

/// Whether `simd` has the zero-skipping kernel (AVX-512 and AVX2+FMA) and this CPU runs it.
pub fn supported(simd: SimdLevel) -> bool {
    matches!(simd, SimdLevel::Avx512 | SimdLevel::Avx2Fma) && simd.is_supported()
}

/// Entries of A `probably_worth_skipping` reads at most: under 1 us here,
/// against the 1% of a 1 MFLOP GEMM a whole-matrix count would cost.
const SAMPLE_ENTRIES: usize = 4096;

/// `worth_skipping` on the fraction of nonzeros in evenly spaced whole rows
/// of A, about `SAMPLE_ENTRIES` entries (at least one row). A sample that
/// misjudges A (zeros bunched in rows) only picks the slower path: the
/// results are the same bits either way.
pub fn probably_worth_skipping(simd: SimdLevel, a: MatRef<'_>, m: usize, k: usize) -> bool {
    if m == 0 || k == 0 {
        return false;
    }
    let rows = (SAMPLE_ENTRIES / k).clamp(1, m);
    // Evenly spaced over m, the first row included.
    let sample = fraction_in_rows(simd, a, k, (0..rows).map(|r| r * m / rows));
    worth_skipping(simd, m, sample)
}

/// Fraction of the `m x k` entries of a row-major A that are not 0.0 (NaN
/// counts as nonzero). 0.0 for an empty A.
pub fn nonzero_fraction(simd: SimdLevel, a: MatRef<'_>, m: usize, k: usize) -> f64 {
    fraction_in_rows(simd, a, k, 0..m)
}

/// Fraction of nonzero (or NaN) entries among the first `k` of the given rows.
fn fraction_in_rows(
    simd: SimdLevel,
    a: MatRef<'_>,
    k: usize,
    rows: impl Iterator<Item = usize>,
) -> f64 {
    let (mut nonzero, mut entries) = (0usize, 0usize);
    for i in rows {
        nonzero += count_nonzero(simd, &a.data[i * a.rs..i * a.rs + k]);
        entries += k;
    }
    if entries == 0 {
        0.0
    } else {
        nonzero as f64 / entries as f64
    }
}

fn count_nonzero(simd: SimdLevel, row: &[f32]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if supported(simd) {
        // SAFETY: the instruction set was checked at run time just above.
        return unsafe {
            if simd == SimdLevel::Avx512 {
                x86::count_nonzero(row)
            } else {
                x86::avx2::count_nonzero(row)
            }
        };
    }
    let _ = simd;
    row.iter().filter(|&&x| x != 0.0 || x.is_nan()).count()
}

/// A's nonzeros for the AVX2 kernel, gathered once per GEMM call and read by
/// every thread and column pass (with no comparison left for them to do).
/// Kept by the caller so that repeated calls allocate nothing.
#[derive(Debug, Default, Clone)]
pub(crate) struct Gathered {
    /// Blocks of `PASS_DEPTH` entries of K per row.
    blocks: usize,
    /// Per chunk of `ROW_CHUNK` rows, block and row, in that order: bit t
    /// set when entry t of the block is not 0.0 (or is NaN).
    bits: Vec<u64>,
    /// Per chunk and block: where its rows' values start in `values`.
    starts: Vec<usize>,
    /// The nonzero values in the order of `bits`, each row's in K order: a
    /// pass reads them front to back.
    values: Vec<f32>,
}

impl crate::pool::GrowLike for Gathered {
    fn grow_like(&mut self, other: &Gathered) {
        crate::pool::reserve_like(&mut self.bits, &other.bits);
        crate::pool::reserve_like(&mut self.starts, &other.starts);
        crate::pool::reserve_like(&mut self.values, &other.values);
    }
}

impl Gathered {
    /// Room for the nonzeros of any `m x k` A, so that whether a call skips
    /// zeros (which depends on its input) never decides whether it allocates.
    pub(crate) fn reserve(&mut self, m: usize, k: usize) {
        let blocks = k.div_ceil(PASS_DEPTH);
        reserve_total(&mut self.bits, m * blocks);
        reserve_total(&mut self.starts, m.div_ceil(ROW_CHUNK) * blocks);
        reserve_total(&mut self.values, m * k + 8);
    }
}

/// Room for one thread's partial sums in `gemm_block`.
pub(crate) fn reserve_partial(partial: &mut Vec<f32>) {
    reserve_total(partial, ROW_CHUNK * 64);
}

/// `v.reserve` to a total capacity of `total`.
fn reserve_total<T>(v: &mut Vec<T>, total: usize) {
    v.reserve(total.saturating_sub(v.len()));
}

/// Whether `gemm_block` on `simd` reads A's nonzeros from `gather`; its row
/// blocks must then start at multiples of `ROW_CHUNK`.
pub(crate) fn gathers(simd: SimdLevel) -> bool {
    simd == SimdLevel::Avx2Fma && supported(simd)
}

/// Rows of A the AVX2 kernel takes through each block of K before the next:
/// their partial sums (32 x 64 floats, 8 KiB) stay in L1 beside the block of
/// B (64 x 64 floats, 16 KiB) however many rows there are. A's nonzeros are
/// gathered chunk by chunk, so a pass reads them in order (a row-major
/// gather, rows' values 2 KB apart, ran the kernel 10-15% slower).
pub(crate) const ROW_CHUNK: usize = 32;

/// Rows of B one pass keeps in L1: 64 x 128 floats = 32 KiB (AVX-512),
/// 64 x 64 (AVX2).
const PASS_DEPTH: usize = 64;

/// Fills `gathered` from the `m x k` row-major A, for `gemm_block` on a
/// `simd` that `gathers`; does nothing on others.
pub(crate) fn gather(simd: SimdLevel, a: MatRef<'_>, m: usize, k: usize, gathered: &mut Gathered) {
    #[cfg(target_arch = "x86_64")]
    if gathers(simd) && a.cs == 1 && a.data.len() >= (m.max(1) - 1) * a.rs + k {
        // SAFETY: AVX2 is there, and A holds m rows of k entries `rs` apart
        // (checked just above).
        unsafe { x86::avx2::gather(a.data.as_ptr(), a.rs, m, k, gathered) };
    }
    let _ = (simd, a, m, k, gathered);
}

/// `C[rows, cols] = epilogue(A[rows, ..k] . B[..k, cols])`, skipping A's zeros.
/// `cols.start` must be a multiple of the packing's `nr`.
///
/// # Safety
/// A must be row-major (unit column stride) and hold `m x k`; `packed` must be
/// `k x n` packed in one K slice (`k <= kc`) with finite entries; `c` must be
/// writable at `i * ldc + j` for `i` in `rows`, `j` in `cols` (`cols.end <= n`);
/// the epilogue's bias must cover `n` columns or `m` rows; no other thread may
/// touch that part of C meanwhile. `supported(simd)` must hold, and when
/// `gathers(simd)`, `gathered` must come from `gather` of this A (all m rows)
/// and `rows.start` be a multiple of `ROW_CHUNK`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_block(
    simd: SimdLevel,
    a: MatRef<'_>,
    k: usize,
    packed: &PackedB,
    c: *mut f32,
    ldc: usize,
    rows: Range<usize>,
    cols: Range<usize>,
    epilogue: &Epilogue<'_>,
    gathered: &Gathered,
    partial: &mut Vec<f32>,
) -> Result<(), KernelError> {
    if gathers(simd) && !rows.start.is_multiple_of(ROW_CHUNK) {
        return Err(KernelError::Gemm(format!(
            "internal: zero-skipping row block starts at row {}, not a multiple of {ROW_CHUNK}",
            rows.start
        )));
    }
    #[cfg(target_arch = "x86_64")]
    if supported(simd) {
        // SAFETY: the caller's guarantees, and the instruction set is there.
        unsafe {
            x86::gemm_block(
                simd, a, k, packed, c, ldc, rows, cols, epilogue, gathered, partial,
            )
        };
        return Ok(());
    }
    let _ = (
        a, k, packed, c, ldc, rows, cols, epilogue, gathered, partial,
    );
    Err(KernelError::Gemm(format!(
        "internal: no zero-skipping GEMM kernel for {simd}"
    )))
}

/// `kernel::<NV>(pass)` with NV the vectors of `lanes` floats that cover
/// `width` columns (1 to 8): the accumulators are a fixed-size array, so they
/// stay in registers, and no vector reads past the packing's padding.
#[cfg(target_arch = "x86_64")]
macro_rules! by_vectors {
    ($width:expr, $lanes:expr, $kernel:ident, $pass:expr) => {
        match $width.div_ceil($lanes) {
            1 => $kernel::<1>($pass),
            2 => $kernel::<2>($pass),
            3 => $kernel::<3>($pass),
            4 => $kernel::<4>($pass),
            5 => $kernel::<5>($pass),
            6 => $kernel::<6>($pass),
            7 => $kernel::<7>($pass),
            _ => $kernel::<8>($pass),
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use crate::gemm::{Bias, Epilogue, MatRef, PackedB};
    use crate::simd::SimdLevel;
    use crate::sparse::Gathered;
    use crate::spec::Activation;
    use std::arch::x86_64::*;
    use std::ops::Range;

    use crate::sparse::PASS_DEPTH;

    /// `super::gemm_block` in passes of up to 128 columns (AVX-512: 8 zmm
    /// accumulators per row) or 64 (AVX2: 8 ymm).
    ///
    /// # Safety
    /// As `super::gemm_block`, with `simd` AVX-512 or AVX2 and present.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn gemm_block(
        simd: SimdLevel,
        a: MatRef<'_>,
        k: usize,
        packed: &PackedB,
        c: *mut f32,
        ldc: usize,
        rows: Range<usize>,
        cols: Range<usize>,
        epilogue: &Epilogue<'_>,
        gathered: &Gathered,
        partial: &mut Vec<f32>,
    ) {
        let nr = packed.nr();
        let relu = epilogue.activation == Some(Activation::Relu);
        let post_activation = epilogue.activation.filter(|a| *a != Activation::Relu);
        let bias_col = |j: usize| match epilogue.bias {
            Bias::PerColumn(bias) => bias[j..].as_ptr(),
            _ => std::ptr::null(),
        };
        let bias_row = match epilogue.bias {
            Bias::PerRow(bias) => bias[rows.start..].as_ptr(),
            _ => std::ptr::null(),
        };
        let pass_at = |j: usize, width: usize| Pass {
            a: a.data[rows.start * a.rs..].as_ptr(),
            lda: a.rs,
            rows: rows.len(),
            k,
            b: packed.data()[(j / nr) * k * nr..].as_ptr(),
            nr,
            // SAFETY: (rows.start, j) is inside C (caller's guarantee).
            c: unsafe { c.add(rows.start * ldc + j) },
            ldc,
            width,
            bias_col: bias_col(j),
            bias_row,
            relu,
        };
        if simd == SimdLevel::Avx512 {
            let mut j = cols.start;
            while j < cols.end {
                let width = 128.min(cols.end - j);
                // SAFETY: the pass covers rows x width inside the caller's block
                // of C, A's rows, and width <= 128 columns of B's packed slivers
                // (padded to nr); the caller checked the instruction set.
                unsafe { pass(&pass_at(j, width)) };
                j += width;
            }
        } else {
            // SAFETY: as above, the whole block in passes of 64 columns; the
            // caller gathered all of A's rows.
            unsafe {
                avx2::gemm_block(
                    &pass_at(cols.start, cols.len()),
                    rows.start,
                    gathered,
                    partial,
                )
            };
        }
        if let Some(act) = post_activation {
            // SAFETY: rows x cols of C, `ldc` apart, are the caller's block.
            unsafe {
                crate::act::apply_rows(
                    act,
                    c.add(rows.start * ldc + cols.start),
                    ldc,
                    rows.len(),
                    cols.len(),
                )
            };
        }
    }

    /// One pass: `width <= 128` (AVX2: 64) columns of C for `rows` rows of A over all of K.
    /// Pointers start at the pass's first row / column.
    struct Pass {
        a: *const f32,
        lda: usize,
        rows: usize,
        k: usize,
        /// The sliver holding the pass's first column; slivers are `k * nr` apart.
        b: *const f32,
        nr: usize,
        c: *mut f32,
        ldc: usize,
        width: usize,
        bias_col: *const f32,
        bias_row: *const f32,
        relu: bool,
    }

    /// Nonzero (or NaN) entries of `row`.
    ///
    /// # Safety
    /// CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn count_nonzero(row: &[f32]) -> usize {
        let zero = _mm512_setzero_ps();
        let one = _mm512_set1_epi32(1);
        // Per-lane counts, added under the comparison's mask: no mask leaves
        // the vector unit inside the loop.
        let mut counts = _mm512_setzero_si512();
        let mut chunks = row.chunks_exact(16);
        for chunk in &mut chunks {
            // SAFETY: the chunk holds 16 floats.
            let x = unsafe { _mm512_loadu_ps(chunk.as_ptr()) };
            let nonzero = _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(x, zero);
            counts = _mm512_mask_add_epi32(counts, nonzero, counts, one);
        }
        let rest = chunks.remainder();
        _mm512_reduce_add_epi32(counts) as usize
            + rest.iter().filter(|&&x| x != 0.0 || x.is_nan()).count()
    }

    /// The pass in 16-column vectors (see `by_vectors`).
    ///
    /// # Safety
    /// CPU must support AVX-512F; `pass` must describe memory as `gemm_block` requires.
    #[target_feature(enable = "avx512f")]
    unsafe fn pass(pass: &Pass) {
        // SAFETY: the caller's guarantees; NV vectors cover the pass's width.
        unsafe { by_vectors!(pass.width, 16, pass_nv, pass) }
    }

    /// # Safety
    /// As `pass`, with `16 * (NV - 1) < width <= 16 * NV`.
    #[target_feature(enable = "avx512f")]
    unsafe fn pass_nv<const NV: usize>(p: &Pass) {
        let zero = _mm512_setzero_ps();
        // Where the 16 columns of vector v start in row 0 of the packed B.
        let mut base = [p.b; NV];
        let mut masks = [0 as __mmask16; NV];
        let mut bias_col = [zero; NV];
        for v in 0..NV {
            // SAFETY: column 16 v < width lies in sliver 16 v / nr of the padded packing.
            base[v] = unsafe { p.b.add((16 * v / p.nr) * p.k * p.nr + (16 * v) % p.nr) };
            let count = p.width.saturating_sub(16 * v).min(16);
            masks[v] = ((1u32 << count) - 1) as __mmask16;
            if !p.bias_col.is_null() {
                // SAFETY: the bias covers the pass's columns (masked).
                bias_col[v] = unsafe { _mm512_maskz_loadu_ps(masks[v], p.bias_col.add(16 * v)) };
            }
        }
        // SAFETY: the caller's guarantees.
        unsafe { rows_nv::<NV>(p, &base, &masks, &bias_col) };
    }

    /// All rows of the pass over all of K, 64 rows of B at a time, two rows of
    /// A at once (16 independent accumulators; 1.02x over one row at a time).
    ///
    /// # Safety
    /// As `pass_nv`.
    #[target_feature(enable = "avx512f")]
    unsafe fn rows_nv<const NV: usize>(
        p: &Pass,
        base: &[*const f32; NV],
        masks: &[__mmask16; NV],
        bias_col: &[__m512; NV],
    ) {
        let mut k0 = 0;
        while k0 < p.k {
            let depth = PASS_DEPTH.min(p.k - k0);
            let last = k0 + depth == p.k;
            let mut i = 0;
            while i < p.rows {
                // SAFETY: rows i (and i + 1 when there is one) of the pass.
                unsafe {
                    let mut acc0 = load_partial(p, i, k0, masks);
                    let mut bits0 = nonzero_bits(p, i, k0, depth);
                    if i + 1 < p.rows {
                        let mut acc1 = load_partial(p, i + 1, k0, masks);
                        let mut bits1 = nonzero_bits(p, i + 1, k0, depth);
                        while bits0 != 0 && bits1 != 0 {
                            add_next(p, i, k0, &mut bits0, base, &mut acc0);
                            add_next(p, i + 1, k0, &mut bits1, base, &mut acc1);
                        }
                        while bits1 != 0 {
                            add_next(p, i + 1, k0, &mut bits1, base, &mut acc1);
                        }
                        store(p, i + 1, last, &acc1, masks, bias_col);
                    }
                    while bits0 != 0 {
                        add_next(p, i, k0, &mut bits0, base, &mut acc0);
                    }
                    store(p, i, last, &acc0, masks, bias_col);
                }
                i += 2;
            }
            k0 += depth;
        }
    }

    /// Row i's partial sums from the previous passes (zeros before the first).
    ///
    /// # Safety
    /// Row i of the pass; columns masked.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn load_partial<const NV: usize>(
        p: &Pass,
        i: usize,
        k0: usize,
        masks: &[__mmask16; NV],
    ) -> [__m512; NV] {
        let mut acc = [_mm512_setzero_ps(); NV];
        if k0 > 0 {
            for v in 0..NV {
                // SAFETY: the partial sums stored by the previous pass (masked).
                acc[v] = unsafe { _mm512_maskz_loadu_ps(masks[v], p.c.add(i * p.ldc + 16 * v)) };
            }
        }
        acc
    }

    /// Bit t: entry k0 + t of row i of A is not 0.0 (or is NaN), t < depth <= 64.
    ///
    /// # Safety
    /// Row i of the pass holds entries k0..k0 + depth.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn nonzero_bits(p: &Pass, i: usize, k0: usize, depth: usize) -> u64 {
        let zero = _mm512_setzero_ps();
        let mut nonzero: u64 = 0;
        for h in 0..depth.div_ceil(16) {
            let count = (depth - 16 * h).min(16);
            let m = ((1u32 << count) - 1) as __mmask16;
            // SAFETY: entries k0 + 16 h .. + count of the row (masked).
            let x = unsafe { _mm512_maskz_loadu_ps(m, p.a.add(i * p.lda + k0 + 16 * h)) };
            let bits = _mm512_mask_cmp_ps_mask::<_CMP_NEQ_UQ>(m, x, zero);
            nonzero |= u64::from(bits) << (16 * h);
        }
        nonzero
    }

    /// `acc += A[i, k0 + t] * B[k0 + t, ..]` for the lowest set bit t, which is cleared.
    ///
    /// # Safety
    /// `bits` nonzero, from `nonzero_bits(p, i, k0, ..)`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn add_next<const NV: usize>(
        p: &Pass,
        i: usize,
        k0: usize,
        bits: &mut u64,
        base: &[*const f32; NV],
        acc: &mut [__m512; NV],
    ) {
        let kk = k0 + bits.trailing_zeros() as usize;
        *bits &= *bits - 1;
        // SAFETY: entry kk < k of row i.
        let av = _mm512_set1_ps(unsafe { *p.a.add(i * p.lda + kk) });
        let row_offset = kk * p.nr;
        for v in 0..NV {
            // SAFETY: row kk < k of the packed slivers, 16 floats within the
            // sliver (padded to nr).
            let bv = unsafe { _mm512_loadu_ps(base[v].add(row_offset)) };
            acc[v] = _mm512_fmadd_ps(av, bv, acc[v]);
        }
    }

    /// Row i's partial sums back to C, or after the last pass its outputs: the
    /// dense kernel's epilogue, operation for operation (its C load is +0.0
    /// without accumulation), so the bits are the same.
    ///
    /// # Safety
    /// Row i of the pass; columns masked.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn store<const NV: usize>(
        p: &Pass,
        i: usize,
        last: bool,
        acc: &[__m512; NV],
        masks: &[__mmask16; NV],
        bias_col: &[__m512; NV],
    ) {
        let zero = _mm512_setzero_ps();
        // SAFETY: row i of the pass's C.
        let c_row = unsafe { p.c.add(i * p.ldc) };
        if !last {
            for v in 0..NV {
                // SAFETY: columns < width of row i (masked).
                unsafe { _mm512_mask_storeu_ps(c_row.add(16 * v), masks[v], acc[v]) };
            }
            return;
        }
        let bias_row = if p.bias_row.is_null() {
            0.0
        } else {
            // SAFETY: the bias covers the pass's rows.
            unsafe { *p.bias_row.add(i) }
        };
        let bias_row = _mm512_set1_ps(bias_row);
        let relu_lanes: __mmask16 = if p.relu { 0xffff } else { 0 };
        for v in 0..NV {
            let out = _mm512_add_ps(_mm512_add_ps(acc[v], zero), bias_col[v]);
            let out = _mm512_add_ps(out, bias_row);
            let out = _mm512_mask_max_ps(out, relu_lanes, out, zero);
            // SAFETY: columns < width of row i (masked).
            unsafe { _mm512_mask_storeu_ps(c_row.add(16 * v), masks[v], out) };
        }
    }

    /// The AVX2+FMA kernel: passes of 64 columns (8 ymm accumulators per row,
    /// one row at a time), 64 rows of B deep. Passes of 96 columns (12
    /// accumulators, for more independent FMA chains) ran `mlp-1024` batch 64
    /// at 1.30-1.33x the dense time against 0.92x (`examples/zeros_pairs.rs`).
    ///
    /// A's nonzeros are gathered once per GEMM call (`Gathered`), so the
    /// passes do no comparison, and partial sums wait in a small buffer of the
    /// thread's instead of C, whose rows are a power of two apart in the usual
    /// shapes.
    pub(in crate::sparse) mod avx2 {
        use super::{Pass, PASS_DEPTH};
        use crate::sparse::{Gathered, ROW_CHUNK};
        use std::arch::x86_64::*;

        /// Nonzero (or NaN) entries of `row`.
        ///
        /// # Safety
        /// CPU must support AVX2.
        #[target_feature(enable = "avx2")]
        pub unsafe fn count_nonzero(row: &[f32]) -> usize {
            let zero = _mm256_setzero_ps();
            let mut count = 0usize;
            let mut chunks = row.chunks_exact(8);
            for chunk in &mut chunks {
                // SAFETY: the chunk holds 8 floats.
                let x = unsafe { _mm256_loadu_ps(chunk.as_ptr()) };
                let nonzero = _mm256_cmp_ps::<_CMP_NEQ_UQ>(x, zero);
                count += _mm256_movemask_ps(nonzero).count_ones() as usize;
            }
            let rest = chunks.remainder();
            count + rest.iter().filter(|&&x| x != 0.0 || x.is_nan()).count()
        }

        /// Lanes `0..count` of a mask vector (all bits set in those lanes).
        #[target_feature(enable = "avx2")]
        #[inline]
        fn first_lanes(count: usize) -> __m256i {
            let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            _mm256_cmpgt_epi32(_mm256_set1_epi32(count as i32), lanes)
        }

        /// For each 8-bit mask, the lanes whose bit is set, lowest first (the
        /// rest 0): one permutation packs a vector's nonzeros to its front.
        const PACK_LEFT: [[i32; 8]; 256] = {
            let mut table = [[0i32; 8]; 256];
            let mut mask = 0;
            while mask < 256 {
                let (mut lane, mut out) = (0, 0);
                while lane < 8 {
                    if mask & (1 << lane) != 0 {
                        table[mask][out] = lane;
                        out += 1;
                    }
                    lane += 1;
                }
                mask += 1;
            }
            table
        };

        /// Fills `gathered` for rows `0..rows` of A: chunk by chunk of
        /// `ROW_CHUNK` rows, block by block of `PASS_DEPTH` entries of K, each
        /// row's bits (bit t: entry t of the block is not 0.0, or is NaN) and
        /// its nonzero values in K order.
        ///
        /// # Safety
        /// CPU must support AVX2; A holds `rows` rows of `k` entries, `lda` apart.
        #[target_feature(enable = "avx2")]
        pub(in crate::sparse) unsafe fn gather(
            a: *const f32,
            lda: usize,
            rows: usize,
            k: usize,
            gathered: &mut Gathered,
        ) {
            let blocks = k.div_ceil(PASS_DEPTH);
            gathered.blocks = blocks;
            gathered.bits.clear();
            gathered.starts.clear();
            gathered.values.clear();
            // Room for every entry plus a whole vector's spill past the last.
            gathered.values.resize(rows * k + 8, 0.0);
            let zero = _mm256_setzero_ps();
            let values = gathered.values.as_mut_ptr();
            let mut len = 0usize;
            for chunk_start in (0..rows).step_by(ROW_CHUNK) {
                for block in 0..blocks {
                    gathered.starts.push(len);
                    let k0 = block * PASS_DEPTH;
                    let depth = PASS_DEPTH.min(k - k0);
                    for i in chunk_start..rows.min(chunk_start + ROW_CHUNK) {
                        // SAFETY: row i < rows of A.
                        let row = unsafe { a.add(i * lda + k0) };
                        let mut bits = 0u64;
                        for h in 0..depth.div_ceil(8) {
                            let lanes = (depth - 8 * h).min(8);
                            // SAFETY: entries k0 + 8 h .. + lanes of the row (masked).
                            let x = unsafe {
                                if lanes == 8 {
                                    _mm256_loadu_ps(row.add(8 * h))
                                } else {
                                    _mm256_maskload_ps(row.add(8 * h), first_lanes(lanes))
                                }
                            };
                            // Lanes past `lanes` loaded 0.0: their bits are clear.
                            let nonzero = _mm256_cmp_ps::<_CMP_NEQ_UQ>(x, zero);
                            let mask = _mm256_movemask_ps(nonzero) as u8 as usize;
                            // SAFETY: 8 lane numbers.
                            let order =
                                unsafe { _mm256_loadu_si256(PACK_LEFT[mask].as_ptr().cast()) };
                            // SAFETY: len counts the entries gathered so far, fewer
                            // than rows * k, and the buffer has 8 floats past that.
                            unsafe {
                                _mm256_storeu_ps(
                                    values.add(len),
                                    _mm256_permutevar8x32_ps(x, order),
                                )
                            };
                            len += mask.count_ones() as usize;
                            bits |= (mask as u64) << (8 * h);
                        }
                        gathered.bits.push(bits);
                    }
                }
            }
            gathered.values.truncate(len);
        }

        /// `super::super::gemm_block` for AVX2, `p` covering the caller's
        /// whole block, whose first row is row `first_row` of A: passes of 64
        /// columns.
        ///
        /// # Safety
        /// As `super::super::gemm_block`, with AVX2 and FMA present and
        /// `gathered` from all of A's rows.
        #[target_feature(enable = "avx2,fma")]
        pub(in crate::sparse::x86) unsafe fn gemm_block(
            p: &Pass,
            first_row: usize,
            gathered: &Gathered,
            partial: &mut Vec<f32>,
        ) {
            partial.clear();
            if p.k > PASS_DEPTH {
                partial.resize(ROW_CHUNK * 64, 0.0);
            }
            let mut j = 0;
            while j < p.width {
                let width = 64.min(p.width - j);
                // SAFETY: the caller's guarantees; NV vectors cover the pass's width.
                unsafe {
                    by_vectors!(
                        width,
                        8,
                        pass_nv,
                        (p, first_row, gathered, partial.as_mut_slice(), j, width)
                    )
                };
                j += width;
            }
        }

        /// Columns `j..j + width` of the block `p`.
        ///
        /// # Safety
        /// As `gemm_block`, with `8 * (NV - 1) < width <= 8 * NV`, `j` a
        /// multiple of 64, and `partial` holding `ROW_CHUNK * 64` floats when
        /// K spans more than one block.
        #[target_feature(enable = "avx2,fma")]
        unsafe fn pass_nv<const NV: usize>(
            (p, first_row, gathered, partial, j, width): (
                &Pass,
                usize,
                &Gathered,
                &mut [f32],
                usize,
                usize,
            ),
        ) {
            let zero = _mm256_setzero_ps();
            let mut base = [p.b; NV];
            let mut masks = [_mm256_setzero_si256(); NV];
            let mut bias_col = [zero; NV];
            // Masked stores are slow on some CPUs (microcoded on AMD's): whole
            // vectors use plain loads and stores.
            let full = width == 8 * NV;
            for v in 0..NV {
                let column = j + 8 * v;
                // SAFETY: column < p.width lies in sliver column / nr of the
                // padded packing, 8 floats within it (nr is a multiple of 8).
                base[v] = unsafe { p.b.add((column / p.nr) * p.k * p.nr + column % p.nr) };
                masks[v] = first_lanes(width.saturating_sub(8 * v).min(8));
                if !p.bias_col.is_null() {
                    // SAFETY: the bias covers the block's columns (masked).
                    bias_col[v] = unsafe { _mm256_maskload_ps(p.bias_col.add(column), masks[v]) };
                }
            }
            // SAFETY: column j of the block's C.
            let c = unsafe { p.c.add(j) };
            let blocks = gathered.blocks;
            let partial = partial.as_mut_ptr();
            for chunk_start in (0..p.rows).step_by(ROW_CHUNK) {
                let chunk_len = ROW_CHUNK.min(p.rows - chunk_start);
                // The chunk's place in the gather (first_row is a multiple of ROW_CHUNK).
                let chunk = (first_row + chunk_start) / ROW_CHUNK;
                for block in 0..blocks {
                    let (first, last) = (block == 0, block + 1 == blocks);
                    let mut rows_of_b = base;
                    for b in &mut rows_of_b {
                        // SAFETY: row block * PASS_DEPTH < k of the slivers.
                        *b = unsafe { b.add(block * PASS_DEPTH * p.nr) };
                    }
                    let bits_at = chunk * ROW_CHUNK * blocks + block * chunk_len;
                    let bits_of_rows = &gathered.bits[bits_at..bits_at + chunk_len];
                    // SAFETY: the first of the chunk's values in this block; the
                    // gather wrote one per set bit.
                    let mut value = unsafe {
                        gathered
                            .values
                            .as_ptr()
                            .add(gathered.starts[chunk * blocks + block])
                    };
                    for (r, &bits) in bits_of_rows.iter().enumerate() {
                        let i = chunk_start + r;
                        let mut bits = bits;
                        // SAFETY: the chunk's row has 64 partial sums (K spans blocks).
                        let sums = unsafe { partial.add(r * 64) };
                        let mut acc = [zero; NV];
                        if !first {
                            for (v, acc) in acc.iter_mut().enumerate() {
                                // SAFETY: as above.
                                *acc = unsafe { _mm256_loadu_ps(sums.add(8 * v)) };
                            }
                        }
                        while bits != 0 {
                            let t = bits.trailing_zeros() as usize;
                            bits &= bits - 1;
                            // SAFETY: one value per set bit, in the order gathered.
                            let av = unsafe { _mm256_broadcast_ss(&*value) };
                            // SAFETY: as above.
                            value = unsafe { value.add(1) };
                            for v in 0..NV {
                                // SAFETY: row block * PASS_DEPTH + t < k of the
                                // packed slivers, 8 floats within the sliver.
                                let bv = unsafe { _mm256_loadu_ps(rows_of_b[v].add(t * p.nr)) };
                                acc[v] = _mm256_fmadd_ps(av, bv, acc[v]);
                            }
                        }
                        if !last {
                            for (v, acc) in acc.iter().enumerate() {
                                // SAFETY: as above.
                                unsafe { _mm256_storeu_ps(sums.add(8 * v), *acc) };
                            }
                            continue;
                        }
                        // SAFETY: row i of the block's C.
                        let c_row = unsafe { c.add(i * p.ldc) };
                        for v in 0..NV {
                            // The dense AVX2 kernel's epilogue, operation for operation.
                            let mut out = acc[v];
                            if !p.bias_col.is_null() {
                                out = _mm256_add_ps(out, bias_col[v]);
                            }
                            if !p.bias_row.is_null() {
                                // SAFETY: the bias covers the block's rows.
                                let bias = unsafe { *p.bias_row.add(i) };
                                out = _mm256_add_ps(out, _mm256_set1_ps(bias));
                            }
                            if p.relu {
                                out = _mm256_max_ps(out, zero);
                            }
                            // SAFETY: columns < width of row i (masked).
                            unsafe {
                                if full {
                                    _mm256_storeu_ps(c_row.add(8 * v), out);
                                } else {
                                    _mm256_maskstore_ps(c_row.add(8 * v), masks[v], out);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
