//! One rollout: a sandbox from the task's seed, an optional setup phase, the agent, the diff
//! against the base, and the repository's tests — ending in a [`RolloutResult`] whatever happens.

use std::time::Duration;

use chrono::Utc;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::agent::model::{ModelClient, Sampling};
use crate::agent::{self, AgentEnd};
use crate::output::OutputCap;
use crate::sandbox::{Docker, ExecOutcome, ExecRequest, Sandbox, SandboxError, SandboxSpec};
use crate::types::{
    AgentKind, CommandKind, CommandRecord, Diff, FileChange, Outcome, Phase, PhaseTimings,
    RolloutEvent, RolloutResult, TaskPlan, TestRun,
};
use crate::workspace::{self, CopyMark};

/// The largest diff a rollout may produce.
pub const MAX_DIFF_BYTES: usize = 20 << 20;

/// The most files a rollout's diff may touch: beyond it, no one can review the change.
pub const MAX_DIFF_FILES: usize = 5_000;

/// The state an agent works with: its sandbox, and the record of what it ran.
pub struct RolloutCtx<'a> {
    pub sandbox: &'a Sandbox,
    pub index: u32,
    pub events: &'a UnboundedSender<RolloutEvent>,
    pub cancel: &'a CancellationToken,
    pub command_timeout: Duration,
    pub commands: Vec<CommandRecord>,
}

impl RolloutCtx<'_> {
    pub fn phase(&self, phase: Phase) {
        let _ = self.events.send(RolloutEvent::Phase {
            index: self.index,
            phase,
        });
    }

    /// Runs a command in the sandbox and records it as a citation.
    pub async fn run(
        &mut self,
        kind: CommandKind,
        display: String,
        req: ExecRequest,
    ) -> Result<ExecOutcome, SandboxError> {
        let started_at = Utc::now();
        let out = self.sandbox.exec(req, self.cancel).await?;
        let record = CommandRecord {
            seq: self.commands.len() as u32 + 1,
            kind,
            command: display,
            exit_code: out.exit_code,
            timed_out: out.timed_out,
            duration: out.duration,
            output: out.output.to_text(),
            output_bytes: out.output.total_bytes,
            dropped_bytes: out.output.dropped_bytes(),
            started_at,
        };
        self.commands.push(record.clone());
        let _ = self.events.send(RolloutEvent::Command {
            index: self.index,
            record,
        });
        Ok(out)
    }
}

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
        }
    }
}

/// Runs one rollout to its end. Never fails: every problem becomes the result's outcome.
pub async fn run_rollout(
    docker: &Docker,
    model: Option<&ModelClient>,
    plan: &TaskPlan,
    index: u32,
    sampling: Sampling,
    events: &UnboundedSender<RolloutEvent>,
    cancel: &CancellationToken,
) -> RolloutResult {
    let started_at = Utc::now();
    let send_phase = |phase| {
        let _ = events.send(RolloutEvent::Phase { index, phase });
    };
    send_phase(Phase::Starting);
    let settings = &plan.settings;
    let external_network = matches!(settings.agent, AgentKind::External { network: true, .. });
    let spec = SandboxSpec {
        image: settings.image.clone(),
        limits: settings.limits.clone(),
        task_id: plan.task_id.clone(),
        rollout: index,
        seed_volume: Some(plan.seed_volume.clone()),
        start_with_network: (settings.setup.is_some() && settings.setup_network)
            || external_network,
    };
    let clock = Instant::now();
    let (partial, commands) = match docker.create_sandbox(&spec).await {
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
                sandbox: &sandbox,
                index,
                events,
                cancel,
                command_timeout: settings.command_timeout,
                commands: Vec::new(),
            };
            let mut partial = in_sandbox(&mut ctx, model, plan, sampling).await;
            let commands = std::mem::take(&mut ctx.commands);
            let removal = Instant::now();
            sandbox.remove().await;
            partial.timings.sandbox = sandbox_time;
            partial.timings.removal = removal.elapsed();
            (partial, commands)
        }
    };
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
    };
    let _ = events.send(RolloutEvent::Finished {
        result: Box::new(result.clone()),
    });
    result
}

async fn in_sandbox(
    ctx: &mut RolloutCtx<'_>,
    model: Option<&ModelClient>,
    plan: &TaskPlan,
    sampling: Sampling,
) -> Partial {
    let settings = &plan.settings;
    let mut network = None;
    let mut timings = PhaseTimings::default();

    // The working copy: the seed's checkout, extracted into the sandbox's own workspace.
    let clock = Instant::now();
    let mut copy = ExecRequest::shell(workspace::copy_script(), settings.command_timeout);
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
    timings.copy = clock.elapsed();

    if let Some(setup) = &settings.setup {
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
        Ok(d) => d,
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

enum DiffError {
    Cancelled,
    Failed(String),
}

/// The change against the base, taken with the seed's read-only git directory so that nothing
/// the agent did to `/workspace/.git` matters (see [`workspace::diff_script`]).
async fn collect_diff(ctx: &RolloutCtx<'_>, mark: Option<CopyMark>) -> Result<Diff, DiffError> {
    let script = workspace::diff_script(mark, MAX_DIFF_BYTES);
    let mut req = ExecRequest::shell(script, ctx.command_timeout);
    req.keep_stdout = Some(MAX_DIFF_BYTES);
    req.reap = false;
    req.cap = OutputCap {
        head_bytes: 4096,
        tail_bytes: 4096,
    };
    let out = match ctx.sandbox.exec(req, ctx.cancel).await {
        Ok(o) => o,
        Err(SandboxError::Cancelled) => return Err(DiffError::Cancelled),
        Err(e) => {
            return Err(DiffError::Failed(format!(
                "could not collect the diff: {e}"
            )));
        }
    };
    if out.stdout_overflow {
        return Err(DiffError::Failed(format!(
            "the change is larger than {} MB, so it was not kept",
            MAX_DIFF_BYTES >> 20
        )));
    }
    if out.exit_code == Some(crate::oom::OVERSIZED_EXIT)
        && let Some(why) = crate::oom::oversized_words(
            &String::from_utf8_lossy(out.stdout.as_deref().unwrap_or_default()),
            MAX_DIFF_BYTES,
        )
    {
        return Err(DiffError::Failed(why));
    }
    if !out.success() {
        return Err(DiffError::Failed(format!(
            "could not collect the diff ({}): {}",
            exit_words(out.exit_code, out.timed_out),
            last_line(&out.output.to_text())
        )));
    }
    let stdout = out.stdout.unwrap_or_default();
    let Some((numstat, patch)) = split_numstat(&stdout) else {
        return Err(DiffError::Failed(
            "could not collect the diff: git's output was cut short".into(),
        ));
    };
    let files = parse_numstat(numstat);
    if files.len() > MAX_DIFF_FILES {
        return Err(DiffError::Failed(format!(
            "the change touches {} files (more than {MAX_DIFF_FILES}), so it was not kept",
            files.len()
        )));
    }
    Ok(Diff {
        patch: String::from_utf8_lossy(patch).into_owned(),
        files,
    })
}

fn last_line(text: &str) -> String {
    text.trim().lines().last().unwrap_or("").to_string()
}

/// Splits `git diff --numstat --patch -z` into its numstat records and its patch: git ends the
/// records with an empty one. No output at all is no change; `None` when the records are cut
/// short.
fn split_numstat(out: &[u8]) -> Option<(&[u8], &[u8])> {
    if out.is_empty() {
        return Some((out, out));
    }
    let field_end = |from: usize| -> Option<usize> {
        Some(from + out.get(from..)?.iter().position(|b| *b == 0)?)
    };
    let mut at = 0;
    loop {
        if *out.get(at)? == 0 {
            return Some((&out[..at], &out[at + 1..]));
        }
        let end = field_end(at)?;
        // `added\tremoved\tpath`, or `added\tremoved\t` and two paths for a rename.
        let record = &out[at..end];
        let rename = record.splitn(3, |b| *b == b'\t').nth(2) == Some(&[][..]);
        at = end + 1;
        if rename {
            at = field_end(at)? + 1;
            at = field_end(at)? + 1;
        }
    }
}

/// Parses `git diff --numstat -z --find-renames`: `added\tremoved\tpath\0`, or for a rename
/// `added\tremoved\t\0old path\0new path\0`. Paths come as they are (never quoted).
fn parse_numstat(raw: &[u8]) -> Vec<FileChange> {
    let mut fields = raw.split(|b| *b == 0);
    let mut files = Vec::new();
    while let Some(entry) = fields.next() {
        if entry.is_empty() {
            continue;
        }
        let text = String::from_utf8_lossy(entry);
        let mut parts = text.splitn(3, '\t');
        let (Some(added), Some(removed), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let (old_path, path) = if path.is_empty() {
            let old = fields
                .next()
                .map(|p| String::from_utf8_lossy(p).into_owned());
            let new = fields
                .next()
                .map(|p| String::from_utf8_lossy(p).into_owned());
            match (old, new) {
                (Some(old), Some(new)) => (Some(old), new),
                _ => break,
            }
        } else {
            (None, path.to_string())
        };
        files.push(FileChange {
            path,
            old_path,
            added: added.parse().ok(),
            removed: removed.parse().ok(),
        });
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numstat_and_patch_are_split_at_the_empty_record() {
        let out = b"1\t0\tx\x000\t0\t\x00y\x00z\x00\x001\t2\tweird\t\x00\x00diff --git a/x b/x\n";
        let (numstat, patch) = split_numstat(out).unwrap();
        assert_eq!(numstat, b"1\t0\tx\x000\t0\t\x00y\x00z\x00");
        assert_eq!(patch, b"1\t2\tweird\t\x00\x00diff --git a/x b/x\n");
        let tab = b"1\t2\tweird\t\x00\x00diff --git a/x b/x\n";
        let (numstat, patch) = split_numstat(tab).unwrap();
        assert_eq!(
            numstat, b"1\t2\tweird\t\x00",
            "a path ending in a tab is no rename"
        );
        assert_eq!(patch, b"diff --git a/x b/x\n");
        assert_eq!(split_numstat(b""), Some((&b""[..], &b""[..])));
        assert_eq!(split_numstat(b"1\t0\tx\x00"), None, "cut short");
        assert_eq!(
            split_numstat(b"0\t0\t\x00y\x00"),
            None,
            "cut short in a rename"
        );
    }

    #[test]
    fn numstat_is_parsed_with_binary_files() {
        let raw = b"3\t1\tsrc/a b.rs\0-\t-\timg.png\0";
        assert_eq!(
            parse_numstat(raw),
            vec![
                FileChange {
                    path: "src/a b.rs".into(),
                    old_path: None,
                    added: Some(3),
                    removed: Some(1)
                },
                FileChange {
                    path: "img.png".into(),
                    old_path: None,
                    added: None,
                    removed: None
                },
            ]
        );
    }

    #[test]
    fn numstat_renames_keep_both_names_unquoted() {
        let raw =
            "0\t0\t\0docs/naïve notes/a.md\0docs/naïve notes/b.md\x001\t0\trun.sh\0".as_bytes();
        assert_eq!(
            parse_numstat(raw),
            vec![
                FileChange {
                    path: "docs/naïve notes/b.md".into(),
                    old_path: Some("docs/naïve notes/a.md".into()),
                    added: Some(0),
                    removed: Some(0)
                },
                FileChange {
                    path: "run.sh".into(),
                    old_path: None,
                    added: Some(1),
                    removed: Some(0)
                },
            ]
        );
    }
}
