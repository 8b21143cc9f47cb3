//! A request that needs `k` predictions (a photo library of 5,000) is one
//! batch of `k` samples while that batch was measured; beyond the largest
//! measured batch a device or server runs it as chunks of its most
//! efficient measured batch, not as one batch extrapolated along the last
//! measured segment (which charged the least efficient batch's slope to
//! every sample). The chunks are independent runs: the request's median is
//! their summed mean and its p99 spreads as `sqrt(chunks)`, not `chunks`.
//!
//! Expected values were computed outside the code (Python, `statistics`):
//! a chunk is the lognormal with `sigma = ln(p99 / median) / 2.326`, mean
//! `median x exp(sigma^2 / 2)`, sd `mean x sqrt(exp(sigma^2) - 1)`; `m`
//! chunks have median `m x mean` and p99 `m x mean + 2.326 x sqrt(m) x sd`.

use workbench::plan::ComputeProfile;
use workbench::report::FigureSource;
use workbench::sim::ProfilePoint;
use workbench_kernels::{BackendKind, Precision};

/// Medians by batch size; p99 is 1.5 times the median.
fn profile(medians: &[(u32, f64)]) -> ComputeProfile {
    let fits: Vec<(u32, f64, f64)> = medians.iter().map(|&(b, m)| (b, m, 1.5 * m)).collect();
    profile_with_p99(&fits)
}

/// (batch size, median, p99) by batch size.
fn profile_with_p99(fits: &[(u32, f64, f64)]) -> ComputeProfile {
    ComputeProfile {
        variant: "tagger".into(),
        backend: BackendKind::Tiled,
        precision: Precision::F32,
        target: "phone".into(),
        source: FigureSource::Measured,
        points: fits
            .iter()
            .map(|&(batch_size, median_s, p99_s)| ProfilePoint {
                batch_size,
                median_s,
                p99_s,
            })
            .collect(),
        infeasible: None,
    }
}

/// Per sample: 10 ms at batch 1, 2.5 ms at 16 (the most efficient), 4.7 ms
/// at 64 (its activations spill a cache).
fn spilling() -> ComputeProfile {
    profile(&[(1, 0.010), (16, 0.040), (64, 0.300)])
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

#[test]
fn a_request_past_the_largest_batch_runs_as_chunks_of_the_most_efficient() {
    let p = spilling();
    assert_eq!(p.most_efficient_batch(|_| true), 16);
    let one = p.per_request(5_000);
    // ceil(5000 / 16) = 313 independent chunks of 40 ms (p99 60 ms): 12.7 s
    // (the last segment's slope, 5.4 ms a sample, made it 27 s)
    assert!(
        close(one.median_s(1), 12.711_617_162_293_424),
        "{}",
        one.median_s(1)
    );
    assert!(
        close(one.p99_s(1), 13.005_171_640_916_096),
        "{}",
        one.p99_s(1)
    );
    // a batch of 16 such requests: 80,000 samples, 5,000 chunks
    assert!(
        close(one.median_s(16), 203.060_977_033_441_28),
        "{}",
        one.median_s(16)
    );
    assert!(
        close(one.p99_s(16), 204.234_256_699_348_66),
        "{}",
        one.p99_s(16)
    );
}

/// When the largest batch is the most efficient, chunks are of it, the last
/// one rounded up: 5,000 samples are 79 batches of 64.
#[test]
fn chunks_round_up_to_whole_batches() {
    let p = profile(&[(1, 0.001), (16, 0.004), (64, 0.010)]);
    assert_eq!(p.most_efficient_batch(|_| true), 64);
    let one = p.per_request(5_000);
    assert!(
        close(one.median_s(1), 0.802_090_859_282_093_3),
        "{}",
        one.median_s(1)
    );
    assert!(
        close(one.p99_s(1), 0.838_960_601_073_315_3),
        "{}",
        one.p99_s(1)
    );
}

/// 5,000 independent runs of a 0.15 ms (p99 0.65 ms) batch: their sum's p99
/// is 0.94 s (a seeded Monte Carlo of 2,000 such sums gave median 0.914 s,
/// p99 0.936 s), not 5,000 x 0.65 ms = 3.25 s as if every run were slow at
/// once; and the spread above the median doubles, not quadruples, when the
/// request is four times as large.
#[test]
fn the_spread_of_many_chunks_grows_as_their_square_root() {
    let p = profile_with_p99(&[(1, 0.15e-3, 0.65e-3)]);
    let five_thousand = p.per_request(5_000);
    let median = five_thousand.median_s(1);
    let p99 = five_thousand.p99_s(1);
    assert!(close(median, 0.914_816_126_367_633_1), "{median}");
    assert!(close(p99, 0.935_836_730_464_136_2), "{p99}");
    assert!(p99 < 1.0, "{p99}");
    let twenty_thousand = p.per_request(20_000);
    assert!(close(twenty_thousand.median_s(1), 3.659_264_505_470_532_4));
    assert!(close(twenty_thousand.p99_s(1), 3.701_305_713_663_538_6));
    let spread_ratio = (twenty_thousand.p99_s(1) - twenty_thousand.median_s(1)) / (p99 - median);
    assert!((spread_ratio - 2.0).abs() < 1e-9, "{spread_ratio}");
}

/// A fit with no spread (p99 = median) stays exact: chunks add up.
#[test]
fn constant_chunks_add_up_exactly() {
    let p = profile_with_p99(&[(1, 0.001, 0.001), (8, 0.004, 0.004)]);
    let one = p.per_request(100);
    // ceil(100 / 8) = 13 chunks of 4 ms
    assert!(close(one.median_s(1), 13.0 * 0.004), "{}", one.median_s(1));
    assert!(close(one.p99_s(1), 13.0 * 0.004), "{}", one.p99_s(1));
}

/// Within the measured range a request is one interpolated batch, as before;
/// one prediction a request leaves the profile as it is.
#[test]
fn within_the_measured_range_a_request_is_one_batch() {
    let p = spilling();
    assert_eq!(p.per_request(1), p);
    assert_eq!(p.per_request(0), p);
    let four = p.per_request(4);
    for batch in [1, 16] {
        let samples = batch * 4;
        assert!(close(four.median_s(batch), p.median_s(samples)));
        assert!(close(four.p99_s(batch), p.p99_s(samples)));
    }
    // the measured points keep their batch sizes
    let sizes: Vec<u32> = four.points.iter().map(|x| x.batch_size).collect();
    assert_eq!(sizes, vec![1, 16, 64]);
}

/// More predictions never take less time, across the largest measured batch
/// too (65 samples as five chunks of 16 would undercut one batch of 64), and
/// the p99 stays at or above the median (to rounding: a measured point read
/// back through interpolation can move in its last bit).
#[test]
fn time_grows_with_the_predictions_a_request_needs() {
    for p in [
        spilling(),
        profile(&[(1, 0.001), (16, 0.004), (64, 0.010)]),
        profile(&[(1, 0.002), (8, 0.003), (32, 0.020), (64, 0.030)]),
    ] {
        for batch in [1, 8, 16, 64] {
            let mut previous = (0.0, 0.0);
            for k in 1..=600u64 {
                let per = p.per_request(k);
                let now = (per.median_s(batch), per.p99_s(batch));
                let rounding = 1.0 - 1e-12;
                assert!(
                    now.0 >= previous.0 * rounding && now.1 >= previous.1 * rounding,
                    "batch {batch}, k {k}: {now:?} after {previous:?}"
                );
                assert!(now.1 >= now.0, "batch {batch}, k {k}: {now:?}");
                previous = now;
            }
        }
    }
}
