//! threadsmith's views as Slack Block Kit. Slack's limits (50 blocks, 3,000 characters a
//! section) are kept by truncating, never by failing to post; every message has a text fallback.

use serde_json::{Value, json};

use crate::chat::markdown::{to_slack_mrkdwn, truncate, user_mention};
use crate::chat::{
    ButtonAction, CHOOSE_REPO, Form, OutMessage, PlanView, RepoQuestionView, RolloutKind,
    StatusView, SummaryView,
};

use super::events::{FEEDBACK_ACTION, FEEDBACK_BLOCK, RETRY_CALLBACK, REVISE_CALLBACK};

const SECTION_CHARS: usize = 3000;
const MAX_BLOCKS: usize = 50;
const TEXT_CHARS: usize = 3000;

fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, SECTION_CHARS, "…")}})
}

fn context(text: &str) -> Value {
    json!({"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(text, SECTION_CHARS, "…")}]})
}

fn button(label: &str, action: &ButtonAction, style: Option<&str>) -> Value {
    let mut b = json!({
        "type": "button",
        "action_id": action.id(),
        "text": {"type": "plain_text", "text": label},
        "value": action.value(),
    });
    if let Some(style) = style {
        b["style"] = json!(style);
    }
    b
}

fn short(task_id: &str) -> &str {
    crate::task_id::short_id(task_id)
}

/// Text fallback and blocks of a message.
pub fn render(message: &OutMessage) -> (String, Vec<Value>) {
    match message {
        OutMessage::Text(text) => {
            let text = truncate(&bot_text(text), TEXT_CHARS, "…");
            (text.clone(), vec![section(&text)])
        }
        OutMessage::RetryOffer { task_id, text } => {
            let text = truncate(&bot_text(text), SECTION_CHARS, "…");
            let blocks = vec![
                section(&text),
                json!({"type": "actions", "elements": [
                    button("Retry…", &ButtonAction::Retry { task_id: task_id.clone() }, None)
                ]}),
            ];
            (text, blocks)
        }
        OutMessage::Status(s) => status(s),
        OutMessage::Summary(s) => summary(s),
        OutMessage::Plan(p) => plan(p),
        OutMessage::RepoQuestion(q) => repo_question(q),
    }
}

/// The bot's own Markdown text (help, status, replies: untrusted parts already made inert by
/// the core) as Slack mrkdwn: converted like every other message, with the bot's own user
/// mentions (`<@U123>`) kept as mentions.
pub fn bot_text(md: &str) -> String {
    const OPEN: char = '\u{E000}';
    const CLOSE: char = '\u{E001}';
    let md: String = md.chars().filter(|c| *c != OPEN && *c != CLOSE).collect();
    let mut mentions = Vec::new();
    let mut protected = String::with_capacity(md.len());
    let mut rest = md.as_str();
    while let Some(at) = rest.find("<@") {
        protected.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let id_len = after
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(after.len());
        if id_len > 0 && after[id_len..].starts_with('>') {
            protected.push(OPEN);
            protected.push_str(&mentions.len().to_string());
            protected.push(CLOSE);
            mentions.push(after[..id_len].to_string());
            rest = &after[id_len + 1..];
        } else {
            protected.push_str("<@");
            rest = after;
        }
    }
    protected.push_str(rest);
    let converted = to_slack_mrkdwn(&protected);
    let mut out = String::with_capacity(converted.len());
    let mut rest = converted.as_str();
    while let Some(open) = rest.find(OPEN) {
        out.push_str(&rest[..open]);
        let after = &rest[open + OPEN.len_utf8()..];
        let close = after.find(CLOSE).unwrap_or(after.len());
        match after[..close]
            .parse::<usize>()
            .ok()
            .and_then(|i| mentions.get(i))
        {
            Some(id) => out.push_str(&format!("<@{id}>")),
            None => out.push_str(&after[..close]),
        }
        rest = after.get(close + CLOSE.len_utf8()..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

fn repo_question(q: &RepoQuestionView) -> (String, Vec<Value>) {
    let text = format!(
        "{}, which repository should I work on?",
        user_mention(&q.requester)
    );
    let options: Vec<Value> = q
        .repos
        .iter()
        .take(100)
        .map(|r| {
            let label: String = r.chars().take(75).collect();
            json!({"text": {"type": "plain_text", "text": label}, "value": format!("{}|{r}", q.question_id)})
        })
        .collect();
    let blocks = vec![
        section(&text),
        json!({"type": "actions", "elements": [{
            "type": "static_select",
            "action_id": CHOOSE_REPO,
            "placeholder": {"type": "plain_text", "text": "Choose a repository"},
            "options": options
        }]}),
    ];
    (text, blocks)
}

fn plan(p: &PlanView) -> (String, Vec<Value>) {
    let head = format!(
        "*Plan: {}*\nfor `{}` — nothing runs until you say so.",
        to_slack_mrkdwn(&p.title),
        to_slack_mrkdwn(&p.repo)
    );
    let blocks = vec![
        section(&head),
        section(&to_slack_mrkdwn(&p.plan)),
        json!({"type": "actions", "elements": [
            button("Run it", &ButtonAction::RunPlan { plan_id: p.plan_id.clone() }, Some("primary")),
            button("Revise…", &ButtonAction::RevisePlan { plan_id: p.plan_id.clone() }, None),
        ]}),
    ];
    (format!("Plan: {}", to_slack_mrkdwn(&p.title)), blocks)
}

fn status(s: &StatusView) -> (String, Vec<Value>) {
    let title = to_slack_mrkdwn(&s.title);
    let mut lines = vec![format!("*{title}*"), to_slack_mrkdwn(&s.headline)];
    for (k, text) in &s.rollouts {
        lines.push(format!("• Rollout {k}: {}", to_slack_mrkdwn(text)));
    }
    let mut blocks = vec![
        section(&lines.join("\n")),
        context(&format!("task `{}`", short(&s.task_id))),
    ];
    if s.running {
        blocks.push(json!({"type": "actions", "elements": [
            button("Cancel", &ButtonAction::Cancel { task_id: s.task_id.clone() }, Some("danger"))
        ]}));
    }
    (
        format!("{title} — {}", to_slack_mrkdwn(&s.headline)),
        blocks,
    )
}

fn summary(s: &SummaryView) -> (String, Vec<Value>) {
    let mut blocks = Vec::new();
    let mut head = format!("*{}*", to_slack_mrkdwn(&s.title));
    if let Some(round) = &s.round {
        head.push_str(&format!("\n{}", to_slack_mrkdwn(round)));
    }
    if let Some(prev) = &s.previous {
        head.push_str(&format!("\nA retry of <{prev}|the earlier attempt>."));
    }
    if let Some(feedback) = &s.feedback {
        head.push_str(&format!("\nFeedback: {}", to_slack_mrkdwn(feedback)));
    }
    if let Some(error) = &s.error {
        head.push_str(&format!("\n:warning: {}", to_slack_mrkdwn(error)));
    }
    if let Some(cost) = &s.cost {
        head.push_str(&format!("\n{cost}"));
    }
    blocks.push(section(&head));
    // Head, the task line and the actions take three blocks; a "more" note takes one more.
    let room = if s.rollouts.len() > MAX_BLOCKS - 3 {
        MAX_BLOCKS - 4
    } else {
        MAX_BLOCKS - 3
    };
    for r in s.rollouts.iter().take(room) {
        let mark = match r.kind {
            RolloutKind::Succeeded => ":white_check_mark:",
            RolloutKind::Untested => ":white_circle:",
            RolloutKind::Failed => ":x:",
        };
        let mut text = format!(
            "{mark} *#{} · Rollout {} — {}*\n{} · {}",
            r.rank,
            r.index,
            to_slack_mrkdwn(&r.outcome),
            r.tests_label(),
            r.diffstat()
        );
        match (&r.diff_link, r.files) {
            (Some(link), _) => text.push_str(&format!(" · <{link}|diff>")),
            (None, 0) => {}
            (None, _) => text.push_str(&format!(" · patch: `rollout-{}.patch` above", r.index)),
        }
        if let Some(cost) = &r.cost {
            text.push_str(&format!(" · {cost}"));
        }
        if let Some(why) = r.why() {
            text.push_str(&format!("\n:scales: {}", to_slack_mrkdwn(&why)));
        }
        if let Some(net) = &r.network {
            text.push_str(&format!(
                "\n:globe_with_meridians: {}",
                to_slack_mrkdwn(net)
            ));
        }
        if let Some((k, by)) = &s.approved
            && *k == r.index
        {
            text.push_str(&format!(
                "\n:heavy_check_mark: Approved by {}",
                user_mention(by)
            ));
            if let Some((url, label)) = &s.published {
                text.push_str(&format!(" · <{url}|{}>", to_slack_mrkdwn(label)));
            }
        }
        let budget = SECTION_CHARS - text.len().min(SECTION_CHARS - 200) - 50;
        let body = to_slack_mrkdwn(&r.summary);
        text.push('\n');
        text.push_str(&truncate(&body, budget, "… (cut)"));
        let mut block = section(&text);
        if s.approved.is_none() && r.files > 0 {
            block["accessory"] = button(
                &format!("Approve rollout {}", r.index),
                &ButtonAction::Approve {
                    task_id: s.task_id.clone(),
                    rollout: r.index,
                },
                Some("primary"),
            );
        }
        blocks.push(block);
    }
    if s.rollouts.len() > room {
        blocks.push(context(&format!(
            "{} more rollouts are not shown.",
            s.rollouts.len() - room
        )));
    }
    let mut task_line = format!("task `{}`", short(&s.task_id));
    if let Some(retry) = &s.retried {
        task_line.push_str(&format!(" · retried as task `{}`", short(retry)));
    }
    blocks.push(context(&task_line));
    if s.approved.is_none() && s.retried.is_none() {
        blocks.push(json!({"type": "actions", "elements": [
            button("Retry…", &ButtonAction::Retry { task_id: s.task_id.clone() }, None)
        ]}));
    }
    let best = s.rollouts.first().map_or(String::from("no rollouts"), |r| {
        format!(
            "best: rollout {} ({})",
            r.index,
            to_slack_mrkdwn(&r.outcome)
        )
    });
    (format!("{} — {best}", to_slack_mrkdwn(&s.title)), blocks)
}

/// The Retry form's choice: from scratch, or from one of the task's rollouts.
pub const RETRY_FROM_LABEL: &str = "Start from rollout (optional)";
pub const RETRY_FROM_HINT: &str = "Empty: from scratch, on the base. A rollout's number (e.g. 2): the next round, starting from its change.";

/// The Retry and Revise forms: optional feedback (and, for Retry, where to start from).
pub fn form(form: &Form) -> Value {
    let (callback, id, title, submit, label) = match form {
        Form::Retry { task_id } => (
            RETRY_CALLBACK,
            task_id,
            "Retry",
            "Run again",
            "Feedback for the agents (optional)",
        ),
        Form::RevisePlan { plan_id } => (
            REVISE_CALLBACK,
            plan_id,
            "Revise the plan",
            "Revise",
            "What should change?",
        ),
    };
    let mut blocks = vec![json!({
        "type": "input",
        "block_id": FEEDBACK_BLOCK,
        "optional": true,
        "label": {"type": "plain_text", "text": label},
        "element": {"type": "plain_text_input", "action_id": FEEDBACK_ACTION, "multiline": true}
    })];
    if let Form::Retry { .. } = form {
        // From scratch (empty), or the next round from one of this task's rollouts.
        blocks.push(json!({
            "type": "input",
            "block_id": super::events::FROM_BLOCK,
            "optional": true,
            "label": {"type": "plain_text", "text": RETRY_FROM_LABEL},
            "hint": {"type": "plain_text", "text": RETRY_FROM_HINT},
            "element": {"type": "plain_text_input", "action_id": super::events::FROM_ACTION, "max_length": 12}
        }));
    }
    json!({
        "type": "modal",
        "callback_id": callback,
        "private_metadata": id,
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": submit},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::RolloutLine;

    fn line(index: u32, summary: &str) -> RolloutLine {
        RolloutLine {
            index,
            rank: index,
            outcome: "succeeded".into(),
            kind: RolloutKind::Succeeded,
            tests: Some(true),
            added: 1,
            removed: 1,
            files: 1,
            summary: summary.into(),
            diff_link: None,
            network: None,
            headline: None,
            cost: None,
        }
    }

    /// An untested change is neither a success nor a failure: it gets a neutral mark.
    #[test]
    fn each_kind_of_rollout_has_its_own_mark() {
        let mut untested = line(1, "changed it");
        untested.kind = RolloutKind::Untested;
        untested.tests = None;
        untested.outcome = "untested: the repository has no test command".into();
        let mut failed = line(2, "broke it");
        failed.kind = RolloutKind::Failed;
        failed.tests = Some(false);
        failed.outcome = "tests failed".into();
        let view = SummaryView {
            task_id: "0a1b2c3d4e5f".into(),
            title: "t".into(),
            rollouts: vec![line(3, "fixed it"), untested, failed],
            ..SummaryView::default()
        };
        let (_, blocks) = render(&OutMessage::Summary(view));
        let texts: Vec<String> = blocks
            .iter()
            .filter_map(|b| b["text"]["text"].as_str())
            .map(str::to_string)
            .collect();
        let of = |rollout: &str| {
            texts
                .iter()
                .find(|t| t.contains(rollout))
                .cloned()
                .unwrap_or_default()
        };
        assert!(
            of("Rollout 3").starts_with(":white_check_mark: "),
            "{texts:?}"
        );
        assert!(
            of("Rollout 1").starts_with(":white_circle: *#1 · Rollout 1 — untested"),
            "{texts:?}"
        );
        assert!(of("Rollout 2").starts_with(":x: "), "{texts:?}");
    }

    #[test]
    fn bot_text_is_mrkdwn_and_keeps_the_bots_mentions_only() {
        let help = crate::chat::commands::help_text("threadsmith", "fix");
        let (text, blocks) = render(&OutMessage::Text(help));
        assert!(text.contains("*Mention me*"), "{text}");
        assert!(!text.contains("**"), "{text}");
        assert_eq!(blocks[0]["text"]["text"], text);
        assert_eq!(
            bot_text("Cancelled by <@U222>. **Done**"),
            "Cancelled by <@U222>. *Done*"
        );
        // Anything else in angle brackets stays inert, and the placeholder cannot be forged.
        assert_eq!(
            bot_text("<!channel> <@U1|x> \u{E000}0\u{E001} <@U9>"),
            "&lt;!channel&gt; &lt;@U1|x&gt; 0 <@U9>"
        );
        let (offer, _) = render(&OutMessage::RetryOffer {
            task_id: "ab".into(),
            text: "**Push failed**".into(),
        });
        assert_eq!(offer, "*Push failed*");
    }

    #[test]
    fn huge_summaries_fit_slacks_limits() {
        let view = SummaryView {
            task_id: "0123456789abcdef".into(),
            title: "t".repeat(5000),
            rollouts: (1..=60).map(|k| line(k, &"word ".repeat(3000))).collect(),
            approved: None,
            published: None,
            previous: None,
            feedback: Some("f".repeat(5000)),
            error: None,
            retried: None,
            cost: None,
            round: None,
        };
        let (text, blocks) = render(&OutMessage::Summary(view));
        assert!(!text.is_empty());
        assert!(blocks.len() <= MAX_BLOCKS, "{} blocks", blocks.len());
        for b in &blocks {
            if let Some(t) = b["text"]["text"].as_str() {
                assert!(t.chars().count() <= SECTION_CHARS, "{}", t.chars().count());
            }
        }
        assert!(
            blocks
                .iter()
                .any(|b| b.to_string().contains("more rollouts are not shown"))
        );
    }

    #[test]
    fn model_text_cannot_ping_or_link() {
        let view = SummaryView {
            task_id: "0a".into(),
            title: "<!here> title".into(),
            rollouts: vec![line(
                1,
                "<!channel> <@U1> [x](javascript:alert(1)) <https://evil|ok>",
            )],
            approved: Some((1, "U9".into())),
            published: Some((
                "https://github.com/acme/api/pull/7".into(),
                "pull request #7".into(),
            )),
            previous: None,
            feedback: None,
            error: None,
            retried: None,
            cost: None,
            round: None,
        };
        let (_, blocks) = render(&OutMessage::Summary(view));
        let all = serde_json::to_string(&blocks).unwrap();
        assert!(!all.contains("<!here>") && !all.contains("<!channel>") && !all.contains("<@U1>"));
        // At most inert text: never a Slack link (`<url|text>`) to a script.
        assert!(!all.contains("<javascript:"));
        // Our own mention of the approver stays a mention; no Approve button once approved.
        assert!(all.contains("<@U9>"));
        assert!(all.contains("<https://github.com/acme/api/pull/7|pull request #7>"));
        assert!(!all.contains("\"approve\""));
    }

    #[test]
    fn approve_buttons_name_their_rollout_and_a_used_retry_is_gone() {
        // Rank 1 is rollout 3: the button says which rollout it approves.
        let mut third = line(3, "best");
        third.rank = 1;
        let mut first = line(1, "second best");
        first.rank = 2;
        let mut view = SummaryView {
            task_id: "0a1b2c3d4e5f".into(),
            title: "t".into(),
            rollouts: vec![third, first],
            ..SummaryView::default()
        };
        let (_, blocks) = render(&OutMessage::Summary(view.clone()));
        let all = serde_json::to_string(&blocks).unwrap();
        assert!(all.contains("#1 · Rollout 3"), "{all}");
        assert!(all.contains("\"text\":\"Approve rollout 3\""), "{all}");
        assert!(all.contains("\"text\":\"Approve rollout 1\""), "{all}");
        assert!(!all.contains("Approve #"), "{all}");
        assert!(all.contains("\"retry\""), "{all}");
        view.retried = Some("ffeeddccbbaa".into());
        let (_, blocks) = render(&OutMessage::Summary(view));
        let all = serde_json::to_string(&blocks).unwrap();
        assert!(!all.contains("\"retry\""), "{all}");
        assert!(all.contains("retried as task `ffeeddcc`"), "{all}");
    }
}
