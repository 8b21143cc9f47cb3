//! Bounded reads of the files a user names (scenario, trace, baseline plan):
//! only regular files, and never more than a limit, so that `/dev/zero`, a
//! FIFO or a `/proc` file (which reports size 0) is refused or cut short
//! instead of filling memory or blocking forever.

use std::io::Read;
use std::path::Path;

/// Why a file named on the command line or in a scenario could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadFileError {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("is a symbolic link to `{target}`, which does not exist")]
    DanglingSymlink { target: String },
    #[error("is a directory, not a file")]
    Directory,
    #[error("is {kind}, not a regular file; only regular files are read")]
    NotRegular { kind: &'static str },
    #[error("is larger than {limit} bytes, the limit for this file")]
    TooLarge { limit: u64 },
}

/// The whole of the regular file at `path` (symbolic links followed), at most
/// `limit` bytes.
pub fn read_regular_file(path: &Path, limit: u64) -> Result<Vec<u8>, ReadFileError> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) => return Err(dangling_symlink(path).unwrap_or(ReadFileError::Io(e))),
    };
    // Checked before opening: opening a FIFO blocks until a writer appears.
    check_regular(&meta)?;
    if meta.len() > limit {
        return Err(ReadFileError::TooLarge { limit });
    }
    let file = std::fs::File::open(path)?;
    // The file may have been replaced between the two looks.
    check_regular(&file.metadata()?)?;
    let mut bytes = Vec::new();
    // `/proc` files report size 0 and a file may grow while it is read: never
    // read past the limit, whatever the size said.
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadFileError::TooLarge { limit });
    }
    Ok(bytes)
}

fn check_regular(meta: &std::fs::Metadata) -> Result<(), ReadFileError> {
    let kind = meta.file_type();
    if kind.is_file() {
        Ok(())
    } else if kind.is_dir() {
        Err(ReadFileError::Directory)
    } else {
        Err(ReadFileError::NotRegular {
            kind: special_kind(&kind),
        })
    }
}

#[cfg(unix)]
fn special_kind(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        "a named pipe (FIFO)"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_kind: &std::fs::FileType) -> &'static str {
    "a special file"
}

/// `path` is a symbolic link whose target is missing (`metadata` fails on it
/// with "not found", which would puzzle someone who sees it in `ls`).
fn dangling_symlink(path: &Path) -> Option<ReadFileError> {
    let link = std::fs::symlink_metadata(path).ok()?;
    if !link.file_type().is_symlink() {
        return None;
    }
    let target = std::fs::read_link(path).ok()?;
    Some(ReadFileError::DanglingSymlink {
        target: target.display().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory removed when the test ends.
    fn scratch() -> tempfile::TempDir {
        tempfile::tempdir().expect("scratch dir")
    }

    #[test]
    fn reads_a_regular_file_up_to_the_limit_and_no_further() {
        let scratch = scratch();
        let dir = scratch.path();
        let file = dir.join("f.txt");
        std::fs::write(&file, b"0123456789").expect("written");
        assert_eq!(read_regular_file(&file, 10).expect("read"), b"0123456789");
        assert!(matches!(
            read_regular_file(&file, 9),
            Err(ReadFileError::TooLarge { limit: 9 })
        ));
    }

    #[test]
    fn refuses_devices_directories_and_dangling_links_before_reading() {
        // Refused from its metadata: never read, so no memory limit is needed.
        #[cfg(unix)]
        {
            let zero = read_regular_file(Path::new("/dev/zero"), 1 << 20);
            assert!(
                matches!(
                    zero,
                    Err(ReadFileError::NotRegular {
                        kind: "a character device"
                    })
                ),
                "{zero:?}"
            );
        }
        let scratch = scratch();
        let dir = scratch.path();
        assert!(matches!(
            read_regular_file(dir, 10),
            Err(ReadFileError::Directory)
        ));
        #[cfg(unix)]
        {
            let link = dir.join("gone.toml");
            std::os::unix::fs::symlink(dir.join("missing"), &link).expect("symlink");
            let err = read_regular_file(&link, 10).expect_err("dangling");
            assert!(
                err.to_string().contains("symbolic link") && err.to_string().contains("missing"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let scratch = scratch();
        let dir = scratch.path();
        let fifo = dir.join("pipe.csv");
        // Without `mkfifo` (not a Unix), there is nothing to test.
        let Ok(status) = std::process::Command::new("mkfifo").arg(&fifo).status() else {
            return;
        };
        assert!(status.success(), "mkfifo failed");
        assert!(matches!(
            read_regular_file(&fifo, 10),
            Err(ReadFileError::NotRegular {
                kind: "a named pipe (FIFO)"
            })
        ));
    }

    #[test]
    fn a_proc_file_that_reports_size_zero_is_cut_at_the_limit() {
        let maps = Path::new("/proc/self/maps");
        if !maps.exists() {
            return;
        }
        assert!(matches!(
            read_regular_file(maps, 16),
            Err(ReadFileError::TooLarge { limit: 16 })
        ));
    }
}
