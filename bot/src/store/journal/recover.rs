//! Stopped processes' journals: a journal file nobody holds locked belongs to a process that
//! ended (cleanly with events it could not move, or killed). Any live process moves its events
//! into the inbox (duplicates are dropped there, by key) and removes the file.

use std::fs::{self, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::store::{NewEvent, Store, StoreError};

use super::MAX_GROUP;
use super::file::{EXTENSION, Journaled, decode};

/// How much younger than the retention an event must be for recovery to move it.
const PRUNE_MARGIN: Duration = Duration::from_secs(3600);

/// What one pass found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Stopped processes' files moved and removed.
    pub files: usize,
    /// Events read from them (stored or found to be duplicates).
    pub events: usize,
}

/// Moves the events of every journal in `dir` that no process holds into the inbox, except
/// `own` (this process's, which it holds), leaving out events journaled more than `max_age` ago
/// (the inbox's retention: such an event may have been handled and its row pruned since). A
/// file another process is recovering at the same time is skipped (it holds the lock); a file
/// that fails is left for the next pass, the others are still recovered. Wakes the inbox's
/// watchers when a file was removed.
pub async fn recover(
    dir: &Path,
    own: Option<&Path>,
    store: &dyn Store,
    max_age: Duration,
) -> Result<Recovered, StoreError> {
    let mut recovered = Recovered::default();
    let mut failed = None;
    for path in journals(dir).await? {
        if Some(path.as_path()) == own {
            continue;
        }
        match recover_file(path, store, max_age).await {
            Ok(Some(events)) => {
                recovered.files += 1;
                recovered.events += events;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "could not recover a stopped process's journal; trying again later");
                failed = Some(e);
            }
        }
    }
    if recovered.files > 0 {
        store.inbox_touched();
    }
    match failed {
        Some(e) if recovered.files == 0 => Err(e),
        _ => Ok(recovered),
    }
}

/// Moves one file's events (those journaled less than `max_age` ago) and removes it; how many
/// events it held, `None` when a process holds it (or it is gone).
pub(super) async fn recover_file(
    path: PathBuf,
    store: &dyn Store,
    max_age: Duration,
) -> Result<Option<usize>, StoreError> {
    // An hour's margin: housekeeping may be pruning rows a retention old while this runs.
    let oldest = chrono::Utc::now().timestamp_millis()
        - i64::try_from(max_age.saturating_sub(PRUNE_MARGIN).as_millis()).unwrap_or(i64::MAX);
    let taken = tokio::task::spawn_blocking({
        let path = path.clone();
        move || take(&path)
    })
    .await
    .map_err(|e| StoreError::Shared(format!("reading a journal: {e}")))?;
    let Some((file, journaled)) = taken? else {
        return Ok(None);
    };
    let read = journaled.len();
    let (events, stale): (Vec<_>, Vec<_>) = journaled.into_iter().partition(|j| j.at >= oldest);
    if !stale.is_empty() {
        tracing::warn!(file = %path.display(), events = stale.len(), "left out journaled events older than the inbox's retention");
    }
    let events: Vec<NewEvent> = events.into_iter().map(|j| j.event).collect();
    for group in events.chunks(MAX_GROUP) {
        store.enqueue_many(group).await?;
    }
    // Removed while still locked, so that nobody reads it again after.
    fs::remove_file(&path).map_err(|e| io_error(&path, e))?;
    drop(file);
    tracing::info!(file = %path.display(), events = read, "recovered a stopped process's journal");
    Ok(Some(read))
}

async fn journals(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(&dir, e)),
        };
        let mut paths = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| io_error(&dir, e))?.path();
            if path.extension().is_some_and(|e| e == EXTENSION) {
                paths.push(path);
            }
        }
        paths.sort();
        Ok(paths)
    })
    .await
    .map_err(|e| StoreError::Shared(format!("listing journals: {e}")))?
}

/// The locked file (held until it is removed) and its events.
type Taken = Option<(fs::File, Vec<Journaled>)>;

/// Locks and reads a file, unless a process holds it (or it is gone: another process recovered
/// it first).
fn take(path: &Path) -> Result<Taken, StoreError> {
    let mut file = match OpenOptions::new().read(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path, e)),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => return Ok(None),
        Err(fs::TryLockError::Error(e)) => return Err(io_error(path, e)),
    }
    // Locked: but the process that recovered it before may have removed it just now.
    if !path.exists() {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| io_error(path, e))?;
    let (events, unreadable) = decode(&bytes);
    if unreadable > 0 {
        tracing::warn!(file = %path.display(), lines = unreadable, "skipped unreadable lines of a journal (a write torn by a crash)");
    }
    Ok(Some((file, events)))
}

fn io_error(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Shared(format!("journal {}: {e}", path.display()))
}
