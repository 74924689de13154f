//! Web pages: a task page and, per rollout, its diff with the evidence behind it (tests, the
//! commands the agent ran and their output).
//!
//! Links carry an unguessable per-task token (`/t/<token>`); a wrong token is a plain 404. Nothing
//! from a thread, a model or a repository can run script: every text is escaped by the templates
//! (maud), Markdown goes through [`markdown::to_safe_html`], highlighted code is escaped by
//! syntect, and every response forbids script with a Content Security Policy. Pages set no
//! referrer, so the token does not leak through links.

pub mod diff;
mod diff_header;
mod evidence;
pub mod health;
mod instruction_files;
pub mod markdown;
mod pages;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::config::ModelPrice;
use crate::store::{Store, TaskRow};

/// The task page's address.
pub fn task_url(public_url: &str, token: &str) -> String {
    format!("{}/t/{token}", public_url.trim_end_matches('/'))
}

#[derive(Clone)]
struct WebState {
    store: Arc<dyn Store>,
    /// Whether approvals are published (`None`: not known).
    publishing: Option<bool>,
    /// `[prices]`: what the pages show attempts cost in money (none: tokens only).
    prices: Arc<BTreeMap<String, ModelPrice>>,
}

pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The pages' routes.
pub fn router(store: Arc<dyn Store>) -> Router {
    routes(WebState {
        store,
        publishing: None,
        prices: Arc::default(),
    })
}

/// The pages' routes, saying whether approvals are published (pushed and opened as pull
/// requests) or only recorded, with the operator's price table.
pub fn router_publishing(
    store: Arc<dyn Store>,
    publishing: bool,
    prices: BTreeMap<String, ModelPrice>,
) -> Router {
    routes(WebState {
        store,
        publishing: Some(publishing),
        prices: Arc::new(prices),
    })
}

impl WebState {
    /// The price of the model the task's calls used, when the table has it.
    fn price(&self, task: &TaskRow) -> Option<ModelPrice> {
        self.prices.get(task.model.as_deref()?).copied()
    }
}

fn routes(state: WebState) -> Router {
    Router::new()
        .route("/", get(|| async { page(StatusCode::OK, pages::home()) }))
        .route("/t/{token}", get(task_page))
        .route("/t/{token}/rollouts/{k}", get(rollout_page))
        .route("/t/{token}/rollouts/{k}/patch", get(patch))
        .fallback(|| async { not_found() })
        .with_state(state)
}

fn secure(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    h.insert(
        "x-robots-tag",
        HeaderValue::from_static("noindex, nofollow"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

fn page(status: StatusCode, markup: maud::Markup) -> Response {
    secure((status, axum::response::Html(markup.into_string())).into_response())
}

fn not_found() -> Response {
    page(StatusCode::NOT_FOUND, pages::not_found())
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "a web page failed");
    page(StatusCode::INTERNAL_SERVER_ERROR, pages::failed())
}

/// Tokens are 32 lowercase hex digits; anything else is not looked up.
fn well_formed(token: &str) -> bool {
    token.len() == 32
        && token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The task a link's token names; a 404 page for anything else.
async fn task_by_token(state: &WebState, token: &str) -> Result<TaskRow, Response> {
    if !well_formed(token) {
        return Err(not_found());
    }
    match state.store.task_by_web_token(token).await {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err(not_found()),
        Err(e) => Err(internal(e)),
    }
}

/// The task and rollout number of a rollout link.
async fn rollout_of(state: &WebState, token: &str, k: &str) -> Result<(TaskRow, u32), Response> {
    let k = k.parse::<u32>().map_err(|_| not_found())?;
    Ok((task_by_token(state, token).await?, k))
}

async fn task_page(State(state): State<WebState>, Path(token): Path<String>) -> Response {
    let task = match task_by_token(&state, &token).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    match pages::TaskData::load(state.store.as_ref(), task, &token).await {
        Ok(mut data) => {
            data.publishing = state.publishing;
            data.price = state.price(&data.task);
            page(StatusCode::OK, pages::task(&data))
        }
        Err(e) => internal(e),
    }
}

async fn rollout_page(
    State(state): State<WebState>,
    Path((token, k)): Path<(String, String)>,
) -> Response {
    let (task, k) = match rollout_of(&state, &token, &k).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match pages::RolloutData::load(state.store.as_ref(), task, &token, k).await {
        Ok(Some(mut data)) => {
            data.price = state.price(&data.task);
            page(StatusCode::OK, pages::rollout(&data))
        }
        Ok(None) => not_found(),
        Err(e) => internal(e),
    }
}

async fn patch(
    State(state): State<WebState>,
    Path((token, k)): Path<(String, String)>,
) -> Response {
    let (task, k) = match rollout_of(&state, &token, &k).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match state.store.diff(&task.id, k).await {
        Ok(Some(d)) => {
            let name = format!(
                "attachment; filename=\"threadsmith-{}-rollout-{k}.patch\"",
                &task.id[..task.id.len().min(8)]
            );
            let mut resp = (
                [(header::CONTENT_TYPE, "text/x-diff; charset=utf-8")],
                d.patch,
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&name) {
                resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            secure(resp)
        }
        Ok(None) => not_found(),
        Err(e) => internal(e),
    }
}
