//! The on-disk cache: one JSON file per entry, written atomically.

use serde::{de::DeserializeOwned, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// Environment variable naming the cache directory.
pub const CACHE_DIR_ENV: &str = "WORKBENCH_CACHE_DIR";
/// Cache directory when the environment does not name one (relative to the working directory).
pub const DEFAULT_CACHE_DIR: &str = ".workbench-cache";

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot write cache file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode cache entry {path}: {source}")]
    Encode {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// `$WORKBENCH_CACHE_DIR`, or `.workbench-cache/`.
pub fn default_cache_dir() -> PathBuf {
    std::env::var_os(CACHE_DIR_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE_DIR))
}

/// The entry at `path`, or `None` if it is missing or unreadable (a corrupt entry
/// is treated as a miss and overwritten by the next write).
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Option<T> {
    sweep_dir_of(path);
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// Writes `value` to a temporary file beside `path`, then renames it into place,
/// so a reader never sees half an entry.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<(), CacheError> {
    let write_err = |source| CacheError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(write_err)?;
    }
    sweep_dir_of(path);
    let text = serde_json::to_string_pretty(value).map_err(|source| CacheError::Encode {
        path: path.to_path_buf(),
        source,
    })?;
    let tmp = temp_path(path);
    std::fs::write(&tmp, text).map_err(write_err)?;
    std::fs::rename(&tmp, path).map_err(write_err)
}

/// The temporary file an entry is written through: `<entry>.tmp<pid>`, unique
/// per process so concurrent runs never write into each other's.
fn temp_path(path: &Path) -> PathBuf {
    path.with_extension(format!("{TEMP_EXTENSION}{}", std::process::id()))
}

const TEMP_EXTENSION: &str = "tmp";

/// Sweeps the directory of the entry at `path` of the temp files killed runs
/// left there, the first time this process reads or writes an entry in it
/// (once is enough: the files of runs that die later are the next run's).
fn sweep_dir_of(path: &Path) {
    static SWEPT: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
    let Some(dir) = path.parent() else {
        return;
    };
    let mut swept = SWEPT.lock().unwrap_or_else(PoisonError::into_inner);
    if swept.insert(dir.to_path_buf()) {
        sweep_leftovers(dir);
    }
}

/// Removes the `*.tmp<pid>` files in `dir` of processes no longer running (a
/// run killed between writing and renaming its temp file leaves it behind; a
/// live run's, this one's included, are its own). Like the report writer's
/// sweep, it removes nothing where it cannot tell a dead process from a live one.
fn sweep_leftovers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if leftover_pid(&path).is_some_and(crate::process::process_is_gone) {
            // Best effort: another run may be sweeping the same file.
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// The process id in a temp file name `<entry>.tmp<pid>` ([`temp_path`]).
fn leftover_pid(path: &Path) -> Option<u32> {
    let digits = path.extension()?.to_str()?.strip_prefix(TEMP_EXTENSION)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_treats_garbage_as_a_miss() {
        let dir = std::env::temp_dir().join(format!("wb-cache-{}", std::process::id()));
        let path = dir.join("sub").join("entry.json");
        write_json_atomic(&path, &vec![1u32, 2, 3]).unwrap();
        assert_eq!(read_json::<Vec<u32>>(&path), Some(vec![1, 2, 3]));
        std::fs::write(&path, "{not json").unwrap();
        assert_eq!(read_json::<Vec<u32>>(&path), None);
        assert_eq!(read_json::<Vec<u32>>(&dir.join("missing.json")), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Opening a cache directory (reading or writing an entry in it) removes
    /// the temp files of killed runs, and only those: a live process's (this
    /// one's, init's) and the entries stay.
    #[test]
    fn temp_files_of_dead_runs_are_swept_when_the_directory_is_used() {
        let dead = u32::MAX - 1; // above any pid_max: never a live process
        let ours = std::process::id();
        let kept = [
            format!("a.tmp{ours}"),
            "b.tmp1".to_string(),
            "entry.json".to_string(),
            "other.json".to_string(),
            "notes.tmp".to_string(),
            format!("c.tmp{dead}x"),
        ];
        let leftovers = [format!("a.tmp{dead}"), format!("z-k3-f32-b1.tmp{dead}")];
        for use_dir in ["read", "write"] {
            let out = tempfile::tempdir().unwrap();
            let dir = out.path();
            for f in kept.iter().chain(&leftovers) {
                std::fs::write(dir.join(f), "x").unwrap();
            }
            let entry = dir.join("entry.json");
            match use_dir {
                "read" => assert_eq!(read_json::<u32>(&entry), None),
                _ => write_json_atomic(&entry, &7u32).unwrap(),
            }
            let mut expected: Vec<String> = kept.to_vec();
            if !Path::new("/proc/self").exists() {
                expected.extend(leftovers.iter().cloned());
            }
            expected.sort();
            assert_eq!(names(dir), expected, "{use_dir}");
            let other = std::fs::read_to_string(dir.join("other.json")).unwrap();
            assert_eq!(other, "x", "{use_dir}");
        }
    }
}
