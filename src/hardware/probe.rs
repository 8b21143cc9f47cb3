//! This machine: CPU, cores, memory, OS, SIMD features and caches, and a
//! stable fingerprint that keys every on-disk cache of measurements.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// One cache level as the OS reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheLevel {
    /// 1, 2, 3, ...
    pub level: u8,
    /// `data`, `instruction` or `unified`.
    pub kind: String,
    pub size_bytes: u64,
    /// How many logical CPUs share one instance (1 = private).
    pub shared_by_cpus: u32,
}

/// Where the cache sizes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheSource {
    /// Linux sysfs (`/sys/devices/system/cpu/cpu0/cache`).
    Sysfs,
    /// Not readable here: typical sizes assumed (32 KiB L1d, 1 MiB L2, 32 MiB L3).
    Assumed,
}

/// What the probe found about this machine (no timing involved).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalHardware {
    pub cpu_brand: String,
    pub arch: String,
    pub physical_cores: u32,
    pub logical_cpus: u32,
    /// Reported clock of CPU 0 at probe time (jitters; not part of the fingerprint).
    pub frequency_mhz: u64,
    pub memory_bytes: u64,
    pub os: String,
    /// Run-time detected SIMD features (`avx2`, `avx512f`, `avx512vnni`, ...).
    pub features: Vec<String>,
    pub caches: Vec<CacheLevel>,
    pub cache_source: CacheSource,
    /// Stable hash of brand, arch, cores, features and caches (hex, 16 digits).
    pub fingerprint: String,
}

impl LocalHardware {
    /// Probe this machine (sysinfo + sysfs + CPU feature detection). Takes milliseconds.
    pub fn detect() -> LocalHardware {
        let mut sys = sysinfo::System::new();
        sys.refresh_cpu_all();
        sys.refresh_memory();
        let (brand, frequency_mhz) = sys
            .cpus()
            .first()
            .map(|cpu| (cpu.brand().trim().to_string(), cpu.frequency()))
            .unwrap_or_else(|| ("unknown CPU".to_string(), 0));
        let logical_cpus = u32::try_from(sys.cpus().len().max(1)).unwrap_or(u32::MAX);
        let physical_cores = sysinfo::System::physical_core_count()
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(logical_cpus);
        let os = sysinfo::System::long_os_version()
            .or_else(sysinfo::System::name)
            .unwrap_or_else(|| std::env::consts::OS.to_string());
        let features = workbench_kernels::simd::cpu_features()
            .into_iter()
            .map(str::to_string)
            .collect();
        let (caches, cache_source) = match read_sysfs_caches(Path::new(SYSFS_CACHE_DIR)) {
            Some(caches) if !caches.is_empty() => (caches, CacheSource::Sysfs),
            _ => (assumed_caches(), CacheSource::Assumed),
        };
        let mut hw = LocalHardware {
            cpu_brand: if brand.is_empty() {
                "unknown CPU".to_string()
            } else {
                brand
            },
            arch: std::env::consts::ARCH.to_string(),
            physical_cores,
            logical_cpus,
            frequency_mhz,
            memory_bytes: sys.total_memory(),
            os,
            features,
            caches,
            cache_source,
            fingerprint: String::new(),
        };
        hw.fingerprint = hw.compute_fingerprint();
        hw
    }

    /// Hash of the properties that change what a kernel measures: brand, arch,
    /// core counts, features and caches. Not frequency (jitters) nor memory size.
    pub fn compute_fingerprint(&self) -> String {
        let mut h = Fnv64::new();
        h.write_str(&self.cpu_brand);
        h.write_str(&self.arch);
        h.write_u64(u64::from(self.physical_cores));
        h.write_u64(u64::from(self.logical_cpus));
        for f in &self.features {
            h.write_str(f);
        }
        for c in &self.caches {
            h.write_u64(u64::from(c.level));
            h.write_str(&c.kind);
            h.write_u64(c.size_bytes);
            h.write_u64(u64::from(c.shared_by_cpus));
        }
        format!("{:016x}", h.finish())
    }

    /// Size of the data (or unified) cache at `level`, if known.
    pub fn cache_bytes(&self, level: u8) -> Option<u64> {
        self.caches
            .iter()
            .find(|c| c.level == level && c.kind != "instruction")
            .map(|c| c.size_bytes)
    }

    pub fn has_feature(&self, name: &str) -> bool {
        self.features.iter().any(|f| f == name)
    }
}

const SYSFS_CACHE_DIR: &str = "/sys/devices/system/cpu/cpu0/cache";

/// Typical sizes used when the OS does not tell us (documented in [`CacheSource::Assumed`]).
pub fn assumed_caches() -> Vec<CacheLevel> {
    vec![
        CacheLevel {
            level: 1,
            kind: "data".into(),
            size_bytes: 32 * 1024,
            shared_by_cpus: 1,
        },
        CacheLevel {
            level: 2,
            kind: "unified".into(),
            size_bytes: 1024 * 1024,
            shared_by_cpus: 1,
        },
        CacheLevel {
            level: 3,
            kind: "unified".into(),
            size_bytes: 32 * 1024 * 1024,
            shared_by_cpus: 1,
        },
    ]
}

/// Reads `index*/{level,type,size,shared_cpu_list}` under `dir`. `None` if the
/// directory is missing; entries that do not parse are skipped.
pub fn read_sysfs_caches(dir: &Path) -> Option<Vec<CacheLevel>> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut caches = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with("index") {
            continue;
        }
        let read = |f: &str| std::fs::read_to_string(entry.path().join(f)).ok();
        let Some(level) = read("level").and_then(|s| s.trim().parse::<u8>().ok()) else {
            continue;
        };
        let Some(size_bytes) = read("size").and_then(|s| parse_cache_size(&s)) else {
            continue;
        };
        let kind = read("type")
            .map(|s| s.trim().to_ascii_lowercase())
            .unwrap_or_else(|| "unified".into());
        let shared_by_cpus = read("shared_cpu_list")
            .and_then(|s| count_cpu_list(&s))
            .unwrap_or(1);
        caches.push(CacheLevel {
            level,
            kind,
            size_bytes,
            shared_by_cpus,
        });
    }
    caches.sort_by(|a, b| (a.level, &a.kind).cmp(&(b.level, &b.kind)));
    Some(caches)
}

/// Parses sysfs sizes such as `32K`, `1024K`, `32768K`, `8M`, `512`.
pub fn parse_cache_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let (digits, mult) = match t.chars().last()? {
        'K' | 'k' => (&t[..t.len() - 1], 1024),
        'M' | 'm' => (&t[..t.len() - 1], 1024 * 1024),
        'G' | 'g' => (&t[..t.len() - 1], 1024 * 1024 * 1024),
        _ => (t, 1),
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(mult)
}

/// Counts CPUs in a list such as `0`, `0-3`, `0,2,4-5`.
pub fn count_cpu_list(text: &str) -> Option<u32> {
    let mut count = 0u32;
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((lo, hi)) => {
                let lo: u32 = lo.trim().parse().ok()?;
                let hi: u32 = hi.trim().parse().ok()?;
                count = count.checked_add(hi.checked_sub(lo)?.checked_add(1)?)?;
            }
            None => {
                part.trim().parse::<u32>().ok()?;
                count = count.checked_add(1)?;
            }
        }
    }
    (count > 0).then_some(count)
}

/// FNV-1a, 64 bit: a hash whose value is fixed by its definition, so cache keys
/// stay valid across Rust versions (std's hasher makes no such promise).
#[derive(Debug, Clone)]
pub struct Fnv64(u64);

impl Fnv64 {
    pub fn new() -> Fnv64 {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }

    pub fn write_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// Length-prefixed so ("ab","c") and ("a","bc") differ.
    pub fn write_str(&mut self, s: &str) {
        self.write_u64(s.len() as u64);
        self.write_bytes(s.as_bytes());
    }

    pub fn write_u64(&mut self, v: u64) {
        self.write_bytes(&v.to_le_bytes());
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sysfs_sizes_and_cpu_lists() {
        assert_eq!(parse_cache_size("32K\n"), Some(32 * 1024));
        assert_eq!(parse_cache_size("1024K"), Some(1024 * 1024));
        assert_eq!(parse_cache_size("8M"), Some(8 * 1024 * 1024));
        assert_eq!(parse_cache_size("512"), Some(512));
        assert_eq!(parse_cache_size("K"), None);
        assert_eq!(parse_cache_size(""), None);
        assert_eq!(count_cpu_list("0\n"), Some(1));
        assert_eq!(count_cpu_list("0-3"), Some(4));
        assert_eq!(count_cpu_list("0,2,4-5"), Some(4));
        assert_eq!(count_cpu_list("3-1"), None);
        assert_eq!(count_cpu_list("x"), None);
    }

    #[test]
    fn reads_a_fake_sysfs_tree() {
        let dir = std::env::temp_dir().join(format!("wb-sysfs-{}", std::process::id()));
        let write = |idx: &str, level: &str, kind: &str, size: &str, shared: &str| {
            let d = dir.join(idx);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("level"), level).unwrap();
            std::fs::write(d.join("type"), kind).unwrap();
            std::fs::write(d.join("size"), size).unwrap();
            std::fs::write(d.join("shared_cpu_list"), shared).unwrap();
        };
        write("index0", "1\n", "Data\n", "48K\n", "0\n");
        write("index2", "2\n", "Unified\n", "2048K\n", "0-1\n");
        write("index3", "3\n", "Unified\n", "bogus\n", "0-7\n");
        std::fs::create_dir_all(dir.join("power")).unwrap();
        let caches = read_sysfs_caches(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(caches.len(), 2, "{caches:?}");
        assert_eq!(caches[0].size_bytes, 48 * 1024);
        assert_eq!(caches[0].kind, "data");
        assert_eq!(caches[1].shared_by_cpus, 2);
        assert!(read_sysfs_caches(Path::new("/nonexistent/wb")).is_none());
    }

    #[test]
    fn fingerprint_ignores_frequency_and_memory_but_not_features() {
        let hw = LocalHardware::detect();
        assert_eq!(hw.fingerprint, hw.compute_fingerprint());
        assert_eq!(hw.fingerprint.len(), 16);
        let mut jitter = hw.clone();
        jitter.frequency_mhz += 137;
        jitter.memory_bytes /= 2;
        assert_eq!(jitter.compute_fingerprint(), hw.fingerprint);
        let mut other = hw.clone();
        other.features.push("imaginary".into());
        assert_ne!(other.compute_fingerprint(), hw.fingerprint);
        assert_eq!(LocalHardware::detect().fingerprint, hw.fingerprint);
        assert!(hw.cache_bytes(1).is_some());
    }

    #[test]
    fn fnv_matches_the_reference_vector() {
        let mut h = Fnv64::new();
        h.write_bytes(b"a");
        assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
    }
}
