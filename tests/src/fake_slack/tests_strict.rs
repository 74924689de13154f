//! What Slack refuses and the fake refuses too: a channel the bot is not in, no token, and
//! blocks over Block Kit's limits.

use serde_json::json;

use super::tests::{fake, post};

#[tokio::test]
async fn the_bot_posts_only_in_channels_it_is_in() {
    let slack = fake().await;
    let nowhere = post(
        &slack,
        "chat.postMessage",
        json!({"channel": "C404", "text": "hi"}),
    )
    .await;
    assert_eq!(nowhere, json!({"ok": false, "error": "channel_not_found"}));
    // A human's message there, or a payload built for it, puts the bot in the channel.
    slack.post_as_user("C1", "U222", "hello", None);
    slack.slash_command("/fix", "help", "C2", "U222");
    for channel in ["C1", "C2"] {
        let ok = post(
            &slack,
            "chat.postMessage",
            json!({"channel": channel, "text": "hi"}),
        )
        .await;
        assert_eq!(ok["ok"], true, "{channel}: {ok}");
    }
    let ephemeral = post(
        &slack,
        "chat.postEphemeral",
        json!({"channel": "C404", "user": "U222", "text": "psst"}),
    )
    .await;
    assert_eq!(ephemeral["error"], "channel_not_found");
}

#[tokio::test]
async fn no_token_is_not_authed() {
    let slack = fake().await;
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/auth.test", slack.api_base()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer, json!({"ok": false, "error": "not_authed"}));
}

#[tokio::test]
async fn blocks_over_block_kits_limits_are_refused() {
    let slack = fake().await;
    slack.join("C1");
    let posted = post(
        &slack,
        "chat.postMessage",
        json!({"channel": "C1", "text": "x"}),
    )
    .await;
    let ts = posted["ts"].as_str().unwrap().to_string();
    let section =
        |text: String| json!({"type": "section", "text": {"type": "mrkdwn", "text": text}});
    let refused = [
        json!(vec![section("x".into()); 51]),
        json!([section("x".repeat(3001))]),
        json!([{"type": "actions", "elements": [{"type": "button", "action_id": "a",
            "text": {"type": "plain_text", "text": "y".repeat(76)}, "value": "v"}]}]),
    ];
    for blocks in refused {
        let answer = post(
            &slack,
            "chat.update",
            json!({"channel": "C1", "ts": ts, "text": "x", "blocks": blocks}),
        )
        .await;
        assert_eq!(answer["error"], "invalid_blocks");
    }
    let fits = json!(vec![section("x".repeat(3000)); 50]);
    let answer = post(
        &slack,
        "chat.postMessage",
        json!({"channel": "C1", "text": "x", "blocks": fits}),
    )
    .await;
    assert_eq!(answer["ok"], true, "{answer}");
}
