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
