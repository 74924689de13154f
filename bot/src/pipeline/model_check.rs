//! A quick look at the model endpoint before any container is started: an endpoint that does not
//! answer at all fails the task at once with a clear message, instead of after the sandboxes
//! were made and every rollout's retries ran out.

use std::time::Duration;

use threadsmith_runner::ModelConfig;

/// How long the look may take.
pub(super) const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// `Err` with a message for the user when the endpoint cannot be reached. Any HTTP answer (even
/// an error status) counts as reachable: the rollouts report what the model itself says.
pub(super) async fn check_reachable(model: &ModelConfig, timeout: Duration) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .map_err(|e| format!("Could not set up an HTTP client for the model endpoint: {e}"))?;
    let url = format!("{}/models", model.base_url.trim_end_matches('/'));
    match client.get(&url).send().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let why = if e.is_timeout() {
                format!("no answer within {} s", timeout.as_secs())
            } else if e.is_connect() {
                "the connection failed".to_string()
            } else {
                e.without_url().to_string()
            };
            Err(format!(
                "The model endpoint cannot be reached ({why}), so no rollout was started. Check THREADSMITH_MODEL_BASE_URL (run `threadsmith doctor`) and that the model server is up, then try again."
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_port_is_reported_quickly_and_an_http_answer_is_enough() {
        // A port nobody listens on: bind one, note it, close it.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let model = ModelConfig {
            base_url: format!("http://127.0.0.1:{port}/v1"),
            ..ModelConfig::default()
        };
        let started = std::time::Instant::now();
        let err = check_reachable(&model, PROBE_TIMEOUT).await.unwrap_err();
        assert!(err.contains("cannot be reached"), "{err}");
        assert!(started.elapsed() < PROBE_TIMEOUT);

        // Anything that answers HTTP, even with 404, is reachable.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf).await.unwrap();
            sock.write_all(
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .await
            .unwrap();
        });
        let model = ModelConfig {
            base_url: format!("http://{addr}/v1"),
            ..ModelConfig::default()
        };
        assert_eq!(check_reachable(&model, PROBE_TIMEOUT).await, Ok(()));
        server.await.unwrap();
    }
}
