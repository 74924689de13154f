//! The Web API: one axum route per concern, one plain function per Slack method.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Json};
use axum::routing::{any, post};
use serde_json::{Map, Value, json};

mod blocks;
mod files;
mod views;

use files::*;
pub(super) use views::view_json;
use views::*;

use super::state::{Failure, StoredView, Upload};
use super::{
    BOT_NAME, Call, Ephemeral, FakeSlackConfig, File, Message, ResponseUrlPost, Shared, SlackState,
};

/// The workspace's domain: `https://fake.slack.com/`.
pub(super) const TEAM_DOMAIN: &str = "fake";
const CURSOR_PREFIX: &str = "dGhyZWFk:";

type Args = Map<String, Value>;
type ApiResult = Result<Value, &'static str>;
type Handler = fn(&mut SlackState, &Shared, &Args) -> ApiResult;

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/{method}", any(api))
        .route("/upload/{file_id}", post(upload))
        .route("/response/{id}", post(respond))
        .with_state(shared)
}

async fn api(
    State(shared): State<Arc<Shared>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> axum::response::Response {
    let mut args = Args::new();
    for (k, v) in parse_form(query.as_deref().unwrap_or_default()) {
        args.insert(k, Value::String(v));
    }
    let mut bad_json = false;
    if is_form(&headers) {
        for (k, v) in parse_form(&String::from_utf8_lossy(&body)) {
            args.insert(k, Value::String(v));
        }
    } else if !body.is_empty() {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(fields)) => args.extend(fields),
            _ => {
                bad_json = true;
                args.insert("_raw".into(), String::from_utf8_lossy(&body).into());
            }
        }
    }
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(String::from)
        .or_else(|| args.get("token").and_then(Value::as_str).map(String::from));

    let failure = shared.mutate(|s| {
        s.calls.push(Call {
            method: method.clone(),
            body: Value::Object(args.clone()),
            token: token.clone(),
        });
        if let Some(failure) = s.failures.get_mut(&method).and_then(|q| q.pop_front()) {
            return Err(failure);
        }
        if bad_json {
            return Ok(error("invalid_json"));
        }
        // Over its rate limit: 429 with Retry-After, and no effect.
        if handler(&method).is_some()
            && let Err(secs) = s.limits.check(
                &method,
                args.get("channel").and_then(Value::as_str),
                std::time::Instant::now(),
            )
        {
            return Err(Failure::Status {
                status: 429,
                retry_after: Some(secs),
            });
        }
        Ok(dispatch(s, &shared, &method, &args, token.as_deref()))
    });
    match failure {
        Ok(answer) => Json(answer).into_response(),
        Err(Failure::Error(code)) => Json(error(&code)).into_response(),
        Err(Failure::Status {
            status,
            retry_after,
        }) => {
            let code = if status == 429 {
                "ratelimited"
            } else {
                "fake_failure"
            };
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = (status, Json(error(code))).into_response();
            if let Some(secs) = retry_after {
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(secs));
            }
            response
        }
    }
}

fn dispatch(
    s: &mut SlackState,
    shared: &Shared,
    method: &str,
    args: &Args,
    token: Option<&str>,
) -> Value {
    let Some(handler) = handler(method) else {
        return error("unknown_method");
    };
    let expected = if method == "apps.connections.open" {
        &shared.cfg.app_token
    } else {
        &shared.cfg.bot_token
    };
    match token {
        None => return error("not_authed"),
        Some(t) if t != expected => return error("invalid_auth"),
        Some(_) => {}
    }
    match handler(s, shared, args) {
        Ok(Value::Object(mut fields)) => {
            fields.insert("ok".into(), true.into());
            Value::Object(fields)
        }
        Ok(other) => unreachable!("handlers answer objects, not {other}"),
        Err(code) => error(code),
    }
}

fn handler(method: &str) -> Option<Handler> {
    Some(match method {
        "auth.test" => auth_test,
        "apps.connections.open" => connections_open,
        "chat.postMessage" => post_message,
        "chat.update" => update,
        "chat.delete" => delete,
        "chat.postEphemeral" => post_ephemeral,
        "chat.getPermalink" => permalink,
        "reactions.add" => reactions_add,
        "reactions.remove" => reactions_remove,
        "conversations.replies" => replies,
        "users.info" => users_info,
        "usergroups.users.list" => usergroup_users,
        "views.open" => views_open,
        "views.push" => views_push,
        "views.update" => views_update,
        "files.getUploadURLExternal" => upload_url,
        "files.completeUploadExternal" => complete_upload,
        _ => return None,
    })
}

fn error(code: &str) -> Value {
    json!({"ok": false, "error": code})
}

fn auth_test(_: &mut SlackState, shared: &Shared, _: &Args) -> ApiResult {
    let cfg = &shared.cfg;
    Ok(json!({
        "url": format!("https://{TEAM_DOMAIN}.slack.com/"),
        "team": "Fake Team",
        "user": BOT_NAME,
        "team_id": cfg.team_id,
        "user_id": cfg.bot_user_id,
        "bot_id": cfg.bot_id,
        "is_enterprise_install": false,
    }))
}

fn connections_open(s: &mut SlackState, shared: &Shared, _: &Args) -> ApiResult {
    let ticket = uuid::Uuid::new_v4().simple().to_string();
    s.tickets.insert(ticket.clone());
    Ok(json!({
        "url": format!("ws://{}/link/?ticket={ticket}&app_id={}", shared.ws_addr, shared.cfg.app_id),
    }))
}

fn post_message(s: &mut SlackState, shared: &Shared, args: &Args) -> ApiResult {
    let cfg = &shared.cfg;
    let channel = known_channel(s, args)?;
    let (text, blocks) = content(args)?;
    let message = Message {
        channel: channel.clone(),
        ts: s.next_ts(),
        thread_ts: str_arg(args, "thread_ts"),
        user: cfg.bot_user_id.clone(),
        bot_id: Some(cfg.bot_id.clone()),
        text,
        blocks,
        edits: 0,
        files: Vec::new(),
        reactions: Vec::new(),
    };
    s.insert(message.clone());
    Ok(json!({
        "channel": channel,
        "ts": message.ts,
        "message": history_json(s, cfg, &message),
    }))
}

fn update(s: &mut SlackState, shared: &Shared, args: &Args) -> ApiResult {
    let cfg = &shared.cfg;
    let channel = str_arg(args, "channel").ok_or("channel_not_found")?;
    let ts = str_arg(args, "ts").ok_or("message_not_found")?;
    let text = str_arg(args, "text");
    let blocks = json_arg(args, "blocks").map_err(|_| "invalid_blocks")?;
    if let Some(Value::Array(list)) = &blocks
        && !blocks::within_limits(list)
    {
        return Err("invalid_blocks");
    }
    let message = s.find_mut(&channel, &ts).ok_or("message_not_found")?;
    if message.bot_id.is_none() {
        return Err("cant_update_message");
    }
    if text.is_none() && blocks.is_none() {
        return Err("no_text");
    }
    if let Some(text) = text {
        message.text = text;
    }
    match blocks {
        Some(Value::Array(list)) if list.is_empty() => message.blocks = None,
        Some(blocks) => message.blocks = Some(blocks),
        None => {}
    }
    message.edits += 1;
    let message = message.clone();
    Ok(json!({
        "channel": channel,
        "ts": ts,
        "thread_ts": message.thread_ts,
        "text": message.text,
        "message": history_json(s, cfg, &message),
    }))
}

fn delete(s: &mut SlackState, _: &Shared, args: &Args) -> ApiResult {
    let channel = str_arg(args, "channel").ok_or("channel_not_found")?;
    let ts = str_arg(args, "ts").ok_or("message_not_found")?;
    let message = s.find(&channel, &ts).ok_or("message_not_found")?;
    if message.bot_id.is_none() {
        return Err("cant_delete_message");
    }
    if let Some(list) = s.channels.get_mut(&channel) {
        list.retain(|m| m.ts != ts);
    }
    Ok(json!({"channel": channel, "ts": ts}))
}

fn post_ephemeral(s: &mut SlackState, _: &Shared, args: &Args) -> ApiResult {
    let channel = known_channel(s, args)?;
    let user = str_arg(args, "user").ok_or("user_not_in_channel")?;
    let (text, blocks) = content(args)?;
    let ts = s.next_ts();
    s.ephemerals.push(Ephemeral {
        channel,
        user,
        text,
        blocks,
        thread_ts: str_arg(args, "thread_ts"),
        ts: ts.clone(),
    });
    Ok(json!({"message_ts": ts}))
}

fn permalink(s: &mut SlackState, _: &Shared, args: &Args) -> ApiResult {
    let channel = str_arg(args, "channel").ok_or("channel_not_found")?;
    let ts = str_arg(args, "message_ts").ok_or("message_not_found")?;
    let message = s.find(&channel, &ts).ok_or("message_not_found")?;
    let mut link = format!(
        "https://{TEAM_DOMAIN}.slack.com/archives/{channel}/p{}",
        ts.replace('.', "")
    );
    if let Some(parent) = message.thread_ts.as_deref().filter(|_| message.is_reply()) {
        link.push_str(&format!("?thread_ts={parent}&cid={channel}"));
    }
    Ok(json!({"channel": channel, "permalink": link}))
}

fn usergroup_users(s: &mut SlackState, _: &Shared, args: &Args) -> ApiResult {
    let group = str_arg(args, "usergroup").ok_or("no_such_subteam")?;
    let users = s.groups.get(&group).ok_or("no_such_subteam")?;
    Ok(json!({"users": users}))
}

fn reaction_target<'a>(
    s: &'a mut SlackState,
    args: &Args,
) -> Result<(String, &'a mut Message), &'static str> {
    let name = str_arg(args, "name").ok_or("invalid_name")?;
    let channel = str_arg(args, "channel").ok_or("channel_not_found")?;
    let ts = str_arg(args, "timestamp").ok_or("message_not_found")?;
    let message = s.find_mut(&channel, &ts).ok_or("message_not_found")?;
    Ok((name, message))
}

fn reactions_add(s: &mut SlackState, _: &Shared, args: &Args) -> ApiResult {
    let (name, message) = reaction_target(s, args)?;
    if message.reactions.contains(&name) {
        return Err("already_reacted");
    }
    message.reactions.push(name);
    Ok(json!({}))
}

fn reactions_remove(s: &mut SlackState, _: &Shared, args: &Args) -> ApiResult {
    let (name, message) = reaction_target(s, args)?;
    let before = message.reactions.len();
    message.reactions.retain(|r| *r != name);
    if message.reactions.len() == before {
        return Err("no_reaction");
    }
    Ok(json!({}))
}

fn replies(s: &mut SlackState, shared: &Shared, args: &Args) -> ApiResult {
    let channel = known_channel(s, args)?;
    let ts = str_arg(args, "ts").ok_or("thread_not_found")?;
    let thread = s.thread_refs(&channel, &ts);
    if thread.is_empty() {
        return Err("thread_not_found");
    }
    let limit = str_arg(args, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
        .unwrap_or(100)
        .min(1000);
    let start = match str_arg(args, "cursor") {
        None => 0,
        Some(cursor) => cursor
            .strip_prefix(CURSOR_PREFIX)
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n < thread.len())
            .ok_or("invalid_cursor")?,
    };
    let end = (start + limit).min(thread.len());
    let messages: Vec<Value> = thread[start..end]
        .iter()
        .map(|m| history_json(s, &shared.cfg, m))
        .collect();
    let has_more = end < thread.len();
    let next_cursor = if has_more {
        format!("{CURSOR_PREFIX}{end}")
    } else {
        String::new()
    };
    Ok(json!({
        "messages": messages,
        "has_more": has_more,
        "response_metadata": {"next_cursor": next_cursor},
    }))
}

fn users_info(s: &mut SlackState, shared: &Shared, args: &Args) -> ApiResult {
    let cfg = &shared.cfg;
    let id = str_arg(args, "user").ok_or("user_not_found")?;
    let is_bot = id == cfg.bot_user_id;
    if !is_bot && !s.users.iter().any(|(uid, _)| *uid == id) {
        return Err("user_not_found");
    }
    let name = s.user_name(&id);
    Ok(json!({"user": {
        "id": id,
        "team_id": cfg.team_id,
        "name": name,
        "real_name": name,
        "deleted": false,
        "is_bot": is_bot,
        "is_admin": false,
        "is_app_user": false,
        "tz": "Europe/London",
        "tz_offset": 0,
        "profile": {
            "display_name": name,
            "display_name_normalized": name,
            "real_name": name,
            "real_name_normalized": name,
            "team": cfg.team_id,
        },
    }}))
}

async fn respond(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Json<Value> {
    let body = if is_form(&headers) {
        Value::Object(
            parse_form(&String::from_utf8_lossy(&body))
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        )
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()))
    };
    shared.mutate(|s| s.responses.push(ResponseUrlPost { id, body }));
    Json(json!({"ok": true}))
}

/// A message as `conversations.replies` and the payloads show it.
pub(super) fn history_json(s: &SlackState, cfg: &FakeSlackConfig, m: &Message) -> Value {
    let mut v = json!({
        "type": "message",
        "user": m.user,
        "text": m.text,
        "ts": m.ts,
        "team": cfg.team_id,
    });
    if let Some(bot_id) = &m.bot_id {
        v["bot_id"] = json!(bot_id);
        v["app_id"] = json!(cfg.app_id);
    }
    if let Some(thread_ts) = &m.thread_ts {
        v["thread_ts"] = json!(thread_ts);
    }
    if let Some(blocks) = &m.blocks {
        v["blocks"] = blocks.clone();
    }
    if m.edits > 0 {
        v["edited"] = json!({"user": m.user, "ts": m.ts});
    }
    if !m.files.is_empty() {
        v["files"] = m.files.iter().map(|f| file_json(cfg, f)).collect();
        v["upload"] = json!(false);
    }
    if !m.reactions.is_empty() {
        v["reactions"] = m
            .reactions
            .iter()
            .map(|r| json!({"name": r, "count": 1, "users": [cfg.bot_user_id]}))
            .collect();
    }
    if !m.is_reply() {
        let replies: Vec<&Message> = s
            .thread_refs(&m.channel, &m.ts)
            .into_iter()
            .filter(|r| r.is_reply())
            .collect();
        if let Some(latest) = replies.last() {
            let mut users: Vec<&str> = Vec::new();
            for r in &replies {
                if !users.contains(&r.user.as_str()) {
                    users.push(&r.user);
                }
            }
            v["thread_ts"] = json!(m.ts);
            v["reply_count"] = json!(replies.len());
            v["reply_users_count"] = json!(users.len());
            v["reply_users"] = json!(users);
            v["latest_reply"] = json!(latest.ts);
        }
    }
    v
}

/// The message text and blocks of a post; one of them is required.
fn content(args: &Args) -> Result<(String, Option<Value>), &'static str> {
    let text = str_arg(args, "text").unwrap_or_default();
    let blocks = json_arg(args, "blocks").map_err(|_| "invalid_blocks")?;
    if blocks.as_ref().is_some_and(|b| !b.is_array()) {
        return Err("invalid_blocks");
    }
    let has_blocks = blocks
        .as_ref()
        .and_then(Value::as_array)
        .is_some_and(|b| !b.is_empty());
    let has_attachments = json_arg(args, "attachments")
        .ok()
        .flatten()
        .and_then(|a| a.as_array().map(|a| !a.is_empty()))
        .unwrap_or(false);
    if text.is_empty() && !has_blocks && !has_attachments {
        return Err("no_text");
    }
    if let Some(Value::Array(list)) = &blocks
        && !blocks::within_limits(list)
    {
        return Err("invalid_blocks");
    }
    Ok((text, blocks.filter(|_| has_blocks)))
}

/// The `channel` argument, which must be a channel the bot is in (Slack: `channel_not_found`
/// for one it cannot see).
fn known_channel(s: &SlackState, args: &Args) -> Result<String, &'static str> {
    str_arg(args, "channel")
        .filter(|c| s.in_channel(c))
        .ok_or("channel_not_found")
}

/// A scalar argument as a string; empty strings count as absent.
fn str_arg(args: &Args, key: &str) -> Option<String> {
    match args.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A JSON argument: given as JSON, or as a JSON string (form bodies).
fn json_arg(args: &Args, key: &str) -> Result<Option<Value>, serde_json::Error> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => serde_json::from_str(s).map(Some),
        Some(v) => Ok(Some(v.clone())),
    }
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"))
}

/// `a=1&b=x%20y` into pairs.
pub(super) fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(byte) => {
                    out.push(byte);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
