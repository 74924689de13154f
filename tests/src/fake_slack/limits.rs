//! Slack's rate limits, as <https://docs.slack.dev/apis/web-api/rate-limits> describes them:
//! per method per workspace, in tiers (Tier 1: 1+ a minute, "a small amount of burst
//! behavior is tolerated"; Tier 2: 20+; Tier 3: 50+; Tier 4: 100+), and `chat.postMessage`
//! in its special tier: one message a second per channel, short bursts allowed. A call over
//! its limit is answered HTTP 429 with `Retry-After` (whole seconds) and
//! `{"ok": false, "error": "ratelimited"}`, and has no effect.
//!
//! Each limit is a token bucket: a Tier's holds a minute's worth (its bursts) and refills at
//! its rate; a channel's `chat.postMessage` bucket holds [`POST_BURST`] and refills one a
//! second. Slack publishes minimums ("1+"): the fake grants exactly those.
//! (Not modelled: `chat.postMessage`'s unpublished workspace-wide limit, and the stricter
//! `conversations.replies` limits of unlisted commercial apps.)

use std::collections::HashMap;
use std::time::Instant;

/// Messages a channel takes at once before the one-a-second pace applies.
pub const POST_BURST: f64 = 2.0;

/// The documented tier of each method the fake serves: calls a minute, and the burst.
fn tier(method: &str) -> Option<(f64, f64)> {
    // (per minute, bucket size)
    const TIER1: (f64, f64) = (1.0, 5.0);
    const TIER2: (f64, f64) = (20.0, 20.0);
    const TIER3: (f64, f64) = (50.0, 50.0);
    const TIER4: (f64, f64) = (100.0, 100.0);
    Some(match method {
        "apps.connections.open" => TIER1,
        "reactions.remove" | "usergroups.users.list" => TIER2,
        "chat.update" | "chat.delete" | "reactions.add" | "conversations.replies" => TIER3,
        "chat.postEphemeral"
        | "users.info"
        | "views.open"
        | "views.push"
        | "views.update"
        | "files.getUploadURLExternal"
        | "files.completeUploadExternal" => TIER4,
        // `auth.test` and `chat.getPermalink` are "Special" with generous limits.
        _ => return None,
    })
}

struct Bucket {
    tokens: f64,
    size: f64,
    per_sec: f64,
    at: Instant,
}

impl Bucket {
    fn new(size: f64, per_sec: f64, now: Instant) -> Self {
        Self {
            tokens: size,
            size,
            per_sec,
            at: now,
        }
    }

    /// Takes a token, or says how many whole seconds until one is there.
    fn take(&mut self, now: Instant) -> Result<(), u64> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.size);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / self.per_sec;
            Err((wait.ceil() as u64).max(1))
        }
    }
}

/// The buckets, and what was refused.
#[derive(Default)]
pub struct RateLimits {
    /// The tiers are not enforced (see `FakeSlackConfig::tier_limits`).
    tiers_off: bool,
    buckets: HashMap<String, Bucket>,
    /// Calls answered 429, as `(method, channel)`.
    pub(super) refused: Vec<(String, Option<String>)>,
}

impl RateLimits {
    pub(super) fn new(tier_limits: bool) -> Self {
        Self {
            tiers_off: !tier_limits,
            ..Self::default()
        }
    }

    /// Counts a call; `Err(retry_after_secs)` if it is over its limit.
    pub(super) fn check(
        &mut self,
        method: &str,
        channel: Option<&str>,
        now: Instant,
    ) -> Result<(), u64> {
        let (key, size, per_sec) = if method == "chat.postMessage" {
            let Some(channel) = channel else {
                return Ok(());
            };
            (format!("post:{channel}"), POST_BURST, 1.0)
        } else if let Some((per_minute, size)) = tier(method).filter(|_| !self.tiers_off) {
            (method.to_string(), size, per_minute / 60.0)
        } else {
            return Ok(());
        };
        let result = self
            .buckets
            .entry(key)
            .or_insert_with(|| Bucket::new(size, per_sec, now))
            .take(now);
        if result.is_err() {
            self.refused
                .push((method.to_string(), channel.map(String::from)));
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_channel_takes_a_short_burst_then_one_a_second_and_others_are_not_affected() {
        let mut l = RateLimits::default();
        let t0 = Instant::now();
        assert_eq!(l.check("chat.postMessage", Some("CA"), t0), Ok(()));
        assert_eq!(l.check("chat.postMessage", Some("CA"), t0), Ok(()));
        assert_eq!(l.check("chat.postMessage", Some("CA"), t0), Err(1));
        assert_eq!(l.check("chat.postMessage", Some("CB"), t0), Ok(()));
        let t1 = t0 + Duration::from_millis(1000);
        assert_eq!(l.check("chat.postMessage", Some("CA"), t1), Ok(()));
        assert_eq!(l.check("chat.postMessage", Some("CA"), t1), Err(1));
        assert_eq!(l.refused.len(), 2);
    }

    #[test]
    fn a_tier_allows_a_minutes_worth_then_asks_to_wait() {
        let mut l = RateLimits::default();
        let t0 = Instant::now();
        for _ in 0..20 {
            assert_eq!(l.check("reactions.remove", None, t0), Ok(()));
        }
        assert_eq!(l.check("reactions.remove", None, t0), Err(3));
        // Another method's tier is its own.
        assert_eq!(l.check("reactions.add", None, t0), Ok(()));
        assert_eq!(
            l.check("reactions.remove", None, t0 + Duration::from_secs(3)),
            Ok(())
        );
        assert_eq!(l.check("auth.test", None, t0), Ok(()));
    }

    #[test]
    fn without_tiers_only_the_channels_pace_is_kept() {
        let mut l = RateLimits::new(false);
        let t0 = Instant::now();
        for _ in 0..100 {
            assert_eq!(l.check("reactions.remove", None, t0), Ok(()));
        }
        assert_eq!(l.check("chat.postMessage", Some("CA"), t0), Ok(()));
        assert_eq!(l.check("chat.postMessage", Some("CA"), t0), Ok(()));
        assert_eq!(l.check("chat.postMessage", Some("CA"), t0), Err(1));
    }
}
