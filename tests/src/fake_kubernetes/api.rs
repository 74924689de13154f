//! The routes: discovery, `/version`, and each resource's collection and object URLs.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::json;

use super::handlers;
use super::list;
use super::request::Query;
use super::resource::{NAMESPACES, NETWORK_POLICIES, PODS, Resource};
use super::status::ApiError;
use super::{Ctx, exec, logs};

pub const VERSION_MINOR: &str = "34";

pub fn router(ctx: Ctx) -> Router {
    let mut r = Router::new()
        .route("/version", get(version))
        .route("/api", get(api_versions))
        .route("/apis", get(api_groups))
        .route("/api/v1", get(|| async { core_resources() }))
        .route(
            "/apis/networking.k8s.io/v1",
            get(|| async { group_resources(&NETWORK_POLICIES) }),
        )
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/exec",
            any(exec::handle),
        )
        .route("/api/v1/namespaces/{ns}/pods/{name}/log", get(logs::handle));
    for res in [PODS, NAMESPACES, NETWORK_POLICIES] {
        let base = if res.group.is_empty() {
            format!("/api/{}", res.version)
        } else {
            format!("/apis/{}/{}", res.group, res.version)
        };
        // Every namespace at once (list and watch only), or a cluster-scoped resource.
        r = r.route(
            &format!("{base}/{}", res.plural),
            any(
                move |s: State<Ctx>, m: Method, q: RawQuery, h: HeaderMap, b: Bytes| {
                    collection(s, res, None, m, q, h, b)
                },
            ),
        );
        if res.namespaced {
            r = r.route(
                &format!("{base}/namespaces/{{ns}}/{}", res.plural),
                any(
                    move |s: State<Ctx>,
                          Path(ns): Path<String>,
                          m: Method,
                          q: RawQuery,
                          h: HeaderMap,
                          b: Bytes| {
                        collection(s, res, Some(ns), m, q, h, b)
                    },
                ),
            );
            r = r.route(
                &format!("{base}/namespaces/{{ns}}/{}/{{name}}", res.plural),
                any(
                    move |s: State<Ctx>,
                          p: Path<(String, String)>,
                          m: Method,
                          q: RawQuery,
                          h: HeaderMap,
                          b: Bytes| {
                        object(s, res, p.0.0, p.0.1, false, m, q, h, b)
                    },
                ),
            );
            r = r.route(
                &format!("{base}/namespaces/{{ns}}/{}/{{name}}/status", res.plural),
                any(
                    move |s: State<Ctx>,
                          p: Path<(String, String)>,
                          m: Method,
                          q: RawQuery,
                          h: HeaderMap,
                          b: Bytes| {
                        object(s, res, p.0.0, p.0.1, true, m, q, h, b)
                    },
                ),
            );
        } else {
            r = r.route(
                &format!("{base}/{}/{{name}}", res.plural),
                any(
                    move |s: State<Ctx>,
                          Path(name): Path<String>,
                          m: Method,
                          q: RawQuery,
                          h: HeaderMap,
                          b: Bytes| {
                        object(s, res, String::new(), name, false, m, q, h, b)
                    },
                ),
            );
        }
    }
    r.fallback(not_found).with_state(ctx)
}

async fn not_found() -> Response {
    ApiError {
        code: 404,
        reason: "NotFound",
        message: "the server could not find the requested resource".into(),
        details: Some(json!({})),
    }
    .into_response()
}

fn not_allowed() -> Response {
    ApiError::method_not_allowed("the server does not allow this method on the requested resource")
        .into_response()
}

async fn collection(
    State(ctx): State<Ctx>,
    res: Resource,
    ns: Option<String>,
    method: Method,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let q = Query::parse(q.as_deref());
    let all_namespaces = res.namespaced && ns.is_none();
    let ns_str = ns.clone().unwrap_or_default();
    let answer = match method {
        Method::GET => return list::list_or_watch(&ctx, res, ns.as_deref(), &q).await,
        Method::POST if !all_namespaces => {
            handlers::create(&ctx, res, &ns_str, &q, &headers, &body)
        }
        Method::DELETE if !all_namespaces && res.verbs.contains(&"deletecollection") => {
            handlers::delete_collection(&ctx, res, &ns_str, &q, &headers, &body)
        }
        _ => return not_allowed(),
    };
    answer.unwrap_or_else(IntoResponse::into_response)
}

#[allow(clippy::too_many_arguments)]
async fn object(
    State(ctx): State<Ctx>,
    res: Resource,
    ns: String,
    name: String,
    status_sub: bool,
    method: Method,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let q = Query::parse(q.as_deref());
    let answer = match method {
        Method::GET => handlers::get(&ctx, res, &ns, &name),
        Method::PUT => handlers::replace(&ctx, res, &ns, &name, status_sub, &q, &headers, &body),
        Method::PATCH => handlers::patch(&ctx, res, &ns, &name, status_sub, &q, &headers, &body),
        Method::DELETE if !status_sub => {
            handlers::delete(&ctx, res, &ns, &name, &q, &headers, &body)
        }
        _ => return not_allowed(),
    };
    answer.unwrap_or_else(IntoResponse::into_response)
}

async fn version() -> Response {
    axum::Json(json!({
        "major": "1",
        "minor": VERSION_MINOR,
        "emulationMajor": "1",
        "emulationMinor": VERSION_MINOR,
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "33",
        "gitVersion": format!("v1.{VERSION_MINOR}.0+threadsmith-fake"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }))
    .into_response()
}

async fn api_versions(headers: HeaderMap) -> Response {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    axum::Json(json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
    }))
    .into_response()
}

async fn api_groups() -> Response {
    let gv = json!({"groupVersion": NETWORK_POLICIES.api_version(), "version": NETWORK_POLICIES.version});
    axum::Json(json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [{
            "name": NETWORK_POLICIES.group,
            "versions": [gv.clone()],
            "preferredVersion": gv,
        }],
    }))
    .into_response()
}

fn core_resources() -> Response {
    let mut resources = vec![PODS.discovery(), NAMESPACES.discovery()];
    for (sub, verbs) in [
        ("pods/exec", json!(["create", "get"])),
        ("pods/log", json!(["get"])),
        ("pods/status", json!(["get", "patch", "update"])),
    ] {
        resources.push(json!({
            "name": sub, "singularName": "", "namespaced": true,
            "kind": if sub == "pods/exec" { "PodExecOptions" } else { "Pod" },
            "verbs": verbs,
        }));
    }
    axum::Json(json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": resources}))
        .into_response()
}

fn group_resources(res: &Resource) -> Response {
    axum::Json(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": res.api_version(),
        "resources": [res.discovery()],
    }))
    .into_response()
}
