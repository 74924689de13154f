//! Socket Mode: a WebSocket endpoint on its own port (axum is built without "ws").
//!
//! Each connection must present a ticket from `apps.connections.open`. An app may hold several
//! connections at once (Slack allows up to 10); like Slack, the fake sends each frame to one of
//! the open connections, chosen at random. Frames sent while nobody is connected (or left
//! unwritten by a connection that closed) wait in `pending` for the next one; Events API
//! envelopes written to a connection that closed before acknowledging them are delivered again
//! (`retry_attempt` + 1), as Slack retries unacknowledged events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{
    Callback, ErrorResponse, Request, Response,
};
use tokio_tungstenite::tungstenite::{Message as WsMessage, http};

use super::Shared;
use super::state::{Ack, Frame, Outgoing, Target};

/// How long a connection stays open after `disconnect` when the client does not close it.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    while let Ok((stream, _)) = listener.accept().await {
        // Like Slack's servers: small frames leave at once (no Nagle delay).
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(stream, shared.clone()));
    }
}

async fn connection(stream: TcpStream, shared: Arc<Shared>) {
    let accepted = tokio_tungstenite::accept_hdr_async(stream, TicketCheck(shared.clone())).await;
    let Ok(ws) = accepted else {
        return;
    };

    let (tx, mut rx) = mpsc::unbounded_channel();
    let (id, live) = shared.mutate(|s| {
        s.connections += 1;
        s.live += 1;
        let id = s.connections;
        s.targets.push(Target { id, tx });
        let pending: Vec<Frame> = s.pending.drain(..).collect();
        for frame in pending {
            s.deliver(frame);
        }
        (id, s.live)
    });
    let (mut sink, mut incoming) = ws.split();
    let hello = json!({
        "type": "hello",
        "num_connections": live,
        "debug_info": {"host": "applink-fake", "build_number": 10, "approximate_connection_time": 18060},
        "connection_info": {"app_id": shared.cfg.app_id},
    });
    let mut unsent: Vec<Frame> = Vec::new();
    if sink
        .send(WsMessage::Text(hello.to_string().into()))
        .await
        .is_ok()
    {
        let mut rx_open = true;
        let mut closing: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                out = rx.recv(), if rx_open => match out {
                    Some(Outgoing::Frame(frame)) => {
                        if sink.send(WsMessage::Text(frame.text.clone().into())).await.is_err() {
                            unsent.push(frame);
                            break;
                        }
                        if let Some(envelope_id) = frame.envelope_id.clone() {
                            let at = Instant::now();
                            shared.mutate(|s| {
                                s.sent.entry(envelope_id.clone()).or_insert(at);
                                if !s.acks.contains_key(&envelope_id) {
                                    s.in_flight.insert(envelope_id, (id, frame));
                                }
                            });
                        }
                    }
                    Some(Outgoing::Disconnect(reason, done)) => {
                        let frame = json!({"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}});
                        let _ = sink.send(WsMessage::Text(frame.to_string().into())).await;
                        let _ = done.send(());
                        closing = Some(tokio::time::Instant::now() + CLOSE_GRACE);
                    }
                    Some(Outgoing::Close) => {
                        let _ = sink.send(WsMessage::Close(None)).await;
                        break;
                    }
                    None => rx_open = false,
                },
                msg = incoming.next() => match msg {
                    Some(Ok(WsMessage::Text(text))) => record(&shared, id, text.as_str()),
                    Some(Ok(WsMessage::Ping(_))) => {
                        // tungstenite queued the pong; make sure it leaves now.
                        let _ = sink.flush().await;
                    }
                    Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
                _ = sleep_until(closing), if closing.is_some() => {
                    let _ = sink.send(WsMessage::Close(None)).await;
                    break;
                }
            }
        }
    }
    let _ = sink.close().await;

    shared.mutate(|s| {
        s.live -= 1;
        s.targets.retain(|t| t.id != id);
        while let Ok(out) = rx.try_recv() {
            if let Outgoing::Frame(frame) = out {
                unsent.push(frame);
            }
        }
        for frame in unsent {
            s.deliver(frame);
        }
        s.redeliver_unacked(id);
    });
}

/// Lets the handshake through only with an unused ticket from `apps.connections.open`.
struct TicketCheck(Arc<Shared>);

impl Callback for TicketCheck {
    fn on_request(self, req: &Request, resp: Response) -> Result<Response, ErrorResponse> {
        let ticket = req
            .uri()
            .query()
            .and_then(|q| {
                super::web::parse_form(q)
                    .into_iter()
                    .find(|(k, _)| k == "ticket")
            })
            .map(|(_, v)| v);
        if ticket.is_some_and(|t| self.0.mutate(|s| s.tickets.remove(&t))) {
            return Ok(resp);
        }
        let mut reject = ErrorResponse::new(Some(
            "no valid ticket: call apps.connections.open first".into(),
        ));
        *reject.status_mut() = http::StatusCode::UNAUTHORIZED;
        Err(reject)
    }
}

/// Records a client frame. A frame naming an `envelope_id` is an ack, taken only as Slack
/// takes one: a JSON object with `envelope_id` and, where the envelope said
/// `accepts_response_payload`, an optional object `payload` (nothing else), for an envelope
/// written to this connection and not acknowledged yet. Anything else is recorded in
/// `rejected_acks` and leaves the envelope unacknowledged.
fn record(shared: &Shared, connection: usize, text: &str) {
    let at = Instant::now();
    let frame = serde_json::from_str::<Value>(text).ok();
    shared.mutate(|s| {
        s.client_frames.push(text.into());
        let Some(frame) = frame else { return };
        let Some(id) = frame.get("envelope_id").and_then(Value::as_str) else {
            return;
        };
        match ack_problem(s.in_flight.get(id), connection, &frame) {
            Some(why) => s.rejected_acks.push((text.into(), why)),
            None => {
                s.in_flight.remove(id);
                s.acks.insert(id.into(), Ack { frame, at });
            }
        }
    });
}

/// Why `ack` is not a valid ack of the envelope in flight, if it is not.
fn ack_problem(
    in_flight: Option<&(usize, Frame)>,
    connection: usize,
    ack: &Value,
) -> Option<String> {
    let Some((on, envelope)) = in_flight else {
        return Some("no envelope with this id awaits an ack".into());
    };
    if *on != connection {
        return Some(format!(
            "the envelope was sent on connection {on}, not {connection}"
        ));
    }
    let Some(fields) = ack.as_object() else {
        return Some("not an object".into());
    };
    if let Some(other) = fields
        .keys()
        .find(|k| *k != "envelope_id" && *k != "payload")
    {
        return Some(format!("unknown field `{other}`"));
    }
    if let Some(payload) = fields.get("payload") {
        let accepts = serde_json::from_str::<Value>(&envelope.text)
            .map(|e| e["accepts_response_payload"] == true)
            .unwrap_or(false);
        if !accepts {
            return Some("a payload for an envelope that accepts none".into());
        }
        if !payload.is_object() {
            return Some("the payload is not an object".into());
        }
    }
    None
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
