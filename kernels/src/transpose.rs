//! Matrix transpose between pixel-major and channel-major planes (the
//! quantized backend runs convolutions as `patches . W^T`, pixel-major, and
//! the rest of a convnet channel-major). Element by element, a 12544-pixel
//! plane cost about 1 ns per element: every element a separate load and store.
//! AVX 8x8 blocks move eight rows at a time in registers.

use crate::simd::SimdLevel;

/// `dst [cols x rows] = src [rows x cols]^T`, both row-major and dense.
pub(crate) fn transpose(simd: SimdLevel, src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    assert!(
        src.len() >= rows * cols && dst.len() >= rows * cols,
        "transpose: {rows}x{cols} needs {} elements (src {}, dst {})",
        rows * cols,
        src.len(),
        dst.len()
    );
    let (rows8, cols8) = (rows / 8 * 8, cols / 8 * 8);
    let mut done = false;
    #[cfg(target_arch = "x86_64")]
    if simd != SimdLevel::Portable && SimdLevel::Avx2Fma.is_supported() {
        // SAFETY: AVX is available (AVX2 implies it), and every 8x8 block read
        // and written lies inside the rows x cols matrices checked above.
        unsafe { x86::blocks8(src, rows8, cols8, rows, cols, dst) };
        done = true;
    }
    if !done {
        for r0 in (0..rows8).step_by(8) {
            for c0 in (0..cols8).step_by(8) {
                copy_block(src, rows, cols, dst, r0..r0 + 8, c0..c0 + 8);
            }
        }
    }
    // The edges: rows past the last whole block, then columns past it.
    copy_block(src, rows, cols, dst, rows8..rows, 0..cols);
    copy_block(src, rows, cols, dst, 0..rows8, cols8..cols);
}

/// `dst[c][r] = src[r][c]` for `r` in `rs`, `c` in `cs`, element by element.
fn copy_block(
    src: &[f32],
    rows: usize,
    cols: usize,
    dst: &mut [f32],
    rs: std::ops::Range<usize>,
    cs: std::ops::Range<usize>,
) {
    for r in rs {
        for c in cs.clone() {
            dst[c * rows + r] = src[r * cols + c];
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// The whole 8x8 blocks of `src [rows x cols]` into `dst [cols x rows]`.
    ///
    /// # Safety
    /// AVX available; `rows8 <= rows`, `cols8 <= cols`, both multiples of 8;
    /// `src` and `dst` hold `rows * cols` floats.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn blocks8(
        src: &[f32],
        rows8: usize,
        cols8: usize,
        rows: usize,
        cols: usize,
        dst: &mut [f32],
    ) {
        let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
        for r0 in (0..rows8).step_by(8) {
            for c0 in (0..cols8).step_by(8) {
                // SAFETY: rows r0..r0+8 and columns c0..c0+8 are inside src, and
                // rows c0..c0+8, columns r0..r0+8 inside dst (caller's bounds).
                unsafe {
                    let ld = |i: usize| _mm256_loadu_ps(s.add((r0 + i) * cols + c0));
                    let (r0v, r1v, r2v, r3v) = (ld(0), ld(1), ld(2), ld(3));
                    let (r4v, r5v, r6v, r7v) = (ld(4), ld(5), ld(6), ld(7));
                    let t0 = _mm256_unpacklo_ps(r0v, r1v);
                    let t1 = _mm256_unpackhi_ps(r0v, r1v);
                    let t2 = _mm256_unpacklo_ps(r2v, r3v);
                    let t3 = _mm256_unpackhi_ps(r2v, r3v);
                    let t4 = _mm256_unpacklo_ps(r4v, r5v);
                    let t5 = _mm256_unpackhi_ps(r4v, r5v);
                    let t6 = _mm256_unpacklo_ps(r6v, r7v);
                    let t7 = _mm256_unpackhi_ps(r6v, r7v);
                    let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
                    let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
                    let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
                    let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
                    let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
                    let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
                    let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
                    let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
                    let st = |j: usize, v: __m256| _mm256_storeu_ps(d.add((c0 + j) * rows + r0), v);
                    st(0, _mm256_permute2f128_ps::<0x20>(u0, u4));
                    st(1, _mm256_permute2f128_ps::<0x20>(u1, u5));
                    st(2, _mm256_permute2f128_ps::<0x20>(u2, u6));
                    st(3, _mm256_permute2f128_ps::<0x20>(u3, u7));
                    st(4, _mm256_permute2f128_ps::<0x31>(u0, u4));
                    st(5, _mm256_permute2f128_ps::<0x31>(u1, u5));
                    st(6, _mm256_permute2f128_ps::<0x31>(u2, u6));
                    st(7, _mm256_permute2f128_ps::<0x31>(u3, u7));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposes_odd_and_whole_block_shapes_at_every_simd_level() {
        for (rows, cols) in [
            (1, 1),
            (8, 8),
            (3, 17),
            (17, 3),
            (64, 32),
            (63, 65),
            (16, 9),
        ] {
            let src: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            for simd in SimdLevel::supported() {
                let mut dst = vec![f32::NAN; rows * cols];
                transpose(simd, &src, rows, cols, &mut dst);
                for r in 0..rows {
                    for c in 0..cols {
                        assert_eq!(
                            dst[c * rows + r],
                            src[r * cols + c],
                            "{simd:?} {rows}x{cols} ({r}, {c})"
                        );
                    }
                }
            }
        }
    }
}
