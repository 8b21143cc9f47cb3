//! The planner: candidate plans, constraints, ranking, Pareto front, sensitivity, rationale.
//!
//! `plan` is a pure function of the scenario, the measured/projected compute
//! profiles, the what-if changes and the options (seeded simulation), so the
//! CLI and the TUI get the same answer for the same inputs.

pub mod candidate;
pub mod evaluate;
pub mod pareto;
pub mod profile;
pub mod rationale;
pub mod search;
pub mod sensitivity;
pub mod whatif;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};

pub use candidate::Candidate;
pub use evaluate::{Evaluation, SearchBudget, SimBudget, SloConfidence};
pub use profile::{ComputeProfile, ProfileSet};
pub use whatif::WhatIf;

use crate::report::{ConstraintCheck, SensitivityLine};
use crate::scenario::{Placement, Scenario};
use evaluate::Context;
use sensitivity::{confirm_factor, stable_factor, StableRange};
use workbench_kernels::Precision;

/// How hard the planner works.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanOptions {
    pub seed: u64,
    /// Simulated requests per candidate while screening.
    pub screening_requests: u64,
    /// Simulated requests for the finalists (the reported figures).
    pub final_requests: u64,
    /// How many feasible plans are re-simulated at `final_requests`.
    pub finalists: usize,
    /// Compute how far traffic, RTT and price can move.
    pub sensitivity: bool,
}

impl PlanOptions {
    pub fn standard(seed: u64) -> Self {
        Self {
            seed,
            screening_requests: 8_000,
            final_requests: 100_000,
            finalists: 5,
            sensitivity: true,
        }
    }

    pub fn quick(seed: u64) -> Self {
        Self {
            seed,
            screening_requests: 4_000,
            final_requests: 40_000,
            finalists: 3,
            sensitivity: true,
        }
    }

    /// Simulations no longer than [`PlanOptions::quick`]'s: a `--quick` run.
    pub fn is_quick(&self) -> bool {
        self.final_requests <= Self::quick(self.seed).final_requests
    }
}

/// The planner's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanOutcome {
    /// Every evaluated plan: feasible ones first in ranking order (the first is
    /// the recommendation), then rejected ones by how close they came.
    pub evaluations: Vec<Evaluation>,
    pub feasible: bool,
    pub rationale: Vec<String>,
    pub constraints: Vec<ConstraintCheck>,
    pub sensitivity: Vec<SensitivityLine>,
}

impl PlanOutcome {
    pub fn recommended(&self) -> Option<&Evaluation> {
        self.evaluations.first().filter(|e| e.feasible())
    }
}

/// Plan a scenario under the given what-if changes.
pub fn plan(
    scenario: &Scenario,
    profiles: &ProfileSet,
    what_if: &WhatIf,
    options: &PlanOptions,
) -> PlanOutcome {
    plan_unless(scenario, profiles, what_if, options, None)
}

/// [`plan`], given up soon after `cancel` is set (before the next candidate's
/// simulation): `None` then. The TUI cancels a re-plan a newer one supersedes.
pub fn plan_cancellable(
    scenario: &Scenario,
    profiles: &ProfileSet,
    what_if: &WhatIf,
    options: &PlanOptions,
    cancel: &AtomicBool,
) -> Option<PlanOutcome> {
    let outcome = plan_unless(scenario, profiles, what_if, options, Some(cancel));
    (!cancel.load(Ordering::Relaxed)).then_some(outcome)
}

/// The plan; once `cancel` is set, whatever is left is skipped and the
/// outcome is meaningless (callers check the flag).
fn plan_unless(
    scenario: &Scenario,
    profiles: &ProfileSet,
    what_if: &WhatIf,
    options: &PlanOptions,
    cancel: Option<&AtomicBool>,
) -> PlanOutcome {
    let scenario = what_if.apply(scenario);
    let mut evaluations = ranked_evaluations(&scenario, profiles, options, None, cancel);
    for e in &mut evaluations {
        e.plan.device_memory_bytes =
            evaluate::plan_device_memory(&scenario, profiles, &e.candidate)
                .iter()
                .map(|m| m.needs.total())
                .max();
        e.plan.slo_latency_ms = e.slo_latency_ms.filter(|_| e.simulated);
        if e.plan.slo_latency_ms.is_none() {
            e.plan.slo_latency_ci_ms = None;
        }
    }
    mark_pareto(&scenario, &mut evaluations);
    let feasible = evaluations.first().is_some_and(Evaluation::feasible);
    // Cancelled: the sensitivity's re-plans (seconds of work) are not started.
    let cancelled = cancel.is_some_and(|flag| flag.load(Ordering::Relaxed));
    let sensitivity = if options.sensitivity && feasible && !cancelled {
        sensitivity_lines(&scenario, profiles, options, &evaluations, cancel)
    } else {
        Vec::new()
    };
    let mut rationale = rationale::explain(&scenario, profiles, &evaluations);
    rationale.extend(rationale::light_traffic_note(&scenario, profiles));
    // Checked against the recommendation, or the plan the rationale names closest.
    let checked = if feasible {
        evaluations.first()
    } else {
        rationale::closest(&evaluations)
    };
    let constraints = rationale::constraint_checks(&scenario, profiles, checked);
    PlanOutcome {
        evaluations,
        feasible,
        rationale,
        constraints,
        sensitivity,
    }
}

/// Screen every candidate, re-simulate the finalists with more requests, rank.
fn ranked_evaluations(
    scenario: &Scenario,
    profiles: &ProfileSet,
    options: &PlanOptions,
    only: Option<&BTreeSet<String>>,
    cancel: Option<&AtomicBool>,
) -> Vec<Evaluation> {
    let ctx = Context {
        scenario,
        profiles,
        only,
        cancel,
    };
    let screening = SimBudget {
        requests: options.screening_requests,
        seed: options.seed,
    };
    let mut all = search::evaluate_all(&ctx, &screening);
    all.retain(|e| ctx.allows(&e.candidate));
    rank(scenario, profiles, &mut all);
    if options.finalists == 0 || options.final_requests <= options.screening_requests {
        return all;
    }
    // Finalists: the best feasible plans and every plan tied with the best,
    // simulated again for the reported figures. A plan that moves to the top
    // on its screening figures is simulated again too, so the recommendation
    // never rests on figures from a shorter run than its rivals'. Each
    // finalist's run goes on past `final_requests` until its SLO
    // percentile's confidence interval is narrow (see `SloConfidence`).
    let final_budget = |plan_id: &str| final_budget(options, plan_id);
    let mut done: BTreeSet<String> = BTreeSet::new();
    // Near misses: plans that failed only their SLO, by less than a short
    // run's tail can tell (a p99.9 from 10^4 requests is a few dozen of
    // them, from one or two busy periods), and that would cost less than the
    // best feasible plan (or there is none): screening noise must not decide
    // that a plan fails, when the finalists' longer runs can tell.
    let near_misses: Vec<usize> = {
        let best_cost = all
            .first()
            .filter(|e| e.feasible())
            .map(|e| e.plan.cost_usd_per_month);
        let slo_ms = scenario.objectives.latency_ms;
        all.iter()
            .enumerate()
            .filter(|(_, e)| e.simulated && e.rejected.len() == 1)
            .filter(|(_, e)| {
                let miss = slo_miss_of(e, slo_ms);
                miss > 0.0 && miss <= NEAR_MISS_FRACTION
            })
            .filter(|(_, e)| best_cost.is_none_or(|c| e.plan.cost_usd_per_month < c))
            .map(|(i, _)| i)
            .take(options.finalists)
            .collect()
    };
    for &i in &near_misses {
        done.insert(all[i].plan.id.clone());
        all[i] = resimulate(&ctx, all[i].clone(), &final_budget(&all[i].plan.id));
    }
    if !near_misses.is_empty() {
        rank(scenario, profiles, &mut all);
    }
    let limit = done.len() + options.finalists + MAX_TIED_FINALISTS;
    while done.len() < limit {
        let next: Vec<usize> = {
            let ties = tie_test(scenario, &all);
            all.iter()
                .enumerate()
                .take_while(|(_, e)| e.feasible())
                .filter(|(i, e)| *i < options.finalists || ties(e))
                .filter(|(_, e)| !done.contains(&e.plan.id))
                .map(|(i, _)| i)
                .take(limit - done.len())
                .collect()
        };
        if next.is_empty() {
            break;
        }
        for i in next {
            done.insert(all[i].plan.id.clone());
            all[i] = resimulate(&ctx, all[i].clone(), &final_budget(&all[i].plan.id));
        }
        rank(scenario, profiles, &mut all);
    }
    // More plans tied than the loop re-simulates: one only screened can be
    // on top, its short run's noise beating the finalists' longer ones (by
    // seed, a different plan). Re-simulate whatever is on top until it is
    // a finalist; each round settles one plan, so this ends.
    while let Some(top) = all
        .first()
        .filter(|e| e.feasible() && !done.contains(&e.plan.id))
    {
        let id = top.plan.id.clone();
        all[0] = resimulate(&ctx, all[0].clone(), &final_budget(&id));
        done.insert(id);
        rank(scenario, profiles, &mut all);
    }
    all
}

/// The budget a finalist named `plan_id` is simulated again with:
/// `final_requests`, then on until its SLO percentile's confidence interval
/// is narrow (see [`SloConfidence`]).
pub fn final_budget(options: &PlanOptions, plan_id: &str) -> SearchBudget {
    let quick = options.is_quick();
    let factor = if quick {
        QUICK_EXTENSION_FACTOR
    } else {
        FINAL_EXTENSION_FACTOR
    };
    SearchBudget {
        sim: SimBudget {
            requests: options.final_requests,
            seed: options.seed,
        },
        confidence: Some(SloConfidence {
            plan_id: plan_id.to_string(),
            relative_half_width: SLO_CI_RELATIVE_HALF_WIDTH,
            max_requests: options.final_requests.saturating_mul(factor),
        }),
    }
}

/// Plans tied with the best that are simulated again beyond the finalists.
const MAX_TIED_FINALISTS: usize = 12;

/// A finalist's run stops once the 95% confidence interval of its latency at
/// the SLO percentile is within this fraction of it either side: 3% is
/// 83 +- 2.5 ms at a p99.9 of 83 ms, finer than anything a person would act
/// on, and reached by most plans' p99 within a few times `final_requests`
/// (2% costs (3/2)^2 = 2.25 times the requests for the same plans: the
/// shipped scenarios' quick runs took half as long again).
pub const SLO_CI_RELATIVE_HALF_WIDTH: f64 = 0.03;

/// The most requests a finalist's run is extended to, in `final_requests`:
/// 2 million for the standard 100,000. An M/D/1 queue at utilisation 0.8
/// gets its p99.9 to about +-3% there (+-15% at 100,000 requests).
pub const FINAL_EXTENSION_FACTOR: u64 = 20;

/// The same for a quick run (`final_requests` at most [`PlanOptions::quick`]'s):
/// 400,000 for its 40,000, about +-5% for that p99.9.
pub const QUICK_EXTENSION_FACTOR: u64 = 10;

/// How far over its SLO a plan's screening figure may be for the plan to be
/// simulated again as a near miss (see [`ranked_evaluations`]).
const NEAR_MISS_FRACTION: f64 = 0.5;

/// Run the same candidate again with a different budget (same mapping, more requests).
fn resimulate(ctx: &Context<'_>, e: Evaluation, budget: &SearchBudget) -> Evaluation {
    search::reevaluate_within(ctx, &e.candidate, budget).unwrap_or(e)
}

/// The scenario's cost/latency trade-off over feasible plans: 1 is the cheapest
/// cost and the lowest p99 among them, each weighted by `cost_weight`.
struct Scorer {
    cost_weight: f64,
    min_cost: f64,
    min_p99: f64,
    slo_ms: f64,
}

impl Scorer {
    fn of(scenario: &Scenario, evaluations: &[Evaluation]) -> Scorer {
        let feasible = evaluations.iter().filter(|e| e.feasible());
        Scorer {
            cost_weight: scenario.objectives.cost_weight.clamp(0.0, 1.0),
            min_cost: feasible
                .clone()
                .map(|e| e.plan.cost_usd_per_month)
                .fold(f64::INFINITY, f64::min),
            min_p99: feasible
                .map(|e| e.plan.latency_ms.p99)
                .fold(f64::INFINITY, f64::min),
            slo_ms: scenario.objectives.latency_ms,
        }
    }

    fn score(&self, e: &Evaluation) -> f64 {
        // +$1 keeps near-free edge plans from dividing by zero.
        let cost = (e.plan.cost_usd_per_month + 1.0) / (self.min_cost + 1.0);
        let latency = e.plan.latency_ms.p99 / self.min_p99.max(1e-6);
        self.cost_weight * cost + (1.0 - self.cost_weight) * latency
    }

    /// Whether feasible `e` is as good as `best` for any practical purpose:
    /// scores within [`TIE_FRACTION`], or cost and p99 both within what
    /// nobody would act on (1% or $1 a month; 1% of the p99 or of the SLO).
    /// Relative scores alone would call 0.04 ms against 0.05 ms under a 150 ms
    /// SLO a 25% gain.
    fn ties(&self, e: &Evaluation, best: &Reference) -> bool {
        if !e.feasible() {
            return false;
        }
        if self.score(e) <= best.score * (1.0 + TIE_FRACTION) {
            return true;
        }
        let (cost, p99) = (e.plan.cost_usd_per_month, e.plan.latency_ms.p99);
        let cost_close = (cost - best.cost).abs() <= (best.cost * TIE_FRACTION).max(1.0);
        let slo = if self.slo_ms.is_finite() {
            self.slo_ms
        } else {
            0.0
        };
        let p99_close = (p99 - best.p99).abs() <= best.p99.max(slo) * TIE_FRACTION;
        cost_close && p99_close
    }

    fn reference(&self, best: &Evaluation) -> Reference {
        Reference {
            score: self.score(best),
            cost: best.plan.cost_usd_per_month,
            p99: best.plan.latency_ms.p99,
        }
    }
}

/// The figures of the plan others are compared with for a tie.
struct Reference {
    score: f64,
    cost: f64,
    p99: f64,
}

/// How far a plan's latency at the SLO percentile is over the SLO, as a
/// fraction of it (0 when within; infinite when too many requests failed).
fn slo_miss_of(e: &Evaluation, slo_ms: f64) -> f64 {
    match e.slo_latency_ms {
        Some(ms) if slo_ms > 0.0 => (ms / slo_ms - 1.0).max(0.0),
        Some(_) => 0.0,
        None => f64::INFINITY,
    }
}

/// The plan ties are measured against: the feasible plan with the best score
/// (ties in score broken as [`rank`] breaks them).
fn tie_reference(scorer: &Scorer, evaluations: &[Evaluation]) -> Option<Reference> {
    evaluations
        .iter()
        .filter(|e| e.feasible())
        .min_by(|a, b| {
            scorer
                .score(a)
                .total_cmp(&scorer.score(b))
                .then(a.plan.latency_ms.p99.total_cmp(&b.plan.latency_ms.p99))
                .then_with(|| a.plan.id.cmp(&b.plan.id))
        })
        .map(|best| scorer.reference(best))
}

/// Whether a plan ties with the best one, as [`rank`] decided it.
pub fn tie_test<'a>(
    scenario: &Scenario,
    evaluations: &'a [Evaluation],
) -> impl Fn(&Evaluation) -> bool + 'a {
    let scorer = Scorer::of(scenario, evaluations);
    let reference = tie_reference(&scorer, evaluations);
    move |e| reference.as_ref().is_some_and(|r| scorer.ties(e, r))
}

/// Feasible plans first, by the scenario's cost/latency trade-off; then rejected
/// plans (simulated before pruned, fewest reasons first, nearest the SLO
/// first, cheapest first, then the smallest model on its device).
pub fn rank(scenario: &Scenario, profiles: &ProfileSet, evaluations: &mut [Evaluation]) {
    let scorer = Scorer::of(scenario, evaluations);
    let score = |e: &Evaluation| scorer.score(e);
    let slo_miss = |e: &Evaluation| slo_miss_of(e, scenario.objectives.latency_ms);
    // Of plans that miss alike at the same cost (devices' plans rejected
    // before simulation cost nothing), the smaller build on its device is
    // closer: too large for a 16 MB device at int8 is nearer than at f32.
    let device_bytes = |e: &Evaluation| match e.candidate.placement {
        Placement::Edge | Placement::Hybrid => {
            let c = &e.candidate;
            let build = (c.variant.as_str(), c.backend, c.precision);
            evaluate::device_memory_needed(scenario, profiles, build, 1).total()
        }
        Placement::Cloud => 0,
    };
    evaluations.sort_by(|a, b| {
        b.feasible()
            .cmp(&a.feasible())
            .then_with(|| {
                if a.feasible() {
                    score(a).total_cmp(&score(b))
                } else {
                    b.simulated
                        .cmp(&a.simulated)
                        .then(a.rejected.len().cmp(&b.rejected.len()))
                        .then(slo_miss(a).total_cmp(&slo_miss(b)))
                        .then(
                            a.plan
                                .cost_usd_per_month
                                .total_cmp(&b.plan.cost_usd_per_month),
                        )
                        .then(device_bytes(a).cmp(&device_bytes(b)))
                }
            })
            .then(a.plan.latency_ms.p99.total_cmp(&b.plan.latency_ms.p99))
            .then_with(|| a.plan.id.cmp(&b.plan.id))
    });
    // Plans as good as the best for any practical purpose are a tie: their
    // simulated figures differ by noise or by amounts nobody would act on.
    // They move to the front, and among them the one that gives up least
    // comes first: the highest agreement with the f32 model, then full
    // precision (quantizing for nothing is a risk with no reward), then the
    // simpler system (a hybrid runs two: a job and a service, or a device
    // and a fallback). The rest keep their order (the sort is stable).
    let Some(best) = tie_reference(&scorer, evaluations) else {
        return;
    };
    evaluations.sort_by(|a, b| {
        let (tied_a, tied_b) = (scorer.ties(a, &best), scorer.ties(b, &best));
        tied_b.cmp(&tied_a).then_with(|| {
            if tied_a && tied_b {
                b.plan
                    .accuracy_agreement
                    .total_cmp(&a.plan.accuracy_agreement)
                    .then(
                        precision_rank(a.candidate.precision)
                            .cmp(&precision_rank(b.candidate.precision)),
                    )
                    .then(systems(&a.candidate).cmp(&systems(&b.candidate)))
            } else {
                std::cmp::Ordering::Equal
            }
        })
    });
}

/// Feasible plans whose score is within this fraction of the best one's are
/// ranked as a tie (see [`rank`]).
pub const TIE_FRACTION: f64 = 0.01;

/// How many serving systems a plan runs: 2 for a hybrid (a batch job and an
/// online service, or devices and a cloud fallback), else 1.
fn systems(c: &Candidate) -> u8 {
    if c.precompute_fraction.is_some() || c.fallback_target.is_some() {
        2
    } else {
        1
    }
}

/// Full precision first, then the half formats, then int8.
pub fn precision_rank(p: Precision) -> u8 {
    match p {
        Precision::F32 => 0,
        Precision::F16 | Precision::Bf16 => 1,
        Precision::Int8 => 2,
    }
}

/// Pareto front over cost, p99 latency and accuracy loss, among feasible
/// plans (ranked: the recommendation first). A plan the ranking calls a tie
/// with the recommendation is better in no way that counts (a few µs or
/// cents): it does not push the recommendation off the front, which would
/// read as recommending a dominated plan.
fn mark_pareto(scenario: &Scenario, evaluations: &mut [Evaluation]) {
    let feasible: Vec<usize> = (0..evaluations.len())
        .filter(|&i| evaluations[i].feasible())
        .collect();
    let points: Vec<[f64; 3]> = feasible
        .iter()
        .map(|&i| {
            let p = &evaluations[i].plan;
            [
                p.cost_usd_per_month,
                p.latency_ms.p99,
                1.0 - p.accuracy_agreement,
            ]
        })
        .collect();
    let front = pareto::pareto_front(&points);
    for &k in &front {
        evaluations[feasible[k]].plan.on_pareto_front = true;
    }
    // The recommendation: dominated only by plans tied with it, if at all.
    if feasible.first() == Some(&0) && !front.contains(&0) {
        let dominated_by_more_than_a_tie = {
            let ties = tie_test(scenario, evaluations);
            points
                .iter()
                .enumerate()
                .filter(|&(k, q)| k != 0 && pareto::dominates(q, &points[0]))
                .any(|(k, _)| !ties(&evaluations[feasible[k]]))
        };
        if !dominated_by_more_than_a_tie {
            evaluations[0].plan.on_pareto_front = true;
        }
    }
}

/// A what-if with one assumption scaled by the given factor.
type WhatIfAt = fn(f64) -> WhatIf;

/// A factor as a sensitivity line shows it: two decimals near 1, where one
/// would print 1.04x as a no-change "1.0x".
fn factor(f: f64) -> String {
    if f < 2.0 {
        format!("{f:.2}x")
    } else {
        format!("{f:.1}x")
    }
}

/// The furthest each assumption is scaled when looking for a change of plan.
const SENSITIVITY_LIMIT: f64 = 10.0;

/// Bisection steps of the shorter re-plan that brackets a change of plan.
const SCREENING_STEPS: usize = 4;

/// How close the stated factors are (a ratio): the last factor the
/// recommendation holds at and the first it does not.
pub const SENSITIVITY_RESOLUTION: f64 = 1.05;

/// Full re-plans allowed per assumption to confirm or move the bracket.
const MAX_CONFIRMING_PLANS: usize = 8;

/// How far traffic, RTT and instance price can move before the recommendation changes.
///
/// A shorter re-plan (screening budget, no finalists, only the families of the
/// best plans) brackets the change cheaply, then plans at the run's own budget
/// ([`ranked_evaluations`] with `options`, every candidate: what [`plan`] would
/// answer with the assumption scaled) check the bracket and move it where they
/// disagree ([`sensitivity::confirm_factor`]). So a stated factor is one a full
/// plan agrees with: at `stays_best_up_to_factor` it recommends the same plan,
/// and a step above it (within [`SENSITIVITY_RESOLUTION`]) it does not.
///
/// "The same plan" includes a tie: the recommendation still counts as best
/// where the re-plan ranks a plan tied with it first (the [`tie_test`] of
/// [`rank`]: scores within [`TIE_FRACTION`], or cost and p99 both within what
/// nobody would act on), since switching would gain nothing. A factor where it
/// only ties is therefore still within the range, and the change is stated
/// where it stops being tied (or feasible).
fn sensitivity_lines(
    scenario: &Scenario,
    profiles: &ProfileSet,
    options: &PlanOptions,
    evaluations: &[Evaluation],
    cancel: Option<&AtomicBool>,
) -> Vec<SensitivityLine> {
    let Some(best) = evaluations.first() else {
        return Vec::new();
    };
    let families: BTreeSet<String> = evaluations
        .iter()
        .filter(|e| e.feasible())
        .take(8)
        .map(|e| e.candidate.family())
        .collect();
    let quick = PlanOptions {
        screening_requests: options.screening_requests.min(4_000),
        final_requests: 0,
        finalists: 0,
        sensitivity: false,
        ..*options
    };
    // The best plan under the changed assumption, and whether `reference`
    // still is best: first, or tied with the first (a re-plan with a shorter
    // simulation must not call noise a change of plan).
    let replan_against = |what_if: WhatIf,
                          reference: &str,
                          options: &PlanOptions,
                          only: Option<&BTreeSet<String>>|
     -> Replan {
        let s = what_if.apply(scenario);
        let ranked = ranked_evaluations(&s, profiles, options, only, cancel);
        let same = {
            let ties = tie_test(&s, &ranked);
            ranked
                .iter()
                .find(|e| e.plan.id == reference)
                .is_some_and(|e| e.feasible() && ties(e))
        };
        let best = ranked.into_iter().next().filter(Evaluation::feasible);
        Replan { best, same }
    };
    // What the shorter re-plan makes of the scenario unchanged is its
    // reference: when it ranks a near-twin of the recommendation first (a
    // batch delay of 1 ms for 5 ms), every what-if would otherwise read as a
    // change at 1.0x.
    let screening_reference = {
        let unchanged = replan_against(WhatIf::default(), &best.plan.id, &quick, Some(&families));
        match unchanged {
            Replan {
                best: Some(first),
                same: false,
            } => first.plan.id,
            _ => best.plan.id.clone(),
        }
    };
    let screen =
        |what_if: WhatIf| replan_against(what_if, &screening_reference, &quick, Some(&families));
    // The full re-plan's reference is the recommendation itself: unchanged, it
    // is exactly the plan this run made.
    let full = |what_if: WhatIf| replan_against(what_if, &best.plan.id, options, None);
    let params: [(&str, WhatIfAt); 3] = [
        ("traffic", |f| WhatIf {
            traffic: f,
            ..WhatIf::default()
        }),
        ("network RTT", |f| WhatIf {
            rtt: f,
            ..WhatIf::default()
        }),
        ("instance price", |f| WhatIf {
            instance_price: f,
            ..WhatIf::default()
        }),
    ];
    // One assumption's line; each is searched apart from the others.
    let line_of = |(name, make): (&str, WhatIfAt)| -> SensitivityLine {
        let guess = stable_factor(|f| screen(make(f)).same, SENSITIVITY_LIMIT, SCREENING_STEPS);
        // Full re-plans by factor, kept for the plan past the change.
        let mut planned: BTreeMap<u64, Option<Evaluation>> = BTreeMap::new();
        let range = confirm_factor(
            |f| {
                let at = full(make(f));
                planned.insert(f.to_bits(), at.best);
                at.same
            },
            guess,
            SENSITIVITY_LIMIT,
            SENSITIVITY_RESOLUTION,
            MAX_CONFIRMING_PLANS,
        );
        match range {
            StableRange::AtLeast(limit) if limit >= SENSITIVITY_LIMIT => SensitivityLine {
                parameter: name.to_string(),
                stays_best_up_to_factor: None,
                summary: format!("stays best up to at least {limit:.0}x {name}"),
            },
            // The full re-plans ran out before the limit: what they checked.
            StableRange::AtLeast(checked) => SensitivityLine {
                parameter: name.to_string(),
                stays_best_up_to_factor: Some(checked),
                summary: format!("stays best up to at least {} {name}", factor(checked)),
            },
            StableRange::ChangesAt {
                last_same,
                first_different,
            } => {
                let next = match planned.remove(&first_different.to_bits()) {
                    Some(next) => next,
                    None => full(make(first_different)).best,
                };
                let then = match next {
                    Some(e) => {
                        let change = rationale::difference(&best.candidate, &e.candidate);
                        // The plan just past the threshold may hold only a
                        // little further (a replica more cannot offset a
                        // longer network path): say when nothing does. The
                        // shorter re-plan looks first; a full plan confirms.
                        let further = (first_different * 1.25).min(SENSITIVITY_LIMIT);
                        let none_further = further > first_different
                            && screen(make(further)).best.is_none()
                            && full(make(further)).best.is_none();
                        if none_further {
                            // Where between the two the last plan fails: "by
                            // 1.85x" had read as "up to 1.85x" where none held
                            // past 1.5x.
                            let none_from = feasibility_edge(
                                first_different,
                                further,
                                |f| screen(make(f)).best.is_none(),
                                |f| full(make(f)).best.is_none(),
                            );
                            format!(
                                "{change}, and by {} no plan meets every constraint",
                                factor(none_from)
                            )
                        } else {
                            change
                        }
                    }
                    None => "no plan meets every constraint".to_string(),
                };
                SensitivityLine {
                    parameter: name.to_string(),
                    stays_best_up_to_factor: Some(last_same),
                    summary: format!(
                        "stays best up to {} {name}; above that, {then}",
                        factor(last_same)
                    ),
                }
            }
        }
    };
    // Every re-plan is a pure function of its inputs, so the assumptions'
    // searches run at once (the machine's cores share them) and answer, in
    // order, what they would one after another.
    sensitivity::on_threads(params.to_vec(), line_of)
}

/// Halvings of the (log) interval in which the last feasible plan fails:
/// three narrow 1.25x to about 1.03x.
const EDGE_STEPS: usize = 3;

/// The lowest factor found between `some` (a plan meets every constraint)
/// and `none` (none does) at which no plan does: the shorter re-plans
/// (`none_by_screening`) narrow it, one full re-plan (`none_in_full`)
/// confirms it, else `none` stands.
fn feasibility_edge(
    some: f64,
    none: f64,
    mut none_by_screening: impl FnMut(f64) -> bool,
    mut none_in_full: impl FnMut(f64) -> bool,
) -> f64 {
    let (mut low, mut high) = (some, none);
    for _ in 0..EDGE_STEPS {
        let mid = (low * high).sqrt();
        if none_by_screening(mid) {
            high = mid;
        } else {
            low = mid;
        }
    }
    if high < none && none_in_full(high) {
        high
    } else {
        none
    }
}

/// A re-plan under a changed assumption: its best feasible plan, and whether
/// the plan it is compared with is still best (first, or tied with the first).
struct Replan {
    best: Option<Evaluation>,
    same: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::FigureSource;

    /// The edge of feasibility is found between the two factors, to within
    /// a few percent, and only a full re-plan's word makes it stand.
    #[test]
    fn the_feasibility_edge_is_narrowed_and_confirmed() {
        let edge = feasibility_edge(1.48, 1.85, |f| f > 1.5, |f| f > 1.5);
        assert!(edge > 1.5 && edge < 1.5 * 1.03, "{edge}");
        // Screening saw none where the full re-plan finds one: the checked
        // factor stands.
        assert_eq!(feasibility_edge(1.48, 1.85, |f| f > 1.5, |f| f > 1.7), 1.85);
        // None from the start of the interval on: the edge stays above it.
        let edge = feasibility_edge(1.48, 1.85, |_| true, |_| true);
        assert!(edge > 1.48 && edge < 1.48 * 1.03, "{edge}");
    }
    use crate::scenario::{Mode, Placement};
    use workbench_kernels::BackendKind;

    /// A feasible, simulated plan with these figures.
    fn plan_with(precision: Precision, replicas: u32, cost: f64, p99: f64) -> Evaluation {
        let c = Candidate {
            mode: Mode::OnlineHttp,
            placement: Placement::Cloud,
            target: "aws-c7i.xlarge".into(),
            fallback_target: None,
            fallback_model: None,
            replicas,
            variant: "base".into(),
            backend: if precision == Precision::F32 {
                BackendKind::Tiled
            } else {
                BackendKind::Quantized
            },
            precision,
            max_batch: 1,
            max_delay_ms: 0.0,
            precompute_fraction: None,
            class_builds: Vec::new(),
        };
        let mut e = evaluate::pruned(c, FigureSource::Projected, 1.0, p99 / 1000.0, String::new());
        e.rejected.clear();
        e.simulated = true;
        e.plan.simulated = true;
        e.plan.cost_usd_per_month = cost;
        e
    }

    /// An int8 twin 0.01 ms faster at the same cost and agreement ties with
    /// the f32 plan, which the ranking keeps first: the twin dominates on
    /// figures, yet the recommendation stays on the front. A plan dominated
    /// by more than a tie stays off it.
    #[test]
    fn a_tie_does_not_push_the_recommendation_off_the_pareto_front() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/hotel-ranking.toml");
        let s = crate::scenario::load(&path).expect("shipped scenario");
        let mut evaluations = vec![
            plan_with(Precision::Int8, 2, 100.0, 9.99),
            plan_with(Precision::F32, 3, 100.0, 10.0),
            plan_with(Precision::F32, 4, 200.0, 20.0),
        ];
        rank(&s, &ProfileSet::default(), &mut evaluations);
        assert_eq!(evaluations[0].candidate.precision, Precision::F32);
        mark_pareto(&s, &mut evaluations);
        let front: Vec<(u32, bool)> = evaluations
            .iter()
            .map(|e| (e.candidate.replicas, e.plan.on_pareto_front))
            .collect();
        assert_eq!(front, [(3, true), (2, true), (4, false)]);
    }
}
