//! How far an assumption can move before the recommendation changes.

/// Largest factor in `[1, max_factor]` (searched upwards) or smallest in `[min_factor, 1]`
/// (searched downwards) at which `same(factor)` still holds, given that it holds at 1.
/// `same` re-plans with the assumption scaled by `factor` and says whether the
/// recommendation is unchanged. The search brackets geometrically then bisects
/// `steps` times on a log scale, so it calls `same` about `log2(range) + steps` times.
pub fn stable_factor(
    mut same: impl FnMut(f64) -> bool,
    limit_factor: f64,
    steps: usize,
) -> StableRange {
    let upward = limit_factor > 1.0;
    let beyond = |f: f64| {
        if upward {
            f > limit_factor
        } else {
            f < limit_factor
        }
    };
    let mut good = 1.0_f64;
    let mut probe = if upward { 2.0 } else { 0.5 };
    // Bracket: double (or halve) until the plan changes or we pass the limit.
    let bad = loop {
        if beyond(probe) {
            if same(limit_factor) {
                return StableRange::AtLeast(limit_factor);
            }
            break limit_factor;
        }
        if same(probe) {
            good = probe;
            probe = if upward { probe * 2.0 } else { probe / 2.0 };
        } else {
            break probe;
        }
    };
    let (mut lo, mut hi) = (good.ln(), bad.ln());
    for _ in 0..steps {
        let mid = 0.5 * (lo + hi);
        if same(mid.exp()) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    StableRange::ChangesAt {
        last_same: lo.exp(),
        first_different: hi.exp(),
    }
}

/// Outcome of [`stable_factor`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StableRange {
    /// The recommendation holds all the way to the searched limit.
    AtLeast(f64),
    /// It holds up to `last_same` and differs from `first_different` on.
    ChangesAt {
        last_same: f64,
        first_different: f64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_threshold_upwards() {
        let mut calls = 0;
        let r = stable_factor(
            |f| {
                calls += 1;
                f < 3.2
            },
            10.0,
            12,
        );
        match r {
            StableRange::ChangesAt {
                last_same,
                first_different,
            } => {
                assert!(last_same < 3.2 && first_different >= 3.2);
                assert!(first_different / last_same < 1.001);
            }
            other => panic!("expected a change, got {other:?}"),
        }
        assert!(calls <= 16, "{calls} calls");
    }

    #[test]
    fn finds_the_threshold_downwards() {
        let r = stable_factor(|f| f > 0.3, 0.05, 12);
        match r {
            StableRange::ChangesAt {
                last_same,
                first_different,
            } => assert!(last_same > 0.3 && first_different <= 0.3),
            other => panic!("expected a change, got {other:?}"),
        }
    }

    #[test]
    fn reports_stable_to_the_limit() {
        assert_eq!(stable_factor(|_| true, 10.0, 8), StableRange::AtLeast(10.0));
        // Changing only exactly at the limit is found too.
        assert!(matches!(
            stable_factor(|f| f < 9.0, 10.0, 8),
            StableRange::ChangesAt { .. }
        ));
    }
}
