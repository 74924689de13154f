//! A repository without a configured test command gets its usual one (`cargo test`, `npm test`,
//! `pytest`, `go test ./...`, `make test`), found from the base commit's root files.

use std::collections::HashMap;

use threadsmith_runner::testdetect::{self, CANDIDATES};
use threadsmith_runner::{PreparedRepo, RepoCache, RepoSettings};

use crate::store::TaskTests;

/// Fills in `settings.test` from the repository's files when none is configured.
pub(super) async fn detect_tests(
    repos: &RepoCache,
    prepared: &PreparedRepo,
    settings: &mut RepoSettings,
) {
    if settings.test.is_some() {
        return;
    }
    let mut files = HashMap::new();
    for name in CANDIDATES {
        if let Some(text) = repos.read_file(prepared, name).await {
            files.insert(name.to_string(), text);
        }
    }
    if let Some(found) = testdetect::detect(&files) {
        settings.test = Some(found.command);
        settings.test_detected_from = Some(found.source);
    }
}

/// The tests to store on the task, once detection has run.
pub(super) fn task_tests(settings: &RepoSettings) -> Option<TaskTests> {
    Some(TaskTests {
        command: settings.test.clone()?,
        detected_from: settings.test_detected_from.clone(),
    })
}

/// What the task's tests are, for people: "tests: `cargo test`, detected from Cargo.toml (none
/// is configured)", or that there are none.
pub fn tests_line(settings: &RepoSettings) -> String {
    match testdetect::test_words(settings) {
        Some(words) => format!("tests: {words}"),
        None => "tests: none — no test command is configured and none was found, so the rollouts are untested".into(),
    }
}
