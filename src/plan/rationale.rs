//! Sentences computed from the numbers: why this plan, why not the others.

use std::collections::BTreeMap;

use workbench_kernels::{BackendKind, Precision};

use crate::report::ConstraintCheck;
use crate::scenario::{Mode, Placement, Scenario};

use super::candidate::Candidate;
use super::evaluate::{
    fmt_ms, fmt_pct, fmt_usd, percentile_name, Evaluation, CANNOT_PRECOMPUTE, DATA_STAYS_ON_DEVICE,
};
use super::profile::ProfileSet;

/// A few sentences explaining the recommendation (or why nothing is feasible).
pub fn explain(scenario: &Scenario, profiles: &ProfileSet, ranked: &[Evaluation]) -> Vec<String> {
    let Some(best) = ranked.first().filter(|e| e.feasible()) else {
        return explain_infeasible(ranked);
    };
    let p = &best.plan;
    let c = &best.candidate;
    let obj = &scenario.objectives;
    let fan_out = scenario.inputs.predictions_per_request;
    // "unbatched" is of requests: a request's own predictions still run
    // together, which the backend sentence details.
    let asks = if fan_out > 1 && c.mode != Mode::Batch {
        format!(
            "; each request asks for {} predictions",
            crate::report::format::thousands(fan_out as f64)
        )
    } else {
        String::new()
    };
    let mut out = vec![format!(
        "Recommended: {}{asks}. {} {} against an SLO of {} at {}, {}/month ({}/1M predictions).",
        c.describe(),
        percentile_name(obj.latency_percentile),
        slo_latency_text(best),
        fmt_ms(obj.latency_ms),
        simulated_traffic_text(scenario, profiles),
        fmt_usd(p.cost_usd_per_month),
        crate::report::format::usd_small(p.cost_usd_per_million),
    )];
    out.extend(super::evaluate::narrow_slo_margin(best, scenario));
    out.extend(sized_for_the_peak(scenario, best));
    let ties = super::tie_test(scenario, ranked);
    out.push(compare_dimension(
        obj.latency_percentile,
        "mode",
        ranked,
        best,
        |e| e.candidate.mode.name().to_string(),
        &scenario
            .search
            .modes
            .iter()
            .map(|m| m.name().to_string())
            .collect::<Vec<_>>(),
        &ties,
    ));
    out.push(placement_sentence(scenario, ranked, best));
    if let Some(s) = instance_sentence(scenario, ranked, best) {
        out.push(s);
    }
    if let Some(s) = backend_sentence(scenario, profiles, c) {
        out.push(s);
    }
    if let Some(line) = other_device_classes(scenario, c) {
        out.push(line);
    }
    if let Some(line) = classes_over_the_slo(scenario, p) {
        out.push(line);
    }
    // A lower precision that tied and was cheaper or faster: say why it lost.
    let saving = |e: &Evaluation| {
        let cheaper = p.cost_usd_per_month - e.plan.cost_usd_per_month;
        let faster = p.latency_ms.p99 - e.plan.latency_ms.p99;
        let mut parts = Vec::new();
        // Less than shows in the figures is no saving to name.
        if cheaper >= 0.005 {
            parts.push(format!("{} a month cheaper", fmt_usd(cheaper)));
        }
        if faster > 0.0 && faster >= p.latency_ms.p99 * 1e-3 {
            parts.push(format!("{} faster at p99", fmt_ms(faster)));
        }
        parts
    };
    // A tied plan that agrees less with the reference (a tiered plan's
    // uniform rival runs the smaller model everywhere): the same, in points.
    let gives_up = |e: &Evaluation| {
        if super::precision_rank(e.candidate.precision) > super::precision_rank(c.precision)
            && c.class_builds.is_empty()
        {
            Some(c.precision.name().to_string())
        } else if p.accuracy_agreement - e.plan.accuracy_agreement >= 5e-5 {
            Some(format!(
                "{} points of accuracy agreement ({} against {})",
                fmt_pct(p.accuracy_agreement - e.plan.accuracy_agreement),
                agreement_pct(p.accuracy_agreement),
                agreement_pct(e.plan.accuracy_agreement)
            ))
        } else {
            None
        }
    };
    if let Some((lower, parts, what)) = ranked
        .iter()
        .skip(1)
        .filter(|e| ties(e))
        .filter_map(|e| gives_up(e).map(|what| (e, saving(e), what)))
        .find(|(_, parts, _)| !parts.is_empty())
    {
        out.push(format!(
            "{} would be {}: too little to give up {what}, so it is kept.",
            lower.candidate.describe(),
            parts.join(" and "),
        ));
    }
    if !c.class_builds.is_empty() {
        out.push(tiered_accuracy_sentence(scenario, profiles, c, p));
    } else if c.precision != Precision::F32 {
        let key = (c.variant.clone(), c.precision);
        let inputs = profiles
            .agreement_inputs
            .get(&key)
            .copied()
            .unwrap_or(super::evaluate::AGREEMENT_INPUTS);
        // The measured figure is the precision's against its own variant at
        // f32; the plan's may also count declared accuracies (a smaller
        // variant) and a cloud fallback, which are modelled, not measured.
        let measured = profiles.accuracy.get(&key).copied();
        let mut line = match measured {
            Some(m) => format!(
                "{} keeps {}% agreement with `{}` at f32 on {inputs} seeded inputs",
                c.precision.name(),
                fmt_pct(m),
                c.variant
            ),
            None => format!("{} agreement was not measured", c.precision.name()),
        };
        if measured.is_none_or(|m| (m - p.accuracy_agreement).abs() > 1e-9) {
            let counts = if c.fallback_model.is_some() {
                "the declared accuracies and what its cloud fallback catches (modelled)"
            } else {
                "the declared accuracies of the variants (not measured)"
            };
            line.push_str(&format!(
                "; the plan's {} against the f32 reference also counts {counts}",
                agreement_pct(p.accuracy_agreement)
            ));
        }
        out.push(format!("{line} (floor {}%).", fmt_pct(obj.accuracy_floor)));
    }
    if let Some(runner) = ranked
        .iter()
        .skip(1)
        .find(|e| e.feasible() && e.candidate.family() != c.family())
    {
        let r = &runner.plan;
        // A tie on cost and latency goes to agreement: say it where it differs.
        let (theirs, ours) = (
            agreement_pct(r.accuracy_agreement),
            agreement_pct(p.accuracy_agreement),
        );
        let agreement = if theirs == ours {
            String::new()
        } else {
            format!(", agreement {theirs} vs {ours}")
        };
        out.push(format!(
            "Runner-up: {}: {}/month{}, {} vs {}{agreement}.",
            runner.candidate.describe(),
            fmt_usd(r.cost_usd_per_month),
            cost_difference(r.cost_usd_per_month, p.cost_usd_per_month),
            at_slo(obj.latency_percentile, runner),
            best.slo_latency_ms
                .map_or_else(|| fmt_ms(p.latency_ms.p99), fmt_ms)
        ));
    }
    if let Some(line) = tiered_not_chosen(obj.latency_percentile, ranked, c, p) {
        out.push(line);
    }
    out
}

/// Why a feasible tiered fleet plan that agrees more with the reference
/// model was not chosen: accuracy above the floor only breaks ties, and it
/// gives up cost or latency (its figures say how much).
/// Traffic too light for the longest simulated window to hold the SLO
/// percentile's requests: the rate plans were simulated at instead, and why
/// that still judges them fairly. `None` at any usual rate.
pub fn light_traffic_note(scenario: &Scenario, profiles: &ProfileSet) -> Option<String> {
    let ctx = super::evaluate::Context {
        scenario,
        profiles,
        only: None,
        cancel: None,
    };
    let t = &scenario.traffic;
    let rps = crate::report::format::rps;
    let devices: Vec<String> = ctx
        .raised_device_rates()
        .into_iter()
        .map(|(class, sampled, real, simulated)| {
            format!(
                "{class} ({} simulated) at {} per device, not {}",
                crate::report::format::thousands(sampled as f64),
                rps(simulated),
                rps(real)
            )
        })
        .collect();
    let at = percentile_name(scenario.objectives.latency_percentile);
    let devices_note = |likewise: &str| {
        (!devices.is_empty()).then(|| {
            format!(
                "Devices used so rarely that even the most of them simulated see too few requests in 30 days to estimate {at} are simulated at a raised rate{likewise}: {}.",
                devices.join("; ")
            )
        })
    };
    let Some(raised) = ctx.raised_rate() else {
        return devices_note("").map(|note| {
            format!(
                "{note} Queues only grow with the rate, and at either rate requests almost never meet, so the latency is a lone request's; cost is billed at the real rate."
            )
        });
    };
    let peak = if matches!(t.process, crate::scenario::ArrivalProcess::Diurnal { .. }) {
        format!("{} (the day's peak)", rps(t.peak_rate_per_s()))
    } else {
        rps(t.rate_per_s)
    };
    Some(format!(
        "At {peak}, 30 days of traffic hold too few requests to estimate {}: plans were simulated at {}, the least rate that gives enough. Queues only grow with the rate, and at either rate requests almost never meet, so the latency is a lone request's; utilisation is the simulated rate's, cost is billed at {}.",
        percentile_name(scenario.objectives.latency_percentile),
        rps(raised),
        rps(t.rate_per_s),
    ) + &devices_note(" too").map_or_else(String::new, |note| format!(" {note}")))
}

fn tiered_not_chosen(
    q: f64,
    ranked: &[Evaluation],
    c: &Candidate,
    p: &crate::report::Plan,
) -> Option<String> {
    if !c.class_builds.is_empty() {
        return None;
    }
    let tiered = ranked.iter().find(|e| {
        e.feasible()
            && !e.candidate.class_builds.is_empty()
            && e.plan.accuracy_agreement > p.accuracy_agreement
    })?;
    let t = &tiered.plan;
    Some(format!(
        "The tiered plan ({}) agrees more with the reference model ({} against {}) at {}/month{} and {}: above the floor, accuracy only decides between plans that tie on cost and latency.",
        tiered.candidate.class_builds_text(),
        agreement_pct(t.accuracy_agreement),
        agreement_pct(p.accuracy_agreement),
        fmt_usd(t.cost_usd_per_month),
        cost_difference(t.cost_usd_per_month, p.cost_usd_per_month),
        at_slo(q, tiered)
    ))
}

/// An agreement as the rationale prints it ("99.4%"), "unknown" for the 0
/// a plan of undeclared accuracy carries (see [`crate::report::format::agreement`]).
fn agreement_pct(fraction: f64) -> String {
    if fraction == 0.0 {
        "unknown".to_string()
    } else {
        format!("{}%", fmt_pct(fraction))
    }
}

/// The rate plans were simulated at, as the SLO sentence names it: the mean,
/// or for traffic that peaks (diurnal, bursty) the peak with the mean beside
/// it, since the simulation ran at the peak ([`super::evaluate::Context::arrivals`]).
/// Traffic too light to judge is simulated at a raised rate instead, which
/// [`light_traffic_note`] explains: the mean is named then.
fn simulated_traffic_text(scenario: &Scenario, profiles: &ProfileSet) -> String {
    let rps = crate::report::format::rps;
    let t = &scenario.traffic;
    let (mean, peak) = (t.rate_per_s, t.peak_rate_per_s());
    let raised = super::evaluate::Context {
        scenario,
        profiles,
        only: None,
        cancel: None,
    }
    .raised_rate()
    .is_some();
    if raised || rps(peak) == rps(mean) {
        return rps(mean);
    }
    match t.process {
        crate::scenario::ArrivalProcess::Diurnal { .. } => {
            format!("the peak {} (mean {})", rps(peak), rps(mean))
        }
        crate::scenario::ArrivalProcess::Bursty { .. } => {
            format!("the peak {} in bursts (mean {})", rps(peak), rps(mean))
        }
        _ => rps(mean),
    }
}

/// For traffic that peaks (diurnal, bursty, a trace), on a plan with replicas: they
/// are a fixed count sized for the peak, billed all month (the planner
/// models no autoscaling); what is billed per request is at the mean.
fn sized_for_the_peak(scenario: &Scenario, best: &Evaluation) -> Option<String> {
    let rps = crate::report::format::rps;
    let c = &best.candidate;
    let t = &scenario.traffic;
    let has_replicas =
        c.mode != Mode::Batch && (c.placement == Placement::Cloud || c.fallback_target.is_some());
    // Replicas are sized for the peak whatever the process (a trace's is its
    // busiest second): said wherever the peak is not the mean.
    let (mean, peak) = (t.rate_per_s, t.peak_rate_per_s());
    if !has_replicas || rps(peak) == rps(mean) {
        return None;
    }
    let whose = if c.fallback_target.is_some() {
        " of the cloud fallback"
    } else {
        ""
    };
    let are = if c.replicas == 1 { "is" } else { "are" };
    Some(format!(
        "Instances are sized for the peak of {} ({:.1}x the mean {}): the {}{whose} {are} billed all month at that count (no autoscaling is modelled); what is priced per request or per byte is billed at the mean.",
        rps(peak),
        peak / mean,
        rps(mean),
        crate::report::format::count(c.replicas, "replica"),
    ))
}

/// " (+4%)", or the dollars where the percentage would round to nothing:
/// " (-$0.05)", " (same cost)".
fn cost_difference(other: f64, chosen: f64) -> String {
    let extra = other - chosen;
    let pct = if chosen > 0.0 {
        extra / chosen * 100.0
    } else {
        0.0
    };
    if extra.abs() < 0.005 {
        " (same cost)".to_string()
    } else if pct.abs() >= 0.5 {
        format!(" ({pct:+.0}%)")
    } else {
        let sign = if extra > 0.0 { "+" } else { "-" };
        format!(" ({sign}{})", fmt_usd(extra.abs()))
    }
}

/// A plan's latency where its SLO (at percentile `q`) is judged, named
/// ("p95 132 ms"; see [`crate::report::latency_at_slo`]).
fn at_slo(q: f64, e: &Evaluation) -> String {
    let (name, ms) =
        crate::report::latency_at_slo(Some(q), e.slo_latency_ms, e.plan.latency_ms.p99);
    format!("{name} {}", fmt_ms(ms))
}

/// The plan's latency at the SLO percentile, as the SLO was checked.
fn slo_latency_text(e: &Evaluation) -> String {
    e.slo_latency_ms.map_or_else(
        || "not reached (too many requests failed)".to_string(),
        fmt_ms,
    )
}

/// Why this cloud instance type: the plans of the same mode on each other
/// instance type the search allows, as for the mode ("aws-c7i.xlarge is ruled
/// out: p99 18.7 ms > SLO 18.6 ms"). `None` off the cloud or with one type.
fn instance_sentence(
    scenario: &Scenario,
    ranked: &[Evaluation],
    best: &Evaluation,
) -> Option<String> {
    let c = &best.candidate;
    if c.placement != Placement::Cloud {
        return None;
    }
    let types: Vec<String> = scenario
        .targets
        .cloud
        .iter()
        .map(|t| t.spec.name.clone())
        .filter(|name| scenario.search.targets.contains(name))
        .collect();
    if types.len() < 2 {
        return None;
    }
    let same_mode = |e: &&Evaluation| {
        e.candidate.mode == c.mode
            && e.candidate.placement == Placement::Cloud
            && e.candidate.precompute_fraction.is_some() == c.precompute_fraction.is_some()
    };
    let like: Vec<&Evaluation> = ranked.iter().filter(same_mode).collect();
    let sentence = compare_among(
        scenario.objectives.latency_percentile,
        "instance type",
        &like,
        best,
        |e| e.candidate.target.clone(),
        &types,
        &super::tie_test(scenario, ranked),
    );
    // No plan of the mode on another type: nothing to compare.
    if sentence.starts_with("Only ") {
        return None;
    }
    Some(among(
        &sentence,
        &format!("{} plans on the cloud", c.mode.name()),
    ))
}

/// "Why X: ..." said of a selection of the plans: "Why X (among `which`): ...".
fn among(sentence: &str, which: &str) -> String {
    sentence.replacen(": ", &format!(" (among {which}): "), 1)
}

/// Why this placement: each other placement's plans of the chosen mode (the
/// mode is explained on its own; a placement's batch plans failing "cannot
/// precompute" says nothing of its online ones), or all its plans when it
/// has none of the mode.
fn placement_sentence(scenario: &Scenario, ranked: &[Evaluation], best: &Evaluation) -> String {
    let mode = best.candidate.mode;
    let placement = |e: &Evaluation| e.candidate.placement.name().to_string();
    let values: Vec<String> = scenario
        .search
        .placements
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    let of_mode = |value: &String| {
        ranked
            .iter()
            .any(|e| e.candidate.mode == mode && placement(e) == *value)
    };
    let chosen = placement(best);
    let others: Vec<&String> = values.iter().filter(|v| **v != chosen).collect();
    let has_mode: Vec<bool> = others.iter().map(|v| of_mode(v)).collect();
    let like: Vec<&Evaluation> = ranked
        .iter()
        .filter(|e| {
            e.candidate.mode == mode
                || others
                    .iter()
                    .zip(&has_mode)
                    .any(|(v, has)| !has && placement(e) == **v)
        })
        .collect();
    let sentence = compare_among(
        scenario.objectives.latency_percentile,
        "placement",
        &like,
        best,
        placement,
        &values,
        &super::tie_test(scenario, ranked),
    );
    // Said of the mode's plans alone: say so.
    if has_mode.iter().any(|has| *has) && has_mode.iter().all(|has| *has) {
        among(&sentence, &format!("{} plans", mode.name()))
    } else {
        sentence
    }
}

/// "Why this mode/placement": the best plan of each other value, or the
/// commonest reason that value was rejected.
fn compare_dimension(
    q: f64,
    what: &str,
    ranked: &[Evaluation],
    best: &Evaluation,
    key: impl Fn(&Evaluation) -> String,
    values: &[String],
    ties: &dyn Fn(&Evaluation) -> bool,
) -> String {
    let all: Vec<&Evaluation> = ranked.iter().collect();
    compare_among(q, what, &all, best, key, values, ties)
}

/// [`compare_dimension`] over a selection of the ranked plans; `ties` says
/// which plans the ranking calls tied with the best.
fn compare_among(
    q: f64,
    what: &str,
    ranked: &[&Evaluation],
    best: &Evaluation,
    key: impl Fn(&Evaluation) -> String,
    values: &[String],
    ties: &dyn Fn(&Evaluation) -> bool,
) -> String {
    let chosen = key(best);
    let mut parts = Vec::new();
    for value in values.iter().filter(|v| **v != chosen) {
        let of_value: Vec<&Evaluation> = ranked
            .iter()
            .copied()
            .filter(|e| key(e) == *value)
            .collect();
        if of_value.is_empty() {
            continue;
        }
        if let Some(alt) = of_value.iter().find(|e| e.feasible()) {
            let extra = alt.plan.cost_usd_per_month - best.plan.cost_usd_per_month;
            // Under a cent is no difference to name ("$0.00 less").
            let cost = if extra.abs() < 0.005 {
                "costs the same".to_string()
            } else {
                format!(
                    "costs {} {} per month",
                    fmt_usd(extra.abs()),
                    if extra >= 0.0 { "more" } else { "less" }
                )
            };
            // A cheaper plan that works loses a tie or ranks lower for its
            // latency (the ranking weighs p99 against cost): say which, or
            // the sentence argues against the choice it explains.
            let (alt_p99, best_p99) = (alt.plan.latency_ms.p99, best.plan.latency_ms.p99);
            let why_not = if extra > -0.005 {
                String::new()
            } else if !ties(alt) {
                format!(
                    ", but ranks lower: the ranking weighs its p99 of {} against {} more than the saving",
                    fmt_ms(alt_p99),
                    fmt_ms(best_p99)
                )
            } else {
                ", but ties with it, and a tie goes to the plan that gives up least (agreement with the reference, precision, a simpler system)".to_string()
            };
            let joined = if why_not.is_empty() { "but" } else { "and" };
            parts.push(format!(
                "{value} also works {joined} {cost} ({}){why_not}",
                at_slo(q, alt)
            ));
        } else {
            // The reason most of its plans share (the closest plan's alone
            // may be one only a variant of them has).
            parts.push(format!(
                "{value} is ruled out: {}",
                commonest_reason(&of_value)
            ));
        }
    }
    if parts.is_empty() {
        format!("Only {chosen} was considered for the {what}.")
    } else {
        format!("Why {chosen}: {}.", parts.join("; "))
    }
}

/// The kind of reason given to most plans, in the words of the closest plan
/// that has it, with how many plans share it; kinds given to as many plans
/// as it follow it, in the order seen (a tie broken by order alone would
/// blame one of two equal causes). Reasons of one kind differ in their
/// figures and details ("p99 210 ms > SLO …", "accuracy agreement 92.6% <
/// floor 97% (…, times bf16 agreement …)"), so they are counted by
/// [`reason_kind`].
fn commonest_reason(evaluations: &[&Evaluation]) -> String {
    struct Kind<'a> {
        plans: usize,
        first_seen: usize,
        /// The closest plan's words for it.
        closest: &'a str,
        /// Whether other plans word it differently (other figures).
        worded_apart: bool,
    }
    let mut kinds: BTreeMap<String, Kind<'_>> = BTreeMap::new();
    for (order, e) in evaluations.iter().enumerate() {
        let mut seen = Vec::new();
        for reason in &e.rejected {
            let kind = reason_kind(reason);
            if seen.contains(&kind) {
                continue;
            }
            let entry = kinds.entry(kind.clone()).or_insert(Kind {
                plans: 0,
                first_seen: order,
                closest: reason.as_str(),
                worded_apart: false,
            });
            entry.plans += 1;
            entry.worded_apart |= entry.closest != reason.as_str();
            seen.push(kind);
        }
    }
    let most = kinds.values().map(|k| k.plans).max().unwrap_or(0);
    let mut tied: Vec<Kind<'_>> = kinds.into_values().filter(|k| k.plans == most).collect();
    tied.sort_by_key(|k| k.first_seen);
    if tied.is_empty() {
        return "no candidate".to_string();
    }
    // The reason is quoted from the best ranked plan that has it: with its
    // figures, it is that plan's ("over budget by $2.72/month" is not every
    // plan's margin).
    tied.iter()
        .map(|k| {
            let whose = if k.worded_apart {
                "; figures of the closest"
            } else {
                ""
            };
            format!(
                "{} ({} of {} plans{whose})",
                k.closest,
                k.plans,
                evaluations.len()
            )
        })
        .collect::<Vec<_>>()
        .join("; just as often: ")
}

/// Units a figure in a reason may carry, left out with it: "needs 1.1 MB"
/// and "needs 313.0 kB" are one kind.
const REASON_UNITS: [&str; 20] = [
    "ns", "µs", "ms", "s", "min", "h", "d", "B", "kB", "KB", "MB", "GB", "KiB", "MiB", "GiB", "W",
    "mW", "µW", "mJ", "J",
];

/// What a reason says with its figures and its details left out: "p99 # >
/// SLO #" for "p99 80.1 ms > SLO 50 ms (the 2% that failed counted as
/// slowest)". The words before a parenthesis say the cause; the parenthesis
/// (how requests failed, on which device, what an accuracy figure rests on)
/// and the figures differ between plans that fail for the same cause.
fn reason_kind(reason: &str) -> String {
    let cause = reason.split(" (").next().unwrap_or(reason);
    let mut out = String::with_capacity(cause.len());
    let mut chars = cause.char_indices().peekable();
    let mut after_letter = false;
    while let Some((at, ch)) = chars.next() {
        // Digits that are part of a name ("p99", "int8", "f32") are no figure.
        if !ch.is_ascii_digit() || after_letter {
            after_letter = ch.is_alphanumeric();
            out.push(ch);
            continue;
        }
        out.push('#');
        let mut end = at + ch.len_utf8();
        while let Some(&(i, next)) = chars.peek() {
            let continues = next.is_ascii_digit()
                || (matches!(next, '.' | ',')
                    && cause[i + 1..].starts_with(|c: char| c.is_ascii_digit()));
            if !continues {
                break;
            }
            end = i + next.len_utf8();
            chars.next();
        }
        // A unit after the figure ("1.1 MB", "300.0 kB") goes with it.
        let rest = &cause[end..];
        let word = rest
            .strip_prefix(' ')
            .unwrap_or(rest)
            .split(|c: char| !c.is_alphabetic())
            .next()
            .unwrap_or("");
        if !word.is_empty() && REASON_UNITS.contains(&word) {
            let skip = rest.len() - rest.strip_prefix(' ').unwrap_or(rest).len() + word.len();
            let until = end + skip;
            while chars.peek().is_some_and(|&(i, _)| i < until) {
                chars.next();
            }
        }
    }
    out
}

fn backend_sentence(scenario: &Scenario, profiles: &ProfileSet, c: &Candidate) -> Option<String> {
    // A hybrid's device answers one request at a time; its batching is the
    // cloud fallback's, said in a sentence of its own.
    let device_batch = if c.fallback_model.is_some() {
        1
    } else {
        c.max_batch.max(1)
    };
    // Online, each request runs its `predictions_per_request`; a batch job's
    // batch is of predictions already.
    let fan_out = if c.mode == Mode::Batch {
        1
    } else {
        scenario.inputs.predictions_per_request
    };
    let run_on = |target: &str, device: Option<&crate::scenario::Target>| {
        let build = c.build_on(target);
        let mut s = run_sentence(
            profiles,
            &build.variant,
            build.backend,
            build.precision,
            (device_batch, fan_out),
            target,
        )?;
        if let Some(why) = device.and_then(|d| faster_build_too_large(scenario, profiles, c, d)) {
            s.push(' ');
            s.push_str(&why);
        }
        // A tiered plan's classes run different models: each sentence says which.
        Some(if c.class_builds.is_empty() {
            s
        } else {
            format!("{}: {s}", build.variant)
        })
    };
    // A fleet's plan runs on each of its classes: one sentence each.
    let classes = if c.placement == Placement::Cloud {
        Vec::new()
    } else {
        scenario.targets.device_classes(&c.target)
    };
    let mut s = if classes.len() > 1 {
        let each: Vec<String> = classes
            .iter()
            .filter_map(|(t, _)| run_on(&t.spec.name, Some(t)))
            .collect();
        (!each.is_empty()).then(|| each.join(" "))?
    } else {
        run_on(&c.target, classes.first().map(|(t, _)| *t))?
    };
    if let (Some(f), Some(cloud)) = (&c.fallback_model, &c.fallback_target) {
        if let Some(fallback) = run_sentence(
            profiles,
            &f.variant,
            f.backend,
            f.precision,
            (c.max_batch.max(1), fan_out),
            cloud,
        ) {
            s.push_str(&format!(" In the cloud fallback, {} {fallback}", f.variant));
        }
    }
    Some(s)
}

/// Why a device runs a slower build than the fastest of its variant and
/// precision there: the fastest does not fit its memory ("tiled f32 is
/// faster there but needs 40.0 MB, more than the 32.0 MB the device may
/// use."). `None` when the plan runs the fastest, or the fastest fits.
fn faster_build_too_large(
    scenario: &Scenario,
    profiles: &ProfileSet,
    c: &Candidate,
    device: &crate::scenario::Target,
) -> Option<String> {
    let name = &device.spec.name;
    let build = c.build_on(name);
    let allowed = &scenario.search.backends;
    let fastest = profiles.best_backend(&build.variant, build.precision, name, allowed)?;
    if fastest.backend == build.backend {
        return None;
    }
    // As the search judged it: a batch job one input at a time, a request
    // its predictions at once.
    let inputs = if c.mode == Mode::Batch {
        1
    } else {
        scenario.inputs.predictions_per_request
    };
    let batch = super::evaluate::inputs_at_once(fastest, inputs);
    let needs = super::evaluate::device_memory_needed(
        scenario,
        profiles,
        (&build.variant, fastest.backend, build.precision),
        batch,
    );
    let limit = super::evaluate::device_memory_limit(scenario, device);
    (needs.total() > limit).then(|| {
        format!(
            "{} {} is faster there but needs {} at batch {batch}, more than the {} the device may use.",
            fastest.backend.name(),
            build.precision.name(),
            crate::scenario::format_bytes(needs.total() as f64),
            crate::scenario::format_bytes(limit as f64)
        )
    })
}

/// For a plan on one of several edge device classes: the others are not
/// served by it (each class is planned as an alternative carrying all the
/// traffic, see docs/scenarios.md), said so a reader of a mixed fleet does
/// not take the plan for the whole fleet's.
fn other_device_classes(scenario: &Scenario, c: &Candidate) -> Option<String> {
    if c.placement == Placement::Cloud {
        return None;
    }
    if scenario.targets.fleet_name().as_deref() == Some(c.target.as_str()) {
        return Some(fleet_sentence(scenario, c));
    }
    let searched = &scenario.search.targets;
    let others: Vec<&crate::scenario::Target> = scenario
        .targets
        .edge
        .iter()
        .filter(|t| t.spec.name != c.target)
        .filter(|t| searched.is_empty() || searched.contains(&t.spec.name))
        .collect();
    if c.placement == Placement::Cloud || others.is_empty() {
        return None;
    }
    let others: Vec<String> = others
        .into_iter()
        .map(|t| {
            let devices = t.fleet_size.unwrap_or(1);
            format!(
                "{} ({} device{})",
                t.spec.name,
                crate::report::format::thousands(devices as f64),
                if devices == 1 { "" } else { "s" }
            )
        })
        .collect();
    Some(format!(
        "It runs on {} only, which carries all the traffic in this plan: {} {} not served by it (the edge classes are planned as alternatives; `edge_classes = \"fleet\"` in [targets] plans them as parts of one fleet).",
        c.target,
        others.join(", "),
        if others.len() == 1 { "is" } else { "are" }
    ))
}

/// For a plan on a fleet: the classes whose own users' latency misses the
/// SLO, which the fleet's percentile (over all requests) can hide when they
/// serve few of them. A class's figure is its nearest reported percentile at
/// or above the SLO's.
fn classes_over_the_slo(scenario: &Scenario, p: &crate::report::Plan) -> Option<String> {
    let obj = &scenario.objectives;
    let q = obj.latency_percentile;
    let over: Vec<String> = p
        .device_classes
        .iter()
        .filter_map(|class| {
            let l = &class.latency_ms;
            let (name, ms) = match class.slo_latency_ms {
                Some(ms) => (percentile_name(q), ms),
                // Figures from before the class's own was kept: the nearest
                // reported percentile at or above the SLO's.
                None => [(50.0, l.p50), (90.0, l.p90), (99.0, l.p99)]
                    .into_iter()
                    .find(|(at, _)| q <= *at)
                    .map_or(("p99.9".to_string(), l.p999), |(at, ms)| {
                        (percentile_name(at), ms)
                    }),
            };
            (ms > obj.latency_ms).then(|| {
                format!(
                    "{}'s users ({}% of the requests) see {name} {}",
                    class.target,
                    fmt_pct(class.traffic_share),
                    fmt_ms(ms)
                )
            })
        })
        .collect();
    (!over.is_empty()).then(|| {
        format!(
            "Not every device class meets the SLO ({} {}) on its own: {}; the fleet's {} is over all requests.",
            percentile_name(q),
            fmt_ms(obj.latency_ms),
            over.join("; "),
            percentile_name(q)
        )
    })
}

/// A tiered plan's agreement with the reference model: each class's build's,
/// weighted by the share of the requests the class serves.
fn tiered_accuracy_sentence(
    scenario: &Scenario,
    profiles: &ProfileSet,
    c: &Candidate,
    p: &crate::report::Plan,
) -> String {
    let ctx = super::evaluate::Context {
        scenario,
        profiles,
        only: None,
        cancel: None,
    };
    let each: Vec<String> = scenario
        .targets
        .device_classes(&c.target)
        .iter()
        .map(|(t, share)| {
            let build = c.build_on(&t.spec.name);
            let agreement = ctx.agreement(&build.variant, build.precision);
            let figure = agreement
                .value()
                .map_or_else(|| "unknown".to_string(), |v| format!("{}%", fmt_pct(v)));
            format!(
                "{figure} on {} ({}, {}% of the requests)",
                t.spec.name,
                build.describe(),
                fmt_pct(*share)
            )
        })
        .collect();
    let floor = scenario.objectives.accuracy_floor;
    format!(
        "Its accuracy agreement with the reference model, {}, is each class's build's weighted by the requests it serves: {}{}.",
        agreement_pct(p.accuracy_agreement),
        each.join(", "),
        if floor > 0.0 {
            format!(" (floor {}%, met by every class)", fmt_pct(floor))
        } else {
            String::new()
        }
    )
}

/// For a plan on a fleet: every class runs it, each for its own users.
fn fleet_sentence(scenario: &Scenario, c: &Candidate) -> String {
    let classes: Vec<String> = scenario
        .targets
        .fleet()
        .iter()
        .map(|(t, share)| {
            let devices = t.fleet_size.unwrap_or(1);
            format!(
                "{} ({} device{}, {}% of requests)",
                t.spec.name,
                crate::report::format::thousands(devices as f64),
                if devices == 1 { "" } else { "s" },
                fmt_pct(*share)
            )
        })
        .collect();
    if !c.class_builds.is_empty() {
        return format!(
            "It runs on the whole fleet, a build per device class ({}: on each class the build closest to the reference model whose p99 for one request there is within the SLO), each serving its own users: {}.",
            c.class_builds_text(),
            classes.join(", ")
        );
    }
    format!(
        "It runs on the whole fleet, one build ({} {} {}) on every device class, each serving its own users: {}.",
        c.variant,
        c.backend.name(),
        c.precision.name(),
        classes.join(", ")
    )
}

/// "tiled f32 runs a batch of 8 in 1.2 ms on c7i.large (projected), 40x
/// faster than naive f32 (48 ms)." With `fan_out` predictions a request
/// (`batch` requests a batch), how they run, as the planner times them
/// ([`super::profile::ComputeProfile::samples`]): "each request's 200
/// predictions as 7 runs of batch 32 in about 20.0 µs".
fn run_sentence(
    profiles: &ProfileSet,
    variant: &str,
    backend: BackendKind,
    precision: Precision,
    (batch, fan_out): (u32, u64),
    target: &str,
) -> Option<String> {
    let chosen = profiles.find(variant, backend, precision, target)?;
    let predictions = u64::from(batch).saturating_mul(fan_out.max(1));
    // The planner's figure: `per_request(fan_out).median_s(batch)`.
    let time_of =
        |profile: &super::profile::ComputeProfile| profile.per_request(fan_out).median_s(batch);
    let t = time_of(chosen);
    let naive = profiles.find(variant, BackendKind::Naive, Precision::F32, target);
    let runs = if fan_out <= 1 {
        format!("runs a batch of {batch} in")
    } else {
        let thousands = |n: u64| crate::report::format::thousands(n as f64);
        let whose = if batch == 1 {
            format!("each request's {} predictions", thousands(predictions))
        } else {
            format!(
                "a batch of {batch} requests ({} predictions)",
                thousands(predictions)
            )
        };
        // Up to the largest batch measured, one run; beyond, chunks of the
        // batch with the most predictions per second (`samples`).
        let how = match chosen.runs_for(predictions) {
            None => format!("as one batch of {}", thousands(predictions)),
            Some((chunk, chunks)) => format!(
                "as {} run{} of batch {chunk} (its most predictions per second)",
                thousands(chunks),
                if chunks == 1 { "" } else { "s" }
            ),
        };
        format!("runs {whose} {how} in about")
    };
    let mut s = format!(
        "{} {} {runs} {} on {} ({})",
        backend.name(),
        precision.name(),
        fmt_ms(t * 1000.0),
        target,
        chosen.source.name()
    );
    if let Some(n) =
        naive.filter(|_| !(backend == BackendKind::Naive && precision == Precision::F32))
    {
        let tn = time_of(n);
        if t > 0.0 && tn > 0.0 {
            s.push_str(&format!(
                ", {} naive f32 ({})",
                speed_against(tn / t),
                fmt_ms(tn * 1000.0)
            ));
        }
    }
    s.push('.');
    Some(s)
}

/// A reason that is the scenario's own term rather than a limit the plan ran
/// into: data kept on the device, a batch job over inputs that cannot be
/// precomputed, a mode whose broker or storage the targets do not offer. No
/// figure of the plan would change it.
fn stipulated(reason: &str) -> bool {
    reason == DATA_STAYS_ON_DEVICE
        || reason.ends_with(CANNOT_PRECOMPUTE)
        || reason.ends_with(super::search::NOT_AMONG_THE_TARGETS)
}

/// "2.3x faster than", "as fast as" or "1.4x slower than" for a speed-up of
/// `ratio` (reference time over this time); within 5% reads as the same speed,
/// since one decimal of a ratio near 1 says "1.0x faster" of a slower kernel.
fn speed_against(ratio: f64) -> String {
    if ratio >= 1.05 {
        format!("{ratio:.1}x faster than")
    } else if ratio > 1.0 / 1.05 {
        "about as fast as".to_string()
    } else {
        format!("{:.1}x slower than", 1.0 / ratio)
    }
}

/// The plan of an infeasible run closest to passing: the first ranked among
/// those the scenario's own terms allow (a plan it forbids outright is no
/// guide to what to change), else the first.
pub fn closest(ranked: &[Evaluation]) -> Option<&Evaluation> {
    ranked
        .iter()
        .find(|e| !e.rejected.iter().any(|r| stipulated(r)))
        .or_else(|| ranked.first())
}

fn explain_infeasible(ranked: &[Evaluation]) -> Vec<String> {
    let mut out = vec!["No plan meets every constraint.".to_string()];
    let all: Vec<&Evaluation> = ranked.iter().collect();
    // Privacy and the nature of the inputs rule plans out by the scenario's own
    // terms; what bound is the commonest reason among the plans they allow.
    let allowed: Vec<&Evaluation> = ranked
        .iter()
        .filter(|e| !e.rejected.iter().any(|r| stipulated(r)))
        .collect();
    if !allowed.is_empty() && allowed.len() < all.len() {
        out.push(format!(
            "Commonest reason among the plans the scenario allows: {}.",
            commonest_reason(&allowed)
        ));
        let mut terms: Vec<&str> = ranked
            .iter()
            .flat_map(|e| e.rejected.iter().filter(|r| stipulated(r)))
            .map(String::as_str)
            .collect();
        terms.sort_unstable();
        terms.dedup();
        out.push(format!(
            "The other {} plans are ruled out by the scenario's own terms ({}).",
            all.len() - allowed.len(),
            terms.join("; ")
        ));
    } else if !all.is_empty() {
        out.push(format!("Commonest reason: {}.", commonest_reason(&all)));
    }
    if let Some(closest) = closest(ranked) {
        out.push(format!(
            "Closest: {}: {}.",
            closest.candidate.describe(),
            closest.reason().unwrap_or_default()
        ));
    }
    out
}

/// The scenario's constraints checked against a plan.
pub fn constraint_checks(
    scenario: &Scenario,
    profiles: &ProfileSet,
    plan: Option<&Evaluation>,
) -> Vec<ConstraintCheck> {
    let Some(e) = plan else {
        return Vec::new();
    };
    let p = &e.plan;
    let obj = &scenario.objectives;
    let q = obj.latency_percentile;
    // A plan rejected before simulation has the compute time alone for its
    // latency and its instances alone for its cost: lower bounds, which can
    // prove a miss but not a pass.
    let latency_name = format!("{} latency", percentile_name(q));
    let latency_required = format!("<= {}", fmt_ms(obj.latency_ms));
    let latency_missed = e.slo_latency_ms.is_some_and(|ms| ms > obj.latency_ms)
        || e.rejected.iter().any(|r| r.contains("SLO"));
    let latency = if e.simulated {
        ConstraintCheck {
            name: latency_name,
            required: latency_required,
            achieved: e
                .slo_latency_ms
                .map_or_else(|| "not reached".to_string(), fmt_ms),
            ok: !latency_missed && e.slo_latency_ms.is_some(),
            checked: true,
        }
    } else {
        lower_bound_check(
            latency_name,
            latency_required,
            e.slo_latency_ms
                .filter(|&ms| ms > 0.0)
                .map(|ms| format!("≥ {} (compute alone)", crate::report::format::ms(ms))),
            latency_missed,
        )
    };
    let mut checks = vec![
        latency,
        ConstraintCheck {
            name: "accuracy agreement".to_string(),
            required: format!(">= {}%", fmt_pct(obj.accuracy_floor)),
            achieved: agreement_pct(p.accuracy_agreement),
            ok: p.accuracy_agreement + 1e-12 >= obj.accuracy_floor,
            checked: true,
        },
    ];
    if obj.min_throughput_per_s > 0.0 {
        let name = "throughput capacity".to_string();
        // The floor counts predictions, a request asks `predictions_per_request`
        // of them: both figures in predictions, judged as the planner judges them.
        let required = format!(">= {}", super::evaluate::floor_text(scenario));
        let achieved = super::evaluate::capacity_text(scenario, e.capacity_rps);
        let floor_rps = super::evaluate::throughput_floor_rps(scenario);
        checks.push(if e.simulated {
            ConstraintCheck {
                name,
                required,
                achieved,
                ok: e.capacity_rps >= floor_rps,
                checked: true,
            }
        } else {
            lower_bound_check(name, required, None, false)
        });
    }
    if let Some(budget) = obj.monthly_budget_usd {
        let name = "monthly budget".to_string();
        let required = format!("<= {}", fmt_usd(budget));
        checks.push(if e.simulated {
            ConstraintCheck {
                name,
                required,
                achieved: fmt_usd(p.cost_usd_per_month),
                ok: p.cost_usd_per_month <= budget,
                checked: true,
            }
        } else {
            let instances = p.cost_usd_per_month;
            lower_bound_check(
                name,
                required,
                (instances > 0.0).then(|| format!("≥ {} (instances alone)", fmt_usd(instances))),
                instances > budget,
            )
        });
    }
    if !scenario.constraints.data_may_leave_device {
        checks.push(ConstraintCheck {
            name: "data stays on device".to_string(),
            required: "edge only".to_string(),
            achieved: p.placement.name().to_string(),
            ok: p.placement == Placement::Edge,
            checked: true,
        });
    }
    // The devices the plan runs on, if any (edge, or the device half of a
    // fallback); on a fleet, the class whose memory binds most: the least
    // memory, or on a tiered plan the least room for its own build.
    let memory = super::evaluate::plan_device_memory(scenario, profiles, &e.candidate);
    let binding = memory
        .iter()
        .max_by(|a, b| (a.room_used().total_cmp(&b.room_used())).then(b.limit.cmp(&a.limit)));
    if let (Some(_), Some(binding)) = (scenario.constraints.max_device_memory_bytes, binding) {
        let (needs, limit) = (binding.needs.total(), binding.limit);
        // On a fleet, name the class that binds, when the classes differ.
        let differ = memory
            .iter()
            .any(|m| (m.needs.total(), m.limit) != (needs, limit));
        let on = if differ {
            format!(" (on {})", binding.device.spec.name)
        } else {
            String::new()
        };
        checks.push(ConstraintCheck {
            name: "device memory".to_string(),
            required: format!("<= {}{on}", crate::scenario::format_bytes(limit as f64)),
            achieved: format!(
                "{} ({})",
                crate::scenario::format_bytes(needs as f64),
                binding.describe()
            ),
            ok: needs <= limit,
            checked: true,
        });
    }
    if let (Some(limit), Some(average)) = (
        scenario.constraints.max_device_power_watts,
        e.device_power_w,
    ) {
        // On a fleet, the class drawing the most.
        let on = p
            .device_classes
            .iter()
            .max_by(|a, b| a.average_power_w.total_cmp(&b.average_power_w))
            .map_or_else(String::new, |class| format!(" (on {})", class.target));
        checks.push(ConstraintCheck {
            name: "device power (average)".to_string(),
            required: format!("<= {}", super::evaluate::fmt_watts(limit)),
            achieved: format!("{}{on}", super::evaluate::fmt_watts(average)),
            ok: average <= limit,
            checked: true,
        });
    }
    if scenario.constraints.offline_fraction > 0.0 {
        let name = "works offline".to_string();
        let required = format!(
            "devices offline {}% of the time",
            fmt_pct(scenario.constraints.offline_fraction)
        );
        checks.push(if e.simulated {
            ConstraintCheck {
                name,
                required,
                achieved: format!("{}% of requests fail", fmt_pct(p.failure_rate)),
                // Failed by what going offline does, not by another miss
                // (the latency row says that one).
                ok: !e.offline_bound,
                checked: true,
            }
        } else {
            lower_bound_check(name, required, None, false)
        });
    }
    checks
}

/// A row whose figure only the simulation gives, for a plan rejected before
/// it: shown as its lower bound (or "-"), checked only when that bound
/// already misses.
fn lower_bound_check(
    name: String,
    required: String,
    bound: Option<String>,
    bound_misses: bool,
) -> ConstraintCheck {
    ConstraintCheck {
        name,
        required,
        achieved: bound.unwrap_or_else(|| "-".to_string()),
        ok: false,
        checked: bound_misses,
    }
}

/// What changed between two plans, in a few words ("2 more replicas", "edge phone-flagship").
pub fn difference(from: &Candidate, to: &Candidate) -> String {
    if from.family() == to.family() {
        let d = i64::from(to.replicas) - i64::from(from.replicas);
        return match d {
            0 => "the same plan".to_string(),
            d if d > 0 => format!("{d} more replica{}", if d == 1 { "" } else { "s" }),
            d => format!("{} fewer replica{}", -d, if d == -1 { "" } else { "s" }),
        };
    }
    let mut parts = Vec::new();
    if from.mode != to.mode || from.placement != to.placement {
        parts.push(format!("{} on {}", to.mode.name(), to.placement.name()));
    }
    if from.target != to.target || from.fallback_target != to.fallback_target {
        parts.push(match &to.fallback_target {
            Some(f) => format!("{} + {}", to.target, f),
            None => to.target.clone(),
        });
    }
    if from.replicas != to.replicas && to.placement != Placement::Edge {
        let plural = if to.replicas == 1 { "" } else { "s" };
        parts.push(format!("{} replica{plural}", to.replicas));
    }
    if from.variant != to.variant {
        parts.push(format!("variant {}", to.variant));
    }
    if from.backend != to.backend || from.precision != to.precision {
        parts.push(format!("{} {}", to.backend.name(), to.precision.name()));
    }
    if from.max_batch != to.max_batch || from.max_delay_ms != to.max_delay_ms {
        parts.push(to.batching());
    }
    if parts.is_empty() {
        to.describe()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::{commonest_reason, constraint_checks, explain_infeasible, speed_against};
    use crate::plan::candidate::Candidate;
    use crate::plan::evaluate::pruned;
    use crate::plan::ProfileSet;
    use crate::report::{ConstraintCheck, FigureSource};
    use crate::scenario::{Mode, Placement};
    use workbench_kernels::{BackendKind, Precision};

    /// An unbatched plan on one target, no fallback.
    fn plan_on(
        mode: Mode,
        placement: Placement,
        target: &str,
        replicas: u32,
        variant: String,
        (backend, precision): (BackendKind, Precision),
    ) -> Candidate {
        Candidate {
            mode,
            placement,
            target: target.into(),
            fallback_target: None,
            fallback_model: None,
            replicas,
            variant,
            backend,
            precision,
            max_batch: 1,
            max_delay_ms: 0.0,
            precompute_fraction: None,
            class_builds: Vec::new(),
        }
    }

    /// card-fraud-stream's constraints (p99.9 <= 50 ms, $8,000/month) checked
    /// against a plan rejected before simulation with this latency floor and
    /// instance cost.
    fn checks_of_pruned(latency_floor_ms: f64, instances_usd: f64) -> Vec<ConstraintCheck> {
        let scenario =
            crate::scenario::load(std::path::Path::new("scenarios/card-fraud-stream.toml"))
                .unwrap();
        let candidate = plan_on(
            Mode::OnlineStream,
            Placement::Cloud,
            "c7i.large",
            2,
            scenario.model.variants[0].name.clone(),
            (BackendKind::Tiled, Precision::F32),
        );
        let mut e = pruned(
            candidate,
            FigureSource::Projected,
            1.0,
            latency_floor_ms / 1000.0,
            "device memory".into(),
        );
        e.plan.cost_usd_per_month = instances_usd;
        constraint_checks(&scenario, &ProfileSet::default(), Some(&e))
    }

    /// A card-fraud candidate rejected for `why`.
    fn rejected(mode: Mode, replicas: u32, why: &str) -> crate::plan::Evaluation {
        let candidate = plan_on(
            mode,
            Placement::Cloud,
            "c7i.large",
            replicas,
            "full".into(),
            (BackendKind::Tiled, Precision::F32),
        );
        pruned(candidate, FigureSource::Projected, 1.0, 0.001, why.into())
    }

    #[test]
    fn equally_common_reasons_are_all_named() {
        let plans = [
            rejected(Mode::OnlineStream, 1, "p99 80 ms > SLO 50 ms"),
            rejected(
                Mode::OnlineHttp,
                1,
                "utilisation 46.9 >= 1 even with 64 replicas",
            ),
            rejected(Mode::OnlineStream, 2, "p99 70 ms > SLO 50 ms"),
            rejected(
                Mode::OnlineHttp,
                2,
                "utilisation 23.5 >= 1 even with 64 replicas",
            ),
        ];
        let all: Vec<_> = plans.iter().collect();
        assert_eq!(
            commonest_reason(&all),
            "p99 80 ms > SLO 50 ms (2 of 4 plans; figures of the closest); just as often: \
             utilisation 46.9 >= 1 even with 64 replicas (2 of 4 plans; figures of the closest)"
        );
        assert_eq!(
            commonest_reason(&all[..3]),
            "p99 80 ms > SLO 50 ms (2 of 3 plans; figures of the closest)"
        );
        // One plan's figures are its own; a reason without figures is every plan's.
        assert_eq!(
            commonest_reason(&all[..1]),
            "p99 80 ms > SLO 50 ms (1 of 1 plans)"
        );
    }

    /// photo-tagging: online-http's closest plans fail for timed-out
    /// requests, each worded with its own figures and devices, and its
    /// others for accuracy; the timeouts had been split three ways, leaving
    /// accuracy (one wording) to be named alone as the reason.
    #[test]
    fn one_cause_worded_with_different_figures_is_counted_once() {
        let plans = [
            rejected(
                Mode::OnlineHttp,
                1,
                "60% of requests fail (phone-midrange: 1878 timed out)",
            ),
            rejected(
                Mode::OnlineHttp,
                2,
                "60.0% of requests fail (phone-flagship: 3 timed out, phone-midrange: 1,877 timed out)",
            ),
            rejected(
                Mode::OnlineHttp,
                3,
                "100% of requests fail (phone-flagship: 1979 timed out, phone-midrange: 1878 timed out)",
            ),
            rejected(
                Mode::OnlineHttp,
                4,
                "accuracy agreement 95.1% < floor 98% (ratio of declared accuracies, `slim` 0.77 / `full` 0.81, not measured)",
            ),
            rejected(
                Mode::OnlineHttp,
                5,
                "accuracy agreement 94.7% < floor 98% (ratio of declared accuracies, `slim` 0.77 / `full` 0.81, not measured, times int8 agreement 99.6% with f32, measured)",
            ),
        ];
        let all: Vec<_> = plans.iter().collect();
        assert_eq!(
            commonest_reason(&all),
            "60% of requests fail (phone-midrange: 1878 timed out) (3 of 5 plans; figures of the closest)"
        );
        // smart-reply-fallback: accuracy worded four ways outnumbers the
        // connectivity reason given in one.
        // One reason with a semicolon in it, as the simulation gives it
        // (`pruned` would split it in two).
        let mut plans: Vec<_> = (0..3)
            .map(|r| {
                let mut e = rejected(Mode::OnlineHttp, r, "offline");
                e.rejected = vec!["needs connectivity; device offline 15% of the time".into()];
                e
            })
            .collect();
        for (r, why) in [
            "accuracy agreement 93.0% < floor 97% (ratio of declared accuracies, `edge-small` 0.66 / `cloud` 0.71, not measured)",
            "accuracy agreement 92.6% < floor 97% (ratio of declared accuracies, `edge-small` 0.66 / `cloud` 0.71, not measured, times bf16 agreement 99.6% with f32, measured)",
            "accuracy agreement 91.1% < floor 97% (ratio of declared accuracies, `edge-small` 0.66 / `cloud` 0.71, not measured, times int8 agreement 98.0% with f32, measured)",
            "accuracy agreement 96.9% < floor 97% (int8 agreement 96.9% with f32, measured)",
        ]
        .into_iter()
        .enumerate()
        {
            plans.push(rejected(Mode::OnlineHttp, 10 + r as u32, why));
        }
        let all: Vec<_> = plans.iter().collect();
        assert_eq!(
            commonest_reason(&all),
            "accuracy agreement 93.0% < floor 97% (ratio of declared accuracies, `edge-small` 0.66 / `cloud` 0.71, not measured) (4 of 7 plans; figures of the closest)"
        );
        // One wording shared by every plan is theirs, not the closest's alone.
        assert_eq!(
            commonest_reason(&all[..3]),
            "needs connectivity; device offline 15% of the time (3 of 3 plans)"
        );
    }

    #[test]
    fn a_reasons_kind_leaves_out_figures_units_and_details() {
        use super::reason_kind;
        assert_eq!(
            reason_kind("needs 1.1 MB, device has 300.0 kB"),
            reason_kind("needs 313.0 kB, device has 300.0 kB")
        );
        assert_eq!(
            reason_kind("needs 1.1 MB, device has 300.0 kB"),
            "needs #, device has #"
        );
        assert_eq!(
            reason_kind("p99 80.1 ms > SLO 50 ms (the 2% that failed counted as slowest)"),
            "p99 # > SLO #"
        );
        assert_eq!(
            reason_kind("over budget by $2,172.72/month"),
            "over budget by $#/month"
        );
        assert_eq!(
            reason_kind("utilisation 46.9 >= 1 even with 64 replicas"),
            "utilisation # >= # even with # replicas"
        );
        // Different causes stay apart.
        assert_ne!(
            reason_kind("60% of requests fail (1 timed out)"),
            reason_kind("accuracy agreement 95.1% < floor 98%")
        );
        assert_ne!(
            reason_kind("capacity 12/s < required 100/s"),
            reason_kind("p99 12 ms > SLO 10 ms")
        );
    }

    /// A mode whose broker the targets lack is ruled out by the scenario's
    /// own setup: the headline is what bound the plans it allows.
    #[test]
    fn a_missing_broker_is_the_scenarios_term_not_the_commonest_limit() {
        let plans = [
            rejected(Mode::OnlineStream, 1, "no broker among the targets"),
            rejected(Mode::OnlineStream, 2, "no broker among the targets"),
            rejected(
                Mode::OnlineHttp,
                1,
                "utilisation 46.9 >= 1 even with 64 replicas",
            ),
        ];
        let lines = explain_infeasible(&plans);
        let text = lines.join("\n");
        assert!(
            text.contains("Commonest reason among the plans the scenario allows: utilisation 46.9"),
            "{text}"
        );
        assert!(
            text.contains("The other 2 plans are ruled out by the scenario's own terms (no broker among the targets)"),
            "{text}"
        );
    }

    /// Plans that miss alike rank the smaller model on its device closer:
    /// when no precision fits, the closest plan is int8's, not f32's (the
    /// summary had named f32 at 117 MB for a 16 MB device, where int8 needs 29).
    #[test]
    fn the_closest_plan_that_does_not_fit_is_the_smallest() {
        let scenario =
            crate::scenario::load(std::path::Path::new("scenarios/face-unlock.toml")).unwrap();
        let variant = scenario.model.variants[0].name.clone();
        let on_device = |backend: BackendKind, precision: Precision| {
            let candidate = plan_on(
                Mode::OnlineHttp,
                Placement::Edge,
                "phone-midrange",
                1,
                variant.clone(),
                (backend, precision),
            );
            pruned(
                candidate,
                FigureSource::Projected,
                1.0,
                0.0,
                "too large".into(),
            )
        };
        let mut plans = vec![
            on_device(BackendKind::Tiled, Precision::F32),
            on_device(BackendKind::Quantized, Precision::F16),
            on_device(BackendKind::Quantized, Precision::Int8),
        ];
        crate::plan::rank(&scenario, &ProfileSet::default(), &mut plans);
        let order: Vec<Precision> = plans.iter().map(|e| e.candidate.precision).collect();
        assert_eq!(order, [Precision::Int8, Precision::F16, Precision::F32]);
        let text = explain_infeasible(&plans).join("\n");
        assert!(
            text.contains("Closest: ") && text.contains("int8"),
            "{text}"
        );
    }

    /// The rationale says why this instance type: each other type's plans
    /// of the same mode, feasible at a price or ruled out for a reason (a
    /// tighter SLO had moved the plan to a larger instance with no word why).
    #[test]
    fn the_instance_type_is_explained_against_the_others() {
        let scenario =
            crate::scenario::load(std::path::Path::new("scenarios/hotel-ranking.toml")).unwrap();
        let names: Vec<String> = scenario
            .targets
            .cloud
            .iter()
            .map(|t| t.spec.name.clone())
            .collect();
        assert!(names.len() >= 2, "{names:?}");
        let on = |target: &str, mode: Mode, why: &str| {
            let candidate = plan_on(
                mode,
                Placement::Cloud,
                target,
                1,
                scenario.model.variants[0].name.clone(),
                (BackendKind::Tiled, Precision::F32),
            );
            let mut e = pruned(candidate, FigureSource::Projected, 1.0, 0.01, why.into());
            if why.is_empty() {
                e.rejected.clear();
            }
            e
        };
        let best = on(&names[0], Mode::OnlineHttp, "");
        let ranked = vec![
            best.clone(),
            on(&names[1], Mode::OnlineHttp, "p99 18.7 ms > SLO 18.6 ms"),
            // another mode's plan on the other type says nothing of this one's
            on(&names[1], Mode::Batch, ""),
        ];
        let line = super::instance_sentence(&scenario, &ranked, &best).expect("a sentence");
        assert_eq!(
            line,
            format!(
                "Why {} (among online-http plans on the cloud): {} is ruled out: p99 18.7 ms > SLO 18.6 ms (1 of 1 plans).",
                names[0], names[1]
            )
        );
        // Only the chosen type has plans of the mode: nothing to say.
        assert_eq!(
            super::instance_sentence(&scenario, &ranked[..1], &best),
            None
        );
        // A cheaper type that works: why it ranks lower, not just that it is
        // cheaper ("also works but costs $55.45 less" argued for it).
        let (mut best, mut cheaper) = (
            on(&names[0], Mode::OnlineHttp, ""),
            on(&names[1], Mode::OnlineHttp, ""),
        );
        best.plan.cost_usd_per_month = 300.0;
        best.plan.latency_ms.p99 = 90.0;
        cheaper.plan.cost_usd_per_month = 290.0;
        cheaper.plan.latency_ms.p99 = 140.0;
        let ranked = vec![best.clone(), cheaper.clone()];
        let line = super::instance_sentence(&scenario, &ranked, &best).expect("a sentence");
        assert!(
            line.contains("also works and costs $10.00 less per month")
                && line.contains(
                    "but ranks lower: the ranking weighs its p99 of 140 ms against 90.0 ms"
                ),
            "{line}"
        );
        // Tied with it (within the ranking's tie rule): it lost the tie.
        cheaper.plan.cost_usd_per_month = 299.5;
        cheaper.plan.latency_ms.p99 = 90.5;
        let ranked = vec![best.clone(), cheaper];
        let line = super::instance_sentence(&scenario, &ranked, &best).expect("a sentence");
        assert!(line.contains("but ties with it"), "{line}");
    }

    /// Another placement is ruled out for what rules out its plans of the
    /// chosen mode: its batch plans' "cannot precompute" had been named as
    /// the reason against it for an online plan.
    #[test]
    fn a_placement_is_ruled_out_by_its_plans_of_the_chosen_mode() {
        let mut scenario =
            crate::scenario::load(std::path::Path::new("scenarios/hotel-ranking.toml")).unwrap();
        scenario.search.modes = vec![Mode::Batch, Mode::OnlineHttp];
        scenario.search.placements = vec![Placement::Cloud, Placement::Edge];
        let on = |mode: Mode, placement: Placement, why: &str| {
            let candidate = plan_on(
                mode,
                placement,
                "somewhere",
                1,
                scenario.model.variants[0].name.clone(),
                (BackendKind::Tiled, Precision::F32),
            );
            let mut e = pruned(candidate, FigureSource::Projected, 1.0, 0.01, why.into());
            if why.is_empty() {
                e.rejected.clear();
            }
            e
        };
        let best = on(Mode::OnlineHttp, Placement::Cloud, "");
        let mut ranked = vec![best.clone()];
        for _ in 0..3 {
            ranked.push(on(
                Mode::Batch,
                Placement::Edge,
                "inputs unbounded: cannot precompute",
            ));
        }
        ranked.push(on(
            Mode::OnlineHttp,
            Placement::Edge,
            "needs 1.1 MB, device has 1.0 MB",
        ));
        assert_eq!(
            super::placement_sentence(&scenario, &ranked, &best),
            "Why cloud (among online-http plans): edge is ruled out: needs 1.1 MB, device has 1.0 MB (1 of 1 plans)."
        );
        // No online plan on the edge: its other plans say why.
        ranked.pop();
        assert_eq!(
            super::placement_sentence(&scenario, &ranked, &best),
            "Why cloud: edge is ruled out: inputs unbounded: cannot precompute (3 of 3 plans)."
        );
    }

    /// A plan that failed its SLO, not for going offline, works offline.
    #[test]
    fn works_offline_fails_only_for_what_offline_does() {
        let scenario =
            crate::scenario::load(std::path::Path::new("scenarios/face-unlock.toml")).unwrap();
        let mut e = rejected(Mode::OnlineHttp, 1, "p95 256 ms > SLO 150 ms");
        e.simulated = true;
        let offline_row = |e: &crate::plan::Evaluation| {
            let checks = constraint_checks(&scenario, &ProfileSet::default(), Some(e));
            row(&checks, "works offline").ok
        };
        assert!(offline_row(&e));
        e.offline_bound = true;
        assert!(!offline_row(&e));
    }

    fn row<'a>(checks: &'a [ConstraintCheck], name: &str) -> &'a ConstraintCheck {
        checks.iter().find(|c| c.name == name).unwrap()
    }

    #[test]
    fn a_plan_not_simulated_passes_no_row_its_simulation_would_settle() {
        let checks = checks_of_pruned(12.0, 300.0);
        let latency = row(&checks, "p99.9 latency");
        assert_eq!(latency.achieved, "≥ 12.0 ms (compute alone)");
        assert!(!latency.ok && !latency.checked, "{latency:?}");
        let budget = row(&checks, "monthly budget");
        assert!(budget.achieved.starts_with("≥ $300"), "{budget:?}");
        assert!(!budget.ok && !budget.checked, "{budget:?}");
        // Rows that need no simulation are checked as usual.
        let accuracy = row(&checks, "accuracy agreement");
        assert!(accuracy.ok && accuracy.checked);

        // Bounds past the limits already prove the misses.
        let checks = checks_of_pruned(80.0, 9000.0);
        for name in ["p99.9 latency", "monthly budget"] {
            let check = row(&checks, name);
            assert!(!check.ok && check.checked, "{check:?}");
        }
        // No instance cost known: no bound to show.
        assert_eq!(
            row(&checks_of_pruned(12.0, 0.0), "monthly budget").achieved,
            "-"
        );
    }

    #[test]
    fn a_kernel_no_faster_than_naive_is_not_called_faster() {
        assert_eq!(speed_against(3.04), "3.0x faster than");
        // 275 ns against naive's 271 ns once read "1.0x faster".
        assert_eq!(speed_against(271.0 / 275.0), "about as fast as");
        assert_eq!(speed_against(1.0), "about as fast as");
        assert_eq!(speed_against(0.5), "2.0x slower than");
    }
}
