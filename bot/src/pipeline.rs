//! The task pipeline, shared by the CLI and the chat front-ends: store the task, prepare the
//! repository, run the rollouts, record everything they report, rank them.
//!
//! Every state change is written to the store before it is passed to the [`ProgressSink`]
//! (which is what announces it).

use std::sync::Arc;

use threadsmith_runner::{
    AgentKind, Phase, RepoError, RepoSource, RolloutEvent, RolloutResult, Runner, SeedError,
    TaskPlan, sampling_for,
};
use tokio_util::sync::CancellationToken;

use crate::config::repo_file::{self, RepoFile};
use crate::instructions;
use crate::spec::{RepoFacts, TaskSpec};
use crate::store::{NewTask, RolloutRow, Store, StoreError, TaskRow, TaskState};
use crate::task_id::TaskId;

mod admit;
mod budget;
mod detect;
mod environment;
mod model_check;
pub mod ranking;
pub mod reproduce;
mod retire;
mod services;
mod tasks;
mod validate;
use admit::admit;
pub use budget::TaskBudget;
pub use detect::tests_line;
pub use services::{Liveness, Services};
pub use tasks::{DockerTasks, TaskRunner, live_workers, remove_orphans};
pub use validate::validate;

/// A request to run a task.
#[derive(Debug, Clone)]
pub struct TaskRequest {
    pub text: String,
    /// A configured repository's name, a git URL or a local path.
    pub repo: String,
    pub base: Option<String>,
    pub attempts: u32,
    pub origin: String,
    pub requester: Option<String>,
    pub spec: Option<TaskSpec>,
    /// Chosen by the caller (chat front-ends link it to the thread first); else a new one.
    pub task_id: Option<TaskId>,
    /// A follow-up round: where its rollouts start (an earlier rollout's change, on the same
    /// base commit).
    pub round: Option<RoundStart>,
}

/// Where a follow-up round's rollouts start: `patch` applied on `base_commit` (the earlier
/// round's base, whatever its branch holds now).
#[derive(Debug, Clone)]
pub struct RoundStart {
    pub base_commit: String,
    pub patch: String,
}

/// What the pipeline reports as it goes, after storing it.
#[derive(Debug)]
pub enum TaskEvent<'a> {
    Created {
        task_id: &'a str,
        title: &'a str,
    },
    Preparing {
        repo: &'a str,
    },
    Started {
        base_ref: &'a str,
        commit: &'a str,
        rollouts: &'a [u32],
        /// Which test command the rollouts run, and whether it was detected (see
        /// [`tests_line`]).
        tests: &'a str,
    },
    Rollout(&'a RolloutEvent),
    /// Waiting for a slot under the limits on running rollouts.
    Waiting {
        /// Queued tasks ahead of this one.
        ahead: u64,
        running: u64,
        limit: Option<u32>,
    },
    Failed {
        error: &'a str,
    },
}

pub trait ProgressSink: Send + Sync {
    fn on_event(&self, event: &TaskEvent<'_>);
}

/// A sink that ignores everything.
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn on_event(&self, _: &TaskEvent<'_>) {}
}

/// A task as stored at its end.
#[derive(Debug, Clone)]
pub struct TaskReport {
    pub task: TaskRow,
    /// In rank order.
    pub rollouts: Vec<RolloutRow>,
}

/// A failure the user can act on; stored on the task as its error.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("The task text is empty: say what should be fixed.")]
    EmptyText,
    #[error("Asked for {0} attempts; give a number from 1 to {MAX_ATTEMPTS}.")]
    Attempts(u32),
    #[error("{0}")]
    User(String),
    #[error("Cancelled while waiting for a slot.")]
    CancelledWaiting,
}

pub const MAX_ATTEMPTS: u32 = 16;

fn phase_name(phase: &Phase) -> (&'static str, u32) {
    match phase {
        Phase::Starting => ("starting", 0),
        Phase::Setup => ("setup", 0),
        Phase::Agent { step } => ("agent", *step),
        Phase::CollectingDiff => ("collecting_diff", 0),
        Phase::Testing => ("testing", 0),
    }
}

/// Runs a task to its end with the process's [`TaskRunner`]. A problem with the task (empty
/// text, unknown repository, missing image, no model…) ends the task as failed with a message
/// for the user; only a broken store is an `Err`.
pub async fn run_task(
    svc: &Services,
    req: TaskRequest,
    sink: &dyn ProgressSink,
    cancel: CancellationToken,
) -> Result<TaskReport, StoreError> {
    svc.tasks.run_task(svc, req, sink, cancel).await
}

/// Stores the task (its id, given or new, and its spec) and tells the sink: the first step of every
/// [`TaskRunner`], the pipeline's and the fast tests' scripted one alike.
pub(crate) async fn create_task(
    svc: &Services,
    req: &TaskRequest,
    sink: &dyn ProgressSink,
) -> Result<(String, TaskSpec), StoreError> {
    let spec = req
        .spec
        .clone()
        .unwrap_or_else(|| TaskSpec::from_text(&req.text));
    let task_id = req.task_id.clone().unwrap_or_default().into_string();
    svc.ensure_alive().await?;
    svc.store
        .create_task(&NewTask {
            id: task_id.clone(),
            origin: req.origin.clone(),
            requester: req.requester.clone(),
            title: spec.title.clone(),
            spec: req.text.clone(),
            repo: req.repo.clone(),
            base_ref: req.base.clone(),
            attempts: req.attempts,
            // Its model calls are recorded on the task below, not carried into a Retry's spec.
            spec_json: serde_json::to_string(&TaskSpec {
                usage: Default::default(),
                ..spec.clone()
            })
            .ok(),
            worker: Some(svc.worker_id().to_string()),
        })
        .await?;
    let model = svc.config.model_config().map(|m| m.model);
    svc.store
        .add_task_usage(&task_id, model.as_deref(), &spec.usage)
        .await?;
    sink.on_event(&TaskEvent::Created {
        task_id: &task_id,
        title: &spec.title,
    });
    Ok((task_id, spec))
}

/// [`run_task`] in Docker: the pipeline itself.
async fn run_in_docker(
    svc: &Services,
    runner: &Runner,
    req: TaskRequest,
    sink: &dyn ProgressSink,
    cancel: CancellationToken,
) -> Result<TaskReport, StoreError> {
    let (task_id, spec) = create_task(svc, &req, sink).await?;
    let outcome = prepare_and_run(svc, runner, &task_id, &req, &spec, sink, &cancel).await;
    runner.release_task(&task_id).await;
    // Slots may have freed: tasks waiting in this process try again now.
    svc.liveness.admissions.notify_waiters();
    match outcome {
        Ok(()) => {}
        // Handed over on shutdown: the task stays unfinished, for the process that adopts it.
        Err(PipelineFailure::Refused(Refusal::CancelledWaiting)) if svc.retired() => {}
        Err(PipelineFailure::Refused(Refusal::CancelledWaiting)) => {
            svc.store
                .set_task_state(&task_id, TaskState::Cancelled, None)
                .await?;
        }
        Err(PipelineFailure::Store(e)) => return Err(e),
        Err(PipelineFailure::Refused(refusal)) => {
            let message = refusal.to_string();
            svc.store
                .set_task_state(&task_id, TaskState::Failed, Some(&message))
                .await?;
            sink.on_event(&TaskEvent::Failed { error: &message });
        }
    }
    report(svc.store.as_ref(), &task_id).await
}

/// "2.0 GB", "300 MB", "12 KB".
pub fn bytes_words(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GB"), (1 << 20, "MB"), (1 << 10, "KB")];
    for (size, unit) in UNITS {
        if n >= size {
            return format!("{:.1} {unit}", n as f64 / size as f64);
        }
    }
    format!("{n} bytes")
}

/// The stored task and its rollouts.
pub async fn report(store: &dyn Store, task_id: &str) -> Result<TaskReport, StoreError> {
    let task = store
        .task(task_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("task {task_id} vanished")))?;
    let rollouts = store.rollouts(task_id).await?;
    Ok(TaskReport { task, rollouts })
}

enum PipelineFailure {
    Store(StoreError),
    Refused(Refusal),
}

impl From<StoreError> for PipelineFailure {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<Refusal> for PipelineFailure {
    fn from(e: Refusal) -> Self {
        Self::Refused(e)
    }
}

fn user(e: impl std::fmt::Display) -> PipelineFailure {
    PipelineFailure::Refused(Refusal::User(e.to_string()))
}

/// A git call stopped by Cancel ends the task as cancelled; other failures are the user's to see.
fn repo_failure(e: RepoError) -> PipelineFailure {
    match e {
        RepoError::Cancelled { .. } => Refusal::CancelledWaiting.into(),
        e => user(e),
    }
}

async fn prepare_and_run(
    svc: &Services,
    runner: &Runner,
    task_id: &str,
    req: &TaskRequest,
    spec: &TaskSpec,
    sink: &dyn ProgressSink,
    cancel: &CancellationToken,
) -> Result<(), PipelineFailure> {
    if req.text.trim().is_empty() && req.spec.is_none() {
        return Err(Refusal::EmptyText.into());
    }
    if req.attempts == 0 || req.attempts > MAX_ATTEMPTS {
        return Err(Refusal::Attempts(req.attempts).into());
    }
    let budget = TaskBudget::open(
        svc.store.as_ref(),
        svc.config.limits.tokens(),
        req.requester.as_deref(),
        &spec.usage,
    )
    .await?;
    if let Some(Err(stop)) = budget
        .as_ref()
        .map(|b| threadsmith_runner::TokenBudget::check(b.as_ref(), 0))
    {
        return Err(user(format!("Not started: {stop}.")));
    }
    admit(svc, task_id, req, sink, cancel).await?;
    let config = &svc.config;
    sink.on_event(&TaskEvent::Preparing { repo: &req.repo });

    let configured = config.repo(&req.repo);
    let source = RepoSource::parse(configured.map_or(req.repo.as_str(), |r| r.url.as_str()))
        .map_err(user)?;
    let base = req
        .base
        .clone()
        .or_else(|| configured.and_then(|r| r.base.clone()));
    let mut prepared = svc
        .repos
        .prepare_with(&source, base.as_deref(), cancel)
        .await
        .map_err(repo_failure)?;
    if let Some(round) = &req.round {
        // The same base as the round it builds on, even if its branch moved since.
        let pinned = svc
            .repos
            .prepare_with(&source, Some(&round.base_commit), cancel)
            .await
            .map_err(repo_failure)?;
        prepared.base_commit = pinned.base_commit;
    }
    svc.store
        .set_task_base(task_id, &prepared.base_ref, &prepared.base_commit)
        .await?;

    let repo_file = match svc.repos.read_file(&prepared, ".threadsmith.toml").await {
        Some(text) => repo_file::parse(&text).map_err(|e| user(format!("The repository's {e}")))?,
        None => RepoFile::default(),
    };
    let operator = configured.map(|r| r.settings.clone()).unwrap_or_default();
    let section = operator.or(&repo_file.sandbox).or(&config.sandbox);
    let mut settings = section.resolve(&config.image()).map_err(user)?;
    detect::detect_tests(&svc.repos, &prepared, &mut settings).await;
    if let Some(tests) = detect::task_tests(&settings) {
        svc.store.set_task_tests(task_id, &tests).await?;
    }
    // The repository's own file may set sizes too: they must fit its memory as well.
    threadsmith_runner::oom::check_memory_budget(&settings.limits).map_err(|e| {
        user(format!(
            "The sandbox settings for this repository do not fit: {e}"
        ))
    })?;
    let size = svc.repos.tree_size(&prepared).await.map_err(user)?;
    let fits = config
        .repo_size_limit()
        .min(settings.limits.workspace_bytes / 4 * 3);
    if size > fits {
        return Err(user(format!(
            "The repository's files take {} at {}, more than a rollout can work on ({}). Raise `limits.repo_size` and the repository's `workspace_size` if the machine has room, or point the task at a smaller repository.",
            bytes_words(size),
            &prepared.base_commit[..prepared.base_commit.len().min(10)],
            bytes_words(fits)
        )));
    }
    if matches!(settings.agent, AgentKind::Builtin { .. }) {
        let Some(model) = config.model_config() else {
            return Err(user(
                "No model endpoint is configured. Set THREADSMITH_MODEL_BASE_URL (any OpenAI-compatible endpoint), THREADSMITH_MODEL and, if it needs one, THREADSMITH_MODEL_API_KEY.",
            ));
        };
        // Before any container is made.
        tokio::select! {
            checked = model_check::check_reachable(&model, model_check::PROBE_TIMEOUT) => {
                checked.map_err(user)?
            }
            _ = cancel.cancelled() => return Err(Refusal::CancelledWaiting.into()),
        }
    }

    let seed_volume = runner
        .prepare_seed(task_id, &svc.repos, &prepared, &settings.image, cancel)
        .await
        .map_err(|e| match e {
            SeedError::Repo(e) => repo_failure(e),
            e => user(e),
        })?;
    let mut instructions = spec.to_markdown(&RepoFacts {
        name: &source.display_name(),
        base_ref: &prepared.base_ref,
        commit: &prepared.base_commit,
        test: settings.test.as_deref(),
    });
    let spec_text = spec.to_plain_markdown();
    let repo_notes = repo_file.instructions.as_deref();
    let guidance =
        instructions::load::for_agent(&svc.repos, &prepared, &spec_text, repo_notes).await;
    svc.store
        .set_task_instructions(task_id, &guidance.files)
        .await?;
    instructions.push_str(&guidance.markdown);
    let temperatures = config.temperatures();
    let base_seed = config.model.seed.unwrap_or(0);
    let rollouts: Vec<_> = (1..=req.attempts)
        .map(|k| (k, sampling_for(k, &temperatures, base_seed)))
        .collect();
    svc.store.create_rollouts(task_id, &rollouts).await?;
    svc.store
        .set_task_state(task_id, TaskState::Running, None)
        .await?;
    let indexes: Vec<u32> = rollouts.iter().map(|(k, _)| *k).collect();
    let tests = tests_line(&settings);
    sink.on_event(&TaskEvent::Started {
        base_ref: &prepared.base_ref,
        commit: &prepared.base_commit,
        rollouts: &indexes,
        tests: &tests,
    });

    let environment = environment::plan(svc, &section, &settings, &prepared).await?;
    let plan = Arc::new(TaskPlan {
        task_id: task_id.to_string(),
        instructions,
        settings,
        seed_volume,
        budget: budget.map(|b| b as Arc<dyn threadsmith_runner::TokenBudget>),
        start_patch: req.round.as_ref().map(|r| r.patch.clone()),
        environment,
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let run = tokio::spawn({
        let cancel = cancel.clone();
        let runner = runner.clone();
        let plan = plan.clone();
        async move { runner.run_rollouts(plan, rollouts, tx, cancel).await }
    });
    let mut stored = std::collections::HashSet::new();
    // A store that fails mid-run stops the rollouts cleanly: they are cancelled and awaited
    // (never left running detached), and the error is returned once they have ended.
    let mut broken: Option<StoreError> = None;
    while let Some(event) = rx.recv().await {
        if broken.is_some() {
            continue;
        }
        let written = match &event {
            RolloutEvent::Phase { index, phase } => {
                let (name, step) = phase_name(phase);
                svc.store
                    .set_rollout_phase(task_id, *index, name, step)
                    .await
            }
            RolloutEvent::Command { index, record } => {
                svc.store.add_command(task_id, *index, record).await
            }
            RolloutEvent::Finished { result } => {
                let done = svc.store.finish_rollout(task_id, result).await;
                if done.is_ok() {
                    stored.insert(result.index);
                }
                done
            }
        };
        match written {
            Ok(()) => sink.on_event(&TaskEvent::Rollout(&event)),
            Err(e) => {
                tracing::error!(error = %e, task = task_id, "the store failed; stopping the rollouts");
                cancel.cancel();
                broken = Some(e);
            }
        }
    }
    let results: Vec<RolloutResult> = match run.await {
        Ok(results) => results,
        Err(e) => return Err(user(format!("The rollouts crashed: {e}"))),
    };
    if let Some(e) = broken {
        return Err(e.into());
    }
    // Results the event stream did not carry (a crashed rollout) are stored too.
    for r in results.iter().filter(|r| !stored.contains(&r.index)) {
        svc.store.finish_rollout(task_id, r).await?;
    }
    let matrix = reproduce::cross_check(svc, runner, &plan, &results, cancel).await?;
    let inputs = reproduce::rank_inputs(&results, Some(&matrix));
    let ranked = ranking::judge_and_rank(svc, task_id, spec, &results, inputs, cancel).await?;
    svc.store.set_ranks(task_id, &ranked).await?;
    let state = if cancel.is_cancelled() && svc.retired() {
        // Handed over on shutdown: left unfinished, for the process that adopts it.
        return Ok(());
    } else if cancel.is_cancelled() {
        TaskState::Cancelled
    } else {
        TaskState::Done
    };
    svc.store.set_task_state(task_id, state, None).await?;
    Ok(())
}
