//! A count of events somewhere between two steps (being stored, not yet moved), and a wake-up
//! for when none is.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

#[derive(Default)]
pub(crate) struct Pending {
    count: AtomicUsize,
    none: Notify,
}

impl Pending {
    pub(crate) fn add(&self, n: usize) {
        self.count.fetch_add(n, Ordering::AcqRel);
    }

    /// `n` fewer pending (never below none: a count reset by a supervisor may meet a late `done`).
    pub(crate) fn done(&self, n: usize) {
        let before = self
            .count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                Some(c.saturating_sub(n))
            })
            .unwrap_or_else(|c| c);
        if before > 0 && before <= n {
            self.none.notify_waiters();
        }
    }

    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Waits until none is pending, or `at_most`; whether none is.
    pub(crate) async fn none(&self, at_most: Duration) -> bool {
        let wait = async {
            loop {
                let none = self.none.notified();
                tokio::pin!(none);
                none.as_mut().enable();
                if self.count() == 0 {
                    return;
                }
                none.await;
            }
        };
        tokio::time::timeout(at_most, wait).await.is_ok()
    }
}

/// Counts one as pending for as long as it lives (a caller that gives up waiting drops it too).
pub(crate) struct PendingGuard<'a>(&'a Pending);

impl<'a> PendingGuard<'a> {
    pub(crate) fn new(pending: &'a Pending) -> Self {
        pending.add(1);
        Self(pending)
    }
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.0.done(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A count reset while a caller still holds one (a supervisor's reset) stays at none when
    /// that caller is done, rather than wrapping round to "almost all pending".
    #[tokio::test]
    async fn done_never_goes_below_none() {
        let pending = Pending::default();
        pending.add(2);
        pending.done(pending.count());
        pending.done(1);
        assert_eq!(pending.count(), 0);
        assert!(pending.none(Duration::from_secs(30)).await);
        pending.add(1);
        assert!(
            !pending.none(Duration::from_millis(10)).await,
            "one pending"
        );
    }
}
