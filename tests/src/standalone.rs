//! What the fakes' standalone binaries (`src/bin/fake-*.rs`) share: a listener on the asked
//! port, and running until Ctrl-C (or SIGTERM).

use anyhow::Context;
use tokio::net::TcpListener;

/// A loopback listener on `port` (0: any free port).
pub async fn bind(host: &str, port: u16) -> anyhow::Result<TcpListener> {
    TcpListener::bind((host, port))
        .await
        .with_context(|| format!("bind {host}:{port}"))
}

/// Waits for Ctrl-C or SIGTERM, then says so on stderr. The fakes' servers are tasks of the
/// runtime; returning from `main` stops them.
pub async fn until_stopped(name: &str) -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listen for SIGTERM")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("listen for Ctrl-C")?,
        _ = term.recv() => {}
    }
    eprintln!("{name}: stopping");
    Ok(())
}

/// `key=value` (a command-line seed), split at the first `=`.
pub fn pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}
