//! One Socket Mode WebSocket: opened through `apps.connections.open`, with `TCP_NODELAY`; each
//! envelope stored on a task of its own and acked when stored; pings both ways. On `disconnect`
//! the slot is told to open another, while this one finishes the envelopes it holds (and any
//! Slack still sends on it) and closes; on shutdown it reads nothing more, finishes, closes.
//! Both within a bound.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use slack_morphism::prelude::*;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use super::Ctx;
use super::envelope::{self, Disconnect, Envelope, Frame};

pub(super) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The time limit of `apps.connections.open`, and of the TCP, TLS and WebSocket handshakes.
const OPEN_LIMIT: Duration = Duration::from_secs(10);
/// The time limit of one write (acks, pings, the close frame).
const WRITE_LIMIT: Duration = Duration::from_secs(10);
/// How long storing one event may take; past it the envelope is not acked (Slack wants an ack
/// within 3 s and retries an Events API envelope after that anyway).
const STORE_LIMIT: Duration = Duration::from_secs(10);
/// A ping this often; a connection that said nothing (not even a pong) for `SILENT_LIMIT` is
/// given up.
const PING_EVERY: Duration = Duration::from_secs(10);
const SILENT_LIMIT: Duration = Duration::from_secs(30);
/// How long a connection being replaced or shut down may take to store and ack what it holds.
const DRAIN_LIMIT: Duration = Duration::from_secs(8);

/// Why a connection asks its slot for another.
#[derive(Debug)]
pub(super) enum Ended {
    /// Slack sent `disconnect` (`warning`, `refresh_requested`).
    Refresh(String),
    /// Slack sent `disconnect` with `link_disabled`.
    LinkDisabled,
    /// Closed, failed or silent.
    Lost(String),
    /// The listener is shutting down.
    Shutdown,
}

/// Asks `apps.connections.open` for a URL and opens the WebSocket.
pub(super) async fn open(ctx: &Ctx) -> anyhow::Result<Ws> {
    let session = ctx.client.open_session(&ctx.token);
    let opened = timeout(
        OPEN_LIMIT,
        session.apps_connections_open(&SlackApiAppsConnectionOpenRequest::new()),
    )
    .await
    .map_err(|_| anyhow::anyhow!("apps.connections.open took over {OPEN_LIMIT:?}"))?
    .map_err(|e| anyhow::anyhow!("apps.connections.open: {e}"))?;
    timeout(OPEN_LIMIT, connect(&opened.url.0))
        .await
        .map_err(|_| anyhow::anyhow!("the WebSocket handshake took over {OPEN_LIMIT:?}"))?
}

async fn connect(url: &url::Url) -> anyhow::Result<Ws> {
    let host = url.host_str().context("the Socket Mode URL has no host")?;
    let port = url
        .port_or_known_default()
        .context("the Socket Mode URL has no port")?;
    let tcp = TcpStream::connect((host, port))
        .await
        .with_context(|| format!("connecting to {host}:{port}"))?;
    // An ack is a small frame: without this it can wait for the peer's delayed ACK (40 ms).
    tcp.set_nodelay(true).context("setting TCP_NODELAY")?;
    let connector = match url.scheme() {
        "wss" => Connector::Rustls(tls_config()?),
        _ => Connector::Plain,
    };
    let (ws, _) =
        tokio_tungstenite::client_async_tls_with_config(url.as_str(), tcp, None, Some(connector))
            .await
            .context("the WebSocket handshake")?;
    Ok(ws)
}

/// TLS with the system's roots and the ring provider named (several providers are linked in,
/// so rustls would not pick one by itself).
pub(super) fn tls_config() -> anyhow::Result<Arc<rustls::ClientConfig>> {
    use hyper_rustls::ConfigBuilderExt;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS versions")?
    .with_native_roots()
    .context("loading the system's root certificates")?
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Reads and acks until the connection ends; `replace` is told (once) when the slot should
/// open another. Envelopes still being stored then get `DRAIN_LIMIT` to be acked.
pub(super) async fn run(
    ws: Ws,
    ctx: Arc<Ctx>,
    replace: oneshot::Sender<Ended>,
    stop: CancellationToken,
) {
    let (mut sink, mut stream) = ws.split();
    let (acks, mut ack_rx) = mpsc::unbounded_channel::<String>();
    let mut work: JoinSet<()> = JoinSet::new();
    let mut replace = Some(replace);
    let lost = ctx.clone();
    let mut tell = |why: Ended| {
        if let Ended::Lost(reason) = &why {
            lost.sink.lost(reason);
        }
        if let Some(r) = replace.take() {
            // The slot is gone only when the listener is: nobody to tell.
            let _ = r.send(why);
        }
    };
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    let mut heard = Instant::now();
    // Set once this connection is on its way out (Slack sent `disconnect`, or shutdown): it
    // ends as soon as it holds no envelope, or at this deadline.
    let mut drain_until: Option<Instant> = None;
    // Envelopes are read until shutdown (Slack may still send some after `disconnect`).
    let mut reading = true;
    loop {
        if drain_until.is_some() && work.is_empty() && ack_rx.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            Some(ack) = ack_rx.recv() => {
                if let Err(e) = write_acks(&mut sink, ack, &mut ack_rx).await {
                    tell(Ended::Lost(format!("an ack could not be written: {e}")));
                    break;
                }
            }
            Some(done) = work.join_next(), if !work.is_empty() => {
                if let Err(e) = done {
                    tracing::error!(error = %e, "a Socket Mode envelope's task ended abnormally");
                }
            }
            frame = stream.next(), if reading => match frame {
                Some(Ok(Message::Text(text))) => {
                    heard = Instant::now();
                    match envelope::parse(text.as_str()) {
                        Frame::Hello(connections) => {
                            tracing::debug!(connections, "Socket Mode connection open");
                            ctx.sink.connected();
                        }
                        Frame::Disconnect(d) => {
                            tracing::info!(?d, "Slack asks for a new Socket Mode connection");
                            tell(match d {
                                Disconnect::Refresh(reason) => Ended::Refresh(reason),
                                Disconnect::LinkDisabled => Ended::LinkDisabled,
                            });
                            drain_until = drain_until.or(Some(Instant::now() + DRAIN_LIMIT));
                        }
                        Frame::Envelope(envelope) => {
                            work.spawn(take(envelope, ctx.clone(), acks.clone()));
                        }
                        Frame::Unreadable { error, ack } => {
                            tracing::error!(%error, frame = %text.as_str(), "an unreadable Socket Mode frame");
                            if let Some(ack) = ack {
                                let _ = acks.send(ack);
                            }
                        }
                    }
                }
                Some(Ok(Message::Ping(_))) => {
                    heard = Instant::now();
                    // tungstenite queued the pong: make it leave now.
                    if !matches!(timeout(WRITE_LIMIT, sink.flush()).await, Ok(Ok(()))) {
                        tell(Ended::Lost("a pong could not be written".into()));
                        break;
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    tell(Ended::Lost(format!("Slack closed the connection ({frame:?})")));
                    break;
                }
                Some(Ok(_)) => heard = Instant::now(),
                Some(Err(e)) => {
                    tell(Ended::Lost(format!("reading failed: {e}")));
                    break;
                }
                None => {
                    tell(Ended::Lost("the connection ended".into()));
                    break;
                }
            },
            _ = ping.tick(), if drain_until.is_none() => {
                if heard.elapsed() > SILENT_LIMIT {
                    tell(Ended::Lost(format!("nothing heard for {SILENT_LIMIT:?}")));
                    break;
                }
                let sent = timeout(WRITE_LIMIT, sink.send(Message::Ping(Default::default()))).await;
                if !matches!(sent, Ok(Ok(()))) {
                    tell(Ended::Lost("a ping could not be written".into()));
                    break;
                }
            }
            _ = stop.cancelled(), if reading => {
                tell(Ended::Shutdown);
                reading = false;
                drain_until = drain_until.or(Some(Instant::now() + DRAIN_LIMIT));
            }
            _ = sleep_until(drain_until), if drain_until.is_some() => {
                tracing::warn!(left = work.len(), "envelopes not stored in time are left for Slack to deliver again");
                break;
            }
        }
    }
    // Whatever is left unacked Slack delivers again; the stores under way finish in the inbox
    // writer regardless.
    work.shutdown().await;
    if let Ok(Err(e)) = timeout(WRITE_LIMIT, sink.close()).await {
        tracing::debug!(error = %e, "closing a Socket Mode connection");
    }
}

/// Writes an ack and every other already waiting, then flushes once.
async fn write_acks(
    sink: &mut futures_util::stream::SplitSink<Ws, Message>,
    first: String,
    more: &mut mpsc::UnboundedReceiver<String>,
) -> anyhow::Result<()> {
    let write = async {
        sink.feed(Message::Text(first.into())).await?;
        while let Ok(ack) = more.try_recv() {
            sink.feed(Message::Text(ack.into())).await?;
        }
        sink.flush().await
    };
    timeout(WRITE_LIMIT, write)
        .await
        .map_err(|_| anyhow::anyhow!("writing took over {WRITE_LIMIT:?}"))??;
    Ok(())
}

/// Stores one envelope's event, then hands its ack to the connection. A failure to store is
/// not acknowledged, so that Slack delivers the envelope again.
async fn take(envelope: Envelope, ctx: Arc<Ctx>, acks: mpsc::UnboundedSender<String>) {
    let arrived = Instant::now();
    if let Some((key, event)) = envelope.event(&ctx.settings) {
        match timeout(STORE_LIMIT, ctx.sink.submit(&key, &event)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, envelope = envelope.id(), "a Slack event could not be stored; not acknowledged");
                return;
            }
            Err(_) => {
                tracing::error!(envelope = envelope.id(), limit = ?STORE_LIMIT, "storing a Slack event took too long; not acknowledged");
                return;
            }
        }
    }
    match envelope.ack() {
        // The connection is gone only once it stopped waiting for acks: Slack delivers again.
        Ok(ack) => {
            let _ = acks.send(ack);
            // Handed to the connection, which writes it at once (acks go before reading).
            ctx.sink.acked(arrived.elapsed());
        }
        Err(e) => {
            tracing::error!(error = %e, envelope = envelope.id(), "an ack could not be written")
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
