//! Repositories on the host: one cached mirror per repository, fetched once per task, and the
//! task's *seed* — the base commit's objects and a template checkout, packed as a tar archive that
//! is uploaded once per task and shared read-only by its rollouts.
//!
//! Seed layout (mounted at `/seed` in every sandbox):
//! - `objects/` — the git objects of the base commit (shallow, depth 1);
//! - `checkout.tar` — a checkout of the base commit (its files and a `.git` whose objects are
//!   borrowed from `/seed/objects`), as an uncompressed archive; a large checkout is split in
//!   parts of about equal size, `checkout.tar` and `checkout.1.tar`, extracted at once;
//! - `tree/.git` — that checkout's git directory (its index holds the files' stat data).
//!
//! A rollout extracts `checkout.tar` into `/workspace` (see [`crate::workspace`]). Its diff is
//! taken against `/seed`, which the agent cannot write, so an agent that rewrites or deletes
//! `/workspace/.git` cannot hide or forge its changes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

mod checkout;
mod files;
mod host;

use host::Host;

/// How long one git or tar call may take unless [`RepoCache::with_timeout`] says otherwise: a
/// first clone of a large repository over a slow link, but not a fetch that hangs for ever.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Where a repository comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoSource {
    /// A directory holding a git repository on this machine, or a git bundle file.
    Local(PathBuf),
    /// Anything git can clone: `https://…`, `ssh://…`, `git@host:path`, `file://…`.
    Url(String),
}

impl RepoSource {
    /// Reads what a user typed: an existing directory is local, anything that looks like a URL
    /// is a URL.
    pub fn parse(text: &str) -> Result<Self, RepoError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(RepoError::NotFound {
                repo: String::new(),
                detail: "no repository was given".into(),
            });
        }
        let looks_like_url = text.contains("://")
            || (text.contains('@') && text.contains(':') && !text.starts_with('/'));
        if looks_like_url {
            return Ok(Self::Url(text.to_string()));
        }
        let path = Path::new(text);
        let bundle = path.is_file() && path.extension().is_some_and(|e| e == "bundle");
        if path.is_dir() || bundle {
            let abs = std::fs::canonicalize(path).map_err(|e| RepoError::NotFound {
                repo: text.into(),
                detail: e.to_string(),
            })?;
            return Ok(Self::Local(abs));
        }
        Err(RepoError::NotFound {
            repo: text.into(),
            detail: "it is neither a directory (or .bundle file) on this machine nor a git URL"
                .into(),
        })
    }

    fn as_git_arg(&self) -> String {
        match self {
            Self::Local(p) => p.display().to_string(),
            Self::Url(u) => u.clone(),
        }
    }

    /// A short human name: the last path segment without `.git`.
    pub fn display_name(&self) -> String {
        let s = self.as_git_arg();
        let last = s
            .trim_end_matches('/')
            .rsplit(['/', ':'])
            .next()
            .unwrap_or("repo")
            .trim_end_matches(".git")
            .to_string();
        if last.is_empty() { "repo".into() } else { last }
    }
}

impl std::fmt::Display for RepoSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_git_arg())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("cannot find the repository `{repo}`: {detail}")]
    NotFound { repo: String, detail: String },
    #[error("the repository `{repo}` has no branch, tag or commit named `{base}`")]
    UnknownRef { repo: String, base: String },
    #[error("git failed while {action}: {detail}")]
    Git {
        action: &'static str,
        detail: String,
    },
    #[error("git is not installed on this machine (threadsmith needs it on the host)")]
    GitMissing,
    #[error(
        "git took longer than {} s while {action}, so it was stopped (is the repository's host reachable?)",
        limit.as_secs()
    )]
    TimedOut {
        action: &'static str,
        limit: Duration,
    },
    #[error("git was stopped while {action}: the task was cancelled")]
    Cancelled { action: &'static str },
}

/// A repository ready for a task: its mirror is fresh and the base is resolved to a commit.
#[derive(Debug, Clone)]
pub struct PreparedRepo {
    pub source: RepoSource,
    pub mirror: PathBuf,
    /// The ref the user asked for (or the repository's default branch).
    pub base_ref: String,
    pub base_commit: String,
}

/// The host's cache of mirrors.
#[derive(Clone)]
pub struct RepoCache {
    root: PathBuf,
    locks: Arc<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>>,
    /// The time limit of each git or tar call.
    timeout: Duration,
}

/// FNV-1a: a stable, dependency-free name for a mirror directory.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl RepoCache {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            locks: Arc::default(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Each git or tar call may take at most `limit` (default [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(mut self, limit: Duration) -> Self {
        self.timeout = limit;
        self
    }

    /// Calls that only `limit` stops (quick local reads of a mirror).
    fn host<'a>(&self, cancel: &'a CancellationToken) -> Host<'a> {
        Host {
            limit: self.timeout,
            cancel,
        }
    }

    pub fn mirror_path(&self, source: &RepoSource) -> PathBuf {
        let key = source.to_string();
        self.root.join("mirrors").join(format!(
            "{}-{:016x}.git",
            source.display_name(),
            fnv1a(&key)
        ))
    }

    /// Brings the mirror up to date (cloning it the first time) and resolves `base`.
    pub async fn prepare(
        &self,
        source: &RepoSource,
        base: Option<&str>,
    ) -> Result<PreparedRepo, RepoError> {
        self.prepare_with(source, base, &CancellationToken::new())
            .await
    }

    /// [`Self::prepare`], stopped by `cancel` ([`RepoError::Cancelled`]).
    pub async fn prepare_with(
        &self,
        source: &RepoSource,
        base: Option<&str>,
        cancel: &CancellationToken,
    ) -> Result<PreparedRepo, RepoError> {
        let host = self.host(cancel);
        let mirror = self.mirror_path(source);
        let lock = {
            let mut locks = self.locks.lock().await;
            locks.entry(mirror.clone()).or_default().clone()
        };
        let _guard = lock.lock().await;
        if mirror.join("HEAD").exists() {
            host.git(
                Some(&mirror),
                &["fetch", "--prune", "--quiet", "origin"],
                "fetching the repository",
            )
            .await
            .map_err(|e| not_found(source, e))?;
        } else {
            std::fs::create_dir_all(mirror.parent().unwrap_or(&self.root)).map_err(|e| {
                RepoError::Git {
                    action: "creating the mirror cache",
                    detail: e.to_string(),
                }
            })?;
            let tmp = mirror.with_extension(format!("tmp-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&tmp);
            let tmp_arg = tmp.display().to_string();
            host.git(
                None,
                &[
                    "clone",
                    "--mirror",
                    "--quiet",
                    &source.to_string(),
                    &tmp_arg,
                ],
                "cloning the repository",
            )
            .await
            .map_err(|e| not_found(source, e))?;
            std::fs::rename(&tmp, &mirror).map_err(|e| RepoError::Git {
                action: "moving the mirror into place",
                detail: e.to_string(),
            })?;
        }
        let base_ref = match base.map(str::trim).filter(|b| !b.is_empty()) {
            Some(b) => b.to_string(),
            None => {
                let head = host
                    .git(
                        Some(&mirror),
                        &["symbolic-ref", "--short", "HEAD"],
                        "finding the default branch",
                    )
                    .await?;
                String::from_utf8_lossy(&head).trim().to_string()
            }
        };
        if base_ref.starts_with('-') {
            return Err(RepoError::UnknownRef {
                repo: source.to_string(),
                base: base_ref,
            });
        }
        let spec = format!("{base_ref}^{{commit}}");
        let commit = host
            .git(
                Some(&mirror),
                &["rev-parse", "--verify", "--quiet", &spec],
                "resolving the base",
            )
            .await
            .map_err(|_| RepoError::UnknownRef {
                repo: source.to_string(),
                base: base_ref.clone(),
            })?;
        Ok(PreparedRepo {
            source: source.clone(),
            mirror,
            base_ref,
            base_commit: String::from_utf8_lossy(&commit).trim().to_string(),
        })
    }

    /// A file of the base commit, if it exists (for `.threadsmith.toml`).
    pub async fn read_file(&self, repo: &PreparedRepo, path: &str) -> Option<String> {
        let spec = format!("{}:{path}", repo.base_commit);
        let never = CancellationToken::new();
        self.host(&never)
            .git(Some(&repo.mirror), &["show", &spec], "reading a file")
            .await
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// How many bytes the files of the base commit take once checked out (blob sizes, from
    /// `git ls-tree`; nothing is checked out).
    pub async fn tree_size(&self, repo: &PreparedRepo) -> Result<u64, RepoError> {
        let never = CancellationToken::new();
        let out = self
            .host(&never)
            .git(
                Some(&repo.mirror),
                &["ls-tree", "-r", "-l", "-z", &repo.base_commit],
                "measuring the repository",
            )
            .await?;
        // `<mode> <type> <object> <size>\t<path>`; submodules and links have `-` as size.
        Ok(out
            .split(|b| *b == 0)
            .filter_map(|entry| {
                let meta = entry.split(|b| *b == b'\t').next()?;
                let size = std::str::from_utf8(meta).ok()?.split_whitespace().nth(3)?;
                size.parse::<u64>().ok()
            })
            .sum())
    }

    /// The base commit's `git ls-tree -r -z` (what the environment cache's key is made from:
    /// see [`crate::environment::inputs_from_tree`]).
    pub async fn tree_listing(&self, repo: &PreparedRepo) -> Result<Vec<u8>, RepoError> {
        let never = CancellationToken::new();
        let args = ["ls-tree", "-r", "-z", repo.base_commit.as_str()];
        self.host(&never)
            .git(Some(&repo.mirror), &args, "listing the repository")
            .await
    }

    /// Builds the task's seed archive (see the module docs).
    pub async fn seed_archive(
        &self,
        repo: &PreparedRepo,
        cancel: &CancellationToken,
    ) -> Result<Vec<u8>, RepoError> {
        let host = self.host(cancel);
        let io = |action: &'static str| {
            move |e: std::io::Error| RepoError::Git {
                action,
                detail: e.to_string(),
            }
        };
        let work = tempfile::tempdir().map_err(io("making a scratch directory"))?;
        let tree = work.path().join("tree");
        let tree_arg = tree.display().to_string();
        host.git(
            None,
            &["init", "--quiet", "--initial-branch=threadsmith", &tree_arg],
            "preparing the seed",
        )
        .await?;
        let mirror_url = format!("file://{}", repo.mirror.display());
        host.git(
            Some(&tree),
            &[
                "fetch",
                "--quiet",
                "--depth=1",
                "--no-tags",
                // The pack only crosses this machine: spend no time compressing it.
                "--upload-pack=git -c pack.compression=0 -c pack.window=0 upload-pack",
                &mirror_url,
                &repo.base_commit,
            ],
            "copying the base commit",
        )
        .await?;
        host.git(
            Some(&tree),
            &["checkout", "--quiet", "-B", "threadsmith", "FETCH_HEAD"],
            "checking out the base commit",
        )
        .await?;
        for (key, value) in [
            ("core.checkStat", "minimal"),
            ("core.trustctime", "false"),
            ("user.name", "threadsmith"),
            ("user.email", "threadsmith@localhost"),
            ("gc.auto", "0"),
        ] {
            host.git(Some(&tree), &["config", key, value], "configuring the seed")
                .await?;
        }
        write_unstated_index(&host, &tree).await?;
        let objects = work.path().join("objects");
        std::fs::rename(tree.join(".git/objects"), &objects).map_err(io("moving objects"))?;
        std::fs::create_dir_all(tree.join(".git/objects/info"))
            .map_err(io("writing alternates"))?;
        std::fs::write(
            tree.join(".git/objects/info/alternates"),
            format!("{}/objects\n", crate::sandbox::SEED),
        )
        .map_err(io("writing alternates"))?;
        // The checkout as archives, which a rollout extracts in sequential reads (two at once
        // for a large one); the seed keeps only its git directory beside them, for the diff.
        checkout::pack(&host, &tree, work.path()).await?;
        for entry in std::fs::read_dir(&tree).map_err(io("trimming the seed"))? {
            let entry = entry.map_err(io("trimming the seed"))?;
            if entry.file_name() == ".git" {
                continue;
            }
            let path = entry.path();
            if entry.file_type().map_err(io("trimming the seed"))?.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            }
            .map_err(io("trimming the seed"))?;
        }
        let root = work.path().display().to_string();
        let parts: Vec<String> = (0..checkout::PARTS)
            .map(checkout::part_name)
            .filter(|name| work.path().join(name).exists())
            .collect();
        let mut args = vec!["-C", &root, "-cf", "-", "objects", "tree"];
        args.extend(parts.iter().map(String::as_str));
        host.tar(&args).await
    }
}

/// Writes the base's index without stat data beside the checkout's own index (see
/// [`crate::workspace::UNSTATED_INDEX`]), unless the base has submodules: the diff step then
/// leaves their folders to `git add -A`.
async fn write_unstated_index(host: &host::Host<'_>, tree: &Path) -> Result<(), RepoError> {
    let stage = host
        .git(
            Some(tree),
            &["ls-files", "--stage", "-z"],
            "listing the base",
        )
        .await?;
    if stage
        .split(|b| *b == 0)
        .any(|entry| entry.starts_with(b"160000 "))
    {
        return Ok(());
    }
    let output = format!(
        "--index-output={}",
        tree.join(".git")
            .join(crate::workspace::UNSTATED_INDEX)
            .display()
    );
    host.git(
        Some(tree),
        &["read-tree", &output, "HEAD"],
        "indexing the base",
    )
    .await?;
    Ok(())
}

fn not_found(source: &RepoSource, e: RepoError) -> RepoError {
    match e {
        RepoError::Git { detail, .. } => RepoError::NotFound {
            repo: source.to_string(),
            detail,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_paths_are_told_apart() {
        assert!(matches!(
            RepoSource::parse("https://github.com/org/app.git"),
            Ok(RepoSource::Url(_))
        ));
        assert!(matches!(
            RepoSource::parse("git@github.com:org/app.git"),
            Ok(RepoSource::Url(_))
        ));
        assert!(matches!(RepoSource::parse("."), Ok(RepoSource::Local(_))));
        assert!(matches!(
            RepoSource::parse("/no/such/dir"),
            Err(RepoError::NotFound { .. })
        ));
        assert!(RepoSource::parse("  ").is_err());
    }

    /// A mirror whose remote's `upload-pack` hangs (as a fetch from an unreachable host does),
    /// and writes its pid first.
    fn hanging_mirror(cache: &RepoCache, source: &RepoSource, pid_file: &Path) {
        let mirror = cache.mirror_path(source);
        let git = |args: &[&str]| {
            let out = std::process::Command::new("git")
                .args(args)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let mirror_arg = mirror.display().to_string();
        git(&["init", "--quiet", "--bare", &mirror_arg]);
        git(&[
            "-C",
            &mirror_arg,
            "config",
            "remote.origin.url",
            &source.to_string(),
        ]);
        let hang = format!("echo $$ > '{}'; exec sleep 600 #", pid_file.display());
        git(&[
            "-C",
            &mirror_arg,
            "config",
            "remote.origin.uploadpack",
            &hang,
        ]);
    }

    #[tokio::test]
    async fn a_hung_fetch_is_stopped_at_its_limit_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let remote = dir.path().join("remote");
        std::fs::create_dir(&remote).unwrap();
        let source = RepoSource::Local(remote);
        let cache = RepoCache::new(dir.path().join("cache")).with_timeout(Duration::from_secs(2));
        let pid_file = dir.path().join("upload-pack.pid");
        hanging_mirror(&cache, &source, &pid_file);

        let started = std::time::Instant::now();
        let err = cache.prepare(&source, None).await.unwrap_err();
        assert!(
            matches!(
                err,
                RepoError::TimedOut {
                    action: "fetching the repository",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "git took longer than 2 s while fetching the repository, so it was stopped (is the repository's host reachable?)"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        // The hung upload-pack git started was killed with it.
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let stat = format!("/proc/{}/stat", pid.trim());
        let gone = || {
            std::fs::read_to_string(&stat).map_or(true, |s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !gone() {
            assert!(
                std::time::Instant::now() < deadline,
                "upload-pack {pid} still runs"
            );
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_cancelled_fetch_stops_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let remote = dir.path().join("remote");
        std::fs::create_dir(&remote).unwrap();
        let source = RepoSource::Local(remote);
        let cache = RepoCache::new(dir.path().join("cache"));
        hanging_mirror(&cache, &source, &dir.path().join("pid"));
        let cancel = CancellationToken::new();
        cancel.cancel();
        let err = cache
            .prepare_with(&source, None, &cancel)
            .await
            .unwrap_err();
        assert!(matches!(err, RepoError::Cancelled { .. }), "{err:?}");
    }

    #[test]
    fn display_names_are_short() {
        let u = RepoSource::Url("git@github.com:org/app.git".into());
        assert_eq!(u.display_name(), "app");
        let u = RepoSource::Url("https://example.com/org/tool/".into());
        assert_eq!(u.display_name(), "tool");
    }
}
