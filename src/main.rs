//! Thin entry point: the CLI lives in the library (`workbench::cli`).

fn main() -> std::process::ExitCode {
    let code = workbench::cli::main();
    // The TUI stopped on SIGTERM, SIGHUP or SIGINT (terminal restored): exit
    // with the status a shell expects of a program a signal ended.
    match workbench::tui::stopped_by_signal().and_then(|signal| u8::try_from(128 + signal).ok()) {
        Some(status) => std::process::ExitCode::from(status),
        None => code,
    }
}
