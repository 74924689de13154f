//! Measured selection accuracy (issue 14): scenarios where N scripted attempts differ in ways
//! the repository's own tests cannot see, each with the rollout a careful reviewer would pick.
//! A scenario is a small real git repository (bash: the rollout image has no Python), a bug
//! report, one scripted attempt per rollout (its fix and, usually, a reproduction test under
//! `tests/`), the judge's scripted verdicts, the right rollout, and which rollout each ordering
//! is expected to put first (checked on the host by `predict`, measured in real sandboxes by
//! the `selection` benchmark).
//!
//! The attempts are written to fool a careless ranker: the wrong ones state higher confidence
//! and are usually smaller. The judge is scripted to be right most of the time, not always.

mod fixture;
mod numbers;
pub mod predict;
mod text;
mod tools;

use serde_json::{Value, json};
use threadsmith_bot::config::Config;

use crate::{TestEnv, Turn};

/// The three orderings the issue compares, set by `[ranking]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ordering {
    /// Repository tests, confidence, diff size (`reproduction = false`, `judge = false`).
    Old,
    /// Plus the cross-run reproduction tests (`reproduction = true`, `judge = false`).
    Reproduction,
    /// Plus the judge (`reproduction = true`, `judge = true`).
    Full,
}

impl Ordering {
    pub const ALL: [Ordering; 3] = [Ordering::Old, Ordering::Reproduction, Ordering::Full];

    pub fn label(self) -> &'static str {
        match self {
            Ordering::Old => "old order",
            Ordering::Reproduction => "tests + reproduction tests",
            Ordering::Full => "full ranking",
        }
    }

    /// Sets `[ranking]` for this ordering.
    pub fn configure(self, config: &mut Config) {
        let (reproduction, judge) = match self {
            Ordering::Old => (false, false),
            Ordering::Reproduction => (true, false),
            Ordering::Full => (true, true),
        };
        config.ranking.reproduction = Some(reproduction);
        config.ranking.judge = Some(judge);
    }
}

/// A file: path in the repository, content.
pub type File = (&'static str, &'static str);

/// One scripted rollout.
pub struct Attempt {
    /// The files its fix writes.
    pub fix: &'static [File],
    /// The reproduction test it writes (a path under `tests/`), if any.
    pub test: Option<File>,
    pub summary: &'static str,
    pub confidence: f64,
}

/// What the judge says of one rollout: index, `best` / `acceptable` / `poor`, reason.
pub type Verdict = (u32, &'static str, &'static str);

/// The rollout each ordering is expected to put first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expect {
    pub old: u32,
    pub reproduction: u32,
    pub full: u32,
}

impl Expect {
    pub fn of(&self, ordering: Ordering) -> u32 {
        match ordering {
            Ordering::Old => self.old,
            Ordering::Reproduction => self.reproduction,
            Ordering::Full => self.full,
        }
    }
}

pub struct Scenario {
    pub name: &'static str,
    /// What differs between the attempts, and which ordering it fools and why.
    pub about: &'static str,
    /// The repository's files besides the shared test runner (see `fixture`).
    pub files: &'static [File],
    pub report: &'static str,
    /// Rollout k is `attempts[k - 1]`.
    pub attempts: &'static [Attempt],
    pub verdicts: &'static [Verdict],
    /// The rollout a careful reviewer would pick.
    pub right: u32,
    pub expect: Expect,
}

impl Scenario {
    pub fn rollouts(&self) -> u32 {
        self.attempts.len() as u32
    }

    /// The rollout the judge calls best.
    pub fn judge_pick(&self) -> Option<u32> {
        self.verdicts
            .iter()
            .find(|(_, v, _)| *v == "best")
            .map(|(k, _, _)| *k)
    }

    /// The repository at its base commit, in `dir`.
    pub fn repo(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let files = fixture::files(self.files);
        crate::gitrepo::repo_with(dir, &files)
    }

    /// Scripts the fake model: rollout k writes its files and finishes; the judge answers
    /// with the scenario's verdicts.
    pub fn script(&self, model: &crate::FakeModel) {
        for (i, a) in self.attempts.iter().enumerate() {
            let mut turns: Vec<Turn> = a
                .test
                .iter()
                .chain(a.fix)
                .map(|(path, content)| {
                    Turn::Call("write_file", json!({"path": path, "content": content}))
                })
                .collect();
            turns.push(Turn::Call(
                "finish",
                json!({"summary": a.summary, "confidence": a.confidence}),
            ));
            model.script(i as u64 + 1, turns);
        }
        let verdicts: Vec<Value> = self
            .verdicts
            .iter()
            .map(|(k, v, reason)| json!({"rollout": k, "verdict": v, "reason": reason}))
            .collect();
        model.judge(verdicts);
    }
}

/// Every scenario of the suite.
pub fn all() -> Vec<&'static Scenario> {
    text::ALL
        .iter()
        .chain(numbers::ALL)
        .chain(tools::ALL)
        .collect()
}

/// One scenario run through the real pipeline.
#[derive(Debug, Clone)]
pub struct Run {
    /// Rollout indexes in rank order.
    pub order: Vec<u32>,
    /// The top rollout's headline (the deciding evidence, as the summary shows it).
    pub headline: String,
    /// Rollouts whose outcome is not "succeeded" (every attempt's tests are meant to pass but
    /// where a scenario says otherwise): `(index, outcome label)`.
    pub outcomes: Vec<(u32, String)>,
    /// Whether the judge was asked.
    pub judged: bool,
}

impl Run {
    pub fn top(&self) -> Option<u32> {
        self.order.first().copied()
    }
}

/// Runs `s` as one task in a fresh test world ranked by `ordering`: real git, real sandboxes,
/// the scripted model.
pub async fn run(s: &Scenario, ordering: Ordering) -> Result<Run, String> {
    let env = crate::env(|c| ordering.configure(c)).await;
    run_in(&env, s).await
}

/// Runs `s` in `env` (whose `[ranking]` is already set).
pub async fn run_in(env: &TestEnv, s: &Scenario) -> Result<Run, String> {
    let repo = s.repo(&env.dir.path().join(s.name));
    s.script(&env.model);
    let report = env.run(&repo, s.rollouts(), s.report).await;
    if let Some(error) = report.task.error {
        return Err(format!("{}: the task failed: {error}", s.name));
    }
    let mut rows = report.rollouts;
    rows.sort_by_key(|r| r.rank.unwrap_or(u32::MAX));
    if rows.iter().any(|r| r.rank.is_none()) {
        return Err(format!("{}: a rollout has no rank", s.name));
    }
    Ok(Run {
        order: rows.iter().map(|r| r.index).collect(),
        headline: rows
            .first()
            .and_then(|r| r.rank_headline.clone())
            .unwrap_or_default(),
        outcomes: rows
            .iter()
            .filter(|r| r.outcome != Some(threadsmith_runner::Outcome::Succeeded))
            .map(|r| (r.index, r.outcome.map_or("none", |o| o.label()).to_string()))
            .collect(),
        judged: !env.model.judge_requests().is_empty(),
    })
}
