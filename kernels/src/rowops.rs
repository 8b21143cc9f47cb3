//! Row-wise softmax and layer norm for the tiled engine: the exponentials
//! through `act`'s vectorised exp, the row reductions in 16 independent
//! partial sums (one dependent chain of adds per row ran at one add per FMA
//! latency). In a transformer block the reference loops were about 10% of the
//! run. The naive and fused backends keep the reference loops.

use crate::act;

const LANES: usize = 16;

/// Sum of `xs` in `LANES` partial sums (vectorisable; another order than a
/// plain left-to-right sum, equal to rounding).
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
    for (row, o) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let m = max(row);
        o.iter_mut().zip(row).for_each(|(o, &v)| *o = v - m);
        act::exp_slice(o);
        let inv = 1.0 / sum(o);
        o.iter_mut().for_each(|v| *v *= inv);
    }
}

/// Layer norm over rows of length `gamma.len()` (biased variance).
pub(crate) fn layer_norm(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, out: &mut [f32]) {
    let d = gamma.len();
    for (row, o) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let mean = sum(row) / d as f32;
        o.iter_mut()
            .zip(row)
            .for_each(|(o, &v)| *o = (v - mean) * (v - mean));
        let inv = 1.0 / (sum(o) / d as f32 + eps).sqrt();
        for (((o, &v), &g), &b) in o.iter_mut().zip(row).zip(gamma).zip(beta) {
            *o = (v - mean) * inv * g + b;
        }
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
