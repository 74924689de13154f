//! One task at a time per thread across processes: two bots (each with its own in-process
//! state, as two processes have) over one SQLite database.

use super::*;
use crate::chat::Via;

const BUSY: &str = "A task is already running in this thread";

/// Handles, with `bot`, what the inbox holds now.
async fn handle_with(bot: &Arc<Bot>) {
    let svc = &bot.svc;
    let items = svc
        .store
        .claim_inbox(
            bot.settings.platform.as_str(),
            svc.worker_id(),
            svc.config.lease(),
            100,
        )
        .await
        .expect("the inbox can be read");
    assert!(!items.is_empty(), "an event to handle");
    for item in items {
        tokio::time::timeout(PATIENCE, bot.clone().handle_item(item))
            .await
            .expect("the handler ends");
    }
}

/// Process A took the first request and is still reading the thread (its task is not stored
/// yet) when process B takes a second request in the same thread: B queues it instead of
/// starting a task beside A's, and it starts once A's task has ended.
#[tokio::test]
async fn a_second_process_does_not_start_beside_a_request_not_yet_stored() {
    let w = World::new().await;
    w.bot
        .svc
        .ensure_alive()
        .await
        .expect("the worker is registered");
    let other_port = Arc::new(RecordingPort::default());
    let other = Bot::new(w.bot.svc.clone(), other_port.clone(), settings());

    let thread = w.thread("1", &format!("<@{BOT_USER}> fix this"));
    other_port.add_thread(&thread, &[(REQUESTER, &format!("<@{BOT_USER}> fix this"))]);
    let again = format!("<@{BOT_USER}> fix this");
    let second_ts = w.port.add_reply(&thread, OTHER, &again);
    assert_eq!(other_port.add_reply(&thread, OTHER, &again), second_ts);

    w.port.hold_reads();
    let first = w
        .deliver_in_background("ev-1", World::mention(&thread, "fix this"))
        .await;
    assert!(
        w.port
            .wait_until(PATIENCE, |calls| calls
                .iter()
                .any(|c| matches!(c, Call::ReadThread { .. })))
            .await,
        "the first request reads its thread"
    );
    assert!(w.tasks_here().await.is_empty(), "no task is stored yet");

    let second = ChatEvent::Trigger {
        thread: thread.clone(),
        message_ts: second_ts.clone(),
        user: OTHER.into(),
        text: again.clone(),
        via: Via::Mention,
    };
    assert!(other.submit("ev-2", &second).await.expect("stored"));
    handle_with(&other).await;
    assert!(
        w.tasks.requests().is_empty(),
        "no task started beside the first request"
    );
    let said = other_port.shown_texts();
    assert!(said.iter().any(|t| t.contains(BUSY)), "{said:?}");

    w.port.release_reads();
    tokio::time::timeout(PATIENCE, first)
        .await
        .expect("the first request ends")
        .expect("its handler did not panic");
    // The queued request is back in the inbox: it starts now.
    w.drain().await;
    let requests = w.tasks.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let tasks = w.tasks_here().await;
    assert_eq!(tasks.len(), 2);
    assert_eq!(other_port.refusals(), Vec::<String>::new());
    w.settled().await;
}

/// The claim is the store's: a second request is refused while the first holds the thread,
/// the same request may claim it again, and it is free once released.
#[tokio::test]
async fn a_thread_claim_holds_until_released() {
    let w = World::new().await;
    let svc = &w.bot.svc;
    svc.ensure_alive().await.expect("the worker is registered");
    let store = &svc.store;
    let me = svc.worker_id();
    assert!(
        store
            .claim_thread("slack", "C1", "1.1", "a", me)
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_thread("slack", "C1", "1.1", "a", me)
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_thread("slack", "C1", "1.1", "b", me)
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_thread("slack", "C1", "2.2", "b", me)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .thread_holder("slack", "C1", "1.1")
            .await
            .unwrap()
            .as_deref(),
        Some("a")
    );
    // Another worker's release leaves the claim alone.
    store
        .release_thread("slack", "C1", "1.1", "a", "someone-else")
        .await
        .unwrap();
    assert!(
        !store
            .claim_thread("slack", "C1", "1.1", "b", me)
            .await
            .unwrap()
    );
    store
        .release_thread("slack", "C1", "1.1", "a", me)
        .await
        .unwrap();
    assert!(
        store
            .claim_thread("slack", "C1", "1.1", "b", me)
            .await
            .unwrap()
    );
    // A claim whose worker is not alive is free.
    assert!(
        store
            .claim_thread("slack", "C1", "3.3", "c", "gone:1:1")
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_thread("slack", "C1", "3.3", "d", me)
            .await
            .unwrap()
    );
}
