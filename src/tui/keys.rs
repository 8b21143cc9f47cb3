//! Key bindings: a key press becomes an [`Action`] depending on the view.
//! The same table feeds the help overlay and the status line, so they cannot drift.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::app::{Action, App, View, WhatIfKnob};
use super::ui::help_last_start;

/// Maps a key press to an action, or `None` when the key means nothing here.
pub fn action_for_key(app: &App, key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    if app.show_help {
        // The overlay swallows keys; only closing it, and quitting, get through.
        return match key.code {
            KeyCode::Esc | KeyCode::Char('?') => Some(Action::ToggleHelp),
            KeyCode::Char('q') => Some(Action::Quit),
            // A small terminal shows the help in part: scroll it.
            KeyCode::Up | KeyCode::Char('k') => Some(Action::Up),
            KeyCode::Down | KeyCode::Char('j') => Some(Action::Down),
            _ => None,
        };
    }
    let global = match key.code {
        KeyCode::Char('q') => Some(Action::Quit),
        KeyCode::Char('?') => Some(Action::ToggleHelp),
        KeyCode::Esc => Some(Action::Cancel),
        KeyCode::Tab | KeyCode::Right => Some(Action::NextView),
        KeyCode::BackTab | KeyCode::Left => Some(Action::PrevView),
        KeyCode::Char(c @ '1'..='5') => {
            let index = c as usize - '1' as usize;
            View::ALL.get(index).copied().map(Action::ShowView)
        }
        KeyCode::Up | KeyCode::Char('k') => Some(Action::Up),
        KeyCode::Down | KeyCode::Char('j') => Some(Action::Down),
        KeyCode::Char('m') => Some(Action::Run),
        _ => None,
    };
    if global.is_some() {
        return global;
    }
    match app.view {
        View::Scenarios => match key.code {
            KeyCode::Enter => Some(Action::Run),
            // The what-if `r` (RTT) belongs to the Plan and Simulation views.
            KeyCode::Char('r') => Some(Action::Reload),
            _ => None,
        },
        View::Export => match key.code {
            KeyCode::Enter | KeyCode::Char('e') => Some(Action::Export),
            _ => None,
        },
        View::Plan | View::Simulation => match key.code {
            KeyCode::Char('s') if app.view == View::Plan => Some(Action::CycleSort),
            KeyCode::Char('v') if app.view == View::Plan => Some(Action::TogglePlanChart),
            KeyCode::Char('w') if app.view == View::Plan => Some(Action::TogglePlanDetails),
            KeyCode::Char('e') => Some(Action::Export),
            KeyCode::Char('0') => Some(Action::ResetWhatIf),
            KeyCode::Char(c) => what_if_key(c).map(|(knob, up)| Action::Nudge { knob, up }),
            _ => None,
        },
        View::Kernels => match key.code {
            KeyCode::Enter | KeyCode::Char('p') => Some(Action::ToggleProgram),
            KeyCode::PageUp if app.program_shown() => Some(Action::PageUp),
            KeyCode::PageDown if app.program_shown() => Some(Action::PageDown),
            _ => None,
        },
    }
}

/// What-if keys: lower case raises, upper case lowers.
fn what_if_key(c: char) -> Option<(WhatIfKnob, bool)> {
    let knob = match c.to_ascii_lowercase() {
        't' => WhatIfKnob::Traffic,
        'r' => WhatIfKnob::Rtt,
        'l' => WhatIfKnob::Slo,
        'b' => WhatIfKnob::Budget,
        'p' => WhatIfKnob::Price,
        'o' => WhatIfKnob::Offline,
        _ => return None,
    };
    Some((knob, c.is_ascii_lowercase()))
}

/// Bindings shown in the status line for the current state (short form).
pub fn status_hints(app: &App) -> Vec<(&'static str, &'static str)> {
    if app.show_help {
        let fits = app
            .terminal_rows
            .is_some_and(|rows| help_last_start(rows) == 0);
        if fits {
            return vec![("Esc/?", "close help"), ("q", "quit")];
        }
        return vec![("Esc/?", "close help"), ("↑↓", "scroll"), ("q", "quit")];
    }
    let mut hints = Vec::new();
    if app.program_shown() {
        // Esc closes the program first (a running job's Esc is the next one).
        hints.push(("↑↓/PgUp/PgDn", "scroll"));
        hints.push(("Enter/p/Esc", "close program"));
        hints.push(("Tab/1-5", "view"));
        hints.push(("?", "help"));
        hints.push(("q", "quit"));
        return hints;
    }
    if app.busy() {
        hints.push(("Esc", "cancel"));
    }
    match app.view {
        View::Scenarios => {
            hints.push(("↑↓", "select"));
            hints.push(("Enter", "run"));
            hints.push(("r", "reload"));
        }
        View::Kernels => {
            hints.push(("↑↓", "row"));
            if app.measurements.is_some() {
                hints.push(("Enter/p", "program"));
            }
            // Timings cached by an earlier run are reused: nothing is re-timed.
            hints.push(("m", "run again (cached timings)"));
        }
        // Short labels, so that every Plan key shows at 80 columns (the help
        // spells them out: lower case raises, upper case lowers).
        View::Simulation => {
            hints.push(("trlbpo/TRLBPO", "what-if"));
            hints.push(("0", "reset"));
            hints.push(("e", "export"));
        }
        View::Plan => {
            hints.push(("trlbpo/TRLBPO", "what-if"));
            hints.push(("0", "reset"));
            hints.push(("↑↓", "row"));
            hints.push(("s", "sort"));
            hints.push(("v", "chart"));
            hints.push(("w", "why"));
            hints.push(("e", "export"));
        }
        View::Export => {
            hints.push(("e", "export"));
        }
    }
    hints.push(("Tab/1-5", "view"));
    hints.push(("?", "help"));
    hints.push(("q", "quit"));
    hints
}

/// Every binding, grouped, for the help overlay.
/// Lines the help overlay holds: a heading per group and a line per binding.
pub fn help_line_count() -> usize {
    HELP.iter().map(|(_, bindings)| 1 + bindings.len()).sum()
}

pub const HELP: &[(&str, &[(&str, &str)])] = &[
    (
        "Everywhere",
        &[
            ("Tab / Shift-Tab, ←/→, 1-5", "switch view"),
            ("↑/↓, j/k", "move the cursor"),
            ("m", "measure + plan (cached timings reused)"),
            ("Esc", "cancel the running job / close help"),
            ("?", "this help"),
            ("q, Ctrl-C", "quit"),
        ],
    ),
    (
        "Scenarios",
        &[
            ("Enter", "measure + plan the selected scenario"),
            ("r", "reload the list (new and edited files)"),
        ],
    ),
    (
        "Kernels",
        &[
            ("Enter, p", "the selected build's compiled program"),
            ("↑/↓, j/k, PgUp/PgDn", "move through the program while open"),
            ("Enter, p, Esc", "close it (the roofline again)"),
        ],
    ),
    (
        "Plan / Simulation: what-if (re-plans from cached measurements)",
        &[
            ("t / T", "traffic x1.25 / ÷1.25 (lower case raises)"),
            ("r / R", "network RTT x1.25 / ÷1.25"),
            ("l / L", "latency SLO x1.25 / ÷1.25"),
            ("b / B", "budget x1.25 / ÷1.25"),
            ("p / P", "instance price x1.25 / ÷1.25"),
            ("o / O", "edge offline fraction +10% / -10%"),
            ("0", "reset the what-if"),
            ("s", "sort the candidates (Plan)"),
            ("v", "chart / table when small (Plan)"),
            ("w", "the whole rationale / back (Plan)"),
            ("e", "export"),
        ],
    ),
    (
        "Export",
        &[("e, Enter", "write report.md, CSV and plan.json")],
    ),
];
