//! The on-disk cache: one JSON file per entry, written atomically.

use serde::{de::DeserializeOwned, Serialize};
use std::path::{Path, PathBuf};

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
    let text = serde_json::to_string_pretty(value).map_err(|source| CacheError::Encode {
        path: path.to_path_buf(),
        source,
    })?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, text).map_err(write_err)?;
    std::fs::rename(&tmp, path).map_err(write_err)
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
}
