//! Convolution helpers of the tiled engine. The input of a convolution is
//! zero-padded and split by stride phase once per sample ("split layout"), so
//! every kernel tap of every output row reads one contiguous run: a standard
//! convolution then packs its GEMM operand straight from it (`GatherB`, no
//! im2col matrix), and depthwise runs as vector FMAs over contiguous loads.

use std::ops::Range;

use crate::reference::ConvGeom;
use crate::simd::SimdLevel;

/// Layout of a padded, stride-split image: `[c][py][phase][t]` holds padded
/// pixel `(py, t * stride + phase)`, i.e. input `(py - pad, t * stride + phase - pad)`
/// or 0 outside the image. Tap `(ky, kx)` of output `(oy, ox)` is then at
/// `tap(c, ky, kx) + oy * row_step() + ox`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SplitLayout {
    channels: usize,
    /// Padded rows that some output reads.
    ph: usize,
    /// Columns per phase.
    qw: usize,
    stride: usize,
}

impl SplitLayout {
    pub(crate) fn new(g: &ConvGeom) -> SplitLayout {
        let stride = g.stride.max(1);
        SplitLayout {
            channels: g.in_c,
            ph: g.oh.saturating_sub(1) * stride + g.kh,
            qw: g.ow + g.kw.saturating_sub(1) / stride,
            stride,
        }
    }

    /// Floats the layout holds.
    pub(crate) fn len(&self) -> usize {
        self.channels * self.plane()
    }

    pub(crate) fn plane(&self) -> usize {
        self.ph * self.stride * self.qw
    }

    /// Floats per padded row (stride 1: the padded image's width).
    pub(crate) fn row_width(&self) -> usize {
        self.qw
    }

    /// Whether this layout of `g`'s input is just the zero-padded image, every input
    /// pixel inside it (stride 1, `pad` on all four sides): a producer can then write
    /// its output straight into it, at `pad` rows and columns in.
    pub(crate) fn is_padded_image_of(&self, g: &ConvGeom) -> bool {
        self.stride == 1
            && self.channels == g.in_c
            && self.ph == g.h + 2 * g.pad
            && self.qw == g.w + 2 * g.pad
    }

    /// Offset of tap `(ky, kx)` of channel `c` for output pixel (0, 0).
    pub(crate) fn tap(&self, c: usize, ky: usize, kx: usize) -> usize {
        ((c * self.ph + ky) * self.stride + kx % self.stride) * self.qw + kx / self.stride
    }

    /// Distance between consecutive output rows.
    pub(crate) fn row_step(&self) -> usize {
        self.stride * self.stride * self.qw
    }

    /// Offsets of every tap in weight order `(c, ky, kx)` (the GEMM's K rows).
    pub(crate) fn conv_offsets(&self, g: &ConvGeom) -> Vec<usize> {
        let mut v = Vec::with_capacity(g.in_c * g.kh * g.kw);
        for c in 0..g.in_c {
            for ky in 0..g.kh {
                for kx in 0..g.kw {
                    v.push(self.tap(c, ky, kx));
                }
            }
        }
        v
    }

    /// Offsets of the taps of channel 0 (depthwise adds `c * plane`).
    pub(crate) fn depthwise_offsets(&self, g: &ConvGeom) -> Vec<usize> {
        let mut v = Vec::with_capacity(g.kh * g.kw);
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                v.push(self.tap(0, ky, kx));
            }
        }
        v
    }
}

/// Fill `q` (at least `lay.len()` floats) with `x` (one sample, `[c, h, w]`) in split
/// layout, padding included (the engine keeps padding zero once; tests check both).
#[cfg(test)]
pub(crate) fn pad_split(x: &[f32], g: &ConvGeom, lay: &SplitLayout, q: &mut [f32]) {
    split_image::<COPY_PORTABLE>(x, g, lay, q, true);
}

/// As `pad_split`, but only the pixels of the image are written: for a buffer that
/// only ever holds this layout, whose padding is still zero from its allocation
/// (the padding then costs nothing per run).
pub(crate) fn split_interior(
    simd: SimdLevel,
    x: &[f32],
    g: &ConvGeom,
    lay: &SplitLayout,
    q: &mut [f32],
) {
    // The same copies either way; AVX-512 moves (and de-interleaves) 16 floats at
    // a time, AVX2 8.
    #[cfg(target_arch = "x86_64")]
    if simd.is_supported() {
        match simd {
            // SAFETY: AVX-512F is available (checked just above).
            SimdLevel::Avx512 => return unsafe { x86::split_interior_avx512(x, g, lay, q) },
            // SAFETY: AVX2 is available (checked just above).
            SimdLevel::Avx2Fma => return unsafe { x86::split_interior_avx2(x, g, lay, q) },
            SimdLevel::Portable => {}
        }
    }
    split_image::<COPY_PORTABLE>(x, g, lay, q, false);
}

/// Which row copy `split_image` uses: `copy_from_slice`, or whole and masked
/// vector moves (only from the functions compiled for that level).
const COPY_PORTABLE: u8 = 0;
const COPY_AVX2: u8 = 1;
const COPY_AVX512: u8 = 2;

/// `dst = src[..dst.len()]`. Stride-1 rows are often a few floats wide
/// (keyword-spotting inputs are 5-10 columns): a `memcpy` call per row cost more
/// than the copy, so the SIMD builds move them with masked vector moves.
#[inline(always)]
fn copy_row<const COPY: u8>(dst: &mut [f32], src: &[f32]) {
    let src = &src[..dst.len()];
    #[cfg(target_arch = "x86_64")]
    match COPY {
        // SAFETY: COPY_AVX512 is passed only by `split_interior_avx512`, which
        // runs where AVX-512F is available.
        COPY_AVX512 => return unsafe { x86::copy_floats_avx512(dst, src) },
        // SAFETY: COPY_AVX2 is passed only by `split_interior_avx2`, which runs
        // where AVX2 is available.
        COPY_AVX2 => return unsafe { x86::copy_floats_avx2(dst, src) },
        _ => {}
    }
    dst.copy_from_slice(src);
}

#[inline(always)]
fn split_image<const COPY: u8>(
    x: &[f32],
    g: &ConvGeom,
    lay: &SplitLayout,
    q: &mut [f32],
    zero_padding: bool,
) {
    let s = lay.stride;
    if s == 2 {
        for c in 0..g.in_c {
            for py in 0..lay.ph {
                let start = (c * lay.ph + py) * 2 * lay.qw;
                let (even, odd) = q[start..start + 2 * lay.qw].split_at_mut(lay.qw);
                match py.checked_sub(g.pad).filter(|&iy| iy < g.h) {
                    Some(iy) => {
                        let src = &x[(c * g.h + iy) * g.w..(c * g.h + iy + 1) * g.w];
                        deinterleave_row(src, g.pad, even, odd, zero_padding);
                    }
                    None if zero_padding => {
                        even.fill(0.0);
                        odd.fill(0.0);
                    }
                    None => {}
                }
            }
        }
        return;
    }
    for phase in 0..s {
        // Columns [lo, hi) of this phase's rows lie inside the image: t is when
        // 0 <= t*s + phase - pad < w. The same in every row, so worked out once
        // (images a few columns wide spent more on these divisions than on copying).
        let hi = (g.w + g.pad).saturating_sub(phase).div_ceil(s).min(lay.qw);
        let lo = g.pad.saturating_sub(phase).div_ceil(s).min(hi);
        let first = (lo * s + phase).saturating_sub(g.pad);
        for c in 0..g.in_c {
            for py in 0..lay.ph {
                let start = ((c * lay.ph + py) * s + phase) * lay.qw;
                let dst = &mut q[start..start + lay.qw];
                let Some(iy) = py.checked_sub(g.pad).filter(|&iy| iy < g.h) else {
                    if zero_padding {
                        dst.fill(0.0);
                    }
                    continue;
                };
                if zero_padding {
                    dst[..lo].fill(0.0);
                    dst[hi..].fill(0.0);
                }
                if lo == hi {
                    continue;
                }
                let src = &x[(c * g.h + iy) * g.w + first..];
                if s == 1 {
                    copy_row::<COPY>(&mut dst[lo..hi], src);
                } else {
                    dst[lo..hi]
                        .iter_mut()
                        .zip(src.iter().step_by(s))
                        .for_each(|(d, &v)| *d = v);
                }
            }
        }
    }
}

/// One image row into its two stride-2 phases in one pass: input column `e` is
/// padded column `e + pad`, i.e. phase `(e + pad) % 2` at `(e + pad) / 2`.
#[inline(always)]
fn deinterleave_row(
    src: &[f32],
    pad: usize,
    phase0: &mut [f32],
    phase1: &mut [f32],
    zero_padding: bool,
) {
    let qw = phase0.len();
    // Where even and odd input columns land.
    let (even, odd, even_at, odd_at) = if pad.is_multiple_of(2) {
        (phase0, phase1, pad / 2, pad / 2)
    } else {
        (phase1, phase0, pad / 2, pad / 2 + 1)
    };
    let (even_at, odd_at) = (even_at.min(qw), odd_at.min(qw));
    let evens = src.len().div_ceil(2).min(qw - even_at);
    let odds = (src.len() / 2).min(qw - odd_at);
    let both = evens.min(odds);
    // Pairs first (the compiler turns this loop into vector shuffles), then the tails.
    even[even_at..even_at + both]
        .iter_mut()
        .zip(&mut odd[odd_at..odd_at + both])
        .zip(src.chunks_exact(2))
        .for_each(|((e, o), pair)| {
            *e = pair[0];
            *o = pair[1];
        });
    for i in both..evens {
        even[even_at + i] = src[2 * i];
    }
    for i in both..odds {
        odd[odd_at + i] = src[2 * i + 1];
    }
    if zero_padding {
        even[..even_at].fill(0.0);
        even[even_at + evens..].fill(0.0);
        odd[..odd_at].fill(0.0);
        odd[odd_at + odds..].fill(0.0);
    }
}

/// Depthwise convolution over a split-layout input `q`, bias and (optionally) ReLU fused:
/// `out[c, oy, ox] = relu(bias[c] + sum_taps w[c, tap] * q[tap(c) + oy*row_step + ox])`.
/// `offsets` are `lay.depthwise_offsets(g)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn depthwise(
    simd: SimdLevel,
    q: &[f32],
    lay: &SplitLayout,
    offsets: &[usize],
    g: &ConvGeom,
    weight: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    out: &mut [f32],
) {
    let args = DwArgs {
        q,
        lay,
        offsets,
        g,
        weight,
        bias,
        relu,
    };
    match simd {
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 if simd.is_supported() => {
            // SAFETY: AVX-512F is available (checked just above).
            unsafe { x86::depthwise_avx512(&args, out) }
        }
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2Fma if simd.is_supported() => {
            // SAFETY: AVX2 and FMA are available (checked just above).
            unsafe { x86::depthwise_avx2(&args, out) }
        }
        _ => depthwise_body::<false>(&args, out),
    }
}

struct DwArgs<'a> {
    q: &'a [f32],
    lay: &'a SplitLayout,
    offsets: &'a [usize],
    g: &'a ConvGeom,
    weight: &'a [f32],
    bias: Option<&'a [f32]>,
    relu: bool,
}

impl DwArgs<'_> {
    /// Whether the strided 3x3 kernel applies (stride > 1, a 3x3 kernel, its
    /// nine tap offsets) and its reads and writes stay inside `q`, the weights
    /// and an output of `out_len` floats: output (oy, ox) of channel c reads
    /// c * plane + offset + oy * step + ox for ox < ow only.
    fn fits_strided_3x3(&self, out_len: usize) -> bool {
        let g = self.g;
        if self.lay.stride < 2 || g.kh != 3 || g.kw != 3 || self.offsets.len() != 9 {
            return false;
        }
        if g.in_c == 0 || g.oh == 0 || g.ow == 0 {
            return true;
        }
        let reach = self.offsets.iter().max().copied().unwrap_or(0);
        let last_read =
            (g.in_c - 1) * self.lay.plane() + reach + (g.oh - 1) * self.lay.row_step() + g.ow - 1;
        self.q.len() > last_read
            && out_len >= g.in_c * g.oh * g.ow
            && self.weight.len() >= g.in_c * 9
            && self.bias.is_none_or(|b| b.len() >= g.in_c)
    }

    /// Whether the stride-1 3x3 kernels' reads and writes stay inside `q`, the
    /// weights and an output of `out_len` floats (some channels, rows and columns).
    /// Output (oy, ox) of channel c reads c * plane + (oy + ky) * step + ox + kx
    /// (whole vectors up to column ow + 1, the rest masked): the last read is at
    /// (in_c - 1) * plane + (oh + 1) * step + ow + 1. `q` may start some rows into
    /// the layout (a band), so it is checked against that, not the plane.
    fn fits_3x3(&self, out_len: usize) -> bool {
        let g = self.g;
        if g.in_c == 0 || g.oh == 0 || g.ow == 0 {
            return false;
        }
        let step = self.lay.row_step();
        let last_read = (g.in_c - 1) * self.lay.plane() + (g.oh + 1) * step + g.ow + 1;
        self.q.len() > last_read
            && step >= g.ow + 2
            && out_len >= g.in_c * g.oh * g.ow
            && self.weight.len() >= g.in_c * 9
            && self.bias.is_none_or(|b| b.len() >= g.in_c)
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{column_sums_body, depthwise_body, dw_row, split_image, DwArgs};
    use crate::reference::ConvGeom;
    use crate::simd::avx2;
    use std::arch::x86_64::*;

    /// Output channels per register tile of the direct convolution (x 32 columns:
    /// 24 accumulators).
    const DIRECT_MR: usize = 12;

    /// # Safety
    /// AVX-512F; `out` valid for `out_len` floats with `c.fits(out_len)`, and no
    /// other thread touching the elements `c` writes meanwhile.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn conv_direct_avx512(c: &super::DirectConv<'_>, out: *mut f32) {
        let taps = c.offsets.len();
        // Equal channel tiles (32 channels as 11 + 11 + 10, not 12 + 12 + 8).
        let tiles = c.out_c.div_ceil(DIRECT_MR);
        let mr = c.out_c.div_ceil(tiles.max(1)).max(1);
        let relu_lanes: __mmask16 = if c.relu { 0xffff } else { 0 };
        let (q, o) = (c.q.as_ptr(), out);
        for y in 0..c.oh {
            let mut x0 = 0;
            while x0 < c.ow {
                let cols = (c.ow - x0).min(32);
                let masks = [
                    ((1u32 << cols.min(16)) - 1) as __mmask16,
                    ((1u32 << cols.saturating_sub(16)) - 1) as __mmask16,
                ];
                let mut c0 = 0;
                while c0 < c.out_c {
                    let rows = mr.min(c.out_c - c0);
                    let tile = DirectTile {
                        taps,
                        offsets: c.offsets.as_ptr(),
                        // SAFETY (all three): inside q, the weights and out, as `fits` checked.
                        q: unsafe { q.add(y * c.row_step + x0) },
                        w: unsafe { c.weight.as_ptr().add(c0 * taps) },
                        bias: c.bias.map(|b| b[c0..].as_ptr()),
                        out: unsafe {
                            o.add(c.out_at + c0 * c.out_channel_step + y * c.out_row_step + x0)
                        },
                        out_channel_step: c.out_channel_step,
                        masks,
                        relu_lanes,
                    };
                    // SAFETY: rows <= DIRECT_MR channels from c0 < out_c, `cols` columns from x0.
                    unsafe {
                        if cols > 16 {
                            tile.run_rows::<2>(rows)
                        } else {
                            // A last strip of at most 16 columns: one vector per row.
                            tile.run_rows::<1>(rows)
                        }
                    }
                    c0 += rows;
                }
                x0 += cols;
            }
        }
    }

    /// One register tile of the direct convolution: `R` output channels x up to 32
    /// columns of one output row.
    struct DirectTile {
        taps: usize,
        offsets: *const usize,
        /// The input at this tile's first column (tap offsets are added).
        q: *const f32,
        /// The first channel's weights (`taps` per channel).
        w: *const f32,
        bias: Option<*const f32>,
        out: *mut f32,
        out_channel_step: usize,
        masks: [__mmask16; 2],
        relu_lanes: __mmask16,
    }

    impl DirectTile {
        /// `run` for `rows` (1..=DIRECT_MR) channels.
        ///
        /// # Safety
        /// As `run`.
        #[target_feature(enable = "avx512f")]
        #[inline]
        unsafe fn run_rows<const NV: usize>(&self, rows: usize) {
            // SAFETY: the caller's guarantees are run's.
            unsafe {
                match rows {
                    1 => self.run::<1, NV>(),
                    2 => self.run::<2, NV>(),
                    3 => self.run::<3, NV>(),
                    4 => self.run::<4, NV>(),
                    5 => self.run::<5, NV>(),
                    6 => self.run::<6, NV>(),
                    7 => self.run::<7, NV>(),
                    8 => self.run::<8, NV>(),
                    9 => self.run::<9, NV>(),
                    10 => self.run::<10, NV>(),
                    11 => self.run::<11, NV>(),
                    _ => self.run::<12, NV>(),
                }
            }
        }

        /// # Safety
        /// AVX-512F; `R` channels of weights (and bias) from `w`, the masked columns of
        /// every tap readable from `q`, and writable at `out + r * out_channel_step`.
        #[target_feature(enable = "avx512f")]
        #[inline]
        unsafe fn run<const R: usize, const NV: usize>(&self) {
            let mut acc = [[_mm512_setzero_ps(); NV]; R];
            if let Some(b) = self.bias {
                for (r, row) in acc.iter_mut().enumerate() {
                    // SAFETY: the bias covers the tile's channels.
                    *row = [_mm512_set1_ps(unsafe { *b.add(r) }); NV];
                }
            }
            for p in 0..self.taps {
                let mut bv = [_mm512_setzero_ps(); NV];
                for (v, x) in bv.iter_mut().enumerate() {
                    // SAFETY: the tap's offset, then its masked columns (caller's guarantee).
                    *x = unsafe {
                        let bp = self.q.add(*self.offsets.add(p));
                        _mm512_maskz_loadu_ps(self.masks[v], bp.add(16 * v))
                    };
                }
                for (r, row) in acc.iter_mut().enumerate() {
                    // SAFETY: weight (r, p) of the tile.
                    let a = _mm512_set1_ps(unsafe { *self.w.add(r * self.taps + p) });
                    for (x, &b) in row.iter_mut().zip(&bv) {
                        *x = _mm512_fmadd_ps(a, b, *x);
                    }
                }
            }
            let zero = _mm512_setzero_ps();
            for (r, row) in acc.iter().enumerate() {
                for (v, &x) in row.iter().enumerate().take(NV) {
                    let y = _mm512_mask_max_ps(x, self.relu_lanes, x, zero);
                    // SAFETY: the masked columns of channel r (caller's guarantee).
                    unsafe {
                        _mm512_mask_storeu_ps(
                            self.out.add(r * self.out_channel_step + 16 * v),
                            self.masks[v],
                            y,
                        )
                    };
                }
            }
        }
    }

    /// `split_interior` compiled for AVX-512.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn split_interior_avx512(
        x: &[f32],
        g: &ConvGeom,
        lay: &super::SplitLayout,
        q: &mut [f32],
    ) {
        // SAFETY: AVX-512F is available (the caller's guarantee).
        if unsafe { split_narrow_avx512(x, g, lay, q) || split_narrow_stride2_avx512(x, g, lay, q) }
        {
            return;
        }
        split_image::<{ super::COPY_AVX512 }>(x, g, lay, q, false)
    }

    /// Longest padded row `split_narrow_avx512` takes (its lane tables' size).
    const NARROW_MAX_ROW: usize = 32;

    /// The stride-1 split of an image whose padded rows are short: each
    /// channel's padded plane from its first pixel to its last is filled 16
    /// positions at a time, the image's floats loaded in a row and spread onto
    /// the lanes that fall inside its columns (`vexpandps`), zeros onto the
    /// padding between (which holds zeros already). A row at a time took about
    /// 10 cycles per row of 5 floats. Returns false, having written nothing,
    /// where it does not apply.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    unsafe fn split_narrow_avx512(
        x: &[f32],
        g: &ConvGeom,
        lay: &super::SplitLayout,
        q: &mut [f32],
    ) -> bool {
        let row = lay.qw;
        let (lo, hi) = (g.pad, g.pad + g.w);
        let applies = lay.stride == 1
            && row <= NARROW_MAX_ROW
            && hi <= row
            && g.h > 0
            && g.w > 0
            && g.pad + g.h <= lay.ph
            && q.len() >= lay.len()
            && x.len() >= g.in_c * g.h * g.w;
        if !applies {
            return false;
        }
        // By column r of a vector's first lane: inside[r], its lanes on image
        // columns ((r + j) mod row in [lo, hi)); count[r], how many; next[r],
        // the column 16 positions on.
        let mut inside = [0 as __mmask16; NARROW_MAX_ROW];
        let mut count = [0u32; NARROW_MAX_ROW];
        let mut next = [0u8; NARROW_MAX_ROW];
        for r in 0..row {
            inside[r] = (0..16)
                .filter(|j| ((r + j) % row).wrapping_sub(lo) < hi - lo)
                .fold(0, |m, j| m | 1 << j);
            count[r] = inside[r].count_ones();
            next[r] = ((r + 16) % row) as u8;
        }
        let plane = lay.plane();
        let (first, end) = (g.pad * row + lo, (g.pad + g.h - 1) * row + hi);
        for c in 0..g.in_c {
            let src = x[c * g.h * g.w..].as_ptr();
            let dst = q[c * plane..].as_mut_ptr();
            let (mut at, mut col, mut taken) = (first, lo, 0);
            while at < end {
                let lanes = (end - at).min(16);
                let in_range = ((1u32 << lanes) - 1) as __mmask16;
                let (spread, n) = if lanes == 16 {
                    (inside[col], count[col])
                } else {
                    let m = inside[col] & in_range;
                    (m, m.count_ones())
                };
                let load = ((1u32 << n) - 1) as __mmask16;
                // SAFETY: positions first..end of the plane hold the image's h * w
                // floats, so `taken + n <= h * w` (inside x's channel), and
                // at + lanes <= end <= plane (inside q's, checked above).
                unsafe {
                    let v = _mm512_maskz_loadu_ps(load, src.add(taken));
                    let spread_v = _mm512_maskz_expand_ps(spread, v);
                    _mm512_mask_storeu_ps(dst.add(at), in_range, spread_v);
                }
                taken += n as usize;
                at += 16;
                col = usize::from(next[col]);
            }
            debug_assert_eq!(taken, g.h * g.w);
        }
        true
    }

    /// The stride-2 split of an image at most 32 columns wide: each image row
    /// loaded whole (two vectors), its even and odd columns gathered by two
    /// `vpermt2ps` and stored into their phase rows, as `deinterleave_row`
    /// places them. Row by row that loop spent longer on its bookkeeping than
    /// on the 16 or fewer floats of each phase. Returns false, having written
    /// nothing, where it does not apply.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    unsafe fn split_narrow_stride2_avx512(
        x: &[f32],
        g: &ConvGeom,
        lay: &super::SplitLayout,
        q: &mut [f32],
    ) -> bool {
        let qw = lay.qw;
        let applies = lay.stride == 2
            && g.w > 0
            && g.w <= 32
            && g.h > 0
            && g.pad + g.h <= lay.ph
            && q.len() >= lay.len()
            && x.len() >= g.in_c * g.h * g.w;
        if !applies {
            return false;
        }
        // Where even and odd image columns land (`deinterleave_row`): padded
        // column e + pad is phase (e + pad) % 2, position (e + pad) / 2.
        let half = g.pad / 2;
        let (even_phase, even_at, odd_at) = if g.pad.is_multiple_of(2) {
            (0, half, half)
        } else {
            (1, half, half + 1)
        };
        let (even_at, odd_at) = (even_at.min(qw), odd_at.min(qw));
        let evens = g.w.div_ceil(2).min(qw - even_at);
        let odds = (g.w / 2).min(qw - odd_at);
        let lanes = |n: usize| ((1u32 << n.min(16)) - 1) as __mmask16;
        let (load_lo, load_hi) = (lanes(g.w), lanes(g.w.saturating_sub(16)));
        let (store_even, store_odd) = (lanes(evens), lanes(odds));
        let even_idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd_idx = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        for c in 0..g.in_c {
            for iy in 0..g.h {
                let src = x[(c * g.h + iy) * g.w..].as_ptr();
                // Padded row iy + pad: its phase rows, even phase first.
                let row = ((c * lay.ph + iy + g.pad) * 2) * qw;
                let (even_row, odd_row) = if even_phase == 0 {
                    (row, row + qw)
                } else {
                    (row + qw, row)
                };
                // SAFETY: the loads take the row's w floats (inside x, checked
                // above); the stores write `evens` and `odds` floats from
                // even_at and odd_at of phase rows of qw floats, inside q.
                unsafe {
                    let lo = _mm512_maskz_loadu_ps(load_lo, src);
                    let hi = _mm512_maskz_loadu_ps(load_hi, src.add(16));
                    let even = _mm512_permutex2var_ps(lo, even_idx, hi);
                    let odd = _mm512_permutex2var_ps(lo, odd_idx, hi);
                    let dst = q.as_mut_ptr();
                    _mm512_mask_storeu_ps(dst.add(even_row + even_at), store_even, even);
                    _mm512_mask_storeu_ps(dst.add(odd_row + odd_at), store_odd, odd);
                }
            }
        }
        true
    }

    /// `dst = src` (equal lengths) in 16-float moves, the last one masked.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(super) unsafe fn copy_floats_avx512(dst: &mut [f32], src: &[f32]) {
        let n = dst.len().min(src.len());
        let (d, s) = (dst.as_mut_ptr(), src.as_ptr());
        let mut i = 0;
        while i + 16 <= n {
            // SAFETY: i + 16 <= n, within both slices.
            unsafe { _mm512_storeu_ps(d.add(i), _mm512_loadu_ps(s.add(i))) };
            i += 16;
        }
        if i < n {
            // 1..=15 lanes; masked-off lanes are neither read nor written.
            let k: __mmask16 = (1u16 << (n - i)) - 1;
            // SAFETY: the masked lanes are i..n, within both slices.
            unsafe { _mm512_mask_storeu_ps(d.add(i), k, _mm512_maskz_loadu_ps(k, s.add(i))) };
        }
    }

    /// `dst = src` (equal lengths) in 8-float moves, the last one masked.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(super) unsafe fn copy_floats_avx2(dst: &mut [f32], src: &[f32]) {
        let n = dst.len().min(src.len());
        let (d, s) = (dst.as_mut_ptr(), src.as_ptr());
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: i + 8 <= n, within both slices.
            unsafe { _mm256_storeu_ps(d.add(i), _mm256_loadu_ps(s.add(i))) };
            i += 8;
        }
        if i < n {
            // 1..=7 lanes: lane j is on when j < n - i (the mask's sign bits).
            let left = (n - i) as i32;
            let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(left), lanes);
            // SAFETY: the masked lanes are i..n, within both slices; maskload
            // and maskstore touch no masked-off lane.
            unsafe {
                let v = _mm256_maskload_ps(s.add(i), mask);
                _mm256_maskstore_ps(d.add(i), mask, v);
            }
        }
    }

    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn column_sums_avx512(rows: &[f32], width: usize, sums: &mut [f32]) {
        column_sums_body(rows, width, sums)
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn column_sums_avx2(rows: &[f32], width: usize, sums: &mut [f32]) {
        column_sums_body(rows, width, sums)
    }

    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn depthwise_avx512(a: &DwArgs<'_>, out: &mut [f32]) {
        if a.lay.stride != 1 {
            if a.fits_strided_3x3(out.len()) {
                // SAFETY: AVX-512F is enabled here; the reads and writes were checked.
                return unsafe { depthwise3x3_strided_avx512(a, out) };
            }
            return depthwise_body::<true>(a, out);
        }
        if a.g.kh == 3 && a.g.kw == 3 {
            // SAFETY: AVX-512F is enabled here (the caller's guarantee).
            return unsafe { depthwise3x3_avx512(a, out) };
        }
        // Stride 1: output rows in pairs, 64 columns at a time (8 FMA chains, each
        // input vector loaded once for both rows); the rest as single rows.
        let g = a.g;
        let taps = g.kh * g.kw;
        let plane_q = a.lay.plane();
        let step = a.lay.row_step();
        for c in 0..g.in_c {
            let w = &a.weight[c * taps..(c + 1) * taps];
            let b0 = a.bias.map_or(0.0, |b| b[c]);
            let plane = &mut out[c * g.oh * g.ow..(c + 1) * g.oh * g.ow];
            let mut oy = 0;
            while oy + 2 <= g.oh {
                let base = c * plane_q + oy * step;
                let (row0, row1) = plane[oy * g.ow..(oy + 2) * g.ow].split_at_mut(g.ow);
                let mut ox = 0;
                // 64 columns at a time, then narrower pair chunks (each runs at most once), then
                // the last columns (< 16) as single rows.
                for nv in [4usize, 3, 2, 1] {
                    while ox + 16 * nv <= g.ow {
                        let at = base + ox;
                        // The last vector read: row oy+1's bottom tap row, last tap, last column.
                        let last = at + g.kh * step + (g.kw - 1) + 16 * nv;
                        if last > a.q.len() {
                            break;
                        }
                        let (o0, o1) = (row0.as_mut_ptr(), row1.as_mut_ptr());
                        // SAFETY: AVX-512F is enabled here; every read is below `last` <=
                        // q.len(), and rows 0/1 hold at least ox + 16 * nv floats.
                        unsafe {
                            let (q, o0, o1) = (a.q.as_ptr().add(at), o0.add(ox), o1.add(ox));
                            match nv {
                                4 => pair::<4>(q, step, g.kh, g.kw, w, b0, a.relu, o0, o1),
                                3 => pair::<3>(q, step, g.kh, g.kw, w, b0, a.relu, o0, o1),
                                2 => pair::<2>(q, step, g.kh, g.kw, w, b0, a.relu, o0, o1),
                                _ => pair::<1>(q, step, g.kh, g.kw, w, b0, a.relu, o0, o1),
                            }
                        };
                        ox += 16 * nv;
                    }
                }
                dw_row::<true>(a.q, base, a.offsets, w, b0, a.relu, row0, ox);
                dw_row::<true>(a.q, base + step, a.offsets, w, b0, a.relu, row1, ox);
                oy += 2;
            }
            if oy < g.oh {
                let base = c * plane_q + oy * step;
                let row = &mut plane[oy * g.ow..(oy + 1) * g.ow];
                dw_row::<true>(a.q, base, a.offsets, w, b0, a.relu, row, 0);
            }
        }
    }

    /// Stride-1 3x3 depthwise: per channel the nine weights stay in registers, and
    /// output rows go in blocks of four (six input rows loaded once for all four:
    /// half a load per FMA), 32 columns at a time, the last columns masked; rows
    /// narrower than a vector as one flat run of positions instead.
    ///
    /// # Safety
    /// AVX-512F; `a.lay` is the stride-1 split layout of `a.g` (kh = kw = 3) and `a.q`
    /// holds it; `out` holds `in_c * oh * ow` floats.
    #[target_feature(enable = "avx512f")]
    unsafe fn depthwise3x3_avx512(a: &DwArgs<'_>, out: &mut [f32]) {
        let g = a.g;
        let step = a.lay.row_step();
        if g.in_c == 0 || g.oh == 0 || g.ow == 0 {
            return;
        }
        if !a.fits_3x3(out.len()) {
            return depthwise_body::<true>(a, out);
        }
        if g.ow < 16 && g.oh * step <= 16 * FLAT_MAX_VECTORS {
            // SAFETY: as this function's contract; `fits_3x3` checked above.
            return unsafe { depthwise3x3_flat_avx512(a, out) };
        }
        // SAFETY: as above.
        unsafe { depthwise3x3_rows_avx512(a, out) }
    }

    /// Channel `c`'s nine 3x3 weights and its bias (0 without one), each
    /// broadcast to a vector: what every 3x3 depthwise kernel here keeps in
    /// registers for a channel.
    ///
    /// # Safety
    /// AVX-512F; `a.weight` holds channel c's nine weights (and `a.bias` c's).
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn channel_3x3(a: &DwArgs<'_>, c: usize) -> ([__m512; 9], __m512) {
        let w = std::array::from_fn(|t| _mm512_set1_ps(a.weight[c * 9 + t]));
        (w, _mm512_set1_ps(a.bias.map_or(0.0, |b| b[c])))
    }

    /// Strided 3x3 depthwise (the split layout makes each tap's inputs along
    /// an output row contiguous): per channel the nine weights broadcast once,
    /// then each output row 16 columns at a time, the last ones masked. The
    /// generic kernel it replaces spent most of its time per row on the rows
    /// of 4 to 16 outputs of small models' stride-2 blocks.
    ///
    /// # Safety
    /// AVX-512F; `a.fits_strided_3x3(out.len())`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn depthwise3x3_strided_avx512(a: &DwArgs<'_>, out: &mut [f32]) {
        let g = a.g;
        let (plane_q, step, plane_o) = (a.lay.plane(), a.lay.row_step(), g.oh * g.ow);
        let offsets: [usize; 9] = std::array::from_fn(|t| a.offsets[t]);
        let relu_lanes: __mmask16 = if a.relu { 0xffff } else { 0 };
        let zero = _mm512_setzero_ps();
        for c in 0..g.in_c {
            // SAFETY: AVX-512F; the weights (and bias) cover every channel.
            let (w, bias) = unsafe { channel_3x3(a, c) };
            // SAFETY: lane ox of output row oy reads tap t at c * plane +
            // offsets[t] + oy * step + ox and writes c * plane_o + oy * ow +
            // ox, for ox < ow: inside `q` and `out` (`fits_strided_3x3`).
            unsafe {
                let q = a.q.as_ptr().add(c * plane_q);
                let o = out.as_mut_ptr().add(c * plane_o);
                for oy in 0..g.oh {
                    let row = q.add(oy * step);
                    let mut ox = 0;
                    while ox < g.ow {
                        let m = ((1u32 << (g.ow - ox).min(16)) - 1) as __mmask16;
                        // The generic kernel's order: bias, then the taps in turn.
                        let mut acc = bias;
                        for (wt, &off) in w.iter().zip(&offsets) {
                            let x = _mm512_maskz_loadu_ps(m, row.add(off + ox));
                            acc = _mm512_fmadd_ps(*wt, x, acc);
                        }
                        let y = _mm512_mask_max_ps(acc, relu_lanes, acc, zero);
                        _mm512_mask_storeu_ps(o.add(oy * g.ow + ox), m, y);
                        ox += 16;
                    }
                }
            }
        }
    }

    /// Most vectors of one channel's flat output positions (`oh * step`) the
    /// narrow-row kernel takes: its lane masks live in a stack table.
    pub(super) const FLAT_MAX_VECTORS: usize = 128;

    /// Stride-1 3x3 depthwise over rows narrower than a vector: a channel's
    /// output positions taken as one flat run of the padded rows (position
    /// `i = oy * step + ox`, its taps at `q[i + ky * step + kx]`), 16 at a
    /// time, so a vector holds parts of several rows; lanes in the padding
    /// columns are neither loaded nor kept, and the rest are packed together
    /// (`vcompressps`) into the dense output. Rows of 5 (`ds-cnn-small`'s
    /// 25x5 maps) filled 5 lanes of 16 a row in the row kernel, 5 of 7 here.
    /// Each output takes its nine taps in the row kernel's order: the same bits.
    ///
    /// # Safety
    /// As `depthwise3x3_avx512`, with `a.fits_3x3(out.len())`, `ow < 16` and
    /// `oh * step <= 16 * FLAT_MAX_VECTORS`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn depthwise3x3_flat_avx512(a: &DwArgs<'_>, out: &mut [f32]) {
        let g = a.g;
        let (plane_q, step) = (a.lay.plane(), a.lay.row_step());
        let (plane_o, positions) = (g.oh * g.ow, g.oh * step);
        let vectors = positions.div_ceil(16);
        // The output lanes of each vector: inside the rows, left of the padding.
        let mut masks = [0 as __mmask16; FLAT_MAX_VECTORS];
        for (v, m) in masks.iter_mut().enumerate().take(vectors) {
            *m = (0..16)
                .filter(|j| {
                    let i = 16 * v + j;
                    i < positions && i % step < g.ow
                })
                .fold(0, |m, j| m | (1 << j));
        }
        // Every output once (`fits_3x3` checked step >= ow + 2): the packed
        // stores fill exactly one channel's plane.
        debug_assert_eq!(
            masks[..vectors]
                .iter()
                .map(|m| m.count_ones() as usize)
                .sum::<usize>(),
            plane_o
        );
        let relu_lanes: __mmask16 = if a.relu { 0xffff } else { 0 };
        let zero = _mm512_setzero_ps();
        for c in 0..g.in_c {
            // SAFETY: AVX-512F; the weights (and bias) cover every channel.
            let (w, bias) = unsafe { channel_3x3(a, c) };
            // SAFETY: a masked lane is output (oy, ox) of channel c, whose taps
            // `fits_3x3` checked inside `q`; the packed lanes of each vector
            // follow the ones before, `plane_o` in all, inside `out`.
            unsafe {
                let q = a.q.as_ptr().add(c * plane_q);
                let mut o = out.as_mut_ptr().add(c * plane_o);
                for (v, &m) in masks.iter().enumerate().take(vectors) {
                    let at = q.add(16 * v);
                    let mut acc = bias;
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let x = _mm512_maskz_loadu_ps(m, at.add(ky * step + kx));
                            acc = _mm512_fmadd_ps(w[ky * 3 + kx], x, acc);
                        }
                    }
                    let y = _mm512_mask_max_ps(acc, relu_lanes, acc, zero);
                    let kept = m.count_ones() as usize;
                    let packed = _mm512_maskz_compress_ps(m, y);
                    _mm512_mask_storeu_ps(o, ((1u32 << kept) - 1) as __mmask16, packed);
                    o = o.add(kept);
                }
            }
        }
    }

    /// `depthwise3x3_avx512` by rows: per channel the nine weights stay in
    /// registers, output rows in blocks of four.
    ///
    /// # Safety
    /// As `depthwise3x3_avx512`, with `a.fits_3x3(out.len())`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn depthwise3x3_rows_avx512(a: &DwArgs<'_>, out: &mut [f32]) {
        let g = a.g;
        let (plane_q, step) = (a.lay.plane(), a.lay.row_step());
        let plane_o = g.oh * g.ow;
        let relu_lanes: __mmask16 = if a.relu { 0xffff } else { 0 };
        for c in 0..g.in_c {
            // SAFETY: AVX-512F; the weights (and bias) cover every channel.
            let (w, bias) = unsafe { channel_3x3(a, c) };
            let k = Dw3 {
                w,
                bias,
                relu_lanes,
                step,
                ow: g.ow,
            };
            // SAFETY: the planes were checked above against the layout and the output.
            unsafe {
                let q = a.q.as_ptr().add(c * plane_q);
                let o = out.as_mut_ptr().add(c * plane_o);
                let mut oy = 0;
                while oy + 4 <= g.oh {
                    k.rows::<4>(q.add(oy * step), o.add(oy * g.ow));
                    oy += 4;
                }
                if oy + 2 <= g.oh {
                    k.rows::<2>(q.add(oy * step), o.add(oy * g.ow));
                    oy += 2;
                }
                if oy < g.oh {
                    k.rows::<1>(q.add(oy * step), o.add(oy * g.ow));
                }
            }
        }
    }

    /// One channel of a stride-1 3x3 depthwise conv, weights broadcast once.
    struct Dw3 {
        w: [__m512; 9],
        bias: __m512,
        relu_lanes: __mmask16,
        step: usize,
        ow: usize,
    }

    impl Dw3 {
        /// Output rows `0..R` (all columns) of the block whose top-left input is `q`.
        ///
        /// # Safety
        /// AVX-512F; `q` readable at `r * step + x` for r < R + 2, x < ow + 2; `o`
        /// writable at `i * ow + x` for i < R, x < ow.
        #[target_feature(enable = "avx512f")]
        #[inline]
        unsafe fn rows<const R: usize>(&self, q: *const f32, o: *mut f32) {
            let full = [0xffff as __mmask16; 2];
            let mut ox = 0;
            // SAFETY: every call covers columns ox.. below ow (masked at the end).
            unsafe {
                while ox + 32 <= self.ow {
                    self.block::<R, 2>(q.add(ox), o.add(ox), full);
                    ox += 32;
                }
                if ox + 16 <= self.ow {
                    self.block::<R, 1>(q.add(ox), o.add(ox), [0xffff]);
                    ox += 16;
                }
                if ox < self.ow {
                    let mask = ((1u32 << (self.ow - ox)) - 1) as __mmask16;
                    self.block::<R, 1>(q.add(ox), o.add(ox), [mask]);
                }
            }
        }

        /// `R` output rows x `16 * NV` columns (lanes outside `masks` untouched).
        ///
        /// # Safety
        /// As `rows`, for the masked lanes of these columns.
        #[target_feature(enable = "avx512f")]
        #[inline]
        unsafe fn block<const R: usize, const NV: usize>(
            &self,
            q: *const f32,
            o: *mut f32,
            masks: [__mmask16; NV],
        ) {
            let mut acc = [[self.bias; NV]; R];
            // Input row r feeds output row i with kernel row r - i.
            for r in 0..R + 2 {
                for kx in 0..3 {
                    let mut v = [_mm512_setzero_ps(); NV];
                    for (j, x) in v.iter_mut().enumerate() {
                        // SAFETY: masked lanes are inside row r (caller's guarantee).
                        *x = unsafe {
                            _mm512_maskz_loadu_ps(masks[j], q.add(r * self.step + kx + 16 * j))
                        };
                    }
                    for (i, row) in acc.iter_mut().enumerate() {
                        if r >= i && r - i < 3 {
                            let wv = self.w[(r - i) * 3 + kx];
                            for (x, &vj) in row.iter_mut().zip(&v) {
                                *x = _mm512_fmadd_ps(wv, vj, *x);
                            }
                        }
                    }
                }
            }
            let zero = _mm512_setzero_ps();
            for (i, row) in acc.iter().enumerate() {
                for (j, &x) in row.iter().enumerate() {
                    let y = _mm512_mask_max_ps(x, self.relu_lanes, x, zero);
                    // SAFETY: masked lanes are inside output row i (caller's guarantee).
                    unsafe { _mm512_mask_storeu_ps(o.add(i * self.ow + 16 * j), masks[j], y) };
                }
            }
        }
    }

    /// `16 * NV` columns of output rows `oy` and `oy + 1` of a stride-1 depthwise conv
    /// whose split input starts at `q` (tap (ky, kx) of row oy at `q + ky * step + kx`).
    ///
    /// # Safety
    /// AVX-512F; `q` readable up to `kh * step + kw - 1 + 16 * NV` floats, `w` holds
    /// `kh * kw` floats, `out0` / `out1` writable for `16 * NV` floats.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn pair<const NV: usize>(
        q: *const f32,
        step: usize,
        kh: usize,
        kw: usize,
        w: &[f32],
        b0: f32,
        relu: bool,
        out0: *mut f32,
        out1: *mut f32,
    ) {
        let mut acc0 = [_mm512_set1_ps(b0); NV];
        let mut acc1 = [_mm512_set1_ps(b0); NV];
        for r in 0..=kh {
            for kx in 0..kw {
                let mut v = [_mm512_setzero_ps(); NV];
                for (i, x) in v.iter_mut().enumerate() {
                    // SAFETY: within the readable range the caller guarantees.
                    *x = unsafe { _mm512_loadu_ps(q.add(r * step + kx + 16 * i)) };
                }
                if r < kh {
                    let wv = _mm512_set1_ps(w[r * kw + kx]);
                    for i in 0..NV {
                        acc0[i] = _mm512_fmadd_ps(wv, v[i], acc0[i]);
                    }
                }
                if r > 0 {
                    let wv = _mm512_set1_ps(w[(r - 1) * kw + kx]);
                    for i in 0..NV {
                        acc1[i] = _mm512_fmadd_ps(wv, v[i], acc1[i]);
                    }
                }
            }
        }
        let relu_lanes: __mmask16 = if relu { 0xffff } else { 0 };
        let zero = _mm512_setzero_ps();
        for i in 0..NV {
            let o0 = _mm512_mask_max_ps(acc0[i], relu_lanes, acc0[i], zero);
            let o1 = _mm512_mask_max_ps(acc1[i], relu_lanes, acc1[i], zero);
            // SAFETY: out0 / out1 writable for 64 floats.
            unsafe {
                _mm512_storeu_ps(out0.add(16 * i), o0);
                _mm512_storeu_ps(out1.add(16 * i), o1);
            }
        }
    }

    /// Output channels per register tile of the AVX2 direct convolution (x 16
    /// columns: 12 of the 16 ymm registers accumulate).
    const DIRECT_MR_AVX2: usize = 6;

    /// `conv_direct_avx512` for AVX2: tiles of up to 6 channels x 16 columns.
    ///
    /// # Safety
    /// AVX2 and FMA; as `conv_direct_avx512`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn conv_direct_avx2(c: &super::DirectConv<'_>, out: *mut f32) {
        if c.out_c == 0 || c.oh == 0 || c.ow == 0 {
            // Nothing to write (and a tile of zero channels would run as six).
            return;
        }
        let taps = c.offsets.len();
        // Equal channel tiles (32 channels as 6 + 6 + 5 + 5 + 5 + 5, not 6 x 5 + 2).
        let tiles = c.out_c.div_ceil(DIRECT_MR_AVX2).max(1);
        let (base_rows, extra) = (c.out_c / tiles, c.out_c % tiles);
        let relu_lanes = avx2::relu_lanes(c.relu);
        let (q, o) = (c.q.as_ptr(), out);
        for y in 0..c.oh {
            let mut x0 = 0;
            while x0 < c.ow {
                let cols = (c.ow - x0).min(16);
                let masks = [
                    avx2::first_lanes(cols),
                    avx2::first_lanes(cols.saturating_sub(8)),
                ];
                let mut c0 = 0;
                for t in 0..tiles {
                    let rows = base_rows + usize::from(t < extra);
                    let tile = DirectTileAvx2 {
                        taps,
                        offsets: c.offsets.as_ptr(),
                        // SAFETY (all three): inside q, the weights and out, as `fits` checked.
                        q: unsafe { q.add(y * c.row_step + x0) },
                        w: unsafe { c.weight.as_ptr().add(c0 * taps) },
                        bias: c.bias.map(|b| b[c0..].as_ptr()),
                        out: unsafe {
                            o.add(c.out_at + c0 * c.out_channel_step + y * c.out_row_step + x0)
                        },
                        out_channel_step: c.out_channel_step,
                        masks,
                        relu_lanes,
                    };
                    // SAFETY: rows <= DIRECT_MR_AVX2 channels from c0 < out_c, `cols`
                    // columns from x0 (full vectors only where all 8 columns are in).
                    unsafe {
                        match (cols, cols > 8) {
                            (16, _) => tile.run_rows::<2, false>(rows),
                            (_, true) => tile.run_rows::<2, true>(rows),
                            (8, false) => tile.run_rows::<1, false>(rows),
                            _ => tile.run_rows::<1, true>(rows),
                        }
                    }
                    c0 += rows;
                }
                x0 += cols;
            }
        }
    }

    /// One register tile of the AVX2 direct convolution: `R` output channels x up
    /// to 16 columns of one output row.
    struct DirectTileAvx2 {
        taps: usize,
        offsets: *const usize,
        /// The input at this tile's first column (tap offsets are added).
        q: *const f32,
        /// The first channel's weights (`taps` per channel).
        w: *const f32,
        bias: Option<*const f32>,
        out: *mut f32,
        out_channel_step: usize,
        /// Lanes of each vector inside the row (all ones).
        masks: [__m256i; 2],
        /// All ones with ReLU (see `avx2::relu`).
        relu_lanes: __m256,
    }

    impl DirectTileAvx2 {
        /// `run` for `rows` (1..=DIRECT_MR_AVX2) channels.
        ///
        /// # Safety
        /// As `run`.
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        unsafe fn run_rows<const NV: usize, const MASKED: bool>(&self, rows: usize) {
            // SAFETY: the caller's guarantees are run's.
            unsafe {
                match rows {
                    1 => self.run::<1, NV, MASKED>(),
                    2 => self.run::<2, NV, MASKED>(),
                    3 => self.run::<3, NV, MASKED>(),
                    4 => self.run::<4, NV, MASKED>(),
                    5 => self.run::<5, NV, MASKED>(),
                    _ => self.run::<6, NV, MASKED>(),
                }
            }
        }

        /// # Safety
        /// AVX2 and FMA; `R` channels of weights (and bias) from `w`; the first
        /// `8 * NV` columns (only the masked lanes when `MASKED`) of every tap
        /// readable from `q` and writable at `out + r * out_channel_step`.
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        unsafe fn run<const R: usize, const NV: usize, const MASKED: bool>(&self) {
            let mut acc = [[_mm256_setzero_ps(); NV]; R];
            if let Some(b) = self.bias {
                for (r, row) in acc.iter_mut().enumerate() {
                    // SAFETY: the bias covers the tile's channels.
                    *row = [_mm256_set1_ps(unsafe { *b.add(r) }); NV];
                }
            }
            for p in 0..self.taps {
                let mut bv = [_mm256_setzero_ps(); NV];
                for (v, x) in bv.iter_mut().enumerate() {
                    // SAFETY: the tap's offset, then its (masked) columns (caller's guarantee).
                    *x = unsafe {
                        let bp = self.q.add(*self.offsets.add(p)).wrapping_add(8 * v);
                        if MASKED {
                            _mm256_maskload_ps(bp, self.masks[v])
                        } else {
                            _mm256_loadu_ps(bp)
                        }
                    };
                }
                for (r, row) in acc.iter_mut().enumerate() {
                    // SAFETY: weight (r, p) of the tile.
                    let a = _mm256_set1_ps(unsafe { *self.w.add(r * self.taps + p) });
                    for (x, &b) in row.iter_mut().zip(&bv) {
                        *x = _mm256_fmadd_ps(a, b, *x);
                    }
                }
            }
            for (r, row) in acc.iter().enumerate() {
                for (v, &x) in row.iter().enumerate() {
                    let y = avx2::relu(x, self.relu_lanes);
                    let op = self.out.wrapping_add(r * self.out_channel_step + 8 * v);
                    // SAFETY: the (masked) columns of channel r (caller's guarantee).
                    unsafe {
                        if MASKED {
                            _mm256_maskstore_ps(op, self.masks[v], y)
                        } else {
                            _mm256_storeu_ps(op, y)
                        }
                    };
                }
            }
        }
    }

    /// `split_interior` compiled for AVX2.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn split_interior_avx2(
        x: &[f32],
        g: &ConvGeom,
        lay: &super::SplitLayout,
        q: &mut [f32],
    ) {
        split_image::<{ super::COPY_AVX2 }>(x, g, lay, q, false)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn depthwise_avx2(a: &DwArgs<'_>, out: &mut [f32]) {
        if a.lay.stride == 1 && a.g.kh == 3 && a.g.kw == 3 {
            // SAFETY: AVX2 and FMA are enabled here (the caller's guarantee).
            return unsafe { depthwise3x3_avx2(a, out) };
        }
        depthwise_body::<true>(a, out)
    }

    /// `depthwise3x3_avx512` for AVX2: the nine weights in nine ymm registers,
    /// output rows in blocks of four (six input rows loaded once for all four),
    /// 8 columns at a time, the last columns masked.
    ///
    /// # Safety
    /// AVX2 and FMA; as `depthwise3x3_avx512`.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn depthwise3x3_avx2(a: &DwArgs<'_>, out: &mut [f32]) {
        let g = a.g;
        let (plane_q, step) = (a.lay.plane(), a.lay.row_step());
        let plane_o = g.oh * g.ow;
        if g.in_c == 0 || g.oh == 0 || g.ow == 0 {
            return;
        }
        if !a.fits_3x3(out.len()) {
            return depthwise_body::<true>(a, out);
        }
        let relu_lanes = avx2::relu_lanes(a.relu);
        let tail = avx2::first_lanes(g.ow % 8);
        for c in 0..g.in_c {
            let mut w = [_mm256_setzero_ps(); 9];
            for (t, v) in w.iter_mut().enumerate() {
                *v = _mm256_set1_ps(a.weight[c * 9 + t]);
            }
            let k = Dw3Avx2 {
                w,
                bias: _mm256_set1_ps(a.bias.map_or(0.0, |b| b[c])),
                relu_lanes,
                tail,
                step,
                ow: g.ow,
            };
            // SAFETY: the planes were checked above against the layout and the output.
            unsafe {
                let q = a.q.as_ptr().add(c * plane_q);
                let o = out.as_mut_ptr().add(c * plane_o);
                let mut oy = 0;
                while oy + 4 <= g.oh {
                    k.rows::<4>(q.add(oy * step), o.add(oy * g.ow));
                    oy += 4;
                }
                if oy + 2 <= g.oh {
                    k.rows::<2>(q.add(oy * step), o.add(oy * g.ow));
                    oy += 2;
                }
                if oy < g.oh {
                    k.rows::<1>(q.add(oy * step), o.add(oy * g.ow));
                }
            }
        }
    }

    /// One channel of a stride-1 3x3 depthwise conv on AVX2.
    struct Dw3Avx2 {
        w: [__m256; 9],
        bias: __m256,
        /// All ones with ReLU (see `avx2::relu`).
        relu_lanes: __m256,
        /// Lanes of the last, partial vector of a row (`ow % 8` of them).
        tail: __m256i,
        step: usize,
        ow: usize,
    }

    impl Dw3Avx2 {
        /// Output rows `0..R` (all columns) of the block whose top-left input is `q`.
        ///
        /// # Safety
        /// AVX2 and FMA; `q` readable at `r * step + x` for r < R + 2, x < ow + 2;
        /// `o` writable at `i * ow + x` for i < R, x < ow.
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        unsafe fn rows<const R: usize>(&self, q: *const f32, o: *mut f32) {
            let mut ox = 0;
            // SAFETY: every call covers columns ox.. below ow (masked at the end).
            unsafe {
                while ox + 8 <= self.ow {
                    self.block::<R, false>(q.add(ox), o.add(ox));
                    ox += 8;
                }
                if ox < self.ow {
                    self.block::<R, true>(q.add(ox), o.add(ox));
                }
            }
        }

        /// `R` output rows x 8 columns (only the `tail` lanes when `MASKED`).
        ///
        /// # Safety
        /// As `rows`, for these columns.
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        unsafe fn block<const R: usize, const MASKED: bool>(&self, q: *const f32, o: *mut f32) {
            let mut acc = [self.bias; R];
            // Input row r feeds output row i with kernel row r - i.
            for r in 0..R + 2 {
                for kx in 0..3 {
                    let at = q.wrapping_add(r * self.step + kx);
                    // SAFETY: (masked) lanes are inside row r (caller's guarantee).
                    let v = unsafe {
                        if MASKED {
                            _mm256_maskload_ps(at, self.tail)
                        } else {
                            _mm256_loadu_ps(at)
                        }
                    };
                    for (i, x) in acc.iter_mut().enumerate() {
                        if r >= i && r - i < 3 {
                            *x = _mm256_fmadd_ps(self.w[(r - i) * 3 + kx], v, *x);
                        }
                    }
                }
            }
            for (i, &x) in acc.iter().enumerate() {
                let y = avx2::relu(x, self.relu_lanes);
                let at = o.wrapping_add(i * self.ow);
                // SAFETY: (masked) lanes are inside output row i (caller's guarantee).
                unsafe {
                    if MASKED {
                        _mm256_maskstore_ps(at, self.tail, y)
                    } else {
                        _mm256_storeu_ps(at, y)
                    }
                }
            }
        }
    }
}

/// `w * x + acc`, one rounding when the target has FMA (the call is then one instruction).
#[inline(always)]
fn madd<const FMA: bool>(w: f32, x: f32, acc: f32) -> f32 {
    if FMA {
        w.mul_add(x, acc)
    } else {
        w * x + acc
    }
}

/// `N` outputs of one row: accumulators stay in registers across all taps.
#[inline(always)]
fn dw_chunk<const N: usize, const FMA: bool>(
    q: &[f32],
    base: usize,
    offsets: &[usize],
    w: &[f32],
    b0: f32,
    relu: bool,
    out: &mut [f32],
) {
    let mut acc = [b0; N];
    for (&o, &wv) in offsets.iter().zip(w) {
        let src = &q[base + o..base + o + N];
        for i in 0..N {
            acc[i] = madd::<FMA>(wv, src[i], acc[i]);
        }
    }
    if relu {
        acc.iter_mut().for_each(|v| *v = v.max(0.0));
    }
    out[..N].copy_from_slice(&acc);
}

/// One output row from column `ox` on, in as few chunks as possible: each chunk's
/// accumulators are independent FMA chains, and one 16-wide chain would wait on
/// FMA latency.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn dw_row<const FMA: bool>(
    q: &[f32],
    base: usize,
    offsets: &[usize],
    w: &[f32],
    b0: f32,
    relu: bool,
    row: &mut [f32],
    mut ox: usize,
) {
    let ow = row.len();
    while ox + 64 <= ow {
        dw_chunk::<64, FMA>(q, base + ox, offsets, w, b0, relu, &mut row[ox..]);
        ox += 64;
    }
    if ox + 48 <= ow {
        dw_chunk::<48, FMA>(q, base + ox, offsets, w, b0, relu, &mut row[ox..]);
        ox += 48;
    }
    if ox + 32 <= ow {
        dw_chunk::<32, FMA>(q, base + ox, offsets, w, b0, relu, &mut row[ox..]);
        ox += 32;
    }
    while ox + 16 <= ow {
        dw_chunk::<16, FMA>(q, base + ox, offsets, w, b0, relu, &mut row[ox..]);
        ox += 16;
    }
    while ox + 4 <= ow {
        dw_chunk::<4, FMA>(q, base + ox, offsets, w, b0, relu, &mut row[ox..]);
        ox += 4;
    }
    while ox < ow {
        dw_chunk::<1, FMA>(q, base + ox, offsets, w, b0, relu, &mut row[ox..]);
        ox += 1;
    }
}

/// One generic body; the x86 entry points compile it with wider vectors and FMA.
#[inline(always)]
fn depthwise_body<const FMA: bool>(a: &DwArgs<'_>, out: &mut [f32]) {
    let g = a.g;
    let taps = g.kh * g.kw;
    let plane_q = a.lay.plane();
    let step = a.lay.row_step();
    for c in 0..g.in_c {
        let w = &a.weight[c * taps..(c + 1) * taps];
        let b0 = a.bias.map_or(0.0, |b| b[c]);
        for oy in 0..g.oh {
            let base = c * plane_q + oy * step;
            let row = &mut out[(c * g.oh + oy) * g.ow..(c * g.oh + oy + 1) * g.ow];
            dw_row::<FMA>(a.q, base, a.offsets, w, b0, a.relu, row, 0);
        }
    }
}

/// Largest reduction depth (input channels x kernel taps) the direct convolution
/// takes: a 32-column strip of every tap (8 KiB) then stays in L1 for all the
/// output-channel tiles that reuse it. Deeper convolutions pack B for the GEMM.
pub(crate) const DIRECT_CONV_MAX_TAPS: usize = 64;

/// A small-K convolution computed straight from its split-layout input, with no
/// packed copy of the patches: `out[c, y, x] = act(bias[c] + sum_p w[c, p] *
/// q[offsets[p] + y * row_step + x])`, written at `out_at + c * out_channel_step +
/// y * out_row_step + x` (a plain `[c, h, w]` image, or a padded layout).
pub(crate) struct DirectConv<'a> {
    pub q: &'a [f32],
    pub offsets: &'a [usize],
    pub row_step: usize,
    /// `[out_c][taps]`.
    pub weight: &'a [f32],
    pub bias: Option<&'a [f32]>,
    pub relu: bool,
    pub out_c: usize,
    pub oh: usize,
    pub ow: usize,
    pub out_at: usize,
    pub out_channel_step: usize,
    pub out_row_step: usize,
}

impl DirectConv<'_> {
    /// Output rows `rows` on their own: the same reads and writes as those rows
    /// of the whole convolution.
    pub(crate) fn rows(&self, rows: Range<usize>) -> Option<DirectConv<'_>> {
        if rows.start > rows.end || rows.end > self.oh {
            return None;
        }
        Some(DirectConv {
            q: self.q.get(rows.start * self.row_step..)?,
            oh: rows.len(),
            out_at: self.out_at + rows.start * self.out_row_step,
            ..*self
        })
    }

    /// Whether every read and write stays inside `q`, the weights and `out`.
    fn fits(&self, out_len: usize) -> bool {
        let taps = self.offsets.len();
        if self.out_c == 0 || self.oh == 0 || self.ow == 0 || taps == 0 {
            return true;
        }
        let max_off = self.offsets.iter().copied().max().unwrap_or(0);
        let last_read = max_off + (self.oh - 1) * self.row_step + self.ow - 1;
        let last_write = self.out_at
            + (self.out_c - 1) * self.out_channel_step
            + (self.oh - 1) * self.out_row_step
            + self.ow
            - 1;
        last_read < self.q.len()
            && last_write < out_len
            && self.weight.len() >= self.out_c * taps
            && self.bias.is_none_or(|b| b.len() >= self.out_c)
    }
}

/// Run `conv` directly if this SIMD level has the kernel (AVX-512, AVX2) and the
/// convolution is small enough; `false` means nothing was written (use the GEMM).
pub(crate) fn conv_direct(simd: SimdLevel, conv: &DirectConv<'_>, out: &mut [f32]) -> bool {
    // SAFETY: `out` is borrowed exclusively for the call.
    unsafe { conv_direct_shared(simd, conv, out.as_mut_ptr(), out.len()) }
}

/// `conv_direct` into an output other threads write too: each runs some rows
/// of one convolution (`DirectConv::rows`).
///
/// # Safety
/// `out` is valid for reads and writes of `out_len` floats, and no other thread
/// touches the elements `conv` writes while this runs.
pub(crate) unsafe fn conv_direct_shared(
    simd: SimdLevel,
    conv: &DirectConv<'_>,
    out: *mut f32,
    out_len: usize,
) -> bool {
    if !direct_conv_runs(simd, conv, out_len) {
        return false;
    }
    match simd {
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 => {
            // SAFETY: AVX-512F is available and `fits` bounds every access the
            // kernel makes (both checked by `direct_conv_runs`); exclusive by the
            // caller's guarantee.
            unsafe { x86::conv_direct_avx512(conv, out) };
            true
        }
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2Fma => {
            // SAFETY: AVX2 and FMA are available and `fits` bounds every access
            // (both checked by `direct_conv_runs`); exclusive by the caller's guarantee.
            unsafe { x86::conv_direct_avx2(conv, out) };
            true
        }
        _ => false,
    }
}

/// Whether `conv_direct` runs `conv` into an output of `out_len` floats.
pub(crate) fn direct_conv_runs(simd: SimdLevel, conv: &DirectConv<'_>, out_len: usize) -> bool {
    let kernel = match simd {
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 | SimdLevel::Avx2Fma => simd.is_supported(),
        _ => false,
    };
    kernel && conv.offsets.len() <= DIRECT_CONV_MAX_TAPS && conv.fits(out_len)
}

/// `sums[j] = sum over rows of rows[r * width + j]` (`rows.len()` a multiple of `width`).
pub(crate) fn column_sums(simd: SimdLevel, rows: &[f32], width: usize, sums: &mut [f32]) {
    match simd {
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 if simd.is_supported() => {
            // SAFETY: AVX-512F is available (checked just above).
            unsafe { x86::column_sums_avx512(rows, width, sums) }
        }
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2Fma if simd.is_supported() => {
            // SAFETY: AVX2 is available (checked just above).
            unsafe { x86::column_sums_avx2(rows, width, sums) }
        }
        _ => column_sums_body(rows, width, sums),
    }
}

#[inline(always)]
fn column_sums_body(rows: &[f32], width: usize, sums: &mut [f32]) {
    let sums = &mut sums[..width];
    sums.iter_mut().for_each(|v| *v = 0.0);
    for row in rows.chunks_exact(width) {
        sums.iter_mut().zip(row).for_each(|(s, &v)| *s += v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stride past the padded input is a typed shape error before any
    /// split layout is sized (a 10^9 stride on 7x7 once aborted asking for
    /// 192 GB); the largest accepted stride still builds a small layout.
    /// A conv with no output channels writes nothing on any level (the AVX2
    /// kernel had run a zero-channel tile as six: writes through the empty
    /// output's dangling pointer).
    #[test]
    fn an_empty_direct_conv_touches_nothing() {
        for simd in SimdLevel::supported() {
            let conv = DirectConv {
                q: &[0.5; 4],
                offsets: &[0],
                row_step: 1,
                weight: &[],
                bias: None,
                relu: true,
                out_c: 0,
                oh: 1,
                ow: 1,
                out_at: 0,
                out_channel_step: 1,
                out_row_step: 1,
            };
            let mut out: Vec<f32> = Vec::new();
            conv_direct(simd, &conv, &mut out);
            assert!(out.is_empty(), "{simd}");
        }
    }

    #[test]
    fn conv_stride_beyond_the_input_is_refused_not_allocated() {
        use crate::error::KernelError;
        use crate::graph::{infer_shape, Op, Tensor};
        let tensor = |shape: Vec<usize>| {
            let n = shape.iter().product();
            Tensor::new(shape, vec![0.0; n]).unwrap()
        };
        let standard = |stride| Op::Conv2d {
            weight: tensor(vec![16, 3, 3, 3]),
            bias: None,
            stride,
            padding: 1,
        };
        let depthwise = |stride| Op::DepthwiseConv2d {
            weight: tensor(vec![3, 3, 3]),
            bias: None,
            stride,
            padding: 1,
        };
        for op in [
            standard(1_000_000_000),
            depthwise(1_000_000_000),
            standard(10),
        ] {
            match infer_shape("conv", &op, &[&[3, 7, 7]]) {
                Err(KernelError::Shape { detail, .. }) => {
                    assert!(detail.contains("at most 9"), "{detail}")
                }
                other => panic!("expected a shape error, got {other:?}"),
            }
        }
        assert_eq!(
            infer_shape("conv", &standard(9), &[&[3, 7, 7]]).unwrap(),
            vec![16, 1, 1]
        );
        let lay = SplitLayout::new(&geom(3, 7, 7, 3, 9, 1));
        assert!(lay.len() <= 3 * 9 * 9 * 3, "{}", lay.len());
    }

    fn geom(c: usize, h: usize, w: usize, k: usize, stride: usize, pad: usize) -> ConvGeom {
        ConvGeom {
            in_c: c,
            h,
            w,
            out_c: c,
            kh: k,
            kw: k,
            stride,
            pad,
            oh: (h + 2 * pad - k) / stride + 1,
            ow: (w + 2 * pad - k) / stride + 1,
        }
    }

    /// Every tap of every output pixel reads the padded input it stands for.
    fn check_layout(g: &ConvGeom, lay: &SplitLayout, q: &[f32], x: &[f32]) {
        for c in 0..g.in_c {
            for ky in 0..g.kh {
                for kx in 0..g.kw {
                    for oy in 0..g.oh {
                        for ox in 0..g.ow {
                            let want = match (g.src(oy, ky, g.h), g.src(ox, kx, g.w)) {
                                (Some(iy), Some(ix)) => x[(c * g.h + iy) * g.w + ix],
                                _ => 0.0,
                            };
                            let at = lay.tap(c, ky, kx) + oy * lay.row_step() + ox;
                            assert_eq!(q[at], want, "{g:?} c {c} tap ({ky},{kx}) out ({oy},{ox})");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn split_layouts_hold_the_padded_input_at_every_tap() {
        // Widths below, at and past a vector's 8 or 16 lanes, with a masked tail.
        // 31 and 32: the stride-2 narrow split's widest rows (two vectors).
        for (h, w) in [
            (1, 1),
            (5, 7),
            (8, 9),
            (11, 16),
            (4, 17),
            (3, 31),
            (2, 32),
            (3, 37),
        ] {
            for (k, stride, pad) in [
                (3, 1, 1),
                (3, 2, 1),
                (3, 2, 0),
                (5, 2, 2),
                (3, 3, 1),
                (1, 1, 0),
            ] {
                if h + 2 * pad < k || w + 2 * pad < k {
                    continue;
                }
                let g = geom(2, h, w, k, stride, pad);
                let lay = SplitLayout::new(&g);
                let x: Vec<f32> = (0..2 * h * w).map(|i| i as f32 + 1.0).collect();
                // Garbage first: pad_split must overwrite the padding too.
                let mut q = vec![f32::NAN; lay.len()];
                pad_split(&x, &g, &lay, &mut q);
                check_layout(&g, &lay, &q, &x);
                // Over a zeroed buffer, writing only the image gives the same layout,
                // and again after a second image (the padding is never written).
                let mut q = vec![0.0; lay.len()];
                split_interior(SimdLevel::Portable, &x, &g, &lay, &mut q);
                check_layout(&g, &lay, &q, &x);
                let y: Vec<f32> = x.iter().map(|v| -v).collect();
                split_interior(SimdLevel::Portable, &y, &g, &lay, &mut q);
                check_layout(&g, &lay, &q, &y);
                // Each vector build of the same copies the CPU has.
                for simd in SimdLevel::ALL.into_iter().filter(|l| l.is_supported()) {
                    let mut q = vec![0.0; lay.len()];
                    split_interior(simd, &y, &g, &lay, &mut q);
                    check_layout(&g, &lay, &q, &y);
                }
            }
        }
    }

    /// Each SIMD build of the depthwise conv against the reference: 3x3 stride 1
    /// (rows narrower than a vector, a vector wide, and wider with a masked tail)
    /// and stride 2, with and without bias and ReLU.
    #[test]
    fn depthwise_matches_the_reference_on_every_simd_build() {
        let shapes = [
            (3, 1, 1),
            (2, 7, 1),
            (3, 25, 5),
            (4, 5, 7),
            (2, 9, 10),
            (2, 6, 11),
            (2, 4, 16),
            (2, 5, 37),
        ];
        for (c, h, w) in shapes {
            for (stride, relu, with_bias) in [(1, true, true), (1, false, false), (2, true, true)] {
                let g = geom(c, h, w, 3, stride, 1);
                let lay = SplitLayout::new(&g);
                let x: Vec<f32> = (0..c * h * w)
                    .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
                    .collect();
                let weight: Vec<f32> = (0..c * 9)
                    .map(|i| ((i * 13 % 17) as f32 - 8.0) / 8.0)
                    .collect();
                let bias: Vec<f32> = (0..c).map(|i| i as f32 * 0.25 - 0.3).collect();
                let bias = with_bias.then_some(&bias[..]);
                let mut want = vec![0.0; c * g.oh * g.ow];
                crate::reference::depthwise(&x, &g, &weight, bias, &mut want);
                if relu {
                    want.iter_mut().for_each(|v| *v = v.max(0.0));
                }
                let mut q = vec![0.0; lay.len()];
                pad_split(&x, &g, &lay, &mut q);
                let offsets = lay.depthwise_offsets(&g);
                for simd in SimdLevel::ALL.into_iter().filter(|l| l.is_supported()) {
                    // NaN first: every output must be written.
                    let mut got = vec![f32::NAN; want.len()];
                    depthwise(simd, &q, &lay, &offsets, &g, &weight, bias, relu, &mut got);
                    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                            "{simd:?} {g:?} relu {relu} output {i}: {a} vs {b}"
                        );
                    }
                }
            }
        }
    }

    /// The narrow-row depthwise kernel (flat runs of positions, lanes packed
    /// by `vcompressps`) against the row kernel: every output written, with
    /// the same bits, whatever the width below a vector.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn narrow_rows_depthwise_gives_the_row_kernels_bits() {
        if !SimdLevel::Avx512.is_supported() {
            eprintln!("skipped: no AVX-512 on this CPU");
            return;
        }
        for (c, h, w) in [
            (1, 1, 1),
            (3, 25, 5),
            (2, 2, 15),
            (4, 49, 10),
            (2, 7, 3),
            (3, 64, 14),
        ] {
            with_depthwise_case(c, h, w, 1, |args| {
                let g = args.g;
                assert!(
                    g.oh * args.lay.row_step() <= 16 * super::x86::FLAT_MAX_VECTORS,
                    "{g:?} within the flat kernel's table"
                );
                let len = c * g.oh * g.ow;
                assert!(args.fits_3x3(len));
                let mut rows = vec![f32::NAN; len];
                let mut flat = vec![f32::NAN; len + 1];
                // SAFETY: AVX-512F checked above; the layout holds the padded
                // input and `fits_3x3` the reads and writes.
                unsafe {
                    super::x86::depthwise3x3_rows_avx512(args, &mut rows);
                    super::x86::depthwise3x3_flat_avx512(args, &mut flat);
                }
                assert_same_bits(&flat, &rows, &format!("{g:?} relu {}", args.relu));
            });
        }
    }

    /// A seeded 3x3 depthwise case (`c` channels of `h x w`, `stride`, pad 1)
    /// in split layout, handed to `check` with bias and ReLU, then without.
    #[cfg(target_arch = "x86_64")]
    fn with_depthwise_case(
        c: usize,
        h: usize,
        w: usize,
        stride: usize,
        check: impl Fn(&DwArgs<'_>),
    ) {
        let g = geom(c, h, w, 3, stride, 1);
        let lay = SplitLayout::new(&g);
        // Half-integer offsets: no product or sum lands on an exact zero.
        let x: Vec<f32> = (0..c * h * w)
            .map(|i| ((i * 37 % 101) as f32 - 50.5) / 25.0)
            .collect();
        let weight: Vec<f32> = (0..c * 9)
            .map(|i| ((i * 13 % 17) as f32 - 8.5) / 7.0)
            .collect();
        let bias: Vec<f32> = (0..c).map(|i| i as f32 * 0.3 - 0.35).collect();
        let mut q = vec![0.0; lay.len()];
        pad_split(&x, &g, &lay, &mut q);
        let offsets = lay.depthwise_offsets(&g);
        for (relu, bias) in [(true, Some(&bias[..])), (false, None)] {
            check(&DwArgs {
                q: &q,
                lay: &lay,
                offsets: &offsets,
                g: &g,
                weight: &weight,
                bias,
                relu,
            });
        }
    }

    /// `got`, one longer than `want`, holds `want`'s bits and nothing past them.
    #[cfg(target_arch = "x86_64")]
    fn assert_same_bits(got: &[f32], want: &[f32], what: &str) {
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert_eq!(a.to_bits(), b.to_bits(), "{what}: output {i}");
        }
        assert!(got[want.len()].is_nan(), "{what}: wrote past the output");
    }

    /// The strided 3x3 depthwise kernel against the generic one it replaces
    /// on AVX-512: the same bits, at strides 2 and 3, outputs from 1 to 19
    /// columns (a masked vector, a whole one, one and a tail).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn strided_depthwise_gives_the_generic_kernels_bits() {
        if !SimdLevel::Avx512.is_supported() {
            eprintln!("skipped: no AVX-512 on this CPU");
            return;
        }
        for (c, h, w, stride) in [
            (2, 1, 1, 2),
            (3, 9, 7, 2),
            (2, 32, 32, 2),
            (4, 5, 37, 2),
            (3, 11, 16, 3),
        ] {
            with_depthwise_case(c, h, w, stride, |args| {
                let g = args.g;
                let len = c * g.oh * g.ow;
                assert!(args.fits_strided_3x3(len), "{g:?}");
                let mut generic = vec![f32::NAN; len];
                depthwise_body::<true>(args, &mut generic);
                let mut strided = vec![f32::NAN; len + 1];
                // SAFETY: AVX-512F checked above; `fits_strided_3x3` the reads and writes.
                unsafe { super::x86::depthwise3x3_strided_avx512(args, &mut strided) };
                assert_same_bits(&strided, &generic, &format!("{g:?} relu {}", args.relu));
            });
        }
    }

    #[test]
    fn same_padded_stride_one_layouts_are_the_padded_image() {
        let g = geom(3, 6, 9, 3, 1, 1);
        let lay = SplitLayout::new(&g);
        assert!(lay.is_padded_image_of(&g));
        assert_eq!(lay.row_width(), 11);
        assert_eq!(lay.plane(), 8 * 11);
        // Input (iy, ix) of channel c sits at pad rows and columns in.
        let x: Vec<f32> = (0..3 * 6 * 9).map(|i| i as f32 + 1.0).collect();
        let mut q = vec![0.0; lay.len()];
        pad_split(&x, &g, &lay, &mut q);
        assert_eq!(
            q[2 * lay.plane() + (1 + 4) * 11 + 1 + 7],
            x[(2 * 6 + 4) * 9 + 7]
        );
        assert!(!SplitLayout::new(&geom(3, 6, 9, 3, 2, 1)).is_padded_image_of(&g));
        // Without padding the layout is the image itself.
        let valid = geom(3, 6, 9, 3, 1, 0);
        assert!(SplitLayout::new(&valid).is_padded_image_of(&valid));
    }
}
