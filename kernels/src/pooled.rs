//! A pointwise convolution whose output only feeds a global average pool, as
//! per-channel sums, on AVX2: the channels are the register tile's rows (the
//! packed `W^T` read by broadcasts) and the pixels its columns (each input
//! plane read as contiguous vectors), so the loads stream along the planes.
//! The other orientation (`gemm::sgemm_row_sums`, pixels as rows, on AVX-512)
//! broadcasts one float from each of `ic` planes per tile step; on AVX2's 16
//! registers that ran at about half the FMA rate here (2026-11-30).

use crate::gemm::{Bias, Epilogue, PackedB};
use crate::simd::SimdLevel;
use crate::spec::Activation;

/// Pixels per block: every channel tile reads the block's columns of all input
/// planes (32 planes x 128 pixels = 16 KiB) while they are in L1.
const PIXEL_BLOCK: usize = 128;

/// Output channels per register tile (x 16 pixels: 12 accumulators).
const TILE_ROWS: usize = 6;

/// One pooled pointwise convolution: `sums[o] += sum over pixels of
/// act(bias[o] + sum_c w[o, c] * planes[c * plane_len + px])`.
pub(crate) struct PooledPointwise<'a> {
    /// `W^T` (`ic x oc`) packed in one K slice.
    pub weights: &'a PackedB,
    /// `ic` planes `plane_len` apart, `pixels` adjacent floats each.
    pub planes: &'a [f32],
    pub plane_len: usize,
    pub pixels: usize,
    /// The pointwise conv's: a bias per output channel (or none), ReLU (or none).
    pub epilogue: Epilogue<'a>,
}

impl PooledPointwise<'_> {
    fn bias(&self) -> Option<&[f32]> {
        match self.epilogue.bias {
            Bias::PerColumn(b) => Some(b),
            _ => None,
        }
    }

    fn relu(&self) -> bool {
        self.epilogue.activation == Some(Activation::Relu)
    }

    /// Whether the kernel computes this epilogue (a bias per channel, ReLU or
    /// nothing), every read stays inside the planes, the packing and the bias,
    /// and the packing is one K slice (`[sliver][k][nr]`).
    fn fits(&self, sums_len: usize) -> bool {
        let (k, n, nr) = (self.weights.k(), self.weights.n(), self.weights.nr());
        let planes_end = k.saturating_sub(1) * self.plane_len + self.pixels;
        !matches!(self.epilogue.bias, Bias::PerRow(_))
            && matches!(self.epilogue.activation, None | Some(Activation::Relu))
            && k >= 1
            && nr >= 1
            && self.weights.is_one_slice()
            && self.weights.data().len() >= k * n.div_ceil(nr) * nr
            && planes_end <= self.planes.len()
            && sums_len >= n
            && self.bias().is_none_or(|b| b.len() >= n)
    }
}

/// Add the pooled sums of `job` to `sums` if this SIMD level has the kernel
/// (AVX2) and it computes the job's epilogue; `false` means nothing was done.
pub(crate) fn pooled_pointwise_sums(
    simd: SimdLevel,
    job: &PooledPointwise<'_>,
    sums: &mut [f32],
) -> bool {
    if simd != SimdLevel::Avx2Fma || !simd.is_supported() || !job.fits(sums.len()) {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: AVX2 and FMA are available and `fits` bounds every access.
        unsafe { x86::pooled_pointwise_avx2(job, sums) };
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{PooledPointwise, PIXEL_BLOCK, TILE_ROWS};
    use crate::simd::avx2;
    use std::arch::x86_64::*;

    /// # Safety
    /// AVX2 and FMA; `job.fits(sums.len())`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn pooled_pointwise_avx2(job: &PooledPointwise<'_>, sums: &mut [f32]) {
        let (k, n, nr) = (job.weights.k(), job.weights.n(), job.weights.nr());
        let w = job.weights.data().as_ptr();
        let relu_lanes = avx2::relu_lanes(job.relu());
        let mut px0 = 0;
        while px0 < job.pixels {
            let block = PIXEL_BLOCK.min(job.pixels - px0);
            // Channel tiles inside each nr-wide sliver of the packing, equal sized
            // (16 channels as 6 + 5 + 5).
            for sliver in 0..n.div_ceil(nr) {
                let cols = nr.min(n - sliver * nr);
                let tiles = cols.div_ceil(TILE_ROWS);
                let (base_rows, extra) = (cols / tiles, cols % tiles);
                let mut r0 = 0;
                for t in 0..tiles {
                    let rows = base_rows + usize::from(t < extra);
                    let ch0 = sliver * nr + r0;
                    let tile = Tile {
                        k,
                        // SAFETY: channel ch0's weight of input 0 in the packing (fits).
                        w: unsafe { w.add(sliver * k * nr + r0) },
                        w_step: nr,
                        planes: job.planes.as_ptr(),
                        plane_len: job.plane_len,
                        bias: job.bias().map(|b| b[ch0..].as_ptr()),
                        relu_lanes,
                    };
                    // SAFETY: rows channels from ch0 < n; pixels px0..px0 + block of
                    // every plane are inside `planes` (fits).
                    let tile_sums = unsafe { tile.run_rows(rows, px0, block) };
                    for (s, v) in sums[ch0..ch0 + rows].iter_mut().zip(tile_sums) {
                        *s += v;
                    }
                    r0 += rows;
                }
            }
            px0 += block;
        }
    }

    /// `R` output channels x the pixels of one block, 16 at a time.
    struct Tile {
        k: usize,
        /// Weight (channel 0 of the tile, input 0); input `p` is `p * w_step` on.
        w: *const f32,
        w_step: usize,
        planes: *const f32,
        plane_len: usize,
        bias: Option<*const f32>,
        /// All ones with ReLU (see `avx2::relu`).
        relu_lanes: __m256,
    }

    impl Tile {
        /// # Safety
        /// As `run`.
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        unsafe fn run_rows(&self, rows: usize, px0: usize, pixels: usize) -> [f32; TILE_ROWS] {
            // SAFETY: the caller's guarantees are run's.
            unsafe {
                match rows {
                    1 => self.run::<1>(px0, pixels),
                    2 => self.run::<2>(px0, pixels),
                    3 => self.run::<3>(px0, pixels),
                    4 => self.run::<4>(px0, pixels),
                    5 => self.run::<5>(px0, pixels),
                    _ => self.run::<6>(px0, pixels),
                }
            }
        }

        /// The tile's `R` channel sums over pixels `px0..px0 + pixels`.
        ///
        /// # Safety
        /// AVX2 and FMA; `R` channels of weights (`k` inputs, `w_step` apart) from
        /// `w` and of bias; those pixels of all `k` planes readable.
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        unsafe fn run<const R: usize>(&self, px0: usize, pixels: usize) -> [f32; TILE_ROWS] {
            let mut bias = [_mm256_setzero_ps(); R];
            if let Some(b) = self.bias {
                for (r, v) in bias.iter_mut().enumerate() {
                    // SAFETY: the bias covers the tile's channels.
                    *v = _mm256_set1_ps(unsafe { *b.add(r) });
                }
            }
            let mut sums = [_mm256_setzero_ps(); R];
            let mut px = px0;
            let end = px0 + pixels;
            // SAFETY (both calls): the 16 (or the masked) pixels from px are inside
            // the block the caller vouches for.
            while px + 16 <= end {
                let acc = unsafe { self.product::<R, false>(px, [_mm256_setzero_si256(); 2]) };
                self.add_rows(&acc, &bias, &mut sums, None);
                px += 16;
            }
            if px < end {
                let left = end - px;
                let masks = [
                    avx2::first_lanes(left),
                    avx2::first_lanes(left.saturating_sub(8)),
                ];
                let acc = unsafe { self.product::<R, true>(px, masks) };
                self.add_rows(&acc, &bias, &mut sums, Some(masks));
            }
            let mut out = [0.0f32; TILE_ROWS];
            for (o, v) in out.iter_mut().zip(sums) {
                // Horizontal sum of the 8 lanes.
                let half = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
                let quarter = _mm_add_ps(half, _mm_movehl_ps(half, half));
                let one = _mm_add_ss(quarter, _mm_shuffle_ps(quarter, quarter, 1));
                *o = _mm_cvtss_f32(one);
            }
            out
        }

        /// `R` channels x 16 pixels from `px` (only the masked lanes read when `MASKED`).
        ///
        /// # Safety
        /// As `run`, for these pixels.
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        unsafe fn product<const R: usize, const MASKED: bool>(
            &self,
            px: usize,
            masks: [__m256i; 2],
        ) -> [[__m256; 2]; R] {
            let mut acc = [[_mm256_setzero_ps(); 2]; R];
            let (mut bp, mut wp) = (self.planes.wrapping_add(px), self.w);
            for _ in 0..self.k {
                // SAFETY: 16 pixels (or the masked ones) of this plane, and the R
                // weights of this input (the caller's guarantee).
                unsafe {
                    let b = if MASKED {
                        [
                            _mm256_maskload_ps(bp, masks[0]),
                            _mm256_maskload_ps(bp.wrapping_add(8), masks[1]),
                        ]
                    } else {
                        [_mm256_loadu_ps(bp), _mm256_loadu_ps(bp.add(8))]
                    };
                    for (r, row) in acc.iter_mut().enumerate() {
                        let a = _mm256_set1_ps(*wp.add(r));
                        row[0] = _mm256_fmadd_ps(a, b[0], row[0]);
                        row[1] = _mm256_fmadd_ps(a, b[1], row[1]);
                    }
                }
                bp = bp.wrapping_add(self.plane_len);
                wp = wp.wrapping_add(self.w_step);
            }
            acc
        }

        /// `sums[r] += act(acc[r] + bias[r])`, both vectors folded into one, lanes
        /// outside `masks` left out (a pixel past the end would add act(bias)).
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        fn add_rows<const R: usize>(
            &self,
            acc: &[[__m256; 2]; R],
            bias: &[__m256; R],
            sums: &mut [__m256; R],
            masks: Option<[__m256i; 2]>,
        ) {
            for r in 0..R {
                let mut out = [_mm256_setzero_ps(); 2];
                for (v, o) in out.iter_mut().enumerate() {
                    let x = avx2::relu(_mm256_add_ps(acc[r][v], bias[r]), self.relu_lanes);
                    *o = match masks {
                        Some(m) => _mm256_and_ps(x, _mm256_castsi256_ps(m[v])),
                        None => x,
                    };
                }
                sums[r] = _mm256_add_ps(sums[r], _mm256_add_ps(out[0], out[1]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::MatRef;

    /// `job`'s sums, in f64, from `w` (`oc x ic`, the weights `job` packs).
    fn reference(job: &PooledPointwise<'_>, w: &[f32]) -> Vec<f64> {
        let (ic, oc) = (job.weights.k(), job.weights.n());
        (0..oc)
            .map(|o| {
                (0..job.pixels)
                    .map(|px| {
                        let dot: f64 = (0..ic)
                            .map(|c| {
                                w[o * ic + c] as f64 * job.planes[c * job.plane_len + px] as f64
                            })
                            .sum();
                        let y = dot + job.bias().map_or(0.0, |b| b[o] as f64);
                        if job.relu() {
                            y.max(0.0)
                        } else {
                            y
                        }
                    })
                    .sum()
            })
            .collect()
    }

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7919 + seed * 104_729) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    }

    #[test]
    fn sums_agree_with_the_reference_at_odd_shapes_and_tails() {
        // (ic, oc, pixels, extra floats per plane, nr): channel counts that split
        // into uneven tiles and several slivers, pixel tails of every kind (masked
        // vectors, past one block of 128), planes farther apart than their pixels.
        let cases = [
            (1, 1, 1, 0, 16),
            (3, 5, 7, 3, 8),
            (32, 64, 300, 0, 16),
            (32, 21, 17, 11, 16),
            (7, 16, 16, 0, 16),
            (5, 13, 131, 5, 8),
        ];
        for (ic, oc, pixels, extra, nr) in cases {
            let plane_len = pixels + extra;
            let w = values(oc * ic, 1);
            let planes = values(ic * plane_len, 2);
            let bias = values(oc, 3);
            // W^T (ic x oc): element (c, o) at o * ic + c.
            let packed = PackedB::pack(MatRef::transposed(&w, ic), ic, oc, 256, nr).unwrap();
            for (with_bias, relu) in [(true, true), (false, false), (true, false)] {
                let epilogue = Epilogue {
                    bias: if with_bias {
                        Bias::PerColumn(&bias)
                    } else {
                        Bias::None
                    },
                    activation: relu.then_some(Activation::Relu),
                };
                let job = PooledPointwise {
                    weights: &packed,
                    planes: &planes,
                    plane_len,
                    pixels,
                    epilogue,
                };
                // The kernel adds to what is there.
                let mut sums = vec![0.5f32; oc];
                let ran = pooled_pointwise_sums(SimdLevel::Avx2Fma, &job, &mut sums);
                assert_eq!(ran, SimdLevel::Avx2Fma.is_supported());
                if !ran {
                    assert!(sums.iter().all(|&s| s == 0.5));
                    continue;
                }
                let want = reference(&job, &w);
                for (o, (&got, &want)) in sums.iter().zip(&want).enumerate() {
                    let want = want + 0.5;
                    let scale = want.abs().max(pixels as f64);
                    assert!(
                        (got as f64 - want).abs() <= 1e-5 * scale,
                        "ic {ic} oc {oc} pixels {pixels} nr {nr} bias {with_bias} relu {relu}: \
                         channel {o} {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn declines_without_the_kernel_or_a_single_k_slice() {
        let (ic, oc, pixels) = (40, 8, 9);
        let w = values(oc * ic, 1);
        let planes = values(ic * pixels, 2);
        let one_slice = PackedB::pack(MatRef::transposed(&w, ic), ic, oc, 256, 16).unwrap();
        let two_slices = PackedB::pack(MatRef::transposed(&w, ic), ic, oc, 32, 16).unwrap();
        let job = |weights| PooledPointwise {
            weights,
            planes: &planes,
            plane_len: pixels,
            pixels,
            epilogue: Epilogue {
                bias: Bias::None,
                activation: Some(Activation::Relu),
            },
        };
        let mut sums = vec![0.0f32; oc];
        assert!(!pooled_pointwise_sums(
            SimdLevel::Portable,
            &job(&one_slice),
            &mut sums
        ));
        assert!(!pooled_pointwise_sums(
            SimdLevel::Avx2Fma,
            &job(&two_slices),
            &mut sums
        ));
        // Epilogues the kernel does not compute: a bias per pixel, GELU.
        let per_row = vec![0.0f32; pixels];
        for epilogue in [
            Epilogue {
                bias: Bias::PerRow(&per_row),
                activation: None,
            },
            Epilogue {
                bias: Bias::None,
                activation: Some(Activation::Gelu),
            },
        ] {
            let job = PooledPointwise {
                epilogue,
                ..job(&one_slice)
            };
            assert!(!pooled_pointwise_sums(SimdLevel::Avx2Fma, &job, &mut sums));
        }
        // Planes shorter than the pixels asked for: refused, not read past.
        let short = PooledPointwise {
            pixels: pixels + 1,
            ..job(&one_slice)
        };
        assert!(!pooled_pointwise_sums(
            SimdLevel::Avx2Fma,
            &short,
            &mut sums
        ));
        assert!(sums.iter().all(|&s| s == 0.0));
    }
}
