//! Software prefetch for passes that read several streams larger than the
//! caches at once.
//!
//! An elementwise chain over 16M floats evaluated block by block reads one of
//! its input streams at a time, so the hardware prefetchers keep fewer lines
//! in flight than a single loop over all the streams would. Asking for each
//! input a few blocks ahead restores that (see `exec::CHAIN_PREFETCH_BLOCKS`).

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
