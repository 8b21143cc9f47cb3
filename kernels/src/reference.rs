//! Plain-loop kernels on one sample: the reference semantics of every op.
//! The naive backend runs only these; the fused and tiled backends reuse the
//! ones they do not replace (normalisation, pooling, attention in fused).

use crate::act;
use crate::spec::Activation;

/// `out[r, j] = bias[j] + sum_p x[r, p] * w[p, j]` (dot-product order, W read by column).
pub fn dense(
    x: &[f32],
    rows: usize,
    k: usize,
    n: usize,
    w: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    for r in 0..rows {
        for j in 0..n {
            let mut acc = bias.map_or(0.0, |b| b[j]);
            for p in 0..k {
                acc += x[r * k + p] * w[p * n + j];
            }
            out[r * n + j] = acc;
        }
    }
}

pub fn bias_add(x: &[f32], bias: &[f32], out: &mut [f32]) {
    let n = bias.len();
    for (i, (o, &v)) in out.iter_mut().zip(x).enumerate() {
        *o = v + bias[i % n];
    }
}

pub fn activation(a: Activation, x: &[f32], out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = act::apply(a, v);
    }
}

pub fn scale(s: f32, x: &[f32], out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = s * v;
    }
}

// Inlined into `rowops::add`'s AVX-512 / AVX2 copies.
#[inline]
pub fn add(a: &[f32], b: &[f32], out: &mut [f32]) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = x + y;
    }
}

pub fn mul(a: &[f32], b: &[f32], out: &mut [f32]) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = x * y;
    }
}

/// Softmax over rows of length `d` (max-subtracted for stability).
pub fn softmax(x: &[f32], d: usize, out: &mut [f32]) {
    for (row, o) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for (o, &v) in o.iter_mut().zip(row) {
            *o = (v - max).exp();
            sum += *o;
        }
        let inv = 1.0 / sum;
        o.iter_mut().for_each(|v| *v *= inv);
    }
}

/// [`softmax`] over rows of length `d` of `xs`, in place: the same
/// operations in the same order, so the same bits.
pub fn softmax_in_place(xs: &mut [f32], d: usize) {
    for o in xs.chunks_exact_mut(d.max(1)) {
        let max = o.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for v in o.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        let inv = 1.0 / sum;
        o.iter_mut().for_each(|v| *v *= inv);
    }
}

/// Layer norm over rows of length `d` (biased variance).
///
/// The row is shifted by its first element before the mean is taken: a row
/// of nearly equal large values (12345.678 everywhere) has a float mean off
/// by an ulp of the values, which `1 / sqrt(var + eps)` then magnifies into
/// outputs wrong by ~1; shifted, such a row's deviations are exact.
pub fn layer_norm(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, out: &mut [f32]) {
    let d = gamma.len();
    if d == 0 {
        return;
    }
    for (row, o) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let shift = row[0];
        let mean = row.iter().map(|v| v - shift).sum::<f32>() / d as f32;
        let dev = |v: f32| (v - shift) - mean;
        let var = row.iter().map(|&v| dev(v) * dev(v)).sum::<f32>() / d as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for j in 0..d {
            o[j] = dev(row[j]) * inv * gamma[j] + beta[j];
        }
    }
}

/// Geometry of a 2-D convolution on one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeom {
    pub in_c: usize,
    pub h: usize,
    pub w: usize,
    pub out_c: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
    pub oh: usize,
    pub ow: usize,
}

impl ConvGeom {
    /// Input coordinate for output `o` and kernel tap `t`, if inside the image.
    #[inline]
    pub fn src(&self, o: usize, t: usize, size: usize) -> Option<usize> {
        (o * self.stride + t)
            .checked_sub(self.pad)
            .filter(|&i| i < size)
    }
}

/// Conv2d, weight `[out_c, in_c, kh, kw]`.
pub fn conv2d(x: &[f32], g: &ConvGeom, weight: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
    for oc in 0..g.out_c {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let mut acc = bias.map_or(0.0, |b| b[oc]);
                for ic in 0..g.in_c {
                    for ky in 0..g.kh {
                        let Some(iy) = g.src(oy, ky, g.h) else {
                            continue;
                        };
                        for kx in 0..g.kw {
                            let Some(ix) = g.src(ox, kx, g.w) else {
                                continue;
                            };
                            let wv = weight[((oc * g.in_c + ic) * g.kh + ky) * g.kw + kx];
                            acc += wv * x[(ic * g.h + iy) * g.w + ix];
                        }
                    }
                }
                out[(oc * g.oh + oy) * g.ow + ox] = acc;
            }
        }
    }
}

/// Depthwise conv2d, weight `[c, kh, kw]` (`g.out_c == g.in_c`).
pub fn depthwise(x: &[f32], g: &ConvGeom, weight: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
    for c in 0..g.in_c {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let mut acc = bias.map_or(0.0, |b| b[c]);
                for ky in 0..g.kh {
                    let Some(iy) = g.src(oy, ky, g.h) else {
                        continue;
                    };
                    for kx in 0..g.kw {
                        let Some(ix) = g.src(ox, kx, g.w) else {
                            continue;
                        };
                        acc += weight[(c * g.kh + ky) * g.kw + kx] * x[(c * g.h + iy) * g.w + ix];
                    }
                }
                out[(c * g.oh + oy) * g.ow + ox] = acc;
            }
        }
    }
}

/// 1x1 conv, weight `[oc, ic]`, on `[ic, hw]`.
pub fn pointwise(
    x: &[f32],
    ic: usize,
    hw: usize,
    weight: &[f32],
    oc: usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    for o in 0..oc {
        for p in 0..hw {
            let mut acc = bias.map_or(0.0, |b| b[o]);
            for i in 0..ic {
                acc += weight[o * ic + i] * x[i * hw + p];
            }
            out[o * hw + p] = acc;
        }
    }
}

/// `[c, hw] -> [c]`.
pub fn global_avg_pool(x: &[f32], c: usize, hw: usize, out: &mut [f32]) {
    for ch in 0..c {
        out[ch] = x[ch * hw..(ch + 1) * hw].iter().sum::<f32>() / hw as f32;
    }
}

/// `[s, d] -> [d]`.
pub fn mean_pool(x: &[f32], s: usize, d: usize, out: &mut [f32]) {
    out[..d].iter_mut().for_each(|o| *o = 0.0);
    for row in x.chunks_exact(d).take(s) {
        for (o, &v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
    let inv = 1.0 / s as f32;
    out[..d].iter_mut().for_each(|o| *o *= inv);
}

/// A `[s, d]` matrix inside a buffer: row `i` starts at `offset + i * ld`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowView {
    pub offset: usize,
    pub ld: usize,
}

/// `out[h, i, j] = q_h[i] . k_h[j] / sqrt(d / heads)`.
#[allow(clippy::too_many_arguments)]
pub fn attention_scores(
    qbuf: &[f32],
    q: RowView,
    kbuf: &[f32],
    k: RowView,
    s: usize,
    d: usize,
    heads: usize,
    out: &mut [f32],
) {
    let dh = d / heads;
    let scale = 1.0 / (dh as f32).sqrt();
    for h in 0..heads {
        for i in 0..s {
            for j in 0..s {
                let mut acc = 0.0;
                for t in 0..dh {
                    acc += qbuf[q.offset + i * q.ld + h * dh + t]
                        * kbuf[k.offset + j * k.ld + h * dh + t];
                }
                out[(h * s + i) * s + j] = acc * scale;
            }
        }
    }
}

/// `out[i, h*dh + t] = sum_j p[h, i, j] * v[j, h*dh + t]`.
pub fn attention_context(
    p: &[f32],
    vbuf: &[f32],
    v: RowView,
    s: usize,
    d: usize,
    heads: usize,
    out: &mut [f32],
) {
    let dh = d / heads;
    for h in 0..heads {
        for i in 0..s {
            for t in 0..dh {
                let mut acc = 0.0;
                for j in 0..s {
                    acc += p[(h * s + i) * s + j] * vbuf[v.offset + j * v.ld + h * dh + t];
                }
                out[i * d + h * dh + t] = acc;
            }
        }
    }
}
