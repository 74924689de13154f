//! The seed's checkout as archives: one for a small checkout, [`PARTS`] of about equal size for a
//! larger one, which a sandbox extracts at once (see `workspace/copy.sh`): putting 50,000 files in
//! a tmpfs is the kernel's work, file by file, and two extractions on two CPUs take little more
//! than half the time of one.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::RepoError;
use super::host::Host;
use crate::workspace::CHECKOUT_ARCHIVE;

/// A checkout larger than this is split (below it, a second extraction saves too little).
pub const SPLIT_BYTES: u64 = 8 << 20;

/// How many archives a large checkout is split into.
pub const PARTS: usize = 2;

/// What one entry costs an extraction beyond its content: its header, and its creation.
const ENTRY_BYTES: u64 = 4096;

/// The name of part `k` in the seed: part 0 is [`CHECKOUT_ARCHIVE`], then `checkout.<k>.tar`.
pub fn part_name(k: usize) -> String {
    if k == 0 {
        CHECKOUT_ARCHIVE.to_string()
    } else {
        let stem = CHECKOUT_ARCHIVE.trim_end_matches(".tar");
        format!("{stem}.{k}.tar")
    }
}

/// Every entry below `root` (`.git` included), as `./<path>`, by path, each folder followed by
/// what it holds; with its cost to extract.
fn entries(root: &Path) -> std::io::Result<Vec<(PathBuf, u64)>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, u64)>) -> std::io::Result<()> {
        let mut names: Vec<OsString> = std::fs::read_dir(root.join(dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let meta = std::fs::symlink_metadata(root.join(&path))?;
            let bytes = if meta.is_file() { meta.len() } else { 0 };
            out.push((path.clone(), ENTRY_BYTES + bytes));
            if meta.is_dir() {
                walk(root, &path, out)?;
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, Path::new("."), &mut out)?;
    Ok(out)
}

/// Cuts `entries` into at most `parts` runs in order, of about equal cost.
fn split(entries: &[(PathBuf, u64)], parts: usize) -> Vec<&[(PathBuf, u64)]> {
    let total: u64 = entries.iter().map(|(_, cost)| cost).sum();
    let mut runs = Vec::with_capacity(parts);
    let (mut start, mut sum) = (0, 0u64);
    for (i, (_, cost)) in entries.iter().enumerate() {
        sum += cost;
        let k = runs.len() as u64 + 1;
        if runs.len() + 1 < parts && sum * parts as u64 >= total * k {
            runs.push(&entries[start..=i]);
            start = i + 1;
        }
    }
    if start < entries.len() {
        runs.push(&entries[start..]);
    }
    runs
}

/// Packs the checkout at `tree` into `dir`: [`CHECKOUT_ARCHIVE`] and, for a large checkout, its
/// other parts ([`part_name`]).
pub(super) async fn pack(host: &Host<'_>, tree: &Path, dir: &Path) -> Result<(), RepoError> {
    let failed = |e: String| RepoError::Git {
        action: "packing the seed",
        detail: e,
    };
    let root = tree.to_path_buf();
    let listed = tokio::task::spawn_blocking(move || entries(&root))
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(|e| failed(format!("listing the checkout: {e}")))?;
    let total: u64 = listed.iter().map(|(_, cost)| cost).sum();
    let parts = if total > SPLIT_BYTES { PARTS } else { 1 };
    let tree_arg = tree.display().to_string();
    for (k, run) in split(&listed, parts).into_iter().enumerate() {
        let mut names = Vec::new();
        for (path, _) in run {
            names.extend_from_slice(path.as_os_str().as_bytes());
            names.push(0);
        }
        let list = dir.join(format!("{}.list", part_name(k)));
        std::fs::write(&list, names).map_err(|e| failed(e.to_string()))?;
        let archive = dir.join(part_name(k)).display().to_string();
        let list_arg = list.display().to_string();
        // Every entry is named (`./` first: no name is taken for an option), nothing recursed.
        host.tar(&[
            "-C",
            &tree_arg,
            "--no-recursion",
            "--null",
            "-T",
            &list_arg,
            "-cf",
            &archive,
        ])
        .await?;
        std::fs::remove_file(&list).map_err(|e| failed(e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_named_from_the_checkout_archive() {
        assert_eq!(part_name(0), "checkout.tar");
        assert_eq!(part_name(1), "checkout.1.tar");
    }

    #[test]
    fn entries_come_folder_first_in_order_and_runs_are_about_equal() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (path, bytes) in [
            ("b/y", 30_000),
            ("a/x", 10_000),
            ("a/z/w", 10_000),
            ("c", 2_000),
        ] {
            let file = root.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, vec![b'.'; bytes]).unwrap();
        }
        let listed = entries(root).unwrap();
        let names: Vec<String> = listed
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect();
        assert_eq!(
            names,
            ["./a", "./a/x", "./a/z", "./a/z/w", "./b", "./b/y", "./c"]
        );
        assert_eq!(listed[1].1, ENTRY_BYTES + 10_000);
        assert_eq!(listed[0].1, ENTRY_BYTES);
        let runs = split(&listed, 2);
        assert_eq!(runs.len(), 2);
        assert_eq!(runs.iter().map(|r| r.len()).sum::<usize>(), listed.len());
        // 80,672 in all: the first run ends where it passes half, with `./b`.
        assert_eq!(runs[0].len(), 5, "{runs:?}");
        assert_eq!(split(&listed, 1), [&listed[..]]);
        assert!(split(&[], 2).is_empty());
    }
}
