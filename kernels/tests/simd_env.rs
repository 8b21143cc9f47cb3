//! `WORKBENCH_SIMD` forces a lower SIMD path, never a higher one than the CPU has.
//! One test in its own binary: it sets a process-wide environment variable.

use workbench_kernels::simd::{best_available, cpu_features, detect, shared_helpers_level};
use workbench_kernels::{compile, models, BackendKind, CompileOptions, SimdLevel};

#[test]
fn env_var_forces_a_path_capped_at_the_cpu() {
    // Unset first: the suite may run under a forced level itself.
    std::env::remove_var("WORKBENCH_SIMD");
    let best = best_available();
    assert_eq!(detect(), best);
    // The helpers every kernel shares (activations, exp, packing) read the
    // variable once, at their first use: forced to the portable path here,
    // they still give a model's outputs.
    std::env::set_var("WORKBENCH_SIMD", "portable");
    assert_eq!(shared_helpers_level(), SimdLevel::Portable);
    let transformer = models::transformer_block(1).unwrap();
    let x = vec![0.1f32; transformer.input_len()];
    let mut exe = compile(&transformer, BackendKind::Tiled, &CompileOptions::default()).unwrap();
    assert!(exe.run(&x, 1).unwrap().iter().all(|v| v.is_finite()));
    for level in SimdLevel::ALL {
        std::env::set_var("WORKBENCH_SIMD", level.name());
        assert_eq!(detect(), level.min(best));
        // The tiled backend picks the forced path up and says so in its lowered form.
        let g = models::sgemm_graph(3, 5, 7, 1).unwrap();
        let exe = compile(&g, BackendKind::Tiled, &CompileOptions::default()).unwrap();
        assert!(
            exe.lowered().contains(level.min(best).name()),
            "{}",
            exe.lowered()
        );
    }
    std::env::set_var("WORKBENCH_SIMD", "nonsense");
    assert_eq!(detect(), best);
    std::env::remove_var("WORKBENCH_SIMD");
    let features = cpu_features();
    assert_eq!(
        features.contains(&"avx512f"),
        SimdLevel::Avx512.is_supported()
    );
    // An explicitly requested level the CPU lacks is an error, not a crash.
    if !SimdLevel::Avx512.is_supported() {
        let opts = CompileOptions {
            simd: Some(SimdLevel::Avx512),
            ..CompileOptions::default()
        };
        assert!(compile(
            &models::sgemm_graph(2, 2, 2, 1).unwrap(),
            BackendKind::Tiled,
            &opts
        )
        .is_err());
    }
}
