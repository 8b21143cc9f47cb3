//! Row-wise softmax and layer norm for the tiled engine: the exponentials
//! through `act`'s vectorised exp, the row reductions in 16 independent
//! partial sums (one dependent chain of adds per row ran at one add per FMA
//! latency). In a transformer block the reference loops were about 10% of the
//! run. The naive and fused backends keep the reference loops.
//!
//! Each op is compiled three times, for AVX-512, for AVX2 + FMA and for the
//! baseline, from one body: the same operations in the same order (Rust
//! contracts no multiply-add), so the same bits on every path, and the wider
//! copies vectorise with wider registers than the baseline's 4 lanes. In an
//! int8 BERT-base encoder these ops were about 8% of the run.

use crate::act;
#[cfg(target_arch = "x86_64")]
use crate::simd::SimdLevel;

/// `body(args...)` compiled for the best path this CPU has ([`crate::simd::shared_helpers_level`]).
macro_rules! on_best_path {
    ($body:path, $($arg:expr),*) => {{
        #[cfg(target_arch = "x86_64")]
        match crate::simd::shared_helpers_level() {
            // SAFETY: the level is capped at what this CPU has (`simd::detect`).
            SimdLevel::Avx512 => return unsafe { x86::avx512(|| $body($($arg),*)) },
            // SAFETY: as above: AVX2 and FMA are there.
            SimdLevel::Avx2Fma => return unsafe { x86::avx2(|| $body($($arg),*)) },
            SimdLevel::Portable => {}
        }
        $body($($arg),*)
    }};
}

const LANES: usize = 16;

/// Sum of `xs` in `LANES` partial sums (vectorisable; another order than a
/// plain left-to-right sum, equal to rounding).
#[inline(always)]
fn sum(xs: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for c in &mut chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    let tail: f32 = chunks.remainder().iter().sum();
    acc.iter().sum::<f32>() + tail
}

#[inline(always)]
fn max(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = if v > *a { v } else { *a };
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    acc.iter().copied().fold(tail, f32::max)
}

/// Softmax over rows of length `d`.
pub(crate) fn softmax(x: &[f32], d: usize, out: &mut [f32]) {
    on_best_path!(softmax_rows, x, d, out)
}

#[inline(always)]
fn softmax_rows(x: &[f32], d: usize, out: &mut [f32]) {
    for (row, o) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let m = max(row);
        o.iter_mut().zip(row).for_each(|(o, &v)| *o = v - m);
        act::exp_slice(o);
        let inv = 1.0 / sum(o);
        o.iter_mut().for_each(|v| *v *= inv);
    }
}

/// [`softmax`] over rows of length `d` of `xs`, in place: the same
/// operations in the same order, so the same bits.
pub(crate) fn softmax_in_place(xs: &mut [f32], d: usize) {
    on_best_path!(softmax_rows_in_place, xs, d)
}

#[inline(always)]
fn softmax_rows_in_place(xs: &mut [f32], d: usize) {
    for o in xs.chunks_exact_mut(d.max(1)) {
        let m = max(o);
        o.iter_mut().for_each(|v| *v -= m);
        act::exp_slice(o);
        let inv = 1.0 / sum(o);
        o.iter_mut().for_each(|v| *v *= inv);
    }
}

/// Layer norm over rows of length `gamma.len()` (biased variance), each row
/// shifted by its first element first, as [`reference::layer_norm`] says why.
///
/// [`reference::layer_norm`]: crate::reference::layer_norm
pub(crate) fn layer_norm(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, out: &mut [f32]) {
    on_best_path!(layer_norm_rows, x, gamma, beta, eps, out)
}

#[inline(always)]
fn layer_norm_rows(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, out: &mut [f32]) {
    let d = gamma.len();
    if d == 0 {
        return;
    }
    for (row, o) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let shift = row[0];
        o.iter_mut().zip(row).for_each(|(o, &v)| *o = v - shift);
        let mean = sum(o) / d as f32;
        o.iter_mut().for_each(|o| *o = (*o - mean) * (*o - mean));
        let inv = 1.0 / (sum(o) / d as f32 + eps).sqrt();
        for (((o, &v), &g), &b) in o.iter_mut().zip(row).zip(gamma).zip(beta) {
            *o = ((v - shift) - mean) * inv * g + b;
        }
    }
}

/// `out[i] = a[i] + b[i]` over the shortest of the three (a residual add):
/// the reference loop, compiled for the wider paths.
pub(crate) fn add(a: &[f32], b: &[f32], out: &mut [f32]) {
    on_best_path!(crate::reference::add, a, b, out)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    /// `body` compiled with AVX-512F (it is inlined here, with every
    /// `#[inline(always)]` function it calls).
    ///
    /// # Safety
    /// The CPU supports AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn avx512<R>(body: impl FnOnce() -> R) -> R {
        body()
    }

    /// `body` compiled with AVX2 and FMA.
    ///
    /// # Safety
    /// The CPU supports AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn avx2<R>(body: impl FnOnce() -> R) -> R {
        body()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;

    fn data(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7919 + seed * 131) % 1999) as f32 / 1999.0 - 0.5) * 12.0)
            .collect()
    }

    /// A row of one large value repeated normalises to beta exactly, in
    /// the reference and here (the float mean of 63 copies of 12345.678 is an
    /// ulp off, and 1/sqrt(eps) had turned that into errors of 0.3-0.9).
    #[test]
    fn a_constant_row_with_a_large_offset_normalises_to_beta() {
        for (d, c) in [(63usize, 12_345.678f32), (1024, 1000.1), (3, -7.5e6)] {
            let x = vec![c; 2 * d];
            let gamma = data(d, 1);
            let beta = data(d, 2);
            let mut tiled = vec![f32::NAN; 2 * d];
            let mut reference_out = vec![f32::NAN; 2 * d];
            layer_norm(&x, &gamma, &beta, 1e-5, &mut tiled);
            reference::layer_norm(&x, &gamma, &beta, 1e-5, &mut reference_out);
            for (j, (t, r)) in tiled.iter().zip(&reference_out).enumerate() {
                let b = beta[j % d];
                assert_eq!((*t, *r), (b, b), "d={d} c={c} element {j}");
            }
        }
    }

    /// Every path this CPU has gives the baseline copy's bits, at widths
    /// within, at and past the vectors and the 16 partial sums.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn every_path_gives_the_baseline_bits() {
        let mut paths: Vec<&str> = Vec::new();
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            paths.push("avx2");
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            paths.push("avx512");
        }
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for d in [1usize, 3, 15, 16, 17, 33, 64, 257] {
            let rows = 3;
            let x = data(rows * d, d);
            let y = data(rows * d, d + 1);
            let gamma = data(d, 1);
            let beta = data(d, 2);
            let run = |path: &str| {
                let mut soft = vec![f32::NAN; rows * d];
                let mut norm = vec![f32::NAN; rows * d];
                let mut sum = vec![f32::NAN; rows * d];
                let mut ops = || {
                    softmax_rows(&x, d, &mut soft);
                    layer_norm_rows(&x, &gamma, &beta, 1e-5, &mut norm);
                    crate::reference::add(&x, &y, &mut sum);
                };
                match path {
                    // SAFETY: only paths this CPU has are listed.
                    "avx512" => unsafe { x86::avx512(ops) },
                    // SAFETY: as above.
                    "avx2" => unsafe { x86::avx2(ops) },
                    _ => ops(),
                }
                (bits(&soft), bits(&norm), bits(&sum))
            };
            let baseline = run("portable");
            for path in &paths {
                assert!(run(path) == baseline, "{path} d={d}");
            }
            let mut sum = vec![f32::NAN; rows * d];
            add(&x, &y, &mut sum);
            assert_eq!(bits(&sum), baseline.2);
            for ((s, a), b) in sum.iter().zip(&x).zip(&y) {
                assert_eq!(*s, a + b);
            }
        }
    }

    #[test]
    fn softmax_and_layer_norm_match_the_reference_at_odd_widths() {
        for d in [1usize, 3, 15, 16, 17, 64, 257] {
            let rows = 5;
            let x = data(rows * d, d);
            let (mut got, mut want) = (vec![f32::NAN; rows * d], vec![0.0f32; rows * d]);
            softmax(&x, d, &mut got);
            reference::softmax(&x, d, &mut want);
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() <= 1e-6 * w.max(1e-3),
                    "softmax d={d}: {g} vs {w}"
                );
            }
            for row in got.chunks_exact(d) {
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            }
            // In place: the same bits.
            let mut in_place = x.clone();
            softmax_in_place(&mut in_place, d);
            assert_eq!(in_place, got, "softmax in place d={d}");
            let mut in_place = x.clone();
            reference::softmax_in_place(&mut in_place, d);
            assert_eq!(in_place, want, "reference softmax in place d={d}");
            let gamma = data(d, 1);
            let beta = data(d, 2);
            let mut got = vec![f32::NAN; rows * d];
            layer_norm(&x, &gamma, &beta, 1e-5, &mut got);
            reference::layer_norm(&x, &gamma, &beta, 1e-5, &mut want);
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                    "layer norm d={d}: {g} vs {w}"
                );
            }
        }
    }
}
