//! Measuring a kernels-crate graph: compile per (backend, precision), run at each batch size.

use std::cell::RefCell;
use std::time::Duration;

use super::harness::Workload;
use super::{
    budget, measure_jobs, MeasureError, MeasureOptions, MeasureOutcome, MeasureProgress,
    MeasureSubject,
};
use crate::hardware::probe::LocalHardware;
use workbench_kernels::autotune::TuneProgress;
use workbench_kernels::backends::autotuned::{gemm_shapes, AutotunedBackend, GemmShape};
use workbench_kernels::{
    backend_for, compile, BackendKind, CompileOptions, Executable, Graph, KernelError, Precision,
};

/// Called with each compiled executable once it is timed, before it is
/// dropped (e.g. to run it on other inputs without compiling it again).
pub type Inspect<'a> =
    dyn FnMut(BackendKind, Precision, &mut dyn Executable) -> Result<(), MeasureError> + 'a;

/// A compiled executable with an input buffer large enough for the largest batch.
struct ExecutableWorkload<'i, 'f> {
    exe: Box<dyn Executable>,
    input: Vec<f32>,
    input_len: usize,
    backend: BackendKind,
    precision: Precision,
    inspect: &'i RefCell<&'i mut Inspect<'f>>,
}

impl Workload for ExecutableWorkload<'_, '_> {
    fn run(&mut self, batch: usize) -> Result<(), MeasureError> {
        let needed = batch.saturating_mul(self.input_len);
        if self.input.len() < needed {
            self.input = deterministic_input(needed);
        }
        let out = self
            .exe
            .run(&self.input[..needed], batch)
            .map_err(|e| MeasureError::Workload(e.to_string()))?;
        std::hint::black_box(out);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), MeasureError> {
        let mut inspect = self.inspect.borrow_mut();
        (*inspect)(self.backend, self.precision, self.exe.as_mut())
    }

    fn tuning_cut_short(&self) -> bool {
        self.exe.tuning_cut_short()
    }

    fn activation_bytes(&self) -> Option<u64> {
        Some(self.exe.activation_bytes() as u64)
    }

    fn program(&self) -> Option<String> {
        Some(self.exe.lowered())
    }
}

/// Inputs in [-1, 1] from a fixed formula: same data every run, no RNG state needed.
fn deterministic_input(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i.wrapping_mul(2_654_435_761) % 2001) as f32 / 1000.0) - 1.0)
        .collect()
}

/// The autotuner, its search cut to `allowance` (shared by the graph's GEMM
/// shapes; each is searched for at most its default time): when the tuning
/// log does not hold the tiles already, a large model's search would
/// otherwise take longer than its whole measurement.
pub fn autotuner_within(graph: &Graph, allowance: Duration) -> AutotunedBackend {
    let mut tuner = AutotunedBackend::default();
    let shapes = gemm_shapes(
        graph,
        tuner.tune_batch.max(1),
        workbench_kernels::simd::detect(),
    )
    .len()
    .max(1);
    let per_shape = allowance.as_secs_f64() / shapes as f64;
    tuner.budget.max_seconds = Some(
        tuner
            .budget
            .max_seconds
            .map_or(per_shape, |s| s.min(per_shape)),
    );
    tuner
}

/// Time `graph` compiled by each backend at each precision and batch size
/// (single thread). Results come from the cache when present (unless
/// `opts.fresh`); a backend this build lacks, or a precision it refuses, is
/// reported in `skipped` with the reason rather than failing the run.
pub fn measure_model(
    graph: &Graph,
    configs: &[(BackendKind, Precision)],
    batches: &[usize],
    opts: &MeasureOptions,
    progress: &mut dyn FnMut(MeasureProgress),
) -> Result<MeasureOutcome, MeasureError> {
    measure_model_with(graph, configs, batches, opts, progress, &mut |_, _, _| {
        Ok(())
    })
}

/// [`measure_model`], handing each executable compiled for timing to `inspect`
/// after its batch sizes are timed (cached configurations are not compiled).
pub fn measure_model_with(
    graph: &Graph,
    configs: &[(BackendKind, Precision)],
    batches: &[usize],
    opts: &MeasureOptions,
    progress: &mut dyn FnMut(MeasureProgress),
    inspect: &mut Inspect<'_>,
) -> Result<MeasureOutcome, MeasureError> {
    let hardware_fingerprint = match &opts.hardware_fingerprint {
        Some(fp) => fp.clone(),
        None => LocalHardware::detect().fingerprint,
    };
    let mut subject = MeasureSubject {
        hardware_fingerprint,
        graph_fingerprint: graph.fingerprint(),
        workload: graph.name().to_string(),
        flops_per_sample: graph.flops_per_sample(),
        weight_bytes: graph.weight_bytes(Precision::F32) as f64,
        roofline: opts.roofline.clone(),
        rates: None,
        compile_rates: None,
    };
    subject.compile_rates = Some(budget::load_compile_rates(
        &opts.cache_dir,
        &subject.hardware_fingerprint,
    ));
    // Probe the per-sample backends only for a model large enough that their
    // first call might not fit (small models are measured without the probe).
    let jobs = (configs.len() * batches.len()).max(1) as f64;
    let share_ns = opts.budget.as_nanos() as f64 / jobs * opts.harness.max_overrun.max(1.0);
    let smallest = batches.iter().copied().min().unwrap_or(1);
    if configs.iter().any(|&(b, _)| budget::per_sample(b))
        && budget::rates_needed(
            &subject,
            smallest,
            1.0 + opts.harness.reduced_samples as f64,
            share_ns,
        )
    {
        subject.rates = Some(budget::probe_rates(
            &opts.cache_dir,
            &subject.hardware_fingerprint,
            opts.fresh,
        )?);
    }
    let input_len = graph.input_len();
    let max_batch = batches.iter().copied().max().unwrap_or(1);
    let inspect = RefCell::new(inspect);
    // The progress callback, shared by the jobs and the autotuner's search
    // (which runs inside a job's compile, between the jobs' own events).
    let tuning_progress = RefCell::new(progress);
    let mut factory = |backend: BackendKind,
                       precision: Precision,
                       allowance: Duration|
     -> Result<Result<Box<dyn Workload>, String>, MeasureError> {
        if backend_for(backend).is_none() {
            return Ok(Err(format!(
                "backend {backend} is not available in this build"
            )));
        }
        let copts = CompileOptions {
            precision,
            threads: 1,
            ..CompileOptions::default()
        };
        let compiled = match backend {
            BackendKind::Autotuned => autotuner_within(graph, allowance)
                .compile_tuned(graph, &copts, &mut |shape, p| {
                    // Called between timings, never inside a progress call.
                    if let Ok(mut report) = tuning_progress.try_borrow_mut() {
                        report(tuning_event(shape, &p));
                    }
                })
                .map(|(exe, _)| Box::new(exe) as Box<dyn Executable>),
            _ => compile(graph, backend, &copts),
        };
        match compiled {
            Ok(exe) => Ok(Ok(Box::new(ExecutableWorkload {
                exe,
                input: deterministic_input(max_batch.saturating_mul(input_len)),
                input_len,
                backend,
                precision,
                inspect: &inspect,
            }))),
            Err(e @ KernelError::Unsupported { .. }) => Ok(Err(e.to_string())),
            Err(e) => Err(MeasureError::Workload(format!(
                "compiling {} with {backend} at {precision}: {e}",
                graph.name()
            ))),
        }
    };
    measure_jobs(&subject, configs, batches, opts, &mut factory, &mut |p| {
        if let Ok(mut report) = tuning_progress.try_borrow_mut() {
            report(p);
        }
    })
}

/// A step of the autotuner's search, as a measurement event.
fn tuning_event(shape: &GemmShape, p: &TuneProgress) -> MeasureProgress {
    let best = p
        .best
        .as_ref()
        .map(|params| {
            params
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    MeasureProgress::Tuning {
        shape: format!("{}x{}x{}", shape.m, shape.n, shape.k),
        trials: p.trials,
        max_trials: p.max_trials,
        best_gflops: p
            .best_ns
            .filter(|ns| *ns > 0.0)
            .map(|ns| shape.flops() / ns),
        best,
    }
}
