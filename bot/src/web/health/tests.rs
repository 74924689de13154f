//! The probes and `/metrics`, called in-process (the router as a tower service): over a real
//! SQLite store, a scripted task runner whose backend can be made unreachable, and chat
//! connections set as the adapters set them.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use super::*;
use crate::testing::{ScriptedTasks, TestServices, config};

async fn get(router: &Router, path: &str) -> (StatusCode, String) {
    let resp = router
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

struct Probe {
    router: Router,
    tasks: Arc<ScriptedTasks>,
    slack: Connection,
    discord: Connection,
    _env: TestServices,
}

async fn probe() -> Probe {
    let env = TestServices::new(config()).await;
    let (slack, discord) = (Connection::default(), Connection::default());
    slack.connected();
    discord.connected();
    let router = router(Health {
        store: env.svc.store.clone(),
        tasks: env.tasks.clone(),
        chats: vec![
            (Platform::Slack, slack.clone()),
            (Platform::Discord, discord.clone()),
        ],
    });
    Probe {
        router,
        tasks: env.tasks.clone(),
        slack,
        discord,
        _env: env,
    }
}

#[tokio::test]
async fn healthz_answers_while_the_process_serves() {
    let p = probe().await;
    p.slack.lost("down");
    p.tasks.set_unreachable(Some("Docker is gone"));
    assert_eq!(
        get(&p.router, HEALTHZ).await,
        (StatusCode::OK, "ok\n".into())
    );
}

#[tokio::test]
async fn readyz_is_ok_when_store_chats_and_backend_are() {
    let p = probe().await;
    let (status, body) = get(&p.router, READYZ).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        "store: ok\nchat slack: ok\nchat discord: ok\nsandbox backend: ok\n"
    );
}

#[tokio::test]
async fn readyz_is_503_naming_the_store_when_the_database_is_gone() {
    let env = TestServices::new(config()).await;
    let store = crate::store::sql::SqlStore::open(&env.database_url)
        .await
        .unwrap();
    store.pool().close().await;
    let chat = Connection::default();
    chat.connected();
    let router = router(Health {
        store: Arc::new(store),
        tasks: env.tasks.clone(),
        chats: vec![(Platform::Slack, chat)],
    });
    let (status, body) = get(&router, READYZ).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let store_line = body.lines().next().unwrap();
    assert!(store_line.starts_with("store: "), "{body}");
    assert_ne!(store_line, "store: ok", "{body}");
    assert!(body.contains("chat slack: ok\n"), "{body}");
    assert!(body.contains("sandbox backend: ok\n"), "{body}");
    // And a scrape cannot give stale gauges as if they were true.
    let (status, _) = get(&router, METRICS).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn readyz_is_503_naming_a_chat_that_is_not_connected() {
    let p = probe().await;
    p.discord.lost("the Discord gateway is Resuming");
    let (status, body) = get(&p.router, READYZ).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body.contains("chat discord: connection lost (the Discord gateway is Resuming)\n"),
        "{body}"
    );
    assert!(body.contains("chat slack: ok\n"), "{body}");
    p.discord.connected();
    assert_eq!(get(&p.router, READYZ).await.0, StatusCode::OK);

    let fresh = Connection::default();
    let router = router(Health {
        store: p._env.svc.store.clone(),
        tasks: p.tasks.clone(),
        chats: vec![(Platform::Slack, fresh)],
    });
    let (status, body) = get(&router, READYZ).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("chat slack: not connected yet\n"), "{body}");
}

#[tokio::test]
async fn readyz_is_503_naming_an_unreachable_sandbox_backend() {
    let p = probe().await;
    p.tasks.set_unreachable(Some("no answer to a ping"));
    let (status, body) = get(&p.router, READYZ).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("sandbox backend: "), "{body}");
    assert!(body.contains("no answer to a ping"), "{body}");
    assert!(body.starts_with("store: ok\n"), "{body}");
}

/// One sample line of the text format: `name{labels} value`.
fn sample(line: &str) -> Option<(&str, f64)> {
    let (series, value) = line.rsplit_once(' ')?;
    let name = series.split('{').next()?;
    let valid_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    let labels_closed = !series.contains('{') || series.ends_with('}');
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    (valid_name && labels_closed).then_some((name, value))
}

#[tokio::test]
async fn metrics_parse_and_hold_every_family() {
    let p = probe().await;
    // What the adapters and the runner record.
    crate::metrics::handle().unwrap();
    crate::metrics::chat_ack(Platform::Slack, std::time::Duration::from_millis(12));
    threadsmith_runner::metrics::model_request(
        "agent",
        std::time::Duration::from_millis(800),
        None,
    );
    threadsmith_runner::metrics::model_request(
        "spec",
        std::time::Duration::from_millis(50),
        Some(&threadsmith_runner::agent::model::ModelError::Timeout),
    );
    threadsmith_runner::metrics::sandbox_start(
        "docker",
        std::time::Duration::from_millis(300),
        true,
    );
    p.discord.lost("closed");

    let (status, body) = get(&p.router, METRICS).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut types = std::collections::HashMap::new();
    let mut samples = Vec::new();
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            types.insert(name.to_string(), kind.to_string());
        } else if line.starts_with("# HELP ") {
        } else {
            let Some(s) = sample(line) else {
                panic!("not a sample line: {line:?}\n{body}");
            };
            samples.push((line.to_string(), s.0.to_string(), s.1));
        }
    }
    for (family, kind) in [
        ("threadsmith_tasks", "gauge"),
        ("threadsmith_rollouts_running", "gauge"),
        ("threadsmith_inbox_pending_events", "gauge"),
        ("threadsmith_inbox_oldest_pending_age_seconds", "gauge"),
        ("threadsmith_chat_connected", "gauge"),
        ("threadsmith_chat_ack_duration_seconds", "histogram"),
        ("threadsmith_model_request_duration_seconds", "histogram"),
        ("threadsmith_model_request_errors_total", "counter"),
        ("threadsmith_sandbox_start_duration_seconds", "histogram"),
    ] {
        assert_eq!(
            types.get(family).map(String::as_str),
            Some(kind),
            "{family}\n{body}"
        );
    }
    let value = |series: &str| {
        samples
            .iter()
            .find(|(line, _, _)| line.starts_with(series))
            .map(|(_, _, v)| *v)
    };
    // Every state is shown, zero included.
    for state in crate::store::TaskState::ALL {
        let series = format!("threadsmith_tasks{{state=\"{}\"}} ", state.as_str());
        assert_eq!(value(&series), Some(0.0), "{series}\n{body}");
    }
    assert_eq!(value("threadsmith_rollouts_running "), Some(0.0));
    assert_eq!(value("threadsmith_inbox_pending_events "), Some(0.0));
    assert_eq!(
        value("threadsmith_chat_connected{platform=\"slack\"} "),
        Some(1.0)
    );
    assert_eq!(
        value("threadsmith_chat_connected{platform=\"discord\"} "),
        Some(0.0)
    );
    assert!(
        value("threadsmith_chat_ack_duration_seconds_count{platform=\"slack\"} ").unwrap() >= 1.0,
        "{body}"
    );
    assert!(
        value("threadsmith_model_request_errors_total{purpose=\"spec\",kind=\"timeout\"} ")
            .unwrap()
            >= 1.0,
        "{body}"
    );
    assert!(
        samples
            .iter()
            .any(|(_, name, _)| name == "threadsmith_sandbox_start_duration_seconds_bucket"),
        "{body}"
    );
}

#[tokio::test]
async fn the_gauges_follow_the_store() {
    let p = probe().await;
    let store = p._env.svc.store.clone();
    store
        .enqueue("k1", "slack", "{}")
        .await
        .unwrap()
        .expect("stored");
    let g = store.gauges().await.unwrap();
    assert_eq!(g.inbox_pending, 1);
    let oldest = g.oldest_pending.expect("an event waits");
    assert!((chrono::Utc::now() - oldest).num_seconds() < 60);
    assert_eq!(g.tasks.len(), crate::store::TaskState::ALL.len());
}
