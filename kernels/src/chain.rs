//! Elementwise chains (`fusion::StepKind::Chain`): the stack program the fusion
//! pass emits, turned once at compile time into a short list of instructions
//! over fixed slots, then evaluated block by block.
//!
//! Each instruction computes one op over a block (`CHAIN_BLOCK` floats) from
//! inputs or a slot into a slot, the last one straight into the output, so
//! every input is read once and the output written once; the slots stay in
//! L1. Two peepholes cut passes: a scale added at once is one `A + s*B` pass,
//! and the last op folds into the one before when that one reads inputs only,
//! so the classic `(A + s*B) * C` is a single loop with no slot at all. The
//! loops are compiled for the executable's SIMD level (AVX-512, AVX2 or the
//! portable build), and an output larger than the last-level cache is stored
//! past the caches (`stream`).
//!
//! Measured on Zen 3 (2026-12-01; `callgrind` for instructions,
//! `examples/chain_ab.rs` alternating with the build before for time): the
//! stack interpreter this replaced ran about 8 instructions per element
//! (4-wide loops, the stack simulated per block, a prefetch loop per input)
//! and, with the other vCPU busy, 12 to 28 ms for the 16M-element chain where
//! the same blocks written out by hand took 9 to 11. Compiled to slots with
//! 8-wide loops: 11-14 ms (op by op 17-22 ms: 1.50-1.60x per turn, against
//! 1.22-1.35x for the interpreter in the same minutes); folded into one pass:
//! 8.6-10.7 ms, 1.96-2.03x per turn (the interpreter 0.84-1.23x alongside).

use std::ops::Range;
use std::sync::Arc;

use crate::act;
use crate::fusion::ChainOp;
use crate::simd::SimdLevel;
use crate::spec::Activation;
use crate::stream::{self, Expr, Lanes, Then};

/// Elements per block: the slots of intermediates stay in L1. Measured on
/// Zen 4 (16M-element chain, on-CPU time): 256 about 1.15x faster than 1024,
/// and 4096 1.5x slower than 1024. On Zen 3 (a chain of two passes a block,
/// 2026-12-01, two rounds alternating): 128 with prefetch two blocks ahead
/// 9.8-11.1 ms, 256 one block ahead 10.1-13.0, 512 one ahead 11.9-17.2, 64
/// and 32 slower still.
pub(crate) const CHAIN_BLOCK: usize = 128;

/// Blocks ahead each input is prefetched (see `stream`). Without it a chain
/// of several passes a block ran 14 ms against 9-12 (Zen 3); 2, 3 and 8
/// blocks ahead, and the T1 and NTA hints, measured alike within the noise.
const PREFETCH_BLOCKS: usize = 2;

/// Distinct inputs one chain may read.
pub(crate) const MAX_CHAIN_INPUTS: usize = 16;

/// Deepest operand stack a chain may need.
pub(crate) const MAX_CHAIN_DEPTH: usize = 32;

/// What one instruction computes, lane by lane.
#[derive(Debug, Clone)]
enum Kind {
    Add,
    Mul,
    Scale(f32),
    /// `left + f * right`: a scale whose result an add takes at once (the
    /// peephole in `ChainPlan::new`), one pass over the block instead of two.
    AddScaled(f32),
    Act(Activation),
    /// Add `bias[index % bias.len()]` (index into the chain's output).
    BiasAdd(Arc<[f32]>),
    /// The left operand itself (a program that only loads an input).
    Copy,
}

impl Kind {
    /// The two-operand ops (and a scale) as lanes over `left` and `right`;
    /// None for the one-operand ops and copies.
    #[inline(always)]
    fn lanes<'a>(&self, left: &'a [f32], right: &'a [f32]) -> Option<Lanes<'a>> {
        match *self {
            Kind::Add => Some(Lanes::Add(left, right)),
            Kind::Mul => Some(Lanes::Mul(left, right)),
            Kind::Scale(f) => Some(Lanes::Scale(left, f)),
            Kind::AddScaled(f) => Some(Lanes::AddScaled(left, right, f)),
            Kind::Act(_) | Kind::BiasAdd(_) | Kind::Copy => None,
        }
    }
}

/// The left operand: an input, or the instruction's own slot (computed in place).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Left {
    Input(usize),
    Slot,
}

/// The right operand of `Add` and `Mul`: an input, or the slot just above the
/// instruction's own (a stack's top sits above the value under it).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Right {
    None,
    Input(usize),
    Above,
}

/// A second op the last instruction applies to its first op's result before
/// storing it (`last_two_into_one`); its operand is an input.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ThenOp {
    Nothing,
    Add(usize),
    Mul(usize),
    Scale(f32),
}

#[derive(Debug, Clone)]
struct Instr {
    kind: Kind,
    /// The slot its result goes to (its operand stack position).
    slot: usize,
    left: Left,
    right: Right,
    /// The last instruction: its result goes to the output, not a slot.
    to_out: bool,
    then: ThenOp,
}

/// A compiled chain: run it with [`ChainPlan::run`].
#[derive(Debug, Clone)]
pub(crate) struct ChainPlan {
    instrs: Vec<Instr>,
    slots: usize,
    inputs: usize,
    simd: SimdLevel,
}

/// A stack entry while compiling: still an input, or a value in slot `n`.
#[derive(Clone, Copy)]
enum Entry {
    Input(usize),
    Slot,
}

impl ChainPlan {
    /// Compile `program` (a stack program from the fusion pass) for `simd`
    /// (lowered to what this CPU runs). Errors say what the program breaks.
    pub(crate) fn new(program: &[ChainOp], simd: SimdLevel) -> Result<ChainPlan, String> {
        let mut stack: Vec<Entry> = Vec::new();
        let mut instrs = Vec::with_capacity(program.len());
        let mut inputs = 0;
        let last = program
            .len()
            .checked_sub(1)
            .ok_or("an empty elementwise chain")?;
        for (idx, op) in program.iter().enumerate() {
            let kind = match op {
                ChainOp::Load(i) => {
                    if *i >= MAX_CHAIN_INPUTS {
                        return Err(format!(
                            "elementwise chains with more than {MAX_CHAIN_INPUTS} inputs"
                        ));
                    }
                    inputs = inputs.max(i + 1);
                    stack.push(Entry::Input(*i));
                    if stack.len() > MAX_CHAIN_DEPTH {
                        return Err(format!("elementwise chains deeper than {MAX_CHAIN_DEPTH}"));
                    }
                    if idx == last && program.len() == 1 {
                        instrs.push(Instr {
                            kind: Kind::Copy,
                            slot: 0,
                            left: Left::Input(*i),
                            right: Right::None,
                            to_out: true,
                            then: ThenOp::Nothing,
                        });
                    }
                    continue;
                }
                ChainOp::Add => Kind::Add,
                ChainOp::Mul => Kind::Mul,
                ChainOp::Scale(f) => Kind::Scale(*f),
                ChainOp::Act(a) => Kind::Act(*a),
                ChainOp::BiasAdd(b) if b.is_empty() => {
                    return Err("an elementwise bias add with an empty bias".into())
                }
                ChainOp::BiasAdd(b) => Kind::BiasAdd(b.clone()),
            };
            let right = if matches!(kind, Kind::Add | Kind::Mul) {
                match stack.pop() {
                    Some(Entry::Input(j)) => Right::Input(j),
                    Some(Entry::Slot) => Right::Above,
                    None => return Err("an elementwise op with no right operand".into()),
                }
            } else {
                Right::None
            };
            let slot = stack
                .len()
                .checked_sub(1)
                .ok_or("an elementwise op with no operand")?;
            let left = match stack[slot] {
                Entry::Input(i) => Left::Input(i),
                Entry::Slot => Left::Slot,
            };
            let to_out = idx == last;
            stack[slot] = Entry::Slot;
            instrs.push(Instr {
                kind,
                slot,
                left,
                right,
                to_out,
                then: ThenOp::Nothing,
            });
        }
        if !instrs.last().is_some_and(|i| i.to_out) {
            return Err("an elementwise chain that ends in a load".into());
        }
        if stack.len() != 1 {
            return Err("an elementwise chain that leaves more than one value".into());
        }
        let instrs = last_two_into_one(scales_into_adds(instrs));
        let slots = instrs
            .iter()
            .map(|i| match (i.to_out, i.right) {
                (_, Right::Above) => i.slot + 2,
                (false, _) => i.slot + 1,
                (true, _) => 0,
            })
            .max()
            .unwrap_or(0);
        let simd = if simd.is_supported() {
            simd
        } else {
            SimdLevel::Portable
        };
        Ok(ChainPlan {
            instrs,
            slots,
            inputs,
            simd,
        })
    }

    /// How the chain runs, for the lowered form: its passes and what the
    /// peepholes folded (nothing for a single op over inputs).
    pub(crate) fn describe(&self) -> Option<String> {
        let mut folds = Vec::new();
        if self
            .instrs
            .iter()
            .any(|i| matches!(i.kind, Kind::AddScaled(_)))
        {
            folds.push("a scale folded into the add after it");
        }
        if self.instrs.iter().any(|i| i.then != ThenOp::Nothing) {
            folds.push("the last op applied as the one before stores");
        }
        let loops = match self.simd {
            SimdLevel::Portable => "portable",
            SimdLevel::Avx2Fma => "8-wide AVX2",
            SimdLevel::Avx512 => "16-wide AVX-512",
        };
        let folded = if folds.is_empty() {
            String::new()
        } else {
            format!(" ({})", folds.join("; "))
        };
        match self.instrs.len() {
            1 if folds.is_empty() => None,
            1 => Some(format!("runs as one pass, {loops} loops{folded}")),
            n => Some(format!(
                "runs {n} passes over each {CHAIN_BLOCK}-float block, {} slot(s) in L1, \
                 {loops} loops{folded}",
                self.slots
            )),
        }
    }

    /// Floats of scratch [`run`](Self::run) needs.
    pub(crate) fn scratch_len(&self) -> usize {
        self.slots * CHAIN_BLOCK
    }

    /// Evaluate the chain into `out` (`out.len()` elements; each input at least
    /// as long). `scratch` holds at least `scratch_len()` floats. `streamed`:
    /// `out` is stored past the caches where the last op allows (call
    /// `stream::fence` before reading it). Errs, writing nothing, if an input
    /// or the scratch is too short.
    pub(crate) fn run(
        &self,
        ins: &[&[f32]],
        out: &mut [f32],
        scratch: &mut [f32],
        streamed: bool,
    ) -> Result<(), &'static str> {
        let n = out.len();
        if ins.len() < self.inputs || ins[..self.inputs].iter().any(|x| x.len() < n) {
            return Err("a chain's input is shorter than its output");
        }
        if scratch.len() < self.scratch_len() {
            return Err("a chain's scratch is shorter than its slots");
        }
        // One op over inputs needs no slots: one pass, one block.
        let block = if self.slots == 0 {
            n.max(1)
        } else {
            CHAIN_BLOCK
        };
        let job = Blocks {
            plan: self,
            ins,
            block,
            streamed,
        };
        match self.simd {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `new` keeps a level only if this CPU supports it.
            SimdLevel::Avx512 => unsafe { job.run_avx512(out, scratch) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            SimdLevel::Avx2Fma => unsafe { job.run_avx2(out, scratch) },
            _ => job.run_with(out, scratch, Width::Portable),
        }
        Ok(())
    }
}

/// An input scaled into a slot and at once added to the slot below it
/// becomes one `AddScaled` over the input: `A + s*B` in one pass.
fn scales_into_adds(instrs: Vec<Instr>) -> Vec<Instr> {
    let mut out: Vec<Instr> = Vec::with_capacity(instrs.len());
    for instr in instrs {
        let scaled = match out.last() {
            Some(Instr {
                kind: Kind::Scale(f),
                slot,
                left: Left::Input(j),
                to_out: false,
                ..
            }) if matches!(instr.kind, Kind::Add)
                && instr.right == Right::Above
                && *slot == instr.slot + 1 =>
            {
                Some((*f, *j))
            }
            _ => None,
        };
        match scaled {
            Some((f, j)) => {
                out.pop();
                out.push(Instr {
                    kind: Kind::AddScaled(f),
                    right: Right::Input(j),
                    ..instr
                });
            }
            None => out.push(instr),
        }
    }
    out
}

/// The last op folded into the one before when that one computes from
/// inputs only and the last takes its result with an input or a factor:
/// `(A + s*B) * C` stores `(A + s*B)` times C as it goes, in one pass, with
/// nothing kept in a slot (on a stream past the caches, the single loop a
/// hand-written kernel would be).
fn last_two_into_one(mut instrs: Vec<Instr>) -> Vec<Instr> {
    let [.., first, last] = &instrs[..] else {
        return instrs;
    };
    let then = match (&last.kind, last.right) {
        (Kind::Add, Right::Input(j)) => ThenOp::Add(j),
        (Kind::Mul, Right::Input(j)) => ThenOp::Mul(j),
        (Kind::Scale(f), Right::None) => ThenOp::Scale(*f),
        _ => return instrs,
    };
    let foldable = last.to_out
        && last.left == Left::Slot
        && last.then == ThenOp::Nothing
        && !first.to_out
        && first.slot == last.slot
        && matches!(first.left, Left::Input(_))
        && first.right != Right::Above
        && matches!(
            first.kind,
            Kind::Add | Kind::Mul | Kind::Scale(_) | Kind::AddScaled(_)
        );
    if foldable {
        instrs.pop();
        if let Some(first) = instrs.last_mut() {
            first.to_out = true;
            first.then = then;
        }
    }
    instrs
}

/// The vector width the loops are compiled for, which picks the streaming store.
#[derive(Clone, Copy)]
enum Width {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

/// One evaluation of a plan.
struct Blocks<'a> {
    plan: &'a ChainPlan,
    ins: &'a [&'a [f32]],
    block: usize,
    streamed: bool,
}

impl Blocks<'_> {
    /// # Safety
    /// The CPU supports AVX-512F.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn run_avx512(&self, out: &mut [f32], scratch: &mut [f32]) {
        self.run_with(out, scratch, Width::Avx512)
    }

    /// # Safety
    /// The CPU supports AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2(&self, out: &mut [f32], scratch: &mut [f32]) {
        self.run_with(out, scratch, Width::Avx2)
    }

    /// Inlined into each `target_feature` entry above, so its loops are
    /// vectorised at that width.
    #[inline(always)]
    fn run_with(&self, out: &mut [f32], scratch: &mut [f32], width: Width) {
        let n = out.len();
        let ins = &self.ins[..self.plan.inputs];
        let mut start = 0;
        while start < n {
            let blen = self.block.min(n - start);
            if self.plan.slots > 0 {
                for input in ins {
                    stream::prefetch::<CHAIN_BLOCK>(input, start + PREFETCH_BLOCKS * CHAIN_BLOCK);
                }
            }
            let dst = &mut out[start..start + blen];
            if blen == CHAIN_BLOCK {
                // A constant length: the loops compile without remainders.
                for instr in &self.plan.instrs {
                    self.instr(instr, (start, CHAIN_BLOCK), scratch, dst, width);
                }
            } else {
                for instr in &self.plan.instrs {
                    self.instr(instr, (start, blen), scratch, dst, width);
                }
            }
            start += blen;
        }
    }

    #[inline(always)]
    fn instr(
        &self,
        instr: &Instr,
        (start, blen): (usize, usize),
        scratch: &mut [f32],
        out: &mut [f32],
        width: Width,
    ) {
        let input = |i: usize| &self.ins[i][start..start + blen];
        let at = instr.slot * CHAIN_BLOCK;
        if instr.to_out {
            let left = match instr.left {
                Left::Input(i) => input(i),
                Left::Slot => &scratch[at..at + blen],
            };
            let right: &[f32] = match instr.right {
                Right::None => &[],
                Right::Input(j) => input(j),
                Right::Above => &scratch[at + CHAIN_BLOCK..at + CHAIN_BLOCK + blen],
            };
            let first = instr.kind.lanes(left, right);
            let then = match instr.then {
                ThenOp::Nothing => Then::Nothing,
                ThenOp::Add(j) => Then::Add(input(j)),
                ThenOp::Mul(j) => Then::Mul(input(j)),
                ThenOp::Scale(f) => Then::Scale(f),
            };
            match (first.map(|first| Expr { first, then }), width) {
                (Some(what), _) if !self.streamed => expr_into(out, what),
                (Some(what), Width::Portable) => stream::write(out, what),
                #[cfg(target_arch = "x86_64")]
                // SAFETY: only `run_avx2` passes `Width::Avx2`, and `run`
                // calls it only where the CPU has AVX2 (`new` keeps a level
                // only if it is supported); AVX2 implies the AVX this needs.
                (Some(what), Width::Avx2) => unsafe { stream::write_avx2(out, what) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: as above: only `run_avx512` passes `Width::Avx512`.
                (Some(what), Width::Avx512) => unsafe { stream::write_avx512(out, what) },
                // Unary ops and copies (never folded: `then` is Nothing).
                (None, _) => unary_into(&instr.kind, left, out, start),
            }
            return;
        }
        let (below, above) = scratch.split_at_mut(at + CHAIN_BLOCK);
        let dst = &mut below[at..at + blen];
        let right: &[f32] = match instr.right {
            Right::None => &[],
            Right::Input(j) => input(j),
            Right::Above => &above[..blen],
        };
        let kind = &instr.kind;
        match (instr.left, kind) {
            (Left::Input(i), _) => match kind.lanes(input(i), right) {
                Some(lanes) => lanes_into(dst, lanes),
                None => unary_into(kind, input(i), dst, start),
            },
            (Left::Slot, Kind::AddScaled(f)) => {
                dst.iter_mut().zip(right).for_each(|(d, &b)| *d += b * f)
            }
            (Left::Slot, Kind::Add) => dst.iter_mut().zip(right).for_each(|(d, &b)| *d += b),
            (Left::Slot, Kind::Mul) => dst.iter_mut().zip(right).for_each(|(d, &b)| *d *= b),
            (Left::Slot, _) => unary_in_place(kind, dst, start),
        }
    }
}

/// `dst[i] = what at i`, ordinary stores, in one loop where the second op
/// takes a slice (a second pass over an output that fits no cache but the
/// last level would go there and back again).
#[inline(always)]
fn expr_into(dst: &mut [f32], what: Expr<'_>) {
    match what.then {
        Then::Nothing => lanes_into(dst, what.first),
        Then::Add(z) => lanes_then(dst, what.first, z, |v, c| v + c),
        Then::Mul(z) => lanes_then(dst, what.first, z, |v, c| v * c),
        Then::Scale(f) => {
            lanes_into(dst, what.first);
            dst.iter_mut().for_each(|d| *d *= f);
        }
    }
}

/// `dst[i] = then(first at i, z[i])`.
#[inline(always)]
fn lanes_then(dst: &mut [f32], first: Lanes<'_>, z: &[f32], then: impl Fn(f32, f32) -> f32) {
    let pairs = dst.iter_mut().zip(z);
    match first {
        Lanes::Add(l, r) => pairs
            .zip(l.iter().zip(r))
            .for_each(|((d, &c), (&a, &b))| *d = then(a + b, c)),
        Lanes::Mul(l, r) => pairs
            .zip(l.iter().zip(r))
            .for_each(|((d, &c), (&a, &b))| *d = then(a * b, c)),
        Lanes::Scale(l, f) => pairs.zip(l).for_each(|((d, &c), &a)| *d = then(a * f, c)),
        Lanes::AddScaled(l, r, f) => pairs
            .zip(l.iter().zip(r))
            .for_each(|((d, &c), (&a, &b))| *d = then(a + b * f, c)),
    }
}

/// `dst[i] = lanes at i`, ordinary stores.
#[inline(always)]
fn lanes_into(dst: &mut [f32], lanes: Lanes<'_>) {
    match lanes {
        Lanes::Add(l, r) => dst
            .iter_mut()
            .zip(l.iter().zip(r))
            .for_each(|(d, (&a, &b))| *d = a + b),
        Lanes::Mul(l, r) => dst
            .iter_mut()
            .zip(l.iter().zip(r))
            .for_each(|(d, (&a, &b))| *d = a * b),
        Lanes::Scale(l, f) => dst.iter_mut().zip(l).for_each(|(d, &a)| *d = a * f),
        Lanes::AddScaled(l, r, f) => dst
            .iter_mut()
            .zip(l.iter().zip(r))
            .for_each(|(d, (&a, &b))| *d = a + b * f),
    }
}

/// A one-operand op over `dst` in place; `start` is `dst[0]`'s index in the output.
#[inline(always)]
fn unary_in_place(kind: &Kind, dst: &mut [f32], start: usize) {
    match kind {
        Kind::Act(a) => act::apply_slice(*a, dst),
        Kind::BiasAdd(bias) => bias_rows(bias, start, dst.len(), |at, row| {
            dst[at].iter_mut().zip(row).for_each(|(d, &b)| *d += b)
        }),
        Kind::Scale(f) => dst.iter_mut().for_each(|d| *d *= f),
        Kind::Add | Kind::Mul | Kind::AddScaled(_) | Kind::Copy => {}
    }
}

/// A one-operand op from `src` into `dst` in one pass (a ReLU or bias pass
/// that copied first spent 6.7% of the op-by-op `mlp-1024` batch 64 in the
/// copy, on Zen 3); other activations copy, then apply in place.
#[inline(always)]
fn unary_into(kind: &Kind, src: &[f32], dst: &mut [f32], start: usize) {
    match kind {
        Kind::Act(Activation::Relu) => dst.iter_mut().zip(src).for_each(|(d, &v)| *d = v.max(0.0)),
        Kind::BiasAdd(bias) => bias_rows(bias, start, dst.len(), |at, row| {
            dst[at.clone()]
                .iter_mut()
                .zip(&src[at])
                .zip(row)
                .for_each(|((d, &v), &b)| *d = v + b)
        }),
        Kind::Scale(f) => dst.iter_mut().zip(src).for_each(|(d, &v)| *d = v * f),
        _ => {
            dst.copy_from_slice(src);
            unary_in_place(kind, dst, start);
        }
    }
}

/// `each(range, row)` over `0..len` cut where the bias wraps: `range` of the
/// block, whose output starts at index `start`, takes the bias values `row`
/// (a remainder per element cost a division each: the op-by-op MLP's bias
/// passes).
#[inline(always)]
fn bias_rows(bias: &[f32], start: usize, len: usize, mut each: impl FnMut(Range<usize>, &[f32])) {
    if bias.is_empty() {
        return;
    }
    let mut from = start % bias.len();
    let mut at = 0;
    while at < len {
        let row = &bias[from..];
        let take = row.len().min(len - at);
        each(at..at + take, &row[..take]);
        at += take;
        from = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stack program evaluated one element at a time: what every plan must match.
    fn reference(program: &[ChainOp], ins: &[Vec<f32>], n: usize) -> Vec<f32> {
        (0..n)
            .map(|e| {
                let mut stack = Vec::new();
                for op in program {
                    match op {
                        ChainOp::Load(i) => stack.push(ins[*i][e]),
                        ChainOp::Add | ChainOp::Mul => {
                            let r = stack.pop().expect("rhs");
                            let l = stack.pop().expect("lhs");
                            stack.push(if matches!(op, ChainOp::Add) {
                                l + r
                            } else {
                                l * r
                            });
                        }
                        ChainOp::Scale(f) => {
                            let v = stack.pop().expect("operand");
                            stack.push(v * f);
                        }
                        ChainOp::Act(a) => {
                            let mut v = [stack.pop().expect("operand")];
                            act::apply_slice(*a, &mut v);
                            stack.push(v[0]);
                        }
                        ChainOp::BiasAdd(b) => {
                            let v = stack.pop().expect("operand");
                            stack.push(v + b[e % b.len()]);
                        }
                    }
                }
                stack.pop().expect("result")
            })
            .collect()
    }

    fn programs() -> Vec<Vec<ChainOp>> {
        use ChainOp::*;
        let bias: Arc<[f32]> = (0..7).map(|i| i as f32 * 0.25 - 0.5).collect();
        vec![
            // The classic chain: (A + s*B) * C, and the other folds of a last op.
            vec![Load(0), Load(1), Scale(0.5), Add, Load(2), Mul],
            vec![Load(0), Load(1), Mul, Load(2), Add],
            vec![Load(0), Load(1), Add, Scale(2.0)],
            vec![Load(1), Scale(-1.5), Load(2), Add],
            // One-operand ops straight from an input, into the output or a slot.
            vec![Load(0), Act(Activation::Relu)],
            vec![Load(1), BiasAdd(bias.clone())],
            vec![Load(0), BiasAdd(bias.clone()), Load(1), Add],
            vec![Load(2), Act(Activation::Gelu), Load(0), Mul],
            vec![Load(2), Act(Activation::Relu), Load(1), Mul],
            // One op over inputs (what op-by-op execution runs).
            vec![Load(0), Load(1), Add],
            vec![Load(0), Scale(-3.0)],
            vec![Load(0)],
            // Unary ops on a slot, a bias that wraps mid-block, an activation last.
            vec![
                Load(0),
                BiasAdd(bias.clone()),
                Act(Activation::Gelu),
                Scale(2.0),
                Act(Activation::Relu),
            ],
            // Right operands that are slots, a deeper stack, an input reused.
            vec![
                Load(0),
                Load(1),
                Load(2),
                Mul,
                Add,
                Load(0),
                Load(1),
                Add,
                Mul,
                Act(Activation::Tanh),
                Load(2),
                BiasAdd(bias),
                Add,
            ],
        ]
    }

    #[test]
    fn every_width_matches_the_stack_program_at_odd_lengths() {
        for program in programs() {
            for simd in SimdLevel::supported() {
                let plan = ChainPlan::new(&program, simd).expect("plan");
                for n in [1usize, 3, 7, 63, 65, 127, 128, 129, 257, 1000] {
                    let ins: Vec<Vec<f32>> = (0..3)
                        .map(|k| {
                            (0..n + 5)
                                .map(|e| ((e * 7 + k * 3) % 17) as f32 * 0.125 - 1.0)
                                .collect()
                        })
                        .collect();
                    let want = reference(&program, &ins, n);
                    let slices: Vec<&[f32]> = ins.iter().map(|x| &x[..]).collect();
                    let mut scratch = vec![f32::NAN; plan.scratch_len()];
                    for streamed in [false, true] {
                        // An unaligned output: the streaming stores' head and tail.
                        let mut buf = vec![f32::NAN; n + 3];
                        plan.run(&slices, &mut buf[1..n + 1], &mut scratch, streamed)
                            .expect("run");
                        stream::fence();
                        let got = &buf[1..n + 1];
                        for (e, (g, w)) in got.iter().zip(&want).enumerate() {
                            assert!(
                                (g - w).abs() <= 1e-6 * w.abs().max(1.0),
                                "{program:?} {simd} n {n} streamed {streamed} at {e}: {g} vs {w}"
                            );
                        }
                        assert!(
                            buf[0].is_nan() && buf[n + 1].is_nan(),
                            "wrote outside the output"
                        );
                    }
                }
            }
        }
    }

    /// What each program compiles to: its instructions' ops, what the last
    /// one does to its result, and the scratch it needs.
    fn compiled(program: &[ChainOp]) -> (Vec<String>, ThenOp, usize) {
        let plan = ChainPlan::new(program, SimdLevel::Portable).expect("plan");
        let kinds = plan
            .instrs
            .iter()
            .map(|i| format!("{:?}", i.kind))
            .collect();
        let then = plan.instrs.last().expect("an instruction").then;
        (kinds, then, plan.scratch_len())
    }

    /// `(A + s*B) * C` is one pass, the loop a hand-written kernel would be:
    /// the scale goes into the add, the product with C into the same store.
    /// Where the ops do not line up that way each stays a pass.
    #[test]
    fn the_classic_chain_compiles_to_one_pass() {
        use ChainOp::*;
        let classic = [Load(0), Load(1), Scale(0.5), Add, Load(2), Mul];
        assert_eq!(
            compiled(&classic),
            (vec!["AddScaled(0.5)".into()], ThenOp::Mul(2), 0)
        );
        let then_add = [Load(0), Load(1), Mul, Load(2), Add];
        assert_eq!(compiled(&then_add), (vec!["Mul".into()], ThenOp::Add(2), 0));
        let then_scale = [Load(0), Load(1), Add, Scale(2.0)];
        assert_eq!(
            compiled(&then_scale),
            (vec!["Add".into()], ThenOp::Scale(2.0), 0)
        );
        // A scale not added at once, an activation last, a right operand
        // computed on the stack: nothing folds.
        let scaled_then_mul = [Load(0), Load(1), Scale(0.5), Mul];
        assert_eq!(compiled(&scaled_then_mul).0.len(), 2);
        let relu_last = [Load(0), Load(1), Scale(0.5), Add, Act(Activation::Relu)];
        let (kinds, then, scratch) = compiled(&relu_last);
        assert_eq!(
            (kinds.len(), then, scratch),
            (2, ThenOp::Nothing, CHAIN_BLOCK)
        );
        let stacked = [Load(0), Load(1), Load(2), Mul, Add];
        assert_eq!(compiled(&stacked).0.len(), 2);
    }

    /// The lowered form says how a chain runs: one pass when folded, the
    /// passes per block otherwise, nothing for a single op.
    #[test]
    fn a_chain_says_how_it_runs() {
        use ChainOp::*;
        let say = |program: &[ChainOp]| {
            ChainPlan::new(program, SimdLevel::Portable)
                .expect("plan")
                .describe()
        };
        let classic = say(&[Load(0), Load(1), Scale(0.5), Add, Load(2), Mul]).expect("a note");
        assert!(classic.starts_with("runs as one pass"), "{classic}");
        assert!(classic.contains("scale folded") && classic.contains("as the one before stores"));
        let relu_last =
            say(&[Load(0), Load(1), Load(2), Mul, Add, Act(Activation::Relu)]).expect("a note");
        assert!(
            relu_last.starts_with("runs 3 passes over each 128-float block, 2 slot(s)"),
            "{relu_last}"
        );
        assert_eq!(say(&[Load(0), Load(1), Add]), None);
    }

    #[test]
    fn programs_that_break_the_stack_are_refused() {
        use ChainOp::*;
        let refused = [
            vec![],
            vec![Add],
            vec![Load(0), Mul],
            vec![Load(0), Load(1)],
            vec![Load(MAX_CHAIN_INPUTS)],
            vec![Load(0), Load(1), Load(2), Add],
            vec![Load(0), BiasAdd(Arc::from(Vec::new()))],
            (0..=MAX_CHAIN_DEPTH)
                .map(|_| Load(0))
                .chain([Add])
                .collect(),
        ];
        for program in refused {
            assert!(
                ChainPlan::new(&program, SimdLevel::Portable).is_err(),
                "{program:?}"
            );
        }
        let plan = ChainPlan::new(&[Load(0), Load(1), Load(2), Mul, Add], SimdLevel::Portable)
            .expect("plan");
        assert_eq!((plan.inputs, plan.scratch_len()), (3, 2 * CHAIN_BLOCK));
        let mut out = [0.0; 4];
        let short: [&[f32]; 3] = [&[1.0; 4], &[1.0; 4], &[1.0; 3]];
        assert!(plan
            .run(&short, &mut out, &mut [0.0; 2 * CHAIN_BLOCK], false)
            .is_err());
        let whole: [&[f32]; 3] = [&[1.0; 4], &[1.0; 4], &[1.0; 4]];
        assert!(plan
            .run(&whole, &mut out, &mut [0.0; CHAIN_BLOCK], false)
            .is_err());
        assert_eq!(out, [0.0; 4], "a refused run writes nothing");
    }
}
