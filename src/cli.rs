//! The `workbench` command line (clap derive). `main.rs` only calls [`main`].
//!
//! `run` validates every scenario first (bad input exits 2 with nothing
//! written), then measures, plans and writes the reports of each.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::measure::MeasureProgress;
use crate::pipeline::{self, PipelineOptions, MODEL_SEED};
use crate::plan::WhatIf;
use crate::report;
use crate::scenario::{self, Scenario, ScenarioErrors};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  no feasible plan, `run --check` mismatch, or regression against --baseline
  2  bad input or usage (invalid scenario, missing file, bad option)
  3  a stage is not available in this build
  4  the run failed on this machine: measuring, probing, or writing the reports";

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
    /// Measure this machine: its roofline, reference workloads and a scenario's reference variant.
    ///
    /// The reference workloads (sgemm, an elementwise chain, mlp-1024 and
    /// convnet-224) are timed with naive, fused and tiled f32, and mlp-1024
    /// also with quantized int8 and autotuned f32. With SCENARIO, its
    /// reference model variant is timed with fused and tiled f32 and quantized
    /// int8 at batch 1, 8 and 64 (1 and 8 with --quick), and projected onto
    /// the scenario's targets.
    ///
    /// Not measured by bench: f16 and bf16, the autotuned backend on the
    /// scenario's model, and the scenario's other variants; `workbench run`
    /// measures every variant with the backends and precisions its search names.
    #[command(after_help = EXIT_CODES)]
    Bench(BenchArgs),
    /// Autotune the GEMM tiles of a scenario's model variants ahead of a run.
    ///
    /// Searches each GEMM shape's tile (cost-model guided, TVM-style) for up
    /// to SECONDS in all per variant and logs every trial to the tuning log
    /// (`$WORKBENCH_CACHE_DIR/tuning.jsonl`). `workbench run` and the TUI
    /// compile the autotuned backend from the log, so a run with a short
    /// measurement budget gets the tiles a long search found; a search cut
    /// short resumes where it stopped.
    #[command(after_help = EXIT_CODES)]
    Tune(TuneArgs),
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
    /// Short measurement budget and shorter simulations (CI smoke runs).
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
    /// Fail (exit 1) when the plan differs from the scenario's [expect] block;
    /// every scenario run must have one (exit 2 otherwise).
    #[arg(long)]
    pub check: bool,
    /// Compare against a previous plan.json of a scenario in this run; fail (exit 1) on
    /// regression: feasibility lost, the baseline's serving decision no longer feasible,
    /// or latency or cost grown beyond --tolerance widened by the measurement noise (see
    /// docs/plan-format.md). It must not be a report file this run rewrites (exit 2).
    #[arg(long, value_name = "PLAN.json")]
    pub baseline: Option<PathBuf>,
    /// Allowed latency and cost growth against --baseline, e.g. 10% (or 10), before the
    /// measurement noise both runs recorded is added [default: 10%].
    #[arg(long, value_name = "PERCENT", requires = "baseline", value_parser = parse_percent)]
    pub tolerance: Option<f64>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Scenario whose reference model variant is measured too (fused and
    /// tiled f32, quantized int8) and projected onto its targets; the
    /// reference workloads are always measured. A file, or a directory
    /// holding exactly one scenario (one of several is refused, exit 2).
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

#[derive(Debug, Args)]
pub struct TuneArgs {
    /// Scenario whose model variants are tuned.
    #[arg(value_name = "SCENARIO")]
    pub scenario: PathBuf,
    /// Time each variant's search may take, in seconds, shared by its GEMM
    /// shapes (each also stops after 40 trials).
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    pub seconds: f64,
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
    /// A stage failed at run time (a measurement, the probe, writing the
    /// reports): not the input's fault, and not a verdict on the plan.
    RunFailed = 4,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// Allowed regression against `--baseline` when `--tolerance` is not given.
const DEFAULT_TOLERANCE_PERCENT: f64 = 10.0;

/// `10%`, `10` or `2.5%` -> 10.0 / 2.5 (percent).
pub fn parse_percent(text: &str) -> Result<f64, String> {
    // One `%` at most: `5%%` is a typo, not 5%.
    let number = text.trim();
    let number = number.strip_suffix('%').unwrap_or(number).trim();
    match number.parse::<f64>() {
        Ok(p) if p.is_finite() && (0.0..=1000.0).contains(&p) => Ok(p),
        _ => Err(format!(
            "`{text}` is not accepted: expected a percentage between 0 and 1000, e.g. 10%"
        )),
    }
}

/// Write to stdout, ignoring a closed pipe (`workbench list | head`).
/// Control characters are escaped: text from a scenario (a refused value
/// quoted in an error) must not drive the terminal.
fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(scenario::printable(text).as_bytes());
    let _ = stdout.flush();
}

fn err(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(scenario::printable(text).as_bytes());
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
            use std::io::IsTerminal;
            if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
                err(
                    "workbench: the interactive TUI needs a terminal. Headless, try:\n  \
                     workbench run scenarios/<name>.toml       plan how to serve one scenario\n  \
                     workbench list scenarios/                 one line per shipped scenario\n  \
                     workbench --help                          all commands and exit codes\n",
                );
                return Exit::BadInput;
            }
            let pipeline = crate::tui::RealPipeline {
                options: PipelineOptions {
                    quick: true,
                    ..PipelineOptions::default()
                },
            };
            match crate::tui::run_tui(Vec::new(), std::sync::Arc::new(pipeline)) {
                Ok(()) => Exit::Success,
                Err(e) => {
                    err(&format!("workbench: {e}\n"));
                    Exit::BadInput
                }
            }
        }
        Some(Command::Validate { paths }) => validate(&paths),
        Some(Command::List { dir }) => list(&dir),
        Some(Command::Run(args)) => run_scenarios(&args),
        Some(Command::Bench(args)) => bench(&args),
        Some(Command::Tune(args)) => tune(&args),
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
        let problems: usize = failures.iter().map(|f| f.problems).sum();
        err(&format!(
            "error: {} of {} scenario file(s) invalid ({problems} problem(s)); see docs/scenarios.md\n",
            failures.len(),
            files.len()
        ));
        Err(failures)
    }
}

/// Scenarios of one run write their reports under their names: two with one
/// name would overwrite each other's.
fn unique_names(scenarios: &[Scenario]) -> Result<(), String> {
    let mut seen: std::collections::BTreeMap<&str, &Path> = std::collections::BTreeMap::new();
    for s in scenarios {
        if let Some(first) = seen.insert(&s.name, &s.path) {
            if same_file(first, &s.path) {
                let spelt = if first == s.path {
                    String::new()
                } else {
                    format!(" (as {} and {})", first.display(), s.path.display())
                };
                return Err(format!(
                    "{} is given twice{spelt}; name each scenario file once",
                    s.path.display()
                ));
            }
            return Err(format!(
                "{} and {} are both named \"{}\", so their reports would overwrite each other; \
                 give one of them another `name`",
                first.display(),
                s.path.display(),
                s.name
            ));
        }
    }
    Ok(())
}

/// Whether two paths name one file (`base.toml` and `./base.toml`).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn validate(paths: &[PathBuf]) -> Exit {
    let Ok(files) = expand(paths) else {
        return Exit::BadInput;
    };
    let mut all_ok = true;
    let mut valid = Vec::new();
    for file in &files {
        match scenario::load(file) {
            Ok(s) => {
                out(&format!("{}\n", s.summary()));
                valid.push(s);
            }
            Err(e) => {
                err(&format!("{e}\n"));
                all_ok = false;
            }
        }
    }
    if let Err(message) = unique_names(&valid) {
        err(&format!("error: {message}\n"));
        return Exit::BadInput;
    }
    let valid = valid.len();
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
                    e.problems,
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
    let baseline = match &args.baseline {
        Some(path) => match read_baseline(path) {
            Ok(b) => Some(b),
            Err(message) => {
                err(&format!("{}: {message}\n", path.display()));
                return Exit::BadInput;
            }
        },
        None => None,
    };
    let Ok(scenarios) = load_all(&files) else {
        return Exit::BadInput;
    };
    if let Err(message) = unique_names(&scenarios) {
        err(&format!("error: {message}\n"));
        return Exit::BadInput;
    }
    if args.check {
        // A CI job with `--check` must not pass on a scenario it cannot check.
        let unchecked: Vec<&Scenario> = scenarios.iter().filter(|s| s.expect.is_none()).collect();
        for s in &unchecked {
            err(&format!(
                "{}: `--check`: scenario {} has no [expect] block (add one with mode and placement, or run without --check)\n",
                s.path.display(),
                s.name
            ));
        }
        if !unchecked.is_empty() {
            return Exit::BadInput;
        }
    }
    if let (Some(path), Some(b)) = (&args.baseline, &baseline) {
        if !scenarios.iter().any(|s| s.name == b.scenario) {
            let names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
            err(&format!(
                "{}: the baseline is the plan of scenario \"{}\", and no scenario run is named that (run: {}); \
                 pass the plan.json written for one of them\n",
                path.display(),
                b.scenario,
                names.join(", ")
            ));
            return Exit::BadInput;
        }
    }
    if let Some(path) = &args.baseline {
        if let Some(report_file) = baseline_among_reports(path, &args.out, &scenarios) {
            err(&format!(
                "{}: the baseline is a report file of this run's --out ({}), which the run \
                 replaces or removes with every report file of {}; copy the baseline elsewhere \
                 first, or pass another --out\n",
                path.display(),
                args.out.display(),
                report_file.parent().unwrap_or(&args.out).display()
            ));
            return Exit::BadInput;
        }
    }
    if let Some(message) = unwritable_out(&args.out, &scenarios) {
        err(&format!("error: {message}\n"));
        return Exit::BadInput;
    }
    if let Some(message) = unusable_cache_dir(&crate::measure::cache::default_cache_dir()) {
        err(&format!("error: {message}\n"));
        return Exit::BadInput;
    }
    let formats = report::Formats {
        markdown: args.format.contains(&Format::Md),
        csv: args.format.contains(&Format::Csv),
        json: args.format.contains(&Format::Json),
    };
    let options = PipelineOptions {
        quick: args.quick,
        fresh: args.fresh,
        seed: args.seed,
        ..PipelineOptions::default()
    };
    // A scenario that fails on this machine does not stop the others: each
    // is planned and reported on its own, and the run exits 4 at the end.
    let mut verdict = Exit::Success;
    let mut failed = Vec::new();
    for s in &scenarios {
        let baseline = args.baseline.as_deref().zip(baseline.as_ref());
        match run_one(s, args, &options, &formats, baseline) {
            Ok(Exit::Success) => {}
            Ok(other) => {
                if verdict == Exit::Success {
                    verdict = other;
                }
            }
            Err(message) => {
                err(&format!("{}: {message}\n", s.path.display()));
                failed.push(s.name.as_str());
            }
        }
    }
    if failed.is_empty() {
        return verdict;
    }
    if scenarios.len() > 1 {
        err(&format!(
            "error: {} of {} scenarios failed ({}); the others were run\n",
            failed.len(),
            scenarios.len(),
            failed.join(", ")
        ));
    }
    Exit::RunFailed
}

/// Why `--out` cannot hold this run's reports, found before anything is
/// measured (it had been found when the reports were written, after minutes
/// of measuring): `out`, or the nearest of its parents that exists, is not a
/// directory, or a scenario's report directory inside it is a file.
fn unwritable_out(out: &Path, scenarios: &[Scenario]) -> Option<String> {
    let existing = out
        .ancestors()
        .find(|p| p.as_os_str().is_empty() || p.exists())?;
    if !existing.as_os_str().is_empty() && !existing.is_dir() {
        return Some(if existing == out {
            format!(
                "--out {}: it exists and is not a directory; pass a directory (created if missing) for the reports",
                out.display()
            )
        } else {
            format!(
                "--out {}: {} is not a directory, so the report directory cannot be created there; pass another --out",
                out.display(),
                existing.display()
            )
        });
    }
    // `out` or the directory it would be created in must take new entries:
    // a read-only mount or a pseudo-filesystem such as /proc exists and is a
    // directory, and refuses them only when the reports are written.
    let parent = if existing.as_os_str().is_empty() {
        Path::new(".")
    } else {
        existing
    };
    if let Err(e) = probe_directory(parent) {
        return Some(format!(
            "--out {}: cannot create anything in {} ({e}); pass a directory the reports can be written to",
            out.display(),
            parent.display()
        ));
    }
    scenarios.iter().find_map(|s| {
        let dir = out.join(&s.name);
        (dir.exists() && !dir.is_dir()).then(|| {
            format!(
                "--out {}: {} (where the reports of scenario \"{}\" go) exists and is not a directory; pass another --out",
                out.display(),
                dir.display(),
                s.name
            )
        })
    })
}

/// Create and remove a directory in `dir`. A name already taken (another
/// run's probe, or one left by a run killed mid-probe) is no sign of an
/// unwritable directory: another name is tried.
fn probe_directory(dir: &Path) -> std::io::Result<()> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut last = None;
    for attempt in 0..8u32 {
        let probe = dir.join(format!(
            ".workbench-probe-{}-{nanos}-{attempt}",
            std::process::id()
        ));
        match std::fs::create_dir(&probe) {
            Ok(()) => {
                let _ = std::fs::remove_dir(&probe);
                return Ok(());
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no probe name was free")))
}

/// Why the measurement cache cannot be used: `$WORKBENCH_CACHE_DIR` (or the
/// default) exists and is not a directory.
fn unusable_cache_dir(dir: &Path) -> Option<String> {
    (dir.exists() && !dir.is_dir()).then(|| {
        format!(
            "the measurement cache {} ({} or the default) exists and is not a directory; point {} at a directory",
            dir.display(),
            crate::measure::cache::CACHE_DIR_ENV,
            crate::measure::cache::CACHE_DIR_ENV
        )
    })
}

/// The report file of `out` that `baseline` is, if any: a run writes or
/// removes every report file of each scenario's directory, so that baseline
/// would be lost (replaced by this run's plan, or removed with a format not
/// written).
fn baseline_among_reports(baseline: &Path, out: &Path, scenarios: &[Scenario]) -> Option<PathBuf> {
    scenarios
        .iter()
        .flat_map(|s| {
            report::writer::ALL_FILES
                .iter()
                .map(move |name| out.join(&s.name).join(name))
        })
        .find(|report_file| report_file.exists() && same_file(baseline, report_file))
}

/// Largest baseline plan.json read: a plan of every candidate a search can
/// make is a few megabytes.
const MAX_BASELINE_BYTES: u64 = 64 << 20;

fn read_baseline(path: &Path) -> Result<report::PlanFile, String> {
    let expected = "expected a plan.json from an earlier `workbench run`";
    let bytes = scenario::read_regular_file(path, MAX_BASELINE_BYTES).map_err(|e| match e {
        scenario::ReadFileError::Io(e) => format!("cannot read baseline plan ({e}); {expected}"),
        other => format!("baseline plan {other}; {expected}"),
    })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("baseline plan is not UTF-8 text; {expected}"))?;
    let plan = report::read_plan(&text).map_err(|e| format!("not a plan.json: {e}"))?;
    // `recommended` is null when no plan was feasible, but a file without the
    // key is not a plan.json (and would compare as "no plan" silently).
    let has_recommended = serde_json::from_str::<serde_json::Value>(&text)
        .is_ok_and(|v| v.get("recommended").is_some());
    if !has_recommended {
        return Err(format!(
            "not a plan.json: it has no `recommended` key (null when no plan was feasible); {expected}"
        ));
    }
    Ok(plan)
}

/// Measure, plan, write the reports and judge one scenario.
fn run_one(
    s: &Scenario,
    args: &RunArgs,
    options: &PipelineOptions,
    formats: &report::Formats,
    baseline: Option<(&Path, &report::PlanFile)>,
) -> Result<Exit, String> {
    let bar = progress_bar(args.quiet, &s.name);
    let label = format!("{}: ", s.name);
    let mut on_progress = advance_bar(&bar, &label);
    let measured =
        pipeline::measure_scenario(s, options, &mut on_progress).map_err(|e| e.to_string())?;
    if let Some(bar) = &bar {
        bar.set_message(format!("{}: simulating candidate plans", s.name));
    }
    let plan_options = pipeline::plan_options(s, options);
    let mut report = pipeline::plan_scenario(
        s,
        &measured,
        &WhatIf::default(),
        &plan_options,
        &humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    );
    drop(on_progress);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let mut verdict = Exit::Success;
    let mut lines = Vec::new();
    if let Some((path, old)) = baseline.filter(|(_, b)| b.scenario == s.name) {
        let tolerance = args.tolerance.unwrap_or(DEFAULT_TOLERANCE_PERCENT) / 100.0;
        let findings = report::compare_with_baseline(old, &report, tolerance);
        for f in &findings {
            if f.fails() {
                verdict = Exit::Failure;
                lines.push(format!(
                    "REGRESSION against {}: {}",
                    path.display(),
                    f.describe()
                ));
            } else if f.qualifies_comparison() || !args.quiet {
                // What the comparison rests on (another machine, seed or
                // version; a widened tolerance) is said even with --quiet.
                lines.push(format!("  baseline: {}", f.describe()));
            }
        }
        report.baseline = Some(report::BaselineComparison {
            baseline: path.display().to_string(),
            tolerance,
            findings,
        });
    }
    let written = report::write_report(&report, &args.out, formats).map_err(|e| e.to_string())?;
    match report.recommended.as_ref() {
        Some(p) => {
            let headline_latency = p.headline_latency(report.slo.as_ref());
            lines.insert(
                0,
                format!(
                    "{}: {} on {} ({}), {}, {} {}, {}/month",
                    s.name,
                    p.mode,
                    p.placement,
                    // On devices a plan runs on each user's own: no replica count.
                    if p.placement == crate::scenario::Placement::Edge {
                        p.target.clone()
                    } else {
                        format!("{} x{}", p.target, p.replicas)
                    },
                    p.build_text(),
                    headline_latency.0,
                    report::format::ms(headline_latency.1),
                    report::format::usd(p.cost_usd_per_month)
                ),
            );
        }
        None => {
            lines.insert(
                0,
                format!(
                    "{}: NO FEASIBLE PLAN: {}",
                    s.name,
                    report.rationale.join(" ")
                ),
            );
            // A CI job must not pass on a scenario nothing can serve.
            verdict = Exit::Failure;
        }
    }
    if args.check {
        if let (Some(expect), Some(p)) = (&s.expect, report.recommended.as_ref()) {
            if expect.mode != p.mode || expect.placement != p.placement {
                verdict = Exit::Failure;
                lines.push(format!(
                    "CHECK FAILED: expected {} on {}, planned {} on {}",
                    expect.mode, expect.placement, p.mode, p.placement
                ));
            } else {
                lines.push(format!(
                    "check ok: {} on {} as expected",
                    p.mode, p.placement
                ));
            }
        }
    }
    if !args.quiet {
        for r in &report.rationale {
            lines.push(format!("  {r}"));
        }
        for s in &measured.skipped {
            lines.push(format!("  not measured: {s}"));
        }
        if !measured.reduced.is_empty() {
            lines.push(format!(
                "  fewer samples (a call is slow for the budget): {}",
                measured.reduced.join("; ")
            ));
        }
        let measured_here = measured
            .kernels
            .iter()
            .filter(|k| k.source == report::FigureSource::Measured)
            .count();
        lines.push(format!(
            "  wrote {} file(s) under {} ({})",
            written.len(),
            args.out.join(&report.scenario).display(),
            measurement_summary(
                measured.timed,
                measured_here.saturating_sub(measured.timed),
                measured.skipped.len()
            )
        ));
    }
    let text = lines.join("\n");
    if verdict == Exit::Success {
        out(&format!("{text}\n"));
    } else {
        err(&format!("{text}\n"));
    }
    Ok(verdict)
}

/// What the measurements of a run came from: "3 measurement(s) timed, 5 from
/// the cache, 2 configuration(s) not measured". Configurations skipped (too
/// slow for the budget, not supported) were neither timed nor cached.
fn measurement_summary(timed: usize, cached: usize, skipped: usize) -> String {
    let mut parts = vec![format!("{timed} measurement(s) timed")];
    if cached > 0 {
        parts.push(format!("{cached} from the cache"));
    }
    if skipped > 0 {
        parts.push(format!(
            "{skipped} configuration(s) not measured, listed above"
        ));
    }
    parts.join(", ")
}

/// A measurement progress callback that advances `bar` (when there is one).
fn advance_bar<'a>(
    bar: &'a Option<indicatif::ProgressBar>,
    label: &'a str,
) -> impl FnMut(MeasureProgress) + 'a {
    move |p| match (bar, p) {
        (Some(bar), MeasureProgress::Planned { total, .. }) => bar.set_length(total as u64),
        (
            Some(bar),
            MeasureProgress::Finished {
                backend,
                precision,
                batch,
                ..
            },
        ) => {
            bar.inc(1);
            bar.set_message(format!("{label}{backend} {precision} batch {batch}"));
        }
        (
            Some(bar),
            MeasureProgress::SecondWindow {
                backend,
                precision,
                batch,
                ..
            },
        ) => bar.set_message(format!(
            "{label}{backend} {precision} batch {batch}, timed again later in the run"
        )),
        (
            Some(bar),
            p @ (MeasureProgress::Compiling { .. }
            | MeasureProgress::Compiled { .. }
            | MeasureProgress::Checking { .. }
            | MeasureProgress::Tuning { .. }),
        ) => {
            if let Some(text) = p.compile_text() {
                bar.set_message(format!("{label}{text}"));
            }
            // A slow compile also gets a line, which a log without the bar keeps.
            if let Some(line) = p.slow_compile() {
                bar.suspend(|| eprintln!("  {label}{line}"));
            }
        }
        _ => {}
    }
}

fn progress_bar(quiet: bool, name: &str) -> Option<indicatif::ProgressBar> {
    if quiet {
        return None;
    }
    let bar =
        indicatif::ProgressBar::with_draw_target(Some(0), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} measuring [{bar:30}] {pos}/{len} {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(name.to_string());
    Some(bar)
}

fn tune(args: &TuneArgs) -> Exit {
    if !(args.seconds.is_finite() && args.seconds > 0.0 && args.seconds <= 86_400.0) {
        err(&format!(
            "workbench tune: --seconds {} is not accepted: a time in (0, 86400]\n",
            args.seconds
        ));
        return Exit::BadInput;
    }
    let Ok(files) = expand(std::slice::from_ref(&args.scenario)) else {
        return Exit::BadInput;
    };
    let Ok(scenarios) = load_all(&files) else {
        return Exit::BadInput;
    };
    let allowance = std::time::Duration::from_secs_f64(args.seconds);
    let options = workbench_kernels::CompileOptions {
        precision: workbench_kernels::Precision::F32,
        threads: 1,
        ..Default::default()
    };
    for s in &scenarios {
        for variant in &s.model.variants {
            let Some(graph) = variant_graph(s, variant) else {
                return Exit::BadInput;
            };
            out(&format!(
                "{}/{}: tuning for up to {}\n",
                s.name,
                variant.name,
                report::format::duration_ns(args.seconds * 1e9)
            ));
            let tuner = crate::measure::model::autotuner_within(&graph, allowance);
            let trials_before = tuner.logged_trials(&graph, &options).ok();
            match workbench_kernels::Backend::compile(&tuner, &graph, &options) {
                Ok(exe) => {
                    out(&format!("{}\n", tuning_lines(&exe.lowered())));
                    // Timings of the tiles used before would stand otherwise;
                    // a search that added no trial changed no tile.
                    if tuner.logged_trials(&graph, &options).ok() != trials_before {
                        let cache_dir = crate::measure::cache::default_cache_dir();
                        let forgotten =
                            crate::measure::forget_autotuned(&cache_dir, graph.fingerprint());
                        if let Err(e) = forgotten {
                            err(&format!("workbench tune: {}: {e}\n", cache_dir.display()));
                            return Exit::RunFailed;
                        }
                    }
                }
                Err(e) => {
                    err(&format!(
                        "{}: tuning `{}`: {e}\n",
                        s.path.display(),
                        variant.name
                    ));
                    return Exit::RunFailed;
                }
            }
        }
    }
    out(&format!(
        "Tuning log: {} (read by `workbench run` and the TUI)\n",
        workbench_kernels::backends::autotuned::default_log_path().display()
    ));
    Exit::Success
}

/// The graph of a scenario's model variant (the pipeline's weights), or
/// `None` after saying why it cannot be built.
fn variant_graph(
    s: &Scenario,
    variant: &scenario::ModelVariant,
) -> Option<workbench_kernels::Graph> {
    match workbench_kernels::Graph::from_spec(&variant.spec, MODEL_SEED) {
        Ok(g) => Some(g),
        Err(e) => {
            err(&format!(
                "{}: model variant `{}`: {e}\n",
                s.path.display(),
                variant.name
            ));
            None
        }
    }
}

/// The autotuner's summary from an autotuned program's lowered text: its
/// header and one line per GEMM shape.
fn tuning_lines(lowered: &str) -> String {
    lowered
        .lines()
        .filter(|l| l.starts_with("autotuned:") || l.trim_start().starts_with("gemm "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn bench(args: &BenchArgs) -> Exit {
    let mut options = crate::measure::bench::BenchOptions {
        quick: args.quick,
        fresh: args.fresh,
        ..Default::default()
    };
    if let Some(path) = &args.scenario {
        let Ok(files) = expand(std::slice::from_ref(path)) else {
            return Exit::BadInput;
        };
        let Ok(scenarios) = load_all(&files) else {
            return Exit::BadInput;
        };
        // One scenario's reference variant is measured: a directory of
        // several would silently measure only its first.
        if scenarios.len() > 1 {
            err(&format!(
                "workbench bench: {} holds {} scenarios ({}); bench measures one scenario's model: name one file\n",
                path.display(),
                scenarios.len(),
                scenarios
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            return Exit::BadInput;
        }
        // The reference variant of the scenario, projected onto its targets.
        if let Some(s) = scenarios.first() {
            let Some(variant) = s.model.reference_variant() else {
                return Exit::BadInput;
            };
            let Some(graph) = variant_graph(s, variant) else {
                return Exit::BadInput;
            };
            options.scenario = Some(crate::measure::bench::BenchScenario {
                name: format!("{}/{}", s.name, variant.name),
                graph,
                targets: s
                    .targets
                    .cloud
                    .iter()
                    .chain(&s.targets.edge)
                    .map(|t| t.spec.clone())
                    .collect(),
            });
        }
    }
    let bar = progress_bar(args.json, "bench");
    let mut on_progress = advance_bar(&bar, "");
    let report = match crate::measure::bench::run(&options, &mut on_progress) {
        Ok(r) => r,
        Err(e) => {
            err(&format!("workbench bench: {e}\n"));
            return Exit::RunFailed;
        }
    };
    drop(on_progress);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if args.json {
        match report.to_json() {
            Ok(json) => out(&format!("{json}\n")),
            Err(e) => {
                err(&format!("workbench bench: {e}\n"));
                return Exit::RunFailed;
            }
        }
    } else {
        out(&report.render_table());
    }
    Exit::Success
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
        assert!(parse_percent("5%%").is_err());
        assert_eq!(parse_percent(" 7 % "), Ok(7.0));
    }

    /// Skipped configurations were neither timed nor cached.
    #[test]
    fn the_measurement_summary_tells_skipped_from_cached() {
        assert_eq!(
            measurement_summary(1, 0, 3),
            "1 measurement(s) timed, 3 configuration(s) not measured, listed above"
        );
        assert_eq!(
            measurement_summary(2, 5, 0),
            "2 measurement(s) timed, 5 from the cache"
        );
        assert_eq!(measurement_summary(4, 0, 0), "4 measurement(s) timed");
    }

    fn shipped(name: &str) -> Scenario {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join(format!("{name}.toml"));
        scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A baseline inside the report directory a run rewrites would be lost
    /// (removed with a format not written, or replaced): found, by any
    /// spelling of its path; one elsewhere is not.
    #[test]
    fn a_baseline_among_the_run_s_report_files_is_found() {
        let out = tempfile::tempdir().expect("temp dir");
        let s = shipped("predictive-text");
        let dir = out.path().join(&s.name);
        std::fs::create_dir_all(&dir).expect("report dir");
        std::fs::write(dir.join("plan.json"), "{}").expect("baseline");
        std::fs::write(out.path().join("kept.json"), "{}").expect("baseline elsewhere");
        let scenarios = vec![s];
        let inside = out
            .path()
            .join(".")
            .join("predictive-text")
            .join("plan.json");
        assert_eq!(
            baseline_among_reports(&inside, out.path(), &scenarios),
            Some(dir.join("plan.json"))
        );
        let elsewhere = out.path().join("kept.json");
        assert_eq!(
            baseline_among_reports(&elsewhere, out.path(), &scenarios),
            None
        );
        // Another scenario's directory is not rewritten by this run.
        let other = vec![shipped("hotel-ranking")];
        assert_eq!(baseline_among_reports(&inside, out.path(), &other), None);
    }

    /// `run --baseline` inside `--out` is refused before anything is measured
    /// or written, and the baseline stays.
    #[test]
    fn run_refuses_a_baseline_it_would_remove() {
        let out = tempfile::tempdir().expect("temp dir");
        let dir = out.path().join("predictive-text");
        std::fs::create_dir_all(&dir).expect("report dir");
        let mut baseline = report::fixtures::sample_report();
        baseline.scenario = "predictive-text".to_string();
        let plan = report::plan_json(&baseline);
        std::fs::write(dir.join("plan.json"), &plan).expect("baseline");
        let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/predictive-text.toml");
        let cli = Cli::try_parse_from([
            "workbench".as_ref(),
            "run".as_ref(),
            scenario.as_os_str(),
            "--quiet".as_ref(),
            "--format".as_ref(),
            "md".as_ref(),
            "--out".as_ref(),
            out.path().as_os_str(),
            "--baseline".as_ref(),
            dir.join("plan.json").as_os_str(),
        ] as [&std::ffi::OsStr; 10])
        .expect("parses");
        assert_eq!(run(cli), Exit::BadInput);
        assert_eq!(
            std::fs::read_to_string(dir.join("plan.json")).expect("baseline kept"),
            plan
        );
    }

    /// An `--out` that cannot hold the reports is found before anything is
    /// measured: a file, a file among its parents, or a file where a
    /// scenario's report directory goes.
    #[test]
    fn an_out_that_cannot_hold_the_reports_is_refused_up_front() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let scenarios = vec![shipped("predictive-text")];
        let file = tmp.path().join("afile");
        std::fs::write(&file, "x").expect("file");
        let why = unwritable_out(&file, &scenarios).expect("a file is refused");
        assert!(why.contains("exists and is not a directory"), "{why}");
        let below = file.join("reports");
        let why = unwritable_out(&below, &scenarios).expect("a file parent is refused");
        assert!(why.contains("afile is not a directory"), "{why}");
        let out = tmp.path().join("out");
        std::fs::create_dir_all(&out).expect("out");
        assert_eq!(unwritable_out(&out, &scenarios), None);
        assert_eq!(unwritable_out(&out.join("new/deeper"), &scenarios), None);
        assert_eq!(
            unwritable_out(Path::new("reports-not-there"), &scenarios),
            None
        );
        // A directory that exists but takes no new entries (a pseudo-filesystem).
        if Path::new("/proc/self").is_dir() {
            let why = unwritable_out(Path::new("/proc/workbench-reports"), &scenarios)
                .expect("/proc is refused");
            assert!(why.contains("cannot create anything in /proc"), "{why}");
        }
        std::fs::write(out.join("predictive-text"), "x").expect("file");
        let why = unwritable_out(&out, &scenarios).expect("a file report dir is refused");
        assert!(why.contains("scenario \"predictive-text\""), "{why}");
        assert!(unusable_cache_dir(&file).is_some());
        assert_eq!(unusable_cache_dir(&out), None);

        // Through `run`: exit 2, and nothing written.
        let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/predictive-text.toml");
        let cli = Cli::try_parse_from([
            "workbench".as_ref(),
            "run".as_ref(),
            scenario.as_os_str(),
            "--quiet".as_ref(),
            "--out".as_ref(),
            below.as_os_str(),
        ] as [&std::ffi::OsStr; 6])
        .expect("parses");
        assert_eq!(run(cli), Exit::BadInput);
        assert_eq!(std::fs::read_to_string(&file).expect("kept"), "x");
    }

    /// `bench DIR` with several scenarios would measure only the first: refused.
    #[test]
    fn bench_refuses_a_directory_of_several_scenarios() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        assert!(scenario::scenarios_in_dir(&dir).len() > 1);
        let args = BenchArgs {
            scenario: Some(dir),
            json: true,
            quick: true,
            fresh: false,
        };
        assert_eq!(bench(&args), Exit::BadInput);
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
        assert_eq!(args.tolerance, Some(5.0));
        assert!(args.quick && args.fresh && args.quiet && args.check);
    }
}
