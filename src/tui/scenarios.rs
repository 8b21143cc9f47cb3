//! Scenario files as the Scenarios view lists them, read with the real
//! scenario parser: a file with errors becomes an entry with its errors.

use std::path::{Path, PathBuf};

use super::pipeline::{ScenarioEntry, WhatIfLimits};
use crate::scenario::{discover, load};

/// Where the TUI looks when no paths are given.
pub const DEFAULT_SCENARIO_DIR: &str = "scenarios";

/// Loads every scenario under `paths` (files, or directories of `*.toml`;
/// empty = `scenarios/`). Never fails: unreadable or invalid files are listed
/// with their errors.
pub fn scenario_entries(paths: &[PathBuf]) -> Vec<ScenarioEntry> {
    let files = if paths.is_empty() {
        // Not a file that cannot be read: no scenarios (`missing_default_dir` says why).
        if missing_default_dir(paths) {
            return Vec::new();
        }
        discover(&[Path::new(DEFAULT_SCENARIO_DIR)])
    } else {
        discover(paths)
    };
    files.iter().map(|path| scenario_entry(path)).collect()
}

/// No paths were given and there is no `scenarios/` directory here.
pub fn missing_default_dir(paths: &[PathBuf]) -> bool {
    paths.is_empty() && !Path::new(DEFAULT_SCENARIO_DIR).is_dir()
}

/// What the TUI's status line says when it finds no `scenarios/` directory
/// (short enough for 80 columns; the Scenarios view says more).
pub const NO_SCENARIO_DIR: &str =
    "no scenarios/ directory here: run workbench from the repository root";

/// One file as a list entry.
pub fn scenario_entry(path: &Path) -> ScenarioEntry {
    match load(path) {
        Ok(scenario) => ScenarioEntry {
            path: path.to_path_buf(),
            name: scenario.name.clone(),
            summary: scenario.summary().lines().map(str::to_string).collect(),
            errors: Vec::new(),
            problems: 0,
            offline_fraction: scenario.constraints.offline_fraction,
            has_budget: scenario.objectives.monthly_budget_usd.is_some(),
            has_edge: !scenario.targets.edge.is_empty(),
            what_if_limits: WhatIfLimits::for_scenario(&scenario),
        },
        Err(errors) => ScenarioEntry {
            path: path.to_path_buf(),
            name: path.file_stem().map_or_else(
                || path.display().to_string(),
                |stem| stem.to_string_lossy().into_owned(),
            ),
            summary: Vec::new(),
            errors: errors.errors.iter().map(|e| e.to_string()).collect(),
            problems: errors.problems,
            offline_fraction: 0.0,
            has_budget: false,
            has_edge: false,
            what_if_limits: WhatIfLimits::default(),
        },
    }
}
