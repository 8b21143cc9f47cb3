//! Buffers for data streamed on every run (pre-packed weights, and the
//! lowered executables' constants and activations), placed on transparent huge
//! pages where the OS allows it.
//!
//! Weights are read through once per run. On 4 KiB pages every 4 KiB of them
//! needs a page translation, and once they exceed what the TLB maps (Zen 4's
//! L2 TLB: 3072 entries, 12 MiB of 4 KiB pages) every page walk is a miss.
//! This machine's kernel backs memory with 2 MiB pages only on request
//! (`transparent_hugepage=madvise`), so the buffer is over-allocated by one
//! huge page and its 2 MiB-aligned part is advised before the first touch; the
//! part before it (under 2 MiB) is never touched, so it takes no memory.
//!
//! Measured one instance at a time, alternating (`examples/hugepages.rs`,
//! 2026-11-29): an 8192x8192 GEMV (256 MiB f32, 128 MiB f16) 1.11-1.34x
//! faster; `mlp-1024` (8 MiB, within the TLB's reach) 1.02x at batch 1, 1.00x
//! at batch 64. A packing buffer on huge pages measured no gain (it is written,
//! then read from cache), so only data streamed on every run uses this.
//! Smaller buffers are ordinary vectors started on a cache line: the
//! allocator aligns to 16 bytes, so where in a line they started depended on
//! the process's earlier allocations (2026-12-02, Xeon host 2: the
//! hotel-ranking MLP, 192 -> 384 -> 192 -> 16, tiled at batch 1 ran 6.3-7.5 us
//! from one process to the next, and 4.5-4.7 us started on lines). An
//! executable's large buffers: the 16M-element
//! chain, three inputs and an output of 64 MiB, fused 28 ms on huge pages
//! against 35 ms on 4 KiB pages (`examples/chain_ab.rs` with
//! `WORKBENCH_HUGE_PAGES=0` for the second, medians of six runs of each,
//! alternating, 2026-12-01).

/// Size of an x86-64 transparent huge page.
const HUGE_PAGE: usize = 2 << 20;

/// A buffer of `T::default()` values (zero for numbers); buffers of at least
/// one huge page are advised to use huge pages (Linux; elsewhere, or if the
/// kernel declines, a plain buffer). Reads and writes as a slice.
pub struct PageBuffer<T> {
    /// The allocation. Its elements `start..start + len` are initialized and
    /// are the buffer; on huge pages the vector's own length stays 0 (the pad
    /// before `start` is never written), and it is never resized.
    buf: Vec<T>,
    start: usize,
    len: usize,
    /// Elements from `start` initialized: `len` may shrink below it and grow
    /// back up to it without touching the allocation.
    initialized: usize,
}

impl<T: Copy + Default> PageBuffer<T> {
    pub fn zeroed(len: usize) -> PageBuffer<T> {
        let size = std::mem::size_of::<T>().max(1);
        let bytes = len.saturating_mul(size);
        if bytes < HUGE_PAGE || !huge_pages_wanted() {
            return PageBuffer::on_own_lines(len);
        }
        // Room to start the data on the next huge-page boundary.
        let pad = HUGE_PAGE.div_ceil(size) + 1;
        let Some(capacity) = len.checked_add(pad) else {
            return PageBuffer::on_own_lines(len);
        };
        // Not touched yet: a fresh allocation this size is mapped, not written.
        let mut buf: Vec<T> = Vec::with_capacity(capacity);
        let base = buf.as_ptr() as usize;
        let aligned = base.next_multiple_of(HUGE_PAGE);
        // start <= pad, so [aligned, aligned + bytes) lies inside the allocation.
        let start = (aligned - base).div_ceil(size);
        advise_huge(aligned, bytes);
        // First touch after the advice, of the data only: its page faults take
        // huge pages, and the pad before it is never written.
        for slot in &mut buf.spare_capacity_mut()[start..start + len] {
            slot.write(T::default());
        }
        PageBuffer {
            buf,
            start,
            len,
            initialized: len,
        }
    }

    /// A plain allocation whose data starts on a cache line: the allocator
    /// aligns to 16 bytes only, and where in a line a buffer starts then
    /// depends on what the process allocated before, so a kernel's 64-byte
    /// loads and stores could split lines in one process and not the next.
    fn on_own_lines(len: usize) -> PageBuffer<T> {
        let pad = CACHE_LINE.div_ceil(std::mem::size_of::<T>().max(1));
        let buf = vec![T::default(); len.saturating_add(pad)];
        let start = line_offset(&buf).min(pad);
        PageBuffer {
            buf,
            start,
            len,
            initialized: len,
        }
    }
}

/// Bytes in a cache line.
pub(crate) const CACHE_LINE: usize = 64;

/// How many elements into `v` its first cache line starts (fewer than a
/// line holds; exact for the numeric types, whose size divides a line).
pub(crate) fn line_offset<T>(v: &[T]) -> usize {
    let base = v.as_ptr() as usize;
    (base.next_multiple_of(CACHE_LINE) - base) / std::mem::size_of::<T>().max(1)
}

impl<T> PageBuffer<T> {
    /// Makes the buffer `len` long if its allocation already holds that many
    /// initialized elements (whatever values they last had); returns whether
    /// it did. Never allocates.
    pub fn set_len_within(&mut self, len: usize) -> bool {
        if len > self.initialized {
            return false;
        }
        self.len = len;
        true
    }
}

impl<T: Copy + Default> PageBuffer<T> {
    /// A copy of `src` (on huge pages as `zeroed` places them).
    pub fn copied(src: &[T]) -> PageBuffer<T> {
        let mut buf = PageBuffer::zeroed(src.len());
        buf.copy_from_slice(src);
        buf
    }
}

impl<T> Default for PageBuffer<T> {
    /// Empty, no allocation.
    fn default() -> PageBuffer<T> {
        PageBuffer {
            buf: Vec::new(),
            start: 0,
            len: 0,
            initialized: 0,
        }
    }
}

impl<T> std::ops::Deref for PageBuffer<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: elements start..start + len of the allocation are initialized
        // (see `buf`), and the vector is never resized, so they stay there.
        unsafe { std::slice::from_raw_parts(self.buf.as_ptr().add(self.start), self.len) }
    }
}

impl<T> std::ops::DerefMut for PageBuffer<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as `deref`; `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.buf.as_mut_ptr().add(self.start), self.len) }
    }
}

impl<T: Copy + Default> Clone for PageBuffer<T> {
    fn clone(&self) -> PageBuffer<T> {
        PageBuffer::copied(self)
    }
}

impl<T> std::fmt::Debug for PageBuffer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PageBuffer({} x {})",
            self.len,
            std::any::type_name::<T>()
        )
    }
}

/// `WORKBENCH_HUGE_PAGES=0` turns the advice off (to measure what it does).
fn huge_pages_wanted() -> bool {
    std::env::var("WORKBENCH_HUGE_PAGES").map_or(true, |v| v != "0")
}

#[cfg(target_os = "linux")]
fn advise_huge(aligned: usize, bytes: usize) {
    // Whole huge pages only: the advice applies to what it covers.
    let len = bytes / HUGE_PAGE * HUGE_PAGE;
    if len == 0 {
        return;
    }
    // SAFETY: [aligned, aligned + len) lies inside the caller's allocation
    // (over-allocated by one huge page, `aligned` within that pad); madvise
    // only changes how the range is backed, never its contents or validity.
    // A failure (an old kernel, THP off) leaves ordinary pages.
    unsafe {
        libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge(_aligned: usize, _bytes: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    /// From wherever a slice starts, the offset lands on a cache line
    /// within the first line's worth of elements.
    #[test]
    fn line_offset_reaches_the_next_cache_line() {
        let floats = vec![0.0f32; 64];
        for skip in 0..CACHE_LINE / 4 {
            let s = &floats[skip..];
            let off = line_offset(s);
            assert!(off < CACHE_LINE / 4);
            assert_eq!(s[off..].as_ptr() as usize % CACHE_LINE, 0, "skip {skip}");
        }
        let bytes = vec![0i8; 256];
        for skip in 0..CACHE_LINE {
            let s = &bytes[skip..];
            let off = line_offset(s);
            assert!(off < CACHE_LINE);
            assert_eq!(s[off..].as_ptr() as usize % CACHE_LINE, 0, "skip {skip}");
        }
    }

    #[test]
    fn zeroed_and_writable_at_every_size() {
        let sizes = [
            0usize,
            1,
            1000,
            HUGE_PAGE / 4,
            HUGE_PAGE / 4 + 3,
            3 * HUGE_PAGE / 4 + 17,
        ];
        for len in sizes {
            let mut b: PageBuffer<f32> = PageBuffer::zeroed(len);
            assert_eq!(b.len(), len);
            assert!(b.iter().all(|x| *x == 0.0));
            for (i, x) in b.iter_mut().enumerate() {
                *x = i as f32;
            }
            let c = b.clone();
            assert_eq!(&c[..], &b[..]);
            if len * 4 >= HUGE_PAGE && huge_pages_wanted() {
                // The data starts on a huge-page boundary.
                assert_eq!(b.as_ptr() as usize % HUGE_PAGE, 0);
            } else {
                // And a smaller buffer on a cache line, as its copy.
                assert_eq!(b.as_ptr() as usize % CACHE_LINE, 0, "{len}");
                assert_eq!(c.as_ptr() as usize % CACHE_LINE, 0, "{len}");
            }
        }
        // Byte-sized elements too (int8 weights).
        let b: PageBuffer<i8> = PageBuffer::zeroed(HUGE_PAGE + 5);
        assert_eq!(b.len(), HUGE_PAGE + 5);
        assert!(b.iter().all(|x| *x == 0));
    }
}
