//! A small persistent thread pool for splitting independent outputs across threads.
//!
//! Determinism does not depend on it: work items are whole outputs (row groups, attention
//! heads), each computed start to finish by whichever thread claims it with the one canonical
//! operation sequence, never a share of a float reduction. So items are handed out dynamically
//! (an atomic counter): a thread the OS has descheduled simply claims fewer, and the caller never
//! waits for a worker that has not started. Workers spin briefly for the next job, then sleep on
//! a condition variable; this saves spawning threads hundreds of times per token.

use std::cell::UnsafeCell;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// Spin iterations before a waiting worker goes to sleep (tens of microseconds).
const SPIN_LIMIT: u32 = 1 << 14;

/// `state` layout: bits 0..32 count workers inside the current job, bit 32 marks the job closed
/// to newcomers, bits 33.. hold the job's generation.
const ACTIVE_MASK: u64 = (1 << 32) - 1;
const CLOSED: u64 = 1 << 32;
const GEN_SHIFT: u32 = 33;

type Job = *const (dyn Fn() + Sync);

struct Shared {
    /// The current job; written by `run` only while no worker can be inside a job.
    job: UnsafeCell<Option<Job>>,
    state: AtomicU64,
    shutdown: AtomicBool,
    panicked: AtomicBool,
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

// SAFETY: `job` is written only by `run` after the previous job was closed and every worker
// that entered it has left (active count 0); workers read it only after registering in `state`
// for an open job of the generation they observed, which `run` publishes after the write.
unsafe impl Sync for Shared {}
unsafe impl Send for Shared {}

/// A fixed set of `threads − 1` workers plus the calling thread.
pub(crate) struct ThreadPool {
    threads: usize,
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// `run` must not be re-entered or called from two threads at once.
    busy: Mutex<()>,
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPool").field("threads", &self.threads).finish()
    }
}

impl ThreadPool {
    /// A pool that runs jobs on up to `threads` threads (at least 1; the caller is one).
    pub(crate) fn new(threads: usize) -> Self {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            job: UnsafeCell::new(None),
            state: AtomicU64::new(CLOSED),
            shutdown: AtomicBool::new(false),
            panicked: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        let workers = (1..threads)
            .map(|index| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("aik-infer-{index}"))
                    .spawn(move || worker(&shared))
                    .expect("spawning an inference worker thread")
            })
            .collect();
        Self { threads, shared, workers, busy: Mutex::new(()) }
    }

    /// Number of threads jobs may run on.
    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    /// Calls `f` on consecutive ranges of at most `chunk` items covering `0..items`, each range
    /// exactly once, on whichever threads claim them. `f` must compute each item the same way
    /// wherever it runs (it does: items are independent outputs).
    pub(crate) fn for_each(&self, items: usize, chunk: usize, f: &(dyn Fn(Range<usize>) + Sync)) {
        let chunk = chunk.max(1);
        let next = AtomicUsize::new(0);
        let job = || {
            loop {
                let start = next.fetch_add(1, Ordering::Relaxed).saturating_mul(chunk);
                if start >= items {
                    break;
                }
                f(start..items.min(start + chunk));
            }
        };
        if self.threads == 1 || items <= chunk {
            job();
        } else {
            self.run(&job);
        }
    }

    /// Calls `f(start, part)` for the consecutive parts of `out` of `chunk` elements (the last
    /// may be shorter), `start` the index of the part's first element, each part exactly once on
    /// whichever thread claims it.
    pub(crate) fn for_each_part<T: Send>(
        &self,
        out: &mut [T],
        chunk: usize,
        f: &(dyn Fn(usize, &mut [T]) + Sync),
    ) {
        let (chunk, len) = (chunk.max(1), out.len());
        let ptr = SharedMut(out.as_mut_ptr());
        self.for_each(len.div_ceil(chunk), 1, &|parts| {
            for part in parts {
                let start = part * chunk;
                let end = len.min(start + chunk);
                // SAFETY: parts are disjoint ranges inside `out`, each claimed by one thread,
                // and `out` stays mutably borrowed until every thread has left the job.
                let slice =
                    unsafe { std::slice::from_raw_parts_mut(ptr.get().add(start), end - start) };
                f(start, slice);
            }
        });
    }

    /// Runs `job` on the calling thread and on every worker that joins before the caller is
    /// done with it; returns when all that joined have finished.
    fn run(&self, job: &(dyn Fn() + Sync)) {
        let _busy = self.busy.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let s = &*self.shared;
        // SAFETY: the lifetime is erased only while the job is open or a worker is inside it:
        // below we close it and wait for the active count to reach 0 before returning.
        let erased: Job = unsafe { std::mem::transmute::<&(dyn Fn() + Sync), Job>(job) };
        let generation = (s.state.load(Ordering::Acquire) >> GEN_SHIFT) + 1;
        // SAFETY: the previous job is closed and no worker is inside it (see `Shared`).
        unsafe { *s.job.get() = Some(erased) };
        {
            let _g = s.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            s.state.store(generation << GEN_SHIFT, Ordering::Release);
        }
        if s.sleepers.load(Ordering::Acquire) > 0 {
            s.wake.notify_all();
        }
        let mine = catch_unwind(AssertUnwindSafe(job));
        s.state.fetch_or(CLOSED, Ordering::AcqRel);
        let mut spins = 0u32;
        while s.state.load(Ordering::Acquire) & ACTIVE_MASK != 0 {
            if spins < SPIN_LIMIT {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        if let Err(p) = mine {
            std::panic::resume_unwind(p);
        }
        if s.panicked.swap(false, Ordering::AcqRel) {
            panic!("an inference worker thread panicked");
        }
    }
}

/// Registers in the open job of `generation`; false if it is closed or already replaced.
fn enter(s: &Shared, generation: u64) -> bool {
    let mut state = s.state.load(Ordering::Acquire);
    loop {
        if state >> GEN_SHIFT != generation || state & CLOSED != 0 {
            return false;
        }
        match s.state.compare_exchange_weak(state, state + 1, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return true,
            Err(now) => state = now,
        }
    }
}

fn worker(s: &Shared) {
    let mut seen = 0u64;
    loop {
        let mut spins = 0u32;
        loop {
            let generation = s.state.load(Ordering::Acquire) >> GEN_SHIFT;
            if generation != seen {
                seen = generation;
                break;
            }
            if s.shutdown.load(Ordering::Acquire) {
                return;
            }
            if spins < SPIN_LIMIT {
                spins += 1;
                std::hint::spin_loop();
                continue;
            }
            let guard = s.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if s.state.load(Ordering::Acquire) >> GEN_SHIFT == seen
                && !s.shutdown.load(Ordering::Acquire)
            {
                s.sleepers.fetch_add(1, Ordering::AcqRel);
                let _guard = s.wake.wait(guard).unwrap_or_else(std::sync::PoisonError::into_inner);
                s.sleepers.fetch_sub(1, Ordering::AcqRel);
            }
            spins = 0;
        }
        if !enter(s, seen) {
            continue;
        }
        // SAFETY: registered in an open job, so `run` set this pointer before publishing the
        // generation and keeps the job alive until we leave.
        let job = unsafe { (*s.job.get()).expect("a job is set with each generation") };
        let result = catch_unwind(AssertUnwindSafe(|| unsafe { (*job)() }));
        if result.is_err() {
            s.panicked.store(true, Ordering::Release);
        }
        s.state.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        {
            let _g = self.shared.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            self.shared.shutdown.store(true, Ordering::Release);
        }
        self.shared.wake.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// A raw pointer that may be shared between the pool's threads, for jobs that write disjoint
/// parts of one output buffer.
pub(crate) struct SharedMut<T>(pub(crate) *mut T);

impl<T> Clone for SharedMut<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for SharedMut<T> {}

// SAFETY: users guarantee that threads write disjoint elements.
unsafe impl<T> Send for SharedMut<T> {}
unsafe impl<T> Sync for SharedMut<T> {}

impl<T> SharedMut<T> {
    /// The pointer. A method (not field access) so closures capture the whole `Sync` wrapper.
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_runs_exactly_once() {
        for threads in 1..=4 {
            let pool = ThreadPool::new(threads);
            for (items, chunk) in [(0, 1), (1, 1), (7, 3), (100, 1), (1000, 16)] {
                let hits: Vec<AtomicUsize> = (0..items).map(|_| AtomicUsize::new(0)).collect();
                pool.for_each(items, chunk, &|range| {
                    assert!(range.len() <= chunk);
                    for i in range {
                        hits[i].fetch_add(1, Ordering::Relaxed);
                    }
                });
                assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
            }
        }
    }

    #[test]
    fn every_part_is_written_once_where_it_lies() {
        for threads in 1..=3 {
            let pool = ThreadPool::new(threads);
            for (len, chunk) in [(0, 4), (1, 4), (10, 3), (64, 16), (1000, 7)] {
                let mut out = vec![0usize; len];
                pool.for_each_part(&mut out, chunk, &|start, part| {
                    assert!(part.len() <= chunk && (start % chunk == 0));
                    for (i, o) in part.iter_mut().enumerate() {
                        *o += start + i + 1;
                    }
                });
                assert_eq!(out, (1..=len).collect::<Vec<_>>());
            }
        }
    }
}
