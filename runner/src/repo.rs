//! Repositories on the host: one cached mirror per repository, fetched once per task, and the
//! task's *seed* — the base commit's objects and a template checkout, packed as a tar archive that
//! is uploaded once per task and shared read-only by its rollouts.
//!
//! Seed layout (mounted at `/seed` in every sandbox):
//! - `objects/` — the git objects of the base commit (shallow, depth 1);
//! - `checkout.tar` — a checkout of the base commit (its files and a `.git` whose objects are
//!   borrowed from `/seed/objects`), as an uncompressed archive;
//! - `tree/.git` — that checkout's git directory (its index holds the files' stat data).
//!
//! A rollout extracts `checkout.tar` into `/workspace` (see [`crate::workspace`]). Its diff is
//! taken against `/seed`, which the agent cannot write, so an agent that rewrites or deletes
//! `/workspace/.git` cannot hide or forge its changes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::Mutex;

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
}

/// FNV-1a: a stable, dependency-free name for a mirror directory.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub(crate) async fn git(
    dir: Option<&Path>,
    args: &[&str],
    action: &'static str,
) -> Result<Vec<u8>, RepoError> {
    let mut cmd = crate::process::command("git");
    if let Some(dir) = dir {
        cmd.arg("-C").arg(dir);
    }
    cmd.args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = cmd.output().await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            RepoError::GitMissing
        } else {
            RepoError::Git {
                action,
                detail: e.to_string(),
            }
        }
    })?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(RepoError::Git {
            action,
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

impl RepoCache {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            locks: Arc::default(),
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
        let mirror = self.mirror_path(source);
        let lock = {
            let mut locks = self.locks.lock().await;
            locks.entry(mirror.clone()).or_default().clone()
        };
        let _guard = lock.lock().await;
        if mirror.join("HEAD").exists() {
            git(
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
            git(
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
                let head = git(
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
        let commit = git(
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
        git(Some(&repo.mirror), &["show", &spec], "reading a file")
            .await
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// How many bytes the files of the base commit take once checked out (blob sizes, from
    /// `git ls-tree`; nothing is checked out).
    pub async fn tree_size(&self, repo: &PreparedRepo) -> Result<u64, RepoError> {
        let out = git(
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

    /// Builds the task's seed archive (see the module docs).
    pub async fn seed_archive(&self, repo: &PreparedRepo) -> Result<Vec<u8>, RepoError> {
        let io = |action: &'static str| {
            move |e: std::io::Error| RepoError::Git {
                action,
                detail: e.to_string(),
            }
        };
        let work = tempfile::tempdir().map_err(io("making a scratch directory"))?;
        let tree = work.path().join("tree");
        let tree_arg = tree.display().to_string();
        git(
            None,
            &["init", "--quiet", "--initial-branch=threadsmith", &tree_arg],
            "preparing the seed",
        )
        .await?;
        let mirror_url = format!("file://{}", repo.mirror.display());
        git(
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
        git(
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
            git(Some(&tree), &["config", key, value], "configuring the seed").await?;
        }
        write_unstated_index(&tree).await?;
        let objects = work.path().join("objects");
        std::fs::rename(tree.join(".git/objects"), &objects).map_err(io("moving objects"))?;
        std::fs::create_dir_all(tree.join(".git/objects/info"))
            .map_err(io("writing alternates"))?;
        std::fs::write(
            tree.join(".git/objects/info/alternates"),
            format!("{}/objects\n", crate::sandbox::SEED),
        )
        .map_err(io("writing alternates"))?;
        // The checkout as one archive, which a rollout extracts in one sequential read; the
        // seed keeps only its git directory beside it, for the diff.
        tar(&[
            "-C",
            &tree_arg,
            "-cf",
            &work
                .path()
                .join(crate::workspace::CHECKOUT_ARCHIVE)
                .display()
                .to_string(),
            ".",
        ])
        .await?;
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
        tar(&[
            "-C",
            &root,
            "-cf",
            "-",
            "objects",
            crate::workspace::CHECKOUT_ARCHIVE,
            "tree",
        ])
        .await
    }
}

/// Writes the base's index without stat data beside the checkout's own index (see
/// [`crate::workspace::UNSTATED_INDEX`]), unless the base has submodules: the diff step then
/// leaves their folders to `git add -A`.
async fn write_unstated_index(tree: &Path) -> Result<(), RepoError> {
    let stage = git(
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
    git(
        Some(tree),
        &["read-tree", &output, "HEAD"],
        "indexing the base",
    )
    .await?;
    Ok(())
}

/// Runs `tar` with the seed's ownership (the sandbox's user) and returns its stdout.
async fn tar(args: &[&str]) -> Result<Vec<u8>, RepoError> {
    let io = |e: std::io::Error| RepoError::Git {
        action: "packing the seed",
        detail: e.to_string(),
    };
    let out = crate::process::command("tar")
        .args(["--owner=1000", "--group=1000", "--numeric-owner"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(io)?;
    if !out.status.success() {
        return Err(RepoError::Git {
            action: "packing the seed",
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out.stdout)
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

    #[test]
    fn display_names_are_short() {
        let u = RepoSource::Url("git@github.com:org/app.git".into());
        assert_eq!(u.display_name(), "app");
        let u = RepoSource::Url("https://example.com/org/tool/".into());
        assert_eq!(u.display_name(), "tool");
    }
}
