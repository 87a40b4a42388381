//! The poisoned-lock idiom in one place. Every critical section in wisp is a few reads or
//! assignments that leave the data consistent even if a panic interrupts the holder, so a
//! poisoned lock is taken anyway rather than spreading one task's panic to every other user.

use std::sync::{Mutex, MutexGuard};

pub trait Locked<T> {
    /// Locks, taking the data even if a previous holder panicked.
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T> Locked<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(|e| e.into_inner())
    }
}
