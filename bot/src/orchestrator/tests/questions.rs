//! "Which repository?": asked when nothing names one; answered by the requester only, once;
//! or expired.

use super::*;
use crate::chat::RepoQuestionView;

async fn asked() -> (World, ThreadRef, RepoQuestionView) {
    let mut config = crate::testing::config();
    config.default_repo = None;
    let w = World::with(config, |_| {}).await;
    let thread = w.thread("1", "<@UBOT> fix this");
    w.deliver("ev", World::mention(&thread, "fix this")).await;
    let question = w
        .port
        .shown()
        .into_iter()
        .find_map(|(_, m)| match m {
            OutMessage::RepoQuestion(q) => Some(q),
            _ => None,
        })
        .expect("the status message asks which repository");
    (w, thread, question)
}

fn answer(thread: &ThreadRef, question_id: &str, user: &str, repo: &str) -> ChatEvent {
    ChatEvent::RepoChosen {
        question_id: question_id.into(),
        thread: thread.clone(),
        user: user.into(),
        repo: repo.into(),
    }
}

#[tokio::test]
async fn the_question_lists_the_repositories_and_waits() {
    let (w, _, question) = asked().await;
    assert_eq!(question.requester, REQUESTER);
    assert_eq!(question.repos, vec!["acme/api", "acme/web"]);
    assert!(
        w.tasks.requests().is_empty(),
        "nothing runs before the answer"
    );
    let open = w.bot.svc.store.open_questions().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].id, question.question_id);
    w.settled().await;
}

#[tokio::test]
async fn only_the_requester_answers_and_the_task_runs_on_the_answer() {
    let (w, thread, q) = asked().await;
    w.deliver("other", answer(&thread, &q.question_id, OTHER, "acme/web"))
        .await;
    assert_eq!(
        w.port.ephemerals_to(OTHER),
        vec![format!("Only <@{REQUESTER}> can answer this.")]
    );
    assert!(w.tasks.requests().is_empty());
    w.deliver(
        "mine",
        answer(&thread, &q.question_id, REQUESTER, "acme/web"),
    )
    .await;
    // A second answer (another click) starts nothing more.
    w.deliver(
        "again",
        answer(&thread, &q.question_id, REQUESTER, "acme/api"),
    )
    .await;
    let requests = w.tasks.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].repo, "acme/web");
    assert_eq!(w.summaries().len(), 1);
    assert!(w.bot.svc.store.open_questions().await.unwrap().is_empty());
    w.settled().await;
}

#[tokio::test]
async fn an_unanswered_question_expires_with_a_word_to_the_requester() {
    let (w, thread, q) = asked().await;
    w.deliver(
        "expired",
        ChatEvent::QuestionExpired {
            question_id: q.question_id.clone(),
        },
    )
    .await;
    assert!(
        w.port
            .shown_texts()
            .iter()
            .any(|t| says(t, &["No repository was chosen", &format!("<@{REQUESTER}>")]))
    );
    assert!(w.port.reactions_on(&thread.thread).is_empty(), "no 👀 left");
    // Answering after the expiry starts nothing.
    w.deliver(
        "late",
        answer(&thread, &q.question_id, REQUESTER, "acme/api"),
    )
    .await;
    assert!(w.tasks.requests().is_empty());
    w.settled().await;
}

/// The real loop: it takes the mention from the inbox, and its timer turns the lapsed question
/// into an expiry event, handled like any other.
#[tokio::test]
async fn the_loop_expires_a_question_by_its_timer() {
    let mut config = crate::testing::config();
    config.default_repo = None;
    config.question_timeout_secs = Some(0);
    let w = World::with(config, |_| {}).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let run = tokio::spawn(w.bot.clone().run(shutdown.clone()));
    let thread = w.thread("1", "<@UBOT> fix this");
    assert!(
        w.bot
            .submit("ev", &World::mention(&thread, "fix this"))
            .await
            .unwrap()
    );
    // The expiry's handler edits the status message, then takes its 👀 off the request.
    let expired = |calls: &[Call]| {
        let said = calls.iter().position(|c| {
            matches!(c, Call::Update { message: OutMessage::Text(t), .. }
                if t.starts_with("No repository was chosen"))
        });
        said.is_some_and(|at| {
            calls[at..]
                .iter()
                .any(|c| matches!(c, Call::React { on: false, .. }))
        })
    };
    assert!(
        w.port.wait_until(PATIENCE, expired).await,
        "{:?}",
        w.port.calls()
    );
    shutdown.cancel();
    tokio::time::timeout(PATIENCE, run)
        .await
        .expect("the loop stops when asked")
        .unwrap();
    assert!(w.bot.svc.store.open_questions().await.unwrap().is_empty());
    assert!(w.tasks.requests().is_empty());
    assert!(w.port.reactions_on(&thread.thread).is_empty());
    // Not `settled`: the loop does not wait for its handlers when it stops, so the expiry's
    // event may not be marked handled yet.
    assert_eq!(w.port.refusals(), Vec::<String>::new());
}
