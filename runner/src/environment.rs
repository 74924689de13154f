//! Environment snapshots: a repository's sandbox as its setup command left it, kept so that the
//! next rollouts skip the setup.
//!
//! What a snapshot holds. The sandbox's root is read-only, so a setup can change two places
//! only: the workspace (`/workspace`, a tmpfs) and `$HOME` (`/tmp`, a tmpfs). A snapshot keeps
//! what the setup wrote there that is not the task's own: in the workspace, the paths git
//! ignores (`node_modules/`, `target/`, `.venv/`: never a tracked or a new file, so that the
//! working copy stays the task's own base commit), and all of `$HOME` (the package managers'
//! caches and installs) but threadsmith's own scratch files. A rollout started from a snapshot
//! gets its base commit's checkout as always, then those paths put back, before the copy's mark
//! (see [`crate::workspace`]): they are not the agent's change.
//!
//! Its key: the repository, the rollout image's id, the setup command, the setup's network
//! setting, and the blob ids of the files the setup depends on ([`DEFAULT_SETUP_INPUTS`], or the
//! repository's `setup_inputs`), found anywhere in the base commit's tree. A snapshot is used
//! while younger than its time to live; the cache's whole size has a budget, oldest out first
//! ([`to_prune`]). The setup runs with no secret in its environment (the sandbox's environment
//! is an allow-list), so a snapshot holds none.
//!
//! The backend keeps them ([`EnvironmentCache`]; Docker: committed images, see
//! `sandbox/environments.rs`) and makes sure that rollouts needing the same missing snapshot —
//! of one task, of several, of several processes on one engine — build it once.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::sandbox::{Sandbox, SandboxError};

/// The files a setup usually depends on (lockfiles and manifests), matched by name anywhere in
/// the repository; `*` matches any run of characters but `/`.
pub const DEFAULT_SETUP_INPUTS: &[&str] = &[
    "Cargo.lock",
    "Cargo.toml",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "bun.lockb",
    "poetry.lock",
    "Pipfile.lock",
    "uv.lock",
    "requirements*.txt",
    "pyproject.toml",
    "go.sum",
    "go.mod",
    "Gemfile.lock",
    "composer.lock",
    "mix.lock",
    "pubspec.lock",
    "Package.resolved",
    "gradle.lockfile",
    "flake.lock",
];

/// Where the snapshot's files live in its image; the copy step puts them back.
pub const SNAPSHOT_DIR: &str = "/.threadsmith-env";

/// What a snapshot is made from, but the image (whose id the backend adds: [`Self::digest`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentKey {
    /// The repository, as the task names it.
    pub repo: String,
    pub setup: String,
    pub network: bool,
    /// `(path, blob id)` of each input file of the base commit, sorted by path.
    pub inputs: Vec<(String, String)>,
}

impl EnvironmentKey {
    /// The key's digest with the rollout image's id: the snapshot's name.
    pub fn digest(&self, image_id: &str) -> String {
        let mut h = Sha256::new();
        for part in [
            "threadsmith-environment-v1",
            &self.repo,
            image_id,
            &self.setup,
            if self.network { "network" } else { "offline" },
        ] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        for (path, blob) in &self.inputs {
            h.update(path.as_bytes());
            h.update([0]);
            h.update(blob.as_bytes());
            h.update([0]);
        }
        hex::encode(h.finalize())
    }
}

/// A task's use of the cache.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvironmentPlan {
    pub key: EnvironmentKey,
    /// A snapshot older than this is built again.
    pub ttl: Duration,
    /// The most bytes all snapshots may hold together.
    pub budget_bytes: u64,
}

/// A kept environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Its name (Docker: `threadsmith-env:<digest>`; empty for an image no longer tagged).
    pub name: String,
    /// What a sandbox is made from (Docker: the image id).
    pub id: String,
    pub digest: String,
    pub repo: String,
    pub created: DateTime<Utc>,
    /// The bytes of the files it keeps.
    pub bytes: u64,
}

impl Snapshot {
    pub fn expired(&self, ttl: Duration, now: DateTime<Utc>) -> bool {
        let age = (now - self.created).to_std().unwrap_or_default();
        age >= ttl
    }
}

/// The right to build a missing snapshot, held by one rollout at a time for a key.
#[derive(Debug)]
pub struct BuildLease {
    pub digest: String,
    pub repo: String,
    /// The backend's lock (Docker: the name of the container the snapshot is committed from).
    pub lock: String,
}

/// What a rollout is to do about its environment.
#[derive(Debug)]
pub enum Acquired {
    /// Start from this snapshot; skip the setup.
    Hit(Snapshot),
    /// Run the setup, then save the snapshot ([`EnvironmentCache::save`]) or give the lease
    /// back ([`EnvironmentCache::release`]).
    Build(BuildLease),
    /// Run the setup and keep nothing (why, for the logs).
    Skip(String),
}

/// Whether a rollout started from a snapshot, or saved one: on its result and its page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentUse {
    /// The snapshot's name.
    pub snapshot: String,
    /// Started from it (the setup did not run); else the rollout ran the setup and saved it.
    pub from_snapshot: bool,
}

impl EnvironmentUse {
    /// For people: "started from environment snapshot `…` (the setup did not run)".
    pub fn words(&self) -> String {
        if self.from_snapshot {
            format!(
                "started from environment snapshot {} (the setup did not run)",
                self.snapshot
            )
        } else {
            format!(
                "ran the setup and saved it as environment snapshot {}",
                self.snapshot
            )
        }
    }
}

/// Where a backend keeps snapshots.
#[async_trait]
pub trait EnvironmentCache: Send + Sync {
    /// Finds a fresh snapshot for `plan` made from `image`; when there is none, the first caller
    /// gets the lease to build it and the others wait (at most `wait`) for it to be saved.
    async fn acquire(
        &self,
        image: &str,
        plan: &EnvironmentPlan,
        wait: Duration,
        cancel: &CancellationToken,
    ) -> Result<Acquired, SandboxError>;

    /// Keeps `sandbox`'s environment as the lease's snapshot (the lease is given back either way).
    async fn save(
        &self,
        lease: BuildLease,
        sandbox: &dyn Sandbox,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<Snapshot, SandboxError>;

    /// Gives a lease back unused.
    async fn release(&self, lease: BuildLease);

    /// Every snapshot, the newest first.
    async fn list(&self) -> Result<Vec<Snapshot>, SandboxError>;

    /// Removes a snapshot; `Ok(false)` when a sandbox still uses it.
    async fn remove(&self, snapshot: &Snapshot) -> Result<bool, SandboxError>;
}

/// How long an untagged snapshot with no newer tagged one of its key is left alone: Docker's
/// commit makes the image and then tags it, so a save under way elsewhere (another task or
/// process) shows one for a moment. Older, it is what a failed save left.
pub const UNTAGGED_GRACE: Duration = Duration::from_secs(60 * 60);

/// The snapshots to remove: the expired, the untagged that were replaced (a newer snapshot of
/// the same key is tagged) or left by a failed save, then the oldest until the rest fit
/// `budget_bytes`. An untagged snapshot that may be a save under way is never taken.
pub fn to_prune(
    snapshots: &[Snapshot],
    ttl: Duration,
    budget_bytes: u64,
    now: DateTime<Utc>,
) -> Vec<Snapshot> {
    let replaced = |s: &Snapshot| {
        snapshots
            .iter()
            .any(|t| !t.name.is_empty() && t.digest == s.digest && t.created >= s.created)
    };
    let mut gone = Vec::new();
    let mut kept = Vec::new();
    for s in snapshots {
        if s.name.is_empty() {
            if replaced(s) || s.expired(UNTAGGED_GRACE, now) {
                gone.push(s.clone());
            }
        } else if s.expired(ttl, now) {
            gone.push(s.clone());
        } else {
            kept.push(s.clone());
        }
    }
    kept.sort_by_key(|s| std::cmp::Reverse(s.created));
    let mut total: u64 = kept.iter().map(|s| s.bytes).sum();
    while total > budget_bytes {
        let Some(oldest) = kept.pop() else { break };
        total -= oldest.bytes;
        gone.push(oldest);
    }
    gone
}

/// Removes what [`to_prune`] names; the snapshots removed (those in use stay).
pub async fn prune(
    cache: &dyn EnvironmentCache,
    ttl: Duration,
    budget_bytes: u64,
) -> Result<Vec<Snapshot>, SandboxError> {
    let all = cache.list().await?;
    let mut removed = Vec::new();
    for s in to_prune(&all, ttl, budget_bytes, Utc::now()) {
        if cache.remove(&s).await? {
            removed.push(s);
        }
    }
    Ok(removed)
}

/// Whether `path` is one of `patterns`: a pattern with a `/` matches the whole path, else the
/// file's name; `*` is any run of characters but `/`, `?` one of them.
pub fn is_input(path: &str, patterns: &[String]) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    patterns.iter().any(|p| {
        let subject = if p.contains('/') { path } else { name };
        glob(p.as_bytes(), subject.as_bytes())
    })
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len())
            .take_while(|&i| i == 0 || text[i - 1] != b'/')
            .any(|i| glob(rest, &text[i..])),
        Some((b'?', rest)) => {
            matches!(text.split_first(), Some((c, t)) if *c != b'/' && glob(rest, t))
        }
        Some((c, rest)) => {
            matches!(text.split_first(), Some((t, tail)) if t == c && glob(rest, tail))
        }
    }
}

/// The input files among a `git ls-tree -r -z` listing (`<mode> <type> <object>\t<path>`),
/// sorted by path.
pub fn inputs_from_tree(listing: &[u8], patterns: &[String]) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = listing
        .split(|b| *b == 0)
        .filter_map(|entry| {
            let entry = std::str::from_utf8(entry).ok()?;
            let (meta, path) = entry.split_once('\t')?;
            let mut meta = meta.split_whitespace();
            let (_, kind, object) = (meta.next()?, meta.next()?, meta.next()?);
            (kind == "blob" && is_input(path, patterns))
                .then(|| (path.to_string(), object.to_string()))
        })
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Vec<String> {
        DEFAULT_SETUP_INPUTS.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn inputs_are_found_anywhere_by_name_or_by_path() {
        let listing = b"100644 blob aaa\tCargo.lock\x00100644 blob bbb\tweb/package-lock.json\0\
            100644 blob ccc\tsrc/main.rs\x00100644 blob ddd\tpy/requirements-dev.txt\0\
            040000 tree eee\tCargo.lock.d\x00160000 commit fff\tvendor/go.sum";
        let found = inputs_from_tree(listing, &defaults());
        assert_eq!(
            found,
            vec![
                ("Cargo.lock".to_string(), "aaa".to_string()),
                ("py/requirements-dev.txt".to_string(), "ddd".to_string()),
                ("web/package-lock.json".to_string(), "bbb".to_string()),
            ]
        );
        let own = vec!["tools/*.lock".to_string()];
        assert!(is_input("tools/x.lock", &own));
        assert!(!is_input("tools/a/x.lock", &own));
        assert!(!is_input("x.lock", &own));
        assert!(is_input("a/b/requirements.txt", &defaults()));
        assert!(!is_input("requirements/base.in", &defaults()));
    }

    #[test]
    fn the_digest_changes_with_every_part_of_the_key() {
        let key = EnvironmentKey {
            repo: "acme/api".into(),
            setup: "make deps".into(),
            network: false,
            inputs: vec![("Cargo.lock".into(), "aaa".into())],
        };
        let base = key.digest("sha256:1");
        assert_eq!(base, key.clone().digest("sha256:1"));
        assert_ne!(base, key.digest("sha256:2"));
        let variants = [
            EnvironmentKey {
                repo: "acme/web".into(),
                ..key.clone()
            },
            EnvironmentKey {
                setup: "make deps2".into(),
                ..key.clone()
            },
            EnvironmentKey {
                network: true,
                ..key.clone()
            },
            EnvironmentKey {
                inputs: vec![("Cargo.lock".into(), "bbb".into())],
                ..key.clone()
            },
        ];
        for v in variants {
            assert_ne!(v.digest("sha256:1"), base, "{v:?}");
        }
    }

    fn snap(name: &str, age_mins: i64, bytes: u64, now: DateTime<Utc>) -> Snapshot {
        Snapshot {
            name: name.into(),
            id: format!("id-{name}"),
            digest: name.into(),
            repo: "acme/api".into(),
            created: now - chrono::Duration::minutes(age_mins),
            bytes,
        }
    }

    #[test]
    fn pruning_takes_the_expired_the_replaced_then_the_oldest_over_budget_never_a_save_under_way() {
        let now = Utc::now();
        let untagged = |digest: &str, age_mins| Snapshot {
            name: String::new(),
            digest: digest.into(),
            ..snap("", age_mins, 1, now)
        };
        let all = vec![
            snap("new", 1, 40, now),
            snap("mid", 10, 40, now),
            snap("old", 20, 40, now),
            snap("expired", 200, 1, now),
            // Replaced by "new" (the tag moved on).
            untagged("new", 2),
            // A save under way elsewhere (made, not yet tagged): never taken, not counted.
            untagged("saving", 0),
            // Left by a save that failed hours ago.
            untagged("failed", 180),
        ];
        let names = |v: Vec<Snapshot>| {
            v.into_iter()
                .map(|s| if s.name.is_empty() { s.digest } else { s.name })
                .collect::<Vec<_>>()
        };
        let ttl = Duration::from_secs(60 * 60);
        assert_eq!(
            names(to_prune(&all, ttl, 1000, now)),
            ["expired", "new", "failed"]
        );
        assert_eq!(
            names(to_prune(&all, ttl, 80, now)),
            ["expired", "new", "failed", "old"]
        );
        assert_eq!(
            names(to_prune(&all, ttl, 0, now)),
            ["expired", "new", "failed", "old", "mid", "new"]
        );
    }

    #[test]
    fn the_result_says_which_snapshot_and_how_it_was_used() {
        let hit = EnvironmentUse {
            snapshot: "threadsmith-env:abc".into(),
            from_snapshot: true,
        };
        assert!(
            hit.words()
                .contains("started from environment snapshot threadsmith-env:abc")
        );
        let built = EnvironmentUse {
            from_snapshot: false,
            ..hit
        };
        assert!(built.words().contains("saved it as environment snapshot"));
    }
}
