//! `pods/exec` over WebSocket with the channel subprotocols `v5.channel.k8s.io` and
//! `v4.channel.k8s.io` (k8s.io/apimachinery `util/httpstream/wsstream`): every binary frame
//! starts with its channel — 0 stdin, 1 stdout, 2 stderr, 3 error (the final `Status`),
//! 4 resize — and v5 adds 255, a client's "close this channel" (`[255, 0]` ends stdin). Backed by
//! a Docker exec with stdin, stdout and stderr attached.

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecResults};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use super::Ctx;
use super::kubelet::container_of;
use super::request::Query;
use super::resource::PODS;
use super::status::ApiError;

const V5: &str = "v5.channel.k8s.io";
const V4: &str = "v4.channel.k8s.io";
const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
const CLOSE: u8 = 255;

/// What one exec asked for.
struct Request {
    docker: bollard::Docker,
    container_id: String,
    command: Vec<String>,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
    v5: bool,
    shutdown: CancellationToken,
}

pub async fn handle(
    State(ctx): State<Ctx>,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    match prepare(&ctx, &ns, &name, &Query::parse(q.as_deref()), &headers) {
        Ok(mut req) => match ws {
            Ok(ws) => {
                let protocol = if req.v5 { V5 } else { V4 };
                let ws = ws.protocols([protocol]);
                req.v5 = protocol == V5;
                ws.on_upgrade(move |socket| session(socket, req))
                    .into_response()
            }
            Err(_) => ApiError::bad_request("Upgrade request required").into_response(),
        },
        Err(e) => e.into_response(),
    }
}

/// Checks the pod, the container and the parameters before the upgrade, as the server does.
fn prepare(
    ctx: &Ctx,
    ns: &str,
    name: &str,
    q: &Query,
    headers: &HeaderMap,
) -> Result<Request, ApiError> {
    let offered: Vec<String> = headers
        .get_all(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|p| p.trim().to_string()))
        .filter(|p| !p.is_empty())
        .collect();
    let v5 = offered.iter().any(|p| p == V5);
    if !v5 && !offered.iter().any(|p| p == V4) {
        return Err(ApiError::bad_request(format!(
            "unable to upgrade connection: requested protocol(s) are not supported: {offered:?}; supports [\"{V5}\" \"{V4}\"]"
        )));
    }
    let pod = ctx.store.get(&PODS, ns, name)?;
    let command = q.all("command");
    let (stdin, stdout, stderr, tty) = (
        q.flag("stdin"),
        q.flag("stdout"),
        q.flag("stderr"),
        q.flag("tty"),
    );
    if command.is_empty() {
        return Err(ApiError::bad_request("you must specify at least 1 command"));
    }
    if !(stdin || stdout || stderr) {
        return Err(ApiError::bad_request(
            "you must specify at least 1 of stdin, stdout, stderr",
        ));
    }
    if tty && stderr {
        return Err(ApiError::bad_request("tty and stderr cannot both be true"));
    }
    let Some(kubelet) = ctx
        .kubelet
        .as_ref()
        .filter(|_| pod["spec"]["nodeName"].is_string())
    else {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    };
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    if phase == "Succeeded" || phase == "Failed" {
        return Err(ApiError::bad_request(format!(
            "cannot exec into a container in a completed pod; current phase is {phase}"
        )));
    }
    let (cname, id) = container_of(&pod, q.get("container"))?;
    let running = pod["status"]["containerStatuses"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == cname.as_str()))
        .is_some_and(|s| s["state"]["running"].is_object());
    let Some(container_id) = id.filter(|_| running) else {
        return Err(ApiError::bad_request(format!(
            "unable to upgrade connection: container not found (\"{cname}\")"
        )));
    };
    Ok(Request {
        docker: kubelet.docker().clone(),
        container_id,
        command,
        stdin,
        stdout,
        stderr,
        tty,
        v5,
        shutdown: ctx.shutdown.clone(),
    })
}

fn frame(channel: u8, data: &[u8]) -> Message {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(channel);
    v.extend_from_slice(data);
    Message::Binary(v.into())
}

/// The error channel's last word: Success, or the exit code as the kubelet reports it.
fn exit_status(command: &[String], code: Option<i64>, failure: Option<String>) -> Value {
    match (code, failure) {
        (_, Some(message)) => json!({
            "metadata": {}, "status": "Failure", "message": message, "reason": "InternalError",
            "details": {"causes": [{"message": message}]}, "code": 500,
        }),
        (Some(0), None) => json!({"metadata": {}, "status": "Success"}),
        (code, None) => {
            let code = code.unwrap_or(1);
            json!({
                "metadata": {},
                "status": "Failure",
                "message": format!("command terminated with non-zero exit code: error executing command [{}], exit code {code}", command.join(" ")),
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
            })
        }
    }
}

async fn session(socket: WebSocket, req: Request) {
    let (mut sink, mut stream) = socket.split();
    for (on, ch) in [(req.stdout, STDOUT), (req.stderr, STDERR), (true, ERROR)] {
        if on && sink.send(Message::Binary(vec![ch].into())).await.is_err() {
            return;
        }
    }
    let (code, failure) = match run(&req, &mut sink, &mut stream).await {
        Ok(code) => (code, None),
        Err(e) => (None, Some(e)),
    };
    let status = exit_status(&req.command, code, failure);
    let body = serde_json::to_vec(&status).unwrap_or_default();
    if sink.send(frame(ERROR, &body)).await.is_ok() {
        // The client may be gone already; nothing is left to tell it.
        let _closed = sink.send(Message::Close(None)).await;
    }
}

type Sink = futures_util::stream::SplitSink<WebSocket, Message>;
type Stream = futures_util::stream::SplitStream<WebSocket>;

/// Runs the command; the exit code, or the runtime's error.
async fn run(req: &Request, sink: &mut Sink, stream: &mut Stream) -> Result<Option<i64>, String> {
    let exec = req
        .docker
        .create_exec(
            &req.container_id,
            CreateExecOptions {
                attach_stdin: Some(req.stdin),
                attach_stdout: Some(req.stdout),
                attach_stderr: Some(req.stderr),
                tty: Some(req.tty),
                cmd: Some(req.command.clone()),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| format!("error executing command in container: {e}"))?;
    let started = req
        .docker
        .start_exec(&exec.id, None)
        .await
        .map_err(|e| format!("error executing command in container: {e}"))?;
    let StartExecResults::Attached {
        mut output,
        mut input,
    } = started
    else {
        return Err("the exec started detached".into());
    };
    // Stdin is written by its own task, so a command that does not read it cannot stall output.
    let (stdin_tx, mut stdin_rx) =
        tokio::sync::mpsc::unbounded_channel::<Option<axum::body::Bytes>>();
    let stdin_task = tokio::spawn(async move {
        while let Some(chunk) = stdin_rx.recv().await {
            let Some(chunk) = chunk else { break };
            if input.write_all(&chunk).await.is_err() {
                return;
            }
        }
        // End of stdin for the command.
        let _closed = input.shutdown().await;
    });
    let mut client_open = true;
    let result = loop {
        tokio::select! {
            _ = req.shutdown.cancelled() => break Err("the API server is shutting down".to_string()),
            msg = stream.next(), if client_open => match msg {
                Some(Ok(Message::Binary(b))) if !b.is_empty() => match b[0] {
                    STDIN if req.stdin => { let _sent = stdin_tx.send(Some(b.slice(1..))); }
                    CLOSE if req.v5 && b.get(1) == Some(&STDIN) => { let _sent = stdin_tx.send(None); }
                    RESIZE if req.tty => resize(req, &exec.id, &b[1..]).await,
                    _ => {}
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    // The client went away (a v4 client's way of ending stdin).
                    client_open = false;
                    let _sent = stdin_tx.send(None);
                }
                Some(Ok(_)) => {}
            },
            out = output.next() => match out {
                Some(Ok(LogOutput::StdOut { message } | LogOutput::Console { message })) => {
                    if client_open && sink.send(frame(STDOUT, &message)).await.is_err() {
                        client_open = false;
                    }
                }
                Some(Ok(LogOutput::StdErr { message })) => {
                    if client_open && sink.send(frame(STDERR, &message)).await.is_err() {
                        client_open = false;
                    }
                }
                Some(Ok(LogOutput::StdIn { .. })) => {}
                Some(Err(e)) => break Err(format!("error reading the command's output: {e}")),
                None => break Ok(()),
            },
        }
    };
    stdin_task.abort();
    result?;
    exit_code(req, &exec.id).await
}

async fn resize(req: &Request, exec_id: &str, body: &[u8]) {
    let Ok(size) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let (Some(w), Some(h)) = (size["Width"].as_u64(), size["Height"].as_u64()) else {
        return;
    };
    let opts = ResizeExecOptions {
        width: w.min(u16::MAX as u64) as u16,
        height: h.min(u16::MAX as u64) as u16,
    };
    if let Err(e) = req.docker.resize_exec(exec_id, opts).await {
        tracing::debug!(error = %e, "resizing an exec's terminal");
    }
}

/// The exit code once Docker has it (the output ends just before the process is reaped).
async fn exit_code(req: &Request, exec_id: &str) -> Result<Option<i64>, String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let info = req
            .docker
            .inspect_exec(exec_id)
            .await
            .map_err(|e| format!("error inspecting the command: {e}"))?;
        if info.running != Some(true) {
            return Ok(info.exit_code);
        }
        if tokio::time::Instant::now() > deadline {
            return Err("the command's output ended but it did not exit".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
