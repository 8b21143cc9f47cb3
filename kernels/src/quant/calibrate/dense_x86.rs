//! The AVX-512 and AVX2 copies of [`super::dense_f32`], register-blocked.
//!
//! Each output keeps the reference's order (the bias, then `+= x[p] * w[p]`
//! for p = 0..k, a rounded multiply then a rounded add), so it is bit for bit
//! the reference's sum: only where the partial sums live changes. The
//! portable loop keeps a block of outputs in memory and loads, adds and
//! stores them once per weight row (bound on the cache: about a quarter of
//! the multiply-add rate); here a tile of [`ROWS`] rows x one strip of
//! columns stays in registers for the whole of k, and, with enough rows to
//! repay it, the strip's weights are first packed into a contiguous buffer
//! every row tile streams.

use std::arch::x86_64::*;

use super::DenseLayer;

/// Rows per register tile.
const ROWS: usize = 4;
/// Up to this many rows the weights are read in place, not packed.
const PACK_ABOVE_ROWS: usize = 2 * ROWS;

/// # Safety
/// The CPU supports avx512f.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn dense_avx512(layer: DenseLayer<'_>, x: &[f32], rows: usize, out: &mut [f32]) {
    // 4 x 4 accumulators of 16 lanes: 64 columns a strip.
    dense::<Avx512, 4>(layer, x, rows, out);
}

/// # Safety
/// The CPU supports avx2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn dense_avx2(layer: DenseLayer<'_>, x: &[f32], rows: usize, out: &mut [f32]) {
    // 4 x 2 accumulators of 8 lanes (16 columns a strip): with the weights,
    // a broadcast and a product, within AVX2's 16 registers.
    dense::<Avx2, 2>(layer, x, rows, out);
}

/// One vector width's loads, stores and arithmetic.
trait Lanes {
    type V: Copy;
    type Mask: Copy;
    const LANES: usize;
    /// The first `lanes` (<= LANES) lanes.
    unsafe fn mask(lanes: usize) -> Self::Mask;
    unsafe fn zero() -> Self::V;
    unsafe fn splat(a: f32) -> Self::V;
    /// The masked lanes from `p` (only they are read), zero elsewhere.
    unsafe fn load(mask: Self::Mask, p: *const f32) -> Self::V;
    /// The masked lanes to `p` (only they are written).
    unsafe fn store(p: *mut f32, mask: Self::Mask, v: Self::V);
    /// `sum + a * w`, rounded after the multiply and after the add.
    unsafe fn mul_then_add(sum: Self::V, a: Self::V, w: Self::V) -> Self::V;
}

struct Avx512;

impl Lanes for Avx512 {
    type V = __m512;
    type Mask = __mmask16;
    const LANES: usize = 16;
    #[inline(always)]
    unsafe fn mask(lanes: usize) -> __mmask16 {
        ((1u32 << lanes.min(16)) - 1) as __mmask16
    }
    #[inline(always)]
    unsafe fn zero() -> __m512 {
        _mm512_setzero_ps()
    }
    #[inline(always)]
    unsafe fn splat(a: f32) -> __m512 {
        _mm512_set1_ps(a)
    }
    #[inline(always)]
    unsafe fn load(mask: __mmask16, p: *const f32) -> __m512 {
        _mm512_maskz_loadu_ps(mask, p)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, mask: __mmask16, v: __m512) {
        _mm512_mask_storeu_ps(p, mask, v)
    }
    #[inline(always)]
    unsafe fn mul_then_add(sum: __m512, a: __m512, w: __m512) -> __m512 {
        _mm512_add_ps(sum, _mm512_mul_ps(a, w))
    }
}

struct Avx2;

impl Lanes for Avx2 {
    type V = __m256;
    type Mask = __m256i;
    const LANES: usize = 8;
    #[inline(always)]
    unsafe fn mask(lanes: usize) -> __m256i {
        let index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes.min(8) as i32), index)
    }
    #[inline(always)]
    unsafe fn zero() -> __m256 {
        _mm256_setzero_ps()
    }
    #[inline(always)]
    unsafe fn splat(a: f32) -> __m256 {
        _mm256_set1_ps(a)
    }
    #[inline(always)]
    unsafe fn load(mask: __m256i, p: *const f32) -> __m256 {
        _mm256_maskload_ps(p, mask)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, mask: __m256i, v: __m256) {
        _mm256_maskstore_ps(p, mask, v)
    }
    #[inline(always)]
    unsafe fn mul_then_add(sum: __m256, a: __m256, w: __m256) -> __m256 {
        _mm256_add_ps(sum, _mm256_mul_ps(a, w))
    }
}

/// The kernel for vectors `L`, `V` of them across a strip of columns.
///
/// # Safety
/// The CPU supports what `L`'s intrinsics need.
#[inline(always)]
unsafe fn dense<L: Lanes, const V: usize>(
    layer: DenseLayer<'_>,
    x: &[f32],
    rows: usize,
    out: &mut [f32],
) {
    let DenseLayer { k, n, w, bias } = layer;
    if n == 0 || rows == 0 {
        return;
    }
    assert!(
        x.len() >= rows * k,
        "dense_f32: x holds {} < {rows} x {k}",
        x.len()
    );
    assert!(
        w.len() >= k * n,
        "dense_f32: w holds {} < {k} x {n}",
        w.len()
    );
    assert!(
        out.len() >= rows * n,
        "dense_f32: out holds {} < {rows} x {n}",
        out.len()
    );
    if let Some(b) = bias {
        assert!(b.len() >= n, "dense_f32: bias holds {} < {n}", b.len());
    }
    let strip_width = L::LANES * V;
    // Read in place, a strip's weight rows lie n floats apart (a page apart
    // when n is wide); packed, they are one stream.
    let packed = rows > PACK_ABOVE_ROWS;
    let mut strip = if packed {
        vec![0.0f32; k * strip_width]
    } else {
        Vec::new()
    };
    for c0 in (0..n).step_by(strip_width) {
        let width = strip_width.min(n - c0);
        // SAFETY (for the blocks below): the masks cover columns c0..c0 +
        // width of w's rows, of the bias (n - c0 >= width floats from c0) and
        // of out's rows; a packed strip holds k rows of strip_width floats.
        let masks: [L::Mask; V] =
            std::array::from_fn(|v| unsafe { L::mask(width.saturating_sub(L::LANES * v)) });
        let (weights, ldw) = if packed {
            for (p, row) in strip.chunks_exact_mut(strip_width).enumerate() {
                for (v, &mask) in masks.iter().enumerate() {
                    let src = w.as_ptr().add(p * n + c0 + L::LANES * v);
                    let vals = L::load(mask, src);
                    L::store(row.as_mut_ptr().add(L::LANES * v), L::mask(L::LANES), vals);
                }
            }
            (strip.as_ptr(), strip_width)
        } else {
            (w.as_ptr().add(c0), n)
        };
        let tile = Tile::<L, V> {
            k,
            weights,
            ldw,
            bias: bias.map(|b| b[c0..].as_ptr()),
            masks,
        };
        let mut r0 = 0;
        while r0 < rows {
            let left = rows - r0;
            let o = out.as_mut_ptr().add(r0 * n + c0);
            let xr = x.as_ptr().add(r0 * k);
            match left {
                1 => tile.run::<1>(xr, o, n),
                2 => tile.run::<2>(xr, o, n),
                3 => tile.run::<3>(xr, o, n),
                _ => tile.run::<ROWS>(xr, o, n),
            }
            r0 += left.min(ROWS);
        }
    }
}

/// What every row tile of one strip shares.
struct Tile<L: Lanes, const V: usize> {
    k: usize,
    /// Row p of the strip's weights is at `weights + p * ldw`.
    weights: *const f32,
    ldw: usize,
    bias: Option<*const f32>,
    masks: [L::Mask; V],
}

impl<L: Lanes, const V: usize> Tile<L, V> {
    /// `R` rows of the output's strip from `R` rows of x at `xr`, into `out`
    /// (row stride `ldo`).
    ///
    /// # Safety
    /// The CPU supports `L`; `xr` has R rows of k floats, `out` R rows of the
    /// strip's masked columns at stride `ldo`, the weights k rows of them.
    #[inline(always)]
    unsafe fn run<const R: usize>(&self, xr: *const f32, out: *mut f32, ldo: usize) {
        let start: [L::V; V] = std::array::from_fn(|v| match self.bias {
            // SAFETY: the masked lanes are within the bias.
            Some(b) => unsafe { L::load(self.masks[v], b.add(L::LANES * v)) },
            // SAFETY: the caller's CPU supports L.
            None => unsafe { L::zero() },
        });
        let mut acc = [start; R];
        let mut w_row = self.weights;
        for p in 0..self.k {
            // SAFETY: the masked lanes of row p of the strip are at w_row.
            let wv: [L::V; V] =
                std::array::from_fn(|v| unsafe { L::load(self.masks[v], w_row.add(L::LANES * v)) });
            for (r, acc_row) in acc.iter_mut().enumerate() {
                let a = L::splat(*xr.add(r * self.k + p));
                for (sum, &wp) in acc_row.iter_mut().zip(&wv) {
                    *sum = L::mul_then_add(*sum, a, wp);
                }
            }
            w_row = w_row.add(self.ldw);
        }
        for (r, acc_row) in acc.iter().enumerate() {
            for (v, &sum) in acc_row.iter().enumerate() {
                L::store(out.add(r * ldo + L::LANES * v), self.masks[v], sum);
            }
        }
    }
}
