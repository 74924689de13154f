//! What attempts cost, in words: compact for the summary (`4m 12s · 18.2k tokens · $0.042`),
//! in full for `threadsmith show` and the pages. Tokens whose endpoint did not report them are
//! "unknown", never 0.

use std::time::Duration;

use threadsmith_runner::usage::{compact, duration_words};
use threadsmith_runner::{ModelUsage, Outcome};

use crate::config::ModelPrice;
use crate::config::prices::money_words;
use crate::store::{RolloutRow, TaskRow};

/// A rollout's wall time, once it ended.
pub fn wall_time(r: &RolloutRow) -> Option<Duration> {
    let (a, b) = (r.started_at?, r.finished_at?);
    (b - a).to_std().ok()
}

/// `4m 12s · 18.2k tokens · $0.042`: the summary's line of a rollout that ended.
pub fn rollout_line(r: &RolloutRow, price: Option<ModelPrice>) -> Option<String> {
    let wall = wall_time(r)?;
    let u = &r.cost.model;
    let mut words = vec![duration_words(wall)];
    if !u.is_empty() {
        words.push(u.tokens_words());
    }
    if let Some(money) = price.and_then(|p| p.cost(u)) {
        words.push(money_words(money));
    }
    Some(words.join(" · "))
}

/// The task's model use: its spec and plan calls and every rollout's.
pub fn task_usage(task: &TaskRow, rollouts: &[RolloutRow]) -> ModelUsage {
    let mut total = task.spec_usage;
    for r in rollouts {
        total.add(&r.cost.model);
    }
    total
}

/// `Total: 18.2k tokens in 14 model calls (spec and plan included) · $0.12 · 9m 40s of
/// rollouts`, and how many rollouts a token limit stopped; `None` before any cost is known.
pub fn task_line(
    task: &TaskRow,
    rollouts: &[RolloutRow],
    price: Option<ModelPrice>,
) -> Option<String> {
    let total = task_usage(task, rollouts);
    let time: Duration = rollouts.iter().filter_map(wall_time).sum();
    if total.is_empty() && time.is_zero() {
        return None;
    }
    let mut words = vec![format!(
        "{} in {} model call{}",
        total.tokens_words(),
        total.calls,
        if total.calls == 1 { "" } else { "s" }
    )];
    if let Some(money) = price.and_then(|p| p.cost(&total)) {
        words.push(money_words(money));
    }
    words.push(format!("{} of rollouts", duration_words(time)));
    let stopped = rollouts
        .iter()
        .filter(|r| r.outcome == Some(Outcome::LimitReached))
        .count();
    let mut line = format!("Total: {}", words.join(" · "));
    if stopped > 0 {
        line.push_str(&format!(
            " · a token limit stopped {stopped} rollout{}",
            if stopped == 1 { "" } else { "s" }
        ));
    }
    Some(line)
}

/// `12 calls: 16,000 prompt + 2,200 completion tokens` (and how many calls reported nothing).
pub fn usage_details(u: &ModelUsage) -> String {
    if u.is_empty() {
        return "no model call".into();
    }
    let calls = format!("{} call{}", u.calls, if u.calls == 1 { "" } else { "s" });
    match u.known() {
        threadsmith_runner::usage::Known::None => {
            format!("{calls}: tokens unknown (the endpoint did not report usage)")
        }
        known => {
            let mut s = format!(
                "{calls}: {} prompt + {} completion tokens",
                compact(u.prompt_tokens),
                compact(u.completion_tokens)
            );
            if known == threadsmith_runner::usage::Known::Some {
                s.push_str(&format!(
                    " ({} call{} without usage: at least this many)",
                    u.unmeasured,
                    if u.unmeasured == 1 { "" } else { "s" }
                ));
            }
            s
        }
    }
}

/// A rollout's cost, line by line: model use, time, and money when priced.
pub fn rollout_details(r: &RolloutRow, price: Option<ModelPrice>) -> Vec<String> {
    let mut lines = vec![format!("model: {}", usage_details(&r.cost.model))];
    if let Some(wall) = wall_time(r) {
        lines.push(format!(
            "time:  {} wall · {} waiting for the model · {} in the sandbox",
            duration_words(wall),
            duration_words(r.cost.model_time),
            duration_words(r.cost.sandbox_time)
        ));
    }
    if let Some(money) = price.and_then(|p| p.cost(&r.cost.model)) {
        lines.push(format!("cost:  {}", money_words(money)));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(outcome: Outcome, secs: i64, model: ModelUsage) -> RolloutRow {
        let start = chrono::Utc::now();
        RolloutRow {
            index: 1,
            phase: "done".into(),
            step: 0,
            outcome: Some(outcome),
            detail: None,
            summary: None,
            confidence: None,
            sampling: None,
            test: None,
            lines_added: 0,
            lines_removed: 0,
            files_changed: 0,
            rank: None,
            rank_reason: None,
            rank_headline: None,
            rank_reasons: Vec::new(),
            network: None,
            started_at: Some(start),
            finished_at: Some(start + chrono::Duration::seconds(secs)),
            agent_duration: None,
            cost: threadsmith_runner::RolloutCost {
                model,
                model_time: Duration::from_secs(60),
                sandbox_time: Duration::from_secs(100),
            },
            environment: None,
        }
    }

    fn task_row() -> TaskRow {
        TaskRow {
            id: "0123456789abcdef".into(),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            state: crate::store::TaskState::Done,
            origin: "slack".into(),
            requester: None,
            title: "t".into(),
            spec: "t".into(),
            repo: "acme/calc".into(),
            base_ref: None,
            base_commit: None,
            attempts: 2,
            error: None,
            spec_json: None,
            worker: None,
            tests: None,
            spec_usage: ModelUsage::default(),
            model: None,
            instruction_files: Vec::new(),
        }
    }

    const PRICE: ModelPrice = ModelPrice {
        input: 0.15,
        output: 0.6,
    };

    fn used(calls: u32, unmeasured: u32, prompt: u64, completion: u64) -> ModelUsage {
        ModelUsage {
            calls,
            unmeasured,
            prompt_tokens: prompt,
            completion_tokens: completion,
        }
    }

    #[test]
    fn a_rollout_line_is_time_tokens_and_money_when_priced() {
        let r = row(Outcome::Succeeded, 252, used(12, 0, 16_000, 2_200));
        assert_eq!(
            rollout_line(&r, Some(PRICE)).unwrap(),
            "4m 12s · 18.2k tokens · $0.004"
        );
        assert_eq!(rollout_line(&r, None).unwrap(), "4m 12s · 18.2k tokens");
        let silent = row(Outcome::Succeeded, 5, used(3, 3, 0, 0));
        assert_eq!(
            rollout_line(&silent, Some(PRICE)).unwrap(),
            "5 s · tokens unknown",
            "no usage is not priced as free"
        );
        assert_eq!(
            rollout_details(&r, Some(PRICE)),
            [
                "model: 12 calls: 16k prompt + 2.2k completion tokens",
                "time:  4m 12s wall · 1m 00s waiting for the model · 1m 40s in the sandbox",
                "cost:  $0.004"
            ]
        );
        assert_eq!(
            usage_details(&used(3, 1, 100, 10)),
            "3 calls: 100 prompt + 10 completion tokens (1 call without usage: at least this many)"
        );
    }

    #[test]
    fn the_task_line_adds_the_spec_calls_and_says_what_a_limit_stopped() {
        let mut task = task_row();
        task.spec_usage = used(1, 0, 1_000, 200);
        let rollouts = [
            row(Outcome::Succeeded, 60, used(5, 0, 10_000, 1_000)),
            row(Outcome::LimitReached, 30, used(4, 0, 8_000, 800)),
        ];
        assert_eq!(
            task_line(&task, &rollouts, Some(PRICE)).unwrap(),
            "Total: 21k tokens in 10 model calls · $0.004 · 1m 30s of rollouts · a token limit stopped 1 rollout"
        );
    }
}
