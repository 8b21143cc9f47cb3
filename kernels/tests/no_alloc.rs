//! `run` allocates nothing after the first run with a given batch size
//! (checked with a counting global allocator; one test per binary so no other
//! test thread allocates meanwhile), and single-threaded kernels never start
//! the helper threads. With threads, a parallel step reuses its record while
//! helpers poll (`pool` unit tests); waking a helper that went to sleep costs
//! the pool's job and a record, which a loaded machine makes frequent, so
//! no count is asserted for it here.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use workbench_kernels::{
    compile, models, BackendKind, CompileOptions, Graph, ModelSpec, TransformerSpec,
};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

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
    for g in &graphs {
        for kind in [BackendKind::Naive, BackendKind::Fused, BackendKind::Tiled] {
            let mut exe = compile(g, kind, &CompileOptions::default()).unwrap();
            for batch in [1usize, 3] {
                let x = vec![0.25f32; g.input_len() * batch];
                exe.run(&x, batch).unwrap();
                let before = ALLOCATIONS.load(Ordering::SeqCst);
                exe.run(&x, batch).unwrap();
                exe.run(&x, batch).unwrap();
                let after = ALLOCATIONS.load(Ordering::SeqCst);
                assert_eq!(
                    after - before,
                    0,
                    "{} on {kind} at batch {batch} allocated",
                    g.name()
                );
            }
        }
    }

    assert!(
        !workbench_kernels::gemm::helper_threads_started(),
        "single-threaded kernels started the helper threads"
    );
}
