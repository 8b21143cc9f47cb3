//! Tile (blocking) parameters of the tiled GEMM: the one place they live.
//! The autotuner searches over these fields.

use crate::error::KernelError;
use crate::simd::SimdLevel;

/// Goto/BLIS blocking: C is computed in `mc x nc` blocks over `kc`-deep slices of K,
/// each block as `mr x nr` register tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileParams {
    /// Rows of A packed per block (sized for L2).
    pub mc: usize,
    /// Columns of B packed per block (sized for L3).
    pub nc: usize,
    /// Depth of a packed slice (sized so an `mr x kc` sliver of A stays in L1).
    pub kc: usize,
    /// Register tile rows.
    pub mr: usize,
    /// Register tile columns.
    pub nr: usize,
    /// Threads for one GEMM (1 = serial). The calling thread and helpers from a
    /// shared pool take blocks of C in turn; GEMMs under
    /// [`crate::gemm::PARALLEL_MIN_FLOPS`] run serially, and those under
    /// [`crate::gemm::WAKE_MIN_FLOPS`] only when a helper is already awake.
    pub threads: usize,
    /// Order of the two innermost block loops (which sliver stays in L1).
    pub loop_order: LoopOrder,
    /// Independent accumulator sets the micro-kernel splits K across, for
    /// register tiles of at most [`K_SPLIT_MAX_ROWS`] rows (1 = no split). A
    /// 1x32 tile has two accumulators: each K step waits for the previous
    /// FMA's latency; two or four sets keep both FMA units busy.
    pub k_split: usize,
    /// Read a row-major B operand in place instead of packing it (whole
    /// `nr`-column slivers; a partial last sliver is still packed): saves the
    /// packing pass where K is shallow and N long (convolutions as GEMMs).
    /// Pre-packed, gathered and transposed B are always packed.
    pub b_in_place: bool,
    /// Read a row-major A in place instead of packing it (the micro-kernel
    /// broadcasts from `mr` rows `lda` apart): saves the packing pass of small
    /// GEMMs. Only where [`a_in_place_supported`]; k-major A is always read in place.
    pub a_in_place: bool,
    /// Skip the products of A's exact zeros (the output of a ReLU) when most
    /// of A is zero: same bits, fewer FMAs (see `crate::sparse`). Only for a
    /// row-major A times pre-packed, finite weights in one K slice, on AVX-512.
    pub skip_zeros: bool,
}

/// Whether `simd` has micro-kernels reading a row-major A in place.
pub fn a_in_place_supported(simd: SimdLevel) -> bool {
    simd == SimdLevel::Avx512
}

/// Order of the `jr` (B sliver) and `ir` (A sliver) loops inside one `mc x nc` block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LoopOrder {
    /// For each `kc x nr` B sliver, every A sliver of the block: the B sliver is
    /// reused across row tiles, the packed A block streams from L2.
    #[default]
    ColumnsOuter,
    /// For each `mr x kc` A sliver, every B sliver of the panel: the A sliver is
    /// reused across column tiles and C is written along its rows.
    RowsOuter,
}

impl LoopOrder {
    pub const ALL: [LoopOrder; 2] = [LoopOrder::ColumnsOuter, LoopOrder::RowsOuter];

    /// Stable number used in tuning logs.
    pub fn index(self) -> usize {
        match self {
            LoopOrder::ColumnsOuter => 0,
            LoopOrder::RowsOuter => 1,
        }
    }

    pub fn from_index(i: usize) -> Option<LoopOrder> {
        LoopOrder::ALL.get(i).copied()
    }
}

/// Tallest register tile the K-split micro-kernels exist for (taller tiles have
/// enough accumulators to hide the FMA latency).
pub const K_SPLIT_MAX_ROWS: usize = 3;

/// K-split factors the micro-kernels of a SIMD level are compiled for.
pub fn supported_k_splits(simd: SimdLevel) -> &'static [usize] {
    match simd {
        SimdLevel::Avx512 => &[1, 2, 4],
        SimdLevel::Avx2Fma | SimdLevel::Portable => &[1],
    }
}

/// Data cache sizes in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSizes {
    pub l1d: usize,
    pub l2: usize,
    pub l3: usize,
}

impl CacheSizes {
    /// Used when sysfs is not readable: the smallest common x86 figures.
    pub const FALLBACK: CacheSizes = CacheSizes {
        l1d: 32 << 10,
        l2: 256 << 10,
        l3: 8 << 20,
    };

    /// Read `/sys/devices/system/cpu/cpu0/cache/index*/{level,type,size}`; falls back per level.
    pub fn detect() -> CacheSizes {
        let mut sizes = CacheSizes::FALLBACK;
        let base = std::path::Path::new("/sys/devices/system/cpu/cpu0/cache");
        for index in 0..8 {
            let dir = base.join(format!("index{index}"));
            let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
            let (Some(level), Some(kind), Some(size)) = (read("level"), read("type"), read("size"))
            else {
                continue;
            };
            let Some(bytes) = parse_cache_size(&size) else {
                continue;
            };
            match (level.trim(), kind.trim()) {
                ("1", "Data") | ("1", "Unified") => sizes.l1d = bytes,
                ("2", _) => sizes.l2 = bytes,
                ("3", _) => sizes.l3 = bytes,
                _ => {}
            }
        }
        sizes
    }
}

/// Parse sysfs sizes like `32K`, `1024K`, `32768K`, `8M`.
pub fn parse_cache_size(text: &str) -> Option<usize> {
    let t = text.trim();
    let (digits, mult) = match t.chars().last()? {
        'K' | 'k' => (&t[..t.len() - 1], 1 << 10),
        'M' | 'm' => (&t[..t.len() - 1], 1 << 20),
        'G' | 'g' => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    digits.trim().parse::<usize>().ok()?.checked_mul(mult)
}

/// Column widths and largest row count of the micro-kernels of a SIMD level.
fn micro_tile_shapes(simd: SimdLevel) -> (&'static [usize], usize) {
    match simd {
        SimdLevel::Avx512 => (&[16, 32], 14),
        SimdLevel::Avx2Fma => (&[8, 16], 6),
        SimdLevel::Portable => (&[8, 16], 8),
    }
}

/// Whether a micro-kernel exists for an `mr x nr` tile at `simd` (no allocation).
pub fn micro_tile_supported(simd: SimdLevel, mr: usize, nr: usize) -> bool {
    let (nrs, max_mr) = micro_tile_shapes(simd);
    nrs.contains(&nr) && (1..=max_mr).contains(&mr)
}

/// Register tiles (mr, nr) the micro-kernels of a SIMD level are compiled for.
pub fn supported_micro_tiles(simd: SimdLevel) -> Vec<(usize, usize)> {
    let (nrs, max_mr) = micro_tile_shapes(simd);
    nrs.iter()
        .flat_map(|&nr| (1..=max_mr).map(move |mr| (mr, nr)))
        .collect()
}

/// Default register tile of a SIMD level.
pub fn default_micro_tile(simd: SimdLevel) -> (usize, usize) {
    match simd {
        SimdLevel::Avx512 => (12, 32),
        SimdLevel::Avx2Fma => (6, 16),
        SimdLevel::Portable => (4, 16),
    }
}

impl TileParams {
    /// Blocking derived from cache sizes for the given SIMD level's default register tile.
    pub fn for_caches(caches: CacheSizes, simd: SimdLevel) -> TileParams {
        let (mr, nr) = default_micro_tile(simd);
        // Deep K slices: the kc x nr sliver of B in a quarter of L2, at most 1024
        // deep. C is read and written again for every K slice, so one slice
        // where K allows saves whole passes over C, and L2 feeds both slivers
        // (the A sliver no longer fits L1) at the FMA rate. Measured on Zen 4
        // (1 MiB L2, 12x32 tiles; `examples/tile_ab.rs`, one instance at a
        // time, 3 rounds), kc 1024 / mc 132 against the L1-sized kc 384 / mc 336:
        // sgemm n=1024 1.06-1.13x, n=2048 1.05-1.09x, mlp-1024 1.04-1.09x at
        // batch 1, 8 and 64, n=256, n=512 and convnet-224 unchanged, the
        // transformer block at batch 8 1.5% slower.
        let kc = (caches.l2 / 4 / (4 * nr) / 128).clamp(1, 8) * 128;
        // The packed mc x kc block of A in about half of L2.
        let mc = ((caches.l2 / 2 / (4 * kc)).clamp(mr, 1024) / mr).max(1) * mr;
        // The packed kc x nc block of B in a quarter of L3 (it is shared).
        let nc = ((caches.l3 / 4 / (4 * kc)).clamp(nr, 4096) / nr).max(1) * nr;
        // AVX2: each 6x16 tile's A sliver (24 KiB at kc 1024) stays in L1 while
        // the B slivers stream past it (prefetched). Alternating runs on Zen 3
        // (512 KiB L2; 2026-11-30, `examples/tile_ab.rs` style, 5 rounds):
        // sgemm n=1024 / 2048 about 1.1x, `mlp-1024` batch 8 / 64 1.15x / 1.1x,
        // n=256 / 512 and the transformer block even. Before the B prefetch, n=2048
        // had been 0.64-0.98x. AVX-512 keeps columns outer (measured on Zen 4).
        let loop_order = if simd == SimdLevel::Avx2Fma {
            LoopOrder::RowsOuter
        } else {
            LoopOrder::ColumnsOuter
        };
        TileParams {
            mc,
            nc,
            kc,
            mr,
            nr,
            threads: 1,
            loop_order,
            k_split: 1,
            b_in_place: false,
            a_in_place: false,
            skip_zeros: true,
        }
    }

    /// Blocking for this machine's caches and detected SIMD level.
    pub fn for_this_machine() -> TileParams {
        TileParams::for_caches(CacheSizes::detect(), crate::simd::detect())
    }

    /// Check the fields against what the micro-kernels of `simd` support.
    pub fn validate(&self, simd: SimdLevel) -> Result<(), KernelError> {
        if self.mc == 0 || self.nc == 0 || self.kc == 0 || self.threads == 0 {
            return Err(KernelError::Gemm(format!(
                "tile parameters must be > 0, got {self:?}"
            )));
        }
        if !micro_tile_supported(simd, self.mr, self.nr) {
            return Err(KernelError::Gemm(format!(
                "register tile {}x{} not available for {simd} (accepted: mr 1..=max with nr in {:?})",
                self.mr,
                self.nr,
                supported_micro_tiles(simd)
                    .iter()
                    .map(|t| t.1)
                    .collect::<std::collections::BTreeSet<_>>()
            )));
        }
        if !supported_k_splits(simd).contains(&self.k_split) {
            return Err(KernelError::Gemm(format!(
                "k_split {} not available for {simd} (accepted: {:?})",
                self.k_split,
                supported_k_splits(simd)
            )));
        }
        if self.a_in_place && !a_in_place_supported(simd) {
            return Err(KernelError::Gemm(format!(
                "reading A in place is not available for {simd}"
            )));
        }
        Ok(())
    }

    /// The register tile for a GEMM only `n` columns wide: the narrowest width of
    /// `simd` covering `n`, with the most rows, when that is narrower than this
    /// tile's (a 64x1024x10 classifier on a 12x32 tile computes 32 columns for 10;
    /// a 14x16 tile does under half the work). Otherwise this tile unchanged.
    pub fn narrowed_for_columns(&self, simd: SimdLevel, n: usize) -> TileParams {
        let (widths, max_mr) = micro_tile_shapes(simd);
        let Some(&nr) = widths.iter().filter(|&&w| w >= n).min() else {
            return *self;
        };
        if nr >= self.nr || !micro_tile_supported(simd, self.mr, self.nr) {
            return *self;
        }
        TileParams {
            mc: (self.mc / max_mr).max(1) * max_mr,
            nc: (self.nc / nr).max(1) * nr,
            mr: max_mr,
            nr,
            // One column sliver: each element of A is used once, so packing it buys nothing.
            a_in_place: a_in_place_supported(simd),
            ..*self
        }
    }

    /// This tile with the register tile replaced by `simd`'s default when it is
    /// not supported there (and the K split dropped when `simd` has none).
    pub fn adapted_to(&self, simd: SimdLevel) -> TileParams {
        let k_split = if supported_k_splits(simd).contains(&self.k_split) {
            self.k_split
        } else {
            1
        };
        let a_in_place = self.a_in_place && a_in_place_supported(simd);
        if micro_tile_supported(simd, self.mr, self.nr) {
            return TileParams {
                k_split,
                a_in_place,
                ..*self
            };
        }
        let (mr, nr) = default_micro_tile(simd);
        TileParams {
            mc: (self.mc / mr).max(1) * mr,
            nc: (self.nc / nr).max(1) * nr,
            mr,
            nr,
            k_split,
            a_in_place,
            ..*self
        }
    }
}

impl Default for TileParams {
    fn default() -> TileParams {
        TileParams::for_this_machine()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sysfs_sizes() {
        assert_eq!(parse_cache_size("32K\n"), Some(32 << 10));
        assert_eq!(parse_cache_size("32768K"), Some(32 << 20));
        assert_eq!(parse_cache_size("8M"), Some(8 << 20));
        assert_eq!(parse_cache_size("junk"), None);
    }

    #[test]
    fn narrow_gemms_get_the_narrowest_covering_tile() {
        for simd in SimdLevel::ALL {
            let t = TileParams::for_caches(CacheSizes::FALLBACK, simd);
            let (widths, max_mr) = micro_tile_shapes(simd);
            let narrowest = widths.iter().copied().min().unwrap_or(t.nr);
            for n in [1, 3, 7, 10, 17, 31, 32, 33, 1000] {
                let got = t.narrowed_for_columns(simd, n);
                got.validate(simd).unwrap();
                assert_eq!((got.kc, got.threads), (t.kc, t.threads));
                assert_eq!(got.mc % got.mr, 0);
                assert_eq!(got.nc % got.nr, 0);
                if n <= narrowest && narrowest < t.nr {
                    assert_eq!((got.mr, got.nr), (max_mr, narrowest), "{simd} n={n}");
                } else if n > t.nr / 2 {
                    assert_eq!(got, t, "{simd} n={n}");
                }
                assert!(got.nr >= n.min(t.nr), "{simd} n={n}: {got:?}");
            }
        }
        // A tile already at the narrowest width stays as it is.
        let t = TileParams {
            mc: 28,
            nc: 32,
            kc: 64,
            mr: 3,
            nr: 16,
            threads: 1,
            loop_order: LoopOrder::ColumnsOuter,
            k_split: 1,
            b_in_place: false,
            a_in_place: false,
            skip_zeros: false,
        };
        assert_eq!(t.narrowed_for_columns(SimdLevel::Avx512, 5), t);
    }

    #[test]
    fn k_split_and_a_in_place_are_checked_and_adapted_per_simd_level() {
        for simd in SimdLevel::ALL {
            let t = TileParams::for_caches(CacheSizes::FALLBACK, simd);
            let order = if simd == SimdLevel::Avx2Fma {
                LoopOrder::RowsOuter
            } else {
                LoopOrder::ColumnsOuter
            };
            assert_eq!((t.k_split, t.loop_order, t.b_in_place), (1, order, false));
            for k_split in [0, 1, 2, 3, 4, 8] {
                let tile = TileParams { k_split, ..t };
                let ok = supported_k_splits(simd).contains(&k_split);
                assert_eq!(tile.validate(simd).is_ok(), ok, "{simd} k_split {k_split}");
            }
        }
        let split = TileParams {
            k_split: 4,
            ..TileParams::for_caches(CacheSizes::FALLBACK, SimdLevel::Avx512)
        };
        assert_eq!(split.adapted_to(SimdLevel::Avx512).k_split, 4);
        assert_eq!(split.adapted_to(SimdLevel::Portable).k_split, 1);
        let rows = TileParams {
            a_in_place: true,
            ..split
        };
        assert!(rows.validate(SimdLevel::Avx512).is_ok());
        assert!(rows.validate(SimdLevel::Avx2Fma).is_err());
        assert!(!rows.adapted_to(SimdLevel::Portable).a_in_place);
        assert!(split
            .adapted_to(SimdLevel::Avx2Fma)
            .validate(SimdLevel::Avx2Fma)
            .is_ok());
        for o in LoopOrder::ALL {
            assert_eq!(LoopOrder::from_index(o.index()), Some(o));
        }
        assert_eq!(LoopOrder::from_index(2), None);
    }

    #[test]
    fn blocking_follows_caches() {
        let zen4 = CacheSizes {
            l1d: 32 << 10,
            l2: 1 << 20,
            l3: 32 << 20,
        };
        for simd in SimdLevel::ALL {
            let t = TileParams::for_caches(zen4, simd);
            t.validate(simd).unwrap();
            assert_eq!(t.mc % t.mr, 0);
            assert_eq!(t.nc % t.nr, 0);
            // The B sliver in a quarter of L2, the A block in half of it.
            assert!(4 * t.kc * t.nr <= zen4.l2 / 4, "{t:?}");
            assert!(4 * t.kc * t.mc <= zen4.l2 / 2, "{t:?}");
            assert!(t.kc <= 1024 && t.kc.is_multiple_of(128), "{t:?}");
            let small = TileParams::for_caches(CacheSizes::FALLBACK, simd);
            assert!(small.mc <= t.mc && small.nc <= t.nc);
        }
    }
}
