//! The fake Kubernetes API server on its own: serves until Ctrl-C, printing a kubeconfig for
//! it on stdout (or writing it to `--kubeconfig PATH`), then removes its containers.
//!
//! ```text
//! fake-kubernetes [--listen 127.0.0.1:6443] [--namespace default] [--kubeconfig PATH]
//!                 [--no-kubelet] [--remove-leftovers]
//! ```

use std::net::SocketAddr;

use anyhow::{Context, bail};
use threadsmith_tests::fake_kubernetes::{FakeKubernetes, Options, remove_leftovers};

struct Args {
    listen: SocketAddr,
    namespace: String,
    kubeconfig: Option<std::path::PathBuf>,
    kubelet: bool,
    remove_leftovers: bool,
}

fn args() -> anyhow::Result<Args> {
    let mut out = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        namespace: "default".into(),
        kubeconfig: None,
        kubelet: true,
        remove_leftovers: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--listen" => out.listen = it.next().context("--listen needs an address")?.parse()?,
            "--namespace" => out.namespace = it.next().context("--namespace needs a name")?,
            "--kubeconfig" => {
                out.kubeconfig = Some(it.next().context("--kubeconfig needs a path")?.into())
            }
            "--no-kubelet" => out.kubelet = false,
            "--remove-leftovers" => out.remove_leftovers = true,
            "-h" | "--help" => {
                println!(
                    "fake-kubernetes [--listen ADDR] [--namespace NS] [--kubeconfig PATH] [--no-kubelet] [--remove-leftovers]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (see --help)"),
        }
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("THREADSMITH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = args()?;
    if args.remove_leftovers {
        let n = remove_leftovers().await?;
        eprintln!("removed {n} containers of fake servers that are gone");
        return Ok(());
    }
    let mut opts = Options {
        kubelet: args.kubelet,
        listen: args.listen,
        ..Options::default()
    };
    if !opts.namespaces.contains(&args.namespace) {
        opts.namespaces.push(args.namespace.clone());
    }
    let server = FakeKubernetes::start_with(opts).await?;
    let kubeconfig = server.kubeconfig(&args.namespace);
    match &args.kubeconfig {
        Some(path) => {
            std::fs::write(path, &kubeconfig)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "fake Kubernetes API server at {}; kubeconfig in {}",
                server.url(),
                path.display()
            );
        }
        None => {
            eprintln!("fake Kubernetes API server at {}", server.url());
            print!("{kubeconfig}");
        }
    }
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    server.shutdown().await;
    Ok(())
}
