//! The fake GitHub REST API on its own, over real bare repositories, until Ctrl-C.
//! `cargo run -p threadsmith-tests --bin fake-github -- --repo acme/widgets=/srv/widgets.git`

use anyhow::Context;
use clap::Parser;
use threadsmith_tests::fake_github::{APP_ID, FakeGitHub, INSTALLATION_ID};
use threadsmith_tests::gitrepo::{git, repo_with};
use threadsmith_tests::standalone::{bind, pair, until_stopped};

#[derive(Parser)]
#[command(about = "A stateful fake of GitHub's REST API (App installations, pull requests)")]
struct Args {
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// 0: any free port.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// A repository served from a bare repository, as OWNER/NAME=PATH; repeatable.
    #[arg(long = "repo", value_parser = pair)]
    repos: Vec<(String, String)>,
    /// A repository made for the run (a temporary bare repository with `main` and a branch
    /// `threadsmith/demo` one commit ahead), as OWNER/NAME; repeatable.
    #[arg(long = "demo-repo")]
    demo_repos: Vec<String>,
    /// A personal access token the fake accepts; repeatable.
    #[arg(long = "token", default_value = "ghp_threadsmithfaketoken")]
    tokens: Vec<String>,
}

/// A bare repository with `main` and `threadsmith/demo` (one commit ahead of `main`).
fn demo_repo(dir: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    let work = repo_with(&dir.join("work"), &[("README.md", "demo\n")]);
    git(&work, &["checkout", "--quiet", "-b", "threadsmith/demo"]);
    std::fs::write(work.join("README.md"), "demo, changed\n").context("write")?;
    git(&work, &["commit", "--quiet", "-am", "change"]);
    let bare = dir.join("remote.git");
    let (w, b) = (work.display().to_string(), bare.display().to_string());
    git(dir, &["clone", "--quiet", "--bare", &w, &b]);
    Ok(bare)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let scratch = tempfile::tempdir().context("a scratch directory")?;
    let gh = FakeGitHub::start_on(bind(&args.host, args.port).await?);
    println!("GITHUB_API_URL={}", gh.api_url());
    for t in &args.tokens {
        gh.allow_personal_token(t);
        println!("GITHUB_TOKEN={t}");
    }
    println!("GITHUB_APP_ID={APP_ID}");
    println!("GITHUB_INSTALLATION_ID={INSTALLATION_ID}");
    println!(
        "GITHUB_APP_PRIVATE_KEY_PATH={}/fixtures/github-app-test-key.pem",
        env!("CARGO_MANIFEST_DIR")
    );
    for (name, path) in &args.repos {
        gh.add_repo(name, std::path::Path::new(path));
        println!("GITHUB_REPO={name}={path}");
    }
    for (i, name) in args.demo_repos.iter().enumerate() {
        let bare = demo_repo(&scratch.path().join(i.to_string()))?;
        gh.add_repo(name, &bare);
        println!("GITHUB_REPO={name}={}", bare.display());
    }
    println!("READY");
    until_stopped("fake-github").await
}
