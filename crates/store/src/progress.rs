//! Progress reporting for long transfers, so a command line can draw a bar.

/// Receives `(bytes done, total if known)` as a transfer advances.
///
/// Called from async tasks after every write, so implementations should be cheap (update an
/// atomic, redraw at most every few hundred milliseconds). Any `Fn(u64, Option<u64>)` closure
/// is a `Progress`.
pub trait Progress: Send + Sync {
    /// `done` bytes of `total` (None while the size is unknown) have been received and checked
    /// so far.
    fn update(&self, done: u64, total: Option<u64>);
}

impl<F: Fn(u64, Option<u64>) + Send + Sync> Progress for F {
    fn update(&self, done: u64, total: Option<u64>) {
        self(done, total)
    }
}

/// Ignores progress; for callers with nobody to show it to.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn update(&self, _done: u64, _total: Option<u64>) {}
}
