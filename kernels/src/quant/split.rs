//! Splitting the quantized backend's GEMMs (int8 and f16/bf16 weights) over
//! threads the way the tiled f32 GEMM splits its own (`gemm::sgemm_with`):
//! blocks of output rows by blocks of column panels, handed out one at a time
//! through `pool::run_chunks`, about `CHUNKS_PER_THREAD` per thread, and the
//! same size rule (`gemm::helpers_worth`) keeping small work on one thread.
//!
//! Columns are split first: each thread then streams only its own weight
//! panels. Rows are split too when there are few panels (a narrow classifier
//! over a large batch), and always into blocks whose A rows fit the f32
//! tiling's A-block budget (about half of L2). (The quantized backend's conv
//! GEMMs split by bands of pixels instead, each band's GEMM on one thread.) Every output
//! element is computed by one thread exactly as on one thread (its sums run
//! over k in the same order, its epilogue is per element), so any split gives
//! the same bits.

use std::ops::Range;

use crate::gemm::{helpers_worth, CHUNKS_PER_THREAD};
use crate::pool::{self, ChunkRecord};

/// The threads a quantized GEMM may use: up to `threads` in all, through
/// `record` (kept by the caller so a run of calls reuses it).
pub(crate) struct GemmThreads<'r> {
    pub(crate) threads: usize,
    /// Bytes of A rows a block of rows may span (the f32 tiling's mc x kc block).
    pub(crate) a_block_bytes: usize,
    pub(crate) record: &'r mut ChunkRecord,
}

impl GemmThreads<'_> {
    /// The same threads for one more call (its record borrowed again).
    pub(crate) fn reborrow(&mut self) -> GemmThreads<'_> {
        GemmThreads {
            threads: self.threads,
            a_block_bytes: self.a_block_bytes,
            record: self.record,
        }
    }
}

/// How an `m`-row GEMM over `panels` column panels is cut into chunks: row
/// block `chunk / col_blocks` by panel block `chunk % col_blocks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockSplit {
    m: usize,
    panels: usize,
    block_rows: usize,
    panels_per_block: usize,
    col_blocks: usize,
    row_blocks: usize,
}

impl BlockSplit {
    /// The split for `helpers` helpers: rows in multiples of the kernel's `mr`,
    /// each row block's A (`a_row_bytes` per row) within `a_block_bytes`.
    pub(crate) fn new(
        m: usize,
        panels: usize,
        mr: usize,
        a_row_bytes: usize,
        a_block_bytes: usize,
        helpers: usize,
    ) -> BlockSplit {
        let mr = mr.max(1);
        let target = (helpers + 1) * CHUNKS_PER_THREAD;
        let panels_per_block = panels.div_ceil(target).max(1);
        let col_blocks = panels.div_ceil(panels_per_block);
        // Enough column blocks to go round: keep each weight panel on one
        // thread. Otherwise split the rows until there are about `target` chunks.
        let wanted = if 2 * col_blocks >= target {
            1
        } else {
            target.div_ceil(col_blocks.max(1))
        };
        let fitting_rows = (a_block_bytes / a_row_bytes.max(1) / mr).max(1) * mr;
        let row_blocks = wanted
            .max(m.div_ceil(fitting_rows))
            .min(m.div_ceil(mr))
            .max(1);
        let block_rows = m.div_ceil(row_blocks).div_ceil(mr).max(1) * mr;
        BlockSplit {
            m,
            panels,
            block_rows,
            panels_per_block,
            col_blocks,
            row_blocks: m.div_ceil(block_rows),
        }
    }

    pub(crate) fn chunks(&self) -> usize {
        self.row_blocks * self.col_blocks
    }

    /// The rows and panels of chunk `chunk` (< `chunks()`).
    pub(crate) fn block(&self, chunk: usize) -> (Range<usize>, Range<usize>) {
        let (row_block, col_block) = (chunk / self.col_blocks, chunk % self.col_blocks);
        let rows = row_block * self.block_rows..((row_block + 1) * self.block_rows).min(self.m);
        let panels = col_block * self.panels_per_block
            ..((col_block + 1) * self.panels_per_block).min(self.panels);
        (rows, panels)
    }
}

/// Runs `block(rows, panels)` over `m` rows by `panels` column panels: as one
/// block on this thread, or, given `threads` and `flops` worth splitting, as
/// chunks (see [`BlockSplit`]) on up to `threads.threads` threads. Each chunk
/// runs exactly once; the first error wins.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_blocks<E: Send>(
    threads: Option<GemmThreads<'_>>,
    flops: f64,
    m: usize,
    panels: usize,
    mr: usize,
    a_row_bytes: usize,
    block: &(dyn Fn(Range<usize>, Range<usize>) -> Result<(), E> + Sync),
) -> Result<(), E> {
    let Some(t) = threads else {
        return block(0..m, 0..panels);
    };
    let helpers = helpers_worth(t.threads, flops);
    run_split(
        t.record,
        helpers,
        m,
        panels,
        mr,
        a_row_bytes,
        t.a_block_bytes,
        block,
    )
}

/// [`run_blocks`] with `helpers` decided: none runs the one block here.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_split<E: Send>(
    record: &mut ChunkRecord,
    helpers: usize,
    m: usize,
    panels: usize,
    mr: usize,
    a_row_bytes: usize,
    a_block_bytes: usize,
    block: &(dyn Fn(Range<usize>, Range<usize>) -> Result<(), E> + Sync),
) -> Result<(), E> {
    if helpers == 0 || m == 0 || panels == 0 {
        record.prepare();
        return block(0..m, 0..panels);
    }
    let split = BlockSplit::new(m, panels, mr, a_row_bytes, a_block_bytes, helpers);
    pool::try_run_chunks(record, helpers, split.chunks(), &|_, chunk| {
        let (rows, panels) = split.block(chunk);
        block(rows, panels)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Every (row, panel) cell is in exactly one chunk, rows come in whole
    /// `mr` tiles but the last, and the chunks are about as many as asked.
    #[test]
    fn blocks_cover_every_row_and_panel_once() {
        for m in [1, 3, 7, 63, 64, 65, 257, 12_544] {
            for panels in [1, 2, 3, 22, 65] {
                for (mr, helpers) in [(8, 1), (4, 2), (1, 3)] {
                    for (row_bytes, budget) in [(1024, 1 << 19), (32, 1 << 19), (4096, 8192)] {
                        let split = BlockSplit::new(m, panels, mr, row_bytes, budget, helpers);
                        let what = format!("{m}x{panels} mr {mr} h {helpers} {row_bytes}/{budget}");
                        let mut seen = vec![0u8; m * panels];
                        for chunk in 0..split.chunks() {
                            let (rows, cols) = split.block(chunk);
                            assert!(!rows.is_empty() && !cols.is_empty(), "{what}: {chunk}");
                            assert!(rows.start % mr == 0, "{what}: {rows:?}");
                            assert!(rows.len() % mr == 0 || rows.end == m, "{what}: {rows:?}");
                            for r in rows {
                                for p in cols.clone() {
                                    seen[r * panels + p] += 1;
                                }
                            }
                        }
                        assert!(seen.iter().all(|&n| n == 1), "{what}");
                        // A row block's A fits the budget unless a tile of rows cannot.
                        assert!(
                            split.block_rows * row_bytes <= budget.max(mr * row_bytes),
                            "{what}: {split:?}"
                        );
                        let enough = (helpers + 1) * CHUNKS_PER_THREAD / 2;
                        assert!(
                            split.chunks() >= enough.min(m.div_ceil(mr) * panels),
                            "{what}: {split:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn many_panels_split_by_columns_only_and_few_panels_by_rows_too() {
        // mlp-1024 at batch 64: 22 VNNI panels, one block of rows.
        let dense = BlockSplit::new(64, 22, 8, 1024, 1 << 19, 1);
        assert_eq!((dense.row_blocks, dense.col_blocks), (1, 11));
        // Many rows over 2 panels (a narrow GEMM over 12 544 rows): rows split.
        let conv = BlockSplit::new(112 * 112, 2, 8, 32, 1 << 19, 1);
        assert_eq!((conv.row_blocks, conv.col_blocks), (8, 2));
        assert_eq!(conv.block(15), (10_976..12_544, 1..2));
    }

    #[test]
    fn no_helper_runs_one_block_on_this_thread() {
        let blocks = Mutex::new(Vec::new());
        let ok: Result<(), ()> = run_split(
            &mut ChunkRecord::default(),
            0,
            65,
            3,
            8,
            4,
            1 << 19,
            &|rows, panels| {
                blocks.lock().expect("lock").push((rows, panels));
                Ok(())
            },
        );
        assert_eq!(ok, Ok(()));
        assert_eq!(blocks.into_inner().expect("lock"), vec![(0..65, 0..3)]);
    }
}
