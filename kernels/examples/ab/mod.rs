//! Shared by the A/B examples (`tile_ab`, `zeros_ab`): the median of timed
//! runs, and one variant's cell of a round's line.

use std::time::Instant;

/// Median wall time in microseconds of `runs` calls of `run`; `before` runs
/// untimed ahead of each (an idle gap, say).
pub fn median_us(runs: usize, mut before: impl FnMut(), mut run: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            before();
            let start = Instant::now();
            run();
            start.elapsed().as_nanos() as f64 / 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// `"  label 12.3 us (0.987x)"`: the ratio is to the round's first median,
/// which the round's first cell sets.
pub fn cell(label: &str, median: f64, first: &mut Option<f64>) -> String {
    let reference = *first.get_or_insert(median);
    format!("  {label} {median:.1} us ({:.3}x)", reference / median)
}
