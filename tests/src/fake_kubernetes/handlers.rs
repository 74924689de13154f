//! Create, get, replace, patch, delete and deletecollection of one resource, as the generic
//! registry of the API server does them.

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Ctx;
use super::hooks;
use super::list::Filter;
use super::patch;
use super::request::{Query, content_type, decode_json, decode_object};
use super::resource::{PODS, Resource};
use super::status::{self, ApiError};
use super::store::{name_of, rv_of};

pub type ApiResult = Result<Response, ApiError>;

fn ok(code: StatusCode, obj: Value) -> Response {
    (code, Json(obj)).into_response()
}

/// A random suffix for `generateName`, from the alphabet the API server uses.
fn name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn check_namespace(obj: &Value, ns: &str, res: &Resource) -> Result<(), ApiError> {
    if !res.namespaced {
        return Ok(());
    }
    match obj.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(n) if !n.is_empty() && n != ns => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => Ok(()),
    }
}

pub fn create(
    ctx: &Ctx,
    res: Resource,
    ns: &str,
    q: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult {
    let mut obj = decode_object(&res, headers, body)?;
    check_namespace(&obj, ns, &res)?;
    let dry_run = q.dry_run()?;
    let meta = &mut obj["metadata"];
    if meta
        .get("name")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
        && let Some(prefix) = meta.get("generateName").and_then(Value::as_str)
    {
        let name = format!("{prefix}{}", name_suffix());
        meta["name"] = json!(name);
    }
    for server_owned in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        if let Some(m) = meta.as_object_mut() {
            m.remove(server_owned);
        }
    }
    hooks::default_on_create(&res, &mut obj);
    let causes = hooks::validate_create(&res, &obj);
    if !causes.is_empty() {
        return Err(ApiError::invalid(&res, name_of(&obj), causes));
    }
    if dry_run {
        if ctx.store.get(&res, ns, name_of(&obj)).is_ok() {
            return Err(ApiError::already_exists(&res, name_of(&obj)));
        }
        return Ok(ok(StatusCode::CREATED, obj));
    }
    let stored = ctx
        .store
        .create(&res, if res.namespaced { ns } else { "" }, obj)?;
    Ok(ok(StatusCode::CREATED, stored))
}

pub fn get(ctx: &Ctx, res: Resource, ns: &str, name: &str) -> ApiResult {
    Ok(ok(StatusCode::OK, ctx.store.get(&res, ns, name)?))
}

/// PUT of the object or of its `/status`.
#[allow(clippy::too_many_arguments)]
pub fn replace(
    ctx: &Ctx,
    res: Resource,
    ns: &str,
    name: &str,
    status_sub: bool,
    q: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult {
    let mut obj = decode_object(&res, headers, body)?;
    check_namespace(&obj, ns, &res)?;
    let dry_run = q.dry_run()?;
    let body_name = name_of(&obj).to_string();
    if body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let expected = match obj
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
    {
        None | Some("") => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            ApiError::invalid(
                &res,
                name,
                vec![status::Cause::invalid(
                    "metadata.resourceVersion",
                    &json!(v),
                    "must be specified for an update",
                )],
            )
        })?),
    };
    let old = ctx.store.get(&res, ns, name)?;
    hooks::keep_on_update(&old, &mut obj, status_sub);
    write(ctx, &res, ns, name, &old, obj, expected, dry_run)
}

#[allow(clippy::too_many_arguments)]
fn write(
    ctx: &Ctx,
    res: &Resource,
    ns: &str,
    name: &str,
    old: &Value,
    new: Value,
    expected: Option<u64>,
    dry_run: bool,
) -> ApiResult {
    if expected.is_some_and(|rv| Some(rv) != rv_of(old)) {
        return Err(ApiError::conflict(res, name));
    }
    let causes = hooks::validate_update(res, old, &new);
    if !causes.is_empty() {
        return Err(ApiError::invalid(res, name, causes));
    }
    if dry_run {
        return Ok(ok(StatusCode::OK, new));
    }
    let stored = ctx.store.replace(res, ns, name, new, expected)?;
    Ok(ok(StatusCode::OK, stored))
}

const PATCH_TYPES: [&str; 4] = [
    patch::JSON_PATCH,
    patch::MERGE_PATCH,
    patch::APPLY_PATCH,
    patch::STRATEGIC_PATCH,
];

/// PATCH of the object or of its `/status`. Server-side apply is served as a simplified
/// create-or-merge without field ownership (no `managedFields`, no conflicts between managers).
#[allow(clippy::too_many_arguments)]
pub fn patch(
    ctx: &Ctx,
    res: Resource,
    ns: &str,
    name: &str,
    status_sub: bool,
    q: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult {
    let ct = content_type(headers);
    if !PATCH_TYPES.contains(&ct.as_str()) {
        return Err(ApiError::unsupported_media_type(&PATCH_TYPES));
    }
    let dry_run = q.dry_run()?;
    let bad = |e: &dyn std::fmt::Display| ApiError::bad_request(e.to_string());
    if ct == patch::APPLY_PATCH {
        if q.get("fieldManager").is_none_or(str::is_empty) {
            return Err(ApiError::invalid(
                &super::resource::PATCH_OPTIONS,
                "",
                vec![status::Cause::required("fieldManager")],
            ));
        }
        let applied = decode_json(&res, body)?;
        if name_of(&applied) != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                name_of(&applied)
            )));
        }
        if ctx.store.get(&res, ns, name).is_err() && !status_sub {
            let body = serde_json::to_vec(&applied).map_err(|e| bad(&e))?;
            let mut h = HeaderMap::new();
            h.insert(
                axum::http::header::CONTENT_TYPE,
                "application/json".parse().map_err(|e| bad(&e))?,
            );
            return create(ctx, res, ns, q, &h, &body);
        }
    }
    let patch_doc: Value =
        serde_json::from_slice(body).map_err(|e| bad(&format!("error decoding patch: {e}")))?;
    // The server retries a patch whose object changed under it.
    for _ in 0..5 {
        let old = ctx.store.get(&res, ns, name)?;
        let mut new = old.clone();
        match ct.as_str() {
            patch::JSON_PATCH => patch::json_patch(&mut new, &patch_doc)
                .map_err(|e| ApiError::with_code(422, "Invalid", e))?,
            patch::MERGE_PATCH => patch::merge(&mut new, &patch_doc),
            _ => patch::strategic(&mut new, &patch_doc).map_err(|e| bad(&e))?,
        }
        let expected = match patch_doc
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
        {
            Some(v) => {
                if Some(v)
                    != old
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                {
                    return Err(ApiError::conflict(&res, name));
                }
                rv_of(&old)
            }
            None => rv_of(&old),
        };
        hooks::keep_on_update(&old, &mut new, status_sub);
        match write(ctx, &res, ns, name, &old, new, expected, dry_run) {
            Err(e)
                if e.reason == "Conflict"
                    && patch_doc.pointer("/metadata/resourceVersion").is_none() =>
            {
                continue;
            }
            other => return other,
        }
    }
    Err(ApiError::conflict(&res, name))
}

/// The `DeleteOptions` of a delete's body (empty is allowed).
fn delete_options(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    let ct = content_type(headers);
    if ct != "application/json" && !ct.is_empty() {
        return Err(ApiError::unsupported_media_type(&[
            "application/json",
            "application/yaml",
        ]));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })?;
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "couldn't get version/kind; json parse error: not an object",
        ));
    }
    Ok(v)
}

pub fn delete(
    ctx: &Ctx,
    res: Resource,
    ns: &str,
    name: &str,
    q: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult {
    let opts = delete_options(headers, body)?;
    let dry_run = q.dry_run()?
        || opts["dryRun"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    let grace_q = q.int("gracePeriodSeconds")?;
    let obj = ctx.store.get(&res, ns, name)?;
    if let Some(pre) = opts.get("preconditions") {
        for (field, pointer) in [
            ("UID", "/metadata/uid"),
            ("ResourceVersion", "/metadata/resourceVersion"),
        ] {
            let key = if field == "UID" {
                "uid"
            } else {
                "resourceVersion"
            };
            if let Some(want) = pre.get(key).and_then(Value::as_str) {
                let have = obj
                    .pointer(pointer)
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if want != have {
                    return Err(ApiError::precondition(&res, name, field, want, have));
                }
            }
        }
    }
    if dry_run {
        return Ok(deleted_answer(&res, obj));
    }
    if res == PODS {
        let grace = opts["gracePeriodSeconds"].as_i64().or(grace_q);
        return Ok(ok(StatusCode::OK, delete_pod(ctx, ns, name, obj, grace)?));
    }
    let gone = ctx.store.remove(&res, ns, name)?;
    Ok(deleted_answer(&res, gone))
}

/// Pods answer with the object; other resources with a Success Status.
fn deleted_answer(res: &Resource, obj: Value) -> Response {
    if *res == PODS {
        ok(StatusCode::OK, obj)
    } else {
        let uid = obj
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or_default();
        ok(StatusCode::OK, status::success(res, name_of(&obj), uid))
    }
}

/// A pod on a node ends gracefully: `deletionTimestamp` and the grace period are set and the
/// kubelet stops it, then removes the object. A pod not on a node, or finished, or deleted with
/// a grace period of 0, goes at once.
fn delete_pod(
    ctx: &Ctx,
    ns: &str,
    name: &str,
    obj: Value,
    grace: Option<i64>,
) -> Result<Value, ApiError> {
    if obj.pointer("/metadata/deletionTimestamp").is_some() {
        return Ok(obj);
    }
    let grace = grace
        .or_else(|| {
            obj.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(30)
        .max(0);
    let scheduled = obj
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let phase = obj
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !scheduled || grace == 0 || phase == "Succeeded" || phase == "Failed" {
        return ctx.store.remove(&PODS, ns, name);
    }
    let at = chrono::Utc::now() + chrono::Duration::seconds(grace);
    ctx.store.modify(&PODS, ns, name, |o| {
        let mut o = o.clone();
        o["metadata"]["deletionTimestamp"] =
            json!(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        o["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
        Some(o)
    })
}

pub fn delete_collection(
    ctx: &Ctx,
    res: Resource,
    ns: &str,
    q: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult {
    let opts = delete_options(headers, body)?;
    let filter = Filter::from_query(&res, Some(ns), q)?;
    let dry_run = q.dry_run()?;
    let grace = opts["gracePeriodSeconds"]
        .as_i64()
        .or(q.int("gracePeriodSeconds")?);
    let (items, now) = ctx.store.list(&res, Some(ns));
    let mut out = Vec::new();
    for obj in items.into_iter().filter(|o| filter.matches(o)) {
        let name = name_of(&obj).to_string();
        if dry_run {
            out.push(obj);
            continue;
        }
        let done = if res == PODS {
            delete_pod(ctx, ns, &name, obj, grace).map(Some)
        } else {
            ctx.store.remove(&res, ns, &name).map(Some)
        };
        match done {
            Ok(Some(o)) => out.push(o),
            Ok(None) => {}
            // Deleted meanwhile by someone else.
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    for i in &mut out {
        if let Some(o) = i.as_object_mut() {
            o.remove("kind");
            o.remove("apiVersion");
        }
    }
    Ok(ok(
        StatusCode::OK,
        json!({
            "kind": res.list_kind(),
            "apiVersion": res.api_version(),
            "metadata": {"resourceVersion": now.to_string()},
            "items": out,
        }),
    ))
}
