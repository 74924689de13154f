//! `threadsmith show`: a stored task, as text.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

use crate::config::Config;
use crate::store::RolloutRow;

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The task's id, or the start of it.
    pub task: String,
    /// Print rollout N's patch.
    #[arg(long, value_name = "N")]
    pub diff: Option<u32>,
    /// Print every command rollout N ran, with its output.
    #[arg(long, value_name = "N")]
    pub transcript: Option<u32>,
}

fn one_line(text: &str, max: usize) -> String {
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if line.chars().count() > max {
        format!("{}…", line.chars().take(max - 1).collect::<String>())
    } else {
        line.to_string()
    }
}

/// The rollouts as a table, in the order given (rank order from the store).
pub fn ranked_table(rollouts: &[RolloutRow]) -> String {
    let mut out = format!(
        "{:<5} {:<8} {:<13} {:<7} {:<16} {:<5} {}\n",
        "rank", "rollout", "outcome", "tests", "diff", "conf", "summary"
    );
    for r in rollouts {
        let tests = match &r.test {
            Some(t) if t.passed => "pass",
            Some(t) if t.timed_out => "timeout",
            Some(_) => "fail",
            None => "-",
        };
        let diff = format!(
            "+{} -{} ({} file{})",
            r.lines_added,
            r.lines_removed,
            r.files_changed,
            if r.files_changed == 1 { "" } else { "s" }
        );
        let summary = r
            .summary
            .as_deref()
            .or(r.detail.as_deref())
            .map(|s| one_line(s, 60))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<5} {:<8} {:<13} {:<7} {:<16} {:<5} {}",
            r.rank.map_or("-".to_string(), |k| k.to_string()),
            format!("#{}", r.index),
            r.outcome.map_or(r.phase.as_str(), |o| o.label()),
            tests,
            diff,
            r.confidence.map_or("-".to_string(), |c| format!("{c:.2}")),
            summary
        );
    }
    out
}

/// The one stored task whose id starts with `prefix`.
pub async fn find_task(
    store: &dyn crate::store::Store,
    prefix: &str,
    where_: &str,
) -> anyhow::Result<crate::store::TaskRow> {
    // Ids are lowercase hex: a typed prefix is read as one, and anything else names no task.
    let found = match crate::task_id::parse_prefix(prefix) {
        Ok(prefix) => store.find_tasks(&prefix).await?,
        Err(e @ crate::task_id::PrefixError::Empty) => bail!("{e}"),
        Err(e) => bail!(
            "no task starts with `{prefix}` in {} ({e})",
            crate::store::redact_url(where_)
        ),
    };
    match found.as_slice() {
        [] => bail!(
            "no task starts with `{prefix}` in {}",
            crate::store::redact_url(where_)
        ),
        [one] => Ok(one.clone()),
        many => bail!(
            "`{prefix}` matches {} tasks; give more of the id: {}",
            many.len(),
            many.iter()
                .map(|t| &t.id[..t.id.len().min(12)])
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A line of the answer (writing to a `String` cannot fail).
macro_rules! outln {
    ($out:expr) => {
        $out.push('\n')
    };
    ($out:expr, $($arg:tt)*) => {{
        let _ = writeln!($out, $($arg)*);
    }};
}

macro_rules! outw {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
    }};
}

/// Prints the answer; a reader that closed the pipe ends the command quietly.
fn finish(out: &str) -> anyhow::Result<ExitCode> {
    super::out::print(out)?;
    Ok(ExitCode::SUCCESS)
}

pub async fn show(config: Config, args: ShowArgs) -> anyhow::Result<ExitCode> {
    let store = crate::store::open(&config.database_url()).await?;
    let task = find_task(store.as_ref(), &args.task, &config.database_url()).await?;
    let mut out = String::new();
    if let Some(k) = args.diff {
        match store.diff(&task.id, k).await? {
            Some(d) => super::out::print(&d.patch)?,
            None => bail!(
                "task {} has no rollout {k}",
                crate::task_id::short_id(&task.id)
            ),
        }
        return finish(&out);
    }
    if let Some(k) = args.transcript {
        let commands = store.commands(&task.id, k).await?;
        for c in commands {
            outln!(
                out,
                "── {} [{}] {} · exit {} · {:.1}s{}",
                c.seq,
                c.kind.as_str(),
                c.command.lines().next().unwrap_or(""),
                c.exit_code.map_or("-".into(), |e| e.to_string()),
                c.duration.as_secs_f64(),
                if c.timed_out { " · timed out" } else { "" }
            );
            outln!(out, "{}", c.output.trim_end());
        }
        return finish(&out);
    }
    out.push_str(&task_text(store.as_ref(), &task, &config).await?);
    finish(&out)
}

/// `show`'s answer for a task: its facts, its cost, its rollouts ranked, and each rollout's
/// outcome, cost and commands.
pub async fn task_text(
    store: &dyn crate::store::Store,
    task: &crate::store::TaskRow,
    config: &Config,
) -> anyhow::Result<String> {
    let mut out = String::new();
    let stage = crate::store::stage(store, task).await?;
    outln!(out, "task {}  ({})", task.id, stage.as_str());
    outln!(out, "title: {}", task.title);
    outln!(
        out,
        "repo:  {} @ {} {}",
        task.repo,
        task.base_ref.as_deref().unwrap_or("?"),
        task.base_commit
            .as_deref()
            .map_or("", |c| &c[..c.len().min(10)])
    );
    outln!(
        out,
        "from:  {} at {}",
        task.origin,
        task.created_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    if let Some(e) = &task.error {
        outln!(out, "error: {e}");
    }
    if store.chain(&task.id).await?.len() > 1 {
        let place = store.place(&task.id).await?;
        outln!(out, "round: {} — the task's rounds:", place.round);
        for line in crate::rounds::history(store, &task.id).await? {
            outln!(out, "  {line}");
        }
    }
    let rollouts = store.rollouts(&task.id).await?;
    if rollouts.is_empty() {
        return Ok(out);
    }
    let price = config.price(task.model.as_deref());
    if let Some(total) = crate::cost::task_line(task, &rollouts, price) {
        outln!(out, "cost:  {}", total.trim_start_matches("Total: "));
        outln!(
            out,
            "spec:  {} (the spec and plan calls)",
            crate::cost::usage_details(&task.spec_usage)
        );
    }
    outln!(out);
    outw!(out, "{}", ranked_table(&rollouts));
    for r in &rollouts {
        outln!(out, "\n## rollout {}", r.index);
        if r.outcome.is_some() {
            for line in crate::cost::rollout_details(r, price) {
                outln!(out, "{line}");
            }
        }
        if let Some(reason) = &r.rank_reason {
            outln!(out, "rank:    {reason}");
        }
        if let Some(headline) = &r.rank_headline {
            outln!(out, "why:     {headline}");
        }
        for line in &r.rank_reasons {
            outln!(out, "         - {line}");
        }
        if let Some(detail) = &r.detail {
            outln!(out, "outcome: {}", detail);
        }
        if let Some(env) = &r.environment {
            outln!(out, "environment: {env}");
        }
        if let Some(net) = &r.network {
            outln!(out, "network: {net}");
        }
        if let Some(s) = &r.summary {
            outln!(out, "summary:\n{}", s.trim());
        }
        let commands = store.commands(&task.id, r.index).await?;
        for c in &commands {
            outln!(
                out,
                "  {:>3}. [{}] {}  → {}",
                c.seq,
                c.kind.as_str(),
                one_line(&c.command, 70),
                match (c.exit_code, c.timed_out) {
                    (_, true) => "timed out".to_string(),
                    (Some(e), false) => format!("exit {e}"),
                    (None, false) => "killed".to_string(),
                }
            );
        }
    }
    Ok(out)
}
