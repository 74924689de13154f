//! What each ordering should put first, worked out on the host without Docker: the
//! repository's test command run on the base, on every attempt's change, and with every
//! attempt's reproduction test applied on the base and on every change (the cross-checks of
//! issue 14, done by hand), then `threadsmith_runner::rank` on that evidence. It checks that a
//! scenario is what it claims to be; the benchmark measures the real pipeline.
//!
//! A rollout's own valid test passing on its own change counts in its `passed_from`, as the
//! contract reads ("the rollouts whose reproduction test passes on this change"). Were only the
//! other rollouts' tests counted, one prediction would change: in `leap_centuries` the attempt
//! that wrote no test would lose nothing by it and lead under tests + reproduction tests.

use std::path::Path;
use std::process::Command;

use threadsmith_runner::Outcome;
use threadsmith_runner::rank::{self, Judgement, OwnTest, RankInput, Reproduction, Verdict};

use super::{File, Ordering, Scenario, fixture};

/// The evidence and the predicted first rollout per ordering.
#[derive(Debug)]
pub struct Prediction {
    /// Whether the repository's tests pass on the base commit.
    pub base_passes: bool,
    /// Per rollout: whether the test command passes on its change.
    pub passes: Vec<bool>,
    /// Per rollout: the cross-checks' evidence.
    pub reproduction: Vec<Reproduction>,
    /// The first rollout under [`Ordering::ALL`], in that order.
    pub top: [u32; 3],
}

fn write(dir: &Path, files: &[File]) {
    for (path, content) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().expect("a file has a folder")).expect("mkdir");
        std::fs::write(p, content).expect("write a scenario file");
    }
}

/// Runs the test command on the base with `layers` written over it, in order.
fn passes(s: &Scenario, layers: &[&[File]]) -> bool {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), &fixture::files(s.files));
    for layer in layers {
        write(dir.path(), layer);
    }
    let out = Command::new("timeout")
        .args(["30", "bash", "-c", fixture::TEST_COMMAND])
        .current_dir(dir.path())
        .output()
        .expect("run bash");
    out.status.success()
}

/// Lines added plus removed by an attempt, as `diff` counts them.
fn diff_lines(s: &Scenario, files: &[File]) -> u64 {
    let mut n = 0;
    for (path, content) in files {
        let before = s
            .files
            .iter()
            .find(|(p, _)| p == path)
            .map_or("", |(_, c)| *c);
        let old: Vec<&str> = before.lines().collect();
        let new: Vec<&str> = content.lines().collect();
        // Lines of one side missing from the other: enough to order sizes.
        n += old.iter().filter(|l| !new.contains(l)).count() as u64;
        n += new.iter().filter(|l| !old.contains(l)).count() as u64;
    }
    n
}

fn change(s: &Scenario, k: usize) -> Vec<File> {
    let a = &s.attempts[k];
    a.test
        .iter()
        .copied()
        .chain(a.fix.iter().copied())
        .collect()
}

fn verdict(word: &str) -> Verdict {
    match word {
        "best" => Verdict::Best,
        "poor" => Verdict::Poor,
        _ => Verdict::Acceptable,
    }
}

/// Works out the evidence and ranks it under each ordering.
pub fn predict(s: &Scenario) -> Prediction {
    let n = s.attempts.len();
    let changes: Vec<Vec<File>> = (0..n).map(|k| change(s, k)).collect();
    let passing: Vec<bool> = changes.iter().map(|c| passes(s, &[c])).collect();
    // A reproduction test counts when it fails on the base.
    let valid: Vec<bool> = s
        .attempts
        .iter()
        .map(|a| a.test.is_some_and(|t| !passes(s, &[&[t]])))
        .collect();
    let reproduction: Vec<Reproduction> = (0..n)
        .map(|i| Reproduction {
            passed_from: (0..n)
                .filter(|&j| valid[j])
                .filter(|&j| {
                    let test = [s.attempts[j].test.expect("a valid test exists")];
                    passes(s, &[&changes[i], &test])
                })
                .map(|j| j as u32 + 1)
                .collect(),
            valid: valid.iter().filter(|v| **v).count() as u32,
            own: match (s.attempts[i].test, valid[i]) {
                (None, _) => OwnTest::None,
                (Some(_), true) => OwnTest::Reproduces,
                (Some(_), false) => OwnTest::PassesOnBase,
            },
        })
        .collect();
    let inputs: Vec<RankInput> = (0..n)
        .map(|i| RankInput {
            index: i as u32 + 1,
            outcome: if passing[i] {
                Outcome::Succeeded
            } else {
                Outcome::TestsFailed
            },
            confidence: Some(s.attempts[i].confidence),
            diff_lines: diff_lines(s, &changes[i]),
            tested: true,
            reproduction: None,
            judge: None,
        })
        .collect();
    let top = Ordering::ALL.map(|o| top(s, o, &inputs, &reproduction));
    Prediction {
        base_passes: passes(s, &[]),
        passes: passing,
        reproduction,
        top,
    }
}

/// The first rollout under `ordering`: the judge sees the rollouts tied with the best one on
/// test evidence, when there are two or more.
fn top(s: &Scenario, ordering: Ordering, inputs: &[RankInput], repro: &[Reproduction]) -> u32 {
    let mut inputs = inputs.to_vec();
    if ordering != Ordering::Old {
        for (input, r) in inputs.iter_mut().zip(repro) {
            input.reproduction = Some(r.clone());
        }
    }
    if ordering == Ordering::Full {
        let best = rank::rank(&inputs)[0].index;
        let lead = inputs[best as usize - 1].clone();
        let tied: Vec<u32> = inputs
            .iter()
            .filter(|r| rank::tied_on_tests(r, &lead))
            .map(|r| r.index)
            .collect();
        if tied.len() >= 2 {
            for (k, word, reason) in s.verdicts {
                if tied.contains(k) {
                    inputs[*k as usize - 1].judge = Some(Judgement {
                        verdict: verdict(word),
                        reason: reason.to_string(),
                    });
                }
            }
        }
    }
    rank::rank(&inputs)[0].index
}
