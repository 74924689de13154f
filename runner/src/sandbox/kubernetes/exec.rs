//! One rollout's pod: commands through the exec API under time limits, cancellable, output
//! capped; reaping; cutting the network (a label); reading why it stopped; deletion.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{AttachParams, Patch, PatchParams};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::pod::CONTAINER;
use super::*;

/// Runs a command as on Docker (see `sandbox/exec.rs`), adapted to what exec over the API
/// lacks: the working directory is set here; stdin is read to exactly its length (`head -c`),
/// since only v5 of the exec protocol can close it; `$3` = 1 reaps what the command left behind
/// (`kill -9 -1` spares the caller and pid 1).
const WRAPPER: &str = "t=$1; n=$2; r=$3; shift 3; cd /workspace 2>/dev/null; \
     if [ \"$n\" = - ]; then timeout -k 5 \"$t\" \"$@\" </dev/null; \
     else head -c \"$n\" | timeout -k 5 \"$t\" \"$@\"; fi; rc=$?; \
     if [ \"$r\" = 1 ]; then kill -9 -1 2>/dev/null; fi; exit $rc";
/// Extra time the host waits past a command's own limit before it kills every process itself.
const BACKSTOP: Duration = Duration::from_secs(15);
/// How long the exit status may take to arrive once the output has ended.
const STATUS_LIMIT: Duration = Duration::from_secs(10);
/// Bytes buffered per stream between kube's WebSocket task and this reader.
const STREAM_BUFFER: usize = 64 << 10;

/// One rollout's pod.
pub struct KubernetesSandbox {
    pub(super) backend: Kubernetes,
    pub name: String,
}

/// The argv that runs `req` in the pod (its environment first, then the wrapper).
fn command_line(req: &ExecRequest, stdin_len: Option<usize>) -> Vec<String> {
    let mut argv = Vec::new();
    if !req.env.is_empty() {
        argv.push("env".to_string());
        argv.extend(req.env.iter().cloned());
    }
    argv.extend(["sh", "-c", WRAPPER, "threadsmith"].map(String::from));
    argv.push(req.timeout.as_secs().max(1).to_string());
    argv.push(stdin_len.map_or_else(|| "-".to_string(), |n| n.to_string()));
    argv.push(if req.reap { "1" } else { "0" }.to_string());
    argv.extend(req.argv.iter().cloned());
    argv
}

/// The exit code a finished command's Status gives (`Success`, or `NonZeroExitCode` with the
/// code as its `ExitCode` cause); `Err` with the server's words when it is another failure.
pub(super) fn exit_code(status: &Status) -> Result<i64, String> {
    if status.status.as_deref() == Some("Success") {
        return Ok(0);
    }
    if status.reason.as_deref() == Some("NonZeroExitCode")
        && let Some(code) = status
            .details
            .as_ref()
            .and_then(|d| d.causes.as_ref())
            .and_then(|causes| {
                causes
                    .iter()
                    .find(|c| c.reason.as_deref() == Some("ExitCode"))
            })
            .and_then(|c| c.message.as_deref()?.parse().ok())
    {
        return Ok(code);
    }
    Err(status
        .message
        .clone()
        .unwrap_or_else(|| "the command failed without saying why".into()))
}

/// Reads one chunk of a stream, or never when it has ended (for `select!`).
async fn next_chunk(
    reader: &mut Option<impl AsyncRead + Unpin>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match reader {
        Some(r) => r.read(buf).await,
        None => std::future::pending().await,
    }
}

impl KubernetesSandbox {
    /// Runs a command in `container` under its time limit, cancellable, with capped output;
    /// `stdin` is sent (whole) before the output is read.
    pub(super) async fn run(
        &self,
        container: &str,
        req: ExecRequest,
        stdin: Option<Arc<Vec<u8>>>,
        cancel: &CancellationToken,
    ) -> Result<ExecOutcome, SandboxError> {
        let started = Instant::now();
        let argv = command_line(&req, stdin.as_ref().map(|s| s.len()));
        let ap = AttachParams::default()
            .container(container)
            .stdin(stdin.is_some())
            .stdout(true)
            .stderr(true)
            .max_stdin_buf_size(STREAM_BUFFER)
            .max_stdout_buf_size(STREAM_BUFFER)
            .max_stderr_buf_size(STREAM_BUFFER);
        let pods = self.backend.pods();
        let mut process = tokio::select! {
            _ = cancel.cancelled() => return Err(SandboxError::Cancelled),
            p = call("starting a command", pods.exec(&self.name, argv, &ap)) => p?,
        };
        let status = process.take_status();
        let mut out = process.stdout();
        let mut err = process.stderr();
        // Kept open until the command ends (the future owns it): closing stdin closes the whole
        // stream under v4.
        let stdin_writer = process.stdin();
        let feeder = async move {
            if let (Some(mut w), Some(data)) = (stdin_writer, stdin) {
                if let Err(e) = w.write_all(&data).await {
                    tracing::debug!(error = %e, "could not send a command's input");
                }
                let _ = w.flush().await;
                std::future::pending::<()>().await;
            }
            std::future::pending::<()>().await
        };
        tokio::pin!(feeder);

        let mut collected = ExecOutput::new(req.cap, req.keep_stdout);
        let deadline = tokio::time::Instant::now() + req.timeout + BACKSTOP;
        let mut killed_by_host = false;
        let (mut out_buf, mut err_buf) = (vec![0u8; 16 << 10], vec![0u8; 16 << 10]);
        while out.is_some() || err.is_some() {
            tokio::select! {
                _ = cancel.cancelled() => {
                    process.abort();
                    self.reap().await;
                    return Err(SandboxError::Cancelled);
                }
                _ = tokio::time::sleep_until(deadline) => {
                    process.abort();
                    self.reap().await;
                    killed_by_host = true;
                    break;
                }
                () = &mut feeder => {}
                n = next_chunk(&mut out, &mut out_buf) => match n {
                    Ok(0) | Err(_) => out = None,
                    Ok(n) => collected.stdout(&out_buf[..n]),
                },
                n = next_chunk(&mut err, &mut err_buf) => match n {
                    Ok(0) | Err(_) => err = None,
                    Ok(n) => collected.stderr(&err_buf[..n]),
                },
            }
        }
        let exit_code = if killed_by_host {
            None
        } else {
            let status = match status {
                Some(s) => tokio::time::timeout(STATUS_LIMIT, s).await.ok().flatten(),
                None => None,
            };
            match status.as_ref().map(exit_code) {
                Some(Ok(code)) => Some(code),
                Some(Err(why)) => {
                    return Err(backend_err("running a command", why));
                }
                None => {
                    return Err(backend_err(
                        "running a command",
                        "the API server ended the command without its exit status (was the pod deleted?)",
                    ));
                }
            }
        };
        Ok(collected.finish(exit_code, killed_by_host, started, req.timeout))
    }

    /// Kills every process of the sandbox's user but pid 1 (the pod's keep-alive), three tries.
    /// Kubernetes has no per-pod pids limit to lift for a moment as on Docker (the kubelet's
    /// `podPidsLimit` bounds a fork bomb); a pod that cannot be reaped is deleted with the
    /// rollout.
    async fn reap(&self) {
        let ap = AttachParams::default()
            .container(CONTAINER)
            .stdout(true)
            .stderr(true);
        for _ in 0..3 {
            let pods = self.backend.pods();
            let kill = async {
                let mut p = pods.exec(&self.name, ["kill", "-9", "-1"], &ap).await?;
                let status = p.take_status();
                let mut sink = Vec::new();
                if let Some(mut o) = p.stdout() {
                    let _ = o.read_to_end(&mut sink).await;
                }
                Ok::<_, kube::Error>(match status {
                    Some(s) => s.await,
                    None => None,
                })
            };
            match tokio::time::timeout(API_LIMIT, kill).await {
                // 0: killed some; 1: nothing was left to kill.
                Ok(Ok(Some(status))) if matches!(exit_code(&status), Ok(0 | 1)) => return,
                Ok(r) => {
                    tracing::debug!(pod = %self.name, result = ?r.map(|s| s.map(|s| s.message)), "reaping did not run")
                }
                Err(_) => tracing::debug!(pod = %self.name, "reaping timed out"),
            }
        }
        tracing::warn!(pod = %self.name, "could not kill the processes a command left behind");
    }

    /// Takes the setup phase's network away: the pod loses the label that kept the
    /// NetworkPolicy from selecting it.
    pub async fn cut_network(&self) -> Result<(), SandboxError> {
        let patch = serde_json::json!({ "metadata": { "labels": { LABEL_NETWORK: null } } });
        call(
            "taking the sandbox off the network",
            self.backend
                .pods()
                .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch)),
        )
        .await?;
        Ok(())
    }

    /// Why the pod can run no more commands, read from its status: it stopped (out of memory,
    /// its deadline, or otherwise). Its memory use is not read (that needs the metrics API).
    pub async fn stopped(&self) -> Option<String> {
        let pod = call("reading the sandbox", self.backend.pods().get(&self.name))
            .await
            .ok()?;
        start::stopped_words(&pod)
    }
}

#[async_trait]
impl Sandbox for KubernetesSandbox {
    fn name(&self) -> &str {
        &self.name
    }

    async fn exec(
        &self,
        req: ExecRequest,
        cancel: &CancellationToken,
    ) -> Result<ExecOutcome, SandboxError> {
        let mut req = req;
        let stdin = req.stdin.take().map(Arc::new);
        self.run(CONTAINER, req, stdin, cancel).await
    }

    async fn cut_network(&self) -> Result<(), SandboxError> {
        KubernetesSandbox::cut_network(self).await
    }

    async fn out_of_memory(&self) -> Option<String> {
        self.stopped().await
    }

    async fn remove(&self) {
        self.backend.delete_pod(&self.name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{StatusCause, StatusDetails};

    #[test]
    fn exit_codes_are_read_from_the_status() {
        let ok = Status {
            status: Some("Success".into()),
            ..Default::default()
        };
        assert_eq!(exit_code(&ok), Ok(0));
        let failed = Status {
            status: Some("Failure".into()),
            reason: Some("NonZeroExitCode".into()),
            message: Some("command terminated with non-zero exit code: error executing command [false], exit code 3".into()),
            details: Some(StatusDetails {
                causes: Some(vec![StatusCause {
                    reason: Some("ExitCode".into()),
                    message: Some("3".into()),
                    field: None,
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(exit_code(&failed), Ok(3));
        let other = Status {
            status: Some("Failure".into()),
            message: Some("container not found (\"sandbox\")".into()),
            ..Default::default()
        };
        assert_eq!(
            exit_code(&other),
            Err("container not found (\"sandbox\")".into())
        );
    }

    #[test]
    fn commands_carry_their_limit_input_length_and_environment() {
        let mut req = ExecRequest::shell("make test", Duration::from_secs(90));
        req.env = vec!["A=1".into()];
        let argv = command_line(&req, Some(12));
        assert_eq!(argv[..4], ["env", "A=1", "sh", "-c"]);
        assert_eq!(
            argv[5..],
            ["threadsmith", "90", "12", "1", "bash", "-c", "make test"]
        );
        req.reap = false;
        req.env.clear();
        let argv = command_line(&req, None);
        assert_eq!(argv[..2], ["sh", "-c"]);
        assert_eq!(argv[3..7], ["threadsmith", "90", "-", "0"]);
    }
}
