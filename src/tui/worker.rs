//! The worker thread: runs measure / plan / export jobs off the UI thread and
//! reports progress and results over a channel. The latest job wins: queued
//! jobs that a newer one overtook are skipped, and the UI ignores events from
//! any job but its current one.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

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

/// Handle to the worker thread. Dropping it stops the thread after its current job.
pub struct Worker {
    jobs: Option<Sender<Job>>,
    events: Receiver<WorkerEvent>,
    thread: Option<JoinHandle<()>>,
}

/// Why the worker cannot be reached.
#[derive(Debug, thiserror::Error)]
#[error("the worker thread stopped unexpectedly")]
pub struct WorkerGone;

impl Worker {
    pub fn spawn(pipeline: Arc<dyn Pipeline>) -> Result<Worker, std::io::Error> {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let (event_tx, event_rx) = mpsc::channel::<WorkerEvent>();
        let thread = std::thread::Builder::new()
            .name(WORKER_THREAD_NAME.to_string())
            .spawn(move || worker_loop(pipeline.as_ref(), &job_rx, &event_tx))?;
        Ok(Worker {
            jobs: Some(job_tx),
            events: event_rx,
            thread: Some(thread),
        })
    }

    pub fn submit(&self, job: Job) -> Result<(), WorkerGone> {
        match &self.jobs {
            Some(tx) => tx.send(job).map_err(|_| WorkerGone),
            None => Err(WorkerGone),
        }
    }

    /// The next event if one is ready; `Err` when the worker thread has died.
    pub fn try_recv(&self) -> Result<Option<WorkerEvent>, WorkerGone> {
        match self.events.try_recv() {
            Ok(event) => Ok(Some(event)),
            Err(mpsc::TryRecvError::Empty) => Ok(None),
            Err(mpsc::TryRecvError::Disconnected) => Err(WorkerGone),
        }
    }

    /// Waits up to `timeout` for the next event.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<WorkerEvent>, WorkerGone> {
        match self.events.recv_timeout(timeout) {
            Ok(event) => Ok(Some(event)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(WorkerGone),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing the job channel ends the worker loop once the current job returns.
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn worker_loop(pipeline: &dyn Pipeline, jobs: &Receiver<Job>, events: &Sender<WorkerEvent>) {
    while let Ok(mut job) = jobs.recv() {
        // Latest job wins: skip whatever a newer request overtook while queued.
        while let Ok(newer) = jobs.try_recv() {
            job = newer;
        }
        // A panic in the pipeline fails the job, not the TUI: it is reported
        // like an error (run_tui's panic hook keeps it off the screen).
        let outcome =
            std::panic::catch_unwind(AssertUnwindSafe(|| run_job(pipeline, &job, events)));
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
