//! Running the cross-checks: one fresh sandbox per change, the tests one after the other.
//!
//! Why one sandbox per change rather than per run: a sandbox costs a container, the copy of the
//! repository and the setup command, where resetting the working copy costs one `git reset`.
//! Isolation holds: the change is committed once in the sandbox's own working copy; before each
//! test the copy is reset to that commit (`git reset --hard`, `git clean -fd`: tracked files back,
//! files the previous test added gone), the test files are put back as on the base and then
//! patched as the rollout left them — so a test file both rollouts touched is the tester's
//! version. Only what git ignores (build caches) is shared by the runs in one sandbox.

use futures_util::StreamExt;
use futures_util::stream;
use tokio_util::sync::CancellationToken;

use super::{Bounds, Candidate, Cell, Matrix, Run, planned_runs};
use crate::removals::Removals;
use crate::sandbox::{ExecRequest, Sandbox, SandboxBackend, SandboxError, SandboxSpec};
use crate::types::TaskPlan;

/// Cross-check sandboxes are numbered from here (the base's), apart from the rollouts' own.
pub const SANDBOX_NUMBER: u32 = 1000;

/// Commits the change under check (given on stdin; empty for the base) in the working copy.
pub(crate) const PREPARE_SCRIPT: &str = r#"set -e
cd /workspace
cat >/tmp/.ts-change.patch
if [ -s /tmp/.ts-change.patch ]; then
  git apply --binary --whitespace=nowarn /tmp/.ts-change.patch
fi
rm -f /tmp/.ts-change.patch
git add -A
git -c user.name=threadsmith -c user.email=threadsmith@localhost -c commit.gpgsign=false \
  commit -q --no-verify --allow-empty -m 'threadsmith: the change under check'
"#;

/// Resets the working copy to the change under check, then puts the tester's test files (the
/// paths are the arguments; the tester's patch is on stdin) as the tester left them.
pub(crate) const APPLY_TESTS_SCRIPT: &str = r#"set -e
cd /workspace
cat >/tmp/.ts-tests.patch
git reset -q --hard
git clean -fdq
include=()
for p in "$@"; do
  rm -rf -- "$p"
  git checkout -q HEAD~1 -- "$p" 2>/dev/null || true
  include+=("--include=$(printf '%s' "$p" | sed 's/[][*?\\]/\\&/g')")
done
git apply --binary --whitespace=nowarn "${include[@]}" /tmp/.ts-tests.patch
rm -f /tmp/.ts-tests.patch
"#;

/// Runs the cross-checks of `candidates` (see the module's documentation) within `bounds`: at
/// most `slots` sandboxes at once, each test run under `test_limit` (the copy, the setup and
/// the applying of patches under the repository's command time limit), stopped by `cancel`.
/// Never fails: what could not run is [`Cell::NotRun`], with a note.
pub async fn cross_check(
    backend: &dyn SandboxBackend,
    removals: &Removals,
    plan: &TaskPlan,
    candidates: &[Candidate],
    bounds: Bounds,
    cancel: &CancellationToken,
) -> Matrix {
    let Some(test) = plan.settings.test.clone() else {
        return Matrix::skipped("the repository has no test command");
    };
    let planned = planned_runs(candidates);
    if planned.is_empty() {
        return Matrix::skipped("no rollout wrote a test file");
    }
    let mut matrix = Matrix {
        tests: planned[0].1.clone(),
        changes: planned.iter().filter_map(|(on, _)| *on).collect(),
        ..Matrix::default()
    };
    let checks = planned.into_iter().map(|(on, tests)| {
        let test = test.as_str();
        async move {
            let change = on.and_then(|j| candidates.iter().find(|c| c.index == j));
            let patch = change.map_or("", |c| c.patch.as_str());
            let testers: Vec<&Candidate> = tests
                .iter()
                .filter_map(|k| candidates.iter().find(|c| c.index == *k))
                .collect();
            let test = (test, bounds.test_limit);
            check_change(backend, removals, plan, on, patch, &testers, test, cancel).await
        }
    });
    let done: Vec<(Vec<Run>, Vec<String>)> = stream::iter(checks)
        .buffer_unordered(bounds.slots.max(1))
        .collect()
        .await;
    for (runs, notes) in done {
        matrix.runs.extend(runs);
        matrix.notes.extend(notes);
    }
    matrix
        .runs
        .sort_by_key(|r| (r.test_of, r.on.map_or(0, |j| j + 1)));
    matrix.notes.sort();
    matrix.notes.dedup();
    matrix
}

fn change_words(on: Option<u32>) -> String {
    on.map_or("the base commit".to_string(), |j| {
        format!("rollout {j}'s change")
    })
}

/// Every tester's run on `on`, in one fresh sandbox.
#[expect(
    clippy::too_many_arguments,
    reason = "the runner's parts, the change and its testers: no natural group"
)]
async fn check_change(
    backend: &dyn SandboxBackend,
    removals: &Removals,
    plan: &TaskPlan,
    on: Option<u32>,
    patch: &str,
    testers: &[&Candidate],
    (test, test_limit): (&str, std::time::Duration),
    cancel: &CancellationToken,
) -> (Vec<Run>, Vec<String>) {
    let not_run = |from: usize| -> Vec<Run> {
        testers[from..]
            .iter()
            .map(|k| Run {
                test_of: k.index,
                on,
                result: Cell::NotRun,
                ms: 0,
            })
            .collect()
    };
    if cancel.is_cancelled() {
        return (not_run(0), vec!["the task was cancelled".into()]);
    }
    let settings = &plan.settings;
    let spec = SandboxSpec {
        image: settings.image.clone(),
        limits: settings.limits.clone(),
        task_id: plan.task_id.clone(),
        rollout: SANDBOX_NUMBER + on.unwrap_or(0),
        seed_volume: Some(plan.seed_volume.clone()),
        start_with_network: settings.setup.is_some() && settings.setup_network,
        lifetime: settings.command_timeout * (3 + testers.len() as u32)
            + test_limit * testers.len() as u32
            + std::time::Duration::from_secs(60),
    };
    let sandbox = match backend.create_sandbox(&spec).await {
        Ok(s) => s,
        Err(e) => {
            let note = format!("on {}: could not start a sandbox: {e}", change_words(on));
            return (not_run(0), vec![note]);
        }
    };
    let mut runs = Vec::new();
    let mut notes = Vec::new();
    let ready = prepare(sandbox.as_ref(), plan, patch, cancel).await;
    match ready {
        Err(why) => {
            notes.push(format!("on {}: {why}", change_words(on)));
            runs = not_run(0);
        }
        Ok(()) => {
            for (i, tester) in testers.iter().enumerate() {
                match run_one(
                    sandbox.as_ref(),
                    tester,
                    test,
                    (settings.command_timeout, test_limit),
                    cancel,
                )
                .await
                {
                    Ok((result, ms)) => runs.push(Run {
                        test_of: tester.index,
                        on,
                        result,
                        ms,
                    }),
                    Err(Stop::Cancelled) => {
                        notes.push("the task was cancelled".into());
                        runs.extend(not_run(i));
                        break;
                    }
                    Err(Stop::Failed(why)) => {
                        notes.push(format!(
                            "rollout {}'s test files on {}: {why}",
                            tester.index,
                            change_words(on)
                        ));
                        runs.extend(not_run(i).into_iter().take(1));
                    }
                }
            }
        }
    }
    removals.start(&plan.task_id, sandbox);
    (runs, notes)
}

enum Stop {
    Cancelled,
    Failed(String),
}

fn stop(e: SandboxError) -> Stop {
    match e {
        SandboxError::Cancelled => Stop::Cancelled,
        e => Stop::Failed(e.to_string()),
    }
}

fn last_line(text: &str) -> String {
    text.trim().lines().last().unwrap_or("").to_string()
}

/// The working copy, the setup command, the network cut, the change committed.
async fn prepare(
    sandbox: &dyn Sandbox,
    plan: &TaskPlan,
    patch: &str,
    cancel: &CancellationToken,
) -> Result<(), String> {
    let settings = &plan.settings;
    let limit = settings.command_timeout;
    let words = |e: SandboxError| match e {
        SandboxError::Cancelled => "the task was cancelled".to_string(),
        e => e.to_string(),
    };
    let mut copy = ExecRequest::shell(crate::workspace::copy_script(), limit);
    copy.reap = false;
    let copied = sandbox.exec(copy, cancel).await.map_err(words)?;
    if !copied.success() {
        return Err(format!(
            "could not put the repository in the sandbox: {}",
            last_line(&copied.output.to_text())
        ));
    }
    sandbox.enforce_cpu_limit().await.map_err(words)?;
    if let Some(setup) = &settings.setup {
        let ran = sandbox
            .exec(ExecRequest::shell(setup.clone(), limit), cancel)
            .await
            .map_err(words)?;
        if !ran.success() {
            return Err("the setup command failed".into());
        }
        if settings.setup_network {
            sandbox.cut_network().await.map_err(words)?;
        }
    }
    let mut commit = ExecRequest::shell(PREPARE_SCRIPT, limit);
    commit.stdin = Some(patch.as_bytes().to_vec());
    let committed = sandbox.exec(commit, cancel).await.map_err(words)?;
    if !committed.success() {
        return Err(format!(
            "the change did not apply: {}",
            last_line(&committed.output.to_text())
        ));
    }
    Ok(())
}

/// One tester's test files on the committed change, then the test command.
async fn run_one(
    sandbox: &dyn Sandbox,
    tester: &Candidate,
    test: &str,
    (limit, test_limit): (std::time::Duration, std::time::Duration),
    cancel: &CancellationToken,
) -> Result<(Cell, u64), Stop> {
    let mut apply = ExecRequest::shell(APPLY_TESTS_SCRIPT, limit);
    apply.argv.push("threadsmith-crosscheck".into());
    apply.argv.extend(tester.test_files.iter().cloned());
    apply.stdin = Some(tester.patch.as_bytes().to_vec());
    let applied = sandbox.exec(apply, cancel).await.map_err(stop)?;
    if !applied.success() {
        return Err(Stop::Failed(format!(
            "the test files did not apply: {}",
            last_line(&applied.output.to_text())
        )));
    }
    let ran = sandbox
        .exec(ExecRequest::shell(test, test_limit), cancel)
        .await
        .map_err(stop)?;
    let ms = ran.duration.as_millis() as u64;
    let cell = if ran.success() {
        Cell::Passed
    } else if ran.timed_out || ran.exit_code.is_none() {
        Cell::NotRun
    } else {
        Cell::Failed
    };
    Ok((cell, ms))
}
