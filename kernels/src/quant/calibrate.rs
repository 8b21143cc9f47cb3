//! Calibration and the quantization maths.
//!
//! Activations: per-tensor asymmetric u8, `x ~= scale * (q - zero_point)`.
//! Weights: per-output-channel symmetric s8 in [-127, 127], `w ~= scale[n] * q`.
//! A product accumulates in i32: `sum (qa - za) * qw`, then
//! `y = scale_a * scale_w[n] * acc` (dequantize) or requantized to u8.

use super::QuantError;

#[cfg(target_arch = "x86_64")]
mod dense_x86;

/// How calibration turns observed activations into a range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CalibrationMethod {
    /// The observed minimum and maximum.
    MinMax,
    /// Clip outliers: the range between the (100 - p)th and p-th percentiles, p in (50, 100].
    Percentile(f64),
}

/// Per-tensor u8 activation quantization parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActivationQuant {
    pub scale: f32,
    pub zero_point: u8,
}

impl ActivationQuant {
    /// Parameters covering `[min, max]`, widened to include 0 so that zero
    /// (padding, ReLU output) is represented exactly.
    pub fn from_range(min: f32, max: f32) -> ActivationQuant {
        let lo = if min.is_finite() { min.min(0.0) } else { 0.0 };
        let hi = if max.is_finite() { max.max(0.0) } else { 0.0 };
        let span = hi - lo;
        if span <= f32::MIN_POSITIVE {
            return ActivationQuant {
                scale: 1.0,
                zero_point: 0,
            };
        }
        let scale = span / 255.0;
        let zero_point = (-lo / scale).round().clamp(0.0, 255.0) as u8;
        ActivationQuant { scale, zero_point }
    }

    /// `x / scale + zero_point`, rounded half to even and saturated to u8;
    /// NaN maps to the zero point. The int8 GEMM's requantizing epilogue uses
    /// the same arithmetic, so chained and unchained layers agree exactly.
    pub fn quantize(&self, x: f32) -> u8 {
        let zp = f32::from(self.zero_point);
        super::int8::saturate_u8(x * (1.0 / self.scale) + zp, zp)
    }

    pub fn dequantize(&self, q: u8) -> f32 {
        self.scale * (f32::from(q) - f32::from(self.zero_point))
    }

    /// Quantizes `src` into `dst` (same length; extra `dst` is left alone).
    /// The same per-element arithmetic as [`quantize`](Self::quantize), run
    /// 16 wide where AVX-512 is present, 8 with AVX2 (the baseline build is 4 wide).
    pub fn quantize_slice(&self, src: &[f32], dst: &mut [u8]) {
        let inv = 1.0 / self.scale;
        let zp = f32::from(self.zero_point);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
        {
            // SAFETY: the CPU supports the features the copy is compiled for.
            unsafe { quantize_avx512(src, dst, inv, zp) };
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports the features the copy is compiled for.
            unsafe { quantize_avx2(src, dst, inv, zp) };
            return;
        }
        quantize_into(src, dst, inv, zp);
    }
}

#[inline(always)]
fn quantize_into(src: &[f32], dst: &mut [u8], inv: f32, zp: f32) {
    for (d, &x) in dst.iter_mut().zip(src) {
        *d = super::int8::saturate_u8(x * inv + zp, zp);
    }
}

/// # Safety
/// The CPU supports avx512f and avx512bw.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn quantize_avx512(src: &[f32], dst: &mut [u8], inv: f32, zp: f32) {
    quantize_into(src, dst, inv, zp);
}

/// # Safety
/// The CPU supports avx2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn quantize_avx2(src: &[f32], dst: &mut [u8], inv: f32, zp: f32) {
    quantize_into(src, dst, inv, zp);
}

/// Collects activation statistics over calibration batches.
#[derive(Debug, Clone)]
pub struct Calibrator {
    method: CalibrationMethod,
    min: f32,
    max: f32,
    /// Kept only for the percentile method, subsampled deterministically to `cap`.
    values: Vec<f32>,
    cap: usize,
    stride: usize,
    seen: usize,
}

impl Calibrator {
    pub fn new(method: CalibrationMethod) -> Result<Calibrator, QuantError> {
        if let CalibrationMethod::Percentile(p) = method {
            if !(p > 50.0 && p <= 100.0) {
                return Err(QuantError::BadPercentile(p));
            }
        }
        Ok(Calibrator {
            method,
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            values: Vec::new(),
            cap: 1 << 20,
            stride: 1,
            seen: 0,
        })
    }

    pub fn observe(&mut self, xs: &[f32]) {
        if !all_finite(xs) {
            self.observe_each(xs);
            return;
        }
        // Every value counts: the range in lanes the compiler vectorises,
        // and only the kept positions visited (a large model's calibration
        // observes hundreds of millions of values).
        let (lo, hi) = finite_range(xs);
        self.min = self.min.min(lo);
        self.max = self.max.max(hi);
        if !matches!(self.method, CalibrationMethod::Percentile(_)) {
            return;
        }
        let mut i = next_kept(self.seen, self.stride);
        while i < xs.len() {
            // Every stride-th value from i, as many as fit under the cap.
            let stride = self.stride;
            let room = self.cap.saturating_sub(self.values.len()).max(1);
            let take = room.min((xs.len() - i).div_ceil(stride));
            self.values
                .extend(xs[i..].iter().step_by(stride).take(take));
            let last = i + (take - 1) * stride;
            if self.values.len() >= self.cap {
                self.halve();
                i = last + 1 + next_kept(self.seen + last + 1, self.stride);
            } else {
                i = last + stride;
            }
        }
        self.seen += xs.len();
    }

    /// [`Calibrator::observe`] value by value, skipping the non-finite ones.
    fn observe_each(&mut self, xs: &[f32]) {
        for &x in xs.iter().filter(|x| x.is_finite()) {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
            if matches!(self.method, CalibrationMethod::Percentile(_)) {
                if self.seen.is_multiple_of(self.stride) {
                    self.keep(x);
                }
                self.seen += 1;
            }
        }
    }

    /// Keeps `x` for the percentiles (see [`Calibrator::halve`]).
    fn keep(&mut self, x: f32) {
        self.values.push(x);
        if self.values.len() >= self.cap {
            self.halve();
        }
    }

    /// At the cap: keeps every other value and halves the sampling rate.
    fn halve(&mut self) {
        let kept: Vec<f32> = self.values.iter().step_by(2).copied().collect();
        self.values = kept;
        self.stride *= 2;
    }

    /// The observed range after the method's clipping.
    pub fn range(&self) -> Result<(f32, f32), QuantError> {
        if self.min > self.max {
            return Err(QuantError::EmptyCalibration);
        }
        match self.method {
            CalibrationMethod::MinMax => Ok((self.min, self.max)),
            CalibrationMethod::Percentile(p) => {
                let mut v = self.values.clone();
                if v.is_empty() {
                    return Err(QuantError::EmptyCalibration);
                }
                let last = v.len() - 1;
                let hi_idx = ((p / 100.0) * last as f64).round() as usize;
                let lo_idx = last - hi_idx.min(last);
                let (_, hi, _) = v.select_nth_unstable_by(hi_idx.min(last), f32::total_cmp);
                let hi = *hi;
                let (_, lo, _) = v.select_nth_unstable_by(lo_idx, f32::total_cmp);
                Ok((*lo, hi))
            }
        }
    }

    pub fn finish(&self) -> Result<ActivationQuant, QuantError> {
        let (lo, hi) = self.range()?;
        Ok(ActivationQuant::from_range(lo, hi))
    }
}

/// How many values after the `seen`-th (counting from 0) the next kept one
/// is, keeping every `stride`-th.
fn next_kept(seen: usize, stride: usize) -> usize {
    (stride - seen % stride) % stride
}

/// Whether every value is finite (no early exit, so it vectorises).
fn all_finite(xs: &[f32]) -> bool {
    xs.iter().fold(true, |all, x| all & x.is_finite())
}

/// The least and greatest of finite, non-empty-or-not `xs` (infinities
/// when empty), in 16 lanes.
fn finite_range(xs: &[f32]) -> (f32, f32) {
    let mut lo = [f32::INFINITY; 16];
    let mut hi = [f32::NEG_INFINITY; 16];
    let chunks = xs.chunks_exact(16);
    let tail = chunks.remainder();
    for chunk in chunks {
        for ((l, h), &x) in lo.iter_mut().zip(hi.iter_mut()).zip(chunk) {
            *l = if x < *l { x } else { *l };
            *h = if x > *h { x } else { *h };
        }
    }
    for (l, &x) in lo.iter_mut().zip(tail) {
        *l = l.min(x);
    }
    for (h, &x) in hi.iter_mut().zip(tail) {
        *h = h.max(x);
    }
    let lo = lo.iter().fold(f32::INFINITY, |a, &b| a.min(b));
    let hi = hi.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    (lo, hi)
}

/// Most activation bytes calibration holds at once: samples are run together
/// up to this, so a large layer's weights are read once per batch, not once per sample.
pub const CALIBRATION_ACTIVATION_BYTES: usize = 64 << 20;

/// How many of `samples` calibration samples to run together when one
/// sample's activations take `bytes_per_sample`: all that fit
/// [`CALIBRATION_ACTIVATION_BYTES`], at least one. Batching changes no
/// result: each op treats its samples alike, and each calibrator still sees
/// its values sample by sample.
pub fn calibration_batch(samples: usize, bytes_per_sample: usize) -> usize {
    (CALIBRATION_ACTIVATION_BYTES / bytes_per_sample.max(1)).clamp(1, samples.max(1))
}

/// Rows of a dense layer per block of [`dense_f32`]: their outputs (and the
/// weight row they share) stay in the cache while the row is applied to each.
const DENSE_ROW_BLOCK: usize = 16;
/// Output columns per panel of [`dense_f32`]: a block's panels take 64 kB.
const DENSE_COLUMN_PANEL: usize = 1024;

/// `out[r] = bias + x[r] . w` for `rows` rows of `x` (k wide) and a k x n
/// row-major `w`, each sum in the reference kernel's order (the bias, then
/// p = 0..k, no fused multiply-add), so bit-identical to it: the f32 pass of
/// int8 calibration, most of a large model's compile. The reference reads
/// the weights a column at a time; the copies here keep tiles of outputs in
/// registers, and split a large layer's rows over the cores.
#[allow(clippy::too_many_arguments)]
pub fn dense_f32(
    x: &[f32],
    rows: usize,
    k: usize,
    n: usize,
    w: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    // Compiling has the machine to itself: a large layer's rows are split
    // over its cores (each row's sums are the same on any of them).
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let work = rows.saturating_mul(k).saturating_mul(n);
    let parts = if work < SPLIT_MIN_PRODUCTS {
        1
    } else {
        cores.min(rows / SPLIT_MIN_ROWS).max(1)
    };
    let layer = DenseLayer { k, n, w, bias };
    if parts == 1 {
        dense_one_thread(layer, x, rows, out);
        return;
    }
    let part_rows = rows.div_ceil(parts);
    std::thread::scope(|scope| {
        let xs = x[..rows * k].chunks(part_rows * k.max(1));
        let outs = out[..rows * n].chunks_mut(part_rows * n);
        for (x_part, out_part) in xs.zip(outs) {
            let part = out_part.len() / n;
            scope.spawn(move || dense_one_thread(layer, x_part, part, out_part));
        }
    });
}

/// A dense layer's weights: `w` is k x n row-major, `bias` n wide.
#[derive(Debug, Clone, Copy)]
struct DenseLayer<'a> {
    k: usize,
    n: usize,
    w: &'a [f32],
    bias: Option<&'a [f32]>,
}

/// Rows and multiply-adds below which [`dense_f32`] stays on one thread:
/// starting one costs tens of microseconds.
const SPLIT_MIN_ROWS: usize = 16;
const SPLIT_MIN_PRODUCTS: usize = 1 << 22;

/// [`dense_f32`] on the calling thread, the copy this CPU runs best.
fn dense_one_thread(layer: DenseLayer<'_>, x: &[f32], rows: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports avx512f.
        unsafe { dense_x86::dense_avx512(layer, x, rows, out) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports avx2.
        unsafe { dense_x86::dense_avx2(layer, x, rows, out) };
        return;
    }
    dense_rows(layer, x, rows, out);
}

/// The portable copy of [`dense_f32`]: separate multiplies and adds (Rust
/// contracts none into a fused multiply-add), so it gives the x86 copies' bits.
fn dense_rows(layer: DenseLayer<'_>, x: &[f32], rows: usize, out: &mut [f32]) {
    let DenseLayer { k, n, w, bias } = layer;
    if n == 0 {
        return;
    }
    let out = &mut out[..rows * n];
    for (block, out_block) in out.chunks_mut(DENSE_ROW_BLOCK * n).enumerate() {
        let first = block * DENSE_ROW_BLOCK;
        for row in out_block.chunks_exact_mut(n) {
            match bias {
                Some(b) => row.copy_from_slice(&b[..n]),
                None => row.fill(0.0),
            }
        }
        // Column panels keep the block's outputs in the nearest caches while
        // every weight row passes over them.
        for c0 in (0..n).step_by(DENSE_COLUMN_PANEL) {
            let c1 = (c0 + DENSE_COLUMN_PANEL).min(n);
            for (p, w_row) in w.chunks_exact(n).take(k).enumerate() {
                let w_panel = &w_row[c0..c1];
                for (r, row) in out_block.chunks_exact_mut(n).enumerate() {
                    let a = x[(first + r) * k + p];
                    for (o, &wv) in row[c0..c1].iter_mut().zip(w_panel) {
                        *o += a * wv;
                    }
                }
            }
        }
    }
}

/// s8 weights with one symmetric scale per output channel (column of a k x n matrix).
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedWeights {
    pub k: usize,
    pub n: usize,
    /// k x n row-major, values in [-127, 127].
    pub values: Vec<i8>,
    pub scales: Vec<f32>,
}

/// Quantizes a k x n row-major f32 matrix per column: `scale[j] = max |w[:, j]| / 127`.
pub fn quantize_weights_per_channel(
    w: &[f32],
    k: usize,
    n: usize,
) -> Result<QuantizedWeights, QuantError> {
    let needed = k.saturating_mul(n);
    if w.len() < needed {
        return Err(QuantError::BufferTooSmall {
            name: "weights",
            needed,
            actual: w.len(),
        });
    }
    let mut values = vec![0i8; needed];
    // The portable build rounds through a library call per weight (3 s for a
    // 16000 x 16000 layer); the AVX-512 and AVX2 copies round 16 / 8 at a time,
    // to the same values.
    #[cfg(target_arch = "x86_64")]
    let scales = if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports the features the copy is compiled for.
        unsafe { per_channel_avx512(&w[..needed], n, &mut values) }
    } else if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports the features the copy is compiled for.
        unsafe { per_channel_avx2(&w[..needed], n, &mut values) }
    } else {
        per_channel(&w[..needed], n, &mut values)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let scales = per_channel(&w[..needed], n, &mut values);
    Ok(QuantizedWeights {
        k,
        n,
        values,
        scales,
    })
}

/// Per-column scales of the rows of `w` (`n` wide), and the weights
/// quantized with them into `values` (as long as `w`).
#[inline(always)]
fn per_channel(w: &[f32], n: usize, values: &mut [i8]) -> Vec<f32> {
    let mut absmax = vec![0.0f32; n];
    for row in w.chunks_exact(n.max(1)) {
        for (m, &x) in absmax.iter_mut().zip(row) {
            if x.is_finite() {
                *m = m.max(x.abs());
            }
        }
    }
    let scales: Vec<f32> = absmax
        .iter()
        .map(|&m| if m > 0.0 { m / 127.0 } else { 1.0 })
        .collect();
    let inv: Vec<f32> = scales.iter().map(|s| 1.0 / s).collect();
    for (qrow, row) in values
        .chunks_exact_mut(n.max(1))
        .zip(w.chunks_exact(n.max(1)))
    {
        for ((q, &x), &iv) in qrow.iter_mut().zip(row).zip(&inv) {
            let r = (x * iv).round();
            *q = if r.is_nan() {
                0
            } else {
                r.clamp(-127.0, 127.0) as i8
            };
        }
    }
    scales
}

/// # Safety
/// The CPU supports avx512f.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn per_channel_avx512(w: &[f32], n: usize, values: &mut [i8]) -> Vec<f32> {
    per_channel(w, n, values)
}

/// # Safety
/// The CPU supports avx2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn per_channel_avx2(w: &[f32], n: usize, values: &mut [i8]) -> Vec<f32> {
    per_channel(w, n, values)
}

/// `acc * multiplier` as f32 (multiplier = scale_a * scale_w).
pub fn dequantize_i32(acc: i32, multiplier: f32) -> f32 {
    acc as f32 * multiplier
}

/// Requantizes an i32 accumulator to u8 for a consumer with parameters `out`:
/// `q = round(acc * scale_a * scale_w / out.scale) + out.zero_point`, saturated.
pub fn requantize(acc: i32, scale_a: f32, scale_w: f32, out: ActivationQuant) -> u8 {
    let m = f64::from(scale_a) * f64::from(scale_w) / f64::from(out.scale);
    let q = (f64::from(acc) * m).round() + f64::from(out.zero_point);
    q.clamp(0.0, 255.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values with varied magnitudes and signs, so that a
    /// different summation order would show in the last bits.
    fn values(len: usize, salt: u32) -> Vec<f32> {
        (0..len as u32)
            .map(|i| {
                let h = i.wrapping_mul(2_654_435_761).wrapping_add(salt) % 10_007;
                (h as f32 / 10_007.0 - 0.5) * (1.0 + (i % 7) as f32 * 3.1)
            })
            .collect()
    }

    #[test]
    fn dense_f32_is_bit_identical_to_the_reference_on_odd_shapes() {
        for &(rows, k, n) in &[
            (1, 1, 1),
            (7, 63, 65),
            (9, 257, 7),
            (17, 65, 63),
            (1, 257, 257),
            // Wider than a column panel, more rows than a block.
            (19, 9, 2100),
            // Large enough to be split over the cores (on a machine with
            // more than one), into parts of 19 and 18 rows on two.
            (37, 300, 400),
        ] {
            let x = values(rows * k, 1);
            let w = values(k * n, 2);
            let b = values(n, 3);
            for bias in [None, Some(&b[..])] {
                let mut want = vec![f32::NAN; rows * n];
                crate::reference::dense(&x, rows, k, n, &w, bias, &mut want);
                let mut got = vec![f32::NAN; rows * n];
                dense_f32(&x, rows, k, n, &w, bias, &mut got);
                let same = want
                    .iter()
                    .zip(&got)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{rows}x{k}x{n} bias {}", bias.is_some());
            }
        }
    }

    type DenseFn = fn(DenseLayer<'_>, &[f32], usize, &mut [f32]);

    /// Every copy of `dense_f32` this CPU can run, by name.
    fn dense_copies() -> Vec<(&'static str, DenseFn)> {
        let mut copies: Vec<(&'static str, DenseFn)> = vec![("portable", dense_rows)];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                copies.push(("avx2", |layer, x, rows, out| {
                    // SAFETY: avx2 was detected.
                    unsafe { dense_x86::dense_avx2(layer, x, rows, out) }
                }));
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                copies.push(("avx512", |layer, x, rows, out| {
                    // SAFETY: avx512f was detected.
                    unsafe { dense_x86::dense_avx512(layer, x, rows, out) }
                }));
            }
        }
        copies
    }

    #[test]
    fn every_dense_copy_is_bit_identical_to_the_reference() {
        // Rows: each register tile height, and both sides of packing the weights.
        let rows_list = [1, 2, 3, 4, 5, 7, 8, 9, 13];
        // Columns: within, at and past the 16-lane vectors and the 64-column strips.
        let shapes = [
            (1, 1),
            (7, 15),
            (64, 16),
            (3, 17),
            (33, 63),
            (65, 64),
            (9, 65),
            (130, 130),
        ];
        for (name, dense) in dense_copies() {
            for &rows in &rows_list {
                for &(k, n) in &shapes {
                    let x = values(rows * k, 5);
                    let w = values(k * n, 6);
                    let b = values(n, 7);
                    for bias in [None, Some(&b[..])] {
                        let mut want = vec![f32::NAN; rows * n];
                        crate::reference::dense(&x, rows, k, n, &w, bias, &mut want);
                        // Room past the output: nothing there may be written.
                        let mut got = vec![f32::NAN; rows * n + 17];
                        dense(DenseLayer { k, n, w: &w, bias }, &x, rows, &mut got);
                        let same = want
                            .iter()
                            .zip(&got)
                            .all(|(a, b)| a.to_bits() == b.to_bits());
                        assert!(same, "{name}: {rows}x{k}x{n} bias {}", bias.is_some());
                        assert!(
                            got[rows * n..].iter().all(|v| v.is_nan()),
                            "{name}: wrote past the output"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn per_channel_quantization_rounds_alike_in_every_copy() {
        // Ties, near-ties, signs, zeros, a column of zeros, and non-finite values.
        let k = 67;
        let n = 5;
        let mut w: Vec<f32> = values(k * n, 4);
        for (i, x) in w.iter_mut().enumerate() {
            match i % n {
                0 => *x = (i / n) as f32 * 0.5 - 16.0,
                1 => *x = ((i / n) as f32 * 0.5 - 16.0) * (1.0 + f32::EPSILON),
                2 => *x = 0.0,
                _ => {}
            }
        }
        w[3] = f32::NAN;
        w[4] = f32::INFINITY;
        w[n + 3] = -f32::INFINITY;
        let q = quantize_weights_per_channel(&w, k, n).unwrap();
        let mut portable = vec![0i8; k * n];
        let scales = per_channel(&w, n, &mut portable);
        assert_eq!(q.values, portable);
        assert_eq!(q.scales, scales);
        assert_eq!(q.scales[2], 1.0, "an all-zero column keeps scale 1");
        // 0.5 steps over a column whose largest is 16 (scale 16/127): ties round away from zero.
        assert!(q.values.iter().step_by(n).any(|&v| v == 127));
    }

    /// A calibrator with a small cap, so that tests reach its halvings.
    fn small_calibrator(method: CalibrationMethod, cap: usize) -> Calibrator {
        let mut c = Calibrator::new(method).expect("valid method");
        c.cap = cap;
        c
    }

    proptest::proptest! {
        #[test]
        fn observing_slices_keeps_what_observing_each_value_keeps(
            lens in proptest::collection::vec(0usize..300, 1..12),
            cap in 2usize..64,
            salt in 0u32..1000,
            nonfinite_every in proptest::option::of(3usize..50),
            minmax in proptest::bool::ANY,
        ) {
            let method = if minmax {
                CalibrationMethod::MinMax
            } else {
                CalibrationMethod::Percentile(99.0)
            };
            let mut fast = small_calibrator(method, cap);
            let mut each = small_calibrator(method, cap);
            for (call, &len) in lens.iter().enumerate() {
                let mut xs = values(len, salt + call as u32);
                if let Some(every) = nonfinite_every {
                    for (i, x) in xs.iter_mut().enumerate().filter(|(i, _)| i % every == 1) {
                        *x = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][i % 3];
                    }
                }
                fast.observe(&xs);
                each.observe_each(&xs);
                proptest::prop_assert_eq!(&fast.values, &each.values, "call {}", call);
                proptest::prop_assert_eq!(
                    (fast.min.to_bits(), fast.max.to_bits(), fast.stride, fast.seen),
                    (each.min.to_bits(), each.max.to_bits(), each.stride, each.seen)
                );
            }
        }
    }

    #[test]
    fn calibration_batches_hold_what_fits_and_at_least_one_sample() {
        assert_eq!(calibration_batch(16, 1 << 10), 16);
        assert_eq!(calibration_batch(16, CALIBRATION_ACTIVATION_BYTES / 4), 4);
        assert_eq!(calibration_batch(16, CALIBRATION_ACTIVATION_BYTES * 2), 1);
        assert_eq!(calibration_batch(0, 0), 1);
    }
}
