//! Passes over streams larger than the caches: software prefetch for passes
//! that read several at once, and stores that bypass the caches.
//!
//! An elementwise chain over 16M floats evaluated block by block reads one of
//! its input streams at a time, so the hardware prefetchers keep fewer lines
//! in flight than a single loop over all the streams would. Asking for each
//! input a few blocks ahead restores that (see `chain::PREFETCH_BLOCKS`).
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

/// Ask for `x[from..from + FLOATS]` (clipped to `x`) to be brought into
/// cache. A whole range is asked for line by line with no loop (one
/// instruction a line: the chains ask for three streams a block).
#[inline(always)]
pub(crate) fn prefetch<const FLOATS: usize>(x: &[f32], from: usize) {
    #[cfg(target_arch = "x86_64")]
    if from.checked_add(FLOATS).is_some_and(|end| end <= x.len()) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        for line in 0..FLOATS.div_ceil(LINE_FLOATS) {
            // SAFETY: `from + line * LINE_FLOATS < from + FLOATS <= x.len()`,
            // so the address is inside `x`; a prefetch never faults and
            // changes no memory.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(x.as_ptr().add(from + line * LINE_FLOATS).cast::<i8>())
            };
        }
        return;
    }
    prefetch_clipped(x, from, FLOATS);
}

/// [`prefetch`] of a range that may run past `x`'s end.
fn prefetch_clipped(x: &[f32], from: usize, len: usize) {
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

/// A first op lane by lane: the sum or product of two slices, one slice
/// scaled, or one slice plus another scaled.
#[derive(Clone, Copy)]
pub(crate) enum Lanes<'a> {
    Add(&'a [f32], &'a [f32]),
    Mul(&'a [f32], &'a [f32]),
    Scale(&'a [f32], f32),
    /// `l + r * f` (multiplied, then added: two roundings, as op by op).
    AddScaled(&'a [f32], &'a [f32], f32),
}

/// A second op on the first one's result: nothing, plus or times one more
/// slice, or scaled.
#[derive(Clone, Copy)]
pub(crate) enum Then<'a> {
    Nothing,
    Add(&'a [f32]),
    Mul(&'a [f32]),
    Scale(f32),
}

/// What [`write`] stores: `then` applied to `first`, lane by lane (one pass,
/// the first result never stored).
#[derive(Clone, Copy)]
pub(crate) struct Expr<'a> {
    pub first: Lanes<'a>,
    pub then: Then<'a>,
}

impl Lanes<'_> {
    /// The operands' shortest length.
    fn len(&self) -> usize {
        match *self {
            Lanes::Add(l, r) | Lanes::Mul(l, r) | Lanes::AddScaled(l, r, _) => l.len().min(r.len()),
            Lanes::Scale(l, _) => l.len(),
        }
    }

    fn at(&self, i: usize) -> f32 {
        match *self {
            Lanes::Add(l, r) => l[i] + r[i],
            Lanes::Mul(l, r) => l[i] * r[i],
            Lanes::Scale(l, f) => l[i] * f,
            Lanes::AddScaled(l, r, f) => l[i] + r[i] * f,
        }
    }
}

impl Expr<'_> {
    /// The operands' shortest length.
    fn len(&self) -> usize {
        match self.then {
            Then::Add(z) | Then::Mul(z) => self.first.len().min(z.len()),
            Then::Nothing | Then::Scale(_) => self.first.len(),
        }
    }

    pub(crate) fn at(&self, i: usize) -> f32 {
        let v = self.first.at(i);
        match self.then {
            Then::Nothing => v,
            Then::Add(z) => v + z[i],
            Then::Mul(z) => v * z[i],
            Then::Scale(f) => v * f,
        }
    }
}

/// The body of a streaming pass: `then` over `first(i)` stored at `out + i`
/// for each vector `i` in `head..body`, one loop per `then` (a macro, so
/// each loop is inlined into the `target_feature` function that expands it).
macro_rules! store_then {
    ($then:expr, $first:expr, ($head:expr, $body:expr, $out:expr, $lanes:literal),
     $load:ident, $add:ident, $mul:ident, $splat:ident, $store:ident) => {{
        let first = $first;
        let mut i = $head;
        match $then {
            Then::Nothing => {
                while i < $body {
                    $store($out.add(i), first(i));
                    i += $lanes;
                }
            }
            Then::Add(z) => {
                while i < $body {
                    $store($out.add(i), $add(first(i), $load(z.as_ptr().add(i))));
                    i += $lanes;
                }
            }
            Then::Mul(z) => {
                while i < $body {
                    $store($out.add(i), $mul(first(i), $load(z.as_ptr().add(i))));
                    i += $lanes;
                }
            }
            Then::Scale(f) => {
                let f = $splat(f);
                while i < $body {
                    $store($out.add(i), $mul(first(i), f));
                    i += $lanes;
                }
            }
        }
    }};
}

/// Defines a `write` at one vector width: `dst[i] = what` at `i` for every
/// `i < dst.len()` (the operands must be as long), with non-temporal stores
/// from the first boundary of `dst` aligned to the vector. Call [`fence`]
/// after the pass, before anything reads `dst`.
macro_rules! streaming_write {
    ($(#[$attr:meta])* $vis:vis $name:ident, $lanes:literal,
     $load:ident, $add:ident, $mul:ident, $splat:ident, $store:ident) => {
        $(#[$attr])*
        $vis unsafe fn $name(dst: &mut [f32], what: Expr<'_>) {
            use std::arch::x86_64::*;
            let n = dst.len().min(what.len());
            let head = dst.as_ptr().align_offset($lanes * 4).min(n);
            let body = head + (n - head) / $lanes * $lanes;
            for (i, d) in dst[..head].iter_mut().enumerate() {
                *d = what.at(i);
            }
            let out = dst.as_mut_ptr();
            // SAFETY: [head, body) lies inside `dst` and every operand (`n`
            // is at most their length) and is a whole number of vectors, so
            // each load below ends at most at `body`; `out + head` is aligned
            // to the vector (`align_offset`), as the streaming store needs;
            // the vector instructions are those the caller's CPU has (the
            // function's `target_feature`, or SSE, part of x86-64).
            unsafe {
                let load = |x: &[f32], i: usize| $load(x.as_ptr().add(i));
                match what.first {
                    Lanes::Add(l, r) => store_then!(
                        what.then, |i| $add(load(l, i), load(r, i)), (head, body, out, $lanes),
                        $load, $add, $mul, $splat, $store
                    ),
                    Lanes::Mul(l, r) => store_then!(
                        what.then, |i| $mul(load(l, i), load(r, i)), (head, body, out, $lanes),
                        $load, $add, $mul, $splat, $store
                    ),
                    Lanes::Scale(l, f) => {
                        let f = $splat(f);
                        store_then!(
                            what.then, |i| $mul(load(l, i), f), (head, body, out, $lanes),
                            $load, $add, $mul, $splat, $store
                        )
                    }
                    Lanes::AddScaled(l, r, f) => {
                        let f = $splat(f);
                        store_then!(
                            what.then, |i| $add(load(l, i), $mul(load(r, i), f)), (head, body, out, $lanes),
                            $load, $add, $mul, $splat, $store
                        )
                    }
                }
            }
            for (i, d) in dst[..n].iter_mut().enumerate().skip(body) {
                *d = what.at(i);
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
streaming_write!(
    /// SSE: 4 lanes.
    ///
    /// # Safety
    /// None beyond x86-64 (SSE is part of it); see [`write`].
    write_sse, 4,
    _mm_loadu_ps, _mm_add_ps, _mm_mul_ps, _mm_set1_ps, _mm_stream_ps
);

/// `dst[i] = what` at `i` for every `i < dst.len()` (the operands must be as
/// long), with non-temporal stores from the first 16-byte boundary of `dst`
/// on x86-64. Call [`fence`] after the pass, before anything reads `dst`.
#[cfg(target_arch = "x86_64")]
pub(crate) fn write(dst: &mut [f32], what: Expr<'_>) {
    // SAFETY: SSE is part of x86-64.
    unsafe { write_sse(dst, what) }
}

#[cfg(target_arch = "x86_64")]
streaming_write!(
    /// AVX: 8 lanes.
    ///
    /// # Safety
    /// The CPU supports AVX (callers check AVX2, which implies it).
    #[target_feature(enable = "avx")]
    #[inline]
    pub(crate) write_avx2, 8,
    _mm256_loadu_ps, _mm256_add_ps, _mm256_mul_ps, _mm256_set1_ps, _mm256_stream_ps
);

#[cfg(target_arch = "x86_64")]
streaming_write!(
    /// AVX-512F: 16 lanes.
    ///
    /// # Safety
    /// The CPU supports AVX-512F.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) write_avx512, 16,
    _mm512_loadu_ps, _mm512_add_ps, _mm512_mul_ps, _mm512_set1_ps, _mm512_stream_ps
);

/// Elsewhere: ordinary stores.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn write(dst: &mut [f32], what: Expr<'_>) {
    let n = dst.len().min(what.len());
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

    /// A streaming write at one width.
    type Writer = fn(&mut [f32], Expr<'_>);

    /// Each width this CPU runs, as the chains call it.
    fn writers() -> Vec<(&'static str, Writer)> {
        let mut writers: Vec<(&'static str, Writer)> = vec![("sse", write)];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx") {
                // SAFETY: AVX is available (checked just above).
                writers.push(("avx", |d, e| unsafe { write_avx2(d, e) }));
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: AVX-512F is available (checked just above).
                writers.push(("avx512", |d, e| unsafe { write_avx512(d, e) }));
            }
        }
        writers
    }

    /// Every width writes each first op and each second op exactly, at every
    /// alignment of the output up to a 64-byte vector and lengths that end
    /// mid-vector, and nothing outside the output.
    #[test]
    fn write_fills_every_offset_and_length() {
        let l: Vec<f32> = (0..120).map(|i| i as f32 * 0.5 - 7.0).collect();
        let r: Vec<f32> = (0..120).map(|i| (i % 9) as f32 - 3.25).collect();
        let z: Vec<f32> = (0..120).map(|i| (i % 5) as f32 * 0.75 + 0.5).collect();
        for (width, write) in writers() {
            for offset in 0..16 {
                for len in [0usize, 1, 3, 4, 5, 17, 33, 64, 96, 100] {
                    let (l, r, z) = (&l[..len], &r[..len], &z[..len]);
                    let firsts = [
                        Lanes::Add(l, r),
                        Lanes::Mul(l, r),
                        Lanes::Scale(l, 2.5),
                        Lanes::AddScaled(l, r, -0.5),
                    ];
                    let thens = [Then::Nothing, Then::Add(z), Then::Mul(z), Then::Scale(3.0)];
                    for first in firsts {
                        for then in thens {
                            let what = Expr { first, then };
                            let mut dst = vec![f32::NAN; offset + len + 17];
                            write(&mut dst[offset..offset + len], what);
                            fence();
                            assert!(dst[..offset].iter().all(|v| v.is_nan()), "{width}");
                            for (i, got) in dst[offset..offset + len].iter().enumerate() {
                                assert_eq!(
                                    got.to_bits(),
                                    what.at(i).to_bits(),
                                    "{width} offset {offset} len {len} at {i}"
                                );
                            }
                            assert!(dst[offset + len..].iter().all(|v| v.is_nan()), "{width}");
                        }
                    }
                }
            }
        }
        // The reference the vectors are held to: the ops in order, two roundings.
        let what = Expr {
            first: Lanes::AddScaled(&l[..3], &r[..3], 0.5),
            then: Then::Mul(&z[..3]),
        };
        for i in 0..3 {
            assert_eq!(what.at(i), (l[i] + r[i] * 0.5) * z[i]);
        }
    }
}
