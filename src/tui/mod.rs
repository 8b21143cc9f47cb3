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
use std::fs::File;
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
pub use worker::{ExportsInFlight, Job, JobKind, JobTag, Worker, WorkerEvent, WorkerGone};

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
    /// The terminal the keys come from, watched for a hang-up (`None`: not watched).
    pub input: Option<TerminalInput>,
    /// The terminal hung up: the loop quits as on SIGHUP.
    hung_up: bool,
}

impl CrosstermEvents {
    pub fn new(signals: Option<StopSignals>, input: Option<TerminalInput>) -> CrosstermEvents {
        CrosstermEvents {
            signals,
            input,
            hung_up: false,
        }
    }

    /// The stop asked for, without telling the watchdog the loop has seen it.
    fn pending_stop(&self) -> Option<i32> {
        let signal = self.signals.as_ref().and_then(StopSignals::received);
        signal.or(self.hung_up.then_some(signal_hook::consts::SIGHUP))
    }

    fn input_closed(&self) -> bool {
        self.input.as_ref().is_some_and(|input| !input.is_open())
    }

    fn hang_up(&mut self) {
        self.hung_up = true;
        if let Some(signals) = &self.signals {
            signals.record(signal_hook::consts::SIGHUP);
        }
    }
}

impl EventSource for CrosstermEvents {
    fn next_event(&mut self, _app: &App, timeout: Duration) -> Result<Option<Event>, TuiError> {
        // Quitting already: no need to wait for a key first.
        if self.pending_stop().is_some() {
            return Ok(None);
        }
        // crossterm 0.29 never returns from `poll` on a hung-up terminal (it
        // reads end-of-file in a loop, crossterm issue #793): never ask it then.
        if self.input_closed() {
            self.hang_up();
            return Ok(None);
        }
        let polled = crossterm::event::poll(timeout).and_then(|ready| {
            if ready {
                crossterm::event::read().map(Some)
            } else {
                Ok(None)
            }
        });
        match polled {
            Ok(event) => Ok(event),
            // Input that fails because the terminal has gone is a hang-up, not an error.
            Err(_) if self.input_closed() => {
                self.hang_up();
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn stop_signal(&self) -> Option<i32> {
        let signal = self.pending_stop();
        if let (Some(_), Some(signals)) = (signal, &self.signals) {
            // The loop quits on this tick: the watchdog need not step in.
            signals.acknowledge();
        }
        signal
    }
}

/// The terminal crossterm reads keys from (stdin if it is a terminal, else
/// `/dev/tty`), held open to notice when it hangs up.
#[derive(Debug, Clone)]
pub struct TerminalInput(Arc<File>);

impl TerminalInput {
    /// The terminal crossterm reads, as crossterm chooses it.
    pub fn open() -> Result<TerminalInput, std::io::Error> {
        let stdin = std::io::stdin();
        let file = if stdin.is_terminal() {
            File::from(stdin.as_fd().try_clone_to_owned()?)
        } else {
            File::open("/dev/tty")?
        };
        Ok(TerminalInput::from_file(file))
    }

    /// Watches `file`: open while it is a terminal.
    pub fn from_file(file: File) -> TerminalInput {
        TerminalInput(Arc::new(file))
    }

    /// False once the terminal has hung up: a hung-up terminal answers no
    /// terminal request (the kernel sends SIGHUP too, but it can be ignored).
    pub fn is_open(&self) -> bool {
        self.0.is_terminal()
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
/// the signal; the event loop sees it on its next tick (at most 250 ms), and
/// the [`Watchdog`] ends the process should the loop not see it.
#[derive(Debug, Clone)]
pub struct StopSignals {
    received: Arc<AtomicUsize>,
    /// The event loop has seen the signal and is quitting.
    acknowledged: Arc<AtomicBool>,
    ids: Vec<signal_hook::SigId>,
}

impl StopSignals {
    /// Catches [`STOP_SIGNALS`] until [`StopSignals::unregister`].
    pub fn register() -> Result<StopSignals, std::io::Error> {
        let mut signals = StopSignals::without_handlers();
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

    /// Records only what [`StopSignals::record`] is told (a hang-up found, tests).
    pub fn without_handlers() -> StopSignals {
        StopSignals {
            received: Arc::new(AtomicUsize::new(0)),
            acknowledged: Arc::new(AtomicBool::new(false)),
            ids: Vec::new(),
        }
    }

    /// Records `signal` as if it had arrived, unless a stop signal already has.
    pub fn record(&self, signal: i32) {
        let value = usize::try_from(signal).unwrap_or(0);
        let _ = self
            .received
            .compare_exchange(0, value, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// The event loop has seen the stop and is quitting.
    pub fn acknowledge(&self) {
        self.acknowledged.store(true, Ordering::SeqCst);
    }

    pub fn acknowledged(&self) -> bool {
        self.acknowledged.load(Ordering::SeqCst)
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

/// How long the [`Watchdog`] gives the event loop before it ends the process itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchdogTimes {
    /// How often it looks at the stop signals and the terminal.
    pub tick: Duration,
    /// For the loop to see a stop signal while the terminal is open (the
    /// loop looks at least every 250 ms).
    pub notice: Duration,
    /// For the loop to see a hang-up: it is most likely stuck in crossterm,
    /// spinning on the closed terminal (see [`CrosstermEvents`]).
    pub notice_after_hangup: Duration,
    /// For the loop, once it has seen the stop, to restore the terminal and
    /// return (the worker alone may wait half a second for its job).
    pub wind_down: Duration,
    /// For an export in flight to write its files before the process ends anyway.
    pub export: Duration,
}

impl Default for WatchdogTimes {
    fn default() -> WatchdogTimes {
        WatchdogTimes {
            tick: Duration::from_millis(50),
            notice: Duration::from_secs(1),
            notice_after_hangup: Duration::from_millis(150),
            wind_down: Duration::from_secs(3),
            export: Duration::from_secs(5),
        }
    }
}

/// What the watchdog does when the loop has not quit in time: the process
/// exits with 128 + signal (see [`exit_for_signal`]); tests pass a recorder.
pub type GiveUp = Box<dyn FnOnce(i32) + Send>;

/// Ends the process when a stop signal or a hang-up arrived and the event
/// loop did not quit in time: it can be stuck where it cannot see the signal
/// (crossterm's `poll` on a hung-up terminal never returns), and the process
/// would then outlive its terminal, spinning. Dropping the watchdog disarms it.
pub struct Watchdog {
    disarm: Option<Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Watches `stop` and `input` (`None`: signals only) on a thread of its
    /// own; waits for `exports` to finish before giving up.
    pub fn spawn(
        stop: StopSignals,
        input: Option<TerminalInput>,
        exports: ExportsInFlight,
        times: WatchdogTimes,
        give_up: GiveUp,
    ) -> Result<Watchdog, std::io::Error> {
        let (disarm, disarmed) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("workbench-tui-watchdog".to_string())
            .spawn(move || {
                // Sleeps a tick; false once disarmed.
                let armed_after_tick = || {
                    matches!(
                        disarmed.recv_timeout(times.tick),
                        Err(RecvTimeoutError::Timeout)
                    )
                };
                let mut stopped_at: Option<Instant> = None;
                while armed_after_tick() {
                    let hung_up = input.as_ref().is_some_and(|input| !input.is_open());
                    if hung_up {
                        stop.record(signal_hook::consts::SIGHUP);
                    }
                    let Some(signal) = stop.received() else {
                        continue;
                    };
                    let since = *stopped_at.get_or_insert_with(Instant::now);
                    let allowed = if stop.acknowledged() {
                        times.wind_down
                    } else if hung_up {
                        times.notice_after_hangup
                    } else {
                        times.notice
                    };
                    if since.elapsed() < allowed {
                        continue;
                    }
                    // Not between the renames of a report set.
                    let export_deadline = Instant::now() + times.export;
                    while exports.any() && Instant::now() < export_deadline {
                        if !armed_after_tick() {
                            return;
                        }
                    }
                    give_up(signal);
                    return;
                }
            })?;
        Ok(Watchdog {
            disarm: Some(disarm),
            handle: Some(handle),
        })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.disarm = None;
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// How the watchdog gives up: restores the terminal as far as it can, then
/// exits with 128 + signal (129 for SIGHUP), as a program a signal ended.
pub fn exit_for_signal(signal: i32) {
    // On a thread of its own and waited for only briefly: the stuck loop may
    // hold the terminal's writer, or the terminal may not take the bytes.
    let (restored_tx, restored) = mpsc::channel::<()>();
    let restorer = std::thread::Builder::new()
        .name("workbench-tui-restore".to_string())
        .spawn(move || {
            let _ = ratatui::try_restore();
            let _ = restored_tx.send(());
        });
    if restorer.is_ok() {
        let _ = restored.recv_timeout(Duration::from_millis(300));
    }
    std::process::exit(128 + signal);
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
        Event::Resize(width, rows) => app.set_terminal_size(width, rows),
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
    app.set_terminal_size(size.width, size.height);
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
    app.scenario_paths = paths.clone();
    if app.scenarios.is_empty() && scenarios::missing_default_dir(&paths) {
        app.message = Some(app::Message::Error(scenarios::NO_SCENARIO_DIR.to_string()));
        app.no_scenarios_hint = format!(
            "{}, the directory that holds scenarios/ with the scenario files.",
            capitalised(scenarios::NO_SCENARIO_DIR)
        );
    }
    // Stopped after the terminal is restored (it waits at most half a
    // second: a compile still running is left to the process exit).
    let worker = Worker::spawn(pipeline)?;
    // try_init enables raw mode and the alternate screen and installs a panic
    // hook that restores the terminal before the panic message is printed.
    let mut terminal = ratatui::try_init()?;
    let guard = RestoreGuard;
    // Caught from here on, a stop signal ends the loop like `q` (the guard
    // then restores the terminal) instead of killing the process mid-screen.
    let signals = StopSignals::register()?;
    let input = TerminalInput::open().ok();
    // Should the loop not quit on a stop signal or a hang-up (stuck in
    // crossterm), this ends the process; disarmed once the worker has stopped.
    let watchdog = Watchdog::spawn(
        signals.clone(),
        input.clone(),
        worker.exports_in_flight(),
        WatchdogTimes::default(),
        Box::new(exit_for_signal),
    )?;
    let mut events = CrosstermEvents::new(Some(signals), input);
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
    let stopped = events.pending_stop();
    if let Some(signal) = stopped {
        STOPPED_BY_SIGNAL.store(usize::try_from(signal).unwrap_or(0), Ordering::Relaxed);
    }
    if let Some(signals) = events.signals.as_mut() {
        signals.unregister();
    }
    // Restore the terminal, then stop the worker (it waits at most half a
    // second), then disarm the watchdog, which stays on guard till then.
    drop(guard);
    drop(terminal);
    drop(worker);
    drop(watchdog);
    match result {
        // Drawing on a terminal that hung up fails; that is how it ended, not an error.
        Err(TuiError::Terminal(_) | TuiError::Io(_)) if stopped.is_some() => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::backend::TestBackend;

    /// Generous bounds so a slow machine fails nothing; a broken watchdog never calls back.
    const WAIT: Duration = Duration::from_secs(60);
    const NEVER: Duration = Duration::from_secs(3600);

    /// An event source stuck as crossterm's is on a hung-up terminal: it
    /// never returns (until the test ends and drops `release`).
    struct StuckEvents {
        release: mpsc::Receiver<()>,
    }

    impl EventSource for StuckEvents {
        fn next_event(&mut self, _: &App, _: Duration) -> Result<Option<Event>, TuiError> {
            let _ = self.release.recv();
            Err(TuiError::Terminal("released".to_string()))
        }
    }

    /// Runs the event loop on a thread of its own; it ends when `release` is dropped.
    fn spawn_loop<E: EventSource + Send + 'static>(mut events: E) -> JoinHandle<()> {
        std::thread::spawn(move || {
            let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("test backend");
            let mut app = App::new(Vec::new(), PathBuf::from("unused"));
            let worker = Worker::spawn(Arc::new(FakePipeline::new())).expect("worker");
            let _ = run_loop(&mut terminal, &mut app, &worker, &mut events);
        })
    }

    fn recorder() -> (GiveUp, mpsc::Receiver<i32>) {
        let (tx, rx) = mpsc::channel();
        let give_up: GiveUp = Box::new(move |signal| {
            let _ = tx.send(signal);
        });
        (give_up, rx)
    }

    fn quick() -> WatchdogTimes {
        WatchdogTimes {
            tick: Duration::from_millis(2),
            notice: Duration::from_millis(20),
            notice_after_hangup: Duration::from_millis(5),
            wind_down: Duration::from_millis(20),
            export: NEVER,
        }
    }

    #[test]
    fn a_stop_signal_ends_the_process_when_the_event_loop_is_stuck() {
        let (release, stuck) = mpsc::channel();
        let event_loop = spawn_loop(StuckEvents { release: stuck });
        let stop = StopSignals::without_handlers();
        let (give_up, exits) = recorder();
        let _watchdog = Watchdog::spawn(
            stop.clone(),
            None,
            ExportsInFlight::default(),
            quick(),
            give_up,
        )
        .expect("watchdog");
        stop.record(signal_hook::consts::SIGHUP);
        assert_eq!(exits.recv_timeout(WAIT), Ok(signal_hook::consts::SIGHUP));
        assert!(!stop.acknowledged(), "the stuck loop never saw the signal");
        drop(release);
        event_loop.join().expect("the loop ends once released");
    }

    #[test]
    fn the_watchdog_lets_an_export_finish_writing_first() {
        let (release, stuck) = mpsc::channel();
        let event_loop = spawn_loop(StuckEvents { release: stuck });
        let stop = StopSignals::without_handlers();
        let exports = ExportsInFlight::default();
        let export = exports.start();
        let (give_up, exits) = recorder();
        let _watchdog =
            Watchdog::spawn(stop.clone(), None, exports, quick(), give_up).expect("watchdog");
        stop.record(signal_hook::consts::SIGTERM);
        assert_eq!(
            exits.recv_timeout(Duration::from_millis(300)),
            Err(mpsc::RecvTimeoutError::Timeout),
            "ended the process in the middle of an export"
        );
        drop(export);
        assert_eq!(exits.recv_timeout(WAIT), Ok(signal_hook::consts::SIGTERM));
        drop(release);
        event_loop.join().expect("the loop ends once released");
    }

    /// A terminal that hung up quits the loop as SIGHUP does, without asking
    /// crossterm (which would spin on it), and the watchdog, told the loop
    /// saw it, leaves the exit to the loop.
    #[test]
    fn a_closed_terminal_quits_the_loop_as_a_hangup() {
        let dir = tempfile::tempdir().expect("temp dir");
        // Not a terminal: what a hung-up terminal looks like to `isatty`.
        let closed = File::create(dir.path().join("closed-tty")).expect("file");
        let input = TerminalInput::from_file(closed);
        assert!(!input.is_open());
        let stop = StopSignals::without_handlers();
        let (give_up, exits) = recorder();
        let times = WatchdogTimes {
            wind_down: NEVER,
            notice_after_hangup: NEVER,
            ..quick()
        };
        let watchdog = Watchdog::spawn(
            stop.clone(),
            Some(input.clone()),
            ExportsInFlight::default(),
            times,
            give_up,
        )
        .expect("watchdog");
        let mut events = CrosstermEvents::new(Some(stop.clone()), Some(input));
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("test backend");
        let mut app = App::new(Vec::new(), PathBuf::from("unused"));
        let worker = Worker::spawn(Arc::new(FakePipeline::new())).expect("worker");
        run_loop(&mut terminal, &mut app, &worker, &mut events).expect("the loop quits");
        assert!(app.should_quit);
        assert_eq!(events.stop_signal(), Some(signal_hook::consts::SIGHUP));
        assert!(stop.acknowledged());
        drop(watchdog);
        assert_eq!(
            exits.try_recv(),
            Err(mpsc::TryRecvError::Disconnected),
            "a disarmed watchdog does not end the process"
        );
    }
}
