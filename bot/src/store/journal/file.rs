//! One process's journal file: events appended one line each, as they arrive; emptied whenever
//! all it holds is in the inbox; removed when the process stops. The file is locked (`flock`)
//! for as long as its process holds it open, so that a file nobody holds is a stopped process's
//! (the kernel releases the lock however the process ended) or one its process gave up on (a
//! shutdown that could not move everything, a mover that died): see `recover.rs`.

use std::borrow::Cow;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::store::NewEvent;

/// The journal files' extension; anything else in the directory is not a journal.
pub(super) const EXTENSION: &str = "jsonl";

/// One event, one line. serde_json escapes every newline inside a string, so a line is a record.
#[derive(Serialize, Deserialize)]
struct Line<'a> {
    /// When it was journaled (Unix milliseconds): recovery leaves out events older than the
    /// inbox's retention, which may have been handled and pruned since.
    at: i64,
    key: Cow<'a, str>,
    platform: Cow<'a, str>,
    event: Cow<'a, str>,
}

/// Why an event was not journaled (the caller stores it directly instead).
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("the journal is closed")]
    Closed,
    /// The file is emptied only when all it holds is moved: under a stream of events that never
    /// pauses it could grow without end, so past a size events are committed directly until
    /// the mover catches up.
    #[error("the journal reached {0} bytes without being emptied")]
    Full(u64),
    #[error("writing the journal: {0}")]
    Io(#[from] io::Error),
    #[error("encoding an event for the journal: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The size past which events are committed directly (see [`AppendError::Full`]).
pub(super) const FULL: u64 = 64 << 20;

pub struct JournalFile {
    path: PathBuf,
    full: u64,
    /// Makes the next `take` panic: the tests' stand-in for a mover that dies.
    #[cfg(test)]
    pub(super) poisoned: std::sync::atomic::AtomicBool,
    state: Mutex<State>,
}

struct State {
    /// `None` once closed.
    file: Option<File>,
    /// The file's length: where the next line starts.
    written: u64,
    /// Appended, not yet taken to be moved.
    queued: Vec<NewEvent>,
}

impl JournalFile {
    /// Creates this process's file in `dir`, locked before it carries the name other processes
    /// look for (so that none takes a new file for a stopped process's).
    pub fn create(dir: &Path) -> io::Result<Self> {
        Self::create_holding(dir, FULL)
    }

    /// A file that takes at most `full` bytes not yet moved.
    pub(super) fn create_holding(dir: &Path, full: u64) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let name = uuid::Uuid::new_v4().simple().to_string();
        let temporary = dir.join(format!(".{name}.new"));
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&temporary)?;
        if let Err(e) = file.try_lock() {
            // Nobody else knows the name: cannot be held elsewhere. Remove the file regardless.
            let removed = fs::remove_file(&temporary);
            return Err(io::Error::other(format!(
                "locking a new journal file: {e} (removed: {removed:?})"
            )));
        }
        let path = dir.join(format!("{name}.{EXTENSION}"));
        if let Err(e) = fs::rename(&temporary, &path) {
            if let Err(removed) = fs::remove_file(&temporary) {
                tracing::warn!(error = %removed, file = %temporary.display(), "could not remove a journal file that was never used");
            }
            return Err(e);
        }
        Ok(Self {
            path,
            full,
            #[cfg(test)]
            poisoned: std::sync::atomic::AtomicBool::new(false),
            state: Mutex::new(State {
                file: Some(file),
                written: 0,
                queued: Vec::new(),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event in one `write` and queues it to be moved. Once `write` returns, the
    /// event survives the process (as a SQLite commit with `synchronous=NORMAL` does: a power
    /// cut can lose it, a crash cannot). A failed write is cut off again, so that no half line
    /// is left for the next one to follow; the event is handed back.
    pub fn append(&self, event: NewEvent) -> Result<(), (NewEvent, AppendError)> {
        let line = match serde_json::to_vec(&Line {
            at: chrono::Utc::now().timestamp_millis(),
            key: Cow::Borrowed(&event.dedupe_key),
            platform: Cow::Borrowed(&event.platform),
            event: Cow::Borrowed(&event.event),
        }) {
            Ok(mut line) => {
                line.push(b'\n');
                line
            }
            Err(e) => return Err((event, e.into())),
        };
        let mut state = self.lock();
        let written = state.written;
        if written >= self.full {
            return Err((event, AppendError::Full(written)));
        }
        let Some(file) = state.file.as_mut() else {
            return Err((event, AppendError::Closed));
        };
        if let Err(e) = file.write_all(&line) {
            if let Err(cut) = file.set_len(written) {
                // A torn line stays: the file is no longer safe to append to.
                tracing::error!(error = %cut, "could not cut a failed journal write; closing the journal");
                state.file = None;
            }
            return Err((event, e.into()));
        }
        state.written = written + line.len() as u64;
        state.queued.push(event);
        Ok(())
    }

    /// The file's length: it grows with each append (and drops to 0 when emptied).
    pub fn written(&self) -> u64 {
        self.lock().written
    }

    /// The events appended since the last call, in order, and the file's length after them.
    pub fn take(&self) -> (Vec<NewEvent>, u64) {
        #[cfg(test)]
        if self.poisoned.load(std::sync::atomic::Ordering::Acquire) {
            panic!("a mover that dies (a test)");
        }
        let mut state = self.lock();
        (std::mem::take(&mut state.queued), state.written)
    }

    /// Everything up to `upto` is in the inbox: empties the file if nothing was appended since.
    /// Whether it did.
    pub fn moved(&self, upto: u64) -> io::Result<bool> {
        let mut state = self.lock();
        if state.written != upto {
            return Ok(false);
        }
        let Some(file) = state.file.as_mut() else {
            return Ok(false);
        };
        file.set_len(0)?;
        state.written = 0;
        Ok(true)
    }

    /// Stops journaling: removes the file if every event in it is in the inbox (otherwise it
    /// stays for the next process to recover), and makes later appends fail.
    pub fn close(&self) -> io::Result<()> {
        let mut state = self.lock();
        let Some(file) = state.file.take() else {
            return Ok(());
        };
        if state.written == 0 {
            fs::remove_file(&self.path)?;
        }
        // Unlocked when closed, after the removal: nobody recovers a file being removed.
        drop(file);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding it cannot leave the state half-changed (each change is one
        // assignment after the write), so a poisoned lock is taken as it is.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A journaled event and when it was journaled (Unix milliseconds).
pub(super) struct Journaled {
    pub at: i64,
    pub event: NewEvent,
}

/// Reads a journal's lines back. A line that cannot be read (the last one, torn by a crash or a
/// full disk) is counted and skipped.
pub(super) fn decode(bytes: &[u8]) -> (Vec<Journaled>, usize) {
    let mut events = Vec::new();
    let mut unreadable = 0;
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        match serde_json::from_slice::<Line>(line) {
            Ok(l) => events.push(Journaled {
                at: l.at,
                event: NewEvent {
                    dedupe_key: l.key.into_owned(),
                    platform: l.platform.into_owned(),
                    event: l.event.into_owned(),
                },
            }),
            Err(_) => unreadable += 1,
        }
    }
    (events, unreadable)
}
