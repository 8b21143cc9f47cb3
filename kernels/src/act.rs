//! Activation functions shared by every backend, so all of them compute the
//! same formula (GELU uses the tanh approximation everywhere).
//!
//! [`apply`] is the reference (the standard library's `tanh` and `exp`), used
//! by the naive backend. [`apply_slice`], which the compiled backends run over
//! whole rows, evaluates GELU, sigmoid and tanh with a polynomial `exp` and
//! Cephes' `tanhf` scheme, 16 lanes at a time with AVX-512, 8 with AVX2 + FMA,
//! and the same operations one element at a time elsewhere (bit for bit the
//! same result). Without a vector path on an AVX2 host the scalar `mul_add`s
//! were library calls (software `fmaf`): 35% of a transformer block's run.
//! In a transformer block the library calls took 41% of the run (`tanhf` and
//! `expm1f` per element of the FFN's GELU). Within 2e-7 of the reference
//! (tested over the whole useful range). GELU's `0.5 x (1 + tanh u)` is
//! evaluated as `x / (1 + e^(-2u))`, the same function with one exp and no
//! tanh: 1.48x faster over a BERT FFN's 393K outputs (0.61 -> 0.41 ns each,
//! medians, Xeon host 2), as close to the exact value (1.1e-7 against 1.0e-7).

#[cfg(target_arch = "x86_64")]
use crate::simd::SimdLevel;
use crate::spec::Activation;

const SQRT_2_OVER_PI: f32 = 0.797_884_6;

#[inline(always)]
pub fn apply(act: Activation, x: f32) -> f32 {
    match act {
        Activation::Relu => x.max(0.0),
        Activation::Gelu => 0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x)).tanh()),
        Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Activation::Tanh => x.tanh(),
    }
}

/// `dst[i] = act(src[i])` over the shorter of the two: one pass, where a
/// copy and then [`apply_slice`] took two (the copy was 4.6% of an int8
/// BERT-base encoder's run).
pub fn apply_into(act: Activation, src: &[f32], dst: &mut [f32]) {
    let n = src.len().min(dst.len());
    // SAFETY: one row of `n` floats, read from `src` and written to `dst`
    // (distinct: one is borrowed shared, the other exclusively).
    unsafe { map_rows(act, Block::row(src.as_ptr(), dst.as_mut_ptr(), n)) }
}

/// Apply `act` in place to every element.
pub fn apply_slice(act: Activation, xs: &mut [f32]) {
    if act == Activation::Relu {
        // The common case: a tight, vectorisable loop.
        xs.iter_mut().for_each(|x| *x = x.max(0.0));
        return;
    }
    // SAFETY: one row of `xs.len()` floats, all of them `xs`'s.
    unsafe { apply_rows(act, xs.as_mut_ptr(), xs.len(), 1, xs.len()) }
}

/// Apply `act` in place to a `rows x cols` block whose rows start `ld` floats
/// apart: a GEMM's finished register tile, in one call. Row by row through
/// [`apply_slice`] it was a call and a dispatch per 32 floats, and the GELU of a
/// transformer block's FFN cost more fused into the GEMM than as a pass of its
/// own (8% + 3.4% of the run against 5.3%, Xeon host).
///
/// # Safety
/// `p` must be valid for reads and writes of `cols` floats at each `r * ld`,
/// `r < rows`, none of them touched by anyone else meanwhile.
pub(crate) unsafe fn apply_rows(act: Activation, p: *mut f32, ld: usize, rows: usize, cols: usize) {
    let block = Block {
        src: p,
        dst: p,
        ld,
        rows,
        cols,
    };
    // SAFETY: the caller's guarantee, read and written in place.
    unsafe { map_rows(act, block) }
}

/// A `rows x cols` block read at `src` and written at `dst`, rows `ld`
/// floats apart in both.
#[derive(Debug, Clone, Copy)]
struct Block {
    src: *const f32,
    dst: *mut f32,
    ld: usize,
    rows: usize,
    cols: usize,
}

impl Block {
    /// Where each row starts, to read and to write (the pointers are only
    /// computed here; the callers' SAFETY covers reading through them).
    fn row_starts(self) -> impl Iterator<Item = (*const f32, *mut f32)> {
        (0..self.rows).map(move |r| {
            let at = r * self.ld;
            (self.src.wrapping_add(at), self.dst.wrapping_add(at))
        })
    }

    /// One row of `cols` floats.
    fn row(src: *const f32, dst: *mut f32, cols: usize) -> Block {
        Block {
            src,
            dst,
            ld: cols,
            rows: 1,
            cols,
        }
    }
}

/// `act` of a `rows x cols` block at `src` into the same block at `dst`
/// (rows `ld` floats apart in both): in place when they are the same.
///
/// # Safety
/// `src` valid for reads and `dst` for writes of `cols` floats at each
/// `r * ld`, `r < rows`; the two blocks the same or not overlapping; none
/// of it touched by anyone else meanwhile.
unsafe fn map_rows(act: Activation, block: Block) {
    #[cfg(target_arch = "x86_64")]
    match crate::simd::shared_helpers_level() {
        // SAFETY: the level is capped at what this CPU has (`simd::detect`);
        // the blocks are the caller's guarantee.
        SimdLevel::Avx512 => return unsafe { x86::map_rows_avx512(act, block) },
        // SAFETY: as above: AVX2 and FMA are there.
        SimdLevel::Avx2Fma => return unsafe { x86::map_rows_avx2(act, block) },
        SimdLevel::Portable => {}
    }
    // SAFETY: the caller's guarantee.
    unsafe { map_rows_portable(act, block) }
}

/// `map_rows` one element at a time.
///
/// # Safety
/// As `map_rows`.
unsafe fn map_rows_portable(act: Activation, block: Block) {
    let cols = block.cols;
    for (from, to) in block.row_starts() {
        // Slices, so that the loops vectorise: one when in place, else two
        // that do not overlap (the caller's guarantee).
        if std::ptr::eq(from, to) {
            // SAFETY: the row's `cols` floats are the caller's to change.
            let row = unsafe { std::slice::from_raw_parts_mut(to, cols) };
            row.iter_mut().for_each(|x| *x = fast(act, *x));
        } else {
            // SAFETY: as above; the rows do not overlap.
            let (from, to) = unsafe {
                (
                    std::slice::from_raw_parts(from, cols),
                    std::slice::from_raw_parts_mut(to, cols),
                )
            };
            to.iter_mut()
                .zip(from)
                .for_each(|(y, &x)| *y = fast(act, x));
        }
    }
}

/// `exp` in place over every element (the same polynomial as the activations).
pub(crate) fn exp_slice(xs: &mut [f32]) {
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    match crate::simd::shared_helpers_level() {
        // SAFETY: the level is capped at what this CPU has (`simd::detect`).
        SimdLevel::Avx512 => done = unsafe { x86::exp_avx512(xs) },
        // SAFETY: as above: AVX2 and FMA are there.
        SimdLevel::Avx2Fma => done = unsafe { x86::exp_avx2(xs) },
        SimdLevel::Portable => {}
    }
    xs[done..].iter_mut().for_each(|x| *x = exp_fast(*x));
}

pub fn name(act: Activation) -> &'static str {
    match act {
        Activation::Relu => "relu",
        Activation::Gelu => "gelu",
        Activation::Sigmoid => "sigmoid",
        Activation::Tanh => "tanh",
    }
}

// exp(x) = 2^n * e^r with n = round(x / ln 2), r = x - n ln 2 (|r| <= ln2 / 2),
// e^r by Cephes' expf polynomial; arguments clamped where f32 over/underflows.
const EXP_HI: f32 = 88.0;
const EXP_LO: f32 = -87.0;
const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
const EXP_P: [f32; 6] = [
    1.987_569_1e-4,
    1.398_2e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    0.166_666_65,
    0.5,
];
// tanh(x) = x + x^3 P(x^2) for |x| < 0.625 (Cephes tanhf), else 1 - 2 / (e^{2|x|} + 1).
const TANH_SMALL: f32 = 0.625;
const TANH_P: [f32; 5] = [
    -5.704_988_7e-3,
    2.063_909e-2,
    -5.373_971_6e-2,
    0.133_314_42,
    -0.333_332_8,
];

/// The scalar twin of the vector code: the same operations in the same order.
#[inline(always)]
fn fast(act: Activation, x: f32) -> f32 {
    match act {
        Activation::Relu => x.max(0.0),
        Activation::Gelu => {
            let x3 = x * x * x;
            let inner = SQRT_2_OVER_PI * (x + 0.044_715 * x3);
            // 0.5 x (1 + tanh u) = x / (1 + e^(-2u)): one exp and a division,
            // where tanh took an exp, a division, a polynomial and a blend.
            x / (1.0 + exp_fast(-2.0 * inner))
        }
        Activation::Sigmoid => 1.0 / (1.0 + exp_fast(-x)),
        Activation::Tanh => tanh_fast(x),
    }
}

#[inline(always)]
fn exp_fast(x: f32) -> f32 {
    let x = x.clamp(EXP_LO, EXP_HI);
    let n = (x * LOG2E).round_ties_even();
    let r = n.mul_add(-LN2_LO, n.mul_add(-LN2_HI, x));
    let mut p = EXP_P[0];
    for c in &EXP_P[1..] {
        p = p.mul_add(r, *c);
    }
    let er = (p * r).mul_add(r, r) + 1.0;
    // 2^n for n in [-126, 127] (the clamp keeps it there).
    er * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

#[inline(always)]
fn tanh_fast(x: f32) -> f32 {
    let a = x.abs();
    let big = 1.0 - 2.0 / (exp_fast(2.0 * a) + 1.0);
    let z = x * x;
    let mut p = TANH_P[0];
    for c in &TANH_P[1..] {
        p = p.mul_add(z, *c);
    }
    let small = (p * z).mul_add(x, x);
    if a < TANH_SMALL {
        small
    } else {
        big.copysign(x)
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::*;
    use std::arch::x86_64::*;

    // Activations as const parameters, so each row loop is compiled for one.
    const RELU: u8 = 0;
    const GELU: u8 = 1;
    const SIGMOID: u8 = 2;
    const TANH: u8 = 3;

    /// `$rows::<CODE>(args)` for the activation's code.
    macro_rules! by_activation {
        ($act:expr, $rows:ident($($arg:expr),*)) => {
            match $act {
                Activation::Relu => $rows::<RELU>($($arg),*),
                Activation::Gelu => $rows::<GELU>($($arg),*),
                Activation::Sigmoid => $rows::<SIGMOID>($($arg),*),
                Activation::Tanh => $rows::<TANH>($($arg),*),
            }
        };
    }

    /// `map_rows` with 16 lanes, the tail of each row masked.
    ///
    /// # Safety
    /// AVX-512F available; the blocks as `map_rows`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn map_rows_avx512(act: Activation, block: Block) {
        // SAFETY: the caller's guarantees.
        unsafe { by_activation!(act, rows16(block)) }
    }

    /// # Safety
    /// As `map_rows_avx512`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn rows16<const ACT: u8>(block: Block) {
        let cols = block.cols;
        let whole = cols / 16 * 16;
        let tail = ((1u32 << (cols - whole)) - 1) as __mmask16;
        for (from, to) in block.row_starts() {
            // SAFETY: each row holds `cols` floats (the caller's guarantee); the tail's
            // loads and stores are masked to its `cols - whole` floats.
            unsafe {
                let mut j = 0;
                while j < whole {
                    let x = _mm512_loadu_ps(from.add(j));
                    _mm512_storeu_ps(to.add(j), act16::<ACT>(x));
                    j += 16;
                }
                if tail != 0 {
                    let x = _mm512_maskz_loadu_ps(tail, from.add(whole));
                    _mm512_mask_storeu_ps(to.add(whole), tail, act16::<ACT>(x));
                }
            }
        }
    }

    /// `fast` on 16 lanes.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn act16<const ACT: u8>(x: __m512) -> __m512 {
        match ACT {
            RELU => _mm512_max_ps(x, _mm512_setzero_ps()),
            GELU => {
                let x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
                let inner = _mm512_mul_ps(
                    _mm512_set1_ps(SQRT_2_OVER_PI),
                    _mm512_add_ps(x, _mm512_mul_ps(_mm512_set1_ps(0.044_715), x3)),
                );
                let e = exp16(_mm512_mul_ps(_mm512_set1_ps(-2.0), inner));
                _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0), e))
            }
            SIGMOID => {
                let neg = _mm512_sub_ps(_mm512_setzero_ps(), x);
                let d = _mm512_add_ps(_mm512_set1_ps(1.0), exp16(neg));
                _mm512_div_ps(_mm512_set1_ps(1.0), d)
            }
            _ => tanh16(x),
        }
    }

    /// `exp_fast` over the whole 16-float chunks of `xs`; returns how many were done.
    ///
    /// # Safety
    /// AVX-512F available.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn exp_avx512(xs: &mut [f32]) -> usize {
        let whole = xs.len() / 16 * 16;
        for chunk in xs[..whole].chunks_exact_mut(16) {
            // SAFETY: the chunk holds 16 floats.
            unsafe {
                let y = exp16(_mm512_loadu_ps(chunk.as_ptr()));
                _mm512_storeu_ps(chunk.as_mut_ptr(), y);
            }
        }
        whole
    }

    /// `exp_fast` on 16 lanes.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn exp16(x: __m512) -> __m512 {
        // The bound comes first: max/min return their second operand when
        // either is NaN, so a NaN lane stays NaN (as `f32::clamp` keeps it)
        // instead of becoming exp(EXP_LO).
        let x = _mm512_min_ps(
            _mm512_set1_ps(EXP_HI),
            _mm512_max_ps(_mm512_set1_ps(EXP_LO), x),
        );
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm512_mul_ps(x, _mm512_set1_ps(LOG2E)),
        );
        let r = _mm512_fmadd_ps(n, _mm512_set1_ps(-LN2_HI), x);
        let r = _mm512_fmadd_ps(n, _mm512_set1_ps(-LN2_LO), r);
        let mut p = _mm512_set1_ps(EXP_P[0]);
        for c in &EXP_P[1..] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(*c));
        }
        let er = _mm512_add_ps(
            _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r),
            _mm512_set1_ps(1.0),
        );
        let bits = _mm512_slli_epi32::<23>(_mm512_add_epi32(
            _mm512_cvtps_epi32(n),
            _mm512_set1_epi32(127),
        ));
        _mm512_mul_ps(er, _mm512_castsi512_ps(bits))
    }

    /// `tanh_fast` on 16 lanes.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn tanh16(x: __m512) -> __m512 {
        let sign = _mm512_set1_epi32(i32::MIN);
        let xi = _mm512_castps_si512(x);
        let a = _mm512_castsi512_ps(_mm512_andnot_si512(sign, xi));
        let e = exp16(_mm512_mul_ps(_mm512_set1_ps(2.0), a));
        let big = _mm512_sub_ps(
            _mm512_set1_ps(1.0),
            _mm512_div_ps(_mm512_set1_ps(2.0), _mm512_add_ps(e, _mm512_set1_ps(1.0))),
        );
        // copysign(big, x): big >= 0, so OR in x's sign bit.
        let big = _mm512_castsi512_ps(_mm512_or_si512(
            _mm512_castps_si512(big),
            _mm512_and_si512(sign, xi),
        ));
        let z = _mm512_mul_ps(x, x);
        let mut p = _mm512_set1_ps(TANH_P[0]);
        for c in &TANH_P[1..] {
            p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(*c));
        }
        let small = _mm512_fmadd_ps(_mm512_mul_ps(p, z), x, x);
        let is_small = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, _mm512_set1_ps(TANH_SMALL));
        _mm512_mask_blend_ps(is_small, big, small)
    }

    /// Whether the AVX2 + FMA path can run.
    #[cfg(test)]
    pub(super) fn has_avx2_fma() -> bool {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }

    /// `map_rows` with 8 lanes, the tail of each row masked.
    ///
    /// # Safety
    /// AVX2 and FMA available; the blocks as `map_rows`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn map_rows_avx2(act: Activation, block: Block) {
        // SAFETY: the caller's guarantees.
        unsafe { by_activation!(act, rows8(block)) }
    }

    /// # Safety
    /// As `map_rows_avx2`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn rows8<const ACT: u8>(block: Block) {
        let cols = block.cols;
        let whole = cols / 8 * 8;
        // All bits set in the lanes below the tail's length.
        let tail = _mm256_cmpgt_epi32(
            _mm256_set1_epi32((cols - whole) as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        );
        for (from, to) in block.row_starts() {
            // SAFETY: each row holds `cols` floats (the caller's guarantee); the tail's
            // loads and stores are masked to its `cols - whole` floats.
            unsafe {
                let mut j = 0;
                while j < whole {
                    let x = _mm256_loadu_ps(from.add(j));
                    _mm256_storeu_ps(to.add(j), act8::<ACT>(x));
                    j += 8;
                }
                if whole < cols {
                    let x = _mm256_maskload_ps(from.add(whole), tail);
                    _mm256_maskstore_ps(to.add(whole), tail, act8::<ACT>(x));
                }
            }
        }
    }

    /// `fast` on 8 lanes.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn act8<const ACT: u8>(x: __m256) -> __m256 {
        match ACT {
            RELU => _mm256_max_ps(x, _mm256_setzero_ps()),
            GELU => {
                let x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
                let inner = _mm256_mul_ps(
                    _mm256_set1_ps(SQRT_2_OVER_PI),
                    _mm256_add_ps(x, _mm256_mul_ps(_mm256_set1_ps(0.044_715), x3)),
                );
                let e = exp8(_mm256_mul_ps(_mm256_set1_ps(-2.0), inner));
                _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0), e))
            }
            SIGMOID => {
                // -x exactly: flip the sign bit.
                let neg = _mm256_xor_ps(x, _mm256_set1_ps(-0.0));
                let d = _mm256_add_ps(_mm256_set1_ps(1.0), exp8(neg));
                _mm256_div_ps(_mm256_set1_ps(1.0), d)
            }
            _ => tanh8(x),
        }
    }

    /// `exp_fast` over `xs`, 8 lanes at a time and the tail; returns `xs.len()`.
    ///
    /// # Safety
    /// AVX2 and FMA available.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp_avx2(xs: &mut [f32]) -> usize {
        let whole = xs.len() / 8 * 8;
        for chunk in xs[..whole].chunks_exact_mut(8) {
            // SAFETY: the chunk holds 8 floats.
            unsafe {
                let y = exp8(_mm256_loadu_ps(chunk.as_ptr()));
                _mm256_storeu_ps(chunk.as_mut_ptr(), y);
            }
        }
        xs[whole..].iter_mut().for_each(|x| *x = exp_fast(*x));
        xs.len()
    }

    /// `exp_fast` on 8 lanes (as `exp16`).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn exp8(x: __m256) -> __m256 {
        // The bound first, so a NaN lane stays NaN (see `exp16`).
        let x = _mm256_min_ps(
            _mm256_set1_ps(EXP_HI),
            _mm256_max_ps(_mm256_set1_ps(EXP_LO), x),
        );
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_ps(x, _mm256_set1_ps(LOG2E)),
        );
        let r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_HI), x);
        let r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_LO), r);
        let mut p = _mm256_set1_ps(EXP_P[0]);
        for c in &EXP_P[1..] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(*c));
        }
        let er = _mm256_add_ps(
            _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r),
            _mm256_set1_ps(1.0),
        );
        let bits = _mm256_slli_epi32::<23>(_mm256_add_epi32(
            _mm256_cvtps_epi32(n),
            _mm256_set1_epi32(127),
        ));
        _mm256_mul_ps(er, _mm256_castsi256_ps(bits))
    }

    /// `tanh_fast` on 8 lanes (as `tanh16`).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn tanh8(x: __m256) -> __m256 {
        let sign = _mm256_set1_ps(-0.0);
        let a = _mm256_andnot_ps(sign, x);
        let e = exp8(_mm256_mul_ps(_mm256_set1_ps(2.0), a));
        let big = _mm256_sub_ps(
            _mm256_set1_ps(1.0),
            _mm256_div_ps(_mm256_set1_ps(2.0), _mm256_add_ps(e, _mm256_set1_ps(1.0))),
        );
        // copysign(big, x): big >= 0, so OR in x's sign bit.
        let big = _mm256_or_ps(big, _mm256_and_ps(sign, x));
        let z = _mm256_mul_ps(x, x);
        let mut p = _mm256_set1_ps(TANH_P[0]);
        for c in &TANH_P[1..] {
            p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(*c));
        }
        let small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
        // a < 0.625, false for NaN (which then takes `big`, NaN too).
        let is_small = _mm256_cmp_ps::<_CMP_LT_OQ>(a, _mm256_set1_ps(TANH_SMALL));
        _mm256_blendv_ps(big, small, is_small)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Activation; 4] = [
        Activation::Relu,
        Activation::Gelu,
        Activation::Sigmoid,
        Activation::Tanh,
    ];

    /// NaN stays NaN through every activation but ReLU (as the scalar code
    /// and the reference give it) on whichever path this CPU runs, whole
    /// vectors included: the AVX-512 exp had clamped a NaN lane to exp(-87.3),
    /// making sigmoid(NaN) 1 and tanh(NaN) -1.
    #[test]
    fn nan_stays_nan() {
        for act in [Activation::Gelu, Activation::Sigmoid, Activation::Tanh] {
            let mut xs = vec![f32::NAN; 37];
            xs[5] = 0.5;
            apply_slice(act, &mut xs);
            for (i, x) in xs.iter().enumerate() {
                assert_eq!(x.is_nan(), i != 5, "{} lane {i}: {x}", name(act));
            }
        }
        let mut xs = vec![f32::NAN; 37];
        exp_slice(&mut xs);
        assert!(xs.iter().all(|x| x.is_nan()), "{xs:?}");
    }

    fn samples() -> Vec<f32> {
        let mut xs: Vec<f32> = (-20_000..=20_000).map(|i| i as f32 * 1e-3).collect();
        xs.extend([
            0.0, -0.0, 1e-30, -1e-30, 0.624_999, 0.625, 50.0, -50.0, 100.0, -100.0,
        ]);
        xs
    }

    #[test]
    fn fast_activations_stay_within_2e7_of_the_reference() {
        for act in ALL {
            let mut worst = 0.0f32;
            for x in samples() {
                let (got, want) = (fast(act, x), apply(act, x));
                // Absolute error, relative for GELU's large outputs (it grows like x).
                let err = (got - want).abs() / want.abs().max(1.0);
                worst = worst.max(err);
            }
            assert!(worst <= 2e-7, "{act:?}: worst error {worst:e}");
        }
        assert!(exp_fast(0.0) == 1.0 && (exp_fast(1.0) - std::f32::consts::E).abs() < 3e-7);
        for x in samples().into_iter().filter(|x| x.abs() <= 20.0) {
            let rel = (exp_fast(x) - x.exp()).abs() / x.exp();
            assert!(rel <= 2e-7, "exp({x}): relative error {rel:e}");
        }
        let xs: Vec<f32> = samples().into_iter().step_by(53).collect();
        let mut got = xs.clone();
        exp_slice(&mut got);
        for (x, g) in xs.iter().zip(&got) {
            assert_eq!(g.to_bits(), exp_fast(*x).to_bits(), "exp_slice at {x}");
        }
    }

    #[test]
    fn every_lane_and_the_tail_give_the_scalar_result_bit_for_bit() {
        // 16-lane chunks plus a tail of 7: vector and scalar code are exercised on
        // whichever path this CPU takes (AVX-512, or AVX2 + FMA).
        let xs: Vec<f32> = samples()
            .into_iter()
            .step_by(97)
            .take(16 * 40 + 7)
            .collect();
        for act in ALL {
            let mut got = xs.clone();
            apply_slice(act, &mut got);
            for (x, g) in xs.iter().zip(&got) {
                assert_eq!(g.to_bits(), fast(act, *x).to_bits(), "{act:?} at {x}");
            }
        }
    }

    /// The AVX2 path on its own, whatever this CPU would pick (an AVX-512 host
    /// takes the 16-lane path in `apply_slice`): every lane and the tail give
    /// the scalar bits, NaN stays NaN.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_path_gives_the_scalar_result_bit_for_bit() {
        if !x86::has_avx2_fma() {
            return;
        }
        let mut xs: Vec<f32> = samples().into_iter().step_by(89).take(8 * 50 + 5).collect();
        xs[3] = f32::NAN;
        for act in ALL {
            let mut got = xs.clone();
            let n = got.len();
            // SAFETY: AVX2 and FMA are available (checked above); one row of `got`.
            unsafe { x86::map_rows_avx2(act, Block::row(got.as_ptr(), got.as_mut_ptr(), n)) };
            for (x, g) in xs.iter().zip(&got) {
                let want = fast(act, *x);
                assert!(
                    g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan()),
                    "{act:?} at {x}: {g} vs {want}"
                );
            }
        }
        let mut got = xs.clone();
        // SAFETY: as above.
        assert_eq!(unsafe { x86::exp_avx2(&mut got) }, xs.len());
        for (x, g) in xs.iter().zip(&got) {
            let want = exp_fast(*x);
            assert!(
                g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan()),
                "exp at {x}"
            );
        }
    }

    type MapPath = unsafe fn(Activation, Block);

    /// Every copy of `map_rows` this CPU can run, by name.
    fn map_paths() -> Vec<(&'static str, MapPath)> {
        let mut paths: Vec<(&'static str, MapPath)> = vec![("portable", map_rows_portable)];
        #[cfg(target_arch = "x86_64")]
        {
            if x86::has_avx2_fma() {
                paths.push(("avx2", x86::map_rows_avx2));
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                paths.push(("avx512", x86::map_rows_avx512));
            }
        }
        paths
    }

    /// From one buffer into another, on every path: each element of the
    /// destination's block gets the scalar bits of the source's, the source
    /// is left as it was, and nothing outside the block is written.
    #[test]
    fn mapping_into_another_buffer_reads_the_source_and_writes_only_the_block() {
        let (height, ld) = (9, 41);
        let source: Vec<f32> = samples()
            .into_iter()
            .step_by(11)
            .take(height * ld)
            .collect();
        for (path, map) in map_paths() {
            for act in ALL {
                for (rows, cols) in [(9, 41), (3, 16), (2, 17), (1, 7), (0, 5)] {
                    let src = source.clone();
                    let mut dst = vec![f32::NAN; height * ld];
                    // SAFETY: the block lies in both buffers (rows <= 9, cols <= 41);
                    // `map_paths` holds only what this CPU runs.
                    unsafe {
                        let (src, dst) = (src.as_ptr(), dst.as_mut_ptr());
                        map(
                            act,
                            Block {
                                src,
                                dst,
                                ld,
                                rows,
                                cols,
                            },
                        )
                    };
                    assert!(src
                        .iter()
                        .zip(&source)
                        .all(|(a, b)| a.to_bits() == b.to_bits()));
                    for (i, (&x, &y)) in source.iter().zip(&dst).enumerate() {
                        let (r, c) = (i / ld, i % ld);
                        if r < rows && c < cols {
                            let want = fast(act, x);
                            assert_eq!(y.to_bits(), want.to_bits(), "{path} {act:?} ({r}, {c})");
                        } else {
                            assert!(
                                y.is_nan(),
                                "{path} {act:?} wrote ({r}, {c}) outside the block"
                            );
                        }
                    }
                }
            }
        }
    }

    /// `apply_into` gives what a copy and `apply_slice` give, bit for bit,
    /// over the shorter of its two slices.
    #[test]
    fn apply_into_matches_a_copy_then_apply_slice() {
        let xs: Vec<f32> = samples().into_iter().step_by(13).take(1000).collect();
        for act in ALL {
            let mut want = xs.clone();
            apply_slice(act, &mut want);
            let mut got = vec![f32::NAN; xs.len() + 3];
            apply_into(act, &xs, &mut got);
            assert!(
                want.iter()
                    .zip(&got)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{act:?}"
            );
            assert!(
                got[xs.len()..].iter().all(|v| v.is_nan()),
                "{act:?}: wrote past the source's length"
            );
            let mut short = vec![0.0f32; 10];
            apply_into(act, &xs, &mut short);
            assert!(want[..10]
                .iter()
                .zip(&short)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }

    /// A block of rows inside a wider matrix (a GEMM's register tile): on every
    /// path this CPU has, every element of the block gets the scalar bits, at
    /// widths with and without a tail, and nothing outside it changes.
    #[test]
    fn a_block_of_rows_changes_exactly_its_elements_on_every_path() {
        let paths = map_paths();
        let (height, ld) = (13, 53);
        let matrix: Vec<f32> = samples().into_iter().step_by(7).take(height * ld).collect();
        for (path, apply) in paths {
            for act in ALL {
                for (row0, col0, rows, cols) in [
                    (0, 0, 13, 53),
                    (1, 3, 12, 32),
                    (5, 1, 7, 17),
                    (1, 40, 3, 7),
                    (4, 4, 0, 9),
                    (4, 4, 2, 0),
                ] {
                    assert!(
                        row0 + rows <= height && col0 + cols <= ld,
                        "block outside the matrix"
                    );
                    let mut got = matrix.clone();
                    // SAFETY: the block lies inside `got` (asserted just above);
                    // `paths` holds only what this CPU runs.
                    unsafe {
                        let at = got.as_mut_ptr().add(row0 * ld + col0);
                        apply(
                            act,
                            Block {
                                src: at,
                                dst: at,
                                ld,
                                rows,
                                cols,
                            },
                        )
                    };
                    for (i, (&x, &g)) in matrix.iter().zip(&got).enumerate() {
                        let (r, c) = (i / ld, i % ld);
                        let inside =
                            (row0..row0 + rows).contains(&r) && (col0..col0 + cols).contains(&c);
                        let want = if inside { fast(act, x) } else { x };
                        assert_eq!(
                            g.to_bits(),
                            want.to_bits(),
                            "{path} {act:?} block {row0},{col0} {rows}x{cols} at ({r}, {c})"
                        );
                    }
                }
            }
        }
    }
}
