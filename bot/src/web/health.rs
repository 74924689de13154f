//! Probes and metrics on the bot's HTTP server: `/healthz` (the process is alive and serves
//! HTTP), `/readyz` (the store answers, every chat adapter is connected, the sandbox backend can
//! be reached; 503 with what is not, otherwise) and `/metrics` (Prometheus text, see
//! [`crate::metrics`]).
//!
//! Readiness is for taking the pod out of a Service's endpoints, not for restarting it (the
//! liveness probe is `/healthz`): a database or Docker outage makes every replica unready and
//! none is killed for it.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::chat::{Connection, ConnectionState, Platform};
use crate::pipeline::TaskRunner;
use crate::store::Store;

/// How long one readiness check (the store's query, the backend's ping) may take before it
/// counts as failed; under the default Kubernetes probe timeout would be 1 s, so the manifests
/// give the probe more.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// The paths this router serves.
pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
pub const METRICS: &str = "/metrics";

/// What the probes look at.
#[derive(Clone)]
pub struct Health {
    pub store: Arc<dyn Store>,
    /// Runs the rollouts: asked whether its sandbox backend can be reached.
    pub tasks: Arc<dyn TaskRunner>,
    /// Each chat adapter of this process and its connection.
    pub chats: Vec<(Platform, Connection)>,
}

/// `/healthz`, `/readyz` and `/metrics`. No fallback, so that it merges with the pages.
pub fn router(health: Health) -> Router {
    Router::new()
        .route(HEALTHZ, get(|| async { "ok\n" }))
        .route(READYZ, get(readyz))
        .route(METRICS, get(metrics))
        .with_state(Arc::new(health))
}

/// One line per check, `name: ok` or `name: what is wrong`.
async fn readyz(State(health): State<Arc<Health>>) -> Response {
    let (store, backend) = tokio::join!(
        bounded(async {
            health
                .store
                .gauges()
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }),
        bounded(async {
            health
                .tasks
                .backend_reachable()
                .await
                .map_err(|e| e.to_string())
        }),
    );
    let mut lines = vec![("store".to_string(), store)];
    for (platform, connection) in &health.chats {
        let state = match connection.state() {
            ConnectionState::Connected => Ok(()),
            ConnectionState::Connecting => Err("not connected yet".to_string()),
            ConnectionState::Lost(why) => Err(format!("connection lost ({why})")),
        };
        lines.push((format!("chat {platform}"), state));
    }
    lines.push(("sandbox backend".to_string(), backend));
    let ready = lines.iter().all(|(_, r)| r.is_ok());
    let mut body = String::new();
    for (name, result) in &lines {
        match result {
            Ok(()) => body.push_str(&format!("{name}: ok\n")),
            Err(e) => body.push_str(&format!("{name}: {e}\n")),
        }
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body).into_response()
}

async fn bounded(
    check: impl std::future::Future<Output = Result<(), String>>,
) -> Result<(), String> {
    tokio::time::timeout(CHECK_TIMEOUT, check)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())))
}

async fn metrics(State(health): State<Arc<Health>>) -> Response {
    match tokio::time::timeout(
        CHECK_TIMEOUT,
        crate::metrics::render(health.store.as_ref(), &health.chats),
    )
    .await
    {
        Ok(Ok(text)) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "a metrics scrape failed");
            (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response()
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the gauges could not be read in time\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests;
