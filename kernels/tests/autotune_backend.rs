//! The autotuned backend against naive, and log reuse across compiles.

use workbench_kernels::autotune::TuneBudget;
use workbench_kernels::backends::autotuned::{gemm_shapes, AutotunedBackend};
use workbench_kernels::backends::quantized::seeded_inputs;
use workbench_kernels::{
    compile, Activation, BackendKind, CompileOptions, ConvBlock, ConvnetSpec, Executable, Graph,
    MlpSpec, ModelSpec,
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
        let shapes = gemm_shapes(g, 4).len();
        assert_eq!(summary.shapes.len(), shapes);
        assert_eq!(summary.trials, 6 * shapes);
        assert_eq!(reports, 6 * shapes);
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
