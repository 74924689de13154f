//! Ranking rollouts on evidence, in this order: the repository's tests, the reproduction tests
//! of every rollout run against every change (cross-checks), the judge's verdict, then the
//! agent's confidence, then the smaller diff. Every rank keeps its reasons: a headline of a few
//! words for the summary, the full list for the pages, and why it sits below the one above.
//! Deterministic: the same evidence gives the same order (the judge's answer is stored).

use serde::{Deserialize, Serialize};

use crate::types::{Outcome, RolloutResult};

/// The cross-checks' evidence for one rollout's change.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Reproduction {
    /// The rollouts whose reproduction test (one that fails on the base commit) passes on this
    /// change, in rollout order.
    pub passed_from: Vec<u32>,
    /// How many reproduction tests count (they fail on the base) across all rollouts.
    pub valid: u32,
    /// This rollout's own reproduction test.
    pub own: OwnTest,
}

/// What became of a rollout's own reproduction test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnTest {
    /// The change has no test file.
    #[default]
    None,
    /// It fails on the base commit: it reproduces the problem, and counts.
    Reproduces,
    /// It passes on the base commit too: it reproduces nothing and gets no credit.
    PassesOnBase,
    /// It could not be run (timed out, errored, cancelled).
    NotRun,
}

/// The judge's verdict on one candidate, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Best,
    Acceptable,
    Poor,
}

/// The judge's answer for one rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Judgement {
    pub verdict: Verdict,
    /// A few words, for people ("keeps the output format").
    pub reason: String,
}

/// What ranking looks at.
#[derive(Debug, Clone, PartialEq)]
pub struct RankInput {
    pub index: u32,
    pub outcome: Outcome,
    pub confidence: Option<f64>,
    /// Lines added plus lines removed.
    pub diff_lines: u64,
    /// Whether a test command ran (and so whether "succeeded" means "tests pass"). An
    /// [`Outcome::Untested`] rollout ranks below every one whose tests pass.
    pub tested: bool,
    /// The cross-checks' evidence; `None` when they did not run (no test command, turned off).
    pub reproduction: Option<Reproduction>,
    /// The judge's answer; `None` when it was not asked (no tie, turned off, failed).
    pub judge: Option<Judgement>,
}

impl From<&RolloutResult> for RankInput {
    fn from(r: &RolloutResult) -> Self {
        Self {
            index: r.index,
            outcome: r.outcome,
            confidence: r.confidence,
            diff_lines: r.diff.added() + r.diff.removed(),
            tested: r.test.is_some(),
            reproduction: None,
            judge: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub index: u32,
    /// From 1.
    pub rank: u32,
    /// Why it sits where it does: first, or below the rollout above it and why.
    pub reason: String,
    /// The deciding evidence in a few words, for the summary ("passes 3/3 reproduction tests;
    /// judge: keeps the output format").
    pub headline: String,
    /// All the evidence, one line each, for the pages.
    pub reasons: Vec<String>,
}

/// Lower is better.
fn tier(r: &RankInput) -> (u8, &'static str) {
    match r.outcome {
        Outcome::Succeeded if r.tested => (0, "its tests pass"),
        Outcome::Succeeded | Outcome::Untested => (1, "it changed files, but no tests were run"),
        Outcome::TestsFailed => (2, "its tests fail"),
        Outcome::GaveUp => (3, "it gave up"),
        Outcome::TimedOut => (4, "it timed out"),
        Outcome::LimitReached => (4, "a token limit stopped it"),
        Outcome::Errored => (5, "it errored"),
        Outcome::Cancelled => (6, "it was cancelled"),
    }
}

fn confidence(r: &RankInput) -> f64 {
    r.confidence.unwrap_or(0.0)
}

/// Reproduction tests passed; more is better.
fn reproduced(r: &RankInput) -> usize {
    r.reproduction.as_ref().map_or(0, |p| p.passed_from.len())
}

/// The judge's verdict as an order; no verdict sits with "acceptable".
fn judged(r: &RankInput) -> Verdict {
    r.judge.as_ref().map_or(Verdict::Acceptable, |j| j.verdict)
}

/// Confidence and diff size, for people.
fn measures(r: &RankInput) -> String {
    let confidence = r
        .confidence
        .map_or("no stated confidence".to_string(), |c| {
            format!("confidence {c:.2}")
        });
    format!("{confidence}, {} changed lines", r.diff_lines)
}

fn reproduction_words(p: &Reproduction) -> String {
    format!(
        "passes {}/{} reproduction tests",
        p.passed_from.len(),
        p.valid
    )
}

fn own_test_words(own: OwnTest) -> &'static str {
    match own {
        OwnTest::None => "it wrote no reproduction test",
        OwnTest::Reproduces => "its own test fails on the base commit (it reproduces the problem)",
        OwnTest::PassesOnBase => {
            "its own test passes on the base commit too (it reproduces nothing; no credit)"
        }
        OwnTest::NotRun => "its own test could not be run",
    }
}

fn verdict_words(v: Verdict) -> &'static str {
    match v {
        Verdict::Best => "best",
        Verdict::Acceptable => "acceptable",
        Verdict::Poor => "poor",
    }
}

/// The deciding evidence in a few words.
fn headline(r: &RankInput) -> String {
    let mut parts = Vec::new();
    if let Some(p) = r.reproduction.as_ref().filter(|p| p.valid > 0) {
        parts.push(reproduction_words(p));
    }
    if let Some(j) = &r.judge {
        parts.push(format!("judge: {}", j.reason));
    }
    if parts.is_empty() {
        parts.push(tier(r).1.to_string());
    }
    parts.join("; ")
}

/// Every piece of evidence, one line each.
fn all_reasons(r: &RankInput) -> Vec<String> {
    let mut lines = vec![tier(r).1.to_string()];
    match &r.reproduction {
        Some(p) => {
            let from = if p.passed_from.is_empty() {
                String::new()
            } else {
                let list: Vec<String> = p.passed_from.iter().map(|k| format!("#{k}")).collect();
                format!(" (from {})", list.join(", "))
            };
            lines.push(format!("{}{from}", reproduction_words(p)));
            lines.push(own_test_words(p.own).to_string());
        }
        None => lines.push("reproduction tests were not run".to_string()),
    }
    if let Some(j) = &r.judge {
        lines.push(format!(
            "judge: {} — {}",
            verdict_words(j.verdict),
            j.reason
        ));
    }
    lines.push(measures(r));
    lines
}

/// Why `r` sits below `above`: the first evidence that separates them.
fn below(r: &RankInput, above: &RankInput) -> String {
    if tier(r).0 != tier(above).0 {
        format!(
            "{}, while rollout {}: {}",
            tier(r).1,
            above.index,
            tier(above).1
        )
    } else if reproduced(r) != reproduced(above) {
        format!(
            "same test result as rollout {}, fewer reproduction tests pass ({} < {})",
            above.index,
            reproduced(r),
            reproduced(above)
        )
    } else if judged(r) != judged(above) {
        format!(
            "same test evidence as rollout {}, the judge found it {} (rollout {}: {})",
            above.index,
            verdict_words(judged(r)),
            above.index,
            verdict_words(judged(above))
        )
    } else if confidence(r) != confidence(above) {
        format!(
            "same test result as rollout {}, lower confidence ({:.2} < {:.2})",
            above.index,
            confidence(r),
            confidence(above)
        )
    } else if r.diff_lines != above.diff_lines {
        format!(
            "same test result and confidence as rollout {}, larger diff ({} > {} lines)",
            above.index, r.diff_lines, above.diff_lines
        )
    } else {
        format!(
            "tied with rollout {}; the earlier rollout goes first",
            above.index
        )
    }
}

/// Whether two rollouts are tied on test evidence (the repository's tests and the
/// cross-checks): the judge is asked to separate such rollouts.
pub fn tied_on_tests(a: &RankInput, b: &RankInput) -> bool {
    tier(a).0 == tier(b).0 && reproduced(a) == reproduced(b)
}

/// Ranks rollouts; the result is in rank order.
pub fn rank(inputs: &[RankInput]) -> Vec<Ranked> {
    let mut sorted: Vec<&RankInput> = inputs.iter().collect();
    sorted.sort_by(|a, b| {
        tier(a)
            .0
            .cmp(&tier(b).0)
            .then(reproduced(b).cmp(&reproduced(a)))
            .then(judged(a).cmp(&judged(b)))
            .then(confidence(b).total_cmp(&confidence(a)))
            .then(a.diff_lines.cmp(&b.diff_lines))
            .then(a.index.cmp(&b.index))
    });
    sorted
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let reason = if i == 0 {
                format!("ranked first: {}, {}", tier(r).1, measures(r))
            } else {
                let above = sorted[i - 1];
                format!(
                    "below rollout {}: {} ({})",
                    above.index,
                    below(r, above),
                    measures(r)
                )
            };
            Ranked {
                index: r.index,
                rank: i as u32 + 1,
                reason,
                headline: headline(r),
                reasons: all_reasons(r),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(index: u32, outcome: Outcome, confidence: Option<f64>, diff_lines: u64) -> RankInput {
        RankInput {
            index,
            outcome,
            confidence,
            diff_lines,
            tested: true,
            reproduction: None,
            judge: None,
        }
    }

    #[test]
    fn tests_beat_confidence_which_beats_size() {
        let ranked = rank(&[
            input(1, Outcome::TestsFailed, Some(0.99), 2),
            input(2, Outcome::Succeeded, Some(0.5), 50),
            input(3, Outcome::Succeeded, Some(0.9), 80),
            input(4, Outcome::Succeeded, Some(0.9), 10),
            input(5, Outcome::GaveUp, None, 0),
        ]);
        let order: Vec<u32> = ranked.iter().map(|r| r.index).collect();
        assert_eq!(order, vec![4, 3, 2, 1, 5]);
        assert_eq!(
            ranked[0].reason,
            "ranked first: its tests pass, confidence 0.90, 10 changed lines"
        );
        assert!(
            ranked[1].reason.contains("larger diff (80 > 10 lines)"),
            "{}",
            ranked[1].reason
        );
        assert!(
            ranked[2].reason.contains("lower confidence (0.50 < 0.90)"),
            "{}",
            ranked[2].reason
        );
        assert!(
            ranked[3].reason.starts_with(
                "below rollout 2: its tests fail, while rollout 2: its tests pass (confidence 0.99"
            ),
            "{}",
            ranked[3].reason
        );
        assert_eq!(
            ranked.iter().map(|r| r.rank).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );
    }

    #[test]
    fn untested_ranks_below_passing_tests_whatever_its_confidence() {
        let mut untested = input(1, Outcome::Untested, Some(1.0), 1);
        untested.tested = false;
        let ranked = rank(&[untested, input(2, Outcome::Succeeded, Some(0.1), 90)]);
        assert_eq!(ranked[0].index, 2);
        assert_eq!(ranked[1].index, 1);
        assert!(
            ranked[1].reason.contains(
                "it changed files, but no tests were run, while rollout 2: its tests pass"
            ),
            "{}",
            ranked[1].reason
        );
    }

    #[test]
    fn ties_keep_rollout_order() {
        let ranked = rank(&[
            input(2, Outcome::Errored, None, 0),
            input(1, Outcome::Errored, None, 0),
        ]);
        assert_eq!(ranked[0].index, 1);
        assert!(ranked[1].reason.contains("tied with rollout 1"));
    }

    fn reproduction(passed_from: &[u32], valid: u32, own: OwnTest) -> Option<Reproduction> {
        Some(Reproduction {
            passed_from: passed_from.to_vec(),
            valid,
            own,
        })
    }

    #[test]
    fn reproduction_tests_beat_the_judge_which_beats_confidence() {
        let mut a = input(1, Outcome::Succeeded, Some(0.99), 5);
        a.reproduction = reproduction(&[], 2, OwnTest::PassesOnBase);
        let mut b = input(2, Outcome::Succeeded, Some(0.2), 50);
        b.reproduction = reproduction(&[2, 3], 2, OwnTest::Reproduces);
        b.judge = Some(Judgement {
            verdict: Verdict::Acceptable,
            reason: "adds an unneeded flag".into(),
        });
        let mut c = input(3, Outcome::Succeeded, Some(0.1), 60);
        c.reproduction = reproduction(&[2, 3], 2, OwnTest::Reproduces);
        c.judge = Some(Judgement {
            verdict: Verdict::Best,
            reason: "keeps the output format".into(),
        });
        let ranked = rank(&[a, b, c]);
        let order: Vec<u32> = ranked.iter().map(|r| r.index).collect();
        assert_eq!(order, vec![3, 2, 1]);
        assert_eq!(
            ranked[0].headline,
            "passes 2/2 reproduction tests; judge: keeps the output format"
        );
        assert!(
            ranked[1]
                .reason
                .contains("the judge found it acceptable (rollout 3: best)"),
            "{}",
            ranked[1].reason
        );
        assert!(
            ranked[2]
                .reason
                .contains("fewer reproduction tests pass (0 < 2)"),
            "{}",
            ranked[2].reason
        );
        assert!(
            ranked[2]
                .reasons
                .iter()
                .any(|l| l.contains("passes on the base commit too")),
            "{:?}",
            ranked[2].reasons
        );
        assert!(
            ranked[1]
                .reasons
                .contains(&"passes 2/2 reproduction tests (from #2, #3)".to_string()),
            "{:?}",
            ranked[1].reasons
        );
    }

    #[test]
    fn the_repositorys_tests_still_come_first_and_ties_are_told() {
        let mut failing = input(1, Outcome::TestsFailed, None, 1);
        failing.reproduction = reproduction(&[1, 2], 2, OwnTest::Reproduces);
        let passing = input(2, Outcome::Succeeded, None, 1);
        let ranked = rank(&[failing.clone(), passing.clone()]);
        assert_eq!(ranked[0].index, 2);
        assert_eq!(ranked[0].headline, "its tests pass");
        assert!(!tied_on_tests(&failing, &passing));
        let mut other = passing.clone();
        other.index = 3;
        assert!(tied_on_tests(&passing, &other));
    }
}
