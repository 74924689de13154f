//! Reading the repository's instructions for agents from the host's mirror of its base commit.

use std::time::Duration;

use threadsmith_runner::{PreparedRepo, RepoCache, RepoSource};
use tokio_util::sync::CancellationToken;

use super::{
    Assembled, BUDGET_BYTES, MAX_APPLIED, NAMES, REPO_FILE, Source, applicable, assemble, for_spec,
    instruction_files, mentioned_dirs,
};
use crate::config::Config;

/// How long the spec step waits for a first clone of a repository never fetched before.
pub const SPEC_CLONE_LIMIT: Duration = Duration::from_secs(30);

async fn read(repos: &RepoCache, repo: &PreparedRepo, path: &str) -> Option<Source> {
    let text = repos.read_file(repo, path).await?;
    Some(Source {
        path: path.to_string(),
        text,
    })
}

/// The agent's section for a task whose spec reads `spec_text`, at the prepared base;
/// `repo_instructions` are `.threadsmith.toml`'s.
pub async fn for_agent(
    repos: &RepoCache,
    repo: &PreparedRepo,
    spec_text: &str,
    repo_instructions: Option<&str>,
) -> Assembled {
    let mut sources = Vec::new();
    let mut others = Vec::new();
    match repos.list_files(repo).await {
        Ok(paths) => {
            let files = instruction_files(&paths);
            let (applied, rest) = applicable(&files, &mentioned_dirs(spec_text, &paths));
            // The nearest files are kept when there are too many: they take precedence.
            let skip = applied.len().saturating_sub(MAX_APPLIED);
            for path in &applied[skip..] {
                sources.extend(read(repos, repo, path).await);
            }
            others = rest;
            others.extend(applied[..skip].iter().cloned());
            others.sort();
        }
        Err(e) => {
            // Without the list, the root's file is still worth reading.
            tracing::warn!(error = %e, "could not list the repository's files for its AGENTS.md");
            sources.extend(root_file(repos, repo).await);
        }
    }
    if let Some(text) = repo_instructions {
        sources.push(Source {
            path: REPO_FILE.into(),
            text: text.to_string(),
        });
    }
    assemble(&sources, &others, BUDGET_BYTES)
}

/// The root's instruction file, the first of [`NAMES`] that is there and not empty.
async fn root_file(repos: &RepoCache, repo: &PreparedRepo) -> Option<Source> {
    for name in NAMES {
        if let Some(s) = read(repos, repo, name)
            .await
            .filter(|s| !s.text.trim().is_empty())
        {
            return Some(s);
        }
    }
    None
}

/// What the spec step is told about the repository `name` (as requested) at `base`: its root
/// instruction file and `.threadsmith.toml`'s `instructions`. Read from the mirror as last
/// fetched (no network), or from a first clone within [`SPEC_CLONE_LIMIT`]; `None` when there
/// are none or they cannot be read (the spec is then made from the thread alone).
pub async fn for_spec_step(
    repos: &RepoCache,
    config: &Config,
    name: &str,
    base: Option<&str>,
) -> Option<String> {
    let configured = config.repo(name);
    let source = RepoSource::parse(configured.map_or(name, |r| r.url.as_str())).ok()?;
    let base = base.or_else(|| configured.and_then(|r| r.base.as_deref()));
    let repo = match repos.cached(&source, base).await {
        Some(r) => r,
        None => {
            let never = CancellationToken::new();
            match tokio::time::timeout(SPEC_CLONE_LIMIT, repos.prepare_with(&source, base, &never))
                .await
            {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    tracing::info!(error = %e, repo = name, "no repository instructions for the spec");
                    return None;
                }
                Err(_) => {
                    tracing::info!(
                        repo = name,
                        "the repository took too long to clone for the spec"
                    );
                    return None;
                }
            }
        }
    };
    let mut sources: Vec<Source> = root_file(repos, &repo).await.into_iter().collect();
    if let Some(text) = repos.read_file(&repo, REPO_FILE).await {
        match crate::config::repo_file::parse(&text) {
            Ok(file) => {
                if let Some(text) = file.instructions {
                    sources.push(Source {
                        path: REPO_FILE.into(),
                        text,
                    });
                }
            }
            // The task itself refuses the file with the reason; the spec goes without it.
            Err(e) => tracing::info!(error = %e, repo = name, "the repository's .threadsmith.toml"),
        }
    }
    for_spec(&sources)
}
