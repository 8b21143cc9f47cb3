//! Buffer slots by liveness: buffers whose lifetimes do not overlap share one
//! allocation, so a run keeps only what is live at once (what
//! `Graph::peak_activation_bytes` counts) rather than every node's output.
//! A transformer encoder then writes into memory a layer or two old, still in
//! cache, instead of fresh lines for every step.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use crate::pages::PageBuffer;

/// How one buffer is placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Live from the start of step `first` to the end of step `last`; `size`
    /// ranks buffers for best fit (elements per sample).
    Shared {
        first: usize,
        last: usize,
        size: usize,
    },
    /// A slot of its own: constants, the caller's input, buffers no step writes.
    Own,
}

/// Which slot each buffer lives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SlotPlan {
    pub slot_of: Vec<usize>,
    pub slots: usize,
}

impl SlotPlan {
    /// Every buffer in a slot of its own (what the backends did before).
    pub fn one_each(buffers: usize) -> SlotPlan {
        SlotPlan {
            slot_of: (0..buffers).collect(),
            slots: buffers,
        }
    }

    /// Whether buffer `id` shares its slot with another buffer (whose values
    /// it then finds there when its step begins).
    pub fn shares_slot(&self, id: usize) -> bool {
        let slot = self.slot_of.get(id);
        self.slot_of.iter().filter(|&s| Some(s) == slot).count() > 1
    }

    /// Each slot's length into `lens` (one per slot; no allocation, so runs
    /// can call it): the longest of the buffers in it, `len(buffer)`.
    pub fn fill_slot_lens(&self, lens: &mut [usize], len: impl Fn(usize) -> usize) {
        lens.fill(0);
        for (b, &slot) in self.slot_of.iter().enumerate() {
            if let Some(l) = lens.get_mut(slot) {
                *l = (*l).max(len(b));
            }
        }
    }
}

/// The allocations of a `SlotPlan`: one per slot, each as long as the
/// longest buffer placed in it.
#[derive(Debug)]
pub(crate) struct SlotBuffers {
    plan: SlotPlan,
    /// Each slot's length at the last `size` (kept to be refilled without allocating).
    lens: Vec<usize>,
    slots: Vec<PageBuffer<f32>>,
}

impl SlotBuffers {
    /// Nothing allocated yet: the first `size` allocates.
    pub fn new(plan: SlotPlan) -> SlotBuffers {
        SlotBuffers {
            plan,
            lens: Vec::new(),
            slots: Vec::new(),
        }
    }

    /// Whether `size` has allocated every slot.
    pub fn is_allocated(&self) -> bool {
        self.slots.len() == self.plan.slots
    }

    /// Sizes each slot for the longest of its buffers, `len(buffer)`; the slot
    /// of a constant (its own) holds `constant(buffer)`. Within the current
    /// allocations when `reuse` and they hold enough, which allocates nothing
    /// and leaves their contents (a padding never written stays zero);
    /// otherwise fresh, zeroed ones (on cache lines: a GEMM's 64-byte stores
    /// into a buffer 16 bytes into a line split lines, an int8
    /// 128x768x3072 GEMM 7-11% slower). Returns whether it allocated.
    pub fn size<'c>(
        &mut self,
        len: impl Fn(usize) -> usize,
        constant: impl Fn(usize) -> Option<&'c [f32]>,
        reuse: bool,
    ) -> bool {
        self.lens.resize(self.plan.slots, 0);
        self.plan.fill_slot_lens(&mut self.lens, len);
        if reuse
            && self.is_allocated()
            && (self.slots.iter_mut())
                .zip(&self.lens)
                .all(|(buf, &len)| buf.set_len_within(len))
        {
            return false;
        }
        let mut constants = vec![None; self.plan.slots];
        for (id, &slot) in self.plan.slot_of.iter().enumerate() {
            if let Some(data) = constant(id) {
                constants[slot] = Some(data);
            }
        }
        self.slots = (constants.iter().zip(&self.lens))
            .map(|(constant, &len)| match constant {
                Some(data) => PageBuffer::copied(data),
                None => PageBuffer::zeroed(len),
            })
            .collect();
        true
    }

    /// The first `len` values of buffer `id` (its slot may be longer,
    /// holding larger buffers at other steps; shorter only when unsized).
    pub fn buffer(&self, id: usize, len: usize) -> &[f32] {
        let slot = &self.slots[self.plan.slot_of[id]];
        &slot[..len.min(slot.len())]
    }

    /// All of buffer `id`'s slot, to write.
    pub fn slot_mut(&mut self, id: usize) -> &mut PageBuffer<f32> {
        &mut self.slots[self.plan.slot_of[id]]
    }

    /// Buffer `id`'s slot taken out (so other buffers can be read while it is
    /// written), with its number for `put_back`.
    pub fn take(&mut self, id: usize) -> (usize, PageBuffer<f32>) {
        let slot = self.plan.slot_of[id];
        (slot, std::mem::take(&mut self.slots[slot]))
    }

    pub fn put_back(&mut self, (slot, buf): (usize, PageBuffer<f32>)) {
        self.slots[slot] = buf;
    }

    /// Bytes of the slots holding no `constant` buffer.
    pub fn bytes_without(&self, constant: impl Fn(usize) -> bool) -> usize {
        let mut holds_constant = vec![false; self.slots.len()];
        for (id, &slot) in self.plan.slot_of.iter().enumerate() {
            if let (true, Some(c)) = (constant(id), holds_constant.get_mut(slot)) {
                *c = true;
            }
        }
        (self.slots.iter().zip(&holds_constant))
            .filter(|(_, &c)| !c)
            .map(|(b, _)| std::mem::size_of_val(&b[..]))
            .sum()
    }
}

/// Slots for `buffers`: greedy in order of first use (interval colouring,
/// optimal in slot count), each buffer taking the free slot closest above its
/// size, or else the largest free slot, which then grows. O(n log n).
pub(crate) fn plan(buffers: &[Placement]) -> SlotPlan {
    let mut slot_of = vec![usize::MAX; buffers.len()];
    let mut slots = 0usize;
    let mut shared: Vec<(usize, usize, usize, usize)> = Vec::new();
    for (b, p) in buffers.iter().enumerate() {
        match *p {
            Placement::Own => {
                slot_of[b] = slots;
                slots += 1;
            }
            Placement::Shared { first, last, size } => shared.push((first, last, size, b)),
        }
    }
    // Larger buffers first among those starting together, so they set a slot's size.
    shared.sort_unstable_by_key(|&(first, _, size, b)| (first, Reverse(size), b));
    // Slots in use, by the step after which they come free; free slots by size.
    let mut busy: BinaryHeap<Reverse<(usize, usize)>> = BinaryHeap::new();
    let mut free: BTreeSet<(usize, usize)> = BTreeSet::new();
    let mut slot_size: Vec<usize> = Vec::new();
    let first_shared = slots;
    for (first, last, size, b) in shared {
        while let Some(&Reverse((ends, slot))) = busy.peek() {
            if ends >= first {
                break;
            }
            busy.pop();
            free.insert((slot_size[slot - first_shared], slot));
        }
        let fit = free
            .range((size, 0)..)
            .next()
            .copied()
            .or_else(|| free.iter().next_back().copied());
        let slot = match fit {
            Some(key) => {
                free.remove(&key);
                key.1
            }
            None => {
                slot_size.push(0);
                slots += 1;
                slots - 1
            }
        };
        let own_size = &mut slot_size[slot - first_shared];
        *own_size = (*own_size).max(size);
        slot_of[b] = slot;
        busy.push(Reverse((last.max(first), slot)));
    }
    SlotPlan { slot_of, slots }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn shared(first: usize, last: usize, size: usize) -> Placement {
        Placement::Shared { first, last, size }
    }

    #[test]
    fn a_chain_of_steps_needs_two_slots() {
        // Each step reads the buffer before it and writes the next.
        let buffers: Vec<Placement> = (0..10).map(|i| shared(i, i + 1, 100)).collect();
        let plan = plan(&buffers);
        assert_eq!(plan.slots, 2);
        for i in 0..9 {
            assert_ne!(plan.slot_of[i], plan.slot_of[i + 1]);
        }
    }

    #[test]
    fn own_buffers_are_never_shared() {
        let buffers = [
            Placement::Own,
            shared(0, 0, 5),
            Placement::Own,
            shared(1, 1, 5),
        ];
        let plan = plan(&buffers);
        assert_eq!(plan.slots, 3);
        assert_eq!(plan.slot_of[1], plan.slot_of[3]);
        let own = [plan.slot_of[0], plan.slot_of[2]];
        assert!(own.iter().all(|s| *s != plan.slot_of[1]) && own[0] != own[1]);
        let sharing: Vec<bool> = (0..4).map(|b| plan.shares_slot(b)).collect();
        assert_eq!(sharing, [false, true, false, true]);
    }

    #[test]
    fn a_freed_slot_goes_to_the_buffer_it_fits_best() {
        // Two slots come free (sizes 10 and 1000); a buffer of 900 takes the 1000.
        let buffers = [shared(0, 1, 10), shared(0, 1, 1000), shared(2, 3, 900)];
        let plan = plan(&buffers);
        assert_eq!(plan.slot_of[2], plan.slot_of[1]);
        let mut lens = vec![0; plan.slots];
        plan.fill_slot_lens(&mut lens, |b| [10, 1000, 900][b]);
        assert_eq!(lens.iter().sum::<usize>(), 1010);
    }

    proptest! {
        /// No two buffers sharing a slot are live at once, and no more slots
        /// are used than buffers are live at the busiest step.
        #[test]
        fn slots_never_hold_two_live_buffers(
            spans in proptest::collection::vec((0usize..40, 0usize..8, 1usize..1000), 0..60),
            own in proptest::collection::vec(any::<bool>(), 60),
        ) {
            let buffers: Vec<Placement> = spans
                .iter()
                .zip(&own)
                .map(|(&(first, len, size), &own)| {
                    if own { Placement::Own } else { shared(first, first + len, size) }
                })
                .collect();
            let plan = plan(&buffers);
            prop_assert_eq!(plan.slot_of.len(), buffers.len());
            prop_assert!(plan.slot_of.iter().all(|&s| s < plan.slots));
            for (a, pa) in buffers.iter().enumerate() {
                for (b, pb) in buffers.iter().enumerate().skip(a + 1) {
                    if plan.slot_of[a] != plan.slot_of[b] {
                        continue;
                    }
                    match (pa, pb) {
                        (
                            Placement::Shared { first: f1, last: l1, .. },
                            Placement::Shared { first: f2, last: l2, .. },
                        ) => prop_assert!(l1 < f2 || l2 < f1, "{a} and {b} overlap in one slot"),
                        _ => prop_assert!(false, "an own buffer shares slot {}", plan.slot_of[a]),
                    }
                }
            }
            let owned = buffers.iter().filter(|p| **p == Placement::Own).count();
            let busiest = (0..48)
                .map(|t| {
                    buffers
                        .iter()
                        .filter(|p| matches!(p, Placement::Shared { first, last, .. } if *first <= t && t <= *last))
                        .count()
                })
                .max()
                .unwrap_or(0);
            prop_assert_eq!(plan.slots, owned + busiest);
        }
    }
}
