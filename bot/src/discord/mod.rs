//! The Discord front-end: serenity's gateway client turns messages and interactions into
//! [`ChatEvent`]s, and [`DiscordPort`] is the REST side of [`ChatPort`]. Only this module knows
//! Discord's types.
//!
//! Threads: a task lives in a Discord thread. A thread made from a message has that message's
//! id, so a [`ThreadRef`] is `{channel: parent channel, thread: thread id}` whether the thread
//! exists yet or not; the first post into a thread that does not exist yet creates it from its
//! starter message. Every interaction is stored, then acknowledged (deferred) at once; later
//! results are new messages in the thread, never follow-ups on a token that expires.

mod connect;
pub mod content;
pub mod events;
pub mod markdown;
mod pending;
pub mod render;
pub mod rest;

pub use connect::{Running, start};
use pending::Pending;
pub(crate) use pending::TOKEN_LIFETIME;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serenity::all::{
    ChannelId, ChannelType, CreateAllowedMentions, CreateAttachment,
    CreateInteractionResponseFollowup, CreateMessage, CreateThread, EditInteractionResponse,
    EditMessage, GetMessages, Http, HttpBuilder, MessageId, ReactionType,
};
use serenity::builder::Builder;

use crate::chat::{ChatError, ChatPort, Form, OutMessage, Reaction, ThreadMessage, ThreadRef};

/// The most messages read from one thread.
const MAX_THREAD_MESSAGES: usize = 2000;

/// Discord's REST API as a [`ChatPort`].
pub struct DiscordPort {
    http: Arc<Http>,
    /// Through `discord.api_url`: the calls the port repeats, sent by itself (see [`rest`]).
    rest: Option<rest::ProxyRest>,
    /// Ends waits for rate limits when the bot stops.
    stop: tokio_util::sync::CancellationToken,
    /// Interactions of the last 14 minutes, newest last.
    pending: Mutex<Vec<Pending>>,
    /// Roles of members, as their latest interaction showed them.
    roles: Mutex<HashMap<String, Vec<String>>>,
    /// Whether the application may read message content (its flags, see [`content`]): without
    /// it Discord blanks guild messages that do not mention the bot, over REST too.
    message_content: bool,
}

fn api(method: &'static str) -> impl FnOnce(serenity::Error) -> ChatError {
    move |e| {
        if let serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)) = &e
            && r.status_code.as_u16() == 429
        {
            return ChatError::RateLimited;
        }
        ChatError::Api {
            method,
            detail: e.to_string(),
        }
    }
}

fn id(text: &str) -> Result<u64, ChatError> {
    text.parse::<u64>()
        .ok()
        .filter(|n| *n != 0)
        .ok_or_else(|| ChatError::Api {
            method: "id",
            detail: format!("`{text}` is not a Discord id"),
        })
}

fn is_unknown(e: &serenity::Error, code: isize) -> bool {
    matches!(e, serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)) if r.error.code == code)
}

/// Nothing the bot posts can ping anyone.
pub fn no_mentions() -> CreateAllowedMentions {
    CreateAllowedMentions::new()
        .everyone(false)
        .all_users(false)
        .all_roles(false)
        .replied_user(false)
}

fn emoji(r: Reaction) -> ReactionType {
    ReactionType::Unicode(
        match r {
            Reaction::Working => "👀",
            Reaction::Done => "✅",
            Reaction::Untested => "⚪",
            Reaction::Failed => "❌",
        }
        .to_string(),
    )
}

/// The HTTP client: Discord itself, or `api_url` (a proxy, or a fake in tests). Against
/// discord.com serenity's rate limiter waits out Discord's buckets and its 429s; it cannot send
/// through a proxy, so with `api_url` it is off and the port sends the calls it makes most
/// itself, waiting out 429s as Discord asks ([`rest`]).
pub fn http(token: &str, api_url: Option<&str>) -> Http {
    let builder = HttpBuilder::new(token);
    match api_url {
        Some(url) => builder
            .proxy(url.trim_end_matches('/'))
            .ratelimiter_disabled(true)
            .build(),
        None => builder.build(),
    }
}

impl DiscordPort {
    pub fn new(http: Arc<Http>) -> Self {
        let rest = http.proxy.as_deref().and_then(|url| {
            rest::ProxyRest::new(url, http.token())
                .map_err(|e| tracing::error!(error = %e, "could not make the Discord REST client"))
                .ok()
        });
        Self {
            http,
            rest,
            stop: tokio_util::sync::CancellationToken::new(),
            pending: Mutex::default(),
            roles: Mutex::default(),
            message_content: true,
        }
    }

    pub fn http(&self) -> &Arc<Http> {
        &self.http
    }

    /// Waits for rate limits end when `stop` is cancelled.
    pub fn stopping_with(mut self, stop: tokio_util::sync::CancellationToken) -> Self {
        self.stop = stop;
        self
    }

    /// Whether the application may read message content (from its flags at start-up).
    pub fn with_message_content(mut self, enabled: bool) -> Self {
        self.message_content = enabled;
        self
    }

    async fn create_message(
        &self,
        channel: ChannelId,
        m: &CreateMessage,
    ) -> Result<serenity::all::Message, serenity::Error> {
        match &self.rest {
            Some(rest) => {
                let body = serde_json::to_value(m).map_err(serenity::Error::Json)?;
                let path = format!("/channels/{channel}/messages");
                rest.call(Method::POST, &path, Some(&body), &self.stop)
                    .await
            }
            None => channel.send_message(&self.http, m.clone()).await,
        }
    }

    async fn edit_message(
        &self,
        channel: ChannelId,
        message: MessageId,
        m: &EditMessage,
    ) -> Result<(), serenity::Error> {
        match &self.rest {
            Some(rest) => {
                let body = serde_json::to_value(m).map_err(serenity::Error::Json)?;
                let path = format!("/channels/{channel}/messages/{message}");
                rest.call::<serde_json::Value>(Method::PATCH, &path, Some(&body), &self.stop)
                    .await
                    .map(|_| ())
            }
            None => channel
                .edit_message(&self.http, message, m.clone())
                .await
                .map(|_| ()),
        }
    }

    async fn reaction(
        &self,
        channel: ChannelId,
        message: MessageId,
        reaction: Reaction,
        on: bool,
    ) -> Result<(), serenity::Error> {
        match &self.rest {
            Some(rest) => {
                let ReactionType::Unicode(e) = emoji(reaction) else {
                    return Ok(());
                };
                let e: String = url::form_urlencoded::byte_serialize(e.as_bytes()).collect();
                let path = format!("/channels/{channel}/messages/{message}/reactions/{e}/@me");
                let method = if on { Method::PUT } else { Method::DELETE };
                rest.call_empty(method, &path, &self.stop).await
            }
            None if on => {
                channel
                    .create_reaction(&self.http, message, emoji(reaction))
                    .await
            }
            None => {
                channel
                    .delete_reaction(&self.http, message, None, emoji(reaction))
                    .await
            }
        }
    }

    async fn messages_before(
        &self,
        channel: ChannelId,
        before: Option<MessageId>,
    ) -> Result<Vec<serenity::all::Message>, serenity::Error> {
        match &self.rest {
            Some(rest) => {
                let mut path = format!("/channels/{channel}/messages?limit=100");
                if let Some(b) = before {
                    path.push_str(&format!("&before={b}"));
                }
                rest.call(Method::GET, &path, None, &self.stop).await
            }
            None => {
                let mut query = GetMessages::new().limit(100);
                if let Some(b) = before {
                    query = query.before(b);
                }
                channel.messages(&self.http, query).await
            }
        }
    }

    /// Where a message of the thread lives: the starter message (whose id is the thread's) is
    /// in the parent channel, everything else in the thread.
    fn channel_of(thread: &ThreadRef, message: &str) -> String {
        if thread.thread.is_empty() || thread.thread == message {
            thread.channel.clone()
        } else {
            thread.thread.clone()
        }
    }

    async fn send(&self, channel: u64, message: &OutMessage) -> Result<MessageId, serenity::Error> {
        let r = render::render(message);
        let create = CreateMessage::new()
            .content(r.content)
            .embeds(r.embeds)
            .components(r.components)
            .allowed_mentions(no_mentions());
        let m = self
            .create_message(ChannelId::new(channel), &create)
            .await?;
        Ok(m.id)
    }

    /// Makes the thread from its starter message (its id is the thread's).
    async fn open_thread(&self, thread: &ThreadRef) -> Result<(), ChatError> {
        let parent = ChannelId::new(id(&thread.channel)?);
        match parent
            .create_thread_from_message(
                &self.http,
                MessageId::new(id(&thread.thread)?),
                CreateThread::new("threadsmith")
                    .auto_archive_duration(serenity::all::AutoArchiveDuration::OneDay),
            )
            .await
        {
            Ok(_) => Ok(()),
            // Made meanwhile (by us a moment ago, or by a person).
            Err(e) if is_unknown(&e, 160004) => Ok(()),
            Err(e) => Err(api("create thread")(e)),
        }
    }
}

#[async_trait]
impl ChatPort for DiscordPort {
    async fn post(&self, thread: &ThreadRef, message: &OutMessage) -> Result<String, ChatError> {
        if thread.thread.is_empty() {
            // A new top-level message (`/fix <description>`): it answers the slash command.
            let m = self
                .send(id(&thread.channel)?, message)
                .await
                .map_err(api("create message"))?;
            if let Some(p) = self
                .take_actor_reply(None, Some(&thread.channel))
                .or_else(|| self.take_unanswered(&thread.channel))
            {
                let link = format!(
                    "Started: https://discord.com/channels/{}/{}/{}",
                    thread.workspace, thread.channel, m
                );
                let _ = EditInteractionResponse::new()
                    .content(link)
                    .allowed_mentions(no_mentions())
                    .execute(&self.http, &p.token)
                    .await;
            }
            return Ok(m.to_string());
        }
        let target = id(&thread.thread)?;
        match self.send(target, message).await {
            Ok(m) => Ok(m.to_string()),
            // The thread does not exist yet: make it from its starter message, then post.
            Err(e) if is_unknown(&e, 10003) => {
                self.open_thread(thread).await?;
                self.send(target, message)
                    .await
                    .map(|m| m.to_string())
                    .map_err(api("create message"))
            }
            Err(e) => Err(api("create message")(e)),
        }
    }

    async fn update(
        &self,
        thread: &ThreadRef,
        ts: &str,
        message: &OutMessage,
    ) -> Result<(), ChatError> {
        let r = render::render(message);
        let channel = ChannelId::new(id(&Self::channel_of(thread, ts))?);
        let message = MessageId::new(id(ts)?);
        let edit = EditMessage::new()
            .content(r.content)
            .embeds(r.embeds)
            .components(r.components)
            .allowed_mentions(no_mentions());
        self.edit_message(channel, message, &edit)
            .await
            .map_err(api("edit message"))?;
        Ok(())
    }

    async fn ephemeral(&self, thread: &ThreadRef, user: &str, text: &str) -> Result<(), ChatError> {
        let text = render::render(&OutMessage::Text(text.to_string())).content;
        let channel = if thread.thread.is_empty() {
            None
        } else {
            Some(thread.thread.as_str())
        };
        let pending = self
            .take_actor_reply(Some(user), None)
            .or_else(|| self.take_pending(user, channel))
            .or_else(|| self.take_pending(user, Some(&thread.channel)))
            .or_else(|| self.take_pending(user, None));
        match pending {
            Some(p) if p.unanswered => {
                EditInteractionResponse::new()
                    .content(text)
                    .allowed_mentions(no_mentions())
                    .execute(&self.http, &p.token)
                    .await
                    .map_err(api("edit interaction response"))?;
            }
            Some(p) => {
                CreateInteractionResponseFollowup::new()
                    .content(text)
                    .ephemeral(true)
                    .allowed_mentions(no_mentions())
                    .execute(&self.http, (None, &p.token))
                    .await
                    .map_err(api("followup"))?;
            }
            // No interaction to answer privately (a replayed event after a restart): say it in
            // the thread, addressed to them (no ping).
            None => {
                let m = OutMessage::Text(format!(
                    "{} {text}",
                    crate::chat::markdown::user_mention(user)
                ));
                self.post(thread, &m).await?;
            }
        }
        Ok(())
    }

    async fn react(
        &self,
        thread: &ThreadRef,
        ts: &str,
        reaction: Reaction,
        on: bool,
    ) -> Result<(), ChatError> {
        let channel = ChannelId::new(id(&Self::channel_of(thread, ts))?);
        let message = MessageId::new(id(ts)?);
        self.reaction(channel, message, reaction, on)
            .await
            .map_err(api(if on {
                "create reaction"
            } else {
                "delete reaction"
            }))
    }

    async fn read_thread(&self, thread: &ThreadRef) -> Result<Vec<ThreadMessage>, ChatError> {
        let mut messages = Vec::new();
        // The thread's own messages, newest first, page by page.
        if !thread.thread.is_empty() {
            let channel = ChannelId::new(id(&thread.thread)?);
            let mut before: Option<MessageId> = None;
            loop {
                let page = match self.messages_before(channel, before).await {
                    Ok(p) => p,
                    // No thread yet: the starter message is all there is.
                    Err(e) if is_unknown(&e, 10003) => Vec::new(),
                    Err(e) => return Err(api("get messages")(e)),
                };
                let n = page.len();
                before = page.last().map(|m| m.id);
                messages.extend(page);
                if n < 100 || messages.len() >= MAX_THREAD_MESSAGES {
                    break;
                }
            }
            // The starter message lives in the parent channel, under the thread's id.
            if let Ok(parent) = id(&thread.channel)
                && let Ok(starter) = ChannelId::new(parent)
                    .message(&self.http, MessageId::new(id(&thread.thread)?))
                    .await
                && !messages.iter().any(|m| m.id == starter.id)
            {
                messages.push(starter);
            }
        }
        messages.sort_by_key(|m| m.id);
        Ok(messages
            .iter()
            .map(|m| {
                let mut read = events::thread_message(m);
                read.hidden = !self.message_content && content::withheld(m);
                read
            })
            .collect())
    }

    fn hidden_messages_notice(&self) -> String {
        content::NOTICE.into()
    }

    async fn thread_title(&self, thread: &ThreadRef) -> Option<String> {
        let channel = ChannelId::new(id(&thread.thread).ok()?);
        match self.http.get_channel(channel).await {
            Ok(serenity::all::Channel::Guild(c)) => Some(c.name),
            Ok(_) => None,
            // No thread yet (the first post creates it), or unreadable: no title.
            Err(e) => {
                tracing::debug!(error = %e, "could not read the thread's name");
                None
            }
        }
    }

    async fn open_form(&self, _trigger_id: &str, _form: &Form) -> Result<(), ChatError> {
        // Discord shows a form only as the immediate answer to a click; the adapter did that
        // when the button was pressed.
        Ok(())
    }

    async fn upload(
        &self,
        thread: &ThreadRef,
        filename: &str,
        content: Vec<u8>,
        title: &str,
    ) -> Result<(), ChatError> {
        let channel = if thread.thread.is_empty() {
            &thread.channel
        } else {
            &thread.thread
        };
        ChannelId::new(id(channel)?)
            .send_message(
                &self.http,
                CreateMessage::new()
                    .content(render::render(&OutMessage::Text(title.to_string())).content)
                    .add_file(CreateAttachment::bytes(content, filename))
                    .allowed_mentions(no_mentions()),
            )
            .await
            .map_err(api("upload"))?;
        Ok(())
    }

    async fn permalink(&self, thread: &ThreadRef, ts: &str) -> Option<String> {
        Some(format!(
            "https://discord.com/channels/{}/{}/{ts}",
            thread.workspace,
            Self::channel_of(thread, ts)
        ))
    }

    async fn linked_thread(&self, link: ThreadRef) -> ThreadRef {
        // A link to a message inside a thread names the thread's channel: the task's thread is
        // that thread, in its parent channel.
        match id(&link.channel) {
            Ok(c) => match self.thread_parent(ChannelId::new(c)).await {
                Some(parent) => ThreadRef {
                    channel: parent.to_string(),
                    thread: link.channel,
                    ..link
                },
                None => link,
            },
            Err(_) => link,
        }
    }

    async fn in_group(&self, user: &str, group: &str) -> Result<bool, ChatError> {
        // The roles the event being handled showed (stored with it: any process knows them).
        if let Some(a) = crate::chat::actor()
            && a.user == user
            && a.groups.iter().any(|g| g == group)
        {
            return Ok(true);
        }
        Ok(self
            .roles
            .lock()
            .ok()
            .and_then(|r| r.get(user).map(|roles| roles.iter().any(|x| x == group)))
            .unwrap_or(false))
    }
}

impl DiscordPort {
    /// Whether a channel is a thread, and its parent.
    pub async fn thread_parent(&self, channel: ChannelId) -> Option<ChannelId> {
        match self.http.get_channel(channel).await {
            Ok(serenity::all::Channel::Guild(c))
                if matches!(
                    c.kind,
                    ChannelType::PublicThread
                        | ChannelType::PrivateThread
                        | ChannelType::NewsThread
                ) =>
            {
                c.parent_id
            }
            _ => None,
        }
    }
}
