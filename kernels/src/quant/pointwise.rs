//! int8 pointwise (1x1) convolution with pixels in the vector lanes.
//!
//! A pointwise conv over channel planes (`x[c * hw + p]`) is a GEMM with a
//! short reduction: k is the input channels, 32 or 64 in the models here.
//! Run as an ordinary GEMM (pixels as rows), its input must be transposed
//! into pixel rows and its output back into channel planes, and the 8 x 48
//! VNNI register tile spends about as long in its epilogue as in its 8 to 16
//! reduction steps (a fifth of the `vpdpbusd` peak for `convnet-224`).
//!
//! Here the pixels stay in the lanes instead. The input is quantized into
//! pixel quads: four consecutive channels of one pixel in one 32-bit lane,
//! which is what `vpdpbusd` multiplies together. Each output channel's four
//! weights are broadcast, and the output comes out in channel planes (or as
//! channel sums, for a global average pool) with no transpose on either side.
//! Blocks are 64 pixels x 4 channels, narrower and taller for bands of 32
//! pixels or fewer.
//! AVX-512 VNNI only: the other int8 paths run the GEMM.
//!
//! The epilogue is [`super::int8`]'s, operation for operation, so a plane
//! holds the bits the GEMM would write for the same quantized input.

use std::ops::Range;

use super::calibrate::ActivationQuant;
use super::int8::{Int8Epilogue, Int8Path, PackedWeightsS8};
use super::QuantError;

/// Pixels of the kernel's largest block; a quad row is padded to a multiple
/// of it, so the kernel always reads whole blocks (the padding's results
/// are dropped).
pub const PIXEL_BLOCK: usize = 64;

/// `k` channels of `len` pixels quantized into pixel quads: lane `p` of quad
/// row `q` holds channels `4q .. 4q + 4` of pixel `p` in its bytes, low byte
/// first; channels past `k` hold the zero point (their weights are zero).
#[derive(Debug, Clone, Default)]
pub struct PixelQuads {
    lanes: Vec<u32>,
    /// Quantized channel rows of one quad, `[4][len]`, before interleaving.
    rows: Vec<u8>,
    k: usize,
    len: usize,
    /// Lanes per quad row (`len` rounded up to [`PIXEL_BLOCK`]).
    stride: usize,
}

impl PixelQuads {
    /// Quantizes pixels `pixels` of the `k` planes of `x` (`x[c * hw + p]`)
    /// with `act`: each byte is `act.quantize_slice`'s.
    pub fn fill(
        &mut self,
        x: &[f32],
        hw: usize,
        pixels: Range<usize>,
        k: usize,
        act: ActivationQuant,
    ) -> Result<(), QuantError> {
        self.fill_on(x, hw, pixels, k, act, avx512_quantizes())
    }

    /// [`fill`](Self::fill), 16 pixels at a time in AVX-512 registers when
    /// `avx512` (the CPU must have avx512f/bw), channel by channel otherwise.
    fn fill_on(
        &mut self,
        x: &[f32],
        hw: usize,
        pixels: Range<usize>,
        k: usize,
        act: ActivationQuant,
        avx512: bool,
    ) -> Result<(), QuantError> {
        if pixels.start > pixels.end || pixels.end > hw {
            return Err(QuantError::Mismatch(format!(
                "pixels {pixels:?} outside planes of {hw} pixels"
            )));
        }
        let needed = if k == 0 { 0 } else { (k - 1) * hw + pixels.end };
        if x.len() < needed {
            return Err(QuantError::BufferTooSmall {
                name: "x",
                needed,
                actual: x.len(),
            });
        }
        let len = pixels.len();
        let quads = k.div_ceil(4);
        self.k = k;
        self.len = len;
        self.stride = len.div_ceil(PIXEL_BLOCK) * PIXEL_BLOCK;
        self.lanes.resize(quads * self.stride, 0);
        let plane = |c: usize| (c < k).then(|| &x[c * hw + pixels.start..c * hw + pixels.end]);
        #[cfg(target_arch = "x86_64")]
        if avx512 {
            for q in 0..quads {
                let lanes = &mut self.lanes[q * self.stride..q * self.stride + len];
                let planes: [Option<&[f32]>; 4] = std::array::from_fn(|i| plane(4 * q + i));
                // SAFETY: the CPU has the features (the caller's word);
                // every plane and `lanes` hold `len` elements.
                unsafe { x86::quantize_quads_avx512(planes, len, act, lanes) };
            }
            return Ok(());
        }
        // Elsewhere: each channel by `quantize_slice`, then interleaved.
        self.rows.resize(4 * len, 0);
        for q in 0..quads {
            for (i, row) in self.rows.chunks_exact_mut(len.max(1)).enumerate() {
                match plane(4 * q + i) {
                    Some(src) => act.quantize_slice(src, row),
                    None => row.fill(act.zero_point),
                }
            }
            let lanes = &mut self.lanes[q * self.stride..q * self.stride + len];
            interleave4(&self.rows, len, lanes);
        }
        Ok(())
    }

    pub fn k(&self) -> usize {
        self.k
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Reserves what `other` holds, so the next [`fill`](Self::fill) of its
    /// size does not allocate (a thread's scratch grown like another's).
    pub(crate) fn grow_like(&mut self, other: &PixelQuads) {
        crate::pool::reserve_like(&mut self.lanes, &other.lanes);
        crate::pool::reserve_like(&mut self.rows, &other.rows);
    }

    /// The lane of pixel `p` in quad row `q`.
    pub fn lane(&self, q: usize, p: usize) -> Option<u32> {
        (p < self.len)
            .then(|| self.lanes.get(q * self.stride + p).copied())
            .flatten()
    }
}

/// Whether [`PixelQuads::fill`] quantizes in AVX-512 registers here.
fn avx512_quantizes() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// `lanes[p]` = bytes `rows[i * len + p]` for i = 0..4, low byte first.
fn interleave4(rows: &[u8], len: usize, lanes: &mut [u32]) {
    let (r0, rest) = rows.split_at(len);
    let (r1, rest) = rest.split_at(len);
    let (r2, r3) = rest.split_at(len);
    for (p, lane) in lanes.iter_mut().enumerate().take(len) {
        *lane = u32::from_le_bytes([r0[p], r1[p], r2[p], r3[p]]);
    }
}

/// Where [`pointwise_conv_u8s8`] writes.
pub enum PlanesOut<'a> {
    /// `out[c * ldo + p]`: output channel c of pixel p (`ldo >= len`).
    Planes { out: &'a mut [f32], ldo: usize },
    /// `sums[c]`: output channel c summed over the pixels (for a pool).
    ChannelSums(&'a mut [f32]),
}

/// The pointwise conv of `quads` (quantized with `ep.act`) by `packed`
/// (k x n, packed for the VNNI path): `y = (acc - za * colsum) * sa * ws +
/// bias`, then ReLU if `ep.relu`, as [`super::gemm_u8s8_f32`] computes it.
/// `UnsupportedPath` unless `packed` is the VNNI path's.
pub fn pointwise_conv_u8s8(
    quads: &PixelQuads,
    packed: &PackedWeightsS8,
    ep: Int8Epilogue<'_>,
    out: PlanesOut<'_>,
) -> Result<(), QuantError> {
    let (k, n, len) = (packed.k(), packed.n(), quads.len);
    let Some(panels) = packed
        .vnni_panels()
        .filter(|_| packed.path() == Int8Path::Vnni512)
    else {
        return Err(QuantError::UnsupportedPath(packed.path().name()));
    };
    if quads.k != k {
        return Err(QuantError::Mismatch(format!(
            "pixel quads of {} channels for weights of {k}",
            quads.k
        )));
    }
    ep.check(n)?;
    match &out {
        PlanesOut::Planes { out, ldo } => {
            if *ldo < len {
                return Err(QuantError::BadStride {
                    name: "ldo",
                    value: *ldo,
                    min: len,
                });
            }
            let needed = if n == 0 || len == 0 {
                0
            } else {
                (n - 1) * ldo + len
            };
            if out.len() < needed {
                return Err(QuantError::BufferTooSmall {
                    name: "out",
                    needed,
                    actual: out.len(),
                });
            }
        }
        PlanesOut::ChannelSums(sums) => {
            if sums.len() < n {
                return Err(QuantError::BufferTooSmall {
                    name: "sums",
                    needed: n,
                    actual: sums.len(),
                });
            }
        }
    }
    if n == 0 {
        return Ok(());
    }
    if len == 0 {
        if let PlanesOut::ChannelSums(sums) = out {
            sums[..n].fill(0.0);
        }
        return Ok(());
    }
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: the path is VNNI, which packing checked the CPU supports;
        // `panels` is the packed k_padded x ceil(n / 48) * 48 weights, the
        // quads hold k_padded / 4 rows of `stride` lanes (a multiple of the
        // block), `out` was checked for n channels of `len` pixels and the
        // epilogue for n scales (and biases).
        unsafe { x86::drive(quads, panels, packed, &ep, out) };
        Ok(())
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (panels, out);
        Err(QuantError::UnsupportedPath(packed.path().name()))
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Int8Epilogue, PackedWeightsS8, PixelQuads, PlanesOut, PIXEL_BLOCK};
    // Columns of one packed VNNI weight panel (`int8`'s layout:
    // `[panel][kp / 4][48][4]`).
    use crate::quant::int8::VNNI_PANEL_COLS as PANEL_COLS;
    use std::arch::x86_64::*;

    /// [`PixelQuads::fill`] of one quad row: four channel planes (`None`
    /// past k: the zero point) quantized 16 pixels at a time with
    /// `saturate_u8`'s operations (NaN to the zero point, clamp, round by
    /// the 1.5 * 2^23 trick) and packed into lanes, low byte first.
    ///
    /// # Safety
    /// The CPU supports avx512f/bw; each plane and `lanes` hold `len` elements.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) unsafe fn quantize_quads_avx512(
        planes: [Option<&[f32]>; 4],
        len: usize,
        act: super::ActivationQuant,
        lanes: &mut [u32],
    ) {
        let inv = _mm512_set1_ps(1.0 / act.scale);
        let zp = _mm512_set1_ps(f32::from(act.zero_point));
        let (zero, top) = (_mm512_setzero_ps(), _mm512_set1_ps(255.0));
        let magic = _mm512_set1_ps(12_582_912.0);
        let low_byte = _mm512_set1_epi32(0xff);
        let pad = _mm512_set1_epi32(i32::from(act.zero_point));
        for p in (0..len).step_by(16) {
            let mask = ((1u32 << (len - p).min(16)) - 1) as __mmask16;
            let mut packed = _mm512_setzero_si512();
            for (i, plane) in planes.iter().enumerate() {
                let byte = match plane {
                    Some(src) => {
                        // SAFETY: the mask's lanes are pixels p.. below len.
                        let x = unsafe { _mm512_maskz_loadu_ps(mask, src.as_ptr().add(p)) };
                        let t = _mm512_add_ps(_mm512_mul_ps(x, inv), zp);
                        let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(t, t);
                        let t = _mm512_mask_mov_ps(t, nan, zp);
                        let c = _mm512_min_ps(_mm512_max_ps(t, zero), top);
                        let bits = _mm512_castps_si512(_mm512_add_ps(c, magic));
                        _mm512_and_si512(bits, low_byte)
                    }
                    None => pad,
                };
                packed = _mm512_or_si512(
                    packed,
                    _mm512_sllv_epi32(byte, _mm512_set1_epi32(8 * i as i32)),
                );
            }
            // SAFETY: as for the loads.
            unsafe {
                _mm512_mask_storeu_epi32(lanes.as_mut_ptr().add(p) as *mut i32, mask, packed)
            };
        }
    }

    /// Every channel group against every block of pixels, in blocks of the
    /// shape the band's pixels fill: 64 pixels x 4 channels, or for bands
    /// of at most 32 or 16 pixels (a small model's last blocks: 4x4 maps),
    /// 32 x 8 or 16 x 16, so no accumulators are spent on lanes past the
    /// band. Always 16 accumulators.
    ///
    /// # Safety
    /// The CPU supports avx512f/bw/vnni; `panels` holds `packed`'s
    /// ceil(n / 48) panels of `kp * 48` bytes; `quads` has `kp / 4` rows;
    /// `out` holds n channels of `quads.len` pixels; `ep` has n scales (and
    /// biases).
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn drive(
        quads: &PixelQuads,
        panels: &[i8],
        packed: &PackedWeightsS8,
        ep: &Int8Epilogue<'_>,
        out: PlanesOut<'_>,
    ) {
        // SAFETY: the caller's contract.
        unsafe {
            match quads.len {
                0..=16 => drive_blocks::<1, 16>(quads, panels, packed, ep, out),
                17..=32 => drive_blocks::<2, 8>(quads, panels, packed, ep, out),
                _ => drive_blocks::<4, 4>(quads, panels, packed, ep, out),
            }
        }
    }

    /// [`drive`] in blocks of `16 * V` pixels x `C` channels.
    ///
    /// # Safety
    /// As [`drive`].
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    unsafe fn drive_blocks<const V: usize, const C: usize>(
        quads: &PixelQuads,
        panels: &[i8],
        packed: &PackedWeightsS8,
        ep: &Int8Epilogue<'_>,
        mut out: PlanesOut<'_>,
    ) {
        // A channel group never straddles two of the packing's weight panels,
        // and a block never reads past a quad row's padding.
        const { assert!(PANEL_COLS.is_multiple_of(C) && PIXEL_BLOCK.is_multiple_of(16 * V)) };
        let (len, stride) = (quads.len, quads.stride);
        let (kp, n, col_sums) = (packed.k_padded(), packed.n(), packed.col_sums());
        let (rows, za, relu) = (kp / 4, i32::from(ep.act.zero_point), ep.relu);
        let zero = _mm512_setzero_ps();
        for c0 in (0..n).step_by(C) {
            let channels = (n - c0).min(C);
            // The group lies in one panel, whose columns past n are zero
            // weights: all C are readable.
            let at = (c0 / PANEL_COLS) * kp * PANEL_COLS + (c0 % PANEL_COLS) * 4;
            let w = panels[at..].as_ptr();
            // Per channel, `PanelEpilogue`'s constants: `za * colsum` (the
            // accumulators start at its negation: the same i32, wrapping),
            // `sa * ws` and the bias; 0 past n.
            let of = |i: usize| (c0 + i < n).then_some(c0 + i);
            let init: [__m512i; C] = std::array::from_fn(|i| {
                let zsum = of(i).map_or(0, |c| za.wrapping_mul(col_sums[c]));
                _mm512_set1_epi32(zsum.wrapping_neg())
            });
            let mul: [__m512; C] = std::array::from_fn(|i| {
                _mm512_set1_ps(of(i).map_or(0.0, |c| ep.act.scale * ep.weight_scales[c]))
            });
            let bias: Option<[__m512; C]> = ep
                .bias
                .map(|b| std::array::from_fn(|i| _mm512_set1_ps(of(i).map_or(0.0, |c| b[c]))));
            let mut pooled = [zero; C];
            for p0 in (0..len).step_by(16 * V) {
                // SAFETY: rows `0..kp / 4` of the quads hold `stride` lanes, a
                // multiple of 64 (so of 16 * V) above p0; the group's weights
                // are inside its panel (the caller's contract).
                let acc =
                    unsafe { block::<V, C>(quads.lanes.as_ptr().add(p0), stride, rows, w, &init) };
                // Lanes of each vector inside the band (none past its end).
                let masks: [__mmask16; V] = std::array::from_fn(|v| {
                    let inside = len.saturating_sub(p0 + 16 * v).min(16);
                    ((1u32 << inside) - 1) as __mmask16
                });
                for (i, acc_i) in acc.iter().enumerate().take(channels) {
                    for (v, (a, &mask)) in acc_i.iter().zip(&masks).enumerate() {
                        if mask == 0 {
                            break;
                        }
                        // `int8::dequant_into`'s operations in its order; the
                        // accumulator started at -za * colsum. `max(0, y)`
                        // returns y for a NaN or either zero, as `relu_of`.
                        let mut y = _mm512_mul_ps(_mm512_cvtepi32_ps(*a), mul[i]);
                        if let Some(bias) = &bias {
                            y = _mm512_add_ps(y, bias[i]);
                        }
                        if relu {
                            y = _mm512_max_ps(zero, y);
                        }
                        match &mut out {
                            PlanesOut::Planes { out, ldo } => {
                                let at = (c0 + i) * *ldo + p0 + 16 * v;
                                // SAFETY: channel c0 + i < n and the mask's
                                // pixels are below len: inside the checked `out`.
                                unsafe { _mm512_mask_storeu_ps(out.as_mut_ptr().add(at), mask, y) };
                            }
                            PlanesOut::ChannelSums(_) => {
                                pooled[i] = _mm512_mask_add_ps(pooled[i], mask, pooled[i], y);
                            }
                        }
                    }
                }
            }
            if let PlanesOut::ChannelSums(sums) = &mut out {
                for (s, v) in sums[c0..c0 + channels].iter_mut().zip(&pooled) {
                    *s = _mm512_reduce_add_ps(*v);
                }
            }
        }
    }

    /// Sums of one block of `16 * V` pixels for `C` output channels over the
    /// whole reduction: per quad row, V pixel vectors, C broadcast weight
    /// quads and V * C `vpdpbusd`.
    ///
    /// # Safety
    /// The CPU supports avx512f/vnni; `lanes + q * stride` is readable for
    /// `16 * V` u32 and `w + q * 192` for `4 * C` bytes, for every q < rows.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    unsafe fn block<const V: usize, const C: usize>(
        lanes: *const u32,
        stride: usize,
        rows: usize,
        w: *const i8,
        init: &[__m512i; C],
    ) -> [[__m512i; V]; C] {
        let mut acc: [[__m512i; V]; C] = std::array::from_fn(|i| [init[i]; V]);
        for q in 0..rows {
            // SAFETY: the caller's contract.
            unsafe {
                let row = lanes.add(q * stride);
                let x: [__m512i; V] =
                    std::array::from_fn(|v| _mm512_loadu_si512(row.add(16 * v) as *const __m512i));
                let wq = w.add(q * 4 * PANEL_COLS);
                for (i, acc_i) in acc.iter_mut().enumerate() {
                    let quad = (wq.add(4 * i) as *const i32).read_unaligned();
                    let wb = _mm512_set1_epi32(quad);
                    for (a, xv) in acc_i.iter_mut().zip(&x) {
                        *a = _mm512_dpbusd_epi32(*a, *xv, wb);
                    }
                }
            }
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::gemm_u8s8_f32;
    use crate::quant::int8::k_padded;
    use rand::{Rng, SeedableRng};

    fn planes(k: usize, hw: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
        (0..k * hw)
            .map(|_| rng.random_range(-1.5f32..3.0))
            .collect()
    }

    #[test]
    fn quads_hold_each_pixels_quantized_channels_low_byte_first() {
        let act = ActivationQuant {
            scale: 0.02,
            zero_point: 77,
        };
        for (k, hw, pixels) in [
            (1, 1, 0..1),
            (3, 17, 2..17),
            (7, 40, 5..21),
            (9, 130, 0..130),
            (32, 700, 64..700),
        ] {
            let mut x = planes(k, hw, 9);
            // Past both ends of the range (clamped), and what has no byte.
            for (i, v) in x.iter_mut().enumerate() {
                *v = match i % 11 {
                    3 => *v * 4.0,
                    5 => -*v * 4.0,
                    7 => [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0][i / 11 % 4],
                    _ => *v,
                };
            }
            let paths = [false, true];
            for avx512 in paths.into_iter().filter(|&on| !on || avx512_quantizes()) {
                let mut q = PixelQuads::default();
                q.fill_on(&x, hw, pixels.clone(), k, act, avx512).unwrap();
                assert_eq!((q.k(), q.len()), (k, pixels.len()));
                for qr in 0..k.div_ceil(4) {
                    for (p, pixel) in pixels.clone().enumerate() {
                        let expected: [u8; 4] = std::array::from_fn(|i| {
                            let c = 4 * qr + i;
                            if c < k {
                                act.quantize(x[c * hw + pixel])
                            } else {
                                act.zero_point
                            }
                        });
                        assert_eq!(
                            q.lane(qr, p),
                            Some(u32::from_le_bytes(expected)),
                            "avx512 {avx512}, k {k}: quad {qr} pixel {p}"
                        );
                    }
                }
                assert_eq!(q.lane(0, pixels.len()), None);
            }
        }
    }

    #[test]
    fn quads_refuse_pixels_outside_the_planes() {
        let act = ActivationQuant {
            scale: 1.0,
            zero_point: 0,
        };
        let x = vec![0.0; 3 * 10];
        let mut q = PixelQuads::default();
        assert!(q.fill(&x, 10, 0..11, 3, act).is_err());
        assert!(q.fill(&x, 10, 0..10, 4, act).is_err());
        assert!(q.fill(&x, 10, 0..10, 3, act).is_ok());
    }

    /// The GEMM on pixel rows (the portable kernel: a second implementation)
    /// against the planes kernel on the same quantized input.
    #[test]
    fn planes_hold_the_bits_of_the_gemm_and_sums_add_them() {
        if !Int8Path::Vnni512.is_supported() {
            eprintln!("skipped: no AVX-512 VNNI on this CPU");
            return;
        }
        let mut rng = rand_pcg::Pcg64::seed_from_u64(5);
        let act = ActivationQuant {
            scale: 0.019,
            zero_point: 41,
        };
        let shapes = [
            (1, 1, 1),
            (3, 10, 15),
            (7, 5, 16),
            (32, 64, 17),
            (63, 48, 63),
            (65, 65, 65),
            (64, 100, 125),
            (5, 49, 200),
        ];
        for (k, n, len) in shapes {
            let hw = len + 3;
            let x = planes(k, hw, k as u64);
            let w: Vec<i8> = (0..k * n).map(|_| rng.random()).collect();
            let scales: Vec<f32> = (0..n).map(|_| rng.random_range(0.001f32..0.02)).collect();
            let bias: Vec<f32> = (0..n).map(|_| rng.random_range(-2.0f32..2.0)).collect();
            let vnni = PackedWeightsS8::pack(Int8Path::Vnni512, k, n, &w, n).unwrap();
            let portable = PackedWeightsS8::pack(Int8Path::Portable, k, n, &w, n).unwrap();
            let pixels = 2..2 + len;
            let mut quads = PixelQuads::default();
            quads.fill(&x, hw, pixels.clone(), k, act).unwrap();
            // Pixel rows for the GEMM, quantized element by element.
            let lda = k_padded(k);
            let mut a = vec![act.zero_point; len * lda];
            for (r, p) in pixels.clone().enumerate() {
                for c in 0..k {
                    a[r * lda + c] = act.quantize(x[c * hw + p]);
                }
            }
            for (relu, with_bias) in [(false, false), (true, false), (false, true), (true, true)] {
                let ep = Int8Epilogue {
                    act,
                    weight_scales: &scales,
                    bias: with_bias.then_some(&bias[..]),
                    relu,
                };
                let mut rows = vec![0.0f32; len * n];
                gemm_u8s8_f32(&a, lda, len, &portable, ep, &mut rows, n).unwrap();
                let ldo = len + 5;
                let mut out = vec![f32::NAN; n * ldo];
                pointwise_conv_u8s8(&quads, &vnni, ep, PlanesOut::Planes { out: &mut out, ldo })
                    .unwrap();
                for c in 0..n {
                    for p in 0..len {
                        assert_eq!(
                            out[c * ldo + p].to_bits(),
                            rows[p * n + c].to_bits(),
                            "k {k} n {n} len {len} relu {relu} bias {with_bias}: channel {c} pixel {p}"
                        );
                    }
                    // Past the band's pixels: untouched.
                    assert!(out[c * ldo + len..(c + 1) * ldo].iter().all(|v| v.is_nan()));
                }
                let mut sums = vec![f32::NAN; n + 1];
                pointwise_conv_u8s8(&quads, &vnni, ep, PlanesOut::ChannelSums(&mut sums)).unwrap();
                for c in 0..n {
                    let exact: f64 = (0..len).map(|p| f64::from(rows[p * n + c])).sum();
                    let magnitude: f64 = (0..len).map(|p| f64::from(rows[p * n + c]).abs()).sum();
                    let err = (f64::from(sums[c]) - exact).abs();
                    assert!(
                        err <= 1e-6 * magnitude.max(1.0),
                        "k {k} n {n} len {len}: channel {c} sum {} against {exact}",
                        sums[c]
                    );
                }
                assert!(sums[n].is_nan(), "past n: untouched");
            }
        }
    }

    #[test]
    fn the_kernel_refuses_other_paths_and_mismatched_buffers() {
        let act = ActivationQuant {
            scale: 0.1,
            zero_point: 3,
        };
        let (k, n, len) = (8, 6, 20);
        let x = planes(k, len, 1);
        let mut quads = PixelQuads::default();
        quads.fill(&x, len, 0..len, k, act).unwrap();
        let w = vec![1i8; k * n];
        let scales = vec![0.5f32; n];
        let ep = Int8Epilogue {
            act,
            weight_scales: &scales,
            bias: None,
            relu: false,
        };
        let portable = PackedWeightsS8::pack(Int8Path::Portable, k, n, &w, n).unwrap();
        let mut out = vec![0.0; n * len];
        fn planes_out(out: &mut [f32], ldo: usize) -> PlanesOut<'_> {
            PlanesOut::Planes { out, ldo }
        }
        assert!(matches!(
            pointwise_conv_u8s8(&quads, &portable, ep, planes_out(&mut out, len)),
            Err(QuantError::UnsupportedPath(_))
        ));
        if !Int8Path::Vnni512.is_supported() {
            return;
        }
        let vnni = PackedWeightsS8::pack(Int8Path::Vnni512, k, n, &w, n).unwrap();
        assert!(pointwise_conv_u8s8(&quads, &vnni, ep, planes_out(&mut out, len)).is_ok());
        assert!(pointwise_conv_u8s8(&quads, &vnni, ep, planes_out(&mut out, len - 1)).is_err());
        let mut short = vec![0.0; n * len - 1];
        assert!(pointwise_conv_u8s8(&quads, &vnni, ep, planes_out(&mut short, len)).is_err());
        assert!(
            pointwise_conv_u8s8(&quads, &vnni, ep, PlanesOut::ChannelSums(&mut [0.0; 5])).is_err()
        );
        let other =
            PackedWeightsS8::pack(Int8Path::Vnni512, k + 1, n, &vec![1i8; (k + 1) * n], n).unwrap();
        assert!(matches!(
            pointwise_conv_u8s8(&quads, &other, ep, planes_out(&mut out, len)),
            Err(QuantError::Mismatch(_))
        ));
    }
}
