//! What a rollout cost: the model's tokens (as its endpoint reported them in each response's
//! `usage`), its calls, and the seam through which the bot's token limits stop a rollout
//! ([`TokenBudget`]: the runner holds no store, it is handed a budget).
//!
//! Some OpenAI-compatible endpoints omit `usage`: such a call is counted as a call whose tokens
//! are unknown, never as zero tokens.

use std::time::Duration;

/// One response's `usage`: prompt (input) and completion (output) tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    pub prompt: u64,
    pub completion: u64,
}

impl TokenUsage {
    pub fn total(&self) -> u64 {
        self.prompt.saturating_add(self.completion)
    }
}

/// The model's use, summed over requests (a rollout's, or a task's spec and plan calls).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModelUsage {
    /// Requests answered by the model.
    pub calls: u32,
    /// Of those, the ones whose response carried no `usage` (their tokens are unknown).
    #[serde(default)]
    pub unmeasured: u32,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl ModelUsage {
    /// Counts one answered request and what its response said it used.
    pub fn record(&mut self, usage: Option<TokenUsage>) {
        self.calls = self.calls.saturating_add(1);
        match usage {
            Some(u) => {
                self.prompt_tokens = self.prompt_tokens.saturating_add(u.prompt);
                self.completion_tokens = self.completion_tokens.saturating_add(u.completion);
            }
            None => self.unmeasured = self.unmeasured.saturating_add(1),
        }
    }

    pub fn add(&mut self, other: &ModelUsage) {
        self.calls = self.calls.saturating_add(other.calls);
        self.unmeasured = self.unmeasured.saturating_add(other.unmeasured);
        self.prompt_tokens = self.prompt_tokens.saturating_add(other.prompt_tokens);
        self.completion_tokens = self
            .completion_tokens
            .saturating_add(other.completion_tokens);
    }

    /// Tokens measured (prompt + completion).
    pub fn total(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }

    /// No call at all.
    pub fn is_empty(&self) -> bool {
        self.calls == 0
    }

    /// How much is known: every call measured, some, or none.
    pub fn known(&self) -> Known {
        if self.unmeasured == 0 {
            Known::All
        } else if self.unmeasured < self.calls {
            Known::Some
        } else {
            Known::None
        }
    }

    /// `18.2k tokens`, `at least 1.2k tokens` (some calls unmeasured), `tokens unknown` (none
    /// measured), `no model call`.
    pub fn tokens_words(&self) -> String {
        if self.is_empty() {
            return "no model call".into();
        }
        match self.known() {
            Known::All => format!("{} tokens", compact(self.total())),
            Known::Some => format!("at least {} tokens", compact(self.total())),
            Known::None => "tokens unknown".into(),
        }
    }
}

/// Whether a [`ModelUsage`]'s tokens are all measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    All,
    Some,
    None,
}

/// `950`, `18.2k`, `1.35M`.
pub fn compact(n: u64) -> String {
    match n {
        0..=999 => n.to_string(),
        1_000..=999_999 => trim(format!("{:.1}", n as f64 / 1e3)) + "k",
        _ => trim(format!("{:.2}", n as f64 / 1e6)) + "M",
    }
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// `950 ms`, `42 s`, `4m 12s`, `1h 03m`.
pub fn duration_words(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{} ms", d.as_millis()),
        1..=59 => format!("{s} s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
    }
}

/// What a rollout cost besides its wall time (`finished_at - started_at`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RolloutCost {
    pub model: ModelUsage,
    /// Time spent waiting for the model's answers.
    pub model_time: Duration,
    /// Time spent in the sandbox: starting it, the copy, every command (setup, the agent's
    /// tools, the tests) and reading the change back.
    pub sandbox_time: Duration,
}

/// Counts what a model client's answered requests used (the spec and plan calls, made
/// outside any rollout); clones share the count.
#[derive(Debug, Clone, Default)]
pub struct UsageMeter(std::sync::Arc<std::sync::Mutex<ModelUsage>>);

impl UsageMeter {
    pub fn record(&self, usage: Option<TokenUsage>) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .record(usage);
    }

    pub fn get(&self) -> ModelUsage {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Why a limit stopped a rollout, in a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BudgetStop(pub String);

/// The token limits a task's rollouts share, checked before each model request and told what
/// each request used. Implemented by the bot (which knows the limits and the day's use);
/// shared by a task's rollouts, which run at once.
pub trait TokenBudget: Send + Sync + std::fmt::Debug {
    /// Before a model request expected to use about `next` tokens: `Err` when it would go past
    /// a limit.
    fn check(&self, next: u64) -> Result<(), BudgetStop>;
    /// After a request: what it used (`None` when the endpoint did not say).
    fn spend(&self, usage: Option<TokenUsage>);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_sums_and_says_what_is_unknown() {
        let mut u = ModelUsage::default();
        assert_eq!(u.tokens_words(), "no model call");
        u.record(Some(TokenUsage {
            prompt: 1200,
            completion: 34,
        }));
        u.record(Some(TokenUsage {
            prompt: 16_000,
            completion: 966,
        }));
        assert_eq!(
            (u.calls, u.prompt_tokens, u.completion_tokens),
            (2, 17_200, 1000)
        );
        assert_eq!(u.tokens_words(), "18.2k tokens");
        u.record(None);
        assert_eq!(u.known(), Known::Some);
        assert_eq!(u.tokens_words(), "at least 18.2k tokens");
        let mut none = ModelUsage::default();
        none.record(None);
        assert_eq!(none.tokens_words(), "tokens unknown");
        let mut sum = u;
        sum.add(&none);
        assert_eq!((sum.calls, sum.unmeasured, sum.total()), (4, 2, 18_200));
    }

    #[test]
    fn numbers_and_times_are_compact() {
        assert_eq!(compact(950), "950");
        assert_eq!(compact(1000), "1k");
        assert_eq!(compact(18_240), "18.2k");
        assert_eq!(compact(1_350_000), "1.35M");
        assert_eq!(duration_words(Duration::from_millis(950)), "950 ms");
        assert_eq!(duration_words(Duration::from_secs(42)), "42 s");
        assert_eq!(duration_words(Duration::from_secs(252)), "4m 12s");
        assert_eq!(duration_words(Duration::from_secs(3780)), "1h 03m");
    }
}
