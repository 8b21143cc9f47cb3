//! Measuring stays within its memory limit: the estimate validation refuses
//! a model by counts every tensor the kernels hold during a call (a 150 M
//! parameter transformer whose estimate said 2.4 GB had reached 14 GB), and
//! a timing forced onto the portable kernels is not reused by a run on the
//! best SIMD level.

use std::path::Path;
use std::time::Duration;

use workbench::measure::memory::{
    activation_elems_per_sample, agreement_batch, measuring_memory, AGREEMENT_MAX_BATCH,
};
use workbench::measure::{measure_model, MeasureOptions};
use workbench::scenario::{self, ScenarioErrors, MAX_MEASURE_BYTES};
use workbench_kernels::{
    Activation, BackendKind, ConvBlock, ConvnetSpec, Graph, MlpSpec, ModelSpec, Op, Precision,
    SimdLevel, TransformerSpec,
};

/// The shape of `scenarios/`' heaviest kind of model: an-heavy-model, a
/// transformer of 151 M parameters and 168 GFLOPs a sample.
const HEAVY: &str = r#"
name = "heavy"
[model]
[[model.variants]]
name = "big"
family = "transformer"
seq_len = 512
d_model = 1024
heads = 16
ffn = 4096
layers = 12
classes = 256

[traffic]
process = "poisson"
rate_per_s = 100

[inputs]
space = "unbounded"
request_bytes = 32000
response_bytes = 256

[objectives]
latency_percentile = 99
latency_ms = 300

[targets]
[[targets.cloud]]
catalog = "aws-c7i.xlarge"
link = "dc"

[[targets.links]]
name = "dc"
rtt_median_ms = 1
rtt_p99_ms = 2
bandwidth_mbps = 1000

[search]
batch_sizes = [1]
measurement_budget_s = 10
"#;

fn parse(text: &str) -> Result<scenario::Scenario, ScenarioErrors> {
    scenario::parse_str(text, Path::new("heavy.toml"))
}

/// The tensors one sample's call writes, summed over the graph the builders
/// make: the input and every node's output.
fn graph_elems_per_sample(spec: &ModelSpec) -> f64 {
    let graph = match Graph::from_spec(spec, 7) {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    };
    graph
        .nodes()
        .iter()
        .filter(|n| !matches!(n.op, Op::Constant(_)))
        .map(|n| n.numel() as f64)
        .sum()
}

/// The estimate counts exactly the tensors the graph holds, for each family
/// (the old one counted the largest layer's input and output only: 0.03 GB
/// a sample of an-heavy-model's 0.86 GB).
#[test]
fn the_activation_estimate_counts_every_tensor_of_the_graph() {
    let specs = [
        ModelSpec::Mlp(MlpSpec {
            input: 30,
            hidden: vec![64, 17, 9],
            output: 5,
            activation: Activation::Relu,
        }),
        ModelSpec::Convnet(ConvnetSpec {
            height: 20,
            width: 18,
            channels: 3,
            blocks: vec![
                ConvBlock::Standard {
                    out_channels: 8,
                    kernel: 3,
                    stride: 2,
                },
                ConvBlock::DepthwiseSeparable {
                    out_channels: 12,
                    kernel: 3,
                    stride: 1,
                },
                ConvBlock::DepthwiseSeparable {
                    out_channels: 16,
                    kernel: 5,
                    stride: 2,
                },
            ],
            classes: 10,
            activation: Activation::Relu,
        }),
        ModelSpec::Transformer(TransformerSpec {
            seq_len: 12,
            d_model: 16,
            heads: 4,
            ffn: 40,
            layers: 3,
            classes: 6,
        }),
        ModelSpec::Transformer(TransformerSpec {
            seq_len: 9,
            d_model: 8,
            heads: 2,
            ffn: 24,
            layers: 2,
            classes: 0,
        }),
    ];
    for spec in &specs {
        assert_eq!(
            activation_elems_per_sample(spec),
            graph_elems_per_sample(spec),
            "{spec:?}"
        );
    }
}

/// an-heavy-model at batch 1 is measured (its run peaked at 2.2 GB of RSS,
/// the estimate says 3.3 GB); at batch 16 it would hold 14 GB (its
/// agreement check ran 16 inputs as one batch and peaked at 14.0 GB): refused
/// before anything is measured, with the file, line, key and what would fit.
#[test]
fn a_model_too_large_to_measure_at_its_largest_batch_is_refused() {
    let ok = match parse(HEAVY) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let v = &ok.model.variants[0];
    let at_1 = measuring_memory(&v.spec, v.counts().params, 1, 16).total();
    assert!(
        (2.5e9..4.5e9).contains(&at_1),
        "estimate at batch 1: {at_1}"
    );
    let text = HEAVY.replace("batch_sizes = [1]", "batch_sizes = [1, 16]");
    let errs = match parse(&text) {
        Ok(_) => panic!("an-heavy-model at batch 16 was accepted"),
        Err(e) => e.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
    };
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let e = &errs[0];
    for fragment in [
        "heavy.toml:4:1: model.variants[0]: ",
        "too large to measure",
        "of activations at batch 16",
        "the limit is 8.6 GB",
        "search.batch_sizes at most 7",
    ] {
        assert!(e.contains(fragment), "`{fragment}` not in: {e}");
    }
    // The largest batch the message names fits.
    assert!(parse(&HEAVY.replace("batch_sizes = [1]", "batch_sizes = [1, 7]")).is_ok());
}

/// The agreement check runs 16 inputs at a time only when their
/// activations are small; an-heavy-model's run one at a time.
#[test]
fn the_agreement_check_batch_is_bounded_by_memory() {
    assert_eq!(agreement_batch(1e3), AGREEMENT_MAX_BATCH);
    assert_eq!(agreement_batch(0.0), AGREEMENT_MAX_BATCH);
    let heavy = ModelSpec::Transformer(TransformerSpec {
        seq_len: 512,
        d_model: 1024,
        heads: 16,
        ffn: 4096,
        layers: 12,
        classes: 256,
    });
    let per_sample = activation_elems_per_sample(&heavy) * 4.0;
    assert_eq!(agreement_batch(per_sample), 1);
    // Whatever the batch, one call of the check stays far under the limit.
    assert!(per_sample * (agreement_batch(per_sample) as f64) < MAX_MEASURE_BYTES as f64 / 8.0);
}

/// A measurement timed with `WORKBENCH_SIMD=portable` is cached under that
/// level: a run on the CPU's best level times the model again instead of
/// planning from the portable kernels' figure (and then reuses its own).
#[test]
fn a_timing_forced_onto_portable_kernels_is_not_reused_unforced() {
    if workbench_kernels::simd::best_available() == SimdLevel::Portable {
        return; // nothing but portable here: the two runs are the same
    }
    let dir = std::env::temp_dir().join(format!("workbench-simd-key-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let spec = ModelSpec::Mlp(MlpSpec {
        input: 64,
        hidden: vec![64],
        output: 4,
        activation: Activation::Relu,
    });
    let graph = match Graph::from_spec(&spec, 3) {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    };
    let opts = MeasureOptions {
        budget: Duration::from_millis(300),
        cache_dir: dir.clone(),
        hardware_fingerprint: Some("simd-key-test".into()),
        ..MeasureOptions::quick()
    };
    let configs = [(BackendKind::Tiled, Precision::F32)];
    let from_cache = || match measure_model(&graph, &configs, &[1], &opts, &mut |_| {}) {
        Ok(o) => o
            .measurements
            .iter()
            .map(|m| m.from_cache)
            .collect::<Vec<_>>(),
        Err(e) => panic!("{e}"),
    };
    // The only test of this binary that reads or sets the variable.
    std::env::set_var("WORKBENCH_SIMD", "portable");
    let forced = from_cache();
    std::env::remove_var("WORKBENCH_SIMD");
    let unforced = from_cache();
    let again = from_cache();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(forced, vec![false]);
    assert_eq!(unforced, vec![false], "the portable timing was reused");
    assert_eq!(again, vec![true]);
}

/// Esc during the agreement check (after a configuration is timed, the
/// phase that had sat silent for minutes on an-heavy-model): the check says
/// what it runs, and the pipeline returns at the next call of the model,
/// not after all its inputs.
#[test]
fn cancelling_during_the_agreement_check_returns_at_the_next_call() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use workbench::measure::MeasureProgress;
    use workbench::pipeline::{measure_scenario, PipelineError, PipelineOptions};

    let text = HEAVY
        .replace(
            "family = \"transformer\"\nseq_len = 512\nd_model = 1024\nheads = 16\nffn = 4096\nlayers = 12\nclasses = 256",
            "family = \"mlp\"\ninput = 256\nhidden = [256]\noutput = 8",
        )
        .replace(
            "batch_sizes = [1]",
            "batch_sizes = [1]\nbackends = [\"tiled\", \"quantized\"]\nprecisions = [\"f32\", \"int8\"]",
        );
    let s = match parse(&text) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(s.model.variants[0].family(), "mlp");
    let dir = std::env::temp_dir().join(format!("workbench-cancel-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cancel = Arc::new(AtomicBool::new(false));
    let options = PipelineOptions {
        quick: true,
        fresh: true,
        cache_dir: dir.clone(),
        cancel: Some(cancel.clone()),
        ..PipelineOptions::default()
    };
    let mut checks = Vec::new();
    let mut cancelled_at = None;
    let result = measure_scenario(&s, &options, &mut |p| {
        if let p @ MeasureProgress::Checking { .. } = p {
            checks.push(p.compile_text().unwrap_or_default());
            cancel.store(true, Ordering::Relaxed);
            cancelled_at.get_or_insert_with(std::time::Instant::now);
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        matches!(result, Err(PipelineError::Cancelled)),
        "{result:?}"
    );
    // One call ran after the cancel (the one announced), none after it.
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert!(checks[0].starts_with("checking agreement: "), "{checks:?}");
    assert!(checks[0].ends_with("input 1 of 256"), "{checks:?}");
    let after = cancelled_at.map_or(Duration::ZERO, |t| t.elapsed());
    assert!(
        after < Duration::from_secs(5),
        "stopped {after:?} after the cancel"
    );
}

/// The planner gets each build's activation memory as it was measured: the
/// profile set holds, per (variant, backend, precision), the figure every
/// timed batch recorded (the kernel table's "Activations"), which the
/// planner judges a device's memory on.
#[test]
fn the_planner_gets_the_activation_memory_each_build_held() {
    use workbench::pipeline::{measure_scenario, PipelineOptions};
    use workbench::report::FigureSource;

    let text = HEAVY
        .replace(
            "family = \"transformer\"\nseq_len = 512\nd_model = 1024\nheads = 16\nffn = 4096\nlayers = 12\nclasses = 256",
            "family = \"mlp\"\ninput = 64\nhidden = [128, 128]\noutput = 8",
        )
        .replace(
            "batch_sizes = [1]",
            "batch_sizes = [1, 8]\nbackends = [\"naive\", \"tiled\"]\nprecisions = [\"f32\"]",
        );
    let s = match parse(&text) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let dir = std::env::temp_dir().join(format!("workbench-held-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let options = PipelineOptions {
        quick: true,
        fresh: true,
        cache_dir: dir.clone(),
        ..PipelineOptions::default()
    };
    let measured = measure_scenario(&s, &options, &mut |_| {});
    let _ = std::fs::remove_dir_all(&dir);
    let measured = match measured {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    };
    for backend in [BackendKind::Naive, BackendKind::Tiled] {
        let recorded: Vec<(u32, u64)> = measured
            .kernels
            .iter()
            .filter(|k| k.source == FigureSource::Measured && k.backend == backend)
            .map(|k| (k.batch, k.activation_bytes.expect("recorded")))
            .collect();
        assert_eq!(recorded.len(), 2, "{backend:?}: {recorded:?}");
        let key = ("big".to_string(), backend, Precision::F32);
        assert_eq!(measured.profiles.activations.get(&key), Some(&recorded));
        // Eight inputs hold more than one.
        assert!(recorded[1].1 > recorded[0].1, "{backend:?}: {recorded:?}");
    }
}
