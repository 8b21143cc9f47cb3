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
    read_sum_generic(data)
}

#[inline(always)]
fn read_sum_generic(data: &[f32]) -> f32 {
    // Several partial sums so the loads are not serialised behind one add chain.
    let mut partial = [0.0f32; 64];
    let mut chunks = data.chunks_exact(64);
    for chunk in &mut chunks {
        for (p, &x) in partial.iter_mut().zip(chunk) {
            *p += x;
        }
    }
    let tail: f32 = chunks.remainder().iter().sum();
    partial.iter().sum::<f32>() + tail
}

/// `dst = src` (bandwidth probe "copy": 8 bytes per element, read + write).
/// Returns the number of elements copied (the shorter slice's length).
pub fn copy(dst: &mut [f32], src: &[f32]) -> usize {
    let n = dst.len().min(src.len());
    dst[..n].copy_from_slice(&src[..n]);
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
