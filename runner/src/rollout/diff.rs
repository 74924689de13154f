//! The rollout's change: the diff step run in the sandbox, and git's `--numstat -z` output read.

use crate::context::RolloutCtx;
use crate::output::OutputCap;
use crate::sandbox::{ExecRequest, SandboxError};
use crate::types::{Diff, FileChange};
use crate::workspace::{self, CopyMark};

use super::{MAX_DIFF_BYTES, MAX_DIFF_FILES, exit_words};

pub(super) enum DiffError {
    Cancelled,
    Failed(String),
}

/// The change against the base, taken with the seed's read-only git directory so that nothing
/// the agent did to `/workspace/.git` matters (see [`workspace::diff_script`]).
pub(super) async fn collect_diff(
    ctx: &RolloutCtx<'_>,
    mark: Option<CopyMark>,
) -> Result<Diff, DiffError> {
    let script = workspace::diff_script(mark, MAX_DIFF_BYTES);
    let mut req = ExecRequest::shell(script, ctx.command_timeout);
    req.keep_stdout = Some(MAX_DIFF_BYTES);
    req.reap = false;
    req.cap = OutputCap {
        head_bytes: 4096,
        tail_bytes: 4096,
    };
    let out = match ctx.sandbox.exec(req, ctx.cancel).await {
        Ok(o) => o,
        Err(SandboxError::Cancelled) => return Err(DiffError::Cancelled),
        Err(e) => {
            return Err(DiffError::Failed(format!(
                "could not collect the diff: {e}"
            )));
        }
    };
    if out.stdout_overflow {
        return Err(DiffError::Failed(format!(
            "the change is larger than {} MB, so it was not kept",
            MAX_DIFF_BYTES >> 20
        )));
    }
    if out.exit_code == Some(crate::oom::OVERSIZED_EXIT)
        && let Some(why) = crate::oom::oversized_words(
            &String::from_utf8_lossy(out.stdout.as_deref().unwrap_or_default()),
            MAX_DIFF_BYTES,
        )
    {
        return Err(DiffError::Failed(why));
    }
    if !out.success() {
        return Err(DiffError::Failed(format!(
            "could not collect the diff ({}): {}",
            exit_words(out.exit_code, out.timed_out),
            last_line(&out.output.to_text())
        )));
    }
    let stdout = out.stdout.unwrap_or_default();
    let Some((numstat, patch)) = split_numstat(&stdout) else {
        return Err(DiffError::Failed(
            "could not collect the diff: git's output was cut short".into(),
        ));
    };
    let files = parse_numstat(numstat);
    if files.len() > MAX_DIFF_FILES {
        return Err(DiffError::Failed(format!(
            "the change touches {} files (more than {MAX_DIFF_FILES}), so it was not kept",
            files.len()
        )));
    }
    Ok(Diff {
        patch: String::from_utf8_lossy(patch).into_owned(),
        files,
        test_files: Vec::new(),
    })
}

fn last_line(text: &str) -> String {
    text.trim().lines().last().unwrap_or("").to_string()
}

/// Splits `git diff --numstat --patch -z` into its numstat records and its patch: git ends the
/// records with an empty one. No output at all is no change; `None` when the records are cut
/// short.
fn split_numstat(out: &[u8]) -> Option<(&[u8], &[u8])> {
    if out.is_empty() {
        return Some((out, out));
    }
    let field_end = |from: usize| -> Option<usize> {
        Some(from + out.get(from..)?.iter().position(|b| *b == 0)?)
    };
    let mut at = 0;
    loop {
        if *out.get(at)? == 0 {
            return Some((&out[..at], &out[at + 1..]));
        }
        let end = field_end(at)?;
        // `added\tremoved\tpath`, or `added\tremoved\t` and two paths for a rename.
        let record = &out[at..end];
        let rename = record.splitn(3, |b| *b == b'\t').nth(2) == Some(&[][..]);
        at = end + 1;
        if rename {
            at = field_end(at)? + 1;
            at = field_end(at)? + 1;
        }
    }
}

/// Parses `git diff --numstat -z --find-renames`: `added\tremoved\tpath\0`, or for a rename
/// `added\tremoved\t\0old path\0new path\0`. Paths come as they are (never quoted).
fn parse_numstat(raw: &[u8]) -> Vec<FileChange> {
    let mut fields = raw.split(|b| *b == 0);
    let mut files = Vec::new();
    while let Some(entry) = fields.next() {
        if entry.is_empty() {
            continue;
        }
        let text = String::from_utf8_lossy(entry);
        let mut parts = text.splitn(3, '\t');
        let (Some(added), Some(removed), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let (old_path, path) = if path.is_empty() {
            let old = fields
                .next()
                .map(|p| String::from_utf8_lossy(p).into_owned());
            let new = fields
                .next()
                .map(|p| String::from_utf8_lossy(p).into_owned());
            match (old, new) {
                (Some(old), Some(new)) => (Some(old), new),
                _ => break,
            }
        } else {
            (None, path.to_string())
        };
        files.push(FileChange {
            path,
            old_path,
            added: added.parse().ok(),
            removed: removed.parse().ok(),
        });
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numstat_and_patch_are_split_at_the_empty_record() {
        let out = b"1\t0\tx\x000\t0\t\x00y\x00z\x00\x001\t2\tweird\t\x00\x00diff --git a/x b/x\n";
        let (numstat, patch) = split_numstat(out).unwrap();
        assert_eq!(numstat, b"1\t0\tx\x000\t0\t\x00y\x00z\x00");
        assert_eq!(patch, b"1\t2\tweird\t\x00\x00diff --git a/x b/x\n");
        let tab = b"1\t2\tweird\t\x00\x00diff --git a/x b/x\n";
        let (numstat, patch) = split_numstat(tab).unwrap();
        assert_eq!(
            numstat, b"1\t2\tweird\t\x00",
            "a path ending in a tab is no rename"
        );
        assert_eq!(patch, b"diff --git a/x b/x\n");
        assert_eq!(split_numstat(b""), Some((&b""[..], &b""[..])));
        assert_eq!(split_numstat(b"1\t0\tx\x00"), None, "cut short");
        assert_eq!(
            split_numstat(b"0\t0\t\x00y\x00"),
            None,
            "cut short in a rename"
        );
    }

    #[test]
    fn numstat_is_parsed_with_binary_files() {
        let raw = b"3\t1\tsrc/a b.rs\0-\t-\timg.png\0";
        assert_eq!(
            parse_numstat(raw),
            vec![
                FileChange {
                    path: "src/a b.rs".into(),
                    old_path: None,
                    added: Some(3),
                    removed: Some(1)
                },
                FileChange {
                    path: "img.png".into(),
                    old_path: None,
                    added: None,
                    removed: None
                },
            ]
        );
    }

    #[test]
    fn numstat_renames_keep_both_names_unquoted() {
        let raw =
            "0\t0\t\0docs/naïve notes/a.md\0docs/naïve notes/b.md\x001\t0\trun.sh\0".as_bytes();
        assert_eq!(
            parse_numstat(raw),
            vec![
                FileChange {
                    path: "docs/naïve notes/b.md".into(),
                    old_path: Some("docs/naïve notes/a.md".into()),
                    added: Some(0),
                    removed: Some(0)
                },
                FileChange {
                    path: "run.sh".into(),
                    old_path: None,
                    added: Some(1),
                    removed: Some(0)
                },
            ]
        );
    }
}
