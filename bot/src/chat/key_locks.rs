//! One lock per key, so that what shares a key goes one at a time (in the order it came) and
//! what does not never waits: two handlers of one effect (the orchestrator's idempotency
//! keys) post it once, while a reply waiting for a busy channel's pace never holds up a reply
//! in another channel; a platform's calls of one method in one channel queue behind each
//! other, so that a channel's flood takes its turn with the other channels instead of
//! crowding them out of the method's rate limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::sync::OwnedMutexGuard;

/// Keys whose lock nobody holds are forgotten once there are more than this many.
const PRUNE_ABOVE: usize = 1024;

#[derive(Default)]
pub(crate) struct KeyLocks {
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl KeyLocks {
    /// Takes `key`'s lock at once if it is free; else gives the event slot back
    /// ([`super::pace::give_back`]) and waits for it.
    pub(crate) async fn lock_patiently(&self, key: &str) -> OwnedMutexGuard<()> {
        let lock = self.lock_of(key);
        match lock.clone().try_lock_owned() {
            Ok(guard) => guard,
            Err(_) => {
                super::pace::give_back();
                lock.lock_owned().await
            }
        }
    }

    /// Waits for `key`'s lock; held until the guard is dropped.
    pub(crate) async fn lock(&self, key: &str) -> OwnedMutexGuard<()> {
        self.lock_of(key).lock_owned().await
    }

    fn lock_of(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        // Nothing panics while this is held; a poisoned map is still a valid map.
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        if locks.len() > PRUNE_ABOVE {
            locks.retain(|_, l| l.strong_count() > 0);
        }
        match locks.get(key).and_then(Weak::upgrade) {
            Some(lock) => lock,
            None => {
                let lock = Arc::new(tokio::sync::Mutex::new(()));
                locks.insert(key.to_string(), Arc::downgrade(&lock));
                lock
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_key_waits_for_itself_and_never_for_another() {
        let locks = Arc::new(KeyLocks::default());
        let a = locks.lock("reply:C1:1").await;
        // Another key is free at once, whatever the number of keys held.
        let _others: Vec<_> = hold_many(&locks, 200).await;
        // The same key waits until the first guard is dropped.
        let l2 = locks.clone();
        let second = tokio::spawn(async move { l2.lock("reply:C1:1").await });
        tokio::task::yield_now().await;
        assert!(!second.is_finished());
        drop(a);
        tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .expect("the key is free again")
            .expect("the task ends");
    }

    async fn hold_many(locks: &KeyLocks, n: usize) -> Vec<OwnedMutexGuard<()>> {
        let mut out = Vec::new();
        for i in 0..n {
            let guard =
                tokio::time::timeout(Duration::from_secs(5), locks.lock(&format!("reply:C2:{i}")))
                    .await
                    .expect("a different key never waits");
            out.push(guard);
        }
        out
    }
}
