//! The real `workbench` binary against shipped scenarios and fixtures:
//! exit codes, error positions and messages, and that nothing is written on
//! bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run the binary from the repository root with a cache of the tests' own:
/// measurements timed while other tests run (and with `--quick`) must not
/// land in the repository's `.workbench-cache/`, where a real run would reuse them.
fn workbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_workbench"))
        .args(args)
        .current_dir(root())
        .env(
            "WORKBENCH_CACHE_DIR",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-cache"),
        )
        .output()
        .expect("the workbench binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn files_with_extension(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("fixture directory exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    files.sort();
    files
}

/// A fresh, not-yet-existing directory under cargo's per-test temp dir.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn assert_no_panic(out: &Output) {
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains("panicked"),
        "the binary panicked:\n{stderr}"
    );
}

#[test]
fn every_shipped_scenario_validates_and_has_an_expectation() {
    let files = files_with_extension(&root().join("scenarios"), "toml");
    assert!(
        files.len() >= 10,
        "at least 10 shipped scenarios, found {}",
        files.len()
    );
    let mut quadrants = std::collections::BTreeSet::new();
    for file in &files {
        let scenario = workbench::scenario::load(file)
            .unwrap_or_else(|e| panic!("{} does not validate:\n{e}", file.display()));
        let expect = scenario
            .expect
            .unwrap_or_else(|| panic!("{} has no [expect] block", file.display()));
        quadrants.insert((expect.mode.name(), expect.placement.name()));
    }
    for needed in [
        ("batch", "cloud"),
        ("online-http", "cloud"),
        ("online-stream", "cloud"),
        ("online-http", "edge"),
        ("batch", "edge"),
        ("hybrid", "cloud"),
        ("online-http", "hybrid"),
    ] {
        assert!(
            quadrants.contains(&needed),
            "no shipped scenario expects {needed:?}; have {quadrants:?}"
        );
    }
    let out = workbench(&["validate", "scenarios"]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains(&format!("{} scenario(s) valid", files.len())));
    assert!(stdout.contains("FLOPs/sample"));
}

#[test]
fn valid_fixtures_validate() {
    let out = workbench(&["validate", "tests/fixtures/valid"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("500 arrivals"));
}

/// Each `tests/fixtures/invalid/X.toml` has `X.expected`: one line
/// `LINE:COL|KEY|fragment` per error the file must report, and no others.
#[test]
fn invalid_fixtures_exit_2_with_position_key_and_message() {
    let dir = root().join("tests/fixtures/invalid");
    let fixtures = files_with_extension(&dir, "toml");
    assert!(fixtures.len() >= 15, "found {} fixtures", fixtures.len());
    for fixture in fixtures {
        let rel = fixture.strip_prefix(root()).expect("under the root");
        let rel = rel.to_str().expect("utf-8 path");
        let expected = std::fs::read_to_string(fixture.with_extension("expected"))
            .unwrap_or_else(|_| panic!("{rel} has no .expected file"));
        let expected: Vec<&str> = expected
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .collect();
        let out = workbench(&["validate", rel]);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(2), "{rel}: {}", text(&out.stderr));
        let stderr = text(&out.stderr);
        let reported: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with(&format!("{rel}:")))
            .collect();
        for want in &expected {
            let mut parts = want.splitn(3, '|');
            let (pos, key, fragment) = (
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            let prefix = if key.is_empty() {
                format!("{rel}:{pos}: ")
            } else {
                format!("{rel}:{pos}: {key}: ")
            };
            assert!(
                reported
                    .iter()
                    .any(|line| line.starts_with(&prefix) && line.contains(fragment)),
                "{rel}: expected an error `{prefix}...{fragment}...`, got:\n{stderr}"
            );
        }
        assert_eq!(
            reported.len(),
            expected.len(),
            "{rel}: reported errors differ from the .expected file:\n{stderr}"
        );
    }
}

#[test]
fn bad_input_to_run_writes_nothing_under_out() {
    let out_dir = scratch_dir("bad-run");
    let out_str = out_dir.to_str().expect("utf-8 path");
    for bad in [
        "tests/fixtures/invalid/negative-rate.toml",
        "tests/fixtures/invalid/binary-garbage.toml",
        "tests/fixtures/invalid/empty-file.toml",
        "no/such/file.toml",
    ] {
        let out = workbench(&["run", bad, "--out", out_str]);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", text(&out.stderr));
        assert!(!out_dir.exists(), "{bad}: run wrote {}", out_dir.display());
    }
    // One bad file among good ones fails the whole run before anything is written.
    let out = workbench(&[
        "run",
        "scenarios",
        "tests/fixtures/invalid/unknown-key-typo.toml",
        "--out",
        out_str,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!out_dir.exists());
}

#[test]
fn run_on_a_valid_scenario_plans_and_writes_every_export() {
    let out_dir = scratch_dir("good-run");
    let out = workbench(&[
        "run",
        "scenarios/wake-word.toml",
        "--out",
        out_dir.to_str().expect("utf-8 path"),
        "--quick",
        "--seed",
        "3",
        "--check",
    ]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("wake-word: online-http on edge"),
        "{}",
        text(&out.stdout)
    );
    for file in [
        "plan.json",
        "report.md",
        "candidates.csv",
        "kernels.csv",
        "latency.csv",
        "pareto.svg",
        "latency-cdf.svg",
        "roofline.svg",
    ] {
        assert!(
            out_dir.join("wake-word").join(file).is_file(),
            "{file} missing"
        );
    }
}

/// A scenario nothing can serve fails `run` (exit 1) with or without
/// `--check`, and still gets its report saying why.
#[test]
fn run_exits_1_when_no_plan_is_feasible() {
    let dir = scratch_dir("infeasible");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let text_in =
        std::fs::read_to_string(root().join("scenarios/wake-word.toml")).expect("shipped scenario");
    let impossible = text_in.replace("latency_ms = 100 ", "latency_ms = 0.000001 ");
    assert_ne!(impossible, text_in, "the SLO line moved");
    let scenario = dir.join("wake-word.toml");
    std::fs::write(&scenario, impossible).expect("scenario written");
    let out_dir = dir.join("reports");
    let out = workbench(&[
        "run",
        scenario.to_str().expect("utf-8 path"),
        "--out",
        out_dir.to_str().expect("utf-8 path"),
        "--quick",
    ]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    // A failing verdict goes to stderr, with the reasons.
    assert!(
        text(&out.stderr).contains("wake-word: NO FEASIBLE PLAN"),
        "{}",
        text(&out.stderr)
    );
    let plan = std::fs::read_to_string(out_dir.join("wake-word").join("plan.json"))
        .expect("the report is written");
    assert!(plan.contains("\"recommended\": null"), "{plan}");
}

/// Two scenarios of one run with one name would write one report directory:
/// refused before anything is measured or written.
#[test]
fn two_scenarios_with_one_name_are_refused() {
    let dir = scratch_dir("same-name");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let shipped =
        std::fs::read_to_string(root().join("scenarios/wake-word.toml")).expect("shipped scenario");
    std::fs::write(dir.join("a.toml"), &shipped).expect("a written");
    // The natural way to try a change: a copy with one figure edited.
    let busier = shipped.replace("rate_per_s = 1_000_000", "rate_per_s = 2_000_000");
    assert_ne!(busier, shipped, "the rate line moved");
    std::fs::write(dir.join("b.toml"), busier).expect("b written");
    let out_dir = dir.join("reports");
    for args in [
        vec!["validate", dir.to_str().expect("utf-8 path")],
        vec![
            "run",
            dir.to_str().expect("utf-8 path"),
            "--out",
            out_dir.to_str().expect("utf-8 path"),
            "--quick",
        ],
    ] {
        let out = workbench(&args);
        assert_no_panic(&out);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("a.toml") && stderr.contains("b.toml"),
            "{stderr}"
        );
        assert!(stderr.contains("both named \"wake-word\""), "{stderr}");
    }
    assert!(!out_dir.exists(), "nothing is written");
}

/// A baseline from another scenario would compare nothing: refused rather
/// than silently switching the regression gate off.
#[test]
fn a_baseline_of_another_scenario_is_refused() {
    let dir = scratch_dir("other-baseline");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let baseline = dir.join("plan.json");
    let plan = workbench::report::plan_json(&workbench::report::fixtures::sample_report());
    std::fs::write(&baseline, plan).expect("baseline written");
    let out_dir = dir.join("reports");
    let out = workbench(&[
        "run",
        "scenarios/wake-word.toml",
        "--baseline",
        baseline.to_str().expect("utf-8 path"),
        "--out",
        out_dir.to_str().expect("utf-8 path"),
        "--quick",
    ]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the baseline is the plan of scenario \"fraud-scoring\"")
            && stderr.contains("wake-word"),
        "{stderr}"
    );
    assert!(!out_dir.exists(), "nothing is written");
}

#[test]
fn missing_file_and_empty_directory_exit_2() {
    let out = workbench(&["validate", "no/such/scenario.toml"]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no/such/scenario.toml"));

    let empty = scratch_dir("empty");
    std::fs::create_dir_all(&empty).expect("create scratch dir");
    std::fs::write(empty.join("notes.txt"), "not a scenario").expect("write");
    for command in ["validate", "run", "list"] {
        let out = workbench(&[command, empty.to_str().expect("utf-8 path")]);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(2), "{command}");
        assert!(
            text(&out.stderr).contains("contains no scenario files"),
            "{command}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn usage_errors_exit_2_and_help_documents_exit_codes() {
    for args in [
        &["run"][..],
        &["run", "scenarios", "--format", "pdf"],
        &["run", "scenarios", "--tolerance", "lots"],
        &["--no-such-flag"],
        &["frobnicate"],
    ] {
        let out = workbench(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    let out = workbench(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    for needle in [
        "Exit codes",
        "0  success",
        "1  no feasible plan",
        "2  bad input",
        "3  a stage",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
    let out = workbench(&["run", "--help"]);
    assert!(text(&out.stdout).contains("--baseline"));
}

#[test]
fn no_arguments_without_a_terminal_says_what_to_run_instead() {
    // The TUI needs a terminal; under a test harness there is none.
    let out = workbench(&[]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("workbench run scenarios/"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn list_prints_one_line_per_scenario() {
    let out = workbench(&["list"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let count = files_with_extension(&root().join("scenarios"), "toml").len();
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), count, "{stdout}");
    assert!(stdout.contains("card-fraud-stream") && stdout.contains("expect online-stream/cloud"));

    let out = workbench(&["list", "tests/fixtures/invalid"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stdout).contains("INVALID"));
}

#[test]
fn bench_prints_hardware_and_kernel_records_as_json() {
    let out = workbench(&["bench", "scenarios/wake-word.toml", "--json", "--quick"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value =
        serde_json::from_str(&text(&out.stdout)).expect("bench --json prints JSON");
    assert!(json["hardware"]["peak_gflops_f32"]
        .as_f64()
        .is_some_and(|p| p > 0.0));
    let kernels = json["kernels"].as_array().expect("kernels array");
    for field in [
        "backend",
        "precision",
        "workload",
        "shape",
        "batch",
        "median_ns",
        "gflops",
    ] {
        assert!(
            kernels.iter().all(|k| !k[field].is_null()),
            "a kernel record lacks {field}"
        );
    }
    assert!(kernels.iter().any(|k| k["workload"] == "sgemm"));
    let out = workbench(&["bench", "tests/fixtures/invalid/empty-file.toml"]);
    assert_eq!(out.status.code(), Some(2));
}

/// An `--out` that is a regular file is bad input, found before anything is
/// measured (exit 2); reports that cannot be written for another reason are
/// a failed run (exit 4), not bad input and not a verdict on the plan.
#[test]
fn a_run_that_cannot_write_its_reports_exits_2_or_4() {
    let dir = scratch_dir("unwritable");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let blocker = dir.join("reports");
    std::fs::write(&blocker, "not a directory").expect("blocker written");
    let out = workbench(&[
        "run",
        "scenarios/wake-word.toml",
        "--out",
        blocker.to_str().expect("utf-8 path"),
        "--quick",
        "--quiet",
    ]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--out"), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(&blocker).expect("still a file"),
        "not a directory"
    );
    // A directory nothing can be created in (procfs refuses even root): also
    // found before anything is measured.
    if Path::new("/proc/self").exists() {
        let out = workbench(&[
            "run",
            "scenarios/wake-word.toml",
            "--out",
            "/proc/workbench-reports",
            "--quick",
            "--quiet",
        ]);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("cannot create anything in /proc"),
            "{}",
            text(&out.stderr)
        );
    }
    // A report file that cannot be replaced (a directory in its place) is
    // found only when the reports are written: a failed run.
    let reports = dir.join("reports-dir");
    std::fs::create_dir_all(reports.join("wake-word/report.md")).expect("blocker");
    let out = workbench(&[
        "run",
        "scenarios/wake-word.toml",
        "--out",
        reports.to_str().expect("utf-8 path"),
        "--quick",
        "--quiet",
    ]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("wake-word.toml"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `tune` searches the tiles of each variant's GEMM shapes, logs them for
/// `run`, and drops the cached timings of the tiles used before; a second
/// tune resumes from (or reuses) the log.
#[test]
fn tune_logs_tiles_for_runs_and_forgets_stale_autotuned_timings() {
    let cache = scratch_dir("tune-cache");
    let scenario = "tests/fixtures/valid/bursty-transformer-classifier.toml";
    let s = workbench::scenario::load(&root().join(scenario)).expect("fixture loads");
    let graph = workbench_kernels::Graph::from_spec(
        &s.model.variants[0].spec,
        workbench::pipeline::MODEL_SEED,
    )
    .expect("graph");
    let measure = cache.join("measure");
    std::fs::create_dir_all(&measure).expect("cache dir");
    let stale = measure.join(format!(
        "machine-{:016x}-k1-autotuned-f32-b1.json",
        graph.fingerprint()
    ));
    let other = measure.join(format!(
        "machine-{:016x}-k1-tiled-f32-b1.json",
        graph.fingerprint()
    ));
    for f in [&stale, &other] {
        std::fs::write(f, "{}").expect("entry written");
    }
    let tune = || {
        Command::new(env!("CARGO_BIN_EXE_workbench"))
            .args(["tune", scenario, "--seconds", "1"])
            .current_dir(root())
            .env("WORKBENCH_CACHE_DIR", &cache)
            .output()
            .expect("the workbench binary runs")
    };
    let first = tune();
    assert_no_panic(&first);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let stdout = text(&first.stdout);
    assert!(
        stdout.contains("gemm ") && stdout.contains("trials"),
        "{stdout}"
    );
    assert!(stdout.contains("tuning.jsonl"), "{stdout}");
    assert!(!stale.exists(), "the autotuned timing is forgotten");
    assert!(other.exists(), "other backends' timings stay");
    let logged = std::fs::read_to_string(cache.join("tuning.jsonl")).expect("a tuning log");
    assert!(logged.lines().count() > 0);
    // The second search starts from the first's trials. It drops the cached
    // autotuned timing again only if it added trials: with none, no tile
    // changed.
    std::fs::write(&stale, "{}").expect("entry written");
    let second = text(&tune().stdout);
    assert!(
        second.contains("(from log)") || !second.contains(" 0 logged"),
        "{second}"
    );
    let logged_again = std::fs::read_to_string(cache.join("tuning.jsonl")).expect("a tuning log");
    let added_trials = logged_again.lines().count() > logged.lines().count();
    assert_eq!(stale.exists(), !added_trials, "{second}");
    let out = workbench(&["tune", scenario, "--seconds", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--seconds"));
    let _ = std::fs::remove_dir_all(&cache);
}

/// `workbench` with `args`, killed (and the test failed) if it has not
/// finished within `seconds`: for inputs that used to block forever.
fn workbench_within(args: &[&str], seconds: u64) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_workbench"))
        .args(args)
        .current_dir(root())
        .env(
            "WORKBENCH_CACHE_DIR",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-cache"),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the workbench binary runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while child.try_wait().expect("waitable").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("workbench {args:?} did not finish within {seconds} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// A FIFO at `path`, or `false` where `mkfifo` is missing (the test is skipped).
fn make_fifo(path: &Path) -> bool {
    match Command::new("mkfifo").arg(path).status() {
        Ok(status) => {
            assert!(status.success(), "mkfifo {} failed", path.display());
            true
        }
        Err(_) => {
            eprintln!("no mkfifo here: skipped");
            false
        }
    }
}

/// Files that are not regular files (a FIFO as scenario or baseline, a
/// dangling symbolic link in a directory) are refused with what they are,
/// at once: opening a FIFO would wait for a writer forever.
#[test]
fn files_that_are_not_regular_files_are_refused_without_blocking() {
    let dir = scratch_dir("fifo");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let fifo = dir.join("pipe.toml");
    if !make_fifo(&fifo) {
        return;
    }
    let fifo_str = fifo.to_str().expect("utf-8 path");
    for args in [
        vec!["validate", fifo_str],
        vec!["validate", dir.to_str().expect("utf-8 path")],
        vec!["list", dir.to_str().expect("utf-8 path")],
    ] {
        let out = workbench_within(&args, 30);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        if args[0] == "validate" {
            assert!(
                all.contains("is a named pipe (FIFO), not a regular file"),
                "{all}"
            );
        } else {
            assert!(all.contains("INVALID"), "{all}");
        }
    }
    let out_dir = dir.join("reports");
    let out = workbench_within(
        &[
            "run",
            "scenarios/wake-word.toml",
            "--baseline",
            fifo_str,
            "--out",
            out_dir.to_str().expect("utf-8 path"),
            "--quick",
        ],
        30,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("baseline plan is a named pipe (FIFO)"),
        "{}",
        text(&out.stderr)
    );
    assert!(!out_dir.exists(), "nothing is written");

    #[cfg(unix)]
    {
        let dangling = scratch_dir("dangling");
        std::fs::create_dir_all(&dangling).expect("scratch dir");
        std::os::unix::fs::symlink("/nonexistent/x.toml", dangling.join("b.toml"))
            .expect("symlink");
        let out = workbench(&["validate", dangling.to_str().expect("utf-8 path")]);
        assert_eq!(out.status.code(), Some(2));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(
                "b.toml:1:1: is a symbolic link to `/nonexistent/x.toml`, which does not exist"
            ),
            "{stderr}"
        );
    }
}

/// Options that would let a CI job believe it checks something are refused
/// before anything is measured: `--check` on a scenario without [expect],
/// `--tolerance` without `--baseline`, a baseline without `recommended`.
#[test]
fn options_that_would_check_nothing_are_refused() {
    let dir = scratch_dir("check-nothing");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let out_dir = dir.join("reports");
    let out_str = out_dir.to_str().expect("utf-8 path");
    let no_expect = "tests/fixtures/valid/bursty-transformer-classifier.toml";
    let out = workbench(&[
        "run",
        no_expect,
        "scenarios/wake-word.toml",
        "--check",
        "--out",
        out_str,
        "--quick",
    ]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr)
            .contains("`--check`: scenario bursty-transformer-classifier has no [expect] block"),
        "{}",
        text(&out.stderr)
    );

    let out = workbench(&[
        "run",
        "scenarios/wake-word.toml",
        "--tolerance",
        "5%",
        "--out",
        out_str,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--baseline"),
        "{}",
        text(&out.stderr)
    );

    let plan = workbench::report::plan_json(&workbench::report::fixtures::sample_report());
    let mut value: serde_json::Value = serde_json::from_str(&plan).expect("plan.json parses");
    value
        .as_object_mut()
        .expect("an object")
        .remove("recommended");
    let baseline = dir.join("no-recommended.json");
    std::fs::write(&baseline, value.to_string()).expect("baseline written");
    let out = workbench(&[
        "run",
        "scenarios/wake-word.toml",
        "--baseline",
        baseline.to_str().expect("utf-8 path"),
        "--out",
        out_str,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("has no `recommended` key"),
        "{}",
        text(&out.stderr)
    );
    assert!(!out_dir.exists(), "nothing is written");
}

/// One file given twice is named as such, not as two scenarios with one name.
#[test]
fn a_file_given_twice_is_called_so() {
    let out = workbench(&[
        "validate",
        "scenarios/wake-word.toml",
        "./scenarios/wake-word.toml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("./scenarios/wake-word.toml is given twice (as scenarios/wake-word.toml and ./scenarios/wake-word.toml)"),
        "{stderr}"
    );
}

/// Escape sequences in a scenario never reach the terminal raw: refused in
/// names and descriptions, and escaped where a refused value is quoted.
#[test]
fn control_characters_in_a_scenario_never_reach_the_terminal() {
    let dir = scratch_dir("control");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let shipped =
        std::fs::read_to_string(root().join("scenarios/wake-word.toml")).expect("shipped scenario");
    let hostile = shipped
        .replacen(
            "description = \"",
            "description = \"\\u001b[2J\\u001b]0;pwned\\u0007",
            1,
        )
        .replacen("family = \"", "family = \"\\u001b[31m", 1);
    assert_ne!(hostile, shipped);
    std::fs::write(dir.join("hostile.toml"), hostile).expect("written");
    for command in ["validate", "list"] {
        let out = workbench(&[command, dir.to_str().expect("utf-8 path")]);
        assert_eq!(out.status.code(), Some(2), "{command}");
        for stream in [&out.stdout, &out.stderr] {
            assert!(
                !stream.iter().any(|&b| b == 0x1b || b == 0x07),
                "{command} printed a control character: {:?}",
                text(stream)
            );
        }
        if command == "validate" {
            let stderr = text(&out.stderr);
            assert!(
                stderr.contains("description: control character"),
                "{stderr}"
            );
            assert!(stderr.contains("\\u{1b}[31m"), "{stderr}");
        }
    }
}

/// A scenario that fails while its reports are written does not stop the
/// others: they are run and written, the failure is named, and the run
/// exits 4 (the scenarios after a failure had silently not been run).
#[test]
fn a_scenario_that_fails_does_not_stop_the_others() {
    let dir = scratch_dir("one-fails");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let shipped =
        std::fs::read_to_string(root().join("scenarios/wake-word.toml")).expect("shipped scenario");
    std::fs::write(dir.join("a.toml"), &shipped).expect("a written");
    let renamed = shipped.replace("name = \"wake-word\"", "name = \"wake-word-copy\"");
    assert_ne!(renamed, shipped, "the name line moved");
    std::fs::write(dir.join("b.toml"), renamed).expect("b written");
    let out_dir = dir.join("reports");
    // The first scenario's report.md cannot be replaced: it is a directory.
    std::fs::create_dir_all(out_dir.join("wake-word/report.md")).expect("blocker");
    let out = workbench(&[
        "run",
        dir.to_str().expect("utf-8 path"),
        "--out",
        out_dir.to_str().expect("utf-8 path"),
        "--quick",
    ]);
    assert_no_panic(&out);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("1 of 2 scenarios failed (wake-word); the others were run"),
        "{stderr}"
    );
    assert!(
        out_dir.join("wake-word-copy/plan.json").is_file(),
        "the second scenario is written: {stderr}"
    );
    assert!(!out_dir.join("wake-word/plan.json").exists());
}
