//! Posting once across processes: the in-process lock of `post_once` keeps one handler of this
//! process from racing another; this keeps two processes from both posting. The process that
//! claims the post (`posting:<key>`, held by a live worker) posts it; the others wait until its
//! message is recorded, or take the post over when that worker died or gave it back (its post
//! failed). A process waiting for another's post wakes when its own store records or gives
//! back a post, and looks again at the workers' poll interval for other processes' writes.

use std::time::Duration;

use super::{Bot, EffectKey, HandleError};
use crate::chat::{OutMessage, Reaction, ThreadRef};
use crate::store::StoreError;

/// How long a post may stay claimed by another live process before this one gives up.
const MAX_WAIT: Duration = Duration::from_secs(10 * 60);

impl Bot {
    /// Posts `message` unless the post of `key` is recorded (returns its `ts`), claiming it
    /// against other processes first.
    pub(super) async fn post_claimed(
        &self,
        key: &EffectKey<'_>,
        thread: &ThreadRef,
        message: &OutMessage,
    ) -> Result<String, HandleError> {
        let claim = EffectKey::Posting(key).as_key();
        let key = &key.as_key();
        let worker = self.svc.worker_id().to_string();
        let deadline = tokio::time::Instant::now() + MAX_WAIT;
        loop {
            // Subscribed before reading, so that a write in between still wakes this wait.
            let mut changes = self.svc.store.effect_changes();
            if let Some(ts) = self.svc.store.effect(key).await? {
                return Ok(ts);
            }
            if self.svc.store.claim_request(&claim, &worker).await? {
                break;
            }
            // The post recorded or given back by this process wakes the wait at once; by
            // another process, it is seen at the next look at the shared database.
            tokio::select! {
                Ok(()) = changes.changed() => {}
                _ = tokio::time::sleep(self.svc.config.poll_interval()) => {}
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(StoreError::Corrupt(format!(
                        "another bot process holds the post `{key}` and has not made it"
                    ))
                    .into());
                }
            }
        }
        // Recorded meanwhile by the worker that held the claim before.
        if let Some(ts) = self.svc.store.effect(key).await? {
            return Ok(ts);
        }
        // A post that waits for the platform's pace gives its event slot back meanwhile.
        match crate::chat::pace::patiently(self.port.post(thread, message)).await {
            Ok(ts) => {
                self.svc.store.record_effect(key, &ts).await?;
                Ok(ts)
            }
            Err(e) => {
                // Give the post back, so that a waiting process (or a replay) tries it.
                self.svc.store.release_request(&claim, &worker).await?;
                Err(e.into())
            }
        }
    }
}

impl Bot {
    /// Posts once per `key`, whatever the number of deliveries.
    pub(super) async fn post_once(
        &self,
        key: &EffectKey<'_>,
        thread: &ThreadRef,
        message: &OutMessage,
    ) -> Result<String, HandleError> {
        let _guard = self.effect_locks.lock(&key.as_key()).await;
        self.post_claimed(key, thread, message).await
    }

    pub(super) async fn react_once(
        &self,
        thread: &ThreadRef,
        ts: &str,
        reaction: Reaction,
        on: bool,
    ) {
        let key = EffectKey::React {
            channel: &thread.channel,
            ts,
            reaction,
            on,
        }
        .as_key();
        match self.svc.store.record_effect(&key, "").await {
            Ok(true) => {
                if let Err(e) = self.port.react(thread, ts, reaction, on).await {
                    tracing::warn!(error = %e, "could not react");
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not record a reaction"),
        }
    }
}
