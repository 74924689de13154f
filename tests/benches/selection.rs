//! `cargo bench -p threadsmith-tests --bench selection`
//!
//! Selection accuracy (issue 14): every scenario of `threadsmith_tests::selection` run as a
//! real task (real git repository, real sandboxes, the scripted model and judge) under the
//! three orderings set by `[ranking]` — the old order, tests + reproduction tests, the full
//! ranking — and how often the top-ranked rollout is the right one, overall and per scenario,
//! next to what the scenario predicts. Prints Markdown, ready for docs/BENCHMARKS.md; it
//! never fails on a result (a task that fails is reported as such).
//!
//! Settings (environment):
//! - `THREADSMITH_BENCH_SELECTION` — comma-separated scenario names (default: all);
//! - `THREADSMITH_BENCH_ORDERINGS` — comma-separated `old`, `reproduction`, `full` (default all).

use std::time::Instant;

use threadsmith_tests::selection::{self, Ordering, Run, Scenario};

fn wanted_orderings() -> Vec<Ordering> {
    let Ok(list) = std::env::var("THREADSMITH_BENCH_ORDERINGS") else {
        return Ordering::ALL.to_vec();
    };
    list.split(',')
        .filter_map(|w| match w.trim() {
            "old" => Some(Ordering::Old),
            "reproduction" => Some(Ordering::Reproduction),
            "full" => Some(Ordering::Full),
            other => {
                eprintln!("unknown ordering {other:?} (old, reproduction, full)");
                None
            }
        })
        .collect()
}

fn wanted_scenarios() -> Vec<&'static Scenario> {
    let all = selection::all();
    match std::env::var("THREADSMITH_BENCH_SELECTION") {
        Ok(list) => {
            let names: Vec<&str> = list.split(',').map(str::trim).collect();
            all.into_iter()
                .filter(|s| names.contains(&s.name))
                .collect()
        }
        Err(_) => all,
    }
}

fn cell(s: &Scenario, run: &Result<Run, String>) -> String {
    match run {
        Ok(run) => match run.top() {
            Some(top) if top == s.right => format!("{top} ✓"),
            Some(top) => format!("{top} ✗"),
            None => "none".into(),
        },
        Err(_) => "error".into(),
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let orderings = wanted_orderings();
    let scenarios = wanted_scenarios();
    let started = Instant::now();
    // results[o][s]
    let mut results: Vec<Vec<Result<Run, String>>> = Vec::new();
    for o in &orderings {
        let mut row = Vec::new();
        for s in &scenarios {
            let t = Instant::now();
            let run = selection::run(s, *o).await;
            eprintln!(
                "{:<28} {:<28} {} ({:.1} s)",
                o.label(),
                s.name,
                cell(s, &run),
                t.elapsed().as_secs_f64()
            );
            if let Err(e) = &run {
                eprintln!("  {e}");
            }
            row.push(run);
        }
        results.push(row);
    }

    let rollouts: Vec<u32> = scenarios.iter().map(|s| s.rollouts()).collect();
    println!(
        "### Selection accuracy: {} scenarios, {} to {} rollouts each",
        scenarios.len(),
        rollouts.iter().min().unwrap_or(&0),
        rollouts.iter().max().unwrap_or(&0)
    );
    println!();
    println!(
        "Run in {:.0} s, load average after: {}.",
        started.elapsed().as_secs_f64(),
        load_average()
    );
    println!();
    println!(
        "| ordering | right rollout first | accuracy | predicted by the scenarios | judge asked |"
    );
    println!("|---|---|---|---|---|");
    let n = scenarios.len().max(1) as f64;
    for (o, row) in orderings.iter().zip(&results) {
        let right = scenarios
            .iter()
            .zip(row)
            .filter(|(s, r)| r.as_ref().is_ok_and(|r| r.top() == Some(s.right)))
            .count();
        let predicted = scenarios
            .iter()
            .filter(|s| s.expect.of(*o) == s.right)
            .count();
        let errors = row.iter().filter(|r| r.is_err()).count();
        let judged = row
            .iter()
            .filter(|r| r.as_ref().is_ok_and(|r| r.judged))
            .count();
        let errors = if errors > 0 {
            format!(" ({errors} failed to run)")
        } else {
            String::new()
        };
        println!(
            "| {} | {right}/{}{errors} | {:.0} % | {predicted}/{} ({:.0} %) | {judged} |",
            o.label(),
            scenarios.len(),
            100.0 * right as f64 / n,
            scenarios.len(),
            100.0 * predicted as f64 / n
        );
    }
    println!();
    let header: Vec<&str> = orderings.iter().map(|o| o.label()).collect();
    println!(
        "| scenario | right | {} | predicted (old / repro / full) | top headline ({}) |",
        header.join(" | "),
        orderings.last().map_or("", |o| o.label())
    );
    println!("|---|---|{}---|---|", "---|".repeat(orderings.len()));
    for (i, s) in scenarios.iter().enumerate() {
        let cells: Vec<String> = results.iter().map(|row| cell(s, &row[i])).collect();
        let headline = results
            .last()
            .and_then(|row| row[i].as_ref().ok())
            .map_or(String::new(), |r| r.headline.replace('|', "\\|"));
        println!(
            "| {} | {} | {} | {} / {} / {} | {headline} |",
            s.name,
            s.right,
            cells.join(" | "),
            s.expect.old,
            s.expect.reproduction,
            s.expect.full
        );
    }
    println!();
    println!("What each scenario tests:");
    println!();
    for s in &scenarios {
        println!("- `{}`: {}.", s.name, s.about);
    }
}
