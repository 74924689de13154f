//! Starting a rollout's pod: created, watched until it runs (under the start limit), seeded. A
//! pod that cannot start — its image cannot be pulled, its config is refused, it is never
//! scheduled — ends in an error that says why, and is deleted.

use futures_util::TryStreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{PostParams, WatchEvent, WatchParams};

use super::*;

/// Container states a pod does not recover from by waiting.
const FATAL_WAITING: [&str; 7] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// Where a starting pod stands.
#[derive(Debug, PartialEq)]
pub(super) enum Standing {
    Running,
    /// Still starting, and what it waits for.
    Waiting(String),
    /// It will never run, and why.
    Failed(String),
}

/// A DNS-1123 name for a rollout's pod.
fn pod_name(task_id: &str, rollout: u32) -> String {
    let task: String = crate::sandbox::docker::short(task_id)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!(
        "threadsmith-{}-{rollout}-{}",
        task.trim_matches('-'),
        crate::sandbox::docker::short_random()
    )
}

pub(super) fn standing(pod: &Pod) -> Standing {
    let Some(status) = &pod.status else {
        return Standing::Waiting("it was not scheduled yet".into());
    };
    let phase = status.phase.as_deref().unwrap_or("Pending");
    let container = status
        .container_statuses
        .as_ref()
        .and_then(|c| c.iter().find(|c| c.name == pod::CONTAINER));
    let state = container.and_then(|c| c.state.as_ref());
    if let Some(why) = stopped_words(pod) {
        return Standing::Failed(why);
    }
    // Every container runs (the seed's too: the seed is streamed into it next).
    let all_running = status
        .container_statuses
        .iter()
        .flatten()
        .all(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()));
    if phase == "Running" && state.is_some_and(|s| s.running.is_some()) && all_running {
        return Standing::Running;
    }
    // The agent's container first, then any other (the seed's) that waits.
    let waiting = state.and_then(|s| s.waiting.as_ref()).or_else(|| {
        status
            .container_statuses
            .iter()
            .flatten()
            .find_map(|c| c.state.as_ref()?.waiting.as_ref())
    });
    if let Some(waiting) = waiting {
        let reason = waiting.reason.as_deref().unwrap_or("Waiting");
        let message = waiting.message.as_deref().unwrap_or("");
        if FATAL_WAITING.contains(&reason) {
            let hint = if reason.contains("Image") {
                ". The cluster pulls the rollout image itself: push it to a registry the nodes can reach (set sandbox.kubernetes.image_pull_secret for a private one), or set the repository's `image`"
            } else {
                ""
            };
            return Standing::Failed(format!("{reason}: {message}{hint}"));
        }
        return Standing::Waiting(format!("{reason} {message}").trim().to_string());
    }
    let unscheduled = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False");
    if let Some(c) = unscheduled {
        return Standing::Waiting(format!(
            "it cannot be scheduled ({}: {})",
            c.reason.as_deref().unwrap_or("Unschedulable"),
            c.message.as_deref().unwrap_or("")
        ));
    }
    Standing::Waiting(format!("it is {phase}"))
}

/// Why a pod stopped, in words; `None` while it runs (or has not started).
pub(super) fn stopped_words(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    let terminated = status
        .container_statuses
        .iter()
        .flatten()
        .find(|c| c.name == pod::CONTAINER)
        .and_then(|c| c.state.as_ref()?.terminated.as_ref());
    let phase = status.phase.as_deref();
    if terminated.is_none() && !matches!(phase, Some("Failed" | "Succeeded")) {
        return None;
    }
    let reason = terminated
        .and_then(|t| t.reason.clone())
        .or_else(|| status.reason.clone());
    Some(match reason.as_deref() {
        Some("OOMKilled") => "the sandbox ran out of memory and stopped (the agent probably wrote very large files into /workspace or /tmp, which live in memory)".to_string(),
        Some("DeadlineExceeded") => "the sandbox reached its time limit and was stopped by Kubernetes".to_string(),
        Some("Evicted") => format!(
            "the sandbox was evicted from its node ({})",
            status.message.as_deref().unwrap_or("no reason given")
        ),
        Some(r) => format!("the sandbox stopped ({r})"),
        None => "the sandbox stopped before the change could be collected".to_string(),
    })
}

impl Kubernetes {
    /// Creates the rollout's pod, waits until it runs and puts the task's seed in it; on
    /// failure the pod is deleted.
    pub(super) async fn start(
        &self,
        spec: &SandboxSpec,
    ) -> Result<KubernetesSandbox, SandboxError> {
        let seed = match &spec.seed_volume {
            Some(name) => Some(self.seed(name)?),
            None => None,
        };
        let name = pod_name(&spec.task_id, spec.rollout);
        let pod = pod::pod_spec(
            spec,
            &self.options,
            &name,
            &owner_label(),
            seed.as_ref().map(|s| s.len() as u64),
        );
        call(
            "creating a rollout pod",
            self.pods().create(&PostParams::default(), &pod),
        )
        .await?;
        let sandbox = KubernetesSandbox {
            backend: self.clone(),
            name,
        };
        let started = async {
            self.wait_running(&sandbox.name).await?;
            if let Some(seed) = seed {
                seed::put_seed(&sandbox, seed).await?;
            }
            Ok(())
        };
        if let Err(e) = started.await {
            sandbox.remove().await;
            return Err(e);
        }
        Ok(sandbox)
    }

    /// Watches the pod until it runs, fails, or the start limit passes.
    async fn wait_running(&self, name: &str) -> Result<(), SandboxError> {
        let limit = self.options.start_timeout;
        let deadline = tokio::time::Instant::now() + limit;
        let failed = |why: String| {
            backend_err(
                "starting a rollout pod",
                format!("the pod {name} could not start: {why}"),
            )
        };
        loop {
            let pod = call("reading a rollout pod", self.pods().get(name)).await?;
            let mut last = match standing(&pod) {
                Standing::Running => return Ok(()),
                Standing::Failed(why) => return Err(failed(why)),
                Standing::Waiting(why) => why,
            };
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            if remaining.is_zero() {
                return Err(failed(format!(
                    "it did not run within {}s (sandbox.kubernetes.start_timeout): {last}",
                    limit.as_secs()
                )));
            }
            let rv = pod.metadata.resource_version.clone().unwrap_or_default();
            let wp = WatchParams::default()
                .fields(&format!("metadata.name={name}"))
                .timeout(remaining.as_secs().clamp(1, 60) as u32);
            let opened = tokio::time::Instant::now();
            let mut events = 0;
            let stream = call("watching a rollout pod", self.pods().watch(&wp, &rv)).await?;
            let mut stream = std::pin::pin!(stream);
            loop {
                let event = tokio::select! {
                    e = stream.try_next() => e,
                    _ = tokio::time::sleep_until(deadline) => break,
                };
                events += 1;
                match event {
                    Ok(Some(WatchEvent::Added(p) | WatchEvent::Modified(p))) => {
                        match standing(&p) {
                            Standing::Running => return Ok(()),
                            Standing::Failed(why) => return Err(failed(why)),
                            Standing::Waiting(why) => last = why,
                        }
                    }
                    Ok(Some(WatchEvent::Deleted(_))) => {
                        return Err(failed("it was deleted while starting".into()));
                    }
                    Ok(Some(WatchEvent::Bookmark(_))) => {}
                    // Too old a version, the stream's end, or a broken stream: read it again.
                    Ok(Some(WatchEvent::Error(e))) => {
                        tracing::debug!(pod = name, error = ?e, "watch error; reading the pod again");
                        break;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(pod = name, error = %e, "watch failed; reading the pod again");
                        break;
                    }
                }
            }
            tracing::debug!(pod = name, waiting = %last, "still starting");
            // A watch that ends at once, again and again, must not spin.
            if events <= 1 && opened.elapsed() < Duration::from_secs(1) {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}
