//! Real git repositories made by the tests.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs git with a fixed identity and dates, so that commit ids are the same on every run.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Test Author")
        .env("GIT_AUTHOR_EMAIL", "author@example.com")
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_NAME", "Test Author")
        .env("GIT_COMMITTER_EMAIL", "author@example.com")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Writes files and commits them on `main`.
pub fn repo_with(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    git(dir, &["init", "--quiet", "--initial-branch=main"]);
    for (path, content) in files {
        let p = dir.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, content).expect("write");
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "--quiet", "-m", "initial"]);
    dir.to_path_buf()
}

pub const BUGGY_CALC: &str = "add() { echo $(( $1 - $2 )); }\nsub() { echo $(( $1 - $2 )); }\n";
pub const FIXED_CALC: &str = "add() { echo $(( $1 + $2 )); }\nsub() { echo $(( $1 - $2 )); }\n";
pub const OVERFIXED_CALC: &str = "add() { echo $(( $1 + $2 )); }\nsub() { echo $(( $1 + $2 )); }\n";

pub const CALC_TESTS: &str = r#"#!/bin/bash
. ./calc.sh
fail=0
check() { if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: got $2, want $3"; fail=1; fi; }
check add "$(add 2 3)" 5
check sub "$(sub 5 3)" 2
exit $fail
"#;

/// A small shell project whose `add` test fails.
pub fn calc_repo(dir: &Path) -> PathBuf {
    repo_with(
        dir,
        &[
            ("calc.sh", BUGGY_CALC),
            ("test.sh", CALC_TESTS),
            (".threadsmith.toml", "test = \"bash test.sh\"\n"),
        ],
    )
}
