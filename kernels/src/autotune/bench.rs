//! Timing one GEMM shape for the tuner: the operands are built once per shape
//! and reused by every trial (B is packed again only when a trial's panel
//! width or depth differs). A large layer's B (1 GB at 16000 x 16000) took
//! longer to allocate, fill and pack than the GEMM it was there to time.

use std::time::Instant;

use crate::backends::autotuned::GemmShape;
use crate::error::KernelError;
use crate::gemm::{sgemm_with, BOperand, Epilogue, GemmWorkspace, MatRef, PackedB};
use crate::simd::SimdLevel;
use crate::tile::TileParams;

/// The operands of one GEMM shape, kept across trials.
pub struct GemmBench {
    shape: GemmShape,
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
    ws: GemmWorkspace,
    /// B packed for the last (kc, nr) timed, for a pre-packed shape.
    packed: Option<((usize, usize), PackedB)>,
    /// Times B was packed (tests check it is reused).
    packs: usize,
}

impl GemmBench {
    pub fn new(shape: GemmShape) -> GemmBench {
        let GemmShape { m, n, k, .. } = shape;
        GemmBench {
            shape,
            a: (0..m * k).map(|i| ((i % 17) as f32 - 8.0) * 0.01).collect(),
            b: (0..k * n).map(|i| ((i % 13) as f32 - 6.0) * 0.01).collect(),
            c: vec![0.0; m * n],
            ws: GemmWorkspace::new(),
            packed: None,
            packs: 0,
        }
    }

    /// How many times B was packed so far.
    pub fn packs(&self) -> usize {
        self.packs
    }

    /// Times the shape with `tile`: the minimum of `reps` runs after a warm-up, in ns.
    pub fn time(
        &mut self,
        tile: &TileParams,
        simd: SimdLevel,
        reps: usize,
    ) -> Result<f64, KernelError> {
        let GemmShape { m, n, k, packed_b } = self.shape;
        let layout = (tile.kc, tile.nr);
        if packed_b && self.packed.as_ref().is_none_or(|(l, _)| *l != layout) {
            // The old packing goes first: two copies of a large B need not coexist.
            self.packed = None;
            let p = PackedB::pack(MatRef::row_major(&self.b, n), k, n, tile.kc, tile.nr)?;
            self.packed = Some((layout, p));
            self.packs += 1;
        }
        let mut best = f64::INFINITY;
        for rep in 0..=reps.max(1) {
            let operand = match &self.packed {
                Some((_, p)) if packed_b => BOperand::Packed(p),
                _ => BOperand::Mat(MatRef::row_major(&self.b, n)),
            };
            let start = Instant::now();
            sgemm_with(
                &mut self.ws,
                tile,
                simd,
                m,
                n,
                k,
                MatRef::row_major(&self.a, k),
                operand,
                &mut self.c,
                n,
                Epilogue::NONE,
            )?;
            let t = start.elapsed().as_nanos() as f64;
            if rep > 0 {
                best = best.min(t);
            }
        }
        std::hint::black_box(&self.c);
        Ok(best)
    }
}

/// Times one GEMM shape with one tile: minimum of `reps` runs after a warm-up, in ns.
pub fn time_gemm(
    shape: GemmShape,
    tile: &TileParams,
    simd: SimdLevel,
    reps: usize,
) -> Result<f64, KernelError> {
    GemmBench::new(shape).time(tile, simd, reps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trials_reuse_the_operands_and_pack_b_again_only_for_a_new_layout() {
        let simd = crate::simd::detect();
        let tile = TileParams::for_this_machine().adapted_to(simd);
        let shape = GemmShape {
            m: 7,
            n: 65,
            k: 63,
            packed_b: true,
        };
        let mut bench = GemmBench::new(shape);
        for _ in 0..3 {
            assert!(bench.time(&tile, simd, 1).unwrap() >= 0.0);
        }
        assert_eq!(bench.packs(), 1);
        let deeper = TileParams {
            kc: tile.kc * 2,
            ..tile
        };
        bench.time(&deeper, simd, 1).unwrap();
        bench.time(&deeper, simd, 1).unwrap();
        assert_eq!(bench.packs(), 2);
        // The product is the same whatever the tile: the operands were not disturbed.
        let want = bench.c.clone();
        bench.time(&tile, simd, 1).unwrap();
        assert_eq!(bench.c, want);
    }
}
