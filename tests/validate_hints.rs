//! Validation of a fleet's keys (`targets.edge_classes = "fleet"`): a key
//! refused by the schema stage (wrong type, misspelt) is reported once, not
//! again as missing; a fleet key in the wrong table says where it belongs.

use std::path::Path;
use std::process::Command;

use workbench::scenario::{self, ScenarioError};

fn shipped_text(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"));
    std::fs::read_to_string(path).expect("shipped scenario")
}

/// face-unlock (a fleet of two phone classes) with `edits` applied in order.
fn face_unlock_with(edits: &[(&str, &str)]) -> String {
    let mut text = shipped_text("face-unlock");
    for (anchor, replacement) in edits {
        assert!(text.contains(anchor), "`{anchor}` not in face-unlock");
        text = text.replacen(anchor, replacement, 1);
    }
    text
}

fn errors(text: &str) -> Vec<ScenarioError> {
    match scenario::parse_str(text, Path::new("fleet.toml")) {
        Ok(_) => panic!("scenario unexpectedly valid:\n{text}"),
        Err(e) => e.errors,
    }
}

fn listing(errors: &[ScenarioError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

const SHARES: [(&str, &str); 2] = [
    (
        "fleet_size = 4_000_000",
        "fleet_size = 4_000_000\ntraffic_share = 0.4",
    ),
    (
        "fleet_size = 6_000_000",
        "fleet_size = 6_000_000\ntraffic_share = 0.6",
    ),
];

#[test]
fn the_shares_as_edited_are_valid() {
    scenario::parse_str(&face_unlock_with(&SHARES), Path::new("fleet.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_share_given_as_a_string_is_one_type_error() {
    let text = face_unlock_with(&[
        SHARES[0],
        SHARES[1],
        ("traffic_share = 0.4", "traffic_share = \"0.4\""),
    ]);
    let errors = errors(&text);
    assert_eq!(errors.len(), 1, "{}", listing(&errors));
    assert_eq!(errors[0].key, "targets.edge[0].traffic_share");
    assert!(
        errors[0].message.contains("invalid type: string \"0.4\""),
        "{}",
        errors[0]
    );
}

#[test]
fn a_misspelt_share_is_one_unknown_key_error() {
    let text = face_unlock_with(&[
        SHARES[0],
        SHARES[1],
        ("traffic_share = 0.4", "traffic_shares = 0.4"),
    ]);
    let errors = errors(&text);
    assert_eq!(errors.len(), 1, "{}", listing(&errors));
    assert!(
        errors[0].message.contains("did you mean `traffic_share`?"),
        "{}",
        errors[0]
    );
}

#[test]
fn a_fleet_size_given_as_a_string_is_one_type_error() {
    let text = face_unlock_with(&[("fleet_size = 4_000_000", "fleet_size = \"4000000\"")]);
    let errors = errors(&text);
    assert_eq!(errors.len(), 1, "{}", listing(&errors));
    assert_eq!(errors[0].key, "targets.edge[0].fleet_size");
    assert!(errors[0].message.contains("invalid type"), "{}", errors[0]);
}

/// The shares still have to add up when none was refused.
#[test]
fn shares_that_do_not_add_up_are_still_reported() {
    let text = face_unlock_with(&[
        SHARES[0],
        SHARES[1],
        ("traffic_share = 0.4", "traffic_share = 0.1"),
    ]);
    let errors = errors(&text);
    assert_eq!(errors.len(), 1, "{}", listing(&errors));
    assert!(errors[0].message.contains("add up to 0.7"), "{}", errors[0]);
}

/// A share out of range is reported as such, not also as a sum that is not 1.
#[test]
fn a_share_out_of_range_is_one_error() {
    let text = face_unlock_with(&[
        SHARES[0],
        SHARES[1],
        ("traffic_share = 0.4", "traffic_share = 1.5"),
    ]);
    let errors = errors(&text);
    assert_eq!(errors.len(), 1, "{}", listing(&errors));
    assert!(
        errors[0].message.contains("must be in (0, 1]"),
        "{}",
        errors[0]
    );
}

/// `edge_classes` written after the first [[targets.edge]] header lands in
/// that table: the error says it belongs under [targets].
const MISPLACED: (&str, &str) = (
    "edge_classes = \"fleet\"\n[[targets.edge]]\n",
    "[[targets.edge]]\nedge_classes = \"fleet\"\n",
);

#[test]
fn edge_classes_in_an_edge_table_says_it_belongs_under_targets() {
    let errors = errors(&face_unlock_with(&[MISPLACED]));
    assert_eq!(errors.len(), 1, "{}", listing(&errors));
    let e = &errors[0];
    assert_eq!(e.key, "targets.edge[0].edge_classes");
    assert!(e.message.contains("belongs under [targets]"), "{e}");
    assert!(!e.message.contains("accepted keys"), "{e}");
}

/// With shares stated, the misplaced `edge_classes` is still the only error
/// (not also "traffic_share applies only to a fleet" for every class).
#[test]
fn misplaced_edge_classes_with_shares_is_one_error() {
    let errors = errors(&face_unlock_with(&[MISPLACED, SHARES[0], SHARES[1]]));
    assert_eq!(errors.len(), 1, "{}", listing(&errors));
    assert!(errors[0].message.contains("belongs under [targets]"));
}

#[test]
fn fleet_size_under_targets_says_it_belongs_in_each_edge_table() {
    let text = face_unlock_with(&[(
        "edge_classes = \"fleet\"\n",
        "edge_classes = \"fleet\"\nfleet_size = 10\n",
    )]);
    let errors = errors(&text);
    let e = errors
        .iter()
        .find(|e| e.key == "targets.fleet_size")
        .unwrap_or_else(|| panic!("{}", listing(&errors)));
    assert!(
        e.message.contains("belongs in each [[targets.edge]]"),
        "{e}"
    );
}

/// Through the real CLI: `workbench validate` prints the one true error.
#[test]
fn validate_prints_only_the_true_errors() {
    let dir = std::env::temp_dir().join(format!("wb-validate-hints-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("fleet.toml");
    let text = face_unlock_with(&[
        SHARES[0],
        SHARES[1],
        ("traffic_share = 0.4", "traffic_share = \"0.4\""),
    ]);
    std::fs::write(&file, text).expect("write scenario");
    let out = Command::new(env!("CARGO_BIN_EXE_workbench"))
        .arg("validate")
        .arg(&file)
        .output()
        .expect("run workbench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("invalid type: string \"0.4\""), "{stderr}");
    assert!(!stderr.contains("stated for some classes"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Shares that do not add up to 1 are quoted as the user would sum them:
/// 0.3 + 0.6 is "0.9", not the float sum 0.8999999999999999.
#[test]
fn shares_off_one_are_summed_without_rounding_noise() {
    let text = face_unlock_with(&[
        (
            "fleet_size = 4_000_000",
            "fleet_size = 4_000_000\ntraffic_share = 0.3",
        ),
        SHARES[1],
    ]);
    let errors = errors(&text);
    assert_eq!(errors.len(), 1, "{}", listing(&errors));
    assert!(
        errors[0]
            .message
            .contains("the fleet's traffic shares add up to 0.9: they must add up to 1"),
        "{}",
        errors[0]
    );
}

fn hotel_ranking_with(edits: &[(&str, &str)]) -> String {
    let mut text = shipped_text("hotel-ranking");
    for (anchor, replacement) in edits {
        assert!(text.contains(anchor), "`{anchor}` not in hotel-ranking");
        text = text.replacen(anchor, replacement, 1);
    }
    text
}

/// "Did you mean" ignores case first: `Relu` is `relu`, not `gelu`; a key
/// in the wrong case is reported once, not again as missing.
#[test]
fn suggestions_ignore_case() {
    let errs = errors(&hotel_ranking_with(&[
        ("activation = \"relu\"", "activation = \"Relu\""),
        ("family = \"mlp\"", "family = \"MLP\""),
        ("rate_per_s = 3000", "Rate_Per_S = 3000"),
    ]));
    let all = listing(&errs);
    assert_eq!(errs.len(), 3, "{all}");
    assert!(
        all.contains("activation `Relu` is not accepted; did you mean `relu`?"),
        "{all}"
    );
    assert!(
        all.contains("model family `MLP` is not accepted; did you mean `mlp`?"),
        "{all}"
    );
    assert!(
        all.contains("unknown key `Rate_Per_S`; did you mean `rate_per_s`?"),
        "{all}"
    );
    assert!(!all.contains("missing required key"), "{all}");
}

/// A key written under the wrong header says which section it belongs in.
#[test]
fn a_key_in_the_wrong_section_names_its_section() {
    let errs = errors(&hotel_ranking_with(&[
        (
            "cost_weight = 0.8",
            "cost_weight = 0.8\ndata_may_leave_device = false",
        ),
        ("duration_s = 60", "duration_s = 60\nseed = 3"),
        (
            "name = \"hotel-ranking\"",
            "name = \"hotel-ranking\"\nrate_per_s = 3",
        ),
    ]));
    let all = listing(&errs);
    assert_eq!(errs.len(), 3, "{all}");
    for (key, fragment) in [
        (
            "objectives.data_may_leave_device",
            "unknown key `data_may_leave_device` in [objectives]: it belongs in [constraints]",
        ),
        (
            "traffic.seed",
            "unknown key `seed` in [traffic]: it belongs in [search]",
        ),
        (
            "rate_per_s",
            "unknown key `rate_per_s` at the top level: it belongs in [traffic]",
        ),
    ] {
        assert!(
            errs.iter()
                .any(|e| e.key == key && e.message.contains(fragment)),
            "{key}: {all}"
        );
    }
}
