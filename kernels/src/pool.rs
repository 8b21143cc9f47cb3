//! Fork-join over numbered chunks of work, for multi-threaded kernels.
//!
//! The calling thread takes chunks itself, and helpers from a persistent pool
//! join when they get to run. A helper that has not started by the time the
//! caller has taken the last chunk never joins: the caller waits only for
//! chunks already being worked on, never for a thread to wake up. So a busy
//! second core (a shared vCPU, a sleeping pool thread) costs at most one
//! chunk's time, not a stall, and a parallel kernel stays about as fast as a
//! serial one when no help comes.
//!
//! A helper that finishes keeps polling for the next call for `LINGER`
//! before its pool thread goes to sleep. Waking a sleeping thread costs the
//! caller about 6.5 us here (a futex wake through the hypervisor) and the
//! helper starts 15-65 us later; a polling helper joins within a microsecond.
//! So the GEMMs of one model run, a few microseconds apart, share one wake-up.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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

/// Set in `Shared::state` once the caller stops admitting helpers.
const CLOSED: usize = 1 << (usize::BITS - 1);

/// The work of one call, as the helpers see it.
struct Shared {
    /// Helpers currently inside the work, plus `CLOSED`.
    state: AtomicUsize,
    /// Helpers that have joined so far; gives each its participant number.
    joined: AtomicUsize,
    next_chunk: AtomicUsize,
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
    /// Take chunks until none are left.
    fn take_chunks(&self, work: &(dyn Fn(usize, usize) + Sync), participant: usize) {
        loop {
            let chunk = self.next_chunk.fetch_add(1, Ordering::Relaxed);
            if chunk >= self.chunks {
                return;
            }
            work(participant, chunk);
        }
    }

    /// A helper's turn: join unless closed, work, leave.
    fn help(&self) {
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
                self.next_chunk.store(self.chunks, Ordering::Relaxed);
            }
        }
        self.state.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whether a helper is polling for work now, so a call would not pay a wake-up.
pub(crate) fn helper_awake() -> bool {
    LINGERING.load(Ordering::Acquire) > 0
}

fn mailbox() -> std::sync::MutexGuard<'static, Vec<Arc<Shared>>> {
    // The mailbox holds plain values: a panic elsewhere cannot leave it inconsistent.
    MAILBOX
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A pool thread's job: help with `first`, then poll the mailbox for further
/// calls until `LINGER` passes without one.
fn helper_job(first: Arc<Shared>) {
    first.help();
    drop(first);
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

/// Helper threads shared by every parallel kernel: one fewer than the
/// machine's cores, as the calling thread works too. Started on first use;
/// `None` on one core (a helper could only take turns with the caller) or if
/// the system refuses threads: kernels then run serially.
fn helper_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
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
    let available = helper_pool().map_or(0, rayon::ThreadPool::current_num_threads);
    threads.saturating_sub(1).min(available)
}

/// Run `work(participant, chunk)` for every chunk in `0..chunks`, each exactly
/// once, on the calling thread (participant 0) and up to `helpers` pool
/// threads (participants 1..=helpers, each number used by one thread at a
/// time). Returns once every chunk is done.
pub(crate) fn run_chunks(helpers: usize, chunks: usize, work: &(dyn Fn(usize, usize) + Sync)) {
    let helpers = helpers.min(chunks.saturating_sub(1));
    let pool = helper_pool().filter(|_| helpers > 0);
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
    let shared = Arc::new(Shared {
        state: AtomicUsize::new(0),
        joined: AtomicUsize::new(0),
        next_chunk: AtomicUsize::new(0),
        chunks,
        helper_panicked: AtomicBool::new(false),
        work: erased,
    });
    // Polling helpers get the call through the mailbox; sleeping ones are woken.
    let to_post = helpers.min(LINGERING.load(Ordering::Acquire));
    if to_post > 0 {
        let mut posted = mailbox();
        posted.extend((0..to_post).map(|_| Arc::clone(&shared)));
        POSTED.store(posted.len(), Ordering::Release);
    }
    for _ in to_post..helpers {
        let shared = Arc::clone(&shared);
        pool.spawn(move || helper_job(shared));
    }
    // If the caller's own work panics, still close and wait before unwinding,
    // so no helper is left reading a dead closure.
    let own = catch_unwind(AssertUnwindSafe(|| shared.take_chunks(work, 0)));
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
    assert!(
        !shared.helper_panicked.load(Ordering::Acquire),
        "a kernel helper thread panicked"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// These tests share the one pool and one of them occupies it: one at a time.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    #[test]
    fn every_chunk_runs_once_with_distinct_participants() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        for helpers in [0, 1, 3] {
            for chunks in [0, 1, 2, 7, 64] {
                let seen = Mutex::new(vec![0u32; chunks]);
                let participants = Mutex::new(Vec::new());
                run_chunks(helpers, chunks, &|participant, chunk| {
                    seen.lock().expect("lock")[chunk] += 1;
                    participants.lock().expect("lock").push(participant);
                });
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
        // The caller sleeps in its first chunk; the helper takes the others.
        let by_helper = AtomicUsize::new(0);
        run_chunks(1, 8, &|participant, _| {
            if participant == 0 {
                std::thread::sleep(std::time::Duration::from_millis(200));
            } else {
                by_helper.fetch_add(1, Ordering::Relaxed);
            }
        });
        assert!(by_helper.load(Ordering::Relaxed) >= 1);
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
            run_chunks(1, 4, &|participant, _| {
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
