//! The naive backend (the reference every other backend is compared with)
//! against values computed independently here: by hand (arithmetic in the
//! comments) or by plain f64 loops written from the textbook definitions,
//! never by calling the crate's own kernels. Shapes are tiny, so the
//! tolerance is tight: 1e-6 relative (absolute below magnitude 1).
//!
//! Layout conventions under test (src/graph.rs): the batch is the leading
//! axis, conv inputs are `[c, h, w]` per sample (NCHW), conv weights
//! `[out, in, kh, kw]`, depthwise `[c, kh, kw]`, pointwise `[out, in]`,
//! dense weights `[k, n]` row-major. Convolution is cross-correlation (no
//! kernel flip) with zero padding.

use workbench_kernels::{
    builders, compile, models, Activation, BackendKind, CompileOptions, Graph, GraphBuilder, Op,
    Tensor,
};

const TOL: f64 = 1e-6;

fn run_naive(g: &Graph, input: &[f32], batch: usize) -> Vec<f32> {
    let mut exe = compile(g, BackendKind::Naive, &CompileOptions::default()).unwrap();
    exe.run(input, batch).unwrap().to_vec()
}

fn assert_close(got: &[f32], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: output length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g as f64 - w).abs();
        assert!(
            err <= TOL * w.abs().max(1.0),
            "{what}: element {i}: got {g}, expected {w} (error {err:e})"
        );
    }
}

/// Deterministic small values in [-1, 1], multiples of 1/8 (exact in f32, so
/// products and short sums are exact too), with no short period that could
/// hide a transposed or permuted index.
fn vals(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s % 17) as f32 - 8.0) / 8.0
        })
        .collect()
}

fn tensor(shape: Vec<usize>, data: Vec<f32>) -> Tensor {
    Tensor::new(shape, data).unwrap()
}

/// Textbook output size: floor((n + 2p - k) / s) + 1.
fn out_size(n: usize, k: usize, s: usize, p: usize) -> usize {
    (n + 2 * p - k) / s + 1
}

/// Input index for output `o`, tap `t`, or None when it falls in the zero padding.
fn tap(o: usize, t: usize, s: usize, p: usize, n: usize) -> Option<usize> {
    let i = (o * s + t) as isize - p as isize;
    (i >= 0 && (i as usize) < n).then_some(i as usize)
}

// ---------------------------------------------------------------- conv2d

#[test]
fn conv2d_stride2_pad1_by_hand() {
    // One channel, x = [[1,2,3],[4,5,6],[7,8,9]], kernel 3x3
    // k = [[1,2,3],[4,5,6],[7,8,9]], stride 2, padding 1, bias 0.5.
    // Output side floor((3 + 2 - 3) / 2) + 1 = 2. Output (oy, ox) is centred
    // on input (2oy, 2ox); padded taps read 0. Cross-correlation:
    // (0,0): taps (1,1),(1,2),(2,1),(2,2) on x(0,0),(0,1),(1,0),(1,1)
    //        = 5*1 + 6*2 + 8*4 + 9*5 = 5+12+32+45 = 94 (+0.5 = 94.5)
    // (0,1): centre x(0,2): taps (1,0),(1,1),(2,0),(2,1) on x(0,1),(0,2),(1,1),(1,2)
    //        = 4*2 + 5*3 + 7*5 + 8*6 = 8+15+35+48 = 106 (+0.5)
    // (1,0): centre x(2,0): taps (0,1),(0,2),(1,1),(1,2) on x(1,0),(1,1),(2,0),(2,1)
    //        = 2*4 + 3*5 + 5*7 + 6*8 = 8+15+35+48 = 106 (+0.5)
    // (1,1): centre x(2,2): taps (0,0),(0,1),(1,0),(1,1) on x(1,1),(1,2),(2,1),(2,2)
    //        = 1*5 + 2*6 + 4*8 + 5*9 = 5+12+32+45 = 94 (+0.5)
    let k: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    let mut g = GraphBuilder::new("conv", vec![1, 3, 3]).unwrap();
    let y = g
        .push(
            "conv",
            Op::Conv2d {
                weight: tensor(vec![1, 1, 3, 3], k.clone()),
                bias: Some(tensor(vec![1], vec![0.5])),
                stride: 2,
                padding: 1,
            },
            &[0],
        )
        .unwrap();
    let graph = g.finish(y, false, 0).unwrap();
    assert_eq!(graph.nodes()[y].shape, vec![1, 2, 2]);
    // Batch 2: the second sample is the first negated (output = -conv + bias).
    let mut input = k.clone();
    input.extend(k.iter().map(|v| -v));
    let out = run_naive(&graph, &input, 2);
    assert_close(
        &out,
        &[94.5, 106.5, 106.5, 94.5, -93.5, -105.5, -105.5, -93.5],
        "conv2d by hand",
    );
}

/// f64 conv2d from the definition: NCHW input, weight [oc, ic, kh, kw].
#[allow(clippy::too_many_arguments)]
fn conv2d_f64(
    x: &[f32],
    batch: usize,
    (c, h, w): (usize, usize, usize),
    wt: &[f32],
    (oc, kh, kw): (usize, usize, usize),
    bias: Option<&[f32]>,
    stride: usize,
    pad: usize,
) -> Vec<f64> {
    let (oh, ow) = (out_size(h, kh, stride, pad), out_size(w, kw, stride, pad));
    let mut out = Vec::new();
    for n in 0..batch {
        for o in 0..oc {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = bias.map_or(0.0, |b| b[o] as f64);
                    for i in 0..c {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                if let (Some(iy), Some(ix)) =
                                    (tap(oy, ky, stride, pad, h), tap(ox, kx, stride, pad, w))
                                {
                                    let wv = wt[((o * c + i) * kh + ky) * kw + kx] as f64;
                                    acc += wv * x[((n * c + i) * h + iy) * w + ix] as f64;
                                }
                            }
                        }
                    }
                    out.push(acc);
                }
            }
        }
    }
    out
}

#[test]
fn conv2d_matches_definition_on_nonsquare_multichannel_batch() {
    // (c, h, w, oc, kh, kw, stride, pad): a non-square image, a non-square
    // kernel (kh != kw catches a swapped weight layout), 2-3 input channels,
    // stride 2 with padding 1, and stride 1 without padding.
    let cases = [
        (2, 5, 7, 3, 3, 3, 2, 1),
        (3, 4, 6, 2, 3, 2, 2, 1),
        (2, 6, 5, 2, 2, 3, 1, 0),
        (2, 3, 4, 4, 1, 1, 2, 1),
    ];
    for (ci, &(c, h, w, oc, kh, kw, stride, pad)) in cases.iter().enumerate() {
        let batch = 2;
        let wt = vals(oc * c * kh * kw, 10 + ci as u64);
        let bias = vals(oc, 20 + ci as u64);
        let x = vals(batch * c * h * w, 30 + ci as u64);
        let mut g = GraphBuilder::new("conv", vec![c, h, w]).unwrap();
        let y = g
            .push(
                "conv",
                Op::Conv2d {
                    weight: tensor(vec![oc, c, kh, kw], wt.clone()),
                    bias: Some(tensor(vec![oc], bias.clone())),
                    stride,
                    padding: pad,
                },
                &[0],
            )
            .unwrap();
        let graph = g.finish(y, false, 0).unwrap();
        let (oh, ow) = (out_size(h, kh, stride, pad), out_size(w, kw, stride, pad));
        assert_eq!(graph.nodes()[y].shape, vec![oc, oh, ow], "case {ci}");
        let want = conv2d_f64(
            &x,
            batch,
            (c, h, w),
            &wt,
            (oc, kh, kw),
            Some(&bias),
            stride,
            pad,
        );
        let got = run_naive(&graph, &x, batch);
        assert_close(&got, &want, &format!("conv2d case {ci}"));
    }
}

// ---------------------------------------------------------------- depthwise

#[test]
fn depthwise_stride2_pad1_by_hand() {
    // Two channels of 2x3: ch0 = [[1,2,3],[4,5,6]], ch1 = 10 * ch0.
    // Kernels 3x3: ch0 all ones, ch1 only the centre tap = 1 (identity).
    // Bias [0, 1]. Stride 2, padding 1: oh = floor((2+2-3)/2)+1 = 1,
    // ow = floor((3+2-3)/2)+1 = 2; outputs centred on x(0,0) and x(0,2).
    // ch0 (0,0): rows 0..1, cols 0..1: 1+2+4+5 = 12
    // ch0 (0,1): rows 0..1, cols 1..2: 2+3+5+6 = 16
    // ch1: centre taps x(0,0) = 10, x(0,2) = 30, + bias 1 -> 11, 31.
    // A depthwise conv mixing channels would add ch1 into ch0 and fail.
    let x: Vec<f32> = vec![
        1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0,
    ];
    let mut k = vec![1.0f32; 9];
    k.extend([0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
    let mut g = GraphBuilder::new("dw", vec![2, 2, 3]).unwrap();
    let y = g
        .push(
            "dw",
            Op::DepthwiseConv2d {
                weight: tensor(vec![2, 3, 3], k),
                bias: Some(tensor(vec![2], vec![0.0, 1.0])),
                stride: 2,
                padding: 1,
            },
            &[0],
        )
        .unwrap();
    let graph = g.finish(y, false, 0).unwrap();
    assert_eq!(graph.nodes()[y].shape, vec![2, 1, 2]);
    assert_close(&run_naive(&graph, &x, 1), &[12.0, 16.0, 11.0, 31.0], "dw");
}

#[test]
fn depthwise_matches_definition_on_nonsquare_multichannel_batch() {
    // (c, h, w, kh, kw, stride, pad)
    let cases = [
        (3, 4, 5, 3, 3, 2, 1),
        (2, 7, 4, 3, 3, 1, 1),
        (3, 5, 6, 2, 3, 2, 1),
    ];
    for (ci, &(c, h, w, kh, kw, stride, pad)) in cases.iter().enumerate() {
        let batch = 3;
        let wt = vals(c * kh * kw, 40 + ci as u64);
        let bias = vals(c, 50 + ci as u64);
        let x = vals(batch * c * h * w, 60 + ci as u64);
        let mut g = GraphBuilder::new("dw", vec![c, h, w]).unwrap();
        let y = g
            .push(
                "dw",
                Op::DepthwiseConv2d {
                    weight: tensor(vec![c, kh, kw], wt.clone()),
                    bias: Some(tensor(vec![c], bias.clone())),
                    stride,
                    padding: pad,
                },
                &[0],
            )
            .unwrap();
        let graph = g.finish(y, false, 0).unwrap();
        let (oh, ow) = (out_size(h, kh, stride, pad), out_size(w, kw, stride, pad));
        assert_eq!(graph.nodes()[y].shape, vec![c, oh, ow], "case {ci}");
        // Depthwise = per channel, a 1-in 1-out conv2d with that channel's kernel.
        let mut want = Vec::new();
        for n in 0..batch {
            for ch in 0..c {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut acc = bias[ch] as f64;
                        for ky in 0..kh {
                            for kx in 0..kw {
                                if let (Some(iy), Some(ix)) =
                                    (tap(oy, ky, stride, pad, h), tap(ox, kx, stride, pad, w))
                                {
                                    acc += wt[(ch * kh + ky) * kw + kx] as f64
                                        * x[((n * c + ch) * h + iy) * w + ix] as f64;
                                }
                            }
                        }
                        want.push(acc);
                    }
                }
            }
        }
        assert_close(
            &run_naive(&graph, &x, batch),
            &want,
            &format!("depthwise case {ci}"),
        );
    }
}

// ---------------------------------------------------------------- pointwise

#[test]
fn pointwise_by_hand_and_by_definition() {
    // By hand: 2 input channels of 1x2, ch0 = [1, 2], ch1 = [3, 4];
    // weight [out, in] = [[1, 10], [-1, 0.5]], bias [0, 100].
    // out0 = 1*ch0 + 10*ch1 = [31, 42]; out1 = -ch0 + 0.5*ch1 + 100 = [100.5, 100].
    let mut g = GraphBuilder::new("pw", vec![2, 1, 2]).unwrap();
    let y = g
        .push(
            "pw",
            Op::PointwiseConv {
                weight: tensor(vec![2, 2], vec![1.0, 10.0, -1.0, 0.5]),
                bias: Some(tensor(vec![2], vec![0.0, 100.0])),
            },
            &[0],
        )
        .unwrap();
    let graph = g.finish(y, false, 0).unwrap();
    assert_close(
        &run_naive(&graph, &[1.0, 2.0, 3.0, 4.0], 1),
        &[31.0, 42.0, 100.5, 100.0],
        "pointwise by hand",
    );

    // Definition: out[n, o, p] = b[o] + sum_i W[o, i] x[n, i, p] over pixels p
    // of a non-square 2x3 image, 3 -> 4 channels, batch 2.
    let (batch, ic, oc, h, w) = (2, 3, 4, 2, 3);
    let wt = vals(oc * ic, 70);
    let bias = vals(oc, 71);
    let x = vals(batch * ic * h * w, 72);
    let mut g = GraphBuilder::new("pw", vec![ic, h, w]).unwrap();
    let y = g
        .push(
            "pw",
            Op::PointwiseConv {
                weight: tensor(vec![oc, ic], wt.clone()),
                bias: Some(tensor(vec![oc], bias.clone())),
            },
            &[0],
        )
        .unwrap();
    let graph = g.finish(y, false, 0).unwrap();
    assert_eq!(graph.nodes()[y].shape, vec![oc, h, w]);
    let hw = h * w;
    let mut want = Vec::new();
    for n in 0..batch {
        for o in 0..oc {
            for p in 0..hw {
                let mut acc = bias[o] as f64;
                for i in 0..ic {
                    acc += wt[o * ic + i] as f64 * x[(n * ic + i) * hw + p] as f64;
                }
                want.push(acc);
            }
        }
    }
    assert_close(
        &run_naive(&graph, &x, batch),
        &want,
        "pointwise by definition",
    );
}

// ---------------------------------------------------------------- pooling

#[test]
fn global_avg_pool_by_hand() {
    // [c=2, h=2, w=3], batch 2. Sample 0: ch0 = 1..6 -> 21/6 = 3.5,
    // ch1 = 10, 20, .., 60 -> 210/6 = 35. Sample 1: ch0 = -1..-6 -> -3.5,
    // ch1 = six zeros but one 6 -> 1.
    let mut x: Vec<f32> = (1..=6).map(|v| v as f32).collect();
    x.extend((1..=6).map(|v| 10.0 * v as f32));
    x.extend((1..=6).map(|v| -(v as f32)));
    x.extend([0.0, 0.0, 0.0, 0.0, 0.0, 6.0]);
    let mut g = GraphBuilder::new("gap", vec![2, 2, 3]).unwrap();
    let y = g.push("gap", Op::GlobalAvgPool, &[0]).unwrap();
    let graph = g.finish(y, false, 0).unwrap();
    assert_eq!(graph.nodes()[y].shape, vec![2]);
    assert_close(&run_naive(&graph, &x, 2), &[3.5, 35.0, -3.5, 1.0], "gap");
}

#[test]
fn mean_pool_by_hand() {
    // [s=3, d=2]: rows [1,2],[3,4],[5,12] -> column means [3, 6].
    let mut g = GraphBuilder::new("mp", vec![3, 2]).unwrap();
    let y = g.push("mp", Op::MeanPool, &[0]).unwrap();
    let graph = g.finish(y, false, 0).unwrap();
    let out = run_naive(&graph, &[1.0, 2.0, 3.0, 4.0, 5.0, 12.0], 1);
    assert_close(&out, &[3.0, 6.0], "mean pool");
}

// ---------------------------------------------------------------- softmax

fn softmax_f64(row: &[f64]) -> Vec<f64> {
    let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = row.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

#[test]
fn softmax_over_last_axis_and_stable() {
    // By hand: [0, 0, 0, 0] -> 0.25 each; [ln 1, ln 3] style rows are not
    // exact in f32, so the other rows go through the f64 definition.
    // Per sample [2, 4]: softmax runs over rows of 4 (the last axis), not
    // over all 8 values nor down columns.
    let rows: [[f32; 4]; 4] = [
        [0.0, 0.0, 0.0, 0.0],
        [1.0, 2.0, 3.0, 4.0],
        // Large logits: exp(1000) overflows f32 (and f64); only the
        // max-subtracted form stays finite. Same probabilities as row 1.
        [1000.0, 1001.0, 1002.0, 1003.0],
        [-50.0, 0.5, -0.25, 2.0],
    ];
    let x: Vec<f32> = rows.iter().flatten().copied().collect();
    let mut g = GraphBuilder::new("sm", vec![2, 4]).unwrap();
    let y = g.push("sm", Op::Softmax, &[0]).unwrap();
    let graph = g.finish(y, false, 0).unwrap();
    let got = run_naive(&graph, &x, 2);
    let want: Vec<f64> = rows
        .iter()
        .flat_map(|r| softmax_f64(&r.map(|v| v as f64)))
        .collect();
    assert_eq!(&want[..4], &[0.25; 4]);
    // e^k / (e + e^2 + e^3 + e^4) for the 1..4 row: 0.0320586, 0.0871443, 0.2368828, 0.6439143.
    assert!((want[7] - 0.643_914_3).abs() < 1e-7);
    assert_close(&got, &want, "softmax");
}

// ---------------------------------------------------------------- layer norm

#[test]
fn layer_norm_epsilon_of_the_models_is_1e_5() {
    // Where the epsilon comes from: `Op::LayerNorm` carries its own `eps`;
    // the transformer builder sets it to `builders::LAYER_NORM_EPS`, 1e-5
    // (the usual PyTorch / BERT default). Pin the literal value in the
    // transformer block's norms, not just the constant's name.
    assert_eq!(builders::LAYER_NORM_EPS, 1e-5);
    let g = models::transformer_block(1).unwrap();
    let eps: Vec<f32> = g
        .nodes()
        .iter()
        .filter_map(|n| match n.op {
            Op::LayerNorm { eps, .. } => Some(eps),
            _ => None,
        })
        .collect();
    assert_eq!(eps, vec![1e-5, 1e-5]);
}

#[test]
fn layer_norm_by_hand_uses_biased_variance_and_eps() {
    // Row [1, 2, 3, 4]: mean 2.5, biased variance (2.25+0.25+0.25+2.25)/4 = 1.25.
    // With eps = 0.25 (large on purpose, so ignoring or hard-coding eps fails):
    // 1/sqrt(1.25 + 0.25) = 1/sqrt(1.5). gamma = [1, 2, 1, 1], beta = [0, 0, 1, -1]:
    // y = [-1.5, -0.5*2, 0.5, 1.5] / sqrt(1.5) + beta.
    // (Unbiased variance 5/3 would give 1/sqrt(1.9167) and fail.)
    let mut g = GraphBuilder::new("ln", vec![4]).unwrap();
    let y = g
        .push(
            "ln",
            Op::LayerNorm {
                gamma: tensor(vec![4], vec![1.0, 2.0, 1.0, 1.0]),
                beta: tensor(vec![4], vec![0.0, 0.0, 1.0, -1.0]),
                eps: 0.25,
            },
            &[0],
        )
        .unwrap();
    let graph = g.finish(y, false, 0).unwrap();
    let r = 1.0 / 1.5f64.sqrt();
    assert_close(
        &run_naive(&graph, &[1.0, 2.0, 3.0, 4.0], 1),
        &[-1.5 * r, -r, 0.5 * r + 1.0, 1.5 * r - 1.0],
        "layer norm by hand",
    );
}

#[test]
fn layer_norm_matches_definition_per_row_and_batch() {
    // Per sample [3, 5]: three rows of 5 normalised separately, batch 2, eps
    // 1e-5 as the models use. One row has a large common offset (mean far
    // from 0, tiny spread): the definition in f64 is exact there.
    let (batch, s, d) = (2, 3, 5);
    let eps = 1e-5f32;
    let gamma = vals(d, 80);
    let beta = vals(d, 81);
    let mut x = vals(batch * s * d, 82);
    for (j, v) in x[5..10].iter_mut().enumerate() {
        *v = 1000.0 + 0.125 * j as f32;
    }
    let mut g = GraphBuilder::new("ln", vec![s, d]).unwrap();
    let y = g
        .push(
            "ln",
            Op::LayerNorm {
                gamma: tensor(vec![d], gamma.clone()),
                beta: tensor(vec![d], beta.clone()),
                eps,
            },
            &[0],
        )
        .unwrap();
    let graph = g.finish(y, false, 0).unwrap();
    let mut want = Vec::new();
    for row in x.chunks(d) {
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / d as f64;
        let inv = 1.0 / (var + eps as f64).sqrt();
        for j in 0..d {
            want.push((row[j] as f64 - mean) * inv * gamma[j] as f64 + beta[j] as f64);
        }
    }
    assert_close(&run_naive(&graph, &x, batch), &want, "layer norm");
}

// ---------------------------------------------------------------- activations

/// erf by its Maclaurin series (enough terms for |x| <= 3 in f64).
fn erf(x: f64) -> f64 {
    let mut sum = 0.0;
    let mut term = x; // (-1)^n x^(2n+1) / n!
    for n in 0..80 {
        sum += term / (2 * n + 1) as f64;
        term *= -x * x / (n + 1) as f64;
    }
    2.0 / std::f64::consts::PI.sqrt() * sum
}

fn gelu_tanh(x: f64) -> f64 {
    let c = (2.0 / std::f64::consts::PI).sqrt();
    0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
}

fn gelu_erf(x: f64) -> f64 {
    0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

const ACT_INPUTS: [f32; 10] = [-3.0, -2.0, -1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 2.0, 3.0];

fn run_activation(a: Activation) -> Vec<f32> {
    // Per sample [5], batch 2: the ten inputs above.
    let mut g = GraphBuilder::new("act", vec![5]).unwrap();
    let y = g.push("act", Op::Activation(a), &[0]).unwrap();
    let graph = g.finish(y, false, 0).unwrap();
    run_naive(&graph, &ACT_INPUTS, 2)
}

#[test]
fn gelu_is_the_tanh_approximation() {
    // src/act.rs documents: "GELU uses the tanh approximation everywhere":
    // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
    assert!((erf(1.0) - 0.842_700_792_949_715).abs() < 1e-14);
    // Known values: tanh form GELU(1) = 0.8411919906, erf form 0.8413447461.
    assert!((gelu_tanh(1.0) - 0.841_191_990_6).abs() < 1e-9);
    assert!((gelu_erf(1.0) - 0.841_344_746_1).abs() < 1e-9);
    let got = run_activation(Activation::Gelu);
    let want: Vec<f64> = ACT_INPUTS.iter().map(|&x| gelu_tanh(x as f64)).collect();
    assert_close(&got, &want, "gelu (tanh form)");
    // The choice is visible: where the erf form differs by
    // more than 1e-4 (1.5e-4 at x = 1), the output must not match it.
    let mut checked = 0;
    for (&x, &g) in ACT_INPUTS.iter().zip(&got) {
        let gap = (gelu_tanh(x as f64) - gelu_erf(x as f64)).abs();
        if gap > 1e-4 {
            assert!(
                (g as f64 - gelu_erf(x as f64)).abs() > 5e-5,
                "gelu({x}) = {g} matches the erf form"
            );
            checked += 1;
        }
    }
    assert!(checked >= 2, "no input tells the two GELU forms apart");
}

#[test]
fn sigmoid_tanh_relu_by_definition() {
    // sigmoid(0) = 0.5, tanh(0) = 0, relu(-x) = 0 by hand; the rest from f64.
    let sig = run_activation(Activation::Sigmoid);
    let th = run_activation(Activation::Tanh);
    let relu = run_activation(Activation::Relu);
    assert_eq!(sig[4], 0.5);
    assert_eq!(th[4], 0.0);
    let xs = ACT_INPUTS.map(|v| v as f64);
    let want_sig: Vec<f64> = xs.iter().map(|x| 1.0 / (1.0 + (-x).exp())).collect();
    let want_tanh: Vec<f64> = xs.iter().map(|x| x.tanh()).collect();
    let want_relu: Vec<f64> = xs.iter().map(|x| x.max(0.0)).collect();
    // sigmoid(1) = 0.7310585786, tanh(1) = 0.7615941560 (tables).
    assert!((want_sig[7] - 0.731_058_578_6).abs() < 1e-9);
    assert!((want_tanh[7] - 0.761_594_156_0).abs() < 1e-9);
    assert_close(&sig, &want_sig, "sigmoid");
    assert_close(&th, &want_tanh, "tanh");
    assert_close(&relu, &want_relu, "relu");
}

// ---------------------------------------------------------------- add, mul, scale, bias

#[test]
fn residual_add_by_hand() {
    // x [2] -> d = x W (W = [[1, 2], [3, 4]], no bias) -> r = x + d.
    // x = [1, -1]: d = [1-3, 2-4] = [-2, -2], r = [-1, -3].
    // x = [0.5, 2]: d = [0.5+6, 1+8] = [6.5, 9], r = [7, 11].
    let mut g = GraphBuilder::new("res", vec![2]).unwrap();
    let d = g
        .push(
            "fc",
            Op::Dense {
                weight: tensor(vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]),
                bias: None,
            },
            &[0],
        )
        .unwrap();
    let r = g.push("res", Op::Add, &[0, d]).unwrap();
    let graph = g.finish(r, false, 0).unwrap();
    assert_close(
        &run_naive(&graph, &[1.0, -1.0, 0.5, 2.0], 2),
        &[-1.0, -3.0, 7.0, 11.0],
        "residual add",
    );
}

#[test]
fn constants_broadcast_over_the_batch() {
    // A constant holds one sample: y = (x + c) * m - with c = [1, 2, 3],
    // m = [2, 0, -1] - applies the same c and m to every sample, then
    // bias_add [0.5, 0.5, 0.5] and scale 0.5.
    // x0 = [1, 1, 1]: (2, 3, 4) * m = (4, 0, -4) + 0.5 = (4.5, 0.5, -3.5) * 0.5 = (2.25, 0.25, -1.75)
    // x1 = [0, -2, 4]: (1, 0, 7) * m = (2, 0, -7) + 0.5 = (2.5, 0.5, -6.5) * 0.5 = (1.25, 0.25, -3.25)
    let mut g = GraphBuilder::new("bc", vec![3]).unwrap();
    let c = g
        .push("c", Op::Constant(tensor(vec![3], vec![1.0, 2.0, 3.0])), &[])
        .unwrap();
    let m = g
        .push(
            "m",
            Op::Constant(tensor(vec![3], vec![2.0, 0.0, -1.0])),
            &[],
        )
        .unwrap();
    let s = g.push("add", Op::Add, &[0, c]).unwrap();
    let p = g.push("mul", Op::Mul, &[s, m]).unwrap();
    let b = g
        .push(
            "bias",
            Op::BiasAdd {
                bias: tensor(vec![3], vec![0.5; 3]),
            },
            &[p],
        )
        .unwrap();
    let y = g.push("scale", Op::Scale(0.5), &[b]).unwrap();
    let graph = g.finish(y, false, 0).unwrap();
    assert_close(
        &run_naive(&graph, &[1.0, 1.0, 1.0, 0.0, -2.0, 4.0], 2),
        &[2.25, 0.25, -1.75, 1.25, 0.25, -3.25],
        "constants",
    );
}

// ---------------------------------------------------------------- reshape / flatten

#[test]
fn flatten_is_row_major_chw() {
    // [c=2, h=2, w=3] flattened to [12] is the NCHW order: element
    // (c, y, x) lands at 6c + 3y + x. A dense layer after the flatten with
    // W[p, 0] = 1 only at p = 6*1 + 3*0 + 2 = 8 reads x(c=1, y=0, x=2), and
    // W[p, 1] = p reads sum_p p * x[p].
    let mut w = vec![0.0f32; 24];
    w[8 * 2] = 1.0;
    for p in 0..12 {
        w[p * 2 + 1] = p as f32;
    }
    let mut g = GraphBuilder::new("flat", vec![2, 2, 3]).unwrap();
    let f = g.push("flatten", Op::Reshape(vec![12]), &[0]).unwrap();
    let y = g
        .push(
            "fc",
            Op::Dense {
                weight: tensor(vec![12, 2], w),
                bias: None,
            },
            &[f],
        )
        .unwrap();
    let graph = g.finish(y, false, 0).unwrap();
    assert_eq!(graph.nodes()[f].shape, vec![12]);
    // Sample 0: x[p] = p + 1 -> out0 = x[8] = 9, out1 = sum p (p+1) = 506 + 66 = 572.
    // Sample 1: x[p] = -(p) -> out0 = -8, out1 = -sum p^2 = -506.
    let mut x: Vec<f32> = (1..=12).map(|v| v as f32).collect();
    x.extend((0..12).map(|v| -(v as f32)));
    assert_close(
        &run_naive(&graph, &x, 2),
        &[9.0, 572.0, -8.0, -506.0],
        "flatten",
    );
}

#[test]
fn reshape_regroups_rows() {
    // [3, 4] reshaped to [2, 6] keeps the data and changes what "last axis"
    // means: the softmax after it normalises consecutive groups of 6.
    let x = vals(2 * 12, 90);
    let mut g = GraphBuilder::new("rs", vec![3, 4]).unwrap();
    let r = g.push("reshape", Op::Reshape(vec![2, 6]), &[0]).unwrap();
    let y = g.push("sm", Op::Softmax, &[r]).unwrap();
    let graph = g.finish(y, false, 0).unwrap();
    let want: Vec<f64> = x
        .chunks(6)
        .flat_map(|r| softmax_f64(&r.iter().map(|&v| v as f64).collect::<Vec<_>>()))
        .collect();
    assert_close(&run_naive(&graph, &x, 2), &want, "reshape + softmax");

    // Reshape alone is the identity on the data.
    let mut g = GraphBuilder::new("rs", vec![3, 4]).unwrap();
    let r = g.push("reshape", Op::Reshape(vec![2, 6]), &[0]).unwrap();
    let graph = g.finish(r, false, 0).unwrap();
    assert_eq!(run_naive(&graph, &x, 2), x);
}

// ---------------------------------------------------------------- attention

#[test]
fn attention_scores_by_hand() {
    // q = k = x = [[1, 2], [3, 4]] (s = 2, d = 2).
    // heads = 1: scale 1/sqrt(2); x x^T = [[5, 11], [11, 25]].
    // heads = 2: d_head = 1, scale 1/sqrt(1) = 1;
    //   head 0 (column 0 = [1, 3]): [[1, 3], [3, 9]]
    //   head 1 (column 1 = [2, 4]): [[4, 8], [8, 16]]
    // (A scale of 1/sqrt(d) instead of 1/sqrt(d / heads) would fail heads = 2.)
    let x = [1.0, 2.0, 3.0, 4.0];
    let r = 1.0 / 2f64.sqrt();
    for (heads, want) in [
        (1, vec![5.0 * r, 11.0 * r, 11.0 * r, 25.0 * r]),
        (2, vec![1.0, 3.0, 3.0, 9.0, 4.0, 8.0, 8.0, 16.0]),
    ] {
        let mut g = GraphBuilder::new("att", vec![2, 2]).unwrap();
        let s = g
            .push("scores", Op::AttentionScores { heads }, &[0, 0])
            .unwrap();
        let graph = g.finish(s, false, 0).unwrap();
        assert_eq!(graph.nodes()[s].shape, vec![heads, 2, 2]);
        assert_close(
            &run_naive(&graph, &x, 1),
            &want,
            &format!("scores heads {heads}"),
        );
    }
}

#[test]
fn attention_context_by_hand() {
    // x = [[1, 2], [3, 4]], heads 2 (d_head 1, scale 1): scores
    // head 0 [[1,3],[3,9]], head 1 [[4,8],[8,16]] (see above). Softmax of a
    // row [u, t] is [1/(1+e^(t-u)), 1 - that]:
    //   head 0 row 0: [e^1, e^3] / (e^1 + e^3) = [1/(1+e^2), e^2/(1+e^2)]
    // v = x: context[i, h] = sum_j p[h, i, j] * x[j, h].
    // Written with a = 1/(1+e^2), b = 1/(1+e^6), c = 1/(1+e^4), e = 1/(1+e^8):
    //   head 0 row 0: a*1 + (1-a)*3; row 1: b*1 + (1-b)*3
    //   head 1 row 0: c*2 + (1-c)*4; row 1: e*2 + (1-e)*4
    let x = [1.0, 2.0, 3.0, 4.0];
    let mut g = GraphBuilder::new("att", vec![2, 2]).unwrap();
    let s = g
        .push("scores", Op::AttentionScores { heads: 2 }, &[0, 0])
        .unwrap();
    let p = g.push("softmax", Op::Softmax, &[s]).unwrap();
    let c = g
        .push("context", Op::AttentionContext { heads: 2 }, &[p, 0])
        .unwrap();
    let graph = g.finish(c, false, 0).unwrap();
    let sig = |t: f64| 1.0 / (1.0 + t.exp());
    let (a, b, cc, e) = (sig(2.0), sig(6.0), sig(4.0), sig(8.0));
    let want = [
        a + (1.0 - a) * 3.0,
        cc * 2.0 + (1.0 - cc) * 4.0,
        b + (1.0 - b) * 3.0,
        e * 2.0 + (1.0 - e) * 4.0,
    ];
    assert_close(&run_naive(&graph, &x, 1), &want, "context by hand");
}

/// f64 multi-head self-attention from the definition on one sample:
/// Q = x Wq + bq etc., per head softmax(Q_h K_h^T / sqrt(d_h)) V_h, heads
/// concatenated along the feature axis.
fn attention_f64(
    x: &[f32],
    s: usize,
    d: usize,
    heads: usize,
    w: [&[f32]; 3],
    b: [&[f32]; 3],
) -> (Vec<f64>, Vec<f64>) {
    let proj = |wt: &[f32], bias: &[f32]| -> Vec<f64> {
        let mut out = vec![0.0; s * d];
        for i in 0..s {
            for j in 0..d {
                let mut acc = bias[j] as f64;
                for p in 0..d {
                    acc += x[i * d + p] as f64 * wt[p * d + j] as f64;
                }
                out[i * d + j] = acc;
            }
        }
        out
    };
    let (q, k, v) = (proj(w[0], b[0]), proj(w[1], b[1]), proj(w[2], b[2]));
    let dh = d / heads;
    let mut scores = vec![0.0; heads * s * s];
    let mut ctx = vec![0.0; s * d];
    for h in 0..heads {
        for i in 0..s {
            let row: Vec<f64> = (0..s)
                .map(|j| {
                    (0..dh)
                        .map(|t| q[i * d + h * dh + t] * k[j * d + h * dh + t])
                        .sum::<f64>()
                        / (dh as f64).sqrt()
                })
                .collect();
            scores[(h * s + i) * s..(h * s + i + 1) * s].copy_from_slice(&row);
            let p = softmax_f64(&row);
            for t in 0..dh {
                ctx[i * d + h * dh + t] = (0..s).map(|j| p[j] * v[j * d + h * dh + t]).sum();
            }
        }
    }
    (scores, ctx)
}

#[test]
fn attention_matches_definition_with_projections_heads_and_batch() {
    // s = 3, d = 4, 2 heads (d_head 2), batch 2, with Q/K/V projections that
    // have biases. The scores and the context are checked separately.
    let (batch, s, d, heads) = (2, 3, 4, 2);
    let ws: Vec<Vec<f32>> = (0..3).map(|i| vals(d * d, 100 + i)).collect();
    let bs: Vec<Vec<f32>> = (0..3).map(|i| vals(d, 110 + i)).collect();
    let x = vals(batch * s * d, 120);
    let build = |with_context: bool| -> Graph {
        let mut g = GraphBuilder::new("att", vec![s, d]).unwrap();
        let mut proj = Vec::new();
        for (i, name) in ["q", "k", "v"].iter().enumerate() {
            let op = Op::Dense {
                weight: tensor(vec![d, d], ws[i].clone()),
                bias: Some(tensor(vec![d], bs[i].clone())),
            };
            proj.push(g.push(name, op, &[0]).unwrap());
        }
        let sc = g
            .push("scores", Op::AttentionScores { heads }, &[proj[0], proj[1]])
            .unwrap();
        if !with_context {
            return g.finish(sc, false, 0).unwrap();
        }
        let p = g.push("softmax", Op::Softmax, &[sc]).unwrap();
        let c = g
            .push("context", Op::AttentionContext { heads }, &[p, proj[2]])
            .unwrap();
        g.finish(c, false, 0).unwrap()
    };
    let (mut want_scores, mut want_ctx) = (Vec::new(), Vec::new());
    for n in 0..batch {
        let (sc, ctx) = attention_f64(
            &x[n * s * d..(n + 1) * s * d],
            s,
            d,
            heads,
            [&ws[0], &ws[1], &ws[2]],
            [&bs[0], &bs[1], &bs[2]],
        );
        want_scores.extend(sc);
        want_ctx.extend(ctx);
    }
    assert_close(
        &run_naive(&build(false), &x, batch),
        &want_scores,
        "attention scores",
    );
    assert_close(
        &run_naive(&build(true), &x, batch),
        &want_ctx,
        "attention context",
    );
}

// ---------------------------------------------------------------- a small convnet end to end

#[test]
fn small_convnet_end_to_end_matches_definition() {
    // conv 3x3 stride 2 pad 1 (2 -> 3 channels) + ReLU -> depthwise 3x3 pad 1
    // -> pointwise 3 -> 2 -> global average pool -> dense 2 -> 2, on a
    // non-square 5x6 image, batch 2: every layer's layout feeds the next.
    let (batch, c, h, w) = (2, 2, 5, 6);
    let cw = vals(3 * c * 9, 130);
    let cb = vals(3, 131);
    let dw = vals(3 * 9, 132);
    let pw = vals(2 * 3, 133);
    let fw = vals(2 * 2, 134);
    let fb = vals(2, 135);
    let x = vals(batch * c * h * w, 136);
    let mut g = GraphBuilder::new("cn", vec![c, h, w]).unwrap();
    let ops = [
        Op::Conv2d {
            weight: tensor(vec![3, c, 3, 3], cw.clone()),
            bias: Some(tensor(vec![3], cb.clone())),
            stride: 2,
            padding: 1,
        },
        Op::Activation(Activation::Relu),
        Op::DepthwiseConv2d {
            weight: tensor(vec![3, 3, 3], dw.clone()),
            bias: None,
            stride: 1,
            padding: 1,
        },
        Op::PointwiseConv {
            weight: tensor(vec![2, 3], pw.clone()),
            bias: None,
        },
        Op::GlobalAvgPool,
        Op::Dense {
            weight: tensor(vec![2, 2], fw.clone()),
            bias: Some(tensor(vec![2], fb.clone())),
        },
    ];
    let mut y = 0;
    for (i, op) in ops.into_iter().enumerate() {
        y = g.push(&format!("n{i}"), op, &[y]).unwrap();
    }
    let graph = g.finish(y, false, 0).unwrap();

    let (oh, ow) = (out_size(h, 3, 2, 1), out_size(w, 3, 2, 1)); // 3 x 3
    let mut want = Vec::new();
    for n in 0..batch {
        let xs = &x[n * c * h * w..(n + 1) * c * h * w];
        let a: Vec<f64> = conv2d_f64(xs, 1, (c, h, w), &cw, (3, 3, 3), Some(&cb), 2, 1)
            .into_iter()
            .map(|v| v.max(0.0))
            .collect();
        // Depthwise with stride 1 pad 1 keeps oh x ow.
        let mut d = vec![0.0f64; 3 * oh * ow];
        for ch in 0..3 {
            for oy in 0..oh {
                for ox in 0..ow {
                    for ky in 0..3 {
                        for kx in 0..3 {
                            if let (Some(iy), Some(ix)) =
                                (tap(oy, ky, 1, 1, oh), tap(ox, kx, 1, 1, ow))
                            {
                                d[(ch * oh + oy) * ow + ox] +=
                                    dw[(ch * 3 + ky) * 3 + kx] as f64 * a[(ch * oh + iy) * ow + ix];
                            }
                        }
                    }
                }
            }
        }
        let hw = oh * ow;
        let pooled: Vec<f64> = (0..2)
            .map(|o| {
                (0..hw)
                    .map(|p| {
                        (0..3)
                            .map(|i| pw[o * 3 + i] as f64 * d[i * hw + p])
                            .sum::<f64>()
                    })
                    .sum::<f64>()
                    / hw as f64
            })
            .collect();
        for j in 0..2 {
            want.push(
                fb[j] as f64
                    + (0..2)
                        .map(|p| pooled[p] * fw[p * 2 + j] as f64)
                        .sum::<f64>(),
            );
        }
    }
    assert_close(&run_naive(&graph, &x, batch), &want, "small convnet");
}
