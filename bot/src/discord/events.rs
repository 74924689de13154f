//! Gateway events → [`ChatEvent`]s: every event is stored (deduplicated by its Discord id) and
//! only then acknowledged.

use std::sync::Arc;

use serenity::all::{
    ActionRowComponent, ChannelId, Command, CommandOptionType, CommandType, ComponentInteraction,
    ComponentInteractionDataKind, Context, CreateActionRow, CreateCommand, CreateCommandOption,
    CreateInputText, CreateInteractionResponse, CreateInteractionResponseMessage, CreateModal,
    EventHandler, GuildId, InputTextStyle, Interaction, Message, ModalInteraction, Ready,
};
use serenity::builder::Builder;

mod command;

use super::render::parse_custom_id;
use super::{DiscordPort, no_mentions};
use crate::chat::{
    Actor, ButtonAction, CHOOSE_REPO, ChatEvent, PrivateReply, ThreadMessage, ThreadRef, Via,
};
use crate::orchestrator::Bot;

/// What the event conversion needs to know.
#[derive(Debug, Clone)]
pub struct EventSettings {
    pub bot_user_id: String,
    pub trigger_phrases: Vec<String>,
    pub phrase_channels: Vec<String>,
}

/// Mentions written `<@!id>` (nickname form) become `<@id>`.
pub fn normalize_mentions(text: &str) -> String {
    text.replace("<@!", "<@")
}

/// Whether `text` mentions the bot.
pub fn mentions(text: &str, bot: &str) -> bool {
    normalize_mentions(text).contains(&format!("<@{bot}>"))
}

/// A bare trigger phrase: the message is the phrase, perhaps with instructions after a colon.
pub fn is_phrase(text: &str, phrases: &[String]) -> bool {
    let t = text.trim().to_lowercase();
    phrases.iter().any(|p| {
        let p = p.to_lowercase();
        t == p || t.starts_with(&format!("{p}:")) || t.starts_with(&format!("{p} "))
    })
}

/// A stored message of a thread, in the core's terms: mentions resolved to names.
pub fn thread_message(m: &Message) -> ThreadMessage {
    let mut text = normalize_mentions(&m.content);
    for u in &m.mentions {
        let name = u.global_name.clone().unwrap_or_else(|| u.name.clone());
        text = text.replace(&format!("<@{}>", u.id), &format!("@{name}"));
    }
    for a in &m.attachments {
        text.push_str(&format!("\n[attachment: {}]({})", a.filename, a.url));
    }
    ThreadMessage {
        ts: m.id.to_string(),
        author: m
            .author
            .global_name
            .clone()
            .unwrap_or_else(|| m.author.name.clone()),
        is_bot: m.author.bot,
        text,
        hidden: false,
    }
}

/// The commands users see: `/fix` and the "Fix this" message command.
pub fn commands() -> Vec<CreateCommand> {
    vec![
        CreateCommand::new("fix")
            .description("Fix something: a description starts a thread; also help, status, repo")
            .add_option(
                CreateCommandOption::new(
                    CommandOptionType::String,
                    "text",
                    "What to fix, or help / status / repo owner/name",
                )
                .required(false),
            ),
        CreateCommand::new("Fix this").kind(CommandType::Message),
    ]
}

pub struct Handler {
    pub bot: Arc<Bot>,
    pub port: Arc<DiscordPort>,
    pub settings: EventSettings,
}

fn modal(custom_id: String, title: &str, label: &str) -> CreateInteractionResponse {
    let mut rows = vec![CreateActionRow::InputText(
        CreateInputText::new(InputTextStyle::Paragraph, label, "feedback")
            .required(false)
            .max_length(2000),
    )];
    if custom_id.starts_with("retry:") {
        // From scratch (empty), or the next round from one of this task's rollouts.
        rows.push(CreateActionRow::InputText(
            CreateInputText::new(
                InputTextStyle::Short,
                "Start from rollout (empty: from scratch)",
                "from_rollout",
            )
            .placeholder("e.g. 2: the next round, from its change")
            .required(false)
            .max_length(12),
        ));
    }
    CreateInteractionResponse::Modal(CreateModal::new(custom_id, title).components(rows))
}

fn refusal(text: &str) -> CreateInteractionResponse {
    CreateInteractionResponse::Message(
        CreateInteractionResponseMessage::new()
            .content(text)
            .ephemeral(true)
            .allowed_mentions(no_mentions()),
    )
}

/// The person behind an interaction, stored with its event: their roles (for maintainer
/// roles) and the interaction's token (for private answers), so that any process can act.
fn actor(user: &str, channel: &str, token: &str, roles: &[String], unanswered: bool) -> Actor {
    let lifetime = chrono::Duration::from_std(super::TOKEN_LIFETIME).unwrap_or_default();
    Actor {
        user: user.to_string(),
        groups: roles.to_vec(),
        reply: Some(PrivateReply {
            handle: token.to_string(),
            channel: channel.to_string(),
            unanswered,
            expires_at: chrono::Utc::now() + lifetime,
        }),
    }
}

const STORE_FAILED: &str =
    "I could not take that just now (my database did not answer). Please try again in a moment.";

impl Handler {
    fn thread_for(
        &self,
        guild: Option<GuildId>,
        parent: Option<ChannelId>,
        channel: ChannelId,
        message: &str,
    ) -> ThreadRef {
        let workspace = guild.map(|g| g.to_string()).unwrap_or_default();
        match parent {
            Some(p) => ThreadRef {
                platform: "discord".into(),
                workspace,
                channel: p.to_string(),
                thread: channel.to_string(),
            },
            None => ThreadRef {
                platform: "discord".into(),
                workspace,
                channel: channel.to_string(),
                thread: message.to_string(),
            },
        }
    }

    /// Stores the event (with the person behind it, when an interaction showed them);
    /// `Some(true)` when it is new, `None` when the store failed.
    async fn submit(&self, key: &str, event: &ChatEvent, actor: Option<&Actor>) -> Option<bool> {
        let stored = match actor {
            Some(a) => self.bot.submit_as(key, event, a).await,
            None => self.bot.submit(key, event).await,
        };
        match stored {
            Ok(new) => Some(new),
            Err(e) => {
                tracing::error!(error = %e, "could not store a Discord event");
                None
            }
        }
    }

    /// Stores a click or form submission, then acknowledges it (a deferred update): a duplicate
    /// delivery is neither stored nor acknowledged again.
    async fn store_then_ack(
        &self,
        ctx: &Context,
        id: serenity::all::InteractionId,
        token: &str,
        event: &ChatEvent,
        actor: &Actor,
    ) {
        let answer = match self
            .submit(&format!("discord:interaction:{id}"), event, Some(actor))
            .await
        {
            Some(true) => CreateInteractionResponse::Acknowledge,
            Some(false) => return,
            None => refusal(STORE_FAILED),
        };
        if let Err(e) = answer.execute(&ctx.http, (id, token)).await {
            tracing::warn!(error = %e, "could not acknowledge an interaction");
        }
    }

    async fn on_message(&self, msg: Message) {
        if msg.author.bot {
            return;
        }
        let Some(guild) = msg.guild_id else {
            // A direct message: the bot works in servers only, and says so.
            let event = ChatEvent::DirectMessage {
                platform: "discord".into(),
                channel: msg.channel_id.to_string(),
                message_ts: msg.id.to_string(),
                user: msg.author.id.to_string(),
            };
            self.submit(&format!("discord:message:{}", msg.id), &event, None)
                .await;
            return;
        };
        let mentioned = msg
            .mentions
            .iter()
            .any(|u| u.id.to_string() == self.settings.bot_user_id)
            || mentions(&msg.content, &self.settings.bot_user_id);
        // Only a possible trigger costs a REST call (is this channel a thread?).
        let candidate = mentioned
            || (!self.settings.phrase_channels.is_empty()
                && is_phrase(&msg.content, &self.settings.trigger_phrases));
        if !candidate {
            return;
        }
        let parent = self.port.thread_parent(msg.channel_id).await;
        let phrase = !mentioned
            && self.settings.phrase_channels.iter().any(|c| {
                *c == msg.channel_id.to_string() || parent.is_some_and(|p| *c == p.to_string())
            });
        if !mentioned && !phrase {
            return;
        }
        let thread = self.thread_for(Some(guild), parent, msg.channel_id, &msg.id.to_string());
        // A phrase is read as written ("fix this: keep sub()" at the start of a line), as Slack
        // hands it to the core.
        let text = normalize_mentions(&msg.content);
        let event = ChatEvent::Trigger {
            thread,
            message_ts: msg.id.to_string(),
            user: msg.author.id.to_string(),
            text,
            via: if phrase { Via::Phrase } else { Via::Mention },
        };
        self.submit(&format!("discord:message:{}", msg.id), &event, None)
            .await;
    }

    async fn on_component(&self, ctx: &Context, c: ComponentInteraction) {
        let user = c.user.id.to_string();
        let roles: Vec<String> = c
            .member
            .as_ref()
            .map(|m| m.roles.iter().map(|r| r.to_string()).collect())
            .unwrap_or_default();
        let actor = actor(&user, &c.channel_id.to_string(), &c.token, &roles, false);
        self.port
            .remember(&user, &c.channel_id.to_string(), &c.token, roles, false);
        let parent = self.port.thread_parent(c.channel_id).await;
        let thread = self.thread_for(c.guild_id, parent, c.channel_id, &c.message.id.to_string());
        let event = match &c.data.kind {
            ComponentInteractionDataKind::Button => match parse_custom_id(&c.data.custom_id) {
                // A form must be the immediate answer to the click.
                Some(ButtonAction::Retry { task_id }) => {
                    let r = modal(
                        format!("retry:{task_id}"),
                        "Retry",
                        "Feedback for the new attempts (optional)",
                    );
                    if let Err(e) = c.create_response(&ctx.http, r).await {
                        tracing::warn!(error = %e, "could not open the Retry form");
                    }
                    return;
                }
                Some(ButtonAction::RevisePlan { plan_id }) => {
                    let r = modal(
                        format!("revise_plan:{plan_id}"),
                        "Revise the plan",
                        "What should change?",
                    );
                    if let Err(e) = c.create_response(&ctx.http, r).await {
                        tracing::warn!(error = %e, "could not open the Revise form");
                    }
                    return;
                }
                Some(action) => ChatEvent::Button {
                    thread,
                    message_ts: c.message.id.to_string(),
                    user,
                    action,
                    trigger_id: None,
                },
                None => {
                    let _ = c
                        .create_response(
                            &ctx.http,
                            refusal("That button is not one of mine any more."),
                        )
                        .await;
                    return;
                }
            },
            ComponentInteractionDataKind::StringSelect { values } => {
                let Some(question_id) = c
                    .data
                    .custom_id
                    .strip_prefix(CHOOSE_REPO)
                    .and_then(|r| r.strip_prefix(':'))
                else {
                    return;
                };
                let Some(repo) = values.first() else {
                    return;
                };
                ChatEvent::RepoChosen {
                    question_id: question_id.to_string(),
                    thread,
                    user,
                    repo: repo.clone(),
                }
            }
            _ => return,
        };
        self.store_then_ack(ctx, c.id, &c.token, &event, &actor)
            .await;
    }

    async fn on_modal(&self, ctx: &Context, m: ModalInteraction) {
        let user = m.user.id.to_string();
        let roles: Vec<String> = m
            .member
            .as_ref()
            .map(|x| x.roles.iter().map(|r| r.to_string()).collect())
            .unwrap_or_default();
        let actor = actor(&user, &m.channel_id.to_string(), &m.token, &roles, false);
        self.port
            .remember(&user, &m.channel_id.to_string(), &m.token, roles, false);
        let input = |id: &str| {
            m.data
                .components
                .iter()
                .flat_map(|row| row.components.iter())
                .find_map(|c| match c {
                    ActionRowComponent::InputText(t) if t.custom_id == id => {
                        Some(t.value.clone().unwrap_or_default())
                    }
                    _ => None,
                })
                .unwrap_or_default()
        };
        let feedback = input("feedback");
        let event = match m.data.custom_id.split_once(':') {
            Some(("retry", task)) if task.chars().all(|c| c.is_ascii_hexdigit()) => {
                ChatEvent::RetrySubmitted {
                    task_id: task.to_string(),
                    user,
                    feedback,
                    from: input("from_rollout"),
                }
            }
            Some(("revise_plan", plan)) if plan.chars().all(|c| c.is_ascii_hexdigit()) => {
                ChatEvent::PlanRevision {
                    plan_id: plan.to_string(),
                    user,
                    feedback,
                }
            }
            _ => return,
        };
        self.store_then_ack(ctx, m.id, &m.token, &event, &actor)
            .await;
    }
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        tracing::info!(user = %ready.user.name, guilds = ready.guilds.len(), "connected to Discord");
        self.bot.connection().connected();
        if let Err(e) = Command::set_global_commands(&ctx.http, commands()).await {
            tracing::warn!(error = %e, "could not register the /fix and Fix this commands");
        }
    }

    async fn resume(&self, _ctx: Context, _event: serenity::model::event::ResumedEvent) {
        self.bot.connection().connected();
    }

    /// The one shard's gateway connection: up when `Connected`, down in any other stage
    /// (resuming, reconnecting, disconnected).
    async fn shard_stage_update(
        &self,
        _ctx: Context,
        event: serenity::gateway::ShardStageUpdateEvent,
    ) {
        match event.new {
            serenity::gateway::ConnectionStage::Connected => self.bot.connection().connected(),
            stage => self
                .bot
                .connection()
                .lost(format!("the Discord gateway is {stage:?}")),
        }
    }

    async fn message(&self, _ctx: Context, msg: Message) {
        self.on_message(msg).await;
    }

    /// Each handler returns once the interaction is acknowledged (stored first): its time is
    /// the interaction's time from arrival to ack.
    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        let arrived = std::time::Instant::now();
        match interaction {
            Interaction::Component(c) => self.on_component(&ctx, c).await,
            Interaction::Modal(m) => self.on_modal(&ctx, m).await,
            Interaction::Command(c) => self.on_command(&ctx, c).await,
            _ => return,
        }
        crate::metrics::chat_ack(crate::chat::Platform::Discord, arrived.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_and_phrases_are_recognised() {
        assert!(mentions("<@!42> fix this", "42"));
        assert!(mentions("hey <@42>", "42"));
        assert!(!mentions("<@420> fix", "42"));
        let phrases = vec!["fix this".to_string()];
        assert!(is_phrase("Fix this", &phrases));
        assert!(is_phrase("fix this: keep sub()", &phrases));
        assert!(!is_phrase("please fix this later", &phrases));
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;
    use crate::chat::ButtonAction;
    use crate::discord::render::{custom_id, parse_custom_id};

    fn message_json(content: String, mention_name: String, filename: String, drop: u8) -> Value {
        let mut m = json!({
            "id": "1300000000000000100", "channel_id": "1300000000000000001",
            "author": {"id": "1400000000000000001", "username": "alice", "discriminator": "0",
                       "global_name": null, "avatar": null, "bot": false},
            "content": content, "timestamp": "2026-11-24T03:00:00.000000+00:00",
            "edited_timestamp": null, "tts": false, "mention_everyone": false,
            "mentions": [{"id": "1400000000000000002", "username": mention_name,
                          "discriminator": "0", "global_name": null, "avatar": null}],
            "mention_roles": [], "attachments": [{"id": "1", "filename": filename, "size": 3,
                "url": "https://cdn.example/x", "proxy_url": "https://cdn.example/x"}],
            "embeds": [], "pinned": false, "type": 0
        });
        // Optional fields dropped at random, as Discord leaves some out.
        for (bit, key) in ["mentions", "attachments", "edited_timestamp", "embeds"]
            .iter()
            .enumerate()
        {
            if drop & (1 << bit) != 0 {
                m.as_object_mut().map(|o| o.remove(*key));
            }
        }
        m
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn messages_become_thread_messages(
            content in "\\PC{0,300}",
            name in "\\PC{0,40}",
            filename in "\\PC{0,40}",
            drop in any::<u8>(),
        ) {
            let v = message_json(content.clone(), name, filename, drop);
            if let Ok(m) = serde_json::from_value::<Message>(v) {
                let t = thread_message(&m);
                prop_assert_eq!(t.author, "alice");
                prop_assert!(!t.is_bot);
                prop_assert!(!t.text.contains("<@!"));
            }
            let _ = mentions(&content, "1400000000000000009");
            let _ = is_phrase(&content, &["fix this".to_string(), content.clone()]);
        }

        #[test]
        fn button_ids_round_trip_and_garbage_are_refused_quietly(
            task in "[0-9a-f]{32}",
            rollout in 1u32..=16,
            garbage in "\\PC{0,120}",
        ) {
            for action in [
                ButtonAction::Approve { task_id: task.clone(), rollout },
                ButtonAction::Retry { task_id: task.clone() },
                ButtonAction::Cancel { task_id: task.clone() },
                ButtonAction::RunPlan { plan_id: task.clone() },
                ButtonAction::RevisePlan { plan_id: task.clone() },
            ] {
                let id = custom_id(&action);
                prop_assert!(id.len() <= 100, "Discord's custom_id limit");
                prop_assert_eq!(parse_custom_id(&id), Some(action));
            }
            let _ = parse_custom_id(&garbage);
        }
    }

    #[test]
    fn the_base_message_deserialises() {
        let v = message_json(
            "hi <@!1400000000000000002>".into(),
            "bob".into(),
            "log.txt".into(),
            0,
        );
        let m: Message = serde_json::from_value(v).unwrap();
        let t = thread_message(&m);
        assert_eq!(
            t.text,
            "hi @bob\n[attachment: log.txt](https://cdn.example/x)"
        );
    }
}
