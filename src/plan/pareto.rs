//! Pareto front over objectives that are all minimised (cost, p99 latency, accuracy loss).

/// Indices of the points no other point dominates. A point dominates another when it is
/// no worse in every objective and strictly better in at least one. Points with a NaN
/// objective are never on the front. The result is in ascending index order.
pub fn pareto_front<const N: usize>(points: &[[f64; N]]) -> Vec<usize> {
    (0..points.len())
        .filter(|&i| {
            let p = &points[i];
            !p.iter().any(|v| v.is_nan()) && !points.iter().any(|q| dominates(q, p))
        })
        .collect()
}

/// Whether `a` is no worse than `b` in every objective and strictly better in one.
pub fn dominates<const N: usize>(a: &[f64; N], b: &[f64; N]) -> bool {
    a.iter().zip(b).all(|(x, y)| x <= y) && a.iter().zip(b).any(|(x, y)| x < y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dominated_points_are_excluded() {
        let pts = [[1.0, 5.0], [2.0, 2.0], [3.0, 3.0], [5.0, 1.0], [1.0, 5.0]];
        // [3,3] is dominated by [2,2]; the duplicate [1,5] points do not dominate each other.
        assert_eq!(pareto_front(&pts), vec![0, 1, 3, 4]);
    }

    #[test]
    fn nan_points_are_never_on_the_front() {
        let pts = [[f64::NAN, 0.0], [1.0, 1.0]];
        assert_eq!(pareto_front(&pts), vec![1]);
    }

    proptest! {
        #[test]
        fn front_is_non_dominated_and_complete(raw in proptest::collection::vec((0u8..20, 0u8..20, 0u8..5), 1..40)) {
            let pts: Vec<[f64; 3]> = raw.iter().map(|&(a, b, c)| [a as f64, b as f64, c as f64]).collect();
            let front = pareto_front(&pts);
            prop_assert!(!front.is_empty());
            for (i, p) in pts.iter().enumerate() {
                let dominated = pts.iter().any(|q| q.iter().zip(p).all(|(x, y)| x <= y) && q.iter().zip(p).any(|(x, y)| x < y));
                prop_assert_eq!(front.contains(&i), !dominated);
            }
        }
    }
}
