//! One rollout: a sandbox from the task's seed, an optional setup phase, the agent, the diff
//! against the base, and the repository's tests — ending in a [`RolloutResult`] whatever happens.

use std::time::Duration;

use chrono::Utc;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::agent::chat::ChatModel;
use crate::agent::model::Sampling;
use crate::agent::{self, AgentEnd};
use crate::context::RolloutCtx;
use crate::removals::Removals;
use crate::sandbox::{ExecRequest, SandboxBackend, SandboxError, SandboxSpec};
use crate::types::{
    AgentKind, CommandKind, Diff, Outcome, Phase, PhaseTimings, RolloutEvent, RolloutResult,
    TaskPlan, TestRun,
};
use crate::usage::RolloutCost;
use crate::workspace::{self, CopyMark};

mod diff;
mod environment;
#[cfg(test)]
mod round_tests;
#[cfg(test)]
mod tests;

use diff::{DiffError, collect_diff};
use environment::EnvStart;

/// The largest diff a rollout may produce.
pub const MAX_DIFF_BYTES: usize = 20 << 20;

/// The most files a rollout's diff may touch: beyond it, no one can review the change.
pub const MAX_DIFF_FILES: usize = 5_000;

/// What happened before the sandbox could be used, or while it was used.
struct Partial {
    outcome: Outcome,
    detail: String,
    summary: Option<String>,
    confidence: Option<f64>,
    test: Option<TestRun>,
    diff: Diff,
    network: Option<String>,
    agent_duration: Duration,
    timings: PhaseTimings,
    cost: RolloutCost,
}

impl Partial {
    fn failed(outcome: Outcome, detail: impl Into<String>) -> Self {
        Self {
            outcome,
            detail: detail.into(),
            summary: None,
            confidence: None,
            test: None,
            diff: Diff::default(),
            network: None,
            agent_duration: Duration::ZERO,
            timings: PhaseTimings::default(),
            cost: RolloutCost::default(),
        }
    }
}

/// The longest a rollout's sandbox may live: the agent's time, and a command's limit for each
/// step that may run past it (the copy, the setup, the agent's last command, the diff, the
/// tests), and a minute to spare.
fn sandbox_lifetime(settings: &crate::types::RepoSettings) -> Duration {
    settings.rollout_timeout + settings.command_timeout * 5 + Duration::from_secs(60)
}

/// Runs one rollout to its end. Never fails: every problem becomes the result's outcome.
///
/// The result is known — and sent as [`RolloutEvent::Finished`] — before the sandbox is gone:
/// its removal is handed to `removals`, which the task's end awaits (see [`Removals`]); the
/// result's `timings.removal` stays zero.
#[expect(
    clippy::too_many_arguments,
    reason = "the runner's parts, one rollout's identity and its channels: no natural group"
)]
pub async fn run_rollout(
    backend: &dyn SandboxBackend,
    model: Option<&dyn ChatModel>,
    plan: &TaskPlan,
    index: u32,
    sampling: Sampling,
    events: &UnboundedSender<RolloutEvent>,
    cancel: &CancellationToken,
    removals: &Removals,
) -> RolloutResult {
    let started_at = Utc::now();
    let send_phase = |phase| {
        let _ = events.send(RolloutEvent::Phase { index, phase });
    };
    send_phase(Phase::Starting);
    let settings = &plan.settings;
    let external_network = matches!(settings.agent, AgentKind::External { network: true, .. });
    let mut env = environment::start(backend, plan, cancel).await;
    let mut spec = SandboxSpec {
        image: env.image.clone(),
        limits: settings.limits.clone(),
        task_id: plan.task_id.clone(),
        rollout: index,
        seed_volume: Some(plan.seed_volume.clone()),
        start_with_network: (settings.setup.is_some()
            && settings.setup_network
            && !env.from_snapshot)
            || external_network,
        lifetime: sandbox_lifetime(settings),
    };
    let clock = Instant::now();
    let mut created = backend.create_sandbox(&spec).await;
    if env.from_snapshot && matches!(created, Err(SandboxError::ImageMissing(_))) {
        // Pruned between the look-up and now: the setup runs after all.
        env = EnvStart::plain(settings);
        spec.image = env.image.clone();
        spec.start_with_network =
            (settings.setup.is_some() && settings.setup_network) || external_network;
        created = backend.create_sandbox(&spec).await;
    }
    crate::metrics::sandbox_start(backend.name(), clock.elapsed(), created.is_ok());
    let (partial, commands) = match created {
        Err(e) => (
            Partial::failed(
                Outcome::Errored,
                format!("could not start the sandbox: {e}"),
            ),
            Vec::new(),
        ),
        Ok(sandbox) => {
            let sandbox_time = clock.elapsed();
            let mut ctx = RolloutCtx {
                sandbox: sandbox.as_ref(),
                index,
                events,
                cancel,
                command_timeout: settings.command_timeout,
                commands: Vec::new(),
                budget: plan.budget.as_deref(),
                usage: Default::default(),
                model_time: Duration::ZERO,
            };
            let mut partial = in_sandbox(&mut ctx, model, plan, sampling, backend, &mut env).await;
            let commands = std::mem::take(&mut ctx.commands);
            let (usage, model_time) = (ctx.usage, ctx.model_time);
            drop(ctx);
            removals.start(&plan.task_id, sandbox);
            partial.timings.sandbox = sandbox_time;
            let t = &partial.timings;
            partial.cost = RolloutCost {
                model: usage,
                model_time,
                sandbox_time: t.sandbox
                    + t.copy
                    + t.diff
                    + commands.iter().map(|c| c.duration).sum::<Duration>(),
            };
            (partial, commands)
        }
    };
    env.release(backend).await;
    let result = RolloutResult {
        index,
        outcome: partial.outcome,
        detail: partial.detail,
        summary: partial.summary,
        confidence: partial.confidence,
        test: partial.test,
        diff: partial.diff,
        commands,
        sampling: matches!(settings.agent, AgentKind::Builtin { .. }).then_some(sampling),
        network: partial.network,
        started_at,
        finished_at: Utc::now(),
        agent_duration: partial.agent_duration,
        timings: partial.timings,
        cost: partial.cost,
        environment: env.used,
    };
    let _ = events.send(RolloutEvent::Finished {
        result: Box::new(result.clone()),
    });
    result
}

async fn in_sandbox(
    ctx: &mut RolloutCtx<'_>,
    model: Option<&dyn ChatModel>,
    plan: &TaskPlan,
    sampling: Sampling,
    backend: &dyn SandboxBackend,
    env: &mut EnvStart,
) -> Partial {
    let settings = &plan.settings;
    let mut network = None;
    let mut timings = PhaseTimings::default();

    // The working copy: the seed's checkout, extracted into the sandbox's own workspace.
    let clock = Instant::now();
    let script = if env.from_snapshot {
        workspace::copy_script_restoring()
    } else {
        workspace::copy_script()
    };
    let mut copy = ExecRequest::shell(script, settings.command_timeout);
    copy.reap = false;
    copy.keep_stdout = Some(256);
    let mark = match ctx.sandbox.exec(copy, ctx.cancel).await {
        Ok(o) if o.success() => CopyMark::parse(&String::from_utf8_lossy(
            o.stdout.as_deref().unwrap_or_default(),
        )),
        Ok(o) => {
            return Partial::failed(
                Outcome::Errored,
                format!(
                    "could not put the repository in the sandbox: {}",
                    o.output.to_text().trim()
                ),
            );
        }
        Err(e) => return sandbox_failure(e),
    };
    if let Err(e) = ctx.sandbox.enforce_cpu_limit().await {
        return sandbox_failure(e);
    }
    timings.copy = clock.elapsed();

    // A follow-up round starts from the earlier rollout's change: applied after the copy's
    // mark, it is part of what the diff step finds changed, so the round's diff is the whole
    // change against the base.
    if let Some(patch) = plan.start_patch.as_deref().filter(|p| !p.trim().is_empty()) {
        let mut req =
            ExecRequest::shell("git apply --whitespace=nowarn -", settings.command_timeout);
        req.stdin = Some(patch.as_bytes().to_vec());
        let display = format!(
            "apply the earlier round's change ({} lines)",
            patch.lines().count()
        );
        match ctx.run(CommandKind::ApplyPatch, display, req).await {
            Ok(o) if o.success() => {}
            Ok(o) => {
                return Partial::failed(
                    Outcome::Errored,
                    format!(
                        "the earlier round's change did not apply to the working copy: {}",
                        o.output.to_text().trim()
                    ),
                );
            }
            Err(e) => return sandbox_failure(e),
        }
    }

    if let Some(setup) = settings.setup.as_ref().filter(|_| !env.from_snapshot) {
        ctx.phase(Phase::Setup);
        let req = ExecRequest::shell(setup.clone(), settings.command_timeout);
        match ctx.run(CommandKind::Setup, setup.clone(), req).await {
            Ok(o) if o.success() => {}
            Ok(o) => {
                return Partial::failed(
                    Outcome::Errored,
                    format!(
                        "the setup command failed ({})",
                        exit_words(o.exit_code, o.timed_out)
                    ),
                );
            }
            Err(e) => return sandbox_failure(e),
        }
        if settings.setup_network {
            network = Some("the setup command had network access (opted in)".to_string());
            if !matches!(settings.agent, AgentKind::External { network: true, .. })
                && let Err(e) = ctx.sandbox.cut_network().await
            {
                return sandbox_failure(e);
            }
        }
        env.save(backend, plan, ctx.sandbox, ctx.cancel).await;
    }

    let agent_started = Instant::now();
    let deadline = agent_started + settings.rollout_timeout;
    ctx.phase(Phase::Agent { step: 0 });
    let end = match &settings.agent {
        AgentKind::Builtin { max_steps } => match model {
            Some(model) => {
                agent::run_builtin(
                    ctx,
                    model,
                    &plan.instructions,
                    sampling,
                    *max_steps,
                    deadline,
                )
                .await
            }
            None => AgentEnd::Errored {
                reason: "no model endpoint is configured (set THREADSMITH_MODEL_BASE_URL)".into(),
            },
        },
        AgentKind::External {
            command,
            network: net,
        } => {
            if *net {
                network = Some(match network {
                    Some(n) => format!("{n}; the external agent had network access (opted in)"),
                    None => "the external agent had network access (opted in)".to_string(),
                });
            }
            let end = agent::run_external(ctx, command, &plan.instructions, deadline).await;
            if *net && let Err(e) = ctx.sandbox.cut_network().await {
                return sandbox_failure(e);
            }
            end
        }
    };
    let agent_duration = agent_started.elapsed();
    timings.agent = agent_duration;
    if end == AgentEnd::Cancelled {
        return Partial::failed(Outcome::Cancelled, "the task was cancelled");
    }

    ctx.phase(Phase::CollectingDiff);
    let clock = Instant::now();
    // A sandbox whose memory is full cannot run git: say so at once rather than thrash.
    let collected = crate::oom::guard(ctx.sandbox, collect_diff(ctx, mark))
        .await
        .unwrap_or_else(|why| Err(DiffError::Failed(why)));
    let diff = match collected {
        Ok(mut d) => {
            d.test_files = crate::testfiles::test_files(&d.files, settings.test_paths.as_deref());
            d
        }
        Err(DiffError::Cancelled) => {
            return Partial::failed(Outcome::Cancelled, "the task was cancelled");
        }
        Err(DiffError::Failed(why)) => {
            let mut p = Partial::failed(Outcome::Errored, why);
            p.agent_duration = agent_duration;
            p.network = network;
            p.timings = timings;
            if let AgentEnd::Finished {
                summary,
                confidence,
            } = end
            {
                p.summary = Some(summary);
                p.confidence = confidence;
            }
            return p;
        }
    };
    timings.diff = clock.elapsed();

    let mut partial = Partial {
        outcome: Outcome::Errored,
        detail: String::new(),
        summary: None,
        confidence: None,
        test: None,
        diff,
        network,
        agent_duration,
        timings,
        cost: RolloutCost::default(),
    };
    match end {
        AgentEnd::Finished {
            summary,
            confidence,
        } => {
            partial.summary = Some(summary);
            partial.confidence = confidence;
            if partial.diff.is_empty() {
                partial.outcome = Outcome::GaveUp;
                partial.detail = "the agent finished without changing any file".into();
            } else if let Some(test) = &settings.test {
                ctx.phase(Phase::Testing);
                let req = ExecRequest::shell(test.clone(), settings.command_timeout);
                let clock = Instant::now();
                let ran = ctx.run(CommandKind::Test, test.clone(), req).await;
                partial.timings.tests = clock.elapsed();
                match ran {
                    Ok(o) => {
                        let run = TestRun {
                            passed: o.success(),
                            exit_code: o.exit_code,
                            timed_out: o.timed_out,
                            output: o.output.to_text(),
                            duration: o.duration,
                        };
                        (partial.outcome, partial.detail) = if run.passed {
                            (Outcome::Succeeded, "the tests pass".to_string())
                        } else {
                            (
                                Outcome::TestsFailed,
                                format!(
                                    "the tests failed ({})",
                                    exit_words(o.exit_code, o.timed_out)
                                ),
                            )
                        };
                        if settings.test_detected_from.is_some()
                            && let Some(words) = crate::testdetect::test_words(settings)
                        {
                            partial.detail = format!("{}: {words}", partial.detail);
                        }
                        partial.test = Some(run);
                    }
                    Err(SandboxError::Cancelled) => {
                        partial.outcome = Outcome::Cancelled;
                        partial.detail = "the task was cancelled".into();
                    }
                    Err(e) => {
                        partial.outcome = Outcome::Errored;
                        partial.detail = format!("could not run the tests: {e}");
                    }
                }
            } else {
                partial.outcome = Outcome::Untested;
                partial.detail = crate::testdetect::UNTESTED.into();
            }
        }
        AgentEnd::GaveUp { reason } => {
            partial.outcome = Outcome::GaveUp;
            partial.detail = reason;
        }
        AgentEnd::TimedOut { reason } => {
            partial.outcome = Outcome::TimedOut;
            partial.detail = reason;
        }
        AgentEnd::LimitReached { reason } => {
            partial.outcome = Outcome::LimitReached;
            partial.detail = reason;
        }
        AgentEnd::Errored { reason } => {
            partial.outcome = Outcome::Errored;
            partial.detail = reason;
        }
        AgentEnd::Cancelled => {
            partial.outcome = Outcome::Cancelled;
            partial.detail = "the task was cancelled".into();
        }
    }
    partial
}

fn sandbox_failure(e: SandboxError) -> Partial {
    match e {
        SandboxError::Cancelled => Partial::failed(Outcome::Cancelled, "the task was cancelled"),
        e => Partial::failed(Outcome::Errored, e.to_string()),
    }
}

fn exit_words(code: Option<i64>, timed_out: bool) -> String {
    match (code, timed_out) {
        (_, true) => "timed out".into(),
        (Some(137), false) => "killed, exit code 137: out of memory?".into(),
        (Some(c), false) => format!("exit code {c}"),
        (None, false) => "killed".into(),
    }
}
