//! The Slack front-end: Socket Mode (default) or the HTTP Events API, and the Web API calls
//! behind [`ChatPort`]. Only this module knows Slack's types.

pub mod blocks;
pub mod events;
pub mod http;
pub mod pace;
pub mod socket;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use slack_morphism::prelude::*;

use crate::chat::key_locks::KeyLocks;
use crate::chat::markdown::slack_to_markdown;
use crate::chat::{ChatError, ChatPort, Form, OutMessage, Reaction, ThreadMessage, ThreadRef};

/// Who the bot is in the workspace (from `auth.test`).
#[derive(Debug, Clone)]
pub struct Identity {
    pub user_id: String,
    pub team_id: String,
}

/// Slack's Web API as a [`ChatPort`].
pub struct SlackPort {
    client: Arc<SlackHyperClient>,
    token: SlackApiToken,
    names: Mutex<HashMap<String, String>>,
    /// `chat.postMessage`'s pace, per channel.
    pacer: pace::ChannelPacer,
    /// One call at a time per method and channel (see [`pace`]).
    lanes: KeyLocks,
    /// Turns taken while a rate limit is spent.
    gates: pace::Gates,
}

/// A client for Slack's Web API; `api_url` points it elsewhere (a fake, in tests).
pub fn client(api_url: Option<&str>) -> anyhow::Result<Arc<SlackHyperClient>> {
    let connector = match api_url {
        None => SlackClientHyperConnector::new()?,
        Some(url) => {
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_native_roots()?
                .https_or_http()
                .enable_http1()
                .enable_http2()
                .build();
            SlackClientHyperConnector::with_connector(https)
                .with_slack_api_url(url.trim_end_matches('/'))
        }
    };
    // No client-side rate control: slack-morphism's spaces all chat.postMessage calls of a
    // workspace one second apart, whatever the channel. `pace` paces per channel and waits
    // out each 429 in the call that got it.
    Ok(Arc::new(SlackClient::new(connector)))
}

fn content(message: &OutMessage) -> SlackMessageContent {
    let (text, blocks) = blocks::render(message);
    let blocks: Vec<SlackBlock> = blocks
        .into_iter()
        .filter_map(|b| serde_json::from_value(b).ok())
        .collect();
    SlackMessageContent::new()
        .with_text(text)
        .with_blocks(blocks)
}

fn emoji(r: Reaction) -> &'static str {
    match r {
        Reaction::Working => "eyes",
        Reaction::Done => "white_check_mark",
        Reaction::Untested => "white_circle",
        Reaction::Failed => "x",
    }
}

impl SlackPort {
    /// Checks the token with `auth.test`.
    pub async fn connect(
        client: Arc<SlackHyperClient>,
        bot_token: &str,
    ) -> anyhow::Result<(Self, Identity)> {
        let token = SlackApiToken::new(bot_token.into());
        let auth = client
            .open_session(&token)
            .auth_test()
            .await
            .map_err(|e| anyhow::anyhow!("Slack refused the bot token (auth.test): {e}"))?;
        let identity = Identity {
            user_id: auth.user_id.to_string(),
            team_id: auth.team_id.to_string(),
        };
        Ok((
            Self {
                client,
                token,
                names: Mutex::default(),
                pacer: pace::ChannelPacer::default(),
                lanes: KeyLocks::default(),
                gates: pace::Gates::default(),
            },
            identity,
        ))
    }

    /// The calls of one method in one channel go one at a time, in order: when the method's
    /// tier is spent, a flooded channel then has one call waiting, like every other channel,
    /// instead of all of its calls crowding the others out at each `Retry-After`.
    async fn lane(&self, method: &str, channel: &str) -> tokio::sync::OwnedMutexGuard<()> {
        self.lanes
            .lock_patiently(&format!("{method}:{channel}"))
            .await
    }

    async fn name_of(&self, user: &str) -> String {
        if let Some(n) = self.names.lock().ok().and_then(|n| n.get(user).cloned()) {
            return n;
        }
        let session = self.client.open_session(&self.token);
        let req = SlackApiUsersInfoRequest::new(user.into());
        let (s, r) = (&session, &req);
        let name = match self
            .gates
            .retrying("users.info", "users.info", move || s.users_info(r))
            .await
        {
            Ok(info) => {
                let u = info.user;
                u.profile
                    .as_ref()
                    .and_then(|p| p.display_name.clone().filter(|n| !n.is_empty()))
                    .or(u.real_name.clone())
                    .or(u.name.clone())
                    .unwrap_or_else(|| user.to_string())
            }
            Err(_) => user.to_string(),
        };
        if let Ok(mut n) = self.names.lock() {
            n.insert(user.to_string(), name.clone());
        }
        name
    }
}

/// User ids mentioned as `<@U…>` in a text.
fn mentioned(text: &str) -> Vec<String> {
    text.split("<@")
        .skip(1)
        .filter_map(|rest| {
            let end = rest.find(['>', '|'])?;
            Some(rest[..end].to_string())
        })
        .collect()
}

#[async_trait]
impl ChatPort for SlackPort {
    async fn post(&self, thread: &ThreadRef, message: &OutMessage) -> Result<String, ChatError> {
        let session = self.client.open_session(&self.token);
        let mut req =
            SlackApiChatPostMessageRequest::new(thread.channel.as_str().into(), content(message))
                .with_unfurl_links(false);
        if !thread.thread.is_empty() {
            req = req.with_thread_ts(thread.thread.as_str().into());
        }
        let _lane = self.lane("chat.postMessage", &thread.channel).await;
        self.pacer.wait_turn(&thread.channel).await;
        let (s, r) = (&session, &req);
        let gate = format!("chat.postMessage:{}", thread.channel);
        let resp = self
            .gates
            .retrying(&gate, "chat.postMessage", move || s.chat_post_message(r))
            .await?;
        Ok(resp.ts.to_string())
    }

    async fn update(
        &self,
        thread: &ThreadRef,
        ts: &str,
        message: &OutMessage,
    ) -> Result<(), ChatError> {
        let _lane = self.lane("chat.update", &thread.channel).await;
        let session = self.client.open_session(&self.token);
        let req = SlackApiChatUpdateRequest::new(
            thread.channel.as_str().into(),
            content(message),
            ts.into(),
        );
        let (s, r) = (&session, &req);
        self.gates
            .retrying("chat.update", "chat.update", move || s.chat_update(r))
            .await?;
        Ok(())
    }

    async fn ephemeral(&self, thread: &ThreadRef, user: &str, text: &str) -> Result<(), ChatError> {
        let session = self.client.open_session(&self.token);
        let mut req = SlackApiChatPostEphemeralRequest::new(
            thread.channel.as_str().into(),
            user.into(),
            SlackMessageContent::new().with_text(blocks::bot_text(text)),
        );
        if !thread.thread.is_empty() {
            req = req.with_thread_ts(thread.thread.as_str().into());
        }
        let _lane = self.lane("chat.postEphemeral", &thread.channel).await;
        let (s, r) = (&session, &req);
        self.gates
            .retrying("chat.postEphemeral", "chat.postEphemeral", move || {
                s.chat_post_ephemeral(r)
            })
            .await?;
        Ok(())
    }

    async fn react(
        &self,
        thread: &ThreadRef,
        ts: &str,
        reaction: Reaction,
        on: bool,
    ) -> Result<(), ChatError> {
        let session = self.client.open_session(&self.token);
        let name: SlackReactionName = emoji(reaction).into();
        // Already there, or already gone: the effect holds.
        fn holds<T>(
            result: Result<T, slack_morphism::errors::SlackClientError>,
        ) -> Result<(), slack_morphism::errors::SlackClientError> {
            match result {
                Ok(_) => Ok(()),
                Err(slack_morphism::errors::SlackClientError::ApiError(e))
                    if e.code == "already_reacted" || e.code == "no_reaction" =>
                {
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
        let s = &session;
        let _lane = self.lane("reactions", &thread.channel).await;
        if on {
            let req =
                SlackApiReactionsAddRequest::new(thread.channel.as_str().into(), name, ts.into());
            let r = &req;
            self.gates
                .retrying("reactions.add", "reactions.add", move || async move {
                    holds(s.reactions_add(r).await)
                })
                .await
        } else {
            let req = SlackApiReactionsRemoveRequest::new(name)
                .with_channel(thread.channel.as_str().into())
                .with_timestamp(ts.into());
            let r = &req;
            self.gates
                .retrying("reactions.remove", "reactions.remove", move || async move {
                    holds(s.reactions_remove(r).await)
                })
                .await
        }
    }

    async fn read_thread(&self, thread: &ThreadRef) -> Result<Vec<ThreadMessage>, ChatError> {
        let session = self.client.open_session(&self.token);
        let mut raw = Vec::new();
        let mut cursor: Option<SlackCursorId> = None;
        // A thread of 10,000 messages is 50 pages: read them all, but never loop forever.
        for _ in 0..200 {
            let req = SlackApiConversationsRepliesRequest::new(
                thread.channel.as_str().into(),
                thread.thread.as_str().into(),
            )
            .with_limit(200)
            .opt_cursor(cursor.clone());
            let (s, r) = (&session, &req);
            let resp = self
                .gates
                .retrying(
                    "conversations.replies",
                    "conversations.replies",
                    move || s.conversations_replies(r),
                )
                .await?;
            raw.extend(resp.messages);
            cursor = resp.response_metadata.and_then(|m| m.next_cursor);
            if cursor.is_none() {
                break;
            }
        }
        let mut names = HashMap::new();
        for m in &raw {
            let mut ids = mentioned(m.content.text.as_deref().unwrap_or(""));
            if let Some(u) = &m.sender.user {
                ids.push(u.to_string());
            }
            for id in ids {
                if let std::collections::hash_map::Entry::Vacant(slot) = names.entry(id) {
                    let name = self.name_of(slot.key()).await;
                    slot.insert(name);
                }
            }
        }
        Ok(raw
            .iter()
            .map(|m| {
                let author = m
                    .sender
                    .user
                    .as_ref()
                    .and_then(|u| names.get(&u.to_string()).cloned())
                    .or_else(|| m.sender.username.clone())
                    .unwrap_or_else(|| "someone".into());
                ThreadMessage {
                    ts: m.origin.ts.to_string(),
                    author,
                    is_bot: m.sender.bot_id.is_some(),
                    hidden: false,
                    text: slack_to_markdown(m.content.text.as_deref().unwrap_or(""), &|id| {
                        names.get(id).cloned()
                    }),
                }
            })
            .collect())
    }

    async fn open_form(&self, trigger_id: &str, form: &Form) -> Result<(), ChatError> {
        let view: SlackView =
            serde_json::from_value(blocks::form(form)).map_err(|e| ChatError::Api {
                method: "views.open",
                detail: e.to_string(),
            })?;
        let session = self.client.open_session(&self.token);
        let req = SlackApiViewsOpenRequest::new(trigger_id.into(), view);
        let (s, r) = (&session, &req);
        self.gates
            .retrying("views.open", "views.open", move || s.views_open(r))
            .await?;
        Ok(())
    }

    async fn upload(
        &self,
        thread: &ThreadRef,
        filename: &str,
        content: Vec<u8>,
        title: &str,
    ) -> Result<(), ChatError> {
        let session = self.client.open_session(&self.token);
        let s = &session;
        let req =
            SlackApiFilesGetUploadUrlExternalRequest::new(filename.to_string(), content.len());
        let r = &req;
        let url = self
            .gates
            .retrying(
                "files.getUploadURLExternal",
                "files.getUploadURLExternal",
                move || s.get_upload_url_external(r),
            )
            .await?;
        let req =
            SlackApiFilesUploadViaUrlRequest::new(url.upload_url, content, "text/x-diff".into());
        let r = &req;
        self.gates
            .retrying("files upload", "files upload", move || {
                s.files_upload_via_url(r)
            })
            .await?;
        let req = SlackApiFilesCompleteUploadExternalRequest::new(vec![
            SlackApiFilesComplete::new(url.file_id).with_title(title.to_string()),
        ])
        .with_channel_id(thread.channel.as_str().into())
        .with_thread_ts(thread.thread.as_str().into());
        let r = &req;
        self.gates
            .retrying(
                "files.completeUploadExternal",
                "files.completeUploadExternal",
                move || s.files_complete_upload_external(r),
            )
            .await?;
        Ok(())
    }

    async fn in_group(&self, user: &str, group: &str) -> Result<bool, ChatError> {
        let session = self.client.open_session(&self.token);
        let req = SlackApiUserGroupsUsersListRequest::new(group.into());
        let (s, r) = (&session, &req);
        let members = self
            .gates
            .retrying(
                "usergroups.users.list",
                "usergroups.users.list",
                move || s.usergroups_users_list(r),
            )
            .await?;
        Ok(members.users.iter().any(|u| u.to_string() == user))
    }

    async fn permalink(&self, thread: &ThreadRef, ts: &str) -> Option<String> {
        let session = self.client.open_session(&self.token);
        let req = SlackApiChatGetPermalinkRequest::new(thread.channel.as_str().into(), ts.into());
        let (s, r) = (&session, &req);
        self.gates
            .retrying("chat.getPermalink", "chat.getPermalink", move || {
                s.chat_get_permalink(r)
            })
            .await
            .ok()
            .map(|r| r.permalink.to_string())
    }
}
