//! What the Slack entry-point suites share: the test world on the fake Slack, its channels and
//! people.
#![allow(dead_code, unused_imports)]

pub use serde_json::json;
pub use std::sync::Arc;
pub use threadsmith_bot::serve;
pub use threadsmith_bot::store::TaskState;
pub use threadsmith_tests::fake_slack::{FakeSlack, FakeSlackConfig};
pub use threadsmith_tests::gitrepo::calc_repo;
pub use threadsmith_tests::{TestEnv, Turn, env};
pub use tokio::sync::Notify;
pub use tokio_util::sync::CancellationToken;

pub const CHANNEL: &str = "C111";
pub const PHRASES: &str = "C999";
pub const ALICE: &str = "U222";
pub const BOB: &str = "U333";

pub async fn slack_env(slack: &FakeSlack) -> TestEnv {
    let api = slack.api_base();
    env(move |c| {
        threadsmith_tests::use_fake_slack(c, &api);
        c.slack.phrase_channels = vec![PHRASES.into()];
        c.attempts = Some(1);
        // These tests point a channel at a repository by its path, as an operator who allows
        // unlisted repositories may (tests/tests/repo_allow_list.rs covers the refusal).
        c.allow_unlisted_repos = Some(true);
    })
    .await
}

pub fn give_up(env: &TestEnv) {
    env.model.script(
        1,
        vec![Turn::Call("give_up", json!({"reason": "just looking"}))],
    );
}
