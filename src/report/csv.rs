//! CSV exports through polars: `candidates.csv`, `kernels.csv`, `latency.csv`.
//! Each is built as a DataFrame and written with `CsvWriter` into memory.

use polars::prelude::{Column, CsvWriter, DataFrame, NamedFrom, SerWriter, Series};

use super::error::ReportError;
use super::model::{Plan, Report};

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
    let floats =
        |f: &dyn Fn(&Plan) -> f64| -> Vec<f64> { rows.iter().map(|(p, ..)| f(p)).collect() };
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
        column("max_delay_ms", floats(&|p| p.max_delay_ms)),
        // Edge + cloud fallback: "instance variant backend precision".
        column(
            "fallback",
            strings(&|p| {
                p.fallback.as_ref().map_or_else(String::new, |f| {
                    format!(
                        "{} {} {} {}",
                        f.target, f.model_variant, f.backend, f.precision
                    )
                })
            }),
        ),
        column(
            "precompute_fraction",
            rows.iter()
                .map(|r| r.0.precompute_fraction)
                .collect::<Vec<Option<f64>>>(),
        ),
        column("p50_ms", floats(&|p| p.latency_ms.p50)),
        column("p90_ms", floats(&|p| p.latency_ms.p90)),
        column("p99_ms", floats(&|p| p.latency_ms.p99)),
        column("p999_ms", floats(&|p| p.latency_ms.p999)),
        column("latency_source", strings(&|p| p.latency_source.to_string())),
        column("throughput_rps", floats(&|p| p.throughput_rps)),
        column("cost_usd_per_month", floats(&|p| p.cost_usd_per_month)),
        column("cost_usd_per_million", floats(&|p| p.cost_usd_per_million)),
        column("accuracy_agreement", floats(&|p| p.accuracy_agreement)),
        column("utilisation", floats(&|p| p.utilisation)),
        column("failure_rate", floats(&|p| p.failure_rate)),
        column(
            "staleness_s",
            rows.iter()
                .map(|r| r.0.staleness_s)
                .collect::<Vec<Option<f64>>>(),
        ),
        column(
            "energy_mj_per_prediction",
            rows.iter()
                .map(|r| r.0.energy_mj_per_prediction)
                .collect::<Vec<Option<f64>>>(),
        ),
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
        column(
            "slo_latency_ms",
            rows.iter()
                .map(|r| r.0.slo_latency_ms)
                .collect::<Vec<Option<f64>>>(),
        ),
        // online-stream only (empty otherwise); after the older columns.
        column(
            "consumer_lag_mean_messages",
            rows.iter()
                .map(|r| r.0.consumer_lag.map(|lag| lag.mean_messages))
                .collect::<Vec<Option<f64>>>(),
        ),
        column(
            "consumer_lag_max_messages",
            rows.iter()
                .map(|r| r.0.consumer_lag.map(|lag| lag.max_messages))
                .collect::<Vec<Option<u64>>>(),
        ),
        column(
            "consumer_lag_mean_wait_ms",
            rows.iter()
                .map(|r| r.0.consumer_lag.map(|lag| lag.mean_wait_ms))
                .collect::<Vec<Option<f64>>>(),
        ),
        // The 95% CI of `slo_latency_ms`, where estimated (empty otherwise);
        // after the older columns.
        column(
            "slo_latency_ci_low_ms",
            rows.iter()
                .map(|r| r.0.slo_latency_ci_ms.map(|ci| ci[0]))
                .collect::<Vec<Option<f64>>>(),
        ),
        column(
            "slo_latency_ci_high_ms",
            rows.iter()
                .map(|r| r.0.slo_latency_ci_ms.map(|ci| ci[1]))
                .collect::<Vec<Option<f64>>>(),
        ),
        // The batch job's schedule (batch and precomputed hybrid plans;
        // empty otherwise); after the older columns.
        column(
            "job_every_s",
            rows.iter()
                .map(|r| r.0.batch_job.map(|j| j.every_s))
                .collect::<Vec<Option<f64>>>(),
        ),
        column(
            "job_run_s",
            rows.iter()
                .map(|r| r.0.batch_job.map(|j| j.run_s))
                .collect::<Vec<Option<f64>>>(),
        ),
        column(
            "job_instances",
            rows.iter()
                .map(|r| r.0.batch_job.map(|j| j.instances))
                .collect::<Vec<Option<u32>>>(),
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
        column(
            "median_ns",
            k.iter().map(|m| m.median_ns).collect::<Vec<f64>>(),
        ),
        column("p90_ns", k.iter().map(|m| m.p90_ns).collect::<Vec<f64>>()),
        column("p99_ns", k.iter().map(|m| m.p99_ns).collect::<Vec<f64>>()),
        column("gflops", k.iter().map(|m| m.gflops).collect::<Vec<f64>>()),
        column(
            "fraction_of_peak",
            k.iter().map(|m| m.fraction_of_peak).collect::<Vec<f64>>(),
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
        column(
            "latency_ms",
            points.iter().map(|p| p.1).collect::<Vec<f64>>(),
        ),
        column("fraction", points.iter().map(|p| p.2).collect::<Vec<f64>>()),
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
    /// follows, last.
    #[test]
    fn the_slo_interval_and_the_job_schedule_are_the_last_columns() {
        let mut report = sample_report();
        if let Some(plan) = report.recommended.as_mut() {
            plan.slo_latency_ci_ms = Some([27.5, 29.25]);
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
            ",slo_latency_ci_low_ms,slo_latency_ci_high_ms,job_every_s,job_run_s,job_instances"
        ));
        assert!(
            lines[1].ends_with(",27.5,29.25,86400.0,1800.0,3"),
            "{}",
            lines[1]
        );
        assert!(lines[2].ends_with(",,,,,"), "{}", lines[2]);
    }
}
