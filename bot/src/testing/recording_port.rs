//! A chat platform in memory: every call the core makes is recorded, and the port refuses what
//! Slack would (editing or reacting to a message that was never posted, the same reaction added
//! twice, a form opened twice from one click, posting into a thread that does not exist).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::chat::{ChatError, ChatPort, Form, OutMessage, Reaction, ThreadMessage, ThreadRef};

/// One call of the port, as the core made it.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Post {
        thread: ThreadRef,
        ts: String,
        message: OutMessage,
    },
    Update {
        thread: ThreadRef,
        ts: String,
        message: OutMessage,
    },
    Ephemeral {
        thread: ThreadRef,
        user: String,
        text: String,
    },
    React {
        thread: ThreadRef,
        ts: String,
        reaction: Reaction,
        on: bool,
    },
    ReadThread {
        thread: ThreadRef,
    },
    OpenForm {
        trigger_id: String,
        form: Form,
    },
    Upload {
        thread: ThreadRef,
        filename: String,
        title: String,
        content: Vec<u8>,
    },
    Permalink {
        thread: ThreadRef,
        ts: String,
    },
    InGroup {
        user: String,
        group: String,
    },
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    /// Threads by `channel/thread`: their messages, oldest first (the bot's posts included).
    threads: HashMap<String, Vec<ThreadMessage>>,
    /// Every message that exists, by `channel/ts`: its latest version (the bot's) or none (a
    /// person's).
    messages: HashMap<String, Option<OutMessage>>,
    /// Reactions on, by message (`channel/ts`).
    reactions: Vec<(String, Reaction)>,
    groups: HashSet<(String, String)>,
    used_triggers: HashSet<String>,
    next_ts: u64,
    /// The calls refused, as `method: reason`.
    refusals: Vec<String>,
}

fn thread_key(thread: &ThreadRef) -> String {
    format!("{}/{}", thread.channel, thread.thread)
}

fn message_key(channel: &str, ts: &str) -> String {
    format!("{channel}/{ts}")
}

fn refused(state: &mut State, method: &'static str, detail: &str) -> ChatError {
    state.refusals.push(format!("{method}: {detail}"));
    ChatError::Api {
        method,
        detail: detail.to_string(),
    }
}

/// The bot's own user id on the recording platform.
pub const BOT_USER: &str = "UBOT";

/// See the module's documentation.
#[derive(Default)]
pub struct RecordingPort {
    state: Mutex<State>,
    /// Woken at every recorded call.
    changed: Notify,
    /// While true, reading a thread waits (after it is recorded) until it is false again.
    reads_held: tokio::sync::watch::Sender<bool>,
}

impl RecordingPort {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, call: Call) {
        self.lock().calls.push(call);
        self.changed.notify_waiters();
    }

    /// A thread people wrote: `(user, text)` pairs, the first being the thread's parent (its
    /// ts is `thread.thread`). Returns the messages' ts, in order.
    pub fn add_thread(&self, thread: &ThreadRef, messages: &[(&str, &str)]) -> Vec<String> {
        let mut state = self.lock();
        let mut stamps = Vec::new();
        for (k, (user, text)) in messages.iter().enumerate() {
            let ts = if k == 0 {
                thread.thread.clone()
            } else {
                format!("{}.{k:04}", thread.thread)
            };
            state
                .messages
                .insert(message_key(&thread.channel, &ts), None);
            state
                .threads
                .entry(thread_key(thread))
                .or_default()
                .push(ThreadMessage {
                    ts: ts.clone(),
                    author: (*user).to_string(),
                    is_bot: false,
                    text: (*text).to_string(),
                    hidden: false,
                });
            stamps.push(ts);
        }
        stamps
    }

    /// A person's reply in an existing thread; its ts.
    pub fn add_reply(&self, thread: &ThreadRef, user: &str, text: &str) -> String {
        let mut state = self.lock();
        state.next_ts += 1;
        let ts = format!("{}.r{:04}", thread.thread, state.next_ts);
        state
            .messages
            .insert(message_key(&thread.channel, &ts), None);
        state
            .threads
            .entry(thread_key(thread))
            .or_default()
            .push(ThreadMessage {
                ts: ts.clone(),
                author: user.to_string(),
                is_bot: false,
                text: text.to_string(),
                hidden: false,
            });
        ts
    }

    /// Holds every later thread read (recorded, then waiting) until [`Self::release_reads`]:
    /// a handler stopped in the middle of a request, before its task is stored.
    pub fn hold_reads(&self) {
        self.reads_held.send_replace(true);
    }

    pub fn release_reads(&self) {
        self.reads_held.send_replace(false);
    }

    /// Makes `user` a member of `group`.
    pub fn add_to_group(&self, user: &str, group: &str) {
        self.lock()
            .groups
            .insert((user.to_string(), group.to_string()));
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Messages posted (first versions), in order.
    pub fn posts(&self) -> Vec<OutMessage> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Post { message, .. } => Some(message),
                _ => None,
            })
            .collect()
    }

    /// The latest version of every message the bot posted, in the order they were posted.
    pub fn shown(&self) -> Vec<(String, OutMessage)> {
        let calls = self.calls();
        let state = self.lock();
        calls
            .iter()
            .filter_map(|c| match c {
                Call::Post { thread, ts, .. } => state
                    .messages
                    .get(&message_key(&thread.channel, ts))
                    .cloned()
                    .flatten()
                    .map(|m| (ts.clone(), m)),
                _ => None,
            })
            .collect()
    }

    /// The texts of what is shown now, for the bot's text messages.
    pub fn shown_texts(&self) -> Vec<String> {
        self.shown()
            .into_iter()
            .filter_map(|(_, m)| match m {
                OutMessage::Text(t) => Some(t),
                _ => None,
            })
            .collect()
    }

    /// What `user` was told privately, in order.
    pub fn ephemerals_to(&self, user: &str) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Ephemeral { user: u, text, .. } if u == user => Some(text),
                _ => None,
            })
            .collect()
    }

    /// The reactions on message `ts` now.
    pub fn reactions_on(&self, ts: &str) -> Vec<Reaction> {
        let mut on: Vec<Reaction> = self
            .lock()
            .reactions
            .iter()
            .filter(|(k, _)| k.ends_with(&format!("/{ts}")))
            .map(|(_, r)| *r)
            .collect();
        on.sort_by_key(|r| format!("{r:?}"));
        on
    }

    /// The calls refused so far (`method: reason`): a test that expects none says so.
    pub fn refusals(&self) -> Vec<String> {
        self.lock().refusals.clone()
    }

    /// Waits until `pred` holds over the calls, for at most `limit`; whether it did.
    pub async fn wait_until(&self, limit: Duration, pred: impl Fn(&[Call]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before the check, so that a call recorded meanwhile wakes it.
            changed.as_mut().enable();
            if pred(&self.lock().calls) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return pred(&self.lock().calls);
            }
        }
    }

    /// How many calls match `pred`.
    pub fn count(&self, pred: impl Fn(&Call) -> bool) -> usize {
        self.calls().iter().filter(|c| pred(c)).count()
    }
}

#[async_trait]
impl ChatPort for RecordingPort {
    async fn post(&self, thread: &ThreadRef, message: &OutMessage) -> Result<String, ChatError> {
        let ts = {
            let mut state = self.lock();
            if !thread.thread.is_empty()
                && !state
                    .messages
                    .contains_key(&message_key(&thread.channel, &thread.thread))
            {
                return Err(refused(&mut state, "chat.postMessage", "thread_not_found"));
            }
            state.next_ts += 1;
            let ts = format!("9000.{:06}", state.next_ts);
            state
                .messages
                .insert(message_key(&thread.channel, &ts), Some(message.clone()));
            let text = match message {
                OutMessage::Text(t) => t.clone(),
                other => format!("{other:?}"),
            };
            if !thread.thread.is_empty() {
                state
                    .threads
                    .entry(thread_key(thread))
                    .or_default()
                    .push(ThreadMessage {
                        ts: ts.clone(),
                        author: BOT_USER.into(),
                        is_bot: true,
                        text,
                        hidden: false,
                    });
            }
            ts
        };
        self.record(Call::Post {
            thread: thread.clone(),
            ts: ts.clone(),
            message: message.clone(),
        });
        Ok(ts)
    }

    async fn update(
        &self,
        thread: &ThreadRef,
        ts: &str,
        message: &OutMessage,
    ) -> Result<(), ChatError> {
        {
            let mut state = self.lock();
            match state.messages.get_mut(&message_key(&thread.channel, ts)) {
                Some(Some(shown)) => *shown = message.clone(),
                Some(None) => {
                    return Err(refused(&mut state, "chat.update", "cant_update_message"));
                }
                None => return Err(refused(&mut state, "chat.update", "message_not_found")),
            }
        }
        self.record(Call::Update {
            thread: thread.clone(),
            ts: ts.to_string(),
            message: message.clone(),
        });
        Ok(())
    }

    async fn ephemeral(&self, thread: &ThreadRef, user: &str, text: &str) -> Result<(), ChatError> {
        if user.is_empty() {
            return Err(refused(
                &mut self.lock(),
                "chat.postEphemeral",
                "user_not_in_channel",
            ));
        }
        self.record(Call::Ephemeral {
            thread: thread.clone(),
            user: user.to_string(),
            text: text.to_string(),
        });
        Ok(())
    }

    async fn react(
        &self,
        thread: &ThreadRef,
        ts: &str,
        reaction: Reaction,
        on: bool,
    ) -> Result<(), ChatError> {
        {
            let mut state = self.lock();
            let key = message_key(&thread.channel, ts);
            if !state.messages.contains_key(&key) {
                return Err(refused(&mut state, "reactions.add", "message_not_found"));
            }
            let entry = (key, reaction);
            let at = state.reactions.iter().position(|r| *r == entry);
            match (on, at) {
                (true, Some(_)) => {
                    return Err(refused(&mut state, "reactions.add", "already_reacted"));
                }
                (true, None) => state.reactions.push(entry),
                (false, Some(at)) => {
                    state.reactions.remove(at);
                }
                (false, None) => {
                    return Err(refused(&mut state, "reactions.remove", "no_reaction"));
                }
            }
        }
        self.record(Call::React {
            thread: thread.clone(),
            ts: ts.to_string(),
            reaction,
            on,
        });
        Ok(())
    }

    async fn read_thread(&self, thread: &ThreadRef) -> Result<Vec<ThreadMessage>, ChatError> {
        self.record(Call::ReadThread {
            thread: thread.clone(),
        });
        let mut held = self.reads_held.subscribe();
        if held.wait_for(|held| !*held).await.is_err() {
            return Err(ChatError::Api {
                method: "conversations.replies",
                detail: "the test port was dropped".into(),
            });
        }
        let mut state = self.lock();
        match state.threads.get(&thread_key(thread)).cloned() {
            Some(messages) => Ok(messages),
            None => Err(refused(
                &mut state,
                "conversations.replies",
                "thread_not_found",
            )),
        }
    }

    async fn open_form(&self, trigger_id: &str, form: &Form) -> Result<(), ChatError> {
        {
            let mut state = self.lock();
            if trigger_id.is_empty() || !state.used_triggers.insert(trigger_id.to_string()) {
                return Err(refused(&mut state, "views.open", "expired_trigger_id"));
            }
        }
        self.record(Call::OpenForm {
            trigger_id: trigger_id.to_string(),
            form: form.clone(),
        });
        Ok(())
    }

    async fn upload(
        &self,
        thread: &ThreadRef,
        filename: &str,
        content: Vec<u8>,
        title: &str,
    ) -> Result<(), ChatError> {
        if content.is_empty() {
            return Err(refused(&mut self.lock(), "files.upload", "no_file_data"));
        }
        self.record(Call::Upload {
            thread: thread.clone(),
            filename: filename.to_string(),
            title: title.to_string(),
            content,
        });
        Ok(())
    }

    async fn permalink(&self, thread: &ThreadRef, ts: &str) -> Option<String> {
        let known = self
            .lock()
            .messages
            .contains_key(&message_key(&thread.channel, ts));
        self.record(Call::Permalink {
            thread: thread.clone(),
            ts: ts.to_string(),
        });
        known.then(|| format!("https://chat.example/{}/p{ts}", thread.channel))
    }

    async fn in_group(&self, user: &str, group: &str) -> Result<bool, ChatError> {
        let member = self
            .lock()
            .groups
            .contains(&(user.to_string(), group.to_string()));
        self.record(Call::InGroup {
            user: user.to_string(),
            group: group.to_string(),
        });
        Ok(member)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread() -> ThreadRef {
        ThreadRef {
            platform: "slack".into(),
            workspace: "T1".into(),
            channel: "C1".into(),
            thread: "100.0001".into(),
        }
    }

    #[tokio::test]
    async fn it_refuses_what_the_platform_refuses() {
        let port = RecordingPort::default();
        let t = thread();
        let text = OutMessage::Text("hi".into());
        // No such thread yet.
        assert!(port.post(&t, &text).await.is_err());
        assert!(port.read_thread(&t).await.is_err());
        let stamps = port.add_thread(&t, &[("U1", "fix this")]);
        let ts = port.post(&t, &text).await.unwrap();
        assert!(port.update(&t, &ts, &text).await.is_ok());
        assert!(port.update(&t, "1.2", &text).await.is_err(), "never posted");
        assert!(
            port.update(&t, &stamps[0], &text).await.is_err(),
            "a person's message"
        );
        port.react(&t, &stamps[0], Reaction::Working, true)
            .await
            .unwrap();
        assert!(
            port.react(&t, &stamps[0], Reaction::Working, true)
                .await
                .is_err()
        );
        port.react(&t, &stamps[0], Reaction::Working, false)
            .await
            .unwrap();
        assert!(
            port.react(&t, &stamps[0], Reaction::Working, false)
                .await
                .is_err()
        );
        let form = Form::Retry {
            task_id: "ab".into(),
        };
        port.open_form("trigger-1", &form).await.unwrap();
        assert!(port.open_form("trigger-1", &form).await.is_err());
        assert_eq!(port.refusals().len(), 7, "{:?}", port.refusals());
        // The thread now holds the bot's post too.
        let read = port.read_thread(&t).await.unwrap();
        assert_eq!(read.len(), 2);
        assert!(read[1].is_bot);
    }
}
