//! The one place that writes report files: everything is rendered first, then
//! each file is written to a temp file in the target directory and renamed
//! over its final name.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::error::ReportError;
use super::model::{Plan, Report};
use super::{csv, json, markdown, svg};
use super::{
    CANDIDATES_CSV, CDF_SVG, KERNELS_CSV, LATENCY_CSV, PARETO_SVG, PLAN_JSON, REPORT_MD,
    ROOFLINE_SVG,
};

/// Which exports to write. `markdown` includes the three SVG pictures it links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Formats {
    pub markdown: bool,
    pub csv: bool,
    pub json: bool,
}

impl Formats {
    pub fn all() -> Formats {
        Formats {
            markdown: true,
            csv: true,
            json: true,
        }
    }

    /// Parse a comma-separated list such as "md,csv,json" (also "markdown", "all").
    pub fn parse(list: &str) -> Result<Formats, ReportError> {
        let mut formats = Formats {
            markdown: false,
            csv: false,
            json: false,
        };
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item {
                "md" | "markdown" => formats.markdown = true,
                "csv" => formats.csv = true,
                "json" => formats.json = true,
                "all" => formats = Formats::all(),
                other => return Err(ReportError::UnknownFormat(other.to_string())),
            }
        }
        Ok(formats)
    }
}

impl Default for Formats {
    fn default() -> Formats {
        Formats::all()
    }
}

fn check_plan(plan: &Plan, bad: &mut Vec<String>) {
    let l = plan.latency_ms;
    let figures = [
        ("max_delay_ms", plan.max_delay_ms),
        ("latency_ms.p50", l.p50),
        ("latency_ms.p90", l.p90),
        ("latency_ms.p99", l.p99),
        ("latency_ms.p999", l.p999),
        ("throughput_rps", plan.throughput_rps),
        ("cost_usd_per_month", plan.cost_usd_per_month),
        ("cost_usd_per_million", plan.cost_usd_per_million),
        ("accuracy_agreement", plan.accuracy_agreement),
        ("utilisation", plan.utilisation),
        ("failure_rate", plan.failure_rate),
        ("staleness_s", plan.staleness_s.unwrap_or(0.0)),
        (
            "energy_mj_per_prediction",
            plan.energy_mj_per_prediction.unwrap_or(0.0),
        ),
    ];
    for (name, value) in figures {
        if !value.is_finite() {
            bad.push(format!("plan {}: {name} = {value}", plan.id));
        }
    }
    for line in &plan.cost_breakdown {
        if !line.usd_per_month.is_finite() {
            bad.push(format!(
                "plan {}: cost line {:?} = {}",
                plan.id, line.item, line.usd_per_month
            ));
        }
    }
}

/// Refuse a report the exporters cannot render faithfully: non-finite numbers
/// (JSON has no NaN or infinity, and a plot cannot place them).
pub fn validate(report: &Report) -> Result<(), ReportError> {
    let mut bad = Vec::new();
    if let Some(plan) = &report.recommended {
        check_plan(plan, &mut bad);
    }
    for alt in &report.alternatives {
        check_plan(&alt.plan, &mut bad);
    }
    for k in &report.kernels {
        let figures = [
            k.median_ns,
            k.p90_ns,
            k.p99_ns,
            k.gflops,
            k.fraction_of_peak,
        ];
        if figures.iter().any(|v| !v.is_finite()) {
            bad.push(format!(
                "kernel {} {} {} batch {}: non-finite timing",
                k.workload, k.backend, k.precision, k.batch
            ));
        }
    }
    let roof = &report.roofline;
    if !roof.peak_gflops.is_finite() || roof.bandwidths.iter().any(|b| !b.gb_per_s.is_finite()) {
        bad.push("roofline: non-finite roof".to_string());
    }
    for p in &roof.points {
        if !p.arithmetic_intensity.is_finite() || !p.achieved_gflops.is_finite() {
            bad.push(format!("roofline point {}: non-finite", p.label));
        }
    }
    for cdf in &report.latency_cdfs {
        if cdf
            .points
            .iter()
            .any(|p| !p.latency_ms.is_finite() || !p.fraction.is_finite())
        {
            bad.push(format!("latency CDF of {}: non-finite point", cdf.plan_id));
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(ReportError::NonFinite(bad.join("; ")))
    }
}

/// Render every file of the requested formats, in memory, in a fixed order.
/// Fails (writing nothing) when any renderer fails.
pub fn render_files(
    report: &Report,
    formats: &Formats,
) -> Result<Vec<(&'static str, String)>, ReportError> {
    validate(report)?;
    let mut files = Vec::new();
    if formats.markdown {
        files.push((REPORT_MD, markdown::markdown(report)));
        files.push((PARETO_SVG, svg::pareto_svg(report)?));
        files.push((CDF_SVG, svg::latency_cdf_svg(report)?));
        files.push((ROOFLINE_SVG, svg::roofline_svg(report)?));
    }
    if formats.csv {
        files.push((CANDIDATES_CSV, csv::candidates_csv(report)?));
        files.push((KERNELS_CSV, csv::kernels_csv(report)?));
        files.push((LATENCY_CSV, csv::latency_csv(report)?));
    }
    if formats.json {
        files.push((PLAN_JSON, json::plan_json(report)));
    }
    Ok(files)
}

/// A scenario name is used as a directory name: keep it to a safe alphabet.
fn check_scenario_name(name: &str) -> Result<(), ReportError> {
    let safe = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if safe {
        Ok(())
    } else {
        Err(ReportError::BadScenarioName(name.to_string()))
    }
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ReportError {
    let path = path.to_path_buf();
    move |source| ReportError::Io {
        action,
        path,
        source,
    }
}

/// Temp file name beside the final file: hidden, and unique per process so
/// two concurrent runs do not write into each other's temp files.
pub(crate) fn temp_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.{}.tmp", std::process::id()))
}

fn write_temp(path: &Path, contents: &str) -> Result<(), ReportError> {
    let mut file = fs::File::create(path).map_err(io_error("create", path))?;
    file.write_all(contents.as_bytes())
        .map_err(io_error("write", path))?;
    file.sync_all().map_err(io_error("sync", path))
}

/// Write the report under `out_dir/<scenario>/` and return the written paths.
///
/// Everything is rendered first; a rendering error writes nothing. Then every
/// file goes to a temp file in the same directory; if any temp write fails,
/// the temp files are removed and no final file is touched. Finally the temp
/// files are renamed over their final names (atomic per file), and the report
/// files of formats not asked for this time are removed: left there, they
/// would describe an earlier run beside this one's.
pub fn write_report(
    report: &Report,
    out_dir: &Path,
    formats: &Formats,
) -> Result<Vec<PathBuf>, ReportError> {
    check_scenario_name(&report.scenario)?;
    let files = render_files(report, formats)?;
    let dir = out_dir.join(&report.scenario);
    fs::create_dir_all(&dir).map_err(io_error("create directory", &dir))?;

    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::with_capacity(files.len());
    for (name, contents) in &files {
        let temp = temp_path(&dir, name);
        if let Err(err) = write_temp(&temp, contents) {
            let _ = fs::remove_file(&temp);
            for (written, _) in &staged {
                let _ = fs::remove_file(written);
            }
            return Err(err);
        }
        staged.push((temp, dir.join(name)));
    }

    let mut written = Vec::with_capacity(staged.len());
    for (i, (temp, target)) in staged.iter().enumerate() {
        if let Err(source) = fs::rename(temp, target) {
            for (left, _) in &staged[i..] {
                let _ = fs::remove_file(left);
            }
            return Err(ReportError::Io {
                action: "rename into place",
                path: target.clone(),
                source,
            });
        }
        written.push(target.clone());
    }
    for name in ALL_FILES {
        if !files.iter().any(|(written, _)| *written == name) {
            let stale = dir.join(name);
            match fs::remove_file(&stale) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(ReportError::Io {
                        action: "remove the earlier run's",
                        path: stale,
                        source,
                    })
                }
            }
        }
    }
    Ok(written)
}

/// Every file a report can have.
const ALL_FILES: [&str; 8] = [
    REPORT_MD,
    PARETO_SVG,
    CDF_SVG,
    ROOFLINE_SVG,
    CANDIDATES_CSV,
    KERNELS_CSV,
    LATENCY_CSV,
    PLAN_JSON,
];
