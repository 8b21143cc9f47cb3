//! Passes over streams larger than the caches: software prefetch for passes
//! that read several at once, and stores that bypass the caches.
//!
//! An elementwise chain over 16M floats evaluated block by block reads one of
//! its input streams at a time, so the hardware prefetchers keep fewer lines
//! in flight than a single loop over all the streams would. Asking for each
//! input a few blocks ahead restores that (see `exec::CHAIN_PREFETCH_BLOCKS`).
//! Its 64 MiB output goes to memory whatever the store; an ordinary store
//! reads each line from memory first, a non-temporal one does not. Zen 3,
//! `examples/chain_ab.rs`, three runs alternating with the build before
//! (2026-12-01): fused 31.4 / 25.6 / 33.6 ms against 32.4 / 29.5 / 36.6, op by
//! op 38.0 / 39.2 / 47.8 against 50.5 / 53.6 / 62.3 (each of its three passes
//! gains), so fused over op by op fell from 1.63-1.69x to 1.25-1.54x. Staging
//! each block in L1 and streaming it out in a second loop was slower than
//! ordinary stores there.

use std::sync::OnceLock;

use crate::tile::CacheSizes;

/// Floats per cache line (64 bytes).
const LINE_FLOATS: usize = 16;

/// Ask for `x[from..from + len]` (clipped to `x`) to be brought into cache.
pub(crate) fn prefetch(x: &[f32], from: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let end = from.saturating_add(len).min(x.len());
        let mut i = from;
        while i < end {
            // SAFETY: `i < x.len()`, so the address is inside `x`; a prefetch
            // never faults and changes no memory.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(x.as_ptr().add(i).cast::<i8>()) };
            i += LINE_FLOATS;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (x, from, len);
}

/// The last-level cache's size (read once): a pass writing more than this
/// should [`write`] its output.
pub(crate) fn last_level_cache_bytes() -> usize {
    static LLC: OnceLock<usize> = OnceLock::new();
    *LLC.get_or_init(|| CacheSizes::detect().l3)
}

/// What [`write`] stores: lane by lane, the sum or product of two slices, or
/// one slice scaled.
#[derive(Clone, Copy)]
pub(crate) enum Lanes<'a> {
    Add(&'a [f32], &'a [f32]),
    Mul(&'a [f32], &'a [f32]),
    Scale(&'a [f32], f32),
}

impl Lanes<'_> {
    /// The operands' shortest length.
    fn len(&self) -> usize {
        match *self {
            Lanes::Add(l, r) | Lanes::Mul(l, r) => l.len().min(r.len()),
            Lanes::Scale(l, _) => l.len(),
        }
    }

    fn at(&self, i: usize) -> f32 {
        match *self {
            Lanes::Add(l, r) => l[i] + r[i],
            Lanes::Mul(l, r) => l[i] * r[i],
            Lanes::Scale(l, f) => l[i] * f,
        }
    }
}

/// `dst[i] = what` at `i` for every `i < dst.len()` (the operands must be as
/// long), with non-temporal stores from the first 16-byte boundary of `dst`
/// on x86-64. Call [`fence`] after the pass, before anything reads `dst`.
pub(crate) fn write(dst: &mut [f32], what: Lanes<'_>) {
    let n = dst.len().min(what.len());
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        let head = dst.as_ptr().align_offset(16).min(n);
        let body = head + (n - head) / 4 * 4;
        for (i, d) in dst[..head].iter_mut().enumerate() {
            *d = what.at(i);
        }
        /// `quad(i)` stored past the caches at `out + i`, for i = from,
        /// from + 4, .. below `to`.
        ///
        /// # Safety
        /// `out + from..out + to` writable, `out + from` 16-byte aligned,
        /// `to - from` a multiple of 4, `quad` sound for each of those `i`.
        #[inline(always)]
        unsafe fn stream_quads(
            out: *mut f32,
            (from, to): (usize, usize),
            quad: impl Fn(usize) -> __m128,
        ) {
            for i in (from..to).step_by(4) {
                // SAFETY: the caller's guarantees; SSE is part of x86-64.
                unsafe { _mm_stream_ps(out.add(i), quad(i)) };
            }
        }
        let out = dst.as_mut_ptr();
        // SAFETY: [head, body) lies inside `dst` and every operand (`n` is at
        // most their length), `out + head` is 16-byte aligned (`align_offset`),
        // `body - head` is a multiple of 4, so each 4-float load below starts
        // at most 4 floats before `body`. SSE is part of x86-64.
        unsafe {
            let load = |x: &[f32], i: usize| _mm_loadu_ps(x.as_ptr().add(i));
            let range = (head, body);
            match what {
                Lanes::Add(l, r) => {
                    stream_quads(out, range, |i| _mm_add_ps(load(l, i), load(r, i)))
                }
                Lanes::Mul(l, r) => {
                    stream_quads(out, range, |i| _mm_mul_ps(load(l, i), load(r, i)))
                }
                Lanes::Scale(l, f) => {
                    let f = _mm_set1_ps(f);
                    stream_quads(out, range, |i| _mm_mul_ps(load(l, i), f))
                }
            }
        }
        for (i, d) in dst[..n].iter_mut().enumerate().skip(body) {
            *d = what.at(i);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    for (i, d) in dst[..n].iter_mut().enumerate() {
        *d = what.at(i);
    }
}

/// Order the non-temporal stores before later loads and stores.
pub(crate) fn fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a store fence has no operands; SSE is part of x86-64.
    unsafe {
        std::arch::x86_64::_mm_sfence()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_fills_every_offset_and_length() {
        let ones = vec![1.0f32; 100];
        let src: Vec<f32> = (0..100).map(|i| i as f32 * 0.5 - 7.0).collect();
        for offset in 0..4 {
            for len in [0usize, 1, 3, 4, 5, 17, 64, 96] {
                let mut dst = vec![f32::NAN; offset + len + 3];
                write(
                    &mut dst[offset..offset + len],
                    Lanes::Scale(&src[..len], 2.0),
                );
                fence();
                assert!(dst[..offset].iter().all(|v| v.is_nan()));
                let want: Vec<f32> = src[..len].iter().map(|v| v * 2.0).collect();
                assert_eq!(
                    &dst[offset..offset + len],
                    &want[..],
                    "offset {offset} len {len}"
                );
                assert!(dst[offset + len..].iter().all(|v| v.is_nan()));
                let mut sum = vec![0.0; len];
                let mut product = vec![0.0; len];
                write(&mut sum, Lanes::Add(&src[..len], &ones));
                write(&mut product, Lanes::Mul(&src[..len], &src[..len]));
                fence();
                for i in 0..len {
                    assert_eq!(sum[i], src[i] + 1.0);
                    assert_eq!(product[i], src[i] * src[i]);
                }
            }
        }
    }
}
