//! The TUI ends when its terminal goes away. crossterm 0.29 spins forever
//! reading end-of-file from a hung-up terminal, and the TUI used to spin with
//! it (a core busy, SIGHUP and SIGTERM ignored, only SIGKILL stopped it).
//!
//! The real binary runs on a pseudo-terminal made by util-linux `script`;
//! killing `script` closes the terminal's master side, which hangs it up.
//! Skipped (with a note) where `script` or `/proc` is missing.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Generous: the fixed TUI is gone in well under a second; the old one never went.
const WAIT: Duration = Duration::from_secs(30);

/// The process ids of `pid`'s children.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|id| id.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// The process has exited (gone, or a zombie waiting for its parent).
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name's closing parenthesis.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => true,
    }
}

#[test]
fn the_tui_exits_when_its_terminal_hangs_up() {
    let has_script = Command::new("script")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !has_script || !Path::new("/proc/self/task").exists() {
        eprintln!("skipped: needs util-linux `script` and /proc");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_workbench");
    let mut script = Command::new("script")
        .args(["--quiet", "--flush", "--command", binary, "/dev/null"])
        .current_dir(dir.path())
        .env("TERM", "xterm-256color")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the TUI has switched to the alternate screen: it is running.
    let mut output = script.stdout.take().unwrap();
    let (started_tx, started) = mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buffer = [0u8; 4096];
        while let Ok(n) = output.read(&mut buffer) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buffer[..n]);
            if seen.windows(8).any(|w| w == b"\x1b[?1049h") {
                let _ = started_tx.send(());
            }
        }
    });
    let up = started.recv_timeout(WAIT);
    let tui = children(script.id())
        .into_iter()
        .find(|&pid| {
            std::fs::read_link(format!("/proc/{pid}/exe"))
                .is_ok_and(|exe| exe.file_name() == Path::new(binary).file_name())
        })
        .or_else(|| {
            // `script` may run the command through a shell.
            children(script.id()).into_iter().flat_map(children).next()
        });
    assert!(up.is_ok(), "the TUI did not start on the pseudo-terminal");
    let tui = tui.expect("the TUI's process id");

    // Killing `script` hangs up the terminal the TUI runs on.
    script.kill().unwrap();
    let _ = script.wait();
    let deadline = Instant::now() + WAIT;
    while !exited(tui) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let survived = !exited(tui);
    if survived {
        // Do not leave it spinning.
        let _ = Command::new("kill").args(["-9", &tui.to_string()]).status();
    }
    assert!(!survived, "the TUI outlived its terminal");
}
