//! Pipeline events → status-message updates, and the words for a phase or a wait.

use super::*;

pub(super) enum Update {
    Created,
    Headline(String),
    Rollouts(Vec<u32>),
    Rollout(u32, String),
    Done(String),
}

/// Pipeline events → status updates (the pipeline stored them before sending).
pub struct ChatProgress {
    pub(super) tx: mpsc::UnboundedSender<Update>,
}

fn phase_words(phase: &Phase) -> String {
    match phase {
        Phase::Starting => "starting its sandbox".into(),
        Phase::Setup => "running the setup command".into(),
        Phase::Agent { step: 0 } => "agent starting".into(),
        Phase::Agent { step } => format!("agent step {step}"),
        Phase::CollectingDiff => "collecting its diff".into(),
        Phase::Testing => "running the tests".into(),
    }
}

/// "Queued: …" for a task waiting for a slot.
pub fn waiting_words(ahead: u64, running: u64, limit: Option<u32>) -> String {
    let limit = limit
        .map(|l| format!(" (the limit is {l})"))
        .unwrap_or_default();
    let ahead = match ahead {
        0 => "it is next".to_string(),
        1 => "1 task is ahead of it".to_string(),
        n => format!("{n} tasks are ahead of it"),
    };
    let running = match running {
        1 => "1 rollout is running".to_string(),
        n => format!("{n} rollouts are running"),
    };
    format!("Queued: {running}{limit}; {ahead}. It starts by itself.")
}

impl ProgressSink for ChatProgress {
    fn on_event(&self, event: &TaskEvent<'_>) {
        let update = match event {
            TaskEvent::Created { .. } => Update::Created,
            TaskEvent::Preparing { repo } => Update::Headline(format!("Fetching `{repo}`…")),
            TaskEvent::Started {
                base_ref, rollouts, ..
            } => {
                let _ = self.tx.send(Update::Headline(format!(
                    "Running {} rollouts on `{base_ref}`…",
                    rollouts.len()
                )));
                Update::Rollouts(rollouts.to_vec())
            }
            TaskEvent::Rollout(RolloutEvent::Phase { index, phase }) => {
                Update::Rollout(*index, phase_words(phase))
            }
            TaskEvent::Rollout(RolloutEvent::Command { .. }) => return,
            TaskEvent::Rollout(RolloutEvent::Finished { result }) => {
                Update::Rollout(result.index, result.outcome.label().to_string())
            }
            TaskEvent::Waiting {
                ahead,
                running,
                limit,
            } => {
                // A queued task holds no event slot (the queue limits bound how many wait).
                crate::chat::pace::give_back();
                Update::Headline(waiting_words(*ahead, *running, *limit))
            }
            TaskEvent::Failed { error } => Update::Done(format!("Failed: {error}")),
        };
        let _ = self.tx.send(update);
    }
}

impl Drop for ChatProgress {
    fn drop(&mut self) {
        let _ = self.tx.send(Update::Done(ending::DONE.into()));
    }
}
