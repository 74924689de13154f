//! The token limits of one task (`limits.task_tokens`, `limits.daily_tokens`,
//! `limits.user_daily_tokens`), handed to the runner as its [`TokenBudget`]: the runner checks
//! it before each model request of every rollout and tells it what each request used; it
//! never sees the store. The day's use (UTC) is read from the store when the task starts; a
//! task that finds the day's budget spent does not start.
//!
//! Tasks running at once in other processes count once their rollouts end: two tasks started
//! together may together pass a daily limit by what they use meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{TimeZone, Utc};
use threadsmith_runner::usage::compact;
use threadsmith_runner::{BudgetStop, ModelUsage, TokenBudget, TokenUsage};

use crate::config::TokenLimits;
use crate::store::{Store, StoreError};

/// One task's share of the limits.
#[derive(Debug)]
pub struct TaskBudget {
    limits: TokenLimits,
    /// Tokens used today before this task (everyone's, and the requester's).
    day_before: u64,
    user_day_before: u64,
    /// This task's tokens so far: its spec and plan calls, then its rollouts' requests.
    spent: AtomicU64,
}

impl TaskBudget {
    pub fn new(limits: TokenLimits, day_before: u64, user_day_before: u64, spent: u64) -> Self {
        Self {
            limits,
            day_before,
            user_day_before,
            spent: AtomicU64::new(spent),
        }
    }

    /// The budget of a task whose spec and plan used `spec`, from the day's use in the store;
    /// `None` when no token limit is set.
    pub async fn open(
        store: &dyn Store,
        limits: TokenLimits,
        requester: Option<&str>,
        spec: &ModelUsage,
    ) -> Result<Option<Arc<Self>>, StoreError> {
        if !limits.any() {
            return Ok(None);
        }
        let midnight =
            Utc.from_utc_datetime(&Utc::now().date_naive().and_time(chrono::NaiveTime::MIN));
        // The task's own spec calls are stored already: they are this task's, not the day's before.
        let mine = spec.total();
        let day = match limits.daily {
            Some(_) => store.tokens_since(midnight, None).await?,
            None => 0,
        };
        let user_day = match (limits.user_daily, requester) {
            (Some(_), Some(who)) => store.tokens_since(midnight, Some(who)).await?,
            _ => 0,
        };
        Ok(Some(Arc::new(Self::new(
            limits,
            day.saturating_sub(mine),
            user_day.saturating_sub(mine),
            mine,
        ))))
    }

    /// This task's tokens so far.
    pub fn spent(&self) -> u64 {
        self.spent.load(Ordering::Relaxed)
    }
}

/// `used` is at `limit`, or `next` more would pass it.
fn over(used: u64, next: u64, limit: u64) -> bool {
    used >= limit || used.saturating_add(next) > limit
}

impl TokenBudget for TaskBudget {
    fn check(&self, next: u64) -> Result<(), BudgetStop> {
        let spent = self.spent();
        if let Some(limit) = self.limits.task
            && over(spent, next, limit)
        {
            return Err(BudgetStop(format!(
                "the task's token limit ({} tokens, `limits.task_tokens`) was reached: it used {}",
                compact(limit),
                compact(spent)
            )));
        }
        if let Some(limit) = self.limits.user_daily
            && over(self.user_day_before.saturating_add(spent), next, limit)
        {
            return Err(BudgetStop(format!(
                "the requester's daily token limit ({} tokens, `limits.user_daily_tokens`) was reached; it resets at midnight UTC",
                compact(limit)
            )));
        }
        if let Some(limit) = self.limits.daily
            && over(self.day_before.saturating_add(spent), next, limit)
        {
            return Err(BudgetStop(format!(
                "today's token limit for everyone ({} tokens, `limits.daily_tokens`) was reached; it resets at midnight UTC",
                compact(limit)
            )));
        }
        Ok(())
    }

    fn spend(&self, usage: Option<TokenUsage>) {
        if let Some(u) = usage {
            self.spent.fetch_add(u.total(), Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn used(prompt: u64) -> Option<TokenUsage> {
        Some(TokenUsage {
            prompt,
            completion: 0,
        })
    }

    #[test]
    fn the_task_limit_stops_the_request_that_would_pass_it_shared_by_all_rollouts() {
        let b = TaskBudget::new(
            TokenLimits {
                task: Some(10_000),
                ..TokenLimits::default()
            },
            0,
            0,
            1_000,
        );
        assert!(b.check(4_000).is_ok());
        // Two rollouts spend at once.
        b.spend(used(4_000));
        b.spend(used(4_000));
        assert!(b.check(1_000).is_ok());
        let stop = b.check(1_001).unwrap_err().to_string();
        assert_eq!(
            stop,
            "the task's token limit (10k tokens, `limits.task_tokens`) was reached: it used 9k"
        );
        // Unknown usage spends nothing: only measured tokens count.
        b.spend(None);
        assert_eq!(b.spent(), 9_000);
        b.spend(used(1_000));
        assert!(b.check(0).is_err(), "at the limit, no request more");
    }

    #[test]
    fn daily_limits_count_what_the_day_used_before_the_task() {
        let limits = TokenLimits {
            task: None,
            daily: Some(100_000),
            user_daily: Some(20_000),
        };
        let b = TaskBudget::new(limits, 50_000, 19_000, 0);
        assert!(b.check(1_000).is_ok());
        let stop = b.check(1_001).unwrap_err().to_string();
        assert!(
            stop.starts_with("the requester's daily token limit (20k tokens"),
            "{stop}"
        );
        let everyone = TaskBudget::new(limits, 100_000, 0, 0);
        let stop = everyone.check(0).unwrap_err().to_string();
        assert!(
            stop.starts_with("today's token limit for everyone (100k"),
            "{stop}"
        );
    }
}
