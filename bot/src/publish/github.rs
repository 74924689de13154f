//! GitHub through octocrab: a token, or a GitHub App whose installation tokens octocrab mints and
//! refreshes. The token for `git push` is handed to git in its environment, never on a command
//! line or in a remote URL.

use std::collections::HashMap;

use octocrab::Octocrab;
use octocrab::models::{AppId, InstallationId};
use octocrab::params::State;
use threadsmith_runner::secret::Secret;
use tokio::sync::Mutex;

use super::PublishError;
use crate::config::GithubSection;

pub const DEFAULT_API: &str = "https://api.github.com";

enum Auth {
    Token {
        client: Octocrab,
        token: Secret,
    },
    App {
        app: Octocrab,
        installation_id: Option<u64>,
        /// One client per installation: each caches and refreshes its own token.
        installations: Mutex<HashMap<u64, Octocrab>>,
    },
}

pub struct GitHub {
    auth: Auth,
}

/// A pull request, as threadsmith needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct PullRequest {
    pub number: u64,
    pub url: String,
    pub reused: bool,
}

/// What GitHub said, for a person.
pub fn describe(e: &octocrab::Error) -> String {
    match e {
        octocrab::Error::GitHub { source, .. } => {
            let mut s = format!("{} ({})", source.message, source.status_code);
            if let Some(errors) = &source.errors {
                for e in errors {
                    if let Some(m) = e.get("message").and_then(|m| m.as_str()) {
                        s.push_str(&format!("; {m}"));
                    }
                }
            }
            s
        }
        other => {
            let mut s = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(e) = source {
                s.push_str(&format!(": {e}"));
                source = e.source();
            }
            s
        }
    }
}

fn gh_err(action: &'static str) -> impl Fn(octocrab::Error) -> PublishError {
    move |e| PublishError::GitHub {
        action,
        detail: describe(&e),
    }
}

impl GitHub {
    /// `None` when no credentials are configured.
    pub fn new(section: &GithubSection) -> Result<Option<Self>, PublishError> {
        let api = section.api_url.as_deref().unwrap_or(DEFAULT_API);
        let builder = || {
            Octocrab::builder()
                .base_uri(api)
                .map_err(|e| PublishError::Config(format!("github.api_url `{api}`: {e}")))
        };
        if let Some(app_id) = section.app_id {
            let pem = match (&section.private_key, &section.private_key_file) {
                (Some(k), _) => k.expose().as_bytes().to_vec(),
                (None, Some(path)) => std::fs::read(path).map_err(|e| {
                    PublishError::Config(format!(
                        "cannot read the GitHub App key {}: {e}",
                        path.display()
                    ))
                })?,
                (None, None) => {
                    return Err(PublishError::Config(
                        "a GitHub App (github.app_id) needs its private key: set THREADSMITH_GITHUB_APP_KEY or github.private_key_file".into(),
                    ));
                }
            };
            let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).map_err(|e| {
                PublishError::Config(format!("the GitHub App key is not an RSA PEM key: {e}"))
            })?;
            let app = builder()?
                .app(AppId(app_id), key)
                .build()
                .map_err(gh_err("set up the client"))?;
            return Ok(Some(Self {
                auth: Auth::App {
                    app,
                    installation_id: section.installation_id,
                    installations: Mutex::default(),
                },
            }));
        }
        if let Some(token) = &section.token {
            let client = builder()?
                .personal_token(token.expose().to_string())
                .build()
                .map_err(gh_err("set up the client"))?;
            return Ok(Some(Self {
                auth: Auth::Token {
                    client,
                    token: token.clone(),
                },
            }));
        }
        Ok(None)
    }

    /// A client for one repository and a token `git push` can use (fresh for an App).
    pub async fn client_for(
        &self,
        owner: &str,
        name: &str,
    ) -> Result<(Octocrab, Secret), PublishError> {
        match &self.auth {
            Auth::Token { client, token } => Ok((client.clone(), token.clone())),
            Auth::App {
                app,
                installation_id,
                installations,
            } => {
                let id = match installation_id {
                    Some(id) => *id,
                    None => {
                        app.apps()
                            .get_repository_installation(owner, name)
                            .await
                            .map_err(gh_err("find the App's installation on the repository"))?
                            .id
                            .0
                    }
                };
                let client = {
                    let mut map = installations.lock().await;
                    match map.get(&id) {
                        Some(c) => c.clone(),
                        None => {
                            let c = app
                                .installation(InstallationId(id))
                                .map_err(gh_err("authenticate as the installation"))?;
                            map.insert(id, c.clone());
                            c
                        }
                    }
                };
                let token = client
                    .installation_token()
                    .await
                    .map_err(gh_err("mint an installation token"))?;
                use secrecy::ExposeSecret;
                Ok((client, Secret::new(token.expose_secret())))
            }
        }
    }
}

pub struct NewPull<'a> {
    pub owner: &'a str,
    pub name: &'a str,
    pub branch: &'a str,
    pub base: &'a str,
    pub title: &'a str,
    pub body: &'a str,
    pub draft: bool,
}

/// The pull request from `branch`, if one exists (open or closed).
async fn find_pull_request(
    client: &Octocrab,
    pr: &NewPull<'_>,
) -> Result<Option<PullRequest>, octocrab::Error> {
    let existing = client
        .pulls(pr.owner, pr.name)
        .list()
        .state(State::All)
        .head(format!("{}:{}", pr.owner, pr.branch))
        .per_page(10)
        .send()
        .await?;
    Ok(existing.items.into_iter().next().map(|found| PullRequest {
        number: found.number,
        url: found.html_url.map(|u| u.to_string()).unwrap_or(found.url),
        reused: true,
    }))
}

/// GitHub may have acted on a call whose answer this is: anything but an error it stated.
fn maybe_done(e: &octocrab::Error) -> bool {
    !matches!(e, octocrab::Error::GitHub { .. })
}

/// The pull request from `branch`, opened unless one exists already (open or closed). Looked up
/// by its head branch before and, when opening it failed or its answer could not be read,
/// after: a pull request another attempt opened meanwhile ("A pull request already exists"), or
/// one GitHub opened although its answer was lost, is the one returned.
pub async fn open_pull_request(
    client: &Octocrab,
    rollout: u32,
    pr: &NewPull<'_>,
) -> Result<PullRequest, PublishError> {
    if let Some(found) = find_pull_request(client, pr)
        .await
        .map_err(gh_err("list pull requests"))?
    {
        return Ok(found);
    }
    let created = client
        .pulls(pr.owner, pr.name)
        .create(pr.title, pr.branch, pr.base)
        .body(pr.body)
        .draft(pr.draft)
        .maintainer_can_modify(true)
        .send()
        .await;
    let e = match created {
        Ok(created) => {
            return Ok(PullRequest {
                number: created.number,
                url: created
                    .html_url
                    .map(|u| u.to_string())
                    .unwrap_or(created.url),
                reused: false,
            });
        }
        Err(e) => e,
    };
    match find_pull_request(client, pr).await {
        Ok(Some(found)) => {
            tracing::warn!(branch = pr.branch, number = found.number, error = %describe(&e), "opening the pull request failed or its answer was unreadable, but it exists: using it");
            Ok(found)
        }
        Ok(None) if !maybe_done(&e) => Err(gh_err("open the pull request")(e)),
        Ok(None) => Err(PublishError::Unreadable {
            rollout,
            detail: describe(&e),
        }),
        Err(list) if maybe_done(&e) => Err(PublishError::Unreadable {
            rollout,
            detail: format!(
                "{}; looking it up failed too: {}",
                describe(&e),
                describe(&list)
            ),
        }),
        Err(_) => Err(gh_err("open the pull request")(e)),
    }
}

/// `owner/name` from a GitHub remote URL.
pub fn repo_from_url(url: &str) -> Option<(String, String)> {
    let rest = url
        .strip_prefix("https://github.com/")
        .or_else(|| url.strip_prefix("http://github.com/"))
        .or_else(|| url.strip_prefix("ssh://git@github.com/"))
        .or_else(|| url.strip_prefix("git@github.com:"))?;
    split_repo(rest.trim_end_matches('/').trim_end_matches(".git"))
}

/// `owner/name` → its parts.
pub fn split_repo(text: &str) -> Option<(String, String)> {
    let (owner, name) = text.split_once('/')?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    (ok(owner) && ok(name)).then(|| (owner.to_string(), name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_urls_name_their_repository() {
        let want = Some(("acme".to_string(), "api".to_string()));
        assert_eq!(repo_from_url("https://github.com/acme/api.git"), want);
        assert_eq!(repo_from_url("git@github.com:acme/api.git"), want);
        assert_eq!(repo_from_url("https://gitlab.com/acme/api.git"), None);
        assert_eq!(split_repo("acme/api/x"), None);
    }
}
