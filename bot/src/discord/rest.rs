//! Discord's REST calls that the port makes, when they go through `discord.api_url` (a proxy, or
//! a fake in tests). Serenity's rate limiter waits out Discord's buckets and 429s but only
//! against discord.com, and serenity's error keeps neither the 429's body nor its headers; so
//! through `api_url` the port sends these calls itself and, on a 429, waits as long as Discord
//! says — the body's `retry_after` (seconds, with decimals), else `X-RateLimit-Reset-After`, else
//! `Retry-After` — at most [`MAX_WAIT`] per wait and [`MAX_RETRIES`] times, and no longer than
//! the port runs. Every other answer becomes serenity's own error, so callers see one type.

use std::time::Duration;

use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderMap};
use serde::de::DeserializeOwned;
use serenity::http::{ErrorResponse, HttpError};
use tokio_util::sync::CancellationToken;

/// The longest wait for one 429; Discord asking for longer ends the call (rate-limited).
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// How many times one call is sent again after 429s.
pub const MAX_RETRIES: u32 = 5;
/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// REST through `api_url`.
pub struct ProxyRest {
    client: reqwest::Client,
    /// `<api_url>/api/v10`.
    base: String,
    /// `Bot <token>`.
    authorization: String,
}

fn request_error(e: reqwest::Error) -> serenity::Error {
    serenity::Error::Http(HttpError::Request(e))
}

/// How long a 429 asks to wait: the body's `retry_after`, else `X-RateLimit-Reset-After`, else
/// `Retry-After` (whole seconds, rounded up by Discord).
pub fn retry_after(headers: &HeaderMap, body: &[u8]) -> Option<Duration> {
    let from_body = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("retry_after").and_then(serde_json::Value::as_f64));
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.trim().parse::<f64>().ok())
    };
    from_body
        .or_else(|| header("x-ratelimit-reset-after"))
        .or_else(|| header("retry-after"))
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

impl ProxyRest {
    /// `api_url` as given to serenity's `proxy`, and the `Bot …` authorization.
    pub fn new(api_url: &str, authorization: &str) -> Result<Self, reqwest::Error> {
        Ok(Self {
            client: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .build()?,
            base: format!("{}/api/v10", api_url.trim_end_matches('/')),
            authorization: authorization.to_string(),
        })
    }

    /// Sends the call (again after each 429, as long as asked) and returns the answer's body.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        stop: &CancellationToken,
    ) -> Result<axum::body::Bytes, serenity::Error> {
        let url = format!("{}{path}", self.base);
        let mut retries = 0;
        loop {
            let mut request = self
                .client
                .request(method.clone(), &url)
                .header(AUTHORIZATION, &self.authorization);
            if let Some(b) = body {
                request = request.json(b);
            }
            let response = request.send().await.map_err(request_error)?;
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = response.bytes().await.map_err(request_error)?;
            if status.is_success() {
                return Ok(bytes);
            }
            if status.as_u16() == 429 && retries < MAX_RETRIES {
                match retry_after(&headers, &bytes) {
                    Some(wait) if wait <= MAX_WAIT => {
                        retries += 1;
                        tracing::warn!(%method, path, ?wait, "Discord rate-limited a request; waiting as asked");
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => continue,
                            // Stopping: the 429 is the answer.
                            _ = stop.cancelled() => {}
                        }
                    }
                    _ => {}
                }
            }
            // Serenity's own error, from the answer as it came.
            let mut rebuilt = axum::http::Response::new(bytes);
            *rebuilt.status_mut() = status;
            *rebuilt.headers_mut() = headers;
            return Err(serenity::Error::Http(HttpError::UnsuccessfulRequest(
                ErrorResponse::from_response(reqwest::Response::from(rebuilt), method).await,
            )));
        }
    }

    /// A call whose answer is JSON.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        stop: &CancellationToken,
    ) -> Result<T, serenity::Error> {
        let bytes = self.send(method, path, body, stop).await?;
        serde_json::from_slice(&bytes).map_err(serenity::Error::Json)
    }

    /// A call whose answer has no body (204).
    pub async fn call_empty(
        &self,
        method: Method,
        path: &str,
        stop: &CancellationToken,
    ) -> Result<(), serenity::Error> {
        self.send(method, path, None, stop).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_is_the_bodys_then_the_headers() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "2".parse().unwrap());
        h.insert("x-ratelimit-reset-after", "1.25".parse().unwrap());
        let body =
            br#"{"message": "You are being rate limited.", "retry_after": 0.37, "global": false}"#;
        assert_eq!(retry_after(&h, body), Some(Duration::from_millis(370)));
        assert_eq!(retry_after(&h, b"{}"), Some(Duration::from_millis(1250)));
        h.remove("x-ratelimit-reset-after");
        assert_eq!(retry_after(&h, b"not json"), Some(Duration::from_secs(2)));
        assert_eq!(
            retry_after(&HeaderMap::new(), b"{\"retry_after\": -1}"),
            None
        );
    }
}
