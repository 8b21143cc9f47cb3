//! Calibration and the quantization maths.
//!
//! Activations: per-tensor asymmetric u8, `x ~= scale * (q - zero_point)`.
//! Weights: per-output-channel symmetric s8 in [-127, 127], `w ~= scale[n] * q`.
//! A product accumulates in i32: `sum (qa - za) * qw`, then
//! `y = scale_a * scale_w[n] * acc` (dequantize) or requantized to u8.

use super::QuantError;

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
    /// 16 wide where AVX-512 is present (the baseline build is 4 wide).
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
        for &x in xs.iter().filter(|x| x.is_finite()) {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
            if matches!(self.method, CalibrationMethod::Percentile(_)) {
                if self.seen.is_multiple_of(self.stride) {
                    self.values.push(x);
                    if self.values.len() >= self.cap {
                        // Keep every other value and halve the sampling rate.
                        let kept: Vec<f32> = self.values.iter().step_by(2).copied().collect();
                        self.values = kept;
                        self.stride *= 2;
                    }
                }
                self.seen += 1;
            }
        }
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
    let mut absmax = vec![0.0f32; n];
    for row in w[..needed].chunks_exact(n.max(1)).take(k) {
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
    let mut values = vec![0i8; needed];
    for (qrow, row) in values
        .chunks_exact_mut(n.max(1))
        .zip(w[..needed].chunks_exact(n.max(1)))
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
    Ok(QuantizedWeights {
        k,
        n,
        values,
        scales,
    })
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
