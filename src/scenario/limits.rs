//! Upper bounds on the numbers a scenario may give. Each is far above any
//! real deployment, and low enough that what runs downstream (converting to
//! `Duration`, allocating one simulated replica per count, looping over
//! instance counts, simulating requests) stays finite and small. Documented
//! in `docs/scenarios.md`; the comment on each says why it is safe to refuse
//! anything larger.

/// Seconds in a day.
const DAY_S: f64 = 86_400.0;

/// `search.measurement_budget_s`: a day. A full run caps the budget at a
/// minute anyway; the bound keeps the conversion to a `Duration` finite.
pub const MAX_MEASUREMENT_BUDGET_S: f64 = DAY_S;

/// Requests per second, for `traffic.rate_per_s`, the peak of a bursty or
/// diurnal process and the rate a trace implies. The busiest public services
/// (web search, ad auctions) serve about 10^5 to 10^7 requests per second.
pub const MAX_RATE_PER_S: f64 = 1e8;

/// `traffic.duration_s`, `burst_on_s`, `burst_off_s` and the last timestamp
/// of a trace: 30 days, the longest window the planner ever simulates (the
/// simulator's clock also saturates after about two years).
pub const MAX_DURATION_S: f64 = 30.0 * DAY_S;

/// `inputs.freshness_s`: a year. Predictions refreshed less often than
/// yearly are a static table; the batch job's period is derived from it.
pub const MAX_FRESHNESS_S: f64 = 366.0 * DAY_S;

/// `traffic.period_s`: a year, the longest seasonal cycle.
pub const MAX_PERIOD_S: f64 = 366.0 * DAY_S;

/// Layers of a model variant: transformer `layers`, the length of an MLP's
/// `hidden` list and of a convnet's `blocks`. Real models have tens to a few
/// hundred (ResNet-152, 96-layer GPT-3); compiling and measuring take time
/// that grows faster than the layer count (100,000 hidden layers ran for
/// minutes before measuring anything), and counting walks them one by one.
pub const MAX_LAYERS: usize = 1_000;

/// Widths, channels, spatial sizes, sequence lengths, kernel sizes and
/// strides of a model variant (`input`, `hidden`, `input_hwc`, `d_model`,
/// ...): the largest integer TOML has (2^63 - 1). The memory and FLOP checks
/// refuse a model long before (and say how much it would need, which says
/// more than a bound); this one only names the range for a value TOML itself
/// cannot hold.
pub const MAX_DIM: u64 = i64::MAX as u64;

/// `[[model.variants]]`: each variant is compiled by every backend at every
/// precision, measured, and crossed with every target and batching choice,
/// so run time and the plan's size grow with the count (300 variants ran
/// 5 minutes and wrote a 36 MB plan.json). Real comparisons weigh a handful
/// of models (a distilled, a quantized, a full one).
pub const MAX_VARIANTS: usize = 16;

/// Fewest requests per second for `traffic.rate_per_s` (and a broker
/// partition's `partition_messages_per_s`). The planner stretches a low
/// rate's simulated window to at most 30 days (`plan::evaluate`'s
/// `MAX_EXTENDED_WINDOW_S`), and simulates a stationary process slower than
/// that window can judge at a raised rate (billed at its own): at 10^-6 per
/// second a month holds about 2.6 requests, and below it the monthly count
/// of predictions rounds towards zero and the cost per million to infinity.
pub const MIN_RATE_PER_S: f64 = 1e-6;

/// The lowest bandwidth a link or a broker partition may state (10^-6
/// Mbit/s or MB/s: a bit or a byte a second): below it a payload's transfer
/// time overflows every window the simulator runs, and 5e-324 (accepted as
/// "positive") ended a run with infinite figures.
pub const MIN_BANDWIDTH: f64 = 1e-6;

/// `objectives.latency_percentile`: the planner simulates at most 10^6
/// requests per plan (`plan::evaluate`), less the 5% warm-up and a 10%
/// margin for random arrival counts, about 860,000 measured; a percentile
/// needs 10 of them beyond it (`requests_for_percentile`), so 1 - q/100 must
/// be at least about 1.2 x 10^-5. 99.998 (500,000 measured) is the largest
/// round value inside that.
pub const MAX_LATENCY_PERCENTILE: f64 = 99.998;

/// Fewest arrivals a trace must have inside the simulated window after the
/// warm-up: fewer cannot give a p99 that means anything.
pub const MIN_TRACE_ARRIVALS: usize = 100;

/// Share of the simulated window the planner discards as warm-up
/// (`plan::evaluate`'s run control); for a trace, the share of the arrivals
/// replayed (its first ones are not measured), not of the window.
pub const WARMUP_FRACTION: f64 = 0.05;

/// `inputs.request_bytes` and `response_bytes`: 1 GiB. A payload larger than
/// that is a bulk transfer, not an online inference request.
pub const MAX_PAYLOAD_BYTES: u64 = 1 << 30;

/// `fleet_size`: the largest fleets (all active Android phones) are about
/// 3 x 10^9 devices.
pub const MAX_FLEET_SIZE: u64 = 10_000_000_000;

/// Target `cores`: the largest cloud instances have 1,920 vCPUs
/// (AWS u7inh-32tb.480xlarge).
pub const MAX_CORES: u64 = 4_096;

/// Target `threads_per_core`: SMT8 (IBM POWER) is the most any CPU runs.
pub const MAX_THREADS_PER_CORE: u64 = 8;

/// Target `speed_factor`, relative to this machine: a microcontroller is
/// about 10^-3 of it, a many-core server about 10^2.
pub const MIN_SPEED_FACTOR: f64 = 1e-6;
pub const MAX_SPEED_FACTOR: f64 = 1e4;

/// `search.min_replicas` / `max_replicas`: the planner tries instance counts
/// one by one up to the maximum, and the simulator holds one replica per
/// count (its autoscaler stops at 4,096 too). A single model service with
/// more replicas than that is sharded, not one pool.
pub const MAX_REPLICAS: u64 = 4_096;

/// `search.max_queue_delay_ms`: a minute. Dynamic batching waits
/// microseconds to milliseconds; longer is a batch job.
pub const MAX_QUEUE_DELAY_MS: f64 = 60_000.0;

/// Network and storage latencies (`rtt_median_ms`, `rtt_p99_ms`,
/// `per_hop_ms`, `lookup_ms`): a minute. A geostationary satellite round trip
/// is about 600 ms.
pub const MAX_NETWORK_MS: f64 = 60_000.0;

/// `objectives.latency_ms`: an hour. An SLO longer than that is a batch
/// deadline, which `inputs.freshness_s` expresses.
pub const MAX_LATENCY_SLO_MS: f64 = 3_600_000.0;

/// Target `cold_start_ms`: an hour. Starting a replica or loading a model
/// takes seconds to minutes; the simulator and the batch-job cost add it to
/// every launch.
pub const MAX_COLD_START_MS: f64 = 3_600_000.0;

/// `targets.broker.partitions`: the largest Kafka clusters hold about
/// 2 x 10^5 partitions in all.
pub const MAX_PARTITIONS: u64 = 1_000_000;

/// `targets.broker.hops`: a request crossing more than 100 topics is a
/// pipeline of services, not one.
pub const MAX_HOPS: u64 = 100;

/// Cloud targets' `request_cpu_us` and `message_cpu_us`: a second of a core
/// per request. Compiled servers spend microseconds; a handler that spends
/// more than a second of CPU besides the model is the model.
pub const MAX_HANDLING_CPU_US: f64 = 1e6;

/// `targets.broker.partition_mb_per_s`: 100 GB/s, twice a 400 Gbit/s NIC.
/// One Kafka partition delivers tens of MB/s to its consumer. (Its
/// `partition_messages_per_s` is bounded by [`MAX_RATE_PER_S`]: a cap above
/// the highest rate a scenario may have never binds.)
pub const MAX_PARTITION_MB_PER_S: f64 = 1e5;

/// Characters of a scenario `name`: it names the report directory, and file
/// systems allow 255 bytes per path component; a hundred is more than any
/// name a person types.
pub const MAX_NAME_CHARS: usize = 100;

/// Target `usd_per_hour`: the dearest cloud instances cost a few hundred
/// dollars an hour (AWS u7in-32tb.224xlarge, about $400). Bounded so that a
/// month of the largest fleet stays a printable figure.
pub const MAX_USD_PER_HOUR: f64 = 100_000.0;

/// `targets.storage.usd_per_gb_month`: in-memory stores cost tens of dollars
/// per GB-month. Times the most a store may hold ([`MAX_STORED_BYTES`]) the
/// bill stays finite.
pub const MAX_USD_PER_GB_MONTH: f64 = 10_000.0;

/// `targets.broker.usd_per_month`: $10 M a month, beyond the largest
/// clusters' bills.
pub const MAX_BROKER_USD_PER_MONTH: f64 = 10_000_000.0;

/// `targets.broker.usd_per_gb`: $1000 a GB, far above any transfer price.
pub const MAX_USD_PER_GB: f64 = 1_000.0;

/// `objectives.monthly_budget_usd`: a trillion dollars, above the yearly IT
/// spending of any company.
pub const MAX_MONTHLY_BUDGET_USD: f64 = 1e12;

/// `inputs.distinct_inputs`: 10^15, a billion users times a million items
/// each; precomputing more than that is not a plan.
pub const MAX_DISTINCT_INPUTS: u64 = 1_000_000_000_000_000;

/// What a batch plan stores: `distinct_inputs` x (`response_bytes` + 16 bytes
/// of key and timestamp) at most 10^18 bytes (an exabyte, the largest storage
/// systems there are); the byte count would overflow 64 bits not far above.
pub const MAX_STORED_BYTES: f64 = 1e18;

/// Bytes stored per prediction besides its `response_bytes` (key and
/// timestamp, as `plan::evaluate` counts them).
pub const STORED_BYTES_PER_PREDICTION: u64 = 16;

/// `search.batch_sizes`: each batch size is measured for every variant,
/// backend and precision, and planned with every queue delay on every
/// target, so the plans grow with (batch sizes x queue delays); 200 batch
/// sizes made a `--quick` run take 110 s instead of 12. Twenty holds every
/// power of two from 1 to 65,536 (the largest batch size accepted).
pub const MAX_BATCH_SIZES: usize = 20;

/// Largest `search.batch_sizes` entry: 65,536 samples in one call.
pub const MAX_BATCH_SIZE: u64 = 65_536;

/// `search.max_queue_delay_ms`: each delay is planned with every batch size
/// above 1, so with [`MAX_BATCH_SIZES`] a search tries at most 400 batching
/// choices per (variant, precision, target, mode); real searches try 2 to 5
/// delays.
pub const MAX_QUEUE_DELAYS: usize = 20;

/// `[[targets.cloud]]` tables: every plan is tried on every cloud target
/// (each projected, simulated and costed), so the plans grow with the count;
/// 1,000 of them ran for hours. Real comparisons weigh a few instance types.
pub const MAX_CLOUD_TARGETS: usize = 32;

/// `[[targets.edge]]` tables: as [`MAX_CLOUD_TARGETS`], for device classes
/// (each also simulated as a fleet class, and crossed with every cloud
/// target for hybrid plans).
pub const MAX_EDGE_TARGETS: usize = 32;

/// `[[targets.links]]` tables: each target uses one, so more links than
/// targets are never all used.
pub const MAX_LINKS: usize = MAX_CLOUD_TARGETS + MAX_EDGE_TARGETS;

// Together the list limits bound a search: at most 16 variants x 4
// precisions x 400 batching choices x 64 targets x 4 modes (and the replica
// counts up to MAX_REPLICAS), besides the backends, which are measured, not
// planned; `search.targets` names each target at most once and the choice
// lists (`modes`, `placements`, `backends`, `precisions`) each name at most
// all of their choices.

/// Target `peak_gflops_f32`: from a microcontroller without a floating
/// point unit (a few MFLOP/s, 10^-3 GFLOP/s) to far above the largest server
/// (two 192-core CPUs reach about 5 x 10^4 GFLOP/s). Below the bound a
/// batch's projected time overflows the simulator's clock (10^-300 ended a
/// run with non-finite timings).
pub const MIN_PEAK_GFLOPS: f64 = 1e-3;
pub const MAX_PEAK_GFLOPS: f64 = 1e6;

/// Target `peak_gops_int8` (0: no int8 peak figure): as the f32 peak, with
/// room for int8 dot-product units (4x to 16x f32).
pub const MAX_PEAK_GOPS_INT8: f64 = 1e7;

/// Target `mem_bandwidth_gbs`: from a microcontroller's SRAM (about 10^-2
/// GB/s for the slowest) to HBM (a few TB/s). Below it, transfer times and
/// the utilisation figures run to hundreds of digits.
pub const MIN_MEM_BANDWIDTH_GBS: f64 = 1e-3;
pub const MAX_MEM_BANDWIDTH_GBS: f64 = 1e5;

/// Target `memory_gb`: from 1 KB (the smallest microcontrollers' SRAM) to
/// 100 TB (the largest servers hold 32 TB). Also bounds
/// `constraints.max_device_memory_mb` (x 1,000).
pub const MIN_MEMORY_GB: f64 = 1e-6;
pub const MAX_MEMORY_GB: f64 = 1e5;

/// Target `cache_mb` (0: none): the largest CPU caches hold about 1 GB
/// (AMD EPYC 9684X: 1,152 MB of L3).
pub const MAX_CACHE_MB: f64 = 1e4;

/// Target `power_watts` (0: not stated) and
/// `constraints.max_device_power_watts`: a microcontroller draws
/// milliwatts, an eight-accelerator server about 10 kW.
pub const MAX_POWER_WATTS: f64 = 1e5;

/// Target `parallel_overhead_us` (fork and join of one parallel op): a few
/// µs on real machines; 0.1 s of it would make every parallel op slower
/// than any model's whole call.
pub const MAX_PARALLEL_OVERHEAD_US: f64 = 1e5;

/// `objectives.min_throughput_per_s`, predictions per second: the highest
/// rate a scenario may have ([`MAX_RATE_PER_S`]) times the largest fan-out
/// (a million predictions per request). A floor above it can never be met
/// (and 10^300 printed a 300-digit figure).
pub const MAX_THROUGHPUT_PER_S: f64 = 1e14;
