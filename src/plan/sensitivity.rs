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

/// Checks a threshold `guess` (found with a cheap, noisy `same`) with an
/// authoritative but costly `same`, and moves it until that one agrees: the
/// answer's `last_same` is 1 or a factor at which `same` held, its
/// `first_different` one at which it did not, at most `resolution` (a ratio,
/// above 1) apart; `AtLeast(f)` means `same(f)` held, with `f` the limit
/// unless `max_calls` ran out first.
///
/// It probes the guess's two ends first; when `same` disagrees with one, it
/// steps past it (away from the guess, each step twice the last, starting at
/// the guess's width) until `same` changes, then bisects on a log scale down to
/// `resolution`. A guess that was right costs two calls. `same` holds at 1 and
/// is never called there. Only the stated factors are checked: a `same` that
/// changes twice between 1 and `last_same` is not looked for.
pub fn confirm_factor(
    mut same: impl FnMut(f64) -> bool,
    guess: StableRange,
    limit_factor: f64,
    resolution: f64,
    max_calls: usize,
) -> StableRange {
    // Distance from 1 on a log scale, growing towards the limit either way.
    let direction = if limit_factor > 1.0 { 1.0 } else { -1.0 };
    let distance = |f: f64| direction * f.ln();
    let limit = distance(limit_factor);
    let factor_at = |d: f64| {
        if d >= limit {
            limit_factor
        } else {
            (direction * d).exp()
        }
    };
    let finest = resolution.ln().max(f64::EPSILON);
    let (guess_same, guess_different) = match guess {
        StableRange::AtLeast(f) => (f, f),
        StableRange::ChangesAt {
            last_same,
            first_different,
        } => (last_same, first_different),
    };
    let width = (distance(guess_different) - distance(guess_same)).max(finest);
    let mut calls = 0;
    let mut probe = |f: f64| {
        if calls >= max_calls {
            return None;
        }
        calls += 1;
        Some(same(f))
    };
    // The closest factor known to hold (1 always does) and the closest known not to.
    let mut good = 1.0_f64;
    let mut bad: Option<f64> = None;
    for f in [guess_same, guess_different] {
        let f = factor_at(distance(f));
        if bad.is_some() || distance(f) <= distance(good) {
            continue;
        }
        match probe(f) {
            Some(true) => good = f,
            Some(false) => bad = Some(f),
            None => return StableRange::AtLeast(good),
        }
    }
    let mut bad = match bad {
        // The change lies before the end that failed: step back towards 1.
        Some(mut bad) => {
            let mut step = width;
            while distance(bad) - distance(good) > step {
                let f = factor_at(distance(bad) - step);
                match probe(f) {
                    Some(true) => {
                        good = f;
                        break;
                    }
                    Some(false) => bad = f,
                    None => break,
                }
                step *= 2.0;
            }
            bad
        }
        // The change lies beyond both ends: step outwards to the limit.
        None => {
            let mut step = width;
            loop {
                if distance(good) >= limit {
                    return StableRange::AtLeast(good);
                }
                let f = factor_at((distance(good) + step).min(limit));
                match probe(f) {
                    Some(true) => good = f,
                    Some(false) => break f,
                    None => return StableRange::AtLeast(good),
                }
                step *= 2.0;
            }
        }
    };
    // Bisect what is left.
    while distance(bad) - distance(good) > finest * (1.0 + 1e-9) {
        let f = factor_at(0.5 * (distance(good) + distance(bad)));
        match probe(f) {
            Some(true) => good = f,
            Some(false) => bad = f,
            None => break,
        }
    }
    StableRange::ChangesAt {
        last_same: good,
        first_different: bad,
    }
}

/// `items.map(f)`, each item on a thread of its own (scoped, so `f` may borrow),
/// the results in the order of `items`. A panic in `f` is raised again here.
pub fn on_threads<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let f = &f;
    std::thread::scope(|scope| {
        let running: Vec<_> = items
            .into_iter()
            .map(|item| scope.spawn(move || f(item)))
            .collect();
        running
            .into_iter()
            .map(|thread| {
                thread
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// Outcome of [`stable_factor`] and [`confirm_factor`].
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
    use std::collections::BTreeSet;

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
    /// `confirm_factor` with `same` recorded: every stated factor must be one
    /// `same` was asked about and answered as stated (1 is known to hold).
    fn confirmed(
        same: impl Fn(f64) -> bool,
        guess: StableRange,
        limit: f64,
        max_calls: usize,
    ) -> (StableRange, usize) {
        let mut asked: Vec<(f64, bool)> = Vec::new();
        let range = confirm_factor(
            |f| {
                let answer = same(f);
                asked.push((f, answer));
                answer
            },
            guess,
            limit,
            1.05,
            max_calls,
        );
        assert!(asked.len() <= max_calls, "{} calls", asked.len());
        let answered = |f: f64| asked.iter().find(|(g, _)| *g == f).map(|(_, a)| *a);
        match range {
            StableRange::AtLeast(f) => assert_eq!(answered(f), Some(true), "{range:?}"),
            StableRange::ChangesAt {
                last_same,
                first_different,
            } => {
                assert!(
                    last_same == 1.0 || answered(last_same) == Some(true),
                    "{range:?} {asked:?}"
                );
                assert_eq!(answered(first_different), Some(false), "{range:?}");
            }
        }
        (range, asked.len())
    }

    fn bracket(range: StableRange) -> (f64, f64) {
        match range {
            StableRange::ChangesAt {
                last_same,
                first_different,
            } => (last_same, first_different),
            other => panic!("expected a change, got {other:?}"),
        }
    }

    const GUESS: StableRange = StableRange::ChangesAt {
        last_same: 3.1,
        first_different: 3.25,
    };

    #[test]
    fn a_right_guess_is_kept_at_two_calls() {
        let (range, calls) = confirmed(|f| f < 3.2, GUESS, 10.0, 12);
        assert_eq!(range, GUESS);
        assert_eq!(calls, 2);
    }

    #[test]
    fn a_guess_too_high_moves_down_to_the_change() {
        for truth in [1.02, 1.6, 2.9, 3.15] {
            let (range, _) = confirmed(|f| f < truth, GUESS, 10.0, 12);
            let (same, different) = bracket(range);
            assert!(same < truth && truth <= different, "{truth}: {range:?}");
            assert!(different / same <= 1.05 + 1e-9, "{truth}: {range:?}");
        }
    }

    #[test]
    fn a_guess_too_low_moves_up_to_the_change() {
        for truth in [3.3, 4.0, 9.5] {
            let (range, _) = confirmed(|f| f < truth, GUESS, 10.0, 12);
            let (same, different) = bracket(range);
            assert!(same < truth && truth <= different, "{truth}: {range:?}");
            assert!(different / same <= 1.05 + 1e-9, "{truth}: {range:?}");
        }
        // No change before the limit: stable to it.
        let (range, _) = confirmed(|f| f < 12.0, GUESS, 10.0, 12);
        assert_eq!(range, StableRange::AtLeast(10.0));
    }

    #[test]
    fn a_stable_guess_is_checked_at_the_limit() {
        let stable = StableRange::AtLeast(10.0);
        assert_eq!(
            confirmed(|_| true, stable, 10.0, 12),
            (stable, 1),
            "one call confirms it"
        );
        let (range, _) = confirmed(|f| f < 9.0, stable, 10.0, 12);
        let (same, different) = bracket(range);
        assert!(same < 9.0 && 9.0 <= different, "{range:?}");
    }

    #[test]
    fn confirms_downwards_too() {
        let guess = StableRange::ChangesAt {
            last_same: 0.4,
            first_different: 0.38,
        };
        let (range, _) = confirmed(|f| f > 0.3, guess, 0.05, 12);
        let (same, different) = bracket(range);
        assert!(same > 0.3 && 0.3 >= different, "{range:?}");
        assert!(same / different <= 1.05 + 1e-9, "{range:?}");
    }

    #[test]
    fn a_spent_budget_still_states_only_what_was_checked() {
        // Far from the guess with 3 calls: a coarse answer, but a true one.
        let (range, calls) = confirmed(|f| f < 1.3, GUESS, 10.0, 3);
        assert_eq!(calls, 3);
        let (same, different) = bracket(range);
        assert!(same < 1.3 && 1.3 <= different, "{range:?}");
        let (range, _) = confirmed(|f| f < 9.7, GUESS, 10.0, 3);
        assert!(
            matches!(range, StableRange::AtLeast(f) if f < 9.7),
            "{range:?}"
        );
    }

    /// Each item runs on a thread of its own, not the caller's, and the
    /// answers come back in the items' order, as a plain map gives them.
    #[test]
    fn on_threads_maps_each_item_on_its_own_thread_in_order() {
        let items: Vec<u64> = (0..5).map(|i| 7 + 13 * i).collect();
        let work = |x: u64| (1..=x).fold(x, |acc, k| acc.wrapping_mul(31).wrapping_add(k));
        let answers = on_threads(items.clone(), |x| (work(x), std::thread::current().id()));
        let expected: Vec<u64> = items.iter().map(|&x| work(x)).collect();
        let values: Vec<u64> = answers.iter().map(|(v, _)| *v).collect();
        assert_eq!(values, expected);
        let threads: BTreeSet<String> = answers.iter().map(|(_, t)| format!("{t:?}")).collect();
        assert_eq!(threads.len(), items.len(), "{threads:?}");
        let caller = format!("{:?}", std::thread::current().id());
        assert!(!threads.contains(&caller), "{threads:?}");
    }

    #[test]
    fn a_change_that_comes_and_goes_is_stated_where_it_was_checked() {
        // Differs between 2 and 3 only: the guess's ends hold, so the stated
        // change is the one past them (the checked points are what is promised).
        let (range, _) = confirmed(|f| !(2.0..3.0).contains(&f) && f < 5.0, GUESS, 10.0, 12);
        let (same, different) = bracket(range);
        assert!(same < 5.0 && 5.0 <= different, "{range:?}");
    }
}
