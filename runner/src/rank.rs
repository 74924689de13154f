//! Ranking rollouts on evidence: passing tests first, then the agent's confidence, then the
//! smaller diff. Every rank comes with the reason for it.

use crate::types::{Outcome, RolloutResult};

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
}

impl From<&RolloutResult> for RankInput {
    fn from(r: &RolloutResult) -> Self {
        Self {
            index: r.index,
            outcome: r.outcome,
            confidence: r.confidence,
            diff_lines: r.diff.added() + r.diff.removed(),
            tested: r.test.is_some(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub index: u32,
    /// From 1.
    pub rank: u32,
    pub reason: String,
}

/// Lower is better.
fn tier(r: &RankInput) -> (u8, &'static str) {
    match r.outcome {
        Outcome::Succeeded if r.tested => (0, "its tests pass"),
        Outcome::Succeeded | Outcome::Untested => (1, "it changed files, but no tests were run"),
        Outcome::TestsFailed => (2, "its tests fail"),
        Outcome::GaveUp => (3, "it gave up"),
        Outcome::TimedOut => (4, "it timed out"),
        Outcome::Errored => (5, "it errored"),
        Outcome::Cancelled => (6, "it was cancelled"),
    }
}

fn confidence(r: &RankInput) -> f64 {
    r.confidence.unwrap_or(0.0)
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

/// Ranks rollouts; the result is in rank order.
pub fn rank(inputs: &[RankInput]) -> Vec<Ranked> {
    let mut sorted: Vec<&RankInput> = inputs.iter().collect();
    sorted.sort_by(|a, b| {
        tier(a)
            .0
            .cmp(&tier(b).0)
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
                let why = if tier(r).0 != tier(above).0 {
                    format!("{}, while rollout {}: {}", tier(r).1, above.index, tier(above).1)
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
                    format!("tied with rollout {}; the earlier rollout goes first", above.index)
                };
                format!("below rollout {}: {why} ({})", above.index, measures(r))
            };
            Ranked {
                index: r.index,
                rank: i as u32 + 1,
                reason,
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
}
