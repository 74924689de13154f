//! Live progress of `threadsmith run`: a line per rollout in a terminal, plain lines otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use threadsmith_runner::{CommandRecord, Phase, RolloutEvent};

use crate::pipeline::{ProgressSink, TaskEvent};

pub struct CliProgress {
    bars: Option<Bars>,
    /// Which tests the rollouts run (said again under the ranked table).
    tests: Mutex<Option<String>>,
}

struct Bars {
    multi: MultiProgress,
    rollouts: Mutex<HashMap<u32, ProgressBar>>,
}

fn phase_text(phase: &Phase) -> String {
    match phase {
        Phase::Starting => "starting the sandbox".into(),
        Phase::Setup => "running the setup command".into(),
        Phase::Agent { step: 0 } => "agent starting".into(),
        Phase::Agent { step } => format!("agent step {step}"),
        Phase::CollectingDiff => "collecting the diff".into(),
        Phase::Testing => "running the tests".into(),
    }
}

fn command_text(c: &CommandRecord) -> String {
    let mut line: String = c
        .command
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(70)
        .collect();
    if line.len() < c.command.len() {
        line.push('…');
    }
    let status = match (c.exit_code, c.timed_out) {
        (_, true) => "timed out".to_string(),
        (Some(code), false) => format!("exit {code}"),
        (None, false) => "killed".to_string(),
    };
    format!("$ {line}  ({status}, {:.1}s)", c.duration.as_secs_f64())
}

impl CliProgress {
    pub fn new() -> Self {
        let bars = std::io::stderr().is_terminal().then(|| Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            rollouts: Mutex::default(),
        });
        Self {
            bars,
            tests: Mutex::default(),
        }
    }

    /// The task's tests line (`tests: `cargo test`, detected from …`), once rollouts started.
    pub fn tests(&self) -> Option<String> {
        self.tests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn finish(&self) {
        if let Some(bars) = &self.bars {
            let _ = bars.multi.clear();
        }
    }

    fn line(&self, text: &str) {
        match &self.bars {
            Some(bars) => {
                let _ = bars.multi.println(text);
            }
            None => eprintln!("{text}"),
        }
    }

    fn rollout(&self, index: u32, message: String, done: bool) {
        match &self.bars {
            Some(bars) => {
                let map = bars
                    .rollouts
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some(bar) = map.get(&index) {
                    if done {
                        bar.finish_with_message(message);
                    } else {
                        bar.set_message(message);
                    }
                }
            }
            None => eprintln!("rollout {index}: {message}"),
        }
    }
}

impl Default for CliProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl ProgressSink for CliProgress {
    fn on_event(&self, event: &TaskEvent<'_>) {
        match event {
            TaskEvent::Created { task_id, title } => {
                self.line(&format!(
                    "task {}: {title}",
                    crate::task_id::short_id(task_id)
                ));
            }
            TaskEvent::Preparing { repo } => self.line(&format!("fetching {repo} …")),
            TaskEvent::Waiting {
                ahead,
                running,
                limit,
            } => self.line(&crate::orchestrator::waiting_words(
                *ahead, *running, *limit,
            )),
            TaskEvent::Started {
                base_ref,
                commit,
                rollouts,
                tests,
            } => {
                self.line(&format!(
                    "base {base_ref} @ {}; {} rollout(s); {tests}",
                    &commit[..commit.len().min(10)],
                    rollouts.len()
                ));
                *self
                    .tests
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(tests.to_string());
                if let Some(bars) = &self.bars {
                    let mut map = bars
                        .rollouts
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let style = ProgressStyle::with_template(
                        "{spinner} {prefix:.bold} {elapsed:>4} {wide_msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_spinner());
                    for k in rollouts.iter() {
                        let bar = bars.multi.add(ProgressBar::new_spinner());
                        bar.set_style(style.clone());
                        bar.set_prefix(format!("rollout {k}"));
                        bar.enable_steady_tick(Duration::from_millis(120));
                        map.insert(*k, bar);
                    }
                }
            }
            TaskEvent::Rollout(RolloutEvent::Phase { index, phase }) => {
                self.rollout(*index, phase_text(phase), false)
            }
            TaskEvent::Rollout(RolloutEvent::Command { index, record }) => {
                self.rollout(*index, command_text(record), false)
            }
            TaskEvent::Rollout(RolloutEvent::Finished { result }) => self.rollout(
                result.index,
                format!("{} — {}", result.outcome.label(), result.detail),
                true,
            ),
            // `run` says why the task failed once it ends (saying it here too printed it twice).
            TaskEvent::Failed { .. } => {}
        }
    }
}
