//! docs/scenarios.md stays true: its full example validates, and every key
//! the schema accepts is documented.

use std::path::{Path, PathBuf};

mod common;

use workbench::scenario;

fn docs() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/scenarios.md");
    std::fs::read_to_string(path).expect("docs/scenarios.md exists")
}

fn full_example(docs: &str) -> String {
    let section = docs
        .split("## Full example")
        .nth(1)
        .expect("docs have a Full example section");
    let start = section.find("```toml\n").expect("a toml code block") + "```toml\n".len();
    let end = section[start..].find("```").expect("closed code block") + start;
    section[start..end].to_string()
}

#[test]
fn the_full_example_validates() {
    let example = full_example(&docs());
    let s = scenario::parse_str(&example, Path::new("docs/example.toml"))
        .unwrap_or_else(|e| panic!("the documented example is invalid:\n{e}"));
    assert_eq!(s.model.variants.len(), 2);
    assert!(s.targets.broker.is_some() && s.targets.storage.is_some());
    assert!(s.expect.is_some());
}

/// The example's `[expect]` is what the planner chooses for it (planned on
/// synthetic, roofline-shaped profiles): a reader who runs it with `--check`
/// must not see it fail.
#[test]
fn the_full_example_gets_the_plan_it_expects() {
    let example = full_example(&docs());
    let s = scenario::parse_str(&example, Path::new("docs/example.toml")).unwrap();
    let expect = s.expect.unwrap();
    let out = common::plan_quickly(&s, 1.0);
    let best = out.recommended().expect("a feasible plan");
    assert_eq!(
        (best.plan.mode, best.plan.placement),
        (expect.mode, expect.placement),
        "{}",
        best.plan.id
    );
}

/// Insert an unknown key into each table of the example; the error lists the
/// keys that table accepts, and each must appear in the docs as `key`.
#[test]
fn every_accepted_key_is_documented() {
    let docs = docs();
    let example = full_example(&docs);
    let headers: Vec<usize> = example
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with('['))
        .map(|(i, _)| i)
        .collect();
    let mut probes = vec![0usize]; // top level: before the first table
    probes.extend(headers.iter().map(|i| i + 1));
    let mut checked = 0;
    for at in probes {
        let mut lines: Vec<&str> = example.lines().collect();
        lines.insert(at, "zzz_not_a_key = 1");
        let text = lines.join("\n");
        let err = scenario::parse_str(&text, Path::new("probe.toml"))
            .expect_err("unknown key is an error");
        let message = err.to_string();
        let accepted = message
            .split("(accepted keys: ")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .unwrap_or_else(|| panic!("no accepted-keys list in: {message}"));
        for key in accepted.split(", ") {
            assert!(
                docs.contains(&format!("`{key}`"))
                    || docs.contains(&format!("`[{key}]`"))
                    || docs.contains(&format!(".{key}]]`"))
                    || docs.contains(&format!(".{key}]`")),
                "key `{key}` (from: {message}) is not documented in docs/scenarios.md"
            );
            checked += 1;
        }
    }
    assert!(checked > 60, "only {checked} keys checked");
}
