//! The event loop.
//!
//! Time is integer nanoseconds. Arrivals are generated lazily (one pending
//! send time outside the heap); every other event sits in a binary heap
//! ordered by (time, sequence number). A send tied with a heap event is
//! processed first. Per-request state lives only while the request is in
//! flight (parked slots, heap, replica queues), so memory is bounded by the
//! in-flight population, not by the number of requests; storage for a
//! typical population is reserved up front so that it does not grow either.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

use super::arrivals::{self, Arrivals};
use super::config::{
    Autoscale, Balancer, EdgeDevices, JobSchedule, LookupPath, Mode, OnlinePath, ServingPool,
    SimConfig, Throttling, Transport,
};
use super::dist::{check_fit, unit, FitSampler, ServiceSampler};
use super::network::{LinkSampler, Send};
use super::stats::{
    EnergyStats, Failures, LagStats, LatencyRecorder, Level, LittlesLaw, PathCounts, PoolStats,
    ReplicaStats, SimOutcome, StalenessStats,
};
use super::streams::{Source, Streams};
use super::SimError;

const NS_PER_S: f64 = 1e9;
/// Times beyond this (about 3 years) are clamped; keeps sums far from overflow.
const MAX_NS: u64 = 1 << 56;

#[inline]
fn to_ns(seconds: f64) -> u64 {
    if seconds.is_nan() || seconds <= 0.0 {
        0
    } else {
        // + 0.5 then truncate: rounds positives without a libm call
        let ns = seconds * NS_PER_S + 0.5;
        if ns >= MAX_NS as f64 {
            MAX_NS
        } else {
            // in [0, 2^56): the signed conversion is one instruction and exact
            ns as i64 as u64
        }
    }
}

#[inline]
fn to_s(ns: u64) -> f64 {
    ns as f64 / NS_PER_S
}

const MEASURED: u8 = 1;
const EGRESS: u8 = 2;

/// A request in flight.
#[derive(Debug, Clone, Copy)]
struct Req {
    /// Client send time.
    sent: u64,
    /// Entry into the serving stage (pool or lookup).
    entered: u64,
    /// Delay from leaving the serving stage to the client receiving.
    back: u64,
    flags: u8,
    /// Index of the request in send order, which keys its random draws
    /// (see `super::streams`); wraps after 2^32 requests, which only
    /// repeats draws, and keeps the struct at 32 bytes.
    id: u32,
}

const _: () = assert!(std::mem::size_of::<Req>() == 32);

/// What happens at an event. Requests travelling between stages are parked
/// in [`Events::parked`] and named by slot, which keeps an event at 24
/// bytes (the heap moves events on every push and pop).
#[derive(Debug, Clone, Copy)]
enum Kind {
    Enter {
        pool: u8,
        slot: u32,
    },
    /// `gen` tells a stale timer from the armed one; it wraps, and a stale
    /// timer taken for the armed one only re-checks the batch early.
    Timer {
        pool: u8,
        gen: u16,
        queue: u32,
    },
    Done {
        pool: u8,
        replica: u32,
    },
    Ready {
        pool: u8,
        replica: u32,
    },
    Scale {
        pool: u8,
    },
    LookupStart {
        slot: u32,
    },
    LookupDone {
        slot: u32,
    },
}

#[derive(Debug, Clone, Copy)]
struct Event {
    time: u64,
    seq: u64,
    kind: Kind,
}

const _: () = assert!(std::mem::size_of::<Event>() == 24);

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    // reversed: BinaryHeap is a max-heap, we want the earliest first
    fn cmp(&self, other: &Self) -> Ordering {
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

/// Events pending at the start of a run: enough for typical plans that the
/// heap never grows (see `tests/sim_memory.rs`).
const INITIAL_EVENTS: usize = 1_024;

struct Events {
    heap: BinaryHeap<Event>,
    /// The top of the heap is being handled and counts as removed: the
    /// first push replaces it in place (one sift instead of a pop and a
    /// push), otherwise it is popped once the handler returns. Keys are
    /// unique (sequence numbers), so the order is exactly a heap's.
    top_taken: bool,
    seq: u64,
    peak_len: usize,
    /// Requests in transit between stages; slots are reused (free list),
    /// so this holds the in-transit population, not the request count.
    parked: Vec<Req>,
    free: Vec<u32>,
}

impl Events {
    fn new() -> Self {
        Self {
            heap: BinaryHeap::with_capacity(INITIAL_EVENTS),
            top_taken: false,
            seq: 0,
            peak_len: 0,
            parked: Vec::with_capacity(INITIAL_EVENTS),
            free: Vec::with_capacity(INITIAL_EVENTS),
        }
    }

    #[inline]
    fn push(&mut self, time: u64, kind: Kind) {
        self.seq += 1;
        let event = Event {
            time,
            seq: self.seq,
            kind,
        };
        if self.top_taken {
            self.top_taken = false;
            if let Some(mut top) = self.heap.peek_mut() {
                *top = event;
                return;
            }
        }
        self.heap.push(event);
        self.peak_len = self.peak_len.max(self.heap.len());
    }

    /// The earliest event, left in place as taken (see `top_taken`).
    #[inline]
    fn take_top(&mut self) -> Option<Event> {
        debug_assert!(!self.top_taken);
        let top = *self.heap.peek()?;
        self.top_taken = true;
        Some(top)
    }

    /// Removes the taken top unless a push already replaced it.
    #[inline]
    fn settle(&mut self) {
        if self.top_taken {
            self.top_taken = false;
            self.heap.pop();
        }
    }

    #[inline]
    fn park(&mut self, req: Req) -> u32 {
        match self.free.pop() {
            Some(slot) => {
                self.parked[slot as usize] = req;
                slot
            }
            None => {
                self.parked.push(req);
                (self.parked.len() - 1) as u32
            }
        }
    }

    #[inline]
    fn unpark(&mut self, slot: u32) -> Req {
        self.free.push(slot);
        self.parked[slot as usize]
    }
}

/// A FIFO of waiting requests: one per replica, or one shared by all.
#[derive(Default)]
struct WaitQueue {
    items: VecDeque<Req>,
    timer_armed: bool,
    timer_gen: u16,
}

struct Replica {
    in_service: Vec<Req>,
    busy: bool,
    ready: bool,
    /// Added to the next batch (cold start), then 0.
    first_batch_extra_s: f64,
    busy_since: u64,
    busy_ns: u64,
    batches: u64,
    served: u64,
    max_batch: u32,
    thermal: f64,
    thermal_at: u64,
}

impl Replica {
    #[inline]
    fn is_idle(&self) -> bool {
        self.ready && !self.busy
    }

    fn new(ready: bool, first_batch_extra_s: f64) -> Self {
        Self {
            in_service: Vec::new(),
            busy: false,
            ready,
            first_batch_extra_s,
            busy_since: 0,
            busy_ns: 0,
            batches: 0,
            served: 0,
            max_batch: 0,
            thermal: 0.0,
            thermal_at: 0,
        }
    }
}

struct Pool {
    replicas: Vec<Replica>,
    /// `replicas.len()` queues, or one with `Balancer::SharedQueue`.
    queues: Vec<WaitQueue>,
    balancer: Balancer,
    partitions: Option<u32>,
    max_batch: usize,
    max_delay_ns: u64,
    service: ServiceSampler,
    capacity: usize,
    rr_next: usize,
    ready_count: usize,
    /// Launched replicas: the prefix `replicas[..active]`.
    active: usize,
    active_level: Level,
    autoscale: Option<Autoscale>,
    scale_outs: u64,
    throttle: Option<Throttling>,
    throttled_batches: u64,
    queued: Level,
    waits: Waits,
    /// Outstanding per replica, for the least-outstanding balancer on
    /// per-replica queues (`None` for other balancers).
    least: Option<LeastLoaded>,
    /// Ready, idle replicas, for a shared queue (`None` otherwise).
    idle: Option<MinTree>,
}

/// A segment tree of keys over slots `0..len`: the smallest key in
/// O(1), a slot's key changed in O(log len). Absent slots hold `u64::MAX`.
struct MinTree {
    /// Leaves in `nodes[leaves..]`, node `k`'s children at `2k`, `2k + 1`.
    leaves: usize,
    nodes: Vec<u64>,
}

impl MinTree {
    fn new(len: usize, key: impl Fn(usize) -> u64) -> Self {
        let leaves = len.max(1).next_power_of_two();
        let mut nodes = vec![u64::MAX; 2 * leaves];
        for (i, node) in nodes[leaves..leaves + len].iter_mut().enumerate() {
            *node = key(i);
        }
        for k in (1..leaves).rev() {
            nodes[k] = nodes[2 * k].min(nodes[2 * k + 1]);
        }
        Self { leaves, nodes }
    }

    #[inline]
    fn set(&mut self, slot: usize, key: u64) {
        let mut k = self.leaves + slot;
        self.nodes[k] = key;
        while k > 1 {
            k /= 2;
            let min = self.nodes[2 * k].min(self.nodes[2 * k + 1]);
            if self.nodes[k] == min {
                break; // the ancestors already hold it
            }
            self.nodes[k] = min;
        }
    }

    #[inline]
    fn min(&self) -> u64 {
        self.nodes[1]
    }
}

/// Pools this narrow scan their replicas instead of keeping indexes: a
/// scan of a few replicas costs less than updating a tree on every request
/// (4 replicas, batch 1: 20% slower with the trees).
const SCAN_UP_TO_REPLICAS: usize = 16;

/// Replicas keyed by (outstanding, index), so the smallest key is the
/// replica a least-outstanding scan in index order picks (first of the
/// least loaded): once among the launched replicas, once among the ready.
struct LeastLoaded {
    launched: MinTree,
    ready: MinTree,
}

/// (outstanding, index) as one integer ordered like the pair. Outstanding
/// saturates at 2^32 - 1, which a replica cannot reach (that many waiting
/// requests would take 128 GiB).
#[inline]
fn load_key(outstanding: usize, index: usize) -> u64 {
    (outstanding.min(u32::MAX as usize) as u64) << 32 | index as u64
}

#[inline]
fn key_slot(key: u64) -> usize {
    (key & u64::from(u32::MAX)) as usize
}

/// Queue waits of measured requests that were served.
#[derive(Default, Clone, Copy)]
struct Waits {
    sum_ns: f64,
    count: u64,
}

impl Pool {
    fn cloud(
        pool: &ServingPool,
        transport: &Transport,
    ) -> Result<(Self, Vec<(u32, f64)>), SimError> {
        check_pool_shape(
            pool.replicas,
            pool.batching.max_batch_size,
            pool.batching.max_queue_delay_s,
            pool.queue_capacity,
            "cloud pool",
        )?;
        let partitions = match transport {
            Transport::Http => None,
            Transport::Stream(b) | Transport::Bridged(b) => {
                if b.partitions == 0 {
                    return Err(SimError::invalid("broker.partitions", 0, ">= 1"));
                }
                check_fit(&b.produce, "broker.produce")?;
                check_fit(&b.consume, "broker.consume")?;
                matches!(transport, Transport::Stream(_)).then_some(b.partitions)
            }
        };
        let n = pool.replicas as usize;
        let mut ready_at = Vec::new();
        let mut slots = n;
        if let Some(a) = &pool.autoscale {
            let ok = |x: f64| x.is_finite() && x >= 0.0;
            let valid = a.max_replicas >= pool.replicas
                && a.max_replicas <= 4_096
                && a.interval_s.is_finite()
                && a.interval_s > 0.0
                && ok(a.target_outstanding_per_replica)
                && ok(a.startup_s)
                && ok(a.first_batch_extra_s);
            if !valid {
                return Err(SimError::invalid(
                    "cloud pool.autoscale",
                    format!("{a:?}"),
                    "replicas <= max_replicas <= 4096, interval_s > 0, others finite >= 0",
                ));
            }
            slots = a.max_replicas as usize;
        }
        let launch_extra = pool.autoscale.map_or(0.0, |a| a.first_batch_extra_s);
        let mut replicas: Vec<Replica> = (0..slots)
            .map(|i| {
                if i < n {
                    Replica::new(true, 0.0)
                } else {
                    Replica::new(false, launch_extra)
                }
            })
            .collect();
        if let Some(c) = &pool.cold_start {
            let ok = |x: f64| x.is_finite() && x >= 0.0;
            if c.cold_replicas > pool.replicas
                || !ok(c.scale_out_at_s)
                || !ok(c.startup_s)
                || !ok(c.first_batch_extra_s)
            {
                return Err(SimError::invalid(
                    "cloud pool.cold_start",
                    format!("{c:?}"),
                    "cold_replicas <= replicas, times finite >= 0",
                ));
            }
            for (i, r) in replicas
                .iter_mut()
                .enumerate()
                .take(n)
                .skip(n - c.cold_replicas as usize)
            {
                *r = Replica::new(false, c.first_batch_extra_s);
                ready_at.push((i as u32, c.scale_out_at_s + c.startup_s));
            }
        }
        let ready_count = replicas.iter().filter(|r| r.ready).count();
        let shared = partitions.is_none() && pool.balancer == Balancer::SharedQueue;
        let mut active_level = Level::default();
        active_level.add(0, n as u64);
        let mut built = (
            Self {
                queues: queues_for(slots, shared),
                replicas,
                balancer: pool.balancer,
                partitions,
                max_batch: pool.batching.max_batch_size as usize,
                max_delay_ns: to_ns(pool.batching.max_queue_delay_s),
                service: ServiceSampler::new(
                    &pool.service,
                    pool.batching.max_batch_size,
                    "cloud pool.service",
                )?,
                capacity: pool.queue_capacity as usize,
                rr_next: 0,
                ready_count,
                active: n,
                active_level,
                autoscale: pool.autoscale,
                scale_outs: 0,
                throttle: None,
                throttled_batches: 0,
                queued: Level::default(),
                waits: Waits::default(),
                least: None,
                idle: None,
            },
            ready_at,
        );
        built.0.build_indexes();
        built.0.reserve_storage();
        Ok(built)
    }

    fn edge(edge: &EdgeDevices) -> Result<Self, SimError> {
        check_pool_shape(
            edge.devices,
            edge.batching.max_batch_size,
            edge.batching.max_queue_delay_s,
            edge.queue_capacity,
            "edge",
        )?;
        let ok = |x: f64| x.is_finite() && x >= 0.0;
        if !ok(edge.busy_power_w) || !ok(edge.idle_power_w) {
            return Err(SimError::invalid(
                "edge.power_w",
                edge.busy_power_w,
                "finite >= 0",
            ));
        }
        if let Some(t) = &edge.throttling {
            let valid = t.time_constant_s > 0.0
                && t.time_constant_s.is_finite()
                && (0.0..=1.0).contains(&t.threshold)
                && t.slowdown >= 1.0
                && t.slowdown.is_finite();
            if !valid {
                return Err(SimError::invalid(
                    "edge.throttling",
                    format!("{t:?}"),
                    "time_constant_s > 0, threshold in [0, 1], slowdown >= 1",
                ));
            }
        }
        let mut active_level = Level::default();
        active_level.add(0, u64::from(edge.devices));
        let mut built = Self {
            replicas: (0..edge.devices).map(|_| Replica::new(true, 0.0)).collect(),
            queues: queues_for(edge.devices as usize, false),
            balancer: Balancer::Random,
            partitions: None,
            max_batch: edge.batching.max_batch_size as usize,
            max_delay_ns: to_ns(edge.batching.max_queue_delay_s),
            service: ServiceSampler::new(
                &edge.service,
                edge.batching.max_batch_size,
                "edge.service",
            )?,
            capacity: edge.queue_capacity as usize,
            rr_next: 0,
            ready_count: edge.devices as usize,
            active: edge.devices as usize,
            active_level,
            autoscale: None,
            scale_outs: 0,
            throttle: edge.throttling,
            throttled_batches: 0,
            queued: Level::default(),
            waits: Waits::default(),
            least: None,
            idle: None,
        };
        built.build_indexes();
        built.reserve_storage();
        Ok(built)
    }

    #[inline]
    fn shared(&self) -> bool {
        self.queues.len() == 1 && self.replicas.len() > 1
    }

    /// Queue index serving replica `r`.
    #[inline]
    fn queue_of(&self, r: usize) -> usize {
        if self.queues.len() == 1 {
            0
        } else {
            r
        }
    }

    /// Queue index for request `id`.
    fn pick(&mut self, st: &Streams, id: u32) -> usize {
        let n = self.active;
        if self.shared() {
            return 0;
        }
        let u = || unit(&mut st.request(Source::Balancer, u64::from(id)));
        if let Some(p) = self.partitions {
            let partition = ((u() * f64::from(p)) as u32).min(p - 1);
            return partition as usize % n;
        }
        let any = self.ready_count == 0;
        match self.balancer {
            Balancer::Random => ((u() * n as f64) as usize).min(n - 1),
            Balancer::SharedQueue => 0,
            Balancer::RoundRobin => {
                for _ in 0..n {
                    let i = self.rr_next;
                    self.rr_next = if i + 1 >= n { 0 } else { i + 1 };
                    if any || self.replicas[i].ready {
                        return i;
                    }
                }
                0
            }
            Balancer::LeastOutstanding => {
                // ready replicas are counted among the launched ones only
                let all = any || self.ready_count >= n;
                let best = match &self.least {
                    Some(t) => {
                        let tree = if all { &t.launched } else { &t.ready };
                        match tree.min() {
                            u64::MAX => 0,
                            key => key_slot(key),
                        }
                    }
                    None => self.least_outstanding_scan(all),
                };
                #[cfg(test)]
                assert_eq!(best, self.least_outstanding_scan(all), "pick differs");
                best
            }
        }
    }

    /// The first replica (in index order) with the fewest outstanding
    /// requests among the launched (`all`) or the launched and ready;
    /// O(replicas): the reference the trees must agree with.
    fn least_outstanding_scan(&self, all: bool) -> usize {
        let mut best = 0;
        let mut best_load = usize::MAX;
        let launched = self.replicas.iter().zip(&self.queues).take(self.active);
        for (i, (r, q)) in launched.enumerate() {
            if !(all || r.ready) {
                continue;
            }
            let load = q.items.len() + r.in_service.len();
            if load < best_load {
                best = i;
                best_load = load;
            }
        }
        best
    }

    /// Builds the balancer's and the shared queue's indexes from the
    /// replicas' state (at construction).
    fn build_indexes(&mut self) {
        let per_replica = self.queues.len() == self.replicas.len();
        let wide = self.replicas.len() > SCAN_UP_TO_REPLICAS;
        self.least = (self.balancer == Balancer::LeastOutstanding
            && self.partitions.is_none()
            && per_replica
            && wide)
            .then(|| {
                let (replicas, queues, active) = (&self.replicas, &self.queues, self.active);
                let key =
                    |i: usize| load_key(queues[i].items.len() + replicas[i].in_service.len(), i);
                LeastLoaded {
                    launched: MinTree::new(replicas.len(), |i| {
                        if i < active {
                            key(i)
                        } else {
                            u64::MAX
                        }
                    }),
                    ready: MinTree::new(replicas.len(), |i| {
                        if i < active && replicas[i].ready {
                            key(i)
                        } else {
                            u64::MAX
                        }
                    }),
                }
            });
        self.idle = (self.shared() && wide).then(|| {
            let replicas = &self.replicas;
            MinTree::new(replicas.len(), |i| idle_key(&replicas[i], i))
        });
    }

    /// Brings replica `r`'s entries in the indexes up to date after its
    /// queue, batch, readiness, launch or busy state changed.
    #[inline]
    fn reindex(&mut self, r: usize) {
        // narrow pools keep no indexes: no call on their hot path
        if self.least.is_some() || self.idle.is_some() {
            self.reindex_wide(r);
        }
    }

    fn reindex_wide(&mut self, r: usize) {
        let rep = &self.replicas[r];
        if let Some(t) = &mut self.least {
            let launched = r < self.active;
            let key = load_key(self.queues[r].items.len() + rep.in_service.len(), r);
            t.launched.set(r, if launched { key } else { u64::MAX });
            t.ready
                .set(r, if launched && rep.ready { key } else { u64::MAX });
        }
        if let Some(t) = &mut self.idle {
            t.set(r, idle_key(rep, r));
        }
    }

    /// The pool's figures over the arrivals' window `[0, window_ns]` (up to
    /// the last send), with `launched` its launched-replica level advanced
    /// to `window_ns`. Busy time and queue area are whole-run totals, work
    /// the window's arrivals brought (their drain included): over the
    /// window they are work per arrival times the arrival rate, like
    /// [`SimOutcome::busy_share_at`]. Over the run they would be diluted by
    /// the drain, longest behind a slow network: the same compute reported
    /// 0.84 busy with no network and 0.57 behind a 1 ms / 2 ms link.
    fn stats(&self, window_ns: u64, launched: Level) -> PoolStats {
        let over_window = |total_ns: f64| {
            if window_ns == 0 {
                0.0
            } else {
                total_ns / window_ns as f64
            }
        };
        let replicas: Vec<ReplicaStats> = self
            .replicas
            .iter()
            .map(|r| ReplicaStats {
                // past saturation the drain outlasts the window: busy throughout
                utilisation: over_window(r.busy_ns as f64).min(1.0),
                batches: r.batches,
                served: r.served,
                max_batch_size: r.max_batch,
            })
            .collect();
        let batches: u64 = replicas.iter().map(|r| r.batches).sum();
        let served: u64 = replicas.iter().map(|r| r.served).sum();
        let mean_replicas = if window_ns == 0 {
            launched.level as f64
        } else {
            launched.mean(window_ns)
        };
        let busy_ns: f64 = self.replicas.iter().map(|r| r.busy_ns as f64).sum();
        PoolStats {
            mean_utilisation: if mean_replicas > 0.0 {
                (over_window(busy_ns) / mean_replicas).min(1.0)
            } else {
                0.0
            },
            busy_s: busy_ns / NS_PER_S,
            mean_replicas,
            scale_outs: self.scale_outs,
            mean_queue_len: self.queued.mean(window_ns),
            max_queue_len: self.queued.max,
            batches,
            mean_batch_size: if batches == 0 {
                0.0
            } else {
                served as f64 / batches as f64
            },
            max_batch_size: replicas.iter().map(|r| r.max_batch_size).max().unwrap_or(0),
            served,
            replicas,
        }
    }
}

/// Waiting requests reserved for up front, per queue and for the whole pool:
/// in a stable plan queue storage then never grows, so a run of 10^8
/// requests holds no more memory than one of 10^6 (`tests/sim_memory.rs`).
const QUEUE_RESERVE_PER_QUEUE: usize = 256;
const QUEUE_RESERVE_PER_POOL: usize = 65_536;

impl Pool {
    /// Reserves queue and batch storage for the launched replicas.
    fn reserve_storage(&mut self) {
        let launched = self.active.max(1);
        let per_queue = if self.queues.len() == 1 {
            QUEUE_RESERVE_PER_QUEUE
                .saturating_mul(launched)
                .min(QUEUE_RESERVE_PER_POOL)
        } else {
            (QUEUE_RESERVE_PER_POOL / launched).clamp(16, QUEUE_RESERVE_PER_QUEUE)
        };
        let per_queue = per_queue.min(self.capacity);
        for q in self.queues.iter_mut().take(launched) {
            q.items.reserve_exact(per_queue);
        }
        let batch = self.max_batch.min(QUEUE_RESERVE_PER_QUEUE);
        for r in self.replicas.iter_mut().take(launched) {
            r.in_service.reserve_exact(batch);
        }
    }
}

fn queues_for(replicas: usize, shared: bool) -> Vec<WaitQueue> {
    let n = if shared { 1 } else { replicas };
    (0..n).map(|_| WaitQueue::default()).collect()
}

/// A ready, idle replica pulling from shared queue (lowest index first).
fn idle_replica(pool: &Pool) -> Option<usize> {
    let found = match &pool.idle {
        Some(t) => match t.min() {
            u64::MAX => None,
            slot => Some(slot as usize),
        },
        None => idle_replica_scan(pool),
    };
    #[cfg(test)]
    assert_eq!(found, idle_replica_scan(pool), "idle replica differs");
    found
}

/// O(replicas): the reference the idle index must agree with.
fn idle_replica_scan(pool: &Pool) -> Option<usize> {
    pool.replicas.iter().position(Replica::is_idle)
}

/// Replica `index`'s key in the idle index: its index when idle.
#[inline]
fn idle_key(rep: &Replica, index: usize) -> u64 {
    if rep.is_idle() {
        index as u64
    } else {
        u64::MAX
    }
}

fn check_pool_shape(
    replicas: u32,
    max_batch: u32,
    max_delay_s: f64,
    capacity: u32,
    field: &'static str,
) -> Result<(), SimError> {
    if replicas == 0 {
        return Err(SimError::invalid(
            field,
            "replicas = 0",
            "replicas/devices >= 1",
        ));
    }
    if max_batch == 0 || max_batch > 65_536 {
        return Err(SimError::invalid(
            field,
            max_batch,
            "max_batch_size in 1..=65536",
        ));
    }
    if !(max_delay_s.is_finite() && max_delay_s >= 0.0) {
        return Err(SimError::invalid(
            field,
            max_delay_s,
            "max_queue_delay_s finite >= 0",
        ));
    }
    if capacity == 0 {
        return Err(SimError::invalid(field, 0, "queue_capacity >= 1"));
    }
    Ok(())
}

/// Counters shared by all stages.
struct Tally {
    timeout_ns: u64,
    recorder: LatencyRecorder,
    failures: Failures,
    completed: u64,
    egress_per_response: u64,
    egress_bytes: u64,
    system: Level,
    entries: u64,
    sojourn_sum_ns: f64,
    last_ns: u64,
    /// Precomputed answers returned (measured); their age is the schedule's.
    lookups_served: u64,
}

impl Tally {
    #[inline]
    fn leave_stage(&mut self, now: u64, req: &Req) {
        self.system.sub(now, 1);
        self.sojourn_sum_ns += (now - req.entered) as f64;
        self.last_ns = self.last_ns.max(now);
    }

    /// Response reaches the client at `now + back`.
    #[inline]
    fn respond(&mut self, now: u64, req: &Req) -> bool {
        let arrive = now.saturating_add(req.back);
        self.last_ns = self.last_ns.max(arrive);
        if req.flags & MEASURED == 0 {
            return false;
        }
        let latency = arrive - req.sent;
        if latency > self.timeout_ns {
            self.failures.timeout += 1;
            return false;
        }
        self.recorder.record(latency);
        self.completed += 1;
        if req.flags & EGRESS != 0 {
            self.egress_bytes += self.egress_per_response;
        }
        true
    }

    #[inline]
    fn fail_in_stage(&mut self, now: u64, req: &Req, timeout: bool) {
        self.leave_stage(now, req);
        if req.flags & MEASURED != 0 {
            if timeout {
                self.failures.timeout += 1;
            } else {
                self.failures.queue_full += 1;
            }
        }
    }
}

fn enter_pool(
    pool: &mut Pool,
    pi: u8,
    req: Req,
    now: u64,
    ev: &mut Events,
    st: &Streams,
    tally: &mut Tally,
) {
    tally.system.add(now, 1);
    tally.entries += 1;
    let q = pool.pick(st, req.id);
    let queue_len = pool.queues[q].items.len();
    if queue_len >= pool.capacity {
        tally.fail_in_stage(now, &req, false);
        return;
    }
    // An idle replica with nothing queued that would start a batch of one
    // right away: skip the queue (same outcome, no queue traffic).
    if queue_len == 0
        && !pool.shared()
        && (pool.max_batch == 1 || pool.max_delay_ns == 0)
        && req.entered <= now
        && pool.replicas[q].is_idle()
    {
        pool.queued.pass_through();
        let rep = &mut pool.replicas[q];
        admit(&mut pool.waits, rep, req, now, tally);
        if !rep.in_service.is_empty() {
            launch_batch(pool, pi, q, now, ev, st);
        }
        pool.reindex(q);
        return;
    }
    pool.queues[q].items.push_back(req);
    pool.queued.add(now, 1);
    pool.reindex(q);
    let r = if pool.shared() {
        match idle_replica(pool) {
            Some(r) => r,
            None => return, // all busy: the next to finish pulls it
        }
    } else {
        q
    };
    try_dispatch(pool, pi, r, now, ev, st, tally);
}

#[inline]
fn try_dispatch(
    pool: &mut Pool,
    pi: u8,
    r: usize,
    now: u64,
    ev: &mut Events,
    st: &Streams,
    tally: &mut Tally,
) {
    let max_batch = pool.max_batch;
    let max_delay = pool.max_delay_ns;
    let qi = pool.queue_of(r);
    let rep = &pool.replicas[r];
    if rep.busy || !rep.ready {
        return;
    }
    let queue = &mut pool.queues[qi];
    let Some(oldest) = queue.items.front() else {
        return;
    };
    let due = oldest.entered.saturating_add(max_delay);
    if queue.items.len() >= max_batch || due <= now {
        start_batch(pool, pi, r, now, ev, st, tally);
    } else if !queue.timer_armed {
        queue.timer_armed = true;
        queue.timer_gen = queue.timer_gen.wrapping_add(1);
        ev.push(
            due,
            Kind::Timer {
                pool: pi,
                queue: qi as u32,
                gen: queue.timer_gen,
            },
        );
    }
}

fn start_batch(
    pool: &mut Pool,
    pi: u8,
    r: usize,
    now: u64,
    ev: &mut Events,
    st: &Streams,
    tally: &mut Tally,
) {
    let max_batch = pool.max_batch;
    let qi = pool.queue_of(r);
    let queue = &mut pool.queues[qi];
    queue.timer_armed = false;
    let rep = &mut pool.replicas[r];
    let mut taken = 0u64;
    while rep.in_service.len() < max_batch {
        let Some(req) = queue.items.pop_front() else {
            break;
        };
        taken += 1;
        admit(&mut pool.waits, rep, req, now, tally);
    }
    pool.queued.sub(now, taken);
    if !rep.in_service.is_empty() {
        launch_batch(pool, pi, r, now, ev, st);
    }
    pool.reindex(r);
}

/// Takes `req` into the replica's forming batch, unless its deadline passed.
#[inline]
fn admit(waits: &mut Waits, rep: &mut Replica, req: Req, now: u64, tally: &mut Tally) {
    // the server checks the deadline before spending work on it
    if now.saturating_sub(req.sent) > tally.timeout_ns {
        tally.fail_in_stage(now, &req, true);
        return;
    }
    if req.flags & MEASURED != 0 {
        waits.sum_ns += (now - req.entered) as f64;
        waits.count += 1;
    }
    rep.in_service.push(req);
}

/// Starts serving the replica's (non-empty) batch: draws the service time
/// and schedules the completion.
#[inline]
fn launch_batch(pool: &mut Pool, pi: u8, r: usize, now: u64, ev: &mut Events, st: &Streams) {
    let rep = &mut pool.replicas[r];
    let b = rep.in_service.len();
    // The noise is the head request's: batch-1 plans that differ only in
    // compute draw the same noise for each request.
    let head = rep.in_service.first().map_or(0, |q| q.id);
    let rng = &mut st.request(Source::Service, u64::from(head));
    let mut service_s = pool.service.sample(b as u32, rng);
    service_s += rep.first_batch_extra_s;
    rep.first_batch_extra_s = 0.0;
    if let Some(t) = &pool.throttle {
        let idle = (now - rep.thermal_at) as f64 / NS_PER_S;
        rep.thermal *= (-idle / t.time_constant_s).exp();
        rep.thermal_at = now;
        if rep.thermal > t.threshold {
            service_s *= t.slowdown;
            pool.throttled_batches += 1;
        }
    }
    rep.busy = true;
    rep.busy_since = now;
    rep.batches += 1;
    rep.served += b as u64;
    rep.max_batch = rep.max_batch.max(b as u32);
    ev.push(
        now + to_ns(service_s),
        Kind::Done {
            pool: pi,
            replica: r as u32,
        },
    );
}

fn finish_batch(
    pool: &mut Pool,
    pi: u8,
    r: usize,
    now: u64,
    ev: &mut Events,
    st: &Streams,
    tally: &mut Tally,
) {
    let throttle = pool.throttle;
    let rep = &mut pool.replicas[r];
    rep.busy = false;
    rep.busy_ns += now - rep.busy_since;
    if let Some(t) = throttle {
        let busy = (now - rep.thermal_at) as f64 / NS_PER_S;
        rep.thermal = 1.0 - (1.0 - rep.thermal) * (-busy / t.time_constant_s).exp();
        rep.thermal_at = now;
    }
    for req in rep.in_service.drain(..) {
        tally.leave_stage(now, &req);
        tally.respond(now, &req);
    }
    pool.reindex(r);
    try_dispatch(pool, pi, r, now, ev, st, tally);
}

/// Which stage a request goes to.
#[derive(Clone, Copy)]
enum Route {
    Cloud,
    Edge,
    Lookup,
}

struct CloudPath {
    pool: u8,
    link: LinkSampler,
    produce: Option<FitSampler>,
    consume: Option<FitSampler>,
}

struct Lookup {
    link: Option<LinkSampler>,
    latency: FitSampler,
    job: JobSchedule,
}

fn build_cloud(
    online: &OnlinePath,
    config: &SimConfig,
    pools: &mut Vec<Pool>,
    st: &Streams,
) -> Result<(CloudPath, Vec<(u32, f64)>), SimError> {
    let (pool, ready_at) = Pool::cloud(&online.pool, &online.transport)?;
    pools.push(pool);
    let (produce, consume) = match &online.transport {
        Transport::Http => (None, None),
        Transport::Stream(b) | Transport::Bridged(b) => (
            Some(FitSampler::new(&b.produce)),
            Some(FitSampler::new(&b.consume)),
        ),
    };
    Ok((
        CloudPath {
            pool: (pools.len() - 1) as u8,
            link: LinkSampler::new(&online.link, &config.payload, st, "online.link")?,
            produce,
            consume,
        },
        ready_at,
    ))
}

fn build_lookup(path: &LookupPath, config: &SimConfig, st: &Streams) -> Result<Lookup, SimError> {
    check_fit(&path.lookup, "lookup.lookup")?;
    let j = path.job;
    if !(j.period_s > 0.0
        && j.period_s.is_finite()
        && j.duration_s >= 0.0
        && j.duration_s <= j.period_s)
    {
        return Err(SimError::invalid(
            "lookup.job",
            format!("period {} s, duration {} s", j.period_s, j.duration_s),
            "period > 0 and 0 <= duration <= period (see plan_batch_job)",
        ));
    }
    Ok(Lookup {
        link: match &path.link {
            Some(l) => Some(LinkSampler::new(l, &config.payload, st, "lookup.link")?),
            None => None,
        },
        latency: FitSampler::new(&path.lookup),
        job: j,
    })
}

fn check_rate(x: f64, field: &'static str) -> Result<f64, SimError> {
    if (0.0..=1.0).contains(&x) {
        Ok(x)
    } else {
        Err(SimError::invalid(field, x, "a probability in [0, 1]"))
    }
}

/// Runs one simulation. Pure: same config, same outcome.
pub fn simulate(config: &SimConfig) -> Result<SimOutcome, SimError> {
    run(config).map(|(o, _)| o)
}

/// Sizes of the simulator's internal state after a run (for memory tests).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateFootprint {
    pub peak_events: usize,
    pub event_heap_capacity: usize,
    pub queue_capacity_total: usize,
    pub histogram_bytes: usize,
}

#[doc(hidden)]
pub fn simulate_with_footprint(
    config: &SimConfig,
) -> Result<(SimOutcome, StateFootprint), SimError> {
    run(config)
}

fn run(config: &SimConfig) -> Result<(SimOutcome, StateFootprint), SimError> {
    arrivals::validate(&config.arrivals)?;
    let rc = &config.run;
    if !(rc.duration_s.is_finite() && rc.duration_s > 0.0) {
        return Err(SimError::invalid(
            "run.duration_s",
            rc.duration_s,
            "finite > 0",
        ));
    }
    if !(rc.warmup_s.is_finite() && rc.warmup_s >= 0.0 && rc.warmup_s < rc.duration_s) {
        return Err(SimError::invalid(
            "run.warmup_s",
            rc.warmup_s,
            "0 <= warmup_s < duration_s",
        ));
    }
    if let Some(e) = &rc.early_stop {
        let quantile_ok = e.quantile > 0.0 && e.quantile < 1.0;
        if !(e.relative_half_width >= 0.0 && quantile_ok && e.batch_requests >= 100) {
            return Err(SimError::invalid(
                "run.early_stop",
                format!("{e:?}"),
                "0 < quantile < 1, relative_half_width >= 0, batch_requests >= 100",
            ));
        }
    }
    let timeout_ns = match config.timeout_s {
        None => u64::MAX,
        Some(t) if t.is_finite() && t > 0.0 => to_ns(t),
        Some(t) => return Err(SimError::invalid("timeout_s", t, "finite > 0 or none")),
    };

    let st = Streams::new(config.seed);
    let mut pools: Vec<Pool> = Vec::new();
    let mut cloud: Option<CloudPath> = None;
    let mut edge_pool: Option<u8> = None;
    let mut lookup: Option<Lookup> = None;
    let mut ready_at = Vec::new();
    // (probability of the alternative route, default route, alternative)
    let (alt_p, default_route, alt_route) = match &config.mode {
        Mode::Online(o) => {
            let (c, r) = build_cloud(o, config, &mut pools, &st)?;
            cloud = Some(c);
            ready_at = r;
            (0.0, Route::Cloud, Route::Cloud)
        }
        Mode::Edge(e) => {
            pools.push(Pool::edge(e)?);
            edge_pool = Some(0);
            (0.0, Route::Edge, Route::Edge)
        }
        Mode::BatchLookup(l) => {
            lookup = Some(build_lookup(l, config, &st)?);
            (0.0, Route::Lookup, Route::Lookup)
        }
        Mode::PrecomputeHybrid {
            lookup: l,
            hit_rate,
            online,
        } => {
            let p = check_rate(*hit_rate, "hit_rate")?;
            lookup = Some(build_lookup(l, config, &st)?);
            let (c, r) = build_cloud(online, config, &mut pools, &st)?;
            cloud = Some(c);
            ready_at = r;
            (p, Route::Cloud, Route::Lookup)
        }
        Mode::EdgeWithFallback {
            edge,
            fallback_rate,
            online,
        } => {
            let p = check_rate(*fallback_rate, "fallback_rate")?;
            pools.push(Pool::edge(edge)?);
            edge_pool = Some(0);
            let (c, r) = build_cloud(online, config, &mut pools, &st)?;
            cloud = Some(c);
            ready_at = r;
            (p, Route::Edge, Route::Cloud)
        }
    };

    let mut ev = Events::new();
    if let Some(c) = &cloud {
        for (replica, at) in ready_at {
            ev.push(
                to_ns(at),
                Kind::Ready {
                    pool: c.pool,
                    replica,
                },
            );
        }
        if let Some(a) = pools[c.pool as usize].autoscale {
            ev.push(to_ns(a.interval_s), Kind::Scale { pool: c.pool });
        }
    }
    let mut tally = Tally {
        timeout_ns,
        recorder: LatencyRecorder::new(rc.early_stop)?,
        failures: Failures::default(),
        completed: 0,
        egress_per_response: config.payload.response_bytes,
        egress_bytes: 0,
        system: Level::default(),
        entries: 0,
        sojourn_sum_ns: 0.0,
        last_ns: 0,
        lookups_served: 0,
    };
    let mut arrivals_rng = st.sequential(Source::Arrivals);
    let mut gen = Arrivals::new(&config.arrivals, &mut arrivals_rng);
    let horizon_ns = to_ns(rc.duration_s);
    let warmup_ns = to_ns(rc.warmup_s);
    let max_requests = rc.max_requests.unwrap_or(u64::MAX);
    let min_requests = rc.early_stop.map_or(0, |e| e.min_requests);
    let mut simulated = 0u64;
    let mut measured = 0u64;
    let mut last_send = 0u64;
    let mut paths = PathCounts::default();
    let mut stopped_early = false;

    let mut next_send =
        |simulated: u64, rng: &mut _, tally: &Tally, stopped: &mut bool| -> Option<u64> {
            if simulated >= max_requests {
                return None;
            }
            if simulated >= min_requests && tally.recorder.early_stop_satisfied() {
                *stopped = true;
                return None;
            }
            gen.next(rng).map(to_ns).filter(|&t| t < horizon_ns)
        };
    let mut pending = next_send(0, &mut arrivals_rng, &tally, &mut stopped_early);
    // Each pool's launched replicas up to the last send (see `Pool::stats`).
    let mut launched_by_last_send: Vec<Level> = pools.iter().map(|p| p.active_level).collect();

    loop {
        let send_first = match (pending, ev.heap.peek()) {
            (Some(t), Some(e)) => t <= e.time,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        if send_first {
            let Some(now) = pending else { break };
            // request index, before counting it: keys all of its draws
            let id = simulated as u32;
            simulated += 1;
            last_send = now;
            let is_measured = now >= warmup_ns;
            if is_measured {
                measured += 1;
            }
            let route =
                if alt_p > 0.0 && unit(&mut st.request(Source::Route, u64::from(id))) < alt_p {
                    alt_route
                } else {
                    default_route
                };
            let mut req = Req {
                sent: now,
                entered: now,
                back: 0,
                flags: if is_measured { MEASURED } else { 0 },
                id,
            };
            match route {
                Route::Cloud => {
                    if is_measured {
                        paths.cloud += 1;
                    }
                    if let Some(c) = &mut cloud {
                        match send_over(&mut c.link, now, timeout_ns, id) {
                            Send::Offline => {
                                if is_measured {
                                    tally.failures.offline += 1;
                                }
                            }
                            Send::Lost => {
                                if is_measured {
                                    tally.failures.timeout += 1;
                                }
                            }
                            Send::Delays(mut up, mut down) => {
                                if let (Some(p), Some(q)) = (&c.produce, &c.consume) {
                                    let rng = &mut st.request(Source::Broker, u64::from(id));
                                    // A hop in (requests topic) and a hop
                                    // out (results topic): each produced
                                    // and consumed.
                                    up += p.sample(rng) + q.sample(rng);
                                    down += p.sample(rng) + q.sample(rng);
                                }
                                req.flags |= EGRESS;
                                req.back = to_ns(down);
                                let up_ns = to_ns(up);
                                let pi = c.pool;
                                if up_ns == 0 {
                                    enter_pool(
                                        &mut pools[pi as usize],
                                        pi,
                                        req,
                                        now,
                                        &mut ev,
                                        &st,
                                        &mut tally,
                                    );
                                } else {
                                    req.entered = now + up_ns;
                                    let slot = ev.park(req);
                                    ev.push(req.entered, Kind::Enter { pool: pi, slot });
                                }
                            }
                        }
                    }
                }
                Route::Edge => {
                    if is_measured {
                        paths.edge += 1;
                    }
                    if let Some(pi) = edge_pool {
                        enter_pool(
                            &mut pools[pi as usize],
                            pi,
                            req,
                            now,
                            &mut ev,
                            &st,
                            &mut tally,
                        );
                    }
                }
                Route::Lookup => {
                    if is_measured {
                        paths.lookup += 1;
                    }
                    if let Some(l) = &mut lookup {
                        let mut up_ns = 0;
                        let mut ok = true;
                        if let Some(link) = &mut l.link {
                            match send_over(link, now, timeout_ns, id) {
                                Send::Offline => {
                                    ok = false;
                                    if is_measured {
                                        tally.failures.offline += 1;
                                    }
                                }
                                Send::Lost => {
                                    ok = false;
                                    if is_measured {
                                        tally.failures.timeout += 1;
                                    }
                                }
                                Send::Delays(up, down) => {
                                    req.flags |= EGRESS;
                                    req.back = to_ns(down);
                                    up_ns = to_ns(up);
                                }
                            }
                        }
                        if ok {
                            req.entered = now + up_ns;
                            if up_ns == 0 {
                                start_lookup(l, req, now, &mut ev, &st, &mut tally);
                            } else {
                                let slot = ev.park(req);
                                ev.push(req.entered, Kind::LookupStart { slot });
                            }
                        }
                    }
                }
            }
            pending = next_send(simulated, &mut arrivals_rng, &tally, &mut stopped_early);
            if pending.is_none() {
                // the last send: autoscalers may launch more while it drains
                for (launched, p) in launched_by_last_send.iter_mut().zip(&pools) {
                    *launched = p.active_level;
                    launched.advance(now);
                }
            }
            continue;
        }
        let Some(event) = ev.take_top() else { break };
        let now = event.time;
        match event.kind {
            Kind::Enter { pool, slot } => {
                let req = ev.unpark(slot);
                enter_pool(
                    &mut pools[pool as usize],
                    pool,
                    req,
                    now,
                    &mut ev,
                    &st,
                    &mut tally,
                );
            }
            Kind::Timer { pool, queue, gen } => {
                let p = &mut pools[pool as usize];
                let q = &mut p.queues[queue as usize];
                if q.timer_armed && q.timer_gen == gen {
                    q.timer_armed = false;
                    let target = if p.shared() {
                        idle_replica(p)
                    } else {
                        Some(queue as usize)
                    };
                    if let Some(r) = target {
                        try_dispatch(p, pool, r, now, &mut ev, &st, &mut tally);
                    }
                }
            }
            Kind::Done { pool, replica } => {
                finish_batch(
                    &mut pools[pool as usize],
                    pool,
                    replica as usize,
                    now,
                    &mut ev,
                    &st,
                    &mut tally,
                );
            }
            Kind::Ready { pool, replica } => {
                let p = &mut pools[pool as usize];
                p.replicas[replica as usize].ready = true;
                p.ready_count += 1;
                p.reindex(replica as usize);
                try_dispatch(p, pool, replica as usize, now, &mut ev, &st, &mut tally);
            }
            Kind::Scale { pool } => {
                let p = &mut pools[pool as usize];
                if let Some(a) = p.autoscale {
                    let in_service: usize = p.replicas[..p.active]
                        .iter()
                        .map(|r| r.in_service.len())
                        .sum();
                    let outstanding = p.queued.level as f64 + in_service as f64;
                    if p.active < p.replicas.len()
                        && outstanding > a.target_outstanding_per_replica * p.active as f64
                    {
                        let i = p.active;
                        p.active += 1;
                        p.reindex(i);
                        p.active_level.add(now, 1);
                        p.scale_outs += 1;
                        ev.push(
                            now + to_ns(a.startup_s),
                            Kind::Ready {
                                pool,
                                replica: i as u32,
                            },
                        );
                    }
                    // keep looking while there is traffic to come or in flight
                    if pending.is_some() || tally.system.level > 0 {
                        ev.push(now + to_ns(a.interval_s), Kind::Scale { pool });
                    }
                }
            }
            Kind::LookupStart { slot } => {
                let req = ev.unpark(slot);
                if let Some(l) = &lookup {
                    start_lookup(l, req, now, &mut ev, &st, &mut tally);
                }
            }
            Kind::LookupDone { slot } => {
                let req = ev.unpark(slot);
                tally.leave_stage(now, &req);
                if tally.respond(now, &req) {
                    tally.lookups_served += 1;
                }
            }
        }
        ev.settle();
    }

    let end_ns = tally.last_ns.max(last_send).max(1);
    let stage_end = end_ns;
    tally.system.advance(stage_end);
    let window_s = (to_s(last_send) - rc.warmup_s).max(0.0);
    // Pools' figures are over the arrivals' window, not the drain after it.
    let pool_stats = |i: usize| pools[i].stats(last_send, launched_by_last_send[i]);
    let cloud_stats = cloud.as_ref().map(|c| pool_stats(c.pool as usize));
    let edge_stats = edge_pool.map(|i| pool_stats(i as usize));
    let consumer_lag = cloud.as_ref().filter(|c| c.produce.is_some()).map(|c| {
        let p = &pools[c.pool as usize];
        LagStats {
            mean_messages: p.queued.mean(last_send),
            max_messages: p.queued.max,
            mean_lag_s: mean_or_zero(p.waits.sum_ns, p.waits.count) / NS_PER_S,
        }
    });
    let energy = match (&config.mode, edge_pool) {
        (Mode::Edge(e), Some(i)) | (Mode::EdgeWithFallback { edge: e, .. }, Some(i)) => {
            let p = &pools[i as usize];
            let busy_s: f64 = p.replicas.iter().map(|r| to_s(r.busy_ns)).sum();
            let total_s = to_s(end_ns) * p.replicas.len() as f64;
            let served: u64 = p.replicas.iter().map(|r| r.served).sum();
            let batches: u64 = p.replicas.iter().map(|r| r.batches).sum();
            let busy_j = busy_s * e.busy_power_w;
            Some(EnergyStats {
                busy_energy_j: busy_j,
                idle_energy_j: (total_s - busy_s).max(0.0) * e.idle_power_w,
                energy_per_prediction_j: if served == 0 {
                    0.0
                } else {
                    busy_j / served as f64
                },
                throttled_batch_fraction: if batches == 0 {
                    0.0
                } else {
                    p.throttled_batches as f64 / batches as f64
                },
            })
        }
        _ => None,
    };
    let (wait_sum, wait_n) = pools.iter().fold((0.0, 0u64), |(s, n), p| {
        (s + p.waits.sum_ns, n + p.waits.count)
    });
    let stage_s = to_s(stage_end);
    let outcome = SimOutcome {
        simulated_requests: simulated,
        measured_requests: measured,
        completed: tally.completed,
        failures: tally.failures,
        latency: tally.recorder.summary(),
        mean_queue_wait_s: mean_or_zero(wait_sum, wait_n) / NS_PER_S,
        throughput_per_s: if window_s > 0.0 {
            tally.completed as f64 / window_s
        } else {
            0.0
        },
        simulated_time_s: to_s(end_ns),
        measured_window_s: window_s,
        cloud: cloud_stats,
        edge: edge_stats,
        consumer_lag,
        // From the schedule, not the lookups' times: the window is seconds at
        // one phase of a cycle of hours, so sampled ages would be those of
        // that phase (see `JobSchedule::mean_age_s`).
        staleness: lookup.as_ref().map(|l| StalenessStats {
            served: tally.lookups_served,
            mean_age_s: l.job.mean_age_s(),
            max_age_s: l.job.max_age_s(),
        }),
        energy,
        egress_bytes: tally.egress_bytes,
        paths,
        littles_law: LittlesLaw {
            time_avg_in_system: tally.system.mean(stage_end),
            arrival_rate_per_s: if stage_s > 0.0 {
                tally.entries as f64 / stage_s
            } else {
                0.0
            },
            mean_sojourn_s: mean_or_zero(tally.sojourn_sum_ns, tally.entries) / NS_PER_S,
        },
        early_stop: tally.recorder.early_report(stopped_early),
    };
    let footprint = StateFootprint {
        peak_events: ev.peak_len,
        event_heap_capacity: ev.heap.capacity(),
        queue_capacity_total: pools
            .iter()
            .map(|p| {
                p.queues.iter().map(|q| q.items.capacity()).sum::<usize>()
                    + p.replicas
                        .iter()
                        .map(|r| r.in_service.capacity())
                        .sum::<usize>()
            })
            .sum(),
        histogram_bytes: tally.recorder.footprint_bytes(),
    };
    Ok((outcome, footprint))
}

fn mean_or_zero(sum: f64, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

/// Sends request `id` over `link` at `now`; the seconds conversions only
/// when the link has something random (offline periods need the deadline).
#[inline]
fn send_over(link: &mut LinkSampler, now: u64, timeout_ns: u64, id: u32) -> Send {
    if let Some((up, down)) = link.fixed() {
        return Send::Delays(up, down);
    }
    let deadline_s = to_s(now.saturating_add(timeout_ns).min(MAX_NS));
    link.send(to_s(now), deadline_s, u64::from(id))
}

fn start_lookup(l: &Lookup, req: Req, now: u64, ev: &mut Events, st: &Streams, tally: &mut Tally) {
    tally.system.add(now, 1);
    tally.entries += 1;
    let rng = &mut st.request(Source::Lookup, u64::from(req.id));
    let done = now + to_ns(l.latency.sample(rng));
    let slot = ev.park(req);
    ev.push(done, Kind::LookupDone { slot });
}

#[cfg(test)]
mod tests {
    use super::super::config::{
        ArrivalProcess, Batching, ColdStart, LatencyFit, NetworkLink, Payload, ProfilePoint,
        RunControl, ServiceTime,
    };
    use super::*;

    /// A cloud pool of `replicas` least-outstanding replicas behind a jittery
    /// link, with a queue short enough and a timeout tight enough that some
    /// requests are turned away or expire.
    fn wide(replicas: u32, arrivals: ArrivalProcess, batching: Batching, n: u64) -> SimConfig {
        SimConfig {
            seed: 11 + u64::from(replicas),
            arrivals,
            payload: Payload {
                request_bytes: 1_000,
                response_bytes: 100,
            },
            timeout_s: Some(0.02),
            mode: Mode::Online(OnlinePath {
                link: NetworkLink::simple(
                    LatencyFit {
                        median_s: 0.0002,
                        p99_s: 0.001,
                    },
                    f64::INFINITY,
                ),
                transport: Transport::Http,
                pool: ServingPool {
                    replicas,
                    balancer: Balancer::LeastOutstanding,
                    batching,
                    service: ServiceTime::Profile(vec![
                        ProfilePoint {
                            batch_size: 1,
                            median_s: 0.0003,
                            p99_s: 0.0009,
                        },
                        ProfilePoint {
                            batch_size: 8,
                            median_s: 0.0008,
                            p99_s: 0.002,
                        },
                    ]),
                    queue_capacity: 12,
                    cold_start: None,
                    autoscale: None,
                },
            }),
            run: RunControl {
                duration_s: 1e9,
                max_requests: Some(n),
                warmup_s: 0.0,
                early_stop: None,
            },
        }
    }

    fn pool_of(config: &mut SimConfig) -> &mut ServingPool {
        match &mut config.mode {
            Mode::Online(o) => &mut o.pool,
            _ => unreachable!("wide() builds an online plan"),
        }
    }

    /// Seeded plans over pool widths, arrival shapes and batching, with cold
    /// starts (some or all replicas not ready) and autoscaling (launched
    /// prefix grows, replicas become ready late).
    fn plans() -> Vec<(String, SimConfig)> {
        let mut plans = Vec::new();
        let batchings = [
            Batching::NONE,
            Batching {
                max_batch_size: 8,
                max_queue_delay_s: 0.002,
            },
            Batching {
                max_batch_size: 4,
                max_queue_delay_s: 0.0,
            },
        ];
        for replicas in [1u32, 2, 7, 17, 64, 4_096] {
            let n = if replicas >= 1_000 { 40_000 } else { 6_000 };
            // about 90% busy at batch 1 on average; bursts overload it
            let rate = 3_000.0 * f64::from(replicas);
            let shapes = [
                ("poisson", ArrivalProcess::Poisson { rate_per_s: rate }),
                (
                    "bursty",
                    ArrivalProcess::BurstyOnOff {
                        on_rate_per_s: 2.5 * rate,
                        off_rate_per_s: 0.2 * rate,
                        mean_on_s: 0.004,
                        mean_off_s: 0.006,
                    },
                ),
            ];
            for (shape, arrivals) in shapes {
                for (b, batching) in batchings.iter().enumerate() {
                    let name = format!("{replicas}/{shape}/batching{b}");
                    plans.push((name, wide(replicas, arrivals.clone(), *batching, n)));
                }
            }
            if replicas > 1 {
                for cold in [replicas / 2, replicas] {
                    let mut c = wide(
                        replicas,
                        ArrivalProcess::Poisson { rate_per_s: rate },
                        batchings[1],
                        n,
                    );
                    pool_of(&mut c).cold_start = Some(ColdStart {
                        cold_replicas: cold,
                        scale_out_at_s: 0.0005,
                        startup_s: 0.001,
                        first_batch_extra_s: 0.002,
                    });
                    plans.push((format!("{replicas}/cold{cold}"), c));
                }
            }
            let mut a = wide(
                replicas,
                ArrivalProcess::Poisson {
                    rate_per_s: 3.0 * rate,
                },
                batchings[1],
                n,
            );
            pool_of(&mut a).autoscale = Some(Autoscale {
                max_replicas: (replicas * 4).min(4_096),
                interval_s: 0.0002,
                target_outstanding_per_replica: 2.0,
                startup_s: 0.0007,
                first_batch_extra_s: 0.001,
            });
            plans.push((format!("{replicas}/autoscale"), a));
        }
        plans
    }

    /// The same plans on one shared queue: idle replicas found by index.
    fn shared_plans() -> Vec<(String, SimConfig)> {
        plans()
            .into_iter()
            .filter(|(name, _)| !name.starts_with("1/"))
            .map(|(name, mut c)| {
                pool_of(&mut c).balancer = Balancer::SharedQueue;
                (format!("shared/{name}"), c)
            })
            .collect()
    }

    /// `pick` and `idle_replica` assert (under `cfg(test)`) that their
    /// indexes give what the O(replicas) scans give, on every request: a
    /// replica whose index entry went stale is caught at its next pick.
    #[test]
    fn balancer_indexes_pick_what_a_scan_picks() {
        for (name, config) in plans().into_iter().chain(shared_plans()) {
            let outcome = simulate(&config).unwrap_or_else(|e| panic!("{name}: {e}"));
            let cloud = outcome.cloud.as_ref().unwrap();
            assert!(outcome.completed > 0, "{name}: nothing completed");
            // the plans are wide enough that the balancer spreads the load
            let used = cloud.replicas.iter().filter(|r| r.batches > 0).count();
            assert!(
                used > 1 || name.starts_with("1/"),
                "{name}: one replica used"
            );
        }
    }
}
