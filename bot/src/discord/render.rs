//! The core's views → Discord messages: content (at most 2,000 characters), embeds (at most 10,
//! 6,000 characters in all) and components (at most 5 rows of 5 buttons). Button ids carry the
//! task and rollout (`approve:<task>:<k>`), so they work after a restart.

use serenity::all::{
    ButtonStyle, CreateActionRow, CreateButton, CreateEmbed, CreateSelectMenu,
    CreateSelectMenuKind, CreateSelectMenuOption,
};

use super::markdown::to_discord;
use crate::chat::markdown::{truncate, user_mention};
use crate::chat::{
    ButtonAction, CHOOSE_REPO, OutMessage, PlanView, RepoQuestionView, RolloutKind, StatusView,
    SummaryView,
};

pub const CONTENT_CHARS: usize = 2000;
const EMBEDS_TOTAL: usize = 5800;
const MAX_EMBEDS: usize = 10;
const MAX_ROWS: usize = 5;
const BUTTONS_PER_ROW: usize = 5;

/// A message as Discord takes it.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    pub content: String,
    pub embeds: Vec<CreateEmbed>,
    pub components: Vec<CreateActionRow>,
}

/// `approve:<task>:<k>`, `retry:<task>`, …
pub fn custom_id(action: &ButtonAction) -> String {
    format!("{}:{}", action.id(), action.value())
}

pub fn parse_custom_id(id: &str) -> Option<ButtonAction> {
    let (action, value) = id.split_once(':')?;
    ButtonAction::parse(action, value)
}

fn button(label: &str, action: &ButtonAction, style: ButtonStyle) -> CreateButton {
    CreateButton::new(custom_id(action))
        .label(label)
        .style(style)
}

fn rows(buttons: Vec<CreateButton>) -> Vec<CreateActionRow> {
    buttons
        .chunks(BUTTONS_PER_ROW)
        .take(MAX_ROWS)
        .map(|c| CreateActionRow::Buttons(c.to_vec()))
        .collect()
}

fn short(task_id: &str) -> &str {
    crate::task_id::short_id(task_id)
}

fn content(text: &str) -> String {
    truncate(text, CONTENT_CHARS, "…")
}

pub fn render(message: &OutMessage) -> Rendered {
    match message {
        // The core's own text (mentions it wrote, untrusted parts already made inert).
        OutMessage::Text(text) => Rendered {
            content: content(text),
            ..Rendered::default()
        },
        OutMessage::RetryOffer { task_id, text } => Rendered {
            content: content(text),
            components: rows(vec![button(
                "Retry…",
                &ButtonAction::Retry {
                    task_id: task_id.clone(),
                },
                ButtonStyle::Primary,
            )]),
            ..Rendered::default()
        },
        OutMessage::Status(s) => status(s),
        OutMessage::Summary(s) => summary(s),
        OutMessage::Plan(p) => plan(p),
        OutMessage::RepoQuestion(q) => repo_question(q),
    }
}

fn status(s: &StatusView) -> Rendered {
    let mut lines = vec![
        format!("**{}**", to_discord(&s.title)),
        to_discord(&s.headline),
    ];
    for (k, text) in &s.rollouts {
        lines.push(format!("• Rollout {k}: {}", to_discord(text)));
    }
    lines.push(format!("-# task `{}`", short(&s.task_id)));
    let components = if s.running {
        rows(vec![button(
            "Cancel",
            &ButtonAction::Cancel {
                task_id: s.task_id.clone(),
            },
            ButtonStyle::Danger,
        )])
    } else {
        Vec::new()
    };
    Rendered {
        content: content(&lines.join("\n")),
        embeds: Vec::new(),
        components,
    }
}

fn summary(s: &SummaryView) -> Rendered {
    let mut head = format!("**{}**", to_discord(&s.title));
    if let Some(round) = &s.round {
        head.push_str(&format!("\n{}", to_discord(round)));
    }
    if let Some(prev) = &s.previous {
        head.push_str(&format!("\nA retry of [the earlier attempt]({prev})."));
    }
    if let Some(feedback) = &s.feedback {
        head.push_str(&format!("\nFeedback: {}", to_discord(feedback)));
    }
    if let Some(error) = &s.error {
        head.push_str(&format!("\n⚠️ {}", to_discord(error)));
    }
    if let Some(cost) = &s.cost {
        head.push_str(&format!("\n{cost}"));
    }
    if let Some((k, by)) = &s.approved {
        head.push_str(&format!(
            "\n✅ Rollout {k} approved by {}",
            user_mention(by)
        ));
        if let Some((url, label)) = &s.published {
            head.push_str(&format!(" · [{}]({url})", to_discord(label)));
        }
    }
    let shown = s.rollouts.len().min(MAX_EMBEDS);
    if s.rollouts.len() > shown {
        head.push_str(&format!(
            "\n{} more rollouts are not shown.",
            s.rollouts.len() - shown
        ));
    }
    head.push_str(&format!("\n-# task `{}`", short(&s.task_id)));
    if let Some(retry) = &s.retried {
        head.push_str(&format!(" · retried as task `{}`", short(retry)));
    }

    let mut embeds = Vec::new();
    let mut used = 0usize;
    for (i, r) in s.rollouts.iter().take(shown).enumerate() {
        let mark = match r.kind {
            RolloutKind::Succeeded => "✅",
            RolloutKind::Untested => "⚪",
            RolloutKind::Failed => "❌",
        };
        let title = truncate(
            &format!("{mark} #{} · Rollout {} — {}", r.rank, r.index, r.outcome),
            250,
            "…",
        );
        let mut facts = format!("{} · {}", r.tests_label(), r.diffstat());
        match (&r.diff_link, r.files) {
            (Some(link), _) => facts.push_str(&format!(" · [diff]({link})")),
            (None, 0) => {}
            (None, _) => facts.push_str(&format!(" · patch: `rollout-{}.patch`", r.index)),
        }
        if let Some(cost) = &r.cost {
            facts.push_str(&format!(" · {cost}"));
        }
        if let Some(why) = r.why() {
            facts.push_str(&format!("\n⚖️ {why}"));
        }
        if let Some(net) = &r.network {
            facts.push_str(&format!("\n🌐 {}", to_discord(net)));
        }
        // What is left of the embeds' budget, shared by the rollouts still to come.
        let left = EMBEDS_TOTAL.saturating_sub(used);
        let share = (left / (shown - i)).min(1500);
        let body_budget = share.saturating_sub(title.chars().count() + facts.chars().count() + 2);
        let body = truncate(&to_discord(&r.summary), body_budget.max(20), "… (cut)");
        let description = format!("{facts}\n{body}");
        used += title.chars().count() + description.chars().count();
        let mut embed = CreateEmbed::new()
            .title(title)
            .description(description)
            .colour(match r.kind {
                RolloutKind::Succeeded => 0x1a7f37,
                // GitHub's neutral grey.
                RolloutKind::Untested => 0x6e7781,
                RolloutKind::Failed => 0xcf222e,
            });
        if let Some(link) = &r.diff_link {
            embed = embed.url(link);
        }
        embeds.push(embed);
    }

    let mut buttons = Vec::new();
    if s.approved.is_none() {
        // Approve per rollout (four rows at most), then Retry.
        for r in s
            .rollouts
            .iter()
            .filter(|r| r.files > 0)
            .take((MAX_ROWS - 1) * BUTTONS_PER_ROW)
        {
            buttons.push(button(
                &format!("Approve rollout {}", r.index),
                &ButtonAction::Approve {
                    task_id: s.task_id.clone(),
                    rollout: r.index,
                },
                if r.kind == RolloutKind::Succeeded {
                    ButtonStyle::Success
                } else {
                    ButtonStyle::Secondary
                },
            ));
        }
    }
    let mut components = rows(buttons);
    if s.approved.is_none() && s.retried.is_none() {
        components.push(CreateActionRow::Buttons(vec![button(
            "Retry…",
            &ButtonAction::Retry {
                task_id: s.task_id.clone(),
            },
            ButtonStyle::Primary,
        )]));
    }
    Rendered {
        content: content(&head),
        embeds,
        components,
    }
}

fn plan(p: &PlanView) -> Rendered {
    let text = format!(
        "**Plan: {}**\nfor `{}` — nothing runs until you say so.\n\n{}",
        to_discord(&p.title),
        p.repo.replace('`', "'"),
        to_discord(&p.plan)
    );
    Rendered {
        content: content(&text),
        embeds: Vec::new(),
        components: rows(vec![
            button(
                "Run it",
                &ButtonAction::RunPlan {
                    plan_id: p.plan_id.clone(),
                },
                ButtonStyle::Success,
            ),
            button(
                "Revise…",
                &ButtonAction::RevisePlan {
                    plan_id: p.plan_id.clone(),
                },
                ButtonStyle::Secondary,
            ),
        ]),
    }
}

fn repo_question(q: &RepoQuestionView) -> Rendered {
    let options: Vec<CreateSelectMenuOption> = q
        .repos
        .iter()
        .filter(|r| r.len() <= 100)
        .take(25)
        .map(|r| {
            let label: String = r.chars().take(100).collect();
            CreateSelectMenuOption::new(label, r.clone())
        })
        .collect();
    let menu = CreateSelectMenu::new(
        format!("{CHOOSE_REPO}:{}", q.question_id),
        CreateSelectMenuKind::String { options },
    )
    .placeholder("Choose a repository");
    Rendered {
        content: format!(
            "{}, which repository should I work on?",
            user_mention(&q.requester)
        ),
        embeds: Vec::new(),
        components: vec![CreateActionRow::SelectMenu(menu)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::RolloutLine;

    fn line(k: u32, summary: &str) -> RolloutLine {
        RolloutLine {
            index: k,
            rank: k,
            outcome: "succeeded".into(),
            kind: RolloutKind::Succeeded,
            tests: Some(true),
            added: 1,
            removed: 1,
            files: 1,
            summary: summary.into(),
            diff_link: Some(format!("https://ts.example.com/t/abc/rollouts/{k}")),
            network: None,
            headline: None,
            cost: None,
        }
    }

    #[test]
    fn a_big_summary_keeps_discords_limits() {
        let view = SummaryView {
            task_id: "0a1b2c3d4e5f".into(),
            title: "t".repeat(3000),
            rollouts: (1..=16).map(|k| line(k, &"x".repeat(5000))).collect(),
            approved: None,
            published: None,
            previous: None,
            feedback: Some("y".repeat(3000)),
            error: None,
            retried: None,
            cost: None,
            round: None,
        };
        let r = render(&OutMessage::Summary(view));
        assert!(r.content.chars().count() <= CONTENT_CHARS);
        assert!(r.embeds.len() <= MAX_EMBEDS);
        let json = serde_json::to_value(&r.embeds).unwrap();
        let total: usize = json
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e["title"].as_str().unwrap_or("").chars().count()
                    + e["description"].as_str().unwrap_or("").chars().count()
            })
            .sum();
        assert!(total <= 6000, "{total}");
        assert!(r.components.len() <= MAX_ROWS);
        let rows = serde_json::to_value(&r.components).unwrap();
        for row in rows.as_array().unwrap() {
            assert!(row["components"].as_array().unwrap().len() <= BUTTONS_PER_ROW);
        }
        assert!(rows.to_string().contains("approve:0a1b2c3d4e5f:1"));
        assert!(rows.to_string().contains("retry:0a1b2c3d4e5f"));
    }

    /// An untested change is neither a success nor a failure: a neutral mark and colour.
    #[test]
    fn each_kind_of_rollout_has_its_own_mark_and_colour() {
        let mut untested = line(1, "changed it");
        untested.kind = RolloutKind::Untested;
        untested.tests = None;
        untested.outcome = "untested: the repository has no test command".into();
        let mut failed = line(2, "broke it");
        failed.kind = RolloutKind::Failed;
        failed.outcome = "tests failed".into();
        let view = SummaryView {
            task_id: "0a1b2c3d4e5f".into(),
            title: "t".into(),
            rollouts: vec![line(3, "fixed it"), untested, failed],
            ..SummaryView::default()
        };
        let r = render(&OutMessage::Summary(view));
        let embeds = serde_json::to_value(&r.embeds).unwrap();
        let marks: Vec<(String, u64)> = embeds
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["title"].as_str().unwrap().to_string(),
                    e["color"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            marks,
            vec![
                ("✅ #3 · Rollout 3 — succeeded".to_string(), 0x1a7f37),
                (
                    "⚪ #1 · Rollout 1 — untested: the repository has no test command".to_string(),
                    0x6e7781
                ),
                ("❌ #2 · Rollout 2 — tests failed".to_string(), 0xcf222e),
            ]
        );
    }

    #[test]
    fn button_ids_round_trip() {
        let a = ButtonAction::Approve {
            task_id: "0a1b".into(),
            rollout: 2,
        };
        assert_eq!(parse_custom_id(&custom_id(&a)), Some(a));
        assert_eq!(parse_custom_id("approve:zz:1"), None);
    }

    #[test]
    fn approve_buttons_name_their_rollout_and_a_used_retry_is_gone() {
        let mut third = line(3, "best");
        third.rank = 1;
        let mut view = SummaryView {
            task_id: "0a1b2c3d4e5f".into(),
            title: "t".into(),
            rollouts: vec![third],
            ..SummaryView::default()
        };
        let r = render(&OutMessage::Summary(view.clone()));
        let rows = serde_json::to_value(&r.components).unwrap().to_string();
        assert!(rows.contains("\"label\":\"Approve rollout 3\""), "{rows}");
        assert!(rows.contains("retry:0a1b2c3d4e5f"), "{rows}");
        view.retried = Some("ffeeddccbbaa".into());
        let r = render(&OutMessage::Summary(view));
        let rows = serde_json::to_value(&r.components).unwrap().to_string();
        assert!(!rows.contains("retry:"), "{rows}");
        assert!(
            r.content.contains("retried as task `ffeeddcc`"),
            "{}",
            r.content
        );
    }
}
