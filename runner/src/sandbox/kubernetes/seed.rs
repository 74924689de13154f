//! The task's seed without a registry or a shared volume: this process keeps the task's archive
//! (once per task), and each rollout pod receives it by a tar stream through exec into the pod's
//! seed container, the only one that mounts the seed's volume writable. The agent's container
//! mounts it read-only (a read-only bind mount, whatever the files' modes), as on Docker.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::pod::SEED_CONTAINER;
use super::{Kubernetes, KubernetesSandbox, backend_err};
use crate::output::OutputCap;
use crate::sandbox::{ExecRequest, SEED, SandboxError};

/// How long streaming a seed into a pod may take.
const SEED_LIMIT: Duration = Duration::from_secs(600);

/// The seeds this process keeps, by name: the task's id and its archive.
#[derive(Default)]
pub(super) struct Seeds(HashMap<String, (String, Arc<Vec<u8>>)>);

impl Kubernetes {
    fn seeds(&self) -> std::sync::MutexGuard<'_, Seeds> {
        self.seeds.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps the task's archive; returns the seed's name.
    pub(super) fn keep_seed(&self, task_id: &str, archive: Vec<u8>) -> String {
        let name = format!(
            "seed-{}-{}",
            crate::sandbox::docker::short(task_id),
            crate::sandbox::docker::short_random()
        );
        self.seeds()
            .0
            .insert(name.clone(), (task_id.to_string(), Arc::new(archive)));
        name
    }

    /// Forgets the task's seeds (its pods are gone).
    pub(super) fn drop_seeds(&self, task_id: &str) {
        self.seeds().0.retain(|_, (task, _)| task != task_id);
    }

    /// The archive of seed `name`.
    pub(super) fn seed(&self, name: &str) -> Result<Arc<Vec<u8>>, SandboxError> {
        self.seeds()
            .0
            .get(name)
            .map(|(_, archive)| archive.clone())
            .ok_or_else(|| {
                backend_err(
                    "finding the task's seed",
                    format!(
                        "the seed `{name}` is not kept by this process (was the task removed?)"
                    ),
                )
            })
    }
}

/// Streams `archive` into the seed container's `/seed` (and takes the files' write bits away:
/// they are read-only twice over).
pub(super) async fn put_seed(
    sandbox: &KubernetesSandbox,
    archive: Arc<Vec<u8>>,
) -> Result<(), SandboxError> {
    let mut req = ExecRequest::shell(
        // The emptyDir's own folder is the node's (root's): only what is in it changes mode.
        format!("tar -x -f - -C {SEED} && find {SEED} -mindepth 1 -exec chmod a-w {{}} +"),
        SEED_LIMIT,
    );
    req.reap = false;
    req.cap = OutputCap {
        head_bytes: 2048,
        tail_bytes: 2048,
    };
    let out = sandbox
        .run(
            SEED_CONTAINER,
            req,
            Some(archive),
            &CancellationToken::new(),
        )
        .await?;
    if out.success() {
        Ok(())
    } else {
        Err(backend_err(
            "putting the task's seed in the pod",
            format!(
                "tar ended with {:?}{}: {}",
                out.exit_code,
                if out.timed_out { " (timed out)" } else { "" },
                out.output.to_text().trim()
            ),
        ))
    }
}
