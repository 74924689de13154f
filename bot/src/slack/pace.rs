//! Slack's pace: `chat.postMessage` allows about one message a second *per channel* (short
//! bursts allowed), and the other methods answer HTTP 429 with `Retry-After` when their tier
//! is spent. Each channel is paced on its own, and a 429 is waited out by the one call that
//! got it: nothing here is global, so a busy channel never slows another, and a spent tier
//! never slows another method. A call about to wait gives its event slot back first
//! ([`crate::chat::pace::give_back`]).
//!
//! (slack-morphism's own rate control spaces every `chat.postMessage` of a workspace one second
//! apart, whatever the channel: one busy channel stalled them all. It is not used.)

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use slack_morphism::errors::SlackClientError;
use tokio::time::Instant;

use crate::chat::{ChatError, pace};

/// One message a second per channel...
pub const POST_INTERVAL: Duration = Duration::from_secs(1);
/// ... of which this many may go at once after a quiet spell.
pub const POST_BURST: u32 = 2;
/// How many times one call is retried after a 429.
const MAX_RETRIES: u32 = 8;
/// The longest single wait a `Retry-After` can impose on a call.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// Spaces `chat.postMessage` per channel (generic cell rate: a channel's theoretical next
/// free time advances by [`POST_INTERVAL`] per message, and a message may go as long as it is
/// at most `POST_BURST - 1` intervals ahead of now).
#[derive(Default)]
pub struct ChannelPacer {
    next: Mutex<HashMap<String, Instant>>,
}

impl ChannelPacer {
    /// Reserves the channel's next turn and returns when it is (now, or later).
    fn reserve(&self, channel: &str, now: Instant) -> Instant {
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        if next.len() > 4096 {
            next.retain(|_, t| *t > now);
        }
        let tat = next.get(channel).copied().unwrap_or(now).max(now);
        let tolerance = POST_INTERVAL * POST_BURST.saturating_sub(1);
        let at = if tat <= now + tolerance {
            now
        } else {
            tat - tolerance
        };
        next.insert(channel.to_string(), tat + POST_INTERVAL);
        at
    }

    /// Waits for the channel's turn (giving the event slot back if that means waiting).
    pub async fn wait_turn(&self, channel: &str) {
        let now = Instant::now();
        let at = self.reserve(channel, now);
        if at > now {
            pace::give_back();
            tokio::time::sleep_until(at).await;
        }
    }
}

/// One gate per rate limit (a method's tier, or one channel's `chat.postMessage`). While a
/// limit is spent (a call got 429 and others wait), its calls take turns in the order they
/// came, each after the `Retry-After`: a flooded channel (which has one call waiting, see
/// [`super::SlackPort`]'s lanes) and a quiet one alternate, instead of the quiet one losing
/// every race for the next free call.
#[derive(Default)]
pub struct Gates {
    gates: Mutex<HashMap<String, Arc<Gate>>>,
}

#[derive(Default)]
struct Gate {
    turn: Arc<tokio::sync::Mutex<()>>,
    waiting: AtomicUsize,
    blocked_until: Mutex<Option<Instant>>,
}

impl Gate {
    fn blocked_until(&self) -> Option<Instant> {
        *self
            .blocked_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn block(&self, until: Instant) {
        let mut b = self
            .blocked_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *b = Some(b.map_or(until, |t| t.max(until)));
    }

    /// Whether calls must take turns: the limit was hit and is not known to be free again.
    fn congested(&self) -> bool {
        self.waiting.load(Ordering::SeqCst) > 0
            || self.turn.try_lock().is_err()
            || self.blocked_until().is_some_and(|t| t > Instant::now())
    }
}

impl Gates {
    fn gate(&self, key: &str) -> Arc<Gate> {
        let mut gates = self.gates.lock().unwrap_or_else(PoisonError::into_inner);
        if gates.len() > 4096 {
            gates.retain(|_, g| Arc::strong_count(g) > 1);
        }
        gates.entry(key.to_string()).or_default().clone()
    }

    /// Runs a Web API call under the gate `key`, waiting out 429s (their `Retry-After`,
    /// giving the event slot back first), at most [`MAX_RETRIES`] times.
    pub async fn retrying<T, F, Fut>(
        &self,
        key: &str,
        method: &'static str,
        call: F,
    ) -> Result<T, ChatError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, SlackClientError>>,
    {
        let gate = self.gate(key);
        let mut turn = None;
        let mut tries = 0;
        loop {
            if turn.is_none() && gate.congested() {
                pace::give_back();
                gate.waiting.fetch_add(1, Ordering::SeqCst);
                let guard = gate.turn.clone().lock_owned().await;
                gate.waiting.fetch_sub(1, Ordering::SeqCst);
                turn = Some(guard);
            }
            if turn.is_some()
                && let Some(until) = gate.blocked_until()
                && until > Instant::now()
            {
                pace::give_back();
                tokio::time::sleep_until(until).await;
            }
            match call().await {
                Ok(v) => return Ok(v),
                Err(SlackClientError::RateLimitError(e)) if tries < MAX_RETRIES => {
                    tries += 1;
                    let wait = e
                        .retry_after
                        .unwrap_or(POST_INTERVAL)
                        .clamp(Duration::from_millis(100), MAX_RETRY_AFTER);
                    tracing::debug!(method, ?wait, tries, "Slack asked us to slow down");
                    gate.block(Instant::now() + wait);
                }
                Err(SlackClientError::RateLimitError(_)) => return Err(ChatError::RateLimited),
                Err(e) => {
                    return Err(ChatError::Api {
                        method,
                        detail: e.to_string(),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_channel_has_its_own_pace_with_a_short_burst() {
        let pacer = ChannelPacer::default();
        let t0 = Instant::now();
        let a: Vec<Duration> = (0..5).map(|_| pacer.reserve("CA", t0) - t0).collect();
        let secs = |s| Duration::from_secs(s);
        assert_eq!(a, [secs(0), secs(0), secs(1), secs(2), secs(3)]);
        // Another channel is not behind channel A's queue.
        assert_eq!(pacer.reserve("CB", t0), t0);
        // After a quiet spell, the burst is back.
        let later = t0 + secs(60);
        assert_eq!(pacer.reserve("CA", later), later);
        assert_eq!(pacer.reserve("CA", later), later);
        assert_eq!(pacer.reserve("CA", later), later + secs(1));
    }
}
