//! Agreement of a reduced-precision compile with the naive f32 reference, on
//! a seeded input set: the figure the planner weighs against a scenario's
//! accuracy floor.

use crate::backend::{compile, CompileOptions};
use crate::backends::quantized::seeded_inputs;
use crate::error::KernelError;
use crate::graph::Graph;
use crate::spec::{BackendKind, Precision};

/// How closely a precision reproduces f32.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agreement {
    /// Fraction of samples whose arg-max class matches (classifiers only).
    pub top1: Option<f64>,
    /// `||y - y_ref|| / ||y_ref||` over all outputs of all samples.
    pub rel_error: f64,
    pub samples: usize,
}

/// Compiles `graph` at `precision` (quantized backend; f32 uses tiled) and
/// compares it with f32 (the tiled backend, itself checked against naive) on
/// `samples` seeded inputs in [-1, 1).
pub fn agreement(
    graph: &Graph,
    precision: Precision,
    seed: u64,
    samples: usize,
) -> Result<Agreement, KernelError> {
    let samples = samples.max(1);
    let kind = if precision == Precision::F32 {
        BackendKind::Tiled
    } else {
        BackendKind::Quantized
    };
    let opts = CompileOptions {
        precision,
        ..CompileOptions::default()
    };
    // The f32 reference runs on the tiled backend: every test pins it to naive
    // within 1e-5 (relative norm), and it is 10-100x faster, which matters when
    // a planner checks several precisions of several model variants.
    let mut reference = compile(graph, BackendKind::Tiled, &CompileOptions::default())?;
    let mut candidate = compile(graph, kind, &opts)?;
    let len = graph.input_len();
    let out_len = graph.output_len();
    let inputs = seeded_inputs(len, samples, seed);
    // Batches of up to 16 keep memory bounded on large models.
    let (mut diff, mut norm, mut agree) = (0.0f64, 0.0f64, 0usize);
    let mut s0 = 0;
    while s0 < samples {
        let b = (samples - s0).min(16);
        let x = &inputs[s0 * len..(s0 + b) * len];
        let want = reference.run(x, b)?.to_vec();
        let got = candidate.run(x, b)?;
        for (g, w) in got.iter().zip(&want) {
            diff += f64::from(g - w).powi(2);
            norm += f64::from(*w).powi(2);
        }
        for s in 0..b {
            let argmax = |v: &[f32]| {
                v.iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map(|(i, _)| i)
            };
            let range = s * out_len..(s + 1) * out_len;
            if argmax(&got[range.clone()]) == argmax(&want[range]) {
                agree += 1;
            }
        }
        s0 += b;
    }
    Ok(Agreement {
        top1: graph.is_classifier().then(|| agree as f64 / samples as f64),
        rel_error: if norm > 0.0 {
            (diff / norm).sqrt()
        } else {
            diff.sqrt()
        },
        samples,
    })
}
