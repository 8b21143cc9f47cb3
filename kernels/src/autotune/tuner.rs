//! The search: random initial trials, then rounds of (fit the cost model on
//! all trials, run simulated-annealing chains over the model's predictions,
//! measure the best-predicted unmeasured candidates), then re-measure the top
//! few and commit the best to the log. A search its time budget cuts short
//! commits its best so far as provisional; the next tune of that key resumes
//! from the logged trials instead of taking it as final.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use super::gbt::{BoostParams, Gbt};
use super::log::{RecordKind, TrialRecord, TuningLog, LOG_VERSION};
use super::space::{Config, Params, SearchSpace};
use super::TuneError;

/// Times each finalist is measured again before committing.
const REMEASURE_ROUNDS: usize = 3;

/// What is being tuned: an op name and its shape (e.g. `sgemm`, `[m, n, k]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TuneKey {
    pub op: String,
    pub shape: Vec<usize>,
}

/// Stop after this many trials or this many seconds, whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TuneBudget {
    pub max_trials: usize,
    pub max_seconds: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Cost-model guided simulated annealing.
    Guided,
    /// Uniform random sampling (the baseline the guided search must beat).
    Random,
}

#[derive(Debug, Clone)]
pub struct TuneOptions {
    pub budget: TuneBudget,
    pub seed: u64,
    pub strategy: Strategy,
    /// Random trials before the model is first fitted.
    pub initial_random: usize,
    /// Candidates measured per round.
    pub batch: usize,
    /// Top configurations measured again before committing.
    pub remeasure_top: usize,
    pub boost: BoostParams,
    pub fingerprint: String,
    /// Configurations measured first when they are in the space (e.g. the
    /// current default, so the result is never worse than it as measured).
    pub initial: Vec<Params>,
    /// A challenger must beat the incumbent (`initial[0]`) by this fraction
    /// (e.g. 0.02) after re-measurement, or the incumbent is committed.
    pub incumbent_margin: f64,
}

impl TuneOptions {
    pub fn new(fingerprint: &str, max_trials: usize, seed: u64) -> TuneOptions {
        TuneOptions {
            budget: TuneBudget {
                max_trials,
                max_seconds: None,
            },
            seed,
            strategy: Strategy::Guided,
            initial_random: 8,
            batch: 4,
            remeasure_top: 3,
            boost: BoostParams::default(),
            fingerprint: fingerprint.to_string(),
            initial: Vec::new(),
            incumbent_margin: 0.0,
        }
    }
}

/// Reported after every trial (and once when a result comes from the log).
#[derive(Debug, Clone, PartialEq)]
pub struct TuneProgress {
    pub trials: usize,
    pub max_trials: usize,
    pub best_ns: Option<f64>,
    pub best: Option<Params>,
    pub from_log: bool,
}

#[derive(Debug, Clone)]
pub struct TuneOutcome {
    pub params: Params,
    pub config: Config,
    /// Committed time: the fastest of the best configuration's measurements.
    pub best_ns: f64,
    /// Search trials run (re-measurements not counted); 0 when from the log.
    /// Search trials, those of earlier cut-short searches resumed included.
    pub trials: usize,
    /// Of `trials`, those measured by earlier searches and read from the log.
    pub resumed: usize,
    pub remeasured: usize,
    pub from_log: bool,
    /// The time budget cut the search (or its re-measurement) short: the
    /// result is the best so far, and the next tune of this key resumes.
    pub provisional: bool,
    /// Every search trial in order.
    pub history: Vec<(Config, f64)>,
}

/// Tunes `key` over `space`, reusing a committed result from `log` when one
/// exists for this fingerprint, otherwise measuring with `measure` and logging
/// every trial.
pub fn tune(
    space: &SearchSpace,
    key: &TuneKey,
    log: &mut TuningLog,
    opts: &TuneOptions,
    measure: &mut dyn FnMut(&Params) -> Result<f64, TuneError>,
    progress: &mut dyn FnMut(TuneProgress),
) -> Result<TuneOutcome, TuneError> {
    if let Some(rec) = log.best_for(&key.op, &key.shape, &space.name, &opts.fingerprint) {
        if let Some(config) = space.config_of(&rec.params).filter(|c| space.is_valid(c)) {
            progress(TuneProgress {
                trials: 0,
                max_trials: opts.budget.max_trials,
                best_ns: Some(rec.time_ns),
                best: Some(rec.params.clone()),
                from_log: true,
            });
            return Ok(TuneOutcome {
                params: rec.params.clone(),
                config,
                best_ns: rec.time_ns,
                trials: 0,
                resumed: 0,
                remeasured: 0,
                from_log: true,
                provisional: false,
                history: Vec::new(),
            });
        }
    }
    // Trials of earlier searches of this key that time cut short.
    let mut measured: BTreeMap<Config, Vec<f64>> = BTreeMap::new();
    let mut history = Vec::new();
    for rec in log.measurements_for(&key.op, &key.shape, &space.name, &opts.fingerprint) {
        let Some(config) = space.config_of(&rec.params).filter(|c| space.is_valid(c)) else {
            continue;
        };
        measured
            .entry(config.clone())
            .or_default()
            .push(rec.time_ns);
        if rec.kind == RecordKind::Trial {
            history.push((config, rec.time_ns));
        }
    }
    let resumed = history.len();
    let mut search = Search {
        space,
        key,
        log,
        opts,
        measure,
        progress,
        // A resumed search draws other random configurations than the first.
        rng: Pcg64::seed_from_u64(opts.seed.wrapping_add(resumed as u64)),
        measured,
        history,
        start: Instant::now(),
    };
    let end = search.run()?;
    search.commit(end, resumed)
}

/// How a search's trials ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SearchEnd {
    /// All trials made, or the space has no configuration left to try.
    Finished,
    /// The time budget ran out first.
    OutOfTime,
}

struct Search<'a> {
    space: &'a SearchSpace,
    key: &'a TuneKey,
    log: &'a mut TuningLog,
    opts: &'a TuneOptions,
    measure: &'a mut dyn FnMut(&Params) -> Result<f64, TuneError>,
    progress: &'a mut dyn FnMut(TuneProgress),
    rng: Pcg64,
    /// Every measurement of each configuration.
    measured: BTreeMap<Config, Vec<f64>>,
    history: Vec<(Config, f64)>,
    start: Instant,
}

impl Search<'_> {
    fn out_of_budget(&self) -> bool {
        self.history.len() >= self.opts.budget.max_trials || self.out_of_time()
    }

    fn out_of_time(&self) -> bool {
        self.opts
            .budget
            .max_seconds
            .is_some_and(|s| self.start.elapsed().as_secs_f64() >= s)
    }

    fn record(&mut self, c: &Config, time_ns: f64, kind: RecordKind) -> Result<(), TuneError> {
        self.log.append(TrialRecord {
            version: LOG_VERSION,
            fingerprint: self.opts.fingerprint.clone(),
            space: self.space.name.clone(),
            op: self.key.op.clone(),
            shape: self.key.shape.clone(),
            params: self.space.params(c),
            time_ns,
            kind,
        })
    }

    fn best(&self) -> Option<(&Config, f64)> {
        self.measured
            .iter()
            .map(|(c, t)| (c, t.iter().sum::<f64>() / t.len().max(1) as f64))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    fn trial(&mut self, c: Config) -> Result<(), TuneError> {
        let params = self.space.params(&c);
        let t = (self.measure)(&params)?;
        if !t.is_finite() || t < 0.0 {
            return Err(TuneError::Measure(format!("time {t} for {params:?}")));
        }
        self.record(&c, t, RecordKind::Trial)?;
        self.measured.entry(c.clone()).or_default().push(t);
        self.history.push((c, t));
        let best = self.best().map(|(c, t)| (self.space.params(c), t));
        (self.progress)(TuneProgress {
            trials: self.history.len(),
            max_trials: self.opts.budget.max_trials,
            best_ns: best.as_ref().map(|b| b.1),
            best: best.map(|b| b.0),
            from_log: false,
        });
        Ok(())
    }

    /// A random configuration not measured yet.
    fn fresh_random(&mut self, exclude: &BTreeSet<Config>) -> Option<Config> {
        for _ in 0..200 {
            let c = self.space.random(&mut self.rng)?;
            if !self.measured.contains_key(&c) && !exclude.contains(&c) {
                return Some(c);
            }
        }
        None
    }

    fn run(&mut self) -> Result<SearchEnd, TuneError> {
        self.search()?;
        Ok(
            if self.history.len() < self.opts.budget.max_trials && self.out_of_time() {
                SearchEnd::OutOfTime
            } else {
                SearchEnd::Finished
            },
        )
    }

    fn search(&mut self) -> Result<(), TuneError> {
        let none = BTreeSet::new();
        for p in &self.opts.initial {
            // The first initial configuration (the incumbent) is measured even
            // with no time left, so that a cut search commits it, not a random one.
            if self.out_of_budget() && !self.history.is_empty() {
                break;
            }
            if let Some(c) = self.space.config_of(p).filter(|c| self.space.is_valid(c)) {
                if !self.measured.contains_key(&c) {
                    self.trial(c)?;
                }
            }
        }
        if self.history.is_empty() {
            let first = self
                .space
                .random(&mut self.rng)
                .ok_or(TuneError::EmptySpace)?;
            self.trial(first)?;
        }
        let initial = match self.opts.strategy {
            Strategy::Random => usize::MAX,
            Strategy::Guided => self.opts.initial_random.max(2),
        };
        while self.history.len() < initial && !self.out_of_budget() {
            match self.fresh_random(&none) {
                Some(c) => self.trial(c)?,
                None => return Ok(()),
            }
        }
        while !self.out_of_budget() {
            let picks = self.propose();
            if picks.is_empty() {
                return Ok(());
            }
            for c in picks {
                if self.out_of_budget() {
                    break;
                }
                self.trial(c)?;
            }
        }
        Ok(())
    }

    /// Fits the model and returns up to `batch` unmeasured candidates.
    fn propose(&mut self) -> Vec<Config> {
        let shape = self.key.shape.clone();
        let xs: Vec<Vec<f64>> = self
            .history
            .iter()
            .map(|(c, _)| self.space.features(c, &shape))
            .collect();
        let ys: Vec<f64> = self.history.iter().map(|(_, t)| t.max(1e-9).ln()).collect();
        let model = Gbt::fit(&xs, &ys, self.opts.boost);
        let predict = |s: &SearchSpace, c: &Config| model.predict(&s.features(c, &shape));
        let mean = ys.iter().sum::<f64>() / ys.len() as f64;
        let spread = (ys.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / ys.len() as f64)
            .sqrt()
            .max(1e-6);

        // Chains start from the best measured configurations and a few random ones.
        let mut ranked: Vec<(&Config, f64)> = self
            .measured
            .iter()
            .map(|(c, t)| (c, t.iter().sum::<f64>() / t.len() as f64))
            .collect();
        ranked.sort_by(|a, b| a.1.total_cmp(&b.1));
        let mut starts: Vec<Config> = ranked.iter().take(4).map(|(c, _)| (*c).clone()).collect();
        for _ in 0..4 {
            if let Some(c) = self.space.random(&mut self.rng) {
                starts.push(c);
            }
        }
        let mut pool: BTreeMap<Config, f64> = BTreeMap::new();
        const STEPS: usize = 60;
        for start in starts {
            let mut cur = start;
            let mut cur_pred = predict(self.space, &cur);
            for step in 0..STEPS {
                let temp = spread * 0.5 * (0.02f64).powf(step as f64 / STEPS as f64);
                let next = self.space.mutate(&cur, &mut self.rng);
                if !self.space.is_valid(&next) {
                    continue;
                }
                let pred = predict(self.space, &next);
                if !self.measured.contains_key(&next) {
                    pool.insert(next.clone(), pred);
                }
                if pred <= cur_pred
                    || self
                        .rng
                        .random_bool((-(pred - cur_pred) / temp).exp().min(1.0))
                {
                    cur = next;
                    cur_pred = pred;
                }
            }
        }
        let mut cands: Vec<(Config, f64)> = pool.into_iter().collect();
        cands.sort_by(|a, b| a.1.total_cmp(&b.1));
        let mut picks: Vec<Config> = Vec::new();
        let mut chosen: BTreeSet<Config> = BTreeSet::new();
        let mut model_iter = cands.into_iter().map(|(c, _)| c);
        while picks.len() < self.opts.batch.max(1) {
            // A little exploration keeps the model honest away from its favourites.
            let pick = if self.rng.random_bool(0.1) {
                self.fresh_random(&chosen)
            } else {
                model_iter.next().or_else(|| self.fresh_random(&chosen))
            };
            match pick {
                Some(c) => {
                    chosen.insert(c.clone());
                    picks.push(c);
                }
                None => break,
            }
        }
        picks
    }

    /// Re-measures the top few and commits the best (lowest minimum) to the log.
    fn commit(mut self, end: SearchEnd, resumed: usize) -> Result<TuneOutcome, TuneError> {
        // Interference from other work (preemption, a neighbour's cache
        // traffic) only ever adds time, so the fastest of a configuration's
        // measurements is the steadiest estimate of its own speed; a mean let
        // one disturbed sample decide between close candidates.
        let fastest = |t: &Vec<f64>| t.iter().copied().fold(f64::INFINITY, f64::min);
        let mut ranked: Vec<(Config, f64)> = self
            .measured
            .iter()
            .map(|(c, t)| (c.clone(), fastest(t)))
            .collect();
        ranked.sort_by(|a, b| a.1.total_cmp(&b.1));
        // The incumbent (first initial configuration, e.g. the current default)
        // is re-measured with the top few, interleaved, so slow drift in the
        // machine's speed affects them alike.
        let incumbent = self
            .opts
            .initial
            .first()
            .and_then(|p| self.space.config_of(p))
            .filter(|c| self.measured.contains_key(c));
        let mut finalists: Vec<Config> = ranked
            .iter()
            .take(self.opts.remeasure_top)
            .map(|(c, _)| c.clone())
            .collect();
        if let Some(inc) = &incumbent {
            if self.opts.remeasure_top > 0 && !finalists.contains(inc) {
                finalists.push(inc.clone());
            }
        }
        let mut remeasured = 0;
        let mut remeasure_cut = false;
        // Re-measuring stops when the search's time is up (a large shape's
        // measurements can take seconds each): the committed configuration
        // is then the fastest as measured so far.
        'rounds: for _round in 0..REMEASURE_ROUNDS {
            for c in &finalists {
                if self.out_of_time() {
                    remeasure_cut = true;
                    break 'rounds;
                }
                let t = (self.measure)(&self.space.params(c))?;
                if t.is_finite() && t >= 0.0 {
                    self.record(c, t, RecordKind::Remeasure)?;
                    self.measured.entry(c.clone()).or_default().push(t);
                    remeasured += 1;
                }
            }
        }
        // Commit among the re-measured candidates (each measured at least
        // REMEASURE_ROUNDS + 1 times); without re-measurement, the best single trial.
        let pool: Vec<(Config, f64)> = if remeasured > 0 {
            finalists
                .iter()
                .filter_map(|c| self.measured.get(c).map(|t| (c.clone(), fastest(t))))
                .collect()
        } else {
            ranked
        };
        let (mut config, mut best_ns) = pool
            .iter()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .cloned()
            .ok_or(TuneError::NoSuccessfulTrial)?;
        // Keep the incumbent unless the winner beats it by the margin.
        if let Some((inc, inc_ns)) = incumbent
            .as_ref()
            .and_then(|c| pool.iter().find(|(p, _)| p == c))
        {
            if best_ns > inc_ns * (1.0 - self.opts.incumbent_margin) {
                config = inc.clone();
                best_ns = *inc_ns;
            }
        }
        let provisional = end == SearchEnd::OutOfTime || remeasure_cut;
        let kind = if provisional {
            RecordKind::Provisional
        } else {
            RecordKind::Best
        };
        self.record(&config, best_ns, kind)?;
        Ok(TuneOutcome {
            params: self.space.params(&config),
            config,
            best_ns,
            trials: self.history.len(),
            resumed,
            remeasured,
            from_log: false,
            provisional,
            history: self.history,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autotune::space::Dimension;

    /// A 4 x 3 space, its incumbent (a = 3, b = 2) and a key.
    fn small_search() -> (SearchSpace, Params, TuneKey) {
        let space = SearchSpace::new(
            "s",
            vec![
                Dimension::new("a", &[1, 2, 3, 4]),
                Dimension::new("b", &[1, 2, 3]),
            ],
        );
        let incumbent: Params = [("a".to_string(), 3), ("b".to_string(), 2)]
            .into_iter()
            .collect();
        let key = TuneKey {
            op: "op".into(),
            shape: vec![1],
        };
        (space, incumbent, key)
    }

    /// A search with no time left measures the incumbent once and commits it:
    /// no random trial, no re-measurement (a large shape's trial takes seconds).
    #[test]
    fn a_search_out_of_time_measures_and_commits_only_the_incumbent() {
        let (space, incumbent, key) = small_search();
        let mut opts = TuneOptions::new("m", 40, 7);
        opts.initial = vec![incumbent.clone()];
        opts.budget.max_seconds = Some(0.0);
        let mut measured: Vec<Params> = Vec::new();
        let out = tune(
            &space,
            &key,
            &mut TuningLog::in_memory(),
            &opts,
            &mut |p| {
                measured.push(p.clone());
                // The incumbent is the slowest here: only time decides.
                Ok(100.0 - p.values().sum::<i64>() as f64)
            },
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(measured, vec![incumbent.clone()]);
        assert_eq!((out.trials, out.remeasured), (1, 0));
        assert_eq!(out.params, incumbent);
        assert!(out.provisional);
    }

    /// A search cut short commits its best so far as provisional; the next
    /// tune resumes from the logged trials (measuring none of them again as a
    /// trial) and, finishing, commits a final result that a third reuses.
    #[test]
    fn a_cut_search_is_resumed_not_taken_as_final() {
        let (space, incumbent, key) = small_search();
        let mut opts = TuneOptions::new("m", 6, 7);
        opts.initial = vec![incumbent.clone()];
        opts.budget.max_seconds = Some(0.0);
        let mut log = TuningLog::in_memory();
        // Fastest where a + b is largest: (4, 3).
        let time = |p: &Params| 100.0 - p.values().sum::<i64>() as f64;

        let cut = tune(
            &space,
            &key,
            &mut log,
            &opts,
            &mut |p| Ok(time(p)),
            &mut |_| {},
        )
        .unwrap();
        assert!(cut.provisional && !cut.from_log);
        assert_eq!(cut.params, incumbent);

        opts.budget.max_seconds = None;
        let mut calls = 0;
        let resumed = tune(
            &space,
            &key,
            &mut log,
            &opts,
            &mut |p| {
                calls += 1;
                Ok(time(p))
            },
            &mut |_| {},
        )
        .unwrap();
        assert!(!resumed.from_log && !resumed.provisional);
        assert_eq!((resumed.trials, resumed.resumed), (6, 1));
        // Five new trials and the re-measurements; the incumbent's logged
        // trial is not repeated.
        assert_eq!(calls, 5 + resumed.remeasured);
        assert_eq!(resumed.history[0].0, space.config_of(&incumbent).unwrap());

        let reused = tune(
            &space,
            &key,
            &mut log,
            &opts,
            &mut |_| unreachable!(),
            &mut |_| {},
        )
        .unwrap();
        assert!(reused.from_log);
        assert_eq!(reused.params, resumed.params);
    }
}
