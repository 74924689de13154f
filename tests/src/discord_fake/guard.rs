//! The fake's state behind a lock whose writes wake the waiters (`wait_for`): a guard borrowed
//! mutably counts as a write, and the change counter moves once the lock is released.

use std::ops::{Deref, DerefMut};
use std::sync::MutexGuard;

use tokio::sync::watch;

use super::State_;

pub(super) struct StateGuard<'a> {
    /// `None` only while dropping.
    guard: Option<MutexGuard<'a, State_>>,
    changed: &'a watch::Sender<u64>,
    written: bool,
}

impl<'a> StateGuard<'a> {
    pub(super) fn new(guard: MutexGuard<'a, State_>, changed: &'a watch::Sender<u64>) -> Self {
        Self {
            guard: Some(guard),
            changed,
            written: false,
        }
    }
}

impl Deref for StateGuard<'_> {
    type Target = State_;

    fn deref(&self) -> &State_ {
        self.guard.as_deref().expect("held until dropped")
    }
}

impl DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut State_ {
        self.written = true;
        self.guard.as_deref_mut().expect("held until dropped")
    }
}

impl Drop for StateGuard<'_> {
    fn drop(&mut self) {
        // Released first, so that a woken waiter finds the lock free.
        drop(self.guard.take());
        if self.written {
            self.changed.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}
