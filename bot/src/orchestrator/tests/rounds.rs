//! Follow-up rounds: a mention after a summary starts the next round from a rollout's change;
//! bad input (a rollout that does not exist, a round still running, a failed task) is said.

use super::*;
use crate::store::TaskState;

/// `REQUESTER` writes `text` in the thread, mentioning the bot; the event and its ts.
fn reply(w: &World, thread: &ThreadRef, text: &str) -> (ChatEvent, String) {
    let text = format!("<@{BOT_USER}> {text}");
    let ts = w.port.add_reply(thread, REQUESTER, &text);
    let event = ChatEvent::Trigger {
        thread: thread.clone(),
        message_ts: ts.clone(),
        user: REQUESTER.into(),
        text,
        via: Via::Mention,
    };
    (event, ts)
}

fn approve(thread: &ThreadRef, task_id: &str, rollout: u32) -> ChatEvent {
    World::button(
        thread,
        REQUESTER,
        ButtonAction::Approve {
            task_id: task_id.into(),
            rollout,
        },
    )
}

use crate::testing::BOT_USER;

#[tokio::test]
async fn a_follow_up_from_2_starts_round_2_on_its_change_with_the_thread_and_the_request() {
    let w = World::new().await;
    let (thread, first) = w.run_mention("1", "fix this attempts=3").await;
    let (event, _) = reply(&w, &thread, "from #2: keep the output format");
    w.deliver("follow", event).await;

    let requests = w.tasks.requests();
    assert_eq!(requests.len(), 2, "one more task: round 2");
    let round = requests[1].round.as_ref().expect("a round's start");
    let diff2 = w.bot.svc.store.diff(&first.id, 2).await.unwrap().unwrap();
    assert_eq!(round.patch, diff2.patch, "rollout 2's change is the start");
    assert_eq!(Some(&round.base_commit), first.base_commit.as_ref());
    assert_eq!(requests[1].repo, first.repo);
    assert_eq!(requests[1].attempts, 3, "as many rollouts as round 1");
    let spec = requests[1].spec.as_ref().unwrap();
    let ctx = spec.round.as_ref().expect("the spec names the round");
    assert_eq!(ctx.round, 2);
    assert_eq!(ctx.from, "rollout #2 of round 1");
    assert_eq!(ctx.request, "keep the output format");
    assert!(ctx.previous_diff.contains("+new 2"));
    // The whole thread so far, the follow-up included, is in the spec.
    assert!(spec.problem.contains("keep the output format"), "{spec:?}");
    assert!(spec.to_plain_markdown().contains("## This is round 2"));

    let second = requests[1].task_id.clone().unwrap().into_string();
    let link = w.bot.svc.store.round_of(&second).await.unwrap().unwrap();
    assert_eq!(
        (link.root.as_str(), link.round, link.from_rollout),
        (first.id.as_str(), 2, 2)
    );
    // Both summaries say where they stand; round 1's buttons stay.
    let summaries = w.summaries();
    let later = summaries.iter().find(|s| s.task_id == second).unwrap();
    assert!(
        says(
            later.round.as_deref().unwrap(),
            &["Round 2", "from rollout #2 of round 1"]
        ),
        "{later:?}"
    );
    let earlier = summaries.iter().find(|s| s.task_id == first.id).unwrap();
    assert!(says(earlier.round.as_deref().unwrap(), &["Round 1 of 2"]));
    w.settled().await;
}

#[tokio::test]
async fn the_default_start_is_the_approved_rollout_and_old_round_buttons_name_their_round() {
    let w = World::new().await;
    let (thread, first) = w.run_mention("1", "fix this attempts=3").await;
    w.deliver("approve-3", approve(&thread, &first.id, 3)).await;
    let (event, _) = reply(&w, &thread, "also handle tabs");
    w.deliver("follow", event).await;
    let requests = w.tasks.requests();
    assert_eq!(requests.len(), 2);
    let ctx = requests[1].spec.as_ref().unwrap().round.clone().unwrap();
    assert_eq!(ctx.from, "rollout #3 of round 1");
    assert_eq!(ctx.request, "also handle tabs");

    // A third round, from round 2's top-ranked rollout (nothing approved there).
    let (event, _) = reply(&w, &thread, "and spaces");
    w.deliver("follow-2", event).await;
    let requests = w.tasks.requests();
    assert_eq!(requests.len(), 3);
    let ctx = requests[2].spec.as_ref().unwrap().round.clone().unwrap();
    assert_eq!((ctx.round, ctx.from.as_str()), (3, "rollout #1 of round 2"));

    // Round 2's Approve still works, and says which round it belongs to.
    let second = requests[1].task_id.clone().unwrap().into_string();
    w.deliver("approve-old", approve(&thread, &second, 2)).await;
    assert!(
        w.port
            .shown_texts()
            .iter()
            .any(|t| t.starts_with(&format!("Rollout 2 of round 2 approved by <@{REQUESTER}>"))),
        "{:?}",
        w.port.shown_texts()
    );
    w.settled().await;
}

#[tokio::test]
async fn from_a_rollout_that_does_not_exist_is_said_and_starts_nothing() {
    let w = World::new().await;
    let (thread, _) = w.run_mention("1", "fix this attempts=3").await;
    let (event, _) = reply(&w, &thread, "from #9: keep the output format");
    w.deliver("follow", event).await;
    assert_eq!(w.tasks.requests().len(), 1);
    assert!(
        w.port
            .shown_texts()
            .iter()
            .any(|t| t
                == "Round 1 has no rollout #9: it had 3 (#1 to #3). Say `from #1` to `from #3`."),
        "{:?}",
        w.port.shown_texts()
    );
    let (event, _) = reply(&w, &thread, "from #zz: go");
    w.deliver("follow-bad", event).await;
    assert!(
        w.port
            .shown_texts()
            .iter()
            .any(|t| t.contains("`from #zz` is not a rollout number"))
    );
    assert_eq!(w.tasks.requests().len(), 1);
    // The refused follow-ups left the thread free: the next one starts at once.
    let (event, _) = reply(&w, &thread, "from #2: keep the output format");
    w.deliver("follow-ok", event).await;
    assert_eq!(w.tasks.requests().len(), 2);
    assert!(
        !w.port
            .shown_texts()
            .iter()
            .any(|t| t.contains("already running")),
        "{:?}",
        w.port.shown_texts()
    );
    w.settled().await;
}

#[tokio::test]
async fn a_follow_up_after_a_failed_task_starts_afresh_and_says_so() {
    let w = World::new().await;
    w.tasks
        .push(Script::Refuse("The repository is gone.".into()));
    let (thread, first) = w.run_mention("1", "fix this").await;
    assert_eq!(first.state, TaskState::Failed);
    let (event, _) = reply(&w, &thread, "from #2: try again");
    w.deliver("follow", event).await;
    let requests = w.tasks.requests();
    assert_eq!(requests.len(), 2, "a new task");
    assert!(requests[1].round.is_none(), "from the base");
    assert!(
        w.port.shown_texts().iter().any(|t| t.starts_with(
            "The last task in this thread failed, so there is no rollout to build on"
        )),
        "{:?}",
        w.port.shown_texts()
    );
    w.settled().await;
}

#[tokio::test]
async fn a_follow_up_while_a_round_runs_waits_behind_it() {
    let w = World::new().await;
    let (thread, first) = w.run_mention("1", "fix this").await;
    w.tasks.push(Script::UntilCancelled);
    let (event, _) = reply(&w, &thread, "also handle tabs");
    let handler = w.deliver_in_background("round-2", event).await;
    let running = w
        .tasks
        .wait_running(2, PATIENCE)
        .await
        .expect("round 2 runs");
    assert_eq!(running[0], first.id);
    let running = running[1].clone();
    w.wait_cancellable().await;

    let (event, _) = reply(&w, &thread, "and spaces");
    w.deliver("round-3", event).await;
    assert_eq!(w.tasks.requests().len(), 2, "not started beside it");
    assert!(
        w.port.shown_texts().iter().any(|t| t
            .starts_with("A task is already running in this thread")
            && t.contains("Your request is queued")),
        "{:?}",
        w.port.shown_texts()
    );
    // Round 2 is cancelled: the queued follow-up starts then, on round 1 (the last round
    // that ended with rollouts), and says why.
    w.deliver(
        "cancel",
        World::button(
            &thread,
            REQUESTER,
            ButtonAction::Cancel {
                task_id: running.clone(),
            },
        ),
    )
    .await;
    tokio::time::timeout(PATIENCE, handler)
        .await
        .expect("round 2 stops")
        .unwrap();
    w.drain().await;
    let requests = w.tasks.requests();
    assert_eq!(requests.len(), 3, "the queued follow-up ran");
    let ctx = requests[2].spec.as_ref().unwrap().round.clone().unwrap();
    assert_eq!(ctx.round, 3, "rounds number on");
    assert_eq!(ctx.from, "rollout #1 of round 1");
    assert!(
        w.port.shown_texts().iter().any(|t| t
            == "The latest round here was cancelled, so round 3 builds on rollout #1 of round 1."),
        "{:?}",
        w.port.shown_texts()
    );
    w.settled().await;
}

fn retry_from(task_id: &str, feedback: &str, from: &str) -> ChatEvent {
    ChatEvent::RetrySubmitted {
        task_id: task_id.into(),
        user: REQUESTER.into(),
        feedback: feedback.into(),
        from: from.into(),
    }
}

#[tokio::test]
async fn retry_offers_from_scratch_or_from_a_rollout() {
    let w = World::new().await;
    let (_, first) = w.run_mention("1", "fix this").await;
    w.deliver("bad", retry_from(&first.id, "x", "two")).await;
    w.deliver("nine", retry_from(&first.id, "x", "9")).await;
    let told = w.port.ephemerals_to(REQUESTER);
    assert!(
        says(
            &told[0],
            &[
                "`two` is not a rollout number",
                "empty to retry from scratch"
            ]
        ),
        "{told:?}"
    );
    assert_eq!(
        told[1],
        "Round 1 has no rollout #9: it had 2 (#1 to #2). Say `from #1` to `from #2`."
    );
    assert_eq!(
        w.tasks.requests().len(),
        1,
        "nothing started, the one Retry kept"
    );

    w.deliver("ok", retry_from(&first.id, "keep the format", "#2"))
        .await;
    let requests = w.tasks.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[1].round.as_ref().unwrap().base_commit,
        first.base_commit.clone().unwrap()
    );
    let spec = requests[1].spec.as_ref().unwrap();
    let ctx = spec.round.as_ref().unwrap();
    assert_eq!((ctx.round, ctx.from.as_str()), (2, "rollout #2 of round 1"));
    assert_eq!(ctx.request, "keep the format");
    assert_eq!(spec.feedback.as_deref(), Some("keep the format"));
    let second = requests[1].task_id.clone().unwrap().into_string();
    assert_eq!(
        w.link(&second).await.retry_of.as_deref(),
        Some(first.id.as_str())
    );
    w.settled().await;
}
