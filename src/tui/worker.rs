//! The worker thread: runs measure / plan / export jobs off the UI thread and
//! reports progress and results over a channel. The latest job wins: queued
//! jobs that a newer one overtook are skipped, and the UI ignores events from
//! any job but its current one. A cancelled job that does not stop (a compile
//! cannot be interrupted) neither holds up the next job (a fresh thread runs
//! it) nor quitting (dropping the [`Worker`] does not wait for it).

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::pipeline::{Measurements, Pipeline, Progress, ScenarioEntry, WhatIf};
use crate::report::Report;

pub type JobId = u64;

/// What a job does.
#[derive(Debug, Clone)]
pub enum JobKind {
    /// Measure the scenario's kernels, then plan with the scenario's own assumptions.
    Run { scenario: ScenarioEntry },
    /// Re-plan from cached measurements with a what-if applied.
    Replan {
        scenario: ScenarioEntry,
        measurements: Measurements,
        what_if: WhatIf,
    },
    /// Write the reports for a plan.
    Export {
        scenario: ScenarioEntry,
        report: Box<Report>,
        out_dir: PathBuf,
    },
    /// Read one scenario file again (it was listed with errors: it may have
    /// been fixed since).
    Recheck { scenario: ScenarioEntry },
    /// List the scenario files under `paths` again (empty: the default
    /// directory), to see files added, removed or edited since.
    Rescan { paths: Vec<PathBuf> },
}

/// Which kind of job, without its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobTag {
    Run,
    Replan,
    Export,
    Recheck,
    Rescan,
}

impl JobKind {
    pub fn tag(&self) -> JobTag {
        match self {
            JobKind::Run { .. } => JobTag::Run,
            JobKind::Replan { .. } => JobTag::Replan,
            JobKind::Export { .. } => JobTag::Export,
            JobKind::Recheck { .. } => JobTag::Recheck,
            JobKind::Rescan { .. } => JobTag::Rescan,
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            JobKind::Run { .. } => "measuring",
            JobKind::Replan { .. } => "re-planning",
            JobKind::Export { .. } => "exporting",
            JobKind::Recheck { .. } => "re-reading the scenario",
            JobKind::Rescan { .. } => "reloading the scenarios",
        }
    }
}

/// A job for the worker, with the flag the UI sets to cancel it.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: JobId,
    pub kind: JobKind,
    pub cancel: Arc<AtomicBool>,
}

/// What the worker reports back, each tagged with the job it belongs to.
#[derive(Debug, Clone)]
pub enum WorkerEvent {
    Progress {
        job: JobId,
        progress: Progress,
    },
    Measured {
        job: JobId,
        result: Result<Measurements, String>,
    },
    Planned {
        job: JobId,
        what_if: WhatIf,
        /// Boxed: a report is large and events are moved through a channel.
        result: Result<Box<Report>, String>,
    },
    Exported {
        job: JobId,
        result: Result<Vec<PathBuf>, String>,
    },
    /// The scenario's file changed since it was listed: its entry as it
    /// reads now (boxed: events are moved through a channel).
    Reloaded {
        job: JobId,
        entry: Box<ScenarioEntry>,
    },
    /// The scenario files as they are listed now (a [`JobKind::Rescan`]).
    Listed {
        job: JobId,
        entries: Vec<ScenarioEntry>,
    },
    /// The pipeline panicked during the job; the job is over.
    Failed {
        job: JobId,
        error: String,
    },
    /// The job ended (successfully or not); `cancelled` when it stopped because it was asked to.
    Finished {
        job: JobId,
        cancelled: bool,
    },
}

impl WorkerEvent {
    pub fn job(&self) -> JobId {
        match self {
            WorkerEvent::Progress { job, .. }
            | WorkerEvent::Measured { job, .. }
            | WorkerEvent::Planned { job, .. }
            | WorkerEvent::Exported { job, .. }
            | WorkerEvent::Reloaded { job, .. }
            | WorkerEvent::Listed { job, .. }
            | WorkerEvent::Failed { job, .. }
            | WorkerEvent::Finished { job, .. } => *job,
        }
    }
}

/// Handle to the worker threads. One thread runs the jobs; when a new job
/// arrives while that thread is still busy with a cancelled job (a compile
/// cannot be interrupted), the busy thread is left to finish it on its own
/// (its events are stale and ignored) and a fresh thread takes the new job.
/// Dropping the handle does not wait for a job that will not stop: the
/// process exit ends it.
pub struct Worker {
    pipeline: Arc<dyn Pipeline>,
    events_tx: Sender<WorkerEvent>,
    events: Receiver<WorkerEvent>,
    /// Behind a lock so that `submit` takes `&self` (the UI holds a shared handle).
    threads: Mutex<Threads>,
    exports: ExportsInFlight,
}

/// What a worker thread is busy with: whether a compile may be running
/// (only while measuring) or files are being written (only while exporting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Measuring the kernels, which compiles them: this cannot be interrupted.
    Measuring,
    Planning,
    Exporting,
    /// Reading scenario files (quick).
    Reading,
}

/// How many exports are writing files right now, shared with whoever must
/// not end the process in the middle of one (the TUI's hang-up watchdog).
#[derive(Debug, Clone, Default)]
pub struct ExportsInFlight(Arc<AtomicUsize>);

impl ExportsInFlight {
    /// An export is writing files (a report set is renamed into place one file at a time).
    pub fn any(&self) -> bool {
        self.0.load(Ordering::SeqCst) > 0
    }

    /// Counts one export until the returned guard is dropped.
    pub fn start(&self) -> ExportGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        ExportGuard(Arc::clone(&self.0))
    }
}

/// One export in flight (see [`ExportsInFlight::start`]).
#[derive(Debug)]
pub struct ExportGuard(Arc<AtomicUsize>);

impl Drop for ExportGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Threads {
    current: WorkerThread,
    /// Threads still finishing a cancelled job, most recent last.
    abandoned: Vec<WorkerThread>,
}

/// Why the worker cannot be reached.
#[derive(Debug, thiserror::Error)]
#[error("the worker thread stopped unexpectedly")]
pub struct WorkerGone;

/// At most this many threads finish cancelled jobs alongside the current one;
/// beyond it a new job queues on the current thread (each such thread may be
/// a compile using a core and its memory).
const MAX_ABANDONED: usize = 2;

/// How long dropping the worker waits for its jobs to wrap up (a cancelled
/// measurement stops within a sample, an export finishes writing its files)
/// before leaving them to the process exit.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// One worker thread and what it is doing.
struct WorkerThread {
    /// `None` once closed: the thread ends after its current job.
    jobs: Option<Sender<Job>>,
    /// The job it is running; `None` while idle.
    running: Arc<Mutex<Option<Busy>>>,
    handle: Option<JoinHandle<()>>,
}

/// The job a worker thread runs: its cancel flag, and what it is doing now.
#[derive(Debug, Clone)]
struct Busy {
    cancel: Arc<AtomicBool>,
    phase: Phase,
}

impl WorkerThread {
    fn spawn(
        pipeline: Arc<dyn Pipeline>,
        events: Sender<WorkerEvent>,
        exports: ExportsInFlight,
    ) -> Result<WorkerThread, std::io::Error> {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let running = Arc::new(Mutex::new(None));
        let running_in_thread = Arc::clone(&running);
        let handle = std::thread::Builder::new()
            .name(WORKER_THREAD_NAME.to_string())
            .spawn(move || {
                worker_loop(
                    pipeline.as_ref(),
                    &job_rx,
                    &events,
                    &running_in_thread,
                    &exports,
                )
            })?;
        Ok(WorkerThread {
            jobs: Some(job_tx),
            running,
            handle: Some(handle),
        })
    }

    /// What it is doing if still running a job it was told to stop (a
    /// compile does not check).
    fn busy_with_cancelled_job(&self) -> Option<Phase> {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running
            .as_ref()
            .filter(|busy| busy.cancel.load(Ordering::Relaxed))
            .map(|busy| busy.phase)
    }

    fn finished(&self) -> bool {
        self.handle.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Closes the job channel: the thread ends once its current job returns.
    fn close(&mut self) {
        self.jobs = None;
    }
}

impl Worker {
    pub fn spawn(pipeline: Arc<dyn Pipeline>) -> Result<Worker, std::io::Error> {
        let (events_tx, events) = mpsc::channel::<WorkerEvent>();
        let exports = ExportsInFlight::default();
        let current =
            WorkerThread::spawn(Arc::clone(&pipeline), events_tx.clone(), exports.clone())?;
        Ok(Worker {
            pipeline,
            events_tx,
            events,
            threads: Mutex::new(Threads {
                current,
                abandoned: Vec::new(),
            }),
            exports,
        })
    }

    /// The count of exports writing files, for whoever must not cut one short.
    pub fn exports_in_flight(&self) -> ExportsInFlight {
        self.exports.clone()
    }

    fn threads(&self) -> MutexGuard<'_, Threads> {
        self.threads.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands a job to the worker. If the worker is still busy with a job that
    /// was cancelled, a fresh thread takes this one (up to [`MAX_ABANDONED`]
    /// threads left finishing cancelled jobs; beyond that it queues).
    pub fn submit(&self, job: Job) -> Result<(), WorkerGone> {
        let mut threads = self.threads();
        threads.abandoned.retain(|thread| !thread.finished());
        if let Some(busy_with) = threads.current.busy_with_cancelled_job() {
            if threads.abandoned.len() < MAX_ABANDONED {
                let fresh = WorkerThread::spawn(
                    Arc::clone(&self.pipeline),
                    self.events_tx.clone(),
                    self.exports.clone(),
                )
                .map_err(|_| WorkerGone)?;
                let mut stuck = std::mem::replace(&mut threads.current, fresh);
                stuck.close();
                threads.abandoned.push(stuck);
            } else {
                // Say why the job does not start yet (its own stages replace this).
                let _ = self.events_tx.send(WorkerEvent::Progress {
                    job: job.id,
                    progress: Progress::Stage(waiting_stage(busy_with, &job.kind)),
                });
            }
        }
        match &threads.current.jobs {
            Some(tx) => tx.send(job).map_err(|_| WorkerGone),
            None => Err(WorkerGone),
        }
    }

    /// Threads still finishing a cancelled job beside the current one.
    pub fn abandoned_threads(&self) -> usize {
        let mut threads = self.threads();
        threads.abandoned.retain(|thread| !thread.finished());
        threads.abandoned.len()
    }

    /// The next event if one is ready; `Err` when the worker thread has died.
    pub fn try_recv(&self) -> Result<Option<WorkerEvent>, WorkerGone> {
        match self.events.try_recv() {
            Ok(event) => Ok(Some(event)),
            Err(mpsc::TryRecvError::Empty) => self.check_alive().map(|()| None),
            Err(mpsc::TryRecvError::Disconnected) => Err(WorkerGone),
        }
    }

    /// Waits up to `timeout` for the next event.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<WorkerEvent>, WorkerGone> {
        match self.events.recv_timeout(timeout) {
            Ok(event) => Ok(Some(event)),
            Err(RecvTimeoutError::Timeout) => self.check_alive().map(|()| None),
            Err(RecvTimeoutError::Disconnected) => Err(WorkerGone),
        }
    }

    /// The current thread only ends when its job channel closes (on drop) or
    /// the UI hangs up; ended otherwise, it died.
    fn check_alive(&self) -> Result<(), WorkerGone> {
        if self.threads().current.finished() {
            Err(WorkerGone)
        } else {
            Ok(())
        }
    }
}

/// The stage shown for a job queued behind cancelled compiles.
pub const WAITING_FOR_CANCELLED: &str =
    "waiting for a cancelled compile to finish (a compile cannot be interrupted)";

/// The stage shown for `next` while it queues behind a cancelled job that is
/// still `busy_with` something: only measuring compiles, so only then is a
/// compile what it waits for.
pub fn waiting_stage(busy_with: Phase, next: &JobKind) -> String {
    let doing = match next {
        JobKind::Run { .. } => "measuring",
        JobKind::Replan { .. } => "re-planning with the new what-if",
        JobKind::Export { .. } => "exporting",
        JobKind::Recheck { .. } | JobKind::Rescan { .. } => "reading the scenarios",
    };
    match busy_with {
        Phase::Measuring => WAITING_FOR_CANCELLED.to_string(),
        Phase::Planning => format!("{doing} once the superseded plan stops"),
        Phase::Exporting => format!("{doing} once the running export has written its files"),
        Phase::Reading => format!("{doing} once the scenario files are read"),
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let threads = self
            .threads
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        // Closing the job channels ends each thread once its current job returns.
        threads.current.close();
        for thread in &mut threads.abandoned {
            thread.close();
        }
        // Wait a little for the current job to wrap up, never for a compile
        // that cannot be interrupted: quitting must not hang on it.
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while !threads.current.finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if threads.current.finished() {
            if let Some(handle) = threads.current.handle.take() {
                let _ = handle.join();
            }
        }
        // A thread still running is detached; the process exit ends it.
    }
}

fn worker_loop(
    pipeline: &dyn Pipeline,
    jobs: &Receiver<Job>,
    events: &Sender<WorkerEvent>,
    running: &Mutex<Option<Busy>>,
    exports: &ExportsInFlight,
) {
    let set_running = |busy: Option<Busy>| {
        *running.lock().unwrap_or_else(PoisonError::into_inner) = busy;
    };
    while let Ok(mut job) = jobs.recv() {
        // Latest job wins: skip whatever a newer request overtook while queued.
        while let Ok(newer) = jobs.try_recv() {
            job = newer;
        }
        let set_phase = |phase: Phase| {
            set_running(Some(Busy {
                cancel: Arc::clone(&job.cancel),
                phase,
            }))
        };
        set_phase(match job.kind {
            JobKind::Run { .. } => Phase::Measuring,
            JobKind::Replan { .. } => Phase::Planning,
            JobKind::Export { .. } => Phase::Exporting,
            JobKind::Recheck { .. } | JobKind::Rescan { .. } => Phase::Reading,
        });
        // Counted while it runs, so that a hang-up does not end the process
        // between the renames of a report set.
        let _export = matches!(job.kind, JobKind::Export { .. }).then(|| exports.start());
        // A panic in the pipeline fails the job, not the TUI: it is reported
        // like an error (run_tui's panic hook keeps it off the screen).
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            run_job_in_phases(pipeline, &job, events, &set_phase)
        }));
        set_running(None);
        let delivered = match outcome {
            Ok(result) => result,
            Err(payload) => events
                .send(WorkerEvent::Failed {
                    job: job.id,
                    error: format!("the pipeline panicked: {}", panic_message(payload.as_ref())),
                })
                .map_err(|_| UiGone),
        };
        if delivered.is_err() {
            return; // the UI hung up
        }
    }
}

/// The worker thread's name (run_tui's panic hook recognises it).
pub const WORKER_THREAD_NAME: &str = "workbench-tui-worker";

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// The UI side of the channel has gone away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the UI stopped listening")]
pub struct UiGone;

/// Runs one job to completion, sending its events; used by the worker thread
/// (and by tests that want a job's events without a thread).
pub fn run_job(
    pipeline: &dyn Pipeline,
    job: &Job,
    events: &Sender<WorkerEvent>,
) -> Result<(), UiGone> {
    run_job_in_phases(pipeline, job, events, &|_| {})
}

/// [`run_job`], telling `set_phase` what it is doing as it goes.
fn run_job_in_phases(
    pipeline: &dyn Pipeline,
    job: &Job,
    events: &Sender<WorkerEvent>,
    set_phase: &dyn Fn(Phase),
) -> Result<(), UiGone> {
    let send = |event: WorkerEvent| events.send(event).map_err(|_| UiGone);
    let id = job.id;
    let cancel = &job.cancel;
    let cancelled = || cancel.load(Ordering::Relaxed);
    if cancelled() {
        return send(WorkerEvent::Finished {
            job: id,
            cancelled: true,
        });
    }
    let progress = |progress: Progress| {
        // A closed channel means the UI is gone; the job's result is moot then.
        let _ = events.send(WorkerEvent::Progress { job: id, progress });
    };
    match &job.kind {
        JobKind::Run { scenario } => {
            // The run reads the file as it is now: the list shows that too.
            let current = pipeline.reload(scenario);
            if current != *scenario {
                send(WorkerEvent::Reloaded {
                    job: id,
                    entry: Box::new(current),
                })?;
            }
            set_phase(Phase::Measuring);
            let measured = pipeline.measure(scenario, &progress, cancel);
            set_phase(Phase::Planning);
            let measurements = measured.clone().ok();
            send(WorkerEvent::Measured {
                job: id,
                result: measured,
            })?;
            if let Some(measurements) = measurements {
                if !cancelled() {
                    let what_if = WhatIf::default();
                    let result = pipeline
                        .plan(scenario, &measurements, &what_if, &progress, cancel)
                        .map(Box::new);
                    send(WorkerEvent::Planned {
                        job: id,
                        what_if,
                        result,
                    })?;
                }
            }
        }
        JobKind::Replan {
            scenario,
            measurements,
            what_if,
        } => {
            set_phase(Phase::Planning);
            let result = pipeline
                .plan(scenario, measurements, what_if, &progress, cancel)
                .map(Box::new);
            send(WorkerEvent::Planned {
                job: id,
                what_if: *what_if,
                result,
            })?;
        }
        JobKind::Export {
            scenario,
            report,
            out_dir,
        } => {
            set_phase(Phase::Exporting);
            let result = pipeline.export(scenario, report, out_dir);
            send(WorkerEvent::Exported { job: id, result })?;
        }
        JobKind::Recheck { scenario } => {
            let entry = pipeline.reload(scenario);
            send(WorkerEvent::Reloaded {
                job: id,
                entry: Box::new(entry),
            })?;
        }
        JobKind::Rescan { paths } => {
            let entries = pipeline.load_scenarios(paths);
            send(WorkerEvent::Listed { job: id, entries })?;
        }
    }
    send(WorkerEvent::Finished {
        job: id,
        cancelled: cancelled(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::FakePipeline;

    /// A pipeline whose planning ignores `cancel` until the test releases it.
    struct SlowPlans {
        inner: FakePipeline,
        release: Mutex<Receiver<()>>,
    }

    impl Pipeline for SlowPlans {
        fn load_scenarios(&self, paths: &[PathBuf]) -> Vec<ScenarioEntry> {
            self.inner.load_scenarios(paths)
        }
        fn measure(
            &self,
            scenario: &ScenarioEntry,
            progress: &dyn Fn(Progress),
            cancel: &Arc<AtomicBool>,
        ) -> Result<Measurements, String> {
            self.inner.measure(scenario, progress, cancel)
        }
        fn plan(
            &self,
            scenario: &ScenarioEntry,
            measurements: &Measurements,
            what_if: &WhatIf,
            progress: &dyn Fn(Progress),
            cancel: &Arc<AtomicBool>,
        ) -> Result<Report, String> {
            progress(Progress::Stage("slow planning".to_string()));
            // A minute at most, should the test fail.
            let release = self.release.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = release.recv_timeout(Duration::from_secs(60));
            drop(release);
            self.inner
                .plan(scenario, measurements, what_if, progress, cancel)
        }
        fn export(
            &self,
            scenario: &ScenarioEntry,
            report: &Report,
            out_dir: &std::path::Path,
        ) -> Result<Vec<PathBuf>, String> {
            self.inner.export(scenario, report, out_dir)
        }
    }

    /// The stage the worker reports for `job` next (other jobs' events skipped).
    fn next_stage(worker: &Worker, job: JobId) -> String {
        loop {
            match worker.recv_timeout(Duration::from_secs(60)) {
                Ok(Some(WorkerEvent::Progress {
                    job: of,
                    progress: Progress::Stage(stage),
                })) if of == job => return stage,
                Ok(Some(_)) => {}
                other => panic!("no stage for job {job}: {other:?}"),
            }
        }
    }

    /// Superseded what-if re-plans involve no compile: the job queued behind
    /// them must not say it waits for one.
    #[test]
    fn a_replan_queued_behind_superseded_replans_does_not_blame_a_compile() {
        let (release, released) = mpsc::channel();
        let pipeline = SlowPlans {
            inner: FakePipeline::new(),
            release: Mutex::new(released),
        };
        let scenario = pipeline.load_scenarios(&[]).remove(0);
        let cancel = Arc::new(AtomicBool::new(false));
        let measurements = pipeline
            .inner
            .measure(&scenario, &|_| {}, &cancel)
            .expect("fake measurements");
        let worker = Worker::spawn(Arc::new(pipeline)).expect("worker");
        let replan = |id: JobId, traffic: f64| Job {
            id,
            kind: JobKind::Replan {
                scenario: scenario.clone(),
                measurements: measurements.clone(),
                what_if: WhatIf {
                    traffic,
                    ..WhatIf::default()
                },
            },
            cancel: Arc::new(AtomicBool::new(false)),
        };
        // Three re-plans, each superseded while planning: the first two are
        // left to fresh threads, which fills the quota of abandoned threads.
        for id in 1..=3 {
            let job = replan(id, 1.25 * id as f64);
            let cancel = Arc::clone(&job.cancel);
            worker.submit(job).expect("submitted");
            while next_stage(&worker, id) != "slow planning" {}
            cancel.store(true, Ordering::Relaxed);
        }
        worker.submit(replan(4, 5.0)).expect("submitted");
        let stage = next_stage(&worker, 4);
        assert!(!stage.contains("compile"), "{stage}");
        assert_eq!(
            stage,
            "re-planning with the new what-if once the superseded plan stops"
        );
        for _ in 0..4 {
            let _ = release.send(());
        }
    }

    #[test]
    fn a_job_queued_behind_a_cancelled_measurement_waits_for_its_compile() {
        let scenario = FakePipeline::new().load_scenarios(&[]).remove(0);
        let next = JobKind::Run { scenario };
        assert_eq!(
            waiting_stage(Phase::Measuring, &next),
            WAITING_FOR_CANCELLED
        );
        assert!(!waiting_stage(Phase::Exporting, &next).contains("compile"));
    }
}
