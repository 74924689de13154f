//! One lock per idempotency key, so that two handlers of one effect post it once, while
//! effects with different keys never wait for each other (a reply waiting for a busy
//! channel's pace must not hold up a reply in another channel).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::sync::OwnedMutexGuard;

/// Keys whose lock nobody holds are forgotten once there are more than this many.
const PRUNE_ABOVE: usize = 1024;

#[derive(Default)]
pub(super) struct KeyLocks {
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl KeyLocks {
    /// Waits for `key`'s lock; held until the guard is dropped.
    pub(super) async fn lock(&self, key: &str) -> OwnedMutexGuard<()> {
        let lock = {
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
        };
        lock.lock_owned().await
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
