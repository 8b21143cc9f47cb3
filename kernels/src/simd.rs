//! Run-time SIMD selection. `detect()` picks the best level this CPU has; the
//! environment variable `WORKBENCH_SIMD=portable|avx2|avx512` forces a lower
//! one (never a higher one than the CPU supports), so tests can run every path.

use std::fmt;

/// Instruction-set level a kernel is compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SimdLevel {
    /// Plain Rust the compiler may auto-vectorise; works everywhere.
    Portable,
    /// x86-64 AVX2 + FMA (256-bit).
    Avx2Fma,
    /// x86-64 AVX-512F (512-bit).
    Avx512,
}

impl SimdLevel {
    pub const ALL: [SimdLevel; 3] = [SimdLevel::Portable, SimdLevel::Avx2Fma, SimdLevel::Avx512];

    pub fn name(self) -> &'static str {
        match self {
            SimdLevel::Portable => "portable",
            SimdLevel::Avx2Fma => "avx2",
            SimdLevel::Avx512 => "avx512",
        }
    }

    pub fn parse(name: &str) -> Option<SimdLevel> {
        SimdLevel::ALL
            .into_iter()
            .find(|l| l.name() == name.trim().to_ascii_lowercase())
    }

    /// Whether this CPU can execute kernels of this level.
    pub fn is_supported(self) -> bool {
        match self {
            SimdLevel::Portable => true,
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx2Fma => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Levels this CPU supports, lowest first (what tests iterate over).
    pub fn supported() -> Vec<SimdLevel> {
        SimdLevel::ALL
            .into_iter()
            .filter(|l| l.is_supported())
            .collect()
    }
}

impl fmt::Display for SimdLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Best level the CPU supports.
pub fn best_available() -> SimdLevel {
    SimdLevel::ALL
        .into_iter()
        .rev()
        .find(|l| l.is_supported())
        .unwrap_or(SimdLevel::Portable)
}

/// Level to use: `WORKBENCH_SIMD` if set (capped at what the CPU has), else the best available.
pub fn detect() -> SimdLevel {
    let best = best_available();
    match std::env::var("WORKBENCH_SIMD")
        .ok()
        .and_then(|v| SimdLevel::parse(&v))
    {
        Some(forced) => forced.min(best),
        None => best,
    }
}

/// The level of the helpers every kernel shares (activations, `exp`, packing
/// B): `detect()` read once, at their first use in the process, so that
/// `WORKBENCH_SIMD` forces them as it forces the kernels an executable is
/// compiled with. Their paths give the same bits (tested against each other
/// in `act` and `gemm`), so only speed depends on it.
pub fn shared_helpers_level() -> SimdLevel {
    static LEVEL: std::sync::OnceLock<SimdLevel> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(detect)
}

/// CPU features relevant to the kernels, as reported by run-time detection.
pub fn cpu_features() -> Vec<&'static str> {
    let mut features = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! probe {
            ($($f:tt),*) => {
                $(if std::arch::is_x86_feature_detected!($f) { features.push($f); })*
            };
        }
        probe!(
            "sse4.2",
            "avx",
            "avx2",
            "fma",
            "f16c",
            "avx512f",
            "avx512bw",
            "avx512vl",
            "avx512vnni",
            "avx512bf16",
            "avxvnni"
        );
    }
    #[cfg(target_arch = "aarch64")]
    {
        features.push("neon");
    }
    features
}

/// Small AVX2 building blocks the kernels share (lane masks, the ReLU
/// select), so each path states the semantics once.
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use std::arch::x86_64::*;

    /// All ones in the first `count` lanes (at most 8), zeros after: the mask of
    /// a partial vector for `_mm256_maskload_ps` / `_mm256_maskstore_ps`.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) fn first_lanes(count: usize) -> __m256i {
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        _mm256_cmpgt_epi32(_mm256_set1_epi32(count.min(8) as i32), lanes)
    }

    /// All lanes set when `relu`, none otherwise: the mask `relu` takes.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) fn relu_lanes(relu: bool) -> __m256 {
        _mm256_castsi256_ps(_mm256_set1_epi32(if relu { -1 } else { 0 }))
    }

    /// `max(x, 0)` where `relu_lanes` is set (NaN -> 0 as in `f32::max`), `x`
    /// elsewhere: a blend, not a branch, so tile loops stay unrolled.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) fn relu(x: __m256, relu_lanes: __m256) -> __m256 {
        _mm256_blendv_ps(x, _mm256_max_ps(x, _mm256_setzero_ps()), relu_lanes)
    }
}
