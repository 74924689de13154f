//! Reading a repository's files at its base on the host, for what the bot tells the agent
//! about the repository (its instructions for agents): the list of paths, and the mirror as
//! last fetched, without the network.

use tokio_util::sync::CancellationToken;

use super::{PreparedRepo, RepoCache, RepoError, RepoSource};

impl RepoCache {
    /// Every file path of the base commit (`git ls-tree`; nothing is checked out).
    pub async fn list_files(&self, repo: &PreparedRepo) -> Result<Vec<String>, RepoError> {
        let never = CancellationToken::new();
        let out = self
            .host(&never)
            .git(
                Some(&repo.mirror),
                &["ls-tree", "-r", "--name-only", "-z", &repo.base_commit],
                "listing the repository's files",
            )
            .await?;
        Ok(out
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect())
    }

    /// The mirror as it was last fetched, with `base` (or its default branch) resolved, with
    /// no network call; `None` when the repository was never fetched or the ref is unknown.
    pub async fn cached(&self, source: &RepoSource, base: Option<&str>) -> Option<PreparedRepo> {
        let mirror = self.mirror_path(source);
        if !mirror.join("HEAD").exists() {
            return None;
        }
        let never = CancellationToken::new();
        let host = self.host(&never);
        let base_ref = match base.map(str::trim).filter(|b| !b.is_empty()) {
            Some(b) if !b.starts_with('-') => b.to_string(),
            Some(_) => return None,
            None => {
                let head = host
                    .git(
                        Some(&mirror),
                        &["symbolic-ref", "--short", "HEAD"],
                        "finding the default branch",
                    )
                    .await
                    .ok()?;
                String::from_utf8_lossy(&head).trim().to_string()
            }
        };
        let spec = format!("{base_ref}^{{commit}}");
        let commit = host
            .git(
                Some(&mirror),
                &["rev-parse", "--verify", "--quiet", &spec],
                "resolving the base",
            )
            .await
            .ok()?;
        Some(PreparedRepo {
            source: source.clone(),
            mirror,
            base_ref,
            base_commit: String::from_utf8_lossy(&commit).trim().to_string(),
        })
    }
}
