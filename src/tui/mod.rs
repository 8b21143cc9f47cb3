//! The interactive terminal UI (ratatui + crossterm).
//!
//! Architecture (DESIGN.md habit 3): [`ui::render`] draws from `&App` and
//! never mutates; input becomes an [`Action`]; [`update`] is the only place
//! state changes and returns a [`Job`] when heavy work is needed; the
//! [`Worker`] thread runs jobs against a [`Pipeline`] and reports over a
//! channel; the latest job wins. [`run_loop`] is generic over the ratatui
//! `Backend` and an [`EventSource`], so tests drive it with `TestBackend`.
//! [`run_tui`] owns the real terminal and restores it on quit, error and panic.

pub mod app;
pub mod fake;
pub mod keys;
pub mod model;
pub mod pipeline;
pub mod real;
pub mod scenarios;
pub mod ui;
pub mod worker;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::Backend;
use ratatui::Terminal;

pub use app::{update, Action, App, View, WhatIfKnob};
pub use fake::FakePipeline;
pub use model::{CandidateRow, CdfSeries, PlanView, SortKey};
pub use pipeline::{
    KernelRow, Measurements, Pipeline, Progress, ScenarioEntry, WhatIf, WhatIfLimits,
};
pub use real::RealPipeline;
pub use scenarios::{scenario_entries, scenario_entry};
pub use worker::{Job, JobKind, Worker, WorkerEvent, WorkerGone};

/// Why the TUI stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    #[error("terminal error: {0}")]
    Terminal(String),
    #[error("terminal I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Worker(#[from] WorkerGone),
}

/// Where the loop gets terminal events from: the real terminal, or a script in tests.
pub trait EventSource {
    /// The next event, waiting at most `timeout`; `None` when nothing happened.
    fn next_event(&mut self, app: &App, timeout: Duration) -> Result<Option<Event>, TuiError>;

    /// A signal asked the program to stop (checked every tick): the loop
    /// quits as on `q`, so the terminal is restored.
    fn stop_signal(&self) -> Option<i32> {
        None
    }
}

/// Events from the real terminal, and the stop signals registered for it.
#[derive(Debug, Default)]
pub struct CrosstermEvents {
    pub signals: Option<StopSignals>,
}

impl EventSource for CrosstermEvents {
    fn next_event(&mut self, _app: &App, timeout: Duration) -> Result<Option<Event>, TuiError> {
        if crossterm::event::poll(timeout)? {
            Ok(Some(crossterm::event::read()?))
        } else {
            Ok(None)
        }
    }

    fn stop_signal(&self) -> Option<i32> {
        self.signals.as_ref().and_then(StopSignals::received)
    }
}

/// The signals that stop the TUI the way `q` does: SIGTERM (`kill`), SIGHUP
/// (the terminal closed) and SIGINT (sent by `kill`: in raw mode Ctrl-C is a
/// key, not a signal). Left to their default action they would kill the
/// process with the terminal still raw, on the alternate screen, cursor hidden.
pub const STOP_SIGNALS: [i32; 3] = [
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGHUP,
    signal_hook::consts::SIGINT,
];

/// Stop signals caught while they are registered: the handler only records
/// the signal; the event loop sees it on its next tick (at most 250 ms).
#[derive(Debug, Clone)]
pub struct StopSignals {
    received: Arc<AtomicUsize>,
    ids: Vec<signal_hook::SigId>,
}

impl StopSignals {
    /// Catches [`STOP_SIGNALS`] until [`StopSignals::unregister`].
    pub fn register() -> Result<StopSignals, std::io::Error> {
        let received = Arc::new(AtomicUsize::new(0));
        let mut signals = StopSignals {
            received,
            ids: Vec::new(),
        };
        for signal in STOP_SIGNALS {
            let value = usize::try_from(signal).unwrap_or(0);
            match signal_hook::flag::register_usize(signal, Arc::clone(&signals.received), value) {
                Ok(id) => signals.ids.push(id),
                Err(e) => {
                    signals.unregister();
                    return Err(e);
                }
            }
        }
        Ok(signals)
    }

    /// The last stop signal received, if any.
    pub fn received(&self) -> Option<i32> {
        match self.received.load(Ordering::Relaxed) {
            0 => None,
            signal => i32::try_from(signal).ok(),
        }
    }

    /// Stops catching the signals (signal-hook then ignores them; the
    /// program is about to exit).
    pub fn unregister(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

/// The signal that stopped the last [`run_tui`], for the exit status.
static STOPPED_BY_SIGNAL: AtomicUsize = AtomicUsize::new(0);

/// The signal that stopped the TUI, if one did: the program then exits with
/// the conventional status 128 + signal (143 for SIGTERM), as a shell expects
/// of a program a signal ended, after the terminal has been restored.
pub fn stopped_by_signal() -> Option<i32> {
    match STOPPED_BY_SIGNAL.load(Ordering::Relaxed) {
        0 => None,
        signal => i32::try_from(signal).ok(),
    }
}

/// A fixed list of events for tests. Each event is delivered only once the
/// app is idle (so a script can say "run, then look at the plan"); when the
/// script is exhausted it presses `q`.
#[derive(Debug, Default)]
pub struct ScriptedEvents {
    events: VecDeque<Event>,
}

impl ScriptedEvents {
    pub fn new(events: impl IntoIterator<Item = Event>) -> ScriptedEvents {
        ScriptedEvents {
            events: events.into_iter().collect(),
        }
    }

    /// Key presses from a string: each char is a key, except `\n` (Enter) and `\x1b` (Esc).
    pub fn keys(keys: &str) -> ScriptedEvents {
        ScriptedEvents::new(keys.chars().map(|c| Event::Key(key_for_char(c))))
    }
}

/// The key event for one script character (`\n` Enter, `\t` Tab, `\x1b` Esc).
pub fn key_for_char(c: char) -> KeyEvent {
    let code = match c {
        '\n' => KeyCode::Enter,
        '\t' => KeyCode::Tab,
        '\x1b' => KeyCode::Esc,
        c => KeyCode::Char(c),
    };
    KeyEvent::new(code, KeyModifiers::NONE)
}

impl EventSource for ScriptedEvents {
    fn next_event(&mut self, app: &App, timeout: Duration) -> Result<Option<Event>, TuiError> {
        if app.busy() {
            std::thread::sleep(timeout.min(Duration::from_millis(2)));
            return Ok(None);
        }
        Ok(Some(
            self.events
                .pop_front()
                .unwrap_or(Event::Key(key_for_char('q'))),
        ))
    }
}

/// Applies an action and hands any resulting job to the worker.
pub fn dispatch(app: &mut App, worker: &Worker, action: Action) -> Result<(), WorkerGone> {
    if let Some(job) = update(app, action) {
        worker.submit(job)?;
    }
    Ok(())
}

/// Applies worker events until the current job finishes (or `timeout` passes
/// without news). For tests and scripted use; the interactive loop never blocks.
pub fn settle(app: &mut App, worker: &Worker, timeout: Duration) -> Result<(), WorkerGone> {
    while app.busy() {
        match worker.recv_timeout(timeout)? {
            Some(event) => dispatch(app, worker, Action::Worker(event))?,
            None => return Ok(()),
        }
    }
    // Drain what arrived after the job ended (stale events are ignored by update).
    while let Some(event) = worker.try_recv()? {
        dispatch(app, worker, Action::Worker(event))?;
    }
    Ok(())
}

/// Handles one terminal event (key presses become actions; a resize is
/// noted, and the next draw follows it).
pub fn handle_event(app: &mut App, worker: &Worker, event: Event) -> Result<(), WorkerGone> {
    match event {
        Event::Key(key) => {
            if let Some(action) = keys::action_for_key(app, key) {
                dispatch(app, worker, action)?;
            }
        }
        Event::Resize(_, rows) => app.set_terminal_rows(rows),
        _ => {}
    }
    Ok(())
}

/// The event loop: draw, apply worker events, wait briefly for input; until quit.
pub fn run_loop<B: Backend, E: EventSource>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    worker: &Worker,
    events: &mut E,
) -> Result<(), TuiError> {
    let size = terminal
        .size()
        .map_err(|e| TuiError::Terminal(e.to_string()))?;
    app.set_terminal_rows(size.height);
    loop {
        // Worker events first: if the worker died (a panic in the pipeline; the
        // panic hook has already restored the terminal) stop before drawing again.
        while let Some(event) = worker.try_recv()? {
            dispatch(app, worker, Action::Worker(event))?;
        }
        terminal
            .draw(|frame| ui::render(app, frame))
            .map_err(|e| TuiError::Terminal(e.to_string()))?;
        if app.should_quit {
            return Ok(());
        }
        let timeout = if app.busy() {
            Duration::from_millis(30)
        } else {
            Duration::from_millis(250)
        };
        if let Some(event) = events.next_event(app, timeout)? {
            handle_event(app, worker, event)?;
        }
        if events.stop_signal().is_some() && !app.should_quit {
            dispatch(app, worker, Action::Quit)?;
        }
    }
}

/// `text` with its first letter upper case.
fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// Restores the terminal when dropped, so an early return or error leaves it usable.
struct RestoreGuard;

impl Drop for RestoreGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Opens the TUI on `paths` (files or directories; empty = the pipeline's
/// default) and runs until the user quits. Exports go under `reports/`.
pub fn run_tui(paths: Vec<PathBuf>, pipeline: Arc<dyn Pipeline>) -> Result<(), TuiError> {
    run_tui_with_out_dir(paths, pipeline, PathBuf::from("reports"))
}

/// [`run_tui`] with the export directory given.
pub fn run_tui_with_out_dir(
    paths: Vec<PathBuf>,
    pipeline: Arc<dyn Pipeline>,
    out_dir: PathBuf,
) -> Result<(), TuiError> {
    let scenarios = pipeline.load_scenarios(&paths);
    let mut app = App::new(scenarios, out_dir);
    if app.scenarios.is_empty() && scenarios::missing_default_dir(&paths) {
        app.message = Some(app::Message::Error(scenarios::NO_SCENARIO_DIR.to_string()));
        app.no_scenarios_hint = format!(
            "{}, the directory that holds scenarios/ with the scenario files.",
            capitalised(scenarios::NO_SCENARIO_DIR)
        );
    }
    // Declared before the guard so it is dropped after it: the terminal is
    // restored first, then the worker is stopped (it waits at most half a
    // second: a compile still running is left to the process exit).
    let worker = Worker::spawn(pipeline)?;
    // try_init enables raw mode and the alternate screen and installs a panic
    // hook that restores the terminal before the panic message is printed.
    let mut terminal = ratatui::try_init()?;
    let _guard = RestoreGuard;
    // Caught from here on, a stop signal ends the loop like `q` (the guard
    // then restores the terminal) instead of killing the process mid-screen.
    let mut events = CrosstermEvents {
        signals: Some(StopSignals::register()?),
    };
    // The worker catches pipeline panics and reports them in the status line;
    // printing them (or restoring the terminal) would wreck the screen, so the
    // hook stays quiet for that thread and defers to ratatui's hook otherwise.
    let ratatui_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() != Some(worker::WORKER_THREAD_NAME) {
            ratatui_hook(info);
        }
    }));
    let result = run_loop(&mut terminal, &mut app, &worker, &mut events);
    if let Some(signals) = events.signals.as_mut() {
        if let Some(signal) = signals.received() {
            STOPPED_BY_SIGNAL.store(usize::try_from(signal).unwrap_or(0), Ordering::Relaxed);
        }
        signals.unregister();
    }
    result
}
