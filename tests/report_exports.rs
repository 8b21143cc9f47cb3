//! Exporters: snapshots of the Markdown, JSON and CSV of the sample report,
//! the plan.json round trip, baseline comparison, SVG well-formedness and the
//! atomic writer.

use std::fs;
use std::path::Path;

use workbench::report::fixtures::sample_report;
use workbench::report::*;

#[test]
fn markdown_snapshot() {
    insta::assert_snapshot!("report_md", markdown(&sample_report()));
}

#[test]
fn a_kernel_above_peak_is_explained_in_the_markdown() {
    let mut report = sample_report();
    let note = "a rate above peak means the kernel did less work";
    assert!(!markdown(&report).contains(note));
    report.kernels[0].fraction_of_peak = 1.03;
    let text = markdown(&report);
    assert!(text.contains(note));
    assert!(text.contains("103.0%"), "{text}");
}

/// An edge plan's table says what one device holds for it; a cloud plan's
/// has no such row.
#[test]
fn the_plan_table_shows_the_memory_on_the_device() {
    let row = "| Memory on the device (weights + activations) | 294.3 kB";
    let mut report = sample_report();
    assert!(!markdown(&report).contains("Memory on the device"));
    if let Some(plan) = report.recommended.as_mut() {
        plan.device_memory_bytes = Some(294_300);
    }
    let md = markdown(&report);
    assert!(md.contains(row), "{md}");
}

/// The sample report with a compute-bound int8 kernel on the roofline:
/// 261 G int8 ops/s on a machine of 165 GFLOP/s (f32) and, as the sample's
/// measured int8 row says, 630 G int8 ops/s.
fn with_int8_on_the_roofline() -> Report {
    use workbench_kernels::{BackendKind, Precision};
    let mut report = sample_report();
    let int8_row = report
        .kernels
        .iter()
        .find(|k| k.precision == Precision::Int8)
        .cloned()
        .unwrap();
    let int8_peak = int8_row.gflops / int8_row.fraction_of_peak;
    assert!((int8_peak - 630.0).abs() < 1e-6, "{int8_row:?}");
    report.kernels.push(KernelMeasurement {
        backend: BackendKind::Quantized,
        batch: 1,
        gflops: 261.0,
        fraction_of_peak: 261.0 / int8_peak,
        ..int8_row
    });
    report.roofline.points.push(RooflinePoint {
        label: kernel_label(None, "quantized", "int8", 1),
        arithmetic_intensity: 60.0,
        achieved_gflops: 261.0,
        source: FigureSource::Measured,
        precision: workbench_kernels::Precision::Int8,
        working_set_bytes: Some(9_000_000),
        memory_level: Some("DRAM".to_string()),
    });
    report
}

/// The trimmed cells of the row of the table after `heading` whose cells
/// include all of `keys`.
fn row_cells(md: &str, heading: &str, keys: &[&str]) -> Vec<String> {
    table_after(md, heading)
        .into_iter()
        .map(|l| {
            l.split('|')
                .map(|c| c.trim().to_string())
                .collect::<Vec<_>>()
        })
        .find(|cells| keys.iter().all(|k| cells.iter().any(|c| c == k)))
        .unwrap_or_else(|| panic!("no row with {keys:?} after {heading} in\n{md}"))
}

/// An int8 kernel is held to the int8 roof, in integer ops, as the kernel
/// table holds it: not 261 / 165 = 158% of the f32 roof.
#[test]
fn the_roofline_table_holds_int8_kernels_to_the_int8_roof() {
    let md = markdown(&with_int8_on_the_roofline());
    // | Kernel | FLOP/byte | Achieved | Working set | Fits in | Bound | Of roof | Figure |
    let row = row_cells(&md, "## Roofline", &["quantized int8 b1"]);
    assert_eq!(
        &row[3..8],
        ["261 GOP/s", "9.0 MB", "DRAM", "compute", "41.4%"],
        "{row:?}"
    );
    // | Workload | Backend | Precision | Batch | Median | p90 | p99 | Achieved | Of peak | Figure |
    let kernel = row_cells(&md, "## Kernel measurements", &["quantized", "int8", "1"]);
    assert_eq!(&kernel[8..10], ["261 GOP/s", "41.4%"], "{kernel:?}");
    assert!(md.contains("; int8 roof 630 GOP/s."), "{md}");
    assert!(md.contains("(int8: 31.5 ops/byte)"), "{md}");
    // f32 kernels keep the f32 roof: tiled f32 b8 (2.4 MB, past L2) is bound
    // by DRAM at 3.9 x 20 GB/s.
    let f32_row = row_cells(&md, "## Roofline", &["tiled f32 b8"]);
    assert_eq!(
        &f32_row[3..8],
        ["35.8 GFLOP/s", "2.4 MB", "DRAM", "DRAM", "45.9%"],
        "{f32_row:?}"
    );
}

/// Without a measured int8 row there is no int8 roof to hold an int8 point
/// to: "n/a" rather than a figure over the f32 roof.
#[test]
fn an_int8_point_without_an_int8_roof_is_not_held_to_the_f32_roof() {
    let mut report = with_int8_on_the_roofline();
    report.roofline.peak_gops_int8 = None;
    assert_eq!(
        report.compute_roof(workbench_kernels::Precision::Int8),
        None
    );
    let md = markdown(&report);
    let row = row_cells(&md, "## Roofline", &["quantized int8 b1"]);
    assert_eq!(&row[6..8], ["n/a", "n/a"], "{row:?}");
}

#[test]
fn plan_json_snapshot() {
    insta::assert_snapshot!("plan_json", plan_json(&sample_report()));
}

#[test]
fn csv_snapshots() {
    let report = sample_report();
    insta::assert_snapshot!("candidates_csv", candidates_csv(&report).unwrap());
    insta::assert_snapshot!("kernels_csv", kernels_csv(&report).unwrap());
    insta::assert_snapshot!("latency_csv", latency_csv(&report).unwrap());
}

#[test]
fn candidates_csv_has_one_row_per_plan_with_reasons() {
    let report = sample_report();
    let text = candidates_csv(&report).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + 1 + report.alternatives.len());
    assert!(lines[0].starts_with("id,recommended,mode,placement,target,replicas"));
    assert!(lines[0].ends_with(
        "on_pareto_front,feasible,rejected_because,slo_latency_ms,\
         consumer_lag_mean_messages,consumer_lag_max_messages,consumer_lag_mean_wait_ms,\
         slo_latency_ci_low_ms,slo_latency_ci_high_ms,job_every_s,job_run_s,job_instances,\
         device_memory_bytes"
    ));
    assert!(lines[1].contains(",true,online-http,cloud,c7i.large,2,"));
    assert!(text.contains("p99 212 ms > SLO 50 ms"));
    // Quoted because the reason contains commas.
    assert!(text.contains("\"over budget by $925.60/month ($1,425.60 > $500.00)\""));
}

#[test]
fn plan_json_has_the_documented_fields() {
    let report = sample_report();
    let value: serde_json::Value = serde_json::from_str(&plan_json(&report)).unwrap();
    assert_eq!(value["schema_version"], PLAN_SCHEMA_VERSION);
    assert_eq!(value["scenario"], "fraud-scoring");
    assert_eq!(value["feasible"], true);
    let rec = &value["recommended"];
    for key in [
        "mode",
        "placement",
        "target",
        "replicas",
        "backend",
        "precision",
        "max_batch",
        "max_delay_ms",
        "throughput_rps",
        "cost_usd_per_month",
        "cost_usd_per_million",
        "accuracy_agreement",
        "slo_latency_ms",
    ] {
        assert!(!rec[key].is_null(), "recommended.{key} missing");
    }
    assert_eq!(rec["mode"], "online-http");
    assert_eq!(rec["placement"], "cloud");
    assert_eq!(rec["backend"], "tiled");
    assert_eq!(rec["precision"], "int8");
    assert_eq!(rec["latency_ms"]["p99"], 28.3);
    assert_eq!(rec["latency_ms"]["p50"], 11.4);
    assert_eq!(rec["latency_ms"]["p90"], 16.9);
    let alternatives = value["alternatives"].as_array().unwrap();
    assert_eq!(alternatives.len(), report.alternatives.len());
    assert!(alternatives[0]["rejected_because"].is_null());
    assert_eq!(
        alternatives[5]["rejected_because"],
        "p99 212 ms > SLO 50 ms"
    );
    assert_eq!(alternatives[5]["backend"], "naive");
    assert_eq!(value["assumptions"]["seed"], 42);
    assert!(value["assumptions"]["hardware_fingerprint"].is_string());
    assert!(value["assumptions"]["measured"].is_array());
    assert!(value["assumptions"]["projected"].is_array());
    assert!(value["rationale"].as_array().is_some_and(|r| !r.is_empty()));
}

#[test]
fn plan_json_round_trips_through_read_plan() {
    let report = sample_report();
    let parsed = read_plan(&plan_json(&report)).unwrap();
    // What is written is the report's figures rounded for export.
    let written = workbench::report::writer::with_rounded_figures(&PlanFile::from_report(&report));
    assert_eq!(parsed, written.unwrap());
    assert_eq!(parsed.recommended, report.recommended);
}

#[test]
fn read_plan_rejects_other_versions_and_garbage() {
    let text = plan_json(&sample_report()).replacen(
        &format!("\"schema_version\": {PLAN_SCHEMA_VERSION}"),
        "\"schema_version\": 99",
        1,
    );
    assert!(matches!(
        read_plan(&text),
        Err(ReportError::UnsupportedSchema { found: 99, .. })
    ));
    assert!(matches!(
        read_plan("{\"scenario\": \"x\"}"),
        Err(ReportError::PlanFormat(_))
    ));
    assert!(matches!(
        read_plan("not json"),
        Err(ReportError::PlanFormat(_))
    ));
    let missing_field = plan_json(&sample_report()).replacen("\"feasible\": true,", "", 1);
    assert!(matches!(
        read_plan(&missing_field),
        Err(ReportError::PlanFormat(_))
    ));
}

/// The report as measured on a quiet machine: every kernel's p90 at its
/// median, so the baseline gate compares at the bare tolerance.
fn steady(mut report: Report) -> Report {
    for k in &mut report.kernels {
        k.p90_ns = k.median_ns;
    }
    report
}

fn with_recommended(edit: impl FnOnce(&mut Plan)) -> Report {
    let mut report = sample_report();
    if let Some(plan) = report.recommended.as_mut() {
        edit(plan);
    }
    report
}

#[test]
fn baseline_flags_a_20_percent_p99_regression_but_not_5_percent() {
    let baseline = PlanFile::from_report(&steady(sample_report()));
    let slower = steady(with_recommended(|p| p.latency_ms.p99 *= 1.20));
    let findings = compare_with_baseline(&baseline, &slower, 0.10);
    assert_eq!(findings.len(), 1, "{findings:?}");
    match &findings[0] {
        Regression::P99Latency {
            old_ms,
            new_ms,
            relative_change,
        } => {
            assert_eq!(*old_ms, 28.3);
            assert!((new_ms - 28.3 * 1.2).abs() < 1e-9);
            assert!((relative_change - 0.20).abs() < 1e-9);
        }
        other => panic!("expected a p99 regression, got {other:?}"),
    }
    assert!(findings[0].fails());
    assert!(findings[0].describe().contains("+20.0%"));

    let slightly_slower = steady(with_recommended(|p| p.latency_ms.p99 *= 1.05));
    assert!(compare_with_baseline(&baseline, &slightly_slower, 0.10).is_empty());
    // Faster is never a regression.
    let faster = steady(with_recommended(|p| p.latency_ms.p99 *= 0.5));
    assert!(compare_with_baseline(&baseline, &faster, 0.10).is_empty());
}

/// Cost beyond the tolerance and a baseline serving decision (tiled int8)
/// with no feasible plan any more fail; the changed dimensions are listed.
#[test]
fn baseline_flags_cost_and_a_changed_decision_and_lists_sizing_changes() {
    let baseline = PlanFile::from_report(&steady(sample_report()));
    let pricier = steady(with_recommended(|p| {
        p.cost_usd_per_month *= 1.5;
        p.replicas = 3;
        p.precision = workbench_kernels::Precision::F16;
    }));
    let findings = compare_with_baseline(&baseline, &pricier, 0.10);
    let failing: Vec<&Regression> = findings.iter().filter(|f| f.fails()).collect();
    assert_eq!(failing.len(), 2, "{findings:?}");
    assert!(matches!(failing[0], Regression::Cost { .. }));
    assert!(
        matches!(
            failing[1],
            Regression::DecisionNoLongerFeasible { decision, .. }
                if decision == "online-http cloud base tiled int8"
        ),
        "{findings:?}"
    );
    assert_eq!(
        failing[1].describe(),
        "the baseline's serving decision (online-http cloud base tiled int8) has no \
         feasible plan in this run: not among the plans evaluated"
    );
    let changed: Vec<String> = findings
        .iter()
        .filter(|f| !f.fails())
        .map(Regression::describe)
        .collect();
    assert_eq!(
        changed,
        vec![
            "plan changed: replicas 2 -> 3".to_string(),
            "plan changed: precision int8 -> f16".to_string()
        ]
    );
}

#[test]
fn baseline_flags_lost_feasibility() {
    let baseline = PlanFile::from_report(&sample_report());
    let mut infeasible = sample_report();
    infeasible.feasible = false;
    infeasible.recommended = None;
    let findings = compare_with_baseline(&baseline, &infeasible, 0.10);
    assert!(findings.contains(&Regression::NoLongerFeasible));
    assert!(findings.iter().any(|f| f.fails()));
}

/// In report.md a failing finding is tagged FAIL, a note on what the
/// comparison rests on "note", a changed plan dimension "changed".
#[test]
fn markdown_tags_baseline_findings_by_what_they_are() {
    let mut report = sample_report();
    report.baseline = Some(BaselineComparison {
        baseline: "old/plan.json".to_string(),
        tolerance: 0.10,
        findings: vec![
            Regression::ComparisonNote {
                about: ComparisonBasis::Seed,
                old: "7".to_string(),
                new: "42".to_string(),
            },
            Regression::SloLatency {
                percentile: 99.9,
                old_ms: 40.0,
                new_ms: 60.0,
                relative_change: 0.5,
            },
            Regression::PlanChanged {
                field: workbench::report::PlanDimension::Replicas,
                old: "2".to_string(),
                new: "3".to_string(),
            },
        ],
    });
    let md = markdown(&report);
    assert!(md.contains("**1 regression(s)**"), "{md}");
    assert!(
        md.contains("- note: the baseline was simulated with seed 7, this run with 42"),
        "{md}"
    );
    assert!(
        md.contains("- FAIL: p99.9 latency (the SLO's percentile) regressed"),
        "{md}"
    );
    assert!(
        md.contains("- changed: plan changed: replicas 2 -> 3"),
        "{md}"
    );
}

fn parse_svg(text: &str) -> roxmltree::Document<'_> {
    roxmltree::Document::parse(text).unwrap_or_else(|e| panic!("SVG is not well-formed: {e}"))
}

fn svg_texts(doc: &roxmltree::Document<'_>) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect()
}

/// A plan rejected before simulation has no cost: it is left off the scatter
/// (not drawn at $0) and the caption says so.
#[test]
fn pareto_svg_leaves_out_plans_rejected_before_simulation() {
    let mut report = sample_report();
    let circles = |svg: &str| {
        parse_svg(svg)
            .descendants()
            .filter(|n| n.has_tag_name("circle"))
            .count()
    };
    let before = circles(&pareto_svg(&report).unwrap());
    let pruned = &mut report.alternatives[0].plan;
    assert!(pruned.simulated);
    pruned.simulated = false;
    let svg = pareto_svg(&report).unwrap();
    let texts = svg_texts(&parse_svg(&svg));
    assert!(
        texts
            .iter()
            .any(|t| t.contains("1 plan rejected before simulation not drawn")),
        "{texts:?}"
    );
    assert!(
        circles(&svg) < before,
        "the unsimulated plan is still drawn"
    );
}

/// The recommended plan's projection: a section in the Markdown, an object
/// in plan.json, and nothing of either when there is none.
#[test]
fn the_projection_of_the_recommended_plan_is_shown_op_by_op() {
    let mut report = sample_report();
    assert!(!markdown(&report).contains("How the compute time was projected"));
    assert!(!plan_json(&report).contains("\"projection\""));
    let op = |name: &str, local_ns: f64, projected_ns: f64, cores_used: u32, weights: bool| {
        ProjectedOp {
            name: name.into(),
            kind: "matmul".into(),
            local_ns,
            projected_ns,
            cores_used,
            in_target_cache: true,
            weights_in_target_cache: weights,
        }
    };
    let mut ops = vec![
        op("dense0", 40_000.0, 12_000.0, 4, true),
        op("dense1", 40_000.0, 52_000.0, 1, false),
    ];
    ops.extend((0..12).map(|i| op(&format!("act{i}"), 10.0, 3.0, 1, true)));
    report.projection = Some(ProjectionBreakdown {
        target: "c7i.large".into(),
        model_variant: "full".into(),
        backend: workbench_kernels::BackendKind::Tiled,
        precision: workbench_kernels::Precision::Int8,
        batch: 8,
        measured_ns: 80_120.0,
        projected_ns: 64_036.0,
        target_cores: 4,
        ops,
    });
    let md = markdown(&report);
    assert!(md.contains("## How the compute time was projected"), "{md}");
    assert!(md.contains("took 80.1 µs here (one core) and is projected at 64.0 µs on c7i.large (4 vCPUs). It runs 14 steps"), "{md}");
    assert!(md.contains("1 split over all the target's cores"), "{md}");
    assert!(md.contains("13 read everything from its cache"), "{md}");
    // The longest on the target first; ten shown of fourteen.
    let longest = md.find("`dense1`").unwrap();
    assert!(longest < md.find("`dense0`").unwrap());
    assert!(md[longest..]
        .lines()
        .next()
        .unwrap()
        .contains("weights from memory"));
    assert!(md.contains("The 10 longest of 14 steps"), "{md}");
    let value: serde_json::Value = serde_json::from_str(&plan_json(&report)).unwrap();
    assert_eq!(
        value["projection"]["ops"].as_array().map(Vec::len),
        Some(14)
    );
    assert_eq!(
        value["projection"]["ops"][1]["weights_in_target_cache"],
        false
    );
    let back = read_plan(&plan_json(&report)).unwrap();
    assert_eq!(back.projection, report.projection);
}

/// A plan rejected before simulation shows its compute time as a lower bound
/// and no cost, rather than a p99 and $0.00.
#[test]
fn markdown_shows_no_p99_or_cost_for_plans_rejected_before_simulation() {
    let mut report = sample_report();
    let plan = &mut report.alternatives[0].plan;
    plan.simulated = false;
    plan.latency_ms.p99 = 0.00039;
    plan.cost_usd_per_month = 0.0;
    let id = plan.id.clone();
    let md = markdown(&report);
    let row = md
        .lines()
        .find(|l| l.starts_with(&format!("| `{id}`")))
        .unwrap_or_else(|| panic!("no row for {id}:\n{md}"));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(&cells[2..5], ["≥ 390 ns", "-", "-"], "{row}");
    assert!(!row.contains("$0.00"), "{row}");
    assert!(md.contains("their p99 (≥) is the compute time alone"));
    assert!(!markdown(&sample_report()).contains("their p99 (≥)"));
}

/// The lines of the Markdown table that follows `heading`.
fn table_after<'a>(md: &'a str, heading: &str) -> Vec<&'a str> {
    let start = md
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading} in\n{md}"));
    md[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .collect()
}

/// In an infeasible run the constraints are checked against the closest
/// plan; rows its simulation would have settled, for a plan never simulated,
/// must not read as a pass (the planner marks them unchecked).
#[test]
fn constraints_of_an_unsimulated_closest_plan_are_not_passes() {
    let mut report = sample_report();
    let closest = report.recommended.take().unwrap();
    report.feasible = false;
    report.alternatives.insert(
        0,
        Alternative {
            plan: Plan {
                simulated: false,
                cost_usd_per_month: 0.0,
                ..closest
            },
            rejected_because: Some("model needs 68 kB, c7i.large has 1 B".into()),
        },
    );
    for (row, bound) in [(0, "≥ 28.3 ms (compute alone)"), (2, "-")] {
        let check = &mut report.constraints[row];
        check.achieved = bound.to_string();
        check.ok = false;
        check.checked = false;
    }
    let md = markdown(&report);
    let rows = table_after(&md, "## Constraints");
    let row = |name: &str| {
        rows.iter()
            .find(|r| r.starts_with(&format!("| {name} ")))
            .unwrap_or_else(|| panic!("no {name} row in {rows:?}"))
            .to_string()
    };
    let latency = row("p99 latency");
    assert!(latency.contains("≥ 28.3 ms (compute alone)"), "{latency}");
    assert!(latency.contains("not simulated"), "{latency}");
    assert!(
        !latency.contains("yes") && !latency.contains("NO"),
        "{latency}"
    );
    let budget = row("budget");
    assert!(
        budget.contains("not simulated") && !budget.contains("yes"),
        "{budget}"
    );
    // Figures that do not need the simulation still pass.
    assert!(row("accuracy agreement").contains("yes"));
    assert!(md.contains("rejected before the simulation: its latency is the compute time alone"));

    // A lower bound above the SLO already proves a miss.
    report.constraints[0].checked = true;
    let md = markdown(&report);
    let latency = table_after(&md, "## Constraints")[2].to_string();
    assert!(latency.contains("| NO"), "{latency}");

    // A simulated plan's rows are shown as checked.
    let md = markdown(&sample_report());
    let rows = table_after(&md, "## Constraints");
    assert!(
        rows[2].contains("| 28.3 ms") && rows[2].contains("| yes"),
        "{rows:?}"
    );
    assert!(!md.contains("not simulated |"));
    assert!(!md.contains("rejected before the simulation"));
}

#[test]
fn svgs_are_well_formed_and_labelled() {
    let report = sample_report();

    let pareto = pareto_svg(&report).unwrap();
    let doc = parse_svg(&pareto);
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let texts = svg_texts(&doc);
    for label in [
        "on Pareto front (cost, p99, accuracy loss)",
        "feasible plan",
        "rejected plan",
        "recommended",
        "p99 latency (ms, simulated)",
        "cost (USD/month)",
    ] {
        assert!(
            texts.iter().any(|t| t == label),
            "pareto.svg lacks {label:?}: {texts:?}"
        );
    }

    let cdf = latency_cdf_svg(&report).unwrap();
    let texts = svg_texts(&parse_svg(&cdf));
    let recommended_id = &report.recommended.as_ref().unwrap().id;
    assert!(texts.contains(&format!("{recommended_id} (recommended)")));
    for cdf in &report.latency_cdfs[1..] {
        assert!(texts.contains(&cdf.plan_id), "{texts:?}");
    }
    assert!(texts.iter().any(|t| t == "latency (ms, simulated)"));
    // One polyline per plan.
    let polylines = parse_svg(&cdf)
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .count();
    assert!(polylines >= report.latency_cdfs.len());

    let roofline = roofline_svg(&report).unwrap();
    let texts = svg_texts(&parse_svg(&roofline));
    for label in [
        "DRAM roof 20.0 GB/s, peak 165 GFLOP/s",
        "L2 roof 180.0 GB/s, peak 165 GFLOP/s",
        "kernel (measured), in its memory level's colour",
        "tiled f32 b8",
        "arithmetic intensity (FLOP/byte)",
        "achieved GFLOP/s",
    ] {
        assert!(
            texts.iter().any(|t| t == label),
            "roofline.svg lacks {label:?}: {texts:?}"
        );
    }
    assert!(
        !texts.iter().any(|t| t.starts_with("int8 roof")),
        "{texts:?}"
    );

    // With an int8 kernel on it, the int8 roof is drawn and the axes say so.
    let roofline = roofline_svg(&with_int8_on_the_roofline()).unwrap();
    let texts = svg_texts(&parse_svg(&roofline));
    for label in [
        "int8 roof 630 GOP/s (DRAM 20.0 GB/s)",
        "quantized int8 b1",
        "achieved GFLOP/s (int8: GOP/s)",
        "arithmetic intensity (FLOP/byte; int8: ops/byte)",
    ] {
        assert!(
            texts.iter().any(|t| t == label),
            "roofline.svg lacks {label:?}: {texts:?}"
        );
    }
}

/// The roofline's legend is below the plot, clear of the roofs and kernels
/// (an int8 roof at a cache level rises under the top left corner).
#[test]
fn roofline_keeps_the_legend_below_the_plot() {
    let svg = roofline_svg(&with_int8_on_the_roofline()).unwrap();
    let texts = texts_with_y(&parse_svg(&svg));
    let axis_title = y_of(&texts, "arithmetic intensity (FLOP/byte; int8: ops/byte)");
    for entry in [
        "L2 roof 180.0 GB/s, peak 165 GFLOP/s",
        "int8 roof 630 GOP/s (DRAM 20.0 GB/s)",
        "kernel (measured), in its memory level's colour",
    ] {
        let legend = y_of(&texts, entry);
        assert!(
            legend > axis_title,
            "{entry} at y {legend}, axis title at {axis_title}"
        );
    }
}

/// A `<text>` element's content and its y position.
fn texts_with_y(doc: &roxmltree::Document<'_>) -> Vec<(String, f64)> {
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| {
            let y = n.attribute("y")?.parse().ok()?;
            Some((n.text()?.trim().to_string(), y))
        })
        .collect()
}

fn y_of(texts: &[(String, f64)], wanted: &str) -> f64 {
    texts
        .iter()
        .find(|(t, _)| t == wanted)
        .unwrap_or_else(|| panic!("no text {wanted:?} in {texts:?}"))
        .1
}

/// Polylines of more than two points: the curves and the front, not the
/// legend's two-point swatches. Each as its stroke colour and width.
fn curves(doc: &roxmltree::Document<'_>) -> Vec<(String, String)> {
    doc.descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .filter(|n| {
            n.attribute("points")
                .unwrap_or("")
                .split_whitespace()
                .count()
                > 2
        })
        .map(|n| {
            (
                n.attribute("stroke").unwrap_or("").to_uppercase(),
                n.attribute("stroke-width").unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The legend is below the plot (under the x axis title), not over the
/// curves; the recommended plan is drawn last, thicker, in red, and a plan
/// whose curve it covers says so; the SLO is a labelled line.
#[test]
fn latency_cdf_keeps_the_legend_off_the_curves_and_the_recommended_plan_on_top() {
    let mut report = sample_report();
    // The recommended plan first in the report, and a plan with its curve.
    let recommended = report.recommended.clone().unwrap();
    let mut twin = report.latency_cdfs[0].clone();
    assert_eq!(twin.plan_id, recommended.id);
    twin.plan_id = report.alternatives[0].plan.id.clone();
    report.latency_cdfs[1] = twin.clone();
    let svg = latency_cdf_svg(&report).unwrap();
    let doc = parse_svg(&svg);
    let texts = texts_with_y(&doc);
    let axis_title = y_of(&texts, "latency (ms, simulated)");
    let legend = y_of(&texts, &format!("{} (recommended)", recommended.id));
    assert!(
        legend > axis_title,
        "legend at y {legend}, axis title at {axis_title}"
    );
    assert!(texts
        .iter()
        .any(|(t, _)| *t == format!("{} (under the recommended plan's curve)", twin.plan_id)));
    let drawn = curves(&doc);
    assert_eq!(drawn.len(), 3, "{drawn:?}");
    assert_eq!(
        drawn.last().unwrap(),
        &("#D62728".to_string(), "3".to_string())
    );
    assert!(
        drawn[..2].iter().all(|(colour, _)| colour != "#D62728"),
        "{drawn:?}"
    );
    // The SLO of the sample (p99 <= 50 ms) is within the curves' range.
    let slo = "SLO: p99 ≤ 50.0 ms";
    let labels: Vec<&String> = texts.iter().map(|(t, _)| t).filter(|t| *t == slo).collect();
    assert_eq!(
        labels.len(),
        2,
        "a label on the line and a legend entry: {texts:?}"
    );
}

/// Points far from 0 spread over the plot instead of sitting in a corner
/// (no tick at 0), the Pareto front is joined by a step line and ringed, and
/// an SLO on p99 is a labelled line on the latency axis.
#[test]
fn pareto_axes_follow_the_data_and_the_front_is_joined() {
    let mut report = sample_report();
    for plan in std::iter::once(report.recommended.as_mut().unwrap())
        .chain(report.alternatives.iter_mut().map(|a| &mut a.plan))
    {
        plan.cost_usd_per_month += 2500.0;
        plan.latency_ms.p99 = 100.0 + plan.latency_ms.p99 / 10.0;
    }
    report.slo = Some(workbench::report::LatencySlo {
        percentile: 99.0,
        latency_ms: 110.0,
    });
    let svg = pareto_svg(&report).unwrap();
    let doc = parse_svg(&svg);
    let texts = svg_texts(&doc);
    assert!(
        !texts.iter().any(|t| t == "0"),
        "axis anchored at 0: {texts:?}"
    );
    assert!(
        texts.iter().any(|t| t == "front's cost/p99 trade-off"),
        "{texts:?}"
    );
    let front = curves(&doc);
    assert!(
        front.iter().any(|(colour, _)| colour == "#FF7F0E"),
        "no step line: {front:?}"
    );
    assert_eq!(
        texts.iter().filter(|t| *t == "SLO: p99 ≤ 110 ms").count(),
        2
    );
    // The ring of each front member is still drawn.
    let on_front = all_ids_on_front(&report);
    let rings = doc
        .descendants()
        .filter(|n| n.has_tag_name("circle") && n.attribute("r") == Some("9"))
        .count();
    assert_eq!(rings, on_front);
}

fn all_ids_on_front(report: &Report) -> usize {
    report
        .recommended
        .iter()
        .chain(report.alternatives.iter().map(|a| &a.plan))
        .filter(|p| p.on_pareto_front && p.simulated)
        .count()
}

/// With nothing simulated the pictures say so: no axes, no empty legend.
#[test]
fn empty_charts_say_there_is_nothing_to_plot() {
    let mut report = sample_report();
    report.latency_cdfs.clear();
    // Plans were simulated, but the report keeps no CDF of them.
    let texts = svg_texts(&parse_svg(&latency_cdf_svg(&report).unwrap()));
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("This report keeps no latency distribution")),
        "{texts:?}"
    );
    assert!(
        !texts.iter().any(|t| t == "latency (ms, simulated)"),
        "{texts:?}"
    );

    for plan in std::iter::once(report.recommended.as_mut().unwrap())
        .chain(report.alternatives.iter_mut().map(|a| &mut a.plan))
    {
        plan.simulated = false;
    }
    let texts = svg_texts(&parse_svg(&latency_cdf_svg(&report).unwrap()));
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("No requests were simulated")),
        "{texts:?}"
    );
    let texts = svg_texts(&parse_svg(&pareto_svg(&report).unwrap()));
    assert!(
        texts.iter().any(|t| t.starts_with("No plan was simulated")),
        "{texts:?}"
    );
    assert!(!texts
        .iter()
        .any(|t| t == "feasible plan" || t == "cost (USD/month)"));
}

#[test]
fn svgs_render_for_an_empty_report() {
    let mut report = sample_report();
    report.recommended = None;
    report.feasible = false;
    report.alternatives.clear();
    report.latency_cdfs.clear();
    report.kernels.clear();
    report.roofline.points.clear();
    parse_svg(&pareto_svg(&report).unwrap());
    parse_svg(&latency_cdf_svg(&report).unwrap());
    parse_svg(&roofline_svg(&report).unwrap());
    let md = markdown(&report);
    assert!(md.contains("No plan meets every constraint."));
    assert!(candidates_csv(&report).unwrap().lines().count() == 1);
}

#[test]
fn markdown_labels_figures_and_links_pictures() {
    let md = markdown(&sample_report());
    for link in ["](pareto.svg)", "](latency-cdf.svg)", "](roofline.svg)"] {
        assert!(md.contains(link), "missing link {link}");
    }
    assert!(md.contains("simulated; compute projected"));
    assert!(md.contains("measured on local (AMD EPYC 9R14)"));
    assert!(md.contains("inputs unbounded: cannot precompute"));
    assert!(md.contains("$142.56/month"));
    // Every table row of a table has the same width (aligned columns).
    let mut block: Vec<usize> = Vec::new();
    for line in md.lines().chain(std::iter::once("")) {
        if line.starts_with('|') {
            block.push(line.chars().count());
        } else if !block.is_empty() {
            assert!(
                block.windows(2).all(|w| w[0] == w[1]),
                "ragged table in\n{md}"
            );
            block.clear();
        }
    }
}

#[test]
fn output_is_deterministic_apart_from_the_timestamp_line() {
    let first = sample_report();
    let mut second = sample_report();
    second.assumptions.generated_at = "2026-02-03T04:05:06Z".to_string();
    let formats = Formats::all();
    let a = render_files(&first, &formats).unwrap();
    let b = render_files(&second, &formats).unwrap();
    let again = render_files(&first, &formats).unwrap();
    assert_eq!(a, again, "same report must give byte-identical output");
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        let differing: Vec<(&str, &str)> =
            x.lines().zip(y.lines()).filter(|(l, r)| l != r).collect();
        let expected = usize::from(*name == REPORT_MD || *name == PLAN_JSON);
        assert_eq!(differing.len(), expected, "{name}: {differing:?}");
        assert_eq!(x.lines().count(), y.lines().count());
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn writer_writes_every_file_and_no_temp_files() {
    let out = tempfile::tempdir().unwrap();
    let report = sample_report();
    let written = write_report(&report, out.path(), &Formats::all()).unwrap();
    let dir = out.path().join("fraud-scoring");
    assert_eq!(written.len(), 8);
    assert!(written.iter().all(|p| p.parent() == Some(dir.as_path())));
    assert_eq!(
        entries(&dir),
        vec![
            "candidates.csv",
            "kernels.csv",
            "latency-cdf.svg",
            "latency.csv",
            "pareto.svg",
            "plan.json",
            "report.md",
            "roofline.svg"
        ]
    );
    let plan = read_plan(&fs::read_to_string(dir.join("plan.json")).unwrap()).unwrap();
    let written = workbench::report::writer::with_rounded_figures(&PlanFile::from_report(&report));
    assert_eq!(plan, written.unwrap());
    assert_eq!(
        fs::read_to_string(dir.join("report.md")).unwrap(),
        markdown(&report)
    );

    // Rewriting replaces files in place; a subset of formats writes only
    // those, and removes the earlier run's files of the other formats (they
    // would contradict this run's); files that are not the report's stay.
    fs::write(dir.join("notes.txt"), "mine").unwrap();
    let json_only = Formats::parse("json").unwrap();
    let written = write_report(&report, out.path(), &json_only).unwrap();
    assert_eq!(written, vec![dir.join("plan.json")]);
    assert_eq!(entries(&dir), vec!["notes.txt", "plan.json"]);
}

#[test]
fn writer_writes_nothing_when_rendering_fails() {
    let out = tempfile::tempdir().unwrap();
    let mut report = sample_report();
    report.alternatives[2].plan.latency_ms.p99 = f64::NAN;
    let err = write_report(&report, out.path(), &Formats::all()).unwrap_err();
    assert!(matches!(err, ReportError::NonFinite(_)), "{err}");
    assert!(err.to_string().contains("latency_ms.p99"));
    assert!(entries(out.path()).is_empty(), "{:?}", entries(out.path()));
}

#[test]
fn writer_removes_its_temp_files_when_a_write_fails() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("fraud-scoring");
    fs::create_dir_all(&dir).unwrap();
    // A directory where the last temp file (plan.json's) should go makes its creation fail
    // after every other file has been staged.
    let blocker = format!(".plan.json.{}.tmp", std::process::id());
    fs::create_dir(dir.join(&blocker)).unwrap();
    let err = write_report(&sample_report(), out.path(), &Formats::all()).unwrap_err();
    assert!(matches!(err, ReportError::Io { .. }), "{err}");
    assert_eq!(entries(&dir), vec![blocker]);
}

/// Every file of the directory, with its contents (directories as "<dir>").
fn snapshot_dir(dir: &Path) -> Vec<(String, String)> {
    entries(dir)
        .into_iter()
        .map(|name| {
            let contents = fs::read_to_string(dir.join(&name)).unwrap_or_else(|_| "<dir>".into());
            (name, contents)
        })
        .collect()
}

/// A destination that cannot be replaced (here plan.json is a directory)
/// fails the run before any file is touched: the directory keeps the earlier
/// run's report whole, never a mix of two runs, and no temp files.
#[test]
fn writer_replaces_the_report_set_as_a_whole_or_not_at_all() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("fraud-scoring");
    let first = sample_report();
    write_report(&first, out.path(), &Formats::all()).unwrap();
    fs::remove_file(dir.join(PLAN_JSON)).unwrap();
    fs::create_dir(dir.join(PLAN_JSON)).unwrap();
    let before = snapshot_dir(&dir);

    let mut second = sample_report();
    second.description = "the second run".to_string();
    second.recommended.as_mut().unwrap().cost_usd_per_month = 150.0;
    let err = write_report(&second, out.path(), &Formats::all()).unwrap_err();
    assert!(matches!(err, ReportError::Io { .. }), "{err}");
    assert!(err.to_string().contains("plan.json"), "{err}");
    assert_eq!(snapshot_dir(&dir), before);

    // The same for a file of a format not written this time, which the run
    // would remove: csv only, with report.md in the way.
    fs::remove_dir(dir.join(PLAN_JSON)).unwrap();
    write_report(&first, out.path(), &Formats::all()).unwrap();
    fs::remove_file(dir.join(REPORT_MD)).unwrap();
    fs::create_dir(dir.join(REPORT_MD)).unwrap();
    let before = snapshot_dir(&dir);
    let csv_only = Formats::parse("csv").unwrap();
    assert!(write_report(&second, out.path(), &csv_only).is_err());
    assert_eq!(snapshot_dir(&dir), before);
}

#[test]
fn writer_refuses_unsafe_scenario_names() {
    let out = tempfile::tempdir().unwrap();
    for name in ["../escape", "", "a/b", ".."] {
        let mut report = sample_report();
        report.scenario = name.to_string();
        assert!(matches!(
            write_report(&report, out.path(), &Formats::all()),
            Err(ReportError::BadScenarioName(_))
        ));
    }
    assert!(entries(out.path()).is_empty());
}

#[test]
fn formats_parse() {
    assert_eq!(Formats::parse("md,csv,json").unwrap(), Formats::all());
    assert_eq!(Formats::parse("all").unwrap(), Formats::all());
    let md = Formats::parse("markdown").unwrap();
    assert!(md.markdown && !md.csv && !md.json);
    assert!(matches!(
        Formats::parse("md,pdf"),
        Err(ReportError::UnknownFormat(f)) if f == "pdf"
    ));
}

#[test]
fn report_round_trips_through_serde() {
    let report = sample_report();
    let text = serde_json::to_string(&report).unwrap();
    let back: Report = serde_json::from_str(&text).unwrap();
    assert_eq!(back, report);
}

#[test]
fn markdown_reports_the_baseline_comparison() {
    let baseline = PlanFile::from_report(&steady(sample_report()));
    let mut report = steady(with_recommended(|p| {
        p.latency_ms.p99 *= 1.2;
        p.replicas = 3;
    }));
    report.baseline = Some(BaselineComparison {
        baseline: "old/fraud-scoring/plan.json".to_string(),
        tolerance: 0.10,
        findings: compare_with_baseline(&baseline, &report, 0.10),
    });
    let md = markdown(&report);
    assert!(md.contains("## Against the baseline"));
    assert!(md
        .contains("Baseline `old/fraud-scoring/plan.json`, tolerance 10.0%: **1 regression(s)**."));
    assert!(md.contains("- FAIL: p99 latency regressed 28.3 ms -> 34.0 ms (+20.0%)"));
    assert!(md.contains("- changed: plan changed: replicas 2 -> 3"));
    // Without a baseline there is no such section.
    assert!(!markdown(&sample_report()).contains("Against the baseline"));
    // The comparison survives a serde round trip of the whole report.
    let back: Report = serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap();
    assert_eq!(back.baseline, report.baseline);
}

/// A batch plan has no dynamic batching and no serving replicas: its table
/// says what the batch job does and where answers come from.
#[test]
fn a_batch_plan_describes_its_job_not_dynamic_batching() {
    let online = markdown(&sample_report());
    assert!(online.contains("| Dynamic batching"), "{online}");
    assert!(!online.contains("| Batch job"));
    let report = with_recommended(|p| {
        p.mode = ServingMode::Batch;
        p.max_batch = 128;
        p.utilisation = 0.0;
    });
    let md = markdown(&report);
    let row = |label: &str| {
        md.lines()
            .find(|l| l.starts_with(&format!("| {label} ")))
            .unwrap_or_else(|| panic!("no {label} row:\n{md}"))
            .to_string()
    };
    assert!(
        row("Batch job").contains("128 at a time"),
        "{}",
        row("Batch job")
    );
    assert!(!md.contains("| Dynamic batching"));
    assert!(row("Utilisation").contains("answered from storage"));
}
