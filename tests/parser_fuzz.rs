//! Property tests: random bytes and random mutations of the shipped scenarios
//! never panic the parser or validator, and every error carries a position
//! inside the file.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use workbench::scenario;
use workbench::scenario::limits::*;

fn shipped() -> Vec<(PathBuf, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    scenario::scenarios_in_dir(&dir)
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("shipped scenario is readable");
            (p, text)
        })
        .collect()
}

/// Parse and check the result is coherent: success, or errors that point
/// inside the text.
fn check(text: &str, path: &Path) {
    match scenario::parse_str(text, path) {
        Ok(s) => {
            assert!(!s.model.variants.is_empty());
            within_limits(&s);
            let _ = s.summary();
            let _ = s.one_line();
        }
        Err(e) => {
            assert!(!e.errors.is_empty());
            let lines = text.split('\n').count();
            for err in &e.errors {
                assert!(err.line >= 1 && err.col >= 1, "{err}");
                assert!(err.line <= lines.max(1), "{err} beyond {lines} lines");
            }
        }
    }
}

/// What validation lets through is bounded: no absurd number and no empty
/// choice list reaches the planner, whatever the mutation.
fn within_limits(s: &scenario::Scenario) {
    let rate = s.traffic.rate_per_s;
    assert!(rate > 0.0 && rate <= MAX_RATE_PER_S, "rate {rate}");
    let peak = s.traffic.peak_rate_per_s();
    assert!(peak.is_finite() && peak <= MAX_RATE_PER_S, "peak {peak}");
    let duration = s.traffic.duration_s;
    assert!(
        duration > 0.0 && duration <= MAX_DURATION_S,
        "duration {duration}"
    );
    assert!(s.inputs.request_bytes <= MAX_PAYLOAD_BYTES);
    assert!(s.inputs.response_bytes <= MAX_PAYLOAD_BYTES);
    assert!(s.objectives.latency_ms <= MAX_LATENCY_SLO_MS);
    for t in s.targets.cloud.iter().chain(&s.targets.edge) {
        assert!(u64::from(t.spec.cores) <= MAX_CORES, "{t:?}");
        assert!(t.fleet_size.unwrap_or(1) <= MAX_FLEET_SIZE, "{t:?}");
        assert!(t.speed_factor.unwrap_or(1.0) <= MAX_SPEED_FACTOR, "{t:?}");
        assert!(!t.spec.precisions.is_empty(), "{t:?}");
        for cpu in [t.request_cpu_us, t.message_cpu_us].into_iter().flatten() {
            assert!((0.0..=MAX_HANDLING_CPU_US).contains(&cpu), "{t:?}");
        }
    }
    for l in &s.targets.links {
        let rto = l.min_rto_ms.unwrap_or(1.0);
        assert!(rto > 0.0 && rto <= MAX_NETWORK_MS, "{l:?}");
    }
    if let Some(b) = &s.targets.broker {
        assert!(u64::from(b.partitions) <= MAX_PARTITIONS && u64::from(b.hops) <= MAX_HOPS);
        let mb = b.partition_mb_per_s.unwrap_or(1.0);
        let messages = b.partition_messages_per_s.unwrap_or(1.0);
        assert!(mb > 0.0 && mb <= MAX_PARTITION_MB_PER_S, "{b:?}");
        assert!(messages > 0.0 && messages <= MAX_RATE_PER_S, "{b:?}");
    }
    let search = &s.search;
    let budget = search.measurement_budget_s;
    assert!(
        budget > 0.0 && budget <= MAX_MEASUREMENT_BUDGET_S,
        "budget {budget}"
    );
    assert!(u64::from(search.max_replicas) <= MAX_REPLICAS);
    assert!(search.min_replicas <= search.max_replicas);
    assert!(!search.modes.is_empty() && !search.placements.is_empty());
    assert!(!search.backends.is_empty() && !search.precisions.is_empty());
    assert!(!search.batch_sizes.is_empty() && !search.targets.is_empty());
    assert!(!search.max_queue_delay_ms.is_empty());
    assert!(search
        .max_queue_delay_ms
        .iter()
        .all(|d| (0.0..=MAX_QUEUE_DELAY_MS).contains(d)));
}

#[derive(Debug, Clone)]
enum Mutation {
    DeleteRange(usize, usize),
    Insert(usize, String),
    ReplaceNumber(usize, String),
    DuplicateLine(usize),
    DropLine(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Mutation::DeleteRange(at, len)),
        (any::<usize>(), "[ -~\\n\\[\\]{}=\",.0-9a-z_]{1,12}")
            .prop_map(|(at, s)| Mutation::Insert(at, s)),
        (
            any::<usize>(),
            prop_oneof![
                Just("0".to_string()),
                Just("-1".to_string()),
                Just("1e308".to_string()),
                Just("nan".to_string()),
                Just("inf".to_string()),
                Just("9223372036854775807".to_string()),
                Just("1e300".to_string()),
                Just("1_000_000_000_000".to_string()),
                Just("\"x\"".to_string()),
                Just("[]".to_string()),
                Just("{}".to_string()),
                (0i64..2_000_000_000).prop_map(|n| n.to_string()),
            ]
        )
            .prop_map(|(at, s)| Mutation::ReplaceNumber(at, s)),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        any::<usize>().prop_map(Mutation::DropLine),
    ]
}

fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut t = text.to_string();
    match m {
        Mutation::DeleteRange(at, len) => {
            let start = floor_char_boundary(&t, *at);
            let end = floor_char_boundary(&t, (start + len).min(t.len()));
            if end > start {
                t.replace_range(start..end, "");
            }
        }
        Mutation::Insert(at, s) => {
            let at = floor_char_boundary(&t, *at);
            t.insert_str(at, s);
        }
        Mutation::ReplaceNumber(at, s) => {
            // Replace the value of the n-th `key = value` line.
            let mut lines: Vec<String> = t.lines().map(str::to_string).collect();
            let candidates: Vec<usize> = (0..lines.len())
                .filter(|&i| lines[i].contains(" = ") && !lines[i].trim_start().starts_with('#'))
                .collect();
            if !candidates.is_empty() {
                let i = candidates[at % candidates.len()];
                let key = lines[i].split(" = ").next().unwrap_or("").to_string();
                lines[i] = format!("{key} = {s}");
            }
            t = lines.join("\n");
        }
        Mutation::DuplicateLine(at) => {
            let mut lines: Vec<&str> = t.lines().collect();
            if !lines.is_empty() {
                let i = at % lines.len();
                lines.insert(i, lines[i]);
            }
            t = lines.join("\n");
        }
        Mutation::DropLine(at) => {
            let mut lines: Vec<&str> = t.lines().collect();
            if !lines.is_empty() {
                lines.remove(at % lines.len());
            }
            t = lines.join("\n");
        }
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        check(&text, Path::new("random.toml"));
    }

    #[test]
    fn random_toml_like_text_never_panics(text in "[\\[\\]a-z_.=\"0-9 \\n{},#-]{0,300}") {
        check(&text, Path::new("random.toml"));
    }

    #[test]
    fn mutated_shipped_scenarios_never_panic(
        which in any::<usize>(),
        mutations in proptest::collection::vec(mutation(), 1..5),
    ) {
        let scenarios = shipped();
        let (path, text) = &scenarios[which % scenarios.len()];
        let mut mutated = text.clone();
        for m in &mutations {
            mutated = apply(&mutated, m);
        }
        check(&mutated, path);
    }
}

#[test]
fn random_binary_files_are_refused_by_load() {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let mut state = 0x2545_f491_u64;
    for i in 0..32 {
        let bytes: Vec<u8> = (0..64 + i * 7)
            .map(|_| {
                // xorshift: deterministic bytes, mostly invalid UTF-8
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        let path = dir.join(format!("bin{i}.toml"));
        std::fs::write(&path, &bytes).expect("write");
        let err = scenario::load(&path).expect_err("random bytes are not a scenario");
        assert!(!err.errors.is_empty());
    }
}

/// Every number of every shipped scenario, replaced in turn by absurd values:
/// each file is refused or stays within the limits (exhaustive, not sampled).
#[test]
fn absurd_values_in_any_numeric_key_are_refused_or_bounded() {
    for (path, text) in shipped() {
        let numeric: Vec<usize> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| {
                let value = l.split(" = ").nth(1).unwrap_or("").trim_start();
                !l.trim_start().starts_with('#') && value.starts_with(|c: char| c.is_ascii_digit())
            })
            .map(|(i, _)| i)
            .collect();
        assert!(numeric.len() > 10, "{}", path.display());
        for &i in &numeric {
            for absurd in ["1e300", "1_000_000_000_000", "9223372036854775807"] {
                let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
                let key = lines[i].split(" = ").next().unwrap_or("").to_string();
                lines[i] = format!("{key} = {absurd}");
                check(&lines.join("\n"), &path);
            }
        }
    }
}
