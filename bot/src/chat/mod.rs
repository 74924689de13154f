//! The chat core: what the front-ends (Slack, Discord) have in common. Nothing here knows a
//! Slack or Discord type; adapters convert at the edge into [`ChatEvent`]s, and render the
//! views of [`OutMessage`] into their own formats.

pub mod commands;
mod connection;
pub use connection::{Connection, ConnectionState};
pub(crate) mod key_locks;
pub mod markdown;
pub mod pace;
mod platform;
pub use platform::Platform;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A conversation thread on a chat platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ThreadRef {
    /// `slack` or `discord`.
    pub platform: String,
    /// Slack team id or Discord guild id.
    pub workspace: String,
    pub channel: String,
    /// The thread's parent message (Slack `thread_ts`) or thread channel (Discord).
    pub thread: String,
}

/// How a trigger reached the bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    Mention,
    Phrase,
    Shortcut,
    Slash,
}

/// Everything that reaches the bot from chat, in its own terms. Stored in the inbox (as JSON)
/// before it is acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChatEvent {
    /// A message asking the bot for something ("@threadsmith fix this").
    Trigger {
        thread: ThreadRef,
        message_ts: String,
        user: String,
        text: String,
        via: Via,
    },
    /// A slash command in a channel (`/fix …`).
    Slash {
        platform: String,
        workspace: String,
        channel: String,
        user: String,
        text: String,
    },
    /// A button on one of the bot's messages.
    Button {
        thread: ThreadRef,
        message_ts: String,
        user: String,
        action: ButtonAction,
        /// For opening a form (Slack `trigger_id`).
        trigger_id: Option<String>,
    },
    /// The Retry form was submitted.
    RetrySubmitted {
        task_id: String,
        user: String,
        feedback: String,
        /// The form's "start from rollout" field as typed: empty for from scratch.
        #[serde(default)]
        from: String,
    },
    /// The requester answered "which repository?".
    RepoChosen {
        question_id: String,
        thread: ThreadRef,
        user: String,
        repo: String,
    },
    /// A message to the bot outside any server or workspace channel (a Discord DM): answered
    /// that the bot works in servers only.
    DirectMessage {
        platform: String,
        channel: String,
        message_ts: String,
        user: String,
    },
    /// A question was not answered in time (enqueued by the timer).
    QuestionExpired { question_id: String },
    /// The Revise form of a plan was submitted.
    PlanRevision {
        plan_id: String,
        user: String,
        feedback: String,
    },
}

/// What the platform showed about the person behind an event, stored with the event (next to
/// it in the inbox) so that whichever process handles the event can act on it: several
/// processes share one queue, and the one that received an event may not be the one that
/// handles it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Actor {
    pub user: String,
    /// The groups the person is in as the event showed them (Discord roles); empty when the
    /// platform does not say (Slack: asked when needed).
    #[serde(default)]
    pub groups: Vec<String>,
    /// How to answer the person privately, when the platform needs the event for that.
    #[serde(default)]
    pub reply: Option<PrivateReply>,
}

/// A private answer's handle (a Discord interaction token): opaque to the core.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrivateReply {
    pub handle: String,
    /// The channel the event came from.
    pub channel: String,
    /// A command whose placeholder ("thinking…") is still to be answered.
    pub unanswered: bool,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

tokio::task_local! {
    /// The person behind the event being handled, as stored with it.
    static ACTOR: std::cell::RefCell<Option<Actor>>;
}

/// Runs `f` (the handling of one event) with the event's [`Actor`] at hand for the adapters.
pub async fn with_actor<F: std::future::Future>(actor: Option<Actor>, f: F) -> F::Output {
    ACTOR.scope(std::cell::RefCell::new(actor), f).await
}

/// The person behind the event being handled, if the event said (outside an event's handling,
/// e.g. in a task spawned from it, there is none and the adapter falls back on what it knows).
pub fn actor() -> Option<Actor> {
    ACTOR.try_with(|a| a.borrow().clone()).ok().flatten()
}

/// Notes that the event's placeholder has been answered (later answers are follow-ups).
pub fn actor_answered() {
    ACTOR
        .try_with(|a| {
            if let Some(r) = a.borrow_mut().as_mut().and_then(|x| x.reply.as_mut()) {
                r.unanswered = false;
            }
        })
        // Outside an event's handling there is nothing to note.
        .unwrap_or_default()
}

/// What a button does. Encoded in the button itself so that it works after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ButtonAction {
    Approve { task_id: String, rollout: u32 },
    Retry { task_id: String },
    Cancel { task_id: String },
    RunPlan { plan_id: String },
    RevisePlan { plan_id: String },
}

impl ButtonAction {
    /// The button's action id.
    pub fn id(&self) -> &'static str {
        match self {
            ButtonAction::Approve { .. } => "approve",
            ButtonAction::Retry { .. } => "retry",
            ButtonAction::Cancel { .. } => "cancel",
            ButtonAction::RunPlan { .. } => "run_plan",
            ButtonAction::RevisePlan { .. } => "revise_plan",
        }
    }

    /// The button's value: the task, and the rollout for Approve.
    pub fn value(&self) -> String {
        match self {
            ButtonAction::Approve { task_id, rollout } => format!("{task_id}:{rollout}"),
            ButtonAction::Retry { task_id } | ButtonAction::Cancel { task_id } => task_id.clone(),
            ButtonAction::RunPlan { plan_id } | ButtonAction::RevisePlan { plan_id } => {
                plan_id.clone()
            }
        }
    }

    /// Reads a button back from its action id and value.
    pub fn parse(id: &str, value: &str) -> Option<Self> {
        let task_ok = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_hexdigit());
        match id {
            "approve" => {
                let (task, k) = value.split_once(':')?;
                task_ok(task).then_some(())?;
                Some(ButtonAction::Approve {
                    task_id: task.to_string(),
                    rollout: k.parse().ok()?,
                })
            }
            "retry" if task_ok(value) => Some(ButtonAction::Retry {
                task_id: value.to_string(),
            }),
            "cancel" if task_ok(value) => Some(ButtonAction::Cancel {
                task_id: value.to_string(),
            }),
            "run_plan" if task_ok(value) => Some(ButtonAction::RunPlan {
                plan_id: value.to_string(),
            }),
            "revise_plan" if task_ok(value) => Some(ButtonAction::RevisePlan {
                plan_id: value.to_string(),
            }),
            _ => None,
        }
    }
}

/// A message of the thread, as read for a task spec.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadMessage {
    pub ts: String,
    pub author: String,
    pub is_bot: bool,
    /// Plain Markdown (mentions resolved, entities unescaped).
    pub text: String,
    /// The platform withheld the message's text from the bot (Discord without the Message
    /// Content intent): `text` is empty, and says nothing about what was written.
    pub hidden: bool,
}

/// Reactions the bot puts on the triggering message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaction {
    Working,
    Done,
    /// The best rollout changed the code, but nothing tested it: neither a success nor a
    /// failure.
    Untested,
    Failed,
}

/// The live status of a task (one message, edited as rollouts advance).
#[derive(Debug, Clone, PartialEq)]
pub struct StatusView {
    pub task_id: String,
    pub title: String,
    pub headline: String,
    pub rollouts: Vec<(u32, String)>,
    pub running: bool,
}

/// How a rollout ended, as a summary marks it: a rollout that changed the code without tests
/// to check it is neither a success nor a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutKind {
    /// It changed the code and the tests pass.
    Succeeded,
    /// It changed the code, but the repository has no test command.
    Untested,
    /// The tests fail, or it gave up, timed out, broke or was cancelled.
    Failed,
}

/// One rollout in a summary.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutLine {
    pub index: u32,
    pub rank: u32,
    pub outcome: String,
    pub kind: RolloutKind,
    pub tests: Option<bool>,
    pub added: u64,
    pub removed: u64,
    pub files: u64,
    /// The agent's summary (Markdown from a model: untrusted) or why it ended.
    pub summary: String,
    pub diff_link: Option<String>,
    pub network: Option<String>,
    /// The ranking's deciding evidence in a few words, when it says more than the test result
    /// ("passes 3/3 reproduction tests; judge: keeps the output format"). Partly written by a
    /// model: untrusted, shown through [`RolloutLine::why`].
    pub headline: Option<String>,
    /// Its time, tokens and cost when priced (`4m 12s · 18.2k tokens · $0.042`).
    pub cost: Option<String>,
}

/// A headline at most, in characters.
pub const HEADLINE_CHARS: usize = 200;

impl RolloutLine {
    /// The headline as the core's Markdown, shown literally (no ping, link or markup), one
    /// line of at most [`HEADLINE_CHARS`] characters.
    pub fn why(&self) -> Option<String> {
        self.headline
            .as_deref()
            .filter(|h| !h.trim().is_empty())
            .map(|h| markdown::literal(&markdown::truncate(h.trim(), HEADLINE_CHARS, "…")))
    }

    /// `tests pass`, `tests fail` or `tests not run`.
    pub fn tests_label(&self) -> &'static str {
        match self.tests {
            Some(true) => "tests pass",
            Some(false) => "tests fail",
            None => "tests not run",
        }
    }

    /// `+a −r in n file(s)`.
    pub fn diffstat(&self) -> String {
        format!(
            "+{} −{} in {} file{}",
            self.added,
            self.removed,
            self.files,
            if self.files == 1 { "" } else { "s" }
        )
    }
}

/// The summary of a finished task.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SummaryView {
    pub task_id: String,
    pub title: String,
    pub rollouts: Vec<RolloutLine>,
    /// Who approved which rollout.
    pub approved: Option<(u32, String)>,
    /// What the approval produced: the pull request (or branch) link and its label.
    pub published: Option<(String, String)>,
    /// A link to the summary of the task this one retries.
    pub previous: Option<String>,
    pub feedback: Option<String>,
    pub error: Option<String>,
    /// The task that retries this one (its short id): its one Retry is used, so none is offered.
    pub retried: Option<String>,
    /// The task's total: tokens, calls, cost when priced, rollout time, limits that stopped it.
    pub cost: Option<String>,
    /// Where this task stands among its follow-up rounds (Markdown), when it has any.
    pub round: Option<String>,
}

/// A proposed plan, with Run it and Revise.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanView {
    pub plan_id: String,
    pub title: String,
    /// Markdown from the model: untrusted.
    pub plan: String,
    pub repo: String,
}

/// "Which repository?", answerable by the requester only.
#[derive(Debug, Clone, PartialEq)]
pub struct RepoQuestionView {
    pub question_id: String,
    pub requester: String,
    pub repos: Vec<String>,
}

/// The action id of the repository menu; its options' values are `<question id>|<repo>`.
pub const CHOOSE_REPO: &str = "choose_repo";

/// A form asking for optional feedback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Form {
    Retry { task_id: String },
    RevisePlan { plan_id: String },
}

/// What the bot posts.
#[derive(Debug, Clone, PartialEq)]
pub enum OutMessage {
    Status(StatusView),
    Summary(SummaryView),
    Plan(PlanView),
    RepoQuestion(RepoQuestionView),
    /// Markdown text.
    Text(String),
    /// Markdown text with a Retry… button for the task (an approval that could not be pushed).
    RetryOffer {
        task_id: String,
        text: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("the chat platform refused the call {method}: {detail}")]
    Api {
        method: &'static str,
        detail: String,
    },
    #[error("the chat platform is rate-limiting us")]
    RateLimited,
}

/// What the core asks of a chat platform.
#[async_trait]
pub trait ChatPort: Send + Sync {
    /// Posts in the thread; returns the message's id (`ts`).
    async fn post(&self, thread: &ThreadRef, message: &OutMessage) -> Result<String, ChatError>;
    async fn update(
        &self,
        thread: &ThreadRef,
        ts: &str,
        message: &OutMessage,
    ) -> Result<(), ChatError>;
    /// A message only `user` sees.
    async fn ephemeral(&self, thread: &ThreadRef, user: &str, text: &str) -> Result<(), ChatError>;
    async fn react(
        &self,
        thread: &ThreadRef,
        ts: &str,
        reaction: Reaction,
        on: bool,
    ) -> Result<(), ChatError>;
    /// The whole thread, oldest first.
    async fn read_thread(&self, thread: &ThreadRef) -> Result<Vec<ThreadMessage>, ChatError>;
    /// What to tell a thread whose messages the platform withheld (some read with `hidden`):
    /// why, and how the operator can let the bot read them. Markdown.
    fn hidden_messages_notice(&self) -> String {
        "I could read only part of this thread: the chat platform withheld the other messages from me.".into()
    }
    /// The thread's own name, where the platform names threads (Discord); plain text.
    async fn thread_title(&self, _thread: &ThreadRef) -> Option<String> {
        None
    }
    /// Opens a feedback form for the person who clicked.
    async fn open_form(&self, trigger_id: &str, form: &Form) -> Result<(), ChatError>;
    /// Attaches a file to the thread.
    async fn upload(
        &self,
        thread: &ThreadRef,
        filename: &str,
        content: Vec<u8>,
        title: &str,
    ) -> Result<(), ChatError>;
    /// A link to a message, if the platform has one.
    async fn permalink(&self, thread: &ThreadRef, ts: &str) -> Option<String>;
    /// Whether `user` is in the group (a Slack user group, a Discord role).
    async fn in_group(&self, user: &str, group: &str) -> Result<bool, ChatError>;
    /// The thread a pasted message link points into, as the core names threads: a link gives
    /// `{channel, thread: message}`, and where that channel is itself a thread (Discord) the
    /// thread is that channel in its parent. Slack's links need nothing.
    async fn linked_thread(&self, link: ThreadRef) -> ThreadRef {
        link
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons_round_trip_through_their_id_and_value() {
        for b in [
            ButtonAction::Approve {
                task_id: "0a1b".into(),
                rollout: 3,
            },
            ButtonAction::Retry {
                task_id: "0a1b".into(),
            },
            ButtonAction::Cancel {
                task_id: "0a1b".into(),
            },
            ButtonAction::RunPlan {
                plan_id: "0c".into(),
            },
            ButtonAction::RevisePlan {
                plan_id: "0c".into(),
            },
        ] {
            assert_eq!(ButtonAction::parse(b.id(), &b.value()), Some(b));
        }
        assert_eq!(ButtonAction::parse("approve", "x:1"), None);
        assert_eq!(ButtonAction::parse("approve", "0a1b:x"), None);
        assert_eq!(ButtonAction::parse("delete", "0a1b"), None);
    }
}
