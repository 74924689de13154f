//! A [`TaskRunner`] that plays a script instead of running rollouts: it writes the rows the
//! pipeline would (the task, its admission, base, rollouts with their results, ranks, its end)
//! and sends the same [`TaskEvent`]s, in the same order, after storing them.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use threadsmith_runner::rank::RankInput;
use threadsmith_runner::{
    Diff, FileChange, Outcome, Phase, RolloutEvent, RolloutResult, SandboxError, TestRun,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::pipeline::{self, ProgressSink, Services, TaskEvent, TaskReport, TaskRequest};
use crate::spec::TaskSpec;
use crate::store::{StoreError, TaskState, TaskTests};

/// What the next task does.
#[derive(Debug, Clone)]
pub enum Script {
    /// Its rollouts end with these outcomes (rollout k gets the k-th, the last repeats).
    Finish(Vec<Outcome>),
    /// Refused like bad input: the task fails with this message for the user.
    Refuse(String),
    /// Its rollouts start and run until the task is cancelled.
    UntilCancelled,
    /// The pipeline panics once the task is stored.
    Panic(String),
}

/// See the module's documentation.
pub struct ScriptedTasks {
    scripts: Mutex<VecDeque<Script>>,
    /// Played when no script is queued.
    default: Script,
    requests: Mutex<Vec<TaskRequest>>,
    /// Ids of the tasks whose rollouts started, in order.
    running: watch::Sender<Vec<String>>,
    /// The test command the pipeline would have found, stored on each task.
    tests: Mutex<Option<TaskTests>>,
    /// Why the sandbox backend cannot be reached (`None`: it can).
    unreachable: Mutex<Option<String>>,
}

impl Default for ScriptedTasks {
    fn default() -> Self {
        Self {
            scripts: Mutex::default(),
            default: Script::Finish(vec![Outcome::Succeeded, Outcome::TestsFailed]),
            requests: Mutex::default(),
            running: watch::Sender::new(Vec::new()),
            tests: Mutex::default(),
            unreachable: Mutex::default(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A rollout's result as the runner would report it.
fn result(index: u32, outcome: Outcome) -> RolloutResult {
    let changed = matches!(
        outcome,
        Outcome::Succeeded | Outcome::Untested | Outcome::TestsFailed
    );
    let test = matches!(outcome, Outcome::Succeeded | Outcome::TestsFailed).then(|| TestRun {
        passed: outcome == Outcome::Succeeded,
        exit_code: Some(i64::from(outcome != Outcome::Succeeded)),
        timed_out: false,
        output: String::new(),
        duration: Duration::from_millis(10),
    });
    let diff = if changed {
        Diff {
            patch: format!(
                "diff --git a/src/lib.rs b/src/lib.rs\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1 +1 @@\n-old\n+new {index}\n"
            ),
            files: vec![FileChange {
                path: "src/lib.rs".into(),
                old_path: None,
                added: Some(1),
                removed: Some(1),
            }],
            test_files: Vec::new(),
        }
    } else {
        Diff::default()
    };
    RolloutResult {
        index,
        outcome,
        detail: format!("scripted: {}", outcome.label()),
        summary: Some(format!("Rollout {index} changed `src/lib.rs`.")),
        confidence: None,
        test,
        diff,
        commands: Vec::new(),
        sampling: None,
        network: None,
        started_at: Utc::now(),
        finished_at: Utc::now(),
        agent_duration: Duration::from_millis(10),
        timings: Default::default(),
        cost: Default::default(),
        environment: None,
    }
}

impl ScriptedTasks {
    /// Queues what the next task does.
    pub fn push(&self, script: Script) {
        lock(&self.scripts).push_back(script);
    }

    /// The test command the next tasks find (stored on each, as the pipeline does).
    pub fn set_tests(&self, tests: TaskTests) {
        *lock(&self.tests) = Some(tests);
    }

    /// From now on the sandbox backend cannot be reached, for `detail` (`None`: it can again).
    pub fn set_unreachable(&self, detail: Option<&str>) {
        *lock(&self.unreachable) = detail.map(str::to_string);
    }

    /// The requests received so far, in order.
    pub fn requests(&self) -> Vec<TaskRequest> {
        lock(&self.requests).clone()
    }

    /// Waits until `n` tasks have started their rollouts (at most `limit`); their ids.
    pub async fn wait_running(&self, n: usize, limit: Duration) -> Option<Vec<String>> {
        let mut rx = self.running.subscribe();
        let seen = tokio::time::timeout(limit, rx.wait_for(|ids| ids.len() >= n)).await;
        match seen {
            Ok(Ok(ids)) => Some(ids.clone()),
            _ => None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn play(
        &self,
        svc: &Services,
        task_id: &str,
        req: &TaskRequest,
        spec: &TaskSpec,
        script: Script,
        sink: &dyn ProgressSink,
        cancel: &CancellationToken,
    ) -> Result<(), StoreError> {
        let store = &svc.store;
        if let Script::Refuse(message) = &script {
            store
                .set_task_state(task_id, TaskState::Failed, Some(message))
                .await?;
            sink.on_event(&TaskEvent::Failed { error: message });
            return Ok(());
        }
        if let Script::Panic(message) = &script {
            panic!("{message}");
        }
        store
            .set_task_state(task_id, TaskState::Queued, None)
            .await?;
        if !store
            .admit_task(task_id, &svc.config.rollout_limits(&req.repo))
            .await?
        {
            let message = "The scripted pipeline does not wait for a slot.";
            store
                .set_task_state(task_id, TaskState::Failed, Some(message))
                .await?;
            sink.on_event(&TaskEvent::Failed { error: message });
            return Ok(());
        }
        sink.on_event(&TaskEvent::Preparing { repo: &req.repo });
        let base = req.base.clone().unwrap_or_else(|| "main".into());
        let commit = "0123456789abcdef0123456789abcdef01234567";
        store.set_task_base(task_id, &base, commit).await?;
        let tests = lock(&self.tests).clone();
        if let Some(tests) = tests {
            store.set_task_tests(task_id, &tests).await?;
        }
        let indexes: Vec<u32> = (1..=req.attempts).collect();
        let sampling: Vec<_> = indexes
            .iter()
            .map(|&k| (k, threadsmith_runner::sampling_for(k, &[], 0)))
            .collect();
        store.create_rollouts(task_id, &sampling).await?;
        store
            .set_task_state(task_id, TaskState::Running, None)
            .await?;
        sink.on_event(&TaskEvent::Started {
            base_ref: &base,
            commit,
            rollouts: &indexes,
            tests: "Tests: `cargo test` (scripted).",
        });
        for &k in &indexes {
            let phase = Phase::Agent { step: 1 };
            store.set_rollout_phase(task_id, k, "agent", 1).await?;
            sink.on_event(&TaskEvent::Rollout(&RolloutEvent::Phase {
                index: k,
                phase,
            }));
        }
        self.running
            .send_modify(|ids| ids.push(task_id.to_string()));
        let outcomes: Vec<Outcome> = match script {
            Script::Finish(outcomes) => indexes
                .iter()
                .map(|&k| {
                    let at = (k as usize - 1).min(outcomes.len().saturating_sub(1));
                    outcomes.get(at).copied().unwrap_or(Outcome::GaveUp)
                })
                .collect(),
            _ => {
                cancel.cancelled().await;
                indexes.iter().map(|_| Outcome::Cancelled).collect()
            }
        };
        let mut results = Vec::new();
        for (&k, outcome) in indexes.iter().zip(outcomes) {
            let result = result(k, outcome);
            store.finish_rollout(task_id, &result).await?;
            sink.on_event(&TaskEvent::Rollout(&RolloutEvent::Finished {
                result: Box::new(result.clone()),
            }));
            results.push(result);
        }
        // Ranked as the pipeline ranks (the judge asked when rollouts tie).
        let inputs: Vec<RankInput> = results.iter().map(RankInput::from).collect();
        let ranked =
            pipeline::ranking::judge_and_rank(svc, task_id, spec, &results, inputs, cancel).await?;
        store.set_ranks(task_id, &ranked).await?;
        let state = if cancel.is_cancelled() {
            TaskState::Cancelled
        } else {
            TaskState::Done
        };
        store.set_task_state(task_id, state, None).await
    }
}

#[async_trait]
impl pipeline::TaskRunner for ScriptedTasks {
    async fn run_task(
        &self,
        svc: &Services,
        req: TaskRequest,
        sink: &dyn ProgressSink,
        cancel: CancellationToken,
    ) -> Result<TaskReport, StoreError> {
        lock(&self.requests).push(req.clone());
        let script = lock(&self.scripts)
            .pop_front()
            .unwrap_or_else(|| self.default.clone());
        let (task_id, spec) = pipeline::create_task(svc, &req, sink).await?;
        let played = self
            .play(svc, &task_id, &req, &spec, script, sink, &cancel)
            .await;
        svc.liveness.admissions.notify_waiters();
        played?;
        pipeline::report(svc.store.as_ref(), &task_id).await
    }

    async fn remove_orphans(&self, _live_workers: &[String]) -> Result<usize, SandboxError> {
        Ok(0)
    }

    async fn backend_reachable(&self) -> Result<(), SandboxError> {
        match lock(&self.unreachable).clone() {
            None => Ok(()),
            Some(detail) => Err(SandboxError::Backend {
                backend: "scripted",
                action: "being reached",
                detail,
            }),
        }
    }
}
