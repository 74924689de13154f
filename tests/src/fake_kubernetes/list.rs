//! GET on a collection: a list (selectors, `limit`/`continue`, resourceVersion semantics) or a
//! watch (`watch=true`): newline-delimited JSON events, bookmarks, `timeoutSeconds`,
//! `sendInitialEvents`, and 410 Gone as an ERROR event for a resourceVersion too old.

use std::time::Duration;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::Ctx;
use super::hooks;
use super::request::Query;
use super::resource::Resource;
use super::selector::{FieldSelector, LabelSelector, labels_of};
use super::status::{ApiError, Cause};
use super::store::{Event, EventType, name_of, namespace_of};

/// A watch without `timeoutSeconds` ends after this long (the server picks 30–60 minutes).
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

pub struct Filter {
    ns: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    pub fn from_query(res: &Resource, ns: Option<&str>, q: &Query) -> Result<Self, ApiError> {
        let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or_default())
            .map_err(ApiError::bad_request)?;
        let fields = FieldSelector::parse(
            q.get("fieldSelector").unwrap_or_default(),
            hooks::field_selectors(res),
        )
        .map_err(ApiError::bad_request)?;
        Ok(Self {
            ns: ns.map(String::from),
            labels,
            fields,
        })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.ns.as_deref().is_none_or(|ns| namespace_of(obj) == ns)
            && self.labels.matches(&labels_of(obj))
            && self.fields.matches(obj)
    }
}

fn list_options_invalid(cause: Cause) -> ApiError {
    ApiError::invalid(&super::resource::LIST_OPTIONS, "", vec![cause])
}

fn parse_rv(q: &Query) -> Result<Option<u64>, ApiError> {
    match q.get("resourceVersion") {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            ApiError::bad_request(format!(
                "invalid resource version {v:?}: strconv.ParseUint: parsing {v:?}: invalid syntax"
            ))
        }),
    }
}

pub async fn list_or_watch(ctx: &Ctx, res: Resource, ns: Option<&str>, q: &Query) -> Response {
    match list_or_watch_inner(ctx, res, ns, q) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn list_or_watch_inner(
    ctx: &Ctx,
    res: Resource,
    ns: Option<&str>,
    q: &Query,
) -> Result<Response, ApiError> {
    let filter = Filter::from_query(&res, ns, q)?;
    let rv = parse_rv(q)?;
    if q.get("resourceVersionMatch").is_some() && rv.is_none() {
        return Err(list_options_invalid(Cause::forbidden(
            "resourceVersionMatch",
            "resourceVersionMatch is forbidden unless resourceVersion is provided",
        )));
    }
    if q.flag("watch") {
        watch(ctx, res, filter, rv, q)
    } else {
        list(ctx, res, filter, rv, q)
    }
}

fn continue_token(rv: u64, ns: &str, name: &str) -> String {
    hex::encode(format!("{rv}\0{ns}\0{name}"))
}

fn read_continue(token: &str) -> Result<(u64, String, String), ApiError> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let raw = hex::decode(token).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let mut parts = text.splitn(3, '\0');
    let rv = parts.next().and_then(|r| r.parse().ok()).ok_or_else(bad)?;
    let ns = parts.next().ok_or_else(bad)?.to_string();
    let name = parts.next().ok_or_else(bad)?.to_string();
    Ok((rv, ns, name))
}

fn list(
    ctx: &Ctx,
    res: Resource,
    filter: Filter,
    rv: Option<u64>,
    q: &Query,
) -> Result<Response, ApiError> {
    let (all, now) = ctx.store.list(&res, filter.ns.as_deref());
    if let Some(want) = rv {
        if want > now {
            let mut e = ApiError::with_code(
                504,
                "Timeout",
                format!("Too large resource version: {want}, current: {now}"),
            );
            e.details = Some(
                json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1}),
            );
            return Err(e);
        }
        if q.get("resourceVersionMatch") == Some("Exact") && want != now {
            return Err(ApiError::expired(format!(
                "too old resource version: {want} ({now})"
            )));
        }
    }
    let mut items: Vec<Value> = all.into_iter().filter(|o| filter.matches(o)).collect();
    let start = match q.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let (token_rv, ns, name) = read_continue(token)?;
            if token_rv < ctx.store.compacted() {
                return Err(ApiError::expired(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                ));
            }
            Some((ns, name))
        }
        None => None,
    };
    if let Some((ns, name)) = &start {
        items.retain(|o| (namespace_of(o), name_of(o)) > (ns.as_str(), name.as_str()));
    }
    let limit = q.int("limit")?.filter(|l| *l > 0);
    // With resourceVersion=0 the server answers from its cache and ignores `limit`.
    let paginate = limit.filter(|_| rv != Some(0) || start.is_some());
    let mut meta = json!({"resourceVersion": now.to_string()});
    if let Some(limit) = paginate {
        let limit = limit as usize;
        if items.len() > limit {
            let rest = items.len() - limit;
            items.truncate(limit);
            let last = &items[limit - 1];
            meta["continue"] = json!(continue_token(now, namespace_of(last), name_of(last)));
            meta["remainingItemCount"] = json!(rest);
        }
    }
    for i in &mut items {
        if let Some(o) = i.as_object_mut() {
            o.remove("kind");
            o.remove("apiVersion");
        }
    }
    let body = json!({
        "kind": res.list_kind(),
        "apiVersion": res.api_version(),
        "metadata": meta,
        "items": items,
    });
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

fn line(kind: &str, obj: &Value) -> Result<axum::body::Bytes, std::io::Error> {
    let mut text = serde_json::to_vec(&json!({"type": kind, "object": obj}))?;
    text.push(b'\n');
    Ok(text.into())
}

fn bookmark(res: &Resource, rv: u64, initial_end: bool) -> Value {
    let mut meta = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"kind": res.kind, "apiVersion": res.api_version(), "metadata": meta})
}

fn watch(
    ctx: &Ctx,
    res: Resource,
    filter: Filter,
    rv: Option<u64>,
    q: &Query,
) -> Result<Response, ApiError> {
    let bookmarks = q.flag("allowWatchBookmarks");
    let initial = q.get("sendInitialEvents").map(|v| v == "true" || v == "1");
    if initial == Some(true) {
        if q.get("resourceVersionMatch") != Some("NotOlderThan") {
            return Err(list_options_invalid(Cause::forbidden(
                "resourceVersionMatch",
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            )));
        }
        if !bookmarks {
            return Err(list_options_invalid(Cause::forbidden(
                "allowWatchBookmarks",
                "sendInitialEvents requires setting allowWatchBookmarks=true",
            )));
        }
    }
    let timeout = q
        .int("timeoutSeconds")?
        .map(|s| Duration::from_secs(s.max(0) as u64))
        .unwrap_or(DEFAULT_WATCH_TIMEOUT);
    // "" and "0" start with the current state as ADDED events; so does sendInitialEvents.
    let from = match (rv, initial) {
        (_, Some(true)) | (None | Some(0), _) => None,
        (Some(n), _) => Some(n),
    };
    let sub = match ctx.store.subscribe(&res, from) {
        Ok(s) => s,
        Err(oldest) => {
            let gone = ApiError::expired(format!(
                "too old resource version: {} ({oldest})",
                rv.unwrap_or_default()
            ));
            let body =
                line("ERROR", &gone.body()).map_err(|e| ApiError::internal(e.to_string()))?;
            return Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response());
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(64);
    let shutdown = ctx.shutdown.clone();
    let bookmark_every = ctx.bookmark_interval;
    let mut events = sub.events;
    let backlog = sub.backlog;
    let start_rv = sub.rv;
    ctx.tasks.spawn(async move {
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut last_rv = start_rv;
        for ev in backlog {
            if let Some(kind) = seen_as(&ev, &filter)
                && tx.send(line(kind, &ev.obj)).await.is_err()
            {
                return;
            }
        }
        if initial == Some(true)
            && tx
                .send(line("BOOKMARK", &bookmark(&res, start_rv, true)))
                .await
                .is_err()
        {
            return;
        }
        let mut ticker = tokio::time::interval(bookmark_every);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = ticker.tick(), if bookmarks => {
                    if tx.send(line("BOOKMARK", &bookmark(&res, last_rv, false))).await.is_err() {
                        return;
                    }
                }
                ev = events.recv() => {
                    let Some(ev) = ev else { return };
                    if ev.res != res {
                        continue;
                    }
                    last_rv = ev.rv;
                    let Some(kind) = seen_as(&ev, &filter) else { continue };
                    if tx.send(line(kind, &ev.obj)).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    let stream = tokio_stream_from(rx);
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// How a watch with `filter` sees a change: an object that starts matching is ADDED, one that
/// stops matching is DELETED (as the watch cache reports them).
fn seen_as(ev: &Event, filter: &Filter) -> Option<&'static str> {
    let now = filter.matches(&ev.obj);
    let before = ev.prev.as_ref().is_some_and(|p| filter.matches(p));
    match (ev.kind, before, now) {
        (EventType::Modified, true, false) => Some("DELETED"),
        (EventType::Modified, false, true) => Some("ADDED"),
        (_, _, false) => None,
        (k, _, true) => Some(k.as_str()),
    }
}

fn tokio_stream_from(
    rx: tokio::sync::mpsc::Receiver<Result<axum::body::Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<axum::body::Bytes, std::io::Error>> {
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed()
}
