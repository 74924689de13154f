//! What the runner measures, through the `metrics` facade: the runner records, and whoever runs
//! it (the bot's `/metrics`) installs a recorder and renders. With no recorder installed (the
//! CLI, tests) every call here does nothing.
//!
//! Names follow Prometheus's conventions: base units (`_seconds`), counters ending in `_total`.

use std::time::Duration;

use crate::agent::model::ModelError;

/// Histogram: one HTTP request to the model endpoint (each retry counts), by `purpose`
/// (`agent`, `spec`) and `outcome` (`ok`, `error`).
pub const MODEL_REQUEST_SECONDS: &str = "threadsmith_model_request_duration_seconds";
/// Counter: failed model requests, by `purpose` and `kind` (see [`error_kind`]).
pub const MODEL_REQUEST_ERRORS: &str = "threadsmith_model_request_errors_total";
/// Counter: tokens the model endpoint reported using, by `purpose` and `kind` (`prompt`,
/// `completion`).
pub const MODEL_TOKENS: &str = "threadsmith_model_tokens_total";
/// Counter: answered model requests, by `purpose` and `usage` (`reported`, or `missing` when
/// the endpoint sent no `usage`).
pub const MODEL_CALLS: &str = "threadsmith_model_calls_total";
/// Histogram: from asking the backend for a rollout's sandbox until it runs, by `backend` and
/// `outcome`.
pub const SANDBOX_START_SECONDS: &str = "threadsmith_sandbox_start_duration_seconds";

/// A model error's kind, as a label value. Exhaustive: a new kind of error must be named.
pub fn error_kind(e: &ModelError) -> &'static str {
    match e {
        ModelError::Unreachable(_) => "unreachable",
        ModelError::Timeout => "timeout",
        ModelError::RateLimited { .. } => "rate_limited",
        ModelError::Server { .. } => "server",
        ModelError::Rejected { .. } => "rejected",
        ModelError::Garbage(_) => "garbage",
    }
}

/// Records one model request.
pub fn model_request(purpose: &'static str, took: Duration, error: Option<&ModelError>) {
    let outcome = if error.is_some() { "error" } else { "ok" };
    metrics::histogram!(MODEL_REQUEST_SECONDS, "purpose" => purpose, "outcome" => outcome)
        .record(took.as_secs_f64());
    if let Some(e) = error {
        metrics::counter!(MODEL_REQUEST_ERRORS, "purpose" => purpose, "kind" => error_kind(e))
            .increment(1);
    }
}

/// Records one sandbox start (or failure to start).
pub fn sandbox_start(backend: &'static str, took: Duration, ok: bool) {
    let outcome = if ok { "ok" } else { "error" };
    metrics::histogram!(SANDBOX_START_SECONDS, "backend" => backend, "outcome" => outcome)
        .record(took.as_secs_f64());
}

/// Records what one answered model request used.
pub fn model_tokens(purpose: &'static str, usage: Option<crate::usage::TokenUsage>) {
    let reported = if usage.is_some() {
        "reported"
    } else {
        "missing"
    };
    metrics::counter!(MODEL_CALLS, "purpose" => purpose, "usage" => reported).increment(1);
    if let Some(u) = usage {
        metrics::counter!(MODEL_TOKENS, "purpose" => purpose, "kind" => "prompt")
            .increment(u.prompt);
        metrics::counter!(MODEL_TOKENS, "purpose" => purpose, "kind" => "completion")
            .increment(u.completion);
    }
}
