//! Memory: `/workspace` and `/tmp` are tmpfs, so what the agent writes there is memory charged to
//! the sandbox's limit, and it cannot be reclaimed (there is no swap). Two guards follow:
//!
//! - [`check_memory_budget`]: the settings must leave room — the two file systems together may
//!   take at most three quarters of the memory limit, so that a full disk is met (`No space left
//!   on device`) before a full memory.
//! - [`guard`]: before and while the diff is collected, the sandbox's memory is read from the
//!   host (a command inside a sandbox whose memory is full is killed at once, and each retry
//!   thrashes): when it is full, the step stops at once and says why.

use std::future::Future;
use std::time::Duration;

use bollard::models::ContainerMemoryStats;
use bollard::query_parameters::{InspectContainerOptions, StatsOptionsBuilder};
use futures_util::StreamExt;

use crate::sandbox::{DockerSandbox, Limits, Sandbox};

/// Memory that is full past this share of the limit leaves nothing for a new process.
const FULL_PERCENT: u64 = 95;
/// How often the memory is read while the diff is collected.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// How long one reading may take.
const READ_LIMIT: Duration = Duration::from_secs(5);

fn mb(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.1} GB", bytes as f64 / f64::from(1u32 << 30))
    } else {
        format!("{} MB", bytes >> 20)
    }
}

/// `Err` with the reason when `/workspace` and `/tmp` (in memory) could fill the memory limit.
pub fn check_memory_budget(limits: &Limits) -> Result<(), String> {
    let memory = u64::try_from(limits.memory_bytes).unwrap_or(0);
    let files = limits.workspace_bytes.saturating_add(limits.tmp_bytes);
    let room = memory / 4 * 3;
    if files <= room {
        return Ok(());
    }
    Err(format!(
        "sandbox.workspace_size ({}) plus sandbox.tmp_size ({}) is {}, more than three quarters of sandbox.memory ({}): both live in memory (tmpfs) and count against the memory limit, so an agent filling them would be killed for lack of memory rather than told the disk is full. Set memory to at least {}, or lower workspace_size / tmp_size.",
        mb(limits.workspace_bytes),
        mb(limits.tmp_bytes),
        mb(files),
        mb(memory),
        mb((files / 3).saturating_mul(4))
    ))
}

/// What the host sees of a sandbox's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryUse {
    /// Memory that cannot be reclaimed without swap: processes' own and tmpfs files (both on the
    /// kernel's "anon" lists).
    pub held: u64,
    /// The part of it that is files in tmpfs (`/workspace`, `/tmp`).
    pub files: u64,
    pub limit: u64,
}

impl MemoryUse {
    /// From Docker's stats: cgroup v1 (`total_*` keys; tmpfs is the page cache that is not on
    /// the file lists) or v2 (`anon`, `shmem`).
    pub fn from_stats(stats: &ContainerMemoryStats) -> Option<Self> {
        let map = stats.stats.as_ref()?;
        let get = |key: &str| {
            map.get(&format!("total_{key}"))
                .or_else(|| map.get(key))
                .copied()
        };
        let limit = stats.limit.filter(|l| *l > 0)?;
        let held = get("active_anon")?
            .saturating_add(get("inactive_anon")?)
            .saturating_add(get("unevictable").unwrap_or(0));
        let files = get("shmem").unwrap_or_else(|| {
            get("cache").unwrap_or(0).saturating_sub(
                get("active_file")
                    .unwrap_or(0)
                    .saturating_add(get("inactive_file").unwrap_or(0)),
            )
        });
        Some(Self { held, files, limit })
    }

    /// Full: what cannot be reclaimed takes nearly all of the limit.
    pub fn is_full(&self) -> bool {
        self.held.saturating_mul(100) >= self.limit.saturating_mul(FULL_PERCENT)
    }

    pub fn words(&self) -> String {
        format!(
            "the sandbox is out of memory: {} of its {} limit is held, {} of it by files in /workspace and /tmp (which live in memory), so no command can run in it any more (the agent probably wrote very large files)",
            mb(self.held),
            mb(self.limit),
            mb(self.files.min(self.held)),
        )
    }
}

/// The sandbox's memory now; `None` when Docker cannot say (the step then runs as usual).
async fn read(sandbox: &DockerSandbox) -> Option<MemoryUse> {
    let opts = StatsOptionsBuilder::default()
        .stream(false)
        .one_shot(true)
        .build();
    let mut stream = sandbox.client().stats(&sandbox.id, Some(opts));
    match tokio::time::timeout(READ_LIMIT, stream.next()).await {
        Ok(Some(Ok(stats))) => MemoryUse::from_stats(stats.memory_stats.as_ref()?),
        Ok(Some(Err(e))) => {
            tracing::debug!(error = %e, "could not read the sandbox's memory");
            None
        }
        Ok(None) | Err(_) => None,
    }
}

/// Why the sandbox stopped, when it did: a sandbox whose memory fills can lose its first process.
async fn stopped(sandbox: &DockerSandbox) -> Option<String> {
    let info = tokio::time::timeout(
        READ_LIMIT,
        sandbox
            .client()
            .inspect_container(&sandbox.id, None::<InspectContainerOptions>),
    )
    .await
    .ok()?
    .ok()?;
    let state = info.state?;
    if state.running != Some(false) {
        return None;
    }
    Some(if state.oom_killed == Some(true) {
        "the sandbox ran out of memory and stopped (the agent probably wrote very large files into /workspace or /tmp, which live in memory)".to_string()
    } else {
        "the sandbox stopped before the change could be collected".to_string()
    })
}

/// Why the sandbox cannot run another command: it stopped, or its memory is full.
/// Both looks are asked of Docker at once (one round trip's wait rather than two); a stopped
/// sandbox is reported as stopped whatever its memory reads.
pub async fn out_of_memory(sandbox: &DockerSandbox) -> Option<String> {
    let (stopped, memory) = tokio::join!(stopped(sandbox), read(sandbox));
    stopped.or_else(|| memory.filter(MemoryUse::is_full).map(|m| m.words()))
}

/// Files the agent wrote that are larger than a diff may be (`max` bytes): hashing and
/// compressing them would take minutes and memory only to be refused. Files of the base commit
/// (older than the seed's checkout) are not counted. A shell fragment that prints up to three
/// as `size<TAB>path` lines and exits with [`OVERSIZED_EXIT`]; it runs at the start of the diff
/// script (one command in the sandbox rather than two), and prints nothing when the look fails
/// (the diff step then finds out itself).
pub fn oversized_check(max: usize) -> String {
    format!(
        "big=$(find {ws} -xdev -path {ws}/.git -prune -o -type f -size +{max}c -newer {seed}/tree/.git/index -printf '%s\\t%P\\n' 2>/dev/null | head -n 3) || true\n\
         if [ -n \"$big\" ]; then printf '%s\\n' \"$big\"; exit {OVERSIZED_EXIT}; fi\n",
        ws = crate::sandbox::WORKSPACE,
        seed = crate::sandbox::SEED,
    )
}

/// The exit code of [`oversized_check`] when it found files too large to keep.
pub const OVERSIZED_EXIT: i64 = 4;

/// What to say about the listing [`oversized_check`] printed; `None` when it lists nothing.
pub fn oversized_words(listing: &str, max: usize) -> Option<String> {
    let files: Vec<String> = listing
        .lines()
        .filter_map(|line| {
            let (size, path) = line.split_once('\t')?;
            Some(format!("{path} ({})", mb(size.parse().ok()?)))
        })
        .collect();
    (!files.is_empty()).then(|| {
        format!(
            "the change is larger than {} MB, so it was not kept: it includes {}",
            max >> 20,
            files.join(", ")
        )
    })
}

/// Runs the diff step unless the sandbox is out of memory, and stops it as soon as the memory is
/// full (the step itself refuses a change too large to keep: see [`oversized_check`]). A step that fails in a sandbox that meanwhile ran
/// out of memory (or stopped) is reported as that.
pub async fn guard<T, E, F>(sandbox: &dyn Sandbox, step: F) -> Result<Result<T, E>, String>
where
    F: Future<Output = Result<T, E>>,
{
    if let Some(why) = sandbox.out_of_memory().await {
        return Err(why);
    }
    let watch = async {
        loop {
            tokio::time::sleep(WATCH_EVERY).await;
            if let Some(why) = sandbox.out_of_memory().await {
                return why;
            }
        }
    };
    let out = tokio::select! {
        out = step => out,
        why = watch => return Err(why),
    };
    if out.is_err()
        && let Some(why) = sandbox.out_of_memory().await
    {
        return Err(why);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn the_defaults_leave_room_and_the_old_ones_did_not() {
        assert_eq!(check_memory_budget(&Limits::default()), Ok(()));
        let old = Limits {
            memory_bytes: 2 << 30,
            workspace_bytes: 4 << 30,
            tmp_bytes: 1 << 30,
            ..Limits::default()
        };
        let why = check_memory_budget(&old).unwrap_err();
        assert!(
            why.contains("workspace_size (4.0 GB) plus sandbox.tmp_size (1.0 GB) is 5.0 GB"),
            "{why}"
        );
        assert!(why.contains("memory to at least 6.7 GB"), "{why}");
        let huge = Limits {
            workspace_bytes: u64::MAX,
            tmp_bytes: u64::MAX,
            ..Limits::default()
        };
        assert!(check_memory_budget(&huge).is_err());
    }

    fn stats(pairs: &[(&str, u64)], limit: u64) -> ContainerMemoryStats {
        ContainerMemoryStats {
            stats: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), *v))
                    .collect::<HashMap<_, _>>(),
            ),
            limit: Some(limit),
            ..Default::default()
        }
    }

    #[test]
    fn full_memory_is_told_from_page_cache() {
        let limit = 768 << 20;
        // cgroup v1 as Docker 20.10 reports it: tmpfs (512 MB) and git's memory on the anon
        // lists, nearly at the limit.
        let full = MemoryUse::from_stats(&stats(
            &[
                ("total_active_anon", 255 << 20),
                ("total_inactive_anon", 508 << 20),
                ("total_cache", 513 << 20),
                ("total_active_file", 0),
                ("total_inactive_file", 1 << 20),
                ("total_rss", 252 << 20),
            ],
            limit,
        ))
        .unwrap();
        assert!(full.is_full());
        assert_eq!(full.files, 512 << 20);
        assert!(full.words().contains("out of memory"), "{}", full.words());
        assert!(
            full.words().contains("512 MB of it by files"),
            "{}",
            full.words()
        );
        // The same sandbox before git started: a quarter free.
        let before = MemoryUse::from_stats(&stats(
            &[
                ("total_active_anon", 0),
                ("total_inactive_anon", 512 << 20),
                ("total_cache", 520 << 20),
                ("total_active_file", 4 << 20),
                ("total_inactive_file", 4 << 20),
            ],
            limit,
        ))
        .unwrap();
        assert!(!before.is_full());
        // cgroup v2 keys.
        let v2 = MemoryUse::from_stats(&stats(
            &[
                ("active_anon", 100 << 20),
                ("inactive_anon", 650 << 20),
                ("shmem", 700 << 20),
            ],
            limit,
        ))
        .unwrap();
        assert!(v2.is_full());
        assert_eq!(v2.files, 700 << 20);
        // Page cache alone is reclaimable: not full.
        let cache = MemoryUse::from_stats(&stats(
            &[
                ("total_active_anon", 1 << 20),
                ("total_inactive_anon", 0),
                ("total_cache", 760 << 20),
                ("total_inactive_file", 760 << 20),
            ],
            limit,
        ))
        .unwrap();
        assert!(!cache.is_full());
        // No numbers, no judgement.
        assert_eq!(
            MemoryUse::from_stats(&ContainerMemoryStats::default()),
            None
        );
    }
}
