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
//! uses it; otherwise it wakes one right away if the run is expected to last
//! 1.5 times the measured wake-up latency, else it stays on its thread. After
//! a millisecond asleep a helper takes 1-3 ms to start here, longer than many
//! runs: waking one for them only cost the caller.

use std::marker::PhantomData;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
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
/// Model runs in a row that chose to stay on their thread (see `begin_run`).
static SERIAL_RUNS: AtomicU32 = AtomicU32::new(0);

/// Every this many model runs that stay on their thread, one wakes a helper
/// anyway, so the latency estimate follows the host.
const PROBE_EVERY: u32 = 16;

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
    /// The run would be over before a woken helper started: wake none.
    StaySerial,
}

/// The plan for a run expected to take `expected` (its last run at this
/// batch, if any) when a woken helper starts `wake_latency` later. A helper
/// arriving at time L into a run of T saves about (T - L) / 2 on two threads,
/// and waking costs the caller a few microseconds plus finer chunks of work
/// while it waits: wake when T >= 1.5 L, or when either is unknown.
/// `probe_due`: wake anyway, to measure the latency again.
pub(crate) fn plan_run(
    polling: bool,
    expected: Option<Duration>,
    wake_latency: Option<Duration>,
    probe_due: bool,
) -> RunPlan {
    if polling {
        return RunPlan::UsePolling;
    }
    match (expected, wake_latency) {
        (Some(run), Some(latency)) if 2 * run.as_nanos() < 3 * latency.as_nanos() => {
            if probe_due {
                RunPlan::WakeNow
            } else {
                RunPlan::StaySerial
            }
        }
        _ => RunPlan::WakeNow,
    }
}

/// A model run's choice about helpers, in force until dropped.
pub(crate) struct RunHelpers {
    /// `NO_WAKE` as it was before the run, when this run set it.
    restore: Option<bool>,
}

impl Drop for RunHelpers {
    fn drop(&mut self) {
        if let Some(was) = self.restore {
            NO_WAKE.with(|no_wake| no_wake.set(was));
        }
    }
}

/// Start a model run on up to `threads` threads that is expected to take
/// `expected`: per `plan_run`, use a polling helper, wake one now, or keep
/// the whole run on this thread. A run between sparse requests is often
/// shorter than a sleeping helper's wake-up here (1-3 ms): waking one then
/// only costs the caller, and finer chunks of work for a helper that never
/// comes. Steps inside a run that stays serial split only for helpers that
/// are already polling.
pub(crate) fn begin_run(threads: usize, expected: Option<Duration>) -> RunHelpers {
    let mut run = RunHelpers { restore: None };
    if threads < 2 || IN_CHUNKS.with(std::cell::Cell::get) {
        return run;
    }
    let Some(pool) = helper_pool() else {
        return run;
    };
    let probe_due = SERIAL_RUNS.load(Ordering::Relaxed) + 1 >= PROBE_EVERY;
    match plan_run(helper_polling(), expected, wake_latency(), probe_due) {
        RunPlan::UsePolling => {}
        RunPlan::WakeNow => {
            SERIAL_RUNS.store(0, Ordering::Relaxed);
            if WAKING.load(Ordering::Acquire) == 0 {
                WAKING.fetch_add(1, Ordering::AcqRel);
                let woken_at = Instant::now();
                pool.spawn(move || helper_job(None, woken_at));
            }
        }
        RunPlan::StaySerial => {
            SERIAL_RUNS.fetch_add(1, Ordering::Relaxed);
            run.restore = Some(NO_WAKE.with(|no_wake| no_wake.replace(true)));
        }
    }
    run
}

fn mailbox() -> std::sync::MutexGuard<'static, Vec<Arc<Shared>>> {
    // The mailbox holds plain values: a panic elsewhere cannot leave it inconsistent.
    MAILBOX
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A pool thread's job, woken at `woken_at`: help with `first` (if any), then
/// poll the mailbox for further calls until `LINGER` passes without one.
fn helper_job(first: Option<Arc<Shared>>, woken_at: Instant) {
    record_wake_latency(woken_at.elapsed());
    WAKING.fetch_sub(1, Ordering::AcqRel);
    if let Some(first) = first {
        first.help();
    }
    LINGERING.fetch_add(1, Ordering::AcqRel);
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

static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();

/// Helper threads shared by every parallel kernel: one fewer than the
/// machine's cores, as the calling thread works too. Started on first use;
/// `None` on one core (a helper could only take turns with the caller) or if
/// the system refuses threads: kernels then run serially.
fn helper_pool() -> Option<&'static rayon::ThreadPool> {
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cores < 2 {
            return None;
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(cores - 1)
            .thread_name(|i| format!("workbench-kernels-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}

/// How many helpers a call asking for `threads` threads in total can have.
pub(crate) fn helpers_for(threads: usize) -> usize {
    // Single-threaded use never starts the pool, and a chunk runs on its thread.
    if threads < 2 || IN_CHUNKS.with(std::cell::Cell::get) {
        return 0;
    }
    let available = helper_pool().map_or(0, rayon::ThreadPool::current_num_threads);
    (threads - 1).min(available)
}

/// A caller's record of its last `run_chunks` call, reused by the next call
/// once no helper holds it any more: a parallel run whose helpers are polling
/// then allocates nothing (waking a sleeping helper still costs the pool's job).
#[derive(Default)]
pub(crate) struct ChunkRecord(Option<Arc<Shared>>);

impl Clone for ChunkRecord {
    /// A clone starts with no record of its own.
    fn clone(&self) -> ChunkRecord {
        ChunkRecord(None)
    }
}

impl std::fmt::Debug for ChunkRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "ChunkRecord(kept)"
        } else {
            "ChunkRecord(none)"
        })
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
    let Some(pool) = pool else {
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
    // The last call's record if no helper still holds it (one that never
    // joined drops it when it gets to run), else a new one.
    let mut shared = record
        .0
        .take()
        .unwrap_or_else(|| Arc::new(Shared::new(chunks, erased)));
    match Arc::get_mut(&mut shared) {
        Some(idle) => *idle = Shared::new(chunks, erased),
        None => shared = Arc::new(Shared::new(chunks, erased)),
    }
    // Polling (or already woken) helpers get the call through the mailbox;
    // sleeping ones are woken, unless this run chose to wake none.
    let to_post = helpers.min(helpers_reachable());
    let helpers = if waking_not_worth() { to_post } else { helpers };
    if to_post > 0 {
        let mut posted = mailbox();
        posted.extend((0..to_post).map(|_| Arc::clone(&shared)));
        POSTED.store(posted.len(), Ordering::Release);
    }
    for _ in to_post..helpers {
        let shared = Arc::clone(&shared);
        #[cfg(test)]
        WOKEN_BY_THIS_THREAD.with(|woken| woken.set(woken.get() + 1));
        WAKING.fetch_add(1, Ordering::AcqRel);
        let woken_at = Instant::now();
        pool.spawn(move || helper_job(Some(shared), woken_at));
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
    if to_post > 0 {
        // Entries no helper took (it stopped polling meanwhile) are dropped here.
        let mut posted = mailbox();
        posted.retain(|job| !Arc::ptr_eq(job, &shared));
        POSTED.store(posted.len(), Ordering::Release);
    }
    if let Err(payload) = own {
        std::panic::resume_unwind(payload);
    }
    let helper_panicked = shared.helper_panicked.load(Ordering::Acquire);
    record.0 = Some(shared);
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

/// Floats on cache lines of their own: a thread's hot scratch (written every
/// few cycles) must not share a line with another thread's, which two small
/// allocations side by side would.
#[derive(Debug, Default)]
pub(crate) struct OwnLines {
    buf: Vec<f32>,
    start: usize,
    len: usize,
}

/// Floats per 64-byte cache line.
const LINE_FLOATS: usize = 16;

impl OwnLines {
    pub(crate) fn new(len: usize) -> OwnLines {
        // Up to a line before the start to align it, and the end rounded up to a line.
        let buf = vec![0.0f32; len.div_ceil(LINE_FLOATS) * LINE_FLOATS + LINE_FLOATS];
        let misaligned = (buf.as_ptr() as usize / std::mem::size_of::<f32>()) % LINE_FLOATS;
        let start = (LINE_FLOATS - misaligned) % LINE_FLOATS;
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

    /// These tests share the one pool and one of them occupies it: one at a time.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    #[test]
    fn a_run_wakes_a_helper_only_if_it_would_arrive_in_time() {
        let ms = Duration::from_millis;
        // A polling helper is used whatever the estimates.
        assert_eq!(
            plan_run(true, Some(ms(1)), Some(ms(3)), false),
            RunPlan::UsePolling
        );
        // Nothing known yet: wake, and learn.
        assert_eq!(plan_run(false, None, None, false), RunPlan::WakeNow);
        assert_eq!(plan_run(false, Some(ms(1)), None, false), RunPlan::WakeNow);
        assert_eq!(plan_run(false, None, Some(ms(3)), false), RunPlan::WakeNow);
        // A 0.3 ms run against a 3 ms wake-up stays serial, except when probing.
        assert_eq!(
            plan_run(false, Some(ms(1) / 3), Some(ms(3)), false),
            RunPlan::StaySerial
        );
        assert_eq!(
            plan_run(false, Some(ms(1) / 3), Some(ms(3)), true),
            RunPlan::WakeNow
        );
        // A 9 ms run against a 3 ms wake-up, or a 0.3 ms run against 25 us: wake.
        assert_eq!(
            plan_run(false, Some(ms(9)), Some(ms(3)), false),
            RunPlan::WakeNow
        );
        let us = Duration::from_micros;
        assert_eq!(
            plan_run(false, Some(us(300)), Some(us(25)), false),
            RunPlan::WakeNow
        );
        // The boundary: 1.5 wake-ups.
        assert_eq!(
            plan_run(false, Some(us(149)), Some(us(100)), false),
            RunPlan::StaySerial
        );
        assert_eq!(
            plan_run(false, Some(us(150)), Some(us(100)), false),
            RunPlan::WakeNow
        );
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
        drop(begin_run(1, Some(Duration::from_nanos(1))));
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
        if helpers_for(2) == 0 {
            return;
        }
        let mut record = ChunkRecord::default();
        run_chunks(&mut record, 1, 4, &|_, _| {});
        let first = record.0.as_ref().map(Arc::as_ptr).expect("a record");
        // Wait for the helper to let go of it (it may still be on its way in).
        let deadline = Instant::now() + Duration::from_secs(10);
        while record.0.as_ref().is_some_and(|r| Arc::strong_count(r) > 1) {
            assert!(Instant::now() < deadline, "the helper kept the record");
            std::thread::sleep(Duration::from_millis(1));
        }
        run_chunks(&mut record, 1, 4, &|_, _| {});
        assert_eq!(record.0.as_ref().map(Arc::as_ptr), Some(first));
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
        if helpers_for(2) == 0 {
            return;
        }
        // Keep the only pool thread busy, so the helper of the next call
        // cannot start: the call must still return once its chunks are done.
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        let pool = helper_pool().expect("pool");
        let busy_threads = pool.current_num_threads();
        let release_rx = Arc::new(Mutex::new(release_rx));
        for _ in 0..busy_threads {
            let rx = Arc::clone(&release_rx);
            let started = started_tx.clone();
            pool.spawn(move || {
                let _ = started.send(());
                let _ = rx.lock().expect("lock").recv();
            });
        }
        for _ in 0..busy_threads {
            started_rx.recv().expect("pool thread started");
        }
        // On another thread, so a call that waited for the helper fails the
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
        let chunks_done = done_rx.recv_timeout(std::time::Duration::from_secs(10));
        for _ in 0..busy_threads {
            let _ = release_tx.send(());
        }
        assert_eq!(
            chunks_done,
            Ok(4),
            "the call must finish its 4 chunks alone while no helper can start"
        );
    }
}
