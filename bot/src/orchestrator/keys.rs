//! Idempotency keys: every effect in chat (a post, a reaction, an edit's last content), every
//! once-only reservation and every event the orchestrator queues itself is recorded under one
//! of these keys (the `effects` table, claims on a request, the inbox's dedupe key).
//!
//! The rendered strings are the cross-version contract: rows written by an earlier version must
//! still match, so a variant's text never changes (tests below pin each one).

use std::fmt;

use crate::chat::Reaction;

/// One idempotency key; rendered by [`fmt::Display`] (or [`EffectKey::as_key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EffectKey<'a> {
    /// The reply to a message or request (`anchor`: the message's ts, or a plan's anchor).
    Reply { channel: &'a str, anchor: &'a str },
    /// A reaction set (`on`) or removed on a message.
    React {
        channel: &'a str,
        ts: &'a str,
        reaction: Reaction,
        on: bool,
    },
    /// A task's status message.
    Status { channel: &'a str, anchor: &'a str },
    /// A plan's status message.
    PlanStatus { channel: &'a str, anchor: &'a str },
    /// The note that hidden messages were left out of the thread read.
    Withheld { channel: &'a str, anchor: &'a str },
    /// The note that the spec fell back to the thread's text.
    SpecFallback { channel: &'a str, anchor: &'a str },
    /// The note that a request waits behind the thread's running task.
    Queued { channel: &'a str, ts: &'a str },
    /// A queued request handed back to the inbox (an inbox dedupe key).
    Dequeued {
        platform: &'a str,
        channel: &'a str,
        ts: &'a str,
        /// When it was queued (Unix milliseconds).
        queued_at: i64,
    },
    /// A request made by a message, claimed by one worker at a time.
    Request {
        platform: &'a str,
        channel: &'a str,
        ts: &'a str,
    },
    /// The claim of the process making a post under another key.
    Posting(&'a EffectKey<'a>),
    /// The expiry of a question (an inbox dedupe key).
    Expire { question_id: &'a str },
    /// The apology for a handler that panicked on an inbox event.
    Panicked { inbox_id: i64 },
    /// A task's summary message.
    Summary { task_id: &'a str },
    /// What the summary message at `ts` shows now (its hash).
    SummaryShown { task_id: &'a str, ts: &'a str },
    /// A rollout's diff uploaded as a file.
    Upload { task_id: &'a str, rollout: u32 },
    /// The link to a task's summary message.
    Permalink { task_id: &'a str },
    /// The one Retry of a task.
    Retry { task_id: &'a str },
    /// The one start of a plan.
    RunPlan { plan_id: &'a str },
    /// The answer to an approval.
    Approved { task_id: &'a str },
    /// The branch or pull request announced.
    Published { task_id: &'a str },
    /// A publication attempt's failure announced.
    PublishFailed { task_id: &'a str, attempt: &'a str },
    /// The approved patch no longer applies.
    Conflict { task_id: &'a str },
    /// A Cancel click answered.
    Cancelled { task_id: &'a str },
    /// A task left unfinished by a dead worker, reported.
    Interrupted { task_id: &'a str },
}

impl EffectKey<'_> {
    /// The key as stored.
    pub fn as_key(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for EffectKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Reply { channel, anchor } => write!(f, "reply:{channel}:{anchor}"),
            Self::React {
                channel,
                ts,
                reaction,
                on,
            } => write!(f, "react:{channel}:{ts}:{reaction:?}:{on}"),
            Self::Status { channel, anchor } => write!(f, "status:{channel}:{anchor}"),
            Self::PlanStatus { channel, anchor } => write!(f, "plan-status:{channel}:{anchor}"),
            Self::Withheld { channel, anchor } => write!(f, "withheld:{channel}:{anchor}"),
            Self::SpecFallback { channel, anchor } => write!(f, "specfallback:{channel}:{anchor}"),
            Self::Queued { channel, ts } => write!(f, "queued:{channel}:{ts}"),
            Self::Dequeued {
                platform,
                channel,
                ts,
                queued_at,
            } => write!(f, "dequeued:{platform}:{channel}:{ts}:{queued_at}"),
            Self::Request {
                platform,
                channel,
                ts,
            } => write!(f, "request:{platform}:{channel}:{ts}"),
            Self::Posting(key) => write!(f, "posting:{key}"),
            Self::Expire { question_id } => write!(f, "expire:{question_id}"),
            Self::Panicked { inbox_id } => write!(f, "panicked:{inbox_id}"),
            Self::Summary { task_id } => write!(f, "summary:{task_id}"),
            Self::SummaryShown { task_id, ts } => write!(f, "summary-shown:{task_id}:{ts}"),
            Self::Upload { task_id, rollout } => write!(f, "upload:{task_id}:{rollout}"),
            Self::Permalink { task_id } => write!(f, "permalink:{task_id}"),
            Self::Retry { task_id } => write!(f, "retry:{task_id}"),
            Self::RunPlan { plan_id } => write!(f, "runplan:{plan_id}"),
            Self::Approved { task_id } => write!(f, "approved:{task_id}"),
            Self::Published { task_id } => write!(f, "published:{task_id}"),
            Self::PublishFailed { task_id, attempt } => {
                write!(f, "publish-failed:{task_id}:{attempt}")
            }
            Self::Conflict { task_id } => write!(f, "conflict:{task_id}"),
            Self::Cancelled { task_id } => write!(f, "cancelled:{task_id}"),
            Self::Interrupted { task_id } => write!(f, "interrupted:{task_id}"),
        }
    }
}

#[cfg(test)]
mod tests;
