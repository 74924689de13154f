//! A handler that panics: its event is marked failed (never left leased), and the thread is
//! told once, with a trace id and nothing internal.

use super::*;

#[tokio::test]
async fn a_panicking_handler_fails_its_event_and_apologises_once() {
    let w = World::new().await;
    w.tasks.push(Script::Panic("scripted breakage".into()));
    let thread = w.thread("1", "<@UBOT> fix this");
    w.deliver("ev", World::mention(&thread, "fix this")).await;

    let (state, error) = w.inbox_row("ev").await;
    assert_eq!(state, "failed");
    let error = error.unwrap();
    assert!(says(&error, &["panicked", "scripted breakage"]), "{error}");
    assert_eq!(w.bot.svc.store.inbox_pending().await.unwrap(), 0);

    let apologies: Vec<String> = w
        .port
        .shown_texts()
        .into_iter()
        .filter(|t| t.starts_with("Sorry, something went wrong on my side"))
        .collect();
    assert_eq!(apologies.len(), 1, "{:?}", w.port.shown_texts());
    assert!(!apologies[0].contains("scripted breakage"));
    let trace = error
        .split("trace ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap();
    assert!(apologies[0].contains(&format!("`{trace}`")));

    // The loop goes on: the next request in another thread is handled.
    w.run_mention("2", "fix this").await;
    assert_eq!(w.summaries().len(), 1);
}
