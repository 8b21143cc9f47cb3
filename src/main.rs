//! Thin entry point: the CLI lives in the library (`workbench::cli`).

fn main() -> std::process::ExitCode {
    workbench::cli::main()
}
