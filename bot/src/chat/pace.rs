//! Waiting for a chat platform's pace without holding an event slot.
//!
//! A process handles a bounded number of events at once (its event slots). A handler that
//! has to wait for the platform (a channel's posting pace, a 429's `Retry-After`) gives its
//! slot back first, so that one busy channel never keeps the other channels' events from
//! being read. The handler itself keeps going, and its event stays leased to this process
//! until it is done (so a restart hands it to another process, and the effect keys make the
//! replay harmless).
//!
//! The orchestrator runs each handler inside [`holding`] with a way to give its slot back;
//! adapters call [`give_back`] right before they sleep for a rate limit, and a post that
//! takes longer than [`PATIENCE`] for any other reason (a client library's own rate limiter,
//! as serenity's for Discord) gives it back too ([`patiently`]).

use std::cell::RefCell;
use std::future::Future;
use std::time::Duration;

/// How long a chat call may hold an event slot before it gives it back and keeps waiting.
pub const PATIENCE: Duration = Duration::from_millis(500);

type Release = Box<dyn FnOnce() + Send>;

tokio::task_local! {
    static SLOT: RefCell<Option<Release>>;
}

/// Runs `fut` holding an event slot; `release` gives it back (called at most once: on the
/// first [`give_back`] inside `fut`, or when `fut` ends).
pub async fn holding<F: Future>(release: impl FnOnce() + Send + 'static, fut: F) -> F::Output {
    let slot: RefCell<Option<Release>> = RefCell::new(Some(Box::new(release)));
    SLOT.scope(slot, async move {
        let out = fut.await;
        give_back();
        out
    })
    .await
}

/// Gives back the current task's event slot, if it holds one; a no-op otherwise (outside a
/// handler, or already given back).
pub fn give_back() {
    let release = SLOT.try_with(|s| s.borrow_mut().take()).ok().flatten();
    if let Some(release) = release {
        release();
    }
}

/// Awaits `fut`; if it is not done within [`PATIENCE`], gives the event slot back and keeps
/// waiting for it.
pub async fn patiently<F: Future>(fut: F) -> F::Output {
    tokio::pin!(fut);
    match tokio::time::timeout(PATIENCE, &mut fut).await {
        Ok(out) => out,
        Err(_) => {
            give_back();
            fut.await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn the_slot_is_given_back_once_on_the_first_wait_or_at_the_end() {
        let released = Arc::new(AtomicU32::new(0));
        let r = released.clone();
        let seen = holding(
            move || {
                r.fetch_add(1, Ordering::SeqCst);
            },
            {
                let released = released.clone();
                async move {
                    let before = released.load(Ordering::SeqCst);
                    give_back();
                    give_back();
                    (before, released.load(Ordering::SeqCst))
                }
            },
        )
        .await;
        assert_eq!(seen, (0, 1));
        assert_eq!(released.load(Ordering::SeqCst), 1);

        let r = released.clone();
        holding(
            move || {
                r.fetch_add(1, Ordering::SeqCst);
            },
            async {},
        )
        .await;
        assert_eq!(released.load(Ordering::SeqCst), 2, "given back at the end");
        give_back(); // outside a handler: nothing happens
    }

    #[tokio::test]
    async fn a_slow_call_gives_the_slot_back_and_a_quick_one_keeps_it() {
        let released = Arc::new(AtomicU32::new(0));
        let r = released.clone();
        let released_during = holding(
            move || {
                r.fetch_add(1, Ordering::SeqCst);
            },
            {
                let released = released.clone();
                async move {
                    patiently(async {}).await;
                    let after_quick = released.load(Ordering::SeqCst);
                    patiently(tokio::time::sleep(PATIENCE + Duration::from_millis(200))).await;
                    (after_quick, released.load(Ordering::SeqCst))
                }
            },
        )
        .await;
        assert_eq!(released_during, (0, 1));
    }
}
