//! `/metrics`: what threadsmith measures, in Prometheus's text format.
//!
//! Through the `metrics` facade: the runner records model requests and sandbox starts (see
//! `threadsmith_runner::metrics`; it knows no exporter), the chat adapters record how long
//! an event takes from arrival to its acknowledgement ([`chat_ack`]). This module installs
//! the Prometheus recorder once per process (no listener of its own: the bot's HTTP server
//! serves the text) and, at each scrape, reads the gauges from the store ([`render`]), so that
//! they are always true and the same in every bot process.

use std::sync::OnceLock;
use std::time::Duration;

use chrono::Utc;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use threadsmith_runner::metrics as runner;

use crate::chat::{Connection, Platform};
use crate::store::{Store, StoreError};

/// Gauge: tasks in the database by `state`.
pub const TASKS: &str = "threadsmith_tasks";
/// Gauge: rollouts started and not ended, of tasks preparing or running.
pub const ROLLOUTS_RUNNING: &str = "threadsmith_rollouts_running";
/// Gauge: inbox events (chat events, clicks, commands) not handled yet.
pub const INBOX_PENDING: &str = "threadsmith_inbox_pending_events";
/// Gauge: how long the oldest of them has waited (0 when none waits).
pub const INBOX_OLDEST_AGE: &str = "threadsmith_inbox_oldest_pending_age_seconds";
/// Gauge: 1 while this process's adapter for `platform` is connected.
pub const CHAT_CONNECTED: &str = "threadsmith_chat_connected";
/// Histogram: from an event's arrival in a chat adapter to its acknowledgement, by `platform`.
pub const CHAT_ACK_SECONDS: &str = "threadsmith_chat_ack_duration_seconds";

/// Bucket bounds (seconds) of every `_seconds` histogram: from a few milliseconds (an ack, a
/// sandbox start) to minutes (a slow model answer).
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// The process's recorder, installed on first use; `Err` when it could not be (another
/// recorder was installed first).
pub fn handle() -> Result<&'static PrometheusHandle, String> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE.get_or_init(install).as_ref().map_err(Clone::clone)
}

fn install() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|e| format!("the metrics recorder could not be installed: {e}"))?;
    describe();
    Ok(handle)
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        runner::MODEL_TOKENS,
        "Tokens the model endpoint reported using, by purpose (agent, spec) and kind (prompt, completion)."
    );
    describe_counter!(
        runner::MODEL_CALLS,
        "Answered model requests, by purpose and whether the response reported its usage."
    );
    describe_gauge!(
        TASKS,
        "Tasks in the database, by state (the same in every bot process)."
    );
    describe_gauge!(
        ROLLOUTS_RUNNING,
        "Rollouts started and not ended, across all bot processes."
    );
    describe_gauge!(INBOX_PENDING, "Chat events stored and not handled yet.");
    describe_gauge!(
        INBOX_OLDEST_AGE,
        metrics::Unit::Seconds,
        "How long the oldest unhandled chat event has waited (0 when none waits)."
    );
    describe_gauge!(
        CHAT_CONNECTED,
        "1 while this process is connected to the chat platform."
    );
    describe_histogram!(
        CHAT_ACK_SECONDS,
        metrics::Unit::Seconds,
        "From a chat event's arrival in this process to its acknowledgement (stored first)."
    );
    describe_histogram!(
        runner::MODEL_REQUEST_SECONDS,
        metrics::Unit::Seconds,
        "One HTTP request to the model endpoint (each retry counts), by purpose and outcome."
    );
    describe_counter!(
        runner::MODEL_REQUEST_ERRORS,
        "Failed model requests, by purpose and kind of failure."
    );
    describe_histogram!(
        runner::SANDBOX_START_SECONDS,
        metrics::Unit::Seconds,
        "From asking the sandbox backend for a rollout's sandbox until it runs."
    );
}

/// Records an event's time from arrival in an adapter to its acknowledgement.
pub fn chat_ack(platform: Platform, took: Duration) {
    metrics::histogram!(CHAT_ACK_SECONDS, "platform" => platform.as_str())
        .record(took.as_secs_f64());
}

/// The text of a scrape: the gauges read from the store now, the chat connections, and what
/// was recorded since the start.
pub async fn render(
    store: &dyn Store,
    chats: &[(Platform, Connection)],
) -> Result<String, RenderError> {
    let handle = handle().map_err(RenderError::Recorder)?;
    let gauges = store.gauges().await?;
    for (state, n) in &gauges.tasks {
        metrics::gauge!(TASKS, "state" => state.as_str()).set(*n as f64);
    }
    metrics::gauge!(ROLLOUTS_RUNNING).set(gauges.rollouts_running as f64);
    metrics::gauge!(INBOX_PENDING).set(gauges.inbox_pending as f64);
    let age = gauges
        .oldest_pending
        .map(|t| (Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0)
        .unwrap_or(0.0);
    metrics::gauge!(INBOX_OLDEST_AGE).set(age);
    for (platform, connection) in chats {
        let up = if connection.is_connected() { 1.0 } else { 0.0 };
        metrics::gauge!(CHAT_CONNECTED, "platform" => platform.as_str()).set(up);
    }
    handle.run_upkeep();
    Ok(handle.render())
}

/// Why a scrape failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{0}")]
    Recorder(String),
    #[error("the gauges could not be read: {0}")]
    Store(#[from] StoreError),
}
