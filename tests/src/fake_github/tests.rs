//! The fake GitHub refuses what GitHub refuses.

use super::*;

#[test]
fn an_app_jwt_signed_with_the_key_verifies() {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(APP_PRIVATE_KEY.as_bytes()).unwrap();
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"iss": APP_ID, "iat": now - 60, "exp": now + 540});
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .unwrap();
    assert!(verify_app_jwt(&jwt));
    let other = json!({"iss": 1, "iat": now - 60, "exp": now + 540});
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &other,
        &key,
    )
    .unwrap();
    assert!(!verify_app_jwt(&forged));
    assert!(!verify_app_jwt("a.b.c"));
}

/// A bare repository with `main` and `feature` (one commit ahead), served as `acme/widgets`.
async fn served() -> (FakeGitHub, tempfile::TempDir) {
    use crate::gitrepo::{git, repo_with};
    let dir = tempfile::tempdir().unwrap();
    let work = repo_with(&dir.path().join("work"), &[("a.txt", "a\n")]);
    git(&work, &["checkout", "--quiet", "-b", "feature"]);
    std::fs::write(work.join("a.txt"), "b\n").unwrap();
    git(&work, &["commit", "--quiet", "-am", "change"]);
    let bare = dir.path().join("remote.git");
    let (w, b) = (work.display().to_string(), bare.display().to_string());
    git(dir.path(), &["clone", "--quiet", "--bare", &w, &b]);
    let gh = FakeGitHub::start().await;
    gh.add_repo("acme/widgets", &bare);
    gh.allow_personal_token("ghp_test");
    (gh, dir)
}

async fn call(
    gh: &FakeGitHub,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", gh.api_url()))
        .bearer_auth("ghp_test");
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn a_pull_request_is_answered_in_full_and_refused_as_github_refuses_it() {
    let (gh, _dir) = served().await;
    let pulls = "/repos/acme/widgets/pulls";
    let nothing = json!({"title": "t", "head": "main", "base": "main"});
    let (status, body) = call(&gh, reqwest::Method::POST, pulls, Some(nothing)).await;
    assert_eq!(status, 422);
    assert_eq!(
        body["errors"][0]["message"],
        "No commits between main and main"
    );

    let open =
        json!({"title": "t", "head": "feature", "base": "main", "maintainer_can_modify": true});
    let (status, pr) = call(&gh, reqwest::Method::POST, pulls, Some(open)).await;
    assert_eq!(status, 201, "{pr}");
    assert_eq!(pr["commits"], 1);
    assert_eq!(pr["maintainer_can_modify"], true);
    assert_eq!(pr["mergeable_state"], "unknown");
    assert_ne!(pr["base"]["sha"], pr["head"]["sha"]);
    for url in [
        "commits_url",
        "comments_url",
        "review_comments_url",
        "statuses_url",
    ] {
        assert!(pr[url].is_string(), "{url}: {pr}");
    }

    let (status, body) = call(&gh, reqwest::Method::GET, "/repos/acme/nothing/pulls", None).await;
    assert_eq!((status, body["message"].as_str()), (404, Some("Not Found")));
}
