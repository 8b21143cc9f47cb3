//! How the data files write numbers and absent values: every figure rounded
//! to 10 significant digits in plain decimal, the same in `candidates.csv`
//! and `plan.json`, and in `report.md` (shown rounded further); an absent
//! value is a null cell, never `""`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::{CsvReadOptions, DataFrame, SerReader};
use workbench::report::fixtures::sample_report;
use workbench::report::{render_files, write_report, Formats, Report};

/// The sample report with figures carrying the noise of float arithmetic,
/// as the reviewer found them in a real run.
fn noisy_report() -> Report {
    let mut report = sample_report();
    let plan = report.recommended.as_mut().expect("a recommended plan");
    plan.throughput_rps = 4000.0000000000005;
    plan.latency_ms.p90 = 8.970239000000001;
    plan.latency_ms.p999 = 267.64902300000006;
    // Just below $387.185: rounded to cents once it is $387.18; the file's
    // 10 digits (387.185) rounded to cents, $387.19.
    plan.cost_usd_per_month = 387.184999999999;
    let alternative = &mut report.alternatives[0].plan;
    alternative.cost_usd_per_month = 387.18148799999994;
    alternative.cost_usd_per_million = 1.9955617002560504e-7;
    report.kernels[0].p99_ns = 3466199.6999999997;
    report.latency_cdfs[0].points[1].latency_ms = 12.300000000000002;
    report
}

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wb-export-numbers-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn read(dir: &Path, report: &Report, file: &str) -> String {
    std::fs::read_to_string(dir.join(&report.scenario).join(file)).expect("written")
}

fn read_csv(path: PathBuf) -> DataFrame {
    CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(path))
        .expect("opens")
        .finish()
        .expect("reads")
}

/// Number tokens of a CSV line or a pretty-printed JSON line (not quoted).
fn number_tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for line in text.lines() {
        // A JSON line `"key": value,` or `value,`; a CSV line's cells.
        let value_part = match line.trim().split_once("\": ") {
            Some((_, value)) => value.to_string(),
            None => line.trim().to_string(),
        };
        if value_part.starts_with('"') && !line.contains(',') {
            continue;
        }
        for cell in value_part.split(',') {
            let cell = cell.trim().trim_end_matches(['}', ']']).trim();
            let numeric = !cell.is_empty()
                && cell
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | 'e' | 'E' | '+'))
                && cell.chars().any(|c| c.is_ascii_digit());
            if numeric && cell.parse::<f64>().is_ok() {
                tokens.push(cell.to_string());
            }
        }
    }
    tokens
}

fn significant_digits(token: &str) -> usize {
    let mantissa = token.split(['e', 'E']).next().unwrap_or(token);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let trimmed = digits.trim_start_matches('0').trim_end_matches('0');
    trimmed.len()
}

fn assert_plain_and_rounded(file: &str, text: &str) {
    let tokens = number_tokens(text);
    assert!(!tokens.is_empty(), "{file}: no numbers found");
    for token in tokens {
        assert!(
            !token.contains(['e', 'E']),
            "{file}: {token} is in scientific notation"
        );
        assert!(
            significant_digits(&token) <= 10,
            "{file}: {token} has more than 10 significant digits"
        );
    }
}

/// The reviewer's figures are written rounded, in plain decimal, in every
/// data file; a float whose noise made it 4000.0000000000005 reads 4000.
#[test]
fn noisy_figures_are_written_rounded_in_plain_decimal() {
    let report = noisy_report();
    let dir = out_dir("rounded");
    write_report(&report, &dir, &Formats::all()).expect("written");
    let json = read(&dir, &report, "plan.json");
    for needle in [
        "\"throughput_rps\": 4000.0,",
        "\"p90\": 8.970239,",
        "\"p999\": 267.649023",
        "\"cost_usd_per_month\": 387.185,",
        "\"cost_usd_per_month\": 387.181488,",
        "\"cost_usd_per_million\": 0.00000019955617,",
    ] {
        assert!(json.contains(needle), "plan.json lacks {needle}");
    }
    for noise in ["4000.0000000000005", "267.64902300000006", "e-7", "e-07"] {
        assert!(!json.contains(noise), "plan.json holds {noise}");
    }
    let candidates = read(&dir, &report, "candidates.csv");
    let first_row = candidates.lines().nth(1).expect("a row");
    assert!(first_row.contains(",4000.0,387.185,"), "{first_row}");
    let kernels = read(&dir, &report, "kernels.csv");
    assert!(kernels.contains(",3466199.7,"), "{kernels}");
    let latency = read(&dir, &report, "latency.csv");
    assert!(latency.contains(",12.3,"), "{latency}");
    for (file, text) in [
        ("plan.json", &json),
        ("candidates.csv", &candidates),
        ("kernels.csv", &kernels),
        ("latency.csv", &latency),
    ] {
        assert_plain_and_rounded(file, text);
    }
    // plan.json still reads back, with the figures it shows.
    let back = workbench::report::read_plan(&json).expect("reads back");
    let plan = back.recommended.expect("a plan");
    assert_eq!(plan.throughput_rps, 4000.0);
    assert_eq!(plan.latency_ms.p999, 267.649023);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every figure of every plan reads the same number from candidates.csv
/// (through polars' reader) as from plan.json.
#[test]
fn candidates_csv_and_plan_json_agree_exactly() {
    let report = noisy_report();
    let dir = out_dir("agree");
    write_report(&report, &dir, &Formats::all()).expect("written");
    let json: serde_json::Value =
        serde_json::from_str(&read(&dir, &report, "plan.json")).expect("json");
    let mut plans: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for plan in std::iter::once(&json["recommended"])
        .chain(json["alternatives"].as_array().expect("alternatives"))
    {
        plans.insert(plan["id"].as_str().expect("id").to_string(), plan.clone());
    }
    let frame = read_csv(dir.join(&report.scenario).join("candidates.csv"));
    let ids = frame.column("id").expect("id");
    let ids = ids.str().expect("strings");
    let columns: [(&str, &[&str]); 10] = [
        ("max_delay_ms", &["max_delay_ms"]),
        ("p50_ms", &["latency_ms", "p50"]),
        ("p90_ms", &["latency_ms", "p90"]),
        ("p99_ms", &["latency_ms", "p99"]),
        ("p999_ms", &["latency_ms", "p999"]),
        ("throughput_rps", &["throughput_rps"]),
        ("cost_usd_per_month", &["cost_usd_per_month"]),
        ("cost_usd_per_million", &["cost_usd_per_million"]),
        ("accuracy_agreement", &["accuracy_agreement"]),
        ("utilisation", &["utilisation"]),
    ];
    let mut compared = 0;
    for (column, path) in columns {
        let cells = frame.column(column).expect("column");
        let cells = cells.f64().expect("read as floats");
        for row in 0..ids.len() {
            let id = ids.get(row).expect("an id");
            let from_json = path
                .iter()
                .fold(&plans[id], |value, key| &value[key])
                .as_f64()
                .expect("a number");
            assert_eq!(cells.get(row), Some(from_json), "{id} {column}");
            compared += 1;
        }
    }
    assert!(compared >= 40, "{compared}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// report.md shows the figure the files hold, rounded for reading: not the
/// unrounded figure rounded once, which can differ in the last digit shown.
#[test]
fn report_md_shows_the_files_figures() {
    let report = noisy_report();
    let files = render_files(&report, &Formats::all()).expect("renders");
    let file = |name: &str| {
        files
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, text)| text.clone())
            .expect("rendered")
    };
    assert!(file("candidates.csv").contains(",387.185,"));
    let md = file("report.md");
    assert!(md.contains("$387.19"), "{md}");
    assert!(!md.contains("$387.18/"), "{md}");
}

/// An absent value is written one way: a null (an empty cell). The `fallback`
/// of a plan without one was `""`, an empty string to Arrow and polars readers.
#[test]
fn absent_values_are_null_cells() {
    let report = noisy_report();
    let dir = out_dir("nulls");
    write_report(&report, &dir, &Formats::all()).expect("written");
    let text = read(&dir, &report, "candidates.csv");
    assert!(!text.contains("\"\""), "{text}");
    let frame = read_csv(dir.join(&report.scenario).join("candidates.csv"));
    let without_fallback = report
        .recommended
        .iter()
        .chain(report.alternatives.iter().map(|a| &a.plan))
        .filter(|p| p.fallback.is_none())
        .count();
    assert!(without_fallback > 0);
    let fallback = frame.column("fallback").expect("fallback");
    assert_eq!(fallback.null_count(), without_fallback);
    let staleness = frame.column("staleness_s").expect("staleness_s");
    let without_staleness = report
        .recommended
        .iter()
        .chain(report.alternatives.iter().map(|a| &a.plan))
        .filter(|p| p.staleness_s.is_none())
        .count();
    assert_eq!(staleness.null_count(), without_staleness);
    let _ = std::fs::remove_dir_all(&dir);
}
