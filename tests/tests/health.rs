//! The probes and `/metrics` of a real `serve` over HTTP: Slack in Socket Mode against the fake
//! Slack, the real Docker engine as the sandbox backend, SQLite as the store.

mod slack_common;
use slack_common::*;
use threadsmith_bot::chat::ConnectionState;

async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String, String) {
    let resp = reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let kind = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, kind, resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_is_ready_once_slack_says_hello_and_measures_its_acks() {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let api = slack.api_base();
    let env = env(move |c| {
        threadsmith_tests::use_fake_slack(c, &api);
        c.listen = Some("127.0.0.1:0".into());
    })
    .await;
    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
    let addr = running.http_addr.expect("the HTTP server runs");

    let (status, _, body) = http_get(addr, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    // Ready when Slack's `hello` arrived on a connection.
    let mut state = running.bots[0].connection().subscribe();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        state.wait_for(|s| *s == ConnectionState::Connected),
    )
    .await
    .expect("Slack says hello")
    .unwrap();
    let (status, _, body) = http_get(addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "store: ok\nchat slack: ok\nsandbox backend: ok\n");

    // An envelope acknowledged is an ack latency observed.
    let event = slack.message_event(
        CHANNEL,
        Some(ALICE),
        None,
        "just chatting",
        "1700000000.000100",
        None,
    );
    let e = slack.send_envelope("events_api", event, false).await;
    slack.ack(&e).await;
    let (status, kind, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    let value = |series: &str| {
        body.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map(|v| v.parse::<f64>().unwrap())
            .unwrap_or_else(|| panic!("no {series}:\n{body}"))
    };
    assert!(value("threadsmith_chat_ack_duration_seconds_count{platform=\"slack\"}") >= 1.0);
    assert_eq!(value("threadsmith_chat_connected{platform=\"slack\"}"), 1.0);
    assert_eq!(value("threadsmith_tasks{state=\"running\"}"), 0.0);

    running.stop(&shutdown).await;
}
