//! The quantized backend against naive f32: accuracy bounds per precision,
//! every int8 kernel path, batching.

use workbench_kernels::accuracy::agreement;
use workbench_kernels::backends::quantized::{seeded_inputs, QuantizedBackend};
use workbench_kernels::quant::Int8Path;
use workbench_kernels::{
    compile, Activation, Backend, BackendKind, CompileOptions, ConvBlock, ConvnetSpec, Graph,
    GraphBuilder, MlpSpec, ModelSpec, Op, Precision, SimdLevel, Tensor, TransformerSpec,
};

/// Counts allocations of the current thread only, so the other tests of this
/// binary running in parallel do not disturb the no-allocation check.
struct CountingAlloc;

thread_local! {
    static THREAD_ALLOCS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

// SAFETY: forwards to the system allocator, only counting calls.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        THREAD_ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
        THREAD_ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.realloc(ptr, layout, size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn mlp() -> Graph {
    Graph::from_spec(
        &ModelSpec::Mlp(MlpSpec {
            input: 64,
            hidden: vec![128, 96],
            output: 10,
            activation: Activation::Relu,
        }),
        7,
    )
    .expect("mlp")
}

fn convnet() -> Graph {
    Graph::from_spec(
        &ModelSpec::Convnet(ConvnetSpec {
            height: 15,
            width: 17,
            channels: 3,
            blocks: vec![
                ConvBlock::Standard {
                    out_channels: 8,
                    kernel: 3,
                    stride: 1,
                },
                ConvBlock::DepthwiseSeparable {
                    out_channels: 16,
                    kernel: 3,
                    stride: 2,
                },
            ],
            classes: 10,
            activation: Activation::Relu,
        }),
        11,
    )
    .expect("convnet")
}

fn transformer() -> Graph {
    Graph::from_spec(
        &ModelSpec::Transformer(TransformerSpec {
            seq_len: 8,
            d_model: 32,
            heads: 4,
            ffn: 64,
            layers: 1,
            classes: 0,
        }),
        3,
    )
    .expect("transformer")
}

fn opts(p: Precision) -> CompileOptions {
    CompileOptions {
        precision: p,
        ..CompileOptions::default()
    }
}

/// Documented bounds (relative output norm vs f32): int8 <= 5%, bf16 <= 2%, f16 <= 0.5%;
/// int8 top-1 agreement >= 99% on the classifier families.
#[test]
fn classifiers_meet_documented_bounds_per_precision() {
    for (name, g) in [("mlp", mlp()), ("convnet", convnet())] {
        for (p, bound) in [
            (Precision::Int8, 0.05),
            (Precision::Bf16, 0.02),
            (Precision::F16, 0.005),
        ] {
            let a = agreement(&g, p, 42, 200).expect("agreement");
            println!(
                "{name} {p}: top1 {:?} rel_error {:.2e}",
                a.top1, a.rel_error
            );
            assert!(a.rel_error <= bound, "{name} {p}: {}", a.rel_error);
            assert!(
                a.rel_error > 0.0,
                "{name} {p}: reduced precision cannot be exact"
            );
            let top1 = a.top1.expect("classifier");
            assert!(top1 >= 0.99, "{name} {p}: top1 {top1}");
        }
    }
}

#[test]
fn transformer_runs_quantized_with_bounded_error() {
    let g = transformer();
    for p in [Precision::Int8, Precision::F16, Precision::Bf16] {
        let a = agreement(&g, p, 1, 8).expect("agreement");
        assert!(a.top1.is_none());
        assert!(a.rel_error < 0.1, "{p}: {}", a.rel_error);
    }
}

/// `g`'s int8 outputs on `batch` seeded inputs, compiled for each int8 path
/// this CPU has (each lowering names its path).
fn int8_outputs_per_path(g: &Graph, batch: usize, seed: u64) -> Vec<(Int8Path, Vec<f32>)> {
    let x = seeded_inputs(g.input_len(), batch, seed);
    Int8Path::supported()
        .into_iter()
        .map(|path| {
            let backend = QuantizedBackend {
                int8_path: Some(path),
                ..QuantizedBackend::default()
            };
            let mut exe = backend.compile(g, &opts(Precision::Int8)).expect("compile");
            assert!(exe.lowered().contains(path.name()));
            (path, exe.run(&x, batch).expect("run").to_vec())
        })
        .collect()
}

#[test]
fn every_int8_path_gives_identical_outputs() {
    for g in [mlp(), convnet()] {
        let outs: Vec<Vec<f32>> = int8_outputs_per_path(&g, 5, 9)
            .into_iter()
            .map(|(_, out)| out)
            .collect();
        // Integer GEMMs are exact and every path's epilogue does the same
        // float operations, so every path must agree bit for bit. (The VNNI
        // pointwise kernel adds a pool's sums in another order; the pooled
        // means are quantized again for the classifier, which absorbs that
        // here.)
        assert!(outs.windows(2).all(|w| w[0] == w[1]));
    }
}

/// A pointwise conv whose output is not pooled and spans several bands of
/// pixels (1440 pixels, bands of 816 at 16 -> 64 channels): each band's
/// planes must land at its own pixels on every int8 path (the VNNI path
/// writes them from its pixels-in-lanes kernel, the others transpose GEMM
/// rows). The last block pools, which the VNNI kernel sums in another
/// order, so the paths are held to a tight tolerance rather than bits.
#[test]
fn pointwise_planes_in_several_bands_land_in_place_on_every_int8_path() {
    let separable = |out_channels| ConvBlock::DepthwiseSeparable {
        out_channels,
        kernel: 3,
        stride: 1,
    };
    let g = Graph::from_spec(
        &ModelSpec::Convnet(ConvnetSpec {
            height: 36,
            width: 40,
            channels: 3,
            blocks: vec![
                ConvBlock::Standard {
                    out_channels: 16,
                    kernel: 3,
                    stride: 1,
                },
                separable(64),
                separable(32),
            ],
            classes: 10,
            activation: Activation::Relu,
        }),
        5,
    )
    .expect("convnet");
    let outs = int8_outputs_per_path(&g, 2, 4);
    let (first, want) = &outs[0];
    let norm = want.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-6);
    for (path, got) in &outs[1..] {
        let diff = got
            .iter()
            .zip(want)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f32>()
            .sqrt();
        assert!(
            diff <= 1e-4 * norm,
            "{path} against {first}: {diff} of {norm}"
        );
    }
}

/// `g` compiled by `backend` at `precision` and run on the 3 samples `x`:
/// its lowered form, its outputs and the activation bytes it then holds.
fn lowered_run(
    backend: QuantizedBackend,
    g: &Graph,
    x: &[f32],
    precision: Precision,
) -> (String, Vec<f32>, usize) {
    let mut exe = backend.compile(g, &opts(precision)).expect("compile");
    let out = exe.run(x, 3).expect("run").to_vec();
    (exe.lowered(), out, exe.activation_bytes())
}

#[test]
fn fused_half_relu_gives_the_same_outputs_as_the_separate_op() {
    let g = mlp();
    let x = seeded_inputs(g.input_len(), 3, 21);
    for precision in [Precision::F16, Precision::Bf16] {
        let mut outs = Vec::new();
        for fuse_half_relu in [true, false] {
            let backend = QuantizedBackend {
                fuse_half_relu,
                ..QuantizedBackend::default()
            };
            let (lowered, out, _) = lowered_run(backend, &g, &x, precision);
            let fused = lowered.matches("gemm + relu").count();
            assert_eq!(fused, if fuse_half_relu { 2 } else { 0 }, "{lowered}");
            outs.push(out);
        }
        assert_eq!(
            outs[0], outs[1],
            "{precision}: fusing the ReLU changed the outputs"
        );
    }
}

#[test]
fn conv_relu_fusion_gives_the_same_outputs_as_the_separate_op() {
    // convnet: conv -> relu, then depthwise -> relu -> pointwise -> relu ->
    // global average pool (the pool sums the pointwise GEMM's output).
    let g = convnet();
    let x = seeded_inputs(g.input_len(), 3, 23);
    for precision in [Precision::Int8, Precision::F16, Precision::Bf16] {
        let mut outs = Vec::new();
        for fuse_conv_epilogue in [true, false] {
            let backend = QuantizedBackend {
                fuse_conv_epilogue,
                ..QuantizedBackend::default()
            };
            let mut exe = backend.compile(&g, &opts(precision)).expect("compile");
            let lowered = exe.lowered();
            let fused = lowered.matches("fused into the op before").count();
            assert_eq!(fused, if fuse_conv_epilogue { 4 } else { 0 }, "{lowered}");
            assert!(lowered.contains("f32 depthwise kernel"), "{lowered}");
            outs.push(exe.run(&x, 3).expect("run").to_vec());
        }
        // The fused pool sums in another order: equal to rounding.
        let err = outs[0]
            .iter()
            .zip(&outs[1])
            .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
            .fold(0.0f32, f32::max);
        assert!(
            err <= 1e-5,
            "{precision}: fusing changed the outputs by {err}"
        );
    }
}

/// The FFN's GELU applied in place over its GEMM's output gives the bits
/// of the GELU run as an op of its own, and the model holds less: one
/// hidden activation, not two (a BERT-base encoder at batch 1: 3.93 MB,
/// not 4.72 MB).
#[test]
fn an_activation_in_place_gives_the_same_outputs_and_holds_less() {
    let g = transformer();
    let x = seeded_inputs(g.input_len(), 3, 29);
    for precision in [Precision::Int8, Precision::F16, Precision::Bf16] {
        let mut runs = Vec::new();
        for activation_in_place in [true, false] {
            let backend = QuantizedBackend {
                activation_in_place,
                ..QuantizedBackend::default()
            };
            let (lowered, out, bytes) = lowered_run(backend, &g, &x, precision);
            let in_place = lowered.matches("gemm + gelu in place").count();
            assert_eq!(in_place, usize::from(activation_in_place), "{lowered}");
            runs.push((out, bytes));
        }
        let ((fused, fused_bytes), (separate, separate_bytes)) = (&runs[0], &runs[1]);
        assert_eq!(fused, separate, "{precision}: in place changed the outputs");
        assert!(
            fused_bytes < separate_bytes,
            "{precision}: {fused_bytes} bytes in place, {separate_bytes} apart"
        );
    }
}

/// Attention scores written into the softmax's buffer, the softmax run
/// there in place, give the bits of the two ops apart and never hold more
/// (one heads x seq x seq buffer, not two: a BERT-base encoder at batch 1
/// holds 3.54 MB, not 3.93 MB; here the FFN's peak is the larger).
#[test]
fn a_softmax_in_place_gives_the_same_outputs() {
    let g = transformer();
    let x = seeded_inputs(g.input_len(), 3, 31);
    for precision in [Precision::Int8, Precision::F16] {
        let mut runs = Vec::new();
        for softmax_in_place in [true, false] {
            let backend = QuantizedBackend {
                softmax_in_place,
                ..QuantizedBackend::default()
            };
            let (lowered, out, bytes) = lowered_run(backend, &g, &x, precision);
            let fused = lowered.matches("f32 + softmax in place").count();
            assert_eq!(fused, usize::from(softmax_in_place), "{lowered}");
            runs.push((out, bytes));
        }
        let ((fused, fused_bytes), (separate, separate_bytes)) = (&runs[0], &runs[1]);
        assert_eq!(fused, separate, "{precision}: in place changed the outputs");
        assert!(fused_bytes <= separate_bytes, "{precision}");
    }
}

#[test]
fn chained_int8_layers_give_the_same_outputs_as_unchained() {
    // mlp: dense -> relu -> dense -> relu -> dense; the transformer has dense
    // layers that feed non-GEMM ops (layer norm, attention) and must not chain.
    for g in [mlp(), transformer()] {
        let x = seeded_inputs(g.input_len(), 3, 17);
        let mut outs = Vec::new();
        for chain_int8 in [true, false] {
            let backend = QuantizedBackend {
                chain_int8,
                ..QuantizedBackend::default()
            };
            let mut exe = backend
                .compile(&g, &opts(Precision::Int8))
                .expect("compile");
            let lowered = exe.lowered();
            // A second batch size re-sizes the u8 buffers.
            let one = exe.run(&x[..g.input_len()], 1).expect("run").to_vec();
            let all = exe.run(&x, 3).expect("run").to_vec();
            assert_eq!(&all[..one.len()], &one[..]);
            outs.push((lowered, all));
        }
        let (chained, plain) = (&outs[0], &outs[1]);
        assert_eq!(chained.1, plain.1, "chaining changed the outputs");
        assert!(!plain.0.contains("requantized u8"));
        if g.name().starts_with("mlp") {
            assert_eq!(
                chained.0.matches("requantized u8").count(),
                2,
                "{}",
                chained.0
            );
            assert_eq!(chained.0.matches("int8 gemm + relu").count(), 2);
            assert_eq!(chained.0.matches("fused into the op before").count(), 2);
        }
    }
}

#[test]
fn second_run_allocates_nothing_at_every_precision() {
    for g in [mlp(), convnet(), transformer()] {
        for p in [Precision::Int8, Precision::F16, Precision::Bf16] {
            let start = THREAD_ALLOCS.with(|c| c.get());
            let mut exe = compile(&g, BackendKind::Quantized, &opts(p)).expect("compile");
            assert!(
                THREAD_ALLOCS.with(|c| c.get()) > start,
                "the counter counts"
            );
            let x = seeded_inputs(g.input_len(), 2, 1);
            exe.run(&x, 2).expect("first run");
            let before = THREAD_ALLOCS.with(|c| c.get());
            exe.run(&x, 2).expect("second run");
            let allocs = THREAD_ALLOCS.with(|c| c.get()) - before;
            assert_eq!(allocs, 0, "{} {p}: {allocs} allocations", g.name());
        }
    }
}

/// A batch gives each sample the bits it gets alone, at every precision
/// (the convolutions go sample by sample either way; the batch only decides
/// whether a run of them takes one sample at a time).
#[test]
fn batched_run_equals_per_sample_runs() {
    let g = convnet();
    for p in [Precision::Int8, Precision::F16, Precision::Bf16] {
        let mut exe = compile(&g, BackendKind::Quantized, &opts(p)).expect("compile");
        assert_eq!(exe.backend(), BackendKind::Quantized);
        assert_eq!(exe.precision(), p);
        let (len, b) = (g.input_len(), 4);
        let x = seeded_inputs(len, b, 5);
        let all = exe.run(&x, b).expect("run").to_vec();
        let out = g.output_len();
        for s in 0..b {
            let one = exe
                .run(&x[s * len..(s + 1) * len], 1)
                .expect("run")
                .to_vec();
            assert_eq!(&all[s * out..(s + 1) * out], &one[..], "{p}, sample {s}");
        }
    }
}

#[test]
fn f32_is_rejected_and_bad_input_is_an_error() {
    let g = mlp();
    assert!(compile(&g, BackendKind::Quantized, &opts(Precision::F32)).is_err());
    let mut exe = compile(&g, BackendKind::Quantized, &opts(Precision::F16)).expect("compile");
    assert!(exe.run(&[0.0; 3], 1).is_err());
}

#[test]
fn compile_options_simd_caps_the_int8_path() {
    let g = mlp();
    let mut o = opts(Precision::Int8);
    o.simd = Some(workbench_kernels::SimdLevel::Portable);
    let exe = compile(&g, BackendKind::Quantized, &o).expect("compile");
    assert!(
        exe.lowered().contains("int8 path portable"),
        "{}",
        exe.lowered()
    );
}

/// conv 3 -> 8 (3x3, stride 2: 27 taps) -> ReLU -> depthwise 3x3 stride 1 ->
/// ReLU, the graph's output: the stem of convnet-224 in small.
fn stem_then_depthwise() -> Graph {
    let mut b = GraphBuilder::new("stem-depthwise", vec![3, 23, 29]).expect("builder");
    let tensor = |shape: Vec<usize>, seed| {
        let len = shape.iter().product();
        Tensor::new(shape, seeded_inputs(len, 1, seed)).expect("tensor")
    };
    let x = b.input();
    let conv = Op::Conv2d {
        weight: tensor(vec![8, 3, 3, 3], 1),
        bias: Some(tensor(vec![8], 2)),
        stride: 2,
        padding: 1,
    };
    let conv = b.push("conv", conv, &[x]).expect("conv");
    let relu = Op::Activation(Activation::Relu);
    let act = b.push("act", relu.clone(), &[conv]).expect("relu");
    let dw = Op::DepthwiseConv2d {
        weight: tensor(vec![8, 3, 3], 3),
        bias: Some(tensor(vec![8], 4)),
        stride: 1,
        padding: 1,
    };
    let dw = b.push("dw", dw, &[act]).expect("depthwise");
    let out = b.push("dw_act", relu, &[dw]).expect("relu");
    b.finish(out, false, 5).expect("graph")
}

/// Where the f32 direct conv has a kernel (AVX2 + FMA, AVX-512), a stem read
/// only by a stride-1 depthwise conv writes its output straight into that
/// conv's zero-padded input, the two running sample by sample: the outputs
/// are those of the separate ops (the stem's own buffer, then the depthwise
/// conv's copy of it into its layout) and, to the SIMD kernels' rounding, of
/// the naive f32 backend, at batch 3 and (after it) 1.
#[test]
fn stem_written_into_the_depthwise_input_gives_the_separate_ops_outputs() {
    let g = stem_then_depthwise();
    let direct = matches!(
        workbench_kernels::simd::detect(),
        SimdLevel::Avx2Fma | SimdLevel::Avx512
    );
    let x = seeded_inputs(g.input_len(), 3, 31);
    let mut naive = compile(&g, BackendKind::Naive, &opts(Precision::F32)).expect("naive");
    let want = naive.run(&x, 3).expect("naive run").to_vec();
    let mut outs = Vec::new();
    for fuse_conv_epilogue in [true, false] {
        let backend = QuantizedBackend {
            fuse_conv_epilogue,
            ..QuantizedBackend::default()
        };
        let mut exe = backend
            .compile(&g, &opts(Precision::Int8))
            .expect("compile");
        let lowered = exe.lowered();
        let linked = lowered.contains("written into dw's zero-padded input");
        // Without the fused ReLU the stem's reader is the ReLU node: no link.
        assert_eq!(linked, direct && fuse_conv_epilogue, "{lowered}");
        let all = exe.run(&x, 3).expect("run").to_vec();
        let len = g.input_len();
        for s in [2, 0] {
            let one = exe
                .run(&x[s * len..(s + 1) * len], 1)
                .expect("run")
                .to_vec();
            let out = g.output_len();
            assert_eq!(&all[s * out..(s + 1) * out], &one[..], "sample {s}");
        }
        // Without the direct kernel (WORKBENCH_SIMD=portable) the stem is an
        // int8 GEMM: its quantization error, not the kernels' rounding.
        let tolerance = if direct { 1e-5 } else { 0.05 };
        for (i, (got, e)) in all.iter().zip(&want).enumerate() {
            assert!(
                (got - e).abs() <= tolerance * (1.0 + e.abs()),
                "fused {fuse_conv_epilogue} at {i}: {got} vs {e}"
            );
        }
        outs.push(all);
    }
    assert_eq!(
        outs[0], outs[1],
        "writing into the layout changed the outputs"
    );
}
