//! The naive way, the baseline of the overhead benchmark: a fresh container per rollout that
//! `git clone`s the repository from a read-only mount of the mirror, makes the same change and
//! takes the same diff — timed phase by phase like threadsmith's rollouts.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::RemoveContainerOptionsBuilder;
use threadsmith_runner::PhaseTimings;
use threadsmith_runner::image::DEFAULT_IMAGE;
use threadsmith_runner::owner_label;
use threadsmith_runner::sandbox::{LABEL_MANAGED, LABEL_OWNER, LABEL_TASK};

/// One naive rollout; returns its phases and its total.
///
/// `on_tmpfs` puts the clone on a tmpfs like threadsmith's workspace; otherwise it goes where a
/// plain `docker run … git clone` puts it, in the container's own file system.
pub async fn rollout(
    env: &threadsmith_tests::TestEnv,
    mirror: &Path,
    on_tmpfs: bool,
) -> PhaseTimings {
    let docker = env.docker.client();
    let mut timings = PhaseTimings::default();
    let clock = Instant::now();
    let body = ContainerCreateBody {
        image: Some(DEFAULT_IMAGE.into()),
        cmd: Some(vec!["sleep".into(), "infinity".into()]),
        user: Some(if on_tmpfs { "1000:1000" } else { "0:0" }.into()),
        labels: Some(HashMap::from([
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_TASK.to_string(), "bench-naive".to_string()),
            // Ours while this process lives: another process's orphan sweep leaves it alone.
            (LABEL_OWNER.to_string(), owner_label()),
        ])),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            binds: Some(vec![format!("{}:/mirror:ro", mirror.display())]),
            tmpfs: on_tmpfs.then(|| {
                HashMap::from([(
                    "/work".to_string(),
                    "rw,size=2g,uid=1000,gid=1000".to_string(),
                )])
            }),
            memory: Some(2 << 30),
            ..Default::default()
        }),
        ..Default::default()
    };
    let c = docker.create_container(None, body).await.unwrap();
    docker.start_container(&c.id, None).await.unwrap();
    timings.sandbox = clock.elapsed();
    // /work: a tmpfs, or a folder of the container's own file system.
    let clock = Instant::now();
    exec(
        docker,
        &c.id,
        "mkdir -p /work 2>/dev/null; cd /tmp && git config --global --add safe.directory '*' && git clone -q /mirror /work/repo",
    )
    .await;
    timings.copy = clock.elapsed();
    let clock = Instant::now();
    exec(
        docker,
        &c.id,
        "cd /work/repo && echo changed > src/m00/f00000.txt",
    )
    .await;
    timings.agent = clock.elapsed();
    let clock = Instant::now();
    exec(
        docker,
        &c.id,
        "cd /work/repo && git add -A && git diff --cached --numstat HEAD && git diff --cached --binary HEAD | wc -c",
    )
    .await;
    timings.diff = clock.elapsed();
    let clock = Instant::now();
    docker
        .remove_container(
            &c.id,
            Some(RemoveContainerOptionsBuilder::default().force(true).build()),
        )
        .await
        .unwrap();
    timings.removal = clock.elapsed();
    timings
}

async fn exec(docker: &bollard::Docker, id: &str, script: &str) {
    let exec = docker
        .create_exec(
            id,
            bollard::exec::CreateExecOptions {
                cmd: Some(vec!["bash", "-c", script]),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                env: Some(vec!["HOME=/tmp"]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut text = String::new();
    if let bollard::exec::StartExecResults::Attached { mut output, .. } =
        docker.start_exec(&exec.id, None).await.unwrap()
    {
        use futures_util::StreamExt;
        while let Some(Ok(chunk)) = output.next().await {
            text.push_str(&chunk.to_string());
        }
    }
    let code = docker.inspect_exec(&exec.id).await.unwrap().exit_code;
    assert_eq!(code, Some(0), "the naive rollout failed: {text}");
}
