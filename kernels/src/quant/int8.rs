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
//! B is given k x n row-major s8 and packed once per path.

use super::calibrate::ActivationQuant;
use super::QuantError;

/// Largest k for which `k * 255 * 127` fits in an i32 accumulator.
pub const MAX_K: usize = (i32::MAX as usize) / (255 * 127);

const VNNI_NR: usize = 32;
const VNNI_MR: usize = 8;
const VNNI_KC: usize = 256;
const AVX2_NR: usize = 16;
const AVX2_MR: usize = 4;

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
    /// [panel of 32 cols][k/4][32 cols][4 k] s8.
    Vnni(Vec<i8>),
    /// [panel of 16 cols][k/2][16 cols][2 k] widened to i16.
    Avx2(Vec<i16>),
    /// k_padded x n row-major s8.
    Portable(Vec<i8>),
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
        let kp = k_padded(k);
        let at = |kk: usize, j: usize| -> i8 {
            if kk < k && j < n {
                b[kk * ldb + j]
            } else {
                0
            }
        };
        let mut col_sums = vec![0i32; n];
        for kk in 0..k {
            for (j, s) in col_sums.iter_mut().enumerate() {
                *s += i32::from(b[kk * ldb + j]);
            }
        }
        let data = match path {
            Int8Path::Vnni512 => {
                let panels = n.div_ceil(VNNI_NR);
                let mut d = Vec::with_capacity(panels * kp * VNNI_NR);
                for p in 0..panels {
                    for k4 in (0..kp).step_by(4) {
                        for c in 0..VNNI_NR {
                            for t in 0..4 {
                                d.push(at(k4 + t, p * VNNI_NR + c));
                            }
                        }
                    }
                }
                PackedData::Vnni(d)
            }
            Int8Path::Avx2 => {
                let panels = n.div_ceil(AVX2_NR);
                let mut d = Vec::with_capacity(panels * kp * AVX2_NR);
                for p in 0..panels {
                    for k2 in (0..kp).step_by(2) {
                        for c in 0..AVX2_NR {
                            for t in 0..2 {
                                d.push(i16::from(at(k2 + t, p * AVX2_NR + c)));
                            }
                        }
                    }
                }
                PackedData::Avx2(d)
            }
            Int8Path::Portable => {
                let mut d = vec![0i8; kp * n];
                for kk in 0..k {
                    d[kk * n..(kk + 1) * n].copy_from_slice(&b[kk * ldb..kk * ldb + n]);
                }
                PackedData::Portable(d)
            }
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
    /// Bytes of packed weight storage.
    pub fn bytes(&self) -> usize {
        match &self.data {
            PackedData::Vnni(d) | PackedData::Portable(d) => d.len(),
            PackedData::Avx2(d) => d.len() * 2,
        }
    }
}

fn check_a(a: &[u8], lda: usize, m: usize, kp: usize) -> Result<(), QuantError> {
    if lda < kp {
        return Err(QuantError::BadStride {
            name: "lda",
            value: lda,
            min: kp,
        });
    }
    let needed = if m == 0 { 0 } else { (m - 1) * lda + kp };
    if a.len() < needed {
        return Err(QuantError::BufferTooSmall {
            name: "a",
            needed,
            actual: a.len(),
        });
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
    let (k, n) = (packed.k, packed.n);
    let kp = k_padded(k);
    check_a(a, lda, m, kp)?;
    if ldc < n {
        return Err(QuantError::BadStride {
            name: "ldc",
            value: ldc,
            min: n,
        });
    }
    let needed_c = if m == 0 { 0 } else { (m - 1) * ldc + n };
    if c.len() < needed_c {
        return Err(QuantError::BufferTooSmall {
            name: "c",
            needed: needed_c,
            actual: c.len(),
        });
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    match &packed.data {
        PackedData::Portable(b) => portable_gemm(a, lda, m, kp, n, b, c, ldc),
        #[cfg(target_arch = "x86_64")]
        PackedData::Vnni(b) => {
            // SAFETY: the path was checked supported at packing time (the CPU
            // has avx512f/bw/vnni); A holds m rows readable to kp (check_a), B
            // holds ceil(n/32) full panels of kp*32 bytes, C holds m rows of n
            // (tail columns are stored with a mask).
            unsafe { x86::vnni_gemm(a.as_ptr(), lda, m, kp, n, b.as_ptr(), c.as_mut_ptr(), ldc) }
        }
        #[cfg(target_arch = "x86_64")]
        PackedData::Avx2(b) => {
            // SAFETY: avx2 checked at packing time; bounds as for the VNNI path,
            // with 16-column panels of i16 pairs; tail columns go through a
            // stack buffer.
            unsafe { x86::avx2_gemm(a.as_ptr(), lda, m, kp, n, b.as_ptr(), c.as_mut_ptr(), ldc) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        _ => return Err(QuantError::UnsupportedPath(packed.path.name())),
    }
    // Zero-point compensation, exact in i32 (wrapping cannot occur for k <= MAX_K).
    let za = i32::from(a_zero_point);
    if za != 0 {
        for row in c.chunks_mut(ldc).take(m) {
            for (x, &s) in row[..n].iter_mut().zip(&packed.col_sums) {
                *x -= za * s;
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn portable_gemm(
    a: &[u8],
    lda: usize,
    m: usize,
    kp: usize,
    n: usize,
    b: &[i8],
    c: &mut [i32],
    ldc: usize,
) {
    for i in 0..m {
        let row = &mut c[i * ldc..i * ldc + n];
        row.fill(0);
        let arow = &a[i * lda..i * lda + kp];
        for (kk, &av) in arow.iter().enumerate() {
            let av = i32::from(av);
            let brow = &b[kk * n..(kk + 1) * n];
            for (x, &bv) in row.iter_mut().zip(brow) {
                *x += av * i32::from(bv);
            }
        }
    }
}

/// What to do with the i32 result to produce f32 output.
#[derive(Debug, Clone, Copy)]
pub struct Int8Epilogue<'a> {
    /// Activation quantization of A.
    pub act: ActivationQuant,
    /// Per-column weight scales (length n).
    pub weight_scales: &'a [f32],
    pub bias: Option<&'a [f32]>,
    pub relu: bool,
}

/// int8 GEMM with dequantizing epilogue: `out[i][j] = sa * sw[j] * C[i][j] + bias[j]`
/// (then ReLU if asked). `scratch` is resized to m * n i32s and reused between calls.
#[allow(clippy::too_many_arguments)]
pub fn gemm_u8s8_f32(
    a: &[u8],
    lda: usize,
    m: usize,
    packed: &PackedWeightsS8,
    epilogue: Int8Epilogue<'_>,
    scratch: &mut Vec<i32>,
    out: &mut [f32],
    ldo: usize,
) -> Result<(), QuantError> {
    let n = packed.n;
    if epilogue.weight_scales.len() < n {
        return Err(QuantError::Mismatch(format!(
            "{} weight scales for {n} columns",
            epilogue.weight_scales.len()
        )));
    }
    if let Some(b) = epilogue.bias {
        if b.len() < n {
            return Err(QuantError::Mismatch(format!(
                "{} bias values for {n} columns",
                b.len()
            )));
        }
    }
    if ldo < n {
        return Err(QuantError::BadStride {
            name: "ldo",
            value: ldo,
            min: n,
        });
    }
    let needed = if m == 0 { 0 } else { (m - 1) * ldo + n };
    if out.len() < needed {
        return Err(QuantError::BufferTooSmall {
            name: "out",
            needed,
            actual: out.len(),
        });
    }
    scratch.resize(m * n, 0);
    gemm_u8s8_i32(a, lda, m, epilogue.act.zero_point, packed, scratch, n)?;
    let sa = epilogue.act.scale;
    for i in 0..m {
        let acc = &scratch[i * n..(i + 1) * n];
        let o = &mut out[i * ldo..i * ldo + n];
        match epilogue.bias {
            Some(bias) => {
                for (((y, &x), &s), &bv) in
                    o.iter_mut().zip(acc).zip(epilogue.weight_scales).zip(bias)
                {
                    *y = x as f32 * (sa * s) + bv;
                }
            }
            None => {
                for ((y, &x), &s) in o.iter_mut().zip(acc).zip(epilogue.weight_scales) {
                    *y = x as f32 * (sa * s);
                }
            }
        }
        if epilogue.relu {
            for y in o.iter_mut() {
                *y = y.max(0.0);
            }
        }
    }
    Ok(())
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{AVX2_MR, AVX2_NR, VNNI_KC, VNNI_MR, VNNI_NR};
    use std::arch::x86_64::*;

    /// # Safety
    /// CPU supports avx512f/bw/vnni; `a` has m rows of `lda` readable to `kp`;
    /// `b` holds ceil(n/32) panels of kp*32 bytes; `c` has m rows of `ldc >= n`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn vnni_gemm(
        a: *const u8,
        lda: usize,
        m: usize,
        kp: usize,
        n: usize,
        b: *const i8,
        c: *mut i32,
        ldc: usize,
    ) {
        let panels = n.div_ceil(VNNI_NR);
        // k blocks of VNNI_KC keep one B micro-panel (KC x 32 bytes) in L1
        // while every row block of A streams past it.
        let mut k0 = 0;
        while k0 < kp {
            let kc = (kp - k0).min(VNNI_KC);
            let accumulate = k0 > 0;
            for p in 0..panels {
                let col0 = p * VNNI_NR;
                let cols = (n - col0).min(VNNI_NR);
                let m0: u16 = if cols >= 16 {
                    0xffff
                } else {
                    (1u16 << cols) - 1
                };
                let m1: u16 = if cols >= 32 {
                    0xffff
                } else if cols > 16 {
                    (1u16 << (cols - 16)) - 1
                } else {
                    0
                };
                // SAFETY (whole block): offsets stay inside the buffers described above.
                unsafe {
                    let bp = b.add(p * kp * VNNI_NR + k0 * VNNI_NR);
                    let mut i = 0;
                    while i < m {
                        let rows = (m - i).min(VNNI_MR);
                        let ap = a.add(i * lda + k0);
                        let cp = c.add(i * ldc + col0);
                        let t = (lda, kc, ldc, m0, m1, accumulate);
                        match rows {
                            8 => vnni_tile::<8>(ap, bp, cp, t),
                            7 => vnni_tile::<7>(ap, bp, cp, t),
                            6 => vnni_tile::<6>(ap, bp, cp, t),
                            5 => vnni_tile::<5>(ap, bp, cp, t),
                            4 => vnni_tile::<4>(ap, bp, cp, t),
                            3 => vnni_tile::<3>(ap, bp, cp, t),
                            2 => vnni_tile::<2>(ap, bp, cp, t),
                            _ => vnni_tile::<1>(ap, bp, cp, t),
                        }
                        i += rows;
                    }
                }
            }
            k0 += kc;
        }
    }

    /// One MR x 32 tile over `kc` (a multiple of 4) k-steps; adds to C when `accumulate`.
    ///
    /// # Safety
    /// As for [`vnni_gemm`], restricted to MR rows, one panel and one k block.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    unsafe fn vnni_tile<const MR: usize>(
        a: *const u8,
        b: *const i8,
        c: *mut i32,
        (lda, kc, ldc, m0, m1, accumulate): (usize, usize, usize, u16, u16, bool),
    ) {
        let mut acc = [[_mm512_setzero_si512(); 2]; MR];
        // SAFETY (whole block): kk < kc, so every A read of 4 bytes at kk is in
        // the row, every B read of 64 bytes is inside the panel, and C is
        // accessed only under the column masks.
        unsafe {
            if accumulate {
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let cr = c.add(r * ldc);
                    acc_r[0] = _mm512_maskz_loadu_epi32(m0, cr);
                    acc_r[1] = _mm512_maskz_loadu_epi32(m1, cr.add(16));
                }
            }
            let mut kk = 0;
            while kk < kc {
                let bk = b.add(kk * VNNI_NR);
                let b0 = _mm512_loadu_si512(bk as *const __m512i);
                let b1 = _mm512_loadu_si512(bk.add(64) as *const __m512i);
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let quad = (a.add(r * lda + kk) as *const i32).read_unaligned();
                    let av = _mm512_set1_epi32(quad);
                    acc_r[0] = _mm512_dpbusd_epi32(acc_r[0], av, b0);
                    acc_r[1] = _mm512_dpbusd_epi32(acc_r[1], av, b1);
                }
                kk += 4;
            }
            for (r, acc_r) in acc.iter().enumerate() {
                let cr = c.add(r * ldc);
                _mm512_mask_storeu_epi32(cr, m0, acc_r[0]);
                if m1 != 0 {
                    _mm512_mask_storeu_epi32(cr.add(16), m1, acc_r[1]);
                }
            }
        }
    }

    /// # Safety
    /// CPU supports avx2; `a` as for [`vnni_gemm`]; `b` holds ceil(n/16)
    /// panels of kp*16 i16; `c` has m rows of `ldc >= n`.
    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn avx2_gemm(
        a: *const u8,
        lda: usize,
        m: usize,
        kp: usize,
        n: usize,
        b: *const i16,
        c: *mut i32,
        ldc: usize,
    ) {
        let panels = n.div_ceil(AVX2_NR);
        for p in 0..panels {
            let col0 = p * AVX2_NR;
            let cols = (n - col0).min(AVX2_NR);
            // SAFETY (whole block): offsets stay inside the buffers described above.
            unsafe {
                let bp = b.add(p * kp * AVX2_NR);
                let mut i = 0;
                while i < m {
                    let rows = (m - i).min(AVX2_MR);
                    let ap = a.add(i * lda);
                    let cp = c.add(i * ldc + col0);
                    match rows {
                        4 => avx2_tile::<4>(ap, lda, bp, kp, cp, ldc, cols),
                        3 => avx2_tile::<3>(ap, lda, bp, kp, cp, ldc, cols),
                        2 => avx2_tile::<2>(ap, lda, bp, kp, cp, ldc, cols),
                        _ => avx2_tile::<1>(ap, lda, bp, kp, cp, ldc, cols),
                    }
                    i += rows;
                }
            }
        }
    }

    /// One MR x 16 tile: u8 pairs zero-extended to i16, `vpmaddwd` against the
    /// pre-widened weights (|a*b| <= 255*128, pair sums fit i32: no saturation).
    ///
    /// # Safety
    /// As for [`avx2_gemm`], restricted to MR rows and one panel.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn avx2_tile<const MR: usize>(
        a: *const u8,
        lda: usize,
        b: *const i16,
        kp: usize,
        c: *mut i32,
        ldc: usize,
        cols: usize,
    ) {
        let mut acc = [[_mm256_setzero_si256(); 2]; MR];
        let mut kk = 0;
        // SAFETY (whole block): kk + 1 < kp for every read of A; B reads of
        // 2 x 32 bytes per k-pair stay in the panel; C writes cover `cols`.
        unsafe {
            while kk < kp {
                let bk = b.add(kk * AVX2_NR);
                let b0 = _mm256_loadu_si256(bk as *const __m256i);
                let b1 = _mm256_loadu_si256(bk.add(16) as *const __m256i);
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let ar = a.add(r * lda + kk);
                    let pair = i32::from(*ar) | (i32::from(*ar.add(1)) << 16);
                    let av = _mm256_set1_epi32(pair);
                    acc_r[0] = _mm256_add_epi32(acc_r[0], _mm256_madd_epi16(av, b0));
                    acc_r[1] = _mm256_add_epi32(acc_r[1], _mm256_madd_epi16(av, b1));
                }
                kk += 2;
            }
            for (r, acc_r) in acc.iter().enumerate() {
                let cr = c.add(r * ldc);
                if cols == AVX2_NR {
                    _mm256_storeu_si256(cr as *mut __m256i, acc_r[0]);
                    _mm256_storeu_si256(cr.add(8) as *mut __m256i, acc_r[1]);
                } else {
                    let mut tmp = [0i32; AVX2_NR];
                    _mm256_storeu_si256(tmp.as_mut_ptr() as *mut __m256i, acc_r[0]);
                    _mm256_storeu_si256(tmp.as_mut_ptr().add(8) as *mut __m256i, acc_r[1]);
                    std::ptr::copy_nonoverlapping(tmp.as_ptr(), cr, cols);
                }
            }
        }
    }
}
