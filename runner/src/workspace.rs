//! A rollout's working copy: put in place from the task's seed, and its change read back against
//! the seed — reading again only the files that changed, so that the cost of a rollout does not
//! grow with the size of the repository.
//!
//! How git tells what changed: the seed's index records each file's size and mtime as checked
//! out (the seed's git compares only those, `core.checkStat=minimal`), and the copy keeps both.
//! That alone would miss an edit that keeps a file's size and lands in the same second as the
//! checkout (or one whose mtime was set back), so the diff also asks the kernel: every path whose
//! inode changed after the copy — written, created, renamed, linked, chmod-ed — has a *ctime*
//! later than the copy's, and nothing in the sandbox can set a ctime back. Those paths lose their
//! stat data in the index, so `git add -A` reads them again; every other file is the seed's, byte
//! for byte. When the ctime check is not available (a minimal image) or too many files changed,
//! every file is read again: slower, never wrong.

use crate::sandbox::{SEED, WORKSPACE};

/// The seed's checkout as one archive (see [`crate::repo`]): one sequential read to extract,
/// where copying the tree file by file costs several system calls per file.
pub const CHECKOUT_ARCHIVE: &str = "checkout.tar";

/// Above this many changed files, git reads every file again rather than looking each one up.
pub const MAX_SINGLED_OUT: usize = 1_000;

/// Puts the working copy in place, then prints the ctime (`seconds.nanoseconds`) of a file made
/// right after — the kernel's clock as the copy ended.
pub fn copy_script() -> String {
    format!(
        "set -e\n\
         tar -xf {SEED}/{CHECKOUT_ARCHIVE} -C {WORKSPACE}\n\
         : > /tmp/.ts-copied\n\
         stat -c %.9Z /tmp/.ts-copied 2>/dev/null || true\n"
    )
}

/// The kernel's clock when the working copy was in place, as a file's ctime.
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
    /// very tick the copy ended is counted as changed (at worst it is read again for nothing).
    fn just_before(self) -> String {
        let (secs, nanos) = if self.nanos == 0 {
            (self.secs - 1, 999_999_999)
        } else {
            (self.secs, self.nanos - 1)
        };
        format!("@{secs}.{nanos:09}")
    }
}

/// The diff script: prints `git diff --numstat -z`, an empty record, then the binary patch (one
/// `git diff` run; see `rollout::split_numstat`), all
/// against the seed's read-only git directory so that nothing the agent did to `/workspace/.git`
/// matters. It first refuses a change with files larger than `max_bytes` (see
/// [`crate::oom::oversized_check`]), in the same command (and, after a copy, in the same walk that
/// finds what changed).
pub fn diff_script(mark: Option<CopyMark>, max_bytes: usize) -> String {
    let single_out = match mark {
        Some(mark) => format!(
            // One walk of the working copy finds both what changed since the copy and, among
            // those, the files too large to keep (the same refusal as `oversized_check`).
            r#"cp {SEED}/tree/.git/index /tmp/.ts-index
if find . -xdev -name .git -prune -o ! -type d -newerct {reference} \
     \( -print0 , -type f -size +{max_bytes}c -fprintf /tmp/.ts-big '%s\t%P\n' \) \
     >/tmp/.ts-changed; then walked=yes; else walked=no; fi
if [ -s /tmp/.ts-big ]; then head -n 3 /tmp/.ts-big; exit {oversized_exit}; fi
if [ "$walked" = yes ] \
   && [ "$(tr -cd '\0' </tmp/.ts-changed | wc -c)" -le {MAX_SINGLED_OUT} ]; then
  xargs -0 -r git ls-files --stage -z -- </tmp/.ts-changed | git update-index -z --index-info
else
  rm -f /tmp/.ts-index
  git read-tree HEAD
fi
"#,
            reference = mark.just_before(),
            oversized_exit = crate::oom::OVERSIZED_EXIT,
        ),
        None => "git read-tree HEAD\n".to_string(),
    };
    // Without a mark the size check walks the workspace on its own.
    let oversized = match mark {
        Some(_) => String::new(),
        None => crate::oom::oversized_check(max_bytes),
    };
    format!(
        r#"find /tmp -mindepth 1 -maxdepth 1 -exec rm -rf {{}} + 2>/dev/null
{oversized}set -e -o pipefail
export GIT_DIR={SEED}/tree/.git GIT_WORK_TREE={WORKSPACE} GIT_INDEX_FILE=/tmp/.ts-index \
       GIT_OBJECT_DIRECTORY=/tmp/.ts-objects GIT_ALTERNATE_OBJECT_DIRECTORIES={SEED}/objects \
       GIT_LITERAL_PATHSPECS=1
if [ ! -d {WORKSPACE} ]; then echo "the workspace is gone" >&2; exit 3; fi
mkdir -p /tmp/.ts-objects
cd {WORKSPACE}
# The seed's index, copied now: newer than every file of the checkout, so no entry of it is
# "racily clean"; what changed since the copy (by ctime) has its stat data dropped and is read
# again. Without a mark, a fresh index from HEAD: every file is read again.
{single_out}git add -A
# One diff, renames found once: the numstat records, an empty record, then the patch.
git diff --cached --find-renames --numstat --binary -z HEAD
"#,
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
    fn without_a_mark_every_file_is_read_again() {
        let script = diff_script(None, 1 << 20);
        assert!(
            script.contains("git read-tree HEAD\ngit add -A"),
            "{script}"
        );
        assert!(!script.contains("-newerct"), "{script}");
        let script = diff_script(CopyMark::parse("12.000000005"), 1 << 20);
        assert!(script.contains("-newerct @12.000000004 "), "{script}");
        assert!(script.contains("set -e -o pipefail"), "{script}");
    }
}
