//! The tasks this process runs, by id, with the token that cancels each.
//!
//! A panic while the map's lock was held (in any handler) poisons it. The map itself is always
//! consistent (every change is one insert or remove), so the poison is cleared and the lock
//! used as before: a Cancel click must never turn into a silent no-op because of an earlier bug.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio_util::sync::CancellationToken;

use crate::task_id::TaskId;

#[derive(Default)]
pub(crate) struct RunningTasks {
    map: Mutex<HashMap<TaskId, CancellationToken>>,
}

impl RunningTasks {
    fn lock(&self) -> MutexGuard<'_, HashMap<TaskId, CancellationToken>> {
        self.map.lock().unwrap_or_else(|poisoned: PoisonError<_>| {
            tracing::error!("the running-tasks lock was poisoned by a panic; recovering it");
            self.map.clear_poison();
            poisoned.into_inner()
        })
    }

    pub(crate) fn insert(&self, task_id: TaskId, token: CancellationToken) {
        self.lock().insert(task_id, token);
    }

    pub(crate) fn remove(&self, task_id: &str) {
        self.lock().remove(task_id);
    }

    pub(crate) fn get(&self, task_id: &str) -> Option<CancellationToken> {
        self.lock().get(task_id).cloned()
    }

    pub(crate) fn ids(&self) -> Vec<TaskId> {
        self.lock().keys().cloned().collect()
    }

    pub(crate) fn tokens(&self) -> Vec<CancellationToken> {
        self.lock().values().cloned().collect()
    }

    /// Cancels the given tasks that run here; returns how many were.
    pub(crate) fn cancel(&self, ids: &[String]) -> usize {
        let running = self.lock();
        ids.iter()
            .filter_map(|id| running.get(id.as_str()))
            .map(CancellationToken::cancel)
            .count()
    }

    #[cfg(test)]
    fn poison(&self) {
        let _ = std::thread::scope(|s| {
            s.spawn(|| {
                let _guard = self.map.lock();
                panic!("a handler panicked while holding the lock");
            })
            .join()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_works_after_the_lock_was_poisoned() {
        let running = RunningTasks::default();
        let token = CancellationToken::new();
        running.insert("t1".into(), token.clone());
        running.poison();
        assert!(running.map.is_poisoned());
        // Cancel (a click) finds the task and cancels it.
        let found = running.get("t1").expect("the task is still known");
        found.cancel();
        assert!(token.is_cancelled());
        // Cancellations from other processes, and shutdown, see it too.
        assert_eq!(running.ids(), vec![TaskId::from("t1")]);
        assert_eq!(running.cancel(&["t1".into(), "t2".into()]), 1);
        assert_eq!(running.tokens().len(), 1);
        running.remove("t1");
        assert!(running.get("t1").is_none());
        assert!(!running.map.is_poisoned());
    }
}
