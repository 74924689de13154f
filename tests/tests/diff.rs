//! A rollout's diff holds every change the agent made, even one that git's stat data cannot see:
//! the diff step reads again only what changed after the copy (issue 17), and must not miss
//! anything for it.

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
