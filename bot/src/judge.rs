//! The judge: one model call that compares rollouts tied on test evidence against the task
//! spec, with their diffs and evidence, and gives each a verdict and a short reason through a
//! forced `judge_rollouts` call (as robust as the spec call: any failure is a [`JudgeError`],
//! and the ranking falls back to its own order and says why). Called from the bot, never from
//! a sandbox.

mod answer;
mod request;

use std::time::Duration;

use threadsmith_runner::ModelClient;
use tokio_util::sync::CancellationToken;

pub use answer::{REASON_CHARS, one_line};
pub use request::Candidate;

use crate::spec::{AskError, TaskSpec, ask_for_tool};
use crate::store::RolloutVerdict;

/// The forced tool's name (scripted models recognise the judge by it).
pub const TOOL: &str = "judge_rollouts";

/// Why there are no verdicts.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum JudgeError {
    /// The endpoint could not be reached or failed (its words are in the log, not here).
    #[error("the model endpoint failed")]
    Unreachable,
    #[error("no answer within {}", seconds(*.0))]
    TimedOut(Duration),
    /// Our words for what was wrong with the answer.
    #[error("its answer could not be used: {0}")]
    Unusable(String),
    #[error("the task was cancelled")]
    Cancelled,
    #[error("no model endpoint is configured")]
    NoModel,
}

impl JudgeError {
    /// The line the ranking's reasons carry.
    pub fn reason_line(&self) -> String {
        match self {
            Self::Unusable(why) => {
                format!("the judge's answer could not be used ({why}); ranked without it")
            }
            _ => format!("the judge could not be asked: {self}; ranked without it"),
        }
    }
}

/// `180 s`, `0.2 s`.
fn seconds(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Asks the judge about `candidates` (at least two, in rollout order): their verdicts in
/// rollout order, one each. At most `limit`, and stopped by `cancel`.
pub async fn ask(
    model: &ModelClient,
    spec: &TaskSpec,
    candidates: &[Candidate<'_>],
    limit: Duration,
    cancel: &CancellationToken,
) -> Result<Vec<RolloutVerdict>, JudgeError> {
    let numbers: Vec<u32> = candidates.iter().map(|c| c.input.index).collect();
    let user = request::message(spec, candidates);
    let call =
        ask_for_tool::<serde_json::Value>(model, request::SYSTEM, user, request::tool(), TOOL, 0.0);
    let args = tokio::select! {
        biased;
        _ = cancel.cancelled() => return Err(JudgeError::Cancelled),
        asked = tokio::time::timeout(limit, call) => match asked {
            Ok(Ok(args)) => args,
            Ok(Err(AskError::Model(why))) => {
                tracing::warn!(error = %why, "the judge's model endpoint failed");
                return Err(JudgeError::Unreachable);
            }
            Ok(Err(AskError::Answer(why))) => {
                tracing::warn!(error = %why, "the judge did not answer with its tool");
                return Err(JudgeError::Unusable(format!("it did not call {TOOL}")));
            }
            Err(_) => return Err(JudgeError::TimedOut(limit)),
        },
    };
    answer::verdicts(&args, &numbers).map_err(|why| {
        tracing::warn!(answer = %args, why = %why, "the judge's answer could not be used");
        JudgeError::Unusable(why)
    })
}
