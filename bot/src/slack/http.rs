//! The HTTP Events API mode: Slack posts events, interactions and slash commands to us.
//! Every request's signature is checked first (`v0=` HMAC-SHA256 over `v0:timestamp:body`,
//! constant-time, at most 5 minutes off); a forged, stale or malformed request is rejected and
//! nothing is queued.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use slack_morphism::prelude::*;

use crate::orchestrator::Bot;

use super::events::{self, EventSettings};

struct HttpState {
    bot: Arc<Bot>,
    secret: String,
    settings: EventSettings,
}

/// Requests more than this far from our clock are refused (replays).
const MAX_SKEW_SECS: i64 = 5 * 60;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the request has no Slack signature")]
    Missing,
    #[error("the request's timestamp is more than 5 minutes off")]
    Stale,
    #[error("the request's signature does not match")]
    Mismatch,
}

/// Checks `X-Slack-Signature` against `v0:{timestamp}:{body}` (HMAC-SHA256, constant-time) and
/// the timestamp against `now`.
pub fn verify_signature(
    secret: &str,
    timestamp: &str,
    body: &[u8],
    signature: &str,
    now: i64,
) -> Result<(), SignatureError> {
    use hmac::{KeyInit, Mac};
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::Stale)?;
    // `abs_diff`: a forged timestamp near i64::MIN must not overflow the subtraction.
    if now.abs_diff(ts) > MAX_SKEW_SECS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let expected = signature
        .strip_prefix("v0=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(SignatureError::Mismatch)?;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|_| SignatureError::Mismatch)?;
    mac.update(format!("v0:{ts}:").as_bytes());
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// The routes: `/slack/events`, `/slack/interactions`, `/slack/commands`.
pub fn router(bot: Arc<Bot>, signing_secret: &str, settings: EventSettings) -> Router {
    let state = Arc::new(HttpState {
        bot,
        secret: signing_secret.to_string(),
        settings,
    });
    Router::new()
        .route("/slack/events", post(on_events))
        .route("/slack/interactions", post(on_interactions))
        .route("/slack/commands", post(on_commands))
        .with_state(state)
        .layer(axum::middleware::from_fn(timed))
}

/// A request's time from arrival to its acknowledgement (a success answer), in
/// `threadsmith_chat_ack_duration_seconds`.
async fn timed(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let arrived = std::time::Instant::now();
    let resp = next.run(req).await;
    if resp.status().is_success() {
        crate::metrics::chat_ack(crate::chat::Platform::Slack, arrived.elapsed());
    }
    resp
}

/// The body, once its signature is good.
fn verified<'a>(
    st: &HttpState,
    headers: &HeaderMap,
    body: &'a Bytes,
) -> Result<&'a str, Box<Response>> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let checked = match (
        header("x-slack-signature"),
        header("x-slack-request-timestamp"),
    ) {
        (Some(signature), Some(timestamp)) => verify_signature(
            &st.secret,
            timestamp,
            body,
            signature,
            chrono::Utc::now().timestamp(),
        ),
        _ => Err(SignatureError::Missing),
    };
    if let Err(e) = checked {
        tracing::warn!(error = %e, "rejected a Slack request");
        return Err(Box::new(
            (StatusCode::UNAUTHORIZED, e.to_string()).into_response(),
        ));
    }
    std::str::from_utf8(body)
        .map_err(|_| Box::new((StatusCode::BAD_REQUEST, "the body is not UTF-8").into_response()))
}

fn bad(what: &str) -> Response {
    (StatusCode::BAD_REQUEST, format!("malformed {what}")).into_response()
}

async fn submit(st: &HttpState, taken: Option<(String, crate::chat::ChatEvent)>) -> Response {
    if let Some((key, event)) = taken
        && let Err(e) = st.bot.record(&key, &event).await
    {
        tracing::error!(error = %e, "could not queue a Slack event");
        // Not acknowledged: Slack delivers it again.
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    StatusCode::OK.into_response()
}

async fn on_events(State(st): State<Arc<HttpState>>, headers: HeaderMap, body: Bytes) -> Response {
    let text = match verified(&st, &headers, &body) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let Ok(event) = serde_json::from_str::<SlackPushEvent>(text) else {
        return bad("event");
    };
    match event {
        SlackPushEvent::UrlVerification(v) => v.challenge.into_response(),
        SlackPushEvent::EventCallback(cb) => {
            submit(&st, events::from_push(&cb, &st.settings)).await
        }
        _ => StatusCode::OK.into_response(),
    }
}

#[derive(serde::Deserialize)]
struct InteractionForm {
    payload: String,
}

async fn on_interactions(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = match verified(&st, &headers, &body) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let Ok(form) = serde_urlencoded::from_str::<InteractionForm>(text) else {
        return bad("interaction");
    };
    let Ok(event) = serde_json::from_str::<SlackInteractionEvent>(&form.payload) else {
        return bad("interaction");
    };
    submit(&st, events::from_interaction(&event, &st.settings)).await
}

async fn on_commands(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = match verified(&st, &headers, &body) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let Ok(command) = serde_urlencoded::from_str::<SlackCommandEvent>(text) else {
        return bad("command");
    };
    let response = submit(&st, Some(events::from_command(&command))).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    axum::Json(serde_json::json!({"response_type": "ephemeral", "text": "On it."})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    const TS: i64 = 1531420618;

    /// Slack's published example ("Verifying requests from Slack").
    #[test]
    fn slacks_published_example_verifies() {
        assert_eq!(
            verify_signature(SECRET, "1531420618", BODY.as_bytes(), SIGNATURE, TS + 10),
            Ok(())
        );
    }

    #[test]
    fn forged_stale_and_missing_signatures_are_refused() {
        let forged = SIGNATURE.replace("a2114d", "a2114e");
        assert_eq!(
            verify_signature(SECRET, "1531420618", BODY.as_bytes(), &forged, TS),
            Err(SignatureError::Mismatch)
        );
        let tampered = BODY.replace("foobar", "foobaz");
        assert_eq!(
            verify_signature(SECRET, "1531420618", tampered.as_bytes(), SIGNATURE, TS),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(SECRET, "1531420618", BODY.as_bytes(), SIGNATURE, TS + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_signature(SECRET, "1531420618", BODY.as_bytes(), SIGNATURE, TS - 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_signature(SECRET, "soon", BODY.as_bytes(), SIGNATURE, TS),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_signature(SECRET, "1531420618", BODY.as_bytes(), "v1=zz", TS),
            Err(SignatureError::Mismatch)
        );
    }
}

#[cfg(test)]
mod fuzz {
    use hmac::{KeyInit, Mac};
    use proptest::prelude::*;

    use super::*;

    fn sign(secret: &str, ts: &str, body: &[u8]) -> String {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("v0:{ts}:").as_bytes());
        mac.update(body);
        format!("v0={}", hex::encode(mac.finalize().into_bytes()))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        #[test]
        fn forged_headers_never_pass_nor_panic(
            timestamp in prop_oneof![
                "\\PC{0,30}",
                any::<i64>().prop_map(|n| n.to_string()),
                Just(i64::MIN.to_string()),
                Just(i64::MAX.to_string()),
            ],
            signature in prop_oneof!["\\PC{0,80}", "v0=[0-9a-f]{0,70}"],
            body in prop::collection::vec(any::<u8>(), 0..200),
            now in any::<i64>(),
        ) {
            prop_assert!(verify_signature("secret", &timestamp, &body, &signature, now).is_err());
        }

        #[test]
        fn only_the_right_signature_in_time_passes(
            body in prop::collection::vec(any::<u8>(), 0..200),
            skew in -1000i64..1000,
            flip in any::<prop::sample::Index>(),
        ) {
            let now = 1_700_000_000;
            let ts = (now + skew).to_string();
            let good = sign("secret", &ts, &body);
            let verdict = verify_signature("secret", &ts, &body, &good, now);
            if skew.abs() <= MAX_SKEW_SECS {
                prop_assert!(verdict.is_ok());
            } else {
                prop_assert_eq!(verdict, Err(SignatureError::Stale));
            }
            // Another secret, or one changed byte of the body, never passes.
            prop_assert!(verify_signature("other", &ts, &body, &good, now).is_err());
            if !body.is_empty() {
                let mut changed = body.clone();
                let i = flip.index(changed.len());
                changed[i] ^= 0x01;
                prop_assert!(verify_signature("secret", &ts, &changed, &good, now).is_err());
            }
        }
    }

    #[test]
    fn a_timestamp_at_the_edge_of_i64_is_stale_not_a_panic() {
        assert_eq!(
            verify_signature("s", &i64::MIN.to_string(), b"", "v0=00", 1_700_000_000),
            Err(SignatureError::Stale)
        );
    }
}
