//! The gateway v10 WebSocket: Hello, Identify (intents recorded), Ready, heartbeats, dispatches
//! with sequence numbers, Resume with replay of what a dropped connection missed.

use axum::extract::State;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{APP_ID, BOT_ID, FakeDiscord, GUILD_ID, TOKEN, user_json};

pub(super) async fn gateway(State(fake): State<FakeDiscord>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| connection(fake, socket))
}

async fn connection(fake: FakeDiscord, mut socket: WebSocket) {
    let hello = json!({"op": 10, "d": {"heartbeat_interval": 41250}, "s": null, "t": null});
    if socket
        .send(WsMessage::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let (kill_tx, mut kill_rx) = tokio::sync::oneshot::channel::<()>();
    loop {
        tokio::select! {
            _ = &mut kill_rx => return,
            out = rx.recv() => {
                let Some(out) = out else { return };
                if socket.send(WsMessage::Text(out.into())).await.is_err() {
                    break;
                }
            }
            incoming = socket.recv() => {
                let Some(Ok(msg)) = incoming else { break };
                let text = match msg {
                    WsMessage::Text(t) => t.to_string(),
                    WsMessage::Close(_) => break,
                    _ => continue,
                };
                let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
                match v["op"].as_u64() {
                    Some(1) => {
                        let _ = tx.send(json!({"op": 11, "d": null, "s": null, "t": null}).to_string());
                    }
                    Some(2) => {
                        if v["d"]["token"].as_str().map(|t| t.trim_start_matches("Bot ")) != Some(TOKEN) {
                            let _ = socket.send(WsMessage::Close(Some(axum::extract::ws::CloseFrame {
                                code: 4004, reason: "Authentication failed.".into() }))).await;
                            return;
                        }
                        // A privileged intent the application does not have: 4014.
                        let intents = v["d"]["intents"].as_u64().unwrap_or(0);
                        if intents & (1 << 15) != 0 && !fake.lock().app_message_content {
                            let _ = socket.send(WsMessage::Close(Some(axum::extract::ws::CloseFrame {
                                code: 4014, reason: "Disallowed intent(s).".into() }))).await;
                            return;
                        }
                        let session = format!("sess-{}", uuid::Uuid::new_v4().simple());
                        {
                            let mut s = fake.lock();
                            // Another process identifying does not end this one's session.
                            if let Some(outbox) = s.outbox.take().filter(|o| !o.is_closed()) {
                                let earlier = super::EarlierSession { outbox, seq: s.seq, _kill: s.kill.take() };
                                s.earlier.push(earlier);
                            }
                            s.identifies += 1;
                            s.intents = v["d"]["intents"].as_u64().unwrap_or(0);
                            s.session = Some(session.clone());
                            s.log.clear();
                            s.seq = 0;
                            s.outbox = Some(tx.clone());
                            s.kill = Some(kill_tx);
                        }
                        let ready = json!({"v": 10, "user": user_json(BOT_ID, "threadsmith", true),
                            "guilds": [{"id": GUILD_ID, "unavailable": true}], "session_id": session,
                            "resume_gateway_url": format!("ws://{}/gateway", fake.addr),
                            "shard": [0, 1], "application": {"id": APP_ID, "flags": fake.app_flags()}});
                        fake.dispatch("READY", ready);
                        fake.lock().ready = true;
                        return run_session(fake, socket, rx, kill_rx, tx).await;
                    }
                    Some(6) => {
                        let seq = v["d"]["seq"].as_u64().unwrap_or(0);
                        let ok = fake.lock().session.as_deref() == v["d"]["session_id"].as_str();
                        if !ok {
                            let _ = tx.send(json!({"op": 9, "d": false, "s": null, "t": null}).to_string());
                            continue;
                        }
                        let missed: Vec<(u64, String, Value)> = {
                            let mut s = fake.lock();
                            s.resumes += 1;
                            s.log.iter().filter(|(n, _, _)| *n > seq).cloned().collect()
                        };
                        for (n, t, d) in missed {
                            let _ = tx.send(json!({"op": 0, "s": n, "t": t, "d": d}).to_string());
                        }
                        {
                            let mut s = fake.lock();
                            s.outbox = Some(tx.clone());
                            s.kill = Some(kill_tx);
                        }
                        fake.dispatch("RESUMED", json!({}));
                        return run_session(fake, socket, rx, kill_rx, tx).await;
                    }
                    _ => {}
                }
            }
        }
    }
}

/// After Identify or Resume: forward dispatches, answer heartbeats, until the connection ends.
async fn run_session(
    fake: FakeDiscord,
    mut socket: WebSocket,
    mut rx: mpsc::UnboundedReceiver<String>,
    mut kill_rx: tokio::sync::oneshot::Receiver<()>,
    tx: mpsc::UnboundedSender<String>,
) {
    loop {
        tokio::select! {
            _ = &mut kill_rx => return,
            out = rx.recv() => {
                let Some(out) = out else { break };
                if socket.send(WsMessage::Text(out.into())).await.is_err() {
                    break;
                }
            }
            incoming = socket.recv() => {
                let Some(Ok(msg)) = incoming else { break };
                if let WsMessage::Text(t) = msg
                    && let Ok(v) = serde_json::from_str::<Value>(&t)
                    && v["op"].as_u64() == Some(1)
                {
                    let _ = tx.send(json!({"op": 11, "d": null, "s": null, "t": null}).to_string());
                }
            }
        }
    }
    let mut s = fake.lock();
    if s.outbox.as_ref().is_some_and(|o| o.same_channel(&tx)) {
        s.outbox = None;
    }
    s.earlier.retain(|e| !e.outbox.same_channel(&tx));
}
