//! A small persistent thread pool that runs one job on every thread at once.
//!
//! Determinism does not depend on it: a job receives its thread index and must compute a fixed
//! part of the output from it (rows `[i·n/T, (i+1)·n/T)`), never a share of a float reduction.
//! The pool only saves the cost of spawning threads hundreds of times per token: workers spin
//! briefly for the next job, then sleep on a condition variable.

use std::cell::UnsafeCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// Spin iterations before a waiting worker goes to sleep (tens of microseconds).
const SPIN_LIMIT: u32 = 1 << 14;

type Job = *const (dyn Fn(usize) + Sync);

struct Shared {
    /// The current job; written by `run` only while no worker is reading it.
    job: UnsafeCell<Option<Job>>,
    generation: AtomicU64,
    pending: AtomicUsize,
    shutdown: AtomicBool,
    panicked: AtomicBool,
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

// SAFETY: `job` is written only by `run` while every worker is idle (pending == 0) and read by
// workers only after they observe the new generation (Acquire after the Release increment).
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
    /// A pool that runs jobs on `threads` threads (at least 1; the caller is one of them).
    pub(crate) fn new(threads: usize) -> Self {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            job: UnsafeCell::new(None),
            generation: AtomicU64::new(0),
            pending: AtomicUsize::new(0),
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
                    .spawn(move || worker(&shared, index))
                    .expect("spawning an inference worker thread")
            })
            .collect();
        Self { threads, shared, workers, busy: Mutex::new(()) }
    }

    /// Number of threads jobs run on.
    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `job(i)` for every thread index `i` in `0..threads` concurrently and returns when
    /// all have finished.
    pub(crate) fn run(&self, job: &(dyn Fn(usize) + Sync)) {
        if self.threads == 1 {
            job(0);
            return;
        }
        let _busy = self.busy.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let s = &*self.shared;
        // SAFETY: the lifetime is erased only for the duration of this call: we wait below
        // until every worker has finished with the pointer before returning.
        let erased: Job = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), Job>(job) };
        // SAFETY: all workers are idle (the previous run waited for pending == 0).
        unsafe { *s.job.get() = Some(erased) };
        s.pending.store(self.threads - 1, Ordering::Release);
        {
            let _g = s.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            s.generation.fetch_add(1, Ordering::Release);
        }
        if s.sleepers.load(Ordering::Acquire) > 0 {
            s.wake.notify_all();
        }
        let mine = catch_unwind(AssertUnwindSafe(|| job(0)));
        let mut spins = 0u32;
        while s.pending.load(Ordering::Acquire) != 0 {
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

fn worker(s: &Shared, index: usize) {
    let mut seen = 0u64;
    loop {
        let mut spins = 0u32;
        loop {
            let g = s.generation.load(Ordering::Acquire);
            if g != seen {
                seen = g;
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
            if s.generation.load(Ordering::Acquire) == seen && !s.shutdown.load(Ordering::Acquire) {
                s.sleepers.fetch_add(1, Ordering::AcqRel);
                let _guard = s.wake.wait(guard).unwrap_or_else(std::sync::PoisonError::into_inner);
                s.sleepers.fetch_sub(1, Ordering::AcqRel);
            }
            spins = 0;
        }
        // SAFETY: `run` set the job before the generation increment we observed, and keeps it
        // alive until pending reaches 0.
        let job = unsafe { (*s.job.get()).expect("a job is set with each generation") };
        let result = catch_unwind(AssertUnwindSafe(|| unsafe { (*job)(index) }));
        if result.is_err() {
            s.panicked.store(true, Ordering::Release);
        }
        s.pending.fetch_sub(1, Ordering::AcqRel);
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
#[derive(Clone, Copy)]
pub(crate) struct SharedMut<T>(pub(crate) *mut T);

// SAFETY: users guarantee that threads write disjoint elements.
unsafe impl<T> Send for SharedMut<T> {}
unsafe impl<T> Sync for SharedMut<T> {}

impl<T> SharedMut<T> {
    /// The pointer. A method (not field access) so closures capture the whole `Sync` wrapper.
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}

/// The half-open range of `n` items that thread `index` of `threads` owns: contiguous, in
/// thread order, sizes differing by at most one.
pub(crate) fn split_range(n: usize, threads: usize, index: usize) -> std::ops::Range<usize> {
    (index * n / threads)..((index + 1) * n / threads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_index_runs_once_per_job() {
        for threads in 1..=4 {
            let pool = ThreadPool::new(threads);
            for _ in 0..100 {
                let hits: Vec<AtomicUsize> = (0..threads).map(|_| AtomicUsize::new(0)).collect();
                pool.run(&|i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
                assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
            }
        }
    }

    #[test]
    fn split_range_covers_everything_once() {
        for n in 0..50 {
            for t in 1..6 {
                let mut next = 0;
                for i in 0..t {
                    let r = split_range(n, t, i);
                    assert_eq!(r.start, next);
                    next = r.end;
                }
                assert_eq!(next, n);
            }
        }
    }
}
