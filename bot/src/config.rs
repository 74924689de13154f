//! Configuration: a TOML file, overridden by environment variables and flags (see `cli.rs`).
//! Secrets are [`Secret`]s: they never print.
//!
//! Per repository, settings come from (strongest first) the bot's `[[repos]]` entry, the
//! repository's own `.threadsmith.toml` at the base commit, then the `[sandbox]` defaults.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use threadsmith_runner::{AgentKind, Limits, ModelConfig, RepoSettings, secret::Secret};

mod check;
mod environment;
mod kubernetes;
pub mod prices;
mod ranking;
pub mod repo_file;

pub use environment::{environment_plan, parse_duration};
pub use kubernetes::{Backend, KubernetesSection};
pub use prices::{ModelPrice, TokenLimits};
pub use ranking::RankingSection;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("`{field}` is not a size like `512m` or `4g`: `{value}`")]
    Size { field: &'static str, value: String },
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub database_url: Option<String>,
    /// Mirrors, patches written by `threadsmith run`.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    #[serde(default)]
    pub attempts: Option<u32>,
    #[serde(default)]
    pub model: ModelSection,
    #[serde(default)]
    pub sandbox: SandboxSection,
    #[serde(default)]
    pub repos: Vec<RepoSection>,
    /// The repository used when a request names none and its channel has no default.
    #[serde(default)]
    pub default_repo: Option<String>,
    /// Where `threadsmith serve` is reachable from browsers (diff pages); without it, patches
    /// are attached to threads as files.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Let chat requests name any repository (`repo=`, `/fix repo`), not only `[[repos]]` and
    /// `default_repo`. Off: a chat user could otherwise make the bot clone anything its git
    /// credentials reach.
    #[serde(default)]
    pub allow_unlisted_repos: Option<bool>,
    /// How long a question to the requester ("which repository?") waits for an answer.
    #[serde(default)]
    pub question_timeout_secs: Option<u64>,
    /// Least time between two edits of a status message.
    #[serde(default)]
    pub status_edit_interval_ms: Option<u64>,
    /// Address `serve` listens on for HTTP: diff pages, and Slack's HTTP mode.
    #[serde(default)]
    pub listen: Option<String>,
    #[serde(default)]
    pub slack: SlackSection,
    #[serde(default)]
    pub discord: DiscordSection,
    #[serde(default)]
    pub publish: PublishSection,
    #[serde(default)]
    pub github: GithubSection,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub workers: WorkersSection,
    #[serde(default)]
    pub ranking: RankingSection,
    /// `[prices.<model>]`: what a million input and output tokens cost (see `config/prices.rs`).
    #[serde(default)]
    pub prices: std::collections::BTreeMap<String, ModelPrice>,
}

/// How much runs at once and how much may wait, across every bot process on the database.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Rollouts running at once (a task's rollouts count from its admission to its end).
    /// Default 8. A task that does not fit waits in the queue, and its thread says so.
    pub running_rollouts: Option<u32>,
    /// Rollouts one person's tasks may run at once. Default: only the global limit.
    pub user_running_rollouts: Option<u32>,
    /// Tasks waiting for a slot; a request beyond it is refused with a message. Default 50.
    pub queued_tasks: Option<u32>,
    /// Tasks one person may have waiting. Default 5.
    pub user_queued_tasks: Option<u32>,
    /// The largest repository checkout a task may work on (e.g. "1g"): bigger ones are refused
    /// before anything is copied. It is also capped at three quarters of `workspace_size`.
    /// Default 1g.
    pub repo_size: Option<String>,
    /// Tokens one task may use (its spec and plan calls and all its rollouts). Default: none.
    pub task_tokens: Option<u64>,
    /// Tokens all tasks may use in a day (UTC). Default: none.
    pub daily_tokens: Option<u64>,
    /// Tokens one person's tasks may use in a day (UTC). Default: none.
    pub user_daily_tokens: Option<u64>,
}

/// Bot processes sharing the database (several `serve` on one PostgreSQL database).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkersSection {
    /// How long a process's hold on its work outlives its last heartbeat, in seconds: when a
    /// process dies, another takes over its events and reports its tasks after this. Default 30.
    pub lease_secs: Option<u64>,
    /// How often to look for work queued by another process, in milliseconds. Default 1000.
    pub poll_ms: Option<u64>,
    /// Events (requests, clicks) one process works on at once; the rest wait in the shared
    /// queue, where another process may take them. A task waiting for a rollout slot does not
    /// count (the queue limits bound those). Default 32.
    pub concurrent_events: Option<u32>,
    /// How long handled events and idempotency records are kept, in days; older ones are
    /// deleted once an hour. Must outlast Slack's and Discord's redelivery (minutes). Default 14.
    pub retention_days: Option<u64>,
    /// On SIGTERM (or Ctrl-C), how long `serve` lets the events it is working on finish, in
    /// seconds, after it stops taking new ones; what is still running then is handed over to
    /// another process (its tasks are reported there, once). Default 30.
    pub shutdown_grace_secs: Option<u64>,
}

/// Discord. Enabled when `token` is set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordSection {
    /// The bot's token (Developer Portal → Bot → Reset Token).
    pub token: Option<Secret>,
    /// Send REST calls here instead of discord.com (a rate-limiting proxy; a fake in tests).
    pub api_url: Option<String>,
    /// Who may approve or retry any task, besides its requester (user ids).
    #[serde(default)]
    pub maintainers: Vec<String>,
    /// Roles whose members may approve or retry any task (role ids).
    #[serde(default)]
    pub maintainer_roles: Vec<String>,
    /// Bare phrases that trigger the bot without a mention (needs the message content intent).
    pub trigger_phrases: Option<Vec<String>>,
    /// Channels (ids) where the bare phrases work; none by default.
    #[serde(default)]
    pub phrase_channels: Vec<String>,
    /// Ask the gateway for the privileged message content intent, for bare phrases. Reading
    /// threads needs only the application's own setting (Developer Portal), which the bot reads
    /// at start-up; without it this is ignored with an error (Discord would refuse the
    /// connection).
    #[serde(default)]
    pub message_content: bool,
}

/// What Approve does: push a branch and open a pull request (GitHub), or push only.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishSection {
    /// `pull_request` (GitHub; the default when `[github]` has credentials), `push` (push the
    /// branch and link to it: other git hosts) or `off` (record the approval only).
    pub mode: Option<String>,
    /// Branches are `<prefix><task>-<rollout>`; default `threadsmith/`.
    pub branch_prefix: Option<String>,
    /// Open pull requests as drafts.
    pub draft: Option<bool>,
    pub author_name: Option<String>,
    pub author_email: Option<String>,
    /// Push mode: the branch's web address, `{repo}` and `{branch}` replaced.
    pub branch_url: Option<String>,
    /// The git program (default: `git` on the PATH).
    pub git: Option<String>,
}

/// GitHub: a token, or a GitHub App (installation tokens, refreshed as they expire).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubSection {
    /// A fine-grained or classic token with contents and pull-request write access.
    pub token: Option<Secret>,
    pub app_id: Option<u64>,
    /// The App's private key (PEM), or a file holding it.
    pub private_key: Option<Secret>,
    pub private_key_file: Option<PathBuf>,
    /// The App's installation; looked up per repository when absent.
    pub installation_id: Option<u64>,
    /// The REST API base (GitHub Enterprise: `https://host/api/v3`).
    pub api_url: Option<String>,
}

impl GithubSection {
    pub fn configured(&self) -> bool {
        self.token.is_some() || self.app_id.is_some()
    }
}

/// Slack. Enabled when `bot_token` is set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackSection {
    /// `xoxb-…`
    pub bot_token: Option<Secret>,
    /// `xapp-…`, for Socket Mode.
    pub app_token: Option<Secret>,
    /// For the HTTP Events API mode.
    pub signing_secret: Option<Secret>,
    /// `socket` (default) or `http`.
    pub mode: Option<String>,
    /// Address the HTTP server listens on (HTTP mode, web pages).
    pub listen: Option<String>,
    /// Slack's Web API base (tests point it at a fake).
    pub api_url: Option<String>,
    /// Socket Mode connections held open at once, 1 to 10 (Slack spreads events over them).
    pub socket_connections: Option<u32>,
    /// Who may approve or retry any task, besides its requester (Slack user ids).
    #[serde(default)]
    pub maintainers: Vec<String>,
    /// User groups (`S…` ids) whose members may approve or retry any task.
    #[serde(default)]
    pub maintainer_groups: Vec<String>,
    /// Bare phrases that trigger the bot without a mention.
    pub trigger_phrases: Option<Vec<String>>,
    /// Channels (ids) where the bare phrases work; none by default.
    #[serde(default)]
    pub phrase_channels: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    pub base_url: Option<String>,
    pub model: Option<String>,
    pub api_key: Option<Secret>,
    /// One per rollout, cycled: rollouts differ by temperature and seed.
    pub temperatures: Option<Vec<f32>>,
    pub seed: Option<u64>,
    pub max_retries: Option<u32>,
    /// First back-off delay of a retry; doubles each time.
    pub retry_base_ms: Option<u64>,
    pub request_timeout_secs: Option<u64>,
}

/// Sandbox and agent limits; the defaults of every repository.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SandboxSection {
    pub image: Option<String>,
    pub setup: Option<String>,
    pub setup_network: Option<bool>,
    pub test: Option<String>,
    /// Globs naming the changed files that are tests (default: the conventions, see
    /// `threadsmith_runner::testfiles`).
    pub test_paths: Option<Vec<String>>,
    pub memory: Option<String>,
    pub cpus: Option<f64>,
    pub pids: Option<i64>,
    pub workspace_size: Option<String>,
    pub tmp_size: Option<String>,
    pub rollout_timeout_secs: Option<u64>,
    pub command_timeout_secs: Option<u64>,
    pub max_steps: Option<u32>,
    /// `builtin` (default) or `external`.
    pub agent: Option<String>,
    /// For `agent = "external"`: the command; `{spec_file}` and `{workspace}` are replaced.
    pub external_command: Option<String>,
    pub external_network: Option<bool>,
    /// Where rollouts run (the bot's `[sandbox]` only; see `config/kubernetes.rs`).
    pub backend: Option<String>,
    pub kubernetes: Option<KubernetesSection>,
    /// The files the setup depends on (see `config/environment.rs`).
    pub setup_inputs: Option<Vec<String>>,
    pub environment_ttl: Option<String>,
    /// The bot's `[sandbox]` only.
    pub environment_cache_size: Option<String>,
}

/// A repository the bot knows by name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoSection {
    /// How people refer to it, e.g. `acme/api`.
    pub name: String,
    /// A git URL or a local path.
    pub url: String,
    pub base: Option<String>,
    /// Where approved branches are pushed; default `url`.
    pub push_url: Option<String>,
    /// `owner/name` on GitHub, when `name` is not that and `url` is not a github.com address.
    pub github: Option<String>,
    /// Rollouts this repository's tasks may run at once. Default: only the global limits.
    pub running_rollouts: Option<u32>,
    #[serde(flatten)]
    pub settings: SandboxSection,
}

impl SandboxSection {
    /// `self` where set, else `other`.
    pub fn or(&self, other: &SandboxSection) -> SandboxSection {
        SandboxSection {
            image: self.image.clone().or_else(|| other.image.clone()),
            setup: self.setup.clone().or_else(|| other.setup.clone()),
            setup_network: self.setup_network.or(other.setup_network),
            test: self.test.clone().or_else(|| other.test.clone()),
            test_paths: self.test_paths.clone().or_else(|| other.test_paths.clone()),
            memory: self.memory.clone().or_else(|| other.memory.clone()),
            cpus: self.cpus.or(other.cpus),
            pids: self.pids.or(other.pids),
            workspace_size: self
                .workspace_size
                .clone()
                .or_else(|| other.workspace_size.clone()),
            tmp_size: self.tmp_size.clone().or_else(|| other.tmp_size.clone()),
            rollout_timeout_secs: self.rollout_timeout_secs.or(other.rollout_timeout_secs),
            command_timeout_secs: self.command_timeout_secs.or(other.command_timeout_secs),
            max_steps: self.max_steps.or(other.max_steps),
            agent: self.agent.clone().or_else(|| other.agent.clone()),
            external_command: self
                .external_command
                .clone()
                .or_else(|| other.external_command.clone()),
            external_network: self.external_network.or(other.external_network),
            backend: self.backend.clone().or_else(|| other.backend.clone()),
            kubernetes: self.kubernetes.clone().or_else(|| other.kubernetes.clone()),
            setup_inputs: self
                .setup_inputs
                .clone()
                .or_else(|| other.setup_inputs.clone()),
            environment_ttl: self
                .environment_ttl
                .clone()
                .or_else(|| other.environment_ttl.clone()),
            environment_cache_size: self
                .environment_cache_size
                .clone()
                .or_else(|| other.environment_cache_size.clone()),
        }
    }

    /// Resolves into the runner's settings.
    pub fn resolve(&self, default_image: &str) -> Result<RepoSettings, ConfigError> {
        let d = RepoSettings::default();
        let limits = Limits {
            memory_bytes: size("memory", self.memory.as_deref())?
                .map_or(d.limits.memory_bytes, |b| b as i64),
            cpus: self.cpus.unwrap_or(d.limits.cpus),
            pids: self.pids.unwrap_or(d.limits.pids),
            workspace_bytes: size("workspace_size", self.workspace_size.as_deref())?
                .unwrap_or(d.limits.workspace_bytes),
            tmp_bytes: size("tmp_size", self.tmp_size.as_deref())?.unwrap_or(d.limits.tmp_bytes),
        };
        if limits.cpus <= 0.0 || limits.pids < 16 || limits.memory_bytes < (64 << 20) {
            return Err(ConfigError::Invalid(
                "sandbox limits are too small: cpus must be above 0, pids at least 16, memory at least 64m".into(),
            ));
        }
        let agent = match self.agent.as_deref().unwrap_or("builtin") {
            "builtin" => AgentKind::Builtin {
                max_steps: self.max_steps.unwrap_or(50).max(1),
            },
            "external" => AgentKind::External {
                command: self.external_command.clone().ok_or_else(|| {
                    ConfigError::Invalid("`agent = \"external\"` needs `external_command`".into())
                })?,
                network: self.external_network.unwrap_or(false),
            },
            other => {
                return Err(ConfigError::Invalid(format!(
                    "unknown agent `{other}`: use `builtin` or `external`"
                )));
            }
        };
        Ok(RepoSettings {
            image: self
                .image
                .clone()
                .unwrap_or_else(|| default_image.to_string()),
            setup: self.setup.clone().filter(|s| !s.trim().is_empty()),
            setup_network: self.setup_network.unwrap_or(false),
            test: self.test.clone().filter(|s| !s.trim().is_empty()),
            test_detected_from: None,
            test_paths: self
                .test_paths
                .clone()
                .filter(|globs| globs.iter().any(|g| !g.trim().is_empty())),
            limits,
            rollout_timeout: self
                .rollout_timeout_secs
                .map_or(d.rollout_timeout, Duration::from_secs),
            command_timeout: self
                .command_timeout_secs
                .map_or(d.command_timeout, Duration::from_secs),
            agent,
        })
    }
}

/// Parses `512m`, `4g`, `1024k` or a number of bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.trim_end_matches('b').trim_end_matches('i');
    let (num, mult) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 1u64 << 10),
        'm' => (&t[..t.len() - 1], 1 << 20),
        'g' => (&t[..t.len() - 1], 1 << 30),
        't' => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.trim().parse().ok()?;
    (n > 0.0).then_some((n * mult as f64) as u64)
}

fn size(field: &'static str, value: Option<&str>) -> Result<Option<u64>, ConfigError> {
    value
        .map(|v| {
            parse_size(v).ok_or(ConfigError::Size {
                field,
                value: v.to_string(),
            })
        })
        .transpose()
}

/// The repository's own `.threadsmith.toml`: the same keys as `[sandbox]` (its
/// `instructions`, see [`repo_file::parse`], are left out).
pub fn parse_repo_file(text: &str) -> Result<SandboxSection, ConfigError> {
    repo_file::parse(text).map(|f| f.sandbox)
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| "sqlite://threadsmith.db".into())
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| {
            std::env::var_os("XDG_DATA_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
                .unwrap_or_else(std::env::temp_dir)
                .join("threadsmith")
        })
    }

    pub fn image(&self) -> String {
        self.sandbox
            .image
            .clone()
            .unwrap_or_else(|| threadsmith_runner::image::DEFAULT_IMAGE.into())
    }

    /// The limits on running rollouts that apply to a task on `repo`.
    pub fn rollout_limits(&self, repo: &str) -> crate::store::RolloutLimits {
        crate::store::RolloutLimits {
            global: Some(self.limits.running_rollouts.unwrap_or(8)),
            per_user: self.limits.user_running_rollouts,
            per_repo: self.repo(repo).and_then(|r| r.running_rollouts),
        }
    }

    /// The largest checkout a task may work on, in bytes.
    pub fn repo_size_limit(&self) -> u64 {
        self.limits
            .repo_size
            .as_deref()
            .and_then(parse_size)
            .unwrap_or(1 << 30)
    }

    pub fn queued_tasks_limit(&self) -> u32 {
        self.limits.queued_tasks.unwrap_or(50)
    }

    pub fn user_queued_tasks_limit(&self) -> u32 {
        self.limits.user_queued_tasks.unwrap_or(5)
    }

    pub fn lease(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.workers.lease_secs.unwrap_or(30).max(1))
    }

    pub fn concurrent_events(&self) -> usize {
        self.workers
            .concurrent_events
            .unwrap_or(32)
            .clamp(1, 10_000) as usize
    }

    /// How long handled events and idempotency records are kept (at least a day).
    pub fn retention(&self) -> std::time::Duration {
        let days = self.workers.retention_days.unwrap_or(14).clamp(1, 36_500);
        std::time::Duration::from_secs(days * 24 * 3600)
    }

    /// How long a stopping `serve` waits for the events it is working on (see
    /// [`WorkersSection::shutdown_grace_secs`]).
    pub fn shutdown_grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.workers.shutdown_grace_secs.unwrap_or(30).min(3600))
    }

    pub fn poll_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.workers.poll_ms.unwrap_or(1000).clamp(10, 60_000))
    }

    pub fn attempts(&self) -> u32 {
        self.attempts.unwrap_or(3)
    }

    /// The model endpoint, if one is configured.
    pub fn model_config(&self) -> Option<ModelConfig> {
        let m = &self.model;
        let base_url = m.base_url.clone()?;
        let d = ModelConfig::default();
        Some(ModelConfig {
            base_url,
            model: m.model.clone().unwrap_or(d.model),
            api_key: m.api_key.clone(),
            request_timeout: m
                .request_timeout_secs
                .map_or(d.request_timeout, Duration::from_secs),
            max_retries: m.max_retries.unwrap_or(d.max_retries),
            retry_base: m.retry_base_ms.map_or(d.retry_base, Duration::from_millis),
        })
    }

    pub fn temperatures(&self) -> Vec<f32> {
        self.model
            .temperatures
            .clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| vec![0.2, 0.6, 1.0])
    }

    /// A configured repository by name or URL.
    pub fn repo(&self, name: &str) -> Option<&RepoSection> {
        self.repos
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(name) || r.url == name)
    }
}

#[cfg(test)]
mod tests;
