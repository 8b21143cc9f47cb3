//! `run` (naive, fused, tiled, and quantized at int8 / f16 / bf16) allocates
//! nothing after the first run at the largest batch so far,
//! whatever the batch (no larger) and the input of later runs, on every SIMD
//! level this CPU has (checked with a counting global allocator; one test per
//! binary so no other test thread allocates meanwhile); nor does a GEMM whose
//! input decides whether it skips zeros; and single-threaded kernels never
//! start the helper threads. With threads, see `no_alloc_threads.rs`.

mod counting_alloc;

use workbench_kernels::{
    compile, models, sgemm_with, Activation, BOperand, BackendKind, Bias, CompileOptions, Epilogue,
    GemmWorkspace, Graph, MatRef, ModelSpec, PackedB, Precision, SimdLevel, TileParams,
    TransformerSpec,
};

#[test]
fn second_run_allocates_nothing() {
    let transformer = ModelSpec::Transformer(TransformerSpec {
        seq_len: 9,
        d_model: 16,
        heads: 2,
        ffn: 33,
        layers: 1,
        classes: 3,
    });
    let graphs = [
        models::mlp_1024(1).unwrap(),
        Graph::from_spec(&transformer, 1).unwrap(),
        models::elementwise_chain(3000, 1).unwrap(),
        Graph::from_spec(
            &ModelSpec::Convnet(workbench_kernels::ConvnetSpec {
                height: 17,
                width: 15,
                channels: 3,
                blocks: vec![
                    workbench_kernels::ConvBlock::Standard {
                        out_channels: 8,
                        kernel: 3,
                        stride: 2,
                    },
                    workbench_kernels::ConvBlock::DepthwiseSeparable {
                        out_channels: 16,
                        kernel: 3,
                        stride: 1,
                    },
                ],
                classes: 4,
                activation: workbench_kernels::Activation::Relu,
            }),
            1,
        )
        .unwrap(),
    ];
    let levels = SimdLevel::supported();
    for g in &graphs {
        // Inputs that differ from run to run: a constant, a mix of signs, all
        // zeros (a ReLU after it passes only its bias).
        let largest = 3;
        let inputs: Vec<Vec<f32>> = vec![
            vec![0.25; g.input_len() * largest],
            (0..g.input_len() * largest)
                .map(|i| ((i * 7919) % 13) as f32 / 6.0 - 1.0)
                .collect(),
            vec![0.0; g.input_len() * largest],
        ];
        let kinds = [
            (BackendKind::Naive, Precision::F32),
            (BackendKind::Fused, Precision::F32),
            (BackendKind::Tiled, Precision::F32),
            (BackendKind::Quantized, Precision::Int8),
            (BackendKind::Quantized, Precision::F16),
            (BackendKind::Quantized, Precision::Bf16),
        ];
        for (kind, precision) in kinds {
            for &simd in &levels {
                let options = CompileOptions {
                    simd: Some(simd),
                    precision,
                    ..CompileOptions::default()
                };
                let mut exe = compile(g, kind, &options).unwrap();
                exe.run(&inputs[0], largest).unwrap();
                let before = counting_alloc::allocations();
                for (run, batch) in [1usize, 3, 1, 2, 3, 1].into_iter().enumerate() {
                    let x = &inputs[run % inputs.len()][..g.input_len() * batch];
                    exe.run(x, batch).unwrap();
                    let after = counting_alloc::allocations();
                    assert_eq!(
                        after - before,
                        0,
                        "{} on {kind} {precision:?} ({simd}) allocated in run {run} at batch {batch}",
                        g.name()
                    );
                }
            }
        }
    }

    // A GEMM over a ReLU's output skips zeros or not depending on how many
    // its input has: going from a dense A to a sparse one must not allocate.
    let (m, n, k) = (64, 96, 200);
    let weights: Vec<f32> = (0..k * n)
        .map(|i| ((i * 31) % 17) as f32 / 8.0 - 1.0)
        .collect();
    let bias = vec![0.5f32; n];
    let dense_a: Vec<f32> = (0..m * k).map(|i| 0.5 + (i % 5) as f32).collect();
    let sparse_a: Vec<f32> = (0..m * k)
        .map(|i| if i % 10 == 0 { 1.5 } else { 0.0 })
        .collect();
    for &simd in &levels {
        let tile = TileParams {
            threads: 1,
            ..TileParams::for_caches(workbench_kernels::tile::CacheSizes::detect(), simd)
        };
        assert!(tile.skip_zeros, "{simd}: zero skipping is on by default");
        let packed = PackedB::pack(MatRef::row_major(&weights, n), k, n, tile.kc, tile.nr).unwrap();
        let epilogue = Epilogue {
            bias: Bias::PerColumn(&bias),
            activation: Some(Activation::Relu),
        };
        let mut ws = GemmWorkspace::new();
        let mut c = vec![0.0f32; m * n];
        let mut gemm = |a: &[f32], c: &mut [f32]| {
            sgemm_with(
                &mut ws,
                &tile,
                simd,
                m,
                n,
                k,
                MatRef::row_major(a, k),
                BOperand::Packed(&packed),
                c,
                n,
                epilogue,
            )
            .unwrap();
        };
        gemm(&dense_a, &mut c);
        let before = counting_alloc::allocations();
        for a in [&sparse_a, &dense_a, &sparse_a] {
            gemm(a, &mut c);
        }
        assert_eq!(
            counting_alloc::allocations() - before,
            0,
            "{simd}: a GEMM allocated when its input's zeros changed"
        );
    }

    assert!(
        !workbench_kernels::gemm::helper_threads_started(),
        "single-threaded kernels started the helper threads"
    );
}
