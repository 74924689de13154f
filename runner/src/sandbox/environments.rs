//! Environment snapshots on Docker (see [`crate::environment`]): committed images named
//! `threadsmith-env:<digest>`, labelled as threadsmith's; no registry.
//!
//! Building one is guarded by a container named after the digest (`threadsmith-envbuild-…`):
//! Docker refuses a second container of the same name, so creating it is an atomic test-and-set
//! across every task and every threadsmith process using the engine — the scope the snapshots
//! are shared in (a store row would not do: two bot processes may use one engine with two
//! stores). The rollout holding it runs the setup, streams the setup's effects from its sandbox
//! into that container (never through a file on the host) and commits it as the snapshot, then
//! removes it. The others wait for its removal (`wait?condition=removed`) and start from the
//! snapshot; a lock whose owner is dead (the same test as the orphans', [`owner_is_dead`]) is
//! removed and taken over. Should the builder fail, the next waiter takes the lock and builds.

use bollard::models::ContainerConfig;
use bollard::query_parameters::{
    CommitContainerOptionsBuilder, ListImagesOptionsBuilder, RemoveImageOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::*;
use crate::environment::{
    Acquired, BuildLease, EnvironmentCache, EnvironmentPlan, SNAPSHOT_DIR, Snapshot,
};

/// The image repository of snapshots.
pub const SNAPSHOT_REPO: &str = "threadsmith-env";
/// A snapshot's digest (every snapshot image and build lock carries it).
pub const LABEL_ENVIRONMENT: &str = "dev.threadsmith.environment";
const LABEL_REPO: &str = "dev.threadsmith.environment.repo";
const LABEL_CREATED: &str = "dev.threadsmith.environment.created";
const LABEL_BYTES: &str = "dev.threadsmith.environment.bytes";
/// How long a waiter waits on a lock before it looks at its owner again.
const RECHECK: Duration = Duration::from_secs(5);

/// What the save step streams out of the sandbox: the paths git ignores that the setup left in
/// the workspace, and `$HOME` (`/tmp`) but threadsmith's scratch files, as one tar whose names
/// start with the snapshot's folder.
fn save_script() -> String {
    let dir = SNAPSHOT_DIR.trim_start_matches('/');
    format!(
        "set -e -o pipefail\n\
         cd {WORKSPACE}\n\
         {{ GIT_DIR={SEED}/tree/.git GIT_WORK_TREE={WORKSPACE} git ls-files -z --others --ignored \
         --exclude-standard --directory | sed -z 's,/$,,; s,^,workspace/,'\n\
         find /tmp -mindepth 1 -maxdepth 1 ! -name '.ts-*' -printf 'tmp/%f\\0'\n\
         printf 'tmp/.ts-env-list\\0'; }} >/tmp/.ts-env-list\n\
         tar -c -f - -C / --null -T /tmp/.ts-env-list --transform 's,^,{dir}/,S'\n"
    )
}

fn tag_of(digest: &str) -> String {
    format!("{SNAPSHOT_REPO}:{}", &digest[..digest.len().min(24)])
}

fn lock_of(digest: &str) -> String {
    format!("threadsmith-envbuild-{}", &digest[..digest.len().min(24)])
}

fn not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

fn snapshot_of(
    name: String,
    id: String,
    labels: &HashMap<String, String>,
    fallback: i64,
) -> Option<Snapshot> {
    let created = labels
        .get(LABEL_CREATED)
        .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
        .map(|c| c.with_timezone(&Utc))
        .or_else(|| DateTime::from_timestamp(fallback, 0))?;
    Some(Snapshot {
        name,
        id,
        digest: labels.get(LABEL_ENVIRONMENT)?.clone(),
        repo: labels.get(LABEL_REPO).cloned().unwrap_or_default(),
        created,
        bytes: labels
            .get(LABEL_BYTES)
            .and_then(|b| b.parse().ok())
            .unwrap_or(0),
    })
}

impl Docker {
    /// The snapshot named `tag`, if there is one.
    async fn snapshot(&self, tag: &str) -> Result<Option<Snapshot>, SandboxError> {
        match self.inner.inspect_image(tag).await {
            Ok(image) => {
                let labels = image.config.and_then(|c| c.labels).unwrap_or_default();
                Ok(snapshot_of(
                    tag.to_string(),
                    image.id.unwrap_or_default(),
                    &labels,
                    0,
                ))
            }
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(docker_err("looking up an environment snapshot")(e)),
        }
    }

    /// Creates the build lock of `digest`; `Ok(false)` when another holds it.
    async fn take_lock(
        &self,
        image: &str,
        plan: &EnvironmentPlan,
        digest: &str,
    ) -> Result<bool, SandboxError> {
        let mut labels = HashMap::from([
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_OWNER.to_string(), owner_label()),
            (LABEL_ENVIRONMENT.to_string(), digest.to_string()),
        ]);
        labels.insert(LABEL_REPO.to_string(), plan.key.repo.clone());
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            cmd: Some(vec!["true".into()]),
            labels: Some(labels),
            network_disabled: Some(true),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default()
            .name(&lock_of(digest))
            .build();
        match self.inner.create_container(Some(options), body).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(false),
            Err(e) => Err(docker_err("taking an environment build lock")(e)),
        }
    }

    /// Waits (at most [`RECHECK`]) for another's lock to go; removes it when its owner is dead.
    async fn wait_for_lock(
        &self,
        lock: &str,
        cancel: &CancellationToken,
    ) -> Result<(), SandboxError> {
        match self
            .inner
            .inspect_container(lock, None::<InspectContainerOptions>)
            .await
        {
            Ok(info) => {
                let owner = info
                    .config
                    .and_then(|c| c.labels)
                    .and_then(|l| l.get(LABEL_OWNER).cloned());
                if owner.as_deref().is_none_or(owner_is_dead) {
                    tracing::info!(
                        lock,
                        "an environment build lock outlived its owner; removing it"
                    );
                    self.remove_container(lock).await;
                    return Ok(());
                }
            }
            Err(e) if not_found(&e) => return Ok(()),
            Err(e) => return Err(docker_err("inspecting an environment build lock")(e)),
        }
        let options = WaitContainerOptionsBuilder::default()
            .condition("removed")
            .build();
        let mut removed = self.inner.wait_container(lock, Some(options));
        tokio::select! {
            _ = cancel.cancelled() => Err(SandboxError::Cancelled),
            _ = tokio::time::sleep(RECHECK) => Ok(()),
            // Gone (or an error that the next look will explain).
            _ = removed.next() => Ok(()),
        }
    }

    /// Streams the save script's tar out of `sandbox` into the lock container; the bytes sent.
    async fn stream_environment(
        &self,
        sandbox: &str,
        lock: &str,
        timeout: Duration,
    ) -> Result<u64, String> {
        let secs = timeout.as_secs().max(1).to_string();
        let exec = self
            .inner
            .create_exec(
                sandbox,
                CreateExecOptions {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(vec![
                        "timeout".into(),
                        "-k".into(),
                        "5".into(),
                        secs,
                        "bash".into(),
                        "-c".into(),
                        save_script(),
                    ]),
                    working_dir: Some(WORKSPACE.to_string()),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| format!("could not start the save step: {e}"))?;
        let started = self
            .inner
            .start_exec(&exec.id, None)
            .await
            .map_err(|e| format!("could not start the save step: {e}"))?;
        let StartExecResults::Attached { mut output, .. } = started else {
            return Err("Docker started the save step detached".into());
        };
        let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(16);
        let upload = self.inner.upload_to_container(
            lock,
            Some(UploadToContainerOptionsBuilder::default().path("/").build()),
            bollard::body_try_stream(tokio_stream_of(rx)),
        );
        let pump = async move {
            let mut sent = 0u64;
            let mut errors = CappedBuffer::new(OutputCap::default());
            while let Some(item) = output.next().await {
                match item {
                    Ok(LogOutput::StdOut { message }) => {
                        sent += message.len() as u64;
                        if tx.send(Ok(message)).await.is_err() {
                            break;
                        }
                    }
                    Ok(LogOutput::StdErr { message } | LogOutput::Console { message }) => {
                        errors.push(&message)
                    }
                    Ok(LogOutput::StdIn { .. }) => {}
                    Err(e) => {
                        let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                        break;
                    }
                }
            }
            (sent, errors.finish().to_text())
        };
        let (uploaded, (sent, errors)) = tokio::join!(upload, pump);
        let code = self
            .inner
            .inspect_exec(&exec.id)
            .await
            .map_err(|e| format!("could not read the save step's exit code: {e}"))?
            .exit_code;
        if code != Some(0) {
            return Err(format!(
                "the save step failed (exit code {code:?}): {}",
                errors.trim()
            ));
        }
        uploaded.map_err(|e| format!("could not upload the environment: {e}"))?;
        Ok(sent)
    }
}

/// An mpsc receiver as a stream (tokio-stream's wrapper, without the crate).
fn tokio_stream_of<T: Send + 'static>(
    rx: mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send + 'static {
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

#[async_trait]
impl EnvironmentCache for Docker {
    async fn acquire(
        &self,
        image: &str,
        plan: &EnvironmentPlan,
        wait: Duration,
        cancel: &CancellationToken,
    ) -> Result<Acquired, SandboxError> {
        let image_id = match self.inner.inspect_image(image).await {
            Ok(i) => i.id.unwrap_or_else(|| image.to_string()),
            Err(e) if not_found(&e) => return Err(SandboxError::ImageMissing(image.to_string())),
            Err(e) => return Err(docker_err("looking up the image")(e)),
        };
        let digest = plan.key.digest(&image_id);
        let tag = tag_of(&digest);
        let lock = lock_of(&digest);
        let deadline = Instant::now() + wait;
        let fresh = |s: Option<Snapshot>| s.filter(|s| !s.expired(plan.ttl, Utc::now()));
        loop {
            if let Some(s) = fresh(self.snapshot(&tag).await?) {
                return Ok(Acquired::Hit(s));
            }
            if self.take_lock(image, plan, &digest).await? {
                // Saved between the look and the lock: no need to build.
                if let Some(s) = fresh(self.snapshot(&tag).await?) {
                    self.remove_container(&lock).await;
                    return Ok(Acquired::Hit(s));
                }
                return Ok(Acquired::Build(BuildLease {
                    digest,
                    repo: plan.key.repo.clone(),
                    lock,
                }));
            }
            if Instant::now() >= deadline {
                return Ok(Acquired::Skip(format!(
                    "another rollout was still building environment snapshot {tag} after {} s",
                    wait.as_secs()
                )));
            }
            self.wait_for_lock(&lock, cancel).await?;
        }
    }

    async fn save(
        &self,
        lease: BuildLease,
        sandbox: &dyn Sandbox,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<Snapshot, SandboxError> {
        let failed = |detail: String| SandboxError::Backend {
            backend: "docker",
            action: "saving an environment snapshot",
            detail,
        };
        let streamed = tokio::select! {
            _ = cancel.cancelled() => Err(SandboxError::Cancelled),
            r = tokio::time::timeout(timeout, self.stream_environment(sandbox.name(), &lease.lock, timeout)) => match r {
                Ok(r) => r.map_err(failed),
                Err(_) => Err(failed(format!("it took more than {} s", timeout.as_secs()))),
            },
        };
        let bytes = match streamed {
            Ok(b) => b,
            Err(e) => {
                self.release(lease).await;
                return Err(e);
            }
        };
        let created = Utc::now();
        let labels = HashMap::from([
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_ENVIRONMENT.to_string(), lease.digest.clone()),
            (LABEL_REPO.to_string(), lease.repo.clone()),
            (LABEL_CREATED.to_string(), created.to_rfc3339()),
            (LABEL_BYTES.to_string(), bytes.to_string()),
        ]);
        let tag = tag_of(&lease.digest);
        let (repo, version) = tag.split_once(':').unwrap_or((SNAPSHOT_REPO, "latest"));
        let options = CommitContainerOptionsBuilder::default()
            .container(&lease.lock)
            .repo(repo)
            .tag(version)
            .pause(false)
            .build();
        let config = ContainerConfig {
            labels: Some(labels.clone()),
            ..Default::default()
        };
        let committed = self.inner.commit_container(options, config).await;
        self.release(lease).await;
        let id = committed
            .map_err(docker_err("committing an environment snapshot"))?
            .id;
        snapshot_of(tag, id, &labels, created.timestamp())
            .ok_or_else(|| failed("the snapshot has no labels".into()))
    }

    async fn release(&self, lease: BuildLease) {
        self.remove_container(&lease.lock).await;
    }

    async fn list(&self) -> Result<Vec<Snapshot>, SandboxError> {
        let filters = HashMap::from([("label".to_string(), vec![LABEL_ENVIRONMENT.to_string()])]);
        let images = self
            .inner
            .list_images(Some(
                ListImagesOptionsBuilder::default()
                    .all(false)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(docker_err("listing environment snapshots"))?;
        let mut all: Vec<Snapshot> = images
            .into_iter()
            .filter_map(|i| {
                let name = i
                    .repo_tags
                    .iter()
                    .find(|t| t.starts_with(&format!("{SNAPSHOT_REPO}:")))
                    .cloned()
                    .unwrap_or_default();
                snapshot_of(name, i.id, &i.labels, i.created)
            })
            .collect();
        all.sort_by_key(|s| std::cmp::Reverse(s.created));
        Ok(all)
    }

    async fn remove(&self, snapshot: &Snapshot) -> Result<bool, SandboxError> {
        // By id, not forced: an image a sandbox still runs from stays (409).
        let options = RemoveImageOptionsBuilder::default().force(false).build();
        match self
            .inner
            .remove_image(&snapshot.id, Some(options), None)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if not_found(&e) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(false),
            Err(e) => Err(docker_err("removing an environment snapshot")(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_digest() {
        let d = "0123456789abcdef0123456789abcdef";
        assert_eq!(tag_of(d), "threadsmith-env:0123456789abcdef01234567");
        assert_eq!(lock_of(d), "threadsmith-envbuild-0123456789abcdef01234567");
        assert!(save_script().contains("--transform 's,^,.threadsmith-env/,S'"));
    }
}
