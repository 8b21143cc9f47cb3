//! Memory a model's measurement holds at its peak, estimated from the spec
//! alone (no weights are built), so that a model too large to measure is
//! refused before anything is allocated, and a batch size that would not fit
//! is not timed.
//!
//! Where the memory goes (an-heavy-model, a 150 M-parameter transformer,
//! seq_len 512, d_model 1024, 16 heads, 12 layers, 2026-11-30): 0.6 GB of
//! f32 weights in the graph, about as much again packed by the backend, and
//! every intermediate tensor of a call at once: the kernels' executors give
//! each node of the graph its own buffer for the whole batch (no reuse
//! between layers), 0.86 GB a sample here (16 heads x 512 x 512 attention
//! scores and their softmax are half of it). Its agreement check ran 16
//! inputs as one batch: 14.0 GB of peak RSS.

use workbench_kernels::{conv_output_size, BlockGeometry, ModelSpec};

/// Copies of a model's f32 weights alive at once while it is measured: the
/// graph's, the backend's packed ones and a compile's temporaries (a
/// 258 M-parameter MLP peaked at 3.5x its f32 weights, 2026-11-29).
pub const WEIGHT_COPIES_WHILE_MEASURING: f64 = 4.0;

/// Most activation bytes the agreement check runs at once: its inputs go
/// through the model in batches of up to 16, fewer when one sample's
/// activations are large (a batch of 16 of the transformer above held 14 GB).
pub const AGREEMENT_ACTIVATION_BYTES: f64 = 256.0 * 1024.0 * 1024.0;

/// Largest batch the agreement check runs its inputs in.
pub const AGREEMENT_MAX_BATCH: usize = 16;

/// Most output values kept per configuration for the agreement check
/// (larger outputs are compared by compiling the model again).
pub const MAX_KEPT_OUTPUTS: usize = 16 << 20;

/// Precisions whose outputs the agreement check may keep at once (f32 and
/// the three reduced ones).
const KEPT_OUTPUT_SETS: f64 = 4.0;

/// Elements of every tensor one sample's call writes: the input and each
/// node's output (see [`workbench_kernels::SpecCounts::total_activation_elems`]).
/// Saturates rather than overflowing for absurd specs.
pub fn activation_elems_per_sample(spec: &ModelSpec) -> f64 {
    spec.counts().total_activation_elems
}

/// Floats of the largest zero-padded, stride-split conv input the tiled
/// kernels build for a convnet (`kernels::conv::SplitLayout`: padded rows
/// read x stride x columns per phase, per input channel); 0 for the others.
pub fn largest_split_layout_floats(spec: &ModelSpec) -> f64 {
    let ModelSpec::Convnet(spec) = spec else {
        return 0.0;
    };
    let (mut h, mut w, mut c) = (spec.height, spec.width, spec.channels);
    let mut largest: f64 = 0.0;
    for block in &spec.blocks {
        let BlockGeometry {
            out_channels,
            kernel,
            stride,
        } = block.geometry();
        let stride = stride.max(1);
        let (oh, ow) = (
            conv_output_size(h, kernel, stride).max(1),
            conv_output_size(w, kernel, stride).max(1),
        );
        let rows = ((oh - 1) * stride + kernel) as f64;
        let columns = (ow + (kernel - 1) / stride) as f64;
        largest = largest.max(c as f64 * rows * stride as f64 * columns);
        (h, w, c) = (oh, ow, out_channels);
    }
    largest
}

/// Bytes of one sample's activations during a call (f32), including a
/// convnet's stride-split copy of a conv input.
pub fn activation_bytes_per_sample(spec: &ModelSpec) -> f64 {
    (activation_elems_per_sample(spec) + largest_split_layout_floats(spec)) * 4.0
}

/// What measuring a model holds at its peak, by part.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeasureMemory {
    /// The f32 weights, [`WEIGHT_COPIES_WHILE_MEASURING`] times over.
    pub weights: f64,
    /// Every tensor of a call at the batch size.
    pub activations: f64,
    /// The agreement check's seeded inputs and the outputs it keeps.
    pub agreement: f64,
    /// The batch size the activations are counted at (the largest one measured,
    /// or the agreement check's when larger).
    pub batch: usize,
}

impl MeasureMemory {
    pub fn total(&self) -> f64 {
        self.weights + self.activations + self.agreement
    }
}

/// Peak memory of measuring `spec` (with `params` parameters) at batch sizes
/// up to `batch`: one configuration is compiled at a time and its buffers are
/// sized for the batch it runs, so the peak is the weights' copies plus the
/// activations of the largest batch (or of the agreement check's, when
/// larger), plus what the agreement check keeps (`agreement_inputs` seeded
/// inputs, and the outputs of each precision).
pub fn measuring_memory(
    spec: &ModelSpec,
    params: u64,
    batch: usize,
    agreement_inputs: usize,
) -> MeasureMemory {
    let weights = params as f64 * 4.0 * WEIGHT_COPIES_WHILE_MEASURING;
    let per_sample = activation_bytes_per_sample(spec);
    let largest = batch.max(agreement_batch(per_sample));
    let activations = per_sample * largest as f64;
    let inputs = agreement_inputs as f64;
    let outputs = (inputs * spec.output_len() as f64).min(MAX_KEPT_OUTPUTS as f64);
    let agreement = inputs * spec.input_len() as f64 * 4.0 + outputs * 4.0 * KEPT_OUTPUT_SETS;
    MeasureMemory {
        weights,
        activations,
        agreement,
        batch: largest,
    }
}

/// Samples the agreement check runs through the model at once: up to
/// [`AGREEMENT_MAX_BATCH`], as many as keep one call's activations within
/// [`AGREEMENT_ACTIVATION_BYTES`], at least one.
pub fn agreement_batch(activation_bytes_per_sample: f64) -> usize {
    if activation_bytes_per_sample.is_nan() || activation_bytes_per_sample <= 0.0 {
        return AGREEMENT_MAX_BATCH;
    }
    let fits = (AGREEMENT_ACTIVATION_BYTES / activation_bytes_per_sample).floor();
    (fits.min(AGREEMENT_MAX_BATCH as f64) as usize).max(1)
}
