//! The judge in a chat task: rollouts tied on tests are compared by the model (a scripted
//! endpoint on loopback), and the summary says why each sits where it does in a few words —
//! the model's words made inert on both platforms.

use serde_json::json;
use threadsmith_runner::Outcome;

use super::*;
use crate::testing::{JudgeReply, Script, ScriptedModel};

async fn with_model() -> (World, ScriptedModel) {
    let model = ScriptedModel::start().await;
    let mut config = crate::testing::config();
    config.model.base_url = Some(model.base_url());
    config.model.max_retries = Some(0);
    config.ranking.judge_model = Some("judge-model".into());
    (World::with(config, |_| {}).await, model)
}

#[tokio::test]
async fn tied_rollouts_are_judged_and_the_summary_says_why_in_a_few_words() {
    let (w, model) = with_model().await;
    w.tasks
        .push(Script::Finish(vec![Outcome::Succeeded, Outcome::Succeeded]));
    model.push_judge(JudgeReply::Call(json!({"verdicts": [
        {"rollout": 1, "verdict": "acceptable", "reason": "adds an unneeded flag"},
        {"rollout": 2, "verdict": "best", "reason": "keeps the output format <!channel> @here *now*"},
    ]})));
    w.run_mention("1", "fix this").await;
    assert_eq!(model.tools_asked(), vec!["write_spec", "judge_rollouts"]);
    let judged = &model.requests()[1];
    assert_eq!(judged["model"], "judge-model");

    let summary = &w.summaries()[0];
    let order: Vec<u32> = summary.rollouts.iter().map(|r| r.index).collect();
    assert_eq!(order, vec![2, 1], "the judge's best goes first");
    assert_eq!(
        summary.rollouts[0].headline.as_deref(),
        Some("judge: keeps the output format <!channel> @here *now*")
    );
    let why = summary.rollouts[0].why().unwrap();
    assert_eq!(
        why,
        "judge: keeps the output format ‹!channel› @\u{200b}here \\*now\\*"
    );

    let (_, blocks) = crate::slack::blocks::render(&OutMessage::Summary(summary.clone()));
    let slack = serde_json::to_string(&blocks).unwrap();
    assert!(
        slack.contains(":scales: judge: keeps the output format"),
        "{slack}"
    );
    assert!(
        !slack.contains("<!channel>") && !slack.contains("@here"),
        "{slack}"
    );
    let discord = crate::discord::render::render(&OutMessage::Summary(summary.clone()));
    let embeds = serde_json::to_string(&discord.embeds).unwrap();
    assert!(
        embeds.contains("⚖️ judge: adds an unneeded flag"),
        "{embeds}"
    );
    assert!(
        !embeds.contains("<!channel>") && !embeds.contains("@here"),
        "{embeds}"
    );

    // The pages' evidence: every reason, the judge's among them.
    let rows = w.bot.svc.store.rollouts(&summary.task_id).await.unwrap();
    assert!(
        rows[1]
            .rank_reasons
            .contains(&"judge: acceptable — adds an unneeded flag".to_string()),
        "{:?}",
        rows[1].rank_reasons
    );
    w.settled().await;
}

#[tokio::test]
async fn without_a_tie_the_summary_shows_no_extra_words_and_no_judge_is_asked() {
    let (w, model) = with_model().await;
    w.run_mention("2", "fix this").await;
    assert_eq!(model.tools_asked(), vec!["write_spec"]);
    let summary = &w.summaries()[0];
    assert!(summary.rollouts.iter().all(|r| r.headline.is_none()));
    w.settled().await;
}

#[tokio::test]
async fn a_judge_that_fails_leaves_the_order_and_the_pages_say_so() {
    let (w, model) = with_model().await;
    w.tasks
        .push(Script::Finish(vec![Outcome::Succeeded, Outcome::Succeeded]));
    model.push_judge(JudgeReply::Status(503));
    w.run_mention("3", "fix this").await;
    let summary = &w.summaries()[0];
    let order: Vec<u32> = summary.rollouts.iter().map(|r| r.index).collect();
    assert_eq!(order, vec![1, 2]);
    let rows = w.bot.svc.store.rollouts(&summary.task_id).await.unwrap();
    for r in &rows {
        assert_eq!(
            r.rank_reasons.last().map(String::as_str),
            Some("the judge could not be asked: the model endpoint failed; ranked without it")
        );
    }
    w.settled().await;
}
