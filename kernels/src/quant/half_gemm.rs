//! GEMV/GEMM over weights stored as f16, bf16 or f32 with f32 accumulation.
//!
//! Batch-1 inference is memory bound: every weight is read once per token.
//! Halving the bytes per weight nearly halves the time once the weights no
//! longer fit the cache. Weights are packed into panels of 64 output columns,
//! `[panel][k][64]`, so each panel is one contiguous stream; the kernel
//! converts 16 values at a time (F16C `vcvtph2ps`, bf16 is a 16-bit shift)
//! and accumulates in f32.

use std::ops::Range;

use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};

use super::int8::check_matrix;
use super::split::{run_blocks, GemmThreads};
use super::QuantError;
use crate::pages::PageBuffer;
use crate::pool::SharedOut;

/// Columns per packed panel.
pub const PANEL: usize = 64;
const MR: usize = 4;

/// Element type the weights are stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WeightStorage {
    F32,
    F16,
    Bf16,
}

/// Which kernel converts and accumulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HalfPath {
    Portable,
    /// AVX2 + FMA + F16C, 8 lanes.
    Avx2,
    /// AVX-512F (includes the 512-bit `vcvtph2ps`), 16 lanes.
    Avx512,
}

impl HalfPath {
    pub const ALL: [HalfPath; 3] = [HalfPath::Portable, HalfPath::Avx2, HalfPath::Avx512];

    pub fn name(self) -> &'static str {
        match self {
            HalfPath::Portable => "portable",
            HalfPath::Avx2 => "avx2",
            HalfPath::Avx512 => "avx512",
        }
    }

    pub fn is_supported(self) -> bool {
        match self {
            HalfPath::Portable => true,
            #[cfg(target_arch = "x86_64")]
            HalfPath::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                    && std::arch::is_x86_feature_detected!("f16c")
            }
            #[cfg(target_arch = "x86_64")]
            HalfPath::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Best supported path, capped by `WORKBENCH_SIMD` (portable | avx2 | avx512).
    pub fn detect() -> HalfPath {
        let cap = match super::simd_override().as_deref() {
            Some("portable") => HalfPath::Portable,
            Some("avx2") | Some("avx2fma") => HalfPath::Avx2,
            _ => HalfPath::Avx512,
        };
        HalfPath::ALL
            .into_iter()
            .rev()
            .find(|p| *p <= cap && p.is_supported())
            .unwrap_or(HalfPath::Portable)
    }
}

#[derive(Debug, Clone)]
enum PanelData {
    F32(PageBuffer<f32>),
    F16(PageBuffer<f16>),
    Bf16(PageBuffer<bf16>),
}

/// A k x n weight matrix packed into 64-column panels in the chosen storage.
#[derive(Debug, Clone)]
pub struct PackedPanelWeights {
    k: usize,
    n: usize,
    data: PanelData,
}

impl PackedPanelWeights {
    /// Packs a k x n row-major f32 matrix (`ldw >= n`), converting with the
    /// `half` crate's bulk slice conversions.
    pub fn pack(
        storage: WeightStorage,
        k: usize,
        n: usize,
        w: &[f32],
        ldw: usize,
    ) -> Result<PackedPanelWeights, QuantError> {
        if ldw < n {
            return Err(QuantError::BadStride {
                name: "ldw",
                value: ldw,
                min: n,
            });
        }
        let needed = if k == 0 { 0 } else { (k - 1) * ldw + n };
        if w.len() < needed {
            return Err(QuantError::BufferTooSmall {
                name: "w",
                needed,
                actual: w.len(),
            });
        }
        let panels = n.div_ceil(PANEL);
        let mut packed: PageBuffer<f32> = PageBuffer::zeroed(panels * k * PANEL);
        for p in 0..panels {
            let col0 = p * PANEL;
            let cols = (n - col0).min(PANEL);
            for kk in 0..k {
                let dst = (p * k + kk) * PANEL;
                packed[dst..dst + cols]
                    .copy_from_slice(&w[kk * ldw + col0..kk * ldw + col0 + cols]);
            }
        }
        let data = match storage {
            WeightStorage::F32 => PanelData::F32(packed),
            WeightStorage::F16 => {
                let mut h: PageBuffer<f16> = PageBuffer::zeroed(packed.len());
                h.convert_from_f32_slice(&packed);
                PanelData::F16(h)
            }
            WeightStorage::Bf16 => {
                let mut h: PageBuffer<bf16> = PageBuffer::zeroed(packed.len());
                h.convert_from_f32_slice(&packed);
                PanelData::Bf16(h)
            }
        };
        Ok(PackedPanelWeights { k, n, data })
    }

    pub fn k(&self) -> usize {
        self.k
    }
    pub fn n(&self) -> usize {
        self.n
    }
    pub fn storage(&self) -> WeightStorage {
        match self.data {
            PanelData::F32(_) => WeightStorage::F32,
            PanelData::F16(_) => WeightStorage::F16,
            PanelData::Bf16(_) => WeightStorage::Bf16,
        }
    }
    /// Bytes of weight storage (what a batch-1 pass streams).
    pub fn bytes(&self) -> usize {
        match &self.data {
            PanelData::F32(d) => d.len() * 4,
            PanelData::F16(d) => d.len() * 2,
            PanelData::Bf16(d) => d.len() * 2,
        }
    }

    /// The stored weight at (row kk, column j), as f32 (for tests and references).
    pub fn get(&self, kk: usize, j: usize) -> f32 {
        let idx = ((j / PANEL) * self.k + kk) * PANEL + j % PANEL;
        match &self.data {
            PanelData::F32(d) => d.get(idx).copied().unwrap_or(0.0),
            PanelData::F16(d) => d.get(idx).map(|h| h.to_f32()).unwrap_or(0.0),
            PanelData::Bf16(d) => d.get(idx).map(|h| h.to_f32()).unwrap_or(0.0),
        }
    }

    /// `out[i][j] = sum_k a[i][k] * W[k][j] (+ bias[j])` for an m x k f32 A.
    #[allow(clippy::too_many_arguments)]
    pub fn gemm(
        &self,
        path: HalfPath,
        a: &[f32],
        lda: usize,
        m: usize,
        bias: Option<&[f32]>,
        out: &mut [f32],
        ldo: usize,
    ) -> Result<(), QuantError> {
        self.gemm_fused(path, a, lda, m, bias, false, out, ldo)
    }

    /// [`gemm`](Self::gemm) with the bias and, if `relu`, `max(y, 0)` applied
    /// in the tile epilogue (the same `f32::max` the f32 ReLU op uses, so the
    /// fused result equals the unfused one bit for bit).
    #[allow(clippy::too_many_arguments)]
    pub fn gemm_fused(
        &self,
        path: HalfPath,
        a: &[f32],
        lda: usize,
        m: usize,
        bias: Option<&[f32]>,
        relu: bool,
        out: &mut [f32],
        ldo: usize,
    ) -> Result<(), QuantError> {
        self.gemm_fused_on(path, a, lda, m, bias, relu, out, ldo, None)
    }

    /// [`gemm_fused`](Self::gemm_fused) split over `threads` when given and
    /// worth it: blocks of rows by blocks of panels, the same bits (each
    /// output's sum runs over k in one order whatever the block).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn gemm_fused_on(
        &self,
        path: HalfPath,
        a: &[f32],
        lda: usize,
        m: usize,
        bias: Option<&[f32]>,
        relu: bool,
        out: &mut [f32],
        ldo: usize,
        threads: Option<GemmThreads<'_>>,
    ) -> Result<(), QuantError> {
        let (k, n) = (self.k, self.n);
        if !path.is_supported() {
            return Err(QuantError::UnsupportedPath(path.name()));
        }
        check_matrix(a.len(), lda, m, k, ("lda", "a"))?;
        check_matrix(out.len(), ldo, m, n, ("ldo", "out"))?;
        if let Some(b) = bias {
            if b.len() < n {
                return Err(QuantError::Mismatch(format!(
                    "{} bias values for {n} columns",
                    b.len()
                )));
            }
        }
        let out = SharedOut::new(out);
        let epilogue = (bias, relu);
        // Each block runs once, on one thread: its rows and columns of `out` are its own.
        let block = |rows: Range<usize>, panels: Range<usize>| {
            // SAFETY: as just said; operands checked above.
            unsafe { self.gemm_block(path, (a, lda), epilogue, (&out, ldo), rows, panels) };
            Ok(())
        };
        let flops = 2.0 * m as f64 * n as f64 * k as f64;
        let panels = n.div_ceil(PANEL);
        run_blocks(threads, flops, m, panels, MR, 4 * k, &block)
    }

    /// Rows `rows` by column panels `panels` of the GEMM, with the bias and ReLU
    /// of `epilogue`.
    ///
    /// # Safety
    /// `path` is supported; A and `out` were checked to hold the GEMM's rows
    /// (these among them) and the bias its columns; no other thread writes
    /// this block of `out` meanwhile.
    unsafe fn gemm_block(
        &self,
        path: HalfPath,
        (a, lda): (&[f32], usize),
        (bias, relu): (Option<&[f32]>, bool),
        (out, ldo): (&SharedOut<'_, f32>, usize),
        rows: Range<usize>,
        panels: Range<usize>,
    ) {
        let act = |y: f32| if relu { y.max(0.0) } else { y };
        for p in panels {
            let col0 = p * PANEL;
            let cols = (self.n - col0).min(PANEL);
            let mut i = rows.start;
            while i < rows.end {
                let tile_rows = (rows.end - i).min(MR);
                let mut tile = [[0.0f32; PANEL]; MR];
                self.panel_tile(path, p, &a[i * lda..], lda, tile_rows, &mut tile);
                for (r, t) in tile.iter().enumerate().take(tile_rows) {
                    let at = (i + r) * ldo + col0;
                    // SAFETY: this block's elements (the caller's contract),
                    // inside `out` (checked), so `else` is never taken.
                    let Some(o) = (unsafe { out.slice(at..at + cols) }) else {
                        continue;
                    };
                    match bias {
                        Some(b) => {
                            for ((y, &x), &bv) in
                                o.iter_mut().zip(t.iter()).zip(&b[col0..col0 + cols])
                            {
                                *y = act(x + bv);
                            }
                        }
                        None => {
                            for (y, &x) in o.iter_mut().zip(t.iter()) {
                                *y = act(x);
                            }
                        }
                    }
                }
                i += tile_rows;
            }
        }
    }

    /// Accumulates `rows` (<= 4) rows of A against panel `p` into `tile`.
    fn panel_tile(
        &self,
        path: HalfPath,
        p: usize,
        a: &[f32],
        lda: usize,
        rows: usize,
        tile: &mut [[f32; PANEL]; MR],
    ) {
        let k = self.k;
        let base = p * k * PANEL;
        // SAFETY: the path was checked supported by `gemm`; the panel holds
        // k*64 elements from `base`; A has `rows` rows of `lda >= k` (checked
        // by `gemm`); the tile has 4 x 64 floats.
        let done = unsafe {
            match &self.data {
                PanelData::F32(d) => {
                    panel_simd::<0, _>(path, d.as_ptr().add(base), k, a, lda, rows, tile)
                }
                PanelData::F16(d) => {
                    panel_simd::<1, _>(path, d.as_ptr().add(base), k, a, lda, rows, tile)
                }
                PanelData::Bf16(d) => {
                    panel_simd::<2, _>(path, d.as_ptr().add(base), k, a, lda, rows, tile)
                }
            }
        };
        if !done {
            let mut wrow = [0.0f32; PANEL];
            for kk in 0..k {
                let off = base + kk * PANEL;
                match &self.data {
                    PanelData::F32(d) => wrow.copy_from_slice(&d[off..off + PANEL]),
                    PanelData::F16(d) => d[off..off + PANEL].convert_to_f32_slice(&mut wrow),
                    PanelData::Bf16(d) => d[off..off + PANEL].convert_to_f32_slice(&mut wrow),
                }
                for (r, t) in tile.iter_mut().enumerate().take(rows) {
                    let x = a[r * lda + kk];
                    for (acc, &w) in t.iter_mut().zip(&wrow) {
                        *acc += x * w;
                    }
                }
            }
        }
    }
}

/// Runs the SIMD panel kernel of `path` for weights of KIND (0 = f32, 1 =
/// f16, 2 = bf16); false when the path is portable (the caller's loop runs).
///
/// # Safety
/// `path` is supported; `w` holds `k * PANEL` weights; `a` has `rows` (<= MR)
/// rows of stride `lda >= k`.
#[allow(clippy::too_many_arguments)]
unsafe fn panel_simd<const KIND: u8, T>(
    path: HalfPath,
    w: *const T,
    k: usize,
    a: &[f32],
    lda: usize,
    rows: usize,
    tile: &mut [[f32; PANEL]; MR],
) -> bool {
    // SAFETY: forwarded contract.
    unsafe {
        match path {
            #[cfg(target_arch = "x86_64")]
            HalfPath::Avx512 => x86::panel512::<KIND, T>(w, k, a.as_ptr(), lda, rows, tile),
            #[cfg(target_arch = "x86_64")]
            HalfPath::Avx2 => x86::panel256::<KIND, T>(w, k, a.as_ptr(), lda, rows, tile),
            _ => return false,
        }
    }
    true
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{MR, PANEL};
    use std::arch::x86_64::*;

    /// How far ahead of the row being read the f16 and bf16 kernels ask for
    /// their weight stream. Left to the hardware prefetchers, one core of the
    /// Xeon host read 8192x8192 f16 weights from DRAM at 10 GB/s against 15
    /// GB/s for f32 (1.36x instead of 2x); 8 KiB ahead took that GEMV from
    /// 11.90 to 8.63 ms (AVX2 path: 19.26 to 9.94 ms), bf16 from 12.94 to 9.49
    /// ms. 2 KiB gained about two thirds of that, 16 KiB no more; f32 weights
    /// gained nothing (AVX2: 10% slower), so they are not prefetched.
    const PREFETCH_AHEAD_BYTES: usize = 8192;

    /// Ask for every cache line of the weight row `PREFETCH_AHEAD_BYTES`
    /// past `wk` (a row of the panel, or of the next panel: panels are
    /// stored one after another).
    #[inline(always)]
    fn prefetch_ahead<T>(wk: *const T) {
        let ahead = wk.cast::<i8>().wrapping_add(PREFETCH_AHEAD_BYTES);
        let mut offset = 0;
        while offset < PANEL * std::mem::size_of::<T>() {
            // SAFETY: a prefetch is a hint: it reads nothing into the program
            // and does not fault, wherever the address points.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(offset)) };
            offset += 64;
        }
    }

    /// Loads 16 weights at `w` as f32. KIND: 0 = f32, 1 = f16, 2 = bf16.
    ///
    /// # Safety
    /// avx512f; `w` points at 16 readable elements of the KIND's width.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn load16<const KIND: u8, T>(w: *const T) -> __m512 {
        // SAFETY: 64 bytes (f32) or 32 bytes (f16/bf16) readable per the contract.
        unsafe {
            match KIND {
                0 => _mm512_loadu_ps(w as *const f32),
                1 => _mm512_cvtph_ps(_mm256_loadu_si256(w as *const __m256i)),
                _ => _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(
                    _mm256_loadu_si256(w as *const __m256i),
                ))),
            }
        }
    }

    /// # Safety
    /// avx512f; `w` holds k*64 elements; `a` has `rows` (<= 4) rows of `lda >= k`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn panel512<const KIND: u8, T>(
        w: *const T,
        k: usize,
        a: *const f32,
        lda: usize,
        rows: usize,
        tile: &mut [[f32; PANEL]; MR],
    ) {
        // SAFETY: forwarded contract; the const-MR kernels read the same bounds.
        unsafe {
            match rows {
                4 => tile512::<KIND, T, 4>(w, k, a, lda, tile),
                3 => tile512::<KIND, T, 3>(w, k, a, lda, tile),
                2 => tile512::<KIND, T, 2>(w, k, a, lda, tile),
                _ => tile512::<KIND, T, 1>(w, k, a, lda, tile),
            }
        }
    }

    /// # Safety
    /// As for [`panel512`] with R rows.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn tile512<const KIND: u8, T, const R: usize>(
        w: *const T,
        k: usize,
        a: *const f32,
        lda: usize,
        tile: &mut [[f32; PANEL]; MR],
    ) {
        let mut acc = [[_mm512_setzero_ps(); 4]; R];
        // SAFETY: kk < k keeps weight reads inside the panel and A reads inside the rows.
        unsafe {
            for kk in 0..k {
                let wk = w.add(kk * PANEL);
                if KIND != 0 {
                    prefetch_ahead(wk);
                }
                let w0 = load16::<KIND, T>(wk);
                let w1 = load16::<KIND, T>(wk.add(16));
                let w2 = load16::<KIND, T>(wk.add(32));
                let w3 = load16::<KIND, T>(wk.add(48));
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let x = _mm512_set1_ps(*a.add(r * lda + kk));
                    acc_r[0] = _mm512_fmadd_ps(x, w0, acc_r[0]);
                    acc_r[1] = _mm512_fmadd_ps(x, w1, acc_r[1]);
                    acc_r[2] = _mm512_fmadd_ps(x, w2, acc_r[2]);
                    acc_r[3] = _mm512_fmadd_ps(x, w3, acc_r[3]);
                }
            }
            for (acc_r, t) in acc.iter().zip(tile.iter_mut()) {
                for (j, v) in acc_r.iter().enumerate() {
                    _mm512_storeu_ps(t.as_mut_ptr().add(16 * j), *v);
                }
            }
        }
    }

    /// Loads 8 weights at `w` as f32. KIND: 0 = f32, 1 = f16, 2 = bf16.
    ///
    /// # Safety
    /// avx2 + f16c; `w` points at 8 readable elements of the KIND's width.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn load8<const KIND: u8, T>(w: *const T) -> __m256 {
        // SAFETY: 32 bytes (f32) or 16 bytes (f16/bf16) readable per the contract.
        unsafe {
            match KIND {
                0 => _mm256_loadu_ps(w as *const f32),
                1 => _mm256_cvtph_ps(_mm_loadu_si128(w as *const __m128i)),
                _ => _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(
                    _mm_loadu_si128(w as *const __m128i),
                ))),
            }
        }
    }

    /// # Safety
    /// avx2/fma/f16c; bounds as for [`panel512`].
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn panel256<const KIND: u8, T>(
        w: *const T,
        k: usize,
        a: *const f32,
        lda: usize,
        rows: usize,
        tile: &mut [[f32; PANEL]; MR],
    ) {
        // 32 columns x 2 rows at a time: 8 accumulators + 4 weight vectors fit the 16 ymm registers.
        for half in 0..2 {
            let off = half * 32;
            let mut r = 0;
            while r < rows {
                // SAFETY: forwarded contract; each call reads 32 of the 64 panel
                // columns and rows r..r+2 (or r) of A, all below `rows`.
                unsafe {
                    if rows - r >= 2 {
                        tile256::<KIND, T, 2>(w.add(off), k, a.add(r * lda), lda, tile, off, r);
                    } else {
                        tile256::<KIND, T, 1>(w.add(off), k, a.add(r * lda), lda, tile, off, r);
                    }
                }
                r += 2;
            }
        }
    }

    /// R rows x 32 columns; writes tile rows `row0..row0+R`, columns `off..off+32`.
    ///
    /// # Safety
    /// As for [`panel256`].
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn tile256<const KIND: u8, T, const R: usize>(
        w: *const T,
        k: usize,
        a: *const f32,
        lda: usize,
        tile: &mut [[f32; PANEL]; MR],
        off: usize,
        row0: usize,
    ) {
        let mut acc = [[_mm256_setzero_ps(); 4]; R];
        // SAFETY: kk < k keeps reads inside the panel and the A rows.
        unsafe {
            for kk in 0..k {
                let wk = w.add(kk * PANEL);
                if KIND != 0 {
                    prefetch_ahead(wk);
                }
                let w0 = load8::<KIND, T>(wk);
                let w1 = load8::<KIND, T>(wk.add(8));
                let w2 = load8::<KIND, T>(wk.add(16));
                let w3 = load8::<KIND, T>(wk.add(24));
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let x = _mm256_set1_ps(*a.add(r * lda + kk));
                    acc_r[0] = _mm256_fmadd_ps(x, w0, acc_r[0]);
                    acc_r[1] = _mm256_fmadd_ps(x, w1, acc_r[1]);
                    acc_r[2] = _mm256_fmadd_ps(x, w2, acc_r[2]);
                    acc_r[3] = _mm256_fmadd_ps(x, w3, acc_r[3]);
                }
            }
            for (r, acc_r) in acc.iter().enumerate() {
                let t = &mut tile[row0 + r];
                for (j, v) in acc_r.iter().enumerate() {
                    _mm256_storeu_ps(t.as_mut_ptr().add(off + 8 * j), *v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::ChunkRecord;
    use crate::quant::split::run_split;

    /// The GEMM cut into chunks for 1 and 2 helpers (2 and 3 threads, row
    /// blocks of one tile or of all rows) writes the bits of the one block a
    /// single thread runs, at sizes whose splits leave remainders, for every
    /// storage and path here.
    #[test]
    fn split_gemm_writes_the_bits_of_one_block() {
        for (m, k, n) in [
            (1, 3, 7),
            (3, 63, 65),
            (7, 65, 257),
            (65, 7, 63),
            (257, 9, 129),
        ] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
                .collect();
            let w: Vec<f32> = (0..k * n)
                .map(|i| ((i * 13 % 17) as f32 - 8.0) / 9.0)
                .collect();
            let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.25 - 2.0).collect();
            for storage in [WeightStorage::F32, WeightStorage::F16, WeightStorage::Bf16] {
                let packed = PackedPanelWeights::pack(storage, k, n, &w, n).expect("pack");
                for path in HalfPath::ALL.into_iter().filter(|p| p.is_supported()) {
                    let mut want = vec![0.0f32; m * n];
                    packed
                        .gemm_fused(path, &a, k, m, Some(&bias), true, &mut want, n)
                        .expect("gemm");
                    for helpers in [1, 2] {
                        for budget in [4 * k * MR, 1 << 19] {
                            let mut got = vec![f32::NAN; m * n];
                            let out = SharedOut::new(&mut got);
                            let ok: Result<(), ()> = run_split(
                                &mut ChunkRecord::default(),
                                helpers,
                                m,
                                n.div_ceil(PANEL),
                                MR,
                                4 * k,
                                budget,
                                &|rows, panels| {
                                    let epilogue = (Some(&bias[..]), true);
                                    // SAFETY: buffers sized above; each chunk runs once.
                                    unsafe {
                                        packed.gemm_block(
                                            path,
                                            (&a, k),
                                            epilogue,
                                            (&out, n),
                                            rows,
                                            panels,
                                        )
                                    };
                                    Ok(())
                                },
                            );
                            assert_eq!(ok, Ok(()));
                            let bits =
                                |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                            assert_eq!(
                                bits(&got),
                                bits(&want),
                                "{storage:?} {path:?} {m}x{k}x{n} helpers {helpers} budget {budget}"
                            );
                        }
                    }
                }
            }
        }
    }
}
