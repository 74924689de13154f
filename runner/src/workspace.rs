//! A rollout's working copy: put in place from the task's seed, and its change read back against
//! the seed — looking only at what changed, so that the cost of a rollout does not grow with the
//! size of the repository.
//!
//! How the diff step tells what changed: it asks the kernel. Every path whose inode changed after
//! the copy — written, created, renamed, linked, chmod-ed — has a *ctime* later than the copy's,
//! and nothing in the sandbox can set a ctime back; a directory whose entries changed (a file
//! created, deleted or renamed in it) has one too. One `find` walk lists those. Then, as a rule,
//! git is handed those paths alone (`workspace/diff.sh`, `path`): against an index of the base
//! without stat data, what changed is read again and added unless ignored, what is gone from a
//! changed directory of the base is removed, and a new directory is looked at whole — so git
//! neither `lstat`s nor rewrites what did not change. Only whole directories moved onto the
//! place of another directory of the base keep an old ctime under a new path; when that may
//! have happened (a directory of the base renamed, or holding an old entry the base did not have
//! there), or when many paths changed, `git add -A` walks the tree (`stat`): the seed's index
//! records each file's size and mtime as checked out (the seed's git compares only those,
//! `core.checkStat=minimal`), the copy keeps both, and the changed paths lose their stat data so
//! that they are read again. Without the ctime check (a minimal image) or when very many files
//! changed, every file is read again (`all`): slower, never wrong.

use crate::sandbox::{SEED, WORKSPACE};

/// The seed's checkout as one archive (see [`crate::repo`]): one sequential read to extract,
/// where copying the tree file by file costs several system calls per file.
pub const CHECKOUT_ARCHIVE: &str = "checkout.tar";

/// Above this many changed files, git reads every file again rather than looking each one up.
pub const MAX_SINGLED_OUT: usize = 1_000;

/// Above this many changed directories, git walks the whole tree (trusting the seed's stat data
/// for what did not change) rather than being handed the changed paths alone.
pub const MAX_CHANGED_DIRS: usize = 200;

/// An index of the base commit without stat data, beside the seed's own index (see
/// [`crate::repo`]): the diff step hands git the changed paths alone, and reads each again.
/// Absent when the base has submodules (their folders are left to `git add -A`).
pub const UNSTATED_INDEX: &str = "threadsmith-unstated-index";

/// The copy step (`workspace/copy.sh`): extracts the seed's checkout into the workspace and
/// prints the copy's [`CopyMark`], a ctime later than every change the copy made.
pub fn copy_script() -> String {
    format!(
        "ts_seed={SEED} ts_workspace={WORKSPACE} ts_archive={CHECKOUT_ARCHIVE}\n{}",
        include_str!("workspace/copy.sh")
    )
}

/// [`copy_script`] for a sandbox made from an environment snapshot: the snapshot's files are put
/// back beside the checkout (see [`crate::environment`]).
pub fn copy_script_restoring() -> String {
    format!(
        "ts_env={}\n{}",
        crate::environment::SNAPSHOT_DIR,
        copy_script()
    )
}

/// The kernel's clock once the working copy was in place, as a file's ctime: later than every
/// ctime the copy itself left (see `workspace/copy.sh`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyMark {
    secs: i64,
    nanos: u32,
}

impl CopyMark {
    /// Reads what [`copy_script`] printed; `None` when the image's `stat` could not say.
    pub fn parse(stdout: &str) -> Option<Self> {
        let (secs, nanos) = stdout.trim().split_once('.')?;
        if nanos.len() != 9 {
            return None;
        }
        Some(Self {
            secs: secs.parse().ok()?,
            nanos: nanos.parse().ok()?,
        })
    }

    /// A `find -newerct` reference one nanosecond before the mark, so that a file changed in the
    /// mark's own clock tick is counted as changed (nothing the copy did is: it is older).
    fn just_before(self) -> String {
        let (secs, nanos) = if self.nanos == 0 {
            (self.secs - 1, 999_999_999)
        } else {
            (self.secs, self.nanos - 1)
        };
        format!("@{secs}.{nanos:09}")
    }
}

/// The diff script (`workspace/diff.sh`): prints `git diff --numstat -z`, an empty record, then
/// the binary patch (one `git diff` run; see `rollout::split_numstat`), all against the seed's
/// read-only git directory so that nothing the agent did to `/workspace/.git` matters. It first
/// refuses a change with files larger than `max_bytes` (see [`crate::oom::oversized_check`]), in
/// the same command (and, after a copy, in the same walk that finds what changed).
///
/// After a copy, git is handed only the paths that changed (when they are few, and no directory
/// of the base may have been swapped for another: else `git add -A` walks the tree with the
/// seed's stat data), so that the step's cost follows the change, not the repository.
pub fn diff_script(mark: Option<CopyMark>, max_bytes: usize) -> String {
    let reference = mark.map(CopyMark::just_before).unwrap_or_default();
    // Without a mark the size check walks the workspace on its own.
    let oversized = match mark {
        Some(_) => String::new(),
        None => crate::oom::oversized_check(max_bytes),
    };
    format!(
        "ts_seed={SEED} ts_workspace={WORKSPACE} ts_mark='{reference}' ts_max_bytes={max_bytes}\n\
         ts_oversized_exit={oversized_exit} ts_max_changed={MAX_SINGLED_OUT} \
         ts_max_dirs={MAX_CHANGED_DIRS} ts_unstated_index={UNSTATED_INDEX}\n\
         {oversized}{script}",
        oversized_exit = crate::oom::OVERSIZED_EXIT,
        script = include_str!("workspace/diff.sh"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_read_and_taken_one_nanosecond_back() {
        let mark = CopyMark::parse("1795931287.383728455\n").unwrap();
        assert_eq!(mark.just_before(), "@1795931287.383728454");
        let round = CopyMark::parse("1795931287.000000000").unwrap();
        assert_eq!(round.just_before(), "@1795931286.999999999");
        assert_eq!(CopyMark::parse(""), None);
        assert_eq!(CopyMark::parse("1795931287"), None);
        assert_eq!(CopyMark::parse("?.?"), None);
        assert_eq!(CopyMark::parse("1795931287.38"), None);
    }

    #[test]
    fn the_script_is_told_the_mark_or_that_there_is_none() {
        let script = diff_script(None, 1 << 20);
        assert!(script.contains("ts_mark='' "), "{script}");
        assert!(script.contains("-newer /seed/tree/.git/index"), "{script}");
        let script = diff_script(CopyMark::parse("12.000000005"), 1 << 20);
        assert!(script.contains("ts_mark='@12.000000004' "), "{script}");
        assert!(!script.contains("-newer /seed"), "{script}");
        assert!(script.contains("ts_max_bytes=1048576\n"), "{script}");
        assert!(script.contains("set -e -o pipefail"), "{script}");
    }
}
