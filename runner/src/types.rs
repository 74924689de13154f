//! The runner's vocabulary: what a rollout is asked to do, what it reports while it runs, and
//! what it ends with.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::sandbox::Limits;

/// How a rollout ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The agent finished, changed files, and the tests passed.
    Succeeded,
    /// The agent finished and changed files, but the repository has no test command (none is
    /// configured and none was detected): nothing says whether the change works.
    Untested,
    /// The agent finished, but the test command failed.
    TestsFailed,
    /// The agent gave up, or finished without changing anything.
    GaveUp,
    /// A time or step limit stopped the agent.
    TimedOut,
    /// A token limit (the task's, or the day's) stopped the agent before a model request.
    LimitReached,
    /// Something broke: the model endpoint, Docker, the setup command, the diff.
    Errored,
    /// The task was cancelled.
    Cancelled,
}

impl Outcome {
    pub const ALL: [Outcome; 8] = [
        Outcome::Succeeded,
        Outcome::Untested,
        Outcome::TestsFailed,
        Outcome::GaveUp,
        Outcome::TimedOut,
        Outcome::LimitReached,
        Outcome::Errored,
        Outcome::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Untested => "untested",
            Outcome::TestsFailed => "tests_failed",
            Outcome::GaveUp => "gave_up",
            Outcome::TimedOut => "timed_out",
            Outcome::LimitReached => "limit_reached",
            Outcome::Errored => "errored",
            Outcome::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// Words for people.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Untested => "untested",
            Outcome::TestsFailed => "tests failed",
            Outcome::GaveUp => "gave up",
            Outcome::TimedOut => "timed out",
            Outcome::LimitReached => "stopped by the token limit",
            Outcome::Errored => "errored",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// What kind of step a recorded command was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    Setup,
    Shell,
    ReadFile,
    WriteFile,
    ApplyPatch,
    External,
    Test,
}

impl CommandKind {
    pub const ALL: [CommandKind; 7] = [
        CommandKind::Setup,
        CommandKind::Shell,
        CommandKind::ReadFile,
        CommandKind::WriteFile,
        CommandKind::ApplyPatch,
        CommandKind::External,
        CommandKind::Test,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CommandKind::Setup => "setup",
            CommandKind::Shell => "shell",
            CommandKind::ReadFile => "read_file",
            CommandKind::WriteFile => "write_file",
            CommandKind::ApplyPatch => "apply_patch",
            CommandKind::External => "external",
            CommandKind::Test => "test",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One command a rollout ran: a citation.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandRecord {
    /// Order within the rollout, from 1.
    pub seq: u32,
    pub kind: CommandKind,
    /// What was run, as a person would read it.
    pub command: String,
    pub exit_code: Option<i64>,
    pub timed_out: bool,
    pub duration: Duration,
    /// Head and tail of the output, with a marker where bytes were dropped.
    pub output: String,
    pub output_bytes: u64,
    pub dropped_bytes: u64,
    pub started_at: DateTime<Utc>,
}

/// Which agent a repository uses.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentKind {
    /// The built-in loop against the configured OpenAI-compatible endpoint.
    Builtin { max_steps: u32 },
    /// An agent CLI inside the container. `{spec_file}` and `{workspace}` are replaced.
    External { command: String, network: bool },
}

/// Everything a rollout needs to know about its repository.
#[derive(Debug, Clone, PartialEq)]
pub struct RepoSettings {
    pub image: String,
    pub setup: Option<String>,
    /// The setup phase may use the network (opt-in; the result says so).
    pub setup_network: bool,
    pub test: Option<String>,
    /// Set when `test` was not configured but found from the repository's files (what it was
    /// found from, see [`crate::testdetect`]).
    pub test_detected_from: Option<String>,
    /// Glob patterns telling which changed files are tests (`sandbox.test_paths`); `None`: the
    /// usual conventions (see [`crate::testfiles`]).
    pub test_paths: Option<Vec<String>>,
    pub limits: Limits,
    pub rollout_timeout: Duration,
    pub command_timeout: Duration,
    pub agent: AgentKind,
}

impl Default for RepoSettings {
    fn default() -> Self {
        Self {
            image: crate::image::DEFAULT_IMAGE.into(),
            setup: None,
            setup_network: false,
            test: None,
            test_detected_from: None,
            test_paths: None,
            limits: Limits::default(),
            rollout_timeout: Duration::from_secs(30 * 60),
            command_timeout: Duration::from_secs(10 * 60),
            agent: AgentKind::Builtin { max_steps: 50 },
        }
    }
}

/// What a task's rollouts share.
#[derive(Debug, Clone)]
pub struct TaskPlan {
    pub task_id: String,
    /// The task spec, as Markdown, for the agent.
    pub instructions: String,
    pub settings: RepoSettings,
    /// The seed volume made by [`crate::Runner::prepare_seed`].
    pub seed_volume: String,
    /// The token limits the rollouts share (`None`: none).
    pub budget: Option<std::sync::Arc<dyn crate::usage::TokenBudget>>,
    /// A follow-up round's starting point: an earlier rollout's change (a binary `git diff`
    /// against the same base), applied to the working copy after the copy and before setup, so
    /// that the round's diff is the whole change against the base.
    pub start_patch: Option<String>,
    /// How the rollouts may start from an environment snapshot (none: the setup always runs).
    pub environment: Option<crate::environment::EnvironmentPlan>,
}

/// Where a rollout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Starting,
    Setup,
    Agent { step: u32 },
    CollectingDiff,
    Testing,
}

/// Reported while rollouts run.
#[derive(Debug, Clone)]
pub enum RolloutEvent {
    Phase {
        index: u32,
        phase: Phase,
    },
    Command {
        index: u32,
        record: CommandRecord,
    },
    /// The rollout's end, sent once, before [`crate::Runner::run_rollouts`] returns.
    Finished {
        result: Box<RolloutResult>,
    },
}

/// The test command's result.
#[derive(Debug, Clone, PartialEq)]
pub struct TestRun {
    pub passed: bool,
    pub exit_code: Option<i64>,
    pub timed_out: bool,
    pub output: String,
    pub duration: Duration,
}

/// One changed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// The path after the change.
    pub path: String,
    /// The path before, for a rename (git's rename detection).
    pub old_path: Option<String>,
    /// `None` for binary files.
    pub added: Option<u64>,
    pub removed: Option<u64>,
}

/// A rollout's change against the base commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// `git diff --binary` output.
    pub patch: String,
    pub files: Vec<FileChange>,
    /// The paths of `files` that are tests (see [`crate::testfiles`]): the rollout's
    /// reproduction test, which the cross-checks run against the base and the other changes.
    pub test_files: Vec<String>,
}

impl Diff {
    pub fn added(&self) -> u64 {
        self.files.iter().filter_map(|f| f.added).sum()
    }

    pub fn removed(&self) -> u64 {
        self.files.iter().filter_map(|f| f.removed).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.patch.trim().is_empty()
    }

    /// `3 files changed, 10 insertions(+), 2 deletions(-)`, as git says it.
    pub fn stat_line(&self) -> String {
        format!(
            "{} file{} changed, +{} −{}",
            self.files.len(),
            if self.files.len() == 1 { "" } else { "s" },
            self.added(),
            self.removed()
        )
    }
}

/// How a rollout ended, with its evidence.
#[derive(Debug, Clone)]
pub struct RolloutResult {
    pub index: u32,
    pub outcome: Outcome,
    /// Why, in a sentence for people.
    pub detail: String,
    pub summary: Option<String>,
    pub confidence: Option<f64>,
    pub test: Option<TestRun>,
    pub diff: Diff,
    pub commands: Vec<CommandRecord>,
    pub sampling: Option<crate::agent::model::Sampling>,
    /// The sandbox had network at some point (opted in); says when.
    pub network: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub agent_duration: Duration,
    /// Where the rollout's time went.
    pub timings: PhaseTimings,
    /// The model's tokens and calls, and the time spent in the model and in the sandbox.
    pub cost: crate::usage::RolloutCost,
    /// Whether it started from an environment snapshot, or saved one, and which.
    pub environment: Option<crate::environment::EnvironmentUse>,
}

/// Where a rollout's wall time went, phase by phase (zero for a phase it did not reach).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhaseTimings {
    /// The container and its workspace created and started.
    pub sandbox: Duration,
    /// The working copy put in place from the seed.
    pub copy: Duration,
    /// The agent, from its first step to its end.
    pub agent: Duration,
    /// The change read back against the seed.
    pub diff: Duration,
    /// The repository's test command.
    pub tests: Duration,
    /// The container and its workspace removed. Zero in a [`RolloutResult`]: the sandbox is
    /// removed after its result is known ([`crate::Runner::settle_removals`] says how long it took).
    pub removal: Duration,
}
