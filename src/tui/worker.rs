//! The worker thread: runs measure / plan / export jobs off the UI thread and
//! reports progress and results over a channel. The latest job wins: queued
//! jobs that a newer one overtook are skipped, and the UI ignores events from
//! any job but its current one. A cancelled job that does not stop (a compile
//! cannot be interrupted) neither holds up the next job (a fresh thread runs
//! it) nor quitting (dropping the [`Worker`] does not wait for it).

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
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
}

impl JobKind {
    pub fn label(&self) -> &'static str {
        match self {
            JobKind::Run { .. } => "measuring",
            JobKind::Replan { .. } => "re-planning",
            JobKind::Export { .. } => "exporting",
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
    /// The scenario's file changed since it was listed: its entry as it reads now.
    Reloaded {
        job: JobId,
        entry: ScenarioEntry,
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
    /// The cancel flag of the job it is running; `None` while idle.
    running: Arc<Mutex<Option<Arc<AtomicBool>>>>,
    handle: Option<JoinHandle<()>>,
}

impl WorkerThread {
    fn spawn(
        pipeline: Arc<dyn Pipeline>,
        events: Sender<WorkerEvent>,
    ) -> Result<WorkerThread, std::io::Error> {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let running = Arc::new(Mutex::new(None));
        let running_in_thread = Arc::clone(&running);
        let handle = std::thread::Builder::new()
            .name(WORKER_THREAD_NAME.to_string())
            .spawn(move || worker_loop(pipeline.as_ref(), &job_rx, &events, &running_in_thread))?;
        Ok(WorkerThread {
            jobs: Some(job_tx),
            running,
            handle: Some(handle),
        })
    }

    /// Still running a job it was told to stop (a compile does not check).
    fn busy_with_cancelled_job(&self) -> bool {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running
            .as_ref()
            .is_some_and(|cancel| cancel.load(Ordering::Relaxed))
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
        let current = WorkerThread::spawn(Arc::clone(&pipeline), events_tx.clone())?;
        Ok(Worker {
            pipeline,
            events_tx,
            events,
            threads: Mutex::new(Threads {
                current,
                abandoned: Vec::new(),
            }),
        })
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
        if threads.current.busy_with_cancelled_job() {
            if threads.abandoned.len() < MAX_ABANDONED {
                let fresh = WorkerThread::spawn(Arc::clone(&self.pipeline), self.events_tx.clone())
                    .map_err(|_| WorkerGone)?;
                let mut stuck = std::mem::replace(&mut threads.current, fresh);
                stuck.close();
                threads.abandoned.push(stuck);
            } else {
                // Say why the job does not start yet (its own stages replace this).
                let _ = self.events_tx.send(WorkerEvent::Progress {
                    job: job.id,
                    progress: Progress::Stage(WAITING_FOR_CANCELLED.to_string()),
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
    running: &Mutex<Option<Arc<AtomicBool>>>,
) {
    let set_running = |cancel: Option<Arc<AtomicBool>>| {
        *running.lock().unwrap_or_else(PoisonError::into_inner) = cancel;
    };
    while let Ok(mut job) = jobs.recv() {
        // Latest job wins: skip whatever a newer request overtook while queued.
        while let Ok(newer) = jobs.try_recv() {
            job = newer;
        }
        set_running(Some(Arc::clone(&job.cancel)));
        // A panic in the pipeline fails the job, not the TUI: it is reported
        // like an error (run_tui's panic hook keeps it off the screen).
        let outcome =
            std::panic::catch_unwind(AssertUnwindSafe(|| run_job(pipeline, &job, events)));
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
                    entry: current,
                })?;
            }
            let measured = pipeline.measure(scenario, &progress, cancel);
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
            let result = pipeline.export(scenario, report, out_dir);
            send(WorkerEvent::Exported { job: id, result })?;
        }
    }
    send(WorkerEvent::Finished {
        job: id,
        cancelled: cancelled(),
    })
}
