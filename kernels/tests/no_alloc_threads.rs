//! With threads, too, `run` allocates nothing after the first run at the
//! largest batch so far: whichever thread takes which chunk, whether a
//! helper is polling or asleep and must be woken (a futex wake, no job
//! queued), and whatever the batch (no larger) and input of later runs.
//! Checked with a counting global allocator, which counts the helper
//! threads' allocations too; one test in this binary, so no other test
//! thread allocates meanwhile. Small work is split across threads
//! (`split_small_work`), so every parallel path runs at these sizes. The
//! first run is the caller's alone and the next ones the helpers' as far as
//! they can (`set_chunk_takers`): each thread then meets chunks it never ran,
//! whatever the timing; then runs go as they come.

mod counting_alloc;

use std::time::Duration;

use workbench_kernels::gemm::{set_chunk_takers, ChunkTakers};
use workbench_kernels::{
    compile, models, sgemm_with, Activation, BOperand, BackendKind, Bias, CompileOptions,
    ConvBlock, ConvnetSpec, Epilogue, GemmWorkspace, Graph, MatRef, ModelSpec, PackedB, Precision,
    TileParams, TransformerSpec,
};

/// Longer than a helper polls for work after its last call (500 us): the
/// next parallel step finds it asleep and wakes it.
const HELPERS_ASLEEP: Duration = Duration::from_millis(3);

#[test]
fn threaded_runs_allocate_nothing_after_the_first() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        eprintln!("one core: no helper threads to check");
        return;
    }
    workbench_kernels::gemm::split_small_work(true);
    let transformer = ModelSpec::Transformer(TransformerSpec {
        seq_len: 9,
        d_model: 16,
        heads: 2,
        ffn: 33,
        layers: 1,
        classes: 3,
    });
    let convnet = ModelSpec::Convnet(ConvnetSpec {
        // Large enough for the quantized pointwise conv to run in two bands.
        height: 112,
        width: 110,
        channels: 3,
        blocks: vec![
            ConvBlock::Standard {
                out_channels: 8,
                kernel: 3,
                stride: 2,
            },
            ConvBlock::DepthwiseSeparable {
                out_channels: 16,
                kernel: 3,
                stride: 1,
            },
        ],
        classes: 4,
        activation: Activation::Relu,
    });
    let graphs = [
        models::mlp_1024(1).unwrap(),
        Graph::from_spec(&transformer, 1).unwrap(),
        Graph::from_spec(&convnet, 1).unwrap(),
        models::elementwise_chain(3000, 1).unwrap(),
    ];
    let kinds = [
        (BackendKind::Tiled, Precision::F32),
        (BackendKind::Quantized, Precision::Int8),
        (BackendKind::Quantized, Precision::F16),
        (BackendKind::Quantized, Precision::Bf16),
    ];
    for g in &graphs {
        let largest = 4;
        let inputs: Vec<Vec<f32>> = vec![
            (0..g.input_len() * largest)
                .map(|i| ((i * 7919) % 13) as f32 / 6.0 - 1.0)
                .collect(),
            vec![0.25; g.input_len() * largest],
            vec![0.0; g.input_len() * largest],
        ];
        for (kind, precision) in kinds {
            let options = CompileOptions {
                precision,
                threads: 2,
                ..CompileOptions::default()
            };
            let mut exe = compile(g, kind, &options).unwrap();
            set_chunk_takers(ChunkTakers::CallerOnly);
            exe.run(&inputs[0], largest).unwrap();
            let before = counting_alloc::allocations();
            for (run, batch) in [4usize, 1, 3, 4, 2, 4, 1, 4].into_iter().enumerate() {
                set_chunk_takers(if run < 4 {
                    ChunkTakers::HelpersFirst
                } else {
                    ChunkTakers::Any
                });
                if run % 2 == 1 {
                    std::thread::sleep(HELPERS_ASLEEP);
                }
                let x = &inputs[run % inputs.len()][..g.input_len() * batch];
                exe.run(x, batch).unwrap();
                assert_eq!(
                    counting_alloc::allocations() - before,
                    0,
                    "{} on {kind} {precision:?} with 2 threads allocated in run {run} at batch {batch}",
                    g.name()
                );
            }
        }
    }

    // A lone GEMM on two threads, its helper polling or asleep.
    let (m, n, k) = (96, 160, 200);
    let weights: Vec<f32> = (0..k * n)
        .map(|i| ((i * 31) % 17) as f32 / 8.0 - 1.0)
        .collect();
    let a: Vec<f32> = (0..m * k).map(|i| ((i * 13) % 7) as f32 - 3.0).collect();
    let simd = workbench_kernels::simd::detect();
    let tile = TileParams {
        threads: 2,
        ..TileParams::for_caches(workbench_kernels::tile::CacheSizes::detect(), simd)
    };
    let packed = PackedB::pack(MatRef::row_major(&weights, n), k, n, tile.kc, tile.nr).unwrap();
    let bias = vec![0.5f32; n];
    let epilogue = Epilogue {
        bias: Bias::PerColumn(&bias),
        activation: Some(Activation::Relu),
    };
    let mut ws = GemmWorkspace::new();
    let mut c = vec![0.0f32; m * n];
    let mut gemm = |b: BOperand<'_>, c: &mut [f32]| {
        sgemm_with(
            &mut ws,
            &tile,
            simd,
            m,
            n,
            k,
            MatRef::row_major(&a, k),
            b,
            c,
            n,
            epilogue,
        )
        .unwrap();
    };
    set_chunk_takers(ChunkTakers::CallerOnly);
    gemm(BOperand::Packed(&packed), &mut c);
    gemm(BOperand::Mat(MatRef::row_major(&weights, n)), &mut c);
    let before = counting_alloc::allocations();
    for call in 0..20 {
        set_chunk_takers(if call < 10 {
            ChunkTakers::HelpersFirst
        } else {
            ChunkTakers::Any
        });
        if call % 2 == 1 {
            std::thread::sleep(HELPERS_ASLEEP);
        }
        if call % 3 == 0 {
            gemm(BOperand::Mat(MatRef::row_major(&weights, n)), &mut c);
        } else {
            gemm(BOperand::Packed(&packed), &mut c);
        }
    }
    assert_eq!(
        counting_alloc::allocations() - before,
        0,
        "a two-thread GEMM allocated after its first calls"
    );
    assert!(workbench_kernels::gemm::helper_threads_started());
}
