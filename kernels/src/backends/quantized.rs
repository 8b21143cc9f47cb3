//! Quantized backend: dense, conv2d and pointwise conv run as int8 GEMMs
//! (u8 activations x per-channel s8 weights, i32 accumulation, dequantized to
//! f32 at the op boundary) or as f16/bf16-weight GEMMs with f32 accumulation.
//! Convolutions over a few taps (a 3-channel stem) stay f32 on the tiled
//! engine's direct kernel where it exists (AVX-512, AVX2 + FMA); one read
//! only by a stride-1 depthwise conv writes straight into that conv's
//! zero-padded input, the two running sample by sample. The ops without weights
//! to quantize run in f32 on the tiled engine's kernels where they have one
//! (depthwise conv, attention's per-head products, softmax, layer norm,
//! activations) and on the reference kernels otherwise. Consecutive int8
//! dense layers chain without f32: `dense -> relu -> dense` runs the bias and
//! ReLU in the first GEMM's epilogue, which writes u8 quantized for the next
//! (bit-identical to the unchained path, which a test checks). f16/bf16
//! dense layers run a following ReLU in their GEMM epilogue the same way, and
//! every conv runs a following ReLU (and a global average pool) in its own.
//!
//! int8 activation ranges are calibrated at compile time on seeded sample
//! inputs (percentile 99.99 by default, min-max on request). Convolutions go
//! through a patch-major im2col so the output channels are the GEMM columns
//! the weight scales belong to. On the VNNI path a pointwise conv runs
//! [`crate::quant::pointwise`]'s kernel instead: pixels in the vector lanes,
//! channel planes in and out (or channel sums into a pool), no transposes,
//! the GEMM's epilogue bits.
//!
//! A batch goes through consecutive per-sample nodes (convolutions,
//! activations, pooling, residual adds) one sample at a time, as the tiled
//! engine's sample-major runs do: a sample's activations stay in cache from
//! node to node, and the buffers inside such a run hold one sample. Dense
//! layers and attention take the whole batch at once (a dense GEMM's rows are
//! the batch).
//!
//! What int8 does with inputs unlike the calibration samples (uniform in
//! [-1, 1), as the benchmark inputs are): values outside a layer's calibrated
//! range saturate at its ends (an input of 1e6 reads as the range's top), and
//! NaN quantizes to the zero point, so a NaN input gives finite outputs where
//! the f32 and half backends give NaN. Check inputs for NaN before an int8
//! model if that matters; the agreement figure the planner uses is measured
//! on inputs like the calibration samples.
//!
//! With `CompileOptions::threads > 1` the work splits over threads through
//! `pool`, as the tiled engine's does: dense GEMMs (int8 and f16/bf16, with
//! the quantization of their input) once per call, by blocks of rows and
//! column panels (`quant::split`); convolutions once per sample: a conv or
//! pointwise GEMM by bands of output pixels (each gathering its patch rows,
//! running the GEMM and writing its pixels or pooled sums while in cache;
//! the bands are fixed by the shapes, and run one by one on one thread), the
//! f32 direct conv by output rows (the tiled engine's split) and the depthwise
//! conv by bands of channels, their input's split layout by channels too.
//! Small work stays on one thread by the tiled engine's rule. Results are the
//! same bits on any number of threads. Softmax, layer norm and activations run
//! on one thread; attention's per-head products run on the tiled GEMM, which
//! splits one only when that head alone is worth it (not at the reference
//! transformer's 64 x 64 heads).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use crate::backend::{check_input, Backend, CompileOptions, Executable};
use crate::backends::naive::{conv_geom, reference_op};
use crate::conv::{self, SplitLayout};
use crate::error::KernelError;
use crate::gemm::GemmWorkspace;
use crate::graph::{Graph, Op};
use crate::liveness::{self, Placement, SlotBuffers, SlotPlan};
use crate::pool::{self, ChunkRecord};
use crate::quant::calibrate::{calibration_batch, dense_f32};
use crate::quant::int8::{gemm_u8s8_f32_on, gemm_u8s8_u8_on, k_padded};
use crate::quant::pointwise::{pointwise_conv_u8s8, PixelQuads, PlanesOut};
use crate::quant::split::GemmThreads;
use crate::quant::{
    quantize_weights_per_channel, ActivationQuant, CalibrationMethod, Calibrator, HalfPath,
    Int8Epilogue, Int8Path, PackedPanelWeights, PackedWeightsS8, QuantError, WeightStorage,
};
use crate::reference::{ConvGeom, RowView};
use crate::simd::SimdLevel;
use crate::spec::{Activation, BackendKind, Precision};
use crate::step_cost::Call;
use crate::tile::TileParams;
use crate::transpose::transpose;

fn qerr(e: QuantError) -> KernelError {
    KernelError::Gemm(format!("quantized: {e}"))
}

/// Options of the quantized backend; the precision comes from `CompileOptions`.
#[derive(Debug, Clone, Copy)]
pub struct QuantizedBackend {
    pub calibration: CalibrationMethod,
    /// Seeded sample inputs run through the f32 model to calibrate int8 ranges.
    pub calibration_samples: usize,
    pub calibration_seed: u64,
    /// Force a kernel path (tests); `None` = detection (honours `WORKBENCH_SIMD`).
    pub int8_path: Option<Int8Path>,
    pub half_path: Option<HalfPath>,
    /// Fuse a ReLU into the int8 GEMM before it and hand a GEMM's output to
    /// the next int8 dense layer as requantized u8 (no f32 round trip).
    /// Off only to check that chaining changes no result.
    pub chain_int8: bool,
    /// Run the ReLU after an f16/bf16-weight dense layer in that GEMM's
    /// epilogue (with the bias). Off only to check that fusing changes no result.
    pub fuse_half_relu: bool,
    /// Run the ReLU after a convolution (standard, pointwise or depthwise) in
    /// that conv's epilogue, and a global average pool after a conv GEMM as
    /// column sums of its output. Off only to check that fusing changes no
    /// result (beyond the pool's summation order).
    pub fuse_conv_epilogue: bool,
    /// Run an activation other than ReLU (GELU, sigmoid, tanh) after a dense
    /// layer in place over that GEMM's output, written straight into the
    /// activation's buffer, instead of into a buffer of its own: a
    /// transformer's FFN then holds one hidden activation, not two. Off only
    /// to check that it changes no result.
    pub activation_in_place: bool,
    /// Write attention scores straight into the softmax's buffer and run the
    /// softmax there in place, a sample at a time while its scores are in
    /// cache: one heads x seq x seq buffer, not two. Off only to check that
    /// it changes no result.
    pub softmax_in_place: bool,
}

impl Default for QuantizedBackend {
    fn default() -> Self {
        QuantizedBackend {
            calibration: CalibrationMethod::Percentile(99.99),
            calibration_samples: 16,
            calibration_seed: 0x5eed_ca1b,
            int8_path: None,
            half_path: None,
            chain_int8: true,
            fuse_half_relu: true,
            fuse_conv_epilogue: true,
            activation_in_place: true,
            softmax_in_place: true,
        }
    }
}

/// Seeded inputs in [-1, 1), `samples * len` values.
pub fn seeded_inputs(len: usize, samples: usize, seed: u64) -> Vec<f32> {
    let mut rng = Pcg64::seed_from_u64(seed);
    (0..len * samples)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect()
}

impl Backend for QuantizedBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Quantized
    }

    fn compile(
        &self,
        graph: &Graph,
        opts: &CompileOptions,
    ) -> Result<Box<dyn Executable>, KernelError> {
        let unsupported = |what: String| KernelError::Unsupported {
            backend: "quantized".into(),
            what,
        };
        let storage = match opts.precision {
            Precision::Int8 => None,
            Precision::F16 => Some(WeightStorage::F16),
            Precision::Bf16 => Some(WeightStorage::Bf16),
            Precision::F32 => {
                return Err(unsupported(
                    "precision f32 (accepted: int8, f16, bf16)".into(),
                ))
            }
        };
        // An explicit SIMD level in the options caps the kernel paths like WORKBENCH_SIMD does.
        let (int8_cap, half_cap) = match opts.simd {
            Some(SimdLevel::Portable) => (Int8Path::Portable, HalfPath::Portable),
            Some(SimdLevel::Avx2Fma) => (Int8Path::Avx2, HalfPath::Avx2),
            _ => (Int8Path::Vnni512, HalfPath::Avx512),
        };
        let int8_path = self
            .int8_path
            .unwrap_or_else(|| Int8Path::detect().min(int8_cap));
        let half_path = self
            .half_path
            .unwrap_or_else(|| HalfPath::detect().min(half_cap));
        if !int8_path.is_supported() || !half_path.is_supported() {
            return Err(unsupported(format!(
                "kernel path {}/{} on this CPU",
                int8_path.name(),
                half_path.name()
            )));
        }
        let simd = opts.resolved_simd()?;
        let f32_convs = f32_conv_geoms(graph, simd)
            .into_iter()
            .map(|(i, (kind, geom))| (i, F32Conv::new(kind, geom)))
            .collect();
        let tile = opts.resolved_tile(simd)?;
        let mut exe = QuantizedExecutable {
            graph: graph.clone(),
            simd,
            f32_convs,
            tile,
            ws: GemmWorkspace::new(),
            precision: opts.precision,
            gemms: BTreeMap::new(),
            fused_away: vec![false; graph.nodes.len()],
            in_place: vec![None; graph.nodes.len()],
            writes: Vec::new(),
            held: Vec::new(),
            sample_major: Vec::new(),
            sample_local: vec![false; graph.nodes.len()],
            buffers: SlotBuffers::new(SlotPlan::one_each(0)),
            u8_inputs: Vec::new(),
            batch: 0,
            int8_path,
            half_path,
            scratch: Scratch::default(),
            chunks: ChunkRecord::default(),
            bands: vec![BandScratch::default(); tile.threads.max(1)],
            band_sums: Vec::new(),
            run_history: pool::RunHistory::default(),
        };
        // Calibration runs the whole batch node by node.
        exe.plan_buffers(false);
        // Activation parameters for int8: run the f32 model on seeded inputs
        // and observe the input of every GEMM node.
        let mut acts: BTreeMap<usize, ActivationQuant> = BTreeMap::new();
        if storage.is_none() {
            let samples = self.calibration_samples.max(1);
            let inputs = seeded_inputs(graph.input_len(), samples, self.calibration_seed);
            let mut cal: BTreeMap<usize, Calibrator> = BTreeMap::new();
            for (i, node) in graph.nodes.iter().enumerate() {
                if is_gemm(&node.op) && !exe.f32_convs.contains_key(&i) {
                    cal.insert(i, Calibrator::new(self.calibration).map_err(qerr)?);
                }
            }
            // Samples run together as far as their activations stay small.
            let len = graph.input_len();
            let per_sample: usize = graph.nodes.iter().map(|n| n.numel() * 4).sum();
            for chunk in inputs.chunks((len * calibration_batch(samples, per_sample)).max(1)) {
                exe.run_nodes(chunk, chunk.len() / len.max(1), Some(&mut cal))?;
            }
            for (i, c) in cal {
                // A GEMM whose input never varied (e.g. all zeros) still gets valid parameters.
                let q = c.finish().unwrap_or(ActivationQuant {
                    scale: 1.0,
                    zero_point: 0,
                });
                acts.insert(i, q);
            }
        }
        for (i, node) in graph.nodes.iter().enumerate() {
            if exe.f32_convs.contains_key(&i) {
                continue;
            }
            let Some((wt, k, n, bias)) = gemm_weights(&node.op) else {
                continue;
            };
            let weights = match storage {
                Some(st) => {
                    GemmWeights::Half(PackedPanelWeights::pack(st, k, n, &wt, n).map_err(qerr)?)
                }
                None => {
                    let q = quantize_weights_per_channel(&wt, k, n).map_err(qerr)?;
                    GemmWeights::Int8 {
                        packed: PackedWeightsS8::pack(int8_path, k, n, &q.values, n)
                            .map_err(qerr)?,
                        scales: q.scales,
                        act: acts.get(&i).copied().unwrap_or(ActivationQuant {
                            scale: 1.0,
                            zero_point: 0,
                        }),
                    }
                }
            };
            exe.gemms.insert(
                i,
                GemmNode {
                    weights,
                    bias,
                    k,
                    n,
                    input_u8: false,
                    relu_into: None,
                    pool_into: None,
                    chain_to: None,
                },
            );
        }
        let gemm_nodes: BTreeSet<usize> = exe.gemms.keys().copied().collect();
        let f32_nodes: BTreeSet<usize> = exe.f32_convs.keys().copied().collect();
        let fusions = self.fusions(graph, &gemm_nodes, &f32_nodes, storage.is_none());
        exe.apply(fusions);
        exe.plan_buffers(true);
        Ok(Box::new(exe))
    }
}

/// The patch geometry of a conv's input (`None` for a pointwise conv, whose
/// patch rows are its input transposed): what both the run and the
/// calibration pass lay their patch rows out by.
fn patch_geometry(op: &Op, in_shape: &[usize], out_shape: &[usize]) -> Option<ConvGeom> {
    match op {
        Op::Conv2d {
            weight,
            stride,
            padding,
            ..
        } => Some(conv_geom(
            in_shape,
            out_shape,
            weight.shape[2],
            weight.shape[3],
            *stride,
            *padding,
        )),
        _ => None,
    }
}

/// The f32 convolutions that write their output straight into the next
/// one's split input, as `(conv, depthwise)`: a direct conv (with the ReLU
/// `relu_into` fuses into it) read only by a depthwise conv over exactly its
/// output, whose layout is the zero-padded image (stride 1). That depthwise
/// conv then has no input copy of its own. `convs`: [`f32_conv_geoms`].
fn direct_conv_feeds(
    graph: &Graph,
    convs: &BTreeMap<usize, (F32ConvKind, ConvGeom)>,
    relu_into: &[Option<usize>],
) -> Vec<(usize, usize)> {
    let consumers = graph.sole_consumers();
    let mut links = Vec::new();
    for (&i, &(kind, g)) in convs {
        let last = relu_into.get(i).copied().flatten().unwrap_or(i);
        let Some(next) = consumers.get(last).copied().flatten() else {
            continue;
        };
        let Some(&(next_kind, n)) = convs.get(&next) else {
            continue;
        };
        let feeds = kind == F32ConvKind::Direct
            && next_kind == F32ConvKind::Depthwise
            && SplitLayout::new(&n).is_padded_image_of(&n)
            && (n.in_c, n.h, n.w) == (g.out_c, g.oh, g.ow);
        if feeds && last != graph.output {
            links.push((i, next));
        }
    }
    links
}

/// Convolutions that run in f32 on the tiled engine's kernels, by node: every
/// depthwise conv, and convolutions over a few taps (a stem over 3 channels),
/// which int8 runtimes commonly keep in higher precision: quantizing 27 taps
/// buys nothing, and the int8 route (im2col, quantize, GEMM, transpose) cost
/// more than the whole f32 conv.
fn f32_conv_geoms(graph: &Graph, simd: SimdLevel) -> BTreeMap<usize, (F32ConvKind, ConvGeom)> {
    let mut convs = BTreeMap::new();
    for (i, node) in graph.nodes.iter().enumerate() {
        let (weight, stride, padding, kind) = match &node.op {
            Op::DepthwiseConv2d {
                weight,
                stride,
                padding,
                ..
            } => (weight, stride, padding, F32ConvKind::Depthwise),
            Op::Conv2d {
                weight,
                stride,
                padding,
                ..
            } => (weight, stride, padding, F32ConvKind::Direct),
            _ => continue,
        };
        let first = node.inputs.first().copied().unwrap_or(0);
        let (kh, kw) = {
            let d = &weight.shape;
            (d[d.len() - 2], d[d.len() - 1])
        };
        let geom = conv_geom(
            &graph.nodes[first].shape,
            &node.shape,
            kh,
            kw,
            *stride,
            *padding,
        );
        if kind == F32ConvKind::Depthwise || direct_conv_applies(simd, &geom) {
            convs.insert(i, (kind, geom));
        }
    }
    convs
}

/// What the quantized backend runs inside another node's kernel instead of as
/// a node of its own, decided from the graph alone: compiling applies it, and
/// the costs the projection charges follow it.
#[derive(Debug, Clone, PartialEq)]
struct Fusions {
    /// Per node: the ReLU after it, applied in its kernel (the result lands in
    /// the ReLU's buffer).
    relu_into: Vec<Option<usize>>,
    /// Per conv GEMM node: the global average pool after it (and its ReLU),
    /// taken as column sums of the GEMM's output, which is never stored.
    pool_into: Vec<Option<usize>>,
    /// Per int8 dense node: the int8 dense node its output goes to, requantized u8.
    chain_to: Vec<Option<usize>>,
    /// Per node: the node after it run in place over its output, which
    /// lands in that node's buffer (`run_in_place`): an activation other than
    /// a ReLU after a dense GEMM, the softmax after attention scores.
    in_place: Vec<Option<usize>>,
    /// Nodes whose work another node's kernel does: skipped at run time.
    fused_away: Vec<bool>,
}

impl QuantizedBackend {
    /// The fusions for `graph` whose GEMM nodes (quantized weights) are `gemms`
    /// and whose f32 convolutions are `f32_convs`; `int8` or f16/bf16 weights.
    fn fusions(
        &self,
        graph: &Graph,
        gemms: &BTreeSet<usize>,
        f32_convs: &BTreeSet<usize>,
        int8: bool,
    ) -> Fusions {
        let n = graph.nodes.len();
        let consumers = graph.sole_consumers();
        let sole_consumer = |i: usize| consumers[i];
        let relu_after = |i: usize| {
            sole_consumer(i)
                .filter(|&j| matches!(graph.nodes[j].op, Op::Activation(Activation::Relu)))
        };
        let dense = |i: usize| gemms.contains(&i) && matches!(graph.nodes[i].op, Op::Dense { .. });
        let mut f = Fusions {
            relu_into: vec![None; n],
            pool_into: vec![None; n],
            chain_to: vec![None; n],
            in_place: vec![None; n],
            fused_away: vec![false; n],
        };
        for i in 0..n {
            if dense(i) {
                if int8 && self.chain_int8 {
                    // `dense -> relu -> dense`: the ReLU in the first GEMM's
                    // epilogue, which also requantizes for the second.
                    let relu = relu_after(i);
                    f.relu_into[i] = relu;
                    f.chain_to[i] = sole_consumer(relu.unwrap_or(i)).filter(|&l| dense(l));
                } else if !int8 && self.fuse_half_relu {
                    f.relu_into[i] = relu_after(i);
                }
            } else if gemms.contains(&i) && self.fuse_conv_epilogue {
                // A conv or pointwise GEMM: the ReLU before its output is
                // transposed, a pool as column sums of it.
                let relu = relu_after(i);
                f.relu_into[i] = relu;
                f.pool_into[i] = sole_consumer(relu.unwrap_or(i))
                    .filter(|&p| matches!(graph.nodes[p].op, Op::GlobalAvgPool));
            } else if f32_convs.contains(&i) && self.fuse_conv_epilogue {
                f.relu_into[i] = relu_after(i);
            }
            // An activation other than ReLU after a dense GEMM, or the
            // softmax after attention scores, runs in place over the output.
            let scores = matches!(graph.nodes[i].op, Op::AttentionScores { .. });
            let runs_in_place = |op: &Op| match op {
                Op::Activation(a) => dense(i) && self.activation_in_place && *a != Activation::Relu,
                Op::Softmax => scores && self.softmax_in_place,
                _ => false,
            };
            if f.relu_into[i].is_none() {
                f.in_place[i] = sole_consumer(i).filter(|&j| runs_in_place(&graph.nodes[j].op));
            }
        }
        for i in 0..n {
            for j in [f.relu_into[i], f.pool_into[i], f.in_place[i]]
                .into_iter()
                .flatten()
            {
                f.fused_away[j] = true;
            }
        }
        f
    }

    /// The calls this backend, compiled with `opts`, makes for `graph`: node
    /// by node, a ReLU or pool run in the kernel before it being part of that
    /// kernel's call (its input never stored). Reshapes are free and constants
    /// are weights, as in [`Graph::op_costs`].
    pub(crate) fn node_calls(
        &self,
        graph: &Graph,
        opts: &CompileOptions,
    ) -> Result<Vec<Call>, KernelError> {
        let int8 = match opts.precision {
            Precision::Int8 => true,
            Precision::F16 | Precision::Bf16 => false,
            Precision::F32 => {
                return Err(KernelError::Unsupported {
                    backend: "quantized".into(),
                    what: "precision f32 (accepted: int8, f16, bf16)".into(),
                })
            }
        };
        let simd = opts.resolved_simd()?;
        let f32_geoms = f32_conv_geoms(graph, simd);
        let f32_nodes: BTreeSet<usize> = f32_geoms.keys().copied().collect();
        let gemm_nodes: BTreeSet<usize> = (0..graph.nodes.len())
            .filter(|i| is_gemm(&graph.nodes[*i].op) && !f32_nodes.contains(i))
            .collect();
        let fusions = self.fusions(graph, &gemm_nodes, &f32_nodes, int8);
        let fed: BTreeSet<usize> = direct_conv_feeds(graph, &f32_geoms, &fusions.relu_into)
            .into_iter()
            .map(|(_, next)| next)
            .collect();
        let mut calls = Vec::new();
        for (i, node) in graph.nodes.iter().enumerate() {
            if fusions.fused_away[i]
                || matches!(node.op, Op::Input | Op::Constant(_) | Op::Reshape(_))
            {
                continue;
            }
            let mut group = vec![i];
            group.extend(fusions.relu_into[i]);
            group.extend(fusions.pool_into[i]);
            group.extend(fusions.in_place[i]);
            let (mut activations, mut weights) = (0.0, 0.0);
            // An activation or softmax in place reads and writes the output again.
            if let Some(j) = fusions.in_place[i] {
                activations += 2.0 * graph.nodes[j].numel() as f64;
            }
            for &j in &node.inputs {
                let elements = graph.nodes[j].numel() as f64;
                match graph.nodes[j].op {
                    Op::Constant(_) => weights += elements,
                    _ => activations += elements,
                }
            }
            weights += node
                .op
                .params()
                .iter()
                .map(|t| t.numel() as f64)
                .sum::<f64>();
            let last = group.last().copied().unwrap_or(i);
            activations += graph.nodes[last].numel() as f64;
            let names: Vec<&str> = group
                .iter()
                .map(|&j| graph.nodes[j].name.as_str())
                .collect();
            let kinds: Vec<&str> = group.iter().map(|&j| graph.nodes[j].op.kind()).collect();
            calls.push(Call {
                name: names.join("+"),
                kind: kinds.join("+"),
                flops: group.iter().map(|&j| graph.node_flops(j)).sum(),
                activations,
                weights,
                input_written_for_it: fed.contains(&i),
            });
        }
        Ok(calls)
    }
}

/// The weights and bias of a conv or depthwise conv node.
fn conv_params(op: &Op) -> Option<(&[f32], Option<&[f32]>)> {
    match op {
        Op::Conv2d { weight, bias, .. } | Op::DepthwiseConv2d { weight, bias, .. } => {
            Some((&weight.data, bias.as_ref().map(|b| &b.data[..])))
        }
        _ => None,
    }
}

fn is_gemm(op: &Op) -> bool {
    matches!(
        op,
        Op::Dense { .. } | Op::Conv2d { .. } | Op::PointwiseConv { .. }
    )
}

/// The GEMM view of a node's weights: `B` as k x n row-major, plus bias.
#[allow(clippy::type_complexity)]
fn gemm_weights(op: &Op) -> Option<(Vec<f32>, usize, usize, Option<Vec<f32>>)> {
    let transpose = |w: &[f32], rows: usize, cols: usize| -> Vec<f32> {
        let mut t = vec![0.0; rows * cols];
        for i in 0..rows {
            for j in 0..cols {
                t[j * rows + i] = w[i * cols + j];
            }
        }
        t
    };
    match op {
        Op::Dense { weight, bias } => Some((
            weight.data.to_vec(),
            weight.shape[0],
            weight.shape[1],
            bias.as_ref().map(|b| b.data.to_vec()),
        )),
        // W [out, in*kh*kw] -> B = W^T [in*kh*kw, out].
        Op::Conv2d { weight, bias, .. } => {
            let oc = weight.shape[0];
            let kk = weight.shape[1] * weight.shape[2] * weight.shape[3];
            Some((
                transpose(&weight.data, oc, kk),
                kk,
                oc,
                bias.as_ref().map(|b| b.data.to_vec()),
            ))
        }
        Op::PointwiseConv { weight, bias } => {
            let (oc, ic) = (weight.shape[0], weight.shape[1]);
            Some((
                transpose(&weight.data, oc, ic),
                ic,
                oc,
                bias.as_ref().map(|b| b.data.to_vec()),
            ))
        }
        _ => None,
    }
}

enum GemmWeights {
    Int8 {
        packed: PackedWeightsS8,
        scales: Vec<f32>,
        act: ActivationQuant,
    },
    Half(PackedPanelWeights),
}

struct GemmNode {
    weights: GemmWeights,
    bias: Option<Vec<f32>>,
    k: usize,
    n: usize,
    /// A comes pre-quantized in `u8_inputs[this node]`, written by the producer's epilogue.
    input_u8: bool,
    /// The ReLU node after this GEMM, applied in its epilogue; the result lands in that node's buffer.
    relu_into: Option<usize>,
    /// The global average pool after this conv (and its ReLU): the GEMM's
    /// pixel-major output is summed by columns straight into that node's
    /// buffer, never transposed or stored channel-major.
    pool_into: Option<usize>,
    /// The int8 dense node this GEMM feeds and its input quantization: the
    /// output is requantized into that node's u8 input.
    chain_to: Option<(usize, ActivationQuant)>,
}

/// What a node does after its own work, as its lowered line says it:
/// " + relu" (a GEMM's epilogue), " + gelu in place" (`in_place`), "".
fn epilogue_name(relu: bool, in_place: Option<&crate::graph::Node>) -> String {
    match (relu, in_place) {
        (true, _) => " + relu".to_string(),
        (false, Some(next)) => format!(" + {} in place", next.op.kind()),
        (false, None) => String::new(),
    }
}

/// Node `next`, one that `Fusions::in_place` runs after the node before
/// it, over that node's output `xs`, in place.
fn run_in_place(next: &crate::graph::Node, xs: &mut [f32]) {
    match next.op {
        Op::Activation(a) => crate::act::apply_slice(a, xs),
        Op::Softmax => crate::rowops::softmax_in_place(xs, next.shape.last().copied().unwrap_or(1)),
        // `Fusions` plans nothing else in place.
        _ => {}
    }
}

/// The A operand of a GEMM node.
enum GemmIn<'a> {
    F32(&'a [f32]),
    /// Quantized rows of stride `k_padded(k)`.
    U8(&'a [u8]),
}

/// Where a GEMM node writes.
enum GemmOut<'a> {
    F32 {
        out: &'a mut [f32],
        relu: bool,
    },
    U8 {
        out: &'a mut [u8],
        quant: ActivationQuant,
    },
}

#[derive(Default)]
struct Scratch {
    a_u8: Vec<u8>,
}

/// Whether a conv runs on the f32 direct kernel: few enough taps, and the
/// kernel exists at this SIMD level.
fn direct_conv_applies(simd: SimdLevel, g: &ConvGeom) -> bool {
    direct_conv_applies_to_taps(simd, g.in_c * g.kh * g.kw)
}

/// [`direct_conv_applies`] by the conv's reduction depth (input channels x
/// kernel taps): AVX-512 and AVX2 + FMA have the kernel. On AVX2 the f32
/// stem of convnet-224 (27 taps) takes about a third of the time of its
/// int8 route (im2col, quantize, GEMM, transpose); the cost projection
/// (`step_cost`) must keep the same rule.
pub(crate) fn direct_conv_applies_to_taps(simd: SimdLevel, taps: usize) -> bool {
    matches!(simd, SimdLevel::Avx512 | SimdLevel::Avx2Fma)
        && simd.is_supported()
        && taps <= conv::DIRECT_CONV_MAX_TAPS
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum F32ConvKind {
    /// Depthwise, on the SIMD depthwise kernel (the reference loop took most
    /// of a convnet's time).
    Depthwise,
    /// A small-K conv on the direct kernel.
    Direct,
}

/// A conv node run in f32 by the tiled engine's kernels, from one sample's
/// input in the stride-split, zero-padded layout.
struct F32Conv {
    kind: F32ConvKind,
    geom: ConvGeom,
    layout: SplitLayout,
    offsets: Vec<usize>,
    /// Only the image is written per run; the padding stays zero.
    split: Vec<f32>,
    /// The ReLU node after it, applied in the kernel; the result lands in that node's buffer.
    relu_into: Option<usize>,
    /// A direct conv whose output (after its fused ReLU) only this depthwise
    /// node reads, that node's input layout being the zero-padded image: the
    /// conv writes straight into the depthwise conv's `split` buffer (no
    /// output buffer, no copy into the layout: ~10% of the AVX2 int8
    /// convnet), and both run sample by sample at this node.
    feeds: Option<usize>,
    /// A depthwise conv whose `split` input the direct conv before it writes
    /// (see `feeds`): it runs with that conv, never at its own node.
    fed: bool,
}

impl F32Conv {
    fn new(kind: F32ConvKind, geom: ConvGeom) -> F32Conv {
        let layout = SplitLayout::new(&geom);
        let offsets = match kind {
            F32ConvKind::Depthwise => layout.depthwise_offsets(&geom),
            F32ConvKind::Direct => layout.conv_offsets(&geom),
        };
        F32Conv {
            kind,
            geom,
            layout,
            offsets,
            split: vec![0.0; layout.len()],
            relu_into: None,
            feeds: None,
            fed: false,
        }
    }

    /// One sample: `out [out_c, oh, ow]` from `x [in_c, h, w]`, on up to
    /// `threads` threads through `record` when the work is worth it (as the
    /// tiled engine decides): the direct conv by blocks of output rows (the
    /// tiled engine's own split), the depthwise conv by bands of channels.
    /// Every output is computed alike either way: the same bits.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        simd: SimdLevel,
        x: &[f32],
        weight: &[f32],
        bias: Option<&[f32]>,
        relu: bool,
        out: &mut [f32],
        (threads, record): (usize, &mut ChunkRecord),
    ) -> Result<(), KernelError> {
        self.split_input(simd, x, (threads, record))?;
        let plain = self.plain_placement();
        self.run_on_split(simd, weight, bias, relu, (out, plain), (threads, record))
    }

    /// One sample's input `x` into `split`, by bands of channels over
    /// threads when the conv is worth splitting.
    fn split_input(
        &mut self,
        simd: SimdLevel,
        x: &[f32],
        (threads, record): (usize, &mut ChunkRecord),
    ) -> Result<(), KernelError> {
        let g = self.geom;
        let flops = 2.0 * (g.out_c * g.oh * g.ow * self.offsets.len()) as f64;
        let helpers = crate::gemm::helpers_worth(threads, flops);
        split_in_bands(simd, x, &g, &self.layout, &mut self.split, helpers, record)
    }

    /// The output as plain `[out_c, oh, ow]` planes.
    fn plain_placement(&self) -> OutPlacement {
        let g = &self.geom;
        OutPlacement {
            at: 0,
            channel_step: g.oh * g.ow,
            row_step: g.ow,
        }
    }

    /// One sample from the input already in `split`: `out` gets the
    /// `[out_c, oh, ow]` output placed as `at` says (a depthwise conv writes
    /// plain planes only).
    #[allow(clippy::too_many_arguments)]
    fn run_on_split(
        &self,
        simd: SimdLevel,
        weight: &[f32],
        bias: Option<&[f32]>,
        relu: bool,
        (out, at): (&mut [f32], OutPlacement),
        (threads, record): (usize, &mut ChunkRecord),
    ) -> Result<(), KernelError> {
        let g = self.geom;
        match self.kind {
            F32ConvKind::Depthwise => {
                if at.at != 0 || at.channel_step != g.oh * g.ow || at.row_step != g.ow {
                    return Err(KernelError::Gemm(
                        "quantized: a depthwise conv writes plain planes only".into(),
                    ));
                }
                let (q, lay, offsets) = (&self.split, &self.layout, &self.offsets);
                depthwise_in_bands(
                    simd,
                    (q, lay, offsets),
                    &g,
                    weight,
                    bias,
                    relu,
                    out,
                    (threads, record),
                )
            }
            F32ConvKind::Direct => {
                let conv = conv::DirectConv {
                    q: &self.split,
                    offsets: &self.offsets,
                    row_step: self.layout.row_step(),
                    weight,
                    bias,
                    relu,
                    out_c: g.out_c,
                    oh: g.oh,
                    ow: g.ow,
                    out_at: at.at,
                    out_channel_step: at.channel_step,
                    out_row_step: at.row_step,
                };
                if crate::exec::direct_conv_in_rows(record, simd, &conv, out, threads) {
                    Ok(())
                } else {
                    Err(KernelError::Gemm(format!(
                        "quantized: direct conv {}x{}x{} -> {} did not run",
                        g.in_c, g.h, g.w, g.out_c
                    )))
                }
            }
        }
    }

    /// Where this conv's input goes in its split buffer when the conv before
    /// writes it there: `pad` rows and columns into the zero-padded image.
    fn padded_input_placement(&self) -> OutPlacement {
        let (g, lay) = (&self.geom, &self.layout);
        OutPlacement {
            at: g.pad * lay.row_width() + g.pad,
            channel_step: lay.plane(),
            row_step: lay.row_width(),
        }
    }
}

/// Where a conv writes its `[out_c, oh, ow]` output in a buffer: from `at`,
/// channels `channel_step` apart and rows `row_step` apart.
#[derive(Debug, Clone, Copy)]
struct OutPlacement {
    at: usize,
    channel_step: usize,
    row_step: usize,
}

/// Bands of channels per thread of a depthwise conv, or of a conv's input
/// split into its layout, over threads.
const CHANNEL_BANDS_PER_THREAD: usize = 8;

/// `conv::split_interior` of one sample by bands of channels on up to
/// `helpers` helper threads: each channel's plane is copied alike either way.
fn split_in_bands(
    simd: SimdLevel,
    x: &[f32],
    g: &ConvGeom,
    lay: &SplitLayout,
    split: &mut [f32],
    helpers: usize,
    record: &mut ChunkRecord,
) -> Result<(), KernelError> {
    if helpers == 0 {
        record.prepare();
        conv::split_interior(simd, x, g, lay, split);
        return Ok(());
    }
    let per_band = g
        .in_c
        .div_ceil((helpers + 1) * CHANNEL_BANDS_PER_THREAD)
        .max(1);
    let bands = g.in_c.div_ceil(per_band);
    let (plane_x, plane_q) = (g.h * g.w, lay.plane());
    let short = || KernelError::Gemm("quantized: a conv input band outside its buffers".into());
    let split = pool::SharedOut::new(split);
    pool::try_run_chunks(record, helpers, bands, &|_, band| {
        let channels = band * per_band..((band + 1) * per_band).min(g.in_c);
        let band_geom = ConvGeom {
            in_c: channels.len(),
            ..*g
        };
        let x = x
            .get(channels.start * plane_x..channels.end * plane_x)
            .ok_or_else(short)?;
        // SAFETY: each band runs once and writes only its own channels' planes.
        let q = unsafe { split.slice(channels.start * plane_q..channels.end * plane_q) }
            .ok_or_else(short)?;
        conv::split_interior(simd, x, &band_geom, lay, q);
        Ok(())
    })
}

/// `conv::depthwise` of one sample (its input `q` in `lay`, tap `offsets`),
/// by bands of channels taken in turn by up to `threads` threads when the
/// work is worth it: each channel reads only its own plane, weights and bias
/// and writes only its own output plane, so every band is computed as it is
/// on one thread.
#[allow(clippy::too_many_arguments)]
fn depthwise_in_bands(
    simd: SimdLevel,
    (q, lay, offsets): (&[f32], &SplitLayout, &[usize]),
    g: &ConvGeom,
    weight: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    out: &mut [f32],
    (threads, record): (usize, &mut ChunkRecord),
) -> Result<(), KernelError> {
    let taps = g.kh * g.kw;
    let flops = 2.0 * (g.out_c * g.oh * g.ow * taps) as f64;
    let helpers = crate::gemm::helpers_worth(threads, flops);
    if helpers == 0 {
        record.prepare();
        conv::depthwise(simd, q, lay, offsets, g, weight, bias, relu, out);
        return Ok(());
    }
    let per_band = g
        .out_c
        .div_ceil((helpers + 1) * CHANNEL_BANDS_PER_THREAD)
        .max(1);
    let bands = g.out_c.div_ceil(per_band);
    let (plane_in, plane_out) = (lay.plane(), g.oh * g.ow);
    let short = || KernelError::Gemm("quantized: depthwise band outside its buffers".into());
    let out = pool::SharedOut::new(out);
    pool::try_run_chunks(record, helpers, bands, &|_, band| {
        let channels = band * per_band..((band + 1) * per_band).min(g.out_c);
        let band_geom = ConvGeom {
            in_c: channels.len(),
            out_c: channels.len(),
            ..*g
        };
        let q = q.get(channels.start * plane_in..).ok_or_else(short)?;
        let w = weight
            .get(channels.start * taps..channels.end * taps)
            .ok_or_else(short)?;
        let b = match bias {
            Some(b) => Some(b.get(channels.clone()).ok_or_else(short)?),
            None => None,
        };
        // SAFETY: each band runs once and writes only its own channels' planes.
        let o = unsafe { out.slice(channels.start * plane_out..channels.end * plane_out) }
            .ok_or_else(short)?;
        conv::depthwise(simd, q, lay, offsets, &band_geom, w, b, relu, o);
        Ok(())
    })
}

pub struct QuantizedExecutable {
    graph: Graph,
    /// SIMD level of the f32 kernels the quantized backend borrows.
    simd: SimdLevel,
    /// Convolutions run in f32 (depthwise, and small-K ones: not quantized).
    f32_convs: BTreeMap<usize, F32Conv>,
    /// Blocking and buffers of the f32 GEMMs the quantized backend borrows
    /// (attention's per-head products: activations times activations).
    tile: TileParams,
    ws: GemmWorkspace,
    precision: Precision,
    gemms: BTreeMap<usize, GemmNode>,
    /// Nodes whose work a GEMM epilogue does (fused ReLUs): skipped at run time.
    fused_away: Vec<bool>,
    /// Per node: the node it writes and runs in place after its own work
    /// (`Fusions::in_place`).
    in_place: Vec<Option<usize>>,
    /// Per node, the node whose buffer it writes (`destination`).
    writes: Vec<Option<usize>>,
    /// Per node, whether its buffer holds a value some node reads or writes.
    held: Vec<bool>,
    /// Runs of nodes (index ranges) that a batch goes through one sample at
    /// a time (`sample_major_runs`).
    sample_major: Vec<Range<usize>>,
    /// Per node: whether its buffer is written and read only inside one
    /// sample-major run, so holds one sample.
    sample_local: Vec<bool>,
    /// The nodes' buffers, in slots by liveness (`plan_buffers`).
    buffers: SlotBuffers,
    /// Per node: the requantized u8 input of a chained int8 GEMM (empty otherwise).
    u8_inputs: Vec<Vec<u8>>,
    batch: usize,
    int8_path: Int8Path,
    half_path: HalfPath,
    scratch: Scratch,
    /// The GEMMs' record of their last split over threads (reused).
    chunks: ChunkRecord,
    /// Per thread: the buffers of a conv GEMM's bands.
    bands: Vec<BandScratch>,
    /// Per band of a pooled conv GEMM: its column sums (`n` each).
    band_sums: Vec<f32>,
    /// How runs went with and without waking a helper thread
    /// (`pool::begin_run`).
    run_history: pool::RunHistory,
}

/// Floats node `i`'s buffer holds at `batch`: a constant's one copy, a
/// one-sample buffer's (`local[i]`) one sample, any other's `batch` samples.
fn node_len(nodes: &[crate::graph::Node], local: &[bool], i: usize, batch: usize) -> usize {
    if matches!(nodes[i].op, Op::Constant(_)) || local.get(i).copied().unwrap_or(false) {
        nodes[i].numel()
    } else {
        nodes[i].numel() * batch
    }
}

/// Whether `op` works sample by sample with all of its work inside the
/// sample (a conv's GEMM has a sample's pixels as rows), so a batch can go
/// through it one sample at a time at no cost. Not a dense layer, whose GEMM
/// takes the batch as its rows, nor attention, whose samples are large.
fn works_per_sample(op: &Op) -> bool {
    matches!(
        op,
        Op::Conv2d { .. }
            | Op::PointwiseConv { .. }
            | Op::DepthwiseConv2d { .. }
            | Op::Activation(_)
            | Op::GlobalAvgPool
            | Op::Add
    )
}

/// A GEMM's threads per `tile` (its `threads`, its A-block budget), through
/// `record`; `None` on one thread.
fn gemm_threads<'r>(tile: &TileParams, record: &'r mut ChunkRecord) -> Option<GemmThreads<'r>> {
    (tile.threads > 1).then(|| GemmThreads {
        threads: tile.threads,
        a_block_bytes: tile.mc * tile.kc * std::mem::size_of::<f32>(),
        record,
    })
}

/// `rows x k` f32 rows -> quantized u8 rows of stride `k_padded(k)`.
/// On `threads` (when given and the GEMM's `flops` are worth splitting, the
/// GEMM's own decision) the rows are split into blocks; each row is quantized
/// by one call either way, so the bytes are the same.
fn quantize_rows(
    x: &[f32],
    (rows, k): (usize, usize),
    act: ActivationQuant,
    dst: &mut Vec<u8>,
    threads: Option<GemmThreads<'_>>,
    flops: f64,
) {
    let lda = k_padded(k);
    dst.resize(rows * lda, act.zero_point);
    let quantize = |x: &[f32], dst: &mut [u8]| {
        for (src, d) in x.chunks_exact(k).zip(dst.chunks_exact_mut(lda)) {
            act.quantize_slice(src, &mut d[..k]);
        }
    };
    let helpers = threads
        .as_ref()
        .map_or(0, |t| crate::gemm::helpers_worth(t.threads, flops));
    let t = match threads {
        Some(t) if helpers > 0 => t,
        serial => {
            if let Some(t) = serial {
                t.record.prepare();
            }
            quantize(&x[..rows * k], &mut dst[..rows * lda]);
            return;
        }
    };
    let per_block = rows
        .div_ceil((helpers + 1) * crate::gemm::CHUNKS_PER_THREAD)
        .max(1);
    let out = pool::SharedOut::new(&mut dst[..rows * lda]);
    pool::run_chunks(t.record, helpers, rows.div_ceil(per_block), &|_, block| {
        let r = block * per_block..((block + 1) * per_block).min(rows);
        // SAFETY: each block runs once and owns its rows of `dst`.
        if let Some(d) = unsafe { out.slice(r.start * lda..r.end * lda) } {
            quantize(&x[r.start * k..r.end * k], d);
        }
    });
}

/// The int8 patch rows of pixels `pixels` of a pointwise conv's input `x`
/// (`k` channels of `hw` pixels): row `p - pixels.start` of `dst` (stride
/// `k_padded(k)`) holds pixel p's channels quantized by `act`, the bytes
/// `quantize_rows` makes of the transposed pixels (quantization is per
/// element). Each channel's pixels are quantized in place into `q_t`, then
/// the bytes transposed. `None` if `x` is too short.
fn pointwise_patch_rows_u8(
    x: &[f32],
    hw: usize,
    pixels: Range<usize>,
    k: usize,
    act: ActivationQuant,
    q_t: &mut Vec<u8>,
    dst: &mut Vec<u8>,
) -> Option<()> {
    let len = pixels.len();
    let lda = k_padded(k);
    q_t.resize(k * len, 0);
    dst.resize(len * lda, act.zero_point);
    if len == 0 {
        return Some(());
    }
    for (c, row) in q_t.chunks_exact_mut(len).enumerate() {
        let src = x.get(c * hw + pixels.start..c * hw + pixels.end)?;
        act.quantize_slice(src, row);
    }
    transpose_u8(q_t, (k, len), dst, lda)
}

/// `dst[c * ldd + r] = src[r * cols + c]` for the `rows x cols` bytes of
/// `src` (8 x 8 blocks in SSE2 registers on x86-64, the edges one by one);
/// the rest of each `dst` row is left alone. `None` if a buffer is too short.
fn transpose_u8(
    src: &[u8],
    (rows, cols): (usize, usize),
    dst: &mut [u8],
    ldd: usize,
) -> Option<()> {
    if rows == 0 || cols == 0 {
        return Some(());
    }
    if ldd < rows || src.len() < rows * cols || dst.len() < (cols - 1) * ldd + rows {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    let (rows8, cols8) = (rows / 8 * 8, cols / 8 * 8);
    #[cfg(not(target_arch = "x86_64"))]
    let (rows8, cols8) = (0, 0);
    #[cfg(target_arch = "x86_64")]
    for r0 in (0..rows8).step_by(8) {
        for c0 in (0..cols8).step_by(8) {
            // SAFETY: r0 + 8 <= rows and c0 + 8 <= cols: the eight 8-byte
            // reads (rows r0.., columns c0..c0 + 8) are inside `src` (checked
            // rows * cols long); the eight 8-byte writes (rows c0.., columns
            // r0..r0 + 8 <= rows <= ldd) inside `dst` (checked above).
            unsafe {
                transpose8x8_u8(
                    src.as_ptr().add(r0 * cols + c0),
                    cols,
                    dst.as_mut_ptr().add(c0 * ldd + r0),
                    ldd,
                );
            }
        }
    }
    for r in 0..rows {
        let from = if r < rows8 { cols8 } else { 0 };
        for c in from..cols {
            dst[c * ldd + r] = src[r * cols + c];
        }
    }
    Some(())
}

/// One 8 x 8 byte block: `dst[j * ldd + i] = src[i * lds + j]`, by three
/// rounds of unpacks (bytes, words, dwords); SSE2, part of every x86-64.
///
/// # Safety
/// `src + i * lds` is readable and `dst + j * ldd` writable for 8 bytes, for
/// every i, j < 8.
#[cfg(target_arch = "x86_64")]
#[inline]
unsafe fn transpose8x8_u8(src: *const u8, lds: usize, dst: *mut u8, ldd: usize) {
    use std::arch::x86_64::*;
    // SAFETY: every read and write is one of the caller's 8-byte rows.
    unsafe {
        let row = |i: usize| _mm_loadl_epi64(src.add(i * lds) as *const __m128i);
        // Channel pairs per pixel, then quads, then all eight: `v[j]` holds
        // pixels 2j (low half) and 2j + 1 (high half).
        let t0 = _mm_unpacklo_epi8(row(0), row(1));
        let t1 = _mm_unpacklo_epi8(row(2), row(3));
        let t2 = _mm_unpacklo_epi8(row(4), row(5));
        let t3 = _mm_unpacklo_epi8(row(6), row(7));
        let (u0, u1) = (_mm_unpacklo_epi16(t0, t1), _mm_unpackhi_epi16(t0, t1));
        let (u2, u3) = (_mm_unpacklo_epi16(t2, t3), _mm_unpackhi_epi16(t2, t3));
        let v = [
            _mm_unpacklo_epi32(u0, u2),
            _mm_unpackhi_epi32(u0, u2),
            _mm_unpacklo_epi32(u1, u3),
            _mm_unpackhi_epi32(u1, u3),
        ];
        for (j, vj) in v.into_iter().enumerate() {
            _mm_storel_epi64(dst.add(2 * j * ldd) as *mut __m128i, vj);
            let high = _mm_unpackhi_epi64(vj, vj);
            _mm_storel_epi64(dst.add((2 * j + 1) * ldd) as *mut __m128i, high);
        }
    }
}

/// Patch-major im2col of output pixels `pixels` of one sample: row `p -
/// pixels.start` of `cols` = output pixel p (row-major over oh x ow),
/// column = (ic, ky, kx).
fn im2col_patches(x: &[f32], g: &ConvGeom, pixels: Range<usize>, cols: &mut [f32]) {
    let kk = g.in_c * g.kh * g.kw;
    // Output columns whose every tap is inside the image: ox * stride - pad >= 0
    // and ox * stride - pad + kw - 1 < w. Their patches are gathered without
    // bounds checks per tap; the border columns take the checked path.
    let first = g.pad.div_ceil(g.stride.max(1)).min(g.ow);
    let last = (g.w + g.pad)
        .checked_sub(g.kw)
        .map_or(0, |span| span / g.stride.max(1) + 1)
        .clamp(first, g.ow);
    for (p, row) in pixels.zip(cols.chunks_exact_mut(kk)) {
        let (oy, ox) = (p / g.ow.max(1), p % g.ow.max(1));
        if (first..last).contains(&ox) {
            let ix0 = ox * g.stride - g.pad;
            let mut q = 0;
            for ic in 0..g.in_c {
                for ky in 0..g.kh {
                    match g.src(oy, ky, g.h) {
                        Some(iy) => {
                            let src = &x[(ic * g.h + iy) * g.w + ix0..][..g.kw];
                            let dst = &mut row[q..q + g.kw];
                            // Unrolled for 3x3 kernels: a few floats per call to
                            // memmove, or a loop set up per row of taps, cost
                            // more than the copy itself.
                            if let ([d0, d1, d2], [s0, s1, s2]) = (dst, src) {
                                (*d0, *d1, *d2) = (*s0, *s1, *s2);
                            } else {
                                for (d, &v) in row[q..q + g.kw].iter_mut().zip(src) {
                                    *d = v;
                                }
                            }
                        }
                        None => row[q..q + g.kw].fill(0.0),
                    }
                    q += g.kw;
                }
            }
            continue;
        }
        let mut q = 0;
        for ic in 0..g.in_c {
            for ky in 0..g.kh {
                let iy = g.src(oy, ky, g.h);
                for kx in 0..g.kw {
                    row[q] = match (iy, g.src(ox, kx, g.w)) {
                        (Some(iy), Some(ix)) => x[(ic * g.h + iy) * g.w + ix],
                        _ => 0.0,
                    };
                    q += 1;
                }
            }
        }
    }
}

impl GemmNode {
    /// `out[rows x n] = a[rows x k] . B + bias` through this node's kernel,
    /// split over `threads` when given (and the work is worth it).
    fn run(
        &self,
        a: GemmIn<'_>,
        rows: usize,
        out: GemmOut<'_>,
        a_u8: &mut Vec<u8>,
        half_path: HalfPath,
        mut threads: Option<GemmThreads<'_>>,
    ) -> Result<(), KernelError> {
        let mismatch = || KernelError::Gemm("quantized: GEMM operand kinds disagree".into());
        match &self.weights {
            GemmWeights::Half(w) => {
                let (GemmIn::F32(a), GemmOut::F32 { out, relu }) = (a, out) else {
                    return Err(mismatch());
                };
                w.gemm_fused_on(
                    half_path,
                    a,
                    self.k,
                    rows,
                    self.bias.as_deref(),
                    relu,
                    out,
                    self.n,
                    threads,
                )
                .map_err(qerr)
            }
            GemmWeights::Int8 {
                packed,
                scales,
                act,
            } => {
                let lda = k_padded(self.k);
                let a: &[u8] = match a {
                    GemmIn::U8(q) => q,
                    GemmIn::F32(x) => {
                        let flops = 2.0 * (rows * self.k * self.n) as f64;
                        let quantize_threads = threads.as_mut().map(GemmThreads::reborrow);
                        quantize_rows(x, (rows, self.k), *act, a_u8, quantize_threads, flops);
                        a_u8
                    }
                };
                let mut ep = Int8Epilogue {
                    act: *act,
                    weight_scales: scales,
                    bias: self.bias.as_deref(),
                    relu: false,
                };
                match out {
                    GemmOut::F32 { out, relu } => {
                        ep.relu = relu;
                        gemm_u8s8_f32_on(a, lda, rows, packed, ep, out, self.n, threads)
                    }
                    GemmOut::U8 { out, quant } => {
                        ep.relu = self.relu_into.is_some();
                        let ldo = k_padded(self.n);
                        gemm_u8s8_u8_on(a, lda, rows, packed, ep, quant, out, ldo, threads)
                    }
                }
                .map_err(qerr)
            }
        }
    }
}

impl QuantizedExecutable {
    /// Wires the planned fusions into the compiled GEMMs and f32 convolutions.
    fn apply(&mut self, fusions: Fusions) {
        for (&i, g) in self.gemms.iter_mut() {
            g.relu_into = fusions.relu_into[i];
            g.pool_into = fusions.pool_into[i];
        }
        for (i, next) in fusions.chain_to.iter().enumerate() {
            let Some(l) = *next else { continue };
            let act = match self.gemms.get_mut(&l) {
                Some(g) => match g.weights {
                    GemmWeights::Int8 { act, .. } => {
                        g.input_u8 = true;
                        act
                    }
                    GemmWeights::Half(_) => continue,
                },
                None => continue,
            };
            if let Some(g) = self.gemms.get_mut(&i) {
                g.chain_to = Some((l, act));
            }
        }
        for (&i, plan) in self.f32_convs.iter_mut() {
            plan.relu_into = fusions.relu_into[i];
        }
        self.in_place = fusions.in_place;
        self.fused_away = fusions.fused_away;
        let convs = self
            .f32_convs
            .iter()
            .map(|(&i, plan)| (i, (plan.kind, plan.geom)))
            .collect();
        for (i, next) in direct_conv_feeds(&self.graph, &convs, &fusions.relu_into) {
            if let Some(plan) = self.f32_convs.get_mut(&i) {
                plan.feeds = Some(next);
            }
            if let Some(dw) = self.f32_convs.get_mut(&next) {
                dw.fed = true;
            }
        }
    }

    /// How node `i` splits over threads when given more than one: a dense
    /// GEMM once per call, a conv's GEMM or f32 kernel once per sample; `None`
    /// for the kernels that run on one thread.
    fn split_of(&self, i: usize) -> Option<&'static str> {
        match (self.gemms.get(&i), self.f32_convs.contains_key(&i)) {
            (Some(_), _) if matches!(self.graph.nodes[i].op, Op::Dense { .. }) => Some("per call"),
            (Some(_), _) | (None, true) => Some("per sample"),
            (None, false) => None,
        }
    }

    /// Sizes the buffers for `batch`, within their allocations when a larger
    /// batch ran before (every op writes all of its output, and a quantized
    /// row's padding bytes sit at the same place whatever the batch).
    fn prepare(&mut self, batch: usize) {
        if self.batch == batch && self.buffers.is_allocated() {
            return;
        }
        let nodes = &self.graph.nodes;
        let u8_len = |i: usize| match self.gemms.get(&i) {
            Some(g) if g.input_u8 => {
                let first = nodes[i].inputs.first().copied().unwrap_or(0);
                batch * nodes[first].numel() / g.k.max(1) * k_padded(g.k)
            }
            _ => 0,
        };
        let u8_fits = self.u8_inputs.len() == nodes.len()
            && (0..nodes.len()).all(|i| self.u8_inputs[i].capacity() >= u8_len(i));
        let (held, output, local) = (&self.held, self.graph.output, &self.sample_local);
        // Node 0, the input, is read from the caller: it only needs memory
        // when it is also the output.
        let len = |i: usize| {
            let needed =
                matches!(nodes[i].op, Op::Constant(_)) || i == output || (held[i] && i > 0);
            if needed {
                node_len(nodes, local, i, batch)
            } else {
                0
            }
        };
        let constant = |i: usize| match &nodes[i].op {
            Op::Constant(t) => Some(&t.data[..]),
            _ => None,
        };
        if self.buffers.size(len, constant, u8_fits) {
            self.u8_inputs = (0..nodes.len()).map(|i| vec![0u8; u8_len(i)]).collect();
        } else {
            for (i, u8s) in self.u8_inputs.iter_mut().enumerate() {
                u8s.resize(u8_len(i), 0);
            }
        }
        self.batch = batch;
    }

    /// The node whose buffer running node `i` writes: its own, or that of
    /// the last node fused into it (a ReLU, a pool, a depthwise conv fed
    /// straight from it); `None` when it is skipped (a constant, fused into
    /// the node before) or writes only a u8 input of the next GEMM.
    fn destination(&self, i: usize) -> Option<usize> {
        if !self.runs(i) {
            return None;
        }
        let node = &self.graph.nodes[i];
        if let Some(next) = self.in_place.get(i).copied().flatten() {
            return Some(next);
        }
        if let Some(plan) = self.f32_convs.get(&i) {
            return match plan.feeds {
                Some(next) => Some(self.f32_convs.get(&next)?.relu_into.unwrap_or(next)),
                None => Some(plan.relu_into.unwrap_or(i)),
            };
        }
        match self.gemms.get(&i) {
            Some(g) if matches!(node.op, Op::Dense { .. }) && g.chain_to.is_some() => None,
            Some(g) => Some(g.pool_into.or(g.relu_into).unwrap_or(i)),
            None => Some(i),
        }
    }

    /// Whether node `i` runs: not the input, a constant, a node fused into
    /// the one before (a ReLU, a pool), or a depthwise conv fed by the conv
    /// before it (which runs it, writing its input).
    fn runs(&self, i: usize) -> bool {
        i > 0
            && !matches!(self.graph.nodes[i].op, Op::Constant(_))
            && !self.fused_away[i]
            && !self.f32_convs.get(&i).is_some_and(|p| p.fed)
    }

    /// Runs of two or more running nodes that each work per sample
    /// (`works_per_sample`; nodes that do not run may sit between them), as
    /// node ranges: a batch goes through one a sample at a time, so each
    /// sample's activations stay in cache from node to node instead of the
    /// whole batch's going out to memory between nodes.
    fn sample_major_runs(&self) -> Vec<Range<usize>> {
        let nodes = &self.graph.nodes;
        let mut runs = Vec::new();
        // The current run's first and last running node, and how many run.
        let mut current: Option<(usize, usize, usize)> = None;
        for i in 1..=nodes.len() {
            let running = i < nodes.len() && self.runs(i);
            if running && works_per_sample(&nodes[i].op) {
                let (first, _, count) = current.unwrap_or((i, i, 0));
                current = Some((first, i, count + 1));
            } else if running || i == nodes.len() {
                if let Some((first, last, count)) = current.take() {
                    if count >= 2 {
                        runs.push(first..last + 1);
                    }
                }
            }
        }
        runs
    }

    /// Which buffer each node writes, which buffers hold values, and slots by
    /// liveness (`liveness::plan`): nodes run in order, so a buffer is live
    /// from the node writing it to the last node reading it (the output to
    /// the end). Constants and the caller's input keep slots of their own;
    /// buffers nobody writes (a conv's, when its ReLU writes for it) get no
    /// memory. Called again after fusion changes what runs, then with
    /// `per_sample` (calibration runs the batch node by node): runs of
    /// per-sample nodes go sample by sample (`sample_major_runs`), a buffer
    /// living inside one holding one sample, any other buffer the run touches
    /// live over all of it (every sample passes through every step).
    fn plan_buffers(&mut self, per_sample: bool) {
        let n = self.graph.nodes.len();
        self.writes = (0..n).map(|i| self.destination(i)).collect();
        self.sample_major = if per_sample {
            self.sample_major_runs()
        } else {
            Vec::new()
        };
        let mut live: Vec<Option<(usize, usize)>> = vec![None; n];
        let mut touch = |b: usize, t: usize| {
            if let Some(l) = live.get_mut(b) {
                *l = Some(l.map_or((t, t), |(f, e)| (f.min(t), e.max(t))));
            }
        };
        for (i, node) in self.graph.nodes.iter().enumerate() {
            if !self.runs(i) {
                continue;
            }
            for &j in &node.inputs {
                touch(j, i);
            }
            if let Some(d) = self.writes[i] {
                touch(d, i);
            }
        }
        self.held = live.iter().map(Option::is_some).collect();
        let output = self.graph.output;
        let nodes = &self.graph.nodes;
        self.sample_local = (0..n)
            .map(|i| {
                let inside = |(first, last): (usize, usize)| {
                    (self.sample_major.iter()).any(|r| r.contains(&first) && r.contains(&last))
                };
                i > 0
                    && i != output
                    && !matches!(nodes[i].op, Op::Constant(_))
                    && live[i].is_some_and(inside)
            })
            .collect();
        for (i, span) in live.iter_mut().enumerate() {
            let Some((first, last)) = span.as_mut() else {
                continue;
            };
            if self.sample_local[i] {
                continue;
            }
            for run in &self.sample_major {
                if *first < run.end && *last >= run.start {
                    *first = (*first).min(run.start);
                    *last = (*last).max(run.end - 1);
                }
            }
        }
        let placements: Vec<Placement> = (0..n)
            .map(|i| match live[i] {
                Some((first, last))
                    if i > 0 && !matches!(self.graph.nodes[i].op, Op::Constant(_)) =>
                {
                    Placement::Shared {
                        first,
                        last: if i == output { n } else { last },
                        size: nodes[i].numel(),
                    }
                }
                _ => Placement::Own,
            })
            .collect();
        self.buffers = SlotBuffers::new(liveness::plan(&placements));
        self.batch = 0;
    }

    /// Runs every node; GEMM nodes without a compiled kernel run in f32 and,
    /// when `observe` is given, their inputs are recorded for calibration.
    fn run_nodes(
        &mut self,
        input: &[f32],
        batch: usize,
        mut observe: Option<&mut BTreeMap<usize, Calibrator>>,
    ) -> Result<(), KernelError> {
        check_input(input, batch, self.graph.input_len())?;
        self.prepare(batch);
        // Node 0's buffer is the caller's input, read in place: copying it in
        // cost ~1% of the int8 mlp-1024 at batch 64. Only a graph whose output
        // is its input needs it copied.
        if self.graph.output == 0 {
            self.buffers.slot_mut(0)[..input.len()].copy_from_slice(input);
        }
        let n = self.graph.nodes.len();
        let mut i = 1;
        while i < n {
            let run = (self.sample_major.iter().find(|r| r.start == i))
                .filter(|_| batch > 1 && observe.is_none())
                .cloned();
            if let Some(run) = run {
                for s in 0..batch {
                    for j in run.clone() {
                        if self.runs(j) {
                            self.run_writing(j, input, (batch, Some(s)), None)?;
                        }
                    }
                }
                i = run.end;
            } else {
                if self.runs(i) {
                    self.run_writing(i, input, (batch, None), observe.as_deref_mut())?;
                }
                i += 1;
            }
        }
        Ok(())
    }

    /// Node `i` with the slot it writes taken out, so that its inputs can be
    /// read alongside (no input shares it: they are live at once): all of the
    /// batch, or only `sample` of it.
    fn run_writing(
        &mut self,
        i: usize,
        input: &[f32],
        (batch, sample): (usize, Option<usize>),
        observe: Option<&mut BTreeMap<usize, Calibrator>>,
    ) -> Result<(), KernelError> {
        let dst = self.writes[i];
        let mut taken = dst.map(|d| self.buffers.take(d));
        let range = dst.map_or(0..0, |d| {
            let len = self.graph.nodes[d].numel();
            match sample {
                Some(_) if self.sample_local[d] => 0..len,
                Some(s) => s * len..(s + 1) * len,
                None => 0..node_len(&self.graph.nodes, &self.sample_local, d, batch),
            }
        });
        let out = match &mut taken {
            Some((_, buf)) => buf.get_mut(range),
            None => Some(&mut [][..]),
        };
        let result = match out {
            Some(out) => self.run_node(i, input, (batch, sample), observe, out),
            None => Err(KernelError::Gemm(format!(
                "quantized: node {i}'s slot is shorter than its output"
            ))),
        };
        if let Some(taken) = taken {
            self.buffers.put_back(taken);
        }
        result
    }

    /// Node `i`, one that `runs` (with the nodes fused into it), writing
    /// `out`: the buffer of node `self.writes[i]`, at `batch`; with `sample`,
    /// that sample alone (its inputs' and `out`'s share of the batch).
    fn run_node(
        &mut self,
        i: usize,
        input: &[f32],
        (batch, sample): (usize, Option<usize>),
        observe: Option<&mut BTreeMap<usize, Calibrator>>,
        out: &mut [f32],
    ) -> Result<(), KernelError> {
        let nodes = &self.graph.nodes;
        let node = &nodes[i];
        let (buffers, local) = (&self.buffers, &self.sample_local);
        let buffer = |j: usize| -> &[f32] {
            let whole = if j == 0 {
                input
            } else {
                buffers.buffer(j, node_len(nodes, local, j, batch))
            };
            let one_copy = local[j] || matches!(nodes[j].op, Op::Constant(_));
            match sample {
                Some(s) if !one_copy => {
                    let len = nodes[j].numel();
                    whole.get(s * len..(s + 1) * len).unwrap_or_default()
                }
                _ => whole,
            }
        };
        // From here on, the samples this call runs.
        let batch = if sample.is_some() { 1 } else { batch };
        let out_len = node.numel();
        let (in_len, in_const) = self.graph.input_sizes(i);
        let first = node.inputs.first().copied().unwrap_or(0);
        let in_shape = &nodes[first].shape;
        if let Some(obs) = observe.and_then(|o| o.get_mut(&i)) {
            obs.observe(&buffer(first)[..in_len[0] * batch]);
        }
        if let Some(plan) = self.f32_convs.get(&i) {
            let Some((weight, bias)) = conv_params(&node.op) else {
                return Ok(());
            };
            if let Some(next) = plan.feeds {
                let (next_weight, next_bias) = conv_params(&nodes[next].op)
                    .ok_or_else(|| KernelError::Gemm("quantized: fed node is no conv".into()))?;
                let relu = plan.relu_into.is_some();
                let mut pair = self.f32_convs.range_mut(i..=next);
                let (Some((_, producer)), Some((_, dw))) = (pair.next(), pair.next_back()) else {
                    return Err(KernelError::Gemm("quantized: fed conv missing".into()));
                };
                let dw_relu = dw.relu_into.is_some();
                let dw_len = nodes[next].numel();
                let place = dw.padded_input_placement();
                let plain = dw.plain_placement();
                let (simd, threads) = (self.simd, self.tile.threads);
                for s in 0..batch {
                    let x = &buffer(first)[s * in_len[0]..(s + 1) * in_len[0]];
                    producer.split_input(simd, x, (threads, &mut self.chunks))?;
                    let into = (&mut dw.split[..], place);
                    let split = (threads, &mut self.chunks);
                    producer.run_on_split(simd, weight, bias, relu, into, split)?;
                    let out = &mut out[s * dw_len..(s + 1) * dw_len];
                    let split = (threads, &mut self.chunks);
                    dw.run_on_split(simd, next_weight, next_bias, dw_relu, (out, plain), split)?;
                }
                return Ok(());
            }
            let Some(plan) = self.f32_convs.get_mut(&i) else {
                return Ok(());
            };
            // With a ReLU fused, `out` is the ReLU's buffer.
            let (dst, relu) = (&mut *out, plan.relu_into.is_some());
            for s in 0..batch {
                let x = &buffer(first)[s * in_len[0]..(s + 1) * in_len[0]];
                let out = &mut dst[s * out_len..(s + 1) * out_len];
                let threads = (self.tile.threads, &mut self.chunks);
                plan.run(self.simd, x, weight, bias, relu, out, threads)?;
            }
            return Ok(());
        }
        if let Some(g) = self.gemms.get(&i) {
            match &node.op {
                Op::Dense { .. } => {
                    let rows = batch * in_len[0] / g.k;
                    let (cur_u8, later_u8) = self.u8_inputs[i..].split_at_mut(1);
                    let a = if g.input_u8 {
                        GemmIn::U8(&cur_u8[0])
                    } else {
                        GemmIn::F32(buffer(first))
                    };
                    let gemm_out = match g.chain_to {
                        Some((l, quant)) => GemmOut::U8 {
                            out: &mut later_u8[l - i - 1],
                            quant,
                        },
                        None => GemmOut::F32 {
                            out: &mut *out,
                            relu: g.relu_into.is_some(),
                        },
                    };
                    let threads = gemm_threads(&self.tile, &mut self.chunks);
                    let written = rows * g.n;
                    g.run(
                        a,
                        rows,
                        gemm_out,
                        &mut self.scratch.a_u8,
                        self.half_path,
                        threads,
                    )?;
                    if let Some(next) = self.in_place.get(i).copied().flatten() {
                        let dst = out.get_mut(..written).ok_or_else(|| {
                            KernelError::Gemm(format!(
                                "quantized: {}'s buffer holds fewer than the {written} values its GEMM wrote",
                                node.name
                            ))
                        })?;
                        run_in_place(&nodes[next], dst);
                    }
                }
                Op::Conv2d { .. } | Op::PointwiseConv { .. } => {
                    // Patch rows [hw, k] per sample: im2col for a conv, a
                    // transpose of [ic, hw] for a pointwise conv.
                    let geom = patch_geometry(&node.op, in_shape, &node.shape);
                    let hw = geom.map_or(in_len[0] / g.k, |geom| geom.oh * geom.ow);
                    // A ReLU (and a pool) after the conv runs in the GEMM's
                    // epilogue: `out` is then the last fused node's buffer.
                    let (relu, pooled) = (g.relu_into.is_some(), g.pool_into.is_some());
                    for s in 0..batch {
                        let x = &buffer(first)[s * in_len[0]..(s + 1) * in_len[0]];
                        let offset = if pooled { s * g.n } else { s * out_len };
                        let conv = ConvGemm {
                            simd: self.simd,
                            half_path: self.half_path,
                            g,
                            geom: geom.as_ref(),
                            hw,
                        };
                        let dst = ConvOut {
                            out: &mut *out,
                            offset,
                            relu,
                            pooled,
                        };
                        let threads = (self.tile.threads, &mut self.chunks);
                        conv.run(x, dst, &mut self.bands, &mut self.band_sums, threads)?;
                    }
                }
                _ => {}
            }
            return Ok(());
        }
        // Attention, softmax and layer norm on the tiled engine's kernels
        // (f32: none of them has weights to quantize).
        let dims = |q: &[usize]| (q[0], q[1]);
        match &node.op {
            Op::AttentionScores { heads } => {
                let (seq, d) = dims(in_shape);
                let view = RowView { offset: 0, ld: d };
                let (qa, ka) = (node.inputs[0], node.inputs[1]);
                for s in 0..batch {
                    let q = &buffer(qa)[s * in_len[0]..(s + 1) * in_len[0]];
                    let k = &buffer(ka)[s * in_len[1]..(s + 1) * in_len[1]];
                    let out = &mut out[s * out_len..(s + 1) * out_len];
                    crate::exec::attention_scores(
                        &mut self.ws,
                        (self.simd, &self.tile),
                        (q, view),
                        (k, view),
                        (seq, d, *heads),
                        out,
                    )?;
                    // The softmax's rows, this sample's scores still in cache.
                    if let Some(next) = self.in_place.get(i).copied().flatten() {
                        run_in_place(&nodes[next], out);
                    }
                }
                return Ok(());
            }
            Op::AttentionContext { heads } => {
                let (seq, d) = dims(&node.shape);
                let view = RowView { offset: 0, ld: d };
                let (pa, va) = (node.inputs[0], node.inputs[1]);
                for s in 0..batch {
                    let p = &buffer(pa)[s * in_len[0]..(s + 1) * in_len[0]];
                    let v = &buffer(va)[s * in_len[1]..(s + 1) * in_len[1]];
                    let out = &mut out[s * out_len..(s + 1) * out_len];
                    crate::exec::attention_context(
                        &mut self.ws,
                        (self.simd, &self.tile),
                        p,
                        (v, view),
                        (seq, d, *heads),
                        out,
                    )?;
                }
                return Ok(());
            }
            Op::Softmax => {
                let n = out_len * batch;
                let d = node.shape[node.shape.len() - 1];
                crate::rowops::softmax(&buffer(first)[..n], d, &mut out[..n]);
                return Ok(());
            }
            Op::LayerNorm { gamma, beta, eps } => {
                let n = out_len * batch;
                crate::rowops::layer_norm(
                    &buffer(first)[..n],
                    &gamma.data,
                    &beta.data,
                    *eps,
                    &mut out[..n],
                );
                return Ok(());
            }
            _ => {}
        }
        // A dense layer without its GEMM yet (calibration): the reference sums, streamed.
        if let Op::Dense { weight, bias } = &node.op {
            let (k, n) = (weight.shape[0], weight.shape[1]);
            let b = bias.as_ref().map(|b| &b.data[..]);
            let x = buffer(first);
            dense_f32(
                x,
                batch * in_len[0] / k.max(1),
                k,
                n,
                &weight.data,
                b,
                &mut *out,
            );
            return Ok(());
        }
        // A conv or pointwise conv without its GEMM yet (calibration): the
        // reference sums as patch rows times the weights, streamed.
        if let (Op::Conv2d { .. } | Op::PointwiseConv { .. }, Some((wt, k, n, bias))) =
            (&node.op, gemm_weights(&node.op))
        {
            let geom = patch_geometry(&node.op, in_shape, &node.shape);
            let hw = out_len / n.max(1);
            let scratch = self
                .bands
                .first_mut()
                .ok_or_else(|| KernelError::Gemm("quantized: no scratch for calibration".into()))?;
            for s in 0..batch {
                let x = &buffer(first)[s * in_len[0]..(s + 1) * in_len[0]];
                let out = &mut out[s * out_len..(s + 1) * out_len];
                let shape = (k, n, hw);
                conv_f32_streamed(
                    x,
                    geom.as_ref(),
                    shape,
                    (&wt, bias.as_deref()),
                    scratch,
                    out,
                );
            }
            return Ok(());
        }
        // A residual add: one vectorised pass over the batch.
        if matches!(node.op, Op::Add) && in_const == [false, false] && in_len == [out_len, out_len]
        {
            let n = out_len * batch;
            let (a, b) = (buffer(node.inputs[0]), buffer(node.inputs[1]));
            crate::rowops::add(&a[..n], &b[..n], &mut out[..n]);
            return Ok(());
        }
        if let Op::Activation(a) = node.op {
            // The compiled backends' vectorised activations (the reference
            // loop calls the library's tanh / exp per element).
            let n = out_len * batch;
            crate::act::apply_into(a, &buffer(first)[..n], &mut out[..n]);
            return Ok(());
        }
        for s in 0..batch {
            let x = |slot: usize| {
                let len = in_len[slot];
                let buf = buffer(node.inputs[slot]);
                if in_const[slot] {
                    &buf[..len]
                } else {
                    &buf[s * len..(s + 1) * len]
                }
            };
            let out = &mut out[s * out_len..(s + 1) * out_len];
            reference_op(&node.op, in_shape, &node.shape, &in_len, x, out);
        }
        Ok(())
    }
}

/// One sample of a conv (`geom`) or pointwise conv (`None`) in f32, before
/// its GEMM is compiled (calibration): `out [n x hw]` from `x`, by bands of
/// output pixels, their patch rows (im2col, or the input's channels gathered)
/// times the weights `wt [k x n]` by `dense_f32`. Each output is the reference
/// kernel's sum in its order (the bias, then the taps; a tap outside the
/// image adds a zero), so calibration observes the reference's values (up to
/// the sign of a zero) many times faster than its loop over taps.
fn conv_f32_streamed(
    x: &[f32],
    geom: Option<&ConvGeom>,
    (k, n, hw): (usize, usize, usize),
    (wt, bias): (&[f32], Option<&[f32]>),
    scratch: &mut BandScratch,
    out: &mut [f32],
) {
    let band = band_pixels(k, n, hw);
    let mut start = 0;
    while start < hw {
        let pixels = start..(start + band).min(hw);
        let rows = pixels.len();
        scratch.cols.resize(rows * k, 0.0);
        let cols = &mut scratch.cols[..rows * k];
        match geom {
            Some(g) => im2col_patches(x, g, pixels.clone(), cols),
            None => {
                for (row, p) in cols.chunks_exact_mut(k.max(1)).zip(pixels.clone()) {
                    for (c, v) in row.iter_mut().enumerate() {
                        *v = x[c * hw + p];
                    }
                }
            }
        }
        scratch.t.resize(rows * n, 0.0);
        let t = &mut scratch.t[..rows * n];
        dense_f32(cols, rows, k, n, wt, bias, t);
        for (row, p) in t.chunks_exact(n.max(1)).zip(pixels.clone()) {
            for (c, &v) in row.iter().enumerate() {
                out[c * hw + p] = v;
            }
        }
        start = pixels.end;
    }
}

/// Where a conv's GEMM result goes: `[n x hw]` channel-major planes at
/// `out[offset..]`, or, `pooled`, the `n` channel means at `out[offset..]`.
struct ConvOut<'a> {
    out: &'a mut [f32],
    offset: usize,
    relu: bool,
    pooled: bool,
}

/// Bytes of one band of a conv GEMM's pixels: its patch rows and its GEMM
/// output (`k + n` floats a pixel) stay in L2 from the gather to the
/// transpose or pool that reads them.
const BAND_BYTES: usize = 256 * 1024;

/// Output pixels per band of a conv GEMM over `hw` pixels, from the shapes
/// alone (never from the threads: the pooled sums add band by band, in the
/// same order on any number of threads).
fn band_pixels(k: usize, n: usize, hw: usize) -> usize {
    let per_pixel = std::mem::size_of::<f32>() * (k + n);
    (BAND_BYTES / per_pixel.max(1) / 16 * 16)
        .max(16)
        .min(hw.max(1))
}

/// A band's channel planes (`planes[c * len + p]`) to pixels `p0..p0 + len`
/// of every channel plane of `out` (`hw` pixels each). The band must be the
/// caller's alone: no other thread writes those pixels meanwhile.
fn copy_band_planes(
    planes: &[f32],
    len: usize,
    out: &pool::SharedOut<'_, f32>,
    hw: usize,
    p0: usize,
) -> Option<()> {
    for (c, row) in planes.chunks_exact(len.max(1)).enumerate() {
        let at = c * hw + p0;
        // SAFETY: the band's pixels of every channel are this thread's (the
        // caller's contract).
        unsafe { out.slice(at..at + len) }?.copy_from_slice(row);
    }
    Some(())
}

/// One thread's buffers for the bands of a conv GEMM.
#[derive(Debug, Clone, Default)]
struct BandScratch {
    /// A pointwise conv's input channels over the band's pixels, `[k x band]`.
    gather: Vec<f32>,
    /// Patch rows, `[band x k]`.
    cols: Vec<f32>,
    /// The patch rows quantized (int8).
    a_u8: Vec<u8>,
    /// A pointwise conv's input channels over the band's pixels quantized,
    /// `[k x band]` (int8).
    q_t: Vec<u8>,
    /// A pointwise conv's input over the band's pixels as pixel quads (int8 VNNI).
    quads: PixelQuads,
    /// The GEMM's output, `[band x n]`, and transposed, `[n x band]`.
    t: Vec<f32>,
    t_t: Vec<f32>,
}

impl pool::GrowLike for BandScratch {
    fn grow_like(&mut self, other: &BandScratch) {
        pool::reserve_like(&mut self.gather, &other.gather);
        pool::reserve_like(&mut self.cols, &other.cols);
        pool::reserve_like(&mut self.a_u8, &other.a_u8);
        pool::reserve_like(&mut self.q_t, &other.q_t);
        self.quads.grow_like(&other.quads);
        pool::reserve_like(&mut self.t, &other.t);
        pool::reserve_like(&mut self.t_t, &other.t_t);
    }
}

/// One sample of a conv or pointwise conv GEMM node.
struct ConvGemm<'a> {
    simd: SimdLevel,
    half_path: HalfPath,
    g: &'a GemmNode,
    /// The conv's geometry; `None` for a pointwise conv.
    geom: Option<&'a ConvGeom>,
    /// Output pixels.
    hw: usize,
}

impl ConvGemm<'_> {
    /// `x` (one sample, `[ic, h, w]`) through the conv into `dst`, band of
    /// output pixels by band ([`band_pixels`]): each band gathers its patch
    /// rows (im2col, or a transpose of its pixels of a pointwise conv's
    /// input), runs the GEMM on them (with the fused ReLU) and writes its
    /// pixels of every output channel, or its column sums for a fused pool
    /// (added band by band afterwards). Bands are taken in turn by up to
    /// `threads` threads (when the GEMM's work is worth it, by the tiled
    /// engine's rule), each with its own `workers` entry; every output is
    /// computed alike on any number of threads: the same bits.
    fn run(
        &self,
        x: &[f32],
        dst: ConvOut<'_>,
        workers: &mut [BandScratch],
        band_sums: &mut Vec<f32>,
        (threads, record): (usize, &mut ChunkRecord),
    ) -> Result<(), KernelError> {
        let (simd, g, hw) = (self.simd, self.g, self.hw);
        let (k, n) = (g.k, g.n);
        let band = band_pixels(k, n, hw);
        let bands = hw.div_ceil(band);
        let flops = 2.0 * (hw * k * n) as f64;
        let helpers =
            crate::gemm::helpers_worth(threads, flops).min(workers.len().saturating_sub(1));
        let internal = || KernelError::Gemm("quantized: a conv band outside its buffers".into());
        if dst.pooled {
            band_sums.resize(bands * n, 0.0);
        }
        let sums = pool::SharedOut::new(&mut band_sums[..]);
        let out = pool::SharedOut::new(dst.out.get_mut(dst.offset..).ok_or_else(internal)?);
        let participants = pool::PerParticipant::new(workers);
        let run_band = |participant: usize, b: usize| -> Result<(), KernelError> {
            // SAFETY: `participant` is the number `run_chunks` gave this thread.
            let w = unsafe { participants.get(participant) }.ok_or_else(internal)?;
            let p0 = b * band;
            let len = band.min(hw - p0);
            if let (
                None,
                GemmWeights::Int8 {
                    packed,
                    scales,
                    act,
                },
            ) = (self.geom, &g.weights)
            {
                if packed.path() == Int8Path::Vnni512 {
                    // Pixels in the lanes: channel planes in, channel planes
                    // (or sums) out, no transposes.
                    w.quads.fill(x, hw, p0..p0 + len, k, *act).map_err(qerr)?;
                    let ep = Int8Epilogue {
                        act: *act,
                        weight_scales: scales,
                        bias: g.bias.as_deref(),
                        relu: dst.relu,
                    };
                    if dst.pooled {
                        // SAFETY: each band runs once and owns its row of sums.
                        let sums =
                            unsafe { sums.slice(b * n..(b + 1) * n) }.ok_or_else(internal)?;
                        pointwise_conv_u8s8(&w.quads, packed, ep, PlanesOut::ChannelSums(sums))
                            .map_err(qerr)?;
                    } else if len == hw {
                        // The only band: every channel's plane is its own, so
                        // the planes go straight into the output.
                        // SAFETY: this band (all pixels) runs once, alone.
                        let planes = unsafe { out.slice(0..n * hw) }.ok_or_else(internal)?;
                        let planes = PlanesOut::Planes {
                            out: planes,
                            ldo: hw,
                        };
                        pointwise_conv_u8s8(&w.quads, packed, ep, planes).map_err(qerr)?;
                    } else {
                        w.t_t.resize(n * len, 0.0);
                        let planes = PlanesOut::Planes {
                            out: &mut w.t_t,
                            ldo: len,
                        };
                        pointwise_conv_u8s8(&w.quads, packed, ep, planes).map_err(qerr)?;
                        copy_band_planes(&w.t_t, len, &out, hw, p0).ok_or_else(internal)?;
                    }
                    return Ok(());
                }
            }
            w.t.resize(len * n, 0.0);
            let t_out = GemmOut::F32 {
                out: &mut w.t,
                relu: dst.relu,
            };
            match (self.geom, &g.weights) {
                (None, GemmWeights::Int8 { act, .. }) => {
                    // Each channel's pixels quantized where they lie, then the
                    // bytes transposed into patch rows: a quarter of the data
                    // a gather, f32 transpose and row quantization moved.
                    let (q_t, a_u8) = (&mut w.q_t, &mut w.a_u8);
                    pointwise_patch_rows_u8(x, hw, p0..p0 + len, k, *act, q_t, a_u8)
                        .ok_or_else(internal)?;
                    let a = GemmIn::U8(&w.a_u8);
                    g.run(a, len, t_out, &mut Vec::new(), self.half_path, None)?;
                }
                (geom, _) => {
                    w.cols.resize(len * k, 0.0);
                    match geom {
                        Some(geom) => im2col_patches(x, geom, p0..p0 + len, &mut w.cols),
                        None => {
                            w.gather.resize(k * len, 0.0);
                            for (c, row) in w.gather.chunks_exact_mut(len).enumerate() {
                                let src =
                                    x.get(c * hw + p0..c * hw + p0 + len).ok_or_else(internal)?;
                                row.copy_from_slice(src);
                            }
                            transpose(simd, &w.gather, k, len, &mut w.cols);
                        }
                    }
                    let a = GemmIn::F32(&w.cols);
                    g.run(a, len, t_out, &mut w.a_u8, self.half_path, None)?;
                }
            }
            if dst.pooled {
                // Pixel-major rows: the band's channel sums are column sums.
                // SAFETY: each band runs once and owns its row of sums.
                let sums = unsafe { sums.slice(b * n..(b + 1) * n) }.ok_or_else(internal)?;
                conv::column_sums(simd, &w.t, n, sums);
            } else {
                w.t_t.resize(n * len, 0.0);
                transpose(simd, &w.t, len, n, &mut w.t_t);
                copy_band_planes(&w.t_t, len, &out, hw, p0).ok_or_else(internal)?;
            }
            Ok(())
        };
        let done = pool::try_run_chunks(record, helpers, bands, &run_band);
        pool::equalize(workers);
        done?;
        if dst.pooled {
            let means = dst
                .out
                .get_mut(dst.offset..dst.offset + n)
                .ok_or_else(internal)?;
            let inv = 1.0 / hw.max(1) as f32;
            for (c, mean) in means.iter_mut().enumerate() {
                *mean = (0..bands).map(|b| band_sums[b * n + c]).sum::<f32>() * inv;
            }
        }
        Ok(())
    }
}

impl Executable for QuantizedExecutable {
    fn run(&mut self, input: &[f32], batch: usize) -> Result<&[f32], KernelError> {
        // As the tiled engine does: wake a sleeping helper only when that
        // pays (`pool::begin_run`), timed from before the wake-up, which
        // the caller pays for.
        let started = std::time::Instant::now();
        let helpers = pool::begin_run(self.tile.threads, &self.run_history, batch);
        self.run_nodes(input, batch, None)?;
        self.run_history
            .record(batch, helpers.plan(), started.elapsed());
        drop(helpers);
        let out_len = self.graph.output_len() * batch;
        Ok(&self.buffers.buffer(self.graph.output, out_len)[..out_len])
    }

    fn lowered(&self) -> String {
        let mut s = format!(
            "quantized ({}; int8 path {}, half path {})\n",
            self.precision,
            self.int8_path.name(),
            self.half_path.name()
        );
        for (i, node) in self.graph.nodes.iter().enumerate() {
            let in_place = self.in_place[i].map(|j| &self.graph.nodes[j]);
            let how = match self.gemms.get(&i) {
                Some(g) => match &g.weights {
                    GemmWeights::Int8 { act, packed, .. } => {
                        let relu = epilogue_name(g.relu_into.is_some(), in_place);
                        let lanes = match node.op {
                            // `ConvGemm::run`'s kernel choice.
                            Op::PointwiseConv { .. } if packed.path() == Int8Path::Vnni512 => {
                                "pixels in the vector lanes, "
                            }
                            _ => "",
                        };
                        let out = match g.chain_to {
                            Some((l, _)) => {
                                format!(", requantized u8 to {}", self.graph.nodes[l].name)
                            }
                            None => String::new(),
                        };
                        format!(
                            "int8 gemm{relu} ({lanes}u8 act scale {:.3e} zp {}, s8 per-channel weights{out})",
                            act.scale, act.zero_point
                        )
                    }
                    GemmWeights::Half(w) => {
                        let relu = epilogue_name(g.relu_into.is_some(), in_place);
                        format!("{:?}-weight gemm{relu}, f32 accumulate", w.storage())
                    }
                },
                None if self.fused_away[i] => "fused into the op before".to_string(),
                None => match self.f32_convs.get(&i) {
                    Some(plan) => {
                        let relu = if plan.relu_into.is_some() {
                            " + relu"
                        } else {
                            ""
                        };
                        let mut what = match plan.kind {
                            F32ConvKind::Depthwise => "f32 depthwise kernel".to_string(),
                            F32ConvKind::Direct => {
                                format!("f32 direct conv, {} taps: kept in f32", plan.offsets.len())
                            }
                        };
                        if let Some(next) = plan.feeds {
                            let into = &self.graph.nodes[next].name;
                            what.push_str(&format!(", written into {into}'s zero-padded input"));
                        }
                        if plan.fed {
                            what.push_str(", its input written in place by the conv before");
                        }
                        format!("{what}{relu} ({})", self.simd.name())
                    }
                    None => format!("f32{}", epilogue_name(false, in_place)),
                },
            };
            let split = match self.split_of(i) {
                Some(per) if self.tile.threads > 1 => {
                    format!("; split over {} threads {per}", self.tile.threads)
                }
                _ => String::new(),
            };
            s.push_str(&format!(
                "  {} {}: {how}{split}\n",
                node.name,
                node.op.kind()
            ));
        }
        s
    }

    fn backend(&self) -> BackendKind {
        BackendKind::Quantized
    }

    fn precision(&self) -> Precision {
        self.precision
    }

    fn activation_bytes(&self) -> usize {
        let nodes = &self.graph.nodes;
        let f32s = (self.buffers).bytes_without(|i| matches!(nodes[i].op, Op::Constant(_)));
        f32s + self.u8_inputs.iter().map(Vec::len).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;

    /// The f32 convolutions calibration runs (patch rows times the weights,
    /// band by band) compute the reference kernels' sums: equal values (a
    /// zero's sign aside) at odd sizes, strides and paddings, over several
    /// bands of pixels, for a conv and a pointwise conv.
    #[test]
    fn calibration_convs_compute_the_reference_sums() {
        let mut scratch = BandScratch::default();
        for (c, h, w, oc, k, stride, pad) in [
            (3, 50, 50, 8, 3, 1, 1),
            (5, 9, 11, 7, 3, 2, 1),
            (2, 7, 6, 3, 5, 1, 2),
            (4, 8, 8, 16, 3, 2, 0),
        ] {
            let oh = (h + 2 * pad - k) / stride + 1;
            let ow = (w + 2 * pad - k) / stride + 1;
            let g = conv_geom(&[c, h, w], &[oc, oh, ow], k, k, stride, pad);
            let x = seeded_inputs(c * h * w, 1, 1);
            let weight = seeded_inputs(oc * c * k * k, 1, 2);
            let bias = seeded_inputs(oc, 1, 3);
            let (kk, hw) = (c * k * k, oh * ow);
            let mut want = vec![f32::NAN; oc * hw];
            reference::conv2d(&x, &g, &weight, Some(&bias), &mut want);
            let mut wt = vec![0.0; kk * oc];
            for o in 0..oc {
                for q in 0..kk {
                    wt[q * oc + o] = weight[o * kk + q];
                }
            }
            let mut got = vec![f32::NAN; oc * hw];
            let shape = (kk, oc, hw);
            conv_f32_streamed(
                &x,
                Some(&g),
                shape,
                (&wt, Some(&bias)),
                &mut scratch,
                &mut got,
            );
            assert_eq!(
                got, want,
                "conv {c}x{h}x{w} -> {oc}, {k}x{k} /{stride} pad {pad}"
            );
        }
        for (ic, oc, hw) in [(5, 7, 6400), (3, 1, 10)] {
            let x = seeded_inputs(ic * hw, 1, 4);
            let weight = seeded_inputs(oc * ic, 1, 5);
            let mut want = vec![f32::NAN; oc * hw];
            reference::pointwise(&x, ic, hw, &weight, oc, None, &mut want);
            let mut wt = vec![0.0; ic * oc];
            for o in 0..oc {
                for i in 0..ic {
                    wt[i * oc + o] = weight[o * ic + i];
                }
            }
            let mut got = vec![f32::NAN; oc * hw];
            conv_f32_streamed(&x, None, (ic, oc, hw), (&wt, None), &mut scratch, &mut got);
            assert_eq!(got, want, "pointwise {ic} -> {oc} over {hw} pixels");
        }
        assert!(band_pixels(27, 8, 2500) < 2500 && band_pixels(5, 7, 6400) < 6400);
    }

    /// A pointwise conv's int8 patch rows, quantized per channel and then
    /// transposed as bytes, are the bytes the gather, f32 transpose and row
    /// quantization made, at odd channel counts (blocks of 8 and edges) and
    /// bands (starting mid-image, short); the row padding is left alone.
    #[test]
    fn pointwise_patch_rows_u8_match_quantizing_the_transposed_pixels() {
        let act = ActivationQuant {
            scale: 0.011,
            zero_point: 121,
        };
        let (mut q_t, mut got) = (Vec::new(), Vec::new());
        for (k, hw) in [(1, 9), (5, 37), (8, 64), (13, 101), (32, 200), (17, 8)] {
            let x: Vec<f32> = seeded_inputs(k * hw, 1, k as u64)
                .iter()
                .map(|v| v * 2.0)
                .collect();
            for pixels in [0..hw, 3..hw, 1..hw.min(9), 0..0] {
                let len = pixels.len();
                let mut gather = vec![0.0f32; k * len];
                for (c, row) in gather.chunks_exact_mut(len.max(1)).enumerate() {
                    row.copy_from_slice(&x[c * hw + pixels.start..c * hw + pixels.end]);
                }
                let mut cols = vec![0.0f32; len * k];
                transpose(SimdLevel::Portable, &gather, k, len, &mut cols);
                let mut want = Vec::new();
                quantize_rows(&cols, (len, k), act, &mut want, None, 0.0);
                got.clear();
                pointwise_patch_rows_u8(&x, hw, pixels.clone(), k, act, &mut q_t, &mut got)
                    .expect("patch rows");
                let lda = k_padded(k);
                assert_eq!(got.len(), want.len(), "k {k} pixels {pixels:?}");
                for p in 0..len {
                    let (g, w) = (&got[p * lda..p * lda + k], &want[p * lda..p * lda + k]);
                    assert_eq!(g, w, "k {k} pixels {pixels:?} row {p}");
                }
            }
        }
        // Straight transposes, with the destination rows longer than needed.
        for (rows, cols) in [(8, 8), (16, 24), (9, 17), (7, 5), (1, 1), (3, 40)] {
            let src: Vec<u8> = (0..rows * cols).map(|i| (i * 7 % 251) as u8).collect();
            let ldd = rows + 3;
            let mut dst = vec![0xa5u8; cols * ldd];
            transpose_u8(&src, (rows, cols), &mut dst, ldd).expect("transpose");
            for c in 0..cols {
                for r in 0..rows {
                    assert_eq!(
                        dst[c * ldd + r],
                        src[r * cols + c],
                        "{rows}x{cols} ({r}, {c})"
                    );
                }
                assert!(dst[c * ldd + rows..(c + 1) * ldd]
                    .iter()
                    .all(|&b| b == 0xa5));
            }
        }
        assert!(transpose_u8(&[0; 15], (4, 4), &mut [0; 16], 4).is_none());
        assert!(transpose_u8(&[0; 16], (4, 4), &mut [0; 15], 4).is_none());
    }

    /// The patches with their interior columns gathered unchecked equal the
    /// patches gathered tap by tap, at odd sizes, strides and paddings, for
    /// the whole image and band by band.
    #[test]
    fn im2col_interior_fast_path_matches_the_checked_gather() {
        for (c, h, w, k, stride, pad) in [
            (3, 9, 11, 3, 2, 1),
            (2, 7, 7, 3, 1, 1),
            (1, 5, 4, 5, 1, 2),
            (2, 6, 9, 1, 2, 0),
            (1, 3, 3, 3, 1, 0),
        ] {
            let oh = (h + 2 * pad - k) / stride + 1;
            let ow = (w + 2 * pad - k) / stride + 1;
            let g = conv_geom(&[c, h, w], &[4, oh, ow], k, k, stride, pad);
            let x: Vec<f32> = (0..c * h * w).map(|i| i as f32 + 1.0).collect();
            let (kk, hw) = (c * k * k, oh * ow);
            let mut got = vec![f32::NAN; hw * kk];
            im2col_patches(&x, &g, 0..hw, &mut got);
            // Any band of pixels (starting mid-row, a short last one) gathers
            // the same rows as the whole image.
            for p0 in (0..hw).step_by(7) {
                let len = 7.min(hw - p0);
                let mut band = vec![f32::NAN; len * kk];
                im2col_patches(&x, &g, p0..p0 + len, &mut band);
                assert_eq!(band, got[p0 * kk..(p0 + len) * kk], "pixels {p0}..");
            }
            for oy in 0..oh {
                for ox in 0..ow {
                    for ic in 0..c {
                        for ky in 0..k {
                            for kx in 0..k {
                                let want = match (g.src(oy, ky, h), g.src(ox, kx, w)) {
                                    (Some(iy), Some(ix)) => x[(ic * h + iy) * w + ix],
                                    _ => 0.0,
                                };
                                let q = (ic * k + ky) * k + kx;
                                assert_eq!(
                                    got[(oy * ow + ox) * kk + q],
                                    want,
                                    "{c}x{h}x{w} k{k} s{stride} p{pad} ({oy}, {ox}) tap {q}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// The direct f32 conv the quantized backend keeps small-K convolutions on
    /// agrees with the reference loop at odd sizes, strides and paddings, at
    /// every SIMD level here that has the kernel (AVX2 + FMA included).
    #[test]
    fn direct_plan_matches_the_reference() {
        let levels: Vec<SimdLevel> = SimdLevel::supported()
            .into_iter()
            .filter(|&simd| direct_conv_applies_to_taps(simd, 27))
            .collect();
        // The stem stays f32 wherever AVX2 + FMA is (not only with AVX-512).
        assert_eq!(
            levels.contains(&SimdLevel::Avx2Fma),
            SimdLevel::Avx2Fma.is_supported(),
            "{levels:?}"
        );
        assert!(!direct_conv_applies_to_taps(SimdLevel::Portable, 27));
        for simd in levels {
            for (ic, oc, h, w, k, stride, pad) in [
                (3, 32, 15, 13, 3, 2, 1),
                (3, 5, 7, 9, 3, 1, 1),
                (2, 17, 8, 11, 5, 2, 2),
                (1, 1, 1, 1, 1, 1, 0),
            ] {
                let oh = (h + 2 * pad - k) / stride + 1;
                let ow = (w + 2 * pad - k) / stride + 1;
                let geom = conv_geom(&[ic, h, w], &[oc, oh, ow], k, k, stride, pad);
                assert!(direct_conv_applies(simd, &geom), "{simd:?}");
                let x: Vec<f32> = (0..ic * h * w)
                    .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
                    .collect();
                let wt: Vec<f32> = (0..oc * ic * k * k)
                    .map(|i| ((i * 13 % 17) as f32 - 8.0) / 9.0)
                    .collect();
                let bias: Vec<f32> = (0..oc).map(|i| i as f32 * 0.25 - 0.5).collect();
                let mut want = vec![0.0f32; oc * oh * ow];
                reference::conv2d(&x, &geom, &wt, Some(&bias), &mut want);
                let mut plan = F32Conv::new(F32ConvKind::Direct, geom);
                for relu in [false, true] {
                    let mut got = vec![f32::NAN; oc * oh * ow];
                    plan.run(
                        simd,
                        &x,
                        &wt,
                        Some(&bias),
                        relu,
                        &mut got,
                        (1, &mut ChunkRecord::default()),
                    )
                    .expect("direct conv");
                    for (g, e) in got.iter().zip(&want) {
                        let e = if relu { e.max(0.0) } else { *e };
                        assert!(
                            (g - e).abs() <= 1e-5 * (1.0 + e.abs()),
                            "{simd:?} {ic}->{oc} {h}x{w} k{k} s{stride}: {g} vs {e}"
                        );
                    }
                }
            }
        }
    }

    /// The SIMD depthwise path the quantized backend uses agrees with the
    /// reference loop at odd sizes, both strides and every SIMD level here.
    #[test]
    fn depthwise_plan_matches_the_reference() {
        for (c, h, w, k, stride, pad) in [
            (5, 7, 9, 3, 1, 1),
            (3, 8, 11, 3, 2, 1),
            (4, 15, 13, 5, 2, 2),
            (1, 1, 1, 1, 1, 0),
        ] {
            let oh = (h + 2 * pad - k) / stride + 1;
            let ow = (w + 2 * pad - k) / stride + 1;
            let geom = conv_geom(&[c, h, w], &[c, oh, ow], k, k, stride, pad);
            let x: Vec<f32> = (0..c * h * w)
                .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
                .collect();
            let wt: Vec<f32> = (0..c * k * k)
                .map(|i| ((i * 13 % 17) as f32 - 8.0) / 9.0)
                .collect();
            let bias: Vec<f32> = (0..c).map(|i| i as f32 * 0.25 - 0.5).collect();
            let mut want = vec![0.0f32; c * oh * ow];
            reference::depthwise(&x, &geom, &wt, Some(&bias), &mut want);
            for simd in SimdLevel::supported() {
                let mut plan = F32Conv::new(F32ConvKind::Depthwise, geom);
                let mut got = vec![f32::NAN; c * oh * ow];
                // Twice: the split buffer's padding must stay zero across runs.
                for _ in 0..2 {
                    plan.run(
                        simd,
                        &x,
                        &wt,
                        Some(&bias),
                        false,
                        &mut got,
                        (1, &mut ChunkRecord::default()),
                    )
                    .expect("depthwise");
                }
                for (g, e) in got.iter().zip(&want) {
                    assert!(
                        (g - e).abs() <= 1e-5 * (1.0 + e.abs()),
                        "{simd:?} c{c} {h}x{w} k{k} s{stride}: {g} vs {e}"
                    );
                }
            }
        }
    }
}
