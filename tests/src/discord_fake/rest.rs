//! The REST API v10: what threadsmith calls, with Discord's answers, errors and rate limits.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{APP_ID, BOT_ID, FakeDiscord, Msg, TOKEN, WebhookMsg, error, user_json};

fn multipart_parts(body: &[u8], content_type: &str) -> Vec<(String, Option<String>, Vec<u8>)> {
    let Some(boundary) = content_type.split("boundary=").nth(1) else {
        return Vec::new();
    };
    let boundary = format!("--{}", boundary.trim_matches('"'));
    let mut parts = Vec::new();
    let text = body;
    let mut i = 0;
    let find = |hay: &[u8], needle: &[u8], from: usize| -> Option<usize> {
        hay.get(from..)?
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
    };
    while let Some(start) = find(text, boundary.as_bytes(), i) {
        let head_start = start + boundary.len() + 2;
        let Some(head_end) = find(text, b"\r\n\r\n", head_start) else {
            break;
        };
        let head = String::from_utf8_lossy(&text[head_start..head_end]).to_string();
        let Some(next) = find(text, boundary.as_bytes(), head_end) else {
            break;
        };
        let data = text[head_end + 4..next.saturating_sub(2)].to_vec();
        let name = head
            .split("name=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("")
            .to_string();
        let filename = head
            .split("filename=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .map(str::to_string);
        parts.push((name, filename, data));
        i = next;
    }
    parts
}

fn too_big(body: &Value) -> Option<Response> {
    if body["content"]
        .as_str()
        .is_some_and(|c| c.chars().count() > 2000)
    {
        return Some(error(
            StatusCode::BAD_REQUEST,
            50035,
            "Invalid Form Body (content: Must be 2000 or fewer in length.)",
        ));
    }
    if let Some(rows) = body["components"].as_array()
        && (rows.len() > 5
            || rows
                .iter()
                .any(|r| r["components"].as_array().is_some_and(|c| c.len() > 5)))
    {
        return Some(error(
            StatusCode::BAD_REQUEST,
            50035,
            "Invalid Form Body (components)",
        ));
    }
    if body["embeds"].as_array().is_some_and(|e| e.len() > 10) {
        return Some(error(
            StatusCode::BAD_REQUEST,
            50035,
            "Invalid Form Body (embeds)",
        ));
    }
    None
}

pub(super) async fn rest(
    State(fake): State<FakeDiscord>,
    method: Method,
    uri: Uri,
    Path(path): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    {
        let mut s = fake.lock();
        s.calls.push((method.to_string(), uri.path().to_string()));
        s.arrivals
            .push((method.to_string(), uri.path().to_string(), Instant::now()));
    }
    if headers.get("authorization").and_then(|h| h.to_str().ok()) != Some(&format!("Bot {TOKEN}")) {
        return error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized");
    }
    // A scripted rate limit, and the bucket it exhausts until its time is up.
    let limited = {
        let mut s = fake.lock();
        let now = Instant::now();
        s.exhausted.retain(|(_, _, until)| *until > now);
        let matches =
            |m: &str, prefix: &str| m == method.as_str() && uri.path().starts_with(prefix);
        let still = s
            .exhausted
            .iter()
            .find(|(m, p, _)| matches(m, p))
            .map(|(_, _, until)| (*until - now).as_secs_f64());
        let fresh = s
            .rate_limits
            .iter()
            .position(|(m, p, _)| matches(m, p))
            .map(|i| s.rate_limits.remove(i));
        match (still, fresh) {
            (Some(left), _) => Some(left),
            (None, Some((m, p, retry_after))) => {
                s.exhausted
                    .push((m, p, now + Duration::from_secs_f64(retry_after)));
                Some(retry_after)
            }
            (None, None) => None,
        }
    };
    if let Some(retry_after) = limited {
        return rate_limited(retry_after);
    }
    let content_type = headers
        .get("content-type")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut files = Vec::new();
    let json_body: Value = if content_type.starts_with("multipart/form-data") {
        let mut payload = Value::Null;
        for (name, filename, data) in multipart_parts(&body, &content_type) {
            if name == "payload_json" {
                payload = serde_json::from_slice(&data).unwrap_or(Value::Null);
            } else if let Some(f) = filename {
                files.push((f, data));
            }
        }
        payload
    } else {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    };
    let seg: Vec<&str> = path.split('/').collect();
    let ok = |v: Value| (StatusCode::OK, axum::Json(v)).into_response();
    match (method.as_str(), seg.as_slice()) {
        ("GET", ["gateway", "bot"]) => ok(
            json!({"url": format!("ws://{}/gateway", fake.addr), "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1}}),
        ),
        ("GET", ["gateway"]) => ok(json!({"url": format!("ws://{}/gateway", fake.addr)})),
        ("GET", ["users", "@me"]) => ok(user_json(BOT_ID, "threadsmith", true)),
        ("GET", ["oauth2", "applications", "@me"]) | ("GET", ["applications", "@me"]) => {
            ok(json!({"id": APP_ID, "name": "threadsmith",
            "icon": null, "description": "", "summary": "", "bot_public": true,
            "bot_require_code_grant": false, "verify_key": "0f", "flags": fake.app_flags(),
            "owner": user_json("1400000000000000009", "owner", false), "team": null}))
        }
        ("PUT", ["applications", _, "commands"])
        | ("PUT", ["applications", _, "guilds", _, "commands"]) => {
            let cmds: Vec<Value> = json_body
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .enumerate()
                .map(|(i, mut c)| {
                    c["id"] = json!(format!("170000000000000000{i}"));
                    c["application_id"] = json!(APP_ID);
                    c["version"] = json!("1");
                    c["default_member_permissions"] = Value::Null;
                    if c.get("description").is_none() {
                        c["description"] = json!("");
                    }
                    if c.get("type").is_none() {
                        c["type"] = json!(1);
                    }
                    c
                })
                .collect();
            fake.lock().commands = json!(cmds);
            ok(json!(cmds))
        }
        ("GET", ["channels", id]) => match fake.lock().channels.get(*id).cloned() {
            Some(c) => ok(fake.channel_json(&c)),
            None => error(StatusCode::NOT_FOUND, 10003, "Unknown Channel"),
        },
        ("GET", ["channels", id, "messages"]) => {
            if !fake.lock().channels.contains_key(*id) {
                return error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
            }
            let limit = query
                .get("limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(50usize)
                .min(100);
            let before: Option<u64> = query.get("before").and_then(|b| b.parse().ok());
            let mut msgs: Vec<Msg> = fake
                .messages(id)
                .into_iter()
                .filter(|m| before.is_none_or(|b| m.id.parse::<u64>().unwrap_or(0) < b))
                .collect();
            msgs.reverse();
            msgs.truncate(limit);
            ok(json!(
                msgs.iter()
                    .map(|m| fake.visible_message_json(m, true))
                    .collect::<Vec<_>>()
            ))
        }
        ("GET", ["channels", id, "messages", mid]) => match fake.known_message(id, mid) {
            Err(e) => *e,
            Ok(()) => match fake.message(id, mid) {
                Some(m) => ok(fake.visible_message_json(&m, true)),
                None => error(StatusCode::NOT_FOUND, 10008, "Unknown Message"),
            },
        },
        ("POST", ["channels", id, "messages"]) => {
            if !fake.lock().channels.contains_key(*id) {
                return error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
            }
            if let Some(e) = too_big(&json_body) {
                return e;
            }
            if is_empty_message(&json_body, &files) {
                return error(
                    StatusCode::BAD_REQUEST,
                    50006,
                    "Cannot send an empty message",
                );
            }
            let m = Msg {
                id: fake.snowflake(),
                channel_id: id.to_string(),
                author_id: BOT_ID.into(),
                content: json_body["content"].as_str().unwrap_or("").into(),
                embeds: json_body.get("embeds").cloned().unwrap_or(json!([])),
                components: json_body.get("components").cloned().unwrap_or(json!([])),
                allowed_mentions: json_body.get("allowed_mentions").cloned(),
                attachments: files,
                edits: 0,
                is_bot: true,
            };
            fake.lock().messages.push(m.clone());
            fake.gateway_message(&m, "MESSAGE_CREATE");
            ok(fake.message_json(&m))
        }
        ("PATCH", ["channels", id, "messages", mid]) => {
            if let Some(e) = too_big(&json_body) {
                return e;
            }
            if let Err(e) = fake.known_message(id, mid) {
                return *e;
            }
            let updated = {
                let mut s = fake.lock();
                let Some(m) = s
                    .messages
                    .iter_mut()
                    .find(|m| m.channel_id == *id && m.id == *mid)
                else {
                    drop(s);
                    return error(StatusCode::NOT_FOUND, 10008, "Unknown Message");
                };
                if m.author_id != BOT_ID {
                    drop(s);
                    return error(
                        StatusCode::FORBIDDEN,
                        50005,
                        "Cannot edit a message authored by another user",
                    );
                }
                if let Some(c) = json_body["content"].as_str() {
                    m.content = c.into();
                }
                if let Some(e) = json_body.get("embeds") {
                    m.embeds = e.clone();
                }
                if let Some(c) = json_body.get("components") {
                    m.components = c.clone();
                }
                if let Some(a) = json_body.get("allowed_mentions") {
                    m.allowed_mentions = Some(a.clone());
                }
                m.edits += 1;
                m.clone()
            };
            fake.gateway_message(&updated, "MESSAGE_UPDATE");
            ok(fake.message_json(&updated))
        }
        (m @ ("PUT" | "DELETE"), ["channels", id, "messages", mid, "reactions", emoji, "@me"]) => {
            if let Err(e) = fake.known_message(id, mid) {
                return *e;
            }
            let emoji = percent_decode(emoji);
            let mut s = fake.lock();
            let list = s
                .reactions
                .entry((id.to_string(), mid.to_string()))
                .or_default();
            if m == "PUT" {
                if !list.contains(&emoji) {
                    list.push(emoji);
                }
            } else {
                list.retain(|e| *e != emoji);
            }
            StatusCode::NO_CONTENT.into_response()
        }
        ("POST", ["channels", id, "messages", mid, "threads"]) => {
            if let Err(e) = fake.known_message(id, mid) {
                return *e;
            }
            let name = json_body["name"].as_str().unwrap_or("thread").to_string();
            match fake.create_thread(id, mid, &name) {
                Some(c) => (StatusCode::CREATED, axum::Json(c)).into_response(),
                None => error(
                    StatusCode::BAD_REQUEST,
                    160004,
                    "A thread has already been created for this message",
                ),
            }
        }
        ("POST", ["interactions", iid, _token, "callback"]) => {
            let mut s = fake.lock();
            let Some(i) = s.interactions.get_mut(*iid) else {
                return error(StatusCode::NOT_FOUND, 10062, "Unknown interaction");
            };
            if !i.responses.is_empty() {
                return error(
                    StatusCode::BAD_REQUEST,
                    40060,
                    "Interaction has already been acknowledged.",
                );
            }
            i.first_response = Some(Instant::now());
            i.responses.push(json_body);
            StatusCode::NO_CONTENT.into_response()
        }
        ("PATCH", ["webhooks", _, token, "messages", "@original"]) => {
            fake.lock().webhooks.push(WebhookMsg {
                token: token.to_string(),
                original: true,
                body: json_body.clone(),
            });
            ok(webhook_message(&fake, &json_body))
        }
        ("POST", ["webhooks", _, token]) | ("PATCH", ["webhooks", _, token, "messages", _]) => {
            fake.lock().webhooks.push(WebhookMsg {
                token: token.to_string(),
                original: false,
                body: json_body.clone(),
            });
            ok(webhook_message(&fake, &json_body))
        }
        ("GET", ["guilds", _, "members", uid]) => {
            if fake.lock().users.contains_key(*uid) {
                ok(fake.member(uid))
            } else {
                error(StatusCode::NOT_FOUND, 10007, "Unknown Member")
            }
        }
        _ => error(StatusCode::NOT_FOUND, 0, "404: Not Found"),
    }
}

/// Discord's 50006: a message needs content, an embed, a component, a file, a sticker or a
/// poll.
fn is_empty_message(body: &Value, files: &[(String, Vec<u8>)]) -> bool {
    let nonempty = |k: &str| match &body[k] {
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Null => false,
        _ => true,
    };
    files.is_empty()
        && !["content", "embeds", "components", "sticker_ids", "poll"]
            .iter()
            .any(|k| nonempty(k))
}

impl FakeDiscord {
    /// A message the caller names: its channel must exist (10003), then the message in it
    /// (10008), as Discord checks them.
    fn known_message(&self, channel: &str, message: &str) -> Result<(), Box<Response>> {
        if !self.lock().channels.contains_key(channel) {
            return Err(Box::new(error(
                StatusCode::NOT_FOUND,
                10003,
                "Unknown Channel",
            )));
        }
        if self.message(channel, message).is_none() {
            return Err(Box::new(error(
                StatusCode::NOT_FOUND,
                10008,
                "Unknown Message",
            )));
        }
        Ok(())
    }
}

/// A 429 as Discord documents it ("Exceeding A Rate Limit"): the JSON body with `retry_after`
/// in seconds (with decimals), `Retry-After` in whole seconds rounded up, and the bucket's
/// headers (`X-RateLimit-Reset-After` with decimals, scope `user`).
fn rate_limited(retry_after: f64) -> Response {
    let retry_after = (retry_after * 1000.0).ceil() / 1000.0;
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        + retry_after;
    (
        StatusCode::TOO_MANY_REQUESTS,
        [
            ("retry-after", format!("{}", retry_after.ceil() as u64)),
            ("x-ratelimit-limit", "5".to_string()),
            ("x-ratelimit-remaining", "0".to_string()),
            ("x-ratelimit-reset", format!("{reset:.3}")),
            ("x-ratelimit-reset-after", format!("{retry_after:.3}")),
            ("x-ratelimit-bucket", "fake-bucket".to_string()),
            ("x-ratelimit-scope", "user".to_string()),
        ],
        axum::Json(json!({"message": "You are being rate limited.", "retry_after": retry_after, "global": false})),
    )
        .into_response()
}

fn webhook_message(fake: &FakeDiscord, body: &Value) -> Value {
    let m = Msg {
        id: fake.snowflake(),
        // Where the interaction happened is not tracked per token; any channel id parses.
        channel_id: "1".into(),
        author_id: BOT_ID.into(),
        content: body["content"].as_str().unwrap_or("").into(),
        embeds: json!([]),
        components: json!([]),
        allowed_mentions: None,
        attachments: Vec::new(),
        edits: 0,
        is_bot: true,
    };
    let mut v = fake.message_json(&m);
    v["webhook_id"] = json!(APP_ID);
    v["flags"] = body.get("flags").cloned().unwrap_or(json!(0));
    v
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(Ok(b)) = s.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16))
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serenity::all::Interaction;

    #[tokio::test]
    async fn payloads_parse_as_serenity_reads_them() {
        let fake = FakeDiscord::start().await;
        fake.add_channel("1300000000000000001", "bugs");
        fake.add_user("1400000000000000001", "alice", &["1500000000000000001"]);
        let m = fake.post_as_user(
            "1300000000000000001",
            "1400000000000000001",
            "hi <@1100000000000000001>",
        );
        let thread = fake.start_thread("1300000000000000001", &m, "t");
        let msg = fake.message("1300000000000000001", &m).unwrap();
        serde_json::from_value::<serenity::all::Message>(fake.message_json(&msg)).unwrap();
        let c = fake.lock().channels.get(&thread).cloned().unwrap();
        serde_json::from_value::<serenity::all::GuildChannel>(fake.channel_json(&c)).unwrap();
        for p in [
            fake.button_click(
                "1400000000000000001",
                "1300000000000000001",
                &m,
                "approve:0a:1",
            ),
            fake.modal_submit(
                "1400000000000000001",
                &thread,
                "retry:0a",
                &[("feedback", "x")],
            ),
            fake.slash_command(
                "1400000000000000001",
                "1300000000000000001",
                "fix",
                Some("help"),
            ),
            fake.message_command("1400000000000000001", "1300000000000000001", &m, "Fix this"),
        ] {
            let kind = p["type"].clone();
            if let Err(e) = serde_json::from_value::<Interaction>(p) {
                panic!("interaction type {kind}: {e}");
            }
        }
    }

    async fn call(
        fake: &FakeDiscord,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}/api/v10{path}", fake.api_base()))
            .header("authorization", format!("Bot {TOKEN}"));
        if let Some(b) = body {
            request = request.json(&b);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn refusals_are_discords() {
        use reqwest::Method;
        let fake = FakeDiscord::start().await;
        fake.add_channel("1300000000000000001", "bugs");
        let theirs = fake.post_as_user("1300000000000000001", "1400000000000000001", "hi");
        let code = |(status, body): (u16, Value)| (status, body["code"].as_u64().unwrap_or(0));
        let messages = "/channels/1300000000000000001/messages";
        let empty = call(&fake, Method::POST, messages, Some(json!({"content": ""}))).await;
        assert_eq!(code(empty), (400, 50006));
        let edit = format!("{messages}/{theirs}");
        let others = call(&fake, Method::PATCH, &edit, Some(json!({"content": "x"}))).await;
        assert_eq!(code(others), (403, 50005));
        for (path, want) in [
            (format!("{messages}/1/reactions/%F0%9F%91%80/@me"), 10008),
            (
                "/channels/1/messages/1/reactions/%F0%9F%91%80/@me".to_string(),
                10003,
            ),
        ] {
            assert_eq!(
                code(call(&fake, Method::PUT, &path, None).await),
                (404, want),
                "{path}"
            );
        }
        let thread = call(
            &fake,
            Method::POST,
            &format!("{messages}/1/threads"),
            Some(json!({"name": "t"})),
        )
        .await;
        assert_eq!(code(thread), (404, 10008));
        assert!(fake.threads().is_empty());
    }
}
