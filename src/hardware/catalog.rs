//! Built-in catalog of common cloud instance types and edge devices.
//! Scenarios reference entries by name and may override any field.
//!
//! Figures are published ones where they exist (vCPUs, memory, on-demand
//! price, clock, SIMD width) and derived from them where they do not:
//! peak f32 = cores x FMA pipes x lanes x 2 x all-core clock; int8 peak =
//! the dot-product instruction rate (x86 AVX-512 VNNI `vpdpbusd`, Arm
//! `SDOT`), 0 where the core has none (int8 then runs at f32 speed).
//! Memory bandwidth is a sustained single-tenant estimate (roughly the
//! STREAM triad a VM of that size gets), not the DRAM peak. Cache is the L2
//! of the model's cores plus their share of the shared L3, from the vendors'
//! published sizes (binary units; an estimate where the vendor gives none).
//! x86 cloud vCPUs are hyperthreads, two to a physical core. Where the
//! cores differ (big and little cores, a single-core boost clock) the entry
//! gives its fastest core's rate over the average core's (see
//! [`TargetSpec::fastest_core_speedup`]); cloud entries give none: their
//! providers quote the all-core turbo, and on a shared host the other
//! tenants' load decides whether one core boosts higher. Prices are
//! on-demand Linux list prices (US East / us-central1) as of 2024-2025.
//! Edge devices cost nothing per hour: the user owns them.

use workbench_kernels::Precision;

use super::target::{TargetKind, TargetSpec, DEFAULT_PARALLEL_OVERHEAD_US};

const ALL_PRECISIONS: [Precision; 4] = [
    Precision::F32,
    Precision::F16,
    Precision::Bf16,
    Precision::Int8,
];

#[allow(clippy::too_many_arguments)]
fn cloud(
    name: &str,
    cores: u32,
    threads_per_core: u32,
    memory_gib: u64,
    peak_gflops_f32: f64,
    peak_gops_int8: f64,
    mem_bandwidth_gbs: f64,
    cache_bytes: u64,
    usd_per_hour: f64,
    source: &str,
) -> TargetSpec {
    TargetSpec {
        name: name.to_string(),
        kind: TargetKind::Cloud,
        cores,
        threads_per_core,
        memory_bytes: memory_gib << 30,
        peak_gflops_f32,
        peak_gops_int8,
        mem_bandwidth_gbs,
        cache_bytes,
        precisions: ALL_PRECISIONS.to_vec(),
        usd_per_hour,
        // Launching an instance, pulling the image and loading the model:
        // ~30-60 s for EC2/GCE autoscaling; 45 s is the middle.
        cold_start_ms: 45_000.0,
        // Share of the socket's power (TDP / vCPUs), used only for energy reports.
        power_watts: 4.0 * f64::from(cores),
        idle_power_watts: 0.0,
        parallel_overhead_us: DEFAULT_PARALLEL_OVERHEAD_US,
        fastest_core_speedup: None,
        source: source.to_string(),
    }
}

#[allow(clippy::too_many_arguments)]
fn edge(
    name: &str,
    cores: u32,
    memory_bytes: u64,
    peak_gflops_f32: f64,
    peak_gops_int8: f64,
    mem_bandwidth_gbs: f64,
    cache_bytes: u64,
    precisions: &[Precision],
    cold_start_ms: f64,
    power_watts: f64,
    source: &str,
) -> TargetSpec {
    TargetSpec {
        name: name.to_string(),
        kind: TargetKind::Edge,
        cores,
        threads_per_core: 1,
        memory_bytes,
        peak_gflops_f32,
        peak_gops_int8,
        mem_bandwidth_gbs,
        cache_bytes,
        precisions: precisions.to_vec(),
        usd_per_hour: 0.0,
        cold_start_ms,
        power_watts,
        idle_power_watts: 0.0,
        parallel_overhead_us: DEFAULT_PARALLEL_OVERHEAD_US,
        fastest_core_speedup: None,
        source: source.to_string(),
    }
}

const GB: u64 = 1_000_000_000;
const MB: u64 = 1_000_000;
/// Cache sizes are published in binary units.
const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

/// Every catalog entry, cloud first, in a fixed order.
pub fn entries() -> Vec<TargetSpec> {
    use Precision::*;
    vec![
        // AWS c7i: Xeon Platinum 8488C (Sapphire Rapids), 3.2 GHz all-core turbo,
        // 2 AVX-512 FMA units: 64 f32 FLOP/cycle per physical core (2 vCPUs).
        // VNNI: 256 int8 ops/cycle per core (AMX ignored: not used by our kernels).
        // Cache: 2 MB L2 + 1.875 MB of L3 (105 MB over 56 cores) per physical core.
        // Prices: aws.amazon.com/ec2/pricing/on-demand, us-east-1.
        cloud(
            "aws-c7i.large",
            2,
            2,
            4,
            204.8,
            819.2,
            10.0,
            3_968 * KIB,
            0.08925,
            "AWS c7i.large: 2 vCPU, 4 GiB, $0.08925/h us-east-1; 1 SPR core x 64 FLOP/cycle x 3.2 GHz",
        ),
        cloud(
            "aws-c7i.xlarge",
            4,
            2,
            8,
            409.6,
            1638.4,
            20.0,
            7_936 * KIB,
            0.1785,
            "AWS c7i.xlarge: 4 vCPU, 8 GiB, $0.1785/h us-east-1; 2 SPR cores x 64 FLOP/cycle x 3.2 GHz",
        ),
        cloud(
            "aws-c7i.2xlarge",
            8,
            2,
            16,
            819.2,
            3276.8,
            40.0,
            15_872 * KIB,
            0.357,
            "AWS c7i.2xlarge: 8 vCPU, 16 GiB, $0.357/h us-east-1; 4 SPR cores x 64 FLOP/cycle x 3.2 GHz",
        ),
        cloud(
            "aws-c7i.4xlarge",
            16,
            2,
            32,
            1638.4,
            6553.6,
            80.0,
            31 * MIB,
            0.714,
            "AWS c7i.4xlarge: 16 vCPU, 32 GiB, $0.714/h us-east-1; 8 SPR cores x 64 FLOP/cycle x 3.2 GHz",
        ),
        // AWS c7g: Graviton3 (Neoverse V1), 2.6 GHz, one core per vCPU,
        // 2 x 256-bit SVE FMA pipes = 32 f32 FLOP/cycle; SDOT 128 int8 ops/cycle; bf16 supported.
        // Cache: 1 MB L2 + 0.5 MB of L3 (32 MB over 64 cores) per core.
        cloud(
            "aws-c7g.xlarge",
            4,
            1,
            8,
            332.8,
            1331.2,
            25.0,
            6 * MIB,
            0.145,
            "AWS c7g.xlarge: 4 vCPU (Graviton3), 8 GiB, $0.145/h us-east-1; 4 cores x 32 FLOP/cycle x 2.6 GHz",
        ),
        // AWS m7i: same Sapphire Rapids cores as c7i, twice the memory per vCPU.
        cloud(
            "aws-m7i.xlarge",
            4,
            2,
            16,
            409.6,
            1638.4,
            20.0,
            7_936 * KIB,
            0.2016,
            "AWS m7i.xlarge: 4 vCPU, 16 GiB, $0.2016/h us-east-1; 2 SPR cores x 64 FLOP/cycle x 3.2 GHz",
        ),
        // GCP n2: Ice Lake (2.6 GHz all-core), AVX-512 with 2 FMA units, VNNI.
        // Cache: 1.25 MB L2 + 1.5 MB of L3 per physical core.
        // Prices: cloud.google.com/compute/vm-instance-pricing, us-central1.
        cloud(
            "gcp-n2-standard-4",
            4,
            2,
            16,
            332.8,
            1331.2,
            20.0,
            5_632 * KIB,
            0.194236,
            "GCP n2-standard-4: 4 vCPU, 16 GB, $0.1942/h us-central1; 2 Ice Lake cores x 64 FLOP/cycle x 2.6 GHz",
        ),
        // GCP c3: Sapphire Rapids 8481C, 3.0 GHz all-core turbo; cache as c7i.
        cloud(
            "gcp-c3-standard-8",
            8,
            2,
            32,
            768.0,
            3072.0,
            40.0,
            15_872 * KIB,
            0.41756,
            "GCP c3-standard-8: 8 vCPU, 32 GB, $0.4176/h us-central1; 4 SPR cores x 64 FLOP/cycle x 3.0 GHz",
        ),
        // Azure Dsv5: Xeon Platinum 8370C (Ice Lake), 3.5 GHz all-core turbo; cache as n2.
        // Price: azure.microsoft.com/pricing/details/virtual-machines/linux, East US.
        cloud(
            "azure-d4s-v5",
            4,
            2,
            16,
            448.0,
            1792.0,
            20.0,
            5_632 * KIB,
            0.192,
            "Azure D4s v5: 4 vCPU, 16 GiB, $0.192/h East US; 2 Ice Lake cores x 64 FLOP/cycle x 3.5 GHz",
        ),
        // Flagship phone CPU (Snapdragon 8 Gen 2 class): the model gets the
        // Cortex-X3 (3.2 GHz, 4 x 128-bit FMA = 32 FLOP/cycle) and three
        // Cortex-A715 (2.8 GHz, 16 FLOP/cycle); SDOT/I8MM ~4x f32 for int8;
        // LPDDR5X (68 GB/s peak, ~25 sustained by the CPU); 12 GB RAM of which
        // an app may use ~2 GB; ~5 W sustained before thermal throttling.
        // Cache: 1 MB L2 (X3) + 3 x 512 KB (A715) + 8 MB L3.
        // A thread alone runs on the X3 (the OS schedules the foreground
        // thread on the big core): 3.2 x 32 = 102.4 GFLOP/s against the
        // average 236.8 / 4 = 59.2, 1.73x; int8 alike (the X3 has twice the
        // A715's SIMD pipes, as for f32).
        TargetSpec {
            fastest_core_speedup: Some(3.2 * 32.0 / (236.8 / 4.0)),
            ..edge(
                "phone-flagship",
                4,
                2 * GB,
                236.8,
                947.2,
                25.0,
                10_752 * KIB,
                &[F32, F16, Int8],
                150.0,
                5.0,
                "Snapdragon 8 Gen 2 class: 1 X3 @3.2 GHz x 32 + 3 A715 @2.8 GHz x 16 FLOP/cycle; LPDDR5X",
            )
        },
        // Mid-range phone (Snapdragon 695 class): 2 Cortex-A78 @2.2 GHz
        // (2 x 128-bit FMA = 16 FLOP/cycle); LPDDR4X 17 GB/s peak; 6 GB RAM,
        // ~1 GB for one app; ~3 W. Cache: about 2 MB of L2 and L3 (estimate).
        edge(
            "phone-midrange",
            2,
            GB,
            70.4,
            281.6,
            10.0,
            2 * MIB,
            &[F32, F16, Int8],
            300.0,
            3.0,
            "Snapdragon 695 class: 2 A78 @2.2 GHz x 16 FLOP/cycle; LPDDR4X 17 GB/s peak",
        ),
        // Raspberry Pi 5: BCM2712, 4 Cortex-A76 @2.4 GHz (16 FLOP/cycle, SDOT),
        // LPDDR4X-4267 32-bit (17 GB/s peak, ~10 measured), 8 GB, ~7 W under
        // full CPU load (raspberrypi.com product brief). Cache: 4 x 512 KB L2 + 2 MB L3.
        // Awake and idle it draws its "typical bare-board active current",
        // 800 mA at 5 V (raspberrypi.com documentation, power supply): 4 W
        // counted whenever it is kept awake for the model. Phones, watches and
        // laptops are on anyway and a microcontroller sleeps between inputs:
        // they count only their busy draw (idle 0).
        TargetSpec {
            idle_power_watts: 4.0,
            ..edge(
                "raspberry-pi-5",
                4,
                8 * GB,
                153.6,
                614.4,
                10.0,
                4 * MIB,
                &[F32, F16, Int8],
                200.0,
                7.0,
                "Raspberry Pi 5 product brief: 4x A76 @2.4 GHz, 8 GB LPDDR4X-4267; idle 800 mA at 5 V (raspberrypi.com documentation)",
            )
        },
        // Raspberry Pi 4: BCM2711, 4 Cortex-A72 @1.8 GHz (16 FLOP/cycle peak,
        // no SDOT: int8 not accelerated), LPDDR4-3200 (12.8 GB/s peak, ~4
        // measured), 4 GB, ~6.4 W under load. Cache: 1 MB shared L2. Awake
        // and idle: 600 mA at 5 V, 3 W (raspberrypi.com documentation, typical
        // bare-board active current).
        TargetSpec {
            idle_power_watts: 3.0,
            ..edge(
                "raspberry-pi-4",
                4,
                4 * GB,
                115.2,
                0.0,
                4.0,
                MIB,
                &[F32, Int8],
                300.0,
                6.4,
                "Raspberry Pi 4 Model B datasheet: 4x A72 @1.8 GHz, 4 GB LPDDR4-3200; idle 600 mA at 5 V (raspberrypi.com documentation)",
            )
        },
        // Jetson Orin Nano 8GB, CPU only: 6 Cortex-A78AE @1.5 GHz
        // (16 FLOP/cycle, SDOT), LPDDR5 68 GB/s peak (~30 for the CPU),
        // 15 W power mode (NVIDIA Jetson Orin Nano series datasheet).
        // Cache: 6 x 256 KB L2 + 2 MB L3.
        edge(
            "jetson-orin-nano",
            6,
            8 * GB,
            144.0,
            576.0,
            30.0,
            3_584 * KIB,
            &[F32, F16, Int8],
            200.0,
            15.0,
            "Jetson Orin Nano 8GB datasheet (CPU only): 6x A78AE @1.5 GHz, LPDDR5 68 GB/s",
        ),
        // x86 laptop (Ryzen 7 7840U class): 8 Zen 4 cores @3.3 GHz base,
        // 2 x 256-bit FMA = 32 FLOP/cycle, AVX-512 VNNI (double-pumped) 128
        // int8 ops/cycle, AVX-512 BF16; LPDDR5-6400 (102 GB/s peak, ~50
        // sustained); 16 GB; 28 W default TDP (AMD product page).
        // Cache: 8 x 1 MB L2 + 16 MB L3. One core alone boosts "up to 5.1
        // GHz" (same product page): 5.1 / 3.3 = 1.55x the all-core clock.
        TargetSpec {
            fastest_core_speedup: Some(5.1 / 3.3),
            ..edge(
                "laptop-x86",
                8,
                16 * GB,
                844.8,
                3379.2,
                50.0,
                24 * MIB,
                &[F32, F16, Bf16, Int8],
                100.0,
                28.0,
                "AMD Ryzen 7 7840U product page: 8 Zen 4 cores @3.3 GHz (one up to 5.1), 28 W TDP, LPDDR5-6400",
            )
        },
        // Smartwatch (Snapdragon W5 Gen 1 class): 4 Cortex-A53 @1.7 GHz
        // (64-bit NEON datapath, ~4 FLOP/cycle), no SDOT; LPDDR4 ~4 GB/s
        // sustained; 2 GB RAM, ~256 MB for one app; ~1 W. Cache: 512 KB L2 (estimate).
        edge(
            "smartwatch",
            4,
            256 * MB,
            27.2,
            0.0,
            4.0,
            512 * KIB,
            &[F32, Int8],
            400.0,
            1.0,
            "Snapdragon W5 Gen 1 class: 4x A53 @1.7 GHz x 4 FLOP/cycle, 2 GB LPDDR4",
        ),
        // Microcontroller (STM32H743, Cortex-M7 @480 MHz): single-precision
        // FPU, 1 FMA/cycle = 0.96 GFLOP/s; int8 via SMLAD (2 MAC/cycle) ~1.9
        // G ops/s with CMSIS-NN; 1 MB SRAM, 2 MB flash; 64-bit AXI SRAM at
        // 240 MHz ~1.9 GB/s; ~0.3 W at 480 MHz (ST datasheet DS12110).
        // Cache: 16 KB data cache; the SRAM is its memory.
        edge(
            "mcu-cortex-m7",
            1,
            MB,
            0.96,
            1.92,
            1.9,
            16 * KIB,
            &[F32, Int8],
            5.0,
            0.3,
            "STM32H743 datasheet DS12110: Cortex-M7 @480 MHz, 1 MB SRAM, ~0.3 W",
        ),
    ]
}

/// The entry called `name`, if the catalog has one.
pub fn find(name: &str) -> Option<TargetSpec> {
    entries().into_iter().find(|t| t.name == name)
}

/// Catalog names, for error messages ("accepted: ...") and did-you-mean.
pub fn names() -> Vec<String> {
    entries().into_iter().map(|t| t.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_findable() {
        let names = names();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        for n in &names {
            assert_eq!(find(n).map(|t| t.name), Some(n.clone()));
        }
        assert!(find("aws-c7i.xlarge").is_some());
        assert!(find("raspberry-pi-5").is_some());
        assert!(find("no-such-device").is_none());
    }

    #[test]
    fn entries_are_physically_plausible() {
        for t in entries() {
            assert!(t.cores >= 1, "{}", t.name);
            assert!(t.memory_bytes > 0, "{}", t.name);
            assert!(t.peak_gflops_f32 > 0.0, "{}", t.name);
            assert!(t.mem_bandwidth_gbs > 0.0, "{}", t.name);
            assert!(t.precisions.contains(&Precision::F32), "{}", t.name);
            assert!(!t.source.is_empty(), "{}", t.name);
            // A fastest core between the average one and the whole machine.
            if let Some(speedup) = t.fastest_core_speedup {
                assert!(speedup > 1.0, "{}", t.name);
                assert!(speedup <= f64::from(t.physical_cores()), "{}", t.name);
            }
            match t.kind {
                TargetKind::Cloud => assert!(t.usd_per_hour > 0.0, "{}", t.name),
                TargetKind::Edge => {
                    assert_eq!(t.usd_per_hour, 0.0, "{}", t.name);
                    assert!(t.power_watts > 0.0, "{}", t.name);
                }
            }
        }
        // Larger instances of one family scale linearly in cores, peak and price.
        let (l, xl) = (
            find("aws-c7i.large").map(|t| (t.cores, t.peak_gflops_f32, t.usd_per_hour)),
            find("aws-c7i.xlarge").map(|t| (t.cores, t.peak_gflops_f32, t.usd_per_hour)),
        );
        let (l, xl) = (l.unwrap_or_default(), xl.unwrap_or_default());
        // The flagship phone's thread alone runs on its X3: 102.4 GFLOP/s.
        let phone = find("phone-flagship").unwrap();
        let one_core = phone.peak_gflops_f32 / 4.0 * phone.one_thread_speedup();
        assert!((one_core - 102.4).abs() < 1e-9, "{one_core}");
        assert_eq!(xl.0, 2 * l.0);
        assert!((xl.1 - 2.0 * l.1).abs() < 1e-9);
        assert!((xl.2 - 2.0 * l.2).abs() < 1e-9);
    }
}
