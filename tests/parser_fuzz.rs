//! Property tests: random bytes and random mutations of the shipped scenarios
//! never panic the parser or validator, and every error carries a position
//! inside the file.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use workbench::scenario;

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
