//! Comments on a pull request's conversation (GitHub's issue comments): list and create, as
//! GitHub's REST reference shows them — `201 Created` with the comment, `404` for a repository
//! or number that does not exist, `422 Validation Failed` for a missing or too long body, `401`
//! without a valid token.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{FakeGitHub, author, error, token_ok};

/// GitHub's limit on a comment's body.
const MAX_BODY: usize = 65_536;

#[derive(Debug, Clone, PartialEq)]
pub struct Comment {
    pub id: u64,
    pub owner: String,
    pub repo: String,
    /// The pull request's (issue's) number.
    pub number: u64,
    pub body: String,
    pub created_at: String,
}

fn comment_json(c: &Comment) -> Value {
    let full = format!("{}/{}", c.owner, c.repo);
    json!({
        "id": c.id, "node_id": format!("IC_kwDOAAAB{}", c.id),
        "url": format!("https://api.github.com/repos/{full}/issues/comments/{}", c.id),
        "html_url": format!("https://github.com/{full}/pull/{}#issuecomment-{}", c.number, c.id),
        "issue_url": format!("https://api.github.com/repos/{full}/issues/{}", c.number),
        "body": c.body,
        "user": author("threadsmith[bot]", 9_000_001, "Bot"),
        "created_at": c.created_at, "updated_at": c.created_at,
        "author_association": "NONE", "performed_via_github_app": null,
        "reactions": {
            "url": format!("https://api.github.com/repos/{full}/issues/comments/{}/reactions", c.id),
            "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0, "confused": 0,
            "heart": 0, "rocket": 0, "eyes": 0
        }
    })
}

/// The repository and number exist (every number here is a pull request's).
fn exists(gh: &FakeGitHub, owner: &str, repo: &str, number: u64) -> bool {
    let inner = gh.lock();
    inner.repos.contains_key(&format!("{owner}/{repo}"))
        && inner
            .pulls
            .iter()
            .any(|p| p.owner == owner && p.repo == repo && p.number == number)
}

pub(super) async fn list(
    State(gh): State<FakeGitHub>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/issues/{number}/comments");
    if !token_ok(&gh.auth(&headers, "GET", &path)) {
        return error(StatusCode::UNAUTHORIZED, "Bad credentials", Value::Null);
    }
    if !exists(&gh, &owner, &repo, number) {
        return error(StatusCode::NOT_FOUND, "Not Found", Value::Null);
    }
    let per_page: usize = q
        .get("per_page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page: usize = q
        .get("page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let all: Vec<Value> = gh
        .comments()
        .iter()
        .filter(|c| c.owner == owner && c.repo == repo && c.number == number)
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(comment_json)
        .collect();
    Json(Value::Array(all)).into_response()
}

pub(super) async fn create(
    State(gh): State<FakeGitHub>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/issues/{number}/comments");
    if !token_ok(&gh.auth(&headers, "POST", &path)) {
        return error(StatusCode::UNAUTHORIZED, "Bad credentials", Value::Null);
    }
    if !exists(&gh, &owner, &repo, number) {
        return error(StatusCode::NOT_FOUND, "Not Found", Value::Null);
    }
    let Some(text) = body["body"].as_str() else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation Failed",
            json!([{"resource": "IssueComment", "code": "missing_field", "field": "body"}]),
        );
    };
    if text.chars().count() > MAX_BODY {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation Failed",
            json!([{"resource": "IssueComment", "code": "custom", "field": "body",
                    "message": "body is too long (maximum is 65536 characters)"}]),
        );
    }
    let comment = {
        let mut inner = gh.lock();
        let comment = Comment {
            id: 1_000 + inner.comments.len() as u64 + 1,
            owner,
            repo,
            number,
            body: text.to_string(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        inner.comments.push(comment.clone());
        comment
    };
    (StatusCode::CREATED, Json(comment_json(&comment))).into_response()
}
