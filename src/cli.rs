//! The `workbench` command line (clap derive). `main.rs` only calls [`main`].
//!
//! Until the measure/plan stages land, `run` validates its scenarios and then
//! stops with exit code 3 naming the missing stage; it never prints an
//! invented plan and writes nothing under `--out`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::scenario::{self, Scenario, ScenarioErrors};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  no feasible plan, `run --check` mismatch, or regression against --baseline
  2  bad input or usage (invalid scenario, missing file, bad option)
  3  a stage is not available in this build";

/// Benchmark an ML model on this machine and plan how to serve it:
/// batch or online, cloud or edge, which backend, precision and batch size.
#[derive(Debug, Parser)]
#[command(name = "workbench", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Plan how to serve each scenario and write reports (headless; for CI).
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// Parse and check scenarios; print a one-screen summary of each.
    #[command(after_help = EXIT_CODES)]
    Validate {
        /// Scenario files or directories of *.toml files.
        #[arg(required = true, value_name = "FILES")]
        paths: Vec<PathBuf>,
    },
    /// One line per scenario in DIR (default: scenarios/).
    #[command(after_help = EXIT_CODES)]
    List {
        #[arg(value_name = "DIR", default_value = "scenarios")]
        dir: PathBuf,
    },
    /// Measure the kernel backends of a scenario's model on this machine.
    #[command(after_help = EXIT_CODES)]
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario files or directories of *.toml files.
    #[arg(required = true, value_name = "FILES_OR_DIRS")]
    pub paths: Vec<PathBuf>,
    /// Where reports are written (one directory per scenario).
    #[arg(long, value_name = "DIR", default_value = "reports")]
    pub out: PathBuf,
    /// Report formats, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "md,csv,json")]
    pub format: Vec<Format>,
    /// Short measurement budget (CI smoke runs).
    #[arg(long)]
    pub quick: bool,
    /// Ignore cached measurements and measure again.
    #[arg(long)]
    pub fresh: bool,
    /// Print only errors and the final verdict.
    #[arg(long)]
    pub quiet: bool,
    /// Override every scenario's search seed.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Fail (exit 1) when the plan differs from the scenario's [expect] block.
    #[arg(long)]
    pub check: bool,
    /// Compare against a previous plan.json; fail (exit 1) on regression.
    #[arg(long, value_name = "PLAN.json")]
    pub baseline: Option<PathBuf>,
    /// Allowed regression against --baseline, e.g. 10% (or 10).
    #[arg(long, value_name = "PERCENT", default_value = "10%", value_parser = parse_percent)]
    pub tolerance: f64,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Scenario whose model is measured (default: all in scenarios/).
    #[arg(value_name = "SCENARIO")]
    pub scenario: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Short measurement budget.
    #[arg(long)]
    pub quick: bool,
    /// Ignore cached measurements.
    #[arg(long)]
    pub fresh: bool,
}

/// Report formats of `run --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Md,
    Csv,
    Json,
}

/// Process exit codes (documented in `--help` and the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    /// No feasible plan, `--check` mismatch, baseline regression.
    Failure = 1,
    /// Bad input or usage.
    BadInput = 2,
    /// A stage is not available in this build.
    NotAvailable = 3,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// `10%`, `10` or `2.5%` -> 10.0 / 2.5 (percent).
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_end_matches('%').trim();
    match number.parse::<f64>() {
        Ok(p) if p.is_finite() && (0.0..=1000.0).contains(&p) => Ok(p),
        _ => Err(format!(
            "`{text}` is not accepted: expected a percentage between 0 and 1000, e.g. 10%"
        )),
    }
}

/// Write to stdout, ignoring a closed pipe (`workbench list | head`).
fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

fn err(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    let _ = stderr.flush();
}

/// Parse the process arguments and run the command.
pub fn main() -> ExitCode {
    match Cli::try_parse() {
        Ok(cli) => run(cli).into(),
        Err(e) => {
            // Help and --version print to stdout with code 0; usage errors exit 2.
            let _ = e.print();
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
        }
    }
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> Exit {
    match cli.command {
        None => {
            out("workbench: the interactive TUI is not available in this build yet.\n\
                 Try instead:\n  \
                 workbench list scenarios/                 one line per shipped scenario\n  \
                 workbench validate scenarios/             check scenarios, show model size, FLOPs, SLO\n  \
                 workbench run scenarios/<name>.toml       plan how to serve one scenario\n  \
                 workbench --help                          all commands and exit codes\n");
            Exit::Success
        }
        Some(Command::Validate { paths }) => validate(&paths),
        Some(Command::List { dir }) => list(&dir),
        Some(Command::Run(args)) => run_scenarios(&args),
        Some(Command::Bench(args)) => bench(&args),
    }
}

/// Expand paths into scenario files; a directory without scenarios or a
/// missing path is an error (printed), reported as `Err(())`.
fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ()> {
    let mut ok = true;
    for path in paths {
        if path.is_dir() && scenario::scenarios_in_dir(path).is_empty() {
            err(&format!(
                "{}: directory contains no scenario files (*.toml)\n",
                path.display()
            ));
            ok = false;
        } else if !path.exists() {
            err(&format!("{}: no such file or directory\n", path.display()));
            ok = false;
        }
    }
    if ok {
        Ok(scenario::discover(paths))
    } else {
        Err(())
    }
}

/// Load every file; print each file's errors. `Err` if any file is invalid.
fn load_all(files: &[PathBuf]) -> Result<Vec<Scenario>, Vec<ScenarioErrors>> {
    let mut scenarios = Vec::new();
    let mut failures = Vec::new();
    for file in files {
        match scenario::load(file) {
            Ok(s) => scenarios.push(s),
            Err(e) => {
                err(&format!("{e}\n"));
                failures.push(e);
            }
        }
    }
    if failures.is_empty() {
        Ok(scenarios)
    } else {
        let problems: usize = failures.iter().map(|f| f.errors.len()).sum();
        err(&format!(
            "error: {} of {} scenario file(s) invalid ({problems} problem(s)); see docs/scenarios.md\n",
            failures.len(),
            files.len()
        ));
        Err(failures)
    }
}

fn validate(paths: &[PathBuf]) -> Exit {
    let Ok(files) = expand(paths) else {
        return Exit::BadInput;
    };
    let mut all_ok = true;
    let mut valid = 0;
    for file in &files {
        match scenario::load(file) {
            Ok(s) => {
                out(&format!("{}\n", s.summary()));
                valid += 1;
            }
            Err(e) => {
                err(&format!("{e}\n"));
                all_ok = false;
            }
        }
    }
    if all_ok {
        out(&format!("{valid} scenario(s) valid\n"));
        Exit::Success
    } else {
        err(&format!(
            "error: {} of {} scenario file(s) invalid; see docs/scenarios.md\n",
            files.len() - valid,
            files.len()
        ));
        Exit::BadInput
    }
}

fn list(dir: &Path) -> Exit {
    let Ok(files) = expand(&[dir.to_path_buf()]) else {
        return Exit::BadInput;
    };
    let mut all_ok = true;
    for file in &files {
        match scenario::load(file) {
            Ok(s) => out(&format!("{}  {}\n", s.one_line(), file.display())),
            Err(e) => {
                out(&format!(
                    "{:<28} INVALID ({} problem(s); run `workbench validate {}`)\n",
                    file.file_stem()
                        .map_or_else(String::new, |s| s.to_string_lossy().into_owned()),
                    e.errors.len(),
                    file.display()
                ));
                all_ok = false;
            }
        }
    }
    if all_ok {
        Exit::Success
    } else {
        Exit::BadInput
    }
}

fn run_scenarios(args: &RunArgs) -> Exit {
    let Ok(files) = expand(&args.paths) else {
        return Exit::BadInput;
    };
    if let Some(baseline) = &args.baseline {
        if !baseline.is_file() {
            err(&format!(
                "{}: baseline plan not found (expected a plan.json from an earlier `workbench run`)\n",
                baseline.display()
            ));
            return Exit::BadInput;
        }
    }
    let Ok(scenarios) = load_all(&files) else {
        return Exit::BadInput;
    };
    if !args.quiet {
        for s in &scenarios {
            out(&format!("validated {}  ({})\n", s.name, s.path.display()));
        }
    }
    err(&format!(
        "workbench run: {} scenario(s) valid, but the measure and plan stages are not available in this build yet; \
         no plan was produced and nothing was written under {}\n",
        scenarios.len(),
        args.out.display()
    ));
    Exit::NotAvailable
}

fn bench(args: &BenchArgs) -> Exit {
    if let Some(path) = &args.scenario {
        let Ok(files) = expand(std::slice::from_ref(path)) else {
            return Exit::BadInput;
        };
        if load_all(&files).is_err() {
            return Exit::BadInput;
        }
    }
    err("workbench bench: not available yet in this build (the measurement stage is not wired in)\n");
    Exit::NotAvailable
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn percent_parser_accepts_both_spellings() {
        assert_eq!(parse_percent("10%"), Ok(10.0));
        assert_eq!(parse_percent("2.5"), Ok(2.5));
        assert!(parse_percent("ten").is_err());
        assert!(parse_percent("-5%").is_err());
    }

    #[test]
    fn run_parses_every_flag() {
        let cli = Cli::try_parse_from([
            "workbench",
            "run",
            "a.toml",
            "dir",
            "--out",
            "o",
            "--format",
            "md,json",
            "--quick",
            "--fresh",
            "--quiet",
            "--seed",
            "7",
            "--check",
            "--baseline",
            "p.json",
            "--tolerance",
            "5%",
        ]);
        let Ok(Cli {
            command: Some(Command::Run(args)),
        }) = cli
        else {
            panic!("run did not parse: {cli:?}");
        };
        assert_eq!(args.paths.len(), 2);
        assert_eq!(args.format, vec![Format::Md, Format::Json]);
        assert_eq!(args.seed, Some(7));
        assert_eq!(args.tolerance, 5.0);
        assert!(args.quick && args.fresh && args.quiet && args.check);
    }
}
