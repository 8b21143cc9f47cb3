//! The autotuned backend against naive, and log reuse across compiles.

use workbench_kernels::autotune::TuneBudget;
use workbench_kernels::backends::autotuned::{gemm_shapes, AutotunedBackend, GemmShape};
use workbench_kernels::backends::quantized::seeded_inputs;
use workbench_kernels::{
    compile, Activation, BackendKind, CompileOptions, ConvBlock, ConvnetSpec, Executable, Graph,
    MlpSpec, ModelSpec, SimdLevel,
};

fn rel_err(got: &[f32], want: &[f32]) -> f64 {
    let d: f64 = got
        .iter()
        .zip(want)
        .map(|(a, b)| f64::from(a - b).powi(2))
        .sum();
    let n: f64 = want.iter().map(|b| f64::from(*b).powi(2)).sum();
    (d / n).sqrt()
}

fn backend(dir: &std::path::Path, fingerprint: &str) -> AutotunedBackend {
    AutotunedBackend {
        log_path: Some(dir.join("tuning.jsonl")),
        budget: TuneBudget {
            max_trials: 6,
            max_seconds: None,
        },
        tune_batch: 4,
        fingerprint: Some(fingerprint.into()),
        reps: 1,
        ..AutotunedBackend::default()
    }
}

#[test]
fn autotuned_matches_naive_and_reuses_its_log() {
    let dir = std::env::temp_dir().join(format!("wb-autotuned-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let graphs = [
        Graph::from_spec(
            &ModelSpec::Mlp(MlpSpec {
                input: 33,
                hidden: vec![65],
                output: 7,
                activation: Activation::Gelu,
            }),
            1,
        )
        .expect("mlp"),
        Graph::from_spec(
            &ModelSpec::Convnet(ConvnetSpec {
                height: 9,
                width: 7,
                channels: 3,
                blocks: vec![ConvBlock::DepthwiseSeparable {
                    out_channels: 5,
                    kernel: 3,
                    stride: 1,
                }],
                classes: 3,
                activation: Activation::Relu,
            }),
            2,
        )
        .expect("convnet"),
    ];
    for g in &graphs {
        let b = backend(&dir, "test-fp-a");
        let mut reports = 0usize;
        let (mut exe, summary) = b
            .compile_tuned(g, &CompileOptions::default(), &mut |_, _| reports += 1)
            .expect("tune");
        let simd = CompileOptions::default().resolved_simd().expect("simd");
        let shapes = gemm_shapes(g, 4, simd).len();
        assert_eq!(summary.shapes.len(), shapes);
        assert_eq!(summary.trials, 6 * shapes);
        assert_eq!(summary.logged_trials, 6 * shapes);
        assert_eq!(
            b.logged_trials(g, &CompileOptions::default())
                .expect("count"),
            6 * shapes
        );
        assert_eq!(reports, 6 * shapes);
        // One tile line per tuned shape in the printed program.
        assert_eq!(
            exe.lowered().matches("  gemm ").count(),
            shapes,
            "{}",
            exe.lowered()
        );
        assert_eq!(exe.backend(), BackendKind::Autotuned);
        assert!(exe.lowered().contains("autotuned"));
        let mut naive = compile(g, BackendKind::Naive, &CompileOptions::default()).expect("naive");
        for batch in [1, 3] {
            let x = seeded_inputs(g.input_len(), batch, 4);
            let want = naive.run(&x, batch).expect("naive").to_vec();
            let got = exe.run(&x, batch).expect("run").to_vec();
            assert!(rel_err(&got, &want) <= 1e-5, "{}", rel_err(&got, &want));
        }
        // Same machine: everything from the log, no trials, same tile.
        let (_, again) = b
            .compile_tuned(g, &CompileOptions::default(), &mut |_, _| {})
            .expect("retune");
        assert_eq!(again.trials, 0);
        assert_eq!(
            again.logged_trials,
            6 * shapes,
            "reused tiles keep their trial count"
        );
        assert!(again.shapes.iter().all(|s| s.from_log));
        assert_eq!(again.tile, summary.tile);
        // Another machine: tunes again.
        let (_, other) = backend(&dir, "test-fp-b")
            .compile_tuned(g, &CompileOptions::default(), &mut |_, _| {})
            .expect("other");
        assert_eq!(other.trials, 6 * shapes);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn autotuned_is_registered() {
    let g = Graph::from_spec(
        &ModelSpec::Mlp(MlpSpec {
            input: 4,
            hidden: vec![],
            output: 2,
            activation: Activation::Relu,
        }),
        1,
    )
    .expect("mlp");
    let dir = std::env::temp_dir().join(format!("wb-autotuned-reg-{}", std::process::id()));
    // The default backend logs under WORKBENCH_CACHE_DIR; only this test sets it.
    // No other test in this binary reads the variable, so setting it here is race-free.
    std::env::set_var("WORKBENCH_CACHE_DIR", &dir);
    let exe: Box<dyn Executable> =
        compile(&g, BackendKind::Autotuned, &CompileOptions::default()).expect("compile");
    assert_eq!(exe.backend(), BackendKind::Autotuned);
    assert!(dir.join("tuning.jsonl").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn each_gemm_step_runs_with_the_tile_of_its_shape() {
    use workbench_kernels::autotune::{RecordKind, TrialRecord, TuningLog, LOG_VERSION};
    use workbench_kernels::backends::autotuned::{tile_space, tune_key};
    use workbench_kernels::TileParams;
    let dir = std::env::temp_dir().join(format!("wb-autotuned-step-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let g = Graph::from_spec(
        &ModelSpec::Mlp(MlpSpec {
            input: 37,
            hidden: vec![70, 19],
            output: 5,
            activation: Activation::Relu,
        }),
        9,
    )
    .expect("mlp");
    let opts = CompileOptions::default();
    let simd = workbench_kernels::simd::detect();
    let default = TileParams::for_this_machine().adapted_to(simd);
    let space = tile_space(simd, &default, 1);
    // Commit a different (deliberately odd) tile per shape, as a finished tune would.
    let mut log = TuningLog::open(&dir.join("tuning.jsonl")).expect("log");
    let shapes: Vec<_> = gemm_shapes(&g, 4, simd).into_keys().collect();
    assert_eq!(shapes.len(), 3);
    let mut want_tiles = Vec::new();
    for (i, shape) in shapes.iter().enumerate() {
        let mut params = workbench_kernels::autotune::Params::new();
        for d in &space.dims {
            // A different corner of the space for each shape.
            let v = if i % 2 == 0 {
                d.values[0]
            } else {
                d.values[d.values.len() - 1]
            };
            params.insert(d.name.clone(), v);
        }
        let key = tune_key(shape);
        log.append(TrialRecord {
            version: LOG_VERSION,
            fingerprint: "fp-steps".into(),
            space: space.name.clone(),
            op: key.op,
            shape: key.shape,
            params: params.clone(),
            time_ns: 1.0,
            kind: RecordKind::Best,
        })
        .expect("append");
        want_tiles.push(params);
    }
    let (mut exe, summary) = backend(&dir, "fp-steps")
        .compile_tuned(&g, &opts, &mut |_, _| {})
        .expect("compile");
    assert_eq!(summary.trials, 0);
    assert!(summary.shapes.iter().all(|s| s.from_log));
    for (s, want) in summary.shapes.iter().zip(&want_tiles) {
        assert_eq!(s.tile.mc as i64, want["mc"], "{:?}", s.shape);
        assert_eq!(s.tile.kc as i64, want["kc"], "{:?}", s.shape);
        assert_eq!(s.tile.nr as i64, want["nr"], "{:?}", s.shape);
        assert_eq!(s.tile.loop_order.index() as i64, want["order"]);
        assert_eq!(s.tile.k_split as i64, want["ksplit"]);
        assert_eq!(i64::from(s.tile.b_in_place), want["bdirect"]);
        assert_eq!(i64::from(s.tile.a_in_place), want["adirect"]);
    }
    assert_ne!(summary.shapes[0].tile, summary.shapes[1].tile);
    // A two-thread compile is not answered by the one-thread log (which
    // never tried a second thread): its shapes are tuned.
    let two_threads = CompileOptions {
        threads: 2,
        ..opts.clone()
    };
    let (_, summary) = backend(&dir, "fp-steps")
        .compile_tuned(&g, &two_threads, &mut |_, _| {})
        .expect("compile on two threads");
    assert!(summary.trials > 0);
    assert!(summary.shapes.iter().all(|s| !s.from_log), "{summary:?}");
    // Whatever tile each step got, the results match naive.
    let mut naive = compile(&g, BackendKind::Naive, &opts).expect("naive");
    for batch in [1, 4, 5] {
        let x = seeded_inputs(g.input_len(), batch, 6);
        let want = naive.run(&x, batch).expect("naive").to_vec();
        let got = exe.run(&x, batch).expect("run").to_vec();
        assert!(rel_err(&got, &want) <= 1e-5, "batch {batch}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Log lines from before the schedule knobs (the v1 space, or parameters
/// without `order` / `ksplit` / `bdirect`) load without error and are not
/// reused: the shape is tuned again over the new space, whose first trials are
/// the incumbent and then each knob changed alone; the next tune reuses the log.
#[test]
fn old_log_lines_are_ignored_and_every_knob_is_measured() {
    use workbench_kernels::autotune::{RecordKind, TuningLog};
    use workbench_kernels::backends::autotuned::{shape_default, tile_space, GemmShape};
    use workbench_kernels::tile::supported_k_splits;
    use workbench_kernels::TileParams;
    let dir = std::env::temp_dir().join(format!("wb-autotuned-old-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("tuning.jsonl");
    let simd = workbench_kernels::simd::detect();
    let default = TileParams::for_this_machine().adapted_to(simd);
    let space = tile_space(simd, &default, 1);
    let shape = GemmShape {
        m: 1,
        n: 40,
        k: 9,
        packed_b: false,
    };
    let old_params = r#"{"kc":384,"mc":336,"mr":12,"nc":4096,"nr":32,"threads":1}"#;
    let old = [
        format!(
            r#"{{"version":1,"fingerprint":"fp-old","space":"tile-{}-v1","op":"sgemm","shape":[1,40,9],"params":{old_params},"time_ns":1.0,"kind":"best"}}"#,
            simd.name()
        ),
        format!(
            r#"{{"version":1,"fingerprint":"fp-old","space":"{}","op":"sgemm","shape":[1,40,9],"params":{old_params},"time_ns":1.0,"kind":"best"}}"#,
            space.name
        ),
    ];
    std::fs::write(&path, old.join("\n") + "\n").expect("write");
    let mut log = TuningLog::open(&path).expect("open");
    assert_eq!(log.records().len(), 2);
    assert_eq!(log.skipped_lines(), 0);
    let b = AutotunedBackend {
        budget: TuneBudget {
            max_trials: 9,
            max_seconds: None,
        },
        ..backend(&dir, "fp-old")
    };
    let tuned = b
        .tune_shape(shape, simd, &default, 1, &mut log, &mut |_| {})
        .expect("tune");
    assert!(!tuned.from_log);
    assert_eq!(tuned.trials, 9);
    assert_eq!(tuned.incumbent, shape_default(&shape, simd, &default));
    let trials: Vec<_> = log
        .records()
        .iter()
        .filter(|r| r.kind == RecordKind::Trial && r.space == space.name)
        .map(|r| r.params.clone())
        .collect();
    assert_eq!(trials.len(), 9);
    let inc = &trials[0];
    assert_eq!(
        (inc["order"], inc["ksplit"], inc["bdirect"], inc["kc"]),
        (default.loop_order.index() as i64, 1, 0, default.kc as i64)
    );
    // Each knob changed alone, before any model-guided trial.
    let alone = |key: &str, value: i64| {
        trials[1..].iter().any(|p| {
            p[key] == value
                && p.iter()
                    .all(|(k, v)| k == key || v == inc.get(k).unwrap_or(&-1))
        })
    };
    // The other loop order (the default is per SIMD level).
    assert!(alone("order", 1 - default.loop_order.index() as i64));
    assert!(alone("bdirect", 1));
    if workbench_kernels::tile::a_in_place_supported(simd) {
        assert!(alone("adirect", 1));
    }
    for &k_split in supported_k_splits(simd).iter().filter(|&&k| k > 1) {
        assert!(alone("ksplit", k_split as i64), "k_split {k_split}");
    }
    // Reopened: the committed tile is reused, no trials.
    let mut log = TuningLog::open(&path).expect("reopen");
    let again = b
        .tune_shape(shape, simd, &default, 1, &mut log, &mut |_| {})
        .expect("again");
    assert!(again.from_log);
    assert_eq!(again.trials, 0);
    assert_eq!(again.tile, tuned.tile);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Steps the tiled engine does not run as the GEMM their shape describes (a
/// pointwise conv pooled in place, a shallow conv computed directly on AVX-512
/// and AVX2)
/// are not tuned as that GEMM: their tile would be timed on the wrong kernel.
#[test]
fn only_steps_run_as_plain_gemms_are_tuned() {
    let g = workbench_kernels::models::convnet_224(1).expect("convnet");
    let classifier = GemmShape {
        m: 1,
        n: 10,
        k: 64,
        packed_b: true,
    };
    let stem = GemmShape {
        m: 32,
        n: 112 * 112,
        k: 27,
        packed_b: false,
    };
    let portable: Vec<_> = gemm_shapes(&g, 1, SimdLevel::Portable)
        .into_keys()
        .collect();
    assert!(
        portable.contains(&classifier) && portable.contains(&stem),
        "{portable:?}"
    );
    assert_eq!(portable.len(), 2, "{portable:?}");
    // The stem runs on the direct kernel there: only the classifier is a GEMM.
    for simd in [SimdLevel::Avx2Fma, SimdLevel::Avx512] {
        if simd.is_supported() {
            let shapes: Vec<_> = gemm_shapes(&g, 1, simd).into_keys().collect();
            assert_eq!(shapes, vec![classifier], "{simd}");
        }
    }
}
