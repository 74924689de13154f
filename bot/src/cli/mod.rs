//! The `threadsmith` command line.

mod approve;
mod doctor;
mod env;
mod from;
mod out;
mod progress;
pub mod show;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use threadsmith_runner::image::{self, OfflineBuild};
use threadsmith_runner::secret::Secret;
use threadsmith_runner::{Docker, Outcome};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::pipeline::{self, TaskRequest};
use crate::task_id::short_id;

#[derive(Debug, Parser)]
#[command(
    name = "threadsmith",
    version,
    about = "Turns \"fix this\" into ranked, tested fixes: best-of-N coding-agent rollouts in sandboxes."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Settings every command takes. The model key is read from THREADSMITH_MODEL_API_KEY or the
/// config file only: a flag would show in the process list.
#[derive(Debug, Args)]
pub struct Global {
    /// Config file (TOML). Default: ./threadsmith.toml when it exists.
    #[arg(long, global = true, env = "THREADSMITH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Database URL. Default: sqlite://threadsmith.db
    #[arg(long, global = true, env = "THREADSMITH_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Where mirrors of repositories are cached. Default: ~/.local/share/threadsmith
    #[arg(long, global = true, env = "THREADSMITH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// OpenAI-compatible endpoint, e.g. https://api.openai.com/v1
    #[arg(long, global = true, env = "THREADSMITH_MODEL_BASE_URL")]
    pub model_base_url: Option<String>,
    /// Model name sent to the endpoint.
    #[arg(long, global = true, env = "THREADSMITH_MODEL")]
    pub model: Option<String>,
    /// Rollout image. Default: threadsmith-rollout:latest
    #[arg(long, global = true, env = "THREADSMITH_IMAGE")]
    pub image: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a task on a repository: N sandboxed attempts, tested and ranked.
    Run(RunArgs),
    /// Print a stored task: its rollouts, ranks, commands; a diff or a transcript on request.
    Show(show::ShowArgs),
    /// Check Docker, the rollout image, the database and the model endpoint.
    Doctor,
    /// The rollout image.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Approve a rollout of a stored task: push its branch and open its pull request.
    Approve {
        /// The task's id (or its start).
        task: String,
        /// The rollout to approve.
        rollout: u32,
    },
    /// Remove containers and volumes left behind by threadsmith processes that died, and the
    /// environment snapshots that expired or do not fit the cache's size.
    Cleanup,
    /// The environment snapshots rollouts start from (the setup's result, kept).
    Env {
        #[command(subcommand)]
        command: env::EnvCommand,
    },
    /// Run the bot: Slack (Socket Mode, or HTTP Events API) when its tokens are set.
    Serve,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A configured repository's name, a git URL, or a local path.
    #[arg(long, required_unless_present = "from")]
    pub repo: Option<String>,
    /// Branch, tag or commit to start from. Default: the repository's default branch.
    #[arg(long, conflicts_with = "from")]
    pub base: Option<String>,
    /// The next round of a stored task: `<task>:<k>` starts from its rollout k's change, on the
    /// same repository and base, with TEXT as what to change now.
    #[arg(long, value_name = "TASK:K", conflicts_with = "repo")]
    pub from: Option<String>,
    /// How many independent attempts (default 3, or `attempts` in the config).
    #[arg(long, short = 'n', env = "THREADSMITH_ATTEMPTS")]
    pub attempts: Option<u32>,
    /// Where each rollout's patch is written.
    #[arg(long, default_value = "threadsmith-out")]
    pub out: PathBuf,
    /// What to do, e.g. "the add test fails: fix add()".
    #[arg(required = true, num_args = 1..)]
    pub text: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build the rollout image: offline with debootstrap (default), or from a Dockerfile.
    Build {
        /// Build from this Dockerfile instead (needs its base image or a registry).
        #[arg(long)]
        dockerfile: Option<PathBuf>,
        /// Image tag. Default: the configured image.
        #[arg(long)]
        tag: Option<String>,
        /// Debian suite for the offline build.
        #[arg(long, default_value = "bookworm")]
        suite: String,
        /// Debian mirror (or apt proxy) for the offline build.
        #[arg(long, default_value = "http://deb.debian.org/debian")]
        mirror: String,
        /// Do nothing when the image already exists.
        #[arg(long)]
        if_missing: bool,
    },
}

pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("THREADSMITH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The config file, with environment variables and flags applied over it.
pub fn load_config(global: &Global) -> anyhow::Result<Config> {
    let default = Path::new("threadsmith.toml");
    let mut config = match &global.config {
        Some(path) => Config::load(path)?,
        None if default.exists() => Config::load(default)?,
        None => Config::default(),
    };
    if let Some(url) = &global.database_url {
        config.database_url = Some(url.clone());
    }
    if let Some(dir) = &global.data_dir {
        config.data_dir = Some(dir.clone());
    }
    if let Some(url) = &global.model_base_url {
        config.model.base_url = Some(url.clone());
    }
    if let Some(model) = &global.model {
        config.model.model = Some(model.clone());
    }
    if let Some(image) = &global.image {
        config.sandbox.image = Some(image.clone());
    }
    let secret_env = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .map(Secret::new)
    };
    if let Some(key) = secret_env("THREADSMITH_MODEL_API_KEY") {
        config.model.api_key = Some(key);
    }
    if let Some(t) = secret_env("THREADSMITH_SLACK_BOT_TOKEN") {
        config.slack.bot_token = Some(t);
    }
    if let Some(t) = secret_env("THREADSMITH_SLACK_APP_TOKEN") {
        config.slack.app_token = Some(t);
    }
    if let Some(t) = secret_env("THREADSMITH_SLACK_SIGNING_SECRET") {
        config.slack.signing_secret = Some(t);
    }
    let plain_env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let Some(v) = plain_env("THREADSMITH_SLACK_MODE") {
        config.slack.mode = Some(v);
    }
    if let Some(v) = plain_env("THREADSMITH_LISTEN") {
        config.listen = Some(v);
    }
    if let Some(t) = secret_env("THREADSMITH_DISCORD_TOKEN") {
        config.discord.token = Some(t);
    }
    if let Some(t) = secret_env("THREADSMITH_GITHUB_TOKEN") {
        config.github.token = Some(t);
    }
    if let Some(k) = secret_env("THREADSMITH_GITHUB_APP_KEY") {
        config.github.private_key = Some(k);
    }
    if let Some(v) = plain_env("THREADSMITH_GITHUB_APP_ID") {
        config.github.app_id = Some(
            v.parse()
                .context("THREADSMITH_GITHUB_APP_ID must be a number")?,
        );
    }
    if let Some(v) = plain_env("THREADSMITH_GITHUB_API_URL") {
        config.github.api_url = Some(v);
    }
    if let Some(v) = plain_env("THREADSMITH_SLACK_API_URL") {
        config.slack.api_url = Some(v);
    }
    if let Some(v) = plain_env("THREADSMITH_PUBLIC_URL") {
        config.public_url = Some(v);
    }
    if let Some(v) = plain_env("THREADSMITH_DEFAULT_REPO") {
        config.default_repo = Some(v);
    }
    if let Some(v) = plain_env("THREADSMITH_SANDBOX_BACKEND") {
        config.sandbox.backend = Some(v);
    }
    if let Some(v) = plain_env("THREADSMITH_KUBERNETES_NAMESPACE") {
        config
            .sandbox
            .kubernetes
            .get_or_insert_with(Default::default)
            .namespace = Some(v);
    }
    if let Some(v) = plain_env("THREADSMITH_KUBECONFIG") {
        config
            .sandbox
            .kubernetes
            .get_or_insert_with(Default::default)
            .kubeconfig = Some(v.into());
    }
    config.check_sandbox()?;
    Ok(config)
}

/// Runs a command. Its answer goes to stdout; a reader that closes the pipe early ends it quietly
/// with 141. Exit statuses are listed in README.md.
pub async fn main(cli: Cli) -> anyhow::Result<ExitCode> {
    out::quiet_broken_pipe(command(cli).await)
}

async fn command(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = load_config(&cli.global)?;
    match cli.command {
        Command::Run(args) => run(config, args).await,
        Command::Show(args) => show::show(config, args).await,
        Command::Doctor => doctor::doctor(config).await,
        Command::Image { command } => image_command(config, command).await,
        Command::Serve => crate::serve::serve(config, CancellationToken::new()).await,
        Command::Approve { task, rollout } => approve::approve(config, &task, rollout).await,
        Command::Env { command } => env::env_command(config, command).await,
        Command::Cleanup => {
            let backend = crate::wiring::backend(&config).await?;
            // On a cluster, the store says which bot processes are alive.
            let live = if backend.owners_span_machines() {
                let store = crate::store::open(&config.database_url()).await?;
                pipeline::live_workers(store.as_ref(), None).await?
            } else {
                Vec::new()
            };
            let n = pipeline::remove_orphans(backend.as_ref(), &live).await?;
            println!("removed {n} orphaned container(s)");
            let pruned = env::prune_to_settings(&config, backend.as_ref()).await?;
            println!("removed {pruned} environment snapshot(s)");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `threadsmith run`'s exit statuses (documented in README.md).
pub mod exit {
    /// A rollout's tests pass.
    pub const TESTS_PASS: u8 = 0;
    /// The task failed (bad input, repository, image, model…), or threadsmith did.
    pub const FAILED: u8 = 1;
    /// Every rollout failed its tests, gave up, timed out or errored.
    pub const NO_FIX: u8 = 2;
    /// A rollout changed files, but there are no tests (none configured, none detected).
    pub const UNTESTED: u8 = 3;
}

async fn run(config: Config, args: RunArgs) -> anyhow::Result<ExitCode> {
    let (request, round) = match &args.from {
        Some(from) => {
            let store = crate::store::open(&config.database_url()).await?;
            let text = args.text.join(" ");
            match from::round_request(
                store.as_ref(),
                &config.database_url(),
                from,
                &text,
                args.attempts,
            )
            .await
            {
                Ok((request, link)) => (request, Some((store, link))),
                Err(e) => {
                    eprintln!("{e:#}");
                    return Ok(ExitCode::from(exit::FAILED));
                }
            }
        }
        None => (
            TaskRequest {
                text: args.text.join(" "),
                repo: args.repo.clone().unwrap_or_default(),
                base: args.base.clone(),
                attempts: args.attempts.unwrap_or(config.attempts()),
                origin: "cli".into(),
                requester: std::env::var("USER").ok(),
                spec: None,
                task_id: None,
                round: None,
            },
            None,
        ),
    };
    // Bad input is refused before anything is stored or started.
    if let Err(message) = pipeline::validate(&config, &request) {
        eprintln!("{message}");
        return Ok(ExitCode::from(exit::FAILED));
    }
    let svc = crate::wiring::services(config).await?;
    let cancel = CancellationToken::new();
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            crate::signals::terminated().await;
            eprintln!("cancelling: stopping the rollouts and removing their containers …");
            cancel.cancel();
        });
    }
    if let (Some((store, mut link)), Some(id)) = (round, &request.task_id) {
        // Stored before the task is, as in chat.
        link.task_id = id.to_string();
        store.set_round(&link).await?;
        eprintln!(
            "round {} of task {}, from its rollout #{}",
            link.round,
            short_id(&link.root),
            link.from_rollout
        );
    }
    let progress = progress::CliProgress::new();
    let report = pipeline::run_task(&svc, request, &progress, cancel).await?;
    progress.finish();
    if let Some(error) = &report.task.error {
        eprintln!("\nThe task failed: {error}");
        out::print(&format!("task {}\n", report.task.id))?;
        return Ok(ExitCode::from(exit::FAILED));
    }
    let mut text = format!("\n{}", show::ranked_table(&report.rollouts));
    if let Some(tests) = progress.tests() {
        text.push_str(&format!("{tests}\n"));
    }
    let dir = args.out.join(short_id(&report.task.id));
    let mut written = 0;
    for r in &report.rollouts {
        if let Some(diff) = svc.store.diff(&report.task.id, r.index).await?
            && !diff.is_empty()
        {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let path = dir.join(format!("rollout-{}.patch", r.index));
            std::fs::write(&path, &diff.patch)
                .with_context(|| format!("writing {}", path.display()))?;
            written += 1;
        }
    }
    if written > 0 {
        text.push_str(&format!("\npatches: {}/rollout-<N>.patch\n", dir.display()));
    }
    text.push_str(&format!(
        "details: threadsmith show {}  (add --diff N or --transcript N)\n",
        short_id(&report.task.id)
    ));
    out::print(&text)?;
    let has = |o| report.rollouts.iter().any(|r| r.outcome == Some(o));
    Ok(ExitCode::from(if has(Outcome::Succeeded) {
        exit::TESTS_PASS
    } else if has(Outcome::Untested) {
        eprintln!(
            "No rollout was tested: the repository has no test command (none is configured and none was found). Review the patches before using them, or set `test` in .threadsmith.toml."
        );
        exit::UNTESTED
    } else {
        exit::NO_FIX
    }))
}

async fn image_command(config: Config, command: ImageCommand) -> anyhow::Result<ExitCode> {
    let ImageCommand::Build {
        dockerfile,
        tag,
        suite,
        mirror,
        if_missing,
    } = command;
    let tag = tag.unwrap_or_else(|| config.image());
    let docker = Docker::connect().await?;
    if if_missing && docker.image_exists(&tag).await? {
        println!("{tag} is already built");
        return Ok(ExitCode::SUCCESS);
    }
    let say = |line: &str| eprintln!("{line}");
    match dockerfile {
        Some(path) => image::build_dockerfile(&docker, &tag, &path, &say).await?,
        None => {
            let opts = OfflineBuild {
                tag: tag.clone(),
                suite,
                mirror,
                ..OfflineBuild::default()
            };
            image::build_offline(&docker, &opts, &say).await?
        }
    }
    println!("built {tag}");
    Ok(ExitCode::SUCCESS)
}
