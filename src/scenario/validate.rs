//! Text -> `Scenario`: TOML syntax, schema (serde, unknown keys, types), then
//! semantic checks. Every stage collects all of its problems before giving up.

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Largest fan-out accepted (a request scoring a million candidates is already absurd).
const MAX_PREDICTIONS_PER_REQUEST: u64 = 1_000_000;

use serde::Deserialize;
use toml::de::{DeTable, DeValue, Deserializer};
use toml::Spanned;
use workbench_kernels::{
    conv_output_size, Activation, BackendKind, BlockGeometry, ConvBlock, ConvnetSpec, MlpSpec,
    ModelSpec, Precision, TransformerSpec,
};

use super::error::{did_you_mean, not_accepted, Collector};
use super::limits::*;
use super::raw::*;
use super::*;
use crate::hardware::DEFAULT_PARALLEL_OVERHEAD_US;
use crate::hardware::{catalog, TargetKind, TargetSpec};

/// Most rounds of the schema stage (each reads the whole document again and
/// reports one wrong type, or every unknown key of one table) before giving up.
const MAX_SCHEMA_PASSES: usize = 100;
/// Fewest rounds, however large the file.
const MIN_SCHEMA_PASSES: usize = 10;
/// Bytes of text the schema stage reads again in all its rounds: a 3 MB
/// file of 300 wrong types took 100 rounds over all of it (35 s in a debug
/// build); a large file gets fewer rounds, a real one (a few kB) all 100.
const SCHEMA_WORK_BYTES: usize = 40 << 20;

/// Most arrivals read from a trace CSV.
const MAX_TRACE_EVENTS: usize = 10_000_000;

/// Largest trace CSV read.
const MAX_TRACE_BYTES: u64 = 512 << 20;
/// How far a fleet's stated traffic shares may add up from 1 (shares
/// written with three decimals, `0.333` three times, still pass).
const FLEET_SHARE_TOLERANCE: f64 = 0.005;

pub(crate) fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioErrors> {
    if text.trim().is_empty() {
        return Err(ScenarioErrors::whole_file(
            path,
            "file is empty: a scenario needs at least [model], [traffic], [inputs], [objectives] and [targets] (see docs/scenarios.md)",
        ));
    }
    let mut collector = Collector::new(text, path);
    let (doc, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        // After the first syntax error the parser's recovery produces a
        // cascade of follow-on errors; only the first is reliable. The
        // parser does not report them in file order (an unclosed table on
        // line 3 came before an unclosed string on line 1).
        let further = syntax_errors.len() - 1;
        let first_in_file = syntax_errors
            .iter()
            .min_by_key(|e| e.span().map_or(usize::MAX, |span| span.start));
        if let Some(first) = first_in_file {
            let mut message = format!("TOML syntax error: {}", first.message().trim());
            if further > 0 {
                message.push_str(&format!(
                    " ({further} further syntax error(s) may follow from this one)"
                ));
            }
            let span = first.span().unwrap_or(0..0);
            // Name the key for "duplicate key"; the span covers it.
            let key = if first.message().contains("duplicate key") {
                quoted(text.get(span.clone()).unwrap_or("").trim(), 60)
            } else {
                String::new()
            };
            collector.push(span, key, message);
        }
        collector.finish()?;
        return Err(ScenarioErrors::whole_file(path, "TOML syntax error"));
    }
    let (raw, removed) = deserialize_collecting(doc, &mut collector);
    let Some(raw) = raw else {
        collector.finish()?;
        return Err(ScenarioErrors::whole_file(path, "could not read the file"));
    };
    let mut v = Validator {
        c: collector,
        removed,
        base_dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let scenario = v.scenario(raw, path);
    v.c.finish()?;
    scenario.ok_or_else(|| ScenarioErrors::whole_file(path, "scenario is incomplete"))
}

/// Deserialize with serde; on each error (unknown key, wrong type) record it,
/// remove the offending key from the document and try again, so that every
/// schema error is reported, not just the first. An unknown key brings every
/// unknown key of its table at once (serde names one at a time, in the order
/// of the names). Returns the keys removed.
fn deserialize_collecting(
    mut doc: Spanned<DeTable<'_>>,
    c: &mut Collector<'_>,
) -> (Option<RawScenario>, BTreeSet<String>) {
    let mut removed = BTreeSet::new();
    let mut last_error_at = 0;
    let passes =
        (SCHEMA_WORK_BYTES / c.text.len().max(1)).clamp(MIN_SCHEMA_PASSES, MAX_SCHEMA_PASSES);
    for _ in 0..passes {
        let attempt = RawScenario::deserialize(Deserializer::from(doc.clone()));
        let err = match attempt {
            Ok(raw) => return (Some(raw), removed),
            Err(err) => err,
        };
        let span = err.span().unwrap_or(0..0);
        last_error_at = span.start;
        let found = find_key(doc.get_ref(), &span);
        if let (Some(segs), Some((_, accepted))) = (&found, unknown_field(err.message())) {
            let parent = &segs[..segs.len().saturating_sub(1)];
            let unknown: Vec<(String, Range<usize>)> = table_at(doc.get_ref(), parent)
                .map(|table| {
                    table
                        .iter()
                        .filter(|(k, _)| !accepted.iter().any(|a| a == k.get_ref().as_ref()))
                        .map(|(k, _)| (k.get_ref().to_string(), k.span()))
                        .collect()
                })
                .unwrap_or_default();
            if !unknown.is_empty() {
                let accepted: Vec<&str> = accepted.iter().map(String::as_str).collect();
                for (name, key_span) in unknown {
                    let mut key_segs = parent.to_vec();
                    key_segs.push(Seg::Key(name.clone()));
                    let (message, suggestion) = unknown_key_message(&key_segs, &name, &accepted);
                    c.push(key_span, shown_path(&key_segs), message);
                    // A misspelt key is reported once, not again as the missing key it was meant to be.
                    if let Some(meant) = suggestion {
                        removed.insert(join(&path_string(parent), &meant));
                    }
                    removed.insert(path_string(&key_segs));
                    remove_key(doc.get_mut(), &key_segs);
                }
                continue;
            }
        }
        let key = found
            .as_ref()
            .map(|segs| shown_path(segs))
            .unwrap_or_default();
        let (mut message, suggestion) = rewrite_serde_message(err.message());
        if let Some(segs) = &found {
            if message.starts_with("invalid type: map") {
                if is_array_of_tables(doc.get_ref(), segs) {
                    // serde says "map" of the array's first table.
                    message = format!(
                        "invalid type: an array of tables ([[{key}]]), expected a single table: write [{key}]"
                    );
                } else if let Some(date) = datetime_in(doc.get_ref(), segs) {
                    // serde sees a TOML date as a map.
                    message = message.replacen(
                        "invalid type: map",
                        &format!("invalid type: a date or time (`{date}`: TOML reads an unquoted date as one)"),
                        1,
                    );
                }
            }
        }
        c.push(span, key, message);
        match found {
            Some(segs) if remove_key(doc.get_mut(), &segs) => {
                if let Some(meant) = suggestion {
                    let parent = path_string(&segs[..segs.len().saturating_sub(1)]);
                    removed.insert(join(&parent, &meant));
                }
                removed.insert(path_string(&segs));
            }
            _ => return (None, removed),
        }
    }
    c.stop(
        last_error_at,
        format!("checking stopped here, after {passes} rounds of key and type errors: fix the errors listed and validate again to see any more"),
    );
    (None, removed)
}

/// serde's "unknown field `x`, expected one of `a`, `b`": the key and the
/// keys its table accepts.
fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field ")?;
    let mut names = rest.split('`').skip(1).step_by(2).map(str::to_string);
    let got = names.next()?;
    Some((got, names.collect()))
}

/// The message for an unknown key at `segs` in a table accepting
/// `accepted`, and the key it was probably meant to be.
fn unknown_key_message(segs: &[Seg], got: &str, accepted: &[&str]) -> (String, Option<String>) {
    if let Some(hint) = misplaced_key_hint(segs) {
        return (hint, None);
    }
    unknown_key_with_suggestion(got, accepted)
}

/// "unknown key `x`; did you mean `y`? (accepted keys: ...)", and `y`.
fn unknown_key_with_suggestion(got: &str, accepted: &[&str]) -> (String, Option<String>) {
    let mut msg = format!("unknown key `{}`", quoted(got, 60));
    let best = did_you_mean(got, accepted.iter().copied());
    if let Some(best) = best {
        msg.push_str(&format!("; did you mean `{best}`?"));
    }
    if !accepted.is_empty() {
        msg.push_str(&format!(" (accepted keys: {})", accepted.join(", ")));
    }
    (msg, best.map(str::to_string))
}

/// The table at `segs` (keys and array indices) of `table`.
fn table_at<'t, 'i>(table: &'t DeTable<'i>, segs: &[Seg]) -> Option<&'t DeTable<'i>> {
    let mut value: Option<&DeValue<'i>> = None;
    let mut current = table;
    for seg in segs {
        let next = match (seg, value) {
            (Seg::Key(k), None | Some(DeValue::Table(_))) => current
                .iter()
                .find(|(key, _)| key.get_ref().as_ref() == k.as_str())
                .map(|(_, v)| v.get_ref())?,
            (Seg::Index(i), Some(DeValue::Array(items))) => items.get(*i).map(|v| v.get_ref())?,
            _ => return None,
        };
        if let DeValue::Table(t) = next {
            current = t;
        }
        value = Some(next);
    }
    match value {
        None => Some(table),
        Some(DeValue::Table(t)) => Some(t),
        Some(_) => None,
    }
}

/// The TOML date or time at `segs`, or the first one in the array there.
fn datetime_in(table: &DeTable<'_>, segs: &[Seg]) -> Option<String> {
    let (Seg::Key(last), parent) = segs.split_last()? else {
        return None;
    };
    let value = table_at(table, parent)?
        .iter()
        .find(|(key, _)| key.get_ref().as_ref() == last.as_str())
        .map(|(_, v)| v.get_ref())?;
    match value {
        DeValue::Datetime(d) => Some(d.to_string()),
        DeValue::Array(items) => items.iter().find_map(|item| match item.get_ref() {
            DeValue::Datetime(d) => Some(d.to_string()),
            _ => None,
        }),
        _ => None,
    }
}

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

fn path_string(segs: &[Seg]) -> String {
    let mut s = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// [`path_string`] for a message: each key cut to 60 characters, control
/// characters escaped (a 200,000-character key had been echoed whole, twice).
fn shown_path(segs: &[Seg]) -> String {
    let shown: Vec<Seg> = segs
        .iter()
        .map(|seg| match seg {
            Seg::Key(k) => Seg::Key(quoted(k, 60)),
            Seg::Index(i) => Seg::Index(*i),
        })
        .collect();
    path_string(&shown)
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end && outer.start < outer.end
}

/// Path of the deepest key whose name or value contains `span`.
fn find_key(table: &DeTable<'_>, span: &Range<usize>) -> Option<Vec<Seg>> {
    for (k, v) in table.iter() {
        let name = Seg::Key(k.get_ref().to_string());
        if k.span() == *span {
            return Some(vec![name]);
        }
        if let Some(mut inner) = find_in_value(v, span) {
            inner.insert(0, name);
            return Some(inner);
        }
        if contains(&v.span(), span) || contains(&k.span(), span) {
            return Some(vec![name]);
        }
    }
    None
}

fn find_in_value(value: &Spanned<DeValue<'_>>, span: &Range<usize>) -> Option<Vec<Seg>> {
    match value.get_ref() {
        DeValue::Table(t) => find_key(t, span),
        DeValue::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            if let DeValue::Table(t) = item.get_ref() {
                find_key(t, span).map(|mut inner| {
                    inner.insert(0, Seg::Index(i));
                    inner
                })
            } else {
                None
            }
        }),
        _ => None,
    }
}

/// Whether the value at `segs` is an array of tables (`[[x]]`).
fn is_array_of_tables(table: &DeTable<'_>, segs: &[Seg]) -> bool {
    let [Seg::Key(k), rest @ ..] = segs else {
        return false;
    };
    let Some(value) = table
        .iter()
        .find(|(key, _)| key.get_ref().as_ref() == k.as_str())
        .map(|(_, v)| v.get_ref())
    else {
        return false;
    };
    match (value, rest) {
        (DeValue::Array(items), []) => items
            .iter()
            .all(|item| matches!(item.get_ref(), DeValue::Table(_))),
        (DeValue::Table(t), rest) => is_array_of_tables(t, rest),
        (DeValue::Array(items), [Seg::Index(i), rest @ ..]) => {
            match items.get(*i).map(|v| v.get_ref()) {
                Some(DeValue::Table(t)) => is_array_of_tables(t, rest),
                _ => false,
            }
        }
        _ => false,
    }
}

fn remove_key(table: &mut DeTable<'_>, segs: &[Seg]) -> bool {
    match segs {
        [Seg::Key(k)] => table.remove(k.as_str()).is_some(),
        [Seg::Key(k), rest @ ..] => {
            for (key, value) in table.iter_mut() {
                if key.get_ref().as_ref() == k.as_str() {
                    return remove_in_value(value.get_mut(), rest);
                }
            }
            false
        }
        _ => false,
    }
}

fn remove_in_value(value: &mut DeValue<'_>, segs: &[Seg]) -> bool {
    match (value, segs) {
        (DeValue::Table(t), _) => remove_key(t, segs),
        (DeValue::Array(items), [Seg::Index(i), rest @ ..]) => match items.get_mut(*i) {
            Some(item) => remove_in_value(item.get_mut(), rest),
            None => false,
        },
        _ => false,
    }
}

/// For a key that is unknown where it stands but belongs to another table,
/// where it goes: in TOML every key after a `[[targets.edge]]` header belongs
/// to that table, so a key meant for [targets] easily lands in one.
fn misplaced_key_hint(segs: &[Seg]) -> Option<String> {
    let keys: Vec<&str> = segs
        .iter()
        .map(|seg| match seg {
            Seg::Key(k) => k.as_str(),
            Seg::Index(_) => "[]",
        })
        .collect();
    match keys.as_slice() {
        ["targets", kind @ ("edge" | "cloud"), "[]", "edge_classes"] => Some(format!(
            "unknown key `edge_classes` in a [[targets.{kind}]] table: it belongs under [targets] \
             (it says how all the edge classes relate); write it directly below [targets], \
             before the first [[targets.edge]] or [[targets.cloud]] (keys after a [[...]] header \
             belong to that table)"
        )),
        ["targets", key @ ("fleet_size" | "traffic_share")] => Some(format!(
            "unknown key `{key}` under [targets]: it belongs in each [[targets.edge]] table of \
             the fleet (every device class states its own)"
        )),
        [parent @ .., key] => {
            let here = parent.join(".");
            let homes: Vec<&str> = sections()
                .iter()
                .filter(|s| s.path != here && s.keys.iter().any(|k| k == key))
                .map(|s| s.shown)
                .collect();
            if homes.is_empty() {
                return None;
            }
            let here_shown = match sections().iter().find(|s| s.path == here) {
                Some(s) if s.path.is_empty() => format!("at {}", s.shown),
                Some(s) => format!("in {}", s.shown),
                None => format!("in [{here}]"),
            };
            Some(format!(
                "unknown key `{key}` {here_shown}: it belongs in {}; move it below that header (a key belongs to the last [header] above it, and keys before the first header to the top level)",
                homes.join(" or ")
            ))
        }
        _ => None,
    }
}

/// A table of the scenario file: its path (array items as `[]`), how a
/// message names it, and the keys it accepts.
struct Section {
    path: &'static str,
    shown: &'static str,
    keys: Vec<String>,
}

/// Every table a scenario has, with the keys serde accepts in it (asked of
/// the raw structs, so the list cannot drift from them).
fn sections() -> &'static [Section] {
    static SECTIONS: std::sync::OnceLock<Vec<Section>> = std::sync::OnceLock::new();
    SECTIONS.get_or_init(|| {
        vec![
            section::<RawScenario>("", "the top level"),
            section::<RawModel>("model", "[model]"),
            section::<RawVariant>("model.variants.[]", "a [[model.variants]] table"),
            section::<RawTraffic>("traffic", "[traffic]"),
            section::<RawInputs>("inputs", "[inputs]"),
            section::<RawObjectives>("objectives", "[objectives]"),
            section::<RawConstraints>("constraints", "[constraints]"),
            section::<RawTargets>("targets", "[targets]"),
            section::<RawTarget>("targets.cloud.[]", "a [[targets.cloud]] table"),
            section::<RawTarget>("targets.edge.[]", "a [[targets.edge]] table"),
            section::<RawLink>("targets.links.[]", "a [[targets.links]] table"),
            section::<RawBroker>("targets.broker", "[targets.broker]"),
            section::<RawStorage>("targets.storage", "[targets.storage]"),
            section::<RawSearch>("search", "[search]"),
            section::<RawExpect>("expect", "[expect]"),
        ]
    })
}

/// The keys a `T` table accepts, from serde's message for a key it does not.
fn section<T: serde::de::DeserializeOwned>(path: &'static str, shown: &'static str) -> Section {
    let keys = match toml::from_str::<T>("\"\\u0000probe\" = 0") {
        Err(e) => unknown_field(e.message()).map_or_else(Vec::new, |(_, keys)| keys),
        Ok(_) => Vec::new(),
    };
    Section { path, shown, keys }
}

/// serde's messages, in the scenario's vocabulary; for an unknown key, also
/// the key it was probably meant to be.
fn rewrite_serde_message(message: &str) -> (String, Option<String>) {
    if let Some((got, accepted)) = unknown_field(message) {
        let accepted: Vec<&str> = accepted.iter().map(String::as_str).collect();
        return unknown_key_with_suggestion(&got, &accepted);
    }
    let mut msg = message.trim().to_string();
    for (from, to) in [
        ("expected f64", "expected a number"),
        ("expected i64", "expected an integer"),
        // a float where an integer goes: say how to write the integer
        (
            "expected i128",
            "expected an integer, written in digits (4_000_000; TOML reads 1e12 and 1.5 as floating point)",
        ),
        (
            "integer number overflowed",
            "integer out of range: expected an integer of at most 39 digits",
        ),
        ("expected a sequence", "expected an array"),
        ("expected a boolean", "expected true or false"),
    ] {
        msg = msg.replace(from, to);
    }
    if let Some(i) = msg.find("expected struct ") {
        msg.truncate(i);
        msg.push_str("expected a table");
    }
    (msg, None)
}

struct Validator<'a> {
    c: Collector<'a>,
    /// Keys already reported (and removed) by the schema stage: not "missing".
    removed: BTreeSet<String>,
    base_dir: PathBuf,
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

const FAMILIES: [&str; 3] = ["mlp", "convnet", "transformer"];
const MLP_KEYS: [&str; 4] = ["input", "hidden", "output", "activation"];
const CONVNET_KEYS: [&str; 5] = ["input_hwc", "blocks", "pooling", "classes", "activation"];
const TRANSFORMER_KEYS: [&str; 6] = ["seq_len", "d_model", "heads", "ffn", "layers", "classes"];
const ACTIVATIONS: [(&str, Activation); 4] = [
    ("relu", Activation::Relu),
    ("gelu", Activation::Gelu),
    ("sigmoid", Activation::Sigmoid),
    ("tanh", Activation::Tanh),
];

impl Validator<'_> {
    fn err(&mut self, span: Range<usize>, key: &str, message: impl Into<String>) {
        self.c.push(span, key, message);
    }

    /// Report `key` missing from the table at `parent_span` unless the schema
    /// stage already reported (and removed) it.
    fn missing(&mut self, parent_span: Range<usize>, key: &str, what: &str) {
        if !self.removed.contains(key) {
            self.err(parent_span, key, format!("missing required key: {what}"));
        }
    }

    fn required<'r, T>(
        &mut self,
        field: &'r Opt<T>,
        parent_span: &Range<usize>,
        key: &str,
        what: &str,
    ) -> Option<&'r S<T>> {
        if field.is_none() {
            self.missing(parent_span.clone(), key, what);
        }
        field.as_ref()
    }

    /// A finite number above `lo` (`> lo` when open, else `>= lo`) and at most
    /// `max` (no upper bound when infinite).
    fn up_to(
        &mut self,
        value: &S<f64>,
        key: &str,
        (lo, lo_open): (f64, bool),
        max: f64,
        what: &str,
    ) -> Option<f64> {
        let v = *value.get_ref();
        let above = if lo_open { v > lo } else { v >= lo };
        if v.is_finite() && above && v <= max {
            return Some(v);
        }
        let op = if lo_open { ">" } else { ">=" };
        let mut message = format!(
            "value {} is not accepted: {what} must be a number {op} {}",
            number(v),
            number(lo)
        );
        if max.is_finite() {
            message.push_str(&format!(" and <= {}", number(max)));
        }
        self.err(value.span(), key, message);
        None
    }

    /// [`Self::up_to`] for an optional key: `Some(None)` when it is not
    /// given, `None` when its value is refused.
    fn optional_up_to(
        &mut self,
        field: &Opt<f64>,
        key: &str,
        lo: (f64, bool),
        max: f64,
        what: &str,
    ) -> Option<Option<f64>> {
        match field {
            Some(value) => self.up_to(value, key, lo, max, what).map(Some),
            None => Some(None),
        }
    }

    /// A network or storage latency in milliseconds, in `[0, MAX_NETWORK_MS]`.
    fn network_ms(&mut self, value: &S<f64>, key: &str, what: &str) -> Option<f64> {
        self.up_to(value, key, (0.0, false), MAX_NETWORK_MS, what)
    }

    /// A hardware figure in `[lo, hi]`, or 0 when `zero` says what 0 means.
    fn figure(
        &mut self,
        value: &S<f64>,
        key: &str,
        (lo, hi): (f64, f64),
        zero: Option<&str>,
        what: &str,
    ) -> Option<f64> {
        let v = *value.get_ref();
        if (v == 0.0 && zero.is_some()) || (v.is_finite() && (lo..=hi).contains(&v)) {
            return Some(v);
        }
        let zero = zero.map_or(String::new(), |means| format!(" or 0 ({means})"));
        self.err(
            value.span(),
            key,
            format!(
                "value {} is not accepted: {what} must be a number >= {} and <= {}{zero}",
                number(v),
                number(lo),
                number(hi)
            ),
        );
        None
    }

    /// A number in `[lo, hi]` (closed) or `(lo, hi)` per the flags.
    fn in_range(
        &mut self,
        value: &S<f64>,
        key: &str,
        (lo, lo_open): (f64, bool),
        (hi, hi_open): (f64, bool),
        what: &str,
    ) -> Option<f64> {
        let v = *value.get_ref();
        let above = if lo_open { v > lo } else { v >= lo };
        let below = if hi_open { v < hi } else { v <= hi };
        if v.is_finite() && above && below {
            Some(v)
        } else {
            let open = if lo_open { '(' } else { '[' };
            let close = if hi_open { ')' } else { ']' };
            self.err(
                value.span(),
                key,
                format!(
                    "value {} is not accepted: {what} must be in {open}{}, {}{close}",
                    number(v),
                    number(lo),
                    number(hi)
                ),
            );
            None
        }
    }

    /// An integer `>= min`, up to the largest TOML has (2^63 - 1).
    fn int_at_least(&mut self, value: &S<Int>, key: &str, min: u64, what: &str) -> Option<u64> {
        self.int_in_range(value, key, (min, i64::MAX as u64), what)
    }

    /// An integer in `[min, max]`.
    fn int_in_range(
        &mut self,
        value: &S<Int>,
        key: &str,
        (min, max): (u64, u64),
        what: &str,
    ) -> Option<u64> {
        let v = *value.get_ref();
        match u64::try_from(v) {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.err(
                    value.span(),
                    key,
                    format!(
                        "value {v} is not accepted: {what} must be an integer in [{min}, {max}]"
                    ),
                );
                None
            }
        }
    }

    /// Refuse an empty list where at least one choice is required: an empty
    /// list never silently means "everything" (omitting the key does).
    fn refuse_empty(
        &mut self,
        span: Range<usize>,
        key: &str,
        what: &str,
        accepted: &str,
        omitted: &str,
    ) {
        self.err(
            span,
            key,
            format!(
                "empty list is not accepted: give at least one {what} (accepted: {accepted}); omit the key for {omitted}"
            ),
        );
    }

    /// A width, channel count, spatial size or layer count: in `[1, MAX_DIM]`.
    fn dim(&mut self, value: &S<Int>, key: &str, what: &str) -> Option<usize> {
        self.int_in_range(value, key, (1, MAX_DIM), what)
            .and_then(|v| usize::try_from(v).ok())
    }

    fn choice<T: Copy>(
        &mut self,
        value: &S<String>,
        key: &str,
        what: &str,
        table: &[(&str, T)],
    ) -> Option<T> {
        let got = value.get_ref().as_str();
        if let Some((_, t)) = table.iter().find(|(name, _)| *name == got) {
            return Some(*t);
        }
        let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
        self.err(value.span(), key, not_accepted(what, got, &names));
        None
    }

    /// A list of names, each from `table`, without duplicates; `None` field -> default.
    /// `omitted` says what leaving the key out means (for the empty-list error).
    fn choice_list<T: Copy + PartialEq>(
        &mut self,
        field: &Opt<Vec<S<String>>>,
        key: &str,
        what: &str,
        table: &[(&str, T)],
        omitted: &str,
    ) -> Option<Vec<T>> {
        let Some(list) = field else {
            return Some(table.iter().map(|(_, t)| *t).collect());
        };
        let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
        if list.get_ref().is_empty() {
            self.refuse_empty(list.span(), key, what, &names.join(", "), omitted);
            return None;
        }
        if list.get_ref().len() > table.len() {
            self.err(
                list.span(),
                key,
                format!(
                    "{} entries given: there are {} of them ({}), each listed at most once",
                    list.get_ref().len(),
                    table.len(),
                    names.join(", ")
                ),
            );
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in list.get_ref().iter().enumerate() {
            match self.choice(item, &format!("{key}[{i}]"), what, table) {
                Some(t) if out.contains(&t) => {
                    self.err(
                        item.span(),
                        &format!("{key}[{i}]"),
                        format!("`{}` is listed twice", quoted(item.get_ref(), 60)),
                    );
                    ok = false;
                }
                Some(t) => out.push(t),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn scenario(&mut self, raw: RawScenario, path: &Path) -> Option<Scenario> {
        let name = self.scenario_name(raw.name.as_ref(), path);
        if let Some(d) = &raw.description {
            self.free_text(d, "description", true);
        }
        let description = raw
            .description
            .as_ref()
            .map(|d| d.get_ref().clone())
            .unwrap_or_default();
        let top = 0..0;
        let model = match self.required(
            &raw.model,
            &top,
            "model",
            "the [model] section with at least one [[model.variants]]",
        ) {
            Some(m) => self.model(m),
            None => None,
        };
        let traffic = match self.required(
            &raw.traffic,
            &top,
            "traffic",
            "the [traffic] section (process, rate_per_s, duration_s)",
        ) {
            Some(t) => self.traffic(t),
            None => None,
        };
        let inputs = match self.required(
            &raw.inputs,
            &top,
            "inputs",
            "the [inputs] section (space, request_bytes, response_bytes)",
        ) {
            Some(i) => self.inputs(i),
            None => None,
        };
        let objectives = match self.required(
            &raw.objectives,
            &top,
            "objectives",
            "the [objectives] section (latency_percentile, latency_ms)",
        ) {
            Some(o) => self.objectives(o),
            None => None,
        };
        let constraints = match &raw.constraints {
            Some(c) => self.constraints(c),
            None => Some(Constraints {
                data_may_leave_device: true,
                offline_fraction: 0.0,
                max_device_memory_bytes: None,
                max_device_power_watts: None,
            }),
        };
        let targets = match self.required(
            &raw.targets,
            &top,
            "targets",
            "the [targets] section with at least one [[targets.cloud]] or [[targets.edge]]",
        ) {
            Some(t) => self.targets(t),
            None => None,
        };
        let search = self.search(raw.search.as_ref(), targets.as_ref());
        let expect = raw
            .expect
            .as_ref()
            .and_then(|e| self.expect(e, search.as_ref(), targets.as_ref()));
        if let (Some(model), Some(search)) = (&model, &search) {
            self.check_model_resources(model, search, raw.model.as_ref());
        }
        Some(Scenario {
            name,
            description,
            path: path.to_path_buf(),
            model: model?,
            traffic: traffic?,
            inputs: inputs?,
            objectives: objectives?,
            constraints: constraints?,
            targets: targets?,
            search: search?,
            expect: if raw.expect.is_some() {
                Some(expect?)
            } else {
                None
            },
        })
    }

    /// The `name` key, or the file stem without one; either names the report
    /// directory, so both must be valid scenario names.
    fn scenario_name(&mut self, name: Option<&S<String>>, path: &Path) -> String {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".into());
        let Some(name) = name else {
            // A `name` of the wrong type was reported by the schema stage.
            if !is_valid_scenario_name(&stem) && !self.removed.contains("name") {
                self.err(
                    0..0,
                    "name",
                    format!(
                        "without a `name` key the file name gives the scenario name `{}`, which is not accepted: a scenario name names its report directory, so it is made of {}; add a `name` key",
                        quoted(&stem, 60),
                        name_accepted()
                    ),
                );
            }
            return stem;
        };
        let given = name.get_ref();
        if given.is_empty() {
            self.err(
                name.span(),
                "name",
                format!("empty name is not accepted: give one made of {}, or omit the key to use the file name `{}`", name_accepted(), quoted(&stem, 60)),
            );
        } else if !is_valid_scenario_name(given) {
            self.err(
                name.span(),
                "name",
                format!(
                    "name `{}` is not accepted: a scenario name names its report directory, so it is made of {}",
                    quoted(given, 60),
                    name_accepted()
                ),
            );
        }
        given.clone()
    }

    /// Refuse control characters in text that is printed to a terminal:
    /// escape sequences would clear the screen or retitle the window.
    /// `allow_layout` lets multi-line text keep its newlines and tabs.
    fn free_text(&mut self, value: &S<String>, key: &str, allow_layout: bool) -> bool {
        let Some(c) = control_character(value.get_ref(), allow_layout) else {
            return true;
        };
        let allowed = if allow_layout {
            " (newlines and tabs are)"
        } else {
            ""
        };
        self.err(
            value.span(),
            key,
            format!(
                "control character {} is not accepted: text is printed to terminals, where control characters and escape sequences act instead of showing{allowed}",
                c.escape_unicode()
            ),
        );
        false
    }

    fn model(&mut self, model: &S<RawModel>) -> Option<Model> {
        let span = model.span();
        let m = model.get_ref();
        if let Some(task) = &m.task {
            self.free_text(task, "model.task", true);
        }
        let task = m
            .task
            .as_ref()
            .map(|t| t.get_ref().clone())
            .unwrap_or_default();
        let Some(variants) = &m.variants else {
            self.missing(
                span,
                "model.variants",
                "at least one [[model.variants]] table (name, family, and the family's keys)",
            );
            return None;
        };
        if variants.is_empty() {
            self.err(
                span,
                "model.variants",
                "no variants: add at least one [[model.variants]]",
            );
            return None;
        }
        if variants.len() > MAX_VARIANTS {
            // At the first variant past the cap: the table to remove.
            let extra = variants[MAX_VARIANTS].span();
            self.err(
                extra,
                "model.variants",
                format!(
                    "{} variants given: at most {MAX_VARIANTS} [[model.variants]] are accepted (each is compiled, measured and planned for every target); compare the most promising ones",
                    variants.len()
                ),
            );
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        // Names as written, so that a duplicate or the reference is judged
        // even when a variant is invalid for another reason.
        let mut names: Vec<Option<&str>> = Vec::new();
        for (i, variant) in variants.iter().enumerate() {
            let key = format!("model.variants[{i}]");
            let name = variant.get_ref().name.as_ref();
            if let Some(n) = name.filter(|n| {
                !n.get_ref().trim().is_empty() && names.contains(&Some(n.get_ref().as_str()))
            }) {
                self.err(
                    n.span(),
                    &join(&key, "name"),
                    format!(
                        "variant name `{}` is used twice; names must be unique",
                        quoted(n.get_ref(), 60)
                    ),
                );
                ok = false;
            }
            names.push(name.map(|n| n.get_ref().as_str()));
            match self.variant(variant, &key) {
                Some(v) => out.push(v),
                None => ok = false,
            }
        }
        let reference = match &m.reference {
            Some(r) => match names.iter().position(|n| *n == Some(r.get_ref().as_str())) {
                Some(i) => i,
                None => {
                    let mut accepted: Vec<&str> = Vec::new();
                    for name in names.iter().flatten() {
                        if !accepted.contains(name) {
                            accepted.push(name);
                        }
                    }
                    let message = if accepted.is_empty() {
                        format!(
                            "reference variant `{}` is not accepted: no variant has a name",
                            quoted(r.get_ref(), 60)
                        )
                    } else {
                        not_accepted("reference variant", r.get_ref(), &accepted)
                    };
                    self.err(r.span(), "model.reference", message);
                    ok = false;
                    0
                }
            },
            None => 0,
        };
        ok.then_some(Model {
            task,
            variants: out,
            reference,
        })
    }

    fn variant(&mut self, variant: &S<RawVariant>, key: &str) -> Option<ModelVariant> {
        let span = variant.span();
        let v = variant.get_ref();
        let name = self.required(
            &v.name,
            &span,
            &join(key, "name"),
            "a name for this variant, e.g. \"full\" or \"distilled\"",
        );
        let name = name.map(|n| n.get_ref().clone());
        let mut name_ok = true;
        if let Some(n) = &v.name {
            if n.get_ref().trim().is_empty() {
                self.err(n.span(), &join(key, "name"), "empty name is not accepted");
                name_ok = false;
            } else {
                name_ok = self.free_text(n, &join(key, "name"), false);
            }
        }
        let accuracy = v.accuracy.as_ref().and_then(|a| {
            self.in_range(
                a,
                &join(key, "accuracy"),
                (0.0, true),
                (1.0, false),
                "declared accuracy (a fraction, e.g. 0.92)",
            )
        });
        let accuracy_ok = v.accuracy.is_none() || accuracy.is_some();
        let fallback_fraction = v.fallback_fraction.as_ref().and_then(|f| {
            self.in_range(
                f,
                &join(key, "fallback_fraction"),
                (0.0, false),
                (1.0, false),
                "share of requests deferred to the cloud (a fraction, e.g. 0.1)",
            )
        });
        let fallback_ok = v.fallback_fraction.is_none() || fallback_fraction.is_some();
        let activation = match &v.activation {
            Some(a) => self.choice(a, &join(key, "activation"), "activation", &ACTIVATIONS),
            None => Some(Activation::Relu),
        };
        let family_field = self.required(
            &v.family,
            &span,
            &join(key, "family"),
            "one of mlp, convnet, transformer",
        );
        let family_name = family_field.map(|f| f.get_ref().as_str());
        let family = match (family_field, family_name) {
            (Some(_), Some(name)) if FAMILIES.contains(&name) => Some(name),
            (Some(f), Some(name)) => {
                self.err(
                    f.span(),
                    &join(key, "family"),
                    not_accepted("model family", name, &FAMILIES),
                );
                None
            }
            _ => None,
        };
        let family = family?;
        // Keys that belong to another family are errors, so a typo'd family
        // never silently drops the layer description.
        let present: Vec<(&str, Range<usize>)> = [
            ("input", v.input.as_ref().map(|x| x.span())),
            ("hidden", v.hidden.as_ref().map(|x| x.span())),
            ("output", v.output.as_ref().map(|x| x.span())),
            ("input_hwc", v.input_hwc.as_ref().map(|x| x.span())),
            ("blocks", v.blocks.as_ref().map(|x| x.span())),
            ("pooling", v.pooling.as_ref().map(|x| x.span())),
            ("classes", v.classes.as_ref().map(|x| x.span())),
            ("seq_len", v.seq_len.as_ref().map(|x| x.span())),
            ("d_model", v.d_model.as_ref().map(|x| x.span())),
            ("heads", v.heads.as_ref().map(|x| x.span())),
            ("ffn", v.ffn.as_ref().map(|x| x.span())),
            ("layers", v.layers.as_ref().map(|x| x.span())),
            ("activation", v.activation.as_ref().map(|x| x.span())),
        ]
        .into_iter()
        .filter_map(|(k, s)| s.map(|s| (k, s)))
        .collect();
        let allowed: &[&str] = match family {
            "mlp" => &MLP_KEYS,
            "convnet" => &CONVNET_KEYS,
            _ => &TRANSFORMER_KEYS,
        };
        let mut foreign = false;
        for (k, s) in &present {
            if !allowed.contains(k) {
                self.err(
                    s.clone(),
                    &join(key, k),
                    format!(
                        "key `{k}` does not apply to family = \"{family}\" ({family} keys: {})",
                        allowed.join(", ")
                    ),
                );
                foreign = true;
            }
        }
        let spec = match family {
            "mlp" => self.mlp(v, &span, key, activation?),
            "convnet" => self.convnet(v, &span, key, activation?),
            _ => self.transformer(v, &span, key),
        };
        if foreign || !accuracy_ok || !fallback_ok || !name_ok {
            return None;
        }
        Some(ModelVariant {
            name: name?,
            spec: spec?,
            accuracy,
            fallback_fraction,
        })
    }

    /// A layer list longer than [`MAX_LAYERS`]: refused before each entry is
    /// checked (a hundred thousand entries would each be reported).
    fn too_many_layers(&mut self, span: Range<usize>, key: &str, given: usize, what: &str) {
        self.err(
            span,
            key,
            format!("{given} {what} given: at most {MAX_LAYERS} layers"),
        );
    }

    /// A list (or array of tables) longer than its limit: refused at once,
    /// before its entries are checked one by one.
    fn too_long(
        &mut self,
        span: Range<usize>,
        key: &str,
        given: usize,
        max: usize,
        what: &str,
        why: &str,
    ) {
        self.err(
            span,
            key,
            format!(
                "{given} {what} given: at most {max} are accepted ({why}); keep the ones worth comparing"
            ),
        );
    }

    fn dims_list(&mut self, list: &S<Vec<S<Int>>>, key: &str, what: &str) -> Option<Vec<usize>> {
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in list.get_ref().iter().enumerate() {
            match self.dim(item, &format!("{key}[{i}]"), what) {
                Some(d) => out.push(d),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn mlp(
        &mut self,
        v: &RawVariant,
        span: &Range<usize>,
        key: &str,
        activation: Activation,
    ) -> Option<ModelSpec> {
        let input = self
            .required(
                &v.input,
                span,
                &join(key, "input"),
                "input width (features per sample), e.g. input = 256",
            )
            .and_then(|x| self.dim(x, &join(key, "input"), "input width"));
        let output = self
            .required(
                &v.output,
                span,
                &join(key, "output"),
                "output width (classes or scores), e.g. output = 2",
            )
            .and_then(|x| self.dim(x, &join(key, "output"), "output width"));
        let hidden = match self.required(
            &v.hidden,
            span,
            &join(key, "hidden"),
            "hidden layer widths, e.g. hidden = [512, 256]",
        ) {
            Some(h) if h.get_ref().is_empty() => {
                self.err(h.span(), &join(key, "hidden"), "empty layer list is not accepted: give at least one hidden layer width, e.g. hidden = [256]");
                None
            }
            Some(h) if h.get_ref().len() > MAX_LAYERS => {
                self.too_many_layers(
                    h.span(),
                    &join(key, "hidden"),
                    h.get_ref().len(),
                    "hidden layer widths",
                );
                None
            }
            Some(h) => self.dims_list(h, &join(key, "hidden"), "hidden layer width"),
            None => None,
        };
        Some(ModelSpec::Mlp(MlpSpec {
            input: input?,
            hidden: hidden?,
            output: output?,
            activation,
        }))
    }

    fn convnet(
        &mut self,
        v: &RawVariant,
        span: &Range<usize>,
        key: &str,
        activation: Activation,
    ) -> Option<ModelSpec> {
        let hwc_key = join(key, "input_hwc");
        let hwc = match self.required(
            &v.input_hwc,
            span,
            &hwc_key,
            "input height, width and channels, e.g. input_hwc = [32, 32, 3]",
        ) {
            Some(list) if list.get_ref().len() != 3 => {
                self.err(
                    list.span(),
                    &hwc_key,
                    format!(
                        "{} values given; expected exactly 3: [height, width, channels]",
                        list.get_ref().len()
                    ),
                );
                None
            }
            Some(list) => self.dims_list(list, &hwc_key, "input dimension"),
            None => None,
        };
        let classes = self
            .required(
                &v.classes,
                span,
                &join(key, "classes"),
                "number of output classes, e.g. classes = 10",
            )
            .and_then(|x| self.dim(x, &join(key, "classes"), "classes"));
        if let Some(p) = &v.pooling {
            if p.get_ref() != "global-average" {
                self.err(
                    p.span(),
                    &join(key, "pooling"),
                    not_accepted("pooling", p.get_ref(), &["global-average"]),
                );
            }
        }
        let blocks_key = join(key, "blocks");
        let blocks = match self.required(&v.blocks, span, &blocks_key, "conv blocks, e.g. blocks = [{ kind = \"standard\", out_channels = 16, kernel = 3, stride = 2 }]") {
            Some(list) if list.get_ref().is_empty() => {
                self.err(list.span(), &blocks_key, "empty layer list is not accepted: give at least one conv block");
                None
            }
            Some(list) if list.get_ref().len() > MAX_LAYERS => {
                self.too_many_layers(list.span(), &blocks_key, list.get_ref().len(), "conv blocks");
                None
            }
            Some(list) => {
                let mut out = Vec::new();
                let mut ok = true;
                // Each block's input height and width, while they are known.
                let mut spatial = hwc.as_ref().map(|d| (d[0], d[1]));
                for (i, block) in list.get_ref().iter().enumerate() {
                    match self.block(block, &format!("{blocks_key}[{i}]"), spatial) {
                        Some(b) => {
                            spatial = spatial.map(|(h, w)| {
                                let BlockGeometry { kernel, stride, .. } = b.geometry();
                                (
                                    conv_output_size(h, kernel, stride),
                                    conv_output_size(w, kernel, stride),
                                )
                            });
                            out.push(b);
                        }
                        None => {
                            ok = false;
                            spatial = None;
                        }
                    }
                }
                ok.then_some(out)
            }
            None => None,
        };
        let hwc = hwc?;
        Some(ModelSpec::Convnet(ConvnetSpec {
            height: hwc[0],
            width: hwc[1],
            channels: hwc[2],
            blocks: blocks?,
            classes: classes?,
            activation,
        }))
    }

    /// One conv block; `spatial` is its input's height and width when known.
    fn block(
        &mut self,
        block: &S<RawBlock>,
        key: &str,
        spatial: Option<(usize, usize)>,
    ) -> Option<ConvBlock> {
        let span = block.span();
        let b = block.get_ref();
        #[derive(Clone, Copy)]
        enum Kind {
            Standard,
            Separable,
        }
        let kind = self
            .required(
                &b.kind,
                &span,
                &join(key, "kind"),
                "\"standard\" or \"depthwise-separable\"",
            )
            .and_then(|k| {
                self.choice(
                    k,
                    &join(key, "kind"),
                    "conv block kind",
                    &[
                        ("standard", Kind::Standard),
                        ("depthwise-separable", Kind::Separable),
                    ],
                )
            });
        let out_channels = self
            .required(
                &b.out_channels,
                &span,
                &join(key, "out_channels"),
                "output channels, e.g. out_channels = 32",
            )
            .and_then(|x| self.dim(x, &join(key, "out_channels"), "output channels"));
        let kernel = match &b.kernel {
            Some(k) => match self.dim(k, &join(key, "kernel"), "kernel size") {
                Some(size) if size % 2 == 0 => {
                    self.err(k.span(), &join(key, "kernel"), format!("value {size} is not accepted: kernel size must be odd (1, 3, 5, 7, ...) so that padding kernel/2 keeps the spatial size"));
                    None
                }
                other => other,
            },
            None => Some(3),
        };
        let stride = match &b.stride {
            Some(s) => self.dim(s, &join(key, "stride"), "stride"),
            None => Some(1),
        };
        // A kernel or stride wider than the block's input only reads padding,
        // and the kernels' stride-split layout grows with the stride (a
        // 10^9 stride on a 7x7 image asked for 192 GB).
        if let Some((h, w)) = spatial {
            let largest = h.max(w);
            for (field, name, value, what) in [
                (&b.kernel, "kernel", kernel, "kernel size"),
                (&b.stride, "stride", stride, "stride"),
            ] {
                if let (Some(raw), Some(v)) = (field, value) {
                    if v > largest {
                        self.err(
                            raw.span(),
                            &join(key, name),
                            format!(
                                "value {v} is not accepted: {what} must be an integer in [1, {largest}], the larger side of this block's {h}x{w} input"
                            ),
                        );
                        return None;
                    }
                }
            }
        }
        let (out_channels, kernel, stride) = (out_channels?, kernel?, stride?);
        Some(match kind? {
            Kind::Standard => ConvBlock::Standard {
                out_channels,
                kernel,
                stride,
            },
            Kind::Separable => ConvBlock::DepthwiseSeparable {
                out_channels,
                kernel,
                stride,
            },
        })
    }

    fn transformer(&mut self, v: &RawVariant, span: &Range<usize>, key: &str) -> Option<ModelSpec> {
        let field = |this: &mut Self, f: &Opt<Int>, name: &str, what: &str| {
            this.required(f, span, &join(key, name), what)
                .and_then(|x| this.dim(x, &join(key, name), name))
        };
        let seq_len = field(
            self,
            &v.seq_len,
            "seq_len",
            "tokens per sample, e.g. seq_len = 32",
        );
        let d_model = field(
            self,
            &v.d_model,
            "d_model",
            "model width, e.g. d_model = 128",
        );
        let heads = field(self, &v.heads, "heads", "attention heads, e.g. heads = 4");
        let ffn = field(self, &v.ffn, "ffn", "feed-forward width, e.g. ffn = 512");
        // Not `dim`: a layer count beyond MAX_LAYERS gets its own message below.
        let layers = self
            .required(
                &v.layers,
                span,
                &join(key, "layers"),
                "encoder layers (at least 1), e.g. layers = 2",
            )
            .and_then(|x| self.int_at_least(x, &join(key, "layers"), 1, "layers"))
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        // Counting walks the layers one by one: bound them before counting.
        let layers = match (layers, &v.layers) {
            (Some(n), Some(raw)) if n > MAX_LAYERS => {
                self.err(
                    raw.span(),
                    &join(key, "layers"),
                    format!("value {n} is not accepted: at most {MAX_LAYERS} layers"),
                );
                None
            }
            (other, _) => other,
        };
        let classes = match &v.classes {
            Some(c) => self
                .int_in_range(
                    c,
                    &join(key, "classes"),
                    (0, MAX_DIM),
                    "classes (0 = no classifier head)",
                )
                .and_then(|c| usize::try_from(c).ok()),
            None => Some(0),
        };
        if let (Some(d), Some(h), Some(hs)) = (d_model, heads, &v.heads) {
            if d % h != 0 {
                self.err(
                    hs.span(),
                    &join(key, "heads"),
                    format!(
                        "value {h} is not accepted: heads must divide d_model = {d} (e.g. {})",
                        divisors_hint(d)
                    ),
                );
                return None;
            }
        }
        Some(ModelSpec::Transformer(TransformerSpec {
            seq_len: seq_len?,
            d_model: d_model?,
            heads: heads?,
            ffn: ffn?,
            layers: layers?,
            classes: classes?,
        }))
    }

    /// Refuse models that could not be measured here, before anything allocates.
    fn check_model_resources(
        &mut self,
        model: &Model,
        search: &SearchSpace,
        raw: Option<&S<RawModel>>,
    ) {
        let max_batch = search.batch_sizes.iter().copied().max().unwrap_or(1);
        for (i, variant) in model.variants.iter().enumerate() {
            let counts = variant.counts();
            // What measuring holds at its peak: the weights' copies, every
            // tensor of a call at the largest batch (the kernels' executors
            // keep them all), and the agreement check's inputs and outputs.
            let inputs = crate::pipeline::agreement_inputs_within(
                counts.flops_per_sample,
                search.measurement_budget_s,
                model.variants.len(),
            );
            let memory = crate::measure::memory::measuring_memory(
                &variant.spec,
                counts.params,
                max_batch,
                inputs,
            );
            let needed = memory.total();
            let span = raw
                .and_then(|m| m.get_ref().variants.as_ref())
                .and_then(|v| v.get(i))
                .map_or(0..0, |v| v.span());
            let key = format!("model.variants[{i}]");
            if counts.params == u64::MAX {
                // The count saturated: any figure printed from it would be wrong.
                self.err(
                    span,
                    &key,
                    format!(
                        "variant `{}` is too large to measure: its parameter count overflows 64 bits (it is above 1.8 x 10^19; the widths multiply); the limit is {} of memory for measuring",
                        quoted(&variant.name, 60),
                        format_bytes(MAX_MEASURE_BYTES as f64)
                    ),
                );
            } else if needed > MAX_MEASURE_BYTES as f64 {
                let per_sample = crate::measure::memory::activation_bytes_per_sample(&variant.spec);
                let weights_only = memory.weights + memory.agreement;
                let fitting_batch = ((MAX_MEASURE_BYTES as f64 - weights_only)
                    / per_sample.max(1.0))
                .floor()
                .max(0.0);
                let advice = if fitting_batch >= 1.0 && memory.batch > 1 {
                    format!(
                        "; it would fit with search.batch_sizes at most {}",
                        fitting_batch.min(memory.batch as f64 - 1.0)
                    )
                } else {
                    "; use a smaller model".to_string()
                };
                self.err(
                    span.clone(),
                    &key,
                    format!(
                        "variant `{}` is too large to measure: it needs {} ({} parameters = {} of f32 weights, held {} times over while the backends are compiled, plus {} of activations at batch {} ({} a sample: the kernels keep every layer's output during a call), plus {} for the agreement check); the limit is {}{advice}",
                        variant.name,
                        format_bytes(needed),
                        format_count(counts.params as f64),
                        format_bytes(counts.weight_bytes(Precision::F32) as f64),
                        crate::measure::memory::WEIGHT_COPIES_WHILE_MEASURING,
                        format_bytes(memory.activations),
                        memory.batch,
                        format_bytes(per_sample),
                        format_bytes(memory.agreement),
                        format_bytes(MAX_MEASURE_BYTES as f64)
                    ),
                );
            } else if counts.flops_per_sample > MAX_FLOPS_PER_SAMPLE {
                self.err(
                    span,
                    &key,
                    format!(
                        "variant `{}` needs {} FLOPs per sample; the limit is {} (measuring would take seconds per sample)",
                        variant.name,
                        format_count(counts.flops_per_sample),
                        format_count(MAX_FLOPS_PER_SAMPLE)
                    ),
                );
            }
        }
    }

    fn traffic(&mut self, traffic: &S<RawTraffic>) -> Option<Traffic> {
        let span = traffic.span();
        let t = traffic.get_ref();
        const PROCESSES: [&str; 5] = ["poisson", "constant", "bursty", "diurnal", "trace"];
        let process_name = self
            .required(
                &t.process,
                &span,
                "traffic.process",
                "one of poisson, constant, bursty, diurnal, trace",
            )
            .and_then(|p| {
                let name = p.get_ref().as_str();
                if PROCESSES.contains(&name) {
                    Some(name)
                } else {
                    self.err(
                        p.span(),
                        "traffic.process",
                        not_accepted("arrival process", name, &PROCESSES),
                    );
                    None
                }
            });
        // Keys that only apply to one process.
        let specific: [(&str, Option<Range<usize>>, &str); 5] = [
            (
                "burst_on_s",
                t.burst_on_s.as_ref().map(|x| x.span()),
                "bursty",
            ),
            (
                "burst_off_s",
                t.burst_off_s.as_ref().map(|x| x.span()),
                "bursty",
            ),
            (
                "peak_factor",
                t.peak_factor.as_ref().map(|x| x.span()),
                "diurnal",
            ),
            ("period_s", t.period_s.as_ref().map(|x| x.span()), "diurnal"),
            ("trace_csv", t.trace_csv.as_ref().map(|x| x.span()), "trace"),
        ];
        let mut ok = true;
        if let Some(name) = process_name {
            for (k, s, owner) in &specific {
                if let Some(s) = s {
                    if name != *owner {
                        self.err(
                            s.clone(),
                            &format!("traffic.{k}"),
                            format!(
                                "key `{k}` applies only to process = \"{owner}\", not \"{name}\""
                            ),
                        );
                        ok = false;
                    }
                }
            }
        }
        let is_trace = process_name == Some("trace");
        let rate = match &t.rate_per_s {
            // The planner bills and sizes at `rate_per_s` while the simulator
            // replays the trace: a second rate would contradict the trace.
            Some(r) if is_trace => {
                self.err(
                    r.span(),
                    "traffic.rate_per_s",
                    "key `rate_per_s` does not apply to process = \"trace\": the trace sets the rate (its arrivals over its span); remove the key",
                );
                None
            }
            Some(r) => self.up_to(
                r,
                "traffic.rate_per_s",
                (MIN_RATE_PER_S, false),
                MAX_RATE_PER_S,
                "mean arrival rate (requests per second)",
            ),
            None if is_trace => Some(0.0),
            None => {
                self.missing(
                    span.clone(),
                    "traffic.rate_per_s",
                    "mean arrival rate in requests per second, e.g. rate_per_s = 200",
                );
                None
            }
        };
        let duration = match &t.duration_s {
            Some(d) => self.up_to(
                d,
                "traffic.duration_s",
                (0.0, true),
                MAX_DURATION_S,
                "simulated duration (seconds, at most 30 days)",
            ),
            None if is_trace => Some(0.0),
            None => Some(60.0),
        };
        let process = match process_name? {
            "poisson" => Some(ArrivalProcess::Poisson),
            "constant" => Some(ArrivalProcess::Constant),
            "bursty" => {
                let on = self
                    .required(
                        &t.burst_on_s,
                        &span,
                        "traffic.burst_on_s",
                        "length of each burst in seconds, e.g. burst_on_s = 2",
                    )
                    .and_then(|x| {
                        self.up_to(
                            x,
                            "traffic.burst_on_s",
                            (0.0, true),
                            MAX_DURATION_S,
                            "burst length (seconds)",
                        )
                    });
                let off = self
                    .required(
                        &t.burst_off_s,
                        &span,
                        "traffic.burst_off_s",
                        "silence between bursts in seconds, e.g. burst_off_s = 8",
                    )
                    .and_then(|x| {
                        self.up_to(
                            x,
                            "traffic.burst_off_s",
                            // The simulator draws exponential pauses of this
                            // mean: it refuses 0 (use process = "poisson").
                            (0.0, true),
                            MAX_DURATION_S,
                            "silence between bursts (seconds)",
                        )
                    });
                Some(ArrivalProcess::Bursty {
                    on_s: on?,
                    off_s: off?,
                })
            }
            "diurnal" => {
                let peak = self
                    .required(
                        &t.peak_factor,
                        &span,
                        "traffic.peak_factor",
                        "peak rate / mean rate, e.g. peak_factor = 2.5",
                    )
                    .and_then(|x| {
                        self.in_range(
                            x,
                            "traffic.peak_factor",
                            (1.0, false),
                            (1000.0, false),
                            "peak rate / mean rate",
                        )
                    });
                let period = match &t.period_s {
                    Some(p) => self.up_to(
                        p,
                        "traffic.period_s",
                        (0.0, true),
                        MAX_PERIOD_S,
                        "cycle length (seconds, at most a year)",
                    ),
                    None => Some(86_400.0),
                };
                Some(ArrivalProcess::Diurnal {
                    peak_factor: peak?,
                    period_s: period?,
                })
            }
            _ => {
                let csv = self.required(
                    &t.trace_csv,
                    &span,
                    "traffic.trace_csv",
                    "path of a CSV of arrival timestamps in seconds, relative to this file",
                )?;
                if csv.get_ref().trim().is_empty() {
                    // Joined to this file's directory, "" named the directory.
                    self.err(
                        csv.span(),
                        "traffic.trace_csv",
                        "empty path is not accepted: give the path of a CSV of arrival timestamps in seconds, relative to this file (e.g. trace_csv = \"traces/arrivals.csv\")",
                    );
                    return None;
                }
                let path = self.base_dir.join(csv.get_ref());
                let explicit_duration = t.duration_s.as_ref().map(|d| *d.get_ref());
                match read_trace(&path).and_then(|ts| check_trace(ts, explicit_duration)) {
                    Ok(ts) => Some(ArrivalProcess::Trace {
                        path,
                        timestamps_s: ts,
                    }),
                    Err(msg) => {
                        self.err(
                            csv.span(),
                            "traffic.trace_csv",
                            format!("`{}`: {msg}", path.display()),
                        );
                        None
                    }
                }
            }
        };
        let (mut rate, mut duration) = (rate?, duration?);
        let process = match process? {
            ArrivalProcess::Trace { path, timestamps_s } => {
                let (timestamps_s, window) = replayed_trace(&timestamps_s, duration);
                duration = window;
                rate = timestamps_s.len() as f64 / window;
                if rate > MAX_RATE_PER_S {
                    self.err(
                        t.duration_s.as_ref().map_or(span.clone(), |d| d.span()),
                        "traffic.duration_s",
                        format!(
                            "the trace's {} arrivals in its {} s window make {} requests/s; the limit is {} requests/s",
                            timestamps_s.len(),
                            number(window),
                            number(rate),
                            number(MAX_RATE_PER_S)
                        ),
                    );
                    return None;
                }
                ArrivalProcess::Trace { path, timestamps_s }
            }
            other => other,
        };
        let traffic = Traffic {
            process,
            rate_per_s: rate,
            duration_s: duration,
        };
        // A burst or a daily peak multiplies the mean: bound what the simulator sees.
        let peak = traffic.peak_rate_per_s();
        let multiplier = match traffic.process {
            ArrivalProcess::Bursty { .. } => Some((
                "traffic.burst_on_s",
                &t.burst_on_s,
                "rate_per_s x (burst_on_s + burst_off_s) / burst_on_s",
            )),
            ArrivalProcess::Diurnal { .. } => Some((
                "traffic.peak_factor",
                &t.peak_factor,
                "rate_per_s x peak_factor",
            )),
            _ => None,
        };
        if let Some((key, field, why)) = multiplier {
            if !(peak.is_finite() && peak <= MAX_RATE_PER_S) {
                self.err(
                    field.as_ref().map_or(span, |f| f.span()),
                    key,
                    format!(
                        "peak rate {} requests/s ({why}) is not accepted: the peak must be at most {} requests/s",
                        number(peak),
                        number(MAX_RATE_PER_S)
                    ),
                );
                ok = false;
            }
        }
        ok.then_some(traffic)
    }

    fn inputs(&mut self, inputs: &S<RawInputs>) -> Option<Inputs> {
        let span = inputs.span();
        let i = inputs.get_ref();
        #[derive(Clone, Copy, PartialEq)]
        enum Space {
            Finite,
            Unbounded,
        }
        let space = self
            .required(
                &i.space,
                &span,
                "inputs.space",
                "\"finite\" (a countable set such as users x items) or \"unbounded\"",
            )
            .and_then(|s| {
                self.choice(
                    s,
                    "inputs.space",
                    "input space",
                    &[("finite", Space::Finite), ("unbounded", Space::Unbounded)],
                )
            });
        let space = match (space, &i.distinct_inputs) {
            (Some(Space::Finite), Some(d)) => self
                .int_in_range(
                    d,
                    "inputs.distinct_inputs",
                    (1, MAX_DISTINCT_INPUTS),
                    "number of distinct inputs",
                )
                .map(|distinct_inputs| InputSpace::Finite { distinct_inputs }),
            (Some(Space::Finite), None) => {
                self.missing(span.clone(), "inputs.distinct_inputs", "how many distinct inputs a finite space has, e.g. distinct_inputs = 50_000_000");
                None
            }
            (Some(Space::Unbounded), Some(d)) => {
                self.err(
                    d.span(),
                    "inputs.distinct_inputs",
                    "key `distinct_inputs` applies only to space = \"finite\"",
                );
                None
            }
            (Some(Space::Unbounded), None) => Some(InputSpace::Unbounded),
            (None, _) => None,
        };
        let freshness = match &i.freshness_s {
            Some(f) => self.up_to(
                f,
                "inputs.freshness_s",
                (0.0, false),
                MAX_FRESHNESS_S,
                "how stale a prediction may be (seconds, at most a year)",
            ),
            None => Some(0.0),
        };
        let (refresh, window) = self.batch_schedule(i, space, freshness);
        let freshness = match (&i.freshness_s, refresh) {
            // The oldest answer a fixed schedule leaves: scored as a run
            // starts, served until the next run, a period later, publishes.
            (None, Some(Some(every))) => Some(every + window.flatten().unwrap_or(every)),
            _ => freshness,
        };
        let zipf = match &i.zipf_exponent {
            Some(z) => self.in_range(
                z,
                "inputs.zipf_exponent",
                (0.0, false),
                (10.0, false),
                "Zipf exponent",
            ),
            None => Some(0.0),
        };
        let request = self
            .required(
                &i.request_bytes,
                &span,
                "inputs.request_bytes",
                "request payload size in bytes, e.g. request_bytes = 1024",
            )
            .and_then(|x| {
                self.int_in_range(
                    x,
                    "inputs.request_bytes",
                    (0, MAX_PAYLOAD_BYTES),
                    "request payload (bytes, at most 1 GiB)",
                )
            });
        let response = self
            .required(
                &i.response_bytes,
                &span,
                "inputs.response_bytes",
                "response payload size in bytes, e.g. response_bytes = 64",
            )
            .and_then(|x| {
                self.int_in_range(
                    x,
                    "inputs.response_bytes",
                    (0, MAX_PAYLOAD_BYTES),
                    "response payload (bytes, at most 1 GiB)",
                )
            });
        let fan_out = match &i.predictions_per_request {
            Some(x) => self.int_in_range(
                x,
                "inputs.predictions_per_request",
                (1, MAX_PREDICTIONS_PER_REQUEST),
                "predictions one request needs",
            ),
            None => Some(1),
        };
        let source = match &i.source {
            Some(x) => self.choice(
                x,
                "inputs.source",
                "input source",
                &[
                    ("request", InputSource::Request),
                    ("stream", InputSource::Stream),
                ],
            ),
            None => Some(InputSource::Request),
        };
        if let (Some(InputSpace::Finite { distinct_inputs }), Some(bytes), Some(d)) =
            (space, response, &i.distinct_inputs)
        {
            let stored =
                distinct_inputs as f64 * (bytes.max(1) + STORED_BYTES_PER_PREDICTION) as f64;
            if stored > MAX_STORED_BYTES {
                self.err(
                    d.span(),
                    "inputs.distinct_inputs",
                    format!(
                        "value {distinct_inputs} is not accepted: storing a prediction for each of them ({} bytes each: response_bytes + {STORED_BYTES_PER_PREDICTION} of key and timestamp) takes {}, more than the {} a store may hold",
                        bytes.max(1) + STORED_BYTES_PER_PREDICTION,
                        format_bytes(stored),
                        format_bytes(MAX_STORED_BYTES)
                    ),
                );
                return None;
            }
        }
        Some(Inputs {
            source: source?,
            space: space?,
            freshness_s: freshness?,
            refresh_every_s: refresh?,
            batch_window_s: window?,
            zipf_exponent: zipf?,
            request_bytes: request?,
            response_bytes: response?,
            predictions_per_request: fan_out?,
        })
    }

    /// `inputs.refresh_every_s` and `inputs.batch_window_s`, checked against
    /// the input space and an explicit `freshness_s`: `Some(None)` for a key
    /// not given, `None` for one refused.
    fn batch_schedule(
        &mut self,
        i: &RawInputs,
        space: Option<InputSpace>,
        freshness: Option<f64>,
    ) -> (Option<Option<f64>>, Option<Option<f64>>) {
        let mut refresh = self.optional_up_to(
            &i.refresh_every_s,
            "inputs.refresh_every_s",
            (0.0, true),
            MAX_FRESHNESS_S / 2.0,
            "seconds between the batch job's starts (86400 = nightly; at most half a year)",
        );
        let mut window = self.optional_up_to(
            &i.batch_window_s,
            "inputs.batch_window_s",
            (0.0, true),
            MAX_FRESHNESS_S / 2.0,
            "the longest one batch run may take (seconds, at most half a year)",
        );
        let parsed_refresh = refresh.flatten();
        if matches!(space, Some(InputSpace::Unbounded)) {
            let mut given = false;
            for (field, key) in [
                (&i.refresh_every_s, "refresh_every_s"),
                (&i.batch_window_s, "batch_window_s"),
            ] {
                if let Some(f) = field {
                    self.err(
                        f.span(),
                        &format!("inputs.{key}"),
                        format!("key `{key}` applies only to space = \"finite\": a batch job precomputes a finite set of inputs"),
                    );
                    given = true;
                }
            }
            return if given {
                (None, None)
            } else {
                (Some(None), Some(None))
            };
        }
        if let (Some(f), Some(Some(every)), Some(fresh)) = (&i.freshness_s, refresh, freshness) {
            if fresh <= every {
                self.err(
                    f.span(),
                    "inputs.freshness_s",
                    format!(
                        "value {} is not accepted with refresh_every_s = {}: a job started every {} s leaves answers up to that plus its run's duration old, so freshness_s must be more than {} (or left out: the schedule then sets it)",
                        number(fresh),
                        number(every),
                        number(every),
                        number(every)
                    ),
                );
                refresh = None;
            }
        }
        if let (Some(w), Some(every), Some(Some(span_s))) =
            (&i.batch_window_s, parsed_refresh, window)
        {
            if span_s > every {
                self.err(
                    w.span(),
                    "inputs.batch_window_s",
                    format!(
                        "value {} is not accepted: a run must end before the next starts, so batch_window_s must be at most refresh_every_s = {}",
                        number(span_s),
                        number(every)
                    ),
                );
                window = None;
            }
        }
        if let (Some(w), None, Some(0.0)) = (&i.batch_window_s, &i.refresh_every_s, freshness) {
            self.err(
                w.span(),
                "inputs.batch_window_s",
                "key `batch_window_s` applies only to a batch job: set freshness_s > 0 or refresh_every_s",
            );
            window = None;
        }
        (refresh, window)
    }

    fn objectives(&mut self, objectives: &S<RawObjectives>) -> Option<Objectives> {
        let span = objectives.span();
        let o = objectives.get_ref();
        let percentile = self
            .required(
                &o.latency_percentile,
                &span,
                "objectives.latency_percentile",
                "percentile the SLO applies to, e.g. latency_percentile = 99",
            )
            .and_then(|x| {
                self.in_range(
                    x,
                    "objectives.latency_percentile",
                    (0.0, true),
                    (MAX_LATENCY_PERCENTILE, false),
                    "latency percentile",
                )
            });
        let latency = self
            .required(
                &o.latency_ms,
                &span,
                "objectives.latency_ms",
                "latency SLO in milliseconds, e.g. latency_ms = 50",
            )
            .and_then(|x| {
                self.up_to(
                    x,
                    "objectives.latency_ms",
                    (0.0, true),
                    MAX_LATENCY_SLO_MS,
                    "latency SLO (milliseconds)",
                )
            });
        let throughput = match &o.min_throughput_per_s {
            Some(t) => self.up_to(
                t,
                "objectives.min_throughput_per_s",
                (0.0, false),
                MAX_THROUGHPUT_PER_S,
                "minimum throughput (predictions per second)",
            ),
            None => Some(0.0),
        };
        let floor = match &o.accuracy_floor {
            Some(a) => self.in_range(
                a,
                "objectives.accuracy_floor",
                (0.0, true),
                (1.0, false),
                "accuracy floor (agreement with the f32 reference)",
            ),
            None => Some(0.99),
        };
        let budget = match &o.monthly_budget_usd {
            Some(b) => self
                .up_to(
                    b,
                    "objectives.monthly_budget_usd",
                    (0.0, true),
                    MAX_MONTHLY_BUDGET_USD,
                    "monthly budget (USD)",
                )
                .map(Some),
            None => Some(None),
        };
        let weight = match &o.cost_weight {
            Some(w) => self.in_range(
                w,
                "objectives.cost_weight",
                (0.0, false),
                (1.0, false),
                "cost weight",
            ),
            None => Some(0.5),
        };
        Some(Objectives {
            latency_percentile: percentile?,
            latency_ms: latency?,
            min_throughput_per_s: throughput?,
            accuracy_floor: floor?,
            monthly_budget_usd: budget?,
            cost_weight: weight?,
        })
    }

    fn constraints(&mut self, constraints: &S<RawConstraints>) -> Option<Constraints> {
        let c = constraints.get_ref();
        let offline = match &c.offline_fraction {
            Some(f) => self.in_range(
                f,
                "constraints.offline_fraction",
                (0.0, false),
                (1.0, false),
                "fraction of time offline",
            ),
            None => Some(0.0),
        };
        let memory = match &c.max_device_memory_mb {
            Some(m) => self
                .up_to(
                    m,
                    "constraints.max_device_memory_mb",
                    (0.0, true),
                    MAX_MEMORY_GB * 1e3,
                    "device memory limit (MB)",
                )
                .map(|mb| Some((mb * 1e6) as u64)),
            None => Some(None),
        };
        let power = match &c.max_device_power_watts {
            Some(p) => self
                .up_to(
                    p,
                    "constraints.max_device_power_watts",
                    (0.0, true),
                    MAX_POWER_WATTS,
                    "device power limit (watts)",
                )
                .map(Some),
            None => Some(None),
        };
        Some(Constraints {
            data_may_leave_device: c
                .data_may_leave_device
                .as_ref()
                .is_none_or(|d| *d.get_ref()),
            offline_fraction: offline?,
            max_device_memory_bytes: memory?,
            max_device_power_watts: power?,
        })
    }

    fn targets(&mut self, targets: &S<RawTargets>) -> Option<Targets> {
        let span = targets.span();
        let t = targets.get_ref();
        // Bounded before each table is read: every target multiplies the search.
        let mut too_many = false;
        fn counted<T>(tables: &Option<Vec<S<T>>>, max: usize) -> (usize, Option<Range<usize>>) {
            let list = tables.as_deref().unwrap_or_default();
            (list.len(), list.get(max).map(|t| t.span()))
        }
        let every_plan = "every plan is tried on each: the search grows with the count";
        for ((given, first_extra), key, max, what, why) in [
            (
                counted(&t.cloud, MAX_CLOUD_TARGETS),
                "targets.cloud",
                MAX_CLOUD_TARGETS,
                "[[targets.cloud]] tables",
                every_plan,
            ),
            (
                counted(&t.edge, MAX_EDGE_TARGETS),
                "targets.edge",
                MAX_EDGE_TARGETS,
                "[[targets.edge]] tables",
                every_plan,
            ),
            (
                counted(&t.links, MAX_LINKS),
                "targets.links",
                MAX_LINKS,
                "[[targets.links]] tables",
                "each target uses one, so more are never all used",
            ),
        ] {
            // At the first table past the limit: where to cut.
            if let Some(span) = first_extra {
                self.too_long(span, key, given, max, what, why);
                too_many = true;
            }
        }
        if too_many {
            return None;
        }
        let mut ok = true;
        let mut links = Vec::new();
        for (i, link) in t.links.iter().flatten().enumerate() {
            match self.link(link, &format!("targets.links[{i}]")) {
                Some(l) => links.push(l),
                None => ok = false,
            }
        }
        let mut link_names: Vec<String> = Vec::new();
        for (i, link) in t.links.iter().flatten().enumerate() {
            let Some(name) = link.get_ref().name.as_ref() else {
                continue;
            };
            if link_names.contains(name.get_ref()) {
                // Targets name their link: a second of one name would never be used.
                self.err(
                    name.span(),
                    &format!("targets.links[{i}].name"),
                    format!(
                        "link name `{}` is used twice; give each [[targets.links]] a unique `name`",
                        quoted(name.get_ref(), 60)
                    ),
                );
                ok = false;
            } else {
                link_names.push(name.get_ref().clone());
            }
        }
        let mut names: Vec<String> = Vec::new();
        let mut resolve_all = |this: &mut Self,
                               list: &Option<Vec<S<RawTarget>>>,
                               kind: TargetKind,
                               section: &str| {
            let mut out = Vec::new();
            for (i, target) in list.iter().flatten().enumerate() {
                let key = format!("targets.{section}[{i}]");
                match this.target(target, kind, &key, &link_names) {
                    Some(resolved) => {
                        if names.contains(&resolved.spec.name) {
                            let s = target
                                .get_ref()
                                .name
                                .as_ref()
                                .or(target.get_ref().catalog.as_ref())
                                .map_or(target.span(), |n| n.span());
                            this.err(s, &key, format!("target name `{}` is used twice; give each target a unique `name`", quoted(&resolved.spec.name, 60)));
                            ok = false;
                        }
                        names.push(resolved.spec.name.clone());
                        out.push(resolved);
                    }
                    None => ok = false,
                }
            }
            out
        };
        let cloud = resolve_all(self, &t.cloud, TargetKind::Cloud, "cloud");
        let edge = resolve_all(self, &t.edge, TargetKind::Edge, "edge");
        let cloud_count = t.cloud.as_ref().map_or(0, Vec::len);
        let edge_count = t.edge.as_ref().map_or(0, Vec::len);
        if cloud_count + edge_count == 0
            && !self.removed.contains("targets.cloud")
            && !self.removed.contains("targets.edge")
        {
            self.err(span, "targets", "no targets: add at least one [[targets.cloud]] or [[targets.edge]] (e.g. catalog = \"aws-c7i.xlarge\")");
            ok = false;
        }
        let broker = match &t.broker {
            Some(b) => {
                let bs = b.span();
                let b = b.get_ref();
                let per_hop = self
                    .required(
                        &b.per_hop_ms,
                        &bs,
                        "targets.broker.per_hop_ms",
                        "broker latency per hop in ms, e.g. per_hop_ms = 2",
                    )
                    .and_then(|x| {
                        self.network_ms(x, "targets.broker.per_hop_ms", "per-hop latency (ms)")
                    });
                let hops = match &b.hops {
                    Some(h) => {
                        self.int_in_range(h, "targets.broker.hops", (1, MAX_HOPS), "broker hops")
                    }
                    None => Some(2),
                };
                let partitions = match &b.partitions {
                    Some(p) => self.int_in_range(
                        p,
                        "targets.broker.partitions",
                        (1, MAX_PARTITIONS),
                        "partitions",
                    ),
                    None => Some(1),
                };
                let partition_mb_per_s = self.optional_up_to(
                    &b.partition_mb_per_s,
                    "targets.broker.partition_mb_per_s",
                    (MIN_BANDWIDTH, false),
                    MAX_PARTITION_MB_PER_S,
                    "what one partition delivers to its consumer (MB/s)",
                );
                let partition_messages_per_s = self.optional_up_to(
                    &b.partition_messages_per_s,
                    "targets.broker.partition_messages_per_s",
                    (MIN_RATE_PER_S, false),
                    MAX_RATE_PER_S,
                    "what one partition delivers to its consumer (messages/s)",
                );
                let usd_per_month = self.optional_up_to(
                    &b.usd_per_month,
                    "targets.broker.usd_per_month",
                    (0.0, false),
                    MAX_BROKER_USD_PER_MONTH,
                    "broker price (USD per month)",
                );
                let usd_per_gb = self.optional_up_to(
                    &b.usd_per_gb,
                    "targets.broker.usd_per_gb",
                    (0.0, false),
                    MAX_USD_PER_GB,
                    "broker price per GB through it (USD)",
                );
                match (
                    per_hop,
                    hops,
                    partitions,
                    partition_mb_per_s,
                    partition_messages_per_s,
                    usd_per_month,
                    usd_per_gb,
                ) {
                    (
                        Some(per_hop_ms),
                        Some(h),
                        Some(p),
                        Some(mb),
                        Some(messages),
                        Some(usd_per_month),
                        Some(usd_per_gb),
                    ) => Some(Broker {
                        per_hop_ms,
                        hops: u32::try_from(h).unwrap_or(u32::MAX),
                        partitions: u32::try_from(p).unwrap_or(u32::MAX),
                        partition_mb_per_s: mb,
                        partition_messages_per_s: messages,
                        usd_per_month,
                        usd_per_gb,
                    }),
                    _ => {
                        ok = false;
                        None
                    }
                }
            }
            None => None,
        };
        let storage = match &t.storage {
            Some(s) => {
                let ss = s.span();
                let s = s.get_ref();
                let lookup = self
                    .required(
                        &s.lookup_ms,
                        &ss,
                        "targets.storage.lookup_ms",
                        "lookup latency in ms, e.g. lookup_ms = 1.5",
                    )
                    .and_then(|x| {
                        self.network_ms(x, "targets.storage.lookup_ms", "lookup latency (ms)")
                    });
                let price = self
                    .required(
                        &s.usd_per_gb_month,
                        &ss,
                        "targets.storage.usd_per_gb_month",
                        "storage price, e.g. usd_per_gb_month = 0.25",
                    )
                    .and_then(|x| {
                        self.up_to(
                            x,
                            "targets.storage.usd_per_gb_month",
                            (0.0, false),
                            MAX_USD_PER_GB_MONTH,
                            "storage price (USD per GB-month)",
                        )
                    });
                match (lookup, price) {
                    (Some(lookup_ms), Some(usd_per_gb_month)) => Some(Storage {
                        lookup_ms,
                        usd_per_gb_month,
                    }),
                    _ => {
                        ok = false;
                        None
                    }
                }
            }
            None => None,
        };
        let edge_classes = match &t.edge_classes {
            Some(c) => {
                let table: Vec<(&str, EdgeClasses)> =
                    EdgeClasses::ALL.iter().map(|e| (e.name(), *e)).collect();
                self.choice(c, "targets.edge_classes", "edge classes", &table)
            }
            None => Some(EdgeClasses::Alternatives),
        };
        match edge_classes {
            Some(classes) => ok &= self.fleet_keys(t, classes),
            None => ok = false,
        }
        ok.then_some(Targets {
            cloud,
            edge,
            edge_classes: edge_classes.unwrap_or_default(),
            links,
            broker,
            storage,
        })
    }

    /// The keys that describe a fleet (`edge_classes = "fleet"`): every
    /// class states its `fleet_size` (the per-device rate depends on it),
    /// and `traffic_share` is stated for every class or none, the shares
    /// adding up to 1; without a fleet `traffic_share` means nothing.
    fn fleet_keys(&mut self, t: &RawTargets, classes: EdgeClasses) -> bool {
        let edge = t.edge.as_deref().unwrap_or_default();
        let shares: Vec<(usize, &S<f64>)> = edge
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.get_ref().traffic_share.as_ref().map(|s| (i, s)))
            .collect();
        // A class whose share (or size) the schema stage already refused
        // (wrong type, misspelt key) did state one: it is not "missing".
        let refused =
            |i: usize, name: &str| self.removed.contains(&format!("targets.edge[{i}].{name}"));
        let share_refused = (0..edge.len()).any(|i| refused(i, "traffic_share"));
        let size_refused: Vec<bool> = (0..edge.len()).map(|i| refused(i, "fleet_size")).collect();
        // `edge_classes` written inside a [[targets.edge]] table was reported
        // there; the classes' fleet keys are not errors on top of it.
        let fleet_misplaced = (0..edge.len()).any(|i| refused(i, "edge_classes"));
        let mut ok = true;
        if classes != EdgeClasses::Fleet {
            if fleet_misplaced {
                return ok;
            }
            for (i, share) in shares {
                self.err(share.span(), &format!("targets.edge[{i}].traffic_share"), "key `traffic_share` applies only to a fleet: add `edge_classes = \"fleet\"` to [targets] when the edge classes are parts of one fleet (each serving its own users' share), or remove it (alternatives each carry all the traffic)");
                ok = false;
            }
            return ok;
        }
        if edge.is_empty() {
            if let Some(c) = &t.edge_classes {
                self.err(c.span(), "targets.edge_classes", "a fleet needs its device classes: add [[targets.edge]] tables (catalog, fleet_size), or remove edge_classes");
                ok = false;
            }
        }
        for (i, e) in edge.iter().enumerate() {
            if e.get_ref().fleet_size.is_none() && !size_refused[i] {
                self.err(e.span(), &format!("targets.edge[{i}].fleet_size"), "missing required key: the number of devices of this class (edge_classes = \"fleet\": each class serves its own users)");
                ok = false;
            }
        }
        if share_refused {
            // Whether the shares are complete and add up to 1 is unknown.
        } else if !shares.is_empty() && shares.len() < edge.len() {
            let missing: Vec<String> = (0..edge.len())
                .filter(|i| !shares.iter().any(|(j, _)| j == i))
                .map(|i| format!("targets.edge[{i}]"))
                .collect();
            self.err(shares[0].1.span(), &format!("targets.edge[{}].traffic_share", shares[0].0), format!("traffic_share is stated for some classes of the fleet but not for {}: state it for every class (the shares add up to 1) or for none (each class then serves its share of the devices)", missing.join(", ")));
            ok = false;
        } else if !shares.is_empty()
            // A share outside (0, 1] is reported as such where the class is read.
            && shares
                .iter()
                .all(|(_, s)| *s.get_ref() > 0.0 && *s.get_ref() <= 1.0)
        {
            let total: f64 = shares.iter().map(|(_, s)| *s.get_ref()).sum();
            if (total - 1.0).abs() > FLEET_SHARE_TOLERANCE {
                self.err(shares[0].1.span(), &format!("targets.edge[{}].traffic_share", shares[0].0), format!("the fleet's traffic shares add up to {}: they must add up to 1 (within {FLEET_SHARE_TOLERANCE})", number(without_rounding_noise(total))));
                ok = false;
            }
        }
        ok
    }

    fn link(&mut self, link: &S<RawLink>, key: &str) -> Option<Link> {
        let span = link.span();
        let l = link.get_ref();
        let name = self.required(
            &l.name,
            &span,
            &join(key, "name"),
            "a name other keys refer to, e.g. name = \"mobile-4g\"",
        );
        let median = self
            .required(
                &l.rtt_median_ms,
                &span,
                &join(key, "rtt_median_ms"),
                "median round-trip time in ms",
            )
            .and_then(|x| self.network_ms(x, &join(key, "rtt_median_ms"), "median RTT (ms)"));
        let p99 = self
            .required(
                &l.rtt_p99_ms,
                &span,
                &join(key, "rtt_p99_ms"),
                "99th percentile round-trip time in ms",
            )
            .and_then(|x| self.network_ms(x, &join(key, "rtt_p99_ms"), "p99 RTT (ms)"));
        // Reported, and the link's other keys still checked.
        let p99 = match (median, p99, &l.rtt_p99_ms) {
            (Some(m), Some(p), Some(ps)) if p < m => {
                self.err(
                    ps.span(),
                    &join(key, "rtt_p99_ms"),
                    format!("value {p} is not accepted: p99 RTT must be >= rtt_median_ms = {m}"),
                );
                None
            }
            (_, p99, _) => p99,
        };
        let name = name.filter(|n| self.free_text(n, &join(key, "name"), false));
        let bandwidth = self
            .required(
                &l.bandwidth_mbps,
                &span,
                &join(key, "bandwidth_mbps"),
                "bandwidth in megabits per second",
            )
            .and_then(|x| {
                self.up_to(
                    x,
                    &join(key, "bandwidth_mbps"),
                    (MIN_BANDWIDTH, false),
                    f64::INFINITY,
                    "bandwidth (Mbit/s)",
                )
            });
        let loss = match &l.loss_fraction {
            Some(x) => self.in_range(
                x,
                &join(key, "loss_fraction"),
                (0.0, false),
                (1.0, true),
                "packet loss fraction",
            ),
            None => Some(0.0),
        };
        let min_rto_ms = self.optional_up_to(
            &l.min_rto_ms,
            &join(key, "min_rto_ms"),
            (0.0, true),
            MAX_NETWORK_MS,
            "floor of TCP's retransmission timeout (ms)",
        );
        Some(Link {
            name: name?.get_ref().clone(),
            rtt_median_ms: median?,
            rtt_p99_ms: p99?,
            bandwidth_mbps: bandwidth?,
            loss_fraction: loss?,
            min_rto_ms: min_rto_ms?,
        })
    }

    fn target(
        &mut self,
        target: &S<RawTarget>,
        kind: TargetKind,
        key: &str,
        link_names: &[String],
    ) -> Option<Target> {
        let span = target.span();
        let t = target.get_ref();
        // A misspelt or mistyped `catalog` was already reported; without it
        // every figure would be reported missing too.
        if t.catalog.is_none() && self.removed.contains(&join(key, "catalog")) {
            return None;
        }
        let kind_name = match kind {
            TargetKind::Cloud => "cloud",
            TargetKind::Edge => "edge",
        };
        let base: Option<TargetSpec> = match &t.catalog {
            Some(c) => match catalog::find(c.get_ref()) {
                Some(entry) if entry.kind == kind => Some(entry),
                Some(_) => {
                    let (article, other) = if kind == TargetKind::Cloud {
                        ("an", "edge")
                    } else {
                        ("a", "cloud")
                    };
                    self.err(c.span(), &join(key, "catalog"), format!("`{}` is {article} {other} catalog entry; list it under [[targets.{other}]], not [[targets.{kind_name}]]", quoted(c.get_ref(), 60)));
                    return None;
                }
                None => {
                    let names: Vec<String> = catalog::entries()
                        .into_iter()
                        .filter(|e| e.kind == kind)
                        .map(|e| e.name)
                        .collect();
                    let names: Vec<&str> = names.iter().map(String::as_str).collect();
                    self.err(
                        c.span(),
                        &join(key, "catalog"),
                        not_accepted(&format!("{kind_name} catalog entry"), c.get_ref(), &names),
                    );
                    return None;
                }
            },
            None => None,
        };
        let name = match (&t.name, &base) {
            (Some(n), _) if n.get_ref().trim().is_empty() => {
                self.err(n.span(), &join(key, "name"), "empty name is not accepted");
                None
            }
            (Some(n), _) if !self.free_text(n, &join(key, "name"), false) => None,
            (Some(n), _) => Some(n.get_ref().clone()),
            (None, Some(b)) => Some(b.name.clone()),
            (None, None) => {
                self.missing(
                    span.clone(),
                    &join(key, "name"),
                    "a name (or catalog = \"...\" to start from a built-in entry)",
                );
                None
            }
        };
        let has_base = base.is_some();
        let speed_factor = match &t.speed_factor {
            Some(s) => Some(self.in_range(
                s,
                &join(key, "speed_factor"),
                (MIN_SPEED_FACTOR, false),
                (MAX_SPEED_FACTOR, false),
                "speed relative to this machine",
            )?),
            None => None,
        };
        // Without a catalog entry the figures are required, unless a speed
        // factor stands in for the peaks.
        let need = |field_present: bool| has_base || field_present;
        let mut ok = true;
        // `(lo, hi)`: the range (limits.rs says why); `zero`: what 0 means
        // when it is accepted besides the range.
        let mut num = |this: &mut Self,
                       field: &Opt<f64>,
                       k: &str,
                       what: &str,
                       required: bool,
                       (lo, hi): (f64, f64),
                       zero: Option<&str>|
         -> Option<f64> {
            match field {
                Some(v) => this.figure(v, &join(key, k), (lo, hi), zero, what),
                None if required => {
                    this.missing(
                        span.clone(),
                        &join(key, k),
                        &format!("{what} (no catalog entry to take it from)"),
                    );
                    ok = false;
                    None
                }
                None => None,
            }
        };
        let peaks_required = !has_base && speed_factor.is_none();
        let memory_gb = num(
            self,
            &t.memory_gb,
            "memory_gb",
            "memory in GB",
            !has_base,
            (MIN_MEMORY_GB, MAX_MEMORY_GB),
            None,
        );
        let peak = num(
            self,
            &t.peak_gflops_f32,
            "peak_gflops_f32",
            "peak f32 GFLOP/s",
            peaks_required,
            (MIN_PEAK_GFLOPS, MAX_PEAK_GFLOPS),
            None,
        );
        let int8 = num(
            self,
            &t.peak_gops_int8,
            "peak_gops_int8",
            "peak int8 G ops/s",
            false,
            (MIN_PEAK_GFLOPS, MAX_PEAK_GOPS_INT8),
            Some("no int8 figure"),
        );
        let bandwidth = num(
            self,
            &t.mem_bandwidth_gbs,
            "mem_bandwidth_gbs",
            "memory bandwidth in GB/s",
            peaks_required,
            (MIN_MEM_BANDWIDTH_GBS, MAX_MEM_BANDWIDTH_GBS),
            None,
        );
        let price = num(
            self,
            &t.usd_per_hour,
            "usd_per_hour",
            "on-demand price in USD per hour",
            !has_base && kind == TargetKind::Cloud,
            (0.0, MAX_USD_PER_HOUR),
            None,
        );
        let source_ok = t
            .source
            .as_ref()
            .is_none_or(|source| self.free_text(source, &join(key, "source"), false));
        let cold = t.cold_start_ms.as_ref().and_then(|v| {
            self.up_to(
                v,
                &join(key, "cold_start_ms"),
                (0.0, false),
                MAX_COLD_START_MS,
                "cold start in ms",
            )
        });
        let power = num(
            self,
            &t.power_watts,
            "power_watts",
            "power draw under load in watts",
            false,
            (0.0, MAX_POWER_WATTS),
            None,
        );
        let idle_power = num(
            self,
            &t.idle_power_watts,
            "idle_power_watts",
            "power draw between inputs in watts, counted when the device stays awake for the model (0: it sleeps, or is on anyway)",
            false,
            (0.0, MAX_POWER_WATTS),
            None,
        );
        let cache_mb = num(
            self,
            &t.cache_mb,
            "cache_mb",
            "cache of the model's cores in MB (L2 and their share of L3)",
            false,
            (0.0, MAX_CACHE_MB),
            None,
        );
        let parallel_overhead = num(
            self,
            &t.parallel_overhead_us,
            "parallel_overhead_us",
            "fork and join of one parallel op in µs",
            false,
            (0.0, MAX_PARALLEL_OVERHEAD_US),
            None,
        );
        let cores = match &t.cores {
            Some(c) => self.int_in_range(c, &join(key, "cores"), (1, MAX_CORES), "cores (vCPUs)"),
            None if need(false) => base.as_ref().map(|b| u64::from(b.cores)),
            None => {
                self.missing(
                    span.clone(),
                    &join(key, "cores"),
                    "cores (vCPUs) available to the model (no catalog entry to take it from)",
                );
                None
            }
        };
        let threads_per_core = match &t.threads_per_core {
            Some(c) => Some(self.int_in_range(
                c,
                &join(key, "threads_per_core"),
                (1, MAX_THREADS_PER_CORE),
                "hardware threads per physical core",
            )?),
            None => Some(base.as_ref().map_or(1, |b| u64::from(b.threads_per_core))),
        };
        let precisions = match &t.precisions {
            Some(list) => self.choice_list(
                &Some(list.clone()),
                &join(key, "precisions"),
                "precision",
                &precision_table(),
                "the catalog entry's precisions (f32 without one)",
            ),
            None => Some(
                base.as_ref()
                    .map_or(vec![Precision::F32], |b| b.precisions.clone()),
            ),
        };
        let fleet_size = match (&t.fleet_size, kind) {
            (Some(f), TargetKind::Edge) => Some(Some(self.int_in_range(
                f,
                &join(key, "fleet_size"),
                (1, MAX_FLEET_SIZE),
                "fleet size (devices)",
            )?)),
            (Some(f), TargetKind::Cloud) => {
                self.err(f.span(), &join(key, "fleet_size"), "key `fleet_size` applies only to [[targets.edge]] (cloud replicas are chosen by the planner)");
                // The keys below are checked too: every mistake at once.
                None
            }
            (None, TargetKind::Edge) => Some(Some(1)),
            (None, TargetKind::Cloud) => Some(None),
        };
        let traffic_share = match (&t.traffic_share, kind) {
            (Some(f), TargetKind::Edge) => self
                .in_range(
                    f,
                    &join(key, "traffic_share"),
                    (0.0, true),
                    (1.0, false),
                    "share of all requests this device class serves",
                )
                .map(Some),
            (Some(f), TargetKind::Cloud) => {
                self.err(f.span(), &join(key, "traffic_share"), "key `traffic_share` applies only to [[targets.edge]] of a fleet (cloud replicas share their traffic as the planner sizes them)");
                None
            }
            (None, _) => Some(None),
        };
        let request_cpu_us = self.handling_cpu_us(
            &t.request_cpu_us,
            kind,
            &join(key, "request_cpu_us"),
            "CPU per HTTP request (µs of one core)",
        );
        let message_cpu_us = self.handling_cpu_us(
            &t.message_cpu_us,
            kind,
            &join(key, "message_cpu_us"),
            "CPU per stream message (µs of one core)",
        );
        let link = match &t.link {
            Some(l) if link_names.iter().any(|n| n == l.get_ref()) => Some(l.get_ref().clone()),
            Some(l) => {
                let accepted: Vec<&str> = link_names.iter().map(String::as_str).collect();
                let msg = if accepted.is_empty() {
                    format!("link `{}` is not defined: add a [[targets.links]] table with name = \"{}\"", quoted(l.get_ref(), 60), quoted(l.get_ref(), 60))
                } else {
                    not_accepted("link", l.get_ref(), &accepted)
                        .replace("is not accepted", "is not defined in [[targets.links]]")
                };
                self.err(l.span(), &join(key, "link"), msg);
                return None;
            }
            // With one link it is every target's; with several, a target
            // must say which (the first had been taken silently: an unused
            // 600 ms satellite link had timed a cloud target).
            None if link_names.len() > 1 => {
                self.missing(
                    span.clone(),
                    &join(key, "link"),
                    &format!(
                        "several links are defined ({}): name the one between the clients and this target",
                        link_names.join(", ")
                    ),
                );
                return None;
            }
            None => link_names.first().cloned(),
        };
        if !ok || !source_ok {
            return None;
        }
        let b = base.clone();
        let pick = |v: Option<f64>, from_base: fn(&TargetSpec) -> f64| {
            v.or_else(|| b.as_ref().map(from_base)).unwrap_or(0.0)
        };
        let spec = TargetSpec {
            name: name?,
            kind,
            cores: u32::try_from(cores?).unwrap_or(u32::MAX),
            threads_per_core: u32::try_from(threads_per_core?).unwrap_or(u32::MAX),
            memory_bytes: match memory_gb {
                Some(gb) => (gb * 1e9) as u64,
                None => base.as_ref().map_or(0, |b| b.memory_bytes),
            },
            peak_gflops_f32: pick(peak, |b| b.peak_gflops_f32),
            // A catalog device given its own f32 peak keeps the catalog's
            // int8 : f32 ratio, not its int8 figure: a phone overridden to
            // 8 GFLOP/s had kept 281.6 Gops/s of int8 (35x, not 2x), and int8
            // alone seemed to meet the SLO.
            peak_gops_int8: match (int8, peak, base.as_ref()) {
                (None, Some(f32), Some(b)) if b.peak_gflops_f32 > 0.0 => {
                    b.peak_gops_int8 * f32 / b.peak_gflops_f32
                }
                _ => pick(int8, |b| b.peak_gops_int8),
            },
            mem_bandwidth_gbs: pick(bandwidth, |b| b.mem_bandwidth_gbs),
            cache_bytes: match cache_mb {
                Some(mb) => (mb * 1e6) as u64,
                None => base.as_ref().map_or(0, |b| b.cache_bytes),
            },
            precisions: precisions?,
            usd_per_hour: pick(price, |b| b.usd_per_hour),
            cold_start_ms: pick(cold, |b| b.cold_start_ms),
            power_watts: pick(power, |b| b.power_watts),
            idle_power_watts: pick(idle_power, |b| b.idle_power_watts),
            parallel_overhead_us: parallel_overhead
                .or_else(|| b.as_ref().map(|b| b.parallel_overhead_us))
                .unwrap_or(DEFAULT_PARALLEL_OVERHEAD_US),
            // Not a scenario key: the catalog entry's, else cores alike.
            fastest_core_speedup: base.as_ref().and_then(|b| b.fastest_core_speedup),
            source: match (&t.source, &base) {
                (Some(s), _) => s.get_ref().clone(),
                (None, Some(b)) if t.has_overrides() => {
                    format!("{} (with scenario overrides)", b.source)
                }
                (None, Some(b)) => b.source.clone(),
                (None, None) => "scenario file".to_string(),
            },
        };
        // Idle above the draw under load would make a busier device cheaper.
        if spec.idle_power_watts > spec.power_watts {
            let at = t
                .idle_power_watts
                .as_ref()
                .or(t.power_watts.as_ref())
                .map_or(span.clone(), |v| v.span());
            self.err(
                at,
                &join(key, "idle_power_watts"),
                format!(
                    "idle_power_watts {} W is above power_watts {} W, the draw under load: accepted is 0 up to power_watts",
                    spec.idle_power_watts, spec.power_watts
                ),
            );
            return None;
        }
        Some(Target {
            spec,
            catalog: t.catalog.as_ref().map(|c| c.get_ref().clone()),
            speed_factor,
            fleet_size: fleet_size?,
            traffic_share: traffic_share?,
            link,
            request_cpu_us: request_cpu_us?,
            message_cpu_us: message_cpu_us?,
        })
    }

    /// A cloud target's CPU per request or message besides the model, µs in
    /// `[0, MAX_HANDLING_CPU_US]`; `Some(None)` when not stated, `None` when
    /// refused (on an edge target the model is called in-app, with no server).
    fn handling_cpu_us(
        &mut self,
        field: &Opt<f64>,
        kind: TargetKind,
        key: &str,
        what: &str,
    ) -> Option<Option<f64>> {
        if let (Some(value), TargetKind::Edge) = (field, kind) {
            let name = key.rsplit('.').next().unwrap_or(key);
            self.err(value.span(), key, format!("key `{name}` applies only to [[targets.cloud]] (on a device the model is called in-app, with no server in between)"));
            return None;
        }
        self.optional_up_to(field, key, (0.0, false), MAX_HANDLING_CPU_US, what)
    }

    fn search(
        &mut self,
        search: Option<&S<RawSearch>>,
        targets: Option<&Targets>,
    ) -> Option<SearchSpace> {
        let mode_table: Vec<(&str, Mode)> = Mode::ALL.iter().map(|m| (m.name(), *m)).collect();
        let placement_table: Vec<(&str, Placement)> =
            Placement::ALL.iter().map(|p| (p.name(), *p)).collect();
        let backend_table: Vec<(&str, BackendKind)> =
            BackendKind::ALL.iter().map(|b| (b.name(), *b)).collect();
        let default_batches = vec![1, 8, 32, 128];
        let Some(search) = search else {
            return Some(SearchSpace {
                modes: Mode::ALL.to_vec(),
                placements: Placement::ALL.to_vec(),
                backends: BackendKind::ALL.to_vec(),
                precisions: Precision::ALL.to_vec(),
                batch_sizes: default_batches,
                max_queue_delay_ms: vec![0.0, 2.0, 10.0],
                min_replicas: 1,
                max_replicas: 64,
                targets: targets.map(all_target_names).unwrap_or_default(),
                measurement_budget_s: 20.0,
                seed: 0,
            });
        };
        let s = search.get_ref();
        let modes = self.choice_list(&s.modes, "search.modes", "mode", &mode_table, "all");
        let placements = self.choice_list(
            &s.placements,
            "search.placements",
            "placement",
            &placement_table,
            "all",
        );
        let backends = self.choice_list(
            &s.backends,
            "search.backends",
            "backend",
            &backend_table,
            "all",
        );
        let precisions = self.choice_list(
            &s.precisions,
            "search.precisions",
            "precision",
            &precision_table(),
            "all",
        );
        let batch_sizes = match &s.batch_sizes {
            Some(list) if list.get_ref().is_empty() => {
                self.refuse_empty(
                    list.span(),
                    "search.batch_sizes",
                    "batch size",
                    &format!("integers in [1, {MAX_BATCH_SIZE}], e.g. [1, 8, 32]"),
                    "the default [1, 8, 32, 128]",
                );
                None
            }
            Some(list) if list.get_ref().len() > MAX_BATCH_SIZES => {
                self.too_long(
                    list.span(),
                    "search.batch_sizes",
                    list.get_ref().len(),
                    MAX_BATCH_SIZES,
                    "batch sizes",
                    "each is measured, and planned with every queue delay and target: the search grows with the count",
                );
                None
            }
            Some(list) => {
                let mut out = Vec::new();
                let mut ok = true;
                for (i, b) in list.get_ref().iter().enumerate() {
                    let k = format!("search.batch_sizes[{i}]");
                    match self.int_in_range(b, &k, (1, MAX_BATCH_SIZE), "batch size") {
                        Some(v) => out.push(v as usize),
                        None => ok = false,
                    }
                }
                out.sort_unstable();
                out.dedup();
                ok.then_some(out)
            }
            None => Some(default_batches),
        };
        let delays = match &s.max_queue_delay_ms {
            Some(list) if list.get_ref().is_empty() => {
                self.refuse_empty(
                    list.span(),
                    "search.max_queue_delay_ms",
                    "queue delay",
                    &format!("milliseconds in [0, {MAX_QUEUE_DELAY_MS}], e.g. [0, 2]"),
                    "the default [0, 2, 10]",
                );
                None
            }
            Some(list) if list.get_ref().len() > MAX_QUEUE_DELAYS => {
                self.too_long(
                    list.span(),
                    "search.max_queue_delay_ms",
                    list.get_ref().len(),
                    MAX_QUEUE_DELAYS,
                    "queue delays",
                    "each is planned with every batch size above 1 and every target: the search grows with the count",
                );
                None
            }
            Some(list) => {
                let mut out = Vec::new();
                let mut ok = true;
                for (i, d) in list.get_ref().iter().enumerate() {
                    match self.up_to(
                        d,
                        &format!("search.max_queue_delay_ms[{i}]"),
                        (0.0, false),
                        MAX_QUEUE_DELAY_MS,
                        "queue delay (ms)",
                    ) {
                        Some(v) => out.push(v),
                        None => ok = false,
                    }
                }
                out.sort_by(f64::total_cmp);
                out.dedup();
                ok.then_some(out)
            }
            None => Some(vec![0.0, 2.0, 10.0]),
        };
        let min_replicas = match &s.min_replicas {
            Some(m) => self.int_in_range(
                m,
                "search.min_replicas",
                (1, MAX_REPLICAS),
                "minimum replicas",
            ),
            None => Some(1),
        };
        let max_replicas = match &s.max_replicas {
            Some(m) => self.int_in_range(
                m,
                "search.max_replicas",
                (1, MAX_REPLICAS),
                "maximum replicas",
            ),
            None => Some(64),
        };
        if let (Some(lo), Some(hi), Some(hs)) = (min_replicas, max_replicas, &s.max_replicas) {
            if hi < lo {
                self.err(
                    hs.span(),
                    "search.max_replicas",
                    format!("value {hi} is not accepted: must be >= min_replicas = {lo}"),
                );
                return None;
            }
        }
        let target_names = match (&s.targets, targets) {
            (Some(list), Some(t)) => {
                let defined = all_target_names(t);
                let accepted: Vec<&str> = defined.iter().map(String::as_str).collect();
                let mut ok = true;
                if list.get_ref().is_empty() {
                    self.refuse_empty(
                        list.span(),
                        "search.targets",
                        "target",
                        &accepted.join(", "),
                        "all targets",
                    );
                    ok = false;
                }
                if list.get_ref().len() > defined.len() {
                    // Some name is listed twice or not defined; said once
                    // for the list rather than for each of many entries.
                    self.err(
                        list.span(),
                        "search.targets",
                        format!(
                            "{} names given: only {} target(s) are defined ({}), and each may be listed once",
                            list.get_ref().len(),
                            defined.len(),
                            quoted(&accepted.join(", "), 200)
                        ),
                    );
                    return None;
                }
                for (i, name) in list.get_ref().iter().enumerate() {
                    if list.get_ref()[..i]
                        .iter()
                        .any(|earlier| earlier.get_ref() == name.get_ref())
                    {
                        self.err(
                            name.span(),
                            &format!("search.targets[{i}]"),
                            format!("`{}` is listed twice", quoted(name.get_ref(), 60)),
                        );
                        ok = false;
                    } else if !defined.contains(name.get_ref()) {
                        self.err(
                            name.span(),
                            &format!("search.targets[{i}]"),
                            not_accepted("target", name.get_ref(), &accepted)
                                .replace("is not accepted", "is not defined in [targets]"),
                        );
                        ok = false;
                    }
                }
                if ok && t.edge_classes == EdgeClasses::Fleet {
                    let classes: Vec<&str> = t.edge.iter().map(|e| e.spec.name.as_str()).collect();
                    let listed = |c: &str| list.get_ref().iter().any(|n| n.get_ref() == c);
                    let named: Vec<&str> = classes.iter().filter(|c| listed(c)).copied().collect();
                    if !named.is_empty() && named.len() < classes.len() {
                        let left: Vec<&str> =
                            classes.iter().filter(|c| !listed(c)).copied().collect();
                        self.err(list.span(), "search.targets", format!("lists {} but not {}: the edge classes are one fleet (targets.edge_classes = \"fleet\"), planned together; list all of them or none", named.join(", "), left.join(", ")));
                        ok = false;
                    }
                }
                ok.then(|| list.get_ref().iter().map(|n| n.get_ref().clone()).collect())
            }
            (None, Some(t)) => Some(all_target_names(t)),
            (_, None) => Some(Vec::new()),
        };
        let budget = match &s.measurement_budget_s {
            Some(b) => self.up_to(
                b,
                "search.measurement_budget_s",
                (0.0, true),
                MAX_MEASUREMENT_BUDGET_S,
                "measurement budget (seconds; a full run uses at most 60)",
            ),
            None => Some(20.0),
        };
        let seed = match &s.seed {
            Some(v) => self.int_at_least(v, "search.seed", 0, "seed"),
            None => Some(0),
        };
        if let (Some(list), Some(modes), Some(places), Some(t)) =
            (&s.modes, &modes, &placements, targets)
        {
            if let Some(why) = no_mode_plannable(modes, places, t) {
                self.err(list.span(), "search.modes", why);
                return None;
            }
        }
        Some(SearchSpace {
            modes: modes?,
            placements: placements?,
            backends: backends?,
            precisions: precisions?,
            batch_sizes: batch_sizes?,
            max_queue_delay_ms: delays?,
            min_replicas: u32::try_from(min_replicas?).unwrap_or(u32::MAX),
            max_replicas: u32::try_from(max_replicas?).unwrap_or(u32::MAX),
            targets: target_names?,
            measurement_budget_s: budget?,
            seed: seed?,
        })
    }

    fn expect(
        &mut self,
        expect: &S<RawExpect>,
        search: Option<&SearchSpace>,
        targets: Option<&Targets>,
    ) -> Option<Expect> {
        let span = expect.span();
        let e = expect.get_ref();
        let mode_table: Vec<(&str, Mode)> = Mode::ALL.iter().map(|m| (m.name(), *m)).collect();
        let placement_table: Vec<(&str, Placement)> =
            Placement::ALL.iter().map(|p| (p.name(), *p)).collect();
        let mode = self
            .required(
                &e.mode,
                &span,
                "expect.mode",
                "batch, online-http, online-stream or hybrid",
            )
            .and_then(|m| self.choice(m, "expect.mode", "mode", &mode_table));
        let placement = self
            .required(
                &e.placement,
                &span,
                "expect.placement",
                "cloud, edge or hybrid",
            )
            .and_then(|p| self.choice(p, "expect.placement", "placement", &placement_table));
        let (mode, placement) = (mode?, placement?);
        let mode_span = e.mode.as_ref().map_or(span.clone(), |m| m.span());
        let placement_span = e.placement.as_ref().map_or(span.clone(), |p| p.span());
        let mut ok = true;
        if let Some(s) = search {
            if !s.modes.contains(&mode) {
                self.err(
                    mode_span.clone(),
                    "expect.mode",
                    format!(
                        "expected mode `{mode}` is not in search.modes ({})",
                        join_names(s.modes.iter().map(|m| m.name()))
                    ),
                );
                ok = false;
            }
            if !s.placements.contains(&placement) {
                self.err(
                    placement_span.clone(),
                    "expect.placement",
                    format!(
                        "expected placement `{placement}` is not in search.placements ({})",
                        join_names(s.placements.iter().map(|p| p.name()))
                    ),
                );
                ok = false;
            }
        }
        if let Some(t) = targets {
            let needs_cloud = matches!(placement, Placement::Cloud | Placement::Hybrid);
            let needs_edge = matches!(placement, Placement::Edge | Placement::Hybrid);
            if needs_cloud && t.cloud.is_empty() {
                self.err(
                    placement_span.clone(),
                    "expect.placement",
                    format!("placement `{placement}` needs at least one [[targets.cloud]]"),
                );
                ok = false;
            }
            if needs_edge && t.edge.is_empty() {
                self.err(
                    placement_span,
                    "expect.placement",
                    format!("placement `{placement}` needs at least one [[targets.edge]]"),
                );
                ok = false;
            }
            if mode == Mode::OnlineStream && t.broker.is_none() {
                self.err(
                    mode_span.clone(),
                    "expect.mode",
                    "mode `online-stream` needs a [targets.broker] table (per_hop_ms, partitions)",
                );
                ok = false;
            }
            if matches!(mode, Mode::Batch | Mode::Hybrid) && t.storage.is_none() {
                self.err(mode_span, "expect.mode", format!("mode `{mode}` stores predictions: it needs a [targets.storage] table (lookup_ms, usd_per_gb_month)"));
                ok = false;
            }
        }
        ok.then_some(Expect { mode, placement })
    }
}

/// Why none of `modes` can be planned on `placements` with these targets,
/// or `None` when one can (the pairs the search plans: online HTTP on the
/// cloud, on devices, or on devices with a cloud fallback; a stream on the
/// cloud through a broker; batch on the cloud into a prediction store, or on
/// devices; hybrid precompute on the cloud into a store). Said before
/// measuring, as for `[expect]`, rather than after a run that rejects every
/// plan for it.
fn no_mode_plannable(
    modes: &[Mode],
    placements: &[Placement],
    targets: &Targets,
) -> Option<String> {
    let cloud = placements.contains(&Placement::Cloud) && !targets.cloud.is_empty();
    let edge = placements.contains(&Placement::Edge) && !targets.edge.is_empty();
    let fallback = placements.contains(&Placement::Hybrid)
        && !targets.cloud.is_empty()
        && !targets.edge.is_empty();
    let on_cloud = |also: Option<(&str, bool)>| -> Option<String> {
        let mut needs = Vec::new();
        if !cloud {
            needs.push("placement `cloud` with a [[targets.cloud]]");
        }
        if let Some((table, present)) = also {
            if !present {
                needs.push(table);
            }
        }
        (!needs.is_empty()).then(|| needs.join(" and "))
    };
    let missing = |mode: Mode| -> Option<String> {
        match mode {
            Mode::OnlineHttp if cloud || edge || fallback => None,
            Mode::OnlineHttp => Some("a placement with its targets".to_string()),
            Mode::OnlineStream => on_cloud(Some((
                "a [targets.broker] table (per_hop_ms, partitions)",
                targets.broker.is_some(),
            ))),
            Mode::Batch if edge => None,
            Mode::Batch | Mode::Hybrid => on_cloud(Some((
                "a [targets.storage] table (lookup_ms, usd_per_gb_month)",
                targets.storage.is_some(),
            ))),
        }
    };
    let needs: Vec<String> = modes
        .iter()
        .map(|&m| missing(m).map(|what| format!("`{m}` needs {what}")))
        .collect::<Option<_>>()?;
    Some(format!(
        "no mode listed can be planned with these targets and placements: {}; add what it needs, or list `online-http`",
        needs.join(", ")
    ))
}

impl RawTarget {
    fn has_overrides(&self) -> bool {
        self.cores.is_some()
            || self.threads_per_core.is_some()
            || self.memory_gb.is_some()
            || self.peak_gflops_f32.is_some()
            || self.peak_gops_int8.is_some()
            || self.mem_bandwidth_gbs.is_some()
            || self.cache_mb.is_some()
            || self.precisions.is_some()
            || self.usd_per_hour.is_some()
            || self.cold_start_ms.is_some()
            || self.power_watts.is_some()
            || self.idle_power_watts.is_some()
            || self.parallel_overhead_us.is_some()
    }
}

fn precision_table() -> Vec<(&'static str, Precision)> {
    Precision::ALL.iter().map(|p| (p.name(), *p)).collect()
}

fn all_target_names(t: &Targets) -> Vec<String> {
    t.cloud
        .iter()
        .chain(&t.edge)
        .map(|t| t.spec.name.clone())
        .collect()
}

/// A number as a person would write it: plain, or in exponent notation when
/// it is huge or tiny (`1e300`, not three hundred digits).
fn number(v: f64) -> String {
    if v == 0.0 || !v.is_finite() || (1e-4..1e15).contains(&v.abs()) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// A sum of the user's decimals as they would write it: 0.3 + 0.6 is 0.9,
/// not 0.8999999999999999 (twelve decimals are far beyond any tolerance here).
fn without_rounding_noise(v: f64) -> f64 {
    (v * 1e12).round() / 1e12
}

fn join_names<'n>(names: impl Iterator<Item = &'n str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}

fn divisors_hint(d: usize) -> String {
    let divisors: Vec<String> = [1, 2, 4, 8, 12, 16]
        .into_iter()
        .filter(|h| d.is_multiple_of(*h))
        .map(|h| h.to_string())
        .collect();
    divisors.join(", ")
}

/// Arrival timestamps (seconds) from a CSV, parsed by the simulator's own
/// parser ([`crate::sim::parse_trace_csv`]): first column, optional header
/// line, `#` comments; non-decreasing, finite, >= 0, at least one.
fn read_trace(path: &Path) -> Result<Vec<f64>, String> {
    let bytes = read_regular_file(path, MAX_TRACE_BYTES).map_err(|e| match e {
        ReadFileError::TooLarge { .. } => {
            format!(
                "trace is larger than the limit of {} MiB",
                MAX_TRACE_BYTES >> 20
            )
        }
        ReadFileError::Io(e) => format!("cannot read trace: {e}"),
        other => format!("trace {other}"),
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        format!(
            "cannot read trace: not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })?;
    // Count before parsing, so that a huge trace is refused before it is
    // held as numbers (without a byte-order mark, as the parser reads it).
    let mut data_lines = text
        .strip_prefix('\u{feff}')
        .unwrap_or(&text)
        .lines()
        .enumerate()
        .map(|(i, l)| (i, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    // The parser skips a first line that is not a timestamp as a header; a
    // number there (`-1`, `inf`) is a bad timestamp, not a header.
    let mut header = false;
    let mut first_line = false;
    if let Some((i, first)) = data_lines.next() {
        first_line = true;
        let field = first.split(',').next().unwrap_or("").trim();
        match field.parse::<f64>() {
            Ok(v) if !(v.is_finite() && v >= 0.0) => {
                return Err(format!(
                    "line {}: timestamp `{}` is not accepted: arrival times are finite seconds >= 0 (a header line is text, not a number)",
                    i + 1,
                    quoted(field, 60)
                ));
            }
            Ok(_) => {}
            Err(_) => header = true,
        }
    }
    // Only a header line is not an arrival.
    let arrivals = data_lines.count() + usize::from(first_line && !header);
    if arrivals > MAX_TRACE_EVENTS {
        return Err(format!(
            "{arrivals} lines of arrivals; the limit is {MAX_TRACE_EVENTS}"
        ));
    }
    crate::sim::parse_trace_csv(&text).map_err(|e| e.to_string())
}

/// What of a checked trace is replayed, and over how long: the replay starts
/// at its first arrival (nothing happens before it: a trace that starts late
/// is not an idle system) and ends with the window, at `duration_s` on the
/// trace's clock (0: none given, the window ends at the last timestamp).
/// Timestamps after the window are dropped (laps replay the window), the
/// rest shifted to start at 0. The window lasts at least a millisecond.
fn replayed_trace(timestamps_s: &[f64], duration_s: f64) -> (Vec<f64>, f64) {
    let first = timestamps_s.first().copied().unwrap_or(0.0);
    let last = timestamps_s.last().copied().unwrap_or(0.0);
    let end = if duration_s > 0.0 { duration_s } else { last };
    let kept = timestamps_s
        .iter()
        .take_while(|&&t| t <= end)
        .map(|&t| t - first)
        .collect();
    (kept, (end - first).max(1e-3))
}

/// Arrivals of `timestamps_s` (sorted) the planner measures when the window
/// ends at `window_end_s`: those in it, less the first
/// [`Traffic::trace_warmup_arrivals`] (simulated, not measured; arrivals at
/// the same instant as the last of those are measured). Returns (in the
/// window, warming up, measured).
fn measured_trace_arrivals(timestamps_s: &[f64], window_end_s: f64) -> (usize, usize, usize) {
    let in_window = timestamps_s.partition_point(|&t| t <= window_end_s);
    let warm = Traffic::trace_warmup_arrivals(in_window);
    let measured = match timestamps_s[..in_window].get(warm) {
        Some(&from) => in_window - timestamps_s.partition_point(|&t| t < from),
        None => 0,
    };
    (in_window, warm, measured)
}

/// Refuse a trace that cannot define a rate or a meaningful simulation: fewer
/// than two distinct timestamps, timestamps beyond the longest window, too few
/// arrivals inside the simulated window after the warm-up, or a rate beyond
/// [`MAX_RATE_PER_S`]. `duration_s` is the scenario's, if it gives one (the
/// window otherwise ends at the last timestamp).
fn check_trace(timestamps_s: Vec<f64>, duration_s: Option<f64>) -> Result<Vec<f64>, String> {
    let n = timestamps_s.len();
    let (first, last) = match (timestamps_s.first(), timestamps_s.last()) {
        (Some(&first), Some(&last)) => (first, last),
        _ => return Err("trace has no timestamps".into()),
    };
    let span = last - first;
    if span <= 0.0 {
        let what = if n == 1 {
            "trace has a single timestamp".to_string()
        } else {
            format!("all {n} timestamps of the trace are {} s", number(first))
        };
        return Err(format!(
            "{what}: a trace needs arrivals spread over time (at least 2 distinct timestamps) to define a rate"
        ));
    }
    if last > MAX_DURATION_S {
        return Err(format!(
            "last timestamp {} s is beyond {MAX_DURATION_S} s (30 days), the longest simulated window; timestamps are seconds from the start of the simulation (shift a trace of epoch times so that it starts near 0)",
            number(last)
        ));
    }
    let rate = n as f64 / span;
    if rate > MAX_RATE_PER_S {
        return Err(format!(
            "{n} arrivals in {} s make {} requests/s; the limit is {} requests/s (are the timestamps in seconds?)",
            number(span),
            number(rate),
            number(MAX_RATE_PER_S)
        ));
    }
    // Explicit durations are bounded by their own check; a bad one is reported there.
    let window = duration_s
        .filter(|d| d.is_finite() && *d > 0.0)
        .unwrap_or(last);
    let (in_window, warm, measured) = measured_trace_arrivals(&timestamps_s, window);
    if measured < MIN_TRACE_ARRIVALS {
        return Err(format!(
            "only {measured} of the trace's {n} arrivals are measured: {in_window} fall in the window (up to {} s), and its first {warm} ({}%) warm the system up unmeasured; at least {MIN_TRACE_ARRIVALS} are needed for meaningful percentiles (a trace too short for the SLO percentile is replayed in laps)",
            number(window),
            WARMUP_FRACTION * 100.0,
        ));
    }
    Ok(timestamps_s)
}
