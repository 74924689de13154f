//! Building the rollout image: offline (debootstrap a minimal Debian with git into a folder and
//! import it, since no registry may be reachable) or from a Dockerfile for those who have one.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use bollard::query_parameters::{BuildImageOptionsBuilder, CreateImageOptionsBuilder};
use futures_util::{StreamExt, TryStreamExt};
use tokio::process::Command;
use tokio_util::io::ReaderStream;
use tokio_util::sync::CancellationToken;

use crate::sandbox::Docker;

/// The image rollouts use unless a repository names another.
pub const DEFAULT_IMAGE: &str = "threadsmith-rollout:latest";

/// Packages of the offline image, beyond debootstrap's minimal base.
pub const OFFLINE_PACKAGES: &str = "git,ca-certificates,procps,patch,diffutils,less,xz-utils";

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(
        "debootstrap is not installed. Install it (`apt-get install debootstrap`) or build from the Dockerfile with `threadsmith image build --dockerfile deploy/rollout.Dockerfile`."
    )]
    NoDebootstrap,
    #[error("building the offline image needs root (debootstrap and chroot); run it with sudo")]
    NotRoot,
    #[error("{step} failed: {detail}")]
    Step { step: &'static str, detail: String },
    #[error("Docker failed while {step}: {detail}")]
    Docker { step: &'static str, detail: String },
}

/// How long one step of a build may take (debootstrap fetching from a slow mirror included):
/// a step that hangs ends the build with an error instead of holding it for ever.
const STEP_LIMIT: Duration = Duration::from_secs(60 * 60);

async fn run(step: &'static str, cmd: &mut Command) -> Result<(), ImageError> {
    cmd.stdin(Stdio::null());
    let out = crate::process::output(cmd, STEP_LIMIT, &CancellationToken::new())
        .await
        .map_err(|e| match e {
            crate::process::RunError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound && step == "debootstrap" =>
            {
                ImageError::NoDebootstrap
            }
            e => ImageError::Step {
                step,
                detail: e.to_string(),
            },
        })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tail: Vec<&str> = stderr.lines().chain(stdout.lines()).rev().take(8).collect();
    Err(ImageError::Step {
        step,
        detail: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
    })
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Options of an offline build.
#[derive(Debug, Clone)]
pub struct OfflineBuild {
    pub tag: String,
    pub suite: String,
    /// A Debian mirror, or a local apt proxy.
    pub mirror: String,
    /// Where the root file system is assembled (a few hundred MB).
    pub scratch: PathBuf,
}

impl Default for OfflineBuild {
    fn default() -> Self {
        Self {
            tag: DEFAULT_IMAGE.into(),
            suite: "bookworm".into(),
            mirror: "http://deb.debian.org/debian".into(),
            scratch: std::env::temp_dir(),
        }
    }
}

/// debootstrap → add the agent user → `docker import`, with the sandbox's defaults baked in.
pub async fn build_offline(
    docker: &Docker,
    opts: &OfflineBuild,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), ImageError> {
    if !is_root() {
        return Err(ImageError::NotRoot);
    }
    let scratch = tempfile::Builder::new()
        .prefix("threadsmith-rootfs-")
        .tempdir_in(&opts.scratch)
        .map_err(|e| ImageError::Step {
            step: "making a scratch folder",
            detail: e.to_string(),
        })?;
    let root = scratch.path().join("root");
    progress(&format!(
        "debootstrap {} (minbase + {OFFLINE_PACKAGES}) from {} …",
        opts.suite, opts.mirror
    ));
    run(
        "debootstrap",
        Command::new("debootstrap")
            .arg("--variant=minbase")
            .arg(format!("--include={OFFLINE_PACKAGES}"))
            .arg(&opts.suite)
            .arg(&root)
            .arg(&opts.mirror),
    )
    .await?;
    progress("adding the agent user (uid 1000) …");
    run(
        "adding the agent user",
        Command::new("chroot").arg(&root).args([
            "useradd",
            "-m",
            "-u",
            "1000",
            "-U",
            "-s",
            "/bin/bash",
            "agent",
        ]),
    )
    .await?;
    for dir in ["workspace", "seed"] {
        let _ = std::fs::create_dir_all(root.join(dir));
    }
    let _ = clear_dir(&root.join("var/cache/apt/archives"));
    let _ = clear_dir(&root.join("var/lib/apt/lists"));
    progress(&format!("importing into Docker as {} …", opts.tag));
    import(docker, &root, &opts.tag).await?;
    progress("done");
    Ok(())
}

fn clear_dir(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() {
            std::fs::remove_file(path)?;
        }
    }
    Ok(())
}

/// `tar -C root -c . | docker import` through the API.
async fn import(docker: &Docker, root: &Path, tag: &str) -> Result<(), ImageError> {
    let (repo, version) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
    let mut tar = Command::new("tar")
        .args(["--numeric-owner", "-C"])
        .arg(root)
        .args(["-cf", "-", "."])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ImageError::Step {
            step: "packing the root file system",
            detail: e.to_string(),
        })?;
    let stdout = tar.stdout.take().ok_or(ImageError::Step {
        step: "packing the root file system",
        detail: "no output".into(),
    })?;
    let body = bollard::body_try_stream(ReaderStream::new(stdout));
    let options = CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo(repo)
        .tag(version)
        .changes(vec![
            "USER 1000:1000".to_string(),
            "WORKDIR /workspace".to_string(),
            "ENV HOME=/tmp LANG=C.UTF-8".to_string(),
            "CMD [\"sleep\", \"infinity\"]".to_string(),
            "LABEL dev.threadsmith.image=rollout".to_string(),
        ])
        .build();
    let mut stream = docker
        .client()
        .create_image(Some(options), Some(body), None);
    // Within the step's limit; past it, `tar` is killed as it is dropped (`kill_on_drop`).
    tokio::time::timeout(STEP_LIMIT, async {
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| ImageError::Docker {
                step: "importing the image",
                detail: e.to_string(),
            })?;
            if let Some(err) = info.error_detail.and_then(|d| d.message) {
                return Err(ImageError::Docker {
                    step: "importing the image",
                    detail: err,
                });
            }
        }
        let status = tar.wait().await.map_err(|e| ImageError::Step {
            step: "packing the root file system",
            detail: e.to_string(),
        })?;
        if !status.success() {
            return Err(ImageError::Step {
                step: "packing the root file system",
                detail: format!("tar exited with {status}"),
            });
        }
        Ok(())
    })
    .await
    .map_err(|_| ImageError::Step {
        step: "importing the image",
        detail: format!("it took longer than {} minutes", STEP_LIMIT.as_secs() / 60),
    })?
}

/// `docker build -f <dockerfile> <context>` through the API (needs the base image or a registry).
pub async fn build_dockerfile(
    docker: &Docker,
    tag: &str,
    dockerfile: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), ImageError> {
    let context = dockerfile.parent().unwrap_or(Path::new("."));
    let name = dockerfile
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "Dockerfile".into());
    let mut tar = Command::new("tar");
    tar.arg("-C")
        .arg(context)
        .args(["-cf", "-", "."])
        .stdin(Stdio::null());
    let out = crate::process::output(&mut tar, STEP_LIMIT, &CancellationToken::new())
        .await
        .map_err(|e| ImageError::Step {
            step: "packing the build context",
            detail: e.to_string(),
        })?;
    let options = BuildImageOptionsBuilder::default()
        .dockerfile(&name)
        .t(tag)
        .rm(true)
        .build();
    let mut stream =
        docker
            .client()
            .build_image(options, None, Some(bollard::body_full(out.stdout.into())));
    while let Some(info) = stream.try_next().await.map_err(|e| ImageError::Docker {
        step: "building the image",
        detail: e.to_string(),
    })? {
        if let Some(line) = info
            .stream
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            progress(line);
        }
        if let Some(err) = info.error_detail.and_then(|d| d.message) {
            return Err(ImageError::Docker {
                step: "building the image",
                detail: err,
            });
        }
    }
    Ok(())
}
