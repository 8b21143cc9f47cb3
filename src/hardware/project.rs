//! Projecting latencies measured here onto a target machine with a roofline
//! model, checking that a model fits the target, and fitting latency(batch).
//!
//! # Method
//! The ops are the calls of what the measured backend runs
//! ([`executed_program`]), each with its FLOPs and the bytes it moves to and
//! from memory. The naive backend runs the graph op by op. The fused, tiled and
//! autotuned backends run its fused program: a bias or activation in the
//! epilogue of the GEMM or conv before it, an elementwise chain in one pass,
//! Q/K/V as one matmul reading its input once; the tiled engine also runs a
//! depthwise conv, the pointwise conv after it and the global average pool
//! after that as one call, band by band, never storing the depthwise or
//! pointwise output. The quantized backend runs the graph node by node with a
//! ReLU (and a pool) in the kernel before it, its GEMMs reading their weights
//! at the precision and its activations f32 (but the u8 that int8 dense layers
//! hand one another). Counting the unfused graph's
//! intermediates instead charged traffic no kernel makes (`convnet-224` at
//! batch 8: 26 MB of pointwise output written and read back).
//!
//! 1. *Apportion.* The whole-model latency `T` measured here at batch `b` is
//!    shared among the ops in proportion to their roofline-predicted local time
//!    `t_i = c_i + m_i`, with `c_i = flops_i / P_local` (compute) and
//!    `m_i = bytes_i / B_local` (memory). `P_local` is this machine's single-core
//!    peak at the precision (int8 uses the int8 peak, but for an int8
//!    program's f32 steps, [`OpCost::runs_at_f32_peak`], which use the f32
//!    peak; f16/bf16 compute in f32).
//!    An op's bytes are its weights and its activations, each streamed at the
//!    bandwidth `B_local` of the smallest cache level here that holds its
//!    *footprint*, else DRAM: every call reads all of the model's weights, so
//!    an op's weights stay in a cache only when the whole model's weights (and
//!    its activations) fit; its activations, just written by the op before,
//!    when they alone fit (whatever cache the target has: this is where
//!    they came from here). Op bytes come at the widths the backend stores each tensor
//!    at (the quantized backend's weights narrow, its activations mostly f32),
//!    not the precision's width for all of them.
//! 2. *Split.* Op `i`'s share `T_i = T * t_i / sum(t)` splits into a compute part
//!    `T_i * c_i / t_i` and a memory part `T_i * m_i / t_i`. The measured time thus
//!    keeps the kernel's real efficiency; only the ratio between the two
//!    bottlenecks comes from the roofline.
//! 3. *Rescale.* Compute parts scale by `P_local / P_target`, each at the
//!    op's own precision (an int8 program's f32 steps by the f32 peaks, so a
//!    target without int8 acceleration runs them no slower than f32). The memory
//!    part of weights or activations whose footprint fits the target's cache
//!    (`cache_bytes`: its cores' L2 and share of L3) streams at one physical
//!    core's cache bandwidth per physical core: one core's here, scaled by how much faster one target core
//!    computes (f32 peak over physical cores), unless the target's memory
//!    would be faster still. Otherwise it comes from the target's memory, at
//!    `B_local / B_target`, shared by all cores, and, when it came from a
//!    cache here, in no less than its bytes over `B_target` (the ratio would
//!    carry the overlap of compute and cache traffic here onto memory).
//!    Projecting onto this machine's
//!    own roofline returns the measured time (up to rounding).
//! 4. *Spread over cores.* `P_target` is the whole target, so step 3 alone
//!    would split every op perfectly over its cores. An op pays
//!    `parallel_overhead_us` (fork and join) to do so, once per call, or once
//!    per sample where the backend splits each sample's work on its own (the
//!    tiled engine's convolutions): with `c` its compute at the whole peak and
//!    `k` its cache time on one physical core, it takes `c + k/p + forks *
//!    overhead` split over the `p` physical cores (all vCPUs), or `(c*p + k) / s`
//!    on one thread, which gets a whole physical core, the fastest: `s` is
//!    how many times the average core's rate it computes and streams its
//!    cache at (a phone's big core, a laptop core boosting alone:
//!    [`TargetSpec::fastest_core_speedup`], 1 when the cores are alike;
//!    cache bandwidth assumed to go with the compute rate, as in step 3);
//!    whichever is shorter, as a
//!    runtime that splits only ops worth splitting would run it. An op the
//!    backend always runs on one thread
//!    ([`Parallelism::Serial`](workbench_kernels::cost::Parallelism::Serial): every op of
//!    the naive, fused and quantized backends, the tiled engine's row,
//!    elementwise and standalone depthwise kernels) takes `(c*p + k) / s`.
//!    Small ops thus stay on one core, and a run of many small ops gains
//!    little from a large instance. Main-memory parts are not split: the
//!    target's bandwidth figure is what all its cores share.
//!
//! `cargo run --release --example projection_check` compares this with
//! measurement on the one multi-core machine at hand: this one, on all its cores.

use super::roofline::Roofline;
use super::target::TargetSpec;
use serde::{Deserialize, Serialize};
use workbench_kernels::{BackendKind, ExecutedProgram, Graph, OpCost, Precision};

/// Where a figure comes from; shown wherever the figure is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Provenance {
    /// Timed on this machine.
    Measured,
    /// From a latency(batch) model fitted on measurements at these batch sizes.
    Fitted { from_batches: Vec<usize> },
    /// Rescaled from local measurements to `target` by the roofline model.
    Projected { target: String },
}

impl std::fmt::Display for Provenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Provenance::Measured => f.write_str("measured"),
            Provenance::Fitted { from_batches } => write!(f, "fitted on batches {from_batches:?}"),
            Provenance::Projected { target } => write!(f, "projected to {target}"),
        }
    }
}

/// Throughput and bandwidth one side of the projection runs at.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    /// G ops/s at the precision.
    pub compute_giga_per_s: f64,
    /// GFLOP/s of f32 work: an int8 program's f32 steps run at it.
    pub f32_giga_per_s: f64,
    pub bandwidth_gbs: f64,
}

impl Rates {
    pub fn local(roofline: &Roofline, precision: Precision) -> Rates {
        Rates {
            compute_giga_per_s: roofline.compute_peak(precision),
            f32_giga_per_s: roofline.compute_peak(Precision::F32),
            bandwidth_gbs: roofline.dram_gbs,
        }
    }

    /// The target's rates; int8 without int8 acceleration runs at the f32 peak.
    pub fn target(target: &TargetSpec, precision: Precision) -> Rates {
        let compute = match precision {
            Precision::Int8 if target.peak_gops_int8 > 0.0 => target.peak_gops_int8,
            _ => target.peak_gflops_f32,
        };
        Rates {
            compute_giga_per_s: compute,
            f32_giga_per_s: target.peak_gflops_f32,
            bandwidth_gbs: target.mem_bandwidth_gbs,
        }
    }

    /// The rate `op` computes at: its program's, or f32 for an int8
    /// program's f32 step.
    pub fn for_op(&self, op: &OpCost) -> f64 {
        if op.runs_at_f32_peak {
            self.f32_giga_per_s
        } else {
            self.compute_giga_per_s
        }
    }

    /// Whether the rates can time `ops`: the f32 rate counts only when an op
    /// runs at it (an int8-only figure can time an int8 program of GEMMs).
    fn usable_for(&self, ops: &[OpCost]) -> bool {
        let positive = |r: f64| r.is_finite() && r > 0.0;
        self.usable()
            && (positive(self.f32_giga_per_s) || !ops.iter().any(|op| op.runs_at_f32_peak))
    }

    fn usable(&self) -> bool {
        self.compute_giga_per_s.is_finite()
            && self.compute_giga_per_s > 0.0
            && self.bandwidth_gbs.is_finite()
            && self.bandwidth_gbs > 0.0
    }
}

/// One op's share of the measured time, split by bottleneck, and its projection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpProjection {
    pub name: String,
    pub kind: String,
    pub flops: f64,
    pub bytes: f64,
    /// Share of the measured latency (apportioned, see the module docs).
    pub local_ns: f64,
    pub local_compute_ns: f64,
    pub local_memory_ns: f64,
    pub projected_ns: f64,
    /// Cores the op is projected to use on the target: all of them, or 1
    /// when splitting would cost more than it saves (step 4).
    pub cores_used: u32,
    /// Its activations come from the target's cache (step 3); true when it has none.
    pub in_target_cache: bool,
    /// Its weights do: the whole model's weights fit; true when it has none.
    pub weights_in_target_cache: bool,
}

/// A latency projected onto one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectedLatency {
    pub target: String,
    pub precision: Precision,
    pub batch: usize,
    pub measured_ns: f64,
    /// Provenance of `measured_ns` (measured or fitted).
    pub source: Provenance,
    pub latency_ns: f64,
    /// Always `Projected { target }`.
    pub provenance: Provenance,
    /// Fraction of the projected time not spent on the target's main memory
    /// (compute, cache traffic, fork and join).
    pub compute_fraction: f64,
    pub ops: Vec<OpProjection>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum ProjectError {
    #[error("{0}")]
    Infeasible(Infeasible),
    #[error("the graph has no ops with a cost to apportion the measured time over")]
    NoOps,
    #[error("measured latency {0} ns is not a positive number")]
    BadMeasurement(f64),
    #[error("this machine's roofline has no usable compute or bandwidth figure")]
    BadLocalRoofline,
}

/// Why a model cannot run on a target; `Display` reads as a sentence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Infeasible {
    PrecisionUnsupported {
        target: String,
        precision: Precision,
        supported: Vec<Precision>,
    },
    DoesNotFit {
        target: String,
        needed_bytes: u64,
        available_bytes: u64,
    },
    MissingFigures {
        target: String,
    },
    /// No measured batch could be projected onto the target.
    NoProjection {
        target: String,
    },
}

impl std::fmt::Display for Infeasible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Infeasible::PrecisionUnsupported {
                target,
                precision,
                supported,
            } => {
                let names: Vec<&str> = supported.iter().map(|p| p.name()).collect();
                write!(
                    f,
                    "{target} cannot run {precision} (supports {})",
                    names.join(", ")
                )
            }
            Infeasible::DoesNotFit {
                target,
                needed_bytes,
                available_bytes,
            } => write!(
                f,
                "model needs {}, {target} has {}",
                human_bytes(*needed_bytes),
                human_bytes(*available_bytes)
            ),
            Infeasible::MissingFigures { target } => write!(
                f,
                "{target} has no positive peak throughput or memory bandwidth figure"
            ),
            Infeasible::NoProjection { target } => {
                write!(f, "no projection onto {target} (missing figures)")
            }
        }
    }
}

/// `310 MB`, `1.5 GB`: decimal units, as device datasheets use.
pub fn human_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.0} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.0} kB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}

/// Memory a model needs on a device: weights at the precision plus peak activations.
pub fn memory_needed(weight_bytes: u64, peak_activation_bytes: u64) -> u64 {
    weight_bytes.saturating_add(peak_activation_bytes)
}

/// Whether a model with these footprints can run at `precision` on `target`.
pub fn check_feasible(
    weight_bytes: u64,
    peak_activation_bytes: u64,
    precision: Precision,
    target: &TargetSpec,
) -> Result<(), Infeasible> {
    if !target.precisions.contains(&precision) {
        return Err(Infeasible::PrecisionUnsupported {
            target: target.name.clone(),
            precision,
            supported: target.precisions.clone(),
        });
    }
    let needed = memory_needed(weight_bytes, peak_activation_bytes);
    if needed > target.memory_bytes {
        return Err(Infeasible::DoesNotFit {
            target: target.name.clone(),
            needed_bytes: needed,
            available_bytes: target.memory_bytes,
        });
    }
    if !Rates::target(target, precision).usable() {
        return Err(Infeasible::MissingFigures {
            target: target.name.clone(),
        });
    }
    Ok(())
}

/// Share `measured_ns` among `ops` by their roofline-predicted time and split
/// each share into compute and memory parts (steps 1 and 2 of the method).
/// `local` holds this machine's peaks at the precision and in f32 (see
/// [`Rates::for_op`]); `memory_ns[i]` is the roofline's time for op `i`'s
/// bytes at the bandwidths they stream at here.
pub fn apportion(
    ops: &[OpCost],
    measured_ns: f64,
    local: &Rates,
    memory_ns: &[f64],
) -> Result<Vec<OpProjection>, ProjectError> {
    if !(measured_ns.is_finite() && measured_ns > 0.0) {
        return Err(ProjectError::BadMeasurement(measured_ns));
    }
    if !local.usable_for(ops) {
        return Err(ProjectError::BadLocalRoofline);
    }
    // Predicted seconds-ish (units cancel): flops / (G/s) and bytes / (GB/s) are both ns.
    if memory_ns.len() != ops.len() {
        return Err(ProjectError::NoOps);
    }
    let mut predicted = Vec::with_capacity(ops.len());
    for (op, &memory) in ops.iter().zip(memory_ns) {
        if !(memory.is_finite() && memory >= 0.0) {
            return Err(ProjectError::BadLocalRoofline);
        }
        predicted.push((op.flops.max(0.0) / local.for_op(op), memory));
    }
    let total: f64 = predicted.iter().map(|(c, m)| c + m).sum();
    if !(total.is_finite() && total > 0.0) {
        return Err(ProjectError::NoOps);
    }
    Ok(ops
        .iter()
        .zip(predicted)
        .map(|(op, (c, m))| {
            let share = measured_ns * (c + m) / total;
            let (compute, memory) = if c + m > 0.0 {
                (share * c / (c + m), share * m / (c + m))
            } else {
                (0.0, 0.0)
            };
            OpProjection {
                name: op.name.clone(),
                kind: op.kind.clone(),
                flops: op.flops,
                bytes: op.bytes,
                local_ns: share,
                local_compute_ns: compute,
                local_memory_ns: memory,
                projected_ns: share,
                cores_used: 1,
                in_target_cache: false,
                weights_in_target_cache: false,
            }
        })
        .collect())
}

/// Where an op's bytes come from on each side, and so how its memory part
/// scales (step 3). An op's bytes are its weights and its activations. Every
/// call reads all of the model's weights, so an op's weights stay in a cache
/// only when the whole model's weights (and its activations) fit; its
/// activations, just written by the op before, stay when they alone fit.
struct Caches<'a> {
    here: &'a Roofline,
    /// The target's cache; 0: every byte comes from its memory.
    target_bytes: u64,
    /// All of the model's weights.
    model_weight_bytes: f64,
}

/// Bytes an op reads and writes of one kind, what must stay in a cache for
/// them to come from it, and the bandwidth they stream at here.
#[derive(Debug, Clone, Copy)]
struct Traffic {
    bytes: f64,
    footprint: f64,
    local_gbs: f64,
    /// They stream from a cache here, not from memory.
    cached_here: bool,
}

impl Traffic {
    /// The roofline's time for these bytes here.
    fn local_ns(&self) -> f64 {
        self.bytes / self.local_gbs
    }
}

impl Caches<'_> {
    /// The op's weights and activations (counted at the widths the backend
    /// stores them: [`ExecutedProgram`]).
    fn traffic(&self, op: &OpCost) -> [Traffic; 2] {
        let weights = op.weight_bytes.clamp(0.0, op.bytes.max(0.0));
        let activations = (op.bytes - op.weight_bytes).max(0.0);
        let traffic = |bytes: f64, footprint: f64| {
            let level = self.here.cache_for_footprint(footprint.ceil() as u64);
            Traffic {
                bytes,
                footprint,
                local_gbs: level.map_or(self.here.dram_gbs, |_| {
                    self.here.bandwidth_for_footprint(footprint.ceil() as u64)
                }),
                cached_here: level.is_some(),
            }
        };
        [
            traffic(weights, self.model_weight_bytes + activations),
            traffic(activations, activations),
        ]
    }

    fn fits_target(&self, footprint: f64) -> bool {
        self.target_bytes > 0 && footprint <= self.target_bytes as f64
    }

    /// One core's cache bandwidth here for this footprint: the level that
    /// holds it, else the largest cache.
    fn cache_gbs_here(&self, footprint: f64) -> f64 {
        self.here
            .cache_for_footprint(footprint.ceil() as u64)
            .or_else(|| self.here.largest_cache())
            .map_or(self.here.dram_gbs, |level| level.copy_gbs)
    }
}

/// What `backend` runs for `graph` at `precision`: its costs at a batch are the
/// `ops` [`project_latency`] shares a time measured with that backend among.
/// Measured, the graph compiled, so it lowers; were it not to, the unfused
/// graph's costs (more traffic than any fused program's) stand in.
pub fn executed_program(
    graph: &Graph,
    backend: BackendKind,
    precision: Precision,
) -> ExecutedProgram {
    ExecutedProgram::of(graph, backend, precision)
        .unwrap_or_else(|_| ExecutedProgram::unfused(graph))
}

/// Project a latency measured here (`measured_ns` at `batch`, over `ops` = the
/// costs of what ran at that batch, see [`executed_program`]) onto `target`
/// (steps 3 and 4 of the method).
/// Feasibility of memory is checked separately ([`check_feasible`]); this
/// checks the precision and the target's figures.
pub fn project_latency(
    ops: &[OpCost],
    measured_ns: f64,
    source: Provenance,
    batch: usize,
    local_roofline: &Roofline,
    precision: Precision,
    target: &TargetSpec,
) -> Result<ProjectedLatency, ProjectError> {
    if !target.precisions.contains(&precision) {
        return Err(ProjectError::Infeasible(Infeasible::PrecisionUnsupported {
            target: target.name.clone(),
            precision,
            supported: target.precisions.clone(),
        }));
    }
    let local = Rates::local(local_roofline, precision);
    if !local.usable_for(ops) {
        return Err(ProjectError::BadLocalRoofline);
    }
    let remote = Rates::target(target, precision);
    if !remote.usable_for(ops) {
        return Err(ProjectError::Infeasible(Infeasible::MissingFigures {
            target: target.name.clone(),
        }));
    }
    let caches = Caches {
        here: local_roofline,
        target_bytes: target.cache_bytes,
        model_weight_bytes: ops.iter().map(|op| op.weight_bytes.max(0.0)).sum(),
    };
    let spread = CoreSpread::of(target);
    let physical = f64::from(spread.physical_cores);
    // One physical target core's f32 rate against one core's here: its cache
    // bandwidth goes with it (load width and clock go with the FMA rate).
    let core_speed = target.peak_gflops_f32 / physical / local_roofline.peak_gflops_f32;
    let traffic: Vec<[Traffic; 2]> = ops.iter().map(|op| caches.traffic(op)).collect();
    let predicted: Vec<f64> = traffic
        .iter()
        .map(|kinds| kinds.iter().map(Traffic::local_ns).sum())
        .collect();
    let mut parts = apportion(ops, measured_ns, &local, &predicted)?;
    let (mut from_memory, mut total) = (0.0, 0.0);
    for (((part, kinds), &predicted), op) in parts.iter_mut().zip(&traffic).zip(&predicted).zip(ops)
    {
        let (mut cached_one_core, mut memory) = (0.0, 0.0);
        let mut in_cache = [true; 2];
        for (kind, traffic) in kinds.iter().enumerate() {
            if traffic.bytes <= 0.0 || predicted <= 0.0 {
                continue;
            }
            let local_gbs = traffic.local_gbs;
            // This kind's share of the op's measured memory time.
            let local_ns = part.local_memory_ns * traffic.local_ns() / predicted;
            let scaled = local_ns * local_gbs / remote.bandwidth_gbs;
            // Bytes from a cache here and from memory there take at least
            // their size over its bandwidth: scaling a cache's time here by
            // the ratio of the bandwidths carries any overlap of compute
            // and cache traffic here (a GEMM streaming its weights from L3
            // faster than the probe's figure) onto memory, which cannot
            // overlap it away. From memory on both sides, the ratio keeps
            // the kernel's measured efficiency (and a projection onto this
            // machine its measured time).
            let from_target_memory = if traffic.cached_here {
                scaled.max(traffic.bytes / remote.bandwidth_gbs)
            } else {
                scaled
            };
            // In the target's cache the bytes stream at one core's cache speed
            // per physical core, unless its memory would be faster still; else
            // from the target's memory, shared by all its cores.
            let per_core_gbs = caches.cache_gbs_here(traffic.footprint) * core_speed;
            let one_core = if per_core_gbs.is_finite() && per_core_gbs > 0.0 {
                local_ns * local_gbs / per_core_gbs
            } else {
                f64::INFINITY
            };
            if caches.fits_target(traffic.footprint) && one_core / physical <= from_target_memory {
                cached_one_core += one_core;
            } else {
                memory += from_target_memory;
                in_cache[kind] = false;
            }
        }
        let (cores_time, cores_used) = spread.time_ns(
            part.local_compute_ns * local.for_op(op) / remote.for_op(op),
            cached_one_core,
            op.parallelism.forks(batch),
        );
        part.projected_ns = cores_time + memory;
        part.cores_used = cores_used;
        [part.weights_in_target_cache, part.in_target_cache] = in_cache;
        from_memory += memory;
        total += part.projected_ns;
    }
    Ok(ProjectedLatency {
        target: target.name.clone(),
        precision,
        batch,
        measured_ns,
        source,
        latency_ns: total,
        provenance: Provenance::Projected {
            target: target.name.clone(),
        },
        compute_fraction: if total > 0.0 {
            (total - from_memory) / total
        } else {
            0.0
        },
        ops: parts,
    })
}

/// How a target's cores share an op's work (step 4 of the method).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoreSpread {
    /// vCPUs: splitting an op over them reaches the whole target's peak.
    pub cores: u32,
    /// Physical cores: one thread alone gets one of them, and cache bandwidth
    /// grows with them.
    pub physical_cores: u32,
    pub fork_join_ns: f64,
    /// How many times the average physical core's rate the core a thread
    /// alone runs on computes and streams its cache at
    /// ([`TargetSpec::one_thread_speedup`]; 1 when the cores are alike).
    pub one_thread_speedup: f64,
}

impl CoreSpread {
    pub fn of(target: &TargetSpec) -> CoreSpread {
        let overhead = target.parallel_overhead_us * 1e3;
        CoreSpread {
            cores: target.cores.max(1),
            physical_cores: target.physical_cores(),
            // A huge figure means "never split" (infinite), a missing one none.
            fork_join_ns: if overhead.is_nan() {
                0.0
            } else {
                overhead.max(0.0)
            },
            one_thread_speedup: target.one_thread_speedup(),
        }
    }

    /// Time of an op's per-core work, and the cores it uses: compute that
    /// takes `all_cores_ns` at the target's whole peak, plus cache traffic that
    /// takes `one_core_ns` on an average physical core. Split over every core
    /// (plus `forks` forks and joins) or kept on one thread, on the fastest
    /// core, whichever is shorter; an op the backend runs on one thread
    /// (`forks` None) stays on one.
    pub fn time_ns(&self, all_cores_ns: f64, one_core_ns: f64, forks: Option<f64>) -> (f64, u32) {
        let physical = f64::from(self.physical_cores);
        let on_one = (all_cores_ns * physical + one_core_ns) / self.one_thread_speedup;
        let Some(forks) = forks else {
            return (on_one, 1);
        };
        let split = all_cores_ns + one_core_ns / physical + self.fork_join_ns * forks;
        if self.cores > 1 && split < on_one {
            (split, self.cores)
        } else {
            (on_one, 1)
        }
    }
}

/// Time to stream `weight_bytes` once from the smallest memory level of this
/// machine that holds them: the floor under any batch's latency when each call
/// reads every weight (ns, since bytes / (GB/s) = ns).
pub fn weight_streaming_floor_ns(weight_bytes: u64, roofline: &Roofline) -> f64 {
    let bw = roofline.bandwidth_for_footprint(weight_bytes);
    if bw > 0.0 {
        weight_bytes as f64 / bw
    } else {
        0.0
    }
}

/// Roofline-shaped latency(batch) model fitted on measured batch sizes:
///
/// `latency(b) = max(floor, overhead + per_sample * b)`
///
/// `floor` is the memory-bound regime of small batches (every call streams the
/// weights whatever the batch); `overhead + per_sample * b` the regime where
/// the work grows with the batch. Fitting tries every split of the sorted
/// points into a floor-bound prefix (floor = their mean; accepted only when at
/// least two batch sizes are flat within 25% and sit 5% above the line of the
/// rest) and a linear rest
/// (least squares on *relative* error, weights 1/latency², coefficients kept
/// non-negative) and keeps the split with the smallest relative error. A floor
/// hint (e.g. [`weight_streaming_floor_ns`]) raises the floor when the measured
/// points never reached it, as when extrapolating from large batches down to 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyFit {
    pub floor_ns: f64,
    pub overhead_ns: f64,
    pub per_sample_ns: f64,
    pub from_batches: Vec<usize>,
}

/// Weighted (1/y²) least squares `y = a + s * b` with a, s >= 0.
fn linear_fit(pts: &[(f64, f64, f64)]) -> (f64, f64) {
    let sum = |f: &dyn Fn(f64, f64) -> f64| pts.iter().map(|&(b, y, w)| w * f(b, y)).sum::<f64>();
    let sw = sum(&|_, _| 1.0);
    let sb = sum(&|b, _| b);
    let sbb = sum(&|b, _| b * b);
    let sy = sum(&|_, y| y);
    let sby = sum(&|b, y| b * y);
    let det = sw * sbb - sb * sb;
    let distinct = pts.windows(2).any(|w| w[0].0 != w[1].0);
    let through_origin = || (0.0, if sbb > 0.0 { sby / sbb } else { 0.0 });
    let (mut a, mut s) = if distinct && det > 1e-12 * sw * sbb {
        ((sbb * sy - sb * sby) / det, (sw * sby - sb * sy) / det)
    } else {
        through_origin()
    };
    if a < 0.0 {
        (a, s) = through_origin();
    }
    if s < 0.0 {
        (a, s) = (if sw > 0.0 { sy / sw } else { 0.0 }, 0.0);
    }
    (a, s)
}

impl LatencyFit {
    /// Fit on `(batch, latency_ns)` points; `None` without a usable point.
    pub fn fit(points: &[(usize, f64)]) -> Option<LatencyFit> {
        LatencyFit::fit_with_floor(points, None)
    }

    /// As [`LatencyFit::fit`], with a lower bound on the floor.
    pub fn fit_with_floor(
        points: &[(usize, f64)],
        floor_hint_ns: Option<f64>,
    ) -> Option<LatencyFit> {
        let mut pts: Vec<(f64, f64, f64)> = points
            .iter()
            .filter(|(b, y)| *b > 0 && y.is_finite() && *y > 0.0)
            .map(|&(b, y)| (b as f64, y, 1.0 / (y * y)))
            .collect();
        if pts.is_empty() {
            return None;
        }
        pts.sort_by(|x, y| x.0.total_cmp(&y.0));
        let mut from_batches: Vec<usize> = pts.iter().map(|p| p.0 as usize).collect();
        from_batches.dedup();
        let hint = floor_hint_ns
            .filter(|h| h.is_finite() && *h > 0.0)
            .unwrap_or(0.0);
        let mut best: Option<(f64, LatencyFit)> = None;
        for split in 0..pts.len() {
            let prefix = &pts[..split];
            let floor_fit = if prefix.is_empty() {
                0.0
            } else {
                prefix.iter().map(|p| p.1).sum::<f64>() / prefix.len() as f64
            };
            let (overhead, per_sample) = linear_fit(&pts[split..]);
            // A floor needs evidence: at least two flat points (within 25%) that sit
            // clearly (5%) above the line the larger batches follow.
            if let (Some(first), Some(last)) = (prefix.first(), prefix.last()) {
                let (lo, hi) = prefix.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), p| {
                    (lo.min(p.1), hi.max(p.1))
                });
                let flat = prefix.len() >= 2 && first.0 < last.0 && hi <= 1.25 * lo;
                if !flat || floor_fit <= 1.05 * (overhead + per_sample * last.0) {
                    continue;
                }
            }
            let candidate = LatencyFit {
                floor_ns: floor_fit.max(hint),
                overhead_ns: overhead,
                per_sample_ns: per_sample,
                from_batches: from_batches.clone(),
            };
            let err: f64 = pts
                .iter()
                .map(|&(b, y, w)| w * (candidate.predict_ns(b as usize) - y).powi(2))
                .sum();
            // Prefer fewer floor-bound points unless the fit clearly improves.
            if best
                .as_ref()
                .is_none_or(|(e, _)| err < e * (1.0 - 1e-6) - 1e-12)
            {
                best = Some((err, candidate));
            }
        }
        best.map(|(_, fit)| fit)
    }

    pub fn predict_ns(&self, batch: usize) -> f64 {
        self.floor_ns
            .max(self.overhead_ns + self.per_sample_ns * batch as f64)
    }

    pub fn provenance(&self) -> Provenance {
        Provenance::Fitted {
            from_batches: self.from_batches.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::target::TargetKind;
    use workbench_kernels::cost::Parallelism;

    pub(crate) fn roofline(gflops: f64, gops_int8: f64, dram: f64) -> Roofline {
        Roofline {
            memory_bytes: 1 << 30,
            ..Roofline::flat("test", gflops, gops_int8, dram)
        }
    }

    fn target(name: &str, gflops: f64, int8: f64, bw: f64, mem: u64) -> TargetSpec {
        TargetSpec {
            name: name.into(),
            kind: TargetKind::Edge,
            cores: 4,
            threads_per_core: 1,
            memory_bytes: mem,
            peak_gflops_f32: gflops,
            peak_gops_int8: int8,
            mem_bandwidth_gbs: bw,
            cache_bytes: 0,
            precisions: vec![Precision::F32, Precision::Int8],
            usd_per_hour: 0.0,
            cold_start_ms: 0.0,
            power_watts: 5.0,
            idle_power_watts: 0.0,
            parallel_overhead_us: 0.0,
            fastest_core_speedup: None,
            source: "test".into(),
        }
    }

    fn op(name: &str, flops: f64, bytes: f64) -> OpCost {
        OpCost {
            name: name.into(),
            kind: "matmul".into(),
            flops,
            bytes,
            weight_bytes: 0.0,
            parallelism: Parallelism::PerCall,
            runs_at_f32_peak: false,
        }
    }

    /// This machine's rates for `apportion`: `peak` at the precision, `f32`.
    fn rates(peak: f64, f32: f64) -> Rates {
        Rates {
            compute_giga_per_s: peak,
            f32_giga_per_s: f32,
            bandwidth_gbs: 10.0,
        }
    }

    #[test]
    fn an_op_computed_below_the_programs_peak_gets_its_share_of_the_time() {
        // Two ops of equal FLOPs, one (an int8 program's f32 step) at the f32
        // peak, a quarter of the int8 one: it took four fifths of the time.
        let slow = OpCost {
            runs_at_f32_peak: true,
            ..op("softmax", 1e6, 0.0)
        };
        let local = rates(400.0, 100.0);
        let parts = apportion(&[op("gemm", 1e6, 0.0), slow], 500.0, &local, &[0.0, 0.0]).unwrap();
        assert!((parts[0].local_ns - 100.0).abs() < 1e-9, "{parts:?}");
        assert!((parts[1].local_ns - 400.0).abs() < 1e-9, "{parts:?}");
        assert_eq!(parts[1].flops, 1e6, "FLOPs stay the op's own");
    }

    #[test]
    fn an_int8_programs_f32_steps_scale_by_the_f32_peaks() {
        // Here: 400 G int8 ops/s, 100 GFLOP/s. The target has no int8
        // acceleration (int8 at its f32 rate, 50): its int8 GEMM takes 8x as
        // long, its f32 softmax only 2x.
        let here = roofline(100.0, 400.0, 10.0);
        let t = target("no-int8", 50.0, 0.0, 10.0, 1 << 30);
        let ops = [
            op("gemm", 4e6, 0.0),
            OpCost {
                runs_at_f32_peak: true,
                ..op("softmax", 1e6, 0.0)
            },
        ];
        // Apportioned 10 us + 10 us of the 20 us measured.
        let onto = |t: &TargetSpec| {
            project_latency(
                &ops,
                20_000.0,
                Provenance::Measured,
                1,
                &here,
                Precision::Int8,
                t,
            )
            .unwrap()
        };
        let p = onto(&t);
        assert!((p.ops[0].projected_ns - 80_000.0).abs() < 1e-6, "{p:?}");
        assert!((p.ops[1].projected_ns - 20_000.0).abs() < 1e-6, "{p:?}");
        // A target whose int8 peak is 8x its f32 one (here 4x): the GEMM
        // gains on it twice what the softmax does.
        let p = onto(&target("fast-int8", 100.0, 800.0, 10.0, 1 << 30));
        assert!((p.ops[0].projected_ns - 5_000.0).abs() < 1e-6, "{p:?}");
        assert!((p.ops[1].projected_ns - 10_000.0).abs() < 1e-6, "{p:?}");
    }

    #[test]
    fn apportioning_follows_the_roofline_and_conserves_time() {
        // 100 GFLOP/s, 10 GB/s: op a predicts 10 ns compute + 0 memory, op b 0 + 30 ns.
        let ops = [op("a", 1000.0, 0.0), op("b", 0.0, 300.0)];
        let memory: Vec<f64> = ops.iter().map(|op| op.bytes / 10.0).collect();
        let parts = apportion(&ops, 400.0, &rates(100.0, 100.0), &memory).unwrap();
        assert!((parts[0].local_ns - 100.0).abs() < 1e-9);
        assert!((parts[1].local_ns - 300.0).abs() < 1e-9);
        assert!((parts[0].local_compute_ns - 100.0).abs() < 1e-9);
        assert!((parts[1].local_memory_ns - 300.0).abs() < 1e-9);
    }

    #[test]
    fn rescales_compute_and_memory_parts_separately() {
        let ops = [op("a", 1000.0, 0.0), op("b", 0.0, 300.0)];
        let here = roofline(100.0, 0.0, 10.0);
        // Target: 2x the compute, half the bandwidth: 100/2 + 300*2 = 650.
        let t = target("t", 200.0, 0.0, 5.0, 1 << 30);
        let p = project_f32(&here, &ops, 400.0, &t);
        assert!((p.latency_ns - 650.0).abs() < 1e-9, "{p:?}");
        assert!((p.compute_fraction - 50.0 / 650.0).abs() < 1e-12);
        assert_eq!(p.provenance, Provenance::Projected { target: "t".into() });
        // int8 uses the int8 peaks on both sides: 400 G ops here, 100 there -> compute x4.
        let here8 = roofline(100.0, 400.0, 10.0);
        let t8 = target("t8", 200.0, 100.0, 10.0, 1 << 30);
        let ops8 = [op("a", 4000.0, 0.0)];
        let p8 = project_latency(
            &ops8,
            10.0,
            Provenance::Measured,
            1,
            &here8,
            Precision::Int8,
            &t8,
        )
        .unwrap();
        assert!((p8.latency_ns - 40.0).abs() < 1e-9, "{p8:?}");
    }

    /// `cores` cores of 100 GFLOP/s each, the local bandwidth, `overhead_us` per parallel op.
    fn multicore(cores: u32, overhead_us: f64) -> TargetSpec {
        let mut t = target("multi", 100.0 * f64::from(cores), 0.0, 10.0, 1 << 30);
        t.cores = cores;
        t.parallel_overhead_us = overhead_us;
        t
    }

    /// f32 `ops` measured in `measured_ns` here, projected onto `t`.
    fn project_f32(
        here: &Roofline,
        ops: &[OpCost],
        measured_ns: f64,
        t: &TargetSpec,
    ) -> ProjectedLatency {
        project_latency(
            ops,
            measured_ns,
            Provenance::Measured,
            1,
            here,
            Precision::F32,
            t,
        )
        .unwrap()
    }

    /// As [`project_f32`], from one 100 GFLOP/s, 10 GB/s core without caches.
    fn from_one_core(ops: &[OpCost], measured_ns: f64, t: &TargetSpec) -> ProjectedLatency {
        project_f32(&roofline(100.0, 0.0, 10.0), ops, measured_ns, t)
    }

    #[test]
    fn small_ops_stay_on_one_core_and_large_ones_pay_the_fork_and_join() {
        // Here: one 100 GFLOP/s core. `big` takes 10 ms, `tiny` 100 ns, `stream` 1 us of memory.
        let ops = [
            op("big", 1e9, 0.0),
            op("tiny", 1e4, 0.0),
            op("stream", 0.0, 1e4),
        ];
        let project = |t: &TargetSpec| from_one_core(&ops, 10_000_000.0 + 100.0 + 1_000.0, t);
        let p = project(&multicore(8, 5.0));
        let by_name = |n: &str| p.ops.iter().find(|o| o.name == n).unwrap();
        // 10 ms over 8 cores plus 5 us of fork and join.
        assert!(
            (by_name("big").projected_ns - 1_255_000.0).abs() < 1e-3,
            "{p:?}"
        );
        assert_eq!(by_name("big").cores_used, 8);
        // Splitting 100 ns would cost 5 us: it runs on one core, as here.
        assert!((by_name("tiny").projected_ns - 100.0).abs() < 1e-6, "{p:?}");
        assert_eq!(by_name("tiny").cores_used, 1);
        // Memory keeps the target's bandwidth, whatever the cores.
        assert!(
            (by_name("stream").projected_ns - 1_000.0).abs() < 1e-6,
            "{p:?}"
        );
        assert!((p.latency_ns - (1_255_000.0 + 100.0 + 1_000.0)).abs() < 1e-3);
        assert!((p.compute_fraction - 1_255_100.0 / 1_256_100.0).abs() < 1e-12);
        // Without an overhead every op splits perfectly: the whole-peak projection.
        let perfect = project(&multicore(8, 0.0));
        assert!((perfect.latency_ns - (1_250_000.0 + 12.5 + 1_000.0)).abs() < 1e-6);
        // One core of the same speed: nothing to split, the measured time.
        let single = project(&multicore(1, 5.0));
        assert!(
            (single.latency_ns - 10_001_100.0).abs() < 1e-3,
            "{single:?}"
        );
    }

    #[test]
    fn more_cores_never_project_slower_and_gain_less_on_small_ops() {
        // A batch-1 run of many small ops (10 us each here) and one of a few large ones.
        let small: Vec<OpCost> = (0..30).map(|i| op(&format!("s{i}"), 1e6, 0.0)).collect();
        let large: Vec<OpCost> = (0..3).map(|i| op(&format!("l{i}"), 1e8, 0.0)).collect();
        for (ops, measured) in [(&small, 300_000.0), (&large, 3_000_000.0)] {
            let mut last = f64::INFINITY;
            for cores in 1..=64 {
                let p = from_one_core(ops, measured, &multicore(cores, 5.0));
                assert!(p.latency_ns <= last * (1.0 + 1e-12), "{cores} cores: {p:?}");
                // Never better than perfect scaling, never worse than one core.
                assert!(p.latency_ns >= measured / f64::from(cores) * (1.0 - 1e-12));
                assert!(p.latency_ns <= measured * (1.0 + 1e-12));
                last = p.latency_ns;
            }
        }
        let speedup = |ops: &[OpCost], measured: f64| {
            measured / from_one_core(ops, measured, &multicore(16, 5.0)).latency_ns
        };
        // 10 us ops on 16 cores: 0.625 + 5 us each, 1.78x; 1 ms ops: 14.9x.
        assert!((speedup(&small, 300_000.0) - 10.0 / 5.625).abs() < 1e-9);
        assert!((speedup(&large, 3_000_000.0) - 1e6 / 67_500.0).abs() < 1e-9);
    }

    /// One 100 GFLOP/s core with a 32 MB, 100 GB/s L3 in front of 10 GB/s DRAM.
    fn with_l3() -> Roofline {
        let mut here = roofline(100.0, 0.0, 10.0);
        here.bandwidth = vec![crate::hardware::roofline::LevelBandwidth {
            level: "L3".into(),
            working_set_bytes: 8 << 20,
            capacity_bytes: 32_000_000,
            read_gbs: 100.0,
            copy_gbs: 100.0,
            triad_gbs: 100.0,
        }];
        here
    }

    #[test]
    fn bytes_from_the_targets_memory_take_at_least_their_size_over_its_bandwidth() {
        // 8 MB of weights, in this machine's L3 (100 GB/s here): a kernel that
        // ran faster than the roofline's figure still moves 8 MB on a target
        // of 5 GB/s without a cache: 1.6 ms at least, whatever the cache
        // figure the target has (none, or one too small for them).
        let here = with_l3();
        let ops = [OpCost {
            weight_bytes: 8e6,
            ..op("dense", 1e6, 8e6)
        }];
        let floor_ns = 8e6 / 5.0;
        for cache_bytes in [0, 1_000_000] {
            let mut slow = target("slow-memory", 100.0, 0.0, 5.0, 1 << 30);
            slow.cache_bytes = cache_bytes;
            // Measured at half the roofline's 90 us here.
            let p = project_f32(&here, &ops, 45_000.0, &slow);
            assert!(p.latency_ns >= floor_ns, "cache {cache_bytes}: {p:?}");
            assert!(p.latency_ns < floor_ns * 1.1, "cache {cache_bytes}: {p:?}");
        }
    }

    #[test]
    fn bytes_in_the_targets_cache_scale_with_its_cores_and_others_with_its_memory() {
        let here = with_l3();
        // 4 MB and 4 MFLOP: 40 us in L3 + 40 us of compute here, measured 80 us.
        let ops = [op("w", 4e6, 4e6)];
        let project = |cores: u32, cache_bytes: u64| {
            let mut t = multicore(cores, 0.0);
            t.cache_bytes = cache_bytes;
            project_f32(&here, &ops, 80_000.0, &t)
        };
        // The target's cache holds it: 40 + 40 us split over 4 cores.
        let cached = project(4, 8_000_000);
        assert!((cached.latency_ns - 20_000.0).abs() < 1e-6, "{cached:?}");
        assert!(cached.ops[0].in_target_cache);
        assert!((cached.compute_fraction - 1.0).abs() < 1e-12);
        // Too small a cache: 4 MB from 10 GB/s memory (10x L3), not split.
        let uncached = project(4, 1_000_000);
        assert!(
            (uncached.latency_ns - (10_000.0 + 400_000.0)).abs() < 1e-6,
            "{uncached:?}"
        );
        assert!(!uncached.ops[0].in_target_cache);
        assert!((uncached.compute_fraction - 10_000.0 / 410_000.0).abs() < 1e-12);
        // No cache figure: every byte from its memory, as with too small a
        // cache; here they still came from L3.
        let unknown = project(4, 0);
        assert!(
            (unknown.latency_ns - uncached.latency_ns).abs() < 1e-6,
            "{unknown:?}"
        );
        // Cores half as fast as here stream their cache half as fast too.
        let mut slow = multicore(4, 0.0);
        slow.peak_gflops_f32 /= 2.0;
        slow.cache_bytes = 8_000_000;
        let p = project_f32(&here, &ops, 80_000.0, &slow);
        assert!((p.latency_ns - 40_000.0).abs() < 1e-6, "{p:?}");
        // Bytes too big for the cache here but not there: cache speed there.
        let big = [op("big", 4e6, 64e6)];
        let mut t = multicore(1, 0.0);
        t.cache_bytes = 128_000_000;
        let p = project_f32(&here, &big, 6_440_000.0, &t);
        // Here 40 us compute + 6.4 ms from DRAM; there 40 us + 0.64 ms from cache.
        assert!((p.latency_ns - 680_000.0).abs() < 1e-3, "{p:?}");
    }

    /// `ops` measured here in `measured_ns`, projected onto this machine as a
    /// target: the measured time comes back, op by op.
    fn onto_itself(
        here: &Roofline,
        ops: &[OpCost],
        measured_ns: f64,
        precision: Precision,
    ) -> ProjectedLatency {
        let p = project_latency(
            ops,
            measured_ns,
            Provenance::Measured,
            1,
            here,
            precision,
            &here.as_target("here"),
        )
        .unwrap();
        assert!((p.latency_ns - measured_ns).abs() < 1e-6, "{p:?}");
        for o in &p.ops {
            assert!(
                (o.projected_ns - o.local_ns).abs() <= 1e-9 * o.local_ns,
                "{o:?}"
            );
        }
        p
    }

    #[test]
    fn this_machine_with_its_caches_projects_onto_itself() {
        // L1, L2 and L3 of different speeds, ops whose footprints fit each of
        // them and none; f32 and int8.
        let mut here = roofline(100.0, 400.0, 10.0);
        let level =
            |name: &str, capacity: u64, gbs: f64| crate::hardware::roofline::LevelBandwidth {
                level: name.into(),
                working_set_bytes: capacity / 2,
                capacity_bytes: capacity,
                read_gbs: gbs,
                copy_gbs: gbs,
                triad_gbs: gbs,
            };
        here.bandwidth = vec![
            level("L1", 32_000, 300.0),
            level("L2", 1_000_000, 150.0),
            level("L3", 32_000_000, 80.0),
            level("DRAM", 0, 10.0),
        ];
        let ops = [
            op("l1", 1e5, 16e3),
            op("l2", 2e6, 800e3),
            op("l3", 2e6, 16e6),
            op("dram", 1e6, 64e6),
        ];
        for precision in [Precision::F32, Precision::Int8] {
            let p = onto_itself(&here, &ops, 1_000_000.0, precision);
            let cached: Vec<bool> = p.ops.iter().map(|o| o.in_target_cache).collect();
            // The bytes are the ops' own at any precision (counted at the
            // widths the backend stores them): the 64 MB op's stay in DRAM.
            assert_eq!(cached, [true, true, true, false], "{precision:?}");
        }
    }

    /// An op with `weight_bytes` of weights and as many bytes in all.
    fn weighted(name: &str, flops: f64, weight_bytes: f64) -> OpCost {
        OpCost {
            weight_bytes,
            ..op(name, flops, weight_bytes)
        }
    }

    #[test]
    fn ops_are_in_a_cache_only_when_the_whole_models_weights_fit() {
        let here = with_l3();
        // Two 4 MB layers: each fits an 6 MB cache, both do not.
        let ops = [weighted("d0", 4e6, 4e6), weighted("d1", 4e6, 4e6)];
        let project = |cache_bytes: u64| {
            let mut t = multicore(4, 0.0);
            t.cache_bytes = cache_bytes;
            project_f32(&here, &ops, 160_000.0, &t)
        };
        let small = project(6_000_000);
        assert!(
            small.ops.iter().all(|o| !o.weights_in_target_cache),
            "{small:?}"
        );
        let large = project(9_000_000);
        assert!(
            large.ops.iter().all(|o| o.weights_in_target_cache),
            "{large:?}"
        );
        // From memory (10x slower than the L3 here) against the cache split four ways.
        assert!(
            (small.latency_ns - 2.0 * (10_000.0 + 400_000.0)).abs() < 1e-6,
            "{small:?}"
        );
        assert!((large.latency_ns - 40_000.0).abs() < 1e-6, "{large:?}");
    }

    #[test]
    fn activations_stay_in_a_cache_the_models_weights_do_not_fit() {
        let here = with_l3();
        // 8 MB of weights in two layers, and an activation-only op of 1 MB
        // (a GELU between them) whose data the layer before just wrote.
        let ops = [
            weighted("d0", 4e6, 4e6),
            op("gelu", 1e5, 1e6),
            weighted("d1", 4e6, 4e6),
        ];
        let mut t = multicore(4, 0.0);
        t.cache_bytes = 6_000_000;
        let p = project_f32(&here, &ops, 171_000.0, &t);
        let gelu = &p.ops[1];
        assert!(
            gelu.in_target_cache && gelu.weights_in_target_cache,
            "{gelu:?}"
        );
        assert!(!p.ops[0].weights_in_target_cache, "{p:?}");
        // Its 1 ns of compute and 10 us of L3 traffic split over 4 cores.
        assert!(
            (gelu.projected_ns - (1_000.0 + 10_000.0) / 4.0).abs() < 1e-6,
            "{gelu:?}"
        );
    }

    /// [`multicore`] with its fastest core `speedup` times the average one.
    fn big_little(cores: u32, overhead_us: f64, speedup: Option<f64>) -> TargetSpec {
        TargetSpec {
            fastest_core_speedup: speedup,
            ..multicore(cores, overhead_us)
        }
    }

    #[test]
    fn a_thread_alone_runs_on_the_fastest_core_and_a_split_on_all() {
        // Here: one 100 GFLOP/s core. There: 4 cores of 100 GFLOP/s on
        // average, the fastest 160, 5 us to fork and join.
        let with = |flops: f64, parallelism| OpCost {
            parallelism,
            ..op("op", flops, 0.0)
        };
        let project = |o: OpCost, measured_ns: f64, speedup: Option<f64>| {
            let p = from_one_core(&[o], measured_ns, &big_little(4, 5.0, speedup));
            (p.latency_ns, p.ops[0].cores_used)
        };
        let close = |(got, _): (f64, u32), want: f64| (got - want).abs() <= 1e-9 * want;
        for (speedup, one_core) in [(None, 1.0), (Some(1.0), 1.0), (Some(1.6), 1.6)] {
            // 1 us here: not worth 5 us of fork and join, one core.
            let tiny = project(with(1e5, Parallelism::PerCall), 1_000.0, speedup);
            assert!(close(tiny, 1_000.0 / one_core), "{speedup:?}: {tiny:?}");
            assert_eq!(tiny.1, 1);
            // A step the backend runs on one thread, however large.
            let serial = project(with(1e9, Parallelism::Serial), 1e7, speedup);
            assert!(close(serial, 1e7 / one_core), "{speedup:?}: {serial:?}");
            // 10 ms split over all cores keeps the whole peak: 2.5 ms + 5 us.
            let large = project(with(1e9, Parallelism::PerCall), 1e7, speedup);
            assert!(close(large, 2_505_000.0), "{speedup:?}: {large:?}");
            assert_eq!(large.1, 4);
        }
        // 10 us here: split, 2.5 + 5 us, on alike cores; 6.25 us on the big one.
        let mid = |speedup| project(with(1e6, Parallelism::PerCall), 10_000.0, speedup);
        assert_eq!(mid(None).1, 4);
        assert!(close(mid(None), 7_500.0), "{:?}", mid(None));
        assert_eq!(mid(Some(1.6)).1, 1);
        assert!(close(mid(Some(1.6)), 6_250.0), "{:?}", mid(Some(1.6)));
        // One core never outruns the whole machine; nonsense means alike cores.
        for (speedup, one_core) in [(Some(100.0), 4.0), (Some(0.5), 1.0), (Some(f64::NAN), 1.0)] {
            let serial = project(with(1e9, Parallelism::Serial), 1e7, speedup);
            assert!(close(serial, 1e7 / one_core), "{speedup:?}: {serial:?}");
        }
    }

    #[test]
    fn the_fastest_core_streams_its_cache_and_runs_int8_faster_too() {
        // 100 ns of compute and 100 ns of L3 traffic here (10 kB), in the
        // target's cache: 200 ns on an average core, 125 on a 1.6x one.
        let here = with_l3();
        let ops = [op("small", 1e4, 1e4)];
        for (speedup, want) in [(None, 200.0), (Some(1.6), 125.0)] {
            let mut t = big_little(4, 5.0, speedup);
            t.cache_bytes = 8_000_000;
            let p = project_f32(&here, &ops, 200.0, &t);
            assert!(p.ops[0].in_target_cache, "{p:?}");
            assert_eq!(p.ops[0].cores_used, 1);
            assert!((p.latency_ns - want).abs() < 1e-9, "{speedup:?}: {p:?}");
        }
        // int8: 400 G ops/s per average core as here, 10 us; 6.25 on the big core.
        let gemm = [OpCost {
            parallelism: Parallelism::Serial,
            ..op("gemm", 4e6, 0.0)
        }];
        for (speedup, want) in [(None, 10_000.0), (Some(1.6), 6_250.0)] {
            let t = TargetSpec {
                fastest_core_speedup: speedup,
                ..int8_multicore(4)
            };
            let p = project_at(&gemm, 10_000.0, 1, Precision::Int8, &t);
            assert!((p.latency_ns - want).abs() < 1e-6, "{speedup:?}: {p:?}");
        }
    }

    #[test]
    fn the_flagship_phone_runs_a_thread_alone_on_its_big_core() {
        // 1 MFLOP on one thread: at the X3's 102.4 GFLOP/s, not the average
        // core's 236.8 / 4 = 59.2 (1.73x slower).
        let phone = crate::hardware::catalog::find("phone-flagship").unwrap();
        let serial = [OpCost {
            parallelism: Parallelism::Serial,
            ..op("softmax", 1e6, 0.0)
        }];
        let p = from_one_core(&serial, 10_000.0, &phone);
        assert!((p.latency_ns - 1e6 / 102.4).abs() < 1e-6, "{p:?}");
        let alike = TargetSpec {
            fastest_core_speedup: None,
            ..phone
        };
        let p = from_one_core(&serial, 10_000.0, &alike);
        assert!((p.latency_ns - 1e6 / 59.2).abs() < 1e-6, "{p:?}");
    }

    #[test]
    fn one_thread_gets_a_whole_physical_core() {
        // 4 vCPUs on 2 physical cores of 100 GFLOP/s each, 20 us to fork and
        // join: a 10 us op stays on one thread, which gets a whole core.
        let hyperthreaded = |threads_per_core: u32| {
            let mut t = multicore(2, 20.0);
            t.cores = 4;
            t.threads_per_core = threads_per_core;
            t
        };
        let small = [op("small", 1e6, 0.0)];
        let p = from_one_core(&small, 10_000.0, &hyperthreaded(2));
        assert!((p.latency_ns - 10_000.0).abs() < 1e-6, "{p:?}");
        assert_eq!(p.ops[0].cores_used, 1);
        // An overhead too large to write in ns never splits, and stays finite.
        let mut never = hyperthreaded(2);
        never.parallel_overhead_us = 1e308;
        let p = from_one_core(&[op("large", 1e9, 0.0)], 10_000_000.0, &never);
        assert!((p.latency_ns - 10_000_000.0).abs() < 1e-3, "{p:?}");
        assert_eq!(p.ops[0].cores_used, 1);
        // Counted as 4 cores of 50 GFLOP/s it would take 20 us.
        let p = from_one_core(&small, 10_000.0, &hyperthreaded(1));
        assert!((p.latency_ns - 20_000.0).abs() < 1e-6, "{p:?}");
        // A large op splits over all 4 vCPUs and reaches the whole 200 GFLOP/s.
        let p = from_one_core(&[op("large", 1e9, 0.0)], 10_000_000.0, &hyperthreaded(2));
        assert!((p.latency_ns - 5_020_000.0).abs() < 1e-3, "{p:?}");
        assert_eq!(p.ops[0].cores_used, 4);
    }

    #[test]
    fn odd_targets_stay_finite_and_never_read_a_cache_slower_than_memory() {
        let here = with_l3();
        let ops = [op("w", 4e6, 4e6)];
        // An int8-only figure (no f32 peak) with a cache: no division by zero.
        let mut int8_only = multicore(4, 0.0);
        int8_only.peak_gflops_f32 = 0.0;
        int8_only.peak_gops_int8 = 1600.0;
        int8_only.cache_bytes = 8_000_000;
        let p = project_latency(
            &ops,
            80_000.0,
            Provenance::Measured,
            1,
            &here,
            Precision::Int8,
            &int8_only,
        )
        .unwrap();
        assert!(p.latency_ns.is_finite() && p.latency_ns > 0.0, "{p:?}");
        assert!(!p.ops[0].in_target_cache);
        // Very slow cores in front of fast memory: the memory is used.
        let mut slow = multicore(1, 0.0);
        slow.peak_gflops_f32 = 1.0;
        slow.mem_bandwidth_gbs = 1000.0;
        slow.cache_bytes = 8_000_000;
        let p = project_f32(&here, &ops, 80_000.0, &slow);
        assert!(!p.ops[0].in_target_cache, "{p:?}");
    }

    #[test]
    fn fused_programs_are_charged_only_the_traffic_they_make() {
        let graph = workbench_kernels::models::convnet_224(1).unwrap();
        let (batch, measured_ns) = (8, 12e6);
        let unfused = graph.op_costs(batch);
        assert_eq!(
            executed_program(&graph, BackendKind::Naive, Precision::F32).costs(batch),
            unfused
        );
        let tiled = executed_program(&graph, BackendKind::Tiled, Precision::F32).costs(batch);
        let here = with_l3();
        // This machine onto itself: the measured time back, whatever the ops.
        let p = onto_itself(&here, &tiled, measured_ns, Precision::F32);
        let banded = "block1.dw+block1.dw_act+block1.pw+block1.pw_act+pool";
        assert!(p.ops.iter().any(|o| o.name == banded), "{p:?}");
        // Onto four cores: without the 51 MB of pointwise output written and
        // read back, more of the measured time is compute, which the cores share.
        let t = multicore(4, 0.0);
        let (fused, graphs) = (
            project_f32(&here, &tiled, measured_ns, &t),
            project_f32(&here, &unfused, measured_ns, &t),
        );
        assert!(
            fused.latency_ns < 0.8 * graphs.latency_ns,
            "{} vs {}",
            fused.latency_ns,
            graphs.latency_ns
        );
        assert!(fused.compute_fraction > graphs.compute_fraction);
        // The quantized backend's own program, at its precision.
        let int8 = executed_program(&graph, BackendKind::Quantized, Precision::Int8).costs(batch);
        assert!(
            int8.iter()
                .any(|o| o.name == "block1.pw+block1.pw_act+pool"),
            "{int8:?}"
        );
        onto_itself(&here, &int8, measured_ns, Precision::Int8);
    }

    #[test]
    fn bytes_are_charged_as_counted_at_every_precision() {
        // 40 MFLOP and 4 MB of activations. Here int8 computes at 400 G ops/s
        // (100 us) and the bytes stream at 10 GB/s (400 us): the 4 MB are what
        // the backend moves (f32 activations), not a quarter of them.
        let here = roofline(100.0, 400.0, 10.0);
        let ops = [op("act", 4e7, 4e6)];
        let t = target("t", 100.0, 400.0, 5.0, 1 << 30);
        let p = project_latency(
            &ops,
            500_000.0,
            Provenance::Measured,
            1,
            &here,
            Precision::Int8,
            &t,
        )
        .unwrap();
        let o = &p.ops[0];
        assert!((o.local_memory_ns - 400_000.0).abs() < 1e-6, "{o:?}");
        // Half the bandwidth there: 800 us of memory; the compute at the same peak.
        assert!(
            (p.latency_ns - (800_000.0 + 100_000.0)).abs() < 1e-6,
            "{p:?}"
        );
    }

    /// `cores` cores of 100 GFLOP/s and 400 G int8 ops/s each.
    fn int8_multicore(cores: u32) -> TargetSpec {
        let mut t = multicore(cores, 5.0);
        t.peak_gops_int8 = 400.0 * f64::from(cores);
        t
    }

    fn project_at(
        ops: &[OpCost],
        measured_ns: f64,
        batch: usize,
        precision: Precision,
        t: &TargetSpec,
    ) -> ProjectedLatency {
        let here = roofline(100.0, 400.0, 10.0);
        project_latency(
            ops,
            measured_ns,
            Provenance::Measured,
            batch,
            &here,
            precision,
            t,
        )
        .unwrap()
    }

    #[test]
    fn ops_the_backend_runs_on_one_thread_never_split() {
        // The quantized transformer splits its GEMMs over the cores but runs
        // softmax, layer norm and the elementwise steps on one thread: 64
        // cores project each of those exactly as one core does.
        let graph = workbench_kernels::models::transformer_block(1).unwrap();
        let batch = 8;
        let int8 = executed_program(&graph, BackendKind::Quantized, Precision::Int8).costs(batch);
        let one = project_at(
            &int8,
            3_000_000.0,
            batch,
            Precision::Int8,
            &int8_multicore(1),
        );
        let many = project_at(
            &int8,
            3_000_000.0,
            batch,
            Precision::Int8,
            &int8_multicore(64),
        );
        let mut serial = 0;
        for ((cost, a), b) in int8.iter().zip(&one.ops).zip(&many.ops) {
            if cost.parallelism != Parallelism::Serial {
                continue;
            }
            serial += 1;
            assert_eq!(b.cores_used, 1, "{b:?}");
            assert!(
                (a.projected_ns - b.projected_ns).abs() <= 1e-9 * a.projected_ns,
                "{a:?} vs {b:?}"
            );
        }
        assert!(serial > 0, "no serial step in {int8:?}");
        assert!(many.ops.iter().any(|o| o.cores_used > 1), "{many:?}");
        // The tiled engine splits the GEMMs of mlp-1024 over the cores.
        let graph = workbench_kernels::models::mlp_1024(1).unwrap();
        let batch = 64;
        let f32_ops = executed_program(&graph, BackendKind::Tiled, Precision::F32).costs(batch);
        let one = project_at(
            &f32_ops,
            2_500_000.0,
            batch,
            Precision::F32,
            &int8_multicore(1),
        );
        let many = project_at(
            &f32_ops,
            2_500_000.0,
            batch,
            Precision::F32,
            &int8_multicore(64),
        );
        assert!(many.latency_ns < 0.5 * one.latency_ns, "{many:?}");
        assert!(many.ops.iter().all(|o| o.cores_used == 64), "{many:?}");
    }

    #[test]
    fn ops_split_per_sample_fork_and_join_once_per_sample() {
        // 10 ms of compute here at batch 8, onto 4 cores with 5 us per fork and join.
        let with = |parallelism| OpCost {
            parallelism,
            ..op("conv", 1e9, 0.0)
        };
        let t = multicore(4, 5.0);
        let time = |parallelism| {
            project_at(&[with(parallelism)], 10_000_000.0, 8, Precision::F32, &t).latency_ns
        };
        assert!((time(Parallelism::PerCall) - 2_505_000.0).abs() < 1e-3);
        assert!((time(Parallelism::PerSample) - 2_540_000.0).abs() < 1e-3);
        assert!((time(Parallelism::Serial) - 10_000_000.0).abs() < 1e-3);
        // convnet-224 at batch 8 on the tiled engine: the stem and the banded
        // depthwise + pointwise + pool pay eight forks each (the classifier,
        // 10 kFLOP, is not worth one).
        let graph = workbench_kernels::models::convnet_224(1).unwrap();
        let ops = executed_program(&graph, BackendKind::Tiled, Precision::F32).costs(8);
        let two = |overhead_us: f64| {
            let mut t = multicore(2, overhead_us);
            t.cache_bytes = 32_000_000;
            let here = with_l3();
            project_latency(
                &ops,
                6.6e6,
                Provenance::Measured,
                8,
                &here,
                Precision::F32,
                &t,
            )
            .unwrap()
        };
        let (free, forked) = (two(0.0), two(5.0));
        let forks: Vec<f64> = free
            .ops
            .iter()
            .zip(&forked.ops)
            .map(|(f, o)| (o.projected_ns - f.projected_ns) / 5_000.0)
            .collect();
        let cores: Vec<u32> = forked.ops.iter().map(|o| o.cores_used).collect();
        assert_eq!(cores, [2, 2, 1], "{forked:?}");
        for got in &forks[..2] {
            assert!((got - 8.0).abs() < 1e-6, "{forks:?}");
        }
    }

    #[test]
    fn identity_projection_returns_the_measured_time() {
        let here = roofline(160.0, 630.0, 20.0);
        let ops = [
            op("dense0", 2.1e6, 4.2e6),
            op("relu", 1024.0, 8192.0),
            op("dense1", 2.1e6, 4.2e6),
        ];
        for precision in [Precision::F32, Precision::Int8] {
            onto_itself(&here, &ops, 123_456.0, precision);
        }
    }

    #[test]
    fn infeasible_targets_say_why() {
        let t = target("pi", 10.0, 0.0, 4.0, 256_000_000);
        let err = check_feasible(300_000_000, 10_000_000, Precision::F32, &t).unwrap_err();
        assert_eq!(err.to_string(), "model needs 310 MB, pi has 256 MB");
        let err = check_feasible(1, 1, Precision::F16, &t).unwrap_err();
        assert_eq!(err.to_string(), "pi cannot run f16 (supports f32, int8)");
        assert!(check_feasible(1, 1, Precision::F32, &t).is_ok());
        let broken = target("x", 0.0, 0.0, 4.0, 1 << 30);
        assert!(matches!(
            check_feasible(1, 1, Precision::F32, &broken),
            Err(Infeasible::MissingFigures { .. })
        ));
        let here = roofline(100.0, 0.0, 10.0);
        let r = project_latency(
            &[op("a", 1.0, 1.0)],
            5.0,
            Provenance::Measured,
            1,
            &here,
            Precision::F16,
            &t,
        );
        assert!(matches!(r, Err(ProjectError::Infeasible(_))));
        assert!(matches!(
            project_latency(&[], 5.0, Provenance::Measured, 1, &here, Precision::F32, &t),
            Err(ProjectError::NoOps)
        ));
        assert!(matches!(
            project_latency(
                &[op("a", 1.0, 1.0)],
                f64::NAN,
                Provenance::Measured,
                1,
                &here,
                Precision::F32,
                &t
            ),
            Err(ProjectError::BadMeasurement(_))
        ));
    }

    #[test]
    fn fit_recovers_a_linear_latency_model_and_extrapolates_both_ways() {
        let truth = |b: usize| 300_000.0 + 40_000.0 * b as f64;
        let small: Vec<(usize, f64)> = [1, 2, 4, 8].iter().map(|&b| (b, truth(b))).collect();
        let fit = LatencyFit::fit(&small).unwrap();
        assert!(
            (fit.predict_ns(64) / truth(64) - 1.0).abs() < 1e-9,
            "{fit:?}"
        );
        let large: Vec<(usize, f64)> = [8, 16, 32, 64].iter().map(|&b| (b, truth(b))).collect();
        let fit = LatencyFit::fit(&large).unwrap();
        assert!((fit.predict_ns(1) / truth(1) - 1.0).abs() < 1e-9, "{fit:?}");
        assert_eq!(fit.from_batches, vec![8, 16, 32, 64]);
    }

    #[test]
    fn fit_follows_a_memory_floor_then_compute_slope() {
        // Weights streamed once per call (100 us) until the compute (41 us per sample) dominates.
        let truth = |b: usize| (100_000.0f64).max(2_000.0 + 41_000.0 * b as f64);
        let pts = |bs: &[usize]| bs.iter().map(|&b| (b, truth(b))).collect::<Vec<_>>();
        let up = LatencyFit::fit(&pts(&[1, 2, 4, 8])).unwrap();
        assert!((up.predict_ns(64) / truth(64) - 1.0).abs() < 1e-6, "{up:?}");
        assert!((up.predict_ns(1) / truth(1) - 1.0).abs() < 1e-6, "{up:?}");
        // From large batches the floor is invisible: the roofline hint supplies it.
        let down = LatencyFit::fit(&pts(&[8, 16, 32, 64])).unwrap();
        assert!(down.predict_ns(1) < 0.5 * truth(1), "{down:?}");
        let down = LatencyFit::fit_with_floor(&pts(&[8, 16, 32, 64]), Some(100_000.0)).unwrap();
        assert!(
            (down.predict_ns(1) / truth(1) - 1.0).abs() < 1e-6,
            "{down:?}"
        );
        assert!(
            (down.predict_ns(64) / truth(64) - 1.0).abs() < 1e-6,
            "{down:?}"
        );
        // A linear model with a fixed part is still recovered exactly (no floor).
        let lin = |b: usize| 300_000.0 + 40_000.0 * b as f64;
        let fit = LatencyFit::fit(&[1, 2, 4, 8].map(|b| (b, lin(b)))).unwrap();
        assert!((fit.predict_ns(64) / lin(64) - 1.0).abs() < 1e-9, "{fit:?}");
        let mut here = roofline(100.0, 0.0, 10.0);
        here.bandwidth = vec![crate::hardware::roofline::LevelBandwidth {
            level: "L3".into(),
            working_set_bytes: 1 << 20,
            capacity_bytes: 4 << 20,
            read_gbs: 50.0,
            copy_gbs: 40.0,
            triad_gbs: 30.0,
        }];
        assert!((weight_streaming_floor_ns(4_000_000, &here) - 100_000.0).abs() < 1e-6);
        assert!(
            (weight_streaming_floor_ns(8 << 20, &here) - (8u64 << 20) as f64 / 10.0).abs() < 1e-6
        );
    }

    #[test]
    fn fit_with_noise_stays_within_25_percent_and_keeps_signs() {
        // +-10% deterministic "noise" on a model with a large fixed part.
        let truth = |b: usize| 500_000.0 + 30_000.0 * b as f64;
        let noise = [1.1, 0.9, 1.05, 0.95];
        let pts: Vec<(usize, f64)> = [1usize, 2, 4, 8]
            .iter()
            .zip(noise)
            .map(|(&b, n)| (b, truth(b) * n))
            .collect();
        let fit = LatencyFit::fit(&pts).unwrap();
        assert!(
            (fit.predict_ns(64) / truth(64) - 1.0).abs() < 0.25,
            "{fit:?}"
        );
        // Latency falling with batch cannot give a negative per-sample time.
        let fit = LatencyFit::fit(&[(1, 100.0), (8, 90.0)]).unwrap();
        assert!(fit.per_sample_ns >= 0.0 && fit.overhead_ns >= 0.0);
        // A single batch size: proportional model through the origin.
        let fit = LatencyFit::fit(&[(4, 400.0)]).unwrap();
        assert_eq!(fit.predict_ns(8), 800.0);
        assert!(LatencyFit::fit(&[(0, 1.0), (3, f64::NAN)]).is_none());
    }
}
