//! An in-memory sandbox backend: a sandbox's workspace is a map of files, and each command is
//! answered by the test's handlers or, failing those, by built-in answers to the steps threadsmith
//! itself runs (the copy, the agent's file tools, the diff). Every call is recorded in order.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::lock;
use crate::output::CappedBuffer;
use crate::sandbox::{
    ExecOutcome, ExecRequest, OwnerIsDead, Sandbox, SandboxBackend, SandboxError, SandboxSpec,
    WORKSPACE,
};

/// A workspace: paths relative to [`WORKSPACE`] → contents.
pub type Files = BTreeMap<String, Vec<u8>>;

/// What a command was taken to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The working copy put in place ([`crate::workspace::copy_script`]): the workspace becomes
    /// the backend's files.
    Copy,
    /// The diff step ([`crate::workspace::diff_script`]): answered with the change against the
    /// backend's files, as git prints it.
    Diff,
    /// The agent's `read_file` (lines `start..=end`).
    ReadFile { path: String, start: u64, end: u64 },
    /// The agent's `write_file`: stdin becomes the file.
    WriteFile { path: String },
    /// The agent's `apply_patch` (no built-in answer: a handler must give one).
    ApplyPatch,
    /// Any other `bash -c` script: run_command, setup, tests, the external agent.
    Shell(String),
    /// Not a `bash -c` command.
    Other,
}

/// One command as the sandbox got it.
#[derive(Debug, Clone)]
pub struct ExecCall {
    pub rollout: u32,
    pub step: Step,
    pub request: ExecRequest,
}

/// How a command ends.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    /// `None`: killed before it exited.
    pub exit_code: Option<i64>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub timed_out: bool,
    /// Never ends by itself: the request's time limit (a timed-out outcome) or the cancellation
    /// ([`SandboxError::Cancelled`]) ends it.
    pub hang: bool,
}

impl Answer {
    /// Exit code 0 with this stdout.
    pub fn ok(stdout: impl Into<Vec<u8>>) -> Self {
        Self {
            exit_code: Some(0),
            stdout: stdout.into(),
            ..Self::default()
        }
    }

    /// This exit code with this stderr.
    pub fn exit(code: i64, stderr: impl Into<Vec<u8>>) -> Self {
        Self {
            exit_code: Some(code),
            stderr: stderr.into(),
            ..Self::default()
        }
    }

    /// A command that never ends by itself.
    pub fn hang() -> Self {
        Self {
            hang: true,
            ..Self::default()
        }
    }
}

/// Everything the backend and its sandboxes were asked, in order.
#[derive(Debug, Clone)]
pub enum BackendCall {
    RequireImage(String),
    CreateSeed {
        task_id: String,
        image: String,
        archive_bytes: usize,
    },
    CreateSandbox(SandboxSpec),
    Exec(ExecCall),
    CutNetwork {
        rollout: u32,
    },
    Remove {
        rollout: u32,
    },
    RemoveTask(String),
    RemoveOrphans,
}

type Handler = dyn Fn(&ExecCall, &mut Files) -> Option<Answer> + Send + Sync;

/// The in-memory backend; clones share their record and their sandboxes' files.
#[derive(Clone, Default)]
pub struct MemoryBackend {
    base: Files,
    handlers: Vec<Arc<Handler>>,
    create_error: Option<String>,
    missing_images: Vec<String>,
    calls: Arc<Mutex<Vec<BackendCall>>>,
    workspaces: Arc<Mutex<HashMap<u32, Arc<Mutex<Files>>>>>,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// A file of the base commit: in the seed, and in a workspace once it is copied.
    pub fn with_file(mut self, path: &str, content: impl Into<Vec<u8>>) -> Self {
        self.base.insert(path.to_string(), content.into());
        self
    }

    /// A handler, asked before the ones added after it and before the built-in answers; the
    /// first that answers wins. It may change the workspace.
    pub fn on(
        mut self,
        handler: impl Fn(&ExecCall, &mut Files) -> Option<Answer> + Send + Sync + 'static,
    ) -> Self {
        self.handlers.push(Arc::new(handler));
        self
    }

    /// Answers every `bash -c` script that contains `needle` with `answer`.
    pub fn on_script(self, needle: &str, answer: Answer) -> Self {
        let needle = needle.to_string();
        self.on(move |call, _| match &call.step {
            Step::Shell(script) if script.contains(&needle) => Some(answer.clone()),
            _ => None,
        })
    }

    /// Every sandbox creation fails with this detail.
    pub fn failing_creation(mut self, detail: &str) -> Self {
        self.create_error = Some(detail.to_string());
        self
    }

    /// `image` is not available ([`SandboxError::ImageMissing`]).
    pub fn without_image(mut self, image: &str) -> Self {
        self.missing_images.push(image.to_string());
        self
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<BackendCall> {
        lock(&self.calls).clone()
    }

    /// The commands run in rollout `index`'s sandbox, in order.
    pub fn execs(&self, index: u32) -> Vec<ExecCall> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                BackendCall::Exec(e) if e.rollout == index => Some(e),
                _ => None,
            })
            .collect()
    }

    /// Rollout `index`'s workspace now (it outlives the sandbox's removal, for assertions).
    pub fn files(&self, index: u32) -> Option<Files> {
        let workspace = lock(&self.workspaces).get(&index).cloned()?;
        let files = lock(&workspace).clone();
        Some(files)
    }

    fn record(&self, call: BackendCall) {
        lock(&self.calls).push(call);
    }
}

#[async_trait]
impl SandboxBackend for MemoryBackend {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn reachable(&self) -> Result<(), SandboxError> {
        Ok(())
    }

    async fn require_image(&self, image: &str) -> Result<(), SandboxError> {
        self.record(BackendCall::RequireImage(image.to_string()));
        if self.missing_images.iter().any(|m| m == image) {
            return Err(SandboxError::ImageMissing(image.to_string()));
        }
        Ok(())
    }

    async fn create_seed(
        &self,
        task_id: &str,
        image: &str,
        archive: Vec<u8>,
    ) -> Result<String, SandboxError> {
        self.record(BackendCall::CreateSeed {
            task_id: task_id.to_string(),
            image: image.to_string(),
            archive_bytes: archive.len(),
        });
        Ok(format!("memory-seed-{task_id}"))
    }

    async fn create_sandbox(&self, spec: &SandboxSpec) -> Result<Box<dyn Sandbox>, SandboxError> {
        self.record(BackendCall::CreateSandbox(spec.clone()));
        if let Some(detail) = &self.create_error {
            return Err(SandboxError::Backend {
                backend: "memory",
                action: "creating the sandbox",
                detail: detail.clone(),
            });
        }
        if self.missing_images.contains(&spec.image) {
            return Err(SandboxError::ImageMissing(spec.image.clone()));
        }
        let files = Arc::new(Mutex::new(Files::new()));
        lock(&self.workspaces).insert(spec.rollout, files.clone());
        Ok(Box::new(MemorySandbox {
            backend: self.clone(),
            rollout: spec.rollout,
            name: format!("memory-{}-{}", spec.task_id, spec.rollout),
            files,
            removed: Mutex::new(false),
        }))
    }

    async fn remove_task(&self, task_id: &str) -> Result<usize, SandboxError> {
        self.record(BackendCall::RemoveTask(task_id.to_string()));
        Ok(0)
    }

    async fn remove_orphans(&self, _is_dead: &OwnerIsDead) -> Result<usize, SandboxError> {
        self.record(BackendCall::RemoveOrphans);
        Ok(0)
    }
}

struct MemorySandbox {
    backend: MemoryBackend,
    rollout: u32,
    name: String,
    files: Arc<Mutex<Files>>,
    removed: Mutex<bool>,
}

impl MemorySandbox {
    fn answer(&self, call: &ExecCall) -> Answer {
        let mut files = lock(&self.files);
        for handler in &self.backend.handlers {
            if let Some(answer) = handler(call, &mut files) {
                return answer;
            }
        }
        builtin(call, &self.backend.base, &mut files)
    }
}

#[async_trait]
impl Sandbox for MemorySandbox {
    fn name(&self) -> &str {
        &self.name
    }

    async fn exec(
        &self,
        req: ExecRequest,
        cancel: &CancellationToken,
    ) -> Result<ExecOutcome, SandboxError> {
        let started = Instant::now();
        let call = ExecCall {
            rollout: self.rollout,
            step: classify(&req),
            request: req.clone(),
        };
        self.backend.record(BackendCall::Exec(call.clone()));
        if *lock(&self.removed) {
            return Err(SandboxError::Backend {
                backend: "memory",
                action: "running a command",
                detail: "the sandbox was removed".into(),
            });
        }
        if cancel.is_cancelled() {
            return Err(SandboxError::Cancelled);
        }
        let mut answer = self.answer(&call);
        if answer.hang {
            tokio::select! {
                _ = cancel.cancelled() => return Err(SandboxError::Cancelled),
                _ = tokio::time::sleep(req.timeout) => {}
            }
            // What `timeout` reports when it stops a command.
            answer.exit_code = Some(124);
            answer.timed_out = true;
        }
        let mut combined = CappedBuffer::new(req.cap);
        combined.push(&answer.stdout);
        combined.push(&answer.stderr);
        let stdout_overflow = req.keep_stdout.is_some_and(|max| answer.stdout.len() > max);
        Ok(ExecOutcome {
            exit_code: answer.exit_code,
            output: combined.finish(),
            stdout: req
                .keep_stdout
                .filter(|_| !stdout_overflow)
                .map(|_| answer.stdout),
            stdout_overflow,
            duration: started.elapsed(),
            timed_out: answer.timed_out,
        })
    }

    async fn cut_network(&self) -> Result<(), SandboxError> {
        self.backend.record(BackendCall::CutNetwork {
            rollout: self.rollout,
        });
        Ok(())
    }

    async fn out_of_memory(&self) -> Option<String> {
        None
    }

    async fn remove(&self) {
        *lock(&self.removed) = true;
        self.backend.record(BackendCall::Remove {
            rollout: self.rollout,
        });
    }
}

/// What threadsmith's own commands are, from their scripts.
fn classify(req: &ExecRequest) -> Step {
    let arg = |i: usize| req.argv.get(i).map(String::as_str);
    let (Some("bash"), Some("-c"), Some(script)) = (arg(0), arg(1), arg(2)) else {
        return Step::Other;
    };
    let path = || arg(4).map(normalize).unwrap_or_default();
    match arg(3) {
        Some("read_file") => Step::ReadFile {
            path: path(),
            start: arg(5).and_then(|s| s.parse().ok()).unwrap_or(1),
            end: arg(6).and_then(|s| s.parse().ok()).unwrap_or(u64::MAX),
        },
        Some("write_file") => Step::WriteFile { path: path() },
        _ if script == crate::workspace::copy_script() => Step::Copy,
        _ if script.contains("git diff --cached --find-renames --numstat") => Step::Diff,
        _ if script.starts_with("git apply ") => Step::ApplyPatch,
        _ => Step::Shell(script.to_string()),
    }
}

/// A path as the workspace map keys it: relative to [`WORKSPACE`].
fn normalize(path: &str) -> String {
    let path = path.strip_prefix(WORKSPACE).unwrap_or(path);
    let path = path.trim_start_matches('/');
    path.strip_prefix("./").unwrap_or(path).to_string()
}

fn builtin(call: &ExecCall, base: &Files, files: &mut Files) -> Answer {
    match &call.step {
        Step::Copy => {
            *files = base.clone();
            // No ctime mark: the diff then reads every file again, as with a minimal image.
            Answer::ok("")
        }
        Step::Diff => Answer::ok(diff(base, files)),
        Step::ReadFile { path, start, end } => match files.get(path) {
            None => Answer::exit(2, format!("no such file: {path}\n")),
            Some(content) => {
                let text = String::from_utf8_lossy(content);
                let lines: Vec<&str> = text
                    .split_inclusive('\n')
                    .skip(start.saturating_sub(1) as usize)
                    .take(end.saturating_sub(*start).saturating_add(1) as usize)
                    .collect();
                Answer::ok(lines.concat())
            }
        },
        Step::WriteFile { path } => {
            files.insert(path.clone(), call.request.stdin.clone().unwrap_or_default());
            Answer::ok("")
        }
        Step::ApplyPatch => Answer::exit(
            1,
            "the in-memory sandbox applies no patch by itself: answer apply_patch with a handler\n",
        ),
        Step::Shell(_) | Step::Other => Answer::ok(""),
    }
}

/// The change from `base` to `now` as the diff step prints it: numstat records, an empty record,
/// then a patch. Each changed file counts as rewritten whole (every old line removed, every new
/// line added): enough to drive the parsing, not a real diff.
fn diff(base: &Files, now: &Files) -> Vec<u8> {
    let paths: BTreeSet<&String> = base.keys().chain(now.keys()).collect();
    let mut numstat = Vec::new();
    let mut patch = String::new();
    for path in paths {
        let (old, new) = (base.get(path), now.get(path));
        if old == new {
            continue;
        }
        let lines =
            |c: Option<&Vec<u8>>| c.map_or(0, |c| String::from_utf8_lossy(c).lines().count());
        numstat.extend_from_slice(format!("{}\t{}\t{path}\0", lines(new), lines(old)).as_bytes());
        patch.push_str(&format!(
            "diff --git a/{path} b/{path}\n--- {}\n+++ {}\n@@ -1,{} +1,{} @@\n",
            old.map_or("/dev/null".to_string(), |_| format!("a/{path}")),
            new.map_or("/dev/null".to_string(), |_| format!("b/{path}")),
            lines(old),
            lines(new),
        ));
        for (sign, content) in [('-', old), ('+', new)] {
            for line in content
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .unwrap_or_default()
                .lines()
            {
                patch.push(sign);
                patch.push_str(line);
                patch.push('\n');
            }
        }
    }
    if numstat.is_empty() {
        return numstat;
    }
    numstat.push(0);
    numstat.extend_from_slice(patch.as_bytes());
    numstat
}
