//! The scenario library API: model specs, catalog overrides, derived figures,
//! discovery.

use std::path::{Path, PathBuf};

use workbench::hardware::{catalog, TargetKind};
use workbench::scenario::{self, ArrivalProcess, InputSpace, Mode, Placement, ScenarioErrors};
use workbench_kernels::{ConvBlock, ModelSpec, Precision};

const BASE: &str = r#"
[model]
[[model.variants]]
name = "m"
family = "mlp"
input = 16
hidden = [32, 8]
output = 4

[traffic]
process = "poisson"
rate_per_s = 100

[inputs]
space = "unbounded"
request_bytes = 100
response_bytes = 10

[objectives]
latency_percentile = 99
latency_ms = 50

[targets]
[[targets.cloud]]
catalog = "aws-c7i.large"
"#;

fn parse(text: &str) -> Result<scenario::Scenario, ScenarioErrors> {
    scenario::parse_str(text, Path::new("mem.toml"))
}

fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn model_section_becomes_a_model_spec_with_counts() {
    let s = parse(BASE).expect("valid");
    let v = &s.model.variants[0];
    let ModelSpec::Mlp(m) = &v.spec else {
        panic!("not an mlp: {:?}", v.spec)
    };
    assert_eq!((m.input, m.hidden.clone(), m.output), (16, vec![32, 8], 4));
    let c = v.counts();
    assert_eq!(c.params, (16 * 32 + 32) + (32 * 8 + 8) + (8 * 4 + 4));
    assert_eq!(c.weight_bytes(Precision::F16), 2 * c.params);
    // Defaults.
    assert_eq!(s.name, "mem");
    assert_eq!(s.traffic.duration_s, 60.0);
    assert_eq!(s.objectives.accuracy_floor, 0.99);
    assert!(s.constraints.data_may_leave_device);
    assert_eq!(s.search.modes, Mode::ALL.to_vec());
    assert_eq!(s.search.targets, vec!["aws-c7i.large".to_string()]);
    assert!(s.expect.is_none());
    let summary = s.summary();
    assert!(summary.contains("mlp 16-32-8-4"), "{summary}");
    assert!(summary.contains("p99 <= 50 ms"), "{summary}");
}

#[test]
fn convnet_blocks_and_defaults() {
    let text = BASE.replace(
        "family = \"mlp\"\ninput = 16\nhidden = [32, 8]\noutput = 4",
        "family = \"convnet\"\ninput_hwc = [12, 10, 3]\nclasses = 5\nblocks = [{ kind = \"standard\", out_channels = 8, stride = 2 }, { kind = \"depthwise-separable\", out_channels = 16, kernel = 5 }]",
    );
    let s = parse(&text).expect("valid");
    let ModelSpec::Convnet(c) = &s.model.variants[0].spec else {
        panic!("not a convnet")
    };
    assert_eq!((c.height, c.width, c.channels, c.classes), (12, 10, 3, 5));
    assert_eq!(
        c.blocks,
        vec![
            ConvBlock::Standard {
                out_channels: 8,
                kernel: 3,
                stride: 2
            },
            ConvBlock::DepthwiseSeparable {
                out_channels: 16,
                kernel: 5,
                stride: 1
            },
        ]
    );
}

/// The kernels' `ds-cnn-small` (what `tile_ab` times for narrow feature maps)
/// is the wake-word scenario's model, so its figures speak for that scenario.
#[test]
fn the_kernels_ds_cnn_small_is_the_wake_word_model() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/wake-word.toml");
    let s = scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let variant = s
        .model
        .variants
        .iter()
        .find(|v| v.name == "ds-cnn-small")
        .expect("wake-word has ds-cnn-small");
    assert_eq!(variant.spec, workbench_kernels::models::ds_cnn_small_spec());
}

#[test]
fn catalog_entries_are_overridden_field_by_field() {
    let text = BASE.replace(
        "catalog = \"aws-c7i.large\"",
        "name = \"cheap\"\ncatalog = \"aws-c7i.large\"\nusd_per_hour = 0.05\nmemory_gb = 2",
    );
    let s = parse(&text).expect("valid");
    let t = &s.targets.cloud[0];
    let base = catalog::find("aws-c7i.large").expect("catalog entry");
    assert_eq!(t.spec.name, "cheap");
    assert_eq!(t.spec.kind, TargetKind::Cloud);
    assert_eq!(t.spec.usd_per_hour, 0.05);
    assert_eq!(t.spec.memory_bytes, 2_000_000_000);
    assert_eq!(t.spec.peak_gflops_f32, base.peak_gflops_f32);
    assert_eq!(t.spec.cores, base.cores);
    assert!(t.spec.source.contains("overrides"));
    assert_eq!(t.catalog.as_deref(), Some("aws-c7i.large"));
    // An f32 peak of its own scales the catalog's int8 peak alike.
    let text = BASE.replace(
        "catalog = \"aws-c7i.large\"",
        "catalog = \"aws-c7i.large\"\npeak_gflops_f32 = 10",
    );
    let spec = &parse(&text).expect("valid").targets.cloud[0].spec;
    assert_eq!(spec.peak_gflops_f32, 10.0);
    let ratio = base.peak_gops_int8 / base.peak_gflops_f32;
    assert!(ratio > 1.0, "{ratio}");
    assert!(
        (spec.peak_gops_int8 - 10.0 * ratio).abs() < 1e-9,
        "{spec:?}"
    );
    // Both given: both kept.
    let text = BASE.replace(
        "catalog = \"aws-c7i.large\"",
        "catalog = \"aws-c7i.large\"\npeak_gflops_f32 = 10\npeak_gops_int8 = 7",
    );
    assert_eq!(
        parse(&text).expect("valid").targets.cloud[0]
            .spec
            .peak_gops_int8,
        7.0
    );
}

#[test]
fn target_without_catalog_must_give_its_figures() {
    let text = BASE.replace("catalog = \"aws-c7i.large\"", "name = \"mystery\"");
    let errs = errors(&text);
    for key in [
        "cores",
        "memory_gb",
        "peak_gflops_f32",
        "mem_bandwidth_gbs",
        "usd_per_hour",
    ] {
        assert!(
            errs.iter()
                .any(|e| e.contains(&format!("targets.cloud[0].{key}: missing required key"))),
            "no missing-{key} error in {errs:#?}"
        );
    }
    // A speed factor stands in for the peaks.
    let text = BASE.replace(
        "catalog = \"aws-c7i.large\"",
        "name = \"box\"\ncores = 2\nmemory_gb = 4\nusd_per_hour = 0.1\nspeed_factor = 1.5",
    );
    let s = parse(&text).expect("valid with speed_factor");
    assert_eq!(s.targets.cloud[0].speed_factor, Some(1.5));
    // Its peaks are not stated, not zero: `validate` says so.
    let line = s
        .summary()
        .lines()
        .find(|l| l.contains(" box "))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(line.contains("GFLOP/s f32 not stated"), "{line}");
    assert!(line.contains("GB/s not stated"), "{line}");
    assert!(!line.contains(" 0 GFLOP/s"), "{line}");
}

#[test]
fn traffic_shapes_and_peaks() {
    let bursty = BASE.replace(
        "process = \"poisson\"",
        "process = \"bursty\"\nburst_on_s = 1\nburst_off_s = 3",
    );
    let s = parse(&bursty).expect("valid");
    assert_eq!(
        s.traffic.process,
        ArrivalProcess::Bursty {
            on_s: 1.0,
            off_s: 3.0
        }
    );
    assert_eq!(s.traffic.peak_rate_per_s(), 400.0);
    let diurnal = BASE.replace(
        "process = \"poisson\"",
        "process = \"diurnal\"\npeak_factor = 3",
    );
    let s = parse(&diurnal).expect("valid");
    assert_eq!(s.traffic.peak_rate_per_s(), 300.0);
    // A key of another process is an error, not silently ignored.
    let wrong = BASE.replace(
        "process = \"poisson\"",
        "process = \"poisson\"\npeak_factor = 3",
    );
    let errs = errors(&wrong);
    assert!(
        errs[0].contains(
            "traffic.peak_factor: key `peak_factor` applies only to process = \"diurnal\""
        ),
        "{errs:?}"
    );
}

#[test]
fn trace_is_read_relative_to_the_scenario_file() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/valid/trace-replay-custom-target.toml");
    let s = scenario::load(&path).expect("valid");
    let ArrivalProcess::Trace { timestamps_s, .. } = &s.traffic.process else {
        panic!("not a trace")
    };
    assert_eq!(timestamps_s.len(), 500);
    assert!(timestamps_s.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(
        s.traffic.duration_s,
        *timestamps_s.last().expect("non-empty")
    );
    assert_eq!(
        s.inputs.space,
        InputSpace::Finite {
            distinct_inputs: 10_000
        }
    );
    assert_eq!(s.search.batch_sizes, vec![1, 8]);
    assert_eq!(
        s.expect.map(|e| (e.mode, e.placement)),
        Some((Mode::Batch, Placement::Cloud))
    );

    // A trace out of order is refused with its line.
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    std::fs::write(dir.join("t.csv"), "t\n0.5\n0.2\n").expect("write trace");
    let text = BASE.replace(
        "process = \"poisson\"\nrate_per_s = 100",
        "process = \"trace\"\ntrace_csv = \"t.csv\"",
    );
    let err = scenario::parse_str(&text, &dir.join("s.toml")).expect_err("unordered trace");
    assert!(
        err.to_string()
            .contains("trace line 3: timestamp 0.2 s is earlier than the previous 0.5 s"),
        "{err}"
    );
}

#[test]
fn absurd_models_are_refused_with_the_memory_they_need() {
    let text = BASE.replace("hidden = [32, 8]", "hidden = [1_000_000_000_000]");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("too large to measure"), "{errs:?}");
    assert!(errs[0].contains("TB"), "{errs:?}");
    // i64::MAX widths saturate rather than overflow.
    let text = BASE.replace(
        "hidden = [32, 8]",
        "hidden = [9223372036854775807, 9223372036854775807]",
    );
    assert!(errors(&text)[0].contains("too large to measure"));
}

/// Measuring holds about four copies of the f32 weights while backends
/// compile: a model whose weights alone fit the 8 GiB limit but four copies
/// do not is refused (it would be killed for memory on a 24 GiB machine).
#[test]
fn the_memory_check_counts_the_weight_copies_measuring_holds() {
    let layer = |width: u64| {
        BASE.replace("input = 16", &format!("input = {width}"))
            .replace("hidden = [32, 8]", &format!("hidden = [{width}, 8]"))
    };
    // 40000 x 40000 f32: 6.4 GB of weights, 25.6 GB held while measuring.
    let errs = errors(&layer(40_000));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("too large to measure"), "{errs:?}");
    assert!(errs[0].contains("held 4 times over"), "{errs:?}");
    // 20000 x 20000: 1.6 GB of weights, 6.4 GB held: measured.
    assert!(parse(&layer(20_000)).is_ok());
}

#[test]
fn parallel_overhead_comes_from_the_catalog_or_the_scenario() {
    let s = parse(BASE).expect("valid");
    let default = s.targets.cloud[0].spec.parallel_overhead_us;
    assert_eq!(default, workbench::hardware::DEFAULT_PARALLEL_OVERHEAD_US);
    let text = BASE.replace(
        "catalog = \"aws-c7i.large\"",
        "catalog = \"aws-c7i.large\"\nparallel_overhead_us = 60",
    );
    let spec = &parse(&text).expect("valid").targets.cloud[0].spec;
    assert_eq!(spec.parallel_overhead_us, 60.0);
    assert!(
        spec.source.contains("with scenario overrides"),
        "{}",
        spec.source
    );
    let bad = BASE.replace(
        "catalog = \"aws-c7i.large\"",
        "catalog = \"aws-c7i.large\"\nparallel_overhead_us = -1",
    );
    let errs = errors(&bad);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("parallel_overhead_us"), "{errs:?}");
    assert!(errs[0].contains("fork and join"), "{errs:?}");
}

#[test]
fn cache_and_threads_per_core_come_from_the_catalog_or_the_scenario() {
    let spec = &parse(BASE).expect("valid").targets.cloud[0].spec;
    // c7i.large: one Sapphire Rapids core, 2 MiB L2 + 1.875 MiB of L3, two vCPUs on it.
    assert_eq!(spec.cache_bytes, 3_968 * 1024);
    assert_eq!(
        (spec.cores, spec.threads_per_core, spec.physical_cores()),
        (2, 2, 1)
    );
    let with = |extra: &str| {
        BASE.replace(
            "catalog = \"aws-c7i.large\"",
            &format!("catalog = \"aws-c7i.large\"\n{extra}"),
        )
    };
    let text = with("cache_mb = 12.5\nthreads_per_core = 1");
    let spec = &parse(&text).expect("valid").targets.cloud[0].spec;
    assert_eq!(spec.cache_bytes, 12_500_000);
    assert_eq!(spec.physical_cores(), 2);
    let errs = errors(&with("cache_mb = -1"));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("cache_mb") && errs[0].contains("L2"),
        "{errs:?}"
    );
    let errs = errors(&with("threads_per_core = 0"));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("threads_per_core"), "{errs:?}");
}

#[test]
fn errors_are_all_reported_in_file_order() {
    let text = BASE
        .replace("rate_per_s = 100", "rate_per_s = -1\nduraton_s = 5")
        .replace("latency_ms = 50", "latency_ms = 0")
        .replace("output = 4", "output = 0");
    let err = parse(&text).expect_err("invalid");
    let lines: Vec<usize> = err.errors.iter().map(|e| e.line).collect();
    assert_eq!(err.errors.len(), 4, "{err}");
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
    assert!(err.to_string().contains("did you mean `duration_s`?"));
}

#[test]
fn discover_expands_directories_and_keeps_files() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let found = scenario::discover(&[root.join("scenarios"), root.join("no-such.toml")]);
    assert!(found.len() >= 11);
    assert!(found
        .iter()
        .all(|p| p.extension().is_some_and(|e| e == "toml")));
    let mut sorted = found[..found.len() - 1].to_vec();
    sorted.sort();
    assert_eq!(sorted, found[..found.len() - 1]);
    assert_eq!(found.last(), Some(&root.join("no-such.toml")));
    assert!(scenario::discover(&[root.join("tests/fixtures/valid/traces")]).is_empty());
}

#[test]
fn expectation_must_be_reachable() {
    let text = format!("{BASE}\n[search]\nmodes = [\"online-http\"]\n\n[expect]\nmode = \"online-stream\"\nplacement = \"edge\"\n");
    let errs = errors(&text);
    let joined = errs.join("\n");
    assert!(
        joined.contains("expect.mode: expected mode `online-stream` is not in search.modes"),
        "{joined}"
    );
    assert!(
        joined.contains("placement `edge` needs at least one [[targets.edge]]"),
        "{joined}"
    );
    assert!(joined.contains("needs a [targets.broker]"), "{joined}");
}

/// A search space whose every mode needs a target the scenario lacks is
/// refused before anything is measured (a run had measured 24 configurations
/// and then rejected every plan with "no broker among the targets"); one
/// plannable mode among them is enough.
#[test]
fn a_search_space_no_mode_of_which_can_be_planned_is_refused() {
    let stream_only = format!("{BASE}\n[search]\nmodes = [\"online-stream\", \"batch\"]\n");
    let joined = errors(&stream_only).join("\n");
    assert!(
        joined.contains("search.modes: no mode listed can be planned"),
        "{joined}"
    );
    assert!(
        joined.contains("`online-stream` needs a [targets.broker] table"),
        "{joined}"
    );
    assert!(
        joined.contains("`batch` needs a [targets.storage] table"),
        "{joined}"
    );
    let with_broker =
        stream_only.replace("[search]", "[targets.broker]\nper_hop_ms = 4\n\n[search]");
    assert!(parse(&with_broker).is_ok());
    let with_http = format!("{BASE}\n[search]\nmodes = [\"online-stream\", \"online-http\"]\n");
    assert!(parse(&with_http).is_ok());
    // Batch on devices keeps its answers there: no store needed...
    let on_devices = stream_only.replace(
        "[search]",
        "[[targets.edge]]\ncatalog = \"phone-midrange\"\n\n[search]",
    );
    assert!(parse(&on_devices).is_ok());
    // ...unless the devices are not a placement the search may use.
    let cloud_only = on_devices.replace("[search]\n", "[search]\nplacements = [\"cloud\"]\n");
    let joined = errors(&cloud_only).join("\n");
    assert!(
        joined.contains("`batch` needs a [targets.storage] table"),
        "{joined}"
    );
}

/// Validation and the report writer agree on scenario names: a name
/// validation accepts is one the writer can write under, and a name the writer
/// refuses is refused by validation first (file, line, column), before
/// anything is measured.
#[test]
fn validation_accepts_only_names_the_report_writer_can_write() {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("scenario-lib-names-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let formats = workbench::report::Formats {
        markdown: false,
        csv: false,
        json: true,
    };
    for name in [
        "fraud-scoring",
        "v1.2_final",
        "A",
        "..",
        ".",
        "../../escape",
        "a/b",
        "a\\b",
        "café-recs",
        "x\u{1b}[2J",
        " padded ",
        "",
    ] {
        let quoted = toml::Value::String(name.to_string()).to_string();
        let validated = parse(&format!("name = {quoted}\n{BASE}"));
        let mut report = workbench::report::fixtures::sample_report();
        report.scenario = name.to_string();
        let written = workbench::report::write_report(&report, &out, &formats);
        match (&validated, &written) {
            (Ok(_), Err(e)) => panic!("{name:?} validates but the writer refuses it: {e}"),
            (Err(_), Ok(_)) if name.is_empty() => {} // the writer is never given ""
            (Err(e), Ok(_))
                if name
                    .chars()
                    .all(|c| c.is_alphanumeric() || "-_.".contains(c)) =>
            {
                // Letters beyond ASCII: stricter than the writer needs be, for now.
                assert!(e.to_string().contains("ASCII letters"), "{e}");
            }
            (Err(e), Ok(_)) => panic!("{name:?} is refused ({e}) but the writer writes it"),
            _ => {}
        }
        if let Err(e) = &validated {
            assert!(
                e.errors
                    .iter()
                    .any(|e| e.key == "name" && e.line == 1 && e.col == 8),
                "{e}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&out);
}

/// A dangling `*.toml` symbolic link in a directory is kept by discovery, so
/// that loading says what is wrong with it instead of the directory seeming
/// empty.
#[cfg(unix)]
#[test]
fn a_dangling_symlink_in_a_directory_is_reported_not_skipped() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("scenario-lib-dangling-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sub.toml")).expect("scratch dir");
    let link = dir.join("b.toml");
    std::os::unix::fs::symlink(dir.join("gone.toml"), &link).expect("symlink");
    // A directory named *.toml is not a scenario.
    assert_eq!(scenario::scenarios_in_dir(&dir), vec![link.clone()]);
    let err = scenario::load(&link).expect_err("a dangling link is refused");
    assert_eq!(err.errors.len(), 1);
    assert!(
        err.errors[0].message.contains("symbolic link")
            && err.errors[0].message.contains("gone.toml"),
        "{err}"
    );
}

/// Every problem at once: an invalid link, variant or reference does not hide
/// the others.
#[test]
fn one_problem_does_not_hide_its_neighbours() {
    let text = BASE
        .replace(
            "[targets]\n",
            "[targets]\n[[targets.links]]\nname = \"l\"\nrtt_median_ms = 10\nrtt_p99_ms = 5\nbandwidth_mbps = 0\n",
        )
        .replace(
            "[model]\n",
            "[model]\nreference = \"nope\"\n[[model.variants]]\nname = \"m\"\nfamily = \"transformer\"\nseq_len = 4\nd_model = 10\nheads = 3\nffn = 8\nlayers = 1\n",
        );
    let joined = errors(&text).join("\n");
    for fragment in [
        "targets.links[0].rtt_p99_ms: value 5 is not accepted",
        "targets.links[0].bandwidth_mbps: value 0 is not accepted",
        "model.variants[0].heads: value 3 is not accepted",
        "model.variants[1].name: variant name `m` is used twice",
        // the names written, each once, even when their variants are invalid
        "reference variant `nope` is not accepted (accepted: m)",
    ] {
        assert!(joined.contains(fragment), "no `{fragment}` in:\n{joined}");
    }
}

/// `[[traffic]]` (an array of tables) where a table is expected says so.
#[test]
fn an_array_of_tables_for_a_table_is_named() {
    let text = BASE.replace("[traffic]", "[[traffic]]");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].contains("traffic: invalid type: an array of tables ([[traffic]]), expected a single table: write [traffic]"),
        "{errs:#?}"
    );
}

/// A target without `link` takes the only link defined; with several it must
/// name one (the first had been taken silently: an unused satellite link
/// defined first had timed a cloud target at 600 ms).
#[test]
fn a_target_without_a_link_takes_the_only_one_or_must_name_one() {
    let link = |name: &str, rtt: u32| {
        format!(
            "\n[[targets.links]]\nname = \"{name}\"\nrtt_median_ms = {rtt}\nrtt_p99_ms = {rtt}\nbandwidth_mbps = 100\n"
        )
    };
    let one = format!("{BASE}{}", link("wan", 40));
    let s = parse(&one).expect("valid");
    assert_eq!(s.targets.cloud[0].link.as_deref(), Some("wan"));
    let none = parse(BASE).expect("valid");
    assert_eq!(none.targets.cloud[0].link, None);
    let several = format!("{BASE}{}{}", link("sat", 600), link("wan", 40));
    let errs = errors(&several);
    assert!(
        errs.iter().any(|e| e.contains("targets.cloud[0].link")
            && e.contains("several links are defined (sat, wan)")),
        "{errs:#?}"
    );
    let named = several.replace(
        "catalog = \"aws-c7i.large\"",
        "catalog = \"aws-c7i.large\"\nlink = \"wan\"",
    );
    assert_eq!(
        parse(&named).expect("valid").targets.cloud[0]
            .link
            .as_deref(),
        Some("wan")
    );
}

/// Keys of an edge class on a cloud target are all reported at once (the
/// first had hidden the second).
#[test]
fn edge_only_keys_on_a_cloud_target_are_all_reported() {
    let text = BASE.replace(
        "catalog = \"aws-c7i.large\"",
        "catalog = \"aws-c7i.large\"\nfleet_size = 10\ntraffic_share = 0.5",
    );
    let errs = errors(&text);
    for key in ["fleet_size", "traffic_share"] {
        assert!(
            errs.iter().any(|e| e.contains(&format!(
                "targets.cloud[0].{key}: key `{key}` applies only to"
            ))),
            "no {key} error in {errs:#?}"
        );
    }
}

/// A batch job can run on a fixed schedule ("nightly") and within a window
/// ("done by 06:00"): the schedule sets the freshness when none is written,
/// and keys that cannot hold together are refused, each at its own key.
#[test]
fn a_batch_schedule_sets_the_freshness_or_is_refused_with_the_reason() {
    let finite = |extra: &str| {
        BASE.replace(
            "space = \"unbounded\"",
            &format!("space = \"finite\"\ndistinct_inputs = 1000\n{extra}"),
        )
    };
    let nightly =
        parse(&finite("refresh_every_s = 86_400\nbatch_window_s = 28_800")).expect("valid");
    assert_eq!(nightly.inputs.refresh_every_s, Some(86_400.0));
    assert_eq!(nightly.inputs.batch_window_s, Some(28_800.0));
    assert_eq!(nightly.inputs.freshness_s, 86_400.0 + 28_800.0);
    let no_window = parse(&finite("refresh_every_s = 3_600")).expect("valid");
    assert_eq!(no_window.inputs.freshness_s, 7_200.0);
    let bounded = parse(&finite("refresh_every_s = 3_600\nfreshness_s = 5_000")).expect("valid");
    assert_eq!(bounded.inputs.freshness_s, 5_000.0);

    let cases = [
        (
            finite("refresh_every_s = 86_400\nfreshness_s = 86_400"),
            "inputs.freshness_s: value 86400 is not accepted with refresh_every_s = 86400",
        ),
        (
            finite("refresh_every_s = 3_600\nbatch_window_s = 7_200"),
            "inputs.batch_window_s: value 7200 is not accepted: a run must end before the next starts",
        ),
        (
            finite("batch_window_s = 600"),
            "inputs.batch_window_s: key `batch_window_s` applies only to a batch job",
        ),
        (
            BASE.replace(
                "space = \"unbounded\"",
                "space = \"unbounded\"\nrefresh_every_s = 60",
            ),
            "inputs.refresh_every_s: key `refresh_every_s` applies only to space = \"finite\"",
        ),
        (
            finite("refresh_every_s = 0"),
            "inputs.refresh_every_s: value 0 is not accepted",
        ),
    ];
    for (text, expected) in cases {
        let errs = errors(&text);
        assert!(
            errs.iter().any(|e| e.contains(expected)),
            "expected {expected:?} in {errs:#?}"
        );
    }
    // A window alone bounds a freshness-driven job.
    let windowed = parse(&finite("freshness_s = 86_400\nbatch_window_s = 3_600")).expect("valid");
    assert_eq!(windowed.inputs.batch_window_s, Some(3_600.0));
    assert_eq!(windowed.inputs.refresh_every_s, None);
}

/// `idle_power_watts` comes from the catalog (a Raspberry Pi 4 idles at 3 W,
/// a phone counts 0), a scenario may state its own, and one above the draw
/// under load is refused with the key and what is accepted.
#[test]
fn idle_power_comes_from_the_catalog_and_may_not_exceed_the_busy_draw() {
    let edge = |extra: &str| {
        BASE.replace(
            "catalog = \"aws-c7i.large\"",
            &format!("catalog = \"aws-c7i.large\"\n\n[[targets.edge]]\ncatalog = \"raspberry-pi-4\"\n{extra}"),
        )
    };
    let s = parse(&edge("")).expect("valid");
    assert_eq!(s.targets.edge[0].spec.idle_power_watts, 3.0);
    assert_eq!(s.targets.cloud[0].spec.idle_power_watts, 0.0);
    assert_eq!(
        catalog::find("phone-midrange")
            .expect("entry")
            .idle_power_watts,
        0.0
    );
    // The summary states both draws of a device counted awake.
    assert!(
        s.summary().contains("6.4 W busy / 3 W awake idle"),
        "{}",
        s.summary()
    );
    let s = parse(&edge("idle_power_watts = 0.5")).expect("valid");
    assert_eq!(s.targets.edge[0].spec.idle_power_watts, 0.5);
    let errs = errors(&edge("idle_power_watts = 7"));
    assert!(
        errs.iter()
            .any(|e| e.contains("targets.edge[0].idle_power_watts")
                && e.contains("above power_watts 6.4 W")
                && e.contains("accepted is 0 up to power_watts")),
        "{errs:?}"
    );
    let errs = errors(&edge("idle_power_watts = -1"));
    assert!(
        errs.iter().any(|e| e.contains("idle_power_watts")),
        "{errs:?}"
    );
}
