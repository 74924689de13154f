//! A stateful fake of GitHub's REST API, enough for threadsmith's pull requests: a GitHub App's
//! installation lookup and installation access tokens (App JWTs are verified against the App's
//! public key), personal tokens, and pull requests (list by head, create; a head branch must
//! exist in the real bare repository that stands in for the remote). Payloads are shaped as
//! GitHub's REST reference shows them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub const APP_ID: u64 = 424_242;
pub const INSTALLATION_ID: u64 = 7_777_777;
/// A test-only RSA key of the fake App (tests/fixtures; it guards nothing).
pub const APP_PRIVATE_KEY: &str = include_str!("../fixtures/github-app-test-key.pem");
const APP_PUBLIC_KEY: &str = include_str!("../fixtures/github-app-test-key.pub.pem");

#[derive(Debug, Clone, PartialEq)]
pub struct Pull {
    pub number: u64,
    pub owner: String,
    pub repo: String,
    pub title: String,
    pub head: String,
    pub base: String,
    pub body: String,
    pub draft: bool,
    pub head_sha: String,
    /// The base branch's commit when the pull request was opened.
    pub base_sha: String,
    /// Commits on the head that the base does not have.
    pub commits: u64,
    pub maintainer_can_modify: bool,
}

/// One API call as the fake saw it.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    /// Which credential it carried: `app-jwt`, `installation:<token>`, `pat`, or
    /// `none`/`bad`/`expired`.
    pub auth: String,
}

#[derive(Default)]
struct Inner {
    /// `owner/name` → the bare repository standing in for it.
    repos: HashMap<String, PathBuf>,
    /// Minted installation tokens and when each expires.
    installation_tokens: Vec<(String, chrono::DateTime<chrono::Utc>)>,
    personal_tokens: Vec<String>,
    pulls: Vec<Pull>,
    /// Comments on pull requests (their conversation, GitHub's issue comments).
    comments: Vec<comments::Comment>,
    calls: Vec<Call>,
    /// Seconds an installation token lives.
    token_lifetime: i64,
    /// Pull requests still to be opened with an answer cut short (see
    /// [`FakeGitHub::garble_next_pull_creation`]), and list calls still to fail afterwards.
    garbled_creations: u32,
    failing_lists: u32,
    failing_lists_after_garble: u32,
}

#[derive(Clone)]
pub struct FakeGitHub {
    inner: Arc<Mutex<Inner>>,
    addr: std::net::SocketAddr,
}

fn author(login: &str, id: u64, kind: &str) -> Value {
    let u = format!("https://api.github.com/users/{login}");
    json!({
        "login": login, "id": id, "node_id": format!("MDQ6VXNlcj{id}"),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
        "gravatar_id": "", "url": u, "html_url": format!("https://github.com/{login}"),
        "followers_url": format!("{u}/followers"), "following_url": format!("{u}/following{{/other_user}}"),
        "gists_url": format!("{u}/gists{{/gist_id}}"), "starred_url": format!("{u}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{u}/subscriptions"), "organizations_url": format!("{u}/orgs"),
        "repos_url": format!("{u}/repos"), "events_url": format!("{u}/events{{/privacy}}"),
        "received_events_url": format!("{u}/received_events"), "type": kind, "site_admin": false
    })
}

fn repository(owner: &str, name: &str) -> Value {
    let full = format!("{owner}/{name}");
    json!({
        "id": 1_296_269, "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5", "name": name, "full_name": full,
        "owner": author(owner, 583_231, "Organization"), "private": true,
        "html_url": format!("https://github.com/{full}"), "description": null, "fork": false,
        "url": format!("https://api.github.com/repos/{full}"),
        "default_branch": "main", "visibility": "private"
    })
}

fn error(status: StatusCode, message: &str, errors: Value) -> Response {
    let mut body = json!({
        "message": message,
        "documentation_url": "https://docs.github.com/rest",
        "status": status.as_u16().to_string()
    });
    if !errors.is_null() {
        body["errors"] = errors;
    }
    (status, Json(body)).into_response()
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let h = headers.get("authorization")?.to_str().ok()?;
    h.strip_prefix("Bearer ")
        .or_else(|| h.strip_prefix("token "))
        .map(str::to_string)
}

fn verify_app_jwt(token: &str) -> bool {
    let Ok(key) = jsonwebtoken::DecodingKey::from_rsa_pem(APP_PUBLIC_KEY.as_bytes()) else {
        return false;
    };
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    // GitHub Apps put their id in `iss` as a number, which the library cannot require: checked below.
    validation.set_required_spec_claims(&["exp", "iat"]);
    validation.validate_aud = false;
    match jsonwebtoken::decode::<Value>(token, &key, &validation) {
        Ok(data) => {
            data.claims["iss"] == json!(APP_ID) || data.claims["iss"] == json!(APP_ID.to_string())
        }
        Err(e) => {
            eprintln!("fake GitHub: the App JWT does not verify: {e}");
            false
        }
    }
}

impl FakeGitHub {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake GitHub");
        Self::start_on(listener)
    }

    /// The fake on a listener of the caller's choosing (the standalone binary's `--port`).
    pub fn start_on(listener: tokio::net::TcpListener) -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            token_lifetime: 3600,
            ..Inner::default()
        }));
        let addr = listener.local_addr().expect("address");
        let fake = Self { inner, addr };
        let app = Router::new()
            .route("/repos/{owner}/{repo}/installation", get(repo_installation))
            .route("/app/installations/{id}/access_tokens", post(access_token))
            .route(
                "/repos/{owner}/{repo}/pulls",
                get(list_pulls).post(create_pull),
            )
            .route(
                "/repos/{owner}/{repo}/issues/{number}/comments",
                get(comments::list).post(comments::create),
            )
            .fallback(|| async { error(StatusCode::NOT_FOUND, "Not Found", Value::Null) })
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        fake
    }

    pub fn api_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves `owner/name` from a bare repository.
    pub fn add_repo(&self, full_name: &str, bare: &std::path::Path) {
        self.lock()
            .repos
            .insert(full_name.into(), bare.to_path_buf());
    }

    pub fn allow_personal_token(&self, token: &str) {
        self.lock().personal_tokens.push(token.into());
    }

    /// How long minted installation tokens live (GitHub: one hour).
    pub fn set_token_lifetime(&self, seconds: i64) {
        self.lock().token_lifetime = seconds;
    }

    /// The next pull request is really opened, but the `201 Created` answer's body is cut short
    /// (a connection dropped mid-answer, a proxy that truncated it): the client cannot read it.
    /// The `then_failing_lists` list calls after it answer `502 Bad Gateway`.
    pub fn garble_next_pull_creation(&self, then_failing_lists: u32) {
        let mut inner = self.lock();
        inner.garbled_creations += 1;
        inner.failing_lists_after_garble = then_failing_lists;
    }

    pub fn pulls(&self) -> Vec<Pull> {
        self.lock().pulls.clone()
    }

    /// Comments made on pull requests, oldest first.
    pub fn comments(&self) -> Vec<comments::Comment> {
        self.lock().comments.clone()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    pub fn installation_tokens(&self) -> Vec<String> {
        self.lock()
            .installation_tokens
            .iter()
            .map(|(t, _)| t.clone())
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Which credential a request carries.
    fn auth(&self, headers: &HeaderMap, method: &str, path: &str) -> String {
        let auth = match bearer(headers) {
            None => "none".to_string(),
            Some(t) if t.matches('.').count() == 2 => {
                if verify_app_jwt(&t) {
                    "app-jwt".into()
                } else {
                    "bad".into()
                }
            }
            Some(t) => {
                let inner = self.lock();
                let now = chrono::Utc::now();
                if let Some((_, expires)) = inner.installation_tokens.iter().find(|(x, _)| *x == t)
                {
                    if *expires > now {
                        format!("installation:{t}")
                    } else {
                        "expired".into()
                    }
                } else if inner.personal_tokens.contains(&t) {
                    "pat".into()
                } else {
                    "bad".into()
                }
            }
        };
        self.lock().calls.push(Call {
            method: method.into(),
            path: path.into(),
            auth: auth.clone(),
        });
        auth
    }
}

async fn repo_installation(
    State(gh): State<FakeGitHub>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/installation");
    if gh.auth(&headers, "GET", &path) != "app-jwt" {
        return error(
            StatusCode::UNAUTHORIZED,
            "A JSON web token could not be decoded",
            Value::Null,
        );
    }
    if !gh.lock().repos.contains_key(&format!("{owner}/{repo}")) {
        return error(StatusCode::NOT_FOUND, "Not Found", Value::Null);
    }
    let id = INSTALLATION_ID;
    Json(json!({
        "id": id, "account": author(&owner, 583_231, "Organization"),
        "access_tokens_url": format!("https://api.github.com/app/installations/{id}/access_tokens"),
        "repositories_url": "https://api.github.com/installation/repositories",
        "html_url": format!("https://github.com/organizations/{owner}/settings/installations/{id}"),
        "app_id": APP_ID, "target_id": 583_231, "target_type": "Organization",
        "permissions": {"contents": "write", "pull_requests": "write", "metadata": "read"},
        "events": ["push", "pull_request"], "single_file_name": null,
        "repository_selection": "selected",
        "created_at": "2026-01-05T10:00:00Z", "updated_at": "2026-01-05T10:00:00Z",
        "app_slug": "threadsmith", "suspended_at": null, "suspended_by": null
    }))
    .into_response()
}

async fn access_token(
    State(gh): State<FakeGitHub>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/app/installations/{id}/access_tokens");
    if gh.auth(&headers, "POST", &path) != "app-jwt" {
        return error(
            StatusCode::UNAUTHORIZED,
            "A JSON web token could not be decoded",
            Value::Null,
        );
    }
    if id != INSTALLATION_ID {
        return error(StatusCode::NOT_FOUND, "Not Found", Value::Null);
    }
    let token = format!("ghs_{}", uuid::Uuid::new_v4().simple());
    let expires = {
        let mut inner = gh.lock();
        let expires = chrono::Utc::now() + chrono::Duration::seconds(inner.token_lifetime);
        inner.installation_tokens.push((token.clone(), expires));
        expires
    };
    let expires_at = expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    (
        StatusCode::CREATED,
        Json(json!({
            "token": token,
            "expires_at": expires_at,
            "permissions": {"contents": "write", "pull_requests": "write", "metadata": "read"},
            "repository_selection": "selected"
        })),
    )
        .into_response()
}

fn token_ok(auth: &str) -> bool {
    auth.starts_with("installation:") || auth == "pat"
}

/// A pull request as the "get" and "create" calls answer it: the list's fields and the
/// merge state and counts.
fn full_pull_json(api: &str, p: &Pull) -> Value {
    let mut v = pull_json(api, p);
    let extra = json!({
        "merged": false, "mergeable": null, "rebaseable": null, "mergeable_state": "unknown",
        "merged_by": null, "comments": 0, "review_comments": 0,
        "maintainer_can_modify": p.maintainer_can_modify, "commits": p.commits,
        "additions": 0, "deletions": 0, "changed_files": 0
    });
    for (k, x) in extra.as_object().into_iter().flatten() {
        v[k] = x.clone();
    }
    v
}

/// A pull request as the list call answers it ("pull-request-simple").
fn pull_json(api: &str, p: &Pull) -> Value {
    let full = format!("{}/{}", p.owner, p.repo);
    let html = format!("https://github.com/{full}/pull/{}", p.number);
    let url = format!("{api}/repos/{full}/pulls/{}", p.number);
    let mut v = json!({
        "url": url, "id": 1_000_000 + p.number, "node_id": format!("PR_kwDOAAABc{}", p.number),
        "html_url": html, "diff_url": format!("{html}.diff"), "patch_url": format!("{html}.patch"),
        "issue_url": format!("{api}/repos/{full}/issues/{}", p.number),
        "number": p.number, "state": "open", "locked": false, "title": p.title,
        "user": author("threadsmith[bot]", 41_898_282, "Bot"),
        "body": p.body, "labels": [], "milestone": null, "active_lock_reason": null,
        "created_at": "2026-11-23T12:00:00Z", "updated_at": "2026-11-23T12:00:00Z",
        "closed_at": null, "merged_at": null, "merge_commit_sha": null,
        "assignee": null, "assignees": [], "requested_reviewers": [], "requested_teams": [],
        "head": {"label": format!("{}:{}", p.owner, p.head), "ref": p.head, "sha": p.head_sha,
                 "user": author(&p.owner, 583_231, "Organization"), "repo": repository(&p.owner, &p.repo)},
        "base": {"label": format!("{}:{}", p.owner, p.base), "ref": p.base, "sha": p.base_sha,
                 "user": author(&p.owner, 583_231, "Organization"), "repo": repository(&p.owner, &p.repo)},
        "_links": {
            "self": {"href": url}, "html": {"href": html},
            "issue": {"href": format!("{api}/repos/{full}/issues/{}", p.number)},
            "comments": {"href": format!("{api}/repos/{full}/issues/{}/comments", p.number)},
            "review_comments": {"href": format!("{url}/comments")},
            "review_comment": {"href": format!("{api}/repos/{full}/pulls/comments{{/number}}")},
            "commits": {"href": format!("{url}/commits")},
            "statuses": {"href": format!("{api}/repos/{full}/statuses/{}", p.head_sha)}
        },
        "author_association": "NONE", "auto_merge": null, "draft": p.draft
    });
    // In a second `json!`: one would pass the macro's recursion limit.
    let urls = json!({
        "commits_url": format!("{url}/commits"), "review_comments_url": format!("{url}/comments"),
        "review_comment_url": format!("{api}/repos/{full}/pulls/comments{{/number}}"),
        "comments_url": format!("{api}/repos/{full}/issues/{}/comments", p.number),
        "statuses_url": format!("{api}/repos/{full}/statuses/{}", p.head_sha)
    });
    for (k, x) in urls.as_object().into_iter().flatten() {
        v[k] = x.clone();
    }
    v
}

async fn list_pulls(
    State(gh): State<FakeGitHub>,
    Path((owner, repo)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/pulls");
    if !token_ok(&gh.auth(&headers, "GET", &path)) {
        return error(StatusCode::UNAUTHORIZED, "Bad credentials", Value::Null);
    }
    if !gh.lock().repos.contains_key(&format!("{owner}/{repo}")) {
        return error(StatusCode::NOT_FOUND, "Not Found", Value::Null);
    }
    {
        let mut inner = gh.lock();
        if inner.failing_lists > 0 {
            inner.failing_lists -= 1;
            drop(inner);
            return error(StatusCode::BAD_GATEWAY, "Server Error", Value::Null);
        }
    }
    // `state` is `open` unless asked otherwise; every pull request here is open.
    let state = q.get("state").map_or("open", String::as_str);
    if !matches!(state, "open" | "closed" | "all") {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation Failed",
            json!([{"resource": "PullRequest", "field": "state", "code": "invalid"}]),
        );
    }
    let api = gh.api_url();
    let pulls: Vec<Value> = gh
        .pulls()
        .iter()
        .filter(|_| state != "closed")
        .filter(|p| p.owner == owner && p.repo == repo)
        .filter(|p| {
            q.get("head")
                .is_none_or(|h| *h == format!("{}:{}", p.owner, p.head))
        })
        .filter(|p| q.get("base").is_none_or(|b| *b == p.base))
        .map(|p| pull_json(&api, p))
        .collect();
    Json(Value::Array(pulls)).into_response()
}

fn branch_sha(bare: &std::path::Path, branch: &str) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(bare)
        .args([
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}"),
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// How many commits `head` has that `base` has not (0 when git cannot tell).
fn commits_between(bare: &std::path::Path, base: &str, head: &str) -> u64 {
    std::process::Command::new("git")
        .arg("-C")
        .arg(bare)
        .args(["rev-list", "--count", &format!("{base}..{head}")])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(0)
}

async fn create_pull(
    State(gh): State<FakeGitHub>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/pulls");
    if !token_ok(&gh.auth(&headers, "POST", &path)) {
        return error(StatusCode::UNAUTHORIZED, "Bad credentials", Value::Null);
    }
    let Some(bare) = gh.lock().repos.get(&format!("{owner}/{repo}")).cloned() else {
        return error(StatusCode::NOT_FOUND, "Not Found", Value::Null);
    };
    let s = |k: &str| body[k].as_str().unwrap_or_default().to_string();
    let (title, head, base) = (s("title"), s("head"), s("base"));
    let invalid = |field: &str, message: &str| {
        error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation Failed",
            json!([{"resource": "PullRequest", "field": field, "code": "invalid", "message": message}]),
        )
    };
    if title.is_empty() {
        return invalid("title", "title is missing");
    }
    let head_branch = head.rsplit(':').next().unwrap_or(&head).to_string();
    let Some(head_sha) = branch_sha(&bare, &head_branch) else {
        return invalid("head", "head is invalid");
    };
    let Some(base_sha) = branch_sha(&bare, &base) else {
        return invalid("base", "base is invalid");
    };
    let commits = commits_between(&bare, &base_sha, &head_sha);
    if commits == 0 {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation Failed",
            json!([{"resource": "PullRequest", "code": "custom",
                    "message": format!("No commits between {base} and {head_branch}")}]),
        );
    }
    let mut inner = gh.lock();
    // GitHub refuses a second open pull request of the same head into the same base.
    if inner
        .pulls
        .iter()
        .any(|p| p.owner == owner && p.repo == repo && p.head == head_branch && p.base == base)
    {
        drop(inner);
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation Failed",
            json!([{"resource": "PullRequest", "code": "custom",
                    "message": format!("A pull request already exists for {owner}:{head_branch}.")}]),
        );
    }
    let pull = Pull {
        number: inner.pulls.len() as u64 + 1,
        owner,
        repo,
        title,
        head: head_branch,
        base,
        body: s("body"),
        draft: body["draft"].as_bool().unwrap_or(false),
        head_sha,
        base_sha,
        commits,
        maintainer_can_modify: body["maintainer_can_modify"].as_bool().unwrap_or(false),
    };
    inner.pulls.push(pull.clone());
    if inner.garbled_creations > 0 {
        inner.garbled_creations -= 1;
        inner.failing_lists = inner.failing_lists_after_garble;
        drop(inner);
        let full = full_pull_json(&gh.api_url(), &pull).to_string();
        let cut: String = full.chars().take(full.chars().count() / 2).collect();
        return (
            StatusCode::CREATED,
            [(
                axum::http::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            )],
            cut,
        )
            .into_response();
    }
    drop(inner);
    (
        StatusCode::CREATED,
        Json(full_pull_json(&gh.api_url(), &pull)),
    )
        .into_response()
}

pub mod comments;
#[cfg(test)]
mod tests;
