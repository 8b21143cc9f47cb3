//! CSV exports through polars: `candidates.csv`, `kernels.csv`, `latency.csv`.
//! Each is built as a DataFrame and written with `CsvWriter` into memory.
//!
//! Numbers are written by [`figure_text`] (10 significant digits, plain
//! decimal), as `plan.json` writes them: polars' own float options give a
//! fixed count of decimals (`float_precision`, which would write 0.0000002
//! as 0.0 or 4000 with ten zeros) or drop the `.0` of whole numbers
//! (`float_scientific(false)`, so a column of them reads back as integers).
//! An absent value is a null: an empty cell, never `""`.

use polars::prelude::{Column, CsvWriter, DataFrame, NamedFrom, SerWriter, Series};

use super::error::ReportError;
use super::model::{Plan, Report};
use super::writer::figure_text;

fn csv_error(table: &'static str) -> impl Fn(polars::error::PolarsError) -> ReportError {
    move |err| ReportError::Csv {
        table,
        message: err.to_string(),
    }
}

fn column<T, P: ?Sized>(name: &str, values: T) -> Column
where
    Series: NamedFrom<T, P>,
{
    Column::from(Series::new(name.into(), values))
}

/// A column of numbers as the exports write them ([`figure_text`]); `None`
/// is a null (an empty cell).
fn figures(name: &str, values: impl IntoIterator<Item = Option<f64>>) -> Column {
    column(
        name,
        values
            .into_iter()
            .map(|value| value.map(figure_text))
            .collect::<Vec<Option<String>>>(),
    )
}

fn write_csv(
    table: &'static str,
    height: usize,
    columns: Vec<Column>,
) -> Result<String, ReportError> {
    let mut frame = DataFrame::new(height, columns).map_err(csv_error(table))?;
    let mut buffer: Vec<u8> = Vec::new();
    // One thread: the output is the same either way, and this keeps the
    // writer from touching the global pool for a few hundred rows.
    CsvWriter::new(&mut buffer)
        .include_header(true)
        .n_threads(1)
        .finish(&mut frame)
        .map_err(csv_error(table))?;
    String::from_utf8(buffer).map_err(|err| ReportError::Csv {
        table,
        message: err.to_string(),
    })
}

/// One row per plan (recommended first, then alternatives in ranking order):
/// every dimension, every metric, whether it is feasible and why not.
pub fn candidates_csv(report: &Report) -> Result<String, ReportError> {
    let mut rows: Vec<(&Plan, bool, bool, Option<&str>)> = Vec::new();
    if let Some(plan) = &report.recommended {
        rows.push((plan, true, report.feasible, None));
    }
    for alt in &report.alternatives {
        rows.push((
            &alt.plan,
            false,
            alt.rejected_because.is_none(),
            alt.rejected_because.as_deref(),
        ));
    }
    let strings =
        |f: &dyn Fn(&Plan) -> String| -> Vec<String> { rows.iter().map(|(p, ..)| f(p)).collect() };
    let floats = |name: &str, f: &dyn Fn(&Plan) -> f64| -> Column {
        figures(name, rows.iter().map(|(p, ..)| Some(f(p))))
    };
    let optional_floats = |name: &str, f: &dyn Fn(&Plan) -> Option<f64>| -> Column {
        figures(name, rows.iter().map(|(p, ..)| f(p)))
    };
    let columns = vec![
        column("id", strings(&|p| p.id.clone())),
        column(
            "recommended",
            rows.iter().map(|r| r.1).collect::<Vec<bool>>(),
        ),
        column("mode", strings(&|p| p.mode.to_string())),
        column("placement", strings(&|p| p.placement.to_string())),
        column("target", strings(&|p| p.target.clone())),
        column(
            "replicas",
            rows.iter().map(|r| r.0.replicas).collect::<Vec<u32>>(),
        ),
        column("model_variant", strings(&|p| p.model_variant.clone())),
        column("backend", strings(&|p| p.backend.to_string())),
        column("precision", strings(&|p| p.precision.to_string())),
        column(
            "max_batch",
            rows.iter().map(|r| r.0.max_batch).collect::<Vec<u32>>(),
        ),
        floats("max_delay_ms", &|p| p.max_delay_ms),
        // Edge + cloud fallback: "instance variant backend precision".
        // Null (an empty cell) when there is none, as every absent value.
        column(
            "fallback",
            rows.iter()
                .map(|(p, ..)| {
                    p.fallback.as_ref().map(|f| {
                        format!(
                            "{} {} {} {}",
                            f.target, f.model_variant, f.backend, f.precision
                        )
                    })
                })
                .collect::<Vec<Option<String>>>(),
        ),
        optional_floats("precompute_fraction", &|p| p.precompute_fraction),
        floats("p50_ms", &|p| p.latency_ms.p50),
        floats("p90_ms", &|p| p.latency_ms.p90),
        floats("p99_ms", &|p| p.latency_ms.p99),
        floats("p999_ms", &|p| p.latency_ms.p999),
        column("latency_source", strings(&|p| p.latency_source.to_string())),
        floats("throughput_rps", &|p| p.throughput_rps),
        floats("cost_usd_per_month", &|p| p.cost_usd_per_month),
        floats("cost_usd_per_million", &|p| p.cost_usd_per_million),
        floats("accuracy_agreement", &|p| p.accuracy_agreement),
        floats("utilisation", &|p| p.utilisation),
        floats("failure_rate", &|p| p.failure_rate),
        optional_floats("staleness_s", &|p| p.staleness_s),
        optional_floats("energy_mj_per_prediction", &|p| p.energy_mj_per_prediction),
        column(
            "simulated",
            rows.iter().map(|r| r.0.simulated).collect::<Vec<bool>>(),
        ),
        column(
            "on_pareto_front",
            rows.iter()
                .map(|r| r.0.on_pareto_front)
                .collect::<Vec<bool>>(),
        ),
        column("feasible", rows.iter().map(|r| r.2).collect::<Vec<bool>>()),
        column(
            "rejected_because",
            rows.iter()
                .map(|r| r.3.map(str::to_string))
                .collect::<Vec<Option<String>>>(),
        ),
        // Last, so that readers of the earlier columns by position still work.
        optional_floats("slo_latency_ms", &|p| p.slo_latency_ms),
        // online-stream only (empty otherwise); after the older columns.
        optional_floats("consumer_lag_mean_messages", &|p| {
            p.consumer_lag.map(|lag| lag.mean_messages)
        }),
        column(
            "consumer_lag_max_messages",
            rows.iter()
                .map(|r| r.0.consumer_lag.map(|lag| lag.max_messages))
                .collect::<Vec<Option<u64>>>(),
        ),
        optional_floats("consumer_lag_mean_wait_ms", &|p| {
            p.consumer_lag.map(|lag| lag.mean_wait_ms)
        }),
        // The 95% CI of `slo_latency_ms`, where estimated (empty otherwise);
        // after the older columns.
        optional_floats("slo_latency_ci_low_ms", &|p| {
            p.slo_latency_ci_ms.map(|ci| ci[0])
        }),
        optional_floats("slo_latency_ci_high_ms", &|p| {
            p.slo_latency_ci_ms.map(|ci| ci[1])
        }),
        // The batch job's schedule (batch and precomputed hybrid plans;
        // empty otherwise); after the older columns.
        optional_floats("job_every_s", &|p| p.batch_job.map(|j| j.every_s)),
        optional_floats("job_run_s", &|p| p.batch_job.map(|j| j.run_s)),
        column(
            "job_instances",
            rows.iter()
                .map(|r| r.0.batch_job.map(|j| j.instances))
                .collect::<Vec<Option<u32>>>(),
        ),
        // Edge and hybrid plans (empty in the cloud); after the older columns.
        column(
            "device_memory_bytes",
            rows.iter()
                .map(|r| r.0.device_memory_bytes)
                .collect::<Vec<Option<u64>>>(),
        ),
    ];
    write_csv("candidates.csv", rows.len(), columns)
}

/// One row per kernel measurement (or projection).
pub fn kernels_csv(report: &Report) -> Result<String, ReportError> {
    let k = &report.kernels;
    let columns = vec![
        column(
            "workload",
            k.iter().map(|m| m.workload.clone()).collect::<Vec<_>>(),
        ),
        column(
            "backend",
            k.iter().map(|m| m.backend.to_string()).collect::<Vec<_>>(),
        ),
        column(
            "precision",
            k.iter()
                .map(|m| m.precision.to_string())
                .collect::<Vec<_>>(),
        ),
        column("batch", k.iter().map(|m| m.batch).collect::<Vec<u32>>()),
        figures("median_ns", k.iter().map(|m| Some(m.median_ns))),
        figures("p90_ns", k.iter().map(|m| Some(m.p90_ns))),
        figures("p99_ns", k.iter().map(|m| Some(m.p99_ns))),
        figures("gflops", k.iter().map(|m| Some(m.gflops))),
        figures(
            "fraction_of_peak",
            k.iter().map(|m| Some(m.fraction_of_peak)),
        ),
        column(
            "source",
            k.iter().map(|m| m.source.to_string()).collect::<Vec<_>>(),
        ),
        column(
            "target",
            k.iter().map(|m| m.target.clone()).collect::<Vec<_>>(),
        ),
        column(
            "high_variance",
            k.iter().map(|m| m.high_variance).collect::<Vec<bool>>(),
        ),
        // Fewer samples than usual (report.md's dagger); last, after the older columns.
        column(
            "reduced",
            k.iter().map(|m| m.reduced).collect::<Vec<bool>>(),
        ),
        // Empty when not recorded (a measurement cached before it was).
        column(
            "activation_bytes",
            k.iter()
                .map(|m| m.activation_bytes)
                .collect::<Vec<Option<u64>>>(),
        ),
    ];
    write_csv("kernels.csv", k.len(), columns)
}

/// The latency CDFs in long form: one row per (plan, point).
pub fn latency_csv(report: &Report) -> Result<String, ReportError> {
    let points: Vec<(&str, f64, f64)> = report
        .latency_cdfs
        .iter()
        .flat_map(|cdf| {
            cdf.points
                .iter()
                .map(move |p| (cdf.plan_id.as_str(), p.latency_ms, p.fraction))
        })
        .collect();
    let columns = vec![
        column(
            "plan_id",
            points
                .iter()
                .map(|p| p.0.to_string())
                .collect::<Vec<String>>(),
        ),
        figures("latency_ms", points.iter().map(|p| Some(p.1))),
        figures("fraction", points.iter().map(|p| Some(p.2))),
    ];
    write_csv("latency.csv", points.len(), columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::sample_report;
    use crate::report::model::BatchJob;

    /// The SLO figure's interval fills its two columns where it was
    /// estimated, and leaves them empty where not; the batch job's schedule
    /// follows, then a device's memory, last.
    #[test]
    fn the_slo_interval_the_job_schedule_and_the_device_memory_are_the_last_columns() {
        let mut report = sample_report();
        if let Some(plan) = report.recommended.as_mut() {
            plan.slo_latency_ci_ms = Some([27.5, 29.25]);
            plan.device_memory_bytes = Some(294_300);
            plan.batch_job = Some(BatchJob {
                every_s: 86_400.0,
                run_s: 1_800.0,
                instances: 3,
                runs_per_month: 30.4,
                max_staleness_s: 88_200.0,
            });
        }
        let text = candidates_csv(&report).expect("csv");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].ends_with(
            ",slo_latency_ci_low_ms,slo_latency_ci_high_ms,job_every_s,job_run_s,job_instances,\
             device_memory_bytes"
        ));
        assert!(
            lines[1].ends_with(",27.5,29.25,86400.0,1800.0,3,294300"),
            "{}",
            lines[1]
        );
        assert!(lines[2].ends_with(",,,,,,"), "{}", lines[2]);
    }
}
