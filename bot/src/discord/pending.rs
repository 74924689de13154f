//! Interactions whose tokens can still carry a private answer, remembered for 14 minutes, and
//! the roles their members showed.

use std::time::{Duration, Instant};

use super::DiscordPort;

/// Interaction tokens are good for 15 minutes; we use them for 14.
pub(crate) const TOKEN_LIFETIME: Duration = Duration::from_secs(14 * 60);

/// An interaction whose token can still carry a private answer to the person who made it.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    pub(super) user: String,
    pub(super) channel: String,
    pub(super) token: String,
    /// A deferred slash command whose "thinking…" placeholder is not answered yet.
    pub(super) unanswered: bool,
    pub(super) at: Instant,
}

impl DiscordPort {
    /// Remembers an interaction's token (for private answers) and its member's roles.
    pub fn remember(
        &self,
        user: &str,
        channel: &str,
        token: &str,
        roles: Vec<String>,
        unanswered: bool,
    ) {
        if let Ok(mut p) = self.pending.lock() {
            p.retain(|x| x.at.elapsed() < TOKEN_LIFETIME);
            p.push(Pending {
                user: user.to_string(),
                channel: channel.to_string(),
                token: token.to_string(),
                unanswered,
                at: Instant::now(),
            });
        }
        if let Ok(mut r) = self.roles.lock() {
            r.insert(user.to_string(), roles);
        }
    }

    /// The newest live interaction of `user` (in `channel` when given), marking it answered.
    pub(super) fn take_pending(&self, user: &str, channel: Option<&str>) -> Option<Pending> {
        let mut p = self.pending.lock().ok()?;
        p.retain(|x| x.at.elapsed() < TOKEN_LIFETIME);
        let i = p
            .iter()
            .rposition(|x| x.user == user && channel.is_none_or(|c| c == x.channel))?;
        let found = p[i].clone();
        p[i].unanswered = false;
        Some(found)
    }

    /// The private answer of the event being handled (stored with it, so known to whichever
    /// process handles it), when it is `user`'s and still good; `unanswered_in` asks only for a
    /// command still waiting for its answer in that channel. Marks it answered.
    pub(super) fn take_actor_reply(
        &self,
        user: Option<&str>,
        unanswered_in: Option<&str>,
    ) -> Option<Pending> {
        let actor = crate::chat::actor()?;
        let reply = actor.reply?;
        let wanted = user.is_none_or(|u| u == actor.user)
            && unanswered_in.is_none_or(|c| reply.unanswered && c == reply.channel)
            && reply.expires_at > chrono::Utc::now();
        if !wanted {
            return None;
        }
        crate::chat::actor_answered();
        // This process may remember the same interaction: it is answered now.
        if let Ok(mut p) = self.pending.lock() {
            for x in p.iter_mut().filter(|x| x.token == reply.handle) {
                x.unanswered = false;
            }
        }
        Some(Pending {
            user: actor.user,
            channel: reply.channel,
            token: reply.handle,
            unanswered: reply.unanswered,
            at: Instant::now(),
        })
    }

    /// The unanswered slash command in `channel`, if any (answered by what it started).
    pub(super) fn take_unanswered(&self, channel: &str) -> Option<Pending> {
        let mut p = self.pending.lock().ok()?;
        let i = p.iter().position(|x| {
            x.unanswered && x.channel == channel && x.at.elapsed() < TOKEN_LIFETIME
        })?;
        let found = p[i].clone();
        p[i].unanswered = false;
        Some(found)
    }
}
