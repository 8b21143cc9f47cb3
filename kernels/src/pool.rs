//! Fork-join over numbered chunks of work, for multi-threaded kernels.
//!
//! The calling thread takes chunks itself, and helpers from a persistent pool
//! join when they get to run. A helper that starts after every chunk is taken
//! does not join, and one that has not started by the time the caller has
//! finished its last chunk never will: the caller waits only for helpers that
//! joined, never for a thread to wake up. So a busy second core (a shared vCPU,
//! a sleeping pool thread) costs about one chunk's time, not a stall, and a
//! parallel kernel stays about as fast as a serial one when no help comes. (A
//! helper descheduled in the middle of a chunk is still waited for.)
//!
//! Work inside a chunk runs on its one thread: kernels called from a chunk
//! (a GEMM per attention head, per band) do not split again.
//!
//! A helper that finishes keeps polling for the next call for `LINGER`
//! before its pool thread goes to sleep. Waking a sleeping thread costs the
//! caller about 6.5 us here (a futex wake through the hypervisor) and the
//! helper starts 15-65 us later; a polling helper joins within a microsecond.
//! So the GEMMs of one model run, a few microseconds apart, share one wake-up.
//!
//! A model run decides at its start (`begin_run`): with a helper polling, it
//! uses it; otherwise it wakes one right away or stays on its thread,
//! whichever made its runs faster so far (`RunHistory`; until both were
//! timed, it wakes if the run is expected to last 1.5 times the measured
//! wake-up latency). After a millisecond asleep a helper takes 0.1-3 ms to
//! start here, longer than many runs: waking one for them only cost the
//! caller.
//!
//! Helper threads sleep in `park` and are woken by `unpark` (a futex), and a
//! call reaches them through the mailbox, whose room is reserved when the
//! pool starts: no step of a parallel call allocates once its caller's
//! records exist (`ChunkRecord`) and its participants' buffers have grown
//! alike (`equalize`).

use crate::pages;
use std::marker::PhantomData;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a helper polls for more work before going back to sleep.
const LINGER: Duration = Duration::from_micros(500);

/// Calls waiting for a polling helper to pick them up.
static MAILBOX: Mutex<Vec<Arc<Shared>>> = Mutex::new(Vec::new());
/// Entries in `MAILBOX`, read without the lock while polling.
static POSTED: AtomicUsize = AtomicUsize::new(0);
/// Helpers polling right now.
static LINGERING: AtomicUsize = AtomicUsize::new(0);
/// Helpers woken and not yet running: calls meanwhile post to the mailbox,
/// which they poll once they run, instead of paying for another wake-up.
static WAKING: AtomicUsize = AtomicUsize::new(0);

/// Smoothed time from waking a sleeping helper to it running, in ns (0: not
/// measured yet). On this host 20-30 us after a short sleep, 1-3 ms after a
/// millisecond or more: the hypervisor parks an idle vCPU.
static WAKE_LATENCY_NS: AtomicU64 = AtomicU64::new(0);
/// Every this many model runs that take one arm (wake a helper, or stay on
/// their thread), one takes the other, so the choice follows the host.
const PROBE_EVERY: u32 = 16;

/// Which threads take the chunks of parallel calls, from now on in this
/// process: for tests of what each thread's buffers must hold, whoever ran
/// a chunk before. Results are the same bits whichever it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkTakers {
    /// As they come: the caller from the front, helpers from the back.
    Any,
    /// The caller alone, as if no helper could come.
    CallerOnly,
    /// Helpers take what they can; the caller starts only once every chunk
    /// is taken or 100 ms have passed (a helper that never came).
    HelpersFirst,
}

static TAKERS: AtomicUsize = AtomicUsize::new(0);

/// See [`ChunkTakers`].
pub fn set_chunk_takers(takers: ChunkTakers) {
    TAKERS.store(takers as usize, Ordering::Relaxed);
}

fn chunk_takers() -> ChunkTakers {
    match TAKERS.load(Ordering::Relaxed) {
        1 => ChunkTakers::CallerOnly,
        2 => ChunkTakers::HelpersFirst,
        _ => ChunkTakers::Any,
    }
}

/// Set in `Shared::state` once the caller stops admitting helpers.
const CLOSED: usize = 1 << (usize::BITS - 1);

/// The work of one call, as the helpers see it.
struct Shared {
    /// Helpers currently inside the work, plus `CLOSED`.
    state: AtomicUsize,
    /// Helpers that have joined so far; gives each its participant number.
    joined: AtomicUsize,
    /// Chunks taken from the front (low 32 bits, by the caller) and from the
    /// back (high 32 bits, by helpers).
    taken: AtomicU64,
    chunks: usize,
    helper_panicked: AtomicBool,
    /// The caller's closure with its lifetime erased; dereferenced only by a
    /// helper that joined before `CLOSED` was set (see `run_chunks`).
    work: *const (dyn Fn(usize, usize) + Sync + 'static),
}

// SAFETY: `work` points to a `Sync` closure, and is only dereferenced while the
// caller keeps it alive (it waits for every joined helper before returning).
unsafe impl Send for Shared {}
// SAFETY: as above; every other field is atomic or immutable.
unsafe impl Sync for Shared {}

impl Shared {
    fn new(chunks: usize, work: *const (dyn Fn(usize, usize) + Sync + 'static)) -> Shared {
        Shared {
            state: AtomicUsize::new(0),
            joined: AtomicUsize::new(0),
            taken: AtomicU64::new(0),
            chunks,
            helper_panicked: AtomicBool::new(false),
            work,
        }
    }

    /// Take chunks until none are left: the caller from the front, helpers from
    /// the back, so consecutive parallel steps give each thread about the same
    /// part of the data (rows a thread wrote are the rows it reads next, still
    /// in its own cache) while a late or slow helper still takes fewer.
    fn take_chunks(&self, work: &(dyn Fn(usize, usize) + Sync), participant: usize) {
        let _inside = InsideChunks::enter();
        while let Some(chunk) = self.take(participant > 0) {
            work(participant, chunk);
        }
    }

    fn take(&self, from_back: bool) -> Option<usize> {
        let mut taken = self.taken.load(Ordering::Relaxed);
        loop {
            let (front, back) = ((taken & 0xffff_ffff) as usize, (taken >> 32) as usize);
            if front + back >= self.chunks {
                return None;
            }
            let (next, chunk) = if from_back {
                (taken + (1 << 32), self.chunks - 1 - back)
            } else {
                (taken + 1, front)
            };
            match self.taken.compare_exchange_weak(
                taken,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(chunk),
                Err(now) => taken = now,
            }
        }
    }

    fn all_taken(&self) -> bool {
        let taken = self.taken.load(Ordering::Relaxed);
        (taken & 0xffff_ffff) + (taken >> 32) >= self.chunks as u64
    }

    /// Leave no chunk for anyone (a thread panicked).
    fn take_none(&self) {
        self.taken.store(self.chunks as u64, Ordering::Relaxed);
    }

    /// A helper's turn: join unless closed, work, leave.
    fn help(&self) {
        if self.all_taken() {
            // Nothing left: do not join (and keep the caller from waiting on us).
            return;
        }
        let before = self.state.fetch_add(1, Ordering::AcqRel);
        if before & CLOSED == 0 {
            let participant = self.joined.fetch_add(1, Ordering::Relaxed) + 1;
            // SAFETY: joined before `CLOSED`, so the caller is still inside
            // `run_chunks` and waits for `state` to drop back before its
            // closure goes out of scope.
            let work = unsafe { &*self.work };
            if catch_unwind(AssertUnwindSafe(|| self.take_chunks(work, participant))).is_err() {
                self.helper_panicked.store(true, Ordering::Release);
                // The caller may still be taking chunks; stop it.
                self.take_none();
            }
        }
        self.state.fetch_sub(1, Ordering::AcqRel);
    }
}

thread_local! {
    /// Whether this thread is running chunks of a `run_chunks` call.
    static IN_CHUNKS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Whether this thread is in a model run that wakes no helper (`begin_run`).
    static NO_WAKE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
thread_local! {
    /// Sleeping helpers this thread has woken (tests: other tests running
    /// at the same time wake helpers too, so a global count would not do).
    static WOKEN_BY_THIS_THREAD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Marks this thread as running chunks until dropped (also when unwinding).
struct InsideChunks {
    was: bool,
}

impl InsideChunks {
    fn enter() -> InsideChunks {
        InsideChunks {
            was: IN_CHUNKS.with(|inside| inside.replace(true)),
        }
    }
}

impl Drop for InsideChunks {
    fn drop(&mut self) {
        IN_CHUNKS.with(|inside| inside.set(self.was));
    }
}

/// Whether a helper is polling for work or on its way, so a call would not
/// pay a wake-up.
pub(crate) fn helper_awake() -> bool {
    helpers_reachable() > 0
}

/// Helpers a call can reach through the mailbox: polling, or woken and coming.
fn helpers_reachable() -> usize {
    LINGERING.load(Ordering::Acquire) + WAKING.load(Ordering::Acquire)
}

/// Whether a helper is polling for work right now (joins within a microsecond).
pub(crate) fn helper_polling() -> bool {
    LINGERING.load(Ordering::Acquire) > 0
}

/// Whether this thread is in a model run that chose not to wake helpers: its
/// steps split only for helpers already polling.
pub(crate) fn waking_not_worth() -> bool {
    NO_WAKE.with(std::cell::Cell::get)
}

/// The smoothed wake-up latency of a sleeping helper, once one was measured.
pub(crate) fn wake_latency() -> Option<Duration> {
    match WAKE_LATENCY_NS.load(Ordering::Relaxed) {
        0 => None,
        ns => Some(Duration::from_nanos(ns)),
    }
}

/// Fold one measured wake-up latency into the estimate (weight 1/4: a few
/// wake-ups follow a change in how the host schedules the vCPUs).
fn record_wake_latency(latency: Duration) {
    let old = WAKE_LATENCY_NS.load(Ordering::Relaxed);
    // A lost update between two helpers starting at once is harmless.
    WAKE_LATENCY_NS.store(smoothed(old, latency), Ordering::Relaxed);
}

/// The estimate after `old` (ns, 0 = none) meets one more measurement.
fn smoothed(old: u64, latency: Duration) -> u64 {
    let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX).max(1);
    if old == 0 {
        ns
    } else {
        (old - old / 4).saturating_add(ns / 4).max(1)
    }
}

/// What a model run does about helpers (see `begin_run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunPlan {
    /// A helper is polling: the run's steps use it, nothing to wake.
    UsePolling,
    /// Wake a helper now, at the start, so it arrives as early as it can.
    WakeNow,
    /// Wake none: the run is over before a woken helper would help.
    StaySerial,
}

/// What one executable's runs at one batch took when they found every helper
/// asleep, by what they did: woke one, or stayed on their thread. Whether a
/// woken helper pays depends on the host more than on any model (here it
/// started 0.1-2 ms after the wake, and a run it joined late could end up
/// slower than one it never joined), so a run does what was faster.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunHistory {
    batch: usize,
    woke: RecentRuns,
    serial: RecentRuns,
    /// The arm the last recorded runs took, and how many in a row.
    last: Option<RunPlan>,
    streak: u32,
}

/// The last few run times of one arm: their median shrugs off one run the
/// host slowed down, which would sway a smoothed mean for many runs.
#[derive(Debug, Clone, Copy, Default)]
struct RecentRuns {
    times: [Duration; RecentRuns::KEPT],
    count: usize,
}

impl RecentRuns {
    const KEPT: usize = 4;

    fn push(&mut self, took: Duration) {
        self.times[self.count % Self::KEPT] = took;
        self.count += 1;
    }

    /// Runs an arm needs before its time counts against the other's.
    const ENOUGH: usize = 3;

    /// The median of the kept times (of the middle two for an even count).
    fn median(&self) -> Option<Duration> {
        let n = self.count.min(Self::KEPT);
        if n == 0 {
            return None;
        }
        let mut sorted = self.times;
        sorted[..n].sort_unstable();
        Some(if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2
        })
    }

    fn enough(&self) -> bool {
        self.count >= Self::ENOUGH
    }
}

impl RunHistory {
    /// Fold in a run at `batch` that followed `plan` and took `took`. A run
    /// at another batch starts the history again, and is not counted: the
    /// first run at a batch also sets up its buffers.
    pub(crate) fn record(&mut self, batch: usize, plan: Option<RunPlan>, took: Duration) {
        let arm = match plan {
            Some(arm @ (RunPlan::WakeNow | RunPlan::StaySerial)) => arm,
            // Helpers polling (or no helpers at all): nothing to learn.
            _ => return,
        };
        if batch != self.batch {
            *self = RunHistory {
                batch,
                ..RunHistory::default()
            };
            return;
        }
        if arm == RunPlan::WakeNow {
            self.woke.push(took);
        } else {
            self.serial.push(took);
        }
        if self.last == Some(arm) {
            self.streak = self.streak.saturating_add(1);
        } else {
            self.last = Some(arm);
            self.streak = 1;
        }
    }

    /// Median recent times (woke, serial) of runs at `batch`.
    fn times(&self, batch: usize) -> (Option<Duration>, Option<Duration>) {
        if batch == self.batch {
            (self.woke.median(), self.serial.median())
        } else {
            (None, None)
        }
    }

    /// The recent runs (woke, serial) at `batch`.
    fn runs(&self, batch: usize) -> (RecentRuns, RecentRuns) {
        if batch == self.batch {
            (self.woke, self.serial)
        } else {
            (RecentRuns::default(), RecentRuns::default())
        }
    }

    /// Whether the arm other than the one taken lately is due for a try,
    /// so the choice follows the host.
    fn probe_due(&self) -> bool {
        self.streak + 1 >= PROBE_EVERY
    }

    /// The arm not taken lately.
    fn other_arm(&self) -> RunPlan {
        match self.last {
            Some(RunPlan::WakeNow) => RunPlan::StaySerial,
            _ => RunPlan::WakeNow,
        }
    }
}

/// The plan for a run at `batch` when a woken helper starts `wake_latency`
/// after the wake. With helpers polling, use them. Then a model: a helper
/// arriving at time L into a run of T saves about (T - L) / 2 on two threads,
/// and waking costs the caller a few microseconds plus finer chunks of work
/// while it waits, so a run shorter than 1.5 L stays serial (every
/// `PROBE_EVERY` runs one wakes a helper, to measure the latency again).
/// Otherwise measurements decide: once runs that woke a helper and runs that
/// did not were each timed `RecentRuns::ENOUGH` times, take the faster, and
/// every `PROBE_EVERY` runs the other; until then, time the arm with fewer
/// runs (one wake-up that took milliseconds must not settle it). (Letting measurements
/// decide short runs too would follow noise: a wake-up a run ends before
/// costs a few microseconds, well within the host's jitter.)
pub(crate) fn plan_run(
    polling: bool,
    history: &RunHistory,
    batch: usize,
    wake_latency: Option<Duration>,
) -> RunPlan {
    if polling {
        return RunPlan::UsePolling;
    }
    let (woke, serial) = history.times(batch);
    let too_short = match (serial.or(woke), wake_latency) {
        (Some(run), Some(latency)) => 2 * run.as_nanos() < 3 * latency.as_nanos(),
        _ => false,
    };
    if too_short {
        return if history.last == Some(RunPlan::StaySerial) && history.probe_due() {
            RunPlan::WakeNow
        } else {
            RunPlan::StaySerial
        };
    }
    let (woke_runs, serial_runs) = history.runs(batch);
    if !(woke_runs.enough() && serial_runs.enough()) {
        return if serial_runs.count < woke_runs.count {
            RunPlan::StaySerial
        } else {
            RunPlan::WakeNow
        };
    }
    match (woke, serial) {
        (Some(woke), Some(serial)) => {
            let faster = if woke < serial {
                RunPlan::WakeNow
            } else {
                RunPlan::StaySerial
            };
            if history.last == Some(faster) && history.probe_due() {
                history.other_arm()
            } else {
                faster
            }
        }
        (Some(_), None) => RunPlan::StaySerial,
        _ => RunPlan::WakeNow,
    }
}

/// A model run's choice about helpers, in force until dropped.
pub(crate) struct RunHelpers {
    /// `NO_WAKE` as it was before the run, when this run set it.
    restore: Option<bool>,
    plan: Option<RunPlan>,
}

impl RunHelpers {
    /// What this run does about helpers (`None`: one thread, no choice).
    pub(crate) fn plan(&self) -> Option<RunPlan> {
        self.plan
    }
}

impl Drop for RunHelpers {
    fn drop(&mut self) {
        if let Some(was) = self.restore {
            NO_WAKE.with(|no_wake| no_wake.set(was));
        }
    }
}

/// Start a model run at `batch` on up to `threads` threads: per `plan_run`
/// and what `history` learned, use a polling helper, wake one now, or keep
/// the whole run on this thread. A run between sparse requests is often
/// shorter than a sleeping helper's wake-up here (up to 1-3 ms): waking one
/// then only costs the caller, and finer chunks of work for a helper that
/// never comes. Steps inside a run that stays serial split only for helpers
/// that are already polling. Record the run's time in `history` with the
/// returned plan.
pub(crate) fn begin_run(threads: usize, history: &RunHistory, batch: usize) -> RunHelpers {
    let mut run = RunHelpers {
        restore: None,
        plan: None,
    };
    if threads < 2 || IN_CHUNKS.with(std::cell::Cell::get) {
        return run;
    }
    let Some(pool) = helper_pool() else {
        return run;
    };
    let plan = plan_run(helper_polling(), history, batch, wake_latency());
    match plan {
        RunPlan::UsePolling => {}
        RunPlan::WakeNow => {
            if WAKING.load(Ordering::Acquire) == 0 {
                wake_one(pool);
            }
        }
        RunPlan::StaySerial => {
            run.restore = Some(NO_WAKE.with(|no_wake| no_wake.replace(true)));
        }
    }
    run.plan = Some(plan);
    run
}

fn mailbox() -> std::sync::MutexGuard<'static, Vec<Arc<Shared>>> {
    // The mailbox holds plain values: a panic elsewhere cannot leave it inconsistent.
    MAILBOX
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A pool thread's turn after a wake-up at `woken_at`: poll the mailbox for
/// calls, helping with each, until `LINGER` passes without one.
fn helper_job(woken_at: Instant) {
    record_wake_latency(woken_at.elapsed());
    LINGERING.fetch_add(1, Ordering::AcqRel);
    // Counted as lingering before it stops counting as waking, so a call in
    // between still sees a helper it can reach.
    WAKING.fetch_sub(1, Ordering::AcqRel);
    let mut deadline = Instant::now() + LINGER;
    loop {
        if POSTED.load(Ordering::Acquire) > 0 {
            let job = {
                let mut posted = mailbox();
                let job = posted.pop();
                POSTED.store(posted.len(), Ordering::Release);
                job
            };
            if let Some(job) = job {
                LINGERING.fetch_sub(1, Ordering::AcqRel);
                job.help();
                drop(job);
                LINGERING.fetch_add(1, Ordering::AcqRel);
                deadline = Instant::now() + LINGER;
                continue;
            }
        }
        if Instant::now() >= deadline {
            break;
        }
        for _ in 0..64 {
            std::hint::spin_loop();
        }
    }
    LINGERING.fetch_sub(1, Ordering::AcqRel);
}

/// Whether the helper threads have been started (only a kernel asked to run
/// on more than one thread starts them).
pub(crate) fn started() -> bool {
    POOL.get().is_some()
}

static POOL: OnceLock<Option<Pool>> = OnceLock::new();

/// The helper threads. Each sleeps in `park` until a call or a run wakes it
/// (`wake_one`): a futex wake that allocates nothing, unlike queueing a job
/// on a general-purpose pool, so a run that wakes a helper allocates nothing
/// either.
struct Pool {
    helpers: Vec<Arc<Sleeper>>,
    /// The origin of `Sleeper::woken_at_ns`.
    epoch: Instant,
}

/// One helper thread's bed.
struct Sleeper {
    thread: std::thread::Thread,
    /// Asleep, or about to be: a waker may claim it (and clears this).
    asleep: AtomicBool,
    /// Set by the waker that claimed it; the thread sleeps until it sees it.
    woken: AtomicBool,
    /// When it was woken, in ns since `Pool::epoch`.
    woken_at_ns: AtomicU64,
}

/// Helper threads shared by every parallel kernel: one fewer than the
/// machine's cores, as the calling thread works too. Started on first use;
/// `None` on one core (a helper could only take turns with the caller) or if
/// the system refuses threads: kernels then run serially.
fn helper_pool() -> Option<&'static Pool> {
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let epoch = Instant::now();
        let helpers: Vec<Arc<Sleeper>> = (0..cores.saturating_sub(1))
            .map_while(|i| start_helper(i, epoch))
            .collect();
        // Room for every helper's entry of a few calls at once: posting
        // then allocates nothing.
        mailbox().reserve(4 * helpers.len());
        (!helpers.is_empty()).then_some(Pool { helpers, epoch })
    })
    .as_ref()
}

/// Start helper thread `index`, asleep; `None` if the system refuses.
fn start_helper(index: usize, epoch: Instant) -> Option<Arc<Sleeper>> {
    // The thread learns its bed once it exists, and says when it runs: the
    // pool is ready only then, so a thread's own start-up (which allocates)
    // never lands in a later kernel call.
    let (send_bed, receive_bed) = std::sync::mpsc::sync_channel::<Arc<Sleeper>>(1);
    let (send_running, receive_running) = std::sync::mpsc::sync_channel::<()>(1);
    let handle = std::thread::Builder::new()
        .name(format!("workbench-kernels-{index}"))
        .spawn(move || {
            if let Ok(bed) = receive_bed.recv() {
                if send_running.send(()).is_ok() {
                    helper_thread(&bed, epoch);
                }
            }
        })
        .ok()?;
    let bed = Arc::new(Sleeper {
        thread: handle.thread().clone(),
        asleep: AtomicBool::new(true),
        woken: AtomicBool::new(false),
        woken_at_ns: AtomicU64::new(0),
    });
    send_bed.send(Arc::clone(&bed)).ok()?;
    receive_running.recv().ok()?;
    Some(bed)
}

/// A helper thread's life: sleep until woken, help and poll, sleep again.
fn helper_thread(bed: &Sleeper, epoch: Instant) {
    loop {
        // `park` may return without an unpark: only the flag counts.
        while !bed.woken.swap(false, Ordering::AcqRel) {
            std::thread::park();
        }
        let woken_at = epoch + Duration::from_nanos(bed.woken_at_ns.load(Ordering::Acquire));
        helper_job(woken_at);
        // A waker that claims the bed from here on sets `woken` and unparks;
        // the `swap` above sees it whether or not `park` was reached.
        bed.asleep.store(true, Ordering::Release);
    }
}

/// Wake one sleeping helper, if any is asleep; counted in `WAKING` until it
/// runs. Returns whether one was woken.
fn wake_one(pool: &Pool) -> bool {
    for bed in &pool.helpers {
        if bed
            .asleep
            .compare_exchange(true, false, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            WAKING.fetch_add(1, Ordering::AcqRel);
            let since_epoch = u64::try_from(pool.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
            bed.woken_at_ns.store(since_epoch, Ordering::Release);
            bed.woken.store(true, Ordering::Release);
            bed.thread.unpark();
            return true;
        }
    }
    false
}

/// How many helpers a call asking for `threads` threads in total can have.
pub(crate) fn helpers_for(threads: usize) -> usize {
    // Single-threaded use never starts the pool, and a chunk runs on its thread.
    if threads < 2 || IN_CHUNKS.with(std::cell::Cell::get) {
        return 0;
    }
    let available = helper_pool().map_or(0, |pool| pool.helpers.len());
    (threads - 1).min(available)
}

/// A caller's records for its `run_chunks` calls, reused once no helper
/// holds one any more. A helper holds a record from taking the call from the
/// mailbox until it has left (a few microseconds past the call's end if it
/// came late), and holds one at a time: so with one record per helper and one
/// more, made at the first parallel call, one is always free and later calls
/// allocate nothing.
#[derive(Default)]
pub(crate) struct ChunkRecord(Vec<Arc<Shared>>);

impl Clone for ChunkRecord {
    /// A clone starts with no records of its own.
    fn clone(&self) -> ChunkRecord {
        ChunkRecord::default()
    }
}

impl std::fmt::Debug for ChunkRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChunkRecord({} kept)", self.0.len())
    }
}

impl ChunkRecord {
    /// Make the records once the helper threads run, so that a call site
    /// whose first calls stay serial (too little work, no helper awake)
    /// allocates nothing when a later call splits. Serial paths that never
    /// reach `run_chunks` call this themselves. (Work inside a chunk never
    /// splits: it needs none.)
    pub(crate) fn prepare(&mut self) {
        if self.0.is_empty() && !IN_CHUNKS.with(std::cell::Cell::get) {
            if let Some(Some(pool)) = POOL.get() {
                let no_work: *const (dyn Fn(usize, usize) + Sync + 'static) = &|_, _| {};
                self.0 = (0..=pool.helpers.len())
                    .map(|_| Arc::new(Shared::new(0, no_work)))
                    .collect();
            }
        }
    }

    /// A record no helper holds, set up for `chunks` and `work`.
    fn take(
        &mut self,
        chunks: usize,
        work: *const (dyn Fn(usize, usize) + Sync + 'static),
    ) -> Arc<Shared> {
        self.prepare();
        for record in &mut self.0 {
            if let Some(idle) = Arc::get_mut(record) {
                *idle = Shared::new(chunks, work);
                return Arc::clone(record);
            }
        }
        // Not reached while each helper holds one record at most; kept, so
        // that it is not made again.
        let record = Arc::new(Shared::new(chunks, work));
        self.0.push(Arc::clone(&record));
        record
    }
}

/// Run `work(participant, chunk)` for every chunk in `0..chunks`, each exactly
/// once, on the calling thread (participant 0) and up to `helpers` pool
/// threads (participants 1..=helpers, each number used by one thread at a
/// time). Returns once every chunk is done.
pub(crate) fn run_chunks(
    record: &mut ChunkRecord,
    helpers: usize,
    chunks: usize,
    work: &(dyn Fn(usize, usize) + Sync),
) {
    // Chunk counts are packed in 32 bits (kernels use dozens).
    let helpers = if chunks > u32::MAX as usize {
        0
    } else {
        helpers.min(chunks.saturating_sub(1))
    };
    let pool = if helpers > 0 { helper_pool() } else { None };
    record.prepare();
    // Polling (or already woken) helpers get the call through the mailbox,
    // and sleeping ones are woken to take it from there, unless this run
    // chose to wake none.
    let takers = chunk_takers();
    let helpers = if takers == ChunkTakers::CallerOnly {
        0
    } else {
        helpers
    };
    let reachable = helpers_reachable();
    let to_post = if waking_not_worth() && takers == ChunkTakers::Any {
        helpers.min(reachable)
    } else {
        helpers
    };
    let (Some(pool), true) = (pool, to_post > 0) else {
        (0..chunks).for_each(|chunk| work(0, chunk));
        return;
    };
    // SAFETY: only the lifetime is erased. The pointer is dereferenced by
    // helpers that joined before `CLOSED` is set below, and this function
    // does not return until all of them have left.
    let erased: *const (dyn Fn(usize, usize) + Sync + 'static) = unsafe {
        std::mem::transmute::<
            *const (dyn Fn(usize, usize) + Sync + '_),
            *const (dyn Fn(usize, usize) + Sync + 'static),
        >(work)
    };
    let shared = record.take(chunks, erased);
    {
        let mut posted = mailbox();
        posted.extend((0..to_post).map(|_| Arc::clone(&shared)));
        POSTED.store(posted.len(), Ordering::Release);
    }
    for _ in reachable.min(to_post)..to_post {
        if !wake_one(pool) {
            // Every helper is busy: one that finishes polls the mailbox.
            break;
        }
        #[cfg(test)]
        WOKEN_BY_THIS_THREAD.with(|woken| woken.set(woken.get() + 1));
    }
    if takers == ChunkTakers::HelpersFirst {
        let deadline = Instant::now() + Duration::from_millis(100);
        while !shared.all_taken() && Instant::now() < deadline {
            std::thread::yield_now();
        }
    }
    // If the caller's own work panics, still close and wait before unwinding,
    // so no helper is left reading a dead closure.
    let own = catch_unwind(AssertUnwindSafe(|| shared.take_chunks(work, 0)));
    if own.is_err() {
        shared.take_none();
    }
    shared.state.fetch_or(CLOSED, Ordering::AcqRel);
    let mut spins = 0u32;
    while shared.state.load(Ordering::Acquire) & !CLOSED != 0 {
        if spins < 1 << 12 {
            std::hint::spin_loop();
            spins += 1;
        } else {
            std::thread::yield_now();
        }
    }
    {
        // Entries no helper took (none came in time) are dropped here.
        let mut posted = mailbox();
        posted.retain(|job| !Arc::ptr_eq(job, &shared));
        POSTED.store(posted.len(), Ordering::Release);
    }
    if let Err(payload) = own {
        std::panic::resume_unwind(payload);
    }
    let helper_panicked = shared.helper_panicked.load(Ordering::Acquire);
    assert!(!helper_panicked, "a kernel helper thread panicked");
}

/// [`run_chunks`] for work that can fail: every chunk still runs, and the
/// first error reported is returned.
pub(crate) fn try_run_chunks<E: Send>(
    record: &mut ChunkRecord,
    helpers: usize,
    chunks: usize,
    work: &(dyn Fn(usize, usize) -> Result<(), E> + Sync),
) -> Result<(), E> {
    let failure = Mutex::new(None);
    run_chunks(record, helpers, chunks, &|participant, chunk| {
        if let Err(e) = work(participant, chunk) {
            // A plain value: a panic elsewhere cannot leave it inconsistent.
            let mut first = failure.lock().unwrap_or_else(|p| p.into_inner());
            first.get_or_insert(e);
        }
    });
    match failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A participant's buffers that grow when its chunks first need them.
pub(crate) trait GrowLike {
    /// Grow this one's buffers to hold at least what `other`'s hold.
    fn grow_like(&mut self, other: &Self);
}

/// After a parallel call: grow every participant's buffers to the largest
/// any of them has. Which thread takes which chunk changes from call to
/// call, so without this a helper taking a chunk it never took before would
/// allocate in a later run.
pub(crate) fn equalize<T: GrowLike>(participants: &mut [T]) {
    if let Some((first, rest)) = participants.split_first_mut() {
        rest.iter().for_each(|other| first.grow_like(other));
        rest.iter_mut().for_each(|other| other.grow_like(first));
    }
}

/// Room in `v` for at least as many items as `other` has room for. Exact:
/// `reserve`'s doubling would have two buffers outgrow each other in turn.
pub(crate) fn reserve_like<T, U>(v: &mut Vec<T>, other: &Vec<U>) {
    if v.capacity() < other.capacity() {
        v.reserve_exact(other.capacity() - v.len());
    }
}

/// Floats on cache lines of their own: a thread's hot scratch (written every
/// few cycles) must not share a line with another thread's, which two small
/// allocations side by side would.
#[derive(Debug, Default)]
pub(crate) struct OwnLines {
    buf: Vec<f32>,
    start: usize,
    len: usize,
}

/// Floats per cache line.
pub(crate) const LINE_FLOATS: usize = pages::CACHE_LINE / std::mem::size_of::<f32>();

impl OwnLines {
    pub(crate) fn new(len: usize) -> OwnLines {
        // Up to a line before the start to align it, and the end rounded up to a line.
        let buf = vec![0.0f32; len.div_ceil(LINE_FLOATS) * LINE_FLOATS + LINE_FLOATS];
        let start = pages::line_offset(&buf);
        OwnLines { buf, start, len }
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.buf[self.start..self.start + self.len]
    }
}

/// Per-participant state for one `run_chunks` call: participant `p` uses entry `p`.
pub(crate) struct PerParticipant<'a, T> {
    items: *mut T,
    len: usize,
    _borrow: PhantomData<&'a mut [T]>,
}

// SAFETY: entries are handed out one per participant (see `get`); sending them
// to other threads is sound when `T` is `Send`.
unsafe impl<T: Send> Send for PerParticipant<'_, T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for PerParticipant<'_, T> {}

impl<'a, T> PerParticipant<'a, T> {
    pub(crate) fn new(items: &'a mut [T]) -> PerParticipant<'a, T> {
        PerParticipant {
            items: items.as_mut_ptr(),
            len: items.len(),
            _borrow: PhantomData,
        }
    }

    /// Entry `participant`, if there is one.
    ///
    /// # Safety
    /// No other thread uses this entry meanwhile: call it with the participant
    /// number `run_chunks` passed to this thread.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn get(&self, participant: usize) -> Option<&mut T> {
        // SAFETY: in bounds (checked), and exclusive by the caller's guarantee.
        (participant < self.len).then(|| unsafe { &mut *self.items.add(participant) })
    }
}

/// An output buffer several participants write at once, each its own
/// elements (f32 by default; the int8 kernels also write u8 and i32).
pub(crate) struct SharedOut<'a, T = f32> {
    data: *mut T,
    len: usize,
    _borrow: PhantomData<&'a mut [T]>,
}

// SAFETY: only raw access across threads; the callers of `slice` and `as_ptr`
// guarantee that no two threads touch the same element.
unsafe impl<T: Send> Send for SharedOut<'_, T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for SharedOut<'_, T> {}

impl<'a, T> SharedOut<'a, T> {
    pub(crate) fn new(data: &'a mut [T]) -> SharedOut<'a, T> {
        SharedOut {
            data: data.as_mut_ptr(),
            len: data.len(),
            _borrow: PhantomData,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The start of the buffer, for kernels that write scattered elements.
    pub(crate) fn as_ptr(&self) -> *mut T {
        self.data
    }

    /// Elements `range`, if inside the buffer.
    ///
    /// # Safety
    /// No other thread touches these elements while the slice lives.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice(&self, range: Range<usize>) -> Option<&mut [T]> {
        let inside = range.start <= range.end && range.end <= self.len;
        // SAFETY: inside the buffer (checked), exclusive by the caller's guarantee.
        inside.then(|| unsafe {
            std::slice::from_raw_parts_mut(self.data.add(range.start), range.len())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A thread's scratch starts on a cache line of its own.
    #[test]
    fn own_lines_start_on_a_cache_line() {
        let mut lines = OwnLines::new(5);
        assert_eq!(
            lines.as_mut_slice().as_ptr() as usize % pages::CACHE_LINE,
            0
        );
    }

    /// These tests share the one pool and one of them occupies it: one at a time.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    /// A history of `runs` runs at `batch` that followed `plan` and took `took`.
    fn history_of(batch: usize, runs: &[(RunPlan, Duration)]) -> RunHistory {
        let mut history = RunHistory::default();
        // The first run at a batch is not counted.
        history.record(batch, Some(RunPlan::WakeNow), Duration::from_secs(1));
        assert_eq!(history.times(batch), (None, None));
        for &(plan, took) in runs {
            history.record(batch, Some(plan), took);
        }
        history
    }

    #[test]
    fn until_both_ways_are_timed_a_run_wakes_a_helper_if_it_would_arrive_in_time() {
        let ms = Duration::from_millis;
        let us = Duration::from_micros;
        let (wake, serial) = (RunPlan::WakeNow, RunPlan::StaySerial);
        let none = RunHistory::default();
        // A polling helper is used whatever is known.
        let short = history_of(8, &[(serial, us(300))]);
        assert_eq!(plan_run(true, &short, 8, Some(ms(3))), RunPlan::UsePolling);
        // Nothing known yet: wake, and learn.
        assert_eq!(plan_run(false, &none, 8, None), wake);
        assert_eq!(plan_run(false, &none, 8, Some(ms(3))), wake);
        assert_eq!(plan_run(false, &short, 8, None), wake);
        // A 0.3 ms run against a 3 ms wake-up stays serial; at another
        // batch nothing is known.
        assert_eq!(plan_run(false, &short, 8, Some(ms(3))), serial);
        assert_eq!(plan_run(false, &short, 1, Some(ms(3))), wake);
        // ... except every PROBE_EVERY runs, to measure the latency again.
        let runs = vec![(serial, us(300)); PROBE_EVERY as usize - 1];
        assert_eq!(plan_run(false, &history_of(8, &runs), 8, Some(ms(3))), wake);
        // A 9 ms run against a 3 ms wake-up, or a 0.3 ms run against 25 us: wake.
        let long = history_of(8, &[(serial, ms(9))]);
        assert_eq!(plan_run(false, &long, 8, Some(ms(3))), wake);
        assert_eq!(plan_run(false, &short, 8, Some(us(25))), wake);
        // The boundary: 1.5 wake-ups.
        let at = |run| history_of(8, &[(serial, run)]);
        assert_eq!(plan_run(false, &at(us(149)), 8, Some(us(100))), serial);
        assert_eq!(plan_run(false, &at(us(150)), 8, Some(us(100))), wake);
        // Only runs that woke a helper timed: time a serial one next.
        let woke_only = history_of(8, &[(wake, ms(2))]);
        assert_eq!(plan_run(false, &woke_only, 8, Some(us(100))), serial);
    }

    #[test]
    fn once_both_ways_are_timed_a_run_takes_the_faster_and_now_and_then_the_other() {
        let ms = Duration::from_millis;
        let (wake, serial) = (RunPlan::WakeNow, RunPlan::StaySerial);
        // Woken helpers made runs slower (as they did here for `convnet-224`
        // at batch 1 with a 0.5 ms wake-up): stay serial, whatever the model says.
        let (fast, slow) = (ms(16) / 10, ms(19) / 10);
        let timed = [(serial, fast), (wake, slow)].repeat(RecentRuns::ENOUGH);
        // Until each way has run that often, the one with fewer runs goes next.
        let partly = history_of(1, &timed[..3]);
        assert_eq!(plan_run(false, &partly, 1, Some(ms(1) / 2)), wake);
        let partly = history_of(1, &timed[..4]);
        assert_eq!(plan_run(false, &partly, 1, Some(ms(1) / 2)), wake);
        let partly = history_of(1, &timed[1..4]);
        assert_eq!(plan_run(false, &partly, 1, Some(ms(1) / 2)), serial);
        let mut history = history_of(1, &timed);
        let latency = Some(ms(1) / 2);
        let mut plans = Vec::new();
        for _ in 0..2 * PROBE_EVERY {
            let plan = plan_run(false, &history, 1, latency);
            plans.push(plan);
            let took = if plan == wake { ms(19) } else { ms(16) } / 10;
            history.record(1, Some(plan), took);
        }
        let woke = plans.iter().filter(|&&p| p == wake).count();
        assert_eq!(woke, 2, "one probe per PROBE_EVERY runs: {plans:?}");
        assert_eq!(plans[0], serial);
        // A run too short for a woken helper to arrive in stays serial,
        // whatever the noise made of the two times.
        let us = Duration::from_micros;
        let tiny = history_of(1, &[(serial, us(25)), (wake, us(22))]);
        assert_eq!(plan_run(false, &tiny, 1, Some(us(45))), serial);
        // And the other way round.
        let timed = [(serial, ms(3)), (wake, ms(2))].repeat(RecentRuns::ENOUGH);
        let history = history_of(1, &timed);
        assert_eq!(plan_run(false, &history, 1, Some(ms(1))), wake);
        // The times are the median of the last four: one slow run does not
        // sway them, and they follow the host.
        let mut history = history_of(1, &[(serial, ms(4)), (serial, ms(6))]);
        assert_eq!(history.times(1), (None, Some(ms(5))));
        history.record(1, Some(serial), ms(40));
        assert_eq!(history.times(1), (None, Some(ms(6))));
        for _ in 0..3 {
            history.record(1, Some(serial), ms(2));
        }
        assert_eq!(history.times(1), (None, Some(ms(2))));
        // Runs with a polling helper teach nothing; another batch starts over,
        // its first run not counted.
        history.record(1, Some(RunPlan::UsePolling), ms(1));
        history.record(1, None, ms(1));
        assert_eq!(history.times(1), (None, Some(ms(2))));
        history.record(2, Some(wake), ms(70));
        assert_eq!(history.times(2), (None, None));
        assert_eq!(history.times(1), (None, None));
        history.record(2, Some(wake), ms(7));
        assert_eq!(history.times(2), (Some(ms(7)), None));
    }

    #[test]
    fn the_wake_latency_estimate_follows_measurements() {
        let us = Duration::from_micros;
        let first = smoothed(0, us(2000));
        assert_eq!(first, 2_000_000);
        // A quarter of the way to each new measurement.
        assert_eq!(smoothed(first, us(1000)), 1_750_000);
        let mut estimate = first;
        for _ in 0..40 {
            estimate = smoothed(estimate, us(25));
        }
        assert!((24_000..=26_000).contains(&estimate), "{estimate}");
        // Never 0 (which means "not measured").
        assert_eq!(smoothed(0, Duration::ZERO), 1);
    }

    #[test]
    fn a_serial_run_stops_its_steps_waking_helpers_until_it_ends() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        assert!(!waking_not_worth());
        let serial = RunHelpers {
            restore: Some(NO_WAKE.with(|no_wake| no_wake.replace(true))),
            plan: Some(RunPlan::StaySerial),
        };
        assert!(waking_not_worth());
        // Once no helper is polling or on its way (a test before may have
        // left one: it polls for LINGER, then sleeps), a parallel call in
        // this run wakes none. (A helper that another test, running at the
        // same time, has woken may still join: a polling helper is used by
        // design, so the check is on this thread's wake-ups, not on who ran.)
        let deadline = Instant::now() + Duration::from_secs(10);
        while helpers_reachable() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        // Else the run below would post to the helper, wake none either way,
        // and the check would hold whatever the flag did.
        assert_eq!(helpers_reachable(), 0, "a helper still polling after 10 s");
        let woken = || WOKEN_BY_THIS_THREAD.with(std::cell::Cell::get);
        let woken_before = woken();
        let chunks_run = AtomicUsize::new(0);
        // Chunks long enough (8 x 3 ms) that a woken helper would join.
        run_chunks(&mut ChunkRecord::default(), 1, 8, &|_, _| {
            chunks_run.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(3));
        });
        assert_eq!(chunks_run.into_inner(), 8);
        assert_eq!(woken(), woken_before, "a run that wakes no helper woke one");
        drop(serial);
        assert!(!waking_not_worth());
        // One thread's runs never touch the flag.
        let one_thread = begin_run(1, &RunHistory::default(), 1);
        assert_eq!(one_thread.plan(), None);
        drop(one_thread);
        assert!(!waking_not_worth());
    }

    #[test]
    fn work_inside_a_chunk_does_not_split_again() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        assert_eq!(helpers_for(2), usize::from(helper_pool().is_some()));
        let inner = Mutex::new(Vec::new());
        run_chunks(&mut ChunkRecord::default(), 1, 4, &|_, _| {
            inner.lock().expect("lock").push(helpers_for(2));
        });
        assert_eq!(inner.into_inner().expect("lock"), vec![0; 4]);
        // And outside again afterwards.
        assert_eq!(helpers_for(2), usize::from(helper_pool().is_some()));
    }

    #[test]
    fn a_record_no_helper_holds_is_reused() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let Some(pool) = helper_pool() else {
            return;
        };
        let mut record = ChunkRecord::default();
        let kept = |record: &ChunkRecord| -> Vec<*const Shared> {
            record.0.iter().map(Arc::as_ptr).collect()
        };
        run_chunks(&mut record, 1, 4, &|_, _| {});
        // One per helper and one more.
        let first = kept(&record);
        assert_eq!(first.len(), pool.helpers.len() + 1);
        for _ in 0..50 {
            run_chunks(&mut record, 1, 4, &|_, _| {});
            assert_eq!(kept(&record), first, "a record was made again");
        }
        // Every record held (as no helper does): one more is made, and kept.
        let held: Vec<Arc<Shared>> = record.0.clone();
        run_chunks(&mut record, 1, 4, &|_, _| {});
        assert_eq!(kept(&record).len(), first.len() + 1);
        assert_eq!(kept(&record)[..first.len()], first[..]);
        drop(held);
        run_chunks(&mut record, 1, 4, &|_, _| {});
        assert_eq!(kept(&record).len(), first.len() + 1);
    }

    struct Buffers(Vec<f32>, Vec<u8>);

    impl GrowLike for Buffers {
        fn grow_like(&mut self, other: &Buffers) {
            reserve_like(&mut self.0, &other.0);
            reserve_like(&mut self.1, &other.1);
        }
    }

    #[test]
    fn equalized_buffers_hold_the_largest_and_stop_growing() {
        let mut participants = vec![
            Buffers(Vec::with_capacity(100), Vec::new()),
            Buffers(vec![1.0; 150], Vec::with_capacity(7)),
            Buffers(Vec::with_capacity(3), Vec::with_capacity(40)),
        ];
        equalize(&mut participants);
        let capacities = |ps: &[Buffers]| -> Vec<(usize, usize)> {
            ps.iter()
                .map(|b| (b.0.capacity(), b.1.capacity()))
                .collect()
        };
        let after = capacities(&participants);
        assert!(after.iter().all(|&(f, u)| f >= 150 && u >= 40), "{after:?}");
        // Contents are left alone.
        assert_eq!(participants[1].0, vec![1.0; 150]);
        assert!(participants[0].0.is_empty());
        // Equal already: nothing grows any more (doubling reserves would
        // have each outgrow the other, call after call).
        for _ in 0..10 {
            equalize(&mut participants);
        }
        assert_eq!(capacities(&participants), after);
    }

    #[test]
    fn own_lines_start_on_a_line_and_hold_the_length() {
        for len in [0, 1, 15, 16, 17, 64] {
            let mut lines = OwnLines::new(len);
            let slice = lines.as_mut_slice();
            assert_eq!(slice.len(), len);
            assert_eq!(slice.as_ptr() as usize % 64, 0, "len {len}");
        }
    }

    #[test]
    fn every_chunk_runs_once_with_distinct_participants() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        for helpers in [0, 1, 3] {
            for chunks in [0, 1, 2, 7, 64] {
                let seen = Mutex::new(vec![0u32; chunks]);
                let participants = Mutex::new(Vec::new());
                let busy: Vec<AtomicBool> = (0..=helpers).map(|_| AtomicBool::new(false)).collect();
                run_chunks(
                    &mut ChunkRecord::default(),
                    helpers,
                    chunks,
                    &|participant, chunk| {
                        // No two threads use one participant number at once.
                        assert!(!busy[participant].swap(true, Ordering::AcqRel));
                        seen.lock().expect("lock")[chunk] += 1;
                        participants.lock().expect("lock").push(participant);
                        std::thread::yield_now();
                        busy[participant].store(false, Ordering::Release);
                    },
                );
                assert!(seen.into_inner().expect("lock").iter().all(|&n| n == 1));
                let max_participant = helpers.min(helpers_for(helpers + 1));
                assert!(participants
                    .into_inner()
                    .expect("lock")
                    .iter()
                    .all(|&p| p <= max_participant));
            }
        }
    }

    #[test]
    fn a_helper_does_work_when_the_caller_is_slow() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        if helpers_for(2) == 0 {
            return;
        }
        // The caller sleeps in its first chunk; the helper takes the others,
        // from the back.
        let by_helper = Mutex::new(Vec::new());
        run_chunks(&mut ChunkRecord::default(), 1, 8, &|participant, chunk| {
            if participant == 0 {
                std::thread::sleep(std::time::Duration::from_millis(200));
            } else {
                by_helper.lock().expect("lock").push(chunk);
            }
        });
        let by_helper = by_helper.into_inner().expect("lock");
        assert!(!by_helper.is_empty());
        let from_the_back: Vec<usize> = (0..by_helper.len()).map(|i| 7 - i).collect();
        assert_eq!(by_helper, from_the_back);
    }

    #[test]
    fn a_late_helper_is_not_waited_for() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let helpers = helpers_for(usize::MAX);
        if helpers == 0 {
            return;
        }
        // Keep every helper busy inside a call on another thread (its own
        // chunk waits until they have all joined, theirs until released), so
        // no helper can start on the next call: that call must still return
        // once its chunks are done.
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let (occupied_tx, occupied_rx) = std::sync::mpsc::channel::<bool>();
        let occupier = std::thread::spawn(move || {
            let joined = AtomicUsize::new(0);
            run_chunks(
                &mut ChunkRecord::default(),
                helpers,
                helpers + 1,
                &|participant, _| {
                    if participant == 0 {
                        // Generous: under a full test run on a loaded 2-core
                        // host a helper once took over 10 s to wake and join
                        // (another test's call may hold it).
                        let deadline = Instant::now() + Duration::from_secs(60);
                        while joined.load(Ordering::Acquire) < helpers && Instant::now() < deadline
                        {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        let _ = occupied_tx.send(joined.load(Ordering::Acquire) == helpers);
                    } else {
                        joined.fetch_add(1, Ordering::AcqRel);
                        let _ = release_rx.lock().expect("lock").recv();
                    }
                },
            );
        });
        let occupied = occupied_rx.recv().expect("the occupying call reports");
        // On another thread, so a call that waited for a helper fails the
        // test after a timeout instead of hanging it.
        let (done_tx, done_rx) = std::sync::mpsc::channel::<usize>();
        std::thread::spawn(move || {
            let done = AtomicUsize::new(0);
            let only_caller = AtomicBool::new(true);
            run_chunks(&mut ChunkRecord::default(), 1, 4, &|participant, _| {
                only_caller.fetch_and(participant == 0, Ordering::Relaxed);
                done.fetch_add(1, Ordering::Relaxed);
            });
            if only_caller.load(Ordering::Relaxed) {
                let _ = done_tx.send(done.load(Ordering::Relaxed));
            }
        });
        let chunks_done = done_rx.recv_timeout(Duration::from_secs(10));
        for _ in 0..helpers {
            let _ = release_tx.send(());
        }
        occupier
            .join()
            .expect("the occupying call returns once released");
        assert!(occupied, "the helpers did not all join within 60 s");
        assert_eq!(
            chunks_done,
            Ok(4),
            "the call must finish its 4 chunks alone while no helper can start"
        );
    }
}
