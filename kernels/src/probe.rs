//! Peak-throughput probe loops: f32 FMA per SIMD path, int8 dot products, and
//! memory-bandwidth kernels (read, copy, triad).
//!
//! The root crate times these (it owns the clock) and turns them into this
//! machine's roofline. Each loop returns a value derived from its work so the
//! optimiser cannot drop it; callers pass it to `std::hint::black_box`.

use std::hint::black_box;

/// A SIMD instruction-set path the f32 probes can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SimdPath {
    /// 512-bit vectors, 16 f32 lanes (AVX-512F).
    Avx512,
    /// 256-bit vectors with fused multiply-add (AVX2 + FMA).
    Avx2Fma,
    /// Plain Rust the compiler vectorises for the baseline target; always available.
    Portable,
}

impl SimdPath {
    pub const ALL: [SimdPath; 3] = [SimdPath::Avx512, SimdPath::Avx2Fma, SimdPath::Portable];

    pub fn name(self) -> &'static str {
        match self {
            SimdPath::Avx512 => "avx512",
            SimdPath::Avx2Fma => "avx2+fma",
            SimdPath::Portable => "portable",
        }
    }

    /// Whether this CPU can run the path (checked at run time).
    pub fn is_available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            SimdPath::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            SimdPath::Avx2Fma => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            SimdPath::Avx512 | SimdPath::Avx2Fma => false,
            SimdPath::Portable => true,
        }
    }
}

/// An int8 dot-product path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Int8Path {
    /// `vpdpbusd` on 512-bit vectors (AVX-512 VNNI): 64 u8 x i8 products per instruction.
    Avx512Vnni,
    /// `vpmaddubsw` + `vpmaddwd` + `vpaddd` on 256-bit vectors (AVX2).
    Avx2,
    /// Plain Rust widening multiply-add; always available.
    Portable,
}

impl Int8Path {
    pub const ALL: [Int8Path; 3] = [Int8Path::Avx512Vnni, Int8Path::Avx2, Int8Path::Portable];

    pub fn name(self) -> &'static str {
        match self {
            Int8Path::Avx512Vnni => "avx512-vnni",
            Int8Path::Avx2 => "avx2",
            Int8Path::Portable => "portable",
        }
    }

    pub fn is_available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Int8Path::Avx512Vnni => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(target_arch = "x86_64")]
            Int8Path::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(not(target_arch = "x86_64"))]
            Int8Path::Avx512Vnni | Int8Path::Avx2 => false,
            Int8Path::Portable => true,
        }
    }
}

/// Independent accumulator chains: enough to cover FMA latency (4 cycles) times
/// issue width (2 per cycle) with room to spare.
const CHAINS: usize = 12;

/// Floating-point operations one [`fma_f32`] iteration performs on `path`
/// (a multiply-add counts as 2).
pub fn fma_flops_per_iter(path: SimdPath) -> f64 {
    let lanes = match path {
        SimdPath::Avx512 => 16,
        SimdPath::Avx2Fma => 8,
        SimdPath::Portable => PORTABLE_LANES,
    };
    (CHAINS * lanes * 2) as f64
}

const PORTABLE_LANES: usize = 8;

/// Runs `iters` iterations of `CHAINS` independent multiply-add chains on `path`.
/// Returns a checksum, or `None` when the CPU lacks the path.
pub fn fma_f32(path: SimdPath, iters: u64) -> Option<f32> {
    if !path.is_available() {
        return None;
    }
    match path {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports avx512f (checked by is_available above).
        SimdPath::Avx512 => Some(unsafe { x86::fma_avx512(iters) }),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports avx2 and fma (checked by is_available above).
        SimdPath::Avx2Fma => Some(unsafe { x86::fma_avx2(iters) }),
        _ => Some(fma_portable(iters)),
    }
}

fn fma_portable(iters: u64) -> f32 {
    // acc = acc * a + b converges to b / (1 - a) = 1: no overflow, no denormals.
    let a = black_box(0.999_999_f32);
    let b = black_box(0.000_001_f32);
    let mut acc = [[0.5f32; PORTABLE_LANES]; CHAINS];
    for _ in 0..iters {
        for chain in acc.iter_mut() {
            for lane in chain.iter_mut() {
                *lane = *lane * a + b;
            }
        }
    }
    acc.iter().flatten().sum()
}

/// Integer operations one [`dot_i8`] iteration performs on `path`
/// (a multiply and its accumulation count as 2).
pub fn dot_i8_ops_per_iter(path: Int8Path) -> f64 {
    let products = match path {
        Int8Path::Avx512Vnni => 64,
        Int8Path::Avx2 => 32,
        Int8Path::Portable => PORTABLE_I32_LANES * 4,
    };
    (CHAINS * products * 2) as f64
}

/// i32 accumulator lanes of the portable path (4 u8 x i8 products each).
const PORTABLE_I32_LANES: usize = 8;

/// Starting value of every i32 lane of the byte-sum recurrence (AVX2 and portable paths).
const DOT_SEED: i32 = 1000;

/// Runs `iters` iterations of `CHAINS` independent u8 x i8 dot-product accumulations.
/// Returns a checksum, or `None` when the CPU lacks the path.
pub fn dot_i8(path: Int8Path, iters: u64) -> Option<i32> {
    if !path.is_available() {
        return None;
    }
    match path {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports avx512f and avx512vnni (checked by is_available above).
        Int8Path::Avx512Vnni => Some(unsafe { x86::dot_vnni512(iters) }),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports avx2 (checked by is_available above).
        Int8Path::Avx2 => Some(unsafe { x86::dot_avx2(iters) }),
        _ => Some(dot_portable(iters)),
    }
}

fn dot_portable(iters: u64) -> i32 {
    // The same recurrence as the AVX2 path: each i32 lane adds its own four bytes
    // (as u8) times -1. Feeding the accumulator back in keeps the products from
    // being hoisted out of the loop as loop-invariant.
    let weight = i32::from(black_box(-1i8));
    let mut acc = [[DOT_SEED; PORTABLE_I32_LANES]; CHAINS];
    for _ in 0..iters {
        for chain in acc.iter_mut() {
            for lane in chain.iter_mut() {
                let dot: i32 = lane
                    .to_le_bytes()
                    .iter()
                    .map(|&x| i32::from(x) * weight)
                    .sum();
                *lane = lane.wrapping_add(dot);
            }
        }
    }
    acc.iter().flatten().fold(0i32, |s, &v| s.wrapping_add(v))
}

/// Sums `data` (bandwidth probe "read": 4 bytes per element).
pub fn read_sum(data: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports avx512f (checked just above).
        return unsafe { x86::read_sum_avx512(data) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports avx2 (checked just above).
        return unsafe { x86::read_sum_avx2(data) };
    }
    read_sum_generic(data)
}

/// f32 values one [`read_sum`] block adds into its partial sums: 8 vectors of
/// 16 lanes (AVX-512), 16 of 8 (AVX2) or 32 of 4 (SSE2). Each vector is its own
/// add chain, so loads are not serialised behind the add latency (an add chain
/// of 3-4 cycles per vector caps one chain at a fraction of L1 bandwidth).
const READ_BLOCK: usize = 128;

#[inline(always)]
fn read_sum_generic(data: &[f32]) -> f32 {
    let mut partial = [0.0f32; READ_BLOCK];
    // Fixed-size blocks: the inner loop has a compile-time length, so it
    // unrolls into independent vector adds with no bounds checks.
    let (blocks, tail) = data.as_chunks::<READ_BLOCK>();
    for block in blocks {
        for (p, &x) in partial.iter_mut().zip(block) {
            *p += x;
        }
    }
    // Tree reduction: a serial sum of the partials would be a dependent chain
    // of READ_BLOCK adds, about as long as the loop itself over an L1-sized buffer.
    let mut width = READ_BLOCK;
    while width > 1 {
        width /= 2;
        let (low, high) = partial.split_at_mut(width);
        for (p, &q) in low.iter_mut().zip(&high[..width]) {
            *p += q;
        }
    }
    partial[0] + tail.iter().sum::<f32>()
}

/// `dst = src` (bandwidth probe "copy": 8 bytes per element, read + write).
/// Returns the number of elements copied (the shorter slice's length).
///
/// A vector load/store loop, not `memcpy`: glibc serves mid-sized copies
/// (between a few KiB and the L2 size) with `rep movsb`, which on AMD Zen 3
/// runs about 20 times slower when `dst` sits just above `src` modulo 4 KiB
/// (two heap buffers of the same size usually do). No kernel of this crate
/// moves data that way, so the probe must not either.
pub fn copy(dst: &mut [f32], src: &[f32]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports avx512f (checked just above).
        return unsafe { x86::copy_avx512(dst, src) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports avx2 (checked just above).
        return unsafe { x86::copy_avx2(dst, src) };
    }
    copy_generic(dst, src)
}

#[inline(always)]
fn copy_generic(dst: &mut [f32], src: &[f32]) -> usize {
    let n = dst.len().min(src.len());
    // Adding -0.0 returns every value unchanged (-0.0 included); hidden behind
    // black_box, it keeps LLVM from turning this loop back into a `memcpy` call.
    let minus_zero = black_box(-0.0f32);
    for (d, &s) in dst[..n].iter_mut().zip(&src[..n]) {
        *d = s + minus_zero;
    }
    n
}

/// `a = b + scalar * c` (bandwidth probe "triad": 12 bytes per element).
/// Returns the number of elements written (the shortest slice's length).
pub fn triad(a: &mut [f32], b: &[f32], c: &[f32], scalar: f32) -> usize {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports avx512f (checked just above).
        return unsafe { x86::triad_avx512(a, b, c, scalar) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports avx2 (checked just above).
        return unsafe { x86::triad_avx2(a, b, c, scalar) };
    }
    triad_generic(a, b, c, scalar)
}

#[inline(always)]
fn triad_generic(a: &mut [f32], b: &[f32], c: &[f32], scalar: f32) -> usize {
    let n = a.len().min(b.len()).min(c.len());
    for ((x, &y), &z) in a[..n].iter_mut().zip(&b[..n]).zip(&c[..n]) {
        *x = y + scalar * z;
    }
    n
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::CHAINS;
    use std::arch::x86_64::*;
    use std::hint::black_box;

    /// # Safety
    /// The CPU must support avx512f.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn fma_avx512(iters: u64) -> f32 {
        let a = _mm512_set1_ps(black_box(0.999_999));
        let b = _mm512_set1_ps(black_box(0.000_001));
        let mut acc = [_mm512_set1_ps(0.5); CHAINS];
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm512_fmadd_ps(*v, a, b);
            }
        }
        let mut total = _mm512_setzero_ps();
        for v in acc {
            total = _mm512_add_ps(total, v);
        }
        _mm512_reduce_add_ps(total)
    }

    /// # Safety
    /// The CPU must support avx2 and fma.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn fma_avx2(iters: u64) -> f32 {
        let a = _mm256_set1_ps(black_box(0.999_999));
        let b = _mm256_set1_ps(black_box(0.000_001));
        let mut acc = [_mm256_set1_ps(0.5); CHAINS];
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm256_fmadd_ps(*v, a, b);
            }
        }
        let mut total = _mm256_setzero_ps();
        for v in acc {
            total = _mm256_add_ps(total, v);
        }
        let mut lanes = [0.0f32; 8];
        // SAFETY: `lanes` is 8 f32 = 32 bytes, the unaligned store writes exactly that.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), total) };
        lanes.iter().sum()
    }

    /// # Safety
    /// The CPU must support avx512f and avx512vnni.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub(super) unsafe fn dot_vnni512(iters: u64) -> i32 {
        let a = _mm512_set1_epi8(black_box(3));
        let b = _mm512_set1_epi8(black_box(-1));
        let mut acc = [_mm512_setzero_si512(); CHAINS];
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm512_dpbusd_epi32(*v, a, b);
            }
        }
        let mut total = _mm512_setzero_si512();
        for v in acc {
            total = _mm512_add_epi32(total, v);
        }
        _mm512_reduce_add_epi32(total)
    }

    /// # Safety
    /// The CPU must support avx2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn dot_avx2(iters: u64) -> i32 {
        // u8 inputs are the accumulator's own bytes: a loop-invariant input would
        // let the compiler hoist the multiplies and time only the adds.
        let b = _mm256_set1_epi8(black_box(-1));
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_set1_epi32(super::DOT_SEED); CHAINS];
        for _ in 0..iters {
            for v in acc.iter_mut() {
                let pairs = _mm256_maddubs_epi16(*v, b);
                *v = _mm256_add_epi32(*v, _mm256_madd_epi16(pairs, ones));
            }
        }
        let mut total = _mm256_setzero_si256();
        for v in acc {
            total = _mm256_add_epi32(total, v);
        }
        let mut lanes = [0i32; 8];
        // SAFETY: `lanes` is 8 i32 = 32 bytes, the unaligned store writes exactly that.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), total) };
        lanes.iter().fold(0i32, |s, &v| s.wrapping_add(v))
    }

    /// # Safety
    /// The CPU must support avx512f.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn read_sum_avx512(data: &[f32]) -> f32 {
        super::read_sum_generic(data)
    }

    /// # Safety
    /// The CPU must support avx512f.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn triad_avx512(a: &mut [f32], b: &[f32], c: &[f32], scalar: f32) -> usize {
        super::triad_generic(a, b, c, scalar)
    }

    // The bandwidth kernels below are the portable loops compiled for a wider
    // vector ISA: x86_64's baseline (SSE2) would halve the bytes per load.

    /// # Safety
    /// The CPU must support avx2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn read_sum_avx2(data: &[f32]) -> f32 {
        super::read_sum_generic(data)
    }

    /// # Safety
    /// The CPU must support avx512f.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn copy_avx512(dst: &mut [f32], src: &[f32]) -> usize {
        super::copy_generic(dst, src)
    }

    /// # Safety
    /// The CPU must support avx2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn copy_avx2(dst: &mut [f32], src: &[f32]) -> usize {
        super::copy_generic(dst, src)
    }

    /// # Safety
    /// The CPU must support avx2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn triad_avx2(a: &mut [f32], b: &[f32], c: &[f32], scalar: f32) -> usize {
        super::triad_generic(a, b, c, scalar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_available_fma_path_converges_to_the_fixed_point() {
        for path in SimdPath::ALL {
            let Some(sum) = fma_f32(path, 20_000) else {
                assert_ne!(path, SimdPath::Portable, "portable path must always run");
                continue;
            };
            let lanes = fma_flops_per_iter(path) / 2.0;
            // acc -> 1 per lane; after 20k iterations from 0.5 it is 1 - 0.5 * 0.999999^20000 ~ 0.51.
            let per_lane = sum / lanes as f32;
            assert!((0.5..1.0).contains(&per_lane), "{path:?}: {per_lane}");
        }
    }

    #[test]
    fn every_available_int8_path_computes_the_expected_dot_products() {
        // VNNI: constant inputs 3 x -1, accumulated 10 times per product lane.
        if let Some(sum) = dot_i8(Int8Path::Avx512Vnni, 10) {
            let products = (dot_i8_ops_per_iter(Int8Path::Avx512Vnni) / 2.0) as i32;
            assert_eq!(sum, -3 * 10 * products);
        }
        // AVX2 and portable run the byte-sum recurrence: compare per i32 lane with a scalar model.
        let mut lane = DOT_SEED;
        for _ in 0..10 {
            let dot: i32 = lane.to_le_bytes().iter().map(|&x| -i32::from(x)).sum();
            lane = lane.wrapping_add(dot);
        }
        for path in [Int8Path::Avx2, Int8Path::Portable] {
            let Some(sum) = dot_i8(path, 10) else {
                assert_ne!(path, Int8Path::Portable, "portable path must always run");
                continue;
            };
            let lanes = (dot_i8_ops_per_iter(path) / 2.0) as i32 / 4;
            assert_eq!(sum, lane.wrapping_mul(lanes), "{path:?}");
        }
    }

    /// Lengths around every block and vector width the kernels use.
    const ODD_LENGTHS: [usize; 12] = [0, 1, 7, 8, 15, 63, 127, 128, 129, 255, 257, 1031];

    #[test]
    fn read_sum_adds_every_element_on_odd_lengths() {
        for len in ODD_LENGTHS {
            // Small integers: every partial sum is exact, so any order gives the same f32.
            let data: Vec<f32> = (0..len).map(|i| (i % 7) as f32 - 2.0).collect();
            let exact: f64 = data.iter().map(|&x| f64::from(x)).sum();
            assert_eq!(f64::from(read_sum(&data)), exact, "len {len}");
            assert_eq!(
                f64::from(read_sum_generic(&data)),
                exact,
                "generic, len {len}"
            );
            // Starting one element in: the loads are no longer vector-aligned.
            if len > 1 {
                let shifted = exact - f64::from(data[0]);
                assert_eq!(f64::from(read_sum(&data[1..])), shifted, "len {len} - 1");
            }
        }
    }

    #[test]
    fn copy_reproduces_every_bit_pattern_at_a_page_offset() {
        let specials = [
            -0.0f32,
            0.0,
            f32::MIN_POSITIVE / 8.0,
            f32::INFINITY,
            -1.5e-38,
        ];
        for len in ODD_LENGTHS {
            let src: Vec<f32> = (0..len)
                .map(|i| specials.get(i % 9).copied().unwrap_or(i as f32 * -0.25))
                .collect();
            // dst in the same allocation, 2 KiB + 64 B (an odd float count) past src's end.
            let skew = 2112 / 4 + 1;
            for kernel in [copy, copy_generic] {
                let mut block = vec![f32::NAN; 2 * len + skew + 3];
                block[..len].copy_from_slice(&src);
                let (head, rest) = block.split_at_mut(len);
                assert_eq!(kernel(&mut rest[skew..skew + len], &head[..len]), len);
                let copied = &block[len + skew..2 * len + skew];
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(copied), bits(&src), "len {len}");
                // Nothing written past the copy.
                assert!(
                    block[2 * len + skew..].iter().all(|x| x.is_nan()),
                    "len {len}"
                );
            }
        }
        // The shorter slice bounds the copy.
        let mut short = [0.0f32; 3];
        assert_eq!(copy(&mut short, &[1.0, 2.0, 3.0, 4.0]), 3);
        assert_eq!(short, [1.0, 2.0, 3.0]);
        let mut long = [9.0f32; 4];
        assert_eq!(copy(&mut long, &[1.0, 2.0]), 2);
        assert_eq!(long, [1.0, 2.0, 9.0, 9.0]);
    }

    #[test]
    fn triad_matches_the_scalar_formula_on_odd_lengths() {
        for len in ODD_LENGTHS {
            let b: Vec<f32> = (0..len).map(|i| i as f32).collect();
            let c: Vec<f32> = (0..len).map(|i| (len - i) as f32).collect();
            let mut a = vec![0.0f32; len + 1];
            assert_eq!(triad(&mut a, &b, &c, 0.5), len);
            for i in 0..len {
                assert_eq!(a[i], b[i] + 0.5 * c[i], "len {len}, element {i}");
            }
            assert_eq!(a[len], 0.0, "len {len}: written past the shortest slice");
        }
    }

    #[test]
    fn bandwidth_kernels_compute_what_they_claim() {
        let src: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        assert_eq!(read_sum(&src), 499_500.0);
        let mut dst = vec![0.0; 1000];
        assert_eq!(copy(&mut dst, &src), 1000);
        assert_eq!(dst, src);
        let mut out = vec![0.0; 999];
        assert_eq!(triad(&mut out, &src, &src, 2.0), 999);
        assert!(out.iter().enumerate().all(|(i, &v)| v == 3.0 * i as f32));
    }
}
