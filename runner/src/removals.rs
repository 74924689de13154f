//! Sandboxes removed after their rollout's result is known. Removing a container takes its
//! tmpfs workspace with it, and that grows with the repository (about 0.4 s for 500 MB in 50,000
//! files): the result is announced first and the removal runs in a background task, which is
//! still awaited before the task ends ([`crate::Runner::release_task`]: a task ends, or is
//! handed over on shutdown, only once its sandboxes are gone).

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::sandbox::Sandbox;

/// How long one removal may take before it is given up (a container left behind is removed by
/// the task's own clean-up, or by the orphan sweep).
const REMOVAL_LIMIT: Duration = Duration::from_secs(120);

/// The removals under way, by task.
#[derive(Default)]
pub struct Removals {
    pending: Mutex<Vec<(String, JoinHandle<Duration>)>>,
}

impl Removals {
    /// Removes `sandbox` in a background task, awaited by [`Removals::settle`].
    pub fn start(&self, task_id: &str, sandbox: Box<dyn Sandbox>) {
        let handle = tokio::spawn(async move {
            let clock = Instant::now();
            if tokio::time::timeout(REMOVAL_LIMIT, sandbox.remove())
                .await
                .is_err()
            {
                tracing::warn!(
                    sandbox = sandbox.name(),
                    "removing the sandbox took too long; left to the task's clean-up"
                );
            }
            clock.elapsed()
        });
        self.lock().push((task_id.to_string(), handle));
    }

    /// Waits until the task's sandboxes are removed; how long each removal took.
    pub async fn settle(&self, task_id: &str) -> Vec<Duration> {
        let mine: Vec<JoinHandle<Duration>> = {
            let mut pending = self.lock();
            let (mine, others) = std::mem::take(&mut *pending)
                .into_iter()
                .partition(|(task, _)| task == task_id);
            *pending = others;
            mine.into_iter().map(|(_, handle)| handle).collect()
        };
        let mut took = Vec::with_capacity(mine.len());
        for handle in mine {
            match handle.await {
                Ok(d) => took.push(d),
                Err(e) => tracing::error!(task = task_id, error = %e, "a sandbox's removal died"),
            }
        }
        took
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, JoinHandle<Duration>)>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SandboxBackend;
    use crate::sandbox::SandboxSpec;
    use crate::testing::{BackendCall, MemoryBackend};

    fn spec(task: &str, rollout: u32) -> SandboxSpec {
        SandboxSpec {
            image: "img".into(),
            limits: crate::Limits::default(),
            task_id: task.into(),
            rollout,
            seed_volume: None,
            start_with_network: false,
            lifetime: std::time::Duration::from_secs(600),
        }
    }

    fn removed(backend: &MemoryBackend) -> Vec<u32> {
        let mut removed: Vec<u32> = backend
            .calls()
            .into_iter()
            .filter_map(|c| match c {
                BackendCall::Remove { rollout } => Some(rollout),
                _ => None,
            })
            .collect();
        removed.sort();
        removed
    }

    #[tokio::test]
    async fn a_tasks_removals_are_awaited_and_timed_and_no_other_tasks() {
        let backend = MemoryBackend::new();
        let removals = Removals::default();
        for (task, k) in [("a", 1), ("b", 5), ("a", 2)] {
            let sandbox = backend.create_sandbox(&spec(task, k)).await.unwrap();
            removals.start(task, sandbox);
        }
        let took = removals.settle("a").await;
        assert_eq!(took.len(), 2);
        assert!(
            removed(&backend).starts_with(&[1, 2]),
            "{:?}",
            removed(&backend)
        );
        assert_eq!(
            removals.lock().len(),
            1,
            "b's removal is still to be awaited"
        );
        assert_eq!(removals.settle("b").await.len(), 1);
        assert_eq!(removed(&backend), [1, 2, 5]);
        assert!(removals.settle("a").await.is_empty());
    }
}
