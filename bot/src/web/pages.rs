//! The pages' markup (maud escapes every interpolated string; `PreEscaped` only wraps HTML made
//! by the safe Markdown renderer or by syntect).

use maud::{DOCTYPE, Markup, PreEscaped, html};
use threadsmith_runner::{CommandRecord, Diff, Outcome};

use super::diff::{self, FileDiff, Highlighter, LineKind};
use super::markdown::{plain, to_safe_html};
use crate::config::ModelPrice;
use crate::spec::TaskSpec;
use crate::store::{
    Approval, Publication, PublicationState, RolloutRow, Store, StoreError, TaskRow,
};

/// Diff lines shown on a page; past that, the patch download has the rest.
const MAX_DIFF_LINES: usize = 20_000;

const STYLE: &str = r#"
:root { color-scheme: light; --fg:#1f2328; --muted:#59636e; --line:#d1d9e0; --add:#dafbe1; --del:#ffebe9; --addn:#aceebb; --deln:#ffcecb; --hunk:#ddf4ff; --ok:#1a7f37; --bad:#cf222e; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: var(--fg); background: #f6f8fa; }
main { max-width: 1100px; margin: 0 auto; padding: 12px; }
header.top { background: #24292f; color: #fff; padding: 8px 12px; font-weight: 600; }
header.top a { color: #fff; text-decoration: none; }
h1 { font-size: 1.4em; margin: .4em 0; overflow-wrap: anywhere; }
h2 { font-size: 1.15em; margin: 1.2em 0 .4em; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; margin: 8px 0; overflow-wrap: anywhere; }
.meta { color: var(--muted); font-size: .9em; }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: .85em; font-weight: 600; color: #fff; background: var(--muted); }
.badge.ok { background: var(--ok); } .badge.bad { background: var(--bad); }
.add { color: var(--ok); } .del { color: var(--bad); }
ul.files { padding-left: 1.2em; } ul.files li { overflow-wrap: anywhere; }
.diff { overflow-x: auto; background: #fff; border: 1px solid var(--line); border-radius: 0 0 6px 6px; }
.file h3 { margin: 16px 0 0; padding: 6px 10px; font-size: .95em; background: #f6f8fa; border: 1px solid var(--line); border-bottom: 0; border-radius: 6px 6px 0 0; overflow-wrap: anywhere; }
table.lines { border-collapse: collapse; font: 12.5px/1.45 ui-monospace, "DejaVu Sans Mono", monospace; width: 100%; }
table.lines td { padding: 0 8px; white-space: pre; vertical-align: top; }
td.n { color: var(--muted); text-align: right; user-select: none; width: 1%; }
tr.a td { background: var(--add); } tr.a td.n { background: var(--addn); }
tr.d td { background: var(--del); } tr.d td.n { background: var(--deln); }
tr.h td { background: var(--hunk); color: var(--muted); }
td.s::before { content: attr(data-s); }
table.matrix { border-collapse: collapse; font-size: .9em; } table.matrix th, table.matrix td { padding: 2px 10px; border: 1px solid var(--line); text-align: left; }
pre { background: #f6f8fa; border: 1px solid var(--line); border-radius: 6px; padding: 8px; overflow-x: auto; font-size: 12.5px; white-space: pre-wrap; overflow-wrap: anywhere; }
details.cmd { background: #fff; border: 1px solid var(--line); border-radius: 6px; margin: 6px 0; padding: 4px 10px; }
details.cmd summary { cursor: pointer; overflow-wrap: anywhere; }
details.cmd code { font-size: .9em; }
a.button { display: inline-block; padding: 4px 12px; border: 1px solid var(--line); border-radius: 6px; background: #fff; text-decoration: none; color: var(--fg); font-weight: 600; }
@media (max-width: 600px) { body { font-size: 14px; } main { padding: 6px; } .card { padding: 8px; } }
"#;

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                meta name="robots" content="noindex, nofollow";
                title { (title) " · threadsmith" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header.top { "threadsmith" }
                main { (body) }
            }
        }
    }
}

pub fn home() -> Markup {
    layout(
        "threadsmith",
        html! { h1 { "threadsmith" } p { "Task pages are reached through the links threadsmith posts in chat." } },
    )
}

pub fn not_found() -> Markup {
    layout(
        "Not found",
        html! { h1 { "Not found" } p { "There is no page here. Links to tasks come from their chat thread; ask there for a fresh one." } },
    )
}

pub fn failed() -> Markup {
    layout(
        "Something went wrong",
        html! { h1 { "Something went wrong" } p { "This page could not be shown. The error is in threadsmith's log." } },
    )
}

fn short(id: &str) -> &str {
    crate::task_id::short_id(id)
}

fn outcome_badge(r: &RolloutRow) -> Markup {
    let (label, class) = match r.outcome {
        Some(Outcome::Succeeded) => ("succeeded", "badge ok"),
        Some(o) => (o.label(), "badge bad"),
        None => (r.phase.as_str(), "badge"),
    };
    html! { span class=(class) { (label) } }
}

fn tests_text(r: &RolloutRow) -> &'static str {
    match &r.test {
        Some(t) if t.passed => "tests pass",
        Some(t) if t.timed_out => "tests timed out",
        Some(_) => "tests fail",
        None => "tests not run",
    }
}

fn spec_of(task: &TaskRow) -> TaskSpec {
    task.spec_json
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_else(|| TaskSpec::from_text(&task.spec))
}

pub struct TaskData {
    pub task: TaskRow,
    pub spec: TaskSpec,
    pub token: String,
    pub rollouts: Vec<RolloutRow>,
    pub approval: Option<Approval>,
    pub publication: Option<Publication>,
    /// A publication not finished (being made, or failed).
    pub pending: Option<Publication>,
    /// Whether approvals are published (`None`: not known here).
    pub publishing: Option<bool>,
    pub thread_link: Option<String>,
    /// The reproduction tests' cross-checks, when they were stored.
    pub crosschecks: Option<threadsmith_runner::crosscheck::Matrix>,
    /// The chain's rounds, when it has follow-ups (`crate::rounds::history`).
    pub rounds: Vec<String>,
    /// The model's price, when the operator priced it: costs in money too.
    pub price: Option<ModelPrice>,
}

impl TaskData {
    pub async fn load(store: &dyn Store, task: TaskRow, token: &str) -> Result<Self, StoreError> {
        let (publication, pending) = match store.publication(&task.id).await? {
            Some(p) if p.state == PublicationState::Published => (Some(p), None),
            other => (None, other),
        };
        Ok(Self {
            price: None,
            spec: spec_of(&task),
            rollouts: store.rollouts(&task.id).await?,
            crosschecks: store.crosschecks(&task.id).await?,
            approval: store.approval(&task.id).await?,
            publication,
            pending,
            publishing: None,
            thread_link: store
                .effect(&format!("permalink:{}", task.id))
                .await?
                .filter(|l| l.starts_with("https://")),
            rounds: match store.chain(&task.id).await?.len() {
                0 | 1 => Vec::new(),
                _ => crate::rounds::history(store, &task.id).await?,
            },
            token: token.to_string(),
            task,
        })
    }
}

fn publication_card(d: &TaskData) -> Markup {
    let (approval, publication) = (&d.approval, &d.publication);
    html! {
        @if let Some(p) = publication {
            div.card {
                "Rollout " (p.rollout) " was approved → "
                @if let Some(url) = p.url.as_deref().filter(|u| u.starts_with("https://") || u.starts_with("http://")) {
                    a rel="noreferrer" href=(url) {
                        @if let Some(n) = p.pr_number { "pull request #" (n) } @else { "branch " code { (p.branch) } }
                    }
                } @else {
                    "branch " code { (p.branch) }
                }
            }
        } @else if let Some(a) = approval {
            div.card {
                "Rollout " (a.rollout) " is approved"
                @if d.publishing == Some(false) {
                    ". Publishing is not configured, so approvals are recorded only: nothing is pushed."
                } @else if let Some(p) = d.pending.as_ref().filter(|p| p.state == PublicationState::Publishing) {
                    "; its branch " code { (p.branch) } " and pull request are being made."
                } @else if let Some(p) = d.pending.as_ref().filter(|p| p.state == PublicationState::Failed) {
                    "; publishing it did not finish: " (p.error.as_deref().unwrap_or("an unknown error"))
                } @else {
                    "; nothing is pushed for it yet."
                }
            }
        }
    }
}

pub fn task(d: &TaskData) -> Markup {
    let t = &d.task;
    let title = plain(&d.spec.title);
    layout(
        &title,
        html! {
            p.meta { "task " code { (short(&t.id)) } " · " (t.state.as_str()) " · " (t.created_at.format("%Y-%m-%d %H:%M UTC")) }
            h1 { (title) }
            p.meta {
                "repository " code { (t.repo) }
                @if let Some(b) = &t.base_ref { " · base " code { (b) } }
                @if let Some(c) = &t.base_commit { " @ " code { (short(c)) } }
                @if let Some(link) = &d.thread_link { " · " a rel="noreferrer" href=(link) { "chat thread" } }
            }
            @if let Some(e) = &t.error { div.card { strong { "Error: " } (e) } }
            @if let Some(total) = crate::cost::task_line(t, &d.rollouts, d.price) {
                p.meta { (total) " · spec and plan: " (crate::cost::usage_details(&t.spec_usage)) }
            }
            @if !d.rounds.is_empty() {
                div.card { "Rounds of this task:" ul { @for line in &d.rounds { li { (line) } } } }
            }
            (publication_card(d))
            h2 { "Rollouts" }
            @if d.rollouts.is_empty() { p { "No rollouts yet." } }
            @for r in &d.rollouts {
                div.card {
                    div {
                        @if let Some(rank) = r.rank { strong { "#" (rank) " " } }
                        a href={ "/t/" (d.token) "/rollouts/" (r.index) } { "Rollout " (r.index) }
                        " " (outcome_badge(r))
                    }
                    div.meta {
                        (tests_text(r)) " · "
                        span.add { "+" (r.lines_added) } " " span.del { "−" (r.lines_removed) }
                        " in " (r.files_changed) " file" @if r.files_changed != 1 { "s" }
                        @if let Some(reason) = &r.rank_reason { " · " (reason) }
                        @if let Some(cost) = crate::cost::rollout_line(r, d.price) { " · " (cost) }
                    }
                    (evidence(r))
                    @if let Some(s) = r.summary.as_deref().filter(|s| !s.trim().is_empty()) {
                        div { (PreEscaped(to_safe_html(s))) }
                    } @else if let Some(detail) = &r.detail {
                        p.meta { (detail) }
                    }
                }
            }
            @if let Some(m) = &d.crosschecks { (super::evidence::crosschecks(m)) }
            h2 { "Task spec" }
            div.card { (PreEscaped(to_safe_html(&d.spec.to_plain_markdown()))) }
        },
    )
}

pub struct RolloutData {
    pub task: TaskRow,
    pub spec: TaskSpec,
    pub token: String,
    pub row: RolloutRow,
    pub diff: Option<Diff>,
    pub commands: Vec<CommandRecord>,
    /// A follow-up round's own increment over the change it started from, file by file.
    pub increment: Option<(String, Vec<String>)>,
    /// The model's price, when the operator priced it: costs in money too.
    pub price: Option<ModelPrice>,
}

impl RolloutData {
    pub async fn load(
        store: &dyn Store,
        task: TaskRow,
        token: &str,
        k: u32,
    ) -> Result<Option<Self>, StoreError> {
        let Some(row) = store
            .rollouts(&task.id)
            .await?
            .into_iter()
            .find(|r| r.index == k)
        else {
            return Ok(None);
        };
        let diff = store.diff(&task.id, k).await?;
        let increment = match store.round_of(&task.id).await? {
            Some(l) => {
                let start = store.diff(&l.from_task, l.from_rollout).await?;
                let from = format!(
                    "round {}, from rollout #{} of the round before",
                    l.round, l.from_rollout
                );
                let whole = diff.as_ref().map_or("", |d| d.patch.as_str());
                start.map(|s| (from, crate::rounds::increment(&s.patch, whole)))
            }
            None => None,
        };
        Ok(Some(Self {
            price: None,
            increment,
            diff,
            commands: store.commands(&task.id, k).await?,
            spec: spec_of(&task),
            token: token.to_string(),
            row,
            task,
        }))
    }
}

fn file_diff(i: usize, f: &FileDiff, budget: &mut usize) -> Markup {
    let mut hl = Highlighter::for_path(&f.path);
    // The hunks' lines that fit in what is left of the page's budget.
    let mut shown = Vec::new();
    let mut cut = false;
    for h in &f.hunks {
        if *budget == 0 {
            cut = true;
            break;
        }
        let take = h.lines.len().min(*budget);
        *budget -= take;
        cut |= take < h.lines.len();
        shown.push((h.header.as_str(), &h.lines[..take]));
    }
    html! {
        section.file id={ "file-" (i) } {
            h3 { (f.path) " " span.meta { "(" (f.status) ") " } span.add { "+" (f.added) } " " span.del { "−" (f.removed) } }
            @for note in f.notes() { p.meta { (note) } }
            div.diff {
                @if f.binary {
                    p.meta { " Binary file: download the patch to see it." }
                } @else {
                    table.lines {
                        @for (header, lines) in &shown {
                            tr.h { td.n { "…" } td.n { "…" } td { (header) } }
                            @for l in lines.iter() {
                                @let (class, sign) = match l.kind {
                                    LineKind::Added => ("a", "+"),
                                    LineKind::Removed => ("d", "-"),
                                    LineKind::Context => ("c", " "),
                                    LineKind::Note => ("h", ""),
                                };
                                tr class=(class) {
                                    td.n { @if let Some(n) = l.old { (n) } }
                                    td.n { @if let Some(n) = l.new { (n) } }
                                    td {
                                        (sign)
                                        @if l.kind == LineKind::Note { (l.text) } @else { (PreEscaped(hl.line(&l.text))) }
                                    }
                                }
                            }
                        }
                        @if cut {
                            tr.h { td.n {} td.n {} td { "… the rest of this diff is in the patch download" } }
                        }
                    }
                }
            }
        }
    }
}

fn command(c: &CommandRecord) -> Markup {
    let failed = c.timed_out || c.exit_code.is_some_and(|e| e != 0);
    let exit = match (c.timed_out, c.exit_code) {
        (true, _) => "timed out".to_string(),
        (false, Some(e)) => format!("exit {e}"),
        (false, None) => "no exit code".to_string(),
    };
    html! {
        details.cmd id={ "cmd-" (c.seq) } open[failed] {
            summary {
                span.meta { (c.seq) ". " (c.kind.as_str()) " " }
                code { (c.command) }
                " · " span class=(if failed { "del" } else { "add" }) { (exit) }
                span.meta { " · " (format!("{:.1} s", c.duration.as_secs_f64())) }
            }
            @if c.output.is_empty() {
                p.meta { "(no output)" }
            } @else {
                pre { (c.output) }
            }
            @if c.dropped_bytes > 0 {
                p.meta { (c.dropped_bytes) " bytes of output were cut (of " (c.output_bytes) ")." }
            }
        }
    }
}

pub fn rollout(d: &RolloutData) -> Markup {
    let r = &d.row;
    let title = plain(&d.spec.title);
    let files = d
        .diff
        .as_ref()
        .map(|x| diff::parse_with_names(&x.patch, &x.files))
        .unwrap_or_default();
    let mut budget = MAX_DIFF_LINES;
    layout(
        &format!("Rollout {} · {title}", r.index),
        html! {
            p.meta { a href={ "/t/" (d.token) } { "← task " code { (short(&d.task.id)) } } }
            h1 { "Rollout " (r.index) ": " (title) }
            div.card {
                (outcome_badge(r)) " "
                @if let Some(rank) = r.rank { "ranked #" (rank) " · " }
                (tests_text(r)) " · "
                span.add { "+" (r.lines_added) } " " span.del { "−" (r.lines_removed) }
                " in " (r.files_changed) " file" @if r.files_changed != 1 { "s" }
                @if let Some(reason) = &r.rank_reason { div.meta { (reason) } }
                (evidence(r))
                @if let Some(net) = &r.network { div.meta { "Network: " (net) } }
                @if let Some(env) = &r.environment { div.meta { "Environment: " (env) } }
                @if let Some(detail) = &r.detail { div.meta { (detail) } }
                @if r.outcome.is_some() {
                    @for line in crate::cost::rollout_details(r, d.price) { div.meta { (line) } }
                }
                @if d.diff.as_ref().is_some_and(|x| !x.patch.is_empty()) {
                    p { a.button href={ "/t/" (d.token) "/rollouts/" (r.index) "/patch" } download={ "rollout-" (r.index) ".patch" } { "Download .patch" } }
                }
            }
            @if let Some((from, lines)) = &d.increment {
                h2 { "This round's own change" }
                div.card {
                    p.meta { "This is " (from) ". The diff below is the whole change against the base, as a pull request would hold it; against the change it started from:" }
                    ul { @for line in lines { li { (line) } } }
                }
            }
            @if let Some(s) = r.summary.as_deref().filter(|s| !s.trim().is_empty()) {
                h2 { "Summary" }
                div.card { (PreEscaped(to_safe_html(s))) }
            }
            (super::instruction_files::section(&d.task.instruction_files))
            h2 { "Files (" (files.len()) ")" }
            @if files.is_empty() { p { "This rollout changed no files." } }
            ul.files {
                @for (i, f) in files.iter().enumerate() {
                    li {
                        a href={ "#file-" (i) } { (f.path) } " " span.add { "+" (f.added) } " " span.del { "−" (f.removed) }
                        @for note in f.notes() { " · " span.meta { (note) } }
                    }
                }
            }
            @for (i, f) in files.iter().enumerate() { (file_diff(i, f, &mut budget)) }
            @if let Some(t) = &r.test {
                h2 { "Tests" }
                div.card {
                    (if t.passed { "passed" } else if t.timed_out { "timed out" } else { "failed" })
                    @if let Some(code) = t.exit_code { " (exit " (code) ")" }
                    " in " (format!("{:.1} s", t.duration.as_secs_f64()))
                    @if !t.output.is_empty() { pre { (t.output) } }
                }
            }
            h2 { "Transcript (" (d.commands.len()) " commands)" }
            p.meta { "Every command the agent ran in its sandbox, in order, with its exit code and output." }
            @for c in &d.commands { (command(c)) }
        },
    )
}

/// All the ranking's evidence, one line each, under its headline (partly written by a model:
/// escaped like any text here).
fn evidence(r: &RolloutRow) -> Markup {
    html! {
        @if !r.rank_reasons.is_empty() {
            details.meta {
                summary {
                    "Why ranked here"
                    @if let Some(h) = &r.rank_headline { ": " (h) }
                }
                ul { @for line in &r.rank_reasons { li { (line) } } }
            }
        }
    }
}

#[cfg(test)]
mod publication_tests {
    use super::*;
    use crate::store::TaskState;

    fn data(publishing: Option<bool>, pending: Option<Publication>) -> TaskData {
        TaskData {
            price: None,
            task: TaskRow {
                id: "0123456789abcdef".into(),
                created_at: chrono::Utc::now(),
                updated_at: chrono::Utc::now(),
                state: TaskState::Done,
                origin: "slack".into(),
                requester: None,
                title: "t".into(),
                spec: "t".into(),
                repo: "acme/calc".into(),
                base_ref: None,
                base_commit: None,
                attempts: 2,
                error: None,
                spec_json: None,
                worker: None,
                tests: None,
                instruction_files: Vec::new(),
                spec_usage: Default::default(),
                model: None,
            },
            spec: TaskSpec::default(),
            token: "tok".into(),
            rollouts: Vec::new(),
            rounds: Vec::new(),
            approval: Some(Approval {
                task_id: "0123456789abcdef".into(),
                rollout: 2,
                approved_by: "U1".into(),
                approved_at: chrono::Utc::now(),
            }),
            publication: None,
            pending,
            publishing,
            thread_link: None,
            crosschecks: None,
        }
    }

    #[test]
    fn every_reason_is_shown_escaped_on_the_task_page() {
        let mut d = data(None, None);
        d.rollouts.push(RolloutRow {
            index: 1,
            phase: "done".into(),
            step: 0,
            outcome: Some(Outcome::Succeeded),
            detail: None,
            summary: None,
            confidence: None,
            sampling: None,
            test: None,
            lines_added: 1,
            lines_removed: 1,
            files_changed: 1,
            rank: Some(1),
            rank_reason: Some("ranked first".into()),
            rank_headline: Some("judge: keeps <b>the</b> format".into()),
            rank_reasons: vec![
                "its tests pass".into(),
                "judge: best — keeps <b>the</b> format".into(),
                "confidence 0.90, 2 changed lines".into(),
            ],
            network: None,
            started_at: None,
            finished_at: None,
            agent_duration: None,
            cost: Default::default(),
            environment: None,
        });
        let page = task(&d).into_string();
        assert!(
            page.contains("Why ranked here: judge: keeps &lt;b&gt;the&lt;/b&gt; format"),
            "{page}"
        );
        assert!(page.contains("<li>its tests pass</li>"), "{page}");
        assert!(page.contains("<li>confidence 0.90, 2 changed lines</li>"));
        assert!(!page.contains("<b>the</b>"), "{page}");
    }

    #[test]
    fn the_approval_card_says_what_is_true() {
        let off = task(&data(Some(false), None)).into_string();
        assert!(
            off.contains("Rollout 2 is approved. Publishing is not configured, so approvals are recorded only"),
            "{off}"
        );
        assert!(!off.contains("not pushed yet"), "{off}");
        let failed = Publication {
            task_id: "0123456789abcdef".into(),
            rollout: 2,
            state: PublicationState::Failed,
            branch: "threadsmith/01234567-2".into(),
            commit: None,
            url: None,
            pr_number: None,
            attempt: Some("a".into()),
            lease_until: None,
            error: Some("GitHub's answer could not be read <b>".into()),
        };
        let page = task(&data(Some(true), Some(failed.clone()))).into_string();
        assert!(
            page.contains(
                "publishing it did not finish: GitHub's answer could not be read &lt;b&gt;"
            ),
            "{page}"
        );
        let making = Publication {
            state: PublicationState::Publishing,
            ..failed
        };
        let page = task(&data(Some(true), Some(making))).into_string();
        assert!(page.contains("and pull request are being made"), "{page}");
    }
}
