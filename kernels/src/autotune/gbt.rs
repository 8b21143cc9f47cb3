//! Gradient-boosted regression trees (squared loss), small and exact: the
//! cost model of the tuner, refitted on all trials after every round.

/// Boosting hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoostParams {
    pub trees: usize,
    pub depth: usize,
    pub learning_rate: f64,
    pub min_leaf: usize,
}

impl Default for BoostParams {
    fn default() -> Self {
        BoostParams {
            trees: 60,
            depth: 4,
            learning_rate: 0.2,
            min_leaf: 2,
        }
    }
}

#[derive(Debug, Clone)]
enum Node {
    Leaf(f64),
    Split {
        feature: usize,
        threshold: f64,
        left: usize,
        right: usize,
    },
}

#[derive(Debug, Clone)]
struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    fn predict(&self, x: &[f64]) -> f64 {
        let mut i = 0;
        loop {
            match self.nodes.get(i) {
                Some(Node::Leaf(v)) => return *v,
                Some(Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                }) => {
                    i = if x.get(*feature).copied().unwrap_or(0.0) <= *threshold {
                        *left
                    } else {
                        *right
                    }
                }
                None => return 0.0,
            }
        }
    }
}

/// A fitted ensemble.
#[derive(Debug, Clone)]
pub struct Gbt {
    base: f64,
    learning_rate: f64,
    trees: Vec<Tree>,
}

impl Gbt {
    /// Fits `y ~ f(x)`. Rows of `x` must have equal length; empty input gives a
    /// constant-zero model.
    pub fn fit(x: &[Vec<f64>], y: &[f64], p: BoostParams) -> Gbt {
        let n = x.len().min(y.len());
        let base = if n == 0 {
            0.0
        } else {
            y[..n].iter().sum::<f64>() / n as f64
        };
        let mut model = Gbt {
            base,
            learning_rate: p.learning_rate,
            trees: Vec::new(),
        };
        if n < 2 {
            return model;
        }
        let mut residual: Vec<f64> = (0..n).map(|i| y[i] - base).collect();
        let rows: Vec<usize> = (0..n).collect();
        for _ in 0..p.trees {
            let mut nodes = Vec::new();
            build(
                x,
                &residual,
                rows.clone(),
                p.depth,
                p.min_leaf.max(1),
                &mut nodes,
            );
            let tree = Tree { nodes };
            for (i, r) in residual.iter_mut().enumerate() {
                *r -= p.learning_rate * tree.predict(&x[i]);
            }
            model.trees.push(tree);
        }
        model
    }

    pub fn predict(&self, x: &[f64]) -> f64 {
        self.base + self.learning_rate * self.trees.iter().map(|t| t.predict(x)).sum::<f64>()
    }
}

/// Grows a node over `rows`, returning its index in `nodes`.
fn build(
    x: &[Vec<f64>],
    r: &[f64],
    rows: Vec<usize>,
    depth: usize,
    min_leaf: usize,
    nodes: &mut Vec<Node>,
) -> usize {
    let mean = rows.iter().map(|&i| r[i]).sum::<f64>() / rows.len().max(1) as f64;
    let me = nodes.len();
    nodes.push(Node::Leaf(mean));
    if depth == 0 || rows.len() < 2 * min_leaf {
        return me;
    }
    let features = x.get(rows[0]).map_or(0, Vec::len);
    let total: f64 = rows.iter().map(|&i| r[i]).sum();
    let count = rows.len() as f64;
    // Best split by variance reduction: maximise sl^2/nl + sr^2/nr.
    let mut best: Option<(f64, usize, f64)> = None;
    let base_score = total * total / count;
    let mut order = rows.clone();
    #[allow(clippy::needless_range_loop)] // f indexes a column across rows
    for f in 0..features {
        order.sort_by(|&a, &b| x[a][f].total_cmp(&x[b][f]));
        let mut sl = 0.0;
        for (pos, &i) in order.iter().enumerate().take(order.len() - 1) {
            sl += r[i];
            let nl = pos + 1;
            let nr = order.len() - nl;
            let (v, next) = (x[i][f], x[order[pos + 1]][f]);
            if nl < min_leaf || nr < min_leaf || v == next {
                continue;
            }
            let sr = total - sl;
            let score = sl * sl / nl as f64 + sr * sr / nr as f64 - base_score;
            if score > 1e-12 && best.is_none_or(|(s, _, _)| score > s) {
                best = Some((score, f, 0.5 * (v + next)));
            }
        }
    }
    let Some((_, feature, threshold)) = best else {
        return me;
    };
    let (lrows, rrows): (Vec<usize>, Vec<usize>) =
        rows.into_iter().partition(|&i| x[i][feature] <= threshold);
    let left = build(x, r, lrows, depth - 1, min_leaf, nodes);
    let right = build(x, r, rrows, depth - 1, min_leaf, nodes);
    nodes[me] = Node::Split {
        feature,
        threshold,
        left,
        right,
    };
    me
}
