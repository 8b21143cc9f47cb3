//! Why the roofline's L2 copy figure was below DRAM: times the bandwidth probe
//! kernels at each working-set size with buffers placed as `measure_level`
//! places them, against variants (dst offset from src, the old `memcpy` copy,
//! the old single-width read loop).
//!
//! `cargo run --release -p workbench-kernels --example bandwidth_probe`

use std::hint::black_box;
use std::time::{Duration, Instant};
use workbench_kernels::probe as kprobe;

/// Best GB/s of `run` (bytes moved per call) over ~`budget`.
fn best_gbs(budget: Duration, mut run: impl FnMut() -> usize) -> f64 {
    let start = Instant::now();
    let mut reps = 1u32;
    let mut best = 0.0f64;
    while start.elapsed() < budget {
        let t = Instant::now();
        let mut bytes = 0;
        for _ in 0..reps {
            bytes += run();
        }
        let dt = t.elapsed();
        if dt < Duration::from_micros(500) {
            reps *= 2;
            continue;
        }
        best = best.max(bytes as f64 / dt.as_secs_f64() / 1e9);
    }
    best
}

/// The copy kernel before the fix: `copy_from_slice`, i.e. libc `memcpy`.
fn memcpy_copy(dst: &mut [f32], src: &[f32]) -> usize {
    let n = dst.len().min(src.len());
    dst[..n].copy_from_slice(&src[..n]);
    n
}

/// The read kernel before the fix (64 partial sums through a zip).
fn old_read_sum(data: &[f32]) -> f32 {
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

fn page_offset<T>(p: *const T) -> usize {
    p as usize % 4096
}

fn main() {
    let budget = Duration::from_millis(200);
    for (level, bytes) in [
        ("L1", 16usize << 10),
        ("L2", 256 << 10),
        ("L3", 8 << 20),
        ("DRAM", 64 << 20),
    ] {
        let elems = bytes / 4;
        let read_buf: Vec<f32> = (0..elems).map(|i| (i % 7) as f32).collect();
        let old_read = best_gbs(budget, || {
            black_box(old_read_sum(black_box(&read_buf)));
            elems * 4
        });
        let new_read = best_gbs(budget, || {
            black_box(kprobe::read_sum(black_box(&read_buf)));
            elems * 4
        });
        // The same loop with loads 16 bytes off a 64-byte line boundary.
        let misaligned_read = {
            let shifted: Vec<f32> = vec![1.0; elems + 32];
            let start = shifted.as_ptr().align_offset(64).min(16) + 4;
            best_gbs(budget, || {
                black_box(kprobe::read_sum(black_box(&shifted[start..start + elems])));
                elems * 4
            })
        };
        drop(read_buf);
        // Placed as measure_level placed them before the fix: two separate Vecs.
        let half = elems / 2;
        let src = vec![1.0f32; half];
        let mut dst = vec![0.0f32; half];
        let offsets = (page_offset(src.as_ptr()), page_offset(dst.as_ptr()));
        let memcpy_vecs = best_gbs(budget, || {
            memcpy_copy(black_box(&mut dst), black_box(&src)) * 8
        });
        let kernel_vecs = best_gbs(budget, || {
            kprobe::copy(black_box(&mut dst), black_box(&src)) * 8
        });
        drop((src, dst));
        // One allocation, dst placed a page-offset of 1 KiB + 64 B after src's.
        let src = vec![1.0f32; half];
        let mut block = vec![0.0f32; 2 * half + 4096];
        let skew = 1024 / 4 + 64 / 4;
        let memcpy_skewed = {
            let (s, d) = block.split_at_mut(half);
            s.copy_from_slice(&src);
            let d = &mut d[skew..skew + half];
            best_gbs(budget, || memcpy_copy(black_box(d), black_box(s)) * 8)
        };
        let kernel_skewed = {
            let (s, d) = block.split_at_mut(half);
            let d = &mut d[skew..skew + half];
            best_gbs(budget, || kprobe::copy(black_box(d), black_box(s)) * 8)
        };
        println!(
            "{level:>4} ws={bytes:>9}  read old {old_read:6.1} new {new_read:6.1} new+16B {misaligned_read:6.1} | copy (src,dst page offsets {offsets:?}): memcpy {memcpy_vecs:6.1} kernel {kernel_vecs:6.1} | dst skewed: memcpy {memcpy_skewed:6.1} kernel {kernel_skewed:6.1}  GB/s"
        );
    }
}
