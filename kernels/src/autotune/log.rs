//! The tuning log: one JSON object per line, one line per trial (TVM-style
//! tuning records). Keyed by op + shape, search space, hardware fingerprint
//! and log version; a `best` record commits the result of a finished tune.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::space::Params;
use super::TuneError;

/// Bump when the meaning of recorded parameters changes: old records are then ignored.
pub const LOG_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    /// A search trial.
    Trial,
    /// A re-measurement of one of the top candidates before committing.
    Remeasure,
    /// The committed result of a finished tune (time = fastest of its measurements).
    Best,
    /// The best so far of a search its time budget cut short: used as the
    /// result until a later tune, resuming from the logged trials, finishes.
    Provisional,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    pub version: u32,
    pub fingerprint: String,
    pub space: String,
    pub op: String,
    pub shape: Vec<usize>,
    pub params: Params,
    pub time_ns: f64,
    pub kind: RecordKind,
}

/// Records loaded from (and appended to) a JSON-lines file, or kept in memory.
#[derive(Debug, Clone, Default)]
pub struct TuningLog {
    path: Option<PathBuf>,
    records: Vec<TrialRecord>,
    skipped_lines: usize,
}

impl TuningLog {
    /// A log that is never written to disk (tests, one-off tunes).
    pub fn in_memory() -> TuningLog {
        TuningLog::default()
    }

    /// Opens `path`; a missing file is an empty log. Lines that do not parse
    /// (a torn write, a foreign format) are skipped and counted.
    pub fn open(path: &Path) -> Result<TuningLog, TuneError> {
        let io = |source| TuneError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut log = TuningLog {
            path: Some(path.to_path_buf()),
            ..TuningLog::default()
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(log),
            Err(e) => return Err(io(e)),
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<TrialRecord>(line) {
                Ok(r) => log.records.push(r),
                Err(_) => log.skipped_lines += 1,
            }
        }
        Ok(log)
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn records(&self) -> &[TrialRecord] {
        &self.records
    }

    pub fn skipped_lines(&self) -> usize {
        self.skipped_lines
    }

    /// Appends one record (one line, flushed) to the file and to memory.
    pub fn append(&mut self, record: TrialRecord) -> Result<(), TuneError> {
        if let Some(path) = &self.path {
            let io = |source| TuneError::Io {
                path: path.display().to_string(),
                source,
            };
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let mut line =
                serde_json::to_string(&record).map_err(|e| io(std::io::Error::other(e)))?;
            line.push('\n');
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(io)?;
            f.write_all(line.as_bytes()).map_err(io)?;
            f.flush().map_err(io)?;
        }
        self.records.push(record);
        Ok(())
    }

    /// The trials and re-measurements logged for this key on this machine, in
    /// order (what a search cut short had measured, for the next to resume).
    pub fn measurements_for<'a>(
        &'a self,
        op: &'a str,
        shape: &'a [usize],
        space: &'a str,
        fingerprint: &'a str,
    ) -> impl Iterator<Item = &'a TrialRecord> + 'a {
        self.records.iter().filter(move |r| {
            matches!(r.kind, RecordKind::Trial | RecordKind::Remeasure)
                && r.version == LOG_VERSION
                && r.op == op
                && r.shape == shape
                && r.space == space
                && r.fingerprint == fingerprint
        })
    }

    /// The latest committed result for this key on this machine, if any.
    pub fn best_for(
        &self,
        op: &str,
        shape: &[usize],
        space: &str,
        fingerprint: &str,
    ) -> Option<&TrialRecord> {
        self.records.iter().rev().find(|r| {
            r.kind == RecordKind::Best
                && r.version == LOG_VERSION
                && r.op == op
                && r.shape == shape
                && r.space == space
                && r.fingerprint == fingerprint
        })
    }
}

/// A string identifying this machine for tuning purposes: architecture, CPU
/// model, the SIMD features the kernels use and the logical CPU count.
pub fn hardware_fingerprint() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown-cpu".to_string());
    #[allow(unused_mut)]
    let mut features: Vec<&str> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        let known = [
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("f16c", std::arch::is_x86_feature_detected!("f16c")),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
            ("avx512bw", std::arch::is_x86_feature_detected!("avx512bw")),
            (
                "avx512vnni",
                std::arch::is_x86_feature_detected!("avx512vnni"),
            ),
        ];
        features.extend(known.iter().filter(|(_, on)| *on).map(|(n, _)| *n));
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!(
        "{}|{}|{}|{}cpu",
        std::env::consts::ARCH,
        model,
        features.join(","),
        cpus
    )
}
