//! A rollout's diff holds every change the agent made, even one that git's stat data cannot see:
//! the diff step reads again only what changed after the copy (issue 17), and must not miss
//! anything for it.

use std::path::Path;
use std::process::Command;

use threadsmith_runner::Outcome;
use threadsmith_tests::env;
use threadsmith_tests::gitrepo::{BUGGY_CALC, CALC_TESTS, git, repo_with};

#[tokio::test(flavor = "multi_thread")]
async fn edits_that_keep_a_files_size_and_time_are_in_the_diff() {
    let env = env(|c| {
        c.sandbox.agent = Some("external".into());
        // Same-size edits whose mtime is then set back to the checkout's, exactly as an edit
        // made in the checkout's own second looks to git; one of them to a tracked file under
        // an ignored directory. Plus a new ignored file, which must stay out of the diff.
        c.sandbox.external_command = Some(
            "cd {workspace} && touch -r calc.sh /tmp/when \
             && sed -i '1s/-/+/' calc.sh && touch -r /tmp/when calc.sh \
             && printf '1\\n' > build/mode.txt && touch -r /tmp/when build/mode.txt \
             && echo object > build/out.o && echo edited"
                .into(),
        );
    })
    .await;
    let dir = env.dir.path().join("calc");
    let repo = repo_with(
        &dir,
        &[
            ("calc.sh", BUGGY_CALC),
            ("test.sh", CALC_TESTS),
            (".threadsmith.toml", "test = \"bash test.sh\"\n"),
            (".gitignore", "build/\n"),
            ("build/mode.txt", "0\n"),
        ],
    );
    git(&repo, &["add", "--force", "build/mode.txt"]);
    git(
        &repo,
        &[
            "commit",
            "--quiet",
            "-m",
            "a tracked file in an ignored folder",
        ],
    );

    let report = env.run(&repo, 1, "The add test fails").await;
    assert_eq!(report.task.error, None);
    let r = &report.rollouts[0];
    assert_eq!(r.outcome, Some(Outcome::Succeeded), "{r:?}");
    let diff = env
        .svc
        .store
        .diff(&report.task.id, 1)
        .await
        .unwrap()
        .unwrap();
    let mut files: Vec<&str> = diff.files.iter().map(|f| f.path.as_str()).collect();
    files.sort();
    assert_eq!(files, ["build/mode.txt", "calc.sh"], "{}", diff.patch);
    assert!(
        diff.patch.contains("+add() { echo $(( $1 + $2 )); }"),
        "{}",
        diff.patch
    );
    assert!(diff.patch.contains("-0\n+1\n"), "{}", diff.patch);
    env.assert_nothing_left(&report.task.id).await;
}

/// Every kind of change the diff step now tells from the paths that changed (issue 17): a deleted
/// folder, a file replaced by a folder and a folder by a file, a rename into a deeper folder,
/// a mode change, a symlink pointed elsewhere, new folders (with ignored files in them), names
/// with a newline or not UTF-8, untracked files under an ignored folder. The same commands run in
/// a clone on the host, where `git add -A` looks at the whole tree, give the same diff.
const EVERY_KIND: &str = "sed -i '1s/-/+/' calc.sh && rm -rf gone && rm was-file.txt && mkdir was-file.txt \
     && echo in > was-file.txt/inner && rm -rf was-dir && echo now a file > was-dir \
     && mv 'old name.txt' lib/sub/deep/renamed.txt && chmod +x mode.sh && ln -sfn lib/sub link \
     && mkdir -p new/deeper && echo n > new/deeper/f.txt && echo o > new/deeper/f.o \
     && printf 'x\\n' > \"$(printf 'line\\nbreak.txt')\" && printf 'y\\n' > \"$(printf 'caf\\351.txt')\" \
     && mkdir -p out/deep && echo o > out/deep/x.o && echo i > build/new.txt \
     && rm lib/sub/b.txt && echo edited";

/// A folder of the base moved onto the place of another (whose files keep their old ctime under
/// a new path), then a file written in it: the diff step must not trust the ctimes there.
const SWAPPED_FOLDERS: &str = "sed -i '1s/-/+/' calc.sh && mv lib/sub held && mv gone lib/sub && mv held gone \
     && echo more > lib/sub/added.txt && echo edited";

#[tokio::test(flavor = "multi_thread")]
async fn every_kind_of_change_is_in_the_diff_as_git_add_sees_it() {
    same_diff_as_git_add(EVERY_KIND).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_folder_moved_onto_another_is_in_the_diff_as_git_add_sees_it() {
    same_diff_as_git_add(SWAPPED_FOLDERS).await;
}

/// A changed file as numstat tells it: path, old path (a rename), lines added and removed.
type Change = (String, Option<String>, Option<u64>, Option<u64>);

async fn same_diff_as_git_add(commands: &'static str) {
    let env = env(|c| {
        c.sandbox.agent = Some("external".into());
        c.sandbox.external_command = Some(format!("cd {{workspace}} && {commands}"));
    })
    .await;
    let dir = env.dir.path().join("kinds");
    let repo = repo_with(
        &dir,
        &[
            ("calc.sh", BUGGY_CALC),
            ("test.sh", CALC_TESTS),
            (".threadsmith.toml", "test = \"bash test.sh\"\n"),
            (".gitignore", "build/\n*.o\n"),
            ("build/mode.txt", "0\n"),
            ("lib/a.txt", "a\n"),
            ("lib/sub/b.txt", "b\n"),
            ("lib/sub/deep/c.txt", "c\n"),
            ("gone/x.txt", "x\n"),
            ("gone/y/z.txt", "z\n"),
            ("was-file.txt", "file\n"),
            ("was-dir/inner.txt", "inner\n"),
            ("mode.sh", "echo mode\n"),
            (
                "old name.txt",
                "a file long enough for git to find it again once renamed\n",
            ),
        ],
    );
    std::os::unix::fs::symlink("lib/a.txt", repo.join("link")).unwrap();
    git(&repo, &["add", "link"]);
    git(&repo, &["add", "--force", "build/mode.txt"]);
    git(
        &repo,
        &[
            "commit",
            "--quiet",
            "-m",
            "a link, a file in an ignored folder",
        ],
    );

    let expected = host_changes(&env.dir.path().join("host"), &repo, commands);
    assert!(expected.len() > 3, "{expected:?}");

    let report = env.run(&repo, 1, "Change everything").await;
    assert_eq!(report.task.error, None);
    let r = &report.rollouts[0];
    assert_eq!(r.outcome, Some(Outcome::Succeeded), "{r:?}");
    let diff = env
        .svc
        .store
        .diff(&report.task.id, 1)
        .await
        .unwrap()
        .unwrap();
    let mut files: Vec<Change> = diff
        .files
        .iter()
        .map(|f| (f.path.clone(), f.old_path.clone(), f.added, f.removed))
        .collect();
    files.sort();
    assert_eq!(files, expected, "{}", diff.patch);
    env.assert_nothing_left(&report.task.id).await;
}

/// The same commands in a clone on the host, and what `git add -A` over the whole tree then
/// finds: (path, old path, added, removed), sorted.
fn host_changes(clone: &Path, repo: &Path, commands: &str) -> Vec<Change> {
    git(repo, &["clone", "--quiet", ".", clone.to_str().unwrap()]);
    let run = Command::new("bash")
        .arg("-c")
        .arg(commands)
        .current_dir(clone)
        .status()
        .unwrap();
    assert!(run.success());
    git(clone, &["add", "-A"]);
    let out = Command::new("git")
        .args([
            "diff",
            "--cached",
            "--find-renames",
            "--numstat",
            "-z",
            "HEAD",
        ])
        .current_dir(clone)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut fields = out.stdout.split(|b| *b == 0);
    let mut files = Vec::new();
    while let Some(record) = fields.next() {
        if record.is_empty() {
            continue;
        }
        let mut parts = record.splitn(3, |b| *b == b'\t');
        let count = |p: Option<&[u8]>| p.and_then(|p| text(p).parse().ok());
        let (added, removed) = (count(parts.next()), count(parts.next()));
        let path = parts.next().unwrap_or_default();
        if path.is_empty() {
            let old = text(fields.next().unwrap());
            let new = text(fields.next().unwrap());
            files.push((new, Some(old), added, removed));
        } else {
            files.push((text(path), None, added, removed));
        }
    }
    files.sort();
    files
}
