//! A discrete schedule search space: named dimensions, each a list of values.

use std::collections::BTreeMap;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Concrete parameter values of one configuration, by dimension name.
pub type Params = BTreeMap<String, i64>;

/// One tunable dimension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dimension {
    pub name: String,
    /// Candidate values in increasing order (neighbours are adjacent values).
    pub values: Vec<i64>,
}

impl Dimension {
    pub fn new(name: &str, values: &[i64]) -> Dimension {
        Dimension {
            name: name.to_string(),
            values: values.to_vec(),
        }
    }
}

/// A configuration: one value index per dimension.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Config(pub Vec<usize>);

/// The search space with an optional validity constraint.
#[derive(Debug, Clone)]
pub struct SearchSpace {
    pub name: String,
    pub dims: Vec<Dimension>,
    pub valid: Option<fn(&Params) -> bool>,
}

impl SearchSpace {
    pub fn new(name: &str, dims: Vec<Dimension>) -> SearchSpace {
        SearchSpace {
            name: name.to_string(),
            dims,
            valid: None,
        }
    }

    pub fn with_constraint(mut self, valid: fn(&Params) -> bool) -> SearchSpace {
        self.valid = Some(valid);
        self
    }

    /// Number of configurations before the constraint.
    pub fn raw_size(&self) -> usize {
        self.dims
            .iter()
            .map(|d| d.values.len())
            .fold(1usize, usize::saturating_mul)
    }

    pub fn params(&self, c: &Config) -> Params {
        self.dims
            .iter()
            .zip(&c.0)
            .filter_map(|(d, &i)| d.values.get(i).map(|v| (d.name.clone(), *v)))
            .collect()
    }

    /// The configuration with these parameter values, if every value is in the space.
    pub fn config_of(&self, p: &Params) -> Option<Config> {
        let idx = self
            .dims
            .iter()
            .map(|d| {
                let v = p.get(&d.name)?;
                d.values.iter().position(|x| x == v)
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Config(idx))
    }

    pub fn is_valid(&self, c: &Config) -> bool {
        c.0.len() == self.dims.len()
            && c.0.iter().zip(&self.dims).all(|(&i, d)| i < d.values.len())
            && self.valid.is_none_or(|f| f(&self.params(c)))
    }

    /// Every valid configuration (for small spaces and the exhaustive check).
    pub fn enumerate(&self) -> Vec<Config> {
        let mut out = Vec::new();
        if self.dims.iter().any(|d| d.values.is_empty()) {
            return out;
        }
        let mut idx = vec![0usize; self.dims.len()];
        loop {
            let c = Config(idx.clone());
            if self.is_valid(&c) {
                out.push(c);
            }
            // Odometer increment.
            let mut d = 0;
            loop {
                if d == idx.len() {
                    return out;
                }
                idx[d] += 1;
                if idx[d] < self.dims[d].values.len() {
                    break;
                }
                idx[d] = 0;
                d += 1;
            }
        }
    }

    /// A uniformly random valid configuration (rejection sampling, bounded).
    pub fn random<R: Rng>(&self, rng: &mut R) -> Option<Config> {
        if self.dims.iter().any(|d| d.values.is_empty()) {
            return None;
        }
        for _ in 0..10_000 {
            let c = Config(
                self.dims
                    .iter()
                    .map(|d| rng.random_range(0..d.values.len()))
                    .collect(),
            );
            if self.is_valid(&c) {
                return Some(c);
            }
        }
        None
    }

    /// A neighbour: one (sometimes two) dimensions moved to an adjacent value,
    /// or occasionally to any value.
    pub fn mutate<R: Rng>(&self, c: &Config, rng: &mut R) -> Config {
        let mut out = c.clone();
        if self.dims.is_empty() {
            return out;
        }
        let moves = if rng.random_bool(0.3) { 2 } else { 1 };
        for _ in 0..moves {
            let d = rng.random_range(0..self.dims.len());
            let len = self.dims[d].values.len();
            if len <= 1 {
                continue;
            }
            let cur = out.0[d];
            out.0[d] = if rng.random_bool(0.2) {
                rng.random_range(0..len)
            } else if cur == 0 || (cur + 1 < len && rng.random_bool(0.5)) {
                cur + 1
            } else {
                cur - 1
            };
        }
        out
    }

    /// Model features: log2 of each positive value (raw value otherwise).
    pub fn features(&self, c: &Config, shape: &[usize]) -> Vec<f64> {
        let mut f: Vec<f64> = self
            .dims
            .iter()
            .zip(&c.0)
            .map(|(d, &i)| {
                let v = d.values.get(i).copied().unwrap_or(0);
                if v > 0 {
                    (v as f64).log2()
                } else {
                    v as f64
                }
            })
            .collect();
        f.extend(shape.iter().map(|&s| (s.max(1) as f64).log2()));
        f
    }
}
