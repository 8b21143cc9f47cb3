//! The one place that writes report files: everything is rendered first, then
//! each file is written to a temp file in the target directory and renamed
//! over its final name.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::error::ReportError;
use super::model::{Plan, ProjectionBreakdown, Report};
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
        (
            "consumer_lag.mean_wait_ms",
            plan.consumer_lag.map_or(0.0, |lag| lag.mean_wait_ms),
        ),
        (
            "consumer_lag.mean_messages",
            plan.consumer_lag.map_or(0.0, |lag| lag.mean_messages),
        ),
        ("slo_latency_ms", plan.slo_latency_ms.unwrap_or(0.0)),
        (
            "precompute_fraction",
            plan.precompute_fraction.unwrap_or(0.0),
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

/// The projection's figures: `plan.json` holds them, and a `null` there
/// would make the file unreadable as a `--baseline`.
fn check_projection(projection: &ProjectionBreakdown, bad: &mut Vec<String>) {
    for (name, value) in [
        ("measured_ns", projection.measured_ns),
        ("projected_ns", projection.projected_ns),
    ] {
        if !value.is_finite() {
            bad.push(format!("projection: {name} = {value}"));
        }
    }
    for op in &projection.ops {
        for (name, value) in [("local_ns", op.local_ns), ("projected_ns", op.projected_ns)] {
            if !value.is_finite() {
                bad.push(format!("projection op {}: {name} = {value}", op.name));
            }
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
    for line in &report.sensitivity {
        if let Some(factor) = line.stays_best_up_to_factor.filter(|f| !f.is_finite()) {
            bad.push(format!(
                "sensitivity {:?}: stays_best_up_to_factor = {factor}",
                line.parameter
            ));
        }
    }
    if let Some(projection) = &report.projection {
        check_projection(projection, &mut bad);
    }
    if let Some(slo) = &report.slo {
        if !slo.percentile.is_finite() || !slo.latency_ms.is_finite() {
            bad.push(format!(
                "slo: percentile {} latency_ms {}",
                slo.percentile, slo.latency_ms
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

/// Significant digits every number of the CSV and JSON exports is written
/// with (`docs/plan-format.md`, "Numbers"). Ten is more than any figure's
/// real precision (timings vary by percents, prices have 4-6 digits) and
/// fewer than the 15-17 that show the noise of float arithmetic
/// (`4000.0000000000005`).
pub const EXPORT_SIGNIFICANT_DIGITS: usize = 10;

/// `value` rounded to [`EXPORT_SIGNIFICANT_DIGITS`] significant digits: the
/// number the exports write. Non-finite values are returned unchanged, and
/// `-0.0` as `0.0`. Rounding twice gives the same number.
pub fn round_figure(value: f64) -> f64 {
    if value == 0.0 {
        return 0.0;
    }
    if !value.is_finite() {
        return value;
    }
    // Rounding in decimal (through the formatter) rather than by scaling
    // with a power of ten, which adds float noise of its own.
    format!("{value:.*e}", EXPORT_SIGNIFICANT_DIGITS - 1)
        .parse()
        .unwrap_or(value)
}

/// How the CSV and JSON exports write a number: [`round_figure`]'s value in
/// its shortest form, in plain decimal (never an exponent: `0.00000019955617`,
/// not `1.9955617e-7`), with at least one digit after the point (`4000.0`,
/// so a column of whole numbers still reads as floats).
pub fn figure_text(value: f64) -> String {
    let rounded = round_figure(value);
    // `Display` of an f64 is the shortest text that reads back to it, and
    // never uses an exponent.
    let mut text = rounded.to_string();
    if rounded.is_finite() && !text.contains('.') {
        text.push_str(".0");
    }
    text
}

/// serde_json's pretty printer with every number written by [`figure_text`]:
/// the formatter of `plan.json` and of `workbench bench --json`.
struct FigureFormatter(serde_json::ser::PrettyFormatter<'static>);

impl serde_json::ser::Formatter for FigureFormatter {
    fn write_f64<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        value: f64,
    ) -> std::io::Result<()> {
        writer.write_all(figure_text(value).as_bytes())
    }
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.0.begin_array(writer)
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.0.end_array(writer)
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_array_value(writer, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        self.0.end_array_value(writer)
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.0.begin_object(writer)
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.0.end_object(writer)
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_object_key(writer, first)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        self.0.begin_object_value(writer)
    }
    fn end_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        self.0.end_object_value(writer)
    }
}

/// `value` as pretty-printed JSON (no trailing newline), every number
/// written by [`figure_text`]: as `serde_json::to_string_pretty` otherwise.
pub fn figures_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    let mut buffer = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(
        &mut buffer,
        FigureFormatter(serde_json::ser::PrettyFormatter::new()),
    );
    value.serialize(&mut serializer)?;
    // serde_json writes only valid UTF-8.
    String::from_utf8(buffer).map_err(|err| {
        serde_json::Error::io(std::io::Error::new(std::io::ErrorKind::InvalidData, err))
    })
}

/// Round every float of a JSON value with [`round_figure`] (integers, such as
/// a seed, are left alone).
fn round_json_numbers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(number) if number.is_f64() => {
            if let Some(rounded) = number
                .as_f64()
                .and_then(|x| serde_json::Number::from_f64(round_figure(x)))
            {
                *number = rounded;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(round_json_numbers),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(round_json_numbers),
        _ => {}
    }
}

/// `report` with every figure rounded as the CSV and JSON exports write it
/// ([`round_figure`]): the report the Markdown and SVG files are rendered
/// from, so that their figures, rounded further for reading, are those of
/// the data files rounded (not the unrounded figures rounded once, which can
/// differ in the last digit shown).
pub fn with_export_figures(report: &Report) -> Result<Report, ReportError> {
    Ok(with_rounded_figures(report)?)
}

/// `value` with every float rounded by [`round_figure`] (through its serde
/// form, so no field is missed): what reading back its export gives.
pub fn with_rounded_figures<T>(value: &T) -> Result<T, serde_json::Error>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let mut json = serde_json::to_value(value)?;
    round_json_numbers(&mut json);
    serde_json::from_value(json)
}

/// Render every file of the requested formats, in memory, in a fixed order.
/// Fails (writing nothing) when any renderer fails. Every renderer gets the
/// report's figures rounded as the data files write them
/// ([`with_export_figures`]), so that the files agree.
pub fn render_files(
    report: &Report,
    formats: &Formats,
) -> Result<Vec<(&'static str, String)>, ReportError> {
    validate(report)?;
    let report = &with_export_figures(report)?;
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

/// A scenario name is used as a directory name: the rule validation applies
/// ([`crate::scenario::is_valid_scenario_name`]), checked again here for
/// reports built from a scenario made in code.
fn check_scenario_name(name: &str) -> Result<(), ReportError> {
    if crate::scenario::is_valid_scenario_name(name) {
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

/// Remove the temp files and backups a run killed while writing into `dir`
/// left there (their names carry its process id, so no later run reuses
/// them): only those of report files, and only of processes no longer
/// running (a concurrent run's are its own). Without `/proc` nothing can
/// tell a dead process from a live one, and nothing is removed.
fn sweep_leftovers(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if leftover_pid(&name).is_some_and(crate::process::process_is_gone) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The process id in `.<report file>.<pid>.tmp` or `.<report file>.<pid>.old`.
fn leftover_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    let rest = rest
        .strip_suffix(".tmp")
        .or_else(|| rest.strip_suffix(".old"))?;
    let (file, pid) = rest.rsplit_once('.')?;
    ALL_FILES
        .contains(&file)
        .then(|| pid.parse().ok())
        .flatten()
}

/// Where the earlier run's copy of a file is kept until the new set is in place.
fn backup_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.{}.old", std::process::id()))
}

fn write_temp(path: &Path, contents: &str) -> Result<(), ReportError> {
    let mut file = fs::File::create(path).map_err(io_error("create", path))?;
    file.write_all(contents.as_bytes())
        .map_err(io_error("write", path))?;
    file.sync_all().map_err(io_error("sync", path))
}

/// One file of the report directory this run changes: replaced by a staged
/// temp file, or (a format not written this time) removed.
struct Change {
    target: PathBuf,
    /// The staged new contents; `None` removes the target.
    temp: Option<PathBuf>,
    /// The earlier run's file, kept aside while the set is being replaced.
    backup: Option<PathBuf>,
}

impl Change {
    fn apply(&self) -> Result<(), ReportError> {
        match &self.temp {
            Some(temp) => {
                fs::rename(temp, &self.target).map_err(io_error("rename into place", &self.target))
            }
            None if self.backup.is_some() => fs::remove_file(&self.target)
                .map_err(io_error("remove the earlier run's", &self.target)),
            None => Ok(()),
        }
    }

    /// Put the earlier run's file back (or remove a file that was new). If
    /// the backup cannot be renamed back, it is kept (not cleaned up) rather
    /// than lose the earlier run's file.
    fn undo(&mut self) {
        match &self.backup {
            Some(backup) if fs::rename(backup, &self.target).is_err() => self.backup = None,
            Some(_) => {}
            None if self.temp.is_some() => {
                let _ = fs::remove_file(&self.target);
            }
            None => {}
        }
    }

    /// Remove what this change left beside the target: its temp file (if not
    /// renamed) and its backup (if not restored).
    fn clean_up(&self) {
        for path in self.temp.iter().chain(&self.backup) {
            let _ = fs::remove_file(path);
        }
    }
}

/// Whether `path` can be replaced by (or removed as) a report file: absent or
/// a file, not a directory or anything else a rename would fail on.
fn check_replaceable(path: &Path) -> Result<bool, ReportError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() || meta.file_type().is_symlink() => Ok(true),
        Ok(meta) => Err(ReportError::Io {
            action: "replace",
            path: path.to_path_buf(),
            source: std::io::Error::other(if meta.is_dir() {
                "it is a directory, not a file"
            } else {
                "it is not a regular file"
            }),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(ReportError::Io {
            action: "inspect",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Keep a copy of the earlier run's file under `backup`, leaving it in place
/// (readers never find the name missing): a hard link, or a copy where the
/// file system has none.
fn keep_backup(target: &Path, backup: &Path) -> Result<(), ReportError> {
    let _ = fs::remove_file(backup);
    if fs::hard_link(target, backup).is_ok() {
        return Ok(());
    }
    fs::copy(target, backup)
        .map(|_| ())
        .map_err(io_error("keep a copy of the earlier run's", target))
}

/// Replace the directory's report files as a set: back up every file that
/// will change, apply every change, and on any failure undo the applied ones,
/// so the directory holds either the earlier run's files or this run's, never
/// a mix. Temp files and backups are removed either way.
fn commit(dir: &Path, changes: &mut [Change]) -> Result<(), ReportError> {
    let result = back_up_and_apply(dir, changes);
    for change in changes.iter() {
        change.clean_up();
    }
    result
}

fn back_up_and_apply(dir: &Path, changes: &mut [Change]) -> Result<(), ReportError> {
    for change in changes.iter_mut() {
        if check_replaceable(&change.target)? {
            let name = change
                .target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let backup = backup_path(dir, &name);
            keep_backup(&change.target, &backup)?;
            change.backup = Some(backup);
        }
    }
    for i in 0..changes.len() {
        if let Err(err) = changes[i].apply() {
            for applied in changes[..i].iter_mut().rev() {
                applied.undo();
            }
            return Err(err);
        }
    }
    Ok(())
}

/// Write the report under `out_dir/<scenario>/` and return the written paths.
///
/// Everything is rendered first; a rendering error writes nothing. Then every
/// file goes to a temp file in the same directory, and every file the run
/// will replace or remove is checked to be a file (not, say, a directory).
/// Only then are the temp files renamed over their final names and the files
/// of formats not asked for this time removed (left there, they would
/// describe an earlier run beside this one's). If anything fails, the
/// directory is left as it was: the report set is replaced as a whole.
pub fn write_report(
    report: &Report,
    out_dir: &Path,
    formats: &Formats,
) -> Result<Vec<PathBuf>, ReportError> {
    check_scenario_name(&report.scenario)?;
    let files = render_files(report, formats)?;
    let dir = out_dir.join(&report.scenario);
    fs::create_dir_all(&dir).map_err(io_error("create directory", &dir))?;
    sweep_leftovers(&dir);

    let mut changes: Vec<Change> = ALL_FILES
        .iter()
        .filter(|name| !files.iter().any(|(written, _)| written == *name))
        .map(|name| Change {
            target: dir.join(name),
            temp: None,
            backup: None,
        })
        .collect();
    for (name, contents) in &files {
        let temp = temp_path(&dir, name);
        let staged = write_temp(&temp, contents);
        changes.push(Change {
            target: dir.join(name),
            temp: Some(temp),
            backup: None,
        });
        if let Err(err) = staged {
            for change in &changes {
                change.clean_up();
            }
            return Err(err);
        }
    }
    commit(&dir, &mut changes)?;
    Ok(files.iter().map(|(name, _)| dir.join(name)).collect())
}

/// Every file a report can have: a run writes or removes each of them in
/// `<out>/<scenario>/`.
pub const ALL_FILES: [&str; 8] = [
    REPORT_MD,
    PARETO_SVG,
    CDF_SVG,
    ROOFLINE_SVG,
    CANDIDATES_CSV,
    KERNELS_CSV,
    LATENCY_CSV,
    PLAN_JSON,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The reviewer's noisy figures, and the edge cases of the text.
    #[test]
    fn figures_are_written_rounded_in_plain_decimal() {
        for (value, text) in [
            (4000.0000000000005, "4000.0"),
            (267.64902300000006, "267.649023"),
            (387.18148799999994, "387.181488"),
            (8.970239000000001, "8.970239"),
            (3466199.6999999997, "3466199.7"),
            (0.04763790715372907, "0.04763790715"),
            (1.9955617002560504e-7, "0.00000019955617"),
            (122482.10083333332, "122482.1008"),
            (123456789012.3, "123456789000.0"),
            (1e21, "1000000000000000000000.0"),
            (0.0, "0.0"),
            (-0.0, "0.0"),
            (-2.5, "-2.5"),
            (1.0, "1.0"),
        ] {
            assert_eq!(figure_text(value), text, "{value:e}");
            let rounded = round_figure(value);
            assert_eq!(round_figure(rounded), rounded, "{value:e}");
            assert_eq!(text.parse::<f64>().ok(), Some(rounded), "{value:e}");
        }
        assert!(round_figure(f64::NAN).is_nan());
        assert_eq!(round_figure(f64::INFINITY), f64::INFINITY);
    }

    /// The JSON layout is serde_json's pretty printer's; only numbers differ.
    #[test]
    fn figures_json_is_pretty_json_with_rounded_numbers() {
        let value = serde_json::json!({
            "seed": 18446744073709551615u64,
            "list": [1, -2, 2.5, {"nested": [], "empty": {}}],
            "name": "a \"quoted\" name",
            "none": null,
            "noisy": 4000.0000000000005,
            "tiny": 1.9955617002560504e-7
        });
        let text = figures_json(&value).expect("serializes");
        let expected = serde_json::to_string_pretty(&value)
            .expect("serializes")
            .replace("4000.0000000000005", "4000.0")
            .replace("1.9955617002560504e-7", "0.00000019955617");
        assert_eq!(text, expected);
    }

    /// The report the Markdown is rendered from has every figure rounded as
    /// the files write it, and nothing else changed.
    #[test]
    fn the_rendered_report_has_the_files_figures() {
        let mut report = crate::report::fixtures::sample_report();
        let plan = report.recommended.as_mut().expect("a plan");
        plan.throughput_rps = 4000.0000000000005;
        plan.cost_usd_per_month = 387.184999999999;
        let rounded = with_export_figures(&report).expect("rounds");
        let plan = rounded.recommended.as_ref().expect("a plan");
        assert_eq!(plan.throughput_rps, 4000.0);
        assert_eq!(plan.cost_usd_per_month, 387.185);
        assert_eq!(with_export_figures(&rounded).expect("rounds"), rounded);
        assert_eq!(rounded.assumptions, report.assumptions);
        let reasons = |r: &Report| -> Vec<(String, Option<String>)> {
            r.alternatives
                .iter()
                .map(|a| (a.plan.id.clone(), a.rejected_because.clone()))
                .collect()
        };
        assert_eq!(reasons(&rounded), reasons(&report));
        assert_eq!(rounded.kernels.len(), report.kernels.len());
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// NaN in a figure `plan.json` holds would be written as `null`; in the
    /// projection, that makes the file unreadable as a `--baseline`.
    #[test]
    fn validate_refuses_non_finite_slo_latency_precompute_sensitivity_and_projection() {
        use crate::report::fixtures::sample_report;
        use crate::report::model::{ProjectedOp, ProjectionBreakdown};
        let projection = ProjectionBreakdown {
            target: "c7i.large".to_string(),
            model_variant: "base".to_string(),
            backend: workbench_kernels::BackendKind::Tiled,
            precision: workbench_kernels::Precision::Int8,
            batch: 8,
            measured_ns: 71_000.0,
            projected_ns: 50_000.0,
            target_cores: 2,
            ops: vec![ProjectedOp {
                name: "dense0+act0".to_string(),
                kind: "dense".to_string(),
                local_ns: 71_000.0,
                projected_ns: 50_000.0,
                cores_used: 2,
                in_target_cache: true,
                weights_in_target_cache: true,
            }],
        };
        let mut with_projection = sample_report();
        with_projection.projection = Some(projection);
        assert!(validate(&with_projection).is_ok());

        type Edit = Box<dyn Fn(&mut Report)>;
        let edits: Vec<(&str, Edit)> = vec![
            (
                "slo_latency_ms",
                Box::new(|r| r.alternatives[0].plan.slo_latency_ms = Some(f64::NAN)),
            ),
            (
                "precompute_fraction",
                Box::new(|r| r.alternatives[0].plan.precompute_fraction = Some(f64::NAN)),
            ),
            (
                "stays_best_up_to_factor",
                Box::new(|r| r.sensitivity[0].stays_best_up_to_factor = Some(f64::INFINITY)),
            ),
            (
                "measured_ns",
                Box::new(|r| {
                    if let Some(p) = r.projection.as_mut() {
                        p.measured_ns = f64::NAN;
                    }
                }),
            ),
            (
                "local_ns",
                Box::new(|r| {
                    if let Some(p) = r.projection.as_mut() {
                        p.ops[0].local_ns = f64::NAN;
                    }
                }),
            ),
        ];
        for (name, edit) in edits {
            let mut report = with_projection.clone();
            edit(&mut report);
            match validate(&report) {
                Err(ReportError::NonFinite(message)) => {
                    assert!(message.contains(name), "{name}: {message}")
                }
                other => panic!("{name}: expected a refusal, got {other:?}"),
            }
        }
    }

    /// A killed run's temp files and backups of report files are swept; a
    /// live process's (this one's, init's) and other files stay.
    #[test]
    fn leftovers_of_dead_runs_are_swept() {
        let out = tempfile::tempdir().unwrap();
        let dir = out.path();
        let dead = u32::MAX - 1; // above any pid_max: never a live process
        let ours = std::process::id();
        let files = [
            format!(".report.md.{dead}.tmp"),
            format!(".plan.json.{dead}.old"),
            format!(".report.md.{ours}.tmp"),
            ".report.md.1.tmp".to_string(),
            format!(".notes.md.{dead}.tmp"),
            "report.md".to_string(),
        ];
        for f in &files {
            fs::write(dir.join(f), "x").unwrap();
        }
        sweep_leftovers(dir);
        let mut kept: Vec<String> = files[2..].to_vec();
        if !Path::new("/proc/self").exists() {
            kept = files.to_vec();
        }
        kept.sort();
        assert_eq!(names(dir), kept);
    }

    /// A failure half way through the renames (here a staged file that has
    /// gone missing) puts back the files already replaced or removed.
    #[test]
    fn a_failed_rename_undoes_the_changes_already_made() {
        let out = tempfile::tempdir().unwrap();
        let dir = out.path();
        fs::write(dir.join("a.md"), "old a").unwrap();
        fs::write(dir.join("stale.csv"), "old stale").unwrap();
        fs::write(temp_path(dir, "a.md"), "new a").unwrap();
        fs::write(temp_path(dir, "c.json"), "new c").unwrap();
        let change = |name: &str, staged: bool| Change {
            target: dir.join(name),
            temp: staged.then(|| temp_path(dir, name)),
            backup: None,
        };
        let mut changes = vec![
            change("stale.csv", false),
            change("a.md", true),
            change("c.json", true),
            change("b.md", true), // its temp file was never written
        ];
        let err = commit(dir, &mut changes).unwrap_err();
        assert!(matches!(err, ReportError::Io { .. }), "{err}");
        assert_eq!(names(dir), vec!["a.md", "stale.csv"]);
        assert_eq!(fs::read_to_string(dir.join("a.md")).unwrap(), "old a");
        assert_eq!(
            fs::read_to_string(dir.join("stale.csv")).unwrap(),
            "old stale"
        );
    }

    #[test]
    fn a_successful_commit_leaves_no_backups_or_temp_files() {
        let out = tempfile::tempdir().unwrap();
        let dir = out.path();
        fs::write(dir.join("a.md"), "old a").unwrap();
        fs::write(dir.join("stale.csv"), "old stale").unwrap();
        fs::write(temp_path(dir, "a.md"), "new a").unwrap();
        let mut changes = vec![
            Change {
                target: dir.join("stale.csv"),
                temp: None,
                backup: None,
            },
            Change {
                target: dir.join("a.md"),
                temp: Some(temp_path(dir, "a.md")),
                backup: None,
            },
        ];
        commit(dir, &mut changes).unwrap();
        assert_eq!(names(dir), vec!["a.md"]);
        assert_eq!(fs::read_to_string(dir.join("a.md")).unwrap(), "new a");
    }
}
