//! `pods/exec` of the fake Kubernetes API server: v5 through kube-rs (stdin, stdout, stderr,
//! exit codes, large output), v4 and the refusal of unknown subprotocols over raw WebSocket.

mod fake_kubernetes_common;

use fake_kubernetes_common::{KEEP_ALIVE, NS, cluster, exec, running, sandbox_pod};
use futures_util::StreamExt;
use kube::api::PostParams;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[tokio::test]
async fn exec_streams_stdin_stdout_stderr_and_exit_codes() {
    let (_server, pods) = cluster().await;
    pods.create(
        &PostParams::default(),
        &sandbox_pod("ex", json!({}), KEEP_ALIVE, "128Mi"),
    )
    .await
    .expect("create");
    running(&pods, "ex").await;
    let cat = exec(&pods, "ex", &["cat"], Some("hello through stdin\n")).await;
    assert_eq!(cat.stdout, "hello through stdin\n");
    let both = exec(
        &pods,
        "ex",
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
        None,
    )
    .await;
    assert_eq!(
        (both.stdout.as_str(), both.stderr.as_str()),
        ("out\n", "err\n")
    );
    assert_eq!(both.status.status.as_deref(), Some("Failure"));
    assert_eq!(both.status.reason.as_deref(), Some("NonZeroExitCode"));
    let causes = both.status.details.and_then(|d| d.causes).expect("causes");
    assert_eq!(
        (causes[0].reason.as_deref(), causes[0].message.as_deref()),
        (Some("ExitCode"), Some("3"))
    );
    // Large output arrives whole before the status.
    let big = exec(
        &pods,
        "ex",
        &["sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x"],
        None,
    )
    .await;
    assert_eq!(big.stdout.len(), 3_000_000);
}

/// The v4 subprotocol over a raw WebSocket, and the refusal of a client offering neither.
#[tokio::test]
async fn exec_speaks_v4_and_refuses_unknown_subprotocols() {
    let (server, pods) = cluster().await;
    pods.create(
        &PostParams::default(),
        &sandbox_pod("v4", json!({}), KEEP_ALIVE, "128Mi"),
    )
    .await
    .expect("create");
    running(&pods, "v4").await;
    let url = format!(
        "ws://{}/api/v1/namespaces/{NS}/pods/v4/exec?command=sh&command=-c&command=echo%20four%3B%20exit%205&stdout=true&stderr=true",
        server.addr()
    );
    let mut req = url.as_str().into_client_request().expect("request");
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "v4.channel.k8s.io".parse().expect("header"),
    );
    let (mut ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade");
    assert_eq!(
        resp.headers()
            .get("sec-websocket-protocol")
            .map(|v| v.as_bytes()),
        Some(&b"v4.channel.k8s.io"[..])
    );
    let (mut stdout, mut status) = (Vec::new(), None);
    while let Some(msg) = ws.next().await {
        match msg.expect("frame") {
            tokio_tungstenite::tungstenite::Message::Binary(b) if b.len() > 1 => match b[0] {
                1 => stdout.extend_from_slice(&b[1..]),
                3 => status = Some(serde_json::from_slice::<Value>(&b[1..]).expect("status")),
                _ => {}
            },
            tokio_tungstenite::tungstenite::Message::Close(_) => break,
            _ => {}
        }
    }
    assert_eq!(stdout, b"four\n");
    let status = status.expect("a status on channel 3");
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(
        status["details"]["causes"][0],
        json!({"reason": "ExitCode", "message": "5"})
    );
    let _closed = ws.close(None).await;

    let mut req = url.as_str().into_client_request().expect("request");
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "channel.k8s.io".parse().expect("header"),
    );
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 400)
        }
        other => panic!(
            "expected a refusal, got {:?}",
            other.map(|(_, r)| r.status())
        ),
    }
}
